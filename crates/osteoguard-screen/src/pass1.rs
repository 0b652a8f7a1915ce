//! Pass 1: stream every NDJSON(.gz) line of the export once, route it with
//! [`crate::route::decide`], and append the raw line (prefixed `patient-id TAB`) to the shard file
//! `fnv1a(patient-id) % S` in the run's temporary directory.
//!
//! Threads: one reader (decompression is sequential) cuts the input into ~4 MiB chunks that end
//! on a line boundary; `jobs` workers peek and route the lines of a chunk and buffer them per
//! shard. Memory: `2 × jobs` chunks in flight + per-worker shard buffers capped at
//! [`WORKER_BUFFER_CAP`] in total — independent of the population size and of `S`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::fault::OutFile;
use crate::progress::Progress;
use crate::route::{decide, decide_slow, fast_ignored, peek, Decision};
use crate::ScreenError;

/// Bytes per chunk handed to a worker.
pub const CHUNK: usize = 4 << 20;
/// A shard buffer is written out when it reaches this size (or less: see [`flush_size`]).
const SHARD_FLUSH: usize = 64 << 10;
/// All shard buffers of one worker together hold about this much (see [`flush_size`]).
pub const WORKER_BUFFER_CAP: usize = 4 << 20;
/// Smallest shard write.
const MIN_SHARD_FLUSH: usize = 4 << 10;

/// The size at which a worker writes a shard buffer out: `WORKER_BUFFER_CAP / shards`, at most
/// 64 KiB. Why: a buffer keeps its capacity between writes, so a worker holds up to
/// `shards × flush size`; with a fixed 64 KiB that grew with the population (417 shards × 64 KiB
/// × 2 workers = 53 MB at 1 M patients). Scaled, a worker's buffers stay near 4 MiB at any size
/// (writes get smaller instead: ~10 KiB at 417 shards).
pub fn flush_size(shards: usize) -> usize {
    (WORKER_BUFFER_CAP / shards.max(1)).clamp(MIN_SHARD_FLUSH, SHARD_FLUSH)
}

/// Per resource type: lines read, kept for evaluation, dropped as ignored, kept but unattached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineCounts {
    pub read: u64,
    pub kept: u64,
    pub ignored: u64,
    pub unattached: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pass1Stats {
    pub files: Vec<String>,
    pub bytes: u64,
    pub lines: u64,
    pub by_type: BTreeMap<String, LineCounts>,
    /// Lines that are not JSON or carry no `resourceType` (counted, never silently dropped).
    pub not_fhir_lines: u64,
    pub kept_bytes: u64,
}

impl Pass1Stats {
    fn merge(&mut self, o: Pass1Stats) {
        self.bytes += o.bytes;
        self.lines += o.lines;
        self.not_fhir_lines += o.not_fhir_lines;
        self.kept_bytes += o.kept_bytes;
        for (k, v) in o.by_type {
            let e = self.by_type.entry(k).or_default();
            e.read += v.read;
            e.kept += v.kept;
            e.ignored += v.ignored;
            e.unattached += v.unattached;
        }
    }
}

/// The shards written by pass 1.
pub struct Shards {
    pub paths: Vec<PathBuf>,
    pub medications: PathBuf,
}

/// Stable 64-bit FNV-1a (the shard of a patient must not depend on the platform or the run).
pub fn fnv1a(s: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub fn shard_of(id: &str, shards: usize) -> usize {
    (fnv1a(id.as_bytes()) % shards as u64) as usize
}

/// The NDJSON files of an export (or the file itself), sorted by path: `*.ndjson`, `*.jsonl`
/// (optionally `.gz`), sub-directories included. `log.ndjson` (the bulk-data-client export log)
/// is not FHIR and is skipped; so are `.json` files (manifests, side files) — list them with
/// [`skipped_files`].
pub fn input_files(path: &Path) -> Result<Vec<PathBuf>, ScreenError> {
    if !path.is_dir() {
        regular(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut v = Vec::new();
    walk(path, 0, &mut v, &mut Vec::new())?;
    v.sort();
    if v.is_empty() {
        return Err(ScreenError::Usage(format!(
            "{}: no .ndjson or .ndjson.gz files (expected a FHIR Bulk Data export directory)",
            path.display()
        )));
    }
    Ok(v)
}

/// `.json` files in the export that screening does not read.
pub fn skipped_files(path: &Path) -> Vec<PathBuf> {
    let mut skipped = Vec::new();
    if path.is_dir() {
        let _ = walk(path, 0, &mut Vec::new(), &mut skipped);
    }
    skipped.sort();
    skipped
}

fn is_ndjson(name: &str) -> bool {
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    (stem.ends_with(".ndjson") || stem.ends_with(".jsonl")) && name != "log.ndjson"
}

fn walk(
    dir: &Path,
    depth: usize,
    out: &mut Vec<PathBuf>,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), ScreenError> {
    let io = |e| ScreenError::io(dir, e);
    for e in std::fs::read_dir(dir).map_err(io)? {
        let p = e.map_err(io)?.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if p.is_dir() {
            if depth < 4 && !name.starts_with('.') {
                walk(&p, depth + 1, out, skipped)?;
            }
        } else if is_ndjson(&name) {
            regular(&p)?;
            out.push(p);
        } else if name.ends_with(".json") || name.ends_with(".json.gz") {
            skipped.push(p);
        }
    }
    Ok(())
}

/// Only regular files are read: a device (a symlink to `/dev/zero`), a FIFO or a socket is
/// refused (exit 2), as `assess` refuses it.
fn regular(path: &Path) -> Result<(), ScreenError> {
    osteoguard_fhir::regular_file(path)
        .map(|_| ())
        .map_err(|e| match e {
            osteoguard_fhir::ReadError::Io { cause, .. } => ScreenError::io(path, cause),
            other => ScreenError::Input(other.to_string()),
        })
}

/// Estimated uncompressed size (gzip counted ×8) — used to choose the shard count.
pub fn estimated_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| {
            let n = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            if f.to_string_lossy().ends_with(".gz") {
                n.saturating_mul(8)
            } else {
                n
            }
        })
        .sum()
}

/// A reader counting the bytes it hands out (compressed bytes for gzip files: the progress bar
/// measures position in the files on disk).
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}
impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a file as a byte stream (gunzipping `.gz`).
pub fn open_stream(
    path: &Path,
    counter: Arc<AtomicU64>,
) -> Result<Box<dyn Read + Send>, ScreenError> {
    let f = File::open(path).map_err(|e| ScreenError::io(path, e))?;
    let c = Counting { inner: f, counter };
    if path.to_string_lossy().ends_with(".gz") {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(
            BufReader::with_capacity(1 << 20, c),
        )))
    } else {
        Ok(Box::new(c))
    }
}

/// A buffer, how many of its bytes are the chunk, the index of its file and the offset of its
/// first byte in that (decompressed) file — to name the line of an error.
type Chunk = (Vec<u8>, usize, usize, u64);

/// Reads `files` and calls `sink` with chunks of whole lines (each ends with `\n`, except
/// possibly the last of a file). Runs `jobs` consumer threads over a bounded channel.
/// A line longer than `max_line` bytes is an error naming the file and line, raised after
/// reading at most `max_line + CHUNK` bytes of it (a 3 GB line is never held in memory).
/// Cost: chunks are at most `max_line` bytes, so only the first line of a chunk can be longer
/// than `max_line` — one length test (and a `memchr` to its end) per chunk, nothing per line.
pub fn for_each_chunk<W, S>(
    files: &[PathBuf],
    jobs: usize,
    max_line: u64,
    disk_counter: Arc<AtomicU64>,
    mut tick: impl FnMut(),
    make_worker: impl Fn() -> W + Sync,
    work: S,
) -> Result<Vec<W>, ScreenError>
where
    W: Send,
    S: Fn(&mut W, &[u8]) -> Result<(), ScreenError> + Sync,
{
    let jobs = jobs.max(1);
    // Chunks travel as (buffer, valid length); workers hand emptied buffers back, and no buffer
    // is freed before the end. Why: a fresh 4 MiB buffer per chunk cost page faults and zeroing
    // on every chunk (a sixth of the reading thread); and freeing 4 MiB blocks makes glibc raise
    // its mmap threshold, after which they come from the heap and fragment it — peak memory then
    // grew with the length of the run (50 → 115 MB over a 1 M-patient pass 1). Memory: at most
    // jobs·2 queued + jobs in work + 2 with the reader = (3·jobs + 2) buffers, whatever the input.
    let (tx, rx) = sync_channel::<Chunk>(jobs * 2);
    let rx: Arc<Mutex<Receiver<Chunk>>> = Arc::new(Mutex::new(rx));
    // Room for every buffer that can exist, so a returned buffer is never dropped.
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(jobs * 3 + 2);
    // Set by a worker that stopped on an error (a full disk …): the reader stops too. Why: the
    // other workers may still be draining the queue, and reading the rest of the export only
    // to throw it away could take minutes.
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for _ in 0..jobs {
            let rx = Arc::clone(&rx);
            let back_tx = back_tx.clone();
            let work = &work;
            let make_worker = &make_worker;
            let failed = &failed;
            handles.push(scope.spawn(move || -> Result<W, ScreenError> {
                let mut w = make_worker();
                loop {
                    let next = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => {
                            failed.store(true, Ordering::Relaxed);
                            return Err(ScreenError::Internal("worker queue poisoned".into()));
                        }
                    };
                    match next {
                        Ok((buf, len, file, base)) => {
                            if let Err(e) = work(&mut w, &buf[..len]) {
                                failed.store(true, Ordering::Relaxed);
                                return Err(match e {
                                    ScreenError::BadLine { at, message } => ScreenError::Input(
                                        format!("{}:{message}", line_at(&files[file], base + at)),
                                    ),
                                    e => e,
                                });
                            }
                            // The pool has room for every buffer (see above).
                            let _ = back_tx.try_send(buf);
                        }
                        Err(_) => return Ok(w),
                    }
                }
                // `rx` (this worker's handle on the queue) is dropped here.
            }));
        }
        drop(back_tx);
        // Only the workers hold the queue: when the last one has returned (on an error, say),
        // the receiver is gone and a `send` fails instead of blocking for ever (it did: a full
        // disk in pass 1 hung the run at 0 % CPU).
        drop(rx);
        let stop = || ScreenError::Internal("all workers stopped".into());
        // A buffer of at least `len` bytes, recycled when one is free (its old bytes are
        // overwritten before they are read; only growth is zeroed).
        let take = |len: usize| -> Vec<u8> {
            let mut b = back_rx.try_recv().unwrap_or_default();
            if b.len() < len {
                b.resize(len, 0);
            }
            b
        };
        let chunk = usize::try_from(max_line)
            .unwrap_or(usize::MAX)
            .clamp(1, CHUNK);
        let mut produce = || -> Result<(), ScreenError> {
            for (file, path) in files.iter().enumerate() {
                let mut r = open_stream(path, Arc::clone(&disk_counter))?;
                let mut buf = take(chunk);
                // `buf[..start]` holds the incomplete last line of the previous chunk; `buf[0]`
                // is always the start of a line, at byte `base` of the (decompressed) file.
                let mut start = 0;
                let mut base = 0u64;
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return Err(stop());
                    }
                    let end = start + chunk;
                    if buf.len() < end {
                        buf.resize(end, 0);
                    }
                    let mut filled = start;
                    while filled < end {
                        let n = r
                            .read(&mut buf[filled..end])
                            .map_err(|e| ScreenError::io(path, e))?;
                        if n == 0 {
                            break;
                        }
                        filled += n;
                    }
                    if filled < end {
                        // End of the file: the rest is its last chunk.
                        if first_line_len(&buf[..filled], start) as u64 > max_line {
                            return Err(line_too_long(path, base, max_line));
                        }
                        if filled > 0 && tx.send((buf, filled, file, base)).is_err() {
                            return Err(stop());
                        }
                        tick();
                        break;
                    }
                    let len = match memchr::memrchr(b'\n', &buf[start..filled]) {
                        Some(nl) => start + nl + 1,
                        None => {
                            // A single line longer than a chunk: keep reading into it.
                            if filled as u64 > max_line {
                                return Err(line_too_long(path, base, max_line));
                            }
                            start = filled;
                            continue;
                        }
                    };
                    if first_line_len(&buf[..filled], start) as u64 > max_line {
                        return Err(line_too_long(path, base, max_line));
                    }
                    let rest = filled - len;
                    let mut next = take(rest + chunk);
                    next[..rest].copy_from_slice(&buf[len..filled]);
                    let full = std::mem::replace(&mut buf, next);
                    if tx.send((full, len, file, base)).is_err() {
                        return Err(stop());
                    }
                    base += len as u64;
                    start = rest;
                    tick();
                }
            }
            Ok(())
        };
        let produced = produce();
        drop(tx);
        // A worker's error explains the reader's "all workers stopped": it is reported first.
        let mut out = Vec::new();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(w)) => out.push(w),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(ScreenError::Internal("worker panicked".into()));
                }
            }
        }
        match first_err.or(produced.err()) {
            Some(e) => Err(e),
            None => Ok(out),
        }
    })
}

/// The length of the first line of `buf` when it began in an earlier chunk (`start` > 0: its
/// first `start` bytes); 0 otherwise (then every line of `buf` fits in one chunk). The line that
/// began in an earlier chunk is the only one that can be longer than a chunk.
fn first_line_len(buf: &[u8], start: usize) -> usize {
    if start == 0 {
        return 0;
    }
    memchr::memchr(b'\n', &buf[start..]).map_or(buf.len(), |nl| start + nl)
}

/// The error for a line longer than `max_line` that starts at byte `offset` of `path` (after
/// decompression).
fn line_too_long(path: &Path, offset: u64, max_line: u64) -> ScreenError {
    ScreenError::Input(format!(
        "{}: refused: the line is longer than {} (the limit of one resource; raise it with --max-line-mb){}",
        line_at(path, offset),
        osteoguard_fhir::ReadLimits::describe(max_line),
        osteoguard_fhir::whereabouts_of_unread_line()
    ))
}

/// `path:LINE` for the line starting at byte `offset` of the (decompressed) file. The line
/// number is counted here, on the error path only, by reading the file again up to `offset`:
/// pass 1 does not count lines as it reads.
fn line_at(path: &Path, offset: u64) -> String {
    let line = open_stream(path, Arc::new(AtomicU64::new(0)))
        .ok()
        .and_then(|r| {
            let mut r = BufReader::with_capacity(1 << 16, r.take(offset));
            let mut n = 1u64;
            loop {
                let buf = r.fill_buf().ok()?;
                if buf.is_empty() {
                    return Some(n);
                }
                n += memchr::memchr_iter(b'\n', buf).count() as u64;
                let k = buf.len();
                r.consume(k);
            }
        });
    match line {
        Some(n) => format!("{}:{n}", path.display()),
        None => format!("{} (byte {offset})", path.display()),
    }
}

/// Splits a chunk into lines (without the `\n`, and without a trailing `\r`), skipping blanks.
pub fn lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    split_lines(chunk)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
}

/// Splits at every `\n` (like `slice::split`, including the empty piece after a final `\n`),
/// with `memchr`'s vectorised search: the byte-at-a-time split was a tenth of pass 1's CPU.
pub fn split_lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', chunk).chain(std::iter::once(chunk.len()));
    std::iter::from_fn(move || {
        let end = ends.next()?;
        let line = &chunk[start..end];
        start = end + 1;
        Some(line)
    })
}

struct Worker {
    stats: Pass1Stats,
    bufs: Vec<Vec<u8>>,
    med: Vec<u8>,
    buffered: usize,
    /// [`flush_size`] of this run.
    flush_at: usize,
}

struct Sinks {
    shards: Vec<Mutex<OutFile>>,
    med: Mutex<OutFile>,
    paths: Vec<PathBuf>,
    med_path: PathBuf,
}

impl Sinks {
    fn write(&self, i: usize, data: &[u8]) -> Result<(), ScreenError> {
        let mut f = self.shards[i]
            .lock()
            .map_err(|_| ScreenError::Internal("shard lock poisoned".into()))?;
        f.write_all(data)
            .map_err(|e| ScreenError::io(&self.paths[i], e))
    }
    fn write_med(&self, data: &[u8]) -> Result<(), ScreenError> {
        let mut f = self
            .med
            .lock()
            .map_err(|_| ScreenError::Internal("medication lock poisoned".into()))?;
        f.write_all(data)
            .map_err(|e| ScreenError::io(&self.med_path, e))
    }
}

fn flush_all(w: &mut Worker, sinks: &Sinks) -> Result<(), ScreenError> {
    for (i, b) in w.bufs.iter_mut().enumerate() {
        if !b.is_empty() {
            sinks.write(i, b)?;
            // Free the capacity: memory must not grow with the number of shards.
            *b = Vec::new();
        }
    }
    if !w.med.is_empty() {
        sinks.write_med(&w.med)?;
        w.med = Vec::new();
    }
    w.buffered = 0;
    Ok(())
}

fn route_chunk(w: &mut Worker, chunk: &[u8], sinks: &Sinks) -> Result<(), ScreenError> {
    w.stats.bytes += chunk.len() as u64;
    for line in lines(chunk) {
        w.stats.lines += 1;
        // One scan checks the line and reads its routing members (crate::scan); only where it
        // is unsure does the line take the old path below.
        if let Some(p) = crate::scan::peek_members(line) {
            match p.resource_type.as_deref() {
                Some(ty) => route_line(w, sinks, line, ty, decide(&p))?,
                None => w.stats.not_fhir_lines += 1,
            }
            continue;
        }
        if let Some(ty) = fast_ignored(line) {
            route_line(w, sinks, line, ty, Decision::Ignored)?;
            continue;
        }
        // A line that is not UTF-8 is refused here, in `assess`'s words: the peek below skips
        // the strings it does not read without checking them, so such a line would be routed
        // and then fail the reader in pass 2, leaving the patient listed without it.
        if let Err(message) = crate::route::utf8_line(line) {
            return Err(ScreenError::BadLine {
                at: (line.as_ptr() as usize - chunk.as_ptr() as usize) as u64,
                message: format!(" {message}"),
            });
        }
        let (ty, decision) = match peek(line) {
            Some(p) => match p.resource_type.as_deref() {
                Some(t) => (t.to_string(), decide(&p)),
                None => {
                    w.stats.not_fhir_lines += 1;
                    continue;
                }
            },
            None => match decide_slow(line) {
                Some(x) => x,
                None => {
                    // Not JSON at all (two objects on one line, a truncated line, invalid
                    // UTF-8): `assess` refuses the file, so screening does too (issue 16),
                    // rather than list the patient without the line. JSON without a
                    // resourceType is only counted, as `assess` skips it in a directory.
                    if let Some((column, message)) = crate::route::not_json_line(line) {
                        return Err(ScreenError::BadLine {
                            at: (line.as_ptr() as usize - chunk.as_ptr() as usize) as u64,
                            // `COLUMN: …`, so that the message reads as assess's.
                            message: format!("{column}: {message}"),
                        });
                    }
                    w.stats.not_fhir_lines += 1;
                    continue;
                }
            },
        };
        route_line(w, sinks, line, &ty, decision)?;
    }
    Ok(())
}

/// Counts a line of type `ty` and sends it where `decision` says.
fn route_line(
    w: &mut Worker,
    sinks: &Sinks,
    line: &[u8],
    ty: &str,
    decision: Decision,
) -> Result<(), ScreenError> {
    // The type's name is allocated only the first time it is seen.
    let c = match w.stats.by_type.get_mut(ty) {
        Some(c) => c,
        None => w.stats.by_type.entry(ty.to_string()).or_default(),
    };
    c.read += 1;
    match decision {
        Decision::Ignored => c.ignored += 1,
        Decision::Unattached => c.unattached += 1,
        Decision::Medication(id) => {
            c.kept += 1;
            w.stats.kept_bytes += line.len() as u64;
            w.med.extend_from_slice(id.as_bytes());
            w.med.push(b'\t');
            w.med.extend_from_slice(line);
            w.med.push(b'\n');
            w.buffered += id.len() + line.len() + 2;
        }
        Decision::Patient(id) => {
            c.kept += 1;
            w.stats.kept_bytes += line.len() as u64;
            let s = shard_of(&id, sinks.shards.len());
            let b = &mut w.bufs[s];
            b.extend_from_slice(id.as_bytes());
            b.push(b'\t');
            b.extend_from_slice(line);
            b.push(b'\n');
            w.buffered += id.len() + line.len() + 2;
            if b.len() >= w.flush_at {
                sinks.write(s, b)?;
                w.buffered -= b.len();
                b.clear();
            }
        }
    }
    if w.buffered >= WORKER_BUFFER_CAP {
        flush_all(w, sinks)?;
    }
    Ok(())
}

/// Runs pass 1 into `dir` with `n_shards` shard files.
pub fn partition(
    files: &[PathBuf],
    dir: &Path,
    n_shards: usize,
    jobs: usize,
    max_line: u64,
    progress: &Progress,
) -> Result<(Shards, Pass1Stats), ScreenError> {
    let mut shards = Vec::with_capacity(n_shards);
    let mut paths = Vec::with_capacity(n_shards);
    for i in 0..n_shards {
        let p = dir.join(format!("shard-{i:04}.tsv"));
        let f = OutFile::create(&p).map_err(|e| ScreenError::io(&p, e))?;
        shards.push(Mutex::new(f));
        paths.push(p);
    }
    let med_path = dir.join("medications.tsv");
    let med = Mutex::new(OutFile::create(&med_path).map_err(|e| ScreenError::io(&med_path, e))?);
    let sinks = Sinks {
        shards,
        med,
        paths,
        med_path,
    };
    let disk = Arc::new(AtomicU64::new(0));
    let lines_done = Arc::new(AtomicU64::new(0));
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    progress.start_pass1(total);
    let disk2 = Arc::clone(&disk);
    let lines2 = Arc::clone(&lines_done);
    let workers = for_each_chunk(
        files,
        jobs,
        max_line,
        Arc::clone(&disk),
        || {
            progress.tick_pass1(
                disk2.load(Ordering::Relaxed),
                lines2.load(Ordering::Relaxed),
            )
        },
        || Worker {
            stats: Pass1Stats::default(),
            bufs: (0..n_shards).map(|_| Vec::new()).collect(),
            med: Vec::new(),
            buffered: 0,
            flush_at: flush_size(n_shards),
        },
        |w, chunk| {
            let before = w.stats.lines;
            route_chunk(w, chunk, &sinks)?;
            lines_done.fetch_add(w.stats.lines - before, Ordering::Relaxed);
            Ok(())
        },
    )?;
    let mut stats = Pass1Stats {
        files: files.iter().map(|f| f.display().to_string()).collect(),
        ..Default::default()
    };
    for mut w in workers {
        flush_all(&mut w, &sinks)?;
        stats.merge(w.stats);
    }
    progress.finish_pass1(stats.lines);
    Ok((
        Shards {
            paths: sinks.paths,
            medications: sinks.med_path,
        },
        stats,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line arrives whole and exactly once, across chunk ends, a line longer than a
    /// chunk, recycled buffers and a file without a final newline.
    #[test]
    fn chunks_carry_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut want: Vec<Vec<u8>> = Vec::new();
        let mut files = Vec::new();
        for (f, n) in [(0, 300_000usize), (1, 3)] {
            let mut text = Vec::new();
            for i in 0..n {
                let line = if i == 7 {
                    vec![b'x'; CHUNK * 2 + 5]
                } else {
                    format!("{{\"f\":{f},\"i\":{i},\"pad\":\"{}\"}}", "p".repeat(i % 97))
                        .into_bytes()
                };
                text.extend_from_slice(&line);
                if !(f == 1 && i == n - 1) {
                    text.push(b'\n');
                }
                want.push(line);
            }
            let path = dir.path().join(format!("f{f}.ndjson"));
            std::fs::write(&path, &text).unwrap();
            files.push(path);
        }
        let out = for_each_chunk(
            &files,
            2,
            u64::MAX,
            Arc::new(AtomicU64::new(0)),
            || {},
            Vec::new,
            |got: &mut Vec<Vec<u8>>, chunk| {
                got.extend(lines(chunk).map(<[u8]>::to_vec));
                Ok(())
            },
        )
        .unwrap();
        let mut got: Vec<Vec<u8>> = out.into_iter().flatten().collect();
        got.sort();
        want.sort();
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }

    /// A worker's shard buffers stay near `WORKER_BUFFER_CAP` whatever the number of shards.
    #[test]
    fn shard_buffers_do_not_grow_with_the_number_of_shards() {
        assert_eq!(flush_size(8), SHARD_FLUSH);
        assert_eq!(flush_size(42), SHARD_FLUSH);
        for shards in [64, 417, 1024] {
            let total = shards * flush_size(shards);
            assert!(total <= WORKER_BUFFER_CAP, "{shards}: {total}");
            assert!(total > WORKER_BUFFER_CAP / 2, "{shards}: {total}");
        }
        assert_eq!(flush_size(1 << 20), MIN_SHARD_FLUSH);
    }

    #[test]
    fn split_lines_cuts_where_slice_split_does() {
        for text in [
            &b""[..],
            b"\n",
            b"a",
            b"a\n",
            b"a\nb",
            b"\n\nab\n\ncd\r\n",
            b"{\"x\":1}\n{\"y\":2}\n",
        ] {
            let ours: Vec<&[u8]> = split_lines(text).collect();
            let std: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(text));
        }
        let got: Vec<&[u8]> = lines(b"a\r\n \n\nb").collect();
        assert_eq!(got, vec![&b"a"[..], b"b"]);
    }
}

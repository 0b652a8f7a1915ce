//! Reading the Spark job's input splits line by line, the per-line decisions' names and
//! counts, and the worklist columns of an evaluated partition ([`crate::arrow`] buffers).
//!
//! Input splits: an uncompressed NDJSON file is cut into byte ranges `[start, end)`; a line
//! belongs to the range that holds its first byte (so the range starting at `s > 0` skips the
//! line that began before `s`, and every range reads on past `end` to finish its last line), the
//! rule Hadoop's text reader follows. A gzip file cannot be cut (its bytes can only be read from
//! the start): it is one range, read whole (streamed).

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::arrow::{Column, IntBuilder, StrBuilder};
use crate::{DropReason, PyEngineError, Worklist, WORKLIST_COLUMNS};

/// The per-line decisions, in the order of `osteoguard.spark.LINE_ACTIONS`: `keep, key-only, shared, drop:blank,
/// drop:not-fhir, drop:irrelevant, drop:no-patient`.
pub const ACTIONS: [&str; 7] = [
    "keep",
    "key-only",
    "shared",
    "drop:blank",
    "drop:not-fhir",
    "drop:irrelevant",
    "drop:no-patient",
];

/// The index in [`ACTIONS`] of a dropped line's reason.
pub fn drop_index(r: DropReason) -> usize {
    match r {
        DropReason::Blank => 3,
        DropReason::NotFhir => 4,
        DropReason::Irrelevant => 5,
        DropReason::NoPatient => 6,
    }
}

/// A line without its trailing `\r` / `\n`.
pub fn trim_newline(line: &[u8]) -> &[u8] {
    let mut bytes = line;
    while let [rest @ .., b'\r' | b'\n'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Bytes read from a file at a time.
const CHUNK: usize = 4 << 20;

/// The (decompressed) bytes of `path`, a `.gz` file through its decoder.
fn open(path: &Path) -> Result<(Box<dyn Read>, bool), PyEngineError> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    Ok(if path.to_string_lossy().ends_with(".gz") {
        (Box::new(flate2::read::MultiGzDecoder::new(file)), true)
    } else {
        (Box::new(file), false)
    })
}

fn io_error(path: &Path, e: std::io::Error) -> PyEngineError {
    PyEngineError::Io(format!("{}: {e}", path.display()))
}

/// The number (from 1) of the line of `path` that starts at byte `offset` of its (decompressed)
/// text: the `\n`s before it, counted by reading the file up to there. For error messages
/// only (a map task that starts in the middle of a file does not know its line numbers).
pub fn line_number(path: &Path, offset: u64) -> Result<u64, PyEngineError> {
    let (r, _) = open(path)?;
    let mut r = BufReader::with_capacity(1 << 16, r.take(offset));
    let mut n = 1u64;
    loop {
        let buf = r.fill_buf().map_err(|e| io_error(path, e))?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += memchr::memchr_iter(b'\n', buf).count() as u64;
        let k = buf.len();
        r.consume(k);
    }
}

/// Calls `f(offset, line)` with every line of `path` that starts in `[start, end)` (`end: None`:
/// to the end of the file), without its `\n`, and the byte of the (decompressed) file it starts
/// at; a `.gz` file is read whole (`start` must be 0). Reads the file in large chunks and splits
/// them with `memchr` (screen's pass-1 way): no per-line read call, allocation or copy; a line
/// longer than a chunk grows the buffer.
pub fn for_each_line(
    path: &Path,
    start: u64,
    end: Option<u64>,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), PyEngineError>,
) -> Result<(), PyEngineError> {
    let io = |e: std::io::Error| io_error(path, e);
    let (mut reader, gz) = if path.to_string_lossy().ends_with(".gz") {
        if start != 0 {
            return Err(PyEngineError::Io(format!(
                "{}: a gzip file cannot be read from byte {start}",
                path.display()
            )));
        }
        open(path)?
    } else {
        // The first line of this range starts after the first `\n` at or after `start - 1`:
        // read from there and skip up to that `\n`.
        let mut file = std::fs::File::open(path).map_err(io)?;
        file.seek(SeekFrom::Start(start.saturating_sub(1)))
            .map_err(io)?;
        (Box::new(file) as Box<dyn Read>, false)
    };
    // The file's byte at `buf[0]` is `base + pos`.
    let base = if gz { 0 } else { start.saturating_sub(1) };
    let mut skip_first = !gz && start > 0;
    // Lines start in the range while their offset from `buf[0]`'s byte, `pos + i`, is below
    // `limit` (both counted from the byte the reading started at).
    let limit = end.map(|e| e.saturating_sub(start.saturating_sub(1)));
    let mut pos = 0u64;
    // A small range needs no full chunk (a line longer than the buffer grows it).
    let first = end.map_or(CHUNK, |e| {
        usize::try_from(e.saturating_sub(start))
            .unwrap_or(CHUNK)
            .saturating_add(1 << 12)
            .min(CHUNK)
    });
    let mut buf = vec![0u8; first];
    let mut held = 0; // `buf[..held]`: the start of a line whose end is not read yet
    loop {
        if held == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = reader.read(&mut buf[held..]).map_err(io)?;
        if n == 0 {
            // The end of the file: a last line without a final `\n`.
            if held > 0 && !skip_first && limit.is_none_or(|l| pos < l) {
                f(base + pos, &buf[..held])?;
            }
            return Ok(());
        }
        let filled = held + n;
        let mut s = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[held..filled]) {
            let nl = held + nl;
            if skip_first {
                skip_first = false;
            } else if limit.is_some_and(|l| pos + s as u64 >= l) {
                return Ok(());
            } else {
                f(base + pos + s as u64, &buf[s..nl])?;
            }
            s = nl + 1;
        }
        if limit.is_some_and(|l| pos + s as u64 >= l) {
            return Ok(());
        }
        buf.copy_within(s..filled, 0);
        held = filled - s;
        pos += s as u64;
    }
}

/// Where a worklist row goes: `0` the worklist, `1` listed apart as resolved, `2` listed apart
/// as a patient no longer in the export (screen's `resolved` and `absentPatients`).
pub const APART_LISTED: i64 = 0;
pub const APART_RESOLVED: i64 = 1;
pub const APART_ABSENT: i64 = 2;

/// The worklist of an evaluated batch of whole patients as columns: [`WORKLIST_COLUMNS`] (text
/// as screen's worklist.csv writes it, null for an empty field; `age` as int64), then
/// `_severity_rank`, `_patient_rank` (0 info … 3 critical) and `_apart` ([`APART_LISTED`] …).
/// Rows listed apart carry the fields screen's worklist.csv gives them
/// (`osteoguard_screen::output::csv_apart`).
pub fn columns(w: &Worklist) -> Result<Vec<Column>, PyEngineError> {
    let age_at = WORKLIST_COLUMNS.iter().position(|c| *c == "age");
    let mut text: Vec<StrBuilder> = WORKLIST_COLUMNS
        .iter()
        .map(|c| StrBuilder::new(c))
        .collect();
    let mut age = IntBuilder::int64("age");
    let mut rank = IntBuilder::int8("_severity_rank");
    let mut patient_rank = IntBuilder::int8("_patient_rank");
    let mut apart = IntBuilder::int8("_apart");
    let records = crate::worklist_records(&w.rows);
    let listed = records.iter().map(|r| {
        (
            r.fields.clone(),
            r.severity_rank,
            r.patient_rank,
            APART_LISTED,
        )
    });
    let resolved = w.resolved.iter().map(|r| {
        (
            osteoguard_screen::output::csv_apart(r),
            0,
            0,
            APART_RESOLVED,
        )
    });
    let absent = w
        .absent
        .iter()
        .map(|r| (osteoguard_screen::output::csv_apart(r), 0, 0, APART_ABSENT));
    for (fields, sr, pr, ap) in listed.chain(resolved).chain(absent) {
        for (i, (b, v)) in text.iter_mut().zip(&fields).enumerate() {
            if Some(i) == age_at {
                age.push(v.parse().ok());
                b.push(None)?;
            } else {
                b.push((!v.is_empty()).then_some(v.as_str()))?;
            }
        }
        rank.push(Some(i64::from(sr)));
        patient_rank.push(Some(i64::from(pr)));
        apart.push(Some(ap));
    }
    let mut out: Vec<Column> = text.into_iter().map(StrBuilder::finish).collect();
    if let Some(i) = age_at {
        out[i] = age.finish();
    }
    out.extend([rank.finish(), patient_rank.finish(), apart.finish()]);
    Ok(out)
}

//! The Spark job's plan of few, large rows (issue 21): the JVM moves blobs, Rust does the work.
//!
//! * **Map side** ([`Blobs`]): a task routes its input (a byte range of a file, or a batch of
//!   `spark.read.text` lines) with [`crate::classify_bytes`] and appends every kept line to the
//!   blob of its target partition (screen's `pass1::shard_of` of the patient id), every
//!   Medication to the task's medication blob. It returns ONE row per target partition:
//!   `(pkey, meds, lines, prev)`, `pkey` the Spark key that hash-partitions to that partition,
//!   `meds` the task's Medications (replicated into every partition's row: no separate collect
//!   job; they are few), `lines` the partition's lines. The shuffle then moves tasks × partitions
//!   rows, not lines. The previous run's rows (`--previous`) are packed the same way
//!   ([`pack_previous`]) into `prev`.
//! * **Reduce side** ([`worklist_of_blobs`]): all blobs of one partition in one call: grouped by
//!   patient, evaluated with screen's code (`crate::worklist_with_follow_up`), returned as one
//!   batch of worklist columns.
//!
//! Blob format: records `key_len: u32 LE, key, value_len: u32 LE, value` (the value a line
//! without its `\n`, a Medication's line, or a previous row's JSON; an empty value is a key
//! marker). Keys and values are UTF-8 (checked when read back).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use osteoguard_screen::pass1::shard_of;

use crate::arrow::{BinArray, Column, IntBuilder, StrArray, StrBuilder};
use crate::split::{drop_index, for_each_line, line_number, trim_newline};
use crate::{
    classify_bytes, worklist_with_follow_up, DropReason, LineAction, PreviousRows, PyEngineError,
    Worklist,
};

/// The blob columns' names, in order (after the `pkey` column).
pub const BLOB_COLUMNS: [&str; 3] = ["meds", "lines", "prev"];

fn put(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) -> Result<(), PyEngineError> {
    for part in [key, value] {
        let n = u32::try_from(part.len())
            .map_err(|_| PyEngineError::Arrow("a line longer than 4 GiB".into()))?;
        buf.extend_from_slice(&n.to_le_bytes());
        buf.extend_from_slice(part);
    }
    Ok(())
}

fn bad_blob(what: &str) -> PyEngineError {
    PyEngineError::Arrow(format!("blob: {what}"))
}

/// The next length-prefixed UTF-8 string of `rest` (which moves past it).
fn take<'a>(rest: &mut &'a [u8]) -> Result<&'a str, PyEngineError> {
    let cur: &'a [u8] = rest;
    let (len, tail) = cur
        .split_first_chunk::<4>()
        .ok_or_else(|| bad_blob("truncated length"))?;
    let n = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| bad_blob("length"))?;
    if tail.len() < n {
        return Err(bad_blob("truncated record"));
    }
    let (v, tail) = tail.split_at(n);
    *rest = tail;
    std::str::from_utf8(v).map_err(|_| bad_blob("not UTF-8"))
}

/// The records `(key, value)` of a blob, checked (lengths in range, UTF-8); reading stops at
/// the first error.
pub fn records<'a>(
    blob: &'a [u8],
) -> impl Iterator<Item = Result<(&'a str, &'a str), PyEngineError>> + 'a {
    let mut rest = blob;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let r = take(&mut rest).and_then(|k| take(&mut rest).map(|v| (k, v)));
        if r.is_err() {
            rest = &[];
        }
        Some(r)
    })
}

/// One map task's routed lines, one blob per target partition.
#[derive(Debug)]
pub struct Blobs {
    parts: Vec<Vec<u8>>,
    meds: Vec<u8>,
    marked: HashSet<String>,
    /// Lines per action ([`crate::split::ACTIONS`]).
    pub counts: [u64; 7],
    reader_filter: bool,
}

impl Blobs {
    /// `parts` target partitions (at least one).
    pub fn new(parts: usize, reader_filter: bool) -> Self {
        Blobs {
            parts: vec![Vec::new(); parts.max(1)],
            meds: Vec::new(),
            marked: HashSet::new(),
            counts: [0; 7],
            reader_filter,
        }
    }

    /// Routes one line ([`classify_bytes`]). A line that is not one JSON value (truncated, two
    /// values on one line, …) is refused as `osteoguard screen` refuses it
    /// ([`PyEngineError::BadLine`], its `at` left for the caller, who knows where the line is).
    pub fn push(&mut self, line: &[u8]) -> Result<(), PyEngineError> {
        let n = self.parts.len();
        match classify_bytes(line, self.reader_filter) {
            LineAction::Keep(k) => {
                self.counts[0] += 1;
                put(
                    &mut self.parts[shard_of(&k, n)],
                    k.as_bytes(),
                    utf8_text(line)?.as_bytes(),
                )?;
            }
            LineAction::KeyOnly(k) => {
                self.counts[1] += 1;
                if !self.marked.contains(&k) {
                    put(&mut self.parts[shard_of(&k, n)], k.as_bytes(), b"")?;
                    self.marked.insert(k);
                }
            }
            LineAction::Shared(k) => {
                self.counts[2] += 1;
                put(&mut self.meds, k.as_bytes(), utf8_text(line)?.as_bytes())?;
            }
            LineAction::Drop(DropReason::NotFhir) => {
                // Screen's pass 1 refuses a line here when it is not JSON at all (its router
                // neither dropped it at byte level — which checks the JSON — nor could read a
                // type): the same decisions in the same order, so the same lines are refused.
                if let Some((column, message)) = not_json(line) {
                    return Err(PyEngineError::BadLine {
                        at: String::new(),
                        column: Some(column),
                        message,
                    });
                }
                self.counts[drop_index(DropReason::NotFhir)] += 1;
            }
            LineAction::Drop(r) => self.counts[drop_index(r)] += 1,
        }
        Ok(())
    }

    /// The rows `(pkey, meds, lines, prev)`: one per target partition that has lines, or every
    /// partition when the task read Medications (each partition needs them all). `pkeys[i]` is
    /// the Spark key of partition `i`.
    pub fn finish(self, pkeys: &[i64]) -> Result<(Vec<Column>, [u64; 7]), PyEngineError> {
        if pkeys.len() != self.parts.len() {
            return Err(PyEngineError::Shape {
                what: "partition keys",
                count: pkeys.len(),
                expected: self.parts.len(),
            });
        }
        let mut pkey = IntBuilder::int64("pkey");
        let mut meds = StrBuilder::binary(BLOB_COLUMNS[0]);
        let mut lines = StrBuilder::binary(BLOB_COLUMNS[1]);
        let mut prev = StrBuilder::binary(BLOB_COLUMNS[2]);
        for (part, k) in self.parts.iter().zip(pkeys) {
            if part.is_empty() && self.meds.is_empty() {
                continue;
            }
            pkey.push(Some(*k));
            meds.push_bytes(Some(&self.meds))?;
            lines.push_bytes(Some(part))?;
            prev.push_bytes(Some(&[]))?;
        }
        Ok((
            vec![pkey.finish(), meds.finish(), lines.finish(), prev.finish()],
            self.counts,
        ))
    }
}

/// Where a line that is not JSON stands: `(column, "not valid JSON: reason (resource …, field
/// …)")`, worded as `osteoguard screen` and `assess` word it; `None` when the line is one JSON
/// value. The line is without its `\n`.
pub fn not_json(line: &[u8]) -> Option<(usize, String)> {
    osteoguard_screen::route::not_json_line(trim_newline(line))
}

/// A kept line as text (without its `\r` / `\n`). A line that is not UTF-8 is refused as
/// `assess` refuses it (`not valid JSON: invalid UTF-8 at byte …`) rather than shipped with its
/// bytes replaced: the evaluation would read another text than the export's.
fn utf8_text(line: &[u8]) -> Result<&str, PyEngineError> {
    osteoguard_screen::route::utf8_line(trim_newline(line)).map_err(|message| {
        PyEngineError::BadLine {
            at: String::new(),
            column: None,
            message,
        }
    })
}

/// `e` with the place of its line filled in (a [`PyEngineError::BadLine`] from [`Blobs::push`]).
fn located(e: PyEngineError, at: impl FnOnce() -> String) -> PyEngineError {
    match e {
        PyEngineError::BadLine {
            column, message, ..
        } => PyEngineError::BadLine {
            at: at(),
            column,
            message,
        },
        e => e,
    }
}

/// Routes the lines of `path` that start in `[start, end)` into blobs for `parts` partitions
/// (a `.gz` file whole: see [`for_each_line`]). A line that is not JSON fails the task with
/// `path:line` (as screen names it; the line number counted only then).
pub fn route_range_blobs(
    path: &Path,
    start: u64,
    end: Option<u64>,
    parts: usize,
    reader_filter: bool,
) -> Result<Blobs, PyEngineError> {
    let mut b = Blobs::new(parts, reader_filter);
    for_each_line(path, start, end, |offset, line| {
        b.push(line).map_err(|e| {
            located(e, || match line_number(path, offset) {
                Ok(n) => format!("{}:{n}", path.display()),
                Err(_) => format!("{} (byte {offset})", path.display()),
            })
        })
    })?;
    Ok(b)
}

/// Routes every line of `utf8` arrays (the batches of a `spark.read.text` partition) into blobs;
/// `files[i]`, when given, names the file of `arrays[i]`'s lines (`input_file_name()`), for the
/// message of a line that is not JSON (`spark.read.text` gives no line numbers).
pub fn route_arrays_blobs(
    arrays: &[StrArray<'_>],
    files: Option<&[StrArray<'_>]>,
    parts: usize,
    reader_filter: bool,
) -> Result<Blobs, PyEngineError> {
    let mut b = Blobs::new(parts, reader_filter);
    for (j, a) in arrays.iter().enumerate() {
        for i in 0..a.len() {
            b.push(a.get(i).unwrap_or("").as_bytes()).map_err(|e| {
                located(e, || {
                    let file = files
                        .and_then(|f| f.get(j))
                        .and_then(|f| (i < f.len()).then(|| f.get(i)).flatten())
                        .filter(|f| !f.is_empty())
                        .unwrap_or("the input");
                    format!("{file} (line number not known: spark.read.text)")
                })
            })?;
        }
    }
    Ok(b)
}

/// The previous run's rows `(key, prev JSON)` packed as blob rows (`prev` filled, `meds` and
/// `lines` empty), one per target partition that has rows.
pub fn pack_previous(
    keys: &StrArray<'_>,
    prev: &StrArray<'_>,
    pkeys: &[i64],
) -> Result<Vec<Column>, PyEngineError> {
    if keys.len() != prev.len() {
        return Err(PyEngineError::Shape {
            what: "previous rows",
            count: prev.len(),
            expected: keys.len(),
        });
    }
    let n = pkeys.len().max(1);
    let mut parts = vec![Vec::new(); n];
    for i in 0..keys.len() {
        if let (Some(k), Some(v)) = (keys.get(i), prev.get(i)) {
            put(&mut parts[shard_of(k, n)], k.as_bytes(), v.as_bytes())?;
        }
    }
    let mut pkey = IntBuilder::int64("pkey");
    let mut meds = StrBuilder::binary(BLOB_COLUMNS[0]);
    let mut lines = StrBuilder::binary(BLOB_COLUMNS[1]);
    let mut prevs = StrBuilder::binary(BLOB_COLUMNS[2]);
    for (part, k) in parts.iter().zip(pkeys) {
        if part.is_empty() {
            continue;
        }
        pkey.push(Some(*k));
        meds.push_bytes(Some(&[]))?;
        lines.push_bytes(Some(&[]))?;
        prevs.push_bytes(Some(part))?;
    }
    Ok(vec![
        pkey.finish(),
        meds.finish(),
        lines.finish(),
        prevs.finish(),
    ])
}

/// One partition's blobs, as arrays of its Arrow batches.
pub struct PartitionBlobs<'a> {
    pub meds: Vec<BinArray<'a>>,
    pub lines: Vec<BinArray<'a>>,
    pub prev: Vec<BinArray<'a>>,
}

fn each_record<'a>(
    arrays: &[BinArray<'a>],
    mut f: impl FnMut(&'a str, &'a str),
) -> Result<(), PyEngineError> {
    for a in arrays {
        for i in 0..a.len() {
            for r in records(a.get(i)) {
                let (k, v) = r?;
                f(k, v);
            }
        }
    }
    Ok(())
}

/// The worklist of one partition's blobs: its patients grouped (in key order), evaluated with
/// screen's code and statuses ([`worklist_with_follow_up`]; with `prev_as_of`, the previous
/// run's rows in the `prev` blobs give the statuses).
pub fn worklist_of_blobs(
    blobs: &PartitionBlobs<'_>,
    prev_as_of: Option<&str>,
    as_of: &str,
    config_toml: Option<&str>,
) -> Result<Worklist, PyEngineError> {
    // Each map task's Medications reach each partition once (screen's store keeps one resource
    // per id however often it is given).
    let mut shared: Vec<(String, String)> = Vec::new();
    each_record(&blobs.meds, |k, v| {
        shared.push((k.to_string(), v.to_string()))
    })?;
    let mut groups: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    each_record(&blobs.lines, |k, v| groups.entry(k).or_default().0.push(v))?;
    if prev_as_of.is_some() {
        each_record(&blobs.prev, |k, v| groups.entry(k).or_default().1.push(v))?;
    }
    let mut keys = Vec::with_capacity(groups.len());
    let mut lines = Vec::with_capacity(groups.len());
    let mut prev = Vec::with_capacity(groups.len());
    for (k, (l, p)) in groups {
        keys.push(k);
        lines.push(l);
        prev.push(p);
    }
    let previous = prev_as_of.map(|as_of| PreviousRows {
        as_of,
        groups: &prev,
    });
    worklist_with_follow_up(&keys, &lines, previous, &shared, as_of, config_toml)
}

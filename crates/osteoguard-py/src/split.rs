//! The Spark job's two per-batch steps on Arrow buffers ([`crate::arrow`]): routing lines (from
//! a byte range of an export file, or from a batch of `spark.read.text` lines) and making the
//! worklist columns of a batch of whole patients.
//!
//! Input splits: an uncompressed NDJSON file is cut into byte ranges `[start, end)`; a line
//! belongs to the range that holds its first byte (so the range starting at `s > 0` skips the
//! line that began before `s`, and every range reads on past `end` to finish its last line), the
//! rule Hadoop's text reader follows. A gzip file cannot be cut (its bytes can only be read from
//! the start): it is one range, read whole (streamed).

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::arrow::{Column, IntBuilder, ListArray, StrArray, StrBuilder};
use crate::{
    classify_bytes, worklist_with_follow_up, DropReason, LineAction, PreviousRows, PyEngineError,
    Worklist, WORKLIST_COLUMNS,
};

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

/// `kind` of a routed row: a line (or a key marker: an empty line) of a patient's group.
pub const KIND_PATIENT: i64 = 0;
/// `kind` of a routed row: a Medication resource, joined to the groups that name it.
pub const KIND_SHARED: i64 = 1;

/// The routed rows of a batch: `kind`, `key`, `line` columns, and how many lines took each
/// action ([`ACTIONS`]).
pub struct Routed {
    kind: IntBuilder,
    key: StrBuilder,
    line: StrBuilder,
    marked: HashSet<String>,
    pub counts: [u64; 7],
    /// Also ask the FHIR reader whether it uses a line the router keeps (a second parse of the
    /// line, for a smaller shuffle); without, the router's decision alone, as screen's pass 1.
    reader_filter: bool,
}

impl Routed {
    pub fn new(reader_filter: bool) -> Self {
        Routed {
            reader_filter,
            kind: IntBuilder::int8("kind"),
            key: StrBuilder::new("key"),
            line: StrBuilder::new("line"),
            marked: HashSet::new(),
            counts: [0; 7],
        }
    }
    /// Routes one line ([`crate::classify_line`]): kept lines go to their patient's group, a
    /// line that cannot change a finding sends its patient id once (an empty line: a key
    /// marker).
    pub fn push(&mut self, line: &str) -> Result<(), PyEngineError> {
        self.push_bytes(line.as_bytes())
    }
    /// [`Routed::push`] on the bytes of a line (a kept line that is not UTF-8 is shipped with
    /// its invalid bytes replaced, as Spark's text reader would).
    pub fn push_bytes(&mut self, line: &[u8]) -> Result<(), PyEngineError> {
        let (i, row) = match classify_bytes(line, self.reader_filter) {
            LineAction::Keep(k) => (0, Some((KIND_PATIENT, k, line))),
            LineAction::KeyOnly(k) => {
                if self.marked.insert(k.clone()) {
                    (1, Some((KIND_PATIENT, k, &b""[..])))
                } else {
                    (1, None)
                }
            }
            LineAction::Shared(k) => (2, Some((KIND_SHARED, k, line))),
            LineAction::Drop(r) => (drop_index(r), None),
        };
        self.counts[i] += 1;
        if let Some((kind, key, text)) = row {
            self.kind.push(Some(kind));
            self.key.push(Some(&key))?;
            self.line.push(Some(&line_text(text)))?;
        }
        Ok(())
    }
    pub fn finish(self) -> (Vec<Column>, [u64; 7]) {
        (
            vec![self.kind.finish(), self.key.finish(), self.line.finish()],
            self.counts,
        )
    }
}

/// The index in [`ACTIONS`] of a dropped line's reason.
pub fn drop_index(r: DropReason) -> usize {
    match r {
        DropReason::Blank => 3,
        DropReason::NotFhir => 4,
        DropReason::Irrelevant => 5,
        DropReason::NoPatient => 6,
    }
}

/// A line as text: without its trailing `\r` / `\n`, invalid UTF-8 replaced (a copy only then).
pub fn line_text(line: &[u8]) -> std::borrow::Cow<'_, str> {
    let mut bytes = line;
    while let [rest @ .., b'\r' | b'\n'] = bytes {
        bytes = rest;
    }
    String::from_utf8_lossy(bytes)
}

/// Routes every line of a `utf8` array (a batch of `spark.read.text`); null lines are blank.
pub fn route_array(lines: &StrArray<'_>, reader_filter: bool) -> Result<Routed, PyEngineError> {
    let mut r = Routed::new(reader_filter);
    for i in 0..lines.len() {
        r.push(lines.get(i).unwrap_or(""))?;
    }
    Ok(r)
}

/// Routes the lines of `path` that start in `[start, end)` (`end: None`: to the end of the
/// file). A `.gz` file is read whole, from its start (`start` must be 0).
pub fn route_range(
    path: &Path,
    start: u64,
    end: Option<u64>,
    reader_filter: bool,
) -> Result<Routed, PyEngineError> {
    let mut r = Routed::new(reader_filter);
    for_each_line(path, start, end, |line| r.push_bytes(line))?;
    Ok(r)
}

/// Bytes read from a file at a time.
const CHUNK: usize = 4 << 20;

/// Calls `f` with every line of `path` that starts in `[start, end)` (`end: None`: to the end of
/// the file), without its `\n`; a `.gz` file is read whole (`start` must be 0). Reads the file
/// in large chunks and splits them with `memchr` (screen's pass-1 way): no per-line read call,
/// allocation or copy; a line longer than a chunk grows the buffer.
pub fn for_each_line(
    path: &Path,
    start: u64,
    end: Option<u64>,
    mut f: impl FnMut(&[u8]) -> Result<(), PyEngineError>,
) -> Result<(), PyEngineError> {
    let io = |e: std::io::Error| PyEngineError::Io(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let gz = path.to_string_lossy().ends_with(".gz");
    let mut reader: Box<dyn Read> = if gz {
        if start != 0 {
            return Err(PyEngineError::Io(format!(
                "{}: a gzip file cannot be read from byte {start}",
                path.display()
            )));
        }
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        // The first line of this range starts after the first `\n` at or after `start - 1`:
        // read from there and skip up to that `\n`.
        file.seek(SeekFrom::Start(start.saturating_sub(1)))
            .map_err(io)?;
        Box::new(file)
    };
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
                f(&buf[..held])?;
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
                f(&buf[s..nl])?;
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

/// The worklist of a batch of whole patients as columns: [`WORKLIST_COLUMNS`] (text as
/// screen's worklist.csv writes it, null for an empty field; `age` as int64), then
/// `_severity_rank`, `_patient_rank` (0 info … 3 critical) and `_apart` ([`APART_LISTED`] …).
/// Rows listed apart carry the fields screen's worklist.csv gives them
/// (`osteoguard_screen::output::csv_apart`).
pub fn worklist_columns(
    keys: &StrArray<'_>,
    groups: &ListArray<'_>,
    previous: Option<(&str, &ListArray<'_>)>,
    shared: &[(String, String)],
    as_of: &str,
    config_toml: Option<&str>,
) -> Result<Vec<Column>, PyEngineError> {
    let n = keys.len();
    if groups.len() != n {
        return Err(PyEngineError::Shape {
            what: "groups",
            count: groups.len(),
            expected: n,
        });
    }
    let key_list: Vec<&str> = (0..n).map(|i| keys.get(i).unwrap_or("")).collect();
    let group_list: Vec<Vec<&str>> = (0..n).map(|i| groups.get(i)).collect();
    let prev_list: Option<Vec<Vec<&str>>> =
        previous.map(|(_, p)| (0..n).map(|i| p.get(i)).collect());
    let prev = match (previous, &prev_list) {
        (Some((as_of, _)), Some(groups)) => Some(PreviousRows { as_of, groups }),
        _ => None,
    };
    let w = worklist_with_follow_up(&key_list, &group_list, prev, shared, as_of, config_toml)?;
    columns(&w)
}

/// [`worklist_columns`]'s output for a computed [`Worklist`].
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

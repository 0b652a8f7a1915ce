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
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use crate::arrow::{Column, IntBuilder, ListArray, StrArray, StrBuilder};
use crate::{
    classify_line_with, worklist_with_follow_up, DropReason, LineAction, PreviousRows,
    PyEngineError, Worklist, WORKLIST_COLUMNS,
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
    /// Routes one line ([`classify_line`]): kept lines go to their patient's group, a line that
    /// cannot change a finding sends its patient id once (an empty line: a key marker).
    pub fn push(&mut self, line: &str) -> Result<(), PyEngineError> {
        let (i, row) = match classify_line_with(line, self.reader_filter) {
            LineAction::Keep(k) => (0, Some((KIND_PATIENT, k, line))),
            LineAction::KeyOnly(k) => {
                if self.marked.insert(k.clone()) {
                    (1, Some((KIND_PATIENT, k, "")))
                } else {
                    (1, None)
                }
            }
            LineAction::Shared(k) => (2, Some((KIND_SHARED, k, line))),
            LineAction::Drop(r) => (
                match r {
                    DropReason::Blank => 3,
                    DropReason::NotFhir => 4,
                    DropReason::Irrelevant => 5,
                    DropReason::NoPatient => 6,
                },
                None,
            ),
        };
        self.counts[i] += 1;
        if let Some((kind, key, text)) = row {
            self.kind.push(Some(kind));
            self.key.push(Some(&key))?;
            self.line.push(Some(text.trim_end_matches(['\r', '\n'])))?;
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
    let io = |e: std::io::Error| PyEngineError::Io(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let gz = path.to_string_lossy().ends_with(".gz");
    let mut r = Routed::new(reader_filter);
    let mut buf = Vec::with_capacity(1 << 16);
    if gz {
        if start != 0 {
            return Err(PyEngineError::Io(format!(
                "{}: a gzip file cannot be read from byte {start}",
                path.display()
            )));
        }
        let mut rd = BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(file));
        loop {
            buf.clear();
            if rd.read_until(b'\n', &mut buf).map_err(io)? == 0 {
                break;
            }
            r.push(&String::from_utf8_lossy(&buf))?;
        }
        return Ok(r);
    }
    // The first line of this range starts after the first `\n` at or after `start - 1`.
    let mut pos = start.saturating_sub(1);
    file.seek(SeekFrom::Start(pos)).map_err(io)?;
    let mut rd = BufReader::with_capacity(1 << 20, file);
    if start > 0 {
        let skipped = rd.read_until(b'\n', &mut buf).map_err(io)?;
        pos += skipped as u64;
        buf.clear();
    }
    while end.is_none_or(|e| pos < e) {
        buf.clear();
        let n = rd.read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        r.push(&String::from_utf8_lossy(&buf))?;
    }
    Ok(r)
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

//! # osteoguard-py — the osteoguard engine for Python and Apache Spark
//!
//! What goes in: FHIR R4 resources as NDJSON lines (strings), an as-of date and, optionally, a
//! site configuration (TOML text). What comes out: the `osteoguard.assessment/1` JSON of one
//! patient ([`assess_lines`]), or the worklist rows of many patients in one call
//! ([`worklist_for_groups`], the vectorised entry point a Spark executor calls once per Arrow
//! batch), plus the per-line decision the Spark job takes *before* the shuffle
//! ([`classify_line`]): which patient a line belongs to, and whether any rule can use it.
//!
//! Data flow on Spark (see `docs/spark.md`): NDJSON lines → [`classify_line`] on the executors
//! (drop what no rule uses) → shuffle by patient id → [`worklist_for_groups`] per batch of
//! patients → Parquet / CSV sorted in worklist order.
//!
//! *Invariant:* no clinical logic and no second copy of a decision lives here. The routing is
//! `osteoguard screen`'s pass-1 router (`osteoguard_screen::route::decide`) refined by the FHIR
//! reader's own disposition ([`reader_uses`]); evaluation and rows are screen's
//! (`osteoguard_screen::pass2::assess_patient`, `output::csv_record`), which call
//! `osteoguard_fhir::read_resources` and `osteoguard_core::assess_with_issues`. So `screen` and
//! the Spark job give the same worklist by construction; the tests check it on real exports.
//!
//! *Invariant:* without the `extension-module` feature this crate has no Python dependency at
//! all, so `cargo test --workspace` needs no Python development setup; maturin turns the feature
//! on (python/pyproject.toml).
//!
//! ```
//! let lines = vec![
//!     r#"{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1950-03-15"}"#.to_string(),
//! ];
//! let a = osteoguard_py::assess_lines(&lines, "2023-06-15", None, None).unwrap();
//! assert_eq!(a.schema, "osteoguard.assessment/1");
//! assert_eq!(a.patient.age_years, Some(73));
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use osteoguard_core::follow_up::Status;
use osteoguard_core::Severity;
use osteoguard_core::{assess_with_issues, Assessment, Config, ConfigError};
use osteoguard_fhir::read_resources;
use osteoguard_screen::output::{csv_record, PreviousReader, Registry, Resolved, RunInfo};
use osteoguard_screen::pass2::{assess_patient, MedicationStore, Pass2Stats, Row};
use osteoguard_screen::route::{self, Decision};
use serde_json::{json, Value};

pub mod arrow;
pub mod blobs;
#[cfg(feature = "extension-module")]
mod python;
pub mod split;

/// Top-level tables of a site configuration file that belong to other components.
const OTHER_SECTIONS: &[&str] = &["server", "screen", "spark"];

#[derive(Debug, thiserror::Error)]
pub enum PyEngineError {
    #[error("as-of date {0:?} is not YYYY-MM-DD")]
    AsOf(String),
    /// The cause is in the message, not also a `source` (a printed chain would repeat it).
    #[error("site configuration: {0}")]
    Config(ConfigError),
    #[error("line {line}: not valid JSON: {message}")]
    Json { line: usize, message: String },
    /// A line of the input that is not one JSON value, refused as `osteoguard screen` and
    /// `assess` refuse it: `at` is `file:line` (what is known of where it is), `message`
    /// `not valid JSON: … (resource …, field …)`.
    #[error("{at}{}: {message}", .column.map_or(String::new(), |c| format!(":{c}")))]
    BadLine {
        at: String,
        column: Option<usize>,
        message: String,
    },
    #[error("no patient in the input")]
    NoPatient,
    #[error("{count} patients in the input ({ids}); name one")]
    SeveralPatients { count: usize, ids: String },
    #[error("patient {0:?} is not in the input")]
    UnknownPatient(String),
    #[error("medication store: {0}")]
    Io(String),
    #[error("Arrow batch: {0}")]
    Arrow(String),
    #[error("previous run: {0}")]
    Previous(String),
    #[error("{what}: {count} values for {expected} patients")]
    Shape {
        what: &'static str,
        count: usize,
        expected: usize,
    },
}

pub fn parse_as_of(as_of: &str) -> Result<NaiveDate, PyEngineError> {
    NaiveDate::parse_from_str(as_of.trim(), "%Y-%m-%d")
        .map_err(|_| PyEngineError::AsOf(as_of.to_string()))
}

/// The default configuration, or a validated site configuration (TOML text).
pub fn parse_config(toml: Option<&str>) -> Result<Config, PyEngineError> {
    match toml {
        None => Ok(Config::default()),
        Some(text) => {
            Config::from_toml_str_allowing(text, OTHER_SECTIONS).map_err(PyEngineError::Config)
        }
    }
}

fn parse_lines(lines: &[String]) -> Result<Vec<Value>, PyEngineError> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| PyEngineError::Json {
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Assesses one patient from NDJSON lines (`osteoguard.assess` in Python). With several patients
/// in the lines, `patient` names the one to assess.
pub fn assess_lines(
    lines: &[String],
    as_of: &str,
    patient: Option<&str>,
    config_toml: Option<&str>,
) -> Result<Assessment, PyEngineError> {
    let as_of = parse_as_of(as_of)?;
    let config = parse_config(config_toml)?;
    let out = read_resources(parse_lines(lines)?);
    let pd = match (patient, out.patients.len()) {
        (Some(id), _) => out
            .patient(id)
            .ok_or_else(|| PyEngineError::UnknownPatient(id.to_string()))?,
        (None, 0) => return Err(PyEngineError::NoPatient),
        (None, 1) => &out.patients[0],
        (None, n) => {
            return Err(PyEngineError::SeveralPatients {
                count: n,
                ids: out
                    .patients
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    };
    Ok(assess_with_issues(&pd.record, &pd.issues, as_of, &config))
}

// ---------------------------------------------------------------------------------------------
// Per-line decisions taken on the executors before the shuffle
// ---------------------------------------------------------------------------------------------

/// Whether the FHIR reader can use this resource: its own disposition of it, read alone.
/// `Ignored` means no rule reads it (other codes, other types); `Used` and `NotUnderstood`
/// (relevant-looking, with a data-quality issue) count as relevant. Patients and Medications
/// (which the reader only uses through a medication record naming them) are relevant.
///
/// Until osteoguard-fhir exposes a per-resource disposition, this asks
/// `osteoguard_fhir::read_resources` about the one resource and reads its per-type counts: the
/// decision is the reader's, not a copy of its value sets.
pub fn reader_uses(resource: Value) -> bool {
    let arena = osteoguard_fhir::json::Arena::new();
    reader_uses_parsed(osteoguard_fhir::json::Value::from_serde(&arena, &resource))
}

/// [`reader_uses`] on the reader's own borrowed tree (what the routing parses a line into: the
/// tree `read_resources` would build from the `serde_json::Value`, without building that).
fn reader_uses_parsed(resource: osteoguard_fhir::json::Value<'_>) -> bool {
    let ty = resource
        .get("resourceType")
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string();
    match ty.as_str() {
        "" => false,
        "Patient" | "Medication" => true,
        _ => {
            let out = osteoguard_fhir::read_parsed(vec![resource]);
            out.stats
                .by_type
                .get(&ty)
                .is_some_and(|c| c.used > 0 || c.not_understood > 0)
        }
    }
}

/// What the Spark job does with one NDJSON line before the shuffle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineAction {
    /// Ship the line to the group of this patient id.
    Keep(String),
    /// Ship only the patient id: screen's router keeps the line but the reader ignores it, so
    /// it cannot change a finding; it can still make the reader create a placeholder patient
    /// when the export has no Patient of this id, which the key alone reproduces.
    KeyOnly(String),
    /// A Medication (no patient of its own), joined to the groups that name it (by id).
    Shared(String),
    /// Nothing of it can reach a worklist.
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    Blank,
    /// Not JSON, or JSON without `resourceType` (e.g. a bulk-data `log.ndjson` line).
    NotFhir,
    /// A type or code no rule reads.
    Irrelevant,
    /// Readable by a rule but without a usable patient reference (screen counts it unattached).
    NoPatient,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Blank => "blank",
            DropReason::NotFhir => "not-fhir",
            DropReason::Irrelevant => "irrelevant",
            DropReason::NoPatient => "no-patient",
        }
    }
}

/// The per-line decision: `osteoguard screen`'s pass-1 router (`route::decide`: patient id,
/// types and codes no rule reads), then the FHIR reader's own disposition ([`reader_uses`]) of
/// what the router keeps. Same input, same decision, on any executor.
pub fn classify_line(line: &str) -> LineAction {
    classify_line_with(line, true)
}

/// [`classify_line`], with the reader's disposition (`reader_filter`) or with screen's pass-1
/// router alone — what screen itself ships to pass 2: a line the router keeps is then kept
/// whole, so no line is parsed twice (the reader ignores the same lines in the evaluation).
pub fn classify_line_with(line: &str, reader_filter: bool) -> LineAction {
    classify_bytes(line.as_bytes(), reader_filter)
}

/// [`classify_line_with`] on the bytes of a line (what the executors read; a trailing `\r` /
/// `\n` is ignored). A line screen's pass 1 drops without parsing (`route::fast_ignored`: a
/// prefix compare and a few `memmem` scans) is dropped here the same way; the rest is peeked.
pub fn classify_bytes(line: &[u8], reader_filter: bool) -> LineAction {
    let bytes = split::trim_newline(line);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return LineAction::Drop(DropReason::Blank);
    }
    if route::fast_ignored(bytes).is_some() {
        return LineAction::Drop(DropReason::Irrelevant);
    }
    let decision = match route::peek(bytes) {
        Some(p) if p.resource_type.is_some() => route::decide(&p),
        Some(_) => return LineAction::Drop(DropReason::NotFhir),
        None => match route::decide_slow(bytes) {
            Some((_, d)) => d,
            None => return LineAction::Drop(DropReason::NotFhir),
        },
    };
    match decision {
        Decision::Ignored => LineAction::Drop(DropReason::Irrelevant),
        Decision::Unattached => LineAction::Drop(DropReason::NoPatient),
        Decision::Medication(id) => LineAction::Shared(id),
        Decision::Patient(id) if !reader_filter => LineAction::Keep(id),
        Decision::Patient(id) => {
            let arena = osteoguard_fhir::json::Arena::new();
            let used = match osteoguard_fhir::json::parse(&arena, bytes) {
                Ok(v) => reader_uses_parsed(v),
                // Unparsable lines go to their group: screen counts them there.
                Err(_) => true,
            };
            if used {
                LineAction::Keep(id)
            } else {
                LineAction::KeyOnly(id)
            }
        }
    }
}

/// `osteoguard.is_relevant(line)`: whether the Spark job ships this line to an executor that
/// evaluates its patient ([`classify_line`] keeps it, or joins it as a Medication).
pub fn is_relevant(line: &str) -> bool {
    matches!(
        classify_line(line),
        LineAction::Keep(_) | LineAction::Shared(_)
    )
}

// ---------------------------------------------------------------------------------------------
// Worklist rows (screen's own)
// ---------------------------------------------------------------------------------------------

/// The worklist columns, in order: `osteoguard screen`'s worklist.csv header.
pub const WORKLIST_COLUMNS: [&str; osteoguard_screen::output::CSV_COLUMNS] =
    osteoguard_screen::output::CSV_HEADER;

/// One worklist row as screen's worklist.csv writes it, plus the severity rank for sorting.
#[derive(Debug, Clone, PartialEq)]
pub struct WorklistRecord {
    pub fields: [String; osteoguard_screen::output::CSV_COLUMNS],
    /// 0 info … 3 critical (worklist order: most severe first).
    pub severity_rank: u8,
    /// The same for the patient's gravest finding (the worklist is one block per patient).
    pub patient_rank: u8,
}

/// The rows of many patients in one call (the vectorised entry point): `groups[i]` holds the
/// NDJSON lines of patient id `keys[i]`, in any order (sorted here, as screen sorts a shard, so
/// the result does not depend on the shuffle). `shared` holds `(id, line)` of the Medication
/// resources; each group gets those it names. Rows come per patient, in input order; the caller
/// sorts globally by [`osteoguard_screen::pass2::sort_key`]'s order. `status` is left empty (it
/// is the run registry's; [`worklist_with_follow_up`] fills it in).
pub fn worklist_for_groups(
    keys: &[String],
    groups: &[Vec<String>],
    shared: &[(String, String)],
    as_of: &str,
    config_toml: Option<&str>,
) -> Result<Vec<Row>, PyEngineError> {
    evaluate(keys, groups, None, shared, as_of, config_toml, false).map(|w| w.rows)
}

/// What the previous run listed for the patients of a batch (the Spark job's `--previous`): its
/// as-of date and, per group, its rows as JSON objects with the previous worklist's columns
/// `finding_code`, `severity`, `due_date`, `summary`, `evidence`, `status` (what screen's run
/// registry keeps of a row).
#[derive(Debug, Clone, Copy)]
pub struct PreviousRows<'a, S> {
    pub as_of: &'a str,
    pub groups: &'a [Vec<S>],
}

/// One batch's worklist with statuses: the listed rows (screen's worklist.csv rows) and the
/// previous findings listed apart (screen's `resolved` and `absentPatients`).
#[derive(Debug, Default)]
pub struct Worklist {
    pub rows: Vec<Row>,
    /// Previous findings gone with positive evidence (or every input available): `resolved`.
    pub resolved: Vec<Resolved>,
    /// Open previous findings of patients not in this export: `recheck-needed`.
    pub absent: Vec<Resolved>,
}

#[derive(serde::Deserialize)]
struct PreviousRow {
    finding_code: String,
    severity: String,
    #[serde(default)]
    due_date: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    evidence: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// The previous run as screen keeps it: a run registry (screen's own, in a temporary file) with
/// the previous rows as one run and this batch as the next. Statuses are then decided exactly
/// as screen decides them: `pass2::assess_patient` reads each patient's open findings through
/// `output::PreviousReader` and calls `osteoguard_core::follow_up::follow_up`, and
/// `Registry::absent_patients` lists the patients that are gone.
struct FollowUpRegistry {
    registry: Registry,
    reader: PreviousReader,
    _dir: tempfile::TempDir,
}

fn run_info(as_of: &str) -> RunInfo<'_> {
    RunInfo {
        started_unix: 0,
        as_of,
        export_dir: "osteoguard-spark",
        config_hash: "",
        transaction_time: None,
        manifest_errors: 0,
    }
}

impl FollowUpRegistry {
    fn open<S: AsRef<str>>(
        keys: &[S],
        previous: PreviousRows<'_, S>,
        as_of: &str,
    ) -> Result<Self, PyEngineError> {
        let prev_as_of = parse_as_of(previous.as_of)?;
        let io = |e: osteoguard_screen::ScreenError| PyEngineError::Io(e.to_string());
        let dir = tempfile::Builder::new()
            .prefix("osteoguard-spark-registry-")
            .tempdir()
            .map_err(|e| PyEngineError::Io(e.to_string()))?;
        let path = dir.path().join("registry.sqlite");
        let before = Registry::open(&path, &run_info(previous.as_of))?;
        let before_id = before.run_id;
        for (key, rows) in keys.iter().zip(previous.groups) {
            for text in rows {
                let p: PreviousRow = serde_json::from_str(text.as_ref())
                    .map_err(|e| PyEngineError::Previous(format!("{}: {e}", key.as_ref())))?;
                let severity = Severity::parse(&p.severity).ok_or_else(|| {
                    PyEngineError::Previous(format!(
                        "{}: unknown severity {:?}",
                        key.as_ref(),
                        p.severity
                    ))
                })?;
                before
                    .record(&previous_row(key.as_ref(), p, severity))
                    .map_err(io)?;
            }
        }
        before.commit(0, 0).map_err(io)?;
        let registry = Registry::open(&path, &run_info(as_of))?;
        let reader = PreviousReader::open(&path, before_id, prev_as_of).map_err(io)?;
        Ok(FollowUpRegistry {
            registry,
            reader,
            _dir: dir,
        })
    }
}

impl From<osteoguard_screen::ScreenError> for PyEngineError {
    fn from(e: osteoguard_screen::ScreenError) -> Self {
        PyEngineError::Io(e.to_string())
    }
}

/// A previous worklist row as screen's registry keeps it (what `Registry::record` stores).
fn previous_row(patient: &str, p: PreviousRow, severity: Severity) -> Row {
    Row {
        patient_id: patient.to_string(),
        age: None,
        sex: String::new(),
        code: p.finding_code,
        severity,
        title: String::new(),
        summary: p.summary.unwrap_or_default(),
        due: p.due_date.and_then(|d| d.parse().ok()),
        evidence: p
            .evidence
            .unwrap_or_default()
            .split(' ')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        risk_category: String::new(),
        status: p.status.filter(|s| !s.is_empty()),
        provenance: String::new(),
        data_quality: Vec::new(),
        status_reason: None,
        name: String::new(),
        mrn: String::new(),
        mrn_system: String::new(),
        birth_date: None,
        phone: String::new(),
        next_action: String::new(),
        patient_severity: None,
        patient_due: None,
    }
}

/// [`worklist_for_groups`] with the statuses of screen's run registry: with `previous`, each
/// row gets the status and reason `osteoguard screen` gives it after a run that listed those
/// rows (the same code: see [`FollowUpRegistry`]), and the previous findings that are gone are
/// returned apart; without, every finding is `new` ("first screening run"), as in screen's
/// first run. A group with no lines but previous rows is a patient no longer in the export.
pub fn worklist_with_follow_up<S: AsRef<str>>(
    keys: &[S],
    groups: &[Vec<S>],
    previous: Option<PreviousRows<'_, S>>,
    shared: &[(String, String)],
    as_of: &str,
    config_toml: Option<&str>,
) -> Result<Worklist, PyEngineError> {
    evaluate(keys, groups, previous, shared, as_of, config_toml, true)
}

fn evaluate<S: AsRef<str>>(
    keys: &[S],
    groups: &[Vec<S>],
    previous: Option<PreviousRows<'_, S>>,
    shared: &[(String, String)],
    as_of: &str,
    config_toml: Option<&str>,
    first_run_statuses: bool,
) -> Result<Worklist, PyEngineError> {
    if keys.len() != groups.len() {
        return Err(PyEngineError::Shape {
            what: "groups",
            count: groups.len(),
            expected: keys.len(),
        });
    }
    if let Some(p) = &previous {
        if p.groups.len() != keys.len() {
            return Err(PyEngineError::Shape {
                what: "previous rows",
                count: p.groups.len(),
                expected: keys.len(),
            });
        }
    }
    let as_of_date = parse_as_of(as_of)?;
    let config = parse_config(config_toml)?;
    let meds = medication_store(shared)?;
    let follow = previous
        .map(|p| FollowUpRegistry::open(keys, p, as_of))
        .transpose()?;
    let mut stats = Pass2Stats::default();
    let mut out = Worklist::default();
    let mut arena = osteoguard_fhir::json::Arena::new();
    for (key, lines) in keys.iter().zip(groups) {
        let key = key.as_ref();
        if lines.is_empty() && follow.is_some() {
            // Only previous rows: the patient is not in this export (Registry::absent_patients).
            continue;
        }
        let mut sorted: Vec<&str> = lines
            .iter()
            .map(|l| l.as_ref().trim_end_matches(['\r', '\n']))
            .filter(|l| !l.trim().is_empty())
            .collect();
        sorted.sort_unstable();
        let texts: Vec<&[u8]> = sorted.iter().map(|l| l.as_bytes()).collect();
        let placeholder;
        let mut values: Vec<osteoguard_fhir::json::Value<'_>> =
            osteoguard_fhir::parse_all_for_reading(&arena, &texts)
                .into_iter()
                .filter_map(Result::ok)
                .collect();
        if values.is_empty() {
            // Only key markers: screen would have handed the reader the lines the filter
            // dropped, and the reader would have made a placeholder patient of `key` from them.
            placeholder = json!({
                "resourceType": "Basic",
                "id": "osteoguard-spark-key",
                "subject": {"reference": format!("Patient/{key}")},
            });
            values.push(osteoguard_fhir::json::Value::from_serde(
                &arena,
                &placeholder,
            ));
        }
        let who = osteoguard_screen::pass2::identities(texts.iter().copied());
        let rows = assess_patient(
            values,
            &meds,
            &arena,
            as_of_date,
            &config,
            &mut stats,
            &who,
            follow.as_ref().map(|f| &f.reader),
        )
        .map_err(|e| PyEngineError::Io(e.to_string()))?;
        for mut row in rows {
            if row.status.is_none() && first_run_statuses {
                // Screen's first run (its recorder fills these in when there is no previous run).
                row.status = Some(Status::New.as_str().to_string());
                row.status_reason = Some(FIRST_RUN_REASON.to_string());
            }
            if let Some(f) = &follow {
                f.registry.record(&row)?;
            }
            if row.status.as_deref() == Some(Status::Resolved.as_str()) {
                out.resolved.push(Resolved::from_row(&row));
            } else {
                out.rows.push(row);
            }
        }
        arena.reset();
    }
    if let Some(f) = &follow {
        out.absent = f.registry.absent_patients()?;
    }
    Ok(out)
}

/// The reason screen gives every finding of a first run: `osteoguard_core::follow_up`'s.
pub use osteoguard_core::follow_up::FIRST_RUN_REASON;

/// The same rows as [`worklist_for_groups`], formatted as screen's CSV writer formats them.
pub fn worklist_records(rows: &[Row]) -> Vec<WorklistRecord> {
    rows.iter()
        .map(|r| WorklistRecord {
            fields: csv_record(r),
            severity_rank: r.severity as u8,
            patient_rank: r.patient_severity.unwrap_or(r.severity) as u8,
        })
        .collect()
}

/// Screen's Medication store, built from `(id, line)` pairs (screen keeps, among resources with
/// the same id, the smallest text; so does its loader, which is reused here through a file).
fn medication_store(shared: &[(String, String)]) -> Result<MedicationStore, PyEngineError> {
    if shared.is_empty() {
        return Ok(MedicationStore::default());
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "osteoguard-py-meds-{}-{}.tsv",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut text = String::new();
    for (id, line) in shared {
        text.push_str(id);
        text.push('\t');
        text.push_str(line.trim_end_matches(['\r', '\n']));
        text.push('\n');
    }
    let written = std::fs::write(&path, text).map_err(|e| PyEngineError::Io(e.to_string()));
    let store = written
        .and_then(|()| MedicationStore::load(&path).map_err(|e| PyEngineError::Io(e.to_string())));
    let _ = std::fs::remove_file(&path);
    store
}

#[cfg(test)]
mod tests;

//! Pass 2: evaluate shard by shard, in parallel (rayon, `--jobs` threads).
//!
//! One shard file is read whole into memory, its lines are sorted by (patient-id hash, patient id,
//! text hash, text) — the order never depends on how pass-1 workers interleaved — and each
//! patient's lines are parsed (into the reader's borrowed tree, never-read members left out), joined with the `Medication` resources they reference, read by `osteoguard_fhir`
//! and assessed by `osteoguard_core::assess_with_issues`. The findings of a shard are sorted
//! into worklist order and written to a run file; the runs are merged by [`crate::output`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use osteoguard_core::{Config, Severity};
use osteoguard_fhir::json::{Arena, Value};
use serde::{Deserialize, Serialize};

use crate::ScreenError;

/// One worklist row: one patient × one finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub patient_id: String,
    pub age: Option<i64>,
    pub sex: String,
    pub code: String,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    pub due: Option<NaiveDate>,
    pub evidence: Vec<String>,
    pub risk_category: String,
    /// `new | persisting` (filled in by the registry; `resolved` rows are listed separately).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Provenance stamp: `osteoguard <version> · knowledge <version> · <config hash>`, so any
    /// row can be traced to the rules and settings that produced it.
    #[serde(default)]
    pub provenance: String,
    /// Problems with the patient's own record (`Patient/<id>`: two Patient resources that
    /// disagree, no Patient resource, an unreadable birth date …), as `field: problem`: they
    /// bear on every finding of the patient (issue 16). Absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_quality: Vec<String>,
    /// Why the row has its status (`osteoguard_core::follow_up`): the evidence a finding was
    /// resolved on, what to re-measure, what it supersedes …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Who the patient is (PHI: the worklist is for the care team, see docs/screen.md).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `Patient.identifier` of type MR, else the first one; with its system.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mrn: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mrn_system: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phone: String,
    /// What to do next (at most [`NEXT_ACTION_CHARS`] characters): the finding's task, else its
    /// recommendation.
    #[serde(default)]
    pub next_action: String,
    /// The patient's gravest listed finding and earliest due date: the worklist is one block
    /// per patient, blocks ordered by these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_due: Option<NaiveDate>,
}

/// The longest next-action text.
pub const NEXT_ACTION_CHARS: usize = 80;

/// `text` cut to [`NEXT_ACTION_CHARS`] characters at a word boundary, with "…" when cut.
pub fn next_action(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= NEXT_ACTION_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(NEXT_ACTION_CHARS - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > NEXT_ACTION_CHARS / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end_matches([' ', ',', ';', ':']))
}

/// Who a patient is, from the Patient resource (the reader does not keep names or identifiers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub mrn: String,
    pub mrn_system: String,
    pub phone: String,
}

/// The identities of the Patient resources among `texts` (NDJSON lines), by id; the first
/// (smallest text: the lines are sorted) wins, as in the reader.
pub fn identities<'t>(texts: impl Iterator<Item = &'t [u8]>) -> HashMap<String, Identity> {
    identities_in(&Arena::new(), texts)
}

/// [`identities`], the Patient resources parsed into `arena` (reset it afterwards).
///
/// Why not `serde_json::Value`: building (and dropping) a `Value` of every Patient line was ~5 %
/// of a population screening's instructions (callgrind, 2 000 patients), for three members. The
/// arena tree reads what `serde_json::from_slice::<Value>` reads and fails where it fails (same
/// member order, last of duplicate names winning: `osteoguard_fhir::json`), and the identity is
/// taken from it by the same lookups, so the result is the same (test
/// `identities_equal_those_read_from_serde_json_values`).
pub fn identities_in<'t>(
    arena: &Arena,
    texts: impl Iterator<Item = &'t [u8]>,
) -> HashMap<String, Identity> {
    // Built once: `memmem::find` builds a searcher on every call.
    static PATIENT: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"Patient\""));
    let mut out = HashMap::new();
    for t in texts {
        if PATIENT.find(t).is_none() {
            continue;
        }
        let Ok(v) = osteoguard_fhir::json::parse(arena, t) else {
            continue;
        };
        if v.get("resourceType").and_then(Value::as_str) != Some("Patient") {
            continue;
        }
        let Some(id) = v.get("id").and_then(Value::as_str) else {
            continue;
        };
        if !out.contains_key(id) {
            out.insert(id.to_string(), identity_of(&v));
        }
    }
    out
}

fn identity_of(v: &Value<'_>) -> Identity {
    let s = |v: &Value<'_>, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let arr = |k: &str| v.get(k).and_then(Value::as_array).unwrap_or_default();
    let names = arr("name");
    let name = names
        .iter()
        .find(|n| n.get("use").and_then(Value::as_str) == Some("official"))
        .or(names.first())
        .map(|n| {
            s(n, "text").unwrap_or_else(|| {
                let mut parts: Vec<String> = n
                    .get("given")
                    .and_then(Value::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                parts.extend(s(n, "family"));
                parts.join(" ")
            })
        })
        .unwrap_or_default();
    let ids = arr("identifier");
    let is_mr = |i: &&Value<'_>| {
        i.get("type")
            .and_then(|t| t.get("coding"))
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.get("code").and_then(Value::as_str) == Some("MR"))
            })
    };
    let mrn = ids.iter().find(is_mr).or(ids.first());
    let phone = arr("telecom")
        .iter()
        .filter(|t| t.get("system").and_then(Value::as_str) == Some("phone"))
        .find_map(|t| s(t, "value"))
        .unwrap_or_default();
    Identity {
        name,
        mrn: mrn.and_then(|i| s(i, "value")).unwrap_or_default(),
        mrn_system: mrn.and_then(|i| s(i, "system")).unwrap_or_default(),
        phone,
    }
}

/// How many patient record problems `summary.json` quotes (the smallest, sorted).
pub const RECORD_ISSUE_EXAMPLES: usize = 20;

/// Worklist order: most severe first, then most overdue (earliest due; no due date last), then
/// patient id and code for a total, deterministic order.
/// One block per patient: blocks by the patient's gravest finding, then earliest due date, then
/// patient id; within a block most severe first, then earliest due, then code.
pub type SortKey = (
    std::cmp::Reverse<Severity>,
    NaiveDate,
    String,
    std::cmp::Reverse<Severity>,
    NaiveDate,
    String,
);

pub fn sort_key(r: &Row) -> SortKey {
    (
        std::cmp::Reverse(r.patient_severity.unwrap_or(r.severity)),
        r.patient_due.or(r.due).unwrap_or(NaiveDate::MAX),
        r.patient_id.clone(),
        std::cmp::Reverse(r.severity),
        r.due.unwrap_or(NaiveDate::MAX),
        r.code.clone(),
    )
}

/// Resource counts of the reader (`osteoguard_fhir::Stats`), summed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderCounts {
    pub read: u64,
    pub used: u64,
    pub ignored: u64,
    pub not_understood: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pass2Stats {
    pub patients: u64,
    pub patients_with_findings: u64,
    /// Resources whose patient has no Patient resource in the export.
    pub resources_without_patient: u64,
    pub unparsable_lines: u64,
    pub findings_by_code: BTreeMap<String, u64>,
    pub findings_by_severity: BTreeMap<String, u64>,
    pub risk_categories: BTreeMap<String, u64>,
    pub reader_by_type: BTreeMap<String, ReaderCounts>,
    pub data_quality_issues: u64,
    /// Patients whose own record (`Patient/<id>`) has a problem (see [`Row::data_quality`]).
    pub patients_with_record_issues: u64,
    /// The first [`RECORD_ISSUE_EXAMPLES`] such problems, `Patient/<id> field: problem`, sorted.
    pub record_issue_examples: Vec<String>,
}

impl Pass2Stats {
    pub fn merge(&mut self, o: Pass2Stats) {
        self.patients += o.patients;
        self.patients_with_findings += o.patients_with_findings;
        self.resources_without_patient += o.resources_without_patient;
        self.unparsable_lines += o.unparsable_lines;
        self.data_quality_issues += o.data_quality_issues;
        self.patients_with_record_issues += o.patients_with_record_issues;
        self.record_issue_examples.extend(o.record_issue_examples);
        self.record_issue_examples.sort();
        self.record_issue_examples.dedup();
        self.record_issue_examples.truncate(RECORD_ISSUE_EXAMPLES);
        for (k, v) in o.findings_by_code {
            *self.findings_by_code.entry(k).or_default() += v;
        }
        for (k, v) in o.findings_by_severity {
            *self.findings_by_severity.entry(k).or_default() += v;
        }
        for (k, v) in o.risk_categories {
            *self.risk_categories.entry(k).or_default() += v;
        }
        for (k, v) in o.reader_by_type {
            let e = self.reader_by_type.entry(k).or_default();
            e.read += v.read;
            e.used += v.used;
            e.ignored += v.ignored;
            e.not_understood += v.not_understood;
        }
    }
}

/// `Medication` resources by id (raw JSON; the one structure that is not per shard — see
/// docs/screen.md "Memory").
#[derive(Default)]
pub struct MedicationStore {
    by_id: HashMap<String, Box<serde_json::value::RawValue>>,
}

impl MedicationStore {
    pub fn load(path: &Path) -> Result<Self, ScreenError> {
        let bytes = std::fs::read(path).map_err(|e| ScreenError::io(path, e))?;
        let mut by_id: HashMap<String, Box<serde_json::value::RawValue>> = HashMap::new();
        for line in crate::pass1::split_lines(&bytes) {
            let Some(tab) = memchr::memchr(b'\t', line) else {
                continue;
            };
            let id = String::from_utf8_lossy(&line[..tab]).into_owned();
            if let Ok(raw) =
                serde_json::from_slice::<Box<serde_json::value::RawValue>>(&line[tab + 1..])
            {
                // First one wins, deterministically: pass-1 order is not deterministic, so
                // keep the smallest text among duplicates.
                match by_id.get(&id) {
                    Some(old) if old_le(old, &raw) => {}
                    _ => {
                        by_id.insert(id, raw);
                    }
                }
            }
        }
        Ok(MedicationStore { by_id })
    }
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
    /// The Medication with this id, parsed whole, borrowing from the store (nodes in `arena`).
    fn get<'a>(&'a self, arena: &'a Arena, id: &str) -> Option<Value<'a>> {
        self.by_id
            .get(id)
            .and_then(|r| osteoguard_fhir::json::parse(arena, r.get().as_bytes()).ok())
    }
}

fn old_le(a: &serde_json::value::RawValue, b: &serde_json::value::RawValue) -> bool {
    a.get() <= b.get()
}

/// `Medication/x` (or `urn:uuid:x`) targets of a medication resource's `medicationReference`.
fn medication_ref<'v>(v: &'v Value<'_>) -> Option<&'v str> {
    let r = v.get("medicationReference")?.get("reference")?.as_str()?;
    if let Some(id) = r.strip_prefix("urn:uuid:") {
        return Some(id);
    }
    let idx = r.rfind("Medication/")?;
    r[idx + "Medication/".len()..].split('/').next()
}

/// `Device/x` — the store key of the Device an Observation's `device` references (a relative or
/// absolute `…/Device/x` reference; a contained `#x` Device travels inside the Observation).
fn device_ref(v: &Value<'_>) -> Option<String> {
    let r = v.get("device")?.get("reference")?.as_str()?;
    let idx = r.rfind("Device/")?;
    if idx > 0 && !r[..idx].ends_with('/') {
        return None;
    }
    let id = r[idx + "Device/".len()..].split('/').next()?;
    Some(format!("Device/{id}"))
}

/// Adds the Medication resources the patient's resources reference, and the Devices their
/// Observations reference.
pub fn with_medications<'a>(
    mut resources: Vec<Value<'a>>,
    meds: &'a MedicationStore,
    arena: &'a Arena,
) -> Vec<Value<'a>> {
    if meds.is_empty() {
        return resources;
    }
    let wanted: BTreeSet<String> = resources
        .iter()
        .filter_map(medication_ref)
        .map(str::to_string)
        .chain(resources.iter().filter_map(device_ref))
        .collect();
    for id in wanted {
        if let Some(m) = meds.get(arena, &id) {
            resources.push(m);
        }
    }
    resources
}

/// Evidence references in first-seen order, without repeats.
pub fn unique_refs<'a>(refs: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    refs.filter(|r| seen.insert(*r))
        .map(str::to_string)
        .collect()
}

/// Assesses one patient's resources; returns the rows (all severities; with a previous run,
/// also the rows of its findings that are gone: resolved or recheck-needed) and updates `stats`.
/// `who` holds the identities of the Patient resources ([`identities`]).
#[allow(clippy::too_many_arguments)]
pub fn assess_patient<'a>(
    resources: Vec<Value<'a>>,
    meds: &'a MedicationStore,
    arena: &'a Arena,
    as_of: NaiveDate,
    config: &Config,
    stats: &mut Pass2Stats,
    who: &HashMap<String, Identity>,
    previous: Option<&crate::output::PreviousReader>,
) -> Result<Vec<Row>, ScreenError> {
    let mut none = |_: &str, _: &osteoguard_core::Assessment| Ok(());
    assess_patient_then(
        resources, meds, arena, as_of, config, stats, who, previous, &mut none,
    )
}

/// Called with each patient's id and assessment (`screen --format fhir`: [`crate::fhir_ndjson`]).
pub type OnAssessed<'f> =
    &'f mut dyn FnMut(&str, &osteoguard_core::Assessment) -> Result<(), ScreenError>;

/// [`assess_patient`], handing each assessment to `then` as well.
#[allow(clippy::too_many_arguments)]
pub fn assess_patient_then<'a>(
    resources: Vec<Value<'a>>,
    meds: &'a MedicationStore,
    arena: &'a Arena,
    as_of: NaiveDate,
    config: &Config,
    stats: &mut Pass2Stats,
    who: &HashMap<String, Identity>,
    previous: Option<&crate::output::PreviousReader>,
    then: OnAssessed<'_>,
) -> Result<Vec<Row>, ScreenError> {
    let n = resources.len() as u64;
    let mut read = osteoguard_fhir::read_parsed(with_medications(resources, meds, arena));
    for (ty, c) in &read.stats.by_type {
        let e = stats.reader_by_type.entry(ty.clone()).or_default();
        e.read += c.read;
        e.used += c.used;
        e.ignored += c.ignored;
        e.not_understood += c.not_understood;
    }
    if read.patients.is_empty() {
        stats.resources_without_patient += n;
        return Ok(Vec::new());
    }
    let mut rows = Vec::new();
    for p in read.patients.iter_mut() {
        // Nothing after as-of is ever used: dropped here, the engine works on the record
        // itself instead of a filtered copy (osteoguard_core::engine::visible_view).
        osteoguard_core::engine::hide_after(&mut p.record, as_of);
        let own = format!("Patient/{}", p.id);
        let record_issues: Vec<String> = p
            .issues
            .iter()
            .filter(|i| i.reference == own)
            .map(|i| format!("{}: {}", i.field, i.problem))
            .collect();
        if !record_issues.is_empty() {
            stats.patients_with_record_issues += 1;
            let examples = &mut stats.record_issue_examples;
            examples.extend(record_issues.iter().map(|i| format!("{own} {i}")));
            examples.sort();
            examples.dedup();
            examples.truncate(RECORD_ISSUE_EXAMPLES);
        }
        let mut issues = p.issues.clone();
        issues.extend(read.unattached.iter().cloned());
        let a = osteoguard_core::assess_with_issues(&p.record, &issues, as_of, config);
        then(&p.id, &a)?;
        stats.patients += 1;
        stats.data_quality_issues += a.data_quality.len() as u64;
        *stats
            .risk_categories
            .entry(a.fracture_risk.category.clone())
            .or_default() += 1;
        if !a.findings.is_empty() {
            stats.patients_with_findings += 1;
        }
        let prev_findings = match previous {
            Some(r) => Some((r.as_of, r.findings(&p.id)?)),
            None => None,
        };
        let follow = osteoguard_core::follow_up::follow_up(
            prev_findings
                .as_ref()
                .map(|(as_of, f)| osteoguard_core::follow_up::Previous {
                    as_of: *as_of,
                    findings: f,
                }),
            &a,
        );
        let id = who.get(&p.id).cloned().unwrap_or_default();
        let sex = serde_json::to_value(a.patient.sex)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let provenance = format!(
            "osteoguard {} · knowledge {} · {}",
            a.provenance.engine_version, a.provenance.knowledge_version, a.provenance.config_hash
        );
        let base = Row {
            patient_id: p.id.clone(),
            age: a.patient.age_years,
            sex,
            code: String::new(),
            severity: Severity::Info,
            title: String::new(),
            summary: String::new(),
            due: None,
            evidence: Vec::new(),
            risk_category: a.fracture_risk.category.clone(),
            status: None,
            provenance,
            data_quality: record_issues.clone(),
            status_reason: None,
            name: id.name,
            mrn: id.mrn,
            mrn_system: id.mrn_system,
            birth_date: a.patient.birth_date,
            phone: id.phone,
            next_action: String::new(),
            patient_severity: None,
            patient_due: None,
        };
        let first = rows.len();
        for (f, d) in a.findings.iter().zip(&follow.current) {
            *stats
                .findings_by_code
                .entry(f.code.as_str().to_string())
                .or_default() += 1;
            *stats
                .findings_by_severity
                .entry(f.severity.as_str().to_string())
                .or_default() += 1;
            let task = a
                .tasks
                .iter()
                .find(|t| t.finding == Some(f.code))
                .map(|t| t.description.as_str());
            rows.push(Row {
                code: f.code.as_str().to_string(),
                severity: f.severity,
                title: f.title.clone(),
                summary: f.summary.clone(),
                due: f.due,
                evidence: unique_refs(f.evidence.iter().map(|e| e.reference.as_str())),
                // Without a previous run (the Spark path) the status is the registry's.
                status: previous.map(|_| d.status.as_str().to_string()),
                status_reason: previous.map(|_| d.reason.clone()),
                next_action: next_action(task.unwrap_or(&f.recommendation)),
                ..base.clone()
            });
        }
        for g in &follow.gone {
            let title = osteoguard_core::FindingCode::parse(&g.code)
                .map_or_else(|| g.code.clone(), |c| c.title().to_string());
            let action = match g.status {
                // What to re-measure first, when the reason names it.
                osteoguard_core::follow_up::Status::RecheckNeeded => {
                    match g.reason.split_once("re-measure — ") {
                        Some((_, what)) => next_action(&format!("Re-measure: {what}")),
                        None => next_action(&format!("Recheck: {}", g.reason)),
                    }
                }
                _ => String::new(),
            };
            rows.push(Row {
                code: g.code.clone(),
                severity: g.severity,
                summary: format!("{title}: {}", g.status),
                title,
                due: g.due,
                status: Some(g.status.as_str().to_string()),
                status_reason: Some(g.reason.clone()),
                next_action: action,
                ..base.clone()
            });
        }
        // The block's order: the gravest and earliest of what the worklist lists.
        let listed = rows[first..]
            .iter()
            .filter(|r| r.status.as_deref() != Some("resolved"));
        let top = listed.clone().map(|r| r.severity).max();
        let due = listed.filter_map(|r| r.due).min();
        for r in &mut rows[first..] {
            r.patient_severity = top;
            r.patient_due = due;
        }
    }
    Ok(rows)
}

/// The registry's previous run, which pass 2 reads the previous findings of each patient from.
#[derive(Debug, Clone)]
pub struct PreviousRun {
    pub db: PathBuf,
    pub run_id: i64,
    pub as_of: NaiveDate,
}

/// Evaluates one shard file and writes its rows, sorted, to `run_path` (one JSON row a line).
pub fn evaluate_shard(
    shard: &Path,
    run_path: &Path,
    meds: &MedicationStore,
    as_of: NaiveDate,
    config: &Config,
    previous: Option<&PreviousRun>,
    fhir_run: Option<&Path>,
) -> Result<Pass2Stats, ScreenError> {
    let reader = previous
        .map(|p| crate::output::PreviousReader::open(&p.db, p.run_id, p.as_of))
        .transpose()?;
    let mut fhir = fhir_run.map(|_| crate::fhir_ndjson::ShardResources::default());
    let mut then = |id: &str, a: &osteoguard_core::Assessment| match &mut fhir {
        Some(f) => f.add(id, a),
        None => Ok(()),
    };
    SCRATCH
        .with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let Scratch {
                bytes,
                lines,
                arena,
            } = &mut *scratch;
            evaluate_lines(
                shard,
                bytes,
                lines,
                arena,
                meds,
                as_of,
                config,
                reader.as_ref(),
                &mut then,
            )
        })
        .and_then(|(mut rows, stats)| {
            rows.sort_by_cached_key(sort_key);
            write_rows(run_path, &rows)?;
            if let (Some(f), Some(path)) = (fhir, fhir_run) {
                f.write(path)?;
            }
            Ok(stats)
        })
}

/// One line of a shard: the patient id's hash and byte range, the text's hash and byte range.
type Span = (u64, std::ops::Range<usize>, u64, std::ops::Range<usize>);

/// A pass-2 thread's buffers, reused from shard to shard. Why: freeing a shard-sized buffer
/// (~15 MB) after every shard makes glibc raise its mmap threshold, after which such buffers come
/// from the heap and fragment it, so peak memory grew with the number of shards (i.e. with the
/// population). Reused, they are allocated once per thread.
#[derive(Default)]
struct Scratch {
    /// Where the patient's parsed resources live: reset after each patient, so a thread keeps
    /// about one patient's trees whatever the population.
    arena: Arena,
    bytes: Vec<u8>,
    lines: Vec<Span>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[allow(clippy::too_many_arguments)]
fn evaluate_lines(
    shard: &Path,
    bytes: &mut Vec<u8>,
    lines: &mut Vec<Span>,
    arena: &mut Arena,
    meds: &MedicationStore,
    as_of: NaiveDate,
    config: &Config,
    previous: Option<&crate::output::PreviousReader>,
    then: OnAssessed<'_>,
) -> Result<(Vec<Row>, Pass2Stats), ScreenError> {
    bytes.clear();
    lines.clear();
    std::fs::File::open(shard)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, bytes))
        .map_err(|e| ScreenError::io(shard, e))?;
    let bytes: &[u8] = bytes;
    // Sorted by (hash of the patient id, patient id, hash of the text, text): a total order on
    // the shard's content, so nothing depends on how pass-1 workers interleaved, and each
    // patient's lines are together. Why the hashes: ids and one patient's lines share long
    // prefixes (`syn000…`, `{"category":[{"coding":…`), and comparing bytes was most of the sort.
    // `split_lines` yields consecutive pieces separated by one `\n`: `at` is where each starts.
    let mut at = 0;
    lines.extend(crate::pass1::split_lines(bytes).filter_map(|l| {
        let start = at;
        at += l.len() + 1;
        let tab = memchr::memchr(b'\t', l)?;
        let (id, text) = (&l[..tab], &l[tab + 1..]);
        Some((
            rustc_hash::FxBuildHasher.hash_one(id),
            start..start + tab,
            rustc_hash::FxBuildHasher.hash_one(text),
            start + tab + 1..start + l.len(),
        ))
    }));
    lines.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| bytes[a.1.clone()].cmp(&bytes[b.1.clone()]))
            .then(a.2.cmp(&b.2))
            .then_with(|| bytes[a.3.clone()].cmp(&bytes[b.3.clone()]))
    });
    let mut stats = Pass2Stats::default();
    let mut rows: Vec<Row> = Vec::new();
    let mut i = 0;
    let mut texts: Vec<&[u8]> = Vec::new();
    while i < lines.len() {
        let (id_hash, id) = (lines[i].0, &bytes[lines[i].1.clone()]);
        let mut j = i;
        texts.clear();
        while j < lines.len() && lines[j].0 == id_hash && &bytes[lines[j].1.clone()] == id {
            texts.push(&bytes[lines[j].3.clone()]);
            j += 1;
        }
        // Parsed without the members the reader never reads (osteoguard_fhir::NEVER_READ):
        // building and dropping those was most of the parse. Reading is unchanged (tested in
        // osteoguard-fhir's tests/prune.rs). Medication resources are never in a patient's
        // lines (pass 1 sends them to the MedicationStore), so the whole ones joined below
        // cannot meet a pruned one of the same id in the reader's duplicate check.
        let mut resources = Vec::with_capacity(texts.len());
        for r in osteoguard_fhir::parse_all_for_reading(arena, &texts) {
            match r {
                Ok(v) => resources.push(v),
                Err(_) => stats.unparsable_lines += 1,
            }
        }
        let who = identities_in(arena, texts.iter().copied());
        rows.extend(assess_patient_then(
            resources, meds, arena, as_of, config, &mut stats, &who, previous, then,
        )?);
        arena.reset();
        i = j;
    }
    Ok((rows, stats))
}

pub fn write_rows(path: &Path, rows: &[Row]) -> Result<(), ScreenError> {
    let f = crate::fault::OutFile::create(path).map_err(|e| ScreenError::io(path, e))?;
    let mut w = BufWriter::new(f);
    for r in rows {
        serde_json::to_writer(&mut w, r).map_err(|e| crate::output::json_err(path, e))?;
        w.write_all(b"\n").map_err(|e| ScreenError::io(path, e))?;
    }
    w.flush().map_err(|e| ScreenError::io(path, e))
}

pub fn run_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("rows-{i:04}.ndjson"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The identities as they were read before the arena tree: from a `serde_json::Value` of
    /// every Patient line (the reference the new reading must equal).
    fn identities_from_serde<'t>(
        texts: impl Iterator<Item = &'t [u8]>,
    ) -> HashMap<String, Identity> {
        use serde_json::Value as J;
        let mut out = HashMap::new();
        for t in texts {
            let Ok(v) = serde_json::from_slice::<J>(t) else {
                continue;
            };
            if v.get("resourceType").and_then(J::as_str) != Some("Patient") {
                continue;
            }
            let Some(id) = v.get("id").and_then(J::as_str) else {
                continue;
            };
            let s = |v: &J, k: &str| v.get(k).and_then(J::as_str).map(str::to_string);
            let arr = |k: &str| v.get(k).and_then(J::as_array).cloned().unwrap_or_default();
            let names = arr("name");
            let name = names
                .iter()
                .find(|n| n.get("use").and_then(J::as_str) == Some("official"))
                .or(names.first())
                .map(|n| {
                    s(n, "text").unwrap_or_else(|| {
                        let mut parts: Vec<String> = n
                            .get("given")
                            .and_then(J::as_array)
                            .map(|g| g.iter().filter_map(s_of).collect())
                            .unwrap_or_default();
                        parts.extend(s(n, "family"));
                        parts.join(" ")
                    })
                })
                .unwrap_or_default();
            let ids = arr("identifier");
            let mrn = ids
                .iter()
                .find(|i| {
                    i.pointer("/type/coding")
                        .and_then(J::as_array)
                        .is_some_and(|c| c.iter().any(|c| c.get("code") == Some(&J::from("MR"))))
                })
                .or(ids.first());
            let phone = arr("telecom")
                .iter()
                .filter(|t| t.get("system") == Some(&J::from("phone")))
                .find_map(|t| s(t, "value"))
                .unwrap_or_default();
            out.entry(id.to_string()).or_insert(Identity {
                name,
                mrn: mrn.and_then(|i| s(i, "value")).unwrap_or_default(),
                mrn_system: mrn.and_then(|i| s(i, "system")).unwrap_or_default(),
                phone,
            });
        }
        out
    }

    fn s_of(v: &serde_json::Value) -> Option<String> {
        v.as_str().map(str::to_string)
    }

    #[test]
    fn identities_equal_those_read_from_serde_json_values() {
        let mut lines: Vec<Vec<u8>> = [
            // Official name among others; MR identifier second; phone after an e-mail.
            r#"{"resourceType":"Patient","id":"a","name":[{"use":"usual","text":"Al"},{"use":"official","given":["Ann","B.",7],"family":"Cole"}],"identifier":[{"system":"s1","value":"1"},{"type":{"coding":[{"code":"MR"}]},"system":"s2","value":"2"}],"telecom":[{"system":"email","value":"a@x"},{"system":"phone","value":"555"}]}"#,
            // A second resource of the same id: the first wins.
            r#"{"resourceType":"Patient","id":"a","name":[{"text":"Other"}]}"#,
            // Duplicate member names: the last wins, as in serde_json's map.
            r#"{"resourceType":"Patient","id":"b","name":[{"text":"First"}],"name":[{"text":"Second"}],"id":"c"}"#,
            // Odd shapes: not arrays, not objects, nulls, non-string values.
            r#"{"resourceType":"Patient","id":"d","name":{"text":"x"},"identifier":"x","telecom":null}"#,
            r#"{"resourceType":"Patient","id":"e","name":["x",{"family":"F"}],"identifier":[5,{"value":"v"}],"telecom":[{"system":"phone","value":5},{"system":"phone","value":"6"}]}"#,
            r#"{"resourceType":"Patient","id":"f","name":[{"use":"official","text":null,"given":"g","family":"Fam"}]}"#,
            r#"{"resourceType":"Patient","id":7,"name":[{"text":"no id"}]}"#,
            r#"{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/a"},"note":[{"text":"\"Patient\""}]}"#,
            r#"{"resourceType":"Patient","id":"g","name":[{"text":"Esc\u00e9 \"q\""}]}"#,
            // Not JSON, or a number serde_json refuses: skipped by both.
            r#"{"resourceType":"Patient","id":"h","name":[{"text":"x"}]"#,
            r#"{"resourceType":"Patient","id":"i","extension":[{"valueDecimal":1e400}],"name":[{"text":"x"}]}"#,
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        let mut bad_utf8 = br#"{"resourceType":"Patient","id":"j","name":[{"text":"x"#.to_vec();
        bad_utf8.extend_from_slice(&[0xff, b'"', b'}', b']', b'}']);
        lines.push(bad_utf8);
        // Every Patient of the shared Bulk Data sample, when it is there.
        let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/bulk-10-patients/Patient.000.ndjson");
        if let Ok(text) = std::fs::read(&shared) {
            lines.extend(
                crate::pass1::lines(&text)
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>(),
            );
        }
        let want = identities_from_serde(lines.iter().map(Vec::as_slice));
        let got = identities(lines.iter().map(Vec::as_slice));
        assert!(want.len() >= 7, "{want:?}");
        assert_eq!(got, want);
        assert_eq!(got["a"].name, "Ann B. Cole");
        assert_eq!(got["a"].mrn, "2");
        assert_eq!(got["a"].phone, "555");
        assert!(!got.contains_key("h") && !got.contains_key("i") && !got.contains_key("j"));
        // One arena for every patient, reset in between (as pass 2 does).
        let mut arena = Arena::new();
        for l in &lines {
            let one = identities_in(&arena, std::iter::once(l.as_slice()));
            assert_eq!(one, identities_from_serde(std::iter::once(l.as_slice())));
            arena.reset();
        }
    }
}

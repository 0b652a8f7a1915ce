//! # osteoguard-fhir — FHIR R4 JSON to the osteoguard patient model
//!
//! What goes in: FHIR R4 JSON — a Bundle (collection, transaction, batch, searchset; nested
//! Bundles are expanded), a single resource, NDJSON (one resource per line, mixed types, blank
//! lines allowed), a Bulk Data export directory (one NDJSON file per type, `.ndjson` or
//! `.ndjson.gz`, with or without a manifest; sub-directories are read too), a CDS Hooks request
//! (its `prefetch` values and `context.draftOrders`), or already-parsed resources
//! ([`read_resources`], CDS Hooks prefetch: `null` and OperationOutcome values count as absent).
//! Everything is read from [`json::Value`], serde_json's shape with strings borrowed from the
//! input and nodes in an arena ([`json::Arena`]); [`read_parsed`] takes such trees directly
//! (population screening parses them with [`parse_all_for_reading`], leaving out the members in
//! [`NEVER_READ`]).
//! What comes out: a [`ReadOutput`]: one [`PatientData`] per patient (an
//! `osteoguard_core::model::PatientRecord` plus the data-quality issues met and per-type
//! counts), never a partial failure: only input that is not JSON / not FHIR is an error.
//!
//! ## Patients
//! Resources are grouped by `subject` / `patient` / `beneficiary` references in every form:
//! `Patient/x`, `urn:uuid:x` (resolved through `Bundle.entry.fullUrl`), absolute URLs ending in
//! `Patient/x` (with or without `_history`). A resource referring to `Patient/x` when no Patient
//! `x` is in the input gets a placeholder patient (sex unknown, no birth date) and a data-quality
//! issue. Resources without a resolvable patient go to [`ReadOutput::unattached`].
//! `medicationReference` is resolved to contained (`#id`) or input Medication resources.
//!
//! ## Mapping
//! Codes are matched by system + code (never by display), per knowledge.md §10:
//! medications by RxNorm ingredient, clinical drug (SCD/SBD/GPCK) via the generated table
//! `data/rxnorm-ingredients.tsv` (`scripts/gen_rxnorm_map.py`), ATC and SNOMED substance codes;
//! observations by LOINC and the local osteoguard codes; conditions by ICD-10-CM prefix rules
//! and SNOMED CT (incl. the VSAC tables in `data/condition-codes.tsv`); procedures by CPT and
//! SNOMED CT. Values are converted to the canonical units of §1.3; an unknown unit leaves the
//! value `None` with an issue naming the resource and field path.
//!
//! ## Dates (the rule)
//! * Dates are calendar days, patient-local: a dateTime with an offset keeps the local date *as
//!   written* (`2023-08-23T23:30:00-05:00` is 2023-08-23); the time of day is kept on
//!   Observation `effective` and Procedure `performed` for same-day ordering.
//! * Partial dates (`YYYY`, `YYYY-MM`): a start or a point (authoredOn, issued, effective,
//!   recordedDate, period start, birthDate) takes the **first** day; an end (period end) takes
//!   the **last** day; Condition `onsetDateTime` becomes the **period** it covers (first to last
//!   day, so acuity uses its end and the after-augmentation test its start, §7.2). Each partial
//!   date adds a data-quality note saying which day was taken.
//! * Impossible dates (`2023-02-30`) and malformed ones are `None` with an issue.
//!
//! ## Disposition
//! Every resource lands in exactly one [`Disposition`] bucket, counted per patient and in total
//! by resource type; `NotUnderstood` always comes with a data-quality issue.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::json::{Arena, Value};
use osteoguard_core::model::{Patient, PatientRecord, Sex, SourceRef};
use osteoguard_core::DataQualityIssue;
use serde::Serialize;

mod cond;
mod dates;
mod diagnostic_report;
mod imaging;
mod input;
pub mod json;
mod med;
mod obs;
mod prune;
mod resource_types;
mod shape;
pub mod terminology;
pub mod units;
mod util;
mod whereabouts;

pub use dates::{parse as parse_fhir_datetime, FhirDateTime, PartialDate};
pub use input::regular_file;
pub use prune::{parse_all_for_reading, parse_for_reading, NEVER_READ};
pub use resource_types::is_resource_type;
pub use whereabouts::{whereabouts, whereabouts_of_unread_line};

use crate::util::{arr, s, Issues};

/// How one resource was handled (issue: nothing silently dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// Mapped into the patient model (a rule can read it).
    Used,
    /// Read and understood, but no rule needs it (other codes, other resource types).
    Ignored,
    /// Relevant-looking but could not be understood (see the data-quality issue).
    NotUnderstood,
}

/// Per resource type: how many resources were read and where they went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeCounts {
    pub read: u64,
    pub used: u64,
    pub ignored: u64,
    pub not_understood: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub by_type: BTreeMap<String, TypeCounts>,
}

impl TypeCounts {
    /// One more resource read, and where it went.
    fn count(&mut self, d: Disposition) {
        self.read += 1;
        match d {
            Disposition::Used => self.used += 1,
            Disposition::Ignored => self.ignored += 1,
            Disposition::NotUnderstood => self.not_understood += 1,
        }
    }
}

/// Counts `d` under `key` in `tallies` (a handful of keys: a scan, the last key first, since
/// resources come grouped by type).
fn tally<K: PartialEq>(tallies: &mut Vec<(K, TypeCounts)>, key: K, d: Disposition) {
    let at = match tallies.iter().rposition(|(k, _)| *k == key) {
        Some(at) => at,
        None => {
            tallies.push((key, TypeCounts::default()));
            tallies.len() - 1
        }
    };
    tallies[at].1.count(d);
}

impl Stats {
    /// Sum over all types.
    pub fn total(&self) -> TypeCounts {
        let mut t = TypeCounts::default();
        for c in self.by_type.values() {
            t.read += c.read;
            t.used += c.used;
            t.ignored += c.ignored;
            t.not_understood += c.not_understood;
        }
        t
    }
}

/// One patient's record and what the reader met on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientData {
    /// `Patient.id`.
    pub id: String,
    pub record: PatientRecord,
    pub issues: Vec<DataQualityIssue>,
    pub stats: Stats,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOutput {
    /// Sorted by patient id.
    pub patients: Vec<PatientData>,
    /// Resources that belong to no known patient, and file-level problems.
    pub unattached: Vec<DataQualityIssue>,
    pub stats: Stats,
}

impl ReadOutput {
    /// The patient with this id.
    pub fn patient(&self, id: &str) -> Option<&PatientData> {
        self.patients.iter().find(|p| p.id == id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The cause is part of the message and not also a `source`: printing the error chain
    /// (`{:#}`) would repeat it ("incomplete deflate stream: incomplete deflate stream").
    #[error("{path}: cannot read: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{location}: not valid JSON: {message}")]
    Json { location: String, message: String },
    #[error("{location}: not FHIR: {message}")]
    NotFhir { location: String, message: String },
    /// Input refused before it is read: a line or document over [`ReadLimits`], a file that is
    /// not a regular file (a device, a FIFO).
    #[error("{location}: refused: {message}")]
    Refused { location: String, message: String },
}

/// Bounds on what one read holds in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The longest NDJSON line (one resource) and the largest single JSON document (file) read,
    /// in bytes. Default [`ReadLimits::DEFAULT_MAX_LINE_BYTES`].
    pub max_line_bytes: u64,
}

impl ReadLimits {
    /// 64 MiB: far above any real resource (the largest line of the shared exports is a few
    /// hundred kB), far below what would exhaust memory.
    pub const DEFAULT_MAX_LINE_BYTES: u64 = 64 << 20;

    /// Limits with the longest line given in MiB (as the command-line options take it).
    pub fn with_max_line_mib(mib: u64) -> Self {
        ReadLimits {
            max_line_bytes: mib.saturating_mul(1 << 20),
        }
    }

    /// `64 MiB`, `1536 bytes`: a limit as the errors name it.
    pub fn describe(bytes: u64) -> String {
        if bytes.is_multiple_of(1 << 20) {
            format!("{} MiB", bytes >> 20)
        } else {
            format!("{bytes} bytes")
        }
    }
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Reads a Bundle, an NDJSON file (optionally `.gz`) or a Bulk Data export directory.
/// In a directory, files that are JSON but not FHIR are skipped with a note in `unattached`;
/// a single such file is an error.
pub fn read_path(path: &Path) -> Result<ReadOutput, ReadError> {
    read_path_with(path, ReadLimits::default())
}

/// [`read_path`] with explicit [`ReadLimits`].
pub fn read_path_with(path: &Path, limits: ReadLimits) -> Result<ReadOutput, ReadError> {
    let arena = Arena::new();
    let mut c = input::Collector::new(&arena, limits);
    c.add_path(path, false, 0)?;
    c.check_refused()?;
    Ok(build(c))
}

/// Reads a stream (standard input: a Bundle, a resource or NDJSON) within `limits`: whole while
/// it is at most one document's limit, otherwise as NDJSON one bounded line at a time
/// (`input::Collector::add_stream`).
pub fn read_stream_with(
    r: impl std::io::Read,
    location: &str,
    limits: ReadLimits,
) -> Result<ReadOutput, ReadError> {
    let arena = Arena::new();
    let mut c = input::Collector::new(&arena, limits);
    c.add_stream(r, location)?;
    c.check_refused()?;
    Ok(build(c))
}

/// Reads a Bundle or a single resource (or a CDS Hooks request) from JSON bytes.
pub fn read_json_bytes(bytes: &[u8], location: &str) -> Result<ReadOutput, ReadError> {
    let arena = Arena::new();
    let mut c = input::Collector::new(&arena, ReadLimits::default());
    c.add_json_bytes(bytes, location, false)?;
    c.check_refused()?;
    Ok(build(c))
}

/// Reads NDJSON bytes (one resource per line).
pub fn read_ndjson_bytes(bytes: &[u8], location: &str) -> Result<ReadOutput, ReadError> {
    let arena = Arena::new();
    let mut c = input::Collector::new(&arena, ReadLimits::default());
    c.add_ndjson_bytes(bytes, location, false)?;
    c.check_refused()?;
    Ok(build(c))
}

/// Reads already-parsed resources (e.g. CDS Hooks prefetch entries; Bundles are expanded).
/// `null` values are absent; values that are not FHIR are noted in `unattached`.
pub fn read_resources(resources: Vec<serde_json::Value>) -> ReadOutput {
    let arena = Arena::new();
    read_parsed(
        resources
            .iter()
            .map(|v| Value::from_serde(&arena, v))
            .collect(),
    )
}

/// Reads resources already parsed into the reader's tree (e.g. by [`parse_all_for_reading`],
/// borrowing from the caller's text), exactly as [`read_resources`] reads the same resources.
pub fn read_parsed(resources: Vec<Value<'_>>) -> ReadOutput {
    // Nothing is parsed here: the arena stays empty (it allocates nothing until used).
    let arena = Arena::new();
    let mut c = input::Collector::new(&arena, ReadLimits::default());
    for (i, v) in resources.into_iter().enumerate() {
        if let Err(e) = c.add_value(v, None, input::Origin::Parsed(i), 0) {
            c.notes
                .push(DataQualityIssue::new(format!("resources[{i}]"), "", e));
        }
    }
    build(c)
}

// ---------------------------------------------------------------------------------------------
// Building the output
// ---------------------------------------------------------------------------------------------

/// Lookups into the resources read, borrowing their `(type, id)` keys (no `Type/id` string is
/// built per resource or per reference: that was a measurable part of reading a population).
/// Each lookup is a binary search of a sorted slice with the in-line name order (no `BTreeMap`
/// node walk calling `memcmp` per key: issue 19, the CDS path reads every request's resources).
struct Index<'a> {
    /// `(type, id)` → raw index (first occurrence).
    by_key: FirstIndex<(&'a str, &'a str)>,
    /// `fullUrl` → raw index (first occurrence).
    by_full_url: FirstIndex<&'a str>,
    /// Per raw index: `(type, id)`, borrowed from the resource (an id is built only for a
    /// resource without one).
    keys: &'a [(&'a str, Cow<'a, str>)],
    /// bare id → raw index (first occurrence), for `urn:uuid:<id>` without a matching fullUrl.
    by_id: FirstIndex<&'a str>,
}

/// A key the lookups of [`Index`] compare in line ([`json::name_cmp`], `str`'s order).
trait IndexKey: Copy {
    fn order(&self, other: &Self) -> std::cmp::Ordering;
}

impl IndexKey for &str {
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        json::name_cmp(self, other)
    }
}

impl IndexKey for (&str, &str) {
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        json::name_cmp(self.0, other.0).then_with(|| json::name_cmp(self.1, other.1))
    }
}

/// Key → the first raw index with that key: what a map filled with `entry(k).or_insert(i)` in
/// raw order holds, as one sorted slice.
struct FirstIndex<K> {
    sorted: Vec<(K, usize)>,
}

impl<K: IndexKey> FirstIndex<K> {
    /// From `(key, raw index)` pairs.
    fn new(mut pairs: Vec<(K, usize)>) -> Self {
        pairs.sort_unstable_by(|a, b| a.0.order(&b.0).then(a.1.cmp(&b.1)));
        pairs.dedup_by(|later, first| later.0.order(&first.0).is_eq());
        FirstIndex { sorted: pairs }
    }

    fn get(&self, key: &K) -> Option<usize> {
        self.sorted
            .binary_search_by(|(k, _)| k.order(key))
            .ok()
            .map(|at| self.sorted[at].1)
    }
}

enum PatientLink<'a> {
    Known(&'a str),
    Placeholder(&'a str),
    Unresolvable(String),
    Absent,
}

impl Index<'_> {
    fn lookup(&self, reference: &str) -> Option<usize> {
        if let Some(i) = self.by_full_url.get(&reference) {
            return Some(i);
        }
        if let Some(uuid) = reference.strip_prefix("urn:uuid:") {
            // Some writers use urn:uuid references with ids equal to the uuid.
            return self.by_id.get(&uuid);
        }
        let (ty, id) = type_and_id(reference)?;
        self.by_key.get(&(ty, id))
    }
}

/// The last `Type/id` pair of a relative or absolute reference (`_history` stripped).
fn type_and_id(reference: &str) -> Option<(&str, &str)> {
    if reference.contains('?') || reference.starts_with('#') {
        return None;
    }
    // The last four non-empty segments, last first: no `Vec` of every segment (this runs for
    // every reference of every resource read).
    let mut last = [""; 4];
    let mut n = 0;
    for part in reference.rsplit('/').filter(|p| !p.is_empty()).take(4) {
        last[n] = part;
        n += 1;
    }
    if n < 2 {
        return None;
    }
    let (ty, id) = if n == 4 && last[1] == "_history" {
        (last[3], last[2])
    } else {
        (last[1], last[0])
    };
    ty.chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase())
        .then_some((ty, id))
}

fn patient_link<'a>(v: &'a Value, index: &'a Index<'_>) -> PatientLink<'a> {
    for key in ["subject", "patient", "beneficiary"] {
        let Some(r) = v.get(key) else { continue };
        let Some(reference) = s(r, "reference") else {
            return PatientLink::Unresolvable(format!("{key} has no reference"));
        };
        if let Some(i) = index.lookup(reference) {
            let (ty, id) = &index.keys[i];
            return if *ty == "Patient" {
                PatientLink::Known(id)
            } else {
                PatientLink::Unresolvable(format!("{key} {reference:?} is a {ty}, not a Patient"))
            };
        }
        return match type_and_id(reference) {
            Some(("Patient", id)) => PatientLink::Placeholder(id),
            Some((ty, _)) => {
                PatientLink::Unresolvable(format!("{key} {reference:?} is a {ty}, not a Patient"))
            }
            None => PatientLink::Unresolvable(format!("{key} {reference:?} cannot be resolved")),
        };
    }
    PatientLink::Absent
}

fn map_patient(v: &Value, id: &str, issues: &mut Issues) -> Patient {
    let sex = match s(v, "gender") {
        Some("female") => Sex::Female,
        Some("male") => Sex::Male,
        Some("other") => Sex::Other,
        Some("unknown") | None => Sex::Unknown,
        Some(other) => {
            issues.add("gender", format!("unknown gender {other:?}"));
            Sex::Unknown
        }
    };
    let birth_date = dates::day(v, "birthDate", "birthDate", dates::Pick::First, issues);
    let deceased = if v.get("deceasedDateTime").is_some() {
        dates::day(
            v,
            "deceasedDateTime",
            "deceasedDateTime",
            dates::Pick::First,
            issues,
        )
    } else {
        if v.get("deceasedBoolean").and_then(Value::as_bool) == Some(true) {
            issues.add("deceasedBoolean", "deceased without a date");
        }
        None
    };
    Patient {
        source: SourceRef::new(format!("Patient/{id}")),
        birth_date,
        sex,
        deceased,
    }
}

/// Merges a second Patient resource of the same id into the first, order-independently: a
/// value they disagree on becomes unknown (a death date: the earlier one is kept — "unknown"
/// would read as alive). Returns what they disagreed on, each pair of values sorted.
fn reconcile(first: &mut Patient, other: &Patient) -> Vec<String> {
    fn pair<T: std::fmt::Debug>(a: &T, b: &T) -> String {
        let mut v = [format!("{a:?}"), format!("{b:?}")];
        v.sort();
        format!("{} / {}", v[0], v[1])
    }
    let mut conflicts = Vec::new();
    if first.sex != other.sex {
        conflicts.push(format!("gender ({})", pair(&first.sex, &other.sex)));
        first.sex = Sex::Unknown;
    }
    if first.birth_date != other.birth_date {
        conflicts.push(format!(
            "birthDate ({})",
            pair(&first.birth_date, &other.birth_date)
        ));
        first.birth_date = None;
    }
    if first.deceased != other.deceased {
        conflicts.push(format!(
            "deceased ({})",
            pair(&first.deceased, &other.deceased)
        ));
        first.deceased = match (first.deceased, other.deceased) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    conflicts
}

fn placeholder(id: &str) -> PatientData {
    PatientData {
        id: id.to_string(),
        record: PatientRecord::new(Patient {
            source: SourceRef::new(format!("Patient/{id}")),
            birth_date: None,
            sex: Sex::Unknown,
            deceased: None,
        }),
        issues: vec![DataQualityIssue::new(
            format!("Patient/{id}"),
            "",
            "no Patient resource in the input: birth date and sex unknown",
        )],
        stats: Stats::default(),
    }
}

fn build(c: input::Collector) -> ReadOutput {
    let input::Collector {
        raws,
        mut notes,
        refused,
        ..
    } = c;
    // Parsed values (CDS Hooks prefetch, screening) have no error to return: a refused object
    // is a data-quality issue there, never silent.
    for r in refused {
        let (location, message) = match r {
            ReadError::NotFhir { location, message }
            | ReadError::Json { location, message }
            | ReadError::Refused { location, message } => (location, message),
            ReadError::Io { path, cause } => (path, cause.to_string()),
        };
        notes.push(DataQualityIssue::new(location, "resourceType", message));
    }
    let mut out = ReadOutput {
        unattached: notes,
        ..ReadOutput::default()
    };
    // Keys, borrowed from the resources (an id is made up only for a resource without one).
    let keys: Vec<(&str, Cow<str>)> = raws
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let ty = s(&r.value, "resourceType").unwrap_or("");
            let id = s(&r.value, "id")
                .or_else(|| {
                    r.full_url
                        .as_deref()
                        .and_then(|u| u.rsplit([':', '/']).next())
                        .filter(|x| !x.is_empty())
                })
                .map_or_else(|| Cow::Owned(format!("#{i}")), Cow::Borrowed);
            (ty, id)
        })
        .collect();
    let by_key = FirstIndex::new(
        keys.iter()
            .enumerate()
            .map(|(i, (ty, id))| ((*ty, &**id), i))
            .collect(),
    );
    let mut duplicate = vec![false; raws.len()];
    let mut dup_count = 0usize;
    for (i, (ty, id)) in keys.iter().enumerate() {
        let Some(first) = by_key.get(&(*ty, &**id)).filter(|first| *first != i) else {
            continue;
        };
        if raws[first].value == raws[i].value {
            duplicate[i] = true;
            dup_count += 1;
        } else {
            out.unattached.push(DataQualityIssue::new(
                format!("{ty}/{id}"),
                "id",
                format!(
                    "a different resource with the same id was read before (at {}); both are kept",
                    raws[first].origin
                ),
            ));
        }
    }
    let by_full_url = FirstIndex::new(
        raws.iter()
            .enumerate()
            .filter_map(|(i, r)| Some((r.full_url.as_deref()?, i)))
            .collect(),
    );
    let by_id = FirstIndex::new(
        keys.iter()
            .enumerate()
            .map(|(i, (_, id))| (&**id, i))
            .collect(),
    );
    let index = Index {
        by_key,
        by_full_url,
        keys: &keys,
        by_id,
    };

    // Patients first.
    let mut patients: BTreeMap<&str, PatientData> = BTreeMap::new();
    let mut disp: Vec<Option<(Disposition, Option<&str>)>> = vec![None; raws.len()];
    for (i, r) in raws.iter().enumerate() {
        let (ty, id) = &index.keys[i];
        let id: &str = id;
        if *ty != "Patient" || duplicate[i] {
            continue;
        }
        let reference = format!("Patient/{id}");
        let mut issues = Issues::new(reference);
        if let Some(p) = patients.get_mut(id) {
            // Two different Patient resources with one id: whatever they disagree on is
            // UNKNOWN — the same reading whichever comes first, so `screen` (which cannot know
            // the file order) and `assess` read the record alike (issue 16).
            let bad = shape::check(&r.value, "Patient", &mut issues);
            let other = map_patient(&r.value, id, &mut issues);
            issues.retain_specific(&bad);
            let conflicts = reconcile(&mut p.record.patient, &other);
            let problem = if conflicts.is_empty() {
                "second Patient resource with this id (different content, same sex, birth and death dates)".to_string()
            } else {
                format!(
                    "second Patient resource with this id disagrees on {}: read as unknown",
                    conflicts.join(", ")
                )
            };
            issues.add("id", problem);
            p.issues.extend(issues.list);
            disp[i] = Some((Disposition::Ignored, Some(id)));
            continue;
        }
        let bad = shape::check(&r.value, "Patient", &mut issues);
        let patient = map_patient(&r.value, id, &mut issues);
        issues.retain_specific(&bad);
        patients.insert(
            id,
            PatientData {
                id: id.to_string(),
                record: PatientRecord::new(patient),
                issues: issues.list,
                stats: Stats::default(),
            },
        );
        disp[i] = Some((Disposition::Used, Some(id)));
    }

    // Everything else.
    let mut used_medications: BTreeSet<usize> = BTreeSet::new();
    for (i, r) in raws.iter().enumerate() {
        if disp[i].is_some() || duplicate[i] {
            continue;
        }
        let (ty, id) = &index.keys[i];
        let ty: &str = ty;
        // `Type/id`, written without the formatting machinery (once per resource).
        let mut reference = String::with_capacity(ty.len() + 1 + id.len());
        reference.push_str(ty);
        reference.push('/');
        reference.push_str(id);
        let mut issues = Issues::new(reference.as_str());
        let v = &r.value;
        let link = match ty {
            "Medication" | "Organization" | "Practitioner" | "PractitionerRole" | "Location"
            | "OperationOutcome" | "Bundle" => PatientLink::Absent,
            _ => patient_link(v, &index),
        };
        let bad = shape::check(v, ty, &mut issues);
        // Map (independent of the patient).
        let mut med_used = None;
        let (d, item) = match ty {
            "MedicationRequest"
            | "MedicationStatement"
            | "MedicationAdministration"
            | "MedicationDispense" => {
                let src = if let Some(cc) = v.get("medicationCodeableConcept") {
                    med::MedSource::Concept(cc)
                } else if let Some(mr) = v.get("medicationReference") {
                    match s(mr, "reference") {
                        Some(rf) if rf.starts_with('#') => {
                            let want = &rf[1..];
                            match arr(v, "contained")
                                .iter()
                                .find(|c| s(c, "id") == Some(want))
                            {
                                Some(m) => med::MedSource::Resource(m),
                                None => med::MedSource::Unresolved(rf.to_string()),
                            }
                        }
                        Some(rf) => match index.lookup(rf) {
                            Some(j) if index.keys[j].0 == "Medication" => {
                                med_used = Some(j);
                                med::MedSource::Resource(&raws[j].value)
                            }
                            _ => med::MedSource::Unresolved(rf.to_string()),
                        },
                        None => med::MedSource::Concept(mr),
                    }
                } else {
                    med::MedSource::Missing
                };
                if ty == "MedicationDispense" {
                    let o = med::map_dispense(v, &reference, src, &mut issues);
                    (o.disposition, o.record.map(Item::Dispense))
                } else {
                    let o = med::map(v, ty, &reference, src, &mut issues);
                    (o.disposition, o.record.map(Item::Med))
                }
            }
            "ImagingStudy" => {
                let o = imaging::map_imaging_study(v, &reference, &mut issues);
                let item = (o.item.is_some() || o.spine.is_some())
                    .then_some(Item::Imaging(o.item, o.spine));
                (o.disposition, item)
            }
            "DiagnosticReport" => {
                let o = diagnostic_report::map_diagnostic_report(v, &reference, &mut issues);
                (o.disposition, o.item.map(Item::Proc))
            }
            "Observation" => {
                let (device, device_at) = referenced_device(v, &index, &raws);
                med_used = device_at;
                let o = obs::map(v, device, &reference, &mut issues);
                let items = o.items;
                (
                    o.disposition,
                    (!items.is_empty()).then_some(Item::Obs(items)),
                )
            }
            "Condition" => {
                let o = cond::map_condition(v, &reference, &mut issues);
                (o.disposition, o.item.map(Item::Cond))
            }
            "Procedure" => {
                let o = cond::map_procedure(v, &reference, &mut issues);
                (o.disposition, o.item.map(Item::Proc))
            }
            // A misspelled type ("Observationz") is not an irrelevant resource: it may be the
            // very record a rule needs.
            _ if !resource_types::is_resource_type(ty) => {
                issues.add(
                    "resourceType",
                    format!(
                        "{ty:?} is not a FHIR resource type (at {}): not understood",
                        r.origin
                    ),
                );
                (Disposition::NotUnderstood, None)
            }
            _ => (Disposition::Ignored, None),
        };
        issues.retain_specific(&bad);
        // A wrong shape where the code, medication or patient should be: not understood, not
        // "irrelevant".
        let d = if d == Disposition::Ignored && bad.iter().any(|f| shape::is_identity(f)) {
            Disposition::NotUnderstood
        } else {
            d
        };
        let target = match link {
            PatientLink::Known(p) => Some(p),
            PatientLink::Placeholder(p) => {
                patients.entry(p).or_insert_with(|| placeholder(p));
                Some(p)
            }
            PatientLink::Unresolvable(why) => {
                if d != Disposition::Ignored {
                    issues.add("subject", format!("{why}: not attached to a patient"));
                }
                None
            }
            PatientLink::Absent => {
                if d != Disposition::Ignored {
                    issues.add("subject", "no patient reference: not attached to a patient");
                }
                None
            }
        };
        match (target, item) {
            (Some(p), item) => {
                if let Some(pd) = patients.get_mut(p) {
                    if let Some(item) = item {
                        if let Some(j) = med_used {
                            used_medications.insert(j);
                        }
                        item.push(&mut pd.record);
                    }
                    pd.issues.extend(issues.list);
                }
                disp[i] = Some((d, Some(p)));
            }
            (None, _) => {
                // A mappable resource without a patient cannot be used.
                let d = if d == Disposition::Ignored {
                    Disposition::Ignored
                } else {
                    Disposition::NotUnderstood
                };
                out.unattached.extend(issues.list);
                disp[i] = Some((d, None));
            }
        }
    }
    // Medication (and Device) resources referenced by a used record count as used.
    for j in used_medications {
        if let Some((d, _)) = disp[j].as_mut() {
            *d = Disposition::Used;
        }
    }
    // Tally, by borrowed type name (and patient): one `String` per type in the output.
    let mut by_type: Vec<(&str, TypeCounts)> = Vec::new();
    let mut by_patient: Vec<((&str, &str), TypeCounts)> = Vec::new();
    for (i, d) in disp.iter().enumerate() {
        let ty = index.keys[i].0;
        let (d, p) = d.unwrap_or((Disposition::Ignored, None));
        tally(&mut by_type, ty, d);
        if let Some(p) = p {
            tally(&mut by_patient, (p, ty), d);
        }
    }
    out.stats.by_type = by_type
        .into_iter()
        .map(|(ty, c)| (ty.to_string(), c))
        .collect();
    for ((p, ty), c) in by_patient {
        if let Some(pd) = patients.get_mut(p) {
            pd.stats.by_type.insert(ty.to_string(), c);
        }
    }
    if dup_count > 0 {
        out.unattached.push(DataQualityIssue::new(
            "",
            "",
            format!("{dup_count} exact duplicate resource(s) (same type, id and content) were read once"),
        ));
    }
    out.patients = patients
        .into_values()
        .map(|mut p| {
            p.record.canonicalise();
            p
        })
        .collect();
    out
}

/// The Device an Observation's `device` references (§6.2, v0.10.3): a contained `#id` Device,
/// or a Device in the input (with its raw index, so it counts as used).
fn referenced_device<'v>(
    v: &'v json::Value<'v>,
    index: &Index<'_>,
    raws: &'v [input::Raw<'v>],
) -> (Option<&'v json::Value<'v>>, Option<usize>) {
    let Some(rf) = v.get("device").and_then(|d| s(d, "reference")) else {
        return (None, None);
    };
    let is_device = |d: &json::Value| s(d, "resourceType") == Some("Device");
    if let Some(want) = rf.strip_prefix('#') {
        let found = arr(v, "contained")
            .iter()
            .find(|c| s(c, "id") == Some(want) && is_device(c));
        return (found, None);
    }
    match index.lookup(rf) {
        Some(j) if index.keys[j].0 == "Device" => (Some(&raws[j].value), Some(j)),
        _ => (None, None),
    }
}

enum Item {
    Med(osteoguard_core::model::MedicationRecord),
    Obs(Vec<osteoguard_core::model::Observation>),
    Cond(osteoguard_core::model::Condition),
    Proc(osteoguard_core::model::Procedure),
    Dispense(osteoguard_core::model::MedicationDispense),
    /// An ImagingStudy: as a DXA scan, as spine imaging (a procedure), or both.
    Imaging(
        Option<osteoguard_core::model::ImagingStudy>,
        Option<osteoguard_core::model::Procedure>,
    ),
}

impl Item {
    fn push(self, r: &mut PatientRecord) {
        match self {
            Item::Med(m) => r.medications.push(m),
            Item::Obs(o) => r.observations.extend(o),
            Item::Cond(c) => r.conditions.push(c),
            Item::Proc(p) => r.procedures.push(p),
            Item::Dispense(d) => r.dispenses.push(d),
            Item::Imaging(i, p) => {
                r.imaging_studies.extend(i);
                r.procedures.extend(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::type_and_id;
    use proptest::prelude::*;

    /// The reading before it stopped collecting every segment into a `Vec` (kept as the oracle).
    fn type_and_id_by_vec(reference: &str) -> Option<(&str, &str)> {
        if reference.contains('?') || reference.starts_with('#') {
            return None;
        }
        let mut parts: Vec<&str> = reference.split('/').filter(|p| !p.is_empty()).collect();
        if parts.len() >= 4 && parts[parts.len() - 2] == "_history" {
            parts.truncate(parts.len() - 2);
        }
        let n = parts.len();
        if n < 2 {
            return None;
        }
        let (ty, id) = (parts[n - 2], parts[n - 1]);
        ty.chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
            .then_some((ty, id))
    }

    #[test]
    fn type_and_id_reads_relative_absolute_and_versioned_references() {
        for (reference, want) in [
            ("Patient/p-1", Some(("Patient", "p-1"))),
            ("https://x.org/r4/Patient/p-1", Some(("Patient", "p-1"))),
            ("Patient/p-1/_history/3", Some(("Patient", "p-1"))),
            (
                "https://x.org/r4/Medication/m/_history/3",
                Some(("Medication", "m")),
            ),
            ("Patient/p-1/_history", None),
            ("Patient//p-1/", Some(("Patient", "p-1"))),
            ("patient/p-1", None),
            ("#med", None),
            ("Patient?identifier=x", None),
            ("p-1", None),
            ("", None),
        ] {
            assert_eq!(type_and_id(reference), want, "{reference}");
            assert_eq!(type_and_id_by_vec(reference), want, "{reference}");
        }
    }

    proptest! {
        #[test]
        fn type_and_id_reads_as_before(reference in "[A-Pa-p_/#?:]{0,24}") {
            prop_assert_eq!(type_and_id(&reference), type_and_id_by_vec(&reference));
        }

        #[test]
        fn type_and_id_reads_history_references_as_before(
            segs in proptest::collection::vec(
                proptest::sample::select(vec!["", "Patient", "p", "_history", "3", "http:", "Obs"]),
                0..7,
            ),
        ) {
            let reference = segs.join("/");
            prop_assert_eq!(type_and_id(&reference), type_and_id_by_vec(&reference));
        }
    }
}

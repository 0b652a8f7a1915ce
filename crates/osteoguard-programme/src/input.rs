//! Reading the input into per-patient [`ProgrammeInput`]s with the two readers that already
//! exist, never a third: `osteoguard-fhir` gives the patient model the rules read (Bundle file,
//! NDJSON, Bulk Data export directory), and `osteoguard-measure`'s reader (the same inputs)
//! gives what that model leaves out and the KPIs need — Encounters (KPI 8) and the codes of
//! Observations, Procedures and ServiceRequests (the site-mapped value sets of KPIs 5 and 7).
//! The two are joined by `Patient.id`.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use osteoguard_core::config::SiteCode;
use osteoguard_core::model::PatientRecord;
use osteoguard_core::programme::{Death, Item, ItemKind};
use osteoguard_measure::model::{CodeableConcept, Period, Record};

use crate::ProgrammeError;

/// One patient: the record and the extra items.
#[derive(Debug, Clone)]
pub struct PatientInput {
    pub id: String,
    pub record: PatientRecord,
    pub items: Vec<Item>,
    /// `Patient.deceasedBoolean: true` without a date (the reader's data-quality note).
    pub death: Death,
}

/// Every patient of the input, sorted by id, and what the readers reported.
#[derive(Debug, Default)]
pub struct Input {
    pub patients: Vec<PatientInput>,
    /// Resources read by each reader.
    pub resources_read: u64,
    /// Problems the readers reported (files, lines, resources skipped), counted.
    pub reader_issues: usize,
}

/// A FHIR date / dateTime to its day: the first day of a partial date (the reader's rule for a
/// point or a start); `None` when absent or unreadable.
fn day(text: Option<&str>) -> Option<NaiveDate> {
    osteoguard_fhir::parse_fhir_datetime(text?)
        .ok()
        .and_then(|d| d.date.first())
}

fn period_start(p: Option<&Period>) -> Option<NaiveDate> {
    day(p?.start.as_deref())
}

fn codes<'a>(concepts: impl IntoIterator<Item = &'a CodeableConcept>) -> Vec<SiteCode> {
    concepts
        .into_iter()
        .flat_map(|c| c.coding.iter())
        .filter_map(|c| {
            Some(SiteCode {
                system: c.system.clone()?,
                code: c.code.clone()?,
            })
        })
        .collect()
}

/// The KPI items of one measure-reader record.
pub fn items_of(r: &Record) -> Vec<Item> {
    let mut out = Vec::new();
    for e in &r.encounters {
        out.push(Item {
            source: format!("Encounter/{}", e.id),
            kind: ItemKind::Encounter,
            codes: codes(&e.type_),
            date: period_start(e.period.as_ref()),
            visible: None,
            status: e.status.clone(),
            do_not_perform: false,
        });
    }
    for o in &r.observations {
        out.push(Item {
            source: format!("Observation/{}", o.id),
            kind: ItemKind::Observation,
            codes: codes(o.code.iter()),
            date: day(o.effective_date_time.as_deref())
                .or_else(|| day(o.effective_instant.as_deref()))
                .or_else(|| period_start(o.effective_period.as_ref())),
            // §1.2: an Observation is visible from `issued`, else from its effective date.
            visible: day(o.issued.as_deref()),
            status: o.status.clone(),
            do_not_perform: false,
        });
    }
    for p in &r.procedures {
        out.push(Item {
            source: format!("Procedure/{}", p.id),
            kind: ItemKind::Procedure,
            codes: codes(p.code.iter()),
            date: day(p.performed_date_time.as_deref())
                .or_else(|| period_start(p.performed_period.as_ref())),
            // §1.2: a Procedure is visible from `performed[x]`, the end of a period.
            visible: p
                .performed_period
                .as_ref()
                .and_then(|pp| day(pp.end.as_deref())),
            status: p.status.clone(),
            do_not_perform: false,
        });
    }
    for s in &r.service_requests {
        out.push(Item {
            source: format!("ServiceRequest/{}", s.id),
            kind: ItemKind::ServiceRequest,
            codes: codes(s.code.iter()),
            date: day(s.authored_on.as_deref()),
            visible: None,
            status: s.status.clone(),
            do_not_perform: s.do_not_perform == Some(true),
        });
    }
    out.sort_by(|a, b| (a.date, &a.source).cmp(&(b.date, &b.source)));
    out
}

/// Reads `path` (a Bundle or resource file, an NDJSON file, or a directory such as a Bulk Data
/// export) with both readers.
pub fn read(path: &Path) -> Result<Input, ProgrammeError> {
    let fhir =
        osteoguard_fhir::read_path(path).map_err(|e| ProgrammeError::Input(e.to_string()))?;
    let measure = osteoguard_measure::input::read_records(path)
        .map_err(|e| ProgrammeError::Input(e.to_string()))?;
    let mut extra: BTreeMap<String, Vec<Item>> = measure
        .records
        .iter()
        .map(|r| (r.patient.id.clone(), items_of(r)))
        .collect();
    let mut patients: Vec<PatientInput> = fhir
        .patients
        .into_iter()
        .map(|p| PatientInput {
            items: extra.remove(&p.id).unwrap_or_default(),
            death: if p.issues.iter().any(|i| i.field == "deceasedBoolean") {
                Death::Undated
            } else {
                Death::AsRecorded
            },
            id: p.id,
            record: p.record,
        })
        .collect();
    patients.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Input {
        patients,
        resources_read: fhir.stats.total().read,
        reader_issues: fhir.unattached.len() + measure.issues.len(),
    })
}

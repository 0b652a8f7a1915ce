//! # osteoguard-programme — the fracture-liaison programme report
//!
//! `osteoguard programme-report INPUT --period-start D --period-end D [--as-of D] [--db F]`:
//! the eleven patient-level KPIs of knowledge.md §13 (IOF Capture the Fracture, 2020) over
//! every patient of the input with an index fracture in the period, with their levels, the
//! pending and UNKNOWN counts and KPI 11 (completeness), each KPI drillable to its patients;
//! beside them the screening registry's history ([`registry`]). Output: one self-contained
//! HTML page with SVG charts ([`html`]) or JSON (schema [`SCHEMA`]).
//!
//! The clinical logic (index fracture, windows, pending and deceased rules, three-valued
//! answers, aggregation and levels) lives in `osteoguard_core::programme`; this crate reads the
//! input ([`input`], with the existing readers), the registry, and renders.

pub mod cli;
pub mod html;
pub mod input;
pub mod registry;

use std::path::Path;

use chrono::NaiveDate;
use osteoguard_core::programme::aggregate::{summarise, ProgrammeSummary};
use osteoguard_core::programme::kpis::falls_risk_codes;
use osteoguard_core::programme::{
    evaluate_patient_with, PatientProgramme, ProgrammeInput, ReportingPeriod,
};
use osteoguard_core::Config;
use serde::Serialize;

pub use cli::{run as run_cli, ProgrammeArgs};

/// The JSON contract of the report; fields are added, never renamed or removed.
pub const SCHEMA: &str = "osteoguard.programme/1";

#[derive(Debug, thiserror::Error)]
pub enum ProgrammeError {
    #[error("cannot read the input: {0}")]
    Input(String),
    #[error("cannot read the registry: {0}")]
    Registry(String),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write the report: {0}")]
    Output(String),
}

/// What the report was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub period: ReportingPeriod,
    pub as_of: NaiveDate,
    /// How `as_of` was chosen (given, or derived from the period end), said in the report.
    pub as_of_source: String,
    pub config: Config,
}

/// The report (`osteoguard.programme/1`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema: &'static str,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub as_of: NaiveDate,
    pub as_of_source: String,
    pub input: String,
    pub resources_read: u64,
    pub reader_issues: usize,
    pub summary: ProgrammeSummary,
    /// The per-patient answers of every patient with an index fracture (drill-down), and the
    /// index outcome of those without.
    pub patients: Vec<PatientProgramme>,
    pub registry: Option<registry::RegistryFigures>,
    /// The site value sets used (KPI 5 falls-risk, KPI 7 exercise), `system|code`.
    pub value_sets: ValueSets,
    /// The readings chosen where §13 leaves room, and what is not read.
    pub notes: Vec<String>,
    pub provenance: osteoguard_core::Provenance,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueSets {
    pub falls_risk: Vec<String>,
    pub exercise: Vec<String>,
}

/// The readings of §13 this implementation chose (also in docs/programme-report.md).
pub const NOTES: &[&str] = &[
    "How each KPI is read from FHIR is osteoguard's encoding (UNVERIFIED as a mapping): a registry abstracts these by hand; this report derives them from the record.",
    "Index fracture: the earliest fragility fracture with onset in the period in a patient aged 50 or more at its onset and with no fragility fracture in the 365 days before it; a re-fracture or a fracture before the 50th birthday earlier in the period does not hide a later one that qualifies. When none qualifies the earliest fracture's reason is reported (re-fracture, under 50). Traumatic fractures and ICD-10-CM follow-up encounter codes are not fragility fracture events.",
    "Pending: a window [day 0, day N] has ended only when the as-of date is after day N; until then the KPI is pending (out of the denominator), even when the evidence is already there.",
    "Deceased: a patient whose death date (on or before the as-of date) is on or before the last day of the window is excluded from KPIs 7–10. A death recorded without a date (deceasedBoolean) cannot be placed: the patient may have died before the window ended, so a KPI 7–10 answer that is not TRUE is UNKNOWN (never FALSE).",
    "Proportions are TRUE / (TRUE + FALSE); UNKNOWN is not FALSE and is shown beside, with the lower bound TRUE / (TRUE + FALSE + UNKNOWN). Levels: < 50 % red, 50–80 % amber, > 80 % green; KPI 6: ≥ 50 % green, else red; KPI 1 is a count without a level.",
    "KPI 6 counts osteoguard's own findings (osteoporosis-treatment-indicated, denosumab-*) evaluated on day 0, on each day the record changed within the window and on day 112.",
    "KPI 8 is UNKNOWN (not FALSE) for a patient with no Encounter at all in the input: the export may not carry encounters.",
    "KPI 9: 'active oral AOM order' is read as status active (a completed or stopped order does not count). 'Dispensed' is a MedicationDispense of a §4.3 agent with status completed, dated whenHandedOver (the day the patient has it), else whenPrepared; one with status unknown or neither date is UNKNOWN; one not handed over (preparation, in-progress, on-hold) or not dispensed (cancelled, declined, stopped, entered-in-error) does not count.",
    "KPIs 3 and 4: a DXA ImagingStudy (a §10.3 DXA procedure code in procedureCode, or DICOM modality BMD) counts like a completed DXA Procedure, dated by started, when its status is available or registered (the study exists); status unknown or no started date → UNKNOWN; cancelled or entered-in-error does not count.",
    "KPI 10 uses osteoguard's §4.3 'active therapy' on day 364, plus a denosumab dose within 7 months (210 days: §1.2 months are fixed day counts; the §4.3 denosumab window) or a zoledronate administration within 12 months (365 days, §1.2) before it; an administration of either with status unknown in those days makes it UNKNOWN.",
    "Statuses (§1.6): an Observation counts when final, amended, corrected or preliminary; a Procedure when completed; an Encounter is a contact when arrived, triaged, in-progress, onleave or finished (not planned, cancelled, entered-in-error); a ServiceRequest (KPI 7) is a referral when active, on-hold or completed (not draft, revoked, entered-in-error, nor do-not-perform). An unknown or absent status in the window is UNKNOWN. An Observation is visible from its issued date (§1.2). A FRAX value outside 0–100 % is not a FRAX (§3.4).",
];

/// Evaluates every patient of `input` and aggregates (no registry).
pub fn evaluate(input: &input::Input, opts: &Options) -> (ProgrammeSummary, Vec<PatientProgramme>) {
    let patients: Vec<PatientProgramme> = input
        .patients
        .iter()
        .map(|p| {
            evaluate_patient_with(
                &ProgrammeInput {
                    record: &p.record,
                    items: &p.items,
                },
                opts.period,
                opts.as_of,
                &opts.config,
                p.death,
            )
        })
        .collect();
    (summarise(&patients), patients)
}

/// Reads the input (and the registry), evaluates and builds the report.
pub fn report(path: &Path, db: Option<&Path>, opts: &Options) -> Result<Report, ProgrammeError> {
    if opts.period.end < opts.period.start {
        return Err(ProgrammeError::Usage(format!(
            "the period ends ({}) before it starts ({})",
            opts.period.end, opts.period.start
        )));
    }
    let input = input::read(path)?;
    report_from(input, path, db, opts)
}

/// As [`report`], for an input already read from `path`.
pub fn report_from(
    input: input::Input,
    path: &Path,
    db: Option<&Path>,
    opts: &Options,
) -> Result<Report, ProgrammeError> {
    let (summary, patients) = evaluate(&input, opts);
    let registry = db.map(registry::read).transpose()?;
    let code = |c: &osteoguard_core::config::SiteCode| format!("{}|{}", c.system, c.code);
    Ok(Report {
        schema: SCHEMA,
        period_start: opts.period.start,
        period_end: opts.period.end,
        as_of: opts.as_of,
        as_of_source: opts.as_of_source.clone(),
        input: path.display().to_string(),
        resources_read: input.resources_read,
        reader_issues: input.reader_issues,
        summary,
        patients: patients
            .into_iter()
            .filter(|p| !matches!(p.index, osteoguard_core::programme::IndexOutcome::None))
            .collect(),
        registry,
        value_sets: ValueSets {
            falls_risk: falls_risk_codes(&opts.config).iter().map(code).collect(),
            exercise: opts.config.programme.exercise.iter().map(code).collect(),
        },
        notes: NOTES.iter().map(|s| s.to_string()).collect(),
        provenance: opts.config.provenance(),
    })
}

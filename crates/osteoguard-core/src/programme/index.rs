//! The index (sentinel) fracture of a reporting period — knowledge.md §13:
//!
//! > For a reporting period [P0, P1]: the earliest fragility fracture (vertebral, 7.2; or
//! > non-vertebral, 10.3a) with onset in the period, in a patient aged ≥ 50 at onset, with no
//! > fragility fracture in the 365 days before it (else it is a re-fracture: counted separately,
//! > not as an index). Onset by `onset[x]` (period start), else `recordedDate`. Day 0 = index
//! > onset.
//!
//! Reading (literal, stated in the report's notes): the age and re-fracture conditions qualify
//! the fracture, so the index is the earliest fracture in the period that meets both; a
//! re-fracture or a fracture before the 50th birthday early in a long period does not hide a
//! later sentinel fracture (more than 365 days after any other). When none qualifies, the
//! earliest fracture's reason is reported (re-fracture, under age). A fragility fracture
//! is a valid Condition (not refuted / entered in error) whose site is a fragility site (§10.3a,
//! vertebral §7.2), not recorded as traumatic, and not an ICD-10-CM follow-up encounter code
//! (7th character D/G/K/S, §10.3: a follow-up of an earlier fracture, not a new event).

use chrono::NaiveDate;
use serde::Serialize;

use super::ReportingPeriod;
use crate::engine::age_at;
use crate::model::{
    add_days, Condition, ConditionKind, FractureMechanism, FractureSite, PatientRecord,
};
use crate::thresholds::{KPI_INDEX_MIN_AGE_YEARS, KPI_REFRACTURE_LOOKBACK_DAYS};

/// The index fracture of a patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexFracture {
    /// `Condition/id`.
    pub source: String,
    /// Day 0.
    pub onset: NaiveDate,
    /// Vertebral (§7.2) or non-vertebral (§10.3a).
    pub vertebral: bool,
    pub age_years: i64,
    pub display: String,
    /// The patient's death date when the record has one (§13 deceased rule).
    pub deceased: Option<NaiveDate>,
}

/// Whether and why a patient has an index fracture in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum IndexOutcome {
    Index(IndexFracture),
    /// The earliest fracture in the period followed another within 365 days: a re-fracture,
    /// counted separately (§13).
    #[serde(rename_all = "camelCase")]
    Refracture {
        source: String,
        onset: NaiveDate,
        prior: String,
        prior_onset: NaiveDate,
    },
    /// Aged under 50 at onset.
    #[serde(rename_all = "camelCase")]
    UnderAge {
        source: String,
        onset: NaiveDate,
        age_years: i64,
    },
    /// No birth date: whether the fracture is an index is UNKNOWN (not "no").
    #[serde(rename_all = "camelCase")]
    AgeUnknown {
        source: String,
        onset: NaiveDate,
    },
    /// No fragility fracture with onset in the period, but fragility fractures without any
    /// onset or recorded date exist: UNKNOWN whether one is an index.
    #[serde(rename_all = "camelCase")]
    OnsetUnknown {
        sources: Vec<String>,
    },
    /// No fragility fracture with onset in the period.
    None,
}

impl IndexOutcome {
    /// The short label used in the report's tallies.
    pub fn label(&self) -> &'static str {
        match self {
            IndexOutcome::Index(_) => "index",
            IndexOutcome::Refracture { .. } => "re-fracture",
            IndexOutcome::UnderAge { .. } => "under-age",
            IndexOutcome::AgeUnknown { .. } => "age-unknown",
            IndexOutcome::OnsetUnknown { .. } => "onset-unknown",
            IndexOutcome::None => "none",
        }
    }
}

/// A fracture that counts as a fragility fracture event (see the module documentation).
pub fn is_fragility_fracture(c: &Condition) -> bool {
    matches!(c.kind, ConditionKind::Fracture(site) if site.is_fragility_site())
        && c.is_valid()
        && c.mechanism != Some(FractureMechanism::Traumatic)
        && !c.subsequent_encounter
}

/// Onset by `onset[x]` (period start), else `recordedDate` (§13).
pub fn onset_of(c: &Condition) -> Option<NaiveDate> {
    c.onset.and_then(|p| p.start).or(c.recorded)
}

fn is_vertebral(c: &Condition) -> bool {
    matches!(c.kind, ConditionKind::Fracture(FractureSite::Vertebral(_)))
}

/// The §13 index fracture of `record` (already the record visible on the as-of date): "the
/// earliest fragility fracture (...) with onset in the period, in a patient aged ≥ 50 at onset,
/// with no fragility fracture in the 365 days before it". The conditions qualify the fracture:
/// the fractures in the period are taken in onset order and the first that meets both is the
/// index, so a re-fracture (or a fracture before the 50th birthday) early in the period does not
/// hide a later sentinel fracture more than 365 days after any other (the reading that does not
/// leave a patient who needs the service out of the report; found by tools/oracle-prog). When
/// none qualifies, the earliest one's reason is reported.
pub fn find_index(record: &PatientRecord, period: ReportingPeriod) -> IndexOutcome {
    let fractures: Vec<&Condition> = record
        .conditions
        .iter()
        .filter(|c| is_fragility_fracture(c))
        .collect();
    let mut candidates: Vec<(NaiveDate, &str, &Condition)> = fractures
        .iter()
        .filter_map(|c| onset_of(c).map(|d| (d, c.source.as_str(), *c)))
        .filter(|(d, _, _)| period.contains(*d))
        .collect();
    candidates.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    if candidates.is_empty() {
        let undated: Vec<String> = fractures
            .iter()
            .filter(|c| onset_of(c).is_none())
            .map(|c| c.source.to_string())
            .collect();
        return if undated.is_empty() {
            IndexOutcome::None
        } else {
            IndexOutcome::OnsetUnknown { sources: undated }
        };
    }
    let mut first: Option<IndexOutcome> = None;
    for (onset, _, c) in candidates {
        let outcome = qualify(&fractures, record, onset, c);
        if matches!(
            outcome,
            IndexOutcome::Index(_) | IndexOutcome::AgeUnknown { .. }
        ) {
            // an index; or no birth date, which no later fracture can decide either
            return match (outcome, first) {
                (IndexOutcome::AgeUnknown { .. }, Some(earlier)) => earlier,
                (outcome, _) => outcome,
            };
        }
        first.get_or_insert(outcome);
    }
    first.unwrap_or(IndexOutcome::None)
}

/// Whether the fracture `c` with onset `onset` is an index (§13), else why not.
fn qualify(
    fractures: &[&Condition],
    record: &PatientRecord,
    onset: NaiveDate,
    c: &Condition,
) -> IndexOutcome {
    let source = c.source.to_string();
    // A fragility fracture in the 365 days before (day −365 … day −1).
    let lookback_start = add_days(onset, -KPI_REFRACTURE_LOOKBACK_DAYS);
    let prior = fractures
        .iter()
        .filter_map(|p| onset_of(p).map(|d| (d, p.source.as_str())))
        .filter(|(d, _)| lookback_start <= *d && *d < onset)
        .max();
    if let Some((prior_onset, prior)) = prior {
        return IndexOutcome::Refracture {
            source,
            onset,
            prior: prior.to_string(),
            prior_onset,
        };
    }
    let Some(birth) = record.patient.birth_date else {
        return IndexOutcome::AgeUnknown { source, onset };
    };
    let age_years = age_at(birth, onset);
    if age_years < KPI_INDEX_MIN_AGE_YEARS {
        return IndexOutcome::UnderAge {
            source,
            onset,
            age_years,
        };
    }
    IndexOutcome::Index(IndexFracture {
        source,
        onset,
        vertebral: is_vertebral(c),
        age_years,
        display: c.display.clone(),
        deceased: record.patient.deceased,
    })
}

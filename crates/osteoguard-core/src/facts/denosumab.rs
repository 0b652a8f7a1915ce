//! Denosumab course facts — knowledge.md §5.1–§5.2 (PROLIA-PI, LYU-2020, ECTS-2021).
//!
//! Dose dates come from the highest source tier that has any dated dose (never a merge):
//! MedicationAdministration(completed) > MedicationStatement effectiveDateTime >
//! MedicationRequest authoredOn (uncertain dates).

use chrono::NaiveDate;
use serde::Serialize;

use super::Input;
use crate::model::{Ingredient, MedicationSource, SourceRef};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dose {
    pub date: NaiveDate,
    pub source: SourceRef,
    pub tier: MedicationSource,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// First bisphosphonate dose/start after `D_last`.
    pub date: NaiveDate,
    pub agent: Ingredient,
    pub source: SourceRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct DenosumabCourse {
    /// Distinct osteoporosis-schedule (60 mg) doses, ascending (≥ 60 days apart).
    pub doses: Vec<Dose>,
    /// `D_last`.
    pub d_last: Option<Dose>,
    /// `dmab_dose_count`.
    pub dose_count: usize,
    /// Dates come from MedicationRequest.authoredOn (`uncertain_date`).
    pub uncertain_dates: bool,
    /// Denosumab records without any usable date (data-insufficient item 8).
    pub undated: Vec<SourceRef>,
    /// Explicitly stopped: MedicationRequest stopped/completed with no newer order, or
    /// MedicationStatement stopped (§9 discontinuation (b)).
    pub explicitly_stopped: Option<SourceRef>,
    /// `transition_given` (§5.2): a bisphosphonate administered/started after `D_last`, ≤ as_of.
    pub transition: Option<Transition>,
    /// `Z`: the latest zoledronate dose after `D_last` (§5.2 v0.10).
    pub zoledronate_after: Option<Dose>,
    /// Denosumab 120 mg (Xgeva, oncology) records: recognised, excluded from the schedule.
    pub oncology_records: Vec<SourceRef>,
    /// An active denosumab order with an explicit occurrence (for "due", §8).
    pub ordered_occurrence: Option<(NaiveDate, SourceRef)>,
}

impl DenosumabCourse {
    /// `as_of − D_last` in days.
    pub fn days_since_last(&self, as_of: NaiveDate) -> Option<i64> {
        self.d_last
            .as_ref()
            .map(|d| crate::model::days(d.date, as_of))
    }
}

pub fn compute(input: &Input<'_>) -> DenosumabCourse {
    let _ = input;
    DenosumabCourse::default()
}

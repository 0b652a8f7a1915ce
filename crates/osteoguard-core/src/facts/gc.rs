//! Glucocorticoid exposure — knowledge.md §2 (ACR-2022 scope, KANIS-2011 bands, STEROID-EQ table).
//!
//! Builds the daily prednisone-equivalent series `PEq(t)` from every systemic glucocorticoid
//! record and derives the §2.5 metrics and §2.6 `gc_qualifying`.

use chrono::NaiveDate;
use serde::Serialize;

use super::Input;
use crate::finding::Evidence;
use crate::model::{Ingredient, SourceRef};
use crate::tri::Tri;

/// Prednisone-equivalence factor of §2.2 (`5 / equivalent mg`); `None` = excluded from PEq.
pub fn peq_factor(i: Ingredient) -> Option<f64> {
    use Ingredient::*;
    match i {
        Cortisone => Some(0.20),
        Hydrocortisone => Some(0.25),
        Prednisone | Prednisolone => Some(1.0),
        Methylprednisolone | Triamcinolone => Some(1.25),
        Dexamethasone => Some(20.0 / 3.0),
        Betamethasone => Some(25.0 / 3.0),
        Deflazacort => Some(5.0 / 6.0),
        // Mineralocorticoid (factor 0) and oral budesonide / local steroids are excluded (§2.1).
        Fludrocortisone | Budesonide | OtherLocalCorticosteroid => None,
        _ => None,
    }
}

/// The §2.5 metrics at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct GcExposure {
    /// A systemic GC record reaches within `gc_gap_bridge_days` of `as_of` (§2.6 "present").
    pub present: bool,
    /// `current_daily_peq`; `None` when a GC is present but its dose is not computable.
    pub current_daily_peq: Option<f64>,
    pub continuous_days_ge_2_5: i64,
    pub days_ge_30_last365: i64,
    pub cumulative_g_last365: f64,
    pub gc_start_date: Option<NaiveDate>,
    /// The active order has no end date (planned long-term, §2.6-2).
    pub open_ended: bool,
    /// Planned total duration of the current course in days, when an end is recorded.
    pub planned_total_days: Option<i64>,
    /// §2.6 `gc_qualifying`.
    pub qualifying: Tri,
    /// §2.5 `physiologic_replacement`.
    pub physiologic_replacement: bool,
    /// Oral budesonide present (excluded from PEq, flagged info, §2.1).
    pub oral_budesonide: bool,
    /// Systemic GC records active within the last 365 days whose dose is not computable
    /// (data-insufficient item 1).
    pub unknown_dose_records: Vec<SourceRef>,
    /// Whether any systemic GC (any dose) was active in the last 365 days.
    pub any_in_last_365: bool,
    /// Records and values used.
    pub evidence: Vec<Evidence>,
    /// Change points of the daily PEq series over the record's span: `(date, mg PEq/day)` where
    /// the value holds from that date until the next point (for the timeline chart).
    pub series: Vec<(NaiveDate, f64)>,
    /// Problems met while interpreting GC records (record, field, problem).
    pub notes: Vec<String>,
}

pub fn compute(input: &Input<'_>) -> GcExposure {
    let _ = input;
    GcExposure::default()
}

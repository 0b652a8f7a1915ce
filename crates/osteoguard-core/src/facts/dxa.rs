//! Bone density — knowledge.md §6 (WHO-1994 categories, ISCD least significant change).

use chrono::NaiveDate;
use serde::Serialize;

use super::spine::SpineFacts;
use super::Input;
use crate::finding::Evidence;
use crate::model::{DxaSite, SourceRef};
use crate::tri::Tri;

/// A T-score (or Z-score) reading used for categorisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreReading {
    pub source: SourceRef,
    pub site: DxaSite,
    pub date: NaiveDate,
    pub value: f64,
    /// Older than `dxa_stale_days` (still used, flagged, §3.1).
    pub stale: bool,
}

/// WHO-1994 categories (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhoCategory {
    Normal,
    LowBoneMass,
    Osteoporosis,
    SevereOsteoporosis,
}

/// A significant change between two comparable scans (§6.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BmdChange {
    pub site: DxaSite,
    pub earlier: NaiveDate,
    pub later: NaiveDate,
    /// Percent change of BMD (negative = loss); `None` when T-score based.
    pub pct_change: Option<f64>,
    /// T-score change (negative = loss) when T-scores are known at both.
    pub t_change: Option<f64>,
    pub lsc_pct: Option<f64>,
    /// T-score fallback used (`approximate_t_based`).
    pub approximate_t_based: bool,
    /// Loss ≥ LSC (or ≥ 0.5 T).
    pub significant_loss: bool,
    /// Loss ≥ 2× LSC (or ≥ 1.0 T).
    pub large_loss: bool,
    pub later_t: Option<f64>,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct DxaFacts {
    /// Most recent T-score per site (lumbar spine, total hip, femoral neck; forearm only when
    /// none of those exists), §3.1 / §6.3.
    pub latest_t: Vec<ScoreReading>,
    /// `min_T_hip_spine` (§3.1).
    pub min_t: Option<ScoreReading>,
    /// `Z_hip_spine` (§3.1, for age < 40).
    pub min_z: Option<ScoreReading>,
    /// Dates of every DXA result (BMD, T or Z), ascending.
    pub dxa_dates: Vec<NaiveDate>,
    pub latest_dxa: Option<NaiveDate>,
    pub who: Option<WhoCategory>,
    /// `bmd-significant-loss` for the latest two comparable scans (§6.2; §9).
    pub latest_change: Option<BmdChange>,
    /// Whether the most recent DXA could be validly compared with any earlier DXA ≥ 180 days
    /// before it (data-insufficient item 6); `None` when fewer than 2 scans exist.
    pub comparison_possible: Option<bool>,
    /// Why a comparison was refused (device mismatch, spine confounded …).
    pub comparison_notes: Vec<String>,
    /// Time series for charts: every T-score `(date, site, value, source)`.
    pub t_series: Vec<(NaiveDate, DxaSite, f64, SourceRef)>,
}

/// `bmd-significant-loss` restricted to pairs whose earlier scan is dated ≤ `earlier_max` and
/// later scan > `later_after` (used by the rebound rule, §9). TRUE = significant loss found;
/// FALSE = a valid pair exists and shows no significant loss; UNKNOWN = no valid pair.
pub fn loss_between(
    input: &Input<'_>,
    spine: &SpineFacts,
    earlier_max: NaiveDate,
    later_after: NaiveDate,
) -> (Tri, Option<BmdChange>) {
    let _ = (input, spine, earlier_max, later_after);
    (Tri::Unknown, None)
}

pub fn compute(input: &Input<'_>, spine: &SpineFacts) -> DxaFacts {
    let _ = (input, spine);
    DxaFacts::default()
}

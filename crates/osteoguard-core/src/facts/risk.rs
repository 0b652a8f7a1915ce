//! Fracture-risk category — knowledge.md §3 (ACR-2022 risk table, GC-adjusted FRAX per
//! ACR-2017/KANIS-2011), with the three-valued logic of §1.4.

use serde::{Deserialize, Serialize};

use super::dxa::DxaFacts;
use super::gc::GcExposure;
use super::spine::SpineFacts;
use super::therapy::TherapyFacts;
use super::Input;
use crate::finding::Evidence;
use crate::tri::Tri;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskCategory {
    /// Rows A5/B4/B5, and under 18 (reported as `unknown`, §3.5).
    Indeterminate,
    Low,
    Moderate,
    High,
    VeryHigh,
}

impl RiskCategory {
    /// The JSON value (§3.5: indeterminate → `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            RiskCategory::Indeterminate => "unknown",
            RiskCategory::Low => "low",
            RiskCategory::Moderate => "moderate",
            RiskCategory::High => "high",
            RiskCategory::VeryHigh => "very-high",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            RiskCategory::Indeterminate => "indeterminate",
            RiskCategory::Low => "low",
            RiskCategory::Moderate => "moderate",
            RiskCategory::High => "high",
            RiskCategory::VeryHigh => "very high",
        }
    }
}

/// A FRAX value as used (after §3.3 adjustment).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FraxUsed {
    pub raw: f64,
    pub adjusted: f64,
    pub multiplier: f64,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskAssessment {
    pub category: RiskCategory,
    /// Decision-table row, e.g. "A1".
    pub row: Option<String>,
    /// Human-readable reasons (criteria met, missing inputs, GC-qualifying state …).
    pub basis: Vec<String>,
    pub evidence: Vec<Evidence>,
    /// `prior_osteoporotic_fracture`.
    pub prior_fracture: Tri,
    pub gc_frax_mof: Option<FraxUsed>,
    pub gc_frax_hip: Option<FraxUsed>,
    /// FRAX observations out of range / unit unknown (data-insufficient item 9).
    pub frax_invalid: Vec<String>,
    /// Inputs that were missing for the category.
    pub missing: Vec<String>,
}

impl Default for RiskAssessment {
    fn default() -> Self {
        RiskAssessment {
            category: RiskCategory::Indeterminate,
            row: None,
            basis: Vec::new(),
            evidence: Vec::new(),
            prior_fracture: Tri::Unknown,
            gc_frax_mof: None,
            gc_frax_hip: None,
            frax_invalid: Vec::new(),
            missing: Vec::new(),
        }
    }
}

pub fn compute(
    input: &Input<'_>,
    gc: &GcExposure,
    spine: &SpineFacts,
    dxa: &DxaFacts,
    therapy: &TherapyFacts,
) -> RiskAssessment {
    let _ = (input, gc, spine, dxa, therapy);
    RiskAssessment::default()
}

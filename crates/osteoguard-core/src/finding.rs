//! Findings: the public vocabulary of osteoguard (knowledge.md §9).
//!
//! *API boundary:* the kebab-case codes of [`FindingCode`] and the field names of [`Finding`] are
//! part of the `osteoguard.assessment/1` contract. Add, never rename or remove.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::model::SourceRef;

/// Every finding code of knowledge.md §9, in the order of that table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    GcBoneProtection,
    GcFractureRiskAssessmentDue,
    OsteoporosisTreatmentIndicated,
    AnabolicTherapyPreferred,
    DenosumabDueSoon,
    DenosumabOverdue,
    DenosumabDiscontinuationWithoutTransition,
    PostDenosumabCtxMonitoring,
    ReboundVertebralFracturesSuspected,
    BmdSignificantLoss,
    AcuteOvcf,
    OvcfRefractoryPainAugmentationCandidate,
    OvcfImagingRecommended,
    NewFractureAfterAugmentation,
    ZoledronateRenalContraindication,
    HypocalcaemiaAntiresorptiveCaution,
    VitaminDDeficiencyAntiresorptiveCaution,
    DataInsufficient,
}

impl FindingCode {
    pub const ALL: [FindingCode; 18] = {
        use FindingCode::*;
        [
            GcBoneProtection,
            GcFractureRiskAssessmentDue,
            OsteoporosisTreatmentIndicated,
            AnabolicTherapyPreferred,
            DenosumabDueSoon,
            DenosumabOverdue,
            DenosumabDiscontinuationWithoutTransition,
            PostDenosumabCtxMonitoring,
            ReboundVertebralFracturesSuspected,
            BmdSignificantLoss,
            AcuteOvcf,
            OvcfRefractoryPainAugmentationCandidate,
            OvcfImagingRecommended,
            NewFractureAfterAugmentation,
            ZoledronateRenalContraindication,
            HypocalcaemiaAntiresorptiveCaution,
            VitaminDDeficiencyAntiresorptiveCaution,
            DataInsufficient,
        ]
    };

    /// The stable string code, e.g. `denosumab-overdue`.
    pub fn as_str(self) -> &'static str {
        use FindingCode::*;
        match self {
            GcBoneProtection => "gc-bone-protection",
            GcFractureRiskAssessmentDue => "gc-fracture-risk-assessment-due",
            OsteoporosisTreatmentIndicated => "osteoporosis-treatment-indicated",
            AnabolicTherapyPreferred => "anabolic-therapy-preferred",
            DenosumabDueSoon => "denosumab-due-soon",
            DenosumabOverdue => "denosumab-overdue",
            DenosumabDiscontinuationWithoutTransition => {
                "denosumab-discontinuation-without-transition"
            }
            PostDenosumabCtxMonitoring => "post-denosumab-ctx-monitoring",
            ReboundVertebralFracturesSuspected => "rebound-vertebral-fractures-suspected",
            BmdSignificantLoss => "bmd-significant-loss",
            AcuteOvcf => "acute-ovcf",
            OvcfRefractoryPainAugmentationCandidate => {
                "ovcf-refractory-pain-augmentation-candidate"
            }
            OvcfImagingRecommended => "ovcf-imaging-recommended",
            NewFractureAfterAugmentation => "new-fracture-after-augmentation",
            ZoledronateRenalContraindication => "zoledronate-renal-contraindication",
            HypocalcaemiaAntiresorptiveCaution => "hypocalcaemia-antiresorptive-caution",
            VitaminDDeficiencyAntiresorptiveCaution => {
                "vitamin-d-deficiency-antiresorptive-caution"
            }
            DataInsufficient => "data-insufficient",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// A short title a clinician recognises.
    pub fn title(self) -> &'static str {
        use FindingCode::*;
        match self {
            GcBoneProtection => "Bone protection on long-term glucocorticoids",
            GcFractureRiskAssessmentDue => "Fracture-risk assessment due",
            OsteoporosisTreatmentIndicated => "Osteoporosis treatment indicated",
            AnabolicTherapyPreferred => "Anabolic therapy preferred",
            DenosumabDueSoon => "Denosumab dose due soon",
            DenosumabOverdue => "Denosumab dose overdue",
            DenosumabDiscontinuationWithoutTransition => {
                "Denosumab stopped without transition therapy"
            }
            PostDenosumabCtxMonitoring => "CTX monitoring after denosumab→zoledronate",
            ReboundVertebralFracturesSuspected => "Rebound vertebral fractures suspected",
            BmdSignificantLoss => "Significant bone density loss",
            AcuteOvcf => "Acute vertebral compression fracture",
            OvcfRefractoryPainAugmentationCandidate => "Vertebral augmentation candidate",
            OvcfImagingRecommended => "Spine imaging recommended",
            NewFractureAfterAugmentation => "New fracture after vertebral augmentation",
            ZoledronateRenalContraindication => "Zoledronate contraindicated (renal)",
            HypocalcaemiaAntiresorptiveCaution => "Hypocalcaemia / CKD caution",
            VitaminDDeficiencyAntiresorptiveCaution => "Vitamin D deficiency caution",
            DataInsufficient => "Data insufficient",
        }
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity scale of knowledge.md §1.7. Ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Moderate,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Moderate => "moderate",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Severity::Info),
            "moderate" => Some(Severity::Moderate),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of evidence: the resource and the value the rule used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Evidence {
    pub reference: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
}

impl Evidence {
    pub fn new(reference: &SourceRef, date: Option<NaiveDate>, detail: impl Into<String>) -> Self {
        Evidence {
            reference: reference.0.clone(),
            detail: detail.into(),
            date,
        }
    }
    /// Evidence derived by the engine itself (no single resource), e.g. "age 73 at as-of".
    pub fn derived(detail: impl Into<String>) -> Self {
        Evidence {
            reference: "osteoguard:derived".into(),
            detail: detail.into(),
            date: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub recommendation: String,
    pub citation: String,
    /// Full references of the sources the citation names (knowledge.md §1.8).
    #[serde(default)]
    pub references: Vec<String>,
    /// The knowledge.md section the rule implements.
    pub rule_section: String,
    /// `null` when the finding has no due date (always present: a stable schema).
    #[serde(default)]
    pub due: Option<NaiveDate>,
    /// Inputs that were missing (data-insufficient items, or conservative notes).
    #[serde(default)]
    pub inputs_missing: Vec<String>,
    /// Conservative choices, UNVERIFIED thresholds and annotations (§2.8 replacement note …).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Vertebral levels the finding concerns, when any.
    #[serde(default)]
    pub levels: Vec<String>,
    /// Machine-readable trace of how the rule decided, in the specification's own vocabulary
    /// (knowledge.md section, clause and item numbers, named quantities such as `D_last`,
    /// verification status of thresholds). Kept out of `summary`, `recommendation` and `notes`,
    /// which a clinician reads; the JSON keeps it and `--verbose` prints it.
    #[serde(default)]
    pub trace: Vec<String>,
}

/// A dated to-do derived from the findings and schedules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Task {
    pub code: String,
    pub description: String,
    pub due: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<FindingCode>,
}

/// A problem with the record itself (resource, field path, reason).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DataQualityIssue {
    pub reference: String,
    pub field: String,
    pub problem: String,
}

impl DataQualityIssue {
    pub fn new(
        reference: impl Into<String>,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        DataQualityIssue {
            reference: reference.into(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}

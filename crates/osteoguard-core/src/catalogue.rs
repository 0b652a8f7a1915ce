//! The rule catalogue for governance committees: every finding code with its severity levels,
//! inputs, section, citation and thresholds.
//!
//! Thresholds come from [`crate::thresholds::TABLE`] (the same table the rules read through
//! [`crate::thresholds::Thresholds`]) and their effective values from a [`Config`]; citations
//! come from each rule module's `CITATION` constant. Nothing here is a hand-written copy of a
//! number.

use serde::Serialize;

use crate::config::Config;
use crate::finding::FindingCode;
use crate::rules;
use crate::thresholds::{ThresholdValue, Thresholds, TABLE};

/// One finding code as the catalogue shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleEntry {
    pub code: &'static str,
    pub title: &'static str,
    /// knowledge.md section of the rule.
    pub section: &'static str,
    pub citation: &'static str,
    /// When each severity applies (numbers from the effective thresholds).
    pub severities: String,
    /// Record inputs the rule reads.
    pub inputs: &'static str,
    pub disabled: bool,
    pub thresholds: Vec<ThresholdEntry>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdEntry {
    pub key: &'static str,
    pub meaning: &'static str,
    pub value: ThresholdValue,
    pub default: ThresholdValue,
    pub unit: &'static str,
    pub min: f64,
    pub max: f64,
    pub section: &'static str,
    pub source: &'static str,
    pub configurable: bool,
    pub overridden: bool,
}

/// The clinical situations the CDS cards are grouped by (issue 17): the findings of one
/// situation become one card with one recommended action
/// ([`crate::assessment::situations`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Situation {
    /// Antiresorptive/anabolic therapy: starting, continuing, stopping or switching it, and the
    /// §8 safety checks before it (knowledge.md §4.2, §5, §8).
    OsteoporosisTherapy,
    /// A painful or new vertebral fracture: imaging and augmentation (§7).
    VertebralFracture,
    /// Calcium and vitamin D on long-term glucocorticoids (§4.1).
    GlucocorticoidBoneProtection,
    /// DXA / FRAX due (§4.1, §4.4).
    FractureRiskAssessment,
    /// Missing data that blocks no safety check (§1.4).
    DataQuality,
}

impl Situation {
    pub fn as_str(self) -> &'static str {
        match self {
            Situation::OsteoporosisTherapy => "osteoporosis-therapy",
            Situation::VertebralFracture => "vertebral-fracture",
            Situation::GlucocorticoidBoneProtection => "glucocorticoid-bone-protection",
            Situation::FractureRiskAssessment => "fracture-risk-assessment",
            Situation::DataQuality => "data-quality",
        }
    }
}

/// The situation a finding belongs to. `data-insufficient` joins the therapy situation when it
/// blocks a §8 safety check (its `moderate` severity, §9), else it stands alone as data quality.
pub fn situation(code: FindingCode, severity: crate::finding::Severity) -> Situation {
    use FindingCode::*;
    match code {
        GcBoneProtection => Situation::GlucocorticoidBoneProtection,
        GcFractureRiskAssessmentDue => Situation::FractureRiskAssessment,
        OsteoporosisTreatmentIndicated
        | AnabolicTherapyPreferred
        | DenosumabDueSoon
        | DenosumabOverdue
        | DenosumabDiscontinuationWithoutTransition
        | PostDenosumabCtxMonitoring
        | ReboundVertebralFracturesSuspected
        | BmdSignificantLoss
        | ZoledronateRenalContraindication
        | HypocalcaemiaAntiresorptiveCaution
        | VitaminDDeficiencyAntiresorptiveCaution => Situation::OsteoporosisTherapy,
        AcuteOvcf
        | OvcfRefractoryPainAugmentationCandidate
        | OvcfImagingRecommended
        | NewFractureAfterAugmentation => Situation::VertebralFracture,
        DataInsufficient if severity >= crate::finding::Severity::Moderate => {
            Situation::OsteoporosisTherapy
        }
        DataInsufficient => Situation::DataQuality,
    }
}

/// Which finding of a situation leads its card when severities tie (higher first): safety
/// before schedule, the rebound and the transition before a late dose.
pub fn lead_priority(code: FindingCode) -> u8 {
    use FindingCode::*;
    match code {
        ZoledronateRenalContraindication => 18,
        HypocalcaemiaAntiresorptiveCaution => 17,
        ReboundVertebralFracturesSuspected => 16,
        DenosumabDiscontinuationWithoutTransition => 15,
        DenosumabOverdue => 14,
        PostDenosumabCtxMonitoring => 13,
        DenosumabDueSoon => 12,
        OsteoporosisTreatmentIndicated => 11,
        AnabolicTherapyPreferred => 10,
        VitaminDDeficiencyAntiresorptiveCaution => 9,
        BmdSignificantLoss => 8,
        OvcfImagingRecommended => 7,
        OvcfRefractoryPainAugmentationCandidate => 6,
        NewFractureAfterAugmentation => 5,
        AcuteOvcf => 4,
        GcFractureRiskAssessmentDue => 3,
        GcBoneProtection => 2,
        DataInsufficient => 1,
    }
}

/// (section, citation, severities, inputs) per code; every number in the severities comes from
/// `t`, so a site override changes the words.
fn describe(
    code: FindingCode,
    t: &Thresholds,
) -> (&'static str, &'static str, String, &'static str) {
    use FindingCode::*;
    match code {
        GcBoneProtection => (
            "§2.6, §4.1, §9",
            rules::gc_bone_protection::CITATION,
            "moderate".into(),
            "systemic glucocorticoid orders/statements/administrations; calcium and vitamin D supplements; age",
        ),
        GcFractureRiskAssessmentDue => (
            "§4.1, §4.4, §9",
            rules::gc_fracture_risk_assessment_due::CITATION,
            format!(
                "moderate; high when no baseline DXA more than {} days after glucocorticoid start",
                t.baseline_dxa_days
            ),
            "glucocorticoid course start; DXA results; FRAX; active osteoporosis therapy; risk category; age",
        ),
        OsteoporosisTreatmentIndicated => (
            "§4.2, §4.3, §9",
            rules::osteoporosis_treatment_indicated::CITATION,
            format!(
                "high for very high/high risk, or from age {} with osteoporosis by T-score \
                 (≤ {}) or a prior hip/vertebral fragility fracture; moderate for moderate risk",
                t.treatment_b_min_age, t.t_high
            ),
            "risk category; glucocorticoid scope; T-scores; hip/vertebral fractures; active and planned osteoporosis therapy",
        ),
        AnabolicTherapyPreferred => (
            "§4.2, §9",
            rules::anabolic_therapy_preferred::CITATION,
            "moderate".into(),
            "risk category; anabolic, denosumab and other osteoporosis therapy history; age",
        ),
        DenosumabDueSoon => (
            "§5.1, §9",
            rules::denosumab_due_soon::CITATION,
            format!(
                "info from day {} to {} after the last dose; moderate from day {} to the grace end ({})",
                t.dmab_due_soon_start_days,
                t.dmab_due_days,
                t.dmab_due_days + 1,
                t.dmab_grace_end_days
            ),
            "denosumab administrations/statements/orders; bisphosphonate after the last dose",
        ),
        DenosumabOverdue => (
            "§5.1, §9",
            rules::denosumab_overdue::CITATION,
            format!(
                "high after the grace end (day {}–{}); critical after the long-delay limit (day {}+)",
                t.dmab_grace_end_days + 1,
                t.dmab_long_delay_days,
                t.dmab_long_delay_days + 1
            ),
            "denosumab doses; bisphosphonate after the last dose",
        ),
        DenosumabDiscontinuationWithoutTransition => (
            "§5.2, §5.3, §9",
            rules::denosumab_discontinuation_without_transition::CITATION,
            format!(
                "high; critical with ≥ {} doses, a prevalent vertebral fracture, or after the \
                 long-delay limit (day {})",
                t.dmab_many_doses, t.dmab_long_delay_days
            ),
            "denosumab doses and stop records; bisphosphonate after the last dose; vertebral fractures; renal function (never recommends zoledronate when contraindicated)",
        ),
        PostDenosumabCtxMonitoring => (
            "§5.3, §5.4, §9",
            rules::post_denosumab_ctx_monitoring::CITATION,
            format!(
                "info while CTX not yet due; moderate when a CTX check is overdue; high when CTX \
                 is elevated (above the lab's upper limit or {} ng/L)",
                t.ctx_limit_ng_l
            ),
            "zoledronate after denosumab; serum CTX with reference range",
        ),
        ReboundVertebralFracturesSuspected => (
            "§5.5, §9",
            rules::rebound_vertebral_fractures_suspected::CITATION,
            format!(
                "critical with ≥ 2 fractures in the rebound window (day {}–{} after the last \
                 dose); high with one fracture plus BMD loss or elevated CTX",
                t.rebound_window_start_days, t.rebound_window_end_days
            ),
            "denosumab doses; vertebral fracture onsets; serial DXA; CTX",
        ),
        BmdSignificantLoss => (
            "§6.2, §9",
            rules::bmd_significant_loss::CITATION,
            format!(
                "moderate; high when the later T-score ≤ {} or the loss ≥ {}× LSC (≥ {} T)",
                t.t_high, t.lsc_large_multiple, t.t_drop_large
            ),
            "serial DXA BMD/T-scores by site, device, facility LSC; vertebral fractures and augmentation (spine validity)",
        ),
        AcuteOvcf => (
            "§7.1, §7.4, §9",
            rules::acute_ovcf::CITATION,
            format!(
                "high (fracture or MRI oedema within {} days)",
                t.subacute_max_days
            ),
            "vertebral fracture conditions; MRI oedema; augmentation procedures",
        ),
        OvcfRefractoryPainAugmentationCandidate => (
            "§7.5, §9",
            rules::ovcf_refractory_pain_augmentation_candidate::CITATION,
            format!(
                "high (pain ≥ {}/10 after ≥ {} days of conservative care)",
                t.augmentation_pain_min, t.conservative_care_min_days
            ),
            "per-level spine state; MRI oedema; pain scores; fracture onset; exclusion conditions",
        ),
        OvcfImagingRecommended => (
            "§7.7, §9",
            rules::ovcf_imaging_recommended::CITATION,
            format!(
                "moderate (pain ≥ {}/10, or a rise of {} points after augmentation); high when an \
                 unconfirmed fracture comes with pain ≥ {}/10",
                t.imaging_pain_min, t.imaging_pain_rise, t.imaging_pain_high
            ),
            "per-level spine state; MRI confirmation; pain scores; augmentation; spine imaging dates",
        ),
        NewFractureAfterAugmentation => (
            "§7.6, §9",
            rules::new_fracture_after_augmentation::CITATION,
            format!(
                "moderate (within {} days of augmentation); high if adjacent or ≤ {} days after \
                 augmentation; critical with ≥ 2 new fractures",
                t.new_fracture_window_days, t.new_fracture_early_days
            ),
            "augmentation procedures with levels; vertebral fracture onsets",
        ),
        ZoledronateRenalContraindication => (
            "§8, §9",
            rules::zoledronate_renal_contraindication::CITATION,
            format!("critical (CrCl or eGFR < {} mL/min)", t.zoledronate_min_crcl),
            "planned or recommended zoledronate; creatinine, weight, age, sex (Cockcroft–Gault); eGFR",
        ),
        HypocalcaemiaAntiresorptiveCaution => (
            "§8, §9",
            rules::hypocalcaemia_antiresorptive_caution::CITATION,
            format!(
                "critical for corrected calcium < {} mg/dL; high for eGFR < {} on denosumab",
                t.calcium_low_mg_dl, t.dmab_ckd_egfr_min
            ),
            "active/planned/due/recommended antiresorptive; calcium, albumin, eGFR or CrCl",
        ),
        VitaminDDeficiencyAntiresorptiveCaution => (
            "§8, §9",
            rules::vitamin_d_deficiency_antiresorptive_caution::CITATION,
            format!("high (25-OH vitamin D < {} ng/mL)", t.vitamin_d_min_ng_ml),
            "active/planned/due/recommended antiresorptive; 25-OH vitamin D",
        ),
        DataInsufficient => (
            "§1.4, §9",
            rules::data_insufficient::CITATION,
            "moderate when a safety check is blocked (renal function, calcium, vitamin D or \
             CKD unknown before an antiresorptive); otherwise info"
                .into(),
            "the closed list of missing inputs of knowledge.md §9",
        ),
    }
}

/// The catalogue as seen under `config`.
pub fn entries(config: &Config) -> Vec<RuleEntry> {
    FindingCode::ALL
        .into_iter()
        .map(|code| {
            let (section, citation, severities, inputs) = describe(code, &config.thresholds);
            let thresholds = TABLE
                .iter()
                .filter(|s| s.used_by.contains(&code.as_str()))
                .map(|s| {
                    let value = config.thresholds.get(s.key).unwrap_or(s.default);
                    ThresholdEntry {
                        key: s.key,
                        meaning: s.meaning,
                        value,
                        default: s.default,
                        unit: s.unit,
                        min: s.min,
                        max: s.max,
                        section: s.section,
                        source: s.source,
                        configurable: s.configurable,
                        overridden: config.overridden.iter().any(|k| k == s.key),
                    }
                })
                .collect();
            RuleEntry {
                code: code.as_str(),
                title: code.title(),
                section,
                citation,
                severities,
                inputs,
                disabled: config.disabled_findings.contains(&code),
                thresholds,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thresholds::Thresholds;

    #[test]
    fn catalogue_values_are_the_constants_the_rules_read() {
        let t = Thresholds::default();
        for entry in entries(&Config::default()) {
            for th in &entry.thresholds {
                assert_eq!(Some(th.value), t.get(th.key), "{}", th.key);
                assert_eq!(th.value, th.default, "{}", th.key);
            }
        }
    }

    #[test]
    fn every_table_row_names_real_finding_codes() {
        for spec in TABLE {
            assert!(!spec.used_by.is_empty(), "{} is used by no rule", spec.key);
            for code in spec.used_by {
                assert!(
                    *code == "tasks" || FindingCode::parse(code).is_some(),
                    "{}: {code}",
                    spec.key
                );
            }
            // A hand-typed clause (older rows) may only repeat what the sources show.
            for code in spec.declared_used_by {
                assert!(spec.used_by.contains(code), "{}: {code}", spec.key);
            }
        }
    }

    /// The computed readers agree with what the rule modules plainly read (spot checks that
    /// would catch a broken source scan).
    #[test]
    fn used_by_is_computed_from_the_rule_sources() {
        let of = |key: &str| {
            TABLE
                .iter()
                .find(|s| s.key == key)
                .map(|s| s.used_by)
                .unwrap_or_default()
        };
        assert!(of("denosumab.grace_end_days").contains(&"denosumab-overdue"));
        assert!(of("spine.augmentation_pain_min")
            .contains(&"ovcf-refractory-pain-augmentation-candidate"));
        // Through the risk facts.
        assert!(of("risk.t_score_very_high").contains(&"osteoporosis-treatment-indicated"));
        // Through a shared safety helper.
        assert!(
            of("safety.planned_order_window_days").contains(&"zoledronate-renal-contraindication")
        );
        assert_eq!(of("denosumab.osteoporosis_dose_mg"), &["tasks"]);
        assert!(!of("spine.acute_max_days").contains(&"zoledronate-renal-contraindication"));
    }

    #[test]
    fn catalogue_lists_every_code_and_shows_overrides() {
        let c = Config::from_toml_str("[denosumab]\ngrace_end_days = 240\n").unwrap();
        let e = entries(&c);
        assert_eq!(e.len(), FindingCode::ALL.len());
        let overdue = e.iter().find(|r| r.code == "denosumab-overdue").unwrap();
        let grace = overdue
            .thresholds
            .iter()
            .find(|t| t.key == "denosumab.grace_end_days")
            .unwrap();
        assert!(grace.overridden);
        assert_eq!(grace.value, ThresholdValue::Days(240));
        assert_eq!(
            grace.value,
            ThresholdValue::Days(c.thresholds.dmab_grace_end_days)
        );
    }
}

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
use crate::thresholds::{ThresholdValue, TABLE};

/// One finding code as the catalogue shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleEntry {
    pub code: &'static str,
    pub title: &'static str,
    /// knowledge.md section of the rule.
    pub section: &'static str,
    pub citation: &'static str,
    /// When each severity applies.
    pub severities: &'static str,
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

/// (section, citation, severities, inputs) per code.
fn describe(code: FindingCode) -> (&'static str, &'static str, &'static str, &'static str) {
    use FindingCode::*;
    match code {
        GcBoneProtection => (
            "§2.6, §4.1, §9",
            rules::gc_bone_protection::CITATION,
            "moderate",
            "systemic glucocorticoid orders/statements/administrations; calcium and vitamin D supplements; age",
        ),
        GcFractureRiskAssessmentDue => (
            "§4.1, §4.4, §9",
            rules::gc_fracture_risk_assessment_due::CITATION,
            "moderate; high when no baseline DXA more than 182 days after glucocorticoid start",
            "glucocorticoid course start; DXA results; FRAX; active osteoporosis therapy; risk category; age",
        ),
        OsteoporosisTreatmentIndicated => (
            "§4.2, §4.3, §9",
            rules::osteoporosis_treatment_indicated::CITATION,
            "high for very high/high risk or WHO clause (b); moderate for moderate risk",
            "risk category; glucocorticoid scope; T-scores; hip/vertebral fractures; active and planned osteoporosis therapy",
        ),
        AnabolicTherapyPreferred => (
            "§4.2, §9",
            rules::anabolic_therapy_preferred::CITATION,
            "moderate",
            "risk category; anabolic, denosumab and other osteoporosis therapy history; age",
        ),
        DenosumabDueSoon => (
            "§5.1, §9",
            rules::denosumab_due_soon::CITATION,
            "info from day 154 to 182 after the last dose; moderate from day 183 to the grace end (210)",
            "denosumab administrations/statements/orders; bisphosphonate after the last dose",
        ),
        DenosumabOverdue => (
            "§5.1, §9",
            rules::denosumab_overdue::CITATION,
            "high after the grace end (day 211–294); critical after the long-delay limit (day 295+)",
            "denosumab doses; bisphosphonate after the last dose",
        ),
        DenosumabDiscontinuationWithoutTransition => (
            "§5.2, §5.3, §9",
            rules::denosumab_discontinuation_without_transition::CITATION,
            "high; critical with ≥ 4 doses, a prevalent vertebral fracture, or after the long-delay limit",
            "denosumab doses and stop records; bisphosphonate after the last dose; vertebral fractures; renal function (never recommends zoledronate when contraindicated)",
        ),
        PostDenosumabCtxMonitoring => (
            "§5.3, §5.4, §9",
            rules::post_denosumab_ctx_monitoring::CITATION,
            "info while CTX not yet due; moderate when a CTX check is overdue; high when CTX is elevated",
            "zoledronate after denosumab; serum CTX with reference range",
        ),
        ReboundVertebralFracturesSuspected => (
            "§5.5, §9",
            rules::rebound_vertebral_fractures_suspected::CITATION,
            "critical with ≥ 2 fractures in the rebound window; high with one fracture plus BMD loss or elevated CTX",
            "denosumab doses; vertebral fracture onsets; serial DXA; CTX",
        ),
        BmdSignificantLoss => (
            "§6.2, §9",
            rules::bmd_significant_loss::CITATION,
            "moderate; high when the later T-score ≤ −2.5 or the loss ≥ 2× LSC (≥ 1.0 T)",
            "serial DXA BMD/T-scores by site, device, facility LSC; vertebral fractures and augmentation (spine validity)",
        ),
        AcuteOvcf => (
            "§7.1, §7.4, §9",
            rules::acute_ovcf::CITATION,
            "high",
            "vertebral fracture conditions; MRI oedema; augmentation procedures",
        ),
        OvcfRefractoryPainAugmentationCandidate => (
            "§7.5, §9",
            rules::ovcf_refractory_pain_augmentation_candidate::CITATION,
            "high",
            "per-level spine state; MRI oedema; pain scores; fracture onset; exclusion conditions",
        ),
        OvcfImagingRecommended => (
            "§7.7, §9",
            rules::ovcf_imaging_recommended::CITATION,
            "moderate; high when an unconfirmed fracture comes with pain ≥ 7",
            "per-level spine state; MRI confirmation; pain scores; augmentation; spine imaging dates",
        ),
        NewFractureAfterAugmentation => (
            "§7.6, §9",
            rules::new_fracture_after_augmentation::CITATION,
            "moderate; high if adjacent or ≤ 90 days after augmentation; critical with ≥ 2 new fractures",
            "augmentation procedures with levels; vertebral fracture onsets",
        ),
        ZoledronateRenalContraindication => (
            "§8, §9",
            rules::zoledronate_renal_contraindication::CITATION,
            "critical",
            "planned or recommended zoledronate; creatinine, weight, age, sex (Cockcroft–Gault); eGFR",
        ),
        HypocalcaemiaAntiresorptiveCaution => (
            "§8, §9",
            rules::hypocalcaemia_antiresorptive_caution::CITATION,
            "critical for low corrected calcium; high for eGFR < 30 on denosumab",
            "active/planned/due/recommended antiresorptive; calcium, albumin, eGFR or CrCl",
        ),
        VitaminDDeficiencyAntiresorptiveCaution => (
            "§8, §9",
            rules::vitamin_d_deficiency_antiresorptive_caution::CITATION,
            "high",
            "active/planned/due/recommended antiresorptive; 25-OH vitamin D",
        ),
        DataInsufficient => (
            "§1.4, §9",
            rules::data_insufficient::CITATION,
            "moderate when a safety check is blocked (items 3–5); otherwise info",
            "the closed list of items 1–9 of §9",
        ),
    }
}

/// The catalogue as seen under `config`.
pub fn entries(config: &Config) -> Vec<RuleEntry> {
    FindingCode::ALL
        .into_iter()
        .map(|code| {
            let (section, citation, severities, inputs) = describe(code);
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
                assert!(FindingCode::parse(code).is_some(), "{}: {code}", spec.key);
            }
        }
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

//! `zoledronate-renal-contraindication` — knowledge.md §8, §9.
//!
//! **Recommendation:** "Zoledronic acid is contraindicated (CrCl {x} mL/min < 35): do not
//! infuse; use an alternative (e.g. denosumab continuation) and review renal function."
//! (Never suggests zoledronate.)
//! **Source:** RECLAST-PI (CrCl < 35 mL/min contraindicated; FDA 2011 safety communication,
//! verified). Strength: label contraindication.
//!
//! **Criteria:**
//! * inclusion: [`super::safety::zoledronate_planned_or_recommended`] (an order per §8
//!   "Planned", or the engine's own recommendation: discontinuation, rebound without
//!   transition, CTX monitoring high);
//! * [`renally_contraindicated`]: Cockcroft–Gault CrCl < `zoledronate_min_crcl`, or — when CrCl
//!   cannot be computed — eGFR < `zoledronate_min_crcl` (engine convention), using the latest
//!   values within `renal_fresh_days` of `as_of`;
//! * missing renal data (no creatinine/eGFR ≤ 30 d, or creatinine without eGFR and without a
//!   weight ≤ 365 d) → data-insufficient item 3 (never a silent "OK", never a contraindication).
//!
//! **Thresholds:** `zoledronate_min_crcl` (35), `renal_fresh_days` (30), `weight_fresh_days`
//! (365). Acute renal impairment (also a contraindication) is not modelled in the record.

use super::safety::{
    female_factor_applies, zoledronate_reasons, zoledronate_renal, RenalMeasure, RenalReading,
};
use crate::engine::{Ctx, Outcome};
use crate::facts::labs;
use crate::finding::{Finding, FindingCode, Severity};

pub const CITATION: &str = "RECLAST-PI";
const SECTION: &str = "§8; §9 zoledronate-renal-contraindication";
const RULE: &str = "zoledronate-renal-contraindication";

/// CrCl (or eGFR fallback) below the zoledronate minimum.
pub fn renally_contraindicated(r: &RenalReading, ctx: &Ctx<'_>) -> bool {
    r.value < ctx.t().zoledronate_min_crcl
}

/// What is missing when no renal value is usable (data-insufficient item 3 wording).
fn missing_renal(ctx: &Ctx<'_>) -> String {
    let t = ctx.t();
    let renal = labs::renal(&ctx.input, t.renal_fresh_days, female_factor_applies(ctx));
    match (&renal.creatinine, &renal.weight, ctx.age()) {
        (Some(_), None, _) => text!(
            "zoledronate planned/recommended: creatinine but neither eGFR within {} days nor a \
             body weight within {} days (CrCl not computable)",
            t.renal_fresh_days,
            t.weight_fresh_days
        ),
        (Some(_), Some(_), None) => {
            "zoledronate planned/recommended: no birth date (CrCl not computable) and no eGFR"
                .to_string()
        }
        _ => text!(
            "zoledronate planned/recommended: no creatinine or eGFR within {} days",
            t.renal_fresh_days
        ),
    }
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let reasons = zoledronate_reasons(ctx, out);
    if reasons.is_empty() {
        return;
    }
    let Some(reading) = zoledronate_renal(ctx) else {
        let missing = missing_renal(ctx);
        out.insufficient(3, RULE, missing);
        return;
    };
    if !renally_contraindicated(&reading, ctx) {
        return;
    }
    let t = ctx.t();
    let measure = reading.describe();
    let summary = text!(
        "{measure} < {} — contraindicates the planned infusion ({})",
        t.zoledronate_min_crcl,
        reasons
            .iter()
            .map(|e| e.detail.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let mut f = Finding::new(
        FindingCode::ZoledronateRenalContraindication,
        Severity::Critical,
        summary,
        text!(
            "Zoledronic acid is contraindicated ({measure} < {}): do not infuse; use an \
             alternative (e.g. continuing denosumab if appropriate) and review renal function.",
            t.zoledronate_min_crcl
        ),
        CITATION,
        SECTION,
    )
    .with_evidence(reading.evidence.iter().cloned())
    .with_evidence(reasons)
    .with_note(text!(
        "Renal values must be within {} days of the assessment date.",
        t.renal_fresh_days
    ))
    .with_trace("safety.renal_fresh_days: engine convention, UNVERIFIED (knowledge.md §8)");
    if reading.measure == RenalMeasure::Egfr {
        f = f
            .with_note(
                "CrCl not computable (creatinine, weight or age missing): eGFR used instead.",
            )
            .with_trace("eGFR fallback for CrCl: engine convention (knowledge.md §8)");
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::therapy::AgentUse;
    use crate::model::{
        Ingredient, MedicationStatus, ObservationKind, PatientRecord, Route, Sex, SourceRef,
    };
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    /// Example 7 (without labs): denosumab ×3 (last 2024-04-03), zoledronate ordered 2024-09-15.
    fn example_7() -> RecordBuilder {
        RecordBuilder::new("1945-02-02", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2023-04-01",
                60.0,
                Route::Subcutaneous,
            )
            .administration(
                Ingredient::Denosumab,
                "2023-10-01",
                60.0,
                Route::Subcutaneous,
            )
            .administration(
                Ingredient::Denosumab,
                "2024-04-03",
                60.0,
                Route::Subcutaneous,
            )
            .order(
                Ingredient::ZoledronicAcid,
                MedicationStatus::Active,
                "2024-09-15",
            )
    }

    fn with_planned_zoledronate(r: &PatientRecord, as_of: &str) -> crate::engine::Outcome {
        testing::run(r, d(as_of), |ctx| {
            ctx.therapy.planned = vec![AgentUse {
                agent: Ingredient::ZoledronicAcid,
                source: SourceRef::new("MedicationRequest/t4"),
                date: Some(d("2024-09-15")),
            }];
        })
    }

    fn labs(b: RecordBuilder, creatinine: f64) -> PatientRecord {
        b.observation(ObservationKind::Creatinine, "2024-09-10", creatinine)
            .observation(ObservationKind::BodyWeight, "2024-09-10", 48.0)
            .observation(ObservationKind::Calcium, "2024-09-10", 9.0)
            .observation(ObservationKind::VitaminD25, "2024-09-10", 28.0)
            .build()
    }

    #[test]
    fn example_7_crcl_21_6_is_critical() {
        let out = with_planned_zoledronate(&labs(example_7(), 1.6), "2024-09-20");
        let f = out
            .get(FindingCode::ZoledronateRenalContraindication)
            .unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!(
            f.summary.starts_with("CrCl 21.6 mL/min < 35"),
            "{}",
            f.summary
        );
        // The summary names the drug once (it read "zoledronic acid zoledronic acid ordered…").
        assert_eq!(
            f.summary.matches("zoledronic acid").count(),
            1,
            "{}",
            f.summary
        );
        assert!(!f.recommendation.to_lowercase().contains("give zoledron"));
        assert!(f.recommendation.contains("do not infuse"));
        assert!(f
            .evidence
            .iter()
            .any(|e| e.reference == "MedicationRequest/t4"));
        // Example 7 full expectation (with planned zoledronate from the therapy facts).
        let codes: Vec<_> = out.findings.iter().map(|f| (f.code, f.severity)).collect();
        assert_eq!(
            codes,
            vec![
                (
                    FindingCode::ZoledronateRenalContraindication,
                    Severity::Critical
                ),
                (
                    FindingCode::HypocalcaemiaAntiresorptiveCaution,
                    Severity::High
                ),
                (FindingCode::DenosumabDueSoon, Severity::Info),
            ]
        );
    }

    #[test]
    fn crcl_boundary_35() {
        // CrCl = 61 × 48 / (72 × SCr) × 0.85 = 35 at SCr = 0.98817: check just around it.
        let at = |scr: f64| {
            with_planned_zoledronate(&labs(example_7(), scr), "2024-09-20")
                .fired(FindingCode::ZoledronateRenalContraindication)
        };
        assert!(!at(0.98));
        assert!(at(0.99));
    }

    #[test]
    fn egfr_fallback_when_crcl_not_computable() {
        let r = example_7()
            .observation(ObservationKind::Egfr, "2024-09-10", 34.9)
            .build();
        let out = with_planned_zoledronate(&r, "2024-09-20");
        let f = out
            .get(FindingCode::ZoledronateRenalContraindication)
            .unwrap();
        assert!(f.summary.starts_with("eGFR 34.9"));
        let r = example_7()
            .observation(ObservationKind::Egfr, "2024-09-10", 35.0)
            .build();
        assert!(!with_planned_zoledronate(&r, "2024-09-20")
            .fired(FindingCode::ZoledronateRenalContraindication));
    }

    #[test]
    fn stale_renal_data_is_item_3_not_a_contraindication() {
        // Creatinine 31 days old.
        let r = example_7()
            .observation(ObservationKind::Creatinine, "2024-08-20", 2.5)
            .observation(ObservationKind::BodyWeight, "2024-08-20", 48.0)
            .build();
        let out = with_planned_zoledronate(&r, "2024-09-20");
        assert!(!out.fired(FindingCode::ZoledronateRenalContraindication));
        assert!(out
            .insufficient
            .iter()
            .any(|i| i.item == 3 && i.rule == RULE));
        // 30 days old still counts.
        let out = with_planned_zoledronate(&r, "2024-09-19");
        assert!(out.fired(FindingCode::ZoledronateRenalContraindication));
        // Creatinine without weight or eGFR: CrCl not computable.
        let r = example_7()
            .observation(ObservationKind::Creatinine, "2024-09-10", 1.6)
            .build();
        let out = with_planned_zoledronate(&r, "2024-09-20");
        assert!(out
            .insufficient
            .iter()
            .any(|i| i.item == 3 && i.missing.contains("CrCl not computable")));
    }

    #[test]
    fn no_check_without_a_plan_or_recommendation() {
        let b = RecordBuilder::new("1945-02-02", Sex::Female).administration(
            Ingredient::Denosumab,
            "2024-04-03",
            60.0,
            Route::Subcutaneous,
        );
        let out = testing::plain(&labs(b, 2.5), d("2024-09-20"));
        // Denosumab is due (due-soon), but nothing plans or recommends zoledronate.
        assert!(out.fired(FindingCode::DenosumabDueSoon));
        assert!(!out.fired(FindingCode::ZoledronateRenalContraindication));
    }

    #[test]
    fn example_7_through_the_engine() {
        // The planned order comes from the therapy facts (§8 "Planned"), not from an override.
        let ev = crate::engine::evaluate(
            &labs(example_7(), 1.6),
            d("2024-09-20"),
            &crate::Config::default(),
        );
        let got: Vec<_> = ev
            .outcome
            .findings
            .iter()
            .map(|f| (f.code, f.severity))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    FindingCode::ZoledronateRenalContraindication,
                    Severity::Critical
                ),
                (
                    FindingCode::HypocalcaemiaAntiresorptiveCaution,
                    Severity::High
                ),
                (FindingCode::DenosumabDueSoon, Severity::Info),
            ]
        );
        assert!(ev.outcome.insufficient.is_empty());
    }
}

//! `anabolic-therapy-preferred` — knowledge.md §9, §4.2.
//!
//! **Recommendation:** "Very high fracture risk: consider an anabolic agent (teriparatide or
//! abaloparatide) as initial therapy, followed by an antiresorptive."
//!
//! **Source:** ACR-2022 (PTH/PTHrP analogues conditionally recommended over bisphosphonates or
//! denosumab for very high risk; §1.8 verified abstract); strength: conditional. Severity:
//! moderate.
//!
//! **Criteria:**
//! * inclusion [`very_high_risk_adult`]: category = very high and age ≥ `adult_min_age`;
//! * exclusion [`anabolic_active_or_completed`]: teriparatide/abaloparatide active, or a
//!   completed course (cumulative ≥ `anabolic_course_days`);
//! * exclusion [`recent_denosumab`]: any denosumab administration within
//!   `anabolic_dmab_lookback_days`;
//! * exclusion [`other_active_therapy`]: active osteoporosis pharmacotherapy other than an oral
//!   bisphosphonate (§4.3);
//! * exclusion [`osteoporosis_agent_planned`]: an osteoporosis agent is ordered, not yet given
//!   (§4.3 v0.10).
//!
//! Therapy status UNKNOWN does not suppress (§4.3: "confirm current therapy" is added).
//!
//! Thresholds read: `adult_min_age`, `anabolic_course_days`, `anabolic_dmab_lookback_days`.

use crate::engine::{Ctx, Outcome};
use crate::facts::risk::RiskCategory;
use crate::finding::{days_in_words, Evidence, Finding, FindingCode, Severity};
use crate::model::Ingredient;
use crate::tri::Tri;

pub const CITATION: &str = "ACR-2022 (conditional recommendation)";

pub const RECOMMENDATION: &str = "Very high fracture risk: consider an anabolic agent \
     (teriparatide or abaloparatide) as initial therapy, followed by an antiresorptive.";

const SECTION: &str = "§9 anabolic-therapy-preferred; §4.2";

pub fn very_high_risk_adult(ctx: &Ctx<'_>) -> bool {
    ctx.risk.category == RiskCategory::VeryHigh
        && ctx.age().is_none_or(|a| a >= ctx.t().adult_min_age)
}

pub fn anabolic_active_or_completed(ctx: &Ctx<'_>) -> bool {
    ctx.therapy.is_active(Ingredient::Teriparatide)
        || ctx.therapy.is_active(Ingredient::Abaloparatide)
        || ctx.therapy.anabolic_days >= ctx.t().anabolic_course_days
}

pub fn recent_denosumab(ctx: &Ctx<'_>) -> bool {
    ctx.therapy.denosumab_within_lookback
}

pub fn other_active_therapy(ctx: &Ctx<'_>) -> bool {
    ctx.therapy.active_non_oral_bp
}

pub fn osteoporosis_agent_planned(ctx: &Ctx<'_>) -> bool {
    !ctx.therapy.planned.is_empty()
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    if !very_high_risk_adult(ctx)
        || anabolic_active_or_completed(ctx)
        || recent_denosumab(ctx)
        || other_active_therapy(ctx)
        || osteoporosis_agent_planned(ctx)
    {
        return;
    }
    let t = ctx.t();
    let mut summary = text!(
        "Very high fracture risk: {}; no anabolic therapy and no denosumab within {}",
        if ctx.risk.criteria_met.is_empty() {
            "criteria in the risk basis".to_string()
        } else {
            ctx.risk.criteria_met.join("; ")
        },
        days_in_words(t.anabolic_dmab_lookback_days)
    );
    let oral: Vec<&str> = ctx
        .therapy
        .active_agents
        .iter()
        .map(|a| a.agent.name())
        .collect();
    if !oral.is_empty() {
        summary.push_str(&text!("; currently on {}", oral.join(", ")));
    }
    let mut f = Finding::new(
        FindingCode::AnabolicTherapyPreferred,
        Severity::Moderate,
        summary,
        RECOMMENDATION,
        CITATION,
        SECTION,
    )
    .with_trace(text!(
        "ACR-2022 risk table row {} (knowledge.md §3.2)",
        ctx.risk.row.as_deref().unwrap_or("-")
    ))
    .with_evidence(
        ctx.risk
            .evidence
            .iter()
            .cloned()
            .chain([Evidence::derived(text!(
        "cumulative teriparatide/abaloparatide {} days (< {}); no denosumab dose within {} days",
        ctx.therapy.anabolic_days, t.anabolic_course_days, t.anabolic_dmab_lookback_days
    ))]),
    );
    if ctx.therapy.active == Tri::Unknown {
        f = f.with_note(
            "Therapy status unknown (a medication status is 'unknown'): confirm current therapy.",
        );
    }
    if ctx.therapy.anabolic_days > 0 {
        f = f.with_note(text!(
            "A previous anabolic course of {} days is documented (a complete course is {} days).",
            ctx.therapy.anabolic_days,
            t.anabolic_course_days
        ));
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{MedicationStatus::*, PatientRecord, Route, Sex, SourceRef};
    use crate::testkit::{d, RecordBuilder};

    /// Example 6: young adult, pulses + taper, very high (B1).
    fn example6() -> PatientRecord {
        crate::testkit::example_6_record()
    }

    fn codes(record: &PatientRecord, as_of: &str) -> Vec<FindingCode> {
        let mut c: Vec<_> = crate::engine::evaluate(record, d(as_of), &Config::default())
            .outcome
            .findings
            .iter()
            .map(|f| f.code)
            .collect();
        c.sort();
        c
    }

    #[test]
    fn example6_fires_set() {
        let c = codes(&example6(), "2024-09-30");
        assert_eq!(
            c,
            vec![
                FindingCode::GcBoneProtection,
                FindingCode::GcFractureRiskAssessmentDue,
                FindingCode::OsteoporosisTreatmentIndicated,
                FindingCode::AnabolicTherapyPreferred,
            ]
        );
        let ev = crate::engine::evaluate(&example6(), d("2024-09-30"), &Config::default());
        let f = ev
            .outcome
            .get(FindingCode::AnabolicTherapyPreferred)
            .unwrap();
        assert_eq!(f.severity, Severity::Moderate);
        let t = ev
            .outcome
            .get(FindingCode::OsteoporosisTreatmentIndicated)
            .unwrap();
        assert_eq!(t.severity, Severity::High);
    }

    #[test]
    fn oral_bisphosphonate_does_not_suppress_but_denosumab_does() {
        let mut r = example6();
        let mut aln = RecordBuilder::new("2000-01-10", Sex::Female)
            .daily_order(
                Ingredient::Alendronate,
                Active,
                "2024-08-01",
                None,
                Some(70.0),
                Some(1.0 / 7.0),
                Route::Oral,
            )
            .build()
            .medications;
        aln[0].source = SourceRef::new("MedicationRequest/aln");
        r.medications.extend(aln);
        let c = codes(&r, "2024-09-30");
        assert!(c.contains(&FindingCode::AnabolicTherapyPreferred));
        assert!(!c.contains(&FindingCode::OsteoporosisTreatmentIndicated));

        // Denosumab given 730 days before as_of: suppressed; 731 days: not.
        let with_dmab = |date: &str| {
            let mut r = example6();
            let mut dm = RecordBuilder::new("2000-01-10", Sex::Female)
                .administration(Ingredient::Denosumab, date, 60.0, Route::Subcutaneous)
                .build()
                .medications;
            dm[0].source = SourceRef::new("MedicationAdministration/dmab");
            r.medications.extend(dm);
            r
        };
        // 2024-09-30 − 730 days = 2022-10-01 (2024 is a leap year).
        assert!(!codes(&with_dmab("2022-10-01"), "2024-09-30")
            .contains(&FindingCode::AnabolicTherapyPreferred));
        assert!(codes(&with_dmab("2022-09-30"), "2024-09-30")
            .contains(&FindingCode::AnabolicTherapyPreferred));
    }

    #[test]
    fn completed_anabolic_course_suppresses() {
        let build = |end: &str| {
            let mut r = example6();
            let mut tp = RecordBuilder::new("2000-01-10", Sex::Female)
                .daily_order(
                    Ingredient::Teriparatide,
                    Completed,
                    "2020-01-01",
                    Some(end),
                    Some(0.02),
                    Some(1.0),
                    Route::Subcutaneous,
                )
                .build()
                .medications;
            tp[0].source = SourceRef::new("MedicationRequest/tpt");
            r.medications.extend(tp);
            r
        };
        // 2020-01-01 .. 2021-12-30 = 730 days (2020 leap year); .. 2021-12-29 = 729 days.
        assert!(!codes(&build("2021-12-30"), "2024-09-30")
            .contains(&FindingCode::AnabolicTherapyPreferred));
        assert!(codes(&build("2021-12-29"), "2024-09-30")
            .contains(&FindingCode::AnabolicTherapyPreferred));
    }

    #[test]
    fn not_very_high_does_not_fire() {
        // 10 mg prednisone, no other data: category indeterminate.
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        assert!(!codes(&r, "2024-06-01").contains(&FindingCode::AnabolicTherapyPreferred));
    }
}

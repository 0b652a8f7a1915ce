//! `vitamin-d-deficiency-antiresorptive-caution` (NEW) — knowledge.md §8, §9.
//!
//! **Recommendation:** "Vitamin D is deficient (<20 ng/mL): replete before or with
//! antiresorptive therapy."
//! **Source:** the project brief / ACR-2022 supplementation recommendations; the 20 ng/mL
//! cut-off (IOM sufficiency) is UNVERIFIED. Strength: good practice.
//!
//! **Criteria:**
//! * applicability: [`antiresorptive_in_play`] — any antiresorptive (bisphosphonate, denosumab,
//!   raloxifene) active (§4.3), planned, due, or recommended by the engine;
//! * [`deficient`]: latest 25-OH vitamin D within `vitamin_d_fresh_days` below
//!   `vitamin_d_min_ng_ml` → high;
//! * missing: an antiresorptive planned/due/recommended with no 25-OH D within
//!   `vitamin_d_fresh_days` → data-insufficient item 4 (active therapy alone raises no item).
//!
//! **Thresholds:** `vitamin_d_min_ng_ml` (20), `vitamin_d_fresh_days` (365).

use super::safety::{active_evidence, antiresorptive_planned_or_due, is_antiresorptive};
use crate::engine::{Ctx, Outcome};
use crate::facts::labs::{self, LabValue};
use crate::finding::{Evidence, Finding, FindingCode, Severity};
use crate::model::ObservationKind;

pub const CITATION: &str = "ACR-2022";
const SECTION: &str = "§8; §9 vitamin-d-deficiency-antiresorptive-caution";
const RULE: &str = "vitamin-d-deficiency-antiresorptive-caution";

/// Antiresorptives active, planned, due or recommended: the evidence (empty = none).
pub fn antiresorptive_in_play(ctx: &Ctx<'_>, out: &Outcome) -> Vec<Evidence> {
    let mut v = active_evidence(ctx, is_antiresorptive);
    v.extend(antiresorptive_planned_or_due(ctx, out));
    v
}

/// 25-OH vitamin D below the threshold.
pub fn deficient(v: &LabValue, ctx: &Ctx<'_>) -> bool {
    v.value < ctx.t().vitamin_d_min_ng_ml
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let t = ctx.t();
    let planned = antiresorptive_planned_or_due(ctx, out);
    let in_play = antiresorptive_in_play(ctx, out);
    if in_play.is_empty() {
        return;
    }
    let Some(vd) = labs::latest(
        &ctx.input,
        ObservationKind::VitaminD25,
        t.vitamin_d_fresh_days,
    ) else {
        if !planned.is_empty() {
            out.insufficient(
                4,
                RULE,
                text!(
                    "antiresorptive planned/due: no 25-OH vitamin D within {} days",
                    t.vitamin_d_fresh_days
                ),
            );
        }
        return;
    };
    if !deficient(&vd, ctx) {
        return;
    }
    let f = Finding::new(
        FindingCode::VitaminDDeficiencyAntiresorptiveCaution,
        Severity::High,
        text!(
            "25-OH vitamin D {} ng/mL on {} < {} while antiresorptive therapy is active/planned/due",
            vd.value, vd.date, t.vitamin_d_min_ng_ml
        ),
        text!(
            "Vitamin D is deficient (<{} ng/mL): replete before or with antiresorptive therapy.",
            t.vitamin_d_min_ng_ml
        ),
        CITATION,
        SECTION,
    )
    .with_evidence([Evidence::new(
        &vd.source,
        Some(vd.date),
        text!("25-OH vitamin D {} ng/mL", vd.value),
    )])
    .with_evidence(in_play)
    .with_note(text!(
        "The {} ng/mL cut-off follows the IOM sufficiency level; a site may set its own.",
        t.vitamin_d_min_ng_ml
    ))
    .with_trace("safety.vitamin_d_min_ng_ml: IOM cut-off UNVERIFIED (knowledge.md §8)");
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::therapy::AgentUse;
    use crate::model::{Ingredient, ObservationKind, Route, Sex, SourceRef};
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    fn due_patient(vd: Option<(&str, f64)>) -> crate::model::PatientRecord {
        let mut b = RecordBuilder::new("1945-02-02", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2024-04-03",
                60.0,
                Route::Subcutaneous,
            )
            .observation(ObservationKind::Egfr, "2024-09-10", 60.0)
            .observation(ObservationKind::Calcium, "2024-09-10", 9.2);
        if let Some((date, v)) = vd {
            b = b.observation(ObservationKind::VitaminD25, date, v);
        }
        b.build()
    }

    #[test]
    fn boundary_20_ng_ml() {
        let fired = |v: f64| {
            testing::plain(&due_patient(Some(("2024-09-10", v))), d("2024-09-20"))
                .get(FindingCode::VitaminDDeficiencyAntiresorptiveCaution)
                .map(|f| f.severity)
        };
        assert_eq!(fired(20.0), None);
        assert_eq!(fired(19.9), Some(Severity::High));
    }

    #[test]
    fn freshness_365_days_and_item_4() {
        let r = due_patient(Some(("2023-09-21", 12.0)));
        // 365 days old: counts.
        assert!(testing::plain(&r, d("2024-09-20"))
            .fired(FindingCode::VitaminDDeficiencyAntiresorptiveCaution));
        // 366 days: missing → item 4 (denosumab is due).
        let out = testing::plain(&r, d("2024-09-21"));
        assert!(!out.fired(FindingCode::VitaminDDeficiencyAntiresorptiveCaution));
        assert!(out
            .insufficient
            .iter()
            .any(|i| i.item == 4 && i.rule == RULE));
        assert_eq!(
            out.get(FindingCode::DataInsufficient).map(|f| f.severity),
            Some(Severity::Moderate)
        );
    }

    #[test]
    fn no_antiresorptive_no_check() {
        let r = RecordBuilder::new("1945-02-02", Sex::Female)
            .observation(ObservationKind::VitaminD25, "2024-09-10", 8.0)
            .build();
        let out = testing::plain(&r, d("2024-09-20"));
        assert!(!out.fired(FindingCode::VitaminDDeficiencyAntiresorptiveCaution));
        assert!(out.insufficient.is_empty());
    }

    #[test]
    fn active_oral_bisphosphonate_counts_without_raising_items() {
        let r = RecordBuilder::new("1945-02-02", Sex::Female)
            .observation(ObservationKind::VitaminD25, "2024-09-10", 15.0)
            .build();
        let out = testing::run(&r, d("2024-09-20"), |ctx| {
            ctx.therapy.active_agents = vec![AgentUse {
                agent: Ingredient::Alendronate,
                source: SourceRef::new("MedicationRequest/aln"),
                date: Some(d("2024-01-01")),
            }];
        });
        assert!(out.fired(FindingCode::VitaminDDeficiencyAntiresorptiveCaution));
        let r = RecordBuilder::new("1945-02-02", Sex::Female).build();
        let out = testing::run(&r, d("2024-09-20"), |ctx| {
            ctx.therapy.active_agents = vec![AgentUse {
                agent: Ingredient::Alendronate,
                source: SourceRef::new("MedicationRequest/aln"),
                date: Some(d("2024-01-01")),
            }];
        });
        assert!(out.insufficient.is_empty());
    }
}

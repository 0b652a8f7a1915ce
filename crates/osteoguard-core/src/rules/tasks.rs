//! Dated tasks: next denosumab dose, CTX at 3 and 6 months after transition, DXA re-check,
//! reassessment (knowledge.md §4.4, §5.1, §5.3).
//!
//! Task codes (kebab-case, stable):
//! * `denosumab-next-dose` — `D_last + dmab_due_days` while no transition is given (§5.1);
//! * `ctx-3-months`, `ctx-6-months` — `Z + ctx_first_due_days` / `Z + ctx_second_due_days`
//!   while CTX monitoring runs and that check is not yet documented (§5.3-4);
//! * `dxa-recheck` — latest DXA + `dxa_repeat_days` when GC-qualifying (adult) or on active
//!   osteoporosis therapy (§4.4, ACR-2022 1–2 y);
//! * `fracture-risk-reassessment` — latest FRAX + `frax_max_age_days` (or now, without a FRAX)
//!   for GC-qualifying patients aged ≥ `frax_min_age` not on active therapy (§4.4 "untreated,
//!   ≥ 40") and not already in the very-high category (as clause (c) of
//!   `gc-fracture-risk-assessment-due`);
//! * one task per finding that has a `due` date and no schedule task above, coded by the
//!   finding code.
//!
//! "GC-qualifying" here is TRUE, or UNKNOWN with a systemic GC in the last 365 days (§2.6; an
//! UNKNOWN without any GC is no reason to schedule GIOP work-up).

use super::post_denosumab_ctx_monitoring::{ctx_done_from, monitoring};
use crate::engine::{Ctx, Outcome};
use crate::facts::risk::RiskCategory;
use crate::finding::{days_in_words, FindingCode, Task, Ymd};
use crate::model::{add_days, ObservationKind};
use crate::tri::Tri;

fn gc_qualifying(ctx: &Ctx<'_>) -> bool {
    ctx.gc.qualifying.is_true() || (ctx.gc.qualifying == Tri::Unknown && ctx.gc.any_in_last_365)
}

fn linked(out: &Outcome, codes: &[FindingCode]) -> Option<FindingCode> {
    codes.iter().copied().find(|c| out.fired(*c))
}

pub fn derive(ctx: &Ctx<'_>, out: &mut Outcome) {
    let t = ctx.t();
    let mut tasks: Vec<Task> = Vec::new();

    // Next denosumab dose (§5.1).
    if let (Some(last), None) = (&ctx.dmab.d_last, &ctx.dmab.transition) {
        let due = add_days(last.date, t.dmab_due_days);
        let overdue = due < ctx.as_of();
        tasks.push(Task {
            code: "denosumab-next-dose".into(),
            description: if overdue {
                text!(
                    "Denosumab {} mg dose overdue since {due} (last dose {}): give now or start \
                     bisphosphonate transition",
                    t.dmab_dose_mg,
                    Ymd(last.date),
                    due = Ymd(due)
                )
            } else {
                text!(
                    "Next denosumab {} mg dose (last dose {})",
                    t.dmab_dose_mg,
                    last.date
                )
            },
            due: Some(due),
            finding: linked(
                out,
                &[
                    FindingCode::DenosumabDueSoon,
                    FindingCode::DenosumabOverdue,
                    FindingCode::DenosumabDiscontinuationWithoutTransition,
                ],
            ),
        });
    }

    // CTX 3 and 6 months after zoledronate (§5.3-4).
    if let Some(z) = monitoring(ctx) {
        let finding = linked(out, &[FindingCode::PostDenosumabCtxMonitoring]);
        if !ctx_done_from(z, t.ctx_first_window_days, ctx) {
            tasks.push(Task {
                code: "ctx-3-months".into(),
                description: text!(
                    "Fasting serum CTX {} after zoledronate ({z})",
                    days_in_words(t.ctx_first_due_days)
                ),
                due: Some(add_days(z, t.ctx_first_due_days)),
                finding,
            });
        }
        if !ctx_done_from(z, t.ctx_second_window_days, ctx) {
            tasks.push(Task {
                code: "ctx-6-months".into(),
                description: text!(
                    "Fasting serum CTX {} after zoledronate ({z})",
                    days_in_words(t.ctx_second_due_days)
                ),
                due: Some(add_days(z, t.ctx_second_due_days)),
                finding,
            });
        }
    }

    let adult = ctx.age().is_some_and(|a| a >= t.adult_min_age);
    let gc = gc_qualifying(ctx) && adult;
    let treated = ctx.therapy.active.is_true();

    // DXA re-check (§4.4).
    if let Some(latest) = ctx.dxa.latest_dxa {
        if gc || treated {
            tasks.push(Task {
                code: "dxa-recheck".into(),
                description: text!(
                    "Repeat DXA (last {latest}){}",
                    if gc {
                        " — long-term glucocorticoids"
                    } else {
                        " — on osteoporosis therapy"
                    }
                ),
                due: Some(add_days(latest, t.dxa_repeat_days)),
                finding: linked(out, &[FindingCode::GcFractureRiskAssessmentDue]),
            });
        }
    }

    // FRAX / clinical reassessment (§4.4: untreated, ≥ 40).
    let very_high = ctx.risk.category == RiskCategory::VeryHigh;
    if gc && !treated && !very_high && ctx.age().is_some_and(|a| a >= t.frax_min_age) {
        let latest_frax = ctx
            .record()
            .observations
            .iter()
            .filter(|o| {
                matches!(o.kind, ObservationKind::FraxMof | ObservationKind::FraxHip)
                    && o.status.is_usable()
            })
            .filter_map(|o| o.date())
            .filter(|d| *d <= ctx.as_of())
            .max();
        let (due, description) = match latest_frax {
            Some(d) => (
                add_days(d, t.frax_max_age_days),
                text!("FRAX (glucocorticoid-adjusted) and clinical reassessment (last FRAX {d})"),
            ),
            None => (
                ctx.as_of(),
                "FRAX (glucocorticoid-adjusted) and clinical reassessment (no FRAX on record)"
                    .to_string(),
            ),
        };
        tasks.push(Task {
            code: "fracture-risk-reassessment".into(),
            description,
            due: Some(due),
            finding: linked(out, &[FindingCode::GcFractureRiskAssessmentDue]),
        });
    }

    // One task per dated finding not already represented above.
    for f in out.findings.iter().filter(|f| f.due.is_some()) {
        if tasks.iter().any(|t| t.finding == Some(f.code)) {
            continue;
        }
        tasks.push(Task {
            code: f.code.as_str().to_string(),
            description: text!("{}: {}", f.title, f.recommendation),
            due: f.due,
            finding: Some(f.code),
        });
    }

    out.tasks.extend(tasks);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::gc::GcExposure;
    use crate::model::{Ingredient, Route, Sex};
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    fn codes(out: &Outcome) -> Vec<(String, Option<chrono::NaiveDate>, Option<FindingCode>)> {
        let mut v: Vec<_> = out
            .tasks
            .iter()
            .map(|t| (t.code.clone(), t.due, t.finding))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn next_denosumab_dose_linked_to_due_soon() {
        let r = RecordBuilder::new("1945-02-02", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2024-04-03",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        let out = testing::plain(&r, d("2024-09-20"));
        assert_eq!(
            codes(&out),
            vec![(
                "denosumab-next-dose".to_string(),
                Some(d("2024-10-02")),
                Some(FindingCode::DenosumabDueSoon)
            )]
        );
        // Mid-interval: the task exists, not linked to any finding.
        let out = testing::plain(&r, d("2024-05-01"));
        assert_eq!(
            codes(&out),
            vec![(
                "denosumab-next-dose".to_string(),
                Some(d("2024-10-02")),
                None
            )]
        );
    }

    #[test]
    fn ctx_tasks_after_zoledronate_and_no_dose_task() {
        let r = RecordBuilder::new("1950-03-15", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .administration(
                Ingredient::ZoledronicAcid,
                "2023-08-31",
                5.0,
                Route::Intravenous,
            )
            .build();
        let out = testing::plain(&r, d("2023-09-28"));
        assert_eq!(
            codes(&out),
            vec![
                (
                    "ctx-3-months".to_string(),
                    Some(d("2023-11-30")),
                    Some(FindingCode::PostDenosumabCtxMonitoring)
                ),
                (
                    "ctx-6-months".to_string(),
                    Some(d("2024-02-29")),
                    Some(FindingCode::PostDenosumabCtxMonitoring)
                ),
            ]
        );
    }

    #[test]
    fn dxa_and_reassessment_for_gc_qualifying_untreated() {
        let r = RecordBuilder::new("1962-05-01", Sex::Male)
            .observation(
                ObservationKind::TScore(crate::model::DxaSite::TotalHip),
                "2024-01-10",
                -1.5,
            )
            .observation(ObservationKind::FraxMof, "2024-04-01", 9.0)
            .build();
        let out = testing::run(&r, d("2024-09-15"), |ctx| {
            ctx.gc = GcExposure {
                qualifying: Tri::True,
                ..Default::default()
            };
            ctx.dxa.latest_dxa = Some(d("2024-01-10"));
        });
        assert_eq!(
            codes(&out),
            vec![
                ("dxa-recheck".to_string(), Some(d("2026-01-09")), None),
                (
                    "fracture-risk-reassessment".to_string(),
                    Some(d("2025-04-01")),
                    None
                ),
            ]
        );
    }

    #[test]
    fn finding_with_due_gets_its_own_task_once() {
        let mut out = Outcome::default();
        out.push(
            crate::finding::Finding::new(
                FindingCode::AcuteOvcf,
                crate::finding::Severity::High,
                "s",
                "r",
                "c",
                "§",
            )
            .with_due(Some(d("2024-10-01"))),
        );
        let r = RecordBuilder::new("1945-02-02", Sex::Female).build();
        testing::run(&r, d("2024-09-20"), |ctx| derive(ctx, &mut out));
        assert_eq!(
            codes(&out),
            vec![(
                "acute-ovcf".to_string(),
                Some(d("2024-10-01")),
                Some(FindingCode::AcuteOvcf)
            )]
        );
    }
}

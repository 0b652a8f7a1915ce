//! `denosumab-overdue` — knowledge.md §5.1, §9.
//!
//! **Recommendation:** "Denosumab is overdue by {n} days: give the next dose now or start
//! bisphosphonate transition; rebound bone loss and vertebral fractures risk is rising."
//! **Source:** LYU-2020 (delay > 4 weeks: higher vertebral fracture risk; > 16 weeks: HR 3.91,
//! verified); CUMMINGS-2018 (rebound vertebral fractures after stopping, verified). Strength:
//! cohort / post hoc RCT analysis.
//!
//! **Criteria:**
//! * inclusion: [`on_schedule_course`] (≥ 1 dose, no `transition_given`) and [`past_grace`]
//!   (`as_of − D_last > GRACE_END`);
//! * severity: high up to `LONG_DELAY`, critical beyond it ([`long_delay`]).
//!
//! `{n}` = days past the 6-month due date (`as_of − D_last − DUE`).
//!
//! **Thresholds:** `dmab_due_days` (182), `dmab_grace_end_days` (210), `dmab_long_delay_days`
//! (294). Mutually exclusive with `denosumab-due-soon` by day ranges; may co-fire with
//! `denosumab-discontinuation-without-transition` (§9 "Firing order").

use super::denosumab_common::{
    course_line, dose_evidence, long_delay, on_schedule_course, past_grace, schedule_notes,
};
use crate::engine::{Ctx, Outcome};
use crate::finding::{Finding, FindingCode, Severity};

pub const CITATION: &str = "LYU-2020; CUMMINGS-2018";
const SECTION: &str = "§5.1; §9 denosumab-overdue";

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    if !on_schedule_course(ctx) {
        return;
    }
    let (Some(schedule), Some(n)) = (&ctx.dmab.schedule, ctx.dmab.days_since_last(ctx.as_of()))
    else {
        return;
    };
    if !past_grace(n, ctx) {
        return;
    }
    let t = ctx.t();
    let due = schedule.next_due;
    let late_by = n - t.dmab_due_days;
    let severity = if long_delay(n, ctx) {
        Severity::Critical
    } else {
        Severity::High
    };
    let summary = text!(
        "{} — overdue by {late_by} days{}",
        course_line(ctx).unwrap_or_default(),
        if long_delay(n, ctx) {
            text!(
                " (more than {} days late)",
                t.dmab_long_delay_days - t.dmab_due_days
            )
        } else {
            String::new()
        }
    );
    let f = Finding::new(
        FindingCode::DenosumabOverdue,
        severity,
        summary,
        text!(
            "Denosumab is overdue by {late_by} days: give the next dose now or start \
             bisphosphonate transition; rebound bone loss and vertebral fractures risk is rising."
        ),
        CITATION,
        SECTION,
    )
    .with_evidence(dose_evidence(ctx))
    .with_due(Some(due));
    out.push(schedule_notes(ctx, f));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{add_days, Ingredient, Route, Sex};
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    fn severity_at(days_after: i64) -> (Option<Severity>, bool) {
        let r = RecordBuilder::new("1950-03-15", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2022-04-27",
                60.0,
                Route::Subcutaneous,
            )
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        let out = testing::plain(&r, add_days(d("2022-10-27"), days_after));
        (
            out.get(FindingCode::DenosumabOverdue).map(|f| f.severity),
            out.fired(FindingCode::DenosumabDueSoon),
        )
    }

    #[test]
    fn boundaries_of_example_10() {
        assert_eq!(severity_at(210), (None, true));
        assert_eq!(severity_at(211), (Some(Severity::High), false));
        assert_eq!(severity_at(294), (Some(Severity::High), false));
        assert_eq!(severity_at(295), (Some(Severity::Critical), false));
    }

    #[test]
    fn summary_names_the_numbers() {
        let r = RecordBuilder::new("1950-03-15", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2022-04-27",
                60.0,
                Route::Subcutaneous,
            )
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        let out = testing::plain(&r, d("2023-06-15"));
        let f = out.get(FindingCode::DenosumabOverdue).unwrap();
        assert_eq!(
            f.summary,
            "Last denosumab 2022-10-27 (2 doses); 231 days ago, due 2023-04-27 — overdue by 49 days"
        );
        assert!(f
            .recommendation
            .starts_with("Denosumab is overdue by 49 days"));
    }

    #[test]
    fn a_new_dose_resets_the_clock() {
        let r = RecordBuilder::new("1950-03-15", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .administration(
                Ingredient::Denosumab,
                "2023-06-01",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        let out = testing::plain(&r, d("2023-06-15"));
        assert!(!out.fired(FindingCode::DenosumabOverdue));
    }

    #[test]
    fn oncology_denosumab_is_not_scheduled() {
        let r = RecordBuilder::new("1950-03-15", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                120.0,
                Route::Subcutaneous,
            )
            .build();
        let out = testing::plain(&r, d("2023-06-15"));
        assert!(!out.fired(FindingCode::DenosumabOverdue));
        assert!(out.data_quality.iter().any(|q| q.problem.contains("Xgeva")));
    }
}

//! `denosumab-due-soon` — knowledge.md §5.1, §9.
//!
//! **Recommendation:** "Next denosumab dose due on {D_last + 182}; do not delay beyond
//! 4 weeks."
//! **Source:** PROLIA-PI (60 mg every 6 months, verified); LYU-2020 (on time = within 4 weeks of
//! the 6-month date; delays raise vertebral fracture risk, verified). Strength: label / cohort.
//!
//! **Criteria** (`as_of − D_last` in days, no transition):
//! * inclusion: [`on_schedule_course`] (≥ 1 dose, no `transition_given`) and
//!   [`in_due_soon_window`] (`DUE_SOON_START ≤ days ≤ GRACE_END`);
//! * severity: info up to `DUE`, moderate from `DUE + 1` to `GRACE_END` ([`past_due_date`]).
//!
//! **Thresholds:** `dmab_due_soon_start_days` (154), `dmab_due_days` (182),
//! `dmab_grace_end_days` (210).
//!
//! Also reports, for the denosumab schedule as a whole: data-insufficient item 8 (denosumab
//! documented without any usable date) and an info data-quality note for oncology denosumab
//! (Xgeva 120 mg) records, which are recognised and excluded from the schedule (§5.1).

use super::denosumab_common::{course_line, dose_evidence, on_schedule_course, schedule_notes};
use crate::engine::{Ctx, Outcome};
use crate::finding::{DataQualityIssue, Finding, FindingCode, Severity, Ymd};

pub const CITATION: &str = "PROLIA-PI; LYU-2020";
const SECTION: &str = "§5.1; §9 denosumab-due-soon";

/// `DUE_SOON_START ≤ as_of − D_last ≤ GRACE_END`.
pub fn in_due_soon_window(days_since: i64, ctx: &Ctx<'_>) -> bool {
    let t = ctx.t();
    (t.dmab_due_soon_start_days..=t.dmab_grace_end_days).contains(&days_since)
}

/// Past the 6-month date (still within grace): moderate.
pub fn past_due_date(days_since: i64, ctx: &Ctx<'_>) -> bool {
    days_since > ctx.t().dmab_due_days
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    // Schedule-wide reporting (item 8, oncology records).
    if !ctx.dmab.undated.is_empty() {
        out.insufficient(
            8,
            "denosumab schedule",
            text!(
                "denosumab documented without a usable dose date ({})",
                ctx.dmab
                    .undated
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    for src in &ctx.dmab.oncology_records {
        out.data_quality.push(DataQualityIssue::new(
            src.as_str(),
            "medication",
            "denosumab at the oncology dose (Xgeva): excluded from the osteoporosis schedule (info)",
        ));
    }

    if !on_schedule_course(ctx) {
        return;
    }
    let (Some(schedule), Some(n)) = (&ctx.dmab.schedule, ctx.dmab.days_since_last(ctx.as_of()))
    else {
        return;
    };
    if !in_due_soon_window(n, ctx) {
        return;
    }
    let t = ctx.t();
    let due = schedule.next_due;
    let latest_on_time = Ymd(schedule.grace_end);
    let (severity, timing) = if past_due_date(n, ctx) {
        (
            Severity::Moderate,
            text!(
                "past due by {} days, on time until {latest_on_time}",
                n - t.dmab_due_days
            ),
        )
    } else if n == t.dmab_due_days {
        (Severity::Info, "due today".to_string())
    } else {
        (Severity::Info, text!("due in {} days", t.dmab_due_days - n))
    };
    let summary = text!("{} — {timing}", course_line(ctx).unwrap_or_default());
    let f = Finding::new(
        FindingCode::DenosumabDueSoon,
        severity,
        summary,
        text!(
            "Next denosumab dose due on {due}; do not delay beyond {} days (by \
             {latest_on_time}).",
            t.dmab_grace_end_days - t.dmab_due_days,
            due = Ymd(due)
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
    use crate::model::{add_days, Ingredient, MedicationStatus, Route, Sex};
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    fn course(last: &str) -> RecordBuilder {
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
            .administration(Ingredient::Denosumab, last, 60.0, Route::Subcutaneous)
    }

    fn severity_at(days_after: i64) -> Option<Severity> {
        let r = course("2024-04-03").build();
        let out = testing::plain(&r, add_days(d("2024-04-03"), days_after));
        out.get(FindingCode::DenosumabDueSoon).map(|f| f.severity)
    }

    #[test]
    fn boundaries_of_example_10() {
        assert_eq!(severity_at(153), None);
        assert_eq!(severity_at(154), Some(Severity::Info));
        assert_eq!(severity_at(182), Some(Severity::Info));
        assert_eq!(severity_at(183), Some(Severity::Moderate));
        assert_eq!(severity_at(210), Some(Severity::Moderate));
        assert_eq!(severity_at(211), None);
    }

    #[test]
    fn example_7_due_soon_info_170_days() {
        let r = course("2024-04-03").build();
        let out = testing::plain(&r, d("2024-09-20"));
        let f = out.get(FindingCode::DenosumabDueSoon).unwrap();
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.due, Some(d("2024-10-02")));
        assert!(f.summary.contains("170 days ago"), "{}", f.summary);
        assert!(f.recommendation.contains("2024-10-02"));
        assert_eq!(f.evidence.len(), 3);
    }

    #[test]
    fn transition_stops_the_reminder() {
        let r = course("2024-04-03")
            .administration(
                Ingredient::ZoledronicAcid,
                "2024-09-01",
                5.0,
                Route::Intravenous,
            )
            .build();
        let out = testing::plain(&r, d("2024-09-20"));
        assert!(!out.fired(FindingCode::DenosumabDueSoon));
    }

    #[test]
    fn uncertain_dates_are_noted() {
        let r = RecordBuilder::new("1945-02-02", Sex::Female)
            .order(
                Ingredient::Denosumab,
                MedicationStatus::Active,
                "2024-04-03",
            )
            .build();
        let out = testing::plain(&r, d("2024-09-20"));
        let f = out.get(FindingCode::DenosumabDueSoon).unwrap();
        assert!(f.notes.iter().any(|n| n.contains("uncertain_date")));
    }

    #[test]
    fn undated_denosumab_is_item_8() {
        let mut r = RecordBuilder::new("1945-02-02", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2024-04-03",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        r.medications[0].effective = None;
        let out = testing::plain(&r, d("2024-09-20"));
        assert!(!out.fired(FindingCode::DenosumabDueSoon));
        assert!(out.insufficient.iter().any(|i| i.item == 8));
        let di = out.get(FindingCode::DataInsufficient).unwrap();
        assert_eq!(di.severity, Severity::Info);
    }
}

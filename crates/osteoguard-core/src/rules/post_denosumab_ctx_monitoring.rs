//! `post-denosumab-ctx-monitoring` — knowledge.md §5.3-4, §5.4, §9.
//!
//! **Recommendation:** "After denosumab→zoledronate transition, measure fasting serum CTX at 3
//! and 6 months (due {Z+91}, {Z+182}); repeat zoledronate if CTX is elevated."
//! At high severity (CTX elevated) the engine recommends the repeat infusion — unless
//! zoledronate is renally contraindicated (§8), when the recommendation names the
//! contraindication instead (clinical safety rule).
//! **Source:** ECTS-2021 (BTMs may guide the regimen, verified; the 3/6-month CTX algorithm and
//! the elevation criterion are from memory — UNVERIFIED, §12.10). Strength: position statement.
//!
//! **Criteria** (`Z` = the latest zoledronate dose after `D_last`):
//! * inclusion: [`zoledronate_transition`] and [`within_monitoring_span`]
//!   (`0 ≤ as_of − Z ≤ ctx_monitoring_span_days`);
//! * severity high: [`elevated_ctx_after`] — any CTX dated > Z + `ctx_meaningful_after_days`
//!   with value > `CTX_LIMIT` = min(referenceRange.high, `ctx_limit_ng_l`) ([`ctx_limit`]);
//! * severity moderate: [`check_missed`] — `as_of ≥ Z+77` with no CTX dated ≥ Z+77, or
//!   `as_of ≥ Z+168` with no CTX dated ≥ Z+168;
//! * otherwise info (shows the due dates Z+91 and Z+182).
//!
//! **Thresholds:** `ctx_limit_ng_l`, `ctx_first_due_days`, `ctx_second_due_days`,
//! `ctx_first_window_days`, `ctx_second_window_days`, `ctx_meaningful_after_days`,
//! `ctx_monitoring_span_days`.

use chrono::NaiveDate;

use super::denosumab_common::{ctx_after, ctx_elevated, ctx_limit};
use super::safety::{zoledronate_renally_contraindicated, ZOLEDRONATE_CONTRAINDICATED};
use crate::engine::{Ctx, Outcome};
use crate::facts::denosumab::Dose;
use crate::finding::{days_in_words, Evidence, Finding, FindingCode, Severity, Shortest, Ymd};
use crate::model::{add_days, days, Observation};

pub const CITATION: &str = "ECTS-2021 (details UNVERIFIED)";
const SECTION: &str = "§5.3–§5.4; §9 post-denosumab-ctx-monitoring";

/// `transition_given` with a zoledronate dose `Z` after `D_last`.
pub fn zoledronate_transition<'c>(ctx: &'c Ctx<'_>) -> Option<&'c Dose> {
    ctx.dmab.transition.as_ref()?;
    ctx.dmab.zoledronate_after.as_ref()
}

/// `0 ≤ as_of − Z ≤ ctx_monitoring_span_days`.
pub fn within_monitoring_span(z: NaiveDate, ctx: &Ctx<'_>) -> bool {
    (0..=ctx.t().ctx_monitoring_span_days).contains(&days(z, ctx.as_of()))
}

/// Elevated CTX dated > Z + `ctx_meaningful_after_days`.
pub fn elevated_ctx_after<'c>(z: NaiveDate, ctx: &'c Ctx<'_>) -> Vec<&'c Observation> {
    ctx_after(ctx, add_days(z, ctx.t().ctx_meaningful_after_days))
        .into_iter()
        .filter(|o| ctx_elevated(o, ctx))
        .collect()
}

/// A CTX dated on or after `Z + window_days` exists.
pub fn ctx_done_from(z: NaiveDate, window_days: i64, ctx: &Ctx<'_>) -> bool {
    !ctx_after(ctx, add_days(z, window_days - 1)).is_empty()
}

/// The 3-month (or 6-month) check window has opened without a CTX in it.
pub fn check_missed(z: NaiveDate, ctx: &Ctx<'_>) -> bool {
    let t = ctx.t();
    let since = days(z, ctx.as_of());
    (since >= t.ctx_first_window_days && !ctx_done_from(z, t.ctx_first_window_days, ctx))
        || (since >= t.ctx_second_window_days && !ctx_done_from(z, t.ctx_second_window_days, ctx))
}

/// The next CTX check still outstanding (`Z+91`, then `Z+182`), if any.
pub fn next_ctx_due(z: NaiveDate, ctx: &Ctx<'_>) -> Option<NaiveDate> {
    let t = ctx.t();
    if !ctx_done_from(z, t.ctx_first_window_days, ctx) {
        Some(add_days(z, t.ctx_first_due_days))
    } else if !ctx_done_from(z, t.ctx_second_window_days, ctx) {
        Some(add_days(z, t.ctx_second_due_days))
    } else {
        None
    }
}

/// Whether CTX monitoring is running at `as_of` (for the dated tasks).
pub fn monitoring(ctx: &Ctx<'_>) -> Option<NaiveDate> {
    let z = zoledronate_transition(ctx)?.date;
    within_monitoring_span(z, ctx).then_some(z)
}

fn ctx_evidence(o: &Observation, ctx: &Ctx<'_>) -> Evidence {
    Evidence::new(
        &o.source,
        o.date(),
        text!(
            "CTX {} ng/L (limit {} ng/L)",
            o.value.unwrap_or_default(),
            ctx_limit(o, ctx)
        ),
    )
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let Some(z) = zoledronate_transition(ctx) else {
        return;
    };
    if !within_monitoring_span(z.date, ctx) {
        return;
    }
    let t = ctx.t();
    // Only written into the texts below.
    let first = Ymd(add_days(z.date, t.ctx_first_due_days));
    let second = Ymd(add_days(z.date, t.ctx_second_due_days));
    let since = days(z.date, ctx.as_of());
    let elevated = elevated_ctx_after(z.date, ctx);
    let measured = ctx_after(ctx, add_days(z.date, t.ctx_meaningful_after_days));

    let mut evidence = vec![Evidence::new(
        &z.source,
        Some(z.date),
        "zoledronic acid after denosumab (Z)",
    )];
    if let Some(d) = &ctx.dmab.d_last {
        evidence.push(Evidence::new(
            &d.source,
            Some(d.date),
            "last denosumab dose",
        ));
    }
    evidence.extend(measured.iter().map(|o| ctx_evidence(o, ctx)));

    let standard = text!(
        "After denosumab→zoledronate transition, measure fasting serum CTX at {} and {} \
         (due {first}, {second}); repeat zoledronate if CTX is elevated.",
        days_in_words(ctx.t().ctx_first_due_days),
        days_in_words(ctx.t().ctx_second_due_days)
    );
    let (severity, summary, recommendation) = if let Some(high) = elevated.last() {
        let value = high.value.unwrap_or_default();
        let summary = text!(
            "Zoledronate {} ({since} days ago) after denosumab; CTX {} = {value} ng/L > limit {} ng/L",
            Ymd(z.date),
            high.date().map(|d| Ymd(d).to_string()).unwrap_or_default(),
            ctx_limit(high, ctx)
        );
        let rec = match zoledronate_renally_contraindicated(ctx) {
            None => text!(
                "CTX is elevated after denosumab→zoledronate transition: repeat zoledronate \
                 infusion (CTX checks due {first}, {second})."
            ),
            Some(r) => {
                evidence.extend(r.evidence.iter().cloned());
                text!(
                    "CTX is elevated after denosumab→zoledronate transition: a repeat infusion is \
                     indicated, but {ZOLEDRONATE_CONTRAINDICATED} ({}).",
                    r.describe()
                )
            }
        };
        (Severity::High, summary, rec)
    } else if check_missed(z.date, ctx) {
        (
            Severity::Moderate,
            text!(
                "Zoledronate {} ({since} days ago) after denosumab; CTX check not documented \
                 (due {first}, {second})",
                Ymd(z.date)
            ),
            standard,
        )
    } else {
        (
            Severity::Info,
            text!(
                "Zoledronate {} ({since} days ago) after denosumab; CTX due {first} and {second}",
                Ymd(z.date)
            ),
            standard,
        )
    };
    let f = Finding::new(
        FindingCode::PostDenosumabCtxMonitoring,
        severity,
        summary,
        recommendation,
        CITATION,
        SECTION,
    )
    .with_evidence(evidence)
    .with_due(next_ctx_due(z.date, ctx))
    .with_note(text!(
        "CTX limit: the lower of the lab's upper reference limit and {} ng/L; use a fasting \
         morning serum sample (not checked).",
        Shortest(t.ctx_limit_ng_l)
    ))
    .with_trace("CTX_LIMIT default UNVERIFIED (knowledge.md §5.4, §12.10)");
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Ingredient, ObservationKind, PatientRecord, Route, Sex};
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    /// Example 8: denosumab ×8 (last 2023-12-01), zoledronate 2024-06-01.
    fn example_8() -> RecordBuilder {
        let mut b = RecordBuilder::new("1952-07-07", Sex::Female);
        for date in [
            "2020-06-05",
            "2020-12-04",
            "2021-06-04",
            "2021-12-03",
            "2022-06-03",
            "2022-12-02",
            "2023-06-02",
            "2023-12-01",
        ] {
            b = b.administration(Ingredient::Denosumab, date, 60.0, Route::Subcutaneous);
        }
        b.administration(
            Ingredient::ZoledronicAcid,
            "2024-06-01",
            5.0,
            Route::Intravenous,
        )
    }

    fn severity(r: &PatientRecord, as_of: &str) -> Option<Severity> {
        testing::plain(r, d(as_of))
            .get(FindingCode::PostDenosumabCtxMonitoring)
            .map(|f| f.severity)
    }

    #[test]
    fn example_8_elevated_ctx_is_high_with_min_limit() {
        let r = example_8()
            .observation(ObservationKind::Ctx, "2024-09-02", 520.0)
            .with_last_observation(|o| o.reference_high = Some(573.0))
            .observation(ObservationKind::VitaminD25, "2024-09-02", 35.0)
            .observation(ObservationKind::Creatinine, "2024-09-02", 0.7)
            .observation(ObservationKind::BodyWeight, "2024-09-02", 62.0)
            .observation(ObservationKind::Calcium, "2024-09-02", 9.4)
            .build();
        let out = testing::plain(&r, d("2024-09-10"));
        let f = out.get(FindingCode::PostDenosumabCtxMonitoring).unwrap();
        assert_eq!(f.severity, Severity::High);
        assert!(f.summary.contains("520"), "{}", f.summary);
        assert!(f.summary.contains("280"), "{}", f.summary);
        assert!(f.recommendation.contains("repeat zoledronate"));
        // Safety checks run (repeat infusion recommended) and pass.
        for code in [
            FindingCode::ZoledronateRenalContraindication,
            FindingCode::HypocalcaemiaAntiresorptiveCaution,
            FindingCode::VitaminDDeficiencyAntiresorptiveCaution,
            FindingCode::DenosumabOverdue,
            FindingCode::DenosumabDiscontinuationWithoutTransition,
            FindingCode::DataInsufficient,
        ] {
            assert!(!out.fired(code), "{code}");
        }
    }

    #[test]
    fn ctx_at_the_limit_is_not_elevated() {
        let r = example_8()
            .observation(ObservationKind::Ctx, "2024-09-02", 280.0)
            .build();
        assert_eq!(severity(&r, "2024-09-10"), Some(Severity::Info));
        let r = example_8()
            .observation(ObservationKind::Ctx, "2024-09-02", 281.0)
            .build();
        assert_eq!(severity(&r, "2024-09-10"), Some(Severity::High));
        // A lab limit below 280 wins.
        let r = example_8()
            .observation(ObservationKind::Ctx, "2024-09-02", 250.0)
            .with_last_observation(|o| o.reference_high = Some(240.0))
            .build();
        assert_eq!(severity(&r, "2024-09-10"), Some(Severity::High));
    }

    #[test]
    fn ctx_within_60_days_of_z_is_not_judged() {
        // Z + 60 = 2024-07-31 (not judged), Z + 61 judged.
        let r = example_8()
            .observation(ObservationKind::Ctx, "2024-07-31", 600.0)
            .build();
        assert_eq!(severity(&r, "2024-08-10"), Some(Severity::Info));
        let r = example_8()
            .observation(ObservationKind::Ctx, "2024-08-01", 600.0)
            .build();
        assert_eq!(severity(&r, "2024-08-10"), Some(Severity::High));
    }

    #[test]
    fn missed_checks_are_moderate_from_day_77_and_168() {
        let r = example_8().build();
        // Z + 76 / 77.
        assert_eq!(severity(&r, "2024-08-16"), Some(Severity::Info));
        assert_eq!(severity(&r, "2024-08-17"), Some(Severity::Moderate));
        // First check done on Z + 77 (normal): info until Z + 168.
        let r = example_8()
            .observation(ObservationKind::Ctx, "2024-08-17", 150.0)
            .build();
        assert_eq!(severity(&r, "2024-11-15"), Some(Severity::Info));
        assert_eq!(severity(&r, "2024-11-16"), Some(Severity::Moderate));
        let out = testing::plain(&r, d("2024-11-16"));
        assert_eq!(
            out.get(FindingCode::PostDenosumabCtxMonitoring)
                .unwrap()
                .due,
            Some(d("2024-11-30"))
        );
    }

    #[test]
    fn monitoring_span_and_info_due_dates() {
        let r = example_8().build();
        let out = testing::plain(&r, d("2024-06-29"));
        let f = out.get(FindingCode::PostDenosumabCtxMonitoring).unwrap();
        assert_eq!(f.severity, Severity::Info);
        assert!(f.recommendation.contains("2024-08-31"));
        assert!(f.recommendation.contains("2024-11-30"));
        assert_eq!(f.due, Some(d("2024-08-31")));
        // Z + 365 still, Z + 366 not.
        assert!(severity(&r, "2025-06-01").is_some());
        assert!(severity(&r, "2025-06-02").is_none());
    }

    #[test]
    fn oral_transition_alone_is_not_monitored_here() {
        let r = RecordBuilder::new("1952-07-07", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2023-06-01",
                60.0,
                Route::Subcutaneous,
            )
            .administration(
                Ingredient::Denosumab,
                "2023-12-01",
                60.0,
                Route::Subcutaneous,
            )
            .statement(
                Ingredient::Alendronate,
                crate::model::MedicationStatus::Active,
                "2024-06-01",
                None,
            )
            .build();
        assert_eq!(severity(&r, "2024-09-10"), None);
    }

    #[test]
    fn repeat_infusion_not_recommended_when_renally_contraindicated() {
        let r = example_8()
            .observation(ObservationKind::Ctx, "2024-09-02", 520.0)
            .observation(ObservationKind::Creatinine, "2024-09-02", 2.5)
            .observation(ObservationKind::BodyWeight, "2024-09-02", 50.0)
            .build();
        let out = testing::plain(&r, d("2024-09-10"));
        let f = out.get(FindingCode::PostDenosumabCtxMonitoring).unwrap();
        assert_eq!(f.severity, Severity::High);
        assert!(!f.recommendation.contains("repeat zoledronate infusion"));
        assert!(f.recommendation.contains(ZOLEDRONATE_CONTRAINDICATED));
        assert!(out.fired(FindingCode::ZoledronateRenalContraindication));
    }
}

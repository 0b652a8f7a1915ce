//! `denosumab-discontinuation-without-transition` — knowledge.md §5.2, §5.3, §9.
//!
//! **Recommendation:** "Denosumab appears discontinued without follow-on therapy: start
//! zoledronate (or oral bisphosphonate) now and monitor CTX, per ECTS."
//! When zoledronate is renally contraindicated (§8; clinical safety rule "never recommend what
//! the record contraindicates") the recommendation instead reads: "… zoledronate contraindicated
//! by renal function — see zoledronate-renal-contraindication; consider continuing denosumab or
//! oral alternative after renal review …".
//! **Source:** ECTS-2021 (start an alternative antiresorptive 6 months after the last injection,
//! verified abstract; agent/CTX algorithm UNVERIFIED); CUMMINGS-2018 (multiple vertebral
//! fractures after stopping, verified). Strength: position statement.
//!
//! **Criteria:**
//! * inclusion: [`on_schedule_course`] (≥ 1 dose, no `transition_given`) AND ANY of
//!   (a) [`past_grace`] (`as_of − D_last > GRACE_END`);
//!   (b) [`explicitly_stopped_after_due`] (stopped order/statement and `as_of − D_last ≥ DUE`;
//!   v0.10.3: the newest order by authoredOn counts whenever it was authored);
//! * severity: critical when [`many_doses`] (`dose_count ≥ 4`), [`prevalent_vertebral_fracture`]
//!   or [`long_delay`] (`> LONG_DELAY`); else high.
//!
//! **Thresholds:** `dmab_due_days`, `dmab_grace_end_days`, `dmab_long_delay_days`,
//! `dmab_many_doses`. Recommending zoledronate makes the §8 checks apply (see
//! [`super::safety::zoledronate_planned_or_recommended`]); this finding suppresses
//! `osteoporosis-treatment-indicated`.

use super::denosumab_common::{
    course_line, dose_evidence, long_delay, on_schedule_course, past_grace, schedule_notes,
};
use super::safety::{
    zoledronate_renal, zoledronate_renally_contraindicated, ZOLEDRONATE_CONTRAINDICATED,
};
use crate::engine::{Ctx, DraftOrder, Outcome};
use crate::facts::denosumab::Schedule;
use crate::finding::{days_in_words, Evidence, Finding, FindingCode, Severity};
use crate::model::Ingredient;

pub const CITATION: &str = "ECTS-2021; CUMMINGS-2018";
const SECTION: &str = "§5.2–§5.3; §9 denosumab-discontinuation-without-transition";

/// Clause (b): an explicit stop recorded and the next dose is at least due.
pub fn explicitly_stopped_after_due(days_since: i64, ctx: &Ctx<'_>) -> bool {
    ctx.dmab.explicitly_stopped.is_some() && days_since >= ctx.t().dmab_due_days
}

/// Clause (c) (v0.10.3, order hooks only): a draft order of this context sets denosumab to
/// `stopped`, `completed` or `cancelled`, and no bisphosphonate transition is ordered in the
/// same context (a draft zoledronate, alendronate, risedronate or ibandronate order that does
/// not itself stop). Fires whatever `as_of − D_last` is.
pub fn stopped_by_draft<'a>(ctx: &'a Ctx<'_>) -> Option<&'a DraftOrder> {
    let stop = ctx
        .drafts
        .iter()
        .find(|d| d.has(Ingredient::Denosumab) && d.stops())?;
    let transition_ordered = ctx
        .drafts
        .iter()
        .any(|d| !d.stops() && d.ingredients.iter().any(|i| i.is_bisphosphonate()));
    (!transition_ordered).then_some(stop)
}

/// `dmab_dose_count ≥ 4` (ECTS: longer courses rebound harder).
pub fn many_doses(ctx: &Ctx<'_>) -> bool {
    ctx.dmab.dose_count as i64 >= ctx.t().dmab_many_doses
}

/// Any vertebral fracture on record at `as_of` (a risk factor for multiple rebound fractures,
/// §5.3-6).
///
/// A vertebral fracture documented only by a follow-up code (7th character D/G/K/S, §10.3) is no
/// new fracture event, but it is a fracture the patient has: it counts here as it does for
/// §3.1 (found by the oragc differential, docs/differential-gc.md).
pub fn prevalent_vertebral_fracture(ctx: &Ctx<'_>) -> bool {
    ctx.spine.fractures.iter().any(|f| {
        f.onset_for_windows
            .or(f.onset_for_acuity)
            .is_none_or(|d| d <= ctx.as_of())
    }) || ctx.spine.levels.iter().any(|l| l.state.is_fractured())
        || crate::facts::risk::has_followup_vertebral_fracture(ctx.record())
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    if !on_schedule_course(ctx) {
        return;
    }
    let Some(n) = ctx.dmab.days_since_last(ctx.as_of()) else {
        return;
    };
    let clause_a = past_grace(n, ctx);
    let clause_b = explicitly_stopped_after_due(n, ctx);
    let clause_c = stopped_by_draft(ctx);
    if !(clause_a || clause_b || clause_c.is_some()) {
        return;
    }

    let mut reasons = Vec::new();
    if many_doses(ctx) {
        reasons.push(text!(
            "{} doses ≥ {}",
            ctx.dmab.dose_count,
            ctx.t().dmab_many_doses
        ));
    }
    if prevalent_vertebral_fracture(ctx) {
        reasons.push("prevalent vertebral fracture".to_string());
    }
    if long_delay(n, ctx) {
        reasons.push(text!(
            "{n} days > {} since the last dose",
            ctx.t().dmab_long_delay_days
        ));
    }
    let severity = if reasons.is_empty() {
        Severity::High
    } else {
        Severity::Critical
    };

    let why = match (clause_c.is_some(), clause_a) {
        (true, _) => "the order being signed stops denosumab, no bisphosphonate ordered or given",
        (false, true) => "no dose or bisphosphonate since",
        (false, false) => "denosumab recorded as stopped, no bisphosphonate since",
    };
    let mut summary = text!("{} — {why}", course_line(ctx).unwrap_or_default());
    if !reasons.is_empty() {
        summary.push_str(&text!(" (critical: {})", reasons.join(", ")));
    }

    let mut evidence = dose_evidence(ctx);
    if let Some(s) = &ctx.dmab.explicitly_stopped {
        evidence.push(Evidence::new(s, None, "denosumab recorded as stopped"));
    }
    let contraindicated = zoledronate_renally_contraindicated(ctx);
    let mut due = None;
    let recommendation = match (clause_c, &ctx.dmab.schedule) {
        (Some(stop), Some(schedule)) => {
            evidence.push(Evidence::new(
                &stop.reference,
                Some(ctx.as_of()),
                "the order being signed stops denosumab",
            ));
            due = Some(schedule.transition_due);
            clause_c_recommendation(ctx, schedule, &mut evidence)
        }
        _ => match &contraindicated {
            None => "Denosumab appears discontinued without follow-on therapy: start zoledronate \
                     (or oral bisphosphonate) now and monitor CTX, per ECTS."
                .to_string(),
            Some(r) => {
                evidence.extend(r.evidence.iter().cloned());
                text!(
                    "Denosumab appears discontinued without follow-on therapy: \
                     {ZOLEDRONATE_CONTRAINDICATED} ({}); monitor CTX, per ECTS.",
                    r.describe()
                )
            }
        },
    };
    let clauses: Vec<&str> = [
        (clause_a, "(a) past the grace period"),
        (clause_b, "(b) explicitly stopped, next dose at least due"),
        (clause_c.is_some(), "(c) a draft order stops denosumab"),
    ]
    .into_iter()
    .filter_map(|(on, c)| on.then_some(c))
    .collect();
    let f = Finding::new(
        FindingCode::DenosumabDiscontinuationWithoutTransition,
        severity,
        summary,
        recommendation,
        CITATION,
        SECTION,
    )
    .with_evidence(evidence)
    .with_due(due)
    .with_trace(text!(
        "§9 denosumab-discontinuation-without-transition clause {}",
        clauses.join(", ")
    ))
    .with_trace("ECTS-2021 transition details (agent choice, CTX algorithm) from memory — UNVERIFIED (knowledge.md §5.3)")
    .with_note(
        "The transition details (agent choice, CTX follow-up) await confirmation against the \
         ECTS-2021 statement.",
    );
    out.push(schedule_notes(ctx, f));
}

/// The clause (c) recommendation (§9), by the §8 renal verdict: zoledronic acid is named as
/// something to give only when a fresh renal value allows it; when it is contraindicated the
/// text says so; when renal function is unknown it asks for it first.
fn clause_c_recommendation(ctx: &Ctx<'_>, s: &Schedule, evidence: &mut Vec<Evidence>) -> String {
    let (due, ctx_first, ctx_second) = (
        s.transition_due,
        s.transition_ctx_due[0],
        s.transition_ctx_due[1],
    );
    match zoledronate_renal(ctx) {
        Some(r) if r.value < ctx.t().zoledronate_min_crcl => {
            evidence.extend(r.evidence.iter().cloned());
            text!(
                "Denosumab is being stopped without a transition plan: \
                 {ZOLEDRONATE_CONTRAINDICATED} ({}); plan the follow-on therapy by {due}, \
                 then check CTX ({ctx_first}, {ctx_second}), per ECTS.",
                r.describe()
            )
        }
        Some(r) => {
            evidence.extend(r.evidence.iter().cloned());
            let t = ctx.t();
            text!(
                "Denosumab is being stopped without a transition plan: give zoledronic acid {} mg \
                 IV {} after the last injection (due {due}) or start oral alendronate, then \
                 check CTX at {} and {} ({ctx_first}, {ctx_second}), per ECTS.",
                t.zoledronate_dose_mg,
                days_in_words(t.dmab_due_days),
                days_in_words(t.ctx_first_due_days),
                days_in_words(t.ctx_second_due_days)
            )
        }
        None => text!(
            "Denosumab is being stopped without a transition plan: renal function is unknown \
             (no creatinine or eGFR within {} days) — check it before choosing zoledronic acid \
             (due {due}) or oral alendronate, then check CTX ({ctx_first}, {ctx_second}), per \
             ECTS.",
            ctx.t().renal_fresh_days
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::facts::spine::{FractureEvent, SpineFacts};
    use crate::model::{
        add_days, Ingredient, MedicationStatus, ObservationKind, Route, Sex, SourceRef,
        VertebralLevel, VertebralLocation,
    };
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    /// A course of `n` doses 182 days apart, the last on 2022-10-27.
    pub(crate) fn doses(n: usize) -> RecordBuilder {
        let mut b = RecordBuilder::new("1950-03-15", Sex::Female);
        for i in 0..n {
            let date = add_days(d("2022-10-27"), -182 * (n - 1 - i) as i64);
            b = b.administration(
                Ingredient::Denosumab,
                &date.to_string(),
                60.0,
                Route::Subcutaneous,
            );
        }
        b
    }

    fn at(r: &crate::model::PatientRecord, days_after: i64) -> Option<Severity> {
        testing::plain(r, add_days(d("2022-10-27"), days_after))
            .get(FindingCode::DenosumabDiscontinuationWithoutTransition)
            .map(|f| f.severity)
    }

    #[test]
    fn clause_a_boundaries_and_severity() {
        let r = doses(2).build();
        assert_eq!(at(&r, 210), None);
        assert_eq!(at(&r, 211), Some(Severity::High));
        assert_eq!(at(&r, 294), Some(Severity::High));
        assert_eq!(at(&r, 295), Some(Severity::Critical));
    }

    #[test]
    fn four_doses_make_it_critical_three_do_not() {
        assert_eq!(at(&doses(3).build(), 211), Some(Severity::High));
        assert_eq!(at(&doses(4).build(), 211), Some(Severity::Critical));
    }

    #[test]
    fn explicit_stop_fires_from_the_due_date() {
        let r = doses(2)
            .order(
                Ingredient::Denosumab,
                MedicationStatus::Stopped,
                "2022-10-27",
            )
            .build();
        assert_eq!(at(&r, 181), None);
        assert_eq!(at(&r, 182), Some(Severity::High));
    }

    /// v0.10.3 clause (b): the most recent denosumab order by authoredOn counts whenever it was
    /// authored — a standing order written before the first dose and later set to stopped
    /// (before v0.10.3 a dose after the order's authoredOn hid the stop on days 182–210).
    #[test]
    fn stopped_standing_order_authored_before_the_doses() {
        let r = doses(1)
            .order(
                Ingredient::Denosumab,
                MedicationStatus::Stopped,
                "2022-01-01",
            )
            .build();
        assert_eq!(at(&r, 181), None);
        assert_eq!(at(&r, 182), Some(Severity::High));
        assert_eq!(at(&r, 200), Some(Severity::High));
        // The same standing order still active: only clause (a), from day 211.
        let r = doses(1)
            .order(
                Ingredient::Denosumab,
                MedicationStatus::Active,
                "2022-01-01",
            )
            .build();
        assert_eq!(at(&r, 210), None);
        assert_eq!(at(&r, 211), Some(Severity::High));
    }

    #[test]
    fn prevalent_vertebral_fracture_makes_it_critical() {
        let r = doses(2).build();
        let out = testing::run(&r, d("2023-06-15"), |ctx| {
            ctx.spine = SpineFacts {
                fractures: vec![FractureEvent {
                    source: SourceRef::new("Condition/l4"),
                    location: VertebralLocation::Level(VertebralLevel::L4),
                    onset_for_acuity: Some(d("2022-08-01")),
                    onset_for_windows: Some(d("2022-08-01")),
                    onset_estimated: false,
                    prevalent_unknown_age: false,
                    traumatic: false,
                    recorded: Some(d("2022-08-01")),
                }],
                ..Default::default()
            };
        });
        let f = out
            .get(FindingCode::DenosumabDiscontinuationWithoutTransition)
            .unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.summary.contains("prevalent vertebral fracture"));
    }

    /// §9 "critical if … any prevalent vertebral fracture": a vertebral fracture known only from
    /// a follow-up code (M80.08XD) is one.
    #[test]
    fn a_followup_coded_vertebral_fracture_makes_it_critical() {
        let mut r = doses(2)
            .vertebral_fracture(VertebralLevel::L2, "2021-05-01", "2021-05-02")
            .build();
        let last = r.conditions.len() - 1;
        r.conditions[last].subsequent_encounter = true;
        assert_eq!(at(&r, 240), Some(Severity::Critical));
        r.conditions.clear();
        assert_eq!(at(&r, 240), Some(Severity::High));
    }

    #[test]
    fn transition_given_stops_it() {
        let r = doses(6)
            .administration(
                Ingredient::ZoledronicAcid,
                "2023-08-31",
                5.0,
                Route::Intravenous,
            )
            .build();
        assert_eq!(at(&r, 336), None);
        // Teriparatide is not a transition.
        let r = doses(6)
            .daily_order(
                Ingredient::Teriparatide,
                MedicationStatus::Active,
                "2023-05-01",
                None,
                Some(0.02),
                Some(1.0),
                Route::Subcutaneous,
            )
            .build();
        assert_eq!(at(&r, 231), Some(Severity::Critical));
    }

    #[test]
    fn never_recommends_zoledronate_when_renally_contraindicated() {
        let ok = doses(6)
            .observation(ObservationKind::Creatinine, "2023-06-10", 0.8)
            .observation(ObservationKind::BodyWeight, "2023-06-10", 50.0)
            .build();
        let out = testing::plain(&ok, d("2023-06-15"));
        let f = out
            .get(FindingCode::DenosumabDiscontinuationWithoutTransition)
            .unwrap();
        assert!(f.recommendation.contains("start zoledronate"));

        let bad = doses(6)
            .observation(ObservationKind::Creatinine, "2023-06-10", 2.5)
            .observation(ObservationKind::BodyWeight, "2023-06-10", 50.0)
            .build();
        let out = testing::plain(&bad, d("2023-06-15"));
        let f = out
            .get(FindingCode::DenosumabDiscontinuationWithoutTransition)
            .unwrap();
        assert!(!f.recommendation.contains("start zoledronate"));
        assert!(f.recommendation.contains(ZOLEDRONATE_CONTRAINDICATED));
        assert!(out.fired(FindingCode::ZoledronateRenalContraindication));
    }

    /// `doses(n)` plus a draft order (no authoredOn) with `status` for `ingredient`; returns the
    /// record and the draft's reference.
    fn with_draft(
        b: RecordBuilder,
        ingredient: Ingredient,
        status: MedicationStatus,
    ) -> (crate::model::PatientRecord, SourceRef) {
        let mut r = b.order(ingredient, status, "2000-01-01").build();
        let m = r.medications.last_mut().expect("the draft");
        m.authored = None;
        m.visible = None;
        let source = m.source.clone();
        (r, source)
    }

    fn what_if(r: &crate::model::PatientRecord, drafts: &[SourceRef], n: i64) -> Outcome {
        testing::what_if(r, drafts, add_days(d("2022-10-27"), n))
    }

    /// v0.10.3 clause (c): a draft order stopping denosumab fires whatever `as_of − D_last` is;
    /// due = max(D_last + 182, as_of); severity as for every clause.
    #[test]
    fn clause_c_fires_at_any_day_with_its_due_date() {
        let (r, stop) = with_draft(doses(2), Ingredient::Denosumab, MedicationStatus::Stopped);
        let out = what_if(&r, std::slice::from_ref(&stop), 30);
        let f = out
            .get(FindingCode::DenosumabDiscontinuationWithoutTransition)
            .expect("clause (c) fires on day 30");
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.due, Some(d("2023-04-27")));
        assert!(f.evidence.iter().any(|e| e.reference == stop.as_str()));
        assert!(f.trace.iter().any(|t| t.contains("(c)")));
        // Outside an order hook the same record does not fire on day 30 (clause b needs ≥ 182).
        assert!(!testing::plain(&r, add_days(d("2022-10-27"), 30))
            .fired(FindingCode::DenosumabDiscontinuationWithoutTransition));
        // Day 250: due is as-of.
        let f = what_if(&r, std::slice::from_ref(&stop), 250)
            .get(FindingCode::DenosumabDiscontinuationWithoutTransition)
            .cloned();
        assert_eq!(f.and_then(|f| f.due), Some(add_days(d("2022-10-27"), 250)));
        // Cancelled and completed stop too; an active (renewed) draft does not.
        for status in [MedicationStatus::Cancelled, MedicationStatus::Completed] {
            let (r, stop) = with_draft(doses(2), Ingredient::Denosumab, status);
            assert!(what_if(&r, &[stop], 30)
                .fired(FindingCode::DenosumabDiscontinuationWithoutTransition));
        }
        let (r, renew) = with_draft(doses(2), Ingredient::Denosumab, MedicationStatus::Draft);
        assert!(!what_if(&r, &[renew], 30)
            .fired(FindingCode::DenosumabDiscontinuationWithoutTransition));
    }

    #[test]
    fn clause_c_severity_many_doses_or_long_delay() {
        let sev = |n_doses: usize, day: i64| {
            let (r, stop) = with_draft(
                doses(n_doses),
                Ingredient::Denosumab,
                MedicationStatus::Stopped,
            );
            what_if(&r, &[stop], day)
                .get(FindingCode::DenosumabDiscontinuationWithoutTransition)
                .map(|f| f.severity)
        };
        assert_eq!(sev(3, 30), Some(Severity::High));
        assert_eq!(sev(4, 30), Some(Severity::Critical));
        assert_eq!(sev(3, 294), Some(Severity::High));
        assert_eq!(sev(3, 295), Some(Severity::Critical));
    }

    /// §9 "Order hooks" evaluates the drafts as if signed, but a signed order is still an order,
    /// not a documented dose (§4.3; §5.1 counts *doses*): clause (c) needs `dmab_dose_count ≥ 1`
    /// from the record, and a draft never becomes `D_last`. Found by the oradm2 differential
    /// (a stop order on a patient with no denosumab dose fired clause (c) critical; a renewal
    /// order reset the request-tier `D_last` to the as-of date).
    #[test]
    fn clause_c_a_draft_order_is_never_a_dose() {
        // No denosumab dose documented: a draft stop order starts no course, nothing fires.
        for status in [
            MedicationStatus::Stopped,
            MedicationStatus::OnHold,
            MedicationStatus::Draft,
        ] {
            let (r, draft) = with_draft(
                RecordBuilder::new("1950-03-15", Sex::Female),
                Ingredient::Denosumab,
                status,
            );
            let out = what_if(&r, &[draft], 30);
            assert!(
                !out.fired(FindingCode::DenosumabDiscontinuationWithoutTransition),
                "{status:?}"
            );
            assert!(!out.fired(FindingCode::DenosumabDueSoon), "{status:?}");
        }
        // Request-tier course (orders authored on the dose days, the last 2022-10-27): overdue on
        // day 250 (> 210); a renewal drafted that day does not make 250 days into 0.
        let mut b = RecordBuilder::new("1950-03-15", Sex::Female);
        for date in ["2022-04-28", "2022-10-27"] {
            b = b.order(Ingredient::Denosumab, MedicationStatus::Completed, date);
        }
        let (r, renew) = with_draft(b, Ingredient::Denosumab, MedicationStatus::Draft);
        let out = what_if(&r, &[renew], 250);
        assert_eq!(
            out.get(FindingCode::DenosumabOverdue).map(|f| f.severity),
            Some(Severity::High)
        );
        assert!(out.fired(FindingCode::DenosumabDiscontinuationWithoutTransition));
    }

    /// A bisphosphonate ordered in the same context is the transition: clause (c) does not fire.
    #[test]
    fn clause_c_not_when_a_transition_is_ordered_with_it() {
        let (r, stop) = with_draft(doses(2), Ingredient::Denosumab, MedicationStatus::Stopped);
        let mut r2 = r.clone();
        let mut zol = r.medications.last().cloned().expect("draft");
        zol.source = SourceRef::new("MedicationRequest/zol-draft");
        zol.ingredients = vec![Ingredient::Alendronate];
        zol.status = MedicationStatus::Draft;
        r2.medications.push(zol.clone());
        let out = what_if(&r2, &[stop.clone(), zol.source.clone()], 30);
        assert!(!out.fired(FindingCode::DenosumabDiscontinuationWithoutTransition));
        // Without the alendronate draft it fires.
        assert!(
            what_if(&r, &[stop], 30).fired(FindingCode::DenosumabDiscontinuationWithoutTransition)
        );
    }

    /// §8 with clause (c): never "give zoledronic acid" when CrCl < 35 or renal function is
    /// unknown; with a fresh CrCl ≥ 35 the ECTS plan names it.
    #[test]
    fn clause_c_never_gives_zoledronate_when_renal_function_forbids_or_is_unknown() {
        let rec = |creatinine: Option<f64>| {
            let mut b = doses(2);
            if let Some(c) = creatinine {
                b = b
                    .observation(ObservationKind::Creatinine, "2022-11-20", c)
                    .observation(ObservationKind::BodyWeight, "2022-11-20", 50.0);
            }
            with_draft(b, Ingredient::Denosumab, MedicationStatus::Stopped)
        };
        // Age 72, 50 kg, female: CrCl ≈ 50 mL/min with creatinine 0.8, ≈ 16 with 2.5.
        let run = |creatinine: Option<f64>| {
            let (r, stop) = rec(creatinine);
            let out = what_if(&r, &[stop], 30);
            let text = out
                .get(FindingCode::DenosumabDiscontinuationWithoutTransition)
                .map(|f| f.recommendation.clone());
            let text = text.expect("clause (c) fires");
            (out, text)
        };
        let (out, text) = run(Some(0.8));
        assert!(text.contains("give zoledronic acid"), "{text}");
        assert!(!out.fired(FindingCode::ZoledronateRenalContraindication));

        let (out, text) = run(Some(2.5));
        assert!(!text.contains("give zoledronic acid"), "{text}");
        assert!(text.contains(ZOLEDRONATE_CONTRAINDICATED));
        assert!(out.fired(FindingCode::ZoledronateRenalContraindication));

        let (out, text) = run(None);
        assert!(!text.contains("give zoledronic acid"), "{text}");
        assert!(text.contains("renal function is unknown"));
        assert!(out.insufficient.iter().any(|i| i.item == 3));
    }
}

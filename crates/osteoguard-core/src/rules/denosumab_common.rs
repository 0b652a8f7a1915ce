//! Helpers every denosumab rule shares (knowledge.md §5): the course predicates, the course
//! line and dose evidence of their text, the schedule notes, and the CTX readings (§5.4) the
//! monitoring and rebound rules judge. Kept here rather than in one sibling rule.

use chrono::NaiveDate;

use crate::engine::Ctx;
use crate::finding::{Evidence, Finding, Ymd};
use crate::model::{Observation, ObservationKind};

/// ≥ 1 dated osteoporosis-schedule dose and no bisphosphonate transition after it.
pub fn on_schedule_course(ctx: &Ctx<'_>) -> bool {
    ctx.dmab.dose_count >= 1 && ctx.dmab.transition.is_none()
}

/// `as_of − D_last > GRACE_END` (on time = within 4 weeks of the due date).
pub fn past_grace(days_since: i64, ctx: &Ctx<'_>) -> bool {
    days_since > ctx.t().dmab_grace_end_days
}

/// `as_of − D_last > LONG_DELAY` (> 16 weeks late).
pub fn long_delay(days_since: i64, ctx: &Ctx<'_>) -> bool {
    days_since > ctx.t().dmab_long_delay_days
}

/// "Last denosumab 2022-10-27 (6 doses); 231 days ago, due 2023-04-27", shared by the
/// denosumab rules.
pub fn course_line(ctx: &Ctx<'_>) -> Option<String> {
    let last = ctx.dmab.d_last.as_ref()?;
    let n = ctx.dmab.days_since_last(ctx.as_of())?;
    let due = Ymd(ctx.dmab.schedule.as_ref()?.next_due);
    Some(text!(
        "Last denosumab {} ({} dose{}); {n} days ago, due {due}",
        Ymd(last.date),
        ctx.dmab.dose_count,
        if ctx.dmab.dose_count == 1 { "" } else { "s" }
    ))
}

/// Evidence: every distinct dose used (the last one marked).
pub fn dose_evidence(ctx: &Ctx<'_>) -> Vec<Evidence> {
    let n = ctx.dmab.doses.len();
    ctx.dmab
        .doses
        .iter()
        .enumerate()
        .map(|(i, d)| {
            // The osteoporosis dose (oncology records never count), numbered.
            let what = if i + 1 == n {
                text!("denosumab dose {} (last dose)", i + 1)
            } else {
                text!("denosumab dose {}", i + 1)
            };
            Evidence::new(&d.source, Some(d.date), what)
        })
        .collect()
}

/// Notes every denosumab schedule finding carries (uncertain dates, oncology records).
pub fn schedule_notes(ctx: &Ctx<'_>, mut f: Finding) -> Finding {
    if ctx.dmab.uncertain_dates {
        f = f.with_note(
            "Dose dates taken from MedicationRequest.authoredOn (uncertain_date): confirm the \
             administration dates.",
        );
    }
    if !ctx.dmab.oncology_records.is_empty() {
        f = f.with_note(text!(
            "Denosumab at the oncology dose (Xgeva) excluded from the osteoporosis \
             schedule: {}.",
            ctx.dmab
                .oncology_records
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    f
}

/// `CTX_LIMIT` = min(lab upper reference limit, configured limit), §5.4.
pub fn ctx_limit(o: &Observation, ctx: &Ctx<'_>) -> f64 {
    match o.reference_high {
        Some(h) => h.min(ctx.t().ctx_limit_ng_l),
        None => ctx.t().ctx_limit_ng_l,
    }
}

/// `ctx_elevated` for one CTX observation.
pub fn ctx_elevated(o: &Observation, ctx: &Ctx<'_>) -> bool {
    o.value.is_some_and(|v| v > ctx_limit(o, ctx))
}

/// Usable CTX observations with a value, dated after `after` (exclusive) and on/before as_of.
pub fn ctx_after<'c>(ctx: &'c Ctx<'_>, after: NaiveDate) -> Vec<&'c Observation> {
    ctx.record()
        .observations
        .iter()
        .filter(|o| o.kind == ObservationKind::Ctx && o.status.is_usable() && o.value.is_some())
        .filter(|o| o.date().is_some_and(|d| d > after && d <= ctx.as_of()))
        .collect()
}

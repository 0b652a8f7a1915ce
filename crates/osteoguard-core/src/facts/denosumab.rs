//! Denosumab course facts — knowledge.md §5.1–§5.2 (PROLIA-PI, LYU-2020, ECTS-2021).
//!
//! Dose dates come from the highest source tier that has any dated dose (never a merge):
//! MedicationAdministration(completed) > MedicationStatement effectiveDateTime >
//! MedicationRequest authoredOn (uncertain dates).
//!
//! Engine choices (documented in the report of the rules that read these facts):
//! * A MedicationStatement gives a dose date only through `effectiveDateTime` (a one-day period);
//!   an effectivePeriod describes a course, not an injection, and counts as "no usable date".
//! * Of doses closer than `dmab_distinct_dose_days`, the earliest is kept (the later record is
//!   taken as the same administration documented twice; keeping the earlier is conservative,
//!   it makes the next dose due sooner).
//! * `undated` lists only records of the chosen tier or a higher one (an undated order does not
//!   matter when administrations are documented), or every undated record when no tier has a
//!   dated dose.
//! * Oncology denosumab (Xgeva 120 mg): a dose ≥ `dmab_oncology_min_mg`, or a display naming
//!   "Xgeva" or "120"; recognised and kept out of every schedule fact.
//! * Transition: only documented bisphosphonate doses count (MedicationAdministration completed,
//!   MedicationStatement active/completed/stopped); a MedicationRequest counts as "started" only
//!   for an oral agent (alendronate, risedronate, non-IV ibandronate) — a zoledronate order is a
//!   plan (§4.3, §8), not a given dose.

use chrono::NaiveDate;
use serde::Serialize;

use super::Input;
use crate::model::{
    add_days, DispenseStatus, Ingredient, MedicationRecord, MedicationSource, MedicationStatus,
    Route, SourceRef,
};
use crate::thresholds::Thresholds;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dose {
    pub date: NaiveDate,
    pub source: SourceRef,
    pub tier: MedicationSource,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// First bisphosphonate dose/start after `D_last`.
    pub date: NaiveDate,
    pub agent: Ingredient,
    pub source: SourceRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct DenosumabCourse {
    /// Distinct osteoporosis-schedule (60 mg) doses, ascending (≥ 60 days apart).
    pub doses: Vec<Dose>,
    /// `D_last`.
    pub d_last: Option<Dose>,
    /// `dmab_dose_count`.
    pub dose_count: usize,
    /// Dates come from MedicationRequest.authoredOn (`uncertain_date`).
    pub uncertain_dates: bool,
    /// Denosumab records without any usable date (data-insufficient item 8).
    pub undated: Vec<SourceRef>,
    /// Explicitly stopped: MedicationRequest stopped/completed with no newer order, or
    /// MedicationStatement stopped (§9 discontinuation (b)).
    pub explicitly_stopped: Option<SourceRef>,
    /// `transition_given` (§5.2): a bisphosphonate administered/started after `D_last`, ≤ as_of.
    pub transition: Option<Transition>,
    /// `Z`: the latest zoledronate dose after `D_last` (§5.2 v0.10).
    pub zoledronate_after: Option<Dose>,
    /// Denosumab 120 mg (Xgeva, oncology) records: recognised, excluded from the schedule.
    pub oncology_records: Vec<SourceRef>,
    /// An active denosumab order with an explicit occurrence (for "due", §8).
    pub ordered_occurrence: Option<(NaiveDate, SourceRef)>,
    /// The schedule from `D_last` (§5.1, §5.3), computed once for every rule and output;
    /// `None` without a dated dose.
    pub schedule: Option<Schedule>,
}

/// The denosumab schedule from `D_last` (§5.1) and the ECTS transition plan (§5.3), in dates.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// `D_last + DUE`: the next dose is due.
    pub next_due: NaiveDate,
    /// `D_last + DUE_SOON_START`: "due soon" from here.
    pub due_soon_start: NaiveDate,
    /// `D_last + GRACE_END`: the last day a dose is still on time (LYU-2020).
    pub grace_end: NaiveDate,
    /// `D_last + LONG_DELAY`: after this the delay is long (LYU-2020, HR 3.91).
    pub long_delay: NaiveDate,
    /// When a bisphosphonate transition is due if denosumab stops (§5.3-2, §9 clause (c)):
    /// `max(D_last + DUE, as_of)`.
    pub transition_due: NaiveDate,
    /// CTX 3 and 6 months after a transition given on `transition_due` (§5.3-4).
    pub transition_ctx_due: [NaiveDate; 2],
}

impl Schedule {
    pub fn from_last_dose(d_last: NaiveDate, as_of: NaiveDate, t: &Thresholds) -> Self {
        let next_due = add_days(d_last, t.dmab_due_days);
        let transition_due = next_due.max(as_of);
        Schedule {
            next_due,
            due_soon_start: add_days(d_last, t.dmab_due_soon_start_days),
            grace_end: add_days(d_last, t.dmab_grace_end_days),
            long_delay: add_days(d_last, t.dmab_long_delay_days),
            transition_due,
            transition_ctx_due: [
                add_days(transition_due, t.ctx_first_due_days),
                add_days(transition_due, t.ctx_second_due_days),
            ],
        }
    }
}

impl DenosumabCourse {
    /// `as_of − D_last` in days.
    pub fn days_since_last(&self, as_of: NaiveDate) -> Option<i64> {
        self.d_last
            .as_ref()
            .map(|d| crate::model::days(d.date, as_of))
    }
}

/// Dose in mg documented on the record (administered dose, else the first dosage line).
fn documented_mg(m: &MedicationRecord) -> Option<f64> {
    m.administered_mg
        .or_else(|| m.dosages.iter().find_map(|d| d.dose_mg))
}

/// Denosumab 120 mg (Xgeva, oncology), §5.1: recognised, excluded from the schedule.
pub fn is_oncology_denosumab(m: &MedicationRecord, t: &Thresholds) -> bool {
    if !m.has(Ingredient::Denosumab) {
        return false;
    }
    let display = m.display.to_ascii_lowercase();
    display.contains("xgeva")
        || display.contains("120")
        || documented_mg(m).is_some_and(|mg| mg >= t.dmab_oncology_min_mg)
}

/// The status filters of §1.6 for a record that documents a *given* dose or start.
fn documents_given(m: &MedicationRecord) -> bool {
    use MedicationStatus::*;
    match m.kind {
        MedicationSource::Administration => m.status == Completed,
        MedicationSource::Statement => matches!(m.status, Active | Completed | Stopped),
        MedicationSource::Request => matches!(m.status, Active | Completed | OnHold | Stopped),
    }
}

/// The dose date a record documents in its own tier (§5.1), `None` = no usable date.
fn dose_date(m: &MedicationRecord) -> Option<NaiveDate> {
    match m.kind {
        MedicationSource::Administration => m.administration_date(),
        // effectiveDateTime only: a one-day period.
        MedicationSource::Statement => m.effective.and_then(|p| match (p.start, p.end) {
            (Some(a), Some(b)) if a == b => Some(a),
            _ => None,
        }),
        MedicationSource::Request => m.authored,
    }
}

/// Start (or dose) date of a bisphosphonate record that documents it given/started, §5.2.
fn bisphosphonate_start(m: &MedicationRecord, agent: Ingredient) -> Option<NaiveDate> {
    if !documents_given(m) {
        return None;
    }
    match m.kind {
        MedicationSource::Administration => m.administration_date(),
        MedicationSource::Statement => m.administration_date(),
        MedicationSource::Request => {
            let intravenous = m.route == Route::Intravenous
                || m.dosages.iter().any(|d| d.route == Route::Intravenous);
            let oral_agent = match agent {
                Ingredient::Alendronate | Ingredient::Risedronate => true,
                Ingredient::Ibandronate => !intravenous,
                _ => false,
            };
            if !oral_agent {
                return None;
            }
            m.dosages
                .iter()
                .filter_map(|d| d.bounds.and_then(|b| b.start))
                .min()
                .or(m.authored)
        }
    }
}

fn tier_rank(t: MedicationSource) -> u8 {
    match t {
        MedicationSource::Administration => 3,
        MedicationSource::Statement => 2,
        MedicationSource::Request => 1,
    }
}

/// Collapses dates closer than `min_gap` days into one administration (the earliest kept).
fn distinct(mut doses: Vec<Dose>, min_gap: i64) -> Vec<Dose> {
    doses.sort_by(|a, b| (a.date, &a.source).cmp(&(b.date, &b.source)));
    let mut kept: Vec<Dose> = Vec::new();
    for d in doses {
        match kept.last() {
            Some(last) if crate::model::days(last.date, d.date) < min_gap => {}
            _ => kept.push(d),
        }
    }
    kept
}

pub fn compute(input: &Input<'_>) -> DenosumabCourse {
    let t = input.t;
    let as_of = input.as_of;
    let meds = &input.record.medications;
    let mut course = DenosumabCourse::default();

    // Osteoporosis-schedule denosumab records (oncology recognised, set aside).
    let mut schedule: Vec<&MedicationRecord> = Vec::new();
    for m in meds.iter().filter(|m| m.has(Ingredient::Denosumab)) {
        if matches!(
            m.status,
            MedicationStatus::EnteredInError | MedicationStatus::Cancelled
        ) {
            continue;
        }
        if is_oncology_denosumab(m, t) {
            course.oncology_records.push(m.source.clone());
        } else {
            schedule.push(m);
        }
    }

    // Dated doses per tier, and undated records.
    let mut dated: Vec<Dose> = Vec::new();
    let mut undated: Vec<(MedicationSource, SourceRef)> = Vec::new();
    // A draft order of an order hook, read as if signed (§9 "Order hooks"), is an order being
    // placed, not a documented dose (§4.3: an order is a plan until a dose is documented): were
    // it a request-tier dose, a stop order would start a course of its own (clause (c) on a
    // patient never given denosumab) and a renewal would reset `D_last` to the as-of date (found
    // by the oradm2 differential, docs/differential-dmab.md).
    for m in schedule
        .iter()
        .filter(|m| documents_given(m) && !m.signed_draft)
    {
        match dose_date(m) {
            Some(date) if date <= as_of => dated.push(Dose {
                date,
                source: m.source.clone(),
                tier: m.kind,
            }),
            Some(_) => {}
            None => undated.push((m.kind, m.source.clone())),
        }
    }
    let chosen = dated.iter().map(|d| d.tier).max_by_key(|t| tier_rank(*t));
    if let Some(tier) = chosen {
        let doses: Vec<Dose> = dated.into_iter().filter(|d| d.tier == tier).collect();
        course.doses = distinct(doses, t.dmab_distinct_dose_days);
        course.uncertain_dates = tier == MedicationSource::Request;
        undated.retain(|(k, _)| tier_rank(*k) >= tier_rank(tier));
    }
    course.undated = undated.into_iter().map(|(_, s)| s).collect();
    course.undated.sort();
    course.dose_count = course.doses.len();
    course.d_last = course.doses.last().cloned();

    let Some(d_last) = course.d_last.clone() else {
        return course;
    };
    course.schedule = Some(Schedule::from_last_dose(d_last.date, as_of, t));

    // Explicit stop (§9 discontinuation (b)): the newest denosumab order by authoredOn is
    // stopped/completed, whenever it was authored (v0.10.3: a standing order written before the
    // first dose and later set to stopped is the usual pattern); or a statement is stopped and
    // no dose was documented after the stop (a restart). Unlike an order, a stopped statement is
    // not cancelled by a newer statement that is not stopped: §9 (b) qualifies only the order
    // with "no newer order", and a newer statement that documents a dose in the tier the
    // schedule uses is already a restart (D_last after the stop); one in a lower tier is not a
    // dose (§5.1, never a merge), so it must not silence the stop either (found by the oradm
    // differential, docs/differential-dmab.md).
    let newest = |kind: MedicationSource, stopped_only: bool| {
        schedule
            .iter()
            .filter(|m| m.kind == kind)
            .filter(|m| !stopped_only || m.status == MedicationStatus::Stopped)
            .filter_map(|m| {
                let date = match kind {
                    MedicationSource::Request => m.authored,
                    _ => m.effective.and_then(|p| p.end.or(p.start)).or(m.visible),
                }?;
                Some((date, *m))
            })
            .max_by(|a, b| (a.0, &a.1.source).cmp(&(b.0, &b.1.source)))
    };
    let stopped_request = newest(MedicationSource::Request, false).filter(|(_, m)| {
        matches!(
            m.status,
            MedicationStatus::Stopped | MedicationStatus::Completed
        )
    });
    let stopped_statement =
        newest(MedicationSource::Statement, true).filter(|(date, _)| d_last.date <= *date);
    course.explicitly_stopped = [stopped_request, stopped_statement]
        .into_iter()
        .flatten()
        .map(|(_, m)| m.source.clone())
        .min();

    // Transition (§5.2): first bisphosphonate given/started after D_last, on or before as_of.
    // A completed, dated dispense of an oral bisphosphonate is the start of that oral course
    // (the patient has the tablets); a dispensed zoledronate is not a dose (§4.3: only an
    // administration documents an infusion).
    let dispensed = input
        .record
        .dispenses
        .iter()
        .filter(|d| d.status == DispenseStatus::Completed)
        .filter_map(|d| {
            let agent = super::therapy::dispensed_oral_bisphosphonates(d).next()?;
            Some((d.date()?, agent, &d.source))
        });
    course.transition = meds
        .iter()
        .filter_map(|m| {
            let agent = m
                .ingredients
                .iter()
                .copied()
                .find(|i| i.is_bisphosphonate())?;
            Some((bisphosphonate_start(m, agent)?, agent, &m.source))
        })
        .chain(dispensed)
        .filter(|(date, _, _)| *date > d_last.date && *date <= as_of)
        .map(|(date, agent, source)| Transition {
            date,
            agent,
            source: source.clone(),
        })
        .min_by(|a, b| (a.date, &a.source).cmp(&(b.date, &b.source)));

    // Z (§5.2 v0.10): the latest documented zoledronate dose after D_last.
    course.zoledronate_after = meds
        .iter()
        .filter(|m| m.has(Ingredient::ZoledronicAcid) && m.kind != MedicationSource::Request)
        .filter_map(|m| {
            let date = bisphosphonate_start(m, Ingredient::ZoledronicAcid)?;
            (date > d_last.date && date <= as_of).then(|| Dose {
                date,
                source: m.source.clone(),
                tier: m.kind,
            })
        })
        .max_by(|a, b| (a.date, &a.source).cmp(&(b.date, &b.source)));

    // An active denosumab order with an explicit occurrence that no documented dose fulfils yet:
    // the next occurrence on/after as_of, else the latest one before it.
    let documented: Vec<NaiveDate> = schedule
        .iter()
        .filter(|m| m.kind != MedicationSource::Request && documents_given(m))
        .filter_map(|m| dose_date(m))
        .collect();
    // Every explicit occurrence of the order counts (an order with a past and a coming event is
    // due by the coming one, §8 "an explicit occurrence within the next 28 days"; found by the
    // oradm2 differential, the reader kept only the earliest event).
    let mut occurrences: Vec<(NaiveDate, SourceRef)> = schedule
        .iter()
        .filter(|m| m.kind == MedicationSource::Request && m.status == MedicationStatus::Active)
        .filter(|m| {
            let ordered = m
                .authored
                .or(m.visible)
                .or(m.planned_date())
                .unwrap_or(as_of);
            !documented.iter().any(|d| *d >= ordered && *d <= as_of)
        })
        .flat_map(|m| m.planned_dates.iter().map(|p| (*p, m.source.clone())))
        .collect();
    occurrences.sort();
    course.ordered_occurrence = occurrences
        .iter()
        .find(|(d, _)| *d >= as_of)
        .or(occurrences.last())
        .cloned();
    course
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MedicationStatus::*, PatientRecord, Period, Sex};
    use crate::testkit::{d, RecordBuilder};
    use crate::thresholds::Thresholds;

    fn course(r: &PatientRecord, as_of: &str) -> DenosumabCourse {
        let t = Thresholds::default();
        let as_of = d(as_of);
        let visible = crate::engine::visible_at(r, as_of);
        compute(&Input {
            record: &visible,
            as_of,
            t: &t,
            age: Some(73),
        })
    }

    fn patient() -> RecordBuilder {
        RecordBuilder::new("1950-03-15", Sex::Female)
    }

    fn dates(c: &DenosumabCourse) -> Vec<String> {
        c.doses.iter().map(|d| d.date.to_string()).collect()
    }

    #[test]
    fn distinct_doses_are_60_days_apart() {
        let r = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-01-01",
                60.0,
                Route::Subcutaneous,
            )
            // 59 days later: the same administration documented twice.
            .administration(
                Ingredient::Denosumab,
                "2022-03-01",
                60.0,
                Route::Subcutaneous,
            )
            // 60 days after the first: a distinct dose.
            .administration(
                Ingredient::Denosumab,
                "2022-03-02",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        let c = course(&r, "2022-06-01");
        assert_eq!(dates(&c), vec!["2022-01-01", "2022-03-02"]);
        assert_eq!(c.dose_count, 2);
        assert_eq!(c.d_last.as_ref().map(|d| d.date), Some(d("2022-03-02")));
    }

    #[test]
    fn highest_tier_only_never_merged() {
        let r = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-01-01",
                60.0,
                Route::Subcutaneous,
            )
            // An ongoing order authored later is not an extra dose.
            .order(Ingredient::Denosumab, Active, "2022-09-01")
            .build();
        let c = course(&r, "2022-10-01");
        assert_eq!(dates(&c), vec!["2022-01-01"]);
        assert!(!c.uncertain_dates);

        let r = patient()
            .order(Ingredient::Denosumab, Completed, "2022-01-01")
            .order(Ingredient::Denosumab, Active, "2022-07-01")
            .build();
        let c = course(&r, "2022-10-01");
        assert_eq!(dates(&c), vec!["2022-01-01", "2022-07-01"]);
        assert!(c.uncertain_dates);
    }

    #[test]
    fn statement_dose_needs_an_effective_date_time() {
        let r = patient()
            .statement(
                Ingredient::Denosumab,
                Completed,
                "2022-01-01",
                Some("2022-01-01"),
            )
            .statement(Ingredient::Denosumab, Active, "2021-01-01", None)
            .build();
        let c = course(&r, "2022-10-01");
        assert_eq!(dates(&c), vec!["2022-01-01"]);
        assert_eq!(c.undated.len(), 1);
    }

    #[test]
    fn undated_records_and_oncology_records() {
        let mut r = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-01-01",
                60.0,
                Route::Subcutaneous,
            )
            .administration(
                Ingredient::Denosumab,
                "2022-07-01",
                120.0,
                Route::Subcutaneous,
            )
            .build();
        r.medications[0].effective = None;
        let c = course(&r, "2022-10-01");
        assert_eq!(c.dose_count, 0);
        assert_eq!(c.undated.len(), 1);
        assert_eq!(c.oncology_records.len(), 1);

        let mut r = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-07-01",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        r.medications[0].display = "XGEVA 120 MG/1.7ML".into();
        r.medications[0].administered_mg = None;
        assert_eq!(course(&r, "2022-10-01").oncology_records.len(), 1);
    }

    /// A patient whose last denosumab dose (`D_last`) was given on 2022-10-27 (the seed case).
    fn base() -> RecordBuilder {
        patient().administration(
            Ingredient::Denosumab,
            "2022-10-27",
            60.0,
            Route::Subcutaneous,
        )
    }

    #[test]
    fn transition_counts_bisphosphonates_given_after_d_last_only() {
        // On D_last itself: not after.
        let r = base()
            .administration(
                Ingredient::ZoledronicAcid,
                "2022-10-27",
                5.0,
                Route::Intravenous,
            )
            .build();
        assert!(course(&r, "2023-09-28").transition.is_none());
        // Zoledronate order only: a plan, not a transition.
        let r = base()
            .order(Ingredient::ZoledronicAcid, Active, "2023-05-01")
            .build();
        assert!(course(&r, "2023-09-28").transition.is_none());
        // Teriparatide is not a transition.
        let r = base()
            .daily_order(
                Ingredient::Teriparatide,
                Active,
                "2023-05-01",
                None,
                Some(0.02),
                Some(1.0),
                Route::Subcutaneous,
            )
            .build();
        assert!(course(&r, "2023-09-28").transition.is_none());
        // Oral alendronate prescription started after D_last: transition.
        let r = base()
            .daily_order(
                Ingredient::Alendronate,
                Active,
                "2023-05-01",
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        let c = course(&r, "2023-09-28");
        assert_eq!(
            c.transition.as_ref().map(|t| t.agent),
            Some(Ingredient::Alendronate)
        );
        assert!(c.zoledronate_after.is_none());
        // Two zoledronate infusions: transition = first, Z = latest.
        let r = base()
            .administration(
                Ingredient::ZoledronicAcid,
                "2023-05-01",
                5.0,
                Route::Intravenous,
            )
            .administration(
                Ingredient::ZoledronicAcid,
                "2023-08-31",
                5.0,
                Route::Intravenous,
            )
            .build();
        let c = course(&r, "2023-09-28");
        assert_eq!(c.transition.as_ref().map(|t| t.date), Some(d("2023-05-01")));
        assert_eq!(
            c.zoledronate_after.as_ref().map(|z| z.date),
            Some(d("2023-08-31"))
        );
        // Not yet visible before it happens.
        assert!(course(&r, "2023-04-30").transition.is_none());
    }

    #[test]
    fn oral_bisphosphonate_dispensed_after_d_last_is_the_transition() {
        // §5.2 "administered/started after D_last": alendronate handed over on 2023-05-02.
        let r = base()
            .dispense(
                Ingredient::Alendronate,
                DispenseStatus::Completed,
                Some("2023-05-02"),
                Some(84),
            )
            .build();
        let c = course(&r, "2023-09-28");
        let t = c.transition.as_ref().expect("transition from the dispense");
        assert_eq!(
            (t.agent, t.date, t.source.as_str()),
            (
                Ingredient::Alendronate,
                d("2023-05-02"),
                r.dispenses[0].source.as_str()
            )
        );
        // Before the hand-over it is not yet a transition.
        assert!(course(&r, "2023-05-01").transition.is_none());
        // Dispensed on D_last, not completed, undated, or a zoledronate (not an infusion): none.
        for r in [
            base()
                .dispense(
                    Ingredient::Alendronate,
                    DispenseStatus::Completed,
                    Some("2022-10-27"),
                    Some(84),
                )
                .build(),
            base()
                .dispense(
                    Ingredient::Alendronate,
                    DispenseStatus::Cancelled,
                    Some("2023-05-02"),
                    Some(84),
                )
                .build(),
            base()
                .dispense(
                    Ingredient::Alendronate,
                    DispenseStatus::Completed,
                    None,
                    Some(84),
                )
                .build(),
            base()
                .dispense(
                    Ingredient::ZoledronicAcid,
                    DispenseStatus::Completed,
                    Some("2023-05-02"),
                    Some(1),
                )
                .build(),
        ] {
            assert!(
                course(&r, "2023-09-28").transition.is_none(),
                "{:?}",
                r.dispenses
            );
        }
    }

    #[test]
    fn explicit_stop_and_restart() {
        let r = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .order(Ingredient::Denosumab, Stopped, "2022-11-01")
            .build();
        assert!(course(&r, "2023-05-01").explicitly_stopped.is_some());
        // A newer active order supersedes the stop.
        let r = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .order(Ingredient::Denosumab, Stopped, "2022-11-01")
            .order(Ingredient::Denosumab, Active, "2023-01-01")
            .build();
        assert!(course(&r, "2023-05-01").explicitly_stopped.is_none());
        // A stopped statement.
        let r = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .statement(
                Ingredient::Denosumab,
                Stopped,
                "2020-01-01",
                Some("2022-12-01"),
            )
            .build();
        assert!(course(&r, "2023-05-01").explicitly_stopped.is_some());
    }

    /// §9 (b): "MedicationStatement status = stopped" carries no "no newer" clause. A newer
    /// completed statement in a tier the schedule does not use (administrations are documented)
    /// is no dose (§5.1) and must not cancel the stop; a dose in the used tier after the stop is
    /// a restart and does.
    #[test]
    fn a_newer_statement_of_a_lower_tier_does_not_cancel_a_stop() {
        let stop_then_lower_tier = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-10-08",
                60.0,
                Route::Subcutaneous,
            )
            .statement(
                Ingredient::Denosumab,
                Stopped,
                "2022-03-22",
                Some("2022-10-08"),
            )
            .statement(
                Ingredient::Denosumab,
                Completed,
                "2023-04-25",
                Some("2023-04-25"),
            )
            .build();
        let c = course(&stop_then_lower_tier, "2023-05-05");
        assert_eq!(
            c.d_last.as_ref().map(|d| d.date.to_string()),
            Some("2022-10-08".to_string())
        );
        assert!(c.explicitly_stopped.is_some());
        // A documented administration after the stop is a restart.
        let restarted = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-10-08",
                60.0,
                Route::Subcutaneous,
            )
            .statement(
                Ingredient::Denosumab,
                Stopped,
                "2022-03-22",
                Some("2022-06-01"),
            )
            .build();
        assert!(course(&restarted, "2023-05-05")
            .explicitly_stopped
            .is_none());
    }

    /// v0.10.3 clause (b): the newest denosumab order counts whenever it was authored — a
    /// standing order written before the first dose and later set to stopped.
    #[test]
    fn stopped_standing_order_authored_before_the_doses_counts() {
        let b = || {
            patient()
                .order(Ingredient::Denosumab, Stopped, "2021-10-01")
                .administration(
                    Ingredient::Denosumab,
                    "2021-10-27",
                    60.0,
                    Route::Subcutaneous,
                )
                .administration(
                    Ingredient::Denosumab,
                    "2022-04-27",
                    60.0,
                    Route::Subcutaneous,
                )
        };
        let c = course(&b().build(), "2022-11-01");
        assert_eq!(
            c.explicitly_stopped,
            Some(SourceRef::new("MedicationRequest/t1"))
        );
        // The same order still active: no explicit stop.
        let r = patient()
            .order(Ingredient::Denosumab, Active, "2021-10-01")
            .administration(
                Ingredient::Denosumab,
                "2021-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        assert!(course(&r, "2022-11-01").explicitly_stopped.is_none());
    }

    /// §4 (issue 15): the administration date is one method — effective start, else end —
    /// and the dose dates use it (an administration recorded with only an end date counts).
    #[test]
    fn administration_date_is_start_else_end() {
        let mut r = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        assert_eq!(
            r.medications[0].administration_date(),
            Some(d("2022-10-27"))
        );
        r.medications[0].effective = Some(Period {
            start: None,
            end: Some(d("2022-10-28")),
        });
        assert_eq!(
            r.medications[0].administration_date(),
            Some(d("2022-10-28"))
        );
        assert_eq!(dates(&course(&r, "2023-01-01")), ["2022-10-28"]);
        r.medications[0].effective = Some(Period::between(d("2022-10-20"), d("2022-10-28")));
        assert_eq!(
            r.medications[0].administration_date(),
            Some(d("2022-10-20"))
        );
    }

    #[test]
    fn ordered_occurrence_is_the_next_unfulfilled_one() {
        let mut r = patient()
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .order(Ingredient::Denosumab, Active, "2023-03-01")
            .build();
        r.medications[1].planned_dates = vec![d("2023-04-27")];
        let c = course(&r, "2023-04-10");
        assert_eq!(
            c.ordered_occurrence.as_ref().map(|o| o.0),
            Some(d("2023-04-27"))
        );
        // Fulfilled by an administration after the order.
        let mut r = r.clone();
        r.medications.push(MedicationRecord {
            effective: Some(Period::day(d("2023-04-27"))),
            visible: Some(d("2023-04-27")),
            ..r.medications[0].clone()
        });
        r.medications[2].source = SourceRef::new("MedicationAdministration/x");
        assert!(course(&r, "2023-05-01").ordered_occurrence.is_none());
    }
}

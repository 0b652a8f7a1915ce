//! Active and planned osteoporosis pharmacotherapy, supplements — knowledge.md §4.3 and §8
//! ("planned").
//!
//! Active on a date `D` (§4.3):
//! * denosumab: a scheduled dose (from [`DenosumabCourse`]) at most `dmab_grace_end_days` (§4.3: 6 months + 4-week grace, the same day denosumab becomes overdue) before `D`;
//! * zoledronic acid: a documented dose at most `zoledronate_active_days` before `D`;
//! * IV ibandronate: a documented dose at most `ibandronate_iv_active_days` before `D`;
//! * oral bisphosphonates: an order/statement whose active interval (§1.6) covers `D`, or last
//!   fill + days' supply + `oral_fill_grace_days` ≥ `D` — the fill being a completed
//!   MedicationDispense (dated `whenHandedOver`, else `whenPrepared`, with its `daysSupply`) or an
//!   order's `dispenseRequest.expectedSupplyDuration`. A recent completed oral-bisphosphonate
//!   dispense whose days' supply is not recorded, or whose status is unknown, makes `active`
//!   UNKNOWN rather than FALSE or TRUE (unknown is not "no"; the finding still fires, asking to
//!   confirm therapy): "recent" = within the §1.6 one-dispense span
//!   (`stopped_order_default_days`) + `oral_fill_grace_days`. Ibandronate dispensed counts as the
//!   oral form (the IV form is given in clinic and documented as an administration);
//! * teriparatide, abaloparatide, romosozumab, raloxifene: an order/statement covering `D`.
//!
//! A documented dose is a completed MedicationAdministration, a MedicationStatement
//! (active/completed/stopped) dated by its effective start, or a *completed* MedicationRequest dated
//! by authoredOn. An `active` or `draft` order of an infused agent without an administration is a
//! plan (§8), never active therapy. A MedicationRequest/MedicationStatement with status `unknown`
//! for an osteoporosis agent makes `active` UNKNOWN (unless another agent is active).

use chrono::NaiveDate;
use serde::Serialize;

use super::denosumab::DenosumabCourse;
use super::gc::{active_interval, ActiveInterval};
use super::Input;
use crate::model::{
    add_days, days, DispenseStatus, Ingredient, MedicationDispense, MedicationRecord,
    MedicationSource, MedicationStatus, Route, SourceRef,
};
use crate::thresholds::Thresholds;
use crate::tri::Tri;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentUse {
    pub agent: Ingredient,
    pub source: SourceRef,
    /// Date of the dose or start that makes it active/planned.
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct TherapyFacts {
    /// Active osteoporosis pharmacotherapy on `as_of` (§4.3): TRUE with evidence, FALSE, or
    /// UNKNOWN (e.g. a MedicationStatement with status unknown).
    pub active: Tri,
    pub active_agents: Vec<AgentUse>,
    /// An active agent other than an oral bisphosphonate (for `anabolic-therapy-preferred`).
    pub active_non_oral_bp: bool,
    /// Records whose status is `unknown` (the reason `active` is UNKNOWN).
    pub unknown_status: Vec<SourceRef>,
    /// Recent oral-bisphosphonate dispenses whose days' supply is not recorded (or that carry no
    /// date): whether the fill still covers `as_of` cannot be told, so `active` is UNKNOWN.
    pub unknown_fill_span: Vec<SourceRef>,
    /// Planned orders (§8: status draft/active, authored within 90 days, not fulfilled, not
    /// what makes the agent active).
    pub planned: Vec<AgentUse>,
    /// Unfulfilled orders older than the planned window (reported in dataQuality).
    pub stale_orders: Vec<AgentUse>,
    /// Calcium supplement active on `as_of` (§9 gc-bone-protection).
    pub calcium_active: bool,
    /// Vitamin D supplement active on `as_of`.
    pub vitamin_d_active: bool,
    /// Cumulative teriparatide/abaloparatide days (completed anabolic course ≥ 730).
    pub anabolic_days: i64,
    /// A denosumab administration within the last 730 days.
    pub denosumab_within_lookback: bool,
    /// The scheduled denosumab doses (copied from the course facts) so that activity can be
    /// evaluated at an earlier date ([`active_agents_on`]).
    pub denosumab_doses: Vec<(NaiveDate, SourceRef)>,
}

impl TherapyFacts {
    pub fn is_active(&self, agent: Ingredient) -> bool {
        self.active_agents.iter().any(|a| a.agent == agent)
    }
    pub fn is_planned(&self, agent: Ingredient) -> bool {
        self.planned.iter().any(|a| a.agent == agent)
    }
}

/// Route of a medication record: the first dosage line that names one, else the record's.
pub(crate) fn route_of(m: &MedicationRecord) -> Route {
    m.dosages
        .iter()
        .map(|l| l.route)
        .find(|r| *r != Route::Unknown)
        .unwrap_or(m.route)
}

fn is_oral_bisphosphonate(agent: Ingredient, m: &MedicationRecord) -> bool {
    match agent {
        Ingredient::Alendronate | Ingredient::Risedronate => true,
        Ingredient::Ibandronate => !is_iv_ibandronate(m),
        _ => false,
    }
}

/// An administration of ibandronate is taken as the IV (3-monthly) form unless its route is oral.
fn is_iv_ibandronate(m: &MedicationRecord) -> bool {
    let route = route_of(m);
    route == Route::Intravenous
        || (m.kind == MedicationSource::Administration && route != Route::Oral)
}

/// Status filter for "this record documents current use" (status unknown handled apart).
fn documents_use(m: &MedicationRecord) -> bool {
    use MedicationStatus::*;
    match m.kind {
        MedicationSource::Request => matches!(m.status, Active | Completed | OnHold | Stopped),
        MedicationSource::Statement => matches!(m.status, Active | Completed | OnHold | Stopped),
        MedicationSource::Administration => m.status == Completed,
    }
}

/// The date of a documented dose of an infused agent, or `None`.
fn documented_dose_date(m: &MedicationRecord) -> Option<NaiveDate> {
    use MedicationStatus::*;
    match m.kind {
        MedicationSource::Administration if m.status == Completed => m.administration_date(),
        MedicationSource::Statement if matches!(m.status, Active | Completed | Stopped) => {
            m.administration_date()
        }
        MedicationSource::Request if m.status == Completed => m.authored,
        _ => None,
    }
}

/// Active interval of a Request/Statement over all its dosage lines.
fn record_interval(m: &MedicationRecord, t: &Thresholds) -> Option<ActiveInterval> {
    if m.dosages.is_empty() {
        return active_interval(m, None, t);
    }
    let mut out: Option<ActiveInterval> = None;
    for l in &m.dosages {
        if let Some(iv) = active_interval(m, Some(l), t) {
            out = Some(match out {
                None => iv,
                Some(o) => ActiveInterval {
                    start: o.start.min(iv.start),
                    end: match (o.end, iv.end) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    },
                    default_end: o.default_end || iv.default_end,
                },
            });
        }
    }
    out.or_else(|| active_interval(m, None, t))
}

/// Whether an order/statement covers `date` (`date` ≤ `as_of`).
fn covers(m: &MedicationRecord, date: NaiveDate, t: &Thresholds, fill_grace: bool) -> bool {
    if m.kind == MedicationSource::Administration || !documents_use(m) {
        return false;
    }
    let Some(iv) = record_interval(m, t) else {
        return false;
    };
    if iv.covers(date) {
        return true;
    }
    // Last fill + days' supply + grace (§4.3, oral bisphosphonates).
    fill_grace
        && m.expected_supply_days
            .is_some_and(|supply| within_fill(iv.start, supply, date, t))
}

/// Whether a fill on `filled` with `supply` days' supply still covers `date`: last fill + days'
/// supply + `oral_fill_grace_days` ≥ `date` (§4.3, oral bisphosphonates).
fn within_fill(filled: NaiveDate, supply: i64, date: NaiveDate, t: &Thresholds) -> bool {
    filled <= date && days(filled, date) <= supply.max(1) - 1 + t.oral_fill_grace_days
}

/// The oral-bisphosphonate agents of a dispense (§4.3 fill rule, §5.2 transition).
pub(crate) fn dispensed_oral_bisphosphonates(
    d: &MedicationDispense,
) -> impl Iterator<Item = Ingredient> + '_ {
    d.ingredients.iter().copied().filter(|i| {
        matches!(
            i,
            Ingredient::Alendronate | Ingredient::Risedronate | Ingredient::Ibandronate
        )
    })
}

/// Whether a dispense's fill (date + days' supply + grace, §4.3) covers `date`; `None` when the
/// fill date or the days' supply is not known.
fn fill_covers(d: &MedicationDispense, date: NaiveDate, t: &Thresholds) -> Option<bool> {
    let filled = d.date()?;
    let supply = d.days_supply?;
    Some(within_fill(filled, supply, date, t))
}

/// What makes one agent active on `date`: `(agent, source, date, oral bisphosphonate?)`.
fn active_on(
    input: &Input<'_>,
    dmab_doses: &[(NaiveDate, SourceRef)],
    date: NaiveDate,
) -> Vec<(AgentUse, bool)> {
    let t = input.t;
    let mut out: Vec<(AgentUse, bool)> = Vec::new();
    // Denosumab: from the dose schedule facts (§5.1), the latest dose.
    let dmab_dose = dmab_doses
        .iter()
        .filter(|(d, _)| *d <= date && days(*d, date) <= t.dmab_grace_end_days)
        .max_by_key(|(d, _)| *d);
    if let Some((d, source)) = dmab_dose {
        out.push((
            AgentUse {
                agent: Ingredient::Denosumab,
                source: source.clone(),
                date: Some(*d),
            },
            false,
        ));
    }
    for m in &input.record.medications {
        for &agent in m.ingredients.iter().filter(|i| i.is_osteoporosis_agent()) {
            let hit = match agent {
                Ingredient::Denosumab => None,
                Ingredient::ZoledronicAcid => documented_dose_date(m)
                    .filter(|d| *d <= date && days(*d, date) <= t.zoledronate_active_days)
                    .map(|d| (Some(d), false)),
                Ingredient::Ibandronate if is_iv_ibandronate(m) => documented_dose_date(m)
                    .filter(|d| *d <= date && days(*d, date) <= t.ibandronate_iv_active_days)
                    .map(|d| (Some(d), false)),
                Ingredient::Alendronate | Ingredient::Risedronate | Ingredient::Ibandronate => {
                    covers(m, date, t, true)
                        .then(|| (record_interval(m, t).map(|iv| iv.start), true))
                }
                _ => covers(m, date, t, false)
                    .then(|| (record_interval(m, t).map(|iv| iv.start), false)),
            };
            if let Some((d, oral)) = hit {
                out.push((
                    AgentUse {
                        agent,
                        source: m.source.clone(),
                        date: d,
                    },
                    oral && is_oral_bisphosphonate(agent, m),
                ));
            }
        }
    }
    // Last fill + days' supply + grace (§4.3): completed dispenses of an oral bisphosphonate.
    for disp in input
        .record
        .dispenses
        .iter()
        .filter(|d| d.status == DispenseStatus::Completed)
    {
        if fill_covers(disp, date, t) == Some(true) {
            for agent in dispensed_oral_bisphosphonates(disp) {
                out.push((
                    AgentUse {
                        agent,
                        source: disp.source.clone(),
                        date: disp.date(),
                    },
                    true,
                ));
            }
        }
    }
    out
}

/// The osteoporosis agents active on `date` (≤ `as_of`), e.g. at the date of a FRAX (§3.4).
pub fn active_agents_on(
    input: &Input<'_>,
    therapy: &TherapyFacts,
    date: NaiveDate,
) -> Vec<AgentUse> {
    active_on(input, &therapy.denosumab_doses, date)
        .into_iter()
        .map(|(a, _)| a)
        .collect()
}

/// Supplement active on `as_of`: an order/statement covering it, or an administration that day.
fn supplement_active(input: &Input<'_>, pred: impl Fn(&MedicationRecord) -> bool) -> bool {
    input
        .record
        .medications
        .iter()
        .filter(|m| pred(m))
        .any(|m| {
            if m.kind == MedicationSource::Administration {
                m.status == MedicationStatus::Completed
                    && m.effective.and_then(|p| p.start) == Some(input.as_of)
            } else {
                covers(m, input.as_of, input.t, false)
            }
        })
}

pub fn compute(input: &Input<'_>, dmab: &DenosumabCourse) -> TherapyFacts {
    let t = input.t;
    let as_of = input.as_of;
    let meds = &input.record.medications;
    let mut f = TherapyFacts::default();

    let mut dmab_doses: Vec<(NaiveDate, SourceRef)> = dmab
        .doses
        .iter()
        .chain(dmab.d_last.iter())
        .map(|d| (d.date, d.source.clone()))
        .collect();
    dmab_doses.sort();
    dmab_doses.dedup();
    f.denosumab_doses = dmab_doses;
    let active = active_on(input, &f.denosumab_doses, as_of);
    f.active_non_oral_bp = active.iter().any(|(_, oral)| !oral);
    f.active_agents = active.into_iter().map(|(a, _)| a).collect();
    f.active_agents
        .sort_by(|a, b| (a.agent, &a.source).cmp(&(b.agent, &b.source)));
    f.active_agents.dedup();

    // Status unknown → therapy UNKNOWN (§4.3), when the record may concern `as_of`.
    f.unknown_status = meds
        .iter()
        .filter(|m| {
            m.status == MedicationStatus::Unknown
                && m.kind != MedicationSource::Administration
                && m.ingredients.iter().any(|i| i.is_osteoporosis_agent())
                && record_interval(m, t).is_none_or(|iv| iv.start <= as_of)
        })
        .map(|m| m.source.clone())
        .collect();
    // Oral-bisphosphonate dispenses whose cover of as_of cannot be told (§4.3; unknown is not
    // "no"): completed but undated or without days' supply, or of unknown status, within the
    // one-dispense span + grace (or undated).
    let recent_fill = |d: &MedicationDispense| {
        d.date().is_none_or(|filled| {
            within_fill(
                filled,
                d.days_supply.unwrap_or(t.stopped_order_default_days),
                as_of,
                t,
            )
        })
    };
    for disp in input
        .record
        .dispenses
        .iter()
        .filter(|d| dispensed_oral_bisphosphonates(d).next().is_some())
    {
        match disp.status {
            DispenseStatus::Completed
                if fill_covers(disp, as_of, t).is_none() && recent_fill(disp) =>
            {
                f.unknown_fill_span.push(disp.source.clone())
            }
            DispenseStatus::Unknown if recent_fill(disp) => {
                f.unknown_status.push(disp.source.clone())
            }
            _ => {}
        }
    }
    f.active = if !f.active_agents.is_empty() {
        Tri::True
    } else if !f.unknown_status.is_empty() || !f.unknown_fill_span.is_empty() {
        Tri::Unknown
    } else {
        Tri::False
    };

    // Planned and stale orders (§8 "Planned", v0.10.1/v0.10.2).
    let active_sources: Vec<&SourceRef> = f.active_agents.iter().map(|a| &a.source).collect();
    for m in meds {
        if m.kind != MedicationSource::Request
            || !matches!(m.status, MedicationStatus::Draft | MedicationStatus::Active)
            || active_sources.contains(&&m.source)
        {
            continue;
        }
        let Some(authored) = m.authored.or(m.visible) else {
            continue;
        };
        if authored > as_of {
            continue;
        }
        // An oncology denosumab dose (Xgeva 120 mg) does not fulfil an osteoporosis (60 mg)
        // order, nor the reverse: §5.1 sets the oncology product apart from the schedule, so
        // counting it would silence the §8 checks of a 60 mg dose still to be given (found by
        // the oradm differential).
        let oncology_order = crate::facts::denosumab::is_oncology_denosumab(m, t);
        for &agent in m.ingredients.iter().filter(|i| i.is_osteoporosis_agent()) {
            let fulfilled = meds.iter().any(|a| {
                a.kind == MedicationSource::Administration
                    && a.status == MedicationStatus::Completed
                    && a.has(agent)
                    && (agent != Ingredient::Denosumab
                        || crate::facts::denosumab::is_oncology_denosumab(a, t) == oncology_order)
                    && a.effective
                        .and_then(|p| p.start.or(p.end))
                        .is_some_and(|d| d >= authored)
            });
            if fulfilled {
                continue;
            }
            let use_ = AgentUse {
                agent,
                source: m.source.clone(),
                date: m.planned_date().or(Some(authored)),
            };
            if days(authored, as_of) <= t.planned_order_window_days {
                f.planned.push(use_);
            } else {
                f.stale_orders.push(use_);
            }
        }
    }

    // Supplements (§9 gc-bone-protection; §10.1: combinations satisfy both; calcitriol and
    // alfacalcidol count as vitamin D here).
    f.calcium_active = supplement_active(input, |m| m.has(Ingredient::Calcium));
    f.vitamin_d_active =
        supplement_active(input, |m| m.ingredients.iter().any(|i| i.is_vitamin_d()));

    // Cumulative anabolic (teriparatide/abaloparatide) days up to as_of: union of intervals.
    let mut spans: Vec<(NaiveDate, NaiveDate)> = meds
        .iter()
        .filter(|m| {
            m.kind != MedicationSource::Administration
                && documents_use(m)
                && m.ingredients.iter().any(|i| i.is_anabolic())
        })
        .filter_map(|m| record_interval(m, t))
        .filter(|iv| iv.start <= as_of)
        .map(|iv| (iv.start, iv.last_day(as_of)))
        .collect();
    spans.sort();
    let mut total = 0i64;
    let mut current: Option<(NaiveDate, NaiveDate)> = None;
    for (s, e) in spans {
        current = match current {
            Some((cs, ce)) if s <= add_days(ce, 1) => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += days(cs, ce) + 1;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += days(cs, ce) + 1;
    }
    f.anabolic_days = total;

    // Any denosumab dose within the anabolic look-back (schedule doses, and any completed
    // administration, oncology included: switching to an anabolic after denosumab is the harm).
    let lookback = t.anabolic_dmab_lookback_days;
    let recent = |d: NaiveDate| d <= as_of && days(d, as_of) <= lookback;
    f.denosumab_within_lookback = f.denosumab_doses.iter().any(|(d, _)| recent(*d))
        || meds.iter().any(|m| {
            m.kind == MedicationSource::Administration
                && m.status == MedicationStatus::Completed
                && m.has(Ingredient::Denosumab)
                && m.effective
                    .and_then(|p| p.start.or(p.end))
                    .is_some_and(recent)
        });
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::denosumab::Dose;
    use crate::model::{MedicationStatus::*, PatientRecord, Sex};
    use crate::testkit::{d, RecordBuilder};
    use crate::thresholds::Thresholds;

    fn facts(record: &PatientRecord, as_of: &str, dmab: &DenosumabCourse) -> TherapyFacts {
        let visible = crate::engine::visible_at(record, d(as_of));
        let t = Thresholds::default();
        let input = Input {
            record: &visible,
            as_of: d(as_of),
            t: &t,
            age: Some(70),
        };
        compute(&input, dmab)
    }

    fn course(dates: &[&str]) -> DenosumabCourse {
        let doses: Vec<Dose> = dates
            .iter()
            .enumerate()
            .map(|(i, s)| Dose {
                date: d(s),
                source: SourceRef::new(format!("MedicationAdministration/dmab-{i}")),
                tier: MedicationSource::Administration,
            })
            .collect();
        DenosumabCourse {
            d_last: doses.last().cloned(),
            dose_count: doses.len(),
            doses,
            ..DenosumabCourse::default()
        }
    }

    #[test]
    fn denosumab_active_for_210_days() {
        let r = RecordBuilder::new("1950-01-01", Sex::Female).build();
        let c = course(&["2022-10-27"]);
        // 210 days after 2022-10-27 = 2023-05-25.
        assert_eq!(facts(&r, "2023-05-25", &c).active, Tri::True);
        assert!(facts(&r, "2023-05-25", &c).is_active(Ingredient::Denosumab));
        assert_eq!(facts(&r, "2023-05-26", &c).active, Tri::False);
        assert!(facts(&r, "2023-05-26", &c).denosumab_within_lookback);
    }

    #[test]
    fn zoledronate_active_365_days_and_order_is_planned() {
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .administration(
                Ingredient::ZoledronicAcid,
                "2023-08-31",
                5.0,
                Route::Intravenous,
            )
            .build();
        let none = DenosumabCourse::default();
        // 2024 is a leap year: day 365 after 2023-08-31 is 2024-08-30.
        assert!(facts(&r, "2024-08-29", &none).is_active(Ingredient::ZoledronicAcid));
        assert!(facts(&r, "2024-08-30", &none).is_active(Ingredient::ZoledronicAcid));
        assert_eq!(facts(&r, "2024-08-31", &none).active, Tri::False);

        // Example 7: an active zoledronate order without administration is planned, not active.
        let r = RecordBuilder::new("1945-02-02", Sex::Female)
            .order(Ingredient::ZoledronicAcid, Active, "2024-09-01")
            .build();
        let f = facts(&r, "2024-09-20", &none);
        assert_eq!(f.active, Tri::False);
        assert!(f.is_planned(Ingredient::ZoledronicAcid));
        // Authored 90 days ago: still planned; 91 days: stale.
        assert!(facts(&r, "2024-11-30", &none).is_planned(Ingredient::ZoledronicAcid));
        let f = facts(&r, "2024-12-01", &none);
        assert!(!f.is_planned(Ingredient::ZoledronicAcid));
        assert_eq!(f.stale_orders.len(), 1);
    }

    #[test]
    fn fulfilled_order_is_not_planned() {
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .order(Ingredient::ZoledronicAcid, Active, "2024-09-01")
            .administration(
                Ingredient::ZoledronicAcid,
                "2024-09-05",
                5.0,
                Route::Intravenous,
            )
            .build();
        let f = facts(&r, "2024-09-20", &DenosumabCourse::default());
        assert!(f.planned.is_empty());
        assert!(f.is_active(Ingredient::ZoledronicAcid));
    }

    /// §5.1 / §8: an Xgeva 120 mg administration after a denosumab 60 mg order is not the
    /// ordered dose; the order stays planned.
    #[test]
    fn an_oncology_denosumab_dose_does_not_fulfil_a_60_mg_order() {
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .order(Ingredient::Denosumab, Active, "2024-09-01")
            .administration(
                Ingredient::Denosumab,
                "2024-09-05",
                120.0,
                Route::Subcutaneous,
            )
            .build();
        let f = facts(&r, "2024-09-20", &DenosumabCourse::default());
        assert!(f.is_planned(Ingredient::Denosumab));
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .order(Ingredient::Denosumab, Active, "2024-09-01")
            .administration(
                Ingredient::Denosumab,
                "2024-09-05",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        let f = facts(&r, "2024-09-20", &DenosumabCourse::default());
        assert!(!f.is_planned(Ingredient::Denosumab));
    }

    #[test]
    fn oral_bisphosphonate_order_is_active_not_planned() {
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .daily_order(
                Ingredient::Alendronate,
                Active,
                "2024-09-01",
                None,
                Some(70.0),
                Some(1.0 / 7.0),
                Route::Oral,
            )
            .build();
        let f = facts(&r, "2024-09-20", &DenosumabCourse::default());
        assert_eq!(f.active, Tri::True);
        assert!(!f.active_non_oral_bp);
        assert!(f.planned.is_empty());
        // A draft order is a plan.
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .order(Ingredient::Alendronate, Draft, "2024-09-01")
            .build();
        let f = facts(&r, "2024-09-20", &DenosumabCourse::default());
        assert_eq!(f.active, Tri::False);
        assert!(f.is_planned(Ingredient::Alendronate));
    }

    #[test]
    fn oral_fill_plus_supply_plus_grace() {
        let mut r = RecordBuilder::new("1950-01-01", Sex::Female)
            .daily_order(
                Ingredient::Alendronate,
                Stopped,
                "2024-01-01",
                None,
                Some(70.0),
                Some(1.0 / 7.0),
                Route::Oral,
            )
            .build();
        r.medications[0].dosages[0].bounds = None;
        r.medications[0].expected_supply_days = Some(90);
        // Supply covers 2024-01-01..2024-03-30; + 30 days grace → 2024-04-29.
        let none = DenosumabCourse::default();
        assert_eq!(facts(&r, "2024-04-29", &none).active, Tri::True);
        assert_eq!(facts(&r, "2024-04-30", &none).active, Tri::False);
    }

    #[test]
    fn oral_bisphosphonate_dispense_fill_plus_days_supply_plus_grace() {
        // §4.3 "last fill + days supply + 30 days ≥ as_of": alendronate handed over 2024-01-01
        // with 90 days' supply covers 2024-01-01..2024-03-30; + 30 days grace → 2024-04-29.
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .dispense(
                Ingredient::Alendronate,
                DispenseStatus::Completed,
                Some("2024-01-01"),
                Some(90),
            )
            .build();
        let none = DenosumabCourse::default();
        let f = facts(&r, "2024-04-29", &none);
        assert_eq!(f.active, Tri::True);
        assert!(f.is_active(Ingredient::Alendronate));
        assert_eq!(f.active_agents[0].source, r.dispenses[0].source);
        assert!(!f.active_non_oral_bp, "an oral bisphosphonate");
        assert_eq!(facts(&r, "2024-04-30", &none).active, Tri::False);
        // Not yet handed over on as_of: the engine sees no fill.
        assert_eq!(facts(&r, "2023-12-31", &none).active, Tri::False);
    }

    #[test]
    fn dispense_that_is_not_completed_or_not_an_oral_bisphosphonate_is_not_a_fill() {
        let none = DenosumabCourse::default();
        for status in [
            DispenseStatus::Cancelled,
            DispenseStatus::Declined,
            DispenseStatus::EnteredInError,
            DispenseStatus::InProgress,
        ] {
            let r = RecordBuilder::new("1950-01-01", Sex::Female)
                .dispense(
                    Ingredient::Alendronate,
                    status,
                    Some("2024-01-01"),
                    Some(90),
                )
                .build();
            assert_eq!(
                facts(&r, "2024-02-01", &none).active,
                Tri::False,
                "{status:?}"
            );
        }
        // A dispensed zoledronate is not an infusion (§4.3: only documented doses).
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .dispense(
                Ingredient::ZoledronicAcid,
                DispenseStatus::Completed,
                Some("2024-01-01"),
                Some(1),
            )
            .build();
        assert_eq!(facts(&r, "2024-01-02", &none).active, Tri::False);
    }

    #[test]
    fn recent_dispense_without_days_supply_or_status_makes_therapy_unknown_not_no() {
        let none = DenosumabCourse::default();
        // No daysSupply: within the one-dispense span (30 d) + grace (30 d) it is UNKNOWN
        // (2024-01-01 + 59 days = 2024-02-29), after it FALSE.
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .dispense(
                Ingredient::Risedronate,
                DispenseStatus::Completed,
                Some("2024-01-01"),
                None,
            )
            .build();
        let f = facts(&r, "2024-02-29", &none);
        assert_eq!(f.active, Tri::Unknown);
        assert_eq!(f.unknown_fill_span.len(), 1);
        assert_eq!(facts(&r, "2024-03-01", &none).active, Tri::False);
        // Completed but undated: UNKNOWN whatever the as-of.
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .dispense(
                Ingredient::Alendronate,
                DispenseStatus::Completed,
                None,
                Some(30),
            )
            .build();
        assert_eq!(facts(&r, "2030-01-01", &none).active, Tri::Unknown);
        // Status unknown, recent: UNKNOWN, reported as a status unknown.
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .dispense(
                Ingredient::Alendronate,
                DispenseStatus::Unknown,
                Some("2024-01-01"),
                Some(28),
            )
            .build();
        let f = facts(&r, "2024-01-15", &none);
        assert_eq!(f.active, Tri::Unknown);
        assert_eq!(f.unknown_status.len(), 1);
        assert_eq!(facts(&r, "2024-06-01", &none).active, Tri::False);
    }

    #[test]
    fn stopped_statement_is_not_active() {
        // Example 9: alendronate stopped 2022-06-01.
        let r = RecordBuilder::new("1958-11-11", Sex::Female)
            .statement(
                Ingredient::Alendronate,
                Stopped,
                "2020-01-01",
                Some("2022-06-01"),
            )
            .build();
        assert_eq!(
            facts(&r, "2024-10-15", &DenosumabCourse::default()).active,
            Tri::False
        );
    }

    #[test]
    fn unknown_statement_makes_therapy_unknown() {
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .statement(Ingredient::Risedronate, Unknown, "2024-01-01", None)
            .build();
        let f = facts(&r, "2024-06-01", &DenosumabCourse::default());
        assert_eq!(f.active, Tri::Unknown);
        assert_eq!(f.unknown_status.len(), 1);
    }

    #[test]
    fn supplements_combination_and_active_vitamin_d() {
        let mut r = RecordBuilder::new("1962-05-01", Sex::Male)
            .statement(Ingredient::Calcium, Active, "2024-03-01", None)
            .build();
        r.medications[0]
            .ingredients
            .push(Ingredient::Cholecalciferol);
        let f = facts(&r, "2024-09-15", &DenosumabCourse::default());
        assert!(f.calcium_active && f.vitamin_d_active);

        let r = RecordBuilder::new("1962-05-01", Sex::Male)
            .statement(Ingredient::Calcitriol, Active, "2024-03-01", None)
            .build();
        let f = facts(&r, "2024-09-15", &DenosumabCourse::default());
        assert!(!f.calcium_active && f.vitamin_d_active);
    }

    #[test]
    fn anabolic_days_are_a_union() {
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .daily_order(
                Ingredient::Teriparatide,
                Completed,
                "2021-01-01",
                Some("2021-12-31"),
                Some(0.02),
                Some(1.0),
                Route::Subcutaneous,
            )
            .daily_order(
                Ingredient::Teriparatide,
                Completed,
                "2021-12-01",
                Some("2022-12-31"),
                Some(0.02),
                Some(1.0),
                Route::Subcutaneous,
            )
            .build();
        let f = facts(&r, "2024-01-01", &DenosumabCourse::default());
        assert_eq!(f.anabolic_days, 730);
        assert_eq!(f.active, Tri::False);
    }

    #[test]
    fn iv_ibandronate_120_days() {
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .administration(
                Ingredient::Ibandronate,
                "2024-01-01",
                3.0,
                Route::Intravenous,
            )
            .build();
        let none = DenosumabCourse::default();
        let f = facts(&r, "2024-04-30", &none);
        assert!(f.is_active(Ingredient::Ibandronate) && f.active_non_oral_bp);
        assert_eq!(facts(&r, "2024-05-01", &none).active, Tri::False);
    }
}

//! Shared predicates of the §8 safety checks: which antiresorptives are active, planned, due
//! or recommended by the engine itself (knowledge.md §8 "Planned", "Due"), and the renal /
//! calcium readings the checks (and the rules that recommend zoledronate) read.
//!
//! *Clinical safety rule:* never recommend what the record contraindicates. The rules that can
//! recommend zoledronate (`denosumab-discontinuation-without-transition`,
//! `rebound-vertebral-fractures-suspected`, `post-denosumab-ctx-monitoring`) run before
//! `zoledronate-renal-contraindication`, so they call [`zoledronate_renal`] themselves and, when
//! it says contraindicated, phrase their recommendation with [`ZOLEDRONATE_CONTRAINDICATED`].
//!
//! Engine choices:
//! * "Antiresorptive" (vitamin-D check) = bisphosphonates, denosumab and raloxifene.
//! * Cockcroft–Gault applies the female factor 0.85 unless the patient is recorded as male
//!   (sex unknown/other → the lower, conservative CrCl).

use chrono::NaiveDate;
use serde::Serialize;

use crate::engine::{Ctx, Outcome};
use crate::facts::labs::{self, LabValue};
use crate::finding::{Evidence, FindingCode, Fixed, Severity};
use crate::model::{add_days, days, Ingredient, ObservationKind, Sex};

/// The wording a zoledronate-recommending rule uses when zoledronate is renally contraindicated.
pub const ZOLEDRONATE_CONTRAINDICATED: &str = "zoledronate contraindicated by renal function — see zoledronate-renal-contraindication; consider continuing denosumab or oral alternative after renal review";

/// Antiresorptive agents for the §8 vitamin-D check.
pub fn is_antiresorptive(i: Ingredient) -> bool {
    i.is_bisphosphonate() || matches!(i, Ingredient::Denosumab | Ingredient::Raloxifene)
}

/// Cockcroft–Gault sex factor: female unless recorded male (conservative).
pub fn female_factor_applies(ctx: &Ctx<'_>) -> bool {
    ctx.record().patient.sex != Sex::Male
}

// ---------------------------------------------------------------------------------------------
// Zoledronate: planned or recommended
// ---------------------------------------------------------------------------------------------

/// Why zoledronate counts as planned or recommended (§8): the planned orders (from
/// `ctx.therapy.planned`) and the engine's own recommendations. Empty = neither.
pub fn zoledronate_reasons(ctx: &Ctx<'_>, out: &Outcome) -> Vec<Evidence> {
    let mut reasons: Vec<Evidence> = ctx
        .therapy
        .planned
        .iter()
        .filter(|a| a.agent == Ingredient::ZoledronicAcid)
        .map(|a| Evidence::new(&a.source, a.date, "zoledronic acid ordered, not yet given"))
        .collect();
    if out.fired(FindingCode::DenosumabDiscontinuationWithoutTransition) {
        reasons.push(Evidence::derived(
            "zoledronate recommended by denosumab-discontinuation-without-transition",
        ));
    }
    if out.fired(FindingCode::ReboundVertebralFracturesSuspected) && ctx.dmab.transition.is_none() {
        reasons.push(Evidence::derived(
            "zoledronate recommended by rebound-vertebral-fractures-suspected (no transition)",
        ));
    }
    if out
        .get(FindingCode::PostDenosumabCtxMonitoring)
        .is_some_and(|f| f.severity == Severity::High)
    {
        reasons.push(Evidence::derived(
            "repeat zoledronate recommended by post-denosumab-ctx-monitoring (CTX elevated)",
        ));
    }
    reasons
}

/// Zoledronate planned (an order, §8) or recommended now by the engine (discontinuation fires,
/// rebound fires without transition, or CTX monitoring fires at high severity).
pub fn zoledronate_planned_or_recommended(ctx: &Ctx<'_>, out: &Outcome) -> bool {
    !zoledronate_reasons(ctx, out).is_empty()
}

// ---------------------------------------------------------------------------------------------
// Denosumab: due or planned
// ---------------------------------------------------------------------------------------------

/// "Due" by schedule: at least one dose, no transition, `as_of − D_last ≥ DUE_SOON_START`
/// (exactly when `denosumab-due-soon` or `denosumab-overdue` fires).
pub fn denosumab_due_by_schedule(ctx: &Ctx<'_>) -> bool {
    ctx.dmab.dose_count >= 1
        && ctx.dmab.transition.is_none()
        && ctx
            .dmab
            .days_since_last(ctx.as_of())
            .is_some_and(|d| d >= ctx.t().dmab_due_soon_start_days)
}

/// An active denosumab order whose explicit occurrence is within the next
/// `dmab_occurrence_window_days` (today included).
pub fn denosumab_occurrence_soon(ctx: &Ctx<'_>) -> Option<(NaiveDate, Evidence)> {
    let (date, src) = ctx.dmab.ordered_occurrence.as_ref()?;
    let ahead = days(ctx.as_of(), *date);
    (0..=ctx.t().dmab_occurrence_window_days)
        .contains(&ahead)
        .then(|| {
            (
                *date,
                Evidence::new(src, Some(*date), "denosumab occurrence ordered"),
            )
        })
}

/// Why denosumab counts as due or planned (§8). An ongoing order alone mid-interval does not.
pub fn denosumab_reasons(ctx: &Ctx<'_>, out: &Outcome) -> Vec<Evidence> {
    let mut reasons = Vec::new();
    if denosumab_due_by_schedule(ctx)
        || out.fired(FindingCode::DenosumabDueSoon)
        || out.fired(FindingCode::DenosumabOverdue)
    {
        if let Some(d) = &ctx.dmab.d_last {
            reasons.push(Evidence::new(
                &d.source,
                Some(d.date),
                text!(
                    "last denosumab dose; next due {}",
                    add_days(d.date, ctx.t().dmab_due_days)
                ),
            ));
        }
    }
    if let Some((_, e)) = denosumab_occurrence_soon(ctx) {
        reasons.push(e);
    }
    reasons.extend(
        ctx.therapy
            .planned
            .iter()
            .filter(|a| a.agent == Ingredient::Denosumab)
            .map(|a| Evidence::new(&a.source, a.date, "denosumab ordered, not yet given")),
    );
    reasons
}

/// Denosumab due (due-soon or overdue fires, or an ordered occurrence within 28 days) or
/// planned (an order, §8). An ongoing order alone mid-interval does not count.
pub fn denosumab_due_or_planned(ctx: &Ctx<'_>, out: &Outcome) -> bool {
    !denosumab_reasons(ctx, out).is_empty()
}

/// Antiresorptives (per [`is_antiresorptive`]) planned or due, engine recommendations included.
pub fn antiresorptive_planned_or_due(ctx: &Ctx<'_>, out: &Outcome) -> Vec<Evidence> {
    let mut v = zoledronate_reasons(ctx, out);
    v.extend(denosumab_reasons(ctx, out));
    v.extend(
        ctx.therapy
            .planned
            .iter()
            .filter(|a| {
                is_antiresorptive(a.agent)
                    && !matches!(a.agent, Ingredient::ZoledronicAcid | Ingredient::Denosumab)
            })
            .map(|a| {
                Evidence::new(
                    &a.source,
                    a.date,
                    text!("{} ordered, not yet given", a.agent.name()),
                )
            }),
    );
    v
}

/// Antiresorptives active on `as_of` (§4.3), as evidence.
pub fn active_evidence(ctx: &Ctx<'_>, agent: impl Fn(Ingredient) -> bool) -> Vec<Evidence> {
    ctx.therapy
        .active_agents
        .iter()
        .filter(|a| agent(a.agent))
        .map(|a| Evidence::new(&a.source, a.date, text!("{} active", a.agent.name())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Renal function and calcium
// ---------------------------------------------------------------------------------------------

/// Which measure a renal verdict rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenalMeasure {
    /// Cockcroft–Gault creatinine clearance, mL/min.
    CrCl,
    /// eGFR fallback, mL/min/1.73 m².
    Egfr,
}

impl RenalMeasure {
    pub fn label(self) -> &'static str {
        match self {
            RenalMeasure::CrCl => "CrCl",
            RenalMeasure::Egfr => "eGFR",
        }
    }
    pub fn unit(self) -> &'static str {
        match self {
            RenalMeasure::CrCl => "mL/min",
            RenalMeasure::Egfr => "mL/min/1.73 m²",
        }
    }
}

/// A renal value as the §8 checks read it: CrCl when computable, else eGFR.
#[derive(Debug, Clone, PartialEq)]
pub struct RenalReading {
    pub measure: RenalMeasure,
    pub value: f64,
    pub evidence: Vec<Evidence>,
}

impl RenalReading {
    pub fn describe(&self) -> String {
        text!(
            "{} {} {}",
            self.measure.label(),
            Fixed(self.value, 1),
            self.measure.unit()
        )
    }
}

fn lab_evidence(v: &LabValue, what: &str, unit: &str) -> Evidence {
    Evidence::new(&v.source, Some(v.date), text!("{what} {} {unit}", v.value))
}

/// CrCl (Cockcroft–Gault) from creatinine within `fresh_days`, else eGFR within `fresh_days`;
/// `None` when neither is available.
pub fn renal_reading(ctx: &Ctx<'_>, fresh_days: i64) -> Option<RenalReading> {
    let renal = labs::renal(&ctx.input, fresh_days, female_factor_applies(ctx));
    if let Some((crcl, _)) = &renal.crcl {
        let mut evidence = Vec::new();
        if let Some(c) = &renal.creatinine {
            evidence.push(lab_evidence(c, "creatinine", "mg/dL"));
        }
        if let Some(w) = &renal.weight {
            evidence.push(lab_evidence(w, "body weight", "kg"));
        }
        evidence.push(Evidence::derived(text!(
            "Cockcroft–Gault CrCl {} mL/min (age {}, {})",
            Fixed(*crcl, 1),
            ctx.age().map_or("?".to_string(), |a| a.to_string()),
            if female_factor_applies(ctx) {
                "×0.85 female factor"
            } else {
                "male"
            }
        )));
        return Some(RenalReading {
            measure: RenalMeasure::CrCl,
            value: *crcl,
            evidence,
        });
    }
    renal.egfr.map(|e| RenalReading {
        measure: RenalMeasure::Egfr,
        value: e.value,
        evidence: vec![lab_evidence(&e, "eGFR", "mL/min/1.73 m²")],
    })
}

/// The §8 zoledronate renal verdict at `as_of`: `Some(reading)` when a value within
/// `renal_fresh_days` exists; [`RenalReading::value`] below `zoledronate_min_crcl` = contraindicated.
pub fn zoledronate_renal(ctx: &Ctx<'_>) -> Option<RenalReading> {
    renal_reading(ctx, ctx.t().renal_fresh_days)
}

/// Zoledronate renally contraindicated by the available data (CrCl < 35, or eGFR < 35 when CrCl
/// cannot be computed).
pub fn zoledronate_renally_contraindicated(ctx: &Ctx<'_>) -> Option<RenalReading> {
    zoledronate_renal(ctx).filter(|r| r.value < ctx.t().zoledronate_min_crcl)
}

/// The §8 renal verdict for zoledronic acid at `as_of`, as the outputs carry it.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ZoledronateRenal {
    /// A fresh CrCl (else eGFR) at or above the limit.
    Acceptable,
    /// Below the limit: no output may recommend zoledronic acid.
    Contraindicated,
    /// No fresh renal value: zoledronic acid may not be given before renal function is known.
    #[default]
    Unknown,
}

/// [`ZoledronateRenal`] from the fresh renal reading (§8).
pub fn zoledronate_renal_status(ctx: &Ctx<'_>) -> ZoledronateRenal {
    match zoledronate_renal(ctx) {
        None => ZoledronateRenal::Unknown,
        Some(r) if r.value < ctx.t().zoledronate_min_crcl => ZoledronateRenal::Contraindicated,
        Some(_) => ZoledronateRenal::Acceptable,
    }
}

/// A calcium value with its albumin correction (§8).
#[derive(Debug, Clone, PartialEq)]
pub struct CalciumReading {
    pub calcium: LabValue,
    pub albumin: Option<LabValue>,
    pub corrected: f64,
}

impl CalciumReading {
    /// Below the engine threshold or below the lab's reference low.
    pub fn is_low(&self, threshold: f64) -> bool {
        self.corrected < threshold
            || self
                .calcium
                .reference_low
                .is_some_and(|l| self.corrected < l)
    }
}

/// The latest calcium within `renal_fresh_days`, corrected with the albumin closest in date
/// (within `albumin_pair_days` of the calcium); uncorrected when there is none.
pub fn calcium_reading(ctx: &Ctx<'_>) -> Option<CalciumReading> {
    let t = ctx.t();
    let calcium = labs::latest(&ctx.input, ObservationKind::Calcium, t.renal_fresh_days)?;
    let albumin = ctx
        .record()
        .observations
        .iter()
        .filter(|o| o.kind == ObservationKind::Albumin && o.status.is_usable())
        .filter_map(|o| {
            let date = o.date()?;
            let value = o.value?;
            let gap = days(calcium.date, date).abs();
            (gap <= t.albumin_pair_days && date <= ctx.as_of()).then(|| {
                (
                    (gap, std::cmp::Reverse(o.effective)),
                    LabValue {
                        source: o.source.clone(),
                        date,
                        value,
                        reference_low: o.reference_low,
                        reference_high: o.reference_high,
                    },
                )
            })
        })
        .min_by(|a, b| (&a.0, &a.1.source).cmp(&(&b.0, &b.1.source)))
        .map(|(_, v)| v);
    let corrected = labs::corrected_calcium(calcium.value, albumin.as_ref().map(|a| a.value));
    Some(CalciumReading {
        calcium,
        albumin,
        corrected,
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Runs the rule pipeline like [`crate::engine::evaluate`], but lets a test replace facts
    //! owned by other modules (e.g. planned orders, spine fracture events) with hand-built ones.

    use chrono::NaiveDate;

    use crate::config::Config;
    use crate::engine::{sort_findings, visible_at, Ctx, Facts, Outcome};
    use crate::facts::Input;
    use crate::model::PatientRecord;

    pub fn run(
        record: &PatientRecord,
        as_of: NaiveDate,
        adjust: impl FnOnce(&mut Ctx<'_>),
    ) -> Outcome {
        let config = Config::default();
        let visible = visible_at(record, as_of);
        let age = visible
            .patient
            .birth_date
            .map(|b| crate::engine::age_at(b, as_of));
        let input = Input {
            record: &visible,
            as_of,
            t: &config.thresholds,
            age,
        };
        let mut ctx = Ctx {
            facts: Facts::compute(&input),
            input,
            drafts: Vec::new(),
        };
        adjust(&mut ctx);
        let mut out = Outcome::default();
        crate::rules::run_all(&ctx, &mut out);
        sort_findings(&mut out.findings);
        out
    }

    /// Runs with the facts as computed.
    pub fn plain(record: &PatientRecord, as_of: NaiveDate) -> Outcome {
        run(record, as_of, |_| {})
    }

    /// The what-if run of the order hooks: `drafts` (MedicationRequests of `record`) as if
    /// signed ([`crate::engine::as_if_signed`]).
    pub fn what_if(
        record: &PatientRecord,
        drafts: &[crate::model::SourceRef],
        as_of: NaiveDate,
    ) -> Outcome {
        let (signed, sent) = crate::engine::as_if_signed(record, drafts, as_of);
        run(&signed, as_of, move |ctx| ctx.drafts = sent)
    }
}

#[cfg(test)]
mod tests {
    use super::testing;
    use super::*;
    use crate::facts::therapy::AgentUse;
    use crate::model::{MedicationStatus, Route, SourceRef};
    use crate::testkit::{d, RecordBuilder};

    fn dmab_patient(last: &str) -> RecordBuilder {
        RecordBuilder::new("1945-02-02", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2023-04-01",
                60.0,
                Route::Subcutaneous,
            )
            .administration(Ingredient::Denosumab, last, 60.0, Route::Subcutaneous)
    }

    #[test]
    fn denosumab_due_from_day_154_only() {
        let r = dmab_patient("2024-01-01").build();
        let mut due = Vec::new();
        for n in [153, 154] {
            let as_of = add_days(d("2024-01-01"), n);
            let config = crate::Config::default();
            let visible = crate::engine::visible_at(&r, as_of);
            let input = crate::facts::Input {
                record: &visible,
                as_of,
                t: &config.thresholds,
                age: Some(79),
            };
            let ctx = Ctx {
                facts: crate::engine::Facts {
                    dmab: crate::facts::denosumab::compute(&input),
                    ..Default::default()
                },
                input,
                drafts: Vec::new(),
            };
            due.push(denosumab_due_by_schedule(&ctx));
        }
        assert_eq!(due, vec![false, true]);
    }

    #[test]
    fn planned_zoledronate_order_triggers_the_checks() {
        let r = dmab_patient("2024-04-03")
            .order(
                Ingredient::ZoledronicAcid,
                MedicationStatus::Active,
                "2024-09-15",
            )
            .build();
        let out = testing::run(&r, d("2024-09-20"), |ctx| {
            ctx.therapy.planned.push(AgentUse {
                agent: Ingredient::ZoledronicAcid,
                source: SourceRef::new("MedicationRequest/t3"),
                date: Some(d("2024-09-15")),
            });
            assert!(zoledronate_planned_or_recommended(ctx, &Outcome::default()));
        });
        // No renal data within 30 days → item 3; due-soon → item 4/5 as well.
        assert!(out.insufficient.iter().any(|i| i.item == 3));
    }

    /// §8: "Due" denosumab = … "an active MedicationRequest for denosumab has an explicit
    /// occurrence within the next 28 days". An order listing a past event and one 27 days ahead
    /// has such an occurrence: the checks apply (no 25-OH D → item 4, no renal function → item 5).
    /// Found by the oradm2 differential (only the earliest event was kept, so the order looked
    /// past and the checks were silent).
    #[test]
    fn an_order_with_a_past_and_a_coming_occurrence_is_due() {
        // Last dose 2024-01-05 (day 136 at as-of: not due by schedule); the order was authored
        // 121 days ago (> 90: not "planned"), after the last dose (not fulfilled).
        let mut r = dmab_patient("2024-01-05")
            .order(
                Ingredient::Denosumab,
                MedicationStatus::Active,
                "2024-01-20",
            )
            .build();
        let order = r.medications.last_mut().expect("the order");
        order.planned_dates = vec![d("2024-03-01"), d("2024-06-10")];
        let out = testing::run(&r, d("2024-05-20"), |ctx| {
            assert!(denosumab_occurrence_soon(ctx).is_some());
            assert!(denosumab_due_or_planned(ctx, &Outcome::default()));
        });
        assert!(out.insufficient.iter().any(|i| i.item == 4));
        assert!(out.insufficient.iter().any(|i| i.item == 5));
    }

    #[test]
    fn mid_interval_denosumab_is_neither_due_nor_planned() {
        let r = dmab_patient("2024-04-03").build();
        let out = testing::run(&r, d("2024-06-01"), |ctx| {
            assert!(!denosumab_due_or_planned(ctx, &Outcome::default()));
            assert!(!zoledronate_planned_or_recommended(
                ctx,
                &Outcome::default()
            ));
        });
        assert!(out.insufficient.is_empty());
    }

    #[test]
    fn corrected_calcium_uses_the_albumin_near_the_calcium() {
        let r = dmab_patient("2024-04-03")
            .observation(ObservationKind::Calcium, "2024-09-10", 8.0)
            .observation(ObservationKind::Albumin, "2024-09-09", 3.0)
            .observation(ObservationKind::Albumin, "2024-06-01", 5.0)
            .build();
        testing::run(&r, d("2024-09-20"), |ctx| {
            let ca = calcium_reading(ctx).unwrap();
            assert!((ca.corrected - 8.8).abs() < 1e-9);
            assert!(!ca.is_low(ctx.t().calcium_low_mg_dl));
        });
    }

    #[test]
    fn crcl_preferred_over_egfr_and_egfr_is_the_fallback() {
        let base =
            dmab_patient("2024-04-03").observation(ObservationKind::Egfr, "2024-09-10", 80.0);
        let r = base
            .observation(ObservationKind::Creatinine, "2024-09-10", 1.6)
            .observation(ObservationKind::BodyWeight, "2024-09-10", 48.0)
            .build();
        testing::run(&r, d("2024-09-20"), |ctx| {
            let v = zoledronate_renal(ctx).unwrap();
            assert_eq!(v.measure, RenalMeasure::CrCl);
            assert!((v.value - 21.6).abs() < 0.05);
        });
        let r = dmab_patient("2024-04-03")
            .observation(ObservationKind::Egfr, "2024-09-10", 34.0)
            .observation(ObservationKind::Creatinine, "2024-09-10", 1.6)
            .build();
        testing::run(&r, d("2024-09-20"), |ctx| {
            let v = zoledronate_renally_contraindicated(ctx).unwrap();
            assert_eq!(v.measure, RenalMeasure::Egfr);
        });
    }
}

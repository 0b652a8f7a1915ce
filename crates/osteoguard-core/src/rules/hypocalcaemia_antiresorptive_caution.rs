//! `hypocalcaemia-antiresorptive-caution` (NEW) — knowledge.md §8, §9.
//!
//! **Recommendation:** "Correct hypocalcaemia (and assess CKD-MBD if eGFR <30) before giving
//! zoledronate or denosumab."
//! **Source:** PROLIA-PI (boxed warning: severe hypocalcaemia with eGFR < 30 or dialysis,
//! verified; correct hypocalcaemia before dosing); RECLAST-PI (hypocalcaemia must be corrected
//! first). Strength: label warning.
//!
//! **Criteria:**
//! * applicability: zoledronate or denosumab active (§4.3, `ctx.therapy`), planned, due, or
//!   recommended by the engine ([`zoledronate_in_play`], [`denosumab_in_play`]);
//! * [`calcium_low`] → critical: albumin-corrected calcium (latest within `renal_fresh_days`;
//!   albumin within `albumin_pair_days` of it, else the measured value) below
//!   `calcium_low_mg_dl` or below the lab's `referenceRange.low`;
//! * [`advanced_ckd`] → high (denosumab only): a dialysis / CKD stage 4–5 Condition, or the latest
//!   eGFR within `ckd_fresh_days` below `dmab_ckd_egfr_min`, or — eGFR absent — Cockcroft–Gault
//!   CrCl below it (conservative surrogate);
//! * missing data: zoledronate planned/recommended without calcium ≤ 30 d → data-insufficient
//!   item 3; denosumab due/planned without creatinine/eGFR ≤ 365 d (or creatinine without eGFR
//!   and weight) → item 5. "Active" alone never raises an item (closed list of §9).
//!
//! **Thresholds:** `calcium_low_mg_dl`, `renal_fresh_days`, `albumin_pair_days`,
//! `dmab_ckd_egfr_min`, `ckd_fresh_days`, `weight_fresh_days`.

use super::safety::{
    active_evidence, calcium_reading, denosumab_reasons, female_factor_applies,
    zoledronate_reasons, CalciumReading,
};
use crate::engine::{Ctx, Outcome};
use crate::facts::labs;
use crate::finding::{Evidence, Finding, FindingCode, Fixed, Severity, Shortest, Ymd};
use crate::model::{ConditionKind, Ingredient};

pub const CITATION: &str = "PROLIA-PI; RECLAST-PI";
const SECTION: &str = "§8; §9 hypocalcaemia-antiresorptive-caution";
const RULE: &str = "hypocalcaemia-antiresorptive-caution";

/// Zoledronate active, planned or recommended: the evidence (empty = not in play).
pub fn zoledronate_in_play(ctx: &Ctx<'_>, out: &Outcome) -> Vec<Evidence> {
    let mut v = active_evidence(ctx, |i| i == Ingredient::ZoledronicAcid);
    v.extend(zoledronate_reasons(ctx, out));
    v
}

/// Denosumab active, planned or due: the evidence (empty = not in play).
pub fn denosumab_in_play(ctx: &Ctx<'_>, out: &Outcome) -> Vec<Evidence> {
    let mut v = active_evidence(ctx, |i| i == Ingredient::Denosumab);
    v.extend(denosumab_reasons(ctx, out));
    v
}

/// Corrected calcium below the threshold or the lab's lower limit.
pub fn calcium_low(ca: &CalciumReading, ctx: &Ctx<'_>) -> bool {
    ca.is_low(ctx.t().calcium_low_mg_dl)
}

/// Result of the denosumab CKD check.
#[derive(Debug, Clone, PartialEq)]
pub enum Ckd {
    /// Advanced CKD established (what, evidence).
    Advanced(String, Vec<Evidence>),
    /// A renal value shows eGFR/CrCl ≥ 30.
    NotAdvanced,
    /// No renal value within the CKD window; the missing-input wording.
    Unknown(String),
}

/// eGFR < 30 (or dialysis / CKD 4–5 on record; CrCl surrogate when eGFR is absent).
pub fn advanced_ckd(ctx: &Ctx<'_>) -> Ckd {
    let t = ctx.t();
    if let Some(c) = ctx.record().conditions.iter().find(|c| {
        c.is_valid()
            && matches!(
                c.kind,
                ConditionKind::Dialysis | ConditionKind::ChronicKidneyDisease45
            )
    }) {
        return Ckd::Advanced(
            text!("{} on record", c.display),
            vec![Evidence::new(
                &c.source,
                c.visible,
                "dialysis / CKD stage 4–5",
            )],
        );
    }
    let renal = labs::renal(&ctx.input, t.ckd_fresh_days, female_factor_applies(ctx));
    if let Some(e) = &renal.egfr {
        return if e.value < t.dmab_ckd_egfr_min {
            let ev = Evidence::new(
                &e.source,
                Some(e.date),
                text!("eGFR {} mL/min/1.73 m²", Shortest(e.value)),
            );
            Ckd::Advanced(
                text!(
                    "eGFR {} mL/min/1.73 m² ({}) < {}",
                    Shortest(e.value),
                    Ymd(e.date),
                    Shortest(t.dmab_ckd_egfr_min)
                ),
                vec![ev],
            )
        } else {
            Ckd::NotAdvanced
        };
    }
    if let Some((crcl, _)) = &renal.crcl {
        if *crcl < t.dmab_ckd_egfr_min {
            let mut ev = Vec::new();
            if let Some(c) = &renal.creatinine {
                ev.push(Evidence::new(
                    &c.source,
                    Some(c.date),
                    text!("creatinine {} mg/dL", Shortest(c.value)),
                ));
            }
            if let Some(w) = &renal.weight {
                ev.push(Evidence::new(
                    &w.source,
                    Some(w.date),
                    text!("body weight {} kg", Shortest(w.value)),
                ));
            }
            return Ckd::Advanced(
                text!(
                    "CrCl {} mL/min < {} (eGFR absent; Cockcroft–Gault surrogate)",
                    Fixed(*crcl, 1),
                    Shortest(t.dmab_ckd_egfr_min)
                ),
                ev,
            );
        }
        return Ckd::NotAdvanced;
    }
    Ckd::Unknown(match &renal.creatinine {
        Some(_) => text!(
            "denosumab due/planned: creatinine but neither eGFR nor a body weight within {} days \
             (CrCl not computable)",
            t.ckd_fresh_days
        ),
        None => text!(
            "denosumab due/planned: no creatinine or eGFR within {} days",
            t.ckd_fresh_days
        ),
    })
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let t = ctx.t();
    let zol_planned = zoledronate_reasons(ctx, out);
    let dmab_due = denosumab_reasons(ctx, out);
    let zol = zoledronate_in_play(ctx, out);
    let dmab = denosumab_in_play(ctx, out);
    if zol.is_empty() && dmab.is_empty() {
        return;
    }

    let mut problems: Vec<String> = Vec::new();
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut severity = None;

    // Calcium (both agents).
    match calcium_reading(ctx) {
        Some(ca) => {
            if calcium_low(&ca, ctx) {
                let corrected = match &ca.albumin {
                    Some(a) => text!(
                        "corrected calcium {} mg/dL (Ca {} mg/dL, albumin {} g/dL)",
                        Fixed(ca.corrected, 2),
                        Shortest(ca.calcium.value),
                        Shortest(a.value)
                    ),
                    None => text!(
                        "calcium {} mg/dL (no albumin within {} days; uncorrected)",
                        Fixed(ca.corrected, 2),
                        t.albumin_pair_days
                    ),
                };
                let limit = match ca.calcium.reference_low {
                    Some(l) if l > t.calcium_low_mg_dl => l,
                    _ => t.calcium_low_mg_dl,
                };
                problems.push(text!(
                    "{corrected} on {} < {limit}",
                    Ymd(ca.calcium.date),
                    limit = Shortest(limit)
                ));
                evidence.push(Evidence::new(
                    &ca.calcium.source,
                    Some(ca.calcium.date),
                    text!("calcium {} mg/dL", Shortest(ca.calcium.value)),
                ));
                if let Some(a) = &ca.albumin {
                    evidence.push(Evidence::new(
                        &a.source,
                        Some(a.date),
                        text!("albumin {} g/dL", Shortest(a.value)),
                    ));
                }
                severity = Some(Severity::Critical);
            }
        }
        None => {
            if !zol_planned.is_empty() {
                out.insufficient(
                    3,
                    RULE,
                    text!(
                        "zoledronate planned/recommended: no calcium within {} days",
                        t.renal_fresh_days
                    ),
                );
            }
        }
    }

    // Advanced CKD (denosumab only).
    if !dmab.is_empty() {
        match advanced_ckd(ctx) {
            Ckd::Advanced(what, ev) => {
                problems.push(text!("{what} — denosumab boxed warning"));
                evidence.extend(ev);
                severity = severity.or(Some(Severity::High));
            }
            Ckd::NotAdvanced => {}
            Ckd::Unknown(missing) => {
                if !dmab_due.is_empty() {
                    out.insufficient(5, RULE, missing);
                }
            }
        }
    }

    let Some(severity) = severity else {
        return;
    };
    let mut agents = Vec::new();
    if !zol.is_empty() {
        agents.push("zoledronic acid");
    }
    if !dmab.is_empty() {
        agents.push("denosumab");
    }
    let summary = text!(
        "{} while {} active/planned/due",
        problems.join("; "),
        agents.join(" and ")
    );
    evidence.extend(zol);
    evidence.extend(dmab);
    let f = Finding::new(
        FindingCode::HypocalcaemiaAntiresorptiveCaution,
        severity,
        summary,
        text!(
            "Correct hypocalcaemia (and assess CKD-MBD if eGFR <{}) before giving zoledronate or \
             denosumab.",
            Shortest(t.dmab_ckd_egfr_min)
        ),
        CITATION,
        SECTION,
    )
    .with_evidence(evidence)
    .with_note(text!(
        "Calcium must be within {} days; the CKD check uses eGFR/creatinine within {} days.",
        t.renal_fresh_days,
        t.ckd_fresh_days
    ))
    .with_trace("safety.renal_fresh_days: engine convention, UNVERIFIED (knowledge.md §8)");
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::therapy::AgentUse;
    use crate::model::{ObservationKind, PatientRecord, Route, Sex, SourceRef};
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    fn due_soon_patient() -> RecordBuilder {
        RecordBuilder::new("1945-02-02", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2023-10-01",
                60.0,
                Route::Subcutaneous,
            )
            .administration(
                Ingredient::Denosumab,
                "2024-04-03",
                60.0,
                Route::Subcutaneous,
            )
    }

    fn sev(r: &PatientRecord, as_of: &str) -> Option<Severity> {
        testing::plain(r, d(as_of))
            .get(FindingCode::HypocalcaemiaAntiresorptiveCaution)
            .map(|f| f.severity)
    }

    #[test]
    fn example_7_crcl_surrogate_21_6_is_high() {
        let r = due_soon_patient()
            .observation(ObservationKind::Creatinine, "2024-09-10", 1.6)
            .observation(ObservationKind::BodyWeight, "2024-09-10", 48.0)
            .observation(ObservationKind::Calcium, "2024-09-10", 9.0)
            .build();
        let out = testing::plain(&r, d("2024-09-20"));
        let f = out
            .get(FindingCode::HypocalcaemiaAntiresorptiveCaution)
            .unwrap();
        assert_eq!(f.severity, Severity::High);
        assert!(f.summary.contains("CrCl 21.6"), "{}", f.summary);
    }

    #[test]
    fn calcium_boundary_8_5_and_reference_low() {
        let at = |ca: f64, low: Option<f64>| {
            let r = due_soon_patient()
                .observation(ObservationKind::Egfr, "2024-09-10", 60.0)
                .observation(ObservationKind::Calcium, "2024-09-10", ca)
                .with_last_observation(|o| o.reference_low = low)
                .build();
            sev(&r, "2024-09-20")
        };
        assert_eq!(at(8.5, None), None);
        assert_eq!(at(8.49, None), Some(Severity::Critical));
        assert_eq!(at(8.7, Some(8.8)), Some(Severity::Critical));
    }

    #[test]
    fn albumin_correction_lifts_a_low_measured_calcium() {
        let r = due_soon_patient()
            .observation(ObservationKind::Egfr, "2024-09-10", 60.0)
            .observation(ObservationKind::Calcium, "2024-09-10", 8.0)
            .observation(ObservationKind::Albumin, "2024-09-10", 3.0)
            .build();
        assert_eq!(sev(&r, "2024-09-20"), None);
    }

    #[test]
    fn egfr_boundary_30_and_egfr_preferred_to_crcl() {
        let at = |egfr: f64| {
            let r = due_soon_patient()
                .observation(ObservationKind::Egfr, "2024-01-01", egfr)
                .observation(ObservationKind::Calcium, "2024-09-10", 9.0)
                .build();
            sev(&r, "2024-09-20")
        };
        assert_eq!(at(30.0), None);
        assert_eq!(at(29.9), Some(Severity::High));
        // eGFR present (≥ 30) wins over a low CrCl surrogate.
        let r = due_soon_patient()
            .observation(ObservationKind::Egfr, "2024-09-10", 45.0)
            .observation(ObservationKind::Creatinine, "2024-09-10", 1.6)
            .observation(ObservationKind::BodyWeight, "2024-09-10", 48.0)
            .build();
        assert_eq!(sev(&r, "2024-09-20"), None);
    }

    #[test]
    fn ckd_window_is_365_days() {
        let r = due_soon_patient()
            .observation(ObservationKind::Egfr, "2023-09-21", 20.0)
            .build();
        assert_eq!(sev(&r, "2024-09-20"), Some(Severity::High)); // 365 days
        let out = testing::plain(&r, d("2024-09-21")); // 366 days
        assert!(!out.fired(FindingCode::HypocalcaemiaAntiresorptiveCaution));
        assert!(out
            .insufficient
            .iter()
            .any(|i| i.item == 5 && i.rule == RULE));
    }

    #[test]
    fn active_only_denosumab_checks_values_but_raises_no_items() {
        let r = due_soon_patient()
            .observation(ObservationKind::Calcium, "2024-05-01", 8.0)
            .build();
        let out = testing::run(&r, d("2024-05-10"), |ctx| {
            ctx.therapy.active_agents = vec![AgentUse {
                agent: Ingredient::Denosumab,
                source: SourceRef::new("MedicationAdministration/t2"),
                date: Some(d("2024-04-03")),
            }];
        });
        assert_eq!(
            out.get(FindingCode::HypocalcaemiaAntiresorptiveCaution)
                .map(|f| f.severity),
            Some(Severity::Critical)
        );
        assert!(out.insufficient.is_empty());
    }

    #[test]
    fn ckd_check_is_denosumab_only() {
        let r = RecordBuilder::new("1945-02-02", Sex::Female)
            .observation(ObservationKind::Egfr, "2024-09-10", 20.0)
            .observation(ObservationKind::Calcium, "2024-09-10", 9.0)
            .observation(ObservationKind::VitaminD25, "2024-09-10", 30.0)
            .build();
        let out = testing::run(&r, d("2024-09-20"), |ctx| {
            ctx.therapy.planned = vec![AgentUse {
                agent: Ingredient::ZoledronicAcid,
                source: SourceRef::new("MedicationRequest/x"),
                date: Some(d("2024-09-15")),
            }];
        });
        assert!(!out.fired(FindingCode::HypocalcaemiaAntiresorptiveCaution));
        // eGFR 20 < 35 with CrCl not computable → zoledronate contraindicated instead.
        assert!(out.fired(FindingCode::ZoledronateRenalContraindication));
    }
}

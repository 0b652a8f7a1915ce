//! Laboratory values for the safety checks — knowledge.md §8 (RECLAST-PI, PROLIA-PI).
//!
//! Freshness windows, Cockcroft–Gault creatinine clearance and albumin-corrected calcium.

use chrono::NaiveDate;
use serde::Serialize;

use super::Input;
use crate::model::{ObservationKind, SourceRef};

/// A lab value used by a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabValue {
    pub source: SourceRef,
    pub date: NaiveDate,
    pub value: f64,
    pub reference_low: Option<f64>,
    pub reference_high: Option<f64>,
}

/// The latest usable value of `kind` dated within `max_age_days` before `as_of` (inclusive).
pub fn latest(input: &Input<'_>, kind: ObservationKind, max_age_days: i64) -> Option<LabValue> {
    let lower = crate::model::add_days(input.as_of, -max_age_days);
    input
        .record
        .observations
        .iter()
        .filter(|o| o.kind == kind && o.status.is_usable())
        .filter_map(|o| {
            let date = o.date()?;
            let value = o.value?;
            (date >= lower && date <= input.as_of).then_some((o, date, value))
        })
        // The value is built for the one observation chosen, not for every candidate.
        .max_by(|a, b| (a.0.effective, &a.0.source).cmp(&(b.0.effective, &b.0.source)))
        .map(|(o, date, value)| LabValue {
            source: o.source.clone(),
            date,
            value,
            reference_low: o.reference_low,
            reference_high: o.reference_high,
        })
}

/// Cockcroft–Gault creatinine clearance (mL/min), §8:
/// `(140 − age) × weight_kg / (72 × SCr)`, × 0.85 if female.
pub fn cockcroft_gault(
    age: i64,
    weight_kg: f64,
    creatinine_mg_dl: f64,
    female: bool,
) -> Option<f64> {
    if creatinine_mg_dl <= 0.0 || weight_kg <= 0.0 {
        return None;
    }
    let crcl = (140 - age) as f64 * weight_kg / (72.0 * creatinine_mg_dl);
    Some(if female { crcl * 0.85 } else { crcl })
}

/// Albumin-corrected calcium (mg/dL), §8: `Ca + 0.8 × (4.0 − albumin)`.
pub fn corrected_calcium(ca_mg_dl: f64, albumin_g_dl: Option<f64>) -> f64 {
    match albumin_g_dl {
        Some(alb) => ca_mg_dl + 0.8 * (4.0 - alb),
        None => ca_mg_dl,
    }
}

/// Renal function as the §8 checks read it.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Renal {
    pub crcl: Option<(f64, Vec<SourceRef>)>,
    pub egfr: Option<LabValue>,
    pub creatinine: Option<LabValue>,
    pub weight: Option<LabValue>,
}

/// Creatinine/eGFR within `fresh_days`, weight within the weight window, CrCl when computable.
pub fn renal(input: &Input<'_>, fresh_days: i64, female: bool) -> Renal {
    let creatinine = latest(input, ObservationKind::Creatinine, fresh_days);
    let egfr = latest(input, ObservationKind::Egfr, fresh_days);
    let weight = latest(
        input,
        ObservationKind::BodyWeight,
        input.t.weight_fresh_days,
    );
    let crcl = match (&creatinine, &weight, input.age) {
        (Some(c), Some(w), Some(age)) => cockcroft_gault(age, w.value, c.value, female)
            .map(|v| (v, vec![c.source.clone(), w.source.clone()])),
        _ => None,
    };
    Renal {
        crcl,
        egfr,
        creatinine,
        weight,
    }
}

#[allow(dead_code)]
fn _date(_: NaiveDate) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cockcroft_gault_matches_worked_examples() {
        // Example 3: (140−73)×50/(72×0.8)×0.85 = 49.4
        let v = cockcroft_gault(73, 50.0, 0.8, true).unwrap();
        assert!((v - 49.4).abs() < 0.05, "{v}");
        // Example 7: (140−79)×48/(72×1.6)×0.85 = 21.6
        let v = cockcroft_gault(79, 48.0, 1.6, true).unwrap();
        assert!((v - 21.6).abs() < 0.05, "{v}");
        // Example 8: (140−72)×62/(72×0.7)×0.85 = 71.1
        let v = cockcroft_gault(72, 62.0, 0.7, true).unwrap();
        assert!((v - 71.1).abs() < 0.05, "{v}");
    }

    #[test]
    fn corrected_calcium_formula() {
        assert!((corrected_calcium(8.0, Some(3.0)) - 8.8).abs() < 1e-9);
        assert_eq!(corrected_calcium(9.2, None), 9.2);
    }
}

//! FHIR R4 MeasureReports from [`PatientResult`]s: an `individual` report per patient and a
//! `summary` report with population counts and the proportion measure score, collected in one
//! `collection` Bundle.

use serde_json::{json, Value};

use crate::{Measure, MeasurementPeriod, PatientResult, Population};

const POPULATION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/measure-population";

fn population_json(p: Population, count: usize) -> Value {
    json!({
        "code": {"coding": [{"system": POPULATION_SYSTEM, "code": p.code(), "display": p.display()}]},
        "count": count,
    })
}

fn period_json(period: &MeasurementPeriod) -> Value {
    json!({"start": period.start.to_string(), "end": period.end.to_string()})
}

/// An id safe for FHIR (`[A-Za-z0-9\-\.]{1,64}`).
fn fhir_id(s: &str) -> String {
    let mut id: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    id.truncate(64);
    id
}

/// The `individual` MeasureReport of one patient.
pub fn individual(r: &PatientResult, period: &MeasurementPeriod) -> Value {
    let populations: Vec<Value> = r
        .populations
        .iter()
        .map(|(p, v)| population_json(*p, usize::from(*v)))
        .collect();
    json!({
        "resourceType": "MeasureReport",
        "id": fhir_id(&format!("{}-{}", r.measure.id(), r.patient_id)),
        "status": "complete",
        "type": "individual",
        "measure": r.measure.url(),
        "subject": {"reference": format!("Patient/{}", r.patient_id)},
        "period": period_json(period),
        "group": [{"population": populations}],
    })
}

/// Population counts over many patients, in the measure's population order.
pub fn counts(measure: Measure, results: &[PatientResult]) -> Vec<(Population, usize)> {
    measure
        .populations()
        .iter()
        .map(|p| (*p, results.iter().filter(|r| r.is_member(*p)).count()))
        .collect()
}

/// The proportion score: (numerator − numerator exclusions) / (denominator − denominator
/// exclusions − denominator exceptions); `None` when that denominator is 0.
pub fn score(counts: &[(Population, usize)]) -> Option<f64> {
    let get = |p| counts.iter().find(|(q, _)| *q == p).map_or(0, |(_, n)| *n);
    let denominator = get(Population::Denominator)
        .saturating_sub(get(Population::DenominatorExclusion))
        .saturating_sub(get(Population::DenominatorException));
    let numerator = get(Population::Numerator).saturating_sub(get(Population::NumeratorExclusion));
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// The `summary` MeasureReport: population counts and the measure score.
pub fn summary(measure: Measure, results: &[PatientResult], period: &MeasurementPeriod) -> Value {
    let c = counts(measure, results);
    let populations: Vec<Value> = c.iter().map(|(p, n)| population_json(*p, *n)).collect();
    let mut group = json!({"population": populations});
    if let Some(s) = score(&c) {
        group["measureScore"] = json!({"value": s});
    }
    json!({
        "resourceType": "MeasureReport",
        "id": fhir_id(&format!("{}-summary", measure.id())),
        "status": "complete",
        "type": "summary",
        "measure": measure.url(),
        "period": period_json(period),
        "group": [group],
    })
}

/// One `collection` Bundle: every individual report, then the summary.
pub fn bundle(measure: Measure, results: &[PatientResult], period: &MeasurementPeriod) -> Value {
    let mut entries: Vec<Value> = results
        .iter()
        .map(|r| json!({"resource": individual(r, period)}))
        .collect();
    entries.push(json!({"resource": summary(measure, results, period)}));
    json!({
        "resourceType": "Bundle",
        "id": fhir_id(&format!("{}-measure-reports", measure.id())),
        "type": "collection",
        "entry": entries,
    })
}

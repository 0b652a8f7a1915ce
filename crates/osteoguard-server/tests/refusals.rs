//! Requests the service must refuse rather than answer `{"cards": []}` ("nothing to flag"):
//! data that is not the context patient's, malformed prefetch values, no Patient at all.
//! Real requests against the real server on loopback; every refusal carries no cards and a
//! message naming the prefetch key and the problem.

mod common;

use common::*;
use serde_json::{json, Value};

const PV: &str = "/cds-services/osteoguard-patient-view";

fn seed_request() -> Value {
    patient_view("ku-73f", "2023-06-15", prefetch_from(&seed_resources()))
}

/// Sends `req`; asserts the status, the error code, no cards, and that the message contains
/// every one of `words`.
async fn refused(h: &Harness, req: &Value, status: u16, code: &str, words: &[&str]) -> String {
    let (s, v) = h.call(PV, req).await;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"], code, "{v}");
    assert!(v.get("cards").is_none(), "a refusal carries no cards: {v}");
    let m = v["message"].as_str().unwrap_or_default().to_string();
    for w in words {
        assert!(m.contains(w), "message lacks {w:?}: {m}");
    }
    m
}

#[tokio::test]
async fn the_unchanged_seed_request_is_answered_with_cards() {
    // The control: the requests below differ from this one in one place each.
    let h = start().await;
    let (s, v) = h.call(PV, &seed_request()).await;
    assert_eq!(s, 200, "{v}");
    assert!(!v["cards"].as_array().unwrap().is_empty(), "{v}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn context_patient_other_than_the_prefetch_patient_is_412() {
    let h = start().await;
    let mut req = seed_request();
    req["context"]["patientId"] = json!("someone-else");
    refused(
        &h,
        &req,
        412,
        "data-inconsistent",
        &["`patient`", "Patient/ku-73f", "Patient/someone-else"],
    )
    .await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn string_and_other_non_resource_prefetch_values_are_400() {
    let h = start().await;
    for (value, kind) in [
        (json!("Condition?patient=ku-73f"), "string"),
        (json!(42), "number"),
        (json!([]), "array"),
    ] {
        let mut req = seed_request();
        req["prefetch"]["conditions"] = value;
        refused(&h, &req, 400, "bad-request", &["`conditions`", kind]).await;
    }
    let mut req = seed_request();
    req["prefetch"]["conditions"] = json!({"entry": []});
    refused(
        &h,
        &req,
        400,
        "bad-request",
        &["`conditions`", "resourceType"],
    )
    .await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn prefetch_resources_without_subject_or_of_another_patient_are_412() {
    let h = start().await;
    let obs = |subject: Option<&str>| {
        let mut o = json!({"resourceType": "Observation", "id": "bmd-x", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "80948-3"}]},
            "effectiveDateTime": "2023-01-01", "valueQuantity": {"value": -2.9, "unit": "{T-score}"}});
        if let Some(s) = subject {
            o["subject"] = json!({"reference": s});
        }
        o
    };
    // No subject: it cannot be attributed to anyone.
    let mut req = seed_request();
    req["prefetch"]["observationsBone"] = searchset(vec![obs(None)]);
    refused(
        &h,
        &req,
        412,
        "data-inconsistent",
        &["`observationsBone`", "Observation/bmd-x", "no subject"],
    )
    .await;
    // Another patient's.
    let mut req = seed_request();
    req["prefetch"]["observationsBone"] = searchset(vec![obs(Some("Patient/other"))]);
    refused(
        &h,
        &req,
        412,
        "data-inconsistent",
        &[
            "`observationsBone`",
            "Patient/other",
            "not the context patient",
        ],
    )
    .await;
    // A subject that is not a patient at all.
    let mut req = seed_request();
    req["prefetch"]["conditions"] = searchset(vec![json!({"resourceType": "Condition",
        "id": "c1", "subject": {"reference": "Group/ward-3"}})]);
    refused(
        &h,
        &req,
        412,
        "data-inconsistent",
        &["`conditions`", "Group/ward-3"],
    )
    .await;
    // The same resources with the right subject are accepted (absolute and urn:uuid forms).
    for subject in [
        "Patient/ku-73f",
        "https://ehr.example.org/fhir/Patient/ku-73f",
        "urn:uuid:ku-73f",
    ] {
        let mut req = seed_request();
        req["prefetch"]["observationsBone"] = searchset(vec![obs(Some(subject))]);
        let (s, v) = h.call(PV, &req).await;
        assert_eq!(s, 200, "{subject}: {v}");
    }
    h.server.shutdown().await;
}

#[tokio::test]
async fn an_observation_under_the_patient_key_is_412_not_cards_without_demographics() {
    let h = start().await;
    let mut req = seed_request();
    let obs = req["prefetch"]["observationsLab"]["entry"][0]["resource"].clone();
    assert_eq!(obs["resourceType"], "Observation");
    req["prefetch"]["patient"] = obs;
    refused(
        &h,
        &req,
        412,
        "data-inconsistent",
        &["`patient`", "Observation", "demographics"],
    )
    .await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn no_patient_resource_anywhere_is_412() {
    let fhir = start_fhir(fhir_corpus(), 50).await;
    let h = start().await;
    // The FHIR server has data for nobody of that id: the Patient read is a 404.
    let req = fetch_all_request("not-on-the-server", fhir.url("fhir"));
    refused(
        &h,
        &req,
        412,
        "data-inconsistent",
        &["Patient/not-on-the-server", "demographics"],
    )
    .await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_10_mb_patient_id_is_not_echoed_in_full() {
    let h = start_with(|c| c.body_limit_bytes = 32 * 1024 * 1024).await;
    let huge = "x".repeat(10 * 1024 * 1024);
    let mut req = seed_request();
    req["context"]["patientId"] = json!(huge);
    let m = refused(&h, &req, 412, "data-inconsistent", &["`patient`"]).await;
    assert!(m.len() < 1024, "message of {} bytes", m.len());
    // The same for a huge prefetch key.
    let mut req = seed_request();
    let key = "k".repeat(1024 * 1024);
    req["prefetch"][key.as_str()] = json!("a string");
    let m = refused(&h, &req, 400, "bad-request", &["string"]).await;
    assert!(m.len() < 1024, "message of {} bytes", m.len());
    h.server.shutdown().await;
}

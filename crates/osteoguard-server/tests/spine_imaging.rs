//! Spine imaging recorded as DiagnosticReport or ImagingStudy (knowledge.md §7.2) through the
//! CDS Hooks service: discovery asks for both, a prefetch carrying them is read, a request
//! without them is still answered (they are optional: what they carry can only withdraw a
//! card), and with a `fhirServer` they are fetched. The patient is the reproducer of the
//! session-10 differential (`tools/oracle-dmab/cases/spine-imaging-as-diagnosticreport.json`):
//! a pain rise after a vertebroplasty, then a lumbar MRI, as of 2024-03-05 — §9
//! `ovcf-imaging-recommended` clause (b) fires without the MRI and not with it.

mod common;

use common::*;
use serde_json::{json, Value};

const PV: &str = "/cds-services/osteoguard-patient-view";
const AS_OF: &str = "2024-03-05";
const PID: &str = "r1-diagnosticreport";

fn case_resources(name: &str) -> Vec<Value> {
    bundle_resources(&read_json(
        workspace().join("tools/oracle-dmab/cases").join(name),
    ))
}

/// The first eight templates' prefetch (as clients set up before session 11 send it).
fn prefetch_without_imaging(resources: &[Value]) -> Value {
    prefetch_from(resources)
}

fn imaging_card(v: &Value) -> bool {
    card_codes(v)
        .iter()
        .any(|c| c == "ovcf-imaging-recommended")
}

#[tokio::test]
async fn discovery_asks_for_diagnostic_reports_and_imaging_studies() {
    let h = start().await;
    let v = h.get_json("/cds-services").await;
    for s in v["services"].as_array().unwrap() {
        assert_eq!(
            s["prefetch"]["diagnosticReports"],
            "DiagnosticReport?patient={{context.patientId}}"
        );
        assert_eq!(
            s["prefetch"]["imagingStudies"],
            "ImagingStudy?patient={{context.patientId}}"
        );
    }
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_prefetched_spine_mri_report_withdraws_the_imaging_card() {
    let resources = case_resources("spine-imaging-as-diagnosticreport.json");
    let reports: Vec<Value> = resources
        .iter()
        .filter(|r| r["resourceType"] == "DiagnosticReport")
        .cloned()
        .collect();
    assert_eq!(reports.len(), 1);
    let h = start().await;

    // The report in its template: read, no imaging card.
    let mut prefetch = prefetch_without_imaging(&resources);
    prefetch["diagnosticReports"] = searchset(reports.clone());
    prefetch["imagingStudies"] = searchset(vec![]);
    let (s, v) = h.call(PV, &patient_view(PID, AS_OF, prefetch)).await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    assert!(!imaging_card(&v), "{v:#}");

    // The templates left out and no fhirServer: answered (optional templates), and without
    // the report the rise is unimaged.
    let (s, v) = h
        .call(
            PV,
            &patient_view(PID, AS_OF, prefetch_without_imaging(&resources)),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    assert!(imaging_card(&v), "{v:#}");

    // The report issued after the as-of date is not in the record on that day (§1.2).
    let mut late = reports[0].clone();
    late["issued"] = json!("2024-03-06T08:00:00Z");
    let mut prefetch = prefetch_without_imaging(&resources);
    prefetch["diagnosticReports"] = searchset(vec![late]);
    let (s, v) = h.call(PV, &patient_view(PID, AS_OF, prefetch)).await;
    assert_eq!(s, 200, "{v}");
    assert!(imaging_card(&v), "{v:#}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn missing_imaging_templates_are_fetched_from_the_fhir_server() {
    let resources = case_resources("spine-imaging-as-diagnosticreport.json");
    let fhir = start_fhir(resources.clone(), 50).await;
    let h = start().await;
    let mut req = patient_view(PID, AS_OF, prefetch_without_imaging(&resources));
    req["fhirServer"] = json!(fhir.url("fhir"));
    req["fhirAuthorization"] = json!({"access_token": FHIR_TOKEN, "token_type": "Bearer",
        "expires_in": 300, "scope": "user/*.read", "subject": "osteoguard"});
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    let reqs = fhir.requests();
    for ty in ["DiagnosticReport", "ImagingStudy"] {
        assert!(reqs.iter().any(|r| r == &format!("fhir/{ty}")), "{reqs:?}");
    }
    // The fetched report is read: no imaging card.
    assert!(!imaging_card(&v), "{v:#}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_fhir_server_failing_the_imaging_templates_still_gets_an_answer() {
    // Every required template prefetched; the server fails every query (HTTP 500), so only the
    // two optional imaging templates are asked and both fail: the answer stands without them.
    let resources = case_resources("spine-imaging-as-diagnosticreport.json");
    let fhir = start_fhir(resources.clone(), 50).await;
    let h = start().await;
    let mut req = patient_view(PID, AS_OF, prefetch_without_imaging(&resources));
    req["fhirServer"] = json!(fhir.url("fail"));
    req["fhirAuthorization"] = json!({"access_token": FHIR_TOKEN, "token_type": "Bearer",
        "expires_in": 300, "scope": "user/*.read", "subject": "osteoguard"});
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    let reqs = fhir.requests();
    for ty in ["DiagnosticReport", "ImagingStudy"] {
        assert!(reqs.iter().any(|r| r == &format!("fail/{ty}")), "{reqs:?}");
    }
    // Without the report the rise is unimaged: the card stays.
    assert!(imaging_card(&v), "{v:#}");
    // A required template the server fails is still a 412.
    let mut req = req.clone();
    req["prefetch"]["conditions"] = Value::Null;
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 412, "{v}");
    h.server.shutdown().await;
}

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

// --- absent optional templates made visible (knowledge.md §1.6 "unknown is not no") ----------

const NOTE: &str = "**Not checked:** spine imaging recorded as";

/// The card that proposes spine imaging (it carries `ovcf-imaging-recommended` here).
fn imaging_card_of(v: &Value) -> &Value {
    find_card(v, "ovcf-imaging-recommended").unwrap_or_else(|| panic!("no imaging card: {v:#}"))
}

fn detail(card: &Value) -> &str {
    card["detail"].as_str().unwrap()
}

/// The HTML report the cards link to (it renders the assessment's `dataQuality`).
async fn report(h: &Harness, v: &Value) -> String {
    let url = v["cards"][0]["links"][0]["url"].as_str().unwrap();
    let resp = h.http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.unwrap()
}

/// The same card without its detail and its report link (a new report per request): what the
/// note must not change.
fn without_detail(card: &Value) -> Value {
    let mut c = card.clone();
    let o = c.as_object_mut().unwrap();
    o.remove("detail");
    o.remove("links");
    c
}

#[tokio::test]
async fn absent_imaging_templates_are_noted_on_the_imaging_card_and_in_data_quality() {
    let resources = case_resources("spine-imaging-as-diagnosticreport.json");
    let h = start().await;

    // Both templates present, as empty searchsets: searched, nothing found. No note.
    let mut present = prefetch_without_imaging(&resources);
    present["diagnosticReports"] = searchset(vec![]);
    present["imagingStudies"] = searchset(vec![]);
    let (s, with_keys) = h.call(PV, &patient_view(PID, AS_OF, present)).await;
    assert_eq!(s, 200, "{with_keys}");
    check_response(&with_keys).unwrap();
    assert!(
        !with_keys.to_string().contains("Not checked"),
        "{with_keys:#}"
    );
    let html = report(&h, &with_keys).await;
    assert!(!html.contains("prefetch.diagnosticReports"), "{html}");
    assert!(!html.contains("prefetch.imagingStudies"), "{html}");

    // Both left out, no fhirServer: answered, and the imaging card says what it could not check.
    let (s, without) = h
        .call(
            PV,
            &patient_view(PID, AS_OF, prefetch_without_imaging(&resources)),
        )
        .await;
    assert_eq!(s, 200, "{without}");
    check_response(&without).unwrap();
    let card = imaging_card_of(&without);
    let text = detail(card);
    assert_eq!(text.matches(NOTE).count(), 1, "{text}");
    assert!(
        text.contains(
            "spine imaging recorded as a DiagnosticReport or an ImagingStudy (prefetch \
             `diagnosticReports` and `imagingStudies` not sent, and no fhirServer to fetch them \
             from)"
        ),
        "{text}"
    );
    // The card stays as it is (same summary, indicator, suggestions, uuid …): the note is
    // added after the detail, nothing else changes.
    let before = imaging_card_of(&with_keys);
    assert_eq!(without_detail(card), without_detail(before));
    let added = text
        .strip_prefix(detail(before))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(added.starts_with(&format!("\n\n{NOTE}")), "{added}");
    assert_eq!(
        without["cards"].as_array().unwrap().len(),
        with_keys["cards"].as_array().unwrap().len()
    );
    // Only the card proposing spine imaging carries it.
    for c in without["cards"].as_array().unwrap() {
        if c["uuid"] != card["uuid"] {
            assert!(!detail(c).contains(NOTE), "{c:#}");
        }
    }
    // The assessment's dataQuality names both templates (the report renders it).
    let html = report(&h, &without).await;
    for (key, query) in [
        (
            "diagnosticReports",
            "DiagnosticReport?patient=r1-diagnosticreport",
        ),
        ("imagingStudies", "ImagingStudy?patient=r1-diagnosticreport"),
    ] {
        assert!(html.contains(&format!("prefetch.{key}")), "{html}");
        assert!(html.contains(query), "{html}");
    }
    assert!(html.contains("not in the prefetch, and no fhirServer to fetch it from"));

    // One present (empty), the other `null` (absent, as the spec allows): only that one named.
    let mut one = prefetch_without_imaging(&resources);
    one["diagnosticReports"] = searchset(vec![]);
    one["imagingStudies"] = Value::Null;
    let (s, v) = h.call(PV, &patient_view(PID, AS_OF, one)).await;
    assert_eq!(s, 200, "{v}");
    let text = detail(imaging_card_of(&v));
    assert!(
        text.contains(
            "spine imaging recorded as an ImagingStudy (prefetch `imagingStudies` not sent, \
             and no fhirServer to fetch it from)"
        ),
        "{text}"
    );
    let html = report(&h, &v).await;
    assert!(html.contains("prefetch.imagingStudies"), "{html}");
    assert!(!html.contains("prefetch.diagnosticReports"), "{html}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn imaging_templates_the_fhir_server_refuses_are_noted_and_those_it_answers_are_not() {
    // The record without its report: the rise is unimaged either way, so the imaging card is
    // there to carry (or not) the note.
    let resources: Vec<Value> = case_resources("spine-imaging-as-diagnosticreport.json")
        .into_iter()
        .filter(|r| r["resourceType"] != "DiagnosticReport")
        .collect();
    let fhir = start_fhir(resources.clone(), 50).await;
    let h = start().await;
    let auth = json!({"access_token": FHIR_TOKEN, "token_type": "Bearer",
        "expires_in": 300, "scope": "user/*.read", "subject": "osteoguard"});

    // The server answers both queries (nothing found): checked, no note.
    let mut req = patient_view(PID, AS_OF, prefetch_without_imaging(&resources));
    req["fhirServer"] = json!(fhir.url("fhir"));
    req["fhirAuthorization"] = auth.clone();
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    let reqs = fhir.requests();
    for ty in ["DiagnosticReport", "ImagingStudy"] {
        assert!(reqs.iter().any(|r| r == &format!("fhir/{ty}")), "{reqs:?}");
    }
    assert!(!detail(imaging_card_of(&v)).contains(NOTE), "{v:#}");
    let html = report(&h, &v).await;
    assert!(!html.contains("prefetch.diagnosticReports"), "{html}");

    // The server fails both (HTTP 500): answered, with the note and the dataQuality entries.
    req["fhirServer"] = json!(fhir.url("fail"));
    let (s, refused) = h.call(PV, &req).await;
    assert_eq!(s, 200, "{refused}");
    check_response(&refused).unwrap();
    let card = imaging_card_of(&refused);
    let text = detail(card);
    assert_eq!(text.matches(NOTE).count(), 1, "{text}");
    assert!(
        text.contains(
            "spine imaging recorded as a DiagnosticReport or an ImagingStudy (the fhirServer \
             did not return `diagnosticReports` and `imagingStudies`)"
        ),
        "{text}"
    );
    assert_eq!(without_detail(card), without_detail(imaging_card_of(&v)));
    let html = report(&h, &refused).await;
    for key in ["diagnosticReports", "imagingStudies"] {
        assert!(html.contains(&format!("prefetch.{key}")), "{html}");
    }
    assert!(html.contains("the fhirServer did not return it"), "{html}");
    h.server.shutdown().await;
}

//! The CDS Hooks protocol end to end: discovery, the official example requests, the seed
//! case, prefetch vs fetch from a loopback FHIR server, order hooks, feedback, health,
//! timeouts, graceful shutdown and log hygiene.

mod common;

use common::*;
use serde_json::{json, Value};

const PV: &str = "/cds-services/osteoguard-patient-view";
const OSEL: &str = "/cds-services/osteoguard-order-select";
const OSIGN: &str = "/cds-services/osteoguard-order-sign";

fn with_fhir(mut req: Value, fhir: &FhirServer) -> Value {
    req["fhirServer"] = json!(fhir.url("fhir"));
    req["fhirAuthorization"] = json!({"access_token": FHIR_TOKEN, "token_type": "Bearer",
        "expires_in": 300, "scope": "user/*.read", "subject": "osteoguard"});
    req
}

#[tokio::test]
async fn discovery_lists_three_services_with_prefetch_templates() {
    let h = start().await;
    let v = h.get_json("/cds-services").await;
    let services = v["services"].as_array().unwrap();
    let hooks: Vec<&str> = services
        .iter()
        .map(|s| s["hook"].as_str().unwrap())
        .collect();
    assert_eq!(hooks, ["patient-view", "order-select", "order-sign"]);
    for s in services {
        for k in ["id", "title", "description"] {
            assert!(s[k].is_string(), "{k}");
        }
        let p = &s["prefetch"];
        assert_eq!(p["patient"], "Patient/{{context.patientId}}");
        for ty in [
            "MedicationRequest",
            "MedicationAdministration",
            "MedicationStatement",
            "Observation",
            "Condition",
            "Procedure",
        ] {
            assert!(
                p.as_object().unwrap().values().any(|t| t
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{ty}?patient={{{{context.patientId}}}}"))),
                "{ty}"
            );
        }
    }
    let r = h.http.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    h.server.shutdown().await;
}

/// Every official example request in shared/data/cds-hooks, pointed at the loopback FHIR
/// server (the examples name unreachable hosts), gets a spec-valid answer.
#[tokio::test]
async fn official_example_requests_get_spec_valid_responses() {
    // The examples' patient 1288992 exists on their EHR: without its Patient resource the
    // service refuses (412, no cards are computed without demographics).
    let mut corpus = fhir_corpus();
    corpus.push(json!({"resourceType": "Patient", "id": "1288992", "gender": "female", "birthDate": "1960-04-01"}));
    let fhir = start_fhir(corpus, 3).await;
    let h = start().await;
    let dir = shared_data().join("cds-hooks");
    let full = |name: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        // Rewrite the example's unreachable FHIR server (including pagination links).
        let text = text
            .replace("https://ehr.example.org/fhir", &fhir.url("fhir"))
            .replace("http://hooks.smarthealthit.org:9080", &fhir.url("fhir"))
            .replace("http://fhir.example.org:9080", &fhir.url("fhir"));
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["fhirAuthorization"] = json!({"access_token": FHIR_TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read", "subject": "x"});
        v
    };
    let wrap = |name: &str, hook: &str| -> Value {
        let ctx = read_json(dir.join(name));
        json!({"hook": hook, "hookInstance": format!("example-{name}"), "fhirServer": fhir.url("fhir"),
               "fhirAuthorization": {"access_token": FHIR_TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read", "subject": "x"},
               "context": ctx["context"]})
    };
    let cases: Vec<(&str, &str, Value, u16)> = vec![
        (
            "patient-view-request.json",
            PV,
            full("patient-view-request.json"),
            200,
        ),
        (
            "v3ballot-request-prefetch-pagination.json",
            OSIGN,
            full("v3ballot-request-prefetch-pagination.json"),
            200,
        ),
        (
            "patient-view-context-1.json",
            PV,
            wrap("patient-view-context-1.json", "patient-view"),
            200,
        ),
        (
            "patient-view-context-2.json",
            PV,
            wrap("patient-view-context-2.json", "patient-view"),
            200,
        ),
        (
            "order-select-context-r4.json",
            OSEL,
            wrap("order-select-context-r4.json", "order-select"),
            200,
        ),
        (
            "order-sign-context-r4.json",
            OSIGN,
            wrap("order-sign-context-r4.json", "order-sign"),
            200,
        ),
        (
            "context-example-1.json",
            OSIGN,
            wrap("context-example-1.json", "order-sign"),
            200,
        ),
        (
            "context-example-2.json",
            OSEL,
            wrap("context-example-2.json", "order-select"),
            200,
        ),
        // No context.patientId: patient-view requires it (spec), so this is a 400, not cards.
        (
            "request-with-extension.json",
            PV,
            full("request-with-extension.json"),
            400,
        ),
    ];
    for (name, path, req, want) in cases {
        let (status, body) = h.call(path, &req).await;
        assert_eq!(status, want, "{name}: {body}");
        if want == 200 {
            check_response(&body).unwrap_or_else(|e| panic!("{name}: {e}\n{body}"));
        } else {
            assert!(
                body["message"].as_str().unwrap().contains("patientId"),
                "{name}: {body}"
            );
        }
    }
    // The paginated prefetch's next link was followed on the (rewritten) FHIR server.
    assert!(
        fhir.requests()
            .iter()
            .any(|r| r == "fhir/MedicationRequest?_page=2"),
        "{:?}",
        fhir.requests()
    );
    assert_eq!(
        fhir.state
            .bad_token
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    h.server.shutdown().await;
}

/// Done-when: the seed case as patient-view prefetch at 2023-06-15 returns the critical
/// denosumab-transition card with a create-MedicationRequest suggestion.
#[tokio::test]
async fn seed_patient_view_2023_06_15_gives_critical_transition_card() {
    let h = start().await;
    let req = patient_view("ku-73f", "2023-06-15", prefetch_from(&seed_resources()));
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    let card = find_card(&v, "denosumab-discontinuation-without-transition")
        .unwrap_or_else(|| panic!("no transition card; cards: {:?}", card_codes(&v)));
    assert_eq!(card["indicator"], "critical");
    assert!(card["source"]["label"].as_str().unwrap().contains("ECTS"));
    assert!(card["detail"]
        .as_str()
        .unwrap()
        .contains("MedicationAdministration/dmab-6"));
    let creates_mr = |code: &str| {
        card["suggestions"].as_array().unwrap().iter().any(|s| {
            s["actions"].as_array().unwrap().iter().any(|a| {
                a["type"] == "create"
                    && a["resource"]["resourceType"] == "MedicationRequest"
                    && a["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == code
            })
        })
    };
    // Issue 17: creatinine and calcium are unknown at 2023-06-15, so no zoledronic-acid order
    // is suggested; the recommended suggestion orders the safety labs (creatinine first) and a
    // denosumab order stays on offer as the alternative.
    assert!(!creates_mr("77655"), "{card}");
    assert!(creates_mr("993449"), "{card}");
    assert_eq!(card["suggestions"][0]["isRecommended"], true);
    assert_eq!(
        card["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"],
        "2160-0"
    );
    assert_eq!(card["selectionBehavior"], "at-most-one");
    let refs = card["extension"]["org.osteoguard.resources"]
        .as_array()
        .unwrap();
    assert!(
        refs.iter().any(|r| r == "MedicationAdministration/dmab-6"),
        "{refs:?}"
    );
    // Every card carries the provenance stamp of the rules and settings that produced it.
    let prov = &card["extension"]["org.osteoguard.provenance"];
    assert_eq!(prov["knowledgeVersion"], "0.10.3");
    assert_eq!(
        prov["configHash"],
        osteoguard_core::Config::default().provenance().config_hash
    );
    // Cards come most severe first.
    assert_eq!(v["cards"][0]["indicator"], "critical");

    // Stable identity: the same request again gives the same uuids.
    let (_, v2) = h.call(PV, &req).await;
    let uuids = |v: &Value| -> Vec<String> {
        v["cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["uuid"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(uuids(&v), uuids(&v2));
    h.server.shutdown().await;
}

#[tokio::test]
async fn null_and_operation_outcome_prefetch_are_fetched_with_paging() {
    let fhir = start_fhir(fhir_corpus(), 2).await;
    let h = start().await;
    let mut prefetch = prefetch_from(&seed_resources());
    prefetch["medicationAdministrations"] = Value::Null;
    prefetch["observationsBone"] = json!({"resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing"}]});
    let req = with_fhir(
        patient_view("ku-73f", "2023-06-15", prefetch.clone()),
        &fhir,
    );
    let (s, fetched) = h.call(PV, &req).await;
    assert_eq!(s, 200, "{fetched}");
    check_response(&fetched).unwrap();
    let reqs = fhir.requests();
    assert!(
        reqs.iter().any(|r| r == "fhir/MedicationAdministration"),
        "{reqs:?}"
    );
    assert!(reqs.iter().any(|r| r == "fhir/Observation"), "{reqs:?}");
    // 7 administrations at 2 per page: the next links were followed.
    assert!(
        reqs.iter()
            .filter(|r| r.starts_with("fhir/MedicationAdministration"))
            .count()
            >= 4,
        "{reqs:?}"
    );
    assert!(
        !reqs.iter().any(|r| r.starts_with("fhir/Patient")),
        "prefetched data is not re-fetched"
    );
    assert_eq!(
        fhir.state
            .bad_token
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // Same cards as with the complete prefetch.
    let (_, full) = h
        .call(
            PV,
            &patient_view("ku-73f", "2023-06-15", prefetch_from(&seed_resources())),
        )
        .await;
    assert_eq!(card_codes(&fetched), card_codes(&full));

    // Everything fetched (no prefetch at all), from shared Synthea data.
    let willia = fhir_corpus()
        .into_iter()
        .find(|r| {
            r["resourceType"] == "Patient"
                && r["name"][0]["given"][0]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Willia")
        })
        .map(|r| r["id"].as_str().unwrap().to_string());
    if let Some(id) = willia {
        let big_pages = start_fhir(fhir_corpus(), 100).await;
        let mut req = with_fhir(patient_view(&id, "2019-01-01", Value::Null), &big_pages);
        req.as_object_mut().unwrap().remove("prefetch");
        let (s, v) = h.call(PV, &req).await;
        assert_eq!(s, 200, "{v}");
        check_response(&v).unwrap();
    }
    h.server.shutdown().await;
}

#[tokio::test]
async fn fhir_failures_give_a_cardless_412() {
    let fhir = start_fhir(fhir_corpus(), 50).await;
    let h = start().await;
    let mut prefetch = prefetch_from(&seed_resources());
    prefetch["conditions"] = Value::Null;
    // Server error.
    let mut req = with_fhir(
        patient_view("ku-73f", "2023-06-15", prefetch.clone()),
        &fhir,
    );
    req["fhirServer"] = json!(fhir.url("fail"));
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 412, "{v}");
    assert!(v.get("cards").is_none());
    assert!(v["message"].as_str().unwrap().contains("500"), "{v}");
    // Timeout (fhir_timeout_ms = 1500, the server sleeps 3 s).
    req["fhirServer"] = json!(fhir.url("slow"));
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 412, "{v}");
    // Refused token.
    let mut req = with_fhir(
        patient_view("ku-73f", "2023-06-15", prefetch.clone()),
        &fhir,
    );
    req["fhirAuthorization"]["access_token"] = json!("wrong");
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 412, "{v}");
    assert!(v["message"].as_str().unwrap().contains("401"), "{v}");
    // Missing data and no fhirServer to fetch it from.
    let req = patient_view("ku-73f", "2023-06-15", prefetch);
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 412, "{v}");
    assert!(v["message"].as_str().unwrap().contains("conditions"), "{v}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_400() {
    let h = start().await;
    let (s, _) = h
        .call(
            PV,
            &json!({"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "p"}}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = h
        .call(
            PV,
            &json!({"hook": "patient-view", "context": {"patientId": "p"}}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = h
        .call(
            OSIGN,
            &json!({"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "p"}}),
        )
        .await;
    assert_eq!(s, 400, "draftOrders required");
    let (s, _) = h.call("/cds-services/nope", &json!({})).await;
    assert_eq!(s, 404);
    h.server.shutdown().await;
}

fn example7() -> Vec<Value> {
    bundle_resources(&read_json(
        workspace().join("examples/example-7-dmab-due-renal.json"),
    ))
}

fn order_request(
    hook: &str,
    patient: &str,
    as_of: &str,
    record: &[Value],
    drafts: Vec<Value>,
) -> Value {
    let entry: Vec<Value> = drafts.into_iter().map(|r| json!({"resource": r})).collect();
    let selections: Vec<String> = entry
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap_or("")
            )
        })
        .collect();
    let mut ctx = json!({"userId": "PractitionerRole/123", "patientId": patient,
        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": entry}});
    if hook == "order-select" {
        ctx["selections"] = json!(selections);
    }
    json!({"hook": hook, "hookInstance": "f3b4", "context": ctx, "prefetch": prefetch_from(record),
           "extension": {"osteoguard.asOf": as_of}})
}

/// A zoledronic-acid draft with eGFR < 35 (no creatinine, so no CrCl) gets a critical card
/// whose suggestions delete that draft or replace it.
#[tokio::test]
async fn order_sign_zoledronate_with_low_egfr_is_critical_with_delete() {
    let h = start().await;
    let mut record = example7();
    let mut zol = record
        .iter()
        .find(|r| r["id"] == "ex7-zoledronate-order")
        .unwrap()
        .clone();
    record.retain(|r| r["id"] != "ex7-zoledronate-order" && r["id"] != "ex7-creatinine");
    let mut egfr = example7()
        .into_iter()
        .find(|r| r["id"] == "ex7-creatinine")
        .unwrap();
    egfr["id"] = json!("ex7-egfr");
    egfr["code"] = json!({"coding": [{"system": "http://loinc.org", "code": "33914-3",
        "display": "Glomerular filtration rate/1.73 sq M.predicted"}]});
    egfr["valueQuantity"] = json!({"value": 28, "unit": "mL/min/{1.73_m2}", "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"});
    record.push(egfr);
    zol["status"] = json!("draft");
    zol["id"] = json!("draft-zol");
    zol.as_object_mut().unwrap().remove("authoredOn");
    for hook in ["order-sign", "order-select"] {
        let path = if hook == "order-sign" { OSIGN } else { OSEL };
        let (s, v) = h
            .call(
                path,
                &order_request(hook, "example-7", "2024-09-20", &record, vec![zol.clone()]),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        check_response(&v).unwrap();
        let card = find_card(&v, "zoledronate-renal-contraindication")
            .unwrap_or_else(|| panic!("{hook}: cards {:?}", card_codes(&v)));
        assert_eq!(card["indicator"], "critical");
        let sugg = card["suggestions"].as_array().unwrap();
        assert!(
            sugg.iter().all(|s| s["actions"][0]["type"] == "delete"
                && s["actions"][0]["resourceId"] == "MedicationRequest/draft-zol"),
            "{card}"
        );
        assert!(
            sugg.iter().any(|s| s["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["type"] == "create")),
            "alternative offered"
        );
        assert_eq!(card["selectionBehavior"], "at-most-one");
    }
    h.server.shutdown().await;
}

/// A glucocorticoid order that brings the patient to ≥ 2.5 mg/day for ≥ 3 months gets the
/// bone-protection card (and fracture-risk assessment due).
#[tokio::test]
async fn order_select_long_glucocorticoid_course_gets_bone_protection() {
    let h = start().await;
    let record = example7();
    let pred = json!({"resourceType": "MedicationRequest", "id": "draft-pred", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "198145", "display": "prednisone 10 MG Oral Tablet"}]},
        "subject": {"reference": "Patient/example-7"},
        "dosageInstruction": [{"text": "10 mg daily for 6 months",
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]},
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                "boundsPeriod": {"start": "2024-09-20", "end": "2025-03-20"}}},
            "doseAndRate": [{"doseQuantity": {"value": 10, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}]});
    let (s, v) = h
        .call(
            OSEL,
            &order_request(
                "order-select",
                "example-7",
                "2024-09-20",
                &record,
                vec![pred],
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    let codes = card_codes(&v);
    assert!(
        codes.contains(&"gc-bone-protection".to_string()),
        "{codes:?}"
    );
    let card = find_card(&v, "gc-bone-protection").unwrap();
    // Issue 17, indicator by consequence: a moderate finding is `info` (was `warning`).
    assert_eq!(card["indicator"], "info");
    let resources: Vec<&Value> = card["suggestions"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["resource"])
        .collect();
    assert!(resources
        .iter()
        .any(|r| r["medicationCodeableConcept"]["coding"][0]["code"] == "2418"));
    // Findings the patient already had before the order are not repeated at order-select.
    assert!(
        !codes.contains(&"denosumab-due-soon".to_string()),
        "{codes:?}"
    );
    h.server.shutdown().await;
}

/// Stopping denosumab (a draft that sets it to stopped) gets the transition card, and at
/// order-sign an overdue, un-renewed denosumab is raised again.
#[tokio::test]
async fn stopping_or_not_renewing_denosumab_gets_the_transition_card() {
    let h = start().await;
    let seed = seed_resources();
    let stop = json!({"resourceType": "MedicationRequest", "id": "dmab-order", "status": "stopped", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "993449", "display": "denosumab"}]},
        "subject": {"reference": "Patient/ku-73f"}, "authoredOn": "2022-12-01"});
    let (s, v) = h
        .call(
            OSIGN,
            &order_request("order-sign", "ku-73f", "2022-12-01", &seed, vec![stop]),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    let card = find_card(&v, "denosumab-discontinuation-without-transition")
        .unwrap_or_else(|| panic!("cards {:?}", card_codes(&v)));
    assert_eq!(card["indicator"], "critical");
    assert!(card["extension"]["org.osteoguard.resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "MedicationRequest/dmab-order"));
    // The seed has no renal value in the 30 days before 2022-12-01: renal function is unknown,
    // so the order-time card never tells the clinician to give zoledronic acid (knowledge.md §8,
    // issue 15); it asks for creatinine first and still offers the alternatives.
    assert!(!offers_zoledronate(card), "{card}");
    assert!(!card["detail"]
        .as_str()
        .unwrap()
        .contains("give zoledronic acid"));
    assert_eq!(
        card["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"],
        "2160-0"
    );

    // Not renewed: an unrelated order at 2023-06-15 still shows the transition card at sign time.
    let amox = read_json(shared_data().join("cds-hooks/context-example-1.json"))["context"]
        ["draftOrders"]["entry"][0]["resource"]
        .clone();
    let (s, v) = h
        .call(
            OSIGN,
            &order_request("order-sign", "ku-73f", "2023-06-15", &seed, vec![amox]),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        find_card(&v, "denosumab-discontinuation-without-transition")
            .map(|c| c["indicator"].clone()),
        Some(json!("critical")),
        "{:?}",
        card_codes(&v)
    );
    h.server.shutdown().await;
}

#[tokio::test]
async fn feedback_is_persisted_idempotent_and_reported() {
    let h = start().await;
    let (_, v) = h
        .call(
            PV,
            &patient_view("ku-73f", "2023-06-15", prefetch_from(&seed_resources())),
        )
        .await;
    let dir = shared_data().join("cds-hooks");
    let fb_path = "/cds-services/osteoguard-patient-view/feedback";
    for f in [
        "feedback-accepted.json",
        "feedback-overridden.json",
        "feedback-overridden-with-reason.json",
    ] {
        let (s, b) = h.call(fb_path, &read_json(dir.join(f))).await;
        assert_eq!(s, 200, "{f}: {b}");
    }
    // Feedback on one of our own cards, accepted, then the same post again.
    let mut ours = json!({"feedback": []});
    if let Some(card) = v["cards"].as_array().and_then(|c| c.first()) {
        ours["feedback"] = json!([{"card": card["uuid"], "outcome": "overridden",
            "overrideReason": {"reason": {"system": "http://osteoguard.org/fhir/CodeSystem/override-reason", "code": "patient-declined"},
                               "userComment": "declined infusion"},
            "outcomeTimestamp": "2023-06-15T10:00:00Z"}]);
    }
    let (_, first) = h.call(fb_path, &ours).await;
    let (s, again) = h.call(fb_path, &ours).await;
    assert_eq!(s, 200);
    assert_eq!(
        again["stored"], 0,
        "repeat is idempotent: {first} / {again}"
    );
    let (s, again) = h
        .call(fb_path, &read_json(dir.join("feedback-accepted.json")))
        .await;
    assert_eq!((s, again["stored"].clone()), (200, json!(0)));
    // Invalid feedback is a 400.
    let (s, _) = h.call(fb_path, &json!({"feedback": [{"card": "x", "outcome": "maybe", "outcomeTimestamp": "2020-01-01T00:00:00Z"}]})).await;
    assert_eq!(s, 400);

    let conn = rusqlite::Connection::open(h.db()).unwrap();
    let (n, comment): (i64, Option<String>) = conn
        .query_row(
            "SELECT COUNT(*), MAX(user_comment) FROM feedback",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let expected_ours = ours["feedback"].as_array().unwrap().len() as i64;
    assert_eq!(n, 3 + expected_ours);
    assert!(comment.is_some());
    let row: (String, String, String) = conn
        .query_row("SELECT outcome, accepted_suggestions, client FROM feedback WHERE card_uuid = '4e0a3a1e-3283-4575-ab82-028d55fe2719'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert_eq!(row.0, "accepted");
    assert!(row.1.contains("e56e1945-20b3-4393-8503-a1a20fd73152"));
    assert!(row.2.starts_with(ISS));

    let store = osteoguard_server::store::Store::open(&h.db()).unwrap();
    let report = store.report().unwrap();
    let text = osteoguard_server::render_report(&report);
    assert!(text.contains("(unknown card)"), "{text}");
    if expected_ours > 0 {
        let code = v["cards"][0]["extension"]["org.osteoguard.finding"]["code"]
            .as_str()
            .unwrap();
        let row = report.iter().find(|r| r.finding_code == code).unwrap();
        assert_eq!(row.override_rate, Some(1.0));
        assert!(text.contains("patient-declined"));
    }
    h.server.shutdown().await;
}

#[tokio::test]
async fn slow_requests_time_out_and_shutdown_is_graceful() {
    let fhir = start_fhir(fhir_corpus(), 50).await;
    // Per-request timeout shorter than the slow FHIR server.
    let h = start_with(|c| {
        c.request_timeout_ms = 500;
        c.fhir_timeout_ms = 5000;
    })
    .await;
    let mut prefetch = prefetch_from(&seed_resources());
    prefetch["conditions"] = Value::Null;
    let mut req = with_fhir(
        patient_view("ku-73f", "2023-06-15", prefetch.clone()),
        &fhir,
    );
    req["fhirServer"] = json!(fhir.url("slow"));
    let t = h.keys.token();
    let r = h
        .http
        .post(h.url(PV))
        .bearer_auth(t)
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 408);
    h.server.shutdown().await;

    // Graceful shutdown: an in-flight request (waiting on the slow server) still completes.
    let h = start_with(|c| c.fhir_timeout_ms = 5000).await;
    let t = h.keys.token();
    let pending = tokio::spawn({
        let (http, url) = (h.http.clone(), h.url(PV));
        async move {
            http.post(url)
                .bearer_auth(t)
                .json(&req)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let addr = h.server.addr;
    h.server.shutdown().await;
    assert_eq!(pending.await.unwrap().unwrap(), 200);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

/// Logs at `info` name the service and outcome but no patient data.
#[tokio::test]
async fn info_logs_carry_no_patient_data() {
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _g = tracing::subscriber::set_default(sub);
    let h = start().await;
    let (s, _) = h
        .call(
            PV,
            &patient_view("ku-73f", "2023-06-15", prefetch_from(&seed_resources())),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = h.call(PV, &json!({"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "ku-73f"}})).await;
    assert_eq!(s, 412);
    h.server.shutdown().await;
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("hook answered"), "{logs}");
    for secret in ["ku-73f", "1950-03-15", "dmab-6", "Patient/"] {
        assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
    }
}

#[tokio::test]
async fn no_card_suggests_zoledronate_when_renal_function_forbids_it() {
    // Example 7: denosumab due soon, zoledronate planned, CrCl 21.6 mL/min (< 35).
    let h = start().await;
    let req = patient_view("example-7", "2024-09-20", prefetch_from(&example7()));
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    assert!(find_card(&v, "zoledronate-renal-contraindication").is_some());
    let due = find_card(&v, "denosumab-due-soon")
        .unwrap_or_else(|| panic!("no due-soon card; cards: {:?}", card_codes(&v)));
    for card in v["cards"].as_array().unwrap() {
        if card["extension"]["org.osteoguard.finding"]["code"]
            == "zoledronate-renal-contraindication"
        {
            continue;
        }
        for sug in card["suggestions"].as_array().into_iter().flatten() {
            for a in sug["actions"].as_array().into_iter().flatten() {
                let creates_zol = a["type"] == "create"
                    && a["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "77655";
                assert!(!creates_zol, "zoledronate offered despite CrCl < 35: {sug}");
            }
        }
    }
    assert!(due["suggestions"].as_array().is_some_and(|s| !s.is_empty()));
    h.server.shutdown().await;
}

fn offers_zoledronate(card: &Value) -> bool {
    card["suggestions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["actions"].as_array().into_iter().flatten())
        .any(|a| {
            a["type"] == "create"
                && a["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "77655"
        })
}

/// Issue 15 / knowledge.md §9 clause (c) and §8, through the real HTTP service: order-sign
/// stopping denosumab 30 days after the last dose (before any dose is late). The card comes
/// from the core's what-if assessment; with CrCl < 35 or unknown renal function it never says
/// "give zoledronic acid" nor offers a zoledronic-acid order; with CrCl ≥ 35 it does.
#[tokio::test]
async fn order_sign_stopping_denosumab_follows_the_renal_verdict() {
    let h = start().await;
    let stop = json!({"resourceType": "MedicationRequest", "id": "dmab-stop", "status": "stopped", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "993449", "display": "denosumab"}]},
        "subject": {"reference": "Patient/ku-73f"}});
    let lab = |id: &str, loinc: &str, value: f64, unit: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "subject": {"reference": "Patient/ku-73f"}, "effectiveDateTime": "2022-11-20",
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    };
    // Seed: last denosumab 2022-10-27 (6 doses); as-of 2022-11-26 = day 30. Age 72, female.
    let call = |creatinine: Option<f64>| {
        let mut record = seed_resources();
        if let Some(c) = creatinine {
            record.push(lab("crea", "2160-0", c, "mg/dL"));
            record.push(lab("weight", "29463-7", 50.0, "kg"));
        }
        order_request(
            "order-sign",
            "ku-73f",
            "2022-11-26",
            &record,
            vec![stop.clone()],
        )
    };
    let card_of = |v: &Value| -> Value {
        find_card(v, "denosumab-discontinuation-without-transition")
            .cloned()
            .unwrap_or_else(|| panic!("no stop card: {:?}", card_codes(v)))
    };
    let recommends_giving = |card: &Value| {
        card["detail"]
            .as_str()
            .unwrap()
            .contains("give zoledronic acid")
    };

    // CrCl ≈ 16 mL/min (creatinine 2.5 mg/dL): contraindicated.
    let (s, v) = h.call(OSIGN, &call(Some(2.5))).await;
    assert_eq!(s, 200, "{v}");
    check_response(&v).unwrap();
    let card = card_of(&v);
    assert_eq!(card["indicator"], "critical", "6 doses: critical");
    assert!(!recommends_giving(&card), "{card}");
    assert!(!offers_zoledronate(&card), "{card}");
    assert!(
        find_card(&v, "zoledronate-renal-contraindication").is_some(),
        "{:?}",
        card_codes(&v)
    );
    for c in v["cards"].as_array().unwrap() {
        if c["extension"]["org.osteoguard.finding"]["code"] != "zoledronate-renal-contraindication"
        {
            assert!(!offers_zoledronate(c), "{c}");
        }
    }

    // Renal function unknown: no creatinine or eGFR.
    let (s, v) = h.call(OSIGN, &call(None)).await;
    assert_eq!(s, 200, "{v}");
    let card = card_of(&v);
    assert!(!recommends_giving(&card), "{card}");
    assert!(!offers_zoledronate(&card), "{card}");
    assert!(card["detail"]
        .as_str()
        .unwrap()
        .contains("renal function is unknown"));

    // CrCl ≈ 50 mL/min: the ECTS plan with zoledronic acid, due 2023-04-27 (D_last + 182).
    let (s, v) = h.call(OSIGN, &call(Some(0.8))).await;
    assert_eq!(s, 200, "{v}");
    let card = card_of(&v);
    assert!(recommends_giving(&card), "{card}");
    assert!(offers_zoledronate(&card), "{card}");
    assert!(card["detail"].as_str().unwrap().contains("2023-04-27"));
    h.server.shutdown().await;
}

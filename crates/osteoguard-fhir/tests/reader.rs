//! Reader behaviour on hand-written inputs: references, units, dates, shapes, robustness.

use chrono::NaiveDate;
use osteoguard_core::model::*;
use osteoguard_fhir::{
    read_json_bytes, read_ndjson_bytes, read_resources, Disposition, ReadError, ReadOutput,
};
use serde_json::{json, Value};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
}

fn bundle(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": entries.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

fn patient() -> Value {
    json!({"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1950"})
}

fn read(v: Value) -> ReadOutput {
    read_resources(vec![v])
}

fn issues(out: &ReadOutput) -> Vec<(String, String, String)> {
    out.patients
        .iter()
        .flat_map(|p| p.issues.iter())
        .chain(out.unattached.iter())
        .map(|i| (i.reference.clone(), i.field.clone(), i.problem.clone()))
        .collect()
}

const RX: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

fn pred_request(id: &str, dosage: Value) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": "8640"}]},
        "subject": {"reference": "Patient/p"}, "authoredOn": "2024-01-01",
        "dosageInstruction": [dosage]})
}

#[test]
fn unknown_unit_is_named() {
    let out = read(bundle(vec![
        patient(),
        pred_request(
            "abc",
            json!({"doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tabs"}}]}),
        ),
    ]));
    let m = &out.patients[0].record.medications[0];
    assert_eq!(m.dosages[0].dose_mg, None);
    assert!(issues(&out).contains(&(
        "MedicationRequest/abc".into(),
        "dosageInstruction[0].doseAndRate[0].doseQuantity.unit".into(),
        "unknown unit \"tabs\"".into()
    )));
    // Partial birth date: first day, with a note.
    assert_eq!(
        out.patients[0].record.patient.birth_date,
        Some(d("1950-01-01"))
    );
    assert!(issues(&out).iter().any(|i| i.1 == "birthDate"));
}

#[test]
fn timing_forms() {
    let cases = [
        (
            json!({"timing": {"code": {"coding": [{"code": "BID"}]}}, "doseAndRate": [{"doseQuantity": {"value": 5, "code": "mg"}}]}),
            Some(2.0),
            Some(5.0),
        ),
        (
            json!({"timing": {"repeat": {"when": ["MORN", "NIGHT"]}}, "doseAndRate": [{"doseQuantity": {"value": 0.5, "code": "g"}}]}),
            Some(2.0),
            Some(500.0),
        ),
        (
            json!({"timing": {"repeat": {"frequency": 1, "frequencyMax": 3, "period": 1, "periodUnit": "d"}}, "doseAndRate": [{"doseRange": {"low": {"value": 5, "code": "mg"}, "high": {"value": 10, "code": "mg"}}}]}),
            Some(3.0),
            Some(10.0),
        ),
        (
            json!({"timing": {"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}, "doseAndRate": [{"doseQuantity": {"value": 16000, "code": "ug"}}]}),
            Some(0.5),
            Some(16.0),
        ),
        (
            json!({"timing": {"repeat": {"frequency": 2, "period": 12, "periodUnit": "h"}}}),
            Some(4.0),
            None,
        ),
        (
            json!({"timing": {"code": {"coding": [{"code": "Q2D"}]}}}),
            Some(0.5),
            None,
        ),
        (
            json!({"timing": {"code": {"coding": [{"code": "WK"}]}}}),
            Some(1.0 / 7.0),
            None,
        ),
        (json!({}), None, None),
    ];
    for (i, (dosage, per_day, dose)) in cases.into_iter().enumerate() {
        let out = read(bundle(vec![patient(), pred_request("x", dosage)]));
        let x = &out.patients[0].record.medications[0].dosages[0];
        assert_eq!(x.per_day, per_day, "case {i}");
        assert_eq!(x.dose_mg, dose, "case {i}");
    }
}

#[test]
fn bounds_as_needed_route_validity() {
    let mut r = pred_request(
        "x",
        json!({"asNeededBoolean": true, "route": {"text": "by mouth"},
        "timing": {"repeat": {"boundsDuration": {"value": 2, "code": "wk"}, "frequency": 1, "period": 1, "periodUnit": "d"}}}),
    );
    r["dispenseRequest"] = json!({"validityPeriod": {"start": "2024-01-01", "end": "2024-03"}, "expectedSupplyDuration": {"value": 30, "code": "d"}});
    let out = read(bundle(vec![patient(), r]));
    let m = &out.patients[0].record.medications[0];
    assert!(m.dosages[0].as_needed);
    assert_eq!(m.dosages[0].bounds_duration_days, Some(14));
    assert_eq!(m.dosages[0].route, Route::Oral);
    // Partial end date: the last day of the month.
    assert_eq!(
        m.validity,
        Some(Period::between(d("2024-01-01"), d("2024-03-31")))
    );
    assert_eq!(m.expected_supply_days, Some(30));
    let iv = read(bundle(vec![
        patient(),
        pred_request(
            "y",
            json!({"route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]}}),
        ),
    ]));
    assert_eq!(
        iv.patients[0].record.medications[0].route,
        Route::Intravenous
    );
}

#[test]
fn medication_references_and_strength() {
    let med = json!({"resourceType": "Medication", "id": "m1",
        "code": {"coding": [{"system": RX, "code": "6902"}]},
        "ingredient": [{"itemCodeableConcept": {"coding": [{"system": RX, "code": "6902"}]},
            "strength": {"numerator": {"value": 4, "code": "mg"}, "denominator": {"value": 1, "code": "{tbl}"}}}]});
    let req = |id: &str, reference: &str| {
        json!({"resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
            "medicationReference": {"reference": reference},
            "subject": {"reference": "urn:uuid:11111111-0000-0000-0000-000000000001"},
            "authoredOn": "2024-01-01",
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablet", "code": "{tbl}"}}],
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]})
    };
    let mut contained = req("c", "#m1");
    contained["contained"] = json!([med.clone()]);
    let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-0000-0000-0000-000000000001", "resource": {"resourceType": "Patient", "id": "p1"}},
        {"fullUrl": "http://x.org/fhir/Medication/m1", "resource": med},
        {"resource": req("a", "Medication/m1")},
        {"resource": req("b", "http://x.org/fhir/Medication/m1")},
        {"resource": contained},
        {"resource": req("missing", "Medication/nope")}
    ]});
    let out = read(b);
    assert_eq!(out.patients.len(), 1);
    let p = &out.patients[0];
    assert_eq!(p.id, "p1");
    let doses: Vec<(String, Option<f64>)> = p
        .record
        .medications
        .iter()
        .map(|m| (m.source.to_string(), m.dosages[0].dose_mg))
        .collect();
    assert_eq!(
        doses,
        vec![
            ("MedicationRequest/a".to_string(), Some(8.0)),
            ("MedicationRequest/b".to_string(), Some(8.0)),
            ("MedicationRequest/c".to_string(), Some(8.0)),
        ]
    );
    assert_eq!(p.stats.by_type["MedicationRequest"].not_understood, 1);
    assert!(issues(&out)
        .iter()
        .any(|i| i.0 == "MedicationRequest/missing" && i.1 == "medicationReference"));
    assert_eq!(out.stats.by_type["Medication"].used, 1);
}

#[test]
fn observation_units_and_shapes() {
    let obs = |id: &str, code: &str, value: Value, extra: Value| {
        let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2024-05-01T23:30:00-05:00",
            "valueQuantity": value});
        if let (Some(o), Some(e)) = (o.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        o
    };
    let out = read(bundle(vec![
        patient(),
        obs(
            "cr",
            "2160-0",
            json!({"value": 88.4, "code": "umol/L"}),
            json!({"referenceRange": [{"low": {"value": 44.2, "code": "umol/L"}}]}),
        ),
        obs(
            "ca",
            "17861-6",
            json!({"value": 2.5, "code": "mmol/L"}),
            json!({}),
        ),
        obs(
            "vd",
            "14635-7",
            json!({"value": 49.92, "code": "nmol/L"}),
            json!({}),
        ),
        obs(
            "wt",
            "29463-7",
            json!({"value": 100, "code": "[lb_av]"}),
            json!({}),
        ),
        obs(
            "bad",
            "2160-0",
            json!({"value": 1.0, "code": "furlong"}),
            json!({}),
        ),
        obs(
            "egfr",
            "98979-8",
            json!({"value": 25, "code": "mL/min/{1.73_m2}"}),
            json!({}),
        ),
        obs(
            "hip",
            "38263-0",
            json!({"value": -2.1, "code": "{T-score}"}),
            json!({"bodySite": [{"text": "femoral neck"}]}),
        ),
        json!({"resourceType": "Observation", "id": "frax", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "90265-0"}]},
            "subject": {"reference": "Patient/p"}, "issued": "2024-05-02T08:00:00Z",
            "valueQuantity": {"value": 0.35, "code": "1"},
            "extension": [{"url": "http://osteoguard.org/fhir/StructureDefinition/frax-gc-adjusted", "valueBoolean": true}]}),
        json!({"resourceType": "Observation", "id": "edema-nolevel", "status": "final",
            "code": {"coding": [{"system": "http://osteoguard.org/fhir/CodeSystem/osteoguard", "code": "vertebral-edema"}]},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2024-05-01", "valueBoolean": true,
            "bodySite": {"text": "lumbar"}}),
        json!({"resourceType": "Observation", "id": "genant", "status": "final",
            "code": {"coding": [{"system": "http://osteoguard.org/fhir/CodeSystem/osteoguard", "code": "genant-grade"}]},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2024-05-01", "valueInteger": 2,
            "bodySite": {"text": "T 12"}}),
        json!({"resourceType": "Observation", "id": "bp", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": "Patient/p"}}),
    ]));
    let p = &out.patients[0];
    let get = |id: &str| {
        p.record
            .observations
            .iter()
            .find(|o| o.source.as_str() == format!("Observation/{id}"))
    };
    let v = |id: &str| get(id).and_then(|o| o.value);
    assert!(v("cr").is_some_and(|x| (x - 1.0).abs() < 1e-9));
    assert!(get("cr")
        .and_then(|o| o.reference_low)
        .is_some_and(|x| (x - 0.5).abs() < 1e-9));
    assert!(v("ca").is_some_and(|x| (x - 10.02).abs() < 1e-9));
    assert!(v("vd").is_some_and(|x| (x - 20.0).abs() < 1e-9));
    assert!(v("wt").is_some_and(|x| (x - 45.359237).abs() < 1e-9));
    assert_eq!(v("bad"), None);
    assert_eq!(v("egfr"), Some(25.0));
    // Local date as written, time kept.
    assert_eq!(
        get("egfr").and_then(|o| o.effective).map(|t| t.date()),
        Some(d("2024-05-01"))
    );
    // Observation.bodySite as a list is the wrong R4 shape: noted, not used.
    assert_eq!(
        get("hip").map(|o| o.kind),
        Some(ObservationKind::TScore(DxaSite::FemoralNeck))
    );
    assert!(issues(&out)
        .iter()
        .any(|i| i.0 == "Observation/hip" && i.1 == "bodySite"));
    let f = get("frax");
    assert_eq!(f.and_then(|o| o.value), Some(35.0));
    assert_eq!(f.map(|o| o.frax_gc_adjusted), Some(true));
    assert_eq!(f.and_then(|o| o.visible), Some(d("2024-05-02")));
    assert!(get("edema-nolevel").is_none());
    assert_eq!(
        get("genant").and_then(|o| o.level),
        Some(VertebralLevel::T12)
    );
    assert_eq!(v("genant"), Some(2.0));
    assert_eq!(p.stats.by_type["Observation"].not_understood, 1);
    assert_eq!(p.stats.by_type["Observation"].ignored, 1);
    assert!(issues(&out)
        .iter()
        .any(|i| i.0 == "Observation/edema-nolevel"));
    assert!(issues(&out).iter().any(|i| i.0 == "Observation/bad"
        && i.1 == "valueQuantity.unit"
        && i.2.contains("\"furlong\"")));
}

#[test]
fn conditions_sites_dates_and_shapes() {
    let c = |id: &str, system: &str, code: &str, extra: Value| {
        let mut o = json!({"resourceType": "Condition", "id": id,
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": "Patient/p"}});
        if let (Some(o), Some(e)) = (o.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        o
    };
    const ICD: &str = "http://hl7.org/fhir/sid/icd-10-cm";
    const SCT: &str = "http://snomed.info/sct";
    let out = read(bundle(vec![
        patient(),
        c(
            "pair",
            ICD,
            "S22.050A",
            json!({"bodySite": [{"text": "T6"}], "onsetDateTime": "2023-07"}),
        ),
        c(
            "sub",
            ICD,
            "S32.010D",
            json!({"recordedDate": "2023-02-30"}),
        ),
        c(
            "hip",
            SCT,
            "443165006",
            json!({"bodySite": [{"text": "Left hip"}]}),
        ),
        c(
            "vert",
            SCT,
            "443165006",
            json!({"bodySite": [{"coding": [{"system": SCT, "code": "123"}]}]}),
        ),
        c(
            "shape",
            ICD,
            "M80.08XA",
            json!({"bodySite": {"text": "L1"}, "onsetString": "last summer"}),
        ),
        c(
            "trauma",
            ICD,
            "S72.001A",
            json!({"verificationStatus": {"coding": [{"code": "refuted"}]},
            "extension": [{"url": "http://osteoguard.org/fhir/StructureDefinition/fracture-mechanism", "valueCode": "traumatic"}],
            "onsetPeriod": {"start": "2020", "end": "2020-06-15"}}),
        ),
        c("opn", SCT, "312894000", json!({})),
        c("other", SCT, "38341003", json!({})),
    ]));
    let p = &out.patients[0];
    let get = |id: &str| {
        p.record
            .conditions
            .iter()
            .find(|o| o.source.as_str() == format!("Condition/{id}"))
    };
    use VertebralLevel::*;
    let vert = |l| ConditionKind::Fracture(FractureSite::Vertebral(l));
    let pair = get("pair");
    assert_eq!(
        pair.map(|c| c.kind),
        Some(vert(VertebralLocation::Level(T6)))
    );
    assert_eq!(
        pair.and_then(|c| c.onset),
        Some(Period::between(d("2023-07-01"), d("2023-07-31")))
    );
    assert_eq!(pair.and_then(|c| c.visible), Some(d("2023-07-01")));
    let sub = get("sub");
    assert_eq!(sub.map(|c| c.subsequent_encounter), Some(true));
    assert_eq!(
        sub.map(|c| c.kind),
        Some(vert(VertebralLocation::Level(L1)))
    );
    assert_eq!(sub.and_then(|c| c.recorded), None);
    assert!(issues(&out)
        .iter()
        .any(|i| i.0 == "Condition/sub" && i.1 == "recordedDate" && i.2.contains("impossible")));
    assert_eq!(
        get("hip").map(|c| c.kind),
        Some(ConditionKind::Fracture(FractureSite::Hip))
    );
    assert_eq!(
        get("vert").map(|c| c.kind),
        Some(vert(VertebralLocation::Unspecified))
    );
    assert_eq!(
        get("shape").map(|c| c.kind),
        Some(vert(VertebralLocation::Unspecified))
    );
    assert!(issues(&out)
        .iter()
        .any(|i| i.0 == "Condition/shape" && i.1 == "bodySite"));
    assert!(issues(&out)
        .iter()
        .any(|i| i.0 == "Condition/shape" && i.1 == "onsetString"));
    let t = get("trauma");
    assert_eq!(
        t.map(|c| c.mechanism),
        Some(Some(FractureMechanism::Traumatic))
    );
    assert_eq!(t.map(|c| c.is_valid()), Some(false));
    assert_eq!(
        t.and_then(|c| c.onset),
        Some(Period::between(d("2020-01-01"), d("2020-06-15")))
    );
    assert_eq!(get("opn").map(|c| c.kind), Some(ConditionKind::Osteopenia));
    assert!(get("other").is_none());
    assert_eq!(p.stats.by_type["Condition"].ignored, 1);
}

#[test]
fn procedures() {
    let pr = |id: &str, system: &str, code: &str, extra: Value| {
        let mut o = json!({"resourceType": "Procedure", "id": id, "status": "completed",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": "https://ehr.example/fhir/Patient/p/_history/3"}});
        if let (Some(o), Some(e)) = (o.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        o
    };
    const CPT: &str = "http://www.ama-assn.org/go/cpt";
    let out = read(bundle(vec![
        patient(),
        pr(
            "kp",
            CPT,
            "22514",
            json!({"bodySite": [{"text": "L2"}, {"text": "l 3"}], "performedPeriod": {"start": "2023-01-01T10:00:00Z", "end": "2023-01-02T11:00:00Z"}}),
        ),
        pr(
            "dxa",
            "http://snomed.info/sct",
            "312681000",
            json!({"performedDateTime": "2015-06-09T04:46:42+00:00"}),
        ),
        pr("mri", CPT, "72146", json!({"performedString": "yesterday"})),
    ]));
    let p = &out.patients[0];
    let get = |id: &str| {
        p.record
            .procedures
            .iter()
            .find(|o| o.source.as_str() == format!("Procedure/{id}"))
    };
    let kp = get("kp");
    assert_eq!(kp.map(|x| x.kind), Some(ProcedureKind::Kyphoplasty));
    assert_eq!(
        kp.map(|x| x.levels.clone()),
        Some(vec![VertebralLevel::L2, VertebralLevel::L3])
    );
    assert_eq!(kp.and_then(|x| x.date()), Some(d("2023-01-02")));
    assert_eq!(get("dxa").map(|x| x.kind), Some(ProcedureKind::Dxa));
    assert_eq!(get("mri").and_then(|x| x.performed), None);
}

#[test]
fn cds_hooks_prefetch_values() {
    let out = read_resources(vec![
        Value::Null,
        json!({"resourceType": "OperationOutcome", "issue": []}),
        json!({"resourceType": "Patient", "id": "q", "gender": "male"}),
        json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": pred_request("r1", json!({}))},
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}}
        ]}),
        json!("not a resource"),
    ]);
    // Prednisone refers to Patient/p, which is absent: placeholder with a note.
    let ids: Vec<&str> = out.patients.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, vec!["p", "q"]);
    assert_eq!(out.patients[0].record.patient.sex, Sex::Unknown);
    assert!(out.patients[0]
        .issues
        .iter()
        .any(|i| i.reference == "Patient/p"));
    assert_eq!(out.stats.by_type["OperationOutcome"].ignored, 2);
    assert!(out.unattached.iter().any(|i| i.reference == "resources[4]"));
}

#[test]
fn request_with_prefetch_and_draft_orders() {
    let req = json!({"hook": "order-sign", "context": {"patientId": "p", "draftOrders": bundle(vec![pred_request("d", json!({}))])},
        "prefetch": {"patient": patient(), "nothing": null}});
    let bytes = serde_json::to_vec(&req).unwrap_or_default();
    let out = read_json_bytes(&bytes, "request.json").map_err(|e| e.to_string());
    let out = out.unwrap_or_default();
    assert_eq!(out.patients.len(), 1);
    assert_eq!(out.patients[0].record.medications.len(), 1);
    assert_eq!(out.patients[0].record.patient.sex, Sex::Female);
}

#[test]
fn ndjson_mixed_and_errors() {
    let nd = format!(
        "{}\n\n{}\r\n",
        serde_json::to_string(&patient()).unwrap_or_default(),
        serde_json::to_string(&pred_request("n", json!({}))).unwrap_or_default()
    );
    let out = read_ndjson_bytes(nd.as_bytes(), "x.ndjson").map_err(|e| e.to_string());
    assert_eq!(out.map(|o| o.patients[0].record.medications.len()), Ok(1));
    // Invalid UTF-8 on line 2 names the file and line.
    let mut bad = b"{\"resourceType\":\"Patient\",\"id\":\"a\"}\n".to_vec();
    bad.extend_from_slice(b"{\"resourceType\":\"Patient\",\"id\":\"\xff\"}\n");
    match read_ndjson_bytes(&bad, "bad.ndjson") {
        Err(ReadError::Json { location, .. }) => assert_eq!(location, "bad.ndjson:2"),
        other => panic!("{other:?}"),
    }
    match read_json_bytes(
        b"{\"resourceType\": \"Patient\", \"id\": \"\xc3\"}",
        "bad.json",
    ) {
        Err(ReadError::Json { location, .. }) => assert_eq!(location, "bad.json:1"),
        other => panic!("{other:?}"),
    }
    // Not FHIR.
    assert!(matches!(
        read_json_bytes(b"{\"a\": 1}", "a.json"),
        Err(ReadError::NotFhir { .. })
    ));
    assert!(matches!(
        read_json_bytes(b"[1,2", "b.json"),
        Err(ReadError::Json { .. })
    ));
}

#[test]
fn hostile_inputs_do_not_panic() {
    // Deep nesting: serde_json's recursion limit turns it into an error.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(read_json_bytes(deep.as_bytes(), "deep.json").is_err());
    // Huge numbers and odd types.
    let r = json!({"resourceType": "MedicationRequest", "id": "h", "status": 5, "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": "8640"}]},
        "subject": {"reference": "Patient/p"}, "authoredOn": 20240101,
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 1e300, "code": "mg"}}],
            "timing": {"repeat": {"frequency": 1e300, "period": 1e-300, "periodUnit": "d",
                "boundsDuration": {"value": 1e300, "code": "a"}}}}]});
    let out = read(bundle(vec![patient(), r]));
    let m = &out.patients[0].record.medications[0];
    assert_eq!(m.dosages[0].dose_mg, None);
    assert_eq!(m.dosages[0].bounds_duration_days, None);
    assert!(m.dosages[0].per_day.is_none_or(|x| x.is_finite()));
    let v = json!({"resourceType": "Observation", "id": "o", "code": "oops", "subject": "Patient/p",
        "valueQuantity": {"value": "1"}, "bodySite": 3, "component": 7});
    let out = read(v);
    assert_eq!(out.stats.total().read, 1);
    let weird = json!({"resourceType": "Condition", "id": "c", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Sé2.0"}]},
        "subject": {"reference": "Patient/p"}, "onsetDateTime": "2023-07-15T10:00:00+9"});
    let out = read(weird);
    assert_eq!(out.stats.total().read, 1);
}

#[test]
fn every_resource_has_one_disposition() {
    let out = read(bundle(vec![
        patient(),
        pred_request("a", json!({})),
        json!({"resourceType": "Encounter", "id": "e", "subject": {"reference": "Patient/p"}}),
        json!({"resourceType": "Condition", "id": "nocode", "subject": {"reference": "Patient/p"}}),
        json!({"resourceType": "Organization", "id": "o"}),
        json!({"resourceType": "Condition", "id": "orphan", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "64859006"}]}}),
    ]));
    let t = out.stats.total();
    assert_eq!(t.read, 6);
    assert_eq!((t.used, t.ignored, t.not_understood), (2, 2, 2));
    // Each NotUnderstood has an issue.
    let is = issues(&out);
    assert!(is
        .iter()
        .any(|i| i.0 == "Condition/nocode" && i.1 == "code"));
    assert!(is
        .iter()
        .any(|i| i.0 == "Condition/orphan" && i.1 == "subject"));
    let _ = Disposition::Used;
}

mod prop {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = osteoguard_fhir::read_json_bytes(&bytes, "fuzz.json");
            let _ = osteoguard_fhir::read_ndjson_bytes(&bytes, "fuzz.ndjson");
        }

        #[test]
        fn arbitrary_dates_never_panic(s in "\\PC{0,40}") {
            let _ = osteoguard_fhir::parse_fhir_datetime(&s);
            let _ = osteoguard_fhir::units::convert(
                osteoguard_core::model::ObservationKind::Calcium, "", 1.0, Some(&s));
            let _ = osteoguard_fhir::terminology::icd10cm(&s);
        }
    }
}

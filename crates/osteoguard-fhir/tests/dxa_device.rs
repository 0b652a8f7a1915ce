//! knowledge.md §6.2 (v0.10.3): a DXA Observation whose `device` references a contained Device
//! or a Device in the input is compared by that Device's manufacturer.

use chrono::NaiveDate;
use osteoguard_core::{assess, Config, FindingCode};
use osteoguard_fhir::read_resources;
use serde_json::{json, Value};

const LOINC: &str = "http://loinc.org";

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
}

fn bundle(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "collection",
        "entry": entries.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

fn patient() -> Value {
    json!({"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1950-03-15"})
}

fn device(id: &str, manufacturer: &str, model: &str) -> Value {
    json!({"resourceType": "Device", "id": id, "manufacturer": manufacturer,
        "deviceName": [{"name": model, "type": "model-name"}]})
}

/// Total hip BMD (LOINC 38261-4) on `date`; `device_ref` is the Observation's `device`.
fn hip_bmd(id: &str, date: &str, bmd: f64, device_ref: &str, contained: Option<Value>) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "38261-4"}]},
        "subject": {"reference": "Patient/p"}, "effectiveDateTime": date,
        "valueQuantity": {"value": bmd, "unit": "g/cm2", "system": "http://unitsofmeasure.org", "code": "g/cm2"},
        "device": {"reference": device_ref}});
    if let Some(c) = contained {
        o["contained"] = json!([c]);
    }
    o
}

fn item_6_and_loss(entries: Vec<Value>) -> (bool, bool, Vec<Option<String>>) {
    let out = read_resources(vec![bundle(entries)]);
    let record = &out.patients[0].record;
    let makers = record
        .observations
        .iter()
        .map(|o| o.device_manufacturer.clone())
        .collect();
    let a = assess(record, d("2023-02-01"), &Config::default());
    let item6 = a.findings.iter().any(|f| {
        f.code == FindingCode::DataInsufficient
            && f.insufficient_items.iter().any(|i| i.item == 6)
            && f.inputs_missing.iter().any(|m| m.contains("serial DXA"))
    });
    let loss = a
        .findings
        .iter()
        .any(|f| f.code == FindingCode::BmdSignificantLoss);
    (item6, loss, makers)
}

#[test]
fn contained_devices_of_different_manufacturers_are_not_compared() {
    let (item6, loss, makers) = item_6_and_loss(vec![
        patient(),
        hip_bmd(
            "dxa-1",
            "2022-01-01",
            0.800,
            "#dxa",
            Some(device("dxa", "GE Healthcare", "Lunar Prodigy")),
        ),
        hip_bmd(
            "dxa-2",
            "2023-01-01",
            0.700,
            "#dxa",
            Some(device("dxa", "Hologic", "Horizon A")),
        ),
    ]);
    assert_eq!(
        makers,
        vec![
            Some("GE Healthcare".to_string()),
            Some("Hologic".to_string())
        ]
    );
    assert!(item6, "data-insufficient item 6 expected");
    assert!(!loss, "no comparison across manufacturers");
}

#[test]
fn contained_devices_of_one_manufacturer_are_compared() {
    let (item6, loss, _) = item_6_and_loss(vec![
        patient(),
        hip_bmd(
            "dxa-1",
            "2022-01-01",
            0.800,
            "#dxa",
            Some(device("dxa", "Hologic", "Discovery")),
        ),
        hip_bmd(
            "dxa-2",
            "2023-01-01",
            0.700,
            "#dxa",
            Some(device("dxa", "Hologic", "Horizon A")),
        ),
    ]);
    assert!(!item6);
    assert!(loss, "−12.5 % at the total hip is a significant loss");
}

#[test]
fn input_devices_are_resolved_and_count_as_used() {
    let entries = vec![
        patient(),
        device("lunar", "GE Healthcare", "Lunar iDXA"),
        device("horizon", "Hologic", "Horizon A"),
        hip_bmd("dxa-1", "2022-01-01", 0.800, "Device/lunar", None),
        hip_bmd("dxa-2", "2023-01-01", 0.700, "Device/horizon", None),
    ];
    let out = read_resources(vec![bundle(entries.clone())]);
    let devices = out.stats.by_type.get("Device").map(|c| (c.read, c.used));
    assert_eq!(devices, Some((2, 2)));
    let (item6, loss, makers) = item_6_and_loss(entries);
    assert_eq!(
        makers,
        vec![
            Some("GE Healthcare".to_string()),
            Some("Hologic".to_string())
        ]
    );
    assert!(item6);
    assert!(!loss);
}

//! knowledge.md §6.2 (v0.10.3) in population screening: a DXA Observation is compared by the
//! manufacturer of the Device it references, so screening must read the export's `Device`
//! resources as `assess` does. A GE Lunar scan and a Hologic scan of the same hip are not
//! compared (data-insufficient, no bone-density loss); two scans on the same maker's devices are.

use std::collections::BTreeSet;
use std::path::Path;

use osteoguard_core::Config;
use osteoguard_screen::{run_screen, ScreenArgs};
use serde_json::{json, Value};

const AS_OF: &str = "2023-02-01";

fn device(id: &str, manufacturer: &str, model: &str) -> Value {
    json!({"resourceType": "Device", "id": id, "manufacturer": manufacturer,
        "deviceName": [{"name": model, "type": "model-name"}]})
}

/// Total hip BMD (LOINC 38261-4) of `patient` on `date`, measured on `Device/<device>`.
fn hip_bmd(id: &str, patient: &str, date: &str, bmd: f64, device: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "38261-4"}]},
        "subject": {"reference": format!("Patient/{patient}")}, "effectiveDateTime": date,
        "valueQuantity": {"value": bmd, "unit": "g/cm2", "system": "http://unitsofmeasure.org",
            "code": "g/cm2"},
        "device": {"reference": format!("Device/{device}")}})
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "gender": "female", "birthDate": "1950-03-15"})
}

fn write_ndjson(dir: &Path, name: &str, resources: &[Value]) {
    let text: String = resources.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.join(name), text).expect("write export file");
}

/// Patient `mixed`: GE then Hologic. Patient `same`: GE twice (different device records, one
/// maker). The Device file comes last in name order, after the Observations that name it.
fn export(dir: &Path) {
    write_ndjson(dir, "Patient.ndjson", &[patient("mixed"), patient("same")]);
    write_ndjson(
        dir,
        "Observation.ndjson",
        &[
            hip_bmd("m1", "mixed", "2022-01-01", 0.800, "ge-1"),
            hip_bmd("m2", "mixed", "2023-01-01", 0.700, "hologic-1"),
            hip_bmd("s1", "same", "2022-01-01", 0.800, "ge-1"),
            hip_bmd("s2", "same", "2023-01-01", 0.700, "ge-2"),
        ],
    );
    write_ndjson(
        dir,
        "ZDevice.ndjson",
        &[
            device("ge-1", "GE Healthcare", "Lunar Prodigy"),
            device("ge-2", "GE Healthcare", "Lunar iDXA"),
            device("hologic-1", "Hologic", "Horizon A"),
        ],
    );
}

/// (patient, code, severity, summary) of every finding of per-patient `assess`.
fn assess_findings(dir: &Path) -> BTreeSet<(String, String, String, String)> {
    let read = osteoguard_fhir::read_path(dir).expect("read_path");
    let mut out = BTreeSet::new();
    for p in &read.patients {
        let mut issues = p.issues.clone();
        issues.extend(read.unattached.iter().cloned());
        let a = osteoguard_core::assess_with_issues(
            &p.record,
            &issues,
            AS_OF.parse().expect("date"),
            &Config::default(),
        );
        for f in &a.findings {
            out.insert((
                p.id.clone(),
                f.code.as_str().to_string(),
                f.severity.as_str().to_string(),
                f.summary.clone(),
            ));
        }
    }
    out
}

/// The same four fields of every row of the screening worklist.
fn screen_findings(dir: &Path, out: &Path) -> BTreeSet<(String, String, String, String)> {
    let mut args = ScreenArgs::new(dir, AS_OF, out);
    args.jobs = Some(2);
    run_screen(&args).expect("screen");
    let text = std::fs::read_to_string(out.join("worklist.json")).expect("worklist.json");
    let v: Value = serde_json::from_str(&text).expect("worklist is JSON");
    let s = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_string();
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                s(r, "patientId"),
                s(r, "code"),
                s(r, "severity"),
                s(r, "summary"),
            )
        })
        .collect()
}

#[test]
fn screen_compares_dxa_devices_by_manufacturer_as_assess_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("export");
    std::fs::create_dir_all(&dir).expect("export dir");
    export(&dir);
    let want = assess_findings(&dir);
    let codes = |who: &str, set: &BTreeSet<(String, String, String, String)>| -> Vec<String> {
        set.iter()
            .filter(|k| k.0 == who)
            .map(|k| k.1.clone())
            .collect()
    };
    // What assess reads (the premise of the comparison): GE vs Hologic is not compared, two GE
    // scans are.
    assert!(
        !codes("mixed", &want).contains(&"bmd-significant-loss".to_string()),
        "{want:?}"
    );
    assert!(
        codes("mixed", &want).contains(&"data-insufficient".to_string()),
        "{want:?}"
    );
    assert!(
        codes("same", &want).contains(&"bmd-significant-loss".to_string()),
        "{want:?}"
    );
    let got = screen_findings(&dir, &tmp.path().join("out"));
    assert_eq!(got, want, "screen differs from assess");
}

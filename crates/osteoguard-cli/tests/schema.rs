//! The `osteoguard.assessment/1` contract as a JSON Schema a user can check
//! (`schemas/assessment.schema.json`, generated from the Rust types by schemars):
//!
//! * the committed schema is what the types generate now — if a type changes without the schema,
//!   the file is regenerated and the test fails (commit the new file);
//! * every assessment the command line produces here validates against it (jsonschema): the seed
//!   case at its four dates, every bundle in examples/ at its date, and every shared Synthea bundle.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared_dir() -> PathBuf {
    match std::env::var_os("OSTEOGUARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => workspace().join("../shared"),
    }
}

/// The schema the types generate, as the committed file's text.
fn generated_schema_text() -> String {
    let schema = schemars::schema_for!(osteoguard_core::Assessment);
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serialises");
    text.push('\n');
    text
}

#[test]
fn committed_schema_is_what_the_types_generate() {
    let path = workspace().join("schemas/assessment.schema.json");
    let text = generated_schema_text();
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != text {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("schemas/");
        }
        std::fs::write(&path, &text).expect("writes the schema");
        panic!(
            "{} did not match the Rust types and has been regenerated: review and commit it",
            path.display()
        );
    }
    let v: Value = serde_json::from_str(&on_disk).expect("schema is JSON");
    assert_eq!(v["title"], "Assessment");
    for field in [
        "schema",
        "patient",
        "asOf",
        "fractureRisk",
        "findings",
        "tasks",
        "dataQuality",
        "provenance",
    ] {
        assert!(
            v["properties"].get(field).is_some(),
            "the schema describes {field}"
        );
    }
}

fn assess_json(input: &Path, as_of: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_osteoguard"))
        .args(["assess", "--format", "json", "--as-of", as_of])
        .arg(input)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{} at {as_of}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn every_assessment_validates_against_the_committed_schema() {
    let path = workspace().join("schemas/assessment.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("committed schema"))
            .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");

    let mut cases: Vec<(PathBuf, &str)> = Vec::new();
    let seed = workspace().join("examples/seed-case.json");
    for date in ["2022-12-15", "2023-06-15", "2023-08-23", "2023-09-28"] {
        cases.push((seed.clone(), date));
    }
    // examples/README.md: each worked example's as-of date.
    for (file, date) in [
        ("example-5-new-gc-start.json", "2024-09-15"),
        ("example-6-very-high-dose-young.json", "2024-09-30"),
        ("example-7-dmab-due-renal.json", "2024-09-20"),
        ("example-8-ctx-elevated.json", "2024-09-10"),
        ("example-9-bmd-loss.json", "2024-10-15"),
    ] {
        cases.push((workspace().join("examples").join(file), date));
    }
    // Every bundle in examples/ is covered (a new one must be added above).
    let listed: Vec<PathBuf> = cases.iter().map(|(p, _)| p.clone()).collect();
    for e in std::fs::read_dir(workspace().join("examples")).expect("examples/") {
        let p = e.expect("entry").path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".json") && name != "patient-view-request.json" {
            assert!(listed.contains(&p), "{name} has no as-of date in this test");
        }
    }
    let synthea = shared_dir().join("data/synthea-r4-bundles");
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(&synthea)
        .unwrap_or_else(|e| panic!("{}: {e} (set OSTEOGUARD_SHARED)", synthea.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    bundles.sort();
    assert_eq!(bundles.len(), 10, "the ten shared Synthea bundles");
    for b in bundles {
        // Synthea 2.4 (2019) records: the day the snapshot was generated, and ten years earlier.
        cases.push((b.clone(), "2019-06-30"));
        cases.push((b, "2009-06-30"));
    }

    let mut failures = Vec::new();
    for (input, date) in &cases {
        let a = assess_json(input, date);
        assert_eq!(a["schema"], "osteoguard.assessment/1");
        for e in validator.iter_errors(&a) {
            failures.push(format!(
                "{} at {date}: {} at {}",
                input.display(),
                e,
                e.instance_path()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} assessments violate the schema:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The schema is not vacuous: it rejects an assessment whose contract fields have the wrong
/// types or are missing.
#[test]
fn schema_rejects_a_broken_assessment() {
    let schema: Value = serde_json::from_str(&generated_schema_text()).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let good = assess_json(&workspace().join("examples/seed-case.json"), "2023-06-15");
    assert!(validator.is_valid(&good));
    let mut wrong_type = good.clone();
    wrong_type["findings"][0]["severity"] = Value::from("catastrophic");
    assert!(!validator.is_valid(&wrong_type), "unknown severity");
    let mut missing = good.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("provenance");
    assert!(!validator.is_valid(&missing), "provenance is required");
    let mut number = good;
    number["asOf"] = Value::from(20230615);
    assert!(!validator.is_valid(&number), "asOf is a date string");
}

//! The FHIR outputs checked by a FHIR library written by others: `fhir.resources` 7.1.0
//! (Python, R4B models) parses every resource of `assess --format fhir` over the seed case at
//! its four dates and over every shared Synthea bundle, and the MeasureReport Bundles of
//! `measure` over both eCQM decks.
//!
//! The validator is a Python venv made by `scripts/fhir-validator-venv.sh` (at
//! `target/fhir-validator-venv`, or the python named by `$OSTEOGUARD_FHIR_VALIDATOR_PY`).
//! A missing validator FAILS these tests, with the command that installs it.

mod common;
use common::shared;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn validator() -> PathBuf {
    let py = match std::env::var_os("OSTEOGUARD_FHIR_VALIDATOR_PY") {
        Some(p) => PathBuf::from(p),
        None => root().join("target/fhir-validator-venv/bin/python"),
    };
    let ok = Command::new(&py)
        .args(["-c", "import fhir.resources.R4B"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the third-party FHIR validator is missing ({} cannot import fhir.resources.R4B).\n\
         Install it with:  scripts/fhir-validator-venv.sh\n\
         (or set OSTEOGUARD_FHIR_VALIDATOR_PY to a python with `pip install fhir.resources==7.1.0`)",
        py.display()
    );
    py
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fhir-validation");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

/// Runs the validator over files; returns (resources validated, its report).
fn validate(files: &[PathBuf]) -> (usize, String, bool) {
    let out = Command::new(validator())
        .arg(root().join("scripts/fhir-validate.py"))
        .args(files)
        .output()
        .expect("validator runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let n = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("validated "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (n, text, out.status.success())
}

fn run(args: &[&str], input: &Path, out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_osteoguard"))
        .args(args)
        .arg("-o")
        .arg(out)
        .arg(input)
        .output()
        .expect("runs");
    assert!(
        o.status.success(),
        "{args:?} {}: {}",
        input.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_validator_rejects_an_invalid_detected_issue() {
    // Guards against a validator that accepts anything: `critical` is not a DetectedIssue
    // severity, and `identifiedDateTime` must be a dateTime.
    let bad = tmp("bad.json");
    std::fs::write(
        &bad,
        r#"{"resourceType":"DetectedIssue","status":"final","severity":"critical","identifiedDateTime":"yesterday"}"#,
    )
    .expect("write");
    let (_, text, ok) = validate(&[bad]);
    assert!(!ok, "an invalid DetectedIssue passed: {text}");
}

#[test]
fn assess_fhir_seed_case_at_its_four_dates_is_valid_fhir() {
    let seed = root().join("examples/seed-case.json");
    let mut files = Vec::new();
    for date in ["2022-12-15", "2023-06-15", "2023-08-23", "2023-09-28"] {
        let out = tmp(&format!("seed-{date}.json"));
        run(
            &["assess", "--as-of", date, "--format", "fhir"],
            &seed,
            &out,
        );
        let bundle: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
        let types: Vec<&str> = bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["resource"]["resourceType"].as_str())
            .collect();
        assert!(types.contains(&"DetectedIssue"), "{date}: {types:?}");
        assert!(types.contains(&"RiskAssessment"), "{date}: {types:?}");
        files.push(out);
    }
    let (n, text, ok) = validate(&files);
    assert!(ok, "{text}");
    assert!(n > 4 * 3, "validated only {n} resources: {text}");
}

#[test]
fn assess_fhir_every_synthea_bundle_is_valid_fhir() {
    let Some(data) = shared() else { return };
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(data.join("synthea-r4-bundles"))
        .expect("synthea dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    inputs.sort();
    assert_eq!(inputs.len(), 10);
    let mut files = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let out = tmp(&format!("synthea-{i}.json"));
        run(
            &["assess", "--as-of", "2020-01-01", "--format", "fhir"],
            input,
            &out,
        );
        files.push(out);
    }
    let (n, text, ok) = validate(&files);
    assert!(ok, "{text}");
    assert!(n >= 10 * 3, "validated only {n} resources: {text}");
}

#[test]
fn measure_reports_of_both_decks_are_valid_fhir() {
    let Some(data) = shared() else { return };
    let tests = data.join("ecqm-qicore-2024/tests");
    let mut files = Vec::new();
    for (m, deck) in [
        ("cms249", "AppropriateDXAScansForWomenUnder65FHIR"),
        (
            "cms645",
            "BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR",
        ),
    ] {
        let out = tmp(&format!("{m}-reports.json"));
        run(&["measure", "--measure", m], &tests.join(deck), &out);
        files.push(out);
    }
    let (n, text, ok) = validate(&files);
    assert!(ok, "{text}");
    // 2 Bundles + 53 + 49 individual + 2 summary reports.
    assert_eq!(n, 2 + 53 + 49 + 2, "{text}");
}

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

/// `osteoguard screen --format fhir` of the shared Synthea cohort export into `out`; returns the
/// NDJSON file's resources.
fn screen_fhir(export: &Path, out: &Path, jobs: &str) -> Vec<serde_json::Value> {
    let _ = std::fs::remove_dir_all(out);
    let o = Command::new(env!("CARGO_BIN_EXE_osteoguard"))
        .args(["screen", "--as-of", "2020-01-01", "--format", "fhir", "-q"])
        .args(["--jobs", jobs, "--out"])
        .arg(out)
        .arg(export)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(out.join("findings.fhir.ndjson"))
        .expect("findings.fhir.ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON resource a line"))
        .collect()
}

/// The patient a screen resource is about.
fn subject(r: &serde_json::Value) -> Option<&str> {
    ["patient", "for", "subject"]
        .iter()
        .find_map(|k| r[*k]["reference"].as_str())
        .and_then(|s| s.strip_prefix("Patient/"))
}

#[test]
fn screen_fhir_of_the_synthea_cohort_is_valid_fhir_one_id_per_resource() {
    let Some(data) = shared() else { return };
    let export = data.join("synthea-r4-cohort-ndjson");
    let out = tmp("screen-cohort");
    let resources = screen_fhir(&export, &out, "2");
    let mut by_type = std::collections::BTreeMap::<&str, usize>::new();
    let mut ids = std::collections::BTreeSet::new();
    for r in &resources {
        let t = r["resourceType"].as_str().expect("resourceType");
        *by_type.entry(t).or_default() += 1;
        let id = r["id"].as_str().expect("id");
        assert!(id.len() <= 64, "{id}");
        assert!(ids.insert((t, id)), "{t}/{id} twice");
    }
    assert_eq!(resources[0]["resourceType"], "Device");
    assert_eq!(by_type.get("Device"), Some(&1), "{by_type:?}");
    // One RiskAssessment per patient of the export (114 Patient resources).
    assert_eq!(by_type.get("RiskAssessment"), Some(&114), "{by_type:?}");
    assert!(
        by_type.get("DetectedIssue").is_some_and(|n| *n > 0),
        "{by_type:?}"
    );
    assert!(by_type.get("Task").is_some_and(|n| *n > 0), "{by_type:?}");
    // Every Task's reasonReference names a DetectedIssue of the file.
    for r in resources.iter().filter(|r| r["resourceType"] == "Task") {
        if let Some(reason) = r["reasonReference"]["reference"].as_str() {
            let id = reason
                .strip_prefix("DetectedIssue/")
                .expect("a DetectedIssue");
            assert!(ids.contains(&("DetectedIssue", id)), "{reason}");
        }
    }
    let (n, text, ok) = validate(&[out.join("findings.fhir.ndjson")]);
    assert!(ok, "{text}");
    assert_eq!(n, resources.len(), "{text}");
    // The same bytes whatever the number of workers (and so of shards).
    let out4 = tmp("screen-cohort-jobs4");
    screen_fhir(&export, &out4, "4");
    assert_eq!(
        std::fs::read(out.join("findings.fhir.ndjson")).expect("read"),
        std::fs::read(out4.join("findings.fhir.ndjson")).expect("read")
    );
}

#[test]
fn screen_fhir_gives_each_patient_the_resources_of_assess_fhir() {
    let Some(data) = shared() else { return };
    let export = data.join("synthea-r4-cohort-ndjson");
    let resources = screen_fhir(&export, &tmp("screen-vs-assess"), "2");
    let device = &resources[0];
    let mut by_patient = std::collections::BTreeMap::<&str, Vec<&serde_json::Value>>::new();
    for r in &resources[1..] {
        by_patient
            .entry(subject(r).expect("every resource names its patient"))
            .or_default()
            .push(r);
    }
    // The patients with the most resources (findings and tasks), and one with none.
    let mut patients: Vec<(&str, usize)> = by_patient.iter().map(|(p, v)| (*p, v.len())).collect();
    patients.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut chosen: Vec<&str> = patients.iter().take(3).map(|p| p.0).collect();
    chosen.extend(patients.iter().rev().take(1).map(|p| p.0));
    assert!(patients[0].1 > 2, "{patients:?}");
    for pid in chosen {
        let out = tmp(&format!("assess-{pid}.json"));
        run(
            &[
                "assess",
                "--as-of",
                "2020-01-01",
                "--format",
                "fhir",
                "--patient",
                pid,
            ],
            &export,
            &out,
        );
        let bundle: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
        let mut assessed: Vec<serde_json::Value> = bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["resource"].clone())
            .collect();
        assert_eq!(&assessed[0], device, "{pid}: the Device");
        // docs/fhir-output.md: in screen's file a patient's ids are `<prefix><assess id>` (at
        // most 64 characters), the prefix `<patient id>-` when every id then fits, else `h`
        // and 16 hex digits and `-`; a Task's reasonReference follows its DetectedIssue.
        let screened: Vec<&serde_json::Value> = by_patient[pid].clone();
        assert_eq!(screened.len(), assessed.len() - 1, "patient {pid}");
        let longest = assessed[1..]
            .iter()
            .filter_map(|r| r["id"].as_str())
            .map(str::len)
            .max()
            .expect("ids");
        let first = screened[0]["id"].as_str().expect("id");
        let prefix = if pid.len() + 1 + longest <= 64 {
            format!("{pid}-")
        } else {
            let p = &first[..18];
            assert!(
                p.starts_with('h')
                    && p.ends_with('-')
                    && p[1..17].bytes().all(|b| b.is_ascii_hexdigit()),
                "{first}"
            );
            p.to_string()
        };
        let scope = |id: &str| {
            let mut s = format!("{prefix}{id}");
            s.truncate(64);
            serde_json::Value::String(s)
        };
        for r in &mut assessed[1..] {
            r["id"] = scope(r["id"].as_str().expect("id"));
            if let Some(reason) = r["reasonReference"]["reference"].as_str() {
                let di = reason
                    .strip_prefix("DetectedIssue/")
                    .expect("DetectedIssue");
                let scoped = scope(di);
                r["reasonReference"]["reference"] = serde_json::Value::String(format!(
                    "DetectedIssue/{}",
                    scoped.as_str().unwrap_or_default()
                ));
            }
        }
        let screened: Vec<serde_json::Value> =
            by_patient[pid].iter().map(|r| (*r).clone()).collect();
        assert_eq!(screened, assessed[1..], "patient {pid}");
    }
}

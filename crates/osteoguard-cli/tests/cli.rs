//! The `osteoguard` binary as a user runs it: exit codes, formats, determinism, bad input.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osteoguard"))
}

fn seed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-case.json")
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-tests");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

#[test]
fn assess_json_is_byte_identical_across_runs_and_follows_the_contract() {
    let run = || {
        let out = bin()
            .args(["assess", "--as-of", "2023-06-15", "--format", "json"])
            .arg(seed())
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let a = run();
    let b = run();
    assert_eq!(a, b, "same record and date give byte-identical JSON");
    let v: serde_json::Value = serde_json::from_slice(&a).expect("valid JSON");
    assert_eq!(v["schema"], "osteoguard.assessment/1");
    assert_eq!(v["patient"]["reference"], "Patient/ku-73f");
    assert_eq!(v["patient"]["ageYears"], 73);
    assert_eq!(v["patient"]["sex"], "female");
    assert_eq!(v["asOf"], "2023-06-15");
    for key in [
        "fractureRisk",
        "glucocorticoid",
        "denosumab",
        "spine",
        "findings",
        "tasks",
        "dataQuality",
        "provenance",
    ] {
        assert!(v.get(key).is_some(), "contract field {key}");
    }
    assert!(v["glucocorticoid"]
        .get("cumulativePrednisoneEquivalentGramsLast12Months")
        .is_some());
    let f = &v["findings"][0];
    for key in [
        "code",
        "severity",
        "summary",
        "evidence",
        "recommendation",
        "citation",
        "due",
    ] {
        assert!(f.get(key).is_some(), "finding field {key}");
    }
    assert_eq!(v["denosumab"]["lastDose"], "2022-10-27");
    assert_eq!(v["denosumab"]["nextDue"], "2023-04-27");
}

#[test]
fn text_output_names_the_most_severe_finding_first() {
    let out = bin()
        .args(["assess", "--as-of", "2023-06-15"])
        .arg(seed())
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text
        .lines()
        .find(|l| l.trim_start().starts_with("1."))
        .expect("a numbered finding");
    assert!(first.contains("[CRITICAL]"), "{first}");
    assert!(text.contains("Fracture risk: VERY-HIGH"), "{text}");
}

#[test]
fn verbose_text_adds_the_rule_trace() {
    let run = |extra: &[&str]| {
        let out = bin()
            .args(["assess", "--as-of", "2023-08-23"])
            .args(extra)
            .arg(seed())
            .output()
            .expect("runs");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plain = run(&[]);
    let verbose = run(&["--verbose"]);
    assert!(!plain.contains("    rule: "), "{plain}");
    assert!(!plain.contains("    trace: "), "{plain}");
    assert!(verbose.contains("    rule: knowledge.md §"), "{verbose}");
    assert!(verbose.contains("    trace: "), "{verbose}");
    // Verbose only adds lines.
    for line in plain.lines() {
        assert!(verbose.contains(line), "{line}");
    }
}

#[test]
fn bad_usage_and_unreadable_input_exit_2_with_a_clear_message() {
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "assess".into(),
                "--as-of".into(),
                "2023-02-30".into(),
                seed().display().to_string(),
            ],
            "--as-of",
        ),
        (
            vec![
                "assess".into(),
                "--as-of".into(),
                "2023-06-15".into(),
                "/nonexistent/file.json".into(),
            ],
            "/nonexistent/file.json",
        ),
        (vec!["assess".into()], "--as-of"),
    ];
    for (args, needle) in cases {
        let out = bin().args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn invalid_json_and_non_bundle_inputs_are_refused_by_name() {
    let bad = tmp("truncated.json");
    std::fs::write(
        &bad,
        br#"{"resourceType": "Bundle", "entry": [{"resource": "#,
    )
    .unwrap();
    let out = bin()
        .args(["assess", "--as-of", "2023-06-15"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated.json"));

    let no_patient = tmp("no-patient.json");
    std::fs::write(
        &no_patient,
        br#"{"resourceType": "Bundle", "type": "collection", "entry": []}"#,
    )
    .unwrap();
    let out = bin()
        .args(["assess", "--as-of", "2023-06-15"])
        .arg(&no_patient)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Patient"));
}

#[test]
fn several_patients_need_patient_flag() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let a = std::fs::read_to_string(dir.join("example-7-dmab-due-renal.json")).unwrap();
    let b = std::fs::read_to_string(dir.join("example-8-ctx-elevated.json")).unwrap();
    let va: serde_json::Value = serde_json::from_str(&a).unwrap();
    let vb: serde_json::Value = serde_json::from_str(&b).unwrap();
    let mut lines = String::new();
    for v in [va, vb] {
        for e in v["entry"].as_array().unwrap() {
            lines.push_str(&serde_json::to_string(&e["resource"]).unwrap());
            lines.push('\n');
        }
    }
    let nd = tmp("two-patients.ndjson");
    std::fs::write(&nd, lines).unwrap();
    let out = bin()
        .args(["assess", "--as-of", "2024-09-20"])
        .arg(&nd)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("example-7") && err.contains("example-8"),
        "{err}"
    );
    let out = bin()
        .args([
            "assess",
            "--as-of",
            "2024-09-20",
            "--patient",
            "example-7",
            "--format",
            "json",
        ])
        .arg(&nd)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_configuration_is_refused_naming_the_key_and_range() {
    let cfg = tmp("bad.toml");
    std::fs::write(&cfg, "[denosumab]\ngrace_end_days = 1000\n").unwrap();
    let out = bin()
        .args(["assess", "--as-of", "2023-06-15", "--config"])
        .arg(&cfg)
        .arg(seed())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("denosumab.grace_end_days") && err.contains("294"),
        "{err}"
    );
}

#[test]
fn rules_markdown_lists_every_finding_code_with_thresholds_and_overrides() {
    let out = bin()
        .args(["rules", "--format", "markdown"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let md = String::from_utf8_lossy(&out.stdout);
    for code in osteoguard_core::FindingCode::ALL {
        assert!(md.contains(&format!("## `{}`", code.as_str())), "{code}");
    }
    assert!(
        md.contains("`denosumab.grace_end_days` | Last on-time day"),
        "{md}"
    );
    let cfg = tmp("grace.toml");
    std::fs::write(&cfg, "[denosumab]\ngrace_end_days = 240\n").unwrap();
    let out = bin()
        .args(["rules", "--format", "json", "--config"])
        .arg(&cfg)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["provenance"]["overriddenKeys"][0],
        "denosumab.grace_end_days"
    );
    let overdue = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "denosumab-overdue")
        .unwrap();
    let grace = overdue["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "denosumab.grace_end_days")
        .unwrap();
    assert_eq!(grace["value"], 240);
    assert_eq!(grace["overridden"], true);
}

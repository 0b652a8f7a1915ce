//! The bad-input corpus through the real binary (issue 16): every hand-written case of
//! `crates/osteoguard-fhir/tests/corpus/` plus cases generated here (into a temporary
//! directory, never into the repository) are given to `inspect`, `assess` and `screen`.
//! Wanted: no panic, every exit code 0 or 2, and every rejection (exit 2) naming the file, the
//! resource and the field (`(resource Observation/o, field subject)`; "unknown" when the text
//! does not show it), in a bounded message that does not repeat itself.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osteoguard"))
}

const PATIENT: &str =
    r#"{"resourceType":"Patient","id":"p","gender":"female","birthDate":"1950-03-15"}"#;

fn med(dose: &str, unit: &str, rxnorm: &str) -> String {
    format!(
        r#"{{"resourceType":"MedicationRequest","id":"m","status":"active","intent":"order","subject":{{"reference":"Patient/p"}},"authoredOn":"2022-01-01","medicationCodeableConcept":{{"coding":[{{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"{rxnorm}"}}]}},"dosageInstruction":[{{"timing":{{"repeat":{{"frequency":1,"period":1,"periodUnit":"d"}}}},"doseAndRate":[{{"doseQuantity":{{"value":{dose},"unit":"{unit}","system":"http://unitsofmeasure.org","code":"{unit}"}}}}]}}]}}"#
    )
}

fn obs(extra: &str) -> String {
    format!(
        r#"{{"resourceType":"Observation","id":"o","status":"final","subject":{{"reference":"Patient/p"}},"code":{{"coding":[{{"system":"http://loinc.org","code":"38265-5"}}]}}{extra}}}"#
    )
}

/// The generated cases: `(name, NDJSON bytes)` — each is also screened as an export's
/// `Observation.ndjson` beside a valid `Patient.ndjson`.
fn generated() -> Vec<(&'static str, Vec<u8>)> {
    let mut deep = String::new();
    for _ in 0..100_000 {
        deep.push('[');
    }
    let long = obs(&format!(
        r#","note":[{{"text":"{}"}}]"#,
        "x".repeat(2 << 20)
    ));
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("whitespace", "  \n\t\n".into()),
        ("truncated", obs("")[..60].to_string()),
        ("wrong-types", r#"{"resourceType":"Observation","id":5,"status":5,"subject":"Patient/p","code":"38265-5","valueQuantity":[1]}"#.into()),
        ("huge-numbers", obs(r#","effectiveDateTime":"2023-01-05","valueQuantity":{"value":1e400,"unit":"{T-score}"}"#)),
        ("huge-dose", med("1e308", "mg", "8640")),
        ("deep-nesting", deep),
        ("impossible-dates", obs(r#","effectiveDateTime":"2023-02-30","valueQuantity":{"value":-2.6,"unit":"{T-score}"}"#)),
        ("negative-dose", med("-10", "mg", "8640")),
        ("unknown-unit", med("10", "mg/furlong", "8640")),
        ("implausible-dose", med("20", "g", "5492")),
        ("wrong-resource-type", format!(r#"{{"resourceType":"Patient","type":"collection","entry":[{{"resource":{PATIENT}}}]}}"#)),
        ("unknown-resource-type", obs("").replace("\"Observation\"", "\"Observationz\"")),
        ("duplicate-patients", format!("{PATIENT}\n{}", PATIENT.replace("female", "male"))),
        ("two-objects-per-line", format!("{PATIENT}{}", obs(""))),
        ("no-resource-type", r#"{"id":"x","subject":{"reference":"Patient/p"}}"#.into()),
        ("long-line", long),
        ("null-subject", obs("").replace(r#"{"reference":"Patient/p"}"#, "null")),
    ];
    let mut out: Vec<(&str, Vec<u8>)> = cases
        .into_iter()
        .map(|(n, t)| (n, format!("{t}\n").into_bytes()))
        .collect();
    out.push(("invalid-utf8", {
        let mut b = obs("").into_bytes();
        b.splice(20..20, [0xff, 0xfe]);
        b.push(b'\n');
        b
    }));
    out.push(("nul-bytes", vec![0u8; 4096]));
    out
}

fn check(args: &[&str], file: &Path, seen: &mut Vec<String>) {
    let o = bin()
        .args(args)
        .args(["--max-line-mb", "1"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    match o.status.code() {
        Some(0) => {}
        Some(2) => {
            let name = file.file_name().unwrap().to_string_lossy();
            assert!(
                err.contains(name.as_ref()),
                "{args:?}: the rejection names no file: {err}"
            );
            // … the resource and the field (issue 16), each at most once in a bounded message.
            assert_eq!(
                err.matches("(resource ").count(),
                1,
                "{args:?}: the rejection names no resource: {err}"
            );
            assert!(
                err.contains(", field"),
                "{args:?}: the rejection names no field: {err}"
            );
            assert!(err.len() < 2048, "{args:?}: unbounded message: {err}");
            // An error never repeats its cause ("x: x").
            let segments: Vec<&str> = err.trim_end().split(": ").collect();
            assert!(
                segments.windows(2).all(|w| w[0] != w[1]),
                "{args:?}: repeated segment: {err}"
            );
        }
        other => panic!("{args:?}: exit {other:?}: {err}"),
    }
    seen.push(format!("{} {:?}", args[0], o.status.code()));
}

#[test]
fn every_bad_input_exits_0_or_2_without_panic_and_rejections_name_the_file() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bad-input-corpus");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let out = tmp.join("out");
    let o = out.to_str().unwrap();
    let mut seen = Vec::new();
    // The hand-written corpus of the reader's tests.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../osteoguard-fhir/tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{}", corpus.display());
    for f in &files {
        let s = f.to_str().unwrap();
        check(&["inspect", s], f, &mut seen);
        check(&["assess", s, "--as-of", "2023-06-15"], f, &mut seen);
    }
    // The generated corpus: as a file (inspect, assess) and inside an export (screen).
    for (name, bytes) in generated() {
        let f = tmp.join(format!("{name}.ndjson"));
        std::fs::write(&f, &bytes).unwrap();
        let s = f.to_str().unwrap();
        check(&["inspect", s], &f, &mut seen);
        check(&["assess", s, "--as-of", "2023-06-15"], &f, &mut seen);
        let exp = tmp.join(format!("export-{name}"));
        std::fs::create_dir_all(&exp).unwrap();
        std::fs::write(exp.join("Patient.ndjson"), format!("{PATIENT}\n")).unwrap();
        let obs_file = exp.join("Observation.ndjson");
        std::fs::write(&obs_file, &bytes).unwrap();
        for args in [
            vec!["inspect", exp.to_str().unwrap()],
            vec!["assess", exp.to_str().unwrap(), "--as-of", "2023-06-15"],
            vec![
                "screen",
                exp.to_str().unwrap(),
                "--as-of",
                "2023-06-15",
                "-q",
                "--out",
                o,
            ],
        ] {
            check(&args, &obs_file, &mut seen);
        }
    }
    // The corpus exercises both outcomes.
    assert!(seen.iter().any(|s| s.ends_with("Some(0)")), "{seen:?}");
    assert!(seen.iter().any(|s| s.ends_with("Some(2)")), "{seen:?}");
    let _ = std::fs::remove_dir_all(&tmp);
}

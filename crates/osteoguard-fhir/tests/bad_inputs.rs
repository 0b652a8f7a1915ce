//! The corpus of bad inputs (`tests/corpus/`), each with its expected outcome: an error whose
//! message names the file and the place (line, column), or a read with a data-quality issue that
//! names `Type/id` and the field path. Large inputs (deep nesting, a 100 MB line) are generated
//! at test time into a temporary directory.

use std::path::{Path, PathBuf};

use osteoguard_core::model::ObservationKind;
use osteoguard_fhir::{read_json_bytes, read_path, read_resources, ReadError, ReadOutput};
use serde_json::{json, Value};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

enum Expect {
    /// `read_path` fails; the message contains the file name followed by each of these parts.
    Err(&'static [&'static str]),
    /// `read_path` succeeds with (at least) these issues `(reference, field, problem contains)`
    /// (`reference` "" = a file-level note in `unattached`).
    Issues(&'static [(&'static str, &'static str, &'static str)]),
}

use Expect::*;

const TABLE: &[(&str, Expect)] = &[
    (
        "truncated.json",
        Err(&[
            "truncated.json:5:65: not valid JSON",
            "EOF while parsing a string (the file is truncated)",
        ]),
    ),
    (
        "truncated.ndjson",
        Err(&[
            "truncated.ndjson:2:191: not valid JSON",
            "(the file is truncated)",
        ]),
    ),
    (
        "empty.json",
        Err(&["empty.json: not valid JSON: empty file (no JSON document)"]),
    ),
    (
        "empty.ndjson",
        Issues(&[("", "", "no resources (empty NDJSON file)")]),
    ),
    (
        "blank-lines.ndjson",
        Issues(&[("", "", "no resources (empty NDJSON file)")]),
    ),
    (
        "invalid-utf8.ndjson",
        Err(&["invalid-utf8.ndjson:2: not valid JSON: invalid UTF-8 at byte 56 of the line"]),
    ),
    (
        "binary.json",
        Err(&["binary.json:1: not valid JSON: invalid UTF-8 at byte 9 of the file"]),
    ),
    (
        "number-overflow.json",
        Err(&["number-overflow.json:1:96: not valid JSON: number out of range"]),
    ),
    (
        "not-fhir.json",
        Err(&["not-fhir.json: not FHIR: no resourceType"]),
    ),
    (
        "resource-type-number.json",
        Err(&["resource-type-number.json: not FHIR: resourceType is not a string"]),
    ),
    (
        "array-of-scalars.json",
        Issues(&[("", "", "not a JSON object")]),
    ),
    ("bom.json", Issues(&[])),
    (
        "wrong-types.json",
        Issues(&[
            (
                "Patient/wt",
                "gender",
                "wrong JSON type: a number (1), expected a string",
            ),
            (
                "Patient/wt",
                "birthDate",
                "wrong JSON type: a number (19500315), expected a string",
            ),
            (
                "MedicationRequest/wt-med",
                "status",
                "wrong JSON type: a number (5), expected a string",
            ),
            (
                "MedicationRequest/wt-med",
                "authoredOn",
                "wrong JSON type: a number (20230105), expected a string",
            ),
            (
                "MedicationRequest/wt-med",
                "dosageInstruction",
                "wrong JSON type: a string (\"5 mg daily\"), expected an array",
            ),
            (
                "MedicationRequest/wt-dose",
                "dosageInstruction[0].timing.repeat.frequency",
                "wrong JSON type: a string (\"1\"), expected a number",
            ),
            (
                "MedicationRequest/wt-dose",
                "dosageInstruction[0].doseAndRate[0].doseQuantity.value",
                "wrong JSON type: a string (\"5\"), expected a number",
            ),
            (
                "Observation/wt-obs",
                "valueQuantity.value",
                "wrong JSON type: a string (\"-2.7\"), expected a number",
            ),
            (
                "Condition/wt-cond",
                "code",
                "wrong JSON type: a string (\"M81.0\"), expected an object",
            ),
            (
                "Procedure/wt-proc",
                "code.coding",
                "wrong JSON type: an object, expected an array",
            ),
            (
                "Procedure/wt-proc",
                "subject",
                "wrong JSON type: a string (\"Patient/wt\"), expected an object",
            ),
        ]),
    ),
    (
        "huge-numbers.json",
        Issues(&[
            (
                "MedicationRequest/hn-med",
                "dosageInstruction[0].doseAndRate[0].doseQuantity.value",
                "no usable numeric value: 1.7976931348623157e+308 is out of range",
            ),
            (
                "MedicationRequest/hn-med",
                "dosageInstruction[0].timing.repeat.frequency",
                "not a usable number (1.2345678901234568e+29)",
            ),
            (
                "Observation/hn-obs",
                "valueQuantity.value",
                "no usable numeric value: 1e+300 is out of range",
            ),
        ]),
    ),
    (
        "impossible-date.json",
        Issues(&[
            ("Patient/id", "birthDate", "impossible date \"1950-02-30\""),
            (
                "MedicationRequest/id-med",
                "authoredOn",
                "impossible date \"2023-02-30\"",
            ),
            (
                "MedicationRequest/id-med",
                "authoredOn",
                "not usable: no visibility date",
            ),
            (
                "Observation/id-obs",
                "effectiveDateTime",
                "impossible date \"2023-02-30T10:00:00Z\"",
            ),
        ]),
    ),
    (
        "negative-dose.json",
        Issues(&[(
            "MedicationRequest/neg",
            "dosageInstruction[0].doseAndRate[0].doseQuantity.value",
            "negative dose -5",
        )]),
    ),
    (
        "unknown-unit.json",
        Issues(&[
            (
                "MedicationRequest/x",
                "dosageInstruction[0].doseAndRate[0].doseQuantity.unit",
                "unknown unit \"tabs\"",
            ),
            (
                "Observation/uu-egfr",
                "valueQuantity.unit",
                "unknown unit \"furlongs/fortnight\"",
            ),
        ]),
    ),
];

fn all_issues(out: &ReadOutput) -> Vec<(String, String, String)> {
    out.patients
        .iter()
        .flat_map(|p| p.issues.iter())
        .chain(out.unattached.iter())
        .map(|i| (i.reference.clone(), i.field.clone(), i.problem.clone()))
        .collect()
}

#[test]
fn corpus_table() {
    // Every corpus file is in the table.
    let mut names: Vec<String> = std::fs::read_dir(corpus(""))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(names, listed, "tests/corpus and TABLE disagree");

    for (name, expect) in TABLE {
        let path = corpus(name);
        let got = read_path(&path);
        match (expect, got) {
            (Err(parts), Result::Err(e)) => {
                let msg = e.to_string();
                let at = msg.find(name).unwrap_or_else(|| panic!("{name}: {msg}"));
                let rest = &msg[at..];
                for p in *parts {
                    assert!(rest.contains(p), "{name}: {msg:?} lacks {p:?}");
                }
            }
            (Err(_), Ok(out)) => panic!("{name}: expected an error, read {:?}", out.stats),
            (Issues(want), Ok(out)) => {
                let have = all_issues(&out);
                for (r, f, p) in *want {
                    assert!(
                        have.iter().any(|(hr, hf, hp)| (hr == r
                            || (r.is_empty() && hr.contains(name)))
                            && hf == f
                            && hp.contains(p)),
                        "{name}: no issue {r} {f}: {p}\nhave: {have:#?}"
                    );
                }
                // Every issue names its resource (or file) — never anonymous.
                for (r, _, p) in &have {
                    assert!(!r.is_empty(), "{name}: issue without a reference: {p}");
                }
                let t = out.stats.total();
                assert_eq!(t.read, t.used + t.ignored + t.not_understood, "{name}");
            }
            (Issues(_), Result::Err(e)) => panic!("{name}: expected a read, got {e}"),
        }
    }
}

/// What the values the engine sees are, beyond the issues.
#[test]
fn bad_values_are_not_used() {
    let read = |n: &str| match read_path(&corpus(n)) {
        Ok(o) => o,
        Result::Err(e) => panic!("{e}"),
    };
    // Negative dose: the dose is unknown, not -5 and not 0; the timing is still read.
    let out = read("negative-dose.json");
    let m = &out.patients[0].record.medications[0];
    assert_eq!(m.dosages[0].dose_mg, None);
    assert_eq!(m.dosages[0].per_day, Some(1.0));
    // Unknown unit: no dose, no value.
    let out = read("unknown-unit.json");
    assert_eq!(
        out.patients[0].record.medications[0].dosages[0].dose_mg,
        None
    );
    let egfr = &out.patients[0].record.observations[0];
    assert_eq!(egfr.kind, ObservationKind::Egfr);
    assert_eq!(egfr.value, None);
    // Huge numbers: neither the dose nor an absurd frequency (1e300 per day) is used.
    let out = read("huge-numbers.json");
    let d = &out.patients[0].record.medications[0].dosages[0];
    assert_eq!(
        (d.dose_mg, d.per_day, d.bounds_duration_days),
        (None, None, None)
    );
    assert_eq!(out.patients[0].record.observations[0].value, None);
    // Impossible dates are None (not the 28th, not March 2nd).
    let out = read("impossible-date.json");
    let p = &out.patients[0];
    assert_eq!(p.record.patient.birth_date, None);
    assert_eq!(p.record.medications[0].authored, None);
    assert_eq!(p.record.observations[0].effective, None);
    // Wrong types: a code that is a string makes the Condition not understood (not ignored),
    // and the Procedure whose subject is a string is not attached.
    let out = read("wrong-types.json");
    assert_eq!(out.stats.by_type["Condition"].not_understood, 1);
    assert_eq!(out.stats.by_type["Procedure"].not_understood, 1);
    assert!(out.patients[0].record.conditions.is_empty());
    assert_eq!(
        out.patients[0].record.medications[1].dosages[0].per_day,
        None
    );
}

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("osteoguard-fhir-bad-inputs");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

#[test]
fn deep_nesting() {
    // 100 000 nested arrays: serde_json's recursion limit, reported with the place.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let p = tmp("deep-nesting.json");
    assert!(std::fs::write(&p, &deep).is_ok());
    match read_path(&p) {
        Result::Err(ReadError::Json { location, message }) => {
            assert!(location.ends_with("deep-nesting.json:1:128"), "{location}");
            assert_eq!(
                message,
                "recursion limit exceeded (resource unknown, field unknown)"
            );
        }
        other => panic!("{other:?}"),
    }
    // Deeply nested objects inside a resource (within the JSON limit): read, value ignored.
    let mut inner = json!({"coding": [{"system": "http://loinc.org", "code": "38265-5"}]});
    for _ in 0..100 {
        inner = json!({ "nested": inner });
    }
    let obs = json!({"resourceType": "Observation", "id": "deep", "status": "final",
        "code": inner, "subject": {"reference": "Patient/p"}, "valueQuantity": {"value": -2.5}});
    let out = read_json_bytes(obs.to_string().as_bytes(), "deep-object.json");
    assert!(out.is_ok());
    // Bundles nested 40 deep (built in memory: past the JSON parser's limit): the reader stops
    // at its own limit with a note naming where.
    let mut b = json!({"resourceType": "Patient", "id": "bottom"});
    for _ in 0..40 {
        b = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": b}]});
    }
    let out = read_resources(vec![b]);
    assert!(
        out.unattached
            .iter()
            .any(|i| i.problem.contains("nesting too deep")
                && i.reference.starts_with("resources[0]"))
    );
}

/// Peak resident memory of this process (Linux), in MB.
fn peak_rss_mb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// One Observation whose `note` text is 100 MB, as a single NDJSON line and as a JSON file.
#[test]
fn hundred_megabyte_line() {
    const MB: usize = 1 << 20;
    let head = r#"{"resourceType":"Observation","id":"big","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"38265-5"}]},"subject":{"reference":"Patient/big-p"},"effectiveDateTime":"2023-01-05","valueQuantity":{"value":-2.6,"unit":"{T-score}"},"note":[{"text":""#;
    let tail = "\"}]}\n";
    let mut line = Vec::with_capacity(100 * MB + 400);
    line.extend_from_slice(head.as_bytes());
    line.resize(line.len() + 100 * MB, b'x');
    line.extend_from_slice(tail.as_bytes());
    let p = tmp("big-line.ndjson");
    assert!(std::fs::write(&p, &line).is_ok());
    drop(line);
    let before = peak_rss_mb();
    // Above the default limit of one line (64 MiB, issue 16): read with the limit raised.
    let out = match osteoguard_fhir::read_path_with(
        &p,
        osteoguard_fhir::ReadLimits::with_max_line_mib(128),
    ) {
        Ok(o) => o,
        Result::Err(e) => panic!("{e}"),
    };
    let after = peak_rss_mb();
    assert_eq!(out.patients.len(), 1);
    let o = &out.patients[0].record.observations;
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].value, Some(-2.6));
    drop(out);
    // Memory: the file (100 MB) + the parsed string (100 MB) + slack; never a multiple of it
    // per resource. (Other tests of this binary run alongside, hence the generous bound.)
    if let (Some(b), Some(a)) = (before, after) {
        assert!(a.saturating_sub(b) < 700, "peak RSS grew {b} → {a} MB");
    }
    // Truncated in the middle of the 100 MB string: a clear error naming the place.
    let q = tmp("big-line-truncated.json");
    let mut cut = Vec::with_capacity(50 * MB + 400);
    cut.extend_from_slice(head.as_bytes());
    cut.resize(cut.len() + 50 * MB, b'x');
    assert!(std::fs::write(&q, &cut).is_ok());
    drop(cut);
    match read_path(&q) {
        Result::Err(ReadError::Json { location, message }) => {
            assert!(
                location.contains("big-line-truncated.json:1:"),
                "{location}"
            );
            assert!(message.contains("truncated"), "{message}");
        }
        other => panic!("{:?}", other.map(|o| o.stats)),
    }
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(&q);
}

/// Bad values inside otherwise valid resources, given as parsed values (CDS Hooks prefetch).
#[test]
fn values_with_wrong_shapes() {
    let v: Value = json!({"resourceType": "MedicationStatement", "id": "ms",
        "status": "active", "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "8640"}]},
        "effectivePeriod": "2023", "dosage": [{"doseAndRate": [{"doseQuantity": {"value": null}}]}]});
    let out = read_resources(vec![v]);
    let have = all_issues(&out);
    assert!(have.iter().any(|(r, f, p)| r == "MedicationStatement/ms"
        && f == "effectivePeriod"
        && p.contains("expected an object")));
    assert!(have.iter().any(|(r, f, p)| r == "MedicationStatement/ms"
        && f == "dosage[0].doseAndRate[0].doseQuantity.value"
        && p.contains("null")));
}

/// The line limit holds in gzip NDJSON and in a gzip JSON document too (issue 16): the error
/// names the file and line, and the limit is the caller's.
#[test]
fn line_limit_in_gzip_files() {
    use osteoguard_fhir::{read_path_with, ReadLimits};
    use std::io::Write;
    let long = format!(
        r#"{{"resourceType":"Observation","id":"o","status":"final","subject":{{"reference":"Patient/p"}},"code":{{"text":"{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    let gz = |name: &str, text: &str| {
        let p = tmp(name);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        assert!(e.write_all(text.as_bytes()).is_ok());
        assert!(std::fs::write(&p, e.finish().unwrap_or_default()).is_ok());
        p
    };
    let nd = gz(
        "long-line.ndjson.gz",
        &format!("{{\"resourceType\":\"Patient\",\"id\":\"p\"}}\n\n{long}\n"),
    );
    let doc = gz("long-doc.json.gz", &long);
    for (p, line) in [(&nd, 3), (&doc, 1)] {
        match read_path_with(p, ReadLimits::with_max_line_mib(1)) {
            Result::Err(ReadError::Refused { location, message }) => {
                assert_eq!(location, format!("{}:{line}", p.display()));
                assert!(
                    message.contains("longer than 1 MiB") || message.contains("larger than 1 MiB"),
                    "{message}"
                );
            }
            other => panic!("{:?}", other.map(|o| o.stats)),
        }
        let read = read_path_with(p, ReadLimits::with_max_line_mib(3));
        assert!(
            read.is_ok_and(|o| o.stats.total().read >= 1),
            "{}",
            p.display()
        );
    }
}

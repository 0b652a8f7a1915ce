//! Unit tests of the per-line decision, and the Spark plan checked without Spark:
//! classify → group by patient → [`worklist_for_groups`] → sort gives, byte for byte, the
//! worklist.csv of `osteoguard screen` on the shared real exports.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde_json::json;

use super::*;

#[test]
fn classify_keeps_patients_and_what_a_rule_reads() {
    let p = r#"{"resourceType":"Patient","id":"p1","gender":"female"}"#;
    assert_eq!(classify_line(p), LineAction::Keep("p1".into()));
    let dxa = json!({"resourceType": "Observation", "id": "o1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "38267-1"}]},
        "subject": {"reference": "urn:uuid:p1"}, "effectiveDateTime": "2023-01-01",
        "valueQuantity": {"value": -2.6}});
    assert_eq!(
        classify_line(&dxa.to_string()),
        LineAction::Keep("p1".into())
    );
    assert!(is_relevant(&dxa.to_string()));
    let med = r#"{"resourceType":"Medication","id":"m1"}"#;
    assert_eq!(classify_line(med), LineAction::Shared("m1".into()));
}

#[test]
fn classify_drops_what_no_rule_reads() {
    let enc = r#"{"resourceType":"Encounter","id":"e1","subject":{"reference":"Patient/p1"}}"#;
    assert_eq!(classify_line(enc), LineAction::Drop(DropReason::Irrelevant));
    assert!(!is_relevant(enc));
    let request = |intent: &str, rxnorm: &str| {
        json!({"resourceType": "MedicationRequest", "id": "r", "status": "active",
            "intent": intent, "subject": {"reference": "Patient/p1"}, "authoredOn": "2020-01-01",
            "medicationCodeableConcept": {"coding": [{"system":
                "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm}]}})
        .to_string()
    };
    // No rule reads lisinopril (314076): screen's router drops it, as the reader would ignore it.
    assert_eq!(
        classify_line(&request("order", "314076")),
        LineAction::Drop(DropReason::Irrelevant)
    );
    // Screen's router keeps prednisone (312617); the reader ignores a proposal (not an order).
    assert_eq!(
        classify_line(&request("proposal", "312617")),
        LineAction::KeyOnly("p1".into())
    );
    let no_patient = r#"{"resourceType":"Condition","id":"c","subject":{"reference":"Group/g"}}"#;
    assert_eq!(
        classify_line(no_patient),
        LineAction::Drop(DropReason::NoPatient)
    );
    assert_eq!(classify_line("  "), LineAction::Drop(DropReason::Blank));
    assert_eq!(
        classify_line("{not json"),
        LineAction::Drop(DropReason::NotFhir)
    );
    let log = r#"{"exportId":"x","eventId":"kickoff"}"#;
    assert_eq!(classify_line(log), LineAction::Drop(DropReason::NotFhir));
}

#[test]
fn worklist_for_groups_checks_its_inputs() {
    let e = worklist_for_groups(&["a".into()], &[], &[], "2024-01-01", None).unwrap_err();
    assert!(matches!(e, PyEngineError::Shape { .. }));
    let e = worklist_for_groups(&[], &[], &[], "2024-13-01", None).unwrap_err();
    assert!(matches!(e, PyEngineError::AsOf(_)));
    let e = worklist_for_groups(&[], &[], &[], "2024-01-01", Some("[nope]\nx = 1\n")).unwrap_err();
    assert!(matches!(e, PyEngineError::Config(_)));
}

#[test]
fn assess_lines_names_the_patient_problem() {
    let two = vec![
        r#"{"resourceType":"Patient","id":"a"}"#.to_string(),
        r#"{"resourceType":"Patient","id":"b"}"#.to_string(),
    ];
    assert!(matches!(
        assess_lines(&two, "2024-01-01", None, None),
        Err(PyEngineError::SeveralPatients { count: 2, .. })
    ));
    let a = assess_lines(&two, "2024-01-01", Some("b"), None).unwrap();
    assert_eq!(a.patient.reference, "Patient/b");
    assert!(matches!(
        assess_lines(&[], "2024-01-01", None, None),
        Err(PyEngineError::NoPatient)
    ));
    assert!(matches!(
        assess_lines(&["{".to_string()], "2024-01-01", None, None),
        Err(PyEngineError::Json { line: 1, .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// The Spark plan without Spark, against `osteoguard screen`
// ---------------------------------------------------------------------------------------------

fn shared_dir() -> PathBuf {
    match std::env::var_os("OSTEOGUARD_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn export_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for f in export_files(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let mut text = String::new();
        if f.extension().is_some_and(|e| e == "gz") {
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
        } else {
            text = String::from_utf8(bytes).unwrap();
        }
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

/// What the Spark job computes, on one core, as CSV text (status left empty: no registry).
fn spark_plan_csv(lines: &[String], as_of: &str) -> String {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut shared = Vec::new();
    for l in lines {
        match classify_line(l) {
            LineAction::Keep(k) => groups.entry(k).or_default().push(l.clone()),
            LineAction::KeyOnly(k) => {
                groups.entry(k).or_default();
            }
            LineAction::Shared(id) => shared.push((id, l.clone())),
            LineAction::Drop(_) => {}
        }
    }
    let keys: Vec<String> = groups.keys().cloned().collect();
    let groups: Vec<Vec<String>> = groups.into_values().collect();
    let rows = worklist_for_groups(&keys, &groups, &shared, as_of, None).unwrap();
    sorted_csv(&rows)
}

/// Rows as screen's worklist.csv (status left empty), in screen's order.
fn sorted_csv(rows: &[osteoguard_screen::pass2::Row]) -> String {
    let mut records = worklist_records(rows);
    records.sort_by_cached_key(|r| {
        let date = |i: usize| {
            NaiveDate::parse_from_str(&r.fields[i], "%Y-%m-%d").unwrap_or(NaiveDate::MAX)
        };
        // screen's order: one block per patient (its gravest finding, earliest due), then the
        // patient's rows by severity, due date and code.
        (
            std::cmp::Reverse(r.patient_rank),
            date(col("patient_due")),
            r.fields[0].clone(),
            std::cmp::Reverse(r.severity_rank),
            date(7),
            r.fields[3].clone(),
        )
    });
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(WORKLIST_COLUMNS).unwrap();
    for r in records {
        w.write_record(&r.fields).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// The index of a worklist column.
fn col(name: &str) -> usize {
    WORKLIST_COLUMNS.iter().position(|c| *c == name).unwrap()
}

/// `osteoguard screen`'s worklist.csv, with the registry's status and status-reason columns
/// blanked.
fn screen_csv(export: &Path, as_of: &str) -> String {
    let out = std::env::temp_dir().join(format!(
        "osteoguard-py-test-{}-{}-{as_of}",
        std::process::id(),
        export.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&out);
    let mut args = osteoguard_screen::ScreenArgs::new(export, as_of, &out);
    args.format = vec![osteoguard_screen::Format::Csv];
    args.jobs = Some(1);
    osteoguard_screen::screen(args).unwrap();
    let text = std::fs::read(out.join("worklist.csv")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let mut r = csv::Reader::from_reader(&text[..]);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(r.headers().unwrap()).unwrap();
    for rec in r.records() {
        let mut f: Vec<String> = rec.unwrap().iter().map(str::to_string).collect();
        f[col("status")].clear();
        f[col("status_reason")].clear();
        w.write_record(&f).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn check_export(name: &str) {
    let dir = shared_dir().join("data").join(name);
    if !dir.is_dir() {
        eprintln!(
            "skipping: {} not found (set OSTEOGUARD_SHARED)",
            dir.display()
        );
        return;
    }
    let lines = export_lines(&dir);
    for as_of in ["2019-06-30", "2024-06-30"] {
        let spark = spark_plan_csv(&lines, as_of);
        let screen = screen_csv(&dir, as_of);
        assert!(
            screen.lines().count() > 1,
            "{name} {as_of}: screen found nothing"
        );
        assert_eq!(spark, screen, "{name} {as_of}");
    }
}

#[test]
fn spark_plan_equals_screen_on_bulk_10() {
    check_export("bulk-10-patients");
}

#[test]
fn spark_plan_equals_screen_on_synthea_cohort() {
    check_export("synthea-r4-cohort-ndjson");
}

#[test]
fn medication_resources_reach_the_groups_that_name_them() {
    let lines: Vec<String> = [
        json!({"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1950-01-01"}),
        json!({"resourceType": "Medication", "id": "m1",
               "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "8640"}]}}),
        json!({"resourceType": "MedicationRequest", "id": "r1", "status": "active", "intent": "order",
               "subject": {"reference": "Patient/p"}, "authoredOn": "2023-01-01",
               "medicationReference": {"reference": "Medication/m1"},
               "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 10, "unit": "mg"}}],
                                      "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]}),
    ]
    .iter()
    .map(Value::to_string)
    .collect();
    let with = worklist_for_groups(
        &["p".into()],
        &[vec![lines[0].clone(), lines[2].clone()]],
        &[("m1".into(), lines[1].clone())],
        "2023-09-01",
        None,
    )
    .unwrap();
    let without = worklist_for_groups(
        &["p".into()],
        &[vec![lines[0].clone(), lines[2].clone()]],
        &[],
        "2023-09-01",
        None,
    )
    .unwrap();
    assert!(
        with.iter()
            .any(|r| r.code == "gc-bone-protection" || r.code == "gc-fracture-risk-assessment-due"),
        "{with:?}"
    );
    assert_ne!(with, without);
}

#[test]
fn placeholder_patients_survive_the_filter() {
    // No Patient resource: screen hands the reader the ignored-by-the-reader line, and the
    // reader makes a placeholder of it; the Spark plan ships only the key and gets the same.
    let line = json!({"resourceType": "MedicationRequest", "id": "r", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/ghost"}, "authoredOn": "2020-01-01",
        "medicationCodeableConcept": {"coding": [{"system":
            "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076"}]}})
    .to_string();
    let arena = osteoguard_fhir::json::Arena::new();
    let whole = assess_patient(
        vec![osteoguard_fhir::json::parse(&arena, line.as_bytes()).unwrap()],
        &MedicationStore::default(),
        &arena,
        "2024-01-01".parse().unwrap(),
        &Config::default(),
        &mut Pass2Stats::default(),
        &Default::default(),
        None,
    )
    .unwrap();
    let keyed = worklist_for_groups(&["ghost".into()], &[vec![]], &[], "2024-01-01", None).unwrap();
    assert_eq!(keyed, whole);
}

// ---------------------------------------------------------------------------------------------
// Input splits and Arrow buffers
// ---------------------------------------------------------------------------------------------

/// A JSON line without `resourceType` (a Bulk Data `log.ndjson` line): counted as not FHIR.
const NOT_FHIR: &str = r#"{"exportId":"x","eventId":"kickoff"}"#;

/// Per target partition, the `(key, line)` records of a map output's `lines` blobs in order
/// (key markers left out), and the task's Medications (`meds`, the same in every row).
type Routed = (Vec<Vec<(String, String)>>, Vec<(String, String)>);

fn routed_records(cols: &[arrow::Column], pkeys: &[i64]) -> Routed {
    let mut parts = vec![Vec::new(); pkeys.len()];
    let mut meds = Vec::new();
    for row in 0..cols[0].len {
        let p = pkeys
            .iter()
            .position(|k| *k == pkey_at(&cols[0], row))
            .unwrap();
        for r in blobs::records(bin_slot(&cols[2], row).get(0)) {
            let (k, v) = r.unwrap();
            if !v.is_empty() {
                parts[p].push((k.to_string(), v.to_string()));
            }
        }
        let m: Vec<(String, String)> = blobs::records(bin_slot(&cols[1], row).get(0))
            .map(|r| r.map(|(k, v)| (k.to_string(), v.to_string())))
            .collect::<Result<_, _>>()
            .unwrap();
        if row == 0 {
            meds = m;
        } else {
            assert_eq!(m, meds, "every row carries the task's Medications");
        }
    }
    (parts, meds)
}

#[test]
fn byte_ranges_route_every_line_once_whatever_the_split() {
    // Real export lines, with a blank line, a line without a final newline and a non-FHIR
    // line, cut at many sizes (boundaries inside lines, at their ends, in the blank line).
    let src = shared_dir().join("data/bulk-10-patients");
    let lines = export_lines(&src);
    let mut text = String::new();
    let kept = lines.iter().filter(|l| is_relevant(l)).take(40);
    let other = lines.iter().filter(|l| !is_relevant(l)).take(40);
    for l in kept.chain(other) {
        text.push_str(l);
        text.push('\n');
    }
    text.push('\n');
    text.push_str(NOT_FHIR);
    text.push('\n');
    text.push_str(lines.last().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Mixed.ndjson");
    std::fs::write(&path, &text).unwrap();
    let pkeys = [4, 9, 2];
    let route = |start, end| {
        blobs::route_range_blobs(&path, start, end, pkeys.len(), true)
            .unwrap()
            .finish(&pkeys)
            .unwrap()
    };
    let whole = route(0, None);
    assert!(
        whole.1[0] > 0 && whole.1[3] > 0 && whole.1[4] > 0,
        "{:?}",
        whole.1
    );
    let (whole_parts, whole_meds) = routed_records(&whole.0, &pkeys);
    assert_eq!(
        whole_parts.iter().map(Vec::len).sum::<usize>() as u64,
        whole.1[0],
        "every kept line in one partition's blob"
    );
    let size = text.len() as u64;
    for step in [97, 1000, 1024, 4096, 65536, size / 3 + 1, size] {
        let mut counts = [0u64; 7];
        let mut parts: Vec<Vec<(String, String)>> = vec![Vec::new(); pkeys.len()];
        let mut meds = Vec::new();
        let mut start = 0;
        while start < size {
            let end = (start + step < size).then_some(start + step);
            let (cols, c) = route(start, end);
            for (a, b) in counts.iter_mut().zip(c) {
                *a += b;
            }
            let (p, m) = routed_records(&cols, &pkeys);
            for (all, some) in parts.iter_mut().zip(p) {
                all.extend(some);
            }
            meds.extend(m);
            start += step;
        }
        // Key markers are sent once per range, so compare the kept and shared lines only: the
        // same lines, in the file's order, in the same partitions.
        assert_eq!(counts, whole.1, "split of {step} bytes");
        assert_eq!(parts, whole_parts, "split of {step} bytes");
        assert_eq!(meds, whole_meds, "split of {step} bytes");
    }
}

#[test]
fn gzip_files_are_read_whole_and_not_from_the_middle() {
    let src = shared_dir().join("data/bulk-10-patients");
    let lines = export_lines(&src);
    let dir = tempfile::tempdir().unwrap();
    let (plain, gz) = (dir.path().join("A.ndjson"), dir.path().join("A.ndjson.gz"));
    let text = lines.join("\n");
    std::fs::write(&plain, &text).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, text.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let pkeys = [0, 1, 2, 3];
    let route = |p: &Path| {
        blobs::route_range_blobs(p, 0, None, pkeys.len(), false)
            .unwrap()
            .finish(&pkeys)
            .unwrap()
    };
    let (a, b) = (route(&plain), route(&gz));
    assert!(a.1[0] > 0, "{:?}", a.1);
    assert_eq!(a, b);
    assert!(matches!(
        blobs::route_range_blobs(&gz, 10, None, pkeys.len(), false),
        Err(PyEngineError::Io(m)) if m.contains("gzip")
    ));
}

// ---------------------------------------------------------------------------------------------
// Lines that are not JSON: refused as screen refuses them
// ---------------------------------------------------------------------------------------------

/// `osteoguard screen`'s error on an export (None: it screened it).
fn screen_error(export: &Path) -> Option<String> {
    let out = tempfile::tempdir().unwrap();
    let mut args = osteoguard_screen::ScreenArgs::new(export, "2024-06-30", out.path());
    args.format = vec![osteoguard_screen::Format::Csv];
    args.jobs = Some(1);
    osteoguard_screen::screen(args).err().map(|e| e.to_string())
}

#[test]
fn blob_router_refuses_a_line_that_is_not_json_naming_file_and_line() {
    let src = shared_dir().join("data/bulk-10-patients");
    let lines = export_lines(&src);
    let dxa = json!({"resourceType": "Observation", "id": "o1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "38267-1"}]},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2023-01-01",
        "valueQuantity": {"value": -2.6}})
    .to_string();
    let encounter = r#"{"resourceType":"Encounter","id":"e1","subject":{"reference":"Patient/p1"},"status":"finished"}"#;
    assert_eq!(
        classify_line(encounter),
        LineAction::Drop(DropReason::Irrelevant)
    );
    assert!(matches!(classify_line(&dxa), LineAction::Keep(_)));
    let bad_utf8 = {
        let mut b = dxa.as_bytes()[..dxa.len() - 1].to_vec();
        b.extend_from_slice(b",\"note\":\"\xff\"}");
        b
    };
    let cases: [(&str, Vec<u8>); 5] = [
        (
            "a truncated line of a kept type",
            dxa.as_bytes()[..dxa.len() / 2].to_vec(),
        ),
        (
            "a truncated line of a type no rule reads",
            encounter.as_bytes()[..encounter.len() - 1].to_vec(),
        ),
        (
            "two objects on one line",
            format!("{dxa}{dxa}").into_bytes(),
        ),
        (
            "two objects of a type no rule reads",
            format!("{encounter} {encounter}").into_bytes(),
        ),
        ("a line that is not UTF-8", bad_utf8),
    ];
    let pkeys = [0, 1];
    let mut refused = 0;
    for (what, bad) in cases {
        let dir = tempfile::tempdir().unwrap();
        // Real lines before and after it: the bad line is line 5 of the file.
        let mut text = Vec::new();
        for l in lines.iter().take(4) {
            text.extend_from_slice(l.as_bytes());
            text.push(b'\n');
        }
        text.extend_from_slice(&bad);
        text.push(b'\n');
        for l in lines.iter().skip(4).take(20) {
            text.extend_from_slice(l.as_bytes());
            text.push(b'\n');
        }
        let path = dir.path().join("Observation.ndjson");
        std::fs::write(&path, &text).unwrap();
        let whole = blobs::route_range_blobs(&path, 0, None, pkeys.len(), false);
        let ours = whole.as_ref().err().map(ToString::to_string);
        if std::str::from_utf8(&bad).is_ok() {
            // The same lines are refused, with the same words (file:line:column: …), as screen.
            assert_eq!(ours, screen_error(dir.path()), "{what}");
        } else {
            // Screen's pass 1 routes it (its peek reads bytes), pass 2 leaves it out unread; the
            // job cannot ship it without replacing bytes: refused in `assess`'s words.
            let assess = osteoguard_fhir::read_path(&path)
                .err()
                .map(|e| e.to_string());
            assert_eq!(ours, assess, "{what}");
        }
        if let Err(e) = &whole {
            refused += 1;
            let at = format!("{}:5:", path.display());
            assert!(
                matches!(e, PyEngineError::BadLine { at: a, message, .. }
                    if format!("{a}:") == at && message.starts_with("not valid JSON")),
                "{what}: {e}"
            );
            assert!(
                ours.as_deref().is_some_and(|m| m.starts_with(&at)),
                "{what}"
            );
            // A task whose range starts in the middle of the file names the same line.
            let start = lines[0].len() as u64 + 3;
            let e = blobs::route_range_blobs(&path, start, None, pkeys.len(), false).unwrap_err();
            assert_eq!(
                e.to_string(),
                ours.clone().unwrap(),
                "{what}, from byte {start}"
            );
            // The same line gzipped: the same message.
            let gz = dir.path().join("Observation.ndjson.gz");
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut enc, &text).unwrap();
            std::fs::write(&gz, enc.finish().unwrap()).unwrap();
            let e = blobs::route_range_blobs(&gz, 0, None, pkeys.len(), false).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("{}:5:", gz.display())),
                "{what}: {e}"
            );
            // The text reader names the file it was given.
            if let Ok(line) = std::str::from_utf8(&bad) {
                let (lo, ld) = utf8_column(&[line]);
                let (fo, fd) = utf8_column(&["s3a://bucket/Observation.ndjson"]);
                let la =
                    arrow::StrArray::new(arrow::Offsets::new(&lo, false), &ld, None, 0, 1).unwrap();
                let fa =
                    arrow::StrArray::new(arrow::Offsets::new(&fo, false), &fd, None, 0, 1).unwrap();
                let e = blobs::route_arrays_blobs(&[la], Some(&[fa]), 2, false)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                assert!(
                    e.starts_with("s3a://bucket/Observation.ndjson ")
                        && e.contains("not valid JSON"),
                    "{what}: {e}"
                );
            }
        }
    }
    assert_eq!(refused, 5);
}

/// A `utf8` array's offsets and data.
fn utf8_column(values: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let mut offsets = 0i32.to_le_bytes().to_vec();
    let mut data = Vec::new();
    for v in values {
        data.extend_from_slice(v.as_bytes());
        offsets.extend_from_slice(&(data.len() as i32).to_le_bytes());
    }
    (offsets, data)
}

#[test]
fn malformed_arrow_buffers_are_refused_not_read() {
    let offsets: Vec<u8> = [0i32, 3, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let e = arrow::StrArray::new(arrow::Offsets::new(&offsets, false), b"abc", None, 0, 2);
    assert!(matches!(e, Err(PyEngineError::Arrow(m)) if m.contains("decreasing")));
    let offsets: Vec<u8> = [0i32, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    let e = arrow::StrArray::new(arrow::Offsets::new(&offsets, false), b"abc", None, 0, 1);
    assert!(matches!(e, Err(PyEngineError::Arrow(m)) if m.contains("past the end")));
    let e = arrow::StrArray::new(
        arrow::Offsets::new(&offsets[..4], false),
        b"abc",
        None,
        0,
        1,
    );
    assert!(matches!(e, Err(PyEngineError::Arrow(m)) if m.contains("too short")));
    // "é" is two bytes: an offset between them is refused.
    let offsets: Vec<u8> = [0i32, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let e = arrow::StrArray::new(
        arrow::Offsets::new(&offsets, false),
        "é".as_bytes(),
        None,
        0,
        2,
    );
    assert!(matches!(e, Err(PyEngineError::Arrow(m)) if m.contains("UTF-8")));
    // 64-bit offsets, a slice and a null slot.
    let offsets: Vec<u8> = [0i64, 1, 3, 3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let a = arrow::StrArray::new(
        arrow::Offsets::new(&offsets, true),
        b"abc",
        Some(&[0b101]),
        0,
        3,
    )
    .unwrap();
    assert_eq!(
        (a.get(0), a.get(1), a.get(2), a.get(3)),
        (Some("a"), None, Some(""), None)
    );
    let s = arrow::StrArray::new(arrow::Offsets::new(&offsets, true), b"abc", None, 1, 2).unwrap();
    assert_eq!((s.get(0), s.get(1)), (Some("bc"), Some("")));
}

// ---------------------------------------------------------------------------------------------
// The plan of few, large rows (`blobs`): map side in byte ranges, reduce side per partition
// ---------------------------------------------------------------------------------------------

/// The NDJSON files of an export, sorted.
fn export_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".ndjson") || n.ends_with(".ndjson.gz")
        })
        .collect();
    files.sort();
    files
}

/// The map side's output rows `(pkey, meds, lines, prev)` of every range of `step` bytes of the
/// export's files (gzip files whole), with the line counts.
fn map_side(dir: &Path, step: u64, pkeys: &[i64]) -> (Vec<Vec<arrow::Column>>, [u64; 7]) {
    let mut out = Vec::new();
    let mut counts = [0u64; 7];
    for f in export_files(dir) {
        let size = std::fs::metadata(&f).unwrap().len();
        let gz = f.to_string_lossy().ends_with(".gz");
        let mut start = 0;
        while start < size.max(1) {
            let end = (!gz && start + step < size).then_some(start + step);
            let (cols, c) = blobs::route_range_blobs(&f, start, end, pkeys.len(), false)
                .unwrap()
                .finish(pkeys)
                .unwrap();
            for (a, b) in counts.iter_mut().zip(c) {
                *a += b;
            }
            out.push(cols);
            if gz {
                break;
            }
            start += step;
        }
    }
    (out, counts)
}

fn pkey_at(c: &arrow::Column, row: usize) -> i64 {
    i64::from_le_bytes(c.values[row * 8..row * 8 + 8].try_into().unwrap())
}

/// Slot `row` of a built `binary` column, as a one-slot array.
fn bin_slot(c: &arrow::Column, row: usize) -> arrow::BinArray<'_> {
    arrow::BinArray::new(
        arrow::Offsets::new(&c.values, false),
        &c.data,
        c.validity.as_deref(),
        row,
        1,
    )
    .unwrap()
}

/// The reduce side: partition `p`'s rows of every map output, then `worklist_of_blobs`.
fn reduce_side(maps: &[Vec<arrow::Column>], p: i64, as_of: &str) -> Worklist {
    let mut part = blobs::PartitionBlobs {
        meds: Vec::new(),
        lines: Vec::new(),
        prev: Vec::new(),
    };
    for cols in maps {
        for row in 0..cols[0].len {
            if pkey_at(&cols[0], row) == p {
                part.meds.push(bin_slot(&cols[1], row));
                part.lines.push(bin_slot(&cols[2], row));
                part.prev.push(bin_slot(&cols[3], row));
            }
        }
    }
    blobs::worklist_of_blobs(&part, None, as_of, None).unwrap()
}

#[test]
fn blob_plan_equals_screen_on_real_exports() {
    for name in ["bulk-10-patients", "synthea-r4-cohort-ndjson"] {
        let dir = shared_dir().join("data").join(name);
        if !dir.is_dir() {
            eprintln!("skipping: {} not found", dir.display());
            continue;
        }
        let pkeys = [7, 3, 11, 5];
        let (maps, counts) = map_side(&dir, 50_000, &pkeys);
        assert!(counts[0] > 0 && counts[5] > 0, "{name}: {counts:?}");
        for as_of in ["2019-06-30", "2024-06-30"] {
            let mut rows = Vec::new();
            for p in pkeys {
                let w = reduce_side(&maps, p, as_of);
                assert!(w.resolved.is_empty() && w.absent.is_empty());
                rows.extend(w.rows);
            }
            for r in &mut rows {
                // screen_csv blanks them (a first run: every finding new).
                assert_eq!(r.status.as_deref(), Some("new"));
                r.status = None;
                r.status_reason = None;
            }
            let spark = sorted_csv(&rows);
            let screen = screen_csv(&dir, as_of);
            assert!(screen.lines().count() > 1, "{name} {as_of}");
            assert_eq!(spark, screen, "{name} {as_of}");
        }
    }
}

#[test]
fn blob_rows_route_every_line_once_to_its_partition_whatever_the_split() {
    let src = shared_dir().join("data/bulk-10-patients");
    let lines = export_lines(&src);
    let mut text = String::new();
    let kept = lines.iter().filter(|l| is_relevant(l)).take(60);
    let other = lines.iter().filter(|l| !is_relevant(l)).take(40);
    let meds = lines
        .iter()
        .filter(|l| l.contains("\"resourceType\":\"Medication\""))
        .take(5);
    for l in kept.chain(other).chain(meds) {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str("\r\n");
    text.push_str(NOT_FHIR);
    text.push('\n');
    text.push_str(lines.last().unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Mixed.ndjson"), &text).unwrap();
    let pkeys = [0, 1, 2];
    // (partition, key, line) of every kept line and Medication, sorted.
    let records = |maps: &[Vec<arrow::Column>]| {
        let mut kept = Vec::new();
        let mut meds = Vec::new();
        for cols in maps {
            for row in 0..cols[0].len {
                let p = pkey_at(&cols[0], row);
                for r in blobs::records(bin_slot(&cols[2], row).get(0)) {
                    let (k, v) = r.unwrap();
                    assert_eq!(
                        osteoguard_screen::pass1::shard_of(k, pkeys.len()) as i64,
                        p,
                        "{k} in partition {p}"
                    );
                    if !v.is_empty() {
                        kept.push((p, k.to_string(), v.to_string()));
                    }
                }
                for r in blobs::records(bin_slot(&cols[1], row).get(0)) {
                    let (k, v) = r.unwrap();
                    meds.push((k.to_string(), v.to_string()));
                }
                assert!(bin_slot(&cols[3], row).get(0).is_empty());
            }
        }
        kept.sort();
        meds.sort();
        meds.dedup();
        (kept, meds)
    };
    let (whole, whole_counts) = map_side(dir.path(), u64::MAX / 2, &pkeys);
    assert!(whole_counts[0] > 0 && whole_counts[3] > 0 && whole_counts[4] > 0);
    let (kept, meds) = records(&whole);
    assert_eq!(
        kept.len() as u64,
        whole_counts[0],
        "every kept line once, not lost"
    );
    // The kept lines are the export's own text (no `\r`, no copy damage).
    assert!(kept.iter().all(|(_, _, l)| lines.contains(l)));
    let size = text.len() as u64;
    for step in [97, 1000, 4096, 65536, size / 3 + 1] {
        let (maps, counts) = map_side(dir.path(), step, &pkeys);
        assert_eq!(counts, whole_counts, "split of {step} bytes");
        assert_eq!(
            records(&maps),
            (kept.clone(), meds.clone()),
            "split of {step} bytes"
        );
    }
}

#[test]
fn malformed_blobs_are_refused_not_read() {
    let mut ok = Vec::new();
    ok.extend_from_slice(&2u32.to_le_bytes());
    ok.extend_from_slice(b"p1");
    ok.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        blobs::records(&ok).collect::<Result<Vec<_>, _>>().unwrap(),
        vec![("p1", "")]
    );
    let truncated = &ok[..ok.len() - 1];
    assert!(blobs::records(truncated).any(|r| r.is_err()));
    let mut long = 9u32.to_le_bytes().to_vec();
    long.extend_from_slice(b"p1");
    assert!(blobs::records(&long).any(|r| r.is_err()));
    let mut bad_utf8 = 1u32.to_le_bytes().to_vec();
    bad_utf8.push(0xff);
    bad_utf8.extend_from_slice(&0u32.to_le_bytes());
    assert!(blobs::records(&bad_utf8).any(|r| r.is_err()));
}

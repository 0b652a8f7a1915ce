//! Spine imaging recorded as ImagingStudy or DiagnosticReport (knowledge.md §7.2 "Imaging:
//! DiagnosticReport / ImagingStudy / Observation for MRI, CT, X-ray spine"), read as the
//! spine-imaging `Procedure` the engine already uses, and its effect on §9
//! `ovcf-imaging-recommended` clause (b): "within 365 d after any augmentation, a pain
//! Observation ≥ 5 that is ≥ 3 points higher than the lowest pain score recorded between the
//! augmentation and it, with no spine MRI/CT/X-ray dated on/after that pain Observation".
//!
//! The inputs are the two reproducer bundles of the session-10 differential
//! (`tools/oracle-dmab/cases/spine-imaging-as-{imagingstudy,diagnosticreport}.json`): a
//! vertebroplasty on 2024-01-10, pain 2 on 2024-01-12, pain 8 on 2024-03-01 15:00 and a lumbar
//! MRI on 2024-03-02, assessed on 2024-03-05. Each test varies only the imaging resource.

use chrono::{NaiveDate, NaiveDateTime};
use osteoguard_core::engine;
use osteoguard_core::model::{ProcedureKind, ProcedureStatus};
use osteoguard_core::{Config, FindingCode};
use osteoguard_fhir::{read_json_bytes, PatientData, ReadOutput};
use serde_json::{json, Value};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
}

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap_or(NaiveDateTime::MIN)
}

fn case(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/oracle-dmab/cases")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

const STUDY_CASE: &str = "spine-imaging-as-imagingstudy.json";
const REPORT_CASE: &str = "spine-imaging-as-diagnosticreport.json";

/// The case's imaging resource (its last entry).
fn imaging(b: &mut Value) -> &mut Value {
    let Some(last) = b["entry"].as_array_mut().and_then(|e| e.last_mut()) else {
        panic!("no entries")
    };
    &mut last["resource"]
}

/// The case without its imaging resource.
fn without_imaging(mut b: Value) -> Value {
    if let Some(e) = b["entry"].as_array_mut() {
        e.pop();
    }
    b
}

fn read(b: &Value) -> ReadOutput {
    match read_json_bytes(b.to_string().as_bytes(), "test") {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    }
}

fn patient(out: &ReadOutput) -> &PatientData {
    assert_eq!(out.patients.len(), 1);
    &out.patients[0]
}

/// Whether `ovcf-imaging-recommended` fires on `as_of`.
fn fires(b: &Value, as_of: &str) -> bool {
    let out = read(b);
    engine::evaluate(&patient(&out).record, d(as_of), &Config::default())
        .outcome
        .fired(FindingCode::OvcfImagingRecommended)
}

/// The issues the reader noted on `reference` (as `field: problem`).
fn issues_on(b: &Value, reference: &str) -> Vec<String> {
    let out = read(b);
    patient(&out)
        .issues
        .iter()
        .filter(|i| i.reference == reference)
        .map(|i| format!("{}: {}", i.field, i.problem))
        .collect()
}

/// The case with its imaging resource's `status` set (or removed): whether the imaging counts
/// (the finding does not fire) and the status issue noted on `reference`, if any.
fn check_status(
    name: &str,
    reference: &str,
    status: Option<&str>,
    counts: bool,
    note: Option<&str>,
) {
    let mut b = case(name);
    match status {
        Some(s) => imaging(&mut b)["status"] = json!(s),
        None => {
            if let Some(o) = imaging(&mut b).as_object_mut() {
                o.remove("status");
            }
        }
    }
    assert_eq!(
        fires(&b, "2024-03-05"),
        !counts,
        "{name}: status {status:?}"
    );
    let issues = issues_on(&b, reference);
    match note {
        Some(n) => assert!(
            issues.iter().any(|i| i.starts_with(n)),
            "{name}: status {status:?}: {issues:?}"
        ),
        None => assert!(issues.is_empty(), "{name}: status {status:?}: {issues:?}"),
    }
}

#[test]
fn the_two_reproducers_no_longer_recommend_imaging_already_done() {
    for name in [STUDY_CASE, REPORT_CASE] {
        let b = case(name);
        assert!(
            !fires(&b, "2024-03-05"),
            "{name}: the MRI of 2024-03-02 counts"
        );
        // The control: without the imaging resource, the pain rise is unimaged and (b) fires.
        assert!(
            fires(&without_imaging(b), "2024-03-05"),
            "{name} without its MRI"
        );
    }
}

#[test]
fn an_imaging_study_becomes_a_spine_imaging_procedure() {
    let b = case(STUDY_CASE);
    let out = read(&b);
    let p = patient(&out);
    let mri: Vec<_> = p
        .record
        .procedures
        .iter()
        .filter(|x| x.source.as_str() == "ImagingStudy/r1-imagingstudy-mri")
        .collect();
    assert_eq!(mri.len(), 1, "{:#?}", p.record.procedures);
    assert_eq!(mri[0].kind, ProcedureKind::SpineMri);
    assert_eq!(mri[0].status, ProcedureStatus::Completed);
    assert_eq!(mri[0].performed, Some(dt("2024-03-02T09:00")));
    assert_eq!(mri[0].visible_date(), Some(d("2024-03-02")));
    // Not a DXA scan.
    assert!(p.record.imaging_studies.is_empty());
    assert!(issues_on(&b, "ImagingStudy/r1-imagingstudy-mri").is_empty());
    let c = &out.stats.by_type["ImagingStudy"];
    assert_eq!((c.read, c.used), (1, 1));
}

#[test]
fn imaging_study_status_only_available_counts() {
    let reference = "ImagingStudy/r1-imagingstudy-mri";
    for (status, counts, note) in [
        (Some("available"), true, None),
        (Some("registered"), false, None),
        (Some("cancelled"), false, None),
        (Some("entered-in-error"), false, None),
        (Some("unknown"), false, Some("status: unknown")),
        (
            Some("done"),
            false,
            Some("status: unknown ImagingStudy status"),
        ),
        (None, false, Some("status: missing")),
    ] {
        check_status(STUDY_CASE, reference, status, counts, note);
    }
}

#[test]
fn imaging_study_dates() {
    let reference = "ImagingStudy/r1-imagingstudy-mri";
    // Started before the pain rise (the morning of 2024-03-01; the pain was at 15:00): the
    // rise is unimaged. §9 compares days ("dated on/after that pain Observation"), so a study
    // on the pain's day counts whatever its hour.
    for (started, counts) in [
        ("2024-02-29T09:00:00Z", false),
        ("2024-03-01T09:00:00Z", true),
        ("2024-03-05T09:00:00Z", true),
    ] {
        let mut b = case(STUDY_CASE);
        imaging(&mut b)["started"] = json!(started);
        assert_eq!(fires(&b, "2024-03-05"), !counts, "started {started}");
    }
    // A study started after the as-of date is not in the record on that day (§1.2).
    let mut b = case(STUDY_CASE);
    imaging(&mut b)["started"] = json!("2024-03-06T09:00:00Z");
    assert!(fires(&b, "2024-03-05"));
    assert!(!fires(&b, "2024-03-06"));
    // A done study without a date: noted, and not imaging on any day (unknown is never "no").
    let mut b = case(STUDY_CASE);
    if let Some(o) = imaging(&mut b).as_object_mut() {
        o.remove("started");
    }
    assert!(fires(&b, "2024-03-05"));
    let issues = issues_on(&b, reference);
    assert!(
        issues.iter().any(|i| i.starts_with("started: missing")),
        "{issues:?}"
    );
}

#[test]
fn a_diagnostic_report_becomes_a_spine_imaging_procedure_visible_from_issued() {
    let b = case(REPORT_CASE);
    let out = read(&b);
    let p = patient(&out);
    let mri: Vec<_> = p
        .record
        .procedures
        .iter()
        .filter(|x| x.source.as_str() == "DiagnosticReport/r1-diagnosticreport-mri")
        .collect();
    assert_eq!(mri.len(), 1, "{:#?}", p.record.procedures);
    assert_eq!(mri[0].kind, ProcedureKind::SpineMri);
    assert_eq!(mri[0].status, ProcedureStatus::Completed);
    assert_eq!(mri[0].performed, Some(dt("2024-03-02T09:00")));
    assert_eq!(mri[0].visible, Some(d("2024-03-02")));
    let c = &out.stats.by_type["DiagnosticReport"];
    assert_eq!((c.read, c.used), (1, 1));
}

#[test]
fn a_report_issued_after_the_as_of_date_does_not_count() {
    let mut b = case(REPORT_CASE);
    // Imaged on 2024-03-02, reported on 2024-03-06: on 2024-03-05 the record holds no report.
    imaging(&mut b)["issued"] = json!("2024-03-06T08:00:00Z");
    assert!(fires(&b, "2024-03-05"));
    assert!(!fires(&b, "2024-03-06"));
    // Without `issued`, the report is visible from its effective date (§1.2 "issued (else
    // effective)").
    if let Some(o) = imaging(&mut b).as_object_mut() {
        o.remove("issued");
    }
    assert!(!fires(&b, "2024-03-05"));
    let out = read(&b);
    let p = patient(&out);
    let Some(mri) = p
        .record
        .procedures
        .iter()
        .find(|x| x.source.as_str() == "DiagnosticReport/r1-diagnosticreport-mri")
    else {
        panic!("no report procedure")
    };
    assert_eq!(mri.visible, None);
    assert_eq!(mri.visible_date(), Some(d("2024-03-02")));
}

#[test]
fn diagnostic_report_status_only_a_done_report_counts() {
    let reference = "DiagnosticReport/r1-diagnosticreport-mri";
    for (status, counts, note) in [
        (Some("final"), true, None),
        (Some("amended"), true, None),
        (Some("corrected"), true, None),
        (Some("appended"), true, None),
        (Some("registered"), false, Some("status: registered")),
        (Some("partial"), false, Some("status: partial")),
        (Some("preliminary"), false, Some("status: preliminary")),
        (Some("cancelled"), false, None),
        (Some("entered-in-error"), false, None),
        (Some("unknown"), false, Some("status: unknown")),
        (
            Some("signed"),
            false,
            Some("status: unknown DiagnosticReport status"),
        ),
        (None, false, Some("status: missing")),
    ] {
        check_status(REPORT_CASE, reference, status, counts, note);
    }
}

#[test]
fn diagnostic_report_dates() {
    let reference = "DiagnosticReport/r1-diagnosticreport-mri";
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut b = case(REPORT_CASE);
        if let Some(o) = imaging(&mut b).as_object_mut() {
            o.remove("effectiveDateTime");
            f(o);
        }
        b
    };
    // effectivePeriod: the imaging date is its end (as a Procedure's performedPeriod).
    let b = with(&|o| {
        o.insert(
            "effectivePeriod".into(),
            json!({"start": "2024-02-29T09:00:00Z", "end": "2024-03-01T18:00:00Z"}),
        );
    });
    assert!(!fires(&b, "2024-03-05"));
    assert!(issues_on(&b, reference).is_empty());
    // A period without an end: its start, with a note (here before the pain: unimaged).
    let b = with(&|o| {
        o.insert(
            "effectivePeriod".into(),
            json!({"start": "2024-02-29T09:00:00Z"}),
        );
    });
    assert!(fires(&b, "2024-03-05"));
    let issues = issues_on(&b, reference);
    assert!(
        issues
            .iter()
            .any(|i| i.starts_with("effectivePeriod.end: missing")),
        "{issues:?}"
    );
    // No imaging date at all (only `issued`): noted, and not imaging on any day.
    let b = with(&|_| {});
    assert!(fires(&b, "2024-03-05"));
    let issues = issues_on(&b, reference);
    assert!(
        issues.iter().any(|i| i.starts_with("effective[x]: ")),
        "{issues:?}"
    );
    // A malformed date is noted as such.
    let b = with(&|o| {
        o.insert("effectiveDateTime".into(), json!("2024-02-30"));
    });
    assert!(fires(&b, "2024-03-05"));
    assert!(issues_on(&b, reference)
        .iter()
        .any(|i| i.starts_with("effectiveDateTime: ")));
}

#[test]
fn codes_loinc_spine_radiology_and_what_is_not_spine_imaging() {
    let code = |system: &str, c: &str| json!({"coding": [{"system": system, "code": c}]});
    // LOINC radiology codes (terminology.rs: spine_imaging_loinc): MR Lumbar spine, CT Thoracic
    // spine, XR Lumbar spine AP and Lateral.
    for (c, kind) in [
        ("24968-0", ProcedureKind::SpineMri),
        ("24978-9", ProcedureKind::SpineCt),
        ("24970-6", ProcedureKind::SpineXray),
    ] {
        let mut b = case(REPORT_CASE);
        imaging(&mut b)["code"] = code("http://loinc.org", c);
        let out = read(&b);
        let kinds: Vec<_> = patient(&out)
            .record
            .procedures
            .iter()
            .filter(|p| p.source.as_str().starts_with("DiagnosticReport/"))
            .map(|p| p.kind)
            .collect();
        assert_eq!(kinds, vec![kind], "{c}");
        assert!(!fires(&b, "2024-03-05"), "{c}");
        let mut b = case(STUDY_CASE);
        imaging(&mut b)["procedureCode"] = json!([code("http://loinc.org", c)]);
        let out = read(&b);
        let kinds: Vec<_> = patient(&out)
            .record
            .procedures
            .iter()
            .filter(|p| p.source.as_str().starts_with("ImagingStudy/"))
            .map(|p| p.kind)
            .collect();
        assert_eq!(kinds, vec![kind], "{c}");
    }
    // A laboratory panel (LOINC 57698-3 Lipid panel), a DXA report code (CPT 77080), a brain MRI
    // (LOINC 24590-2): read and ignored, and the rise stays unimaged.
    for (system, c) in [
        ("http://loinc.org", "57698-3"),
        ("http://www.ama-assn.org/go/cpt", "77080"),
        ("http://loinc.org", "24590-2"),
    ] {
        let mut b = case(REPORT_CASE);
        imaging(&mut b)["code"] = code(system, c);
        let out = read(&b);
        let c_ = &out.stats.by_type["DiagnosticReport"];
        assert_eq!((c_.read, c_.ignored), (1, 1), "{c}");
        assert!(fires(&b, "2024-03-05"), "{c}");
    }
}

#[test]
fn a_dxa_study_is_still_a_dxa_study() {
    // §13 KPI 4: a DXA ImagingStudy keeps its mapping (by DXA procedure code, or by the DICOM
    // modality BMD), and is no spine imaging.
    for study in [
        json!({"procedureCode": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "77080"}]}]}),
        json!({"modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "BMD"}]}),
    ] {
        let mut b = case(STUDY_CASE);
        let r = imaging(&mut b);
        if let Some(o) = r.as_object_mut() {
            o.remove("procedureCode");
            o.remove("modality");
        }
        for (k, v) in study.as_object().into_iter().flatten() {
            r[k] = v.clone();
        }
        let out = read(&b);
        let p = patient(&out);
        assert_eq!(p.record.imaging_studies.len(), 1, "{study}");
        assert_eq!(
            p.record.imaging_studies[0].started,
            Some(dt("2024-03-02T09:00"))
        );
        assert!(
            !p.record
                .procedures
                .iter()
                .any(|x| x.source.as_str().starts_with("ImagingStudy/")),
            "{study}"
        );
        assert!(
            fires(&b, "2024-03-05"),
            "{study}: a DXA is no spine imaging"
        );
    }
    // A study coded both ways (a DXA with a spine radiograph code) is both.
    let mut b = case(STUDY_CASE);
    imaging(&mut b)["modality"] =
        json!([{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "BMD"}]);
    let out = read(&b);
    let p = patient(&out);
    assert_eq!(p.record.imaging_studies.len(), 1);
    assert!(p
        .record
        .procedures
        .iter()
        .any(|x| x.source.as_str().starts_with("ImagingStudy/") && x.kind.is_spine_imaging()));
}

//! knowledge.md §13 KPI 4 ("DXA recorded, or a DXA Procedure/ImagingStudy", day 0–84) and KPI 9
//! ("first AOM dose given or dispensed (MedicationAdministration/MedicationDispense)", day
//! 0–112) read MedicationDispense and ImagingStudy: constructed FHIR Bundles written to disk and
//! read by the real readers (`osteoguard_programme::input::read`), at the window edges, and
//! once through the `osteoguard programme-report` binary. Expected answers are read off §13 by
//! hand: day 84 / 112 inside the window, day 85 / 113 outside; no usable date or status →
//! UNKNOWN, never FALSE.

use std::path::PathBuf;
use std::process::Command;

use chrono::{Days, NaiveDate};
use osteoguard_core::programme::{evaluate_patient, KpiStatus, ProgrammeInput, ReportingPeriod};
use osteoguard_core::Config;
use serde_json::{json, Value};

/// Day 0: the index hip fracture.
const D0: &str = "2024-01-10";

fn day(n: u64) -> String {
    let d0: NaiveDate = D0.parse().expect("date");
    (d0 + Days::new(n)).to_string()
}

fn period() -> ReportingPeriod {
    ReportingPeriod {
        start: "2024-01-01".parse().expect("date"),
        end: "2024-12-31".parse().expect("date"),
    }
}

/// A woman born 1950 with a closed hip fracture (SNOMED 359817006, §10.3a) on day 0.
fn base() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-05-01"}),
        json!({"resourceType": "Condition", "id": "hip", "subject": {"reference": "Patient/p1"},
               "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "359817006", "display": "Closed fracture of hip"}]},
               "onsetDateTime": D0, "recordedDate": D0}),
    ]
}

/// An alendronate (RxNorm 46041) dispense.
fn dispense(id: &str, status: Option<&str>, handed: Option<&str>, prepared: Option<&str>) -> Value {
    let mut v = json!({"resourceType": "MedicationDispense", "id": id,
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "46041", "display": "alendronate"}]}});
    if let Some(s) = status {
        v["status"] = json!(s);
    }
    if let Some(d) = handed {
        v["whenHandedOver"] = json!(d);
    }
    if let Some(d) = prepared {
        v["whenPrepared"] = json!(d);
    }
    v
}

/// An ImagingStudy whose one series has `modality` (DICOM), started on `started`.
fn study(id: &str, status: Option<&str>, modality: &str, started: Option<&str>) -> Value {
    let mut v = json!({"resourceType": "ImagingStudy", "id": id,
        "subject": {"reference": "Patient/p1"},
        "series": [{"uid": "1.2.3", "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality}}]});
    if let Some(s) = status {
        v["status"] = json!(s);
    }
    if let Some(d) = started {
        v["started"] = json!(d);
    }
    v
}

fn write_bundle(name: &str, resources: &[Value]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("programme-dispense-imaging");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(format!("{name}.json"));
    let bundle = json!({"resourceType": "Bundle", "type": "collection",
        "entry": resources.iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()});
    std::fs::write(&path, bundle.to_string()).expect("write");
    path
}

/// KPI `kpi` of the one patient, with its evidence, read by the real readers.
fn kpi(name: &str, extra: Vec<Value>, as_of_day: u64, kpi: u8) -> (KpiStatus, Vec<String>) {
    let mut rs = base();
    rs.extend(extra);
    let path = write_bundle(name, &rs);
    let input = osteoguard_programme::input::read(&path).expect("read");
    assert_eq!(input.patients.len(), 1);
    let p = &input.patients[0];
    let as_of: NaiveDate = day(as_of_day).parse().expect("date");
    let out = evaluate_patient(
        &ProgrammeInput {
            record: &p.record,
            items: &p.items,
        },
        period(),
        as_of,
        &Config::default(),
    );
    let k = out
        .kpi(kpi)
        .unwrap_or_else(|| panic!("{name}: no KPI {kpi}: {out:?}"));
    (k.status, k.evidence.clone())
}

/// Late enough for every window to have ended.
const LATE: u64 = 400;

#[test]
fn kpi4_a_dxa_imaging_study_counts_on_day_84_not_85() {
    let (st, ev) = kpi(
        "is-84",
        vec![study("dxa", Some("available"), "BMD", Some(&day(84)))],
        LATE,
        4,
    );
    assert_eq!(st, KpiStatus::True);
    assert_eq!(ev, vec!["ImagingStudy/dxa".to_string()]);
    let (st, _) = kpi(
        "is-85",
        vec![study("dxa", Some("available"), "BMD", Some(&day(85)))],
        LATE,
        4,
    );
    assert_eq!(st, KpiStatus::False);
    // Before the window has ended the answer is pending, even with the study found.
    let (st, _) = kpi(
        "is-84-pending",
        vec![study("dxa", Some("available"), "BMD", Some(&day(84)))],
        84,
        4,
    );
    assert_eq!(st, KpiStatus::Pending);
    // `registered`: the study exists (its images not yet available).
    let (st, _) = kpi(
        "is-registered",
        vec![study("dxa", Some("registered"), "BMD", Some(&day(0)))],
        LATE,
        4,
    );
    assert_eq!(st, KpiStatus::True);
}

#[test]
fn kpi4_a_dxa_procedure_code_on_the_study_counts_and_other_studies_do_not() {
    let mut s = study("dxa-cpt", Some("available"), "OT", Some(&day(30)));
    s["procedureCode"] =
        json!([{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "77080"}]}]);
    let (st, ev) = kpi("is-cpt", vec![s], LATE, 4);
    assert_eq!(st, KpiStatus::True);
    assert_eq!(ev, vec!["ImagingStudy/dxa-cpt".to_string()]);
    // A radiograph (DICOM DX) is not a DXA.
    let (st, _) = kpi(
        "is-dx",
        vec![study("xr", Some("available"), "DX", Some(&day(30)))],
        LATE,
        4,
    );
    assert_eq!(st, KpiStatus::False);
    // Cancelled or entered in error: nothing happened.
    let (st, _) = kpi(
        "is-cancelled",
        vec![study("dxa", Some("cancelled"), "BMD", Some(&day(30)))],
        LATE,
        4,
    );
    assert_eq!(st, KpiStatus::False);
}

#[test]
fn kpi4_a_dxa_study_without_date_or_status_is_unknown_not_false() {
    let (st, ev) = kpi(
        "is-undated",
        vec![study("dxa", Some("available"), "BMD", None)],
        LATE,
        4,
    );
    assert_eq!(st, KpiStatus::Unknown);
    assert_eq!(ev, vec!["ImagingStudy/dxa".to_string()]);
    let (st, _) = kpi(
        "is-nostatus",
        vec![study("dxa", None, "BMD", Some(&day(30)))],
        LATE,
        4,
    );
    assert_eq!(st, KpiStatus::Unknown);
    let (st, _) = kpi(
        "is-unknown",
        vec![study("dxa", Some("unknown"), "BMD", Some(&day(30)))],
        LATE,
        4,
    );
    assert_eq!(st, KpiStatus::Unknown);
}

#[test]
fn kpi9_a_dispense_counts_on_day_112_not_113() {
    let (st, ev) = kpi(
        "md-112",
        vec![dispense("alen", Some("completed"), Some(&day(112)), None)],
        LATE,
        9,
    );
    assert_eq!(st, KpiStatus::True);
    assert_eq!(ev, vec!["MedicationDispense/alen".to_string()]);
    let (st, _) = kpi(
        "md-113",
        vec![dispense("alen", Some("completed"), Some(&day(113)), None)],
        LATE,
        9,
    );
    assert_eq!(st, KpiStatus::False);
    let (st, _) = kpi(
        "md-112-pending",
        vec![dispense("alen", Some("completed"), Some(&day(112)), None)],
        112,
        9,
    );
    assert_eq!(st, KpiStatus::Pending);
}

#[test]
fn kpi9_whenhandedover_decides_and_whenprepared_stands_in_when_it_is_absent() {
    // Prepared on day 112 but handed over on day 113: dispensed on day 113.
    let (st, _) = kpi(
        "md-prep112-hand113",
        vec![dispense(
            "alen",
            Some("completed"),
            Some(&day(113)),
            Some(&day(112)),
        )],
        LATE,
        9,
    );
    assert_eq!(st, KpiStatus::False);
    // Only whenPrepared: day 112 counts, 113 does not.
    let (st, _) = kpi(
        "md-prep112",
        vec![dispense("alen", Some("completed"), None, Some(&day(112)))],
        LATE,
        9,
    );
    assert_eq!(st, KpiStatus::True);
    let (st, _) = kpi(
        "md-prep113",
        vec![dispense("alen", Some("completed"), None, Some(&day(113)))],
        LATE,
        9,
    );
    assert_eq!(st, KpiStatus::False);
}

#[test]
fn kpi9_a_dispense_without_date_or_status_is_unknown_and_one_not_handed_over_is_not_a_dispense() {
    let (st, ev) = kpi(
        "md-undated",
        vec![dispense("alen", Some("completed"), None, None)],
        LATE,
        9,
    );
    assert_eq!(st, KpiStatus::Unknown);
    assert_eq!(ev, vec!["MedicationDispense/alen".to_string()]);
    let (st, _) = kpi(
        "md-nostatus",
        vec![dispense("alen", None, Some(&day(10)), None)],
        LATE,
        9,
    );
    assert_eq!(st, KpiStatus::Unknown);
    for s in [
        "in-progress",
        "preparation",
        "cancelled",
        "declined",
        "entered-in-error",
    ] {
        let (st, _) = kpi(
            &format!("md-{s}"),
            vec![dispense("alen", Some(s), Some(&day(10)), None)],
            LATE,
            9,
        );
        assert_eq!(st, KpiStatus::False, "{s}");
    }
    // A dispense of a drug that is not an AOM is not read.
    let mut other = dispense("ppi", Some("completed"), Some(&day(10)), None);
    other["medicationCodeableConcept"] = json!({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7646", "display": "omeprazole"}]});
    let (st, _) = kpi("md-other", vec![other], LATE, 9);
    assert_eq!(st, KpiStatus::False);
}

/// The findings of the one patient at `as_of_day` (days after the index fracture), as JSON.
fn assess_findings(name: &str, resources: &[Value], as_of_day: u64) -> Vec<Value> {
    let read = osteoguard_fhir::read_path(&write_bundle(name, resources)).expect("read");
    let p = &read.patients[0];
    let as_of: NaiveDate = day(as_of_day).parse().expect("date");
    let a = osteoguard_core::assess_with_issues(&p.record, &p.issues, as_of, &Config::default());
    match serde_json::to_value(&a.findings).expect("json") {
        Value::Array(v) => v,
        other => panic!("findings are not an array: {other}"),
    }
}

fn finding<'a>(findings: &'a [Value], code: &str) -> Option<&'a Value> {
    findings.iter().find(|f| f["code"] == code)
}

#[test]
fn assess_counts_an_oral_bisphosphonate_fill_by_its_days_supply() {
    // §4.3: an oral bisphosphonate is active while "last fill + days supply + 30 days ≥ as_of".
    // Alendronate handed over on day 10 with 90 days' supply covers days 10..99, + 30 → day 129.
    const CODE: &str = "osteoporosis-treatment-indicated";
    let untreated = assess_findings("fill-none", &base(), 60);
    assert!(
        finding(&untreated, CODE).is_some(),
        "a hip fracture without therapy: treatment indicated (§9)"
    );
    let mut fill = dispense("alen", Some("completed"), Some(&day(10)), None);
    fill["daysSupply"] =
        json!({"value": 90, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"});
    let mut rs = base();
    rs.push(fill);
    assert!(finding(&assess_findings("fill-60", &rs, 60), CODE).is_none());
    assert!(finding(&assess_findings("fill-129", &rs, 129), CODE).is_none());
    assert!(finding(&assess_findings("fill-130", &rs, 130), CODE).is_some());

    // No daysSupply: whether the fill still covers as_of is unknown — the finding stays, and
    // names the dispense as the reason to confirm therapy (unknown is not "no").
    let mut rs = base();
    rs.push(dispense("alen", Some("completed"), Some(&day(10)), None));
    let findings = assess_findings("fill-unknown", &rs, 40);
    let f = finding(&findings, CODE).expect("still indicated while therapy is unknown");
    assert!(
        f["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .any(|e| e.to_string().contains("MedicationDispense/alen")),
        "{f}"
    );
}

#[test]
fn an_old_dispense_and_a_dxa_imaging_study_change_no_assess_finding() {
    let mut with = base();
    with.push(dispense("alen", Some("completed"), Some(&day(10)), None));
    with.push(study("dxa", Some("available"), "BMD", Some(&day(10))));
    let as_of: NaiveDate = day(LATE).parse().expect("date");
    let assess = |name: &str, rs: &[Value]| {
        let read = osteoguard_fhir::read_path(&write_bundle(name, rs)).expect("read");
        let p = &read.patients[0];
        let a =
            osteoguard_core::assess_with_issues(&p.record, &p.issues, as_of, &Config::default());
        (
            serde_json::to_value(&a.findings).expect("json"),
            p.record.dispenses.len(),
            p.record.imaging_studies.len(),
        )
    };
    let (f_with, n_disp, n_img) = assess("assess-with", &with);
    let (f_without, _, _) = assess("assess-without", &base());
    assert_eq!((n_disp, n_img), (1, 1), "both are read into the record");
    assert_eq!(f_with, f_without);
}

#[test]
fn programme_report_binary_counts_a_dispense_and_a_dxa_imaging_study() {
    let mut rs = base();
    rs.push(dispense("alen", Some("completed"), Some(&day(112)), None));
    rs.push(study("dxa", Some("available"), "BMD", Some(&day(84))));
    let input = write_bundle("binary", &rs);
    let out = input.with_extension("report.json");
    let o = Command::new(env!("CARGO_BIN_EXE_osteoguard"))
        .arg("programme-report")
        .arg(&input)
        .args(["--period-start", "2024-01-01", "--period-end", "2024-12-31"])
        .args(["--as-of", &day(LATE), "--format", "json", "-o"])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
    let kpis = v["patients"][0]["kpis"].as_array().expect("kpis");
    let get = |n: u64| kpis.iter().find(|k| k["kpi"] == n).expect("kpi");
    assert_eq!(get(4)["status"], "true", "{}", get(4));
    assert_eq!(get(4)["evidence"], json!(["ImagingStudy/dxa"]));
    assert_eq!(get(9)["status"], "true", "{}", get(9));
    assert_eq!(get(9)["evidence"], json!(["MedicationDispense/alen"]));
}

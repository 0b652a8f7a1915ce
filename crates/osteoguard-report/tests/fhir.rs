//! The FHIR rendering against the assessment it renders: the seed case through the real
//! pipeline at its four dates — one DetectedIssue per finding with the mapped severity, the
//! evidence as `implicated`/`evidence.detail`, one Task per task linked to its finding's
//! DetectedIssue, one RiskAssessment, the provenance tags everywhere, byte-identical reruns.
//! (Validation by a third-party FHIR library: crates/osteoguard-cli/tests/fhir_validation.rs.)

use std::path::Path;

use chrono::NaiveDate;
use osteoguard_core::{Assessment, Severity};
use osteoguard_report::fhir;
use serde_json::Value;

fn assess(date: &str) -> Assessment {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-case.json");
    let read = osteoguard_fhir::read_path(&seed).expect("read seed case");
    let p = read.patients.first().expect("seed case has a patient");
    let as_of = NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("date");
    osteoguard_core::assess_with_issues(
        &p.record,
        &p.issues,
        as_of,
        &osteoguard_core::Config::default(),
    )
}

fn of_type<'a>(b: &'a Value, t: &str) -> Vec<&'a Value> {
    b["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == t)
        .collect()
}

#[test]
fn seed_case_resources_mirror_the_assessment() {
    for date in ["2022-12-15", "2023-06-15", "2023-08-23", "2023-09-28"] {
        let a = assess(date);
        let text = fhir::render(&a);
        assert_eq!(text, fhir::render(&a), "deterministic");
        let b: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(b["type"], "collection");

        let issues = of_type(&b, "DetectedIssue");
        assert_eq!(issues.len(), a.findings.len(), "{date}");
        for (f, di) in a.findings.iter().zip(&issues) {
            assert_eq!(di["code"]["coding"][0]["code"], f.code.as_str());
            assert_eq!(di["code"]["coding"][0]["system"], fhir::FINDING_SYSTEM);
            let want = match f.severity {
                Severity::Critical | Severity::High => "high",
                Severity::Moderate => "moderate",
                Severity::Info => "low",
            };
            assert_eq!(di["severity"], want);
            assert_eq!(di["detail"], f.summary.as_str());
            assert_eq!(
                di["mitigation"][0]["action"]["text"],
                f.recommendation.as_str()
            );
            assert_eq!(di["identifiedDateTime"], date);
            assert_eq!(di["patient"]["reference"], a.patient.reference.as_str());
            assert_eq!(di["author"]["reference"], "Device/osteoguard");
            let details: Vec<&str> = di["evidence"][0]["detail"]
                .as_array()
                .map(|v| v.iter().filter_map(|r| r["reference"].as_str()).collect())
                .unwrap_or_default();
            let evidence: Vec<&str> = f.evidence.iter().map(|e| e.reference.as_str()).collect();
            assert_eq!(details, evidence);
            for r in &evidence {
                assert!(
                    di["implicated"]
                        .as_array()
                        .expect("implicated")
                        .iter()
                        .any(|x| x["reference"] == *r),
                    "{r} implicated"
                );
            }
        }

        let tasks = of_type(&b, "Task");
        assert_eq!(tasks.len(), a.tasks.len());
        for (t, ft) in a.tasks.iter().zip(&tasks) {
            assert_eq!(ft["for"]["reference"], a.patient.reference.as_str());
            assert_eq!(ft["authoredOn"], date);
            match t.due {
                Some(d) => assert_eq!(ft["restriction"]["period"]["end"], d.to_string()),
                None => assert!(ft.get("restriction").is_none()),
            }
            let linked = t
                .finding
                .is_some_and(|c| a.findings.iter().any(|f| f.code == c));
            match ft["reasonReference"]["reference"].as_str() {
                Some(r) => {
                    assert!(linked);
                    let id = r
                        .strip_prefix("DetectedIssue/")
                        .expect("DetectedIssue reference");
                    let target = issues
                        .iter()
                        .find(|d| d["id"] == id)
                        .expect("target in bundle");
                    assert_eq!(
                        target["code"]["coding"][0]["code"],
                        t.finding.map(|c| c.as_str()).unwrap_or_default()
                    );
                }
                None => assert!(!linked, "task {} should point at its finding", t.code),
            }
        }

        let risk = of_type(&b, "RiskAssessment");
        assert_eq!(risk.len(), 1);
        assert_eq!(
            risk[0]["prediction"][0]["qualitativeRisk"]["coding"][0]["code"],
            a.fracture_risk.category.as_str()
        );

        let engine_tag = format!("engine:osteoguard/{}", a.provenance.engine_version);
        for e in b["entry"].as_array().expect("entries") {
            let tags = e["resource"]["meta"]["tag"].as_array().expect("tags");
            assert!(tags.iter().any(|t| t["code"] == engine_tag.as_str()));
        }
    }
}

//! Every Synthea patient of the shared data (bulk-10-patients, synthea-r4-cohort-ndjson,
//! synthea-r4-bundles) read and assessed end to end: the assessment is valid at a fixed as-of
//! date and at the patient's last record date; and for one patient each with prednisone,
//! alendronate and a DXA T-score, what the engine sees is pinned against the raw resource
//! (read here with plain serde_json, independently of the reader).

use std::path::Path;
use std::sync::OnceLock;

use chrono::NaiveDate;
use osteoguard_core::engine;
use osteoguard_core::model::{Ingredient, PatientRecord};
use osteoguard_core::{assess_with_issues, Assessment, Config, SCHEMA};
use osteoguard_fhir::{read_path, ReadOutput};
use serde_json::Value;

mod common;
use common::{ndjson, shared};

const DATASETS: [&str; 3] = [
    "bulk-10-patients",
    "synthea-r4-cohort-ndjson",
    "synthea-r4-bundles",
];

fn d(s: &str) -> NaiveDate {
    match NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d") {
        Ok(x) => x,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn read(dir: &Path) -> ReadOutput {
    match read_path(dir) {
        Ok(o) => o,
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

fn cohort() -> Option<&'static (ReadOutput, std::path::PathBuf)> {
    static C: OnceLock<Option<(ReadOutput, std::path::PathBuf)>> = OnceLock::new();
    C.get_or_init(|| {
        shared().map(|s| {
            let dir = s.join("synthea-r4-cohort-ndjson");
            (read(&dir), dir)
        })
    })
    .as_ref()
}

/// The last date anything in the record becomes visible.
fn last_record_date(r: &PatientRecord) -> Option<NaiveDate> {
    let m = r.medications.iter().filter_map(|x| x.visible);
    let o = r.observations.iter().filter_map(|x| x.visible);
    let c = r.conditions.iter().filter_map(|x| x.visible);
    let p = r.procedures.iter().filter_map(|x| x.date());
    m.chain(o).chain(c).chain(p).max()
}

fn check_valid(a: &Assessment, who: &str) {
    assert_eq!(a.schema, SCHEMA, "{who}");
    assert_eq!(a.spine.len(), 17, "{who}: spine levels");
    for f in &a.findings {
        let code = f.code.as_str();
        assert!(!code.is_empty(), "{who}: finding without code");
        assert!(!f.summary.trim().is_empty(), "{who} {code}: summary");
        assert!(
            !f.recommendation.trim().is_empty(),
            "{who} {code}: recommendation"
        );
        assert!(!f.citation.trim().is_empty(), "{who} {code}: citation");
        assert!(
            !f.evidence.is_empty() || code == "data-insufficient",
            "{who} {code}: no evidence"
        );
        for e in &f.evidence {
            assert!(!e.reference.is_empty(), "{who} {code}: evidence reference");
        }
    }
    let js = match serde_json::to_value(a) {
        Ok(v) => v,
        Err(e) => panic!("{who}: assessment does not serialise: {e}"),
    };
    for key in [
        "schema",
        "patient",
        "asOf",
        "fractureRisk",
        "glucocorticoid",
        "denosumab",
        "boneDensity",
        "spine",
        "findings",
        "tasks",
        "dataQuality",
        "provenance",
    ] {
        assert!(js.get(key).is_some(), "{who}: JSON lacks {key}");
    }
    for f in js["findings"].as_array().into_iter().flatten() {
        for key in [
            "code",
            "severity",
            "summary",
            "evidence",
            "recommendation",
            "citation",
        ] {
            assert!(f.get(key).is_some(), "{who}: finding JSON lacks {key}");
        }
        let sev = f["severity"].as_str().unwrap_or("");
        assert!(
            ["critical", "high", "moderate", "info"].contains(&sev),
            "{who}: severity {sev:?}"
        );
    }
}

#[test]
fn every_synthea_patient_assesses() {
    let Some(data) = shared() else { return };
    let config = Config::default();
    let fixed = d("2019-12-31");
    let mut total = 0;
    for ds in DATASETS {
        let out = if ds == "synthea-r4-cohort-ndjson" {
            match cohort() {
                Some((o, _)) => o.clone(),
                None => return,
            }
        } else {
            read(&data.join(ds))
        };
        let expected = match ds {
            "bulk-10-patients" => 13,
            "synthea-r4-cohort-ndjson" => 114,
            _ => 10,
        };
        assert_eq!(out.patients.len(), expected, "{ds}");
        for p in &out.patients {
            let who = format!("{ds} Patient/{}", p.id);
            let mut dates = vec![fixed];
            if let Some(last) = last_record_date(&p.record) {
                dates.push(last);
            }
            for as_of in dates {
                let a = assess_with_issues(&p.record, &p.issues, as_of, &config);
                check_valid(&a, &format!("{who} @ {as_of}"));
                assert_eq!(a.patient.reference, format!("Patient/{}", p.id));
                total += 1;
            }
        }
    }
    // At least one assessment per patient (patients with no dated item have only the fixed date).
    assert!(total > 13 + 114 + 10, "{total} assessments");
}

/// The raw line of `Type.ndjson(.gz)` with this id.
fn raw(dir: &Path, ty: &str, id: &str) -> Value {
    for name in [format!("{ty}.ndjson"), format!("{ty}.ndjson.gz")] {
        let p = dir.join(name);
        if p.exists() {
            if let Some(v) = ndjson(&p)
                .into_iter()
                .find(|v| v["id"].as_str() == Some(id))
            {
                return v;
            }
        }
    }
    panic!("{ty}/{id} not in {}", dir.display())
}

/// Prednisone: patient 983561b3-…, MedicationRequest dd0feb36-… (predniSONE 5 MG Oral Tablet,
/// 1 tablet, frequency 1 / period 1 d): on a day inside the order the engine's current
/// prednisone-equivalent dose is tablets × 5 mg × frequency / period.
#[test]
fn prednisone_pinned_against_raw() {
    let Some((out, dir)) = cohort() else { return };
    let pid = "983561b3-02dd-4227-88a7-835827bd9566";
    let mid = "dd0feb36-be6b-41bd-baf4-4347f96b6472";
    let r = raw(dir, "MedicationRequest", mid);
    assert_eq!(r["subject"]["reference"], format!("Patient/{pid}"));
    assert_eq!(
        r["medicationCodeableConcept"]["coding"][0]["code"],
        "312617"
    );
    let display = r["medicationCodeableConcept"]["coding"][0]["display"]
        .as_str()
        .unwrap_or("");
    assert_eq!(display, "predniSONE 5 MG Oral Tablet");
    let authored = d(r["authoredOn"].as_str().unwrap_or(""));
    let di = &r["dosageInstruction"][0];
    let tablets = di["doseAndRate"][0]["doseQuantity"]["value"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let freq = di["timing"]["repeat"]["frequency"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let period = di["timing"]["repeat"]["period"]
        .as_f64()
        .unwrap_or(f64::NAN);
    assert_eq!(di["timing"]["repeat"]["periodUnit"], "d");
    let mg_per_tablet = 5.0; // "5 MG" of the RxNorm SCD display
    let expected = tablets * mg_per_tablet * freq / period; // prednisone: PEq factor 1
    assert_eq!(expected, 5.0);

    let Some(p) = out.patient(pid) else {
        panic!("Patient/{pid} missing")
    };
    let config = Config::default();
    let as_of = authored + chrono::Days::new(1);
    let a = assess_with_issues(&p.record, &p.issues, as_of, &config);
    check_valid(&a, pid);
    assert_eq!(
        a.glucocorticoid.current_prednisone_equivalent_mg_per_day,
        Some(expected),
        "as of {as_of}"
    );
    assert_eq!(a.glucocorticoid.course_start, Some(authored));
    assert!(a
        .glucocorticoid
        .series
        .iter()
        .any(|(day, mg)| *day == authored && *mg == expected));
    // The day before the order was written it does not exist (§1.2).
    let before = authored - chrono::Days::new(1);
    let b = assess_with_issues(&p.record, &p.issues, before, &config);
    assert_ne!(
        b.glucocorticoid.current_prednisone_equivalent_mg_per_day,
        Some(expected)
    );
    assert!(b.glucocorticoid.series.is_empty());
}

/// Alendronate + DXA: patient ab47f921-…, MedicationRequest d8501187-… (Alendronic acid 10 MG
/// Oral Tablet, status active, no dosageInstruction) and its 38265-5 T-score Observations.
#[test]
fn alendronate_and_dxa_pinned_against_raw() {
    let Some((out, dir)) = cohort() else { return };
    let pid = "ab47f921-b3c4-4bbe-8744-9bf303f64db9";
    let mid = "d8501187-b74d-42fc-abe2-759fa008af0d";
    let r = raw(dir, "MedicationRequest", mid);
    assert_eq!(r["subject"]["reference"], format!("Patient/{pid}"));
    assert_eq!(
        r["medicationCodeableConcept"]["coding"][0]["code"],
        "904419"
    );
    assert_eq!(r["status"], "active");
    assert!(r.get("dosageInstruction").is_none());
    let authored = d(r["authoredOn"].as_str().unwrap_or(""));

    let Some(p) = out.patient(pid) else {
        panic!("Patient/{pid} missing")
    };
    let config = Config::default();
    let as_of = d("2019-12-31");

    // §4.3: an active oral-bisphosphonate order covering as_of is active therapy, dated by the
    // order, sourced from that resource.
    let ev = engine::evaluate(&p.record, as_of, &config);
    let use_ = ev
        .therapy
        .active_agents
        .iter()
        .find(|u| u.agent == Ingredient::Alendronate);
    let Some(use_) = use_ else {
        panic!("alendronate not active: {:?}", ev.therapy)
    };
    assert_eq!(use_.source.as_str(), format!("MedicationRequest/{mid}"));
    assert_eq!(use_.date, Some(authored));
    assert!(!ev.therapy.is_planned(Ingredient::Alendronate));
    // Not a denosumab course, so no transition is involved.
    assert_eq!(ev.dmab.dose_count, 0);
    // Before the order was written it is not therapy.
    let ev0 = engine::evaluate(&p.record, authored - chrono::Days::new(1), &config);
    assert!(!ev0.therapy.is_active(Ingredient::Alendronate));

    // DXA: every 38265-5 Observation of this patient, as the engine reports it in boneDensity.
    let a = assess_with_issues(&p.record, &p.issues, as_of, &config);
    check_valid(&a, pid);
    let mut raw_t: Vec<(NaiveDate, f64, String)> = ndjson(&dir.join("Observation.ndjson.gz"))
        .into_iter()
        .filter(|o| {
            o["subject"]["reference"] == format!("Patient/{pid}")
                && o["code"]["coding"][0]["code"] == "38265-5"
        })
        .map(|o| {
            (
                d(o["effectiveDateTime"].as_str().unwrap_or("")),
                o["valueQuantity"]["value"].as_f64().unwrap_or(f64::NAN),
                format!("Observation/{}", o["id"].as_str().unwrap_or("")),
            )
        })
        .filter(|(date, _, _)| *date <= as_of)
        .collect();
    raw_t.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
    assert!(!raw_t.is_empty());
    assert!(raw_t.iter().any(|(date, v, r)| *date == d("2015-06-09")
        && *v == -3.0706154785992252
        && r == "Observation/06b47a80-bdc6-40d7-a098-0dfcd7cd5523"));
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let mut seen: Vec<(NaiveDate, f64, String)> = a
        .bone_density
        .t_scores
        .iter()
        .map(|t| (t.date, t.value, t.reference.clone()))
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
    let want: Vec<(NaiveDate, f64, String)> = raw_t
        .iter()
        .map(|(date, v, r)| (*date, round2(*v), r.clone()))
        .collect();
    assert_eq!(seen, want);
    let (min_date, min_v, _) = raw_t
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .unwrap_or((NaiveDate::MIN, f64::NAN, String::new()));
    assert_eq!(a.bone_density.lowest_t_score, Some(round2(min_v)));
    assert_eq!(a.bone_density.lowest_t_score_date, Some(min_date));
    assert_eq!(
        a.bone_density.latest_dxa,
        raw_t.iter().map(|x| x.0).max(),
        "latest DXA"
    );
    // T ≤ -2.5 → osteoporosis by density; on alendronate, the treatment-indicated finding is
    // suppressed (§4.3).
    assert!(min_v <= -2.5);
    assert!(!a
        .findings
        .iter()
        .any(|f| f.code.as_str() == "osteoporosis-treatment-indicated"));
}

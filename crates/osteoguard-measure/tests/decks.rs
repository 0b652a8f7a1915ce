//! The measure developers' official test decks: every test patient of CMS249 (53) and CMS645
//! (49) gets exactly the expected membership in every population of its expected
//! MeasureReport (`../shared/data/ecqm-qicore-2024/tests/<Measure>/<patient>/MeasureReport-*.json`).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use osteoguard_measure::input::read_records;
use osteoguard_measure::{evaluate, Measure, MeasurementPeriod, Population, ValueSets};
use serde_json::Value;

/// `$OSTEOGUARD_SHARED/data`, else `<workspace>/../shared/data`; missing data fails the test
/// unless `OSTEOGUARD_ALLOW_NO_SHARED=1`.
fn shared() -> Option<PathBuf> {
    let dir = match std::env::var_os("OSTEOGUARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let data = dir.join("data");
    if data.is_dir() {
        return Some(data);
    }
    if std::env::var("OSTEOGUARD_ALLOW_NO_SHARED").as_deref() == Ok("1") {
        return None;
    }
    panic!(
        "shared test data not found at {} (set OSTEOGUARD_SHARED)",
        data.display()
    );
}

struct Expected {
    period: MeasurementPeriod,
    populations: Vec<(Population, bool)>,
    description: String,
}

fn expected(folder: &Path) -> Expected {
    let mut reports = Vec::new();
    for e in std::fs::read_dir(folder).expect("deck folder") {
        let p = e.expect("entry").path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("MeasureReport-"))
        {
            reports.push(p);
        }
    }
    assert_eq!(
        reports.len(),
        1,
        "{}: one expected MeasureReport",
        folder.display()
    );
    let mr: Value =
        serde_json::from_str(&std::fs::read_to_string(&reports[0]).expect("read")).expect("json");
    let date = |k: &str| {
        NaiveDate::parse_from_str(mr["period"][k].as_str().expect("period"), "%Y-%m-%d")
            .expect("date")
    };
    let period = MeasurementPeriod::new(date("start"), date("end")).expect("period");
    let groups = mr["group"].as_array().expect("group");
    assert_eq!(groups.len(), 1);
    let populations = groups[0]["population"]
        .as_array()
        .expect("population")
        .iter()
        .map(|p| {
            let code = p["code"]["coding"][0]["code"].as_str().expect("code");
            let pop = Population::from_code(code).expect("known population");
            let count = p["count"].as_u64().expect("count");
            assert!(count <= 1, "an individual report counts 0 or 1");
            (pop, count == 1)
        })
        .collect();
    let description = mr["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| {
            x["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("cqfm-testCaseDescription"))
        })
        .and_then(|x| x["valueMarkdown"].as_str())
        .unwrap_or("")
        .to_string();
    Expected {
        period,
        populations,
        description,
    }
}

/// Runs one deck; returns (agreeing, total, disagreement lines).
fn run_deck(measure: Measure, deck: &Path) -> (usize, usize, Vec<String>) {
    let vs = ValueSets::embedded(measure).expect("embedded value sets");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(deck)
        .expect("deck")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut ok = 0;
    let mut bad = Vec::new();
    for folder in &folders {
        let exp = expected(folder);
        let read = read_records(folder).expect("readable deck folder");
        assert_eq!(read.records.len(), 1, "{}: one patient", folder.display());
        let got = evaluate(measure, &read.records[0], &vs, &exp.period);
        let mut got_pops = got.populations.clone();
        let mut exp_pops = exp.populations.clone();
        let key = |p: &(Population, bool)| p.0.code();
        got_pops.sort_by_key(key);
        exp_pops.sort_by_key(key);
        if got_pops == exp_pops {
            ok += 1;
        } else {
            bad.push(format!(
                "{} {:?}\n  expected {:?}\n  got      {:?}",
                folder.file_name().unwrap_or_default().to_string_lossy(),
                exp.description,
                exp_pops,
                got_pops
            ));
        }
    }
    (ok, folders.len(), bad)
}

#[test]
fn cms249_deck_every_patient_every_population() {
    let Some(data) = shared() else { return };
    let deck = data.join("ecqm-qicore-2024/tests/AppropriateDXAScansForWomenUnder65FHIR");
    let (ok, total, bad) = run_deck(Measure::Cms249, &deck);
    assert_eq!(total, 53, "the CMS249 deck has 53 test patients");
    assert!(bad.is_empty(), "CMS249 {ok}/{total}:\n{}", bad.join("\n"));
}

#[test]
fn cms645_deck_every_patient_every_population() {
    let Some(data) = shared() else { return };
    let deck =
        data.join("ecqm-qicore-2024/tests/BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR");
    let (ok, total, bad) = run_deck(Measure::Cms645, &deck);
    assert_eq!(total, 49, "the CMS645 deck has 49 test patients");
    assert!(bad.is_empty(), "CMS645 {ok}/{total}:\n{}", bad.join("\n"));
}

//! `osteoguard measure` as a user runs it, over the official eCQM test decks: one Bundle with
//! an individual MeasureReport per patient agreeing with the deck's expected report, and a
//! summary whose counts are the sums of the expected individual counts.

mod common;
use common::shared;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osteoguard"))
}

/// patient id → population code → expected count, from the deck's MeasureReports.
fn expected(deck: &std::path::Path) -> HashMap<String, HashMap<String, u64>> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(deck).expect("deck") {
        let folder = e.expect("entry").path();
        if !folder.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&folder).expect("folder") {
            let p = f.expect("entry").path();
            if !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("MeasureReport-"))
            {
                continue;
            }
            let mr: Value =
                serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
            let pid = mr["contained"][0]["parameter"][0]["valueString"]
                .as_str()
                .expect("subject parameter")
                .to_string();
            let pops = counts(&mr);
            out.insert(pid, pops);
        }
    }
    out
}

fn counts(report: &Value) -> HashMap<String, u64> {
    report["group"][0]["population"]
        .as_array()
        .expect("population")
        .iter()
        .map(|x| {
            (
                x["code"]["coding"][0]["code"]
                    .as_str()
                    .expect("code")
                    .to_string(),
                x["count"].as_u64().expect("count"),
            )
        })
        .collect()
}

fn check(measure: &str, deck_name: &str, patients: usize) {
    let Some(data) = shared() else { return };
    let deck = data.join("ecqm-qicore-2024/tests").join(deck_name);
    let out_file =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{measure}-reports.json"));
    let out = bin()
        .args([
            "measure",
            "--measure",
            measure,
            "--period-start",
            "2025-01-01",
        ])
        .args(["--period-end", "2025-12-31", "-o"])
        .arg(&out_file)
        .arg(&deck)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).expect("output")).expect("json");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().expect("entries");
    assert_eq!(
        entries.len(),
        patients + 1,
        "one individual report per patient + summary"
    );
    let exp = expected(&deck);
    assert_eq!(exp.len(), patients);
    let mut sums: HashMap<String, u64> = HashMap::new();
    for e in &entries[..patients] {
        let r = &e["resource"];
        assert_eq!(r["type"], "individual");
        let pid = r["subject"]["reference"]
            .as_str()
            .and_then(|s| s.strip_prefix("Patient/"))
            .expect("subject");
        let want = exp
            .get(pid)
            .unwrap_or_else(|| panic!("{pid} not in the deck"));
        assert_eq!(&counts(r), want, "patient {pid}");
        for (k, v) in want {
            *sums.entry(k.clone()).or_default() += v;
        }
    }
    let summary = &entries[patients]["resource"];
    assert_eq!(summary["type"], "summary");
    assert_eq!(counts(summary), sums);
}

#[test]
fn measure_cms249_over_the_deck_directory() {
    check("cms249", "AppropriateDXAScansForWomenUnder65FHIR", 53);
}

#[test]
fn measure_cms645_over_the_deck_directory() {
    check(
        "cms645",
        "BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR",
        49,
    );
}

#[test]
fn measure_rejects_an_unknown_measure_with_usage_exit_code() {
    let out = bin()
        .args(["measure", "--measure", "cms999", "."])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

/// Both decks' patients as one Bulk-style export (one NDJSON file per resource type).
fn deck_export(data: &std::path::Path, dir: &std::path::Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("export dir");
    let mut by_type: HashMap<String, String> = HashMap::new();
    for deck in [
        "AppropriateDXAScansForWomenUnder65FHIR",
        "BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR",
    ] {
        let root = data.join("ecqm-qicore-2024/tests").join(deck);
        for folder in std::fs::read_dir(&root).expect("deck") {
            let folder = folder.expect("entry").path();
            if !folder.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&folder).expect("folder") {
                let p = f.expect("entry").path();
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read"))
                    .expect("json");
                let t = v["resourceType"].as_str().expect("type").to_string();
                if t == "MeasureReport" {
                    continue;
                }
                let line = serde_json::to_string(&v).expect("line") + "\n";
                by_type.entry(t).or_default().push_str(&line);
            }
        }
    }
    for (t, text) in by_type {
        std::fs::write(dir.join(format!("{t}.ndjson")), text).expect("write ndjson");
    }
}

#[test]
fn screen_with_measures_writes_measure_reports_beside_the_worklists() {
    let Some(data) = shared() else { return };
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screen-measures");
    let export = tmp.join("export");
    let out = tmp.join("out");
    let _ = std::fs::remove_dir_all(&out);
    deck_export(&data, &export);
    let o = bin()
        .arg("screen")
        .arg(&export)
        .args([
            "--as-of",
            "2025-12-31",
            "--measures",
            "cms249,cms645",
            "-q",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.join("summary.json").exists(),
        "the screening itself ran"
    );
    for (m, deck) in [
        ("cms249", "AppropriateDXAScansForWomenUnder65FHIR"),
        (
            "cms645",
            "BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR",
        ),
    ] {
        let b: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("measure-reports").join(format!("{m}.json")))
                .expect("measure report bundle"),
        )
        .expect("json");
        let entries = b["entry"].as_array().expect("entries");
        // Every patient of both decks gets an individual report for each measure (102 + summary).
        assert_eq!(entries.len(), 53 + 49 + 1, "{m}");
        let mut sums: HashMap<String, u64> = HashMap::new();
        for want in expected(&data.join("ecqm-qicore-2024/tests").join(deck)).values() {
            for (k, v) in want {
                *sums.entry(k.clone()).or_default() += v;
            }
        }
        // The other deck's patients are in no population of this measure, so the summary counts
        // are this deck's expected sums.
        assert_eq!(counts(&entries[entries.len() - 1]["resource"]), sums, "{m}");
    }
}

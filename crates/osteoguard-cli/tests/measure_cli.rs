//! `osteoguard measure` as a user runs it, over the official eCQM test decks: one Bundle with
//! an individual MeasureReport per patient agreeing with the deck's expected report, and a
//! summary whose counts are the sums of the expected individual counts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osteoguard"))
}

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
            let pops = mr["group"][0]["population"]
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
                .collect();
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

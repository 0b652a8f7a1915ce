//! Integration tests of population screening.
//!
//! * screen == per-patient assess, on the shared Synthea Bulk exports and on a synthetic export;
//! * the synthetic scenarios produce exactly their expected findings (knowledge.md §11);
//! * a second run marks findings new / persisting / resolved;
//! * SIGKILL mid-run leaves the previous outputs intact and a re-run completes.
//!
//! The kill test spawns this crate's own `osteoguard-screen` binary (`CARGO_BIN_EXE_…`, built by
//! cargo for these tests) rather than locating `target/debug/osteoguard` of the CLI crate, which
//! `cargo test -p osteoguard-screen` would not build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use osteoguard_core::Config;
use osteoguard_screen::synth::{read_expected, ExpectedFinding};
use osteoguard_screen::{run_screen, ScreenArgs, SynthArgs};
use serde_json::Value;

const AS_OF: &str = "2025-06-30";

fn shared_dir() -> PathBuf {
    match std::env::var_os("OSTEOGUARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Whether a shared-data directory is there. CI always has ../shared, so a missing one fails the
/// test (a silent skip would hide a broken setup) unless OSTEOGUARD_ALLOW_NO_SHARED is set.
fn present_or_allowed_skip(dir: &Path) -> bool {
    if dir.is_dir() {
        return true;
    }
    assert!(
        std::env::var_os("OSTEOGUARD_ALLOW_NO_SHARED").is_some(),
        "{} not found (set OSTEOGUARD_SHARED, or OSTEOGUARD_ALLOW_NO_SHARED=1 to skip)",
        dir.display()
    );
    eprintln!("SKIPPED: {} not found", dir.display());
    false
}

fn synth(dir: &Path, patients: u64, seed: u64) {
    osteoguard_screen::synth::generate(&SynthArgs {
        patients,
        seed,
        out: dir.to_path_buf(),
        as_of: AS_OF.into(),
        filler: 12,
        quiet: true,
    })
    .expect("synth");
}

/// A comparable worklist row: patient, code, severity, summary, due, evidence references.
type Key = (String, String, String, String, Option<String>, Vec<String>);

/// The worklist rows of `worklist.json`, in file order (status dropped).
fn worklist_rows(out: &Path) -> Vec<(Key, Value)> {
    let text = std::fs::read_to_string(out.join("worklist.json")).expect("worklist.json");
    let v: Value = serde_json::from_str(&text).expect("worklist.json is JSON");
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            let key = (
                s("patientId"),
                s("code"),
                s("severity"),
                s("summary"),
                r["due"].as_str().map(str::to_string),
                r["evidence"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            );
            (key, r.clone())
        })
        .collect()
}

/// Per-patient assess over the whole export read at once by `osteoguard_fhir::read_path`
/// (what `osteoguard assess --patient` does), independently of the screening pipeline.
fn per_patient_assess(export: &Path, as_of: &str) -> (usize, BTreeSet<Key>) {
    let as_of: NaiveDate = as_of.parse().unwrap();
    let read = osteoguard_fhir::read_path(export).expect("read_path");
    let config = Config::default();
    let mut keys = BTreeSet::new();
    for p in &read.patients {
        let mut issues = p.issues.clone();
        issues.extend(read.unattached.iter().cloned());
        let a = osteoguard_core::assess_with_issues(&p.record, &issues, as_of, &config);
        for f in &a.findings {
            keys.insert((
                p.id.clone(),
                f.code.as_str().to_string(),
                f.severity.as_str().to_string(),
                f.summary.clone(),
                f.due.map(|d| d.to_string()),
                {
                    // Worklists list each evidence reference once, in first-seen order.
                    let mut seen = BTreeSet::new();
                    f.evidence
                        .iter()
                        .filter(|e| seen.insert(e.reference.to_string()))
                        .map(|e| e.reference.to_string())
                        .collect()
                },
            ));
        }
    }
    (read.patients.len(), keys)
}

fn screen(export: &Path, out: &Path, as_of: &str) -> osteoguard_screen::Summary {
    let mut a = ScreenArgs::new(export, as_of, out);
    a.jobs = Some(2);
    run_screen(&a).expect("screen")
}

fn assert_matches_assess(export: &Path, as_of: &str) -> Vec<(Key, Value)> {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let summary = screen(export, &out, as_of);
    let rows = worklist_rows(&out);
    let got: BTreeSet<Key> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(got.len(), rows.len(), "duplicate worklist rows");
    let (n_patients, want) = per_patient_assess(export, as_of);
    assert_eq!(summary.patients_read as usize, n_patients, "patients read");
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{}: screen differs from per-patient assess\nmissing from screen: {missing:#?}\nextra in screen: {extra:#?}",
        export.display()
    );
    // Worklist order (issue 22): one block per patient, blocks by the patient's gravest
    // finding, then its earliest due date; in a block, most severe first, then earliest due.
    let rank = |s: &str| match s {
        "critical" => 0,
        "high" => 1,
        "moderate" => 2,
        _ => 3,
    };
    let due = |k: &Key| k.4.clone().unwrap_or_else(|| "9999".into());
    let mut block: BTreeMap<String, (i32, String)> = BTreeMap::new();
    for (k, _) in &rows {
        let e = block.entry(k.0.clone()).or_insert((3, "9999".into()));
        e.0 = e.0.min(rank(&k.2));
        e.1 = e.1.clone().min(due(k));
    }
    let keys: Vec<_> = rows
        .iter()
        .map(|(k, _)| {
            let b = &block[&k.0];
            (
                b.0,
                b.1.clone(),
                k.0.clone(),
                rank(&k.2),
                due(k),
                k.1.clone(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        keys, sorted,
        "worklist not in patient-block / severity / due order"
    );
    // The CSV holds the same rows in the same order.
    let mut rdr = csv::Reader::from_path(out.join("worklist.csv")).unwrap();
    let prov_col = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "provenance")
        .expect("provenance column");
    let hash = osteoguard_core::Config::default().provenance().config_hash;
    let csv_ids: Vec<(String, String)> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            // Every row carries the stamp of the rules and settings that produced it.
            assert!(r[prov_col].ends_with(&hash), "{}", &r[prov_col]);
            (r[0].to_string(), r[3].to_string())
        })
        .collect();
    let json_ids: Vec<(String, String)> = rows
        .iter()
        .map(|(k, _)| (k.0.clone(), k.1.clone()))
        .collect();
    assert_eq!(csv_ids, json_ids);
    let html = std::fs::read_to_string(out.join("worklist.html")).unwrap();
    assert_eq!(html.matches("<tr data-rank=").count(), rows.len());
    rows
}

#[test]
fn shared_synthea_exports_match_per_patient_assess() {
    let shared = shared_dir().join("data");
    let mut ran = 0;
    for (name, as_of) in [
        ("bulk-10-patients", "2024-06-01"),
        ("synthea-r4-cohort-ndjson", "2019-06-01"),
    ] {
        let dir = shared.join(name);
        if !present_or_allowed_skip(&dir) {
            continue;
        }
        assert_matches_assess(&dir, as_of);
        ran += 1;
    }
    if ran == 0 {
        eprintln!("SKIPPED: no shared data");
    }
}

#[test]
fn synthetic_export_matches_per_patient_assess() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("export");
    synth(&exp, 400, 11);
    assert_matches_assess(&exp, AS_OF);
}

/// Spine imaging recorded as ImagingStudy or DiagnosticReport (knowledge.md §7.2): screening
/// routes both types to the reader and so gives the findings of per-patient assess. Patients:
/// the two reproducer bundles of the session-10 differential (an MRI after a pain rise after a
/// vertebroplasty: no `ovcf-imaging-recommended`), and the same with a cancelled study and with
/// a report issued after the as-of date (the finding fires: the imaging does not count). The
/// lines are written with `resourceType` first, as Bulk exports do, so pass 1's byte-level
/// path sees them too.
#[test]
fn spine_imaging_as_study_or_report_screens_as_assess_reads_it() {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/oracle-dmab/cases");
    let bundle = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(cases.join(name)).unwrap()).unwrap()
    };
    // Every resource of `b`, with its ids (and the patient's) suffixed by `tag`.
    let renamed = |b: &Value, tag: &str| -> Vec<Value> {
        let text = b.to_string();
        let pid = b["id"].as_str().unwrap();
        let text = text.replace(pid, &format!("{pid}{tag}"));
        let b: Value = serde_json::from_str(&text).unwrap();
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"].clone())
            .collect()
    };
    let study = bundle("spine-imaging-as-imagingstudy.json");
    let report = bundle("spine-imaging-as-diagnosticreport.json");
    let mut resources = renamed(&study, "");
    resources.extend(renamed(&report, ""));
    let mut cancelled = renamed(&study, "-cancelled");
    if let Some(r) = cancelled.last_mut() {
        r["status"] = "cancelled".into();
    }
    resources.extend(cancelled);
    let mut late = renamed(&report, "-late");
    if let Some(r) = late.last_mut() {
        r["issued"] = "2024-03-06T08:00:00Z".into();
    }
    resources.extend(late);

    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("export");
    std::fs::create_dir_all(&exp).unwrap();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for mut r in resources {
        let ty = r["resourceType"].as_str().unwrap().to_string();
        if let Some(o) = r.as_object_mut() {
            o.remove("resourceType");
        }
        let rest = r.to_string();
        let line = format!("{{\"resourceType\":\"{ty}\",{}\n", &rest[1..]);
        files.entry(ty).or_default().push_str(&line);
    }
    for (ty, text) in &files {
        std::fs::write(exp.join(format!("{ty}.ndjson")), text).unwrap();
    }
    let as_of = "2024-03-05";
    let rows = assert_matches_assess(&exp, as_of);
    let imaging: BTreeSet<&str> = rows
        .iter()
        .filter(|(k, _)| k.1 == "ovcf-imaging-recommended")
        .map(|(k, _)| k.0.as_str())
        .collect();
    assert_eq!(
        imaging,
        BTreeSet::from(["r1-diagnosticreport-late", "r1-imagingstudy-cancelled"]),
        "{rows:#?}"
    );
}

#[test]
fn synthetic_scenarios_produce_exactly_their_expected_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("export");
    synth(&exp, 600, 5);
    let out = tmp.path().join("out");
    let summary = screen(&exp, &out, AS_OF);
    let expected = read_expected(&exp).unwrap();
    assert_eq!(summary.patients_read as usize, expected.len());
    let mut got: BTreeMap<String, BTreeSet<ExpectedFinding>> = BTreeMap::new();
    for (k, _) in worklist_rows(&out) {
        got.entry(k.0).or_default().insert(ExpectedFinding {
            code: k.1,
            severity: k.2,
        });
    }
    let mut scenarios = BTreeSet::new();
    let mut failures = BTreeMap::new();
    for e in &expected {
        scenarios.insert(e.scenario.clone());
        let want: BTreeSet<ExpectedFinding> = e.findings.iter().cloned().collect();
        let have = got.remove(&e.patient).unwrap_or_default();
        if want != have {
            failures.entry(e.scenario.clone()).or_insert_with(|| {
                let missing: Vec<String> = want
                    .difference(&have)
                    .map(|f| format!("{} ({})", f.code, f.severity))
                    .collect();
                let extra: Vec<String> = have
                    .difference(&want)
                    .map(|f| format!("{} ({})", f.code, f.severity))
                    .collect();
                format!("{}: missing {missing:?}, unexpected {extra:?}", e.patient)
            });
        }
    }
    assert!(
        got.is_empty(),
        "findings for unknown patients: {:?}",
        got.keys().take(5).collect::<Vec<_>>()
    );
    assert!(
        scenarios.len() >= 10,
        "every scenario present: {scenarios:?}"
    );
    assert!(
        failures.is_empty(),
        "scenarios whose findings differ from knowledge.md §11:\n{failures:#?}"
    );
}

/// `(patient, code) → (status, severity, status reason)` of worklist.json's rows.
fn run_rows(out: &Path) -> BTreeMap<(String, String), (String, String, String)> {
    let text = std::fs::read_to_string(out.join("worklist.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["patientId"].as_str().unwrap().to_string(),
                    r["code"].as_str().unwrap().to_string(),
                ),
                (
                    r["status"].as_str().unwrap_or("").to_string(),
                    r["severity"].as_str().unwrap_or("").to_string(),
                    r["statusReason"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn second_run_marks_new_persisting_and_resolved() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("export");
    synth(&exp, 300, 3);
    let out = tmp.path().join("out");
    let s1 = screen(&exp, &out, AS_OF);
    let r1 = run_rows(&out);
    assert_eq!(s1.run_id, 1);
    assert_eq!(s1.previous_run_id, None);
    assert!(r1
        .values()
        .all(|s| s.0 == "new" && s.2 == "first screening run"));
    assert_eq!(s1.status.new as usize, r1.len());
    // Three months later: denosumab schedules move on, GC courses age.
    let s2 = screen(&exp, &out, "2025-09-30");
    let r2 = run_rows(&out);
    assert_eq!(s2.previous_run_id, Some(1));
    let sev = |s: &str| {
        ["info", "moderate", "high", "critical"]
            .iter()
            .position(|x| *x == s)
    };
    // Issue 22: a finding of the previous run keeps its code as persisting, escalated or
    // de-escalated by its severity; one that is new to the patient is new, or escalated /
    // de-escalated when it supersedes a finding of the same topic
    // (osteoguard_core::follow_up::TOPICS) — then the previous one is not listed again.
    let mut superseded = BTreeSet::new();
    for (k, (st, sv, why)) in &r2 {
        assert!(!why.is_empty(), "{k:?}: a status without its reason");
        if st == "recheck-needed" {
            continue;
        }
        match r1.get(k) {
            Some((_, before, _)) => {
                let want = match sev(sv).cmp(&sev(before)) {
                    std::cmp::Ordering::Greater => "escalated",
                    std::cmp::Ordering::Less => "de-escalated",
                    std::cmp::Ordering::Equal => "persisting",
                };
                assert_eq!(st, want, "{k:?}");
            }
            None if st == "new" => {}
            None => {
                assert!(st == "escalated" || st == "de-escalated", "{k:?}: {st}");
                let code = osteoguard_core::FindingCode::parse(&k.1).unwrap();
                let topic = osteoguard_core::follow_up::TOPICS
                    .iter()
                    .find(|t| t.chain.contains(&code))
                    .expect("a chain");
                // The reason names the finding it supersedes / replaces: one of the same
                // topic, flagged in run 1 and gone in run 2.
                let named = why
                    .strip_prefix("supersedes ")
                    .or_else(|| why.strip_prefix("replaces "))
                    .and_then(|r| r.split(' ').next())
                    .unwrap_or_else(|| panic!("{k:?}: {why}"));
                let p = (k.0.clone(), named.to_string());
                assert!(
                    topic.chain.iter().any(|c| c.as_str() == named)
                        && r1.contains_key(&p)
                        && !r2.contains_key(&p),
                    "{k:?}: {why}"
                );
                superseded.insert(p);
            }
        }
    }
    // Every finding gone since run 1 is resolved (with its evidence), recheck-needed (with
    // what to re-measure) or superseded.
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("worklist.json")).unwrap()).unwrap();
    let resolved_got: BTreeSet<_> = v["resolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(!r["reason"].as_str().unwrap().is_empty());
            (
                r["patientId"].as_str().unwrap().to_string(),
                r["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let recheck: BTreeSet<_> = r2
        .iter()
        .filter(|(_, s)| s.0 == "recheck-needed")
        .map(|(k, _)| k.clone())
        .collect();
    let gone: BTreeSet<_> = r1
        .keys()
        .filter(|k| !r2.contains_key(*k) || recheck.contains(*k))
        .cloned()
        .collect();
    let accounted: BTreeSet<_> = resolved_got
        .union(&recheck)
        .cloned()
        .collect::<BTreeSet<_>>()
        .union(&superseded)
        .cloned()
        .collect();
    assert_eq!(accounted, gone);
    assert!(resolved_got.is_disjoint(&recheck) && resolved_got.is_disjoint(&superseded));
    assert_eq!(s2.status.resolved as usize, resolved_got.len());
    assert_eq!(s2.status.recheck_needed as usize, recheck.len());
    if !r1.is_empty() {
        assert!(s2.status.persisting > 0, "some findings persist");
        assert!(
            s2.status.new > 0 && s2.status.escalated > 0,
            "the schedule moved: {:?}",
            s2.status
        );
    }
    // The registry holds both runs, keyed by run.
    let db = rusqlite::Connection::open(out.join("registry.sqlite")).unwrap();
    let runs: i64 = db
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 2);
    let resolved_db: i64 = db
        .query_row(
            "SELECT count(*) FROM findings WHERE run_id = 2 AND status = 'resolved'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(resolved_db as usize, resolved_got.len());
}

fn snapshot(out: &Path) -> BTreeMap<String, Vec<u8>> {
    [
        "worklist.csv",
        "worklist.json",
        "worklist.html",
        "summary.json",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read(out.join(f)).unwrap()))
    .collect()
}

fn leftovers(out: &Path) -> Vec<String> {
    std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Spawns the binary, waits until `ready(out)` holds, then SIGKILLs it.
fn kill_when(export: &Path, out: &Path, env: (&str, &str), ready: impl Fn(&Path) -> bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_osteoguard-screen"))
        .args([
            "screen",
            export.to_str().unwrap(),
            "--as-of",
            "2025-08-15",
            "--jobs",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(out)
        .env(env.0, env.1)
        .spawn()
        .expect("spawn osteoguard-screen");
    let t = Instant::now();
    while !ready(out) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "run never reached the kill point"
        );
        if let Ok(Some(st)) = child.try_wait() {
            panic!("run finished before it could be killed: {st}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix
    let st = child.wait().unwrap();
    assert!(!st.success(), "the run was killed, not finished");
}

#[test]
fn sigkill_mid_run_leaves_previous_outputs_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("export");
    synth(&exp, 300, 9);
    let out = tmp.path().join("out");
    screen(&exp, &out, AS_OF);
    let before = snapshot(&out);

    // Killed in pass 2 (shards being evaluated).
    kill_when(
        &exp,
        &out,
        ("OSTEOGUARD_SCREEN_TEST_DELAY_MS", "400"),
        |o| leftovers(o).iter().any(|n| n.starts_with(".screen-tmp-")),
    );
    assert_eq!(snapshot(&out), before, "outputs changed by a killed run");

    // Killed while the new worklists are being written (temporary files exist).
    kill_when(
        &exp,
        &out,
        ("OSTEOGUARD_SCREEN_TEST_MERGE_DELAY_MS", "5"),
        |o| {
            leftovers(o)
                .iter()
                .any(|n| n.starts_with(".worklist.csv.tmp-"))
        },
    );
    assert_eq!(
        snapshot(&out),
        before,
        "outputs changed by a run killed while writing"
    );
    assert!(
        !leftovers(&out).is_empty(),
        "the killed runs left their temporary files"
    );

    // A re-run completes, cleans up after the killed runs and publishes new outputs.
    let s = screen(&exp, &out, "2025-08-15");
    assert_eq!(
        s.previous_run_id,
        Some(1),
        "killed runs were never committed"
    );
    assert_eq!(s.run_id, 2);
    let left: Vec<String> = leftovers(&out)
        .into_iter()
        .filter(|n| !n.starts_with(".registry"))
        .collect();
    assert!(left.is_empty(), "leftovers after re-run: {left:?}");
    let text = std::fs::read_to_string(out.join("worklist.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["asOf"], "2025-08-15");
}

/// Every line pass 1 routes as "ignored" is one the FHIR reader itself ignores: checked on every
/// resource of the shared data (Bulk exports line by line, Bundles entry by entry) — codings
/// written by others, not by us.
#[test]
fn routing_ignores_only_what_the_reader_ignores() {
    use osteoguard_screen::route::{decide, decide_slow, peek, type_is_read, Decision};
    use std::io::Read;

    fn resources_in(path: &Path, out: &mut Vec<Vec<u8>>) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let mut bytes = Vec::new();
        let Ok(mut f) = std::fs::File::open(path) else {
            return;
        };
        if name.ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(f)
                .read_to_end(&mut bytes)
                .expect("gunzip");
        } else {
            f.read_to_end(&mut bytes).expect("read");
        }
        if name.contains(".ndjson") {
            out.extend(
                bytes
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        } else if name.ends_with(".json") {
            let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
                return;
            };
            if v["resourceType"] == "Bundle" {
                for e in v["entry"].as_array().into_iter().flatten() {
                    if e["resource"].is_object() {
                        out.push(serde_json::to_vec(&e["resource"]).expect("serialise"));
                    }
                }
            } else if v["resourceType"].is_string() {
                out.push(bytes);
            }
        }
    }
    fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                walk(&p, out);
            } else {
                resources_in(&p, out);
            }
        }
    }

    let data = shared_dir().join("data");
    if !present_or_allowed_skip(&data) {
        return;
    }
    let mut lines = Vec::new();
    walk(&data, &mut lines);
    let mut ignored_by_type: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        let Some((ty, decision)) = (match peek(line) {
            Some(p) => p
                .resource_type
                .as_deref()
                .map(|t| (t.to_string(), decide(&p))),
            None => decide_slow(line),
        }) else {
            continue;
        };
        if decision != Decision::Ignored || !type_is_read(&ty) {
            continue;
        }
        let v: Value = serde_json::from_slice(line).expect("routed lines are JSON");
        let read = osteoguard_fhir::read_resources(vec![v]);
        let c = &read.stats.by_type[&ty];
        assert_eq!(
            (c.used, c.not_understood),
            (0, 0),
            "routed as ignored but the reader reads it: {}",
            String::from_utf8_lossy(line)
        );
        *ignored_by_type.entry(ty).or_default() += 1;
    }
    eprintln!(
        "{} resources; routed as ignored: {ignored_by_type:?}",
        lines.len()
    );
    // The check must have had something to check for each filtered type.
    for ty in [
        "Condition",
        "MedicationRequest",
        "Observation",
        "Procedure",
        "DiagnosticReport",
    ] {
        assert!(
            ignored_by_type.get(ty).copied().unwrap_or(0) > 0,
            "no {ty} routed as ignored in the shared data: {ignored_by_type:?}"
        );
    }
}

/// Runs the binary to its end (a hang is a failure: the guard kills it after two minutes — a
/// bound on a bug, not a timing assertion). Returns the exit code and standard error.
fn run_binary(args: &[&str], env: &[(&str, String)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_osteoguard-screen"));
    cmd.args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn osteoguard-screen");
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("osteoguard-screen {args:?} hung (killed after 120 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).unwrap();
    }
    (status.code(), err)
}

/// A full disk at any point of a run — pass-1 shards, pass-2 runs, the worklists, the summary —
/// ends the run with exit 1 and a message naming the file and "no space left on device"; the
/// previous outputs stay as they were and no temporary file or directory is left. Before the
/// fix, a failed write in pass 1 hung the run for ever (the reader blocked in `send`). The
/// full disk is the fault-injection seam of `osteoguard_screen::fault` (writes fail with ENOSPC
/// after N bytes), swept from the first write to past the end of a whole run.
#[test]
fn a_full_disk_ends_the_run_with_the_path_and_leaves_previous_outputs_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("export");
    synth(&exp, 300, 5);
    let out = tmp.path().join("out");
    screen(&exp, &out, AS_OF);
    let before = snapshot(&out);
    let export_bytes: u64 = std::fs::read_dir(&exp)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let outputs: u64 = before.values().map(|v| v.len() as u64).sum();
    // From nothing written to more than a whole run writes (kept lines, runs and outputs).
    let most = 2 * export_bytes + 2 * outputs;
    let mut failed_in = BTreeSet::new();
    let mut budget = 0u64;
    let mut succeeded = false;
    while budget <= most {
        let (code, err) = run_binary(
            &[
                "screen",
                exp.to_str().unwrap(),
                "--as-of",
                AS_OF,
                "--jobs",
                "2",
                "--quiet",
                "--out",
                out.to_str().unwrap(),
            ],
            &[(
                osteoguard_screen::fault::ENOSPC_AFTER_VAR,
                budget.to_string(),
            )],
        );
        let left: Vec<String> = leftovers(&out)
            .into_iter()
            .filter(|n| !n.starts_with(".registry"))
            .collect();
        assert!(left.is_empty(), "budget {budget}: left behind {left:?}");
        match code {
            Some(0) => {
                succeeded = true;
                break;
            }
            Some(1) => {
                assert!(
                    err.to_lowercase().contains("no space left on device"),
                    "budget {budget}: {err}"
                );
                assert!(
                    err.contains(out.to_str().unwrap()),
                    "budget {budget}: the message names no path: {err}"
                );
                assert_eq!(snapshot(&out), before, "budget {budget}: outputs changed");
                let file = err
                    .rsplit('/')
                    .next()
                    .and_then(|f| f.split(['-', '.', ':']).find(|s| !s.is_empty()))
                    .unwrap_or("")
                    .to_string();
                failed_in.insert(file);
            }
            other => panic!("budget {budget}: exit {other:?}: {err}"),
        }
        budget = budget * 9 / 8 + 4096;
    }
    assert!(succeeded, "no budget up to {most} bytes let the run finish");
    for want in ["shard", "rows", "worklist"] {
        assert!(
            failed_in.contains(want),
            "no failure while writing {want} files (failed in {failed_in:?})"
        );
    }
}

//! The programme report end to end on real data: the Synthea bundles and cohort of
//! `../shared/data`, a registry written by two real `screen` runs, and the HTML page in real
//! headless Chromium (Debian's `chromium`; absent → the test fails with a hint unless
//! `OSTEOGUARD_SKIP_BROWSER=1`, as for the report crate's browser tests). Screenshots and DOM
//! dumps are kept under `target/programme-report/`.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use osteoguard_core::programme::{IndexOutcome, KpiStatus, ReportingPeriod};
use osteoguard_core::Config;
use osteoguard_programme::{html, registry, report, Options, Report, SCHEMA};
use osteoguard_test_support::{chromium, chromium_cmd};
use rusqlite::Connection;

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(p)
}

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn options(start: &str, end: &str, as_of: &str) -> Options {
    Options {
        period: ReportingPeriod {
            start: d(start),
            end: d(end),
        },
        as_of: d(as_of),
        as_of_source: "given (--as-of)".into(),
        config: Config::default(),
    }
}

fn bundles_report(db: Option<&Path>) -> Report {
    report(
        &data("synthea-r4-bundles"),
        db,
        &options("2000-01-01", "2018-12-31", "2019-06-30"),
    )
    .expect("report")
}

/// Every KPI's counts add up to the index patients, and each drill-down list holds exactly the
/// patients whose own answer is that status.
#[test]
fn kpi_counts_and_drill_down_lists_agree_with_the_per_patient_answers() {
    for r in [
        bundles_report(None),
        report(
            &data("synthea-r4-cohort-ndjson"),
            None,
            &options("2005-01-01", "2016-12-31", "2017-06-30"),
        )
        .expect("cohort report"),
    ] {
        let s = &r.summary;
        assert!(s.index_patients > 0, "real data has index fractures");
        let index: Vec<_> = r
            .patients
            .iter()
            .filter(|p| matches!(p.index, IndexOutcome::Index(_)))
            .collect();
        assert_eq!(index.len(), s.index_patients);
        for k in &s.kpis {
            let total = k.true_count + k.false_count + k.unknown + k.pending + k.excluded;
            assert_eq!(total, s.index_patients, "KPI {}", k.kpi);
            for (status, list) in [
                (KpiStatus::True, &k.patients.yes),
                (KpiStatus::False, &k.patients.no),
                (KpiStatus::Unknown, &k.patients.unknown),
                (KpiStatus::Pending, &k.patients.pending),
                (KpiStatus::Excluded, &k.patients.excluded),
            ] {
                let mut expected: Vec<String> = index
                    .iter()
                    .filter(|p| p.kpi(k.kpi).map(|x| x.status) == Some(status))
                    .map(|p| p.patient.clone())
                    .collect();
                expected.sort();
                assert_eq!(list, &expected, "KPI {} {status:?}", k.kpi);
            }
            // A TRUE answer always names its evidence.
            for p in &index {
                if let Some(x) = p.kpi(k.kpi) {
                    if x.status == KpiStatus::True {
                        assert!(!x.evidence.is_empty(), "{} KPI {}", p.patient, k.kpi);
                    }
                }
            }
        }
        // KPI 7 without a configured value set is UNKNOWN for everyone it applies to.
        let k7 = &s.kpis[6];
        assert_eq!(k7.true_count + k7.false_count, 0);
    }
}

/// The JSON keys are the contract `osteoguard.programme/1`: these must stay.
#[test]
fn json_is_schema_stable() {
    let r = bundles_report(None);
    let v = serde_json::to_value(&r).expect("json");
    assert_eq!(v["schema"], SCHEMA);
    for key in [
        "schema",
        "periodStart",
        "periodEnd",
        "asOf",
        "asOfSource",
        "input",
        "resourcesRead",
        "readerIssues",
        "summary",
        "patients",
        "registry",
        "valueSets",
        "notes",
        "provenance",
    ] {
        assert!(v.get(key).is_some(), "top-level {key}");
    }
    let s = &v["summary"];
    for key in [
        "patients",
        "indexPatients",
        "byIndexOutcome",
        "refracturePatients",
        "kpis",
        "completeness",
        "completenessOverall",
    ] {
        assert!(s.get(key).is_some(), "summary.{key}");
    }
    let kpis = s["kpis"].as_array().expect("kpis");
    assert_eq!(kpis.len(), 10);
    for k in kpis {
        for key in [
            "kpi",
            "title",
            "specification",
            "isCount",
            "trueCount",
            "falseCount",
            "unknown",
            "pending",
            "excluded",
            "denominator",
            "percent",
            "percentIfUnknownNotMet",
            "level",
            "patients",
        ] {
            assert!(k.get(key).is_some(), "kpi.{key}");
        }
        for key in ["true", "false", "unknown", "pending", "excluded"] {
            assert!(k["patients"][key].is_array(), "kpi.patients.{key}");
        }
        if let Some(l) = k["level"].as_str() {
            assert!(["red", "amber", "green"].contains(&l));
        }
    }
    assert_eq!(s["completeness"].as_array().map(Vec::len), Some(8));
    let p = &v["patients"][0];
    for key in ["patient", "index", "kpis"] {
        assert!(p.get(key).is_some(), "patients[].{key}");
    }
    // Same input, same bytes.
    let again = serde_json::to_string(&bundles_report(None)).expect("json");
    assert_eq!(serde_json::to_string(&r).expect("json"), again);
}

/// The runs' as-of dates: the synthetic export's scenarios are built for the first.
const RUNS: [&str; 2] = ["2025-06-30", "2025-10-31"];

/// A synthetic export (`osteoguard synth`, known scenarios, 200 patients) screened twice by
/// real `screen` runs four months apart into one registry; returns (export, registry).
fn two_screen_runs(dir: &Path) -> (PathBuf, PathBuf) {
    let export = dir.join("export");
    osteoguard_screen::synth(osteoguard_screen::SynthArgs {
        patients: 200,
        seed: 1,
        out: export.clone(),
        as_of: RUNS[0].into(),
        filler: 3,
        quiet: true,
    })
    .expect("synth");
    let db = dir.join("registry.sqlite");
    for as_of in RUNS {
        let mut a =
            osteoguard_screen::ScreenArgs::new(&export, as_of, dir.join(format!("out-{as_of}")));
        a.db = Some(db.clone());
        a.jobs = Some(1);
        osteoguard_screen::run_screen(&a).expect("screen run");
    }
    (export, db)
}

#[test]
fn registry_figures_from_two_real_screen_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, db) = two_screen_runs(tmp.path());
    let f = registry::read(&db).expect("registry");
    assert_eq!(f.runs.len(), 2);
    let conn = Connection::open(&db).expect("open");
    for run in &f.runs {
        let count = |status: &str| -> usize {
            conn.query_row(
                "SELECT count(*) FROM findings WHERE run_id = ?1 AND status = ?2",
                rusqlite::params![run.run_id, status],
                |r| r.get::<_, i64>(0),
            )
            .expect("count") as usize
        };
        assert_eq!(run.new, count("new"), "run {}", run.run_id);
        assert_eq!(run.persisting, count("persisting"));
        assert_eq!(run.resolved, count("resolved"));
        let flagged: i64 = conn
            .query_row(
                "SELECT count(DISTINCT patient_id) FROM findings WHERE run_id = ?1
                 AND status NOT IN ('resolved', 'recheck-needed')",
                [run.run_id],
                |r| r.get(0),
            )
            .expect("flagged");
        assert_eq!(run.patients_flagged, flagged as usize);
    }
    // The first run has only new findings; the second has persisting ones.
    assert!(f.runs[0].new > 0 && f.runs[0].persisting == 0 && f.runs[0].resolved == 0);
    assert!(f.runs[1].persisting > 0);
    // Every resolution took exactly the two runs' distance.
    let gap = (d(RUNS[1]) - d(RUNS[0])).num_days();
    let resolved_first_run: i64 = conn
        .query_row(
            "SELECT count(*) FROM findings r WHERE r.run_id = 2 AND r.status = 'resolved'
             AND EXISTS (SELECT 1 FROM findings p WHERE p.run_id = 1 AND p.patient_id = r.patient_id
             AND p.code = r.code)",
            [],
            |r| r.get(0),
        )
        .expect("resolved");
    let n: usize = f.resolution.iter().map(|t| t.resolved).sum();
    assert!(n > 0, "the scenarios resolve findings between the runs");
    assert_eq!(n, resolved_first_run as usize);
    for t in &f.resolution {
        assert_eq!(t.median_days, gap as f64, "{}", t.code);
        assert_eq!(t.p90_days, gap);
    }
    // Open critical items: those of the last run with severity critical and a current status.
    let critical: i64 = conn
        .query_row(
            "SELECT count(*) FROM findings WHERE run_id = 2 AND severity = 'critical'
             AND status NOT IN ('resolved', 'recheck-needed')",
            [],
            |r| r.get(0),
        )
        .expect("critical");
    let banded: usize = f.open_critical_by_age.iter().map(|b| b.count).sum();
    assert!(critical > 0, "the scenarios hold critical findings");
    assert_eq!(banded, critical as usize);
}

/// A registry with the issue-22 statuses (escalated, de-escalated, recheck-needed) — a real
/// SQLite file with the registry's columns — is read, and recheck-needed is not "resolved".
#[test]
fn registry_with_the_new_statuses_is_understood() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("r.sqlite");
    let conn = Connection::open(&db).expect("open");
    conn.execute_batch(
        "PRAGMA user_version = 2;
         CREATE TABLE runs (run_id INTEGER PRIMARY KEY, started_unix INTEGER, as_of TEXT NOT NULL,
           export_dir TEXT, config_hash TEXT, patients INTEGER, findings INTEGER, transaction_time TEXT);
         CREATE TABLE findings (run_id INTEGER, patient_id TEXT, code TEXT, severity TEXT, due TEXT,
           summary TEXT, evidence TEXT, status TEXT, reason TEXT);
         INSERT INTO runs(run_id, as_of) VALUES (1, '2024-01-01'), (2, '2024-02-01'), (3, '2024-04-01');
         INSERT INTO findings(run_id, patient_id, code, severity, status) VALUES
           (1, 'a', 'denosumab-due-soon', 'high', 'new'),
           (1, 'b', 'zoledronate-renal-contraindication', 'critical', 'new'),
           (1, 'c', 'osteoporosis-treatment-indicated', 'high', 'new'),
           (2, 'a', 'denosumab-overdue', 'critical', 'escalated'),
           (2, 'b', 'zoledronate-renal-contraindication', 'critical', 'recheck-needed'),
           (2, 'c', 'osteoporosis-treatment-indicated', 'high', 'resolved'),
           (3, 'a', 'denosumab-overdue', 'critical', 'persisting'),
           (3, 'd', 'acute-ovcf', 'critical', 'new');",
    )
    .expect("build");
    let f = registry::read(&db).expect("read");
    assert!(f.resolved_means_evidence);
    assert_eq!(f.runs[1].escalated, 1);
    assert_eq!(f.runs[1].recheck_needed, 1);
    assert_eq!(f.runs[1].resolved, 1);
    // Run 2: a (escalated) is flagged; b (recheck needed) and c (resolved) are not.
    assert_eq!(f.runs[1].patients_flagged, 1);
    // c resolved after 31 days (2024-01-01 → 2024-02-01); b's recheck is not a resolution.
    assert_eq!(f.resolution.len(), 1);
    assert_eq!(f.resolution[0].code, "osteoporosis-treatment-indicated");
    assert_eq!(f.resolution[0].median_days, 31.0);
    // Run 3: two open critical items: a's overdue (open since run 2, 60 days) and d (0 days).
    let counts: Vec<usize> = f.open_critical_by_age.iter().map(|b| b.count).collect();
    assert_eq!(counts, vec![1, 1, 0, 0]);
}

#[test]
fn html_renders_in_chromium_with_svg_and_no_script() {
    let Some(bin) = chromium() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (export, db) = two_screen_runs(tmp.path());
    let r = report(&export, Some(&db), &options("2024-01-01", RUNS[0], RUNS[1])).expect("report");
    assert!(r.summary.index_patients > 0);
    assert!(r
        .registry
        .as_ref()
        .is_some_and(|g| !g.resolution.is_empty()));
    let page = html::render(&r);
    assert!(!page.to_ascii_lowercase().contains("<script"), "no script");
    // Nothing is fetched: no external resource of any kind.
    for needle in [" src=", "<link", "url(", "@import", "<iframe", "<object"] {
        assert!(!page.contains(needle), "self-contained: {needle}");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/programme-report");
    std::fs::create_dir_all(&dir).expect("out dir");
    let path = dir.join("programme-report.html");
    std::fs::write(&path, &page).expect("write");
    let url = format!("file://{}", path.canonicalize().expect("path").display());
    let profile = tmp.path().join("chromium-profile");
    let png = dir.join("programme-report.png");
    let _ = std::fs::remove_file(&png);
    let out = chromium_cmd(&bin, &profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1400,2400")
        .arg(&url)
        .output()
        .expect("chromium --screenshot");
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = chromium_cmd(&bin, &profile)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium --dump-dom");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::write(dir.join("programme-report.dom.html"), &dom).expect("write dom");
    assert!(dom.contains("<body"), "no document");
    // Two charts (KPIs, registry runs), one row per KPI, drill-downs per KPI answer.
    assert_eq!(dom.matches("<svg").count(), 2, "SVG charts");
    for k in 1..=10 {
        assert!(dom.contains(&format!("id=\"kpi-{k}\"")), "KPI {k} row");
    }
    let bars = dom.matches("class=\"bar ").count();
    let with_percent = r
        .summary
        .kpis
        .iter()
        .filter(|k| !k.is_count && k.percent.is_some())
        .count();
    assert_eq!(bars, with_percent, "one bar per proportion");
    let drills = dom.matches("class=\"drill\"").count();
    let non_empty: usize = r
        .summary
        .kpis
        .iter()
        .map(|k| {
            [
                &k.patients.yes,
                &k.patients.no,
                &k.patients.unknown,
                &k.patients.pending,
                &k.patients.excluded,
            ]
            .iter()
            .filter(|l| !l.is_empty())
            .count()
        })
        .sum();
    assert_eq!(
        drills, non_empty,
        "one drill-down per non-empty answer list"
    );
    // Every index patient has a detail block the drill-down links to.
    for p in r
        .patients
        .iter()
        .filter(|p| matches!(p.index, IndexOutcome::Index(_)))
    {
        assert!(
            dom.contains(&format!("id=\"{}\"", html::anchor(&p.patient))),
            "{}",
            p.patient
        );
    }
    assert!(dom.contains("id=\"registry\""));
    assert!(!dom.to_ascii_lowercase().contains("<script"));
}

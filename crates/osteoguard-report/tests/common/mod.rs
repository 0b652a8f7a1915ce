//! Hand-built assessments for the HTML tests, and a headless-Chromium driver.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use osteoguard_core::assessment::{
    BoneDensitySummary, DenosumabSummary, FractureRisk, GlucocorticoidSummary, PatientSummary,
    SpineLevel, TScorePoint, Timeline, TimelineDose, TimelineFracture, TimelinePain,
    TimelineProcedure,
};
use osteoguard_core::facts::dxa::WhoCategory;
use osteoguard_core::facts::spine::LevelState;
use osteoguard_core::model::{DxaSite, ProcedureKind, Sex, VertebralLevel};
use osteoguard_core::{
    Assessment, DataQualityIssue, Evidence, Finding, FindingCode, Provenance, Severity, Task, Tri,
    SCHEMA,
};
use osteoguard_test_support::chromium_cmd;

pub fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn add(date: NaiveDate, days: i64) -> NaiveDate {
    date + chrono::Duration::days(days)
}

/// The chart's threshold values from the default threshold table.
pub fn display_thresholds() -> osteoguard_core::assessment::DisplayThresholds {
    osteoguard_core::assessment::DisplayThresholds::from(
        &osteoguard_core::Config::default().thresholds,
    )
}

pub fn provenance() -> Provenance {
    Provenance {
        engine: "osteoguard".into(),
        engine_version: "0.1.0".into(),
        knowledge_version: "test".into(),
        config_hash: "sha256:test".into(),
        overridden_keys: vec![],
        disabled_findings: vec![],
    }
}

fn spine(states: &[(&str, LevelState, Option<&str>)]) -> Vec<SpineLevel> {
    VertebralLevel::ALL
        .iter()
        .map(|l| {
            let s = states.iter().find(|(n, ..)| *n == l.label());
            SpineLevel {
                level: l.label().to_string(),
                state: s.map(|x| x.1).unwrap_or(LevelState::Unknown),
                since: s.and_then(|x| x.2).map(d),
            }
        })
        .collect()
}

fn finding(
    code: FindingCode,
    severity: Severity,
    summary: &str,
    recommendation: &str,
    evidence: Vec<Evidence>,
    due: Option<&str>,
) -> Finding {
    Finding {
        code,
        severity,
        title: code.title().to_string(),
        summary: summary.into(),
        evidence,
        recommendation: recommendation.into(),
        citation: "ECTS-2021".into(),
        references: vec![],
        rule_section: "§5".into(),
        due: due.map(d),
        inputs_missing: vec![],
        notes: vec![],
        levels: vec![],
        trace: vec![],
        insufficient_items: vec![],
    }
}

fn ev(reference: &str, date: &str, detail: &str) -> Evidence {
    Evidence {
        reference: reference.into(),
        detail: detail.into(),
        date: Some(d(date)),
    }
}

fn dose(agent: &str, date: &str, covers: i64, reference: &str) -> TimelineDose {
    TimelineDose {
        agent: agent.into(),
        date: d(date),
        covers_days: covers,
        reference: reference.into(),
    }
}

/// The case report (Guro, 2023) as the engine should see it on 2023-09-28.
pub fn seed_like() -> Assessment {
    let dmab = [
        "2020-02-10",
        "2020-08-10",
        "2021-02-10",
        "2021-08-10",
        "2022-02-10",
        "2022-10-27",
    ];
    let mut doses: Vec<TimelineDose> = dmab
        .iter()
        .enumerate()
        .map(|(i, x)| {
            dose(
                "denosumab",
                x,
                182,
                &format!("MedicationAdministration/dmab-{}", i + 1),
            )
        })
        .collect();
    doses.push(dose(
        "zoledronic acid",
        "2023-08-31",
        365,
        "MedicationAdministration/zoledronate-1",
    ));
    let fx = |site: &str, onset: &str| TimelineFracture {
        site: site.into(),
        onset: Some(d(onset)),
        reference: format!("Condition/fx-{}", site.to_lowercase()).into(),
    };
    let pr = |kind: ProcedureKind, levels: &[&str], date: &str, id: &str| TimelineProcedure {
        kind,
        levels: levels.iter().map(|s| s.to_string()).collect(),
        date: d(date),
        reference: format!("Procedure/{id}").into(),
    };
    let pain = |date: &str, v: f64, id: &str| TimelinePain {
        date: d(date),
        value: v,
        reference: format!("Observation/{id}").into(),
    };
    let ts = |date: &str, site: DxaSite, v: f64, id: &str| TScorePoint {
        date: d(date),
        site,
        value: v,
        reference: format!("Observation/{id}"),
    };
    Assessment {
        schema: SCHEMA.into(),
        patient: PatientSummary {
            reference: "Patient/ku-73f".into(),
            age_years: Some(73),
            sex: Sex::Female,
            birth_date: Some(d("1950-03-15")),
        },
        as_of: d("2023-09-28"),
        fracture_risk: FractureRisk {
            category: "very-high".into(),
            basis: vec![
                "fragility fractures on glucocorticoids".into(),
                "T-score ≤ −3.5 (−3.8 total hip)".into(),
            ],
            row: Some("A1".into()),
            evidence: vec![ev("Observation/dxa-2023-hip", "2023-07-20", "T-score -3.8")],
            gc_adjusted_frax_mof_percent: Some(35.0),
            gc_adjusted_frax_hip_percent: Some(13.0),
        },
        glucocorticoid: GlucocorticoidSummary {
            current_prednisone_equivalent_mg_per_day: Some(2.5),
            cumulative_prednisone_equivalent_grams_last_12_months: Some(0.913),
            qualifying: Tri::False,
            continuous_days_at_or_above_2_5_mg: 3192,
            days_at_or_above_30_mg_last_365: 0,
            course_start: Some(d("2015-01-01")),
            physiologic_replacement: true,
            series: vec![(d("2015-01-01"), 2.5)],
        },
        denosumab: DenosumabSummary {
            last_dose: Some(d("2022-10-27")),
            next_due: None,
            status: "transitioned".into(),
            dose_count: 6,
            doses: dmab.iter().map(|x| d(x)).collect(),
            transition: Some(d("2023-08-31")),
            transition_agent: Some("zoledronic acid".into()),
            schedule: None,
        },
        bone_density: BoneDensitySummary {
            who_category: Some(WhoCategory::SevereOsteoporosis),
            lowest_t_score: Some(-3.8),
            lowest_t_score_site: Some(DxaSite::TotalHip),
            lowest_t_score_date: Some(d("2023-07-20")),
            latest_dxa: Some(d("2023-07-20")),
            t_scores: vec![
                ts("2021-06-15", DxaSite::LumbarSpine, -2.7, "dxa-2021-spine"),
                ts("2022-06-15", DxaSite::LumbarSpine, -2.7, "dxa-2022-spine"),
                ts("2023-07-20", DxaSite::LumbarSpine, -3.7, "dxa-2023-spine"),
                ts("2023-07-20", DxaSite::TotalHip, -3.8, "dxa-2023-hip"),
            ],
        },
        spine: spine(&[
            ("L1", LevelState::Augmented, Some("2023-08-30")),
            ("L2", LevelState::Augmented, Some("2023-09-04")),
            ("L3", LevelState::Acute, Some("2023-09-27")),
            ("L4", LevelState::Augmented, Some("2022-08-16")),
            ("L5", LevelState::Augmented, Some("2023-09-04")),
        ]),
        timeline: Timeline {
            start: Some(d("2015-01-01")),
            end: Some(d("2023-09-27")),
            fractures: vec![
                fx("L4", "2022-08-01"),
                fx("L1", "2023-07-15"),
                fx("L2", "2023-07-31"),
                fx("L5", "2023-07-31"),
                fx("L3", "2023-09-27"),
            ],
            procedures: vec![
                pr(
                    ProcedureKind::Vertebroplasty,
                    &["L4"],
                    "2022-08-16",
                    "pvp-l4",
                ),
                pr(ProcedureKind::SpineMri, &[], "2023-07-17", "mri-2023-07-17"),
                pr(
                    ProcedureKind::SpineXray,
                    &[],
                    "2023-08-27",
                    "xray-2023-08-27",
                ),
                pr(
                    ProcedureKind::Vertebroplasty,
                    &["L1"],
                    "2023-08-30",
                    "pvp-l1",
                ),
                pr(ProcedureKind::SpineMri, &[], "2023-09-03", "mri-2023-09-03"),
                pr(
                    ProcedureKind::Vertebroplasty,
                    &["L2"],
                    "2023-09-04",
                    "pvp-l2",
                ),
                pr(
                    ProcedureKind::Vertebroplasty,
                    &["L5"],
                    "2023-09-04",
                    "pvp-l5",
                ),
                pr(ProcedureKind::SpineCt, &[], "2023-09-27", "ct-2023-09-27"),
            ],
            antiresorptive_doses: doses,
            pain: vec![
                pain("2023-08-23", 7.0, "pain-2023-08-23"),
                pain("2023-08-31", 7.0, "pain-2023-08-31"),
                pain("2023-09-06", 3.0, "pain-2023-09-06"),
                pain("2023-09-27", 2.0, "pain-2023-09-27-clinic"),
                pain("2023-09-27", 8.0, "pain-2023-09-27-er"),
            ],
        },
        findings: vec![
            finding(
                FindingCode::AcuteOvcf,
                Severity::High,
                "Acute L3 compression fracture (onset 2023-09-27).",
                "Analgesia, bracing; reassess pain in 3-4 weeks.",
                vec![ev(
                    "Condition/fx-l3",
                    "2023-09-27",
                    "L3 fracture, onset 2023-09-27",
                )],
                None,
            ),
            finding(
                FindingCode::ReboundVertebralFracturesSuspected,
                Severity::Critical,
                "4 new vertebral fractures 261-335 days after the last denosumab dose.",
                "Treat as rebound fractures: start antiresorptive therapy without delay.",
                vec![
                    ev(
                        "MedicationAdministration/dmab-6",
                        "2022-10-27",
                        "last denosumab dose",
                    ),
                    ev("Condition/fx-l1", "2023-07-15", "L1 fracture"),
                    ev("Condition/fx-l3", "2023-09-27", "L3 fracture"),
                ],
                None,
            ),
            finding(
                FindingCode::BmdSignificantLoss,
                Severity::Moderate,
                "Lumbar spine T-score fell from -2.7 to -3.7.",
                "Review adherence and treatment.",
                vec![ev(
                    "Observation/dxa-2023-spine",
                    "2023-07-20",
                    "T-score -3.7",
                )],
                None,
            ),
            finding(
                FindingCode::PostDenosumabCtxMonitoring,
                Severity::Info,
                "Zoledronate given 308 days after the last denosumab dose.",
                "Measure CTX at 3 and 6 months after zoledronate.",
                vec![ev(
                    "MedicationAdministration/zoledronate-1",
                    "2023-08-31",
                    "zoledronic acid 5 mg",
                )],
                Some("2023-11-30"),
            ),
        ],
        tasks: vec![
            Task {
                code: "ctx-3m".into(),
                description: "CTX 3 months after zoledronate".into(),
                due: Some(d("2023-11-30")),
                finding: Some(FindingCode::PostDenosumabCtxMonitoring),
            },
            Task {
                code: "pain-review".into(),
                description: "Reassess L3 pain".into(),
                due: Some(d("2023-10-25")),
                finding: Some(FindingCode::AcuteOvcf),
            },
            Task {
                code: "dxa-repeat".into(),
                description: "Repeat DXA".into(),
                due: None,
                finding: None,
            },
        ],
        data_quality: vec![DataQualityIssue::new(
            "Observation/edema-l5-2023-09-03",
            "valueBoolean",
            "suspected, recorded as present",
        )],
        provenance: provenance(),
        zoledronate_renal: Default::default(),
        display_thresholds: display_thresholds(),
        draft_orders: vec![],
    }
}

/// Nothing known: no dates anywhere, no findings.
pub fn minimal() -> Assessment {
    Assessment {
        schema: SCHEMA.into(),
        patient: PatientSummary {
            reference: "Patient/empty".into(),
            age_years: None,
            sex: Sex::Unknown,
            birth_date: None,
        },
        as_of: d("2024-01-15"),
        fracture_risk: FractureRisk {
            category: "unknown".into(),
            basis: vec![],
            row: None,
            evidence: vec![],
            gc_adjusted_frax_mof_percent: None,
            gc_adjusted_frax_hip_percent: None,
        },
        glucocorticoid: GlucocorticoidSummary {
            current_prednisone_equivalent_mg_per_day: None,
            cumulative_prednisone_equivalent_grams_last_12_months: None,
            qualifying: Tri::Unknown,
            continuous_days_at_or_above_2_5_mg: 0,
            days_at_or_above_30_mg_last_365: 0,
            course_start: None,
            physiologic_replacement: false,
            series: vec![],
        },
        denosumab: DenosumabSummary {
            last_dose: None,
            next_due: None,
            status: "not-documented".into(),
            dose_count: 0,
            doses: vec![],
            transition: None,
            transition_agent: None,
            schedule: None,
        },
        bone_density: BoneDensitySummary {
            who_category: None,
            lowest_t_score: None,
            lowest_t_score_site: None,
            lowest_t_score_date: None,
            latest_dxa: None,
            t_scores: vec![],
        },
        spine: spine(&[]),
        timeline: Timeline::default(),
        findings: vec![],
        tasks: vec![],
        data_quality: vec![],
        provenance: provenance(),
        zoledronate_renal: Default::default(),
        display_thresholds: display_thresholds(),
        draft_orders: vec![],
    }
}

/// A record with no dates but undated items (an undated fracture, a data-insufficient finding).
pub fn no_dates() -> Assessment {
    let mut a = minimal();
    a.patient.reference = "Patient/no-dates".into();
    a.timeline.fractures.push(TimelineFracture {
        site: "L2".into(),
        onset: None,
        reference: "Condition/fx-undated".into(),
    });
    a.spine = spine(&[("L2", LevelState::Subacute, None)]);
    a.denosumab.status = "dates-unknown".into();
    let mut f = finding(
        FindingCode::DataInsufficient,
        Severity::Moderate,
        "Denosumab doses recorded without dates.",
        "Record the administration dates.",
        vec![Evidence {
            reference: "MedicationStatement/dmab".into(),
            detail: "denosumab, no effective date".into(),
            date: None,
        }],
        None,
    );
    f.inputs_missing
        .push("denosumab administration dates".into());
    a.findings.push(f);
    a
}

/// A record spanning 30 years (1993–2023): a long GC course with tapers and pulses, 12 years of
/// denosumab with a late dose, DXA every two years, fractures and a vertebroplasty.
pub fn thirty_years() -> Assessment {
    let mut a = seed_like();
    a.patient.reference = "Patient/thirty-years".into();
    a.as_of = d("2023-09-28");
    a.timeline.start = Some(d("1993-03-01"));
    a.glucocorticoid.series = vec![
        (d("1993-03-01"), 40.0),
        (d("1993-06-01"), 10.0),
        (d("1995-01-01"), 5.0),
        (d("2001-05-01"), 1250.0),
        (d("2001-05-04"), 20.0),
        (d("2002-01-01"), 7.5),
        (d("2010-01-01"), 2.5),
        (d("2018-01-01"), 0.0),
    ];
    let mut doses = Vec::new();
    let mut date = d("2008-03-01");
    let mut i = 0;
    while date < d("2020-01-01") {
        i += 1;
        doses.push(dose(
            "denosumab",
            &date.to_string(),
            182,
            &format!("MedicationAdministration/dm-{i}"),
        ));
        date = add(date, if i == 9 { 290 } else { 182 });
    }
    a.denosumab.doses = doses.iter().map(|x| x.date).collect();
    a.denosumab.dose_count = doses.len();
    a.denosumab.last_dose = doses.last().map(|x| x.date);
    a.denosumab.transition = None;
    a.denosumab.transition_agent = None;
    a.denosumab.status = "long-overdue".into();
    a.timeline.antiresorptive_doses = doses;
    a.bone_density.t_scores = (0..15)
        .flat_map(|k| {
            let date = add(d("1994-05-01"), 730 * k);
            let v = -1.2 - 0.13 * k as f64;
            [
                TScorePoint {
                    date,
                    site: DxaSite::LumbarSpine,
                    value: (v * 10.0).round() / 10.0,
                    reference: format!("Observation/ts-spine-{k}"),
                },
                TScorePoint {
                    date,
                    site: DxaSite::FemoralNeck,
                    value: ((v - 0.4) * 10.0).round() / 10.0,
                    reference: format!("Observation/ts-neck-{k}"),
                },
            ]
        })
        .collect();
    a.timeline.fractures = vec![
        TimelineFracture {
            site: "wrist".into(),
            onset: Some(d("1999-11-02")),
            reference: "Condition/w".into(),
        },
        TimelineFracture {
            site: "T12".into(),
            onset: Some(d("2004-02-10")),
            reference: "Condition/t12".into(),
        },
        TimelineFracture {
            site: "L1".into(),
            onset: Some(d("2021-01-20")),
            reference: "Condition/l1".into(),
        },
        TimelineFracture {
            site: "L2".into(),
            onset: Some(d("2021-03-01")),
            reference: "Condition/l2".into(),
        },
    ];
    a.timeline.procedures = vec![TimelineProcedure {
        kind: ProcedureKind::Kyphoplasty,
        levels: vec!["L1".into()],
        date: d("2021-02-15"),
        reference: "Procedure/kp".into(),
    }];
    a.timeline.pain = vec![];
    a
}

/// 200 observations: 100 pain scores (weekly) and 100 T-scores (two sites, 50 dates).
pub fn two_hundred_observations() -> Assessment {
    let mut a = seed_like();
    a.patient.reference = "Patient/many-observations".into();
    a.timeline.pain = (0..100)
        .map(|k| TimelinePain {
            date: add(d("2021-10-01"), 7 * k),
            value: ((k * 37) % 11) as f64,
            reference: format!("Observation/pain-{k}").into(),
        })
        .collect();
    a.bone_density.t_scores = (0..50)
        .flat_map(|k| {
            let date = add(d("2019-01-10"), 35 * k);
            let v = -2.0 - 0.03 * k as f64;
            [
                TScorePoint {
                    date,
                    site: DxaSite::LumbarSpine,
                    value: (v * 100.0).round() / 100.0,
                    reference: format!("Observation/tsl-{k}"),
                },
                TScorePoint {
                    date,
                    site: DxaSite::TotalHip,
                    value: ((v - 0.3) * 100.0).round() / 100.0,
                    reference: format!("Observation/tsh-{k}"),
                },
            ]
        })
        .collect();
    a
}

/// Every free-text field carries markup that must be shown, never executed.
pub const PAYLOAD: &str = "<script>document.body.setAttribute('data-pwned','1')</script><img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">\"'&";

pub fn hostile() -> Assessment {
    let mut a = seed_like();
    let p = PAYLOAD;
    a.patient.reference = format!("Patient/{p}");
    a.fracture_risk.category = format!("very-high{p}");
    a.fracture_risk.basis = vec![p.into()];
    a.fracture_risk.row = Some(p.into());
    a.denosumab.status = p.into();
    a.denosumab.transition_agent = Some(p.into());
    for f in &mut a.findings {
        f.title = p.into();
        f.summary = p.into();
        f.recommendation = p.into();
        f.citation = p.into();
        f.rule_section = p.into();
        f.notes = vec![p.into()];
        f.inputs_missing = vec![p.into()];
        f.levels = vec![p.into()];
        for e in &mut f.evidence {
            e.reference = format!("Observation/{p}").into();
            e.detail = p.into();
        }
    }
    for t in &mut a.tasks {
        t.code = p.into();
        t.description = p.into();
    }
    for f in &mut a.timeline.fractures {
        f.site = p.into();
        f.reference = p.into();
    }
    for x in &mut a.timeline.procedures {
        x.levels = vec![p.into()];
        x.reference = p.into();
    }
    for x in &mut a.timeline.antiresorptive_doses {
        x.reference = p.into();
    }
    for x in &mut a.timeline.pain {
        x.reference = p.into();
    }
    for x in &mut a.bone_density.t_scores {
        x.reference = p.into();
    }
    a.spine[0].level = p.into();
    a.data_quality = vec![DataQualityIssue::new(p, p, p)];
    a.provenance.engine = p.into();
    a.provenance.config_hash = p.into();
    a.provenance.overridden_keys = vec![p.into()];
    a
}

// ------------------------------------------------------------------------------------------
// Headless Chromium
// ------------------------------------------------------------------------------------------

/// `target/html-report/` of the workspace.
pub fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/html-report");
    std::fs::create_dir_all(&dir).expect("create target/html-report");
    dir
}

pub enum Browser {
    Found(PathBuf),
    Skip,
}

/// Chromium (`osteoguard_test_support::chromium`: `$CHROMIUM` or /usr/bin/chromium). Absent: the
/// test fails, unless `OSTEOGUARD_SKIP_BROWSER=1`.
pub fn chromium() -> Browser {
    match osteoguard_test_support::chromium() {
        Some(path) => Browser::Found(path),
        None => Browser::Skip,
    }
}

/// Writes `html` to `target/html-report/<name>.html`, screenshots it to `<name>.png` at
/// `1400 x height`, and returns the DOM after load (scripts, if any ran, have run).
pub fn render_in_browser(bin: &Path, name: &str, html: &str, height: u32) -> String {
    let dir = out_dir();
    let html_path = dir.join(format!("{name}.html"));
    std::fs::write(&html_path, html).expect("write html");
    let html_path = html_path.canonicalize().expect("canonical path");
    let url = format!("file://{}", html_path.display());
    let profile = dir.join(format!(".chromium-profile-{name}"));
    let png = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);

    let out = chromium_cmd(bin, &profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size=1400,{height}"))
        .arg(&url)
        .output()
        .expect("run chromium --screenshot");
    assert!(
        png.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = chromium_cmd(bin, &profile)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium --dump-dom");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("<body"),
        "chromium --dump-dom gave no document: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join(format!("{name}.dom.html")), &dom).expect("write dom");
    dom
}

/// Counts occurrences of `needle` in `hay`.
pub fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

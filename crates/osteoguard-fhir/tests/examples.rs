//! Every bundle in /work/main/examples/ maps completely and with the values of examples/README.md.

use std::path::PathBuf;

use chrono::{NaiveDate, NaiveDateTime};
use osteoguard_core::model::*;
use osteoguard_fhir::{read_path, PatientData, ReadOutput};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
}
fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap_or(NaiveDateTime::MIN)
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn read(name: &str) -> ReadOutput {
    match read_path(&examples_dir().join(name)) {
        Ok(o) => o,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// One patient, every resource used, no issues.
fn clean(out: &ReadOutput, id: &str) -> PatientData {
    assert_eq!(out.patients.len(), 1, "one patient");
    let p = out.patients[0].clone();
    assert_eq!(p.id, id);
    assert!(p.issues.is_empty(), "issues: {:#?}", p.issues);
    assert!(
        out.unattached.is_empty(),
        "unattached: {:#?}",
        out.unattached
    );
    // Every resource used, except non-bone diagnoses (PMR, SLE, RA), which are read and ignored.
    for (ty, c) in &out.stats.by_type {
        assert_eq!(c.not_understood, 0, "{ty}");
        if ty != "Condition" {
            assert_eq!(
                c.read, c.used,
                "{ty}: every resource used: {:#?}",
                out.stats
            );
        }
    }
    assert_eq!(p.stats, out.stats);
    p
}

fn med<'a>(p: &'a PatientData, id: &str) -> &'a MedicationRecord {
    match p
        .record
        .medications
        .iter()
        .find(|m| m.source.as_str().ends_with(&format!("/{id}")))
    {
        Some(m) => m,
        None => panic!("no medication {id}"),
    }
}
fn obs<'a>(p: &'a PatientData, id: &str) -> &'a Observation {
    match p
        .record
        .observations
        .iter()
        .find(|m| m.source.as_str() == format!("Observation/{id}"))
    {
        Some(m) => m,
        None => panic!("no observation {id}"),
    }
}
fn cond<'a>(p: &'a PatientData, id: &str) -> &'a Condition {
    match p
        .record
        .conditions
        .iter()
        .find(|m| m.source.as_str() == format!("Condition/{id}"))
    {
        Some(m) => m,
        None => panic!("no condition {id}"),
    }
}
fn proc_<'a>(p: &'a PatientData, id: &str) -> &'a Procedure {
    match p
        .record
        .procedures
        .iter()
        .find(|m| m.source.as_str() == format!("Procedure/{id}"))
    {
        Some(m) => m,
        None => panic!("no procedure {id}"),
    }
}

fn daily_mg(m: &MedicationRecord) -> f64 {
    m.dosages
        .iter()
        .map(|d| d.dose_mg.unwrap_or(f64::NAN) * d.per_day.unwrap_or(f64::NAN))
        .sum()
}

#[test]
fn seed_case() {
    let out = read("seed-case.json");
    let p = clean(&out, "ku-73f");
    let r = &p.record;
    assert_eq!(r.patient.birth_date, Some(d("1950-03-15")));
    assert_eq!(r.patient.sex, Sex::Female);
    assert_eq!(r.medications.len(), 8);
    assert_eq!(r.observations.len(), 17);
    assert_eq!(r.conditions.len(), 7);
    assert_eq!(r.procedures.len(), 8);

    // Hydrocortisone: three concurrent dosage lines, 20 mg/day, oral, open-ended.
    let hc = med(&p, "hydrocortisone");
    assert_eq!(hc.kind, MedicationSource::Request);
    assert_eq!(hc.status, MedicationStatus::Active);
    assert_eq!(hc.ingredients, vec![Ingredient::Hydrocortisone]);
    assert_eq!(hc.authored, Some(d("2015-01-01")));
    assert_eq!(hc.visible, Some(d("2015-01-01")));
    assert_eq!(hc.dosages.len(), 3);
    assert_eq!(
        hc.dosages.iter().map(|x| x.dose_mg).collect::<Vec<_>>(),
        vec![Some(10.0), Some(5.0), Some(5.0)]
    );
    assert!((daily_mg(hc) - 20.0).abs() < 1e-9);
    for x in &hc.dosages {
        assert_eq!(x.route, Route::Oral);
        assert_eq!(x.bounds, Some(Period::from(d("2015-01-01"))));
        assert_eq!(x.sequence, None);
        assert!(!x.as_needed);
    }

    // Six denosumab administrations, 60 mg SC, completed.
    let dmab: Vec<&MedicationRecord> = r
        .medications
        .iter()
        .filter(|m| m.has(Ingredient::Denosumab))
        .collect();
    let dates: Vec<Option<NaiveDate>> = dmab.iter().map(|m| m.visible).collect();
    let want: Vec<Option<NaiveDate>> = [
        "2020-02-10",
        "2020-08-10",
        "2021-02-10",
        "2021-08-10",
        "2022-02-10",
        "2022-10-27",
    ]
    .iter()
    .map(|s| Some(d(s)))
    .collect();
    assert_eq!(dates, want);
    for m in &dmab {
        assert_eq!(m.kind, MedicationSource::Administration);
        assert_eq!(m.status, MedicationStatus::Completed);
        assert_eq!(m.administered_mg, Some(60.0));
        assert_eq!(m.route, Route::Subcutaneous);
        assert_eq!(m.effective, m.visible.map(Period::day));
    }
    let z = med(&p, "zoledronate-1");
    assert_eq!(z.ingredients, vec![Ingredient::ZoledronicAcid]);
    assert_eq!(z.administered_mg, Some(5.0));
    assert_eq!(z.route, Route::Intravenous);
    assert_eq!(z.visible, Some(d("2023-08-31")));

    // Conditions.
    let ai = cond(&p, "adrenal-insufficiency");
    assert_eq!(ai.kind, ConditionKind::AdrenalInsufficiency);
    assert_eq!(ai.verification, Verification::Confirmed);
    assert_eq!(cond(&p, "osteoporosis").kind, ConditionKind::Osteoporosis);
    let vert = |l| ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(l)));
    use VertebralLevel::*;
    let fx = [
        ("fx-l4", L4, Period::day(d("2022-08-01")), "2022-08-01"),
        ("fx-l1", L1, Period::day(d("2023-07-15")), "2023-07-17"),
        (
            "fx-l2",
            L2,
            Period::between(d("2023-07-31"), d("2023-08-27")),
            "2023-09-03",
        ),
        (
            "fx-l5",
            L5,
            Period::between(d("2023-07-31"), d("2023-08-27")),
            "2023-09-03",
        ),
        ("fx-l3", L3, Period::day(d("2023-09-27")), "2023-09-27"),
    ];
    for (id, level, onset, recorded) in fx {
        let c = cond(&p, id);
        assert_eq!(c.kind, vert(level), "{id}");
        assert_eq!(c.onset, Some(onset), "{id}");
        assert_eq!(c.recorded, Some(d(recorded)), "{id}");
        assert_eq!(c.visible, Some(d(recorded)), "{id}");
        assert!(!c.subsequent_encounter);
        assert!(c.is_valid());
        assert_eq!(c.mechanism, None);
    }

    // Procedures.
    let pvp = [
        ("pvp-l4", L4, "2022-08-16T14:00"),
        ("pvp-l1", L1, "2023-08-30T14:00"),
        ("pvp-l2", L2, "2023-09-04T14:00"),
        ("pvp-l5", L5, "2023-09-04T14:30"),
    ];
    for (id, level, at) in pvp {
        let x = proc_(&p, id);
        assert_eq!(x.kind, ProcedureKind::Vertebroplasty, "{id}");
        assert_eq!(x.levels, vec![level], "{id}");
        assert_eq!(x.performed, Some(dt(at)), "{id}");
        assert_eq!(x.status, ProcedureStatus::Completed);
    }
    assert_eq!(proc_(&p, "mri-2023-07-17").kind, ProcedureKind::SpineMri);
    assert_eq!(proc_(&p, "mri-2023-09-03").kind, ProcedureKind::SpineMri);
    assert_eq!(proc_(&p, "xray-2023-08-27").kind, ProcedureKind::SpineXray);
    let ct = proc_(&p, "ct-2023-09-27");
    assert_eq!(ct.kind, ProcedureKind::SpineCt);
    assert!(ct.levels.is_empty());
    assert_eq!(ct.performed, Some(dt("2023-09-27T16:00")));

    // Observations.
    let dxa = obs(&p, "dxa-2023-spine");
    assert_eq!(dxa.kind, ObservationKind::TScore(DxaSite::LumbarSpine));
    assert_eq!(dxa.value, Some(-3.7));
    assert_eq!(dxa.device.as_deref(), Some("Hologic Horizon A"));
    assert_eq!(dxa.effective, Some(dt("2023-07-20T10:00")));
    assert_eq!(dxa.visible, Some(d("2023-07-20")));
    assert_eq!(dxa.status, ObservationStatus::Final);
    let hip = obs(&p, "dxa-2023-hip");
    assert_eq!(hip.kind, ObservationKind::TScore(DxaSite::TotalHip));
    assert_eq!(hip.value, Some(-3.8));
    for (id, level) in [
        ("edema-l1-2023-07-17", L1),
        ("edema-l2-2023-09-03", L2),
        ("edema-l5-2023-09-03", L5),
    ] {
        let e = obs(&p, id);
        assert_eq!(e.kind, ObservationKind::VertebralEdema);
        assert_eq!(e.flag, Some(true));
        assert_eq!(e.level, Some(level));
        assert_eq!(e.value, None);
    }
    let frax = obs(&p, "frax-mof-2023");
    assert_eq!(frax.kind, ObservationKind::FraxMof);
    assert_eq!(frax.value, Some(35.0));
    assert_eq!(frax.frax_gc_entered, Some(true));
    assert!(!frax.frax_gc_adjusted);
    assert_eq!(obs(&p, "frax-hip-2023").value, Some(13.0));
    let er = obs(&p, "pain-2023-09-27-er");
    assert_eq!(er.kind, ObservationKind::Pain);
    assert_eq!(er.value, Some(8.0));
    assert_eq!(er.effective, Some(dt("2023-09-27T15:00")));
    assert_eq!(
        obs(&p, "pain-2023-09-27-clinic").effective,
        Some(dt("2023-09-27T10:00"))
    );
    assert_eq!(obs(&p, "creatinine-2023-08-23").value, Some(0.8));
    assert_eq!(obs(&p, "calcium-2023-08-23").value, Some(9.2));
    assert_eq!(obs(&p, "weight-2023-08-23").value, Some(50.0));
    assert_eq!(
        obs(&p, "weight-2023-08-23").kind,
        ObservationKind::BodyWeight
    );
}

#[test]
fn example_5() {
    let p = clean(&read("example-5-new-gc-start.json"), "example-5");
    assert_eq!(p.record.patient.sex, Sex::Male);
    assert_eq!(p.record.patient.birth_date, Some(d("1962-05-01")));
    let pred = med(&p, "ex5-prednisone");
    assert_eq!(pred.ingredients, vec![Ingredient::Prednisone]);
    assert!((daily_mg(pred) - 10.0).abs() < 1e-9);
    assert_eq!(
        med(&p, "ex5-calcium").ingredients,
        vec![Ingredient::Calcium]
    );
    let vd = med(&p, "ex5-vitamin-d");
    assert_eq!(vd.ingredients, vec![Ingredient::Cholecalciferol]);
    // 800 IU = 20 µg.
    assert!(vd.dosages[0]
        .dose_mg
        .is_some_and(|x| (x - 0.02).abs() < 1e-12));
    let f = obs(&p, "ex5-frax-mof");
    assert_eq!(f.value, Some(9.0));
    assert_eq!(f.frax_gc_entered, Some(true));
    assert_eq!(obs(&p, "ex5-frax-hip").value, Some(2.8));
    assert_eq!(obs(&p, "ex5-frax-hip").kind, ObservationKind::FraxHip);
    assert_eq!(
        p.record.conditions.len(),
        0,
        "PMR is not a bone-health condition"
    );
    assert_eq!(p.stats.by_type["Condition"].ignored, 1);
}

#[test]
fn example_6() {
    let out = read("example-6-very-high-dose-young.json");
    // The SLE nephritis Condition (M32.14) is read and ignored: not used by any rule.
    let p = out.patients[0].clone();
    assert!(p.issues.is_empty(), "{:#?}", p.issues);
    assert_eq!(p.stats.by_type["Condition"].ignored, 1);
    let pulses: Vec<&MedicationRecord> = p
        .record
        .medications
        .iter()
        .filter(|m| m.has(Ingredient::Methylprednisolone))
        .collect();
    assert_eq!(pulses.len(), 3);
    for m in pulses {
        assert_eq!(m.administered_mg, Some(1000.0));
        assert_eq!(m.route, Route::Intravenous);
    }
    let p60 = med(&p, "ex6-prednisone-60");
    assert_eq!(p60.status, MedicationStatus::Completed);
    assert_eq!(
        p60.dosages[0].bounds,
        Some(Period::between(d("2024-06-04"), d("2024-07-31")))
    );
    assert!((daily_mg(p60) - 60.0).abs() < 1e-9);
    let p40 = med(&p, "ex6-prednisone-40");
    assert_eq!(p40.status, MedicationStatus::Active);
    assert_eq!(p40.dosages[0].bounds, Some(Period::from(d("2024-08-01"))));
}

#[test]
fn example_7() {
    let p = clean(&read("example-7-dmab-due-renal.json"), "example-7");
    let z = med(&p, "ex7-zoledronate-order");
    assert_eq!(z.status, MedicationStatus::Active);
    assert_eq!(z.planned_date(), Some(d("2024-10-03")));
    assert_eq!(z.administered_mg, Some(5.0));
    assert_eq!(z.route, Route::Intravenous);
    assert_eq!(z.authored, Some(d("2024-09-15")));
    assert_eq!(z.dosages[0].per_day, None);
    assert_eq!(obs(&p, "ex7-creatinine").value, Some(1.6));
    assert_eq!(obs(&p, "ex7-weight").value, Some(48.0));
    assert_eq!(obs(&p, "ex7-calcium").value, Some(9.0));
    assert_eq!(obs(&p, "ex7-vitamin-d").value, Some(28.0));
    assert_eq!(obs(&p, "ex7-vitamin-d").kind, ObservationKind::VitaminD25);
    assert_eq!(
        p.record
            .medications
            .iter()
            .filter(|m| m.has(Ingredient::Denosumab))
            .count(),
        3
    );
}

#[test]
fn example_8() {
    let p = clean(&read("example-8-ctx-elevated.json"), "example-8");
    let ctx = obs(&p, "ex8-ctx");
    assert_eq!(ctx.kind, ObservationKind::Ctx);
    assert_eq!(ctx.value, Some(520.0));
    assert_eq!(ctx.reference_high, Some(573.0));
    assert_eq!(ctx.reference_low, None);
    assert_eq!(ctx.effective, Some(dt("2024-09-02T08:30")));
    assert_eq!(
        p.record
            .medications
            .iter()
            .filter(|m| m.has(Ingredient::Denosumab))
            .count(),
        8
    );
    assert_eq!(med(&p, "ex8-zoledronate-1").visible, Some(d("2024-06-01")));
}

#[test]
fn example_9() {
    let out = read("example-9-bmd-loss.json");
    let p = out.patients[0].clone();
    assert!(p.issues.is_empty(), "{:#?}", p.issues);
    let b1 = obs(&p, "ex9-dxa-2022-hip-bmd");
    assert_eq!(b1.kind, ObservationKind::Bmd(DxaSite::TotalHip));
    assert_eq!(b1.value, Some(0.8));
    assert_eq!(b1.device.as_deref(), Some("GE Lunar iDXA"));
    assert_eq!(obs(&p, "ex9-dxa-2024-hip-bmd").value, Some(0.752));
    assert_eq!(obs(&p, "ex9-dxa-2024-hip-t").value, Some(-2.0));
    assert_eq!(obs(&p, "ex9-frax-hip").value, Some(1.8));
    let al = med(&p, "ex9-alendronate");
    assert_eq!(al.kind, MedicationSource::Statement);
    assert_eq!(al.status, MedicationStatus::Stopped);
    assert_eq!(
        al.effective,
        Some(Period::between(d("2020-06-01"), d("2022-06-01")))
    );
    assert_eq!(al.visible, Some(d("2022-06-01")));
    assert_eq!(al.dosages[0].dose_mg, Some(70.0));
    assert!(al.dosages[0]
        .per_day
        .is_some_and(|x| (x - 1.0 / 7.0).abs() < 1e-12));
    let pl = med(&p, "ex9-prednisolone");
    assert!((daily_mg(pl) - 7.5).abs() < 1e-9);
}

#[test]
fn all_examples_deterministic_and_complete() {
    let mut n = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let a = read_path(path).map_err(|e| e.to_string());
        let b = read_path(path).map_err(|e| e.to_string());
        assert_eq!(a, b);
        let Ok(out) = a else {
            panic!("{}", path.display())
        };
        assert_eq!(out.stats.total().not_understood, 0, "{}", path.display());
        n += 1;
    }
    // Six example bundles and the CDS Hooks patient-view request built from the seed case
    // (README's curl example; its prefetch is read like any record).
    assert_eq!(n, 7);
    // The whole directory reads as one store (ids do not clash).
    let all = read_path(&examples_dir()).map_err(|e| e.to_string());
    assert_eq!(all.map(|o| o.patients.len()), Ok(6));
}

//! The §13 rules on constructed patients at the window edges (day 84/85, 112/113, 364/365),
//! the index-fracture conditions (age 50, re-fracture within 365 days, onset vs recordedDate)
//! and the deceased rule. Expected answers are read off §13 by hand.

use chrono::NaiveDate;

use super::aggregate::{level, summarise, Level};
use super::*;
use crate::config::SiteCode;
use crate::model::*;
use crate::testkit::{d, RecordBuilder};

const D0: &str = "2024-01-10";
const PERIOD: ReportingPeriod = ReportingPeriod {
    start: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
    end: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
};

fn day(n: i64) -> NaiveDate {
    add_days(d(D0), n)
}
fn ds(n: i64) -> String {
    day(n).to_string()
}

fn hip_at(b: RecordBuilder, onset: &str) -> RecordBuilder {
    b.condition(
        ConditionKind::Fracture(FractureSite::Hip),
        Some((onset, onset)),
        Some(onset),
    )
}

/// A woman born 1950 with a hip fracture on day 0.
fn base() -> RecordBuilder {
    hip_at(RecordBuilder::new("1950-05-01", Sex::Female), D0)
}

fn item(kind: ItemKind, id: &str, code: (&str, &str), n: i64) -> Item {
    Item {
        source: format!("{kind:?}/{id}"),
        kind,
        codes: vec![SiteCode {
            system: code.0.into(),
            code: code.1.into(),
        }],
        date: Some(day(n)),
        visible: None,
        // a status under which each kind counts (§1.6; Encounter: a contact took place)
        status: Some(
            match kind {
                ItemKind::Observation => "final",
                ItemKind::Procedure => "completed",
                ItemKind::Encounter => "finished",
                ItemKind::ServiceRequest => "active",
            }
            .into(),
        ),
        do_not_perform: false,
    }
}

fn encounter(id: &str, n: i64) -> Item {
    item(
        ItemKind::Encounter,
        id,
        ("http://snomed.info/sct", "185349003"),
        n,
    )
}

fn run(
    record: &PatientRecord,
    items: &[Item],
    as_of: NaiveDate,
    config: &Config,
) -> PatientProgramme {
    evaluate_patient(&ProgrammeInput { record, items }, PERIOD, as_of, config)
}

fn status(p: &PatientProgramme, kpi: u8) -> KpiStatus {
    p.kpi(kpi).map(|k| k.status).expect("KPI present")
}

/// Late enough for every window (day 364) to have ended.
fn late() -> NaiveDate {
    day(400)
}

// ---- index fracture ----------------------------------------------------------------------

#[test]
fn a_fragility_fracture_in_the_period_at_50_is_an_index() {
    let r = base().build();
    let p = run(&r, &[], late(), &Config::default());
    let IndexOutcome::Index(ix) = &p.index else {
        panic!("expected an index, got {:?}", p.index)
    };
    assert_eq!(ix.onset, d(D0));
    assert!(!ix.vertebral);
    assert_eq!(p.kpis.len(), 10);
    assert_eq!(status(&p, 1), KpiStatus::True);
    assert_eq!(status(&p, 2), KpiStatus::False);
}

#[test]
fn age_under_50_at_onset_is_not_an_index() {
    // Born 1974-01-11: 49 on 2024-01-10 (day 0), 50 the day after.
    let r = hip_at(RecordBuilder::new("1974-01-11", Sex::Female), D0).build();
    let p = run(&r, &[], late(), &Config::default());
    assert!(
        matches!(p.index, IndexOutcome::UnderAge { age_years: 49, .. }),
        "{:?}",
        p.index
    );
    assert!(p.kpis.is_empty());
    // Born one day earlier: 50 on day 0.
    let r = hip_at(RecordBuilder::new("1974-01-10", Sex::Female), D0).build();
    assert!(matches!(
        run(&r, &[], late(), &Config::default()).index,
        IndexOutcome::Index(_)
    ));
}

#[test]
fn a_refracture_within_365_days_is_not_an_index() {
    // Prior wrist fracture 365 days before day 0 (in 2023, outside the period): re-fracture.
    let r = base()
        .condition(
            ConditionKind::Fracture(FractureSite::Wrist),
            Some((&ds(-365), &ds(-365))),
            Some(&ds(-365)),
        )
        .build();
    let p = run(&r, &[], late(), &Config::default());
    assert!(
        matches!(p.index, IndexOutcome::Refracture { .. }),
        "{:?}",
        p.index
    );
    assert!(p.kpis.is_empty());
    // 366 days before: outside the look-back, day 0 is an index.
    let r = base()
        .condition(
            ConditionKind::Fracture(FractureSite::Wrist),
            Some((&ds(-366), &ds(-366))),
            Some(&ds(-366)),
        )
        .build();
    assert!(matches!(
        run(&r, &[], late(), &Config::default()).index,
        IndexOutcome::Index(_)
    ));
}

#[test]
fn onset_decides_before_recorded_date() {
    // Onset 2023-12-20 (before the period), recorded 2024-01-05 (in it): not in the period.
    let r = RecordBuilder::new("1950-05-01", Sex::Female)
        .condition(
            ConditionKind::Fracture(FractureSite::Hip),
            Some(("2023-12-20", "2023-12-20")),
            Some("2024-01-05"),
        )
        .build();
    assert_eq!(
        run(&r, &[], late(), &Config::default()).index,
        IndexOutcome::None
    );
    // No onset: the recorded date is day 0.
    let r = RecordBuilder::new("1950-05-01", Sex::Female)
        .condition(
            ConditionKind::Fracture(FractureSite::Hip),
            None,
            Some("2024-01-05"),
        )
        .build();
    let p = run(&r, &[], late(), &Config::default());
    let IndexOutcome::Index(ix) = &p.index else {
        panic!("{:?}", p.index)
    };
    assert_eq!(ix.onset, d("2024-01-05"));
}

#[test]
fn traumatic_and_follow_up_codes_are_not_fragility_fractures_and_undated_ones_are_unknown() {
    let mut r = base().build();
    r.conditions[0].mechanism = Some(FractureMechanism::Traumatic);
    assert_eq!(
        run(&r, &[], late(), &Config::default()).index,
        IndexOutcome::None
    );
    let mut r = base().build();
    r.conditions[0].subsequent_encounter = true;
    assert_eq!(
        run(&r, &[], late(), &Config::default()).index,
        IndexOutcome::None
    );
    let r = RecordBuilder::new("1950-05-01", Sex::Female)
        .condition(ConditionKind::Fracture(FractureSite::Hip), None, None)
        .build();
    assert!(matches!(
        run(&r, &[], late(), &Config::default()).index,
        IndexOutcome::OnsetUnknown { .. }
    ));
    let mut r = base().build();
    r.patient.birth_date = None;
    assert!(matches!(
        run(&r, &[], late(), &Config::default()).index,
        IndexOutcome::AgeUnknown { .. }
    ));
}

#[test]
fn a_vertebral_index_counts_for_kpi_2() {
    let r = RecordBuilder::new("1950-05-01", Sex::Female)
        .vertebral_fracture(VertebralLevel::L1, D0, D0)
        .build();
    let p = run(&r, &[], late(), &Config::default());
    assert_eq!(status(&p, 1), KpiStatus::False);
    assert_eq!(status(&p, 2), KpiStatus::True);
}

// ---- KPIs 3 and 4: day 0–84 --------------------------------------------------------------

#[test]
fn kpi_3_and_4_dxa_on_day_84_counts_day_85_does_not() {
    let tscore = ObservationKind::TScore(DxaSite::TotalHip);
    let r = base().observation(tscore, &ds(84), -2.6).build();
    let p = run(&r, &[], late(), &Config::default());
    assert_eq!(status(&p, 3), KpiStatus::True);
    assert_eq!(status(&p, 4), KpiStatus::True);
    assert_eq!(p.kpi(4).map(|k| k.evidence.len()), Some(1));
    let r = base().observation(tscore, &ds(85), -2.6).build();
    let p = run(&r, &[], late(), &Config::default());
    assert_eq!(status(&p, 3), KpiStatus::False);
    assert_eq!(status(&p, 4), KpiStatus::False);
}

#[test]
fn kpi_3_frax_counts_for_3_not_for_4() {
    let r = base()
        .observation(ObservationKind::FraxMof, &ds(10), 25.0)
        .build();
    let p = run(&r, &[], late(), &Config::default());
    assert_eq!(status(&p, 3), KpiStatus::True);
    assert_eq!(status(&p, 4), KpiStatus::False);
}

#[test]
fn kpi_3_and_4_are_pending_until_day_84_has_passed() {
    let r = base()
        .observation(ObservationKind::FraxMof, &ds(10), 25.0)
        .build();
    let p = run(&r, &[], day(84), &Config::default());
    assert_eq!(status(&p, 3), KpiStatus::Pending);
    assert_eq!(status(&p, 4), KpiStatus::Pending);
    let p = run(&r, &[], day(85), &Config::default());
    assert_eq!(status(&p, 3), KpiStatus::True);
    assert_eq!(status(&p, 4), KpiStatus::False);
    // KPIs 1 and 2 have no window.
    assert_eq!(status(&p, 1), KpiStatus::True);
}

#[test]
fn kpi_4_a_dxa_procedure_counts_and_an_undated_one_is_unknown() {
    let r = base().procedure(ProcedureKind::Dxa, &[], &ds(30)).build();
    assert_eq!(
        status(&run(&r, &[], late(), &Config::default()), 4),
        KpiStatus::True
    );
    let mut r = base().procedure(ProcedureKind::Dxa, &[], &ds(30)).build();
    r.procedures[0].performed = None;
    assert_eq!(
        status(&run(&r, &[], late(), &Config::default()), 4),
        KpiStatus::Unknown
    );
}

// ---- KPI 5: falls risk, day 0–112, site-mappable -----------------------------------------

#[test]
fn kpi_5_falls_risk_on_day_112_counts_113_does_not_and_sites_can_map_codes() {
    let r = base().build();
    let falls = FALLS_RISK_DEFAULT;
    let p = run(
        &r,
        &[item(ItemKind::Observation, "f", falls, 112)],
        late(),
        &Config::default(),
    );
    assert_eq!(status(&p, 5), KpiStatus::True);
    let p = run(
        &r,
        &[item(ItemKind::Procedure, "f", falls, 113)],
        late(),
        &Config::default(),
    );
    assert_eq!(status(&p, 5), KpiStatus::False);
    // A local code counts only once mapped; a ServiceRequest is not an assessment.
    let local = item(
        ItemKind::Observation,
        "l",
        ("http://example.org/local", "FRA"),
        5,
    );
    let p = run(&r, std::slice::from_ref(&local), late(), &Config::default());
    assert_eq!(status(&p, 5), KpiStatus::False);
    let config =
        Config::from_toml_str("[programme]\nfalls_risk_codes = [\"http://example.org/local|FRA\"]")
            .expect("config");
    assert_eq!(
        status(&run(&r, &[local], late(), &config), 5),
        KpiStatus::True
    );
    let sr = item(ItemKind::ServiceRequest, "s", falls, 5);
    assert_eq!(
        status(&run(&r, &[sr], late(), &Config::default()), 5),
        KpiStatus::False
    );
    // Pending on day 112, decided on day 113.
    assert_eq!(
        status(&run(&r, &[], day(112), &Config::default()), 5),
        KpiStatus::Pending
    );
    assert_eq!(
        status(&run(&r, &[], day(113), &Config::default()), 5),
        KpiStatus::False
    );
}

// ---- KPI 6: AOM recommended ----------------------------------------------------------------

#[test]
fn kpi_6_an_aom_order_of_any_status_but_entered_in_error_within_day_112() {
    // A man with a hip fracture: only the MedicationRequest evidence is checked here
    // (osteoguard's own finding is the next test).
    let order = |status: MedicationStatus, n: i64| {
        hip_at(RecordBuilder::new("1950-05-01", Sex::Male), D0)
            .order(Ingredient::Alendronate, status, &ds(n))
            .build()
    };
    let r = order(MedicationStatus::Cancelled, 112);
    let p = run(&r, &[], late(), &Config::default());
    assert_eq!(status(&p, 6), KpiStatus::True);
    assert!(p.kpi(6).is_some_and(|k| k
        .evidence
        .iter()
        .any(|e| e.starts_with("MedicationRequest/"))));
    let r = order(MedicationStatus::EnteredInError, 50);
    let p = run(&r, &[], late(), &Config::default());
    assert!(p.kpi(6).is_some_and(|k| !k
        .evidence
        .iter()
        .any(|e| e.starts_with("MedicationRequest/"))));
    let r = order(MedicationStatus::Active, 113);
    let p = run(&r, &[], late(), &Config::default());
    assert!(p.kpi(6).is_some_and(|k| !k
        .evidence
        .iter()
        .any(|e| e.starts_with("MedicationRequest/"))));
}

#[test]
fn kpi_6_osteoguards_own_treatment_finding_counts() {
    // A 73-year-old woman with a hip fracture and no treatment: osteoguard raises
    // `osteoporosis-treatment-indicated` (§3.2: a hip fracture after 50 is very high risk).
    let r = base().build();
    let a = crate::assess(&r, day(112), &Config::default());
    assert!(
        a.findings
            .iter()
            .any(|f| f.code == crate::FindingCode::OsteoporosisTreatmentIndicated),
        "precondition: the rule fires on this record"
    );
    let p = run(&r, &[], late(), &Config::default());
    assert_eq!(status(&p, 6), KpiStatus::True);
    assert!(p.kpi(6).is_some_and(|k| k
        .evidence
        .iter()
        .any(|e| e.starts_with("finding:osteoporosis-treatment-indicated@"))));
}

// ---- KPI 7: exercise, site-mapped, none by default ---------------------------------------

#[test]
fn kpi_7_is_unknown_without_a_value_set_and_read_from_it_with_one() {
    let r = base().build();
    let physio = ("http://example.org/local", "PHYSIO");
    let sr = item(ItemKind::ServiceRequest, "x", physio, 112);
    assert_eq!(
        status(
            &run(&r, std::slice::from_ref(&sr), late(), &Config::default()),
            7
        ),
        KpiStatus::Unknown
    );
    let config = Config::from_toml_str(
        "[programme]\nexercise_codes = [\"http://example.org/local|PHYSIO\"]",
    )
    .expect("config");
    assert_eq!(status(&run(&r, &[sr], late(), &config), 7), KpiStatus::True);
    let late_sr = item(ItemKind::ServiceRequest, "x", physio, 113);
    assert_eq!(
        status(&run(&r, &[late_sr], late(), &config), 7),
        KpiStatus::False
    );
    let mut revoked = item(ItemKind::ServiceRequest, "x", physio, 30);
    revoked.status = Some("revoked".into());
    assert_eq!(
        status(&run(&r, &[revoked], late(), &config), 7),
        KpiStatus::False
    );
}

// ---- KPI 8: monitored, day 1–112 ---------------------------------------------------------

#[test]
fn kpi_8_a_contact_on_day_1_to_112_counts_day_0_and_113_do_not() {
    let r = base().build();
    let c = Config::default();
    assert_eq!(
        status(&run(&r, &[encounter("e", 1)], late(), &c), 8),
        KpiStatus::True
    );
    assert_eq!(
        status(&run(&r, &[encounter("e", 112)], late(), &c), 8),
        KpiStatus::True
    );
    assert_eq!(
        status(&run(&r, &[encounter("e", 0)], late(), &c), 8),
        KpiStatus::False
    );
    assert_eq!(
        status(&run(&r, &[encounter("e", 113)], late(), &c), 8),
        KpiStatus::False
    );
    // No Encounter at all in the input for the patient: UNKNOWN, not FALSE.
    assert_eq!(status(&run(&r, &[], late(), &c), 8), KpiStatus::Unknown);
    // A follow-up observation counts.
    let r = base()
        .observation(ObservationKind::Egfr, &ds(40), 70.0)
        .build();
    assert_eq!(
        status(&run(&r, &[encounter("e", 0)], late(), &c), 8),
        KpiStatus::True
    );
}

// ---- KPI 9: AOM started, day 0–112 -------------------------------------------------------

#[test]
fn kpi_9_a_dose_given_or_an_active_oral_order_starting_by_day_112() {
    let c = Config::default();
    let given = |n: i64| {
        base()
            .administration(Ingredient::ZoledronicAcid, &ds(n), 5.0, Route::Intravenous)
            .build()
    };
    assert_eq!(
        status(&run(&given(112), &[], late(), &c), 9),
        KpiStatus::True
    );
    assert_eq!(
        status(&run(&given(113), &[], late(), &c), 9),
        KpiStatus::False
    );
    let oral = |status: MedicationStatus, n: i64| {
        base()
            .daily_order(
                Ingredient::Alendronate,
                status,
                &ds(n),
                None,
                Some(70.0),
                Some(1.0),
                Route::Oral,
            )
            .build()
    };
    assert_eq!(
        status(
            &run(&oral(MedicationStatus::Active, 112), &[], late(), &c),
            9
        ),
        KpiStatus::True
    );
    assert_eq!(
        status(
            &run(&oral(MedicationStatus::Active, 113), &[], late(), &c),
            9
        ),
        KpiStatus::False
    );
    // "active oral AOM order": a draft is not started.
    assert_eq!(
        status(&run(&oral(MedicationStatus::Draft, 10), &[], late(), &c), 9),
        KpiStatus::False
    );
    // Status unknown: UNKNOWN, not FALSE.
    assert_eq!(
        status(
            &run(&oral(MedicationStatus::Unknown, 10), &[], late(), &c),
            9
        ),
        KpiStatus::Unknown
    );
    assert_eq!(
        status(&run(&given(10), &[], day(112), &c), 9),
        KpiStatus::Pending
    );
}

// ---- KPI 10: AOM at one year -------------------------------------------------------------

#[test]
fn kpi_10_active_on_day_364_and_pending_until_then() {
    let c = Config::default();
    let r = base()
        .daily_order(
            Ingredient::Alendronate,
            MedicationStatus::Active,
            &ds(20),
            None,
            Some(70.0),
            Some(1.0),
            Route::Oral,
        )
        .build();
    assert_eq!(status(&run(&r, &[], day(364), &c), 10), KpiStatus::Pending);
    assert_eq!(status(&run(&r, &[], day(365), &c), 10), KpiStatus::True);
    // The order ended on day 200: not active on day 364.
    let r = base()
        .daily_order(
            Ingredient::Alendronate,
            MedicationStatus::Completed,
            &ds(20),
            Some(&ds(200)),
            Some(70.0),
            Some(1.0),
            Route::Oral,
        )
        .build();
    assert_eq!(status(&run(&r, &[], day(365), &c), 10), KpiStatus::False);
}

#[test]
fn kpi_10_denosumab_within_7_months_or_zoledronate_within_12_months() {
    let c = Config::default();
    // Denosumab on day 200 (about 5.4 months before day 364).
    let r = base()
        .administration(Ingredient::Denosumab, &ds(200), 60.0, Route::Subcutaneous)
        .build();
    assert_eq!(status(&run(&r, &[], day(365), &c), 10), KpiStatus::True);
    // Zoledronate on day 5 (almost 12 months before day 364).
    let r = base()
        .administration(Ingredient::ZoledronicAcid, &ds(5), 5.0, Route::Intravenous)
        .build();
    assert_eq!(status(&run(&r, &[], day(365), &c), 10), KpiStatus::True);
    // Zoledronate on day −10: more than 12 months before day 364.
    let r = base()
        .administration(
            Ingredient::ZoledronicAcid,
            &ds(-10),
            5.0,
            Route::Intravenous,
        )
        .build();
    assert_eq!(status(&run(&r, &[], day(365), &c), 10), KpiStatus::False);
}

// ---- deceased rule -------------------------------------------------------------------------

#[test]
fn a_patient_who_died_before_the_window_ended_is_left_out_of_kpis_7_to_10_only() {
    let mut r = base().build();
    r.patient.deceased = Some(day(50));
    let config = Config::from_toml_str(
        "[programme]\nexercise_codes = [\"http://example.org/local|PHYSIO\"]",
    )
    .expect("config");
    let p = run(&r, &[encounter("e", 10)], late(), &config);
    for k in 7..=10 {
        assert_eq!(status(&p, k), KpiStatus::Excluded, "KPI {k}");
    }
    // KPIs 3–6 are still answered.
    assert_eq!(status(&p, 3), KpiStatus::False);
    assert_eq!(status(&p, 5), KpiStatus::False);
    // Died on day 200: the day-112 windows had ended (answered), KPI 10's had not (excluded).
    r.patient.deceased = Some(day(200));
    let p = run(&r, &[encounter("e", 10)], late(), &config);
    assert_eq!(status(&p, 8), KpiStatus::True);
    assert_eq!(status(&p, 10), KpiStatus::Excluded);
}

// ---- aggregation -------------------------------------------------------------------------

#[test]
fn levels_follow_section_13() {
    assert_eq!(level(3, 49.9), Level::Red);
    assert_eq!(level(3, 50.0), Level::Amber);
    assert_eq!(level(3, 80.0), Level::Amber);
    assert_eq!(level(3, 80.1), Level::Green);
    assert_eq!(level(6, 49.9), Level::Red);
    assert_eq!(level(6, 50.0), Level::Green);
}

#[test]
fn pending_unknown_and_excluded_stay_out_of_the_denominator() {
    let c = Config::default();
    let dxa = ObservationKind::TScore(DxaSite::TotalHip);
    let with_id = |id: &str, r: RecordBuilder| {
        let mut r = r.build();
        r.patient.source = SourceRef::new(format!("Patient/{id}"));
        r
    };
    let a = with_id("a", base().observation(dxa, &ds(10), -2.6));
    let b = with_id("b", base());
    let mut u = with_id("u", base().procedure(ProcedureKind::Dxa, &[], &ds(10)));
    u.procedures[0].performed = None;
    // A patient whose index is recent: pending at the as-of date.
    let late_fracture = with_id(
        "p",
        hip_at(RecordBuilder::new("1950-05-01", Sex::Female), "2024-12-01"),
    );
    let none = with_id("n", RecordBuilder::new("1950-05-01", Sex::Female));
    let as_of = d("2025-01-15");
    let ps: Vec<PatientProgramme> = [&a, &b, &u, &late_fracture, &none]
        .iter()
        .map(|r| run(r, &[encounter("e", 5)], as_of, &c))
        .collect();
    let s = summarise(&ps);
    assert_eq!(s.patients, 5);
    assert_eq!(s.index_patients, 4);
    let k4 = &s.kpis[3];
    assert_eq!(k4.kpi, 4);
    assert_eq!(
        (k4.true_count, k4.false_count, k4.unknown, k4.pending),
        (1, 1, 1, 1)
    );
    assert_eq!(k4.denominator, 2);
    assert_eq!(k4.percent, Some(50.0));
    assert_eq!(k4.level, Some(Level::Amber));
    assert_eq!(k4.patients.unknown, vec!["Patient/u".to_string()]);
    assert_eq!(k4.patients.pending, vec!["Patient/p".to_string()]);
    let lower = k4.percent_if_unknown_not_met.expect("lower bound");
    assert!((lower - 100.0 / 3.0).abs() < 1e-9);
    // KPI 11 for KPI 4: 2 of 3 applicable patients decided.
    let c4 = s
        .completeness
        .iter()
        .find(|c| c.kpi == 4)
        .expect("KPI 11 row");
    assert_eq!((c4.decided, c4.applicable), (2, 3));
    // KPI 1 is a count without a level.
    assert!(s.kpis[0].is_count && s.kpis[0].level.is_none());
    assert_eq!(s.completeness.len(), 8);
}

// ---- found by the differential (tools/oracle-prog, docs/differential-programme.md) ---------

/// A two-year period (2023–2024), for the index conditions across more than 365 days.
const LONG: ReportingPeriod = ReportingPeriod {
    start: NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
    end: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
};

/// The base patient with one completed administration of `ingredient` on day `n`.
fn dosed(ingredient: Ingredient, n: i64) -> PatientRecord {
    let (mg, route) = match ingredient {
        Ingredient::Denosumab => (60.0, Route::Subcutaneous),
        _ => (5.0, Route::Intravenous),
    };
    base().administration(ingredient, &ds(n), mg, route).build()
}

/// The answer of KPI `kpi` for `r` (no items, default configuration) on `as_of`.
fn answer(r: &PatientRecord, as_of: NaiveDate, kpi: u8) -> KpiStatus {
    status(&run(r, &[], as_of, &Config::default()), kpi)
}

fn wrist(b: RecordBuilder, onset: &str) -> RecordBuilder {
    b.condition(
        ConditionKind::Fracture(FractureSite::Wrist),
        Some((onset, onset)),
        Some(onset),
    )
}

#[test]
fn index_the_earliest_fracture_that_meets_the_conditions_not_only_the_earliest_one() {
    // §13: "the earliest fragility fracture (...) with onset in the period, in a patient aged
    // ≥ 50 at onset, with no fragility fracture in the 365 days before it". A re-fracture on
    // 2023-03-01 (prior 2022-06-01) and a hip fracture on 2024-03-05, 370 days later with no
    // fracture in the 365 days before it: the 2024 fracture is the index.
    let r = hip_at(
        wrist(
            wrist(RecordBuilder::new("1950-05-01", Sex::Female), "2022-06-01"),
            "2023-03-01",
        ),
        "2024-03-05",
    )
    .build();
    let p = evaluate_patient(
        &ProgrammeInput {
            record: &r,
            items: &[],
        },
        LONG,
        d("2025-06-01"),
        &Config::default(),
    );
    let IndexOutcome::Index(ix) = &p.index else {
        panic!("expected an index, got {:?}", p.index)
    };
    assert_eq!(ix.onset, d("2024-03-05"));
    // 364 days later it is itself a re-fracture: no index, the earliest reason is reported.
    let r = hip_at(
        wrist(
            wrist(RecordBuilder::new("1950-05-01", Sex::Female), "2022-06-01"),
            "2023-03-01",
        ),
        "2024-02-28",
    )
    .build();
    let p = evaluate_patient(
        &ProgrammeInput {
            record: &r,
            items: &[],
        },
        LONG,
        d("2025-06-01"),
        &Config::default(),
    );
    assert!(
        matches!(&p.index, IndexOutcome::Refracture { onset, .. } if *onset == d("2023-03-01")),
        "{:?}",
        p.index
    );
    // Aged 49 at a wrist fracture on 2023-02-01, 50 at a hip fracture on 2024-02-05 (369 days
    // later): the hip fracture is the index.
    let r = hip_at(
        wrist(RecordBuilder::new("1973-06-01", Sex::Female), "2023-02-01"),
        "2024-02-05",
    )
    .build();
    let p = evaluate_patient(
        &ProgrammeInput {
            record: &r,
            items: &[],
        },
        LONG,
        d("2025-06-01"),
        &Config::default(),
    );
    assert!(
        matches!(&p.index, IndexOutcome::Index(ix) if ix.onset == d("2024-02-05")),
        "{:?}",
        p.index
    );
}

#[test]
fn kpi_3_a_frax_outside_0_to_100_percent_is_not_a_frax() {
    // §3.4: "Value 0–100 % (...); outside range → ignore"; KPI 3 "FRAX (3.4) or DXA".
    let c = Config::default();
    let with = |v: f64| {
        base()
            .observation(ObservationKind::FraxMof, &ds(10), v)
            .build()
    };
    assert_eq!(
        status(&run(&with(-2.0), &[], late(), &c), 3),
        KpiStatus::False
    );
    assert_eq!(
        status(&run(&with(101.0), &[], late(), &c), 3),
        KpiStatus::False
    );
    assert_eq!(
        status(&run(&with(100.0), &[], late(), &c), 3),
        KpiStatus::True
    );
    assert_eq!(
        status(&run(&with(0.0), &[], late(), &c), 3),
        KpiStatus::True
    );
}

fn with_status(mut it: Item, status: Option<&str>) -> Item {
    it.status = status.map(str::to_string);
    it
}

#[test]
fn kpi_5_and_8_read_the_status_of_procedures_observations_and_encounters() {
    let c = Config::default();
    let r = base().build();
    let falls = ("http://snomed.info/sct", "414191008");
    // §1.6 "Procedure: status = completed": one in preparation is no falls-risk assessment.
    let proc_ = |s: Option<&str>| with_status(item(ItemKind::Procedure, "f", falls, 30), s);
    assert_eq!(
        status(&run(&r, &[proc_(Some("preparation"))], late(), &c), 5),
        KpiStatus::False
    );
    assert_eq!(
        status(&run(&r, &[proc_(Some("in-progress"))], late(), &c), 5),
        KpiStatus::False
    );
    assert_eq!(
        status(&run(&r, &[proc_(Some("completed"))], late(), &c), 5),
        KpiStatus::True
    );
    // Status unknown in the window: UNKNOWN (§1.4), not FALSE.
    assert_eq!(
        status(&run(&r, &[proc_(Some("unknown"))], late(), &c), 5),
        KpiStatus::Unknown
    );
    // §1.6 Observation statuses: registered / cancelled do not count.
    let obs = |s: Option<&str>| with_status(item(ItemKind::Observation, "o", falls, 30), s);
    assert_eq!(
        status(&run(&r, &[obs(Some("registered"))], late(), &c), 5),
        KpiStatus::False
    );
    assert_eq!(
        status(&run(&r, &[obs(Some("preliminary"))], late(), &c), 5),
        KpiStatus::True
    );
    // KPI 8 "any contact after the index": a planned, cancelled or entered-in-error Encounter
    // is no contact; an arrived or in-progress one is.
    let enc = |s: &str| with_status(encounter("e", 30), Some(s));
    for s in ["planned", "cancelled", "entered-in-error"] {
        assert_eq!(
            status(&run(&r, &[enc(s)], late(), &c), 8),
            KpiStatus::False,
            "{s}"
        );
    }
    for s in ["arrived", "in-progress", "finished"] {
        assert_eq!(
            status(&run(&r, &[enc(s)], late(), &c), 8),
            KpiStatus::True,
            "{s}"
        );
    }
}

#[test]
fn an_observation_item_issued_after_the_as_of_date_is_invisible() {
    // §1.2: an Observation is visible from `issued` (else effective). A falls-risk assessment
    // effective on day 30 but issued after the as-of date (day 400) is not in the record then.
    let c = Config::default();
    let r = base().build();
    let mut o = item(
        ItemKind::Observation,
        "o",
        ("http://snomed.info/sct", "414191008"),
        30,
    );
    o.visible = Some(day(401));
    assert_eq!(
        status(&run(&r, &[o.clone()], late(), &c), 5),
        KpiStatus::False
    );
    assert_eq!(
        status(&run(&r, &[o.clone(), encounter("e", 0)], late(), &c), 8),
        KpiStatus::False
    );
    // On the day it was issued it is visible.
    assert_eq!(status(&run(&r, &[o], day(401), &c), 5), KpiStatus::True);
}

#[test]
fn kpi_9_unknown_statuses_count_only_in_the_window() {
    let late_ = late();
    // A zoledronate administration of status unknown on day 10: it may have been given
    // (§1.4) — UNKNOWN, not FALSE.
    let mut r = dosed(Ingredient::ZoledronicAcid, 10);
    r.medications[0].status = MedicationStatus::Unknown;
    assert_eq!(answer(&r, late_, 9), KpiStatus::Unknown);
    // The same on day 200 (outside day 0–112): it cannot make the window's answer.
    let mut r = dosed(Ingredient::ZoledronicAcid, 200);
    r.medications[0].status = MedicationStatus::Unknown;
    assert_eq!(answer(&r, late_, 9), KpiStatus::False);
    // A denosumab order of unknown status: KPI 9 reads orders only as "an active oral AOM
    // order with start in the window" — an injectable order is no start, whatever its status.
    let r = base()
        .order(Ingredient::Denosumab, MedicationStatus::Unknown, &ds(20))
        .build();
    assert_eq!(answer(&r, late_, 9), KpiStatus::False);
    // An oral order of unknown status starting on day 300: outside the window.
    let r = base()
        .daily_order(
            Ingredient::Alendronate,
            MedicationStatus::Unknown,
            &ds(300),
            None,
            Some(70.0),
            Some(1.0),
            Route::Oral,
        )
        .build();
    assert_eq!(answer(&r, late_, 9), KpiStatus::False);
    // A dispense of unknown status handed over on day 300: outside the window; on day 50: UNKNOWN.
    let disp = |n: i64| {
        base()
            .dispense(
                Ingredient::Alendronate,
                DispenseStatus::Unknown,
                Some(&ds(n)),
                Some(30),
            )
            .build()
    };
    assert_eq!(answer(&disp(300), late_, 9), KpiStatus::False);
    assert_eq!(answer(&disp(50), late_, 9), KpiStatus::Unknown);
}

#[test]
fn kpi_10_seven_months_is_210_days_and_twelve_months_365_days() {
    // §1.2: "Months" are fixed day counts, never calendar months ("12 months" = 365 days).
    // §13 "a denosumab dose within the 7 months before [day 364]": 210 days (§4.3/§5.1).
    let dmab = |n| answer(&dosed(Ingredient::Denosumab, n), late(), 10);
    assert_eq!(dmab(154), KpiStatus::True);
    assert_eq!(dmab(153), KpiStatus::False);
    // Day 0 is 2024-01-10, day 364 2025-01-08: 365 days back is 2024-01-09 = day −1.
    let zol = |n| answer(&dosed(Ingredient::ZoledronicAcid, n), late(), 10);
    assert_eq!(zol(-1), KpiStatus::True);
    assert_eq!(zol(-2), KpiStatus::False);
}

#[test]
fn kpi_10_unknown_status_doses_and_stale_orders() {
    // A denosumab administration of unknown status on day 300: it may be a dose within 7
    // months of day 364 (§4.3 "if therapy status cannot be determined → UNKNOWN").
    let mut r = dosed(Ingredient::Denosumab, 300);
    r.medications[0].status = MedicationStatus::Unknown;
    assert_eq!(answer(&r, late(), 10), KpiStatus::Unknown);
    // An oral order of unknown status whose stated end (day 200) is before day 364 cannot
    // cover day 364 whatever its status: FALSE.
    let r = base()
        .daily_order(
            Ingredient::Risedronate,
            MedicationStatus::Unknown,
            &ds(100),
            Some(&ds(200)),
            Some(35.0),
            Some(1.0),
            Route::Oral,
        )
        .build();
    assert_eq!(answer(&r, late(), 10), KpiStatus::False);
    // Open-ended: it may cover day 364 — UNKNOWN.
    let r = base()
        .daily_order(
            Ingredient::Risedronate,
            MedicationStatus::Unknown,
            &ds(100),
            None,
            Some(35.0),
            Some(1.0),
            Route::Oral,
        )
        .build();
    assert_eq!(answer(&r, late(), 10), KpiStatus::Unknown);
}

#[test]
fn a_death_without_a_date_makes_kpis_7_to_10_unknown_unless_true() {
    // §13 "A patient who died (Patient.deceased) before the window ended is left out of KPIs
    // 7–10"; with no date it may have been before or after: not FALSE (§1.4).
    let r = dosed(Ingredient::ZoledronicAcid, 10);
    let p = evaluate_patient_with(
        &ProgrammeInput {
            record: &r,
            items: &[],
        },
        PERIOD,
        late(),
        &Config::default(),
        Death::Undated,
    );
    assert_eq!(status(&p, 8), KpiStatus::Unknown); // no Encounter: UNKNOWN anyway
    assert_eq!(status(&p, 9), KpiStatus::True); // the dose was given: TRUE stands
    assert_eq!(status(&p, 10), KpiStatus::True); // zoledronate within 12 months
    let p = evaluate_patient_with(
        &ProgrammeInput {
            record: &r,
            items: &[encounter("e", 0)],
        },
        PERIOD,
        late(),
        &Config::default(),
        Death::Undated,
    );
    assert_eq!(status(&p, 8), KpiStatus::Unknown); // would be FALSE (day 0 only)
    assert_eq!(status(&p, 3), KpiStatus::False); // KPIs 3–6: no deceased rule
                                                 // Pending windows stay pending.
    let p = evaluate_patient_with(
        &ProgrammeInput {
            record: &r,
            items: &[],
        },
        PERIOD,
        day(200),
        &Config::default(),
        Death::Undated,
    );
    assert_eq!(status(&p, 10), KpiStatus::Pending);
    // The same record without the undated death: FALSE for KPI 8.
    assert_eq!(
        status(
            &run(&r, &[encounter("e", 0)], late(), &Config::default()),
            8
        ),
        KpiStatus::False
    );
}

#[test]
fn kpi_7_a_draft_referral_is_not_a_referral() {
    // §13 KPI 7 "a referral/procedure for exercise or physiotherapy": a draft ServiceRequest
    // (FHIR: "not yet complete or ready for action") has not been made; active, on-hold and
    // completed ones have; status unknown in the window is UNKNOWN (§1.4).
    let r = base().build();
    let physio = ("http://example.org/local", "PHYSIO");
    let config = Config::from_toml_str(
        "[programme]\nexercise_codes = [\"http://example.org/local|PHYSIO\"]",
    )
    .expect("config");
    let sr = |s: &str| with_status(item(ItemKind::ServiceRequest, "x", physio, 30), Some(s));
    assert_eq!(
        status(&run(&r, &[sr("draft")], late(), &config), 7),
        KpiStatus::False
    );
    for s in ["active", "on-hold", "completed"] {
        assert_eq!(
            status(&run(&r, &[sr(s)], late(), &config), 7),
            KpiStatus::True,
            "{s}"
        );
    }
    assert_eq!(
        status(&run(&r, &[sr("unknown")], late(), &config), 7),
        KpiStatus::Unknown
    );
    // A do-not-perform request is no referral, whatever its status.
    let mut dnp = sr("unknown");
    dnp.do_not_perform = true;
    assert_eq!(
        status(&run(&r, &[dnp], late(), &config), 7),
        KpiStatus::False
    );
}

#[test]
fn kpi_3_and_4_an_imaging_study_of_unknown_status_counts_only_in_the_window() {
    // A DXA ImagingStudy of status unknown on day 30 may exist: UNKNOWN. On day 85 (after the
    // day-84 window) it cannot make the window's answer: FALSE.
    let study = |n: i64| {
        let mut r = base().build();
        r.imaging_studies.push(ImagingStudy {
            source: SourceRef::new("ImagingStudy/dxa"),
            status: ImagingStudyStatus::Unknown,
            display: "DXA".into(),
            started: Some(day(n).and_hms_opt(9, 0, 0).expect("time")),
        });
        r
    };
    assert_eq!(answer(&study(30), late(), 4), KpiStatus::Unknown);
    assert_eq!(answer(&study(85), late(), 4), KpiStatus::False);
    assert_eq!(answer(&study(85), late(), 3), KpiStatus::False);
}

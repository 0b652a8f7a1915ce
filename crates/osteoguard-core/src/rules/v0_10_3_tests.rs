//! knowledge.md v0.10.3 changes that the engine already implemented before this version, each
//! confirmed through the whole pipeline (record → facts → rules): §2.5 `gc_start_date` when the
//! dose is UNKNOWN, §3.2 B3/B5, §6.2/§7.2/§7.4 level-less and prevalent vertebral fractures
//! blocking the lumbar-spine comparison.

use crate::config::Config;
use crate::engine::{evaluate, Evaluation};
use crate::facts::risk::RiskCategory;
use crate::model::{
    ConditionKind, DxaSite, FractureSite, Ingredient, MedicationStatus, ObservationKind, Route,
    Sex, VertebralLevel, VertebralLocation,
};
use crate::testkit::{d, RecordBuilder};

fn eval(b: RecordBuilder, as_of: &str) -> Evaluation {
    evaluate(&b.build(), d(as_of), &Config::default())
}

fn item6(e: &Evaluation) -> bool {
    e.outcome.insufficient.iter().any(|i| i.item == 6)
}

/// Spine-only T-scores a year apart with a decrease of 0.9 (significant if compared).
fn spine_pair(b: RecordBuilder) -> RecordBuilder {
    b.observation(
        ObservationKind::TScore(DxaSite::LumbarSpine),
        "2022-01-10",
        -1.3,
    )
    .observation(
        ObservationKind::TScore(DxaSite::LumbarSpine),
        "2023-01-10",
        -2.2,
    )
}

fn unlocated_fracture(b: RecordBuilder, recorded: &str) -> RecordBuilder {
    b.condition(
        ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Unspecified)),
        None,
        Some(recorded),
    )
}

/// §6.2/§7.2: a vertebral fracture without a level blocks the spine comparison when its onset
/// (recordedDate when there is no onset) is on or before the later scan date.
#[test]
fn levelless_fracture_blocks_the_spine_comparison_by_its_date() {
    let woman = || RecordBuilder::new("1950-03-15", Sex::Female);
    let e = eval(spine_pair(woman()), "2023-02-01");
    assert!(e.outcome.fired(crate::FindingCode::BmdSignificantLoss));
    // Recorded on the later scan date: blocked → item 6, no loss finding.
    let e = eval(
        unlocated_fracture(spine_pair(woman()), "2023-01-10"),
        "2023-02-01",
    );
    assert!(!e.outcome.fired(crate::FindingCode::BmdSignificantLoss));
    assert!(item6(&e));
    // Recorded the day after the later scan: the pair stays comparable.
    let e = eval(
        unlocated_fracture(spine_pair(woman()), "2023-01-11"),
        "2023-02-01",
    );
    assert!(e.outcome.fired(crate::FindingCode::BmdSignificantLoss));
    assert!(!item6(&e));
}

/// §6.2/§7.4 step 2: a prevalent fracture of unknown age at L1–L4 (a Genant grade ≥ 1 with no
/// earlier grade 0), found after both scans, counts as present at every date: it blocks the
/// earlier pair. At T12 it does not.
#[test]
fn prevalent_unknown_age_fracture_blocks_earlier_spine_pairs() {
    let graded = |level: VertebralLevel| {
        spine_pair(RecordBuilder::new("1950-03-15", Sex::Female))
            .observation(ObservationKind::GenantGrade, "2023-01-20", 2.0)
            .with_last_observation(move |o| o.level = Some(level))
    };
    let e = eval(graded(VertebralLevel::L2), "2023-02-01");
    assert!(e.spine.fractures.iter().any(|f| f.prevalent_unknown_age));
    assert!(!e.outcome.fired(crate::FindingCode::BmdSignificantLoss));
    assert!(item6(&e));
    let e = eval(graded(VertebralLevel::T12), "2023-02-01");
    assert!(e.outcome.fired(crate::FindingCode::BmdSignificantLoss));
    assert!(!item6(&e));
}

/// §2.5 (v0.10.3): when `gc_qualifying` is UNKNOWN, `gc_start_date` is the start of the earliest
/// systemic GC record of the current course, known-dose records included — a known run that
/// began later does not set the date.
#[test]
fn gc_start_date_when_the_dose_is_unknown() {
    let b = RecordBuilder::new("1960-01-01", Sex::Female)
        // Dose not computable, ongoing since 2024-01-01.
        .daily_order(
            Ingredient::Prednisone,
            MedicationStatus::Active,
            "2024-01-01",
            None,
            None,
            Some(1.0),
            Route::Oral,
        )
        // A known 5 mg run from 2024-03-01 that alone does not qualify (45 days, planned end).
        .daily_order(
            Ingredient::Prednisone,
            MedicationStatus::Active,
            "2024-03-01",
            Some("2024-04-14"),
            Some(5.0),
            Some(1.0),
            Route::Oral,
        );
    let e = eval(b, "2024-04-01");
    assert_eq!(e.gc.qualifying, crate::Tri::Unknown);
    assert_eq!(e.gc.gc_start_date, Some(d("2024-01-01")));
}

/// A 30-year-old on 10 mg prednisone for a year (B2's dose part TRUE) with a DXA.
fn young_on_gc() -> RecordBuilder {
    RecordBuilder::new("1994-01-01", Sex::Female).daily_order(
        Ingredient::Prednisone,
        MedicationStatus::Active,
        "2023-01-01",
        None,
        Some(10.0),
        Some(1.0),
        Route::Oral,
    )
}

/// §3.2 (v0.10.3): B3 needs B2 FALSE. With no Z-score and no BMD loss shown, B2's (Z OR loss)
/// part is UNKNOWN, so B2 is UNKNOWN → B5 (indeterminate), not B3 (low). A known Z-score above
/// −3.0 makes B2 FALSE → B3.
#[test]
fn b3_needs_b2_false_else_b5() {
    let e = eval(
        young_on_gc().observation(
            ObservationKind::TScore(DxaSite::TotalHip),
            "2024-01-15",
            -0.5,
        ),
        "2024-02-01",
    );
    assert_eq!(e.risk.category, RiskCategory::Indeterminate);
    assert_eq!(e.risk.row.as_deref(), Some("B5"));
    let e = eval(
        young_on_gc().observation(
            ObservationKind::ZScore(DxaSite::TotalHip),
            "2024-01-15",
            -1.0,
        ),
        "2024-02-01",
    );
    assert_eq!(e.risk.category, RiskCategory::Low);
    assert_eq!(e.risk.row.as_deref(), Some("B3"));
}

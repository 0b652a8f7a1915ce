//! Rule evaluation alone (patient model already built): the seed patient, and a record with 20
//! years of monthly observations. Reported in BENCHMARKS.md as µs per patient.
//!
//! Run: `cargo bench -p osteoguard-cli --bench rules`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use osteoguard_core::model::{
    Ingredient, MedicationStatus, ObservationKind, PatientRecord, ProcedureKind, Route, Sex,
    VertebralLevel,
};
use osteoguard_core::testkit::{d, RecordBuilder};
use osteoguard_core::{assess, Config};

fn seed_record() -> PatientRecord {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed-case.json");
    let read = osteoguard_fhir::read_path(std::path::Path::new(path)).expect("seed reads");
    read.patients
        .into_iter()
        .next()
        .map(|p| p.record)
        .expect("seed patient")
}

/// 20 years (2004–2023) of monthly T-score, eGFR, creatinine, calcium, pain and weight, a
/// continuous prednisone course, denosumab every 6 months and two vertebral fractures.
fn twenty_year_record() -> PatientRecord {
    let mut b = RecordBuilder::new("1950-03-15", Sex::Female).daily_order(
        Ingredient::Prednisone,
        MedicationStatus::Active,
        "2004-01-01",
        None,
        Some(7.5),
        Some(1.0),
        Route::Oral,
    );
    let start = d("2004-01-15");
    for m in 0..240u32 {
        let date = start
            .checked_add_months(chrono::Months::new(m))
            .expect("in range")
            .to_string();
        let x = f64::from(m);
        b = b
            .observation(
                ObservationKind::TScore(osteoguard_core::model::DxaSite::LumbarSpine),
                &date,
                -1.0 - x / 200.0,
            )
            .observation(ObservationKind::Egfr, &date, 80.0 - x / 10.0)
            .observation(ObservationKind::Creatinine, &date, 0.8 + x / 1000.0)
            .observation(ObservationKind::Calcium, &date, 9.3)
            .observation(ObservationKind::Pain, &date, (x % 10.0).round())
            .observation(ObservationKind::BodyWeight, &date, 60.0);
        if m % 6 == 0 {
            b = b.administration(Ingredient::Denosumab, &date, 60.0, Route::Subcutaneous);
        }
    }
    b.vertebral_fracture(VertebralLevel::L1, "2015-06-01", "2015-06-03")
        .procedure(
            ProcedureKind::Vertebroplasty,
            &[VertebralLevel::L1],
            "2015-07-10",
        )
        .vertebral_fracture(VertebralLevel::T12, "2023-11-01", "2023-11-02")
        .build()
}

fn bench(c: &mut Criterion) {
    let config = Config::default();
    let seed = seed_record();
    let as_of = d("2023-09-28");
    // Baseline measured in the same run: cloning the record, the floor of any evaluation that
    // looks at every item once (the engine's first step, `visible_at`, is such a pass).
    c.bench_function("baseline/clone-seed-record", |b| {
        b.iter(|| black_box(&seed).clone())
    });
    c.bench_function("assess/seed-patient", |b| {
        b.iter(|| assess(black_box(&seed), black_box(as_of), &config))
    });
    let long = twenty_year_record();
    let as_of = d("2023-12-31");
    c.bench_function("baseline/clone-20-year-record", |b| {
        b.iter(|| black_box(&long).clone())
    });
    c.bench_function("assess/20-years-monthly", |b| {
        b.iter(|| assess(black_box(&long), black_box(as_of), &config))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

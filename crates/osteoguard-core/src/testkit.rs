//! Builders for hand-made patient records in unit tests (`cfg(test)` or feature `testkit`).
//!
//! Rules are tested beside their module with records built here; the end-to-end tests read
//! real FHIR JSON instead.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::model::*;

/// Parses `YYYY-MM-DD`; panics on a bad literal (test code only).
pub fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date literal")
}

fn at_noon(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
}

/// Builds a [`PatientRecord`] step by step; every item gets a unique id `Type/tN`.
pub struct RecordBuilder {
    record: PatientRecord,
    next: usize,
}

impl RecordBuilder {
    pub fn new(birth: &str, sex: Sex) -> Self {
        RecordBuilder {
            record: PatientRecord::new(Patient {
                source: SourceRef::new("Patient/test"),
                birth_date: Some(d(birth)),
                sex,
                deceased: None,
            }),
            next: 0,
        }
    }

    fn id(&mut self, ty: &str) -> SourceRef {
        self.next += 1;
        SourceRef::new(format!("{ty}/t{}", self.next))
    }

    pub fn build(self) -> PatientRecord {
        self.record
    }

    /// A MedicationDispense of `ingredient` handed over on `handed_over` (`None` = undated),
    /// with `days_supply` days' supply.
    pub fn dispense(
        mut self,
        ingredient: Ingredient,
        status: DispenseStatus,
        handed_over: Option<&str>,
        days_supply: Option<i64>,
    ) -> Self {
        let source = self.id("MedicationDispense");
        self.record.dispenses.push(MedicationDispense {
            source,
            status,
            ingredients: vec![ingredient],
            display: ingredient.name().into(),
            when_handed_over: handed_over.map(d),
            when_prepared: None,
            days_supply,
        });
        self
    }

    /// The common part of every medication record: a new id, one ingredient, visible from
    /// `visible`; the builders below fill in what differs.
    fn medication(
        &mut self,
        kind: MedicationSource,
        status: MedicationStatus,
        ingredient: Ingredient,
        visible: &str,
        route: Route,
    ) -> MedicationRecord {
        let ty = match kind {
            MedicationSource::Administration => "MedicationAdministration",
            MedicationSource::Request => "MedicationRequest",
            MedicationSource::Statement => "MedicationStatement",
        };
        MedicationRecord {
            source: self.id(ty),
            kind,
            status,
            ingredients: vec![ingredient],
            display: ingredient.name().into(),
            visible: Some(d(visible)),
            authored: None,
            effective: None,
            validity: None,
            expected_supply_days: None,
            administered_mg: None,
            route,
            dosages: vec![],
            planned_dates: vec![],
            signed_draft: false,
        }
    }

    /// A completed administration of `ingredient` on `date` (`mg` per dose).
    pub fn administration(
        mut self,
        ingredient: Ingredient,
        date: &str,
        mg: f64,
        route: Route,
    ) -> Self {
        let mut m = self.medication(
            MedicationSource::Administration,
            MedicationStatus::Completed,
            ingredient,
            date,
            route,
        );
        m.effective = Some(Period::day(d(date)));
        m.administered_mg = Some(mg);
        self.record.medications.push(m);
        self
    }

    #[allow(clippy::too_many_arguments)]
    /// A MedicationRequest with one daily dosage line (`mg` per dose, `per_day` doses a day),
    /// bounded by `start`..`end` (end `None` = open-ended).
    pub fn daily_order(
        mut self,
        ingredient: Ingredient,
        status: MedicationStatus,
        start: &str,
        end: Option<&str>,
        mg: Option<f64>,
        per_day: Option<f64>,
        route: Route,
    ) -> Self {
        let mut m = self.medication(MedicationSource::Request, status, ingredient, start, route);
        m.authored = Some(d(start));
        m.dosages = vec![Dosage {
            dose_mg: mg,
            per_day,
            as_needed: false,
            bounds: Some(Period {
                start: Some(d(start)),
                end: end.map(d),
            }),
            bounds_duration_days: None,
            route,
            sequence: None,
        }];
        self.record.medications.push(m);
        self
    }

    /// A MedicationRequest for `ingredient` authored on `date` with no dosage (an order).
    pub fn order(mut self, ingredient: Ingredient, status: MedicationStatus, date: &str) -> Self {
        let mut m = self.medication(
            MedicationSource::Request,
            status,
            ingredient,
            date,
            Route::Unknown,
        );
        m.authored = Some(d(date));
        self.record.medications.push(m);
        self
    }

    /// A MedicationStatement for `ingredient` over `start`..`end`.
    pub fn statement(
        mut self,
        ingredient: Ingredient,
        status: MedicationStatus,
        start: &str,
        end: Option<&str>,
    ) -> Self {
        let asserted = end.unwrap_or(start);
        let mut m = self.medication(
            MedicationSource::Statement,
            status,
            ingredient,
            asserted,
            Route::Oral,
        );
        m.effective = Some(Period {
            start: Some(d(start)),
            end: end.map(d),
        });
        self.record.medications.push(m);
        self
    }

    /// A final observation of `kind` with a numeric value, taken at noon on `date`.
    pub fn observation(mut self, kind: ObservationKind, date: &str, value: f64) -> Self {
        let source = self.id("Observation");
        self.record.observations.push(Observation {
            source,
            kind,
            status: ObservationStatus::Final,
            value: Some(value),
            flag: None,
            effective: Some(at_noon(d(date))),
            visible: Some(d(date)),
            reference_low: None,
            reference_high: None,
            device: None,
            device_manufacturer: None,
            side: None,
            level: None,
            frax_gc_adjusted: false,
            frax_gc_entered: None,
            lsc_is_percent: true,
        });
        self
    }

    /// Adjusts the last observation added.
    pub fn with_last_observation(mut self, f: impl FnOnce(&mut Observation)) -> Self {
        if let Some(o) = self.record.observations.last_mut() {
            f(o);
        }
        self
    }

    /// MRI marrow oedema (`flag`) at `level` on `date`.
    pub fn edema(mut self, level: VertebralLevel, date: &str, flag: bool) -> Self {
        let source = self.id("Observation");
        self.record.observations.push(Observation {
            source,
            kind: ObservationKind::VertebralEdema,
            status: ObservationStatus::Final,
            value: None,
            flag: Some(flag),
            effective: Some(at_noon(d(date))),
            visible: Some(d(date)),
            reference_low: None,
            reference_high: None,
            device: None,
            device_manufacturer: None,
            side: None,
            level: Some(level),
            frax_gc_adjusted: false,
            frax_gc_entered: None,
            lsc_is_percent: true,
        });
        self
    }

    /// A confirmed condition with onset `onset` (a period start..end) recorded on `recorded`.
    pub fn condition(
        mut self,
        kind: ConditionKind,
        onset: Option<(&str, &str)>,
        recorded: Option<&str>,
    ) -> Self {
        let source = self.id("Condition");
        let onset = onset.map(|(a, b)| Period::between(d(a), d(b)));
        let recorded = recorded.map(d);
        self.record.conditions.push(Condition {
            source,
            kind,
            display: format!("{kind:?}"),
            verification: Verification::Confirmed,
            onset,
            recorded,
            visible: recorded.or(onset.and_then(|p| p.start)),
            mechanism: None,
            subsequent_encounter: false,
        });
        self
    }

    /// A vertebral fracture at `level` with onset on `onset`, recorded on `recorded`.
    pub fn vertebral_fracture(self, level: VertebralLevel, onset: &str, recorded: &str) -> Self {
        self.condition(
            ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(level))),
            Some((onset, onset)),
            Some(recorded),
        )
    }

    /// A completed procedure on `date` at `levels`.
    pub fn procedure(mut self, kind: ProcedureKind, levels: &[VertebralLevel], date: &str) -> Self {
        let source = self.id("Procedure");
        self.record.procedures.push(Procedure {
            source,
            kind,
            status: ProcedureStatus::Completed,
            display: format!("{kind:?}"),
            levels: levels.to_vec(),
            performed: Some(at_noon(d(date))),
            visible: None,
        });
        self
    }
}

/// knowledge.md §11 Example 6: woman born 2000-01-10, methylprednisolone 1 g IV on 2024-06-01..03,
/// prednisone 60 mg/day 2024-06-04..07-31 (completed), then 40 mg/day from 2024-08-01 (active).
pub fn example_6_record() -> PatientRecord {
    let mut b = RecordBuilder::new("2000-01-10", Sex::Female);
    for day in ["2024-06-01", "2024-06-02", "2024-06-03"] {
        b = b.administration(
            Ingredient::Methylprednisolone,
            day,
            1000.0,
            Route::Intravenous,
        );
    }
    b.daily_order(
        Ingredient::Prednisone,
        MedicationStatus::Completed,
        "2024-06-04",
        Some("2024-07-31"),
        Some(60.0),
        Some(1.0),
        Route::Oral,
    )
    .daily_order(
        Ingredient::Prednisone,
        MedicationStatus::Active,
        "2024-08-01",
        None,
        Some(40.0),
        Some(1.0),
        Route::Oral,
    )
    .build()
}

/// A named record and the date to assess it on.
pub struct Scenario {
    pub name: &'static str,
    pub record: PatientRecord,
    pub as_of: NaiveDate,
}

/// Records that, between them, make every rule of this crate that writes clinical text fire
/// (used by the tests of what clinicians read: no internal vocabulary, numbers from the
/// threshold table).
pub fn text_scenarios() -> Vec<Scenario> {
    use VertebralLevel::*;
    vec![
        // A 74-year-old on prednisone 10 mg/day for 8 months with a vertebral fracture, no DXA, no
        // supplements: bone protection, risk assessment, treatment and anabolic therapy.
        Scenario {
            name: "glucocorticoid-fracture",
            record: RecordBuilder::new("1950-03-15", Sex::Female)
                .daily_order(
                    Ingredient::Prednisone,
                    MedicationStatus::Active,
                    "2024-01-01",
                    None,
                    Some(10.0),
                    Some(1.0),
                    Route::Oral,
                )
                .vertebral_fracture(L2, "2024-02-01", "2024-02-02")
                .build(),
            as_of: d("2024-09-15"),
        },
        // Prednisone 5 mg/day since 2023, a DXA of 2021 (repeat overdue) with a T-score of −2.0, no FRAX.
        Scenario {
            name: "glucocorticoid-dxa-overdue",
            record: RecordBuilder::new("1970-03-15", Sex::Female)
                .daily_order(
                    Ingredient::Prednisone,
                    MedicationStatus::Active,
                    "2023-01-01",
                    None,
                    Some(5.0),
                    Some(1.0),
                    Route::Oral,
                )
                .observation(
                    ObservationKind::TScore(DxaSite::TotalHip),
                    "2021-06-01",
                    -2.0,
                )
                .build(),
            as_of: d("2024-09-15"),
        },
        // Seed L1: painful, MRI-confirmed acute fracture after 5 weeks of conservative care.
        Scenario {
            name: "refractory-pain",
            record: RecordBuilder::new("1950-03-15", Sex::Female)
                .vertebral_fracture(L1, "2023-07-15", "2023-07-17")
                .edema(L1, "2023-07-17", true)
                .observation(ObservationKind::Pain, "2023-08-22", 8.0)
                .build(),
            as_of: d("2023-08-23"),
        },
        // An unconfirmed recent fracture with pain 8: imaging.
        Scenario {
            name: "imaging",
            record: RecordBuilder::new("1950-03-15", Sex::Female)
                .vertebral_fracture(L3, "2023-09-01", "2023-09-02")
                .observation(ObservationKind::Pain, "2023-09-10", 8.0)
                .build(),
            as_of: d("2023-09-11"),
        },
        // A new adjacent fracture 40 days after vertebroplasty.
        Scenario {
            name: "new-fracture-after-augmentation",
            record: RecordBuilder::new("1950-03-15", Sex::Female)
                .vertebral_fracture(L1, "2023-01-01", "2023-01-02")
                .procedure(ProcedureKind::Vertebroplasty, &[L1], "2023-01-20")
                .vertebral_fracture(L2, "2023-03-01", "2023-03-01")
                .build(),
            as_of: d("2023-03-05"),
        },
        // Denosumab stopped 8 months ago (zoledronate recommended) with CrCl ≈ 17 mL/min, low
        // calcium and low vitamin D: the §8 safety checks.
        Scenario {
            name: "denosumab-stopped-renal",
            record: RecordBuilder::new("1945-02-02", Sex::Female)
                .administration(
                    Ingredient::Denosumab,
                    "2023-07-01",
                    60.0,
                    Route::Subcutaneous,
                )
                .administration(
                    Ingredient::Denosumab,
                    "2024-01-02",
                    60.0,
                    Route::Subcutaneous,
                )
                .observation(ObservationKind::Creatinine, "2024-09-10", 2.0)
                .observation(ObservationKind::BodyWeight, "2024-09-10", 48.0)
                .observation(ObservationKind::Calcium, "2024-09-10", 8.0)
                .observation(ObservationKind::VitaminD25, "2024-09-10", 12.0)
                .build(),
            as_of: d("2024-09-15"),
        },
        // Denosumab due in two weeks with eGFR 25: the CKD caution.
        Scenario {
            name: "denosumab-due-ckd",
            record: RecordBuilder::new("1945-02-02", Sex::Female)
                .administration(
                    Ingredient::Denosumab,
                    "2023-10-01",
                    60.0,
                    Route::Subcutaneous,
                )
                .administration(
                    Ingredient::Denosumab,
                    "2024-04-03",
                    60.0,
                    Route::Subcutaneous,
                )
                .observation(ObservationKind::Egfr, "2024-09-10", 25.0)
                .observation(ObservationKind::Calcium, "2024-09-10", 9.2)
                .observation(ObservationKind::VitaminD25, "2024-09-10", 30.0)
                .build(),
            as_of: d("2024-09-20"),
        },
    ]
}

//! `osteoguard synth`: a deterministic synthetic FHIR Bulk Data export with known bone-health
//! scenarios, at Synthea-like volume.
//!
//! **Scenarios.** Each scenario patient is one of the worked examples of knowledge.md §11 (the
//! bundles in `examples/`), its dates shifted by a whole number of days so that the example's
//! as-of date falls on the synthetic as-of date (day differences — which every rule uses — are
//! unchanged, and so is the age at as-of; a unit test checks it). Ids are rewritten per patient.
//! The **expected findings** of a scenario are the "Fires" list of that example in
//! knowledge.md §11 (code and severity), copied into [`SCENARIOS`] — taken from the
//! specification, never from running the engine. Together they cover glucocorticoid courses of
//! several doses (physiological hydrocortisone, prednisone 10 mg, methylprednisolone pulses
//! then 60/40 mg, prednisolone 7.5 mg), denosumab on schedule (ex. 1), due soon (ex. 7), late
//! and stopped without transition (ex. 2, 3), stopped with zoledronate transition (ex. 4, 8),
//! DXA series (ex. 9, seed), vertebral fractures and augmentation (ex. 3, 4), renal values
//! (ex. 7, 8). Half of the seed-case copies refer to denosumab through `medicationReference`
//! to a shared `Medication` resource instead of a `medicationCodeableConcept`.
//!
//! **Controls** (most of the population): adults and children with no glucocorticoid, no
//! osteoporosis agent, no DXA and no fracture. No rule of §9 can fire for them (every rule needs
//! one of those inputs), so their expected finding list is empty.
//!
//! **Volume.** Every patient also gets filler lines no rule reads — Encounters, vital-sign and
//! laboratory Observations (heart rate, blood pressure, height, BMI, HbA1c, cholesterol),
//! routine Procedures, unrelated Conditions and prescriptions — about `--filler` per patient,
//! so that, as in Synthea exports, most lines are Observations, Encounters and Procedures.
//! Codes are RxNorm / LOINC / SNOMED CT / ICD-10-CM / CPT codings as real data uses them.
//!
//! **Determinism and speed.** Patient `i` draws from its own SplitMix64 stream seeded by
//! `(seed, i)`, so the output is byte-identical for a seed whatever the thread count. The
//! example resources are rendered once into text templates; a patient is a few string
//! substitutions. Patients are generated in parallel in blocks and written in order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ScreenError, SynthArgs};

pub const DEFAULT_AS_OF: &str = "2025-06-30";
const P: &str = "@@P@@";
const DMAB_MEDICATION_ID: &str = "synth-denosumab-60mg";

/// One expected finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExpectedFinding {
    pub code: String,
    pub severity: String,
}

/// One line of `expected.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub patient: String,
    pub scenario: String,
    pub findings: Vec<ExpectedFinding>,
}

/// A scenario: a worked example of knowledge.md §11 evaluated at its as-of date.
pub struct Scenario {
    pub name: &'static str,
    pub bundle: &'static str,
    /// The example's as-of date (knowledge.md §11).
    pub as_of: &'static str,
    /// "Fires" of the example: (code, severity).
    pub fires: &'static [(&'static str, &'static str)],
}

const SEED: &str = include_str!("../../../examples/seed-case.json");
const EX5: &str = include_str!("../../../examples/example-5-new-gc-start.json");
const EX6: &str = include_str!("../../../examples/example-6-very-high-dose-young.json");
const EX7: &str = include_str!("../../../examples/example-7-dmab-due-renal.json");
const EX8: &str = include_str!("../../../examples/example-8-ctx-elevated.json");
const EX9: &str = include_str!("../../../examples/example-9-bmd-loss.json");

/// The scenarios and their expected findings, copied from knowledge.md §11 "Fires".
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "ex1-dmab-on-schedule-hydrocortisone",
        bundle: SEED,
        as_of: "2022-12-01",
        fires: &[("gc-bone-protection", "moderate")],
    },
    Scenario {
        name: "ex2-dmab-overdue-stopped-no-transition",
        bundle: SEED,
        as_of: "2023-06-15",
        fires: &[
            ("gc-bone-protection", "moderate"),
            ("denosumab-overdue", "high"),
            ("denosumab-discontinuation-without-transition", "critical"),
            ("data-insufficient", "moderate"),
        ],
    },
    Scenario {
        name: "ex3-acute-ovcf-augmentation-candidate",
        bundle: SEED,
        as_of: "2023-08-23",
        fires: &[
            ("gc-bone-protection", "moderate"),
            ("denosumab-overdue", "critical"),
            ("denosumab-discontinuation-without-transition", "critical"),
            ("acute-ovcf", "high"),
            ("ovcf-refractory-pain-augmentation-candidate", "high"),
            ("new-fracture-after-augmentation", "moderate"),
            ("data-insufficient", "moderate"),
        ],
    },
    Scenario {
        name: "ex4-rebound-after-augmentation-transitioned",
        bundle: SEED,
        as_of: "2023-09-28",
        fires: &[
            ("gc-bone-protection", "moderate"),
            ("post-denosumab-ctx-monitoring", "info"),
            ("rebound-vertebral-fractures-suspected", "critical"),
            ("new-fracture-after-augmentation", "critical"),
            ("acute-ovcf", "high"),
            ("ovcf-imaging-recommended", "high"),
            ("data-insufficient", "info"),
        ],
    },
    Scenario {
        name: "ex5-new-prednisone-10mg",
        bundle: EX5,
        as_of: "2024-09-15",
        fires: &[
            ("gc-fracture-risk-assessment-due", "high"),
            ("osteoporosis-treatment-indicated", "high"),
        ],
    },
    Scenario {
        name: "ex6-very-high-dose-gc-young",
        bundle: EX6,
        as_of: "2024-09-30",
        fires: &[
            ("gc-bone-protection", "moderate"),
            ("gc-fracture-risk-assessment-due", "moderate"),
            ("osteoporosis-treatment-indicated", "high"),
            ("anabolic-therapy-preferred", "moderate"),
        ],
    },
    Scenario {
        name: "ex7-dmab-due-soon-renal",
        bundle: EX7,
        as_of: "2024-09-20",
        fires: &[
            ("denosumab-due-soon", "info"),
            ("zoledronate-renal-contraindication", "critical"),
            ("hypocalcaemia-antiresorptive-caution", "high"),
        ],
    },
    Scenario {
        name: "ex8-transitioned-ctx-elevated",
        bundle: EX8,
        as_of: "2024-09-10",
        fires: &[("post-denosumab-ctx-monitoring", "high")],
    },
    Scenario {
        name: "ex9-bmd-loss-prednisolone-7.5mg",
        bundle: EX9,
        as_of: "2024-10-15",
        fires: &[
            ("bmd-significant-loss", "moderate"),
            ("osteoporosis-treatment-indicated", "moderate"),
        ],
    },
];

/// Share of scenario patients (the rest are controls), in per mille.
const SCENARIO_PER_MILLE: u64 = 250;

// ---------------------------------------------------------------------------------------------
// Randomness (no external crate: the stream must never change under us)
// ---------------------------------------------------------------------------------------------

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, index: u64) -> Self {
        let mut r = Rng(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

/// A resource rendered with `@@P@@` where the patient id goes.
struct Template {
    ty: String,
    text: String,
}

fn shift_date_string(s: &str, days: i64) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 10 || !(b[4] == b'-' && b[7] == b'-') {
        return None;
    }
    if b.len() > 10 && b[10] != b'T' {
        return None;
    }
    let d = NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").ok()?;
    let d = osteoguard_core::model::add_days(d, days);
    Some(format!("{}{}", d.format("%Y-%m-%d"), &s[10..]))
}

fn rewrite(v: &mut Value, days: i64, key: Option<&str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                rewrite(x, days, Some(k));
            }
        }
        Value::Array(a) => {
            for x in a {
                rewrite(x, days, key);
            }
        }
        Value::String(s) => {
            if key == Some("reference") {
                if let Some((ty, id)) = s.split_once('/') {
                    *s = if ty == "Patient" {
                        format!("Patient/{P}")
                    } else {
                        format!("{ty}/{P}-{id}")
                    };
                }
            } else if let Some(n) = shift_date_string(s, days) {
                *s = n;
            }
        }
        _ => {}
    }
}

fn templates(sc: &Scenario, as_of: NaiveDate, dmab_by_reference: bool) -> Vec<Template> {
    let bundle: Value = serde_json::from_str(sc.bundle).unwrap_or(Value::Null);
    let ex_as_of = NaiveDate::parse_from_str(sc.as_of, "%Y-%m-%d").unwrap_or(as_of);
    let days = (as_of - ex_as_of).num_days();
    let mut out = Vec::new();
    for e in bundle["entry"].as_array().into_iter().flatten() {
        let mut r = e["resource"].clone();
        let ty = r["resourceType"].as_str().unwrap_or("").to_string();
        rewrite(&mut r, days, None);
        if let Some(id) = r.get("id").and_then(Value::as_str).map(str::to_string) {
            r["id"] = Value::String(if ty == "Patient" {
                P.to_string()
            } else {
                format!("{P}-{id}")
            });
        }
        if ty == "Patient" {
            if let Some(ids) = r.get_mut("identifier").and_then(Value::as_array_mut) {
                for i in ids {
                    i["value"] = Value::String(P.to_string());
                }
            }
        }
        if dmab_by_reference && ty == "MedicationAdministration" {
            let is_dmab = r["medicationCodeableConcept"]["coding"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["code"] == "993449"));
            if is_dmab {
                if let Some(m) = r.as_object_mut() {
                    m.remove("medicationCodeableConcept");
                    m.insert(
                        "medicationReference".into(),
                        serde_json::json!({"reference": format!("Medication/{DMAB_MEDICATION_ID}"), "display": "Prolia 60 mg/mL prefilled syringe"}),
                    );
                }
            }
        }
        out.push(Template {
            ty,
            text: r.to_string(),
        });
    }
    out
}

/// The shared denosumab Medication resource (RxNorm ingredient 993449).
fn dmab_medication() -> String {
    serde_json::json!({
        "resourceType": "Medication",
        "id": DMAB_MEDICATION_ID,
        "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "993449", "display": "denosumab"}], "text": "denosumab 60 MG/ML Prefilled Syringe [Prolia]"},
        "form": {"coding": [{"system": "http://snomed.info/sct", "code": "385219001", "display": "Solution for injection"}]},
        "ingredient": [{"itemCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "993449", "display": "denosumab"}]}, "isActive": true, "strength": {"numerator": {"value": 60, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}, "denominator": {"value": 1, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}}}]
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// Filler (codes no rule reads)
// ---------------------------------------------------------------------------------------------

const FAMILY: &[&str] = &[
    "Smith", "Garcia", "Kim", "Müller", "Okafor", "Rossi", "Nguyen", "Johnson", "Silva", "Haddad",
    "Kowalski", "Tanaka", "O'Brien", "Dubois", "Ivanova",
];
const GIVEN_F: &[&str] = &[
    "Maria", "Aiko", "Fatima", "Ingrid", "Grace", "Lucia", "Ana", "Mei",
];
const GIVEN_M: &[&str] = &[
    "James", "Kenji", "Omar", "Lars", "Pedro", "Wei", "Tomasz", "Ahmed",
];

/// (LOINC, display, unit, low, high, category)
const VITALS: &[(&str, &str, &str, f64, f64, &str)] = &[
    ("8302-2", "Body Height", "cm", 150.0, 195.0, "vital-signs"),
    ("8867-4", "Heart rate", "/min", 52.0, 98.0, "vital-signs"),
    (
        "8480-6",
        "Systolic blood pressure",
        "mm[Hg]",
        102.0,
        162.0,
        "vital-signs",
    ),
    (
        "8462-4",
        "Diastolic blood pressure",
        "mm[Hg]",
        60.0,
        98.0,
        "vital-signs",
    ),
    (
        "9279-1",
        "Respiratory rate",
        "/min",
        12.0,
        20.0,
        "vital-signs",
    ),
    (
        "39156-5",
        "Body mass index (BMI) [Ratio]",
        "kg/m2",
        19.0,
        36.0,
        "vital-signs",
    ),
    (
        "8310-5",
        "Body temperature",
        "Cel",
        36.1,
        37.6,
        "vital-signs",
    ),
    (
        "4548-4",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        "%",
        4.8,
        8.9,
        "laboratory",
    ),
    (
        "2093-3",
        "Cholesterol [Mass/volume] in Serum or Plasma",
        "mg/dL",
        140.0,
        260.0,
        "laboratory",
    ),
    (
        "2571-8",
        "Triglycerides",
        "mg/dL",
        70.0,
        240.0,
        "laboratory",
    ),
    (
        "6690-2",
        "Leukocytes [#/volume] in Blood by Automated count",
        "10*3/uL",
        3.8,
        10.5,
        "laboratory",
    ),
];
/// (SNOMED, display)
const PROCEDURES: &[(&str, &str)] = &[
    ("430193006", "Medication Reconciliation (procedure)"),
    (
        "710824005",
        "Assessment of health and social care needs (procedure)",
    ),
    ("171207006", "Depression screening (procedure)"),
    (
        "428191000124101",
        "Documentation of current medications (procedure)",
    ),
    ("73761001", "Colonoscopy (procedure)"),
];
const ENCOUNTER_TYPES: &[(&str, &str)] = &[
    ("185349003", "Encounter for check up (procedure)"),
    ("162673000", "General examination of patient (procedure)"),
    ("185345009", "Encounter for symptom (procedure)"),
    ("390906007", "Follow-up encounter (procedure)"),
];
/// (SNOMED, ICD-10-CM, display): conditions no rule reads.
const CONDITIONS: &[(&str, &str, &str)] = &[
    ("38341003", "I10", "Hypertension"),
    ("44054006", "E11.9", "Diabetes mellitus type 2"),
    ("162864005", "E66.9", "Body mass index 30+ - obesity"),
    ("10509002", "J20.9", "Acute bronchitis"),
    ("195662009", "J02.9", "Acute viral pharyngitis"),
];
/// (RxNorm, display): prescriptions no rule reads.
const DRUGS: &[(&str, &str)] = &[
    ("314076", "lisinopril 10 MG Oral Tablet"),
    (
        "860975",
        "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
    ),
    ("197361", "Amlodipine 5 MG Oral Tablet"),
    ("849574", "Naproxen sodium 220 MG Oral Tablet"),
];

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn filler(
    pid: &str,
    as_of: NaiveDate,
    rng: &mut Rng,
    n: u32,
    labs: bool,
    out: &mut Vec<(String, String)>,
) {
    for k in 0..n {
        let back = 1 + rng.below(3650) as i64;
        let d = osteoguard_core::model::add_days(as_of, -back);
        let hh = 8 + rng.below(9);
        let mm = rng.below(60);
        let ts = format!("{}T{hh:02}:{mm:02}:00-05:00", day(d));
        let roll = rng.below(100);
        let enc = format!("{pid}-enc-{}", k / 3);
        let (ty, line) = if roll < 34 {
            let (code, display) = *rng.pick(ENCOUNTER_TYPES);
            (
                "Encounter",
                format!(
                    r#"{{"resourceType":"Encounter","id":"{pid}-enc-{k}","meta":{{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"]}},"status":"finished","class":{{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"}},"type":[{{"coding":[{{"system":"http://snomed.info/sct","code":"{code}","display":"{display}"}}],"text":"{display}"}}],"subject":{{"reference":"Patient/{pid}"}},"period":{{"start":"{ts}","end":"{ts}"}},"serviceProvider":{{"reference":"Organization?identifier=https://github.com/synthetichealth/synthea|synth-clinic","display":"SYNTH CLINIC"}}}}"#
                ),
            )
        } else if roll < 84 {
            let (code, display, unit, lo, hi, cat) = *rng.pick(VITALS);
            let v = lo + (hi - lo) * (rng.below(1000) as f64 / 1000.0);
            (
                "Observation",
                format!(
                    r#"{{"resourceType":"Observation","id":"{pid}-obs-{k}","meta":{{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs"]}},"status":"final","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"{cat}","display":"{cat}"}}]}}],"code":{{"coding":[{{"system":"http://loinc.org","code":"{code}","display":"{display}"}}],"text":"{display}"}},"subject":{{"reference":"Patient/{pid}"}},"encounter":{{"reference":"Encounter/{enc}"}},"effectiveDateTime":"{ts}","issued":"{}T{hh:02}:{mm:02}:00.000-05:00","valueQuantity":{{"value":{v:.1},"unit":"{unit}","system":"http://unitsofmeasure.org","code":"{unit}"}}}}"#,
                    day(d)
                ),
            )
        } else if roll < 96 {
            let (code, display) = *rng.pick(PROCEDURES);
            (
                "Procedure",
                format!(
                    r#"{{"resourceType":"Procedure","id":"{pid}-proc-{k}","meta":{{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure"]}},"status":"completed","code":{{"coding":[{{"system":"http://snomed.info/sct","code":"{code}","display":"{display}"}}],"text":"{display}"}},"subject":{{"reference":"Patient/{pid}"}},"encounter":{{"reference":"Encounter/{enc}"}},"performedPeriod":{{"start":"{ts}","end":"{ts}"}},"location":{{"reference":"Location?identifier=https://github.com/synthetichealth/synthea|synth-loc","display":"SYNTH CLINIC"}}}}"#
                ),
            )
        } else if roll < 98 {
            let (sct, icd, display) = *rng.pick(CONDITIONS);
            (
                "Condition",
                format!(
                    r#"{{"resourceType":"Condition","id":"{pid}-cond-{k}","clinicalStatus":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}}]}},"verificationStatus":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}}]}},"category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"encounter-diagnosis"}}]}}],"code":{{"coding":[{{"system":"http://snomed.info/sct","code":"{sct}","display":"{display}"}},{{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"{icd}"}}],"text":"{display}"}},"subject":{{"reference":"Patient/{pid}"}},"onsetDateTime":"{ts}","recordedDate":"{ts}"}}"#
                ),
            )
        } else {
            let (code, display) = *rng.pick(DRUGS);
            (
                "MedicationRequest",
                format!(
                    r#"{{"resourceType":"MedicationRequest","id":"{pid}-mr-{k}","status":"stopped","intent":"order","medicationCodeableConcept":{{"coding":[{{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"{code}","display":"{display}"}}],"text":"{display}"}},"subject":{{"reference":"Patient/{pid}"}},"authoredOn":"{ts}","dosageInstruction":[{{"sequence":1,"timing":{{"repeat":{{"frequency":1,"period":1,"periodUnit":"d"}}}},"asNeededBoolean":false,"doseAndRate":[{{"doseQuantity":{{"value":1}}}}]}}]}}"#
                ),
            )
        };
        out.push((ty.to_string(), line));
    }
    if labs {
        // Renal labs (eGFR, creatinine) as real data holds them: read by the rules, but with no
        // antiresorptive in the record no rule acts on them.
        for k in 0..(1 + rng.below(3)) {
            let d = osteoguard_core::model::add_days(as_of, -(1 + rng.below(1500) as i64));
            let egfr = 45 + rng.below(60);
            let cr = 0.6 + rng.below(60) as f64 / 100.0;
            out.push(("Observation".into(), format!(
                r#"{{"resourceType":"Observation","id":"{pid}-egfr-{k}","status":"final","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}}]}}],"code":{{"coding":[{{"system":"http://loinc.org","code":"33914-3","display":"Estimated Glomerular Filtration Rate"}}],"text":"Estimated Glomerular Filtration Rate"}},"subject":{{"reference":"Patient/{pid}"}},"effectiveDateTime":"{}T09:00:00-05:00","issued":"{}T09:00:00.000-05:00","valueQuantity":{{"value":{egfr},"unit":"mL/min/{{1.73_m2}}","system":"http://unitsofmeasure.org","code":"mL/min/{{1.73_m2}}"}}}}"#,
                day(d), day(d)
            )));
            out.push(("Observation".into(), format!(
                r#"{{"resourceType":"Observation","id":"{pid}-creat-{k}","status":"final","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}}]}}],"code":{{"coding":[{{"system":"http://loinc.org","code":"38483-4","display":"Creatinine"}}],"text":"Creatinine"}},"subject":{{"reference":"Patient/{pid}"}},"effectiveDateTime":"{}T09:00:00-05:00","issued":"{}T09:00:00.000-05:00","valueQuantity":{{"value":{cr:.2},"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}}}"#,
                day(d), day(d)
            )));
        }
    }
}

fn control_patient(pid: &str, as_of: NaiveDate, rng: &mut Rng) -> String {
    let female = rng.below(2) == 0;
    let age_days = 365 * (1 + rng.below(94) as i64) + rng.below(365) as i64;
    let birth = osteoguard_core::model::add_days(as_of, -age_days);
    let family = rng.pick(FAMILY);
    let given = if female {
        rng.pick(GIVEN_F)
    } else {
        rng.pick(GIVEN_M)
    };
    let family = family.replace('\'', "\u{2019}");
    format!(
        r#"{{"resourceType":"Patient","id":"{pid}","meta":{{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]}},"identifier":[{{"system":"https://github.com/synthetichealth/synthea","value":"{pid}"}}],"name":[{{"use":"official","family":"{family}","given":["{given}"]}}],"telecom":[{{"system":"phone","value":"555-{:03}-{:04}","use":"home"}}],"gender":"{}","birthDate":"{}","address":[{{"line":["{} Synth Street"],"city":"Springfield","state":"MA","postalCode":"01{:03}","country":"US"}}],"communication":[{{"language":{{"coding":[{{"system":"urn:ietf:bcp:47","code":"en-US","display":"English (United States)"}}]}}}}]}}"#,
        rng.below(1000),
        rng.below(10000),
        if female { "female" } else { "male" },
        day(birth),
        1 + rng.below(999),
        rng.below(1000)
    )
}

/// Patient id of the `i`-th synthetic patient.
pub fn patient_id(i: u64) -> String {
    format!("syn{i:08}")
}

struct Prepared {
    /// Per scenario: templates with a `medicationCodeableConcept`, and (seed case) with a
    /// `medicationReference`.
    plain: Vec<Vec<Template>>,
    by_ref: Vec<Vec<Template>>,
}

fn prepare(as_of: NaiveDate) -> Prepared {
    Prepared {
        plain: SCENARIOS
            .iter()
            .map(|s| templates(s, as_of, false))
            .collect(),
        by_ref: SCENARIOS
            .iter()
            .map(|s| templates(s, as_of, true))
            .collect(),
    }
}

/// Generates patient `i`: its lines (type, JSON) and its expectation.
fn patient(
    i: u64,
    seed: u64,
    as_of: NaiveDate,
    filler_mean: u32,
    prep: &Prepared,
) -> (Vec<(String, String)>, Expected) {
    let mut rng = Rng::new(seed, i);
    let pid = patient_id(i);
    let mut out = Vec::new();
    let n_filler = if filler_mean == 0 {
        0
    } else {
        (filler_mean / 2) + rng.below(u64::from(filler_mean) + 1) as u32
    };
    let exp = if rng.below(1000) < SCENARIO_PER_MILLE {
        let k = rng.below(SCENARIOS.len() as u64) as usize;
        let sc = &SCENARIOS[k];
        let by_ref = sc.bundle == SEED && rng.below(2) == 0;
        let t = if by_ref {
            &prep.by_ref[k]
        } else {
            &prep.plain[k]
        };
        for t in t {
            out.push((t.ty.clone(), t.text.replace(P, &pid)));
        }
        let mut findings: Vec<ExpectedFinding> = sc
            .fires
            .iter()
            .map(|(c, s)| ExpectedFinding {
                code: c.to_string(),
                severity: s.to_string(),
            })
            .collect();
        findings.sort();
        filler(&pid, as_of, &mut rng, n_filler, false, &mut out);
        Expected {
            patient: pid,
            scenario: sc.name.to_string(),
            findings,
        }
    } else {
        out.push(("Patient".into(), control_patient(&pid, as_of, &mut rng)));
        let labs = rng.below(4) == 0;
        filler(&pid, as_of, &mut rng, n_filler, labs, &mut out);
        Expected {
            patient: pid,
            scenario: if labs {
                "control-with-renal-labs"
            } else {
                "control"
            }
            .to_string(),
            findings: Vec::new(),
        }
    };
    (out, exp)
}

/// What `synth` wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema: &'static str,
    pub as_of: String,
    pub seed: u64,
    pub patients: u64,
    pub filler: u32,
    pub lines: u64,
    pub bytes: u64,
    pub scenarios: BTreeMap<String, u64>,
    pub lines_by_type: BTreeMap<String, u64>,
}

const BLOCK: u64 = 2048;

/// Writes the export to `args.out`: `<Type>.ndjson`, `expected.json` (one line per patient:
/// scenario and expected findings at `args.as_of`) and `synth-manifest.json`.
pub fn generate(args: &SynthArgs) -> Result<Manifest, ScreenError> {
    let as_of = NaiveDate::parse_from_str(&args.as_of, "%Y-%m-%d").map_err(|e| {
        ScreenError::Usage(format!(
            "--as-of {:?}: expected YYYY-MM-DD ({e})",
            args.as_of
        ))
    })?;
    let out = &args.out;
    std::fs::create_dir_all(out).map_err(|e| ScreenError::io(out, e))?;
    let prep = prepare(as_of);
    let mut files: BTreeMap<String, BufWriter<File>> = BTreeMap::new();
    let open =
        |files: &mut BTreeMap<String, BufWriter<File>>, ty: &str| -> Result<(), ScreenError> {
            if !files.contains_key(ty) {
                let p = out.join(format!("{ty}.ndjson"));
                let f = File::create(&p).map_err(|e| ScreenError::io(&p, e))?;
                files.insert(ty.to_string(), BufWriter::with_capacity(1 << 20, f));
            }
            Ok(())
        };
    let exp_path = out.join("expected.json");
    let mut exp_w =
        BufWriter::new(File::create(&exp_path).map_err(|e| ScreenError::io(&exp_path, e))?);
    write!(
        exp_w,
        "{{\"schema\":\"osteoguard.synth-expected/1\",\"asOf\":\"{}\",\"seed\":{},\"patients\":[",
        args.as_of, args.seed
    )
    .map_err(|e| ScreenError::io(&exp_path, e))?;
    let mut first = true;
    let mut manifest = Manifest {
        schema: "osteoguard.synth/1",
        as_of: args.as_of.clone(),
        seed: args.seed,
        patients: args.patients,
        filler: args.filler,
        lines: 0,
        bytes: 0,
        scenarios: BTreeMap::new(),
        lines_by_type: BTreeMap::new(),
    };
    // The shared Medication resource (referenced by half of the seed-case copies).
    open(&mut files, "Medication")?;
    if let Some(w) = files.get_mut("Medication") {
        let m = dmab_medication();
        writeln!(w, "{m}").map_err(|e| ScreenError::io(out, e))?;
        manifest.lines += 1;
        manifest.bytes += m.len() as u64 + 1;
        *manifest
            .lines_by_type
            .entry("Medication".into())
            .or_default() += 1;
    }
    let started = std::time::Instant::now();
    let mut last_log = std::time::Instant::now();
    let mut start = 0u64;
    while start < args.patients {
        let end = (start + BLOCK * 8).min(args.patients);
        let generated: Vec<(Vec<(String, String)>, Expected)> = (start..end)
            .into_par_iter()
            .map(|i| patient(i, args.seed, as_of, args.filler, &prep))
            .collect();
        for (lines, exp) in generated {
            for (ty, line) in lines {
                open(&mut files, &ty)?;
                if let Some(w) = files.get_mut(&ty) {
                    w.write_all(line.as_bytes())
                        .and_then(|_| w.write_all(b"\n"))
                        .map_err(|e| ScreenError::io(out, e))?;
                }
                manifest.lines += 1;
                manifest.bytes += line.len() as u64 + 1;
                *manifest.lines_by_type.entry(ty).or_default() += 1;
            }
            *manifest.scenarios.entry(exp.scenario.clone()).or_default() += 1;
            exp_w
                .write_all(if first { b"\n" } else { b",\n" })
                .map_err(|e| ScreenError::io(&exp_path, e))?;
            first = false;
            serde_json::to_writer(&mut exp_w, &exp)
                .map_err(|e| ScreenError::Internal(e.to_string()))?;
        }
        start = end;
        if !args.quiet && last_log.elapsed().as_secs() >= 5 {
            last_log = std::time::Instant::now();
            eprintln!(
                "osteoguard synth: {start}/{} patients, {:.0} MB, {:.0} patients/s",
                args.patients,
                manifest.bytes as f64 / 1e6,
                start as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    for (ty, mut w) in files {
        w.flush()
            .map_err(|e| ScreenError::io(&out.join(format!("{ty}.ndjson")), e))?;
    }
    exp_w
        .write_all(b"\n]}\n")
        .and_then(|_| exp_w.flush())
        .map_err(|e| ScreenError::io(&exp_path, e))?;
    let mp = out.join("synth-manifest.json");
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| ScreenError::Internal(e.to_string()))?;
    std::fs::write(&mp, text + "\n").map_err(|e| ScreenError::io(&mp, e))?;
    if !args.quiet {
        eprintln!(
            "osteoguard synth: wrote {} patients, {} lines, {:.1} MB to {} in {:.1} s",
            args.patients,
            manifest.lines,
            manifest.bytes as f64 / 1e6,
            out.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(manifest)
}

#[derive(Deserialize)]
struct ExpectedFile {
    patients: Vec<Expected>,
}

/// Reads `expected.json` (written by [`generate`]).
pub fn read_expected(dir: &Path) -> Result<Vec<Expected>, ScreenError> {
    let p = dir.join("expected.json");
    let text = std::fs::read_to_string(&p).map_err(|e| ScreenError::io(&p, e))?;
    serde_json::from_str::<ExpectedFile>(&text)
        .map(|f| f.patients)
        .map_err(|e| ScreenError::Internal(format!("{}: {e}", p.display())))
}

/// Whole years from `birth` to `at`.
pub fn age_at(birth: NaiveDate, at: NaiveDate) -> i32 {
    let mut a = at.year() - birth.year();
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        a -= 1;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_keeps_age_at_as_of() {
        let as_of = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        for sc in SCENARIOS {
            let b: Value = serde_json::from_str(sc.bundle).unwrap();
            let ex_as_of = NaiveDate::parse_from_str(sc.as_of, "%Y-%m-%d").unwrap();
            let birth = b["entry"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["resource"]["resourceType"] == "Patient")
                .and_then(|e| e["resource"]["birthDate"].as_str())
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .unwrap();
            let shifted = osteoguard_core::model::add_days(birth, (as_of - ex_as_of).num_days());
            assert_eq!(
                age_at(birth, ex_as_of),
                age_at(shifted, as_of),
                "{}",
                sc.name
            );
        }
    }

    #[test]
    fn templates_rewrite_ids_references_and_dates() {
        let as_of = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let t = templates(&SCENARIOS[0], as_of, true);
        assert_eq!(t.len(), 41);
        let all: String = t.iter().map(|t| t.text.as_str()).collect();
        assert!(!all.contains("ku-73f\""), "patient id not rewritten");
        assert!(all.contains("Patient/@@P@@"));
        assert!(all.contains("Medication/synth-denosumab-60mg"));
        // Example 1 as-of 2022-12-01 → 2025-06-30: +942 days; dose 6 2022-10-27 → 2025-05-26.
        assert!(all.contains("2025-05-26"), "{all}");
    }

    #[test]
    fn deterministic() {
        let as_of = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let prep = prepare(as_of);
        let a = patient(7, 42, as_of, 20, &prep);
        let b = patient(7, 42, as_of, 20, &prep);
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
        let c = patient(7, 43, as_of, 20, &prep);
        assert_ne!(a.0, c.0);
        // Every line is valid JSON.
        for i in 0..200 {
            for (_, l) in patient(i, 1, as_of, 40, &prep).0 {
                let v: Value = serde_json::from_str(&l).unwrap();
                assert!(v["resourceType"].is_string());
            }
        }
    }
}

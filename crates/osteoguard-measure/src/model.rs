//! The FHIR R4 / QI-Core elements the measures read, as small serde types, and the per-patient
//! [`Record`]. The bone rules' reader (`osteoguard-fhir`) ignores Encounter, Coverage,
//! ServiceRequest and most of MedicationRequest's dosage, which the measures need; this layer
//! reads exactly those elements and nothing else (unknown elements are skipped).

use serde::Deserialize;

use crate::cql::{DateTime, Interval, Quantity as CqlQuantity};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CodeableConcept {
    pub coding: Vec<Coding>,
}

impl CodeableConcept {
    /// `concept ~ code` (CQL equivalence of a Concept to a Code): some coding has the same
    /// system and code.
    pub fn has(&self, system: &str, code: &str) -> bool {
        self.coding
            .iter()
            .any(|c| c.system.as_deref() == Some(system) && c.code.as_deref() == Some(code))
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Period {
    pub start: Option<String>,
    pub end: Option<String>,
}

impl Period {
    /// FHIRHelpers `ToInterval(Period)`: `Interval[start, end]`, or `Interval(null, end]`
    /// when the start is missing (an unknown start, not the beginning of time).
    pub fn to_interval(&self) -> Interval {
        let low = self.start.as_deref().and_then(DateTime::parse);
        let high = self.end.as_deref().and_then(DateTime::parse);
        Interval {
            low,
            high,
            low_closed: self.start.is_some(),
            high_closed: true,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Reference {
    pub reference: Option<String>,
}

impl Reference {
    /// The logical id a reference points to (`Patient/1`, `urn:uuid:1`, `http://x/Patient/1`).
    pub fn id(&self) -> Option<&str> {
        let r = self.reference.as_deref()?;
        let r = r.split("/_history/").next().unwrap_or(r);
        r.rsplit(['/', ':']).next()
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Quantity {
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub system: Option<String>,
    pub code: Option<String>,
    pub comparator: Option<String>,
}

impl Quantity {
    /// FHIRHelpers `ToQuantity`: null without a value; an error (here: null) with a comparator
    /// or a non-UCUM system; the unit is `code`, else `unit`, else `'1'`.
    pub fn to_cql(&self) -> Option<CqlQuantity> {
        let value = self.value?;
        if self.comparator.is_some() {
            return None;
        }
        match self.system.as_deref() {
            None
            | Some("http://unitsofmeasure.org")
            | Some("http://hl7.org/fhirpath/CodeSystem/calendar-units") => {}
            Some(_) => return None,
        }
        let unit = self
            .code
            .as_deref()
            .or(self.unit.as_deref())
            .unwrap_or("1")
            .to_string();
        Some(CqlQuantity { value, unit })
    }

    /// `convert Q to days` for a duration (UCUM `s`, `min`, `h`, `d`, `wk`, `mo`, `a` and the
    /// calendar words).
    pub fn to_days(&self) -> Option<f64> {
        let q = self.to_cql()?;
        let per_day = match q.unit.as_str() {
            "s" | "second" | "seconds" => 1.0 / 86_400.0,
            "min" | "minute" | "minutes" => 1.0 / 1_440.0,
            "h" | "hour" | "hours" => 1.0 / 24.0,
            "d" | "day" | "days" => 1.0,
            "wk" | "week" | "weeks" => 7.0,
            "mo" => 30.4375,
            "a" => 365.25,
            _ => return None,
        };
        Some(q.value * per_day)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Range {
    pub low: Option<Quantity>,
    pub high: Option<Quantity>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Patient {
    pub id: String,
    pub gender: Option<String>,
    pub birth_date: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Encounter {
    pub id: String,
    pub status: Option<String>,
    #[serde(rename = "type")]
    pub type_: Vec<CodeableConcept>,
    pub period: Option<Period>,
    pub subject: Option<Reference>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    pub id: String,
    pub clinical_status: Option<CodeableConcept>,
    pub verification_status: Option<CodeableConcept>,
    pub code: Option<CodeableConcept>,
    pub onset_date_time: Option<String>,
    pub onset_period: Option<Period>,
    pub onset_age: Option<Quantity>,
    pub onset_range: Option<Range>,
    pub abatement_date_time: Option<String>,
    pub abatement_period: Option<Period>,
    pub abatement_age: Option<Quantity>,
    pub abatement_range: Option<Range>,
    pub subject: Option<Reference>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Procedure {
    pub id: String,
    pub status: Option<String>,
    pub code: Option<CodeableConcept>,
    pub performed_date_time: Option<String>,
    pub performed_period: Option<Period>,
    pub performed_age: Option<Quantity>,
    pub performed_range: Option<Range>,
    pub body_site: Vec<CodeableConcept>,
    pub subject: Option<Reference>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Meta {
    pub profile: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Observation {
    pub id: String,
    pub meta: Option<Meta>,
    pub status: Option<String>,
    pub category: Vec<CodeableConcept>,
    pub code: Option<CodeableConcept>,
    pub effective_date_time: Option<String>,
    pub effective_period: Option<Period>,
    pub effective_instant: Option<String>,
    /// When the result entered the record (read by the programme report for §1.2 visibility).
    pub issued: Option<String>,
    pub value_quantity: Option<Quantity>,
    pub value_integer: Option<i64>,
    pub value_codeable_concept: Option<CodeableConcept>,
    pub subject: Option<Reference>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceRequest {
    pub id: String,
    pub status: Option<String>,
    pub intent: Option<String>,
    pub do_not_perform: Option<bool>,
    pub code: Option<CodeableConcept>,
    pub authored_on: Option<String>,
    pub subject: Option<Reference>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Repeat {
    pub bounds_period: Option<Period>,
    pub frequency: Option<i64>,
    pub frequency_max: Option<i64>,
    pub period: Option<f64>,
    pub period_unit: Option<String>,
    pub time_of_day: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Timing {
    pub event: Vec<String>,
    pub repeat: Option<Repeat>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DoseAndRate {
    pub dose_quantity: Option<Quantity>,
    pub dose_range: Option<Range>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Dosage {
    pub timing: Option<Timing>,
    pub dose_and_rate: Vec<DoseAndRate>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DispenseRequest {
    pub validity_period: Option<Period>,
    pub number_of_repeats_allowed: Option<i64>,
    pub quantity: Option<Quantity>,
    pub expected_supply_duration: Option<Quantity>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MedicationRequest {
    pub id: String,
    pub status: Option<String>,
    pub intent: Option<String>,
    pub medication_codeable_concept: Option<CodeableConcept>,
    pub authored_on: Option<String>,
    pub dosage_instruction: Vec<Dosage>,
    pub dispense_request: Option<DispenseRequest>,
    pub subject: Option<Reference>,
}

/// One resource the measures read, or `Other` for any type they do not. Transient (filed into
/// a [`Record`] at once), so the variants' size difference does not matter.
#[derive(Clone, Debug, Deserialize)]
#[allow(clippy::large_enum_variant)]
#[serde(tag = "resourceType")]
pub enum Resource {
    Patient(Patient),
    Encounter(Encounter),
    Condition(Condition),
    Procedure(Procedure),
    Observation(Observation),
    ServiceRequest(ServiceRequest),
    MedicationRequest(MedicationRequest),
    #[serde(other)]
    Other,
}

impl Resource {
    /// The patient a clinical resource belongs to.
    pub fn subject_id(&self) -> Option<&str> {
        match self {
            Resource::Patient(p) => Some(p.id.as_str()),
            Resource::Encounter(r) => r.subject.as_ref()?.id(),
            Resource::Condition(r) => r.subject.as_ref()?.id(),
            Resource::Procedure(r) => r.subject.as_ref()?.id(),
            Resource::Observation(r) => r.subject.as_ref()?.id(),
            Resource::ServiceRequest(r) => r.subject.as_ref()?.id(),
            Resource::MedicationRequest(r) => r.subject.as_ref()?.id(),
            Resource::Other => None,
        }
    }
}

/// One patient's resources, as a CQL `context Patient` sees them.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub patient: Patient,
    pub encounters: Vec<Encounter>,
    pub conditions: Vec<Condition>,
    pub procedures: Vec<Procedure>,
    pub observations: Vec<Observation>,
    pub service_requests: Vec<ServiceRequest>,
    pub medication_requests: Vec<MedicationRequest>,
}

impl Record {
    /// Files a resource into the record (Patient replaces the demographics).
    pub fn push(&mut self, r: Resource) {
        match r {
            Resource::Patient(p) => self.patient = p,
            Resource::Encounter(x) => self.encounters.push(x),
            Resource::Condition(x) => self.conditions.push(x),
            Resource::Procedure(x) => self.procedures.push(x),
            Resource::Observation(x) => self.observations.push(x),
            Resource::ServiceRequest(x) => self.service_requests.push(x),
            Resource::MedicationRequest(x) => self.medication_requests.push(x),
            Resource::Other => {}
        }
    }

    /// `Patient.birthDate` as a CQL Date (None when missing or unreadable).
    pub fn birth_date(&self) -> Option<DateTime> {
        self.patient.birth_date.as_deref().and_then(DateTime::parse)
    }
}

//! The patient model: a typed, dated record of what bone health needs.
//!
//! Everything here is already *interpreted* (codes mapped to concepts, units converted to the
//! canonical units of knowledge.md §1.3) but *not judged*: an unknown value stays `None`, never a
//! default. The FHIR reader builds it; the rules only read it.
//!
//! Every item carries a [`SourceRef`] (e.g. `MedicationAdministration/dmab-6`) so findings can
//! cite their evidence, and a `visible` date: the date the information entered the record
//! (knowledge.md §1.2), which decides whether the item exists at a given as-of date.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

// Shared, not copied: the text is reference-counted, so the evidence and timeline entries that
// name an item hold the record's reference instead of a copy each (issue 19). Serialised as the
// plain string. (A plain comment: the doc comment below is the JSON Schema's description.)
/// A FHIR-style reference to the resource an item came from, e.g. `Observation/dxa-1`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceRef(#[cfg_attr(feature = "schema", schemars(with = "String"))] Arc<str>);

impl SourceRef {
    pub fn new(s: impl Into<Arc<str>>) -> Self {
        SourceRef(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for SourceRef {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SourceRef {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SourceRef {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for SourceRef {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for SourceRef {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for SourceRef {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl From<&str> for SourceRef {
    fn from(s: &str) -> Self {
        SourceRef(s.into())
    }
}

impl From<String> for SourceRef {
    fn from(s: String) -> Self {
        SourceRef(s.into())
    }
}

impl From<SourceRef> for String {
    fn from(s: SourceRef) -> Self {
        s.0.to_string()
    }
}

impl Serialize for SourceRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SourceRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SourceRef::from)
    }
}

impl std::fmt::Display for SourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A closed or half-open date interval; either end may be unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Period {
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
}

impl Period {
    pub fn day(d: NaiveDate) -> Self {
        Period {
            start: Some(d),
            end: Some(d),
        }
    }
    pub fn from(start: NaiveDate) -> Self {
        Period {
            start: Some(start),
            end: None,
        }
    }
    pub fn between(start: NaiveDate, end: NaiveDate) -> Self {
        Period {
            start: Some(start),
            end: Some(end),
        }
    }
}

/// Whole calendar days from `a` to `b` (`b − a`), knowledge.md §1.2.
/// Counted on the proleptic Gregorian day number (`b - a` as a `TimeDelta` and back to days
/// gives the same count, with a conversion to seconds and back on every call; issue 19).
pub fn days(a: NaiveDate, b: NaiveDate) -> i64 {
    use chrono::Datelike;
    i64::from(b.num_days_from_ce()) - i64::from(a.num_days_from_ce())
}

/// `d + n` days, saturating at the calendar's ends instead of panicking.
pub fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        d.checked_add_days(chrono::Days::new(n as u64))
            .unwrap_or(NaiveDate::MAX)
    } else {
        d.checked_sub_days(chrono::Days::new(n.unsigned_abs()))
            .unwrap_or(NaiveDate::MIN)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    pub source: SourceRef,
    pub birth_date: Option<NaiveDate>,
    pub sex: Sex,
    pub deceased: Option<NaiveDate>,
}

/// One patient's record as the rules see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientRecord {
    pub patient: Patient,
    pub medications: Vec<MedicationRecord>,
    pub observations: Vec<Observation>,
    pub conditions: Vec<Condition>,
    pub procedures: Vec<Procedure>,
    /// MedicationDispense resources of the §10.1 agents. Read by the programme KPIs (§13 KPI 9,
    /// "dispensed") and by the therapy facts: an oral bisphosphonate fill (§4.3 "last fill + days
    /// supply + 30 days") and a bisphosphonate started after denosumab (§5.2 transition).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dispenses: Vec<MedicationDispense>,
    /// ImagingStudy resources that are DXA scans. Read by the programme KPIs (§13 KPI 4, "a DXA
    /// Procedure/ImagingStudy"); no assess rule reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imaging_studies: Vec<ImagingStudy>,
}

impl PatientRecord {
    pub fn new(patient: Patient) -> Self {
        PatientRecord {
            patient,
            medications: Vec::new(),
            observations: Vec::new(),
            conditions: Vec::new(),
            procedures: Vec::new(),
            dispenses: Vec::new(),
            imaging_studies: Vec::new(),
        }
    }

    /// Sorts every list by (date, source) so that evaluation never depends on the order the
    /// resources arrived in. The engine calls this itself; it is public for readers that want
    /// a canonical record.
    pub fn canonicalise(&mut self) {
        self.medications
            .sort_by(|a, b| med_order(a).cmp(&med_order(b)));
        self.observations
            .sort_by(|a, b| obs_order(a).cmp(&obs_order(b)));
        self.conditions
            .sort_by(|a, b| cond_order(a).cmp(&cond_order(b)));
        self.procedures
            .sort_by(|a, b| proc_order(a).cmp(&proc_order(b)));
        self.dispenses
            .sort_by(|a, b| dispense_order(a).cmp(&dispense_order(b)));
        self.imaging_studies
            .sort_by(|a, b| imaging_order(a).cmp(&imaging_order(b)));
    }

    /// The record with only the items each `keep` accepts, in canonical order: the same record
    /// as cloning the kept items and calling [`Self::canonicalise`], but each kept item is
    /// cloned once into a list of its final length, and the order is established on references
    /// (a list already in order is not sorted; the sort is stable, as `canonicalise`'s is).
    /// Why: the engine's visible view of a record that is not in canonical order (issue 19).
    pub fn canonical_copy(&self, keep: &Keep) -> PatientRecord {
        PatientRecord {
            patient: self.patient.clone(),
            medications: sorted_copy(&self.medications, keep.medication, |a, b| {
                med_order(a).cmp(&med_order(b))
            }),
            observations: sorted_copy(&self.observations, keep.observation, |a, b| {
                obs_order(a).cmp(&obs_order(b))
            }),
            conditions: sorted_copy(&self.conditions, keep.condition, |a, b| {
                cond_order(a).cmp(&cond_order(b))
            }),
            procedures: sorted_copy(&self.procedures, keep.procedure, |a, b| {
                proc_order(a).cmp(&proc_order(b))
            }),
            dispenses: sorted_copy(&self.dispenses, keep.dispense, |a, b| {
                dispense_order(a).cmp(&dispense_order(b))
            }),
            imaging_studies: sorted_copy(&self.imaging_studies, keep.imaging_study, |a, b| {
                imaging_order(a).cmp(&imaging_order(b))
            }),
        }
    }

    /// Whether [`Self::canonicalise`] would leave the record as it is (each list already in
    /// canonical order; the sort is stable, so an ordered list is unchanged).
    pub fn is_canonical(&self) -> bool {
        self.medications
            .is_sorted_by(|a, b| med_order(a) <= med_order(b))
            && self
                .observations
                .is_sorted_by(|a, b| obs_order(a) <= obs_order(b))
            && self
                .conditions
                .is_sorted_by(|a, b| cond_order(a) <= cond_order(b))
            && self
                .procedures
                .is_sorted_by(|a, b| proc_order(a) <= proc_order(b))
            && self
                .dispenses
                .is_sorted_by(|a, b| dispense_order(a) <= dispense_order(b))
            && self
                .imaging_studies
                .is_sorted_by(|a, b| imaging_order(a) <= imaging_order(b))
    }
}

/// Which items [`PatientRecord::canonical_copy`] keeps, one predicate per list.
pub struct Keep<'k> {
    pub medication: &'k dyn Fn(&MedicationRecord) -> bool,
    pub observation: &'k dyn Fn(&Observation) -> bool,
    pub condition: &'k dyn Fn(&Condition) -> bool,
    pub procedure: &'k dyn Fn(&Procedure) -> bool,
    pub dispense: &'k dyn Fn(&MedicationDispense) -> bool,
    pub imaging_study: &'k dyn Fn(&ImagingStudy) -> bool,
}

/// The items `keep` accepts, stably sorted by `order`, each cloned once into a list of exactly
/// their number.
fn sorted_copy<T: Clone>(
    items: &[T],
    keep: &dyn Fn(&T) -> bool,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let mut kept: Vec<&T> = Vec::with_capacity(items.len());
    kept.extend(items.iter().filter(|x| keep(x)));
    if !kept.is_sorted_by(|a, b| order(a, b).is_le()) {
        kept.sort_by(|a, b| order(a, b));
    }
    let mut out = Vec::with_capacity(kept.len());
    out.extend(kept.into_iter().cloned());
    out
}

/// The canonical order of each list (one definition for sorting and for checking the order).
fn med_order(m: &MedicationRecord) -> impl Ord + '_ {
    (m.visible, &m.source)
}
fn obs_order(o: &Observation) -> impl Ord + '_ {
    (o.effective, o.visible, &o.source)
}
fn cond_order(c: &Condition) -> impl Ord + '_ {
    (c.visible, &c.source)
}
fn proc_order(p: &Procedure) -> impl Ord + '_ {
    (p.performed, &p.source)
}
fn dispense_order(d: &MedicationDispense) -> impl Ord + '_ {
    (d.date(), &d.source)
}
fn imaging_order(i: &ImagingStudy) -> impl Ord + '_ {
    (i.started, &i.source)
}

// ---------------------------------------------------------------------------------------------
// Medications
// ---------------------------------------------------------------------------------------------

/// Ingredients the rules care about (knowledge.md §10.1). Salt forms map to the base.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ingredient {
    // Glucocorticoids (§2.2)
    Cortisone,
    Hydrocortisone,
    Prednisone,
    Prednisolone,
    Methylprednisolone,
    Triamcinolone,
    Dexamethasone,
    Betamethasone,
    Deflazacort,
    Fludrocortisone,
    Budesonide,
    /// Inhaled/topical-only steroids recognised so they are *not* counted (fluticasone etc.).
    OtherLocalCorticosteroid,
    // Osteoporosis agents (§4.3)
    Denosumab,
    ZoledronicAcid,
    Alendronate,
    Risedronate,
    Ibandronate,
    Teriparatide,
    Abaloparatide,
    Romosozumab,
    Raloxifene,
    // Supplements (§10.1)
    Calcium,
    Cholecalciferol,
    Ergocalciferol,
    Calcifediol,
    Calcitriol,
    Alfacalcidol,
}

impl Ingredient {
    pub fn is_glucocorticoid(self) -> bool {
        use Ingredient::*;
        matches!(
            self,
            Cortisone
                | Hydrocortisone
                | Prednisone
                | Prednisolone
                | Methylprednisolone
                | Triamcinolone
                | Dexamethasone
                | Betamethasone
                | Deflazacort
                | Fludrocortisone
                | Budesonide
                | OtherLocalCorticosteroid
        )
    }
    pub fn is_bisphosphonate(self) -> bool {
        use Ingredient::*;
        matches!(
            self,
            ZoledronicAcid | Alendronate | Risedronate | Ibandronate
        )
    }
    pub fn is_anabolic(self) -> bool {
        matches!(self, Ingredient::Teriparatide | Ingredient::Abaloparatide)
    }
    pub fn is_osteoporosis_agent(self) -> bool {
        use Ingredient::*;
        self.is_bisphosphonate()
            || matches!(
                self,
                Denosumab | Teriparatide | Abaloparatide | Romosozumab | Raloxifene
            )
    }
    pub fn is_vitamin_d(self) -> bool {
        use Ingredient::*;
        matches!(
            self,
            Cholecalciferol | Ergocalciferol | Calcifediol | Calcitriol | Alfacalcidol
        )
    }
    pub fn name(self) -> &'static str {
        use Ingredient::*;
        match self {
            Cortisone => "cortisone",
            Hydrocortisone => "hydrocortisone",
            Prednisone => "prednisone",
            Prednisolone => "prednisolone",
            Methylprednisolone => "methylprednisolone",
            Triamcinolone => "triamcinolone",
            Dexamethasone => "dexamethasone",
            Betamethasone => "betamethasone",
            Deflazacort => "deflazacort",
            Fludrocortisone => "fludrocortisone",
            Budesonide => "budesonide",
            OtherLocalCorticosteroid => "corticosteroid (local)",
            Denosumab => "denosumab",
            ZoledronicAcid => "zoledronic acid",
            Alendronate => "alendronate",
            Risedronate => "risedronate",
            Ibandronate => "ibandronate",
            Teriparatide => "teriparatide",
            Abaloparatide => "abaloparatide",
            Romosozumab => "romosozumab",
            Raloxifene => "raloxifene",
            Calcium => "calcium",
            Cholecalciferol => "cholecalciferol",
            Ergocalciferol => "ergocalciferol",
            Calcifediol => "calcifediol",
            Calcitriol => "calcitriol",
            Alfacalcidol => "alfacalcidol",
        }
    }
}

/// Route of administration, as far as bone rules need it (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    Oral,
    Intravenous,
    Intramuscular,
    Subcutaneous,
    /// Inhaled, intranasal, topical, ophthalmic, otic, rectal-local, intra-articular, intralesional.
    Local,
    /// Not recorded: counts as systemic for glucocorticoids (§2.6, conservative).
    Unknown,
}

impl Route {
    pub fn is_systemic(self) -> bool {
        !matches!(self, Route::Local)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MedicationSource {
    Request,
    Statement,
    Administration,
}

/// FHIR status values of the three medication resources, merged (§1.6).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MedicationStatus {
    Active,
    Completed,
    OnHold,
    Stopped,
    Cancelled,
    EnteredInError,
    Draft,
    Intended,
    NotTaken,
    InProgress,
    NotDone,
    Unknown,
}

/// One dosage line (`dosageInstruction[i]` / `dosage`), already converted to mg and per-day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dosage {
    /// mg of the ingredient per administration; `None` = not computable (unit or strength unknown).
    pub dose_mg: Option<f64>,
    /// Administrations per day; `None` = no timing given.
    pub per_day: Option<f64>,
    pub as_needed: bool,
    /// `timing.repeat.boundsPeriod`.
    pub bounds: Option<Period>,
    /// `timing.repeat.boundsDuration` in days.
    pub bounds_duration_days: Option<i64>,
    pub route: Route,
    /// `sequence`, for taper schedules.
    pub sequence: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MedicationRecord {
    pub source: SourceRef,
    pub kind: MedicationSource,
    pub status: MedicationStatus,
    /// Ingredients the value sets recognised (several for combination products).
    pub ingredients: Vec<Ingredient>,
    /// Product display text, for evidence.
    pub display: String,
    /// The §1.2 visibility date; `None` = no usable date.
    pub visible: Option<NaiveDate>,
    /// MedicationRequest.authoredOn.
    pub authored: Option<NaiveDate>,
    /// MedicationStatement/Administration `effective[x]`.
    pub effective: Option<Period>,
    /// `dispenseRequest.validityPeriod`.
    pub validity: Option<Period>,
    /// `dispenseRequest.expectedSupplyDuration` in days.
    pub expected_supply_days: Option<i64>,
    /// MedicationAdministration `dosage.dose` in mg (or the single dose of a request).
    pub administered_mg: Option<f64>,
    /// Route of the resource when it is not per-dosage (administration).
    pub route: Route,
    pub dosages: Vec<Dosage>,
    /// Every explicit planned occurrence of an order (`timing.event`), ascending, without
    /// repeats; empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned_dates: Vec<NaiveDate>,
    /// A draft order of an order hook read as if signed (`engine::as_if_signed`, §9 "Order
    /// hooks"): an order being placed, never a documented dose.
    #[serde(default)]
    pub signed_draft: bool,
}

impl MedicationRecord {
    pub fn has(&self, i: Ingredient) -> bool {
        self.ingredients.contains(&i)
    }
    /// The administration (or statement) date: `effective` start, else its end. The one
    /// definition every fact and output uses.
    pub fn administration_date(&self) -> Option<NaiveDate> {
        self.effective.and_then(|p| p.start.or(p.end))
    }
    /// The earliest explicit planned occurrence of an order (`timing.event`), if any.
    pub fn planned_date(&self) -> Option<NaiveDate> {
        self.planned_dates.first().copied()
    }
}

// ---------------------------------------------------------------------------------------------
// Observations
// ---------------------------------------------------------------------------------------------

/// DXA measurement site (§6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum DxaSite {
    LumbarSpine,
    TotalHip,
    FemoralNeck,
    Forearm,
}

impl DxaSite {
    pub fn label(self) -> &'static str {
        match self {
            DxaSite::LumbarSpine => "lumbar spine",
            DxaSite::TotalHip => "total hip",
            DxaSite::FemoralNeck => "femoral neck",
            DxaSite::Forearm => "forearm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Left,
    Right,
}

/// What an Observation measures. Values are in the canonical units of §1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "site")]
pub enum ObservationKind {
    /// SD.
    TScore(DxaSite),
    /// SD.
    ZScore(DxaSite),
    /// g/cm².
    Bmd(DxaSite),
    /// percent (0–100).
    FraxMof,
    /// percent (0–100).
    FraxHip,
    /// ng/L.
    Ctx,
    /// µg/L.
    P1np,
    /// mL/min/1.73 m².
    Egfr,
    /// mg/dL.
    Creatinine,
    /// mg/dL.
    Calcium,
    /// g/dL.
    Albumin,
    /// ng/mL.
    VitaminD25,
    /// kg.
    BodyWeight,
    /// 0–10.
    Pain,
    /// true = marrow oedema at `level` on MRI (§10.4 `vertebral-edema`).
    VertebralEdema,
    /// Genant grade 0–3 at `level` (§10.4 `genant-grade`).
    GenantGrade,
    /// Facility least significant change (§6.2); percent when `lsc_is_percent`.
    Lsc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationStatus {
    Final,
    Amended,
    Corrected,
    Preliminary,
    Registered,
    Cancelled,
    EnteredInError,
    Unknown,
}

impl ObservationStatus {
    /// §1.6: final, amended, corrected, preliminary (preliminary allowed but flagged).
    pub fn is_usable(self) -> bool {
        matches!(
            self,
            ObservationStatus::Final
                | ObservationStatus::Amended
                | ObservationStatus::Corrected
                | ObservationStatus::Preliminary
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub source: SourceRef,
    pub kind: ObservationKind,
    pub status: ObservationStatus,
    /// Numeric value in the canonical unit; `None` when missing or unconvertible.
    pub value: Option<f64>,
    /// Boolean value (vertebral oedema).
    pub flag: Option<bool>,
    /// When the measurement was taken (date and, when known, time of day for same-day ordering).
    pub effective: Option<NaiveDateTime>,
    /// The §1.2 visibility date (issued, else effective).
    pub visible: Option<NaiveDate>,
    pub reference_low: Option<f64>,
    pub reference_high: Option<f64>,
    /// Device identity for DXA comparability (§6.2): the reference's display, else its text.
    pub device: Option<String>,
    /// The referenced Device's manufacturer (contained or in the input), v0.10.3 §6.2: when
    /// known, DXA scans are compared by it.
    #[serde(default)]
    pub device_manufacturer: Option<String>,
    pub side: Option<Side>,
    pub level: Option<VertebralLevel>,
    /// FRAX: value already includes the GC-dose adjustment (§3.3).
    pub frax_gc_adjusted: bool,
    /// FRAX: glucocorticoids entered as a risk factor; `None` = not stated (assume yes).
    pub frax_gc_entered: Option<bool>,
    /// LSC unit: percent (true) or g/cm² (false).
    pub lsc_is_percent: bool,
}

impl Observation {
    pub fn date(&self) -> Option<NaiveDate> {
        self.effective.map(|t| t.date()).or(self.visible)
    }
    /// What DXA comparability compares (§6.2): the Device's manufacturer when known (v0.10.3),
    /// else the device text.
    pub fn device_identity(&self) -> Option<&str> {
        self.device_manufacturer
            .as_deref()
            .or(self.device.as_deref())
    }
}

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------

/// Vertebral levels T1–L5 (§7.1), in cranio-caudal order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VertebralLevel {
    T1,
    T2,
    T3,
    T4,
    T5,
    T6,
    T7,
    T8,
    T9,
    T10,
    T11,
    T12,
    L1,
    L2,
    L3,
    L4,
    L5,
}

impl VertebralLevel {
    pub const ALL: [VertebralLevel; 17] = {
        use VertebralLevel::*;
        [
            T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, L1, L2, L3, L4, L5,
        ]
    };
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }
    pub fn label(self) -> &'static str {
        use VertebralLevel::*;
        match self {
            T1 => "T1",
            T2 => "T2",
            T3 => "T3",
            T4 => "T4",
            T5 => "T5",
            T6 => "T6",
            T7 => "T7",
            T8 => "T8",
            T9 => "T9",
            T10 => "T10",
            T11 => "T11",
            T12 => "T12",
            L1 => "L1",
            L2 => "L2",
            L3 => "L3",
            L4 => "L4",
            L5 => "L5",
        }
    }
    /// Parses "L1", "l 1", "L1 vertebra", "T12" (§10.4).
    pub fn parse(text: &str) -> Option<Self> {
        let t: String = text
            .trim()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let t = t.strip_suffix("VERTEBRA").unwrap_or(&t);
        let (region, num) = t.split_at(t.char_indices().nth(1).map(|(i, _)| i)?);
        let n: usize = num.parse().ok()?;
        match (region, n) {
            ("T", 1..=12) => Self::from_index(n - 1),
            ("L", 1..=5) => Self::from_index(11 + n),
            _ => None,
        }
    }
    /// Levels directly above and below (§7.6 "adjacent").
    pub fn is_adjacent(self, other: VertebralLevel) -> bool {
        self.index().abs_diff(other.index()) == 1
    }
    pub fn is_lumbar_1_to_4(self) -> bool {
        use VertebralLevel::*;
        matches!(self, L1 | L2 | L3 | L4)
    }
}

impl std::fmt::Display for VertebralLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Where on the spine a vertebral fracture is (§7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "levels")]
pub enum VertebralLocation {
    Level(VertebralLevel),
    /// Grouped ICD-10 codes (S22.05- = T5–T6 …): one event attached to the pair.
    Pair(VertebralLevel, VertebralLevel),
    Unspecified,
}

/// The one wording of a vertebral location in every text: "L1", "T5–T6" (a grouped code, en
/// dash) or "level not recorded".
impl std::fmt::Display for VertebralLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VertebralLocation::Level(l) => f.write_str(l.label()),
            VertebralLocation::Pair(a, b) => write!(f, "{a}–{b}"),
            VertebralLocation::Unspecified => f.write_str("level not recorded"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "site", content = "location")]
pub enum FractureSite {
    Vertebral(VertebralLocation),
    Hip,
    Wrist,
    Humerus,
    /// "Due to osteoporosis" without a recognised site.
    OsteoporoticOther,
    /// A fracture code not in the fragility list (ankle, clavicle, rib …): recorded, not counted.
    Other,
}

impl FractureSite {
    /// Sites that count for `prior_osteoporotic_fracture` (§3.1, §10.3a).
    pub fn is_fragility_site(self) -> bool {
        !matches!(self, FractureSite::Other)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "detail")]
pub enum ConditionKind {
    Fracture(FractureSite),
    Osteoporosis,
    Osteopenia,
    AdrenalInsufficiency,
    Hypopituitarism,
    /// Exclusions for vertebral augmentation (§7.5-5).
    SpinalInfection,
    Coagulopathy,
    NeurologicalDeficit,
    Malignancy,
    /// Special populations (§12.9).
    ChronicKidneyDisease45,
    Dialysis,
    Transplant,
    Pregnancy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verification {
    Confirmed,
    Provisional,
    Unconfirmed,
    Differential,
    Refuted,
    EnteredInError,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FractureMechanism {
    Traumatic,
    Fragility,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub source: SourceRef,
    pub kind: ConditionKind,
    pub display: String,
    pub verification: Verification,
    /// Onset as a period (a date is a one-day period); `None` = not recorded.
    pub onset: Option<Period>,
    pub recorded: Option<NaiveDate>,
    /// The §1.2 visibility date (recordedDate, else onset start).
    pub visible: Option<NaiveDate>,
    pub mechanism: Option<FractureMechanism>,
    /// ICD-10-CM 7th character D/G/K/S: a follow-up of an earlier fracture, not a new event (§10.3).
    pub subsequent_encounter: bool,
}

impl Condition {
    pub fn is_valid(&self) -> bool {
        !matches!(
            self.verification,
            Verification::Refuted | Verification::EnteredInError
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Procedures
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ProcedureKind {
    Vertebroplasty,
    Kyphoplasty,
    SpineMri,
    SpineCt,
    SpineXray,
    Dxa,
}

impl ProcedureKind {
    pub fn is_augmentation(self) -> bool {
        matches!(
            self,
            ProcedureKind::Vertebroplasty | ProcedureKind::Kyphoplasty
        )
    }
    pub fn is_spine_imaging(self) -> bool {
        matches!(
            self,
            ProcedureKind::SpineMri | ProcedureKind::SpineCt | ProcedureKind::SpineXray
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcedureStatus {
    Completed,
    InProgress,
    NotDone,
    EnteredInError,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Procedure {
    pub source: SourceRef,
    pub kind: ProcedureKind,
    pub status: ProcedureStatus,
    pub display: String,
    /// Vertebral levels from `bodySite` (empty = not recorded).
    pub levels: Vec<VertebralLevel>,
    /// `performed[x]` (end of a period), also the §1.2 visibility date unless `visible` is set.
    pub performed: Option<NaiveDateTime>,
    /// The §1.2 visibility date when it is not `performed`: the `issued` day of a spine-imaging
    /// DiagnosticReport read as this procedure (`None`: `performed` decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<NaiveDate>,
}

impl Procedure {
    pub fn date(&self) -> Option<NaiveDate> {
        self.performed.map(|t| t.date())
    }
    /// The §1.2 visibility date: `visible`, else the performed day.
    pub fn visible_date(&self) -> Option<NaiveDate> {
        self.visible.or_else(|| self.date())
    }
}

// ---------------------------------------------------------------------------------------------
// Dispenses and imaging studies (programme KPIs, knowledge.md §13)
// ---------------------------------------------------------------------------------------------

/// `MedicationDispense.status` (FHIR R4); `Unknown` also when absent or not a FHIR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DispenseStatus {
    Preparation,
    InProgress,
    Cancelled,
    OnHold,
    Completed,
    EnteredInError,
    Stopped,
    Declined,
    Unknown,
}

/// A MedicationDispense of a recognised (§10.1) product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MedicationDispense {
    pub source: SourceRef,
    pub status: DispenseStatus,
    pub ingredients: Vec<Ingredient>,
    /// Product display text, for evidence.
    pub display: String,
    /// `whenHandedOver` (first day of a partial date).
    pub when_handed_over: Option<NaiveDate>,
    /// `whenPrepared`.
    pub when_prepared: Option<NaiveDate>,
    /// `daysSupply` in whole days (rounded up); `None` when absent or in an unknown unit. The
    /// "days supply" of §4.3's oral-bisphosphonate fill rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_supply: Option<i64>,
}

impl MedicationDispense {
    /// The day the medication was dispensed: `whenHandedOver` (the patient has it), else
    /// `whenPrepared` (a completed dispense was prepared for handing over, usually the same
    /// day); `None` when neither is usable. Also the §1.2 visibility date.
    pub fn date(&self) -> Option<NaiveDate> {
        self.when_handed_over.or(self.when_prepared)
    }
    pub fn has(&self, i: Ingredient) -> bool {
        self.ingredients.contains(&i)
    }
}

/// `ImagingStudy.status` (FHIR R4); `Unknown` also when absent or not a FHIR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImagingStudyStatus {
    Registered,
    Available,
    Cancelled,
    EnteredInError,
    Unknown,
}

/// An ImagingStudy recognised as a DXA scan: a `procedureCode` of the §10.3 DXA procedure codes
/// (the ones a DXA `Procedure` is recognised by), or a DICOM modality `BMD` (bone mineral
/// densitometry) in `modality` or a `series[].modality`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagingStudy {
    pub source: SourceRef,
    pub status: ImagingStudyStatus,
    /// Why it is a DXA (the code or modality that matched), for evidence.
    pub display: String,
    /// `started`: also the §1.2 visibility date.
    pub started: Option<NaiveDateTime>,
}

impl ImagingStudy {
    pub fn date(&self) -> Option<NaiveDate> {
        self.started.map(|t| t.date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `days` is the whole-day count of `b − a`, across month, leap-year and century ends, in
    /// both directions and at the calendar's ends.
    #[test]
    fn days_is_the_day_count_of_the_difference() {
        let mut dates = vec![NaiveDate::MIN, NaiveDate::MAX];
        let mut d = NaiveDate::from_ymd_opt(1895, 12, 20).expect("date");
        let end = NaiveDate::from_ymd_opt(2105, 1, 10).expect("date");
        while d <= end {
            dates.push(d);
            d = add_days(d, 13);
        }
        for y in [-400, -1, 0, 1, 1600, 1700, 1900, 2000, 2024, 2100, 2400] {
            for (m, day) in [(1, 1), (2, 28), (2, 29), (3, 1), (12, 31)] {
                dates.extend(NaiveDate::from_ymd_opt(y, m, day));
            }
        }
        let probes = [
            dates[0],
            dates[1],
            dates[dates.len() / 2],
            dates[dates.len() - 1],
        ];
        for &a in &dates {
            for &b in probes.iter().chain(dates.iter().step_by(97)) {
                assert_eq!(days(a, b), (b - a).num_days(), "{a} → {b}");
            }
        }
    }
}

//! osteoguard-measure: the bone-health electronic clinical quality measures **CMS249**
//! (Appropriate Use of DXA Scans in Women Under 65, [`cms249`]) and **CMS645** (Bone Density
//! Evaluation for Patients with Prostate Cancer and Receiving Androgen Deprivation Therapy,
//! [`cms645`]), implemented natively from the measures' CQL, with FHIR R4 MeasureReport output.
//!
//! Data flow:
//!
//! 1. [`input::read_records`] reads FHIR JSON (a Bundle, NDJSON, a Bulk Data export
//!    directory, or a directory of single-resource files) into one [`model::Record`] per
//!    patient — only the elements the measures read, as small serde types.
//! 2. [`ValueSets`] holds the VSAC expansions the CQL names by URL
//!    ([`ValueSets::embedded`] for the measure's own bundle, read from the shared data at build
//!    time, or any bundle at run time).
//! 3. [`evaluate`] runs one measure's population defines for one record in a
//!    [`MeasurementPeriod`] and applies the proportion-measure cascade
//!    (a patient is in the numerator only when in the denominator and not excluded…), giving a
//!    [`PatientResult`].
//! 4. [`report::individual`] / [`report::summary`] / [`report::bundle`] write the results
//!    as FHIR R4 MeasureReports.
//!
//! The CQL semantics (precision-aware DateTime comparison, interval boundaries, three-valued
//! logic) live in [`cql`]; the included libraries' functions (`QICoreCommon`, `FHIRHelpers`,
//! `CumulativeMedicationDuration`, `Status`) in [`qicore`].
//!
//! ```
//! use osteoguard_measure::{evaluate, Measure, MeasurementPeriod, ValueSets, model::Record};
//! let vs = ValueSets::embedded(Measure::Cms249).unwrap_or_default();
//! let period = MeasurementPeriod::year(2025).expect("a valid year");
//! let result = evaluate(Measure::Cms249, &Record::default(), &vs, &period);
//! assert!(!result.is_member(osteoguard_measure::Population::InitialPopulation));
//! ```

pub mod cms249;
pub mod cms645;
pub mod cql;
pub mod input;
pub mod model;
pub mod qicore;
pub mod report;
pub mod valueset;

use chrono::{NaiveDate, NaiveTime};

pub use valueset::ValueSets;

use cql::{DateTime, Interval};
use model::Record;

/// Errors of this crate: unreadable input or value sets.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("value sets: {0}")]
    ValueSets(String),
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error("measurement period: {0}")]
    Period(String),
}

/// The measures this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Measure {
    Cms249,
    Cms645,
}

impl Measure {
    /// Parses `cms249` / `cms645` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cms249" => Some(Self::Cms249),
            "cms645" => Some(Self::Cms645),
            _ => None,
        }
    }

    /// The short name (`cms249`).
    pub fn id(self) -> &'static str {
        match self {
            Self::Cms249 => "cms249",
            Self::Cms645 => "cms645",
        }
    }

    /// The CQL library name.
    pub fn library(self) -> &'static str {
        match self {
            Self::Cms249 => "AppropriateDXAScansForWomenUnder65FHIR",
            Self::Cms645 => "BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR",
        }
    }

    /// The Measure's canonical URL (as in the test decks' MeasureReports).
    pub fn url(self) -> String {
        format!("https://madie.cms.gov/Measure/{}", self.library())
    }

    /// The populations the measure defines, in the Measure resource's order.
    pub fn populations(self) -> &'static [Population] {
        match self {
            Self::Cms249 => &[
                Population::InitialPopulation,
                Population::Denominator,
                Population::DenominatorExclusion,
                Population::Numerator,
                Population::NumeratorExclusion,
            ],
            Self::Cms645 => &[
                Population::InitialPopulation,
                Population::Denominator,
                Population::Numerator,
                Population::DenominatorException,
            ],
        }
    }
}

/// A measure population (codes from `http://terminology.hl7.org/CodeSystem/measure-population`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Population {
    InitialPopulation,
    Denominator,
    DenominatorExclusion,
    Numerator,
    NumeratorExclusion,
    DenominatorException,
}

impl Population {
    pub fn code(self) -> &'static str {
        match self {
            Self::InitialPopulation => "initial-population",
            Self::Denominator => "denominator",
            Self::DenominatorExclusion => "denominator-exclusion",
            Self::Numerator => "numerator",
            Self::NumeratorExclusion => "numerator-exclusion",
            Self::DenominatorException => "denominator-exception",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Self::InitialPopulation => "Initial Population",
            Self::Denominator => "Denominator",
            Self::DenominatorExclusion => "Denominator Exclusion",
            Self::Numerator => "Numerator",
            Self::NumeratorExclusion => "Numerator Exclusion",
            Self::DenominatorException => "Denominator Exception",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::InitialPopulation,
            Self::Denominator,
            Self::DenominatorExclusion,
            Self::Numerator,
            Self::NumeratorExclusion,
            Self::DenominatorException,
        ]
        .into_iter()
        .find(|p| p.code() == code)
    }
}

/// The `"Measurement Period"` parameter: `Interval[start 00:00:00.000, end 23:59:59.999]`
/// (UTC) from two calendar dates, as the reference engine builds it from a MeasureReport's
/// `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeasurementPeriod {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl MeasurementPeriod {
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Self, MeasureError> {
        if end < start {
            return Err(MeasureError::Period(format!("{end} is before {start}")));
        }
        Ok(Self { start, end })
    }

    /// The calendar year `y`.
    pub fn year(y: i32) -> Result<Self, MeasureError> {
        let d = |m, day| {
            NaiveDate::from_ymd_opt(y, m, day)
                .ok_or_else(|| MeasureError::Period(format!("year {y}")))
        };
        Self::new(d(1, 1)?, d(12, 31)?)
    }

    /// As a CQL `Interval<DateTime>`.
    pub fn interval(&self) -> Interval {
        let last_ms = NaiveTime::from_hms_milli_opt(23, 59, 59, 999).unwrap_or(NaiveTime::MIN);
        Interval::closed(
            Some(DateTime::from_utc(self.start.and_time(NaiveTime::MIN))),
            Some(DateTime::from_utc(self.end.and_time(last_ms))),
        )
    }
}

/// What a define sees: the patient's record, the value sets and the measurement period.
pub struct Ctx<'a> {
    pub rec: &'a Record,
    pub vs: &'a ValueSets,
    pub mp: Interval,
    pub birth: Option<DateTime>,
}

impl<'a> Ctx<'a> {
    pub fn new(rec: &'a Record, vs: &'a ValueSets, period: &MeasurementPeriod) -> Self {
        Self {
            rec,
            vs,
            mp: period.interval(),
            birth: rec.birth_date(),
        }
    }

    /// `AgeInYearsAt(date from start of "Measurement Period")`; null without a full birth date.
    pub fn age_at_start(&self) -> Option<i32> {
        let b = self.birth?;
        if b.precision() < cql::Precision::Day {
            return None;
        }
        Some(cql::age_in_years_at(b.date(), self.mp.start()?.date()))
    }
}

/// One patient's membership in each population of a measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientResult {
    pub patient_id: String,
    pub measure: Measure,
    /// In [`Measure::populations`] order.
    pub populations: Vec<(Population, bool)>,
}

impl PatientResult {
    pub fn is_member(&self, p: Population) -> bool {
        self.populations.iter().any(|(q, v)| *q == p && *v)
    }
}

/// Evaluates one measure for one patient and applies the proportion-measure cascade as the
/// CQF Measures IG defines it: denominator ⊆ initial population; exclusions count only inside
/// the denominator; the numerator only for denominator members not excluded; numerator
/// exclusions only inside the numerator; exceptions only for denominator members neither
/// excluded nor in the numerator.
pub fn evaluate(
    measure: Measure,
    rec: &Record,
    vs: &ValueSets,
    period: &MeasurementPeriod,
) -> PatientResult {
    let cx = Ctx::new(rec, vs, period);
    let raw = match measure {
        Measure::Cms249 => cms249::evaluate(&cx),
        Measure::Cms645 => cms645::evaluate(&cx),
    };
    let get = |p: Population| raw.iter().any(|(q, v)| *q == p && *v);
    let ipp = get(Population::InitialPopulation);
    let denom = ipp && get(Population::Denominator);
    let denex = denom && get(Population::DenominatorExclusion);
    let numer = denom && !denex && get(Population::Numerator);
    let numex = numer && get(Population::NumeratorExclusion);
    let denexcep = denom && !denex && !numer && get(Population::DenominatorException);
    let populations = measure
        .populations()
        .iter()
        .map(|p| {
            let v = match p {
                Population::InitialPopulation => ipp,
                Population::Denominator => denom,
                Population::DenominatorExclusion => denex,
                Population::Numerator => numer,
                Population::NumeratorExclusion => numex,
                Population::DenominatorException => denexcep,
            };
            (*p, v)
        })
        .collect();
    PatientResult {
        patient_id: rec.patient.id.clone(),
        measure,
        populations,
    }
}

impl ValueSets {
    /// The measure's VSAC expansion bundle embedded at build time, or an error when the crate
    /// was built without the shared data (give the bundle at run time instead).
    pub fn embedded(measure: Measure) -> Result<Self, MeasureError> {
        let text = match measure {
            Measure::Cms249 => include_str!(concat!(env!("OUT_DIR"), "/cms249-valuesets.json")),
            Measure::Cms645 => include_str!(concat!(env!("OUT_DIR"), "/cms645-valuesets.json")),
        };
        if text.is_empty() {
            return Err(MeasureError::ValueSets(format!(
                "{} was built without its value set bundle (no shared data at build time); \
                 pass the *-valuesets-bundle.json at run time",
                measure.id()
            )));
        }
        Self::from_bundle_json(text)
    }
}

//! # osteoguard-core — patient model and clinical rules
//!
//! What goes in: a [`model::PatientRecord`] (an interpreted, typed, dated record: medications,
//! observations, conditions, procedures, each with its source reference) and an explicit
//! as-of date. What comes out: an [`assessment::Assessment`] — fracture-risk category,
//! glucocorticoid exposure, denosumab schedule, per-level spine state, findings with evidence
//! and citations, dated tasks, data-quality notes and a provenance stamp.
//!
//! Data flow: [`engine::visible_at`] (record as it looked on the as-of date, knowledge.md §1.2)
//! → [`facts`] (named intermediate quantities of the specification) → [`rules`] (one module per
//! finding code of §9, thresholds from [`thresholds`]) → [`assessment`].
//!
//! *Invariant:* this crate knows nothing of FHIR JSON, HTTP, SQLite, files or the clock. The
//! same record, as-of date and [`config::Config`] always give the same assessment.
//!
//! ```
//! use osteoguard_core::{assess, Config, model::*};
//! let patient = Patient {
//!     source: SourceRef::new("Patient/p1"),
//!     birth_date: "1950-03-15".parse().ok(),
//!     sex: Sex::Female,
//!     deceased: None,
//! };
//! let record = PatientRecord::new(patient);
//! let a = assess(&record, "2023-06-15".parse().unwrap(), &Config::default());
//! assert_eq!(a.schema, "osteoguard.assessment/1");
//! assert_eq!(a.patient.age_years, Some(73));
//! ```

/// `format!` for the engine's texts (evidence details, summaries, trace and basis lines): the
/// same text, written into a `String` with room for a typical line reserved up front
/// ([`finding::text`]), instead of growing it by reallocation as the pieces arrive (issue 19).
macro_rules! text {
    ($($arg:tt)*) => {
        $crate::finding::text(format_args!($($arg)*))
    };
}

pub mod assessment;
pub mod catalogue;
pub mod config;
pub mod engine;
pub mod facts;
pub mod finding;
pub mod follow_up;
pub mod model;
pub mod programme;
pub mod rules;
pub mod sources;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod thresholds;
mod timeline;
pub mod tri;

pub use assessment::{assess, assess_what_if, assess_with_issues, Assessment, SCHEMA};
pub use config::{Config, ConfigError, Provenance};
pub use finding::{DataQualityIssue, Evidence, Finding, FindingCode, Severity, Task};
pub use tri::Tri;

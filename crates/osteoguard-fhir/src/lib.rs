//! # osteoguard-fhir — FHIR R4 JSON to the osteoguard patient model
//!
//! What goes in: FHIR R4 JSON — a Bundle (collection, transaction, batch, searchset), NDJSON
//! (one resource per line), a Bulk Data export directory, or already-parsed resources (CDS Hooks
//! prefetch). What comes out: a [`ReadOutput`]: one [`PatientData`] per patient (an
//! `osteoguard_core::model::PatientRecord` plus the data-quality issues met and per-type
//! counts), never a partial failure: only input that is not JSON / not FHIR is an error.
//!
//! (Skeleton: the implementation lands in the next commits.)

use std::collections::BTreeMap;
use std::path::Path;

use osteoguard_core::model::PatientRecord;
use osteoguard_core::DataQualityIssue;
use serde::Serialize;

/// How one resource was handled (issue: nothing silently dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// Mapped into the patient model (a rule can read it).
    Used,
    /// Read and understood, but no rule needs it (other codes, other resource types).
    Ignored,
    /// Relevant-looking but could not be understood (see the data-quality issue).
    NotUnderstood,
}

/// Per resource type: how many resources were read and where they went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeCounts {
    pub read: u64,
    pub used: u64,
    pub ignored: u64,
    pub not_understood: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub by_type: BTreeMap<String, TypeCounts>,
}

/// One patient's record and what the reader met on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientData {
    /// `Patient.id`.
    pub id: String,
    pub record: PatientRecord,
    pub issues: Vec<DataQualityIssue>,
    pub stats: Stats,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOutput {
    /// Sorted by patient id.
    pub patients: Vec<PatientData>,
    /// Resources that belong to no known patient, and file-level problems.
    pub unattached: Vec<DataQualityIssue>,
    pub stats: Stats,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: not valid JSON: {message}")]
    Json { location: String, message: String },
    #[error("{location}: not FHIR: {message}")]
    NotFhir { location: String, message: String },
}

/// Reads a Bundle, an NDJSON file (optionally `.gz`) or a Bulk Data export directory.
pub fn read_path(path: &Path) -> Result<ReadOutput, ReadError> {
    let _ = path;
    Ok(ReadOutput::default())
}

/// Reads a Bundle or a single resource from JSON bytes.
pub fn read_json_bytes(bytes: &[u8], location: &str) -> Result<ReadOutput, ReadError> {
    let _ = (bytes, location);
    Ok(ReadOutput::default())
}

/// Reads already-parsed resources (e.g. CDS Hooks prefetch entries; Bundles are expanded).
pub fn read_resources(resources: Vec<serde_json::Value>) -> ReadOutput {
    let _ = resources;
    ReadOutput::default()
}

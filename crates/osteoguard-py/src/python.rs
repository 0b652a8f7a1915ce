//! The Python module `osteoguard._native` (compiled only with the `extension-module` feature).
//! The public Python API is `python/osteoguard/__init__.py`, which wraps these functions.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{LineAction, PyEngineError, WORKLIST_COLUMNS};

fn err(e: PyEngineError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// The `osteoguard.assessment/1` JSON (text) of one patient.
#[pyfunction]
#[pyo3(signature = (lines, as_of, patient=None, config=None))]
fn assess_json(
    py: Python<'_>,
    lines: Vec<String>,
    as_of: &str,
    patient: Option<&str>,
    config: Option<&str>,
) -> PyResult<String> {
    let a = py
        .detach(|| crate::assess_lines(&lines, as_of, patient, config))
        .map_err(err)?;
    serde_json::to_string(&a).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Whether the Spark job ships this NDJSON line to its patient's executor (screen's router and
/// the FHIR reader's own disposition; see `classify_line`).
#[pyfunction]
fn is_relevant(line: &str) -> bool {
    crate::is_relevant(line)
}

/// Classifies a batch of lines: `(actions, ids)` with action `keep`, `key-only`, `shared` or
/// `drop:<reason>`, and the patient id (Medication id for `shared`; None when dropped).
#[pyfunction]
fn classify_lines(
    py: Python<'_>,
    lines: Vec<Option<String>>,
) -> (Vec<&'static str>, Vec<Option<String>>) {
    py.detach(|| {
        let mut actions = Vec::with_capacity(lines.len());
        let mut ids = Vec::with_capacity(lines.len());
        for line in &lines {
            let (a, k) = match crate::classify_line(line.as_deref().unwrap_or("")) {
                LineAction::Keep(k) => ("keep", Some(k)),
                LineAction::KeyOnly(k) => ("key-only", Some(k)),
                LineAction::Shared(k) => ("shared", Some(k)),
                LineAction::Drop(r) => (drop_label(r), None),
            };
            actions.push(a);
            ids.push(k);
        }
        (actions, ids)
    })
}

fn drop_label(r: crate::DropReason) -> &'static str {
    use crate::DropReason::*;
    match r {
        Blank => "drop:blank",
        NotFhir => "drop:not-fhir",
        Irrelevant => "drop:irrelevant",
        NoPatient => "drop:no-patient",
    }
}

/// Worklist rows of many patients: a dict of equal-length column lists (WORKLIST_COLUMNS, all
/// text as in screen's worklist.csv, `None` for empty), plus `_severity_rank` (0 info … 3
/// critical) for sorting.
#[pyfunction]
#[pyo3(signature = (keys, groups, as_of, shared=None, config=None))]
fn worklist_batch<'py>(
    py: Python<'py>,
    keys: Vec<String>,
    groups: Vec<Vec<String>>,
    as_of: &str,
    shared: Option<Vec<(String, String)>>,
    config: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let shared = shared.unwrap_or_default();
    let records = py
        .detach(|| {
            crate::worklist_for_groups(&keys, &groups, &shared, as_of, config)
                .map(|rows| crate::worklist_records(&rows))
        })
        .map_err(err)?;
    let mut columns: Vec<Vec<Option<String>>> = (0..WORKLIST_COLUMNS.len())
        .map(|_| Vec::with_capacity(records.len()))
        .collect();
    let mut rank = Vec::with_capacity(records.len());
    let mut patient_rank = Vec::with_capacity(records.len());
    for r in records {
        patient_rank.push(r.patient_rank);
        for (c, v) in columns.iter_mut().zip(r.fields) {
            c.push((!v.is_empty()).then_some(v));
        }
        rank.push(r.severity_rank);
    }
    let d = PyDict::new(py);
    for (name, c) in WORKLIST_COLUMNS.iter().zip(columns) {
        d.set_item(*name, c)?;
    }
    d.set_item("_severity_rank", rank)?;
    d.set_item("_patient_rank", patient_rank)?;
    Ok(d)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(assess_json, m)?)?;
    m.add_function(wrap_pyfunction!(is_relevant, m)?)?;
    m.add_function(wrap_pyfunction!(classify_lines, m)?)?;
    m.add_function(wrap_pyfunction!(worklist_batch, m)?)?;
    m.add("WORKLIST_COLUMNS", WORKLIST_COLUMNS.to_vec())?;
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

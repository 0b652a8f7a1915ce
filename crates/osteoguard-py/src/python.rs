//! The Python module `osteoguard._native` (compiled only with the `extension-module` feature).
//! The public Python API is `python/osteoguard/__init__.py`, which wraps these functions.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::{LineAction, PyEngineError, WORKLIST_COLUMNS};

pyo3::create_exception!(
    osteoguard,
    InputError,
    PyValueError,
    "Input that osteoguard screen refuses too (a line that is not JSON): `file:line:column: …`."
);

fn err(e: PyEngineError) -> PyErr {
    match e {
        e @ PyEngineError::BadLine { .. } => InputError::new_err(e.to_string()),
        e => PyValueError::new_err(e.to_string()),
    }
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

// ---------------------------------------------------------------------------------------------
// Arrow buffers in and out (the Spark job: no Python code per line)
// ---------------------------------------------------------------------------------------------

/// A `utf8` / `large_utf8` array as `(offsets, data, validity, offset, len, large)`.
type StrBufs<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>, usize, usize, bool);
fn str_array<'a>(b: StrBufs<'a>) -> Result<crate::arrow::StrArray<'a>, PyEngineError> {
    let (offsets, data, validity, offset, len, large) = b;
    crate::arrow::StrArray::new(
        crate::arrow::Offsets::new(offsets, large),
        data,
        validity,
        offset,
        len,
    )
}

/// One built column: `(name, kind, len, null_count, validity or None, values, data)`.
type ColumnOut<'py> = (
    String,
    &'static str,
    usize,
    usize,
    Option<Bound<'py, PyBytes>>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
);

fn columns_out<'py>(py: Python<'py>, cols: Vec<crate::arrow::Column>) -> Vec<ColumnOut<'py>> {
    cols.into_iter()
        .map(|c| {
            (
                c.name,
                c.kind,
                c.len,
                c.null_count,
                c.validity.map(|v| PyBytes::new(py, &v)),
                PyBytes::new(py, &c.values),
                PyBytes::new(py, &c.data),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The plan of few, large rows (`crate::blobs`)
// ---------------------------------------------------------------------------------------------

fn bin_array<'a>(b: StrBufs<'a>) -> Result<crate::arrow::BinArray<'a>, PyEngineError> {
    let (offsets, data, validity, offset, len, large) = b;
    crate::arrow::BinArray::new(
        crate::arrow::Offsets::new(offsets, large),
        data,
        validity,
        offset,
        len,
    )
}

/// Routes the lines of a file that start in `[start, end)` (`end=None`: to its end; a `.gz`
/// file whole) into one blob row per target partition: `(columns, counts)`, the columns
/// `pkey, meds, lines, prev` (`pkeys[i]`: the Spark key of partition `i`).
#[pyfunction]
#[pyo3(signature = (path, start, end, pkeys, reader_filter=false))]
fn route_file_blobs<'py>(
    py: Python<'py>,
    path: &str,
    start: u64,
    end: Option<u64>,
    pkeys: Vec<i64>,
    reader_filter: bool,
) -> PyResult<(Vec<ColumnOut<'py>>, [u64; 7])> {
    let (cols, counts) = py
        .detach(|| {
            crate::blobs::route_range_blobs(
                std::path::Path::new(path),
                start,
                end,
                pkeys.len(),
                reader_filter,
            )?
            .finish(&pkeys)
        })
        .map_err(err)?;
    Ok((columns_out(py, cols), counts))
}

/// Routes the lines of a `utf8` array (a `spark.read.text` partition's batches, concatenated)
/// into blob rows: as `route_file_blobs`. `files`: the file of each line (`input_file_name()`),
/// named when a line is not JSON.
#[pyfunction]
#[pyo3(signature = (lines, pkeys, reader_filter=false, files=None))]
fn route_text_blobs<'py>(
    py: Python<'py>,
    lines: StrBufs<'_>,
    pkeys: Vec<i64>,
    reader_filter: bool,
    files: Option<StrBufs<'_>>,
) -> PyResult<(Vec<ColumnOut<'py>>, [u64; 7])> {
    let (cols, counts) = py
        .detach(|| {
            let arrays = [str_array(lines)?];
            let files = files.map(|f| str_array(f).map(|a| [a])).transpose()?;
            crate::blobs::route_arrays_blobs(
                &arrays,
                files.as_ref().map(|f| &f[..]),
                pkeys.len(),
                reader_filter,
            )?
            .finish(&pkeys)
        })
        .map_err(err)?;
    Ok((columns_out(py, cols), counts))
}

/// The previous run's `(key, prev JSON)` rows (two `utf8` arrays) as blob rows.
#[pyfunction]
fn pack_previous<'py>(
    py: Python<'py>,
    keys: StrBufs<'_>,
    prev: StrBufs<'_>,
    pkeys: Vec<i64>,
) -> PyResult<Vec<ColumnOut<'py>>> {
    let cols = py
        .detach(|| crate::blobs::pack_previous(&str_array(keys)?, &str_array(prev)?, &pkeys))
        .map_err(err)?;
    Ok(columns_out(py, cols))
}

/// The worklist columns (`split::columns`) of one partition's blobs: `meds`, `lines`,
/// `prev` `binary` / `large_binary` arrays (the partition's batches, concatenated);
/// `prev_as_of` the previous run's as-of date with `--previous`.
#[pyfunction]
#[pyo3(signature = (meds, lines, prev, as_of, prev_as_of=None, config=None))]
fn worklist_blobs<'py>(
    py: Python<'py>,
    meds: StrBufs<'_>,
    lines: StrBufs<'_>,
    prev: StrBufs<'_>,
    as_of: &str,
    prev_as_of: Option<&str>,
    config: Option<&str>,
) -> PyResult<Vec<ColumnOut<'py>>> {
    let cols = py
        .detach(|| {
            let blobs = crate::blobs::PartitionBlobs {
                meds: vec![bin_array(meds)?],
                lines: vec![bin_array(lines)?],
                prev: vec![bin_array(prev)?],
            };
            let w = crate::blobs::worklist_of_blobs(&blobs, prev_as_of, as_of, config)?;
            crate::split::columns(&w)
        })
        .map_err(err)?;
    Ok(columns_out(py, cols))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(assess_json, m)?)?;
    m.add_function(wrap_pyfunction!(is_relevant, m)?)?;
    m.add_function(wrap_pyfunction!(classify_lines, m)?)?;
    m.add_function(wrap_pyfunction!(worklist_batch, m)?)?;
    m.add_function(wrap_pyfunction!(route_file_blobs, m)?)?;
    m.add_function(wrap_pyfunction!(route_text_blobs, m)?)?;
    m.add_function(wrap_pyfunction!(pack_previous, m)?)?;
    m.add_function(wrap_pyfunction!(worklist_blobs, m)?)?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("LINE_ACTIONS", crate::split::ACTIONS.to_vec())?;
    m.add("WORKLIST_COLUMNS", WORKLIST_COLUMNS.to_vec())?;
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

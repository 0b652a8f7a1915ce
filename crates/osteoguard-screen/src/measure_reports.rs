//! `screen --measures cms249,cms645`: the eCQM MeasureReports of a screened export, written
//! beside the worklists as `OUT/measure-reports/<measure>.json` (one FHIR `collection` Bundle per
//! measure: an `individual` MeasureReport per patient and the `summary`).
//!
//! The measures read resources the bone rules' first pass drops (Encounter, ServiceRequest,
//! dosage bounds…), so the export is read once more here by `osteoguard-measure`'s reader; the
//! patients' records are shared by every requested measure.

use std::path::{Path, PathBuf};

use osteoguard_measure::{evaluate, report, Measure, MeasureError, MeasurementPeriod, ValueSets};

/// What was written: one file per measure, and the records skipped by the reader.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    pub patients: usize,
    pub issues: Vec<String>,
}

fn io(path: &Path, e: std::io::Error) -> MeasureError {
    MeasureError::Input {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Evaluates `measures` over the export and writes their MeasureReport Bundles under
/// `out/measure-reports/` (each file written to a temporary name, then renamed).
pub fn write(
    export_dir: &Path,
    out: &Path,
    measures: &[Measure],
    period: &MeasurementPeriod,
) -> Result<Written, MeasureError> {
    let read = osteoguard_measure::input::read_records(export_dir)?;
    let dir = out.join("measure-reports");
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let mut written = Written {
        patients: read.records.len(),
        issues: read.issues,
        ..Written::default()
    };
    for &m in measures {
        let vs = ValueSets::embedded(m)?;
        let results: Vec<_> = read
            .records
            .iter()
            .map(|r| evaluate(m, r, &vs, period))
            .collect();
        let bundle = report::bundle(m, &results, period);
        let text = serde_json::to_string_pretty(&bundle).map_err(|e| MeasureError::Input {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let path = dir.join(format!("{}.json", m.id()));
        let tmp = dir.join(format!(".{}.json.tmp", m.id()));
        std::fs::write(&tmp, text + "\n").map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        written.files.push(path);
    }
    Ok(written)
}

//! Reading FHIR JSON into per-patient [`Record`]s: a Bundle file, an NDJSON file (`.gz`
//! allowed), a FHIR Bulk Data export directory, or a directory tree of single-resource JSON
//! files (as in the eCQM test decks). Resources are de-duplicated by type, id and patient
//! (the decks hold every resource twice: in its patient folder and flattened at the top; ids
//! repeat across decks), and filed by their subject. A resource that does not parse is
//! skipped and reported, never fatal.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::{Record, Resource};
use crate::MeasureError;

/// Records by patient, and what was skipped (file or line, and why).
#[derive(Debug, Default)]
pub struct ReadOutput {
    pub records: Vec<Record>,
    pub issues: Vec<String>,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
struct BundleEntries {
    #[serde(default)]
    entry: Vec<BundleEntry>,
}

#[derive(Deserialize)]
struct BundleEntry {
    resource: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Default)]
struct Collector {
    seen: HashSet<String>,
    by_patient: BTreeMap<String, Record>,
    has_patient: HashSet<String>,
    issues: Vec<String>,
}

impl Collector {
    fn add_json(&mut self, text: &str, origin: &dyn Fn() -> String) {
        let probe: Probe = match serde_json::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                self.issues.push(format!("{}: not JSON: {e}", origin()));
                return;
            }
        };
        match probe.resource_type.as_deref() {
            Some("Bundle") => {
                let b: BundleEntries = match serde_json::from_str(text) {
                    Ok(b) => b,
                    Err(e) => {
                        self.issues.push(format!("{}: Bundle: {e}", origin()));
                        return;
                    }
                };
                for (i, e) in b.entry.iter().enumerate() {
                    if let Some(r) = &e.resource {
                        self.add_json(r.get(), &|| format!("{} entry {i}", origin()));
                    }
                }
            }
            Some(t) => match serde_json::from_str::<Resource>(text) {
                Ok(Resource::Other) => {}
                Ok(r) => {
                    // A resource read twice (same type, id and patient) is filed once.
                    if let (Some(id), Some(pid)) = (probe.id.as_deref(), r.subject_id()) {
                        let key = format!("{t}/{id}|{pid}");
                        if !self.seen.insert(key) {
                            return;
                        }
                    }
                    self.file(r, origin)
                }
                Err(e) => self.issues.push(format!("{}: {t}: {e}", origin())),
            },
            None => self.issues.push(format!("{}: no resourceType", origin())),
        }
    }

    fn file(&mut self, r: Resource, origin: &dyn Fn() -> String) {
        let Some(pid) = r.subject_id().map(str::to_string) else {
            self.issues.push(format!("{}: no subject", origin()));
            return;
        };
        if matches!(r, Resource::Patient(_)) {
            self.has_patient.insert(pid.clone());
        }
        self.by_patient.entry(pid).or_default().push(r);
    }

    fn add_file(&mut self, path: &Path) -> Result<(), MeasureError> {
        let name = path.to_string_lossy().to_string();
        let bytes = std::fs::read(path).map_err(|e| MeasureError::Input {
            path: name.clone(),
            message: e.to_string(),
        })?;
        let bytes = if name.ends_with(".gz") {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| MeasureError::Input {
                    path: name.clone(),
                    message: e.to_string(),
                })?;
            out
        } else {
            bytes
        };
        let text = String::from_utf8_lossy(&bytes);
        let stem = name.trim_end_matches(".gz");
        if stem.ends_with(".ndjson") {
            for (i, line) in text.lines().enumerate() {
                if !line.trim().is_empty() {
                    self.add_json(line, &|| format!("{name}:{}", i + 1));
                }
            }
        } else {
            self.add_json(&text, &|| name.clone());
        }
        Ok(())
    }

    fn finish(mut self) -> ReadOutput {
        let mut records = Vec::new();
        for (pid, mut rec) in std::mem::take(&mut self.by_patient) {
            if self.has_patient.contains(&pid) {
                rec.patient.id = pid;
                records.push(rec);
            } else {
                self.issues
                    .push(format!("Patient/{pid}: referenced but no Patient resource"));
            }
        }
        ReadOutput {
            records,
            issues: self.issues,
        }
    }
}

fn fhir_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), MeasureError> {
    let rd = std::fs::read_dir(dir).map_err(|e| MeasureError::Input {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            fhir_files(&p, out)?;
        } else {
            let n = p.to_string_lossy();
            let n = n.trim_end_matches(".gz");
            if n.ends_with(".json") || n.ends_with(".ndjson") {
                out.push(p);
            }
        }
    }
    Ok(())
}

/// Reads a file or a directory tree into records, one per Patient resource.
pub fn read_records(path: &Path) -> Result<ReadOutput, MeasureError> {
    let mut c = Collector::default();
    if path.is_dir() {
        let mut files = Vec::new();
        fhir_files(path, &mut files)?;
        for f in files {
            c.add_file(&f)?;
        }
    } else {
        c.add_file(path)?;
    }
    Ok(c.finish())
}

/// Reads records from JSON text already in memory (a Bundle or one resource).
pub fn records_from_json(text: &str) -> ReadOutput {
    let mut c = Collector::default();
    c.add_json(text, &|| "input".to_string());
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_filed_once_but_equal_ids_of_other_patients_are_kept() {
        let bundle = r#"{"resourceType":"Bundle","entry":[
          {"resource":{"resourceType":"Patient","id":"a"}},
          {"resource":{"resourceType":"Patient","id":"b"}},
          {"resource":{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/a"}}},
          {"resource":{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/a"}}},
          {"resource":{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/b"}}},
          {"resource":{"resourceType":"Encounter","id":"e","subject":{"reference":"Patient/nobody"}}},
          {"resource":{"resourceType":"Condition","id":"bad","onsetDateTime":42,"subject":{"reference":"Patient/a"}}}
        ]}"#;
        let out = records_from_json(bundle);
        let n: Vec<(String, usize)> = out
            .records
            .iter()
            .map(|r| (r.patient.id.clone(), r.conditions.len()))
            .collect();
        assert_eq!(n, vec![("a".to_string(), 1), ("b".to_string(), 1)]);
        // The orphan Encounter and the unreadable Condition are reported, not fatal.
        assert_eq!(out.issues.len(), 2, "{:?}", out.issues);
    }
}

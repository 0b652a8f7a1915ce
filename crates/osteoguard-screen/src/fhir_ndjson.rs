//! `screen --format fhir`: every patient's assessment as FHIR R4 resources, one resource per
//! line, in `OUT/findings.fhir.ndjson` (issue 18; docs/fhir-output.md).
//!
//! The resources are those of `assess --format fhir` ([`osteoguard_report::fhir::resources`]:
//! per finding a DetectedIssue, per task a Task, one RiskAssessment, all authored by the
//! osteoguard Device) — no second mapping. Two things differ, because one file holds the whole
//! population:
//!
//! * the **Device** is written once, as the file's first line (it is the same for every
//!   patient: the engine, its version and the provenance tags of the run's configuration);
//! * the other resources' **ids are scoped by the patient** (`<patient id>-<assess id>`, e.g.
//!   `p1-1-hip-fracture-untreated`), and a Task's `reasonReference` follows its DetectedIssue:
//!   assess's ids (`1-<code>`, `fracture-risk`) repeat from patient to patient, and a Bulk
//!   Data NDJSON file (a FHIR server's `$import`) needs one id per resource. When
//!   `<patient id>-` would not leave the id within FHIR's 64 characters, or the patient id
//!   holds characters an id may not, the prefix is `h` and the 16 hex digits of the patient
//!   id's FNV-1a hash instead.
//!
//! Bounded memory like the worklists: pass 2 keeps one shard's resources (as text), writes
//! them sorted by patient id to a run file beside the worklist runs ([`ShardResources`]), and
//! [`merge`] streams the runs into the file. Order: the Device, then patients by id (bytewise),
//! each patient's resources in assess's Bundle order — the same bytes whatever `--jobs` or the
//! shard count. `--min-severity` does not apply: a patient's resources are its whole assessment
//! (a Task's `reasonReference` must find its DetectedIssue).

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use osteoguard_core::Assessment;
use serde_json::Value;

use crate::output::Pending;
use crate::ScreenError;

/// The output file's name in the output directory.
pub const FILE_NAME: &str = "findings.fhir.ndjson";

/// The run file of shard `i` (beside the worklist runs in the run's temporary directory).
pub fn run_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("fhir-{i:04}.ndjson"))
}

/// FHIR's longest id.
const MAX_ID: usize = 64;

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// The prefix that scopes a patient's resource ids (see the module doc).
fn id_prefix(patient_id: &str, longest: usize) -> String {
    if !patient_id.is_empty()
        && patient_id.chars().all(id_char)
        && patient_id.len() + 1 + longest <= MAX_ID
    {
        format!("{patient_id}-")
    } else {
        format!("h{:016x}-", crate::pass1::fnv1a(patient_id.as_bytes()))
    }
}

/// `resources` (assess's, without the Device) with ids scoped by the patient.
pub fn scoped(patient_id: &str, mut resources: Vec<Value>) -> Vec<Value> {
    let longest = resources
        .iter()
        .filter_map(|r| r["id"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0);
    let prefix = id_prefix(patient_id, longest);
    let scope = |id: &str| {
        let mut s = format!("{prefix}{id}");
        s.truncate(MAX_ID);
        s
    };
    for r in &mut resources {
        if let Some(id) = r["id"].as_str() {
            r["id"] = Value::String(scope(id));
        }
        if let Some(reason) = r
            .pointer("/reasonReference/reference")
            .and_then(Value::as_str)
        {
            if let Some(id) = reason.strip_prefix("DetectedIssue/") {
                r["reasonReference"]["reference"] =
                    Value::String(format!("DetectedIssue/{}", scope(id)));
            }
        }
    }
    resources
}

/// One shard's resources, as text, until the shard is done.
#[derive(Debug, Default)]
pub struct ShardResources {
    device: Option<String>,
    /// (patient id, its resources: one JSON text a line).
    patients: Vec<(String, String)>,
}

fn internal(e: serde_json::Error) -> ScreenError {
    ScreenError::Internal(format!("FHIR resource: {e}"))
}

impl ShardResources {
    /// Adds one patient's resources.
    pub fn add(&mut self, patient_id: &str, a: &Assessment) -> Result<(), ScreenError> {
        let mut all = osteoguard_report::fhir::resources(a);
        let rest = if all.first().and_then(|r| r["resourceType"].as_str()) == Some("Device") {
            let rest = all.split_off(1);
            if self.device.is_none() {
                self.device = Some(serde_json::to_string(&all[0]).map_err(internal)?);
            }
            rest
        } else {
            all
        };
        let mut text = String::new();
        for r in scoped(patient_id, rest) {
            text.push_str(&serde_json::to_string(&r).map_err(internal)?);
            text.push('\n');
        }
        self.patients.push((patient_id.to_string(), text));
        Ok(())
    }

    /// Writes the run file: `key \t resource` lines sorted by key, the Device's key empty (it
    /// sorts first), the others' the patient id. A resource's JSON text holds no raw tab.
    pub fn write(mut self, path: &Path) -> Result<(), ScreenError> {
        self.patients.sort_by(|a, b| a.0.cmp(&b.0));
        let f = crate::fault::OutFile::create(path).map_err(|e| ScreenError::io(path, e))?;
        let mut w = BufWriter::new(f);
        let io = |e| ScreenError::io(path, e);
        if let Some(d) = &self.device {
            writeln!(w, "\t{d}").map_err(io)?;
        }
        for (pid, text) in &self.patients {
            for line in text.lines() {
                writeln!(w, "{pid}\t{line}").map_err(io)?;
            }
        }
        w.flush().map_err(io)
    }
}

struct Run {
    lines: std::io::Lines<BufReader<File>>,
    path: PathBuf,
}

impl Run {
    /// The next line as (key, resource text).
    fn next(&mut self) -> Result<Option<(String, String)>, ScreenError> {
        match self.lines.next() {
            None => Ok(None),
            Some(Err(e)) => Err(ScreenError::io(&self.path, e)),
            Some(Ok(l)) => match l.rsplit_once('\t') {
                Some((k, r)) => Ok(Some((k.to_string(), r.to_string()))),
                None => Err(ScreenError::Internal(format!(
                    "{}: a line without its key",
                    self.path.display()
                ))),
            },
        }
    }
}

/// Merges the shards' run files into `OUT/findings.fhir.ndjson` (written under a temporary
/// name; published with the other outputs). Memory: one line and an 8 KiB buffer per run.
pub fn merge(runs: &[PathBuf], out: &Path) -> Result<Pending, ScreenError> {
    let p = Pending::new(out.join(FILE_NAME));
    let mut w = p.create()?;
    let mut readers = Vec::with_capacity(runs.len());
    for path in runs {
        let file = File::open(path).map_err(|e| ScreenError::io(path, e))?;
        readers.push(Run {
            lines: BufReader::with_capacity(8 << 10, file).lines(),
            path: path.clone(),
        });
    }
    // (key, run index): a patient lives in one shard, so its lines stay together and in order.
    let mut heap = BinaryHeap::new();
    let mut heads = Vec::with_capacity(readers.len());
    for (i, r) in readers.iter_mut().enumerate() {
        let head = r.next()?;
        if let Some((k, _)) = &head {
            heap.push(std::cmp::Reverse((k.clone(), i)));
        }
        heads.push(head);
    }
    let mut device_written = false;
    while let Some(std::cmp::Reverse((_, i))) = heap.pop() {
        let Some((key, text)) = heads[i].take() else {
            continue;
        };
        let next = readers[i].next()?;
        if let Some((k, _)) = &next {
            heap.push(std::cmp::Reverse((k.clone(), i)));
        }
        heads[i] = next;
        if key.is_empty() {
            // Every shard's Device is the same resource: written once.
            if device_written {
                continue;
            }
            device_written = true;
        }
        w.write_all(text.as_bytes())
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| ScreenError::io(&p.tmp, e))?;
    }
    crate::output::finish(w, &p.tmp)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::{id_prefix, scoped};
    use serde_json::json;

    #[test]
    fn ids_are_scoped_by_the_patient_and_reason_references_follow() {
        let rs = vec![
            json!({"resourceType": "DetectedIssue", "id": "1-x"}),
            json!({"resourceType": "Task", "id": "task-1-t",
                   "reasonReference": {"reference": "DetectedIssue/1-x"}}),
        ];
        let out = scoped("p1", rs);
        assert_eq!(out[0]["id"], "p1-1-x");
        assert_eq!(out[1]["id"], "p1-task-1-t");
        assert_eq!(
            out[1]["reasonReference"]["reference"],
            "DetectedIssue/p1-1-x"
        );
    }

    #[test]
    fn a_long_or_odd_patient_id_gives_a_hashed_prefix_within_64_characters() {
        let long = "a".repeat(64);
        let p = id_prefix(&long, 40);
        assert!(p.starts_with('h') && p.len() == 18, "{p}");
        assert_ne!(id_prefix("a_b", 10), id_prefix("a-b", 10));
        assert_eq!(id_prefix("a-b", 10), "a-b-");
        let out = scoped(&long, vec![json!({"id": "x".repeat(60)})]);
        assert_eq!(out[0]["id"].as_str().map(str::len), Some(64));
    }
}

//! The export's Bulk Data `manifest.json` (FHIR Bulk Data Access, complete-status response) and
//! the refusal of inputs that are not an export.
//!
//! With a manifest, screening reads exactly the files of its `output` list (a listed file that is
//! missing is an error), reports the `error` files (OperationOutcome NDJSON) in `summary.json`
//! and on the terminal, and records `transactionTime` in the registry.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ScreenError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    transaction_time: Option<String>,
    #[serde(default)]
    output: Vec<Entry>,
    #[serde(default)]
    error: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default, rename = "type")]
    ty: Option<String>,
    url: String,
}

/// What `summary.json` says of the manifest.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSummary {
    pub path: String,
    pub transaction_time: Option<String>,
    /// The `output` files read.
    pub output_files: Vec<String>,
    pub error_files: Vec<ErrorFile>,
}

/// One `error` file of the manifest and what its OperationOutcomes say.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorFile {
    pub file: String,
    /// OperationOutcome resources in it.
    pub outcomes: u64,
    /// Their issues (`severity code: diagnostics`), the first [`ISSUES_QUOTED`].
    pub issues: Vec<String>,
    /// The file could not be read (missing, not NDJSON …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// How many issues per error file `summary.json` quotes.
pub const ISSUES_QUOTED: usize = 10;

/// Longest error file read (OperationOutcomes are small; a huge one is not read whole).
const MAX_ERROR_FILE: u64 = 16 << 20;

/// The manifest of an export directory and the files it lists, when it has one.
pub struct Manifest {
    pub summary: ManifestSummary,
    pub files: Vec<PathBuf>,
}

/// Where a manifest `url` is in the local export: the last path segment, in the directory.
fn local(dir: &Path, url: &str) -> PathBuf {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    dir.join(name)
}

/// Reads `dir/manifest.json` when present.
pub fn read(dir: &Path) -> Result<Option<Manifest>, ScreenError> {
    let path = dir.join("manifest.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read(&path).map_err(|e| ScreenError::Input(format!("{}: {e}", path.display())))?;
    let raw: Raw = serde_json::from_slice(&text).map_err(|e| {
        ScreenError::Input(format!(
            "{}: not a Bulk Data manifest (expected transactionTime, output, error): {e}",
            path.display()
        ))
    })?;
    let mut files = Vec::new();
    for o in &raw.output {
        let p = local(dir, &o.url);
        if !p.is_file() {
            return Err(ScreenError::Input(format!(
                "{}: output file {} ({}) is listed but {} is not a file",
                path.display(),
                o.url,
                o.ty.as_deref().unwrap_or("no type"),
                p.display()
            )));
        }
        if !files.contains(&p) {
            files.push(p);
        }
    }
    let error_files = raw
        .error
        .iter()
        .map(|e| error_file(&local(dir, &e.url)))
        .collect();
    Ok(Some(Manifest {
        summary: ManifestSummary {
            path: path.display().to_string(),
            transaction_time: raw.transaction_time,
            output_files: files.iter().map(|p| p.display().to_string()).collect(),
            error_files,
        },
        files,
    }))
}

fn error_file(p: &Path) -> ErrorFile {
    let mut ef = ErrorFile {
        file: p.display().to_string(),
        ..ErrorFile::default()
    };
    let mut text = Vec::new();
    let read = std::fs::File::open(p).and_then(|f| {
        let gz = p.to_string_lossy().ends_with(".gz");
        let limited = f.take(MAX_ERROR_FILE);
        if gz {
            flate2::read::MultiGzDecoder::new(limited)
                .take(MAX_ERROR_FILE)
                .read_to_end(&mut text)
        } else {
            let mut l = limited;
            l.read_to_end(&mut text)
        }
    });
    if let Err(e) = read {
        ef.unreadable = Some(e.to_string());
        return ef;
    }
    for line in text.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            ef.unreadable = Some("a line is not JSON".into());
            continue;
        };
        ef.outcomes += 1;
        for i in v
            .get("issue")
            .and_then(|x| x.as_array())
            .into_iter()
            .flatten()
        {
            if ef.issues.len() >= ISSUES_QUOTED {
                break;
            }
            let s = |k: &str| i.get(k).and_then(|x| x.as_str()).unwrap_or("");
            let text = i
                .get("diagnostics")
                .and_then(|x| x.as_str())
                .or_else(|| {
                    i.get("details")
                        .and_then(|d| d.get("text"))
                        .and_then(|x| x.as_str())
                })
                .unwrap_or("");
            ef.issues.push(
                format!("{} {}: {}", s("severity"), s("code"), text)
                    .chars()
                    .take(300)
                    .collect(),
            );
        }
    }
    ef
}

/// What a file given where an export directory is expected looks like (for the refusal).
pub fn describe_file(p: &Path) -> String {
    let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut head = Vec::new();
    let _ = std::fs::File::open(p).and_then(|f| f.take(1 << 20).read_to_end(&mut head));
    let text = String::from_utf8_lossy(&head);
    let ty = text.find("\"resourceType\"").and_then(|i| {
        let rest = text[i + "\"resourceType\"".len()..].trim_start();
        let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
        rest.split('"').next().map(str::to_string)
    });
    match ty {
        Some(t) => format!("a file of {size} bytes holding a FHIR {t} (screen a Bulk Data export directory; `osteoguard assess` reads one Bundle)"),
        None => format!("a file of {size} bytes with no FHIR resourceType in its first MiB"),
    }
}

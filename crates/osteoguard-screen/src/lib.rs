//! # osteoguard-screen — population screening and a synthetic population generator
//!
//! `osteoguard screen EXPORT_DIR --as-of DATE --out DIR` reads a FHIR Bulk Data export (one
//! NDJSON(.gz) file per resource type), assesses every patient with `osteoguard_core` at the
//! as-of date and writes a worklist (`worklist.csv`, `worklist.json`, `worklist.html`), a
//! `summary.json`, and records the run in a SQLite registry (new / persisting / resolved
//! findings since the previous run). See docs/screen.md.
//!
//! ## Design: a two-pass, disk-partitioned join (bounded memory)
//!
//! The resources of one patient are spread over every type file, so screening is a join by
//! patient. Holding the export in memory grows with the population; sorting it externally costs
//! several passes. Instead:
//!
//! 1. **Pass 1** ([`pass1`]) streams each line once, peeks at `resourceType`, the patient
//!    reference and the codes with a narrow borrowed serde struct ([`route`]) — no
//!    `serde_json::Value` is built — drops what no rule reads (counted as ignored), and appends
//!    the raw line to shard `fnv1a(patient) % S` on disk.
//! 2. **Pass 2** ([`pass2`]) evaluates shards in parallel (rayon, `--jobs`): a shard is read
//!    whole, grouped by patient, parsed, read by `osteoguard_fhir` and assessed; its rows are
//!    sorted and written as a run file.
//! 3. **Merge** ([`output`]): a k-way merge of the S sorted runs streams the rows into the
//!    worklists and the registry.
//!
//! *Memory bound:* `S` is chosen so that a shard holds at most `--shard-mb` (default 64 MB) of
//! *input* bytes (`S = max(4·jobs, ⌈input / shard-mb⌉)`, at most 1024). Peak memory is about
//! `jobs × (shard bytes + parsed resources of one patient)` in pass 2, `jobs × (2 chunks of
//! 4 MiB + 4 MiB of shard buffers)` in pass 1 and one row plus an 8 KiB buffer per shard in the merge — none of which
//! grows with the number of patients. The one exception is the `Medication` resources
//! referenced by `medicationReference` (they belong to no patient): they are held in memory,
//! which grows with the size of the formulary, not of the population.

pub mod fault;
pub mod fhir_ndjson;
pub mod manifest;
pub mod measure_reports;
pub mod output;
pub mod pass1;
pub mod pass2;
pub mod progress;
pub mod route;
pub mod scan;
pub mod synth;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::NaiveDate;
use osteoguard_core::{Config, Severity};
use rayon::prelude::*;
use serde::Serialize;

pub use output::Format;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MinSeverity {
    Info,
    Moderate,
    High,
    Critical,
}

impl MinSeverity {
    pub fn severity(self) -> Severity {
        match self {
            MinSeverity::Info => Severity::Info,
            MinSeverity::Moderate => Severity::Moderate,
            MinSeverity::High => Severity::High,
            MinSeverity::Critical => Severity::Critical,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ScreenArgs {
    /// FHIR Bulk Data export directory (NDJSON or NDJSON.gz, one file per resource type).
    pub export_dir: PathBuf,
    /// Evaluation date (YYYY-MM-DD).
    #[arg(long)]
    pub as_of: String,
    /// Output directory (created if absent).
    #[arg(long)]
    pub out: PathBuf,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Worklist formats to write (summary.json is always written).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Format::Csv, Format::Json, Format::Html, Format::Xlsx])]
    pub format: Vec<Format>,
    /// Only list findings of at least this severity in the worklists (the registry keeps all).
    #[arg(long, value_enum, default_value_t = MinSeverity::Info)]
    pub min_severity: MinSeverity,
    /// SQLite registry of runs (default: OUT/registry.sqlite).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Site configuration (TOML): threshold overrides, switched-off findings.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Input bytes per shard (memory per worker in pass 2 is at most about this).
    #[arg(long, default_value_t = 64)]
    pub shard_mb: u64,
    /// Longest NDJSON line (one resource) read, in MiB: a longer one is an error naming the file
    /// and line (a 3 GB line must not be read into memory).
    #[arg(long, default_value_t = DEFAULT_MAX_LINE_MIB)]
    pub max_line_mb: u64,
    /// Accept an export in which no Patient resource is found (exit 0 with an empty worklist);
    /// without it such an export is refused with exit 2.
    #[arg(long)]
    pub allow_empty: bool,
    /// Start worklist.csv with a UTF-8 byte-order mark, so that Excel reads "≥", "—" and
    /// accented names right (off by default: RFC 4180 tools read the file as it is).
    #[arg(long)]
    pub csv_excel: bool,
}

/// The default of `--max-line-mb` (`osteoguard_fhir::ReadLimits::DEFAULT_MAX_LINE_BYTES`).
pub const DEFAULT_MAX_LINE_MIB: u64 = osteoguard_fhir::ReadLimits::DEFAULT_MAX_LINE_BYTES >> 20;

impl ScreenArgs {
    /// Arguments with the defaults of the command line.
    pub fn new(export_dir: impl Into<PathBuf>, as_of: &str, out: impl Into<PathBuf>) -> Self {
        ScreenArgs {
            export_dir: export_dir.into(),
            as_of: as_of.to_string(),
            out: out.into(),
            jobs: None,
            format: vec![Format::Csv, Format::Json, Format::Html, Format::Xlsx],
            min_severity: MinSeverity::Info,
            db: None,
            config: None,
            quiet: true,
            shard_mb: 64,
            max_line_mb: DEFAULT_MAX_LINE_MIB,
            allow_empty: false,
            csv_excel: false,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    /// Number of patients.
    #[arg(long)]
    pub patients: u64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// The as-of date the scenarios are built for (screen with the same date).
    #[arg(long, default_value = synth::DEFAULT_AS_OF)]
    pub as_of: String,
    /// Filler lines (Encounters, vital-sign Observations, routine Procedures) per patient, on average.
    #[arg(long, default_value_t = 30)]
    pub filler: u32,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("{0}")]
    Usage(String),
    /// Input that cannot be read as it is (a line over the limit, not a regular file, a line
    /// that is not JSON): exit 2, like `assess`.
    #[error("{0}")]
    Input(String),
    /// A line of a pass-1 chunk that cannot be read, `at` bytes into the chunk; `message` starts
    /// with the column (turned into [`ScreenError::Input`] `file:line:column: …` by the reader
    /// of the chunk).
    #[error("byte {at} of a chunk: {message}")]
    BadLine { at: u64, message: String },
    /// The cause is in the message, not also a `source` (a printed chain would repeat it).
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("registry: {0}")]
    Registry(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ScreenError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ScreenError::Io {
            path: path.display().to_string(),
            cause: source,
        }
    }
}

/// Timings of one run, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub pass1_ms: u64,
    pub pass2_ms: u64,
    pub merge_ms: u64,
    pub total_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCounts {
    pub new: u64,
    pub persisting: u64,
    pub resolved: u64,
    pub escalated: u64,
    pub de_escalated: u64,
    pub recheck_needed: u64,
}

impl StatusCounts {
    fn count(&mut self, status: &str) {
        match status {
            "persisting" => self.persisting += 1,
            "escalated" => self.escalated += 1,
            "de-escalated" => self.de_escalated += 1,
            "resolved" => self.resolved += 1,
            "recheck-needed" => self.recheck_needed += 1,
            _ => self.new += 1,
        }
    }
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub schema: &'static str,
    pub run_id: i64,
    pub previous_run_id: Option<i64>,
    pub as_of: NaiveDate,
    pub export_dir: String,
    pub jobs: usize,
    pub shards: usize,
    pub min_severity: Severity,
    pub patients_read: u64,
    pub patients_with_findings: u64,
    /// Rows in the worklists (after `--min-severity`).
    pub worklist_rows: u64,
    /// All findings (every severity), by code and by severity.
    pub findings_by_code: BTreeMap<String, u64>,
    pub findings_by_severity: BTreeMap<String, u64>,
    pub risk_categories: BTreeMap<String, u64>,
    pub status: StatusCounts,
    /// The export's Bulk Data manifest, when it has one (its error files are listed here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<manifest::ManifestSummary>,
    pub resources: ResourceSummary,
    pub timings: Timings,
    pub provenance: osteoguard_core::Provenance,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSummary {
    pub lines: u64,
    pub bytes: u64,
    /// Lines kept for evaluation.
    pub kept: u64,
    /// Lines of types or codes no rule reads (pass 1).
    pub ignored: u64,
    /// Lines a rule could read but without a usable patient reference.
    pub unattached: u64,
    pub not_fhir_lines: u64,
    /// Kept resources the reader could not understand.
    pub not_understood: u64,
    pub resources_without_patient: u64,
    pub unparsable_lines: u64,
    pub medication_resources: u64,
    pub by_type: BTreeMap<String, pass1::LineCounts>,
    /// `.json` files of the export directory that screening does not read (manifests …).
    pub skipped_files: Vec<String>,
    /// What the FHIR reader did with the kept resources.
    pub reader_by_type: BTreeMap<String, pass2::ReaderCounts>,
    /// Patients whose own record has a problem (two Patient resources that disagree, none at
    /// all …): listed in their worklist rows' `dataQuality` too.
    pub patients_with_record_issues: u64,
    /// The first of those problems (`Patient/<id> field: problem`, sorted).
    pub record_issue_examples: Vec<String>,
}

pub const SUMMARY_SCHEMA: &str = "osteoguard.screen-summary/1";

/// Shard count for an input of `bytes` (see the crate doc).
pub fn shard_count(bytes: u64, shard_mb: u64, jobs: usize) -> usize {
    let target = shard_mb.max(1) * 1_000_000;
    let by_size = bytes.div_ceil(target) as usize;
    by_size.max(4 * jobs.max(1)).clamp(1, 1024)
}

/// Removes temporary directories and files left by runs that were killed (their process is gone).
fn clean_stale(out: &Path) {
    if !Path::new("/proc/self").exists() {
        return; // cannot tell whether the owner is alive
    }
    let Ok(rd) = std::fs::read_dir(out) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = if let Some(rest) = name.strip_prefix(".screen-tmp-") {
            rest.split('-').next().map(str::to_string)
        } else if name.starts_with('.') {
            name.rsplit_once(".tmp-").map(|(_, p)| p.to_string())
        } else {
            None
        };
        let Some(pid) = pid.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if Path::new("/proc").join(&pid).exists() {
            continue;
        }
        let p = e.path();
        let _ = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

/// Test hook (used by tests/screen.rs to SIGKILL a run at a known phase): sleep this long
/// before each shard of pass 2.
fn test_delay() -> Option<std::time::Duration> {
    std::env::var("OSTEOGUARD_SCREEN_TEST_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis)
}

/// Runs a screening; returns the summary (also written to `summary.json`).
pub fn run_screen(args: &ScreenArgs) -> Result<Summary, ScreenError> {
    run(args).map_err(|e| fault::name_registry(args, e))
}

fn run(args: &ScreenArgs) -> Result<Summary, ScreenError> {
    let t0 = Instant::now();
    let as_of = NaiveDate::parse_from_str(&args.as_of, "%Y-%m-%d").map_err(|e| {
        ScreenError::Usage(format!(
            "--as-of {:?}: expected a calendar date YYYY-MM-DD ({e})",
            args.as_of
        ))
    })?;
    let config = match &args.config {
        None => Config::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ScreenError::io(p, e))?;
            Config::from_toml_str_allowing(&text, &["server", "screen"])
                .map_err(|e| ScreenError::Usage(format!("{}: {e}", p.display())))?
        }
    };
    let (files, manifest) = export_files(&args.export_dir)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    std::fs::create_dir_all(&args.out).map_err(|e| ScreenError::io(&args.out, e))?;
    clean_stale(&args.out);
    let progress = progress::Progress::new(args.quiet);
    let skipped: Vec<PathBuf> = pass1::skipped_files(&args.export_dir)
        .into_iter()
        .chain(
            pass1::input_files(&args.export_dir)
                .unwrap_or_default()
                .into_iter()
                .filter(|f| !files.contains(f)),
        )
        .collect();
    for p in &skipped {
        progress.log(&format!(
            "not read (not NDJSON, or not in the manifest's output list): {}",
            p.display()
        ));
    }
    if let Some(m) = &manifest {
        for e in &m.summary.error_files {
            // Counts and codes only on the terminal: the diagnostics may name patients.
            progress.warn(&format!(
                "the export's manifest lists an error file: {} ({} OperationOutcome{}{}) — see summary.json",
                e.file,
                e.outcomes,
                if e.outcomes == 1 { "" } else { "s" },
                e.unreadable
                    .as_ref()
                    .map(|u| format!("; unreadable: {u}"))
                    .unwrap_or_default()
            ));
        }
    }
    let n_shards = shard_count(pass1::estimated_bytes(&files), args.shard_mb, jobs);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".screen-tmp-{}-", std::process::id()))
        .tempdir_in(&args.out)
        .map_err(|e| ScreenError::io(&args.out, e))?;

    // Pass 1.
    let max_line = osteoguard_fhir::ReadLimits::with_max_line_mib(args.max_line_mb).max_line_bytes;
    let (shards, p1) = pass1::partition(&files, tmp.path(), n_shards, jobs, max_line, &progress)?;
    let t1 = Instant::now();
    let meds = pass2::MedicationStore::load(&shards.medications)?;

    // The registry: opened (and migrated) before pass 2, which reads each patient's findings of
    // the previous run to decide the statuses (osteoguard_core::follow_up).
    let db_path = args
        .db
        .clone()
        .unwrap_or_else(|| args.out.join("registry.sqlite"));
    let provenance = config.provenance();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let export_str = args.export_dir.display().to_string();
    let registry = output::Registry::open(
        &db_path,
        &output::RunInfo {
            started_unix,
            as_of: &args.as_of,
            export_dir: &export_str,
            config_hash: &provenance.config_hash,
            transaction_time: manifest
                .as_ref()
                .and_then(|m| m.summary.transaction_time.as_deref()),
            manifest_errors: manifest
                .as_ref()
                .map_or(0, |m| m.summary.error_files.len() as u64),
        },
    )?;
    let previous = match (registry.previous, registry.previous_as_of) {
        (Some(run_id), Some(as_of)) => Some(pass2::PreviousRun {
            db: db_path.clone(),
            run_id,
            as_of,
        }),
        _ => None,
    };

    // Pass 2.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| ScreenError::Internal(e.to_string()))?;
    progress.start_pass2(n_shards as u64);
    let done = AtomicU64::new(0);
    let patients_done = AtomicU64::new(0);
    let delay = test_delay();
    let runs: Vec<PathBuf> = (0..n_shards)
        .map(|i| pass2::run_path(tmp.path(), i))
        .collect();
    let fhir_runs: Option<Vec<PathBuf>> = args.format.contains(&Format::Fhir).then(|| {
        (0..n_shards)
            .map(|i| fhir_ndjson::run_path(tmp.path(), i))
            .collect()
    });
    let results: Vec<Result<pass2::Pass2Stats, ScreenError>> = pool.install(|| {
        shards
            .paths
            .par_iter()
            .zip(runs.par_iter())
            .enumerate()
            .map(|(i, (shard, run))| {
                if let Some(d) = delay {
                    std::thread::sleep(d);
                }
                let fhir_run = fhir_runs.as_ref().map(|r| r[i].as_path());
                let s = pass2::evaluate_shard(
                    shard,
                    run,
                    &meds,
                    as_of,
                    &config,
                    previous.as_ref(),
                    fhir_run,
                )?;
                // The shard is no longer needed: free the disk early.
                let _ = std::fs::remove_file(shard);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                let p = patients_done.fetch_add(s.patients, Ordering::Relaxed) + s.patients;
                progress.tick_pass2(n, n_shards as u64, p);
                Ok(s)
            })
            .collect()
    });
    progress.finish_bar();
    let mut p2 = pass2::Pass2Stats::default();
    for r in results {
        p2.merge(r?);
    }
    let t2 = Instant::now();
    progress.log(&format!(
        "pass 2 done: {} patients, {} with findings",
        p2.patients, p2.patients_with_findings
    ));

    // Patient resources read (the reader also makes placeholder patients of resources whose
    // Patient is missing: those alone are not a population).
    let patient_lines = p1.by_type.get("Patient").map_or(0, |c| c.read);
    if patient_lines == 0 && !args.allow_empty {
        return Err(ScreenError::Input(format!(
            "{}: no Patient resource found ({}); nothing to screen — pass --allow-empty to \
             accept an empty export",
            args.export_dir.display(),
            found(&files, &p1)
        )));
    }

    // Merge into the worklists and the registry.
    let min = args.min_severity.severity();
    let header = serde_json::json!({
        "schema": "osteoguard.worklist/1",
        "runId": registry.run_id,
        "previousRunId": registry.previous,
        "asOf": as_of,
        "minSeverity": min,
        "provenance": provenance,
    });
    let want = |f: Format| args.format.contains(&f);
    let xlsx = want(Format::Xlsx).then(|| {
        output::XlsxOut::new(
            output::Pending::new(args.out.join("worklist.xlsx")),
            &format!("as of {as_of} · run {}", registry.run_id),
        )
    });
    let xlsx = xlsx.transpose()?;
    let csv = want(Format::Csv)
        .then(|| {
            output::CsvOut::new(
                output::Pending::new(args.out.join("worklist.csv")),
                args.csv_excel,
            )
        })
        .transpose()?;
    let json = want(Format::Json)
        .then(|| {
            output::JsonOut::new(
                output::Pending::new(args.out.join("worklist.json")),
                &header,
            )
        })
        .transpose()?;
    let html = want(Format::Html)
        .then(|| {
            output::HtmlOut::new(
                output::Pending::new(args.out.join("worklist.html")),
                &format!("osteoguard worklist — as of {as_of}"),
                &format!(
                    "run {} · {} patients · export {} · engine {} · config {}",
                    registry.run_id,
                    p2.patients,
                    export_str,
                    provenance.engine_version,
                    provenance.config_hash
                ),
            )
        })
        .transpose()?;
    let merge_delay = std::env::var("OSTEOGUARD_SCREEN_TEST_MERGE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis);
    // A pipeline of threads: this one merges the runs; the recorder inserts each row into the
    // registry (which decides new / persisting); one writer per worklist format formats it.
    // Why: the merge comes after pass 2, when every core is free, and one thread doing it all
    // was a serial tail of ~15 % of the run (one writer for all three formats was still the
    // slowest stage). Rows travel in batches (a hand-over per row woke a thread per row and
    // channel). The channels are FIFO, so the files keep worklist order.
    let (merged_tx, merged_rx) =
        std::sync::mpsc::sync_channel::<Vec<pass2::Row>>(BATCHES_IN_FLIGHT);
    let (merged, recorded, written) = std::thread::scope(|scope| {
        let (csv_tx, csv_done) = spawn_writer(scope, csv, output::CsvOut::row);
        let (json_tx, json_done) = spawn_writer(scope, json, output::JsonOut::row);
        let (html_tx, html_done) = spawn_writer(scope, html, output::HtmlOut::row);
        let (xlsx_tx, xlsx_done) = spawn_writer(scope, xlsx, output::XlsxOut::row);
        let recorder = scope.spawn(
            move || -> Result<(output::Registry, Recorded), ScreenError> {
                let mut rec = Recorded {
                    status: StatusCounts::default(),
                    total_rows: 0,
                    worklist_rows: 0,
                    resolved: Vec::new(),
                };
                for batch in merged_rx {
                    let mut listed = Vec::with_capacity(batch.len());
                    for mut row in batch {
                        if row.status.is_none() {
                            row.status = Some("new".into());
                            row.status_reason =
                                Some(osteoguard_core::follow_up::FIRST_RUN_REASON.into());
                        }
                        registry.record(&row)?;
                        let st = row.status.as_deref().unwrap_or("new");
                        rec.status.count(st);
                        if st == "resolved" {
                            // Listed apart, with the evidence (not a row to act on).
                            rec.resolved.push(output::Resolved::from_row(&row));
                            continue;
                        }
                        rec.total_rows += 1;
                        if row.severity < min {
                            continue;
                        }
                        rec.worklist_rows += 1;
                        listed.push(row);
                    }
                    let listed = std::sync::Arc::new(listed);
                    for tx in [&csv_tx, &json_tx, &html_tx, &xlsx_tx]
                        .into_iter()
                        .flatten()
                    {
                        // A closed channel means a writer stopped on an error: reported below.
                        tx.send(listed.clone())
                            .map_err(|_| ScreenError::Internal("worklist writer stopped".into()))?;
                    }
                }
                Ok((registry, rec))
            },
        );
        let stopped = |_| ScreenError::Internal("registry recorder stopped".into());
        let mut batch = Vec::with_capacity(ROW_BATCH);
        let merged = output::merge_runs(&runs, |row| {
            if let Some(d) = merge_delay {
                std::thread::sleep(d);
            }
            batch.push(row);
            if batch.len() == ROW_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(ROW_BATCH));
                merged_tx.send(full).map_err(stopped)?;
            }
            Ok(())
        })
        .and_then(|()| merged_tx.send(batch).map_err(stopped));
        drop(merged_tx);
        let recorded = recorder
            .join()
            .unwrap_or_else(|_| Err(panicked("registry recorder")));
        let written = (|| {
            Ok(output::Writers {
                csv: csv_done.map(join_writer).transpose()?,
                json: json_done.map(join_writer).transpose()?,
                html: html_done.map(join_writer).transpose()?,
                xlsx: xlsx_done.map(join_writer).transpose()?,
            })
        })();
        (merged, recorded, written)
    });
    // The most downstream error explains the others ("stopped" is only their consequence).
    let writers = written?;
    let (
        registry,
        Recorded {
            mut status,
            total_rows,
            worklist_rows,
            mut resolved,
        },
    ) = recorded?;
    merged?;
    progress.log("merge done; completing the outputs");
    let absent = registry.absent_patients()?;
    status.recheck_needed += absent.len() as u64;
    resolved.sort_by(|a, b| (&a.patient_id, &a.code).cmp(&(&b.patient_id, &b.code)));
    let mut pending = writers.finish(&resolved, &absent)?;
    if let Some(fhir_runs) = &fhir_runs {
        pending.push(fhir_ndjson::merge(fhir_runs, &args.out)?);
    }
    let t3 = Instant::now();
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let mut by_type_ignored = 0;
    let mut kept = 0;
    let mut unattached = 0;
    for c in p1.by_type.values() {
        by_type_ignored += c.ignored;
        kept += c.kept;
        unattached += c.unattached;
    }
    let summary = Summary {
        schema: SUMMARY_SCHEMA,
        run_id: registry.run_id,
        previous_run_id: registry.previous,
        as_of,
        export_dir: export_str.clone(),
        jobs,
        shards: n_shards,
        min_severity: min,
        patients_read: p2.patients,
        patients_with_findings: p2.patients_with_findings,
        worklist_rows,
        findings_by_code: p2.findings_by_code.clone(),
        findings_by_severity: p2.findings_by_severity.clone(),
        risk_categories: p2.risk_categories.clone(),
        status,
        manifest: manifest.map(|m| m.summary),
        resources: ResourceSummary {
            lines: p1.lines,
            bytes: p1.bytes,
            kept,
            ignored: by_type_ignored,
            unattached,
            not_fhir_lines: p1.not_fhir_lines,
            not_understood: p2.reader_by_type.values().map(|c| c.not_understood).sum(),
            resources_without_patient: p2.resources_without_patient,
            unparsable_lines: p2.unparsable_lines,
            medication_resources: meds.len() as u64,
            by_type: p1.by_type.clone(),
            skipped_files: skipped.iter().map(|p| p.display().to_string()).collect(),
            reader_by_type: p2.reader_by_type.clone(),
            patients_with_record_issues: p2.patients_with_record_issues,
            record_issue_examples: p2.record_issue_examples.clone(),
        },
        timings: Timings {
            pass1_ms: ms(t1 - t0),
            pass2_ms: ms(t2 - t1),
            merge_ms: ms(t3 - t2),
            total_ms: ms(t0.elapsed()),
        },
        provenance,
    };
    let sp = output::Pending::new(args.out.join("summary.json"));
    let mut w = sp.create()?;
    serde_json::to_writer_pretty(&mut w, &summary).map_err(|e| output::json_err(&sp.tmp, e))?;
    std::io::Write::write_all(&mut w, b"\n").map_err(|e| ScreenError::io(&sp.tmp, e))?;
    output::finish(w, &sp.tmp)?;
    pending.push(sp);
    // Publish: all outputs are complete on disk; rename each into place, then commit.
    for p in &pending {
        p.publish()?;
    }
    registry.commit(p2.patients, total_rows)?;
    drop(tmp);
    progress.log(&format!(
        "wrote {} worklist rows ({} new, {} persisting, {} escalated, {} de-escalated, {} \
         recheck needed; {} resolved) to {} in {:.1} s",
        summary.worklist_rows,
        summary.status.new,
        summary.status.persisting,
        summary.status.escalated,
        summary.status.de_escalated,
        summary.status.recheck_needed,
        summary.status.resolved,
        args.out.display(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(summary)
}

/// Rows per hand-over between the merge, the registry recorder and the writers.
const ROW_BATCH: usize = 256;

/// Batches a channel holds: with the one being worked on, at most `(1 + 3) × 5 × 256` rows are
/// in flight across the merge (a few MB), whatever the population.
const BATCHES_IN_FLIGHT: usize = 4;

/// The sending end of a writer thread's channel of row batches (shared by all writers).
type BatchSender = std::sync::mpsc::SyncSender<std::sync::Arc<Vec<pass2::Row>>>;

type WriterThread<'s, W> = std::thread::ScopedJoinHandle<'s, Result<W, ScreenError>>;

/// Starts the writer thread of one worklist format (when that format was asked for): it formats
/// every row it receives, then hands the writer back for `finish`.
fn spawn_writer<'s, W: Send + 's>(
    scope: &'s std::thread::Scope<'s, '_>,
    writer: Option<W>,
    row: fn(&mut W, &pass2::Row) -> Result<(), ScreenError>,
) -> (Option<BatchSender>, Option<WriterThread<'s, W>>) {
    let Some(mut w) = writer else {
        return (None, None);
    };
    let (tx, rx) =
        std::sync::mpsc::sync_channel::<std::sync::Arc<Vec<pass2::Row>>>(BATCHES_IN_FLIGHT);
    let done = scope.spawn(move || -> Result<W, ScreenError> {
        for batch in rx {
            for r in batch.iter() {
                row(&mut w, r)?;
            }
        }
        Ok(w)
    });
    (Some(tx), Some(done))
}

fn join_writer<W>(t: WriterThread<'_, W>) -> Result<W, ScreenError> {
    t.join()
        .unwrap_or_else(|_| Err(panicked("worklist writer")))
}

fn panicked(what: &str) -> ScreenError {
    ScreenError::Internal(format!("{what} panicked"))
}

/// What the registry recorder counted while the runs were merged.
struct Recorded {
    status: StatusCounts,
    /// Current findings and recheck-needed rows (the registry's `findings` count of the run).
    total_rows: u64,
    worklist_rows: u64,
    /// Previous findings resolved with evidence.
    resolved: Vec<output::Resolved>,
}

/// The NDJSON files to read, refusing what is not an export (exit 2 naming what was found):
/// a missing or unreadable path, a file that is not NDJSON, a directory without NDJSON files.
/// With a Bulk Data `manifest.json`, exactly the files of its `output` list.
fn export_files(dir: &Path) -> Result<(Vec<PathBuf>, Option<manifest::Manifest>), ScreenError> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        ScreenError::Input(format!(
            "{}: cannot read the export directory: {e}",
            dir.display()
        ))
    })?;
    if !meta.is_dir() {
        let name = dir.to_string_lossy();
        let ndjson = [".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz"]
            .iter()
            .any(|x| name.ends_with(x));
        if !ndjson {
            return Err(ScreenError::Input(format!(
                "{}: expected a FHIR Bulk Data export directory, found {}",
                dir.display(),
                manifest::describe_file(dir)
            )));
        }
    }
    std::fs::read_dir(dir)
        .map(|_| ())
        .or_else(|e| if meta.is_dir() { Err(e) } else { Ok(()) })
        .map_err(|e| ScreenError::Input(format!("{}: {e}", dir.display())))?;
    if let Some(m) = manifest::read(dir)? {
        return Ok((m.files.clone(), Some(m)));
    }
    let files = pass1::input_files(dir).map_err(|e| match e {
        ScreenError::Io { path, cause } => ScreenError::Input(format!("{path}: {cause}")),
        ScreenError::Usage(m) => {
            let n = std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0);
            ScreenError::Input(format!(
                "{m}; found {n} other entr{}",
                if n == 1 { "y" } else { "ies" }
            ))
        }
        e => e,
    })?;
    Ok((files, None))
}

/// What pass 1 found, for the refusal of an export without patients.
fn found(files: &[PathBuf], p1: &pass1::Pass1Stats) -> String {
    let types: Vec<String> = p1
        .by_type
        .iter()
        .map(|(t, c)| format!("{t} {}", c.read))
        .collect();
    format!(
        "{} file{}, {} line{}, {} not FHIR; resources: {}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        p1.lines,
        if p1.lines == 1 { "" } else { "s" },
        p1.not_fhir_lines,
        if types.is_empty() {
            "none".to_string()
        } else {
            types.join(", ")
        }
    )
}

/// `osteoguard screen`.
pub fn screen(args: ScreenArgs) -> Result<(), ScreenError> {
    run_screen(&args).map(|_| ())
}

/// `osteoguard synth`.
pub fn synth(args: SynthArgs) -> Result<(), ScreenError> {
    synth::generate(&args).map(|_| ())
}

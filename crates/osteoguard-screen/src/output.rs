//! Merge of the sorted per-shard runs into the worklists (CSV, JSON, HTML), the registry
//! (SQLite) and the atomic publication of the outputs.
//!
//! Atomicity: every output is written to a temporary file in the output directory, flushed and
//! fsync'ed; only when *all* are complete are they renamed over the previous ones (rename is
//! atomic on POSIX), and only then is the registry transaction committed. A crash at any point
//! leaves each previous output whole; a crash between the renames and the commit leaves
//! outputs of run N and a registry without run N, so a re-run compares with run N−1 again and
//! produces the same statuses.

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use osteoguard_core::Severity;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::fault::OutFile;
use crate::pass2::{sort_key, Row, SortKey};
use crate::ScreenError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Html,
    Xlsx,
    /// `findings.fhir.ndjson`: FHIR R4 resources, one a line ([`crate::fhir_ndjson`]).
    Fhir,
}

fn db_err(e: rusqlite::Error) -> ScreenError {
    ScreenError::Registry(e.to_string())
}

/// A file written under a temporary name and renamed into place by [`Pending::publish`].
pub struct Pending {
    pub tmp: PathBuf,
    pub dest: PathBuf,
}

impl Pending {
    pub fn new(dest: PathBuf) -> Self {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        Pending { tmp, dest }
    }
    pub fn create(&self) -> Result<BufWriter<OutFile>, ScreenError> {
        let f = OutFile::create(&self.tmp).map_err(|e| ScreenError::io(&self.tmp, e))?;
        Ok(BufWriter::with_capacity(1 << 20, f))
    }
    pub fn publish(&self) -> Result<(), ScreenError> {
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| ScreenError::io(&self.dest, e))
    }
}

/// A run that stops on an error (a full disk, a failed row) leaves no temporary file behind:
/// whatever was not published is removed (after [`Pending::publish`] there is nothing to remove).
impl Drop for Pending {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Flushes and fsyncs a writer before its file is renamed into place.
pub fn finish(w: BufWriter<OutFile>, path: &Path) -> Result<(), ScreenError> {
    let f = w
        .into_inner()
        .map_err(|e| ScreenError::io(path, e.into_error()))?;
    f.sync_all().map_err(|e| ScreenError::io(path, e))
}

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

pub struct Registry {
    conn: Connection,
    pub run_id: i64,
    pub previous: Option<i64>,
    /// The as-of date of the previous run.
    pub previous_as_of: Option<chrono::NaiveDate>,
}

pub struct RunInfo<'a> {
    pub started_unix: i64,
    pub as_of: &'a str,
    pub export_dir: &'a str,
    pub config_hash: &'a str,
    /// `transactionTime` of the export's Bulk Data `manifest.json`, when it has one.
    pub transaction_time: Option<&'a str>,
    /// Error files (OperationOutcome NDJSON) the manifest lists.
    pub manifest_errors: u64,
}

/// The registry schema as released at 305b083 (schema version 1, `PRAGMA user_version` 0):
/// kept verbatim, it is the first migration step.
pub const REGISTRY_SCHEMA_V1: &str = "
    CREATE TABLE IF NOT EXISTS runs (
        run_id INTEGER PRIMARY KEY,
        started_unix INTEGER NOT NULL,
        as_of TEXT NOT NULL,
        export_dir TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        patients INTEGER,
        findings INTEGER
    );
    CREATE TABLE IF NOT EXISTS findings (
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        patient_id TEXT NOT NULL,
        code TEXT NOT NULL,
        severity TEXT NOT NULL,
        due TEXT,
        summary TEXT NOT NULL,
        evidence TEXT NOT NULL,
        status TEXT NOT NULL
          CHECK (status = 'new' OR status = 'persisting' OR status = 'resolved')
    );
    CREATE INDEX IF NOT EXISTS findings_key ON findings(run_id, patient_id, code);";

/// Version 2 (issue 22): the six statuses and their reason, the manifest's `transactionTime`
/// and error-file count. SQLite cannot change a CHECK constraint in place, so `findings` is
/// rebuilt under the same name with the same columns plus `status_reason`.
const REGISTRY_V2: &str = "
    ALTER TABLE runs ADD COLUMN transaction_time TEXT;
    ALTER TABLE runs ADD COLUMN manifest_errors INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE findings_v2 (
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        patient_id TEXT NOT NULL,
        code TEXT NOT NULL,
        severity TEXT NOT NULL,
        due TEXT,
        summary TEXT NOT NULL,
        evidence TEXT NOT NULL,
        status TEXT NOT NULL
          CHECK (status = 'new' OR status = 'persisting' OR status = 'escalated'
                 OR status = 'de-escalated' OR status = 'resolved' OR status = 'recheck-needed'),
        status_reason TEXT NOT NULL DEFAULT ''
    );
    INSERT INTO findings_v2(run_id, patient_id, code, severity, due, summary, evidence, status)
        SELECT run_id, patient_id, code, severity, due, summary, evidence, status FROM findings;
    DROP TABLE findings;
    ALTER TABLE findings_v2 RENAME TO findings;
    CREATE INDEX findings_key ON findings(run_id, patient_id, code);";

/// The migration steps: step `i` brings a database from `user_version` i to i + 1.
pub const REGISTRY_MIGRATIONS: &[&str] = &[REGISTRY_SCHEMA_V1, REGISTRY_V2];

/// The registry schema version this build writes (`PRAGMA user_version`).
pub const REGISTRY_VERSION: i64 = REGISTRY_MIGRATIONS.len() as i64;

/// Brings the registry to [`REGISTRY_VERSION`], one transaction per step; a database written by
/// a newer release is refused (never downgraded).
pub fn migrate(conn: &mut Connection) -> Result<i64, ScreenError> {
    let from: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    if from > REGISTRY_VERSION {
        return Err(ScreenError::Registry(format!(
            "schema version {from} is newer than this release's ({REGISTRY_VERSION}): use a newer osteoguard"
        )));
    }
    for (i, step) in REGISTRY_MIGRATIONS.iter().enumerate().skip(from as usize) {
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute_batch(step).map_err(db_err)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
    }
    Ok(from)
}

impl Registry {
    /// Opens (and migrates) the registry and begins the run's transaction (committed by
    /// [`Registry::commit`]).
    pub fn open(path: &Path, info: &RunInfo<'_>) -> Result<Self, ScreenError> {
        let mut conn = Connection::open(path)
            .map_err(|e| ScreenError::Registry(format!("{}: {e}", path.display())))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(db_err)?;
        migrate(&mut conn)?;
        conn.execute_batch("BEGIN IMMEDIATE;").map_err(db_err)?;
        let previous: Option<(i64, String)> = conn
            .query_row(
                "SELECT run_id, as_of FROM runs ORDER BY run_id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err)?;
        conn.execute(
            "INSERT INTO runs(started_unix, as_of, export_dir, config_hash, transaction_time,
             manifest_errors) VALUES (?1,?2,?3,?4,?5,?6)",
            params![
                info.started_unix,
                info.as_of,
                info.export_dir,
                info.config_hash,
                info.transaction_time,
                info.manifest_errors as i64
            ],
        )
        .map_err(db_err)?;
        let run_id = conn.last_insert_rowid();
        Ok(Registry {
            conn,
            run_id,
            previous: previous.as_ref().map(|p| p.0),
            previous_as_of: previous.and_then(|p| p.1.parse().ok()),
        })
    }

    /// Records a row with the status pass 2 decided (`crate::pass2::Row::status`).
    pub fn record(&self, r: &Row) -> Result<(), ScreenError> {
        self.conn
            .prepare_cached(
                "INSERT INTO findings(run_id, patient_id, code, severity, due, summary, evidence,
                 status, status_reason) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
            )
            .map_err(db_err)?
            .execute(params![
                self.run_id,
                r.patient_id,
                r.code,
                r.severity.as_str(),
                r.due.map(|d| d.to_string()),
                r.summary,
                r.evidence.join(" "),
                r.status.as_deref().unwrap_or("new"),
                r.status_reason.as_deref().unwrap_or(""),
            ])
            .map_err(db_err)?;
        Ok(())
    }

    /// Open findings of the previous run whose patient is not in this run at all (not in the
    /// export, or without a Patient resource now): recorded as `recheck-needed` and returned.
    pub fn absent_patients(&self) -> Result<Vec<Resolved>, ScreenError> {
        let (Some(prev), Some(prev_as_of)) = (self.previous, self.previous_as_of) else {
            return Ok(Vec::new());
        };
        let reason = format!(
            "the patient is not in this export (flagged in the run as of {prev_as_of}): check the \
             export and the patient's record"
        );
        self.conn
            .execute(
                "INSERT INTO findings(run_id, patient_id, code, severity, due, summary, evidence,
                 status, status_reason)
                 SELECT ?1, p.patient_id, p.code, p.severity, p.due, p.summary, p.evidence,
                 'recheck-needed', ?3 FROM findings p
                 WHERE p.run_id = ?2 AND p.status != 'resolved' AND NOT EXISTS (
                   SELECT 1 FROM findings c WHERE c.run_id = ?1 AND c.patient_id = p.patient_id)",
                params![self.run_id, prev, reason],
            )
            .map_err(db_err)?;
        let mut st = self
            .conn
            .prepare(
                "SELECT f.patient_id, f.code, f.severity, f.summary, f.status, f.status_reason
                 FROM findings f WHERE f.run_id = ?1 AND f.status = 'recheck-needed'
                 AND f.status_reason = ?2
                 ORDER BY f.patient_id, f.code",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![self.run_id, reason], |r| {
                Ok(Resolved {
                    patient_id: r.get(0)?,
                    code: r.get(1)?,
                    severity: r.get(2)?,
                    summary: r.get(3)?,
                    status: r.get(4)?,
                    reason: r.get(5)?,
                })
            })
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(rows)
    }

    pub fn commit(self, patients: u64, findings: u64) -> Result<(), ScreenError> {
        self.conn
            .execute(
                "UPDATE runs SET patients=?1, findings=?2 WHERE run_id=?3",
                params![patients as i64, findings as i64, self.run_id],
            )
            .map_err(db_err)?;
        self.conn.execute_batch("COMMIT;").map_err(db_err)
    }
}

/// A previous finding listed apart from the worklist rows: `resolved` (with its evidence), or
/// `recheck-needed` because the patient is no longer in the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    pub patient_id: String,
    pub code: String,
    pub severity: String,
    pub summary: String,
    /// `resolved | recheck-needed`.
    pub status: String,
    /// The evidence it was resolved on, or what to check.
    pub reason: String,
}

impl Resolved {
    pub fn from_row(r: &Row) -> Self {
        Resolved {
            patient_id: r.patient_id.clone(),
            code: r.code.clone(),
            severity: r.severity.as_str().to_string(),
            summary: r.summary.clone(),
            status: r.status.clone().unwrap_or_default(),
            reason: r.status_reason.clone().unwrap_or_default(),
        }
    }
}

/// The previous run's open findings of one patient, read by pass 2 (a read-only connection per
/// shard: the registry's writer holds its transaction open, WAL lets readers see the last
/// committed run).
pub struct PreviousReader {
    conn: Connection,
    run_id: i64,
    pub as_of: chrono::NaiveDate,
}

impl PreviousReader {
    pub fn open(path: &Path, run_id: i64, as_of: chrono::NaiveDate) -> Result<Self, ScreenError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| ScreenError::Registry(format!("{}: {e}", path.display())))?;
        Ok(PreviousReader {
            conn,
            run_id,
            as_of,
        })
    }

    pub fn findings(
        &self,
        patient_id: &str,
    ) -> Result<Vec<osteoguard_core::follow_up::PreviousFinding>, ScreenError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT code, severity, due FROM findings WHERE run_id=?1 AND patient_id=?2
                 AND status != 'resolved' ORDER BY code",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![self.run_id, patient_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (code, severity, due) = row.map_err(db_err)?;
            let Some(severity) = Severity::parse(&severity) else {
                return Err(ScreenError::Registry(format!(
                    "run {}: patient {patient_id}: unknown severity {severity:?}",
                    self.run_id
                )));
            };
            // A code listed twice (e.g. recheck-needed and again present) counts once.
            if out
                .iter()
                .any(|p: &osteoguard_core::follow_up::PreviousFinding| p.code == code)
            {
                continue;
            }
            out.push(osteoguard_core::follow_up::PreviousFinding {
                code,
                severity,
                due: due.and_then(|d| d.parse().ok()),
            });
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// k-way merge of the shard runs
// ---------------------------------------------------------------------------------------------

struct RunReader {
    lines: std::io::Lines<BufReader<File>>,
    path: PathBuf,
}

impl RunReader {
    fn next_row(&mut self) -> Result<Option<Row>, ScreenError> {
        match self.lines.next() {
            None => Ok(None),
            Some(Err(e)) => Err(ScreenError::io(&self.path, e)),
            Some(Ok(l)) => serde_json::from_str(&l)
                .map(Some)
                .map_err(|e| ScreenError::Internal(format!("{}: {e}", self.path.display()))),
        }
    }
}

/// Calls `f` for every row of the sorted runs, in global worklist order. Memory: one row and an 8 KiB buffer per run.
pub fn merge_runs(
    runs: &[PathBuf],
    mut f: impl FnMut(Row) -> Result<(), ScreenError>,
) -> Result<(), ScreenError> {
    let mut readers = Vec::with_capacity(runs.len());
    for p in runs {
        let file = File::open(p).map_err(|e| ScreenError::io(p, e))?;
        readers.push(RunReader {
            lines: BufReader::with_capacity(8 << 10, file).lines(),
            path: p.clone(),
        });
    }
    let mut heap: BinaryHeap<std::cmp::Reverse<(SortKey, usize)>> = BinaryHeap::new();
    let mut heads: Vec<Option<Row>> = Vec::with_capacity(readers.len());
    for (i, r) in readers.iter_mut().enumerate() {
        let row = r.next_row()?;
        if let Some(row) = &row {
            heap.push(std::cmp::Reverse((sort_key(row), i)));
        }
        heads.push(row);
    }
    while let Some(std::cmp::Reverse((_, i))) = heap.pop() {
        let Some(row) = heads[i].take() else { continue };
        let next = readers[i].next_row()?;
        if let Some(n) = &next {
            heap.push(std::cmp::Reverse((sort_key(n), i)));
        }
        heads[i] = next;
        f(row)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------

/// Columns of worklist.csv (and of the Spark path's rows).
pub const CSV_COLUMNS: usize = 22;

pub const CSV_HEADER: [&str; CSV_COLUMNS] = [
    "patient_id",
    "age",
    "sex",
    "finding_code",
    "severity",
    "status",
    "summary",
    "due_date",
    "evidence",
    "risk_category",
    "title",
    "provenance",
    // Issue 22: who the patient is, what to do, why the status; issue 16: record problems.
    "status_reason",
    "name",
    "mrn",
    "mrn_system",
    "birth_date",
    "phone",
    "next_action",
    "data_quality",
    "patient_severity",
    "patient_due",
];

pub fn csv_record(r: &Row) -> [String; CSV_COLUMNS] {
    [
        r.patient_id.clone(),
        r.age.map(|a| a.to_string()).unwrap_or_default(),
        r.sex.clone(),
        r.code.clone(),
        r.severity.as_str().to_string(),
        r.status.clone().unwrap_or_default(),
        r.summary.clone(),
        r.due.map(|d| d.to_string()).unwrap_or_default(),
        r.evidence.join(" "),
        r.risk_category.clone(),
        r.title.clone(),
        r.provenance.clone(),
        r.status_reason.clone().unwrap_or_default(),
        r.name.clone(),
        r.mrn.clone(),
        r.mrn_system.clone(),
        r.birth_date.map(|d| d.to_string()).unwrap_or_default(),
        r.phone.clone(),
        r.next_action.clone(),
        r.data_quality.join("; "),
        r.patient_severity
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        r.patient_due.map(|d| d.to_string()).unwrap_or_default(),
    ]
}

/// A previous finding listed apart, as a CSV record (status and reason filled in).
pub fn csv_apart(r: &Resolved) -> [String; CSV_COLUMNS] {
    let mut f: [String; CSV_COLUMNS] = Default::default();
    f[0] = r.patient_id.clone();
    f[3] = r.code.clone();
    f[4] = r.severity.clone();
    f[5] = r.status.clone();
    f[6] = r.summary.clone();
    f[12] = r.reason.clone();
    f
}

/// A CSV error; an I/O one names the file (a full disk must say where).
fn csv_err(path: &Path, e: csv::Error) -> ScreenError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ScreenError::io(path, io),
        other => ScreenError::Internal(format!("{}: {other:?}", path.display())),
    }
}

/// A serde_json error while writing; an I/O one names the file.
pub(crate) fn json_err(path: &Path, e: serde_json::Error) -> ScreenError {
    if e.is_io() {
        ScreenError::io(path, e.into())
    } else {
        ScreenError::Internal(format!("{}: {e}", path.display()))
    }
}

pub struct CsvOut {
    w: csv::Writer<BufWriter<OutFile>>,
    p: Pending,
}

impl CsvOut {
    /// `excel`: start with a UTF-8 byte-order mark (`--csv-excel`).
    pub fn new(p: Pending, excel: bool) -> Result<Self, ScreenError> {
        let mut inner = p.create()?;
        if excel {
            inner
                .write_all("\u{feff}".as_bytes())
                .map_err(|e| ScreenError::io(&p.tmp, e))?;
        }
        let mut w = csv::Writer::from_writer(inner);
        w.write_record(CSV_HEADER).map_err(|e| csv_err(&p.tmp, e))?;
        Ok(CsvOut { w, p })
    }
    pub fn row(&mut self, r: &Row) -> Result<(), ScreenError> {
        self.w
            .write_record(csv_record(r))
            .map_err(|e| csv_err(&self.p.tmp, e))
    }
    /// Appends the previous findings listed apart (resolved, patient absent), then completes
    /// the file.
    pub fn finish(mut self, apart: &[&Resolved]) -> Result<Pending, ScreenError> {
        for r in apart {
            self.w
                .write_record(csv_apart(r))
                .map_err(|e| csv_err(&self.p.tmp, e))?;
        }
        let inner = self
            .w
            .into_inner()
            .map_err(|e| ScreenError::io(&self.p.tmp, e.into_error()))?;
        finish(inner, &self.p.tmp)?;
        Ok(self.p)
    }
}

pub struct JsonOut {
    w: BufWriter<OutFile>,
    p: Pending,
    first: bool,
}

impl JsonOut {
    pub fn new(p: Pending, header: &serde_json::Value) -> Result<Self, ScreenError> {
        let mut w = p.create()?;
        // `{ ...header fields..., "rows": [` — the header object is written without its closing brace.
        let h = serde_json::to_string(header).map_err(|e| ScreenError::Internal(e.to_string()))?;
        let h = h.strip_suffix('}').unwrap_or(&h);
        let sep = if h.len() > 1 { "," } else { "" };
        write!(w, "{h}{sep}\"rows\":[").map_err(|e| ScreenError::io(&p.tmp, e))?;
        Ok(JsonOut { w, p, first: true })
    }
    pub fn row(&mut self, r: &Row) -> Result<(), ScreenError> {
        if !self.first {
            self.w
                .write_all(b",")
                .map_err(|e| ScreenError::io(&self.p.tmp, e))?;
        }
        self.first = false;
        self.w
            .write_all(b"\n")
            .map_err(|e| ScreenError::io(&self.p.tmp, e))?;
        serde_json::to_writer(&mut self.w, r).map_err(|e| json_err(&self.p.tmp, e))
    }
    pub fn finish(
        mut self,
        resolved: &[Resolved],
        absent: &[Resolved],
    ) -> Result<Pending, ScreenError> {
        let res =
            serde_json::to_string(resolved).map_err(|e| ScreenError::Internal(e.to_string()))?;
        let abs =
            serde_json::to_string(absent).map_err(|e| ScreenError::Internal(e.to_string()))?;
        write!(
            self.w,
            "\n],\"resolved\":{res},\"absentPatients\":{abs}}}\n"
        )
        .map_err(|e| ScreenError::io(&self.p.tmp, e))?;
        finish(self.w, &self.p.tmp)?;
        Ok(self.p)
    }
}

/// HTML-escaped text, written straight into the output (no copy per field: the worklist has a
/// row per finding, and the copies were most of writing one).
struct Esc<'a>(&'a str);

impl std::fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

pub fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Critical => 4,
        Severity::High => 3,
        Severity::Moderate => 2,
        Severity::Info => 1,
    }
}

/// The worklist writers of one run (each present when its format was asked for; during the merge
/// each runs on its own thread, `spawn_writer` in lib.rs).
pub struct Writers {
    pub csv: Option<CsvOut>,
    pub json: Option<JsonOut>,
    pub html: Option<HtmlOut>,
    pub xlsx: Option<XlsxOut>,
}

impl Writers {
    /// Completes every file (not yet renamed into place: see [`Pending::publish`]). `resolved`:
    /// previous findings resolved with evidence; `absent`: those of patients no longer in the
    /// export (recheck-needed).
    pub fn finish(
        self,
        resolved: &[Resolved],
        absent: &[Resolved],
    ) -> Result<Vec<Pending>, ScreenError> {
        let apart: Vec<&Resolved> = absent.iter().chain(resolved).collect();
        let mut pending = Vec::new();
        if let Some(c) = self.csv {
            pending.push(c.finish(&apart)?);
        }
        if let Some(j) = self.json {
            pending.push(j.finish(resolved, absent)?);
        }
        if let Some(h) = self.html {
            pending.push(h.finish(&apart)?);
        }
        if let Some(x) = self.xlsx {
            pending.push(x.finish(&apart)?);
        }
        Ok(pending)
    }
}

pub struct HtmlOut {
    w: BufWriter<OutFile>,
    p: Pending,
    /// The patient of the previous row (a block starts when it changes).
    last_patient: String,
}

/// Compact rows (one line each: long texts are cut with "…" and open on a click), so that a
/// 1400×900 window shows at least 20 patients (tests/worklist.rs checks it in Chromium).
const HTML_HEAD: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>osteoguard worklist</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:.6rem 1rem;color:#1d1d1f;font-size:12.5px}
h1{font-size:1.05rem;margin:0 .8rem 0 0;display:inline}.meta{color:#555;display:inline}
.controls{display:flex;gap:.5rem;flex-wrap:wrap;margin:.35rem 0}
.controls input,.controls select{padding:.1rem .3rem;font-size:12.5px}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{padding:1px 5px;text-align:left;vertical-align:top;line-height:17px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
th{background:#f3f3f5;position:sticky;top:0;border-bottom:1px solid #bbb}
tr.first td{border-top:1px solid #ccc}tr.cont .who>*{visibility:hidden}
.sev{font-weight:600;border-radius:3px;padding:0 .3rem}
.sev-critical{background:#b00020;color:#fff}.sev-high{background:#e65100;color:#fff}
.sev-moderate{background:#ffd54f}.sev-info{background:#e3f2fd}
.st-new,.st-escalated,.st-recheck-needed{font-weight:600}.st-escalated,.st-recheck-needed{color:#b00020}
.st-new{color:#0b6e2e}.mrn,.dem{color:#555}.det{color:#555;cursor:pointer}
td.open{white-space:normal}.dq{color:#8a4b00}
.mc{display:inline-block;min-width:1.6rem;margin-left:.3rem;color:#0b57d0;cursor:pointer;font-weight:600}
#count{color:#555;align-self:center}
</style></head><body>
"#;

/// Filters (text, minimum severity, finding, status) and patient blocks: each patient shows
/// one line — its first matching finding, with "+N" for the others, which a click unfolds.
const HTML_SCRIPT: &str = r#"<script>
(function(){
var t=document.getElementById('wl'),rows=Array.prototype.slice.call(t.tBodies[0].rows);
var q=document.getElementById('q'),fs=document.getElementById('fsev'),fc=document.getElementById('fcode'),fst=document.getElementById('fst');
var codes={},open={};rows.forEach(function(r){codes[r.dataset.code]=1});
Object.keys(codes).sort().forEach(function(c){var o=document.createElement('option');o.value=c;o.textContent=c;fc.appendChild(o)});
function apply(){var s=q.value.toLowerCase(),sv=+fs.value,c=fc.value,st=fst.value,n=0,np=0,last=null,head=null,more=0;
function close(){if(head){var m=head.querySelector('.mc');m.textContent=more?(open[head.dataset.pid]?'−':'+'+more):'';}}
rows.forEach(function(r){var ok=(+r.dataset.rank>=sv)&&(!c||r.dataset.code===c)&&(!st||r.dataset.status===st)&&(!s||r.textContent.toLowerCase().indexOf(s)>=0);
if(!ok){r.style.display='none';return}n++;var f=r.dataset.pid!==last;
if(f){close();head=r;more=0;last=r.dataset.pid;np++}else{more++}
r.classList.toggle('first',f);r.classList.toggle('cont',!f);r.querySelector('.mc').textContent='';
r.style.display=(f||open[r.dataset.pid])?'':'none'});close();
document.getElementById('count').textContent=np+' patients, '+n+' of '+rows.length+' findings';
document.body.dataset.patients=np;document.body.dataset.rows=n;}
[q,fs,fc,fst].forEach(function(e){e.addEventListener('input',apply)});
t.addEventListener('click',function(e){var m=e.target.closest('.mc');if(m&&m.textContent){var p=m.closest('tr').dataset.pid;open[p]=!open[p];apply();return}
var d=e.target.closest('td.det,td.act');if(d)d.classList.toggle('open')});
window.osteoguardWorklist={apply:apply};
apply();})();
</script></body></html>
"#;

impl HtmlOut {
    pub fn new(p: Pending, title: &str, meta: &str) -> Result<Self, ScreenError> {
        let mut w = p.create()?;
        let io = |e| ScreenError::io(&p.tmp, e);
        w.write_all(HTML_HEAD.as_bytes()).map_err(io)?;
        let statuses: String = osteoguard_core::follow_up::Status::ALL
            .iter()
            .filter(|s| **s != osteoguard_core::follow_up::Status::Resolved)
            .map(|s| format!("<option value=\"{s}\">{s}</option>"))
            .collect();
        write!(
            w,
            "<h1>{}</h1><span class=\"meta\">{}</span>\n\
             <div class=\"controls\"><input id=\"q\" type=\"search\" placeholder=\"Filter (name, MRN, text…)\" aria-label=\"Filter\">\
             <select id=\"fsev\" aria-label=\"Minimum severity\"><option value=\"1\">all severities</option><option value=\"2\">moderate and above</option><option value=\"3\">high and above</option><option value=\"4\">critical only</option></select>\
             <select id=\"fcode\" aria-label=\"Finding\"><option value=\"\">all findings</option></select>\
             <select id=\"fst\" aria-label=\"Status\"><option value=\"\">all statuses</option>{statuses}</select>\
             <span id=\"count\"></span></div>\n\
             <table id=\"wl\"><colgroup><col style=\"width:6.2rem\"><col style=\"width:7.6rem\"><col style=\"width:5.6rem\"><col style=\"width:21rem\"><col style=\"width:12rem\"><col style=\"width:23rem\"><col></colgroup>\
             <thead><tr><th>Severity</th><th>Status</th><th>Due</th><th>Patient</th><th>Finding</th><th>Next action</th><th>Details (click)</th></tr></thead><tbody>\n",
            esc(title),
            esc(meta)
        )
        .map_err(io)?;
        Ok(HtmlOut {
            w,
            p,
            last_patient: String::new(),
        })
    }
    pub fn row(&mut self, r: &Row) -> Result<(), ScreenError> {
        let sev = r.severity.as_str();
        let st = r.status.as_deref().unwrap_or("");
        let first = r.patient_id != self.last_patient;
        if first {
            self.last_patient.clone_from(&r.patient_id);
        }
        let name = if r.name.is_empty() {
            format!("Patient/{}", r.patient_id)
        } else {
            r.name.clone()
        };
        let mrn = if r.mrn.is_empty() {
            String::new()
        } else {
            format!("MRN {}", r.mrn)
        };
        let dem = [
            r.birth_date.map(|d| format!("born {d}")),
            r.age.map(|a| format!("{a} y")),
            Some(r.sex.clone()),
            (!r.phone.is_empty()).then(|| format!("tel {}", r.phone)),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
        let mut detail = Vec::new();
        if let Some(reason) = &r.status_reason {
            detail.push(format!("{st}: {reason}"));
        }
        detail.push(r.summary.clone());
        if !r.evidence.is_empty() {
            detail.push(format!("evidence: {}", r.evidence.join(" ")));
        }
        let dq = if r.data_quality.is_empty() {
            String::new()
        } else {
            format!(
                "<span class=\"dq\">record problem: {} · </span>",
                esc(&r.data_quality.join("; "))
            )
        };
        writeln!(
            self.w,
            "<tr data-rank=\"{rank}\" data-code=\"{code}\" data-status=\"{st}\" data-pid=\"{pid}\" class=\"{cls}\"><td><span class=\"sev sev-{sev}\">{sev}</span><span class=\"mc\"></span></td><td class=\"st-{st}\" title=\"{reason}\">{st}</td><td>{due}</td><td class=\"who\" title=\"{pid}\"><b>{name}</b> <span class=\"mrn\" title=\"{mrn_system}\">{mrn}</span> <span class=\"dem\">{dem}</span></td><td title=\"{code}\">{title}</td><td class=\"act\">{action}</td><td class=\"det\">{dq}{detail}</td></tr>",
            rank = severity_rank(r.severity),
            code = esc(&r.code),
            pid = esc(&r.patient_id),
            cls = if first { "first" } else { "cont" },
            reason = esc(r.status_reason.as_deref().unwrap_or("")),
            due = r.due.map(|d| d.to_string()).unwrap_or_default(),
            name = esc(&name),
            mrn = esc(&mrn),
            mrn_system = esc(&r.mrn_system),
            dem = esc(&dem),
            title = esc(&r.title),
            action = esc(&r.next_action),
            detail = esc(&detail.join(" · ")),
        )
        .map_err(|e| ScreenError::io(&self.p.tmp, e))
    }
    pub fn finish(mut self, apart: &[&Resolved]) -> Result<Pending, ScreenError> {
        let io = |e| ScreenError::io(&self.p.tmp, e);
        self.w.write_all(b"</tbody></table>\n").map_err(io)?;
        if !apart.is_empty() {
            write!(
                self.w,
                "<h2 style=\"font-size:1rem\">Closed or to recheck since the previous run ({})</h2>\
                 <table id=\"apart\"><thead><tr><th>Patient</th><th>Finding</th><th>Severity</th><th>Status</th><th>Reason</th></tr></thead><tbody>",
                apart.len()
            )
            .map_err(io)?;
            for r in apart {
                write!(
                    self.w,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"st-{}\">{}</td><td class=\"det\">{}</td></tr>",
                    esc(&r.patient_id),
                    esc(&r.code),
                    esc(&r.severity),
                    esc(&r.status),
                    esc(&r.status),
                    esc(&r.reason)
                )
                .map_err(io)?;
            }
            self.w.write_all(b"</tbody></table>\n").map_err(io)?;
        }
        self.w.write_all(HTML_SCRIPT.as_bytes()).map_err(io)?;
        finish(self.w, &self.p.tmp)?;
        Ok(self.p)
    }
}

/// `worklist.xlsx`: one sheet, header frozen, filters on, dates as dates, column widths set, a
/// severity column (filter it for one severity). Built in memory with rust_xlsxwriter's
/// constant-memory mode (rows go to a temporary file as they come), then written out.
pub struct XlsxOut {
    wb: rust_xlsxwriter::Workbook,
    p: Pending,
    row: u32,
    /// The one cell format besides the default, built once (dates as `yyyy-mm-dd`). Text and
    /// number cells are written without a format: the default one is the workbook's first
    /// (index 0), which is what a cell without a format gets, so the file is the same bytes —
    /// without `rust_xlsxwriter` hashing a `Format` for every cell (4.4 % of a screening's
    /// instructions, callgrind, 2 000 patients).
    date: rust_xlsxwriter::Format,
    /// Rows beyond Excel's limit (counted, not written).
    dropped: u64,
    /// The evidence and record-problem cells of the row being written, reused from row to row.
    evidence: String,
    data_quality: String,
}

/// Excel's last row index (1,048,576 rows, the header included).
const XLSX_MAX_ROW: u32 = 1_048_575;

const XLSX_COLUMNS: [(&str, f64); 17] = [
    ("Severity", 9.0),
    ("Status", 13.0),
    ("Due", 11.0),
    ("Name", 24.0),
    ("MRN", 14.0),
    ("MRN system", 18.0),
    ("Birth date", 11.0),
    ("Age", 5.0),
    ("Sex", 8.0),
    ("Phone", 15.0),
    ("Finding", 30.0),
    ("Next action", 60.0),
    ("Status reason", 40.0),
    ("Record problems", 30.0),
    ("Evidence", 40.0),
    ("Patient id", 20.0),
    ("Finding code", 30.0),
];

fn xlsx_err(path: &Path, e: rust_xlsxwriter::XlsxError) -> ScreenError {
    match e {
        rust_xlsxwriter::XlsxError::IoError(io) => ScreenError::io(path, io),
        other => {
            // Writing into the file, a failed write (a full disk) comes wrapped in the zip
            // writer's error: reported as the I/O error it is.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&other);
            while let Some(c) = cause {
                if let Some(io) = c.downcast_ref::<std::io::Error>() {
                    let io = match io.raw_os_error() {
                        Some(code) => std::io::Error::from_raw_os_error(code),
                        None => std::io::Error::new(io.kind(), io.to_string()),
                    };
                    return ScreenError::io(path, io);
                }
                cause = c.source();
            }
            ScreenError::Internal(format!("{}: {other}", path.display()))
        }
    }
}

fn excel_date(d: chrono::NaiveDate) -> Option<rust_xlsxwriter::ExcelDateTime> {
    use chrono::Datelike;
    rust_xlsxwriter::ExcelDateTime::from_ymd(
        u16::try_from(d.year()).ok()?,
        d.month() as u8,
        d.day() as u8,
    )
    .ok()
}

impl XlsxOut {
    pub fn new(p: Pending, title: &str) -> Result<Self, ScreenError> {
        let err = |e| xlsx_err(&p.tmp, e);
        let mut wb = rust_xlsxwriter::Workbook::new();
        let bold = rust_xlsxwriter::Format::new().set_bold();
        let ws = wb.add_worksheet_with_constant_memory();
        ws.set_name("Worklist").map_err(err)?;
        for (i, (h, width)) in XLSX_COLUMNS.iter().enumerate() {
            ws.write_string_with_format(0, i as u16, *h, &bold)
                .map_err(err)?;
            ws.set_column_width(i as u16, *width).map_err(err)?;
        }
        ws.set_freeze_panes(1, 0).map_err(err)?;
        wb.set_properties(&rust_xlsxwriter::DocProperties::new().set_title(title));
        Ok(XlsxOut {
            wb,
            p,
            row: 0,
            date: rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd"),
            dropped: 0,
            evidence: String::new(),
            data_quality: String::new(),
        })
    }

    fn put(&mut self, cells: &[Cell<'_>]) -> Result<(), ScreenError> {
        if self.row >= XLSX_MAX_ROW {
            self.dropped += 1;
            return Ok(());
        }
        self.row += 1;
        let row = self.row;
        let XlsxOut { wb, p, date, .. } = self;
        let err = |e| xlsx_err(&p.tmp, e);
        let ws = wb.worksheet_from_index(0).map_err(err)?;
        for (i, c) in cells.iter().enumerate() {
            let col = i as u16;
            match c {
                Cell::Text("") => {}
                Cell::Text(t) => {
                    ws.write_string(row, col, *t).map_err(err)?;
                }
                Cell::Number(n) => {
                    ws.write_number(row, col, *n).map_err(err)?;
                }
                Cell::Date(d) => {
                    if let Some(x) = excel_date(*d) {
                        ws.write_datetime_with_format(row, col, &x, date)
                            .map_err(err)?;
                    }
                }
                Cell::Empty => {}
            }
        }
        Ok(())
    }

    pub fn row(&mut self, r: &Row) -> Result<(), ScreenError> {
        let mut evidence = std::mem::take(&mut self.evidence);
        join_into(&mut evidence, &r.evidence, " ");
        let mut dq = std::mem::take(&mut self.data_quality);
        join_into(&mut dq, &r.data_quality, "; ");
        let opt_date = |d: Option<chrono::NaiveDate>| d.map_or(Cell::Empty, Cell::Date);
        let written = self.put(&[
            Cell::Text(r.severity.as_str()),
            Cell::Text(r.status.as_deref().unwrap_or("")),
            opt_date(r.due),
            Cell::Text(&r.name),
            Cell::Text(&r.mrn),
            Cell::Text(&r.mrn_system),
            opt_date(r.birth_date),
            r.age.map_or(Cell::Empty, |a| Cell::Number(a as f64)),
            Cell::Text(&r.sex),
            Cell::Text(&r.phone),
            Cell::Text(&r.title),
            Cell::Text(&r.next_action),
            Cell::Text(r.status_reason.as_deref().unwrap_or("")),
            Cell::Text(&dq),
            Cell::Text(&evidence),
            Cell::Text(&r.patient_id),
            Cell::Text(&r.code),
        ]);
        self.evidence = evidence;
        self.data_quality = dq;
        written
    }

    pub fn finish(mut self, apart: &[&Resolved]) -> Result<Pending, ScreenError> {
        for r in apart {
            let mut cells = vec![Cell::Empty; XLSX_COLUMNS.len()];
            cells[0] = Cell::Text(&r.severity);
            cells[1] = Cell::Text(&r.status);
            cells[10] = Cell::Text(&r.summary);
            cells[12] = Cell::Text(&r.reason);
            cells[15] = Cell::Text(&r.patient_id);
            cells[16] = Cell::Text(&r.code);
            self.put(&cells)?;
        }
        let tmp = self.p.tmp.clone();
        let err = |e| xlsx_err(&tmp, e);
        let last = self.row;
        let ws = self.wb.worksheet_from_index(0).map_err(err)?;
        ws.autofilter(0, 0, last, XLSX_COLUMNS.len() as u16 - 1)
            .map_err(err)?;
        if self.dropped > 0 {
            return Err(ScreenError::Input(format!(
                "worklist.xlsx: {} rows beyond Excel's limit of {} rows; use --format csv,json,html or --min-severity",
                self.dropped, XLSX_MAX_ROW
            )));
        }
        // Packed straight into the file. Why: a buffer of the whole file (`save_to_buffer`)
        // grew with the worklist (5.4 MB per 100 000 patients of `synth --filler 0`, doubling as
        // it grew) and was the merge's largest allocation at 1 M patients.
        let mut w = self.p.create()?;
        self.wb.save_to_writer(&mut w).map_err(err)?;
        finish(w, &self.p.tmp)?;
        Ok(self.p)
    }
}

/// `parts` joined by `sep` into `out` (cleared first; its capacity is kept).
fn join_into(out: &mut String, parts: &[String], sep: &str) {
    out.clear();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(part);
    }
}

#[derive(Clone, Copy)]
enum Cell<'a> {
    Text(&'a str),
    Number(f64),
    Date(chrono::NaiveDate),
    Empty,
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn html_escape_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"a<b>&"c"'d'é"#).to_string(),
            "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;é"
        );
        assert_eq!(esc("").to_string(), "");
        assert_eq!(esc("plain").to_string(), "plain");
        assert_eq!(esc("&&").to_string(), "&amp;&amp;");
    }
}

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
}

pub struct RunInfo<'a> {
    pub started_unix: i64,
    pub as_of: &'a str,
    pub export_dir: &'a str,
    pub config_hash: &'a str,
}

impl Registry {
    /// Opens the registry and begins the run's transaction (committed by [`Registry::commit`]).
    ///
    /// The status CHECK is written with `OR`, not `IN (…)`: SQLite evaluates a constant `IN`
    /// list in a CHECK through an ephemeral table built for every inserted row, which was a
    /// third of the cost of an insert.
    pub fn open(path: &Path, info: &RunInfo<'_>) -> Result<Self, ScreenError> {
        let conn = Connection::open(path).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
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
             CREATE INDEX IF NOT EXISTS findings_key ON findings(run_id, patient_id, code);
             BEGIN IMMEDIATE;",
        )
        .map_err(db_err)?;
        let previous: Option<i64> = conn
            .query_row("SELECT max(run_id) FROM runs", [], |r| r.get(0))
            .map_err(db_err)?;
        conn.execute(
            "INSERT INTO runs(started_unix, as_of, export_dir, config_hash) VALUES (?1,?2,?3,?4)",
            params![
                info.started_unix,
                info.as_of,
                info.export_dir,
                info.config_hash
            ],
        )
        .map_err(db_err)?;
        let run_id = conn.last_insert_rowid();
        Ok(Registry {
            conn,
            run_id,
            previous,
        })
    }

    /// Records a current finding and returns its status (`new` or `persisting`).
    pub fn record(&self, r: &Row) -> Result<&'static str, ScreenError> {
        let persisting = match self.previous {
            Some(prev) => self
                .conn
                .prepare_cached(
                    "SELECT 1 FROM findings WHERE run_id=?1 AND patient_id=?2 AND code=?3
                     AND status != 'resolved' LIMIT 1",
                )
                .map_err(db_err)?
                .query_row(params![prev, r.patient_id, r.code], |_| Ok(()))
                .optional()
                .map_err(db_err)?
                .is_some(),
            None => false,
        };
        let status = if persisting { "persisting" } else { "new" };
        self.conn
            .prepare_cached(
                "INSERT INTO findings(run_id, patient_id, code, severity, due, summary, evidence,
                 status) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
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
                status
            ])
            .map_err(db_err)?;
        Ok(status)
    }

    /// Inserts `resolved` rows for findings of the previous run absent from this one and
    /// returns them (patient id, code, severity, summary), sorted.
    pub fn resolve(&self) -> Result<Vec<Resolved>, ScreenError> {
        let Some(prev) = self.previous else {
            return Ok(Vec::new());
        };
        self.conn
            .execute(
                "INSERT INTO findings(run_id, patient_id, code, severity, due, summary, evidence,
                 status)
                 SELECT ?1, p.patient_id, p.code, p.severity, p.due, p.summary, p.evidence,
                 'resolved' FROM findings p
                 WHERE p.run_id = ?2 AND p.status != 'resolved' AND NOT EXISTS (
                   SELECT 1 FROM findings c WHERE c.run_id = ?1 AND c.patient_id = p.patient_id
                   AND c.code = p.code)",
                params![self.run_id, prev],
            )
            .map_err(db_err)?;
        let mut st = self
            .conn
            .prepare(
                "SELECT patient_id, code, severity, summary FROM findings
                 WHERE run_id = ?1 AND status = 'resolved' ORDER BY patient_id, code",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![self.run_id], |r| {
                Ok(Resolved {
                    patient_id: r.get(0)?,
                    code: r.get(1)?,
                    severity: r.get(2)?,
                    summary: r.get(3)?,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    pub patient_id: String,
    pub code: String,
    pub severity: String,
    pub summary: String,
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

pub const CSV_HEADER: [&str; 12] = [
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
];

pub fn csv_record(r: &Row) -> [String; 12] {
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
    ]
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
    pub fn new(p: Pending) -> Result<Self, ScreenError> {
        let mut w = csv::Writer::from_writer(p.create()?);
        w.write_record(CSV_HEADER).map_err(|e| csv_err(&p.tmp, e))?;
        Ok(CsvOut { w, p })
    }
    pub fn row(&mut self, r: &Row) -> Result<(), ScreenError> {
        self.w
            .write_record(csv_record(r))
            .map_err(|e| csv_err(&self.p.tmp, e))
    }
    pub fn finish(self) -> Result<Pending, ScreenError> {
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
    pub fn finish(mut self, resolved: &[Resolved]) -> Result<Pending, ScreenError> {
        let res =
            serde_json::to_string(resolved).map_err(|e| ScreenError::Internal(e.to_string()))?;
        write!(self.w, "\n],\"resolved\":{res}}}\n")
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
}

impl Writers {
    /// Completes every file (not yet renamed into place: see [`Pending::publish`]).
    pub fn finish(self, resolved: &[Resolved]) -> Result<Vec<Pending>, ScreenError> {
        let mut pending = Vec::new();
        if let Some(c) = self.csv {
            pending.push(c.finish()?);
        }
        if let Some(j) = self.json {
            pending.push(j.finish(resolved)?);
        }
        if let Some(h) = self.html {
            pending.push(h.finish(resolved)?);
        }
        Ok(pending)
    }
}

pub struct HtmlOut {
    w: BufWriter<OutFile>,
    p: Pending,
}

const HTML_HEAD: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>osteoguard worklist</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem;color:#1d1d1f}
h1{font-size:1.3rem;margin:0 0 .3rem}.meta{color:#555;font-size:.9rem;margin-bottom:1rem}
.controls{display:flex;gap:.6rem;flex-wrap:wrap;margin-bottom:.8rem}
.controls input,.controls select{padding:.35rem .5rem;font-size:.95rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f5;cursor:pointer;position:sticky;top:0;user-select:none}
th[aria-sort=ascending]::after{content:" \25B2"}th[aria-sort=descending]::after{content:" \25BC"}
.sev{font-weight:600;border-radius:3px;padding:0 .3rem}
.sev-critical{background:#b00020;color:#fff}.sev-high{background:#e65100;color:#fff}
.sev-moderate{background:#ffd54f}.sev-info{background:#e3f2fd}
.st-new{font-weight:600;color:#0b6e2e}.ev{color:#555;font-size:.8rem}
#count{color:#555;align-self:center}
</style></head><body>
"#;

const HTML_SCRIPT: &str = r#"<script>
(function(){
var t=document.getElementById('wl'),tb=t.tBodies[0],rows=Array.prototype.slice.call(tb.rows);
var q=document.getElementById('q'),fs=document.getElementById('fsev'),fc=document.getElementById('fcode'),fst=document.getElementById('fst');
var codes={};rows.forEach(function(r){codes[r.dataset.code]=1});
Object.keys(codes).sort().forEach(function(c){var o=document.createElement('option');o.value=c;o.textContent=c;fc.appendChild(o)});
function apply(){var s=q.value.toLowerCase(),sv=+fs.value,c=fc.value,st=fst.value,n=0;
rows.forEach(function(r){var ok=(+r.dataset.rank>=sv)&&(!c||r.dataset.code===c)&&(!st||r.dataset.status===st)&&(!s||r.textContent.toLowerCase().indexOf(s)>=0);
r.style.display=ok?'':'none';if(ok)n++});document.getElementById('count').textContent=n+' of '+rows.length+' rows';}
[q,fs,fc,fst].forEach(function(e){e.addEventListener('input',apply)});
var ths=t.tHead.rows[0].cells;
Array.prototype.forEach.call(ths,function(th,i){th.addEventListener('click',function(){
var asc=th.getAttribute('aria-sort')!=='ascending';Array.prototype.forEach.call(ths,function(h){h.removeAttribute('aria-sort')});
th.setAttribute('aria-sort',asc?'ascending':'descending');
rows.sort(function(a,b){var x=a.cells[i].dataset.v!==undefined?a.cells[i].dataset.v:a.cells[i].textContent,y=b.cells[i].dataset.v!==undefined?b.cells[i].dataset.v:b.cells[i].textContent;
var nx=parseFloat(x),ny=parseFloat(y);var r=(!isNaN(nx)&&!isNaN(ny)&&String(nx)===x&&String(ny)===y)?nx-ny:(x<y?-1:x>y?1:0);return asc?r:-r});
rows.forEach(function(r){tb.appendChild(r)});})});
apply();})();
</script></body></html>
"#;

impl HtmlOut {
    pub fn new(p: Pending, title: &str, meta: &str) -> Result<Self, ScreenError> {
        let mut w = p.create()?;
        let io = |e| ScreenError::io(&p.tmp, e);
        w.write_all(HTML_HEAD.as_bytes()).map_err(io)?;
        write!(
            w,
            "<h1>{}</h1><div class=\"meta\">{}</div>\n\
             <div class=\"controls\"><input id=\"q\" type=\"search\" placeholder=\"Filter (patient, text…)\" aria-label=\"Filter\">\
             <select id=\"fsev\" aria-label=\"Minimum severity\"><option value=\"1\">all severities</option><option value=\"2\">moderate and above</option><option value=\"3\">high and above</option><option value=\"4\">critical only</option></select>\
             <select id=\"fcode\" aria-label=\"Finding\"><option value=\"\">all findings</option></select>\
             <select id=\"fst\" aria-label=\"Status\"><option value=\"\">new and persisting</option><option value=\"new\">new only</option><option value=\"persisting\">persisting only</option></select>\
             <span id=\"count\"></span></div>\n\
             <table id=\"wl\"><thead><tr><th>Severity</th><th>Due</th><th>Patient</th><th>Age</th><th>Sex</th><th>Finding</th><th>Summary</th><th>Status</th><th>Risk</th><th>Evidence</th></tr></thead><tbody>\n",
            esc(title),
            esc(meta)
        )
        .map_err(io)?;
        Ok(HtmlOut { w, p })
    }
    pub fn row(&mut self, r: &Row) -> Result<(), ScreenError> {
        let sev = r.severity.as_str();
        let st = r.status.as_deref().unwrap_or("");
        writeln!(
            self.w,
            "<tr data-rank=\"{rank}\" data-code=\"{code}\" data-status=\"{st}\"><td data-v=\"{rank}\"><span class=\"sev sev-{sev}\">{sev}</span></td><td>{due}</td><td>{pid}</td><td>{age}</td><td>{sex}</td><td title=\"{code}\">{title}</td><td>{summary}</td><td class=\"st-{st}\">{st}</td><td>{risk}</td><td class=\"ev\">{ev}</td></tr>",
            rank = severity_rank(r.severity),
            code = esc(&r.code),
            due = r.due.map(|d| d.to_string()).unwrap_or_default(),
            pid = esc(&r.patient_id),
            age = r.age.map(|a| a.to_string()).unwrap_or_default(),
            sex = esc(&r.sex),
            title = esc(&r.title),
            summary = esc(&r.summary),
            risk = esc(&r.risk_category),
            ev = esc(&r.evidence.join(" ")),
        )
        .map_err(|e| ScreenError::io(&self.p.tmp, e))
    }
    pub fn finish(mut self, resolved: &[Resolved]) -> Result<Pending, ScreenError> {
        let io = |e| ScreenError::io(&self.p.tmp, e);
        self.w.write_all(b"</tbody></table>\n").map_err(io)?;
        if !resolved.is_empty() {
            write!(
                self.w,
                "<h2 style=\"font-size:1.05rem\">Resolved since the previous run ({})</h2><ul>",
                resolved.len()
            )
            .map_err(io)?;
            for r in resolved {
                write!(
                    self.w,
                    "<li>{} — {} ({})</li>",
                    esc(&r.patient_id),
                    esc(&r.code),
                    esc(&r.severity)
                )
                .map_err(io)?;
            }
            self.w.write_all(b"</ul>\n").map_err(io)?;
        }
        self.w.write_all(HTML_SCRIPT.as_bytes()).map_err(io)?;
        finish(self.w, &self.p.tmp)?;
        Ok(self.p)
    }
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

//! The embedded SQLite store: issued cards (uuid → finding code, no patient data), CDS Hooks
//! feedback, and the JWT replay (`jti`) cache.
//!
//! One connection behind a mutex (WAL journal); callers on the async runtime go through
//! `tokio::task::spawn_blocking`.

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// Causes are part of each message and not also a `source`: printing the error chain
/// (`{:#}`) would otherwise repeat them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {cause}")]
    Open {
        path: String,
        cause: rusqlite::Error,
    },
    #[error("database {path}: cannot create or write the file: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("database: {0}")]
    Sql(rusqlite::Error),
    #[error("database lock poisoned")]
    Poisoned,
    #[error("database schema version {found} is newer than this release's ({supported}): use a newer osteoguard")]
    Newer { found: i64, supported: i64 },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e)
    }
}

pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS cards (
    card_uuid    TEXT PRIMARY KEY,
    service      TEXT NOT NULL,
    finding_code TEXT NOT NULL,
    severity     TEXT NOT NULL,
    first_issued TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id                     INTEGER PRIMARY KEY,
    service                TEXT NOT NULL,
    card_uuid              TEXT NOT NULL,
    outcome                TEXT NOT NULL,
    accepted_suggestions   TEXT NOT NULL,
    override_reason_system TEXT,
    override_reason_code   TEXT,
    override_reason_display TEXT,
    user_comment           TEXT,
    outcome_timestamp      TEXT NOT NULL,
    received_at            TEXT NOT NULL,
    client                 TEXT NOT NULL,
    UNIQUE (service, card_uuid, outcome, outcome_timestamp, client)
);
CREATE TABLE IF NOT EXISTS jwt_replay (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    exp INTEGER NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE INDEX IF NOT EXISTS jwt_replay_exp ON jwt_replay (exp);
"#;

/// Schema migrations: step `i` brings a store from `PRAGMA user_version` i to i + 1. Step 0 is
/// the schema as released at 305b083 (which left `user_version` at 0; its `IF NOT EXISTS`
/// makes it a no-op on such a store); step 1 indexes feedback by card for the report's join.
const MIGRATIONS: &[&str] = &[
    SCHEMA,
    "CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card_uuid);",
];

/// The store schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the store to [`SCHEMA_VERSION`], one transaction per step; returns the version it
/// found. A store written by a newer release is refused, never downgraded.
pub fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let from: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if from > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            found: from,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(from)
}

/// The cards one hook call issued: `(uuid, finding code, severity)` each.
#[derive(Debug, Clone)]
pub struct IssuedCards {
    pub service: &'static str,
    pub cards: Vec<(String, String, String)>,
    /// When they were issued (RFC 3339).
    pub now: String,
}

/// `(service, (uuid, finding code, severity) of each card, issued at)`.
type CardRows<'a> = (&'a str, &'a [(String, String, String)], &'a str);

enum LogMessage {
    Issued(IssuedCards),
    /// Answered once everything sent before it is written.
    Flush(mpsc::SyncSender<()>),
}

/// Writes issued cards off the request's path: hook calls hand their cards to one writer thread
/// (no blocking task and no transaction per call), which writes whatever has queued up in one
/// transaction. No card is dropped: [`CardLog::close`] (the server's shutdown) writes the
/// queue before it returns, a call after it writes directly, and a failed batch is logged and
/// written again card by card.
pub struct CardLog {
    store: Arc<Store>,
    tx: Mutex<Option<mpsc::Sender<LogMessage>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// At most this many hook calls are written in one transaction.
const LOG_BATCH: usize = 256;

impl CardLog {
    pub fn start(store: Arc<Store>) -> Result<CardLog, std::io::Error> {
        let (tx, rx) = mpsc::channel::<LogMessage>();
        let s = store.clone();
        let writer = std::thread::Builder::new()
            .name("osteoguard-card-log".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut calls = Vec::new();
                    let mut flushes = Vec::new();
                    let mut next = Some(first);
                    while let Some(m) = next {
                        match m {
                            LogMessage::Issued(c) => calls.push(c),
                            LogMessage::Flush(done) => flushes.push(done),
                        }
                        next = (calls.len() < LOG_BATCH)
                            .then(|| rx.try_recv().ok())
                            .flatten();
                    }
                    write_issued(&s, &calls);
                    for done in flushes {
                        let _ = done.send(());
                    }
                }
            })?;
        Ok(CardLog {
            store,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Queues the cards of one hook call (written directly once the log is closed).
    pub fn record(&self, issued: IssuedCards) {
        let unsent = match self.tx.lock() {
            Ok(tx) => match tx.as_ref() {
                Some(tx) => tx.send(LogMessage::Issued(issued)).err().map(|e| e.0),
                None => Some(LogMessage::Issued(issued)),
            },
            Err(_) => Some(LogMessage::Issued(issued)),
        };
        if let Some(LogMessage::Issued(c)) = unsent {
            write_issued(&self.store, std::slice::from_ref(&c));
        }
    }

    /// Returns once every call queued before it is written.
    pub fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        let sent = match self.tx.lock() {
            Ok(tx) => tx
                .as_ref()
                .is_some_and(|tx| tx.send(LogMessage::Flush(done)).is_ok()),
            Err(_) => false,
        };
        if sent {
            let _ = wait.recv();
        }
    }

    /// Writes the queue and stops the writer; later calls are written directly.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = writer {
            let _ = w.join();
        }
    }
}

impl Drop for CardLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// One transaction for `calls`; if it fails, each call on its own (one bad row loses no other).
fn write_issued(store: &Store, calls: &[IssuedCards]) {
    if let Err(e) = store.record_issued(calls) {
        tracing::warn!(error = %e, calls = calls.len(), "could not record issued cards in one batch");
        for c in calls {
            if let Err(e) = store.record_issued(std::slice::from_ref(c)) {
                tracing::warn!(error = %e, service = c.service, "could not record issued cards");
            }
        }
    }
}

/// One feedback item as received (already validated).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRow {
    pub card_uuid: String,
    pub outcome: String,
    pub accepted_suggestions: Vec<String>,
    pub override_reason_system: Option<String>,
    pub override_reason_code: Option<String>,
    pub override_reason_display: Option<String>,
    pub user_comment: Option<String>,
    pub outcome_timestamp: String,
}

/// Per finding code: issued cards and what clinicians did with them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    pub finding_code: String,
    pub cards_issued: u64,
    pub feedback: u64,
    pub accepted: u64,
    pub overridden: u64,
    pub acceptance_rate: Option<f64>,
    pub override_rate: Option<f64>,
    /// `(reason code or "(none)", count)`, most frequent first.
    pub override_reasons: Vec<(String, u64)>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |cause| StoreError::Open {
            path: path.display().to_string(),
            cause,
        };
        // SQLite says only "unable to open database file": open it here first for the
        // operating system's reason (no such directory, read-only file system, permission).
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|cause| StoreError::Io {
                path: path.display().to_string(),
                cause,
            })?;
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        migrate(&mut conn).map_err(|e| match e {
            StoreError::Sql(cause) => open_err(cause),
            other => other,
        })?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Records a JWT id; `Ok(false)` when `(iss, jti)` was already seen (a replay).
    /// Expired entries (older than `now - skew`) are purged on the way.
    pub fn check_and_record_jti(
        &self,
        iss: &str,
        jti: &str,
        exp: i64,
        now: i64,
        skew: i64,
    ) -> Result<bool, StoreError> {
        let c = self.conn()?;
        c.execute(
            "DELETE FROM jwt_replay WHERE exp < ?1",
            params![now.saturating_sub(skew)],
        )?;
        let n = c.execute(
            "INSERT OR IGNORE INTO jwt_replay (iss, jti, exp) VALUES (?1, ?2, ?3)",
            params![iss, jti, exp],
        )?;
        Ok(n == 1)
    }

    /// Remembers which finding each issued card uuid stands for (first issue wins).
    pub fn record_cards(
        &self,
        service: &str,
        cards: &[(String, String, String)],
        now: &str,
    ) -> Result<(), StoreError> {
        self.insert_cards(&[(service, cards, now)])
    }

    /// [`Store::record_cards`] of several hook calls, in one transaction.
    pub fn record_issued(&self, calls: &[IssuedCards]) -> Result<(), StoreError> {
        let calls: Vec<CardRows> = calls
            .iter()
            .map(|c| (c.service, c.cards.as_slice(), c.now.as_str()))
            .collect();
        self.insert_cards(&calls)
    }

    fn insert_cards(&self, calls: &[CardRows]) -> Result<(), StoreError> {
        if calls.iter().all(|(_, cards, _)| cards.is_empty()) {
            return Ok(());
        }
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO cards (card_uuid, service, finding_code, severity, first_issued)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (service, cards, now) in calls {
                for (uuid, code, severity) in *cards {
                    st.execute(params![uuid, service, code, severity, now])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores feedback items; a repeat of an identical item (same service, card, outcome,
    /// outcome timestamp and client) is ignored. Returns `(inserted, repeats)`.
    pub fn record_feedback(
        &self,
        service: &str,
        client: &str,
        rows: &[FeedbackRow],
        received_at: &str,
    ) -> Result<(usize, usize), StoreError> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let mut inserted = 0;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO feedback (service, card_uuid, outcome, accepted_suggestions,
                   override_reason_system, override_reason_code, override_reason_display,
                   user_comment, outcome_timestamp, received_at, client)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for r in rows {
                let accepted =
                    serde_json::to_string(&r.accepted_suggestions).unwrap_or_else(|_| "[]".into());
                inserted += st.execute(params![
                    service,
                    r.card_uuid,
                    r.outcome,
                    accepted,
                    r.override_reason_system,
                    r.override_reason_code,
                    r.override_reason_display,
                    r.user_comment,
                    r.outcome_timestamp,
                    received_at,
                    client
                ])?;
            }
        }
        tx.commit()?;
        Ok((inserted, rows.len() - inserted))
    }

    /// The finding code a card uuid was issued for, if this service issued it.
    pub fn card_finding(&self, uuid: &str) -> Result<Option<String>, StoreError> {
        let c = self.conn()?;
        Ok(c.query_row(
            "SELECT finding_code FROM cards WHERE card_uuid = ?1",
            params![uuid],
            |r| r.get(0),
        )
        .optional()?)
    }

    pub fn feedback_count(&self) -> Result<u64, StoreError> {
        let c = self.conn()?;
        Ok(c.query_row("SELECT COUNT(*) FROM feedback", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Acceptance and override rates per finding code. Feedback on a card this service never
    /// issued is reported under `(unknown card)`.
    pub fn report(&self) -> Result<Vec<ReportRow>, StoreError> {
        let c = self.conn()?;
        let mut rows: std::collections::BTreeMap<String, ReportRow> = Default::default();
        let blank = |code: &str| ReportRow {
            finding_code: code.to_string(),
            cards_issued: 0,
            feedback: 0,
            accepted: 0,
            overridden: 0,
            acceptance_rate: None,
            override_rate: None,
            override_reasons: Vec::new(),
        };
        {
            let mut st =
                c.prepare("SELECT finding_code, COUNT(*) FROM cards GROUP BY finding_code")?;
            let it = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for x in it {
                let (code, n) = x?;
                rows.entry(code.clone())
                    .or_insert_with(|| blank(&code))
                    .cards_issued = n as u64;
            }
        }
        {
            let mut st = c.prepare(
                "SELECT COALESCE(c.finding_code, '(unknown card)'), f.outcome,
                        COALESCE(f.override_reason_code, '(none)'), COUNT(*)
                 FROM feedback f LEFT JOIN cards c ON c.card_uuid = f.card_uuid
                 GROUP BY 1, 2, 3",
            )?;
            let it = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)? as u64,
                ))
            })?;
            for x in it {
                let (code, outcome, reason, n) = x?;
                let row = rows.entry(code.clone()).or_insert_with(|| blank(&code));
                row.feedback += n;
                match outcome.as_str() {
                    "accepted" => row.accepted += n,
                    "overridden" => {
                        row.overridden += n;
                        row.override_reasons.push((reason, n));
                    }
                    _ => {}
                }
            }
        }
        let mut out: Vec<ReportRow> = rows.into_values().collect();
        for r in &mut out {
            if r.feedback > 0 {
                r.acceptance_rate = Some(r.accepted as f64 / r.feedback as f64);
                r.override_rate = Some(r.overridden as f64 / r.feedback as f64);
            }
            r.override_reasons
                .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(n: usize) -> IssuedCards {
        IssuedCards {
            service: "osteoguard-patient-view",
            cards: vec![(format!("card-{n}"), format!("code-{n}"), "high".into())],
            now: "2026-12-01T00:00:00Z".into(),
        }
    }

    fn cards_in(store: &Store) -> i64 {
        let c = store.conn().unwrap();
        c.query_row("SELECT COUNT(*) FROM cards", [], |r| r.get(0))
            .unwrap()
    }

    /// Every call handed to the log is in the database: after a flush, after close (the
    /// queue written first), and a call after close (written directly).
    #[test]
    fn the_card_log_loses_no_card() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("cards.db")).unwrap());
        let log = CardLog::start(store.clone()).unwrap();
        log.record(issued(0));
        log.flush();
        assert_eq!(
            store.card_finding("card-0").unwrap().as_deref(),
            Some("code-0")
        );
        // More than one batch queued at once, then closed.
        for n in 1..=(2 * LOG_BATCH + 3) {
            log.record(issued(n));
        }
        log.close();
        assert_eq!(cards_in(&store), 2 * LOG_BATCH as i64 + 4);
        log.record(issued(10_000));
        log.flush();
        assert_eq!(
            store.card_finding("card-10000").unwrap().as_deref(),
            Some("code-10000")
        );
        // The first issue of a uuid wins.
        let mut again = issued(1);
        again.cards[0].1 = "other".into();
        log.record(again);
        assert_eq!(
            store.card_finding("card-1").unwrap().as_deref(),
            Some("code-1")
        );
    }

    fn row(card: &str, outcome: &str, ts: &str) -> FeedbackRow {
        FeedbackRow {
            card_uuid: card.into(),
            outcome: outcome.into(),
            accepted_suggestions: vec![],
            override_reason_system: None,
            override_reason_code: (outcome == "overridden").then(|| "patient-declined".into()),
            override_reason_display: None,
            user_comment: None,
            outcome_timestamp: ts.into(),
        }
    }

    #[test]
    fn jti_replay_is_detected_and_expired_entries_purged() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        assert!(s.check_and_record_jti("iss", "a", 1000, 900, 60).unwrap());
        assert!(!s.check_and_record_jti("iss", "a", 1000, 950, 60).unwrap());
        assert!(s.check_and_record_jti("other", "a", 1000, 950, 60).unwrap());
        // Long after expiry the entry is purged (the token itself would be rejected as expired).
        assert!(s.check_and_record_jti("iss", "a", 5000, 4000, 60).unwrap());
    }

    #[test]
    fn feedback_is_idempotent_and_reported_per_finding() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        s.record_cards(
            "svc",
            &[
                ("u1".into(), "denosumab-overdue".into(), "high".into()),
                ("u2".into(), "gc-bone-protection".into(), "moderate".into()),
            ],
            "2024-01-01T00:00:00Z",
        )
        .unwrap();
        let rows = [row("u1", "accepted", "t1"), row("u2", "overridden", "t1")];
        assert_eq!(s.record_feedback("svc", "c", &rows, "now").unwrap(), (2, 0));
        assert_eq!(s.record_feedback("svc", "c", &rows, "now").unwrap(), (0, 2));
        s.record_feedback("svc", "c", &[row("zz", "accepted", "t1")], "now")
            .unwrap();
        let r = s.report().unwrap();
        let d = r
            .iter()
            .find(|r| r.finding_code == "denosumab-overdue")
            .unwrap();
        assert_eq!(
            (d.cards_issued, d.accepted, d.acceptance_rate),
            (1, 1, Some(1.0))
        );
        let g = r
            .iter()
            .find(|r| r.finding_code == "gc-bone-protection")
            .unwrap();
        assert_eq!(g.override_rate, Some(1.0));
        assert_eq!(
            g.override_reasons,
            vec![("patient-declined".to_string(), 1)]
        );
        assert!(r.iter().any(|r| r.finding_code == "(unknown card)"));
    }
    /// A store written by the 305b083 release (its exact DDL, `user_version` 0, with data) is
    /// migrated forward and keeps its data; migrating again is a no-op; a newer one is refused.
    #[test]
    fn a_store_of_the_305b083_release_is_migrated_forward() {
        const RELEASE_305B083: &str = r#"
CREATE TABLE IF NOT EXISTS cards (
    card_uuid    TEXT PRIMARY KEY,
    service      TEXT NOT NULL,
    finding_code TEXT NOT NULL,
    severity     TEXT NOT NULL,
    first_issued TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id                     INTEGER PRIMARY KEY,
    service                TEXT NOT NULL,
    card_uuid              TEXT NOT NULL,
    outcome                TEXT NOT NULL,
    accepted_suggestions   TEXT NOT NULL,
    override_reason_system TEXT,
    override_reason_code   TEXT,
    override_reason_display TEXT,
    user_comment           TEXT,
    outcome_timestamp      TEXT NOT NULL,
    received_at            TEXT NOT NULL,
    client                 TEXT NOT NULL,
    UNIQUE (service, card_uuid, outcome, outcome_timestamp, client)
);
CREATE TABLE IF NOT EXISTS jwt_replay (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    exp INTEGER NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE INDEX IF NOT EXISTS jwt_replay_exp ON jwt_replay (exp);
"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feedback.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(RELEASE_305B083).unwrap();
            c.execute_batch(
                "INSERT INTO cards VALUES ('u1', 'osteoguard', 'denosumab-overdue', 'high', '2024-01-01');
                 INSERT INTO feedback(service, card_uuid, outcome, accepted_suggestions,
                   outcome_timestamp, received_at, client)
                 VALUES ('osteoguard', 'u1', 'accepted', '[]', '2024-01-01T00:00:00Z', '2024-01-01', 'c');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.feedback_count().unwrap(),
            1,
            "the release's data is kept"
        );
        assert_eq!(
            store.card_finding("u1").unwrap().as_deref(),
            Some("denosumab-overdue")
        );
        drop(store);
        let mut c = Connection::open(&path).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let idx: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'feedback_card'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(idx, 1);
        assert_eq!(migrate(&mut c).unwrap(), SCHEMA_VERSION);
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(c);
        let e = Store::open(&path).err().expect("a newer schema is refused");
        assert!(e.to_string().contains("newer"), "{e}");
    }
}

//! The screening registry's history (`osteoguard screen --db`), read-only.
//!
//! **The one place that knows the registry's layout.** It relies on exactly these tables and
//! columns, and nothing else:
//! * `runs(run_id INTEGER, as_of TEXT 'YYYY-MM-DD')`
//! * `findings(run_id INTEGER, patient_id TEXT, code TEXT, severity TEXT, status TEXT)`
//!
//! Status values of both generations are accepted: `new`, `persisting`, `resolved` (the first
//! registry) and `escalated`, `de-escalated`, `recheck-needed` (issue 22; spellings with `_` or
//! spaces and any case are normalised). Any other value is counted as `other`, never dropped.
//! A registry of the first generation marks a finding `resolved` whenever it disappeared, also
//! when its data only aged out; the figures say so (`resolvedMeansEvidence: false`).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::ProgrammeError;

/// The age bands of open critical items, in days since first flagged (upper bounds; the last
/// band is open-ended). Operational bands of the worklist, not clinical thresholds.
pub const AGE_BANDS: [(&str, Option<i64>); 4] = [
    ("0–30 days", Some(30)),
    ("31–90 days", Some(90)),
    ("91–180 days", Some(180)),
    ("over 180 days", None),
];

/// A status, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    New,
    Persisting,
    Escalated,
    DeEscalated,
    Resolved,
    RecheckNeeded,
    Other,
}

impl Status {
    pub fn parse(s: &str) -> Status {
        let n: String = s
            .trim()
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c == '_' || c == ' ' { '-' } else { c })
            .collect();
        match n.as_str() {
            "new" => Status::New,
            "persisting" => Status::Persisting,
            "escalated" => Status::Escalated,
            "de-escalated" | "deescalated" => Status::DeEscalated,
            "resolved" => Status::Resolved,
            "recheck-needed" | "recheck" => Status::RecheckNeeded,
            _ => Status::Other,
        }
    }
    /// The finding holds at that run (it is on the worklist).
    pub fn is_current(self) -> bool {
        matches!(
            self,
            Status::New | Status::Persisting | Status::Escalated | Status::DeEscalated
        )
    }
}

/// One run's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFigures {
    pub run_id: i64,
    pub as_of: String,
    /// Patients with at least one current finding.
    pub patients_flagged: usize,
    pub new: usize,
    pub persisting: usize,
    pub escalated: usize,
    pub de_escalated: usize,
    pub resolved: usize,
    pub recheck_needed: usize,
    pub other: usize,
}

/// Days from first flagged to resolved, per finding code.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolutionTimes {
    pub code: String,
    pub resolved: usize,
    pub median_days: f64,
    /// Nearest-rank 90th percentile.
    pub p90_days: i64,
}

/// Open critical items of the last run by how long they have been open.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgeBand {
    pub band: String,
    pub count: usize,
}

/// The registry's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryFigures {
    pub runs: Vec<RunFigures>,
    pub resolution: Vec<ResolutionTimes>,
    pub open_critical_by_age: Vec<AgeBand>,
    /// Whether `resolved` means positive evidence (a registry with the issue-22 statuses), or
    /// only "no longer reported" (the first registry: aged-out data counted as resolved too).
    pub resolved_means_evidence: bool,
}

struct Row {
    run: i64,
    patient: String,
    code: String,
    severity: String,
    status: Status,
}

fn db(e: rusqlite::Error) -> ProgrammeError {
    ProgrammeError::Registry(e.to_string())
}

/// Median of sorted values.
pub fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0
    })
}

/// Nearest-rank percentile `p` (0–100] of sorted values.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (u64::from(p) * n as u64).div_ceil(100).max(1) as usize;
    sorted.get(rank - 1).copied()
}

/// Reads the registry at `path` (opened read-only).
pub fn read(path: &Path) -> Result<RegistryFigures, ProgrammeError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db)?;
    let mut runs: Vec<(i64, String)> = conn
        .prepare("SELECT run_id, as_of FROM runs ORDER BY run_id")
        .map_err(db)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    runs.sort();
    let rows: Vec<Row> = conn
        .prepare(
            "SELECT run_id, patient_id, code, severity, status FROM findings
             ORDER BY run_id, patient_id, code",
        )
        .map_err(db)?
        .query_map([], |r| {
            Ok(Row {
                run: r.get(0)?,
                patient: r.get(1)?,
                code: r.get(2)?,
                severity: r.get(3)?,
                status: Status::parse(&r.get::<_, String>(4)?),
            })
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)?;
    let findings_sql: String = conn
        .query_row(
            "SELECT coalesce(sql, '') FROM sqlite_master WHERE type = 'table' AND name = 'findings'",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    let new_statuses = findings_sql.to_ascii_lowercase().contains("recheck")
        || rows
            .iter()
            .any(|r| matches!(r.status, Status::Escalated | Status::RecheckNeeded));
    Ok(figures(&runs, &rows, user_version > 0 || new_statuses))
}

fn figures(runs: &[(i64, String)], rows: &[Row], new_schema: bool) -> RegistryFigures {
    let as_of: BTreeMap<i64, Option<NaiveDate>> = runs
        .iter()
        .map(|(id, d)| (*id, NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()))
        .collect();
    let mut per_run = Vec::new();
    for (id, date) in runs {
        let mut f = RunFigures {
            run_id: *id,
            as_of: date.clone(),
            patients_flagged: 0,
            new: 0,
            persisting: 0,
            escalated: 0,
            de_escalated: 0,
            resolved: 0,
            recheck_needed: 0,
            other: 0,
        };
        let mut flagged = std::collections::BTreeSet::new();
        for r in rows.iter().filter(|r| r.run == *id) {
            match r.status {
                Status::New => f.new += 1,
                Status::Persisting => f.persisting += 1,
                Status::Escalated => f.escalated += 1,
                Status::DeEscalated => f.de_escalated += 1,
                Status::Resolved => f.resolved += 1,
                Status::RecheckNeeded => f.recheck_needed += 1,
                Status::Other => f.other += 1,
            }
            if r.status.is_current() {
                flagged.insert(r.patient.as_str());
            }
        }
        f.patients_flagged = flagged.len();
        per_run.push(f);
    }
    // Episodes per (patient, code): opened at the first current row, closed at `resolved`.
    let mut open: BTreeMap<(&str, &str), (i64, &str)> = BTreeMap::new();
    let mut durations: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let day_of = |run: i64| as_of.get(&run).copied().flatten();
    for (id, _) in runs {
        for r in rows.iter().filter(|r| r.run == *id) {
            let key = (r.patient.as_str(), r.code.as_str());
            if r.status.is_current() {
                open.entry(key).or_insert((r.run, r.severity.as_str()));
                if let Some(e) = open.get_mut(&key) {
                    e.1 = r.severity.as_str();
                }
            } else if r.status == Status::Resolved {
                if let Some((first, _)) = open.remove(&key) {
                    if let (Some(a), Some(b)) = (day_of(first), day_of(r.run)) {
                        durations.entry(key.1).or_default().push((b - a).num_days());
                    }
                }
            } else if r.status == Status::RecheckNeeded {
                // Not resolved: the episode stays open for the resolution times, but it is no
                // longer on the worklist.
            }
        }
        // A finding absent from a run without a row ends its episode unresolved.
        let present: std::collections::BTreeSet<(&str, &str)> = rows
            .iter()
            .filter(|r| r.run == *id)
            .map(|r| (r.patient.as_str(), r.code.as_str()))
            .collect();
        open.retain(|k, _| present.contains(k));
    }
    let resolution = durations
        .into_iter()
        .filter_map(|(code, mut v)| {
            v.sort();
            Some(ResolutionTimes {
                code: code.to_string(),
                resolved: v.len(),
                median_days: median(&v)?,
                p90_days: percentile(&v, 90)?,
            })
        })
        .collect();
    // Open critical items at the last run.
    let mut bands: Vec<AgeBand> = AGE_BANDS
        .iter()
        .map(|(b, _)| AgeBand {
            band: b.to_string(),
            count: 0,
        })
        .collect();
    if let Some((last, _)) = runs.last() {
        for r in rows
            .iter()
            .filter(|r| r.run == *last && r.status.is_current())
        {
            if !r.severity.eq_ignore_ascii_case("critical") {
                continue;
            }
            let key = (r.patient.as_str(), r.code.as_str());
            let first = open.get(&key).map(|e| e.0).unwrap_or(*last);
            let age = match (day_of(first), day_of(*last)) {
                (Some(a), Some(b)) => (b - a).num_days(),
                _ => 0,
            };
            let i = AGE_BANDS
                .iter()
                .position(|(_, max)| max.is_none_or(|m| age <= m))
                .unwrap_or(AGE_BANDS.len() - 1);
            if let Some(b) = bands.get_mut(i) {
                b.count += 1;
            }
        }
    }
    RegistryFigures {
        runs: per_run,
        resolution,
        open_critical_by_age: bands,
        resolved_means_evidence: new_schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_both_generations_are_understood() {
        assert_eq!(Status::parse("new"), Status::New);
        assert_eq!(Status::parse("De_Escalated"), Status::DeEscalated);
        assert_eq!(Status::parse("recheck needed"), Status::RecheckNeeded);
        assert_eq!(Status::parse("recheck-needed"), Status::RecheckNeeded);
        assert_eq!(Status::parse("something-else"), Status::Other);
    }

    #[test]
    fn median_and_nearest_rank_percentile() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(median(&v), Some(5.5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(median(&[3, 5, 100]), Some(5.0));
        assert_eq!(percentile(&[], 90), None);
    }
}

//! The programme's figures from the per-patient answers — knowledge.md §13: proportions among
//! patients with an index fracture, pending and UNKNOWN counted apart, the level beside each
//! proportion, and KPI 11 (data completeness).
//!
//! * **Proportion** = TRUE / (TRUE + FALSE). PENDING and EXCLUDED patients are out of the
//!   denominator (§13). UNKNOWN is not FALSE (§1.4): it is out of the denominator too, counted
//!   and shown beside; `percentIfUnknownNotMet` (TRUE / (TRUE + FALSE + UNKNOWN)) is the
//!   lower bound, shown so that missing data cannot pass for achievement.
//! * **Level** (§13): < 50 % red, 50–80 % amber, > 80 % green; KPI 6 at the paper's 50 %
//!   (≥ 50 % green, else red). KPI 1 is a count: no level.
//! * **KPI 11** — "for each KPI 3–10, the share of patients for whom the answer is TRUE or FALSE
//!   (not UNKNOWN)", among the patients the KPI applies to (not pending, not excluded).

use std::collections::BTreeMap;

use serde::Serialize;

use super::kpis::{def, KPIS};
use super::{IndexOutcome, KpiStatus, PatientProgramme};
use crate::thresholds::{
    KPI6_LEVEL_PERCENT, KPI_LEVEL_GREEN_ABOVE_PERCENT, KPI_LEVEL_RED_BELOW_PERCENT,
};

/// The §13 achievement level of a proportion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Red,
    Amber,
    Green,
}

/// The level of `percent` for KPI `kpi` (§13).
pub fn level(kpi: u8, percent: f64) -> Level {
    if kpi == 6 {
        return if percent >= KPI6_LEVEL_PERCENT {
            Level::Green
        } else {
            Level::Red
        };
    }
    if percent < KPI_LEVEL_RED_BELOW_PERCENT {
        Level::Red
    } else if percent > KPI_LEVEL_GREEN_ABOVE_PERCENT {
        Level::Green
    } else {
        Level::Amber
    }
}

/// The patients behind each answer (drill-down), `Patient/id`, sorted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PatientLists {
    #[serde(rename = "true")]
    pub yes: Vec<String>,
    #[serde(rename = "false")]
    pub no: Vec<String>,
    pub unknown: Vec<String>,
    pub pending: Vec<String>,
    pub excluded: Vec<String>,
}

/// One KPI over the programme.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KpiSummary {
    pub kpi: u8,
    pub title: String,
    /// The §13 row, quoted.
    pub specification: String,
    pub is_count: bool,
    pub true_count: usize,
    pub false_count: usize,
    pub unknown: usize,
    pub pending: usize,
    pub excluded: usize,
    /// TRUE + FALSE.
    pub denominator: usize,
    /// TRUE / (TRUE + FALSE) in percent; `null` without a denominator.
    pub percent: Option<f64>,
    /// TRUE / (TRUE + FALSE + UNKNOWN) in percent: the lower bound.
    pub percent_if_unknown_not_met: Option<f64>,
    /// Level of `percent`; `null` for a count or without a denominator.
    pub level: Option<Level>,
    pub patients: PatientLists,
}

/// KPI 11 for one of KPIs 3–10.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Completeness {
    pub kpi: u8,
    /// Patients answered TRUE or FALSE.
    pub decided: usize,
    /// Patients the KPI applies to (not pending, not excluded).
    pub applicable: usize,
    pub percent: Option<f64>,
    pub level: Option<Level>,
}

/// The programme's §13 figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgrammeSummary {
    pub patients: usize,
    /// Patients with an index fracture in the period (the KPIs' population).
    pub index_patients: usize,
    /// Patients by index outcome (`index`, `re-fracture`, `under-age`, `age-unknown`,
    /// `onset-unknown`, `none`), with their lists except for `none`.
    pub by_index_outcome: BTreeMap<String, usize>,
    pub refracture_patients: Vec<String>,
    pub age_unknown_patients: Vec<String>,
    pub onset_unknown_patients: Vec<String>,
    pub kpis: Vec<KpiSummary>,
    /// KPI 11, one entry per KPI 3–10.
    pub completeness: Vec<Completeness>,
    /// KPI 11 over all of KPIs 3–10 (sum of decided / sum of applicable).
    pub completeness_overall: Completeness,
}

fn percent(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| (num as f64) * 100.0 / (den as f64))
}

/// Aggregates per-patient evaluations (in any order; lists come out sorted).
pub fn summarise(patients: &[PatientProgramme]) -> ProgrammeSummary {
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    let mut refracture = Vec::new();
    let mut age_unknown = Vec::new();
    let mut onset_unknown = Vec::new();
    for p in patients {
        *by_outcome.entry(p.index.label().to_string()).or_default() += 1;
        match p.index {
            IndexOutcome::Refracture { .. } => refracture.push(p.patient.clone()),
            IndexOutcome::AgeUnknown { .. } => age_unknown.push(p.patient.clone()),
            IndexOutcome::OnsetUnknown { .. } => onset_unknown.push(p.patient.clone()),
            _ => {}
        }
    }
    let index: Vec<&PatientProgramme> = patients
        .iter()
        .filter(|p| matches!(p.index, IndexOutcome::Index(_)))
        .collect();
    let mut kpis = Vec::new();
    for k in KPIS.iter() {
        let mut lists = PatientLists::default();
        for p in &index {
            let Some(r) = p.kpi(k.number) else { continue };
            let list = match r.status {
                KpiStatus::True => &mut lists.yes,
                KpiStatus::False => &mut lists.no,
                KpiStatus::Unknown => &mut lists.unknown,
                KpiStatus::Pending => &mut lists.pending,
                KpiStatus::Excluded => &mut lists.excluded,
            };
            list.push(p.patient.clone());
        }
        for l in [
            &mut lists.yes,
            &mut lists.no,
            &mut lists.unknown,
            &mut lists.pending,
            &mut lists.excluded,
        ] {
            l.sort();
        }
        let (t, f, u) = (lists.yes.len(), lists.no.len(), lists.unknown.len());
        let pct = percent(t, t + f);
        kpis.push(KpiSummary {
            kpi: k.number,
            title: k.title.to_string(),
            specification: k.spec.to_string(),
            is_count: k.is_count,
            true_count: t,
            false_count: f,
            unknown: u,
            pending: lists.pending.len(),
            excluded: lists.excluded.len(),
            denominator: t + f,
            percent: pct,
            percent_if_unknown_not_met: percent(t, t + f + u),
            level: if k.is_count {
                None
            } else {
                pct.map(|x| level(k.number, x))
            },
            patients: lists,
        });
    }
    let completeness: Vec<Completeness> = kpis
        .iter()
        .filter(|k| def(k.kpi).is_some_and(|d| d.window_end_day.is_some()))
        .map(|k| {
            let decided = k.true_count + k.false_count;
            let applicable = decided + k.unknown;
            let pct = percent(decided, applicable);
            Completeness {
                kpi: k.kpi,
                decided,
                applicable,
                percent: pct,
                level: pct.map(|x| level(11, x)),
            }
        })
        .collect();
    let decided: usize = completeness.iter().map(|c| c.decided).sum();
    let applicable: usize = completeness.iter().map(|c| c.applicable).sum();
    let overall_pct = percent(decided, applicable);
    refracture.sort();
    age_unknown.sort();
    onset_unknown.sort();
    ProgrammeSummary {
        patients: patients.len(),
        index_patients: index.len(),
        by_index_outcome: by_outcome,
        refracture_patients: refracture,
        age_unknown_patients: age_unknown,
        onset_unknown_patients: onset_unknown,
        kpis,
        completeness,
        completeness_overall: Completeness {
            kpi: 11,
            decided,
            applicable,
            percent: overall_pct,
            level: overall_pct.map(|x| level(11, x)),
        },
    }
}

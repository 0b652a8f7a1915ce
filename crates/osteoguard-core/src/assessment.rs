//! The assessment: the one results model every output (text, JSON, HTML, CDS cards, worklists)
//! is rendered from.
//!
//! *API boundary:* serialised with serde as schema `osteoguard.assessment/1` (README). Fields may
//! be added; none renamed or removed. Unknown numbers are `null`, never 0.

use chrono::NaiveDate;
use serde::Serialize;

use crate::config::{Config, Provenance};
use crate::engine::{self, DraftOrder, Evaluation};
use crate::facts::denosumab::Schedule;
use crate::facts::dxa::WhoCategory;
use crate::facts::spine::LevelState;
use crate::finding::{DataQualityIssue, Evidence, Finding, Task};
use crate::model::{DxaSite, PatientRecord, ProcedureKind, Sex, SourceRef};
use crate::rules::safety::ZoledronateRenal;
use crate::tri::Tri;

pub const SCHEMA: &str = "osteoguard.assessment/1";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    pub schema: String,
    pub patient: PatientSummary,
    pub as_of: NaiveDate,
    pub fracture_risk: FractureRisk,
    pub glucocorticoid: GlucocorticoidSummary,
    pub denosumab: DenosumabSummary,
    pub bone_density: BoneDensitySummary,
    pub spine: Vec<SpineLevel>,
    /// Dated events for charts: fractures, procedures, antiresorptive doses, pain scores.
    pub timeline: Timeline,
    pub findings: Vec<Finding>,
    pub tasks: Vec<Task>,
    pub data_quality: Vec<DataQualityIssue>,
    pub provenance: Provenance,
    /// The §8 renal verdict for zoledronic acid at as-of: `acceptable | contraindicated |
    /// unknown` (the CDS cards offer zoledronic acid only when `acceptable`).
    pub zoledronate_renal: ZoledronateRenal,
    /// Threshold values the renderings draw (chart lines and shading), from the threshold
    /// table, so a site override changes the chart too.
    pub display_thresholds: DisplayThresholds,
    /// The draft orders of an order-hook what-if evaluation ([`assess_what_if`]), as sent;
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub draft_orders: Vec<DraftOrder>,
}

/// Threshold values the chart draws (knowledge.md §2.6/§2.7, §5.1, §6.1/§3.2).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisplayThresholds {
    /// GC dose lines (mg PEq/day): the course threshold and the higher-dose band.
    pub gc_dose_lines_mg_per_day: Vec<f64>,
    /// T-score lines: osteoporosis and the very-high-risk band.
    pub t_score_lines: Vec<f64>,
    /// Days one denosumab dose covers (`DUE`).
    pub denosumab_cover_days: i64,
    /// Days after the due date a dose is still on time (`GRACE_END − DUE`, LYU-2020).
    pub denosumab_grace_days: i64,
}

impl DisplayThresholds {
    pub fn from(t: &crate::thresholds::Thresholds) -> Self {
        DisplayThresholds {
            gc_dose_lines_mg_per_day: vec![t.gc_scope_min_peq_mg, t.gc_high_dose_peq_mg],
            t_score_lines: vec![t.t_high, t.t_very_high],
            denosumab_cover_days: t.dmab_due_days,
            denosumab_grace_days: t.dmab_grace_end_days - t.dmab_due_days,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PatientSummary {
    pub reference: String,
    pub age_years: Option<i64>,
    pub sex: Sex,
    pub birth_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FractureRisk {
    /// `very-high | high | moderate | low | unknown`.
    pub category: String,
    pub basis: Vec<String>,
    /// Decision-table row of knowledge.md §3.2 (e.g. `A1`).
    pub row: Option<String>,
    pub evidence: Vec<Evidence>,
    pub gc_adjusted_frax_mof_percent: Option<f64>,
    pub gc_adjusted_frax_hip_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct GlucocorticoidSummary {
    pub current_prednisone_equivalent_mg_per_day: Option<f64>,
    #[serde(rename = "cumulativePrednisoneEquivalentGramsLast12Months")]
    pub cumulative_prednisone_equivalent_grams_last_12_months: Option<f64>,
    /// `true | false | unknown` (§2.6).
    pub qualifying: Tri,
    pub continuous_days_at_or_above_2_5_mg: i64,
    pub days_at_or_above_30_mg_last_365: i64,
    pub course_start: Option<NaiveDate>,
    pub physiologic_replacement: bool,
    /// Daily PEq change points for charts: `[date, mg/day]`.
    pub series: Vec<(NaiveDate, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DenosumabSummary {
    pub last_dose: Option<NaiveDate>,
    pub next_due: Option<NaiveDate>,
    /// `not-documented | on-schedule | due-soon | overdue | long-overdue | transitioned |
    /// dates-unknown`.
    pub status: String,
    pub dose_count: usize,
    pub doses: Vec<NaiveDate>,
    pub transition: Option<NaiveDate>,
    pub transition_agent: Option<String>,
    /// The schedule from the last dose (next due, due-soon start, end of grace, long-delay date,
    /// transition due and its CTX dates), computed once in the core (§5.1, §5.3); `null`
    /// without a dated dose.
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct BoneDensitySummary {
    pub who_category: Option<WhoCategory>,
    pub lowest_t_score: Option<f64>,
    pub lowest_t_score_site: Option<DxaSite>,
    pub lowest_t_score_date: Option<NaiveDate>,
    pub latest_dxa: Option<NaiveDate>,
    /// Every T-score reading: `{date, site, value, reference}`.
    pub t_scores: Vec<TScorePoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TScorePoint {
    pub date: NaiveDate,
    pub site: DxaSite,
    pub value: f64,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SpineLevel {
    pub level: String,
    pub state: LevelState,
    pub since: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    /// First and last dated item of the visible record.
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub fractures: Vec<TimelineFracture>,
    pub procedures: Vec<TimelineProcedure>,
    pub antiresorptive_doses: Vec<TimelineDose>,
    pub pain: Vec<TimelinePain>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TimelineFracture {
    /// `L1`, `T5-T6`, `unspecified`, or a non-vertebral site (`hip`, `wrist` …).
    pub site: String,
    pub onset: Option<NaiveDate>,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TimelineProcedure {
    pub kind: ProcedureKind,
    pub levels: Vec<String>,
    pub date: NaiveDate,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TimelineDose {
    pub agent: String,
    pub date: NaiveDate,
    /// Days the dose covers (denosumab 182, zoledronate 365, …), for shading.
    pub covers_days: i64,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TimelinePain {
    pub date: NaiveDate,
    pub value: f64,
    pub reference: String,
}

/// Rounds for display and stable JSON (the rules compare unrounded values, §3.3).
fn round(x: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (x * p).round() / p
}

/// Evaluates `record` at `as_of` with `config`. Pure: same inputs, same output.
pub fn assess(record: &PatientRecord, as_of: NaiveDate, config: &Config) -> Assessment {
    assess_with_issues(record, &[], as_of, config)
}

/// As [`assess`], adding the data-quality issues the reader met.
pub fn assess_with_issues(
    record: &PatientRecord,
    reader_issues: &[DataQualityIssue],
    as_of: NaiveDate,
    config: &Config,
) -> Assessment {
    let ev = engine::evaluate(record, as_of, config);
    let timeline = crate::timeline::build(&engine::visible_view(record, as_of), &ev, config);
    let mut a = build(record, reader_issues, as_of, config, ev);
    a.timeline = timeline;
    a
}

/// The order hooks' what-if assessment (knowledge.md §9 "Order hooks", v0.10.3): `record`
/// holds the draft orders `drafts` (MedicationRequests, status as sent); they are evaluated as
/// if signed ([`engine::as_if_signed`]) and every finding — clause (c) of
/// `denosumab-discontinuation-without-transition` and the §8 checks included — comes from this
/// one assessment.
pub fn assess_what_if(
    record: &PatientRecord,
    reader_issues: &[DataQualityIssue],
    drafts: &[SourceRef],
    as_of: NaiveDate,
    config: &Config,
) -> Assessment {
    let (signed, _) = engine::as_if_signed(record, drafts, as_of);
    let ev = engine::evaluate_what_if(record, drafts, as_of, config);
    let timeline = crate::timeline::build(&engine::visible_view(&signed, as_of), &ev, config);
    let mut a = build(&signed, reader_issues, as_of, config, ev);
    a.timeline = timeline;
    a
}

fn build(
    record: &PatientRecord,
    reader_issues: &[DataQualityIssue],
    as_of: NaiveDate,
    config: &Config,
    ev: Evaluation,
) -> Assessment {
    let Evaluation {
        facts:
            engine::Facts {
                gc,
                spine,
                dxa,
                dmab,
                therapy: _,
                risk,
            },
        outcome,
        age,
        drafts,
        zoledronate_renal,
    } = ev;
    let t = &config.thresholds;

    let days_since = dmab.days_since_last(as_of);
    let status = if dmab.transition.is_some() {
        "transitioned"
    } else if dmab.d_last.is_none() && !dmab.undated.is_empty() {
        "dates-unknown"
    } else {
        match days_since {
            None => "not-documented",
            Some(d) if d < t.dmab_due_soon_start_days => "on-schedule",
            Some(d) if d <= t.dmab_grace_end_days => "due-soon",
            Some(d) if d <= t.dmab_long_delay_days => "overdue",
            Some(_) => "long-overdue",
        }
    };
    let next_due = match (&dmab.schedule, &dmab.transition) {
        (Some(s), None) => Some(s.next_due),
        _ => None,
    };

    let mut data_quality: Vec<DataQualityIssue> = reader_issues.to_vec();
    data_quality.extend(outcome.data_quality.iter().cloned());
    data_quality.sort();
    data_quality.dedup();

    Assessment {
        schema: SCHEMA.to_string(),
        patient: PatientSummary {
            reference: record.patient.source.0.clone(),
            age_years: age,
            sex: record.patient.sex,
            birth_date: record.patient.birth_date,
        },
        as_of,
        fracture_risk: FractureRisk {
            category: risk.category.as_str().to_string(),
            basis: risk.basis.clone(),
            row: risk.row.clone(),
            evidence: risk.evidence.clone(),
            gc_adjusted_frax_mof_percent: risk.gc_frax_mof.as_ref().map(|f| round(f.adjusted, 2)),
            gc_adjusted_frax_hip_percent: risk.gc_frax_hip.as_ref().map(|f| round(f.adjusted, 2)),
        },
        glucocorticoid: GlucocorticoidSummary {
            current_prednisone_equivalent_mg_per_day: gc.current_daily_peq.map(|v| round(v, 2)),
            cumulative_prednisone_equivalent_grams_last_12_months: if gc
                .unknown_dose_records
                .is_empty()
            {
                Some(round(gc.cumulative_g_last365, 3))
            } else {
                // A dose we could not compute makes the total unknown, not smaller (§1.4).
                None
            },
            qualifying: gc.qualifying,
            continuous_days_at_or_above_2_5_mg: gc.continuous_days_ge_2_5,
            days_at_or_above_30_mg_last_365: gc.days_ge_30_last365,
            course_start: gc.gc_start_date,
            physiologic_replacement: gc.physiologic_replacement,
            series: gc.series.iter().map(|(d, v)| (*d, round(*v, 2))).collect(),
        },
        denosumab: DenosumabSummary {
            last_dose: dmab.d_last.as_ref().map(|d| d.date),
            next_due,
            status: status.to_string(),
            dose_count: dmab.dose_count,
            doses: dmab.doses.iter().map(|d| d.date).collect(),
            transition: dmab.transition.as_ref().map(|t| t.date),
            transition_agent: dmab.transition.as_ref().map(|t| t.agent.name().to_string()),
            schedule: dmab.schedule,
        },
        bone_density: BoneDensitySummary {
            who_category: dxa.who,
            lowest_t_score: dxa.min_t.as_ref().map(|r| round(r.value, 2)),
            lowest_t_score_site: dxa.min_t.as_ref().map(|r| r.site),
            lowest_t_score_date: dxa.min_t.as_ref().map(|r| r.date),
            latest_dxa: dxa.latest_dxa,
            t_scores: dxa
                .t_series
                .iter()
                .map(|(date, site, value, src)| TScorePoint {
                    date: *date,
                    site: *site,
                    value: round(*value, 2),
                    reference: src.0.clone(),
                })
                .collect(),
        },
        spine: spine
            .levels
            .iter()
            .map(|l| SpineLevel {
                level: l.level.label().to_string(),
                state: l.state,
                since: l.since,
            })
            .collect(),
        timeline: Timeline::default(),
        findings: outcome.findings,
        tasks: outcome.tasks,
        data_quality,
        provenance: config.provenance(),
        zoledronate_renal,
        display_thresholds: DisplayThresholds::from(t),
        draft_orders: drafts,
    }
}

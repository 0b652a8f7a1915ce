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
use crate::finding::{DataQualityIssue, Evidence, Finding, FindingCode, Severity, Task};
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
    /// A spine fracture or augmentation this many days before as-of or later is *recent* in
    /// the spine diagram (the one-year window of §7.6 new-fracture-after-augmentation).
    pub recent_spine_event_days: i64,
    /// Pain scores at or above this are drawn as high pain (§7.5 augmentation pain minimum).
    pub pain_high_min: f64,
}

impl DisplayThresholds {
    pub fn from(t: &crate::thresholds::Thresholds) -> Self {
        DisplayThresholds {
            gc_dose_lines_mg_per_day: vec![t.gc_scope_min_peq_mg, t.gc_high_dose_peq_mg],
            t_score_lines: vec![t.t_high, t.t_very_high],
            denosumab_cover_days: t.dmab_due_days,
            denosumab_grace_days: t.dmab_grace_end_days - t.dmab_due_days,
            recent_spine_event_days: t.new_fracture_window_days,
            pain_high_min: t.augmentation_pain_min,
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
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub reference: SourceRef,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TimelineProcedure {
    pub kind: ProcedureKind,
    pub levels: Vec<String>,
    pub date: NaiveDate,
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub reference: SourceRef,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TimelineDose {
    pub agent: String,
    pub date: NaiveDate,
    /// Days the dose covers (denosumab 182, zoledronate 365, …), for shading.
    pub covers_days: i64,
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub reference: SourceRef,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TimelinePain {
    pub date: NaiveDate,
    pub value: f64,
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub reference: SourceRef,
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
    let visible = engine::visible_view(record, as_of);
    let ev = engine::evaluate_visible(&visible, as_of, config, Vec::new());
    let timeline = crate::timeline::build(&visible, &ev, config);
    drop(visible);
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
    // As `engine::evaluate_what_if`, with one signed copy and one visible view.
    let (signed, sent) = engine::as_if_signed(record, drafts, as_of);
    let visible = engine::visible_view(&signed, as_of);
    let ev = engine::evaluate_visible(&visible, as_of, config, sent);
    let timeline = crate::timeline::build(&visible, &ev, config);
    drop(visible);
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
    data_quality.extend(outcome.data_quality);
    data_quality.sort();
    data_quality.dedup();

    Assessment {
        schema: SCHEMA.to_string(),
        patient: PatientSummary {
            reference: record.patient.source.as_str().to_string(),
            age_years: age,
            sex: record.patient.sex,
            birth_date: record.patient.birth_date,
        },
        as_of,
        fracture_risk: FractureRisk {
            category: risk.category.as_str().to_string(),
            basis: risk.basis,
            row: risk.row,
            evidence: risk.evidence,
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
                    reference: src.as_str().to_string(),
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

// --- Clinical situations: what one CDS card says and suggests (issue 17) -----------------------

/// A laboratory test the §8 safety checks read (LOINC codes of knowledge.md §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SafetyLab {
    Creatinine,
    Calcium,
    Albumin,
    VitaminD25,
}

impl SafetyLab {
    pub fn loinc(self) -> &'static str {
        match self {
            SafetyLab::Creatinine => "2160-0",
            SafetyLab::Calcium => "17861-6",
            SafetyLab::Albumin => "1751-7",
            SafetyLab::VitaminD25 => "62292-8",
        }
    }
    pub fn display(self) -> &'static str {
        match self {
            SafetyLab::Creatinine => "Creatinine [Mass/volume] in Serum or Plasma",
            SafetyLab::Calcium => "Calcium [Mass/volume] in Serum or Plasma",
            SafetyLab::Albumin => "Albumin [Mass/volume] in Serum or Plasma",
            SafetyLab::VitaminD25 => "25-hydroxyvitamin D2+D3 [Mass/volume] in Serum or Plasma",
        }
    }
    /// The name a sentence uses.
    pub fn short(self) -> &'static str {
        match self {
            SafetyLab::Creatinine => "creatinine",
            SafetyLab::Calcium => "calcium",
            SafetyLab::Albumin => "albumin",
            SafetyLab::VitaminD25 => "25-OH vitamin D",
        }
    }
}

/// One action a card may suggest; the service renders it as FHIR resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PlannedAction {
    /// The §8 inputs that are missing, before any antiresorptive (issue 17 "safety first").
    SafetyLabs {
        labs: Vec<SafetyLab>,
    },
    /// Calcium, albumin and creatinine again before dosing (hypocalcaemia / CKD).
    CalciumRecheck,
    /// The ECTS transition: zoledronic acid on `date`, CTX on `ctx_date` (§5.3).
    ZoledronateTransition {
        date: NaiveDate,
        ctx_date: Option<NaiveDate>,
    },
    /// Zoledronic acid now: rebound (§5.5) or CTX elevated after the transition (§5.4).
    ZoledronateNow {
        repeat: bool,
    },
    /// Zoledronic acid once yearly as an initial agent (§4.2).
    ZoledronateYearly,
    Alendronate {
        date: NaiveDate,
    },
    DenosumabDose {
        date: NaiveDate,
    },
    /// Delete the zoledronic-acid orders (renally contraindicated).
    RemoveZoledronate {
        orders: Vec<String>,
    },
    /// Delete them and order denosumab instead (§9 zoledronate-renal-contraindication), with
    /// the calcium labs first when the hypocalcaemia / CKD caution fires too.
    ReplaceZoledronateWithDenosumab {
        orders: Vec<String>,
        labs: Vec<SafetyLab>,
    },
    Teriparatide,
    CalciumAndVitaminD,
    VitaminDRepletion,
    Ctx {
        date: Option<NaiveDate>,
    },
    CtxAndWholeSpineMri,
    Dxa,
    SpineMri,
    AugmentationReferral,
}

impl PlannedAction {
    /// A stable key per kind (suggestion identities derive from it).
    pub fn key(&self) -> &'static str {
        use PlannedAction::*;
        match self {
            SafetyLabs { .. } => "safety-labs",
            CalciumRecheck => "calcium-labs",
            ZoledronateTransition { .. } => "zoledronate-transition",
            ZoledronateNow { repeat: false } => "zoledronate-now",
            ZoledronateNow { repeat: true } => "zoledronate-repeat",
            ZoledronateYearly => "zoledronate",
            Alendronate { .. } => "alendronate",
            DenosumabDose { .. } => "denosumab-dose",
            RemoveZoledronate { .. } => "remove-zoledronate",
            ReplaceZoledronateWithDenosumab { .. } => "replace-with-denosumab",
            Teriparatide => "teriparatide",
            CalciumAndVitaminD => "calcium-vitamin-d",
            VitaminDRepletion => "vitamin-d",
            Ctx { .. } => "ctx",
            CtxAndWholeSpineMri => "ctx-and-imaging",
            Dxa => "dxa",
            SpineMri => "mri",
            AugmentationReferral => "augmentation-referral",
        }
    }

    /// Whether the action orders zoledronic acid.
    pub fn orders_zoledronate(&self) -> bool {
        matches!(
            self,
            PlannedAction::ZoledronateTransition { .. }
                | PlannedAction::ZoledronateNow { .. }
                | PlannedAction::ZoledronateYearly
        )
    }

    /// The next step in a few words (at most [`NEXT_STEP_MAX`] characters), for the summary.
    pub fn next_step(&self, as_of: NaiveDate) -> String {
        use PlannedAction::*;
        match self {
            SafetyLabs { labs } => {
                let names: Vec<&str> = labs.iter().map(|l| l.short()).collect();
                let list = match names.split_last() {
                    Some((last, [])) => (*last).to_string(),
                    Some((last, rest)) => text!("{} and {last}", rest.join(", ")),
                    None => "the safety labs".to_string(),
                };
                text!("Check {list} first; the antiresorptive follows.")
            }
            CalciumRecheck => "Correct calcium before any antiresorptive.".into(),
            ZoledronateTransition { date, .. } if *date > as_of => {
                text!("Plan zoledronic acid for {date}, then CTX.")
            }
            ZoledronateTransition { .. } => "Give zoledronic acid now, then CTX.".into(),
            ZoledronateNow { repeat: false } => "Give zoledronic acid now.".into(),
            ZoledronateNow { repeat: true } => "Repeat zoledronic acid.".into(),
            ZoledronateYearly | Alendronate { .. } => "Choose an agent with the patient.".into(),
            Teriparatide => "Consider teriparatide first.".into(),
            DenosumabDose { date } if *date > as_of => text!("Give denosumab by {date}."),
            DenosumabDose { .. } => "Give denosumab now.".into(),
            RemoveZoledronate { .. } | ReplaceZoledronateWithDenosumab { .. } => {
                "Do not infuse; use denosumab instead.".into()
            }
            CalciumAndVitaminD => "Add calcium and vitamin D.".into(),
            VitaminDRepletion => "Replete vitamin D.".into(),
            Ctx { date: Some(d) } if *d > as_of => text!("Order serum CTX for {d}."),
            Ctx { .. } => "Order serum CTX.".into(),
            CtxAndWholeSpineMri => "Check CTX and image the whole spine.".into(),
            Dxa => "Order DXA with vertebral fracture assessment.".into(),
            SpineMri => "Order spine MRI with STIR.".into(),
            AugmentationReferral => "Refer for vertebral augmentation.".into(),
        }
    }
}

/// Longest next-step phrase ([`PlannedAction::next_step`]); with the longest finding title it
/// keeps every summary under 140 characters (tested over every code and action).
pub const NEXT_STEP_MAX: usize = 90;
/// Longest card summary (CDS Hooks 2.0 §Card: "<140 characters").
pub const SUMMARY_MAX: usize = 139;

/// How strongly a card asks for attention (CDS Hooks `indicator`), by consequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attention {
    Info,
    Warning,
    Critical,
}

impl Attention {
    pub fn as_str(self) -> &'static str {
        match self {
            Attention::Info => "info",
            Attention::Warning => "warning",
            Attention::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedAction {
    pub action: PlannedAction,
    pub recommended: bool,
}

/// One clinical situation: the findings one card shows, its summary, and the actions it
/// suggests, at most one of them recommended. Decided here, rendered by the services.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SituationPlan {
    pub situation: crate::catalogue::Situation,
    /// The finding the card leads with (most severe; ties by [`crate::catalogue::lead_priority`]).
    pub lead: FindingCode,
    /// Every finding of the situation, lead first.
    pub codes: Vec<FindingCode>,
    pub severity: Severity,
    pub attention: Attention,
    /// At most [`SUMMARY_MAX`] characters, written whole (never cut).
    pub summary: String,
    /// §8 inputs missing before the antiresorptive: the recommended action orders them.
    pub safety_labs: Vec<SafetyLab>,
    /// Zoledronic acid may be offered: renal function known and not contraindicated (§8).
    pub zoledronate_allowed: bool,
    pub actions: Vec<SuggestedAction>,
}

/// The §8 labs a `data-insufficient` finding reports missing (items 3–5 of §9).
pub fn missing_safety_labs(findings: &[Finding]) -> Vec<SafetyLab> {
    let mut labs = Vec::new();
    for f in findings
        .iter()
        .filter(|f| f.code == FindingCode::DataInsufficient)
    {
        for line in &f.inputs_missing {
            let lower = line.to_lowercase();
            let item = lower
                .strip_prefix("item ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.trim().parse::<u8>().ok());
            match item {
                Some(3) if lower.contains("calcium") => labs.push(SafetyLab::Calcium),
                Some(3) | Some(5) => labs.push(SafetyLab::Creatinine),
                Some(4) => labs.push(SafetyLab::VitaminD25),
                Some(_) => {}
                // Not in the documented form: read the words (unknown is never "no").
                None => {
                    if lower.contains("calcium") {
                        labs.push(SafetyLab::Calcium);
                    }
                    if lower.contains("creatinine") || lower.contains("egfr") {
                        labs.push(SafetyLab::Creatinine);
                    }
                    if lower.contains("vitamin d") {
                        labs.push(SafetyLab::VitaminD25);
                    }
                }
            }
        }
    }
    labs.sort();
    labs.dedup();
    labs
}

/// The zoledronic-acid orders a contraindication concerns: the drafts of an order hook, else
/// the planned orders named in the finding's evidence.
fn zoledronate_orders(a: &Assessment, f: &Finding) -> Vec<String> {
    let mut v: Vec<String> = a
        .draft_orders
        .iter()
        .filter(|d| d.has(crate::model::Ingredient::ZoledronicAcid))
        .map(|d| d.reference.as_str().to_string())
        .collect();
    if v.is_empty() {
        v = f
            .evidence
            .iter()
            .filter(|e| e.reference.starts_with("MedicationRequest/"))
            .map(|e| e.reference.to_string())
            .collect();
    }
    v.sort();
    v.dedup();
    v
}

/// The actions one finding suggests, its preferred first.
fn candidates(a: &Assessment, f: &Finding) -> Vec<PlannedAction> {
    use FindingCode::*;
    use PlannedAction::*;
    let as_of = a.as_of;
    let (t, ctx_date) = match &a.denosumab.schedule {
        Some(s) => (s.transition_due, Some(s.transition_ctx_due[0])),
        None => (as_of, None),
    };
    match f.code {
        DenosumabDiscontinuationWithoutTransition => vec![
            ZoledronateTransition { date: t, ctx_date },
            Alendronate { date: t },
            DenosumabDose { date: as_of },
        ],
        DenosumabOverdue | DenosumabDueSoon => vec![
            DenosumabDose {
                date: f.due.unwrap_or(as_of).max(as_of),
            },
            ZoledronateTransition { date: t, ctx_date },
        ],
        PostDenosumabCtxMonitoring if f.severity >= Severity::High => {
            vec![ZoledronateNow { repeat: true }, Ctx { date: f.due }]
        }
        PostDenosumabCtxMonitoring => vec![Ctx { date: f.due }],
        ReboundVertebralFracturesSuspected if a.denosumab.transition.is_none() => {
            vec![ZoledronateNow { repeat: false }, CtxAndWholeSpineMri]
        }
        ReboundVertebralFracturesSuspected => vec![CtxAndWholeSpineMri],
        GcBoneProtection => vec![CalciumAndVitaminD],
        GcFractureRiskAssessmentDue => vec![Dxa],
        OsteoporosisTreatmentIndicated => vec![Alendronate { date: as_of }, ZoledronateYearly],
        AnabolicTherapyPreferred => vec![Teriparatide],
        OvcfImagingRecommended | AcuteOvcf => vec![SpineMri],
        OvcfRefractoryPainAugmentationCandidate => vec![AugmentationReferral],
        ZoledronateRenalContraindication => {
            let orders = zoledronate_orders(a, f);
            if orders.is_empty() {
                vec![DenosumabDose { date: as_of }]
            } else {
                vec![
                    ReplaceZoledronateWithDenosumab {
                        orders: orders.clone(),
                        labs: Vec::new(),
                    },
                    RemoveZoledronate { orders },
                ]
            }
        }
        HypocalcaemiaAntiresorptiveCaution => vec![CalciumRecheck],
        VitaminDDeficiencyAntiresorptiveCaution => vec![VitaminDRepletion],
        DataInsufficient => {
            let labs = missing_safety_labs(std::slice::from_ref(f));
            let mut v = Vec::new();
            if !labs.is_empty() {
                v.push(SafetyLabs { labs });
            }
            if f.inputs_missing
                .iter()
                .any(|l| l.to_lowercase().contains("ctx"))
            {
                v.push(Ctx { date: None });
            }
            v
        }
        BmdSignificantLoss | NewFractureAfterAugmentation => Vec::new(),
    }
}

/// Whether the action belongs on a card whose situation has the contraindication: only the
/// contraindication's own alternatives and what does not give an antiresorptive.
fn fits_contraindication(action: &PlannedAction) -> bool {
    use PlannedAction::*;
    matches!(
        action,
        ReplaceZoledronateWithDenosumab { .. }
            | RemoveZoledronate { .. }
            | SafetyLabs { .. }
            | CalciumRecheck
            | VitaminDRepletion
            | Ctx { .. }
            | CtxAndWholeSpineMri
    )
}

/// Groups `findings` (those the card set shows; for order hooks a selection of
/// `a.findings`) into clinical situations, most urgent first: one card each, with actions that
/// agree and at most one recommended (issue 17).
///
/// * Safety before orders: with §8 inputs missing (from `a`'s `data-insufficient`), the
///   recommended action orders those labs and the summary says the antiresorptive follows.
/// * Zoledronic acid is never suggested with a renal contraindication or unknown renal
///   function (§8).
/// * Attention: critical → critical, high → warning, otherwise info — except that a
///   `data-insufficient` blocking a safety check raises its card to at least warning.
pub fn situations(a: &Assessment, findings: &[Finding]) -> Vec<SituationPlan> {
    use crate::catalogue::{lead_priority, situation, Situation};
    let mut groups: Vec<(Situation, Vec<&Finding>)> = Vec::new();
    for f in findings {
        let s = situation(f.code, f.severity);
        match groups.iter_mut().find(|(g, _)| *g == s) {
            Some((_, v)) => v.push(f),
            None => groups.push((s, vec![f])),
        }
    }
    let safety = missing_safety_labs(&a.findings);
    let mut out: Vec<SituationPlan> = groups
        .into_iter()
        .map(|(s, mut fs)| {
            fs.sort_by(|x, y| {
                (y.severity, lead_priority(y.code)).cmp(&(x.severity, lead_priority(x.code)))
            });
            plan(a, s, &fs, &safety)
        })
        .collect();
    out.sort_by(|x, y| {
        (y.attention, y.severity, lead_priority(y.lead)).cmp(&(
            x.attention,
            x.severity,
            lead_priority(x.lead),
        ))
    });
    out
}

fn plan(
    a: &Assessment,
    s: crate::catalogue::Situation,
    fs: &[&Finding],
    safety: &[SafetyLab],
) -> SituationPlan {
    use crate::catalogue::Situation;
    let lead = fs[0];
    let codes: Vec<FindingCode> = fs.iter().map(|f| f.code).collect();
    let contraindicated = a.zoledronate_renal == ZoledronateRenal::Contraindicated
        || codes.contains(&FindingCode::ZoledronateRenalContraindication);
    let zoledronate_allowed =
        !contraindicated && a.zoledronate_renal == ZoledronateRenal::Acceptable;
    let safety_labs: Vec<SafetyLab> = if s == Situation::OsteoporosisTherapy {
        safety.to_vec()
    } else {
        Vec::new()
    };

    let mut actions: Vec<PlannedAction> = Vec::new();
    if !safety_labs.is_empty() {
        actions.push(PlannedAction::SafetyLabs {
            labs: safety_labs.clone(),
        });
    }
    for f in fs {
        for c in candidates(a, f) {
            let duplicate = actions.iter().any(|x| x.key() == c.key());
            let forbidden = (c.orders_zoledronate() && !zoledronate_allowed)
                || (codes.contains(&FindingCode::ZoledronateRenalContraindication)
                    && !fits_contraindication(&c));
            if !duplicate && !forbidden {
                actions.push(c);
            }
        }
    }
    // Replacing a contraindicated zoledronate order with denosumab: the calcium labs of a
    // hypocalcaemia / CKD caution go with it (one suggestion, not a competing one).
    if actions.contains(&PlannedAction::CalciumRecheck) {
        let mut folded = false;
        for x in actions.iter_mut() {
            if let PlannedAction::ReplaceZoledronateWithDenosumab { labs, .. } = x {
                *labs = vec![
                    SafetyLab::Calcium,
                    SafetyLab::Albumin,
                    SafetyLab::Creatinine,
                ];
                folded = true;
            }
        }
        if folded {
            actions.retain(|x| *x != PlannedAction::CalciumRecheck);
        }
    }
    // A CTX now with the whole-spine work-up makes a separate CTX order redundant.
    if actions.contains(&PlannedAction::CtxAndWholeSpineMri) {
        actions.retain(|x| !matches!(x, PlannedAction::Ctx { .. }));
    }
    // The recommended action: the safety labs when missing, else the lead finding's preferred
    // action still on offer (none when the choice is the patient's: treatment indicated).
    let lead_choice = candidates(a, lead)
        .into_iter()
        .find(|c| actions.iter().any(|x| x.key() == c.key()));
    let recommended_key = if !safety_labs.is_empty() {
        Some("safety-labs")
    } else {
        match lead.code {
            FindingCode::OsteoporosisTreatmentIndicated => None,
            _ => lead_choice
                .as_ref()
                .map(PlannedAction::key)
                .or_else(|| actions.first().map(PlannedAction::key)),
        }
    };
    // The recommended action first.
    if let Some(k) = recommended_key {
        if let Some(i) = actions.iter().position(|x| x.key() == k) {
            let r = actions.remove(i);
            actions.insert(0, r);
        }
    }
    let recommended = actions
        .iter()
        .find(|x| Some(x.key()) == recommended_key)
        .cloned();

    let severity = fs
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Info);
    let mut attention = match severity {
        Severity::Critical => Attention::Critical,
        Severity::High => Attention::Warning,
        Severity::Moderate | Severity::Info => Attention::Info,
    };
    let blocks_safety = fs
        .iter()
        .any(|f| f.code == FindingCode::DataInsufficient && f.severity >= Severity::Moderate);
    if blocks_safety {
        attention = attention.max(Attention::Warning);
    }

    let head = lead.code.title();
    let next = match (&recommended, lead.code) {
        (Some(r), _) => r.next_step(a.as_of),
        (None, FindingCode::OsteoporosisTreatmentIndicated) => {
            "Choose an agent with the patient.".to_string()
        }
        (None, FindingCode::DataInsufficient) => {
            "The missing inputs are in the details.".to_string()
        }
        (None, _) if codes.len() > 1 => "See the related findings.".to_string(),
        (None, _) => "Review the findings.".to_string(),
    };
    let summary = text!("{head}. {next}");

    SituationPlan {
        situation: s,
        lead: lead.code,
        codes,
        severity,
        attention,
        summary,
        safety_labs,
        zoledronate_allowed,
        actions: actions
            .into_iter()
            .map(|action| SuggestedAction {
                recommended: Some(action.key()) == recommended_key,
                action,
            })
            .collect(),
    }
}

#[cfg(test)]
mod situation_tests {
    use super::*;

    fn every_action(d: NaiveDate) -> Vec<PlannedAction> {
        use PlannedAction::*;
        let all_labs = vec![
            SafetyLab::Creatinine,
            SafetyLab::Calcium,
            SafetyLab::Albumin,
            SafetyLab::VitaminD25,
        ];
        let later = d + chrono::Days::new(30);
        vec![
            SafetyLabs { labs: all_labs },
            SafetyLabs {
                labs: vec![SafetyLab::VitaminD25],
            },
            CalciumRecheck,
            ZoledronateTransition {
                date: later,
                ctx_date: Some(later),
            },
            ZoledronateTransition {
                date: d,
                ctx_date: None,
            },
            ZoledronateNow { repeat: false },
            ZoledronateNow { repeat: true },
            ZoledronateYearly,
            Alendronate { date: d },
            DenosumabDose { date: later },
            DenosumabDose { date: d },
            RemoveZoledronate { orders: vec![] },
            ReplaceZoledronateWithDenosumab {
                orders: vec![],
                labs: vec![SafetyLab::Calcium],
            },
            Teriparatide,
            CalciumAndVitaminD,
            VitaminDRepletion,
            Ctx { date: Some(later) },
            Ctx { date: None },
            CtxAndWholeSpineMri,
            Dxa,
            SpineMri,
            AugmentationReferral,
        ]
    }

    /// Summaries are short by construction: the longest title with the longest next step
    /// stays under 140 characters, and no word follows itself.
    #[test]
    fn every_summary_fits_by_construction() {
        let d = NaiveDate::from_ymd_opt(2023, 6, 15).unwrap_or_default();
        let longest_title = FindingCode::ALL
            .iter()
            .map(|c| c.title().chars().count())
            .max()
            .unwrap_or(0);
        assert!(longest_title + 2 + NEXT_STEP_MAX <= SUMMARY_MAX);
        for action in every_action(d) {
            let next = action.next_step(d);
            assert!(next.chars().count() <= NEXT_STEP_MAX, "{next}");
            for code in FindingCode::ALL {
                let s = format!("{}. {next}", code.title());
                assert!(s.chars().count() <= SUMMARY_MAX, "{s}");
                let words: Vec<String> = s
                    .split_whitespace()
                    .map(|w| {
                        w.trim_matches(|c: char| !c.is_alphanumeric())
                            .to_lowercase()
                    })
                    .collect();
                for w in words.windows(2) {
                    assert_ne!(w[0], w[1], "repeated word in {s}");
                }
            }
        }
    }

    #[test]
    fn safety_labs_are_read_from_the_data_insufficient_items() {
        let mut f = Finding::new(
            FindingCode::DataInsufficient,
            Severity::Moderate,
            "s",
            "r",
            "c",
            "§1.4",
        );
        f.inputs_missing = vec![
            "item 3: zoledronate-renal-contraindication: no creatinine or eGFR within 30 days"
                .into(),
            "item 3: hypocalcaemia-antiresorptive-caution: no calcium within 30 days".into(),
            "item 4: vitamin-d-deficiency-antiresorptive-caution: no 25-OH vitamin D".into(),
            "item 6: bmd-significant-loss: no comparable DXA pair".into(),
        ];
        assert_eq!(
            missing_safety_labs(&[f]),
            vec![
                SafetyLab::Creatinine,
                SafetyLab::Calcium,
                SafetyLab::VitaminD25
            ]
        );
    }
}

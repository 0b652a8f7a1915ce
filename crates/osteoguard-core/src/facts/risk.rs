//! Fracture-risk category — knowledge.md §3 (ACR-2022 risk table, GC-adjusted FRAX per
//! ACR-2017/KANIS-2011), with the three-valued logic of §1.4.
//!
//! * Rows are evaluated top-down, first match wins (§3.2): A1–A5 from `frax_min_age` (40) years,
//!   B1–B5 from `adult_min_age` (18) to 39 years; under 18 there is no category (§3.5).
//! * A category established by a TRUE criterion is final even if inputs that could only raise it
//!   are missing (§1.4 "Category completeness"); `low` needs FRAX (MOF and hip) and a T-score,
//!   all known and low, and the high-dose criteria known FALSE. A fracture history that is merely
//!   not recorded does not block `low`, but the basis then says "no fracture on record".
//! * `prior_osteoporotic_fracture` is TRUE with evidence (vertebral fractures of any level incl.
//!   unspecified, non-traumatic fragility-site fractures, vertebral augmentations), FALSE only
//!   with positive evidence (refuted fracture Conditions), else UNKNOWN.
//! * FRAX (§3.3, §3.4): the latest valid value within `frax_max_age_days`; out-of-range or
//!   missing values are ignored and listed in `frax_invalid` (data-insufficient item 9); the
//!   GC multipliers apply when `current_daily_peq > gc_high_dose_peq_mg` (exactly 7.5: none,
//!   §12.4); a value marked GC-adjusted is used as is; never adjusted downward (§12.3).
//! * The basis always says whether the patient is GC-qualifying (§3.5), lists the criteria met
//!   and the missing inputs.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::dxa::{DxaFacts, ScoreReading};
use super::gc::{above, at_least, GcExposure};
use super::spine::SpineFacts;
use super::therapy::{active_agents_on, TherapyFacts};
use super::Input;
use crate::finding::{Evidence, Fixed, Shortest, Ymd};
use crate::model::{
    days, Condition, ConditionKind, FractureMechanism, FractureSite, Observation, ObservationKind,
    PatientRecord,
};
use crate::thresholds::Thresholds;
use crate::tri::Tri;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskCategory {
    /// Rows A5/B4/B5, and under 18 (reported as `unknown`, §3.5).
    Indeterminate,
    Low,
    Moderate,
    High,
    VeryHigh,
}

impl RiskCategory {
    /// The JSON value (§3.5: indeterminate → `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            RiskCategory::Indeterminate => "unknown",
            RiskCategory::Low => "low",
            RiskCategory::Moderate => "moderate",
            RiskCategory::High => "high",
            RiskCategory::VeryHigh => "very-high",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            RiskCategory::Indeterminate => "indeterminate",
            RiskCategory::Low => "low",
            RiskCategory::Moderate => "moderate",
            RiskCategory::High => "high",
            RiskCategory::VeryHigh => "very high",
        }
    }
}

/// A FRAX value as used (after §3.3 adjustment).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FraxUsed {
    pub raw: f64,
    pub adjusted: f64,
    pub multiplier: f64,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskAssessment {
    pub category: RiskCategory,
    /// Decision-table row, e.g. "A1".
    pub row: Option<String>,
    /// Human-readable reasons (criteria met, missing inputs, GC-qualifying state …).
    pub basis: Vec<String>,
    pub evidence: Vec<Evidence>,
    /// `prior_osteoporotic_fracture`.
    pub prior_fracture: Tri,
    pub gc_frax_mof: Option<FraxUsed>,
    pub gc_frax_hip: Option<FraxUsed>,
    /// FRAX observations out of range / unit unknown (data-insufficient item 9).
    pub frax_invalid: Vec<String>,
    /// Inputs that were missing for the category.
    pub missing: Vec<String>,
    /// The criteria of the matching row that are met (empty when indeterminate).
    pub criteria_met: Vec<String>,
}

impl Default for RiskAssessment {
    fn default() -> Self {
        RiskAssessment {
            category: RiskCategory::Indeterminate,
            row: None,
            basis: Vec::new(),
            evidence: Vec::new(),
            prior_fracture: Tri::Unknown,
            gc_frax_mof: None,
            gc_frax_hip: None,
            frax_invalid: Vec::new(),
            missing: Vec::new(),
            criteria_met: Vec::new(),
        }
    }
}

fn site_label(site: FractureSite) -> &'static str {
    match site {
        FractureSite::Vertebral(_) => "vertebral",
        FractureSite::Hip => "hip",
        FractureSite::Wrist => "wrist",
        FractureSite::Humerus => "humerus",
        FractureSite::OsteoporoticOther => "osteoporotic (site not recorded)",
        FractureSite::Other => "other",
    }
}

fn fmt_date(d: Option<NaiveDate>) -> String {
    d.map_or_else(|| "date unknown".to_string(), |d| Ymd(d).to_string())
}

/// Vertebral fragility fractures documented only by a follow-up code (ICD-10-CM 7th character
/// D/G/K/S, §10.3): not a new fracture event (the spine facts leave them out), but still proof of
/// a fracture the patient had, so a prior osteoporotic fracture for §3.1 (and §9
/// `osteoporosis-treatment-indicated` (b)), as for a hip fracture coded the same way.
/// `record` is the record as visible at `as_of` (§1.2).
pub fn followup_vertebral_fractures(record: &PatientRecord) -> Vec<Evidence> {
    record
        .conditions
        .iter()
        .filter(|c| is_followup_vertebral_fracture(c))
        .map(|c| {
            let date = c.onset.and_then(|p| p.start.or(p.end)).or(c.recorded);
            Evidence::new(
                &c.source,
                date,
                text!("vertebral fracture (follow-up code, {})", fmt_date(date)),
            )
        })
        .collect()
}

/// Whether the record (as visible at `as_of`) holds a non-traumatic vertebral fracture coded only
/// for a follow-up encounter: the same filter as [`followup_vertebral_fractures`], without building
/// its evidence, for callers that only need the yes/no.
pub fn has_followup_vertebral_fracture(record: &PatientRecord) -> bool {
    record.conditions.iter().any(is_followup_vertebral_fracture)
}

fn is_followup_vertebral_fracture(c: &Condition) -> bool {
    c.subsequent_encounter
        && c.is_valid()
        && matches!(c.kind, ConditionKind::Fracture(FractureSite::Vertebral(_)))
        && c.mechanism != Some(FractureMechanism::Traumatic)
}

/// `prior_osteoporotic_fracture` (§3.1) with its evidence; `record` as visible at `as_of`.
pub fn prior_osteoporotic_fracture(
    spine: &SpineFacts,
    record: &PatientRecord,
) -> (Tri, Vec<Evidence>) {
    let mut ev = Vec::new();
    for f in spine.fractures.iter().filter(|f| !f.traumatic) {
        let onset = f.onset_for_windows.or(f.onset_for_acuity).or(f.recorded);
        ev.push(Evidence::new(
            &f.source,
            onset,
            text!(
                "vertebral fracture {} (onset {})",
                f.location,
                fmt_date(onset)
            ),
        ));
    }
    for o in spine
        .other_fractures
        .iter()
        .filter(|o| o.site.is_fragility_site() && !o.traumatic)
    {
        ev.push(Evidence::new(
            &o.source,
            o.date,
            text!(
                "{} fragility fracture ({})",
                site_label(o.site),
                fmt_date(o.date)
            ),
        ));
    }
    for a in &spine.augmentations {
        ev.push(Evidence::new(
            &a.source,
            Some(a.date),
            text!(
                "vertebral augmentation {} on {} (implies a vertebral fracture)",
                a.level,
                Ymd(a.date)
            ),
        ));
    }
    ev.extend(followup_vertebral_fractures(record));
    if !ev.is_empty() {
        (Tri::True, ev)
    } else if !spine.refuted_fractures.is_empty() {
        let ev = spine
            .refuted_fractures
            .iter()
            .map(|s| Evidence::new(s, None, "fracture refuted"))
            .collect();
        (Tri::False, ev)
    } else {
        (Tri::Unknown, ev)
    }
}

/// The latest valid FRAX of `kind` within the §3.4 window (the highest of several taken at the
/// same instant), and the invalid ones met there.
fn latest_frax<'r>(
    input: &Input<'r>,
    kind: ObservationKind,
) -> (Option<&'r Observation>, Vec<String>) {
    let t = input.t;
    let mut invalid = Vec::new();
    let mut best: Option<&Observation> = None;
    for o in input.record.observations.iter().filter(|o| {
        o.kind == kind
            && o.status.is_usable()
            && o.date()
                .is_some_and(|d| d <= input.as_of && days(d, input.as_of) <= t.frax_max_age_days)
    }) {
        let label = if kind == ObservationKind::FraxMof {
            "FRAX MOF"
        } else {
            "FRAX hip"
        };
        match o.value {
            // The record is in date order, so a later one is more recent; two values taken at
            // the same instant (e.g. FRAX with and without BMD) tie, and the higher one is kept
            // (conservative, §1.4: the reading that does not lower the category).
            Some(v) if v.is_finite() && (0.0..=100.0).contains(&v) => {
                let tie_lower = best.is_some_and(|b| {
                    b.effective == o.effective && b.date() == o.date() && b.value > Some(v)
                });
                if !tie_lower {
                    best = Some(o);
                }
            }
            Some(v) => invalid.push(text!(
                "{label} {} ({}): value {v} outside 0–100 %",
                o.source,
                fmt_date(o.date())
            )),
            None => invalid.push(text!(
                "{label} {} ({}): value missing or unit unknown",
                o.source,
                fmt_date(o.date())
            )),
        }
    }
    (best, invalid)
}

/// §3.3: the GC-adjusted value of one FRAX observation.
fn adjust(o: &Observation, label: &str, multiplier_if_high: f64, peq: f64, high: bool) -> FraxUsed {
    let raw = o.value.unwrap_or(0.0);
    let (multiplier, why) = if o.frax_gc_adjusted {
        (1.0, "already GC-dose adjusted, used as is".to_string())
    } else if high {
        (
            multiplier_if_high,
            text!("× {multiplier_if_high} for {} mg PEq/day", Fixed(peq, 1)),
        )
    } else {
        (1.0, "no GC-dose adjustment".to_string())
    };
    let adjusted = (raw * multiplier).min(100.0);
    FraxUsed {
        raw,
        adjusted,
        multiplier,
        evidence: Evidence::new(
            &o.source,
            o.date(),
            text!(
                "{label} {} % ({why}) → {} %",
                Fixed(raw, 1),
                Fixed(adjusted, 2)
            ),
        ),
    }
}

/// One criterion of a row that is met, with the evidence for it.
#[derive(Debug, Clone)]
struct Criterion {
    text: String,
    evidence: Vec<Evidence>,
}

fn crit(text: impl Into<String>, evidence: Vec<Evidence>) -> Criterion {
    Criterion {
        text: text.into(),
        evidence,
    }
}

/// What the rows of the §3.2 table read, computed once.
struct RowInputs<'a> {
    t: &'a Thresholds,
    gc: &'a GcExposure,
    dxa: &'a DxaFacts,
    /// Current prednisone-equivalent dose (the known part when not computable).
    peq: f64,
    prior: Tri,
    fracture_evidence: Vec<Evidence>,
    mof: Option<FraxUsed>,
    hip: Option<FraxUsed>,
    /// `min_T_hip_spine`.
    t_min: Option<&'a ScoreReading>,
    /// The high-dose criteria met (shared by A1 and B1).
    high_dose_met: Vec<Criterion>,
    /// The high-dose criteria: TRUE when one is met, UNKNOWN when a GC dose in the last year is
    /// not computable, else FALSE.
    high_dose: Tri,
}

impl RowInputs<'_> {
    fn prior_fracture(&self) -> Option<Criterion> {
        (self.prior == Tri::True).then(|| {
            crit(
                text!(
                    "prior osteoporotic fracture: {}",
                    self.fracture_evidence
                        .iter()
                        .map(|e| e.detail.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                self.fracture_evidence.clone(),
            )
        })
    }

    /// The lowest T-score as evidence: "total hip T-score -2.7 (2024-09-01)".
    fn t_evidence(&self) -> Vec<Evidence> {
        self.t_min
            .map(|s| {
                let text = text!(
                    "{} T-score {} ({})",
                    s.site.label(),
                    Fixed(s.value, 1),
                    Ymd(s.date)
                );
                vec![Evidence::new(&s.source, Some(s.date), text)]
            })
            .unwrap_or_default()
    }

    /// `lower < T ≤ upper` (no lower bound for the very-high row).
    fn t_score(&self, lower: Option<f64>, upper: f64) -> Option<Criterion> {
        self.t_min
            .filter(|s| s.value <= upper && lower.is_none_or(|lo| s.value > lo))
            .map(|s| {
                crit(
                    text!("{} T-score {} ≤ {upper}", s.site.label(), Fixed(s.value, 1)),
                    self.t_evidence(),
                )
            })
    }

    /// GC-adjusted FRAX at or above `threshold`, worded the same in every row.
    fn frax(f: &Option<FraxUsed>, name: &str, threshold: f64, places: u32) -> Option<Criterion> {
        f.as_ref()
            .filter(|f| at_least(f.adjusted, threshold))
            .map(|f| {
                crit(
                    text!(
                        "GC-adjusted FRAX {name} {} % ≥ {threshold} %",
                        Fixed(f.adjusted, places)
                    ),
                    vec![f.evidence.clone()],
                )
            })
    }
}

/// The row of the table that matched, and the basis line a row without criteria adds.
struct RowMatch {
    category: RiskCategory,
    row: Option<&'static str>,
    met: Vec<Criterion>,
    note: Option<String>,
}

impl RowMatch {
    fn met(category: RiskCategory, row: &'static str, met: Vec<Criterion>) -> Option<Self> {
        (!met.is_empty()).then_some(RowMatch {
            category,
            row: Some(row),
            met,
            note: None,
        })
    }
    fn indeterminate(row: Option<&'static str>, note: impl Into<String>) -> Self {
        RowMatch {
            category: RiskCategory::Indeterminate,
            row,
            met: Vec::new(),
            note: Some(note.into()),
        }
    }
}

/// A1 very high: prior osteoporotic fracture; T ≤ −3.5; GC-adjusted FRAX MOF ≥ 30 % or hip
/// ≥ 4.5 %; > 30 days ≥ 30 mg or ≥ 5 g in the last year.
fn a1_very_high(x: &RowInputs<'_>) -> Vec<Criterion> {
    let t = x.t;
    let mut met: Vec<Criterion> = x.prior_fracture().into_iter().collect();
    met.extend(x.t_score(None, t.t_very_high));
    met.extend(RowInputs::frax(&x.mof, "MOF", t.frax_mof_very_high, 1));
    met.extend(RowInputs::frax(&x.hip, "hip", t.frax_hip_very_high, 1));
    met.extend(x.high_dose_met.iter().cloned());
    met
}

/// A2 high: −3.5 < T ≤ −2.5; GC-adjusted FRAX MOF ≥ 20 % or hip ≥ 3 %.
fn a2_high(x: &RowInputs<'_>) -> Vec<Criterion> {
    let t = x.t;
    [
        x.t_score(Some(t.t_very_high), t.t_high),
        RowInputs::frax(&x.mof, "MOF", t.frax_mof_high, 1),
        RowInputs::frax(&x.hip, "hip", t.frax_hip_high, 2),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A3 moderate: GC-adjusted FRAX MOF ≥ 10 % or hip ≥ 1 %; −2.5 < T ≤ −1.0.
fn a3_moderate(x: &RowInputs<'_>) -> Vec<Criterion> {
    let t = x.t;
    [
        RowInputs::frax(&x.mof, "MOF", t.frax_mof_moderate, 1),
        RowInputs::frax(&x.hip, "hip", t.frax_hip_moderate, 2),
        x.t_score(Some(t.t_high), t.t_moderate),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A4 low: FRAX MOF and hip and a T-score all known and below the moderate thresholds, no prior
/// fracture on record, and the high-dose criteria known FALSE.
fn a4_low(x: &RowInputs<'_>) -> Vec<Criterion> {
    let t = x.t;
    match (&x.mof, &x.hip, x.t_min) {
        (Some(m), Some(h), Some(s))
            if m.adjusted < t.frax_mof_moderate
                && h.adjusted < t.frax_hip_moderate
                && s.value > t.t_moderate
                && x.prior != Tri::True
                && x.high_dose == Tri::False =>
        {
            vec![
                crit(
                    text!(
                        "GC-adjusted FRAX MOF {} % < {} % and hip {} % < {} %",
                        Fixed(m.adjusted, 1),
                        t.frax_mof_moderate,
                        Fixed(h.adjusted, 2),
                        t.frax_hip_moderate
                    ),
                    vec![m.evidence.clone(), h.evidence.clone()],
                ),
                crit(
                    text!(
                        "{} T-score {} > {}",
                        s.site.label(),
                        Fixed(s.value, 1),
                        t.t_moderate
                    ),
                    x.t_evidence(),
                ),
            ]
        }
        _ => Vec::new(),
    }
}

/// Adults from `frax_min_age`: rows A1–A5, top-down, first match wins; A5 indeterminate.
fn table_a(x: &RowInputs<'_>) -> RowMatch {
    RowMatch::met(RiskCategory::VeryHigh, "A1", a1_very_high(x))
        .or_else(|| RowMatch::met(RiskCategory::High, "A2", a2_high(x)))
        .or_else(|| RowMatch::met(RiskCategory::Moderate, "A3", a3_moderate(x)))
        .or_else(|| RowMatch::met(RiskCategory::Low, "A4", a4_low(x)))
        .unwrap_or_else(|| {
            RowMatch::indeterminate(
                Some("A5"),
                "Indeterminate: no very-high, high or moderate criterion is met, and a low category needs FRAX (major osteoporotic and hip), a T-score and the high-dose criteria all known and low",
            )
        })
}

/// B1 very high: prior osteoporotic fracture; > 30 days ≥ 30 mg or ≥ 5 g in the last year.
fn b1_very_high(x: &RowInputs<'_>) -> Vec<Criterion> {
    let mut met: Vec<Criterion> = x.prior_fracture().into_iter().collect();
    met.extend(x.high_dose_met.iter().cloned());
    met
}

/// B2 moderate: continuing ≥ 7.5 mg for ≥ 182 days AND (Z < −3.0 OR BMD loss > LSC within a
/// year), in three-valued logic; the criteria met when TRUE.
fn b2_moderate(x: &RowInputs<'_>) -> (Tri, Vec<Criterion>) {
    let (t, gc, dxa, peq) = (x.t, x.gc, x.dxa, x.peq);
    let dose_met = at_least(peq, t.gc_young_continuing_mg)
        && gc.continuous_days_ge_7_5 >= t.gc_young_continuing_days;
    let dose_tri = if dose_met {
        Tri::True
    } else if gc.current_daily_peq.is_none() {
        Tri::Unknown
    } else {
        Tri::False
    };
    let z_low = dxa.min_z.as_ref().filter(|z| z.value < t.young_z_threshold);
    let loss = dxa.latest_change.as_ref().filter(|c| {
        c.significant_loss && days(c.earlier, c.later) <= t.young_bmd_loss_interval_days
    });
    let bone_tri = if z_low.is_some() || loss.is_some() {
        Tri::True
    } else if dxa.min_z.is_some() {
        Tri::False
    } else {
        Tri::Unknown
    };
    let b2 = dose_tri.and(bone_tri);
    if b2 != Tri::True {
        return (b2, Vec::new());
    }
    let mut met = vec![crit(
        text!(
            "continuing {} mg PEq/day, {} days ≥ {} mg (≥ {})",
            Fixed(peq, 1),
            gc.continuous_days_ge_7_5,
            t.gc_young_continuing_mg,
            t.gc_young_continuing_days
        ),
        gc.evidence.clone(),
    )];
    if let Some(z) = z_low {
        met.push(crit(
            text!(
                "{} Z-score {} < {}",
                z.site.label(),
                Fixed(z.value, 1),
                t.young_z_threshold
            ),
            vec![Evidence::new(
                &z.source,
                Some(z.date),
                text!("{} Z-score {}", z.site.label(), Fixed(z.value, 1)),
            )],
        ));
    }
    if let Some(l) = loss {
        met.push(crit(
            text!(
                "significant BMD loss at {} between {} and {}",
                l.site.label(),
                l.earlier,
                l.later
            ),
            l.evidence.clone(),
        ));
    }
    (b2, met)
}

/// Whether any DXA result is on record (B3, B4).
fn has_dxa(x: &RowInputs<'_>) -> bool {
    x.dxa.latest_dxa.is_some() || x.dxa.min_z.is_some() || x.t_min.is_some()
}

/// B3 low: GC-qualifying, B1 and B2 each known FALSE, with a DXA.
fn b3_low(x: &RowInputs<'_>, b2: Tri) -> Vec<Criterion> {
    if x.gc.qualifying == Tri::True && b2 == Tri::False && x.high_dose == Tri::False && has_dxa(x) {
        vec![crit(
            "GC-qualifying, no very-high or moderate criterion, DXA available",
            Vec::new(),
        )]
    } else {
        Vec::new()
    }
}

/// B4 indeterminate: no DXA and no fracture data.
fn b4_no_data(x: &RowInputs<'_>) -> bool {
    !has_dxa(x) && x.prior != Tri::False
}

/// Adults from `adult_min_age` to under `frax_min_age`: rows B1–B5, top-down (FRAX is not used);
/// B5 indeterminate.
fn table_b(x: &RowInputs<'_>) -> RowMatch {
    if let Some(m) = RowMatch::met(RiskCategory::VeryHigh, "B1", b1_very_high(x)) {
        return m;
    }
    let (b2, met) = b2_moderate(x);
    RowMatch::met(RiskCategory::Moderate, "B2", met)
        .or_else(|| RowMatch::met(RiskCategory::Low, "B3", b3_low(x, b2)))
        .unwrap_or_else(|| {
            if b4_no_data(x) {
                RowMatch::indeterminate(Some("B4"), "Indeterminate: no DXA and no fracture data")
            } else {
                RowMatch::indeterminate(
                    Some("B5"),
                    "Indeterminate: the ACR-2022 table has no category for this young adult (e.g. not GC-qualifying, or GC dose unknown)",
                )
            }
        })
}

/// Without a birth date only the criteria common to both tables (A1/B1) can be judged.
fn no_age(x: &RowInputs<'_>) -> RowMatch {
    RowMatch::met(RiskCategory::VeryHigh, "A1/B1", b1_very_high(x)).unwrap_or_else(|| {
        RowMatch::indeterminate(
            None,
            "Indeterminate: age unknown (no birth date), table cannot be chosen",
        )
    })
}

/// §3.5: whether the ACR-2022 GIOP recommendations apply, for the basis.
fn gc_scope_line(gc: &GcExposure, t: &Thresholds, peq: f64) -> String {
    match gc.qualifying {
    Tri::True => text!(
        "GC-qualifying (ACR-2022 GIOP recommendations apply): {} mg prednisone-equivalent/day{}",
        Fixed(peq, 1),
        if gc.open_ended {
            text!(", {} days ≥ {} mg, open-ended order", gc.continuous_days_ge_2_5, Shortest(t.gc_scope_min_peq_mg))
        } else {
            text!(", {} days ≥ {} mg", gc.continuous_days_ge_2_5, Shortest(t.gc_scope_min_peq_mg))
        }
    ),
    Tri::Unknown => "GC-qualifying status unknown: a systemic glucocorticoid is present but its dose is not computable (treated as qualifying for assessment)".to_string(),
    Tri::False if gc.present => text!(
        "Not GC-qualifying: {} mg prednisone-equivalent/day for {} days (needs ≥ {} mg for > {} days); ACR-2022 GIOP recommendations do not apply",
        Fixed(peq, 1), gc.continuous_days_ge_2_5, t.gc_scope_min_peq_mg, t.gc_scope_min_days
    ),
    Tri::False => "Not GC-qualifying: no current systemic glucocorticoid; ACR-2022 GIOP recommendations do not apply".to_string(),
}
}

/// The high-dose criteria shared by A1 and B1 (> 30 days ≥ 30 mg, ≥ 5 g in the last year):
/// those met, and their three-valued state. The known series can establish TRUE; with an unknown
/// dose they cannot be FALSE.
fn high_dose_criteria(gc: &GcExposure, t: &Thresholds) -> (Vec<Criterion>, Tri) {
    // The evidence is copied only into a criterion that is met.
    let gc_ev = &gc.evidence;
    let mut high_dose_met: Vec<Criterion> = Vec::new();
    if gc.days_ge_30_last365 > t.gc_very_high_days {
        high_dose_met.push(crit(
            text!(
                "{} days ≥ {} mg PEq in the last {} days (> {})",
                gc.days_ge_30_last365,
                t.gc_very_high_daily_mg,
                t.gc_exposure_window_days,
                t.gc_very_high_days
            ),
            gc_ev.clone(),
        ));
    }
    if at_least(gc.cumulative_g_last365, t.gc_very_high_cumulative_g) {
        high_dose_met.push(crit(
            text!(
                "cumulative {} g PEq in the last {} days (≥ {} g)",
                Fixed(gc.cumulative_g_last365, 2),
                t.gc_exposure_window_days,
                t.gc_very_high_cumulative_g
            ),
            gc_ev.clone(),
        ));
    }
    let high_dose_tri = if !high_dose_met.is_empty() {
        Tri::True
    } else if gc.unknown_dose_records.is_empty() {
        Tri::False
    } else {
        Tri::Unknown
    };
    (high_dose_met, high_dose_tri)
}

/// The inputs missing for the category (they never block one established by a TRUE criterion).
fn missing_inputs(
    input: &Input<'_>,
    dxa: &DxaFacts,
    t_min: Option<&ScoreReading>,
    frax_known: bool,
    prior: Tri,
    high_dose: Tri,
) -> Vec<String> {
    let t = input.t;
    let mut missing: Vec<String> = Vec::new();
    let adult_young = input
        .age
        .is_some_and(|a| a >= t.adult_min_age && a < t.frax_min_age);
    if adult_young {
        if dxa.min_z.is_none() && dxa.latest_change.is_none() {
            missing.push("DXA (Z-score hip/spine)".into());
        }
    } else {
        if t_min.is_none() {
            missing.push("DXA (T-score hip/spine)".into());
        }
        if !frax_known {
            missing.push(text!(
                "FRAX (MOF and hip) within {} days",
                t.frax_max_age_days
            ));
        }
    }
    if prior == Tri::Unknown {
        missing.push("fracture history".into());
    }
    if high_dose == Tri::Unknown {
        missing.push("glucocorticoid dose".into());
    }
    missing
}

pub fn compute(
    input: &Input<'_>,
    gc: &GcExposure,
    spine: &SpineFacts,
    dxa: &DxaFacts,
    therapy: &TherapyFacts,
) -> RiskAssessment {
    let t = input.t;
    let mut r = RiskAssessment::default();

    // --- GC state (§3.5: the basis says whether the GIOP recommendations apply) -------------
    let peq = gc.current_daily_peq.unwrap_or(gc.current_daily_peq_known);
    r.basis.push(gc_scope_line(gc, t, peq));

    // --- Inputs ------------------------------------------------------------------------------
    let (prior, fx_ev) = prior_osteoporotic_fracture(spine, input.record);
    r.prior_fracture = prior;

    let high_dose = above(peq, t.gc_high_dose_peq_mg);
    let (mof_obs, mut invalid) = latest_frax(input, ObservationKind::FraxMof);
    let (hip_obs, invalid_hip) = latest_frax(input, ObservationKind::FraxHip);
    invalid.extend(invalid_hip);
    r.frax_invalid = invalid;
    r.gc_frax_mof =
        mof_obs.map(|o| adjust(o, "FRAX MOF", t.frax_mof_gc_multiplier, peq, high_dose));
    r.gc_frax_hip =
        hip_obs.map(|o| adjust(o, "FRAX hip", t.frax_hip_gc_multiplier, peq, high_dose));
    for o in mof_obs.iter().chain(hip_obs.iter()) {
        if o.frax_gc_entered == Some(false) {
            let note = "FRAX omitted glucocorticoids (GC risk factor entered as 'no'); GC-dose multipliers applied as usual".to_string();
            if !r.basis.contains(&note) {
                r.basis.push(note);
            }
        }
    }
    if (mof_obs.is_some() || hip_obs.is_some()) && gc.current_daily_peq.is_none() {
        r.basis.push(text!(
            "GC dose not computable: FRAX adjusted from the known part ({} mg PEq/day) only",
            Fixed(peq, 1)
        ));
    }
    // FRAX computed on treatment (§3.4).
    let mut frax_dates: Vec<NaiveDate> = mof_obs
        .iter()
        .chain(hip_obs.iter())
        .filter_map(|o| o.date())
        .collect();
    frax_dates.sort();
    frax_dates.dedup();
    for fd in frax_dates {
        let agents = active_agents_on(input, therapy, fd);
        if !agents.is_empty() {
            let mut names: Vec<&str> = agents.iter().map(|a| a.agent.name()).collect();
            names.sort();
            names.dedup();
            r.basis.push(text!(
                "FRAX computed on treatment ({} active on {fd}): validity uncertain",
                names.join(", ")
            ));
        }
    }
    for msg in &r.frax_invalid {
        r.basis.push(text!("FRAX ignored: {msg}"));
    }

    let mof = r.gc_frax_mof.clone();
    let hip = r.gc_frax_hip.clone();
    let t_min = dxa.min_t.as_ref();
    if let Some(s) = t_min.filter(|s| s.stale) {
        r.basis.push(text!(
            "T-score from {} is older than {} days (stale; still used)",
            s.date,
            t.dxa_stale_days
        ));
    }

    let (high_dose_met, high_dose_tri) = high_dose_criteria(gc, t);

    // Missing inputs (they never block a category established by a TRUE criterion).
    r.missing = missing_inputs(
        input,
        dxa,
        t_min,
        mof.is_some() && hip.is_some(),
        prior,
        high_dose_tri,
    );

    // --- Decision table (§3.2): the rows, top-down -------------------------------------------
    let x = RowInputs {
        t,
        gc,
        dxa,
        peq,
        prior,
        fracture_evidence: fx_ev,
        mof,
        hip,
        t_min,
        high_dose_met,
        high_dose: high_dose_tri,
    };
    let matched = match input.age {
        Some(age) if age < t.adult_min_age => {
            r.missing.clear();
            RowMatch::indeterminate(
                None,
                text!(
                    "Under {} years: no fracture-risk category (ACR-2022 adult table)",
                    t.adult_min_age
                ),
            )
        }
        Some(age) if age >= t.frax_min_age => table_a(&x),
        Some(_) => table_b(&x),
        None => {
            r.missing.push("birth date (age)".into());
            no_age(&x)
        }
    };
    r.basis.extend(matched.note);
    let (category, row, met) = (matched.category, matched.row, matched.met);
    r.category = category;
    r.row = row.map(str::to_string);
    r.criteria_met = met.iter().map(|c| c.text.clone()).collect();
    if !met.is_empty() {
        let list: Vec<&str> = met.iter().map(|c| c.text.as_str()).collect();
        r.basis
            .insert(1, text!("{}: {}", category.label(), list.join("; ")));
    }
    for c in met {
        for e in c.evidence {
            if !r.evidence.contains(&e) {
                r.evidence.push(e);
            }
        }
    }
    if prior == Tri::Unknown && category != RiskCategory::Indeterminate {
        r.basis
            .push("No fracture on record (fracture history not documented)".into());
    }
    if !r.missing.is_empty() {
        r.basis
            .push(text!("Missing inputs: {}", r.missing.join(", ")));
    }
    // A planned order (§4.3 v0.10): the decision has been taken.
    for p in &therapy.planned {
        r.basis.push(text!(
            "{} ordered {}, not yet given ({})",
            p.agent.name(),
            fmt_date(p.date),
            p.source
        ));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::dxa::{BmdChange, ScoreReading};
    use crate::facts::spine::{Augmentation, FractureEvent};
    use crate::model::{DxaSite, PatientRecord, Sex, SourceRef, VertebralLevel, VertebralLocation};
    use crate::testkit::{d, RecordBuilder};

    const AS_OF: &str = "2024-09-15";

    fn t_score(v: f64) -> DxaFacts {
        let r = ScoreReading {
            source: SourceRef::new("Observation/dxa"),
            site: DxaSite::TotalHip,
            date: d("2024-09-01"),
            value: v,
            stale: false,
        };
        DxaFacts {
            latest_t: vec![r.clone()],
            min_t: Some(r),
            dxa_dates: vec![d("2024-09-01")],
            latest_dxa: Some(d("2024-09-01")),
            ..DxaFacts::default()
        }
    }

    fn gc_qualifying(peq: f64) -> GcExposure {
        GcExposure {
            present: true,
            current_daily_peq: Some(peq),
            current_daily_peq_known: peq,
            continuous_days_ge_2_5: 200,
            gc_start_date: Some(d("2024-02-28")),
            open_ended: true,
            qualifying: Tri::True,
            ..GcExposure::default()
        }
    }

    fn no_gc() -> GcExposure {
        GcExposure {
            current_daily_peq: Some(0.0),
            qualifying: Tri::False,
            ..GcExposure::default()
        }
    }

    fn frax_record(birth: &str, mof: Option<f64>, hip: Option<f64>) -> PatientRecord {
        let mut b = RecordBuilder::new(birth, Sex::Female);
        if let Some(v) = mof {
            b = b.observation(ObservationKind::FraxMof, "2024-04-01", v);
        }
        if let Some(v) = hip {
            b = b.observation(ObservationKind::FraxHip, "2024-04-01", v);
        }
        b.build()
    }

    fn risk(
        record: &PatientRecord,
        gc: &GcExposure,
        spine: &SpineFacts,
        dxa: &DxaFacts,
    ) -> RiskAssessment {
        risk_at(record, AS_OF, gc, spine, dxa, &TherapyFacts::default())
    }

    fn risk_at(
        record: &PatientRecord,
        as_of: &str,
        gc: &GcExposure,
        spine: &SpineFacts,
        dxa: &DxaFacts,
        therapy: &TherapyFacts,
    ) -> RiskAssessment {
        let visible = crate::engine::visible_at(record, d(as_of));
        let t = Thresholds::default();
        let age = record
            .patient
            .birth_date
            .map(|b| crate::engine::age_at(b, d(as_of)));
        let input = Input {
            record: &visible,
            as_of: d(as_of),
            t: &t,
            age,
        };
        compute(&input, gc, spine, dxa, therapy)
    }

    fn fractured() -> SpineFacts {
        SpineFacts {
            augmentations: vec![Augmentation {
                source: SourceRef::new("Procedure/pvp"),
                level: VertebralLevel::L4,
                date: d("2022-08-16"),
            }],
            ..SpineFacts::default()
        }
    }

    // ---- Example 10, unit-level rows ---------------------------------------------------------

    #[test]
    fn t_minus_3_5_is_very_high() {
        let r = frax_record("1969-01-01", None, None); // age 55
        let a = risk(
            &r,
            &gc_qualifying(5.0),
            &SpineFacts::default(),
            &t_score(-3.5),
        );
        assert_eq!(a.category, RiskCategory::VeryHigh);
        assert_eq!(a.row.as_deref(), Some("A1"));
        assert!(a.basis[0].starts_with("GC-qualifying"), "{:?}", a.basis);
        // Just above: high.
        let a = risk(
            &r,
            &gc_qualifying(5.0),
            &SpineFacts::default(),
            &t_score(-3.49),
        );
        assert_eq!(a.category, RiskCategory::High);
    }

    #[test]
    fn t_minus_2_5_is_high() {
        let r = frax_record("1969-01-01", None, None);
        let a = risk(
            &r,
            &gc_qualifying(5.0),
            &SpineFacts::default(),
            &t_score(-2.5),
        );
        assert_eq!(a.category, RiskCategory::High);
        assert_eq!(a.row.as_deref(), Some("A2"));
        let a = risk(
            &r,
            &gc_qualifying(5.0),
            &SpineFacts::default(),
            &t_score(-2.49),
        );
        assert_eq!(a.category, RiskCategory::Moderate);
    }

    #[test]
    fn t_minus_1_0_without_frax_is_moderate() {
        let r = frax_record("1969-01-01", None, None);
        let a = risk(
            &r,
            &gc_qualifying(5.0),
            &SpineFacts::default(),
            &t_score(-1.0),
        );
        assert_eq!(a.category, RiskCategory::Moderate);
        assert_eq!(a.row.as_deref(), Some("A3"));
        assert!(a.missing.iter().any(|m| m.starts_with("FRAX")));
        // −0.9 without FRAX: not low (FRAX missing) → indeterminate.
        let a = risk(
            &r,
            &gc_qualifying(5.0),
            &SpineFacts::default(),
            &t_score(-0.9),
        );
        assert_eq!(a.category, RiskCategory::Indeterminate);
        assert_eq!(a.row.as_deref(), Some("A5"));
    }

    #[test]
    fn hip_exactly_1_percent_is_moderate() {
        let r = frax_record("1969-01-01", Some(8.0), Some(1.0));
        let a = risk(
            &r,
            &gc_qualifying(5.0),
            &SpineFacts::default(),
            &t_score(-0.5),
        );
        assert_eq!(a.category, RiskCategory::Moderate);
        // 0.99 % with everything else low and known → low (A4), "no fracture on record".
        let r = frax_record("1969-01-01", Some(8.0), Some(0.99));
        let a = risk(
            &r,
            &gc_qualifying(5.0),
            &SpineFacts::default(),
            &t_score(-0.5),
        );
        assert_eq!(a.category, RiskCategory::Low);
        assert!(a.basis.iter().any(|b| b.contains("No fracture on record")));
    }

    #[test]
    fn mof_26_1_with_peq_8_becomes_30_very_high() {
        let r = frax_record("1969-01-01", Some(26.1), None);
        let a = risk(
            &r,
            &gc_qualifying(8.0),
            &SpineFacts::default(),
            &DxaFacts::default(),
        );
        let mof = a.gc_frax_mof.as_ref().unwrap();
        assert!((mof.adjusted - 30.015).abs() < 1e-9);
        assert_eq!(a.category, RiskCategory::VeryHigh);
        // Without the multiplier (7.5 exactly, §12.4): high.
        let a = risk(
            &r,
            &gc_qualifying(7.5),
            &SpineFacts::default(),
            &DxaFacts::default(),
        );
        assert_eq!(a.gc_frax_mof.as_ref().unwrap().multiplier, 1.0);
        assert_eq!(a.category, RiskCategory::High);
    }

    #[test]
    fn example5_adjusted_hip_is_high() {
        let r = frax_record("1962-05-01", Some(9.0), Some(2.8));
        let a = risk(
            &r,
            &gc_qualifying(10.0),
            &SpineFacts::default(),
            &DxaFacts::default(),
        );
        assert!((a.gc_frax_mof.as_ref().unwrap().adjusted - 10.35).abs() < 1e-9);
        assert!((a.gc_frax_hip.as_ref().unwrap().adjusted - 3.36).abs() < 1e-9);
        assert_eq!(a.category, RiskCategory::High);
        assert!(a.missing.iter().any(|m| m.starts_with("DXA")));
        // The same FRAX without GC: moderate.
        let a = risk(&r, &no_gc(), &SpineFacts::default(), &DxaFacts::default());
        assert_eq!(a.category, RiskCategory::Moderate);
        assert!(a.basis[0].starts_with("Not GC-qualifying"));
    }

    #[test]
    fn frax_already_adjusted_and_gc_not_entered() {
        let mut r = frax_record("1962-05-01", Some(18.0), Some(2.6));
        r.observations[0].frax_gc_adjusted = true;
        r.observations[1].frax_gc_entered = Some(false);
        let a = risk(
            &r,
            &gc_qualifying(10.0),
            &SpineFacts::default(),
            &DxaFacts::default(),
        );
        assert_eq!(a.gc_frax_mof.as_ref().unwrap().adjusted, 18.0);
        assert!((a.gc_frax_hip.as_ref().unwrap().adjusted - 3.12).abs() < 1e-9);
        assert_eq!(a.category, RiskCategory::High);
        assert!(a
            .basis
            .iter()
            .any(|b| b.contains("FRAX omitted glucocorticoids")));
    }

    #[test]
    fn frax_out_of_range_is_invalid_and_old_frax_is_ignored() {
        let r = frax_record("1962-05-01", Some(130.0), None);
        let a = risk(&r, &no_gc(), &SpineFacts::default(), &DxaFacts::default());
        assert!(a.gc_frax_mof.is_none());
        assert_eq!(a.frax_invalid.len(), 1);
        // 365 days old is used; 366 is not (FRAX dated 2024-04-01).
        let r = frax_record("1962-05-01", Some(25.0), None);
        let a = risk_at(
            &r,
            "2025-04-01",
            &no_gc(),
            &SpineFacts::default(),
            &DxaFacts::default(),
            &TherapyFacts::default(),
        );
        assert_eq!(a.category, RiskCategory::High);
        let a = risk_at(
            &r,
            "2025-04-02",
            &no_gc(),
            &SpineFacts::default(),
            &DxaFacts::default(),
            &TherapyFacts::default(),
        );
        assert_eq!(a.category, RiskCategory::Indeterminate);
    }

    /// §3.2/§3.4 and §1.4: two FRAX values taken at the same instant (e.g. with and without BMD)
    /// are equally recent; the higher is used, whichever comes first in the record (found by
    /// the oragc differential: the record order decided, and a lower value could lower the
    /// category, here from very high to moderate).
    #[test]
    fn same_instant_frax_keeps_the_higher_value() {
        for (first, second) in [(30.0, 12.0), (12.0, 30.0)] {
            let r = RecordBuilder::new("1962-05-01", Sex::Female)
                .observation(ObservationKind::FraxMof, "2024-04-01", first)
                .observation(ObservationKind::FraxMof, "2024-04-01", second)
                .build();
            let a = risk(&r, &no_gc(), &SpineFacts::default(), &DxaFacts::default());
            assert_eq!(a.gc_frax_mof.as_ref().map(|f| f.raw), Some(30.0));
            assert_eq!(a.category, RiskCategory::VeryHigh);
        }
        // A later value still replaces an earlier higher one (most recent first).
        let r = RecordBuilder::new("1962-05-01", Sex::Female)
            .observation(ObservationKind::FraxMof, "2024-03-01", 30.0)
            .observation(ObservationKind::FraxMof, "2024-04-01", 12.0)
            .build();
        let a = risk(&r, &no_gc(), &SpineFacts::default(), &DxaFacts::default());
        assert_eq!(a.gc_frax_mof.as_ref().map(|f| f.raw), Some(12.0));
        assert_eq!(a.category, RiskCategory::Moderate);
    }

    /// §3.1 with §10.3: a vertebral fracture known only from a follow-up code (7th character
    /// D/G/K/S) is not a new fracture event, but it is a prior osteoporotic fracture (row A1),
    /// as a hip fracture coded the same way is (found by the oragc differential: it was ignored).
    /// Marked traumatic (§10.3a), it is not counted.
    #[test]
    fn followup_coded_vertebral_fracture_is_a_prior_fracture() {
        let mut r = RecordBuilder::new("1962-05-01", Sex::Female)
            .vertebral_fracture(VertebralLevel::L1, "2020-01-01", "2020-01-02")
            .build();
        r.conditions[0].subsequent_encounter = true;
        let spine_of = |r: &PatientRecord| {
            let visible = crate::engine::visible_at(r, d(AS_OF));
            let t = Thresholds::default();
            crate::facts::spine::compute(&Input {
                record: &visible,
                as_of: d(AS_OF),
                t: &t,
                age: Some(62),
            })
        };
        let spine = spine_of(&r);
        assert!(
            spine.fractures.is_empty(),
            "a follow-up code is no new event"
        );
        let a = risk(&r, &no_gc(), &spine, &DxaFacts::default());
        assert_eq!(a.prior_fracture, Tri::True);
        assert_eq!(a.category, RiskCategory::VeryHigh);
        assert_eq!(a.row.as_deref(), Some("A1"));
        r.conditions[0].mechanism = Some(crate::model::FractureMechanism::Traumatic);
        let a = risk(&r, &no_gc(), &spine_of(&r), &DxaFacts::default());
        assert_eq!(a.prior_fracture, Tri::Unknown);
        assert_eq!(a.category, RiskCategory::Indeterminate);
    }

    #[test]
    fn frax_on_treatment_is_noted() {
        let r = frax_record("1962-05-01", Some(12.0), Some(1.5));
        let therapy = TherapyFacts {
            denosumab_doses: vec![(
                d("2024-01-01"),
                SourceRef::new("MedicationAdministration/x"),
            )],
            ..TherapyFacts::default()
        };
        let a = risk_at(
            &r,
            AS_OF,
            &no_gc(),
            &SpineFacts::default(),
            &DxaFacts::default(),
            &therapy,
        );
        assert!(a
            .basis
            .iter()
            .any(|b| b.starts_with("FRAX computed on treatment (denosumab")));
    }

    #[test]
    fn prior_fracture_makes_very_high_and_refuted_is_false() {
        let r = frax_record("1950-03-15", None, None);
        let a = risk(&r, &gc_qualifying(5.0), &fractured(), &DxaFacts::default());
        assert_eq!(a.category, RiskCategory::VeryHigh);
        assert_eq!(a.prior_fracture, Tri::True);
        assert!(a.evidence.iter().any(|e| e.reference == "Procedure/pvp"));
        let spine = SpineFacts {
            fractures: vec![FractureEvent {
                source: SourceRef::new("Condition/vf"),
                location: VertebralLocation::Unspecified,
                onset_for_acuity: None,
                onset_for_windows: None,
                onset_estimated: false,
                prevalent_unknown_age: false,
                traumatic: false,
                recorded: Some(d("2020-01-01")),
            }],
            ..SpineFacts::default()
        };
        assert_eq!(
            risk(&r, &no_gc(), &spine, &DxaFacts::default()).category,
            RiskCategory::VeryHigh
        );
        let mut traumatic = spine.clone();
        traumatic.fractures[0].traumatic = true;
        assert_eq!(
            risk(&r, &no_gc(), &traumatic, &DxaFacts::default()).prior_fracture,
            Tri::Unknown
        );
        let refuted = SpineFacts {
            refuted_fractures: vec![SourceRef::new("Condition/no")],
            ..SpineFacts::default()
        };
        assert_eq!(
            risk(&r, &no_gc(), &refuted, &DxaFacts::default()).prior_fracture,
            Tri::False
        );
    }

    #[test]
    fn nothing_known_is_indeterminate_with_missing_inputs() {
        let r = frax_record("1945-02-02", None, None);
        let a = risk(&r, &no_gc(), &SpineFacts::default(), &DxaFacts::default());
        assert_eq!(a.category, RiskCategory::Indeterminate);
        assert_eq!(a.category.as_str(), "unknown");
        assert_eq!(a.missing.len(), 3, "{:?}", a.missing);
    }

    #[test]
    fn high_dose_criteria_very_high_for_all_adults() {
        let mut gc = gc_qualifying(40.0);
        gc.days_ge_30_last365 = 31;
        let r = frax_record("1969-01-01", None, None);
        assert_eq!(
            risk(&r, &gc, &SpineFacts::default(), &DxaFacts::default()).category,
            RiskCategory::VeryHigh
        );
        gc.days_ge_30_last365 = 30;
        assert_eq!(
            risk(&r, &gc, &SpineFacts::default(), &DxaFacts::default()).category,
            RiskCategory::Indeterminate
        );
        gc.cumulative_g_last365 = 5.0;
        assert_eq!(
            risk(&r, &gc, &SpineFacts::default(), &DxaFacts::default()).category,
            RiskCategory::VeryHigh
        );
    }

    // ---- Under 40 -------------------------------------------------------------------------------

    #[test]
    fn example6_young_very_high_b1() {
        let mut gc = gc_qualifying(40.0);
        gc.days_ge_30_last365 = 122;
        gc.cumulative_g_last365 = 9.67;
        let r = frax_record("2000-01-10", None, None);
        let a = risk_at(
            &r,
            "2024-09-30",
            &gc,
            &SpineFacts::default(),
            &DxaFacts::default(),
            &TherapyFacts::default(),
        );
        assert_eq!(a.category, RiskCategory::VeryHigh);
        assert_eq!(a.row.as_deref(), Some("B1"));
    }

    fn z_score(v: f64) -> DxaFacts {
        let z = ScoreReading {
            source: SourceRef::new("Observation/z"),
            site: DxaSite::LumbarSpine,
            date: d("2024-09-01"),
            value: v,
            stale: false,
        };
        DxaFacts {
            min_z: Some(z),
            dxa_dates: vec![d("2024-09-01")],
            latest_dxa: Some(d("2024-09-01")),
            ..DxaFacts::default()
        }
    }

    #[test]
    fn young_moderate_b2_and_low_b3() {
        let r = frax_record("1994-01-01", None, None);
        let mut gc = gc_qualifying(7.5);
        gc.continuous_days_ge_7_5 = 182;
        let a = risk(&r, &gc, &SpineFacts::default(), &z_score(-3.1));
        assert_eq!(a.category, RiskCategory::Moderate);
        assert_eq!(a.row.as_deref(), Some("B2"));
        // Z exactly −3.0: not < −3.0 → low (B3).
        let a = risk(&r, &gc, &SpineFacts::default(), &z_score(-3.0));
        assert_eq!(a.category, RiskCategory::Low);
        assert_eq!(a.row.as_deref(), Some("B3"));
        // 181 days at ≥ 7.5: B2 not met.
        gc.continuous_days_ge_7_5 = 181;
        assert_eq!(
            risk(&r, &gc, &SpineFacts::default(), &z_score(-3.1)).category,
            RiskCategory::Low
        );
        // BMD loss within 400 days replaces the Z criterion.
        gc.continuous_days_ge_7_5 = 200;
        let mut dxa = z_score(-1.0);
        dxa.latest_change = Some(BmdChange {
            site: DxaSite::TotalHip,
            earlier: d("2023-09-01"),
            later: d("2024-09-01"),
            pct_change: Some(-6.0),
            t_change: None,
            lsc_pct: Some(5.0),
            approximate_t_based: false,
            significant_loss: true,
            large_loss: false,
            later_t: None,
            evidence: Vec::new(),
        });
        assert_eq!(
            risk(&r, &gc, &SpineFacts::default(), &dxa).category,
            RiskCategory::Moderate
        );
        // No DXA, no fracture data: B4.
        let a = risk(&r, &gc, &SpineFacts::default(), &DxaFacts::default());
        assert_eq!(a.row.as_deref(), Some("B4"));
        // Not GC-qualifying with a DXA: B5.
        let a = risk(&r, &no_gc(), &SpineFacts::default(), &z_score(-1.0));
        assert_eq!(a.row.as_deref(), Some("B5"));
    }

    #[test]
    fn under_18_has_no_category() {
        let r = frax_record("2010-01-01", None, None);
        let a = risk(&r, &gc_qualifying(10.0), &fractured(), &DxaFacts::default());
        assert_eq!(a.category, RiskCategory::Indeterminate);
        assert!(a.basis.iter().any(|b| b.starts_with("Under 18")));
    }

    /// The §3.2 table row by row: one case per row, each reaching exactly that row.
    #[test]
    fn each_row_of_the_table_is_reached_by_its_case() {
        let old = "1945-02-02";
        let young = "1994-01-01";
        let mut b2_gc = gc_qualifying(7.5);
        b2_gc.continuous_days_ge_7_5 = 182;
        let none = SpineFacts::default();
        let cases: Vec<(&str, PatientRecord, GcExposure, SpineFacts, DxaFacts)> = vec![
            (
                "A1",
                frax_record(old, None, None),
                no_gc(),
                none.clone(),
                t_score(-3.5),
            ),
            (
                "A2",
                frax_record(old, None, None),
                no_gc(),
                none.clone(),
                t_score(-2.5),
            ),
            (
                "A3",
                frax_record(old, None, None),
                no_gc(),
                none.clone(),
                t_score(-1.0),
            ),
            (
                "A4",
                frax_record(old, Some(5.0), Some(0.5)),
                no_gc(),
                none.clone(),
                t_score(-0.5),
            ),
            (
                "A5",
                frax_record(old, None, None),
                no_gc(),
                none.clone(),
                DxaFacts::default(),
            ),
            (
                "B1",
                frax_record(young, None, None),
                no_gc(),
                fractured(),
                DxaFacts::default(),
            ),
            (
                "B2",
                frax_record(young, None, None),
                b2_gc.clone(),
                none.clone(),
                z_score(-3.1),
            ),
            (
                "B3",
                frax_record(young, None, None),
                b2_gc.clone(),
                none.clone(),
                z_score(-3.0),
            ),
            (
                "B4",
                frax_record(young, None, None),
                b2_gc,
                none.clone(),
                DxaFacts::default(),
            ),
            (
                "B5",
                frax_record(young, None, None),
                no_gc(),
                none,
                z_score(-1.0),
            ),
        ];
        for (row, record, gc, spine, dxa) in cases {
            let a = risk(&record, &gc, &spine, &dxa);
            assert_eq!(a.row.as_deref(), Some(row), "{row}: {:?}", a.basis);
            let expected = match row {
                "A1" | "B1" => RiskCategory::VeryHigh,
                "A2" => RiskCategory::High,
                "A3" | "B2" => RiskCategory::Moderate,
                "A4" | "B3" => RiskCategory::Low,
                _ => RiskCategory::Indeterminate,
            };
            assert_eq!(a.category, expected, "{row}");
            // The row id is machine-readable (`row`); the basis a clinician reads names none.
            for line in &a.basis {
                for id in ["A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3", "B4", "B5"] {
                    assert!(!line.contains(id), "{row}: {id} in {line:?}");
                }
                assert!(!line.contains("row "), "{row}: {line:?}");
            }
        }
    }

    /// Top-down, first match wins: a T-score of the very-high row and a FRAX of the high row give
    /// A1 with only A1's criteria.
    #[test]
    fn rows_are_evaluated_top_down() {
        let r = frax_record("1945-02-02", Some(25.0), None);
        let a = risk(&r, &no_gc(), &SpineFacts::default(), &t_score(-3.6));
        assert_eq!(a.row.as_deref(), Some("A1"));
        assert_eq!(a.criteria_met.len(), 1, "{:?}", a.criteria_met);
        assert!(
            a.criteria_met[0].contains("T-score -3.6"),
            "{:?}",
            a.criteria_met
        );
    }

    /// A4 needs the high-dose criteria known FALSE: an uncomputable GC dose makes it A5.
    #[test]
    fn low_needs_the_high_dose_criteria_known() {
        let r = frax_record("1945-02-02", Some(5.0), Some(0.5));
        let mut gc = no_gc();
        gc.unknown_dose_records = vec![SourceRef::new("MedicationRequest/unknown")];
        let a = risk(&r, &gc, &SpineFacts::default(), &t_score(-0.5));
        assert_eq!(a.row.as_deref(), Some("A5"));
        assert!(a.missing.iter().any(|m| m == "glucocorticoid dose"));
    }

    /// The one wording of a vertebral location.
    #[test]
    fn vertebral_locations_read_one_way() {
        use VertebralLevel::*;
        assert_eq!(VertebralLocation::Level(L1).to_string(), "L1");
        assert_eq!(VertebralLocation::Pair(T5, T6).to_string(), "T5–T6");
        assert_eq!(
            VertebralLocation::Unspecified.to_string(),
            "level not recorded"
        );
    }
}

//! Per-level spine state — knowledge.md §7.1–§7.4 (PVA-TIMING, GENANT-1993).
//!
//! Turns fracture Conditions, augmentation Procedures, spine imaging and the structured
//! `vertebral-edema` / `genant-grade` Observations into fracture events and one state per level.
//!
//! Interpretations (knowledge.md is silent or ambiguous; the conservative reading is taken):
//! * **Level pairs** (ICD-10 S22.05- = T5–T6 …): the event is stored *once* in
//!   [`SpineFacts::fractures`] (so it counts once for rebound and after-augmentation windows) and
//!   is attached to *both* levels for the per-level state, so either level shows the fracture.
//!   Augmentation candidacy still needs MRI oedema at the specific level (§7.5-2), which resolves
//!   the ambiguity. `Unspecified` locations have no per-level state (§7.2).
//! * **Step 3 "MRI after onset without oedema"** needs a structured `vertebral-edema = false`
//!   finding for the level dated on/after the onset used for acuity (period end); an MRI
//!   procedure without a structured finding says nothing about the level (free text is not
//!   parsed, §7.2).
//! * **Several events at one level**: each event gets a state by steps 3–5 and the most unhealed
//!   one is the level's state (ACUTE > SUBACUTE > CHRONIC).
//! * **Oedema without a fracture record**: §7.1 defines ACUTE/SUBACUTE by oedema alone, so step 2
//!   applies to any level; once the oedema MRI is older than 90 days such a level is CHRONIC
//!   (the fracture predates the MRI). No fracture *event* is created from oedema alone.
//! * **Onset unknown** (neither onset nor recordedDate) with an MRI finding for the level: the MRI
//!   bounds the onset, so step 5 (SUBACUTE, `age_indeterminate`) applies only when no MRI finding
//!   exists for the level.
//! * `since` = the date the state is counted from: augmentation date (AUGMENTED), the grade-0
//!   reading (INTACT), the MRI date (steps 2 and 3), the onset for acuity (step 4).

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};

use super::Input;
use crate::finding::{Evidence, Fixed, Ymd};
use crate::model::{
    add_days, days, Condition, ConditionKind, FractureMechanism, FractureSite, Observation,
    ObservationKind, ProcedureStatus, SourceRef, VertebralLevel, VertebralLocation,
};

/// §7.1 level states. Serialised in lowercase for the assessment JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum LevelState {
    Unknown,
    Intact,
    Acute,
    Subacute,
    Chronic,
    Augmented,
}

impl LevelState {
    pub fn as_str(self) -> &'static str {
        match self {
            LevelState::Unknown => "unknown",
            LevelState::Intact => "intact",
            LevelState::Acute => "acute",
            LevelState::Subacute => "subacute",
            LevelState::Chronic => "chronic",
            LevelState::Augmented => "augmented",
        }
    }
    /// "Unhealed" = ACUTE ∪ SUBACUTE (§7.1).
    pub fn is_unhealed(self) -> bool {
        matches!(self, LevelState::Acute | LevelState::Subacute)
    }
    pub fn is_fractured(self) -> bool {
        matches!(
            self,
            LevelState::Acute | LevelState::Subacute | LevelState::Chronic | LevelState::Augmented
        )
    }
}

/// A vertebral fracture event (§7.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FractureEvent {
    pub source: SourceRef,
    pub location: VertebralLocation,
    /// Onset used for acuity: period end (most recent plausible), §7.2.
    pub onset_for_acuity: Option<NaiveDate>,
    /// Onset used for the rebound and after-augmentation windows: period start, §7.2.
    pub onset_for_windows: Option<NaiveDate>,
    /// Onset taken from recordedDate (flag `onset_estimated`).
    pub onset_estimated: bool,
    /// A prevalent fracture of unknown age (genant grade without earlier grade 0): never enters
    /// the rebound or after-augmentation windows (§7.4 step 2).
    pub prevalent_unknown_age: bool,
    pub traumatic: bool,
    pub recorded: Option<NaiveDate>,
}

impl FractureEvent {
    /// The modelled levels the event is attached to (none for `Unspecified`).
    pub fn levels(&self) -> Vec<VertebralLevel> {
        match self.location {
            VertebralLocation::Level(l) => vec![l],
            VertebralLocation::Pair(a, b) => vec![a, b],
            VertebralLocation::Unspecified => Vec::new(),
        }
    }
    /// Whether the event is attached to `level` (a pair attaches to both of its levels).
    /// (Without building [`Self::levels`]: the rules ask this per level and per augmentation.)
    pub fn covers(&self, level: VertebralLevel) -> bool {
        match self.location {
            VertebralLocation::Level(l) => l == level,
            VertebralLocation::Pair(a, b) => a == level || b == level,
            VertebralLocation::Unspecified => false,
        }
    }
    /// Whether the onset bounds are known (not a prevalent fracture of unknown age).
    pub fn has_onset(&self) -> bool {
        !self.prevalent_unknown_age && self.onset_for_windows.is_some()
    }
}

/// A non-vertebral fragility fracture (§10.3a), for `prior_osteoporotic_fracture`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OtherFracture {
    pub source: SourceRef,
    pub site: FractureSite,
    pub date: Option<NaiveDate>,
    pub traumatic: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Augmentation {
    pub source: SourceRef,
    pub level: VertebralLevel,
    pub date: NaiveDate,
}

/// A completed augmentation Procedure without any recorded level (still implies a vertebral
/// fracture, §3.1, and opens an after-augmentation window, §7.6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnlocatedAugmentation {
    pub source: SourceRef,
    pub date: NaiveDate,
}

/// One usable pain score (0–10, §1.3), for §7.5-3 and §9 `ovcf-imaging-recommended`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PainReading {
    pub source: SourceRef,
    /// Effective date-time (midnight when only a date is known); orders same-day readings.
    pub at: NaiveDateTime,
    pub value: f64,
}

impl PainReading {
    pub fn date(&self) -> NaiveDate {
        self.at.date()
    }
    pub fn evidence(&self) -> Evidence {
        Evidence::new(
            &self.source,
            Some(self.date()),
            if self.at.time() == chrono::NaiveTime::MIN {
                text!("pain {}/10", PainScore(self.value))
            } else {
                text!(
                    "pain {}/10 at {:02}:{:02}",
                    PainScore(self.value),
                    self.at.hour(),
                    self.at.minute()
                )
            },
        )
    }
}

/// The state of one level at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelStatus {
    pub level: VertebralLevel,
    pub state: LevelState,
    /// Date the current state began (fracture onset, MRI, augmentation).
    pub since: Option<NaiveDate>,
    /// Onset unknown and no MRI (§7.4 step 5).
    pub age_indeterminate: bool,
    /// Acuity MRI-confirmed per §7.5-2.
    pub mri_confirmed: bool,
    /// Onset used for the conservative-care clock (§7.5-4).
    pub onset: Option<NaiveDate>,
    /// What the level's evidence is made of, rendered by [`LevelStatus::evidence`] only when a
    /// finding uses it (the 17 levels are computed for every assessment, their evidence is
    /// read only when a spine rule fires; issue 19).
    basis: LevelBasis,
}

/// The items a level's state rests on, kept as values.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
struct LevelBasis {
    /// The fracture events attached to the level.
    events: Vec<FractureEvent>,
    /// The latest `vertebral-edema` finding: source, date, oedema present.
    edema: Option<(SourceRef, NaiveDate, bool)>,
    /// The latest Genant grade: source, date, grade.
    genant: Option<(SourceRef, NaiveDate, u8)>,
    /// The augmentation that made the level AUGMENTED.
    augmentation: Option<(SourceRef, NaiveDate)>,
}

impl LevelStatus {
    /// The evidence for the level's state: each fracture event, the latest MRI oedema finding,
    /// the latest Genant grade and, for an augmented level, the augmentation.
    pub fn evidence(&self) -> Vec<Evidence> {
        let b = &self.basis;
        let level = self.level;
        let mut evidence: Vec<Evidence> = b.events.iter().map(event_evidence).collect();
        if let Some((source, date, present)) = &b.edema {
            evidence.push(Evidence::new(
                source,
                Some(*date),
                text!(
                    "MRI {level}: marrow oedema {}",
                    if *present { "present" } else { "absent" }
                ),
            ));
        }
        if let Some((source, date, grade)) = &b.genant {
            evidence.push(Evidence::new(
                source,
                Some(*date),
                text!("Genant grade {grade} at {level}"),
            ));
        }
        if let Some((source, date)) = &b.augmentation {
            evidence.push(Evidence::new(
                source,
                Some(*date),
                text!("vertebral augmentation at {level}"),
            ));
        }
        evidence
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct SpineFacts {
    /// One entry per level T1..L5, in order.
    pub levels: Vec<LevelStatus>,
    /// Every vertebral fracture event (including `Unspecified` location).
    pub fractures: Vec<FractureEvent>,
    pub other_fractures: Vec<OtherFracture>,
    pub augmentations: Vec<Augmentation>,
    /// Spine imaging dates (MRI/CT/X-ray procedures, and MRIs implied by oedema observations).
    pub spine_imaging: Vec<(NaiveDate, SourceRef)>,
    /// Refuted fracture conditions (positive evidence of "no fracture").
    pub refuted_fractures: Vec<SourceRef>,
    /// Exclusions for augmentation present (§7.5-5).
    pub augmentation_exclusions: Vec<SourceRef>,
    /// Augmentation procedures with no level recorded.
    pub unlocated_augmentations: Vec<UnlocatedAugmentation>,
    /// Every usable pain score, oldest first (same day ordered by time).
    pub pain: Vec<PainReading>,
    /// The most recent pain score, when dated within `pain_recent_days` of `as_of` (§7.5-3).
    pub current_pain: Option<PainReading>,
}

impl SpineFacts {
    pub fn level(&self, l: VertebralLevel) -> Option<&LevelStatus> {
        self.levels.iter().find(|s| s.level == l)
    }

    /// Levels whose vertebra is fractured or cemented on `date`, computed from the events (not
    /// from the as-of state), for §6.2 lumbar-spine validity. A fracture counts from its earliest
    /// plausible onset (period start); one of unknown age or undated counts as present
    /// (conservative: the comparison cannot be shown valid).
    pub fn fractured_or_augmented_on(&self, date: NaiveDate) -> Vec<VertebralLevel> {
        let mut out: Vec<VertebralLevel> = Vec::new();
        for e in &self.fractures {
            let present = match (e.prevalent_unknown_age, e.onset_for_windows) {
                (true, _) | (false, None) => true,
                (false, Some(start)) => start <= date,
            };
            if present {
                out.extend(e.levels());
            }
        }
        out.extend(
            self.augmentations
                .iter()
                .filter(|a| a.date <= date)
                .map(|a| a.level),
        );
        out.sort();
        out.dedup();
        out
    }
}

/// Sorts evidence oldest first (undated last) and removes duplicates, for readable findings.
pub fn chronological(evidence: &mut Vec<Evidence>) {
    evidence.sort_by(|a, b| {
        (a.date.is_none(), a.date, &a.reference, &a.detail).cmp(&(
            b.date.is_none(),
            b.date,
            &b.reference,
            &b.detail,
        ))
    });
    evidence.dedup();
}

// ---- §7.3 Genant grading -------------------------------------------------------------------------

/// Height loss (%) from which a vertebra is grade 1 (mild), GENANT-1993 (§7.3).
const GENANT_MILD_MIN_PCT: f64 = 20.0;
/// Height loss (%) from which a vertebra is grade 2 (moderate), GENANT-1993 (§7.3).
const GENANT_MODERATE_MIN_PCT: f64 = 25.0;
/// Height loss (%) *above* which a vertebra is grade 3 (severe), GENANT-1993 (§7.3: "> 40").
const GENANT_SEVERE_ABOVE_PCT: f64 = 40.0;

/// Genant semiquantitative grade from the largest (anterior, middle or posterior) height loss in
/// percent (§7.3): ranges are lower-inclusive, upper-exclusive except "> 40 %". Not a number or
/// a negative loss → grade 0.
pub fn genant_grade_from_height_loss(pct: f64) -> u8 {
    if pct.is_nan() || pct < GENANT_MILD_MIN_PCT {
        0
    } else if pct < GENANT_MODERATE_MIN_PCT {
        1
    } else if pct <= GENANT_SEVERE_ABOVE_PCT {
        2
    } else {
        3
    }
}

// ---- computation --------------------------------------------------------------------------------

/// A pain score as the evidence writes it: whole numbers without a point, else one decimal.
struct PainScore(f64);

impl std::fmt::Display for PainScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.fract() == 0.0 {
            std::fmt::Display::fmt(&Fixed(self.0, 0), f)
        } else {
            std::fmt::Display::fmt(&Fixed(self.0, 1), f)
        }
    }
}

fn obs_datetime(o: &Observation) -> Option<NaiveDateTime> {
    o.effective
        .or_else(|| o.visible.and_then(|d| d.and_hms_opt(0, 0, 0)))
}

/// A dated structured finding for one level (`vertebral-edema` or `genant-grade`).
#[derive(Debug, Clone)]
struct LevelReading<T> {
    source: SourceRef,
    at: NaiveDateTime,
    value: T,
}

impl<T> LevelReading<T> {
    fn date(&self) -> NaiveDate {
        self.at.date()
    }
}

fn is_augmentation_exclusion(kind: ConditionKind) -> bool {
    matches!(
        kind,
        ConditionKind::SpinalInfection
            | ConditionKind::Coagulopathy
            | ConditionKind::NeurologicalDeficit
            | ConditionKind::Malignancy
    )
}

/// §7.2: onset period end for acuity, start for windows; recordedDate when no onset.
fn event_from_condition(c: &Condition, location: VertebralLocation) -> FractureEvent {
    let start = c.onset.and_then(|p| p.start.or(p.end));
    let end = c.onset.and_then(|p| p.end.or(p.start));
    let (acuity, windows, estimated) = match (start, end) {
        (Some(s), Some(e)) => (Some(e), Some(s), false),
        _ => (c.recorded, c.recorded, c.recorded.is_some()),
    };
    FractureEvent {
        source: c.source.clone(),
        location,
        onset_for_acuity: acuity,
        onset_for_windows: windows,
        onset_estimated: estimated,
        prevalent_unknown_age: false,
        traumatic: c.mechanism == Some(FractureMechanism::Traumatic),
        recorded: c.recorded,
    }
}

fn event_evidence(e: &FractureEvent) -> Evidence {
    let onset = match (e.onset_for_windows, e.onset_for_acuity) {
        _ if e.prevalent_unknown_age => "prevalent, age unknown".to_string(),
        (Some(s), Some(a)) if s != a => text!("onset between {} and {}", Ymd(s), Ymd(a)),
        (_, Some(a)) => text!("onset {}", Ymd(a)),
        _ => "onset unknown".to_string(),
    };
    let estimated = if e.onset_estimated {
        " (estimated from recorded date)"
    } else {
        ""
    };
    Evidence::new(
        &e.source,
        e.onset_for_acuity.or(e.recorded),
        text!("vertebral fracture {}, {onset}{estimated}", e.location),
    )
}

/// Ranks for "most unhealed": ACUTE > SUBACUTE > CHRONIC.
fn unhealed_rank(s: LevelState) -> u8 {
    match s {
        LevelState::Acute => 3,
        LevelState::Subacute => 2,
        LevelState::Chronic => 1,
        _ => 0,
    }
}

/// State of one event at a level by §7.4 steps 3–5. Returns (state, since, age_indeterminate).
fn event_state(
    e: &FractureEvent,
    latest_edema: Option<&LevelReading<bool>>,
    input: &Input<'_>,
) -> (LevelState, Option<NaiveDate>, bool) {
    let t = input.t;
    // Step 3: an MRI on/after onset reporting the level without oedema → healed.
    if let Some(m) = latest_edema.filter(|m| !m.value) {
        if e.prevalent_unknown_age || e.onset_for_acuity.is_none_or(|a| m.date() >= a) {
            return (LevelState::Chronic, Some(m.date()), false);
        }
    }
    if e.prevalent_unknown_age {
        // §7.4 step 2: prevalent fracture of unknown age → CHRONIC unless oedema says otherwise.
        return (LevelState::Chronic, e.recorded, false);
    }
    match e.onset_for_acuity {
        Some(onset) => {
            let age = days(onset, input.as_of);
            let state = if age <= t.acute_max_days {
                LevelState::Acute
            } else if age <= t.subacute_max_days {
                LevelState::Subacute
            } else {
                LevelState::Chronic
            };
            (state, Some(onset), false)
        }
        // An MRI finding for the level (older than the oedema window) bounds the onset.
        None => match latest_edema {
            Some(m) => (LevelState::Chronic, Some(m.date()), false),
            // Step 5: never assume chronic.
            None => (LevelState::Subacute, None, true),
        },
    }
}

fn level_status(
    level: VertebralLevel,
    events: &[&FractureEvent],
    augmentations: &[&Augmentation],
    genant: &[LevelReading<u8>],
    edema: &[LevelReading<bool>],
    input: &Input<'_>,
) -> LevelStatus {
    let t = input.t;
    let as_of = input.as_of;
    let latest_edema = edema.last();
    let latest_genant = genant.last();
    let basis = LevelBasis {
        events: events.iter().map(|&e| e.clone()).collect(),
        edema: latest_edema.map(|m| (m.source.clone(), m.date(), m.value)),
        genant: latest_genant.map(|g| (g.source.clone(), g.date(), g.value)),
        augmentation: None,
    };

    // The event that decides the state by steps 3–5: most unhealed, then latest onset.
    let mut judged: Vec<(&FractureEvent, LevelState, Option<NaiveDate>, bool)> = events
        .iter()
        .map(|e| {
            let (s, since, ind) = event_state(e, latest_edema, input);
            (*e, s, since, ind)
        })
        .collect();
    judged.sort_by(|a, b| {
        (unhealed_rank(a.1), a.0.onset_for_acuity).cmp(&(unhealed_rank(b.1), b.0.onset_for_acuity))
    });
    let current = judged.last().copied();
    let onset = current.and_then(|c| c.0.onset_for_acuity);
    let onset_start = current.and_then(|c| c.0.onset_for_windows);

    // §7.5-2: the latest oedema finding is positive, on an MRI within 90 days before as_of and
    // no earlier than 7 days before the onset (start of an onset period).
    let mri_confirmed = latest_edema.is_some_and(|m| {
        let age = days(m.date(), as_of);
        m.value
            && (0..=t.subacute_max_days).contains(&age)
            && onset_start.is_none_or(|s| m.date() >= add_days(s, -t.mri_before_onset_days))
    });

    // Every path below calls this once and returns: the basis moves, it is not copied.
    let status = move |state, since, age_indeterminate| LevelStatus {
        level,
        state,
        since,
        age_indeterminate,
        mri_confirmed,
        onset,
        basis,
    };

    // Step 1: augmented (terminal).
    if let Some(a) = augmentations.iter().min_by_key(|a| (a.date, &a.source)) {
        let mut s = status(LevelState::Augmented, Some(a.date), false);
        s.basis.augmentation = Some((a.source.clone(), a.date));
        return s;
    }
    // Step 1a: intact by the latest Genant grade 0.
    if let Some(g) = latest_genant {
        let oedema_after = edema.iter().any(|m| m.value && m.date() >= g.date());
        if g.value == 0 && events.is_empty() && !oedema_after {
            return status(LevelState::Intact, Some(g.date()), false);
        }
    }
    // Step 2: oedema within 90 days — the latest finding decides.
    if let Some(m) = latest_edema.filter(|m| m.value) {
        let age = days(m.date(), as_of);
        if (0..=t.subacute_max_days).contains(&age) {
            let state = if age <= t.acute_max_days {
                LevelState::Acute
            } else {
                LevelState::Subacute
            };
            return status(state, Some(m.date()), false);
        }
    }
    match current {
        Some((_, state, since, indeterminate)) => status(state, since, indeterminate),
        // Oedema (older than 90 days) without a fracture record: the fracture predates the MRI.
        None => match latest_edema.filter(|m| m.value) {
            Some(m) => status(LevelState::Chronic, Some(m.date()), false),
            None => status(LevelState::Unknown, None, false),
        },
    }
}

pub fn compute(input: &Input<'_>) -> SpineFacts {
    let record = input.record;
    let mut facts = SpineFacts::default();

    // Conditions: vertebral events, other fractures, refuted fractures, exclusions.
    for c in &record.conditions {
        match c.kind {
            ConditionKind::Fracture(site) => {
                if c.verification == crate::model::Verification::Refuted {
                    facts.refuted_fractures.push(c.source.clone());
                    continue;
                }
                if !c.is_valid() {
                    continue;
                }
                match site {
                    FractureSite::Vertebral(loc) => {
                        // §10.3: subsequent-encounter codes are follow-ups, not new events.
                        if !c.subsequent_encounter {
                            facts.fractures.push(event_from_condition(c, loc));
                        }
                    }
                    other => facts.other_fractures.push(OtherFracture {
                        source: c.source.clone(),
                        site: other,
                        date: c.onset.and_then(|p| p.start.or(p.end)).or(c.recorded),
                        traumatic: c.mechanism == Some(FractureMechanism::Traumatic),
                    }),
                }
            }
            k if is_augmentation_exclusion(k) && c.is_valid() => {
                facts.augmentation_exclusions.push(c.source.clone());
            }
            _ => {}
        }
    }

    // Procedures: augmentation per level, spine imaging.
    for p in &record.procedures {
        if p.status != ProcedureStatus::Completed {
            continue;
        }
        let Some(date) = p.date() else { continue };
        if p.kind.is_augmentation() {
            if p.levels.is_empty() {
                facts.unlocated_augmentations.push(UnlocatedAugmentation {
                    source: p.source.clone(),
                    date,
                });
            }
            for &level in &p.levels {
                facts.augmentations.push(Augmentation {
                    source: p.source.clone(),
                    level,
                    date,
                });
            }
        } else if p.kind.is_spine_imaging() {
            facts.spine_imaging.push((date, p.source.clone()));
        }
    }

    // Structured observations: oedema, Genant grade, pain.
    let mut edema: Vec<Vec<LevelReading<bool>>> = vec![Vec::new(); VertebralLevel::ALL.len()];
    let mut genant: Vec<Vec<LevelReading<u8>>> = vec![Vec::new(); VertebralLevel::ALL.len()];
    for o in record.observations.iter().filter(|o| o.status.is_usable()) {
        let Some(at) = obs_datetime(o) else { continue };
        match o.kind {
            ObservationKind::VertebralEdema => {
                // An oedema finding implies a spine MRI on that day.
                facts.spine_imaging.push((at.date(), o.source.clone()));
                if let (Some(level), Some(flag)) = (o.level, o.flag) {
                    edema[level.index()].push(LevelReading {
                        source: o.source.clone(),
                        at,
                        value: flag,
                    });
                }
            }
            ObservationKind::GenantGrade => {
                let grade = o.value.map(f64::round).filter(|g| (0.0..=3.0).contains(g));
                if let (Some(level), Some(g)) = (o.level, grade) {
                    genant[level.index()].push(LevelReading {
                        source: o.source.clone(),
                        at,
                        value: g as u8,
                    });
                }
            }
            ObservationKind::Pain => {
                if let Some(v) = o.value.filter(|v| (0.0..=10.0).contains(v)) {
                    facts.pain.push(PainReading {
                        source: o.source.clone(),
                        at,
                        value: v,
                    });
                }
            }
            _ => {}
        }
    }
    for list in edema.iter_mut() {
        list.sort_by(|a, b| (a.at, &a.source).cmp(&(b.at, &b.source)));
    }
    for list in genant.iter_mut() {
        list.sort_by(|a, b| (a.at, &a.source).cmp(&(b.at, &b.source)));
    }
    facts
        .pain
        .sort_by(|a, b| (a.at, &a.source).cmp(&(b.at, &b.source)));
    facts.current_pain = facts
        .pain
        .iter()
        .rfind(|p| p.date() <= input.as_of)
        .filter(|p| days(p.date(), input.as_of) <= input.t.pain_recent_days)
        .cloned();

    // §7.4 step 2 (v0.10.2): a Genant grade ≥ 1 at a level without a fracture Condition is a
    // fracture event; with an earlier grade 0 its onset is bounded, otherwise it is prevalent.
    for level in VertebralLevel::ALL {
        if facts.fractures.iter().any(|e| e.covers(level)) {
            continue;
        }
        let readings = &genant[level.index()];
        let Some(first) = readings.iter().find(|g| g.value >= 1) else {
            continue;
        };
        let last_zero = readings
            .iter()
            .rev()
            .find(|g| g.value == 0 && g.date() < first.date());
        let (acuity, windows, prevalent) = match last_zero {
            Some(z) => (Some(first.date()), Some(add_days(z.date(), 1)), false),
            None => (None, None, true),
        };
        facts.fractures.push(FractureEvent {
            source: first.source.clone(),
            location: VertebralLocation::Level(level),
            onset_for_acuity: acuity,
            onset_for_windows: windows,
            onset_estimated: false,
            prevalent_unknown_age: prevalent,
            traumatic: false,
            recorded: Some(first.date()),
        });
    }

    facts.levels = VertebralLevel::ALL
        .iter()
        .map(|&level| {
            let events: Vec<&FractureEvent> =
                facts.fractures.iter().filter(|e| e.covers(level)).collect();
            let augs: Vec<&Augmentation> = facts
                .augmentations
                .iter()
                .filter(|a| a.level == level)
                .collect();
            level_status(
                level,
                &events,
                &augs,
                &genant[level.index()],
                &edema[level.index()],
                input,
            )
        })
        .collect();

    facts.fractures.sort_by(|a, b| {
        (a.onset_for_windows, a.location, &a.source).cmp(&(
            b.onset_for_windows,
            b.location,
            &b.source,
        ))
    });
    facts
        .augmentations
        .sort_by(|a, b| (a.date, a.level, &a.source).cmp(&(b.date, b.level, &b.source)));
    facts.spine_imaging.sort();
    facts.spine_imaging.dedup();
    facts.refuted_fractures.sort();
    facts.augmentation_exclusions.sort();
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{
        ConditionKind, FractureSite, ObservationKind, ProcedureKind, Sex, VertebralLevel::*,
        VertebralLocation,
    };
    use crate::testkit::{d, RecordBuilder};

    fn spine_at(b: RecordBuilder, as_of: &str) -> SpineFacts {
        crate::engine::evaluate(&b.build(), d(as_of), &Config::default())
            .facts
            .spine
    }

    fn state(s: &SpineFacts, l: VertebralLevel) -> LevelState {
        s.level(l).map(|x| x.state).unwrap_or(LevelState::Unknown)
    }

    fn patient() -> RecordBuilder {
        RecordBuilder::new("1950-03-15", Sex::Female)
    }

    fn genant(b: RecordBuilder, level: VertebralLevel, date: &str, grade: f64) -> RecordBuilder {
        b.observation(ObservationKind::GenantGrade, date, grade)
            .with_last_observation(|o| o.level = Some(level))
    }

    #[test]
    fn genant_height_loss_boundaries() {
        assert_eq!(genant_grade_from_height_loss(19.9), 0);
        assert_eq!(genant_grade_from_height_loss(20.0), 1);
        assert_eq!(genant_grade_from_height_loss(24.9), 1);
        assert_eq!(genant_grade_from_height_loss(25.0), 2);
        assert_eq!(genant_grade_from_height_loss(40.0), 2);
        assert_eq!(genant_grade_from_height_loss(40.1), 3);
        assert_eq!(genant_grade_from_height_loss(f64::NAN), 0);
        assert_eq!(genant_grade_from_height_loss(-5.0), 0);
    }

    #[test]
    fn every_level_listed_unknown_by_default() {
        let s = spine_at(patient(), "2023-01-01");
        assert_eq!(s.levels.len(), 17);
        assert!(s.levels.iter().all(|l| l.state == LevelState::Unknown));
    }

    #[test]
    fn acuity_by_onset_42_43_90_91() {
        let b = || patient().vertebral_fracture(L1, "2023-01-01", "2023-01-01");
        assert_eq!(state(&spine_at(b(), "2023-02-12"), L1), LevelState::Acute); // 42 d
        assert_eq!(
            state(&spine_at(b(), "2023-02-13"), L1),
            LevelState::Subacute
        ); // 43 d
        assert_eq!(
            state(&spine_at(b(), "2023-04-01"), L1),
            LevelState::Subacute
        ); // 90 d
        assert_eq!(state(&spine_at(b(), "2023-04-02"), L1), LevelState::Chronic);
        // 91 d
    }

    #[test]
    fn oedema_decides_by_mri_date_42_43_90_91() {
        // Onset long ago but a recent MRI shows oedema: MRI date decides (step 2 before 4).
        let b = || {
            patient()
                .vertebral_fracture(L2, "2022-01-01", "2022-01-01")
                .edema(L2, "2023-01-01", true)
        };
        let s = spine_at(b(), "2023-02-12");
        assert_eq!(state(&s, L2), LevelState::Acute);
        assert_eq!(s.level(L2).map(|l| l.since), Some(Some(d("2023-01-01"))));
        assert_eq!(
            state(&spine_at(b(), "2023-02-13"), L2),
            LevelState::Subacute
        );
        assert_eq!(
            state(&spine_at(b(), "2023-04-01"), L2),
            LevelState::Subacute
        );
        assert_eq!(state(&spine_at(b(), "2023-04-02"), L2), LevelState::Chronic);
    }

    #[test]
    fn latest_oedema_finding_decides() {
        let b = patient()
            .vertebral_fracture(L2, "2023-01-01", "2023-01-01")
            .edema(L2, "2023-01-03", true)
            .edema(L2, "2023-01-20", false);
        let s = spine_at(b, "2023-01-25");
        assert_eq!(state(&s, L2), LevelState::Chronic);
        assert!(!s.level(L2).is_some_and(|l| l.mri_confirmed));
    }

    #[test]
    fn mri_without_oedema_before_onset_does_not_make_chronic() {
        let b = patient().edema(L2, "2022-12-20", false).vertebral_fracture(
            L2,
            "2023-01-01",
            "2023-01-01",
        );
        assert_eq!(state(&spine_at(b, "2023-01-10"), L2), LevelState::Acute);
    }

    #[test]
    fn onset_unknown_without_mri_is_subacute_indeterminate() {
        let b = patient().condition(
            ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(L3))),
            None,
            None,
        );
        let s = spine_at(b, "2023-01-10");
        let l3 = s.level(L3).cloned();
        assert_eq!(l3.as_ref().map(|l| l.state), Some(LevelState::Subacute));
        assert_eq!(l3.map(|l| l.age_indeterminate), Some(true));
    }

    #[test]
    fn onset_missing_uses_recorded_date_estimated() {
        let b = patient().condition(
            ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(L3))),
            None,
            Some("2023-01-05"),
        );
        let s = spine_at(b, "2023-01-10");
        assert!(s.fractures[0].onset_estimated);
        assert_eq!(s.fractures[0].onset_for_acuity, Some(d("2023-01-05")));
        assert_eq!(state(&s, L3), LevelState::Acute);
    }

    #[test]
    fn onset_period_end_for_acuity_start_for_windows() {
        let b = patient().condition(
            ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(L2))),
            Some(("2023-07-31", "2023-08-27")),
            Some("2023-09-03"),
        );
        let s = spine_at(b, "2023-09-03");
        let e = &s.fractures[0];
        assert_eq!(e.onset_for_acuity, Some(d("2023-08-27")));
        assert_eq!(e.onset_for_windows, Some(d("2023-07-31")));
        assert!(!e.onset_estimated);
    }

    #[test]
    fn refuted_entered_in_error_and_subsequent_encounters_are_not_events() {
        let mut r = patient()
            .vertebral_fracture(L1, "2023-01-01", "2023-01-01")
            .vertebral_fracture(L2, "2023-01-01", "2023-01-01")
            .vertebral_fracture(L3, "2023-01-01", "2023-01-01")
            .build();
        r.conditions[0].verification = crate::model::Verification::Refuted;
        r.conditions[1].verification = crate::model::Verification::EnteredInError;
        r.conditions[2].subsequent_encounter = true;
        let s = crate::engine::evaluate(&r, d("2023-01-10"), &Config::default())
            .facts
            .spine;
        assert!(s.fractures.is_empty());
        assert_eq!(s.refuted_fractures.len(), 1);
        assert!(s.levels.iter().all(|l| l.state == LevelState::Unknown));
    }

    #[test]
    fn augmentation_is_terminal_and_per_level() {
        let b = patient()
            .vertebral_fracture(L2, "2023-01-01", "2023-01-01")
            .procedure(ProcedureKind::Kyphoplasty, &[L2, L5], "2023-01-20");
        let s = spine_at(b, "2023-01-25");
        assert_eq!(state(&s, L2), LevelState::Augmented);
        assert_eq!(state(&s, L5), LevelState::Augmented);
        assert_eq!(s.augmentations.len(), 2);
    }

    #[test]
    fn genant_zero_is_intact_and_later_grade_makes_a_bounded_event() {
        let b = || genant(patient(), T12, "2022-01-10", 0.0);
        assert_eq!(state(&spine_at(b(), "2022-02-01"), T12), LevelState::Intact);
        let s = spine_at(genant(b(), T12, "2023-01-10", 2.0), "2023-01-20");
        let e = &s.fractures[0];
        assert_eq!(e.onset_for_windows, Some(d("2022-01-11")));
        assert_eq!(e.onset_for_acuity, Some(d("2023-01-10")));
        assert!(!e.prevalent_unknown_age);
        assert_eq!(state(&s, T12), LevelState::Acute);
    }

    #[test]
    fn genant_without_earlier_zero_is_prevalent_chronic_unless_oedema() {
        let s = spine_at(genant(patient(), T8, "2023-01-10", 1.0), "2023-01-12");
        assert!(s.fractures[0].prevalent_unknown_age);
        assert_eq!(state(&s, T8), LevelState::Chronic);
        let b = genant(patient(), T8, "2023-01-10", 1.0).edema(T8, "2023-01-10", true);
        assert_eq!(state(&spine_at(b, "2023-01-12"), T8), LevelState::Acute);
    }

    #[test]
    fn later_grade_zero_never_erases_a_fracture() {
        let b = patient()
            .vertebral_fracture(T8, "2022-01-01", "2022-01-01")
            .observation(ObservationKind::GenantGrade, "2023-01-10", 0.0)
            .with_last_observation(|o| o.level = Some(T8));
        assert_eq!(state(&spine_at(b, "2023-01-12"), T8), LevelState::Chronic);
    }

    #[test]
    fn pair_location_is_one_event_on_both_levels() {
        let b = patient().condition(
            ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Pair(T5, T6))),
            Some(("2023-01-01", "2023-01-01")),
            Some("2023-01-01"),
        );
        let s = spine_at(b, "2023-01-10");
        assert_eq!(s.fractures.len(), 1);
        assert_eq!(state(&s, T5), LevelState::Acute);
        assert_eq!(state(&s, T6), LevelState::Acute);
    }

    #[test]
    fn unspecified_location_has_no_level_state() {
        let b = patient().condition(
            ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Unspecified)),
            Some(("2023-01-01", "2023-01-01")),
            Some("2023-01-01"),
        );
        let s = spine_at(b, "2023-01-10");
        assert_eq!(s.fractures.len(), 1);
        assert!(s.levels.iter().all(|l| l.state == LevelState::Unknown));
    }

    #[test]
    fn mri_confirmation_window() {
        // Oedema 7 days before onset confirms, 8 days before does not.
        let b = |mri: &str| {
            patient()
                .edema(L1, mri, true)
                .vertebral_fracture(L1, "2023-01-10", "2023-01-10")
        };
        let s = spine_at(b("2023-01-03"), "2023-01-20");
        assert!(s.level(L1).is_some_and(|l| l.mri_confirmed));
        let s = spine_at(b("2023-01-02"), "2023-01-20");
        assert!(!s.level(L1).is_some_and(|l| l.mri_confirmed));
        // 90 days after the MRI still confirms; 91 does not.
        let b = || {
            patient()
                .vertebral_fracture(L1, "2023-01-01", "2023-01-01")
                .edema(L1, "2023-01-02", true)
        };
        assert!(spine_at(b(), "2023-04-02")
            .level(L1)
            .is_some_and(|l| l.mri_confirmed));
        assert!(!spine_at(b(), "2023-04-03")
            .level(L1)
            .is_some_and(|l| l.mri_confirmed));
    }

    #[test]
    fn current_pain_is_latest_by_time_within_seven_days() {
        let b = || {
            patient()
                .observation(ObservationKind::Pain, "2023-09-27", 2.0)
                .with_last_observation(|o| {
                    o.effective = d("2023-09-27").and_hms_opt(10, 0, 0);
                })
                .observation(ObservationKind::Pain, "2023-09-27", 8.0)
                .with_last_observation(|o| {
                    o.effective = d("2023-09-27").and_hms_opt(15, 0, 0);
                })
        };
        let s = spine_at(b(), "2023-10-04");
        assert_eq!(s.current_pain.map(|p| p.value), Some(8.0));
        assert!(spine_at(b(), "2023-10-05").current_pain.is_none());
    }

    #[test]
    fn fractured_or_augmented_on_uses_events() {
        let b = patient()
            .vertebral_fracture(L4, "2022-08-01", "2022-08-01")
            .procedure(ProcedureKind::Vertebroplasty, &[L4], "2022-08-16");
        let s = spine_at(b, "2023-09-01");
        assert!(s.fractured_or_augmented_on(d("2022-06-15")).is_empty());
        assert_eq!(s.fractured_or_augmented_on(d("2022-08-01")), vec![L4]);
    }
}

/// The seed timeline of knowledge.md §11 (examples 1–4), as far as the §6/§7 rules read it.
#[cfg(test)]
mod seed_examples {
    use super::*;
    use crate::config::Config;
    use crate::engine::{evaluate, Evaluation};
    use crate::finding::{FindingCode, Severity};
    use crate::model::{
        ConditionKind, DxaSite, FractureSite, ObservationKind, ProcedureKind, Sex,
        VertebralLevel::*, VertebralLocation,
    };
    use crate::testkit::{d, RecordBuilder};

    fn at(b: RecordBuilder, date: &str, hh: u32) -> RecordBuilder {
        b.with_last_observation(|o| o.effective = d(date).and_hms_opt(hh, 0, 0))
    }

    fn hologic(b: RecordBuilder) -> RecordBuilder {
        b.with_last_observation(|o| o.device = Some("Hologic Horizon A".into()))
    }

    fn seed() -> RecordBuilder {
        let period_fracture = |b: RecordBuilder, level| {
            b.condition(
                ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(level))),
                Some(("2023-07-31", "2023-08-27")),
                Some("2023-09-03"),
            )
        };
        let b = RecordBuilder::new("1950-03-15", Sex::Female);
        let b = hologic(b.observation(
            ObservationKind::TScore(DxaSite::LumbarSpine),
            "2021-06-15",
            -2.7,
        ));
        let b = hologic(b.observation(
            ObservationKind::TScore(DxaSite::LumbarSpine),
            "2022-06-15",
            -2.7,
        ));
        let b = b
            .vertebral_fracture(L4, "2022-08-01", "2022-08-01")
            .procedure(ProcedureKind::Vertebroplasty, &[L4], "2022-08-16")
            .vertebral_fracture(L1, "2023-07-15", "2023-07-17")
            .procedure(ProcedureKind::SpineMri, &[], "2023-07-17")
            .edema(L1, "2023-07-17", true);
        let b = hologic(b.observation(
            ObservationKind::TScore(DxaSite::LumbarSpine),
            "2023-07-20",
            -3.7,
        ));
        let b = hologic(b.observation(
            ObservationKind::TScore(DxaSite::TotalHip),
            "2023-07-20",
            -3.8,
        ));
        let b = at(
            b.observation(ObservationKind::Pain, "2023-08-23", 7.0),
            "2023-08-23",
            10,
        )
        .procedure(ProcedureKind::SpineXray, &[], "2023-08-27")
        .procedure(ProcedureKind::Vertebroplasty, &[L1], "2023-08-30");
        let b = at(
            b.observation(ObservationKind::Pain, "2023-08-31", 7.0),
            "2023-08-31",
            10,
        )
        .procedure(ProcedureKind::SpineMri, &[], "2023-09-03")
        .edema(L2, "2023-09-03", true)
        .edema(L5, "2023-09-03", true);
        let b = period_fracture(period_fracture(b, L2), L5).procedure(
            ProcedureKind::Vertebroplasty,
            &[L2, L5],
            "2023-09-04",
        );
        let b = at(
            b.observation(ObservationKind::Pain, "2023-09-06", 3.0),
            "2023-09-06",
            10,
        );
        let b = at(
            b.observation(ObservationKind::Pain, "2023-09-27", 2.0),
            "2023-09-27",
            10,
        );
        let b = at(
            b.observation(ObservationKind::Pain, "2023-09-27", 8.0),
            "2023-09-27",
            15,
        );
        b.procedure(ProcedureKind::SpineCt, &[], "2023-09-27")
            .vertebral_fracture(L3, "2023-09-27", "2023-09-27")
    }

    fn eval(as_of: &str) -> Evaluation {
        evaluate(&seed().build(), d(as_of), &Config::default())
    }

    fn sev(e: &Evaluation, code: FindingCode) -> Option<Severity> {
        e.outcome.get(code).map(|f| f.severity)
    }

    fn item6(e: &Evaluation) -> bool {
        e.outcome.insufficient.iter().any(|i| i.item == 6)
    }

    const MINE: [FindingCode; 5] = [
        FindingCode::BmdSignificantLoss,
        FindingCode::AcuteOvcf,
        FindingCode::OvcfRefractoryPainAugmentationCandidate,
        FindingCode::OvcfImagingRecommended,
        FindingCode::NewFractureAfterAugmentation,
    ];

    fn mine(e: &Evaluation) -> Vec<(FindingCode, Severity)> {
        MINE.iter()
            .filter_map(|c| sev(e, *c).map(|s| (*c, s)))
            .collect()
    }

    #[test]
    fn example_1_2022_12_01() {
        let e = eval("2022-12-01");
        for l in &e.spine.levels {
            let want = if l.level == L4 {
                LevelState::Augmented
            } else {
                LevelState::Unknown
            };
            assert_eq!(l.state, want, "{}", l.level);
        }
        assert_eq!(mine(&e), vec![]);
        assert_eq!(e.dxa.comparison_possible, Some(true));
        assert!(e
            .dxa
            .latest_change
            .as_ref()
            .is_some_and(|c| c.t_change == Some(0.0)));
        assert!(!item6(&e));
    }

    #[test]
    fn example_2_2023_06_15() {
        let e = eval("2023-06-15");
        assert_eq!(mine(&e), vec![]);
        assert!(!item6(&e));
    }

    #[test]
    fn example_3_2023_08_23() {
        let e = eval("2023-08-23");
        let l1 = e.spine.level(L1).cloned().expect("L1");
        assert_eq!(l1.state, LevelState::Acute);
        assert!(l1.mri_confirmed);
        assert_eq!(l1.onset, Some(d("2023-07-15")));
        assert_eq!(
            e.spine.level(L4).map(|l| l.state),
            Some(LevelState::Augmented)
        );
        assert_eq!(
            e.spine.level(L2).map(|l| l.state),
            Some(LevelState::Unknown)
        );
        assert_eq!(
            e.spine.level(L5).map(|l| l.state),
            Some(LevelState::Unknown)
        );
        assert_eq!(
            mine(&e),
            vec![
                (FindingCode::AcuteOvcf, Severity::High),
                (
                    FindingCode::OvcfRefractoryPainAugmentationCandidate,
                    Severity::High
                ),
                (
                    FindingCode::NewFractureAfterAugmentation,
                    Severity::Moderate
                ),
            ]
        );
        assert!(item6(&e));
        assert_eq!(e.dxa.comparison_possible, Some(false));
    }

    #[test]
    fn example_4_2023_09_28() {
        let e = eval("2023-09-28");
        for (l, want) in [
            (L1, LevelState::Augmented),
            (L2, LevelState::Augmented),
            (L4, LevelState::Augmented),
            (L5, LevelState::Augmented),
            (L3, LevelState::Acute),
        ] {
            assert_eq!(e.spine.level(l).map(|s| s.state), Some(want), "{l}");
        }
        assert!(!e.spine.level(L3).is_some_and(|l| l.mri_confirmed));
        assert_eq!(e.spine.current_pain.as_ref().map(|p| p.value), Some(8.0));
        assert_eq!(
            mine(&e),
            vec![
                (FindingCode::AcuteOvcf, Severity::High),
                (FindingCode::OvcfImagingRecommended, Severity::High),
                (
                    FindingCode::NewFractureAfterAugmentation,
                    Severity::Critical
                ),
            ]
        );
        let items: Vec<u8> = e
            .outcome
            .insufficient
            .iter()
            .filter(|i| i.rule == FindingCode::BmdSignificantLoss.as_str())
            .map(|i| i.item)
            .collect();
        assert_eq!(items, vec![6]);
    }
}

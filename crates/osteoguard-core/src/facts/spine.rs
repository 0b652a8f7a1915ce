//! Per-level spine state — knowledge.md §7.1–§7.4 (PVA-TIMING, GENANT-1993).
//!
//! Turns fracture Conditions, augmentation Procedures, spine imaging and the structured
//! `vertebral-edema` / `genant-grade` Observations into fracture events and one state per level.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::Input;
use crate::finding::Evidence;
use crate::model::{FractureSite, SourceRef, VertebralLevel, VertebralLocation};

/// §7.1 level states. Serialised in lowercase for the assessment JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    pub evidence: Vec<Evidence>,
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
}

impl SpineFacts {
    pub fn level(&self, l: VertebralLevel) -> Option<&LevelStatus> {
        self.levels.iter().find(|s| s.level == l)
    }
}

pub fn compute(input: &Input<'_>) -> SpineFacts {
    let _ = input;
    SpineFacts::default()
}

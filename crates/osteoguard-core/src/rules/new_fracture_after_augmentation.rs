//! `new-fracture-after-augmentation` — knowledge.md §7.6, §9, §12.13.
//!
//! **Recommendation:** "New vertebral fracture(s) after vertebral augmentation at {levels}:
//! intensify osteoporosis treatment and re-evaluate pain source."
//! **Source:** SEED (new L2/L5 and L3 fractures after PVP; ref. 14); general PVP literature —
//! rates and the 365-day window UNVERIFIED (§12.13). Strength: case report / observational.
//!
//! **Criteria:**
//! * inclusion: [`new_fractures_after_augmentation`] — a vertebral fracture event (any level,
//!   including "level not recorded") whose onset for windows (period start, §7.2) lies in
//!   `(t_aug, t_aug + new_fracture_window_days]` for an augmentation at *another* level;
//! * exclusion: [`augmented_before_onset`] — the fracture's own level was augmented before its
//!   onset; prevalent fractures of unknown age never enter the window (§7.4 step 2);
//! * severity: critical if ≥ 2 such fractures; else high if [`adjacent`] to the augmented
//!   level or ≤ `new_fracture_early_days` after it; else moderate.
//!
//! An augmentation without a recorded level opens a window too (its level cannot equal or be
//! adjacent to the fracture's as far as is known; noted).
//!
//! **Thresholds:** `new_fracture_window_days` (365), `new_fracture_early_days` (90).

use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::engine::{Ctx, Outcome};
use crate::facts::spine::FractureEvent;
use crate::finding::{Evidence, Finding, FindingCode, Severity, Ymd};
use crate::model::{days, SourceRef, VertebralLevel, VertebralLocation};

pub const CITATION: &str = "SEED";
const SECTION: &str = "§7.6; §9 new-fracture-after-augmentation";

/// One augmentation that opens a window (`level` `None` = not recorded).
#[derive(Debug, Clone, Copy)]
pub struct AugmentationRef<'a> {
    pub level: Option<VertebralLevel>,
    pub date: NaiveDate,
    pub source: &'a SourceRef,
}

/// A fracture inside the window of one augmentation.
#[derive(Debug, Clone)]
pub struct NewFracture<'a> {
    pub fracture: &'a FractureEvent,
    pub onset: NaiveDate,
    /// Every augmentation whose window contains the onset: (augmentation, days after, adjacent).
    pub after: Vec<(AugmentationRef<'a>, i64, bool)>,
}

impl NewFracture<'_> {
    pub fn adjacent(&self) -> bool {
        self.after.iter().any(|a| a.2)
    }
    pub fn min_days(&self) -> Option<i64> {
        self.after.iter().map(|a| a.1).min()
    }
}

fn augmentations<'a>(ctx: &'a Ctx<'_>) -> Vec<AugmentationRef<'a>> {
    ctx.spine
        .augmentations
        .iter()
        .map(|a| AugmentationRef {
            level: Some(a.level),
            date: a.date,
            source: &a.source,
        })
        .chain(
            ctx.spine
                .unlocated_augmentations
                .iter()
                .map(|a| AugmentationRef {
                    level: None,
                    date: a.date,
                    source: &a.source,
                }),
        )
        .collect()
}

/// The fracture's own level was cemented before the fracture began.
pub fn augmented_before_onset(f: &FractureEvent, onset: NaiveDate, ctx: &Ctx<'_>) -> bool {
    ctx.spine
        .augmentations
        .iter()
        .any(|a| f.covers(a.level) && a.date < onset)
}

/// The fracture is at the level directly above or below the augmented one.
pub fn adjacent(f: &FractureEvent, aug_level: Option<VertebralLevel>) -> bool {
    aug_level.is_some_and(|a| match f.location {
        VertebralLocation::Level(l) => l.is_adjacent(a),
        VertebralLocation::Pair(x, y) => x.is_adjacent(a) || y.is_adjacent(a),
        VertebralLocation::Unspecified => false,
    })
}

/// Every fracture with onset in `(t_aug, t_aug + window]` of an augmentation at another level.
pub fn new_fractures_after_augmentation<'a>(ctx: &'a Ctx<'_>) -> Vec<NewFracture<'a>> {
    let window = ctx.t().new_fracture_window_days;
    let augs = augmentations(ctx);
    let mut out = Vec::new();
    for f in &ctx.spine.fractures {
        if f.prevalent_unknown_age {
            continue;
        }
        let Some(onset) = f.onset_for_windows else {
            continue;
        };
        if augmented_before_onset(f, onset, ctx) {
            continue;
        }
        let after: Vec<(AugmentationRef<'a>, i64, bool)> = augs
            .iter()
            .filter(|a| a.level.is_none_or(|l| !f.covers(l)))
            .map(|a| (*a, days(a.date, onset)))
            .filter(|(_, n)| *n > 0 && *n <= window)
            .map(|(a, n)| (a, n, adjacent(f, a.level)))
            .collect();
        if !after.is_empty() {
            out.push(NewFracture {
                fracture: f,
                onset,
                after,
            });
        }
    }
    out
}

/// "L1 augmentation 2021-03-02", or "augmentation 2021-03-02 (level not recorded)"; written
/// straight into the text that names it.
struct AugLabel<'r, 'a>(&'r AugmentationRef<'a>);

impl std::fmt::Display for AugLabel<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.0;
        match a.level {
            Some(l) => write!(f, "{l} augmentation {}", Ymd(a.date)),
            None => write!(f, "augmentation {} (level not recorded)", Ymd(a.date)),
        }
    }
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let found = new_fractures_after_augmentation(ctx);
    if found.is_empty() {
        return;
    }
    let early = ctx.t().new_fracture_early_days;
    let severity = if found.len() >= 2 {
        Severity::Critical
    } else if found
        .iter()
        .any(|n| n.adjacent() || n.min_days().is_some_and(|d| d <= early))
    {
        Severity::High
    } else {
        Severity::Moderate
    };
    let phrases: Vec<String> = found
        .iter()
        .map(|n| {
            // The closest augmentation explains it best; adjacency is named when present.
            let closest = n.after.iter().min_by_key(|a| (a.1, a.0.date));
            let adj: Vec<String> = n
                .after
                .iter()
                .filter(|a| a.2)
                .filter_map(|a| a.0.level.map(|l| l.to_string()))
                .collect();
            let mut s = text!("{} (onset {}", n.fracture.location, Ymd(n.onset));
            if let Some((a, d, _)) = closest {
                let _ = write!(s, ", {d} d after {}", AugLabel(a));
            }
            if !adj.is_empty() {
                let _ = write!(s, ", adjacent to {}", adj.join("/"));
            }
            s.push(')');
            s
        })
        .collect();
    let names: Vec<String> = found
        .iter()
        .map(|n| n.fracture.location.to_string())
        .collect();
    let mut evidence: Vec<Evidence> = Vec::new();
    for n in &found {
        evidence.push(Evidence::new(
            &n.fracture.source,
            Some(n.onset),
            text!(
                "vertebral fracture {}, onset (period start) {}",
                n.fracture.location,
                Ymd(n.onset)
            ),
        ));
        for (a, d, adj) in &n.after {
            evidence.push(Evidence::new(
                a.source,
                Some(a.date),
                text!(
                    "{}; fracture {} {d} d later{}",
                    AugLabel(a),
                    n.fracture.location,
                    if *adj { ", adjacent" } else { "" }
                ),
            ));
        }
    }
    crate::facts::spine::chronological(&mut evidence);
    let mut levels: Vec<VertebralLevel> = found.iter().flat_map(|n| n.fracture.levels()).collect();
    levels.sort();
    levels.dedup();
    let levels = levels.iter().map(|l| l.label().to_string());
    let mut f = Finding::new(
        FindingCode::NewFractureAfterAugmentation,
        severity,
        text!(
            "{} new vertebral fracture{} after augmentation: {}",
            found.len(),
            if found.len() == 1 { "" } else { "s" },
            phrases.join("; ")
        ),
        text!(
            "New vertebral fracture(s) after vertebral augmentation at {}: intensify \
             osteoporosis treatment and re-evaluate pain source.",
            names.join(", ")
        ),
        CITATION,
        SECTION,
    )
    .with_evidence(evidence)
    .with_levels(levels)
    .with_note(text!(
        "New fractures are counted for {} days after augmentation; published rates of new \
         fractures after augmentation vary.",
        ctx.t().new_fracture_window_days
    ))
    .with_trace(
        "spine.new_fracture_window_days: engine convention; rates UNVERIFIED (knowledge.md §12.13)",
    );
    if found.iter().any(|n| n.fracture.onset_estimated) {
        f = f.with_note("Some fracture onsets are estimated from the recorded date");
    }
    if found
        .iter()
        .any(|n| n.after.iter().any(|a| a.0.level.is_none()))
    {
        f = f.with_note("An augmentation without a recorded level was counted (adjacency unknown)");
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::{evaluate as run, Evaluation};
    use crate::model::{
        ConditionKind, FractureSite, ProcedureKind, Sex, VertebralLevel::*, VertebralLocation,
    };
    use crate::testkit::{d, RecordBuilder};

    fn eval(b: RecordBuilder, as_of: &str) -> Evaluation {
        run(&b.build(), d(as_of), &Config::default())
    }

    fn finding(e: &Evaluation) -> Option<Finding> {
        e.outcome
            .get(FindingCode::NewFractureAfterAugmentation)
            .cloned()
    }

    fn seed() -> RecordBuilder {
        RecordBuilder::new("1950-03-15", Sex::Female)
            .vertebral_fracture(L4, "2022-08-01", "2022-08-01")
            .procedure(ProcedureKind::Vertebroplasty, &[L4], "2022-08-16")
    }

    fn with_onset(b: RecordBuilder, level: VertebralLevel, onset: &str) -> RecordBuilder {
        b.vertebral_fracture(level, onset, onset)
    }

    #[test]
    fn example_1_nothing_after_augmentation() {
        assert!(finding(&eval(seed(), "2022-12-01")).is_none());
    }

    #[test]
    fn example_3_l1_333_days_moderate() {
        let b = seed().vertebral_fracture(L1, "2023-07-15", "2023-07-17");
        let f = finding(&eval(b, "2023-08-23")).expect("fires");
        assert_eq!(f.severity, Severity::Moderate);
        assert_eq!(f.levels, vec!["L1".to_string()]);
        assert!(
            f.summary
                .contains("L1 (onset 2023-07-15, 333 d after L4 augmentation 2022-08-16)"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn window_365_vs_366_days() {
        // L4 PVP 2022-08-16: +365 = 2023-08-16, +366 = 2023-08-17.
        let f = finding(&eval(with_onset(seed(), L1, "2023-08-16"), "2023-09-01"));
        assert_eq!(f.map(|f| f.severity), Some(Severity::Moderate));
        assert!(finding(&eval(with_onset(seed(), L1, "2023-08-17"), "2023-09-01")).is_none());
        // Same day as the augmentation is not "after".
        assert!(finding(&eval(with_onset(seed(), L1, "2022-08-16"), "2022-09-01")).is_none());
    }

    #[test]
    fn early_90_vs_91_days() {
        // +90 = 2022-11-14, +91 = 2022-11-15; T12 is not adjacent to L4.
        let f = finding(&eval(with_onset(seed(), T12, "2022-11-14"), "2022-12-01"));
        assert_eq!(f.map(|f| f.severity), Some(Severity::High));
        let f = finding(&eval(with_onset(seed(), T12, "2022-11-15"), "2022-12-01"));
        assert_eq!(f.map(|f| f.severity), Some(Severity::Moderate));
    }

    #[test]
    fn adjacent_is_high() {
        let f = finding(&eval(with_onset(seed(), L3, "2023-05-01"), "2023-06-01"));
        let f = f.expect("fires");
        assert_eq!(f.severity, Severity::High);
        assert!(f.summary.contains("adjacent to L4"));
    }

    #[test]
    fn example_4_four_fractures_critical() {
        let b = seed()
            .vertebral_fracture(L1, "2023-07-15", "2023-07-17")
            .procedure(ProcedureKind::Vertebroplasty, &[L1], "2023-08-30")
            .condition(
                ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(L2))),
                Some(("2023-07-31", "2023-08-27")),
                Some("2023-09-03"),
            )
            .condition(
                ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(L5))),
                Some(("2023-07-31", "2023-08-27")),
                Some("2023-09-03"),
            )
            .procedure(ProcedureKind::Vertebroplasty, &[L2, L5], "2023-09-04")
            .vertebral_fracture(L3, "2023-09-27", "2023-09-27");
        let f = finding(&eval(b, "2023-09-28")).expect("fires");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.levels, vec!["L1", "L2", "L3", "L5"]);
        assert!(f.summary.starts_with("4 new vertebral fractures"));
    }

    #[test]
    fn own_level_augmented_before_onset_is_excluded() {
        // A "fracture" of the cemented L4 after its PVP is not a new fracture elsewhere.
        let b = seed().procedure(ProcedureKind::Vertebroplasty, &[T12], "2022-09-01");
        let b = with_onset(b, L4, "2022-10-01");
        let e = eval(b, "2022-12-01");
        assert!(finding(&e).is_none());
    }

    #[test]
    fn unlocated_fracture_counts() {
        let b = seed().condition(
            ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Unspecified)),
            Some(("2023-01-01", "2023-01-01")),
            Some("2023-01-01"),
        );
        let f = finding(&eval(b, "2023-02-01")).expect("fires");
        assert!(f.recommendation.contains("at level not recorded"));
    }
}

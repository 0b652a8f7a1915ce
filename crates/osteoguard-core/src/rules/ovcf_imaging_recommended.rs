//! `ovcf-imaging-recommended` — knowledge.md §7.4 step 5, §7.5-2, §7.7, §9.
//!
//! **Recommendation:** "Obtain spine MRI with STIR (or CT if MRI contraindicated) to determine
//! fracture level and acuity."
//! **Source:** ACR-AC-VCF (MRI to establish acuity and level, general principles); PVA-TIMING
//! ("positive MRI: oedema visible", verified). Strength: appropriateness criteria / expert panel.
//!
//! **Criteria** (ANY):
//! * (a) [`unconfirmed_unhealed_levels`] — a level ACUTE/SUBACUTE (including
//!   `age_indeterminate`) that is not MRI-confirmed (§7.5-2), AND [`current_pain_at_least`] the
//!   latest pain score within `pain_recent_days` of `as_of` is ≥ `imaging_pain_min`;
//! * (b) [`unimaged_pain_rise_after_augmentation`] — within `new_fracture_window_days` after an
//!   augmentation, a pain score ≥ `imaging_pain_min` that is ≥ `imaging_pain_rise` points above
//!   the lowest score recorded between the augmentation and it, with no spine MRI/CT/X-ray dated
//!   on or after that pain score.
//!
//! Severity: high if (a) holds and that pain is ≥ `imaging_pain_high`; otherwise moderate.
//! Vertebral fractures without a level are not levels and do not enter clause (a) (§7.2 lists
//! where they count).
//!
//! **Thresholds:** `imaging_pain_min` (5), `imaging_pain_high` (7), `imaging_pain_rise` (3),
//! `pain_recent_days` (7), `new_fracture_window_days` (365).

use chrono::NaiveDate;

use crate::engine::{Ctx, Outcome};
use crate::facts::spine::{LevelStatus, PainReading};
use crate::finding::{Evidence, Finding, FindingCode, Severity, Shortest, Ymd};
use crate::model::{days, SourceRef};

pub const CITATION: &str = "ACR-AC-VCF; PVA-TIMING";
const SECTION: &str = "§7.4, §7.5-2, §7.7; §9 ovcf-imaging-recommended";

/// Clause (a), level part: unhealed (or age-indeterminate) and not MRI-confirmed.
pub fn unconfirmed_unhealed_levels<'a>(ctx: &'a Ctx<'_>) -> Vec<&'a LevelStatus> {
    ctx.spine
        .levels
        .iter()
        .filter(|l| (l.state.is_unhealed() || l.age_indeterminate) && !l.mri_confirmed)
        .collect()
}

/// The latest pain score within `pain_recent_days`, when it is ≥ `min`.
pub fn current_pain_at_least<'a>(ctx: &'a Ctx<'_>, min: f64) -> Option<&'a PainReading> {
    ctx.spine.current_pain.as_ref().filter(|p| p.value >= min)
}

/// Clause (b): a pain rise after augmentation not yet followed by spine imaging.
#[derive(Debug, Clone)]
pub struct PainRise<'a> {
    pub augmentation: (NaiveDate, &'a SourceRef),
    pub baseline: &'a PainReading,
    pub pain: &'a PainReading,
}

/// Augmentation dates and their procedures (levelled and unlocated), ascending.
fn augmentation_dates<'a>(ctx: &'a Ctx<'_>) -> Vec<(NaiveDate, &'a SourceRef)> {
    let mut v: Vec<(NaiveDate, &SourceRef)> = ctx
        .spine
        .augmentations
        .iter()
        .map(|a| (a.date, &a.source))
        .chain(
            ctx.spine
                .unlocated_augmentations
                .iter()
                .map(|a| (a.date, &a.source)),
        )
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Clause (b) (§9; §7.7 "new or worsening back pain after augmentation → re-image").
pub fn unimaged_pain_rise_after_augmentation<'a>(ctx: &'a Ctx<'_>) -> Option<PainRise<'a>> {
    let t = ctx.t();
    let procs = &ctx.record().procedures;
    let mut rises: Vec<PainRise<'a>> = Vec::new();
    for (aug_date, aug_source) in augmentation_dates(ctx) {
        // The procedure's own time orders same-day pain scores (midnight if unknown).
        let aug_at = procs
            .iter()
            .find(|p| &p.source == aug_source)
            .and_then(|p| p.performed)
            .or_else(|| aug_date.and_hms_opt(0, 0, 0));
        let Some(aug_at) = aug_at else { continue };
        let after: Vec<&PainReading> = ctx
            .spine
            .pain
            .iter()
            .filter(|p| p.at > aug_at && days(aug_date, p.date()) <= t.new_fracture_window_days)
            .collect();
        for (i, p) in after.iter().enumerate() {
            if p.value < t.imaging_pain_min {
                continue;
            }
            let Some(baseline) = after[..i].iter().min_by(|a, b| a.value.total_cmp(&b.value))
            else {
                continue;
            };
            if p.value - baseline.value < t.imaging_pain_rise {
                continue;
            }
            let imaged_since = ctx.spine.spine_imaging.iter().any(|(d, _)| *d >= p.date());
            if !imaged_since {
                rises.push(PainRise {
                    augmentation: (aug_date, aug_source),
                    baseline,
                    pain: p,
                });
            }
        }
    }
    // The most recent unimaged rise is reported.
    rises
        .into_iter()
        .max_by_key(|r| (r.pain.at, r.augmentation.0))
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let t = ctx.t();
    let levels = unconfirmed_unhealed_levels(ctx);
    let pain_a = current_pain_at_least(ctx, t.imaging_pain_min);
    let clause_a = !levels.is_empty() && pain_a.is_some();
    let rise = unimaged_pain_rise_after_augmentation(ctx);
    if !clause_a && rise.is_none() {
        return;
    }
    let severity = match pain_a {
        Some(p) if clause_a && p.value >= t.imaging_pain_high => Severity::High,
        _ => Severity::Moderate,
    };
    let mut parts: Vec<String> = Vec::new();
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    if let (true, Some(p)) = (clause_a, pain_a) {
        let lv: Vec<String> = levels
            .iter()
            .map(|l| {
                let why = if l.age_indeterminate {
                    "age indeterminate"
                } else {
                    l.state.as_str()
                };
                text!("{} {why}", l.level)
            })
            .collect();
        parts.push(text!(
            "{} without MRI confirmation; pain {}/10 on {}",
            lv.join(", "),
            Shortest(p.value),
            Ymd(p.date())
        ));
        names.extend(levels.iter().map(|l| l.level.label().to_string()));
        evidence.extend(levels.iter().flat_map(|l| l.evidence()));
        evidence.push(p.evidence());
    }
    if let Some(r) = &rise {
        parts.push(text!(
            "pain rose from {} to {}/10 on {} after augmentation on {}, no spine imaging since",
            r.baseline.value,
            r.pain.value,
            r.pain.date(),
            r.augmentation.0
        ));
        evidence.push(Evidence::new(
            r.augmentation.1,
            Some(r.augmentation.0),
            "vertebral augmentation",
        ));
        evidence.push(r.baseline.evidence());
        evidence.push(r.pain.evidence());
    }
    crate::facts::spine::chronological(&mut evidence);
    let mut f = Finding::new(
        FindingCode::OvcfImagingRecommended,
        severity,
        parts.join("; "),
        "Obtain spine MRI with STIR (or CT if MRI contraindicated) to determine fracture level \
         and acuity.",
        CITATION,
        SECTION,
    )
    .with_evidence(evidence)
    .with_levels(names);
    if clause_a {
        f = f
            .with_note(
                "Whether augmentation is an option cannot be judged until MRI confirms the \
                 fracture's acuity at the level.",
            )
            .with_trace("augmentation candidacy UNKNOWN until MRI confirms (knowledge.md §7.5-2)");
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::{evaluate as run, Evaluation};
    use crate::model::{ObservationKind, ProcedureKind, Sex, VertebralLevel::*};
    use crate::testkit::{d, RecordBuilder};

    fn eval(b: RecordBuilder, as_of: &str) -> Evaluation {
        run(&b.build(), d(as_of), &Config::default())
    }

    fn severity(e: &Evaluation) -> Option<Severity> {
        e.outcome
            .get(FindingCode::OvcfImagingRecommended)
            .map(|f| f.severity)
    }

    fn pain_at(b: RecordBuilder, date: &str, hh: u32, v: f64) -> RecordBuilder {
        b.observation(ObservationKind::Pain, date, v)
            .with_last_observation(|o| o.effective = d(date).and_hms_opt(hh, 0, 0))
    }

    fn l3(pain: f64) -> RecordBuilder {
        let b = RecordBuilder::new("1950-03-15", Sex::Female).vertebral_fracture(
            L3,
            "2023-09-27",
            "2023-09-27",
        );
        pain_at(b, "2023-09-27", 15, pain)
    }

    #[test]
    fn clause_a_pain_4_5_6_7() {
        assert_eq!(severity(&eval(l3(4.0), "2023-09-28")), None);
        assert_eq!(
            severity(&eval(l3(5.0), "2023-09-28")),
            Some(Severity::Moderate)
        );
        assert_eq!(
            severity(&eval(l3(6.0), "2023-09-28")),
            Some(Severity::Moderate)
        );
        assert_eq!(severity(&eval(l3(7.0), "2023-09-28")), Some(Severity::High));
    }

    #[test]
    fn clause_a_needs_recent_pain() {
        assert!(severity(&eval(l3(8.0), "2023-10-04")).is_some()); // 7 d
        assert_eq!(severity(&eval(l3(8.0), "2023-10-05")), None); // 8 d
    }

    #[test]
    fn mri_confirmed_level_needs_no_imaging() {
        let b = l3(8.0).edema(L3, "2023-09-27", true);
        assert_eq!(severity(&eval(b, "2023-09-28")), None);
    }

    #[test]
    fn seed_example_4_latest_same_day_pain_is_8() {
        let b = RecordBuilder::new("1950-03-15", Sex::Female)
            .procedure(ProcedureKind::Vertebroplasty, &[L1], "2023-08-30")
            .procedure(ProcedureKind::Vertebroplasty, &[L2, L5], "2023-09-04")
            .vertebral_fracture(L3, "2023-09-27", "2023-09-27")
            .procedure(ProcedureKind::SpineCt, &[], "2023-09-27");
        let b = pain_at(b, "2023-08-31", 10, 7.0);
        let b = pain_at(b, "2023-09-06", 10, 3.0);
        let b = pain_at(b, "2023-09-27", 10, 2.0);
        let b = pain_at(b, "2023-09-27", 15, 8.0);
        let e = eval(b, "2023-09-28");
        assert_eq!(severity(&e), Some(Severity::High));
        let f = e.outcome.get(FindingCode::OvcfImagingRecommended).cloned();
        let f = f.expect("fires");
        assert_eq!(f.levels, vec!["L3".to_string()]);
        // The CT on 09-27 answers clause (b): only clause (a) is reported.
        assert!(!f.summary.contains("rose"), "{}", f.summary);
    }

    #[test]
    fn clause_b_pain_rise_after_augmentation_without_imaging() {
        let b = || {
            let b = RecordBuilder::new("1950-03-15", Sex::Female).procedure(
                ProcedureKind::Vertebroplasty,
                &[L1],
                "2023-01-10",
            );
            pain_at(b, "2023-01-12", 10, 2.0)
        };
        // Rise 2 → 5 (3 points) → moderate.
        let e = eval(pain_at(b(), "2023-02-01", 10, 5.0), "2023-02-02");
        assert_eq!(severity(&e), Some(Severity::Moderate));
        // Rise 2 → 4: below the pain minimum.
        assert_eq!(
            severity(&eval(pain_at(b(), "2023-02-01", 10, 4.0), "2023-02-02")),
            None
        );
        // Imaging on the day of the pain answers it.
        let imaged = pain_at(b(), "2023-02-01", 10, 6.0).procedure(
            ProcedureKind::SpineXray,
            &[],
            "2023-02-01",
        );
        assert_eq!(severity(&eval(imaged, "2023-02-02")), None);
    }

    #[test]
    fn clause_b_window_365_vs_366_days() {
        let b = |pain_date: &str| {
            let b = RecordBuilder::new("1950-03-15", Sex::Female).procedure(
                ProcedureKind::Vertebroplasty,
                &[L1],
                "2022-01-10",
            );
            pain_at(pain_at(b, "2022-02-01", 10, 1.0), pain_date, 10, 6.0)
        };
        assert!(severity(&eval(b("2023-01-10"), "2023-01-11")).is_some()); // 365 d
        assert_eq!(severity(&eval(b("2023-01-11"), "2023-01-12")), None); // 366 d
    }
}

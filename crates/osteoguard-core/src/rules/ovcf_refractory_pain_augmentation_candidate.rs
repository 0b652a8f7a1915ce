//! `ovcf-refractory-pain-augmentation-candidate` — knowledge.md §7.5, §9, §12.5.
//!
//! **Recommendation:** "Painful unhealed vertebral fracture at {levels} refractory to ≥4 weeks of
//! conservative care (pain ≥7/10): refer for vertebral augmentation evaluation."
//! **Source:** SEED (multi-society position statement cited by the case report); ACR-AC-VCF.
//! Strength: expert consensus; efficacy debated (sham-controlled RCTs largely negative, §12.5) —
//! the finding is a referral for evaluation, never an order.
//!
//! **Criteria** (per level, all must hold):
//! 1. [`unhealed`] — state ACUTE or SUBACUTE, not AUGMENTED;
//! 2. [`mri_confirmed`] — §7.5-2 (oedema on an MRI ≥ onset start − 7 d and ≤ 90 d before
//!    `as_of`); if not, candidacy is UNKNOWN and `ovcf-imaging-recommended` carries it;
//! 3. [`refractory_pain`] — the most recent pain score (latest effective date-time), dated
//!    within `pain_recent_days` of `as_of`, is ≥ `augmentation_pain_min`;
//! 4. [`conservative_care_long_enough`] — `as_of − onset ≥ conservative_care_min_days` (onset
//!    for acuity; no conservative-care start is modelled);
//! 5. exclusion [`documented_exclusion`] — spinal infection, coagulopathy, neurological deficit
//!    or malignancy on record: do not fire; an `info` note is added to the `acute-ovcf`
//!    finding (which always co-exists, criterion 1) so the reason is visible.
//!
//! A vertebral fracture without a level never makes a candidate (§7.2).
//!
//! **Thresholds:** `augmentation_pain_min` (7), `conservative_care_min_days` (28),
//! `pain_recent_days` (7), `mri_before_onset_days` (7), `subacute_max_days` (90).

use crate::engine::{Ctx, Outcome};
use crate::facts::spine::{LevelStatus, PainReading};
use crate::finding::{days_in_words, Evidence, Finding, FindingCode, Severity, Ymd};
use crate::model::days;

pub const CITATION: &str = "SEED (multi-society position); ACR-AC-VCF";
const SECTION: &str = "§7.5; §9 ovcf-refractory-pain-augmentation-candidate";

/// Criterion 1: ACUTE or SUBACUTE (never AUGMENTED, which is its own state).
pub fn unhealed(level: &LevelStatus) -> bool {
    level.state.is_unhealed()
}

/// Criterion 2 (§7.5-2), computed in the spine facts.
pub fn mri_confirmed(level: &LevelStatus) -> bool {
    level.mri_confirmed
}

/// Criterion 3: the current pain score (within `pain_recent_days`) is ≥ the threshold.
pub fn refractory_pain<'a>(ctx: &'a Ctx<'_>) -> Option<&'a PainReading> {
    ctx.spine
        .current_pain
        .as_ref()
        .filter(|p| p.value >= ctx.t().augmentation_pain_min)
}

/// Criterion 4: conservative care ≥ 28 days since onset (onset unknown → not met).
pub fn conservative_care_long_enough(level: &LevelStatus, ctx: &Ctx<'_>) -> bool {
    level
        .onset
        .is_some_and(|o| days(o, ctx.as_of()) >= ctx.t().conservative_care_min_days)
}

/// Criterion 5: a documented contraindication (§7.5-5).
pub fn documented_exclusion(ctx: &Ctx<'_>) -> bool {
    !ctx.spine.augmentation_exclusions.is_empty()
}

/// Levels meeting criteria 1, 2 and 4 (pain is patient-level).
pub fn candidate_levels<'a>(ctx: &'a Ctx<'_>) -> Vec<&'a LevelStatus> {
    ctx.spine
        .levels
        .iter()
        .filter(|l| unhealed(l) && mri_confirmed(l) && conservative_care_long_enough(l, ctx))
        .collect()
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let Some(pain) = refractory_pain(ctx) else {
        return;
    };
    let levels = candidate_levels(ctx);
    if levels.is_empty() {
        return;
    }
    let names: Vec<String> = levels.iter().map(|l| l.level.label().to_string()).collect();
    if documented_exclusion(ctx) {
        let refs: Vec<&str> = ctx
            .spine
            .augmentation_exclusions
            .iter()
            .map(|r| r.as_str())
            .collect();
        let note = text!(
            "Augmentation criteria met at {} but a contraindication is documented ({}): not \
             referred for augmentation",
            names.join(", "),
            refs.join(", ")
        );
        if let Some(f) = out
            .findings
            .iter_mut()
            .find(|f| f.code == FindingCode::AcuteOvcf)
        {
            f.notes.push(note);
            f.trace.push(
                "ovcf-refractory-pain-augmentation-candidate suppressed by a documented exclusion \
                 (knowledge.md §7.5-5)"
                    .to_string(),
            );
        }
        return;
    }
    let phrases: Vec<String> = levels
        .iter()
        .map(|l| {
            let onset = l.onset.map(|o| (o, days(o, ctx.as_of())));
            match onset {
                Some((o, n)) => text!(
                    "{} {} (onset {}, {n} d, MRI oedema)",
                    l.level,
                    l.state.as_str(),
                    Ymd(o)
                ),
                None => text!("{} {}", l.level, l.state.as_str()),
            }
        })
        .collect();
    let mut evidence: Vec<Evidence> = levels.iter().flat_map(|l| l.evidence()).collect();
    evidence.push(pain.evidence());
    crate::facts::spine::chronological(&mut evidence);
    let f = Finding::new(
        FindingCode::OvcfRefractoryPainAugmentationCandidate,
        Severity::High,
        text!(
            "{}; pain {}/10 on {} despite ≥ {} of conservative care",
            phrases.join("; "),
            pain.value,
            pain.date(),
            days_in_words(ctx.t().conservative_care_min_days)
        ),
        text!(
            "Painful unhealed vertebral fracture at {} refractory to ≥{} of conservative care \
             (pain ≥{}/10): refer for vertebral augmentation evaluation.",
            names.join(", "),
            days_in_words(ctx.t().conservative_care_min_days),
            ctx.t().augmentation_pain_min
        ),
        CITATION,
        SECTION,
    )
    .with_evidence(evidence)
    .with_levels(names)
    .with_note(
        "Referral for evaluation only: augmentation efficacy is debated (sham-controlled trials \
         largely negative); exclude infection, coagulopathy, neurological deficit and malignancy.",
    )
    .with_trace("referral only; exclusions per knowledge.md §7.5-5, evidence §12.5")
    .with_note(
        "Conservative care counted from fracture onset (no documented conservative-care start)",
    );
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::{evaluate as run, Evaluation};
    use crate::model::{ConditionKind, ObservationKind, ProcedureKind, Sex, VertebralLevel::*};
    use crate::testkit::{d, RecordBuilder};

    fn eval(b: RecordBuilder, as_of: &str) -> Evaluation {
        run(&b.build(), d(as_of), &Config::default())
    }

    fn fired(e: &Evaluation) -> Option<Severity> {
        e.outcome
            .get(FindingCode::OvcfRefractoryPainAugmentationCandidate)
            .map(|f| f.severity)
    }

    /// Seed L1: onset 2023-07-15, MRI oedema 2023-07-17.
    fn seed_l1(pain_date: &str, pain: f64) -> RecordBuilder {
        RecordBuilder::new("1950-03-15", Sex::Female)
            .vertebral_fracture(L4, "2022-08-01", "2022-08-01")
            .procedure(ProcedureKind::Vertebroplasty, &[L4], "2022-08-16")
            .vertebral_fracture(L1, "2023-07-15", "2023-07-17")
            .edema(L1, "2023-07-17", true)
            .observation(ObservationKind::Pain, pain_date, pain)
    }

    #[test]
    fn seed_example_3_l1_candidate() {
        let e = eval(seed_l1("2023-08-23", 7.0), "2023-08-23");
        assert_eq!(fired(&e), Some(Severity::High));
        let f = e
            .outcome
            .get(FindingCode::OvcfRefractoryPainAugmentationCandidate)
            .cloned()
            .expect("fires");
        assert_eq!(f.levels, vec!["L1".to_string()]);
        assert!(f
            .summary
            .starts_with("L1 acute (onset 2023-07-15, 39 d, MRI oedema); pain 7/10"));
    }

    #[test]
    fn pain_6_vs_7() {
        assert_eq!(fired(&eval(seed_l1("2023-08-23", 6.0), "2023-08-23")), None);
        assert!(fired(&eval(seed_l1("2023-08-23", 7.0), "2023-08-23")).is_some());
    }

    #[test]
    fn conservative_care_27_vs_28_days() {
        // onset 2023-07-15: day 27 = 2023-08-11, day 28 = 2023-08-12.
        assert_eq!(fired(&eval(seed_l1("2023-08-11", 8.0), "2023-08-11")), None);
        assert!(fired(&eval(seed_l1("2023-08-12", 8.0), "2023-08-12")).is_some());
    }

    #[test]
    fn pain_must_be_within_seven_days() {
        assert!(fired(&eval(seed_l1("2023-08-16", 8.0), "2023-08-23")).is_some()); // 7 d
        assert_eq!(fired(&eval(seed_l1("2023-08-15", 8.0), "2023-08-23")), None);
        // 8 d
    }

    #[test]
    fn latest_pain_decides_even_if_lower() {
        let b = seed_l1("2023-08-20", 9.0).observation(ObservationKind::Pain, "2023-08-22", 4.0);
        assert_eq!(fired(&eval(b, "2023-08-23")), None);
    }

    #[test]
    fn no_mri_confirmation_no_candidate() {
        let b = RecordBuilder::new("1950-03-15", Sex::Female)
            .vertebral_fracture(L1, "2023-07-15", "2023-07-17")
            .observation(ObservationKind::Pain, "2023-08-23", 8.0);
        assert_eq!(fired(&eval(b, "2023-08-23")), None);
    }

    #[test]
    fn subacute_boundary_day_90_candidate_day_91_not() {
        // MRI 2023-07-17: 90 d → 2023-10-15 subacute & confirmed; 91 d → chronic.
        assert!(fired(&eval(seed_l1("2023-10-15", 8.0), "2023-10-15")).is_some());
        assert_eq!(fired(&eval(seed_l1("2023-10-16", 8.0), "2023-10-16")), None);
    }

    #[test]
    fn exclusion_blocks_and_notes_on_acute_ovcf() {
        let b = seed_l1("2023-08-23", 8.0).condition(
            ConditionKind::Malignancy,
            Some(("2023-01-01", "2023-01-01")),
            Some("2023-01-01"),
        );
        let e = eval(b, "2023-08-23");
        assert_eq!(fired(&e), None);
        let acute = e
            .outcome
            .get(FindingCode::AcuteOvcf)
            .cloned()
            .expect("acute");
        assert!(acute
            .notes
            .iter()
            .any(|n| n.starts_with("Augmentation criteria met at L1")));
        assert!(acute.trace.iter().any(|t| t.contains("§7.5-5")));
    }
}

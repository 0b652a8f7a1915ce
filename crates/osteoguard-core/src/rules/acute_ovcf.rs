//! `acute-ovcf` — knowledge.md §7.1, §7.2, §7.4, §9.
//!
//! **Recommendation:** "Acute/unhealed vertebral compression fracture at {levels}: provide
//! analgesia, early mobilisation, and start/confirm osteoporosis treatment."
//! **Source:** PVA-TIMING (time since fracture < 6 weeks / 6 weeks–3 months, verified); ACR-2022
//! (treatment after fragility fracture). Strength: expert-panel definitions; guideline (strong).
//!
//! **Criteria:**
//! * inclusion: [`unhealed_levels`] — any level in state ACUTE or SUBACUTE (not augmented) on
//!   `as_of` (§7.4, including SUBACUTE with `age_indeterminate`), or
//!   [`recent_unlocated_fractures`] — a vertebral fracture without a level whose onset for
//!   acuity is ≤ `subacute_max_days` before `as_of` (or unknown: §7.4 step 5 never assumes
//!   chronic), reported as "level not recorded" (§7.2);
//! * no exclusion; an event, so absence is not UNKNOWN (§1.4).
//!
//! **Thresholds:** `acute_max_days` (42), `subacute_max_days` (90) via the spine facts.

use crate::engine::{Ctx, Outcome};
use crate::facts::spine::{FractureEvent, LevelStatus};
use crate::finding::{Evidence, Finding, FindingCode, Severity, Ymd};
use crate::model::{days, VertebralLocation};

pub const CITATION: &str = "PVA-TIMING; ACR-2022";
const SECTION: &str = "§7.1, §7.4; §9 acute-ovcf";

/// Levels in state ACUTE or SUBACUTE (AUGMENTED is a separate, terminal state).
pub fn unhealed_levels<'a>(ctx: &'a Ctx<'_>) -> Vec<&'a LevelStatus> {
    ctx.spine
        .levels
        .iter()
        .filter(|l| l.state.is_unhealed())
        .collect()
}

/// Vertebral fractures without a level that are still recent by onset (§7.2, §7.4 step 4/5).
pub fn recent_unlocated_fractures<'a>(ctx: &'a Ctx<'_>) -> Vec<&'a FractureEvent> {
    ctx.spine
        .fractures
        .iter()
        .filter(|f| f.location == VertebralLocation::Unspecified && !f.prevalent_unknown_age)
        .filter(|f| {
            f.onset_for_acuity
                .is_none_or(|o| days(o, ctx.as_of()) <= ctx.t().subacute_max_days)
        })
        .collect()
}

fn level_phrase(l: &LevelStatus, ctx: &Ctx<'_>) -> String {
    let since = match (l.onset, l.since) {
        (Some(o), _) => text!("onset {}, {} d", Ymd(o), days(o, ctx.as_of())),
        (None, Some(s)) => text!("since {}", Ymd(s)),
        (None, None) => "onset unknown".to_string(),
    };
    let mri = if l.mri_confirmed {
        ", MRI-confirmed"
    } else {
        ""
    };
    let indeterminate = if l.age_indeterminate {
        ", age indeterminate"
    } else {
        ""
    };
    text!(
        "{} {} ({since}{mri}{indeterminate})",
        l.level,
        l.state.as_str()
    )
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let levels = unhealed_levels(ctx);
    let unlocated = recent_unlocated_fractures(ctx);
    if levels.is_empty() && unlocated.is_empty() {
        return;
    }
    let mut phrases: Vec<String> = levels.iter().map(|l| level_phrase(l, ctx)).collect();
    phrases.extend(unlocated.iter().map(|f| match f.onset_for_acuity {
        Some(o) => text!(
            "level not recorded (onset {}, {} d)",
            Ymd(o),
            days(o, ctx.as_of())
        ),
        None => "level not recorded (onset unknown)".to_string(),
    }));
    let mut names: Vec<String> = levels.iter().map(|l| l.level.label().to_string()).collect();
    if !unlocated.is_empty() {
        names.push("level not recorded".to_string());
    }
    let mut evidence: Vec<Evidence> = levels.iter().flat_map(|l| l.evidence()).collect();
    evidence.extend(unlocated.iter().map(|f| {
        Evidence::new(
            &f.source,
            f.onset_for_acuity,
            "vertebral fracture, level not recorded",
        )
    }));
    crate::facts::spine::chronological(&mut evidence);

    let mut f = Finding::new(
        FindingCode::AcuteOvcf,
        Severity::High,
        text!("Unhealed vertebral fracture: {}", phrases.join("; ")),
        text!(
            "Acute/unhealed vertebral compression fracture at {}: provide analgesia, early \
             mobilisation, and start/confirm osteoporosis treatment.",
            names.join(", ")
        ),
        CITATION,
        SECTION,
    )
    .with_evidence(evidence)
    .with_levels(levels.iter().map(|l| l.level.label().to_string()));
    for l in levels.iter().filter(|l| l.age_indeterminate) {
        f = f
            .with_note(text!(
                "{}: onset unknown and no MRI — treated as subacute, not assumed chronic",
                l.level
            ))
            .with_trace(text!(
                "{}: age_indeterminate (knowledge.md §7.4 step 5)",
                l.level
            ));
    }
    let estimated: Vec<&FractureEvent> = ctx
        .spine
        .fractures
        .iter()
        .filter(|e| e.onset_estimated)
        .filter(|e| {
            unlocated.iter().any(|u| u.source == e.source)
                || levels.iter().any(|l| e.covers(l.level))
        })
        .collect();
    for e in estimated {
        f = f
            .with_note(text!(
                "{}: onset not recorded; the recorded date {} is used",
                e.location,
                e.recorded.map(|d| d.to_string()).unwrap_or_default()
            ))
            .with_trace(text!("{}: onset_estimated (knowledge.md §7.2)", e.location));
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::{evaluate as run, Evaluation};
    use crate::model::{ConditionKind, FractureSite, ProcedureKind, Sex, VertebralLevel::*};
    use crate::testkit::{d, RecordBuilder};

    fn patient() -> RecordBuilder {
        RecordBuilder::new("1950-03-15", Sex::Female)
    }

    fn eval(b: RecordBuilder, as_of: &str) -> Evaluation {
        run(&b.build(), d(as_of), &Config::default())
    }

    fn finding(e: &Evaluation) -> Option<Finding> {
        e.outcome.get(FindingCode::AcuteOvcf).cloned()
    }

    #[test]
    fn fires_through_day_90_not_91() {
        let b = || patient().vertebral_fracture(L1, "2023-01-01", "2023-01-01");
        let f = finding(&eval(b(), "2023-02-12")).expect("acute at 42 d");
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.levels, vec!["L1".to_string()]);
        assert!(
            f.summary.contains("L1 acute (onset 2023-01-01, 42 d)"),
            "{}",
            f.summary
        );
        let f = finding(&eval(b(), "2023-02-13")).expect("subacute at 43 d");
        assert!(f.summary.contains("L1 subacute"));
        assert!(finding(&eval(b(), "2023-04-01")).is_some()); // 90 d
        assert!(finding(&eval(b(), "2023-04-02")).is_none()); // 91 d: chronic
    }

    #[test]
    fn augmented_level_does_not_fire() {
        let b = patient()
            .vertebral_fracture(L1, "2023-01-01", "2023-01-01")
            .procedure(ProcedureKind::Vertebroplasty, &[L1], "2023-01-20");
        assert!(finding(&eval(b, "2023-01-25")).is_none());
    }

    #[test]
    fn unlocated_recent_fracture_says_level_not_recorded() {
        let b = || {
            patient().condition(
                ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Unspecified)),
                Some(("2023-01-01", "2023-01-01")),
                Some("2023-01-02"),
            )
        };
        let f = finding(&eval(b(), "2023-04-01")).expect("fires at 90 d");
        assert!(f.recommendation.contains("at level not recorded"));
        assert!(f.levels.is_empty());
        assert!(finding(&eval(b(), "2023-04-02")).is_none());
    }

    #[test]
    fn age_indeterminate_note() {
        let b = patient().condition(
            ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(T12))),
            None,
            None,
        );
        let f = finding(&eval(b, "2023-04-01")).expect("fires");
        assert!(f.notes.iter().any(|n| n.contains("not assumed chronic")));
    }

    #[test]
    fn seed_example_4_l3_only() {
        let b = patient()
            .vertebral_fracture(L1, "2023-07-15", "2023-07-17")
            .procedure(ProcedureKind::Vertebroplasty, &[L1], "2023-08-30")
            .vertebral_fracture(L3, "2023-09-27", "2023-09-27");
        let f = finding(&eval(b, "2023-09-28")).expect("fires");
        assert_eq!(f.levels, vec!["L3".to_string()]);
    }
}

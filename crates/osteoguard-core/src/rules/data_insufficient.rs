//! `data-insufficient` — knowledge.md §1.4, §9.
//!
//! **Recommendation:** knowledge.md §9's text, "Cannot fully evaluate: missing {inputs}; obtain them."
//! (the inputs joined by "; ").
//! **Source:** the engine's own convention (knowledge.md §1.4: unknown is never a silent
//! negative), cited by the key `OSTEOGUARD-SPEC`. Strength: engine rule.
//!
//! **Criteria:** ONE finding assembled last from the items every rule contributed through
//! [`Outcome::insufficient`] — the closed list of §9 (1 GC dose not computable, 2 category
//! indeterminate, 3 zoledronate safety labs, 4 vitamin D, 5 denosumab CKD labs, 6 DXA pair,
//! 7 rebound evidence, 8 undated denosumab, 9 FRAX invalid). No items → no finding.
//! * severity: [`safety_blocking`] (any of items 3–5) → moderate; otherwise info.
//! * `inputs_missing`: one line per item, as a consultant writes it: what is missing and why it
//!   matters ([`why_it_matters`]), sorted by item.
//! * the item numbers and rules stay machine-readable: `insufficient_items` (JSON
//!   `insufficientItems`) and one `trace` line per item ("§9 data-insufficient item N: rule").
//!
//! **Thresholds:** none.

use crate::engine::{Ctx, InsufficientItem, Outcome};
use crate::finding::{Evidence, Finding, FindingCode, InsufficientInput, Severity};

pub const CITATION: &str = "OSTEOGUARD-SPEC";
const SECTION: &str = "§1.4; §9 data-insufficient";

/// Items 3–5 block a safety check (§9): moderate.
pub fn safety_blocking(item: u8) -> bool {
    (3..=5).contains(&item)
}

/// Why an item of the §9 list matters, in a clinician's words.
pub fn why_it_matters(item: u8) -> &'static str {
    match item {
        1 => "needed to work out the glucocorticoid exposure",
        2 | 9 => "needed to place the patient in a fracture-risk category",
        3 => "needed before zoledronic acid can be given safely",
        4 => "needed before antiresorptive treatment can be given safely",
        5 => "needed before denosumab can be given safely in kidney disease",
        6 => "needed to judge whether bone density has changed",
        7 => "needed to judge whether the fracture is a rebound fracture after stopping denosumab",
        8 => "needed to time the next denosumab dose",
        _ => "needed to complete the assessment",
    }
}

/// Upper-cases the first letter (a line that starts a sentence).
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => {
            // The rest is copied whole, not char by char.
            let mut out = String::with_capacity(s.len() + 2);
            out.extend(first.to_uppercase());
            out.push_str(c.as_str());
            out
        }
        None => String::new(),
    }
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let _ = ctx;
    let mut items: Vec<InsufficientItem> = out.insufficient.clone();
    items.sort_by(|a, b| (a.item, &a.rule, &a.missing).cmp(&(b.item, &b.rule, &b.missing)));
    items.dedup_by(|a, b| a.item == b.item && a.rule == b.rule && a.missing == b.missing);
    if items.is_empty() {
        return;
    }
    let severity = if items.iter().any(|i| safety_blocking(i.item)) {
        Severity::Moderate
    } else {
        Severity::Info
    };
    let lines: Vec<String> = items
        .iter()
        .map(|i| text!("{} ({})", sentence(&i.missing), why_it_matters(i.item)))
        .collect();
    let summary = text!(
        "Parts of the assessment could not be completed: {}",
        lines.join("; ")
    );
    let mut inputs: Vec<&str> = items.iter().map(|i| i.missing.as_str()).collect();
    inputs.dedup();
    let recommendation = text!(
        "Cannot fully evaluate: missing {}; obtain them.",
        inputs.join("; ")
    );
    let mut evidence: Vec<Evidence> = items.iter().flat_map(|i| i.evidence.clone()).collect();
    evidence.sort();
    evidence.dedup();
    let mut f = Finding::new(
        FindingCode::DataInsufficient,
        severity,
        summary,
        recommendation,
        CITATION,
        SECTION,
    )
    .with_evidence(evidence);
    f.inputs_missing = lines;
    f.trace = items
        .iter()
        .map(|i| text!("§9 data-insufficient item {}: {}", i.item, i.rule))
        .collect();
    f.insufficient_items = items
        .iter()
        .map(|i| InsufficientInput {
            item: i.item,
            rule: i.rule.clone(),
            missing: i.missing.clone(),
        })
        .collect();
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Ingredient, ObservationKind, PatientRecord, Route, Sex};
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    /// The seed's denosumab course (6 doses, last 2022-10-27) and the 2023-08-23 labs.
    fn seed(with_labs: bool) -> PatientRecord {
        let mut b = RecordBuilder::new("1950-03-15", Sex::Female);
        for date in [
            "2020-02-10",
            "2020-08-10",
            "2021-02-10",
            "2021-08-10",
            "2022-02-10",
            "2022-10-27",
        ] {
            b = b.administration(Ingredient::Denosumab, date, 60.0, Route::Subcutaneous);
        }
        if with_labs {
            b = b
                .observation(ObservationKind::Creatinine, "2023-08-23", 0.8)
                .observation(ObservationKind::BodyWeight, "2023-08-23", 50.0)
                .observation(ObservationKind::Calcium, "2023-08-23", 9.2);
        }
        b.build()
    }

    #[test]
    fn example_2_items_3_4_5_moderate() {
        let out = testing::plain(&seed(false), d("2023-06-15"));
        let f = out.get(FindingCode::DataInsufficient).unwrap();
        assert_eq!(f.severity, Severity::Moderate);
        let numbers: Vec<u8> = f.insufficient_items.iter().map(|i| i.item).collect();
        assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "{numbers:?}");
        let mut distinct = numbers.clone();
        distinct.dedup();
        assert_eq!(distinct, vec![3, 4, 5]);
        assert_eq!(f.inputs_missing.len(), f.insufficient_items.len());
        assert_eq!(f.trace.len(), f.insufficient_items.len());
        assert!(f
            .trace
            .iter()
            .all(|l| l.starts_with("§9 data-insufficient item ")));
        assert!(f
            .insufficient_items
            .iter()
            .any(|i| i.item == 3 && i.rule.starts_with("zoledronate-renal")));
        assert!(f
            .insufficient_items
            .iter()
            .any(|i| i.item == 3 && i.rule.starts_with("hypocalcaemia")));
        assert!(f
            .trace
            .iter()
            .any(|l| l.starts_with("§9 data-insufficient item 3: zoledronate-renal")));
        for (line, i) in f.inputs_missing.iter().zip(&f.insufficient_items) {
            assert!(line.contains(why_it_matters(i.item)), "{line}");
            assert!(!line.contains("item "), "{line}");
        }
        assert!(f.summary.contains(why_it_matters(3)), "{}", f.summary);
        assert!(!out.fired(FindingCode::ZoledronateRenalContraindication));
        let overdue = out.get(FindingCode::DenosumabOverdue).unwrap();
        assert_eq!(overdue.severity, Severity::High);
        let disc = out
            .get(FindingCode::DenosumabDiscontinuationWithoutTransition)
            .unwrap();
        assert_eq!(disc.severity, Severity::Critical);
    }

    #[test]
    fn example_3_safety_labs_ok_only_vitamin_d_missing() {
        let out = testing::plain(&seed(true), d("2023-08-23"));
        assert_eq!(
            out.get(FindingCode::DenosumabOverdue).map(|f| f.severity),
            Some(Severity::Critical)
        );
        let items: Vec<u8> = out.insufficient.iter().map(|i| i.item).collect();
        assert_eq!(items, vec![4]);
        for code in [
            FindingCode::ZoledronateRenalContraindication,
            FindingCode::HypocalcaemiaAntiresorptiveCaution,
            FindingCode::DenosumabDueSoon,
        ] {
            assert!(!out.fired(code), "{code}");
        }
    }

    /// §9 `data-insufficient`, column "Recommendation text": "Cannot fully evaluate: missing
    /// {inputs}; obtain them." (found by the oragc2 differential: the engine had its own wording).
    #[test]
    fn recommendation_is_the_section_9_text() {
        let out = testing::plain(&seed(false), d("2023-06-15"));
        let f = out.get(FindingCode::DataInsufficient).expect("fires");
        assert!(
            f.recommendation
                .starts_with("Cannot fully evaluate: missing "),
            "{}",
            f.recommendation
        );
        assert!(
            f.recommendation.ends_with("; obtain them."),
            "{}",
            f.recommendation
        );
        for i in &f.insufficient_items {
            assert!(f.recommendation.contains(&i.missing), "{}", i.missing);
        }
    }

    #[test]
    fn no_items_no_finding_and_info_without_safety_items() {
        let out = testing::plain(&seed(false), d("2022-12-01"));
        assert!(!out.fired(FindingCode::DataInsufficient));
        let mut out = Outcome::default();
        out.insufficient(6, "bmd-significant-loss", "no comparable DXA pair");
        let r = seed(false);
        testing::run(&r, d("2022-12-01"), |ctx| {
            evaluate(ctx, &mut out);
        });
        let f = out.get(FindingCode::DataInsufficient).unwrap();
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(
            f.insufficient_items,
            vec![InsufficientInput {
                item: 6,
                rule: "bmd-significant-loss".into(),
                missing: "no comparable DXA pair".into(),
            }]
        );
        assert_eq!(
            f.inputs_missing,
            vec![format!("No comparable DXA pair ({})", why_it_matters(6))]
        );
        assert_eq!(
            f.trace,
            vec!["§9 data-insufficient item 6: bmd-significant-loss".to_string()]
        );
    }

    /// The seed timeline of knowledge.md §11 (KU-73F), built by hand, through the engine with
    /// every fact module (assertions on the codes this module family owns).
    fn seed_record() -> PatientRecord {
        use crate::model::{
            ConditionKind, DxaSite, FractureSite, MedicationStatus, ProcedureKind,
            VertebralLevel::*, VertebralLocation,
        };
        let vertebral =
            |l| ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Level(l)));
        let mut b = RecordBuilder::new("1950-03-15", Sex::Female)
            .condition(
                ConditionKind::AdrenalInsufficiency,
                Some(("2015-01-01", "2015-01-01")),
                Some("2015-01-01"),
            )
            .daily_order(
                Ingredient::Hydrocortisone,
                MedicationStatus::Active,
                "2015-01-01",
                None,
                Some(20.0),
                Some(1.0),
                Route::Oral,
            )
            .condition(
                ConditionKind::Osteoporosis,
                Some(("2020-02-10", "2020-02-10")),
                Some("2020-02-10"),
            );
        for date in [
            "2020-02-10",
            "2020-08-10",
            "2021-02-10",
            "2021-08-10",
            "2022-02-10",
            "2022-10-27",
        ] {
            b = b.administration(Ingredient::Denosumab, date, 60.0, Route::Subcutaneous);
        }
        let hologic = |o: &mut crate::model::Observation| o.device = Some("Hologic".into());
        b.observation(
            ObservationKind::TScore(DxaSite::LumbarSpine),
            "2021-06-15",
            -2.7,
        )
        .with_last_observation(hologic)
        .observation(
            ObservationKind::TScore(DxaSite::LumbarSpine),
            "2022-06-15",
            -2.7,
        )
        .with_last_observation(hologic)
        .vertebral_fracture(L4, "2022-08-01", "2022-08-01")
        .procedure(ProcedureKind::Vertebroplasty, &[L4], "2022-08-16")
        .vertebral_fracture(L1, "2023-07-15", "2023-07-17")
        .edema(L1, "2023-07-17", true)
        .observation(
            ObservationKind::TScore(DxaSite::LumbarSpine),
            "2023-07-20",
            -3.7,
        )
        .with_last_observation(hologic)
        .observation(
            ObservationKind::TScore(DxaSite::TotalHip),
            "2023-07-20",
            -3.8,
        )
        .with_last_observation(hologic)
        .observation(ObservationKind::FraxMof, "2023-08-01", 35.0)
        .observation(ObservationKind::FraxHip, "2023-08-01", 13.0)
        .observation(ObservationKind::Pain, "2023-08-23", 7.0)
        .observation(ObservationKind::Creatinine, "2023-08-23", 0.8)
        .observation(ObservationKind::BodyWeight, "2023-08-23", 50.0)
        .observation(ObservationKind::Calcium, "2023-08-23", 9.2)
        .procedure(ProcedureKind::SpineXray, &[L2], "2023-08-27")
        .procedure(ProcedureKind::Vertebroplasty, &[L1], "2023-08-30")
        .administration(
            Ingredient::ZoledronicAcid,
            "2023-08-31",
            5.0,
            Route::Intravenous,
        )
        .observation(ObservationKind::Pain, "2023-08-31", 7.0)
        .edema(L2, "2023-09-03", true)
        .edema(L5, "2023-09-03", true)
        .condition(
            vertebral(L2),
            Some(("2023-07-31", "2023-08-27")),
            Some("2023-09-03"),
        )
        .condition(
            vertebral(L5),
            Some(("2023-07-31", "2023-08-27")),
            Some("2023-09-03"),
        )
        .procedure(ProcedureKind::Vertebroplasty, &[L2, L5], "2023-09-04")
        .observation(ObservationKind::Pain, "2023-09-06", 3.0)
        .observation(ObservationKind::Pain, "2023-09-27", 8.0)
        .vertebral_fracture(L3, "2023-09-27", "2023-09-27")
        .procedure(ProcedureKind::SpineCt, &[L3], "2023-09-27")
        .build()
    }

    fn through_engine(as_of: &str) -> crate::engine::Evaluation {
        crate::engine::evaluate(&seed_record(), d(as_of), &crate::Config::default())
    }

    fn sev(ev: &crate::engine::Evaluation, code: FindingCode) -> Option<Severity> {
        ev.outcome.get(code).map(|f| f.severity)
    }

    fn items(ev: &crate::engine::Evaluation) -> Vec<u8> {
        let mut v: Vec<u8> = ev.outcome.insufficient.iter().map(|i| i.item).collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn seed_example_1_on_schedule() {
        let ev = through_engine("2022-12-01");
        for code in [
            FindingCode::DenosumabDueSoon,
            FindingCode::DenosumabOverdue,
            FindingCode::DenosumabDiscontinuationWithoutTransition,
            FindingCode::ReboundVertebralFracturesSuspected,
            FindingCode::PostDenosumabCtxMonitoring,
            FindingCode::ZoledronateRenalContraindication,
            FindingCode::DataInsufficient,
        ] {
            assert!(!ev.outcome.fired(code), "{code}");
        }
        assert_eq!(ev.dmab.dose_count, 6);
    }

    #[test]
    fn seed_example_2_overdue_and_discontinued() {
        let ev = through_engine("2023-06-15");
        use FindingCode::*;
        assert_eq!(sev(&ev, DenosumabOverdue), Some(Severity::High));
        assert_eq!(
            sev(&ev, DenosumabDiscontinuationWithoutTransition),
            Some(Severity::Critical)
        );
        assert_eq!(sev(&ev, DataInsufficient), Some(Severity::Moderate));
        assert_eq!(items(&ev), vec![3, 4, 5]);
        for code in [
            DenosumabDueSoon,
            ZoledronateRenalContraindication,
            ReboundVertebralFracturesSuspected,
            PostDenosumabCtxMonitoring,
            HypocalcaemiaAntiresorptiveCaution,
            VitaminDDeficiencyAntiresorptiveCaution,
        ] {
            assert!(!ev.outcome.fired(code), "{code}");
        }
        let overdue = ev.outcome.get(DenosumabOverdue).unwrap();
        assert_eq!(
            overdue.summary,
            "Last denosumab 2022-10-27 (6 doses); 231 days ago, due 2023-04-27 — overdue by 49 days"
        );
    }

    #[test]
    fn seed_example_3_labs_ok_rebound_unknown() {
        let ev = through_engine("2023-08-23");
        use FindingCode::*;
        assert_eq!(sev(&ev, DenosumabOverdue), Some(Severity::Critical));
        assert_eq!(
            sev(&ev, DenosumabDiscontinuationWithoutTransition),
            Some(Severity::Critical)
        );
        let it = items(&ev);
        assert!(it.contains(&4) && it.contains(&7), "{it:?}");
        assert!(!it.contains(&3) && !it.contains(&5), "{it:?}");
        for code in [
            ReboundVertebralFracturesSuspected,
            ZoledronateRenalContraindication,
            HypocalcaemiaAntiresorptiveCaution,
            PostDenosumabCtxMonitoring,
            DenosumabDueSoon,
        ] {
            assert!(!ev.outcome.fired(code), "{code}");
        }
    }

    #[test]
    fn seed_example_4_transition_and_rebound() {
        let ev = through_engine("2023-09-28");
        use FindingCode::*;
        assert_eq!(sev(&ev, PostDenosumabCtxMonitoring), Some(Severity::Info));
        assert_eq!(
            sev(&ev, ReboundVertebralFracturesSuspected),
            Some(Severity::Critical)
        );
        for code in [
            DenosumabDueSoon,
            DenosumabOverdue,
            DenosumabDiscontinuationWithoutTransition,
            ZoledronateRenalContraindication,
            HypocalcaemiaAntiresorptiveCaution,
            VitaminDDeficiencyAntiresorptiveCaution,
        ] {
            assert!(!ev.outcome.fired(code), "{code}");
        }
        let it = items(&ev);
        assert!(!it.iter().any(|i| [3, 4, 5, 7].contains(i)), "{it:?}");
        let ctx_tasks: Vec<_> = ev
            .outcome
            .tasks
            .iter()
            .filter(|t| t.code.starts_with("ctx-"))
            .map(|t| (t.code.as_str(), t.due))
            .collect();
        assert_eq!(
            ctx_tasks,
            vec![
                ("ctx-3-months", Some(d("2023-11-30"))),
                ("ctx-6-months", Some(d("2024-02-29")))
            ]
        );
    }
}

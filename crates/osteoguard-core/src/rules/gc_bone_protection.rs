//! `gc-bone-protection` — knowledge.md §9, §4.1, §2.8.
//!
//! **Recommendation:** "Long-term glucocorticoid use: ensure calcium 1000–1200 mg/day and vitamin D
//! 600–800 IU/day plus lifestyle measures (exercise, no smoking, alcohol ≤1–2 drinks/day)."
//!
//! **Source:** ACR-2022 non-pharmacological recommendations (Humphrey 2023; §1.8 verified);
//! strength: strong / good practice (§4.1). Severity: moderate.
//!
//! **Criteria** (§9 row; a reminder rule, §1.5: absent supplements are "not documented"):
//! * inclusion [`gc_qualifying_or_unknown`]: `gc_qualifying ∈ {TRUE, UNKNOWN}` (§2.6);
//! * inclusion [`is_adult`]: age ≥ `adult_min_age` (unknown age is treated as adult, noted);
//! * exclusion [`calcium_and_vitamin_d_documented`]: calcium AND vitamin D supplements active on
//!   `as_of` (a combination product satisfies both; calcitriol/alfacalcidol count, §10.1).
//!
//! Notes: the §2.8 replacement-range text when `physiologic_replacement`; oral budesonide (§2.1)
//! and an unknown GC dose (§2.6) are annotated.
//!
//! Thresholds read: `adult_min_age`, `gc_physiologic_max_peq_mg` (note text).
//!
//! This module also copies the GC data-quality notes of the exposure facts (stopped orders
//! without a recorded end, undated GC records, §1.6) into the outcome, whether or not it fires.

use crate::engine::{Ctx, Outcome};
use crate::finding::{Evidence, Finding, FindingCode, Fixed, Severity, Shortest, Ymd};
use crate::tri::Tri;

pub const CITATION: &str = "ACR-2022 (non-pharmacological recommendations)";

/// The recommendation, with the intake figures of the threshold table (a site may set its own).
pub fn recommendation(t: &crate::thresholds::Thresholds) -> String {
    text!(
        "Long-term glucocorticoid use: ensure calcium {}–{} mg/day and vitamin D {}–{} IU/day plus \
         lifestyle measures (exercise, no smoking, alcohol ≤{}–{} drinks/day).",
        Shortest(t.calcium_intake_min_mg),
        Shortest(t.calcium_intake_max_mg),
        Shortest(t.vitamin_d_intake_min_iu),
        Shortest(t.vitamin_d_intake_max_iu),
        Shortest(t.alcohol_max_drinks_low),
        Shortest(t.alcohol_max_drinks_high)
    )
}

const SECTION: &str = "§9 gc-bone-protection; §4.1; §2.8";

/// `gc_qualifying ∈ {TRUE, UNKNOWN}` (§2.6: an unknown dose is treated as qualifying).
pub fn gc_qualifying_or_unknown(ctx: &Ctx<'_>) -> bool {
    ctx.gc.qualifying.maybe()
}

/// Age ≥ 18, or age unknown (conservative for a reminder).
pub fn is_adult(ctx: &Ctx<'_>) -> bool {
    ctx.age().is_none_or(|a| a >= ctx.t().adult_min_age)
}

/// Both supplements active on `as_of`.
pub fn calcium_and_vitamin_d_documented(ctx: &Ctx<'_>) -> bool {
    ctx.therapy.calcium_active && ctx.therapy.vitamin_d_active
}

/// "Hydrocortisone 5.0 mg prednisone-equivalent/day since 2015-01-01" (shared with the other GC
/// rules).
pub fn gc_phrase(ctx: &Ctx<'_>) -> String {
    let gc = &ctx.gc;
    let mut names: Vec<&str> = gc.current_ingredients.iter().map(|i| i.name()).collect();
    if names.is_empty() {
        names.push("systemic glucocorticoid");
    }
    let mut agents = names.join(" + ");
    if let Some(first) = agents.get(0..1) {
        agents = first.to_uppercase() + &agents[1..];
    }
    let dose = match gc.current_daily_peq {
        Some(v) => text!("{} mg prednisone-equivalent/day", Fixed(v, 1)),
        None if gc.current_daily_peq_known > 0.0 => text!(
            "≥ {} mg prednisone-equivalent/day (part of the dose not computable)",
            Fixed(gc.current_daily_peq_known, 1)
        ),
        None => "dose not computable".to_string(),
    };
    match gc.gc_start_date {
        Some(s) => text!("{agents} {dose} since {}", crate::finding::Ymd(s)),
        None => text!("{agents} {dose}"),
    }
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    out.data_quality.extend(ctx.gc.data_quality.iter().cloned());

    if !(gc_qualifying_or_unknown(ctx) && is_adult(ctx)) || calcium_and_vitamin_d_documented(ctx) {
        return;
    }
    let th = &ctx.therapy;
    let missing = match (th.calcium_active, th.vitamin_d_active) {
        (false, false) => "calcium and vitamin D not documented",
        (false, true) => "calcium not documented (vitamin D active)",
        _ => "vitamin D not documented (calcium active)",
    };
    let summary = text!("{}; {missing}", gc_phrase(ctx));
    let mut f = Finding::new(
        FindingCode::GcBoneProtection,
        Severity::Moderate,
        summary,
        recommendation(ctx.t()),
        CITATION,
        SECTION,
    )
    .with_evidence(
        ctx.gc
            .evidence
            .iter()
            .cloned()
            .chain([Evidence::derived(text!(
                "no active {} supplement on record on {}",
                match (th.calcium_active, th.vitamin_d_active) {
                    (false, false) => "calcium or vitamin D",
                    (false, true) => "calcium",
                    _ => "vitamin D",
                },
                Ymd(ctx.as_of())
            ))]),
    );
    if ctx.gc.physiologic_replacement {
        f = f.with_note(text!(
            "Dose is in the physiological-replacement range; GC cannot be stopped (adrenal insufficiency). Over-replacement (>{} mg PEq/day) increases bone risk — review dose.",
            Shortest(ctx.t().gc_physiologic_max_peq_mg)
        ));
    }
    if ctx.gc.qualifying == Tri::Unknown {
        f = f
            .with_note(
                "Glucocorticoid dose not computable: treated as long-term use (conservative).",
            )
            .with_trace("gc_qualifying UNKNOWN treated as qualifying (knowledge.md §2.6)");
    }
    if ctx.gc.oral_budesonide {
        f = f
            .with_note("Oral budesonide present: excluded from the prednisone-equivalent dose.")
            .with_trace("oral budesonide excluded from PEq (knowledge.md §2.1)");
    }
    if ctx.age().is_none() {
        f = f.with_note("Age unknown (no birth date): treated as an adult.");
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{ConditionKind, Ingredient, MedicationStatus::*, PatientRecord, Route, Sex};
    use crate::testkit::{d, RecordBuilder};

    fn findings(record: &PatientRecord, as_of: &str) -> Vec<crate::finding::Finding> {
        crate::engine::evaluate(record, d(as_of), &Config::default())
            .outcome
            .findings
            .into_iter()
            .filter(|f| f.code == FindingCode::GcBoneProtection)
            .collect()
    }

    /// Seed patient: hydrocortisone 10 + 5 + 5 mg daily since 2015, adrenal insufficiency.
    fn seed() -> PatientRecord {
        let mut r = RecordBuilder::new("1950-03-15", Sex::Female)
            .daily_order(
                Ingredient::Hydrocortisone,
                Active,
                "2015-01-01",
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .condition(
                ConditionKind::AdrenalInsufficiency,
                Some(("2015-01-01", "2015-01-01")),
                Some("2015-01-01"),
            )
            .build();
        let line = r.medications[0].dosages[0].clone();
        for mg in [5.0, 5.0] {
            let mut l = line.clone();
            l.dose_mg = Some(mg);
            r.medications[0].dosages.push(l);
        }
        r
    }

    #[test]
    fn seed_fires_with_replacement_note() {
        let f = findings(&seed(), "2022-12-01");
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.severity, Severity::Moderate);
        assert_eq!(
            f.summary,
            "Hydrocortisone 5.0 mg prednisone-equivalent/day since 2015-01-01; calcium and vitamin D not documented"
        );
        assert!(f
            .notes
            .iter()
            .any(|n| n.contains("physiological-replacement")));
        assert!(f.citation.starts_with("ACR-2022"));
        assert!(f
            .evidence
            .iter()
            .any(|e| e.reference.starts_with("MedicationRequest/")));
    }

    #[test]
    fn supplements_suppress_only_when_both_documented() {
        let mut r = seed();
        r.medications.extend(
            RecordBuilder::new("1950-03-15", Sex::Female)
                .statement(Ingredient::Calcium, Active, "2020-01-01", None)
                .build()
                .medications,
        );
        let f = findings(&r, "2022-12-01");
        assert_eq!(f.len(), 1);
        assert!(f[0]
            .summary
            .ends_with("vitamin D not documented (calcium active)"));
        // Add a combination calcium + vitamin D product: suppressed.
        let mut combo = RecordBuilder::new("1950-03-15", Sex::Female)
            .statement(Ingredient::Calcium, Active, "2020-01-01", None)
            .build()
            .medications;
        combo[0].ingredients.push(Ingredient::Cholecalciferol);
        combo[0].source = crate::model::SourceRef::new("MedicationStatement/combo");
        r.medications.extend(combo);
        assert!(findings(&r, "2022-12-01").is_empty());
    }

    #[test]
    fn not_qualifying_or_under_18_does_not_fire() {
        // 2.4 mg/day: not qualifying.
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2023-01-01",
                None,
                Some(2.4),
                Some(1.0),
                Route::Oral,
            )
            .build();
        assert!(findings(&r, "2024-02-04").is_empty());
        // 17 years old on 10 mg: no; the day of the 18th birthday: yes.
        let r = RecordBuilder::new("2006-06-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        assert!(findings(&r, "2024-05-31").is_empty());
        assert_eq!(findings(&r, "2024-06-01").len(), 1);
    }

    #[test]
    fn unknown_dose_fires_with_note() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                None,
                None,
                Some(1.0),
                Route::Oral,
            )
            .build();
        let f = findings(&r, "2024-03-01");
        assert_eq!(f.len(), 1);
        assert!(f[0]
            .summary
            .starts_with("Prednisone dose not computable since 2024-01-01"));
        assert!(f[0].notes.iter().any(|n| n.contains("not computable")));
    }

    #[test]
    fn boundary_day_90_91_of_a_short_course() {
        // 10 mg daily 2024-01-01 → 2024-03-30 (90 days, planned total 90): day 90 not qualifying.
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                Some("2024-03-30"),
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-03-31",
                Some("2024-04-29"),
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        assert!(findings(&r, "2024-03-29").is_empty());
        assert!(findings(&r, "2024-03-30").is_empty());
        assert_eq!(findings(&r, "2024-03-31").len(), 1);
    }

    #[test]
    fn stopped_order_without_end_is_reported_in_data_quality() {
        let mut r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Stopped,
                "2024-01-01",
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        r.medications[0].dosages[0].bounds = None;
        let ev = crate::engine::evaluate(&r, d("2024-06-01"), &Config::default());
        assert!(ev
            .outcome
            .data_quality
            .iter()
            .any(|q| q.problem.contains("without a recorded end")));
    }
}

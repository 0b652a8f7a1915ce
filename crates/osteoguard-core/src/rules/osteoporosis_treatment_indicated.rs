//! `osteoporosis-treatment-indicated` — knowledge.md §9, §4.2, §4.3.
//!
//! **Recommendation:** "Osteoporosis pharmacotherapy is indicated (risk category: X); choose agent
//! by shared decision-making (oral/IV bisphosphonate, denosumab, or PTH/PTHrP analogue)."
//!
//! **Source:** ACR-2022 (strong for moderate/high/very high risk; §1.8 verified abstract) and
//! WHO-1994 (osteoporosis T ≤ −2.5). Severity: high for category high/very high or clause (b);
//! moderate for category moderate.
//!
//! **Criteria:**
//! * inclusion [`no_active_therapy`]: active osteoporosis pharmacotherapy (§4.3) FALSE or UNKNOWN
//!   (UNKNOWN adds "confirm current therapy");
//! * inclusion, ANY of
//!   (a) [`gc_category_indicates_treatment`]: `gc_qualifying ∈ {TRUE, UNKNOWN}` and category ∈
//!   {moderate, high, very high};
//!   (b) [`who_osteoporosis_or_fragility_fracture`]: age ≥ `treatment_b_min_age` with
//!   `min_T_hip_spine ≤ t_high` or a prior hip/vertebral fragility fracture;
//! * exclusion [`suppressed_by_discontinuation`]: `denosumab-discontinuation-without-transition`
//!   fired (that finding carries the treatment recommendation);
//! * exclusion [`osteoporosis_agent_planned`]: an order of an osteoporosis agent is planned (§8;
//!   §4.3 v0.10 "ordered, not yet given" — the risk basis says so).
//!
//! **Data-insufficient item 9** (FRAX value out of range / unit unknown) is reported here, once,
//! where the risk category is consumed, whether or not the rule fires. Unfulfilled orders older
//! than the planned window (`TherapyFacts::stale_orders`) are reported as data-quality issues.
//!
//! Thresholds read: `t_high`, `treatment_b_min_age`, `adult_min_age`, `planned_order_window_days`
//! (stale-order text).

use crate::engine::{Ctx, InsufficientItem, Outcome};
use crate::facts::risk::RiskCategory;
use crate::finding::{DataQualityIssue, Evidence, Finding, FindingCode, Fixed, Severity};
use crate::model::FractureSite;
use crate::tri::Tri;

pub const CITATION: &str =
    "ACR-2022 (strong recommendation for moderate, high and very high risk); WHO-1994";

const SECTION: &str = "§9 osteoporosis-treatment-indicated; §4.2; §4.3";

/// The recommendation sentence for category `label`.
pub fn recommendation(label: &str) -> String {
    text!(
        "Osteoporosis pharmacotherapy is indicated (risk category: {label}); choose agent by shared decision-making (oral/IV bisphosphonate, denosumab, or PTH/PTHrP analogue)."
    )
}

/// Active therapy FALSE or UNKNOWN (§4.3).
pub fn no_active_therapy(ctx: &Ctx<'_>) -> bool {
    ctx.therapy.active != Tri::True
}

/// Clause (a).
pub fn gc_category_indicates_treatment(ctx: &Ctx<'_>) -> bool {
    ctx.gc.qualifying.maybe()
        && ctx.age().is_none_or(|a| a >= ctx.t().adult_min_age)
        && matches!(
            ctx.risk.category,
            RiskCategory::Moderate | RiskCategory::High | RiskCategory::VeryHigh
        )
}

/// Prior hip or vertebral fragility fracture (an augmentation implies a vertebral fracture).
fn hip_or_vertebral_fragility_fracture(ctx: &Ctx<'_>) -> Vec<Evidence> {
    let mut ev = Vec::new();
    for f in ctx.spine.fractures.iter().filter(|f| !f.traumatic) {
        ev.push(Evidence::new(
            &f.source,
            f.onset_for_windows.or(f.recorded),
            "vertebral fragility fracture",
        ));
    }
    for a in &ctx.spine.augmentations {
        ev.push(Evidence::new(
            &a.source,
            Some(a.date),
            text!("vertebral augmentation {}", a.level),
        ));
    }
    for o in ctx
        .spine
        .other_fractures
        .iter()
        .filter(|o| o.site == FractureSite::Hip && !o.traumatic)
    {
        ev.push(Evidence::new(&o.source, o.date, "hip fragility fracture"));
    }
    ev.extend(crate::facts::risk::followup_vertebral_fractures(
        ctx.record(),
    ));
    ev
}

/// Clause (b): age ≥ 50 with T ≤ −2.5 or a prior hip/vertebral fragility fracture.
pub fn who_osteoporosis_or_fragility_fracture(ctx: &Ctx<'_>) -> Option<Vec<Evidence>> {
    let t = ctx.t();
    if ctx.age().is_none_or(|a| a < t.treatment_b_min_age) {
        return None;
    }
    let mut ev = Vec::new();
    if let Some(s) = ctx.dxa.min_t.as_ref().filter(|s| s.value <= t.t_high) {
        ev.push(Evidence::new(
            &s.source,
            Some(s.date),
            text!(
                "{} T-score {} ≤ {}",
                s.site.label(),
                Fixed(s.value, 1),
                t.t_high
            ),
        ));
    }
    ev.extend(hip_or_vertebral_fragility_fracture(ctx));
    (!ev.is_empty()).then_some(ev)
}

pub fn suppressed_by_discontinuation(out: &Outcome) -> bool {
    out.fired(FindingCode::DenosumabDiscontinuationWithoutTransition)
}

pub fn osteoporosis_agent_planned(ctx: &Ctx<'_>) -> bool {
    !ctx.therapy.planned.is_empty()
}

fn report_side_items(ctx: &Ctx<'_>, out: &mut Outcome) {
    if !ctx.risk.frax_invalid.is_empty() {
        out.insufficient.push(InsufficientItem {
            item: 9,
            rule: "fracture-risk category (FRAX)".into(),
            missing: text!("valid FRAX value ({})", ctx.risk.frax_invalid.join("; ")),
            evidence: Vec::new(),
        });
    }
    for s in &ctx.therapy.stale_orders {
        out.data_quality.push(DataQualityIssue::new(
            s.source.as_str(),
            "MedicationRequest.status",
            text!(
                "{} order authored {} is older than {} days and was never given: treated as stale, not planned",
                s.agent.name(),
                s.date.map_or_else(|| "on an unknown date".to_string(), |d| d.to_string()),
                ctx.t().planned_order_window_days
            ),
        ));
    }
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    report_side_items(ctx, out);
    if !no_active_therapy(ctx) || suppressed_by_discontinuation(out) {
        return;
    }
    let a = gc_category_indicates_treatment(ctx);
    let b = who_osteoporosis_or_fragility_fracture(ctx);
    if !a && b.is_none() {
        return;
    }
    if osteoporosis_agent_planned(ctx) {
        // The decision has been taken (§4.3 v0.10): the risk basis says "ordered, not yet given".
        return;
    }
    let cat = ctx.risk.category;
    let severity = if b.is_some() || matches!(cat, RiskCategory::High | RiskCategory::VeryHigh) {
        Severity::High
    } else {
        Severity::Moderate
    };
    let mut reasons: Vec<String> = Vec::new();
    if a || cat != RiskCategory::Indeterminate {
        if ctx.risk.criteria_met.is_empty() {
            reasons.push(text!("risk category {}", cat.label()));
        } else {
            reasons.push(text!(
                "risk category {}: {}",
                cat.label(),
                ctx.risk.criteria_met.join("; ")
            ));
        }
    }
    if b.is_some() && !a {
        reasons.push(text!(
            "age ≥ {} with osteoporosis by T-score or a prior hip/vertebral fragility fracture",
            ctx.t().treatment_b_min_age
        ));
    }
    let therapy = match ctx.therapy.active {
        Tri::Unknown => "therapy status unknown — confirm current therapy",
        _ => "no active osteoporosis pharmacotherapy documented",
    };
    let summary = text!("{}; {therapy}", reasons.join("; "));
    let label = if cat == RiskCategory::Indeterminate {
        "not established; osteoporosis by WHO criteria or prior fragility fracture"
    } else {
        cat.label()
    };
    let mut rec = recommendation(label);
    if ctx.therapy.active == Tri::Unknown {
        rec.push_str(" Confirm current therapy first: the status of a documented osteoporosis medication is unknown.");
    }
    let mut f = Finding::new(
        FindingCode::OsteoporosisTreatmentIndicated,
        severity,
        summary,
        rec,
        CITATION,
        SECTION,
    )
    .with_trace(text!(
        "ACR-2022 risk table row {} (knowledge.md §3.2); clause (a) {a}, clause (b) {}",
        ctx.risk.row.as_deref().unwrap_or("-"),
        b.is_some()
    ))
    .with_evidence(ctx.risk.evidence.iter().cloned())
    .with_evidence(
        b.unwrap_or_default()
            .into_iter()
            .filter(|e| !ctx.risk.evidence.contains(e)),
    )
    .with_evidence(
        ctx.therapy
            .unknown_status
            .iter()
            .map(|s| Evidence::new(s, None, "medication status unknown")),
    )
    .with_evidence(ctx.therapy.unknown_fill_span.iter().map(|s| {
        Evidence::new(
            s,
            None,
            "oral bisphosphonate dispensed recently; days' supply or date not recorded",
        )
    }))
    .with_evidence([Evidence::derived(text!(
        "no active osteoporosis pharmacotherapy on {}",
        ctx.as_of()
    ))]);
    for note in ctx.risk.basis.iter().filter(|b| {
        b.starts_with("FRAX computed on treatment")
            || b.starts_with("FRAX omitted")
            || b.starts_with("T-score from")
            || b.starts_with("No fracture on record")
    }) {
        f = f.with_note(note.clone());
    }
    if ctx.gc.qualifying == Tri::Unknown && a {
        f = f
            .with_note(
                "Glucocorticoid dose not computable: treated as GC-qualifying (conservative).",
            )
            .with_trace("gc_qualifying UNKNOWN treated as qualifying (knowledge.md §2.6)");
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{
        Ingredient, MedicationStatus::*, ObservationKind, PatientRecord, Route, Sex,
    };
    use crate::testkit::{d, RecordBuilder};

    fn run(record: &PatientRecord, as_of: &str) -> crate::engine::Evaluation {
        crate::engine::evaluate(record, d(as_of), &Config::default())
    }

    fn finding(record: &PatientRecord, as_of: &str) -> Option<crate::finding::Finding> {
        run(record, as_of)
            .outcome
            .findings
            .into_iter()
            .find(|f| f.code == FindingCode::OsteoporosisTreatmentIndicated)
    }

    fn example5() -> PatientRecord {
        RecordBuilder::new("1962-05-01", Sex::Male)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-03-01",
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .observation(ObservationKind::FraxMof, "2024-04-01", 9.0)
            .observation(ObservationKind::FraxHip, "2024-04-01", 2.8)
            .build()
    }

    /// §9 (b) "a prior hip/vertebral fragility fracture" with §10.3: a vertebral fracture known
    /// only from a follow-up code (M80.08XD: 7th character D) still makes a patient ≥ 50
    /// eligible (found by the oragc differential), high severity.
    #[test]
    fn followup_coded_vertebral_fracture_meets_clause_b() {
        let mut r = RecordBuilder::new("1960-01-01", Sex::Female)
            .vertebral_fracture(crate::model::VertebralLevel::L1, "2023-01-01", "2023-01-02")
            .build();
        r.conditions[0].subsequent_encounter = true;
        let f = finding(&r, "2024-06-01").expect("fires");
        assert_eq!(f.severity, Severity::High);
        assert!(f
            .evidence
            .iter()
            .any(|e| e.detail.contains("follow-up code")));
    }

    #[test]
    fn example5_high() {
        let f = finding(&example5(), "2024-09-15").expect("fires");
        assert_eq!(f.severity, Severity::High);
        assert!(f.recommendation.contains("risk category: high"));
        assert!(
            f.summary.contains("GC-adjusted FRAX hip 3.36 %"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn example9_moderate_at_7_5_mg() {
        // Prednisolone 7.5 mg (no multiplier), FRAX 12 % / 1.8 % → moderate.
        let r = RecordBuilder::new("1958-11-11", Sex::Female)
            .daily_order(
                Ingredient::Prednisolone,
                Active,
                "2021-01-01",
                None,
                Some(7.5),
                Some(1.0),
                Route::Oral,
            )
            .observation(ObservationKind::FraxMof, "2024-10-01", 12.0)
            .observation(ObservationKind::FraxHip, "2024-10-01", 1.8)
            .statement(
                Ingredient::Alendronate,
                Stopped,
                "2020-01-01",
                Some("2022-06-01"),
            )
            .build();
        let f = finding(&r, "2024-10-15").expect("fires");
        assert_eq!(f.severity, Severity::Moderate);
        assert!(f.recommendation.contains("risk category: moderate"));
    }

    #[test]
    fn active_therapy_suppresses_and_unknown_says_confirm() {
        let mut r = example5();
        r.medications.extend(
            RecordBuilder::new("1962-05-01", Sex::Male)
                .daily_order(
                    Ingredient::Alendronate,
                    Active,
                    "2024-05-01",
                    None,
                    Some(70.0),
                    Some(1.0 / 7.0),
                    Route::Oral,
                )
                .build()
                .medications
                .into_iter()
                .map(|mut m| {
                    m.source = crate::model::SourceRef::new("MedicationRequest/aln");
                    m
                }),
        );
        assert!(finding(&r, "2024-09-15").is_none());
        let mut r = example5();
        r.medications.extend(
            RecordBuilder::new("1962-05-01", Sex::Male)
                .statement(Ingredient::Risedronate, Unknown, "2024-05-01", None)
                .build()
                .medications
                .into_iter()
                .map(|mut m| {
                    m.source = crate::model::SourceRef::new("MedicationStatement/ris");
                    m
                }),
        );
        let f = finding(&r, "2024-09-15").expect("fires when therapy is UNKNOWN");
        assert!(f.summary.contains("confirm current therapy"));
        assert!(f.recommendation.contains("Confirm current therapy"));
    }

    #[test]
    fn planned_order_suppresses_with_basis_text() {
        let mut r = example5();
        r.medications.extend(
            RecordBuilder::new("1962-05-01", Sex::Male)
                .order(Ingredient::ZoledronicAcid, Active, "2024-09-01")
                .build()
                .medications
                .into_iter()
                .map(|mut m| {
                    m.source = crate::model::SourceRef::new("MedicationRequest/zol");
                    m
                }),
        );
        let ev = run(&r, "2024-09-15");
        assert!(!ev
            .outcome
            .fired(FindingCode::OsteoporosisTreatmentIndicated));
        assert!(ev
            .risk
            .basis
            .iter()
            .any(|b| b.contains("ordered 2024-09-01, not yet given")));
    }

    #[test]
    fn not_gc_qualifying_and_no_who_criterion_does_not_fire() {
        // FRAX 25 % → high, but no GC and no T-score / fracture: clause (a) needs GC.
        let r = RecordBuilder::new("1950-01-01", Sex::Female)
            .observation(ObservationKind::FraxMof, "2024-04-01", 25.0)
            .build();
        let ev = run(&r, "2024-09-15");
        assert_eq!(ev.risk.category, RiskCategory::High);
        assert!(!ev
            .outcome
            .fired(FindingCode::OsteoporosisTreatmentIndicated));
    }

    #[test]
    fn mof_26_1_on_8_mg_is_very_high_and_high_severity() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                None,
                Some(8.0),
                Some(1.0),
                Route::Oral,
            )
            .observation(ObservationKind::FraxMof, "2024-04-01", 26.1)
            .build();
        let ev = run(&r, "2024-09-15");
        assert_eq!(ev.risk.category, RiskCategory::VeryHigh);
        let f = ev
            .outcome
            .findings
            .iter()
            .find(|f| f.code == FindingCode::OsteoporosisTreatmentIndicated)
            .expect("fires");
        assert_eq!(f.severity, Severity::High);
    }

    #[test]
    fn invalid_frax_reports_item_9_once() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .observation(ObservationKind::FraxMof, "2024-04-01", 130.0)
            .observation(ObservationKind::FraxHip, "2024-04-01", -1.0)
            .build();
        let ev = run(&r, "2024-09-15");
        assert_eq!(
            ev.outcome
                .insufficient
                .iter()
                .filter(|i| i.item == 9)
                .count(),
            1
        );
    }

    #[test]
    fn stale_order_goes_to_data_quality() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .order(Ingredient::ZoledronicAcid, Active, "2024-01-01")
            .build();
        let ev = run(&r, "2024-09-15");
        assert!(ev.therapy.planned.is_empty());
        assert!(ev
            .outcome
            .data_quality
            .iter()
            .any(|q| q.problem.contains("stale")));
    }
}

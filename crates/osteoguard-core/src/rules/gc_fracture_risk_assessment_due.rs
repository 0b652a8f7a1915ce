//! `gc-fracture-risk-assessment-due` — knowledge.md §9, §4.1, §4.4.
//!
//! **Recommendation:** "Fracture-risk assessment is due: DXA with vertebral fracture assessment
//! (or spine X-ray) and, if ≥40 years, FRAX with glucocorticoid adjustment."
//!
//! **Source:** ACR-2022 (initial assessment as soon as possible, at the latest within 6 months of
//! GC start; BMD every 1–2 years; §1.8 verified); strength: strong / good practice (§4.1).
//! Severity: moderate; high if clause (a) and `as_of − gc_start_date > baseline_dxa_days`.
//!
//! **Criteria:** [`in_scope`] (`gc_qualifying ∈ {TRUE, UNKNOWN}` and age ≥ 18) AND ANY of
//! * (a) [`no_baseline_dxa`]: no DXA dated in `[gc_start − dxa_lookback_before_gc_days, as_of]`
//!   and `as_of ≥ gc_start` — due `gc_start + baseline_dxa_days`;
//! * (b) [`dxa_out_of_date`]: latest DXA older than `dxa_repeat_days` — due latest + that;
//! * (c) [`frax_missing`]: age ≥ `frax_min_age`, no active osteoporosis therapy, no FRAX within
//!   `frax_max_age_days`, and category ≠ very high;
//! * (d) [`category_indeterminate`].
//!
//! "A DXA" is at least one BMD or T-/Z-score Observation (§4.3), i.e. `DxaFacts::dxa_dates`.
//!
//! **Data-insufficient items reported here** (each exactly once per evaluation):
//! * item 1 — a systemic GC record with a non-computable dose active within the last 365 days
//!   (`GcExposure::unknown_dose_records`), whether or not this rule fires;
//! * item 2 — GC-qualifying (TRUE or UNKNOWN) adult with category indeterminate (missing inputs
//!   from the risk facts).
//!
//! Thresholds read: `adult_min_age`, `frax_min_age`, `dxa_lookback_before_gc_days`,
//! `baseline_dxa_days`, `dxa_repeat_days`, `frax_max_age_days`, `gc_unknown_dose_lookback_days`.

use chrono::NaiveDate;

use crate::engine::{Ctx, InsufficientItem, Outcome};
use crate::facts::risk::RiskCategory;
use crate::finding::{days_in_words, Evidence, Finding, FindingCode, Severity, Shortest, Ymd};
use crate::model::{add_days, days};
use crate::tri::Tri;

pub const CITATION: &str = "ACR-2022 (initial and repeat fracture-risk assessment)";

/// The recommendation; the FRAX age limit comes from the threshold table.
pub fn recommendation(t: &crate::thresholds::Thresholds) -> String {
    text!(
        "Fracture-risk assessment is due: DXA with vertebral fracture assessment (or spine \
         X-ray) and, if ≥{} years, FRAX with glucocorticoid adjustment.",
        t.frax_min_age
    )
}

const SECTION: &str = "§9 gc-fracture-risk-assessment-due; §4.1; §4.4";

/// `gc_qualifying ∈ {TRUE, UNKNOWN}` and age ≥ 18 (unknown age treated as adult).
pub fn in_scope(ctx: &Ctx<'_>) -> bool {
    ctx.gc.qualifying.maybe() && ctx.age().is_none_or(|a| a >= ctx.t().adult_min_age)
}

fn latest_dxa(ctx: &Ctx<'_>) -> Option<NaiveDate> {
    ctx.dxa
        .latest_dxa
        .into_iter()
        .chain(ctx.dxa.dxa_dates.iter().copied())
        .filter(|d| *d <= ctx.as_of())
        .max()
}

/// Clause (a): no DXA in `[gc_start − lookback, as_of]` although the course has started.
/// Returns the baseline due date.
pub fn no_baseline_dxa(ctx: &Ctx<'_>) -> Option<NaiveDate> {
    let start = ctx.gc.gc_start_date?;
    if ctx.as_of() < start {
        return None;
    }
    let from = add_days(start, -ctx.t().dxa_lookback_before_gc_days);
    let has = ctx
        .dxa
        .dxa_dates
        .iter()
        .chain(ctx.dxa.latest_dxa.iter())
        .any(|d| *d >= from && *d <= ctx.as_of());
    (!has).then(|| add_days(start, ctx.t().baseline_dxa_days))
}

/// Clause (b): the latest DXA is older than `dxa_repeat_days`. Returns its due date.
pub fn dxa_out_of_date(ctx: &Ctx<'_>) -> Option<(NaiveDate, NaiveDate)> {
    let latest = latest_dxa(ctx)?;
    (days(latest, ctx.as_of()) > ctx.t().dxa_repeat_days)
        .then(|| (latest, add_days(latest, ctx.t().dxa_repeat_days)))
}

/// Clause (c): ≥ 40 y, no active therapy, no FRAX within 365 days, category not very high.
pub fn frax_missing(ctx: &Ctx<'_>) -> bool {
    ctx.age().is_some_and(|a| a >= ctx.t().frax_min_age)
        && ctx.therapy.active != Tri::True
        && ctx.risk.gc_frax_mof.is_none()
        && ctx.risk.gc_frax_hip.is_none()
        && ctx.risk.category != RiskCategory::VeryHigh
}

/// Clause (d).
pub fn category_indeterminate(ctx: &Ctx<'_>) -> bool {
    ctx.risk.category == RiskCategory::Indeterminate
}

/// Data-insufficient items 1 and 2 (see the module doc).
fn report_insufficient(ctx: &Ctx<'_>, out: &mut Outcome) {
    let gc = &ctx.gc;
    if !gc.unknown_dose_records.is_empty() {
        let refs: Vec<&str> = gc.unknown_dose_records.iter().map(|s| s.as_str()).collect();
        out.insufficient.push(InsufficientItem {
            item: 1,
            rule: "glucocorticoid exposure (gc-bone-protection, gc-fracture-risk-assessment-due)"
                .into(),
            missing: text!(
                "glucocorticoid dose (not computable for {} within the last {} days)",
                refs.join(", "),
                ctx.t().gc_unknown_dose_lookback_days
            ),
            evidence: gc
                .unknown_dose_records
                .iter()
                .map(|s| Evidence::new(s, None, "systemic glucocorticoid, dose not computable"))
                .collect(),
        });
    }
    if in_scope(ctx) && category_indeterminate(ctx) && ctx.age().is_some() {
        let missing = if ctx.risk.missing.is_empty() {
            "DXA, FRAX, fracture history".to_string()
        } else {
            ctx.risk.missing.join(", ")
        };
        out.insufficient.push(InsufficientItem {
            item: 2,
            rule: "fracture-risk category (GC-qualifying patient)".into(),
            missing,
            evidence: vec![Evidence::derived("fracture-risk category indeterminate")],
        });
    }
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    report_insufficient(ctx, out);
    if !in_scope(ctx) {
        return;
    }
    let t = ctx.t();
    let as_of = ctx.as_of();
    let a = no_baseline_dxa(ctx);
    let b = dxa_out_of_date(ctx);
    let c = frax_missing(ctx);
    let dd = category_indeterminate(ctx);
    if a.is_none() && b.is_none() && !c && !dd {
        return;
    }
    let gc_days = ctx.gc.gc_start_date.map(|s| days(s, as_of));
    let severity = if a.is_some() && gc_days.is_some_and(|n| n > t.baseline_dxa_days) {
        Severity::High
    } else {
        Severity::Moderate
    };

    let mut reasons: Vec<String> = Vec::new();
    let mut evidence: Vec<Evidence> = ctx.gc.evidence.clone();
    if let (Some(due), Some(start)) = (a, ctx.gc.gc_start_date) {
        reasons.push(text!(
            "no DXA since {} (baseline due by {}, {} after glucocorticoid start)",
            Ymd(add_days(start, -t.dxa_lookback_before_gc_days)),
            Ymd(due),
            days_in_words(t.baseline_dxa_days)
        ));
    }
    if let Some((latest, due)) = b {
        reasons.push(text!(
            "latest DXA {} is {} days old (repeat due {})",
            Ymd(latest),
            days(latest, as_of),
            Ymd(due)
        ));
        evidence.push(Evidence::derived(text!(
            "latest DXA result dated {}",
            Ymd(latest)
        )));
    }
    if c {
        reasons.push(text!(
            "no FRAX within {} days and no active osteoporosis therapy",
            t.frax_max_age_days
        ));
    }
    if dd {
        reasons.push(if ctx.risk.missing.is_empty() {
            "fracture-risk category indeterminate".to_string()
        } else {
            text!(
                "fracture-risk category indeterminate (missing: {})",
                ctx.risk.missing.join(", ")
            )
        });
    }
    let since = match gc_days {
        Some(n) => text!(" ({n} days)"),
        None => String::new(),
    };
    let summary = text!(
        "{}{since}; {}",
        super::gc_bone_protection::gc_phrase(ctx),
        reasons.join("; ")
    );
    let due = a.or(b.map(|(_, due)| due));
    let mut f = Finding::new(
        FindingCode::GcFractureRiskAssessmentDue,
        severity,
        summary,
        recommendation(t),
        CITATION,
        SECTION,
    )
    .with_evidence(evidence)
    .with_due(due);
    if ctx.gc.physiologic_replacement {
        f = f.with_note(text!(
            "Dose is in the physiological-replacement range; GC cannot be stopped (adrenal insufficiency). Over-replacement (>{} mg PEq/day) increases bone risk — review dose.",
            Shortest(t.gc_physiologic_max_peq_mg)
        ));
    }
    if ctx.gc.qualifying == Tri::Unknown {
        f = f
            .with_note(
                "Glucocorticoid dose not computable: treated as qualifying for assessment (conservative).",
            )
            .with_trace("gc_qualifying UNKNOWN treated as qualifying (knowledge.md §2.6)");
    }
    if dd {
        f.inputs_missing.extend(ctx.risk.missing.iter().cloned());
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
            .find(|f| f.code == FindingCode::GcFractureRiskAssessmentDue)
    }

    /// Example 5: prednisone 10 mg daily from 2024-03-01 (open-ended), FRAX 9.0 / 2.8 %,
    /// calcium + D, no DXA.
    fn example5() -> PatientRecord {
        let mut r = RecordBuilder::new("1962-05-01", Sex::Male)
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
            .statement(Ingredient::Calcium, Active, "2024-03-01", None)
            .build();
        r.medications[1]
            .ingredients
            .push(Ingredient::Cholecalciferol);
        r
    }

    #[test]
    fn example5_high_after_day_182() {
        let f = finding(&example5(), "2024-09-15").expect("fires");
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.due, Some(d("2024-08-30")));
        assert!(
            f.summary.contains("no DXA since 2023-03-02"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn severity_boundary_at_182_days() {
        // gc_start 2024-03-01: day 182 after = 2024-08-30 (moderate), 183 = 2024-08-31 (high).
        assert_eq!(
            finding(&example5(), "2024-08-29").unwrap().severity,
            Severity::Moderate
        );
        assert_eq!(
            finding(&example5(), "2024-08-30").unwrap().severity,
            Severity::Moderate
        );
        assert_eq!(
            finding(&example5(), "2024-08-31").unwrap().severity,
            Severity::High
        );
    }

    #[test]
    fn example6_moderate_before_day_182() {
        let r = crate::testkit::example_6_record();
        let ev = run(&r, "2024-09-30");
        let f = ev
            .outcome
            .findings
            .iter()
            .find(|f| f.code == FindingCode::GcFractureRiskAssessmentDue)
            .expect("fires");
        assert_eq!(f.severity, Severity::Moderate);
        assert_eq!(f.due, Some(d("2024-11-30")));
        // Category very high (B1): no item 2.
        assert!(ev.outcome.insufficient.iter().all(|i| i.item != 2));
    }

    #[test]
    fn not_in_scope_without_gc() {
        let r = RecordBuilder::new("1945-02-02", Sex::Female).build();
        let ev = run(&r, "2024-09-20");
        assert!(!ev.outcome.fired(FindingCode::GcFractureRiskAssessmentDue));
        assert!(ev.outcome.insufficient.is_empty());
    }

    #[test]
    fn dxa_within_window_satisfies_clause_a_and_b_boundary() {
        // DXA (a T-score) 365 days before GC start counts as baseline; 366 does not.
        let base = |dxa: &str| {
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
                .observation(
                    ObservationKind::TScore(crate::model::DxaSite::TotalHip),
                    dxa,
                    -1.5,
                )
                .observation(ObservationKind::FraxMof, "2024-04-01", 9.0)
                .observation(ObservationKind::FraxHip, "2024-04-01", 2.8)
                .build()
        };
        let ev = run(&base("2023-03-02"), "2024-09-15");
        assert_eq!(ev.dxa.dxa_dates, vec![d("2023-03-02")]);
        let f = ev
            .outcome
            .findings
            .iter()
            .find(|f| f.code == FindingCode::GcFractureRiskAssessmentDue);
        assert!(f.is_none(), "{f:?}");
        let f = finding(&base("2023-03-01"), "2024-09-15").expect("clause (a)");
        assert_eq!(f.severity, Severity::High);
        // Clause (b): the DXA of 2023-03-02 is 730 days old on 2025-03-01, 731 on 2025-03-02
        // (FRAX then stale: renew it to isolate clause (b)).
        let mut r = base("2023-03-02");
        for o in &mut r.observations {
            if matches!(o.kind, ObservationKind::FraxMof | ObservationKind::FraxHip) {
                o.effective = Some(d("2025-01-01").and_hms_opt(12, 0, 0).unwrap());
                o.visible = Some(d("2025-01-01"));
            }
        }
        assert!(finding(&r, "2025-03-01").is_none());
        let f = finding(&r, "2025-03-02").expect("clause (b)");
        assert_eq!(f.due, Some(d("2025-03-01")));
    }

    #[test]
    fn clause_c_needs_age_40_and_no_frax() {
        // Qualifying, no FRAX, FRAX-independent category (T-score moderate would need the DXA
        // facts); use a very-high GC dose instead to show (c) is off when very high.
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                None,
                Some(40.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        let ev = run(&r, "2024-06-01");
        assert_eq!(ev.risk.category, RiskCategory::VeryHigh);
        let f = ev
            .outcome
            .findings
            .iter()
            .find(|f| f.code == FindingCode::GcFractureRiskAssessmentDue)
            .expect("clause (a)");
        assert!(!f.summary.contains("no FRAX"), "{}", f.summary);
        // 10 mg: category from FRAX only → without FRAX indeterminate: (c) and (d), item 2.
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
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
        let ev = run(&r, "2024-06-01");
        let f = ev
            .outcome
            .findings
            .iter()
            .find(|f| f.code == FindingCode::GcFractureRiskAssessmentDue)
            .expect("fires");
        assert!(f.summary.contains("no FRAX within 365 days"));
        assert!(f.summary.contains("indeterminate"));
        assert_eq!(
            ev.outcome
                .insufficient
                .iter()
                .filter(|i| i.item == 2)
                .count(),
            1
        );
    }

    #[test]
    fn unknown_dose_reports_item_1_once() {
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
            .daily_order(
                Ingredient::Dexamethasone,
                Active,
                "2024-02-01",
                None,
                Some(4.0),
                None,
                Route::Oral,
            )
            .build();
        let ev = run(&r, "2024-06-01");
        let items: Vec<_> = ev
            .outcome
            .insufficient
            .iter()
            .filter(|i| i.item == 1)
            .collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].evidence.len(), 2);
        let f = ev
            .outcome
            .findings
            .iter()
            .find(|f| f.code == FindingCode::GcFractureRiskAssessmentDue)
            .expect("qualifying UNKNOWN is in scope");
        assert!(f.notes.iter().any(|n| n.contains("not computable")));
    }
}

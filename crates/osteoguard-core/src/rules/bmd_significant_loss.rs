//! `bmd-significant-loss` — knowledge.md §6.2, §9.
//!
//! **Recommendation:** "Significant BMD loss at {site} ({Δ}); review adherence, secondary causes,
//! glucocorticoid dose and treatment efficacy."
//! **Source:** ISCD (LSC = 2.77 × precision error, verified; default LSC values UNVERIFIED,
//! §12.15). Strength: professional-society position (measurement principle).
//!
//! **Criteria** (facts in [`crate::facts::dxa`]):
//! * inclusion: [`significant_loss`] — the latest two comparable scans at one site, at least
//!   `bmd_min_interval_days` apart (§6.2 comparability: same site, like hip side, same device,
//!   lumbar spine not confounded by fracture/cement), show a BMD decrease ≥ LSC (facility LSC,
//!   else the site default), or — T-scores only — a T-score decrease ≥ `t_drop_significant`;
//! * severity high: [`later_scan_osteoporotic`] (later T ≤ `t_high`) or [`large_loss`]
//!   (≥ `lsc_large_multiple` × LSC, or ≥ `t_drop_large` T when T-based); else moderate;
//! * data-insufficient item 6: [`comparison_refused`] — ≥ 2 scans exist but the latest cannot be
//!   validly compared with any earlier scan ≥ 180 days before it (§9 row `data-insufficient`).
//!
//! **Thresholds:** `lsc_spine_pct`, `lsc_total_hip_pct`, `lsc_femoral_neck_pct`,
//! `t_drop_significant`, `t_drop_large`, `lsc_large_multiple`, `bmd_min_interval_days`, `t_high`.

use crate::engine::{Ctx, Outcome};
use crate::facts::dxa::BmdChange;
use crate::finding::{Finding, FindingCode, Severity};

pub const CITATION: &str = "ISCD";
const SECTION: &str = "§6.2; §9 bmd-significant-loss";

/// The change between the latest two comparable scans, when it is a significant loss.
pub fn significant_loss<'a>(ctx: &'a Ctx<'_>) -> Option<&'a BmdChange> {
    ctx.dxa
        .latest_change
        .as_ref()
        .filter(|c| c.significant_loss)
}

/// The later scan's T-score at the site is in the osteoporosis range (≤ −2.5).
pub fn later_scan_osteoporotic(change: &BmdChange, ctx: &Ctx<'_>) -> bool {
    change.later_t.is_some_and(|t| t <= ctx.t().t_high)
}

/// Loss ≥ 2 × LSC (or ≥ 1.0 T-score when T-based); computed in the DXA facts.
pub fn large_loss(change: &BmdChange) -> bool {
    change.large_loss
}

/// ≥ 2 scans, an earlier one ≥ 180 days before the latest, but no valid comparison.
pub fn comparison_refused(ctx: &Ctx<'_>) -> bool {
    ctx.dxa.comparison_possible == Some(false)
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    if comparison_refused(ctx) {
        let why = if ctx.dxa.comparison_notes.is_empty() {
            "no comparable earlier scan".to_string()
        } else {
            ctx.dxa.comparison_notes.join("; ")
        };
        out.insufficient(
            6,
            FindingCode::BmdSignificantLoss.as_str(),
            format!(
                "valid serial DXA comparison for the latest scan ({}): {why}",
                ctx.dxa
                    .latest_dxa
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
        );
    }
    let Some(change) = significant_loss(ctx) else {
        return;
    };
    let severity = if later_scan_osteoporotic(change, ctx) || large_loss(change) {
        Severity::High
    } else {
        Severity::Moderate
    };
    let delta = match (change.pct_change, change.approximate_t_based) {
        (Some(p), false) => format!("{p:+.1} %"),
        _ => change
            .t_change
            .map(|t| format!("T-score {t:+.1}"))
            .unwrap_or_default(),
    };
    let mut summary = change.describe();
    if let Some(t) = change.later_t {
        summary.push_str(&format!("; later T {t:.1}"));
    }
    let mut f = Finding::new(
        FindingCode::BmdSignificantLoss,
        severity,
        summary,
        format!(
            "Significant BMD loss at {} ({delta}); review adherence, secondary causes, \
             glucocorticoid dose and treatment efficacy.",
            change.site.label()
        ),
        CITATION,
        SECTION,
    )
    .with_evidence(change.evidence.iter().cloned());
    if change.approximate_t_based {
        f = f.with_note(
            "approximate_t_based: no BMD (g/cm²) at both scans; a T-score decrease ≥ 0.5 is taken \
             as ≈ the least significant change (§6.2)",
        );
    } else if change
        .evidence
        .iter()
        .all(|e| !e.detail.starts_with("facility LSC"))
    {
        f = f.with_note(
            "Default least significant change used (facility LSC not supplied; ISCD defaults \
             UNVERIFIED, §12.15)",
        );
    }
    for n in &ctx.dxa.comparison_notes {
        f = f.with_note(format!("Not compared: {n}"));
    }
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::{evaluate as run, Evaluation};
    use crate::model::{DxaSite, ObservationKind::*, ProcedureKind, Sex, VertebralLevel::*};
    use crate::testkit::{d, RecordBuilder};

    fn patient() -> RecordBuilder {
        RecordBuilder::new("1958-11-11", Sex::Female)
    }

    fn eval(b: RecordBuilder, as_of: &str) -> Evaluation {
        run(&b.build(), d(as_of), &Config::default())
    }

    fn severity(e: &Evaluation) -> Option<Severity> {
        e.outcome
            .get(FindingCode::BmdSignificantLoss)
            .map(|f| f.severity)
    }

    fn item6(e: &Evaluation) -> bool {
        e.outcome.insufficient.iter().any(|i| i.item == 6)
    }

    fn hip(b: RecordBuilder, date: &str, bmd: f64, t: f64) -> RecordBuilder {
        b.observation(Bmd(DxaSite::TotalHip), date, bmd)
            .with_last_observation(|o| o.device = Some("GE Lunar".into()))
            .observation(TScore(DxaSite::TotalHip), date, t)
            .with_last_observation(|o| o.device = Some("GE Lunar".into()))
    }

    #[test]
    fn example_9_hip_loss_six_percent_is_moderate() {
        let b = hip(
            hip(patient(), "2022-10-01", 0.800, -1.6),
            "2024-10-01",
            0.752,
            -2.0,
        );
        let e = eval(b, "2024-10-15");
        assert_eq!(severity(&e), Some(Severity::Moderate));
        let f = e.outcome.get(FindingCode::BmdSignificantLoss).cloned();
        let f = f.expect("fires");
        assert!(
            f.recommendation.contains("total hip (-6.0 %)"),
            "{}",
            f.recommendation
        );
        assert_eq!(f.evidence.len(), 2);
        assert!(!item6(&e));
    }

    #[test]
    fn loss_just_below_lsc_does_not_fire() {
        // −4.9 % < 5.0 % LSC.
        let b = hip(
            hip(patient(), "2022-10-01", 1.000, -1.0),
            "2024-10-01",
            0.951,
            -1.4,
        );
        assert_eq!(severity(&eval(b, "2024-10-15")), None);
        // −5.0 % exactly fires.
        let b = hip(
            hip(patient(), "2022-10-01", 1.000, -1.0),
            "2024-10-01",
            0.950,
            -1.4,
        );
        assert_eq!(severity(&eval(b, "2024-10-15")), Some(Severity::Moderate));
    }

    #[test]
    fn high_when_twice_lsc_or_later_t_osteoporotic() {
        // −10.0 % = 2 × 5.0 %.
        let b = hip(
            hip(patient(), "2022-10-01", 1.000, -1.0),
            "2024-10-01",
            0.900,
            -1.8,
        );
        assert_eq!(severity(&eval(b, "2024-10-15")), Some(Severity::High));
        // −6 % but later T −2.5.
        let b = hip(
            hip(patient(), "2022-10-01", 0.800, -2.0),
            "2024-10-01",
            0.752,
            -2.5,
        );
        assert_eq!(severity(&eval(b, "2024-10-15")), Some(Severity::High));
    }

    #[test]
    fn dxa_interval_179_vs_180_days() {
        let b = |later: &str| hip(hip(patient(), "2024-01-01", 0.9, -1.5), later, 0.8, -2.3);
        let e = eval(b("2024-06-28"), "2024-07-01"); // 179 d
        assert_eq!(severity(&e), None);
        assert!(!item6(&e));
        let e = eval(b("2024-06-29"), "2024-07-01"); // 180 d
        assert_eq!(severity(&e), Some(Severity::High));
    }

    #[test]
    fn t_score_fallback_half_and_one_sd() {
        let b = |later: f64| {
            patient()
                .observation(TScore(DxaSite::LumbarSpine), "2021-06-15", -1.0)
                .observation(TScore(DxaSite::LumbarSpine), "2022-06-15", later)
        };
        assert_eq!(severity(&eval(b(-1.4), "2022-07-01")), None);
        let e = eval(b(-1.5), "2022-07-01");
        assert_eq!(severity(&e), Some(Severity::Moderate));
        let f = e.outcome.get(FindingCode::BmdSignificantLoss).cloned();
        assert!(f.is_some_and(|f| f.notes.iter().any(|n| n.contains("approximate_t_based"))));
        assert_eq!(severity(&eval(b(-2.0), "2022-07-01")), Some(Severity::High));
    }

    #[test]
    fn seed_example_1_no_loss_and_pair_valid() {
        let b = patient()
            .observation(TScore(DxaSite::LumbarSpine), "2021-06-15", -2.7)
            .observation(TScore(DxaSite::LumbarSpine), "2022-06-15", -2.7)
            .vertebral_fracture(L4, "2022-08-01", "2022-08-01")
            .procedure(ProcedureKind::Vertebroplasty, &[L4], "2022-08-16");
        let e = eval(b, "2022-12-01");
        assert_eq!(severity(&e), None);
        assert!(!item6(&e));
    }

    #[test]
    fn seed_example_3_spine_confounded_gives_item_6() {
        let b = patient()
            .observation(TScore(DxaSite::LumbarSpine), "2021-06-15", -2.7)
            .observation(TScore(DxaSite::LumbarSpine), "2022-06-15", -2.7)
            .vertebral_fracture(L4, "2022-08-01", "2022-08-01")
            .procedure(ProcedureKind::Vertebroplasty, &[L4], "2022-08-16")
            .vertebral_fracture(L1, "2023-07-15", "2023-07-17")
            .observation(TScore(DxaSite::LumbarSpine), "2023-07-20", -3.7)
            .observation(TScore(DxaSite::TotalHip), "2023-07-20", -3.8);
        let e = eval(b, "2023-08-23");
        assert_eq!(severity(&e), None);
        assert!(item6(&e));
        let i = e.outcome.insufficient.iter().find(|i| i.item == 6);
        assert!(i.is_some_and(|i| i.missing.contains("confounded") && i.missing.contains("L1, L4")));
    }
}

//! `bmd-significant-loss` — knowledge.md §6.2, §9.
//!
//! **Recommendation:** "Significant BMD loss at {site} ({Δ}); review adherence, secondary causes,
//! glucocorticoid dose and treatment efficacy."
//! **Source:** ISCD (LSC = 2.77 × precision error, verified; default LSC values UNVERIFIED,
//! §12.15). Strength: professional-society position (measurement principle).
//!
//! **Criteria** (facts in [`crate::facts::dxa`]):
//! * inclusion: [`significant_losses`] — the latest two comparable scans at a site, at least
//!   `bmd_min_interval_days` apart (§6.2 comparability: same site, like hip side, same device,
//!   lumbar spine not confounded by fracture/cement), show a BMD decrease ≥ LSC (facility LSC,
//!   else the site default), or — T-scores only — a T-score decrease ≥ `t_drop_significant`;
//! * severity ([`site_severity`], v0.10.3: judged at every site with a significant loss, the
//!   highest wins, one finding names all such sites): high if [`later_scan_osteoporotic`]
//!   (later T ≤ `t_high`) or [`large_loss`] (≥ `lsc_large_multiple` × LSC, or ≥ `t_drop_large` T
//!   when T-based); else moderate;
//! * data-insufficient item 6: [`comparison_refused`] — ≥ 2 scans exist but the latest cannot be
//!   validly compared with any earlier scan ≥ 180 days before it (§9 row `data-insufficient`).
//!
//! **Thresholds:** `lsc_spine_pct`, `lsc_total_hip_pct`, `lsc_femoral_neck_pct`,
//! `t_drop_significant`, `t_drop_large`, `lsc_large_multiple`, `bmd_min_interval_days`, `t_high`.

use crate::engine::{Ctx, Outcome};
use crate::facts::dxa::BmdChange;
use crate::finding::{Finding, FindingCode, Fixed, Severity};

pub const CITATION: &str = "ISCD";
const SECTION: &str = "§6.2; §9 bmd-significant-loss";

/// Every site whose latest two comparable scans show a significant loss (v0.10.3: the rule is
/// judged at each such site), in reporting priority (lumbar spine, total hip, femoral neck).
pub fn significant_losses<'a>(ctx: &'a Ctx<'_>) -> Vec<&'a BmdChange> {
    ctx.dxa
        .changes
        .iter()
        .filter(|c| c.significant_loss)
        .collect()
}

/// The later scan's T-score at the site is in the osteoporosis range (≤ −2.5).
pub fn later_scan_osteoporotic(change: &BmdChange, ctx: &Ctx<'_>) -> bool {
    change.later_t.is_some_and(|t| t <= ctx.t().t_high)
}

/// Loss ≥ 2 × LSC (or ≥ 1.0 T-score when T-based); computed in the DXA facts.
pub fn large_loss(change: &BmdChange) -> bool {
    change.large_loss
}

/// Severity at one site with a significant loss (§9).
pub fn site_severity(change: &BmdChange, ctx: &Ctx<'_>) -> Severity {
    if later_scan_osteoporotic(change, ctx) || large_loss(change) {
        Severity::High
    } else {
        Severity::Moderate
    }
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
            text!(
                "valid serial DXA comparison for the latest scan ({}): {why}",
                ctx.dxa
                    .latest_dxa
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
        );
    }
    let losses = significant_losses(ctx);
    let Some(severity) = losses.iter().map(|c| site_severity(c, ctx)).max() else {
        return;
    };
    let delta = |c: &BmdChange| match (c.pct_change, c.approximate_t_based) {
        (Some(p), false) => text!("{p:+.1} %"),
        _ => c
            .t_change
            .map(|t| text!("T-score {t:+.1}"))
            .unwrap_or_default(),
    };
    let sites: Vec<String> = losses
        .iter()
        .map(|c| text!("{} ({})", c.site.label(), delta(c)))
        .collect();
    let summary: Vec<String> = losses
        .iter()
        .map(|c| {
            let mut s = c.describe();
            if let Some(t) = c.later_t {
                s.push_str(&text!("; later T {}", Fixed(t, 1)));
            }
            s
        })
        .collect();
    let mut f = Finding::new(
        FindingCode::BmdSignificantLoss,
        severity,
        summary.join(". "),
        text!(
            "Significant BMD loss at {}; review adherence, secondary causes, \
             glucocorticoid dose and treatment efficacy.",
            join_and(&sites)
        ),
        CITATION,
        SECTION,
    )
    .with_evidence(losses.iter().flat_map(|c| c.evidence.iter().cloned()));
    for c in &losses {
        f = f.with_trace(text!(
            "§9 bmd-significant-loss at {}: {:?}",
            c.site.label(),
            site_severity(c, ctx)
        ));
    }
    if losses.iter().any(|c| c.approximate_t_based) {
        f = f
            .with_note(text!(
                "Approximate: no BMD (g/cm²) at both scans; a T-score decrease of at least {} is \
                 taken as the least significant change.",
                ctx.t().t_drop_significant
            ))
            .with_trace("approximate_t_based (§6.2 T-score fallback)");
    } else if losses.iter().any(|c| {
        c.evidence
            .iter()
            .all(|e| !e.detail.starts_with("facility LSC"))
    }) {
        f = f
            .with_note(
                "Default least significant change used (the facility's LSC was not supplied).",
            )
            .with_trace("default LSC: ISCD defaults UNVERIFIED (§6.2, §12.15)");
    }
    for n in &ctx.dxa.comparison_notes {
        f = f.with_note(text!("Not compared: {n}"));
    }
    out.push(f);
}

/// "a", "a and b", "a, b and c".
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => text!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::{evaluate as run, Evaluation};
    use crate::model::{DxaSite, ObservationKind::*, ProcedureKind, Sex, Side, VertebralLevel::*};
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

    /// §6.2: "Lumbar spine values that include fractured … vertebrae are invalid for serial
    /// comparison"; §10.3: a follow-up code (7th character D/G/K/S) is no new fracture event, but
    /// the vertebra is fractured. An L2 fracture known only from `M80.08XD` with onset before the
    /// later scan refuses the spine pair (item 6, no loss claimed from a confounded spine); dated
    /// after the later scan it does not, and undated (age unknown) it does. Found by the oradm2
    /// differential (the engine compared the spine across a follow-up-coded L2 fracture).
    #[test]
    fn followup_coded_lumbar_fracture_confounds_the_spine() {
        let with_followup = |onset: Option<&str>| {
            let mut r = patient()
                .observation(Bmd(DxaSite::LumbarSpine), "2021-01-10", 0.950)
                .observation(Bmd(DxaSite::LumbarSpine), "2022-01-10", 0.880)
                .condition(
                    crate::model::ConditionKind::Fracture(crate::model::FractureSite::Vertebral(
                        crate::model::VertebralLocation::Level(L2),
                    )),
                    onset.map(|o| (o, o)),
                    onset,
                )
                .build();
            let c = r.conditions.last_mut().expect("the condition");
            c.subsequent_encounter = true;
            if onset.is_none() {
                c.visible = None;
            }
            run(&r, d("2022-06-01"), &Config::default())
        };
        // Onset before the later scan: refused (item 6), no loss from the spine.
        let e = with_followup(Some("2021-06-01"));
        assert_eq!(severity(&e), None);
        assert!(item6(&e));
        // Undated: age unknown, refused too.
        let e = with_followup(None);
        assert_eq!(severity(&e), None);
        assert!(item6(&e));
        // Dated after the later scan: the pair stands (−7.4 % ≥ 5.3 %, < 2 × LSC).
        let e = with_followup(Some("2022-03-01"));
        assert_eq!(severity(&e), Some(Severity::Moderate));
        assert!(!item6(&e));
    }

    /// §6.2 "If the facility's LSC is supplied (Observation component …), use it": an LSC that is
    /// a component of the lumbar-spine BMD result is the spine's LSC. The femoral-neck pair of the
    /// same day keeps its own default (6.9 %): a 6.0 % neck loss is no significant loss, whereas
    /// with the spine's 2.5 % it would read as "≥ 2× LSC" (high). Found by the oradm2
    /// differential.
    #[test]
    fn an_lsc_component_of_another_site_is_not_this_sites_lsc() {
        let mut r = patient()
            .observation(Bmd(DxaSite::FemoralNeck), "2022-01-10", 0.700)
            .observation(Bmd(DxaSite::FemoralNeck), "2023-01-10", 0.658)
            .observation(Bmd(DxaSite::LumbarSpine), "2023-01-10", 0.950)
            .observation(Lsc, "2023-01-10", 2.5)
            .build();
        // The LSC is a component of the spine result: it shares the spine Observation's reference.
        let n = r.observations.len();
        r.observations[n - 1].source = r.observations[n - 2].source.clone();
        let e = run(&r, d("2023-02-01"), &Config::default());
        assert_eq!(severity(&e), None);
        // A standalone LSC Observation of that day still applies (−6.0 % ≥ 2 × 2.5 %: high).
        let r = patient()
            .observation(Bmd(DxaSite::FemoralNeck), "2022-01-10", 0.700)
            .observation(Bmd(DxaSite::FemoralNeck), "2023-01-10", 0.658)
            .observation(Lsc, "2023-01-10", 2.5)
            .build();
        let e = run(&r, d("2023-02-01"), &Config::default());
        assert_eq!(severity(&e), Some(Severity::High));
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

    /// §9 `bmd-significant-loss`: "latest two DXA at the same site ≥ 180 days apart", v0.10.3
    /// "evaluated at every site". A site not re-measured at the most recent DXA (here the hip,
    /// when the latest scan measured only the spine) is judged on its own latest two scans;
    /// item 6 still concerns the most recent DXA (differential class B3, docs/differential-dmab.md).
    #[test]
    fn site_not_remeasured_at_latest_scan_is_judged_on_its_own_latest_pair() {
        // Hip 0.800 → 0.752 (−6.0 % ≥ 5.0 % LSC); a later spine-only scan with no earlier spine.
        let b = hip(
            hip(patient(), "2022-10-01", 0.800, -1.6),
            "2023-10-01",
            0.752,
            -2.0,
        )
        .observation(Bmd(DxaSite::LumbarSpine), "2024-10-01", 0.950)
        .with_last_observation(|o| o.device = Some("GE Lunar".into()));
        let e = eval(b, "2024-10-15");
        assert_eq!(severity(&e), Some(Severity::Moderate));
        let f = e.outcome.get(FindingCode::BmdSignificantLoss).cloned();
        assert!(f.is_some_and(|f| f.recommendation.contains("total hip")));
        // The spine scan of 2024-10-01 has no earlier spine scan to compare with: item 6.
        assert!(item6(&e));
        // The same hip pair with a later spine-only scan 100 days after the hip: still judged.
        let b = hip(
            hip(patient(), "2022-10-01", 0.800, -1.6),
            "2023-10-01",
            0.752,
            -2.6,
        )
        .observation(TScore(DxaSite::LumbarSpine), "2024-01-09", -1.0);
        assert_eq!(severity(&eval(b, "2024-02-01")), Some(Severity::High));
    }

    /// §9 "high if the later scan T ≤ −2.5"; §6.3 "both left and right hip on the same date: use
    /// the lower T-score for diagnosis; for monitoring compare like with like (mean of both)".
    /// Differential class B4 (docs/differential-dmab.md).
    #[test]
    fn later_t_of_both_hips_is_the_lower_side() {
        let side = |b: RecordBuilder, date: &str, s: Side, t: f64| {
            b.observation(TScore(DxaSite::TotalHip), date, t)
                .with_last_observation(|o| o.side = Some(s))
        };
        // Mean T −1.5 → −2.35 (ΔT −0.85 ≥ 0.5: significant, < 1.0: not large); lower side −2.5.
        let b = side(patient(), "2023-03-30", Side::Left, -1.6);
        let b = side(b, "2023-03-30", Side::Right, -1.4);
        let b = side(b, "2023-09-26", Side::Left, -2.2);
        let b = side(b, "2023-09-26", Side::Right, -2.5);
        assert_eq!(severity(&eval(b, "2024-01-04")), Some(Severity::High));
        // Lower side −2.4: moderate.
        let b = side(patient(), "2023-03-30", Side::Left, -1.6);
        let b = side(b, "2023-03-30", Side::Right, -1.4);
        let b = side(b, "2023-09-26", Side::Left, -2.2);
        let b = side(b, "2023-09-26", Side::Right, -2.4);
        assert_eq!(severity(&eval(b, "2024-01-04")), Some(Severity::Moderate));
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
        // The flag is machine-readable (trace); the clinician reads plain words with the
        // configured threshold.
        assert!(f.is_some_and(
            |f| f.trace.iter().any(|n| n.contains("approximate_t_based"))
                && f.notes
                    .iter()
                    .any(|n| n.starts_with("Approximate") && n.contains("at least 0.5"))
                && !f
                    .notes
                    .iter()
                    .any(|n| n.contains("approximate_t_based") || n.contains('§'))
        ));
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

    /// v0.10.3: severity is judged at every site with a significant decrease; the highest wins
    /// and one finding names all such sites.
    #[test]
    fn severity_over_every_site_highest_wins() {
        let b = |hip_later: f64| {
            patient()
                .observation(TScore(DxaSite::LumbarSpine), "2021-06-15", -1.3)
                .observation(TScore(DxaSite::TotalHip), "2021-06-15", -1.8)
                .observation(TScore(DxaSite::LumbarSpine), "2022-06-15", -2.2)
                .observation(TScore(DxaSite::TotalHip), "2022-06-15", hip_later)
        };
        // Spine −0.9 T (moderate there), hip −0.9 T to −2.7 (osteoporotic: high there).
        let e = eval(b(-2.7), "2022-07-01");
        assert_eq!(severity(&e), Some(Severity::High));
        let f = e.outcome.get(FindingCode::BmdSignificantLoss).cloned();
        let f = f.expect("fires");
        assert!(
            f.recommendation.contains("lumbar spine (T-score -0.9)")
                && f.recommendation.contains("total hip (T-score -0.9)"),
            "{}",
            f.recommendation
        );
        assert_eq!(
            e.outcome
                .findings
                .iter()
                .filter(|f| f.code == FindingCode::BmdSignificantLoss)
                .count(),
            1
        );
        assert_eq!(f.evidence.len(), 4);
        // Boundary: hip later T −2.4 (not ≤ −2.5, decrease 0.6 < 1.0): moderate at both sites.
        assert_eq!(
            severity(&eval(b(-2.4), "2022-07-01")),
            Some(Severity::Moderate)
        );
        // Hip later T −2.5 (≤ −2.5): high.
        assert_eq!(severity(&eval(b(-2.5), "2022-07-01")), Some(Severity::High));
        // Hip without a significant decrease (−0.4 T): only the spine is named, moderate.
        let e = eval(b(-2.2), "2022-07-01");
        assert_eq!(severity(&e), Some(Severity::Moderate));
        let f = e.outcome.get(FindingCode::BmdSignificantLoss).cloned();
        assert!(f.is_some_and(|f| !f.recommendation.contains("total hip")));
    }
}

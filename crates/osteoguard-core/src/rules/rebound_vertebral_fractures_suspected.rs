//! `rebound-vertebral-fractures-suspected` — knowledge.md §5.5, §9.
//!
//! **Recommendation** (two variants):
//! * `transition_given` FALSE: "Vertebral fracture(s) after stopping denosumab suggest rebound:
//!   start antiresorptive therapy (zoledronate) promptly, check CTX, and image the whole spine."
//!   — when zoledronate is renally contraindicated (§8) the zoledronate clause is replaced by
//!   "zoledronate contraindicated by renal function — see zoledronate-renal-contraindication;
//!   consider continuing denosumab or oral alternative after renal review" (clinical safety rule);
//! * `transition_given` TRUE: "Vertebral fracture(s) after stopping denosumab suggest rebound:
//!   antiresorptive started {Z}; monitor CTX closely and image the whole spine."
//!
//! **Source:** CUMMINGS-2018 (multiple vertebral fractures after stopping, verified);
//! ECTS-2021 (treat promptly after vertebral fractures, verified). Strength: post hoc RCT
//! analysis / position statement.
//!
//! **Criteria:**
//! * [`established_course`]: `dmab_dose_count ≥ 2`;
//! * `F` = incident vertebral fractures with [`in_rebound_window`]:
//!   `D_last + 183 ≤ onset ≤ D_last + 730` (onset = period.start, `onset_for_windows`), no
//!   denosumab dose in `(D_last, onset]` (true by construction: `D_last` is the last dose), and
//!   not a prevalent fracture of unknown age; `|F|` counts fractures ([`distinct_fractures`],
//!   v0.10.3): records at one level are one fracture, each record without a level counts as one;
//! * `|F| ≥ 2` → critical;
//! * `|F| = 1` → high when [`supporting_evidence`] is TRUE: significant BMD loss between a DXA
//!   dated ≤ `D_last + 30` (on treatment) and a later DXA dated > `D_last + 30`
//!   (`facts::dxa::loss_between`), OR any CTX dated after `D_last + 182` is elevated
//!   (`CTX_LIMIT` as in §5.4). UNKNOWN (neither valid serial BMD nor CTX) → data-insufficient
//!   item 7; FALSE → does not fire.
//!
//! **Thresholds:** `rebound_window_start_days`, `rebound_window_end_days`,
//! `on_treatment_dxa_days`, `dmab_due_days`, `ctx_limit_ng_l`.

use chrono::NaiveDate;

use super::denosumab_common::{ctx_after, ctx_elevated, ctx_limit};
use super::safety::{zoledronate_renally_contraindicated, ZOLEDRONATE_CONTRAINDICATED};
use crate::engine::{Ctx, Outcome};
use crate::facts::spine::FractureEvent;
use crate::finding::{Evidence, Finding, FindingCode, Severity, Ymd};
use crate::model::{add_days, VertebralLocation};
use crate::tri::Tri;

pub const CITATION: &str = "CUMMINGS-2018; ECTS-2021";
const SECTION: &str = "§5.5; §9 rebound-vertebral-fractures-suspected";
const RULE: &str = "rebound-vertebral-fractures-suspected";

/// `dmab_dose_count ≥ 2` (CUMMINGS-2018 analysed women with ≥ 2 doses).
pub fn established_course(ctx: &Ctx<'_>) -> bool {
    ctx.dmab.dose_count >= 2
}

/// `rebound_window(f)` of §5.5 for an incident fracture (onset by period.start).
pub fn in_rebound_window(f: &FractureEvent, d_last: NaiveDate, ctx: &Ctx<'_>) -> bool {
    let t = ctx.t();
    if f.prevalent_unknown_age {
        return false;
    }
    let Some(onset) = f.onset_for_windows else {
        return false;
    };
    onset >= add_days(d_last, t.rebound_window_start_days)
        && onset <= add_days(d_last, t.rebound_window_end_days)
        && onset <= ctx.as_of()
        // No denosumab dose in (D_last, onset]: D_last is the last dose on or before as_of.
        && !ctx.dmab.doses.iter().any(|d| d.date > d_last && d.date <= onset)
}

/// Supporting evidence for a single fracture: BMD loss on → off treatment, or an elevated CTX
/// after `D_last + 182`. Returns the three-valued result and its evidence.
pub fn supporting_evidence(d_last: NaiveDate, ctx: &Ctx<'_>) -> (Tri, Vec<Evidence>) {
    let t = ctx.t();
    let on_treatment = add_days(d_last, t.on_treatment_dxa_days);
    let (bmd, change) =
        crate::facts::dxa::loss_between(&ctx.input, &ctx.spine, on_treatment, on_treatment);
    let ctx_values = ctx_after(ctx, add_days(d_last, t.dmab_due_days));
    let ctx_tri = if ctx_values.is_empty() {
        Tri::Unknown
    } else {
        Tri::from_bool(ctx_values.iter().any(|o| ctx_elevated(o, ctx)))
    };
    let mut evidence = Vec::new();
    if bmd == Tri::True {
        if let Some(c) = change {
            evidence.extend(c.evidence);
        }
    }
    evidence.extend(ctx_values.iter().filter(|o| ctx_elevated(o, ctx)).map(|o| {
        Evidence::new(
            &o.source,
            o.date(),
            text!(
                "CTX {} ng/L > limit {} ng/L",
                o.value.unwrap_or_default(),
                ctx_limit(o, ctx)
            ),
        )
    }));
    // Item 7 is "neither valid serial BMD nor post-denosumab CTX available": one known, normal
    // source is enough to call the support FALSE (not the Kleene OR, which would stay UNKNOWN).
    let support = match (bmd, ctx_tri) {
        (Tri::True, _) | (_, Tri::True) => Tri::True,
        (Tri::Unknown, Tri::Unknown) => Tri::Unknown,
        _ => Tri::False,
    };
    (support, evidence)
}

/// `F` of §5.5 counted as fractures (v0.10.3): records at one level (or one grouped level pair)
/// are one fracture, represented by the record with the earliest onset in the window; each
/// record without a level counts as one (the record cannot tell several fractures from one
/// entered several times, and under-counting a rebound cascade is the worse error).
pub fn distinct_fractures<'a>(in_window: &[&'a FractureEvent]) -> Vec<&'a FractureEvent> {
    let mut out: Vec<&'a FractureEvent> = Vec::new();
    for f in in_window {
        let same = (f.location != VertebralLocation::Unspecified)
            .then(|| out.iter().position(|g| g.location == f.location))
            .flatten();
        match same {
            Some(i) => {
                if (f.onset_for_windows, &f.source) < (out[i].onset_for_windows, &out[i].source) {
                    out[i] = f;
                }
            }
            None => out.push(f),
        }
    }
    out
}

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    if !established_course(ctx) {
        return;
    }
    let Some(d_last) = ctx.dmab.d_last.as_ref() else {
        return;
    };
    let records: Vec<&FractureEvent> = ctx
        .spine
        .fractures
        .iter()
        .filter(|f| in_rebound_window(f, d_last.date, ctx))
        .collect();
    let in_window = distinct_fractures(&records);
    let severity = match in_window.len() {
        0 => return,
        1 => {
            let (support, _) = supporting_evidence(d_last.date, ctx);
            match support {
                Tri::True => Severity::High,
                Tri::False => return,
                Tri::Unknown => {
                    out.insufficient(
                        7,
                        RULE,
                        "one vertebral fracture after stopping denosumab: needs valid serial BMD \
                         (on vs off treatment) or a CTX after the missed dose",
                    );
                    return;
                }
            }
        }
        _ => Severity::Critical,
    };

    let mut levels: Vec<String> = in_window.iter().map(|f| f.location.to_string()).collect();
    levels.dedup();
    let mut evidence = vec![Evidence::new(
        &d_last.source,
        Some(d_last.date),
        text!("last denosumab dose ({} doses)", ctx.dmab.dose_count),
    )];
    evidence.extend(in_window.iter().map(|f| {
        Evidence::new(
            &f.source,
            f.onset_for_windows,
            text!(
                "vertebral fracture {} onset {} (day {} after the last dose)",
                f.location,
                f.onset_for_windows
                    .map(|d| crate::finding::Ymd(d).to_string())
                    .unwrap_or_default(),
                f.onset_for_windows
                    .map(|d| crate::model::days(d_last.date, d))
                    .unwrap_or_default()
            ),
        )
    }));
    if severity == Severity::High {
        evidence.extend(supporting_evidence(d_last.date, ctx).1);
    }

    let summary = text!(
        "{} vertebral fracture{} ({}) {}–{} days after the last denosumab dose {} ({} doses){}",
        in_window.len(),
        if in_window.len() == 1 { "" } else { "s" },
        levels.join(", "),
        ctx.t().rebound_window_start_days,
        ctx.t().rebound_window_end_days,
        Ymd(d_last.date),
        ctx.dmab.dose_count,
        if in_window.len() == 1 {
            " with supporting evidence (BMD loss off treatment or elevated CTX)"
        } else {
            ""
        }
    );
    let recommendation = match &ctx.dmab.transition {
        Some(tr) => {
            let started = ctx
                .dmab
                .zoledronate_after
                .as_ref()
                .map(|z| text!("zoledronate {}", z.date))
                .unwrap_or_else(|| text!("{} {}", tr.agent.name(), tr.date));
            evidence.push(Evidence::new(
                &tr.source,
                Some(tr.date),
                "transition therapy",
            ));
            text!(
                "Vertebral fracture(s) after stopping denosumab suggest rebound: antiresorptive \
                 started ({started}); monitor CTX closely and image the whole spine."
            )
        }
        None => match zoledronate_renally_contraindicated(ctx) {
            None => "Vertebral fracture(s) after stopping denosumab suggest rebound: start \
                     antiresorptive therapy (zoledronate) promptly, check CTX, and image the \
                     whole spine."
                .to_string(),
            Some(r) => {
                evidence.extend(r.evidence.iter().cloned());
                text!(
                    "Vertebral fracture(s) after stopping denosumab suggest rebound: start \
                     antiresorptive therapy promptly — {ZOLEDRONATE_CONTRAINDICATED} ({}); check \
                     CTX, and image the whole spine.",
                    r.describe()
                )
            }
        },
    };
    let f = Finding::new(
        FindingCode::ReboundVertebralFracturesSuspected,
        severity,
        summary,
        recommendation,
        CITATION,
        SECTION,
    )
    .with_evidence(evidence)
    .with_levels(levels)
    .with_note(text!(
        "Fractures count from day {} to day {} after the last dose.",
        ctx.t().rebound_window_start_days,
        ctx.t().rebound_window_end_days
    ))
    .with_trace("rebound window: opens at the first late day (conservative), closes at an engine-convention bound (knowledge.md §5.5, §12.12)");
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Outcome;
    use crate::facts::spine::SpineFacts;
    use crate::model::{
        Ingredient, ObservationKind, PatientRecord, Route, Sex, SourceRef, VertebralLevel,
    };
    use crate::rules::safety::testing;
    use crate::testkit::{d, RecordBuilder};

    fn fracture(level: VertebralLevel, start: &str) -> FractureEvent {
        FractureEvent {
            source: SourceRef::new(format!("Condition/fx-{level}")),
            location: VertebralLocation::Level(level),
            onset_for_acuity: Some(d(start)),
            onset_for_windows: Some(d(start)),
            onset_estimated: false,
            prevalent_unknown_age: false,
            traumatic: false,
            recorded: Some(d(start)),
        }
    }

    /// Seed course: 6 doses, last 2022-10-27.
    fn seed() -> RecordBuilder {
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
        b
    }

    fn run(r: &PatientRecord, as_of: &str, fx: Vec<FractureEvent>) -> Outcome {
        testing::run(r, d(as_of), move |ctx| {
            ctx.spine = SpineFacts {
                fractures: fx,
                ..Default::default()
            };
        })
    }

    #[test]
    fn example_4_four_fractures_critical_with_transition_text() {
        let r = seed()
            .administration(
                Ingredient::ZoledronicAcid,
                "2023-08-31",
                5.0,
                Route::Intravenous,
            )
            .build();
        let out = run(
            &r,
            "2023-09-28",
            vec![
                fracture(VertebralLevel::L1, "2023-07-15"),
                fracture(VertebralLevel::L2, "2023-07-31"),
                fracture(VertebralLevel::L5, "2023-07-31"),
                fracture(VertebralLevel::L3, "2023-09-27"),
                // Pre-stop fracture on denosumab: outside the window.
                fracture(VertebralLevel::L4, "2022-08-01"),
            ],
        );
        let f = out
            .get(FindingCode::ReboundVertebralFracturesSuspected)
            .unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!(
            f.summary.starts_with("4 vertebral fractures"),
            "{}",
            f.summary
        );
        assert!(f.recommendation.contains("2023-08-31"));
        assert!(!f.recommendation.contains("start antiresorptive"));
        assert!(!out.insufficient.iter().any(|i| i.item == 7));
        // Transition given and CTX monitoring only info → zoledronate not recommended.
        assert!(!out.fired(FindingCode::ZoledronateRenalContraindication));
    }

    #[test]
    fn example_3_single_fracture_without_support_is_item_7() {
        let r = seed().build();
        let out = run(
            &r,
            "2023-08-23",
            vec![fracture(VertebralLevel::L1, "2023-07-15")],
        );
        assert!(!out.fired(FindingCode::ReboundVertebralFracturesSuspected));
        assert!(out
            .insufficient
            .iter()
            .any(|i| i.item == 7 && i.rule == RULE));
    }

    #[test]
    fn single_fracture_with_elevated_ctx_is_high() {
        // CTX after D_last + 182 (2023-04-27): 2023-04-28 counts.
        let r = seed()
            .observation(ObservationKind::Ctx, "2023-04-28", 700.0)
            .build();
        let out = run(
            &r,
            "2023-08-23",
            vec![fracture(VertebralLevel::L1, "2023-07-15")],
        );
        let f = out
            .get(FindingCode::ReboundVertebralFracturesSuspected)
            .unwrap();
        assert_eq!(f.severity, Severity::High);
        assert!(f.recommendation.contains("(zoledronate) promptly"));
        // A CTX on D_last + 182 does not count; a normal CTX makes the rule FALSE (no item 7).
        let r = seed()
            .observation(ObservationKind::Ctx, "2023-04-27", 700.0)
            .observation(ObservationKind::Ctx, "2023-05-10", 200.0)
            .build();
        let out = run(
            &r,
            "2023-08-23",
            vec![fracture(VertebralLevel::L1, "2023-07-15")],
        );
        assert!(!out.fired(FindingCode::ReboundVertebralFracturesSuspected));
        assert!(!out.insufficient.iter().any(|i| i.item == 7));
    }

    #[test]
    fn window_boundaries_183_and_730() {
        let r = seed().build();
        let two = |a: &str, b: &str| {
            run(
                &r,
                "2024-12-31",
                vec![
                    fracture(VertebralLevel::L1, a),
                    fracture(VertebralLevel::L2, b),
                ],
            )
            .fired(FindingCode::ReboundVertebralFracturesSuspected)
        };
        // D_last + 182 = 2023-04-27, + 183 = 2023-04-28, + 730 = 2024-10-26, + 731 = 2024-10-27.
        assert!(!two("2023-04-27", "2024-10-27"));
        assert!(two("2023-04-28", "2024-10-26"));
        assert!(!two("2023-04-27", "2023-06-01"));
    }

    #[test]
    fn needs_two_doses_and_excludes_prevalent_unknown_age() {
        let r = RecordBuilder::new("1950-03-15", Sex::Female)
            .administration(
                Ingredient::Denosumab,
                "2022-10-27",
                60.0,
                Route::Subcutaneous,
            )
            .build();
        let fx = vec![
            fracture(VertebralLevel::L1, "2023-07-15"),
            fracture(VertebralLevel::L2, "2023-07-31"),
        ];
        assert!(!run(&r, "2023-09-28", fx.clone())
            .fired(FindingCode::ReboundVertebralFracturesSuspected));
        let mut prevalent = fracture(VertebralLevel::L3, "2023-08-01");
        prevalent.prevalent_unknown_age = true;
        let out = run(
            &seed().build(),
            "2023-09-28",
            vec![fx[0].clone(), prevalent],
        );
        // Only one fracture counts; no support → item 7.
        assert!(!out.fired(FindingCode::ReboundVertebralFracturesSuspected));
        assert!(out.insufficient.iter().any(|i| i.item == 7));
    }

    #[test]
    fn no_zoledronate_recommendation_when_renally_contraindicated() {
        let r = seed()
            .observation(ObservationKind::Creatinine, "2023-09-20", 2.5)
            .observation(ObservationKind::BodyWeight, "2023-09-20", 50.0)
            .build();
        let out = run(
            &r,
            "2023-09-28",
            vec![
                fracture(VertebralLevel::L1, "2023-07-15"),
                fracture(VertebralLevel::L2, "2023-07-31"),
            ],
        );
        let f = out
            .get(FindingCode::ReboundVertebralFracturesSuspected)
            .unwrap();
        assert!(!f.recommendation.contains("(zoledronate) promptly"));
        assert!(f.recommendation.contains(ZOLEDRONATE_CONTRAINDICATED));
        assert!(out.fired(FindingCode::ZoledronateRenalContraindication));
    }

    fn unlocated(id: &str, start: &str) -> FractureEvent {
        FractureEvent {
            source: SourceRef::new(format!("Condition/{id}")),
            location: VertebralLocation::Unspecified,
            ..fracture(VertebralLevel::L1, start)
        }
    }

    /// v0.10.3 `|F|`: records at one level are one fracture; each record without a level
    /// counts as one.
    #[test]
    fn records_at_one_level_count_once_levelless_records_each_count() {
        let severity = |fx: Vec<FractureEvent>| {
            let out = run(&seed().build(), "2023-09-28", fx);
            (
                out.get(FindingCode::ReboundVertebralFracturesSuspected)
                    .map(|f| f.severity),
                out.insufficient.iter().any(|i| i.item == 7),
            )
        };
        let mut again = fracture(VertebralLevel::L5, "2023-08-01");
        again.source = SourceRef::new("Condition/fx-L5-again");
        // The same L5 fracture documented twice: |F| = 1, no support → item 7, not critical.
        assert_eq!(
            severity(vec![
                fracture(VertebralLevel::L5, "2023-07-15"),
                again.clone()
            ]),
            (None, true)
        );
        // Two levels: |F| = 2 → critical.
        assert_eq!(
            severity(vec![
                fracture(VertebralLevel::L5, "2023-07-15"),
                again,
                fracture(VertebralLevel::L4, "2023-07-20"),
            ]),
            (Some(Severity::Critical), false)
        );
        // One located and one level-less record: |F| = 2.
        assert_eq!(
            severity(vec![
                fracture(VertebralLevel::L5, "2023-07-15"),
                unlocated("u1", "2023-07-15"),
            ]),
            (Some(Severity::Critical), false)
        );
        // Two level-less records: each counts, |F| = 2.
        assert_eq!(
            severity(vec![
                unlocated("u1", "2023-07-15"),
                unlocated("u2", "2023-07-15")
            ]),
            (Some(Severity::Critical), false)
        );
        // One level-less record alone: |F| = 1.
        assert_eq!(severity(vec![unlocated("u1", "2023-07-15")]), (None, true));
    }

    /// Through the spine facts: two Conditions for L5 are one fracture; the earliest onset that
    /// lies in the window represents it.
    #[test]
    fn duplicate_level_records_through_the_spine_facts() {
        let r = seed()
            .vertebral_fracture(VertebralLevel::L5, "2023-07-15", "2023-07-17")
            .vertebral_fracture(VertebralLevel::L5, "2023-07-15", "2023-08-02")
            .build();
        let out = testing::plain(&r, d("2023-09-28"));
        assert!(!out.fired(FindingCode::ReboundVertebralFracturesSuspected));
        assert!(out.insufficient.iter().any(|i| i.item == 7));
        let in_window = [
            fracture(VertebralLevel::L5, "2023-07-20"),
            fracture(VertebralLevel::L5, "2023-07-15"),
        ];
        let refs: Vec<&FractureEvent> = in_window.iter().collect();
        let one = distinct_fractures(&refs);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].onset_for_windows, Some(d("2023-07-15")));
    }
}

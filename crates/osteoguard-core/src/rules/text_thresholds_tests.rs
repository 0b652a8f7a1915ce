//! Issue 15 §3 for the denosumab and bone-density rules: every number a clinician reads in
//! their text comes from the threshold table, so a site override changes the words too.

use crate::config::Config;
use crate::engine::evaluate;
use crate::model::{add_days, DxaSite, ObservationKind, Sex};
use crate::testkit::{d, RecordBuilder};
use crate::FindingCode;

fn finding_text(
    r: &crate::model::PatientRecord,
    as_of: chrono::NaiveDate,
    config: &Config,
    code: FindingCode,
) -> String {
    let ev = evaluate(r, as_of, config);
    let f = ev.outcome.get(code).cloned();
    let f = f.unwrap_or_else(|| panic!("{code:?} fires"));
    text!(
        "{} | {} | {}",
        f.summary,
        f.recommendation,
        f.notes.join(" | ")
    )
}

#[test]
fn denosumab_grace_and_long_delay_follow_the_table() {
    let b = super::denosumab_discontinuation_without_transition::tests::doses(2).build();
    let default = Config::default();
    let mut site = Config::default();
    site.thresholds.dmab_grace_end_days = 217;
    site.thresholds.dmab_long_delay_days = 301;
    let soon = add_days(d("2022-10-27"), 190);
    let text = finding_text(&b, soon, &default, FindingCode::DenosumabDueSoon);
    assert!(text.contains("beyond 28 days"), "{text}");
    let text = finding_text(&b, soon, &site, FindingCode::DenosumabDueSoon);
    assert!(text.contains("beyond 35 days"), "{text}");
    let late = add_days(d("2022-10-27"), 320);
    let text = finding_text(&b, late, &default, FindingCode::DenosumabOverdue);
    assert!(text.contains("more than 112 days late"), "{text}");
    let text = finding_text(&b, late, &site, FindingCode::DenosumabOverdue);
    assert!(text.contains("more than 119 days late"), "{text}");
}

#[test]
fn t_score_fallback_note_follows_the_table() {
    let b = RecordBuilder::new("1958-11-11", Sex::Female)
        .observation(
            ObservationKind::TScore(DxaSite::LumbarSpine),
            "2021-06-15",
            -1.0,
        )
        .observation(
            ObservationKind::TScore(DxaSite::LumbarSpine),
            "2022-06-15",
            -1.7,
        )
        .build();
    let as_of = d("2022-07-01");
    let text = finding_text(
        &b,
        as_of,
        &Config::default(),
        FindingCode::BmdSignificantLoss,
    );
    assert!(text.contains("at least 0.5 "), "{text}");
    let mut site = Config::default();
    site.thresholds.t_drop_significant = 0.6;
    let text = finding_text(&b, as_of, &site, FindingCode::BmdSignificantLoss);
    assert!(text.contains("at least 0.6 "), "{text}");
}

#[test]
fn rebound_window_note_follows_the_table() {
    let b = super::denosumab_discontinuation_without_transition::tests::doses(6)
        .vertebral_fracture(crate::model::VertebralLevel::L1, "2023-07-15", "2023-07-17")
        .vertebral_fracture(crate::model::VertebralLevel::L2, "2023-07-31", "2023-08-01")
        .build();
    let as_of = d("2023-09-28");
    let text = finding_text(
        &b,
        as_of,
        &Config::default(),
        FindingCode::ReboundVertebralFracturesSuspected,
    );
    assert!(text.contains("from day 183 to day 730"), "{text}");
    let mut site = Config::default();
    site.thresholds.rebound_window_end_days = 700;
    let text = finding_text(
        &b,
        as_of,
        &site,
        FindingCode::ReboundVertebralFracturesSuspected,
    );
    assert!(text.contains("from day 183 to day 700"), "{text}");
}

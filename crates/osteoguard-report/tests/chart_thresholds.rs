//! The chart draws the clinical numbers the assessment carries (`displayThresholds`, from the
//! core's threshold table), so a site override changes the chart.

mod common;

use common::*;
use osteoguard_report::html::render;

#[test]
fn chart_lines_and_grace_follow_the_assessment() {
    let a = seed_like();
    let html = render(&a);
    // Default table: GC lines 2.5 and 7.5 mg/day, T-score lines −2.5 and −3.5, 28-day grace.
    assert!(html.contains("thr-gc-25") && html.contains("thr-gc-75"));
    assert!(html.contains("thr-t25") && html.contains("thr-t35"));
    assert!(html.contains("within the 28-day grace"));

    let mut b = seed_like();
    b.display_thresholds.gc_dose_lines_mg_per_day = vec![5.0, 10.0];
    b.display_thresholds.t_score_lines = vec![-2.0, -3.0];
    b.display_thresholds.denosumab_grace_days = 1;
    let html = render(&b);
    assert!(html.contains("thr-gc-50") && html.contains("thr-gc-100"));
    assert!(!html.contains("thr-gc-25"));
    assert!(html.contains("thr-t20") && html.contains("thr-t30"));
    assert!(!html.contains("thr-t25"));
    // The 2-day gaps are now beyond the grace: labelled overdue, no longer "within the grace".
    assert!(!html.contains("day grace"));
    assert!(html.contains("denosumab overdue 2 days"));
}

//! HTML report on hand-built assessments: snapshots, structure, escaping, degenerate records.

mod common;

use common::*;
use osteoguard_report::html::render;

fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let pat = format!(" {attr}=\"");
    html.match_indices(&pat)
        .filter_map(|(i, _)| {
            let rest = &html[i + pat.len()..];
            rest.find('"').map(|j| &rest[..j])
        })
        .collect()
}

/// One tag per line, so that snapshot diffs are reviewable.
fn lines(html: &str) -> String {
    html.replace("><", ">\n<")
}

#[test]
fn snapshot_seed_like() {
    insta::assert_snapshot!("seed_like", lines(&render(&seed_like())));
}

#[test]
fn snapshot_minimal() {
    insta::assert_snapshot!("minimal", lines(&render(&minimal())));
}

#[test]
fn self_contained_without_script_or_network() {
    for a in [seed_like(), minimal(), thirty_years()] {
        let h = render(&a);
        assert!(h.starts_with("<!DOCTYPE html>"));
        assert!(!h.contains("<script"), "no JavaScript");
        assert!(!h.contains("<link"), "no external stylesheet");
        assert!(!h.contains(" src="), "nothing loaded");
        let http = h.matches("http://").count() + h.matches("https://").count();
        let xmlns = h.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
        assert_eq!(http, xmlns, "the only URLs are SVG namespaces");
        assert!(h.contains("<style>") && h.contains("@media print"));
    }
}

#[test]
fn header_has_risk_badge_patient_and_as_of() {
    let h = render(&seed_like());
    assert!(h.contains(r#"data-risk-badge="very-high"><span class="risk-level">Very high</span>"#));
    assert!(h.contains("73 years") && h.contains(">female<"));
    assert!(h.contains(r#"data-as-of-date="2023-09-28""#));
    assert!(h.contains("ACR 2022 decision row A1"));
}

#[test]
fn findings_one_element_each_most_severe_first() {
    let a = seed_like();
    let h = render(&a);
    let codes = attr_values(&h, "data-code");
    assert_eq!(codes.len(), a.findings.len());
    let sev = attr_values(&h, "data-severity");
    assert_eq!(sev, ["critical", "high", "moderate", "info"]);
    assert_eq!(codes[0], "rebound-vertebral-fractures-suspected");
    // Every evidence link points at an anchor that exists.
    for href in attr_values(&h, "href") {
        let id = href.trim_start_matches('#');
        assert!(h.contains(&format!(" id=\"{id}\"")), "dangling link {href}");
    }
    assert!(h.contains(r#"data-due="2023-11-30""#));
    assert!(h.contains("ECTS-2021"));
}

#[test]
fn one_injection_marker_per_dose_with_distinct_agents() {
    let a = seed_like();
    let h = render(&a);
    let agents = attr_values(&h, "data-injection");
    assert_eq!(agents.len(), a.timeline.antiresorptive_doses.len());
    assert_eq!(agents.iter().filter(|x| **x == "denosumab").count(), 6);
    assert_eq!(
        agents.iter().filter(|x| **x == "zoledronic acid").count(),
        1
    );
    assert!(
        h.contains(r#"class="injection ag-dmab""#) && h.contains(r#"class="injection ag-zol""#)
    );
}

#[test]
fn denosumab_gaps_are_shaded_and_labelled() {
    let h = render(&seed_like());
    // Late sixth dose, then the 2023 gap ended by zoledronate.
    assert!(h.contains(
        r#"data-gap="denosumab" data-from="2022-08-11" data-to="2022-10-27" data-days="77""#
    ));
    assert!(h.contains(r#"data-gap="denosumab" data-from="2023-04-27" data-to="2023-08-31" data-days="126" data-open="false""#));
    assert!(h.contains("denosumab overdue 126 days<"));

    // Without the transition the gap runs to the as-of date and says so.
    let mut a = seed_like();
    a.timeline
        .antiresorptive_doses
        .retain(|d| d.agent == "denosumab");
    a.denosumab.transition = None;
    let h = render(&a);
    assert!(h.contains(
        r#"data-from="2023-04-27" data-to="2023-09-28" data-days="154" data-open="true""#
    ));
    assert!(h.contains("denosumab overdue 154 days · no transition"));
}

#[test]
fn timeline_marks_thresholds_events_and_as_of() {
    let h = render(&seed_like());
    for class in [
        "thr thr-gc-25",
        "thr thr-gc-75",
        "thr thr-t25",
        "thr thr-t35",
    ] {
        assert!(h.contains(class), "{class}");
    }
    let fx = attr_values(&h, "data-fracture");
    assert_eq!(fx, ["L4", "L1", "L2", "L5", "L3"]);
    assert!(h.contains(">L1 fracture<") && h.contains(">L1 vertebroplasty<"));
    assert!(h.contains(r#"data-as-of="2023-09-28""#));
    let t: Vec<&str> = attr_values(&h, "data-tscore");
    assert_eq!(t, ["-2.7", "-2.7", "-3.7", "-3.8"]);
    assert_eq!(attr_values(&h, "data-pain").len(), 5);
    // Record spans 2015–2023: a 12-month detail chart follows the overview.
    assert!(h.contains(r#"data-chart="overview""#) && h.contains(r#"data-chart="detail""#));
}

#[test]
fn spine_levels_coloured_by_state() {
    let h = render(&seed_like());
    let levels = attr_values(&h, "data-level");
    assert_eq!(levels.len(), 17);
    assert_eq!(levels[0], "T1");
    assert_eq!(levels[16], "L5");
    for (l, s) in [
        ("L1", "augmented"),
        ("L2", "augmented"),
        ("L3", "acute"),
        ("L4", "augmented"),
        ("L5", "augmented"),
        ("T12", "unknown"),
    ] {
        assert!(
            h.contains(&format!(r#"data-level="{l}" data-state="{s}""#)),
            "{l} {s}"
        );
    }
}

#[test]
fn tasks_are_a_checklist_by_due_date() {
    let h = render(&seed_like());
    assert_eq!(
        attr_values(&h, "data-task"),
        ["pain-review", "ctx-3m", "dxa-repeat"]
    );
    assert_eq!(h.matches(r#"type="checkbox""#).count(), 3);
}

#[test]
fn record_text_is_escaped_everywhere() {
    let h = render(&hostile());
    assert!(!h.contains("<script"), "script tag leaked");
    assert!(!h.contains("<img"), "img tag leaked");
    assert!(!h.contains("onerror=\""), "attribute leaked");
    assert!(h.contains("&lt;script&gt;document.body.setAttribute"));
    assert!(h.contains("&lt;img src=x onerror=&quot;"));
    // Data-derived class names are reduced to [a-z0-9-].
    assert!(h.contains(r#"class="risk-badge risk-very-high-script-document-body"#));
    // The page forbids scripts even if something slipped through.
    assert!(h.contains("default-src 'none'"));
}

#[test]
fn degenerate_records_render_without_nan() {
    for (name, a) in [
        ("minimal", minimal()),
        ("no_dates", no_dates()),
        ("thirty_years", thirty_years()),
        ("two_hundred", two_hundred_observations()),
        ("seed_like", seed_like()),
    ] {
        let h = render(&a);
        for bad in [
            "NaN",
            "=\"inf\"",
            "=\"-inf\"",
            ",inf",
            " inf ",
            "-inf,",
            "Infinity",
            "undefined",
        ] {
            assert!(!h.contains(bad), "{name}: {bad} in output");
        }
        assert_eq!(attr_values(&h, "data-level").len(), 17, "{name}");
    }
    let h = render(&no_dates());
    assert!(h.contains("no glucocorticoid recorded"));
    assert!(h.contains("Not on the chart (no date): L2 fracture (Condition/fx-undated)"));
    let h = render(&thirty_years());
    assert!(
        h.contains(">1995<") && h.contains(">2020<"),
        "multi-year ticks"
    );
    assert!(h.contains("↑1250"), "pulse above the axis is labelled");
    let h = render(&two_hundred_observations());
    assert_eq!(attr_values(&h, "data-pain").len(), 100);
    assert_eq!(attr_values(&h, "data-tscore").len(), 100);
}

//! The HTML report in real headless Chromium (Debian's `chromium`): screenshots kept under
//! `target/html-report/` as CI artifacts, assertions on the DOM Chromium dumps after load.
//!
//! Chromium missing → these tests fail with an install hint, unless `OSTEOGUARD_SKIP_BROWSER=1`.

mod common;

use std::path::Path;

use common::*;
use osteoguard_report::html::render;

/// The text inside the element that starts at the first occurrence of `marker`, tags stripped.
fn element_text(dom: &str, marker: &str, close: &str) -> String {
    let Some(i) = dom.find(marker) else {
        return String::new();
    };
    let rest = &dom[i..];
    let rest = &rest[rest.find('>').map(|j| j + 1).unwrap_or(0)..];
    let inner = &rest[..rest.find(close).unwrap_or(rest.len())];
    let mut out = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let pat = format!(" {attr}=\"");
    html.match_indices(&pat)
        .filter_map(|(i, _)| {
            let rest = &html[i + pat.len()..];
            rest.find('"').map(|j| &rest[..j])
        })
        .collect()
}

/// The seed case (examples/seed-case.json) through the real pipeline at 2023-09-28.
#[test]
fn seed_case_report_in_chromium() {
    let Browser::Found(bin) = chromium() else {
        return;
    };
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-case.json");
    let read = osteoguard_fhir::read_path(&seed).expect("read seed case");
    let p = read.patients.first().expect("seed case has a patient");
    let as_of = d("2023-09-28");
    let a = osteoguard_core::assess_with_issues(
        &p.record,
        &p.issues,
        as_of,
        &osteoguard_core::Config::default(),
    );
    let html = render(&a);
    let dom = render_in_browser(&bin, "seed-2023-09-28", &html, 2400);
    assert!(out_dir().join("seed-2023-09-28.png").exists());

    // Risk badge.
    let badge = element_text(&dom, "data-risk-badge=", "</div>");
    assert_eq!(badge, "Very highfracture risk", "risk badge");
    // One element per finding, in the assessment's findings.
    let codes = attr_values(&dom, "data-code");
    assert!(!a.findings.is_empty(), "the seed case has findings");
    assert_eq!(codes.len(), a.findings.len());
    for f in &a.findings {
        assert!(codes.contains(&f.code.as_str()), "{} rendered", f.code);
    }
    assert!(codes.contains(&"rebound-vertebral-fractures-suspected"));
    // One injection marker per injection in the record: 6 denosumab + 1 zoledronate.
    let inj = attr_values(&dom, "data-injection");
    assert_eq!(inj.len(), 7, "injection markers: {inj:?}");
    assert_eq!(inj.iter().filter(|x| **x == "denosumab").count(), 6);
    // The gap after the last denosumab dose (2022-10-27 + 182 d), ended by zoledronate.
    assert!(dom.contains(r#"data-gap="denosumab" data-from="2023-04-27" data-to="2023-08-31""#));
    // T-score fall and fracture sequence.
    let t = attr_values(&dom, "data-tscore");
    assert!(t.contains(&"-2.7") && t.contains(&"-3.7"), "T-scores {t:?}");
    let fx = attr_values(&dom, "data-fracture");
    for l in ["L1", "L2", "L5", "L3"] {
        assert!(fx.contains(&l), "{l} fracture on the timeline: {fx:?}");
    }
    // Spine at the as-of date.
    for (l, s) in [
        ("L1", "augmented"),
        ("L2", "augmented"),
        ("L3", "acute"),
        ("L4", "augmented"),
        ("L5", "augmented"),
    ] {
        assert!(
            dom.contains(&format!(r#"data-level="{l}" data-state="{s}""#)),
            "spine {l} should be {s}"
        );
    }
}

/// Markup in record text is shown as text and never runs (the payload would set
/// `data-pwned` on <body>).
#[test]
fn hostile_record_text_is_not_executed() {
    let Browser::Found(bin) = chromium() else {
        return;
    };
    let dom = render_in_browser(&bin, "hostile", &render(&hostile()), 1600);
    let body_tag = dom
        .find("<body")
        .map(|i| &dom[i..i + dom[i..].find('>').unwrap_or(0)])
        .unwrap_or_default();
    assert!(
        !body_tag.contains("data-pwned"),
        "record text executed: {body_tag}"
    );
    assert!(
        dom.contains("setAttribute('data-pwned','1')"),
        "payload shown as text"
    );
    assert!(!dom.contains("<script"), "script element in the DOM");
    assert!(!dom.contains("<img"), "img element in the DOM");
    assert!(dom.contains("&lt;script&gt;document.body.setAttribute"));
}

/// Hand-built seed-like report and the three legibility cases, kept as screenshots.
#[test]
fn legibility_screenshots() {
    let Browser::Found(bin) = chromium() else {
        return;
    };
    for (name, a, height) in [
        ("seed-like", seed_like(), 2600),
        ("no-dates", no_dates(), 1800),
        ("thirty-years", thirty_years(), 2600),
        ("two-hundred-observations", two_hundred_observations(), 2600),
    ] {
        let dom = render_in_browser(&bin, name, &render(&a), height);
        assert_eq!(attr_values(&dom, "data-level").len(), 17, "{name}");
        assert!(dom.contains("data-as-of="), "{name}");
    }
}

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

/// Measures, in Chromium, the bounding box of every text element of the timeline charts
/// (strip, main and detail) and returns `(texts measured, overlapping pairs)`. The report
/// itself has no script: the measuring script goes into a test copy, its CSP removed.
fn text_overlaps(bin: &Path, name: &str, html: &str, height: u32) -> (usize, Vec<String>) {
    const MEASURE: &str = r#"<script>
(function () {
  var texts = [].slice.call(document.querySelectorAll('svg.timeline text'));
  var boxes = [];
  texts.forEach(function (t) {
    var r = t.getBoundingClientRect();
    if (t.textContent.trim() !== '' && r.width > 0 && r.height > 0) {
      boxes.push({t: t.textContent.trim(), l: r.left, r: r.right, y0: r.top, y1: r.bottom,
        svg: t.ownerSVGElement});
    }
  });
  var out = [];
  for (var i = 0; i < boxes.length; i++) {
    for (var j = i + 1; j < boxes.length; j++) {
      var a = boxes[i], b = boxes[j];
      if (a.svg !== b.svg) continue;
      var w = Math.min(a.r, b.r) - Math.max(a.l, b.l);
      var h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
      if (w > 0.5 && h > 0.5) out.push(a.t + ' × ' + b.t);
    }
  }
  document.body.setAttribute('data-texts', String(boxes.length));
  document.body.setAttribute('data-overlaps', out.join(' | '));
})();
</script>"#;
    let csp_start = html.find("<meta http-equiv=\"Content-Security-Policy\"");
    let mut copy = html.to_string();
    if let Some(i) = csp_start {
        let end = i + copy[i..].find('>').map(|j| j + 1).unwrap_or(0);
        copy.replace_range(i..end, "");
    }
    let copy = copy.replace("</body>", &format!("{MEASURE}</body>"));
    let dom = render_in_browser(bin, name, &copy, height);
    let body = dom
        .find("<body")
        .map(|i| &dom[i..i + dom[i..].find('>').unwrap_or(0)])
        .unwrap_or_default();
    let texts = attr_values(body, "data-texts")
        .first()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let overlaps = attr_values(body, "data-overlaps")
        .first()
        .map(|s| {
            s.split(" | ")
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    (texts, overlaps)
}

/// Issue 17, through real Chromium at the seed's four dates: the screenshots
/// `target/html-report/seed-at-<date>.png`; no two text labels of a chart overlap; the
/// timeline opens on the relevant window with the whole-record strip above it; every lane's
/// series has a legend entry; the spine tells the recent levels from the old; the basis is a
/// short list with its details folded away.
#[test]
fn seed_case_at_four_dates_reads_at_a_glance() {
    let Browser::Found(bin) = chromium() else {
        return;
    };
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-case.json");
    let read = osteoguard_fhir::read_path(&seed).expect("read seed case");
    let p = read.patients.first().expect("seed case has a patient");
    for date in ["2022-12-15", "2023-06-15", "2023-08-23", "2023-09-28"] {
        let a = osteoguard_core::assess_with_issues(
            &p.record,
            &p.issues,
            d(date),
            &osteoguard_core::Config::default(),
        );
        let html = render(&a);
        let name = format!("seed-at-{date}");
        let (texts, overlaps) = text_overlaps(&bin, &name, &html, 2600);
        assert!(out_dir().join(format!("{name}.png")).exists());
        assert!(texts > 30, "{date}: only {texts} texts measured");
        assert!(
            overlaps.is_empty(),
            "{date}: overlapping labels: {overlaps:?}"
        );

        // The window and the strip.
        assert!(html.contains(r#"data-chart="history""#), "{date}: no strip");
        let from = attr_values(&html, "data-from")
            .into_iter()
            .next()
            .unwrap_or_default();
        assert_eq!(
            from, "2019-02-10",
            "{date}: window start (first denosumab − 1 year)"
        );
        // Legends: both pain colours, the overdue gap, every agent.
        if !a.timeline.pain.is_empty() {
            assert!(
                html.contains("pain ≥ 7") && html.contains("pain &lt; 7"),
                "{date}"
            );
        }
        // The basis: a short list and a fold.
        assert!(html.contains("<details class=\"basis-details\">"), "{date}");
        let short = html
            .split("<ul class=\"basis-list\">")
            .nth(1)
            .and_then(|s| s.split("</ul>").next())
            .unwrap_or_default();
        assert!(short.matches("<li>").count() <= 3, "{date}: {short}");
    }
    // The spine at 2023-09-28: L1, L2, L5 augmented in 2023 are recent, the 2022 L4 cement is not.
    let a = osteoguard_core::assess_with_issues(
        &p.record,
        &p.issues,
        d("2023-09-28"),
        &osteoguard_core::Config::default(),
    );
    let html = render(&a);
    for (l, recent) in [("L1", true), ("L2", true), ("L5", true), ("L4", false)] {
        assert!(
            html.contains(&format!(
                r#"data-level="{l}" data-state="augmented" data-since="#
            )),
            "{l} augmented"
        );
        let at = html
            .find(&format!(r#"data-level="{l}""#))
            .unwrap_or_default();
        let tag = &html[at..at + html[at..].find('>').unwrap_or(0)];
        assert!(
            tag.contains(&format!(r#"data-recent="{recent}""#)),
            "{l}: {tag}"
        );
    }
    assert!(html.contains(r#"data-legend="recent""#) && html.contains(r#"data-legend="old""#));
}

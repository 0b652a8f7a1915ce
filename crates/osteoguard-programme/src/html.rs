//! The report as one self-contained HTML page: inline CSS and SVG, no script, no network.
//! Each KPI opens (`<details>`) to its patients by answer, each patient to the evidence.

use std::fmt::Write;

use osteoguard_core::programme::aggregate::{KpiSummary, Level};
use osteoguard_core::programme::kpis::def;
use osteoguard_core::programme::{IndexOutcome, KpiStatus};
use osteoguard_core::thresholds::{
    KPI6_LEVEL_PERCENT, KPI_LEVEL_GREEN_ABOVE_PERCENT, KPI_LEVEL_RED_BELOW_PERCENT,
};

use crate::registry::RegistryFigures;
use crate::Report;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn level_name(l: Option<Level>) -> &'static str {
    match l {
        Some(Level::Red) => "red",
        Some(Level::Amber) => "amber",
        Some(Level::Green) => "green",
        None => "none",
    }
}

fn pct(p: Option<f64>) -> String {
    p.map(|x| format!("{x:.1} %")).unwrap_or_else(|| "—".into())
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right}
.lv{display:inline-block;padding:0 .4rem;border-radius:.3rem;font-weight:600}
.lv-red{background:#f8d0d0;color:#7a0000}.lv-amber{background:#fbe7c0;color:#6b4300}.lv-green{background:#d3efd3;color:#0b5a0b}.lv-none{background:#eee;color:#555}
details{margin:.2rem 0}summary{cursor:pointer}.muted{color:#666;font-size:.9rem}
ul.pl{columns:3;font-size:.85rem}svg text{font-size:12px;font-family:system-ui,sans-serif}";

/// The page.
pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let s = &r.summary;
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Fracture-liaison programme report {} – {}</title><style>{CSS}</style></head><body>",
        r.period_start, r.period_end
    );
    let _ = write!(
        h,
        "<h1>Fracture-liaison programme report</h1><p>Period <b>{}</b> to <b>{}</b>, as of <b>{}</b> ({}). Input <code>{}</code>: {} resources read, {} reader issues. IOF Capture the Fracture patient-level KPIs (knowledge.md §13); <b>the FHIR mapping is osteoguard's own (UNVERIFIED)</b>.</p>",
        r.period_start,
        r.period_end,
        r.as_of,
        esc(&r.as_of_source),
        esc(&r.input),
        r.resources_read,
        r.reader_issues
    );
    let _ = write!(
        h,
        "<p>{} patients; <b>{}</b> with an index fracture in the period.",
        s.patients, s.index_patients
    );
    for (k, v) in &s.by_index_outcome {
        let _ = write!(h, " {}: {v};", esc(k));
    }
    h.push_str("</p>");
    h.push_str("<h2 id=\"kpis\">KPIs</h2>");
    h.push_str(&kpi_chart(&s.kpis));
    kpi_table(&mut h, r);
    h.push_str("<h2 id=\"completeness\">KPI 11 — data completeness</h2><table><tr><th>KPI</th><th class=\"num\">TRUE or FALSE</th><th class=\"num\">applicable</th><th class=\"num\">complete</th><th>level</th></tr>");
    for c in s
        .completeness
        .iter()
        .chain(std::iter::once(&s.completeness_overall))
    {
        let name = if c.kpi == 11 {
            "all of 3–10".to_string()
        } else {
            c.kpi.to_string()
        };
        let _ = write!(
            h,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><span class=\"lv lv-{l}\">{l}</span></td></tr>",
            c.decided,
            c.applicable,
            pct(c.percent),
            l = level_name(c.level)
        );
    }
    h.push_str("</table>");
    drill_down(&mut h, r);
    if let Some(reg) = &r.registry {
        registry_section(&mut h, reg);
    } else {
        h.push_str("<h2 id=\"registry\">Registry history</h2><p class=\"muted\">No registry given (<code>--db</code>).</p>");
    }
    h.push_str("<h2 id=\"notes\">How this was read</h2><ul>");
    for n in &r.notes {
        let _ = write!(h, "<li>{}</li>", esc(n));
    }
    let _ = write!(
        h,
        "</ul><p class=\"muted\">Falls-risk codes: {}. Exercise codes: {}. {} {} (knowledge {}), configuration {}.</p></body></html>",
        esc(&r.value_sets.falls_risk.join(", ")),
        if r.value_sets.exercise.is_empty() {
            "none configured (KPI 7 is UNKNOWN)".to_string()
        } else {
            esc(&r.value_sets.exercise.join(", "))
        },
        esc(&r.provenance.engine),
        esc(&r.provenance.engine_version),
        esc(&r.provenance.knowledge_version),
        esc(&r.provenance.config_hash)
    );
    h
}

/// Horizontal bars of each proportion with the level lines (50 %, 80 %).
fn kpi_chart(kpis: &[KpiSummary]) -> String {
    let rows: Vec<&KpiSummary> = kpis.iter().filter(|k| !k.is_count).collect();
    let (left, width, bar_h, gap) = (330.0, 500.0, 18.0, 8.0);
    let height = 30.0 + rows.len() as f64 * (bar_h + gap);
    let x = |p: f64| left + p / 100.0 * width;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"KPI proportions\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\">",
        w = left + width + 80.0
    );
    for (i, k) in rows.iter().enumerate() {
        let y = 20.0 + i as f64 * (bar_h + gap);
        let colour = match k.level {
            Some(Level::Red) => "#d9534f",
            Some(Level::Amber) => "#f0ad4e",
            Some(Level::Green) => "#5cb85c",
            None => "#bbb",
        };
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\">{} {}</text><rect x=\"{left}\" y=\"{y}\" width=\"{width}\" height=\"{bar_h}\" fill=\"#f2f2f2\"/>",
            y + bar_h - 4.0,
            k.kpi,
            esc(&k.title)
        );
        if let Some(p) = k.percent {
            let _ = write!(
                s,
                "<rect class=\"bar lv-{}\" x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{colour}\"><title>KPI {}: {}</title></rect>",
                level_name(k.level),
                x(p) - left,
                k.kpi,
                pct(Some(p))
            );
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            left + width + 6.0,
            y + bar_h - 4.0,
            pct(k.percent)
        );
        if k.kpi == 6 {
            let _ = write!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{y}\" y2=\"{1}\" stroke=\"#333\" stroke-width=\"2\"/>",
                x(KPI6_LEVEL_PERCENT),
                y + bar_h
            );
        }
    }
    for p in [KPI_LEVEL_RED_BELOW_PERCENT, KPI_LEVEL_GREEN_ABOVE_PERCENT] {
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"14\" y2=\"{1}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/><text x=\"{0:.1}\" y=\"11\" text-anchor=\"middle\">{2} %</text>",
            x(p),
            height - 6.0,
            p
        );
    }
    s.push_str("</svg>");
    s
}

fn kpi_table(h: &mut String, r: &Report) {
    h.push_str("<table><tr><th>KPI</th><th class=\"num\">TRUE</th><th class=\"num\">FALSE</th><th class=\"num\">UNKNOWN</th><th class=\"num\">pending</th><th class=\"num\">excluded</th><th class=\"num\">proportion</th><th class=\"num\">if UNKNOWN = not met</th><th>level</th><th>patients</th></tr>");
    for k in &r.summary.kpis {
        let shown = if k.is_count {
            format!("{} (count)", k.true_count)
        } else {
            pct(k.percent)
        };
        let _ = write!(
            h,
            "<tr id=\"kpi-{n}\"><td title=\"{spec}\">{n} {title}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{shown}</td><td class=\"num\">{}</td><td><span class=\"lv lv-{l}\">{l}</span></td><td>",
            k.true_count,
            k.false_count,
            k.unknown,
            k.pending,
            k.excluded,
            pct(k.percent_if_unknown_not_met),
            n = k.kpi,
            spec = esc(&k.specification),
            title = esc(&k.title),
            l = level_name(k.level)
        );
        for (name, list) in [
            ("TRUE", &k.patients.yes),
            ("FALSE", &k.patients.no),
            ("UNKNOWN", &k.patients.unknown),
            ("pending", &k.patients.pending),
            ("excluded", &k.patients.excluded),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = write!(
                h,
                "<details class=\"drill\" data-kpi=\"{}\" data-answer=\"{name}\"><summary>{name} ({})</summary><ul class=\"pl\">",
                k.kpi,
                list.len()
            );
            for p in list {
                let _ = write!(
                    h,
                    "<li><a href=\"#{a}\">{t}</a></li>",
                    a = anchor(p),
                    t = esc(p)
                );
            }
            h.push_str("</ul></details>");
        }
        h.push_str("</td></tr>");
    }
    h.push_str("</table>");
}

/// The HTML id of a patient's detail block (`p-` and the id, other characters as `_`).
pub fn anchor(patient: &str) -> String {
    let id: String = patient
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("p-{id}")
}

fn status_name(s: KpiStatus) -> &'static str {
    match s {
        KpiStatus::True => "TRUE",
        KpiStatus::False => "FALSE",
        KpiStatus::Unknown => "UNKNOWN",
        KpiStatus::Pending => "pending",
        KpiStatus::Excluded => "excluded",
    }
}

fn drill_down(h: &mut String, r: &Report) {
    h.push_str("<h2 id=\"patients\">Patients with an index fracture</h2>");
    for p in &r.patients {
        let IndexOutcome::Index(ix) = &p.index else {
            continue;
        };
        let _ = write!(
            h,
            "<details id=\"{}\"><summary><b>{}</b> — {} on {} (age {}, {})</summary><table><tr><th>KPI</th><th>answer</th><th>why</th><th>evidence</th></tr>",
            anchor(&p.patient),
            esc(&p.patient),
            esc(&ix.display),
            ix.onset,
            ix.age_years,
            if ix.vertebral { "vertebral" } else { "non-vertebral" }
        );
        for k in &p.kpis {
            let title = def(k.kpi).map(|d| d.title).unwrap_or("");
            let _ = write!(
                h,
                "<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                k.kpi,
                esc(title),
                status_name(k.status),
                esc(&k.reason),
                esc(&k.evidence.join(", "))
            );
        }
        h.push_str("</table></details>");
    }
    let others: Vec<_> = r
        .patients
        .iter()
        .filter(|p| !matches!(p.index, IndexOutcome::Index(_)))
        .collect();
    if !others.is_empty() {
        h.push_str("<h2 id=\"not-index\">Fractures in the period that are not an index</h2><table><tr><th>patient</th><th>why</th></tr>");
        for p in others {
            let why = match &p.index {
                IndexOutcome::Refracture {
                    source,
                    onset,
                    prior,
                    prior_onset,
                } => format!("re-fracture: {source} on {onset} after {prior} on {prior_onset}"),
                IndexOutcome::UnderAge {
                    source,
                    onset,
                    age_years,
                } => format!("aged {age_years} at {source} on {onset}"),
                IndexOutcome::AgeUnknown { source, onset } => {
                    format!("no birth date: {source} on {onset} (UNKNOWN whether an index)")
                }
                IndexOutcome::OnsetUnknown { sources } => format!(
                    "fractures without any date: {} (UNKNOWN whether an index)",
                    sources.join(", ")
                ),
                _ => String::new(),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&p.patient),
                esc(&why)
            );
        }
        h.push_str("</table>");
    }
}

/// A registry chart series: name, colour, value of a run.
type Series = (
    &'static str,
    &'static str,
    fn(&crate::registry::RunFigures) -> usize,
);

fn registry_section(h: &mut String, reg: &RegistryFigures) {
    h.push_str("<h2 id=\"registry\">Registry history</h2>");
    if !reg.resolved_means_evidence {
        h.push_str("<p class=\"muted\">This registry predates the escalated / recheck-needed statuses: “resolved” there means only that the finding was no longer reported (its data may have aged out).</p>");
    }
    // Grouped bars per run.
    let series: [Series; 5] = [
        ("patients flagged", "#4a79b5", |r| r.patients_flagged),
        ("new", "#f0ad4e", |r| r.new),
        ("escalated", "#d9534f", |r| r.escalated),
        ("resolved", "#5cb85c", |r| r.resolved),
        ("recheck needed", "#8e6bb8", |r| r.recheck_needed),
    ];
    let max = reg
        .runs
        .iter()
        .flat_map(|r| series.iter().map(move |s| (s.2)(r)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (bw, group_gap, plot_h, top) = (14.0, 24.0, 160.0, 20.0);
    let group_w = bw * series.len() as f64 + group_gap;
    let width = 60.0 + group_w * reg.runs.len().max(1) as f64 + 160.0;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"Registry runs\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" viewBox=\"0 0 {width} {}\">",
        plot_h + top + 40.0,
        plot_h + top + 40.0
    );
    for (i, run) in reg.runs.iter().enumerate() {
        let gx = 50.0 + i as f64 * group_w;
        for (j, (name, colour, f)) in series.iter().enumerate() {
            let v = f(run) as f64;
            let bh = v / max * plot_h;
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw}\" height=\"{bh:.1}\" fill=\"{colour}\"><title>run {} ({}): {name} {}</title></rect>",
                gx + j as f64 * bw,
                top + plot_h - bh,
                run.run_id,
                esc(&run.as_of),
                v
            );
        }
        let _ = write!(
            s,
            "<text x=\"{gx:.1}\" y=\"{:.1}\">{}</text>",
            top + plot_h + 16.0,
            esc(&run.as_of)
        );
    }
    let lx = 60.0 + group_w * reg.runs.len().max(1) as f64;
    for (j, (name, colour, _)) in series.iter().enumerate() {
        let y = top + j as f64 * 18.0;
        let _ = write!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{y:.1}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
            lx + 16.0,
            y + 11.0
        );
    }
    let _ = write!(
        s,
        "<line x1=\"45\" x2=\"45\" y1=\"{top}\" y2=\"{0}\" stroke=\"#999\"/><text x=\"0\" y=\"{1}\">{max}</text><text x=\"0\" y=\"{0}\">0</text></svg>",
        top + plot_h,
        top + 10.0
    );
    h.push_str(&s);
    h.push_str("<table><tr><th>run</th><th>as of</th><th class=\"num\">patients flagged</th><th class=\"num\">new</th><th class=\"num\">persisting</th><th class=\"num\">escalated</th><th class=\"num\">de-escalated</th><th class=\"num\">resolved</th><th class=\"num\">recheck needed</th><th class=\"num\">other</th></tr>");
    for r in &reg.runs {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            r.run_id,
            esc(&r.as_of),
            r.patients_flagged,
            r.new,
            r.persisting,
            r.escalated,
            r.de_escalated,
            r.resolved,
            r.recheck_needed,
            r.other
        );
    }
    h.push_str("</table><h3>Days from first flagged to resolved</h3>");
    if reg.resolution.is_empty() {
        h.push_str("<p class=\"muted\">No finding resolved yet.</p>");
    } else {
        h.push_str("<table><tr><th>finding</th><th class=\"num\">resolved</th><th class=\"num\">median days</th><th class=\"num\">90th percentile days</th></tr>");
        for t in &reg.resolution {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td></tr>",
                esc(&t.code),
                t.resolved,
                t.median_days,
                t.p90_days
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h3>Open critical items by time open (last run)</h3><table><tr><th>open for</th><th class=\"num\">items</th></tr>");
    for b in &reg.open_critical_by_age {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&b.band),
            b.count
        );
    }
    h.push_str("</table>");
}

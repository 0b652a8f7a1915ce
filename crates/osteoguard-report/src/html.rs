//! HTML report: one self-contained file (inline CSS and SVG, no network, no JavaScript),
//! print-friendly.
//!
//! Sections, in order: header (patient, as-of date, fracture-risk badge and its basis as a short
//! list with the full criteria in `<details>`); the
//! findings at a glance (one line each, most severe first) and the tasks checklist beside the
//! spine diagram ([`spine`], recent levels marked); the timeline ([`chart`]: a whole-record strip
//! above the chart of the clinically relevant window); the findings in full (summary,
//! recommendation, evidence linked to the resource list at the end, citation, due date);
//! data-quality notes, sources and the provenance stamp. The pictures come before the full
//! findings so that one screen (and the CI screenshot) shows them all.
//!
//! *Invariant:* markup is written with maud, whose `(splice)` HTML-escapes every value, so no
//! string from the record can become markup; the only unescaped text is this crate's own CSS.
//! Geometry lives in [`svg`]: its [`svg::Num`] never prints `NaN` and its scales accept empty
//! or zero-length date ranges.
//!
//! Stable hooks (browser test, print styles): `[data-risk-badge]`, `.finding[data-code]`,
//! `[data-injection]`, `[data-gap]`, `[data-fracture]`, `[data-procedure]`,
//! `.vertebra[data-level][data-state]`, `.task[data-task]`.

mod chart;
mod spine;
pub mod svg;

use std::collections::BTreeMap;

use maud::{html, Markup, PreEscaped, DOCTYPE};
use osteoguard_core::model::Sex;
use osteoguard_core::{Assessment, Evidence, Finding, Severity, Task};

const CSS: &str = include_str!("html/report.css");

fn sex_word(s: Sex) -> &'static str {
    match s {
        Sex::Female => "female",
        Sex::Male => "male",
        Sex::Other => "other sex",
        Sex::Unknown => "sex unknown",
    }
}

/// `very-high` → `Very high`.
fn risk_words(category: &str) -> String {
    let s = category.replace('-', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => "Unknown".into(),
    }
}

/// A CSS-class-safe token (`[a-z0-9-]`), for classes derived from data.
fn token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Critical => 0,
        Severity::High => 1,
        Severity::Moderate => 2,
        Severity::Info => 3,
    }
}

/// Every resource reference the report cites, numbered in first-seen order for anchors.
struct Sources {
    ids: BTreeMap<String, usize>,
    order: Vec<(String, Vec<String>)>,
}

impl Sources {
    fn collect(a: &Assessment, findings: &[&Finding]) -> Self {
        let mut s = Sources {
            ids: BTreeMap::new(),
            order: Vec::new(),
        };
        for e in &a.fracture_risk.evidence {
            s.add(e, "fracture risk");
        }
        for f in findings {
            for e in &f.evidence {
                s.add(e, f.code.as_str());
            }
        }
        s
    }
    fn add(&mut self, e: &Evidence, used_by: &str) {
        let n = match self.ids.get(e.reference.as_str()) {
            Some(n) => *n,
            None => {
                let n = self.order.len();
                self.ids.insert(e.reference.to_string(), n);
                self.order.push((e.reference.to_string(), Vec::new()));
                n
            }
        };
        let uses = &mut self.order[n].1;
        if !uses.iter().any(|u| u == used_by) {
            uses.push(used_by.to_string());
        }
    }
    fn anchor(&self, reference: &str) -> String {
        format!("src-{}", self.ids.get(reference).copied().unwrap_or(0) + 1)
    }
}

/// Renders a self-contained HTML report.
pub fn render(a: &Assessment) -> String {
    let mut findings: Vec<&Finding> = a.findings.iter().collect();
    findings.sort_by_key(|f| severity_rank(f.severity));
    let sources = Sources::collect(a, &findings);
    let mut tasks: Vec<&Task> = a.tasks.iter().collect();
    tasks.sort_by(|x, y| (x.due.is_none(), x.due, &x.code).cmp(&(y.due.is_none(), y.due, &y.code)));
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No network: nothing is loaded from anywhere, not even an icon.
                meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:";
                title { "osteoguard — " (a.patient.reference) " — " (a.as_of) }
                style { (PreEscaped(CSS)) }
            }
            body {
                (header(a))
                div.two-col {
                    div.col-main {
                        (findings_at_a_glance(&findings))
                        (tasks_section(&tasks))
                    }
                    section.spine-section {
                        h2 { "Spine at " (a.as_of) }
                        (spine::render(a))
                    }
                }
                section.timeline-section {
                    h2 { "Timeline" }
                    (chart::render(a))
                }
                (findings_section(&findings, &sources))
                (data_quality_section(a))
                (sources_section(&sources))
                (footer(a))
            }
        }
    };
    page.into_string()
}

/// Criteria shown before the fold.
const BASIS_SHORT: usize = 3;
/// Characters of a criterion shown before the fold (cut at a word, the rest in `<details>`).
const BASIS_CHARS: usize = 90;

/// A criterion's first clause, at most [`BASIS_CHARS`] characters, cut at a word.
fn short_basis(b: &str) -> String {
    let first = b.split(['(', ';']).next().unwrap_or(b).trim();
    if first.chars().count() <= BASIS_CHARS {
        return first.to_string();
    }
    let head: String = first.chars().take(BASIS_CHARS).collect();
    match head.rfind(' ') {
        Some(i) => format!("{}…", head[..i].trim_end()),
        None => format!("{head}…"),
    }
}

fn header(a: &Assessment) -> Markup {
    let r = &a.fracture_risk;
    let age = a
        .patient
        .age_years
        .map(|y| format!("{y} years"))
        .unwrap_or_else(|| "age unknown".into());
    let gc = &a.glucocorticoid;
    let dm = &a.denosumab;
    let bd = &a.bone_density;
    html! {
        header.report-head {
            div.head-top {
                div {
                    h1 { "Bone-health assessment" }
                    p.patient {
                        span.pt-ref { (a.patient.reference) }
                        " · " span data-age=[a.patient.age_years] { (age) }
                        " · " span data-sex=(sex_word(a.patient.sex)) { (sex_word(a.patient.sex)) }
                        " · as of " strong data-as-of-date=(a.as_of) { (a.as_of) }
                    }
                }
                div class={ "risk-badge risk-" (token(&r.category)) } data-risk-badge=(r.category) {
                    span.risk-level { (risk_words(&r.category)) }
                    span.risk-sub { "fracture risk" }
                }
            }
            // The basis a clinician scans in seconds: the decision row and FRAX on one line,
            // the first criteria as a short list, everything else folded away.
            div.basis data-basis-count=(r.basis.len()) {
                p.basis-line {
                    strong { "Basis: " }
                    @if r.basis.is_empty() { "none recorded" }
                    @else { (r.basis.len()) " criteria" }
                    @if let Some(row) = &r.row { " · ACR 2022 decision row " (row) }
                    @if let Some(m) = r.gc_adjusted_frax_mof_percent { " · FRAX MOF " (m) " %" }
                    @if let Some(h) = r.gc_adjusted_frax_hip_percent { " · hip " (h) " %" }
                }
                @if !r.basis.is_empty() {
                    ul.basis-list {
                        @for b in r.basis.iter().take(BASIS_SHORT) { li { (short_basis(b)) } }
                    }
                    details.basis-details {
                        summary { "All " (r.basis.len()) " criteria in full" }
                        ul { @for b in &r.basis { li { (b) } } }
                    }
                }
            }
            dl.glance {
                div {
                    dt { "Glucocorticoid now" }
                    dd { @match gc.current_prednisone_equivalent_mg_per_day {
                        Some(v) => { (v) " mg/day prednisone-eq" }
                        None => { "unknown" }
                    } @if gc.physiologic_replacement { " (physiological replacement)" } }
                }
                div {
                    dt { "Denosumab" }
                    dd class={ "dmab-" (token(&dm.status)) } {
                        (dm.status)
                        @if let Some(l) = dm.last_dose { " · last " (l) }
                        @if let Some(n) = dm.next_due { " · due " (n) }
                        @if let Some(t) = dm.transition { " · transition " (dm.transition_agent.as_deref().unwrap_or("therapy")) " " (t) }
                    }
                }
                div {
                    dt { "Lowest T-score" }
                    dd { @match bd.lowest_t_score {
                        Some(t) => {
                            (t)
                            @if let Some(s) = bd.lowest_t_score_site { " " (s.label()) }
                            @if let Some(d) = bd.lowest_t_score_date { " · " (d) }
                        }
                        None => { "unknown" }
                    } }
                }
            }
        }
    }
}

/// One line per finding, most severe first, linking to its full entry further down: the
/// findings are read first, the charts stay on the first screen.
fn findings_at_a_glance(findings: &[&Finding]) -> Markup {
    html! {
        section.summary-findings {
            h2 { "Findings at a glance" }
            @if findings.is_empty() { p.none { "No findings." } }
            ol.at-a-glance {
                @for (i, f) in findings.iter().enumerate() {
                    li class={ "sev-" (f.severity.as_str()) } {
                        span.sev { (f.severity.as_str()) }
                        a href={ "#finding-" (i + 1) } { (f.title) }
                        span.glance-summary { (f.summary) }
                        @if let Some(d) = f.due { span.due { "due " (d) } }
                    }
                }
            }
        }
    }
}

fn findings_section(findings: &[&Finding], sources: &Sources) -> Markup {
    html! {
        section.findings {
            h2 { "Findings" @if !findings.is_empty() { " (" (findings.len()) ", most severe first)" } }
            @if findings.is_empty() { p.none { "No findings." } }
            @for (i, f) in findings.iter().enumerate() {
                article id={ "finding-" (i + 1) } class={ "finding sev-" (f.severity.as_str()) } data-code=(f.code.as_str()) data-severity=(f.severity.as_str()) {
                    div.f-head {
                        span.sev { (f.severity.as_str()) }
                        h3 { (f.title) }
                        @if let Some(d) = f.due { span.due data-due=(d) { "due " (d) } }
                    }
                    p.summary { (f.summary) }
                    p.rec { strong { "Recommendation: " } (f.recommendation) }
                    @if !f.evidence.is_empty() {
                        ul.evidence {
                            @for e in &f.evidence {
                                li {
                                    a.ref href={ "#" (sources.anchor(&e.reference)) } data-ref=(e.reference) { (e.reference) }
                                    ": " span.ev-value { (e.detail) }
                                    @if let Some(d) = e.date { " " span.ev-date { "(" (d) ")" } }
                                }
                            }
                        }
                    }
                    @if !f.levels.is_empty() {
                        p.levels { "Levels: " (f.levels.join(", ")) }
                    }
                    @for m in &f.inputs_missing { p.missing { "Missing: " (m) } }
                    @for n in &f.notes { p.note { "Note: " (n) } }
                    p.cite { "Source: " cite { (f.citation) } }
                    // The specification's vocabulary, folded away: a clinician reads the text above.
                    details.trace {
                        summary { "Rule trace" }
                        p { "knowledge.md " (f.rule_section) }
                        @for t in &f.trace { p { (t) } }
                    }
                }
            }
        }
    }
}

fn tasks_section(tasks: &[&Task]) -> Markup {
    html! {
        section.tasks {
            h2 { "Tasks" }
            @if tasks.is_empty() { p.none { "No tasks." } }
            ul.checklist {
                @for t in tasks {
                    li.task data-task=(t.code) data-due=[t.due] {
                        label {
                            input type="checkbox";
                            " "
                            span.task-due { @match t.due { Some(d) => { (d) }, None => { "no date" } } }
                            " " span.task-desc { (t.description) }
                        }
                    }
                }
            }
        }
    }
}

fn data_quality_section(a: &Assessment) -> Markup {
    html! {
        @if !a.data_quality.is_empty() {
            section.dq {
                h2 { "Data quality (" (a.data_quality.len()) ")" }
                table {
                    thead { tr { th { "Resource" } th { "Field" } th { "Problem" } } }
                    tbody {
                        @for d in &a.data_quality {
                            tr { td { code { (d.reference) } } td { code { (d.field) } } td { (d.problem) } }
                        }
                    }
                }
            }
        }
    }
}

fn sources_section(sources: &Sources) -> Markup {
    html! {
        @if !sources.order.is_empty() {
            section.sources {
                h2 { "Sources cited" }
                ol {
                    @for (i, (r, uses)) in sources.order.iter().enumerate() {
                        li id={ "src-" (i + 1) } data-source=(r) {
                            code { (r) } " — used by " (uses.join(", "))
                        }
                    }
                }
            }
        }
    }
}

fn footer(a: &Assessment) -> Markup {
    let p = &a.provenance;
    html! {
        footer {
            (p.engine) " " (p.engine_version) " · knowledge.md " (p.knowledge_version)
            " · config " code { (p.config_hash) }
            @if !p.overridden_keys.is_empty() { " · overridden: " (p.overridden_keys.join(", ")) }
            @if !p.disabled_findings.is_empty() { " · switched off: " (p.disabled_findings.join(", ")) }
            " · decision support, not a diagnosis: verify against the record."
        }
    }
}

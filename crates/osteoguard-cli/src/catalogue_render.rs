//! Renders the rule catalogue (`osteoguard rules`) from `osteoguard_core::catalogue`, which reads
//! the same threshold table as the rules.

use std::fmt::Write;

use osteoguard_core::catalogue::{entries, RuleEntry};
use osteoguard_core::Config;

fn header(config: &Config) -> String {
    let p = config.provenance();
    format!(
        "osteoguard {} rule catalogue · knowledge.md {} · config {}{}",
        p.engine_version,
        p.knowledge_version,
        p.config_hash,
        if p.overridden_keys.is_empty() {
            String::new()
        } else {
            format!(" · overridden: {}", p.overridden_keys.join(", "))
        }
    )
}

fn status(e: &RuleEntry) -> &'static str {
    if e.disabled {
        " (SWITCHED OFF by configuration)"
    } else {
        ""
    }
}

pub fn text(config: &Config) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "{}\n", header(config));
    for e in entries(config) {
        let _ = writeln!(s, "{} — {}{}", e.code, e.title, status(&e));
        let _ = writeln!(s, "  section:    knowledge.md {}", e.section);
        let _ = writeln!(s, "  severity:   {}", e.severities);
        let _ = writeln!(s, "  inputs:     {}", e.inputs);
        let _ = writeln!(s, "  citation:   {}", e.citation);
        for t in &e.thresholds {
            let _ = writeln!(
                s,
                "  threshold:  {} = {} {}{} [{}–{}; {}; {}{}]",
                t.key,
                t.value,
                t.unit,
                if t.overridden {
                    format!(" (default {})", t.default)
                } else {
                    String::new()
                },
                t.min,
                t.max,
                t.section,
                t.source,
                if t.configurable { "; configurable" } else { "" }
            );
        }
        let _ = writeln!(s);
    }
    s
}

pub fn json(config: &Config) -> anyhow::Result<String> {
    let v = serde_json::json!({
        "provenance": config.provenance(),
        "rules": entries(config),
    });
    Ok(format!("{}\n", serde_json::to_string_pretty(&v)?))
}

/// Escapes the characters that would break a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(config: &Config) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# osteoguard rule catalogue\n\n{}\n", header(config));
    for e in entries(config) {
        let _ = writeln!(s, "## `{}` — {}{}\n", e.code, e.title, status(&e));
        let _ = writeln!(s, "* **Section:** knowledge.md {}", e.section);
        let _ = writeln!(s, "* **Severity:** {}", e.severities);
        let _ = writeln!(s, "* **Inputs:** {}", e.inputs);
        let _ = writeln!(s, "* **Citation:** {}\n", e.citation);
        if e.thresholds.is_empty() {
            let _ = writeln!(s, "No numeric thresholds.\n");
            continue;
        }
        let _ = writeln!(
            s,
            "| key | meaning | value | unit | allowed | section | source | configurable | overridden |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for t in &e.thresholds {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {}–{} | {} | {} | {} | {} |",
                t.key,
                cell(t.meaning),
                t.value,
                cell(t.unit),
                t.min,
                t.max,
                cell(t.section),
                cell(t.source),
                if t.configurable { "yes" } else { "no" },
                if t.overridden {
                    format!("yes (default {})", t.default)
                } else {
                    "no".into()
                }
            );
        }
        let _ = writeln!(s);
    }
    s
}

//! Plain-text rendering: what a clinician reads in 30 seconds, most severe finding first, each
//! with its evidence and citation.

use std::fmt::Write;

use osteoguard_core::facts::spine::LevelState;
use osteoguard_core::{Assessment, Severity};

fn sex_word(a: &Assessment) -> &'static str {
    match a.patient.sex {
        osteoguard_core::model::Sex::Female => "female",
        osteoguard_core::model::Sex::Male => "male",
        osteoguard_core::model::Sex::Other => "other sex",
        osteoguard_core::model::Sex::Unknown => "sex unknown",
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>, unknown: &str) -> String {
    v.map(|x| x.to_string())
        .unwrap_or_else(|| unknown.to_string())
}

/// What the text rendering shows besides the clinical text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// Also print each finding's specification section and machine-readable trace (spec
    /// vocabulary: knowledge.md sections, clause and item numbers, verification states) and the
    /// decision-table row of the risk category. A clinician's report leaves them out.
    pub verbose: bool,
}

/// Renders the assessment as plain text, as a clinician reads it.
pub fn render(a: &Assessment) -> String {
    render_with(a, TextOptions::default())
}

/// Renders the assessment as plain text with `options`.
pub fn render_with(a: &Assessment, options: TextOptions) -> String {
    let mut s = String::new();
    // `write!` to a String cannot fail; the results are ignored deliberately.
    let age = a
        .patient
        .age_years
        .map(|y| format!("{y} y"))
        .unwrap_or_else(|| "age unknown".into());
    let _ = writeln!(
        s,
        "osteoguard — {} ({}, {}) as of {}",
        a.patient.reference,
        sex_word(a),
        age,
        a.as_of
    );
    let _ = writeln!(s);
    let row = a
        .fracture_risk
        .row
        .as_deref()
        .filter(|_| options.verbose)
        .map(|r| format!(" [ACR-2022 row {r}]"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "Fracture risk: {}{}",
        a.fracture_risk.category.to_uppercase(),
        row
    );
    for b in &a.fracture_risk.basis {
        let _ = writeln!(s, "  - {b}");
    }

    let gc = &a.glucocorticoid;
    let _ = writeln!(
        s,
        "Glucocorticoid: {} mg prednisone-eq/day now; {} g in the last 12 months; GIOP scope: {}{}",
        opt(gc.current_prednisone_equivalent_mg_per_day, "unknown"),
        opt(
            gc.cumulative_prednisone_equivalent_grams_last_12_months,
            "unknown"
        ),
        match gc.qualifying {
            osteoguard_core::Tri::True => "yes",
            osteoguard_core::Tri::False => "no",
            osteoguard_core::Tri::Unknown => "unknown",
        },
        if gc.physiologic_replacement {
            " (physiological replacement)"
        } else {
            ""
        }
    );
    let dm = &a.denosumab;
    if dm.dose_count > 0 || dm.status != "not-documented" {
        let _ = writeln!(
            s,
            "Denosumab: {} doses, last {}, next due {}; status {}{}",
            dm.dose_count,
            opt(dm.last_dose, "unknown"),
            opt(dm.next_due, "—"),
            dm.status,
            dm.transition
                .map(|t| format!(
                    "; transition {} on {t}",
                    dm.transition_agent.as_deref().unwrap_or("therapy")
                ))
                .unwrap_or_default()
        );
    }
    if let Some(t) = a.bone_density.lowest_t_score {
        let _ = writeln!(
            s,
            "Bone density: lowest T-score {t} ({}, {})",
            a.bone_density
                .lowest_t_score_site
                .map(|x| x.label())
                .unwrap_or("site unknown"),
            opt(a.bone_density.lowest_t_score_date, "date unknown")
        );
    }
    let known: Vec<String> = a
        .spine
        .iter()
        .filter(|l| l.state != LevelState::Unknown)
        .map(|l| match l.since {
            Some(d) => format!("{} {} (since {d})", l.level, l.state.as_str()),
            None => format!("{} {}", l.level, l.state.as_str()),
        })
        .collect();
    if !known.is_empty() {
        let _ = writeln!(s, "Spine: {}", known.join("; "));
    }

    let _ = writeln!(s);
    if a.findings.is_empty() {
        let _ = writeln!(s, "No findings.");
    } else {
        let _ = writeln!(s, "Findings ({}), most severe first:", a.findings.len());
    }
    for (i, f) in a.findings.iter().enumerate() {
        let tag = match f.severity {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Moderate => "MODERATE",
            Severity::Info => "INFO",
        };
        let _ = writeln!(s, "{:>2}. [{tag}] {} — {}", i + 1, f.code, f.summary);
        let _ = writeln!(s, "    → {}", f.recommendation);
        if let Some(due) = f.due {
            let _ = writeln!(s, "    Due: {due}");
        }
        for e in &f.evidence {
            match e.date {
                Some(d) => {
                    let _ = writeln!(s, "    • {} ({d}): {}", e.reference, e.detail);
                }
                None => {
                    let _ = writeln!(s, "    • {}: {}", e.reference, e.detail);
                }
            }
        }
        for m in &f.inputs_missing {
            let _ = writeln!(s, "    ? missing: {m}");
        }
        for n in &f.notes {
            let _ = writeln!(s, "    note: {n}");
        }
        let _ = writeln!(s, "    Source: {}", f.citation);
        for r in &f.references {
            let _ = writeln!(s, "      {r}");
        }
        if options.verbose {
            let _ = writeln!(s, "    rule: knowledge.md {}", f.rule_section);
            for t in &f.trace {
                let _ = writeln!(s, "    trace: {t}");
            }
        }
    }
    if !a.tasks.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "Tasks:");
        for t in &a.tasks {
            let _ = writeln!(
                s,
                "  [ ] {} {} — {}",
                opt(t.due, "no date"),
                t.code,
                t.description
            );
        }
    }
    if !a.data_quality.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "Data quality ({}):", a.data_quality.len());
        for d in &a.data_quality {
            let _ = writeln!(s, "  - {} {}: {}", d.reference, d.field, d.problem);
        }
    }
    let _ = writeln!(s);
    let p = &a.provenance;
    let _ = writeln!(
        s,
        "osteoguard {} · knowledge.md {} · config {}{}",
        p.engine_version,
        p.knowledge_version,
        p.config_hash,
        if p.overridden_keys.is_empty() {
            String::new()
        } else {
            format!(" (overridden: {})", p.overridden_keys.join(", "))
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use osteoguard_core::testkit::text_scenarios;
    use osteoguard_core::Config;

    /// The clinician's text leaves the specification's vocabulary out; `--verbose` prints the
    /// rule section and each trace line of every finding.
    #[test]
    fn trace_and_section_only_when_verbose() {
        let s = text_scenarios()
            .into_iter()
            .find(|s| s.name == "glucocorticoid-fracture")
            .expect("scenario");
        let a = osteoguard_core::assess(&s.record, s.as_of, &Config::default());
        let traced: Vec<&String> = a.findings.iter().flat_map(|f| &f.trace).collect();
        assert!(!traced.is_empty(), "the scenario has trace lines");
        let plain = render(&a);
        let verbose = render_with(&a, TextOptions { verbose: true });
        assert!(!plain.contains("knowledge.md §"), "{plain}");
        assert!(!plain.contains("trace:"), "{plain}");
        for t in traced {
            assert!(verbose.contains(&format!("    trace: {t}")), "{verbose}");
        }
        for f in &a.findings {
            assert!(verbose.contains(&format!("    rule: knowledge.md {}", f.rule_section)));
        }
    }
}

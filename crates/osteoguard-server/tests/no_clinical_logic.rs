//! ARCHITECTURE.md invariants "no clinical number outside the threshold table" and "the
//! services hold no clinical logic", enforced where a test can: a scan of the non-test sources
//! of the CDS service and the report for the clinical literals of knowledge.md §2, §5 and §6
//! (the denosumab schedule 154/182/210/294 days, the CTX dates 91 days and the 28-day grace,
//! the 2.5/7.5 mg glucocorticoid bands, the −2.5/−3.5 T-score lines), and of the order-hook
//! code for clinical decisions of its own (ingredient matching, dose counts).

use std::path::{Path, PathBuf};

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a source file: everything before its `#[cfg(test)]` module, comments removed.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = match line.find("//") {
            Some(j) => &line[..j],
            None => line,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Integer literals of the denosumab schedule and CTX dates (days).
const DAYS: [&str; 6] = ["154", "182", "210", "294", "91", "28"];

/// Whether a line of code holds one of the clinical literals: a day count of [`DAYS`] (not part
/// of a date, identifier or larger number), a negative 2.5/3.5 (T-score lines), or 2.5/7.5
/// followed by `mg` or by `, 7.5` (glucocorticoid bands).
fn has_clinical_literal(line: &str) -> bool {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
            j += 1;
        }
        let token = &line[i..j];
        let next_is_word = j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_');
        let before = line[..i].trim_end();
        let negative = before.ends_with('-');
        let after = line[j..].trim_start();
        let hit = (DAYS.contains(&token) && !next_is_word && !(i > 0 && b[i - 1] == b'-'))
            || (negative && (token == "2.5" || token == "3.5"))
            || ((token == "2.5" || token == "7.5")
                && (after.starts_with("mg")
                    || after.trim_start_matches([',', ' ']).starts_with("7.5")));
        if hit {
            return true;
        }
        i = j;
    }
    false
}

#[test]
fn services_hold_no_clinical_literals() {
    let mut files = Vec::new();
    rust_files(&crate_src("osteoguard-server"), &mut files);
    rust_files(&crate_src("osteoguard-report"), &mut files);
    files.sort();
    assert!(files.len() > 10, "sources found: {files:?}");
    let mut hits = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in code_lines(&text) {
            if has_clinical_literal(&line) {
                hits.push(format!("{}:{n}: {}", f.display(), line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "clinical literals outside the threshold table:\n{}",
        hits.join("\n")
    );
}

#[test]
fn order_hooks_make_no_clinical_decision() {
    let text = std::fs::read_to_string(crate_src("osteoguard-server").join("hooks.rs")).unwrap();
    let code: Vec<String> = code_lines(&text).into_iter().map(|(_, l)| l).collect();
    let code = code.join("\n");
    for forbidden in ["Ingredient", "dose_count", "add_days", "Severity::Critical"] {
        assert!(
            !code.contains(forbidden),
            "hooks.rs decides something clinical itself ({forbidden})"
        );
    }
    assert!(code.contains("assess_what_if"));
}

/// The scan itself finds what it looks for (so an empty result means something).
#[test]
fn the_scan_recognises_clinical_literals() {
    for s in [
        "let due = add_days(d, 182);",
        "ctx_lab(ctx, code, Some(add_days(t, 91)))",
        "const T_LINES: [f64; 2] = [-2.5, -3.5];",
        "let t = - 3.5;",
        "const GC: [f64; 2] = [2.5, 7.5];",
        "const DMAB_GRACE_DAYS: i64 = 28;",
        "\"prednisone 7.5 mg\"",
    ] {
        assert!(has_clinical_literal(s), "{s}");
    }
    for s in [
        "let r = 2.5;",
        "d(\"2023-09-28\")",
        "width=1182",
        "x28",
        "let n = 1.28;",
        "let r = if n > 60 { 3.5 } else { 5.5 };",
    ] {
        assert!(!has_clinical_literal(s), "{s}");
    }
}

/// Issue 17: which findings form one card, which suggestion is recommended, the indicator and
/// whether zoledronic acid may be offered are the core's (`assessment::situations`); the card
/// renderer only turns that plan into JSON.
#[test]
fn cards_render_the_core_plan_and_decide_nothing() {
    let text = std::fs::read_to_string(crate_src("osteoguard-server").join("cards.rs")).unwrap();
    let code: Vec<String> = code_lines(&text).into_iter().map(|(_, l)| l).collect();
    let code = code.join("\n");
    for forbidden in [
        "ZoledronateRenal",
        "Ingredient",
        "Severity::",
        "zoledronate_renal",
        "recommended: true",
    ] {
        assert!(
            !code.contains(forbidden),
            "cards.rs decides something clinical itself ({forbidden})"
        );
    }
    assert!(code.contains("SituationPlan"));
}

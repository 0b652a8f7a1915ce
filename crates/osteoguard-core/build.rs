//! Computes which finding codes read which threshold (the catalogue's "used by"), from the
//! sources themselves, so that the list can never be a typed copy that drifts.
//!
//! A rule module `src/rules/<code>.rs` reads a threshold when its non-test code names the
//! threshold's field (`t.dmab_grace_end_days`, `ctx.t().acute_max_days`), or when it reads a
//! fact (`ctx.risk`, `ctx.spine` …), a shared rule module (`safety::`) or a sibling rule's helpers
//! (`denosumab_common::`) whose non-test code names it (or whose facts do). A rule module is one that
//! declares `pub const CITATION`. This over-approximates:
//! a reader of a fact is listed for every threshold that fact reads. `src/rules/tasks.rs` counts as the
//! pseudo-code `tasks`. The result is written to `$OUT_DIR/used_by.rs` as a table of
//! `(field, &[code])`, sorted; `thresholds.rs` includes it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The part of a source file before its `#[cfg(test)]` module, without `//` comments.
fn code_of(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let body = text.split("#[cfg(test)]").next().unwrap_or_default();
    body.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `code` contains `word` as a whole identifier.
fn names(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Field names of the threshold table: rows start with `name: i64 =` or `name: f64 =`.
fn threshold_fields(src: &str) -> Vec<String> {
    let table = src.split("threshold_table! {").nth(1).unwrap_or_default();
    table
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let (name, rest) = l.split_once(':')?;
            let rest = rest.trim_start();
            (name.chars().all(is_ident)
                && !name.is_empty()
                && (rest.starts_with("i64 =") || rest.starts_with("f64 =")))
            .then(|| name.to_string())
        })
        .collect()
}

fn main() {
    let src = Path::new("src");
    println!("cargo:rerun-if-changed=src/thresholds.rs");
    println!("cargo:rerun-if-changed=src/rules");
    println!("cargo:rerun-if-changed=src/facts");
    let thresholds = fs::read_to_string(src.join("thresholds.rs")).unwrap_or_default();
    let fields = threshold_fields(&thresholds);

    let reads = |code: &str| -> BTreeSet<String> {
        fields.iter().filter(|f| names(code, f)).cloned().collect()
    };
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    for dir in ["rules", "facts"] {
        let Ok(entries) = fs::read_dir(src.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            println!("cargo:rerun-if-changed={}", path.display());
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_some_and(|x| x == "rs") && stem != "mod" {
                modules.insert(format!("{dir}/{stem}"), code_of(&path));
            }
        }
    }
    // Facts a rule reads through `Ctx`, by field name.
    let facts = [
        ("ctx.gc", "facts/gc"),
        ("ctx.spine", "facts/spine"),
        ("ctx.dxa", "facts/dxa"),
        ("ctx.dmab", "facts/denosumab"),
        ("ctx.therapy", "facts/therapy"),
        ("ctx.risk", "facts/risk"),
        ("labs::", "facts/labs"),
    ];
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in modules.iter().filter(|(m, _)| m.starts_with("rules/")) {
        let stem = &module["rules/".len()..];
        // A finding's own module declares its `CITATION`; the others (`safety`,
        // `denosumab_common`, test modules) are shared helpers, counted for the rules that
        // name them (`safety::`) below.
        if stem != "tasks" && !code.contains("pub const CITATION") {
            continue;
        }
        let finding = if stem == "tasks" {
            "tasks".to_string()
        } else {
            stem.replace('_', "-")
        };
        let mut read = reads(code);
        for (marker, fact) in facts {
            if code.contains(marker) {
                read.extend(reads(modules.get(fact).map_or("", String::as_str)));
            }
        }
        for (other, other_code) in modules.iter().filter(|(m, _)| m.starts_with("rules/")) {
            let other_stem = &other["rules/".len()..];
            if other_stem != stem && code.contains(&format!("{other_stem}::")) {
                read.extend(reads(other_code));
                for (marker, fact) in facts {
                    if other_code.contains(marker) {
                        read.extend(reads(modules.get(fact).map_or("", String::as_str)));
                    }
                }
            }
        }
        for field in read {
            used.entry(field).or_default().insert(finding.clone());
        }
    }
    let mut out = String::from(
        "/// Generated by build.rs: threshold field → the finding codes (and `tasks`) that read it.\n\
         pub const USED_BY: &[(&str, &[&str])] = &[\n",
    );
    for f in &fields {
        let codes: Vec<String> = used
            .get(f)
            .map(|s| s.iter().map(|c| format!("{c:?}")).collect())
            .unwrap_or_default();
        out.push_str(&format!("    ({f:?}, &[{}]),\n", codes.join(", ")));
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("used_by.rs");
    if let Err(e) = fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}

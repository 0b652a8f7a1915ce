//! The `osteoguard.assessment/1` JSON rendering.
//!
//! Deterministic: struct fields serialise in declaration order, every list is sorted by the
//! engine, and numbers are rounded by the assessment builder, so the same record and as-of date
//! give byte-identical output.

use osteoguard_core::Assessment;

/// Pretty-printed JSON with a trailing newline.
pub fn render(assessment: &Assessment) -> String {
    match serde_json::to_string_pretty(assessment) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Serialising plain data with string keys cannot fail; keep a valid JSON answer anyway.
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}

//! HTML report (not yet implemented).

use osteoguard_core::Assessment;

/// Renders a self-contained HTML report.
pub fn render(assessment: &Assessment) -> String {
    let _ = assessment;
    String::from("<!doctype html><html><body>HTML report not yet implemented</body></html>")
}

//! `osteoguard programme-report` at the binary's edge: exit codes, the as-of date (given or
//! derived, never the clock) and both formats, on the real Synthea bundles of `../shared/data`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osteoguard"))
}

fn bundles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/synthea-r4-bundles")
}

#[test]
fn bad_dates_and_unreadable_input_exit_2() {
    let out = bin()
        .args(["programme-report"])
        .arg(bundles())
        .args(["--period-start", "2020-13-01", "--period-end", "2020-12-31"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--period-start"));
    let out = bin()
        .args(["programme-report", "/nonexistent/export"])
        .args(["--period-start", "2020-01-01", "--period-end", "2020-12-31"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn json_and_html_on_real_bundles_with_given_and_derived_as_of() {
    let dir = std::env::temp_dir().join(format!("osteoguard-programme-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("r.json");
    let out = bin()
        .args(["programme-report"])
        .arg(bundles())
        .args(["--period-start", "2000-01-01", "--period-end", "2018-12-31"])
        .args(["--as-of", "2019-06-30", "--format", "json", "-o"])
        .arg(&json)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read")).expect("json");
    assert_eq!(v["schema"], "osteoguard.programme/1");
    assert_eq!(v["asOf"], "2019-06-30");
    assert_eq!(v["asOfSource"], "given (--as-of)");
    assert_eq!(v["summary"]["kpis"].as_array().map(Vec::len), Some(10));

    // Without --as-of: derived from the period end or the data, and said so.
    let html = dir.join("r.html");
    let out = bin()
        .args(["programme-report"])
        .arg(bundles())
        .args([
            "--period-start",
            "2000-01-01",
            "--period-end",
            "2010-12-31",
            "-o",
        ])
        .arg(&html)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).expect("read");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("as of <b>2010-12-31</b> (derived: the period end)"));
    assert!(page.contains("<svg"));
    assert!(!page.contains("<script"));
    let _ = std::fs::remove_dir_all(&dir);
}

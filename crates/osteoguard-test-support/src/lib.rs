//! # osteoguard-test-support — helpers for osteoguard's tests (never published)
//!
//! A dev-dependency of the crates whose tests open HTML pages in headless Chromium
//! (`osteoguard-report`, `osteoguard-screen`, `osteoguard-programme`): one place that finds the
//! browser and builds its command line.
//!
//! **Skip rule** (the same for every browser test): with `OSTEOGUARD_SKIP_BROWSER=1` the test
//! skips (says so on stderr); otherwise Chromium must be at `$CHROMIUM` or `/usr/bin/chromium`,
//! and a missing browser **fails** the test with the command that installs it.
//!
//! Also [`files`]: every file under a directory, in a stable order (the suites that walk the
//! shared FHIR data: `osteoguard-fhir`, `osteoguard-cli`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Chromium at `$CHROMIUM` or `/usr/bin/chromium`; `None` (skip) only with
/// `OSTEOGUARD_SKIP_BROWSER=1`.
///
/// # Panics
/// When the browser is not there and the skip is not asked for: a browser test must not pass
/// silently on a machine without a browser.
pub fn chromium() -> Option<PathBuf> {
    if std::env::var("OSTEOGUARD_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("OSTEOGUARD_SKIP_BROWSER=1: browser test skipped");
        return None;
    }
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "headless Chromium not found at {} — install it with `apt-get install chromium` \
         (CI's .ci/run installs it), point CHROMIUM at it, or set OSTEOGUARD_SKIP_BROWSER=1",
        path.display()
    );
    Some(path)
}

/// Headless Chromium with a throw-away profile directory, no network chatter, no scrollbars
/// and a device scale of 1 (screenshots are exactly the window size). Add the window size,
/// `--screenshot=…` or `--dump-dom`, and the URL.
pub fn chromium_cmd(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Every file under `dir`, recursively, sorted (an unreadable directory contributes nothing).
pub fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    for p in v {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_is_headless_with_its_profile() {
        let c = super::chromium_cmd(
            std::path::Path::new("/usr/bin/chromium"),
            std::path::Path::new("/tmp/p"),
        );
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"--headless".to_string()), "{args:?}");
        assert_eq!(
            args.last().map(String::as_str),
            Some("--user-data-dir=/tmp/p")
        );
    }
}

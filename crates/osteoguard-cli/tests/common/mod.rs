//! Helpers shared by the CLI integration tests that read `../shared/data`.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$OSTEOGUARD_SHARED/data`, else `<workspace>/../shared/data`; missing data fails the test
/// unless `OSTEOGUARD_ALLOW_NO_SHARED=1` (then `None`: the caller skips).
pub fn shared() -> Option<PathBuf> {
    let dir = match std::env::var_os("OSTEOGUARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let data = dir.join("data");
    if data.is_dir() {
        return Some(data);
    }
    if std::env::var("OSTEOGUARD_ALLOW_NO_SHARED").as_deref() == Ok("1") {
        return None;
    }
    panic!(
        "shared test data not found at {} (set OSTEOGUARD_SHARED)",
        data.display()
    );
}

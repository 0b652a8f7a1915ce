//! Helpers shared by the integration tests that read `../shared/data`.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

/// `$OSTEOGUARD_SHARED/data`, else `<workspace>/../shared/data`.
///
/// A missing directory is a test failure (so CI cannot silently skip the real-data tests)
/// unless `OSTEOGUARD_ALLOW_NO_SHARED=1`, in which case `None` is returned and the caller skips.
pub fn shared() -> Option<PathBuf> {
    let dir = match std::env::var_os("OSTEOGUARD_SHARED") {
        Some(p) => PathBuf::from(p),
        // CARGO_MANIFEST_DIR = <root>/crates/osteoguard-fhir; shared = <root>/../shared
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let data = dir.join("data");
    if data.is_dir() {
        return Some(data);
    }
    if std::env::var("OSTEOGUARD_ALLOW_NO_SHARED").as_deref() == Ok("1") {
        eprintln!(
            "shared data not found at {}: skipped (OSTEOGUARD_ALLOW_NO_SHARED=1)",
            data.display()
        );
        return None;
    }
    panic!(
        "shared test data not found at {} — set OSTEOGUARD_SHARED=/path/to/shared (the directory \
         holding data/), or OSTEOGUARD_ALLOW_NO_SHARED=1 to skip the real-data tests explicitly",
        data.display()
    );
}

/// The bytes of a file, gunzipped when it ends in `.gz`.
pub fn read_bytes(p: &Path) -> Vec<u8> {
    let raw = match std::fs::read(p) {
        Ok(b) => b,
        Err(e) => panic!("{}: {e}", p.display()),
    };
    if p.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        if let Err(e) = flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out) {
            panic!("{}: {e}", p.display());
        }
        out
    } else {
        raw
    }
}

/// Every file under `dir`, recursively, sorted (not every suite walks directories).
#[allow(unused_imports)]
pub use osteoguard_test_support::files;

/// The parsed lines of an NDJSON file (`.gz` allowed).
pub fn ndjson(p: &Path) -> Vec<serde_json::Value> {
    let bytes = read_bytes(p);
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| match serde_json::from_slice(l) {
            Ok(v) => v,
            Err(e) => panic!("{}: {e}", p.display()),
        })
        .collect()
}

/// A JSON file (`.gz` allowed).
pub fn json(p: &Path) -> serde_json::Value {
    match serde_json::from_slice(&read_bytes(p)) {
        Ok(v) => v,
        Err(e) => panic!("{}: {e}", p.display()),
    }
}

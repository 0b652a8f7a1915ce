//! Issue 16 §8: an error never repeats itself. Printed as a chain (`{:#}` in the command line:
//! each error's message, then its source's, joined by ": "), no message may already contain the
//! message of its source ("incomplete deflate stream: incomplete deflate stream"). Every error
//! here comes from a real failure of the reader on a real file.

use std::error::Error;
use std::io::Write;
use std::path::Path;

use osteoguard_fhir::{read_path, read_path_with, ReadError, ReadLimits};

/// The messages of `e` and of each of its sources, outermost first.
fn chain(e: &dyn Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out
}

/// No message of the chain contains the message of a later one, and the printed chain has no
/// segment twice in a row.
fn assert_no_repeat(e: &ReadError) {
    let c = chain(e);
    for (i, outer) in c.iter().enumerate() {
        for inner in &c[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{outer:?} repeats its source {inner:?}"
            );
        }
    }
    let printed = c.join(": ");
    let segments: Vec<&str> = printed.split(": ").collect();
    for w in segments.windows(2) {
        assert_ne!(w[0], w[1], "repeated segment in {printed:?}");
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

/// A gzip member cut in half: the decoder's error is an I/O error.
fn truncated_gzip() -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..2000 {
        writeln!(
            enc,
            r#"{{"resourceType":"Patient","id":"p{i}","gender":"female","birthDate":"1950-01-01"}}"#
        )
        .expect("gzip write");
    }
    let full = enc.finish().expect("gzip finish");
    full[..full.len() / 2].to_vec()
}

#[test]
fn reader_errors_do_not_repeat_their_source() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut errors: Vec<(&str, ReadError)> = Vec::new();
    let mut expect_err =
        |what: &'static str, r: Result<osteoguard_fhir::ReadOutput, ReadError>| match r {
            Err(e) => errors.push((what, e)),
            Ok(_) => panic!("{what}: read without error"),
        };
    expect_err("missing file", read_path(&dir.join("absent.json")));
    expect_err(
        "truncated gzip",
        read_path(&write(dir, "Patient.ndjson.gz", &truncated_gzip())),
    );
    expect_err(
        "not JSON",
        read_path(&write(dir, "bad.json", b"{\"resourceType\": ")),
    );
    expect_err(
        "not FHIR",
        read_path(&write(dir, "notfhir.json", b"{\"hello\": 1}")),
    );
    expect_err(
        "line over the limit",
        read_path_with(
            &write(dir, "long.ndjson", &[b'x'; 4096]),
            ReadLimits {
                max_line_bytes: 1024,
            },
        ),
    );
    let deflate = errors
        .iter()
        .find(|(w, _)| *w == "truncated gzip")
        .map(|(_, e)| e.to_string())
        .unwrap_or_default();
    assert!(deflate.contains("Patient.ndjson.gz"), "{deflate}");
    assert!(
        deflate.matches("deflate").count() <= 1,
        "the decoder's message once: {deflate}"
    );
    for (what, e) in &errors {
        assert!(!e.to_string().is_empty(), "{what}");
        assert_no_repeat(e);
    }
}

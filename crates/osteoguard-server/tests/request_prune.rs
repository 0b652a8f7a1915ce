//! The request is parsed without the members the FHIR reader never reads
//! (`osteoguard_fhir::NEVER_READ`) except those the service names in `hooks::REQUEST_KEEPS`:
//! this scan makes sure the service's own code reads none of the members left out (a string
//! literal naming one, outside `REQUEST_KEEPS` and the benchmark binary, fails it). The
//! response bytes themselves are `tests/response_bytes.rs`'s; the one kept member, a
//! searchset's `link`, is followed in `tests/server.rs` (the paginated prefetch).

use std::path::{Path, PathBuf};

use osteoguard_fhir::NEVER_READ;
use osteoguard_server::hooks::REQUEST_KEEPS;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            // The benchmark binary reads its own copy of the seed case, not a request.
            if p.file_name().is_some_and(|n| n != "bin") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_service_reads_no_member_left_out_of_the_request() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 5, "sources found: {files:?}");
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for name in NEVER_READ.iter().filter(|n| !REQUEST_KEEPS.contains(n)) {
            if text.contains(&format!("\"{name}\"")) {
                found.push(format!("{}: \"{name}\"", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "members left out of the request but read: {found:?}"
    );
}

#[test]
fn every_kept_member_is_one_the_reader_never_reads() {
    for k in REQUEST_KEEPS {
        assert!(
            NEVER_READ.contains(k),
            "{k} is kept anyway: not in NEVER_READ"
        );
    }
}

//! Reading speed of the FHIR reader against a plain JSON parse of the same bytes.
//!
//! Input: the synthea-r4-cohort-ndjson export of the shared data (114 patients, ~35,000
//! resources), every `.ndjson` / `.ndjson.gz` file decompressed and concatenated in memory.
//! * `serde_json_value`: `serde_json::from_slice::<serde_json::Value>` on every line (the floor:
//!   parse only);
//! * `parse_for_reading`: `osteoguard_fhir::parse_for_reading` on every line (the same parse,
//!   without the members the reader never reads: what `osteoguard screen` does in pass 2);
//! * `osteoguard_fhir`: `read_ndjson_bytes` on the whole buffer (parse, group by patient, map
//!   codes/units/dates, build the patient records).
//!
//! Each is measured twice: throughput in bytes (MB/s) and in resources (resources/s).
//! Run: `cargo bench -p osteoguard-fhir --bench read` (reported in BENCHMARKS.md).

use std::io::Read;
use std::path::PathBuf;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn cohort_bytes() -> Vec<u8> {
    let shared = std::env::var_os("OSTEOGUARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("data/synthea-r4-cohort-ndjson");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".ndjson"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let raw = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if f.extension().is_some_and(|e| e == "gz") {
            flate2::read::MultiGzDecoder::new(raw.as_slice())
                .read_to_end(&mut all)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        } else {
            all.extend_from_slice(&raw);
        }
        if all.last() != Some(&b'\n') {
            all.push(b'\n');
        }
    }
    all
}

fn parse_values(bytes: &[u8]) -> usize {
    let mut n = 0;
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(line).expect("valid JSON");
        black_box(&v);
        n += 1;
    }
    n
}

fn parse_pruned(bytes: &[u8]) -> usize {
    // One arena, reset after each tree (screening resets it after each patient).
    let mut arena = osteoguard_fhir::json::Arena::new();
    let mut n = 0;
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let v = osteoguard_fhir::parse_for_reading(&arena, line).expect("valid JSON");
        black_box(&v);
        arena.reset();
        n += 1;
    }
    n
}

fn read_fhir(bytes: &[u8]) -> usize {
    let out = osteoguard_fhir::read_ndjson_bytes(bytes, "cohort.ndjson").expect("reads");
    black_box(&out);
    out.stats.total().read as usize
}

fn bench(c: &mut Criterion) {
    let bytes = cohort_bytes();
    let resources = parse_values(&bytes);
    assert_eq!(read_fhir(&bytes), resources);
    assert_eq!(parse_pruned(&bytes), resources);
    eprintln!(
        "input: {:.1} MB, {} resources",
        bytes.len() as f64 / 1e6,
        resources
    );
    for (name, tp) in [
        ("bytes", Throughput::Bytes(bytes.len() as u64)),
        ("resources", Throughput::Elements(resources as u64)),
    ] {
        let mut g = c.benchmark_group(format!("read_cohort_ndjson/{name}"));
        g.sample_size(10);
        g.throughput(tp);
        g.bench_function("serde_json_value", |b| b.iter(|| parse_values(&bytes)));
        g.bench_function("parse_for_reading", |b| b.iter(|| parse_pruned(&bytes)));
        g.bench_function("osteoguard_fhir", |b| b.iter(|| read_fhir(&bytes)));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

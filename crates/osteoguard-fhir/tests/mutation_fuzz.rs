//! Mutation fuzz: real resources from the shared data, randomly damaged, must never panic the
//! reader or the engine.
//!
//! Each case picks one seed document (a real resource with its Patient, taken from the Synthea
//! transaction bundles, the Synthea/Bulk NDJSON exports, the HL7 R4 examples, the eCQM test
//! cases and the CDS Hooks requests), applies 1–5 random structural mutations (replace a value
//! at a random JSON path with another type, a huge or tiny number, a NaN-like / empty / odd
//! string, a deeply nested value or a value from another seed; delete a key; duplicate an array
//! element or a key), then either hands the values to [`read_resources`] or serialises them and
//! damages the bytes (truncate, flip bytes) before [`read_json_bytes`] / [`read_ndjson_bytes`].
//! Every patient read is assessed at three dates and the assessment serialised to JSON.
//! A panic anywhere fails the test (proptest shrinks and prints the case).
//!
//! Cases: `OSTEOGUARD_FUZZ_CASES` (default 3000, a few seconds in debug). The long run
//! (docs/fuzzing.md):
//!
//! ```sh
//! OSTEOGUARD_FUZZ_CASES=1000000 cargo test --release -p osteoguard-fhir --test mutation_fuzz -- --nocapture
//! ```

use std::path::Path;
use std::sync::OnceLock;

use chrono::NaiveDate;
use osteoguard_core::{assess_with_issues, Config};
use osteoguard_fhir::{read_json_bytes, read_ndjson_bytes, read_resources, ReadError, ReadOutput};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use serde_json::{json, Value};

mod common;
use common::{files, json as read_json, ndjson, read_bytes, shared};

/// One seed: the resources of a small document (a Patient and one other resource, or a whole
/// small file) and how it was written.
struct Seed {
    doc: Value,
    /// `doc` is an array of resources written one per line (NDJSON).
    ndjson: bool,
}

fn id_of(v: &Value) -> Option<&str> {
    v.get("id").and_then(Value::as_str)
}

fn subject_ref(v: &Value) -> Option<&str> {
    ["subject", "patient", "beneficiary"]
        .iter()
        .find_map(|k| v.get(*k)?.get("reference")?.as_str())
}

/// Up to `n` items of `v`, evenly spread, always including those for which `keep` holds.
fn spread<T: Clone>(v: &[T], n: usize, keep: impl Fn(&T) -> bool) -> Vec<T> {
    let step = (v.len() / n.max(1)).max(1);
    v.iter()
        .enumerate()
        .filter(|(i, x)| i % step == 0 || keep(x))
        .map(|(_, x)| x.clone())
        .collect()
}

const INTERESTING: [&str; 9] = [
    "904419",
    "312617",
    "38265-5",
    "33914-3",
    "64859006",
    "443165006",
    "Osteopor",
    "fracture",
    "predni",
];

fn interesting_bytes(b: &[u8]) -> bool {
    // `str::contains` (std, optimised even in debug builds).
    let s = String::from_utf8_lossy(b);
    INTERESTING.iter().any(|k| s.contains(k))
}

fn interesting(v: &Value) -> bool {
    let s = v.to_string();
    INTERESTING.iter().any(|k| s.contains(k))
}

fn ndjson_seeds(dir: &Path, per_type: usize, seeds: &mut Vec<Seed>) {
    let mut all = Vec::new();
    files(dir, &mut all);
    let patients: Vec<Value> = all
        .iter()
        .filter(|p| p.to_string_lossy().contains("/Patient."))
        .flat_map(|p| ndjson(p))
        .collect();
    for f in &all {
        let name = f.to_string_lossy();
        if !name.contains(".ndjson") || name.contains("/Patient.") || name.ends_with("log.ndjson") {
            continue;
        }
        let bytes = read_bytes(f);
        let lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        // Evenly spread, plus a few bone-health resources (found on the raw bytes: cheap).
        let step = (lines.len() / per_type.max(1)).max(1);
        let mut extra = 0;
        for (i, line) in lines.iter().enumerate() {
            let pick = i % step == 0 || (extra < per_type && interesting_bytes(line));
            if !pick {
                continue;
            }
            if i % step != 0 {
                extra += 1;
            }
            let Ok(r) = serde_json::from_slice::<Value>(line) else {
                panic!("{}:{}: not JSON", f.display(), i + 1)
            };
            let pat = subject_ref(&r)
                .and_then(|s| s.rsplit('/').next())
                .and_then(|pid| patients.iter().find(|p| id_of(p) == Some(pid)));
            let doc = match pat {
                Some(p) => json!([p, r]),
                None => json!([r]),
            };
            seeds.push(Seed { doc, ndjson: true });
        }
    }
    for p in patients.iter().take(20) {
        seeds.push(Seed {
            doc: json!([p]),
            ndjson: true,
        });
    }
}

fn bundle_seeds(dir: &Path, per_bundle: usize, seeds: &mut Vec<Seed>) {
    let mut all = Vec::new();
    files(dir, &mut all);
    for f in all {
        let mut b = read_json(&f);
        let entries = match b.get_mut("entry").map(Value::take) {
            Some(Value::Array(e)) => e,
            _ => Vec::new(),
        };
        let Some(pat) = entries
            .iter()
            .find(|e| e.pointer("/resource/resourceType") == Some(&json!("Patient")))
        else {
            continue;
        };
        let clinical: Vec<Value> = entries
            .iter()
            .filter(|e| {
                matches!(
                    e.pointer("/resource/resourceType").and_then(Value::as_str),
                    Some("MedicationRequest" | "Observation" | "Condition" | "Procedure")
                )
            })
            .cloned()
            .collect();
        // The Bundle without its entries (type, meta…), then the Patient and one resource.
        let shell = b;
        for e in spread(&clinical, per_bundle, interesting) {
            let mut doc = shell.clone();
            doc["entry"] = json!([pat, e]);
            seeds.push(Seed { doc, ndjson: false });
        }
    }
}

fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let Some(data) = shared() else {
            return Vec::new();
        };
        let mut seeds = Vec::new();
        bundle_seeds(&data.join("synthea-r4-bundles"), 25, &mut seeds);
        ndjson_seeds(&data.join("synthea-r4-cohort-ndjson"), 40, &mut seeds);
        ndjson_seeds(&data.join("bulk-10-patients"), 25, &mut seeds);
        // Every HL7 R4 example file (small; Bundles, contained Medications, odd shapes).
        let mut ex = Vec::new();
        files(&data.join("fhir-r4-examples"), &mut ex);
        // eCQM per-patient test folders (a sample) and the CDS Hooks requests.
        let mut ecqm = Vec::new();
        files(&data.join("ecqm-qicore-2024/tests"), &mut ecqm);
        let ecqm = spread(&ecqm, 120, |_| false);
        let mut cds = Vec::new();
        files(&data.join("cds-hooks"), &mut cds);
        for f in ex.iter().chain(ecqm.iter()).chain(cds.iter()) {
            if f.extension().is_some_and(|e| e == "json") {
                seeds.push(Seed {
                    doc: read_json(f),
                    ndjson: false,
                });
            }
        }
        assert!(seeds.len() > 500, "only {} seeds", seeds.len());
        seeds
    })
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Replacement {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Numbers at the edges of what JSON / f64 / i64 / u64 can hold.
    Edge(u8),
    Str(String),
    EmptyObject,
    EmptyArray,
    /// A value nested `depth` levels deep (arrays and objects alternating).
    Deep(u16),
    /// The value at a random node of another seed (right type, wrong place).
    Graft(usize, usize),
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Replacement),
    Delete(usize),
    Duplicate(usize),
    /// Renames a key (e.g. `valueQuantity` → `valueString`-like nonsense).
    Rename(usize, String),
}

#[derive(Debug, Clone)]
enum Bytes {
    None,
    Truncate(usize),
    Flip(Vec<(usize, u8)>),
    Insert(usize, Vec<u8>),
}

#[derive(Debug, Clone)]
struct Case {
    seed: usize,
    mutations: Vec<Mutation>,
    bytes: Bytes,
    /// Feed parsed values to `read_resources` instead of bytes.
    as_values: bool,
}

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("NaN".to_string()),
        Just("Infinity".to_string()),
        Just("-0".to_string()),
        Just("1e999".to_string()),
        Just("2023-02-30".to_string()),
        Just("2023-02-29T25:61:61+99:99".to_string()),
        Just("0000-00-00".to_string()),
        Just("9999-12-31T23:59:59.999999999Z".to_string()),
        Just("-2.5".to_string()),
        Just("tabs".to_string()),
        Just("mg/kg/d".to_string()),
        Just("Patient/".to_string()),
        Just("urn:uuid:".to_string()),
        Just("#".to_string()),
        Just("Patient/../../x/_history/1".to_string()),
        Just("http://snomed.info/sct".to_string()),
        Just("http://www.nlm.nih.gov/research/umls/rxnorm".to_string()),
        Just("http://loinc.org".to_string()),
        Just("8640".to_string()),
        Just("904419".to_string()),
        Just("38265-5".to_string()),
        Just("M80.08XA".to_string()),
        Just("\u{200b}\u{feff}é漢字🦴".to_string()),
        Just("x".repeat(10_000)),
        "\\PC{0,30}",
    ]
}

fn replacement(n_seeds: usize) -> impl Strategy<Value = Replacement> {
    prop_oneof![
        Just(Replacement::Null),
        any::<bool>().prop_map(Replacement::Bool),
        any::<i64>().prop_map(Replacement::Int),
        prop_oneof![
            any::<f64>(),
            -1.0e3..1.0e3f64,
            Just(0.0),
            Just(-0.0),
            Just(f64::MIN_POSITIVE)
        ]
        .prop_map(Replacement::Float),
        (0u8..8).prop_map(Replacement::Edge),
        odd_string().prop_map(Replacement::Str),
        Just(Replacement::EmptyObject),
        Just(Replacement::EmptyArray),
        (1u16..400).prop_map(Replacement::Deep),
        (0..n_seeds, any::<usize>()).prop_map(|(a, b)| Replacement::Graft(a, b)),
    ]
}

fn mutation(n_seeds: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), replacement(n_seeds)).prop_map(|(p, r)| Mutation::Replace(p, r)),
        2 => any::<usize>().prop_map(Mutation::Delete),
        1 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => (any::<usize>(), odd_string()).prop_map(|(p, k)| Mutation::Rename(p, k)),
    ]
}

fn bytes_damage() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        6 => Just(Bytes::None),
        2 => any::<usize>().prop_map(Bytes::Truncate),
        2 => proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6).prop_map(Bytes::Flip),
        1 => (any::<usize>(), prop_oneof![
                Just(b"\xff\xfe".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\xef\xbb\xbf".to_vec()),
                Just(b"{\"resourceType\":".to_vec()),
                Just(b"\x00".to_vec()),
                Just(b"]]]]".to_vec()),
            ]).prop_map(|(p, b)| Bytes::Insert(p, b)),
    ]
}

fn case(n_seeds: usize) -> impl Strategy<Value = Case> {
    (
        0..n_seeds,
        proptest::collection::vec(mutation(n_seeds), 0..6),
        bytes_damage(),
        any::<bool>(),
    )
        .prop_map(|(seed, mutations, bytes, as_values)| Case {
            seed,
            mutations,
            bytes,
            as_values,
        })
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Idx(usize),
}

/// Every node path of `v` (depth-first, the root first).
fn paths(v: &Value) -> Vec<Vec<Seg>> {
    fn walk(v: &Value, cur: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        out.push(cur.clone());
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    cur.push(Seg::Key(k.clone()));
                    walk(x, cur, out);
                    cur.pop();
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    cur.push(Seg::Idx(i));
                    walk(x, cur, out);
                    cur.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match s {
            Seg::Key(k) => cur.get_mut(k.as_str())?,
            Seg::Idx(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

fn deep(depth: u16) -> Value {
    let mut v = json!("bottom");
    for i in 0..depth {
        v = if i % 2 == 0 {
            json!([v])
        } else {
            json!({ "value": v })
        };
    }
    v
}

fn edge(k: u8) -> Value {
    match k {
        0 => json!(u64::MAX),
        1 => json!(i64::MIN),
        2 => json!(f64::MAX),
        3 => json!(-f64::MAX),
        4 => json!(1.0e-308),
        5 => json!(1.0e12 + 1.0),
        6 => json!(-1),
        _ => json!(0),
    }
}

fn apply(doc: &mut Value, m: &Mutation, seeds: &[Seed]) {
    let ps = paths(doc);
    let pick = |p: usize| &ps[p % ps.len()];
    match m {
        Mutation::Replace(p, r) => {
            let new = match r {
                Replacement::Null => Value::Null,
                Replacement::Bool(b) => json!(b),
                Replacement::Int(i) => json!(i),
                // Non-finite floats become null in serde_json (as they would on the wire).
                Replacement::Float(f) => json!(f),
                Replacement::Edge(k) => edge(*k),
                Replacement::Str(s) => json!(s),
                Replacement::EmptyObject => json!({}),
                Replacement::EmptyArray => json!([]),
                Replacement::Deep(d) => deep(*d),
                Replacement::Graft(s, q) => {
                    let src = &seeds[*s % seeds.len()].doc;
                    let sp = paths(src);
                    let path = &sp[q % sp.len()];
                    let mut src = src.clone();
                    node_mut(&mut src, path)
                        .map(Value::take)
                        .unwrap_or_default()
                }
            };
            if let Some(n) = node_mut(doc, pick(*p)) {
                *n = new;
            }
        }
        Mutation::Delete(p) => {
            let path = pick(*p);
            let Some((last, parent)) = path.split_last() else {
                *doc = Value::Null;
                return;
            };
            if let Some(parent) = node_mut(doc, parent) {
                match (parent, last) {
                    (Value::Object(m), Seg::Key(k)) => {
                        m.remove(k);
                    }
                    (Value::Array(a), Seg::Idx(i)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        Mutation::Duplicate(p) => {
            let path = pick(*p);
            let Some((last, parent)) = path.split_last() else {
                return;
            };
            if let Some(parent) = node_mut(doc, parent) {
                match (parent, last) {
                    (Value::Object(m), Seg::Key(k)) => {
                        if let Some(x) = m.get(k).cloned() {
                            // The same value under a sibling choice-type name.
                            m.insert(format!("{k}String"), x);
                        }
                    }
                    (Value::Array(a), Seg::Idx(i)) if *i < a.len() => {
                        let x = a[*i].clone();
                        a.insert(*i, x);
                    }
                    _ => {}
                }
            }
        }
        Mutation::Rename(p, new_key) => {
            let path = pick(*p);
            let Some((Seg::Key(k), parent)) = path.split_last() else {
                return;
            };
            if let Some(Value::Object(m)) = node_mut(doc, parent) {
                if let Some(x) = m.remove(k) {
                    m.insert(new_key.clone(), x);
                }
            }
        }
    }
}

fn serialise(seed: &Seed, doc: &Value) -> Vec<u8> {
    match (seed.ndjson, doc) {
        (true, Value::Array(items)) => {
            let mut out = Vec::new();
            for it in items {
                out.extend(serde_json::to_vec(it).unwrap_or_default());
                out.push(b'\n');
            }
            out
        }
        _ => serde_json::to_vec(doc).unwrap_or_default(),
    }
}

fn damage(mut b: Vec<u8>, d: &Bytes) -> Vec<u8> {
    match d {
        Bytes::None => {}
        Bytes::Truncate(n) => {
            let n = n % (b.len() + 1);
            b.truncate(n);
        }
        Bytes::Flip(fs) => {
            if !b.is_empty() {
                let len = b.len();
                for (p, x) in fs {
                    b[p % len] = *x;
                }
            }
        }
        Bytes::Insert(p, x) => {
            let p = p % (b.len() + 1);
            b.splice(p..p, x.iter().copied());
        }
    }
    b
}

fn as_of_dates() -> [NaiveDate; 3] {
    [
        NaiveDate::from_ymd_opt(2019, 12, 31).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2010, 6, 15).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2024, 12, 31).unwrap_or_default(),
    ]
}

/// Every read error names where it happened.
fn check_error(e: &ReadError, location: &str) {
    let msg = e.to_string();
    assert!(
        msg.starts_with(location),
        "error does not name the input: {msg}"
    );
}

fn run(c: &Case, config: &Config) {
    let seeds = seeds();
    let seed = &seeds[c.seed];
    let mut doc = seed.doc.clone();
    for m in &c.mutations {
        apply(&mut doc, m, seeds);
    }
    let out: Option<ReadOutput> = if c.as_values && matches!(c.bytes, Bytes::None) {
        let values = match (seed.ndjson, doc) {
            (true, Value::Array(items)) => items,
            (_, v) => vec![v],
        };
        Some(read_resources(values))
    } else {
        let bytes = damage(serialise(seed, &doc), &c.bytes);
        let r = if seed.ndjson {
            read_ndjson_bytes(&bytes, "fuzz.ndjson")
        } else {
            read_json_bytes(&bytes, "fuzz.json")
        };
        match r {
            Ok(o) => Some(o),
            Err(e) => {
                check_error(
                    &e,
                    if seed.ndjson {
                        "fuzz.ndjson"
                    } else {
                        "fuzz.json"
                    },
                );
                None
            }
        }
    };
    let Some(out) = out else { return };
    let t = out.stats.total();
    assert_eq!(t.read, t.used + t.ignored + t.not_understood);
    for p in &out.patients {
        for i in &p.issues {
            assert!(!i.reference.is_empty(), "issue without a resource: {i:?}");
        }
        for as_of in as_of_dates() {
            let a = assess_with_issues(&p.record, &p.issues, as_of, config);
            assert_eq!(a.spine.len(), 17);
            let js = serde_json::to_string(&a);
            assert!(js.is_ok(), "assessment does not serialise: {js:?}");
        }
    }
}

fn cases() -> u32 {
    std::env::var("OSTEOGUARD_FUZZ_CASES")
        .ok()
        .and_then(|s| s.trim().replace('_', "").parse().ok())
        .unwrap_or(3000)
}

#[test]
fn mutated_real_resources_never_panic() {
    let seeds = seeds();
    if seeds.is_empty() {
        return; // OSTEOGUARD_ALLOW_NO_SHARED=1
    }
    let config = Config::default();
    let n = cases();
    let mut runner = TestRunner::new(PtConfig {
        cases: n,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..PtConfig::default()
    });
    let started = std::time::Instant::now();
    let done = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&case(seeds.len()), |c| {
        run(&c, &config);
        let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        #[allow(clippy::manual_is_multiple_of)] // is_multiple_of is newer than rust-version 1.80
        if k % 100_000 == 0 {
            eprintln!(
                "mutation_fuzz: {k} cases, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    });
    eprintln!(
        "mutation_fuzz: {n} cases over {} seeds in {:.1} s",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

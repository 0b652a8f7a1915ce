//! Reading resources parsed by `parse_all_for_reading` (never-read members left out) gives
//! exactly what reading the whole resources gives, over every file of the shared data; and the
//! reader's borrowed JSON tree (`osteoguard_fhir::json`) is serde_json's `Value` of the same text.

mod common;

use std::path::{Path, PathBuf};

use common::{files, read_bytes, shared};
use osteoguard_fhir::{
    json, parse_all_for_reading, parse_for_reading, read_parsed, read_resources, NEVER_READ,
};
use serde_json::Value;

/// The texts of one file: its lines for NDJSON, the whole document otherwise, plus each Bundle
/// entry's resource on its own (so that pruning inside Bundle entries is exercised too).
fn texts_of(p: &Path) -> Vec<Vec<u8>> {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let bytes = read_bytes(p);
    if name.contains(".ndjson") {
        return bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(<[u8]>::to_vec)
            .collect();
    }
    if !name.contains(".json") {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
        for e in v["entry"].as_array().into_iter().flatten() {
            if e["resource"].is_object() {
                out.push(serde_json::to_vec(&e["resource"]).expect("serialise"));
            }
        }
    }
    out.push(bytes);
    out
}

fn prune_reference(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !NEVER_READ.contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), prune_reference(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(prune_reference).collect()),
        other => other.clone(),
    }
}

fn compare_reading(dir: &Path, texts: &[&[u8]], whole: &[Value]) {
    let arena = json::Arena::new();
    let batch: Vec<json::Value> = parse_all_for_reading(&arena, texts)
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(batch.len(), whole.len());
    let a = read_resources(whole.to_vec());
    let b = read_parsed(batch);
    for (pa, pb) in a.patients.iter().zip(&b.patients) {
        assert_eq!(
            pa,
            pb,
            "{}: patient {} read differently",
            dir.display(),
            pa.id
        );
    }
    assert_eq!(a.unattached, b.unattached, "{}", dir.display());
    assert_eq!(a, b, "{}: reading differs", dir.display());
    assert!(texts.is_empty() || !a.patients.is_empty() || !a.unattached.is_empty());
}

#[test]
fn pruned_reading_equals_whole_reading_over_shared_data() {
    let Some(data) = shared() else { return };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&data)
        .expect("shared data")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let (mut texts_seen, mut pruned_members) = (0usize, 0usize);
    for dir in dirs {
        let mut paths = Vec::new();
        files(&dir, &mut paths);
        let texts: Vec<Vec<u8>> = paths.iter().flat_map(|p| texts_of(p)).collect();
        let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
        let (mut whole, mut parsed) = (Vec::new(), Vec::new());
        let arena = json::Arena::new();
        for t in &refs {
            let full = serde_json::from_slice::<Value>(t);
            let pruned = parse_for_reading(&arena, t);
            assert_eq!(
                full.is_ok(),
                pruned.is_ok(),
                "{}",
                String::from_utf8_lossy(t)
            );
            let tree = json::parse(&arena, t);
            assert_eq!(full.is_ok(), tree.is_ok(), "{}", String::from_utf8_lossy(t));
            if let (Ok(f), Ok(tree)) = (&full, &tree) {
                // The reader's tree is serde_json's Value, borrowed: same content, same text.
                assert_eq!(&tree.to_serde(), f);
                assert_eq!(tree.to_string(), f.to_string());
                assert_eq!(tree, &json::Value::from_serde(&arena, f));
            }
            if let (Ok(f), Ok(p)) = (&full, &pruned) {
                assert_eq!(p.to_serde(), prune_reference(f));
                pruned_members += (f.to_string().len() > p.to_string().len()) as usize;
            }
            if let Ok(f) = full {
                whole.push(f);
                parsed.push(*t);
            }
        }
        texts_seen += refs.len();
        compare_reading(&dir, &refs, &whole);
        // The same without the Bundles and other non-resources (a batch holding one is read
        // whole): here every resource, Bundle entries included, is read pruned.
        let (plain, plain_whole): (Vec<&[u8]>, Vec<Value>) = parsed
            .iter()
            .zip(&whole)
            .filter(|(_, v)| v["resourceType"].is_string() && v["resourceType"] != "Bundle")
            .map(|(t, v)| (*t, v.clone()))
            .unzip();
        compare_reading(&dir, &plain, &plain_whole);
    }
    // The comparison means something only if the data has both many texts and pruned members.
    assert!(texts_seen > 40_000, "{texts_seen} texts");
    assert!(
        pruned_members > 10_000,
        "{pruned_members} texts had members left out"
    );
}

/// Two resources with the same type and id that differ only in a never-read member: still
/// "different resources with the same id", as when read whole.
#[test]
fn duplicates_are_judged_on_whole_resources() {
    let a = br#"{"resourceType":"Patient","id":"p","gender":"female","name":[{"text":"A"}]}"#;
    let b = br#"{"resourceType":"Patient","id":"p","gender":"female","name":[{"text":"B"}]}"#;
    let whole: Vec<Value> = [&a[..], &b[..]]
        .iter()
        .map(|t| serde_json::from_slice(t).expect("valid"))
        .collect();
    let arena = json::Arena::new();
    let batch: Vec<json::Value> = parse_all_for_reading(&arena, &[&a[..], &b[..]])
        .into_iter()
        .map(|r| r.expect("valid"))
        .collect();
    let (x, y) = (read_resources(whole), read_parsed(batch));
    assert_eq!(x, y);
    let issues: Vec<&str> = x.patients[0]
        .issues
        .iter()
        .chain(&x.unattached)
        .map(|i| i.problem.as_str())
        .collect();
    assert!(
        issues.iter().any(|p| p.contains("second Patient")),
        "{issues:?}"
    );
}

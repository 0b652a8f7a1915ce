//! Findings do not depend on the order of resources in the Bundle (property test).

use std::path::PathBuf;

use osteoguard_core::{assess, Config};
use proptest::prelude::*;

fn seed_entries() -> (serde_json::Value, usize) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-case.json");
    let text = std::fs::read_to_string(path).expect("seed bundle");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let n = v["entry"].as_array().map_or(0, |a| a.len());
    (v, n)
}

fn assess_json(bundle: &serde_json::Value, as_of: &str) -> String {
    let bytes = serde_json::to_vec(bundle).expect("serialise");
    let read = osteoguard_fhir::read_json_bytes(&bytes, "shuffled").expect("reads");
    let p = &read.patients[0];
    let a = assess(&p.record, as_of.parse().expect("date"), &Config::default());
    serde_json::to_string(&a).expect("json")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn findings_do_not_depend_on_bundle_order(
        perm in Just(()).prop_flat_map(|_| {
            let (_, n) = seed_entries();
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle()
        }),
        as_of in prop::sample::select(vec!["2022-12-01", "2023-06-15", "2023-08-23", "2023-09-28"]),
    ) {
        let (bundle, _) = seed_entries();
        let baseline = assess_json(&bundle, as_of);
        let mut shuffled = bundle.clone();
        let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
        shuffled["entry"] = serde_json::Value::Array(perm.iter().map(|&i| entries[i].clone()).collect());
        prop_assert_eq!(baseline, assess_json(&shuffled, as_of));
    }
}

//! Embeds the measures' VSAC expansion bundles from the shared data (`<root>/../shared`, or
//! `$OSTEOGUARD_SHARED`) into the library. When the shared directory is absent the embedded
//! text is empty and value sets must be given at run time (`ValueSets::from_bundle_file`).

use std::path::PathBuf;

const BUNDLES: [(&str, &str); 2] = [
    (
        "cms249",
        "AppropriateDXAScansForWomenUnder65FHIR-valuesets-bundle.json",
    ),
    (
        "cms645",
        "BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR-valuesets-bundle.json",
    ),
];

fn main() {
    println!("cargo:rerun-if-env-changed=OSTEOGUARD_SHARED");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let shared = std::env::var_os("OSTEOGUARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../../shared"));
    let dir = shared.join("data/ecqm-qicore-2024/valuesets");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    for (name, file) in BUNDLES {
        let src = dir.join(file);
        println!("cargo:rerun-if-changed={}", src.display());
        let text = std::fs::read_to_string(&src).unwrap_or_default();
        if text.is_empty() {
            println!(
                "cargo:warning=value set bundle {} not found: {name} needs --valuesets at run time",
                src.display()
            );
        }
        if let Err(e) = std::fs::write(out.join(format!("{name}-valuesets.json")), text) {
            panic!("writing OUT_DIR: {e}");
        }
    }
}

//! Pass 1's byte scanner (`osteoguard_screen::scan::peek_members`) reads what the `serde_json`
//! peek (`route::peek`) reads, on every line where it answers: every NDJSON line of the shared
//! exports (`../shared/data`) and every resource of its JSON files, a synthetic export, hand-made
//! odd lines, and every truncation and many one-byte edits of a sample of real lines. Where
//! `serde_json` refuses a line (not JSON, a duplicate member, a member of the wrong type) the
//! scanner must not answer either, so such lines keep taking the old path and are refused or
//! decided as before.

use std::io::Read;
use std::path::{Path, PathBuf};

use osteoguard_screen::route::{decide, peek};
use osteoguard_screen::scan::peek_members;
use osteoguard_screen::SynthArgs;

fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("OSTEOGUARD_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    if dir.join("data").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("OSTEOGUARD_ALLOW_NO_SHARED").is_some(),
        "{} not found (set OSTEOGUARD_SHARED, or OSTEOGUARD_ALLOW_NO_SHARED=1 to skip)",
        dir.display()
    );
    None
}

/// The NDJSON lines of `path` (gunzipped), or the resources of a JSON file (a Bundle's entries,
/// compact, as `serde_json` writes them).
fn lines_of(path: &Path, out: &mut Vec<Vec<u8>>) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut bytes = Vec::new();
    let mut f = std::fs::File::open(path).unwrap();
    if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(f)
            .read_to_end(&mut bytes)
            .unwrap();
    } else {
        f.read_to_end(&mut bytes).unwrap();
    }
    if name.contains(".ndjson") {
        out.extend(
            osteoguard_screen::pass1::lines(&bytes)
                .map(<[u8]>::to_vec)
                .filter(|l| !l.is_empty()),
        );
    } else if name.ends_with(".json") {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return;
        };
        for e in v["entry"].as_array().into_iter().flatten() {
            if e["resource"].is_object() {
                out.push(serde_json::to_vec(&e["resource"]).unwrap());
            }
        }
        if v["resourceType"].is_string() {
            out.push(serde_json::to_vec(&v).unwrap());
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            lines_of(&p, out);
        }
    }
}

/// The scanner answers only as `route::peek` does; returns whether it answered.
fn agrees(line: &[u8]) -> bool {
    match peek_members(line) {
        Some(s) => {
            let p = peek(line).unwrap_or_else(|| {
                panic!(
                    "scanner read a line serde_json refuses: {}",
                    String::from_utf8_lossy(line)
                )
            });
            assert_eq!(s, p, "{}", String::from_utf8_lossy(line));
            assert_eq!(decide(&s), decide(&p));
            true
        }
        None => false,
    }
}

/// Every truncation, and one-byte edits at every position, of `line`.
fn edits_agree(line: &[u8]) {
    for k in 0..line.len() {
        agrees(&line[..k]);
    }
    let mut edited = line.to_vec();
    for k in 0..line.len() {
        let was = edited[k];
        for b in [
            b'"', b'\\', b'}', b']', b',', b':', b'x', b'0', b' ', 0x01, 0xff,
        ] {
            edited[k] = b;
            agrees(&edited);
        }
        edited[k] = was;
        let mut cut = line.to_vec();
        cut.remove(k);
        agrees(&cut);
    }
}

#[test]
fn the_scanner_reads_every_shared_line_as_serde_json_does() {
    let Some(shared) = shared_dir() else {
        return;
    };
    let mut lines = Vec::new();
    walk(&shared.join("data"), &mut lines);
    assert!(lines.len() > 10_000, "{} lines", lines.len());
    let sure = lines.iter().filter(|l| agrees(l)).count();
    // The scanner is for the common case: it must answer for nearly every real line.
    assert!(
        sure * 100 >= lines.len() * 95,
        "sure on {sure} of {} lines",
        lines.len()
    );
    // Edits of a sample of real lines: one line of each resource type (the first), shorter
    // than 3 KB.
    let mut types = std::collections::BTreeSet::new();
    let mut sampled = 0;
    for l in &lines {
        let Some(p) = peek(l) else { continue };
        let Some(t) = p.resource_type.as_deref() else {
            continue;
        };
        if l.len() < 3_000 && types.insert(t.to_string()) {
            edits_agree(l);
            sampled += 1;
        }
    }
    assert!(sampled >= 10, "{sampled} types sampled");
}

#[test]
fn the_scanner_reads_every_synthetic_line_as_serde_json_does() {
    let tmp = tempfile::tempdir().unwrap();
    osteoguard_screen::synth(SynthArgs {
        patients: 150,
        seed: 3,
        out: tmp.path().to_path_buf(),
        as_of: osteoguard_screen::synth::DEFAULT_AS_OF.into(),
        filler: 30,
        quiet: true,
    })
    .unwrap();
    let mut lines = Vec::new();
    walk(tmp.path(), &mut lines);
    assert!(lines.len() > 4_000, "{} lines", lines.len());
    let sure = lines.iter().filter(|l| agrees(l)).count();
    assert_eq!(
        sure,
        lines.len(),
        "the scanner answers for every synthetic line"
    );
    for l in lines.iter().step_by(97).take(12) {
        edits_agree(l);
    }
}

#[test]
fn odd_lines_are_read_as_serde_json_reads_them_or_left_to_it() {
    let subj = r#""subject":{"reference":"Patient/p1"}"#;
    let obs = r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"38267-1"}]},"subject":{"reference":"Patient/p1"}}"#;
    let deep = format!(
        r#"{{"resourceType":"Encounter","x":{}1{}}}"#,
        "[".repeat(70),
        "]".repeat(70)
    );
    let odd: Vec<String> = vec![
        // Whitespace everywhere serde_json allows it.
        format!(" \t{{ \"resourceType\" : \"Condition\" ,\r\n {subj} , \"code\" : {{ \"coding\" : [ {{ \"system\" : \"http://snomed.info/sct\" , \"code\" : \"1\" }} ] }} }} \t"),
        // Nulls where the peek takes them as absent.
        format!(r#"{{"resourceType":"Observation","code":null,"component":null,"id":null,{subj}}}"#),
        format!(r#"{{"resourceType":"Observation","code":{{"coding":null}},{subj}}}"#),
        format!(r#"{{"resourceType":"Observation","code":{{"coding":[{{"system":null,"code":null}}]}},{subj}}}"#),
        format!(r#"{{"resourceType":"MedicationRequest","medicationReference":null,{subj}}}"#),
        format!(r#"{{"resourceType":"MedicationRequest","medicationReference":{{"reference":"Medication/m"}},{subj}}}"#),
        format!(r#"{{"resourceType":"MedicationRequest","medicationReference":7,{subj}}}"#),
        r#"{"resourceType":null}"#.into(),
        r#"{"resourceType":"Patient","id":"p1","subject":null}"#.into(),
        // Empty containers.
        r#"{}"#.into(),
        format!(r#"{{"resourceType":"Observation","code":{{}},"component":[],{subj},"x":[],"y":{{}}}}"#),
        format!(r#"{{"resourceType":"Observation","code":{{"coding":[]}},{subj}}}"#),
        format!(r#"{{"resourceType":"Observation","code":[],{subj}}}"#),
        // Escapes: in skipped strings and names, in watched strings and names.
        format!(r#"{{"resourceType":"Encounter","text":"a\"b\\c\/d\b\f\n\r\t\u00e9\uD800",{subj}}}"#),
        format!(r#"{{"resourceType":"Encounter","x\u0041":{{"k\"":"v"}},{subj}}}"#),
        r#"{"resourceType":"Patient","id":"p\u0031"}"#.into(),
        r#"{"resource\u0054ype":"Patient","id":"p1"}"#.into(),
        r#"{"resourceType":"Patient","\ud800":1,"id":"p1"}"#.into(),
        r#"{"resourceType":"Encounter","x":"\u00zz"}"#.into(),
        r#"{"resourceType":"Encounter","x":"\q"}"#.into(),
        "{\"resourceType\":\"Encounter\",\"x\":\"a\u{1}b\"}".into(),
        "{\"resourceType\":\"Encounter\",\"x\":\"tab\tin string\"}".into(),
        // Duplicates: of a watched member (serde_json refuses the peek), of another (fine).
        format!(r#"{{"resourceType":"Condition",{subj},{subj}}}"#),
        r#"{"resourceType":"Patient","id":"a","id":"b"}"#.into(),
        format!(r#"{{"resourceType":"Encounter","x":1,"x":2,{subj}}}"#),
        format!(r#"{{"resourceType":"Observation","code":{{"coding":[{{"code":"1","code":"2"}}]}},{subj}}}"#),
        format!(r#"{{"resourceType":"Condition","subject":{{"reference":"Patient/a","reference":"Patient/b"}}}}"#),
        // Wrong types of watched members.
        r#"{"resourceType":"Patient","id":5}"#.into(),
        r#"{"resourceType":["Patient"]}"#.into(),
        r#"{"resourceType":"Condition","subject":"Patient/p1"}"#.into(),
        format!(r#"{{"resourceType":"Observation","code":{{"coding":[null]}},{subj}}}"#),
        format!(r#"{{"resourceType":"Observation","code":{{"coding":{{"code":"1"}}}},{subj}}}"#),
        format!(r#"{{"resourceType":"Observation","component":[{{"code":5}}],{subj}}}"#),
        // Numbers.
        r#"{"resourceType":"Encounter","n":[0,-0,1,-12,0.5,1e5,1E+5,2.5e-3,-0.0e0]}"#.into(),
        r#"{"resourceType":"Encounter","n":01}"#.into(),
        r#"{"resourceType":"Encounter","n":-}"#.into(),
        r#"{"resourceType":"Encounter","n":1.}"#.into(),
        r#"{"resourceType":"Encounter","n":1e}"#.into(),
        r#"{"resourceType":"Encounter","n":+1}"#.into(),
        r#"{"resourceType":"Encounter","n":.5}"#.into(),
        r#"{"resourceType":"Encounter","n":1e400}"#.into(),
        r#"{"resourceType":"Encounter","n":NaN}"#.into(),
        // Literals.
        r#"{"resourceType":"Encounter","b":[true,false,null]}"#.into(),
        r#"{"resourceType":"Encounter","b":tru}"#.into(),
        r#"{"resourceType":"Encounter","b":nul}"#.into(),
        r#"{"resourceType":"Encounter","b":truex}"#.into(),
        // Structure.
        r#"{"resourceType":"Encounter",}"#.into(),
        r#"{"resourceType":"Encounter","a":[1,]}"#.into(),
        r#"{"resourceType":"Encounter","a":[1 2]}"#.into(),
        r#"{"resourceType":"Encounter","a":{"k" 1}}"#.into(),
        r#"{"resourceType":"Encounter","a":{1:2}}"#.into(),
        r#"{"resourceType":"Encounter","a":[}"#.into(),
        r#"{"resourceType":"Encounter","a":{]}"#.into(),
        r#"{"resourceType":"Encounter"} x"#.into(),
        format!("{obs}{obs}"),
        format!("{obs} "),
        obs[..obs.len() - 1].to_string(),
        r#"["Patient","p1"]"#.into(),
        "\u{feff}{\"resourceType\":\"Patient\",\"id\":\"p1\"}".into(),
        deep,
        format!(
            r#"{{"resourceType":"Encounter","x":{}1{}}}"#,
            "[".repeat(20),
            "]".repeat(20)
        ),
        // The Observation the byte fast path used to drop although `decide` keeps it: no
        // coding in `code`, a LOINC coding elsewhere.
        format!(r#"{{"resourceType":"Observation","code":{{"text":"x"}},"valueCodeableConcept":{{"coding":[{{"system":"http://loinc.org","code":"1-1"}}]}},{subj}}}"#),
    ];
    let mut sure = 0;
    for l in &odd {
        sure += usize::from(agrees(l.as_bytes()));
    }
    // The common odd shapes are read, not only left to serde_json.
    assert!(sure >= 20, "sure on {sure} of {}", odd.len());
    let mut bad_utf8 = obs.as_bytes().to_vec();
    bad_utf8.splice(40..40, [0xff, 0xfe]);
    assert!(peek_members(&bad_utf8).is_none());
    // Pretty-printed and compact give the same reading.
    let v: serde_json::Value = serde_json::from_str(obs).unwrap();
    let pretty = serde_json::to_string_pretty(&v).unwrap();
    assert_eq!(
        peek_members(pretty.as_bytes()),
        peek_members(obs.as_bytes())
    );
    assert!(peek_members(obs.as_bytes()).is_some());
}

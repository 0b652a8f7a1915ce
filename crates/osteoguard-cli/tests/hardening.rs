//! Issue 16 through the real `osteoguard` binary: bounded memory on huge lines and non-regular
//! files, and one reading of bad records by `inspect`, `assess` and `screen`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osteoguard"))
}

/// A fresh directory under cargo's per-target temporary directory.
fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("hardening-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

/// Runs the binary under a virtual-memory limit (`ulimit -v`, in KiB) far below the input's
/// size: reading a 3 GB line into memory would fail the allocation (abort, not exit 2).
fn run_bounded(args: &[&str], limit_kib: u64) -> Output {
    let mut script = format!("ulimit -v {limit_kib}; exec \"$0\"");
    for i in 1..=args.len() {
        script.push_str(&format!(" \"${i}\""));
    }
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_osteoguard"))
        .args(args)
        .output()
        .expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The four commands over one input (screen writes into `out`).
fn every_command<'a>(input: &'a str, out: &'a str) -> Vec<Vec<&'a str>> {
    vec![
        vec!["inspect", input],
        vec!["inspect", input, "--format", "json"],
        vec!["assess", input, "--as-of", "2023-06-15"],
        vec!["screen", input, "--as-of", "2023-06-15", "--out", out, "-q"],
    ]
}

/// A sparse 3 GB NDJSON file (one line of NUL bytes, no newline), a sparse 3 GB JSON file and a
/// symlink to /dev/zero: every command refuses them with exit 2 and a message naming the file
/// (and line), under a 1.5 GB address-space limit — before the fix `inspect` reached 6.3 GB.
#[test]
fn huge_lines_and_devices_are_refused_without_large_memory() {
    const GB: u64 = 1 << 30;
    let limit_kib = 1536 * 1024;
    let d = tmp_dir("huge");
    let out = d.join("out");
    let out = out.to_str().unwrap();

    let ndjson = d.join("export-ndjson");
    std::fs::create_dir_all(&ndjson).unwrap();
    let big = ndjson.join("Observation.ndjson");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(3 * GB)
        .unwrap();
    let json = d.join("bundle.json");
    std::fs::File::create(&json)
        .unwrap()
        .set_len(3 * GB)
        .unwrap();
    let zero_dir = d.join("export-zero");
    std::fs::create_dir_all(&zero_dir).unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero_dir.join("Patient.ndjson")).unwrap();

    let cases: [(&Path, &Path, &str); 4] = [
        (&ndjson, &big, ":1: refused: the line is longer than 64 MiB"),
        (&big, &big, ":1: refused: the line is longer than 64 MiB"),
        (
            &zero_dir,
            &zero_dir.join("Patient.ndjson"),
            ": refused: not a regular file (a character device)",
        ),
        (
            &json,
            &json,
            ":1: refused: the JSON document is larger than 64 MiB",
        ),
    ];
    for (input, file, want) in cases {
        for args in every_command(input.to_str().unwrap(), out) {
            if args[0] == "screen" && input == json.as_path() {
                continue; // screening reads NDJSON only: a .json file is no export
            }
            let o = run_bounded(&args, limit_kib);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            let named = format!("{}{want}", file.display());
            assert!(err.contains(&named), "{args:?}: want {named:?} in {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// `--max-line-mb` sets the limit; a FIFO is refused like a device (without blocking on it).
#[test]
fn the_line_limit_is_configurable_and_fifos_are_refused() {
    let d = tmp_dir("limit");
    let exp = d.join("export");
    std::fs::create_dir_all(&exp).unwrap();
    let patient =
        r#"{"resourceType":"Patient","id":"p","gender":"female","birthDate":"1950-01-01"}"#;
    let long = format!(
        r#"{{"resourceType":"Observation","id":"o","status":"final","subject":{{"reference":"Patient/p"}},"code":{{"text":"{}"}}}}"#,
        "x".repeat(3 << 20)
    );
    std::fs::write(exp.join("Patient.ndjson"), format!("{patient}\n")).unwrap();
    std::fs::write(exp.join("Observation.ndjson"), format!("\n{long}\n")).unwrap();
    let out = d.join("out");
    let e = exp.to_str().unwrap();
    for args in every_command(e, out.to_str().unwrap()) {
        let mut small = args.clone();
        small.extend(["--max-line-mb", "2"]);
        let o = bin().args(&small).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{small:?}: {}", stderr(&o));
        let named = format!(
            "{}:2: refused: the line is longer than 2 MiB",
            exp.join("Observation.ndjson").display()
        );
        assert!(stderr(&o).contains(&named), "{small:?}: {}", stderr(&o));
        let mut large = args.clone();
        large.extend(["--max-line-mb", "4"]);
        let o = bin().args(&large).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{large:?}: {}", stderr(&o));
    }
    let fifo = exp.join("Condition.ndjson");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED the FIFO case: mkfifo not available");
        return;
    }
    for args in every_command(e, out.to_str().unwrap()) {
        let o = bin().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let named = format!("{}: refused: not a regular file (a FIFO)", fifo.display());
        assert!(stderr(&o).contains(&named), "{args:?}: {}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&d);
}

fn json_of(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("JSON output")
}

/// Issue 16 item 6: a Bundle under another `resourceType` is an error naming the file and the
/// value (its entries are not silently dropped); an unknown `resourceType` is "not understood"
/// with a data-quality entry naming file, line and value — in inspect, assess and screen.
#[test]
fn wrong_and_unknown_resource_types_are_never_silently_lost() {
    let d = tmp_dir("types");
    let bundle = d.join("bundle.json");
    let entry = r#"{"resource":{"resourceType":"Patient","id":"p","gender":"female","birthDate":"1950-01-01"}}"#;
    std::fs::write(
        &bundle,
        format!(r#"{{"resourceType":"Patient","type":"collection","entry":[{entry}]}}"#),
    )
    .unwrap();
    for args in [
        vec!["inspect", bundle.to_str().unwrap()],
        vec!["assess", bundle.to_str().unwrap(), "--as-of", "2023-06-15"],
    ] {
        let o = bin().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "{}: not FHIR: resourceType \"Patient\" on a Bundle-shaped object",
                bundle.display()
            )),
            "{args:?}: {err}"
        );
    }

    let exp = d.join("export");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(
        exp.join("Patient.ndjson"),
        "{\"resourceType\":\"Patient\",\"id\":\"p\",\"gender\":\"female\",\"birthDate\":\"1950-01-01\"}\n",
    )
    .unwrap();
    let mut obs = String::new();
    for i in 0..17 {
        obs.push_str(&format!(
            "{{\"resourceType\":\"Observationz\",\"id\":\"o{i}\",\"status\":\"final\",\"subject\":{{\"reference\":\"Patient/p\"}},\"code\":{{\"coding\":[{{\"system\":\"http://loinc.org\",\"code\":\"38265-5\"}}]}},\"effectiveDateTime\":\"2023-01-05\",\"valueQuantity\":{{\"value\":-2.6,\"unit\":\"{{T-score}}\"}}}}\n"
        ));
    }
    let obs_file = exp.join("Observation.ndjson");
    std::fs::write(&obs_file, obs).unwrap();
    let e = exp.to_str().unwrap();

    let v = json_of(
        &bin()
            .args(["inspect", e, "--format", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(v["total"]["Observationz"]["not_understood"], 17, "{v}");
    assert_eq!(v["total"]["Observationz"]["ignored"], 0, "{v}");
    let issues = v["patients"][0]["notUnderstood"].to_string();
    let at_line_3 = format!("{}:3", obs_file.display());
    assert!(
        issues.contains("Observationz") && issues.contains(&at_line_3),
        "{issues}"
    );

    let v = json_of(
        &bin()
            .args(["assess", e, "--as-of", "2023-06-15", "--format", "json"])
            .output()
            .unwrap(),
    );
    let dq = v["dataQuality"].to_string();
    assert!(
        dq.contains("Observationz") && dq.contains(&at_line_3),
        "{dq}"
    );

    let out = d.join("out");
    let o = bin()
        .args(["screen", e, "--as-of", "2023-06-15", "-q", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        s["resources"]["byType"]["Observationz"]["ignored"], 0,
        "{s}"
    );
    assert_eq!(
        s["resources"]["readerByType"]["Observationz"]["notUnderstood"], 17,
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A Bundle: one female patient and one daily hydrocortisone order of `dose` (value, UCUM unit).
fn hydrocortisone_bundle(value: f64, unit: &str) -> String {
    serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1950-03-15"}},
        {"resource": {"resourceType": "MedicationRequest", "id": "hc", "status": "active",
            "intent": "order", "subject": {"reference": "Patient/p"}, "authoredOn": "2022-01-01",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "5492"}]},
            "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}]}]}}
    ]})
    .to_string()
}

/// Issue 16 item 7: hydrocortisone entered in grams (20 g/day) does not become 5,000 mg/day
/// prednisone-equivalent: the dose is unknown (data-insufficient), with a data-quality entry
/// naming the resource and field; the same order in milligrams counts as before.
#[test]
fn an_implausible_glucocorticoid_dose_is_unknown_not_exposure() {
    let d = tmp_dir("dose");
    let assess = |name: &str, value: f64, unit: &str| {
        let p = d.join(name);
        std::fs::write(&p, hydrocortisone_bundle(value, unit)).unwrap();
        json_of(
            &bin()
                .args(["assess", "--as-of", "2023-06-15", "--format", "json"])
                .arg(&p)
                .output()
                .unwrap(),
        )
    };
    let v = assess("grams.json", 20.0, "g");
    assert!(
        v["glucocorticoid"]["currentPrednisoneEquivalentMgPerDay"].is_null(),
        "{v}"
    );
    assert_eq!(v["glucocorticoid"]["qualifying"], "unknown");
    let dq = v["dataQuality"].as_array().unwrap();
    assert!(
        dq.iter().any(|i| i["reference"] == "MedicationRequest/hc"
            && i["field"].as_str().unwrap().contains("dose")
            && i["problem"].as_str().unwrap().contains("plausible maximum")),
        "{dq:?}"
    );
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&"data-insufficient"), "{codes:?}");

    let v = assess("milligrams.json", 20.0, "mg");
    assert_eq!(
        v["glucocorticoid"]["currentPrednisoneEquivalentMgPerDay"], 5.0,
        "20 mg hydrocortisone is 5 mg PEq/day"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 16 item 5: a Patient id that appears twice with different sex and birth date is read
/// the same way by `assess` and `screen`, whichever line comes first: what the two disagree on is
/// unknown, and the problem is in assess's dataQuality, in the patient's worklist rows and in
/// summary.json. (The patient is on prednisone 10 mg/day, so there are findings to list.)
#[test]
fn screen_and_assess_read_a_conflicting_duplicate_patient_alike() {
    let d = tmp_dir("duplicate");
    let a = r#"{"resourceType":"Patient","id":"p","gender":"female","birthDate":"1950-03-15"}"#;
    let b = r#"{"resourceType":"Patient","id":"p","gender":"male","birthDate":"1961-07-01"}"#;
    let med = r#"{"resourceType":"MedicationRequest","id":"m","status":"active","intent":"order","subject":{"reference":"Patient/p"},"authoredOn":"2022-01-01","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"8640"}]},"dosageInstruction":[{"timing":{"repeat":{"frequency":1,"period":1,"periodUnit":"d"}},"doseAndRate":[{"doseQuantity":{"value":10,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}}]}]}"#;
    let mut assessed = Vec::new();
    for (n, (first, second)) in [(a, b), (b, a)].into_iter().enumerate() {
        let exp = d.join(format!("export-{n}"));
        std::fs::create_dir_all(&exp).unwrap();
        std::fs::write(exp.join("Patient.ndjson"), format!("{first}\n{second}\n")).unwrap();
        std::fs::write(exp.join("MedicationRequest.ndjson"), format!("{med}\n")).unwrap();
        let v = json_of(
            &bin()
                .args(["assess", "--as-of", "2023-06-15", "--format", "json"])
                .arg(&exp)
                .output()
                .unwrap(),
        );
        assert_eq!(v["patient"]["sex"], "unknown", "{}", v["patient"]);
        assert!(v["patient"]["ageYears"].is_null(), "{}", v["patient"]);
        let dq = v["dataQuality"].as_array().unwrap();
        let conflict = dq
            .iter()
            .find(|i| {
                i["reference"] == "Patient/p"
                    && i["problem"]
                        .as_str()
                        .unwrap()
                        .contains("disagrees on gender")
            })
            .unwrap_or_else(|| panic!("{dq:?}"))
            .clone();
        assert!(conflict["problem"].as_str().unwrap().contains("birthDate"));
        assessed.push((
            v["patient"].clone(),
            conflict.clone(),
            v["findings"].clone(),
        ));

        let out = d.join(format!("out-{n}"));
        let o = bin()
            .args(["screen", "--as-of", "2023-06-15", "-q", "--out"])
            .arg(&out)
            .arg(&exp)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let w: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("worklist.json")).unwrap()).unwrap();
        let rows = w["rows"].as_array().unwrap();
        assert!(!rows.is_empty(), "the patient has findings");
        let want = format!("id: {}", conflict["problem"].as_str().unwrap());
        for r in rows {
            assert_eq!(r["sex"], "unknown", "{r}");
            assert!(r["age"].is_null(), "{r}");
            let dq: Vec<&str> = r["dataQuality"]
                .as_array()
                .unwrap_or_else(|| panic!("no dataQuality in {r}"))
                .iter()
                .filter_map(|x| x.as_str())
                .collect();
            assert!(dq.contains(&want.as_str()), "{dq:?} lacks {want}");
        }
        let codes: std::collections::BTreeSet<String> = rows
            .iter()
            .filter_map(|r| r["code"].as_str().map(str::to_string))
            .collect();
        let assess_codes: std::collections::BTreeSet<String> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["code"].as_str().map(str::to_string))
            .collect();
        assert_eq!(codes, assess_codes, "screen lists what assess finds");
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["resources"]["patientsWithRecordIssues"], 1, "{s}");
        let examples = s["resources"]["recordIssueExamples"].to_string();
        assert!(examples.contains("disagrees on gender"), "{examples}");
    }
    assert_eq!(
        assessed[0], assessed[1],
        "the order of the two lines does not matter"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 16 item 5: two JSON objects on one NDJSON line. `assess` and `inspect` refuse the file
/// (exit 2, file:line:column); `screen` gives the same error instead of listing the patient
/// without the line (before: unknown age and sex, one "not FHIR" line counted).
#[test]
fn two_objects_on_one_line_are_the_same_error_in_assess_and_screen() {
    let d = tmp_dir("two-objects");
    let exp = d.join("export");
    std::fs::create_dir_all(&exp).unwrap();
    let file = exp.join("Patient.ndjson");
    std::fs::write(
        &file,
        concat!(
            "{\"resourceType\":\"Patient\",\"id\":\"q\",\"gender\":\"male\"}\n",
            "{\"resourceType\":\"Patient\",\"id\":\"p\",\"gender\":\"female\",\"birthDate\":\"1950-01-01\"}",
            "{\"resourceType\":\"Observation\",\"id\":\"x\",\"status\":\"final\",\"subject\":{\"reference\":\"Patient/p\"}}\n"
        ),
    )
    .unwrap();
    let out = d.join("out");
    let mut messages = Vec::new();
    for args in every_command(exp.to_str().unwrap(), out.to_str().unwrap()) {
        let o = bin().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        let want = format!("{}:2:", file.display());
        assert!(
            err.contains(&want) && err.contains("not valid JSON: trailing characters"),
            "{args:?}: {err}"
        );
        messages.push(err);
    }
    assert!(
        messages.windows(2).all(|w| w[0] == w[1]),
        "one message: {messages:?}"
    );
    assert!(
        !out.join("worklist.json").exists(),
        "no worklist from a refused export"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Runs `args` with `input` written to standard input (from a thread, so a refusal that stops
/// reading early cannot block the writer on a full pipe).
fn run_stdin(args: &[&str], input: Vec<u8>) -> Output {
    use std::io::Write;
    let mut child = bin()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // A refused input closes the pipe early: a broken pipe is expected then.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("runs");
    let _ = writer.join();
    out
}

/// Issue 16 item 3 for `-`: standard input is bounded like a file. One line longer than
/// `--max-line-mb` (generated, 3 MiB) is refused with exit 2, naming standard input and the
/// line; a longer input made of short NDJSON lines is read line by line (each bounded) and
/// assessed; the default limit applies when no option is given.
#[test]
fn standard_input_is_bounded_like_a_file() {
    const MIB: usize = 1 << 20;
    for cmd in [
        vec!["inspect", "-", "--max-line-mb", "1"],
        vec!["assess", "-", "--as-of", "2023-06-15", "--max-line-mb", "1"],
    ] {
        // One line of 3 MiB (a JSON string never closed: no resource could be this long).
        let mut line = b"{\"resourceType\":\"Patient\",\"id\":\"".to_vec();
        line.resize(3 * MIB, b'x');
        let o = run_stdin(&cmd, line);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains("standard input:1: refused") && err.contains("1 MiB"),
            "{cmd:?}: {err}"
        );
        // 3 MiB of short NDJSON lines: one patient, then many observations of it.
        let mut ndjson =
            b"{\"resourceType\":\"Patient\",\"id\":\"p\",\"gender\":\"female\",\"birthDate\":\"1950-03-15\"}\n"
                .to_vec();
        let mut n = 0;
        while ndjson.len() < 3 * MIB {
            n += 1;
            ndjson.extend_from_slice(
                format!(
                    "{{\"resourceType\":\"Observation\",\"id\":\"o{n}\",\"status\":\"final\",\"subject\":{{\"reference\":\"Patient/p\"}},\"code\":{{\"coding\":[{{\"system\":\"http://loinc.org\",\"code\":\"2160-0\"}}]}},\"effectiveDateTime\":\"2023-01-01\",\"valueQuantity\":{{\"value\":0.8,\"unit\":\"mg/dL\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"mg/dL\"}}}}\n"
                )
                .as_bytes(),
            );
        }
        let o = run_stdin(&cmd, ndjson);
        assert_eq!(o.status.code(), Some(0), "{cmd:?}: {}", stderr(&o));
    }
    // Without the option the default limit (64 MiB) applies: 65 MiB on one line is refused.
    let mut line = b"{\"resourceType\":\"Patient\",\"id\":\"".to_vec();
    line.resize(65 * MIB, b'x');
    let o = run_stdin(&["inspect", "-"], line);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("standard input:1: refused") && err.contains("64 MiB"),
        "{err}"
    );
}

/// A small synthetic export for the registry tests.
fn small_export(d: &Path) -> PathBuf {
    let exp = d.join("export");
    let o = bin()
        .args(["synth", "--patients", "200", "--seed", "7", "--out"])
        .arg(&exp)
        .arg("-q")
        .output()
        .expect("synth runs");
    assert!(o.status.success(), "synth: {}", stderr(&o));
    exp
}

fn screen_with_db(exp: &Path, out: &Path, db: &Path) -> Output {
    bin()
        .arg("screen")
        .arg(exp)
        .args(["--as-of", "2023-06-15", "-q", "--out"])
        .arg(out)
        .arg("--db")
        .arg(db)
        .output()
        .expect("screen runs")
}

/// Whether this process may mount (root in a container that allows it): the tmpfs cases run
/// only then, and say so when skipped.
fn mount_tmpfs(dir: &Path, options: &str) -> bool {
    std::fs::create_dir_all(dir).expect("mount point");
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn umount(dir: &Path) {
    let _ = Command::new("umount").arg(dir).output();
}

/// Issue 16 item 8: `--db` on a read-only path ends the run with a non-zero exit naming the
/// database path (read-only: a read-only tmpfs when this process may mount one, otherwise a
/// directory without write permission, which binds every user but root).
#[test]
fn a_registry_on_a_read_only_path_is_an_error_naming_the_path() {
    let d = tmp_dir("registry-read-only");
    let exp = small_export(&d);
    let ro = d.join("ro");
    let mounted = mount_tmpfs(&ro, "ro,size=1m");
    if !mounted {
        std::fs::create_dir_all(&ro).unwrap();
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if is_root {
            eprintln!("SKIPPED: root without mount: no read-only directory to test");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let db = ro.join("registry.sqlite");
    let o = screen_with_db(&exp, &d.join("out"), &db);
    if mounted {
        umount(&ro);
    }
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(db.to_str().unwrap()), "names no path: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 16 item 8: the disk filling up while the registry is written ends the run with a
/// non-zero exit naming the database path and the cause, and leaves the previous worklists
/// intact. Needs a small tmpfs (root); skipped, saying so, otherwise.
#[test]
fn a_full_disk_under_the_registry_is_an_error_naming_the_path() {
    let d = tmp_dir("registry-full");
    let exp = small_export(&d);
    let out = d.join("out");
    let full = d.join("full");
    if !mount_tmpfs(&full, "size=256k") {
        eprintln!("SKIPPED: cannot mount a tmpfs (not root)");
        return;
    }
    let db = full.join("registry.sqlite");
    // A first run on a roomy disk gives the outputs that must survive.
    let roomy = d.join("roomy.sqlite");
    let o = screen_with_db(&exp, &out, &roomy);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(out.join("worklist.json")).unwrap();
    // Fill the tmpfs but for a few pages.
    let filler = full.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 240 << 10]);
    let o = screen_with_db(&exp, &out, &db);
    umount(&full);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(db.to_str().unwrap()), "names no path: {err}");
    assert!(err.contains("full"), "names no cause: {err}");
    assert_eq!(
        std::fs::read(out.join("worklist.json")).unwrap(),
        before,
        "previous worklist changed"
    );
    let _ = std::fs::remove_dir_all(&d);
}

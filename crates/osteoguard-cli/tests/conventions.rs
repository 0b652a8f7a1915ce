//! Command-line conventions operators expect: `-` for standard input, shell completions and a
//! man page, no colour escapes in redirected logs. (Help text for every option: the unit test
//! `every_option_and_value_has_help_text` in src/main.rs walks clap's command tree.)

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osteoguard"))
}

fn seed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-case.json")
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `args` with `input` on standard input.
fn run_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("writes stdin");
    drop(stdin);
    child.wait_with_output().expect("waits")
}

#[test]
fn assess_dash_reads_standard_input_like_the_file() {
    let bytes = std::fs::read(seed()).expect("seed case");
    for format in ["json", "text"] {
        let from_file = run(bin()
            .args(["assess", "--as-of", "2023-06-15", "--format", format])
            .arg(seed()));
        let out = run_stdin(
            &["assess", "-", "--as-of", "2023-06-15", "--format", format],
            &bytes,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, from_file, "--format {format}");
    }
}

#[test]
fn assess_dash_reads_ndjson_from_standard_input() {
    // The same record as NDJSON (one resource per line).
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(seed()).expect("seed")).expect("json");
    let mut ndjson = String::new();
    for e in bundle["entry"].as_array().expect("entries") {
        ndjson.push_str(&e["resource"].to_string());
        ndjson.push('\n');
    }
    let from_file = run(bin()
        .args(["assess", "--as-of", "2023-06-15", "--format", "json"])
        .arg(seed()));
    let out = run_stdin(
        &["assess", "-", "--as-of", "2023-06-15", "--format", "json"],
        ndjson.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, from_file);
}

#[test]
fn inspect_dash_reads_standard_input() {
    let bytes = std::fs::read(seed()).expect("seed case");
    let from_file: serde_json::Value = serde_json::from_slice(&run(bin()
        .args(["inspect", "--format", "json"])
        .arg(seed())))
    .expect("json");
    let out = run_stdin(&["inspect", "-", "--format", "json"], &bytes);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_stdin: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(from_stdin["input"], "-");
    for key in ["total", "patients", "unattached"] {
        assert_eq!(from_stdin[key], from_file[key], "{key}");
    }
}

#[test]
fn bad_standard_input_is_a_usage_error_naming_it() {
    for (input, says) in [
        (&b""[..], "standard input"),
        (&b"{not json"[..], "standard input"),
        (&[0x1f, 0x8b, 0x08, 0x00][..], "gzip"),
    ] {
        let out = run_stdin(&["assess", "-", "--as-of", "2023-06-15"], input);
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{input:?}: {err}");
    }
}

#[test]
fn completions_for_bash_zsh_and_fish_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let s = String::from_utf8(run(bin().args(["completions", shell]))).expect("utf-8");
        for word in [
            "osteoguard",
            "assess",
            "inspect",
            "serve",
            "--as-of",
            "as-of",
        ] {
            if word == "--as-of" && shell == "fish" {
                continue; // fish lists long options without dashes (`-l as-of`)
            }
            if word == "as-of" && shell != "fish" {
                continue;
            }
            assert!(s.contains(word), "{shell}: no {word}");
        }
    }
    let out = bin()
        .args(["completions", "tcsh-or-so"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_page_is_roff_naming_every_subcommand() {
    let s = String::from_utf8(run(bin().arg("man"))).expect("utf-8");
    assert!(
        s.starts_with(".ie") || s.contains("\n.TH "),
        "{}",
        &s[..200]
    );
    assert!(s.contains(".TH osteoguard"), "title header");
    for sub in [
        "assess",
        "inspect",
        "rules",
        "serve",
        "screen",
        "synth",
        "completions",
    ] {
        assert!(s.contains(sub), "{sub}");
    }
}

/// `serve` with stderr redirected (not a terminal) writes no ANSI escape sequences, whatever the
/// environment says about colour.
#[test]
fn serve_logs_have_no_colour_when_redirected() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conventions-serve");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let mut child = bin()
        .args(["serve", "--insecure-dev", "--port", "0", "--db"])
        .arg(dir.join("serve.db"))
        .env_remove("NO_COLOR")
        .env_remove("OSTEOGUARD_LOG_FORMAT")
        .env("OSTEOGUARD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("utf-8 log line");
        let done = line.contains("listening");
        lines.push(line);
        if done {
            break;
        }
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("listening")),
        "the service logs where it listens: {lines:#?}"
    );
    for l in &lines {
        assert!(!l.contains('\u{1b}'), "escape sequence in {l:?}");
    }
}

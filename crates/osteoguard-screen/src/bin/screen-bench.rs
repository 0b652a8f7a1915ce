//! Benchmark of population screening (not a timed test). On the same export and with the same
//! number of threads, measures:
//!
//! * (a) raw floor — read the bytes (gunzip) and split lines;
//! * (b) parse floor — (a) plus every line parsed into `serde_json::Value` (UTF-8 checked once per
//!   line, then `serde_json::from_str`: faster than `from_slice`, and what `screen` itself does);
//! * (c) `osteoguard screen` end to end (pass 1, pass 2, merge, outputs, registry);
//! * (b0) the parse floor as measured before 2026-11-26: `serde_json::from_slice::<Value>` of
//!   every line (from bytes). Kept for comparison with earlier reports; the goal is against (b).
//!
//! Each phase runs in a fresh child process (this binary with `--child`), so no phase inherits
//! another's heap (glibc keeps freed memory in per-thread arenas, which inflated a later phase's
//! peak RSS and slowed its allocations) and each peak RSS is that process's own high-water mark.
//! `--rounds` repeats the phases, in alternating order (a b c, c b a, …) so that drifting machine
//! load does not favour one phase; the report gives the median of each phase and the ratio of
//! medians, plus the (c)/(b) ratio of every round.
//!
//! Usage: `screen-bench EXPORT_DIR --as-of 2025-06-30 --jobs 2 [--rounds 3] [--only a,b,c,b0]`

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use osteoguard_screen::pass1::{for_each_chunk, input_files, lines};
use osteoguard_screen::{run_screen, ScreenArgs, ScreenError};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
struct Args {
    export_dir: PathBuf,
    #[arg(long)]
    as_of: String,
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Phases to run (a, b, c; b0 only when named).
    #[arg(long, value_delimiter = ',', default_values_t = ["a".to_string(), "b".to_string(), "c".to_string()])]
    only: Vec<String>,
    /// How many times each phase runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Internal: run one phase in this process and print its measurement as JSON.
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// CPU seconds (user + system) of this process so far: unlike wall time, it does not grow when
/// other processes compete for the cores.
fn cpu_secs() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime = 14th, stime = 15th.
    let Some(rest) = s.rsplit_once(')').map(|x| x.1) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The kernel's high-water mark of this process's resident memory.
fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = l.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// One phase's measurement (what a child prints).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measure {
    secs: f64,
    cpu: f64,
    bytes: u64,
    lines: u64,
    patients: u64,
    rss_mb: Option<f64>,
    /// `screen` only: its own summary line (kept lines, shards, pass timings).
    note: Option<String>,
}

/// How the floor phases treat each line.
#[derive(Clone, Copy, PartialEq)]
enum Parse {
    /// (a): not at all.
    No,
    /// (b): UTF-8 checked once, then `serde_json::from_str`.
    FromText,
    /// (b0): `serde_json::from_slice`.
    FromBytes,
}

fn floor(files: &[PathBuf], jobs: usize, parse: Parse) -> Result<(u64, u64), ScreenError> {
    let ws = for_each_chunk(
        files,
        jobs,
        u64::MAX,
        Arc::new(AtomicU64::new(0)),
        || {},
        || (0u64, 0u64),
        |w, chunk| {
            w.0 += chunk.len() as u64;
            for l in lines(chunk) {
                // (b) uses serde_json's faster entry point: the line's UTF-8 checked once, then
                // parsed from `&str` (from bytes, every string is checked on its own) — the same
                // one `screen` uses, so the floor is not handicapped.
                let v = match parse {
                    Parse::No => None,
                    Parse::FromText => match std::str::from_utf8(l) {
                        Ok(text) => serde_json::from_str::<serde_json::Value>(text).ok(),
                        Err(_) => serde_json::from_slice::<serde_json::Value>(l).ok(),
                    },
                    Parse::FromBytes => serde_json::from_slice::<serde_json::Value>(l).ok(),
                };
                std::hint::black_box(&v);
                w.1 += 1;
            }
            Ok(())
        },
    )?;
    Ok(ws.into_iter().fold((0, 0), |a, w| (a.0 + w.0, a.1 + w.1)))
}

fn run_child(args: &Args, phase: &str) -> Result<Measure, Box<dyn std::error::Error>> {
    let files = input_files(&args.export_dir)?;
    let c0 = cpu_secs();
    let t = Instant::now();
    let m = match phase {
        "a" | "b" | "b0" => {
            let parse = match phase {
                "a" => Parse::No,
                "b" => Parse::FromText,
                _ => Parse::FromBytes,
            };
            let (bytes, lines) = floor(&files, args.jobs, parse)?;
            Measure {
                secs: t.elapsed().as_secs_f64(),
                cpu: cpu_secs() - c0,
                bytes,
                lines,
                patients: 0,
                rss_mb: peak_rss_mb(),
                note: None,
            }
        }
        "c" => {
            let tmp = tempfile::tempdir()?;
            let mut sa = ScreenArgs::new(&args.export_dir, &args.as_of, tmp.path().join("out"));
            sa.jobs = Some(args.jobs);
            let s = run_screen(&sa)?;
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_secs() - c0;
            Measure {
                secs,
                cpu,
                bytes: s.resources.bytes,
                lines: s.resources.lines,
                patients: s.patients_read,
                rss_mb: peak_rss_mb(),
                note: Some(format!(
                    "{} patients, {} lines ({} kept, {} ignored), {} shards; pass1 {} ms, pass2 {} ms, merge {} ms",
                    s.patients_read, s.resources.lines, s.resources.kept, s.resources.ignored,
                    s.shards, s.timings.pass1_ms, s.timings.pass2_ms, s.timings.merge_ms
                )),
            }
        }
        other => return Err(format!("unknown phase {other:?}").into()),
    };
    Ok(m)
}

fn spawn(args: &Args, phase: &str) -> Result<Measure, Box<dyn std::error::Error>> {
    let out = Command::new(std::env::current_exe()?)
        .arg(&args.export_dir)
        .args(["--as-of", &args.as_of, "--jobs", &args.jobs.to_string()])
        .args(["--child", phase])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "phase {phase} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

const NAMES: [(&str, &str); 4] = [
    ("a", "(a) raw floor: read + split lines"),
    ("b", "(b) parse floor: every line to serde_json::Value"),
    ("c", "(c) screen end to end"),
    (
        "b0",
        "(b0) parse floor from bytes (`from_slice`, as reported before)",
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let rounds = args.rounds.max(1);
    if let Some(phase) = &args.child {
        let m = run_child(&args, phase)?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    let files = input_files(&args.export_dir)?;
    // Warm the page cache so that every phase reads from memory alike.
    floor(&files, args.jobs, Parse::No)?;
    let phases: Vec<&str> = NAMES
        .iter()
        .map(|n| n.0)
        .filter(|p| args.only.iter().any(|x| x == p))
        .collect();
    let mut runs: Vec<(usize, &str, Measure)> = Vec::new();
    for round in 0..rounds {
        let mut order = phases.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for p in order {
            let m = spawn(&args, p)?;
            eprintln!(
                "round {} phase {p}: {:.2} s wall, {:.2} s CPU, peak RSS {:.0} MB",
                round + 1,
                m.secs,
                m.cpu,
                m.rss_mb.unwrap_or(f64::NAN)
            );
            runs.push((round, p, m));
        }
    }
    println!(
        "export: {}  threads: {}  files: {}  rounds: {} (median of each phase; each phase a fresh process)",
        args.export_dir.display(),
        args.jobs,
        files.len(),
        rounds
    );
    println!();
    println!("| phase | wall s | CPU s | MB/s | resources/s | patients/s | peak RSS (MB) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    fn of<'r>(
        runs: &'r [(usize, &str, Measure)],
        p: &'r str,
    ) -> impl Iterator<Item = &'r Measure> + 'r {
        runs.iter().filter(move |r| r.1 == p).map(|r| &r.2)
    }
    let patients = of(&runs, "c").map(|m| m.patients).max().unwrap_or(0);
    let mut med: Vec<(&str, f64, f64)> = Vec::new();
    for (p, name) in NAMES {
        if !phases.contains(&p) {
            continue;
        }
        let secs = median(of(&runs, p).map(|m| m.secs).collect());
        let cpu = median(of(&runs, p).map(|m| m.cpu).collect());
        let rss = median(of(&runs, p).filter_map(|m| m.rss_mb).collect());
        let any = of(&runs, p).next();
        let bytes = any.map_or(0, |m| m.bytes);
        let lines = any.map_or(0, |m| m.lines);
        let pps = if patients > 0 {
            format!("{:.0}", patients as f64 / secs)
        } else {
            "—".into()
        };
        println!(
            "| {name} | {secs:.2} | {cpu:.2} | {:.0} | {:.0} | {pps} | {rss:.0} |",
            bytes as f64 / 1e6 / secs,
            lines as f64 / secs,
        );
        med.push((p, secs, cpu.max(1e-9)));
    }
    let get = |p: &str| med.iter().find(|m| m.0 == p).map(|m| (m.1, m.2));
    if let (Some(a), Some(c)) = (get("a"), get("c")) {
        println!("\n(c)/(a): wall {:.2}, CPU {:.2}", c.0 / a.0, c.1 / a.1);
    }
    if let (Some(b), Some(c)) = (get("b"), get("c")) {
        println!(
            "(c)/(b): wall {:.2}, CPU {:.2} ({})",
            c.0 / b.0,
            c.1 / b.1,
            if c.0 <= b.0 && c.1 <= b.1 {
                "goal met: screen at least as fast as parsing"
            } else {
                "goal NOT met on both wall and CPU time"
            }
        );
        let per_round: Vec<String> = (0..rounds)
            .filter_map(|r| {
                let f = |p: &str| runs.iter().find(|x| x.0 == r && x.1 == p).map(|x| &x.2);
                let (b, c) = (f("b")?, f("c")?);
                Some(format!(
                    "{:.2}/{:.2}",
                    c.secs / b.secs,
                    c.cpu / b.cpu.max(1e-9)
                ))
            })
            .collect();
        println!("(c)/(b) per round (wall/CPU): {}", per_round.join(", "));
    }
    for (r, _, m) in runs.iter().filter(|r| r.1 == "c") {
        if let Some(n) = &m.note {
            println!("screen round {}: {n}", r + 1);
        }
    }
    Ok(())
}

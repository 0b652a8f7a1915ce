//! Benchmark of population screening (not a timed test). In one process, on the same export and
//! with the same number of threads, measures:
//!
//! * (a) raw floor — read the bytes (gunzip) and split lines;
//! * (b) parse floor — (a) plus `serde_json::from_slice::<Value>` of every line;
//! * (c) `osteoguard screen` end to end (pass 1, pass 2, merge, outputs, registry).
//!
//! and reports seconds, MB/s, resources/s, patients/s and the peak RSS of each phase (the kernel
//! high-water mark is reset between phases through `/proc/self/clear_refs`).
//!
//! Usage: `screen-bench EXPORT_DIR --as-of 2025-06-30 --jobs 2 [--only c] [--out DIR]`

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use osteoguard_screen::pass1::{for_each_chunk, input_files, lines};
use osteoguard_screen::{run_screen, ScreenArgs, ScreenError};

#[derive(Parser)]
struct Args {
    export_dir: PathBuf,
    #[arg(long)]
    as_of: String,
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Phases to run (a, b, c).
    #[arg(long, value_delimiter = ',', default_values_t = ["a".to_string(), "b".to_string(), "c".to_string()])]
    only: Vec<String>,
    /// Output directory for (c) (default: a fresh temporary directory).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
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

fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = l.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct Phase {
    name: &'static str,
    secs: f64,
    cpu: f64,
    bytes: u64,
    lines: u64,
    rss_mb: Option<f64>,
}

fn floor(files: &[PathBuf], jobs: usize, parse: bool) -> Result<(u64, u64), ScreenError> {
    let ws = for_each_chunk(
        files,
        jobs,
        Arc::new(AtomicU64::new(0)),
        || {},
        || (0u64, 0u64),
        |w, chunk| {
            w.0 += chunk.len() as u64;
            for l in lines(chunk) {
                if parse {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(l) {
                        std::hint::black_box(&v);
                    }
                }
                w.1 += 1;
            }
            Ok(())
        },
    )?;
    Ok(ws.into_iter().fold((0, 0), |a, w| (a.0 + w.0, a.1 + w.1)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let files = input_files(&args.export_dir)?;
    let want = |p: &str| args.only.iter().any(|x| x == p);
    // Warm the page cache so that every phase reads from memory alike.
    floor(&files, args.jobs, false)?;
    let mut phases = Vec::new();
    let mut patients = 0u64;
    if want("a") {
        reset_peak();
        let c0 = cpu_secs();
        let t = Instant::now();
        let (bytes, lines) = floor(&files, args.jobs, false)?;
        phases.push(Phase {
            name: "(a) raw floor: read + split lines",
            secs: t.elapsed().as_secs_f64(),
            cpu: cpu_secs() - c0,
            bytes,
            lines,
            rss_mb: peak_rss_mb(),
        });
    }
    if want("b") {
        reset_peak();
        let c0 = cpu_secs();
        let t = Instant::now();
        let (bytes, lines) = floor(&files, args.jobs, true)?;
        phases.push(Phase {
            name: "(b) parse floor: every line to serde_json::Value",
            secs: t.elapsed().as_secs_f64(),
            cpu: cpu_secs() - c0,
            bytes,
            lines,
            rss_mb: peak_rss_mb(),
        });
    }
    let mut summary = None;
    if want("c") {
        let tmp = tempfile::tempdir()?;
        let out = args.out.clone().unwrap_or_else(|| tmp.path().join("out"));
        let mut sa = ScreenArgs::new(&args.export_dir, &args.as_of, &out);
        sa.jobs = Some(args.jobs);
        reset_peak();
        let c0 = cpu_secs();
        let t = Instant::now();
        let s = run_screen(&sa)?;
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_secs() - c0;
        patients = s.patients_read;
        phases.push(Phase {
            name: "(c) screen end to end",
            secs,
            cpu,
            bytes: s.resources.bytes,
            lines: s.resources.lines,
            rss_mb: peak_rss_mb(),
        });
        summary = Some(s);
    }
    println!(
        "export: {}  threads: {}  files: {}",
        args.export_dir.display(),
        args.jobs,
        files.len()
    );
    println!();
    println!("| phase | wall s | CPU s | MB/s | resources/s | patients/s | peak RSS (MB) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for p in &phases {
        let pps = if patients > 0 {
            format!("{:.0}", patients as f64 / p.secs)
        } else {
            "—".into()
        };
        println!(
            "| {} | {:.2} | {:.2} | {:.0} | {:.0} | {} | {} |",
            p.name,
            p.secs,
            p.cpu,
            p.bytes as f64 / 1e6 / p.secs,
            p.lines as f64 / p.secs,
            pps,
            p.rss_mb
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "?".into())
        );
    }
    let get = |n: &str| {
        phases
            .iter()
            .find(|p| p.name.starts_with(n))
            .map(|p| (p.secs, p.cpu.max(1e-9)))
    };
    if let (Some(a), Some(c)) = (get("(a)"), get("(c)")) {
        println!("\n(c)/(a): wall {:.2}, CPU {:.2}", c.0 / a.0, c.1 / a.1);
    }
    if let (Some(b), Some(c)) = (get("(b)"), get("(c)")) {
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
    }
    if let Some(s) = summary {
        println!(
            "\nscreen: {} patients, {} lines ({} kept, {} ignored), {} shards; pass1 {} ms, pass2 {} ms, merge {} ms",
            s.patients_read, s.resources.lines, s.resources.kept, s.resources.ignored, s.shards,
            s.timings.pass1_ms, s.timings.pass2_ms, s.timings.merge_ms
        );
    }
    Ok(())
}

//! Whole-pipeline timing of one measure over a directory (read + evaluate + MeasureReport
//! Bundle serialised), as `osteoguard measure` runs it, for scripts/bench-measures.sh:
//! `cargo run --release -p osteoguard-measure --example measure_timing -- cms249 DIR`.

use std::time::Instant;

use osteoguard_measure::{evaluate, input, report, Measure, MeasurementPeriod, ValueSets};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(m), Some(dir)) = (args.get(1).and_then(|m| Measure::parse(m)), args.get(2)) else {
        eprintln!("usage: measure_timing cms249|cms645 DIR");
        std::process::exit(2);
    };
    let Ok(period) = MeasurementPeriod::year(2025) else {
        return;
    };
    let t0 = Instant::now();
    let Ok(vs) = ValueSets::embedded(m) else {
        eprintln!("no embedded value sets");
        std::process::exit(2);
    };
    let read = match input::read_records(std::path::Path::new(dir)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let t1 = Instant::now();
    let results: Vec<_> = read
        .records
        .iter()
        .map(|r| evaluate(m, r, &vs, &period))
        .collect();
    let t2 = Instant::now();
    let text = serde_json::to_string(&report::bundle(m, &results, &period)).unwrap_or_default();
    let t3 = Instant::now();
    let n = results.len().max(1) as f64;
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
    let counts = report::counts(m, &results);
    println!(
        "{} {} patients: read {:.1} ms, evaluate {:.2} ms ({:.4} ms/patient), report {:.1} ms ({} bytes); total {:.3} ms/patient; counts {:?}",
        m.id(), results.len(), ms(t0, t1), ms(t1, t2), ms(t1, t2) / n, ms(t2, t3), text.len(), ms(t0, t3) / n, counts
    );
}

//! `osteoguard measure`: the eCQMs CMS249 / CMS645 over FHIR input, written as one Bundle of
//! FHIR R4 MeasureReports (an `individual` report per patient, then the `summary`).

use std::path::PathBuf;

use anyhow::anyhow;
use chrono::NaiveDate;
use osteoguard_measure::{evaluate, report, Measure, MeasurementPeriod, ValueSets};

#[derive(clap::Args)]
pub struct MeasureArgs {
    /// The measure: cms249 or cms645.
    #[arg(long, value_parser = parse_measure)]
    measure: Measure,
    /// Measurement period start, YYYY-MM-DD (default 2025-01-01, the measures' 2025 period).
    #[arg(long, default_value = "2025-01-01")]
    period_start: String,
    /// Measurement period end, YYYY-MM-DD (inclusive; default 2025-12-31).
    #[arg(long, default_value = "2025-12-31")]
    period_end: String,
    /// A VSAC expansion Bundle to use instead of the value sets built into the binary.
    #[arg(long)]
    valuesets: Option<PathBuf>,
    /// A FHIR Bundle, an NDJSON file, a Bulk Data export directory, or a directory of
    /// single-resource JSON files.
    input: PathBuf,
    /// Write the MeasureReport Bundle here instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

fn parse_measure(s: &str) -> Result<Measure, String> {
    Measure::parse(s).ok_or_else(|| format!("unknown measure {s:?} (cms249 or cms645)"))
}

fn date(s: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| super::usage(anyhow!("{s:?} is not a YYYY-MM-DD date: {e}")))
}

pub fn run(args: MeasureArgs) -> anyhow::Result<()> {
    let period = MeasurementPeriod::new(date(&args.period_start)?, date(&args.period_end)?)
        .map_err(|e| super::usage(anyhow!(e)))?;
    let vs = match &args.valuesets {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| super::usage(anyhow!("{}: {e}", p.display())))?;
            ValueSets::from_bundle_json(&text).map_err(|e| super::usage(anyhow!(e)))?
        }
        None => ValueSets::embedded(args.measure).map_err(|e| super::usage(anyhow!(e)))?,
    };
    let read = osteoguard_measure::input::read_records(&args.input)
        .map_err(|e| super::usage(anyhow!(e)))?;
    for issue in &read.issues {
        eprintln!("osteoguard measure: skipped {issue}");
    }
    let results: Vec<_> = read
        .records
        .iter()
        .map(|r| evaluate(args.measure, r, &vs, &period))
        .collect();
    let bundle = report::bundle(args.measure, &results, &period);
    let mut text = serde_json::to_string_pretty(&bundle)?;
    text.push('\n');
    super::write_out(args.output.as_deref(), &text)
}

/// `osteoguard screen` with `--measures`: the screening of `osteoguard-screen`, then the
/// requested eCQMs' MeasureReports in `OUT/measure-reports/`.
#[derive(clap::Args)]
pub struct ScreenCommand {
    #[command(flatten)]
    args: osteoguard_screen::ScreenArgs,
    /// Also write eCQM MeasureReports (comma list: cms249,cms645) to OUT/measure-reports/,
    /// for the calendar year of --as-of.
    #[arg(long, value_delimiter = ',', value_parser = parse_measure)]
    measures: Vec<Measure>,
}

pub fn screen(c: ScreenCommand) -> anyhow::Result<()> {
    let (export, out, as_of) = (
        c.args.export_dir.clone(),
        c.args.out.clone(),
        c.args.as_of.clone(),
    );
    let quiet = c.args.quiet;
    osteoguard_screen::screen(c.args).map_err(super::screen_error)?;
    if c.measures.is_empty() {
        return Ok(());
    }
    let period = MeasurementPeriod::year(chrono::Datelike::year(&date(&as_of)?))
        .map_err(|e| super::usage(anyhow!(e)))?;
    let w = osteoguard_screen::measure_reports::write(&export, &out, &c.measures, &period)
        .map_err(|e| anyhow!(e))?;
    if !quiet {
        for f in &w.files {
            eprintln!(
                "osteoguard screen: {} patients → {}",
                w.patients,
                f.display()
            );
        }
    }
    Ok(())
}

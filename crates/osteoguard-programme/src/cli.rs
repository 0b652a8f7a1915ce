//! `osteoguard programme-report`: arguments and the run (the binary maps errors to exit codes).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use osteoguard_core::programme::ReportingPeriod;
use osteoguard_core::Config;

use crate::{input, report_from, Options, ProgrammeError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One self-contained HTML page (SVG charts, no script).
    Html,
    /// `osteoguard.programme/1`.
    Json,
}

/// The fracture-liaison programme report: the IOF patient-level KPIs (knowledge.md §13) of every
/// patient with an index fracture in the period, and the screening registry's history.
#[derive(Debug, clap::Args)]
pub struct ProgrammeArgs {
    /// A FHIR Bundle / resource file, an NDJSON file, or a Bulk Data export directory.
    pub input: PathBuf,
    /// First day of the reporting period (YYYY-MM-DD).
    #[arg(long)]
    pub period_start: String,
    /// Last day of the reporting period (YYYY-MM-DD, included).
    #[arg(long)]
    pub period_end: String,
    /// The date the report describes (YYYY-MM-DD). Default: the period end or the latest date
    /// found in the input, whichever is earlier (never the clock); the report says which.
    #[arg(long)]
    pub as_of: Option<String>,
    /// The SQLite registry of `osteoguard screen --db`: its history goes beside the KPIs.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Output file (default: standard output).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Output format: one self-contained HTML page, or JSON (`osteoguard.programme/1`).
    #[arg(long, value_enum, default_value_t = Format::Html)]
    pub format: Format,
    /// Site configuration (TOML; its `[programme]` table maps the falls-risk and exercise codes).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

fn date(flag: &str, s: &str) -> Result<NaiveDate, ProgrammeError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| {
        ProgrammeError::Usage(format!("--{flag} {s:?}: expected a date YYYY-MM-DD ({e})"))
    })
}

fn config(path: Option<&Path>) -> Result<Config, ProgrammeError> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ProgrammeError::Usage(format!("{}: cannot read: {e}", path.display())))?;
    Config::from_toml_str_allowing(&text, &["server", "screen"])
        .map_err(|e| ProgrammeError::Usage(format!("{}: {e}", path.display())))
}

/// The default as-of date: the period end, or the latest date in the input if earlier.
pub fn derived_as_of(input: &input::Input, period_end: NaiveDate) -> (NaiveDate, String) {
    let latest = input
        .patients
        .iter()
        .flat_map(|p| {
            let r = &p.record;
            r.medications
                .iter()
                .filter_map(|m| m.visible)
                .chain(r.observations.iter().filter_map(|o| o.visible))
                .chain(r.conditions.iter().filter_map(|c| c.visible))
                .chain(r.procedures.iter().filter_map(|x| x.date()))
                .chain(p.items.iter().filter_map(|i| i.date))
        })
        .max();
    match latest {
        Some(l) if l < period_end => (
            l,
            "derived: the latest date found in the input (earlier than the period end)".into(),
        ),
        _ => (period_end, "derived: the period end".into()),
    }
}

/// Runs the subcommand and writes the report.
pub fn run(a: ProgrammeArgs) -> Result<(), ProgrammeError> {
    let period = ReportingPeriod {
        start: date("period-start", &a.period_start)?,
        end: date("period-end", &a.period_end)?,
    };
    let config = config(a.config.as_deref())?;
    let given = a.as_of.as_deref().map(|s| date("as-of", s)).transpose()?;
    if period.end < period.start {
        return Err(ProgrammeError::Usage(format!(
            "the period ends ({}) before it starts ({})",
            period.end, period.start
        )));
    }
    let input = input::read(&a.input)?;
    let (as_of, as_of_source) = match given {
        Some(d) => (d, "given (--as-of)".to_string()),
        None => derived_as_of(&input, period.end),
    };
    let r = report_from(
        input,
        &a.input,
        a.db.as_deref(),
        &Options {
            period,
            as_of,
            as_of_source,
            config,
        },
    )?;
    let text = match a.format {
        Format::Html => crate::html::render(&r),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&r)
                .map_err(|e| ProgrammeError::Output(e.to_string()))?;
            s.push('\n');
            s
        }
    };
    match &a.output {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| ProgrammeError::Output(format!("{}: cannot write: {e}", p.display()))),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| ProgrammeError::Output(e.to_string()))
        }
    }
}

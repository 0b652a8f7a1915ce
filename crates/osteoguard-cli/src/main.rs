//! The `osteoguard` binary: a thin layer over the library crates.
//!
//! Exit codes: 0 success; 2 bad usage or unreadable input (clap's own usage errors are 2 too);
//! 1 any other failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use chrono::NaiveDate;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use osteoguard_core::Config;

mod catalogue_render;
mod measure;

/// mimalloc: per-thread free lists and cheap cross-thread frees for the service's many small,
/// short-lived allocations (ARCHITECTURE.md "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "osteoguard",
    version,
    about = "Bone-health clinical decision support over HL7 FHIR R4"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Assess one patient's record at an as-of date.
    Assess(AssessArgs),
    /// Data-quality report: what was read, used, ignored or not understood.
    Inspect(InspectArgs),
    /// The rule catalogue: every finding code, its thresholds and sources.
    Rules(RulesArgs),
    /// Run the CDS Hooks 2.0 service.
    Serve(osteoguard_server::ServeArgs),
    /// Summarise CDS Hooks feedback (acceptance and override rates per finding).
    FeedbackReport(osteoguard_server::FeedbackReportArgs),
    /// Screen a population (FHIR Bulk Data export) and write worklists.
    Screen(measure::ScreenCommand),
    /// Write a synthetic Bulk Data export with known bone-health scenarios.
    Synth(osteoguard_screen::SynthArgs),
    /// Evaluate the eCQM CMS249 or CMS645 and write FHIR MeasureReports.
    Measure(measure::MeasureArgs),
    /// Fracture-liaison programme report: the IOF KPIs of knowledge.md §13 and the registry history.
    ProgrammeReport(osteoguard_programme::ProgrammeArgs),
    /// Print a shell completion script (e.g. `osteoguard completions bash > /etc/bash_completion.d/osteoguard`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `osteoguard man | man -l -`).
    Man,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// What a clinician reads in 30 seconds.
    Text,
    /// The `osteoguard.assessment/1` JSON contract (schemas/assessment.schema.json).
    Json,
    /// A self-contained HTML report (inline CSS and SVG, no script).
    Html,
    /// A FHIR R4 Bundle: DetectedIssue, Task, RiskAssessment (docs/fhir-output.md).
    Fhir,
}

#[derive(clap::Args)]
struct AssessArgs {
    /// A FHIR Bundle, an NDJSON file, a Bulk Data export directory, or `-` for standard input.
    input: PathBuf,
    /// Evaluation date, YYYY-MM-DD (the record is read as it looked on that day).
    #[arg(long)]
    as_of: String,
    /// Patient id, required when the input holds several patients.
    #[arg(long)]
    patient: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Site configuration (TOML): threshold overrides, switched-off findings.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Text format: also print each finding's specification section and rule trace.
    #[arg(long)]
    verbose: bool,
}

/// Bounds on what one read holds in memory.
#[derive(clap::Args)]
struct LimitArgs {
    /// Longest NDJSON line / largest JSON file read, in MiB (longer: exit 2 naming file and line).
    #[arg(long, default_value_t = osteoguard_screen::DEFAULT_MAX_LINE_MIB)]
    max_line_mb: u64,
}

impl LimitArgs {
    fn read(&self, input: &Path) -> anyhow::Result<osteoguard_fhir::ReadOutput> {
        let limits = osteoguard_fhir::ReadLimits::with_max_line_mib(self.max_line_mb);
        if input.as_os_str() == STDIN {
            return read_stdin(limits);
        }
        osteoguard_fhir::read_path_with(input, limits).map_err(|e| usage(anyhow!(e)))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum InspectFormat {
    /// A table per patient and in total.
    Text,
    /// The same counts and every entry not understood, as JSON.
    Json,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// A FHIR Bundle, an NDJSON file, a Bulk Data export directory, or `-` for standard input.
    input: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
    format: InspectFormat,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum RulesFormat {
    /// A plain-text catalogue.
    Text,
    /// The catalogue as JSON.
    Json,
    /// The catalogue as Markdown (for governance committees).
    Markdown,
}

#[derive(clap::Args)]
struct RulesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    format: RulesFormat,
    /// Site configuration whose overrides the catalogue should show.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// An error that maps to exit code 2 (bad usage or unreadable input).
#[derive(Debug)]
struct UsageError(anyhow::Error);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}
impl std::error::Error for UsageError {}

fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(UsageError(e))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            };
            eprintln!("osteoguard: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Assess(a) => assess(a),
        Command::Inspect(a) => inspect(a),
        Command::Rules(a) => rules(a),
        Command::Serve(a) => osteoguard_server::serve(a).map_err(|e| anyhow!(e)),
        Command::FeedbackReport(a) => osteoguard_server::feedback_report(a).map_err(|e| anyhow!(e)),
        Command::Screen(a) => measure::screen(a),
        Command::Synth(a) => osteoguard_screen::synth(a).map_err(|e| anyhow!(e)),
        Command::Measure(a) => measure::run(a),
        Command::ProgrammeReport(a) => osteoguard_programme::run_cli(a).map_err(|e| match e {
            osteoguard_programme::ProgrammeError::Usage(_)
            | osteoguard_programme::ProgrammeError::Input(_) => usage(anyhow!(e)),
            e => anyhow!(e),
        }),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "osteoguard", &mut out);
            write_out_bytes(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            write_out_bytes(&out)
        }
    }
}

fn write_out_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// The standard-input file name: `assess -` and `inspect -` read the record from it.
const STDIN: &str = "-";

/// Standard input, bounded as files are (`--max-line-mb`; a total limit for NDJSON streams).
fn read_stdin(limits: osteoguard_fhir::ReadLimits) -> anyhow::Result<osteoguard_fhir::ReadOutput> {
    osteoguard_fhir::read_stream_with(std::io::stdin().lock(), "standard input", limits)
        .map_err(|e| usage(anyhow!(e)))
}

fn parse_as_of(s: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| {
        usage(anyhow!(
            "--as-of {s:?}: expected a calendar date YYYY-MM-DD ({e})"
        ))
    })
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read configuration", path.display()))
        .map_err(usage)?;
    Config::from_toml_str_allowing(&text, &["server", "screen"])
        .map_err(|e| usage(anyhow!("{}: {e}", path.display())))
}

fn write_out(output: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("{}: cannot write", p.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

/// `screen`'s errors at the binary's edge: bad usage and unreadable input exit 2, as for assess.
fn screen_error(e: osteoguard_screen::ScreenError) -> anyhow::Error {
    match e {
        osteoguard_screen::ScreenError::Usage(_) | osteoguard_screen::ScreenError::Input(_) => {
            usage(anyhow!(e))
        }
        e => anyhow!(e),
    }
}

fn assess(args: AssessArgs) -> anyhow::Result<()> {
    let as_of = parse_as_of(&args.as_of)?;
    let config = load_config(args.config.as_deref())?;
    let read = args.limits.read(&args.input)?;
    let patient = match (&args.patient, read.patients.len()) {
        (_, 0) => {
            return Err(usage(anyhow!(
                "{}: no Patient resource found (resource Patient, field: none in the input)",
                args.input.display()
            )))
        }
        (Some(id), _) => read.patients.iter().find(|p| &p.id == id).ok_or_else(|| {
            usage(anyhow!(
                "patient {id:?} not found; patients in {}: {}",
                args.input.display(),
                patient_list(&read)
            ))
        })?,
        (None, 1) => &read.patients[0],
        (None, n) => {
            return Err(usage(anyhow!(
                "{} holds {n} patients; choose one with --patient ID: {}",
                args.input.display(),
                patient_list(&read)
            )))
        }
    };
    let mut issues = patient.issues.clone();
    issues.extend(read.unattached.iter().cloned());
    let assessment = osteoguard_core::assess_with_issues(&patient.record, &issues, as_of, &config);
    let text = match args.format {
        Format::Text => osteoguard_report::text::render_with(
            &assessment,
            osteoguard_report::text::TextOptions {
                verbose: args.verbose,
            },
        ),
        Format::Json => osteoguard_report::json::render(&assessment),
        Format::Html => osteoguard_report::html::render(&assessment),
        Format::Fhir => osteoguard_report::fhir::render(&assessment),
    };
    write_out(args.output.as_deref(), &text)
}

fn patient_list(read: &osteoguard_fhir::ReadOutput) -> String {
    const SHOWN: usize = 20;
    let ids: Vec<&str> = read
        .patients
        .iter()
        .take(SHOWN)
        .map(|p| p.id.as_str())
        .collect();
    let more = read.patients.len().saturating_sub(SHOWN);
    if more > 0 {
        format!("{} … and {more} more", ids.join(", "))
    } else {
        ids.join(", ")
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let read = args.limits.read(&args.input)?;
    let text = match args.format {
        InspectFormat::Json => {
            let patients: Vec<_> = read
                .patients
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "patient": p.id,
                        "byType": p.stats.by_type,
                        "notUnderstood": p.issues,
                    })
                })
                .collect();
            let v = serde_json::json!({
                "input": args.input.display().to_string(),
                "total": read.stats.by_type,
                "patients": patients,
                "unattached": read.unattached,
            });
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        InspectFormat::Text => inspect_text(&args.input, &read),
    };
    write_out(None, &text)
}

fn inspect_text(input: &Path, read: &osteoguard_fhir::ReadOutput) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let table = |s: &mut String, stats: &osteoguard_fhir::Stats| {
        let _ = writeln!(
            s,
            "  {:<26} {:>8} {:>8} {:>8} {:>15}",
            "resource type", "read", "used", "ignored", "not understood"
        );
        for (ty, c) in &stats.by_type {
            let _ = writeln!(
                s,
                "  {:<26} {:>8} {:>8} {:>8} {:>15}",
                ty, c.read, c.used, c.ignored, c.not_understood
            );
        }
    };
    let _ = writeln!(s, "{}: {} patient(s)", input.display(), read.patients.len());
    let _ = writeln!(s, "Total:");
    table(&mut s, &read.stats);
    for p in &read.patients {
        let _ = writeln!(s, "\nPatient/{}:", p.id);
        table(&mut s, &p.stats);
        for i in &p.issues {
            let _ = writeln!(s, "  ! {} {}: {}", i.reference, i.field, i.problem);
        }
    }
    if !read.unattached.is_empty() {
        let _ = writeln!(s, "\nNot attached to a patient:");
        for i in &read.unattached {
            let _ = writeln!(s, "  ! {} {}: {}", i.reference, i.field, i.problem);
        }
    }
    s
}

fn rules(args: RulesArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_deref())?;
    let text = match args.format {
        RulesFormat::Text => catalogue_render::text(&config),
        RulesFormat::Json => catalogue_render::json(&config)?,
        RulesFormat::Markdown => catalogue_render::markdown(&config),
    };
    write_out(None, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of every subcommand, and every value of an enumerated argument, has help
    /// text (`--help`, completions and the man page show it).
    #[test]
    fn every_option_and_value_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
                // Flags (`--quiet`) list true/false as values; they need no help of their own.
                // Exempt: shell names (self-describing) and osteoguard-screen's values (that
                // crate owns its argument definitions).
                let exempt = !arg.get_action().takes_values()
                    || path.ends_with(" completions")
                    || path.ends_with(" screen");
                for v in arg.get_possible_values().into_iter().filter(|_| !exempt) {
                    if v.get_help().is_none() && !v.is_hide_set() {
                        missing.push(format!("{path} {id}={}", v.get_name()));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let cmd = Cli::command();
        let mut missing = Vec::new();
        walk(&cmd, "osteoguard", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
        assert!(cmd.get_subcommands().count() >= 9);
    }
}

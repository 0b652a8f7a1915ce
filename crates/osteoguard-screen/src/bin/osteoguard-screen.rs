//! Stand-alone `screen` / `synth` binary of this crate.
//!
//! The workspace binary is `osteoguard` (crates/osteoguard-cli), which calls the same library
//! functions. This one exists so that this crate's integration tests can spawn a real process
//! (`env!("CARGO_BIN_EXE_osteoguard-screen")`, e.g. to SIGKILL it mid-run) without depending on
//! another crate's build output: cargo builds it for `cargo test -p osteoguard-screen`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "osteoguard-screen",
    version,
    about = "Population screening (osteoguard)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Screen a population (FHIR Bulk Data export) and write worklists.
    Screen(osteoguard_screen::ScreenArgs),
    /// Write a synthetic Bulk Data export with known bone-health scenarios.
    Synth(osteoguard_screen::SynthArgs),
}

fn main() -> ExitCode {
    let r = match Cli::parse().command {
        Command::Screen(a) => osteoguard_screen::screen(a),
        Command::Synth(a) => osteoguard_screen::synth(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("osteoguard-screen: {e}");
            ExitCode::from(match e {
                osteoguard_screen::ScreenError::Usage(_)
                | osteoguard_screen::ScreenError::Input(_) => 2,
                _ => 1,
            })
        }
    }
}

//! # osteoguard-screen — population screening (skeleton; implementation pending)

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct ScreenArgs {
    /// FHIR Bulk Data export directory.
    pub export_dir: PathBuf,
    /// Evaluation date (YYYY-MM-DD).
    #[arg(long)]
    pub as_of: String,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    /// Number of patients.
    #[arg(long)]
    pub patients: u64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("not implemented yet")]
    NotImplemented,
}

pub fn screen(args: ScreenArgs) -> Result<(), ScreenError> {
    let _ = args;
    Err(ScreenError::NotImplemented)
}

pub fn synth(args: SynthArgs) -> Result<(), ScreenError> {
    let _ = args;
    Err(ScreenError::NotImplemented)
}

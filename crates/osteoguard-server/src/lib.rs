//! # osteoguard-server — CDS Hooks 2.0 service (skeleton; implementation pending)

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Port to listen on.
    #[arg(long)]
    pub port: Option<u16>,
    /// SQLite database file.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Accept unsigned requests (local testing only; never the default).
    #[arg(long)]
    pub insecure_dev: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FeedbackReportArgs {
    /// SQLite database file.
    #[arg(long)]
    pub db: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("not implemented yet")]
    NotImplemented,
}

pub fn serve(args: ServeArgs) -> Result<(), ServeError> {
    let _ = args;
    Err(ServeError::NotImplemented)
}

pub fn feedback_report(args: FeedbackReportArgs) -> Result<(), ServeError> {
    let _ = args;
    Err(ServeError::NotImplemented)
}

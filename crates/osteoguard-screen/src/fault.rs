//! The files screening writes (pass-1 shards, pass-2 runs, worklists, summary), behind one
//! wrapper with a fault-injection seam for tests.
//!
//! `OSTEOGUARD_SCREEN_TEST_ENOSPC_AFTER=N` (a test hook like `OSTEOGUARD_SCREEN_TEST_DELAY_MS`):
//! once the process has written `N` bytes through [`OutFile`], every further write fails with
//! the operating system's "no space left on device" (ENOSPC), as on a full disk. Unset (always,
//! outside tests), a write costs one branch more than writing to the `File` itself.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

/// The environment variable of the seam.
pub const ENOSPC_AFTER_VAR: &str = "OSTEOGUARD_SCREEN_TEST_ENOSPC_AFTER";

/// ENOSPC (Linux, macOS and the BSDs agree on it).
const ENOSPC: i32 = 28;

/// Bytes still allowed before writes fail (`None`: no fault injected).
static BUDGET: LazyLock<Option<AtomicU64>> = LazyLock::new(|| {
    std::env::var(ENOSPC_AFTER_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(AtomicU64::new)
});

/// Takes `n` bytes from the budget, or fails as a full disk would.
fn spend(n: usize) -> io::Result<()> {
    let Some(budget) = BUDGET.as_ref() else {
        return Ok(());
    };
    let n = n as u64;
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(n)
        })
        .map(|_| ())
        .map_err(|_| io::Error::from_raw_os_error(ENOSPC))
}

/// A file written by screening.
pub struct OutFile(File);

impl OutFile {
    pub fn create(path: &std::path::Path) -> io::Result<Self> {
        File::create(path).map(OutFile)
    }
    pub fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        spend(buf.len())?;
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The xlsx worklist is packed straight into its file (a zip writer goes back to complete each
/// member's header), instead of into a buffer of the whole file first.
impl Seek for OutFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

/// The registry a run writes: `--db`, by default `OUT/registry.sqlite`.
pub fn registry_path(args: &crate::ScreenArgs) -> PathBuf {
    args.db
        .clone()
        .unwrap_or_else(|| args.out.join("registry.sqlite"))
}

/// A registry error names the database file (SQLite's own messages — "unable to open database
/// file", "attempt to write a readonly database", "database or disk is full" — name none).
pub fn name_registry(args: &crate::ScreenArgs, e: crate::ScreenError) -> crate::ScreenError {
    match e {
        crate::ScreenError::Registry(m) => {
            let path = registry_path(args).display().to_string();
            if m.contains(&path) {
                crate::ScreenError::Registry(m)
            } else {
                crate::ScreenError::Registry(format!("{path}: {m}"))
            }
        }
        e => e,
    }
}

//! Progress on stderr: an indicatif bar (resources/s, patients/s, ETA) when stderr is a
//! terminal, plain log lines (at most every 5 s) otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars' templates (a template indicatif refuses would leave the bar unstyled: tested).
const PASS1_TEMPLATE: &str =
    "pass 1 [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}";
const PASS2_TEMPLATE: &str =
    "pass 2 [{elapsed_precise}] [{bar:30}] {pos}/{len} shards {msg} ETA {eta}";

enum Mode {
    Quiet,
    Bar,
    Log,
}

pub struct Progress {
    mode: Mode,
    bar: Mutex<Option<ProgressBar>>,
    started: Mutex<Instant>,
    last_log: Mutex<Instant>,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Log
        };
        Progress {
            mode,
            bar: Mutex::new(None),
            started: Mutex::new(Instant::now()),
            last_log: Mutex::new(Instant::now()),
        }
    }

    pub fn log(&self, msg: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Bar => match self.bar.lock().ok().and_then(|b| b.clone()) {
                Some(b) => b.println(msg),
                None => eprintln!("{msg}"),
            },
            Mode::Log => eprintln!("osteoguard screen: {msg}"),
        }
    }

    /// A warning the user must see: printed even with `--quiet`.
    pub fn warn(&self, msg: &str) {
        match self.mode {
            Mode::Bar => match self.bar.lock().ok().and_then(|b| b.clone()) {
                Some(b) => b.println(format!("warning: {msg}")),
                None => eprintln!("warning: {msg}"),
            },
            Mode::Quiet | Mode::Log => eprintln!("osteoguard screen: warning: {msg}"),
        }
    }

    fn set_bar(&self, len: u64, template: &str) {
        if let Ok(mut s) = self.started.lock() {
            *s = Instant::now();
        }
        if let Mode::Bar = self.mode {
            let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(template) {
                b.set_style(style.progress_chars("=> "));
            }
            b.enable_steady_tick(Duration::from_millis(200));
            if let Ok(mut g) = self.bar.lock() {
                *g = Some(b);
            }
        }
    }

    fn rate(&self, n: u64) -> f64 {
        let secs = self
            .started
            .lock()
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        if secs > 0.0 {
            n as f64 / secs
        } else {
            0.0
        }
    }

    fn due_log(&self) -> bool {
        match self.last_log.lock() {
            Ok(mut l) if l.elapsed() >= LOG_EVERY => {
                *l = Instant::now();
                true
            }
            _ => false,
        }
    }

    pub fn start_pass1(&self, total_bytes: u64) {
        self.log(&format!(
            "pass 1/2: partitioning {:.1} MB by patient",
            total_bytes as f64 / 1e6
        ));
        self.set_bar(total_bytes, PASS1_TEMPLATE);
    }

    pub fn tick_pass1(&self, bytes: u64, lines: u64) {
        let rate = self.rate(lines);
        match self.mode {
            Mode::Quiet => {}
            Mode::Bar => {
                if let Some(b) = self.bar.lock().ok().and_then(|b| b.clone()) {
                    b.set_position(bytes);
                    b.set_message(format!("{lines} resources ({rate:.0}/s)"));
                }
            }
            Mode::Log => {
                if self.due_log() {
                    self.log(&format!(
                        "pass 1: {:.1} MB, {lines} resources ({rate:.0} resources/s)",
                        bytes as f64 / 1e6
                    ));
                }
            }
        }
    }

    pub fn finish_pass1(&self, lines: u64) {
        self.finish_bar();
        self.log(&format!(
            "pass 1 done: {lines} resources ({:.0} resources/s)",
            self.rate(lines)
        ));
    }

    pub fn start_pass2(&self, shards: u64) {
        self.log(&format!("pass 2/2: evaluating {shards} shards"));
        self.set_bar(shards, PASS2_TEMPLATE);
    }

    pub fn tick_pass2(&self, shards_done: u64, shards: u64, patients: u64) {
        let rate = self.rate(patients);
        match self.mode {
            Mode::Quiet => {}
            Mode::Bar => {
                if let Some(b) = self.bar.lock().ok().and_then(|b| b.clone()) {
                    b.set_position(shards_done);
                    b.set_message(format!("{patients} patients ({rate:.0}/s)"));
                }
            }
            Mode::Log => {
                if self.due_log() || shards_done == shards {
                    self.log(&format!(
                        "pass 2: {shards_done}/{shards} shards, {patients} patients ({rate:.0} patients/s)"
                    ));
                }
            }
        }
    }

    pub fn finish_bar(&self) {
        if let Some(b) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PASS1_TEMPLATE, PASS2_TEMPLATE};

    #[test]
    fn indicatif_accepts_the_bar_templates() {
        for t in [PASS1_TEMPLATE, PASS2_TEMPLATE] {
            assert!(indicatif::ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }
}

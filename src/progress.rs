//! Stage progress on stderr: an indicatif spinner on a terminal, plain lines otherwise
//! (CI logs, pipes), so that stdout carries only the report.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    n: usize,
    started: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(total: usize, quiet: bool) -> Progress {
        let fancy = std::io::stdout().is_terminal() && std::io::stderr().is_terminal() && !quiet;
        let bar = fancy.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})").unwrap(),
            );
            b.set_length(total as u64);
            b.enable_steady_tick(Duration::from_millis(100));
            b
        });
        Progress {
            bar,
            total,
            n: 0,
            started: Instant::now(),
            quiet,
        }
    }

    /// Starts the next stage.
    pub fn stage(&mut self, what: &str) {
        self.n += 1;
        match &self.bar {
            Some(b) => {
                b.set_position(self.n as u64);
                b.set_message(what.to_string());
            }
            None if !self.quiet => eprintln!(
                "[{}/{}] {what} ({:.1}s)",
                self.n,
                self.total,
                self.started.elapsed().as_secs_f64()
            ),
            None => {}
        }
    }

    /// A line within the current stage (a rerun, say), without counting a stage.
    pub fn note(&mut self, what: &str) {
        match &self.bar {
            Some(b) => b.println(format!("  {what}")),
            None if !self.quiet => eprintln!("  {what}"),
            None => {}
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

//! The one way golab runs a subprocess.
//!
//! Every child is started in a process group of its own, so that a timeout or an early
//! return kills the whole group (dlv forks the debuggee, `go build` forks the compiler):
//! no process is left behind. Output is captured on threads so that a chatty child can
//! never block on a full pipe. Not for: deciding what to run (the probes do that).

use crate::sys;
use anyhow::{Context, Result};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Captured {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    /// stdout and stderr together, for error messages.
    pub fn combined(&self) -> String {
        let mut s = self.stdout.clone();
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&self.stderr);
        s
    }
}

/// The process groups golab has started and not yet reaped, so that an interrupt
/// (Ctrl-C, SIGTERM, a closed terminal) can end them: each lives in a group of its own,
/// which the terminal's signal does not reach.
static LIVE: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every process group golab started that is still running, with their
/// descendants (the interrupt handler's work; `main` installs it).
pub fn kill_all_live() -> usize {
    let pids: Vec<u32> = live().drain(..).collect();
    for &p in &pids {
        kill_tree(p);
        kill_group(p);
    }
    pids.len()
}

/// A deadline passed: the command (or the debugger session) was killed. Callers learn
/// a timeout from this type ([`timed_out`]), never from an error's wording.
#[derive(Debug)]
pub struct TimedOut(pub String);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimedOut {}

/// Whether `e` (or any error it wraps) is a [`TimedOut`].
pub fn timed_out(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<TimedOut>().is_some())
}

/// The first executable `name` on this process's PATH (the one PATH lookup golab has).
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    ::which::which(name).ok()
}

/// A child in its own process group; dropping it kills the group.
pub struct Group {
    child: Child,
    pub label: String,
    done: bool,
}

impl Group {
    /// Starts `cmd` in a new process group. `label` names it in errors.
    pub fn spawn(mut cmd: Command, label: &str) -> Result<Group> {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {label} ({:?})", cmd.get_program()))?;
        live().push(child.id());
        Ok(Group {
            child,
            label: label.to_string(),
            done: false,
        })
    }

    #[cfg(test)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits until the child exits or `deadline` passes; on timeout the group is killed.
    pub fn wait_deadline(&mut self, deadline: Instant) -> Result<ExitStatus> {
        loop {
            if let Some(st) = self.child.try_wait()? {
                self.done = true;
                // The leader is gone; its group may not be (a debuggee it forked).
                kill_group(self.child.id());
                self.forget();
                return Ok(st);
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(TimedOut(format!(
                    "{} did not finish in time: its process group was killed",
                    self.label
                ))
                .into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the whole group, and every descendant that left it (a debugger puts the
    /// program it starts in a process group of its own), and reaps the leader.
    pub fn kill(&mut self) {
        kill_tree(self.child.id());
        kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.done = true;
        self.forget();
    }

    fn forget(&self) {
        let id = self.child.id();
        live().retain(|&p| p != id);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.done {
            self.kill();
        } else {
            kill_group(self.child.id());
            self.forget();
        }
    }
}

/// SIGKILL to `pid`'s descendants, deepest first (all found before any dies, so none
/// is re-parented out of reach).
pub fn kill_tree(pid: u32) {
    for c in sys::proc::descendants(pid) {
        sys::proc::signal(c, sys::proc::Signal::Kill);
    }
}

/// SIGKILL to every process in group `pgid` (ignores a group that is already gone).
pub fn kill_group(pgid: u32) {
    sys::proc::signal_group(pgid, sys::proc::Signal::Kill);
}

/// Runs `cmd` to completion with a timeout, capturing stdout and stderr.
pub fn run(mut cmd: Command, label: &str, timeout: Duration) -> Result<Captured> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = Group::spawn(cmd, label)?;
    let out = reader(g.child_mut().stdout.take());
    let err = reader(g.child_mut().stderr.take());
    let status = g.wait_deadline(Instant::now() + timeout);
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let status = status.with_context(|| {
        format!(
            "after {}s; it printed:\n{}{}",
            timeout.as_secs(),
            tail(&stdout),
            tail(&stderr)
        )
    })?;
    Ok(Captured {
        status,
        stdout,
        stderr,
    })
}

/// Like [`run`], and every line the command prints also goes to our stderr as it comes,
/// after `prefix` (for long commands whose progress the user should see: `vagrant up`).
pub fn run_echoed(
    mut cmd: Command,
    label: &str,
    timeout: Duration,
    prefix: &str,
) -> Result<Captured> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = Group::spawn(cmd, label)?;
    let out = line_echoer(g.child_mut().stdout.take(), prefix.to_string());
    let err = line_echoer(g.child_mut().stderr.take(), prefix.to_string());
    let status = g.wait_deadline(Instant::now() + timeout);
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let status = status.with_context(|| {
        format!(
            "after {}s; it printed:\n{}{}",
            timeout.as_secs(),
            tail(&stdout),
            tail(&stderr)
        )
    })?;
    Ok(Captured {
        status,
        stdout,
        stderr,
    })
}

fn line_echoer<R: Read + Send + 'static>(
    r: Option<R>,
    prefix: String,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut echo = Echo::new(prefix);
        if let Some(mut r) = r {
            let mut buf = [0u8; 8192];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                for &b in &buf[..n] {
                    echo.byte(b);
                }
            }
        }
        echo.finish()
    })
}

/// Lines of a command's output as they should reach a log or a terminal: ANSI escapes
/// dropped, and a progress line redrawn with `\r` (vagrant's box upload redraws
/// "Progress: N%" thousands of times) shown at most every few seconds, not each time.
struct Echo {
    prefix: String,
    segment: Vec<u8>,
    kept: String,
    last_transient: Option<std::time::Instant>,
    pending_transient: Option<String>,
}

impl Echo {
    const TRANSIENT_EVERY: Duration = Duration::from_secs(5);

    fn new(prefix: String) -> Echo {
        Echo {
            prefix,
            segment: Vec::new(),
            kept: String::new(),
            last_transient: None,
            pending_transient: None,
        }
    }

    fn byte(&mut self, b: u8) {
        match b {
            b'\n' => self.end_segment(false),
            b'\r' => self.end_segment(true),
            _ => self.segment.push(b),
        }
    }

    fn end_segment(&mut self, transient: bool) {
        let text = strip_ansi(&String::from_utf8_lossy(&std::mem::take(&mut self.segment)));
        if transient {
            if text.trim().is_empty() {
                return;
            }
            let due = self
                .last_transient
                .is_none_or(|t| t.elapsed() >= Self::TRANSIENT_EVERY);
            if due {
                self.last_transient = Some(std::time::Instant::now());
                self.emit(&text);
                self.pending_transient = None;
            } else {
                self.pending_transient = Some(text);
            }
            return;
        }
        // A line ends: the last progress state it overwrote is shown first, if unseen.
        if let Some(p) = self.pending_transient.take() {
            self.emit(&p);
        }
        self.last_transient = None;
        self.emit(&text);
    }

    fn emit(&mut self, line: &str) {
        eprintln!("{}{line}", self.prefix);
        self.kept.push_str(line);
        self.kept.push('\n');
    }

    fn finish(mut self) -> String {
        if !self.segment.is_empty() || self.pending_transient.is_some() {
            self.end_segment(false);
        }
        self.kept
    }
}

/// `s` without ANSI escape sequences (CSI `ESC [ ... letter`, `ESC ( B`, `ESC x`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        } else if matches!(chars.next(), Some('(' | ')' | '*' | '+')) {
            // A character set designation: ESC ( B.
            chars.next();
        }
    }
    out
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// The last lines of a long output, for error messages.
pub fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(30);
    let mut t = lines[start..].join("\n");
    if !t.is_empty() {
        t.push('\n');
    }
    t
}

/// The pids of live processes whose process group is `pgid`.
#[cfg(test)]
pub fn processes_in_group(pgid: u32) -> Vec<u32> {
    sys::proc::in_group(pgid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_run_still_captures_both_streams_whole() {
        let mut c = Command::new("sh");
        c.args(["-c", "printf 'one\\ntwo' ; echo err >&2; exit 3"]);
        let out = run_echoed(c, "sh", Duration::from_secs(10), "  test: ").unwrap();
        assert_eq!(out.stdout, "one\ntwo\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn a_redrawn_progress_line_is_shown_once_not_a_thousand_times() {
        // As vagrant uploads a box: ESC[K and "Progress: N%" redrawn with \r, then a line.
        let mut e = Echo::new(String::new());
        for n in 0..=100 {
            for b in format!("\u{1b}[KProgress: {n}%\r").bytes() {
                e.byte(b);
            }
        }
        for b in "\u{1b}[K==> default: Creating image\n".bytes() {
            e.byte(b);
        }
        let kept = e.finish();
        assert_eq!(
            kept, "Progress: 0%\nProgress: 100%\n==> default: Creating image\n",
            "{kept:?}"
        );
        assert_eq!(
            strip_ansi("\u{1b}[1;32mok\u{1b}[0m \u{1b}(Bdone"),
            "ok done"
        );
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        // A shell that forks a grandchild which would outlive it.
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("sleep 30 & sleep 30");
        let mut g = Group::spawn(cmd, "sleeper").unwrap();
        let pgid = g.pid();
        // The shell forks its background sleep when it is scheduled, which on a loaded
        // machine may be well after spawn returns: wait for both (10 s at most), not a
        // fixed 100 ms.
        let until = Instant::now() + Duration::from_secs(10);
        while processes_in_group(pgid).len() < 2 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            processes_in_group(pgid).len() >= 2,
            "the shell and its sleeps should be running: {:?}",
            processes_in_group(pgid)
        );
        let err = g
            .wait_deadline(Instant::now() + Duration::from_millis(200))
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("did not finish in time"),
            "{err:#}"
        );
        // SIGKILLed processes end when the kernel schedules them: gone within 10 s.
        let until = Instant::now() + Duration::from_secs(10);
        while !processes_in_group(pgid).is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(processes_in_group(pgid), Vec::<u32>::new(), "left behind");
    }

    #[test]
    fn run_reports_a_timeout_with_what_was_printed() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("echo started; sleep 30");
        // Long enough for the shell to have printed its line even on a loaded machine
        // (300 ms was a bet on the scheduler), far short of the sleep.
        let err = run(cmd, "slow", Duration::from_secs(3)).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("slow did not finish in time") && msg.contains("started"),
            "{msg}"
        );
        assert!(
            timed_out(&err),
            "the timeout is typed under its context: {err:?}"
        );
        let other = run(
            Command::new("/nonexistent/golab-test"),
            "absent",
            Duration::from_secs(5),
        );
        assert!(!timed_out(&other.unwrap_err()));
    }

    #[test]
    fn captures_output_and_status() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("echo out; echo err >&2; exit 3");
        let c = run(cmd, "sh", Duration::from_secs(10)).unwrap();
        assert_eq!(c.stdout, "out\n");
        assert_eq!(c.stderr, "err\n");
        assert_eq!(c.status.code(), Some(3));
    }
}

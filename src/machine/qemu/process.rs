//! QEMU's process: which pid is this machine's, whether it lives, stopping it (signals,
//! or ACPI through QMP), and the guard that kills the QEMU of an `up` that failed.

use super::*;
use crate::sys;
use std::io::{BufRead, BufReader, Write};

/// The pid in `qemu.pid` when that process is alive and is this machine's QEMU (its
/// command line names this folder's overlay), so a recycled pid is never killed.
pub(super) fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("qemu.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !pid_alive(pid) {
        return None;
    }
    let cmdline = sys::proc::cmdline(pid)?;
    let want = dir.join("overlay.qcow2");
    let want = want.to_string_lossy();
    cmdline.contains(want.as_ref()).then_some(pid)
}

/// Alive and not a zombie (no reaper above a daemonized QEMU in a test).
pub(super) fn pid_alive(pid: u32) -> bool {
    sys::proc::alive(pid)
}

pub(super) fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while pid_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

/// SIGTERM, then SIGKILL after `grace`; says which one ended it.
pub(super) fn stop_pid(pid: u32, grace: Duration) -> Stopped {
    // The pid was checked to be this machine's QEMU.
    sys::proc::signal(pid, sys::proc::Signal::Term);
    if wait_gone(pid, grace) {
        return Stopped::Terminated;
    }
    sys::proc::signal(pid, sys::proc::Signal::Kill);
    wait_gone(pid, Duration::from_secs(5));
    Stopped::Killed
}

/// Kills the QEMU of an `up` that failed (unless disarmed).
pub(super) struct Kill {
    pub(super) pid: u32,
    pub(super) armed: bool,
}

impl Drop for Kill {
    fn drop(&mut self) {
        if self.armed && self.pid != 0 && pid_alive(self.pid) {
            stop_pid(self.pid, Duration::from_secs(3));
        }
    }
}

/// ACPI power button through QEMU's monitor socket.
pub(super) fn qmp_powerdown(sock: &Path) -> Result<()> {
    let s = std::os::unix::net::UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line)?; // greeting
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")?;
    line.clear();
    r.read_line(&mut line)?;
    w.write_all(b"{\"execute\":\"system_powerdown\"}\n")?;
    line.clear();
    r.read_line(&mut line)?;
    Ok(())
}

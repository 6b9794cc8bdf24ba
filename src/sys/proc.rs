//! Processes: liveness, command lines, descendants and signals.

use nix::sys::signal::{kill, killpg};
use nix::unistd::Pid;

/// Whether `pid` is a live process (a zombie counts as gone: nothing reaps a daemonized
/// QEMU's corpse in a test). kill(pid, 0) answers for any process, ours or not (EPERM
/// means it exists).
pub fn alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    let exists = matches!(
        kill(Pid::from_raw(pid as i32), None),
        Ok(()) | Err(nix::errno::Errno::EPERM)
    );
    exists && !zombie(pid)
}

#[cfg(target_os = "linux")]
fn zombie(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state == 'Z')
}

#[cfg(target_os = "macos")]
fn zombie(pid: u32) -> bool {
    bsdinfo(pid).is_some_and(|i| i.pbi_status == SZOMB)
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn zombie(_pid: u32) -> bool {
    false
}

/// A process's state, parent and process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `Z`... (Linux's letters; macOS's status mapped onto them).
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
}

/// `/proc/PID/stat`'s state, ppid and pgrp (procfs parses it).
#[cfg(target_os = "linux")]
pub fn stat(pid: u32) -> Option<Stat> {
    let s = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .ok()?
        .stat()
        .ok()?;
    Some(Stat {
        state: s.state,
        ppid: u32::try_from(s.ppid).ok()?,
        pgrp: u32::try_from(s.pgrp).ok()?,
    })
}

#[cfg(target_os = "macos")]
const SZOMB: u32 = 5;

#[cfg(target_os = "macos")]
fn bsdinfo(pid: u32) -> Option<libc::proc_bsdinfo> {
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: proc_bsdinfo is plain data; proc_pidinfo fills at most `size` bytes.
    unsafe {
        let mut info: libc::proc_bsdinfo = std::mem::zeroed();
        let n = libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            &mut info as *mut _ as *mut libc::c_void,
            size,
        );
        (n == size).then_some(info)
    }
}

/// proc_pidinfo's status and parent, as [`Stat`].
#[cfg(target_os = "macos")]
pub fn stat(pid: u32) -> Option<Stat> {
    let i = bsdinfo(pid)?;
    let state = match i.pbi_status {
        1 | 2 => 'R',
        3 => 'S',
        4 => 'T',
        SZOMB => 'Z',
        _ => '?',
    };
    Some(Stat {
        state,
        ppid: i.pbi_ppid,
        pgrp: i.pbi_pgid,
    })
}

/// Every process id on the machine (procfs lists /proc).
#[cfg(target_os = "linux")]
pub fn all() -> Vec<u32> {
    procfs::process::all_processes()
        .map(|ps| {
            ps.flatten()
                .filter_map(|p| u32::try_from(p.pid()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(target_os = "macos")]
pub fn all() -> Vec<u32> {
    // SAFETY: a null buffer asks for the count; then a buffer of that many pids.
    unsafe {
        let n = libc::proc_listallpids(std::ptr::null_mut(), 0);
        if n <= 0 {
            return Vec::new();
        }
        let mut pids = vec![0 as libc::pid_t; n as usize + 64];
        let got = libc::proc_listallpids(
            pids.as_mut_ptr() as *mut libc::c_void,
            (pids.len() * std::mem::size_of::<libc::pid_t>()) as libc::c_int,
        );
        pids.truncate(got.max(0) as usize);
        pids.into_iter()
            .filter(|&p| p > 0)
            .map(|p| p as u32)
            .collect()
    }
}

/// The command line of `pid`, its words joined by spaces. Read by hand, not with
/// procfs: its `cmdline` fails on bytes that are not UTF-8 (a VM folder's path may have
/// them), and this must still find the overlay's path in it.
#[cfg(target_os = "linux")]
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// The command line of `pid` (macOS: as `ps` reads it from the kernel).
#[cfg(target_os = "macos")]
pub fn cmdline(pid: u32) -> Option<String> {
    let o = std::process::Command::new("ps")
        .args(["-ww", "-o", "args=", "-p", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
}

/// `pid`'s descendants, deepest first (all read before any is killed, so none is
/// re-parented out of reach).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = std::collections::HashMap::new();
    for p in all() {
        if let Some(s) = stat(p) {
            children.entry(s.ppid).or_default().push(p);
        }
    }
    let mut order = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            order.push(c);
            stack.push(c);
        }
    }
    order.reverse();
    order
}

/// The live (not zombie) processes whose process group is `pgid`.
pub fn in_group(pgid: u32) -> Vec<u32> {
    all()
        .into_iter()
        .filter(|&p| stat(p).is_some_and(|s| s.state != 'Z' && s.pgrp == pgid))
        .collect()
}

/// The signals golab sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

impl Signal {
    fn nix(self) -> nix::sys::signal::Signal {
        match self {
            Signal::Term => nix::sys::signal::Signal::SIGTERM,
            Signal::Kill => nix::sys::signal::Signal::SIGKILL,
        }
    }
}

/// Sends `sig` to `pid` (a process that is gone is not an error).
pub fn signal(pid: u32, sig: Signal) {
    if pid == 0 || pid > i32::MAX as u32 {
        return;
    }
    let _ = kill(Pid::from_raw(pid as i32), sig.nix());
}

/// Sends `sig` to every process in group `pgid` (a group that is gone is not an error).
pub fn signal_group(pgid: u32, sig: Signal) {
    if pgid <= 1 || pgid > i32::MAX as u32 {
        return;
    }
    // A stale pgid yields ESRCH, which we ignore.
    let _ = killpg(Pid::from_raw(pgid as i32), sig.nix());
}

/// Restores SIGPIPE's default action (end quietly when the reader of stdout goes), as
/// other command-line tools do; Rust starts with it ignored.
pub fn default_sigpipe() {
    // SAFETY: restoring a default disposition, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The child started from `c` gets SIGKILL when the thread that started it ends, even
/// by a SIGKILL of golab (Linux's parent-death signal); elsewhere nothing changes.
pub fn die_with_parent(c: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = c;
}

/// The CPU time the calling thread has used so far (CLOCK_THREAD_CPUTIME_ID, on Linux
/// and macOS alike): the work a test's step did, which the waiting of a loaded machine
/// does not inflate as it does wall-clock time.
#[cfg(test)]
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the one it is given.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// open(2) flags: do not follow a final symbolic link, do not block on a FIFO.
pub const OPEN_NOFOLLOW_NONBLOCK: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_alive_then_gone_and_its_command_line_and_parent_are_read() {
        let mut c = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = c.id();
        assert!(alive(pid));
        // Between fork and exec the child still shows the test's command line.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !cmdline(pid).unwrap().contains("sleep 30") {
            assert!(std::time::Instant::now() < deadline, "{:?}", cmdline(pid));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(stat(pid).unwrap().ppid, std::process::id());
        assert!(descendants(std::process::id()).contains(&pid));
        signal(pid, Signal::Kill);
        // Not reaped yet: a zombie, which counts as gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!alive(pid));
        c.wait().unwrap();
        assert!(!alive(pid) && stat(pid).is_none());
    }

    #[test]
    fn pid_1_is_alive_though_not_ours_and_nonsense_pids_are_not() {
        assert!(alive(1));
        assert!(!alive(0) && !alive(u32::MAX));
    }
}

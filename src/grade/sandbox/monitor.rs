//! The processes of a sandbox's uid, read from /proc: their use, the sandbox's own
//! children, and the killer (`kill_uid`) and reaper that end them.

use super::{Limits, Verdict, cgroup};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Processes of a uid, read from /proc.

/// A run's use of its cgroup: the difference of two counter readings.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Usage {
    pub(super) cpu_ns: u64,
    pub(super) memory: u64,
    pub(super) tasks: u64,
    oom_kills: u64,
    pids_refused: u64,
}

impl Usage {
    pub(super) fn since(a: &cgroup::Counters, b: &cgroup::Counters) -> Usage {
        Usage {
            cpu_ns: b.cpu_ns.saturating_sub(a.cpu_ns),
            memory: b.memory_bytes,
            tasks: b.tasks,
            oom_kills: b.oom_kills.saturating_sub(a.oom_kills),
            pids_refused: b.pids_refused.saturating_sub(a.pids_refused),
        }
    }

    /// What the kernel's own counting shows: an OOM kill, a refused fork.
    pub(super) fn kernel_verdict(&self, l: &Limits) -> Option<(Verdict, String)> {
        if self.oom_kills > 0 {
            Some((
                Verdict::MemoryLimit,
                format!(
                    "the kernel's OOM killer ended {} process(es) of the run: its memory (anonymous, shared and tmpfs together) passed {} bytes",
                    self.oom_kills, l.memory_bytes
                ),
            ))
        } else if self.pids_refused > 0 {
            Some((
                Verdict::ProcessLimit,
                format!(
                    "the kernel refused {} fork(s) or thread(s): the run reached its {} tasks",
                    self.pids_refused, l.processes
                ),
            ))
        } else {
            None
        }
    }
}

/// One process, from /proc/PID/status (procfs parses it).
struct Proc {
    pid: u32,
    ppid: u32,
    uid: u32,
    zombie: bool,
}

fn processes() -> Vec<Proc> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.flatten()
        .filter_map(|p| {
            let st = p.status().ok()?;
            Some(Proc {
                pid: u32::try_from(p.pid()).ok()?,
                ppid: u32::try_from(st.ppid).unwrap_or(0),
                uid: st.ruid,
                zombie: st.state.starts_with('Z'),
            })
        })
        .collect()
}

/// The sandbox processes this process started itself and waits for (their leaders).
pub(super) fn own_children() -> &'static Mutex<HashSet<u32>> {
    static OWN: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();
    OWN.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Reaps the zombies of `uid` that were reparented to this process: golab is process 1
/// of its pid namespace (`sys::reaper`), so a sandbox's inner bwrap whose parent was
/// killed first ends up here, and unreaped it counts against the slot's `pids.max`
/// (after a hundred submissions every build was `process-limit`). Never one of its own
/// children, which their callers wait for.
pub fn reap_orphans(uid: u32) {
    let me = std::process::id();
    let own = own_children().lock().unwrap();
    for p in processes() {
        if p.zombie && p.uid == uid && p.ppid == me && !own.contains(&p.pid) {
            // SAFETY: waitpid on a zombie child of ours that nobody else waits for.
            unsafe {
                libc::waitpid(p.pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG);
            }
        }
    }
}

/// The pids of the live (non-zombie) processes whose real uid is `uid`.
pub fn processes_of_uid(uid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.uid == uid && !p.zombie)
        .map(|p| p.pid)
        .collect()
}

/// SIGKILL to every process of `uid` at once: a child process takes that uid and calls
/// kill(-1), which the kernel applies to all of them under one lock, so a fork bomb
/// cannot outrun it. Refuses uids below 1000.
pub fn kill_uid(uid: u32) {
    if uid < 1000 {
        return;
    }
    // SAFETY: the child makes only async-signal-safe raw system calls, then _exits.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let u = uid as libc::c_long;
            if libc::syscall(
                libc::SYS_setgroups,
                0 as libc::c_long,
                std::ptr::null::<libc::gid_t>(),
            ) == 0
                && libc::syscall(libc::SYS_setresgid, u, u, u) == 0
                && libc::syscall(libc::SYS_setresuid, u, u, u) == 0
                && libc::syscall(libc::SYS_getuid) == u
                && libc::syscall(libc::SYS_geteuid) == u
            {
                libc::kill(-1, libc::SIGKILL);
                libc::_exit(0);
            }
            libc::_exit(1);
        } else if pid > 0 {
            let mut st = 0;
            libc::waitpid(pid, &mut st, 0);
        }
    }
}

/// Kills the uid's processes until none is left or `within` passes; returns survivors.
pub(super) fn sweep_uid(uid: u32, within: Duration) -> Vec<u32> {
    let end = Instant::now() + within;
    loop {
        let left = processes_of_uid(uid);
        if left.is_empty() || Instant::now() >= end {
            return left;
        }
        kill_uid(uid);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether another golab (a second `golab grade` on this machine) runs processes as
/// `uid`: a process of that uid with a `golab` ancestor that is not this process. A
/// leftover with no such ancestor (an orphan of a grader that died) is not in use: the
/// next run kills it.
pub fn uid_in_use(uid: u32) -> Option<String> {
    let me = std::process::id();
    for p in processes_of_uid(uid) {
        let mut a = p;
        for _ in 0..64 {
            let Some(st) = crate::sys::proc::stat(a) else {
                break;
            };
            a = st.ppid;
            if a <= 1 || a == me {
                break;
            }
            let comm = procfs::process::Process::new(a as i32)
                .and_then(|p| p.stat())
                .map(|s| s.comm)
                .unwrap_or_default();
            // `golab`, or a copy named after it (`golab-0.3`).
            if comm.trim().starts_with("golab") {
                return Some(format!(
                    "uid {uid} is in use by another golab (pid {a}: {}; its process {p} runs as that uid)",
                    crate::sys::proc::cmdline(a).unwrap_or_default()
                ));
            }
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
pub fn uid_in_use(_uid: u32) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another golab's process of a uid makes it in use; the same process under no
    /// golab (a leftover) does not. Real processes: a shell copied as `golab` starts
    /// `sleep` as the uid with setpriv (util-linux).
    #[test]
    fn a_uid_is_in_use_only_under_another_golab() {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "runs as root, as scripts/test.sh does"
        );
        let uid = 63990;
        let d = tempfile::tempdir().unwrap();
        let shell = d.path().join("golab");
        std::fs::copy("/bin/sh", &shell).unwrap();
        let start = |parent: &std::path::Path| {
            std::process::Command::new(parent)
                .arg("-c")
                .arg(format!(
                    "setpriv --reuid={uid} --regid={uid} --clear-groups sleep 30 & wait"
                ))
                .spawn()
                .unwrap()
        };
        let wait_for_uid = || {
            for _ in 0..200 {
                if !processes_of_uid(uid).is_empty() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            panic!("no process of uid {uid} started");
        };
        let mut other = start(&shell);
        wait_for_uid();
        let why = uid_in_use(uid);
        kill_uid(uid);
        let _ = other.kill();
        let _ = other.wait();
        let why = why.expect("in use by the shell named golab");
        assert!(
            why.contains(&format!("uid {uid} is in use by another golab")),
            "{why}"
        );
        let mut plain = start(std::path::Path::new("/bin/sh"));
        wait_for_uid();
        let none = uid_in_use(uid);
        kill_uid(uid);
        let _ = plain.kill();
        let _ = plain.wait();
        assert_eq!(none, None);
    }
}

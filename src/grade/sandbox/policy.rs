//! What a sandboxed run may use and how it ended: the slots' uids, `Limits`, the
//! `Verdict`s and `Finished`, and the rlimits a `Limits` becomes (`RlimitPlan`).

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Duration;

/// The uid (and gid) of job slot 0; slot N runs as `FIRST_UID + N`.
pub const FIRST_UID: u32 = 61000;

/// The uid of job slot 0 for this process: `GOLAB_SANDBOX_UID` (so that two graders on
/// one machine use separate uids: a run starts by killing every process of its uid),
/// else `FIRST_UID`. Below 1000 is refused.
pub fn first_uid() -> u32 {
    static U: OnceLock<u32> = OnceLock::new();
    *U.get_or_init(|| {
        std::env::var("GOLAB_SANDBOX_UID")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|u| *u >= 1000)
            .unwrap_or(FIRST_UID)
    })
}

/// What one sandboxed run may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock time, from the start of the sandbox.
    pub wall: Duration,
    /// CPU seconds of all the run's processes together (polled; RLIMIT_CPU one second
    /// above it is the per-process backstop).
    pub cpu_secs: u64,
    /// Resident anonymous memory of all the run's processes together (polled). Each
    /// process also has RLIMIT_DATA (writable private mappings: the Go heap, dlv's) at
    /// 1.25 times this, a backstop for memory allocated but not touched.
    pub memory_bytes: u64,
    /// Tasks (processes and threads) of the slot's uid, RLIMIT_NPROC. The sandbox itself
    /// uses three or four of them (strace, bwrap and its pid 1).
    pub processes: u64,
    /// stdout and stderr together; past it the tree is killed and each is cut there.
    pub output_bytes: u64,
    /// RLIMIT_FSIZE: the largest file a process may write.
    pub file_bytes: u64,
    /// Every writable place of the run together (its /tmp; a build's output and cache):
    /// the size of the tmpfs that holds them (`quota`).
    #[serde(default = "default_disk_bytes")]
    pub disk_bytes: u64,
}

fn default_disk_bytes() -> u64 {
    128 << 20
}

impl Default for Limits {
    /// For one lab run or build: `go build` of a lab program with a cold cache needs
    /// about 200 MiB of data per compiler process and dlv about 100 MiB.
    fn default() -> Limits {
        Limits {
            wall: Duration::from_secs(120),
            cpu_secs: 60,
            memory_bytes: 2 << 30,
            processes: 256,
            output_bytes: 4 << 20,
            file_bytes: 64 << 20,
            disk_bytes: default_disk_bytes(),
        }
    }
}

/// How a sandboxed run ended, from evidence (see the module doc for which needs strace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Exited with status 0.
    Ok,
    /// Exited with this non-zero status.
    Failed(i32),
    /// Ran past the wall-clock limit (killed).
    Timeout,
    /// Used more CPU than allowed (killed, or SIGXCPU seen).
    CpuLimit,
    /// An allocation was refused (mmap ENOMEM), or the resident memory passed the limit.
    MemoryLimit,
    /// A fork or thread creation was refused (EAGAIN), or the task count reached the limit.
    ProcessLimit,
    /// Printed more than allowed (killed), or a file write passed RLIMIT_FSIZE (SIGXFSZ).
    OutputLimit,
    /// Tried to connect or send to an address other than loopback.
    NetworkDenied,
    /// Tried to open or execute a path under a hidden folder.
    EscapeDenied,
    /// Killed by this signal (not by golab).
    Signaled(i32),
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Failed(_) => "failed",
            Verdict::Timeout => "timeout",
            Verdict::CpuLimit => "cpu-limit",
            Verdict::MemoryLimit => "memory-limit",
            Verdict::ProcessLimit => "process-limit",
            Verdict::OutputLimit => "output-limit",
            Verdict::NetworkDenied => "network-denied",
            Verdict::EscapeDenied => "escape-denied",
            Verdict::Signaled(_) => "signaled",
        }
    }
}

/// What one sandboxed run printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit status the sandbox ended with (the program's, or 128 + N for a signal);
    /// None when golab killed it at a limit.
    pub status: Option<i32>,
    /// At most `output_bytes` of each (lossy UTF-8).
    pub stdout: String,
    pub stderr: String,
    pub verdict: Verdict,
    /// Why the verdict: the measurement or the first strace lines that showed it.
    pub evidence: Vec<String>,
    /// From spawning the sandbox to its end.
    pub wall: Duration,
    /// From spawning the sandbox to the moment the program was exec'd (its start cost).
    pub startup: Option<Duration>,
    /// The highest polled totals: CPU time, resident anonymous memory, tasks.
    pub cpu: Duration,
    pub peak_memory_bytes: u64,
    pub peak_tasks: u64,
    /// All bytes the program wrote to stdout and stderr (including what was cut).
    pub output_bytes: u64,
}

/// The rlimits of a run, computed before fork so the child only makes system calls.
#[derive(Clone, Copy)]
pub struct RlimitPlan {
    set: [(libc::__rlimit_resource_t, u64, u64); 5],
}

impl RlimitPlan {
    pub fn new(l: &Limits) -> RlimitPlan {
        let data = l.memory_bytes.saturating_add(l.memory_bytes / 4);
        RlimitPlan {
            set: [
                // The polled total is the limit; the kernel's per-process one is a backstop.
                (libc::RLIMIT_CPU, l.cpu_secs + 1, l.cpu_secs + 2),
                (libc::RLIMIT_DATA, data, data),
                // Twice the cgroup's pids.max: the cgroup refuses first, and counts it.
                (libc::RLIMIT_NPROC, l.processes * 2, l.processes * 2),
                (libc::RLIMIT_FSIZE, l.file_bytes, l.file_bytes),
                (libc::RLIMIT_CORE, 0, 0),
            ],
        }
    }

    /// Lowers each limit (never raises a hard limit). Async-signal-safe.
    pub fn apply(&self) -> std::io::Result<()> {
        for &(res, soft, hard) in &self.set {
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: plain system calls on a local struct.
            unsafe {
                if libc::getrlimit(res, &mut cur) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let hard = hard.min(cur.rlim_max);
                let new = libc::rlimit {
                    rlim_cur: soft.min(hard),
                    rlim_max: hard,
                };
                if libc::setrlimit(res, &new) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}

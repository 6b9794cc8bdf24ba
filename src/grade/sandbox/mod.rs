//! The sandbox that runs a student's program (and `go build`, `dlv`, `gdb` on it).
//! Linux only. The folder is split by job: this file (policy, bwrap argv, the run loop,
//! strace parsing), `launch` (from root to the slot uid: cgroup join, setuid, rlimits),
//! `cgroup` (the kernel's counters and limits), `jail` (the observer's side: dlv and gdb
//! of a `golab run` that itself stays outside).
//!
//! One run is: `[strace -f … -o FIFO] bwrap … -- /bin/sh -c '<ready>; exec "$@"' argv…`,
//! started by `exec::Group` from root, which joins the slot's cgroup and then becomes an
//! unprivileged uid of its own (61000 + job slot) with rlimits set (`launch`). bubblewrap
//! then works unprivileged through a user namespace: a new pid namespace
//! (`--unshare-pid`: when the program's pid 1 dies, the kernel kills the rest; a tracer
//! outside it reads as TracerPid 0), no network but a loopback (`--unshare-net`, or the
//! observer's private one with `share_network`), a size-capped /tmp (private, or a folder
//! on the grader's `quota` tmpfs, measured after the run), the system
//! folders and the caller's toolchains read-only, the hidden folders (the batch holding
//! the other submissions) covered by an empty read-only tmpfs, and the `work` folder
//! bound back at its own path: read-write for a build's output, read-only for a program
//! run (`read_only_work`: nothing of the host is writable, HOME is /tmp).
//!
//! Limits and how each verdict is known (never guessed from what the program printed):
//! - Counted by the kernel over the slot's cgroup (`cgroup`): memory of every kind
//!   (anonymous, shared, tmpfs; the OOM killer's count is `MemoryLimit`), tasks
//!   (`pids.max`; a refused fork is `ProcessLimit`) and CPU time (polled every 20 ms:
//!   `CpuLimit`). Measured here: the wall clock (`Timeout`) and stdout and stderr counted
//!   while read (`OutputLimit`). golab kills the whole tree (`kill_uid`: kill(-1) as the
//!   slot's uid) when one passes its limit.
//! - Enforced by the kernel per process, as backstops: RLIMIT_NPROC (per uid), RLIMIT_DATA
//!   (1.25 x memory), RLIMIT_FSIZE, RLIMIT_CPU (one second past the polled limit) and
//!   RLIMIT_CORE = 0. With `with_syscall_evidence(true)` (the default) strace traces the
//!   run from outside the sandbox into a FIFO the program cannot see, and its lines give
//!   `ProcessLimit` (clone/fork = EAGAIN), `MemoryLimit` (mmap/mremap = ENOMEM),
//!   `NetworkDenied` (connect/sendto/sendmsg to an address outside 127.0.0.0/8, ::1),
//!   `EscapeDenied` (open/openat/execve of a path under a hidden folder), `CpuLimit`
//!   (SIGXCPU), `OutputLimit` (SIGXFSZ) and `Signaled` (the program killed by a signal).
//!   Without the trace such runs end as the program's own `Failed(code)` (128 + N after a
//!   signal, as bwrap reports it).
//! - A traced program cannot be ptraced again (dlv: "fork/exec: operation not
//!   permitted"): run dlv and gdb with `with_syscall_evidence(false)`.
//!
//! One run at a time per slot: a run starts and ends by killing every process of its uid.
//! Not for: deciding what to run, or grading what it printed (grade/ does that).

pub mod cgroup;
pub mod jail;
pub mod launch;
pub mod notify;
pub mod quota;

use crate::exec::Group;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

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

/// How often the tree's CPU, memory and task count are read from /proc.
const POLL: Duration = Duration::from_millis(20);

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

/// A sandbox for one job slot: what the program sees, and as which uid it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sandbox {
    work: PathBuf,
    cwd: Option<PathBuf>,
    read_only: Vec<PathBuf>,
    read_write: Vec<PathBuf>,
    hidden: Vec<PathBuf>,
    uid: u32,
    syscall_evidence: bool,
    /// `work` is bound read-write (a build's output folder) or read-only (a program run:
    /// nothing of the host is writable then, only the size-capped /tmp).
    writable_work: bool,
    /// Keep the caller's network namespace (the observer's private loopback, where dlv
    /// listens) instead of a new one.
    share_net: bool,
    /// The program's /tmp: this folder (on the grader's size-capped tmpfs, `quota`, so
    /// that what was written is measured after the run), else a private tmpfs of
    /// `disk_bytes`.
    #[serde(default)]
    tmp: Option<PathBuf>,
}

impl Sandbox {
    /// A sandbox whose only writable folder is `work` (bound read-write at its own path,
    /// the working directory), running as uid `FIRST_UID + slot`. Give `work` to that uid
    /// with `prepare()` first.
    pub fn new(work: impl Into<PathBuf>, slot: u32) -> Sandbox {
        Sandbox {
            work: work.into(),
            cwd: None,
            read_only: Vec::new(),
            read_write: Vec::new(),
            hidden: Vec::new(),
            uid: first_uid() + slot,
            syscall_evidence: true,
            writable_work: true,
            share_net: false,
            tmp: None,
        }
    }

    /// /tmp is `path` (a folder of the uid's on a `quota::Quota`), bound read-write.
    pub fn tmp_at(mut self, path: impl Into<PathBuf>) -> Sandbox {
        self.tmp = Some(path.into());
        self
    }

    /// `work` read-only: the program writes nowhere on the host (HOME is /tmp).
    pub fn read_only_work(mut self) -> Sandbox {
        self.writable_work = false;
        self
    }

    /// Share the network namespace of the process that starts the sandbox.
    pub fn share_network(mut self) -> Sandbox {
        self.share_net = true;
        self
    }

    /// Also visible, read-only, at the same path: a GOROOT, the dlv binary, golab itself.
    /// /usr and /etc always are. The path and its parents must be reachable by the uid.
    pub fn read_only(mut self, path: impl Into<PathBuf>) -> Sandbox {
        self.read_only.push(path.into());
        self
    }

    /// Also writable, at the same path: a per-slot GOCACHE shared between runs. Must be
    /// owned by the uid (`give`).
    pub fn read_write(mut self, path: impl Into<PathBuf>) -> Sandbox {
        self.read_write.push(path.into());
        self
    }

    /// Covered by an empty read-only tmpfs: the batch folder holding the other
    /// submissions. `work` and the other bound paths stay visible inside it.
    pub fn hide(mut self, path: impl Into<PathBuf>) -> Sandbox {
        self.hidden.push(path.into());
        self
    }

    /// The working directory of the program (default: `work`).
    pub fn cwd(mut self, path: impl Into<PathBuf>) -> Sandbox {
        self.cwd = Some(path.into());
        self
    }

    /// Trace the run with strace for the verdicts that need syscall evidence (default
    /// on). Turn it off for dlv and gdb, which need ptrace themselves.
    pub fn with_syscall_evidence(mut self, on: bool) -> Sandbox {
        self.syscall_evidence = on;
        self
    }

    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn work(&self) -> &Path {
        &self.work
    }

    /// Creates `work` if needed and gives it (recursively) to the sandbox's uid.
    pub fn prepare(&self) -> Result<()> {
        std::fs::create_dir_all(&self.work)
            .with_context(|| format!("cannot create {}", self.work.display()))?;
        self.give(&self.work)
    }

    /// Gives `path` and everything under it to the sandbox's uid (symbolic links are not
    /// followed; a file with other hard links is left alone, read-only to the sandbox).
    pub fn give(&self, path: &Path) -> Result<()> {
        give_tree(path, self.uid)
    }

    /// The environment every run starts from (the caller's `env` overrides it): a plain
    /// PATH, HOME and the Go caches in `work`, no module proxy, no go.work lookup.
    pub fn default_env(&self) -> Vec<(String, String)> {
        let w = if self.writable_work {
            self.work.display().to_string()
        } else {
            "/tmp".to_string()
        };
        vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), w.clone()),
            ("TMPDIR".into(), "/tmp".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("USER".into(), "golab".into()),
            ("GOCACHE".into(), format!("{w}/.cache/go-build")),
            ("GOPATH".into(), format!("{w}/.cache/go")),
            ("GOTOOLCHAIN".into(), "local".into()),
            ("GOPROXY".into(), "off".into()),
            ("GOWORK".into(), "off".into()),
            ("GOTELEMETRY".into(), "off".into()),
        ]
    }

    /// Runs `argv` in the sandbox with `env` (over `default_env`) under `limits`.
    /// Err only when the sandbox itself could not start (bwrap missing, a path not
    /// reachable by the uid): that is golab's failure, never the student's.
    pub fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        limits: &Limits,
    ) -> Result<Finished> {
        if argv.is_empty() {
            bail!("nothing to run in the sandbox");
        }
        let bwrap = find_tool("bwrap")
            .context("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")?;
        let strace = if self.syscall_evidence {
            Some(find_tool("strace").context("strace is not installed: apt-get install strace")?)
        } else {
            None
        };
        let layout = self.layout()?;
        let uid = self.uid;

        // Nothing of a previous run of this slot may count against this one.
        kill_uid(uid);
        let cg = cgroup::Cgroup::for_uid(uid)?;
        cg.set(limits)?;
        cg.reset_peak();
        let before = cg.counters();
        let cgroup_fds = cg.procs_files()?;

        // The ready pipe: the wrapper shell writes one byte to fd 3 just before it execs
        // the program, so a bwrap that failed to set up is told apart from the program.
        let (ready_r, ready_w) = pipe()?;

        // strace writes into a FIFO in a folder of the uid's in the host's /tmp, which the
        // sandbox (private /tmp) cannot see.
        let fifo = match &strace {
            Some(_) => Some(TraceFifo::new(uid)?),
            None => None,
        };

        let mut args: Vec<OsString> = Vec::new();
        let program: PathBuf;
        if let (Some(strace), Some(fifo)) = (&strace, &fifo) {
            program = strace.clone();
            for a in [
                "-f",
                "-q",
                "--seccomp-bpf",
                "-y",
                "-s",
                "4096",
                "-e",
                "trace=open,openat,openat2,creat,execve,execveat,connect,sendto,sendmsg,sendmmsg,clone,clone3,fork,vfork,mmap,mremap",
                "-e",
                // Not a narrower set: strace prints "killed by SIG" only for the signals
                // it shows. Left out: the ones whose default is to be ignored (Go's
                // preemption sends SIGURG every 10 ms).
                "signal=!SIGURG,SIGCHLD,SIGWINCH,SIGCONT",
                "-o",
            ] {
                args.push(a.into());
            }
            args.push(fifo.path.clone().into());
            args.push("--".into());
            args.push(bwrap.clone().into());
        } else {
            program = bwrap.clone();
        }
        args.extend(self.bwrap_args(&layout, limits));
        args.push("--".into());
        args.push("/bin/sh".into());
        args.push("-c".into());
        args.push(r#"printf . >&3; exec 3>&-; exec "$@""#.into());
        args.push(READY_MARKER.into());
        args.extend(argv.iter().map(OsString::from));

        let mut envs: Vec<(String, String)> = self.default_env();
        for (k, v) in env {
            envs.retain(|(k2, _)| k2 != k);
            envs.push((k.clone(), v.clone()));
        }

        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .env_clear()
            .envs(envs.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.current_dir("/");
        // Joins the slot's cgroup as root, then becomes the slot's uid (launch.rs).
        let l = launch::Launch {
            notify: None,
            uid,
            cgroup_fds: cgroup::raw(&cgroup_fds),
            rlimits: RlimitPlan::new(limits),
            ready_fd: Some(ready_w.as_raw_fd()),
        };
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(move || l.apply());
        }

        let trace = Arc::new(Mutex::new(Trace::new(
            self.visible_roots(&layout),
            layout.hidden.clone(),
            layout.cwd.clone(),
        )));
        let process_evidence = Arc::new(AtomicBool::new(false));
        let trace_reader = fifo
            .as_ref()
            .map(|f| f.reader(trace.clone(), process_evidence.clone()))
            .transpose()?;

        let start = Instant::now();
        let mut group = {
            let mut own = own_children().lock().unwrap();
            let mut g = Group::spawn(cmd, "sandbox")?;
            own.insert(g.child_mut().id());
            g
        };
        drop(ready_w);
        let ready_at: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
        let ready_thread = {
            let ready_at = ready_at.clone();
            std::thread::spawn(move || {
                let mut f = std::fs::File::from(ready_r);
                let mut b = [0u8; 1];
                if let Ok(1) = f.read(&mut b) {
                    let _ = ready_at.set(Instant::now());
                }
            })
        };
        let total_out = Arc::new(AtomicU64::new(0));
        let over = Arc::new(AtomicBool::new(false));
        let out_t = capped_reader(
            group.child_mut().stdout.take(),
            limits.output_bytes,
            total_out.clone(),
            over.clone(),
        );
        let err_t = capped_reader(
            group.child_mut().stderr.take(),
            limits.output_bytes,
            total_out.clone(),
            over.clone(),
        );

        let deadline = start + limits.wall;
        let cpu_limit_ns = limits.cpu_secs.saturating_mul(1_000_000_000);
        let mut peak = Usage::default();
        let mut killed: Option<(Verdict, String)> = None;
        let mut status = None;
        loop {
            match group.child_mut().try_wait() {
                Ok(Some(st)) => {
                    status = Some(st);
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    kill_uid(uid);
                    return Err(e).context("cannot wait for the sandbox");
                }
            }
            let u = Usage::since(&before, &cg.counters());
            peak.cpu_ns = peak.cpu_ns.max(u.cpu_ns);
            peak.memory = peak.memory.max(u.memory);
            peak.tasks = peak.tasks.max(u.tasks);
            let now = Instant::now();
            killed = if over.load(Ordering::SeqCst) {
                Some((
                    Verdict::OutputLimit,
                    format!("stdout and stderr passed {} bytes", limits.output_bytes),
                ))
            } else if process_evidence.load(Ordering::SeqCst) {
                Some((
                    Verdict::ProcessLimit,
                    "a fork or thread creation failed with EAGAIN (see the trace lines)".into(),
                ))
            } else if let Some(k) = u.kernel_verdict(limits) {
                Some(k)
            } else if u.cpu_ns >= cpu_limit_ns {
                Some((
                    Verdict::CpuLimit,
                    format!(
                        "the run's processes used {:.2}s of CPU (limit {}s)",
                        u.cpu_ns as f64 / 1e9,
                        limits.cpu_secs
                    ),
                ))
            } else if u.tasks >= limits.processes {
                Some((
                    Verdict::ProcessLimit,
                    format!("the run had {} tasks (limit {})", u.tasks, limits.processes),
                ))
            } else if now >= deadline {
                Some((
                    Verdict::Timeout,
                    format!(
                        "still running after {:.1}s (limit {:.1}s)",
                        (now - start).as_secs_f64(),
                        limits.wall.as_secs_f64()
                    ),
                ))
            } else {
                None
            };
            if killed.is_some() {
                break;
            }
            std::thread::sleep(
                POLL.min(deadline.saturating_duration_since(now))
                    .max(Duration::from_millis(1)),
            );
        }
        // Every process of the uid, then the group's leader (reaped), then make sure.
        kill_uid(uid);
        group.kill();
        let wall = start.elapsed();
        // What the kernel refused or killed at the very end (the OOM killer's victim may
        // have ended the run before the next poll).
        let last = Usage::since(&before, &cg.counters());
        if killed.is_none() {
            killed = last.kernel_verdict(limits);
        }
        peak.memory = peak.memory.max(cg.peak_memory());
        let leftovers = sweep_uid(uid, Duration::from_secs(5));
        own_children()
            .lock()
            .unwrap()
            .remove(&group.child_mut().id());
        reap_orphans(uid);
        let stdout = out_t.join().unwrap_or_default();
        let stderr = err_t.join().unwrap_or_default();
        let _ = ready_thread.join();
        if let Some(f) = &fifo {
            f.close_writer();
        }
        if let Some(t) = trace_reader {
            let _ = t.join();
        }
        if !leftovers.is_empty() {
            bail!("processes of sandbox uid {uid} survived the kill: {leftovers:?}");
        }
        let startup = ready_at.get().map(|t| t.duration_since(start));
        let stdout_s = String::from_utf8_lossy(&stdout).into_owned();
        let stderr_s = String::from_utf8_lossy(&stderr).into_owned();
        if startup.is_none() && killed.is_none() {
            bail!(
                "the sandbox did not start (bwrap {}): {}",
                status.map(|s| s.to_string()).unwrap_or_default(),
                stderr_s.trim()
            );
        }
        let code = status.map(|s| {
            s.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)
            })
        });

        let was_killed = killed.is_some();
        let mut evidence = Vec::new();
        let verdict = if let Some((v, why)) = killed {
            evidence.push(why);
            if v == Verdict::ProcessLimit {
                evidence.extend(trace.lock().unwrap().evidence_for(Verdict::ProcessLimit));
            }
            v
        } else {
            let t = trace.lock().unwrap();
            match t.verdict() {
                Some(v) => {
                    evidence.extend(t.evidence_for(v));
                    v
                }
                None => match code {
                    Some(0) => Verdict::Ok,
                    Some(c) => Verdict::Failed(c),
                    None => Verdict::Failed(-1),
                },
            }
        };
        Ok(Finished {
            status: if was_killed { None } else { code },
            stdout: stdout_s,
            stderr: stderr_s,
            verdict,
            evidence,
            wall,
            startup,
            cpu: Duration::from_nanos(peak.cpu_ns.max(last.cpu_ns)),
            peak_memory_bytes: peak.memory,
            peak_tasks: peak.tasks,
            output_bytes: total_out.load(Ordering::SeqCst),
        })
    }

    /// Canonical paths, checked to be reachable by the uid.
    pub(super) fn layout(&self) -> Result<Layout> {
        let canon = |p: &Path, what: &str| -> Result<PathBuf> {
            std::fs::canonicalize(p)
                .with_context(|| format!("sandbox {what} {} does not exist", p.display()))
        };
        let work = canon(&self.work, "work folder")?;
        let md = std::fs::metadata(&work)?;
        if !md.is_dir() {
            bail!("sandbox work folder {} is not a folder", work.display());
        }
        if self.writable_work && md.uid() != self.uid {
            bail!(
                "sandbox work folder {} belongs to uid {}, not to the sandbox's uid {} (call Sandbox::prepare)",
                work.display(),
                md.uid(),
                self.uid
            );
        }
        let cwd = match &self.cwd {
            Some(c) => canon(c, "working directory")?,
            None => work.clone(),
        };
        let mut read_only = Vec::new();
        for p in &self.read_only {
            read_only.push(canon(p, "read-only path")?);
        }
        let mut read_write = Vec::new();
        for p in &self.read_write {
            read_write.push(canon(p, "read-write path")?);
        }
        let mut hidden = Vec::new();
        for p in &self.hidden {
            // A hidden folder that does not exist is hidden already; keep its lexical path
            // for the evidence.
            hidden.push(std::fs::canonicalize(p).unwrap_or_else(|_| normalize(p)));
        }
        for p in read_only
            .iter()
            .chain(&read_write)
            .chain(std::iter::once(&work))
        {
            reachable_by(p, self.uid)?;
        }
        let tmp = match &self.tmp {
            Some(t) => {
                let t = canon(t, "/tmp folder")?;
                reachable_by(&t, self.uid)?;
                Some(t)
            }
            None => None,
        };
        Ok(Layout {
            work,
            tmp,
            cwd,
            read_only,
            read_write,
            hidden,
        })
    }

    fn visible_roots(&self, l: &Layout) -> Vec<PathBuf> {
        let mut v = vec![l.work.clone()];
        v.extend(l.read_only.iter().cloned());
        v.extend(l.read_write.iter().cloned());
        v
    }

    pub(super) fn bwrap_args(&self, l: &Layout, limits: &Limits) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        macro_rules! push {
            ($($x:expr),* $(,)?) => {{ $( a.push(OsString::from($x)); )* }};
        }
        push!("--unshare-user", "--unshare-pid");
        if !self.share_net {
            push!("--unshare-net");
        }
        push!(
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "golab-sandbox",
        );
        for d in ["/usr", "/etc"] {
            push!("--ro-bind", d, d);
        }
        for d in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(d) {
                Ok(target) => push!("--symlink", &target, d),
                Err(_) if Path::new(d).is_dir() => push!("--ro-bind", d, d),
                Err(_) => {}
            }
        }
        push!("--proc", "/proc", "--dev", "/dev");
        match &l.tmp {
            Some(t) => push!("--bind", t, "/tmp"),
            None => {
                let size = limits.disk_bytes.max(1 << 20).to_string();
                push!("--size", &size, "--tmpfs", "/tmp");
            }
        }
        // Shallower mounts first, so that a folder bound inside a hidden one (work inside
        // the batch) or hidden inside a bound one shows what it should.
        enum Kind {
            ReadOnly,
            Hide,
            ReadWrite,
        }
        let mut mounts: Vec<(&PathBuf, Kind)> = Vec::new();
        mounts.extend(l.read_only.iter().map(|p| (p, Kind::ReadOnly)));
        mounts.extend(
            l.hidden
                .iter()
                .filter(|h| h.is_dir())
                .map(|p| (p, Kind::Hide)),
        );
        mounts.extend(l.read_write.iter().map(|p| (p, Kind::ReadWrite)));
        mounts.push((
            &l.work,
            if self.writable_work {
                Kind::ReadWrite
            } else {
                Kind::ReadOnly
            },
        ));
        mounts.sort_by_key(|(p, _)| p.components().count());
        for (p, kind) in &mounts {
            match kind {
                Kind::ReadOnly => push!("--ro-bind", *p, *p),
                Kind::Hide => push!("--size", "65536", "--tmpfs", *p),
                Kind::ReadWrite => push!("--bind", *p, *p),
            }
        }
        for (p, kind) in &mounts {
            if let Kind::Hide = kind {
                push!("--remount-ro", *p);
            }
        }
        push!(
            "--remount-ro",
            "/dev",
            "--remount-ro",
            "/",
            "--chdir",
            &l.cwd
        );
        a
    }
}

/// The argv[0] of the wrapper shell, which marks the program's start in the trace.
const READY_MARKER: &str = "golab-sandbox-ready";

pub(super) struct Layout {
    work: PathBuf,
    tmp: Option<PathBuf>,
    cwd: PathBuf,
    read_only: Vec<PathBuf>,
    read_write: Vec<PathBuf>,
    hidden: Vec<PathBuf>,
}

/// Is bubblewrap installed (and strace, for syscall evidence)? The error says what to
/// install.
pub fn available(syscall_evidence: bool) -> Result<()> {
    find_tool("bwrap")
        .context("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")?;
    if syscall_evidence {
        find_tool("strace").context("strace is not installed: apt-get install strace")?;
    }
    Ok(())
}

pub(super) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| {
            p.is_file()
                && p.metadata()
                    .map(|m| m.permissions().mode() & 0o111 != 0)
                    .unwrap_or(false)
        })
}

/// Every path a sandbox binds must be reachable by its uid: bwrap runs as that uid.
fn reachable_by(path: &Path, uid: u32) -> Result<()> {
    let mut p = PathBuf::new();
    let comps: Vec<_> = path.components().collect();
    for (i, c) in comps.iter().enumerate() {
        p.push(c);
        let md = std::fs::metadata(&p)?;
        let mode = md.permissions().mode();
        let last = i + 1 == comps.len();
        let need = if last && !md.is_dir() { 0o4 } else { 0o1 };
        let ok = if md.uid() == uid {
            mode & (need << 6) != 0
        } else if md.gid() == uid {
            mode & (need << 3) != 0
        } else {
            mode & need != 0
        };
        if !ok {
            bail!(
                "{} cannot be bound in the sandbox: {} is mode {:o} owned by uid {}, which the sandbox's uid {uid} cannot {} (put it under a folder others can enter, or chmod o+x the folder)",
                path.display(),
                p.display(),
                mode & 0o7777,
                md.uid(),
                if need == 1 { "enter" } else { "read" }
            );
        }
    }
    Ok(())
}

fn give_tree(path: &Path, uid: u32) -> Result<()> {
    let md = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if md.is_file() && md.nlink() > 1 {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
        .with_context(|| format!("cannot give {} to uid {uid}", path.display()))?;
    if md.is_dir() {
        for e in std::fs::read_dir(path)? {
            give_tree(&e?.path(), uid)?;
        }
    }
    Ok(())
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds that we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: both fds were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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

/// Reads a pipe to its end, keeping at most `cap` bytes; flags `over` once the bytes of
/// every reader sharing `total` pass `cap`.
fn capped_reader<R: Read + Send + 'static>(
    r: Option<R>,
    cap: u64,
    total: Arc<AtomicU64>,
    over: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let Some(mut r) = r else { return kept };
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = (cap as usize).saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    if total.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > cap {
                        over.store(true, Ordering::SeqCst);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        kept
    })
}

// ---------------------------------------------------------------------------------------
// Processes of a uid, read from /proc.

/// A run's use of its cgroup: the difference of two counter readings.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    cpu_ns: u64,
    memory: u64,
    tasks: u64,
    oom_kills: u64,
    pids_refused: u64,
}

impl Usage {
    fn since(a: &cgroup::Counters, b: &cgroup::Counters) -> Usage {
        Usage {
            cpu_ns: b.cpu_ns.saturating_sub(a.cpu_ns),
            memory: b.memory_bytes,
            tasks: b.tasks,
            oom_kills: b.oom_kills.saturating_sub(a.oom_kills),
            pids_refused: b.pids_refused.saturating_sub(a.pids_refused),
        }
    }

    /// What the kernel's own counting shows: an OOM kill, a refused fork.
    fn kernel_verdict(&self, l: &Limits) -> Option<(Verdict, String)> {
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

/// One process, from /proc/PID/status.
struct Proc {
    pid: u32,
    ppid: u32,
    uid: u32,
    threads: u64,
    zombie: bool,
}

fn processes() -> Vec<Proc> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let mut p = Proc {
            pid,
            ppid: 0,
            uid: u32::MAX,
            threads: 1,
            zombie: false,
        };
        for line in status.lines() {
            if let Some(r) = line.strip_prefix("Uid:") {
                p.uid = r
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u32::MAX);
            } else if let Some(r) = line.strip_prefix("PPid:") {
                p.ppid = r.trim().parse().unwrap_or(0);
            } else if let Some(r) = line.strip_prefix("Threads:") {
                p.threads = r.trim().parse().unwrap_or(1);
            } else if let Some(r) = line.strip_prefix("State:") {
                p.zombie = r.trim_start().starts_with('Z');
            }
        }
        v.push(p);
    }
    v
}

/// The sandbox processes this process started itself and waits for (their leaders).
fn own_children() -> &'static Mutex<HashSet<u32>> {
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
fn sweep_uid(uid: u32, within: Duration) -> Vec<u32> {
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

// ---------------------------------------------------------------------------------------
// Syscall evidence: strace's output, read from a FIFO while the run goes on.

struct TraceFifo {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// Our own write end: keeps the reader from seeing an end before strace opens the
    /// FIFO, closed once strace is gone.
    writer: Mutex<Option<std::fs::File>>,
    reader: Mutex<Option<std::fs::File>>,
}

impl TraceFifo {
    fn new(uid: u32) -> Result<TraceFifo> {
        let dir = tempfile::Builder::new()
            .prefix(".golab-sandbox-trace-")
            .tempdir_in("/tmp")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid))?;
        let path = dir.path().join("trace");
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: mkfifo with a valid C string.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
            return Err(std::io::Error::last_os_error()).context("mkfifo");
        }
        std::os::unix::fs::chown(&path, Some(uid), Some(uid))?;
        use std::os::unix::fs::OpenOptionsExt;
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)?;
        let writer = std::fs::OpenOptions::new().write(true).open(&path)?;
        // Back to blocking reads.
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let fl = libc::fcntl(reader.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(reader.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
        Ok(TraceFifo {
            _dir: dir,
            path,
            writer: Mutex::new(Some(writer)),
            reader: Mutex::new(Some(reader)),
        })
    }

    fn reader(
        &self,
        trace: Arc<Mutex<Trace>>,
        process_evidence: Arc<AtomicBool>,
    ) -> Result<std::thread::JoinHandle<()>> {
        let f = self
            .reader
            .lock()
            .unwrap()
            .take()
            .context("trace FIFO already read")?;
        Ok(std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 16, f);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.by_ref().take(1 << 16).read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if line.last() != Some(&b'\n') {
                            // A line longer than 64 KiB: skip the rest of it.
                            let mut rest = Vec::new();
                            let _ = r.read_until(b'\n', &mut rest);
                            continue;
                        }
                        let mut t = trace.lock().unwrap();
                        t.line(&String::from_utf8_lossy(&line[..line.len() - 1]));
                        if t.process_limit_seen() {
                            process_evidence.store(true, Ordering::SeqCst);
                        }
                    }
                    Err(_) => break,
                }
            }
        }))
    }

    fn close_writer(&self) {
        self.writer.lock().unwrap().take();
    }
}

/// Evidence gathered from the trace. A line counts for the program when its pid was not
/// seen before the wrapper shell was exec'd (those are bwrap's own processes, which make
/// no traced call afterwards): strace prints host pids, while the pids clone() returns
/// inside the sandbox are of its own pid namespace, so parentage cannot be read from it.
struct Trace {
    visible: Vec<PathBuf>,
    hidden: Vec<PathBuf>,
    cwd: PathBuf,
    /// The pid that exec'd the wrapper shell, and so the program.
    root: Option<u32>,
    setup_pids: HashSet<u32>,
    pending: HashMap<u32, String>,
    /// (verdict, line) for the program's processes; at most KEEP lines of each verdict.
    found: Vec<(Verdict, String)>,
    counts: HashMap<Verdict, usize>,
    /// EAGAIN from a fork or clone anywhere in the run.
    process_limit: bool,
    root_killed_by: Option<i32>,
}

const KEEP: usize = 8;

impl Trace {
    fn new(visible: Vec<PathBuf>, hidden: Vec<PathBuf>, cwd: PathBuf) -> Trace {
        Trace {
            visible,
            hidden,
            cwd,
            root: None,
            setup_pids: HashSet::new(),
            pending: HashMap::new(),
            found: Vec::new(),
            counts: HashMap::new(),
            process_limit: false,
            root_killed_by: None,
        }
    }

    fn in_program(&self, pid: u32) -> bool {
        self.root.is_some() && !self.setup_pids.contains(&pid)
    }

    fn note(&mut self, pid: u32, v: Verdict, line: &str) {
        if v == Verdict::ProcessLimit {
            self.process_limit = true;
        }
        if !self.in_program(pid) {
            return;
        }
        let n = self.counts.entry(v).or_default();
        *n += 1;
        if *n <= KEEP {
            self.found.push((v, line.chars().take(400).collect()));
        }
    }

    fn process_limit_seen(&self) -> bool {
        self.process_limit
    }

    /// One line of `strace -f -y` output.
    fn line(&mut self, line: &str) {
        let Some((pid, rest)) = line.split_once(' ') else {
            return;
        };
        let Ok(pid) = pid.parse::<u32>() else { return };
        if self.root.is_none() {
            self.setup_pids.insert(pid);
        }
        let rest = rest.trim_start();
        if let Some(sig) = rest.strip_prefix("--- ") {
            if sig.starts_with("SIGXCPU") {
                self.note(pid, Verdict::CpuLimit, line);
            } else if sig.starts_with("SIGXFSZ") {
                self.note(pid, Verdict::OutputLimit, line);
            }
            return;
        }
        if let Some(end) = rest.strip_prefix("+++ ") {
            if Some(pid) == self.root
                && let Some(s) = end.strip_prefix("killed by ")
            {
                self.root_killed_by = signal_number(s.split_whitespace().next().unwrap_or(""));
            }
            return;
        }
        let full = if let Some(r) = rest.strip_prefix("<... ") {
            let Some((_, after)) = r.split_once(" resumed>") else {
                return;
            };
            match self.pending.remove(&pid) {
                Some(start) => format!("{start}{after}"),
                None => return,
            }
        } else if let Some(start) = rest.strip_suffix(" <unfinished ...>") {
            self.pending.insert(pid, start.to_string());
            return;
        } else {
            rest.to_string()
        };
        if let Some(call) = parse_call(&full) {
            // The evidence is the whole call, also when strace printed it in two pieces.
            self.call(pid, &call, &format!("{pid} {full}"));
        }
    }

    fn call(&mut self, pid: u32, c: &Call, line: &str) {
        match c.name.as_str() {
            "clone" | "clone3" | "fork" | "vfork" if c.errno.as_deref() == Some("EAGAIN") => {
                self.note(pid, Verdict::ProcessLimit, line);
            }
            "mmap" | "mremap" if c.errno.as_deref() == Some("ENOMEM") => {
                self.note(pid, Verdict::MemoryLimit, line);
            }
            "connect" | "sendto" | "sendmsg" | "sendmmsg"
                if outside_address(&c.args.join(", ")).is_some() =>
            {
                self.note(pid, Verdict::NetworkDenied, line);
            }
            "execve" | "execveat" | "open" | "openat" | "openat2" | "creat" => {
                if c.name == "execve"
                    && c.ret == "0"
                    && self.root.is_none()
                    && c.args.first().map(String::as_str) == Some("\"/bin/sh\"")
                    && c.args.get(1).is_some_and(|a| a.contains(READY_MARKER))
                {
                    self.setup_pids.remove(&pid);
                    self.root = Some(pid);
                }
                // The path argument, and the directory it is relative to.
                let (dir, path) = match c.name.as_str() {
                    "open" | "creat" | "execve" => (None, c.args.first()),
                    _ => (c.args.first(), c.args.get(1)),
                };
                let Some(path) = path.and_then(|p| unquote(p)) else {
                    return;
                };
                let base = dir
                    .and_then(|d| fd_path(d))
                    .unwrap_or_else(|| self.cwd.clone());
                let full = normalize(&base.join(PathBuf::from(OsString::from_vec(path))));
                if self.is_escape(&full) {
                    self.note(pid, Verdict::EscapeDenied, line);
                }
            }
            _ => {}
        }
    }

    /// Under a hidden folder, and neither inside a visible path nor on the way to one.
    fn is_escape(&self, p: &Path) -> bool {
        self.hidden.iter().any(|h| p.starts_with(h))
            && !self
                .visible
                .iter()
                .any(|v| p.starts_with(v) || v.starts_with(p))
    }

    /// The verdict the trace shows for the program, strongest first.
    fn verdict(&self) -> Option<Verdict> {
        for v in [
            Verdict::ProcessLimit,
            Verdict::MemoryLimit,
            Verdict::CpuLimit,
            Verdict::OutputLimit,
            Verdict::NetworkDenied,
            Verdict::EscapeDenied,
        ] {
            if self.counts.contains_key(&v) {
                return Some(v);
            }
        }
        self.root_killed_by.map(Verdict::Signaled)
    }

    fn evidence_for(&self, v: Verdict) -> Vec<String> {
        let mut e: Vec<String> = self
            .found
            .iter()
            .filter(|(fv, _)| *fv == v)
            .map(|(_, l)| format!("strace: {l}"))
            .collect();
        if let Verdict::Signaled(s) = v {
            e.push(format!("strace: the program was killed by signal {s}"));
        }
        let n = self.counts.get(&v).copied().unwrap_or(0);
        if n > e.len() && !e.is_empty() {
            e.push(format!("({n} such calls in all)"));
        }
        e
    }
}

struct Call {
    name: String,
    args: Vec<String>,
    ret: String,
    errno: Option<String>,
}

/// `name(arg, arg, ...) = ret [ERRNO (text)]`, splitting arguments at top-level commas.
fn parse_call(s: &str) -> Option<Call> {
    let open = s.find('(')?;
    let name = s[..open].trim().to_string();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let b = s.as_bytes();
    let (mut depth, mut i, mut in_str, mut arg_start) = (0i32, open + 1, false, open + 1);
    let mut args = Vec::new();
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'(' | b'[' | b'{' | b'<' => depth += 1,
                b')' if depth == 0 => {
                    let a = s[arg_start..i].trim();
                    if !a.is_empty() {
                        args.push(a.to_string());
                    }
                    break;
                }
                b')' | b']' | b'}' | b'>' => depth -= 1,
                b',' if depth == 0 => {
                    args.push(s[arg_start..i].trim().to_string());
                    arg_start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    let after = s.get(i + 1..)?.trim_start();
    let result = after.strip_prefix("= ")?;
    let mut words = result.split_whitespace();
    let ret = words.next()?.to_string();
    let errno = if ret == "-1" {
        words.next().map(str::to_string)
    } else {
        None
    };
    Some(Call {
        name,
        args,
        ret,
        errno,
    })
}

/// The bytes of a strace string literal `"..."` (possibly followed by `...`).
fn unquote(a: &str) -> Option<Vec<u8>> {
    let s = a.strip_prefix('"')?;
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(out),
            b'\\' if i + 1 < b.len() => {
                i += 1;
                match b[i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'v' => out.push(0x0b),
                    b'f' => out.push(0x0c),
                    b'x' if i + 2 < b.len() => {
                        out.push(
                            u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).ok()?, 16)
                                .ok()?,
                        );
                        i += 2;
                    }
                    d @ b'0'..=b'7' => {
                        let mut v = (d - b'0') as u32;
                        let mut n = 1;
                        while n < 3 && i + 1 < b.len() && (b'0'..=b'7').contains(&b[i + 1]) {
                            i += 1;
                            v = v * 8 + (b[i] - b'0') as u32;
                            n += 1;
                        }
                        out.push(v as u8);
                    }
                    c => out.push(c),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    None
}

/// The path strace -y prints for a directory fd: `AT_FDCWD</a/b>` or `3</a/b>`.
fn fd_path(a: &str) -> Option<PathBuf> {
    let start = a.find('<')?;
    let inner = a[start + 1..].strip_suffix('>')?;
    inner.starts_with('/').then(|| PathBuf::from(inner))
}

/// Removes `.` and resolves `..` without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The first IPv4/IPv6 address in a decoded sockaddr that is not loopback (or the
/// unspecified address, which means this host).
fn outside_address(args: &str) -> Option<String> {
    const V4: &str = "inet_addr(\"";
    const V6: &str = "inet_pton(AF_INET6, \"";
    let mut rest = args;
    while let Some(i) = rest.find("sa_family=AF_INET") {
        rest = &rest[i..];
        let v6 = rest.starts_with("sa_family=AF_INET6");
        let addr = if v6 {
            rest.find(V6)
                .map(|j| &rest[j + V6.len()..])
                .and_then(|s| s.split('"').next())
        } else {
            rest.find(V4)
                .map(|j| &rest[j + V4.len()..])
                .and_then(|s| s.split('"').next())
        };
        if let Some(a) = addr {
            let local = match a.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(v)) => v.is_loopback() || v.is_unspecified(),
                Ok(std::net::IpAddr::V6(v)) => {
                    v.is_loopback()
                        || v.is_unspecified()
                        || v.to_ipv4_mapped()
                            .is_some_and(|m| m.is_loopback() || m.is_unspecified())
                }
                Err(_) => false,
            };
            if !local {
                return Some(a.to_string());
            }
        }
        rest = &rest[1..];
    }
    None
}

fn signal_number(name: &str) -> Option<i32> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as i32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Test slots start high so a golab grading on the same machine keeps its own uids.
    static NEXT_SLOT: AtomicU32 = AtomicU32::new(900);
    const BUILDER_SLOT: u32 = 899;

    fn slot() -> u32 {
        NEXT_SLOT.fetch_add(1, Ordering::SeqCst)
    }

    /// The sandbox's tests fail, never skip, without bubblewrap, strace or cgroups.
    fn have_bwrap() -> bool {
        available(true).expect(
            "the sandbox tests need bubblewrap and strace (scripts/install-deps.sh installs them)",
        );
        cgroup::available().expect("the sandbox tests need cgroups (memory, pids, cpu)");
        true
    }

    fn small() -> Limits {
        Limits {
            wall: Duration::from_secs(10),
            cpu_secs: 2,
            memory_bytes: 512 << 20,
            processes: 64,
            output_bytes: 1 << 20,
            file_bytes: 16 << 20,
            disk_bytes: 64 << 20,
        }
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/hostile")
            .join(name)
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }

    /// A batch folder as golab lays it out: the student's folder (the work folder) next
    /// to another student's, whose answers must stay out of reach.
    struct Batch {
        _dir: tempfile::TempDir,
        batch: PathBuf,
        work: PathBuf,
        other_answers: PathBuf,
        sandbox: Sandbox,
    }

    fn batch(slot: u32) -> Batch {
        let dir = tempfile::Builder::new()
            .prefix("golab-sandbox-test-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let batch = dir.path().join("batch");
        let work = batch.join("alice");
        let other = batch.join("other-student");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let other_answers = other.join("answers.yaml");
        std::fs::write(&other_answers, "q1: the other student's secret answer\n").unwrap();
        let sandbox = Sandbox::new(&work, slot).hide(&batch);
        sandbox.prepare().unwrap();
        Batch {
            _dir: dir,
            batch,
            work,
            other_answers,
            sandbox,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const ALL: [&str; 9] = [
        "loops-forever",
        "fork-bomb",
        "big-output",
        "network",
        "reads-others",
        "memory-hog",
        "cpu-burner",
        "compile-error",
        "well-behaved",
    ];

    /// Every fixture built once, by `go build` inside the sandbox (one slot, one cache).
    struct Built {
        bins: HashMap<String, Vec<u8>>,
        builds: HashMap<String, Finished>,
    }

    fn built() -> &'static Built {
        static B: OnceLock<Built> = OnceLock::new();
        B.get_or_init(|| {
            let b = batch(BUILDER_SLOT);
            let mut bins = HashMap::new();
            let mut builds = HashMap::new();
            // The build cache outside the work folder, bound read-write, as a per-slot cache
            // shared between submissions would be.
            let cache = b._dir.path().join("gocache");
            std::fs::create_dir_all(&cache).unwrap();
            b.sandbox.give(&cache).unwrap();
            let env = [("GOCACHE".to_string(), cache.display().to_string())];
            for name in ALL {
                let src = b.work.join("src").join(name);
                copy_dir(&fixture(name), &src);
                b.sandbox.prepare().unwrap();
                let bin = b.work.join("bin").join(name);
                let sb = b.sandbox.clone().cwd(&src).read_write(&cache);
                let limits = Limits {
                    wall: Duration::from_secs(240),
                    cpu_secs: 240,
                    ..Limits::default()
                };
                let t = Instant::now();
                let o = sb
                    .run(
                        &s(&[
                            "go",
                            "build",
                            "-gcflags",
                            "all=-l -N",
                            "-o",
                            bin.to_str().unwrap(),
                            ".",
                        ]),
                        &env,
                        &limits,
                    )
                    .unwrap();
                eprintln!(
                    "go build {name}: {:?} in {:.2}s (startup {:?}, cpu {:?})",
                    o.verdict,
                    t.elapsed().as_secs_f64(),
                    o.startup,
                    o.cpu
                );
                if o.verdict == Verdict::Ok {
                    bins.insert(name.to_string(), std::fs::read(&bin).unwrap());
                }
                assert!(
                    processes_of_uid(b.sandbox.uid()).is_empty(),
                    "go build {name} left processes behind"
                );
                builds.insert(name.to_string(), o);
            }
            Built { bins, builds }
        })
    }

    fn install(bin: &[u8], to: &Path) {
        std::fs::write(to, bin).unwrap();
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs a built fixture as `./prog` in a fresh batch; checks nothing is left behind.
    fn run_fixture(
        name: &str,
        limits: &Limits,
        evidence: bool,
        env: &[(&str, &str)],
    ) -> (Finished, Batch) {
        run_fixture_args(name, &[], limits, evidence, env)
    }

    fn run_fixture_args(
        name: &str,
        args: &[&str],
        limits: &Limits,
        evidence: bool,
        env: &[(&str, &str)],
    ) -> (Finished, Batch) {
        let built = built();
        let bin = built
            .bins
            .get(name)
            .unwrap_or_else(|| panic!("{name} did not build: {:?}", built.builds.get(name)));
        let b = batch(slot());
        install(bin, &b.work.join("prog"));
        b.sandbox.prepare().unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sb = b.sandbox.clone().with_syscall_evidence(evidence);
        let mut argv = s(&["./prog"]);
        argv.extend(s(args));
        let o = sb.run(&argv, &env, limits).unwrap();
        eprintln!(
            "{name} (evidence {evidence}): {:?} in {:.2}s, startup {:?}, cpu {:?}, memory {} MiB, tasks {}, output {} bytes; evidence: {:?}",
            o.verdict,
            o.wall.as_secs_f64(),
            o.startup,
            o.cpu,
            o.peak_memory_bytes >> 20,
            o.peak_tasks,
            o.output_bytes,
            o.evidence
        );
        assert_eq!(
            processes_of_uid(sb.uid()),
            Vec::<u32>::new(),
            "{name}: processes of uid {} left behind",
            sb.uid()
        );
        (o, b)
    }

    #[test]
    fn well_behaved_is_ok() {
        if !have_bwrap() {
            return;
        }
        let (o, _) = run_fixture("well-behaved", &small(), true, &[]);
        assert_eq!(o.verdict, Verdict::Ok, "{o:?}");
        assert_eq!(o.status, Some(0));
        assert_eq!(o.stdout, "hello from a well-behaved lab program\n");
        assert!(o.evidence.is_empty(), "{:?}", o.evidence);
    }

    #[test]
    fn go_build_runs_in_the_sandbox_and_a_compile_error_fails() {
        if !have_bwrap() {
            return;
        }
        let b = built();
        for name in ALL {
            let o = &b.builds[name];
            if name == "compile-error" {
                assert_eq!(
                    o.verdict,
                    Verdict::Failed(2),
                    "go build exits 2 on a compile error: {o:?}"
                );
                assert!(
                    o.stderr.contains("undefined: undefinedName"),
                    "{}",
                    o.stderr
                );
            } else {
                // Ok, with no false evidence: go build looks for go.work and VCS folders
                // above the module, inside the hidden batch folder.
                assert_eq!(o.verdict, Verdict::Ok, "{name}: {o:?}");
                assert!(o.evidence.is_empty(), "{name}: {:?}", o.evidence);
            }
        }
    }

    #[test]
    fn loops_forever_times_out() {
        if !have_bwrap() {
            return;
        }
        let limits = Limits {
            wall: Duration::from_secs(2),
            cpu_secs: 10,
            ..small()
        };
        let (o, _) = run_fixture("loops-forever", &limits, true, &[]);
        assert_eq!(o.verdict, Verdict::Timeout, "{o:?}");
        assert_eq!(o.status, None);
        assert!(
            o.wall < Duration::from_secs(4),
            "killed promptly: {:?}",
            o.wall
        );
    }

    #[test]
    fn cpu_burner_hits_the_cpu_limit_before_the_wall_clock() {
        if !have_bwrap() {
            return;
        }
        let (o, _) = run_fixture("cpu-burner", &small(), true, &[]);
        // The verdict itself says the CPU limit came first: the wall-clock limit is 10 s.
        assert_eq!(o.verdict, Verdict::CpuLimit, "{o:?}");
        assert!(o.cpu >= Duration::from_secs(2), "{o:?}");
    }

    #[test]
    fn fork_bomb_hits_the_process_limit() {
        if !have_bwrap() {
            return;
        }
        let (o, _) = run_fixture("fork-bomb", &small(), true, &[]);
        assert_eq!(o.verdict, Verdict::ProcessLimit, "{o:?}");
        assert!(
            o.evidence
                .iter()
                .any(|e| e.contains("EAGAIN") || e.contains("tasks")),
            "{:?}",
            o.evidence
        );
    }

    #[test]
    fn big_output_hits_the_output_limit() {
        if !have_bwrap() {
            return;
        }
        let (o, _) = run_fixture("big-output", &small(), true, &[]);
        assert_eq!(o.verdict, Verdict::OutputLimit, "{o:?}");
        assert_eq!(o.stdout.len(), 1 << 20, "stdout is cut at the limit");
    }

    #[test]
    fn network_is_denied() {
        if !have_bwrap() {
            return;
        }
        let (o, _) = run_fixture("network", &small(), true, &[]);
        assert_eq!(o.verdict, Verdict::NetworkDenied, "{o:?}");
        assert!(
            o.evidence.iter().any(|e| e.contains("192.0.2.1")),
            "{:?}",
            o.evidence
        );
        assert!(!o.stdout.contains("connected"));
    }

    #[test]
    fn reading_another_submission_is_denied() {
        if !have_bwrap() {
            return;
        }
        // The other student's answers exist, readable by anyone, next to the work folder.
        let probe = batch(slot());
        let other = probe
            .other_answers
            .to_str()
            .unwrap()
            .replace(probe.batch.to_str().unwrap(), "BATCH");
        drop(probe);
        let (o, b) = {
            let built = built();
            let b = batch(slot());
            install(&built.bins["reads-others"], &b.work.join("prog"));
            b.sandbox.prepare().unwrap();
            let abs = other.replace("BATCH", b.batch.to_str().unwrap());
            assert!(std::fs::read_to_string(&abs).unwrap().contains("secret"));
            let o = b
                .sandbox
                .run(
                    &s(&["./prog", &abs]),
                    &[("OTHER_ANSWERS".into(), abs.clone())],
                    &small(),
                )
                .unwrap();
            (o, b)
        };
        eprintln!(
            "reads-others: {:?}, evidence {:?}, stderr {}",
            o.verdict, o.evidence, o.stderr
        );
        assert_eq!(o.verdict, Verdict::EscapeDenied, "{o:?}");
        assert!(!o.stdout.contains("secret"), "{}", o.stdout);
        assert!(
            o.evidence
                .iter()
                .any(|e| e.contains("../other-student/answers.yaml")),
            "{:?}",
            o.evidence
        );
        assert!(
            o.evidence
                .iter()
                .any(|e| e.contains(b.other_answers.to_str().unwrap())),
            "{:?}",
            o.evidence
        );
        assert_eq!(processes_of_uid(b.sandbox.uid()), Vec::<u32>::new());
    }

    #[test]
    fn memory_hog_hits_the_memory_limit() {
        if !have_bwrap() {
            return;
        }
        let (o, _) = run_fixture("memory-hog", &small(), true, &[]);
        assert_eq!(o.verdict, Verdict::MemoryLimit, "{o:?}");
        assert!(o.peak_memory_bytes <= 700 << 20, "{}", o.peak_memory_bytes);
        // Memory that is touched is measured, so the verdict needs no trace either.
        let (o, _) = run_fixture("memory-hog", &small(), false, &[]);
        assert_eq!(o.verdict, Verdict::MemoryLimit, "{o:?}");
        // Memory asked for and never touched is refused by RLIMIT_DATA: only the trace
        // (mmap = ENOMEM) tells it from the program's own failure.
        let (o, _) = run_fixture_args("memory-hog", &["untouched"], &small(), true, &[]);
        assert_eq!(o.verdict, Verdict::MemoryLimit, "{o:?}");
        assert!(
            o.evidence.iter().any(|e| e.contains("ENOMEM")),
            "{:?}",
            o.evidence
        );
        let (o, _) = run_fixture_args("memory-hog", &["untouched"], &small(), false, &[]);
        assert_eq!(
            o.verdict,
            Verdict::Failed(2),
            "the Go runtime's exit status for out of memory: {o:?}"
        );
    }

    /// Timings for the report: sandbox start, and what strace costs. Run with
    /// `cargo test sandbox_overhead -- --ignored --nocapture` on an idle machine.
    #[test]
    #[ignore]
    fn sandbox_overhead() {
        if !have_bwrap() {
            return;
        }
        let built = built();
        for evidence in [false, true] {
            let b = batch(slot());
            install(&built.bins["well-behaved"], &b.work.join("prog"));
            b.sandbox.prepare().unwrap();
            let sb = b.sandbox.clone().with_syscall_evidence(evidence);
            let mut walls = Vec::new();
            let mut starts = Vec::new();
            for _ in 0..20 {
                let o = sb.run(&s(&["./prog"]), &[], &small()).unwrap();
                assert_eq!(o.verdict, Verdict::Ok);
                walls.push(o.wall.as_secs_f64() * 1000.0);
                starts.push(o.startup.unwrap().as_secs_f64() * 1000.0);
            }
            walls.sort_by(f64::total_cmp);
            starts.sort_by(f64::total_cmp);
            eprintln!(
                "hello world, evidence {evidence}: median wall {:.1} ms, median start {:.1} ms",
                walls[10], starts[10]
            );
            // A cold `go build` of a program that uses net (cgo: gcc runs too).
            let src = b.work.join("src");
            copy_dir(&fixture("network"), &src);
            b.sandbox.prepare().unwrap();
            let sb = sb.cwd(&src);
            let limits = Limits {
                wall: Duration::from_secs(300),
                cpu_secs: 300,
                ..Limits::default()
            };
            let o = sb
                .run(
                    &s(&["go", "build", "-gcflags", "all=-l -N", "-o", "prog", "."]),
                    &[],
                    &limits,
                )
                .unwrap();
            assert_eq!(o.verdict, Verdict::Ok, "{o:?}");
            eprintln!(
                "cold go build, evidence {evidence}: wall {:.2}s, cpu {:.2}s",
                o.wall.as_secs_f64(),
                o.cpu.as_secs_f64()
            );
            let o = sb
                .run(
                    &s(&["go", "build", "-gcflags", "all=-l -N", "-o", "prog", "."]),
                    &[],
                    &limits,
                )
                .unwrap();
            eprintln!(
                "warm go build, evidence {evidence}: wall {:.2}s, cpu {:.2}s",
                o.wall.as_secs_f64(),
                o.cpu.as_secs_f64()
            );
        }
    }

    #[test]
    fn limits_that_are_measured_need_no_syscall_evidence() {
        if !have_bwrap() {
            return;
        }
        let wall2 = Limits {
            wall: Duration::from_secs(2),
            cpu_secs: 10,
            ..small()
        };
        assert_eq!(
            run_fixture("loops-forever", &wall2, false, &[]).0.verdict,
            Verdict::Timeout
        );
        assert_eq!(
            run_fixture("cpu-burner", &small(), false, &[]).0.verdict,
            Verdict::CpuLimit
        );
        assert_eq!(
            run_fixture("big-output", &small(), false, &[]).0.verdict,
            Verdict::OutputLimit
        );
        assert_eq!(
            run_fixture("fork-bomb", &small(), false, &[]).0.verdict,
            Verdict::ProcessLimit
        );
        assert_eq!(
            run_fixture("well-behaved", &small(), false, &[]).0.verdict,
            Verdict::Ok
        );
        // What the kernel refused is not seen without the trace: the program's own failure.
        assert_eq!(
            run_fixture("network", &small(), false, &[]).0.verdict,
            Verdict::Failed(1)
        );
    }

    #[test]
    fn dlv_headless_works_in_the_sandbox() {
        if !have_bwrap() {
            return;
        }
        if find_tool("dlv").is_none() {
            eprintln!("SKIPPED: dlv is not installed");
            return;
        }
        let built = built();
        let b = batch(slot());
        install(&built.bins["well-behaved"], &b.work.join("prog"));
        // A client inside the sandbox speaks JSON-RPC to dlv's API on 127.0.0.1.
        std::fs::write(
            b.work.join("client.sh"),
            r#"set -u
dlv exec --headless --listen=127.0.0.1:0 --api-version=2 ./prog > dlv.out 2>&1 &
for i in $(seq 200); do grep -q "listening at" dlv.out && break; sleep 0.05; done
port=$(sed -n 's/.*listening at: 127.0.0.1:\([0-9]*\).*/\1/p' dlv.out)
exec 3<>/dev/tcp/127.0.0.1/$port
printf '{"method":"RPCServer.Command","params":[{"name":"continue"}],"id":1}\n' >&3
read -r -t 20 line <&3; echo "continue: $line"
printf '{"method":"RPCServer.Detach","params":[{"Kill":true}],"id":2}\n' >&3
read -r -t 20 line <&3; echo "detach: $line"
wait
cat dlv.out
"#,
        )
        .unwrap();
        b.sandbox.prepare().unwrap();
        let sb = b.sandbox.clone().with_syscall_evidence(false);
        let limits = Limits {
            wall: Duration::from_secs(30),
            cpu_secs: 20,
            ..small()
        };
        let o = sb.run(&s(&["bash", "client.sh"]), &[], &limits).unwrap();
        eprintln!(
            "dlv: {:?} in {:.2}s\n{}{}",
            o.verdict,
            o.wall.as_secs_f64(),
            o.stdout,
            o.stderr
        );
        assert_eq!(o.verdict, Verdict::Ok, "{o:?}");
        assert!(
            o.stdout.contains(r#""exited":true,"exitStatus":0"#),
            "{}",
            o.stdout
        );
        assert!(
            o.stdout.contains("hello from a well-behaved lab program"),
            "{}",
            o.stdout
        );
        assert_eq!(processes_of_uid(sb.uid()), Vec::<u32>::new());
    }

    #[test]
    fn a_signal_is_known_from_the_trace_and_an_exit_status_is_not_one() {
        if !have_bwrap() {
            return;
        }
        let b = batch(slot());
        let crash = s(&["sh", "-c", "kill -SEGV $$"]);
        let o = b.sandbox.run(&crash, &[], &small()).unwrap();
        assert_eq!(o.verdict, Verdict::Signaled(11), "{o:?}");
        let o = b
            .sandbox
            .clone()
            .with_syscall_evidence(false)
            .run(&crash, &[], &small())
            .unwrap();
        assert_eq!(
            o.verdict,
            Verdict::Failed(139),
            "without the trace, bwrap's 128 + 11: {o:?}"
        );
        // A program that exits 139 by itself is no crash.
        let o = b
            .sandbox
            .run(&s(&["sh", "-c", "exit 139"]), &[], &small())
            .unwrap();
        assert_eq!(o.verdict, Verdict::Failed(139), "{o:?}");
        assert_eq!(processes_of_uid(b.sandbox.uid()), Vec::<u32>::new());
    }

    #[test]
    fn a_path_the_uid_cannot_reach_is_golabs_error() {
        if !have_bwrap() {
            return;
        }
        let b = batch(slot());
        let private = tempfile::tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = b
            .sandbox
            .clone()
            .read_only(private.path())
            .run(&s(&["true"]), &[], &small())
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot be bound in the sandbox"),
            "{err:#}"
        );
        let err = Sandbox::new(private.path(), slot())
            .run(&s(&["true"]), &[], &small())
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("call Sandbox::prepare"),
            "{err:#}"
        );
    }

    #[test]
    fn strace_lines_are_read_as_evidence() {
        let mut t = Trace::new(
            vec!["/b/alice".into(), "/usr".into()],
            vec!["/b".into()],
            "/b/alice".into(),
        );
        t.line(r#"100 execve("/usr/bin/bwrap", ["bwrap", "--", "/bin/sh", "-c", "x", "golab-sandbox-ready", "./prog"], 0x7ffd /* 3 vars */) = 0"#);
        t.line(r#"100 openat(AT_FDCWD</>, "/b/bob/answers.yaml", O_RDONLY|O_PATH) = 5</b/bob/answers.yaml>"#);
        assert!(
            t.root.is_none() && t.counts.is_empty(),
            "bwrap's own calls are not the program's"
        );
        t.line(r#"102 execve("/bin/sh", ["golab-sandbox-ready", "-c", "printf . >&3; exec 3>&-; exec \"$@\"", "golab-sandbox-ready", "./prog"], 0x5 /* 9 vars */) = 0"#);
        assert_eq!(t.root, Some(102));
        t.line(
            r#"102 openat(AT_FDCWD</b/alice>, "go.mod", O_RDONLY|O_CLOEXEC) = 3</b/alice/go.mod>"#,
        );
        t.line(r#"102 openat(AT_FDCWD</b/alice>, "..", O_RDONLY|O_DIRECTORY) = 3</b>"#);
        assert!(
            t.verdict().is_none(),
            "the way to the work folder is no escape"
        );
        t.line(r#"103 openat(AT_FDCWD</b/alice>, "../other-student/answers.yaml", O_RDONLY|O_CLOEXEC <unfinished ...>"#);
        t.line(r#"103 <... openat resumed>) = -1 ENOENT (No such file or directory)"#);
        assert_eq!(t.verdict(), Some(Verdict::EscapeDenied));
        t.line(r#"104 connect(3<socket:[1]>, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EINPROGRESS"#);
        t.line(r#"104 connect(3<socket:[2]>, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0"#);
        assert_eq!(
            t.verdict(),
            Some(Verdict::EscapeDenied),
            "loopback is allowed"
        );
        t.line(r#"104 connect(3<socket:[3]>, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("192.0.2.1")}, 16) = -1 ENETUNREACH (Network is unreachable)"#);
        assert_eq!(t.verdict(), Some(Verdict::NetworkDenied));
        t.line(r#"105 mmap(0xc000400000, 67108864, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = -1 ENOMEM (Cannot allocate memory)"#);
        assert_eq!(t.verdict(), Some(Verdict::MemoryLimit));
        t.line(r#"106 clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD) = -1 EAGAIN (Resource temporarily unavailable)"#);
        assert_eq!(t.verdict(), Some(Verdict::ProcessLimit));
        assert!(t.process_limit_seen());
        let mut t = Trace::new(vec![], vec![], "/".into());
        t.line(r#"7 execve("/bin/sh", ["golab-sandbox-ready", "golab-sandbox-ready"], 0x1 /* 1 var */) = 0"#);
        t.line("7 +++ killed by SIGSEGV (core dumped) +++");
        assert_eq!(t.verdict(), Some(Verdict::Signaled(11)));
    }

    #[test]
    fn strace_strings_and_paths_are_decoded() {
        assert_eq!(
            unquote(r#""a\"b\\c\x41\101\n"..."#).unwrap(),
            b"a\"b\\cAA\n"
        );
        assert_eq!(
            fd_path("AT_FDCWD</tmp/x y>"),
            Some(PathBuf::from("/tmp/x y"))
        );
        assert_eq!(fd_path("3<socket:[5]>"), None);
        assert_eq!(
            normalize(Path::new("/a/b/../../c/./d/..")),
            PathBuf::from("/c")
        );
        let c = parse_call(
            r#"openat(AT_FDCWD</a>, "x, (y)", O_RDONLY) = -1 ENOENT (No such file or directory)"#,
        )
        .unwrap();
        assert_eq!(
            (
                c.name.as_str(),
                c.args.len(),
                c.ret.as_str(),
                c.errno.as_deref()
            ),
            ("openat", 3, "-1", Some("ENOENT"))
        );
        assert_eq!(
            outside_address(
                r#"{sa_family=AF_INET6, sin6_port=htons(53), inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr)}"#
            ),
            None
        );
        assert_eq!(
            outside_address(r#"{sa_family=AF_INET6, sin6_port=htons(53), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr)}"#).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            outside_address(r#"{sa_family=AF_UNIX, sun_path="/run/x"}"#),
            None
        );
    }
}

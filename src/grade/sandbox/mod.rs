//! The sandbox that runs a student's program (and `go build`, `dlv`, `gdb` on it).
//! Linux only. The folder is split by job: this file (`Sandbox`: the builder and the run
//! loop), `policy` (`Limits`, `Verdict`, `Finished`, the slots' uids, `RlimitPlan`),
//! `argv` (bubblewrap's argv), `monitor` (the uid's processes from /proc, the killer and
//! reaper), `strace` (the FIFO and the syscall evidence), `launch` (from root to the slot
//! uid: cgroup join, setuid, rlimits), `cgroup` (the kernel's counters and limits),
//! `quota` (the size-capped tmpfs), `jail` (the observer's side: dlv and gdb of a `golab
//! run` that itself stays outside).
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

mod argv;
mod monitor;
mod policy;
mod strace;
#[cfg(test)]
mod tests;

use monitor::*;
pub use monitor::{kill_uid, processes_of_uid, reap_orphans, uid_in_use};
pub use policy::*;
use strace::*;

use crate::exec::Group;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the tree's CPU, memory and task count are read from /proc.
const POLL: Duration = Duration::from_millis(20);

/// The argv[0] of the wrapper shell, which marks the program's start in the trace.
const READY_MARKER: &str = "golab-sandbox-ready";

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
        // The refusals of the debuggers' filter apply here too (a program alone under
        // strace could otherwise reach what strace does not read as network: io_uring's
        // connect, AF_VSOCK, whose host is outside every network namespace).
        let l = launch::Launch {
            notify: None,
            refusals: Some(notify::Refusals::default()),
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

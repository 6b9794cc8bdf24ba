//! Grading where the sandbox cannot start: user namespaces are blocked (Gradescope runs
//! the autograder in an unprivileged Docker container, one per submission, where
//! bubblewrap's `--unshare-user` fails). The lab then runs with the isolation that
//! remains, and the result says which. It keeps the sandbox's one rule that a grade
//! rests on, the observer apart from the observed:
//! - the build, dlv, gdb and the program run as an unprivileged uid of the slot's own
//!   (golab must be root), with rlimits (CPU time, memory, file size, processes, no core
//!   files) and, where the cgroup file system is writable, a cgroup with memory and task
//!   limits; dlv and gdb are execute-only copies, so the program cannot trace them;
//! - `golab run`, the observer, stays root and writes its observation into a root-only
//!   folder; the program's files and the binary are root's and read-only; the uid owns
//!   only its HOME, which golab never reads back;
//! - the student's folder is open to the slot's gid only while that student's run lasts.
//!
//! There is no network or file-system isolation beyond that: the container is the outer
//! wall.

use super::batch::{GolabRun, outcome_of};
use super::grader::{LabRunner, Ran};
use super::model::Outcome;
use super::sandbox::{Limits, RlimitPlan, jail, kill_uid, launch};
use super::sandboxed::{exec_only_copy, fresh_dir, go_build, is_elf_executable, seal, sha256_file};
use crate::{exec, lab};
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The uids the reduced runs take, one per slot (apart from the sandbox's).
pub const UID_BASE: u32 = 62000;

/// The uid of slot 0 for this process: `GOLAB_REDUCED_UID` (two graders on one machine
/// apart: a run starts and ends by killing every process of its uid), else `UID_BASE`.
/// Below 1000 is refused.
pub fn first_uid() -> u32 {
    static U: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *U.get_or_init(|| {
        std::env::var("GOLAB_REDUCED_UID")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|u| *u >= 1000)
            .unwrap_or(UID_BASE)
    })
}
const MEMORY_MAX: u64 = 2 << 30;
const TASKS_MAX: u64 = 512;
const FILE_MAX: u64 = 1 << 30;

/// Whether the sandbox can start here: bubblewrap makes the namespaces it needs (a user,
/// pid and network namespace) and runs /bin/true in them. Err: why not, in bwrap's words.
pub fn sandbox_starts() -> Result<(), String> {
    let out = Command::new("bwrap")
        .args([
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--die-with-parent",
            "--ro-bind",
            "/",
            "/",
            "/bin/true",
        ])
        .output();
    match out {
        Err(e) => Err(format!("bwrap cannot run: {e}")),
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "bwrap: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    }
}

/// What the reduced runner can do on this machine.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// Runs take their own uid (golab is root).
    pub own_uid: bool,
    /// Where runs get a cgroup of their own with memory and task limits, when the
    /// cgroup file system is writable.
    pub cgroup: Option<Cgroups>,
    /// Runs get a network namespace of their own (only a loopback): root on a host may
    /// make one, a container without CAP_SYS_ADMIN may not.
    pub own_network: bool,
}

/// The cgroup hierarchies a run's folder is made in: one (v2) or two (v1: memory, pids).
#[derive(Debug, Clone)]
pub struct Cgroups {
    /// (parent folder, the limit files to write in a new child: (file, value)).
    pub parents: Vec<(PathBuf, Vec<(&'static str, u64)>)>,
    pub version: u8,
}

impl Cgroups {
    fn find() -> Option<Cgroups> {
        let base = Path::new("/sys/fs/cgroup");
        let v2 = |root: &Path| {
            std::fs::read_to_string(root.join("cgroup.controllers"))
                .is_ok_and(|c| c.contains("memory") && c.contains("pids"))
        };
        let candidates = if v2(base) {
            // A child gets memory.max and pids.max only once the root enables those
            // controllers for its children; without systemd nothing has, and this must
            // not depend on whether the sandbox's own cgroup code ran first (it enables
            // them too). One write each: a write naming a controller the hierarchy lacks
            // fails whole.
            for c in ["+memory", "+pids", "+cpu"] {
                let _ = std::fs::write(base.join("cgroup.subtree_control"), c);
            }
            vec![Cgroups {
                parents: vec![(
                    base.to_path_buf(),
                    vec![("memory.max", MEMORY_MAX), ("pids.max", TASKS_MAX)],
                )],
                version: 2,
            }]
        } else {
            vec![Cgroups {
                parents: vec![
                    (
                        base.join("memory"),
                        vec![("memory.limit_in_bytes", MEMORY_MAX)],
                    ),
                    (base.join("pids"), vec![("pids.max", TASKS_MAX)]),
                    // No limit file: the run's CPU total is read (cpuacct.usage) and
                    // polled against the limit.
                    (base.join("cpuacct"), vec![]),
                ],
                version: 1,
            }]
        };
        // Usable when a child can be made and its limit files are there. The child's name
        // is this call's own: two probes at once in one process (threads of a test
        // binary) made the same folder, and one of them found no cgroup.
        static PROBES: AtomicU64 = AtomicU64::new(0);
        let n = PROBES.fetch_add(1, Ordering::SeqCst);
        candidates.into_iter().find(|c| {
            c.parents.iter().all(|(parent, files)| {
                let test = parent.join(format!("golab-probe-{}-{n}", std::process::id()));
                let ok = std::fs::create_dir(&test).is_ok()
                    && files.iter().all(|(f, _)| test.join(f).is_file());
                let _ = std::fs::remove_dir(&test);
                ok
            })
        })
    }

    /// Makes this run's cgroups with their limits; None when that fails (nothing left).
    fn make(&self, name: &str) -> Option<Vec<PathBuf>> {
        let mut made = Vec::new();
        for (parent, files) in &self.parents {
            let g = parent.join(name);
            let _ = std::fs::remove_dir(&g);
            let ok = std::fs::create_dir(&g).is_ok();
            if ok {
                made.push(g.clone());
            }
            if !ok
                || !files
                    .iter()
                    .all(|(f, v)| std::fs::write(g.join(f), v.to_string()).is_ok())
            {
                Cgroups::remove(&made);
                return None;
            }
        }
        Some(made)
    }

    /// The CPU time of every process in the run's groups so far, in nanoseconds
    /// (v1: cpuacct.usage; v2: cpu.stat's usage_usec); None where neither is there.
    fn cpu_ns(groups: &[PathBuf]) -> Option<u64> {
        for g in groups {
            if let Ok(t) = std::fs::read_to_string(g.join("cpuacct.usage")) {
                return t.trim().parse().ok();
            }
            if let Ok(t) = std::fs::read_to_string(g.join("cpu.stat")) {
                return t
                    .lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|us| us * 1000);
            }
        }
        None
    }

    fn remove(groups: &[PathBuf]) {
        for g in groups {
            let _ = std::fs::write(g.join("cgroup.kill"), "1");
            for _ in 0..50 {
                let left = std::fs::read_to_string(g.join("cgroup.procs")).unwrap_or_default();
                for pid in left
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                if std::fs::remove_dir(g).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Isolation {
    pub fn probe() -> Isolation {
        // SAFETY: geteuid has no preconditions.
        let own_uid = unsafe { libc::geteuid() } == 0;
        Isolation {
            own_uid,
            cgroup: Cgroups::find(),
            own_network: network_namespace_works(),
        }
    }

    /// The sentence the results carry.
    pub fn describe(&self, why: &str, cpu: Duration) -> String {
        let uid = if self.own_uid {
            format!(
                "as uid {}+ (not root), apart from golab's observer (root), which your program can neither write to nor trace",
                first_uid()
            )
        } else {
            "as golab's own uid (golab is not root, so no uid of its own: refused)".to_string()
        };
        let cg = match &self.cgroup {
            Some(c) => format!(
                "a cgroup of its own (cgroup v{}: memory {} GiB, {TASKS_MAX} tasks, {} s of CPU in all under the debuggers)",
                c.version,
                MEMORY_MAX >> 30,
                cpu.as_secs()
            ),
            None => "no cgroup limits (the cgroup file system is not writable here)".into(),
        };
        format!(
            "isolation: the sandbox cannot start here ({why}): user namespaces are blocked, so your program ran with the isolation that remains: {uid}, rlimits (CPU {}s per process, files {} GiB, {TASKS_MAX} processes, no core files), {cg}, {net}, what it leaves in /tmp, /var/tmp and /dev/shm removed after it; no file-system isolation beyond that, the grading container is the outer wall",
            cpu.as_secs(),
            FILE_MAX >> 30,
            net = if self.own_network {
                "a network namespace of its own (no network)"
            } else {
                "the container's network (no network namespace can be made here)"
            }
        )
    }
}

/// Whether a child can take a network namespace of its own here.
fn network_namespace_works() -> bool {
    let mut c = Command::new("true");
    // SAFETY: unshare, socket and ioctl between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if launch::private_network()? {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(libc::EPERM))
            }
        });
    }
    c.status().is_ok_and(|s| s.success())
}

pub struct Reduced {
    pub run: GolabRun,
    pub timeout: Duration,
    pub isolation: Isolation,
    /// Execute-only copies of dlv and gdb, by original path.
    pub tools: Mutex<HashMap<PathBuf, PathBuf>>,
}

impl Reduced {
    pub fn new(run: GolabRun, timeout: Duration, isolation: Isolation) -> Reduced {
        Reduced {
            run,
            timeout,
            isolation,
            tools: Mutex::new(HashMap::new()),
        }
    }

    /// The rlimits of everything that runs as the slot's uid (the build, the debuggers,
    /// the program).
    fn limits(&self) -> Limits {
        Limits {
            wall: self.timeout,
            cpu_secs: self.timeout.as_secs().max(1),
            memory_bytes: MEMORY_MAX,
            // RLIMIT_NPROC is twice this.
            processes: TASKS_MAX / 2,
            file_bytes: FILE_MAX,
            ..Limits::default()
        }
    }
}

/// The student's folder, entered by the slot's gid alone while its run lasts (0710,
/// group: the slot's gid), then root's alone again (0700), whatever happened: without
/// a mount namespace this is what keeps one student's program out of another's folder.
struct Opened<'a>(&'a Path);

impl<'a> Opened<'a> {
    fn new(dir: &'a Path, gid: u32) -> Result<Opened<'a>> {
        std::os::unix::fs::chown(dir, Some(0), Some(gid))
            .with_context(|| format!("cannot chown {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710))?;
        Ok(Opened(dir))
    }
}

impl Drop for Opened<'_> {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(0o700));
        let _ = std::os::unix::fs::chown(self.0, Some(0), Some(0));
    }
}

impl LabRunner for Reduced {
    fn private_folders(&self) -> bool {
        true
    }

    fn slot_in_use(&self, slot: usize) -> Option<String> {
        super::sandbox::uid_in_use(first_uid() + slot as u32)
    }

    /// The sandbox's design without its namespaces: the build and the debuggers (with the
    /// program) run as the slot's uid; `golab run`, the observer, stays root and writes
    /// the observation where that uid cannot (a root-only folder). The uid owns nothing
    /// golab reads back: the program's files and the binary are root's and read-only.
    fn run(
        &self,
        lab_dir: &Path,
        prebuilt: Option<&Path>,
        goroot: Option<&Path>,
        slot: usize,
    ) -> Result<Ran> {
        if !self.isolation.own_uid {
            bail!(
                "the reduced isolation needs golab to run as root: the observer must not share the student's uid"
            );
        }
        let student_dir = lab_dir
            .parent()
            .context("a lab folder inside the student's folder")?;
        let uid = first_uid() + slot as u32;
        let the_lab = lab::load_file(&lab_dir.join("lab.yaml"))?;
        kill_uid(uid);
        let _opened = Opened::new(student_dir, uid)?;
        // The program's files: root's, read-only to the uid.
        let work = lab_dir.join("work");
        std::fs::create_dir_all(&work)?;
        seal(lab_dir)?;
        // The uid's only folder: HOME, TMPDIR, the build's output and cache.
        let home = student_dir.join("home");
        fresh_dir(&home, uid, 0o700)?;
        let groups = self
            .isolation
            .cgroup
            .as_ref()
            .and_then(|c| c.make(&format!("golab-reduced-{}-{slot}", std::process::id())))
            .unwrap_or_default();
        if self.isolation.cgroup.is_some() && groups.is_empty() {
            bail!("cannot make the run's cgroup under /sys/fs/cgroup");
        }
        let r = self.build_and_observe(lab_dir, &the_lab, prebuilt, goroot, uid, &home, &groups);
        kill_uid(uid);
        Cgroups::remove(&groups);
        let _ = std::fs::remove_dir_all(&home);
        remove_files_of(uid);
        r
    }
}

impl Reduced {
    #[allow(clippy::too_many_arguments)]
    fn build_and_observe(
        &self,
        lab_dir: &Path,
        the_lab: &lab::Lab,
        prebuilt: Option<&Path>,
        goroot: Option<&Path>,
        uid: u32,
        home: &Path,
        groups: &[PathBuf],
    ) -> Result<Ran> {
        let student_dir = lab_dir.parent().context("the student's folder")?;
        let limits = self.limits();
        let procs: Vec<PathBuf> = groups.iter().map(|g| g.join("cgroup.procs")).collect();
        let binary = lab_dir.join("work").join("main");

        // 1. Build as the uid, from the read-only program, into the uid's folder; the
        // binary is then copied to a root-owned, read-only file.
        match prebuilt {
            Some(p) => {
                crate::files::copy_executable(p, &binary)
                    .with_context(|| format!("cannot copy the prebuilt {}", p.display()))?;
            }
            None => {
                let out_dir = home.join("build");
                std::fs::create_dir(&out_dir)?;
                std::os::unix::fs::chown(&out_dir, Some(uid), Some(uid))?;
                let argv = go_build(goroot, &the_lab.program.gcflags, &out_dir.join("main"));
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..])
                    .current_dir(lab_dir)
                    .env_clear()
                    .env("HOME", home)
                    .env("TMPDIR", home)
                    .env("GOCACHE", home.join("gocache"))
                    .env("GOPATH", home.join("gopath"))
                    .env("GOTOOLCHAIN", "local")
                    .env("GOPROXY", "off")
                    .env("GOTELEMETRY", "off")
                    .env("LANG", "C.UTF-8");
                match goroot {
                    Some(g) => {
                        c.env("GOROOT", g).env(
                            "PATH",
                            format!("{}/bin:/usr/local/bin:/usr/bin:/bin", g.display()),
                        );
                    }
                    None => {
                        c.env("PATH", std::env::var_os("PATH").unwrap_or_default());
                    }
                }
                let fds = open_procs(&procs)?;
                let l = launch::Launch {
                    notify: None,
                    refusals: Some(super::sandbox::notify::Refusals::default()),
                    uid,
                    cgroup_fds: fds.iter().map(|f| f.as_raw_fd()).collect(),
                    rlimits: RlimitPlan::new(&limits),
                    ready_fd: None,
                };
                // SAFETY: Launch::apply makes only async-signal-safe system calls.
                unsafe {
                    c.pre_exec(move || l.apply());
                }
                let out = match exec::run(c, "go build (reduced isolation)", self.timeout) {
                    Ok(o) => o,
                    Err(e) if exec::timed_out(&e) => {
                        return Ok(Ran::Stopped {
                            outcome: Outcome::Timeout,
                            message: "go build did not finish in time".into(),
                        });
                    }
                    Err(e) => return Err(e),
                };
                drop(fds);
                let built = out_dir.join("main");
                if !out.status.success() {
                    return Ok(Ran::Stopped {
                        outcome: Outcome::CompileError,
                        message: exec::tail(&format!("{}{}", out.stdout, out.stderr)),
                    });
                }
                if !is_elf_executable(&built) {
                    return Ok(Ran::Stopped {
                        outcome: Outcome::CompileError,
                        message: "go build made no program: main.go must be `package main` with a `func main()`".into(),
                    });
                }
                crate::files::copy_executable(&built, &binary)
                    .context("cannot take the built binary")?;
            }
        }
        seal(&lab_dir.join("work"))?;
        let sha = sha256_file(&binary)?;

        // 2. The observer: golab run as root; dlv and gdb (execute-only copies) as the uid.
        let observer = student_dir.join("observer");
        fresh_dir(&observer, 0, 0o700)?;
        let obs_tmp = observer.join("tmp");
        fresh_dir(&obs_tmp, 0, 0o700)?;
        let obs_work = student_dir.join("observer-work");
        fresh_dir(&obs_work, 0, 0o755)?;
        let tools = student_dir
            .parent()
            .context("the work folder")?
            .join(".tools-reduced");
        let dlv = self
            .run
            .dlv(goroot)
            .or_else(|| exec::which("dlv"))
            .context("dlv is not installed")?;
        let dlv = exec_only_copy(&self.tools, &tools, &dlv)?;
        let gdb = std::env::var_os("GOLAB_GDB")
            .map(PathBuf::from)
            .or_else(|| exec::which("gdb"))
            .map(|g| exec_only_copy(&self.tools, &tools, &g))
            .transpose()?;
        // The debuggers' configuration: root's, read-only, empty.
        let config = student_dir.join("debugger-config");
        fresh_dir(&config.join("dlv"), 0, 0o755)?;
        std::fs::write(config.join("dlv/config.yml"), "")?;
        seal(&config)?;
        let spec_path = observer.join("jail.json");
        jail::write_reduced(
            &spec_path,
            &jail::ReducedSpec {
                uid,
                home: home.to_path_buf(),
                config: Some(config.clone()),
                cgroup_procs: procs.clone(),
                limits: limits.clone(),
            },
        )?;
        let obs = observer.join("observation.json");
        let mut argv = self.run.argv(lab_dir, &obs, Some(&binary), goroot);
        if let Some(i) = argv.iter().position(|a| a == "--work") {
            argv[i + 1] = obs_work.display().to_string();
        }
        if let Some(i) = argv.iter().position(|a| a == "--dlv") {
            argv[i + 1] = dlv.display().to_string();
        } else {
            argv.extend(["--dlv".into(), dlv.display().to_string()]);
        }
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..])
            .env(jail::ENV, &spec_path)
            .env("HOME", &observer)
            .env("TMPDIR", &obs_tmp)
            .env("GOTOOLCHAIN", "local");
        match &gdb {
            Some(g) => c.env("GOLAB_GDB", g),
            None => c.env_remove("GOLAB_GDB"),
        };
        if let Some(g) = goroot {
            c.env("GOROOT", g);
        }
        // The observer dies with the grader, and takes a network namespace of its own
        // where it may (root on a host): dlv's port and the program's connections are
        // then apart from every other slot's and from the host's network. In a
        // container that refuses it, the container's network stays.
        // SAFETY: prctl, unshare, socket and ioctl: async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                launch::private_network().map(|_| ())
            });
        }
        // The CPU total of the debuggers and the program (every process in the run's
        // cgroup), polled: past the limit every process of the uid is killed (a program
        // that spins in hundreds of threads, each under its own RLIMIT_CPU).
        let cpu_limit_ns = self.timeout.as_secs().max(1).saturating_mul(1_000_000_000);
        let done = Arc::new(AtomicBool::new(false));
        let over = Arc::new(AtomicU64::new(0));
        let watch = Cgroups::cpu_ns(groups).map(|start| {
            let (done, over, groups) = (done.clone(), over.clone(), groups.to_vec());
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    let used = Cgroups::cpu_ns(&groups)
                        .unwrap_or(start)
                        .saturating_sub(start);
                    if used >= cpu_limit_ns {
                        over.store(used, Ordering::SeqCst);
                        kill_uid(uid);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        });
        let ran = exec::run(
            c,
            "golab run (observer, reduced isolation)",
            self.timeout + Duration::from_secs(30),
        );
        done.store(true, Ordering::SeqCst);
        if let Some(w) = watch {
            let _ = w.join();
        }
        kill_uid(uid);
        let cpu = over.load(Ordering::SeqCst);
        if cpu > 0 {
            let _ = std::fs::remove_dir_all(&obs_work);
            return Ok(Ran::Stopped {
                outcome: Outcome::CpuLimit,
                message: format!(
                    "your program under the debugger used more CPU time than allowed ({:.1} s of {} s, the debuggers' included)",
                    cpu as f64 / 1e9,
                    cpu_limit_ns / 1_000_000_000
                ),
            });
        }
        let observed = sha256_file(&obs_work.join("main"));
        let _ = std::fs::remove_dir_all(&obs_work);
        let r = match ran {
            // `observer-killed` among them: the document's error kind says it.
            Ok(out) => outcome_of(out.status.code(), &out.stderr, &obs)?,
            Err(e) if exec::timed_out(&e) => Ran::Stopped {
                outcome: Outcome::Timeout,
                message: "the lab run of your program did not finish in time".into(),
            },
            Err(e) => return Err(e),
        };
        let mut now = vec![("the binary", sha256_file(&binary)?)];
        if let Ok(o) = observed {
            now.push(("the debuggers' copy of the binary", o));
        }
        for (what, h) in now {
            if h != sha {
                return Ok(Ran::Stopped {
                    outcome: Outcome::BinaryChanged,
                    message: format!(
                        "{what} changed during the observation (SHA-256 {sha} before, {h} after)"
                    ),
                });
            }
        }
        Ok(r)
    }
}

/// What a program of `uid` may leave behind for the host once its processes are gone
/// (there is no quota, no IPC namespace here): every entry the uid owns in the shared
/// writable folders, and in any world-writable folder below them (a sticky folder
/// another user made in /tmp), goes; so do its System V shared memory segments,
/// message queues and semaphore sets, which outlive their processes and the run's
/// memory cgroup (attack H2: three unattached 256 MiB segments after a `graded 6/6`).
fn remove_files_of(uid: u32) {
    for dir in [
        "/tmp",
        "/var/tmp",
        "/dev/shm",
        "/run/lock",
        "/var/lock",
        "/dev/mqueue",
        "/var/crash",
    ] {
        sweep(std::path::Path::new(dir), uid, 0);
    }
    remove_ipc_of(uid);
}

/// Removes the entries of `dir` that `uid` owns, and looks into the world-writable
/// folders among the rest (symbolic links are never followed).
fn sweep(dir: &std::path::Path, uid: u32, depth: usize) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(md) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if md.uid() == uid {
            let _ = if md.is_dir() {
                std::fs::remove_dir_all(e.path())
            } else {
                std::fs::remove_file(e.path())
            };
        } else if md.is_dir() && md.mode() & 0o002 != 0 && depth < 8 {
            sweep(&e.path(), uid, depth + 1);
        }
    }
}

/// Removes the System V IPC objects that `uid` owns or made, as listed in
/// /proc/sysvipc (whose columns are named in its first line).
fn remove_ipc_of(uid: u32) {
    let uid = uid.to_string();
    for (table, id_column) in [("shm", "shmid"), ("msg", "msqid"), ("sem", "semid")] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/sysvipc/{table}")) else {
            continue;
        };
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        let col = |name: &str| head.iter().position(|h| *h == name);
        let (Some(idc), Some(uidc), Some(cuidc)) = (col(id_column), col("uid"), col("cuid")) else {
            continue;
        };
        for l in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(uidc) != Some(&uid.as_str()) && f.get(cuidc) != Some(&uid.as_str()) {
                continue;
            }
            let Some(id) = f.get(idc).and_then(|v| v.parse::<i32>().ok()) else {
                continue;
            };
            // SAFETY: IPC_RMID on an id, with no buffer.
            unsafe {
                match table {
                    "shm" => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
                    "msg" => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
                    _ => libc::semctl(id, 0, libc::IPC_RMID),
                };
            }
        }
    }
}

fn open_procs(procs: &[PathBuf]) -> Result<Vec<std::os::fd::OwnedFd>> {
    procs
        .iter()
        .map(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .map(std::os::fd::OwnedFd::from)
                .with_context(|| format!("cannot open {}", p.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Attack H2's leftovers, made for a uid of this test's own (as root), and the
    /// sweep after a run: its file in /run/lock, its file in a sticky folder another
    /// user made in /tmp, and its System V shared memory segment are gone; another
    /// owner's file beside them stays.
    #[test]
    fn what_a_uid_leaves_in_shared_folders_and_shared_memory_goes() {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs as root");
        let uid = 64_917;
        let chown = |p: &std::path::Path, u: u32| std::os::unix::fs::lchown(p, Some(u), None);
        let lock = std::path::Path::new("/run/lock");
        std::fs::create_dir_all(lock).unwrap();
        let in_lock = lock.join(format!("golab-h2-{}", std::process::id()));
        std::fs::write(&in_lock, b"x").unwrap();
        chown(&in_lock, uid).unwrap();
        // A world-writable, sticky folder of another user, in /tmp.
        let sticky = tempfile::Builder::new()
            .prefix("golab-h2-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(sticky.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        chown(sticky.path(), 1).unwrap();
        let deep = sticky.path().join("left.bin");
        std::fs::write(&deep, b"x").unwrap();
        chown(&deep, uid).unwrap();
        let other = sticky.path().join("other.bin");
        std::fs::write(&other, b"x").unwrap();
        chown(&other, uid + 1).unwrap();
        // A segment, given to the uid (as a program of that uid would make it).
        // SAFETY: shmget/shmctl on a new private segment with a zeroed buffer.
        let id = unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600);
            assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
            let mut ds: libc::shmid_ds = std::mem::zeroed();
            assert_eq!(libc::shmctl(id, libc::IPC_STAT, &mut ds), 0);
            ds.shm_perm.uid = uid;
            assert_eq!(libc::shmctl(id, libc::IPC_SET, &mut ds), 0);
            id
        };
        let listed = |id: i32| {
            std::fs::read_to_string("/proc/sysvipc/shm")
                .unwrap()
                .lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some(id.to_string().as_str()))
        };
        assert!(listed(id));
        remove_files_of(uid);
        assert!(!in_lock.exists(), "{} stayed", in_lock.display());
        assert!(!deep.exists(), "{} stayed", deep.display());
        assert_eq!(std::fs::symlink_metadata(&other).unwrap().uid(), uid + 1);
        assert!(!listed(id), "the segment {id} stayed");
    }
}

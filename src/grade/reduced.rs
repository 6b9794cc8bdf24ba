//! Grading where the sandbox cannot start: user namespaces are blocked (Gradescope runs
//! the autograder in an unprivileged Docker container, one per submission, where
//! bubblewrap's `--unshare-user` fails). The lab then runs with the isolation that
//! remains, and the result says which: an unprivileged uid of its own (when golab runs
//! as root), rlimits (CPU time, file size, processes, no core files), and a cgroup with
//! memory and task limits when the cgroup file system is writable. There is no network
//! or file-system isolation beyond the uid: the container is the outer wall.

use super::batch::{GolabRun, outcome_of};
use super::grader::{LabRunner, Ran};
use super::model::Outcome;
use crate::exec;
use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The uids the reduced runs take, one per slot (apart from the sandbox's).
pub const UID_BASE: u32 = 62000;
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
                ],
                version: 1,
            }]
        };
        // Usable when a child can be made and its limit files are there.
        candidates.into_iter().find(|c| {
            c.parents.iter().all(|(parent, files)| {
                let test = parent.join(format!("golab-probe-{}", std::process::id()));
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
        }
    }

    /// The sentence the results carry.
    pub fn describe(&self, why: &str, cpu: Duration) -> String {
        let uid = if self.own_uid {
            format!("as uid {UID_BASE}+ (not root)")
        } else {
            "as golab's own uid (golab is not root, so no uid of its own)".to_string()
        };
        let cg = match &self.cgroup {
            Some(c) => format!(
                "a cgroup of its own (cgroup v{}: memory {} GiB, {TASKS_MAX} tasks)",
                c.version,
                MEMORY_MAX >> 30
            ),
            None => "no cgroup limits (the cgroup file system is not writable here)".into(),
        };
        format!(
            "isolation: the sandbox cannot start here ({why}): user namespaces are blocked, so your program ran with the isolation that remains: {uid}, rlimits (CPU {}s, files {} GiB, {TASKS_MAX} processes, no core files), {cg}; no network or file-system isolation beyond that, the grading container is the outer wall",
            cpu.as_secs(),
            FILE_MAX >> 30
        )
    }
}

pub struct Reduced {
    pub run: GolabRun,
    pub timeout: Duration,
    pub isolation: Isolation,
}

fn give(path: &Path, uid: u32) -> Result<()> {
    let md = std::fs::symlink_metadata(path)?;
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
        .with_context(|| format!("cannot give {} to uid {uid}", path.display()))?;
    if md.is_dir() {
        for e in std::fs::read_dir(path)? {
            give(&e?.path(), uid)?;
        }
    }
    Ok(())
}

/// SIGKILL to every process of `uid` (kill(-1) as that uid), so nothing it left
/// running survives into the next submission.
fn kill_uid(uid: u32) {
    let mut c = Command::new("kill");
    c.args(["-9", "-1"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if libc::setgid(uid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let _ = c.output();
}

impl LabRunner for Reduced {
    fn run(
        &self,
        lab_dir: &Path,
        prebuilt: Option<&Path>,
        goroot: Option<&Path>,
        slot: usize,
    ) -> Result<Ran> {
        let obs = lab_dir.join("observation.json");
        let argv = self.run.argv(lab_dir, &obs, prebuilt, goroot);
        let uid = UID_BASE + slot as u32;
        let home = lab_dir.join(".home");
        std::fs::create_dir_all(&home)?;
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..])
            .env("HOME", &home)
            .env("GOCACHE", home.join("gocache"))
            .env("GOPATH", home.join("gopath"))
            .env("GOTOOLCHAIN", "local");
        let groups = self
            .isolation
            .cgroup
            .as_ref()
            .and_then(|c| c.make(&format!("golab-reduced-{}-{slot}", std::process::id())))
            .unwrap_or_default();
        if self.isolation.cgroup.is_some() && groups.is_empty() {
            anyhow::bail!("cannot make the run's cgroup under /sys/fs/cgroup");
        }
        let procs: Vec<std::ffi::CString> = groups
            .iter()
            .map(|g| {
                std::ffi::CString::new(g.join("cgroup.procs").as_os_str().as_encoded_bytes())
                    .expect("no NUL in a path")
            })
            .collect();
        let own_uid = self.isolation.own_uid;
        if own_uid {
            give(lab_dir, uid)?;
        }
        let cpu = self.timeout.as_secs().max(1);
        // SAFETY: between fork and exec only async-signal-safe system calls are made,
        // on values prepared before the fork.
        unsafe {
            c.pre_exec(move || {
                for p in &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                let set = |r, v: u64| {
                    let l = libc::rlimit {
                        rlim_cur: v,
                        rlim_max: v,
                    };
                    libc::setrlimit(r, &l)
                };
                set(libc::RLIMIT_CORE, 0);
                set(libc::RLIMIT_CPU, cpu);
                set(libc::RLIMIT_FSIZE, FILE_MAX);
                set(libc::RLIMIT_NPROC, TASKS_MAX);
                if own_uid
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(uid) != 0
                        || libc::setuid(uid) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let r = exec::run(c, "golab run (reduced isolation)", self.timeout);
        if own_uid {
            kill_uid(uid);
        }
        Cgroups::remove(&groups);
        match r {
            Ok(out) => outcome_of(out.status.code(), &out.stderr, &obs),
            Err(e) if crate::exec::timed_out(&e) => Ok(Ran::Stopped {
                outcome: Outcome::Timeout,
                message: "the lab run did not finish in time".into(),
            }),
            Err(e) => Err(e),
        }
    }
}

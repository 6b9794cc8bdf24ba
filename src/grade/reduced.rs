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
    /// The cgroup v2 folder runs are put under, when it is writable.
    pub cgroup: Option<PathBuf>,
}

impl Isolation {
    pub fn probe() -> Isolation {
        // SAFETY: geteuid has no preconditions.
        let own_uid = unsafe { libc::geteuid() } == 0;
        let root = Path::new("/sys/fs/cgroup");
        let test = root.join(format!("golab-probe-{}", std::process::id()));
        let cgroup = (root.join("cgroup.controllers").is_file()
            && std::fs::create_dir(&test).is_ok())
        .then(|| {
            let _ = std::fs::remove_dir(&test);
            root.to_path_buf()
        });
        Isolation { own_uid, cgroup }
    }

    /// The sentence the results carry.
    pub fn describe(&self, why: &str, cpu: Duration) -> String {
        let uid = if self.own_uid {
            format!("as uid {UID_BASE}+ (not root)")
        } else {
            "as golab's own uid (golab is not root, so no uid of its own)".to_string()
        };
        let cg = match &self.cgroup {
            Some(_) => format!(
                "a cgroup of its own (memory {} GiB, {TASKS_MAX} tasks)",
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
        let cgroup = match &self.isolation.cgroup {
            Some(root) => {
                let g = root.join(format!("golab-reduced-{}-{slot}", std::process::id()));
                let _ = std::fs::remove_dir(&g);
                std::fs::create_dir(&g)
                    .and_then(|_| std::fs::write(g.join("memory.max"), MEMORY_MAX.to_string()))
                    .and_then(|_| std::fs::write(g.join("pids.max"), TASKS_MAX.to_string()))
                    .ok()
                    .map(|_| g)
            }
            None => None,
        };
        let procs = cgroup.as_ref().map(|g| {
            std::ffi::CString::new(g.join("cgroup.procs").as_os_str().as_encoded_bytes())
                .expect("no NUL in a path")
        });
        let own_uid = self.isolation.own_uid;
        if own_uid {
            give(lab_dir, uid)?;
        }
        let cpu = self.timeout.as_secs().max(1);
        // SAFETY: between fork and exec only async-signal-safe system calls are made,
        // on values prepared before the fork.
        unsafe {
            c.pre_exec(move || {
                if let Some(p) = &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd >= 0 {
                        libc::write(fd, b"0".as_ptr().cast(), 1);
                        libc::close(fd);
                    }
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
        if let Some(g) = &cgroup {
            let _ = std::fs::write(g.join("cgroup.kill"), "1");
            for _ in 0..50 {
                if std::fs::remove_dir(g).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        match r {
            Ok(out) => outcome_of(out.status.code(), &out.stderr, &obs),
            Err(e) if format!("{e:#}").contains("did not finish in time") => Ok(Ran::Stopped {
                outcome: Outcome::Timeout,
                message: "the lab run did not finish in time".into(),
            }),
            Err(e) => Err(e),
        }
    }
}

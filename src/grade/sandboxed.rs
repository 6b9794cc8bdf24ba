//! Running a submission's lab in the sandbox, with the observer apart from the observed.
//!
//! 1. **Build**: `go build` as the slot's uid reads a read-only copy of the program (the
//!    lab folder, root's) and writes only its output folder; its GOCACHE is this
//!    submission's own: an overlay over a warm cache of the standard library that root
//!    owns and nobody can write (built once per Go from the lab's own program), so a
//!    submission can add entries but change none. The binary is copied to a root-owned
//!    file, `lab/work/main`; its SHA-256 is taken.
//! 2. **The program alone**, traced by strace from outside: what it tries is evidence.
//!    Nothing of the host is writable (the lab folder is bound read-only; HOME is /tmp).
//!
//! Every writable place of the three steps (the build's output, its cache's upper layer
//! and temporary files, the program's and the debuggers' /tmp) is a folder on one
//! size-capped tmpfs per slot (`sandbox::quota`), unmounted when the submission is done:
//! a quota used up is `disk-limit`, and the host's disk never sees a byte of it.
//! 3. **The observer**: `golab run` as root, outside every sandbox, in a network
//!    namespace of its own, writing the observation into a folder only root can enter.
//!    Only dlv and gdb (execute-only copies: non-dumpable, so the program cannot trace
//!    or write them) run in the sandbox, as the slot's uid and in its cgroup
//!    (`sandbox::jail`). A program that stops or kills its debugger gets
//!    `observer-killed`.
//!
//! The binary's SHA-256 is checked again after the observation. Every step counts in
//! the slot's cgroup: memory (anonymous, shared and tmpfs), tasks and CPU.

use super::batch::{GolabRun, outcome_of};
use super::grader::{LabRunner, Ran};
use super::model::Outcome;
use super::sandbox::quota::Quota;
use super::sandbox::{self, Limits, Sandbox, Verdict, cgroup, jail};
use crate::lab;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Sandboxed {
    /// golab itself and the dlv to give it.
    pub run: GolabRun,
    /// Folders no submission may see: the submissions, and every student's work folder.
    pub hidden: Vec<PathBuf>,
    /// Warm standard-library build caches live here (one per Go, root's, read-only).
    pub caches: PathBuf,
    /// The lab's own program, which warms a cache.
    pub lab_source: PathBuf,
    pub timeout: Duration,
    /// Wall-clock and CPU time of the program's traced run on its own.
    pub program: Duration,
    /// Execute-only copies of dlv and gdb, by original path.
    pub tools: Mutex<HashMap<PathBuf, PathBuf>>,
    /// Warm caches made so far, by Go.
    pub warm: Mutex<HashMap<String, PathBuf>>,
}

impl Sandboxed {
    pub fn new(
        run: GolabRun,
        hidden: Vec<PathBuf>,
        caches: PathBuf,
        lab_source: PathBuf,
        timeout: Duration,
        program: Duration,
    ) -> Sandboxed {
        Sandboxed {
            run,
            hidden,
            caches,
            lab_source,
            timeout,
            program,
            tools: Mutex::new(HashMap::new()),
            warm: Mutex::new(HashMap::new()),
        }
    }
}

/// What a sandbox verdict means for the submission, when it stops the grading.
fn stopping(v: Verdict, what: &str) -> Option<(Outcome, String)> {
    Some(match v {
        Verdict::Timeout => (
            Outcome::Timeout,
            format!("{what} did not finish in time (an endless loop?)"),
        ),
        Verdict::CpuLimit => (
            Outcome::CpuLimit,
            format!("{what} used more CPU time than allowed"),
        ),
        Verdict::MemoryLimit => (
            Outcome::MemoryLimit,
            format!("{what} used more memory than allowed"),
        ),
        Verdict::ProcessLimit => (
            Outcome::ProcessLimit,
            format!("{what} started more processes or threads than allowed (a fork bomb?)"),
        ),
        Verdict::OutputLimit => (
            Outcome::OutputLimit,
            format!("{what} wrote more output than allowed"),
        ),
        Verdict::NetworkDenied => (
            Outcome::NetworkDenied,
            format!("{what} tried to open a network connection; lab programs have no network"),
        ),
        Verdict::EscapeDenied => (
            Outcome::EscapeDenied,
            format!("{what} tried to read outside its own folder (another submission?)"),
        ),
        Verdict::Ok | Verdict::Failed(_) | Verdict::Signaled(_) => return None,
    })
}

pub fn sha256_file(p: &Path) -> Result<String> {
    let data = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok(Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", p.display()))
}

/// Root's, read-only to everyone else: folders 0755, files 0444 (0555 if executable).
pub(super) fn seal(p: &Path) -> Result<()> {
    let md = std::fs::symlink_metadata(p)?;
    std::os::unix::fs::lchown(p, Some(0), Some(0))?;
    if md.is_dir() {
        set_mode(p, 0o755)?;
        for e in std::fs::read_dir(p)? {
            seal(&e?.path())?;
        }
    } else if md.is_file() {
        set_mode(
            p,
            if md.permissions().mode() & 0o111 != 0 {
                0o555
            } else {
                0o444
            },
        )?;
    }
    Ok(())
}

/// An execute-only copy of `tool` under `root` (root's, mode 0711), made once per tool
/// (`made`: original -> copy). The kernel makes a process of an unreadable executable
/// non-dumpable: the program it debugs, of the same uid, cannot trace it, read or write
/// its memory.
pub(super) fn exec_only_copy(
    made: &Mutex<HashMap<PathBuf, PathBuf>>,
    root: &Path,
    tool: &Path,
) -> Result<PathBuf> {
    let mut t = made.lock().unwrap();
    if let Some(p) = t.get(tool) {
        return Ok(p.clone());
    }
    let dir = root.join(t.len().to_string());
    std::fs::create_dir_all(&dir)?;
    set_mode(root, 0o755)?;
    set_mode(&dir, 0o755)?;
    let name = tool.file_name().context("a tool's file name")?;
    let dest = dir.join(name);
    let tmp = dir.join(".copy");
    crate::files::copy_executable(tool, &tmp)
        .with_context(|| format!("cannot copy {}", tool.display()))?;
    std::os::unix::fs::chown(&tmp, Some(0), Some(0))?;
    set_mode(&tmp, 0o711)?;
    std::fs::rename(&tmp, &dest)?;
    t.insert(tool.to_path_buf(), dest.clone());
    Ok(dest)
}

/// A fresh folder (emptied if it exists) owned by `uid`.
pub(super) fn fresh_dir(p: &Path, uid: u32, mode: u32) -> Result<()> {
    if p.exists() {
        std::fs::remove_dir_all(p).with_context(|| format!("cannot clear {}", p.display()))?;
    }
    std::fs::create_dir_all(p)?;
    std::os::unix::fs::chown(p, Some(uid), Some(uid))?;
    set_mode(p, mode)
}

impl Sandboxed {
    fn base(&self, work: &Path, slot: usize, extra_ro: &[PathBuf]) -> Sandbox {
        let mut s = Sandbox::new(work, slot as u32);
        for p in self.hidden.iter() {
            s = s.hide(p);
        }
        for p in extra_ro {
            s = s.read_only(p);
        }
        s
    }

    /// An execute-only copy of a debugger (the kernel makes such a process non-dumpable).
    fn exec_only(&self, tool: &Path) -> Result<PathBuf> {
        exec_only_copy(&self.tools, &self.caches.with_file_name(".tools"), tool)
    }

    /// The warm cache for a Go (built once, from the lab's own program, then sealed).
    fn warm_cache(
        &self,
        goroot: Option<&Path>,
        gcflags: &str,
        env: &[(String, String)],
        slot: usize,
    ) -> Result<PathBuf> {
        let key: String = Sha256::digest(
            format!(
                "{}\0{gcflags}",
                goroot.map(|g| g.display().to_string()).unwrap_or_default()
            )
            .as_bytes(),
        )
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
        let mut w = self.warm.lock().unwrap();
        if let Some(p) = w.get(&key) {
            return Ok(p.clone());
        }
        let dir = self.caches.join(&key);
        let cache = dir.join("cache");
        let done = dir.join("complete");
        if !done.is_file() {
            std::fs::create_dir_all(&self.caches)?;
            set_mode(&self.caches, 0o755)?;
            fresh_dir(&dir, 0, 0o755)?;
            let src = dir.join("src");
            let out = dir.join("out");
            std::fs::create_dir_all(&src)?;
            for f in ["main.go", "go.mod"] {
                let from = self.lab_source.join(f);
                if from.is_file() {
                    std::fs::copy(&from, src.join(f))?;
                }
            }
            let uid = sandbox::first_uid() + slot as u32;
            fresh_dir(&cache, uid, 0o755)?;
            fresh_dir(&out, uid, 0o755)?;
            let ro: Vec<PathBuf> = goroot
                .into_iter()
                .map(Path::to_path_buf)
                .chain([src.clone()])
                .collect();
            let sb = self.base(&out, slot, &ro).read_write(&cache).cwd(&src);
            let mut env = env.to_vec();
            env.push(("GOCACHE".into(), cache.display().to_string()));
            let o = sb.run(
                &go_build(goroot, gcflags, &out.join("main")),
                &env,
                &Limits {
                    wall: Duration::from_secs(900),
                    cpu_secs: 900,
                    ..Limits::default()
                },
            )?;
            if o.verdict != Verdict::Ok {
                bail!(
                    "the lab's own program does not build ({}): {}",
                    o.verdict.name(),
                    crate::exec::tail(&format!("{}{}", o.stdout, o.stderr))
                );
            }
            seal(&cache)?;
            std::fs::remove_dir_all(&out)?;
            std::fs::write(&done, "")?;
        }
        w.insert(key, cache.clone());
        Ok(cache)
    }
}

pub(super) fn go_build(goroot: Option<&Path>, gcflags: &str, out: &Path) -> Vec<String> {
    let go = goroot
        .map(|g| g.join("bin/go").display().to_string())
        .unwrap_or_else(|| "go".into());
    vec![
        go,
        "build".into(),
        "-gcflags".into(),
        gcflags.to_string(),
        "-o".into(),
        out.display().to_string(),
        ".".into(),
    ]
}

impl LabRunner for Sandboxed {
    fn slot_in_use(&self, slot: usize) -> Option<String> {
        super::sandbox::uid_in_use(sandbox::first_uid() + slot as u32)
    }

    fn run(
        &self,
        lab_dir: &Path,
        prebuilt: Option<&Path>,
        goroot: Option<&Path>,
        slot: usize,
    ) -> Result<Ran> {
        let student_dir = lab_dir
            .parent()
            .context("a lab folder inside the student's folder")?;
        let uid = sandbox::first_uid() + slot as u32;
        let the_lab = lab::load_file(&lab_dir.join("lab.yaml"))?;
        let work = lab_dir.join("work");
        std::fs::create_dir_all(&work)?;
        // The program's files are root's and read-only to every sandbox.
        seal(lab_dir)?;
        let binary = work.join("main");
        let dlv = self.run.dlv(goroot);
        let mut ro: Vec<PathBuf> = goroot.into_iter().map(Path::to_path_buf).collect();
        let mut env: Vec<(String, String)> = Vec::new();
        if let Some(g) = goroot {
            env.push(("GOROOT".into(), g.display().to_string()));
            env.push((
                "PATH".into(),
                format!("{}/bin:/usr/local/bin:/usr/bin:/bin", g.display()),
            ));
        }
        let limits = Limits {
            wall: self.timeout,
            ..Limits::default()
        };

        // Every place the build, the program and its debuggers can write: one tmpfs of
        // `disk_bytes`, the grader's, gone (unmounted) when this returns.
        let scratch = self.caches.with_file_name(".scratch");
        std::fs::create_dir_all(&scratch)?;
        set_mode(&scratch, 0o755)?;
        let mut quota = Quota::mount(&scratch.join(slot.to_string()), limits.disk_bytes)?;
        let quota_mib = limits.disk_bytes >> 20;

        // 1. Build, by the grader, from the read-only copy.
        match prebuilt {
            Some(p) => {
                crate::files::copy_executable(p, &binary)
                    .with_context(|| format!("cannot copy the prebuilt {}", p.display()))?;
            }
            None => {
                let warm = self.warm_cache(goroot, &the_lab.program.gcflags, &env, slot)?;
                let out_dir = quota.folder("build", uid, 0o755)?;
                let tmp = quota.folder("tmp", uid, 0o700)?;
                // The build cache: the warm one seen through an overlay whose writes go
                // to the quota (never to the warm cache, never to another submission).
                let gocache = quota.overlay(&warm, "gocache", uid)?;
                let mut benv = env.clone();
                benv.push(("GOCACHE".into(), gocache.display().to_string()));
                let sb = self
                    .base(&out_dir, slot, &ro)
                    .read_only(lab_dir)
                    .read_write(&gocache)
                    .tmp_at(&tmp)
                    .cwd(lab_dir)
                    .with_syscall_evidence(false);
                let argv = go_build(goroot, &the_lab.program.gcflags, &out_dir.join("main"));
                let out = sb.run(&argv, &benv, &limits)?;
                if let Some((o, m)) = stopping(out.verdict, "go build") {
                    return Ok(Ran::Stopped {
                        outcome: o,
                        message: m,
                    });
                }
                let said = format!("{}{}", out.stdout, out.stderr);
                if out.verdict != Verdict::Ok {
                    // The quota used up now, or a write refused for want of room (the
                    // linker asks for the whole binary at once, and leaves nothing when
                    // refused): the tools' own words, which a submission can only make
                    // them say about itself.
                    let enospc = out_of_room(&said);
                    return Ok(Ran::Stopped {
                        outcome: if quota.full() || enospc {
                            Outcome::DiskLimit
                        } else {
                            Outcome::CompileError
                        },
                        message: if quota.full() || enospc {
                            format!(
                                "go build wrote more than {quota_mib} MiB (the binary, build cache and temporary files together): {}",
                                crate::exec::tail(&said)
                            )
                        } else {
                            crate::exec::tail(&said)
                        },
                    });
                }
                // `go build -o` of a package that is not `main` succeeds and writes an
                // archive: nothing to run, the submission's error.
                let built = out_dir.join("main");
                if !is_elf_executable(&built) {
                    return Ok(Ran::Stopped {
                        outcome: Outcome::CompileError,
                        message: "go build made no program: main.go must be `package main` with a `func main()`".into(),
                    });
                }
                crate::files::copy_executable(&built, &binary)
                    .context("cannot take the built binary")?;
                quota.unmount("gocache");
                quota.clear("build");
                quota.clear("tmp");
            }
        }
        seal(&work)?;
        let sha = sha256_file(&binary)?;

        // 2. The program alone, traced: what it tries is evidence.
        let args: Vec<String> = the_lab
            .scenarios
            .first()
            .map(|s| s.args())
            .unwrap_or_else(|| the_lab.program.args.clone());
        let mut argv = vec![binary.display().to_string()];
        argv.extend(args);
        let mut run_env = env.clone();
        run_env.extend(
            the_lab
                .program
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let alone = Limits {
            wall: self.program.min(self.timeout),
            cpu_secs: self.program.as_secs().max(1),
            ..limits.clone()
        };
        let tmp = quota.folder("tmp", uid, 0o700)?;
        let out = self
            .base(lab_dir, slot, &ro)
            .read_only_work()
            .tmp_at(&tmp)
            .cwd(lab_dir)
            .with_syscall_evidence(true)
            .run(&argv, &run_env, &alone)?;
        if let Some((o, m)) = stopping(out.verdict, "your program") {
            let evidence = out
                .evidence
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(Ran::Stopped {
                outcome: o,
                message: if evidence.is_empty() {
                    m
                } else {
                    format!("{m} ({evidence})")
                },
            });
        }
        if quota.full() {
            return Ok(Ran::Stopped {
                outcome: Outcome::DiskLimit,
                message: format!(
                    "your program wrote more than {quota_mib} MiB into /tmp (its only writable place)"
                ),
            });
        }
        quota.clear("tmp");

        // 3. The observer: golab run as root, its debuggers in the sandbox. Its CPU time
        // (debuggers and program together) is at most twice the program's own allowance
        // (a lab's dlv session takes a few seconds), and never more than the wall clock.
        let limits = Limits {
            cpu_secs: limits
                .cpu_secs
                .min(self.timeout.as_secs())
                .min(self.program.as_secs().saturating_mul(2))
                .max(1),
            ..limits
        };
        let observer = student_dir.join("observer");
        fresh_dir(&observer, 0, 0o700)?;
        let obs_work = student_dir.join("observer-work");
        fresh_dir(&obs_work, 0, 0o755)?;
        let dlv = dlv
            .or_else(|| crate::exec::which("dlv"))
            .context("dlv is not installed")?;
        let dlv = self.exec_only(&dlv)?;
        let gdb = std::env::var_os("GOLAB_GDB")
            .map(PathBuf::from)
            .or_else(|| crate::exec::which("gdb"));
        let gdb = gdb.map(|g| self.exec_only(&g)).transpose()?;
        for t in std::iter::once(&dlv).chain(gdb.iter()) {
            if let Some(d) = t.parent() {
                ro.push(d.to_path_buf());
            }
        }
        ro.push(lab_dir.to_path_buf());
        let tmp = quota.folder("tmp", uid, 0o700)?;
        let spec = jail::Spec {
            sandbox: self
                .base(&obs_work, slot, &ro)
                .read_only_work()
                .tmp_at(&tmp)
                .share_network()
                .with_syscall_evidence(false),
            limits: limits.clone(),
        };
        let spec_path = observer.join("jail.json");
        std::fs::write(&spec_path, serde_json::to_vec(&spec)?)?;
        let obs = observer.join("observation.json");
        let mut argv = self.run.argv(lab_dir, &obs, Some(&binary), goroot);
        // --work: the observer's own folder (root's), and its dlv: the execute-only copy.
        if let Some(i) = argv.iter().position(|a| a == "--work") {
            argv[i + 1] = obs_work.display().to_string();
        }
        if let Some(i) = argv.iter().position(|a| a == "--dlv") {
            argv[i + 1] = dlv.display().to_string();
        } else {
            argv.extend(["--dlv".into(), dlv.display().to_string()]);
        }
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]).env(jail::ENV, &spec_path);
        if let Some(g) = &gdb {
            c.env("GOLAB_GDB", g);
        }
        for (k, v) in &env {
            c.env(k, v);
        }
        // SAFETY: launch::observer makes only async-signal-safe system calls.
        unsafe {
            c.pre_exec(sandbox::launch::observer);
        }
        let cg = cgroup::Cgroup::for_uid(uid)?;
        sandbox::kill_uid(uid);
        cg.set(&limits)?;
        let before = cg.counters();
        // CPU of the debuggers and the program together, polled as in `Sandbox::run`:
        // past the limit every process of the uid is killed (a program that spins only
        // under a debugger).
        let cpu_limit_ns = limits.cpu_secs.saturating_mul(1_000_000_000);
        let done = Arc::new(AtomicBool::new(false));
        let over = Arc::new(AtomicU64::new(0));
        let watch = {
            let (done, over) = (done.clone(), over.clone());
            let cg = cgroup::Cgroup::for_uid(uid)?;
            let start = before.cpu_ns;
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    let used = cg.counters().cpu_ns.saturating_sub(start);
                    if used >= cpu_limit_ns {
                        over.store(used, Ordering::SeqCst);
                        sandbox::kill_uid(uid);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let ran = crate::exec::run(
            c,
            "golab run (observer)",
            self.timeout + Duration::from_secs(30),
        );
        done.store(true, Ordering::SeqCst);
        let _ = watch.join();
        sandbox::kill_uid(uid);
        let after = cg.counters();
        let left = sweep(uid);
        sandbox::reap_orphans(uid);
        // The copy the debuggers ran, checked below; the folder goes whatever happened.
        let observed = sha256_file(&obs_work.join("main"));
        let _ = std::fs::remove_dir_all(&obs_work);
        if !left.is_empty() {
            bail!("processes of sandbox uid {uid} survived the observer: {left:?}");
        }
        // What the kernel counted decides first: the debugger may be the OOM killer's victim.
        if after.oom_kills > before.oom_kills {
            return Ok(Ran::Stopped {
                outcome: Outcome::MemoryLimit,
                message: format!(
                    "your program under the debugger used more memory than allowed ({} bytes, anonymous, shared and tmpfs together)",
                    limits.memory_bytes
                ),
            });
        }
        let cpu = over.load(Ordering::SeqCst);
        if cpu > 0 {
            return Ok(Ran::Stopped {
                outcome: Outcome::CpuLimit,
                message: format!(
                    "your program under the debugger used more CPU time than allowed ({:.1} s of {} s, the debugger's included)",
                    cpu as f64 / 1e9,
                    limits.cpu_secs
                ),
            });
        }
        if after.pids_refused > before.pids_refused {
            return Ok(Ran::Stopped {
                outcome: Outcome::ProcessLimit,
                message: format!(
                    "your program under the debugger started more processes or threads than allowed ({})",
                    limits.processes
                ),
            });
        }
        if quota.full() {
            return Ok(Ran::Stopped {
                outcome: Outcome::DiskLimit,
                message: format!(
                    "your program under the debugger wrote more than {quota_mib} MiB into /tmp (its only writable place)"
                ),
            });
        }
        let r = match ran {
            // `observer-killed` among them: the document's error kind says it.
            Ok(out) => outcome_of(out.status.code(), &out.stderr, &obs)?,
            Err(e) if crate::exec::timed_out(&e) => Ran::Stopped {
                outcome: Outcome::Timeout,
                message: "the lab run of your program did not finish in time".into(),
            },
            Err(e) => return Err(e),
        };
        // The binary observed is the one built (when the observer got as far as copying it).
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

/// An ELF executable (not an `ar` archive, not a shared object), by its header.
pub(super) fn is_elf_executable(p: &Path) -> bool {
    use std::io::Read;
    let mut h = [0u8; 18];
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    if f.read_exact(&mut h).is_err() || &h[..4] != b"\x7fELF" {
        return false;
    }
    // e_type (little-endian, as on every target golab builds for): ET_EXEC or ET_DYN
    // (a position-independent executable).
    matches!(u16::from_le_bytes([h[16], h[17]]), 2 | 3)
}

/// Kills the uid's processes until none is left (5 s at most); returns survivors.
fn sweep(uid: u32) -> Vec<u32> {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = sandbox::processes_of_uid(uid);
        if left.is_empty() || std::time::Instant::now() >= end {
            return left;
        }
        sandbox::kill_uid(uid);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The tools' words for a write refused for want of room: go's own
/// ("no space left on device") and ld's, through gcc for a cgo build ("final link
/// failed: No space left on device"): strerror's spelling, in any case.
fn out_of_room(said: &str) -> bool {
    said.to_ascii_lowercase()
        .contains("no space left on device")
}

#[cfg(test)]
mod tests {
    /// G9: the quota used up inside the linker (a cgo build: gcc's ld) is `disk-limit`,
    /// as it is when go itself says so. The words are ld's (paths cut), from a real sandboxed build of
    /// attack round 4's nop sled (25 M nops, 128 MiB quota).
    #[test]
    fn the_linker_running_out_of_room_is_out_of_room() {
        let ld = "# schedulercallers\nlink: running gcc failed: exit status 1\nld: final link failed: No space left on device\ncollect2: error: ld returned 1 exit status\n";
        assert!(super::out_of_room(ld));
        assert!(super::out_of_room(
            "go build: write /tmp/x: no space left on device"
        ));
        assert!(!super::out_of_room("./main.go:3:2: undefined: fmt.Printn"));
    }
}

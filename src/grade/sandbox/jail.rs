//! The observer's side of a sandboxed lab run. `golab run` (the observer) runs as root,
//! outside every sandbox, in a network namespace of its own with only a loopback, and
//! writes the observation where no sandbox uid can write. Only the commands that run the
//! student's program (dlv and gdb, marked `Cmd::untrusted`) go into the sandbox: as the
//! slot's uid, in the slot's cgroup, with the same folders hidden and nothing writable
//! but a size-capped /tmp. The grader hands the sandbox to `golab run` in a file named
//! by `GOLAB_JAIL`.
//!
//! The debuggee shares its debugger's uid (ptrace needs it), so it can signal dlv or gdb
//! but not read or write them: the grader gives dlv and gdb as execute-only copies, which
//! makes the kernel mark them non-dumpable (no ptrace attach, no /proc/PID/mem, no
//! process_vm_writev from the same uid). A debugger that the program stopped or killed is
//! reported as `observer-killed` (`interference`), never read as evidence.

use super::{Limits, Sandbox, cgroup, launch, notify};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

/// The environment variable naming the jail file.
pub const ENV: &str = crate::machine::JAIL_ENV;

pub use crate::machine::INTERFERENCE;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub sandbox: Sandbox,
    pub limits: Limits,
}

/// The jail of the reduced isolation (`grade::reduced`, where bubblewrap cannot start):
/// the same observer apart from the observed, without namespaces. dlv and gdb run as
/// `uid` (no supplementary groups), under `limits`' rlimits, in the cgroups whose
/// `cgroup.procs` files are listed (none where the cgroup file system is not writable),
/// with `home` (the uid's own folder) as HOME and TMPDIR. golab run stays root and
/// writes nothing the uid can reach.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReducedSpec {
    pub uid: u32,
    pub home: PathBuf,
    /// The debuggers' XDG_CONFIG_HOME: root's and read-only (dlv reads
    /// `dlv/config.yml` there), so nothing the program leaves in HOME (a FIFO for a
    /// config file) reaches the next debugger.
    #[serde(default)]
    pub config: Option<PathBuf>,
    pub cgroup_procs: Vec<PathBuf>,
    pub limits: Limits,
}

/// What a jail file holds: the sandbox's spec, or `{"reduced": ReducedSpec}`.
#[derive(Debug, Clone)]
pub enum Kind {
    Sandbox(Spec),
    Reduced(ReducedSpec),
}

pub struct Jail {
    pub kind: Kind,
    cgroup_fds: Vec<OwnedFd>,
    /// What the debuggers' seccomp supervisors saw (`notify`).
    evidence: Arc<Mutex<notify::Evidence>>,
}

/// Writes the jail file of a reduced run.
pub fn write_reduced(path: &Path, spec: &ReducedSpec) -> Result<()> {
    let v = serde_json::json!({ "reduced": spec });
    std::fs::write(path, serde_json::to_vec(&v)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

static CURRENT: OnceLock<Option<Jail>> = OnceLock::new();

/// The jail this process was given (`GOLAB_JAIL`), if any. A jail file that cannot be
/// read is fatal: running the student's program unsandboxed is never the fallback.
pub fn current() -> Option<&'static Jail> {
    CURRENT
        .get_or_init(|| {
            let p = std::env::var_os(ENV).filter(|v| !v.is_empty())?;
            match Jail::load(Path::new(&p)) {
                Ok(j) => Some(j),
                Err(e) => {
                    eprintln!("golab: the sandbox in {ENV} cannot be used: {e:#}");
                    std::process::exit(2);
                }
            }
        })
        .as_ref()
}

/// Makes `Machine::command` run untrusted commands in this process's jail, if it was
/// given one (a jail file that cannot be read ends the process, as in [`current`]).
pub fn install() {
    if let Some(j) = current() {
        crate::machine::confine(j);
    }
}

impl crate::machine::Confinement for Jail {
    fn command(
        &self,
        program: &str,
        args: &[String],
        envs: &[(String, String)],
        cwd: Option<&Path>,
    ) -> Command {
        Jail::command(self, program, args, envs, cwd)
    }
    fn connect(&self, addr: &str) -> std::io::Result<std::net::TcpStream> {
        Jail::connect(self, addr)
    }
    fn interference(&self) -> Option<String> {
        Jail::interference(self)
    }
    fn evidence(&self) -> Vec<String> {
        Jail::evidence(self)
    }
    fn output_limit(&self) -> Option<u64> {
        Some(match &self.kind {
            Kind::Sandbox(s) => s.limits.output_bytes,
            Kind::Reduced(r) => r.limits.output_bytes,
        })
    }
}

impl Jail {
    pub fn load(p: &Path) -> Result<Jail> {
        let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
        let mut v: serde_json::Value = serde_json::from_str(&text)?;
        if let Some(r) = v.get_mut("reduced").map(serde_json::Value::take) {
            let spec: ReducedSpec = serde_json::from_value(r)?;
            let mut cgroup_fds = Vec::new();
            for p in &spec.cgroup_procs {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .with_context(|| format!("cannot open {}", p.display()))?;
                cgroup_fds.push(OwnedFd::from(f));
            }
            return Ok(Jail {
                kind: Kind::Reduced(spec),
                cgroup_fds,
                evidence: Default::default(),
            });
        }
        let spec: Spec = serde_json::from_value(v)?;
        let cg = cgroup::Cgroup::for_uid(spec.sandbox.uid())?;
        let cgroup_fds = cg.procs_files()?;
        Ok(Jail {
            kind: Kind::Sandbox(spec),
            cgroup_fds,
            evidence: Default::default(),
        })
    }

    /// The uid dlv, gdb and the program run as.
    pub fn uid(&self) -> u32 {
        match &self.kind {
            Kind::Sandbox(s) => s.sandbox.uid(),
            Kind::Reduced(r) => r.uid,
        }
    }

    /// The process that runs `program args` inside the sandbox (bwrap as the slot uid).
    pub fn command(
        &self,
        program: &str,
        args: &[String],
        envs: &[(String, String)],
        cwd: Option<&Path>,
    ) -> Command {
        let spec = match &self.kind {
            Kind::Sandbox(s) => s,
            Kind::Reduced(r) => return self.reduced_command(r, program, args, envs, cwd),
        };
        let sb = match cwd {
            Some(c) => spec.sandbox.clone().cwd(c),
            None => spec.sandbox.clone(),
        };
        let mut all: Vec<OsString> = Vec::new();
        let bwrap = super::find_tool("bwrap").unwrap_or_else(|| PathBuf::from("bwrap"));
        match sb.layout() {
            Ok(l) => all.extend(sb.bwrap_args(&l, &spec.limits)),
            // bwrap itself reports the folder it cannot bind.
            Err(e) => eprintln!("golab: sandbox layout: {e:#}"),
        }
        all.push("--".into());
        all.push(program.into());
        all.extend(args.iter().map(OsString::from));
        let mut env = sb.default_env();
        for (k, v) in envs {
            env.retain(|(k2, _)| k2 != k);
            env.push((k.clone(), v.clone()));
        }
        let mut c = Command::new(&bwrap);
        c.args(&all)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir("/");
        let l = launch::Launch {
            uid: sb.uid(),
            cgroup_fds: cgroup::raw(&self.cgroup_fds),
            rlimits: super::RlimitPlan::new(&spec.limits),
            ready_fd: None,
            notify: self.supervise(),
            refusals: None,
        };
        // SAFETY: Launch::apply makes only async-signal-safe system calls.
        unsafe {
            c.pre_exec(move || l.apply());
        }
        c
    }

    /// The reduced jail's process: `program` itself, started by root and dropped to the
    /// uid (with its rlimits and cgroups) between fork and exec; a clean environment.
    fn reduced_command(
        &self,
        r: &ReducedSpec,
        program: &str,
        args: &[String],
        envs: &[(String, String)],
        cwd: Option<&Path>,
    ) -> Command {
        let home = r.home.display().to_string();
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), home.clone()),
            ("TMPDIR".into(), home.clone()),
            ("LANG".into(), "C.UTF-8".into()),
            ("USER".into(), "golab".into()),
            ("GOTOOLCHAIN".into(), "local".into()),
            ("GOPROXY".into(), "off".into()),
            ("GOTELEMETRY".into(), "off".into()),
        ];
        if let Some(c) = &r.config {
            env.push(("XDG_CONFIG_HOME".into(), c.display().to_string()));
        }
        for (k, v) in envs {
            env.retain(|(k2, _)| k2 != k);
            env.push((k.clone(), v.clone()));
        }
        // Without a pid namespace, what the program left running in the previous
        // debugger's session (a daemon in a session of its own) would be there for the
        // next: every process of the uid goes first. The sessions of a jailed run are
        // one at a time.
        super::kill_uid(r.uid);
        let mut c = Command::new(program);
        c.args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd.unwrap_or(&r.home));
        let l = launch::Launch {
            uid: r.uid,
            cgroup_fds: cgroup::raw(&self.cgroup_fds),
            rlimits: super::RlimitPlan::new(&r.limits),
            ready_fd: None,
            notify: self.supervise(),
            refusals: None,
        };
        // SAFETY: Launch::apply makes only async-signal-safe system calls.
        unsafe {
            c.pre_exec(move || l.apply());
        }
        c
    }

    /// A seccomp supervisor for one command (`notify`): the calls of the command and of
    /// everything it starts are the evidence. None (no evidence from that command, and
    /// said so) where it cannot be set up.
    fn supervise(&self) -> Option<notify::Child> {
        match notify::supervise(self.uid(), self.evidence.clone()) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("golab: no network evidence from the debugger step: {e}");
                None
            }
        }
    }

    /// The program's refused network calls under its debuggers so far.
    pub fn evidence(&self) -> Vec<String> {
        self.evidence.lock().unwrap().calls.clone()
    }

    /// A connection to dlv's API, made with the slot's uid as the socket's owner: dlv
    /// accepts a client on localhost only from its own uid. The file-system uid is a
    /// per-thread credential, so a thread of its own takes it for the `socket` call.
    pub fn connect(&self, addr: &str) -> std::io::Result<std::net::TcpStream> {
        let uid = self.uid();
        let addr = addr.to_string();
        std::thread::spawn(move || {
            // SAFETY: setfsuid changes only this thread's file-system uid.
            unsafe {
                libc::setfsuid(uid);
            }
            let s = std::net::TcpStream::connect(&addr);
            // SAFETY: as above; the thread ends right after.
            unsafe {
                libc::setfsuid(0);
            }
            s
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("connect thread panicked")))
    }

    /// Has the program stopped its debugger? A process of the slot's uid in state `T`
    /// (stopped by a signal; a debuggee at a breakpoint is `t`, tracing stop).
    pub fn interference(&self) -> Option<String> {
        let uid = self.uid();
        for p in super::processes_of_uid(uid) {
            let Ok(stat) = procfs::process::Process::new(p as i32).and_then(|p| p.stat()) else {
                continue;
            };
            if stat.state == 'T' {
                return Some(format!(
                    "{INTERFERENCE} {} (pid {p}) was stopped by a signal while it observed your program",
                    stat.comm
                ));
            }
        }
        None
    }
}

//! Where a lab runs: the machine golab is on (`host`), or a lab VM reached with the
//! system `ssh` on a port forwarded to 127.0.0.1 (the `qemu` and `vagrant` providers),
//! the way Lima reaches its VMs. Probes build their commands through [`Machine`], so a
//! lab runs the same way everywhere; only this module knows the difference.

pub mod bootdisk;
pub mod boxfs;
pub mod image;
pub mod lifecycle;
pub mod qemu;
pub mod seed;
pub mod vagrant;

use crate::exec;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where lab VMs keep their folders: `$GOLAB_STATE`, else `~/.local/state/golab`.
pub fn state_root() -> Result<PathBuf> {
    match std::env::var_os("GOLAB_STATE").filter(|v| !v.is_empty()) {
        Some(s) => Ok(PathBuf::from(s)),
        None => {
            let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).context(
                "neither GOLAB_STATE nor HOME is set: cannot place the machines' folders",
            )?;
            Ok(PathBuf::from(home).join(".local/state/golab"))
        }
    }
}

/// Two distinct free ports on 127.0.0.1 (both listeners are held until both are known),
/// for a lab VM's ssh and dlv forwards.
pub fn free_port_pair() -> Result<(u16, u16)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free port on 127.0.0.1")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free port on 127.0.0.1")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// Where the guest's dlv comes from (both providers' provisioning runs
/// `provision/lab-vm.sh`, which reads it from `GOLAB_DLV_SOURCE`/`GOLAB_DLV_VERSION`, and
/// for a source build `GOLAB_DLV_SRC_URL`/`GOLAB_DLV_SRC_SHA256`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DlvSource {
    /// `go install github.com/go-delve/delve/cmd/dlv@VERSION` in the guest.
    GoInstall(String),
    /// Debian's `delve` package.
    Apt,
    /// Built in the guest with `-mod=vendor` from a source tarball (delve's tree with its
    /// vendored modules), pinned by SHA-256: no module proxy needed.
    Source {
        version: String,
        url: String,
        sha256: String,
    },
}

impl DlvSource {
    /// `--dlv` as the command line takes it: a version to `go install`, or `apt`.
    pub fn parse(s: &str) -> DlvSource {
        if s.trim() == "apt" {
            DlvSource::Apt
        } else {
            DlvSource::GoInstall(s.trim().to_string())
        }
    }

    /// `--dlv VERSION --dlv-src-url URL --dlv-src-sha256 SHA`: a build from source.
    pub fn source(version: &str, url: &str, sha256: &str) -> Result<DlvSource> {
        let version = version.trim();
        if version.is_empty() || version == "apt" {
            bail!("--dlv-src-url builds dlv from source: --dlv must be its version (like v1.9.1)");
        }
        let sha256 = sha256.trim().to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "--dlv-src-sha256 must be the source tarball's SHA-256 (64 hex digits), not {sha256:?}"
            );
        }
        let name = url.rsplit('/').next().unwrap_or("");
        if !url.contains("://") || name.is_empty() || name.starts_with('.') {
            bail!("--dlv-src-url must be a URL that ends in the tarball's file name, not {url:?}");
        }
        Ok(DlvSource::Source {
            version: version.to_string(),
            url: url.trim().to_string(),
            sha256,
        })
    }

    /// The version the guest's `dlv version` must report, when one is pinned.
    pub fn version(&self) -> Option<&str> {
        match self {
            DlvSource::GoInstall(v) | DlvSource::Source { version: v, .. } => {
                Some(v.trim_start_matches('v'))
            }
            DlvSource::Apt => None,
        }
    }

    /// lab-vm.sh's `GOLAB_DLV_SOURCE`, and its `GOLAB_DLV_VERSION` (no leading "v").
    pub fn provisioner_env(&self) -> (&'static str, Option<String>) {
        match self {
            DlvSource::Apt => ("apt", None),
            DlvSource::GoInstall(v) => ("go-install", Some(v.trim_start_matches('v').to_string())),
            DlvSource::Source { version, .. } => {
                ("source", Some(version.trim_start_matches('v').to_string()))
            }
        }
    }

    /// Every variable lab-vm.sh reads about dlv, in a fixed order.
    pub fn provisioner_vars(&self) -> Vec<(&'static str, String)> {
        let (source, version) = self.provisioner_env();
        let mut v = vec![("GOLAB_DLV_SOURCE", source.to_string())];
        if let Some(ver) = version {
            v.push(("GOLAB_DLV_VERSION", ver));
        }
        if let DlvSource::Source { url, sha256, .. } = self {
            v.push(("GOLAB_DLV_SRC_URL", url.clone()));
            v.push(("GOLAB_DLV_SRC_SHA256", sha256.clone()));
        }
        v
    }

    /// The source tarball's file name in the cache (and in the guest's /var/cache/golab).
    pub fn source_artifact(&self) -> Option<crate::download::Artifact> {
        match self {
            DlvSource::Source { url, sha256, .. } => Some(crate::download::Artifact {
                name: url.rsplit('/').next().unwrap_or("").to_string(),
                url: url.clone(),
                sha256: sha256.clone(),
            }),
            _ => None,
        }
    }
}

/// A lab VM as golab reaches it.
#[derive(Debug, Clone)]
pub struct Ssh {
    pub name: String,
    pub user: String,
    /// The host's 127.0.0.1 port forwarded to the guest's sshd.
    pub port: u16,
    pub key: PathBuf,
    /// The host's 127.0.0.1 port forwarded to `guest_dlv_port` in the guest.
    pub dlv_port: u16,
    pub guest_dlv_port: u16,
    /// Where dlv listens in the guest: `0.0.0.0` behind QEMU's user-mode forward (it
    /// arrives on the guest's own address), `127.0.0.1` when the "guest" is this host.
    pub dlv_listen_host: String,
    /// One ssh connection that every command of a run goes through (see
    /// [`Machine::sharing_one_connection`]); `None`: each command connects anew.
    pub master: Option<std::sync::Arc<SshMaster>>,
}

/// An `ssh -M` master that golab started and owns: its commands reuse the connection
/// through the control socket, so each costs a channel, not a key exchange and a login
/// (under software emulation a login is a second or more of the guest's time). The
/// master runs in a process group of its own, registered like every child of golab's,
/// with `ControlPersist=no` and a parent-death signal: it ends when golab drops it, is
/// interrupted or is killed, never after.
pub struct SshMaster {
    group: std::sync::Mutex<Option<exec::Group>>,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SshMaster {
    fn drop(&mut self) {
        if let Some(mut g) = self.group.lock().unwrap_or_else(|e| e.into_inner()).take() {
            g.kill();
        }
    }
}

impl std::fmt::Debug for SshMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SshMaster({})", self.socket.display())
    }
}

#[derive(Debug, Clone)]
pub enum Machine {
    Host,
    Ssh(Ssh),
}

/// A command to run on a machine: program, arguments, environment, folder.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    /// On a VM, the remote command is bounded by `timeout` too: killing the local ssh
    /// does not reach a debugger left running in the guest.
    deadline: Option<Duration>,
    /// Runs the student's program (dlv, gdb): inside the grader's sandbox when there is
    /// one (`GOLAB_JAIL`).
    untrusted: bool,
}

/// How an observer's error starts when the observed program stopped or killed the
/// debugger (the grader's `observer-killed`): what a person reads on stderr. Programs
/// learn it from the type, [`Interfered`], never from this text.
pub const INTERFERENCE: &str = "observer-killed:";

/// The error of a probe whose debugger the observed program stopped or killed (only
/// known in the grader's sandbox). `golab run` reports it as the error kind
/// `observer-killed` (`runner::failure`), which is how the grader learns it.
#[derive(Debug)]
pub struct Interfered(pub String);

impl std::fmt::Display for Interfered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{INTERFERENCE} {}", self.0)
    }
}

impl std::error::Error for Interfered {}

/// The observed program, under its debugger, tried to reach a network: the calls (each
/// refused). `runner::failure` makes it the document's `network-denied`.
#[derive(Debug)]
pub struct Denied(pub Vec<String>);

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the program tried to reach a network under its debugger: {}",
            self.0.join("; ")
        )
    }
}

impl std::error::Error for Denied {}

/// The observed program printed more than `limit` bytes under its debugger (`seen`).
#[derive(Debug)]
pub struct Flooded {
    pub seen: u64,
    pub limit: u64,
}

impl std::fmt::Display for Flooded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the program printed more than {} bytes under its debugger ({} read, the rest dropped)",
            self.limit, self.seen
        )
    }
}

impl std::error::Error for Flooded {}

static FLOODED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts the observed program's output under a debugger (`total`: all of it so far, in
/// one session); past the sandbox's output limit it is [`flooded`]. Outside the sandbox
/// the output is only capped where it is kept.
pub fn note_output(total: u64) {
    if let Some(limit) = jail().and_then(|j| j.output_limit())
        && total > limit
    {
        FLOODED.fetch_max(total, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Whether the observed program's output under a debugger passed the sandbox's limit.
pub fn flooded() -> Option<Flooded> {
    let seen = FLOODED.load(std::sync::atomic::Ordering::SeqCst);
    let limit = jail()?.output_limit()?;
    (seen > 0).then_some(Flooded { seen, limit })
}

/// The program's network attempts under its debugger so far (only known in the sandbox).
pub fn denied() -> Option<Denied> {
    let calls = jail()?.evidence();
    (!calls.is_empty()).then_some(Denied(calls))
}

/// The [`Interfered`] that `e` is or wraps, if any.
pub fn interfered(e: &anyhow::Error) -> Option<&Interfered> {
    e.chain().find_map(|c| c.downcast_ref::<Interfered>())
}

/// Where `Cmd::untrusted` commands run when golab observes a student's program inside
/// the grader's sandbox. The grader (`grade::sandbox::jail`) implements it and installs
/// it with [`confine`]; this layer only knows the interface, so the VM and process layer
/// does not import the grader.
pub trait Confinement: Send + Sync {
    /// The process that runs `program args` inside the sandbox.
    fn command(
        &self,
        program: &str,
        args: &[String],
        envs: &[(String, String)],
        cwd: Option<&Path>,
    ) -> Command;
    /// A TCP connection to a tool started inside it (dlv's API).
    fn connect(&self, addr: &str) -> std::io::Result<std::net::TcpStream>;
    /// Did the observed program stop or kill its debugger? (starts with [`INTERFERENCE`])
    fn interference(&self) -> Option<String>;
    /// The observed program's calls that the sandbox refused and recorded as evidence
    /// (a connect to an address outside the loopback), in order.
    fn evidence(&self) -> Vec<String> {
        Vec::new()
    }
    /// The bytes the observed program may print (stdout and stderr together).
    fn output_limit(&self) -> Option<u64> {
        None
    }
}

/// The environment variable that names the sandbox golab observes in (set by the
/// grader for the `golab run` it starts as the observer).
pub const JAIL_ENV: &str = "GOLAB_JAIL";

static CONFINEMENT: std::sync::OnceLock<&'static dyn Confinement> = std::sync::OnceLock::new();

/// Installs the sandbox untrusted commands run in, for the rest of the process.
pub fn confine(c: &'static dyn Confinement) {
    let _ = CONFINEMENT.set(c);
}

/// The installed sandbox. A process that was handed one (`GOLAB_JAIL`) but did not
/// install it stops here: running the student's program unsandboxed is never the
/// fallback.
fn jail() -> Option<&'static dyn Confinement> {
    if let Some(c) = CONFINEMENT.get() {
        return Some(*c);
    }
    if std::env::var_os(JAIL_ENV).is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "golab: {JAIL_ENV} is set but no sandbox was installed; refusing to run unsandboxed"
        );
        std::process::exit(2);
    }
    None
}

/// Did the observed program stop or kill its debugger? (Only known in the sandbox.)
pub fn interference() -> Option<Interfered> {
    let why = jail().and_then(|j| j.interference())?;
    let why = why.strip_prefix(INTERFERENCE).unwrap_or(&why).trim();
    Some(Interfered(why.to_string()))
}

/// A TCP connection to a tool started with `Cmd::untrusted` (dlv's API).
pub fn connect_tcp(addr: &str) -> std::io::Result<std::net::TcpStream> {
    if let Some(j) = jail() {
        return j.connect(addr);
    }
    std::net::TcpStream::connect(addr)
}

/// Is this process observing inside the grader's sandbox?
pub fn jailed() -> bool {
    jail().is_some()
}

impl Cmd {
    pub fn new(program: impl AsRef<Path>) -> Cmd {
        Cmd {
            program: program.as_ref().to_string_lossy().into_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            cwd: None,
            deadline: None,
            untrusted: false,
        }
    }
    /// This command runs the student's program.
    pub fn untrusted(&mut self) -> &mut Cmd {
        self.untrusted = true;
        self
    }
    pub fn arg(&mut self, a: impl AsRef<std::ffi::OsStr>) -> &mut Cmd {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&mut self, a: I) -> &mut Cmd {
        for x in a {
            self.arg(x);
        }
        self
    }
    pub fn env(&mut self, k: impl Into<String>, v: impl AsRef<std::ffi::OsStr>) -> &mut Cmd {
        self.envs
            .push((k.into(), v.as_ref().to_string_lossy().into_owned()));
        self
    }
    pub fn envs<'a, I: IntoIterator<Item = (&'a String, &'a String)>>(&mut self, e: I) -> &mut Cmd {
        for (k, v) in e {
            self.env(k.clone(), v);
        }
        self
    }
    pub fn deadline(&mut self, d: Duration) -> &mut Cmd {
        self.deadline = Some(d);
        self
    }
    pub fn current_dir(&mut self, d: impl AsRef<Path>) -> &mut Cmd {
        self.cwd = Some(d.as_ref().to_path_buf());
        self
    }
}

impl SshMaster {
    fn start(s: &Ssh) -> Result<SshMaster> {
        // A short folder of its own: a unix socket's path has ~107 bytes at most.
        let dir = tempfile::Builder::new()
            .prefix("golab-ssh-")
            .tempdir_in("/tmp")
            .context("cannot make a folder for the ssh control socket")?;
        let socket = dir.path().join("c");
        let mut c = Machine::ssh_unshared(s);
        c.args(["-M", "-N", "-o", "ControlPersist=no", "-o"])
            .arg(format!("ControlPath={}", socket.display()))
            .args([
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=8",
            ])
            .arg(format!("{}@127.0.0.1", s.user));
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // Even a SIGKILL of golab ends the master: the kernel kills it with its parent.
        crate::sys::proc::die_with_parent(&mut c);
        let mut g = exec::Group::spawn(c, "ssh (shared connection)")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = g.child_mut().try_wait()? {
                let mut err = String::new();
                if let Some(mut e) = g.child_mut().stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                bail!("the shared ssh connection ended ({st}): {}", err.trim());
            }
            if socket.exists() {
                let mut check = Machine::ssh_unshared(s);
                check
                    .args(["-o"])
                    .arg(format!("ControlPath={}", socket.display()))
                    .args(["-O", "check"])
                    .arg(format!("{}@127.0.0.1", s.user));
                if exec::run(check, "ssh -O check", Duration::from_secs(10))
                    .map(|o| o.ok())
                    .unwrap_or(false)
                {
                    break;
                }
            }
            if std::time::Instant::now() >= deadline {
                g.kill();
                bail!("the shared ssh connection did not come up in 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(SshMaster {
            group: std::sync::Mutex::new(Some(g)),
            socket,
            _dir: dir,
        })
    }
}

/// Quotes a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl Machine {
    pub fn name(&self) -> String {
        match self {
            Machine::Host => "host".into(),
            Machine::Ssh(s) => format!("vm {}", s.name),
        }
    }

    /// The same machine, its commands sharing one ssh connection that lives as long as
    /// the returned value (and its clones). When the master cannot be started, the
    /// machine is returned as it was (each command connects anew) with the reason.
    pub fn sharing_one_connection(self) -> (Machine, Option<String>) {
        let Machine::Ssh(s) = &self else {
            return (self, None);
        };
        if s.master.is_some() {
            return (self, None);
        }
        match SshMaster::start(s) {
            Ok(m) => {
                let mut s = s.clone();
                s.master = Some(std::sync::Arc::new(m));
                (Machine::Ssh(s), None)
            }
            Err(e) => (self, Some(format!("{e:#}: each command connects anew"))),
        }
    }

    /// The control socket of the shared connection, when there is one.
    pub fn control_socket(&self) -> Option<&Path> {
        match self {
            Machine::Ssh(Ssh {
                master: Some(m), ..
            }) => Some(&m.socket),
            _ => None,
        }
    }

    /// The ssh command line to the guest, without a remote command.
    fn ssh(s: &Ssh) -> Command {
        let mut c = Self::ssh_unshared(s);
        if let Some(m) = &s.master {
            // A master that died leaves a dead socket: ssh then connects directly.
            c.arg("-o")
                .arg(format!("ControlPath={}", m.socket.display()))
                .args(["-o", "ControlMaster=no"]);
        }
        c.arg(format!("{}@127.0.0.1", s.user));
        c
    }

    fn ssh_unshared(s: &Ssh) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-i").arg(&s.key).arg("-p").arg(s.port.to_string());
        c.args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
        ]);
        c
    }

    /// The process that runs `cmd` on this machine.
    pub fn command(&self, cmd: &Cmd) -> Command {
        match self {
            Machine::Host => {
                if cmd.untrusted
                    && let Some(j) = jail()
                {
                    return j.command(&cmd.program, &cmd.args, &cmd.envs, cmd.cwd.as_deref());
                }
                let mut c = Command::new(&cmd.program);
                c.args(&cmd.args);
                c.envs(cmd.envs.iter().map(|(k, v)| (k, v)));
                if let Some(d) = &cmd.cwd {
                    c.current_dir(d);
                }
                c
            }
            Machine::Ssh(s) => {
                let mut line = String::new();
                if let Some(d) = &cmd.cwd {
                    line.push_str(&format!("cd {} && ", shell_quote(&d.to_string_lossy())));
                }
                // A login shell's PATH (the provisioner puts Go and dlv on it).
                line.push_str("exec ");
                if let Some(d) = cmd.deadline {
                    line.push_str(&format!("timeout -k 5 {} ", d.as_secs().max(1) + 5));
                }
                line.push_str("env");
                for (k, v) in &cmd.envs {
                    line.push_str(&format!(" {}", shell_quote(&format!("{k}={v}"))));
                }
                line.push(' ');
                line.push_str(&shell_quote(&cmd.program));
                for a in &cmd.args {
                    line.push(' ');
                    line.push_str(&shell_quote(a));
                }
                let mut c = Self::ssh(s);
                c.arg("--").arg(format!("bash -lc {}", shell_quote(&line)));
                c
            }
        }
    }

    /// Runs a command to completion (see `exec::run`).
    pub fn run(&self, cmd: &Cmd, label: &str, timeout: Duration) -> Result<exec::Captured> {
        exec::run(self.command(cmd), label, timeout)
    }

    /// A fresh folder on the machine; on the host it is removed when `TempDir` drops.
    pub fn temp_dir(&self) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
        match self {
            Machine::Host => {
                let t = tempfile::Builder::new().prefix("golab-").tempdir()?;
                Ok((t.path().to_path_buf(), Some(t)))
            }
            Machine::Ssh(_) => {
                let out = self.run(
                    Cmd::new("mktemp").args(["-d", "/tmp/golab-XXXXXX"]),
                    "mktemp",
                    Duration::from_secs(60),
                )?;
                if !out.ok() {
                    bail!(
                        "cannot make a folder on {}: {}",
                        self.name(),
                        out.combined().trim()
                    );
                }
                Ok((PathBuf::from(out.stdout.trim()), None))
            }
        }
    }

    /// Copies the files (not subfolders) of a local folder into a folder on the machine.
    pub fn copy_files_in(&self, local: &Path, remote: &Path) -> Result<()> {
        let files: Vec<PathBuf> = std::fs::read_dir(local)?
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.path())
            .collect();
        match self {
            Machine::Host => {
                std::fs::create_dir_all(remote)?;
                for f in files {
                    std::fs::copy(&f, remote.join(f.file_name().unwrap_or_default()))
                        .with_context(|| format!("cannot copy {}", f.display()))?;
                }
                Ok(())
            }
            Machine::Ssh(_) => {
                for f in files {
                    let data = std::fs::read(&f)?;
                    let dest = remote.join(f.file_name().unwrap_or_default());
                    self.put(&data, &dest)?;
                }
                Ok(())
            }
        }
    }

    /// Writes bytes into a file on the machine (over ssh's stdin for a VM).
    pub fn put(&self, data: &[u8], remote: &Path) -> Result<()> {
        match self {
            Machine::Host => Ok(std::fs::write(remote, data)?),
            Machine::Ssh(s) => {
                use std::io::Write;
                let mut c = Self::ssh(s);
                let dir = remote.parent().unwrap_or(Path::new("/"));
                c.arg("--").arg(format!(
                    "mkdir -p {} && cat > {}",
                    shell_quote(&dir.to_string_lossy()),
                    shell_quote(&remote.to_string_lossy())
                ));
                c.stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                let mut g = exec::Group::spawn(c, "ssh (copy in)")?;
                g.child_mut()
                    .stdin
                    .take()
                    .context("ssh stdin")?
                    .write_all(data)?;
                let st = g.wait_deadline(std::time::Instant::now() + Duration::from_secs(300))?;
                if !st.success() {
                    bail!("copying {} into {} failed", remote.display(), self.name());
                }
                Ok(())
            }
        }
    }

    /// A local copy of a file on the machine (the binary, for the in-process ELF reader).
    pub fn fetch(&self, remote: &Path, local: &Path) -> Result<()> {
        match self {
            Machine::Host => {
                if remote != local {
                    std::fs::copy(remote, local)?;
                }
                Ok(())
            }
            Machine::Ssh(s) => {
                let mut c = Self::ssh(s);
                c.arg("--")
                    .arg(format!("cat {}", shell_quote(&remote.to_string_lossy())));
                let out = c.stdin(Stdio::null()).output().context("ssh (copy out)")?;
                if !out.status.success() {
                    bail!(
                        "copying {} out of {} failed: {}",
                        remote.display(),
                        self.name(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                Ok(std::fs::write(local, out.stdout)?)
            }
        }
    }

    /// dlv's `--listen` on the machine, and how to reach the address it prints.
    pub fn dlv_listen(&self) -> String {
        match self {
            Machine::Host => "127.0.0.1:0".into(),
            // User-mode networking forwards 127.0.0.1:dlv_port to the guest's port.
            Machine::Ssh(s) => format!("{}:{}", s.dlv_listen_host, s.guest_dlv_port),
        }
    }

    pub fn dlv_connect(&self, printed: &str) -> String {
        match self {
            Machine::Host => printed.to_string(),
            Machine::Ssh(s) => format!("127.0.0.1:{}", s.dlv_port),
        }
    }

    /// The first `name` on the machine's PATH.
    pub fn which(&self, name: &str) -> Option<PathBuf> {
        match self {
            Machine::Host => crate::exec::which(name),
            Machine::Ssh(_) => {
                let out = self
                    .run(
                        Cmd::new("sh").args(["-c", &format!("command -v {}", shell_quote(name))]),
                        "command -v",
                        Duration::from_secs(60),
                    )
                    .ok()?;
                let p = out.stdout.trim();
                (out.ok() && p.starts_with('/')).then(|| PathBuf::from(p))
            }
        }
    }

    /// Logical CPUs as the Go runtime counts them (the process's affinity mask).
    pub fn ncpu(&self) -> Result<u64> {
        match self {
            Machine::Host => Ok(crate::sys::host::logical_cpus() as u64),
            Machine::Ssh(_) => self.number(&mut Cmd::new("nproc")),
        }
    }

    /// The page size the kernel reports in the auxiliary vector.
    pub fn page_size(&self) -> Result<u64> {
        match self {
            Machine::Host => Ok(crate::sys::host::page_size()),
            Machine::Ssh(_) => self.number(Cmd::new("getconf").arg("PAGESIZE")),
        }
    }

    fn number(&self, c: &mut Cmd) -> Result<u64> {
        let out = self.run(c, "a fact of the machine", Duration::from_secs(60))?;
        out.stdout
            .trim()
            .parse()
            .with_context(|| format!("{} answered {:?}", self.name(), out.combined().trim()))
    }

    pub fn is_file(&self, p: &Path) -> bool {
        match self {
            Machine::Host => p.is_file(),
            Machine::Ssh(_) => self
                .run(
                    Cmd::new("test").arg("-f").arg(p),
                    "test -f",
                    Duration::from_secs(60),
                )
                .map(|o| o.ok())
                .unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dlv_built_from_source_is_pinned_by_url_and_sha256() {
        let sha = "2d596989a280c67c6d9c57696021105e735b9fee46c922ceb93de7be86383425";
        let d = DlvSource::source(
            "v1.9.1",
            "http://127.0.0.1:8000/delve-1.9.1.src.tar.xz",
            sha,
        )
        .unwrap();
        assert_eq!(d.version(), Some("1.9.1"));
        assert_eq!(
            d.provisioner_vars(),
            vec![
                ("GOLAB_DLV_SOURCE", "source".to_string()),
                ("GOLAB_DLV_VERSION", "1.9.1".to_string()),
                (
                    "GOLAB_DLV_SRC_URL",
                    "http://127.0.0.1:8000/delve-1.9.1.src.tar.xz".to_string()
                ),
                ("GOLAB_DLV_SRC_SHA256", sha.to_string()),
            ]
        );
        assert_eq!(d.source_artifact().unwrap().name, "delve-1.9.1.src.tar.xz");
        let e = |r: Result<DlvSource>| format!("{:#}", r.unwrap_err());
        assert!(e(DlvSource::source("v1.9.1", "http://h/d.tar.xz", "abc")).contains("64 hex"));
        assert!(e(DlvSource::source("apt", "http://h/d.tar.xz", sha)).contains("--dlv"));
        assert!(e(DlvSource::source("v1.9.1", "http://h/", sha)).contains("file name"));
        assert!(e(DlvSource::source("v1.9.1", "delve.tar.xz", sha)).contains("URL"));
        assert_eq!(DlvSource::Apt.version(), None);
        assert_eq!(DlvSource::parse("v1.9.1").version(), Some("1.9.1"));
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(shell_quote("runtime.rt0_go"), "runtime.rt0_go");
        assert_eq!(shell_quote("all=-l -N"), "'all=-l -N'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn a_vm_command_runs_through_ssh_with_its_folder_and_environment() {
        let m = Machine::Ssh(Ssh {
            name: "lab".into(),
            user: "golab".into(),
            port: 2222,
            key: "/k".into(),
            dlv_port: 3333,
            guest_dlv_port: 2345,
            dlv_listen_host: "0.0.0.0".into(),
            master: None,
        });
        let mut cmd = Cmd::new("go");
        cmd.args(["build", "-gcflags", "all=-l -N"])
            .env("GOTOOLCHAIN", "local")
            .current_dir("/tmp/w");
        let c = m.command(&cmd);
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(c.get_program(), "ssh");
        assert!(
            args.contains(&"2222".to_string()) && args.contains(&"golab@127.0.0.1".to_string())
        );
        let remote = args.last().unwrap();
        assert!(
            remote.starts_with("bash -lc ")
                && remote.contains("cd /tmp/w")
                && remote.contains("GOTOOLCHAIN=local")
                && remote.contains("all=-l -N"),
            "{remote}"
        );
        assert_eq!(m.dlv_listen(), "0.0.0.0:2345");
        assert_eq!(m.dlv_connect("[::]:2345"), "127.0.0.1:3333");
    }
}

//! The `qemu` provider of `golab up`: a lab VM on this machine, run the way Lima runs
//! one. Each machine is a qcow2 overlay on a shared base image (scripts/vm-image.sh), a
//! NoCloud seed that makes the `golab` user and runs the provisioner, QEMU daemonized
//! with its pid tracked, ssh and dlv forwarded on 127.0.0.1, and readiness reported
//! stage by stage, each with a deadline.
//!
//! A machine is a folder, `$GOLAB_STATE/machines/NAME` (default
//! `~/.local/state/golab/machines/NAME`): `overlay.qcow2`, `seed.img` (a FAT `cidata` seed written by `seed.rs`, from `cidata/`),
//! `id_ed25519{,.pub}`, `share/` (the Go tarball, shared read-only over virtio-9p with
//! mount tag `golabcache`, linked into the guest's /var/cache/golab), `machine.json` (what it was made from), `ports.json`,
//! `qemu.pid`, `qmp.sock`, `serial.log`, `qemu.log`, and `stage`: how far creation got,
//! so that an `up` that died half-way is resumed or cleaned, never left broken.
//!
//! Not for: building the base image (scripts/vm-image.sh), or running labs inside the
//! VM: that goes through [`super::Machine`] (see [`LabVm::machine`]).

mod accel;
mod cidata;
mod disk;
mod launch;
mod lifecycle;
mod process;
mod ready;
mod state;
#[cfg(test)]
mod tests;

use super::{Machine, Ssh};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The guest port dlv listens on; the host's `dlv_port` is forwarded to it.
pub const GUEST_DLV_PORT: u16 = 2345;
const USER: &str = "golab";
const SHARE_TAG: &str = "golabcache";

pub use super::DlvSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Accel {
    /// KVM (Linux) or HVF (Intel macOS) when a short probe boot shows that it works,
    /// else TCG.
    Auto,
    Kvm,
    Hvf,
    Tcg,
}

#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The base image (qcow2 or raw); each machine writes only to its own overlay.
    pub image: PathBuf,
    /// For direct kernel boot (root=/dev/vda); default: `IMAGE.vmlinuz`/`IMAGE.initrd`
    /// beside the image when they are there, else the image boots with its own loader.
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cpus: u32,
    pub memory_mib: u32,
    /// A local `go*.linux-amd64.tar.gz`, shared into the guest read-only.
    pub go_tarball: PathBuf,
    pub go_version: String,
    pub go_sha256: String,
    pub dlv_source: DlvSource,
    /// With `DlvSource::Source`: the source tarball, already fetched on the host,
    /// shared into the guest like the Go tarball (else the guest downloads its URL).
    pub dlv_tarball: Option<PathBuf>,
    /// A baked image's tools (its manifest's): the image is provisioned already, so
    /// nothing is installed, and readiness checks that the guest answers exactly these.
    pub baked: Option<Tools>,
    pub accel: Accel,
    /// Point the guest's apt at a Debian mirror (resolved on the host, written into
    /// /etc/hosts and sources.list at every boot): `host` for the one this host's apt
    /// uses (read from /etc/apt), or a URI. None (the default): the guest's apt is left
    /// as its image has it. `GOLAB_DEBIAN_MIRROR` asks for a URI too.
    pub apt_mirror: Option<String>,
    /// No progress lines on stderr.
    pub quiet: bool,
}

impl UpOptions {
    /// The course's pins (toolchains.txt: Go, dlv from `go install`) on 2 CPUs and 2 GiB.
    pub fn new(image: impl Into<PathBuf>, go_tarball: impl Into<PathBuf>) -> UpOptions {
        UpOptions {
            image: image.into(),
            kernel: None,
            initrd: None,
            cpus: 2,
            memory_mib: 2048,
            go_tarball: go_tarball.into(),
            go_version: crate::pins::course().go.version.into(),
            go_sha256: crate::pins::course().go.tarball_sha256.into(),
            dlv_source: DlvSource::GoInstall(crate::pins::course().dlv_tag()),
            dlv_tarball: None,
            baked: None,
            accel: Accel::Auto,
            apt_mirror: None,
            quiet: false,
        }
    }
}

/// How far a machine's creation got (the `stage` file). Ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Files are being made: nothing in the folder can be trusted yet.
    Creating,
    /// Disk, seed, key and share are made; QEMU has not been started.
    Created,
    /// QEMU was started for the first boot: cloud-init is provisioning.
    Booting,
    /// cloud-init finished without error.
    Provisioned,
    /// The tools answered at the pinned versions: the machine can be used.
    Ready,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Creating => "creating",
            Stage::Created => "created",
            Stage::Booting => "booting",
            Stage::Provisioned => "provisioned",
            Stage::Ready => "ready",
        }
    }
    fn parse(s: &str) -> Option<Stage> {
        [
            Stage::Creating,
            Stage::Created,
            Stage::Booting,
            Stage::Provisioned,
            Stage::Ready,
        ]
        .into_iter()
        .find(|st| st.as_str() == s.trim())
    }
}

/// What `up` does with a machine folder, from its stage and whether its QEMU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpStep {
    /// Ready and running: say so, do nothing.
    AlreadyRunning,
    /// No folder: make one.
    Create,
    /// Left half-made (or its first boot died): kill what runs, empty it, make it anew.
    Clean,
    /// Provisioned before and stopped: boot it again (no provisioning).
    Resume,
    /// Running but not yet ready (an `up` died while waiting): go on waiting.
    Wait,
}

fn plan(stage: Option<Stage>, running: bool) -> UpStep {
    match (stage, running) {
        (None, false) => UpStep::Create,
        (Some(Stage::Ready), true) => UpStep::AlreadyRunning,
        (Some(Stage::Booting | Stage::Provisioned), true) => UpStep::Wait,
        (Some(Stage::Provisioned | Stage::Ready), false) => UpStep::Resume,
        // No stage, or files half made, yet a QEMU runs; or the first boot died, so
        // cloud-init's once-per-instance work may be half done: start over.
        _ => UpStep::Clean,
    }
}

/// What a machine was made from (`machine.json`): a resumed machine keeps its disk's base.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Made {
    image: PathBuf,
    image_format: String,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    go_version: String,
    go_sha256: String,
    dlv_source: DlvSource,
    instance_id: String,
    /// Made from a baked image: the tools its manifest lists.
    #[serde(default)]
    baked: Option<Tools>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub ssh: u16,
    pub dlv: u16,
}

/// The accelerator a machine runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccelUsed {
    Kvm,
    /// macOS's Hypervisor.framework (Intel Macs: it runs x86_64 guests only there).
    Hvf,
    Tcg,
}

/// How long one stage of `up` took.
#[derive(Debug, Clone)]
pub struct StageTime {
    pub stage: String,
    pub took: Duration,
}

/// The tools in the guest, as they answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tools {
    pub go: String,
    pub dlv: String,
    pub gdb: String,
    pub readelf: String,
}

/// A machine that `up` brought to Ready (or found running).
#[derive(Debug, Clone)]
pub struct LabVm {
    pub name: String,
    pub dir: PathBuf,
    pub pid: u32,
    pub ports: Ports,
    pub key: PathBuf,
    pub accel: AccelUsed,
    pub already_running: bool,
    /// Booted again from an already provisioned disk.
    pub resumed: bool,
    pub stages: Vec<StageTime>,
    pub tools: Tools,
    /// Things the user should know (TCG instead of KVM, options a resumed machine ignores).
    pub notes: Vec<String>,
}

impl LabVm {
    /// The machine as the probes reach it.
    pub fn machine(&self) -> Machine {
        Machine::Ssh(self.ssh())
    }
    pub fn ssh(&self) -> Ssh {
        ssh_of(&self.name, &self.key, self.ports)
    }
}

fn ssh_of(name: &str, key: &Path, ports: Ports) -> Ssh {
    Ssh {
        name: name.into(),
        user: USER.into(),
        port: ports.ssh,
        key: key.to_path_buf(),
        dlv_port: ports.dlv,
        guest_dlv_port: GUEST_DLV_PORT,
        dlv_listen_host: "0.0.0.0".into(),
        master: None,
    }
}

/// What `status` sees in a machine's folder.
#[derive(Debug, Clone)]
pub struct MachineStatus {
    pub name: String,
    pub dir: PathBuf,
    pub exists: bool,
    pub stage: Option<Stage>,
    pub pid: Option<u32>,
    pub ports: Option<Ports>,
}

impl MachineStatus {
    pub fn running(&self) -> bool {
        self.pid.is_some()
    }
}

impl std::fmt::Display for MachineStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.exists {
            return write!(f, "{}: no such machine", self.name);
        }
        let stage = self.stage.map(Stage::as_str).unwrap_or("unknown");
        match (self.pid, self.ports) {
            (Some(pid), Some(p)) => write!(
                f,
                "{}: running (pid {pid}, {stage}), ssh 127.0.0.1:{}, dlv 127.0.0.1:{}",
                self.name, p.ssh, p.dlv
            ),
            (Some(pid), None) => write!(f, "{}: running (pid {pid}, {stage})", self.name),
            (None, _) => write!(f, "{}: stopped ({stage})", self.name),
        }
    }
}

/// How `down` stopped a machine, gentlest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    NotRunning,
    /// `systemctl poweroff` over ssh.
    PoweredOff,
    /// The ACPI power button, through QEMU's monitor (QMP).
    AcpiPowerdown,
    /// SIGTERM to QEMU (the guest did not shut down).
    Terminated,
    Killed,
}

/// Deadlines of `up`'s stages; TCG emulates every instruction, so its are longer.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    ssh: Duration,
    first_boot: Duration,
    resume_boot: Duration,
    tools: Duration,
}

impl Deadlines {
    fn for_accel(a: AccelUsed) -> Deadlines {
        let s = |secs: u64| {
            // CI machines slower than ours may stretch them: GOLAB_VM_TIMEOUT_SCALE=2.
            let scale: f64 = std::env::var("GOLAB_VM_TIMEOUT_SCALE")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|x: &f64| *x > 0.0)
                .unwrap_or(1.0);
            Duration::from_secs_f64(secs as f64 * scale)
        };
        match a {
            AccelUsed::Kvm | AccelUsed::Hvf => Deadlines {
                ssh: s(180),
                first_boot: s(1200),
                resume_boot: s(300),
                tools: s(120),
            },
            AccelUsed::Tcg => Deadlines {
                ssh: s(600),
                first_boot: s(2400),
                resume_boot: s(600),
                tools: s(300),
            },
        }
    }
}

/// The qemu provider: machines under one state folder.
pub struct Qemu {
    root: PathBuf,
}

impl Qemu {
    /// Machines under `$GOLAB_STATE`, else `~/.local/state/golab`.
    pub fn new() -> Result<Qemu> {
        Ok(Qemu::with_state_root(super::state_root()?))
    }

    pub fn with_state_root(root: impl Into<PathBuf>) -> Qemu {
        Qemu { root: root.into() }
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join("machines").join(name)
    }
}

// ---- ssh and QMP -------------------------------------------------------------------------

fn ssh_base(key: &Path, port: u16) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F")
        .arg("/dev/null")
        .arg("-i")
        .arg(key)
        .arg("-p")
        .arg(port.to_string());
    for o in [
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "BatchMode=yes",
        "ConnectTimeout=5",
        "LogLevel=ERROR",
        "IdentitiesOnly=yes",
        "ServerAliveInterval=15",
        "ServerAliveCountMax=8",
    ] {
        c.arg("-o").arg(o);
    }
    c.arg(format!("{USER}@127.0.0.1"));
    c
}

/// Progress lines on stderr: `golab up NAME: ...`.
struct Say {
    name: String,
    quiet: bool,
    t0: Instant,
    /// The last `every` window a line was printed in (polls come faster than windows).
    shown: std::cell::Cell<u64>,
}

impl Say {
    fn stage(&self, what: &str) {
        self.line(&format!(
            "[{:>5.1}s] {what}",
            self.t0.elapsed().as_secs_f64()
        ));
    }
    fn line(&self, what: &str) {
        if !self.quiet {
            eprintln!("golab up {}: {what}", self.name);
        }
    }
    /// A line every `secs` seconds of a wait that began at `since`.
    fn every(&self, since: Instant, secs: u64, what: &str) {
        let e = since.elapsed().as_secs();
        if e >= secs && e / secs != self.shown.get() {
            self.shown.set(e / secs);
            self.line(&format!("  {what} ({e}s)"));
        }
    }
}

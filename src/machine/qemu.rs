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

use super::{Machine, Ssh};
use crate::exec;
use crate::files::write_atomic;
use crate::sys;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER_DATA: &str = include_str!("cloudinit/user-data.yaml.j2");
const META_DATA: &str = include_str!("cloudinit/meta-data.yaml.j2");
/// The lab VM's provisioner, the same one the Vagrantfile runs.
const PROVISIONER: &str = include_str!("../../provision/lab-vm.sh");

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

    /// Brings machine `name` to Ready: creates it, resumes it, or finds it running.
    pub fn up(&self, name: &str, opts: &UpOptions) -> Result<LabVm> {
        check_name(name)?;
        let _lock = Lock::take(&self.root, name)?;
        let dir = self.dir(name);
        let say = Say {
            name: name.to_string(),
            quiet: opts.quiet,
            t0: Instant::now(),
            shown: Default::default(),
        };
        let stage = read_stage(&dir);
        let pid = running_pid(&dir);
        let plan = plan(if dir.exists() { stage } else { None }, pid.is_some());
        let mut notes = Vec::new();
        match plan {
            UpStep::AlreadyRunning => {
                let ports = read_ports(&dir)?;
                let made = read_made(&dir)?;
                say.line(&format!(
                    "already running (pid {}), ssh on 127.0.0.1:{}: nothing to do",
                    pid.unwrap_or(0),
                    ports.ssh
                ));
                return Ok(LabVm {
                    name: name.into(),
                    key: dir.join("id_ed25519"),
                    pid: pid.unwrap_or(0),
                    ports,
                    accel: read_accel(&dir).unwrap_or(AccelUsed::Tcg),
                    already_running: true,
                    resumed: false,
                    stages: Vec::new(),
                    tools: Tools::default(),
                    notes: differences(&made, opts),
                    dir,
                });
            }
            UpStep::Clean => {
                say.line(&format!(
                    "the last `up` stopped half-way ({}): starting over",
                    stage.map(Stage::as_str).unwrap_or("no stage")
                ));
                if let Some(p) = pid {
                    let _ = stop_pid(p, Duration::from_secs(5));
                }
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
            }
            _ => {}
        }
        let mut stages = Vec::new();
        if matches!(plan, UpStep::Create | UpStep::Clean) {
            let t = Instant::now();
            say.stage("create: overlay disk, ssh key, cloud-init seed");
            if let Err(e) = self.create(name, &dir, opts) {
                // Nothing runs yet: a folder that could not be made is not kept.
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
            stages.push(StageTime {
                stage: "create".into(),
                took: t.elapsed(),
            });
        } else {
            notes.extend(differences(&read_made(&dir)?, opts));
        }
        let made = read_made(&dir)?;
        let first_boot = read_stage(&dir) < Some(Stage::Provisioned);

        // From here on, a failure kills the QEMU this `up` started or waited for: the
        // stage file says what the next `up` does with the folder.
        let (pid, accel, ports) = match plan {
            UpStep::Wait => {
                let accel = read_accel(&dir).unwrap_or(AccelUsed::Tcg);
                say.line(&format!(
                    "running (pid {}) but not ready: waiting for it",
                    pid.unwrap_or(0)
                ));
                (pid.unwrap_or(0), accel, read_ports(&dir)?)
            }
            _ => {
                let t = Instant::now();
                let accel = self.choose_accel(opts.accel, &made, &say, &mut notes)?;
                if !first_boot {
                    say.line("provisioned before: booting it again (no provisioning)");
                }
                say.stage(&format!(
                    "process up: qemu-system-x86_64 ({}, {} CPUs, {} MiB)",
                    accel_name(accel),
                    opts.cpus,
                    opts.memory_mib
                ));
                if first_boot {
                    write_stage(&dir, Stage::Booting)?;
                }
                let (pid, ports) = start(&dir, name, &made, opts, accel)?;
                stages.push(StageTime {
                    stage: "process up".into(),
                    took: t.elapsed(),
                });
                (pid, accel, ports)
            }
        };
        let mut guard = Kill { pid, armed: true };
        let vm = LabVm {
            name: name.into(),
            dir: dir.clone(),
            pid,
            ports,
            key: dir.join("id_ed25519"),
            accel,
            already_running: false,
            resumed: !first_boot,
            stages,
            tools: Tools::default(),
            notes,
        };
        let vm = self.wait_ready(vm, &made, first_boot, &say)?;
        guard.armed = false;
        say.line(&format!(
            "ready in {:.0}s: ssh -p {} {USER}@127.0.0.1 (key {}), dlv on 127.0.0.1:{}",
            say.t0.elapsed().as_secs_f64(),
            vm.ports.ssh,
            vm.key.display(),
            vm.ports.dlv
        ));
        Ok(vm)
    }

    fn create(&self, name: &str, dir: &Path, opts: &UpOptions) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        write_stage(dir, Stage::Creating)?;
        let image = std::fs::canonicalize(&opts.image).with_context(|| {
            format!(
                "no base image at {} (scripts/vm-image.sh builds one)",
                opts.image.display()
            )
        })?;
        let (kernel, initrd) = boot_files(&image, opts)?;
        if opts.baked.is_none() {
            check_sha256(&opts.go_tarball, &opts.go_sha256)?;
        }
        let image_format = image_format(&image)?;

        let key = dir.join("id_ed25519");
        let mut c = Command::new("ssh-keygen");
        c.args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("golab-{name}"))
            .arg("-f")
            .arg(&key);
        must(
            exec::run(c, "ssh-keygen", Duration::from_secs(30))?,
            "ssh-keygen",
        )?;

        let mut c = Command::new("qemu-img");
        c.args(["create", "-q", "-f", "qcow2", "-F", &image_format, "-b"])
            .arg(&image)
            .arg(dir.join("overlay.qcow2"));
        must(
            exec::run(c, "qemu-img create", Duration::from_secs(60))?,
            "qemu-img create",
        )?;

        // Only the tarballs are shared, under the names the provisioner looks for.
        let share = dir.join("share");
        std::fs::create_dir_all(&share)?;
        let mut shared = Vec::new();
        if opts.baked.is_none() {
            shared.push((
                opts.go_tarball.clone(),
                format!("go{}.linux-amd64.tar.gz", opts.go_version),
            ));
        }
        if let (Some(src), Some(a)) = (&opts.dlv_tarball, opts.dlv_source.source_artifact()) {
            check_sha256(src, &a.sha256)?;
            shared.push((src.clone(), a.name));
        }
        for (from, name) in shared {
            let to = share.join(name);
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).with_context(|| {
                    format!("cannot copy {} into {}", from.display(), share.display())
                })?;
            }
        }

        let instance_id = format!(
            "golab-{name}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
        );
        let public_key = std::fs::read_to_string(key.with_extension("pub"))?;
        let mirror = Mirror::asked(opts.apt_mirror.as_deref())?;
        let seed = render_seed(name, &instance_id, public_key.trim(), mirror.as_ref(), opts)?;
        let cidata = dir.join("cidata");
        write_atomic(&cidata.join("user-data"), seed.user_data.as_bytes())?;
        write_atomic(&cidata.join("meta-data"), seed.meta_data.as_bytes())?;
        super::seed::write(
            &dir.join(SEED),
            &[
                ("user-data", seed.user_data.as_bytes()),
                ("meta-data", seed.meta_data.as_bytes()),
            ],
        )?;

        let made = Made {
            image,
            image_format,
            kernel,
            initrd,
            go_version: opts.go_version.clone(),
            go_sha256: opts.go_sha256.clone(),
            dlv_source: opts.dlv_source.clone(),
            instance_id,
            baked: opts.baked.clone(),
        };
        write_atomic(
            &dir.join("machine.json"),
            serde_json::to_string_pretty(&made)?.as_bytes(),
        )?;
        write_stage(dir, Stage::Created)
    }

    fn choose_accel(
        &self,
        want: Accel,
        made: &Made,
        say: &Say,
        notes: &mut Vec<String>,
    ) -> Result<AccelUsed> {
        match want {
            Accel::Kvm => Ok(AccelUsed::Kvm),
            Accel::Hvf => Ok(AccelUsed::Hvf),
            Accel::Tcg => Ok(AccelUsed::Tcg),
            Accel::Auto => match auto_plan(
                std::env::consts::OS,
                std::env::consts::ARCH,
                kvm_usable(),
                hv_support(),
            ) {
                AutoPlan::Tcg(why) => {
                    notes.push(format!(
                        "{why}: running under TCG (software emulation, several times slower)"
                    ));
                    Ok(AccelUsed::Tcg)
                }
                AutoPlan::Probe(accel) => {
                    let (works, detail) = self.accel_probe(accel, made, say)?;
                    if works {
                        Ok(accel)
                    } else {
                        let n = format!(
                            "{} is present but a probe boot failed ({detail}): running under TCG (software emulation, several times slower)",
                            accel_name(accel).to_uppercase()
                        );
                        say.line(&n);
                        notes.push(n);
                        Ok(AccelUsed::Tcg)
                    }
                }
            },
        }
    }

    /// Boots the kernel under `accel` (KVM or HVF) for a few seconds: on nested hosts
    /// /dev/kvm answers every check yet guests hang. Remembered per host boot
    /// (`kvm-probe.json`; on macOS, without a boot id, it probes each time).
    fn accel_probe(&self, accel: AccelUsed, made: &Made, say: &Say) -> Result<(bool, String)> {
        #[derive(Serialize, Deserialize)]
        struct Probe {
            boot_id: String,
            works: bool,
            detail: String,
        }
        let boot_id = sys::host::boot_id().unwrap_or_default();
        let name = accel_name(accel);
        let file = self.root.join(format!("{name}-probe.json"));
        if let Some(p) = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Probe>(&b).ok())
            && p.boot_id == boot_id
            && !boot_id.is_empty()
        {
            return Ok((
                p.works,
                format!("{} (probed earlier since this host booted)", p.detail),
            ));
        }
        say.line(&format!(
            "probing {} with a short boot (20 s at most)",
            name.to_uppercase()
        ));
        let tmp = tempfile::Builder::new()
            .prefix("golab-kvm-probe-")
            .tempdir()?;
        let log = tmp.path().join("serial.log");
        let mut c = Command::new("qemu-system-x86_64");
        c.args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-accel",
            name,
            "-cpu",
            "host",
            "-m",
            "256",
        ]);
        c.arg("-serial").arg(format!("file:{}", log.display()));
        match (&made.kernel, &made.initrd) {
            (Some(k), i) => {
                c.arg("-kernel")
                    .arg(k)
                    .args(["-append", "console=ttyS0 panic=-1"]);
                if let Some(i) = i {
                    c.arg("-initrd").arg(i);
                }
            }
            (None, _) => {
                c.arg("-drive").arg(format!(
                    "file={},format={},if=virtio,snapshot=on",
                    made.image.display(),
                    made.image_format
                ));
            }
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("stderr"))?);
        let mut g = exec::Group::spawn(c, "qemu (accelerator probe)")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let (works, detail) = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Run /init") || text.contains("Freeing unused kernel") {
                break (
                    true,
                    format!("the kernel started under {}", name.to_uppercase()),
                );
            }
            if let Ok(Some(st)) = g.child_mut().try_wait() {
                let err = std::fs::read_to_string(tmp.path().join("stderr")).unwrap_or_default();
                break (
                    false,
                    format!(
                        "qemu exited ({st}): {}",
                        err.lines().last().unwrap_or("").trim()
                    ),
                );
            }
            if Instant::now() >= deadline {
                let seen = if text.contains("Linux version") {
                    "the kernel printed its version, then stalled"
                } else {
                    "no kernel output in 20 s"
                };
                break (false, seen.to_string());
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        g.kill();
        let p = Probe {
            boot_id,
            works,
            detail: detail.clone(),
        };
        write_atomic(&file, serde_json::to_string(&p)?.as_bytes())?;
        Ok((works, detail))
    }

    fn wait_ready(&self, mut vm: LabVm, made: &Made, first_boot: bool, say: &Say) -> Result<LabVm> {
        let dl = Deadlines::for_accel(vm.accel);
        if vm.accel == AccelUsed::Tcg {
            say.line(&format!(
                "TCG: deadlines are long (ssh {}s, {} {}s)",
                dl.ssh.as_secs(),
                if first_boot { "provisioning" } else { "boot" },
                if first_boot {
                    dl.first_boot
                } else {
                    dl.resume_boot
                }
                .as_secs()
            ));
        }
        let ssh = |cmd: &str, timeout: Duration| -> Result<exec::Captured> {
            let mut c = ssh_base(&vm.key, vm.ports.ssh);
            c.arg("--").arg(cmd);
            exec::run(c, "ssh", timeout)
        };

        let t = Instant::now();
        say.stage(&format!("ssh answers on 127.0.0.1:{}", vm.ports.ssh));
        let deadline = Instant::now() + dl.ssh;
        let mut last: String;
        loop {
            self.alive(&vm)?;
            match ssh("true", Duration::from_secs(30)) {
                Ok(c) if c.ok() => break,
                Ok(c) => last = c.combined().trim().to_string(),
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: ssh did not answer within {}s (last: {last}){}",
                    vm.name,
                    dl.ssh.as_secs(),
                    serial_tail(&vm.dir)
                );
            }
            say.every(t, 30, "waiting for sshd");
            // A refused connection costs nothing (QEMU's forward closes it at once), and
            // sshd comes up at an unknown moment: each second of polling is up to a
            // second of ready machine not used.
            std::thread::sleep(Duration::from_secs(1));
        }
        vm.stages.push(StageTime {
            stage: "ssh answers".into(),
            took: t.elapsed(),
        });

        let t = Instant::now();
        let limit = if first_boot {
            dl.first_boot
        } else {
            dl.resume_boot
        };
        // A baked image: sshd starts after cloud-init's init stage (Before=ssh.service),
        // which is everything its seed asks for (bootcmd, write_files, the user and its
        // key): the login that just worked proves it. The image's config and final
        // stages are masked at bake time (`image::build`; Python under emulation, ~25 s
        // of a boot), so there is no later result to wait for on any boot.
        if made.baked.is_some() {
            say.line("  cloud-init: user and key in place (a baked image: no provisioning)");
            if first_boot {
                write_stage(&vm.dir, Stage::Provisioned)?;
            }
            return self.check_ready_tools(vm, made, &dl, say);
        }
        say.stage(if first_boot {
            "cloud-init: user, share, provisioner (Go, dlv, gdb, binutils)"
        } else {
            "cloud-init: boot stages (already provisioned)"
        });
        let deadline = Instant::now() + limit;
        let mut ticks = 0u64;
        loop {
            self.alive(&vm)?;
            // Polled rather than `cloud-init status --wait`, so that a dropped connection
            // is only a missed poll. result.json lives in /run: written by this boot's
            // final stage (boot-finished on the disk would still be there from the first).
            let out = ssh(
                "cloud-init status 2>&1; test -f /run/cloud-init/result.json && echo this-boot-finished",
                Duration::from_secs(60),
            );
            if let Ok(c) = &out {
                let s = &c.stdout;
                // cloud-init says "error" as soon as one module failed, while later
                // stages (the provisioner) still run: judge only once it has finished.
                if s.contains("this-boot-finished") {
                    if s.contains("status: done") {
                        break;
                    }
                    let log = ssh("tail -n 40 /var/log/golab-provision.log 2>/dev/null; cloud-init status --long 2>&1 | tail -n 20", Duration::from_secs(60)).map(|c| c.combined()).unwrap_or_default();
                    bail!("{}: cloud-init failed in the guest:\n{log}", vm.name);
                }
            }
            if Instant::now() >= deadline {
                let log = ssh(
                    "tail -n 20 /var/log/golab-provision.log",
                    Duration::from_secs(30),
                )
                .map(|c| c.combined())
                .unwrap_or_default();
                bail!(
                    "{}: cloud-init did not finish within {}s; the provisioner's last lines:\n{log}",
                    vm.name,
                    limit.as_secs()
                );
            }
            ticks += 1;
            if first_boot && ticks.is_multiple_of(6) {
                let last = ssh(
                    "tail -n 1 /var/log/golab-provision.log 2>/dev/null",
                    Duration::from_secs(30),
                )
                .map(|c| c.stdout.trim().to_string())
                .unwrap_or_default();
                say.line(&format!(
                    "  provisioning ({:.0}s){}",
                    t.elapsed().as_secs_f64(),
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", shorten(&last, 100))
                    }
                ));
            }
            std::thread::sleep(Duration::from_secs(5));
        }
        if first_boot {
            write_stage(&vm.dir, Stage::Provisioned)?;
        }
        vm.stages.push(StageTime {
            stage: if first_boot {
                "cloud-init + provisioning"
            } else {
                "cloud-init (resume)"
            }
            .into(),
            took: t.elapsed(),
        });
        self.check_ready_tools(vm, made, &dl, say)
    }

    /// The tools' versions (the pins, or a baked image's manifest), then `Stage::Ready`.
    fn check_ready_tools(
        &self,
        mut vm: LabVm,
        made: &Made,
        dl: &Deadlines,
        say: &Say,
    ) -> Result<LabVm> {
        let ssh = |cmd: &str, timeout: Duration| -> Result<exec::Captured> {
            let mut c = ssh_base(&vm.key, vm.ports.ssh);
            c.arg("--").arg(cmd);
            exec::run(c, "ssh", timeout)
        };
        let t = Instant::now();
        say.stage(if made.baked.is_some() {
            "tools as the image's manifest lists them: go, dlv, gdb, readelf"
        } else {
            "tools at the pinned versions: go, dlv, gdb, readelf"
        });
        let out = ssh(
            "bash -lc 'go version; echo ---; dlv version; echo ---; gdb --version | head -n 1; echo ---; readelf --version | head -n 1'",
            dl.tools,
        )?;
        vm.tools = check_tools(&out.stdout, made).with_context(|| {
            format!(
                "{}: the provisioned tools are not right ({})",
                vm.name,
                out.stderr.trim()
            )
        })?;
        vm.stages.push(StageTime {
            stage: "tools".into(),
            took: t.elapsed(),
        });
        say.line(&format!(
            "  {}; dlv {}; {}; {}",
            vm.tools.go, vm.tools.dlv, vm.tools.gdb, vm.tools.readelf
        ));
        write_stage(&vm.dir, Stage::Ready)?;
        Ok(vm)
    }

    /// Fails with the serial log's tail when the machine's QEMU has gone.
    fn alive(&self, vm: &LabVm) -> Result<()> {
        if pid_alive(vm.pid) {
            return Ok(());
        }
        bail!(
            "{}: qemu (pid {}) exited while booting{}{}",
            vm.name,
            vm.pid,
            qemu_log_tail(&vm.dir),
            serial_tail(&vm.dir)
        )
    }

    pub fn status(&self, name: &str) -> Result<MachineStatus> {
        check_name(name)?;
        let dir = self.dir(name);
        Ok(MachineStatus {
            name: name.into(),
            exists: dir.is_dir(),
            stage: read_stage(&dir),
            pid: running_pid(&dir),
            ports: read_ports(&dir).ok(),
            dir,
        })
    }

    /// A machine that is up and ready, as the probes reach it (from any golab process).
    pub fn machine(&self, name: &str) -> Result<Machine> {
        let st = self.status(name)?;
        if !st.running() || st.stage != Some(Stage::Ready) {
            bail!("{st}: bring it up first (`golab up --provider qemu`)");
        }
        let ports = st
            .ports
            .with_context(|| format!("machine {name} has no ports.json"))?;
        Ok(Machine::Ssh(ssh_of(
            name,
            &st.dir.join("id_ed25519"),
            ports,
        )))
    }

    /// `ssh` to the machine as `golab`; add the remote command with `.arg("--").arg(...)`.
    pub fn ssh_command(&self, name: &str) -> Result<Command> {
        check_name(name)?;
        let dir = self.dir(name);
        let ports = read_ports(&dir)
            .with_context(|| format!("machine {name} has no ports: is it up? (`golab up`)"))?;
        Ok(ssh_base(&dir.join("id_ed25519"), ports.ssh))
    }

    /// Copies a local file into the guest over ssh (no shared folder involved).
    pub fn copy_in(&self, name: &str, local: &Path, remote: &str) -> Result<()> {
        let mut c = self.ssh_command(name)?;
        c.arg("--")
            .arg(format!("cat > {}", super::shell_quote(remote)));
        c.stdin(
            std::fs::File::open(local)
                .with_context(|| format!("cannot read {}", local.display()))?,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut g = exec::Group::spawn(c, "ssh (copy in)")?;
        let mut err = String::new();
        let pipe = g.child_mut().stderr.take();
        let st = g.wait_deadline(Instant::now() + Duration::from_secs(300))?;
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut err);
        }
        if !st.success() {
            bail!(
                "copying {} into {name}:{remote} failed: {}",
                local.display(),
                err.trim()
            );
        }
        Ok(())
    }

    /// Powers the machine off: over ssh, then ACPI through QMP, then SIGTERM, then SIGKILL,
    /// each with a deadline. The folder stays (`up` boots it again).
    pub fn down(&self, name: &str) -> Result<Stopped> {
        check_name(name)?;
        let _lock = Lock::take(&self.root, name)?;
        self.down_locked(name)
    }

    fn down_locked(&self, name: &str) -> Result<Stopped> {
        let dir = self.dir(name);
        let Some(pid) = running_pid(&dir) else {
            let _ = std::fs::remove_file(dir.join("qemu.pid"));
            return Ok(Stopped::NotRunning);
        };
        let accel = read_accel(&dir).unwrap_or(AccelUsed::Tcg);
        let grace = if accel != AccelUsed::Tcg {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(120)
        };
        let mut how = Stopped::PoweredOff;
        let mut asked = false;
        if let Ok(mut c) = self.ssh_command(name) {
            c.arg("--").arg("sudo systemctl poweroff");
            // The connection drops as the guest goes down: the status says nothing.
            asked = exec::run(c, "ssh (poweroff)", Duration::from_secs(30)).is_ok();
        }
        if !(asked && wait_gone(pid, grace)) && pid_alive(pid) {
            how = Stopped::AcpiPowerdown;
            if qmp_powerdown(&dir.join("qmp.sock")).is_err()
                || !wait_gone(pid, Duration::from_secs(30))
            {
                how = stop_pid(pid, Duration::from_secs(10));
            }
        }
        if pid_alive(pid) {
            bail!("{name}: qemu (pid {pid}) did not stop");
        }
        let _ = std::fs::remove_file(dir.join("qemu.pid"));
        let _ = std::fs::remove_file(dir.join("qmp.sock"));
        Ok(how)
    }

    /// Stops the machine and removes its folder.
    pub fn destroy(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let lock = Lock::take(&self.root, name)?;
        let dir = self.dir(name);
        if self.down_locked(name).is_err()
            && let Some(pid) = running_pid(&dir)
        {
            stop_pid(pid, Duration::from_secs(1));
        }
        if let Some(pid) = running_pid(&dir) {
            bail!(
                "{name}: qemu (pid {pid}) is still running: not removing {}",
                dir.display()
            );
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        lock.remove();
        Ok(())
    }
}

// ---- starting QEMU -----------------------------------------------------------------------

/// Starts the machine's QEMU daemonized; retries with new ports when one was taken
/// between choosing it and QEMU binding it.
fn start(
    dir: &Path,
    name: &str,
    made: &Made,
    opts: &UpOptions,
    accel: AccelUsed,
) -> Result<(u32, Ports)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ports = choose_ports(read_ports(dir).ok())?;
        write_atomic(
            &dir.join("ports.json"),
            serde_json::to_string(&ports)?.as_bytes(),
        )?;
        write_atomic(&dir.join("accel"), accel_name(accel).as_bytes())?;
        let _ = std::fs::remove_file(dir.join("qemu.pid"));
        let mut c = qemu_command(dir, name, made, opts, accel, ports);
        let log = std::fs::File::create(dir.join("qemu.log"))?;
        c.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        // With -daemonize the first process returns once the VM is set up.
        let mut g = exec::Group::spawn(c, "qemu-system-x86_64")?;
        let st = g.wait_deadline(Instant::now() + Duration::from_secs(60));
        let pid = std::fs::read_to_string(dir.join("qemu.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let (Ok(st), Some(pid)) = (&st, pid)
            && st.success()
            && pid_alive(pid)
        {
            return Ok((pid, ports));
        }
        if let Some(pid) = pid {
            stop_pid(pid, Duration::from_secs(1));
        }
        let mut said = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
        if let Err(e) = st {
            said.push_str(&format!("{e:#}"));
        }
        if !said.contains("host forwarding") || attempt == 3 {
            bail!(
                "{name}: qemu-system-x86_64 did not start:\n{}",
                exec::tail(&said)
            );
        }
        // Forget the ports: choose_ports then takes new ones.
        let _ = std::fs::remove_file(dir.join("ports.json"));
    }
}

fn qemu_command(
    dir: &Path,
    name: &str,
    made: &Made,
    opts: &UpOptions,
    accel: AccelUsed,
    ports: Ports,
) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    c.args([
        "-name",
        &format!("golab-{name}"),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-machine",
        "q35",
    ]);
    match accel {
        AccelUsed::Kvm => c.args(["-accel", "kvm", "-cpu", "host"]),
        AccelUsed::Hvf => c.args(["-accel", "hvf", "-cpu", "host"]),
        AccelUsed::Tcg => c.args(["-accel", "tcg,thread=multi", "-cpu", "max"]),
    };
    c.arg("-smp")
        .arg(opts.cpus.max(1).to_string())
        .arg("-m")
        .arg(opts.memory_mib.max(512).to_string());
    if let Some(k) = &made.kernel {
        c.arg("-kernel").arg(k);
        if let Some(i) = &made.initrd {
            c.arg("-initrd").arg(i);
        }
        c.args(["-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0"]);
    }
    c.arg("-drive").arg(format!(
        "file={},format=qcow2,if=virtio,discard=unmap",
        dir.join("overlay.qcow2").display()
    ));
    c.arg("-drive").arg(format!(
        "file={},format=raw,if=virtio,readonly=on",
        seed_path(dir).display()
    ));
    c.arg("-fsdev").arg(format!(
        "local,id=fsdev0,path={},security_model=none,readonly=on",
        dir.join("share").display()
    ));
    c.arg("-device")
        .arg(format!("virtio-9p-pci,fsdev=fsdev0,mount_tag={SHARE_TAG}"));
    c.arg("-netdev").arg(format!(
        "user,id=net0,hostfwd=tcp:127.0.0.1:{}-:22,hostfwd=tcp:127.0.0.1:{}-:{GUEST_DLV_PORT}",
        ports.ssh, ports.dlv
    ));
    c.args([
        "-device",
        "virtio-net-pci,netdev=net0",
        "-device",
        "virtio-rng-pci",
    ]);
    c.arg("-serial")
        .arg(format!("file:{}", dir.join("serial.log").display()));
    let qmp = dir.join("qmp.sock");
    // A unix socket's path has ~107 bytes; without QMP `down` still has ssh and signals.
    if qmp.as_os_str().len() < 100 {
        c.arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()));
    }
    c.arg("-pidfile")
        .arg(dir.join("qemu.pid"))
        .arg("-daemonize");
    c
}

fn accel_name(a: AccelUsed) -> &'static str {
    match a {
        AccelUsed::Kvm => "kvm",
        AccelUsed::Hvf => "hvf",
        AccelUsed::Tcg => "tcg",
    }
}

fn read_accel(dir: &Path) -> Option<AccelUsed> {
    read_accel_name(&std::fs::read_to_string(dir.join("accel")).ok()?)
}

fn read_accel_name(name: &str) -> Option<AccelUsed> {
    match name.trim() {
        "kvm" => Some(AccelUsed::Kvm),
        "hvf" => Some(AccelUsed::Hvf),
        "tcg" => Some(AccelUsed::Tcg),
        _ => None,
    }
}

/// What `--accel auto` does on a host, before any probe boot. The guest is always
/// x86_64 (the labs follow the amd64 startup path), so only an x86_64 host can
/// accelerate it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AutoPlan {
    /// Try this accelerator with a short boot first.
    Probe(AccelUsed),
    /// Software emulation, and why.
    Tcg(String),
}

fn auto_plan(os: &str, arch: &str, kvm_usable: bool, hv_support: bool) -> AutoPlan {
    match (os, arch) {
        ("linux", "x86_64") if kvm_usable => AutoPlan::Probe(AccelUsed::Kvm),
        ("linux", "x86_64") => AutoPlan::Tcg("no usable /dev/kvm".into()),
        ("macos", "x86_64") if hv_support => AutoPlan::Probe(AccelUsed::Hvf),
        ("macos", "x86_64") => AutoPlan::Tcg(
            "Hypervisor.framework is not available (sysctl kern.hv_support is not 1)".into(),
        ),
        ("macos", _) => AutoPlan::Tcg(
            "Apple Silicon: HVF runs only arm64 guests, and the lab VM is x86_64".into(),
        ),
        (_, "x86_64") => AutoPlan::Tcg(format!("golab knows no accelerator on {os}")),
        _ => AutoPlan::Tcg(format!(
            "the lab VM is x86_64 and this host is {arch}: no accelerator can run it"
        )),
    }
}

fn hv_support() -> bool {
    sys::host::hv_support()
}

fn kvm_usable() -> bool {
    matches!(sys::host::kvm(), sys::host::Kvm::Api(_))
}

/// Free ports on 127.0.0.1, keeping the previous ones when they are still free.
fn choose_ports(previous: Option<Ports>) -> Result<Ports> {
    if let Some(p) = previous
        && port_free(p.ssh)
        && port_free(p.dlv)
        && p.ssh != p.dlv
    {
        return Ok(p);
    }
    let (ssh, dlv) = super::free_port_pair()?;
    Ok(Ports { ssh, dlv })
}

fn port_free(p: u16) -> bool {
    p != 0 && TcpListener::bind(("127.0.0.1", p)).is_ok()
}

// ---- the machine's folder ------------------------------------------------------------------

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "machine name {name:?}: use 1-40 lowercase letters, digits and '-', starting with a letter or digit (it becomes the guest's host name)"
        );
    }
    Ok(())
}

fn read_stage(dir: &Path) -> Option<Stage> {
    Stage::parse(&std::fs::read_to_string(dir.join("stage")).ok()?)
}

fn write_stage(dir: &Path, s: Stage) -> Result<()> {
    write_atomic(&dir.join("stage"), format!("{}\n", s.as_str()).as_bytes())
}

fn read_ports(dir: &Path) -> Result<Ports> {
    let b = std::fs::read(dir.join("ports.json"))
        .with_context(|| format!("cannot read {}", dir.join("ports.json").display()))?;
    Ok(serde_json::from_slice(&b)?)
}

fn read_made(dir: &Path) -> Result<Made> {
    let p = dir.join("machine.json");
    let b = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&b)
        .with_context(|| format!("{} is damaged: `golab destroy` the machine", p.display()))
}

/// Options a machine that already exists does not take (its disk was provisioned).
fn differences(made: &Made, opts: &UpOptions) -> Vec<String> {
    let mut v = Vec::new();
    if made.go_version != opts.go_version || made.dlv_source != opts.dlv_source {
        v.push(format!(
            "the machine was provisioned with go{} and dlv {:?}: destroy it to change them",
            made.go_version, made.dlv_source
        ));
    }
    if std::fs::canonicalize(&opts.image).ok().as_deref() != Some(made.image.as_path()) {
        v.push(format!(
            "the machine's disk is based on {}: destroy it to use another image",
            made.image.display()
        ));
    }
    v
}

/// The pid in `qemu.pid` when that process is alive and is this machine's QEMU (its
/// command line names this folder's overlay), so a recycled pid is never killed.
fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("qemu.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !pid_alive(pid) {
        return None;
    }
    let cmdline = sys::proc::cmdline(pid)?;
    let want = dir.join("overlay.qcow2");
    let want = want.to_string_lossy();
    cmdline.contains(want.as_ref()).then_some(pid)
}

/// Alive and not a zombie (no reaper above a daemonized QEMU in a test).
fn pid_alive(pid: u32) -> bool {
    sys::proc::alive(pid)
}

fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while pid_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

/// SIGTERM, then SIGKILL after `grace`; says which one ended it.
fn stop_pid(pid: u32, grace: Duration) -> Stopped {
    // The pid was checked to be this machine's QEMU.
    sys::proc::signal(pid, sys::proc::Signal::Term);
    if wait_gone(pid, grace) {
        return Stopped::Terminated;
    }
    sys::proc::signal(pid, sys::proc::Signal::Kill);
    wait_gone(pid, Duration::from_secs(5));
    Stopped::Killed
}

/// Kills the QEMU of an `up` that failed (unless disarmed).
struct Kill {
    pid: u32,
    armed: bool,
}

impl Drop for Kill {
    fn drop(&mut self) {
        if self.armed && self.pid != 0 && pid_alive(self.pid) {
            stop_pid(self.pid, Duration::from_secs(3));
        }
    }
}

/// One `up`/`down`/`destroy` at a time per machine (an exclusive lock, std's File::try_lock, on a file beside its folder).
struct Lock {
    file: std::fs::File,
    path: PathBuf,
}

impl Lock {
    fn take(root: &Path, name: &str) -> Result<Lock> {
        let dir = root.join("machines");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!(".{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                bail!("machine {name} is busy: another golab is bringing it up or down")
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        Ok(Lock { file, path })
    }
    fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

fn serial_tail(dir: &Path) -> String {
    let s = std::fs::read_to_string(dir.join("serial.log")).unwrap_or_default();
    if s.is_empty() {
        return format!(
            "\n(the serial log {} is empty)",
            dir.join("serial.log").display()
        );
    }
    let lines: Vec<&str> = s.lines().collect();
    format!(
        "\nlast lines of {}:\n{}",
        dir.join("serial.log").display(),
        lines[lines.len().saturating_sub(15)..].join("\n")
    )
}

fn qemu_log_tail(dir: &Path) -> String {
    let s = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
    if s.trim().is_empty() {
        String::new()
    } else {
        format!("\nqemu said: {}", s.trim())
    }
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

// ---- inputs ------------------------------------------------------------------------------

/// The kernel and initrd for direct kernel boot: given, or `IMAGE.vmlinuz`/`.initrd`.
fn boot_files(image: &Path, opts: &UpOptions) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
    let canon = |p: &Path, what: &str| {
        std::fs::canonicalize(p).with_context(|| format!("no {what} at {}", p.display()))
    };
    match &opts.kernel {
        Some(k) => Ok((
            Some(canon(k, "kernel")?),
            opts.initrd
                .as_deref()
                .map(|i| canon(i, "initrd"))
                .transpose()?,
        )),
        None => {
            let k = image.with_extension("vmlinuz");
            let i = image.with_extension("initrd");
            if k.is_file() {
                Ok((Some(k), i.is_file().then_some(i)))
            } else {
                Ok((None, None))
            }
        }
    }
}

fn image_format(image: &Path) -> Result<String> {
    let mut c = Command::new("qemu-img");
    c.args(["info", "--output=json"]).arg(image);
    let out = must(
        exec::run(c, "qemu-img info", Duration::from_secs(60))?,
        "qemu-img info",
    )?;
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).context("qemu-img info printed no JSON")?;
    v["format"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("qemu-img cannot tell the format of {}", image.display()))
}

fn check_sha256(file: &Path, want: &str) -> Result<()> {
    use sha2::Digest;
    let mut f = std::fs::File::open(file)
        .with_context(|| format!("no Go tarball at {}", file.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if !got.eq_ignore_ascii_case(want.trim()) {
        bail!(
            "{} has SHA-256 {got}, not the pinned {}",
            file.display(),
            want.trim()
        );
    }
    Ok(())
}

fn must(c: exec::Captured, what: &str) -> Result<exec::Captured> {
    if !c.ok() {
        bail!("{what} failed ({}): {}", c.status, c.combined().trim());
    }
    Ok(c)
}

/// The NoCloud seed in a machine's folder (`seed::write`: FAT, label `cidata`).
const SEED: &str = "seed.img";

/// The seed QEMU attaches: `seed.img`, or the `seed.iso` of a machine made by an older
/// golab (with genisoimage), so that it still boots.
fn seed_path(dir: &Path) -> PathBuf {
    let img = dir.join(SEED);
    let iso = dir.join("seed.iso");
    if !img.exists() && iso.exists() {
        iso
    } else {
        img
    }
}

/// Debian's mirror as this host's apt uses it, read at run time; the guest reaches it
/// by the address this host resolves (no name server in the guest).
#[derive(Debug, Clone, PartialEq)]
struct Mirror {
    uri: String,
    host: String,
    ip: String,
}

impl Mirror {
    /// The mirror `--apt-mirror` (else `GOLAB_DEBIAN_MIRROR`) asks for, if any: `host`
    /// reads this host's apt sources, anything else is the mirror's URI.
    fn asked(spec: Option<&str>) -> Result<Option<Mirror>> {
        let env = std::env::var("GOLAB_DEBIAN_MIRROR")
            .ok()
            .filter(|s| !s.is_empty());
        match spec.map(str::to_string).or(env) {
            None => Ok(None),
            Some(s) => Mirror::resolve(&s).map(Some),
        }
    }

    fn resolve(spec: &str) -> Result<Mirror> {
        let uri = match spec {
            u if u != "host" => u.to_string(),
            _ => {
                let deb822 = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
                    .unwrap_or_default();
                let list = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
                mirror_uri(&deb822, &list).context("--apt-mirror host: cannot find Debian's mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (give its URI instead)")?
            }
        };
        let (host, port) = uri_host_port(&uri)
            .with_context(|| format!("cannot read a host in the mirror URI {uri}"))?;
        let ip = if host.parse::<std::net::IpAddr>().is_ok() {
            String::new()
        } else {
            let addrs: Vec<_> = (host.as_str(), port)
                .to_socket_addrs()
                .with_context(|| format!("cannot resolve the mirror's host {host}"))?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .map(|a| a.ip().to_string())
                .with_context(|| format!("{host} has no address"))?
        };
        Ok(Mirror { uri, host, ip })
    }
}

/// The first mirror URI of a deb822 `.sources` text, else of a one-line `sources.list`.
fn mirror_uri(deb822: &str, list: &str) -> Option<String> {
    let from822 = deb822
        .lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_string);
    from822.or_else(|| {
        list.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("deb "))
            .find_map(|l| {
                l.split_whitespace()
                    .find(|w| w.contains("://"))
                    .map(str::to_string)
            })
    })
}

fn uri_host_port(uri: &str) -> Option<(String, u16)> {
    let (scheme, rest) = uri.split_once("://")?;
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map(|x| x.1).unwrap_or(authority);
    let default = if scheme == "https" { 443 } else { 80 };
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => {
            Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?))
        }
        _ => Some((authority.trim_matches(['[', ']']).to_string(), default)),
    }
    .filter(|(h, _)| !h.is_empty())
}

// ---- cloud-init ----------------------------------------------------------------------------

struct Seed {
    user_data: String,
    meta_data: String,
}

fn render_seed(
    name: &str,
    instance_id: &str,
    public_key: &str,
    mirror: Option<&Mirror>,
    opts: &UpOptions,
) -> Result<Seed> {
    let mut env = format!(
        "GOLAB_GO_VERSION={}\nGOLAB_GO_SHA256={}\n",
        super::shell_quote(&opts.go_version),
        super::shell_quote(&opts.go_sha256)
    );
    for (k, v) in opts.dlv_source.provisioner_vars() {
        env.push_str(&format!("{k}={}\n", super::shell_quote(&v)));
    }
    let mut jinja = minijinja::Environment::new();
    jinja.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // A JSON string is a double-quoted YAML scalar: whatever a value holds (newlines,
    // quotes, a whole script), it stays one value.
    jinja.add_filter(
        "tojson",
        |v: minijinja::Value| -> Result<minijinja::Value, minijinja::Error> {
            serde_json::to_string(&v)
                .map(minijinja::Value::from_safe_string)
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                })
        },
    );
    jinja.add_template("user-data", USER_DATA)?;
    jinja.add_template("meta-data", META_DATA)?;
    let ctx = minijinja::context! {
        name => name,
        hostname => format!("golab-{name}"),
        instance_id => instance_id,
        ssh_public_key => public_key,
        mirror => mirror.is_some(),
        mirror_uri => mirror.map(|m| m.uri.as_str()).unwrap_or(""),
        mirror_host => mirror.map(|m| m.host.as_str()).unwrap_or(""),
        mirror_ip => mirror.map(|m| m.ip.as_str()).unwrap_or(""),
        provision_env => env,
        provision => opts.baked.is_none(),
        provisioner => PROVISIONER,
    };
    let user_data = jinja
        .get_template("user-data")?
        .render(&ctx)
        .context("rendering cloud-init user-data")?;
    let meta_data = jinja
        .get_template("meta-data")?
        .render(&ctx)
        .context("rendering cloud-init meta-data")?;
    Ok(Seed {
        user_data,
        meta_data,
    })
}

/// Reads `go version`, `dlv version`, `gdb --version`, `readelf --version` (separated by
/// `---`) and checks the pinned ones.
fn check_tools(out: &str, made: &Made) -> Result<Tools> {
    let parts: Vec<&str> = out.split("---\n").collect();
    let part = |i: usize| parts.get(i).map(|s| s.trim()).unwrap_or("");
    let go = part(0).lines().next().unwrap_or("").to_string();
    let dlv = part(1)
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap_or("")
        .trim()
        .to_string();
    let t = Tools {
        go,
        dlv,
        gdb: part(2).to_string(),
        readelf: part(3).to_string(),
    };
    if !t.go.contains(&format!("go{} ", made.go_version)) {
        bail!("`go version` says {:?}, not go{}", t.go, made.go_version);
    }
    match made.dlv_source.version() {
        Some(v) if t.dlv != v => bail!("`dlv version` says {:?}, not v{v}", t.dlv),
        _ if t.dlv.is_empty() => bail!("no dlv in the guest"),
        _ => {}
    }
    if !t.gdb.starts_with("GNU gdb") {
        bail!("no gdb in the guest ({:?})", t.gdb);
    }
    if !t.readelf.starts_with("GNU readelf") {
        bail!("no readelf in the guest ({:?})", t.readelf);
    }
    if let Some(want) = &made.baked {
        for (what, got, want) in [
            ("go", &t.go, &want.go),
            ("dlv", &t.dlv, &want.dlv),
            ("gdb", &t.gdb, &want.gdb),
            ("readelf", &t.readelf, &want.readelf),
        ] {
            if got != want {
                bail!("{what} answers {got:?}, the image's manifest says {want:?}");
            }
        }
    }
    Ok(t)
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

/// ACPI power button through QEMU's monitor socket.
fn qmp_powerdown(sock: &Path) -> Result<()> {
    let s = std::os::unix::net::UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line)?; // greeting
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")?;
    line.clear();
    r.read_line(&mut line)?;
    w.write_all(b"{\"execute\":\"system_powerdown\"}\n")?;
    line.clear();
    r.read_line(&mut line)?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::ensure;

    fn opts() -> UpOptions {
        let mut o = UpOptions::new(
            "/img/debian-12-golab.img",
            "/cache/go1.19.8.linux-amd64.tar.gz",
        );
        o.go_version = "1.19.8".into();
        o.go_sha256 = "ab".repeat(32);
        o.dlv_source = DlvSource::Apt;
        o
    }

    fn made() -> Made {
        Made {
            image: "/img/base.img".into(),
            image_format: "qcow2".into(),
            kernel: Some("/img/base.vmlinuz".into()),
            initrd: Some("/img/base.initrd".into()),
            go_version: "1.19.8".into(),
            go_sha256: "ab".repeat(32),
            dlv_source: DlvSource::Apt,
            instance_id: "golab-lab-1".into(),
            baked: None,
        }
    }

    #[test]
    fn auto_accelerates_only_an_x86_64_host_and_probes_first() {
        assert_eq!(
            auto_plan("linux", "x86_64", true, false),
            AutoPlan::Probe(AccelUsed::Kvm)
        );
        assert_eq!(
            auto_plan("macos", "x86_64", false, true),
            AutoPlan::Probe(AccelUsed::Hvf)
        );
        let tcg = |p: AutoPlan| match p {
            AutoPlan::Tcg(why) => why,
            other => panic!("expected TCG, got {other:?}"),
        };
        assert!(tcg(auto_plan("linux", "x86_64", false, false)).contains("/dev/kvm"));
        assert!(tcg(auto_plan("macos", "x86_64", false, false)).contains("kern.hv_support"));
        // Apple Silicon has HVF, but not for an x86_64 guest.
        assert!(tcg(auto_plan("macos", "aarch64", false, true)).contains("Apple Silicon"));
        assert!(tcg(auto_plan("linux", "aarch64", true, false)).contains("aarch64"));
        assert!(tcg(auto_plan("freebsd", "x86_64", false, false)).contains("freebsd"));
    }

    #[test]
    fn hvf_runs_with_the_host_cpu_and_short_deadlines() {
        let c = qemu_command(
            Path::new("/s/machines/lab1"),
            "lab1",
            &made(),
            &opts(),
            AccelUsed::Hvf,
            Ports {
                ssh: 40022,
                dlv: 40345,
            },
        );
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = args.iter().position(|a| a == "-accel").unwrap();
        assert_eq!(args[at + 1..at + 4], ["hvf", "-cpu", "host"]);
        assert_eq!(read_accel_name("hvf"), Some(AccelUsed::Hvf));
        assert!(
            Deadlines::for_accel(AccelUsed::Hvf).ssh < Deadlines::for_accel(AccelUsed::Tcg).ssh
        );
    }

    #[test]
    fn a_half_made_machine_is_cleaned_and_a_provisioned_one_resumed() {
        assert_eq!(plan(None, false), UpStep::Create);
        assert_eq!(plan(Some(Stage::Creating), false), UpStep::Clean);
        assert_eq!(plan(Some(Stage::Created), false), UpStep::Clean);
        assert_eq!(
            plan(Some(Stage::Booting), false),
            UpStep::Clean,
            "a first boot that died may have run half the provisioner"
        );
        assert_eq!(plan(Some(Stage::Booting), true), UpStep::Wait);
        assert_eq!(plan(Some(Stage::Provisioned), true), UpStep::Wait);
        assert_eq!(plan(Some(Stage::Provisioned), false), UpStep::Resume);
        assert_eq!(plan(Some(Stage::Ready), false), UpStep::Resume);
        assert_eq!(plan(Some(Stage::Ready), true), UpStep::AlreadyRunning);
        assert_eq!(plan(None, true), UpStep::Clean);
        for s in [
            Stage::Creating,
            Stage::Created,
            Stage::Booting,
            Stage::Provisioned,
            Stage::Ready,
        ] {
            assert_eq!(Stage::parse(&format!("{}\n", s.as_str())), Some(s));
        }
    }

    #[test]
    fn without_a_mirror_asked_the_guests_apt_is_left_alone() {
        let s = render_seed("lab1", "golab-lab1-1", "ssh-ed25519 AAAA k", None, &opts()).unwrap();
        let v: serde_norway::Value = serde_norway::from_str(&s.user_data).unwrap();
        let boot = v["bootcmd"].as_sequence().unwrap();
        assert_eq!(boot.len(), 1, "{boot:?}");
        let boot = serde_norway::to_string(&boot).unwrap();
        assert!(
            !boot.contains("golab-apt")
                && !boot.contains("golab-hosts")
                && boot.contains("trans=virtio"),
            "{boot}"
        );
    }

    #[test]
    fn user_data_is_yaml_with_the_key_the_mirror_and_the_pins() {
        let m = Mirror {
            uri: "http://mirror.example/debian".into(),
            host: "mirror.example".into(),
            ip: "192.0.2.7".into(),
        };
        let s = render_seed(
            "lab1",
            "golab-lab1-1",
            "ssh-ed25519 AAAA golab-lab1",
            Some(&m),
            &opts(),
        )
        .unwrap();
        assert!(s.user_data.starts_with("#cloud-config\n"));
        let v: serde_norway::Value = serde_norway::from_str(&s.user_data).unwrap();
        assert_eq!(v["users"][0]["name"], "golab");
        assert_eq!(
            v["users"][0]["ssh_authorized_keys"][0],
            "ssh-ed25519 AAAA golab-lab1"
        );
        assert_eq!(v["users"][0]["sudo"], "ALL=(ALL) NOPASSWD:ALL");
        assert_eq!(
            v["ssh_genkeytypes"],
            serde_norway::Value::Sequence(vec!["ed25519".into()])
        );
        let boot = serde_norway::to_string(&v["bootcmd"]).unwrap();
        assert!(
            boot.contains("192.0.2.7")
                && boot.contains("mirror.example")
                && boot.contains("trans=virtio"),
            "{boot}"
        );
        let files = v["write_files"].as_sequence().unwrap();
        let env = files
            .iter()
            .find(|f| f["path"] == "/etc/golab/provision.env")
            .unwrap()["content"]
            .as_str()
            .unwrap();
        assert!(
            env.contains("GOLAB_GO_VERSION=1.19.8\n")
                && env.contains("GOLAB_DLV_SOURCE=apt\n")
                && env.contains(&"ab".repeat(32)),
            "{env}"
        );
        let prov = files
            .iter()
            .find(|f| f["path"] == "/usr/local/lib/golab/lab-vm.sh")
            .unwrap()["content"]
            .as_str()
            .unwrap();
        assert_eq!(prov, PROVISIONER, "the provisioner arrives byte for byte");
        let meta: serde_norway::Value = serde_norway::from_str(&s.meta_data).unwrap();
        assert_eq!(meta["instance-id"], "golab-lab1-1");
        assert_eq!(meta["local-hostname"], "golab-lab1");
    }

    #[test]
    fn the_qemu_command_forwards_ssh_and_dlv_on_loopback_and_shares_the_cache_read_only() {
        let c = qemu_command(
            Path::new("/s/machines/lab1"),
            "lab1",
            &made(),
            &opts(),
            AccelUsed::Tcg,
            Ports {
                ssh: 40022,
                dlv: 40345,
            },
        );
        let a: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = a.join(" ");
        assert!(
            line.contains("hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40345-:2345"),
            "{line}"
        );
        assert!(line.contains("-accel tcg,thread=multi"));
        assert!(line.contains("path=/s/machines/lab1/share,security_model=none,readonly=on"));
        assert!(line.contains("mount_tag=golabcache"));
        assert!(line.contains("-pidfile /s/machines/lab1/qemu.pid -daemonize"));
        assert!(
            line.contains(
                "-kernel /img/base.vmlinuz -initrd /img/base.initrd -append root=/dev/vda"
            )
        );
        assert!(!line.contains("10.0.2.2"));
    }

    #[test]
    fn the_mirror_is_read_from_apt_sources() {
        let deb822 =
            "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_uri(deb822, "").as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            mirror_uri(
                "",
                "# x\ndeb [arch=amd64] https://m.example:8443/debian bookworm main\n"
            )
            .as_deref(),
            Some("https://m.example:8443/debian")
        );
        assert_eq!(mirror_uri("", ""), None);
        assert_eq!(
            uri_host_port("http://mirror.example/debian"),
            Some(("mirror.example".into(), 80))
        );
        assert_eq!(
            uri_host_port("https://m.example:8443/debian"),
            Some(("m.example".into(), 8443))
        );
    }

    #[test]
    fn machine_names_become_host_names() {
        assert!(check_name("lab1").is_ok() && check_name("go-117").is_ok());
        for bad in ["", "-x", "Lab", "a/b", "..", "a_b", &"x".repeat(41)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tools_are_checked_against_the_pins() {
        let out = "go version go1.19.8 linux/amd64\n---\nDelve Debugger\nVersion: 1.20.2\nBuild: $Id$\n---\nGNU gdb (Debian 13.1-3) 13.1\n---\nGNU readelf (GNU Binutils for Debian) 2.40\n";
        let t = check_tools(out, &made()).unwrap();
        assert_eq!(t.dlv, "1.20.2");
        let mut m = made();
        m.dlv_source = DlvSource::GoInstall("v1.9.1".into());
        assert!(format!("{:#}", check_tools(out, &m).unwrap_err()).contains("not v1.9.1"));
        m.go_version = "1.17.1".into();
        assert!(format!("{:#}", check_tools(out, &m).unwrap_err()).contains("not go1.17.1"));
    }

    #[test]
    fn a_baked_image_is_not_provisioned_and_its_tools_must_be_the_manifests() {
        let out = "go version go1.19.8 linux/amd64\n---\nDelve Debugger\nVersion: 1.20.2\nBuild: $Id$\n---\nGNU gdb (Debian 13.1-3) 13.1\n---\nGNU readelf (GNU Binutils for Debian) 2.40\n";
        let mut m = made();
        let t = check_tools(out, &m).unwrap();
        m.baked = Some(t.clone());
        assert_eq!(check_tools(out, &m).unwrap(), t);
        m.baked.as_mut().unwrap().gdb = "GNU gdb (Debian 12.1-4) 12.1".into();
        let e = format!("{:#}", check_tools(out, &m).unwrap_err());
        assert!(e.contains("gdb answers") && e.contains("manifest"), "{e}");
        let mirror = Mirror {
            uri: "http://mirror.example/debian".into(),
            host: "mirror.example".into(),
            ip: "192.0.2.7".into(),
        };
        let mut o = opts();
        let provisioned = render_seed("lab1", "i", "ssh-ed25519 A", Some(&mirror), &o).unwrap();
        let v: serde_norway::Value = serde_norway::from_str(&provisioned.user_data).unwrap();
        assert!(v["runcmd"].is_sequence());
        o.baked = Some(t);
        let baked = render_seed("lab1", "i", "ssh-ed25519 A", Some(&mirror), &o).unwrap();
        let v: serde_norway::Value = serde_norway::from_str(&baked.user_data).unwrap();
        assert!(v["runcmd"].is_null(), "a baked image runs no provisioner");
        assert_eq!(v["users"][0]["name"], "golab");
    }

    #[test]
    fn ports_are_two_distinct_free_ones_and_kept_when_still_free() {
        let p = choose_ports(None).unwrap();
        assert_ne!(p.ssh, p.dlv);
        assert_eq!(choose_ports(Some(p)).unwrap(), p);
        let hold = TcpListener::bind(("127.0.0.1", p.ssh)).unwrap();
        assert_ne!(choose_ports(Some(p)).unwrap().ssh, p.ssh);
        drop(hold);
    }

    #[test]
    fn status_of_a_missing_machine_and_a_stale_pid_file() {
        let d = tempfile::tempdir().unwrap();
        let q = Qemu::with_state_root(d.path());
        let s = q.status("lab1").unwrap();
        assert!(!s.exists && !s.running());
        let dir = q.dir("lab1");
        std::fs::create_dir_all(&dir).unwrap();
        // pid 1 is alive but is not this machine's QEMU.
        std::fs::write(dir.join("qemu.pid"), "1\n").unwrap();
        write_stage(&dir, Stage::Ready).unwrap();
        let s = q.status("lab1").unwrap();
        assert!(
            s.exists && !s.running() && s.stage == Some(Stage::Ready),
            "{s}"
        );
        q.down("lab1").unwrap();
        q.destroy("lab1").unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn an_up_that_cannot_make_the_machine_leaves_no_folder_behind() {
        let d = tempfile::tempdir().unwrap();
        let q = Qemu::with_state_root(d.path());
        // A folder left half-made by an earlier `up` is cleaned first.
        std::fs::create_dir_all(q.dir("lab1")).unwrap();
        write_stage(&q.dir("lab1"), Stage::Creating).unwrap();
        let mut o = opts();
        o.image = d.path().join("missing.img");
        o.quiet = true;
        let e = format!("{:#}", q.up("lab1", &o).unwrap_err());
        assert!(
            e.contains("no base image") && e.contains("vm-image.sh"),
            "{e}"
        );
        assert!(!q.dir("lab1").exists());
        assert!(q.up("Bad/Name", &o).is_err());
    }

    // ---- the real VM test --------------------------------------------------------------
    // scripts/test-vm.sh builds the image and the tarball and runs this with --ignored.

    fn env(k: &str) -> String {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run scripts/test-vm.sh"))
    }

    struct Clock {
        rows: Vec<(String, Duration)>,
    }

    impl Clock {
        fn time<T>(&mut self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
            eprintln!("vm-test: {what} ...");
            let t = Instant::now();
            let r = f();
            let took = t.elapsed();
            eprintln!(
                "vm-test: {what}: {} in {:.1}s",
                if r.is_ok() { "ok" } else { "FAILED" },
                took.as_secs_f64()
            );
            self.rows.push((what.to_string(), took));
            r
        }
    }

    /// Runs a command in the guest through a login shell (PATH from /etc/profile.d).
    fn guest(q: &Qemu, name: &str, cmd: &str, timeout: Duration) -> Result<exec::Captured> {
        let mut c = q.ssh_command(name)?;
        c.arg("--")
            .arg(format!("bash -lc {}", super::super::shell_quote(cmd)));
        let out = exec::run(c, &format!("ssh {name}"), timeout)?;
        if !out.ok() {
            bail!(
                "`{cmd}` in {name} failed ({}):\n{}",
                out.status,
                out.combined()
            );
        }
        Ok(out)
    }

    /// JSON-RPC requests to dlv on one connection through the forwarded port (a headless
    /// dlv without --accept-multiclient serves one client). The forward accepts before
    /// dlv listens, and then closes: the first answer is retried until `limit`.
    fn dlv_session(
        port: u16,
        requests: &[&str],
        limit: Duration,
    ) -> Result<Vec<serde_json::Value>> {
        let deadline = Instant::now() + limit;
        loop {
            let attempt = (|| -> Result<Vec<serde_json::Value>> {
                let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(30)))?;
                let mut r = BufReader::new(&s);
                let mut answers = Vec::new();
                for req in requests {
                    (&s).write_all(format!("{req}\n").as_bytes())?;
                    let mut line = String::new();
                    r.read_line(&mut line)?;
                    if line.trim().is_empty() {
                        bail!("the connection closed without an answer to {req}");
                    }
                    answers.push(serde_json::from_str(&line)?);
                }
                Ok(answers)
            })();
            match attempt {
                Ok(v) => return Ok(v),
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context(format!("dlv on 127.0.0.1:{port} did not answer")));
                }
                Err(_) => std::thread::sleep(Duration::from_secs(1)),
            }
        }
    }

    fn lab_opts() -> UpOptions {
        let mut o = UpOptions::new(env("GOLAB_VM_IMAGE"), env("GOLAB_VM_GO_TARBALL"));
        o.go_version = env("GOLAB_VM_GO_VERSION");
        o.go_sha256 = env("GOLAB_VM_GO_SHA256");
        // dlv built in the guest from its source tarball (shared in; the URL names it).
        o.dlv_source = DlvSource::source(
            &env("GOLAB_VM_DLV_VERSION"),
            &env("GOLAB_VM_DLV_SRC_URL"),
            &env("GOLAB_VM_DLV_SRC_SHA256"),
        )
        .unwrap();
        o.dlv_tarball = Some(env("GOLAB_VM_DLV_SRC").into());
        // The test image is Debian's, offline but for this host's mirror.
        o.apt_mirror = Some("host".into());
        o.cpus = 2;
        o.memory_mib = 2048;
        // GOLAB_VM_BAKED=NAME.manifest.json: machines from that baked image (what
        // scripts/test-vm.sh baked from nothing just before), so the suite provisions
        // from nothing once, not once per test.
        if let Ok(m) = std::env::var("GOLAB_VM_BAKED") {
            let cache = crate::download::Cache::from_env().unwrap();
            super::super::image::resolve(&m, None, &cache)
                .unwrap()
                .apply(&mut o);
        }
        o
    }

    fn qemu_processes_under(root: &Path) -> Vec<u32> {
        let want = root.to_string_lossy().to_string();
        sys::proc::all()
            .into_iter()
            .filter(|p| pid_alive(*p))
            .filter(|p| sys::proc::cmdline(*p).is_some_and(|c| c.contains(&want)))
            .collect()
    }

    #[test]
    #[ignore = "boots real VMs (minutes under TCG): scripts/test-vm.sh"]
    fn a_lab_vm_builds_the_seed_and_answers_gdb_and_dlv_through_the_forward() -> Result<()> {
        let q = Qemu::new()?;
        let opts = lab_opts();
        let seed = PathBuf::from(env("GOLAB_VM_SEED"));
        let mut clock = Clock { rows: Vec::new() };
        let r = (|| -> Result<()> {
            let vm = clock.time("up lab1 (create, boot, cloud-init, provisioning)", || {
                q.up("lab1", &opts)
            })?;
            for s in &vm.stages {
                clock.rows.push((format!("  lab1 {}", s.stage), s.took));
            }
            eprintln!("vm-test: accel {:?}; notes: {:?}", vm.accel, vm.notes);
            ensure!(
                vm.tools.go.contains(&format!("go{} ", opts.go_version)),
                "{:?}",
                vm.tools
            );

            let again = clock.time("up lab1 again while it runs", || q.up("lab1", &opts))?;
            ensure!(again.already_running && again.ports == vm.ports);

            let out = guest(&q, "lab1", "go version", Duration::from_secs(120))?;
            ensure!(
                out.stdout
                    .contains(&format!("go{} linux/amd64", opts.go_version)),
                "{}",
                out.stdout
            );
            guest(&q, "lab1", "mkdir -p ~/lab", Duration::from_secs(60))?;
            q.copy_in("lab1", &seed, "lab/main.go")?;
            clock.time("go build -gcflags all=-l -N (in the guest)", || guest(&q, "lab1", "cd ~/lab && GOFLAGS=-mod=mod GOPROXY=off go build -gcflags 'all=-l -N' -o main main.go", Duration::from_secs(1200)))?;
            let out = guest(&q, "lab1", "readelf -h ~/lab/main", Duration::from_secs(60))?;
            ensure!(
                out.stdout.contains("Advanced Micro Devices X86-64") && out.stdout.contains("EXEC"),
                "{}",
                out.stdout
            );
            let out = clock.time("gdb -batch, break runtime.schedinit", || guest(&q, "lab1", "cd ~/lab && gdb -batch -ex 'break runtime.schedinit' -ex run -ex bt ./main 2>&1", Duration::from_secs(300)))?;
            ensure!(out.stdout.contains("runtime.schedinit"), "{}", out.stdout);
            ensure!(
                out.stdout.contains("Breakpoint 1") && out.stdout.contains("runtime.schedinit ()"),
                "gdb did not stop at runtime.schedinit:\n{}",
                out.stdout
            );

            clock.time("dlv --headless in the guest, JSON-RPC from the host", || {
                let tmp = tempfile::tempdir()?;
                let mut c = q.ssh_command("lab1")?;
                c.arg("--").arg("bash -lc 'cd ~/lab && exec dlv exec --headless --listen=0.0.0.0:2345 --api-version=2 ./main'");
                c.stdin(Stdio::null()).stdout(std::fs::File::create(tmp.path().join("out"))?).stderr(std::fs::File::create(tmp.path().join("err"))?);
                let mut g = exec::Group::spawn(c, "ssh (dlv)")?;
                let get = r#"{"method":"RPCServer.GetVersion","params":[{}],"id":1}"#;
                let detach = r#"{"method":"RPCServer.Detach","params":[{"Kill":true}],"id":2}"#;
                let answers = dlv_session(vm.ports.dlv, &[get, detach], Duration::from_secs(180)).with_context(|| std::fs::read_to_string(tmp.path().join("err")).unwrap_or_default())?;
                let v = &answers[0];
                eprintln!("vm-test: dlv answered {v}");
                ensure!(v["id"] == 1, "{v}");
                ensure!(v["result"]["DelveVersion"].as_str().unwrap_or("").contains(&format!("Version: {}", env("GOLAB_VM_DLV_VERSION"))), "{v}");
                ensure!(v["result"]["APIVersion"] == 2, "{v}");
                ensure!(answers[1]["error"].is_null(), "detach: {}", answers[1]);
                g.wait_deadline(Instant::now() + Duration::from_secs(60))?;
                let left = guest(&q, "lab1", "pgrep -x dlv || echo none", Duration::from_secs(60))?;
                ensure!(left.stdout.trim() == "none", "dlv left running in the guest: {}", left.stdout);
                Ok(())
            })?;

            let how = clock.time("down lab1", || q.down("lab1"))?;
            ensure!(
                how == Stopped::PoweredOff,
                "lab1 stopped by {how:?}, not by a clean poweroff"
            );
            let st = q.status("lab1")?;
            ensure!(!st.running() && st.stage == Some(Stage::Ready), "{st}");
            ensure!(!pid_alive(vm.pid));
            let vm = clock.time("up lab1 (resume: boot, no provisioning)", || {
                q.up("lab1", &opts)
            })?;
            for s in &vm.stages {
                clock
                    .rows
                    .push((format!("  lab1 resume {}", s.stage), s.took));
            }
            ensure!(vm.resumed && !vm.already_running);
            let m = q.machine("lab1")?;
            ensure!(
                m.ncpu()? == 2,
                "the guest's CPUs as the Go runtime counts them"
            );
            let runs = guest(
                &q,
                "lab1",
                "cat /var/lib/golab-provisioned; test -x ~/lab/main && echo binary-kept",
                Duration::from_secs(60),
            )?;
            ensure!(
                runs.stdout.matches("provisioned ").count() == 1,
                "provisioned again on resume: {}",
                runs.stdout
            );
            ensure!(runs.stdout.contains("binary-kept"));

            // A second machine while the first runs; its first `up` dies half-way (QEMU
            // killed during the first boot), and the next `up` starts it over.
            let crashed = clock.time("up lab2, its QEMU killed during the first boot", || {
                let q2 = Qemu::new()?;
                let o2 = opts.clone();
                let h = std::thread::spawn(move || q2.up("lab2", &o2));
                let dir = q.dir("lab2");
                let deadline = Instant::now() + Duration::from_secs(300);
                let pid = loop {
                    if read_stage(&dir) == Some(Stage::Booting)
                        && let Some(p) = running_pid(&dir)
                    {
                        break p;
                    }
                    ensure!(
                        Instant::now() < deadline && !h.is_finished(),
                        "lab2 never reached its first boot"
                    );
                    std::thread::sleep(Duration::from_millis(200));
                };
                std::thread::sleep(Duration::from_secs(5));
                sys::proc::signal(pid, sys::proc::Signal::Kill);
                let r = h.join().expect("up thread");
                Ok(r.err().map(|e| format!("{e:#}")))
            })?;
            let msg = crashed.context("an up whose QEMU was killed must fail")?;
            ensure!(msg.contains("exited while booting"), "{msg}");
            ensure!(
                q.status("lab2")?.stage == Some(Stage::Booting),
                "{}",
                q.status("lab2")?
            );
            let vm2 = clock.time(
                "up lab2 again (cleaned, created anew) while lab1 runs",
                || q.up("lab2", &opts),
            )?;
            for s in &vm2.stages {
                clock.rows.push((format!("  lab2 {}", s.stage), s.took));
            }
            ensure!(!vm2.resumed);
            ensure!(
                vm2.ports.ssh != vm.ports.ssh
                    && vm2.ports.dlv != vm.ports.dlv
                    && vm2.ports.ssh != vm.ports.dlv,
                "{:?} {:?}",
                vm.ports,
                vm2.ports
            );
            ensure!(q.status("lab1")?.running() && q.status("lab2")?.running());
            let h1 = guest(&q, "lab1", "hostname", Duration::from_secs(60))?;
            let h2 = guest(&q, "lab2", "hostname", Duration::from_secs(60))?;
            ensure!(
                (h1.stdout.trim(), h2.stdout.trim()) == ("golab-lab1", "golab-lab2"),
                "host names {:?} {:?}",
                h1.stdout,
                h2.stdout
            );

            clock.time("destroy lab2", || q.destroy("lab2"))?;
            clock.time("destroy lab1", || q.destroy("lab1"))?;
            ensure!(!q.dir("lab1").exists() && !q.dir("lab2").exists());
            Ok(())
        })();
        if r.is_err() {
            let _ = q.destroy("lab2");
            let _ = q.destroy("lab1");
        }
        eprintln!("vm-test: timings");
        for (what, took) in &clock.rows {
            eprintln!("vm-test:   {:>7.1}s  {what}", took.as_secs_f64());
        }
        let left = qemu_processes_under(&q.root);
        assert!(left.is_empty(), "QEMU processes left: {left:?}");
        r
    }
}

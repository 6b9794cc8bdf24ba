//! `golab up | image build | status | ssh | down | destroy`: the lab machine's
//! lifecycle, and the machine a `--provider` names for `golab run`. The choices are
//! made here, from plain requests (`cli.rs` fills them from the command line): which
//! provider, the pins and where their tarballs come from, a baked image or a local base
//! before provisioning, the Vagrantfile's settings.

use crate::download::{self, Cache};
use crate::machine::image;
use crate::machine::qemu::{Accel, Qemu, UpOptions};
use crate::machine::vagrant::{
    DirectBoot, Provider as VagrantProvider, UpOutcome, Vagrant, VagrantConfig,
};
use crate::machine::{DlvSource, Machine};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// Where a lab runs: this machine, or a lab VM of one of the two providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Host,
    Qemu,
    Vagrant,
}

impl Provider {
    /// The VM provider's name (`status`'s document, the hints); the host is no VM, and
    /// the VM commands treat it as qemu, their default.
    fn vm_name(self) -> &'static str {
        match self {
            Provider::Vagrant => "vagrant",
            _ => "qemu",
        }
    }
}

/// Which lab machine: its provider and name.
#[derive(Clone, Debug)]
pub struct Which {
    pub provider: Provider,
    pub name: String,
}

/// What the lab VM's provisioning installs: the Go (with its tarball's SHA-256 when
/// golab does not pin one), and dlv (a version, `apt`, or a source tarball and its
/// SHA-256).
#[derive(Clone, Debug)]
pub struct Pins {
    pub go: String,
    pub go_sha256: Option<String>,
    pub dlv: String,
    pub dlv_src: Option<(String, String)>,
}

impl Pins {
    /// Where the guest's dlv comes from.
    pub fn dlv_source(&self) -> Result<DlvSource> {
        match &self.dlv_src {
            Some((url, sha256)) => DlvSource::source(&self.dlv, url, sha256),
            None => Ok(DlvSource::parse(&self.dlv)),
        }
    }
}

/// Direct kernel boot, for an image or box without a boot loader.
#[derive(Clone, Debug, Default)]
pub struct Boot {
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
}

/// The Vagrantfile's own settings.
#[derive(Clone, Debug)]
pub struct VagrantSettings {
    /// A box name, a .box file, or a baked image's NAME.manifest.json.
    pub box_name: String,
    /// Where the provisioner downloads Go's tarball from (else the mirror, else Go's page).
    pub go_base_url: Option<String>,
    /// libvirt: kvm, or qemu.
    pub libvirt_driver: String,
    /// Finds the labs folder the VM shares (`lab::labs_dir`, handed in: the machine layer
    /// is below the labs'; called only when a Vagrantfile is made).
    pub labs_dir: fn() -> Result<PathBuf>,
}

/// `golab up` (and what `golab image build` provisions).
#[derive(Clone, Debug)]
pub struct UpRequest {
    pub machine: Which,
    /// A base image, or a baked image's NAME.manifest.json (file or URL).
    pub image: Option<String>,
    pub image_sha256: Option<String>,
    pub boot: Boot,
    pub cpus: u32,
    pub memory: u32,
    pub pins: Pins,
    /// A local Go tarball instead of the pinned download.
    pub go_tarball: Option<PathBuf>,
    /// auto, kvm, hvf or tcg.
    pub accel: String,
    pub apt_mirror: Option<String>,
    /// Vagrant's provider, or auto.
    pub vagrant_provider: String,
    pub vagrant: VagrantSettings,
    pub no_keep_base: bool,
}

/// `golab image build`.
#[derive(Clone, Debug)]
pub struct ImageBuildRequest {
    pub out: Option<PathBuf>,
    pub image_name: Option<String>,
    pub no_box: bool,
    pub up: UpRequest,
}

/// Whether a lab VM runs: the line `status` prints, and its JSON body.
#[derive(Debug)]
pub struct Status {
    pub running: bool,
    pub line: String,
    pub doc: serde_json::Value,
}

/// How `golab ssh` ended: the VM does not run (why, for the user), or the command's
/// exit status.
#[derive(Debug)]
pub enum Ssh {
    NotRunning(String),
    Exited(u8),
}

/// The machine `golab run --provider P --name N` runs on, for the tools chosen (a Go
/// from this machine's toolchains folder is refused for a VM before the VM is looked
/// for). On a VM, the run's commands share one ssh connection (it ends with the run).
/// `go_release`: the `--go` asked (toolchain::Choice::release).
pub fn machine(provider: Provider, name: &str, go_release: Option<&str>) -> Result<Machine> {
    if provider != Provider::Host
        && let Some(r) = go_release
    {
        bail!(
            "--go {r} picks a Go from this machine's toolchains folder; the lab VM has the pinned Go and dlv installed: leave --go out (or give --goroot/--dlv paths inside the VM)"
        );
    }
    let m = match provider {
        Provider::Host => return Ok(Machine::Host),
        Provider::Qemu => Qemu::new()?.machine(name)?,
        Provider::Vagrant => Vagrant::new()?.machine(name)?,
    };
    // GOLAB_SSH_SHARE=0: every command its own login (scripts/bench-vm.sh's baseline).
    if std::env::var("GOLAB_SSH_SHARE").is_ok_and(|v| v == "0") {
        return Ok(m);
    }
    let (m, why) = m.sharing_one_connection();
    if let Some(w) = why {
        eprintln!("golab: note: {w}");
    }
    Ok(m)
}

/// The Vagrantfile's settings from the command line (`golab render` and `golab up
/// --provider vagrant`); the ports are free 127.0.0.1 ports unless given.
pub fn vagrant_config(
    cpus: u32,
    memory: u32,
    pins: &Pins,
    boot: &Boot,
    v: &VagrantSettings,
) -> Result<VagrantConfig> {
    let go_sha256 = match &pins.go_sha256 {
        Some(s) => s.trim().to_string(),
        None => match download::go_tarball(&pins.go) {
            Some(a) => a.sha256,
            None => bail!(
                "no SHA-256 is pinned for Go {}: give its tarball's with --go-sha256",
                pins.go
            ),
        },
    };
    let boot = match (&boot.kernel, &boot.initrd) {
        (None, None) => None,
        (Some(k), Some(i)) => Some(DirectBoot {
            kernel: std::fs::canonicalize(k)
                .with_context(|| format!("--kernel {}", k.display()))?,
            initrd: std::fs::canonicalize(i)
                .with_context(|| format!("--initrd {}", i.display()))?,
            cmdline: "root=/dev/vda console=ttyS0".into(),
        }),
        _ => bail!("direct kernel boot needs both --kernel and --initrd"),
    };
    let go_base_url = match &v.go_base_url {
        Some(u) => u.clone(),
        None => Cache::from_env()?
            .mirror()
            .map(str::to_string)
            .unwrap_or_else(|| download::GO_BASE.to_string()),
    };
    let (ssh_port, dlv_port) = crate::machine::free_port_pair()?;
    Ok(VagrantConfig {
        box_name: v.box_name.clone(),
        cpus,
        memory_mib: memory,
        ssh_port,
        dlv_port,
        labs_dir: {
            let d = (v.labs_dir)()?;
            std::fs::canonicalize(&d).unwrap_or(d)
        },
        libvirt_driver: v.libvirt_driver.parse()?,
        go_version: pins.go.trim_start_matches("go").to_string(),
        go_sha256,
        dlv: pins.dlv_source()?,
        boot,
        go_base_url,
        ..VagrantConfig::default()
    })
}

/// The Go tarball to download: the pinned one, with the SHA-256 `--go-sha256` gives
/// instead when given (a Go golab does not pin, or a tarball of one's own on a mirror).
fn go_artifact(pins: &Pins) -> Result<download::Artifact> {
    let v = pins.go.trim_start_matches("go");
    let mut art = match download::go_tarball(v) {
        Some(a) => a,
        None if pins.go_sha256.is_some() => {
            let name = format!("go{v}.linux-amd64.tar.gz");
            download::Artifact {
                url: format!("{}{name}", download::GO_BASE),
                name,
                sha256: String::new(),
            }
        }
        None => download::require_go_tarball(v)?,
    };
    if let Some(s) = &pins.go_sha256 {
        art.sha256 = s.trim().to_ascii_lowercase();
    }
    Ok(art)
}

fn vagrant_up(a: &UpRequest) -> Result<String> {
    let provider = match a.vagrant_provider.as_str() {
        "auto" => Vagrant::auto_provider()?,
        p => p.parse()?,
    };
    let mut cfg = vagrant_config(a.cpus, a.memory, &a.pins, &a.boot, &a.vagrant)?;
    let vagrant = Vagrant::new()?;
    let as_file = std::path::Path::new(&cfg.box_name);
    let baked = image::is_manifest(&cfg.box_name);
    if baked {
        // A baked image's box: its pins and the kernel it boots come from the manifest;
        // the provisioner finds everything in place.
        let (baked, file) = image::resolve_box(
            &cfg.box_name,
            a.image_sha256.as_deref(),
            &Cache::from_env()?,
            provider,
        )?;
        let m = &baked.manifest;
        eprintln!(
            "golab up: {} is a baked image (go{}, dlv {}): its Vagrant box, nothing to provision",
            m.name,
            m.pins.go_version,
            m.pins.dlv.version().unwrap_or("from apt")
        );
        cfg.go_version = m.pins.go_version.clone();
        cfg.go_sha256 = m.pins.go_sha256.clone();
        cfg.dlv = m.pins.dlv.clone();
        // libvirt boots the image's kernel; VirtualBox's box boots by itself (GRUB).
        cfg.boot = match provider {
            VagrantProvider::Libvirt => Some(DirectBoot {
                kernel: baked.kernel.clone().context("no kernel")?,
                initrd: baked.initrd.clone().context("no initrd")?,
                cmdline: "root=/dev/vda console=ttyS0".into(),
            }),
            _ => None,
        };
        cfg.box_name = vagrant.add_box_file(&file)?;
    } else if cfg.box_name.ends_with(".box") && as_file.is_file() {
        cfg.box_name = vagrant.add_box_file(as_file)?;
    }
    let name = &a.machine.name;
    let (_, outcome) = vagrant.up(name, provider, cfg)?;
    let what = match outcome {
        UpOutcome::Created if baked => {
            "up from the baked image's box (its provisioner found everything in place)"
        }
        UpOutcome::Created => "up and provisioned",
        UpOutcome::Resumed => "up again (provisioned before)",
        UpOutcome::AlreadyRunning => "already running; nothing done",
    };
    Ok(format!(
        "{name}: {what} (vagrant, {provider}); `golab run LAB --provider vagrant --name {name}`"
    ))
}

/// `golab up`: the machine made, resumed or found running; the line saying where it is.
pub fn up(a: &UpRequest) -> Result<String> {
    match a.machine.provider {
        Provider::Host => {
            bail!("the host needs no `up`: give --provider qemu or --provider vagrant")
        }
        Provider::Vagrant => return vagrant_up(a),
        Provider::Qemu => {}
    }
    let mut o = qemu_options(a, true)?;
    let q = Qemu::new()?;
    // A machine made anew that would provision: provision once into a local base (a baked
    // image with these pins) and boot from it; the next machine with the same pins finds
    // it (`image::find_local`). A machine that exists resumes or is remade as it was.
    if o.baked.is_none() && !a.no_keep_base && !q.status(&a.machine.name)?.exists {
        let out = images_dir()?;
        let name = image::default_name(&o);
        eprintln!(
            "golab up: no baked image has these pins: provisioning once into the local base {} (later machines with these pins boot it; --no-keep-base: provision this machine only)",
            out.join(format!("{name}{}", image::MANIFEST_SUFFIX))
                .display()
        );
        let built = image::build(&q, &o, &out, &name, false)?;
        for (stage, took) in &built.stages {
            eprintln!("golab up: base {:>7.1}s  {stage}", took.as_secs_f64());
        }
        let baked = image::resolve(
            &built.manifest_path.to_string_lossy(),
            Some(&built.manifest_sha256),
            &Cache::from_env()?,
        )?;
        baked.apply(&mut o);
    }
    let vm = q.up(&a.machine.name, &o)?;
    for n in &vm.notes {
        eprintln!("note: {n}");
    }
    Ok(format!(
        "{}: up (ssh -p {} golab@127.0.0.1, dlv on 127.0.0.1:{}); `golab run LAB --provider qemu --name {}`",
        vm.name, vm.ports.ssh, vm.ports.dlv, vm.name
    ))
}

/// Where baked images live by default, and where `up` looks for one with its pins.
fn images_dir() -> Result<std::path::PathBuf> {
    Ok(crate::machine::state_root()?.join("images"))
}

/// The qemu provider's options from the command line: a baked image (`--image
/// NAME.manifest.json`, or with `use_baked` one in the images folder with the same pins
/// and base), else the base image and the pinned tarballs, fetched through the download
/// cache.
fn qemu_options(a: &UpRequest, use_baked: bool) -> Result<UpOptions> {
    let cache = Cache::from_env()?;
    let accel = match a.accel.as_str() {
        "auto" => Accel::Auto,
        "kvm" => Accel::Kvm,
        "hvf" => Accel::Hvf,
        "tcg" => Accel::Tcg,
        other => bail!("--accel {other}: use auto, kvm, hvf or tcg"),
    };
    let mut o = UpOptions::new("", "");
    o.kernel = a.boot.kernel.clone();
    o.initrd = a.boot.initrd.clone();
    o.cpus = a.cpus;
    o.memory_mib = a.memory;
    o.accel = accel;
    o.apt_mirror = a.apt_mirror.clone();
    if let Some(m) = a.image.as_deref().filter(|i| image::is_manifest(i)) {
        if !use_baked {
            bail!("--image {m} is a baked image already: give its base image to bake anew");
        }
        let baked = image::resolve(m, a.image_sha256.as_deref(), &cache)?;
        baked.apply(&mut o);
        eprintln!(
            "golab up: {} is a baked image (go{}, dlv {}): no provisioning",
            baked.manifest.name,
            baked.manifest.pins.go_version,
            baked.manifest.pins.dlv.version().unwrap_or("from apt")
        );
        return Ok(o);
    }
    o.image = match &a.image {
        Some(i) => i.into(),
        None => cache
            .fetch(&download::ubuntu_cloud_image(), true)
            .context("the default cloud image (or give one with --image FILE)")?,
    };
    o.go_version = a.pins.go.trim_start_matches("go").to_string();
    o.dlv_source = a.pins.dlv_source()?;
    let art = go_artifact(&a.pins)?;
    o.go_sha256 = art.sha256.clone();
    if use_baked && let Some(m) = image::find_local(&images_dir()?, &o) {
        let baked = image::resolve(&m.to_string_lossy(), None, &cache)?;
        eprintln!(
            "golab up: the baked image {} has these pins and this base: booting it (no provisioning)",
            m.display()
        );
        baked.apply(&mut o);
        return Ok(o);
    }
    o.go_tarball = match &a.go_tarball {
        Some(t) => t.clone(),
        None => cache.fetch(&art, true)?,
    };
    // A dlv source tarball comes through the download cache too, and is shared in.
    if let Some(art) = o.dlv_source.source_artifact() {
        o.dlv_tarball = Some(cache.fetch(&art, true)?);
    }
    Ok(o)
}

/// `golab image build`: provision once, bake; the lines saying where the set is and its
/// SHA-256.
pub fn image_build(a: &ImageBuildRequest) -> Result<Vec<String>> {
    if a.up.machine.provider == Provider::Vagrant {
        bail!("golab image build provisions with the qemu provider (leave out --provider)");
    }
    let o = qemu_options(&a.up, false)?;
    let out = match &a.out {
        Some(d) => d.clone(),
        None => images_dir()?,
    };
    let name = a
        .image_name
        .clone()
        .unwrap_or_else(|| image::default_name(&o));
    let built = image::build(&Qemu::new()?, &o, &out, &name, !a.no_box)?;
    for (stage, took) in &built.stages {
        eprintln!("golab image build: {:>7.1}s  {stage}", took.as_secs_f64());
    }
    let t = &built.manifest.tools;
    Ok(vec![
        format!(
            "{}: {}; dlv {}; {}; {}",
            built.manifest_path.display(),
            t.go,
            t.dlv,
            t.gdb,
            t.readelf
        ),
        format!("sha256 {}", built.manifest_sha256),
    ])
}

/// Whether the VM runs (no such VM, or stopped: not running).
pub fn status(m: &Which) -> Result<Status> {
    Ok(if m.provider == Provider::Vagrant {
        let v = Vagrant::new()?;
        let exists = v.dir(&m.name).join("Vagrantfile").is_file();
        let state = if exists {
            v.status(&m.name)?
        } else {
            "no such machine".to_string()
        };
        let running = state == "running";
        let doc = serde_json::json!({
            "name": m.name, "provider": "vagrant", "exists": exists, "running": running,
            "state": state, "dir": v.dir(&m.name),
        });
        Status {
            running,
            line: format!("{}: {state} (vagrant)", m.name),
            doc,
        }
    } else {
        let st = Qemu::new()?.status(&m.name)?;
        let doc = serde_json::json!({
            "name": st.name, "provider": "qemu", "exists": st.exists, "running": st.running(),
            "stage": st.stage.map(|s| s.as_str()), "pid": st.pid, "ports": st.ports, "dir": st.dir,
        });
        Status {
            running: st.running(),
            line: st.to_string(),
            doc,
        }
    })
}

/// Why `ssh` cannot go in, and what to do (`status` says not running for the same VM).
fn not_running(m: &Which, state: &str) -> Ssh {
    Ssh::NotRunning(format!(
        "the lab VM {} is not running ({state}): `golab up --provider {} --name {}` first",
        m.name,
        m.provider.vm_name(),
        m.name
    ))
}

/// `golab ssh`: a shell, or the command (in a login shell, so that the provisioned Go
/// and dlv are on PATH), in the lab VM.
pub fn ssh(m: &Which, command: &[String]) -> Result<Ssh> {
    let line = || {
        command
            .iter()
            .map(|w| crate::machine::shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if m.provider == Provider::Vagrant {
        let v = Vagrant::new()?;
        if !v.dir(&m.name).join("Vagrantfile").is_file() {
            return Ok(not_running(m, "no such machine"));
        }
        let state = v.status(&m.name)?;
        if state != "running" {
            return Ok(not_running(m, &state));
        }
        let mut c = std::process::Command::new("vagrant");
        c.arg("ssh").current_dir(v.dir(&m.name));
        if !command.is_empty() {
            c.arg("-c").arg(line());
        }
        let st = c.status().context("cannot run vagrant")?;
        return Ok(Ssh::Exited(st.code().unwrap_or(255) as u8));
    }
    let q = Qemu::new()?;
    let st = q.status(&m.name)?;
    if !st.running() {
        let state = if st.exists {
            "stopped"
        } else {
            "no such machine"
        };
        return Ok(not_running(m, state));
    }
    let mut c = q.ssh_command(&m.name)?;
    if !command.is_empty() {
        c.arg("--")
            .arg(format!("bash -lc {}", crate::machine::shell_quote(&line())));
    }
    let st = c.status().context("cannot run ssh")?;
    Ok(Ssh::Exited(st.code().unwrap_or(255) as u8))
}

/// `golab down`: the VM powered off; the line saying how.
pub fn down(m: &Which) -> Result<String> {
    if m.provider == Provider::Vagrant {
        Vagrant::new()?.down(&m.name)?;
        return Ok(format!("{}: halted", m.name));
    }
    let how = Qemu::new()?.down(&m.name)?;
    Ok(format!("{}: {how:?}", m.name))
}

/// `golab destroy`: the VM powered off and deleted.
pub fn destroy(m: &Which) -> Result<String> {
    if m.provider == Provider::Vagrant {
        Vagrant::new()?.destroy(&m.name)?;
    } else {
        Qemu::new()?.destroy(&m.name)?;
    }
    Ok(format!("{}: destroyed", m.name))
}

//! `golab up | status | ssh | down | destroy`: the lab machine's lifecycle, and the
//! machine a `--provider` names for `golab run`.

use crate::cli::{BootArgs, ImageBuildArgs, MachineArgs, PinArgs, UpArgs, VagrantArgs, VmProvider};
use anyhow::{Context, Result, bail};
use golab::download::{self, Cache};
use golab::exit::{Doc, Exit, document};
use golab::machine::Machine;
use golab::machine::image;
use golab::machine::qemu::{Accel, Qemu, UpOptions};
use golab::machine::vagrant::{DirectBoot, UpOutcome, Vagrant, VagrantConfig};
use std::process::ExitCode;

/// The machine `golab run --provider P --name N` runs on.
/// On a VM, the run's commands share one ssh connection (it ends with the run).
pub fn machine(provider: VmProvider, name: &str) -> Result<Machine> {
    let m = match provider {
        VmProvider::Host => return Ok(Machine::Host),
        VmProvider::Qemu => Qemu::new()?.machine(name)?,
        VmProvider::Vagrant => Vagrant::new()?.machine(name)?,
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
    pins: &PinArgs,
    boot: &BootArgs,
    v: &VagrantArgs,
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
    let (ssh_port, dlv_port) = golab::machine::free_port_pair()?;
    Ok(VagrantConfig {
        box_name: v.box_name.clone(),
        cpus,
        memory_mib: memory,
        ssh_port,
        dlv_port,
        labs_dir: {
            let d = golab::lab::labs_dir()?;
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
fn go_artifact(pins: &PinArgs) -> Result<download::Artifact> {
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

fn vagrant_up(a: &UpArgs) -> Result<ExitCode> {
    let provider = match a.vagrant_provider.as_str() {
        "auto" => Vagrant::auto_provider()?,
        p => p.parse()?,
    };
    let mut cfg = vagrant_config(a.cpus, a.memory, &a.pins, &a.boot, &a.vagrant)?;
    let vagrant = Vagrant::new()?;
    let as_file = std::path::Path::new(&cfg.box_name);
    if image::is_manifest(&cfg.box_name) {
        // A baked image's box: its pins and the kernel it boots come from the manifest;
        // the provisioner finds everything in place.
        let (baked, file) = image::resolve_box(
            &cfg.box_name,
            a.image_sha256.as_deref(),
            &Cache::from_env()?,
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
        cfg.boot = Some(DirectBoot {
            kernel: baked.kernel.clone().context("no kernel")?,
            initrd: baked.initrd.clone().context("no initrd")?,
            cmdline: "root=/dev/vda console=ttyS0".into(),
        });
        cfg.box_name = vagrant.add_box_file(&file)?;
    } else if cfg.box_name.ends_with(".box") && as_file.is_file() {
        cfg.box_name = vagrant.add_box_file(as_file)?;
    }
    let name = &a.machine.name;
    let (_, outcome) = vagrant.up(name, provider, cfg)?;
    let what = match outcome {
        UpOutcome::Created => "up and provisioned",
        UpOutcome::Resumed => "up again (provisioned before)",
        UpOutcome::AlreadyRunning => "already running; nothing done",
    };
    println!(
        "{name}: {what} (vagrant, {provider}); `golab run LAB --provider vagrant --name {name}`"
    );
    Ok(ExitCode::SUCCESS)
}

pub fn up(a: &UpArgs) -> Result<ExitCode> {
    match a.machine.provider {
        VmProvider::Host => {
            bail!("the host needs no `up`: give --provider qemu or --provider vagrant")
        }
        VmProvider::Vagrant => return vagrant_up(a),
        VmProvider::Qemu => {}
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
    println!(
        "{}: up (ssh -p {} golab@127.0.0.1, dlv on 127.0.0.1:{}); `golab run LAB --provider qemu --name {}`",
        vm.name, vm.ports.ssh, vm.ports.dlv, vm.name
    );
    Ok(ExitCode::SUCCESS)
}

/// Where baked images live by default, and where `up` looks for one with its pins.
fn images_dir() -> Result<std::path::PathBuf> {
    Ok(golab::machine::state_root()?.join("images"))
}

/// The qemu provider's options from the command line: a baked image (`--image
/// NAME.manifest.json`, or with `use_baked` one in the images folder with the same pins
/// and base), else the base image and the pinned tarballs, fetched through the download
/// cache.
fn qemu_options(a: &UpArgs, use_baked: bool) -> Result<UpOptions> {
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

/// `golab image build`: provision once, bake, print where the set is and its SHA-256.
pub fn image_build(a: &ImageBuildArgs) -> Result<ExitCode> {
    if a.up.machine.provider == VmProvider::Vagrant {
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
    println!(
        "{}: {}; dlv {}; {}; {}",
        built.manifest_path.display(),
        t.go,
        t.dlv,
        t.gdb,
        t.readelf
    );
    println!("sha256 {}", built.manifest_sha256);
    Ok(ExitCode::SUCCESS)
}

/// Whether the VM runs: `Exit::Ok`, else `Exit::NotRunning` (no such VM, or stopped).
pub fn status(m: &MachineArgs, json: bool) -> Result<ExitCode> {
    let (running, line, doc) = if m.provider == VmProvider::Vagrant {
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
        (running, format!("{}: {state} (vagrant)", m.name), doc)
    } else {
        let st = Qemu::new()?.status(&m.name)?;
        let doc = serde_json::json!({
            "name": st.name, "provider": "qemu", "exists": st.exists, "running": st.running(),
            "stage": st.stage.map(|s| s.as_str()), "pid": st.pid, "ports": st.ports, "dir": st.dir,
        });
        (st.running(), st.to_string(), doc)
    };
    if json {
        println!("{}", document(Doc::Status, doc));
    } else {
        println!("{line}");
    }
    Ok(if running { Exit::Ok } else { Exit::NotRunning }.into())
}

/// Says why `ssh` cannot go in: `Exit::NotRunning`, as `status` exits for the same VM.
fn not_running(m: &MachineArgs, state: &str) -> ExitCode {
    let provider = if m.provider == VmProvider::Vagrant {
        "vagrant"
    } else {
        "qemu"
    };
    eprintln!(
        "golab: the lab VM {} is not running ({state}): `golab up --provider {provider} --name {}` first",
        m.name, m.name
    );
    Exit::NotRunning.into()
}

pub fn ssh(m: &MachineArgs, command: &[String]) -> Result<ExitCode> {
    if m.provider == VmProvider::Vagrant {
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
            c.arg("-c").arg(
                command
                    .iter()
                    .map(|w| golab::machine::shell_quote(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        return Ok(ExitCode::from(
            c.status()
                .context("cannot run vagrant")?
                .code()
                .unwrap_or(255) as u8,
        ));
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
        // A login shell, so that the provisioned Go and dlv are on PATH.
        let line = command
            .iter()
            .map(|w| golab::machine::shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ");
        c.arg("--")
            .arg(format!("bash -lc {}", golab::machine::shell_quote(&line)));
    }
    let st = c.status().context("cannot run ssh")?;
    Ok(ExitCode::from(st.code().unwrap_or(255) as u8))
}

pub fn down(m: &MachineArgs) -> Result<ExitCode> {
    if m.provider == VmProvider::Vagrant {
        Vagrant::new()?.down(&m.name)?;
        println!("{}: halted", m.name);
        return Ok(ExitCode::SUCCESS);
    }
    let how = Qemu::new()?.down(&m.name)?;
    println!("{}: {how:?}", m.name);
    Ok(ExitCode::SUCCESS)
}

pub fn destroy(m: &MachineArgs) -> Result<ExitCode> {
    if m.provider == VmProvider::Vagrant {
        Vagrant::new()?.destroy(&m.name)?;
    } else {
        Qemu::new()?.destroy(&m.name)?;
    }
    println!("{}: destroyed", m.name);
    Ok(ExitCode::SUCCESS)
}

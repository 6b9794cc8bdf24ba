//! `golab up | status | ssh | down | destroy`: the lab machine's lifecycle, and the
//! machine a `--provider` names for `golab run`.

use crate::cli::{BootArgs, MachineArgs, PinArgs, UpArgs, VagrantArgs, VmProvider};
use anyhow::{Context, Result, bail};
use golab::download::{self, Cache};
use golab::exit::{Doc, Exit, document};
use golab::machine::DlvSource;
use golab::machine::Machine;
use golab::machine::qemu::{Accel, Qemu, UpOptions};
use golab::machine::vagrant::{DirectBoot, UpOutcome, Vagrant, VagrantConfig};
use std::process::ExitCode;

/// The machine `golab run --provider P --name N` runs on.
pub fn machine(provider: VmProvider, name: &str) -> Result<Machine> {
    match provider {
        VmProvider::Host => Ok(Machine::Host),
        VmProvider::Qemu => Qemu::new()?.machine(name),
        VmProvider::Vagrant => Vagrant::new()?.machine(name),
    }
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
        dlv: DlvSource::parse(&pins.dlv),
        boot,
        go_base_url,
        ..VagrantConfig::default()
    })
}

fn vagrant_up(a: &UpArgs) -> Result<ExitCode> {
    let provider = match a.vagrant_provider.as_str() {
        "auto" => Vagrant::auto_provider()?,
        p => p.parse()?,
    };
    let mut cfg = vagrant_config(a.cpus, a.memory, &a.pins, &a.boot, &a.vagrant)?;
    let vagrant = Vagrant::new()?;
    let as_file = std::path::Path::new(&cfg.box_name);
    if cfg.box_name.ends_with(".box") && as_file.is_file() {
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
    let cache = Cache::from_env()?;
    let image = match &a.image {
        Some(i) => i.clone(),
        None => cache
            .fetch(&download::ubuntu_cloud_image(), true)
            .context("the default cloud image (or give one with --image FILE)")?,
    };
    let (tarball, sha) = match (&a.go_tarball, &a.pins.go_sha256) {
        (Some(t), Some(s)) => (t.clone(), s.clone()),
        (Some(t), None) => {
            let pinned = download::require_go_tarball(&a.pins.go)?;
            (t.clone(), pinned.sha256)
        }
        (None, _) => {
            let art = download::require_go_tarball(&a.pins.go)?;
            (cache.fetch(&art, true)?, art.sha256)
        }
    };
    let mut o = UpOptions::new(image, tarball);
    o.kernel = a.boot.kernel.clone();
    o.initrd = a.boot.initrd.clone();
    o.cpus = a.cpus;
    o.memory_mib = a.memory;
    o.go_version = a.pins.go.trim_start_matches("go").to_string();
    o.go_sha256 = sha;
    o.dlv_source = DlvSource::parse(&a.pins.dlv);
    o.apt_mirror = a.apt_mirror.clone();
    o.accel = match a.accel.as_str() {
        "auto" => Accel::Auto,
        "kvm" => Accel::Kvm,
        "hvf" => Accel::Hvf,
        "tcg" => Accel::Tcg,
        other => bail!("--accel {other}: use auto, kvm, hvf or tcg"),
    };
    let vm = Qemu::new()?.up(&a.machine.name, &o)?;
    for n in &vm.notes {
        eprintln!("note: {n}");
    }
    println!(
        "{}: up (ssh -p {} golab@127.0.0.1, dlv on 127.0.0.1:{}); `golab run LAB --provider qemu --name {}`",
        vm.name, vm.ports.ssh, vm.ports.dlv, vm.name
    );
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

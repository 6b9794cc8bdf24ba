//! Starting QEMU: the free forwarded ports and the daemonized `qemu-system-x86_64` argv.

use super::accel::accel_name;
use super::cidata::seed_path;
use super::process::{pid_alive, stop_pid};
use super::state::read_ports;
use super::*;
use crate::exec;
use crate::files::write_atomic;
use anyhow::bail;
use std::net::TcpListener;
use std::process::Stdio;

/// Starts the machine's QEMU daemonized; retries with new ports when one was taken
/// between choosing it and QEMU binding it.
pub(super) fn start(
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

pub(super) fn qemu_command(
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

/// Free ports on 127.0.0.1, keeping the previous ones when they are still free.
pub(super) fn choose_ports(previous: Option<Ports>) -> Result<Ports> {
    if let Some(p) = previous
        && port_free(p.ssh)
        && port_free(p.dlv)
        && p.ssh != p.dlv
    {
        return Ok(p);
    }
    let (ssh, dlv) = super::super::free_port_pair()?;
    Ok(Ports { ssh, dlv })
}

pub(super) fn port_free(p: u16) -> bool {
    p != 0 && TcpListener::bind(("127.0.0.1", p)).is_ok()
}

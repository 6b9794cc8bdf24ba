//! Readiness with deadlines: ssh answers, cloud-init's result (unless the image is
//! baked), then the tools at the pinned (or the manifest's) versions.

use super::process::pid_alive;
use super::state::write_stage;
use super::*;
use crate::exec;
use anyhow::{Context, bail};

impl Qemu {
    pub(super) fn wait_ready(
        &self,
        mut vm: LabVm,
        made: &Made,
        first_boot: bool,
        say: &Say,
    ) -> Result<LabVm> {
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
    pub(super) fn check_ready_tools(
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
    pub(super) fn alive(&self, vm: &LabVm) -> Result<()> {
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
}

pub(super) fn serial_tail(dir: &Path) -> String {
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

pub(super) fn qemu_log_tail(dir: &Path) -> String {
    let s = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
    if s.trim().is_empty() {
        String::new()
    } else {
        format!("\nqemu said: {}", s.trim())
    }
}

pub(super) fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Reads `go version`, `dlv version`, `gdb --version`, `readelf --version` (separated by
/// `---`) and checks the pinned ones.
pub(super) fn check_tools(out: &str, made: &Made) -> Result<Tools> {
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

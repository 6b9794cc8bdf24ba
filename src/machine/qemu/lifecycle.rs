//! A machine's life: `up` (create, resume, or find it running), `status`, `down`,
//! `destroy`, and reaching it (`machine`, `ssh_command`, `copy_in`).

use super::accel::{accel_name, read_accel};
use super::cidata::{Mirror, SEED, render_seed};
use super::disk::{boot_files, check_sha256, image_format, must};
use super::launch::start;
use super::process::{Kill, pid_alive, qmp_powerdown, running_pid, stop_pid, wait_gone};
use super::state::{Lock, check_name, differences, read_made, read_ports, read_stage, write_stage};
use super::*;
use crate::exec;
use crate::files::write_atomic;
use anyhow::{Context, bail};
use std::io::Read;
use std::process::Stdio;

impl Qemu {
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

    pub(super) fn create(&self, name: &str, dir: &Path, opts: &UpOptions) -> Result<()> {
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
        write_atomic(&cidata.join("golab.env"), seed.golab_env.as_bytes())?;
        super::super::seed::write(
            &dir.join(SEED),
            &[
                ("user-data", seed.user_data.as_bytes()),
                ("meta-data", seed.meta_data.as_bytes()),
                ("golab.env", seed.golab_env.as_bytes()),
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
            .arg(format!("cat > {}", super::super::shell_quote(remote)));
        c.stdin(
            std::fs::File::open(local)
                .with_context(|| format!("cannot read {}", local.display()))?,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let (st, err) = finish_copy(exec::Group::spawn(c, "ssh (copy in)")?)?;
        if !st.success() {
            bail!(
                "copying {} into {name}:{remote} failed: {}",
                local.display(),
                err.trim()
            );
        }
        Ok(())
    }

    /// Copies a file of the guest (readable by the lab user) to `local`, atomically: a
    /// copy that fails leaves nothing at `local`.
    pub fn copy_out(&self, name: &str, remote: &str, local: &Path) -> Result<()> {
        let tmp = local.with_file_name(format!(
            ".{}.part",
            local
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let mut c = self.ssh_command(name)?;
        c.arg("--")
            .arg(format!("cat -- {}", super::super::shell_quote(remote)));
        c.stdin(Stdio::null())
            .stdout(
                std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot write {}", tmp.display()))?,
            )
            .stderr(Stdio::piped());
        let (st, err) = finish_copy(exec::Group::spawn(c, "ssh (copy out)")?)?;
        if !st.success() {
            let _ = std::fs::remove_file(&tmp);
            bail!(
                "copying {name}:{remote} to {} failed: {}",
                local.display(),
                err.trim()
            );
        }
        std::fs::rename(&tmp, local)
            .with_context(|| format!("cannot move {} into place", tmp.display()))?;
        Ok(())
    }

    /// Powers the machine off: over ssh, then ACPI through QMP, then SIGTERM, then SIGKILL,
    /// each with a deadline. The folder stays (`up` boots it again).
    pub fn down(&self, name: &str) -> Result<Stopped> {
        check_name(name)?;
        let _lock = Lock::take(&self.root, name)?;
        self.down_locked(name)
    }

    pub(super) fn down_locked(&self, name: &str) -> Result<Stopped> {
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

/// Waits (5 min at most) for an ssh that copies a file in or out; its status and stderr.
fn finish_copy(mut g: exec::Group) -> Result<(std::process::ExitStatus, String)> {
    let mut err = String::new();
    let pipe = g.child_mut().stderr.take();
    let st = g.wait_deadline(Instant::now() + Duration::from_secs(300))?;
    if let Some(mut p) = pipe {
        let _ = p.read_to_string(&mut err);
    }
    Ok((st, err))
}

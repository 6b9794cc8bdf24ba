//! The accelerator: KVM, HVF or TCG, with `--accel auto`'s short probe boot.

use super::*;
use crate::exec;
use crate::files::write_atomic;
use crate::sys;
use std::process::Stdio;

impl Qemu {
    pub(super) fn choose_accel(
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
    pub(super) fn accel_probe(
        &self,
        accel: AccelUsed,
        made: &Made,
        say: &Say,
    ) -> Result<(bool, String)> {
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
}

pub(super) fn accel_name(a: AccelUsed) -> &'static str {
    match a {
        AccelUsed::Kvm => "kvm",
        AccelUsed::Hvf => "hvf",
        AccelUsed::Tcg => "tcg",
    }
}

pub(super) fn read_accel(dir: &Path) -> Option<AccelUsed> {
    read_accel_name(&std::fs::read_to_string(dir.join("accel")).ok()?)
}

pub(super) fn read_accel_name(name: &str) -> Option<AccelUsed> {
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
pub(super) enum AutoPlan {
    /// Try this accelerator with a short boot first.
    Probe(AccelUsed),
    /// Software emulation, and why.
    Tcg(String),
}

pub(super) fn auto_plan(os: &str, arch: &str, kvm_usable: bool, hv_support: bool) -> AutoPlan {
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

pub(super) fn hv_support() -> bool {
    sys::host::hv_support()
}

pub(super) fn kvm_usable() -> bool {
    matches!(sys::host::kvm(), sys::host::Kvm::Api(_))
}

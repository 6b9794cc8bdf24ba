//! Baked lab VM images (`golab image build`, `golab up --image NAME.manifest.json`): a
//! machine provisioned once with the pins, powered off and flattened into a standalone
//! qcow2, with the kernel and initrd it boots and a manifest that says what it holds.
//! A machine made from one needs no provisioning; at readiness its tools must answer
//! exactly as the manifest lists them.
//!
//! A baked disk boots without cloud-init: `build` turns it off and installs
//! `cloudinit/golab-seed.{sh,service}` (a shell unit before sshd that reads the seed's
//! `golab.env`) and `cloudinit/golab-warm.{sh,service}` (after sshd: one -l -N build and
//! debugger session), and remakes the initrd with only the modules this VM needs.
//!
//! Files, in one folder: `NAME.qcow2`, `NAME.vmlinuz`, `NAME.initrd` (when the base boots
//! directly), `NAME.manifest.json` (format, pins, tools as found inside, the SHA-256 and
//! size of every file) and `NAME.manifest.json.sha256` (the manifest's own SHA-256, in
//! `sha256sum` form: the one value a course publishes). A manifest given by URL is
//! fetched through the download cache with that SHA-256, and every file it lists is
//! fetched beside it and checked against its own.
//!
//! The Vagrant box made from the same disk (`NAME.libvirt.box`, listed under `boxes` in
//! the manifest): the baked file system edited offline with e2fsprogs' `debugfs` (no
//! root, no loop device): DHCP instead of QEMU user networking's fixed address,
//! cloud-init off (Vagrant does keys itself), Vagrant's insecure key for the lab user
//! (swapped by Vagrant at the first `up`), host keys made at each machine's first boot.
//! vagrant-libvirt boots it with the image's kernel and initrd (its disk has no boot
//! loader). VirtualBox and vagrant-qemu boot no kernel of their own: their boxes
//! (`NAME.virtualbox.box`, a VMDK with an OVF, and `NAME.qemu.box`, libvirt's format,
//! which vagrant-qemu imports; [`super::bootdisk`]) hold the same edited file system
//! behind an MBR and GRUB.
//!
//! Not for: booting (that is [`super::qemu`]).

use super::DlvSource;
pub use super::boxfs::LAB_USER;
use super::boxfs::{make_vagrant_ready, tool_ok, vagrant_insecure_keys};
use super::qemu::{Qemu, Tools, UpOptions};
use crate::download::{self, Artifact, Cache};
use crate::exec;
use crate::files::write_atomic;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The manifest's format: 2 since baked images boot without cloud-init (`golab-seed.sh`
/// reads the seed's `golab.env`, which a golab before it does not write); 1 (cloud-init's
/// init stage reads the seed) still boots.
pub const FORMAT: &str = "golab-image 2";
const FORMATS_READ: [&str; 2] = ["golab-image 1", FORMAT];

/// What a baked image runs instead of cloud-init, before sshd (see `build`).
const SEED_SCRIPT: &str = include_str!("cloudinit/golab-seed.sh");
const SEED_UNIT: &str = include_str!("cloudinit/golab-seed.service");
const WARM_SCRIPT: &str = include_str!("cloudinit/golab-warm.sh");
const WARM_UNIT: &str = include_str!("cloudinit/golab-warm.service");
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pins {
    pub go_version: String,
    pub go_sha256: String,
    pub dlv: DlvSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub name: String,
    /// The base image it was provisioned from (file name and SHA-256).
    pub base: FileEntry,
    pub pins: Pins,
    pub tools: Tools,
    /// The disk first, then the kernel and initrd when there are.
    pub files: Vec<FileEntry>,
    /// Vagrant boxes of the same disk (`NAME.libvirt.box`), beside the manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boxes: Vec<FileEntry>,
}

impl Manifest {
    pub fn disk(&self) -> Result<&FileEntry> {
        self.files
            .iter()
            .find(|f| f.name.ends_with(".qcow2"))
            .context("the manifest lists no .qcow2 disk")
    }
    fn by_suffix(&self, suffix: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name.ends_with(suffix))
    }

    pub fn parse(text: &str, from: &str) -> Result<Manifest> {
        let m: Manifest = serde_json::from_str(text)
            .with_context(|| format!("{from} is not a golab image manifest"))?;
        if !FORMATS_READ.contains(&m.format.as_str()) {
            bail!(
                "{from}: format {:?}, golab reads {FORMATS_READ:?}",
                m.format
            );
        }
        for f in m.files.iter().chain(&m.boxes) {
            if f.name.contains('/') || f.name.starts_with('.') || f.name.is_empty() {
                bail!("{from}: file name {:?} is not a plain name", f.name);
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("{from}: {} has no SHA-256", f.name);
            }
        }
        m.disk()?;
        Ok(m)
    }
}

/// A baked image ready to boot: its files on this machine, verified.
#[derive(Debug, Clone)]
pub struct Baked {
    pub manifest: Manifest,
    pub disk: PathBuf,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
}

impl Baked {
    /// The options that boot a machine from it.
    pub fn apply(&self, o: &mut UpOptions) {
        o.image = self.disk.clone();
        o.kernel = self.kernel.clone();
        o.initrd = self.initrd.clone();
        o.go_version = self.manifest.pins.go_version.clone();
        o.go_sha256 = self.manifest.pins.go_sha256.clone();
        o.dlv_source = self.manifest.pins.dlv.clone();
        o.dlv_tarball = None;
        o.baked = Some(self.manifest.tools.clone());
    }
}

/// Whether `--image` names a baked image (its manifest) rather than a plain disk.
pub fn is_manifest(image: &str) -> bool {
    image.ends_with(MANIFEST_SUFFIX)
}

/// A baked image from its manifest, a local file or a URL. A URL needs the manifest's
/// SHA-256 (`want`); a local manifest is checked against it when given. Every file is
/// checked against the manifest's SHA-256 (a URL's through the download cache).
pub fn resolve(image: &str, want: Option<&str>, cache: &Cache) -> Result<Baked> {
    if image.contains("://") {
        let want = want.with_context(|| {
            format!("--image {image}: a manifest by URL needs its SHA-256 (--image-sha256)")
        })?;
        let (base, name) = image
            .rsplit_once('/')
            .context("the manifest URL has no file name")?;
        let art = Artifact {
            name: name.to_string(),
            url: image.to_string(),
            sha256: want.trim().to_ascii_lowercase(),
        };
        let local = cache.fetch(&art, true)?;
        let m = Manifest::parse(&std::fs::read_to_string(&local)?, image)?;
        let mut paths = Vec::new();
        for f in &m.files {
            let a = Artifact {
                name: f.name.clone(),
                url: format!("{base}/{}", f.name),
                sha256: f.sha256.to_ascii_lowercase(),
            };
            paths.push(cache.fetch(&a, true)?);
        }
        return Ok(located(m, |n| {
            paths
                .iter()
                .find(|p| p.file_name().is_some_and(|f| f == n))
                .cloned()
        }));
    }
    let path = std::fs::canonicalize(image).with_context(|| format!("no manifest at {image}"))?;
    let text = std::fs::read_to_string(&path)?;
    if let Some(w) = want {
        let got = download::sha256_file(&path)?;
        if !got.eq_ignore_ascii_case(w.trim()) {
            bail!("{image} has SHA-256 {got}, not {}", w.trim());
        }
    }
    let m = Manifest::parse(&text, image)?;
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    for f in &m.files {
        let p = dir.join(&f.name);
        let got = download::sha256_file(&p)
            .with_context(|| format!("{image} lists {}, which is not beside it", f.name))?;
        if got != f.sha256.to_ascii_lowercase() {
            bail!(
                "{} has SHA-256 {got}, its manifest says {}",
                p.display(),
                f.sha256
            );
        }
    }
    Ok(located(m, |n| Some(dir.join(n))))
}

/// A baked image's Vagrant box for `provider` (`golab up --provider vagrant --box
/// NAME.manifest.json`): the image as [`resolve`] checks it (with the kernel and initrd
/// the libvirt box boots), and the box file beside the manifest (a URL's through the
/// download cache), checked by its SHA-256. libvirt takes `NAME.libvirt.box`, VirtualBox
/// `NAME.virtualbox.box`, vagrant-qemu `NAME.qemu.box` (the last two boot by themselves).
pub fn resolve_box(
    manifest: &str,
    want: Option<&str>,
    cache: &Cache,
    provider: super::vagrant::Provider,
) -> Result<(Baked, PathBuf)> {
    use super::vagrant::Provider;
    let suffix = match provider {
        Provider::Libvirt => ".libvirt.box",
        Provider::Virtualbox => ".virtualbox.box",
        Provider::Qemu => ".qemu.box",
    };
    let baked = resolve(manifest, want, cache)?;
    let b = baked
        .manifest
        .boxes
        .iter()
        .find(|b| b.name.ends_with(suffix))
        .with_context(|| match baked.manifest.boxes.is_empty() {
            true => format!("{manifest} lists no Vagrant box (it was baked with --no-box)"),
            false => format!(
                "{manifest} lists no {provider} box (it has {}; a golab before the VirtualBox and vagrant-qemu boxes baked only libvirt's)",
                baked.manifest.boxes.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })?;
    let path = if manifest.contains("://") {
        let (base, _) = manifest
            .rsplit_once('/')
            .context("the manifest URL has no file name")?;
        cache.fetch(
            &Artifact {
                name: b.name.clone(),
                url: format!("{base}/{}", b.name),
                sha256: b.sha256.to_ascii_lowercase(),
            },
            true,
        )?
    } else {
        let p = baked.disk.parent().unwrap_or(Path::new("/")).join(&b.name);
        let got = download::sha256_file(&p)
            .with_context(|| format!("{manifest} lists {}, which is not beside it", b.name))?;
        if got != b.sha256.to_ascii_lowercase() {
            bail!(
                "{} has SHA-256 {got}, its manifest says {}",
                p.display(),
                b.sha256
            );
        }
        p
    };
    if provider == Provider::Libvirt && (baked.kernel.is_none() || baked.initrd.is_none()) {
        bail!(
            "{manifest}: the box's disk boots directly, but the manifest lists no kernel and initrd"
        );
    }
    Ok((baked, path))
}

fn located(m: Manifest, at: impl Fn(&str) -> Option<PathBuf>) -> Baked {
    let find = |suffix: &str| m.by_suffix(suffix).and_then(|f| at(&f.name));
    Baked {
        disk: m.disk().ok().and_then(|f| at(&f.name)).unwrap_or_default(),
        kernel: find(".vmlinuz"),
        initrd: find(".initrd"),
        manifest: m,
    }
}

/// The default artifact name for a set of pins: `golab-go1.17.1-dlv1.9.1`.
pub fn default_name(o: &UpOptions) -> String {
    let dlv = o.dlv_source.version().unwrap_or("apt").to_string();
    format!("golab-go{}-dlv{dlv}", o.go_version)
}

/// What `golab image build` made.
#[derive(Debug, Clone)]
pub struct Built {
    pub manifest_path: PathBuf,
    pub manifest: Manifest,
    pub manifest_sha256: String,
    pub stages: Vec<(String, Duration)>,
}

/// Provisions a temporary machine with `opts`' pins, cleans it for baking (cloud-init's
/// instance state, the build machine's login key, dlv's build cache), powers it off and
/// writes the image set into `out` as `name`.
pub fn build(q: &Qemu, opts: &UpOptions, out: &Path, name: &str, with_box: bool) -> Result<Built> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        bail!("image name {name:?}: use a plain file name");
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let out = std::fs::canonicalize(out)?;
    let vm_name = format!("bake-{}", std::process::id());
    let mut stages = Vec::new();
    let r = (|| -> Result<Built> {
        let t = Instant::now();
        let vm = q.up(&vm_name, opts)?;
        stages.push(("provision (golab up)".to_string(), t.elapsed()));
        let made: serde_json::Value =
            serde_json::from_slice(&std::fs::read(q.dir(&vm_name).join("machine.json"))?)?;
        let t = Instant::now();
        let initrd = small_initrd(q, &vm_name, &out, name, made["kernel"].is_string());
        stages.push((
            match &initrd {
                Ok(Some(_)) => "initrd: the modules this VM needs (MODULES=dep)".to_string(),
                Ok(None) => "initrd: remade in the image (it boots its own loader)".to_string(),
                Err(e) => format!("initrd: the base's, not remade ({e:#})"),
            },
            t.elapsed(),
        ));
        let t = Instant::now();
        // cloud-init is turned off: what it did at each boot of a machine from the image
        // (the lab user's key, the host name, host keys for a new instance, the mirror,
        // the share) is golab-seed.sh's, a shell unit before sshd that reads the seed's
        // golab.env. cloud-init's Python took ~40 s of each boot under emulation, and
        // sshd waited for it.
        let staging = tempfile::tempdir()?;
        // After sshd, golab-warm.service does one build and debugger session: a machine's
        // first lab run then finds the toolchain read and (under emulation) translated.
        for (name, text) in [
            ("golab-seed.sh", SEED_SCRIPT),
            ("golab-seed.service", SEED_UNIT),
            ("golab-warm.sh", WARM_SCRIPT),
            ("golab-warm.service", WARM_UNIT),
        ] {
            let local = staging.path().join(name);
            std::fs::write(&local, text)?;
            q.copy_in(&vm_name, &local, &format!("/tmp/{name}"))?;
        }
        let mut c = q.ssh_command(&vm_name)?;
        // cloud-init forgets this instance (the next boot is a new one: its own user key,
        // host keys, machine-id); the build's key and dlv's module/build caches go.
        // The login key goes last, with the power-off that follows it.
        // A machine from the image needs only cloud-init's init stage (bootcmd,
        // write_files, its user and key; sshd starts after it): the config and final
        // stages are masked (each a Python start under emulation: ~25 s of the first
        // boot), and `golab up` waits for nothing after ssh answers. The modules udev
        // would load for QEMU's emulated CPU and chipset (nested KVM, a watchdog, the PC
        // speaker) are of no use in a lab VM and cost a boot seconds under emulation.
        c.arg("--").arg(
            "set -e; sudo cloud-init clean --logs --seed; \
             sudo systemctl mask cloud-config.service cloud-final.service >/dev/null 2>&1; \
             for u in golab-seed golab-warm; do \
               sudo install -D -m 0755 /tmp/$u.sh /usr/local/lib/golab/$u.sh; \
               sudo install -m 0644 /tmp/$u.service /etc/systemd/system/$u.service; \
               rm -f /tmp/$u.sh /tmp/$u.service; \
               sudo systemctl enable $u.service >/dev/null 2>&1; \
             done; \
             sudo touch /etc/cloud/cloud-init.disabled; \
             printf 'blacklist %s\\n' kvm_amd kvm_intel kvm iTCO_wdt iTCO_vendor_support pcspkr | sudo tee /etc/modprobe.d/golab-baked.conf >/dev/null; \
             sudo rm -rf /var/cache/golab/gocache /var/cache/golab/gopath /var/cache/golab/*.tar.* /tmp/golab-*; \
             sudo truncate -s 0 /etc/machine-id; sudo fstrim -a >/dev/null 2>&1 || true; sync; \
             rm -f ~/.ssh/authorized_keys; sudo systemctl --no-block poweroff",
        );
        let o = exec::run(c, "ssh (clean for baking)", Duration::from_secs(600))?;
        if !o.ok() {
            bail!(
                "cleaning {vm_name} for baking failed: {}",
                o.combined().trim()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        while q.status(&vm_name)?.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
        }
        // Not running: this only tidies up; still running: ACPI, then signals.
        q.down(&vm_name)?;
        stages.push(("clean and power off".to_string(), t.elapsed()));

        let t = Instant::now();
        let disk_name = format!("{name}.qcow2");
        let tmp = out.join(format!(".{disk_name}.tmp"));
        let mut c = Command::new("qemu-img");
        c.args(["convert", "-O", "qcow2"])
            .arg(q.dir(&vm_name).join("overlay.qcow2"))
            .arg(&tmp);
        let o = exec::run(c, "qemu-img convert", Duration::from_secs(3600))?;
        if !o.ok() {
            let _ = std::fs::remove_file(&tmp);
            bail!("qemu-img convert failed: {}", o.combined().trim());
        }
        std::fs::rename(&tmp, out.join(&disk_name))?;
        let mut files = vec![entry(&out, &disk_name)?];
        for (key, suffix) in [("kernel", "vmlinuz"), ("initrd", "initrd")] {
            let n = format!("{name}.{suffix}");
            if let (Ok(Some(small)), "initrd") = (&initrd, key) {
                std::fs::rename(small, out.join(&n))?;
                files.push(entry(&out, &n)?);
            } else if let Some(p) = made[key].as_str() {
                std::fs::copy(p, out.join(&n)).with_context(|| format!("cannot copy {p}"))?;
                files.push(entry(&out, &n)?);
            }
        }
        let base_path = PathBuf::from(made["image"].as_str().unwrap_or_default());
        let base = FileEntry {
            name: base_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: download::sha256_file(&base_path)?,
            bytes: std::fs::metadata(&base_path)?.len(),
        };
        stages.push(("flatten, checksums".to_string(), t.elapsed()));
        let mut manifest = Manifest {
            format: FORMAT.into(),
            name: name.into(),
            boxes: Vec::new(),
            base,
            pins: Pins {
                go_version: opts.go_version.clone(),
                go_sha256: opts.go_sha256.clone(),
                dlv: opts.dlv_source.clone(),
            },
            tools: vm.tools.clone(),
            files,
        };
        let manifest_path = out.join(format!("{name}{MANIFEST_SUFFIX}"));
        // The image set is written before the box is made: a box that cannot be made
        // costs the box, not the provisioning.
        let mut sha = write_manifest(&out, name, &manifest)?;
        if with_box {
            let t = Instant::now();
            let n = format!("{name}.libvirt.box");
            libvirt_box(&out.join(&disk_name), &out.join(&n)).with_context(|| {
                format!(
                    "the image is baked ({}), but its Vagrant box could not be made (`golab image build --no-box` leaves it out)",
                    manifest_path.display()
                )
            })?;
            manifest.boxes.push(entry(&out, &n)?);
            sha = write_manifest(&out, name, &manifest)?;
            stages.push(("Vagrant box (libvirt)".to_string(), t.elapsed()));
            // VirtualBox boots from the disk: the same file system behind an MBR and GRUB
            // (a base with its own loader would need none of that; golab makes its box
            // only from a base that boots directly, as golab's own Debian base does).
            if made["kernel"].is_string() {
                let t = Instant::now();
                let (vb, qb) = (format!("{name}.virtualbox.box"), format!("{name}.qemu.box"));
                let to = super::bootdisk::Dests {
                    virtualbox: &out.join(&vb),
                    qemu: Some(&out.join(&qb)),
                };
                super::bootdisk::boxes(&out.join(&disk_name), None, &to).with_context(|| {
                    format!(
                        "the image and its libvirt box are made ({}), but its VirtualBox and vagrant-qemu boxes could not be",
                        manifest_path.display()
                    )
                })?;
                manifest.boxes.push(entry(&out, &vb)?);
                manifest.boxes.push(entry(&out, &qb)?);
                sha = write_manifest(&out, name, &manifest)?;
                stages.push((
                    "Vagrant boxes that boot by themselves (VirtualBox, vagrant-qemu)".to_string(),
                    t.elapsed(),
                ));
            }
        }
        Ok(Built {
            manifest_path,
            manifest,
            manifest_sha256: sha,
            stages: stages.clone(),
        })
    })();
    let _ = q.destroy(&vm_name);
    r
}

/// The initrd of a baked image: initramfs-tools' `MODULES=dep` in the guest, so that it
/// holds the modules this virtual machine needs (virtio, ext4: ~7 MB; plus the SATA and
/// IDE disk drivers, listed in /etc/initramfs-tools/modules, which the VirtualBox box
/// boots from) rather than most
/// of the kernel's (a Debian base's is 36 MB; unpacking it and its udev's coldplug took
/// 8-30 s of each boot under emulation). With direct kernel boot (`direct`) it is copied
/// out to `out/.NAME.initrd` (the kernel is the one running); else the image's own is
/// remade in place and `None` comes back. A guest without update-initramfs keeps its own.
/// It is looked for as root: in /usr/sbin, which the lab user's PATH over ssh leaves out
/// (the first bench bakes said "no update-initramfs" for that reason and kept 36 MB).
fn small_initrd(
    q: &Qemu,
    vm: &str,
    out: &Path,
    name: &str,
    direct: bool,
) -> Result<Option<PathBuf>> {
    let mut c = q.ssh_command(vm)?;
    c.arg("--").arg(
        "set -e; sudo sh -c 'command -v update-initramfs' >/dev/null || { echo 'no update-initramfs in the guest' >&2; exit 3; }; \
         printf 'MODULES=dep\\n' | sudo tee /etc/initramfs-tools/conf.d/golab-baked.conf >/dev/null; \
         printf '%s\\n' ahci sd_mod ata_piix | sudo tee -a /etc/initramfs-tools/modules >/dev/null; \
         sudo update-initramfs -u -k \"$(uname -r)\" >/dev/null; \
         sudo chmod 0644 \"/boot/initrd.img-$(uname -r)\"; uname -r",
    );
    let o = exec::run(c, "ssh (update-initramfs)", Duration::from_secs(1800))?;
    if !o.ok() {
        bail!(
            "update-initramfs failed: {}",
            exec::tail(o.combined().trim())
        );
    }
    if !direct {
        return Ok(None);
    }
    let kver = o.stdout.lines().last().unwrap_or("").trim().to_string();
    if kver.is_empty() || kver.contains('/') {
        bail!("the guest's kernel version {kver:?} is not a plain one");
    }
    let local = out.join(format!(".{name}.initrd"));
    q.copy_out(vm, &format!("/boot/initrd.img-{kver}"), &local)?;
    if std::fs::metadata(&local)?.len() < 1 << 20 {
        let _ = std::fs::remove_file(&local);
        bail!("the guest's initrd is smaller than 1 MiB: not used");
    }
    Ok(Some(local))
}

/// Writes `NAME.manifest.json` and its `.sha256`; the manifest's SHA-256.
fn write_manifest(out: &Path, name: &str, m: &Manifest) -> Result<String> {
    let text = serde_json::to_string_pretty(m)? + "\n";
    let path = out.join(format!("{name}{MANIFEST_SUFFIX}"));
    write_atomic(&path, text.as_bytes())?;
    let sha = download::sha256_file(&path)?;
    write_atomic(
        &out.join(format!("{name}{MANIFEST_SUFFIX}.sha256")),
        format!("{sha}  {name}{MANIFEST_SUFFIX}\n").as_bytes(),
    )?;
    Ok(sha)
}

/// The Vagrant box of a baked disk: `box.img` (qcow2), `metadata.json` and a Vagrantfile,
/// in a tar at `dest`. The format vagrant-libvirt and vagrant-qemu both read.
pub fn libvirt_box(disk: &Path, dest: &Path) -> Result<()> {
    let keys = vagrant_insecure_keys()?;
    let dir = dest.parent().context("the box has no folder")?;
    let work = tempfile::Builder::new().prefix(".box-").tempdir_in(dir)?;
    let raw = work.path().join("root.raw");
    let mut c = Command::new("qemu-img");
    c.args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(disk)
        .arg(&raw);
    tool_ok(c, "qemu-img convert (to raw, for the box)", 3600)?;
    let bytes = std::fs::metadata(&raw)?.len();
    make_vagrant_ready(&raw, &keys)?;
    let b = work.path().join("box");
    std::fs::create_dir(&b)?;
    let mut c = Command::new("qemu-img");
    c.args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(b.join("box.img"));
    tool_ok(c, "qemu-img convert (the box's disk)", 3600)?;
    std::fs::remove_file(&raw)?;
    let gib = bytes.div_ceil(1 << 30);
    std::fs::write(
        b.join("metadata.json"),
        format!("{{\"provider\":\"libvirt\",\"format\":\"qcow2\",\"virtual_size\":{gib}}}\n"),
    )?;
    std::fs::write(b.join("Vagrantfile"), BOX_VAGRANTFILE)?;
    let tmp = work.path().join("box.tar");
    let mut c = Command::new("tar");
    c.arg("-C")
        .arg(&b)
        .arg("-cf")
        .arg(&tmp)
        .args(["metadata.json", "Vagrantfile", "box.img"]);
    tool_ok(c, "tar (the box)", 3600)?;
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// The box's own Vagrantfile: the lab user logs in (the baked image's, with its warm Go
/// build cache), and the boot that its disk needs is said.
const BOX_VAGRANTFILE: &str = r#"# golab's baked lab VM box (golab image build). Its disk has no boot loader: boot it
# with libvirt.kernel, libvirt.initrd and libvirt.cmd_line = "root=/dev/vda console=ttyS0"
# (the kernel and initrd are listed beside it in NAME.manifest.json).
Vagrant.configure("2") do |config|
  config.ssh.username = "golab"
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
  end
  config.vm.synced_folder ".", "/vagrant", type: "rsync"
end
"#;

fn entry(dir: &Path, name: &str) -> Result<FileEntry> {
    let p = dir.join(name);
    Ok(FileEntry {
        name: name.into(),
        sha256: download::sha256_file(&p)?,
        bytes: std::fs::metadata(&p)?.len(),
    })
}

/// A baked image in `dir` made with these pins from this base image, if there is one:
/// what `golab up` boots instead of provisioning again.
pub fn find_local(dir: &Path, opts: &UpOptions) -> Option<PathBuf> {
    let base_name = opts.image.file_name()?.to_string_lossy().into_owned();
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(MANIFEST_SUFFIX))
        .filter(|p| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| Manifest::parse(&t, "").ok())
                .is_some_and(|m| {
                    m.pins.go_version == opts.go_version
                        && m.pins.go_sha256.eq_ignore_ascii_case(&opts.go_sha256)
                        && m.pins.dlv == opts.dlv_source
                        && m.base.name == base_name
                })
        })
        .collect();
    found.sort();
    found.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            name: "golab-go1.17.1-dlv1.9.1".into(),
            base: FileEntry {
                name: "debian-12-golab.img".into(),
                sha256: "a".repeat(64),
                bytes: 1,
            },
            pins: Pins {
                go_version: "1.17.1".into(),
                go_sha256: "b".repeat(64),
                dlv: DlvSource::GoInstall("v1.9.1".into()),
            },
            tools: Tools {
                go: "go version go1.17.1 linux/amd64".into(),
                dlv: "1.9.1".into(),
                gdb: "GNU gdb (Debian 13.1-3) 13.1".into(),
                readelf: "GNU readelf (GNU Binutils for Debian) 2.40".into(),
            },
            files: Vec::new(),
            boxes: Vec::new(),
        }
    }

    #[test]
    fn a_local_manifest_is_checked_file_by_file_and_found_by_its_pins() {
        let d = tempfile::tempdir().unwrap();
        let mut m = manifest();
        for n in ["x.qcow2", "x.vmlinuz", "x.initrd"] {
            std::fs::write(d.path().join(n), n).unwrap();
            m.files.push(entry(d.path(), n).unwrap());
        }
        let path = d.path().join("x.manifest.json");
        std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
        let cache = Cache::new(d.path().join("cache"), None);
        let b = resolve(path.to_str().unwrap(), None, &cache).unwrap();
        assert_eq!(b.disk, d.path().canonicalize().unwrap().join("x.qcow2"));
        assert!(b.kernel.is_some() && b.initrd.is_some());
        let mut o = UpOptions::new("/img/debian-12-golab.img", "");
        o.go_sha256 = "b".repeat(64);
        b.apply(&mut o);
        assert_eq!(o.baked.as_ref().unwrap(), &m.tools);
        // Found again by its pins and base image, not by another pin.
        let mut o = UpOptions::new("/img/debian-12-golab.img", "");
        o.go_sha256 = "b".repeat(64);
        assert_eq!(find_local(d.path(), &o), Some(path.clone()));
        o.dlv_source = DlvSource::Apt;
        assert_eq!(find_local(d.path(), &o), None);
        // A file changed after baking, a wrong manifest SHA-256, a URL without one.
        let sha = download::sha256_file(&path).unwrap();
        assert!(resolve(path.to_str().unwrap(), Some(&sha), &cache).is_ok());
        let e = format!(
            "{:#}",
            resolve(path.to_str().unwrap(), Some(&"0".repeat(64)), &cache).unwrap_err()
        );
        assert!(e.contains("not 0000"), "{e}");
        std::fs::write(d.path().join("x.initrd"), "changed").unwrap();
        let e = format!(
            "{:#}",
            resolve(path.to_str().unwrap(), None, &cache).unwrap_err()
        );
        assert!(e.contains("x.initrd") && e.contains("manifest says"), "{e}");
        let e = format!(
            "{:#}",
            resolve("http://127.0.0.1:9/x.manifest.json", None, &cache).unwrap_err()
        );
        assert!(e.contains("--image-sha256"), "{e}");
    }

    /// `--box NAME.manifest.json` takes the box of the Vagrant provider asked for, checked
    /// by its SHA-256; a manifest without that provider's box says which boxes it has.
    #[test]
    fn each_vagrant_provider_gets_its_own_box_from_a_manifest() {
        use crate::machine::vagrant::Provider;
        let d = tempfile::tempdir().unwrap();
        let mut m = manifest();
        for n in ["x.qcow2", "x.vmlinuz", "x.initrd"] {
            std::fs::write(d.path().join(n), n).unwrap();
            m.files.push(entry(d.path(), n).unwrap());
        }
        for n in ["x.libvirt.box", "x.virtualbox.box", "x.qemu.box"] {
            std::fs::write(d.path().join(n), n).unwrap();
            m.boxes.push(entry(d.path(), n).unwrap());
        }
        let path = d.path().join("x.manifest.json");
        std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
        let cache = Cache::new(d.path().join("cache"), None);
        let at = path.to_str().unwrap();
        for (p, want) in [
            (Provider::Libvirt, "x.libvirt.box"),
            (Provider::Virtualbox, "x.virtualbox.box"),
            (Provider::Qemu, "x.qemu.box"),
        ] {
            let (_, file) = resolve_box(at, None, &cache, p).unwrap();
            assert_eq!(file.file_name().unwrap(), want);
        }
        // A box changed after baking is refused by its SHA-256.
        std::fs::write(d.path().join("x.qemu.box"), "changed").unwrap();
        let e = format!(
            "{:#}",
            resolve_box(at, None, &cache, Provider::Qemu).unwrap_err()
        );
        assert!(e.contains("x.qemu.box has SHA-256"), "{e}");
        // A manifest from before the boxes that boot by themselves: libvirt's only.
        m.boxes.truncate(1);
        std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
        let e = format!(
            "{:#}",
            resolve_box(at, None, &cache, Provider::Virtualbox).unwrap_err()
        );
        assert!(
            e.contains("lists no virtualbox box (it has x.libvirt.box"),
            "{e}"
        );
    }

    #[test]
    fn manifests_with_foreign_formats_or_paths_are_refused() {
        let mut m = manifest();
        m.files.push(FileEntry {
            name: "x.qcow2".into(),
            sha256: "c".repeat(64),
            bytes: 1,
        });
        assert!(Manifest::parse(&serde_json::to_string(&m).unwrap(), "m").is_ok());
        let mut bad = m.clone();
        bad.files[0].name = "../etc/passwd.qcow2".into();
        assert!(Manifest::parse(&serde_json::to_string(&bad).unwrap(), "m").is_err());
        // A format-1 image (cloud-init reads the seed) still boots.
        let mut old = m.clone();
        old.format = "golab-image 1".into();
        assert!(Manifest::parse(&serde_json::to_string(&old).unwrap(), "m").is_ok());
        let mut bad = m.clone();
        bad.format = "golab-image 9".into();
        assert!(Manifest::parse(&serde_json::to_string(&bad).unwrap(), "m").is_err());
        let mut bad = m;
        bad.files.clear();
        assert!(Manifest::parse(&serde_json::to_string(&bad).unwrap(), "m").is_err());
        assert!(Manifest::parse("{", "m").is_err());
    }
}

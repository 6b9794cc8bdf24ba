//! Baked lab VM images (`golab image build`, `golab up --image NAME.manifest.json`): a
//! machine provisioned once with the pins, powered off and flattened into a standalone
//! qcow2, with the kernel and initrd it boots and a manifest that says what it holds.
//! A machine made from one needs no provisioning; at readiness its tools must answer
//! exactly as the manifest lists them.
//!
//! Files, in one folder: `NAME.qcow2`, `NAME.vmlinuz`, `NAME.initrd` (when the base boots
//! directly), `NAME.manifest.json` (format, pins, tools as found inside, the SHA-256 and
//! size of every file) and `NAME.manifest.json.sha256` (the manifest's own SHA-256, in
//! `sha256sum` form: the one value a course publishes). A manifest given by URL is
//! fetched through the download cache with that SHA-256, and every file it lists is
//! fetched beside it and checked against its own.
//!
//! Not for: Vagrant boxes (scripts/vagrant-box.sh builds the libvirt one from the base
//! image), or booting (that is [`super::qemu`]).

use super::DlvSource;
use super::qemu::{Qemu, Tools, UpOptions};
use crate::download::{self, Artifact, Cache};
use crate::exec;
use crate::files::write_atomic;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const FORMAT: &str = "golab-image 1";
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
        if m.format != FORMAT {
            bail!("{from}: format {:?}, golab reads {FORMAT:?}", m.format);
        }
        for f in &m.files {
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
pub fn build(q: &Qemu, opts: &UpOptions, out: &Path, name: &str) -> Result<Built> {
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
        let t = Instant::now();
        let mut c = q.ssh_command(&vm_name)?;
        // cloud-init forgets this instance (the next boot is a new one: its own user key,
        // host keys, machine-id); the build's key and dlv's module/build caches go.
        // The login key goes last, with the power-off that follows it.
        c.arg("--").arg(
            "set -e; sudo cloud-init clean --logs --seed; \
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
        let made: serde_json::Value =
            serde_json::from_slice(&std::fs::read(q.dir(&vm_name).join("machine.json"))?)?;
        let mut files = vec![entry(&out, &disk_name)?];
        for (key, suffix) in [("kernel", "vmlinuz"), ("initrd", "initrd")] {
            if let Some(p) = made[key].as_str() {
                let n = format!("{name}.{suffix}");
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
        let manifest = Manifest {
            format: FORMAT.into(),
            name: name.into(),
            base,
            pins: Pins {
                go_version: opts.go_version.clone(),
                go_sha256: opts.go_sha256.clone(),
                dlv: opts.dlv_source.clone(),
            },
            tools: vm.tools.clone(),
            files,
        };
        let text = serde_json::to_string_pretty(&manifest)? + "\n";
        let manifest_path = out.join(format!("{name}{MANIFEST_SUFFIX}"));
        write_atomic(&manifest_path, text.as_bytes())?;
        let sha = download::sha256_file(&manifest_path)?;
        write_atomic(
            &out.join(format!("{name}{MANIFEST_SUFFIX}.sha256")),
            format!("{sha}  {name}{MANIFEST_SUFFIX}\n").as_bytes(),
        )?;
        stages.push(("flatten, checksums, manifest".to_string(), t.elapsed()));
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
        let mut bad = m.clone();
        bad.format = "golab-image 9".into();
        assert!(Manifest::parse(&serde_json::to_string(&bad).unwrap(), "m").is_err());
        let mut bad = m;
        bad.files.clear();
        assert!(Manifest::parse(&serde_json::to_string(&bad).unwrap(), "m").is_err());
        assert!(Manifest::parse("{", "m").is_err());
    }
}

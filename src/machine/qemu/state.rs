//! The machine's folder: its name, the `stage` file, `ports.json`, `machine.json`, and
//! the lock that lets one `up`/`down`/`destroy` at a time touch it.

use super::*;
use crate::files::write_atomic;
use anyhow::{Context, bail};

pub(super) fn check_name(name: &str) -> Result<()> {
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

pub(super) fn read_stage(dir: &Path) -> Option<Stage> {
    Stage::parse(&std::fs::read_to_string(dir.join("stage")).ok()?)
}

pub(super) fn write_stage(dir: &Path, s: Stage) -> Result<()> {
    write_atomic(&dir.join("stage"), format!("{}\n", s.as_str()).as_bytes())
}

pub(super) fn read_ports(dir: &Path) -> Result<Ports> {
    let b = std::fs::read(dir.join("ports.json"))
        .with_context(|| format!("cannot read {}", dir.join("ports.json").display()))?;
    Ok(serde_json::from_slice(&b)?)
}

pub(super) fn read_made(dir: &Path) -> Result<Made> {
    let p = dir.join("machine.json");
    let b = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&b)
        .with_context(|| format!("{} is damaged: `golab destroy` the machine", p.display()))
}

/// Options a machine that already exists does not take (its disk was provisioned).
pub(super) fn differences(made: &Made, opts: &UpOptions) -> Vec<String> {
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

/// One `up`/`down`/`destroy` at a time per machine (an exclusive lock, std's File::try_lock, on a file beside its folder).
pub(super) struct Lock {
    file: std::fs::File,
    path: PathBuf,
}

impl Lock {
    pub(super) fn take(root: &Path, name: &str) -> Result<Lock> {
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
    pub(super) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

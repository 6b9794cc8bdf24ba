//! The bundled labs, embedded in the binary by build.rs, so that an installed golab
//! works from any folder. Tools (go build, the Vagrantfile's synced folder, the
//! grader's variants) want a real folder: [`labs_folder`] writes the embedded labs once
//! into the cache (`$XDG_CACHE_HOME/golab/labs/HASH`, else `~/.cache/golab/labs/HASH`),
//! keyed by their content, and checks that copy on every use.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/labs.rs"));

/// The first 16 hex digits of the SHA-256 of every embedded lab file's path and bytes.
pub fn labs_digest() -> String {
    let mut h = Sha256::new();
    for (path, bytes) in LABS {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The folder golab's caches live in: `$XDG_CACHE_HOME/golab`, else `~/.cache/golab`,
/// else a folder in the system's temporary folder.
fn cache_root() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = var("XDG_CACHE_HOME").map(PathBuf::from)
        && x.is_absolute()
    {
        return x.join("golab");
    }
    if let Some(h) = var("HOME") {
        return PathBuf::from(h).join(".cache/golab");
    }
    std::env::temp_dir().join("golab-cache")
}

/// Whether `dir` holds every embedded lab file with its embedded bytes.
fn holds_the_labs(dir: &Path) -> bool {
    LABS.iter()
        .all(|(p, b)| std::fs::read(dir.join(p)).is_ok_and(|on_disk| on_disk == *b))
}

/// Writes the embedded labs under `dir`.
fn write_labs(dir: &Path) -> Result<()> {
    for (p, b) in LABS {
        let f = dir.join(p);
        if let Some(parent) = f.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&f, b).with_context(|| format!("cannot write {}", f.display()))?;
    }
    Ok(())
}

/// The embedded labs as a folder on disk (see the module's comment).
pub fn labs_folder() -> Result<PathBuf> {
    labs_folder_in(&cache_root().join("labs"))
}

/// [`labs_folder`] under `parent` (tests use their own).
pub fn labs_folder_in(parent: &Path) -> Result<PathBuf> {
    let dir = parent.join(labs_digest());
    if holds_the_labs(&dir) {
        return Ok(dir);
    }
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create the labs cache {}", parent.display()))?;
    // Written aside, then renamed: a run that is cut off, or a second golab doing the
    // same at the same time, never sees half a lab.
    let tmp = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in the labs cache {}", parent.display()))?;
    write_labs(tmp.path())?;
    if dir.exists() {
        // A copy someone edited, or one cut short by hand: kept aside, not deleted.
        let aside = parent.join(format!(
            "{}.changed-{}",
            labs_digest(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        ));
        if std::fs::rename(&dir, &aside).is_ok() {
            eprintln!(
                "golab: the bundled labs' copy {} had been changed; moved it to {} and wrote it again \
                 (to use your own labs, set GOLAB_LABS or give the lab's folder)",
                dir.display(),
                aside.display()
            );
        }
    }
    match std::fs::rename(tmp.path(), &dir) {
        Ok(()) => {
            let _ = tmp.keep();
            Ok(dir)
        }
        // Another golab put it there first.
        Err(_) if holds_the_labs(&dir) => Ok(dir),
        Err(e) => Err(e).with_context(|| format!("cannot write the labs to {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labs_are_embedded_with_their_files() {
        let names: Vec<&str> = LABS.iter().map(|(p, _)| *p).collect();
        for f in [
            "startup-trace/lab.yaml",
            "startup-trace/main.go",
            "startup-trace/go.mod",
            "startup-trace/variant/main.go.tmpl",
            "runq-order/lab.yaml",
            "scheduler-callers/lab.yaml",
        ] {
            assert!(names.contains(&f), "{f} not embedded: {names:?}");
        }
        let disk = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs");
        assert!(holds_the_labs(&disk), "the embedded labs differ from labs/");
    }

    #[test]
    fn unpacks_once_and_rewrites_a_changed_copy_keeping_it_aside() {
        let d = tempfile::tempdir().unwrap();
        let dir = labs_folder_in(d.path()).unwrap();
        assert_eq!(dir, d.path().join(labs_digest()));
        assert!(holds_the_labs(&dir));
        let lab = crate::lab::load_file(&dir.join("startup-trace/lab.yaml")).unwrap();
        assert_eq!(lab.name, "startup-trace");
        // Used again: the same folder, nothing new beside it.
        assert_eq!(labs_folder_in(d.path()).unwrap(), dir);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        // A changed copy is written again, the changed one moved aside.
        let main = dir.join("startup-trace/main.go");
        std::fs::write(&main, "package main // edited\n").unwrap();
        assert_eq!(labs_folder_in(d.path()).unwrap(), dir);
        assert!(holds_the_labs(&dir));
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let aside = names
            .iter()
            .find(|n| n.contains(".changed-"))
            .unwrap_or_else(|| panic!("{names:?}"));
        assert_eq!(
            std::fs::read_to_string(d.path().join(aside).join("startup-trace/main.go")).unwrap(),
            "package main // edited\n"
        );
    }
}

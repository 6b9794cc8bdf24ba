//! The one way golab writes a file: atomically (a temporary file in the same folder,
//! then a rename), so a killed run never leaves half a report or half a transcript.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Copies an executable that golab (or a tool it starts) will run soon after. Written
/// here with std::fs::copy, the copy's file is open for writing in this process for a
/// moment; a child that another of golab's threads forks in that moment holds the
/// descriptor until its own exec, and a run of the copy meanwhile fails with ETXTBSY
/// ("Text file busy": seen once in tests/anywhere.rs with three tests in parallel). `cp`
/// writes it in a process of its own, whose descriptors no thread of golab can pass on.
pub fn copy_executable(from: &Path, to: &Path) -> Result<()> {
    // cp copies into a folder of that name; std's copy, which this replaces, refuses.
    if std::fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        anyhow::bail!(
            "cannot copy {} to {}: a folder is there",
            from.display(),
            to.display()
        );
    }
    let o = std::process::Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run cp")?;
    if !o.status.success() {
        anyhow::bail!(
            "cannot copy {} to {}: {}",
            from.display(),
            to.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    #[test]
    fn replaces_a_file_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/report.json");
        super::write_atomic(&p, b"one").unwrap();
        super::write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(
            std::fs::read_dir(d.path().join("sub")).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    /// The copy is the file, byte for byte, runs, and a missing source is named.
    #[test]
    fn copies_an_executable_that_runs() {
        let d = tempfile::tempdir().unwrap();
        let to = d.path().join("true");
        super::copy_executable(Path::new("/bin/true"), &to).unwrap();
        assert_eq!(
            std::fs::read(&to).unwrap(),
            std::fs::read("/bin/true").unwrap()
        );
        assert!(std::process::Command::new(&to).status().unwrap().success());
        let e = super::copy_executable(&d.path().join("nothing"), &d.path().join("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nothing") && e.contains("cannot copy"), "{e}");
        std::fs::create_dir(d.path().join("dir")).unwrap();
        let e = super::copy_executable(Path::new("/bin/true"), &d.path().join("dir"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a folder is there"), "{e}");
        assert!(!d.path().join("dir/true").exists());
    }
}

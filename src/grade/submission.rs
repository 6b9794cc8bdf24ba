//! Finding submissions in a folder and unpacking them safely.
//!
//! A submission is a folder named after the student, or a `STUDENT.zip` /
//! `STUDENT.tar.gz` / `STUDENT.tgz`. Archives are untrusted: an entry with an absolute
//! path, a `..` component, a link, or a device is refused (the whole archive is, since a
//! partial unpack would grade something the student did not send), and so are archives
//! that unpack to too many files or bytes.

use super::variant::check_student_id;
use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

pub const MAX_FILES: usize = 200;
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Folders nested deeper than this are refused (an honest submission has two or three).
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Folder(PathBuf),
    Zip(PathBuf),
    TarGz(PathBuf),
    /// An entry whose name cannot be a student id (kept as it was, for the message).
    Unusable {
        path: PathBuf,
        name: String,
    },
    /// One student, two submissions (`bob/` and `bob.zip`).
    Duplicate(Vec<PathBuf>),
}

/// The id an unusable name is graded under: `unusable-` and 12 hex digits of its hash
/// (safe as a file name and in every output).
pub fn unusable_id(name: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let h: String = Sha256::digest(name)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("unusable-{h}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub student: String,
    pub source: Source,
}

/// Every submission in `dir`, sorted by student. Entries that are not submissions
/// (hidden files, other file types) are skipped. A name that is no student id, and a
/// student with two submissions, become submissions of their own whose grading says so:
/// one bad entry never stops the batch.
pub fn discover(dir: &Path) -> Result<Vec<Submission>> {
    let mut out: Vec<Submission> = Vec::new();
    for e in std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the submissions folder {}", dir.display()))?
    {
        let e = e?;
        let raw = e.file_name();
        let name = raw.to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let ft = e.file_type()?;
        let (student, source) = if ft.is_dir() {
            (name.clone(), Source::Folder(e.path()))
        } else if let Some(s) = name.strip_suffix(".zip") {
            (s.to_string(), Source::Zip(e.path()))
        } else if let Some(s) = name
            .strip_suffix(".tar.gz")
            .or_else(|| name.strip_suffix(".tgz"))
        {
            (s.to_string(), Source::TarGz(e.path()))
        } else {
            continue;
        };
        if check_student_id(&student).is_err() {
            use std::os::unix::ffi::OsStrExt;
            out.push(Submission {
                student: unusable_id(raw.as_bytes()),
                source: Source::Unusable {
                    path: e.path(),
                    name,
                },
            });
            continue;
        }
        if let Some(other) = out.iter_mut().find(|s| s.student == student) {
            let mut paths = match &other.source {
                Source::Folder(p) | Source::Zip(p) | Source::TarGz(p) => vec![p.clone()],
                Source::Duplicate(v) => v.clone(),
                Source::Unusable { path, .. } => vec![path.clone()],
            };
            paths.push(e.path());
            paths.sort();
            other.source = Source::Duplicate(paths);
            continue;
        }
        out.push(Submission { student, source });
    }
    out.sort_by(|a, b| a.student.cmp(&b.student));
    Ok(out)
}

/// Why an archive was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsafe(pub String);

/// Copies or unpacks the submission into `dest` (created, must not exist yet).
/// `Ok(Err(Unsafe))` is a refused archive; `Err` is golab's own trouble.
pub fn unpack(s: &Submission, dest: &Path) -> Result<std::result::Result<(), Unsafe>> {
    std::fs::create_dir_all(dest)?;
    match &s.source {
        Source::Folder(p) => copy_folder(p, dest),
        Source::Zip(p) => unzip(p, dest),
        Source::TarGz(p) => untar(p, dest),
        Source::Unusable { .. } | Source::Duplicate(_) => {
            bail!("this submission is not unpacked (see its outcome)")
        }
    }
}

/// An entry path made safe, or why it is not.
fn safe_relative(name: &str) -> std::result::Result<PathBuf, Unsafe> {
    let p = Path::new(name);
    if p.components().count() > MAX_DEPTH || name.len() > 1024 {
        return Err(Unsafe(format!(
            "the entry '{}' is nested deeper than {MAX_DEPTH} folders",
            name.chars().take(120).collect::<String>()
        )));
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Unsafe(format!(
                    "the entry '{name}' climbs out of the archive with '..'"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Unsafe(format!("the entry '{name}' has an absolute path")));
            }
        }
    }
    Ok(out)
}

fn copy_folder(src: &Path, dest: &Path) -> Result<std::result::Result<(), Unsafe>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let (mut files, mut bytes) = (0usize, 0u64);
    let rel = |p: &Path| p.strip_prefix(src).unwrap_or(p).display().to_string();
    let mut stack = vec![(src.to_path_buf(), dest.to_path_buf(), 0usize)];
    while let Some((from, to, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Ok(Err(Unsafe(format!(
                "{} is nested deeper than {MAX_DEPTH} folders",
                rel(&from).chars().take(120).collect::<String>()
            ))));
        }
        std::fs::create_dir_all(&to)?;
        let entries = match std::fs::read_dir(&from) {
            Ok(e) => e,
            Err(e) => return Ok(Err(Unsafe(format!("{} cannot be read: {e}", rel(&from))))),
        };
        for e in entries {
            let e = e?;
            // symlink_metadata: a link is refused, never followed out of the folder.
            let md = std::fs::symlink_metadata(e.path())?;
            let name = e.file_name();
            if md.file_type().is_symlink() {
                return Ok(Err(Unsafe(format!(
                    "{} is a symbolic link",
                    rel(&e.path())
                ))));
            }
            if md.is_dir() {
                files += 1;
                if files > MAX_FILES {
                    return Ok(Err(Unsafe(format!(
                        "the submission has more than {MAX_FILES} files and folders"
                    ))));
                }
                stack.push((e.path(), to.join(&name), depth + 1));
            } else if md.is_file() {
                files += 1;
                bytes += md.len();
                if files > MAX_FILES || bytes > MAX_BYTES {
                    return Ok(Err(Unsafe(format!(
                        "the submission has more than {MAX_FILES} files or {MAX_BYTES} bytes"
                    ))));
                }
                // Opened without following a link that replaced it since, and checked on
                // the open file before a byte is read: a hard link (to a file of root's,
                // say) is refused, not copied.
                let f = match std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(crate::sys::proc::OPEN_NOFOLLOW_NONBLOCK)
                    .open(e.path())
                {
                    Ok(f) => f,
                    Err(err) => {
                        return Ok(Err(Unsafe(format!(
                            "{} cannot be opened: {err}",
                            rel(&e.path())
                        ))));
                    }
                };
                let fmd = f.metadata()?;
                if !fmd.is_file() {
                    return Ok(Err(Unsafe(format!(
                        "{} is not a plain file",
                        rel(&e.path())
                    ))));
                }
                if fmd.nlink() > 1 {
                    return Ok(Err(Unsafe(format!(
                        "{} is a hard link (the same file has {} names): send a copy",
                        rel(&e.path()),
                        fmd.nlink()
                    ))));
                }
                let mut data = Vec::new();
                f.take(MAX_BYTES + 1).read_to_end(&mut data)?;
                std::fs::write(to.join(&name), data)?;
            } else {
                return Ok(Err(Unsafe(format!(
                    "{} is a device, socket or pipe, not a file",
                    rel(&e.path())
                ))));
            }
        }
    }
    Ok(Ok(()))
}

fn unzip(path: &Path, dest: &Path) -> Result<std::result::Result<(), Unsafe>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut z = match zip::ZipArchive::new(f) {
        Ok(z) => z,
        Err(e) => return Ok(Err(Unsafe(format!("not a readable zip archive: {e}")))),
    };
    if z.len() > MAX_FILES {
        return Ok(Err(Unsafe(format!(
            "the archive has {} entries; the limit is {MAX_FILES}",
            z.len()
        ))));
    }
    let mut total = 0u64;
    for i in 0..z.len() {
        let mut entry = match z.by_index(i) {
            Ok(e) => e,
            Err(e) => return Ok(Err(Unsafe(format!("entry {i}: {e}")))),
        };
        let name = match entry.name() {
            Ok(n) => n.to_string(),
            Err(e) => {
                return Ok(Err(Unsafe(format!(
                    "entry {i} has an unreadable name: {e}"
                ))));
            }
        };
        let rel = match safe_relative(&name) {
            Ok(r) => r,
            Err(u) => return Ok(Err(u)),
        };
        if entry.is_symlink() {
            return Ok(Err(Unsafe(format!(
                "the entry '{name}' is a symbolic link"
            ))));
        }
        if entry.is_dir() {
            std::fs::create_dir_all(dest.join(&rel))?;
            continue;
        }
        if let Err(u) = write_entry(&mut entry, &dest.join(&rel), &mut total)? {
            return Ok(Err(u));
        }
    }
    Ok(Ok(()))
}

/// Writes one archive entry, within what is left of the size budget.
fn write_entry(
    entry: &mut impl Read,
    out: &Path,
    total: &mut u64,
) -> Result<std::result::Result<(), Unsafe>> {
    let mut buf = Vec::new();
    // Read at most what is left of the budget, plus one byte to notice the excess.
    entry.take(MAX_BYTES - *total + 1).read_to_end(&mut buf)?;
    *total += buf.len() as u64;
    if *total > MAX_BYTES {
        return Ok(Err(Unsafe(format!(
            "the archive unpacks to more than {MAX_BYTES} bytes"
        ))));
    }
    if let Some(p) = out.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(out, buf)?;
    Ok(Ok(()))
}

fn untar(path: &Path, dest: &Path) -> Result<std::result::Result<(), Unsafe>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let entries = match a.entries() {
        Ok(e) => e,
        Err(e) => return Ok(Err(Unsafe(format!("not a readable .tar.gz: {e}")))),
    };
    let (mut files, mut total) = (0usize, 0u64);
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return Ok(Err(Unsafe(format!("not a readable .tar.gz: {e}")))),
        };
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_default();
        let rel = match safe_relative(&name) {
            Ok(r) => r,
            Err(u) => return Ok(Err(u)),
        };
        let kind = entry.header().entry_type();
        // Every entry counts, folders too: 300,000 empty folders are 1.4 MB of tar.
        files += 1;
        if files > MAX_FILES {
            return Ok(Err(Unsafe(format!(
                "the archive has more than {MAX_FILES} entries (files and folders)"
            ))));
        }
        if kind.is_dir() {
            std::fs::create_dir_all(dest.join(&rel))?;
            continue;
        }
        if !kind.is_file() {
            return Ok(Err(Unsafe(format!(
                "the entry '{name}' is a {}, not a file",
                if kind.is_symlink() {
                    "symbolic link"
                } else if kind.is_hard_link() {
                    "hard link"
                } else {
                    "special file"
                }
            ))));
        }
        if let Err(u) = write_entry(&mut entry, &dest.join(&rel), &mut total)? {
            return Ok(Err(u));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_with(entries: &[(&str, &[u8])], link: Option<(&str, &str)>) -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new().suffix(".zip").tempfile().unwrap();
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        let o = zip::write::SimpleFileOptions::default();
        for (n, data) in entries {
            z.start_file(*n, o).unwrap();
            z.write_all(data).unwrap();
        }
        if let Some((n, target)) = link {
            z.add_symlink(n, target, o).unwrap();
        }
        z.finish().unwrap();
        f
    }

    fn unpack_zip(f: &tempfile::NamedTempFile) -> std::result::Result<(), Unsafe> {
        let d = tempfile::tempdir().unwrap();
        unpack(
            &Submission {
                student: "s".into(),
                source: Source::Zip(f.path().into()),
            },
            &d.path().join("s"),
        )
        .unwrap()
    }

    #[test]
    fn a_plain_zip_unpacks() {
        let f = zip_with(
            &[
                ("answers.yaml", b"lab: x\n"),
                ("src/main.go", b"package main\n"),
            ],
            None,
        );
        assert_eq!(unpack_zip(&f), Ok(()));
    }

    #[test]
    fn dot_dot_absolute_and_links_are_refused() {
        let e = unpack_zip(&zip_with(&[("../../etc/evil", b"x")], None)).unwrap_err();
        assert!(e.0.contains("'..'"), "{e:?}");
        let e = unpack_zip(&zip_with(&[("/tmp/evil", b"x")], None)).unwrap_err();
        assert!(e.0.contains("absolute"), "{e:?}");
        let e = unpack_zip(&zip_with(
            &[("answers.yaml", b"x")],
            Some(("other", "../bob/answers.yaml")),
        ))
        .unwrap_err();
        assert!(e.0.contains("symbolic link"), "{e:?}");
    }

    #[test]
    fn a_tar_with_a_link_out_is_refused() {
        let f = tempfile::Builder::new()
            .suffix(".tar.gz")
            .tempfile()
            .unwrap();
        {
            let gz =
                flate2::write::GzEncoder::new(f.reopen().unwrap(), flate2::Compression::fast());
            let mut t = tar::Builder::new(gz);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            t.append_link(&mut h, "answers.yaml", "/etc/shadow")
                .unwrap();
            t.into_inner().unwrap().finish().unwrap();
        }
        let d = tempfile::tempdir().unwrap();
        let r = unpack(
            &Submission {
                student: "s".into(),
                source: Source::TarGz(f.path().into()),
            },
            &d.path().join("s"),
        )
        .unwrap();
        assert!(r.unwrap_err().0.contains("symbolic link"));
    }

    /// A tar of folders only (a 1.4 MB one held 300,000): every entry counts.
    #[test]
    fn a_tar_of_many_folders_is_refused() {
        let f = tempfile::Builder::new()
            .suffix(".tar.gz")
            .tempfile()
            .unwrap();
        {
            let gz =
                flate2::write::GzEncoder::new(f.reopen().unwrap(), flate2::Compression::fast());
            let mut t = tar::Builder::new(gz);
            for i in 0..MAX_FILES + 1 {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                t.append_data(&mut h, format!("d/{i}/"), std::io::empty())
                    .unwrap();
            }
            t.into_inner().unwrap().finish().unwrap();
        }
        let d = tempfile::tempdir().unwrap();
        let r = unpack(
            &Submission {
                student: "s".into(),
                source: Source::TarGz(f.path().into()),
            },
            &d.path().join("s"),
        )
        .unwrap();
        assert!(r.unwrap_err().0.contains("entries"));
        // The same as a folder.
        let sub = d.path().join("folder/bob");
        for i in 0..MAX_FILES + 1 {
            std::fs::create_dir_all(sub.join(format!("d/{i}"))).unwrap();
        }
        let subs = discover(&d.path().join("folder")).unwrap();
        let r = unpack(&subs[0], &d.path().join("out")).unwrap();
        assert!(r.unwrap_err().0.contains("folders"));
    }

    #[test]
    fn a_folder_with_a_link_is_refused_and_ids_are_checked() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("alice")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("alice/answers.yaml")).unwrap();
        let subs = discover(d.path()).unwrap();
        let r = unpack(&subs[0], &d.path().join("out")).unwrap();
        assert!(r.unwrap_err().0.contains("symbolic link"));
        // A bad name is a submission of its own (its outcome says why), not an error.
        std::fs::create_dir(d.path().join("bad name")).unwrap();
        let subs = discover(d.path()).unwrap();
        assert!(subs.iter().any(
            |s| matches!(&s.source, Source::Unusable { name, .. } if name == "bad name")
                && s.student.starts_with("unusable-")
        ));
    }

    #[test]
    fn hard_links_deep_trees_and_duplicates_are_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let subs = d.path().join("subs");
        std::fs::create_dir_all(subs.join("ann")).unwrap();
        let secret = d.path().join("secret");
        std::fs::write(&secret, "root only").unwrap();
        std::fs::hard_link(&secret, subs.join("ann/answers.yaml")).unwrap();
        let mut deep = subs.join("cid");
        for _ in 0..40 {
            deep = deep.join("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(subs.join("bob")).unwrap();
        std::fs::write(subs.join("bob.zip"), b"PK").unwrap();
        let found = discover(&subs).unwrap();
        let by = |id: &str| found.iter().find(|s| s.student == id).unwrap().clone();
        let e = unpack(&by("ann"), &d.path().join("out/ann"))
            .unwrap()
            .unwrap_err();
        assert!(e.0.contains("hard link"), "{e:?}");
        assert!(!d.path().join("out/ann/answers.yaml").exists());
        let e = unpack(&by("cid"), &d.path().join("out/cid"))
            .unwrap()
            .unwrap_err();
        assert!(e.0.contains("nested deeper"), "{e:?}");
        assert!(matches!(by("bob").source, Source::Duplicate(ref v) if v.len() == 2));
    }
}

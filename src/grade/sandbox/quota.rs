//! Disk quotas: every place a submission's build or program can write is on a
//! size-capped tmpfs that the grader (root) mounts for the submission and unmounts after
//! it, so nothing a student writes reaches the host's disk and nothing is left behind.
//!
//! One `Quota` per job slot and submission, at a folder of the grader's (never inside a
//! student's folder: a stale mount there would stop its regrading). In it:
//! - folders for the build's output and temporary files, and the program's `/tmp`
//!   (`folder`), each given to the slot's uid;
//! - the build cache (`overlay`): an overlayfs whose lower layer is the warm cache of the
//!   standard library (root's, read-only) and whose upper layer is on the tmpfs. Its
//!   folders are the uid's (a build adds entries), its files stay root's 0444 (a build
//!   changes none, and what it adds is gone with the tmpfs).
//!
//! tmpfs pages are charged to the memory cgroup of the process that writes them, so what
//! the sandbox writes here counts against its memory limit too. The mounts are made in
//! the grader's mount namespace (`sys::reaper` gives `golab grade` a private one: a
//! grader killed with -9 leaves no mount behind); a stale mount at the same folder,
//! left by a grader without one, is detached before the next mount.
//! Linux only; every call here is a raw mount(2)/umount2(2)/statvfs(3).

use anyhow::{Context, Result, bail};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Free space under which a quota counts as used up: tmpfs refuses a write with ENOSPC
/// when it cannot allocate a page, so a writer that ran into the cap leaves less than
/// this (an honest lab build leaves most of the quota free).
pub const FULL_SLACK: u64 = 1 << 20;

/// A size-capped tmpfs of the grader's; unmounted (lazily, with everything mounted in
/// it) and its folder removed on drop.
pub struct Quota {
    dir: PathBuf,
    bytes: u64,
    /// Mounted inside the tmpfs (overlays), unmounted first.
    inner: Vec<PathBuf>,
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .with_context(|| format!("{} holds a NUL byte", p.display()))
}

/// Detaches every mount at `p` (a stack of them, from a grader that died).
fn detach_all(p: &Path) {
    let Ok(c) = cstr(p) else { return };
    for _ in 0..64 {
        // SAFETY: a plain system call on a NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) } != 0 {
            return;
        }
    }
}

fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<()> {
    let (s, t, f, d) = (
        CString::new(source)?,
        cstr(target)?,
        CString::new(fstype)?,
        CString::new(data)?,
    );
    // SAFETY: NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ptr(),
            flags,
            d.as_ptr() as *const libc::c_void,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "cannot mount a {fstype} ({data}) at {} (the grader runs as root)",
                target.display()
            )
        });
    }
    Ok(())
}

fn chown_mode(p: &Path, uid: u32, mode: u32) -> Result<()> {
    std::os::unix::fs::chown(p, Some(uid), Some(uid))
        .with_context(|| format!("cannot chown {}", p.display()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", p.display()))
}

/// An open folder, named as `/proc/self/fd/N` in mount options (no escaping of commas,
/// colons or backslashes in the real path needed).
fn dir_fd(p: &Path) -> Result<OwnedFd> {
    let f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    Ok(OwnedFd::from(f))
}

impl Quota {
    /// A fresh tmpfs of `bytes` at `dir` (created; emptied of a stale mount), root's 0755.
    pub fn mount(dir: &Path, bytes: u64) -> Result<Quota> {
        if bytes < 1 << 20 {
            bail!("a disk quota of {bytes} bytes is too small (1 MiB at least)");
        }
        detach_all(dir);
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        mount(
            "golab-quota",
            dir,
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            &format!("size={bytes},mode=0755,uid=0,gid=0"),
        )?;
        Ok(Quota {
            dir: dir.to_path_buf(),
            bytes,
            inner: Vec::new(),
        })
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh, empty folder `name` on the tmpfs, owned by `uid` with `mode`.
    pub fn folder(&self, name: &str, uid: u32, mode: u32) -> Result<PathBuf> {
        let p = self.dir.join(name);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("cannot clear {}", p.display()))?;
        }
        std::fs::create_dir(&p).with_context(|| format!("cannot create {}", p.display()))?;
        chown_mode(&p, uid, mode)?;
        Ok(p)
    }

    /// Removes folder `name` and what is in it (the space is free again).
    pub fn clear(&self, name: &str) {
        let _ = std::fs::remove_dir_all(self.dir.join(name));
    }

    /// `lower` (read-only, unchanged) seen at `self/name` with the tmpfs as its upper
    /// layer: folders owned by `uid` (entries can be added), files as in `lower`.
    pub fn overlay(&mut self, lower: &Path, name: &str, uid: u32) -> Result<PathBuf> {
        let upper = self.dir.join(format!(".{name}-upper"));
        let work = self.dir.join(format!(".{name}-work"));
        let at = self.dir.join(name);
        for p in [&upper, &work, &at] {
            if p.exists() {
                std::fs::remove_dir_all(p)
                    .with_context(|| format!("cannot clear {}", p.display()))?;
            }
        }
        // The upper layer's folders decide the merged folders' owner and mode.
        skeleton(lower, &upper, uid)?;
        std::fs::create_dir(&work)?;
        chown_mode(&work, 0, 0o700)?;
        std::fs::create_dir(&at)?;
        chown_mode(&at, 0, 0o755)?;
        let (l, u, w) = (dir_fd(lower)?, dir_fd(&upper)?, dir_fd(&work)?);
        let fd = |f: &OwnedFd| format!("/proc/self/fd/{}", f.as_raw_fd());
        mount(
            "golab-cache",
            &at,
            "overlay",
            libc::MS_NOSUID | libc::MS_NODEV,
            &format!("lowerdir={},upperdir={},workdir={}", fd(&l), fd(&u), fd(&w)),
        )?;
        self.inner.push(at.clone());
        Ok(at)
    }

    /// Unmounts the overlay `name` and frees its upper layer.
    pub fn unmount(&mut self, name: &str) {
        let at = self.dir.join(name);
        detach_all(&at);
        self.inner.retain(|p| *p != at);
        let _ = std::fs::remove_dir(&at);
        self.clear(&format!(".{name}-upper"));
        self.clear(&format!(".{name}-work"));
    }

    /// Bytes in use on the tmpfs now.
    pub fn used(&self) -> u64 {
        let (total, free) = self.space();
        total.saturating_sub(free)
    }

    /// Is less than `FULL_SLACK` free: did a writer run into the cap?
    pub fn full(&self) -> bool {
        let (_, free) = self.space();
        free < FULL_SLACK.min(self.bytes / 4)
    }

    fn space(&self) -> (u64, u64) {
        let Ok(c) = cstr(&self.dir) else {
            return (0, 0);
        };
        // SAFETY: statvfs fills the zeroed struct it is given.
        unsafe {
            let mut s: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(c.as_ptr(), &mut s) != 0 {
                return (0, 0);
            }
            let f = s.f_frsize;
            (s.f_blocks * f, s.f_bavail * f)
        }
    }
}

/// `lower`'s folders (not its files) again under `to`, owned by `uid`, 0755.
fn skeleton(lower: &Path, to: &Path, uid: u32) -> Result<()> {
    std::fs::create_dir(to).with_context(|| format!("cannot create {}", to.display()))?;
    chown_mode(to, uid, 0o755)?;
    for e in std::fs::read_dir(lower).with_context(|| format!("{}", lower.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            skeleton(&e.path(), &to.join(e.file_name()), uid)?;
        }
    }
    Ok(())
}

impl Drop for Quota {
    fn drop(&mut self) {
        for p in self.inner.iter().rev() {
            detach_all(p);
        }
        detach_all(&self.dir);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

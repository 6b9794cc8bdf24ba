//! bubblewrap's argv: the sandbox's folders made canonical and checked reachable by
//! its uid (`Layout`), then the namespaces and mounts in order.

use super::{Limits, Sandbox, normalize, reachable_by};
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

impl Sandbox {
    /// Canonical paths, checked to be reachable by the uid.
    pub(super) fn layout(&self) -> Result<Layout> {
        let canon = |p: &Path, what: &str| -> Result<PathBuf> {
            std::fs::canonicalize(p)
                .with_context(|| format!("sandbox {what} {} does not exist", p.display()))
        };
        let work = canon(&self.work, "work folder")?;
        let md = std::fs::metadata(&work)?;
        if !md.is_dir() {
            bail!("sandbox work folder {} is not a folder", work.display());
        }
        if self.writable_work && md.uid() != self.uid {
            bail!(
                "sandbox work folder {} belongs to uid {}, not to the sandbox's uid {} (call Sandbox::prepare)",
                work.display(),
                md.uid(),
                self.uid
            );
        }
        let cwd = match &self.cwd {
            Some(c) => canon(c, "working directory")?,
            None => work.clone(),
        };
        let mut read_only = Vec::new();
        for p in &self.read_only {
            read_only.push(canon(p, "read-only path")?);
        }
        let mut read_write = Vec::new();
        for p in &self.read_write {
            read_write.push(canon(p, "read-write path")?);
        }
        let mut hidden = Vec::new();
        for p in &self.hidden {
            // A hidden folder that does not exist is hidden already; keep its lexical path
            // for the evidence.
            hidden.push(std::fs::canonicalize(p).unwrap_or_else(|_| normalize(p)));
        }
        for p in read_only
            .iter()
            .chain(&read_write)
            .chain(std::iter::once(&work))
        {
            reachable_by(p, self.uid)?;
        }
        let tmp = match &self.tmp {
            Some(t) => {
                let t = canon(t, "/tmp folder")?;
                reachable_by(&t, self.uid)?;
                Some(t)
            }
            None => None,
        };
        Ok(Layout {
            work,
            tmp,
            cwd,
            read_only,
            read_write,
            hidden,
        })
    }

    pub(super) fn visible_roots(&self, l: &Layout) -> Vec<PathBuf> {
        let mut v = vec![l.work.clone()];
        v.extend(l.read_only.iter().cloned());
        v.extend(l.read_write.iter().cloned());
        v
    }

    pub(super) fn bwrap_args(&self, l: &Layout, limits: &Limits) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        macro_rules! push {
            ($($x:expr),* $(,)?) => {{ $( a.push(OsString::from($x)); )* }};
        }
        push!("--unshare-user", "--unshare-pid");
        if !self.share_net {
            push!("--unshare-net");
        }
        push!(
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "golab-sandbox",
        );
        for d in ["/usr", "/etc"] {
            push!("--ro-bind", d, d);
        }
        for d in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(d) {
                Ok(target) => push!("--symlink", &target, d),
                Err(_) if Path::new(d).is_dir() => push!("--ro-bind", d, d),
                Err(_) => {}
            }
        }
        push!("--proc", "/proc", "--dev", "/dev");
        match &l.tmp {
            Some(t) => push!("--bind", t, "/tmp"),
            None => {
                let size = limits.disk_bytes.max(1 << 20).to_string();
                push!("--size", &size, "--tmpfs", "/tmp");
            }
        }
        // Shallower mounts first, so that a folder bound inside a hidden one (work inside
        // the batch) or hidden inside a bound one shows what it should.
        enum Kind {
            ReadOnly,
            Hide,
            ReadWrite,
        }
        let mut mounts: Vec<(&PathBuf, Kind)> = Vec::new();
        mounts.extend(l.read_only.iter().map(|p| (p, Kind::ReadOnly)));
        mounts.extend(
            l.hidden
                .iter()
                .filter(|h| h.is_dir())
                .map(|p| (p, Kind::Hide)),
        );
        mounts.extend(l.read_write.iter().map(|p| (p, Kind::ReadWrite)));
        mounts.push((
            &l.work,
            if self.writable_work {
                Kind::ReadWrite
            } else {
                Kind::ReadOnly
            },
        ));
        mounts.sort_by_key(|(p, _)| p.components().count());
        for (p, kind) in &mounts {
            match kind {
                Kind::ReadOnly => push!("--ro-bind", *p, *p),
                Kind::Hide => push!("--size", "65536", "--tmpfs", *p),
                Kind::ReadWrite => push!("--bind", *p, *p),
            }
        }
        for (p, kind) in &mounts {
            if let Kind::Hide = kind {
                push!("--remount-ro", *p);
            }
        }
        push!(
            "--remount-ro",
            "/dev",
            "--remount-ro",
            "/",
            "--chdir",
            &l.cwd
        );
        a
    }
}

pub(super) struct Layout {
    pub(super) work: PathBuf,
    pub(super) tmp: Option<PathBuf>,
    pub(super) cwd: PathBuf,
    pub(super) read_only: Vec<PathBuf>,
    pub(super) read_write: Vec<PathBuf>,
    pub(super) hidden: Vec<PathBuf>,
}

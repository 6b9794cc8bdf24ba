//! The one way golab downloads: the pinned Go tarball and VM cloud images.
//!
//! A download lands in a cache folder, first as `NAME.part` (so a transfer cut off
//! halfway is resumed with a `Range` request by the next call), and only reaches its
//! final name `NAME` once its SHA-256 matches the pinned one, by a rename in the same
//! folder: a file under its final name is always whole and verified. A download whose
//! checksum is wrong is kept as `NAME.bad` for inspection, never under its final name.
//! `GOLAB_MIRROR` replaces the default base URL of every download (a flat folder that
//! serves the same file names), for machines that cannot reach the default hosts.
//!
//! Not for: choosing what to download (the VM providers and the toolchain code do that).

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// A file golab downloads: its file name in the cache, its default URL and its pinned
/// SHA-256 (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub name: String,
    pub url: String,
    pub sha256: String,
}

/// Where Go release tarballs are downloaded from unless `GOLAB_MIRROR` says otherwise.
pub const GO_BASE: &str = "https://go.dev/dl/";

/// The pinned linux-amd64 tarball of Go `version` (`goX.Y.Z` or `X.Y.Z`), if pinned.
pub fn go_tarball(version: &str) -> Option<Artifact> {
    crate::pins::go_row(version).map(|g| Artifact {
        name: g.tarball.to_string(),
        url: format!("{GO_BASE}{}", g.tarball),
        sha256: g.tarball_sha256.to_string(),
    })
}

/// Like [`go_tarball`], with an error naming the pinned versions for one that is not.
pub fn require_go_tarball(version: &str) -> Result<Artifact> {
    go_tarball(version).ok_or_else(|| {
        let pinned: Vec<String> = crate::pins::go_rows()
            .iter()
            .map(|g| format!("go{}", g.version))
            .collect();
        anyhow!(
            "Go {version} is not pinned: golab can download only {} (linux-amd64)",
            pinned.join(", ")
        )
    })
}

/// The default base image of the `qemu` provider: Ubuntu 22.04's amd64 cloud image, at
/// the dated release and digest Lima's ubuntu-22.04 template pins. Dated releases are
/// removed after some months: `--image FILE` or `GOLAB_MIRROR` then take over.
pub fn ubuntu_cloud_image() -> Artifact {
    let name = "ubuntu-22.04-server-cloudimg-amd64.img";
    Artifact {
        name: name.into(),
        url: format!("https://cloud-images.ubuntu.com/releases/jammy/release-20250429/{name}"),
        sha256: "952bc5bb4349897a409559c26fdec006a2744b103e005af6df8693cfab515bc2".into(),
    }
}

/// The download cache: a folder, and an optional mirror base URL.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    mirror: Option<String>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Cache {
    /// A cache in `dir`, downloading from `mirror` (a base URL) when given.
    pub fn new(dir: impl Into<PathBuf>, mirror: Option<String>) -> Cache {
        let mirror = mirror
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty());
        Cache {
            dir: dir.into(),
            mirror,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
        }
    }

    /// The cache the environment asks for: folder `$GOLAB_CACHE`, else
    /// `$XDG_CACHE_HOME/golab/downloads`, else `~/.cache/golab/downloads`; mirror
    /// `$GOLAB_MIRROR`.
    pub fn from_env() -> Result<Cache> {
        Cache::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Cache::from_env`], reading variables through `var` (for tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Cache> {
        let var = |k: &str| var(k).filter(|v| !v.is_empty());
        let dir = if let Some(d) = var("GOLAB_CACHE") {
            PathBuf::from(d)
        } else if let Some(x) = var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
        {
            x.join("golab/downloads")
        } else if let Some(h) = var("HOME") {
            PathBuf::from(h).join(".cache/golab/downloads")
        } else {
            bail!("no download cache folder: set GOLAB_CACHE (or HOME)")
        };
        Ok(Cache::new(dir, var("GOLAB_MIRROR")))
    }

    /// The same cache with other timeouts: to connect, and for each read (a stalled
    /// transfer fails after `read` without a byte).
    pub fn with_timeouts(mut self, connect: Duration, read: Duration) -> Cache {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn mirror(&self) -> Option<&str> {
        self.mirror.as_deref()
    }

    /// Where `a` is downloaded from: the mirror base joined with its name, else its URL.
    pub fn url_for(&self, a: &Artifact) -> String {
        match &self.mirror {
            Some(m) => format!("{}/{}", m.trim_end_matches('/'), a.name),
            None => a.url.clone(),
        }
    }

    /// Where `a` lives once fetched.
    pub fn path_for(&self, a: &Artifact) -> PathBuf {
        self.dir.join(&a.name)
    }

    /// The verified file of `a`: from the cache when it is there and its checksum
    /// matches, else downloaded (resuming a `.part` left by an earlier call), verified
    /// and moved into place. `progress` shows a bar on a terminal, percentage lines
    /// otherwise.
    pub fn fetch(&self, a: &Artifact, progress: bool) -> Result<PathBuf> {
        check_name(&a.name)?;
        let want = a.sha256.trim().to_ascii_lowercase();
        if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "the pinned SHA-256 of {} is not 64 hex digits: {:?}",
                a.name,
                a.sha256
            );
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create the download cache {}", self.dir.display()))?;
        // One fetch of a name at a time (two golab runs must not write one .part).
        let lock_path = self.dir.join(format!(".{}.lock", a.name));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;

        let dest = self.path_for(a);
        if dest.exists() {
            let got = sha256_file(&dest)?;
            if got == want {
                return Ok(dest);
            }
            if progress {
                eprintln!(
                    "{}: cached file has SHA-256 {got}, not {want}: downloading it again",
                    dest.display()
                );
            }
            std::fs::remove_file(&dest)
                .with_context(|| format!("cannot remove {}", dest.display()))?;
        }
        let url = self.url_for(a);
        let part = self.dir.join(format!("{}.part", a.name));
        let (mut got, resumed) = self.download(&url, &part, &a.name, progress)?;
        if got != want && resumed {
            // The part kept from an earlier run may be what is wrong: once more, whole.
            if progress {
                eprintln!(
                    "{}: resumed download has the wrong SHA-256: downloading it whole",
                    a.name
                );
            }
            std::fs::remove_file(&part)
                .with_context(|| format!("cannot remove {}", part.display()))?;
            got = self.download(&url, &part, &a.name, progress)?.0;
        }
        if got != want {
            let bad = self.dir.join(format!("{}.bad", a.name));
            std::fs::rename(&part, &bad)
                .with_context(|| format!("cannot move {} aside", part.display()))?;
            bail!(
                "checksum mismatch for {}: expected SHA-256 {want}, got {got} (downloaded from {url}); \
                 nothing was cached, the download is kept as {} for inspection",
                a.name,
                bad.display()
            );
        }
        File::open(&part)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", part.display()))?;
        std::fs::rename(&part, &dest)
            .with_context(|| format!("cannot move {} into place", part.display()))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(dest)
    }

    fn hint(&self) -> &'static str {
        match self.mirror {
            Some(_) => "GOLAB_MIRROR set this URL: check that the mirror serves the file",
            None => {
                "if this host cannot be reached from here, set GOLAB_MIRROR to a base URL that serves the same file names"
            }
        }
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(Some(self.connect_timeout))
            .timeout_connect(Some(self.connect_timeout))
            .timeout_recv_response(Some(self.read_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .user_agent(format!("golab/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    }

    /// Downloads `url` into `part`, resuming what it holds; returns the SHA-256 of the
    /// whole file, and whether bytes from an earlier run were kept.
    fn download(
        &self,
        url: &str,
        part: &Path,
        name: &str,
        progress: bool,
    ) -> Result<(String, bool)> {
        let agent = self.agent();
        let net_err =
            |e: ureq::Error| anyhow!("cannot download {name} from {url}: {e}\n({})", self.hint());
        // A second try only after the server ignored or refused the Range of the first.
        for _ in 0..2 {
            let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
            let mut req = agent.get(url);
            if have > 0 {
                req = req.header("Range", format!("bytes={have}-"));
            }
            let mut resp = req.call().map_err(net_err)?;
            let status = resp.status().as_u16();
            let from = match status {
                200 => 0,
                206 if have > 0 && content_range_start(&resp) == Some(have) => have,
                206 => {
                    // A range we did not ask for: start over.
                    std::fs::remove_file(part).ok();
                    continue;
                }
                416 if have > 0 => {
                    // Nothing past the part: it may be whole already (`bytes */LEN`); the
                    // checksum decides, and a wrong one is moved aside by the caller.
                    let len = resp
                        .headers()
                        .get("content-range")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.rsplit('/').next()?.trim().parse::<u64>().ok());
                    if len.is_none() || len == Some(have) {
                        return Ok((sha256_file(part)?, true));
                    }
                    std::fs::remove_file(part).ok();
                    continue;
                }
                s => bail!(
                    "cannot download {name} from {url}: the server answered HTTP {s}\n({})",
                    self.hint()
                ),
            };
            let len = resp.body().content_length();
            let total = len.map(|l| l + from);
            let mut file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(from == 0)
                .open(part)
                .with_context(|| format!("cannot write {}", part.display()))?;
            let mut hasher = Sha256::new();
            if from > 0 {
                // Hash what is already there, then append.
                let mut f =
                    File::open(part).with_context(|| format!("cannot read {}", part.display()))?;
                std::io::copy(&mut (&mut f).take(from), &mut HashWriter(&mut hasher))?;
                file.set_len(from)?;
                file.seek(SeekFrom::Start(from))?;
            }
            let mut shown = Shown::new(name, total, from, progress);
            let mut reader = resp.body_mut().as_reader();
            let mut buf = vec![0u8; 256 * 1024];
            let mut done = from;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        shown.abandon();
                        let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
                        bail!(
                            "download of {name} from {url} was cut off after {done}{of} bytes: {e}\n\
                             ({} is kept: run again to resume; {})",
                            part.display(),
                            self.hint()
                        );
                    }
                };
                file.write_all(&buf[..n])
                    .with_context(|| format!("cannot write {}", part.display()))?;
                hasher.update(&buf[..n]);
                done += n as u64;
                shown.at(done);
            }
            shown.finish();
            if let Some(t) = total
                && done != t
            {
                bail!(
                    "download of {name} from {url} ended after {done} of {t} bytes ({} is kept: run again to resume)",
                    part.display()
                );
            }
            return Ok((hex(&hasher.finalize()), from > 0));
        }
        bail!(
            "cannot download {name} from {url}: the server did not honour resuming {}, even after starting over",
            part.display()
        )
    }
}

/// The start offset of a 206 answer's `Content-Range: bytes N-M/T`.
fn content_range_start(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = resp.headers().get("content-range")?.to_str().ok()?;
    let range = v.trim().strip_prefix("bytes")?.trim();
    range.split('-').next()?.trim().parse().ok()
}

/// A cache file name must be one plain path component.
fn check_name(name: &str) -> Result<()> {
    let mut c = Path::new(name).components();
    match (c.next(), c.next()) {
        (Some(Component::Normal(_)), None) if !name.contains('/') => Ok(()),
        _ => bail!("bad download file name {name:?}: it must be a plain file name"),
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The SHA-256 (lower-case hex) of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut HashWriter(&mut h))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&h.finalize()))
}

/// Download progress on stderr: a bar on a terminal, a line every 10% otherwise.
struct Shown {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    name: String,
    total: Option<u64>,
    next_tenth: u64,
}

impl Shown {
    fn new(name: &str, total: Option<u64>, from: u64, progress: bool) -> Shown {
        let fancy = progress && std::io::stderr().is_terminal();
        let bar = fancy.then(|| {
            let b = match total {
                Some(t) => indicatif::ProgressBar::new(t),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            b.set_style(style);
            b.set_message(format!("downloading {name}"));
            b.set_position(from);
            b
        });
        let lines = progress && !fancy;
        let next_tenth = total
            .filter(|t| *t > 0)
            .map(|t| from * 10 / t + 1)
            .unwrap_or(u64::MAX);
        if lines {
            let resume = if from > 0 {
                format!(" (resuming at {from} bytes)")
            } else {
                String::new()
            };
            let size = total
                .map(|t| format!(", {:.1} MiB", t as f64 / 1048576.0))
                .unwrap_or_default();
            eprintln!("downloading {name}{size}{resume}");
        }
        Shown {
            bar,
            lines,
            name: name.to_string(),
            total,
            next_tenth,
        }
    }

    fn at(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        } else if self.lines
            && let Some(t) = self.total.filter(|t| *t > 0)
        {
            while self.next_tenth <= 10 && done * 10 >= self.next_tenth * t {
                eprintln!("downloading {}: {}%", self.name, self.next_tenth * 10);
                self.next_tenth += 1;
            }
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    fn abandon(&mut self) {
        if let Some(b) = self.bar.take() {
            b.abandon();
        }
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Unpacks a go.dev-style tarball (everything under a top folder `go/`) into `dest`,
/// whole or not at all, and returns the GOROOT `dest/go`.
///
/// Safe: an entry with an absolute or `..` path, outside `go/`, a link whose target
/// leaves the tree, or a device or fifo makes it fail. Atomic: the tarball is unpacked
/// into a temporary folder beside `dest`, checked (`go/bin/go` must be a file), then
/// renamed to `dest`; a `dest` already there is replaced if it holds only `go/` (an
/// earlier unpacking), and refused otherwise.
pub fn extract_go(tarball: &Path, dest: &Path) -> Result<PathBuf> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".golab-extract-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot make a folder in {}", parent.display()))?;
    unpack_into(tarball, tmp.path())
        .with_context(|| format!("cannot unpack {}", tarball.display()))?;
    let go = tmp.path().join("go");
    if !go.join("bin/go").is_file() {
        bail!(
            "{} is not a Go release tarball: it has no go/bin/go",
            tarball.display()
        );
    }
    set_mode(tmp.path(), 0o755)?;
    if std::fs::symlink_metadata(dest).is_ok() {
        // Replace only an earlier unpacking (a folder holding at most `go/`), never a
        // folder given by mistake.
        let other = std::fs::read_dir(dest)
            .with_context(|| format!("{} is in the way and is not a folder", dest.display()))?
            .filter_map(|e| e.ok())
            .find(|e| e.file_name() != "go");
        if let Some(e) = other {
            bail!(
                "{} holds {:?}: it is not an unpacked Go to replace (remove it first)",
                dest.display(),
                e.file_name()
            );
        }
        let old = tempfile::Builder::new()
            .prefix(".golab-old-")
            .tempdir_in(parent)?;
        let aside = old.path().join("old");
        std::fs::rename(dest, &aside)
            .with_context(|| format!("cannot move the old {} aside", dest.display()))?;
        std::fs::rename(tmp.path(), dest)
            .with_context(|| format!("cannot move the unpacked Go into {}", dest.display()))?;
        drop(old); // removes the old tree
    } else {
        std::fs::rename(tmp.path(), dest)
            .with_context(|| format!("cannot move the unpacked Go into {}", dest.display()))?;
    }
    let _ = tmp.keep(); // already renamed away
    Ok(dest.join("go"))
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", p.display()))
}

/// The components of an entry path inside the archive, or an error if it is absolute,
/// climbs with `..`, is empty or is outside the top folder `go/`.
fn safe_rel(p: &Path, what: &str) -> Result<Vec<std::ffi::OsString>> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => bail!("unsafe {what} {}: it contains ..", p.display()),
            Component::RootDir | Component::Prefix(_) => {
                bail!("unsafe {what} {}: it is absolute", p.display())
            }
        }
    }
    if out.first().map(|s| s != "go").unwrap_or(true) {
        bail!(
            "unexpected {what} {}: everything in a Go tarball is under go/",
            p.display()
        );
    }
    Ok(out)
}

fn unpack_into(tarball: &Path, root: &Path) -> Result<()> {
    let f = File::open(tarball).with_context(|| format!("cannot read {}", tarball.display()))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    // Mode bits as packed, less set-id bits and group/other write.
    ar.set_preserve_permissions(false);
    ar.set_mask(0o022);
    ar.set_preserve_ownerships(false);
    ar.set_unpack_xattrs(false);
    let mut links = Vec::new();
    for entry in ar.entries()? {
        let mut e = entry?;
        let path = e.path()?.into_owned();
        let kind = e.header().entry_type();
        use tar::EntryType as T;
        match kind {
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            T::Regular | T::Continuous | T::Directory | T::GNUSparse => {
                safe_rel(&path, "path")?;
            }
            T::Symlink | T::Link => {
                let rel = safe_rel(&path, "path")?;
                let target = e
                    .link_name()?
                    .ok_or_else(|| anyhow!("link {} has no target", path.display()))?
                    .into_owned();
                if kind == T::Link {
                    safe_rel(&target, "hard link target")?;
                } else {
                    // Resolve the target against the link's folder, lexically: it must stay under go/.
                    if target.is_absolute() {
                        bail!(
                            "unsafe symlink {} -> {}: absolute target",
                            path.display(),
                            target.display()
                        );
                    }
                    let mut at: Vec<std::ffi::OsString> = rel[..rel.len() - 1].to_vec();
                    for c in target.components() {
                        match c {
                            Component::Normal(s) => at.push(s.to_os_string()),
                            Component::CurDir => {}
                            Component::ParentDir => {
                                at.pop();
                            }
                            _ => bail!("unsafe symlink {} -> {}", path.display(), target.display()),
                        }
                        if at.is_empty() {
                            bail!(
                                "unsafe symlink {} -> {}: it points outside go/",
                                path.display(),
                                target.display()
                            );
                        }
                    }
                    links.push(root.join(&path));
                }
            }
            other => bail!("unsupported entry {} of type {other:?}", path.display()),
        }
        if !e
            .unpack_in(root)
            .with_context(|| format!("cannot unpack {}", path.display()))?
        {
            bail!("refused entry {}", path.display());
        }
    }
    // Links through links can still lead out, whatever each says alone: resolve them all.
    let top = root
        .join("go")
        .canonicalize()
        .context("the tarball has no go/ folder")?;
    for l in links {
        match l.canonicalize() {
            Ok(t) if t.starts_with(&top) => {}
            Ok(t) => bail!(
                "unsafe symlink {}: it resolves to {}, outside go/",
                l.display(),
                t.display()
            ),
            Err(e) => bail!("symlink {} does not resolve inside go/: {e}", l.display()),
        }
    }
    Ok(())
}

//! A machine's inputs on disk: the kernel and initrd for direct boot, the base image's
//! format, the Go tarball's SHA-256.

use super::*;
use crate::exec;
use anyhow::{Context, bail};
use std::io::Read;

/// The kernel and initrd for direct kernel boot: given, or `IMAGE.vmlinuz`/`.initrd`.
pub(super) fn boot_files(
    image: &Path,
    opts: &UpOptions,
) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
    let canon = |p: &Path, what: &str| {
        std::fs::canonicalize(p).with_context(|| format!("no {what} at {}", p.display()))
    };
    match &opts.kernel {
        Some(k) => Ok((
            Some(canon(k, "kernel")?),
            opts.initrd
                .as_deref()
                .map(|i| canon(i, "initrd"))
                .transpose()?,
        )),
        None => {
            let k = image.with_extension("vmlinuz");
            let i = image.with_extension("initrd");
            if k.is_file() {
                Ok((Some(k), i.is_file().then_some(i)))
            } else {
                Ok((None, None))
            }
        }
    }
}

pub(super) fn image_format(image: &Path) -> Result<String> {
    let mut c = Command::new("qemu-img");
    c.args(["info", "--output=json"]).arg(image);
    let out = must(
        exec::run(c, "qemu-img info", Duration::from_secs(60))?,
        "qemu-img info",
    )?;
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).context("qemu-img info printed no JSON")?;
    v["format"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("qemu-img cannot tell the format of {}", image.display()))
}

pub(super) fn check_sha256(file: &Path, want: &str) -> Result<()> {
    use sha2::Digest;
    let mut f = std::fs::File::open(file)
        .with_context(|| format!("no Go tarball at {}", file.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if !got.eq_ignore_ascii_case(want.trim()) {
        bail!(
            "{} has SHA-256 {got}, not the pinned {}",
            file.display(),
            want.trim()
        );
    }
    Ok(())
}

pub(super) fn must(c: exec::Captured, what: &str) -> Result<exec::Captured> {
    if !c.ok() {
        bail!("{what} failed ({}): {}", c.status, c.combined().trim());
    }
    Ok(c)
}

//! Finding and checking the tools a lab needs: go, dlv, gdb, readelf (and objdump, which
//! only the notes' own commands use).
//!
//! A tool is chosen explicitly (`--goroot`, `--dlv`, `--gdb` or `GOLAB_GOROOT`,
//! `GOLAB_DLV`, `GOLAB_GDB`), else found on PATH. Versions are read from the tools
//! themselves. `doctor` turns every problem into the exact command that fixes it.
//! Not for: downloading toolchains (the VM providers install pinned ones).

use crate::machine::{Cmd, Machine};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A Go release, `go1.19.8` -> 1.19.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl GoVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        GoVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses `go1.19.8`, `1.19.8`, `1.19`, `go1.22rc1` (the rc counts as .0).
    pub fn parse(s: &str) -> Result<GoVersion> {
        let t = s.trim().trim_start_matches("go");
        let mut nums = t.split('.').map(|p| {
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<u32>()
        });
        let major = nums.next().and_then(|r| r.ok());
        let minor = nums.next().and_then(|r| r.ok());
        let patch = nums.next().and_then(|r| r.ok()).unwrap_or(0);
        match (major, minor) {
            (Some(major), Some(minor)) => Ok(GoVersion {
                major,
                minor,
                patch,
            }),
            _ => bail!("'{s}' is not a Go version (expected e.g. 1.19 or go1.19.8)"),
        }
    }

    /// `1.19`: the release line, which is what the runtime's behaviour follows.
    pub fn line(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `>=1.17`, `<1.19`, `1.17-1.19`, `=1.15`: which Go versions something applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoRange {
    pub min: Option<(u32, u32)>,
    pub max_incl: Option<(u32, u32)>,
}

impl GoRange {
    pub fn parse(s: &str) -> Result<GoRange> {
        let s = s.trim();
        let line = |t: &str| -> Result<(u32, u32)> {
            let v = GoVersion::parse(t.trim())?;
            Ok((v.major, v.minor))
        };
        let r = if let Some(t) = s.strip_prefix(">=") {
            GoRange {
                min: Some(line(t)?),
                max_incl: None,
            }
        } else if let Some(t) = s.strip_prefix("<=") {
            GoRange {
                min: None,
                max_incl: Some(line(t)?),
            }
        } else if let Some(t) = s.strip_prefix('<') {
            let (ma, mi) = line(t)?;
            if mi == 0 {
                bail!("'{s}': use <=1.N instead");
            }
            GoRange {
                min: None,
                max_incl: Some((ma, mi - 1)),
            }
        } else if let Some(t) = s.strip_prefix('=') {
            let l = line(t)?;
            GoRange {
                min: Some(l),
                max_incl: Some(l),
            }
        } else if let Some((a, b)) = s.split_once('-') {
            GoRange {
                min: Some(line(a)?),
                max_incl: Some(line(b)?),
            }
        } else {
            bail!(
                "'{s}' is not a Go version range (expected >=1.17, <=1.18, <1.19, =1.15 or 1.17-1.19)"
            )
        };
        Ok(r)
    }

    pub fn contains(&self, v: GoVersion) -> bool {
        let l = (v.major, v.minor);
        self.min.is_none_or(|m| l >= m) && self.max_incl.is_none_or(|m| l <= m)
    }
}

/// Applies an optional `go:` constraint from a lab file.
pub fn applies(go: Option<&str>, v: GoVersion) -> bool {
    go.map(|g| GoRange::parse(g).map(|r| r.contains(v)).unwrap_or(false))
        .unwrap_or(true)
}

/// The toolchain table (`toolchains.txt` at the repository root): the Go and dlv releases
/// golab builds, each dlv's native Go range, and the matrix's pairs. Compiled in, so the
/// binary and the scripts read the same table.
pub use crate::pins::TABLE;

/// One `dlv` row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlvRelease {
    pub version: &'static str,
    pub lo: GoVersion,
    pub hi: GoVersion,
    /// The GOROOT name (`go1.17`) that builds it from source, if golab builds it.
    pub built_with: Option<&'static str>,
}

/// Every dlv release of the table, oldest first.
pub fn dlv_releases() -> Vec<DlvRelease> {
    let mut v: Vec<DlvRelease> = TABLE
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.first() != Some(&"dlv") || f.len() < 4 {
                return None;
            }
            let (lo, hi) = f[2].split_once('-')?;
            let lo = GoVersion::parse(lo).ok()?;
            let hi = GoVersion::parse(hi).ok()?;
            Some(DlvRelease {
                version: f[1],
                lo: GoVersion::new(lo.major, lo.minor, 0),
                hi: GoVersion::new(hi.major, hi.minor, u32::MAX),
                built_with: (f[3] != "-").then_some(f[3]),
            })
        })
        .collect();
    v.sort_by_key(|d| GoVersion::parse(d.version).ok());
    v
}

/// The Go versions a dlv release debugs without `--check-go-version=false`, from
/// delve's own compatibility table (pkg/goversion/compat.go of each release).
pub fn dlv_supported_go(dlv: &str) -> Option<(GoVersion, GoVersion)> {
    let v = GoVersion::parse(dlv).ok()?; // "1.20.2" parses as major 1, minor 20
    dlv_releases()
        .into_iter()
        .find(|d| {
            GoVersion::parse(d.version).is_ok_and(|r| r.major == v.major && r.minor == v.minor)
        })
        .map(|d| (d.lo, d.hi))
}

/// The dlv release that serves Go `go`: the newest that golab builds whose range covers
/// it natively.
pub fn serving_dlv(go: GoVersion) -> Option<&'static str> {
    dlv_releases()
        .into_iter()
        .filter(|d| d.built_with.is_some() && d.lo <= go && go <= d.hi)
        .map(|d| d.version)
        .next_back()
}

/// The serving dlv in a toolchains folder (`DIR/dlv-VERSION/dlv`), if it is there.
pub fn serving_dlv_in(dir: &Path, go: GoVersion) -> Option<PathBuf> {
    let p = dir.join(format!("dlv-{}", serving_dlv(go)?)).join("dlv");
    p.is_file().then_some(p)
}

/// The toolchains folder `scripts/fetch-toolchains.sh` fills: `$GOLAB_TOOLCHAINS`, else
/// `~/.cache/golab/toolchains` (the script's own default).
pub fn toolchains_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("GOLAB_TOOLCHAINS")
        .or_else(|| var("HOME").map(|h| h.join(".cache/golab/toolchains")))
        .unwrap_or_else(|| PathBuf::from(".cache/golab/toolchains"))
}

/// The GOROOT of the `go` on PATH when it is release `name` (`go1.19`).
fn path_goroot_of(name: &str) -> Option<PathBuf> {
    let host = Machine::Host;
    let go = find_tool(&host, "go", None, "").ok()?;
    let v = go_version(&host, &go, None).ok()?;
    if format!("go{}.{}", v.major, v.minor) != name {
        return None;
    }
    let out = std::process::Command::new(&go)
        .args(["env", "GOROOT"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .ok()?;
    let r = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    r.join("bin/go").is_file().then_some(r)
}

/// `--go SPEC` (`pinned`, `1.22`, `go1.22`): the GOROOT in the toolchains folder `dir`
/// and the dlv that serves that Go there. The error names the command that fetches it.
pub fn from_folder(dir: &Path, spec: &str) -> Result<(PathBuf, PathBuf)> {
    let spec = spec.trim();
    let (name, fetch) = if spec == "pinned" {
        (crate::pins::course().go.name.to_string(), "pinned")
    } else {
        let v = GoVersion::parse(spec.trim_start_matches("go")).with_context(|| {
            format!("--go {spec}: not a Go release (give `pinned` or one like 1.22)")
        })?;
        (format!("go{}.{}", v.major, v.minor), "all")
    };
    let mut root = dir.join(&name);
    if !root.join("bin/go").is_file()
        && let Some(r) = path_goroot_of(&name)
    {
        root = r; // e.g. Debian's golang-go for go1.19, which the scripts leave to apt
    }
    if !root.join("bin/go").is_file() {
        let mut known: Vec<&str> = TABLE
            .lines()
            .filter_map(|l| l.strip_prefix("pair ")?.split_whitespace().next())
            .collect();
        known.dedup();
        let how = if known.contains(&name.as_str()) {
            format!("`bash scripts/fetch-toolchains.sh {fetch}` builds it there")
        } else {
            format!(
                "golab's scripts fetch {} (toolchains.txt), not {name}",
                known.join(", ")
            )
        };
        bail!(
            "--go {spec}: there is no {name} in the toolchains folder {} ({how}; or give --goroot)",
            dir.display()
        );
    }
    let minor = name.trim_start_matches("go1.").parse::<u32>().unwrap_or(0);
    let go = GoVersion::new(1, minor, 0);
    let Some(dlv) = serving_dlv_in(dir, go) else {
        bail!(
            "--go {spec}: no dlv {} (the one that serves {name}, toolchains.txt) in {} (`bash scripts/fetch-toolchains.sh {fetch}` builds it; or give --dlv)",
            serving_dlv(go).unwrap_or("?"),
            dir.display()
        );
    };
    Ok((root, dlv))
}

/// The tools one lab run uses, with their versions.
#[derive(Debug, Clone, Serialize)]
pub struct Toolchain {
    pub go: PathBuf,
    pub goroot: Option<PathBuf>,
    pub go_version: GoVersion,
    pub dlv: PathBuf,
    pub dlv_version: String,
    pub gdb: PathBuf,
    pub gdb_version: String,
    pub readelf: PathBuf,
    pub readelf_version: String,
}

/// What the user asked for explicitly (flags or environment).
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub goroot: Option<PathBuf>,
    pub dlv: Option<PathBuf>,
    pub gdb: Option<PathBuf>,
    /// `--go pinned|1.X`: the release whose GOROOT and dlv came from this machine's
    /// toolchains folder (a lab VM has only its own).
    pub release: Option<String>,
}

impl Choice {
    /// Paths as given; `go` (`--go pinned|1.X`) becomes that Go's GOROOT in the
    /// toolchains folder and the dlv that serves it, unless a dlv was named.
    pub fn asked(
        goroot: Option<PathBuf>,
        dlv: Option<PathBuf>,
        gdb: Option<PathBuf>,
        go: Option<&str>,
    ) -> Result<Choice> {
        let mut c = Choice {
            goroot,
            dlv,
            gdb,
            release: go.map(str::to_string),
        };
        if let Some(spec) = go {
            let (root, dlv) = from_folder(&toolchains_dir(), spec)?;
            c.goroot = Some(root);
            c.dlv = c.dlv.or(Some(dlv));
        }
        Ok(c)
    }
}

impl Toolchain {
    /// Finds every tool or fails with the doctor's fix for the first one missing.
    pub fn find(choice: &Choice, m: &Machine) -> Result<Toolchain> {
        // The four tools side by side: in a lab VM each lookup and `--version` is a
        // round trip, and gdb's start alone took 4.8 s of a run's 10 s of lookups under
        // software emulation. Errors are reported in this order, whichever came first.
        let (go, dlv, gdb, readelf) = std::thread::scope(|s| {
            let go = s.spawn(|| -> Result<_> {
                let (go, goroot) = find_go(choice, m)?;
                let v = go_version(m, &go, goroot.as_deref())?;
                Ok((go, goroot, v))
            });
            let dlv = s.spawn(|| -> Result<_> {
                let dlv = find_tool(m, "dlv", choice.dlv.as_deref(), "--dlv / GOLAB_DLV")?;
                let v = dlv_version(m, &dlv)?;
                Ok((dlv, v))
            });
            let gdb = s.spawn(|| -> Result<_> {
                let gdb = find_tool(m, "gdb", choice.gdb.as_deref(), "--gdb / GOLAB_GDB")?;
                let v = first_line_version(m, &gdb, "--version")?;
                Ok((gdb, v))
            });
            let readelf = s.spawn(|| -> Result<_> {
                let readelf = find_tool(m, "readelf", None, "")?;
                let v = first_line_version(m, &readelf, "--version")?;
                Ok((readelf, v))
            });
            fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
                h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            }
            (join(go), join(dlv), join(gdb), join(readelf))
        });
        let (go, goroot, go_version) = go?;
        let (dlv, dlv_version) = dlv?;
        let (gdb, gdb_version) = gdb?;
        let (readelf, readelf_version) = readelf?;
        Ok(Toolchain {
            go,
            goroot,
            go_version,
            dlv,
            dlv_version,
            gdb,
            gdb_version,
            readelf,
            readelf_version,
        })
    }

    /// Finds go and dlv only, for what needs no gdb or readelf (the tour): each version
    /// asked is a process start, and the tour aims at seconds. gdb and readelf are left
    /// empty.
    pub fn find_go_and_dlv(choice: &Choice, m: &Machine) -> Result<Toolchain> {
        let (go, goroot) = find_go(choice, m)?;
        let go_version = go_version(m, &go, goroot.as_deref())?;
        let dlv = find_tool(m, "dlv", choice.dlv.as_deref(), "--dlv / GOLAB_DLV")?;
        let dlv_version = dlv_version(m, &dlv)?;
        Ok(Toolchain {
            go,
            goroot,
            go_version,
            dlv,
            dlv_version,
            gdb: Default::default(),
            gdb_version: String::new(),
            readelf: Default::default(),
            readelf_version: String::new(),
        })
    }

    /// A `go` command with the chosen GOROOT and no automatic toolchain switch.
    pub fn go_command(&self) -> Cmd {
        let mut c = Cmd::new(&self.go);
        if let Some(r) = &self.goroot {
            c.env("GOROOT", r);
        }
        c.env("GOTOOLCHAIN", "local").env("GOFLAGS", "-mod=mod");
        c
    }

    /// Environment for `go build` that this go/dlv pair needs, with the reason. A dlv
    /// whose range stops before Go 1.25 cannot read the DWARF 5 that Go writes by
    /// default from 1.25 (measured with dlv 1.24 on go1.25-1.27: no arguments, no
    /// locals, `?` for assembly files); `GOEXPERIMENT=nodwarf5` restores DWARF 4.
    pub fn build_env(&self, dwarf5_default: bool) -> (Vec<(String, String)>, Option<String>) {
        let dlv_reads_dwarf5 =
            dlv_supported_go(&self.dlv_version).is_some_and(|(_, hi)| hi.minor >= 25);
        if dwarf5_default && !dlv_reads_dwarf5 {
            let w = format!(
                "dlv {} predates Go's DWARF 5 (default from 1.25): built with GOEXPERIMENT=nodwarf5",
                self.dlv_version
            );
            return (vec![("GOEXPERIMENT".into(), "nodwarf5".into())], Some(w));
        }
        (Vec::new(), None)
    }

    /// When this dlv does not support this Go natively: what that means and the fix (the
    /// dlv that serves this Go, toolchains.txt). Said beside a failed dlv session, since an
    /// old dlv on a newer Go fails inside dlv ("Internal debugger error").
    pub fn dlv_mismatch_hint(&self) -> Option<String> {
        let (lo, hi) = dlv_supported_go(&self.dlv_version)?;
        if self.dlv_supports_go() != Some(false) {
            return None;
        }
        let v = self.go_version;
        let serving = serving_dlv(v)
            .map(|d| format!("dlv {d} serves go{}.{} (`golab run LAB --go {}.{}` picks both from the toolchains folder)", v.major, v.minor, v.major, v.minor))
            .unwrap_or_else(|| "no dlv golab knows serves it (toolchains.txt)".into());
        Some(format!(
            "dlv {} supports Go {}.{} to {}.{} natively and this is {v}, so it ran with --check-go-version=false; {serving}",
            self.dlv_version, lo.major, lo.minor, hi.major, hi.minor
        ))
    }

    /// Whether this dlv supports this Go without `--check-go-version=false`.
    pub fn dlv_supports_go(&self) -> Option<bool> {
        dlv_supported_go(&self.dlv_version)
            .map(|(lo, hi)| self.go_version >= lo && self.go_version <= hi)
    }
}

fn find_go(choice: &Choice, m: &Machine) -> Result<(PathBuf, Option<PathBuf>)> {
    if let Some(root) = &choice.goroot {
        let go = root.join("bin/go");
        if !m.is_file(&go) {
            bail!(
                "--goroot {}: there is no bin/go in it (a GOROOT is the folder that holds bin/go and src/runtime)",
                root.display()
            );
        }
        return Ok((go, Some(root.clone())));
    }
    Ok((find_tool(m, "go", None, "--goroot / GOLAB_GOROOT")?, None))
}

/// An explicit path, else the first `name` on PATH; the error carries the fix.
pub fn find_tool(m: &Machine, name: &str, explicit: Option<&Path>, flag: &str) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if m.is_file(p) {
            return Ok(p.to_path_buf());
        }
        bail!(
            "{name}: {} does not exist{}",
            p.display(),
            if flag.is_empty() {
                String::new()
            } else {
                format!(" (given with {flag})")
            }
        );
    }
    m.which(name).ok_or_else(|| {
        anyhow::anyhow!(
            "{name} is not installed on {} (not on PATH). Fix: {}",
            m.name(),
            install_hint(name)
        )
    })
}

/// The command that installs a tool on Debian or Ubuntu.
pub fn install_hint(name: &str) -> String {
    let pkg = match name {
        "go" => "golang-go",
        "dlv" => "delve",
        "gdb" => "gdb",
        "readelf" | "objdump" => "binutils",
        other => other,
    };
    format!("apt-get install -y {pkg}   (or run scripts/install-deps.sh)")
}

pub fn go_version(m: &Machine, go: &Path, goroot: Option<&Path>) -> Result<GoVersion> {
    let mut c = Cmd::new(go);
    c.arg("version").env("GOTOOLCHAIN", "local");
    if let Some(r) = goroot {
        c.env("GOROOT", r);
    }
    let out = m.run(&c, "go version", Duration::from_secs(60))?;
    // "go version go1.19.8 linux/amd64"
    let word = out
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("go1"))
        .with_context(|| {
            format!(
                "cannot read the Go version from `{} version`: {}",
                go.display(),
                out.combined().trim()
            )
        })?;
    GoVersion::parse(word)
}

pub fn dlv_version(m: &Machine, dlv: &Path) -> Result<String> {
    let out = m.run(
        Cmd::new(dlv).arg("version"),
        "dlv version",
        Duration::from_secs(60),
    )?;
    out.stdout
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Version:")
                .map(|v| v.trim().to_string())
        })
        .with_context(|| {
            format!(
                "cannot read the version from `{} version`: {}",
                dlv.display(),
                out.combined().trim()
            )
        })
}

/// The last word of the first line of `tool --version` (`GNU gdb (Debian 13.1-3) 13.1` -> 13.1).
pub fn first_line_version(m: &Machine, tool: &Path, flag: &str) -> Result<String> {
    let out = m.run(
        Cmd::new(tool).arg(flag),
        &format!("{} {flag}", tool.display()),
        Duration::from_secs(60),
    )?;
    let line = out.stdout.lines().next().unwrap_or("").trim().to_string();
    line.split_whitespace()
        .last()
        .map(str::to_string)
        .with_context(|| format!("cannot read the version of {}", tool.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsupported_pair_names_the_dlv_that_serves_the_go() {
        let tc = |go: GoVersion, dlv: &str| Toolchain {
            go: "go".into(),
            goroot: None,
            go_version: go,
            dlv: "dlv".into(),
            dlv_version: dlv.into(),
            gdb: "gdb".into(),
            gdb_version: String::new(),
            readelf: "readelf".into(),
            readelf_version: String::new(),
        };
        let h = tc(GoVersion::new(1, 23, 5), "1.9.1")
            .dlv_mismatch_hint()
            .unwrap();
        assert!(h.contains("dlv 1.9.1 supports Go 1.17 to 1.19"), "{h}");
        assert!(
            h.contains("this is go1.23.5") && h.contains("dlv 1.24.0 serves go1.23"),
            "{h}"
        );
        assert!(h.contains("--go 1.23"), "{h}");
        // A supported pair has nothing to say.
        assert_eq!(
            tc(GoVersion::new(1, 17, 1), "1.9.1").dlv_mismatch_hint(),
            None
        );
        assert!(
            tc(GoVersion::new(1, 17, 1), "1.20.2")
                .dlv_mismatch_hint()
                .is_some()
        );
    }

    #[test]
    fn go_flag_resolves_in_the_toolchains_folder() {
        let d = tempfile::tempdir().unwrap();
        let touch = |p: &str| {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        };
        touch("go1.17/bin/go");
        // No dlv yet: the error names the dlv that serves go1.17 and the fix.
        let e = format!("{:#}", from_folder(d.path(), "pinned").unwrap_err());
        assert!(
            e.contains("no dlv 1.9.1") && e.contains("fetch-toolchains.sh pinned"),
            "{e}"
        );
        touch("dlv-1.9.1/dlv");
        touch("dlv-1.7.3/dlv"); // also covers 1.17, but is not the newest that does
        let (root, dlv) = from_folder(d.path(), "pinned").unwrap();
        assert_eq!(root, d.path().join("go1.17"));
        assert_eq!(dlv, d.path().join("dlv-1.9.1/dlv"));
        assert_eq!(from_folder(d.path(), "1.17.1").unwrap().0, root);
        assert_eq!(from_folder(d.path(), "go1.17").unwrap().0, root);
        let e = format!("{:#}", from_folder(d.path(), "1.22").unwrap_err());
        assert!(
            e.contains("no go1.22") && e.contains("fetch-toolchains.sh all"),
            "{e}"
        );
        let e = format!("{:#}", from_folder(d.path(), "1.3").unwrap_err());
        assert!(e.contains("not go1.3"), "{e}");
        assert!(from_folder(d.path(), "banana").is_err());
    }

    #[test]
    fn go_versions_parse_and_order() {
        assert_eq!(
            GoVersion::parse("go1.19.8").unwrap(),
            GoVersion::new(1, 19, 8)
        );
        assert_eq!(GoVersion::parse("1.17").unwrap(), GoVersion::new(1, 17, 0));
        assert_eq!(
            GoVersion::parse("go1.22rc1").unwrap(),
            GoVersion::new(1, 22, 0)
        );
        assert!(GoVersion::parse("banana").is_err());
        assert!(GoVersion::new(1, 9, 0) < GoVersion::new(1, 17, 1));
    }

    #[test]
    fn ranges_select_versions() {
        let v17 = GoVersion::new(1, 17, 1);
        let v15 = GoVersion::new(1, 15, 15);
        assert!(GoRange::parse(">=1.17").unwrap().contains(v17));
        assert!(!GoRange::parse(">=1.17").unwrap().contains(v15));
        assert!(GoRange::parse("<1.17").unwrap().contains(v15));
        assert!(!GoRange::parse("<1.17").unwrap().contains(v17));
        assert!(GoRange::parse("1.15-1.16").unwrap().contains(v15));
        assert!(GoRange::parse("=1.17").unwrap().contains(v17));
        assert!(GoRange::parse("1.17+").is_err());
    }

    #[test]
    fn each_go_of_the_matrix_is_served_by_the_newest_dlv_that_covers_it() {
        let served = |v: &str| serving_dlv(GoVersion::parse(v).unwrap());
        assert_eq!(served("1.15.15"), Some("1.7.3"));
        assert_eq!(served("1.17.1"), Some("1.9.1"));
        assert_eq!(served("1.19.8"), Some("1.20.2"));
        for v in ["1.21.13", "1.22.12", "1.23.5", "1.24.4"] {
            assert_eq!(served(v), Some("1.24.0"), "{v}");
        }
        for v in ["1.25.5", "1.27.3"] {
            assert_eq!(served(v), Some("1.27.1"), "{v}");
        }
        assert_eq!(served("1.14.1"), None);
        // Every pair of the matrix names a dlv of the table that golab builds.
        for l in TABLE.lines().filter(|l| l.starts_with("pair ")) {
            let dlv = l.split_whitespace().nth(2).unwrap();
            assert!(
                dlv_releases()
                    .iter()
                    .any(|d| d.version == dlv && d.built_with.is_some()),
                "{l}"
            );
        }
    }

    #[test]
    fn dlv_120_supports_119_but_not_115() {
        let (lo, hi) = dlv_supported_go("1.20.2").unwrap();
        assert!(GoVersion::new(1, 19, 8) >= lo && GoVersion::new(1, 19, 8) <= hi);
        assert!(GoVersion::new(1, 15, 15) < lo);
        assert!(dlv_supported_go("7.0.0").is_none());
    }
}

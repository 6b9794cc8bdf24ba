//! From a grading request to a Grader: the lab, the toolchains folder's GOROOTs and the
//! dlv that serves each, and the isolation each student's program runs under (the
//! sandbox; the reduced isolation where it cannot start and that is allowed; none for
//! trusted code). `golab grade` and `golab check` only fill in a [`Setup`].

use super::batch;
use super::grader::{Grader, LabRunner};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::time::Duration;

/// What a grading command asked for.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The lab's name or folder.
    pub lab: Option<String>,
    pub seed: Option<String>,
    /// A toolchains folder (go1.X GOROOTs, dlv-VERSION/dlv).
    pub toolchains: Option<PathBuf>,
    /// The dlv for Go versions the toolchains folder has no dlv for.
    pub dlv: Option<PathBuf>,
    /// One submission's lab run.
    pub timeout: Duration,
    /// The student's program run alone (traced) before the lab runs on it.
    pub program_time: Duration,
    /// Trusted code: no sandbox.
    pub no_sandbox: bool,
    /// Where the sandbox cannot start, grade with the isolation that remains.
    pub fallback_isolation: bool,
}

/// The grader for `g`, with a note on the isolation when it is not the sandbox's.
/// `golab` is the binary each submission's lab run starts.
pub fn grader(
    g: &Setup,
    golab: PathBuf,
    work: PathBuf,
    hidden: &[PathBuf],
) -> Result<(Grader, Option<String>)> {
    let lab = crate::lab::load(g.lab.as_deref().context(
        "give the lab with --lab (in a handout folder, golab check reads it from .golab-handout.yaml)",
    )?)?;
    if lab.questions.is_empty() {
        bail!("lab {} has no questions to grade", lab.name);
    }
    let mut goroots = Vec::new();
    let mut dlv_for = Vec::new();
    if let Some(t) = &g.toolchains {
        for e in std::fs::read_dir(t)
            .with_context(|| format!("cannot read the toolchains folder {}", t.display()))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("go1.") && e.path().join("bin/go").is_file() {
                goroots.push((name.clone(), e.path()));
                if let Some(dlv) = crate::toolchain::GoVersion::parse(&name)
                    .ok()
                    .and_then(|v| crate::toolchain::serving_dlv_in(t, v))
                {
                    dlv_for.push((name, dlv));
                }
            }
        }
    }
    std::fs::create_dir_all(&work)?;
    let work = std::fs::canonicalize(&work)?;
    let timeout = g.timeout;
    let blocked = if g.no_sandbox || !g.fallback_isolation {
        None
    } else {
        sandbox_blocked()
    };
    let mut note = None;
    let runner: Box<dyn crate::grade::grader::LabRunner> = if let Some(why) = blocked {
        let (r, n) = reduced_runner(g, &work, hidden, golab, dlv_for, timeout, &why)?;
        note = Some(n);
        r
    } else if g.no_sandbox {
        Box::new(batch::Direct {
            run: batch::GolabRun {
                golab,
                dlv: g.dlv.clone(),
                dlv_for,
            },
            timeout,
        })
    } else {
        sandboxed_runner(g, &work, hidden, golab, dlv_for, timeout, lab.dir.clone())?
    };
    Ok((
        Grader {
            lab,
            seed: g.seed.clone(),
            work,
            goroots,
            runner,
            builds_used: Default::default(),
        },
        note,
    ))
}

/// Why the sandbox cannot start here, if it cannot (Linux: bubblewrap's words).
#[cfg(target_os = "linux")]
fn sandbox_blocked() -> Option<String> {
    crate::grade::reduced::sandbox_starts().err()
}

/// Elsewhere there is no reduced isolation to fall back to: the sandboxed runner refuses.
#[cfg(not(target_os = "linux"))]
fn sandbox_blocked() -> Option<String> {
    None
}

/// The reduced isolation, where the sandbox cannot start (`why`) and that is allowed,
/// and the note the results carry about it.
#[cfg(target_os = "linux")]
fn reduced_runner(
    g: &Setup,
    work: &std::path::Path,
    hidden: &[PathBuf],
    golab: PathBuf,
    dlv_for: Vec<(String, PathBuf)>,
    timeout: Duration,
    why: &str,
) -> Result<(Box<dyn LabRunner>, String)> {
    use crate::grade::reduced;
    let isolation = reduced::Isolation::probe();
    if !isolation.own_uid {
        anyhow::bail!(
            "the sandbox cannot start here ({why}), and the reduced isolation needs golab to run as root: without a uid of its own the student's program could rewrite what golab observes of it"
        );
    }
    let mut n = isolation.describe(why, timeout);
    // No mount namespace: what the sandbox would hide is hidden only by its modes.
    for h in hidden {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(h)
            && m.permissions().mode() & 0o005 != 0
        {
            n.push_str(&format!(
                "; warning: {} is readable by other users, so a student's program can read the submissions in it (chmod o-rwx {})",
                h.display(),
                h.display()
            ));
        }
    }
    eprintln!("golab: {n}");
    // The runs' uids must be able to enter the work folder.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o711))?;
    }
    let runner: Box<dyn LabRunner> = Box::new(reduced::Reduced::new(
        batch::GolabRun {
            golab,
            dlv: g.dlv.clone(),
            dlv_for,
        },
        timeout,
        isolation,
    ));
    Ok((runner, n))
}

#[cfg(not(target_os = "linux"))]
fn reduced_runner(
    _g: &Setup,
    _work: &std::path::Path,
    _hidden: &[PathBuf],
    _golab: PathBuf,
    _dlv_for: Vec<(String, PathBuf)>,
    _timeout: Duration,
    _why: &str,
) -> Result<(Box<dyn LabRunner>, String)> {
    bail!("{}", super::SANDBOX_ONLY_ON_LINUX)
}

/// `golab gradescope probe`'s answer: whether the sandbox starts here, else what the
/// reduced isolation would do.
#[cfg(target_os = "linux")]
pub fn probe() -> String {
    use crate::grade::reduced;
    match reduced::sandbox_starts() {
        Ok(()) => "sandbox: starts here (bubblewrap with user, pid and network namespaces)".into(),
        Err(why) => format!(
            "sandbox: cannot start here; {}",
            reduced::Isolation::probe().describe(&why, Duration::from_secs(180))
        ),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn probe() -> String {
    format!(
        "sandbox: cannot start here; {}",
        super::SANDBOX_ONLY_ON_LINUX
    )
}

/// The runner that puts each student's program in the sandbox (Linux only: bubblewrap,
/// uid switching, /proc monitoring).
#[cfg(target_os = "linux")]
fn sandboxed_runner(
    g: &Setup,
    work: &std::path::Path,
    hidden: &[PathBuf],
    golab: PathBuf,
    dlv_for: Vec<(String, PathBuf)>,
    timeout: Duration,
    lab_dir: PathBuf,
) -> Result<Box<dyn LabRunner>> {
    let work = work.to_path_buf();
    crate::grade::sandbox::available(true).context(
        "grading runs students' programs in a sandbox (or pass --no-sandbox for trusted code)",
    )?;
    crate::grade::sandbox::cgroup::available().context(
        "grading counts each submission's memory, tasks and CPU in a cgroup (or pass --no-sandbox for trusted code)",
    )?;
    // The sandbox runs as unprivileged uids: they must be able to enter the folders.
    for a in work.ancestors() {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(a)
            && m.permissions().mode() & 0o001 == 0
        {
            bail!(
                "{} is not enterable by other users (mode {:o}), so the sandbox cannot reach {}: grade into another folder (-o), or `chmod o+x {}`",
                a.display(),
                m.permissions().mode() & 0o777,
                work.display(),
                a.display()
            );
        }
    }
    let mut hide: Vec<PathBuf> = hidden
        .iter()
        .filter_map(|h| std::fs::canonicalize(h).ok())
        .collect();
    hide.push(work.clone());
    // golab itself runs inside the sandbox: a copy where its uids can reach it,
    // whatever the folder golab was installed in.
    let inside = work.join(".bin/golab");
    std::fs::create_dir_all(work.join(".bin"))?;
    crate::files::copy_executable(&golab, &inside)
        .with_context(|| format!("cannot copy {} for the sandbox", golab.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.join(".bin"), std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o755))?;
    }
    let golab = inside;
    Ok(Box::new(crate::grade::sandboxed::Sandboxed::new(
        batch::GolabRun {
            golab,
            dlv: g.dlv.clone(),
            dlv_for,
        },
        hide,
        work.join(".gocache"),
        lab_dir,
        timeout,
        g.program_time,
    )))
}

/// Elsewhere there is no sandbox: grading refuses, unless told the code is trusted.
#[cfg(not(target_os = "linux"))]
fn sandboxed_runner(
    _g: &Setup,
    _work: &std::path::Path,
    _hidden: &[PathBuf],
    _golab: PathBuf,
    _dlv_for: Vec<(String, PathBuf)>,
    _timeout: Duration,
    _lab_dir: PathBuf,
) -> Result<Box<dyn LabRunner>> {
    bail!("{}", super::SANDBOX_ONLY_ON_LINUX)
}

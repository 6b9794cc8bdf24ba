//! One run of a lab, as a pipeline of typed stages, each a plain value handed to the
//! next, none reaching back:
//!
//! ```text
//! plan (RunPlan) -> tools (Tools) -> build (Binary) -> probes (Probed) -> Observation
//!      -> checks (Verdict) -> report (the caller: report::terminal, report::json)
//! ```
//! `plan` reads only the lab file and the options. The probes run side by side: the
//! static ones (readelf, the call-site decoder) on a thread beside the debugger sessions, and the gdb
//! session beside the dlv sessions (one after the other in the grader's sandbox, whose
//! limits count both). What each probe recorded is written to the transcript folder as
//! soon as it exists, so a later failure loses nothing that was already seen.

mod plan;
mod probes;

pub use plan::{RunPlan, add_cosim_points};

use crate::check::{self, Verdict};
use crate::files::write_atomic;
use crate::lab::Lab;
use crate::machine::Machine;
use crate::probe::{build, elf::Elf};
use crate::progress::Progress;
use crate::reference::Profile;
use crate::toolchain::{Choice, Toolchain};
use crate::trace::{self, Observation};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Options {
    pub choice: Choice,
    pub transcript: Option<PathBuf>,
    pub keep_work: Option<PathBuf>,
    pub quiet: bool,
    /// Run only this scenario of a lab that has several.
    pub scenario: Option<String>,
    /// Run each scenario this many times (fidelity measurements).
    pub repeat: u32,
    /// A binary already built from this lab's program by the same Go (the grader builds
    /// identical programs once); the build stage then only copies it.
    pub prebuilt: Option<PathBuf>,
    /// Where the lab runs.
    pub machine: Machine,
}

/// What a run produced: the Observation, its Verdict and the report's header.
pub struct RunResult {
    pub observation: Observation,
    pub verdict: Verdict,
    pub header: String,
}

/// Stage 2: the tools found on the machine, and the reference profile for their Go.
pub struct Tools {
    pub tc: Toolchain,
    pub profile: Profile,
    pub header: String,
    pub warnings: Vec<String>,
}

/// Stage 3: the program built (or the prebuilt one copied) and its ELF read here.
pub struct Binary {
    pub built: build::Built,
    pub elf: Elf,
    /// The binary on the host (a copy when the lab runs on a VM): what the ELF reader and
    /// the call-site decoder read.
    pub local: PathBuf,
    pub warnings: Vec<String>,
    /// The work folder, when it is a temporary one, and the ELF's local copy.
    _work: Option<tempfile::TempDir>,
    _local: tempfile::TempDir,
}

/// Stage 4: what every probe recorded.
pub struct Probed {
    pub static_: probes::Static,
    pub gdb: Option<crate::probe::gdb_mi::GdbRun>,
    pub dlv: probes::Dlv,
}

pub(crate) struct Transcript(Option<PathBuf>);

impl Transcript {
    fn write(&self, name: &str, text: &str) -> Result<()> {
        match &self.0 {
            Some(d) => write_atomic(&d.join(name), text.as_bytes()),
            None => Ok(()),
        }
    }
}

/// What kind of failure stopped a run, and the message that goes with it (for a
/// compile error, the compiler's own output), from the error's types.
pub fn failure(e: &anyhow::Error) -> (crate::exit::ErrorKind, String) {
    use crate::exit::ErrorKind;
    if let Some(c) = e
        .chain()
        .find_map(|c| c.downcast_ref::<build::CompileError>())
    {
        return (ErrorKind::CompileError, c.output.clone());
    }
    if let Some(i) = crate::machine::interfered(e) {
        return (ErrorKind::ObserverKilled, i.0.clone());
    }
    if let Some(d) = e
        .chain()
        .find_map(|c| c.downcast_ref::<crate::machine::Denied>())
    {
        return (ErrorKind::NetworkDenied, d.0.join("; "));
    }
    if let Some(f) = e
        .chain()
        .find_map(|c| c.downcast_ref::<crate::machine::Flooded>())
    {
        return (ErrorKind::OutputLimit, f.to_string());
    }
    if crate::exec::timed_out(e) {
        return (ErrorKind::Timeout, format!("{e:#}"));
    }
    (ErrorKind::Error, format!("{e:#}"))
}

/// Runs `lab` through every stage.
pub fn run(lab: &Lab, opts: &Options) -> Result<RunResult> {
    let p = plan::plan(lab, opts)?;
    let mut progress = Progress::new(p.stages, opts.quiet);
    let transcript = Transcript(opts.transcript.clone());
    let m = &opts.machine;
    progress.stage("finding go, dlv, gdb and readelf");
    let t = tools(&p, &opts.choice, m)?;
    progress.stage(&format!(
        "building {} with -gcflags \"{}\"",
        lab.name, lab.program.gcflags
    ));
    let b = build_stage(&t, opts, lab)?;
    let probed = probe(&p, &t, &b, m, &transcript, &mut progress);
    // What the program tried under its debugger decides first (it may be why a session
    // failed): the sandbox refused it and kept it as evidence.
    if let Some(d) = crate::machine::denied() {
        return Err(d.into());
    }
    if let Some(f) = crate::machine::flooded() {
        return Err(f.into());
    }
    let probed = probed?;
    progress.stage("checking against the reference");
    let (obs, warnings) = observe(&p, &t, &b, m, probed)?;
    let verdict = check::judge(lab, &obs, &t.profile, warnings);
    progress.finish();
    Ok(RunResult {
        observation: obs,
        verdict,
        header: t.header,
    })
}

/// Stage 2: go, dlv, gdb and readelf on the machine; the profile of that Go.
fn tools(p: &RunPlan, choice: &Choice, m: &Machine) -> Result<Tools> {
    let tc = Toolchain::find(choice, m)?;
    let (profile, profile_warning) = Profile::for_version(tc.go_version);
    let mut header = plan::header(p.lab, &tc, &profile);
    if p.callers_check {
        header.push_str(&plan::notes_vs_source(tc.go_version)?);
    }
    Ok(Tools {
        tc,
        profile,
        header,
        warnings: profile_warning.into_iter().collect(),
    })
}

/// Stage 3: `go build` in a work folder (or the prebuilt binary copied there), and the
/// ELF read from a local copy.
fn build_stage(t: &Tools, opts: &Options, lab: &Lab) -> Result<Binary> {
    let m = &opts.machine;
    let (work, work_tmp) = match (&opts.keep_work, m) {
        (Some(w), Machine::Host) => (w.clone(), None),
        (Some(_), _) => bail!(
            "--work keeps a folder on the host; the lab runs on {}",
            m.name()
        ),
        (None, _) => m.temp_dir()?,
    };
    let (build_env, build_warning) = t.tc.build_env(t.profile.dwarf5_default);
    let built = match (&opts.prebuilt, m) {
        (Some(b), Machine::Host) => build::reuse(b, &work)?,
        (Some(_), _) => bail!(
            "--binary names a file on the host; the lab runs on {}",
            m.name()
        ),
        (None, _) => build::build(m, &t.tc, &lab.dir, &work, &lab.program.gcflags, &build_env)?,
    };
    // The ELF reader works on a local copy.
    let local = tempfile::Builder::new().prefix("golab-elf-").tempdir()?;
    let local_binary = match m {
        Machine::Host => built.binary.clone(),
        _ => {
            let p = local.path().join("main");
            m.fetch(&built.binary, &p)?;
            p
        }
    };
    let elf = Elf::read(&local_binary)?;
    Ok(Binary {
        built,
        elf,
        local: local_binary,
        warnings: build_warning.into_iter().collect(),
        _work: work_tmp,
        _local: local,
    })
}

/// Stage 4: the probes, side by side. Errors are reported in the order the probes
/// were listed (readelf and the call sites, gdb, dlv), whichever came first.
fn probe(
    p: &RunPlan,
    t: &Tools,
    b: &Binary,
    m: &Machine,
    transcript: &Transcript,
    progress: &mut Progress,
) -> Result<Probed> {
    progress.stage("reading the entry point (readelf -h, ELF header)");
    if p.static_check && !p.caller_targets().is_empty() {
        progress.stage("reading static callers from the machine code");
    }
    if p.lab.gdb.is_some() {
        progress.stage("gdb/MI session");
    }
    // In the grader's sandbox both debuggers would count against one memory and
    // process limit: there they take turns.
    let together = !crate::machine::jailed();
    let i = &probes::Inputs {
        p,
        t,
        b,
        m,
        transcript,
    };
    std::thread::scope(|s| {
        let static_ = s.spawn(|| probes::static_probes(i));
        let (gdb, dlv) = if together {
            let gdb = s.spawn(|| probes::gdb_probe(i));
            let dlv = probes::dlv_probes(i, progress);
            (join(gdb), dlv)
        } else {
            match probes::gdb_probe(i) {
                Ok(g) => (Ok(g), probes::dlv_probes(i, progress)),
                Err(e) => (Err(e), Ok(probes::Dlv::default())),
            }
        };
        Ok(Probed {
            static_: join(static_)?,
            gdb: gdb?,
            dlv: dlv?,
        })
    })
}

/// A probe thread's result (its panic goes on as the run's).
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Stage 5: the Observation, from what the probes recorded and the facts golab knows
/// independently (argc, the machine's CPUs and page size, symbol addresses); with the
/// warnings gathered on the way, in stage order.
fn observe(
    p: &RunPlan,
    t: &Tools,
    b: &Binary,
    m: &Machine,
    probed: Probed,
) -> Result<(Observation, Vec<String>)> {
    let Probed { static_, gdb, dlv } = probed;
    let mut warnings = t.warnings.clone();
    warnings.extend(b.warnings.iter().cloned());
    warnings.extend(static_.warnings);
    let elf = &b.elf;
    let mut obs = Observation {
        lab: p.lab.name.clone(),
        go_version: t.tc.go_version.to_string(),
        ..Default::default()
    };
    obs.build = trace::Build {
        gcflags: p.lab.program.gcflags.clone(),
        has_dwarf: elf.has_dwarf,
        main_args_is_function: elf.is_function("main.args"),
        seconds: b.built.seconds,
    };
    obs.entry = trace::Entry {
        readelf: Some(static_.readelf_entry),
        gdb: None,
        elf: elf.entry,
        symbol: elf.function_at(elf.entry).map(str::to_string),
    };
    obs.in_binary = static_.in_binary;
    obs.static_callers = static_.static_callers;
    obs.static_callers_not_checked = static_.static_callers_not_checked;
    if let Some(g) = gdb {
        obs.entry.gdb = g.entry;
        warnings.extend(g.session.warnings.iter().map(|w| format!("gdb: {w}")));
        obs.gdb = Some(g.session);
    }
    warnings.extend(dlv.warnings);
    if let Some(d) = dlv.main {
        obs.dlv = d.session;
        obs.wrappers = d.wrappers;
    }
    obs.dlv_reruns = dlv.reruns;
    obs.scenarios = dlv.scenarios;

    // Name every breakpoint address by the ELF symbol that holds it, so that witnesses
    // can be compared by function even where their prologue analyses differ.
    for bp in obs
        .dlv
        .breakpoints
        .iter_mut()
        .chain(obs.gdb.iter_mut().flat_map(|g| g.breakpoints.iter_mut()))
    {
        bp.symbols = bp
            .addrs
            .iter()
            .map(|a| elf.describe(*a).unwrap_or_else(|| format!("{a:#x}")))
            .collect();
    }

    let ncpu = m.ncpu()?;
    let argv = obs
        .dlv
        .hits
        .first()
        .and_then(|h| h.values.get("reg rsp"))
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .map(|sp| sp + 8);
    let mut symbols = BTreeMap::new();
    for s in plan::symbols_named(p.lab) {
        if let Some(a) = elf.symbol(&s).or_else(|| elf.symbol(&format!("{s}.abi0"))) {
            symbols.insert(s, a);
        }
    }
    obs.facts = trace::Facts {
        argc: p.args.len() as u64 + 1,
        argv,
        page_size: m.page_size()?,
        ncpu,
        gomaxprocs: p.gomaxprocs(ncpu),
        symbols,
    };
    Ok((obs, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ErrorKind;

    #[test]
    fn a_failure_s_kind_comes_from_its_type_not_its_words() {
        // Interference, however it is wrapped, is observer-killed with its own reason.
        let e = anyhow::Error::from(crate::machine::Interfered(
            "gdb ended during the session while your program ran under it".into(),
        ))
        .context("the gdb session");
        assert_eq!(
            failure(&e),
            (
                ErrorKind::ObserverKilled,
                "gdb ended during the session while your program ran under it".into()
            )
        );
        // The marker's words alone are no interference.
        let e = anyhow::anyhow!("{} dlv was stopped", crate::machine::INTERFERENCE);
        assert_eq!(failure(&e).0, ErrorKind::Error);
        let e = anyhow::Error::from(crate::exec::TimedOut("dlv did not answer".into()));
        assert_eq!(failure(&e).0, ErrorKind::Timeout);
    }
}

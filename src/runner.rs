//! One run of a lab on the host: toolchain -> build -> probes -> Observation -> Verdict.
//!
//! The stages hand plain data forward and never reach back. What each probe recorded is
//! written to the transcript folder as soon as it exists, so a later failure loses
//! nothing that was already seen.

use crate::check::{self, Fact, Verdict};
use crate::files::write_atomic;
use crate::lab::{BreakpointSpec, CheckKind, Lab, ScenarioSpec};
use crate::machine::Machine;
use crate::probe::{build, dlv_rpc, elf::Elf, gdb_mi, objdump, readelf};
use crate::progress::Progress;
use crate::reference::callers;
use crate::reference::{Profile, startup};
use crate::toolchain::{self, Choice, Toolchain};
use crate::trace::{self, Observation};
use anyhow::{Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

pub struct Outcome {
    pub observation: Observation,
    pub verdict: Verdict,
    pub header: String,
}

/// The breakpoints of a lab for a Go version: `@chain` expands to the reference chain's
/// functions; an explicit entry for a function overrides the expansion's hit limit.
pub fn breakpoints(
    lab: &Lab,
    profile: &Profile,
    v: toolchain::GoVersion,
) -> Vec<dlv_rpc::BreakpointPlan> {
    let mut out = plan_breakpoints(&lab.dlv.breakpoints, profile, v);
    if cosim_applies(lab, v) {
        add_cosim_points(&mut out, profile);
    }
    out
}

/// The co-simulation's transition points: every hit kept, no stack (the state is read
/// at each stop, see `stops`). A function the lab stops at already keeps its stack and
/// all its hits are kept.
pub fn add_cosim_points(out: &mut Vec<dlv_rpc::BreakpointPlan>, profile: &Profile) {
    for pt in crate::reference::cosim::points(profile) {
        match out.iter_mut().find(|b| b.function == pt.function) {
            Some(b) => b.max_hits = 0,
            None => {
                let mut b = dlv_rpc::BreakpointPlan::new(&pt.function, 0);
                b.stack_depth = 0;
                out.push(b);
            }
        }
    }
}

fn cosim_applies(lab: &Lab, v: toolchain::GoVersion) -> bool {
    lab.checks
        .iter()
        .any(|c| c.kind == CheckKind::Cosim && toolchain::applies(c.go.as_deref(), v))
}

fn plan_breakpoints(
    specs: &[BreakpointSpec],
    profile: &Profile,
    v: toolchain::GoVersion,
) -> Vec<dlv_rpc::BreakpointPlan> {
    let explicit: BTreeMap<&str, &BreakpointSpec> = specs
        .iter()
        .filter(|b| b.function() != "@chain")
        .map(|b| (b.function(), b))
        .collect();
    let mut out: Vec<dlv_rpc::BreakpointPlan> = Vec::new();
    let push = |f: &str, max: u32, out: &mut Vec<dlv_rpc::BreakpointPlan>| {
        if !out.iter().any(|b| b.function == f) {
            out.push(dlv_rpc::BreakpointPlan::new(f, max));
        }
    };
    for b in specs {
        if b.function() == "@chain" {
            for s in startup::chain(profile) {
                // The entry point is where the process is stopped already.
                if s.reached == startup::Reached::Entry {
                    continue;
                }
                let max = explicit
                    .get(s.function.as_str())
                    .map(|e| e.max_hits())
                    .unwrap_or(b.max_hits());
                push(&s.function, max, &mut out);
            }
        } else if toolchain::applies(b.go(), v) {
            push(b.function(), b.max_hits(), &mut out);
        }
    }
    out
}

/// The stops the checks read values at, and what they read there.
fn stops(lab: &Lab, profile: &Profile, v: toolchain::GoVersion) -> Vec<dlv_rpc::Stop> {
    let mut by: BTreeMap<(String, Option<String>, trace::Scope), BTreeSet<dlv_rpc::Read>> =
        BTreeMap::new();
    for c in lab
        .checks
        .iter()
        .filter(|c| c.kind == CheckKind::Value && toolchain::applies(c.go.as_deref(), v))
    {
        for x in c
            .expect
            .iter()
            .filter(|x| toolchain::applies(x.go.as_deref(), v))
        {
            let read = match (&x.eval, &x.reg) {
                (Some(e), _) => dlv_rpc::Read::Eval(e.clone()),
                (_, Some(r)) => dlv_rpc::Read::Reg(r.clone()),
                _ => continue,
            };
            by.entry((
                x.at.function().to_string(),
                x.at.caller().map(str::to_string),
                x.at.scope(),
            ))
            .or_default()
            .insert(read);
        }
    }
    let mut out: Vec<dlv_rpc::Stop> = by
        .into_iter()
        .map(|((function, caller, scope), reads)| dlv_rpc::Stop {
            function,
            caller,
            scope,
            every: false,
            reads,
        })
        .collect();
    for b in lab
        .dlv
        .breakpoints
        .iter()
        .filter(|b| !b.reads().is_empty() && toolchain::applies(b.go(), v))
    {
        out.push(dlv_rpc::Stop {
            function: b.function().to_string(),
            caller: None,
            scope: Default::default(),
            every: true,
            reads: b
                .reads()
                .iter()
                .map(|e| dlv_rpc::Read::Eval(e.clone()))
                .collect(),
        });
    }
    if cosim_applies(lab, v) {
        for pt in crate::reference::cosim::points(profile) {
            out.push(dlv_rpc::Stop {
                function: pt.function.clone(),
                caller: None,
                scope: Default::default(),
                every: true,
                reads: pt.reads.iter().cloned().collect(),
            });
        }
    }
    if lab.checks.iter().any(|c| c.kind == CheckKind::GoStatement) {
        // Every runqput that newproc makes: which one follows main.main's go statement is
        // known only afterwards.
        out.push(dlv_rpc::Stop {
            function: "runtime.runqput".into(),
            caller: Some("runtime.newproc".into()),
            scope: Default::default(),
            every: true,
            reads: [dlv_rpc::Read::Eval("next".into())].into(),
        });
    }
    out
}

/// Functions a lab's checks need a stop in, whose absence a loaded machine explains
/// (a thread not scheduled in time) rather than the runtime.
fn must_hit(lab: &Lab) -> Vec<&'static str> {
    let mut v = Vec::new();
    if lab.checks.iter().any(|c| c.kind == CheckKind::SysmonThread) {
        v.push("runtime.sysmon");
    }
    v
}

fn symbols_named(lab: &Lab) -> Vec<String> {
    let mut v = Vec::new();
    for c in &lab.checks {
        for x in &c.expect {
            if let Ok(Fact::Symbol(s)) = Fact::parse(&x.equals) {
                v.push(s);
            }
        }
    }
    v
}

fn scenario_run(
    lab: &Lab,
    profile: &Profile,
    sc: &ScenarioSpec,
    d: dlv_rpc::DlvRun,
) -> trace::ScenarioRun {
    let main = d.session.hits.iter().find(|h| h.function() == "main.main");
    let live = main.map(|h| h.values.clone()).unwrap_or_default();
    let started = main.map(|h| h.seq);
    // Every other breakpoint of such a lab marks a source of non-determinism. Where
    // sysmon preempted main itself, the number of goroutines it had started is read
    // there: that makes the preemption an input of the model, not a disturbance.
    let after_main: Vec<&trace::Hit> = d
        .session
        .hits
        .iter()
        .filter(|h| started.is_some_and(|s| h.seq > s) && h.function() != "main.main")
        .collect();
    let main_g = main.map(|h| h.goroutine);
    // How many goroutines had been created when sysmon preempted main: the program's
    // own count where the lab reads one (`main.spawned`), else P0's goid cache then
    // minus at main.main.
    let cache = |h: &trace::Hit| -> Option<u64> {
        h.values
            .get(&format!("eval {}", profile.goid_cache_expr()))
            .and_then(|v| v.parse().ok())
    };
    let at_main = main.and_then(cache);
    let spawned = |h: &trace::Hit| -> Option<u32> {
        let main_preempted = h.function() == "runtime.gopreempt_m" && Some(h.goroutine) == main_g;
        if !main_preempted {
            return None;
        }
        if let Some(v) = h.values.get("eval main.spawned") {
            return v.parse().ok();
        }
        let (now, then) = (cache(h)?, at_main?);
        u32::try_from(now.checked_sub(then)?).ok()
    };
    let preempted_after: Vec<u32> = after_main.iter().filter_map(|h| spawned(h)).collect();
    let preempted_at: Vec<Vec<String>> = after_main
        .iter()
        .filter(|h| spawned(h).is_some())
        .map(|h| {
            h.stack
                .iter()
                .filter(|f| f.function.starts_with("main.") && !f.file.is_empty())
                .map(|f| {
                    let base = f.file.rsplit('/').next().unwrap_or(&f.file);
                    format!("{base}:{}", f.line)
                })
                .collect()
        })
        .collect();
    let disturbances = after_main
        .iter()
        .filter(|h| spawned(h).is_none())
        .map(|h| {
            let means = lab
                .dlv
                .breakpoints
                .iter()
                .find(|b| b.function() == h.breakpoint)
                .and_then(|b| b.means())
                .unwrap_or("");
            format!(
                "{} on goroutine {}{}",
                h.function(),
                h.goroutine,
                if means.is_empty() {
                    String::new()
                } else {
                    format!(": {means}")
                }
            )
        })
        .collect();
    let observed = d
        .console
        .lines()
        .find_map(|l| l.strip_prefix("order"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        });
    trace::ScenarioRun {
        id: sc.id.clone(),
        args: sc.args(),
        live,
        observed,
        disturbances,
        preempted_after,
        preempted_at,
        shape: None,
        disturbed_before: Vec::new(),
        session: d.session,
    }
}

struct Transcript(Option<PathBuf>);

impl Transcript {
    fn write(&self, name: &str, text: &str) -> Result<()> {
        match &self.0 {
            Some(d) => write_atomic(&d.join(name), text.as_bytes()),
            None => Ok(()),
        }
    }
}

pub fn run(lab: &Lab, opts: &Options) -> Result<Outcome> {
    let static_check = lab
        .checks
        .iter()
        .any(|c| c.kind == CheckKind::StaticCallers);
    let scenarios: Vec<&ScenarioSpec> = lab
        .scenarios
        .iter()
        .filter(|s| opts.scenario.as_ref().is_none_or(|id| &s.id == id))
        .collect();
    if let Some(id) = &opts.scenario
        && scenarios.is_empty()
    {
        let known: Vec<&str> = lab.scenarios.iter().map(|s| s.id.as_str()).collect();
        bail!(
            "lab {} has no scenario '{id}' (it has: {})",
            lab.name,
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        );
    }
    let repeat = opts.repeat.max(1);
    let stages = 4
        + static_check as usize
        + lab.gdb.is_some() as usize
        + (scenarios.len() * repeat as usize).max(1);
    let mut progress = Progress::new(stages, opts.quiet);
    let transcript = Transcript(opts.transcript.clone());
    progress.stage("finding go, dlv, gdb and readelf");
    let m = &opts.machine;
    let tc = Toolchain::find(&opts.choice, m)?;
    let (profile, profile_warning) = Profile::for_version(tc.go_version);
    let mut warnings: Vec<String> = profile_warning.into_iter().collect();
    let mut header = header(lab, &tc, &profile);
    if lab
        .checks
        .iter()
        .any(|c| matches!(c.kind, CheckKind::StaticCallers | CheckKind::DynamicCallers))
    {
        header.push_str(&notes_vs_source(tc.go_version)?);
    }

    progress.stage(&format!(
        "building {} with -gcflags \"{}\"",
        lab.name, lab.program.gcflags
    ));
    let (work, _tmp) = match (&opts.keep_work, m) {
        (Some(w), Machine::Host) => (w.clone(), None),
        (Some(_), _) => bail!(
            "--work keeps a folder on the host; the lab runs on {}",
            m.name()
        ),
        (None, _) => m.temp_dir()?,
    };
    let (build_env, build_warning) = tc.build_env(profile.dwarf5_default);
    warnings.extend(build_warning);
    let built = match (&opts.prebuilt, m) {
        (Some(b), Machine::Host) => build::reuse(b, &work)?,
        (Some(_), _) => bail!(
            "--binary names a file on the host; the lab runs on {}",
            m.name()
        ),
        (None, _) => build::build(m, &tc, &lab.dir, &work, &lab.program.gcflags, &build_env)?,
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

    let mut obs = Observation {
        lab: lab.name.clone(),
        go_version: tc.go_version.to_string(),
        ..Default::default()
    };
    obs.build = trace::Build {
        gcflags: lab.program.gcflags.clone(),
        has_dwarf: elf.has_dwarf,
        main_args_is_function: elf.is_function("main.args"),
        seconds: built.seconds,
    };

    progress.stage("reading the entry point (readelf -h, ELF header)");
    let rh = readelf::header(m, &tc.readelf, &built.binary)?;
    transcript.write(
        "readelf-h.txt",
        &format!("$ readelf -h ./main\n{}", rh.text),
    )?;
    obs.entry = trace::Entry {
        readelf: Some(rh.entry),
        gdb: None,
        elf: elf.entry,
        symbol: elf.function_at(elf.entry).map(str::to_string),
    };

    let named: Vec<&String> = lab
        .checks
        .iter()
        .filter(|c| matches!(c.kind, CheckKind::StaticCallers | CheckKind::DynamicCallers))
        .flat_map(|c| c.functions.iter())
        .collect();
    if !named.is_empty() {
        let (table, note) = callers::Table::for_version(tc.go_version)?;
        warnings.extend(note);
        let targets: Vec<String> = named.iter().filter_map(|n| table.resolve(n)).collect();
        for f in &targets {
            obs.in_binary.insert(f.clone(), elf.is_function(f));
            for c in table.static_callers(f) {
                let present = elf.is_function(&c) || elf.is_function(&format!("{c}.abi0"));
                obs.in_binary.insert(c, present);
            }
        }
        if static_check {
            progress.stage("reading static callers from the machine code (objdump -d)");
            let objdump = toolchain::find_tool(m, "objdump", None, "")?;
            let (sites, _) = objdump::call_sites(m, &objdump, &built.binary, &targets)?;
            obs.static_callers = sites;
        }
    }

    let mut args = vec![];
    args.extend(lab.program.args.iter().cloned());
    let env: Vec<(String, String)> = lab
        .program
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let timeout = Duration::from_secs(lab.program.timeout_secs);

    if let Some(gp) = &lab.gdb {
        progress.stage("gdb/MI session");
        let specs = plan_breakpoints(&gp.breakpoints, &profile, tc.go_version);
        let plan: Vec<gdb_mi::Plan> = specs
            .iter()
            .map(|b| gdb_mi::Plan {
                function: &b.function,
                max_hits: b.max_hits,
            })
            .collect();
        let g = gdb_mi::run(
            m,
            &tc.gdb,
            &tc.gdb_version,
            &gdb_mi::Debuggee {
                binary: &built.binary,
                args: &args,
                env: &env,
            },
            &plan,
            Instant::now() + timeout,
        )?;
        transcript.write(
            "gdb-mi.log",
            &format!(
                "# gdb --interpreter=mi3 -nx -q ./main (gdb {})\n{}",
                tc.gdb_version, g.log
            ),
        )?;
        transcript.write(
            "gdb-info-file.txt",
            &format!("(gdb) info file\n{}", g.info_file),
        )?;
        if let Some(e) = g.error {
            bail!("the gdb session failed: {e}");
        }
        obs.entry.gdb = g.entry;
        warnings.extend(g.session.warnings.iter().map(|w| format!("gdb: {w}")));
        obs.gdb = Some(g.session);
    }

    let skip_version_check = tc.dlv_supports_go() == Some(false);
    // One dlv session; its transcript is kept under `name` (none for repeated runs).
    let session = |args: &[String],
                   stops: Vec<dlv_rpc::Stop>,
                   name: Option<&str>|
     -> Result<dlv_rpc::DlvRun> {
        let plan = dlv_rpc::Plan {
            breakpoints: breakpoints(lab, &profile, tc.go_version),
            stops,
            args: args.to_vec(),
            env: env.clone(),
            source_dir: built.source_dir.clone(),
            skip_version_check,
        };
        let d = dlv_rpc::run(
            m,
            &tc.dlv,
            &tc.dlv_version,
            &built.binary,
            &plan,
            Instant::now() + timeout,
        )?;
        if let Some(name) = name {
            transcript.write(&format!("{name}dlv-rpc.jsonl"), &format!("# dlv exec --headless --api-version=2 ./main -- {} (dlv {}); -> sent, <- received\n{}", args.join(" "), tc.dlv_version, d.exchange))?;
            let readable = crate::probe::dlv_console::annotate_pointers(&d.readable, &|a| {
                elf.data_symbol_at(a)
            });
            transcript.write(&format!("{name}dlv-session.txt"), &readable)?;
            transcript.write(&format!("{name}dlv-console.txt"), &d.console)?;
        }
        match &d.error {
            Some(e) => bail!("the dlv session of ./main {} failed: {e}", args.join(" ")),
            None => Ok(d),
        }
    };
    if scenarios.is_empty() {
        progress.stage("dlv session (JSON-RPC)");
        let mut d = session(&args, stops(lab, &profile, tc.go_version), Some(""))?;
        // sysmon runs on a thread of its own, which a loaded machine may not schedule
        // before main returns: the run did not show it, which says nothing about the
        // runtime. Run the session again (at most MAX_RERUNS times) and say so.
        loop {
            let missed: Vec<&str> = must_hit(lab)
                .into_iter()
                .filter(|f| d.session.first_real_hit(f).is_none())
                .collect();
            if missed.is_empty() || obs.dlv_reruns.len() >= trace::MAX_RERUNS {
                break;
            }
            let why = format!(
                "{} never hit (its thread got no CPU before the program ended)",
                missed.join(", ")
            );
            progress.note(&format!("dlv session: {why}; running it again"));
            obs.dlv_reruns.push(why);
            d = session(&args, stops(lab, &profile, tc.go_version), Some(""))?;
        }
        warnings.extend(d.session.warnings.iter().map(|w| format!("dlv: {w}")));
        warnings.extend(unset_breakpoints(&d.session, tc.go_version));
        obs.dlv = d.session;
        obs.wrappers = d.wrappers;
    }
    // The program's shape per scenario, for whole-order prediction: read from its
    // syntax by golab's helper, built with this Go (never trusted from the lab's names).
    let record = lab
        .checks
        .iter()
        .find(|c| c.kind == CheckKind::RunOrder)
        .map(|c| c.record.clone().unwrap_or_else(|| "record".into()));
    let mut shapes = std::collections::HashMap::new();
    if let Some(record) = record.filter(|_| !scenarios.is_empty()) {
        progress.note("reading the program's shape (tools/goshape, built with this Go)");
        let src = match m {
            Machine::Host => lab.dir.clone(),
            _ => work.clone(),
        };
        match crate::probe::shape::build_helper(m, &tc, &work, &build_env) {
            Ok(h) => {
                for sc in &scenarios {
                    let sh = crate::probe::shape::derive(m, &h, &src, &record, &sc.args());
                    shapes.insert(sc.id.clone(), sh);
                }
            }
            Err(e) => {
                for sc in &scenarios {
                    shapes.insert(
                        sc.id.clone(),
                        crate::reference::shape::Shape::Failed(format!("{e:#}")),
                    );
                }
            }
        }
    }
    for sc in &scenarios {
        for round in 0..repeat {
            progress.stage(&format!(
                "scenario {}: ./main {}{}",
                sc.id,
                sc.args().join(" "),
                if repeat > 1 {
                    format!(" (run {})", round + 1)
                } else {
                    String::new()
                }
            ));
            let mut stops = stops(lab, &profile, tc.go_version);
            stops.push(dlv_rpc::Stop {
                function: "main.main".into(),
                caller: None,
                scope: Default::default(),
                every: false,
                reads: profile
                    .live_state_exprs()
                    .iter()
                    .chain([&profile.goid_cache_expr()])
                    .map(|e| dlv_rpc::Read::Eval(e.to_string()))
                    .collect(),
            });
            // Where sysmon preempts a goroutine: how many goroutines exist by then.
            stops.push(dlv_rpc::Stop {
                function: "runtime.gopreempt_m".into(),
                caller: None,
                scope: Default::default(),
                every: true,
                reads: [dlv_rpc::Read::Eval(profile.goid_cache_expr().into())].into(),
            });
            // With --repeat, only the first run of each scenario keeps a transcript.
            let name = format!("{}-", sc.id);
            let d = session(
                &sc.args(),
                stops.clone(),
                (round == 0).then_some(name.as_str()),
            )?;
            if round == 0 && obs.scenarios.is_empty() {
                warnings.extend(unset_breakpoints(&d.session, tc.go_version));
            }
            let mut run = scenario_run(lab, &profile, sc, d);
            // A run that something outside the model disturbed (sysmon's preemption of
            // a goroutine, a GC) says nothing about the model: run it again, at most
            // MAX_RERUNS times, and keep what disturbed each discarded run for the report.
            let mut earlier = Vec::new();
            while !run.disturbances.is_empty() && earlier.len() < trace::MAX_RERUNS {
                progress.note(&format!(
                    "scenario {}: run disturbed ({}); running it again",
                    sc.id,
                    run.disturbances.join("; ")
                ));
                earlier.push(std::mem::take(&mut run.disturbances));
                let d = session(&sc.args(), stops.clone(), None)?;
                run = scenario_run(lab, &profile, sc, d);
            }
            run.disturbed_before = earlier;
            run.shape = shapes.get(&sc.id).cloned();
            obs.scenarios.push(run);
        }
    }

    // Name every breakpoint address by the ELF symbol that holds it, so that witnesses
    // can be compared by function even where their prologue analyses differ.
    for b in obs
        .dlv
        .breakpoints
        .iter_mut()
        .chain(obs.gdb.iter_mut().flat_map(|g| g.breakpoints.iter_mut()))
    {
        b.symbols = b
            .addrs
            .iter()
            .map(|a| elf.describe(*a).unwrap_or_else(|| format!("{a:#x}")))
            .collect();
    }

    progress.stage("checking against the reference");
    let ncpu = m.ncpu()?;
    let gomaxprocs = lab
        .program
        .env
        .get("GOMAXPROCS")
        .and_then(|g| g.parse().ok())
        .unwrap_or(ncpu);
    let argv = obs
        .dlv
        .hits
        .first()
        .and_then(|h| h.values.get("reg rsp"))
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .map(|sp| sp + 8);
    let mut symbols = BTreeMap::new();
    for s in symbols_named(lab) {
        if let Some(a) = elf.symbol(&s).or_else(|| elf.symbol(&format!("{s}.abi0"))) {
            symbols.insert(s, a);
        }
    }
    obs.facts = trace::Facts {
        argc: args.len() as u64 + 1,
        argv,
        page_size: m.page_size()?,
        ncpu,
        gomaxprocs,
        symbols,
    };
    let verdict = check::judge(lab, &obs, &profile, warnings);
    progress.finish();
    Ok(Outcome {
        observation: obs,
        verdict,
        header,
    })
}

/// Where the notes' Go 1.17 caller answers differ from the source of the Go in use.
fn notes_vs_source(v: toolchain::GoVersion) -> Result<String> {
    let (t, _) = callers::Table::for_version(v)?;
    let d = t.notes_differences();
    if d.is_empty() {
        return Ok(format!(
            "the notes' caller answers (Go 1.17) hold for go{} as they stand\n",
            v.line()
        ));
    }
    let mut s = format!(
        "the notes' caller answers (Go 1.17) differ for go{} (`golab reference scheduler-callers --go {}` for the whole table):\n",
        v.line(),
        v.line()
    );
    for x in &d {
        let f = x.function.trim_start_matches("runtime.");
        for (c, since) in x.gone.iter().zip(&x.gone_since) {
            s.push_str(&format!(
                "  \"{} calls {f}\": {since}\n",
                c.trim_start_matches("runtime.")
            ));
        }
        for c in &x.new {
            s.push_str(&format!(
                "  {} also calls {f} in go{}\n",
                c.trim_start_matches("runtime."),
                v.line()
            ));
        }
    }
    Ok(s)
}

/// Breakpoints dlv could not set (a misspelled function, or one this Go does not have),
/// said in the report rather than only in the transcript.
fn unset_breakpoints(s: &trace::Session, v: toolchain::GoVersion) -> Vec<String> {
    s.breakpoints
        .iter()
        .filter_map(|b| {
            b.error.as_ref().map(|e| {
                format!(
                    "breakpoint {} was not set: dlv could not find it in this {v} binary ({})",
                    b.function,
                    e.trim()
                )
            })
        })
        .collect()
}

fn header(lab: &Lab, tc: &Toolchain, p: &Profile) -> String {
    let mut h = format!("golab run {}: {}\n", lab.name, lab.title);
    h.push_str(&format!(
        "{} ({}) | dlv {} | gdb {} | readelf {} | reference profile {}\n",
        tc.go_version,
        tc.go.display(),
        tc.dlv_version,
        tc.gdb_version,
        tc.readelf_version,
        p.name()
    ));
    let env: Vec<String> = lab
        .program
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let args = if lab.scenarios.is_empty() {
        lab.program.args.join(" ")
    } else if lab.scenarios.iter().all(|s| s.args.is_none()) {
        "N BLOCK GOSCHED (per scenario)".into()
    } else {
        "ARGS (per scenario)".into()
    };
    h.push_str(&format!(
        "program: ./main {args}{}\n",
        if env.is_empty() {
            String::new()
        } else {
            format!("  with {}", env.join(" "))
        }
    ));
    if let Some(why) = &lab.program.env_why {
        h.push_str(&format!("  ({why})\n"));
    }
    h
}

//! Stage 3 of a run, the probes: each tool records what it saw and writes its
//! transcript as soon as it has it; none judges. The static probes (readelf -h, the
//! callers in the ELF, the call sites in its machine code) read only the file; the gdb and dlv
//! sessions each run the program. `super::run` runs them side by side.

use super::plan::{self, RunPlan};
use super::{Binary, Tools, Transcript};

/// What every probe is handed: the plan, the tools, the binary, where it runs, and
/// where transcripts go.
pub struct Inputs<'a> {
    pub p: &'a RunPlan<'a>,
    pub t: &'a Tools,
    pub b: &'a Binary,
    pub m: &'a Machine,
    pub transcript: &'a Transcript,
}
use crate::lab::{Lab, ScenarioSpec};
use crate::machine::Machine;
use crate::probe::{calls, dlv_rpc, gdb_mi, readelf};
use crate::progress::Progress;
use crate::reference::callers;
use crate::toolchain;
use crate::trace;
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::time::Instant;

/// What the static probes read.
pub struct Static {
    /// The entry point readelf -h printed.
    pub readelf_entry: u64,
    /// Whether each function the callers checks name (and each static caller of it) is
    /// in the binary.
    pub in_binary: BTreeMap<String, bool>,
    pub static_callers: calls::CallSites,
    /// Why the static callers were not read (the machine code past its limit).
    pub static_callers_not_checked: Option<String>,
    pub warnings: Vec<String>,
}

/// readelf -h, the callers present in the ELF and, for a static callers check,
/// the call sites in its machine code.
pub fn static_probes(i: &Inputs) -> Result<Static> {
    let Inputs {
        p,
        t,
        b,
        m,
        transcript,
    } = *i;
    let rh = readelf::header(m, &t.tc.readelf, &b.built.binary)?;
    transcript.write(
        "readelf-h.txt",
        &format!("$ readelf -h ./main\n{}", rh.text),
    )?;
    let mut s = Static {
        readelf_entry: rh.entry,
        in_binary: BTreeMap::new(),
        static_callers: Default::default(),
        static_callers_not_checked: None,
        warnings: Vec::new(),
    };
    let named = p.caller_targets();
    if !named.is_empty() {
        let (table, note) = callers::Table::for_version(t.tc.go_version)?;
        s.warnings.extend(note);
        let targets: Vec<String> = named.iter().filter_map(|n| table.resolve(n)).collect();
        for f in &targets {
            s.in_binary.insert(f.clone(), b.elf.is_function(f));
            for c in table.static_callers(f) {
                let present = b.elf.is_function(&c) || b.elf.is_function(&format!("{c}.abi0"));
                s.in_binary.insert(c, present);
            }
        }
        if p.static_check {
            match calls::call_sites(&b.local, &targets) {
                Ok(sites) => s.static_callers = sites,
                // The student's machine code is too big to read: that check is not
                // checked, with the reason; the rest of the run goes on.
                Err(e) if e.downcast_ref::<calls::TooLarge>().is_some() => {
                    s.static_callers_not_checked = Some(e.to_string())
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(s)
}

/// The lab's gdb/MI session, if it has one.
pub fn gdb_probe(i: &Inputs) -> Result<Option<gdb_mi::GdbRun>> {
    let Inputs {
        p,
        t,
        b,
        m,
        transcript,
    } = *i;
    let Some(gp) = &p.lab.gdb else {
        return Ok(None);
    };
    let specs = plan::plan_breakpoints(&gp.breakpoints, &t.profile, t.tc.go_version);
    let bps: Vec<gdb_mi::BreakAt> = specs
        .iter()
        .map(|b| gdb_mi::BreakAt {
            function: &b.function,
            max_hits: b.max_hits,
        })
        .collect();
    let g = gdb_mi::run(
        m,
        &t.tc.gdb,
        &t.tc.gdb_version,
        &gdb_mi::Debuggee {
            binary: &b.built.binary,
            args: &p.args,
            env: &p.env,
        },
        &bps,
        Instant::now() + p.timeout,
    )?;
    transcript.write(
        "gdb-mi.log",
        &format!(
            "# gdb --interpreter=mi3 -nx -q ./main (gdb {})\n{}",
            t.tc.gdb_version, g.log
        ),
    )?;
    transcript.write(
        "gdb-info-file.txt",
        &format!("(gdb) info file\n{}", g.info_file),
    )?;
    if let Some(e) = &g.error {
        let e = format!("the gdb session failed: {e}");
        if g.interfered {
            return Err(crate::machine::Interfered(e).into());
        }
        if g.timed_out {
            return Err(crate::exec::TimedOut(e).into());
        }
        bail!(e);
    }
    Ok(Some(g))
}

/// What the dlv sessions recorded: the lab's one session (with the reruns it took), or
/// each scenario's runs.
#[derive(Default)]
pub struct Dlv {
    pub main: Option<dlv_rpc::DlvRun>,
    pub reruns: Vec<String>,
    pub scenarios: Vec<trace::ScenarioRun>,
    pub warnings: Vec<String>,
}

/// One dlv session of `./main ARGS`; its transcript is kept under `name` (none for
/// repeated runs).
fn session(
    i: &Inputs,
    args: &[String],
    stops: Vec<dlv_rpc::Stop>,
    name: Option<&str>,
) -> Result<dlv_rpc::DlvRun> {
    let Inputs {
        p,
        t,
        b,
        m,
        transcript,
    } = *i;
    let bp = dlv_rpc::SessionPlan {
        breakpoints: plan::breakpoints(p.lab, &t.profile, t.tc.go_version),
        stops,
        args: args.to_vec(),
        env: p.env.clone(),
        source_dir: b.built.source_dir.clone(),
        skip_version_check: t.tc.dlv_supports_go() == Some(false),
    };
    let d = dlv_rpc::run(
        m,
        &t.tc.dlv,
        &t.tc.dlv_version,
        &b.built.binary,
        &bp,
        Instant::now() + p.timeout,
    )?;
    if let Some(name) = name {
        transcript.write(&format!("{name}dlv-rpc.jsonl"), &format!("# dlv exec --headless --api-version=2 ./main -- {} (dlv {}); -> sent, <- received\n{}", args.join(" "), t.tc.dlv_version, d.exchange))?;
        let readable =
            crate::probe::dlv_console::annotate_pointers(&d.readable, &|a| b.elf.data_symbol_at(a));
        transcript.write(&format!("{name}dlv-session.txt"), &readable)?;
        transcript.write(&format!("{name}dlv-console.txt"), &d.console)?;
    }
    match &d.error {
        Some(e) => {
            // A pair dlv does not support natively: said under dlv's first line, above
            // its stack trace.
            let (first, rest) = e.split_once('\n').unwrap_or((e, ""));
            let hint =
                t.tc.dlv_mismatch_hint()
                    .map(|h| format!("\n  {h}"))
                    .unwrap_or_default();
            let rest = if rest.is_empty() {
                String::new()
            } else {
                format!("\n{rest}")
            };
            let e = format!(
                "the dlv session of ./main {} failed: {first}{hint}{rest}",
                args.join(" ")
            );
            if d.interfered {
                return Err(crate::machine::Interfered(e).into());
            }
            if d.timed_out {
                return Err(crate::exec::TimedOut(e).into());
            }
            bail!(e)
        }
        None => Ok(d),
    }
}

/// The dlv sessions: the lab's one session, rerun while a function the checks need a
/// stop in was not hit, or each scenario `repeat` times, rerun while disturbed.
pub fn dlv_probes(i: &Inputs, progress: &mut Progress) -> Result<Dlv> {
    let (p, t) = (i.p, i.t);
    let (lab, profile, v) = (p.lab, &t.profile, t.tc.go_version);
    let mut out = Dlv::default();
    let session = |args: &[String], stops: Vec<dlv_rpc::Stop>, name: Option<&str>| {
        session(i, args, stops, name)
    };
    if p.scenarios.is_empty() {
        progress.stage("dlv session (JSON-RPC)");
        let mut d = session(&p.args, plan::stops(lab, profile, v), Some(""))?;
        // sysmon runs on a thread of its own, which a loaded machine may not schedule
        // before main returns: the run did not show it, which says nothing about the
        // runtime. Run the session again (at most MAX_RERUNS times) and say so.
        loop {
            let missed: Vec<&str> = plan::must_hit(lab)
                .into_iter()
                .filter(|f| d.session.first_real_hit(f).is_none())
                .collect();
            if missed.is_empty() || out.reruns.len() >= trace::MAX_RERUNS {
                break;
            }
            let why = format!(
                "{} never hit (its thread got no CPU before the program ended)",
                missed.join(", ")
            );
            progress.note(&format!("dlv session: {why}; running it again"));
            out.reruns.push(why);
            d = session(&p.args, plan::stops(lab, profile, v), Some(""))?;
        }
        out.warnings
            .extend(d.session.warnings.iter().map(|w| format!("dlv: {w}")));
        out.warnings.extend(unset_breakpoints(&d.session, v));
        out.main = Some(d);
    }
    // The program's shape per scenario, for whole-order prediction: read from its
    // syntax by golab's helper, built with this Go (never trusted from the lab's names).
    let record = lab
        .checks
        .iter()
        .find(|c| c.kind == crate::lab::CheckKind::RunOrder)
        .map(|c| c.record.clone().unwrap_or_else(|| "record".into()));
    let mut shapes = std::collections::HashMap::new();
    if let Some(record) = record.filter(|_| !p.scenarios.is_empty()) {
        progress.note("reading the program's shape (tools/goshape, built with this Go)");
        let m = i.m;
        let src = i.b.built.source_dir.clone();
        let work =
            i.b.built
                .binary
                .parent()
                .map(|w| w.to_path_buf())
                .unwrap_or_else(|| src.clone());
        let (build_env, _) = t.tc.build_env(profile.dwarf5_default);
        match crate::reference::goshape::build_helper(m, &t.tc, &work, &build_env) {
            Ok(h) => {
                for sc in &p.scenarios {
                    let sh = crate::reference::goshape::derive(m, &h, &src, &record, &sc.args());
                    shapes.insert(sc.id.clone(), sh);
                }
            }
            Err(e) => {
                for sc in &p.scenarios {
                    shapes.insert(
                        sc.id.clone(),
                        crate::reference::shape::Shape::Failed(format!("{e:#}")),
                    );
                }
            }
        }
    }
    for sc in &p.scenarios {
        for round in 0..p.repeat {
            progress.stage(&format!(
                "scenario {}: ./main {}{}",
                sc.id,
                sc.args().join(" "),
                if p.repeat > 1 {
                    format!(" (run {})", round + 1)
                } else {
                    String::new()
                }
            ));
            let mut stops = plan::stops(lab, profile, v);
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
            if round == 0 && out.scenarios.is_empty() {
                out.warnings.extend(unset_breakpoints(&d.session, v));
            }
            let mut run = scenario_run(lab, profile, sc, d);
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
                run = scenario_run(lab, profile, sc, d);
            }
            run.disturbed_before = earlier;
            run.shape = shapes.get(&sc.id).cloned();
            out.scenarios.push(run);
        }
    }
    Ok(out)
}

pub(super) fn scenario_run(
    lab: &Lab,
    profile: &crate::reference::Profile,
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

/// Breakpoints dlv could not set (a misspelled function, or one this Go does not have),
/// said in the report rather than only in the transcript.
pub(super) fn unset_breakpoints(s: &trace::Session, v: toolchain::GoVersion) -> Vec<String> {
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

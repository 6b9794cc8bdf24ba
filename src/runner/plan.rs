//! Stage 1 of a run, the plan: what the run will do, from the lab file and the
//! options alone (which scenarios, the program's arguments and environment, the stages
//! to show), and, once the Go version is known, the breakpoints and the stops each
//! debugger gets. Nothing here runs a tool.

use super::Options;
use crate::lab::{BreakpointSpec, CheckKind, Lab, ScenarioSpec, fact::Fact};
use crate::probe::dlv_rpc;
use crate::reference::callers;
use crate::reference::{Profile, startup};
use crate::toolchain::{self, Toolchain};
use crate::trace;
use anyhow::{Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What one run of a lab will do.
pub struct RunPlan<'a> {
    pub lab: &'a Lab,
    /// The scenarios to run (all of the lab's, or the one asked for); none: one session.
    pub scenarios: Vec<&'a ScenarioSpec>,
    /// Runs of each scenario (at least 1).
    pub repeat: u32,
    /// A check reads the static callers (the call sites in the machine code).
    pub static_check: bool,
    /// The callers tables and the notes' answers are needed.
    pub callers_check: bool,
    /// The program's arguments and environment.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Each debugger session's wall-clock limit.
    pub timeout: Duration,
    /// How many stages the progress shows.
    pub stages: usize,
}

/// Stage 1: the plan, or why the options do not fit the lab.
pub fn plan<'a>(lab: &'a Lab, opts: &Options) -> Result<RunPlan<'a>> {
    let static_check = lab
        .checks
        .iter()
        .any(|c| c.kind == CheckKind::StaticCallers);
    let callers_check = lab
        .checks
        .iter()
        .any(|c| matches!(c.kind, CheckKind::StaticCallers | CheckKind::DynamicCallers));
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
    Ok(RunPlan {
        lab,
        scenarios,
        repeat,
        static_check,
        callers_check,
        args: lab.program.args.clone(),
        env: lab
            .program
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        timeout: Duration::from_secs(lab.program.timeout_secs),
        stages,
    })
}

impl RunPlan<'_> {
    /// The functions the callers checks name, as the callers table resolves them.
    pub fn caller_targets(&self) -> Vec<&String> {
        self.lab
            .checks
            .iter()
            .filter(|c| matches!(c.kind, CheckKind::StaticCallers | CheckKind::DynamicCallers))
            .flat_map(|c| c.functions.iter())
            .collect()
    }

    /// GOMAXPROCS of the run: the lab's, else the machine's CPUs.
    pub fn gomaxprocs(&self, ncpu: u64) -> u64 {
        self.lab
            .program
            .env
            .get("GOMAXPROCS")
            .and_then(|g| g.parse().ok())
            .unwrap_or(ncpu)
    }
}

/// The breakpoints of a lab for a Go version: `@chain` expands to the reference chain's
/// functions; an explicit entry for a function overrides the expansion's hit limit.
pub(super) fn breakpoints(
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

pub(super) fn plan_breakpoints(
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
pub(super) fn stops(lab: &Lab, profile: &Profile, v: toolchain::GoVersion) -> Vec<dlv_rpc::Stop> {
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
pub(super) fn must_hit(lab: &Lab) -> Vec<&'static str> {
    let mut v = Vec::new();
    if lab.checks.iter().any(|c| c.kind == CheckKind::SysmonThread) {
        v.push("runtime.sysmon");
    }
    v
}

pub(super) fn symbols_named(lab: &Lab) -> Vec<String> {
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

/// Where the notes' Go 1.17 caller answers differ from the source of the Go in use.
pub(super) fn notes_vs_source(v: toolchain::GoVersion) -> Result<String> {
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

pub(super) fn header(lab: &Lab, tc: &Toolchain, p: &Profile) -> String {
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

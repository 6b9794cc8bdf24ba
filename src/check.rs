//! Observation + Reference -> Verdict. Each check kind is one function here; a lab's
//! `checks:` pick and parameterise them. A check compares, it does not probe: every
//! value it needs was read by a probe and sits in the Observation.

use crate::lab::{CheckKind, CheckSpec, Lab};
use crate::reference::{Profile, callers, sched, startup};
use crate::trace::{Hit, Observation, Session, stop_matches};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A value golab knows independently of the process, to compare with one read inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Argc,
    Argv,
    PageSize,
    Ncpu,
    Gomaxprocs,
    Symbol(String),
    Int(u64),
    Bool(bool),
    /// A Go constant's name (`waitReasonChanReceive`): dlv prints an enum value as
    /// `waitReasonChanReceive (14)`, and the name is what is compared.
    Name(String),
}

impl Fact {
    pub fn parse(s: &str) -> Result<Fact> {
        let s = s.trim();
        Ok(match s {
            "argc" => Fact::Argc,
            "argv" => Fact::Argv,
            "page-size" => Fact::PageSize,
            "ncpu" => Fact::Ncpu,
            "gomaxprocs" => Fact::Gomaxprocs,
            "true" => Fact::Bool(true),
            "false" => Fact::Bool(false),
            _ => {
                if let Some(sym) = s.strip_prefix("symbol ") {
                    Fact::Symbol(sym.trim().to_string())
                } else if let Some(n) = parse_int(s) {
                    Fact::Int(n)
                } else if is_go_name(s) && s.chars().any(|c| c.is_uppercase() || c == '_') {
                    // A constant's name has a capital or a leading underscore
                    // (`waitReasonChanReceive`, `_Gwaiting`); `cpus` stays a typo.
                    Fact::Name(s.to_string())
                } else {
                    bail!(
                        "'{s}' is not a fact golab knows (argc, argv, page-size, ncpu, gomaxprocs, symbol NAME, a number, true, false, or a Go constant's name such as waitReasonChanReceive)"
                    )
                }
            }
        })
    }

    fn value(&self, o: &Observation) -> Option<Val> {
        let f = &o.facts;
        Some(match self {
            Fact::Argc => Val::Int(f.argc),
            Fact::Argv => Val::Int(f.argv?),
            Fact::PageSize => Val::Int(f.page_size),
            Fact::Ncpu => Val::Int(f.ncpu),
            Fact::Gomaxprocs => Val::Int(f.gomaxprocs),
            Fact::Symbol(s) => Val::Int(*f.symbols.get(s)?),
            Fact::Int(n) => Val::Int(*n),
            Fact::Bool(b) => Val::Bool(*b),
            Fact::Name(_) => return None,
        })
    }

    fn name(&self) -> String {
        match self {
            Fact::Argc => "argc: the program's argument count".into(),
            Fact::Argv => "argv: the entry stack pointer + 8".into(),
            Fact::PageSize => "the machine's page size".into(),
            Fact::Ncpu => "the machine's logical CPUs".into(),
            Fact::Gomaxprocs => "GOMAXPROCS of the run".into(),
            Fact::Symbol(s) => format!("the address of {s}"),
            Fact::Int(_) | Fact::Bool(_) => "literal".into(),
            Fact::Name(_) => "a Go constant, by name".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Int(u64),
    Bool(bool),
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Int(n) if *n > 0xffff => write!(f, "{n:#x}"),
            Val::Int(n) => write!(f, "{n}"),
            Val::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// `waitReasonChanReceive`, `_Gwaiting`, `runtime.waitReasonZero`: a Go identifier,
/// optionally qualified.
fn is_go_name(s: &str) -> bool {
    s.split('.').all(|p| {
        let mut c = p.chars();
        c.next().is_some_and(|f| f.is_alphabetic() || f == '_')
            && c.all(|x| x.is_alphanumeric() || x == '_')
    })
}

/// The name in dlv's rendering of a constant: `waitReasonChanReceive (14)` ->
/// `waitReasonChanReceive`; `runtime.waitReasonChanReceive (14)` as well.
fn value_name(observed: &str) -> Option<&str> {
    let n = observed.split_whitespace().next()?;
    is_go_name(n).then_some(n)
}

fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_val(s: &str) -> Option<Val> {
    match s.trim() {
        "true" => Some(Val::Bool(true)),
        "false" => Some(Val::Bool(false)),
        t => parse_int(t).map(Val::Int),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mark {
    Good,
    Bad,
    Missing,
    Note,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub mark: Mark,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub kind: String,
    pub points: u32,
    pub earned: u32,
    pub passed: bool,
    /// Why the check does not apply to this run (then it counts for nothing).
    pub skipped: Option<String>,
    pub summary: String,
    pub says: Option<String>,
    pub note: Option<String>,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub lab: String,
    pub go_version: String,
    pub profile: String,
    pub checks: Vec<CheckResult>,
    pub earned: u32,
    pub possible: u32,
    pub warnings: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed || c.skipped.is_some())
    }
}

struct Outcome {
    passed: bool,
    summary: String,
    lines: Vec<Line>,
}

fn line(mark: Mark, text: impl Into<String>) -> Line {
    Line {
        mark,
        text: text.into(),
    }
}

/// Judges one run of `lab`.
pub fn judge(lab: &Lab, obs: &Observation, profile: &Profile, warnings: Vec<String>) -> Verdict {
    let v = crate::toolchain::GoVersion::parse(&obs.go_version)
        .unwrap_or(crate::toolchain::GoVersion::new(1, profile.minor, 0));
    let mut checks = Vec::new();
    for spec in &lab.checks {
        let applies = crate::toolchain::applies(spec.go.as_deref(), v);
        let (outcome, skipped) = if applies {
            (run_check(spec, obs, profile, v), None)
        } else {
            (
                Outcome {
                    passed: true,
                    summary: String::new(),
                    lines: vec![],
                },
                Some(format!(
                    "applies to Go {}, not {}",
                    spec.go.as_deref().unwrap_or(""),
                    obs.go_version
                )),
            )
        };
        let earned = if outcome.passed && skipped.is_none() {
            spec.points
        } else {
            0
        };
        checks.push(CheckResult {
            id: spec.id.clone(),
            kind: serde_norway::to_string(&spec.kind)
                .unwrap_or_default()
                .trim()
                .to_string(),
            points: if skipped.is_some() { 0 } else { spec.points },
            earned,
            passed: outcome.passed,
            skipped,
            summary: outcome.summary,
            says: spec.says.clone(),
            note: spec.note.clone(),
            lines: outcome.lines,
        });
    }
    let earned = checks.iter().map(|c| c.earned).sum();
    let possible = checks.iter().map(|c| c.points).sum();
    Verdict {
        lab: lab.name.clone(),
        go_version: obs.go_version.clone(),
        profile: profile.name(),
        checks,
        earned,
        possible,
        warnings,
    }
}

fn run_check(
    spec: &CheckSpec,
    o: &Observation,
    p: &Profile,
    v: crate::toolchain::GoVersion,
) -> Outcome {
    match spec.kind {
        CheckKind::BuildFlags => build_flags(o),
        CheckKind::EntryPoint => entry_point(o),
        CheckKind::ChainOrder => chain_order(o, p, &chain_of(spec, p, v)),
        CheckKind::ChainCallers => chain_callers(o, &chain_of(spec, p, v)),
        CheckKind::GoStatement => go_statement(o),
        CheckKind::SysmonThread => sysmon_thread(o, p),
        CheckKind::WitnessesAgree => witnesses_agree(o),
        CheckKind::WrapperDisassembly => wrapper_disassembly(o, p),
        CheckKind::Value => values(spec, o, v),
        CheckKind::StaticCallers => static_callers(spec, o, v),
        CheckKind::DynamicCallers => dynamic_callers(spec, o, v),
        CheckKind::RunOrder => run_order(o, p, v),
        CheckKind::Cosim => cosim(o, p),
    }
}

/// The co-simulation: every transition of each dlv session against the model stepped
/// with the same events (see `reference::cosim`).
fn cosim(o: &Observation, p: &Profile) -> Outcome {
    use crate::reference::cosim::{self, Cosim, Event, Judged};
    let points = cosim::points(p);
    let mut sessions: Vec<(String, &Session)> = Vec::new();
    if !o.dlv.hits.is_empty() {
        sessions.push((String::new(), &o.dlv));
    }
    for (k, r) in o.scenarios.iter().enumerate() {
        sessions.push((format!("{} (run {}): ", r.id, k + 1), &r.session));
    }
    let ps = o.facts.gomaxprocs.max(1) as usize;
    let mut lines = Vec::new();
    let (mut observed, mut judged, mut matched, mut raced, mut unjudged) = (0, 0, 0, 0, 0);
    let mut by_op: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    let mut shown = 0;
    let mut raced_shown = false;
    for (name, s) in &sessions {
        let events = Event::from_hits(&points, &s.hits);
        let r = Cosim::run(p.minor, ps, &events);
        observed += r.observed;
        judged += r.judged;
        matched += r.matched;
        raced += r.raced;
        unjudged += r.unjudged;
        for (op, (m, n)) in &r.by_op {
            let e = by_op.entry(op.clone()).or_insert((0, 0));
            e.0 += m;
            e.1 += n;
        }
        for (why, n) in &r.unjudged_reasons {
            *reasons.entry(why.clone()).or_insert(0) += n;
        }
        for t in &r.disagreements {
            if shown >= 5 {
                break;
            }
            let Judged::Disagreed(why) = &t.judged else {
                continue;
            };
            let first = if shown == 0 {
                "first disagreement: "
            } else {
                ""
            };
            lines.push(line(
                Mark::Bad,
                format!(
                    "{name}{first}stop {} (thread {}, goroutine {}) {}: {why}",
                    t.seq, t.thread, t.goroutine, t.what
                ),
            ));
            if let Some(m) = &t.model_state {
                lines.push(line(Mark::Bad, format!("    model:   {m}")));
            }
            if let Some(l) = &t.live_state {
                lines.push(line(Mark::Bad, format!("    runtime: {l}")));
            }
            shown += 1;
        }
        if let Some(t) = r.raced_list.first().filter(|_| !raced_shown) {
            raced_shown = true;
            if let Judged::Raced(why) = &t.judged {
                lines.push(line(
                    Mark::Note,
                    format!(
                        "{name}raced (not judged), e.g. stop {} {}: {why}{}",
                        t.seq,
                        t.what,
                        match (&t.model_state, &t.live_state) {
                            (Some(m), Some(l)) => format!("; model {m}; runtime {l}"),
                            _ => String::new(),
                        }
                    ),
                ));
            }
        }
    }
    for (op, (m, n)) in &by_op {
        lines.push(line(
            if m == n { Mark::Good } else { Mark::Bad },
            format!("{op}: {m} of {n} as the model predicted"),
        ));
    }
    for (why, n) in &reasons {
        lines.push(line(Mark::Note, format!("{n} not judged: {why}")));
    }
    if observed == 0 {
        lines.push(line(
            Mark::Missing,
            "no transition was recorded: were the scheduler's breakpoints set?",
        ));
    }
    Outcome {
        passed: judged > 0 && matched == judged,
        // `N of M transitions` at a fixed place: scripts/fidelity.sh reads it.
        summary: format!(
            "{matched} of {judged} transitions as the model predicted ({observed} observed, {raced} raced, {unjudged} not judged; {ps} P{})",
            if ps == 1 { "" } else { "s" }
        ),
        lines,
    }
}

fn build_flags(o: &Observation) -> Outcome {
    let b = &o.build;
    let lines = vec![
        line(
            if b.has_dwarf { Mark::Good } else { Mark::Bad },
            format!(
                "DWARF debug information {}",
                if b.has_dwarf {
                    "present"
                } else {
                    "missing (built with -ldflags=-w?)"
                }
            ),
        ),
        line(
            if b.main_args_is_function {
                Mark::Good
            } else {
                Mark::Bad
            },
            format!(
                "main.args {}",
                if b.main_args_is_function {
                    "is a function symbol: -l kept it from being inlined"
                } else {
                    "is not a function symbol: it was inlined, so -gcflags \"all=-l -N\" did not take effect"
                }
            ),
        ),
    ];
    Outcome {
        passed: b.has_dwarf && b.main_args_is_function,
        summary: format!("built with -gcflags \"{}\" in {:.1}s", b.gcflags, b.seconds),
        lines,
    }
}

fn entry_point(o: &Observation) -> Outcome {
    let e = &o.entry;
    let dlv_first = o.dlv.hits.first().map(|h| h.pc());
    let mut lines = Vec::new();
    let mut ok = true;
    for (who, v) in [
        ("readelf -h", e.readelf),
        ("gdb info file", e.gdb),
        ("ELF header (in-process)", Some(e.elf)),
        ("dlv's first stop", dlv_first),
    ] {
        match v {
            Some(a) if a == e.elf => lines.push(line(Mark::Good, format!("{who}: {a:#x}"))),
            Some(a) => {
                ok = false;
                lines.push(line(
                    Mark::Bad,
                    format!("{who}: {a:#x}, the ELF header says {:#x}", e.elf),
                ))
            }
            None => {
                ok = false;
                lines.push(line(Mark::Missing, format!("{who}: not read")))
            }
        }
    }
    let sym = e.symbol.clone().unwrap_or_else(|| "no symbol".into());
    if sym == "_rt0_amd64_linux" {
        lines.push(line(
            Mark::Good,
            format!("the symbol at the entry is {sym}"),
        ));
    } else {
        ok = false;
        lines.push(line(
            Mark::Bad,
            format!("the symbol at the entry is {sym}, expected _rt0_amd64_linux"),
        ));
    }
    Outcome {
        passed: ok,
        summary: format!("{:#x} {sym}", e.elf),
        lines,
    }
}

/// Steps of the reference chain the dlv session watched (the entry is always watched).
fn watched<'a>(o: &Observation, chain: &'a [startup::Step]) -> Vec<&'a startup::Step> {
    chain
        .iter()
        .filter(|s| s.reached == startup::Reached::Entry || o.dlv.placed(&s.function).is_some())
        .collect()
}

/// Functions in the order of their first stop.
fn first_hit_order(s: &Session, among: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in &s.hits {
        let f = h.function().to_string();
        if among.contains(&f.as_str()) && !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// Longest common subsequence of two name lists, as index pairs.
pub fn lcs(a: &[String], b: &[String]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut t = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] = if a[i] == b[j] {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if a[i] == b[j] {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if t[i + 1][j] >= t[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The chain a check compares with: the lab's own `steps` (those for this Go), else the
/// reference's startup chain. A lab step without a caller is only ordered.
fn chain_of(spec: &CheckSpec, p: &Profile, v: crate::toolchain::GoVersion) -> Chain {
    if spec.steps.is_empty() {
        return Chain {
            after: vec![None; startup::chain(p).len()],
            steps: startup::chain(p),
            lab: false,
        };
    }
    let mine: Vec<&crate::lab::ChainStep> = spec
        .steps
        .iter()
        .filter(|s| crate::toolchain::applies(s.go.as_deref(), v))
        .collect();
    let steps = mine
        .iter()
        .map(|s| startup::Step {
            function: s.function.clone(),
            reached: match &s.caller {
                Some(c) => startup::Reached::Call {
                    from: c.clone(),
                    wrapper: false,
                },
                None => startup::Reached::Entry,
            },
            thread: "",
            does: "",
        })
        .collect();
    Chain {
        steps,
        after: mine.iter().map(|s| s.after.clone()).collect(),
        lab: true,
    }
}

/// A chain and, per step, the function whose first stop its own must follow.
struct Chain {
    steps: Vec<startup::Step>,
    after: Vec<Option<String>>,
    /// The lab's own steps, not the reference's.
    lab: bool,
}

impl Chain {
    fn after_of(&self, f: &str) -> Option<&str> {
        self.steps
            .iter()
            .position(|s| s.function == f)
            .and_then(|i| self.after[i].as_deref())
    }

    /// The stop that counts for `f`: its first (not in a wrapper), after its `after`.
    fn hit<'a>(&self, s: &'a Session, f: &str) -> Option<&'a crate::trace::Hit> {
        let from = match self.after_of(f) {
            Some(a) => Some(s.hits.iter().find(|h| h.function() == a)?.seq),
            None => None,
        };
        s.hits
            .iter()
            .find(|h| h.function() == f && !h.in_wrapper() && from.is_none_or(|from| h.seq > from))
    }
}

fn chain_order(o: &Observation, p: &Profile, ch: &Chain) -> Outcome {
    let chain = &ch.steps;
    let steps = watched(o, chain);
    let expected: Vec<String> = steps.iter().map(|s| s.function.clone()).collect();
    let names: Vec<&str> = expected.iter().map(String::as_str).collect();
    let observed = if ch.after.iter().all(Option::is_none) {
        first_hit_order(&o.dlv, &names)
    } else {
        let mut by: Vec<(usize, String)> = names
            .iter()
            .filter_map(|f| ch.hit(&o.dlv, f).map(|h| (h.seq, f.to_string())))
            .collect();
        by.sort();
        by.into_iter().map(|(_, f)| f).collect()
    };
    let common = lcs(&expected, &observed);
    let mut lines = Vec::new();
    for (i, f) in expected.iter().enumerate() {
        let placed = o.dlv.placed(f);
        if let Some(err) = placed.and_then(|b| b.error.as_ref()) {
            lines.push(line(
                Mark::Missing,
                format!("{f}: no breakpoint could be set ({err})"),
            ));
        } else if common.iter().any(|(a, _)| *a == i) {
            lines.push(line(Mark::Good, f.clone()));
        } else if observed.contains(f) {
            let pos = observed.iter().position(|x| x == f).unwrap_or(0);
            lines.push(line(
                Mark::Bad,
                format!(
                    "{f}: first hit at position {}, expected at {}",
                    pos + 1,
                    i + 1
                ),
            ));
        } else {
            lines.push(line(Mark::Missing, format!("{f}: never hit")));
        }
    }
    let unwatched: Vec<&str> = chain
        .iter()
        .filter(|s| !expected.contains(&s.function))
        .map(|s| s.function.as_str())
        .collect();
    if !unwatched.is_empty() {
        lines.push(line(
            Mark::Note,
            format!(
                "not watched by this lab's breakpoints: {}",
                unwatched.join(", ")
            ),
        ));
    }
    let passed = observed == expected;
    Outcome {
        passed,
        summary: if ch.lab {
            format!(
                "{} of {} steps in the lab's order",
                common.len(),
                expected.len()
            )
        } else {
            format!(
                "{} of {} steps in the reference's order ({})",
                common.len(),
                expected.len(),
                p.name()
            )
        },
        lines,
    }
}

fn chain_callers(o: &Observation, ch: &Chain) -> Outcome {
    let mut lines = Vec::new();
    let mut good = 0;
    let mut total = 0;
    for s in watched(o, &ch.steps) {
        if s.reached == startup::Reached::Entry {
            continue;
        }
        total += 1;
        let Some(hit) = ch.hit(&o.dlv, &s.function) else {
            lines.push(line(Mark::Missing, format!("{}: never hit", s.function)));
            continue;
        };
        let mut observed = hit.caller();
        let expected = s.caller();
        let mut witness = "";
        if observed.is_none() && expected.is_some() && hit.stack.len() > 1 {
            // dlv showed a goroutine's saved pc where the caller would be; gdb sees threads.
            if let Some(g) = o.gdb.as_ref().and_then(|g| g.first_real_hit(&s.function)) {
                observed = g.caller();
                witness = " (gdb's thread stack: dlv unwinds the goroutine being switched to, whose saved pc is its entry)";
            }
        }
        let how = match &s.reached {
            startup::Reached::Jump { from } => {
                format!("reached by a JMP from {from}: no caller frame")
            }
            startup::Reached::Gogo { fake_return } => {
                format!("entered by gogo's JMP; its return address is {fake_return}")
            }
            _ => String::new(),
        };
        let mut ok = observed.as_deref() == expected;
        let mut text = format!(
            "{} <- {}{witness}",
            s.function,
            observed.as_deref().unwrap_or("(no caller frame)")
        );
        if s.via_wrapper() {
            // The first stop must be in the wrapper, called from the same caller.
            let w = o.dlv.first_hit(&s.function).filter(|h| h.in_wrapper());
            match w {
                Some(w) if w.caller().as_deref() == expected => {
                    text.push_str(" (through its ABI0 wrapper <autogenerated>:1)")
                }
                _ => {
                    ok = false;
                    text.push_str(" (expected the call to pass through its ABI0 wrapper first; no wrapper stop seen)");
                }
            }
        }
        if !how.is_empty() {
            text.push_str(&format!("; {how}"));
        }
        if ok {
            good += 1;
            lines.push(line(Mark::Good, text));
        } else {
            lines.push(line(
                Mark::Bad,
                format!("{text}; expected {}", expected.unwrap_or("no caller frame")),
            ));
        }
    }
    Outcome {
        passed: good == total,
        summary: format!(
            "{good} of {total} callers as the {} says (wrappers, systemstack and closures folded)",
            if ch.lab { "lab" } else { "reference" }
        ),
        lines,
    }
}

fn go_statement(o: &Observation) -> Outcome {
    let hits = &o.dlv.hits;
    let mut lines = Vec::new();
    let np = hits
        .iter()
        .find(|h| stop_matches(h, "runtime.newproc", Some("main.main")));
    let Some(np) = np else {
        return Outcome {
            passed: false,
            summary: "no runtime.newproc stop called from main.main".into(),
            lines: vec![line(Mark::Missing, "main.main -> runtime.newproc")],
        };
    };
    lines.push(line(
        Mark::Good,
        format!(
            "main.main -> runtime.newproc (thread {}, goroutine {})",
            np.thread, np.goroutine
        ),
    ));
    let after = |f: &str, from: usize| {
        hits.iter().find(|h| {
            h.seq > from && h.thread == np.thread && stop_matches(h, f, Some("runtime.newproc"))
        })
    };
    let n1 = after("runtime.newproc1", np.seq);
    let mut ok = true;
    match n1 {
        Some(h) => lines.push(line(
            Mark::Good,
            format!(
                "runtime.newproc -> runtime.newproc1 (on the system stack: {})",
                h.stack.get(1).map(|f| f.function.as_str()).unwrap_or("?")
            ),
        )),
        None => {
            ok = false;
            lines.push(line(Mark::Missing, "runtime.newproc -> runtime.newproc1"))
        }
    }
    let rq = after("runtime.runqput", n1.map(|h| h.seq).unwrap_or(np.seq));
    match rq {
        Some(h) => {
            let next = h
                .values
                .get("eval next")
                .cloned()
                .unwrap_or_else(|| "not read".into());
            if next == "true" {
                lines.push(line(Mark::Good, "runtime.newproc -> runtime.runqput(p, newg, next=true): the new g goes to runnext"));
            } else {
                ok = false;
                lines.push(line(
                    Mark::Bad,
                    format!("runtime.runqput's next = {next}, expected true"),
                ));
            }
        }
        None => {
            ok = false;
            lines.push(line(Mark::Missing, "runtime.newproc -> runtime.runqput"))
        }
    }
    Outcome {
        passed: ok,
        summary: "go func(){}() in main.main: newproc -> newproc1 -> runqput(next=true)".into(),
        lines,
    }
}

fn sysmon_thread(o: &Observation, p: &Profile) -> Outcome {
    let m0 = o.dlv.hits.first().map(|h| h.thread);
    let reruns: Vec<_> = o
        .dlv_reruns
        .iter()
        .map(|w| line(Mark::Note, format!("the dlv session was run again: {w}")))
        .collect();
    let Some(h) = o.dlv.first_real_hit("runtime.sysmon") else {
        let mut lines = vec![line(Mark::Missing, "runtime.sysmon")];
        lines.extend(reruns);
        return Outcome {
            passed: false,
            summary: format!(
                "runtime.sysmon was never hit, in {} run(s) of the dlv session",
                o.dlv_reruns.len() + 1
            ),
            lines,
        };
    };
    let want = startup::sysmon_step(p);
    let mut lines = reruns;
    let own = Some(h.thread) != m0;
    lines.push(line(
        if own { Mark::Good } else { Mark::Bad },
        format!(
            "runtime.sysmon on thread {}, the main thread is {}",
            h.thread,
            m0.unwrap_or(-1)
        ),
    ));
    let caller_ok = h.caller().as_deref() == want.as_ref().and_then(|s| s.caller());
    lines.push(line(
        if caller_ok { Mark::Good } else { Mark::Bad },
        format!(
            "called from {} (expected {})",
            h.caller().unwrap_or_default(),
            want.as_ref().and_then(|s| s.caller()).unwrap_or("?")
        ),
    ));
    let main_first = o.dlv.first_real_hit("runtime.main").map(|m| m.seq);
    let after_main = main_first.map(|m| h.seq > m).unwrap_or(false);
    lines.push(line(
        if after_main { Mark::Good } else { Mark::Bad },
        "started after runtime.main began (newm(sysmon) in runtime.main)",
    ));
    Outcome {
        passed: own && caller_ok && after_main,
        summary: format!("sysmon runs on thread {} of its own", h.thread),
        lines,
    }
}

fn witnesses_agree(o: &Observation) -> Outcome {
    let Some(g) = &o.gdb else {
        return Outcome {
            passed: false,
            summary: "no gdb session".into(),
            lines: vec![line(Mark::Missing, "gdb")],
        };
    };
    let mut lines = Vec::new();
    let mut ok = true;
    let mut compared = 0;
    for gb in &g.breakpoints {
        let Some(db) = o.dlv.placed(&gb.function) else {
            continue;
        };
        compared += 1;
        let (mut a, mut b) = (gb.addrs.clone(), db.addrs.clone());
        a.sort();
        b.sort();
        let fmt = |v: &[u64]| {
            v.iter()
                .map(|x| format!("{x:#x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let base = |s: &str| s.split('+').next().unwrap_or(s).to_string();
        let (mut sa, mut sb): (Vec<String>, Vec<String>) = (
            gb.symbols.iter().map(|s| base(s)).collect(),
            db.symbols.iter().map(|s| base(s)).collect(),
        );
        sa.sort();
        sb.sort();
        if a == b {
            lines.push(line(
                Mark::Good,
                format!("{}: both break at {}", gb.function, fmt(&a)),
            ));
        } else if !sa.is_empty() && sa == sb {
            lines.push(line(
                Mark::Good,
                format!("{}: both break in {}; at gdb {} / dlv {}: each skips its own idea of the prologue", gb.function, sa.join(" and "), gb.symbols.join(" "), db.symbols.join(" ")),
            ));
        } else {
            ok = false;
            lines.push(line(
                Mark::Bad,
                format!("{}: gdb at {}, dlv at {}", gb.function, fmt(&a), fmt(&b)),
            ));
        }
        let gf = g
            .hits
            .iter()
            .find(|h| h.breakpoint == gb.function && !h.in_wrapper());
        let df = o.dlv.first_real_hit(&gb.function);
        if let (Some(gh), Some(dh)) = (gf, df) {
            let (gc, dc) = (gh.caller(), dh.caller());
            let dlv_sees_a_goroutine = dc.is_none() && dh.stack.get(1).is_some_and(|f| f.entry_pc);
            if dlv_sees_a_goroutine {
                let g = dh.stack.get(1).map(|f| f.function.as_str()).unwrap_or("?");
                lines.push(line(Mark::Note, format!("{}: gdb sees it called from {}; dlv shows the goroutine being switched to (its saved pc is {g}'s entry), so no caller to compare", gb.function, gc.unwrap_or_default())));
            } else if gc == dc {
                lines.push(line(
                    Mark::Good,
                    format!(
                        "{}: both see it called from {}",
                        gb.function,
                        gc.unwrap_or_else(|| "no caller frame".into())
                    ),
                ));
            } else {
                ok = false;
                lines.push(line(
                    Mark::Bad,
                    format!(
                        "{}: gdb sees caller {}, dlv {}",
                        gb.function,
                        gc.unwrap_or_default(),
                        dc.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    if let Some(h) = g.hits.iter().find(|h| h.breakpoint == "main.main") {
        let past = h.chain().iter().any(|f| f == "runtime.main");
        lines.push(line(
            if past { Mark::Good } else { Mark::Bad },
            "gdb's backtrace at main.main goes on to runtime.main (set backtrace past-main on)",
        ));
        ok &= past;
    }
    if compared == 0 {
        ok = false;
        lines.push(line(
            Mark::Missing,
            "no function was watched by both gdb and dlv",
        ));
    }
    Outcome {
        passed: ok,
        summary: format!("{compared} functions watched by both gdb and dlv"),
        lines,
    }
}

fn wrapper_disassembly(o: &Observation, p: &Profile) -> Outcome {
    let mut lines = Vec::new();
    let mut ok = true;
    for w in &o.wrappers {
        match w.call_to_real() {
            Some(i) => {
                lines.push(line(
                    Mark::Good,
                    format!(
                        "{} wrapper at {:#x}: {:#x} {} -> the real {}",
                        w.function, w.entry, i.pc, i.text, w.function
                    ),
                ));
                if let Some(r) = &w.real_breakpoint {
                    lines.push(line(
                        Mark::Note,
                        format!(
                            "the tip at work: dlv set `b {}` on this wrapper alone; the jump goes to {}:{}, so golab set a breakpoint there too ({})",
                            w.function,
                            short_source(&r.file),
                            r.line,
                            r.addrs.iter().map(|a| format!("{a:#x}")).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            None => {
                ok = false;
                lines.push(line(
                    Mark::Bad,
                    format!(
                        "{} wrapper at {:#x}: no call or jump to the real {} in {} instructions",
                        w.function,
                        w.entry,
                        w.function,
                        w.instructions.len()
                    ),
                ));
            }
        }
    }
    if o.wrappers.is_empty() && p.abi_wrappers {
        ok = false;
        lines.push(line(
            Mark::Missing,
            "no stop landed in an <autogenerated> wrapper, though this Go version has them",
        ));
    }
    Outcome {
        passed: ok,
        summary: match o
            .wrappers
            .iter()
            .filter(|w| w.real_breakpoint.is_some())
            .count()
        {
            0 => format!("{} ABI wrappers disassembled", o.wrappers.len()),
            n => format!(
                "{} ABI wrappers disassembled; for {n} of them dlv broke in the wrapper alone, and the tip (disassemble, find the real jump address) found the function",
                o.wrappers.len()
            ),
        },
        lines,
    }
}

fn values(spec: &CheckSpec, o: &Observation, v: crate::toolchain::GoVersion) -> Outcome {
    let mut lines = Vec::new();
    let mut ok = true;
    for x in spec
        .expect
        .iter()
        .filter(|x| crate::toolchain::applies(x.go.as_deref(), v))
    {
        let key = match (&x.eval, &x.reg) {
            (Some(e), _) => format!("eval {e}"),
            (_, Some(r)) => format!("reg {}", r.to_lowercase()),
            _ => continue,
        };
        let what = key
            .split_once(' ')
            .map(|(_, w)| w.to_string())
            .unwrap_or_default();
        let fact = Fact::parse(&x.equals).expect("validated when the lab was loaded");
        let hit: Option<&Hit> = o.dlv.hits.iter().find(|h| {
            stop_matches(h, x.at.function(), x.at.caller()) && x.at.scope().admits(h, &o.dlv.hits)
        });
        let expected = fact.value(o);
        let observed = hit.and_then(|h| h.values.get(&key));
        if let (Fact::Name(want), Some(obs)) = (&fact, observed) {
            let got = value_name(obs);
            let same =
                got.is_some_and(|g| g == want || g.rsplit('.').next() == want.rsplit('.').next());
            ok &= same;
            lines.push(line(
                if same { Mark::Good } else { Mark::Bad },
                if same {
                    format!("{what} at {} = {obs}", x.at.describe())
                } else {
                    format!(
                        "{what} at {}: observed {obs}, expected {want}",
                        x.at.describe()
                    )
                },
            ));
            continue;
        }
        match (observed, expected) {
            (None, _) => {
                ok = false;
                lines.push(line(
                    Mark::Missing,
                    format!("{what} at {}: no such stop was recorded", x.at.describe()),
                ));
            }
            (Some(obs), Some(exp)) => {
                let v = parse_val(obs);
                if v == Some(exp) {
                    lines.push(line(
                        Mark::Good,
                        format!(
                            "{what} at {} = {} ({})",
                            x.at.describe(),
                            v.map(|v| v.to_string()).unwrap_or_default(),
                            fact.name()
                        ),
                    ));
                } else {
                    ok = false;
                    let shown = v.map(|v| v.to_string()).unwrap_or_else(|| obs.clone());
                    lines.push(line(
                        Mark::Bad,
                        format!(
                            "{what} at {}: observed {shown}, expected {exp} ({})",
                            x.at.describe(),
                            fact.name()
                        ),
                    ));
                }
            }
            (Some(_), None) => {
                ok = false;
                lines.push(line(
                    Mark::Missing,
                    format!("{what}: golab does not know {} for this run", fact.name()),
                ));
            }
        }
    }
    Outcome {
        passed: ok,
        summary: spec.says.clone().unwrap_or_default(),
        lines,
    }
}

/// The model's starting state from the values read at main.main.
pub fn live_state(
    p: &Profile,
    live: &std::collections::BTreeMap<String, String>,
) -> Option<sched::LiveState> {
    let get = |e: &str| live.get(&format!("eval {e}")).and_then(|v| parse_int(v));
    let [tick, head, tail, next, global] = p.live_state_exprs();
    let (head, tail) = (get(head)? as u32, get(tail)? as u32);
    Some(sched::LiveState {
        schedtick: get(tick)? as u32,
        runqhead: head,
        local_len: tail.wrapping_sub(head),
        runnext: get(next)? != 0,
        global_len: get(global)? as u32,
    })
}

fn run_order(o: &Observation, p: &Profile, v: crate::toolchain::GoVersion) -> Outcome {
    let profile = sched::Profile::for_version(v.minor);
    if o.facts.gomaxprocs > 1 {
        return Outcome {
            passed: false,
            summary: format!(
                "this program is not one the run-order model predicts: it ran with GOMAXPROCS={} and the whole-order model has one P; use the co-simulation check (kind: cosim)",
                o.facts.gomaxprocs
            ),
            lines: vec![],
        };
    }
    let mut lines = Vec::new();
    let (mut matched, mut total) = (0, 0);
    let mut ids: Vec<&str> = Vec::new();
    for r in &o.scenarios {
        if !ids.contains(&r.id.as_str()) {
            ids.push(&r.id);
        }
    }
    for id in ids {
        let runs: Vec<&crate::trace::ScenarioRun> =
            o.scenarios.iter().filter(|r| r.id == id).collect();
        let verdicts: Vec<Result<String, (Mark, String)>> =
            runs.iter().map(|r| judge_run(r, p, &profile)).collect();
        let ok = verdicts.iter().filter(|v| v.is_ok()).count();
        matched += ok;
        total += runs.len();
        let args = runs[0].args.join(" ");
        // `[matched/runs]` at a fixed place: scripts/fidelity.sh reads it.
        if ok == runs.len() {
            let shown = verdicts[0].as_ref().map(String::as_str).unwrap_or("");
            lines.push(line(
                Mark::Good,
                format!(
                    "{id} (./main {args}) [{ok}/{}]: as predicted: {shown}",
                    runs.len()
                ),
            ));
        } else {
            let (k, (mark, why)) = verdicts
                .iter()
                .enumerate()
                .find_map(|(k, v)| v.as_ref().err().map(|e| (k, e)))
                .expect("a failed run");
            lines.push(line(
                *mark,
                format!(
                    "{id} (./main {args}) [{ok}/{}]: run {}: {why}",
                    runs.len(),
                    k + 1
                ),
            ));
        }
    }
    let reruns: usize = o.scenarios.iter().map(|r| r.disturbed_before.len()).sum();
    for r in o
        .scenarios
        .iter()
        .filter(|r| !r.disturbed_before.is_empty())
    {
        lines.push(line(
            Mark::Note,
            format!(
                "{}: run again {} time(s) (at most {}): {}",
                r.id,
                r.disturbed_before.len(),
                crate::trace::MAX_RERUNS,
                r.disturbed_before
                    .iter()
                    .map(|d| format!("disturbed by {}", d.join("; ")))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        ));
    }
    Outcome {
        passed: total > 0 && matched == total,
        summary: format!(
            "{matched} of {total} runs in the order the model predicts (model go1.{}){}",
            v.minor,
            if reruns > 0 {
                format!("; {reruns} disturbed run(s) run again")
            } else {
                String::new()
            }
        ),
        lines,
    }
}

/// One run: Ok(the start of the order) when prediction and observation agree.
///
/// The prediction replays the program's shape (what `tools/goshape` read from its
/// syntax for this run's arguments); a program it cannot follow is refused by name. A
/// run recorded without a shape (an older observation) is predicted from the
/// runq-order scenario its arguments spell.
fn judge_run(
    run: &crate::trace::ScenarioRun,
    p: &Profile,
    profile: &sched::Profile,
) -> Result<String, (Mark, String)> {
    use crate::reference::shape::{self, Shape};
    let refuse = |why: &str| {
        (
            Mark::Bad,
            format!(
                "this program is not one the run-order model predicts: {why}; use the co-simulation check (kind: cosim)"
            ),
        )
    };
    let spec = crate::lab::ScenarioSpec::from_args(&run.id, &run.args);
    let mut fallback = None;
    let program = match &run.shape {
        Some(Shape::Refused(why)) => return Err(refuse(why)),
        // The helper could not run (no Go to build it where golab runs): the
        // runq-order program's own scenario, if the arguments spell one, else nothing.
        Some(Shape::Failed(why)) => match spec.model() {
            Ok(_) => {
                fallback = Some(why.clone());
                None
            }
            Err(_) => return Err((Mark::Missing, why.clone())),
        },
        Some(Shape::Program(prog)) => Some(prog),
        None => None,
    };
    let mut scenario = match program {
        Some(_) => sched::Scenario::new(0),
        None => spec.model().map_err(|e| (Mark::Bad, e))?,
    };
    // main's own Gosched calls and sysmon's measured preemptions of main both send it
    // to the global queue after that many spawns.
    scenario
        .main_preempted_after
        .extend(run.preempted_after.iter().copied());
    scenario.main_preempted_after.sort_unstable();
    let live = live_state(p, &run.live).ok_or_else(|| {
        (
            Mark::Missing,
            format!(
                "the scheduler's state at main.main was not read: {:?}",
                run.live
            ),
        )
    })?;
    let observed = run.observed.as_ref().ok_or_else(|| {
        (
            Mark::Missing,
            "the program printed no order (did it finish?)".to_string(),
        )
    })?;
    let predicted: Vec<u32> = match program {
        Some(prog) => {
            let mut pre: Vec<(u32, Vec<String>)> = run
                .preempted_after
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, run.preempted_at.get(i).cloned().unwrap_or_default()))
                .collect();
            pre.sort_by_key(|(k, _)| *k);
            let pr = shape::predict(profile, prog, &live, &pre).map_err(|e| refuse(&e))?;
            let mut v = Vec::with_capacity(pr.order.len());
            for x in pr.order {
                v.push(u32::try_from(x).map_err(|_| {
                    refuse(&format!(
                        "it records {x}, and the order line holds non-negative numbers"
                    ))
                })?);
            }
            let (mut a, mut b) = (v.clone(), observed.clone());
            a.sort_unstable();
            b.sort_unstable();
            if a != b {
                return Err((
                    Mark::Bad,
                    format!(
                        "the order line holds {} values and the program's shape records {}, not the same ones (does the program print every recorded value, in order, on a line `order ...`?)",
                        observed.len(),
                        v.len()
                    ),
                ));
            }
            v
        }
        None => {
            let mut sorted = observed.clone();
            sorted.sort_unstable();
            if sorted != (0..spec.n).collect::<Vec<u32>>() {
                return Err(refuse(&format!(
                    "its order line holds {} entries, not each of 0..{} once",
                    observed.len(),
                    spec.n
                )));
            }
            sched::predict_order(profile, &scenario, &live)
        }
    };
    if !run.disturbances.is_empty() {
        return Err((
            Mark::Bad,
            format!(
                "not comparable, the run was disturbed: {}",
                run.disturbances.join("; ")
            ),
        ));
    }
    let mut start = format!(
        "tick={} runnext={} local={} global={}",
        live.schedtick, live.runnext, live.local_len, live.global_len
    );
    if !run.preempted_after.is_empty() {
        start.push_str(&format!(
            "; sysmon preempted main after {} spawns, measured and given to the model",
            run.preempted_after
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(why) = &fallback {
        start.push_str(&format!(
            "; predicted from the runq-order scenario its arguments spell, as the program's shape was not read: {why}"
        ));
    }
    if &predicted == observed {
        let head: Vec<String> = observed.iter().take(12).map(|i| i.to_string()).collect();
        Ok(format!(
            "{}{} (from {start})",
            head.join(" "),
            if observed.len() > 12 { " ..." } else { "" }
        ))
    } else if program.is_some() {
        let pos = predicted
            .iter()
            .zip(observed)
            .position(|(a, b)| a != b)
            .unwrap_or(predicted.len().min(observed.len()));
        let show = |v: &[u32]| {
            v.iter()
                .skip(pos.saturating_sub(3))
                .take(8)
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        Err((
            Mark::Bad,
            format!(
                "first divergence at position {pos}: predicted {} ..., observed {} ... (from {start})",
                show(&predicted),
                show(observed)
            ),
        ))
    } else {
        Err((
            Mark::Bad,
            divergence(profile, &scenario, &live, &predicted, observed),
        ))
    }
}

/// The first place where prediction and observation part, with the model's state there.
pub fn divergence(
    profile: &sched::Profile,
    scenario: &sched::Scenario,
    live: &sched::LiveState,
    predicted: &[u32],
    observed: &[u32],
) -> String {
    let pos = predicted
        .iter()
        .zip(observed)
        .position(|(a, b)| a != b)
        .unwrap_or(predicted.len().min(observed.len()));
    let want = predicted
        .get(pos)
        .map(|x| format!("f({x})"))
        .unwrap_or_else(|| "nothing".into());
    let got = observed
        .get(pos)
        .map(|x| format!("f({x})"))
        .unwrap_or_else(|| "nothing".into());
    let e = sched::simulate(profile, scenario, live);
    let at = predicted.get(pos).and_then(|x| {
        e.steps
            .iter()
            .find(|s| s.picked.as_deref() == Some(&format!("f({x})")))
    });
    let state = at
        .map(|s| {
            format!(
                "; the model there: tick={} runnext={} local({})=[{}] global({})=[{}]",
                s.schedtick,
                s.runnext.as_deref().unwrap_or("-"),
                s.local_len,
                s.local.join(" "),
                s.global_len,
                s.global.join(" ")
            )
        })
        .unwrap_or_default();
    format!(
        "first divergence at position {pos}: predicted {want}, observed {got} (from tick={} runnext={} local={} global={}){state}",
        live.schedtick, live.runnext, live.local_len, live.global_len
    )
}

fn caller_table(v: crate::toolchain::GoVersion) -> Result<callers::Table, Outcome> {
    callers::Table::for_version(v)
        .map(|(t, _)| t)
        .map_err(|e| Outcome {
            passed: false,
            summary: format!("{e:#}"),
            lines: vec![],
        })
}

fn names(s: &BTreeSet<String>) -> String {
    s.iter()
        .map(|x| x.trim_start_matches("runtime."))
        .collect::<Vec<_>>()
        .join(", ")
}

fn static_callers(spec: &CheckSpec, o: &Observation, v: crate::toolchain::GoVersion) -> Outcome {
    let t = match caller_table(v) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let mut lines = Vec::new();
    let mut ok = true;
    for name in &spec.functions {
        let Some(f) = t.resolve(name) else {
            let text = if t.absent.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                format!(
                    "{name}: not in {}'s runtime (its source has no such function)",
                    t.go
                )
            } else {
                format!("{name}: not in golab's caller table for {}", t.go)
            };
            lines.push(line(Mark::Note, text));
            continue;
        };
        let shown = if &f != name {
            format!("{f} (named {name} in the notes)")
        } else {
            f.clone()
        };
        if !o.in_binary.get(&f).copied().unwrap_or(false) {
            ok = false;
            lines.push(line(
                Mark::Missing,
                format!("{shown}: not a function of the binary (inlined: were -l -N in effect?)"),
            ));
            continue;
        }
        let reference = t.static_callers(&f);
        let seen: BTreeSet<String> = o
            .static_callers
            .get(&f)
            .into_iter()
            .flatten()
            .map(|s| callers::fold_symbol(s))
            .filter(|c| c != &f)
            .collect();
        let extra: BTreeSet<String> = seen.difference(&reference).cloned().collect();
        let missing: BTreeSet<String> = reference.difference(&seen).cloned().collect();
        let (linked_out, missing): (BTreeSet<String>, BTreeSet<String>) = missing
            .into_iter()
            .partition(|c| !o.in_binary.get(c).copied().unwrap_or(false));
        let good = extra.is_empty() && missing.is_empty();
        ok &= good;
        let mut text = format!(
            "{shown} <- {}",
            if seen.is_empty() {
                "(no direct call in the machine code)".into()
            } else {
                names(&seen)
            }
        );
        if !missing.is_empty() {
            let at: Vec<String> = missing
                .iter()
                .map(|c| {
                    format!(
                        "{} ({})",
                        c.trim_start_matches("runtime."),
                        t.call_sites(&f, c).join(", ")
                    )
                })
                .collect();
            text.push_str(&format!("; MISSING {}", at.join(", ")));
        }
        if !extra.is_empty() {
            text.push_str(&format!(
                "; EXTRA (not in the source table) {}",
                names(&extra)
            ));
        }
        if !linked_out.is_empty() {
            text.push_str(&format!(
                "; not linked into this program (unreachable): {}",
                names(&linked_out)
            ));
        }
        lines.push(line(if good { Mark::Good } else { Mark::Bad }, text));
    }
    Outcome {
        passed: ok,
        summary: format!(
            "static callers in the machine code vs the {} source table",
            t.go
        ),
        lines,
    }
}

fn dynamic_callers(spec: &CheckSpec, o: &Observation, v: crate::toolchain::GoVersion) -> Outcome {
    let t = match caller_table(v) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let mut lines = Vec::new();
    let mut ok = true;
    let mut observed_any = false;
    for name in &spec.functions {
        let Some(f) = t.resolve(name) else {
            let text = if t.absent.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                format!(
                    "{name}: not in {}'s runtime (its source has no such function)",
                    t.go
                )
            } else {
                format!("{name}: not in golab's caller table for {}", t.go)
            };
            lines.push(line(Mark::Note, text));
            continue;
        };
        let allowed = t.dynamic_callers(&f);
        let hits: Vec<&Hit> = o
            .dlv
            .hits
            .iter()
            .filter(|h| h.function() == f && !h.in_wrapper())
            .collect();
        if hits.is_empty() {
            lines.push(line(Mark::Note, format!("{f}: not hit in this run")));
            continue;
        }
        observed_any = true;
        let (hidden, shown): (Vec<&Hit>, Vec<&Hit>) =
            hits.iter().partition(|h| h.caller_hidden_by_switch());
        let seen: BTreeSet<String> = shown.iter().filter_map(|h| h.caller()).collect();
        // Behind a stack switch only the function that called systemstack is visible;
        // it is evidence only where the reference names it (a closure folds into it).
        let switched: BTreeSet<String> = hidden.iter().filter_map(|h| h.caller()).collect();
        let (via_ok, via_unknown): (BTreeSet<String>, BTreeSet<String>) =
            switched.into_iter().partition(|c| allowed.contains(c));
        let seen: BTreeSet<String> = seen.union(&via_ok).cloned().collect();
        if !via_unknown.is_empty() {
            lines.push(line(Mark::Note, format!("{f}: reached on the system stack from {}; the debugger does not show the g0 frames in between, so the immediate caller is not seen", names(&via_unknown))));
        }
        let bad: BTreeSet<String> = seen.difference(&allowed).cloned().collect();
        if seen.is_empty() {
            lines.push(line(
                Mark::Note,
                format!("{f}: {} stops, none with a visible caller", hits.len()),
            ));
        } else if bad.is_empty() {
            lines.push(line(
                Mark::Good,
                format!("{f}: {} stops, called from {}", hits.len(), names(&seen)),
            ));
        } else {
            ok = false;
            lines.push(line(
                Mark::Bad,
                format!(
                    "{f}: called from {} which the reference does not allow (allowed: {})",
                    names(&bad),
                    names(&allowed)
                ),
            ));
        }
    }
    if !observed_any {
        ok = false;
        lines.push(line(Mark::Missing, "none of the functions was hit"));
    }
    Outcome {
        passed: ok,
        summary: format!("callers seen at breakpoints vs the {} source table", t.go),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enum_value_compares_by_its_name() {
        assert_eq!(
            Fact::parse("waitReasonChanReceive").unwrap(),
            Fact::Name("waitReasonChanReceive".into())
        );
        assert_eq!(
            value_name("waitReasonChanReceive (14)"),
            Some("waitReasonChanReceive")
        );
        assert_eq!(
            value_name("runtime.waitReasonChanReceive (14)"),
            Some("runtime.waitReasonChanReceive")
        );
        assert_eq!(value_name("14"), None);
        assert!(Fact::parse("two words").is_err());
    }

    #[test]
    fn facts_parse() {
        assert_eq!(
            Fact::parse("symbol runtime.main").unwrap(),
            Fact::Symbol("runtime.main".into())
        );
        assert_eq!(Fact::parse("10000").unwrap(), Fact::Int(10000));
        assert_eq!(Fact::parse("0x10").unwrap(), Fact::Int(16));
        assert!(Fact::parse("cpus").is_err());
    }

    #[test]
    fn lcs_keeps_the_common_order() {
        let a: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let b: Vec<String> = ["a", "c", "b", "d"].map(String::from).to_vec();
        let l = lcs(&a, &b);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0], (0, 0));
        assert_eq!(*l.last().unwrap(), (3, 3));
    }
}

#[cfg(test)]
mod caller_tests {
    use super::*;
    use crate::lab::{CheckKind, CheckSpec};
    use crate::toolchain::GoVersion;
    use crate::trace::{Frame, Tool};

    fn spec(kind: CheckKind, f: &str) -> CheckSpec {
        CheckSpec {
            id: "c".into(),
            kind,
            points: 1,
            says: None,
            note: None,
            go: None,
            expect: vec![],
            functions: vec![f.into()],
            steps: vec![],
            record: None,
        }
    }

    fn frame(f: &str) -> Frame {
        Frame {
            function: f.into(),
            file: "proc.go".into(),
            line: 1,
            pc: 1,
            entry_pc: false,
        }
    }

    #[test]
    fn static_callers_name_what_is_missing_and_what_is_extra() {
        let v = GoVersion::new(1, 19, 8);
        let mut o = Observation::default();
        o.in_binary.insert("runtime.runqget".into(), true);
        o.in_binary.insert("runtime.findRunnable".into(), true);
        o.in_binary.insert("runtime.stealWork".into(), true);
        // The binary shows findRunnable and a caller the source never had.
        o.static_callers.insert(
            "runtime.runqget".into(),
            ["runtime.findRunnable", "runtime.sysmon"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        let out = static_callers(&spec(CheckKind::StaticCallers, "runtime.runqget"), &o, v);
        assert!(!out.passed);
        let text = &out.lines[0].text;
        assert!(
            text.contains("MISSING stealWork")
                && text.contains("EXTRA (not in the source table) sysmon"),
            "{text}"
        );
        // With the real callers, it passes.
        o.static_callers.insert(
            "runtime.runqget".into(),
            ["runtime.findRunnable", "runtime.stealWork"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        assert!(static_callers(&spec(CheckKind::StaticCallers, "runtime.runqget"), &o, v).passed);
    }

    #[test]
    fn a_dynamic_caller_outside_the_table_fails() {
        let v = GoVersion::new(1, 19, 8);
        let mut o = Observation::default();
        let hit = |caller: &str| Hit {
            seq: 0,
            tool: Tool::Dlv,
            breakpoint: "runtime.execute".into(),
            thread: 1,
            goroutine: 0,
            stack: vec![frame("runtime.execute"), frame(caller)],
            values: Default::default(),
            stop: 0,
        };
        o.dlv.hits = vec![hit("runtime.schedule")];
        assert!(dynamic_callers(&spec(CheckKind::DynamicCallers, "runtime.execute"), &o, v).passed);
        o.dlv.hits.push(hit("runtime.gcStart"));
        let out = dynamic_callers(&spec(CheckKind::DynamicCallers, "runtime.execute"), &o, v);
        assert!(
            !out.passed && out.lines[0].text.contains("gcStart"),
            "{:?}",
            out.lines
        );
    }
}

#[cfg(test)]
mod run_order_tests {
    use super::*;
    use crate::trace::ScenarioRun;

    fn run(observed: Vec<u32>, disturbances: Vec<String>) -> ScenarioRun {
        let p = Profile::for_version(crate::toolchain::GoVersion::new(1, 19, 8)).0;
        let live: Vec<(String, String)> = p
            .live_state_exprs()
            .iter()
            .zip(["4", "2", "2", "824633733504", "0"])
            .map(|(e, v)| (format!("eval {e}"), v.to_string()))
            .collect();
        ScenarioRun {
            id: "n5".into(),
            args: vec!["5".into(), "wg".into(), "none".into()],
            live: live.into_iter().collect(),
            observed: Some(observed),
            disturbances,
            preempted_after: vec![],
            preempted_at: vec![],
            shape: None,
            disturbed_before: vec![],
            session: Default::default(),
        }
    }

    fn judge(r: ScenarioRun) -> Outcome {
        judge_on(r, 1)
    }

    fn judge_on(r: ScenarioRun, ps: u64) -> Outcome {
        let mut o = Observation::default();
        o.facts.gomaxprocs = ps;
        o.scenarios.push(r);
        let v = crate::toolchain::GoVersion::new(1, 19, 8);
        run_order(&o, &Profile::for_version(v).0, v)
    }

    #[test]
    fn the_last_go_statement_runs_first_from_runnext() {
        // go1.19.8, N=5: observed in real runs as 4 0 1 2 3 (the model's own tests say how).
        let out = judge(run(vec![4, 0, 1, 2, 3], vec![]));
        assert!(out.passed, "{:?}", out.lines);
        assert!(out.lines[0].text.contains("[1/1]"));
    }

    #[test]
    fn a_refused_shape_is_said_by_name_whatever_the_order() {
        use crate::reference::shape::Shape;
        let mut r = run(vec![4, 0, 1, 2, 3], vec![]);
        r.shape = Some(Shape::Refused("main.go:40: select is not modelled".into()));
        let out = judge(r);
        assert!(!out.passed);
        assert!(
            out.lines[0].text.contains(
                "run 1: this program is not one the run-order model predicts: main.go:40: select is not modelled; use the co-simulation check (kind: cosim)"
            ),
            "{:?}",
            out.lines
        );
    }

    #[test]
    fn a_shape_is_replayed_and_a_helper_failure_falls_back_to_the_scenario() {
        use crate::reference::shape::{Goroutine, Op, Program, Shape};
        let op = |op: &str, g: usize, wg: usize, n: i64| Op {
            op: op.into(),
            g,
            ch: 0,
            wg,
            n,
            label: String::new(),
            pos: "main.go:1".into(),
        };
        let mut main = vec![op("wgadd", 0, 1, 5)];
        let mut gs = vec![];
        for i in 0..5 {
            main.push(op("go", i + 1, 0, 0));
            gs.push(Goroutine {
                label: format!("f({i})"),
                ops: vec![
                    op("record", 0, 0, i as i64),
                    op("wgadd", 0, 1, -1),
                    op("exit", 0, 0, 0),
                ],
            });
        }
        main.push(op("wgwait", 0, 1, 0));
        main.push(op("exit", 0, 0, 0));
        let mut all = vec![Goroutine {
            label: "main".into(),
            ops: main,
        }];
        all.extend(gs);
        let prog = Program {
            goroutines: all,
            chans: vec![],
            wgs: 1,
        };
        let mut r = run(vec![4, 0, 1, 2, 3], vec![]);
        r.shape = Some(Shape::Program(prog));
        assert!(judge(r.clone()).passed);
        r.observed = Some(vec![0, 1, 2, 3, 4]);
        let out = judge(r.clone());
        assert!(
            !out.passed && out.lines[0].text.contains("first divergence at position 0"),
            "{:?}",
            out.lines
        );
        r.observed = Some(vec![4, 0, 1, 2, 3]);
        r.shape = Some(Shape::Failed("no go".into()));
        let out = judge(r);
        assert!(
            out.passed
                && out.lines[0]
                    .text
                    .contains("as the program's shape was not read: no go"),
            "{:?}",
            out.lines
        );
    }

    #[test]
    fn a_wrong_order_names_the_first_divergence_and_the_models_state() {
        let out = judge(run(vec![0, 1, 2, 3, 4], vec![]));
        assert!(!out.passed);
        let t = &out.lines[0].text;
        assert!(
            t.contains("first divergence at position 0: predicted f(4), observed f(0)")
                && t.contains("the model there"),
            "{t}"
        );
    }

    #[test]
    fn more_than_one_p_or_another_program_is_refused_by_name() {
        let out = judge_on(run(vec![4, 0, 1, 2, 3], vec![]), 2);
        assert!(
            !out.passed && out.summary.contains("GOMAXPROCS=2"),
            "{}",
            out.summary
        );
        assert!(out.summary.contains("use the co-simulation check"));
        let out = judge(run(vec![4, 0, 1], vec![]));
        assert!(
            !out.passed
                && out.lines[0]
                    .text
                    .contains("not one the run-order model predicts"),
            "{:?}",
            out.lines
        );
    }

    #[test]
    fn a_disturbed_run_is_reported_by_name_not_absorbed() {
        let out = judge(run(
            vec![4, 0, 1, 2, 3],
            vec!["runtime.gopreempt_m on goroutine 1: sysmon asked a goroutine to yield".into()],
        ));
        assert!(!out.passed);
        assert!(
            out.lines[0].text.contains("not comparable")
                && out.lines[0].text.contains("gopreempt_m"),
            "{:?}",
            out.lines
        );
    }
}

/// `runtime/proc.go` for `/any/goroot/src/runtime/proc.go`: what a student recognises.
fn short_source(file: &str) -> &str {
    match file.rfind("/src/") {
        Some(i) => &file[i + 5..],
        None => file,
    }
}

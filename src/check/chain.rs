//! Startup checks: the build flags, the entry point, the chain's order and callers
//! from the ELF entry to main.main, the go statement's runnext, sysmon's thread, the
//! witnesses (gdb and dlv) agreeing, and the ABI wrappers' code.
use super::*;

pub(super) fn build_flags(o: &Observation) -> Judgement {
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
    Judgement {
        passed: b.has_dwarf && b.main_args_is_function,
        summary: format!("built with -gcflags \"{}\" in {:.1}s", b.gcflags, b.seconds),
        lines,
    }
}

pub(super) fn entry_point(o: &Observation) -> Judgement {
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
    Judgement {
        passed: ok,
        summary: format!("{:#x} {sym}", e.elf),
        lines,
    }
}

/// Steps of the reference chain the dlv session watched (the entry is always watched).
pub(super) fn watched<'a>(o: &Observation, chain: &'a [startup::Step]) -> Vec<&'a startup::Step> {
    chain
        .iter()
        .filter(|s| s.reached == startup::Reached::Entry || o.dlv.placed(&s.function).is_some())
        .collect()
}

/// Functions in the order of their first stop.
pub(super) fn first_hit_order(s: &Session, among: &[&str]) -> Vec<String> {
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
pub(super) fn chain_of(spec: &CheckSpec, p: &Profile, v: crate::toolchain::GoVersion) -> Chain {
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
pub(super) struct Chain {
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

pub(super) fn chain_order(o: &Observation, p: &Profile, ch: &Chain) -> Judgement {
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
    Judgement {
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

pub(super) fn chain_callers(o: &Observation, ch: &Chain) -> Judgement {
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
    Judgement {
        passed: good == total,
        summary: format!(
            "{good} of {total} callers as the {} says (wrappers, systemstack and closures folded)",
            if ch.lab { "lab" } else { "reference" }
        ),
        lines,
    }
}

pub(super) fn go_statement(o: &Observation) -> Judgement {
    let hits = &o.dlv.hits;
    let mut lines = Vec::new();
    let np = hits
        .iter()
        .find(|h| stop_matches(h, "runtime.newproc", Some("main.main")));
    let Some(np) = np else {
        return Judgement {
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
    Judgement {
        passed: ok,
        summary: "go func(){}() in main.main: newproc -> newproc1 -> runqput(next=true)".into(),
        lines,
    }
}

pub(super) fn sysmon_thread(o: &Observation, p: &Profile) -> Judgement {
    let m0 = o.dlv.hits.first().map(|h| h.thread);
    let reruns: Vec<_> = o
        .dlv_reruns
        .iter()
        .map(|w| line(Mark::Note, format!("the dlv session was run again: {w}")))
        .collect();
    let Some(h) = o.dlv.first_real_hit("runtime.sysmon") else {
        let mut lines = vec![line(Mark::Missing, "runtime.sysmon")];
        lines.extend(reruns);
        return Judgement {
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
    Judgement {
        passed: own && caller_ok && after_main,
        summary: format!("sysmon runs on thread {} of its own", h.thread),
        lines,
    }
}

pub(super) fn witnesses_agree(o: &Observation) -> Judgement {
    let Some(g) = &o.gdb else {
        return Judgement {
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
    Judgement {
        passed: ok,
        summary: format!("{compared} functions watched by both gdb and dlv"),
        lines,
    }
}

pub(super) fn wrapper_disassembly(o: &Observation, p: &Profile) -> Judgement {
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
    Judgement {
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

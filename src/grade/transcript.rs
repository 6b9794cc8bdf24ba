//! A student's dlv transcript, checked against the binary of their program: could it
//! have come from a real session?
//!
//! What dlv prints is specific to one binary: `Breakpoint 1 set at 0x45bb40 for
//! runtime.rt0_go() .../asm_amd64.s:161` names the address a breakpoint resolves to, and
//! `> main.main() ./main.go:3 (hits goroutine(1):1 total:1) (PC: 0x45f1c6)` a stop's pc.
//! Each must match the student's own build (its symbols, and the addresses golab's dlv
//! session placed), and the stops must come in an order a real run allows.

use super::model::TranscriptCheck;
use crate::probe::dwarf::{Lines, TooLarge};
use crate::probe::elf::Elf;
use crate::reference::{Profile, startup};
use crate::toolchain::GoVersion;
use crate::trace::Observation;
use std::path::Path;

/// A `Breakpoint N set at ADDR[,ADDR] for FUNC()` line.
fn set_line(l: &str) -> Option<(Vec<u64>, String)> {
    let rest = l.trim().strip_prefix("Breakpoint ")?;
    let (_, rest) = rest.split_once(" set at ")?;
    let (addrs, rest) = rest.split_once(" for ")?;
    let func = rest.split("()").next()?.trim().to_string();
    let addrs = addrs
        .split(',')
        .filter_map(|a| u64::from_str_radix(a.trim().trim_start_matches("0x"), 16).ok())
        .collect::<Vec<_>>();
    (!addrs.is_empty()).then_some((addrs, func))
}

/// A `> FUNC() FILE:LINE ... (PC: ADDR)` stop line (dlv's, with or without `[Breakpoint N]`).
/// The hit counts of one `continue`'s stops: a breakpoint that `k` threads stopped at
/// shows, on each of its `k` lines, the count after all of them (dlv's `printcontext`
/// prints every thread stopped at a breakpoint, from one shared count): its stops so far
/// plus `k`. Empties `group`.
fn check_counts(
    group: &mut Vec<(usize, u32, u32)>,
    numbered: &mut std::collections::HashMap<u32, (String, u32)>,
    findings: &mut Vec<String>,
) {
    let mut nums: Vec<u32> = group.iter().map(|g| g.1).collect();
    nums.sort_unstable();
    nums.dedup();
    for num in nums {
        let Some((_, seen)) = numbered.get_mut(&num) else {
            continue;
        };
        let k = group.iter().filter(|g| g.1 == num).count() as u32;
        let want = *seen + k;
        for &(n, _, total) in group.iter().filter(|g| g.1 == num) {
            if total != want {
                findings.push(if k == 1 {
                    format!(
                        "line {}: breakpoint {num} says total:{total}, but this is its stop number {want} in the transcript",
                        n + 1
                    )
                } else {
                    format!(
                        "line {}: breakpoint {num} says total:{total}, but {k} threads stopped at it here, after {seen} stops before: total:{want}",
                        n + 1
                    )
                });
            }
        }
        *seen = want;
    }
    group.clear();
}

fn stop_line(l: &str) -> Option<(String, Option<u64>)> {
    let rest = l.trim().strip_prefix("> ")?;
    let rest = if rest.starts_with('[') {
        rest.split_once("] ")?.1
    } else {
        rest
    };
    let func = rest.split("()").next()?.trim().to_string();
    let pc = rest.rsplit_once("(PC: ").and_then(|(_, p)| {
        u64::from_str_radix(p.trim_end_matches(')').trim().trim_start_matches("0x"), 16).ok()
    });
    Some((func, pc))
}

/// `FILE:LINE` as dlv prints it after a function: (base name, line).
fn file_line(s: &str) -> Option<(String, u32)> {
    let word = s.split_whitespace().next()?;
    let (file, line) = word.rsplit_once(':')?;
    let line: u32 = line.parse().ok()?;
    let base = file.rsplit('/').next().unwrap_or(file).to_string();
    Some((base, line))
}

fn base_name(f: &str) -> String {
    f.rsplit('/').next().unwrap_or(f).to_string()
}

/// Hex words of a line (`0x...`).
fn hex_words(l: &str) -> Vec<u64> {
    l.split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| w.strip_prefix("0x"))
        .filter_map(|w| u64::from_str_radix(w, 16).ok())
        .collect()
}

/// A stack address under ASLR (the main thread's stack sits just under 0x7fff_ffff_ffff).
fn is_stack_address(a: u64) -> bool {
    (0x7f00_0000_0000..0x8000_0000_0000).contains(&a)
}

/// Checks every fact of a dlv transcript that the student's binary, or golab's own run
/// of it, fixes: breakpoint addresses, the function and file:line of each stop and frame,
/// hit counts against the breakpoints set, the order of the first stops, and the stack
/// pointer at the entry against the argv pointer rt0_go is given. Also gathers the
/// values that a real session gets anew each run (stack addresses, thread ids).
pub fn check(text: &str, obs: &Observation, binary: &Path) -> TranscriptCheck {
    let mut findings = Vec::new();
    let mut facts = 0usize;
    let mut per_run: Vec<String> = Vec::new();
    let elf = Elf::read(binary).ok();
    // A line table past the limits (a bomb in a cgo preamble's asm) is not read: the
    // frames' file:line are checked against golab's own run only, and the result says so.
    let mut not_checked = Vec::new();
    let dwarf = match Lines::read(binary) {
        Ok(l) => Some(l).filter(|l| !l.is_empty()),
        Err(e) => {
            if let Some(t) = e.downcast_ref::<TooLarge>() {
                not_checked.push(format!("file:line against your binary's line table: {t}"));
            }
            None
        }
    };
    // The file:line dlv shows for a frame, from the binary's own line table: the pc's
    // for the top frame, and for a frame whose pc is its function's entry (a
    // goroutine's saved pc, no call before it) or that runtime.systemstack made up
    // (mstart, systemstack_switch); else the call's, the instruction before the return
    // address (dlv's `Stackframe.Call`, pkg/proc/stack.go).
    let expected_line = |top: bool, pc: u64, func: &str| -> Option<(String, u32)> {
        let lines = dwarf.as_ref()?;
        let at_entry = elf
            .as_ref()
            .and_then(|e| e.describe(pc))
            .is_some_and(|d| !d.contains('+'));
        let made_up = matches!(func, "runtime.mstart" | "runtime.systemstack_switch");
        let look = if top || at_entry || made_up || pc == 0 {
            pc
        } else {
            pc - 1
        };
        let (file, line) = lines.at(look)?;
        Some((base_name(file), line))
    };
    let check_dwarf = |n: usize,
                       what: &str,
                       func: &str,
                       want: Option<(String, u32)>,
                       said: (String, u32),
                       findings: &mut Vec<String>,
                       facts: &mut usize| {
        let Some((file, line)) = want else { return };
        // `at :0`: dlv found no line for the frame (its line-table cache sometimes
        // fails on a return address): no claim to check.
        if line == 0 || said.0.is_empty() || said.1 == 0 {
            return;
        }
        *facts += 1;
        if said != (file.clone(), line) {
            findings.push(format!(
                "line {}: {what} {func} at {}:{}, but in your binary's line table it is at {file}:{line}",
                n + 1,
                said.0,
                said.1
            ));
        }
    };
    let in_function = |pc: u64, f: &str| -> Option<bool> {
        let d = elf.as_ref()?.describe(pc)?;
        let base = d
            .split('+')
            .next()
            .unwrap_or(&d)
            .trim_end_matches(".abi0")
            .to_string();
        Some(base == f)
    };
    // What golab's own run of this binary saw: file:line by pc, and by function (frame 0).
    let mut by_pc: std::collections::HashMap<u64, (String, u32)> = Default::default();
    let mut by_function: std::collections::HashMap<String, Vec<(String, u32)>> = Default::default();
    for h in &obs.dlv.hits {
        for (i, f) in h.stack.iter().enumerate() {
            if f.pc != 0 && !f.file.is_empty() {
                by_pc.insert(f.pc, (base_name(&f.file), f.line));
            }
            if i == 0 {
                by_function
                    .entry(f.function.clone())
                    .or_default()
                    .push((base_name(&f.file), f.line));
            }
        }
    }
    let check_fl = |n: usize,
                    what: &str,
                    func: &str,
                    pc: Option<u64>,
                    fl: Option<(String, u32)>,
                    findings: &mut Vec<String>,
                    facts: &mut usize| {
        let Some((file, line)) = fl else { return };
        if file.is_empty() || line == 0 {
            return;
        }
        // A pc: what the binary's line table says there (frame 0 of a stop, or where a
        // breakpoint was set).
        if let Some(pc) = pc
            && let Some(want) = expected_line(true, pc, func)
        {
            check_dwarf(n, what, func, Some(want), (file, line), findings, facts);
            return;
        }
        // The line golab's own run saw at this pc, or any line it saw in that function
        // (dlv shows a goroutine's saved pc, its function's entry, at the declaration).
        let known: Vec<(String, u32)> = match pc.and_then(|p| by_pc.get(&p)) {
            Some(x) => {
                let mut v = vec![x.clone()];
                v.extend(by_function.get(func).cloned().unwrap_or_default());
                v
            }
            None => match by_function.get(func) {
                Some(v) if pc.is_none() => v.clone(),
                _ => return,
            },
        };
        *facts += 1;
        if !known.contains(&(file.clone(), line)) {
            findings.push(format!(
                "line {}: {what} {func} at {file}:{line}, but in your binary it is at {}",
                n + 1,
                known
                    .iter()
                    .map(|(f, l)| format!("{f}:{l}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
    };
    let (mut sets, mut stops) = (0, Vec::new());
    // Breakpoint number -> (function, hits seen so far).
    let mut numbered: std::collections::HashMap<u32, (String, u32)> = Default::default();
    // Breakpoint address -> its number (a stop before dlv 1.21 names no breakpoint: its
    // pc does).
    let mut by_addr: std::collections::HashMap<u64, u32> = Default::default();
    let mut entry_rsp: Option<u64> = None;
    let mut last_stop: Option<String> = None;
    let mut regs_lines: Vec<(usize, String)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    // The frame whose `at FILE:LINE` comes on the next line: (its line, top, pc, function).
    let mut frame: Option<(usize, bool, u64, String)> = None;
    // The stops of one `continue` (several threads may stop at once; dlv prints each,
    // and every line of one breakpoint shows its count after all of them): (line,
    // breakpoint, total), checked together when the next prompt comes.
    let mut group: Vec<(usize, u32, u32)> = Vec::new();
    for (n, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with("(dlv)") {
            check_counts(&mut group, &mut numbered, &mut findings);
        }
        // dlv's prompt before what it printed (commands piped in, or pasted together).
        let mut t = l.trim();
        while let Some(r) = t.strip_prefix("(dlv)") {
            t = r.trim_start();
        }
        if let Some(at) = t.strip_prefix("at ")
            && let Some((_, top, pc, func)) = frame.take()
            && let Some(said) = file_line(at)
        {
            check_dwarf(
                n,
                "a frame of",
                &func,
                expected_line(top, pc, &func),
                said,
                &mut findings,
                &mut facts,
            );
            continue;
        }
        frame = None;
        // `restart`: the breakpoints stay, their counts start again.
        if t.starts_with("Process restarted with PID") {
            for (_, seen) in numbered.values_mut() {
                *seen = 0;
            }
        }
        // What dlv printed, not what the student typed (`thread 12345` is a command).
        if !(l.trim_start().starts_with("(dlv)") && is_command(t)) {
            for w in hex_words(t) {
                if is_stack_address(w) {
                    per_run.push(format!("stack address {w:#x}"));
                }
            }
            for tid in thread_ids(t) {
                per_run.push(format!("thread {tid}"));
            }
        }
        if let Some(v) = t.strip_prefix("Rsp = ")
            && let Some(a) = hex_words(v).first()
            && last_stop.is_none()
        {
            entry_rsp = entry_rsp.or(Some(*a));
        }
        if let Some((addrs, func)) = set_line(t) {
            sets += 1;
            if let Some(num) = t
                .strip_prefix("Breakpoint ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|x| x.parse::<u32>().ok())
            {
                numbered.insert(num, (func.clone(), 0));
                for a in &addrs {
                    by_addr.insert(*a, num);
                }
            }
            let ours = obs.dlv.placed(&func).map(|p| p.addrs.clone());
            match ours {
                Some(mut o) if !o.is_empty() => {
                    facts += 1;
                    let mut a = addrs.clone();
                    a.sort();
                    o.sort();
                    // A `FILE:LINE` breakpoint is named by its function too (dlv prints
                    // `for main.main() ./main.go:6`): any breakpoint golab placed there counts.
                    let any_placed = obs.dlv.breakpoints.iter().any(|p| {
                        let mut x = p.addrs.clone();
                        x.sort();
                        x == a
                    });
                    // One dlv breakpoint of a lab breakpoint's group (the wrapper's, or
                    // the real function's that the notes' tip added) is part of it.
                    let part = a.iter().all(|x| o.contains(x));
                    // A `FILE:LINE` breakpoint golab did not place itself: each address
                    // in the function, at that line by the binary's line table.
                    let at_its_line = file_line(t.split("()").nth(1).unwrap_or("")).is_some_and(
                        |(file, line)| {
                            line > 0
                                && a.iter().all(|x| {
                                    in_function(*x, &func) == Some(true)
                                        && expected_line(true, *x, &func)
                                            == Some((file.clone(), line))
                                })
                        },
                    );
                    if !part && !any_placed && !at_its_line {
                        findings.push(format!("line {}: breakpoint on {func} at {}, but on your program it resolves to {}", n + 1, hexes(&addrs), hexes(&o)));
                    }
                }
                _ => {
                    for a in &addrs {
                        if let Some(inside) = in_function(*a, &func) {
                            facts += 1;
                            if !inside {
                                findings.push(format!(
                                    "line {}: {a:#x} is not in {func} in your program",
                                    n + 1
                                ));
                            }
                        }
                    }
                }
            }
            if addrs.len() == 1 {
                let after = t.split("()").nth(1).unwrap_or("");
                check_fl(
                    n,
                    "breakpoint on",
                    &func,
                    Some(addrs[0]),
                    file_line(after),
                    &mut findings,
                    &mut facts,
                );
            }
        } else if let Some((func, pc)) = stop_line(t) {
            if let Some(pc) = pc
                && let Some(inside) = in_function(pc, &func)
            {
                facts += 1;
                if !inside {
                    findings.push(format!("line {}: a stop in {func} at pc {pc:#x}, which your program does not have there", n + 1));
                }
            }
            // `[Breakpoint N]` (or the breakpoint set at the stop's pc): its hit count
            // goes up by one at each of its stops, over all its locations.
            let total = t
                .split("total:")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .and_then(|x| x.trim().parse::<u32>().ok());
            let named = t
                .strip_prefix("> [Breakpoint ")
                .and_then(|r| r.split(']').next())
                .and_then(|x| x.parse::<u32>().ok());
            if let Some(total) = total {
                facts += 1;
                match named.or_else(|| pc.and_then(|p| by_addr.get(&p).copied())) {
                    Some(num) => match numbered.get(&num) {
                        None => findings.push(format!(
                            "line {}: a stop at breakpoint {num}, which the transcript never set",
                            n + 1
                        )),
                        Some(_) => group.push((n, num, total)),
                    },
                    None => findings.push(format!(
                        "line {}: a breakpoint's stop (total:{total}) at {}, where the transcript set no breakpoint",
                        n + 1,
                        pc.map(|p| format!("{p:#x}")).unwrap_or_else(|| "a pc it does not give".into())
                    )),
                }
            }
            let after = t.split("()").nth(1).unwrap_or("");
            // Frame 0 of a breakpoint's stop: where golab's run stopped in that function.
            if !after.trim_start().starts_with("<autogenerated>") {
                check_fl(
                    n,
                    "a stop in",
                    &func,
                    pc,
                    file_line(after),
                    &mut findings,
                    &mut facts,
                );
            }
            last_stop = Some(func.clone());
            stops.push(func);
        } else if let Some((index, pc, func)) = frame_line(t) {
            frame = Some((n, index == 0, pc, func.clone()));
            // ` N  0xPC in FUNC` then `    at FILE:LINE`.
            if let Some(inside) = in_function(pc, &func) {
                facts += 1;
                if !inside {
                    findings.push(format!(
                        "line {}: a frame of {func} at pc {pc:#x}, which your program does not have there",
                        n + 1
                    ));
                }
            }
            // Its `at FILE:LINE`, on the next line, against the line table (above).
        } else if last_stop.as_deref() == Some("runtime.rt0_go") && t.starts_with("0x") {
            regs_lines.push((n, t.to_string()));
        }
    }
    // rt0_go is reached by jumps from the entry: its argv (SI) is the entry's SP + 8.
    if let (Some(rsp), Some((n, argv))) = (entry_rsp, regs_lines.get(1))
        && let Some(v) = hex_words(argv).first()
        && is_stack_address(*v)
    {
        facts += 1;
        if *v != rsp + 8 {
            findings.push(format!(
                "line {}: rt0_go's argv is {v:#x}, but the stack pointer at the entry was {rsp:#x}: it must be {:#x}",
                n + 1,
                rsp + 8
            ));
        }
    }
    if sets == 0 && stops.is_empty() {
        findings.push("no dlv breakpoint or stop lines found (expected `Breakpoint N set at ...` and `> FUNC() FILE:LINE ...`)".into());
    }
    // The first stops of the startup functions must follow the reference's order.
    let go = GoVersion::parse(&obs.go_version).unwrap_or(GoVersion::new(1, 19, 0));
    let chain: Vec<String> = startup::chain(&Profile::for_version(go).0)
        .into_iter()
        .map(|s| s.function)
        .collect();
    let mut first: Vec<String> = Vec::new();
    for f in &stops {
        if chain.contains(f) && !first.contains(f) {
            first.push(f.clone());
        }
    }
    let expected: Vec<String> = chain
        .iter()
        .filter(|f| first.contains(f))
        .cloned()
        .collect();
    if !first.is_empty() {
        facts += 1;
    }
    if first != expected {
        findings.push(format!(
            "the stops come in an order no run takes: {} (the startup path goes {})",
            first.join(" -> "),
            expected.join(" -> ")
        ));
    }
    check_counts(&mut group, &mut numbered, &mut findings);
    // Values from a transcript that is not even consistent with its binary prove nothing
    // (a made-up one could list every thread id to frame others); a real one has a few
    // dozen: the first MAX_PER_RUN, in order.
    if !findings.is_empty() {
        per_run.clear();
    }
    let mut seen = std::collections::HashSet::new();
    per_run.retain(|v| seen.insert(v.clone()));
    per_run.truncate(MAX_PER_RUN);
    TranscriptCheck {
        genuine: findings.is_empty(),
        findings,
        facts_checked: facts,
        per_run,
        not_checked,
    }
}

/// The most per-run values kept from one transcript.
pub const MAX_PER_RUN: usize = 64;

/// The most bytes of a transcript read (a real session of a lab is well under this).
pub const MAX_BYTES: u64 = 4 << 20;

/// A line (after the prompt) that is a dlv command the student typed.
fn is_command(t: &str) -> bool {
    const COMMANDS: &[&str] = &[
        "thread",
        "tr",
        "goroutine",
        "gr",
        "goroutines",
        "grs",
        "threads",
        "break",
        "b",
        "continue",
        "c",
        "bt",
        "stack",
        "regs",
        "print",
        "p",
        "x",
        "examinemem",
        "disass",
        "disassemble",
        "si",
        "step-instruction",
        "n",
        "next",
        "s",
        "step",
        "so",
        "stepout",
        "restart",
        "r",
        "clear",
        "clearall",
        "exit",
        "quit",
        "q",
        "args",
        "locals",
        "vars",
        "frame",
        "up",
        "down",
        "list",
        "ls",
        "l",
        "on",
        "condition",
        "cond",
        "set",
        "display",
    ];
    let w = t.split_whitespace().next().unwrap_or("");
    COMMANDS.contains(&w)
}

/// Thread ids (the kernel's, so anew each run) in the forms dlv prints them: `thread N`
/// at the end of a stop line, `(thread N)` of a goroutine, `Thread N at` of `threads`,
/// and both of `Switched from N to M` (a goroutine switch says `(thread N)` instead).
/// Small numbers (pid namespaces, dlv's own counters) are left out.
fn thread_ids(t: &str) -> Vec<u64> {
    let mut v = Vec::new();
    let num = |w: Option<&str>| -> Option<u64> {
        w?.trim_end_matches([')', ',', ']'])
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1000)
    };
    let words: Vec<&str> = t.split_whitespace().collect();
    let stop = t.starts_with("> ");
    let listing = t.trim_start_matches(['*', ' ']).starts_with("Thread ");
    for (i, w) in words.iter().enumerate() {
        let ok = match *w {
            "(thread" | "[thread" => true,
            "thread" => stop,
            "Thread" => listing && i <= 1,
            _ => false,
        };
        if ok && let Some(n) = num(words.get(i + 1).copied()) {
            v.push(n);
        }
    }
    if let Some(rest) = t.strip_prefix("Switched from ")
        && !rest.contains("(thread")
        && let Some((a, b)) = rest.split_once(" to ")
    {
        v.extend(num(Some(a.trim())));
        v.extend(num(b.split_whitespace().next()));
    }
    v
}

/// A backtrace frame line: ` 0  0x0000000000462980 in _rt0_amd64`: (index, pc, function).
fn frame_line(l: &str) -> Option<(u32, u64, String)> {
    let mut w = l.split_whitespace();
    let index = w.next()?.parse::<u32>().ok()?;
    let pc = u64::from_str_radix(w.next()?.strip_prefix("0x")?, 16).ok()?;
    if w.next()? != "in" {
        return None;
    }
    let func = w.next()?.to_string();
    (pc != 0 && func != "?").then_some((index, pc, func))
}

fn hexes(v: &[u64]) -> String {
    v.iter()
        .map(|a| format!("{a:#x}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_at_one_breakpoint_in_one_stop_share_its_count() {
        let mut numbered: std::collections::HashMap<u32, (String, u32)> =
            [(17, ("runtime.mstart1".to_string(), 1))].into();
        let mut findings = Vec::new();
        // After one earlier stop, two threads stop at breakpoint 17 at once: dlv prints
        // total:3 on both lines.
        let mut group = vec![(972, 17, 3), (973, 17, 3)];
        check_counts(&mut group, &mut numbered, &mut findings);
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(numbered[&17].1, 3);
        assert!(group.is_empty());
        // The next stop, alone: total:4.
        check_counts(&mut vec![(990, 17, 4)], &mut numbered, &mut findings);
        assert!(findings.is_empty(), "{findings:?}");
        // Counts no run gives: one stop reporting two hits, two stops reporting one each.
        check_counts(&mut vec![(1000, 17, 6)], &mut numbered, &mut findings);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].contains("stop number 5"), "{findings:?}");
        findings.clear();
        check_counts(
            &mut vec![(1010, 17, 6), (1011, 17, 7)],
            &mut numbered,
            &mut findings,
        );
        // (the first line's total:6 is not the group's total:7; the second's is)
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0].contains("2 threads stopped at it here"),
            "{findings:?}"
        );
    }

    #[test]
    fn reads_dlv_lines() {
        assert_eq!(
            set_line(
                "Breakpoint 2 set at 0x436aaa,0x45e5a0 for runtime.schedinit() <multiple locations>:0"
            ),
            Some((vec![0x436aaa, 0x45e5a0], "runtime.schedinit".into()))
        );
        assert_eq!(
            stop_line("> main.main() ./main.go:3 (hits goroutine(1):1 total:1) (PC: 0x45f1c6)"),
            Some(("main.main".into(), Some(0x45f1c6)))
        );
        assert_eq!(
            stop_line(
                "> [Breakpoint 1] runtime.rt0_go() /x/asm_amd64.s:161 (hits goroutine(0):1 total:1) thread 7"
            ),
            Some(("runtime.rt0_go".into(), None))
        );
        // As dlv 1.20 prints them (golab's dlv-session.txt since the console renderer;
        // recorded from `dlv exec` typed `b runtime.args`, `c`, `c`, and a file:line one).
        assert_eq!(
            stop_line("> runtime.args() <autogenerated>:1 (hits total:1) (PC: 0x45e640)"),
            Some(("runtime.args".into(), Some(0x45e640)))
        );
        assert_eq!(
            set_line("Breakpoint 21 set at 0x45f1e5 for main.main() ./main.go:6"),
            Some((vec![0x45f1e5], "main.main".into()))
        );
        assert_eq!(stop_line("=> 161:\tMOVQ\tDI, AX\t\t// argc"), None);
        // Thread ids as dlv 1.20 prints them (`threads`, `thread N`, `goroutine N`).
        assert_eq!(
            thread_ids("* Thread 81234 at 0x45bb40 /x/asm_amd64.s:161 runtime.rt0_go"),
            vec![81234]
        );
        assert_eq!(
            thread_ids("Switched from 81234 to 81240"),
            vec![81234, 81240]
        );
        assert_eq!(
            thread_ids("Switched from 0 to 1 (thread 81234)"),
            vec![81234]
        );
        assert_eq!(
            thread_ids(
                "> [Breakpoint 1] runtime.rt0_go() /x/asm_amd64.s:161 (hits goroutine(0):1 total:1) thread 7"
            ),
            Vec::<u64>::new()
        );
        assert_eq!(stop_line("    # golab: 0x4bbc60 is &runtime.m0"), None);
    }
}

//! A student's dlv transcript, checked against the binary of their program: could it
//! have come from a real session?
//!
//! What dlv prints is specific to one binary: `Breakpoint 1 set at 0x45bb40 for
//! runtime.rt0_go() .../asm_amd64.s:161` names the address a breakpoint resolves to, and
//! `> main.main() ./main.go:3 (hits goroutine(1):1 total:1) (PC: 0x45f1c6)` a stop's pc.
//! Each must match the student's own build (its symbols, and the addresses golab's dlv
//! session placed), and the stops must come in an order a real run allows.

use super::model::TranscriptCheck;
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

pub fn check(text: &str, obs: &Observation, binary: &Path) -> TranscriptCheck {
    let mut findings = Vec::new();
    let elf = Elf::read(binary).ok();
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
    let (mut sets, mut stops) = (0, Vec::new());
    for (n, l) in text.lines().enumerate() {
        if let Some((addrs, func)) = set_line(l) {
            sets += 1;
            let ours = obs.dlv.placed(&func).map(|p| p.addrs.clone());
            match ours {
                Some(mut o) if !o.is_empty() => {
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
                    if !part && !any_placed {
                        findings.push(format!("line {}: breakpoint on {func} at {}, but on your program it resolves to {}", n + 1, hexes(&addrs), hexes(&o)));
                    }
                }
                _ => {
                    for a in &addrs {
                        if in_function(*a, &func) == Some(false) {
                            findings.push(format!(
                                "line {}: {a:#x} is not in {func} in your program",
                                n + 1
                            ));
                        }
                    }
                }
            }
        } else if let Some((func, pc)) = stop_line(l) {
            if let Some(pc) = pc
                && in_function(pc, &func) == Some(false)
            {
                findings.push(format!("line {}: a stop in {func} at pc {pc:#x}, which your program does not have there", n + 1));
            }
            stops.push(func);
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
    if first != expected {
        findings.push(format!(
            "the stops come in an order no run takes: {} (the startup path goes {})",
            first.join(" -> "),
            expected.join(" -> ")
        ));
    }
    TranscriptCheck {
        genuine: findings.is_empty(),
        findings,
    }
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
        assert_eq!(stop_line("    # golab: 0x4bbc60 is &runtime.m0"), None);
    }
}

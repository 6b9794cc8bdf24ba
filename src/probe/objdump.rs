//! `objdump -d`: the static callers of functions, read from the binary's machine code.
//!
//! Every `call` (and tail `jmp`) whose target is the start of a function symbol counts
//! as a call site of that function from the symbol that contains the instruction.
//! Calls through a register (function values, `systemstack(fn)`) are invisible here,
//! which is why the labs also watch callers at run time.

use crate::machine::{Cmd, Machine};
use anyhow::{Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// target function -> the symbols whose code calls or jumps to it.
pub type CallSites = BTreeMap<String, BTreeSet<String>>;

pub fn call_sites(
    m: &Machine,
    objdump: &Path,
    binary: &Path,
    targets: &[String],
) -> Result<(CallSites, BTreeSet<String>)> {
    let out = m.run(
        Cmd::new(objdump)
            .args(["-d", "--no-show-raw-insn", "-M", "att"])
            .arg(binary),
        "objdump -d",
        Duration::from_secs(300),
    )?;
    if !out.ok() {
        bail!(
            "objdump -d {} failed: {}",
            binary.display(),
            out.stderr.trim()
        );
    }
    Ok(parse(&out.stdout, targets))
}

/// Parses objdump's disassembly; returns the call sites of `targets` and every function
/// symbol seen (to tell "never called" from "not in the binary").
pub fn parse(text: &str, targets: &[String]) -> (CallSites, BTreeSet<String>) {
    let wanted: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
    let mut sites: CallSites = BTreeMap::new();
    let mut symbols = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        // "000000000043d3e0 <runtime.newproc>:"
        if let Some(rest) = line.strip_suffix(">:") {
            if let Some((_, name)) = rest.split_once(" <") {
                current = Some(name.to_string());
                symbols.insert(name.to_string());
            }
            continue;
        }
        // "  43d3f5:\tcall   43d4e0 <runtime.newproc1>"
        let Some((_, insn)) = line.split_once(":\t") else {
            continue;
        };
        let mut words = insn.split_whitespace();
        let Some(op) = words.next() else { continue };
        if !matches!(op, "call" | "callq" | "jmp" | "jmpq") {
            continue;
        }
        let Some(target) = insn
            .rsplit_once(" <")
            .and_then(|(_, t)| t.strip_suffix('>'))
        else {
            continue;
        };
        if target.contains('+') || !wanted.contains(target) {
            continue; // a jump inside a function, or a function nobody asked about
        }
        if let Some(cur) = &current
            && cur != target
        {
            sites
                .entry(target.to_string())
                .or_default()
                .insert(cur.clone());
        }
    }
    (sites, symbols)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_calls_and_tail_jumps_to_function_starts() {
        let text = "\n0000000000401000 <runtime.schedule>:\n  401000:\tcall   402000 <runtime.findRunnable>\n  401005:\tjmp    401000 <runtime.schedule>\n  40100a:\tjmp    401003 <runtime.schedule+0x3>\n\n0000000000403000 <runtime.park_m>:\n  403000:\tcall   401000 <runtime.schedule>\n\n0000000000404000 <runtime.mstart0.abi0>:\n  404000:\tjmp    405000 <runtime.mstart0>\n";
        let (s, syms) = super::parse(
            text,
            &[
                "runtime.schedule".into(),
                "runtime.findRunnable".into(),
                "runtime.mstart0".into(),
            ],
        );
        assert_eq!(
            s["runtime.schedule"].iter().collect::<Vec<_>>(),
            ["runtime.park_m"]
        );
        assert_eq!(
            s["runtime.findRunnable"].iter().collect::<Vec<_>>(),
            ["runtime.schedule"]
        );
        assert_eq!(
            s["runtime.mstart0"].iter().collect::<Vec<_>>(),
            ["runtime.mstart0.abi0"]
        );
        assert!(syms.contains("runtime.park_m"));
    }
}

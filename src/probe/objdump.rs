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

/// The most bytes of objdump's output read: a lab program's disassembly is 3-6 MB (the
/// whole runtime); a binary whose code prints more (a sled of nops in a cgo preamble's
/// asm printed 3 GB) is not disassembled further.
pub const MAX_OUTPUT: u64 = 64 << 20;

/// objdump's output went past `MAX_OUTPUT`: the static callers are not known (the check
/// that needs them is not checked, with this reason), and nothing was held whole.
#[derive(Debug)]
pub struct TooLarge(pub String);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TooLarge {}

pub fn call_sites(
    m: &Machine,
    objdump: &Path,
    binary: &Path,
    targets: &[String],
) -> Result<(CallSites, BTreeSet<String>)> {
    call_sites_within(m, objdump, binary, targets, MAX_OUTPUT)
}

/// [`call_sites`] reading at most `max_bytes` of objdump's output, parsed as it comes.
pub fn call_sites_within(
    m: &Machine,
    objdump: &Path,
    binary: &Path,
    targets: &[String],
    max_bytes: u64,
) -> Result<(CallSites, BTreeSet<String>)> {
    let mut cmd = Cmd::new(objdump);
    cmd.args(["-d", "--no-show-raw-insn", "-M", "att"])
        .arg(binary);
    let mut parser = Parser::new(targets);
    let out = crate::exec::run_lines(
        m.command(&cmd),
        "objdump -d",
        Duration::from_secs(300),
        max_bytes,
        |l: &str| parser.line(l),
    )?;
    if out.cut {
        return Err(TooLarge(format!(
            "objdump -d printed more than {} MiB for your binary (a program of this lab prints a few MiB): its machine code is not read further",
            max_bytes >> 20
        ))
        .into());
    }
    if !out.status.success() {
        bail!(
            "objdump -d {} failed: {}",
            binary.display(),
            out.stderr.trim()
        );
    }
    Ok(parser.finish())
}

/// objdump's disassembly, read a line at a time.
pub struct Parser {
    wanted: BTreeSet<String>,
    sites: CallSites,
    symbols: BTreeSet<String>,
    current: Option<String>,
}

impl Parser {
    pub fn new(targets: &[String]) -> Parser {
        Parser {
            wanted: targets.iter().cloned().collect(),
            sites: BTreeMap::new(),
            symbols: BTreeSet::new(),
            current: None,
        }
    }

    pub fn line(&mut self, line: &str) {
        // "000000000043d3e0 <runtime.newproc>:"
        if let Some(rest) = line.strip_suffix(">:") {
            if let Some((_, name)) = rest.split_once(" <") {
                self.current = Some(name.to_string());
                self.symbols.insert(name.to_string());
            }
            return;
        }
        // "  43d3f5:\tcall   43d4e0 <runtime.newproc1>"
        let Some((_, insn)) = line.split_once(":\t") else {
            return;
        };
        let mut words = insn.split_whitespace();
        let Some(op) = words.next() else { return };
        if !matches!(op, "call" | "callq" | "jmp" | "jmpq") {
            return;
        }
        let Some(target) = insn
            .rsplit_once(" <")
            .and_then(|(_, t)| t.strip_suffix('>'))
        else {
            return;
        };
        if target.contains('+') || !self.wanted.contains(target) {
            return; // a jump inside a function, or a function nobody asked about
        }
        if let Some(cur) = &self.current
            && cur != target
        {
            self.sites
                .entry(target.to_string())
                .or_default()
                .insert(cur.clone());
        }
    }

    /// The call sites of the targets, and every function symbol seen (to tell "never
    /// called" from "not in the binary").
    pub fn finish(self) -> (CallSites, BTreeSet<String>) {
        (self.sites, self.symbols)
    }
}

/// Parses objdump's disassembly; returns the call sites of `targets` and every function
/// symbol seen (to tell "never called" from "not in the binary").
pub fn parse(text: &str, targets: &[String]) -> (CallSites, BTreeSet<String>) {
    let mut p = Parser::new(targets);
    for line in text.lines() {
        p.line(line);
    }
    p.finish()
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

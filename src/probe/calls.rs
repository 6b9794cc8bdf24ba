//! The static callers of functions, read from the binary's machine code in-process
//! (object for the sections and symbols, iced-x86 to decode).
//!
//! Every `call` (and tail `jmp`) whose target is the start of a function symbol counts
//! as a call site of that function from the symbol that contains the instruction.
//! Calls through a register (function values, `systemstack(fn)`) are invisible here,
//! which is why the labs also watch callers at run time.
//!
//! The code is decoded as `objdump -d` does it: a linear sweep that starts again at every
//! text symbol, so a symbol's instructions are those from its address to the next
//! symbol's. It runs on the host's copy of the binary (the one the ELF reader reads), so
//! a lab VM is not asked to print and ship megabytes of disassembly, and nothing of a
//! student's machine code is held as text. (golab used to parse `objdump -d`; binutils
//! stays on the lab machine for the notes' own commands.)

use anyhow::{Context, Result};
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// target function -> the symbols whose code calls or jumps to it.
pub type CallSites = BTreeMap<String, BTreeSet<String>>;

/// The most machine code decoded. A lab program's is about 1 MiB (the whole runtime); a
/// binary with more (a sled of nops in a cgo preamble's asm, attack round 4) is not read.
pub const MAX_CODE: u64 = 64 << 20;
const MIB: f64 = (1 << 20) as f64;

/// The binary's machine code is larger than the limit: the static callers are not known
/// (the check that needs them is not checked, with this reason).
pub use super::TooLarge;

/// The call sites of `targets` in the x86-64 ELF file at `binary`.
pub fn call_sites(binary: &Path, targets: &[String]) -> Result<CallSites> {
    call_sites_within(binary, targets, MAX_CODE)
}

/// [`call_sites`] decoding at most `max_code` bytes of machine code.
pub fn call_sites_within(binary: &Path, targets: &[String], max_code: u64) -> Result<CallSites> {
    let data =
        std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
    let file = object::File::parse(&*data)
        .with_context(|| format!("{} is not an ELF file object can read", binary.display()))?;
    if file.architecture() != object::Architecture::X86_64 {
        anyhow::bail!(
            "{} is built for {:?}: the lab reads x86-64 machine code",
            binary.display(),
            file.architecture()
        );
    }
    let code: Vec<_> = file
        .sections()
        .filter(|s| s.kind() == SectionKind::Text)
        .collect();
    let size: u64 = code.iter().map(|s| s.size()).sum();
    if size > max_code {
        return Err(TooLarge(format!(
            "your binary has {:.1} MiB of machine code, more than {:.1} MiB (a program of this lab has about 1 MiB): its call sites are not read",
            size as f64 / MIB,
            max_code as f64 / MIB
        ))
        .into());
    }
    // The text symbols in order: each starts a run of instructions that ends at the next.
    let mut starts: Vec<(u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text)
        .filter_map(|s| Some((s.address(), s.name().ok()?.to_string())))
        .collect();
    starts.sort();
    // Every target by its address, aliases included (two symbols at one address are one
    // function: a call there calls both names); then one symbol per address starts a run.
    let wanted: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
    let mut target_at: HashMap<u64, Vec<String>> = HashMap::new();
    for (a, n) in starts.iter().filter(|(_, n)| wanted.contains(n.as_str())) {
        target_at.entry(*a).or_default().push(n.clone());
    }
    starts.dedup_by_key(|s| s.0);
    let mut sites = CallSites::new();
    for section in &code {
        let bytes = section
            .data()
            .with_context(|| format!("cannot read the code of {}", binary.display()))?;
        let (lo, hi) = (section.address(), section.address() + bytes.len() as u64);
        let first = starts.partition_point(|s| s.0 < lo);
        let last = starts.partition_point(|s| s.0 < hi);
        for i in first..last {
            let (start, caller) = &starts[i];
            let end = starts.get(i + 1).map_or(hi, |s| s.0.min(hi));
            let slice = &bytes[(start - lo) as usize..(end - lo) as usize];
            for target in branch_targets(slice, *start) {
                for t in target_at.get(&target).into_iter().flatten() {
                    if t != caller {
                        sites.entry(t.clone()).or_default().insert(caller.clone());
                    }
                }
            }
        }
    }
    Ok(sites)
}

/// The targets of the direct `call`s and unconditional `jmp`s in `code`, which starts at
/// address `ip`.
fn branch_targets(code: &[u8], ip: u64) -> Vec<u64> {
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    let mut out = Vec::new();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        if matches!(insn.mnemonic(), Mnemonic::Call | Mnemonic::Jmp)
            && matches!(
                insn.op0_kind(),
                OpKind::NearBranch64 | OpKind::NearBranch32 | OpKind::NearBranch16
            )
        {
            out.push(insn.near_branch_target());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// Hand-assembled x86-64: a call, a tail jump, a short jump inside the function, a
    /// call through a register (invisible), and bytes that do not decode.
    #[test]
    fn finds_direct_calls_and_tail_jumps_only() {
        // at 0x1000: call 0x2000 (e8 rel32); jmp 0x1000 (eb fe: itself, a jump inside);
        //            call *%rax (ff d0); jmp 0x3000 (e9 rel32); a lone 0x0f (bad).
        let mut code = vec![0xe8];
        code.extend_from_slice(&(0x2000i32 - 0x1005).to_le_bytes());
        code.extend_from_slice(&[0xeb, 0xfe, 0xff, 0xd0, 0xe9]);
        let next = 0x1000 + code.len() as i32 + 4;
        code.extend_from_slice(&(0x3000 - next).to_le_bytes());
        code.push(0x0f);
        assert_eq!(
            super::branch_targets(&code, 0x1000),
            [0x2000, 0x1005, 0x3000]
        );
    }
}

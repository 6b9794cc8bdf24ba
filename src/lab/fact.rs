//! The facts a lab's `value` checks compare with (`equals: argc`, `symbol NAME`, a
//! number, a Go constant's name): what the lab file says. What each one is in a run
//! (`Fact::value`) is the checks' business (src/check.rs).

use anyhow::{Result, bail};

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
}

/// A Go identifier or a dotted one (`runtime.waitReasonChanReceive`).
pub fn is_go_name(s: &str) -> bool {
    s.split('.').all(|p| {
        let mut c = p.chars();
        c.next().is_some_and(|f| f.is_alphabetic() || f == '_')
            && c.all(|x| x.is_alphanumeric() || x == '_')
    })
}

/// A decimal or `0x` hexadecimal number.
pub fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

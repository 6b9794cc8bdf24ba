//! Who calls the scheduler's functions, per Go version: tables read from each
//! version's runtime source by `tools/gocallers` (a go/ast program; go1.17 from the
//! source notes in GO-RUNTIME-SOURCE.md), bundled as JSON.
//!
//! These are facts of the source, not expected output of golab: the scheduler-callers
//! lab holds the binary's machine code and the live process against them.

use crate::toolchain::GoVersion;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Deserialize)]
pub struct Table {
    pub go: String,
    pub source: String,
    pub functions: BTreeMap<String, Function>,
    #[serde(default)]
    pub absent: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Function {
    #[serde(default)]
    pub defined: Option<String>,
    pub callers: Vec<Caller>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Caller {
    pub caller: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u32>,
    #[serde(default)]
    pub closure: bool,
    /// `call`, or `funcvalue` when the function is handed over as a value (newm(sysmon)).
    #[serde(default = "call_kind")]
    pub kind: String,
}

fn call_kind() -> String {
    "call".into()
}

const TABLES: &[(u32, &str)] = &[
    (15, include_str!("callers/go1.15.json")),
    (17, include_str!("callers/go1.17.json")),
    (19, include_str!("callers/go1.19.json")),
    (21, include_str!("callers/go1.21.json")),
    (22, include_str!("callers/go1.22.json")),
    (23, include_str!("callers/go1.23.json")),
    (24, include_str!("callers/go1.24.json")),
    (25, include_str!("callers/go1.25.json")),
    (26, include_str!("callers/go1.26.json")),
    (27, include_str!("callers/go1.27.json")),
];

/// A function handed to `newm` runs as the new M's `mstartfn`, which `mstart1` calls:
/// at run time that is its caller.
pub const FUNC_VALUE_RUNNER: &str = "runtime.mstart1";

impl Table {
    /// The table for `v`'s release line, or the nearest one with a note saying so.
    pub fn for_version(v: GoVersion) -> Result<(Table, Option<String>)> {
        let (minor, text) = TABLES
            .iter()
            .min_by_key(|(m, _)| (*m as i64 - v.minor as i64).abs())
            .copied()
            .expect("tables");
        let t: Table = serde_json::from_str(text)
            .with_context(|| format!("bundled caller table go1.{minor}"))?;
        let note = (minor != v.minor).then(|| {
            format!(
                "no caller table for go{}: using go1.{minor}'s (read from {})",
                v.line(),
                t.source
            )
        });
        Ok((t, note))
    }

    /// The name this version uses for `name` (`findrunnable` became `findRunnable` in 1.19).
    pub fn resolve(&self, name: &str) -> Option<String> {
        if self.functions.contains_key(name) {
            return Some(name.to_string());
        }
        self.functions
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// Direct callers of `f` (enclosing top-level functions).
    pub fn static_callers(&self, f: &str) -> BTreeSet<String> {
        self.functions
            .get(f)
            .map(|x| {
                x.callers
                    .iter()
                    .filter(|c| c.kind == "call")
                    .map(|c| c.caller.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where `caller` calls `f` in the source: `proc.go:2734`, `(closure) debugcall.go:228`.
    pub fn call_sites(&self, f: &str, caller: &str) -> Vec<String> {
        let Some(x) = self.functions.get(f) else {
            return Vec::new();
        };
        x.callers
            .iter()
            .filter(|c| c.caller == caller)
            .map(|c| {
                let at = match (&c.file, c.line) {
                    (Some(file), Some(line)) => format!("{file}:{line}"),
                    (Some(file), None) => file.clone(),
                    _ => "?".into(),
                };
                if c.closure {
                    format!("in a closure, {at}")
                } else {
                    at
                }
            })
            .collect()
    }

    /// Who may be seen calling `f` in a live stack.
    pub fn dynamic_callers(&self, f: &str) -> BTreeSet<String> {
        let mut s = self.static_callers(f);
        if self
            .functions
            .get(f)
            .is_some_and(|x| x.callers.iter().any(|c| c.kind == "funcvalue"))
        {
            s.insert(FUNC_VALUE_RUNNER.to_string());
        }
        s
    }
}

/// A symbol of the binary as the caller it stands for: `F.funcN` -> `F` (a closure),
/// `F.abi0` -> `F` (its ABI wrapper).
pub fn fold_symbol(sym: &str) -> String {
    crate::trace::closure_parent(sym.strip_suffix(".abi0").unwrap_or(sym))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go117_agrees_with_the_seed_notes() {
        // The lab notes' answers (found with GoLand for Go 1.17).
        let (t, note) = Table::for_version(GoVersion::new(1, 17, 1)).unwrap();
        assert!(note.is_none());
        let set = |v: &[&str]| {
            v.iter()
                .map(|s| format!("runtime.{s}"))
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(
            t.static_callers("runtime.runqget"),
            set(&["findrunnable", "schedule", "stealWork"])
        );
        let rq = t.static_callers("runtime.runqput");
        assert!(
            set(&["ready", "goyield_m", "newproc", "globrunqget"]).is_subset(&rq),
            "{rq:?}"
        );
        assert_eq!(
            t.static_callers("runtime.globrunqget"),
            set(&["findrunnable", "schedule"])
        );
        assert_eq!(
            t.static_callers("runtime.globrunqput"),
            set(&["debugCallWrap1", "goschedImpl", "exitsyscall0"])
        );
        assert_eq!(
            t.static_callers("runtime.schedule"),
            set(&[
                "mstart1",
                "park_m",
                "goschedImpl",
                "preemptPark",
                "goyield_m",
                "goexit0",
                "exitsyscall0"
            ])
        );
        assert_eq!(t.static_callers("runtime.findrunnable"), set(&["schedule"]));
        assert_eq!(t.dynamic_callers("runtime.sysmon"), set(&["mstart1"]));
    }

    #[test]
    fn findrunnable_is_renamed_in_119() {
        let (t, _) = Table::for_version(GoVersion::new(1, 19, 8)).unwrap();
        assert_eq!(
            t.resolve("runtime.findrunnable").as_deref(),
            Some("runtime.findRunnable")
        );
        assert!(!t.static_callers("runtime.schedule").is_empty());
    }

    #[test]
    fn symbols_fold_into_the_caller_they_stand_for() {
        assert_eq!(fold_symbol("runtime.newproc.func1"), "runtime.newproc");
        assert_eq!(fold_symbol("runtime.mstart0.abi0"), "runtime.mstart0");
        assert_eq!(fold_symbol("runtime.(*p).destroy"), "runtime.(*p).destroy");
    }
}

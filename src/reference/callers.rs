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

/// The lab notes' answers (GoLand's "find usages" on Go 1.17), function by function.
pub const NOTES: &[(&str, &[&str])] = &[
    (
        "runtime.runqget",
        &[
            "runtime.findrunnable",
            "runtime.schedule",
            "runtime.stealWork",
        ],
    ),
    (
        "runtime.runqput",
        &[
            "runtime.ready",
            "runtime.goyield_m",
            "runtime.newproc",
            "runtime.globrunqget",
        ],
    ),
    (
        "runtime.globrunqget",
        &["runtime.findrunnable", "runtime.schedule"],
    ),
    (
        "runtime.globrunqput",
        &[
            "runtime.debugCallWrap1",
            "runtime.goschedImpl",
            "runtime.exitsyscall0",
        ],
    ),
    (
        "runtime.schedule",
        &[
            "runtime.mstart1",
            "runtime.park_m",
            "runtime.goschedImpl",
            "runtime.preemptPark",
            "runtime.goyield_m",
            "runtime.goexit0",
            "runtime.exitsyscall0",
        ],
    ),
    ("runtime.findrunnable", &["runtime.schedule"]),
    ("runtime.sysmon", &["runtime.main"]),
];

/// The ten functions of the scheduler-callers lab, in the notes' order.
pub const FUNCTIONS: &[&str] = &[
    "runtime.runqget",
    "runtime.runqput",
    "runtime.globrunqget",
    "runtime.globrunqput",
    "runtime.schedule",
    "runtime.findrunnable",
    "runtime.stealWork",
    "runtime.execute",
    "runtime.newproc1",
    "runtime.sysmon",
];

/// Where the notes' answer for one function differs from the source of a Go version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Difference {
    pub function: String,
    /// Callers the notes name that this version's source does not have.
    pub gone: Vec<String>,
    /// Callers this version's source has that the notes do not name.
    pub new: Vec<String>,
    /// For each gone caller: the versions (of golab's tables) that still have it.
    pub gone_since: Vec<String>,
}

impl Table {
    /// Who calls `f` as the notes count callers: direct calls, closures as the
    /// function they are in, and `newm(sysmon)` as runtime.main.
    pub fn notes_callers(&self, f: &str) -> BTreeSet<String> {
        self.functions
            .get(f)
            .map(|x| x.callers.iter().map(|c| c.caller.clone()).collect())
            .unwrap_or_default()
    }

    /// The notes' name `n` in this version (findrunnable -> findRunnable).
    fn name_here(&self, n: &str) -> String {
        self.resolve(n).unwrap_or_else(|| n.to_string())
    }

    /// Where the notes' Go 1.17 answers differ from this version's source.
    pub fn notes_differences(&self) -> Vec<Difference> {
        let mut out = Vec::new();
        for (f, said) in NOTES {
            let f_here = self.name_here(f);
            let said: BTreeSet<String> = said.iter().map(|c| self.name_here(c)).collect();
            let here = self.notes_callers(&f_here);
            // debugCallWrap is debugger machinery the notes' IDE did not count.
            let gone: Vec<String> = said.difference(&here).cloned().collect();
            let new: Vec<String> = here
                .difference(&said)
                .filter(|c| !c.starts_with("runtime.debugCallWrap"))
                .cloned()
                .collect();
            if gone.is_empty() && new.is_empty() {
                continue;
            }
            let gone_since = gone
                .iter()
                .map(|c| last_version_with(f, c).unwrap_or_else(|| "none of golab's tables".into()))
                .collect();
            out.push(Difference {
                function: f_here,
                gone,
                new,
                gone_since,
            });
        }
        out
    }

    /// The caller table, one function a block, with the source lines and the notes.
    pub fn render(&self, v: GoVersion) -> String {
        let mut s = format!(
            "Who calls the scheduler's functions in go{} (caller table read from {}; the lab notes answered for Go 1.17)\n",
            v.line(),
            self.source
        );
        let diffs = self.notes_differences();
        for f in FUNCTIONS {
            let f_here = self.name_here(f);
            let Some(x) = self.functions.get(&f_here) else {
                s.push_str(&format!("{f_here:<22} (not in this version)\n"));
                continue;
            };
            let callers = self.notes_callers(&f_here);
            s.push_str(&format!(
                "{f_here:<22} <- {}\n",
                callers.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            for c in &callers {
                let kind = x
                    .callers
                    .iter()
                    .find(|k| &k.caller == c)
                    .map(|k| k.kind.as_str())
                    .unwrap_or("call");
                let how = if kind == "funcvalue" {
                    " (as a function value: newm(sysmon); at run time mstart1 calls it)"
                } else {
                    ""
                };
                s.push_str(&format!(
                    "    {c:<24} {}{how}\n",
                    self.call_sites(&f_here, c).join(", ")
                ));
            }
            let said = NOTES.iter().find(|(n, _)| n == f).map(|(_, c)| *c);
            match (said, diffs.iter().find(|d| d.function == f_here)) {
                (None, _) => s.push_str("    notes: (no answer for this one)\n"),
                (Some(_), None) => s.push_str("    notes: the same\n"),
                (Some(_), Some(d)) => {
                    for (c, since) in d.gone.iter().zip(&d.gone_since) {
                        s.push_str(&format!(
                            "    notes: DIFFERS: \"{} calls {}\" is not true in go{}: {since}\n",
                            c.trim_start_matches("runtime."),
                            f_here.trim_start_matches("runtime."),
                            v.line()
                        ));
                    }
                    for c in &d.new {
                        s.push_str(&format!(
                            "    notes: DIFFERS: go{} also has {c} (the notes do not name it)\n",
                            v.line()
                        ));
                    }
                }
            }
        }
        s
    }
}

/// "true up to go1.17 (golab's tables: go1.15, go1.17 have it; go1.19 does not)".
fn last_version_with(f: &str, caller: &str) -> Option<String> {
    let mut have = Vec::new();
    let mut first_without = None;
    for (minor, text) in TABLES {
        let t: Table = serde_json::from_str(text).ok()?;
        let f_here = t.name_here(f);
        let c_here = t.name_here(caller);
        if t.notes_callers(&f_here).contains(&c_here) {
            have.push(format!("go1.{minor}"));
        } else if !have.is_empty() && first_without.is_none() {
            first_without = Some(format!("go1.{minor}"));
        }
    }
    let last = have.last()?.clone();
    // schedule's own runqget/globrunqget moved into findRunnable in 1.19 (the Profile).
    let up_to =
        if caller == "runtime.schedule" && (f == "runtime.runqget" || f == "runtime.globrunqget") {
            "Go 1.18".to_string()
        } else {
            last.clone()
        };
    Some(format!(
        "true only up to {up_to} ({} of golab's tables have it{})",
        have.join(", "),
        first_without
            .map(|w| format!("; {w} is the first without"))
            .unwrap_or_default()
    ))
}

#[cfg(test)]
mod notes_tests {
    use super::*;

    #[test]
    fn the_notes_hold_for_go117_and_schedule_stops_calling_runqget_in_119() {
        let (t17, _) = Table::for_version(GoVersion::new(1, 17, 1)).unwrap();
        assert!(
            t17.notes_differences().is_empty(),
            "{:?}",
            t17.notes_differences()
        );
        let (t19, _) = Table::for_version(GoVersion::new(1, 19, 8)).unwrap();
        let d = t19.notes_differences();
        let rq = d.iter().find(|d| d.function == "runtime.runqget").unwrap();
        assert_eq!(rq.gone, vec!["runtime.schedule".to_string()]);
        assert!(
            rq.gone_since[0].starts_with("true only up to Go 1.18"),
            "{rq:?}"
        );
        let text = t19.render(GoVersion::new(1, 19, 8));
        assert!(
            text.contains("\"schedule calls runqget\" is not true in go1.19"),
            "{text}"
        );
        let (t24, _) = Table::for_version(GoVersion::new(1, 24, 4)).unwrap();
        let n1 = t24.notes_differences();
        assert!(
            n1.iter().all(|d| d.function != "runtime.newproc1"),
            "newproc1 has no notes answer"
        );
        assert!(
            t24.render(GoVersion::new(1, 24, 4))
                .contains("runtime.newcoro")
        );
    }
}

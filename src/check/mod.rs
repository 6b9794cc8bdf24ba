//! Observation + Reference -> Verdict. Each check kind is one function, in a file by
//! its family (chain: the startup walk; value; caller; scheduler); a lab's
//! `checks:` pick and parameterise them. A check compares, it does not probe: every
//! value it needs was read by a probe and sits in the Observation.

use crate::lab::{CheckKind, CheckSpec, Lab};
use crate::reference::{Profile, callers, sched, startup};
use crate::trace::{Hit, Observation, Session, stop_matches};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub use crate::lab::fact::Fact;
use crate::lab::fact::{is_go_name, parse_int};

mod caller;
mod chain;
mod scheduler;
mod value;

pub use chain::lcs;
pub use scheduler::{divergence, live_state};

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

struct Judgement {
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
                Judgement {
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
) -> Judgement {
    match spec.kind {
        CheckKind::BuildFlags => chain::build_flags(o),
        CheckKind::EntryPoint => chain::entry_point(o),
        CheckKind::ChainOrder => chain::chain_order(o, p, &chain::chain_of(spec, p, v)),
        CheckKind::ChainCallers => chain::chain_callers(o, &chain::chain_of(spec, p, v)),
        CheckKind::GoStatement => chain::go_statement(o),
        CheckKind::SysmonThread => chain::sysmon_thread(o, p),
        CheckKind::WitnessesAgree => chain::witnesses_agree(o),
        CheckKind::WrapperDisassembly => chain::wrapper_disassembly(o, p),
        CheckKind::Value => value::values(spec, o, v),
        CheckKind::StaticCallers => caller::static_callers(spec, o, v),
        CheckKind::DynamicCallers => caller::dynamic_callers(spec, o, v),
        CheckKind::RunOrder => scheduler::run_order(o, p, v),
        CheckKind::Cosim => scheduler::cosim(o, p),
    }
}

/// `runtime/proc.go` for `/any/goroot/src/runtime/proc.go`: what a student recognises.
fn short_source(file: &str) -> &str {
    match file.rfind("/src/") {
        Some(i) => &file[i + 5..],
        None => file,
    }
}

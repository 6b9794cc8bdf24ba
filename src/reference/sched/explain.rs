//! A run-order prediction with its step-by-step trace, and its rendering for students.

// `x % 61 == 0` and nested `if`s are kept in the runtime's own shape (and
// let-chains would need edition 2024).
#![allow(unknown_lints, clippy::collapsible_if, clippy::manual_is_multiple_of)]

use super::model::*;
use super::scenario::*;
use crate::reference::Profile;
use serde::Serialize;
use std::fmt::Write as _;

/// The scheduler state after one step, for printing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub step: usize,
    /// Who acted ("main", "f(3)", "rt#0", or "scheduler").
    pub actor: String,
    /// What happened in Go terms ("go f(3)", "wg.Wait → park", "pick").
    pub op: String,
    /// Runtime-level notes (kicked runnext, runqputslow, fairness...).
    pub notes: Vec<String>,
    pub picked: Option<String>,
    pub reason: Option<PickReason>,
    pub inherit_time: Option<bool>,
    pub schedtick: u32,
    pub runnext: Option<String>,
    pub local_len: u32,
    /// Local ring head→tail, runs of consecutive f(i) folded as `f(a..=b)`.
    pub local: Vec<String>,
    pub global_len: u32,
    pub global: Vec<String>,
}

/// Result of [`simulate`]: the predicted order and a step-by-step trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub profile: Profile,
    pub scenario: Scenario,
    pub live: LiveState,
    /// Indices in the order they were recorded (the lab's answer).
    pub order: Vec<u32>,
    pub events: Vec<RunEvent>,
    pub steps: Vec<Snapshot>,
    /// Set if the simulation stopped abnormally (e.g. P went idle).
    pub error: Option<String>,
}

pub(super) fn fold_labels(gs: &[G]) -> Vec<String> {
    fn call_index(label: &str) -> Option<u64> {
        label.strip_prefix("f(")?.strip_suffix(')')?.parse().ok()
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < gs.len() {
        if let Some(a) = call_index(&gs[i].label) {
            let mut j = i;
            while j + 1 < gs.len() && call_index(&gs[j + 1].label) == Some(a + (j + 1 - i) as u64) {
                j += 1;
            }
            let len = j - i + 1;
            if len >= 3 {
                out.push(format!("f({a}..={})", a + (len - 1) as u64));
                i = j + 1;
                continue;
            }
        }
        out.push(gs[i].label.clone());
        i += 1;
    }
    out
}

impl Explanation {
    /// Printable step-by-step trace for students.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "runq-order: Go 1.{} model, N={}, {:?}, Gosched={:?}",
            self.profile.minor, self.scenario.n, self.scenario.block, self.scenario.gosched
        );
        let _ = writeln!(
            s,
            "live state at main.main: schedtick={} runqhead={} local={} runnext={} global={}",
            self.live.schedtick,
            self.live.runqhead,
            self.live.local_len,
            self.live.runnext,
            self.live.global_len
        );
        for st in &self.steps {
            let head = match &st.picked {
                Some(g) => {
                    let inherit = st.inherit_time.unwrap_or(false);
                    format!(
                        "{} → run {g} [{:?}, inheritTime={inherit}; execute: {}]",
                        st.op,
                        st.reason.clone().unwrap_or(PickReason::LocalQueue),
                        if inherit {
                            "shares the time slice, schedtick unchanged"
                        } else {
                            "schedtick++"
                        }
                    )
                }
                None => st.op.clone(),
            };
            let _ = writeln!(s, "[{:>4}] {:<8} {}", st.step, st.actor, head);
            for n in &st.notes {
                let _ = writeln!(s, "              · {n}");
            }
            let _ = writeln!(
                s,
                "              tick={} runnext={} local({})=[{}] global({})=[{}]",
                st.schedtick,
                st.runnext.as_deref().unwrap_or("-"),
                st.local_len,
                st.local.join(" "),
                st.global_len,
                st.global.join(" ")
            );
        }
        let order: Vec<String> = self.order.iter().map(|i| i.to_string()).collect();
        let _ = writeln!(s, "order: {}", order.join(" "));
        if let Some(e) = &self.error {
            let _ = writeln!(s, "stopped: {e}");
        }
        s
    }

    /// The events in the Go lab program's format: `R:4:4 R:0:6 ... M:0:9`.
    pub fn events_line(&self) -> String {
        self.events
            .iter()
            .map(|e| format!("{}:{}:{}", e.kind.letter(), e.index, e.schedtick))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

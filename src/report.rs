//! Renderings of a Verdict. Each takes the same model; none computes anything.

use crate::check::{Mark, Verdict};
use crate::trace::Observation;
use serde::Serialize;
use std::fmt::Write;

/// The terminal report: a line per check, GOOD/BAD/MISSING lines under each, and
/// `Score: EARNED/POSSIBLE` last.
pub fn terminal(v: &Verdict, header: &str, verbose: bool) -> String {
    let mut s = String::new();
    s.push_str(header);
    if !header.ends_with('\n') {
        s.push('\n');
    }
    for w in &v.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let width = v.checks.iter().map(|c| c.id.len()).max().unwrap_or(10);
    for c in &v.checks {
        let status = match (&c.skipped, c.passed) {
            (Some(_), _) => "SKIP",
            (None, true) => "PASS",
            (None, false) => "FAIL",
        };
        let _ = writeln!(
            s,
            "{status} {:<width$}  {:>2}/{:<2} {}",
            c.id,
            c.earned,
            c.points,
            c.skipped.as_deref().unwrap_or(&c.summary)
        );
        if c.skipped.is_some() {
            continue;
        }
        if let Some(says) = &c.says
            && (verbose || !c.passed)
        {
            let _ = writeln!(s, "     the notes say: {says}");
        }
        for l in &c.lines {
            if !verbose && c.passed && l.mark == Mark::Good {
                continue;
            }
            let m = match l.mark {
                Mark::Good => "GOOD",
                Mark::Bad => "BAD",
                Mark::Missing => "MISSING",
                Mark::Note => "NOTE",
            };
            let _ = writeln!(s, "     {m:<7} {}", l.text);
        }
        if let Some(n) = &c.note {
            let _ = writeln!(s, "     note: {n}");
        }
    }
    let _ = writeln!(s, "Score: {}/{}", v.earned, v.possible);
    s
}

#[derive(Serialize)]
struct Both<'a> {
    observation: &'a Observation,
    verdict: &'a Verdict,
}

/// `golab run --json` / `--json-file FILE`: the Observation and the Verdict together (schema golab.run/1).
pub fn json(obs: &Observation, v: &Verdict) -> String {
    crate::exit::document(
        crate::exit::Doc::Run,
        Both {
            observation: obs,
            verdict: v,
        },
    )
}

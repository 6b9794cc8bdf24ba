//! Callers checks: who calls a scheduler function, statically (the call sites in the machine code)
//! and dynamically (the stacks at dlv's stops), against the runtime source's table.
use super::*;

pub(super) fn caller_table(v: crate::toolchain::GoVersion) -> Result<callers::Table, Judgement> {
    callers::Table::for_version(v)
        .map(|(t, _)| t)
        .map_err(|e| Judgement {
            passed: false,
            summary: format!("{e:#}"),
            lines: vec![],
        })
}

pub(super) fn names(s: &BTreeSet<String>) -> String {
    s.iter()
        .map(|x| x.trim_start_matches("runtime."))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn static_callers(
    spec: &CheckSpec,
    o: &Observation,
    v: crate::toolchain::GoVersion,
) -> Judgement {
    let t = match caller_table(v) {
        Ok(t) => t,
        Err(e) => return e,
    };
    if let Some(why) = &o.static_callers_not_checked {
        return Judgement {
            passed: false,
            summary: format!("static callers not checked: {why}"),
            lines: vec![line(Mark::Note, why.clone())],
        };
    }
    let mut lines = Vec::new();
    let mut ok = true;
    for name in &spec.functions {
        let Some(f) = t.resolve(name) else {
            let text = if t.absent.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                format!(
                    "{name}: not in {}'s runtime (its source has no such function)",
                    t.go
                )
            } else {
                format!("{name}: not in golab's caller table for {}", t.go)
            };
            lines.push(line(Mark::Note, text));
            continue;
        };
        let shown = if &f != name {
            format!("{f} (named {name} in the notes)")
        } else {
            f.clone()
        };
        if !o.in_binary.get(&f).copied().unwrap_or(false) {
            ok = false;
            lines.push(line(
                Mark::Missing,
                format!("{shown}: not a function of the binary (inlined: were -l -N in effect?)"),
            ));
            continue;
        }
        let reference = t.static_callers(&f);
        let seen: BTreeSet<String> = o
            .static_callers
            .get(&f)
            .into_iter()
            .flatten()
            .map(|s| callers::fold_symbol(s))
            .filter(|c| c != &f)
            .collect();
        let extra: BTreeSet<String> = seen.difference(&reference).cloned().collect();
        let missing: BTreeSet<String> = reference.difference(&seen).cloned().collect();
        let (linked_out, missing): (BTreeSet<String>, BTreeSet<String>) = missing
            .into_iter()
            .partition(|c| !o.in_binary.get(c).copied().unwrap_or(false));
        let good = extra.is_empty() && missing.is_empty();
        ok &= good;
        let mut text = format!(
            "{shown} <- {}",
            if seen.is_empty() {
                "(no direct call in the machine code)".into()
            } else {
                names(&seen)
            }
        );
        if !missing.is_empty() {
            let at: Vec<String> = missing
                .iter()
                .map(|c| {
                    format!(
                        "{} ({})",
                        c.trim_start_matches("runtime."),
                        t.call_sites(&f, c).join(", ")
                    )
                })
                .collect();
            text.push_str(&format!("; MISSING {}", at.join(", ")));
        }
        if !extra.is_empty() {
            text.push_str(&format!(
                "; EXTRA (not in the source table) {}",
                names(&extra)
            ));
        }
        if !linked_out.is_empty() {
            text.push_str(&format!(
                "; not linked into this program (unreachable): {}",
                names(&linked_out)
            ));
        }
        lines.push(line(if good { Mark::Good } else { Mark::Bad }, text));
    }
    Judgement {
        passed: ok,
        summary: format!(
            "static callers in the machine code vs the {} source table",
            t.go
        ),
        lines,
    }
}

pub(super) fn dynamic_callers(
    spec: &CheckSpec,
    o: &Observation,
    v: crate::toolchain::GoVersion,
) -> Judgement {
    let t = match caller_table(v) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let mut lines = Vec::new();
    let mut ok = true;
    let mut observed_any = false;
    for name in &spec.functions {
        let Some(f) = t.resolve(name) else {
            let text = if t.absent.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                format!(
                    "{name}: not in {}'s runtime (its source has no such function)",
                    t.go
                )
            } else {
                format!("{name}: not in golab's caller table for {}", t.go)
            };
            lines.push(line(Mark::Note, text));
            continue;
        };
        let allowed = t.dynamic_callers(&f);
        let hits: Vec<&Hit> = o
            .dlv
            .hits
            .iter()
            .filter(|h| h.function() == f && !h.in_wrapper())
            .collect();
        if hits.is_empty() {
            lines.push(line(Mark::Note, format!("{f}: not hit in this run")));
            continue;
        }
        observed_any = true;
        let (hidden, shown): (Vec<&Hit>, Vec<&Hit>) =
            hits.iter().partition(|h| h.caller_hidden_by_switch());
        let seen: BTreeSet<String> = shown.iter().filter_map(|h| h.caller()).collect();
        // Behind a stack switch only the function that called systemstack is visible;
        // it is evidence only where the reference names it (a closure folds into it).
        let switched: BTreeSet<String> = hidden.iter().filter_map(|h| h.caller()).collect();
        let (via_ok, via_unknown): (BTreeSet<String>, BTreeSet<String>) =
            switched.into_iter().partition(|c| allowed.contains(c));
        let seen: BTreeSet<String> = seen.union(&via_ok).cloned().collect();
        if !via_unknown.is_empty() {
            lines.push(line(Mark::Note, format!("{f}: reached on the system stack from {}; the debugger does not show the g0 frames in between, so the immediate caller is not seen", names(&via_unknown))));
        }
        let bad: BTreeSet<String> = seen.difference(&allowed).cloned().collect();
        if seen.is_empty() {
            lines.push(line(
                Mark::Note,
                format!("{f}: {} stops, none with a visible caller", hits.len()),
            ));
        } else if bad.is_empty() {
            lines.push(line(
                Mark::Good,
                format!("{f}: {} stops, called from {}", hits.len(), names(&seen)),
            ));
        } else {
            ok = false;
            lines.push(line(
                Mark::Bad,
                format!(
                    "{f}: called from {} which the reference does not allow (allowed: {})",
                    names(&bad),
                    names(&allowed)
                ),
            ));
        }
    }
    if !observed_any {
        ok = false;
        lines.push(line(Mark::Missing, "none of the functions was hit"));
    }
    Judgement {
        passed: ok,
        summary: format!("callers seen at breakpoints vs the {} source table", t.go),
        lines,
    }
}

#[cfg(test)]
mod caller_tests {
    use super::*;
    use crate::lab::{CheckKind, CheckSpec};
    use crate::toolchain::GoVersion;
    use crate::trace::{Frame, Tool};

    fn spec(kind: CheckKind, f: &str) -> CheckSpec {
        CheckSpec {
            id: "c".into(),
            kind,
            points: 1,
            says: None,
            note: None,
            go: None,
            expect: vec![],
            functions: vec![f.into()],
            steps: vec![],
            record: None,
        }
    }

    fn frame(f: &str) -> Frame {
        Frame {
            function: f.into(),
            file: "proc.go".into(),
            line: 1,
            pc: 1,
            entry_pc: false,
        }
    }

    #[test]
    fn static_callers_name_what_is_missing_and_what_is_extra() {
        let v = GoVersion::new(1, 19, 8);
        let mut o = Observation::default();
        o.in_binary.insert("runtime.runqget".into(), true);
        o.in_binary.insert("runtime.findRunnable".into(), true);
        o.in_binary.insert("runtime.stealWork".into(), true);
        // The binary shows findRunnable and a caller the source never had.
        o.static_callers.insert(
            "runtime.runqget".into(),
            ["runtime.findRunnable", "runtime.sysmon"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        let out = static_callers(&spec(CheckKind::StaticCallers, "runtime.runqget"), &o, v);
        assert!(!out.passed);
        let text = &out.lines[0].text;
        assert!(
            text.contains("MISSING stealWork")
                && text.contains("EXTRA (not in the source table) sysmon"),
            "{text}"
        );
        // With the real callers, it passes.
        o.static_callers.insert(
            "runtime.runqget".into(),
            ["runtime.findRunnable", "runtime.stealWork"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        assert!(static_callers(&spec(CheckKind::StaticCallers, "runtime.runqget"), &o, v).passed);
    }

    #[test]
    fn a_dynamic_caller_outside_the_table_fails() {
        let v = GoVersion::new(1, 19, 8);
        let mut o = Observation::default();
        let hit = |caller: &str| Hit {
            seq: 0,
            tool: Tool::Dlv,
            breakpoint: "runtime.execute".into(),
            thread: 1,
            goroutine: 0,
            stack: vec![frame("runtime.execute"), frame(caller)],
            values: Default::default(),
            stop: 0,
        };
        o.dlv.hits = vec![hit("runtime.schedule")];
        assert!(dynamic_callers(&spec(CheckKind::DynamicCallers, "runtime.execute"), &o, v).passed);
        o.dlv.hits.push(hit("runtime.gcStart"));
        let out = dynamic_callers(&spec(CheckKind::DynamicCallers, "runtime.execute"), &o, v);
        assert!(
            !out.passed && out.lines[0].text.contains("gcStart"),
            "{:?}",
            out.lines
        );
    }
}

//! Scheduler checks: the co-simulation of the G-M-P model with the run (`cosim`), and
//! the run order of a scenario against the model's prediction (`run-order`).
use super::*;

/// The co-simulation: every transition of each dlv session against the model stepped
/// with the same events (see `reference::cosim`).
pub(super) fn cosim(o: &Observation, p: &Profile) -> Judgement {
    use crate::reference::cosim::{self, Cosim, Event, Judged};
    let points = cosim::points(p);
    let mut sessions: Vec<(String, &Session)> = Vec::new();
    if !o.dlv.hits.is_empty() {
        sessions.push((String::new(), &o.dlv));
    }
    for (k, r) in o.scenarios.iter().enumerate() {
        sessions.push((format!("{} (run {}): ", r.id, k + 1), &r.session));
    }
    let ps = o.facts.gomaxprocs.max(1) as usize;
    let mut lines = Vec::new();
    let (mut observed, mut judged, mut matched, mut raced, mut unjudged) = (0, 0, 0, 0, 0);
    let mut by_op: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    let mut shown = 0;
    let mut raced_shown = false;
    for (name, s) in &sessions {
        let events = Event::from_hits(&points, &s.hits);
        let r = Cosim::run(p.minor, ps, &events);
        observed += r.observed;
        judged += r.judged;
        matched += r.matched;
        raced += r.raced;
        unjudged += r.unjudged;
        for (op, (m, n)) in &r.by_op {
            let e = by_op.entry(op.clone()).or_insert((0, 0));
            e.0 += m;
            e.1 += n;
        }
        for (why, n) in &r.unjudged_reasons {
            *reasons.entry(why.clone()).or_insert(0) += n;
        }
        for t in &r.disagreements {
            if shown >= 5 {
                break;
            }
            let Judged::Disagreed(why) = &t.judged else {
                continue;
            };
            let first = if shown == 0 {
                "first disagreement: "
            } else {
                ""
            };
            lines.push(line(
                Mark::Bad,
                format!(
                    "{name}{first}stop {} (thread {}, goroutine {}) {}: {why}",
                    t.seq, t.thread, t.goroutine, t.what
                ),
            ));
            if let Some(m) = &t.model_state {
                lines.push(line(Mark::Bad, format!("    model:   {m}")));
            }
            if let Some(l) = &t.live_state {
                lines.push(line(Mark::Bad, format!("    runtime: {l}")));
            }
            shown += 1;
        }
        if let Some(t) = r.raced_list.first().filter(|_| !raced_shown) {
            raced_shown = true;
            if let Judged::Raced(why) = &t.judged {
                lines.push(line(
                    Mark::Note,
                    format!(
                        "{name}raced (not judged), e.g. stop {} {}: {why}{}",
                        t.seq,
                        t.what,
                        match (&t.model_state, &t.live_state) {
                            (Some(m), Some(l)) => format!("; model {m}; runtime {l}"),
                            _ => String::new(),
                        }
                    ),
                ));
            }
        }
    }
    for (op, (m, n)) in &by_op {
        lines.push(line(
            if m == n { Mark::Good } else { Mark::Bad },
            format!("{op}: {m} of {n} as the model predicted"),
        ));
    }
    for (why, n) in &reasons {
        lines.push(line(Mark::Note, format!("{n} not judged: {why}")));
    }
    if observed == 0 {
        lines.push(line(
            Mark::Missing,
            "no transition was recorded: were the scheduler's breakpoints set?",
        ));
    }
    Judgement {
        passed: judged > 0 && matched == judged,
        // `N of M transitions` at a fixed place: scripts/fidelity.sh reads it.
        summary: format!(
            "{matched} of {judged} transitions as the model predicted ({observed} observed, {raced} raced, {unjudged} not judged; {ps} P{})",
            if ps == 1 { "" } else { "s" }
        ),
        lines,
    }
}

/// The model's starting state from the values read at main.main.
pub fn live_state(
    p: &Profile,
    live: &std::collections::BTreeMap<String, String>,
) -> Option<sched::LiveState> {
    let get = |e: &str| live.get(&format!("eval {e}")).and_then(|v| parse_int(v));
    let [tick, head, tail, next, global] = p.live_state_exprs();
    let (head, tail) = (get(head)? as u32, get(tail)? as u32);
    Some(sched::LiveState {
        schedtick: get(tick)? as u32,
        runqhead: head,
        local_len: tail.wrapping_sub(head),
        runnext: get(next)? != 0,
        global_len: get(global)? as u32,
    })
}

pub(super) fn run_order(o: &Observation, p: &Profile, v: crate::toolchain::GoVersion) -> Judgement {
    let profile = crate::reference::Profile::line(v.minor);
    if o.facts.gomaxprocs > 1 {
        return Judgement {
            passed: false,
            summary: format!(
                "this program is not one the run-order model predicts: it ran with GOMAXPROCS={} and the whole-order model has one P; use the co-simulation check (kind: cosim)",
                o.facts.gomaxprocs
            ),
            lines: vec![],
        };
    }
    let mut lines = Vec::new();
    let (mut matched, mut total) = (0, 0);
    let mut ids: Vec<&str> = Vec::new();
    for r in &o.scenarios {
        if !ids.contains(&r.id.as_str()) {
            ids.push(&r.id);
        }
    }
    for id in ids {
        let runs: Vec<&crate::trace::ScenarioRun> =
            o.scenarios.iter().filter(|r| r.id == id).collect();
        let verdicts: Vec<Result<String, (Mark, String)>> =
            runs.iter().map(|r| judge_run(r, p, &profile)).collect();
        let ok = verdicts.iter().filter(|v| v.is_ok()).count();
        matched += ok;
        total += runs.len();
        let args = runs[0].args.join(" ");
        // `[matched/runs]` at a fixed place: scripts/fidelity.sh reads it.
        if ok == runs.len() {
            let shown = verdicts[0].as_ref().map(String::as_str).unwrap_or("");
            lines.push(line(
                Mark::Good,
                format!(
                    "{id} (./main {args}) [{ok}/{}]: as predicted: {shown}",
                    runs.len()
                ),
            ));
        } else {
            let (k, (mark, why)) = verdicts
                .iter()
                .enumerate()
                .find_map(|(k, v)| v.as_ref().err().map(|e| (k, e)))
                .expect("a failed run");
            lines.push(line(
                *mark,
                format!(
                    "{id} (./main {args}) [{ok}/{}]: run {}: {why}",
                    runs.len(),
                    k + 1
                ),
            ));
        }
    }
    let reruns: usize = o.scenarios.iter().map(|r| r.disturbed_before.len()).sum();
    for r in o
        .scenarios
        .iter()
        .filter(|r| !r.disturbed_before.is_empty())
    {
        lines.push(line(
            Mark::Note,
            format!(
                "{}: run again {} time(s) (at most {}): {}",
                r.id,
                r.disturbed_before.len(),
                crate::trace::MAX_RERUNS,
                r.disturbed_before
                    .iter()
                    .map(|d| format!("disturbed by {}", d.join("; ")))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        ));
    }
    Judgement {
        passed: total > 0 && matched == total,
        summary: format!(
            "{matched} of {total} runs in the order the model predicts (model go1.{}){}",
            v.minor,
            if reruns > 0 {
                format!("; {reruns} disturbed run(s) run again")
            } else {
                String::new()
            }
        ),
        lines,
    }
}

/// One run: Ok(the start of the order) when prediction and observation agree.
///
/// The prediction replays the program's shape (what `tools/goshape` read from its
/// syntax for this run's arguments); a program it cannot follow is refused by name. A
/// run recorded without a shape (an older observation) is predicted from the
/// runq-order scenario its arguments spell.
pub(super) fn judge_run(
    run: &crate::trace::ScenarioRun,
    p: &Profile,
    profile: &Profile,
) -> Result<String, (Mark, String)> {
    use crate::reference::shape::{self, Shape};
    let refuse = |why: &str| {
        (
            Mark::Bad,
            format!(
                "this program is not one the run-order model predicts: {why}; use the co-simulation check (kind: cosim)"
            ),
        )
    };
    let spec = crate::lab::ScenarioSpec::from_args(&run.id, &run.args);
    let mut fallback = None;
    let program = match &run.shape {
        Some(Shape::Refused(why)) => return Err(refuse(why)),
        // The helper could not run (no Go to build it where golab runs): the
        // runq-order program's own scenario, if the arguments spell one, else nothing.
        Some(Shape::Failed(why)) => match spec.model() {
            Ok(_) => {
                fallback = Some(why.clone());
                None
            }
            Err(_) => return Err((Mark::Missing, why.clone())),
        },
        Some(Shape::Program(prog)) => Some(prog),
        None => None,
    };
    let mut scenario = match program {
        Some(_) => sched::Scenario::new(0),
        None => spec.model().map_err(|e| (Mark::Bad, e))?,
    };
    // main's own Gosched calls and sysmon's measured preemptions of main both send it
    // to the global queue after that many spawns.
    scenario
        .main_preempted_after
        .extend(run.preempted_after.iter().copied());
    scenario.main_preempted_after.sort_unstable();
    let live = live_state(p, &run.live).ok_or_else(|| {
        (
            Mark::Missing,
            format!(
                "the scheduler's state at main.main was not read: {:?}",
                run.live
            ),
        )
    })?;
    let observed = run.observed.as_ref().ok_or_else(|| {
        (
            Mark::Missing,
            "the program printed no order (did it finish?)".to_string(),
        )
    })?;
    let predicted: Vec<u32> = match program {
        Some(prog) => {
            let mut pre: Vec<(u32, Vec<String>)> = run
                .preempted_after
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, run.preempted_at.get(i).cloned().unwrap_or_default()))
                .collect();
            pre.sort_by_key(|(k, _)| *k);
            let pr = shape::predict(profile, prog, &live, &pre).map_err(|e| refuse(&e))?;
            let mut v = Vec::with_capacity(pr.order.len());
            for x in pr.order {
                v.push(u32::try_from(x).map_err(|_| {
                    refuse(&format!(
                        "it records {x}, and the order line holds non-negative numbers"
                    ))
                })?);
            }
            let (mut a, mut b) = (v.clone(), observed.clone());
            a.sort_unstable();
            b.sort_unstable();
            if a != b {
                return Err((
                    Mark::Bad,
                    format!(
                        "the order line holds {} values and the program's shape records {}, not the same ones (does the program print every recorded value, in order, on a line `order ...`?)",
                        observed.len(),
                        v.len()
                    ),
                ));
            }
            v
        }
        None => {
            let mut sorted = observed.clone();
            sorted.sort_unstable();
            if sorted != (0..spec.n).collect::<Vec<u32>>() {
                return Err(refuse(&format!(
                    "its order line holds {} entries, not each of 0..{} once",
                    observed.len(),
                    spec.n
                )));
            }
            sched::predict_order(profile, &scenario, &live)
        }
    };
    if !run.disturbances.is_empty() {
        return Err((
            Mark::Bad,
            format!(
                "not comparable, the run was disturbed: {}",
                run.disturbances.join("; ")
            ),
        ));
    }
    let mut start = format!(
        "tick={} runnext={} local={} global={}",
        live.schedtick, live.runnext, live.local_len, live.global_len
    );
    if !run.preempted_after.is_empty() {
        start.push_str(&format!(
            "; sysmon preempted main after {} spawns, measured and given to the model",
            run.preempted_after
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(why) = &fallback {
        start.push_str(&format!(
            "; predicted from the runq-order scenario its arguments spell, as the program's shape was not read: {why}"
        ));
    }
    if &predicted == observed {
        let head: Vec<String> = observed.iter().take(12).map(|i| i.to_string()).collect();
        Ok(format!(
            "{}{} (from {start})",
            head.join(" "),
            if observed.len() > 12 { " ..." } else { "" }
        ))
    } else if program.is_some() {
        let pos = predicted
            .iter()
            .zip(observed)
            .position(|(a, b)| a != b)
            .unwrap_or(predicted.len().min(observed.len()));
        let show = |v: &[u32]| {
            v.iter()
                .skip(pos.saturating_sub(3))
                .take(8)
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        Err((
            Mark::Bad,
            format!(
                "first divergence at position {pos}: predicted {} ..., observed {} ... (from {start})",
                show(&predicted),
                show(observed)
            ),
        ))
    } else {
        Err((
            Mark::Bad,
            divergence(profile, &scenario, &live, &predicted, observed),
        ))
    }
}

/// The first place where prediction and observation part, with the model's state there.
pub fn divergence(
    profile: &Profile,
    scenario: &sched::Scenario,
    live: &sched::LiveState,
    predicted: &[u32],
    observed: &[u32],
) -> String {
    let pos = predicted
        .iter()
        .zip(observed)
        .position(|(a, b)| a != b)
        .unwrap_or(predicted.len().min(observed.len()));
    let want = predicted
        .get(pos)
        .map(|x| format!("f({x})"))
        .unwrap_or_else(|| "nothing".into());
    let got = observed
        .get(pos)
        .map(|x| format!("f({x})"))
        .unwrap_or_else(|| "nothing".into());
    let e = sched::simulate(profile, scenario, live);
    let at = predicted.get(pos).and_then(|x| {
        e.steps
            .iter()
            .find(|s| s.picked.as_deref() == Some(&format!("f({x})")))
    });
    let state = at
        .map(|s| {
            format!(
                "; the model there: tick={} runnext={} local({})=[{}] global({})=[{}]",
                s.schedtick,
                s.runnext.as_deref().unwrap_or("-"),
                s.local_len,
                s.local.join(" "),
                s.global_len,
                s.global.join(" ")
            )
        })
        .unwrap_or_default();
    format!(
        "first divergence at position {pos}: predicted {want}, observed {got} (from tick={} runnext={} local={} global={}){state}",
        live.schedtick, live.runnext, live.local_len, live.global_len
    )
}

#[cfg(test)]
mod run_order_tests {
    use super::*;
    use crate::trace::ScenarioRun;

    fn run(observed: Vec<u32>, disturbances: Vec<String>) -> ScenarioRun {
        let p = Profile::for_version(crate::toolchain::GoVersion::new(1, 19, 8)).0;
        let live: Vec<(String, String)> = p
            .live_state_exprs()
            .iter()
            .zip(["4", "2", "2", "824633733504", "0"])
            .map(|(e, v)| (format!("eval {e}"), v.to_string()))
            .collect();
        ScenarioRun {
            id: "n5".into(),
            args: vec!["5".into(), "wg".into(), "none".into()],
            live: live.into_iter().collect(),
            observed: Some(observed),
            disturbances,
            preempted_after: vec![],
            preempted_at: vec![],
            shape: None,
            disturbed_before: vec![],
            session: Default::default(),
        }
    }

    fn judge(r: ScenarioRun) -> Judgement {
        judge_on(r, 1)
    }

    fn judge_on(r: ScenarioRun, ps: u64) -> Judgement {
        let mut o = Observation::default();
        o.facts.gomaxprocs = ps;
        o.scenarios.push(r);
        let v = crate::toolchain::GoVersion::new(1, 19, 8);
        run_order(&o, &Profile::for_version(v).0, v)
    }

    #[test]
    fn the_last_go_statement_runs_first_from_runnext() {
        // go1.19.8, N=5: observed in real runs as 4 0 1 2 3 (the model's own tests say how).
        let out = judge(run(vec![4, 0, 1, 2, 3], vec![]));
        assert!(out.passed, "{:?}", out.lines);
        assert!(out.lines[0].text.contains("[1/1]"));
    }

    #[test]
    fn a_refused_shape_is_said_by_name_whatever_the_order() {
        use crate::reference::shape::Shape;
        let mut r = run(vec![4, 0, 1, 2, 3], vec![]);
        r.shape = Some(Shape::Refused("main.go:40: select is not modelled".into()));
        let out = judge(r);
        assert!(!out.passed);
        assert!(
            out.lines[0].text.contains(
                "run 1: this program is not one the run-order model predicts: main.go:40: select is not modelled; use the co-simulation check (kind: cosim)"
            ),
            "{:?}",
            out.lines
        );
    }

    #[test]
    fn a_shape_is_replayed_and_a_helper_failure_falls_back_to_the_scenario() {
        use crate::reference::shape::{Goroutine, Op, Program, Shape};
        let op = |op: &str, g: usize, wg: usize, n: i64| Op {
            op: op.into(),
            g,
            ch: 0,
            wg,
            n,
            label: String::new(),
            pos: "main.go:1".into(),
        };
        let mut main = vec![op("wgadd", 0, 1, 5)];
        let mut gs = vec![];
        for i in 0..5 {
            main.push(op("go", i + 1, 0, 0));
            gs.push(Goroutine {
                label: format!("f({i})"),
                ops: vec![
                    op("record", 0, 0, i as i64),
                    op("wgadd", 0, 1, -1),
                    op("exit", 0, 0, 0),
                ],
            });
        }
        main.push(op("wgwait", 0, 1, 0));
        main.push(op("exit", 0, 0, 0));
        let mut all = vec![Goroutine {
            label: "main".into(),
            ops: main,
        }];
        all.extend(gs);
        let prog = Program {
            goroutines: all,
            chans: vec![],
            wgs: 1,
        };
        let mut r = run(vec![4, 0, 1, 2, 3], vec![]);
        r.shape = Some(Shape::Program(prog));
        assert!(judge(r.clone()).passed);
        r.observed = Some(vec![0, 1, 2, 3, 4]);
        let out = judge(r.clone());
        assert!(
            !out.passed && out.lines[0].text.contains("first divergence at position 0"),
            "{:?}",
            out.lines
        );
        r.observed = Some(vec![4, 0, 1, 2, 3]);
        r.shape = Some(Shape::Failed("no go".into()));
        let out = judge(r);
        assert!(
            out.passed
                && out.lines[0]
                    .text
                    .contains("as the program's shape was not read: no go"),
            "{:?}",
            out.lines
        );
    }

    #[test]
    fn a_wrong_order_names_the_first_divergence_and_the_models_state() {
        let out = judge(run(vec![0, 1, 2, 3, 4], vec![]));
        assert!(!out.passed);
        let t = &out.lines[0].text;
        assert!(
            t.contains("first divergence at position 0: predicted f(4), observed f(0)")
                && t.contains("the model there"),
            "{t}"
        );
    }

    #[test]
    fn more_than_one_p_or_another_program_is_refused_by_name() {
        let out = judge_on(run(vec![4, 0, 1, 2, 3], vec![]), 2);
        assert!(
            !out.passed && out.summary.contains("GOMAXPROCS=2"),
            "{}",
            out.summary
        );
        assert!(out.summary.contains("use the co-simulation check"));
        let out = judge(run(vec![4, 0, 1], vec![]));
        assert!(
            !out.passed
                && out.lines[0]
                    .text
                    .contains("not one the run-order model predicts"),
            "{:?}",
            out.lines
        );
    }

    #[test]
    fn a_disturbed_run_is_reported_by_name_not_absorbed() {
        let out = judge(run(
            vec![4, 0, 1, 2, 3],
            vec!["runtime.gopreempt_m on goroutine 1: sysmon asked a goroutine to yield".into()],
        ));
        assert!(!out.passed);
        assert!(
            out.lines[0].text.contains("not comparable")
                && out.lines[0].text.contains("gopreempt_m"),
            "{:?}",
            out.lines
        );
    }
}

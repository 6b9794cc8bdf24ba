//! Whole-order prediction for a program's own shape.
//!
//! `tools/goshape` (run with the lab's Go, see `reference::goshape`) reads the program's
//! syntax and, for one scenario's arguments, writes what each goroutine does that the
//! scheduler sees: `go`, `runtime.Gosched`, channel send/receive/close, WaitGroup
//! Add/Done/Wait, and the values it records. [`predict`] replays that on one P with
//! the scheduler model of `sched` (`newproc` → `runqput(next)`, `goschedImpl` →
//! global queue, `gopark`, `goready` → `runqput(next)`, `goexit0`, `schedule`) from the
//! state read at `main.main`. A program the helper cannot follow is refused there, by
//! name and line.

use super::Profile;
use super::sched::{G, LiveState, RUNQ_LEN, Sched};
use serde::Serialize;
use std::collections::VecDeque;

pub use crate::program_shape::{Goroutine, HELPER_GO_MOD, HELPER_SOURCE, Op, Program, Shape};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Not started yet, or runnable in a queue, or running.
    Live,
    /// Parked (channel or semaphore wait queue).
    Parked,
    Dead,
}

#[derive(Default)]
struct Chan {
    cap: i64,
    count: i64,
    closed: bool,
    recvq: VecDeque<usize>,
    sendq: VecDeque<usize>,
}

#[derive(Default)]
struct Wg {
    counter: i64,
    waiters: VecDeque<usize>,
}

/// The result of [`predict`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prediction {
    /// The recorded values, in order, up to main's end.
    pub order: Vec<i64>,
    /// One line per scheduling decision (`pick f(3) from runnext`), for explanations.
    pub steps: Vec<String>,
}

struct Run<'a> {
    prog: &'a Program,
    s: Sched,
    pc: Vec<usize>,
    st: Vec<St>,
    chans: Vec<Chan>,
    wgs: Vec<Wg>,
    /// goid -> goroutine index (None: an opaque runtime G).
    ids: std::collections::HashMap<u64, usize>,
    first_id: u64,
    order: Vec<i64>,
    steps: Vec<String>,
    /// Measured preemptions of main still to come, and goroutines created so far.
    pre: VecDeque<(u32, Vec<String>)>,
    /// The step of main at which the next measured preemption falls, once known.
    pre_target: Option<usize>,
    created: u32,
    /// A goroutine parked in `for range ch`: how far a close makes it jump.
    range_skip: Vec<Option<usize>>,
    executed: usize,
    max_executed: usize,
}

enum Next {
    /// The running goroutine gave up the P: what `schedule` picked (None: P idle).
    Switch(Option<super::sched::Pick>),
    /// main returned: the program exits.
    Exit,
}

impl Run<'_> {
    fn g(&self, k: usize) -> G {
        if k == 0 {
            return G::new(1, "main");
        }
        G::new(
            self.first_id + k as u64,
            self.prog.goroutines[k].label.clone(),
        )
    }

    fn ready(&mut self, k: usize) {
        self.st[k] = St::Live;
        let g = self.g(k);
        self.s.ready(0, g);
    }

    /// Goroutine `k` runs until it gives up the P.
    fn run(&mut self, k: usize) -> Result<Next, String> {
        loop {
            if k == 0
                && let Some((at, lines)) = self.pre.front()
                && *at <= self.created
            {
                let here = self.pc[0];
                let target = *self.pre_target.get_or_insert_with(|| {
                    let ops = &self.prog.goroutines[0].ops[here..];
                    let upto = ops
                        .iter()
                        .position(|o| o.op == "go")
                        .map_or(ops.len(), |j| j + 1);
                    let all = &self.prog.goroutines[0].ops;
                    ops[..upto]
                        .iter()
                        .position(|o| lines.contains(&o.pos))
                        .map(|j| here + j)
                        .or_else(|| {
                            if upto == ops.len() {
                                past_every_step(all, lines)
                            } else {
                                None
                            }
                        })
                        .unwrap_or(here)
                });
                if here >= target {
                    let at = *at;
                    self.pre.pop_front();
                    self.pre_target = None;
                    self.steps
                        .push(format!("sysmon preempts main ({at} goroutines created)"));
                    return Ok(Next::Switch(self.s.gosched(0)));
                }
            }
            let gr = &self.prog.goroutines[k];
            let Some(op) = gr.ops.get(self.pc[k]) else {
                return Err(format!("{} ran past its last step", gr.label));
            };
            let op = op.clone();
            self.pc[k] += 1;
            self.executed += 1;
            if self.executed > self.max_executed {
                return Err(format!(
                    "the model did not finish ({} steps without an end; a loop that never blocks?)",
                    self.max_executed
                ));
            }
            let at = |what: &str| format!("{}: {} ({})", op.pos, what, gr.label);
            match op.op.as_str() {
                "go" => {
                    if op.g >= self.prog.goroutines.len() {
                        return Err(at("go of an unknown goroutine"));
                    }
                    let g = self.g(op.g);
                    self.s.newproc(0, g);
                    self.created += 1;
                }
                "record" => self.order.push(op.n),
                "gosched" => {
                    let next = self.s.gosched(0);
                    return Ok(Next::Switch(next));
                }
                "send" => {
                    let c = self.chan(op.ch).ok_or_else(|| at("unknown channel"))?;
                    if c.closed {
                        return Err(at("send on a closed channel (the program panics)"));
                    }
                    if let Some(r) = c.recvq.pop_front() {
                        // chansend: a waiting receiver takes the value directly and is
                        // readied into runnext (send → goready).
                        self.range_skip[r] = None;
                        self.ready(r);
                    } else if c.count < c.cap {
                        c.count += 1;
                    } else {
                        c.sendq.push_back(k);
                        return Ok(self.park(k));
                    }
                }
                "loop" => {
                    let back = usize::try_from(op.n).unwrap_or(usize::MAX);
                    if back > self.pc[k] {
                        return Err(at("a loop that jumps before the start"));
                    }
                    self.pc[k] -= back;
                }
                "recv" | "rangerecv" => {
                    let skip = (op.op == "rangerecv").then(|| op.n.max(0) as usize);
                    let c = self.chan(op.ch).ok_or_else(|| at("unknown channel"))?;
                    if c.closed && c.count == 0 {
                        // A range ends; a receive gets the zero value.
                        self.pc[k] += skip.unwrap_or(0);
                        continue;
                    }
                    if let Some(w) = c.sendq.pop_front() {
                        // chanrecv: a waiting sender (the buffer is full, or there is
                        // none): its value is taken (or goes to the buffer's tail) and
                        // it is readied.
                        self.ready(w);
                    } else if c.count > 0 {
                        c.count -= 1;
                    } else {
                        c.recvq.push_back(k);
                        self.range_skip[k] = skip;
                        return Ok(self.park(k));
                    }
                }
                "close" => {
                    let c = self.chan(op.ch).ok_or_else(|| at("unknown channel"))?;
                    if c.closed {
                        return Err(at("close of a closed channel (the program panics)"));
                    }
                    if !c.sendq.is_empty() {
                        return Err(at("close with senders waiting (they panic)"));
                    }
                    c.closed = true;
                    // closechan gathers the receivers on a gList (a stack) and readies
                    // them as it pops: the last to wait first.
                    let mut glist: Vec<usize> = c.recvq.drain(..).collect();
                    while let Some(r) = glist.pop() {
                        // A receiver woken by the close: a range over the channel ends.
                        if let Some(skip) = self.range_skip[r].take() {
                            self.pc[r] += skip;
                        }
                        self.ready(r);
                    }
                }
                "wgadd" => {
                    let w = self.wg(op.wg).ok_or_else(|| at("unknown WaitGroup"))?;
                    if !w.waiters.is_empty() && op.n > 0 && w.counter == 0 {
                        return Err(at(
                            "WaitGroup misuse: Add called concurrently with Wait (the program panics)",
                        ));
                    }
                    w.counter += op.n;
                    if w.counter < 0 {
                        return Err(at("negative WaitGroup counter (the program panics)"));
                    }
                    if w.counter == 0 {
                        // Add: for each waiter runtime_Semrelease → readyWithTime →
                        // goready, in the semaphore queue's order (FIFO).
                        let ws: Vec<usize> = w.waiters.drain(..).collect();
                        for r in ws {
                            self.ready(r);
                        }
                    }
                }
                "wgwait" => {
                    let w = self.wg(op.wg).ok_or_else(|| at("unknown WaitGroup"))?;
                    if w.counter != 0 {
                        w.waiters.push_back(k);
                        return Ok(self.park(k));
                    }
                }
                "exit" => {
                    if k == 0 {
                        return Ok(Next::Exit);
                    }
                    self.st[k] = St::Dead;
                    let (_, next) = self.s.goexit(0);
                    return Ok(Next::Switch(next));
                }
                other => return Err(at(&format!("unknown step '{other}'"))),
            }
        }
    }

    fn park(&mut self, k: usize) -> Next {
        self.st[k] = St::Parked;
        let (_, next) = self.s.park(0);
        Next::Switch(next)
    }

    fn chan(&mut self, ch: usize) -> Option<&mut Chan> {
        self.chans.get_mut(ch.checked_sub(1)?)
    }

    fn wg(&mut self, w: usize) -> Option<&mut Wg> {
        self.wgs.get_mut(w.checked_sub(1)?)
    }
}

/// main was preempted past every step of its shape when no go statement is ahead and
/// its own frame (`main.main`'s line, the last of `lines`) is below every line its
/// steps come from (in a function the shape does not follow, like the print at the
/// end): the yield falls before its `exit`. The index of that step.
fn past_every_step(ops: &[Op], lines: &[String]) -> Option<usize> {
    let split = |s: &str| -> Option<(String, u32)> {
        let (f, l) = s.rsplit_once(':')?;
        Some((f.to_string(), l.parse().ok()?))
    };
    let (file, line) = split(lines.last()?)?;
    let exit = ops.iter().rposition(|o| o.op == "exit")?;
    let past = ops[..exit].iter().all(|o| match split(&o.pos) {
        Some((f, l)) => f == file && l < line,
        None => false,
    });
    past.then_some(exit)
}

/// The order of recorded values on one P, from the live state at `main.main`.
/// `main_preempted`: each time sysmon preempted main (measured at `gopreempt_m`), how
/// many goroutines had been created by then and the lines of main's frames
/// (`main.go:52`, innermost first). main yields to the global queue there (goschedImpl,
/// like `runtime.Gosched`): once that many exist, at its step on one of those lines if
/// one comes before its next go statement (a prologue of that call was the preemption
/// point); with no go statement ahead and main's frame past every line of its steps,
/// before its exit ([`past_every_step`]); else at once.
pub fn predict(
    profile: &Profile,
    prog: &Program,
    live: &LiveState,
    main_preempted: &[(u32, Vec<String>)],
) -> Result<Prediction, String> {
    if prog.goroutines.is_empty() {
        return Err("the shape has no main goroutine".into());
    }
    let n = prog.goroutines.len();
    let mut s = Sched::new(profile.clone(), 1);
    // goids as in the runq-order model: main = 1, the runtime's Gs found at main.main
    // next, the program's goroutines after them.
    let main_g = G::new(1, "main");
    {
        let p = &mut s.ps[0];
        p.schedtick = live.schedtick;
        p.runqhead = live.runqhead;
        p.runqtail = live.runqhead;
    }
    let mut next_id = 2u64;
    let mut opaque = |s: &mut Sched| {
        let g = G::new(next_id, format!("rt#{}", next_id - 2));
        next_id += 1;
        let _ = s;
        g
    };
    for _ in 0..live.local_len.min(RUNQ_LEN) {
        let g = opaque(&mut s);
        s.runqput(0, g, false);
    }
    if live.runnext {
        let g = opaque(&mut s);
        s.ps[0].runnext = Some(g);
    }
    for _ in 0..live.global_len {
        let g = opaque(&mut s);
        s.globrunqput(g);
    }
    let first_id = next_id - 1; // goroutine k has goid first_id + k (main is k = 0)
    s.execute(0, main_g, true);
    s.take_notes();
    let mut ids = std::collections::HashMap::new();
    ids.insert(1u64, 0usize);
    for k in 1..n {
        ids.insert(first_id + k as u64, k);
    }
    let mut r = Run {
        prog,
        s,
        pc: vec![0; n],
        st: vec![St::Live; n],
        chans: prog
            .chans
            .iter()
            .map(|c| Chan {
                cap: *c,
                ..Default::default()
            })
            .collect(),
        wgs: (0..prog.wgs).map(|_| Wg::default()).collect(),
        ids,
        first_id,
        order: Vec::new(),
        steps: Vec::new(),
        pre: main_preempted.iter().cloned().collect(),
        pre_target: None,
        created: 0,
        range_skip: vec![None; n],
        executed: 0,
        max_executed: 0,
    };
    // main's G is goid 1, not first_id + 0.
    let total_ops: usize = prog.goroutines.iter().map(|g| g.ops.len()).sum();
    let limit = 4 * (total_ops + live.local_len as usize + live.global_len as usize + 16);
    // A range over a channel runs its body once per value sent: at most every send
    // of the program, each a bounded number of steps.
    let sends = prog
        .goroutines
        .iter()
        .flat_map(|g| &g.ops)
        .filter(|o| o.op == "send")
        .count();
    r.max_executed = (total_ops + 16) * (sends + 2) + 1_000_000;
    let mut cur = 0usize;
    let mut rounds = 0usize;
    loop {
        let next = if cur == usize::MAX {
            // An opaque runtime G runs and parks.
            let (_, next) = r.s.park(0);
            Next::Switch(next)
        } else {
            r.run(cur)?
        };
        match next {
            Next::Exit => break,
            Next::Switch(None) => {
                let parked: Vec<&str> = (0..n)
                    .filter(|k| r.st[*k] == St::Parked)
                    .map(|k| prog.goroutines[k].label.as_str())
                    .collect();
                return Err(format!(
                    "the P went idle with main not finished (all goroutines asleep in the model: {}); the real program would deadlock or wait on something the model does not have",
                    parked.join(", ")
                ));
            }
            Next::Switch(Some(pick)) => {
                rounds += 1;
                if rounds > limit {
                    return Err("the model did not finish (step limit)".into());
                }
                let from = format!("{:?}", pick.reason);
                r.steps.push(format!(
                    "schedtick {}: {} ({})",
                    pick.schedtick, pick.g.label, from
                ));
                cur = match r.ids.get(&pick.g.id) {
                    Some(k) => *k,
                    None => usize::MAX,
                };
                if cur != usize::MAX && r.st[cur] == St::Dead {
                    return Err(format!("{} was picked after it exited", pick.g.label));
                }
            }
        }
    }
    Ok(Prediction {
        order: r.order,
        steps: r.steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::sched::{Block, Scenario, Yield, predict_order};

    fn op(op: &str) -> Op {
        Op {
            op: op.into(),
            g: 0,
            ch: 0,
            wg: 0,
            n: 0,
            label: String::new(),
            pos: "main.go:1".into(),
        }
    }
    fn with(mut o: Op, f: impl FnOnce(&mut Op)) -> Op {
        f(&mut o);
        o
    }

    /// The runq-order lab's program written as a shape by hand (what goshape writes
    /// for it): main spawns n; each yields if `yields(i)`, records i, signals.
    fn runq_order(n: u32, chan: bool, yields: &Yield) -> Program {
        let mut main = Vec::new();
        if !chan {
            main.push(with(op("wgadd"), |o| {
                o.wg = 1;
                o.n = n as i64
            }));
        }
        let mut gs = vec![];
        for i in 0..n {
            main.push(with(op("go"), |o| o.g = i as usize + 1));
            let mut ops = vec![];
            if yields.yields(i) {
                ops.push(op("gosched"));
            }
            ops.push(with(op("record"), |o| o.n = i as i64));
            ops.push(if chan {
                with(op("send"), |o| o.ch = 1)
            } else {
                with(op("wgadd"), |o| {
                    o.wg = 1;
                    o.n = -1
                })
            });
            ops.push(op("exit"));
            gs.push(Goroutine {
                label: format!("f({i})"),
                ops,
            });
        }
        if chan {
            for _ in 0..n {
                main.push(with(op("recv"), |o| o.ch = 1));
            }
        } else {
            main.push(with(op("wgwait"), |o| o.wg = 1));
        }
        main.push(op("exit"));
        let mut all = vec![Goroutine {
            label: "main".into(),
            ops: main,
        }];
        all.extend(gs);
        Program {
            goroutines: all,
            chans: if chan { vec![n as i64] } else { vec![] },
            wgs: if chan { 0 } else { 1 },
        }
    }

    /// The shape replay agrees with the runq-order model (itself checked against the
    /// real runtime) on every scenario kind, Go version and starting state.
    #[test]
    fn agrees_with_the_runq_order_model() {
        let yields = [
            Yield::None,
            Yield::All,
            Yield::EveryNth(3),
            Yield::EveryNth(5),
        ];
        for minor in [15, 17, 19, 25] {
            let profile = Profile::line(minor);
            for live in [
                LiveState::GO119_OBSERVED,
                LiveState::empty(5),
                LiveState {
                    schedtick: 59,
                    runqhead: 7,
                    local_len: 2,
                    runnext: true,
                    global_len: 3,
                },
            ] {
                for n in [1u32, 5, 257, 300] {
                    for chan in [false, true] {
                        for y in &yields {
                            for pre in [vec![], vec![3], vec![100, 257]] {
                                // The runq-order model checks for main's yield only
                                // before a go statement, so not after the last one
                                // (the program does yield there; the shape replay has it).
                                if pre.iter().any(|k| *k >= n) {
                                    continue;
                                }
                                let sc = Scenario {
                                    n,
                                    block: if chan {
                                        Block::BufferedChan
                                    } else {
                                        Block::WaitGroup
                                    },
                                    gosched: y.clone(),
                                    main_preempted_after: pre.clone(),
                                };
                                let want: Vec<i64> = predict_order(&profile, &sc, &live)
                                    .into_iter()
                                    .map(i64::from)
                                    .collect();
                                let measured: Vec<(u32, Vec<String>)> =
                                    pre.iter().map(|k| (*k, vec![])).collect();
                                let prog = runq_order(n, chan, y);
                                let got = predict(&profile, &prog, &live, &measured).unwrap().order;
                                assert_eq!(got, want, "go1.{minor} {sc:?} {live:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// An unbuffered send to a parked receiver puts it in runnext: the receiver runs
    /// before the goroutines already queued.
    #[test]
    fn handoff_to_a_parked_receiver_goes_to_runnext() {
        // main: go a; go b; recv ch; record 9; exit. a: send ch; record 1. b: record 2.
        let main = vec![
            with(op("go"), |o| o.g = 1),
            with(op("go"), |o| o.g = 2),
            with(op("recv"), |o| o.ch = 1),
            with(op("record"), |o| o.n = 9),
            op("exit"),
        ];
        let a = vec![
            with(op("send"), |o| o.ch = 1),
            with(op("record"), |o| o.n = 1),
            op("exit"),
        ];
        let b = vec![with(op("record"), |o| o.n = 2), op("exit")];
        let prog = Program {
            goroutines: vec![
                Goroutine {
                    label: "main".into(),
                    ops: main,
                },
                Goroutine {
                    label: "a".into(),
                    ops: a,
                },
                Goroutine {
                    label: "b".into(),
                    ops: b,
                },
            ],
            chans: vec![0],
            wgs: 0,
        };
        // main parks; b (runnext) runs: records 2; a (ring) sends: main to runnext,
        // a goes on and records 1; main runs and records 9.
        let p = predict(&Profile::line(19), &prog, &LiveState::empty(4), &[]).unwrap();
        assert_eq!(p.order, vec![2, 1, 9]);
    }

    #[test]
    fn a_deadlock_is_said() {
        let prog = Program {
            goroutines: vec![Goroutine {
                label: "main".into(),
                ops: vec![with(op("recv"), |o| o.ch = 1), op("exit")],
            }],
            chans: vec![0],
            wgs: 0,
        };
        let e = predict(&Profile::line(19), &prog, &LiveState::empty(4), &[]).unwrap_err();
        assert!(e.contains("went idle"), "{e}");
    }

    #[test]
    fn a_preemption_past_every_step_of_main_falls_before_its_exit() {
        // Measured on go1.24.4 (fidelity-order, yield-after n300): sysmon preempted main
        // in the print after its receive loop (main.go:30 <- main.go:50), with every
        // goroutine created. main: go a; go b; recv; record 9; recv; exit (main.go:51).
        let at = |o: Op, line: u32| with(o, |o| o.pos = format!("main.go:{line}"));
        let main = vec![
            at(with(op("go"), |o| o.g = 1), 40),
            at(with(op("go"), |o| o.g = 2), 40),
            at(with(op("recv"), |o| o.ch = 1), 48),
            at(with(op("record"), |o| o.n = 9), 49),
            at(with(op("recv"), |o| o.ch = 1), 48),
            at(op("exit"), 51),
        ];
        let child = |n: i64| {
            vec![
                at(with(op("record"), |o| o.n = n), 41),
                at(with(op("send"), |o| o.ch = 1), 42),
                at(op("exit"), 43),
            ]
        };
        let prog = Program {
            goroutines: vec![
                Goroutine {
                    label: "main".into(),
                    ops: main,
                },
                Goroutine {
                    label: "a".into(),
                    ops: child(1),
                },
                Goroutine {
                    label: "b".into(),
                    ops: child(2),
                },
            ],
            chans: vec![2],
            wgs: 0,
        };
        let live = LiveState::empty(4);
        let lines = vec!["main.go:30".to_string(), "main.go:50".to_string()];
        // main parks in its first receive, b (runnext) records 2 and readies main,
        // main records 9 and parks again, a records 1. Yielding right after the second
        // go statement instead would let b and a record before main: 2 1 9.
        let p = predict(&Profile::line(24), &prog, &live, &[(2, lines)]).unwrap();
        assert_eq!(p.order, vec![2, 9, 1], "{:?}", p.steps);
        // A line the steps ahead reach past (a loop header between go statements)
        // keeps the yield right after the second go statement.
        let p = predict(
            &Profile::line(24),
            &prog,
            &live,
            &[(2, vec!["main.go:40".into()])],
        )
        .unwrap();
        assert_eq!(p.order, vec![2, 1, 9], "{:?}", p.steps);
    }
}

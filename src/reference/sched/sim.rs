//! The "runq-order" simulator: the lab program's goroutines stepped through `Sched`.

// `x % 61 == 0` and nested `if`s are kept in the runtime's own shape (and
// let-chains would need edition 2024).
#![allow(unknown_lints, clippy::collapsible_if, clippy::manual_is_multiple_of)]

use super::explain::*;
use super::model::*;
use super::ops::*;
use super::scenario::*;
use crate::reference::Profile;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Main,
    Worker(u32),
    Opaque(u32),
}

struct Sim {
    s: Sched,
    explain: bool,
    roles: HashMap<u64, Role>,
    steps: Vec<Snapshot>,
    events: Vec<RunEvent>,
    order: Vec<u32>,
}

impl Sim {
    fn snap(&mut self, actor: &str, op: String, pick: Option<&Pick>) {
        let notes = self.s.take_notes();
        if !self.explain {
            return;
        }
        let p = &self.s.ps[0];
        let local = p.runq_contents();
        let global = self.s.global_contents();
        self.steps.push(Snapshot {
            step: self.steps.len(),
            actor: actor.to_string(),
            op,
            notes,
            picked: pick.map(|k| k.g.label.clone()),
            reason: pick.map(|k| k.reason.clone()),
            inherit_time: pick.map(|k| k.inherit_time),
            schedtick: p.schedtick,
            runnext: p.runnext.as_ref().map(|g| g.label.clone()),
            local_len: local.len() as u32,
            local: fold_labels(&local),
            global_len: global.len() as u32,
            global: fold_labels(&global),
        });
    }

    fn record(&mut self, kind: EventKind, index: u32) {
        let schedtick = self.s.ps[0].schedtick;
        self.events.push(RunEvent {
            kind,
            index,
            schedtick,
        });
    }
}

/// Simulate the lab scenario on one P from `live` and explain every step.
///
/// Each `go f(i)` is `newproc` → `runqput(next=true)`; main then blocks
/// (`park`); each picked G runs to its next blocking point: opaque runtime
/// Gs park, `f(i)` optionally `Gosched`s once (global queue), records `i`,
/// signals main (`ready(main)` → runnext when main is parked) and exits.
/// If `scenario.main_preempted_after` lists spawn counts, main is preempted
/// there (sysmon, `gopreempt_m` → `goschedImpl` → global queue) and later
/// continues its loop when picked again.
pub fn simulate(profile: &Profile, scenario: &Scenario, live: &LiveState) -> Explanation {
    simulate_with(profile, scenario, live, true)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MainState {
    /// Running its spawn loop (or runnable in the global queue after a
    /// preemption).
    Spawning,
    /// Parked in `wg.Wait` / `<-ch` (in the semaphore or channel wait queue).
    Parked,
    /// Readied by a worker (`goready` → runnext); its Wait/receive has
    /// completed and it runs when picked. Further senders find no waiting
    /// receiver and buffer.
    Readied,
}

struct Lab<'a> {
    sim: Sim,
    sc: &'a Scenario,
    main: G,
    first_worker: u64,
    spawned: u32,
    preempted: usize,
    main_state: MainState,
    yielded: Vec<bool>,
    wg: u32,
    received: u32,
    buffered: u32,
}

impl Lab<'_> {
    /// The running G gives up the P (park, exit, Gosched or preemption):
    /// snapshot the state *before* the scheduler runs, then `schedule()`.
    fn give_up(&mut self, actor: &str, op: String, to_global: bool) -> Option<Pick> {
        let g = self.sim.s.take_curg(0, "give_up");
        if to_global {
            self.sim
                .s
                .note(format!("goschedImpl: globrunqput({g}) (proc.go:3375)"));
            self.sim.s.globrunqput(g);
        }
        self.sim.snap(actor, op, None);
        self.sim.s.schedule(0)
    }

    /// main runs: continue the spawn loop, then block. `Some(next pick)` if
    /// main gave up the P, `None` if main.main returned (program exits).
    fn run_main(&mut self) -> Option<Option<Pick>> {
        self.main_state = MainState::Spawning;
        while self.spawned < self.sc.n {
            if self.preempted < self.sc.main_preempted_after.len()
                && self.sc.main_preempted_after[self.preempted] == self.spawned
            {
                self.preempted += 1;
                self.sim.s.note("sysmon: main ran >10ms on one schedtick → preemptone; gopreempt_m → goschedImpl".into());
                let op = format!("preempted after {} spawns", self.spawned);
                return Some(self.give_up("main", op, true));
            }
            let i = self.spawned;
            let id = self.first_worker + i as u64;
            self.sim.roles.insert(id, Role::Worker(i));
            self.sim.s.newproc(0, G::new(id, format!("f({i})")));
            self.sim.snap("main", format!("go f({i})"), None);
            self.spawned += 1;
        }
        match self.sc.block {
            Block::WaitGroup => {
                if self.wg == 0 {
                    return None; // Wait returns at once; main exits
                }
                self.main_state = MainState::Parked;
                Some(self.give_up("main", "wg.Wait → semacquire → gopark".into(), false))
            }
            Block::BufferedChan => loop {
                if self.received == self.sc.n {
                    return None;
                }
                if self.buffered > 0 {
                    self.buffered -= 1;
                    let k = self.received;
                    self.received += 1;
                    self.sim.record(EventKind::MainResumed, k);
                    continue;
                }
                self.main_state = MainState::Parked;
                return Some(self.give_up("main", "<-ch (empty) → gopark".into(), false));
            },
        }
    }

    /// main was picked: either it resumes its spawn loop (after a
    /// preemption) or it wakes from its blocking receive / Wait.
    fn resume_main(&mut self) -> Option<Option<Pick>> {
        if self.main_state == MainState::Readied {
            match self.sc.block {
                Block::WaitGroup => {
                    self.sim.record(EventKind::MainResumed, 0);
                    return None; // main returns: the program exits
                }
                Block::BufferedChan => {
                    let k = self.received;
                    self.received += 1;
                    self.sim.record(EventKind::MainResumed, k);
                }
            }
        }
        self.run_main()
    }

    /// f(i) runs until it gives up the P. Returns the next pick.
    fn run_worker(&mut self, i: u32, label: &str) -> Option<Pick> {
        if self.sc.gosched.yields(i) && !self.yielded[i as usize] {
            self.yielded[i as usize] = true;
            self.sim.record(EventKind::BeforeGosched, i);
            return self.give_up(label, "runtime.Gosched() → gosched_m".into(), true);
        }
        self.sim.record(EventKind::Record, i);
        self.sim.order.push(i);
        let parked = self.main_state == MainState::Parked;
        let op = match self.sc.block {
            Block::WaitGroup => {
                self.wg -= 1;
                if self.wg == 0 && parked {
                    self.main_state = MainState::Readied;
                    self.sim.s.ready(0, self.main.clone());
                    format!("record {i}; wg.Done (counter 0 → goready(main)); goexit")
                } else {
                    format!("record {i}; wg.Done; goexit")
                }
            }
            Block::BufferedChan => {
                if parked {
                    self.main_state = MainState::Readied;
                    self.sim.s.ready(0, self.main.clone());
                    format!("record {i}; ch <- (main waiting: direct send, goready(main)); goexit")
                } else {
                    self.buffered += 1;
                    format!("record {i}; ch <- (buffered); goexit")
                }
            }
        };
        self.give_up(label, op, false)
    }
}

/// [`simulate`] with `explain = false`: no snapshots (`steps` stays empty),
/// linear time; use it for large N.
pub fn simulate_with(
    profile: &Profile,
    scenario: &Scenario,
    live: &LiveState,
    explain: bool,
) -> Explanation {
    let mut sim = Sim {
        s: Sched::new(profile.clone(), 1),
        explain,
        roles: HashMap::new(),
        steps: Vec::new(),
        events: Vec::new(),
        order: Vec::new(),
    };
    // goids: main = 1, opaque runtime Gs next, workers after (like goidgen).
    let main = G::new(1, "main");
    sim.roles.insert(1, Role::Main);
    let mut next_id = 2u64;
    {
        let p = &mut sim.s.ps[0];
        p.schedtick = live.schedtick;
        p.runqhead = live.runqhead;
        p.runqtail = live.runqhead;
    }
    let mut k = 0u32;
    let mut opaque = |sim: &mut Sim| {
        let g = G::new(next_id, format!("rt#{k}"));
        sim.roles.insert(next_id, Role::Opaque(k));
        next_id += 1;
        k += 1;
        g
    };
    for _ in 0..live.local_len.min(RUNQ_LEN) {
        let g = opaque(&mut sim);
        sim.s.runqput(0, g, false);
    }
    if live.runnext {
        let g = opaque(&mut sim);
        sim.s.ps[0].runnext = Some(g);
    }
    for _ in 0..live.global_len {
        let g = opaque(&mut sim);
        sim.s.globrunqput(g);
    }
    let n_opaque = k;
    let first_worker = next_id;
    sim.s.execute(0, main.clone(), true);
    sim.s.take_notes();
    sim.snap("main", "main.main starts (live state)".into(), None);

    let mut lab = Lab {
        sim,
        sc: scenario,
        main,
        first_worker,
        spawned: 0,
        preempted: 0,
        main_state: MainState::Spawning,
        yielded: vec![false; scenario.n as usize],
        wg: scenario.n,
        received: 0,
        buffered: 0,
    };
    let mut error = None;
    let mut pick = match lab.run_main() {
        None => return finish(lab.sim, profile, scenario, live, None),
        Some(p) => p,
    };
    let limit =
        16 * (scenario.n as usize + n_opaque as usize + scenario.main_preempted_after.len() + 16);
    let mut rounds = 0usize;
    loop {
        rounds += 1;
        if rounds > limit {
            error = Some("step limit reached".to_string());
            break;
        }
        let pk = match pick.take() {
            Some(pk) => pk,
            None => {
                error =
                    Some("P went idle with main still blocked (deadlock in the model)".to_string());
                break;
            }
        };
        let op = format!("schedule → {}", profile.find_runnable_name());
        lab.sim.snap("sched", op, Some(&pk));
        let label = pk.g.label.clone();
        match lab.sim.roles.get(&pk.g.id).copied() {
            Some(Role::Opaque(_)) => {
                pick = lab.give_up(&label, "opaque runtime G runs and parks".into(), false);
            }
            Some(Role::Worker(i)) => pick = lab.run_worker(i, &label),
            Some(Role::Main) => match lab.resume_main() {
                None => break,
                Some(p) => pick = p,
            },
            None => {
                error = Some(format!("unknown G {label}"));
                break;
            }
        }
    }
    finish(lab.sim, profile, scenario, live, error)
}

fn finish(
    sim: Sim,
    profile: &Profile,
    scenario: &Scenario,
    live: &LiveState,
    error: Option<String>,
) -> Explanation {
    Explanation {
        profile: profile.clone(),
        scenario: scenario.clone(),
        live: *live,
        order: sim.order,
        events: sim.events,
        steps: sim.steps,
        error,
    }
}

/// Just the predicted order of recorded indices.
pub fn predict_order(profile: &Profile, scenario: &Scenario, live: &LiveState) -> Vec<u32> {
    simulate_with(profile, scenario, live, false).order
}

//! The "runq-order" lab's inputs: the program's scenario, the live state read at
//! `main.main`, and the events the program records.

// `x % 61 == 0` and nested `if`s are kept in the runtime's own shape (and
// let-chains would need edition 2024).
#![allow(unknown_lints, clippy::collapsible_if, clippy::manual_is_multiple_of)]

use serde::Serialize;

// ---------------------------------------------------------------------------
// The "runq-order" lab: scenario, live state, simulation, explanation
// ---------------------------------------------------------------------------

/// How main waits for the N goroutines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Block {
    /// `wg.Add(N)`; each G calls `wg.Done()`; main `wg.Wait()`s (parks in
    /// semacquire; the last `Done` → `semrelease1` → `readyWithTime` →
    /// `goready(main)` → `ready(main, next=true)` → **runnext**).
    WaitGroup,
    /// `ch := make(chan struct{}, N)`; each G sends once; main receives N
    /// times. A send to a parked receiver readies main into runnext; else it
    /// is buffered and main takes it later without parking.
    BufferedChan,
}

/// Which goroutines call `runtime.Gosched()` once before recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Yield {
    None,
    All,
    /// Goroutines with `i % k == 0`.
    EveryNth(u32),
    Only(Vec<u32>),
}

impl Yield {
    pub fn yields(&self, i: u32) -> bool {
        match self {
            Yield::None => false,
            Yield::All => true,
            Yield::EveryNth(k) => *k != 0 && i % *k == 0,
            Yield::Only(v) => v.contains(&i),
        }
    }
}

/// The lab program: GOMAXPROCS=1; `for i := 0; i < n; i++ { go f(i) }`;
/// then main blocks; `f(i)` (optionally `runtime.Gosched()` first) records
/// `i` with an atomic index into a preallocated slice, then signals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scenario {
    pub n: u32,
    pub block: Block,
    pub gosched: Yield,
    /// Spawn counts (ascending) after which sysmon preempts main because it
    /// ran for more than 10ms on one schedtick (`preemptone`, then
    /// `gopreempt_m` → `goschedImpl` puts main on the global queue). Empty
    /// means no preemption. The model cannot predict this (it has no
    /// clock); on the test machine (go1.19.8) it first happened after about
    /// 6,800-10,300 spawns and never below 5,000.
    pub main_preempted_after: Vec<u32>,
}

impl Scenario {
    pub fn new(n: u32) -> Scenario {
        Scenario {
            n,
            block: Block::WaitGroup,
            gosched: Yield::None,
            main_preempted_after: Vec::new(),
        }
    }
}

/// Scheduler state read from the live process at the start of `main.main`
/// (P0's `schedtick`, `runqhead`, `runqtail - runqhead`, whether `runnext`
/// is set, and `sched.runqsize`). Gs found there are opaque runtime Gs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LiveState {
    pub schedtick: u32,
    pub runqhead: u32,
    pub local_len: u32,
    pub runnext: bool,
    pub global_len: u32,
}

impl LiveState {
    /// Observed at `main.main` with go1.19.8 linux/amd64, GOMAXPROCS=1, for
    /// the lab program (imports fmt, os, flag, sync, ...): `schedtick=4
    /// runqhead=2 runqtail=2 runnext=goid 5 (runtime.runfinq, created by
    /// os's SetFinalizer during init) globrunqsize=0`. About 92-97% of runs
    /// read this; the rest read `schedtick=5`, which moves every fairness
    /// pick one G earlier. That is why the live state must be read.
    pub const GO119_OBSERVED: LiveState = LiveState {
        schedtick: 4,
        runqhead: 2,
        local_len: 0,
        runnext: true,
        global_len: 0,
    };

    /// Nothing queued; the given schedtick.
    pub fn empty(schedtick: u32) -> LiveState {
        LiveState {
            schedtick,
            runqhead: 0,
            local_len: 0,
            runnext: false,
            global_len: 0,
        }
    }
}

/// What a G recorded (mirrors the Go lab program's `S`/`R`/`M` events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EventKind {
    /// `S`: f(i) started and is about to call `runtime.Gosched()`.
    BeforeGosched,
    /// `R`: f(i) recorded its index (this is the lab's answer).
    Record,
    /// `M`: main resumed (`index` = which receive, 0 for WaitGroup).
    MainResumed,
}

impl EventKind {
    pub fn letter(self) -> char {
        match self {
            EventKind::BeforeGosched => 'S',
            EventKind::Record => 'R',
            EventKind::MainResumed => 'M',
        }
    }
}

/// One recorded event with the P's schedtick at that moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RunEvent {
    pub kind: EventKind,
    pub index: u32,
    pub schedtick: u32,
}

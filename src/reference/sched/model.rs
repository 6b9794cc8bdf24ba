//! The model's state: goroutines, Ps with `runnext` and the 256-slot ring, the
//! runtime's steal order, and what one scheduling decision returns.

// `x % 61 == 0` and nested `if`s are kept in the runtime's own shape (and
// let-chains would need edition 2024).
#![allow(unknown_lints, clippy::collapsible_if, clippy::manual_is_multiple_of)]

use serde::Serialize;
use std::fmt;

/// `len(p.runq)` = 256 (`runq [256]guintptr`, runtime2.go:631).
pub const RUNQ_LEN: u32 = 256;
/// `len(p.runq)/2`: the batch `runqputslow` moves and the cap on a global batch.
pub const RUNQ_HALF: u32 = RUNQ_LEN / 2;
/// `const stealTries = 4` (proc.go:2910).
pub const STEAL_TRIES: u32 = 4;
/// The fairness period of `schedtick%61` (proc.go:2605).
pub const FAIRNESS_PERIOD: u32 = 61;

pub(super) fn throw(msg: &str) -> ! {
    panic!("fatal error: {msg} (modelled runtime throw)")
}

// ---------------------------------------------------------------------------
// G and P
// ---------------------------------------------------------------------------

/// A goroutine: its id (like `g.goid`) and a label for explanations.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct G {
    pub id: u64,
    pub label: String,
}

impl G {
    pub fn new(id: u64, label: impl Into<String>) -> G {
        G {
            id,
            label: label.into(),
        }
    }
}

impl fmt::Display for G {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// `p.status`, reduced to what the model needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PStatus {
    /// `_Pidle`: on the idle list; skipped by stealing (`idlepMask`).
    Idle,
    /// `_Prunning`: owned by an M.
    Running,
    /// `_Psyscall`: its M is in a syscall; sysmon may `handoffp` it.
    Syscall,
}

/// A P: `runnext`, the 256-slot local ring and `schedtick` (runtime2.go:609-644).
///
/// As in the runtime, `runqget` does not clear a consumed slot; only
/// `runqhead..runqtail` (wrapping `u32`, index `% 256`) is meaningful.
#[derive(Clone, Debug)]
pub struct P {
    pub id: usize,
    pub status: PStatus,
    pub schedtick: u32,
    pub runqhead: u32,
    pub runqtail: u32,
    pub runq: Vec<Option<G>>,
    pub runnext: Option<G>,
    /// `m.curg` of the M that owns this P (the running G), if any.
    pub curg: Option<G>,
}

impl P {
    pub fn new(id: usize) -> P {
        P {
            id,
            status: PStatus::Running,
            schedtick: 0,
            runqhead: 0,
            runqtail: 0,
            runq: vec![None; RUNQ_LEN as usize],
            runnext: None,
            curg: None,
        }
    }

    /// `runqtail - runqhead` (wrapping).
    pub fn runq_len(&self) -> u32 {
        self.runqtail.wrapping_sub(self.runqhead)
    }

    /// The Gs in the ring from head to tail (runnext not included).
    pub fn runq_contents(&self) -> Vec<G> {
        (0..self.runq_len())
            .map(|i| self.slot(self.runqhead.wrapping_add(i)).clone())
            .collect()
    }

    /// `runqempty` (5754): no G in the ring and none in runnext.
    pub fn runqempty(&self) -> bool {
        self.runqhead == self.runqtail && self.runnext.is_none()
    }

    pub(super) fn slot(&self, idx: u32) -> &G {
        match &self.runq[(idx % RUNQ_LEN) as usize] {
            Some(g) => g,
            None => throw("empty slot inside runqhead..runqtail"),
        }
    }
}

// ---------------------------------------------------------------------------
// Steal order (runtime's randomOrder, proc.go:6222-6270)
// ---------------------------------------------------------------------------

/// `randomOrder`: enumerates all Ps starting at `i % count` with a stride
/// coprime to `count` (proc.go:6222).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RandomOrder {
    pub count: u32,
    pub coprimes: Vec<u32>,
}

/// `randomEnum` (proc.go:6227).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RandomEnum {
    pub i: u32,
    pub count: u32,
    pub pos: u32,
    pub inc: u32,
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

impl RandomOrder {
    /// `(*randomOrder).reset` (6234), called by procresize.
    pub fn reset(count: u32) -> RandomOrder {
        let coprimes = (1..=count).filter(|&i| gcd(i, count) == 1).collect();
        RandomOrder { count, coprimes }
    }

    /// `(*randomOrder).start(i)` (6244).
    pub fn start(&self, i: u32) -> RandomEnum {
        RandomEnum {
            i: 0,
            count: self.count,
            pos: i % self.count,
            inc: self.coprimes[((i / self.count) as usize) % self.coprimes.len()],
        }
    }

    /// The full victim order produced by `start(i)`.
    pub fn order(&self, i: u32) -> Vec<usize> {
        let mut e = self.start(i);
        let mut v = Vec::new();
        while !e.done() {
            v.push(e.position());
            e.next();
        }
        v
    }
}

impl RandomEnum {
    pub fn done(&self) -> bool {
        self.i == self.count
    }
    pub fn next(&mut self) {
        self.i += 1;
        self.pos = (self.pos + self.inc) % self.count;
    }
    pub fn position(&self) -> usize {
        self.pos as usize
    }
}

/// Deterministic stand-in for the `fastrand()` passed to `stealOrder.start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StealRand {
    /// Always the same start value.
    Fixed(u32),
    /// Cycle through these values (one per steal round).
    Cycle { values: Vec<u32>, next: usize },
}

impl StealRand {
    pub fn next_value(&mut self) -> u32 {
        match self {
            StealRand::Fixed(v) => *v,
            StealRand::Cycle { values, next } => {
                if values.is_empty() {
                    return 0;
                }
                let v = values[*next % values.len()];
                *next += 1;
                v
            }
        }
    }
}

/// Why `findRunnable` returned this G.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum PickReason {
    /// `runqget` took `p.runnext` (inheritTime = true).
    Runnext,
    /// `runqget` took the head of the local ring.
    LocalQueue,
    /// `schedtick%61 == 0` and the global queue was not empty.
    GlobalFairness,
    /// Local queue empty: a batch from the global queue (first one runs).
    Global,
    /// Stolen from another P's ring (or its runnext in the last round).
    Stolen { from: usize },
}

/// The result of one scheduling decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pick {
    pub g: G,
    pub inherit_time: bool,
    pub reason: PickReason,
    /// The P's schedtick after `execute` (set by [`Sched::schedule`]).
    pub schedtick: u32,
}

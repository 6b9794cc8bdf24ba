//! `Sched`: the run queues and the runtime's operations on them, with the runtime's
//! names (`runqput`, `runqputslow`, `runqget`, `globrunqget`, `runqsteal`, `findRunnable`,
//! `schedule`, `newproc`, `ready`, `goexit`...).

// `x % 61 == 0` and nested `if`s are kept in the runtime's own shape (and
// let-chains would need edition 2024).
#![allow(unknown_lints, clippy::collapsible_if, clippy::manual_is_multiple_of)]

use super::model::*;
use crate::reference::{GlobalGet, Profile, StealImpl};
use std::collections::VecDeque;

// ---------------------------------------------------------------------------
// Sched
// ---------------------------------------------------------------------------

/// `schedt` (runtime2.go:767) reduced to the run queues, plus the Ps.
#[derive(Clone, Debug)]
pub struct Sched {
    pub profile: Profile,
    pub gomaxprocs: i32,
    pub ps: Vec<P>,
    /// Global run queue (FIFO; `globrunqputhead` pushes at the front).
    pub runq: VecDeque<G>,
    pub runqsize: i32,
    pub steal_order: RandomOrder,
    pub steal_rand: StealRand,
    /// Human-readable notes appended by operations (drained by explanations).
    pub notes: Vec<String>,
}

impl Sched {
    /// A scheduler with `gomaxprocs` Ps, all `Running` (owned by some M) with
    /// empty queues, as after `procresize`.
    pub fn new(profile: Profile, gomaxprocs: usize) -> Sched {
        assert!(gomaxprocs >= 1, "GOMAXPROCS must be at least 1");
        Sched {
            profile,
            gomaxprocs: gomaxprocs as i32,
            ps: (0..gomaxprocs).map(P::new).collect(),
            runq: VecDeque::new(),
            runqsize: 0,
            steal_order: RandomOrder::reset(gomaxprocs as u32),
            steal_rand: StealRand::Fixed(0),
            notes: Vec::new(),
        }
    }

    pub(super) fn note(&mut self, s: String) {
        self.notes.push(s);
    }

    /// Drain the notes written since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Global queue contents, head first.
    pub fn global_contents(&self) -> Vec<G> {
        self.runq.iter().cloned().collect()
    }

    // ----- local queue ---------------------------------------------------

    /// `runqput(p, gp, next)` (5785). With `next`, `gp` goes to `runnext`
    /// and the old runnext (if any) is kicked to the **tail** of the ring.
    /// If the ring is full, `runqputslow` moves half of it plus the G to the
    /// global queue.
    pub fn runqput(&mut self, p: usize, g: G, next: bool) {
        let mut gp = g;
        if next {
            let newlabel = gp.label.clone();
            match self.ps[p].runnext.replace(gp) {
                None => {
                    self.note(format!(
                        "runqput(p{p}, {newlabel}, next=true): runnext = {newlabel}"
                    ));
                    return;
                }
                Some(old) => {
                    self.note(format!(
                        "runqput(p{p}, {newlabel}, next=true): runnext = {newlabel}; old runnext {old} kicked to the tail (proc.go:5799-5800)"
                    ));
                    gp = old;
                }
            }
        }
        let pp = &mut self.ps[p];
        let h = pp.runqhead;
        let t = pp.runqtail;
        if t.wrapping_sub(h) < RUNQ_LEN {
            pp.runq[(t % RUNQ_LEN) as usize] = Some(gp);
            pp.runqtail = t.wrapping_add(1);
            return;
        }
        // The runtime retries (`goto retry`) if runqputslow's CAS on
        // runqhead fails because a thief moved it; the model has no
        // concurrent thief, so the CAS always succeeds.
        if !self.runqputslow(p, gp, h, t) {
            throw("runqputslow: unexpected CAS failure in the model");
        }
    }

    /// `runqputslow(p, gp, h, t)` (5820): the ring is full; move its first
    /// `(t-h)/2 = 128` Gs plus `gp` (129 in all, in that order) to the
    /// global queue with `globrunqputbatch`.
    pub fn runqputslow(&mut self, p: usize, gp: G, h: u32, t: u32) -> bool {
        let n = t.wrapping_sub(h) / 2;
        if n != RUNQ_HALF {
            throw("runqputslow: queue is not full");
        }
        if self.ps[p].runqhead != h {
            return false; // the CasRel would fail
        }
        let mut batch: Vec<G> = (0..n)
            .map(|i| self.ps[p].slot(h.wrapping_add(i)).clone())
            .collect();
        self.ps[p].runqhead = h.wrapping_add(n);
        let first = batch[0].label.clone();
        let last = batch[batch.len() - 1].label.clone();
        let gl = gp.label.clone();
        batch.push(gp);
        self.note(format!(
            "local ring full (256): runqputslow moves {first}..{last} (128) + {gl} = 129 Gs to the global queue (proc.go:5820-5854)"
        ));
        self.globrunqputbatch(batch);
        true
    }

    /// `runqget(p)` (5897): runnext first (`inheritTime = true`), else the
    /// head of the ring (`false`), else `None`.
    pub fn runqget(&mut self, p: usize) -> Option<(G, bool)> {
        let pp = &mut self.ps[p];
        if let Some(g) = pp.runnext.take() {
            return Some((g, true));
        }
        let h = pp.runqhead;
        let t = pp.runqtail;
        if t == h {
            return None;
        }
        let g = pp.slot(h).clone();
        pp.runqhead = h.wrapping_add(1);
        Some((g, false))
    }

    /// `runqputbatch(pp, q)` (5863 / tip): append as many as fit to the
    /// ring tail; what does not fit stays in `q` (1.19 then spills it to the
    /// global queue; tip leaves it to the caller).
    pub fn runqputbatch(&mut self, p: usize, q: &mut VecDeque<G>) {
        let pp = &mut self.ps[p];
        let h = pp.runqhead;
        let mut t = pp.runqtail;
        while t.wrapping_sub(h) < RUNQ_LEN {
            match q.pop_front() {
                Some(g) => {
                    pp.runq[(t % RUNQ_LEN) as usize] = Some(g);
                    t = t.wrapping_add(1);
                }
                None => break,
            }
        }
        pp.runqtail = t;
    }

    // ----- global queue --------------------------------------------------

    /// `globrunqput(gp)` (5568): push at the back.
    pub fn globrunqput(&mut self, g: G) {
        self.runq.push_back(g);
        self.runqsize += 1;
    }

    /// `globrunqputhead(gp)`: push at the front (used by `(*p).destroy`).
    pub fn globrunqputhead(&mut self, g: G) {
        self.runq.push_front(g);
        self.runqsize += 1;
    }

    /// `globrunqputbatch(batch, n)` (5593): append in order.
    pub fn globrunqputbatch(&mut self, batch: Vec<G>) {
        self.runqsize += batch.len() as i32;
        self.runq.extend(batch);
    }

    /// `globrunqget(p, max)` (≤1.24; 1.19.8:5603). Batch size:
    /// `n = runqsize/gomaxprocs + 1`, then `min(n, runqsize)`, then
    /// `min(n, max)` if `max > 0`, then `min(n, 128)`. Returns the first; the
    /// other `n-1` go to the local ring with `runqput(p, g, false)`.
    pub fn globrunqget(&mut self, p: usize, max: i32) -> Option<G> {
        if self.runqsize == 0 {
            return None;
        }
        let mut n = self.runqsize / self.gomaxprocs + 1;
        if n > self.runqsize {
            n = self.runqsize;
        }
        if max > 0 && n > max {
            n = max;
        }
        if n > RUNQ_HALF as i32 {
            n = RUNQ_HALF as i32;
        }
        self.runqsize -= n;
        let gp = self
            .runq
            .pop_front()
            .unwrap_or_else(|| throw("global runq empty with non-zero runqsize"));
        if n > 1 {
            self.note(format!(
                "globrunqget(p{p}, {max}): n = {n}; {gp} runs, {} more moved to the local ring",
                n - 1
            ));
        }
        for _ in 1..n {
            let g1 = self
                .runq
                .pop_front()
                .unwrap_or_else(|| throw("global runq shorter than runqsize"));
            self.runqput(p, g1, false);
        }
        Some(gp)
    }

    /// 1.25+ `globrunqget()`: exactly one G (fairness path).
    pub fn globrunqget_one(&mut self) -> Option<G> {
        let g = self.runq.pop_front()?;
        self.runqsize -= 1;
        Some(g)
    }

    /// 1.25+ `globrunqgetbatch(n)`:
    /// `n = min(n, size, size/gomaxprocs+1)`; returns the first and the rest.
    pub fn globrunqgetbatch(&mut self, n: i32) -> (Option<G>, VecDeque<G>) {
        let mut q = VecDeque::new();
        if self.runqsize == 0 {
            return (None, q);
        }
        let n = n
            .min(self.runqsize)
            .min(self.runqsize / self.gomaxprocs + 1);
        let gp = self.runq.pop_front();
        for _ in 1..n {
            if let Some(g) = self.runq.pop_front() {
                q.push_back(g);
            }
        }
        self.runqsize -= n;
        (gp, q)
    }

    pub(super) fn global_batch(&mut self, p: usize) -> Option<G> {
        match self.profile.global_get {
            GlobalGet::RunqputEach => self.globrunqget(p, 0),
            GlobalGet::BatchThenRunqputbatch => {
                let (gp, mut q) = self.globrunqgetbatch(RUNQ_HALF as i32);
                if let Some(g) = &gp {
                    if !q.is_empty() {
                        self.note(format!(
                            "globrunqgetbatch(128): {g} runs, {} more moved to the local ring (runqputbatch)",
                            q.len()
                        ));
                    }
                }
                self.runqputbatch(p, &mut q);
                if !q.is_empty() {
                    throw("Couldn't put Gs into empty local runq");
                }
                gp
            }
        }
    }

    pub(super) fn global_fairness(&mut self, p: usize) -> Option<G> {
        match self.profile.global_get {
            GlobalGet::RunqputEach => self.globrunqget(p, 1),
            GlobalGet::BatchThenRunqputbatch => self.globrunqget_one(),
        }
    }

    // ----- stealing ------------------------------------------------------

    /// `runqgrab(victim, batch, head, stealRunNextG)` (5963): take
    /// `n - n/2` (half, rounded up) from the victim's head. If there are
    /// none and `steal_runnext`, take the victim's runnext instead (the
    /// runtime first sleeps 3µs if the victim is running; not modelled).
    pub fn runqgrab(&mut self, victim: usize, steal_runnext: bool) -> Vec<G> {
        let pp = &mut self.ps[victim];
        let h = pp.runqhead;
        let t = pp.runqtail;
        let mut n = t.wrapping_sub(h);
        n -= n / 2;
        if n == 0 {
            if steal_runnext {
                if let Some(g) = pp.runnext.take() {
                    return vec![g];
                }
            }
            return Vec::new();
        }
        if n > RUNQ_HALF {
            throw("runqgrab: inconsistent h and t"); // runtime: `continue` (retry)
        }
        let batch: Vec<G> = (0..n).map(|i| pp.slot(h.wrapping_add(i)).clone()).collect();
        pp.runqhead = h.wrapping_add(n);
        batch
    }

    /// `runqsteal(p, p2, stealRunNextG)` (6018): grab from `victim`; the
    /// **last** grabbed G is returned, the others are published on `p`'s tail.
    pub fn runqsteal(&mut self, p: usize, victim: usize, steal_runnext: bool) -> Option<G> {
        let mut grabbed = self.runqgrab(victim, steal_runnext);
        let gp = grabbed.pop()?;
        let n = grabbed.len() as u32;
        if n == 0 {
            return Some(gp);
        }
        let pp = &mut self.ps[p];
        let t = pp.runqtail;
        let h = pp.runqhead;
        if t.wrapping_sub(h).wrapping_add(n) >= RUNQ_LEN {
            throw("runqsteal: runq overflow");
        }
        for (i, g) in grabbed.into_iter().enumerate() {
            pp.runq[(t.wrapping_add(i as u32) % RUNQ_LEN) as usize] = Some(g);
        }
        pp.runqtail = t.wrapping_add(n);
        Some(gp)
    }

    /// `stealWork` (1.17+, 2905) or the inline loop of 1.15/1.16: four
    /// rounds over the other non-idle Ps in `stealOrder` order; `runnext`
    /// may be stolen only in the last round. Returns the G and its victim.
    pub fn steal_work(&mut self, p: usize) -> Option<(G, usize)> {
        for i in 0..STEAL_TRIES {
            let steal_runnext = match self.profile.steal {
                StealImpl::StealWork => i == STEAL_TRIES - 1,
                StealImpl::InlineFindrunnable => i > 2,
            };
            let start = self.steal_rand.next_value();
            let mut e = self.steal_order.start(start);
            while !e.done() {
                let p2 = e.position();
                e.next();
                if p2 == p || self.ps[p2].status == PStatus::Idle {
                    continue;
                }
                if let Some(g) = self.runqsteal(p, p2, steal_runnext) {
                    self.note(format!(
                        "p{p} stole from p{p2} (round {}, runnext allowed: {steal_runnext})",
                        i + 1
                    ));
                    return Some((g, p2));
                }
            }
        }
        None
    }

    // ----- scheduling ----------------------------------------------------

    /// `findRunnable` (1.19+, 2561) / `schedule`+`findrunnable` (≤1.18):
    /// fairness check, local `runqget`, global batch, stealing. If nothing
    /// is found the P goes idle (`pidleput`) and `None` is returned (the
    /// runtime would `stopm` and block).
    pub fn find_runnable(&mut self, p: usize) -> Option<Pick> {
        let tick = self.ps[p].schedtick;
        if tick % FAIRNESS_PERIOD == 0 && self.runqsize > 0 {
            if let Some(g) = self.global_fairness(p) {
                let site = self.profile.fairness_site_ref();
                self.note(format!(
                    "schedtick {tick} % 61 == 0 and global queue not empty: take {g} from the global queue [{site}]"
                ));
                return Some(Pick {
                    g,
                    inherit_time: false,
                    reason: PickReason::GlobalFairness,
                    schedtick: tick,
                });
            }
        }
        if let Some((g, inherit)) = self.runqget(p) {
            let reason = if inherit {
                PickReason::Runnext
            } else {
                PickReason::LocalQueue
            };
            return Some(Pick {
                g,
                inherit_time: inherit,
                reason,
                schedtick: tick,
            });
        }
        if self.runqsize != 0 {
            if let Some(g) = self.global_batch(p) {
                return Some(Pick {
                    g,
                    inherit_time: false,
                    reason: PickReason::Global,
                    schedtick: tick,
                });
            }
        }
        // netpoll(0): not modelled.
        if self.gomaxprocs > 1 {
            if let Some((g, from)) = self.steal_work(p) {
                return Some(Pick {
                    g,
                    inherit_time: false,
                    reason: PickReason::Stolen { from },
                    schedtick: tick,
                });
            }
        }
        // Re-check of the global queue under sched.lock: nothing can have
        // changed in the model. Then releasep + pidleput.
        self.ps[p].status = PStatus::Idle;
        self.note(format!("p{p}: nothing to run; pidleput (P idle, M stops)"));
        None
    }

    /// `execute(gp, inheritTime)` (2517): `schedtick++` only when
    /// `!inheritTime` (2536); the G becomes the P's running G.
    pub fn execute(&mut self, p: usize, g: G, inherit_time: bool) {
        let pp = &mut self.ps[p];
        if !inherit_time {
            pp.schedtick = pp.schedtick.wrapping_add(1);
        }
        pp.status = PStatus::Running;
        pp.curg = Some(g);
    }

    /// `schedule()` (3185): `findRunnable` then `execute`. Returns what runs
    /// next on `p` (with the schedtick after execute), or `None` if `p` idled.
    pub fn schedule(&mut self, p: usize) -> Option<Pick> {
        if self.ps[p].curg.is_some() {
            throw("schedule: P still has a running G (park/exit it first)");
        }
        let mut pick = self.find_runnable(p)?;
        self.execute(p, pick.g.clone(), pick.inherit_time);
        pick.schedtick = self.ps[p].schedtick;
        Some(pick)
    }

    /// `dropg`: detach and return the running G of `p`.
    pub(super) fn take_curg(&mut self, p: usize, what: &str) -> G {
        match self.ps[p].curg.take() {
            Some(g) => g,
            None => throw(&format!("{what}: no running G on p{p}")),
        }
    }

    /// `wakep()` as a query: the idle P on which the runtime would start a
    /// spinning M (only if `mainStarted`). Nothing is changed.
    pub fn wakep(&self) -> Option<usize> {
        self.ps.iter().position(|pp| pp.status == PStatus::Idle)
    }

    /// `newproc` (4094): the new G goes to `runnext` (`runqput(p, newg,
    /// true)`, 4101), kicking the previous runnext to the tail. Returns
    /// the idle P `wakep` would wake, if any.
    pub fn newproc(&mut self, p: usize, g: G) -> Option<usize> {
        self.runqput(p, g, true);
        self.wakep()
    }

    /// `runtime.Gosched` → `gosched_m` → `goschedImpl` (3366): the running G
    /// goes to the **global** queue tail (3375), then `schedule()`.
    pub fn gosched(&mut self, p: usize) -> Option<Pick> {
        let g = self.take_curg(p, "gosched");
        self.note(format!(
            "{g}: runtime.Gosched → goschedImpl → globrunqput({g}) (proc.go:3375)"
        ));
        self.globrunqput(g);
        self.schedule(p)
    }

    /// `goyield_m` (3457): the running G goes to the **local** tail.
    pub fn goyield(&mut self, p: usize) -> Option<Pick> {
        let g = self.take_curg(p, "goyield");
        self.runqput(p, g, false);
        self.schedule(p)
    }

    /// `gopark` → `park_m` (3341): the running G stops (`_Gwaiting`) and is
    /// returned to the caller; then `schedule()`.
    pub fn park(&mut self, p: usize) -> (G, Option<Pick>) {
        let g = self.take_curg(p, "park");
        let next = self.schedule(p);
        (g, next)
    }

    /// `ready(gp, traceskip, next=true)` (843; via `goready`): the readied G
    /// goes to `runnext` of the **current** P (`runqput(..., next)`, 860).
    pub fn ready(&mut self, p: usize, g: G) -> Option<usize> {
        self.runqput(p, g, true);
        self.wakep()
    }

    /// `goexit1` → `goexit0` (3480): the running G dies; `schedule()`.
    pub fn goexit(&mut self, p: usize) -> (G, Option<Pick>) {
        let g = self.take_curg(p, "goexit");
        let next = self.schedule(p);
        (g, next)
    }

    /// Minimal syscall model: the running G enters a blocking syscall and
    /// keeps the P in `Syscall` status.
    pub fn entersyscall(&mut self, p: usize) {
        self.ps[p].status = PStatus::Syscall;
    }

    /// `handoffp` (2354), after sysmon retakes a P from a syscall: if the P
    /// has local work or the global queue is not empty, an M is started on
    /// it (`startm`; returns `true`, call [`Sched::schedule`] for it);
    /// otherwise the P goes idle. The G in the syscall keeps no P.
    pub fn handoffp(&mut self, p: usize) -> bool {
        let insys = self.ps[p].curg.take();
        if let Some(g) = insys {
            self.note(format!("{g} stays in its syscall without a P"));
        }
        if !self.ps[p].runqempty() || self.runqsize != 0 {
            self.ps[p].status = PStatus::Running;
            true
        } else {
            self.ps[p].status = PStatus::Idle;
            false
        }
    }

    /// `exitsyscall0` (3940), when the G returns from a syscall and its P
    /// was taken: it takes an idle P and runs on it (`execute(gp, false)`),
    /// or goes to the global queue (3950) and its M stops.
    pub fn exitsyscall0(&mut self, g: G) -> Option<usize> {
        match self.wakep() {
            Some(p) => {
                self.execute(p, g, false);
                Some(p)
            }
            None => {
                self.globrunqput(g);
                None
            }
        }
    }
}

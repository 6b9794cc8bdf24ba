//! What differs between Go versions in the scheduler's code (not in its run order).

// `x % 61 == 0` and nested `if`s are kept in the runtime's own shape (and
// let-chains would need edition 2024).
#![allow(unknown_lints, clippy::collapsible_if, clippy::manual_is_multiple_of)]

use serde::Serialize;

// ---------------------------------------------------------------------------
// Version profile
// ---------------------------------------------------------------------------

/// Where the `schedtick%61` fairness check lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum FairnessSite {
    /// ≤1.18: in `schedule()` (1.17.1 proc.go:3355), after lockedg, checkTimers,
    /// traceReader and the GC worker, and before `schedule`'s own `runqget`
    /// and `findrunnable()`.
    Schedule,
    /// ≥1.19: in `findRunnable()` (1.19.8 proc.go:2605; 1.23.5:3299), after
    /// checkTimers, traceReader and the GC worker, before the finalizer wake
    /// and the local `runqget` (2625). `schedule` no longer calls runqget.
    FindRunnable,
}

/// How stealing is structured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StealImpl {
    /// 1.15/1.16: inline `for i := 0; i < 4; i++` in findrunnable with
    /// `stealRunNextG := i > 2` (1.15.8:2269), i.e. runnext only in pass 4.
    InlineFindrunnable,
    /// 1.17+: `stealWork(now)` with
    /// `stealTimersOrRunNextG := i == stealTries-1` (1.19.8:2912).
    StealWork,
}

/// How a batch is taken from the global queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum GlobalGet {
    /// ≤1.24 (read: 1.17.1, 1.19.8:5603, 1.23.5:6535): `globrunqget(p, max)`
    /// pops n and `runqput(p, g, false)`s all but the first; fairness uses
    /// `globrunqget(p, 1)`.
    RunqputEach,
    /// 1.25+ (read: go1.25.3 mirror, tip): fairness uses `globrunqget()` (one
    /// G); the batch path uses `globrunqgetbatch(128)` + `runqputbatch`.
    /// Same count, same order as `RunqputEach`.
    BatchThenRunqputbatch,
}

/// Version differences of the scheduler that a student may observe or read.
///
/// Summary: for a single P (GOMAXPROCS=1) **no version from 1.15 to tip
/// changes the run order** given the same starting state; what changes is
/// where the code lives (fairness in `schedule` vs `findRunnable`, inline
/// stealing vs `stealWork`, `globrunqget` vs `globrunqgetbatch`), where the
/// finalizer wake sits, and which runtime goroutines exist before `main.main`
/// (measure those with [`LiveState`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Go 1.x minor version.
    pub minor: u32,
    pub fairness_site: FairnessSite,
    pub steal: StealImpl,
    pub global_get: GlobalGet,
    /// Name of the function (`findrunnable` ≤1.18, `findRunnable` ≥1.19).
    pub find_runnable_name: &'static str,
    /// 1.19+: the finalizer-G wake (`ready(fing, 0, true)`, i.e. into
    /// runnext) happens before the local `runqget`; ≤1.18 it is in
    /// findrunnable, reached only after `schedule`'s `runqget` found nothing.
    /// Not simulated (the lab has no finalizers to run).
    pub fing_wake_before_local_runq: bool,
    /// 1.22+ (module `go` ≥ 1.22): each loop iteration has its own variable,
    /// so `go func(){ use(i) }()` records the iteration's i. Earlier, closures
    /// share one i; pass i as an argument (the lab does).
    pub loopvar_per_iteration: bool,
    /// The order of checks that a scheduling round makes, as in the source.
    pub check_order: Vec<&'static str>,
    /// Where these facts come from for this version.
    pub provenance: &'static str,
}

impl Profile {
    /// The profile for Go 1.`minor`. Minors below 15 are treated like 1.15
    /// and marked unverified in `provenance`.
    pub fn for_version(minor: u32) -> Profile {
        let fairness_site = if minor >= 19 {
            FairnessSite::FindRunnable
        } else {
            FairnessSite::Schedule
        };
        let steal = if minor >= 17 {
            StealImpl::StealWork
        } else {
            StealImpl::InlineFindrunnable
        };
        let global_get = if minor >= 25 {
            GlobalGet::BatchThenRunqputbatch
        } else {
            GlobalGet::RunqputEach
        };
        let check_order: Vec<&'static str> = if minor >= 19 {
            vec![
                "schedule: lockedg → execute(lockedg, false)",
                "findRunnable: gcwaiting → gcstopm; runSafePointFn",
                "findRunnable: checkTimers(pp, 0)",
                "findRunnable: traceReader",
                "findRunnable: GC worker (findRunnableGCWorker)",
                "findRunnable: schedtick%61 == 0 && global not empty → one G from global",
                "findRunnable: wake finalizer G (ready(fing, next=true))",
                "findRunnable: runqget(pp) (runnext first, inheritTime=true)",
                "findRunnable: global batch (globrunqget(pp, 0) / globrunqgetbatch(128))",
                "findRunnable: netpoll(0)",
                "findRunnable: stealWork (4 rounds, runnext + timers only in the last)",
                "findRunnable: idle GC mark worker",
                "findRunnable: lock; re-check global queue",
                "findRunnable: releasep; pidleput; ...; stopm",
                "schedule: execute(gp, inheritTime)",
            ]
        } else {
            vec![
                "schedule: lockedg → execute(lockedg, false)",
                "schedule: gcwaiting; runSafePointFn; checkTimers",
                "schedule: traceReader",
                "schedule: GC worker",
                "schedule: schedtick%61 == 0 && sched.runqsize > 0 → globrunqget(p, 1)",
                "schedule: runqget(p)",
                "findrunnable: (top) wake finalizer G; runqget(p)",
                "findrunnable: globrunqget(p, 0)",
                "findrunnable: netpoll(0)",
                if minor >= 17 {
                    "findrunnable: stealWork (4 rounds, runnext only in the last)"
                } else {
                    "findrunnable: inline steal loop (4 rounds, stealRunNextG := i > 2)"
                },
                "findrunnable: idle GC mark worker",
                "findrunnable: lock; re-check global queue",
                "findrunnable: releasep; pidleput; ...; stopm",
                "schedule: execute(gp, inheritTime)",
            ]
        };
        let provenance = match minor {
            19 => {
                "read: go1.19.8 /usr/share/go-1.19/src/runtime/proc.go (this module's line numbers)"
            }
            25 => {
                "read: findRunnable/globrunqgetbatch in a go1.25.3-labelled mirror; same shape in golang/go tip"
            }
            m if m >= 26 => {
                "read: golang/go tip proc.go from the search index (go1.27-era); 1.26 inferred"
            }
            17 | 18 | 23 => {
                "from the runtime source notes (1.17.1, 1.18, 1.23.5: ../shared/GO-RUNTIME-SOURCE.md in the repository's workspace), not re-read here"
            }
            15 | 16 => {
                "from the runtime source notes (1.15.8, 1.16.14: ../shared/GO-RUNTIME-SOURCE.md), not re-read here"
            }
            20..=24 => "not read: inferred from 1.19.8 and 1.23.5 (and the 1.25 change)",
            _ => "unverified: below 1.15, treated like 1.15",
        };
        Profile {
            minor,
            fairness_site,
            steal,
            global_get,
            find_runnable_name: if minor >= 19 {
                "findRunnable"
            } else {
                "findrunnable"
            },
            fing_wake_before_local_runq: minor >= 19,
            loopvar_per_iteration: minor >= 22,
            check_order,
            provenance,
        }
    }

    /// Source location of the fairness check, for explanations.
    pub fn fairness_site_ref(&self) -> &'static str {
        match self.fairness_site {
            FairnessSite::Schedule => "schedule (1.17.1 proc.go:3355)",
            FairnessSite::FindRunnable => "findRunnable (1.19.8 proc.go:2605)",
        }
    }
}

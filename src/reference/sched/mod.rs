//! # `reference::sched`: an executable model of the Go scheduler's run queues
//!
//! This module is a small, deterministic re-implementation of the parts of the
//! Go runtime scheduler (G-M-P) that decide **which goroutine runs next**: the
//! per-P local ring (`runq`/`runqhead`/`runqtail`), the `runnext` slot, the
//! global run queue, the `schedtick % 61` fairness check, work stealing, and
//! the call sites that feed them (`newproc`, `ready`, `Gosched`, `goexit`).
//! The functions use the runtime's own names so a student can put this file
//! next to `proc.go` and read both together.
//!
//! ## Sources (what was read, and which version)
//! * **go1.19.8**, `src/runtime` of Debian's golang-1.19 (the system toolchain, `go
//!   version` = go1.19.8 linux/amd64). All line numbers below without a version are
//!   from this copy of `proc.go`:
//!   `ready` 843 (runqput 860), `gopark` 346, `goready` 372, `handoffp` 2354,
//!   `execute` 2517 (`schedtick++` only if `!inheritTime`, 2536),
//!   `findRunnable` 2561, `stealWork` 2905, `schedule` 3185 (calls
//!   findRunnable 3214, execute 3252), `park_m` 3341, `goschedImpl` 3366
//!   (globrunqput 3375), `goyield_m` 3457, `goexit0` 3480 (schedule 3540),
//!   `exitsyscall0` 3940, `newproc` 4094 (runqput(next=true) 4101),
//!   `globrunqput` 5568, `globrunqputbatch` 5593, `globrunqget` 5603 (batch
//!   formula 5610), `runqempty` 5754, `runqput` 5785, `runqputslow` 5820,
//!   `runqputbatch` 5863, `runqget` 5897, `runqgrab` 5963, `runqsteal` 6018,
//!   `randomOrder` 6222. `runtime2.go`: `type p` 609 (`schedtick` 613,
//!   `runqhead`/`runqtail` 629-630, `runq [256]guintptr` 631, `runnext` 644),
//!   `type schedt` 767 (`runq` 793, `runqsize` 794). The runtime's own tests
//!   are `export_test.go` 86/109/153 (`RunSchedLocalQueueTest`,
//!   `RunSchedLocalQueueStealTest`, `RunSchedLocalQueueEmptyTest`), run from
//!   `proc_test.go` 618/622/644; their semantics are carried by the unit tests
//!   at the bottom of this file.
//! * **newest golang/go** `src/runtime/proc.go` as stored in the search index
//!   (commit `00120edb…`; the index's golang/go `VERSION` file says go1.27.2),
//!   and a mirror labelled **go1.25.3** (`CaoYuming-git/go1.25.3`,
//!   `src/runtime/proc.go`, `findRunnable`): the fairness check calls
//!   `globrunqget()` (exactly one G) and the batch path calls
//!   `globrunqgetbatch(int32(len(pp.runq))/2)` + `runqputbatch`, with
//!   `n = min(n, sched.runq.size, sched.runq.size/gomaxprocs+1)`. That is the
//!   same number of Gs in the same order as the old `globrunqget(p, max)`, so
//!   **the observable order does not change**; only the code shape does.
//!   I did not read 1.24, so whether 1.24 already has `globrunqgetbatch` is
//!   unknown (the profile assumes the old shape for ≤1.24).
//! * go1.15.8, 1.16.14, 1.17.1, 1.18 and 1.23.5 facts come from
//!   `../shared/GO-RUNTIME-SOURCE.md` §2-3 (read by someone else from
//!   mirrors). 1.21, 1.22 and 1.24 were not read by anyone; they are inferred.
//!
//! ## What the model is
//! * Exact data-structure semantics of `runqput` / `runqputslow` / `runqget` /
//!   `globrunqget` / `runqgrab` / `runqsteal`, including the `uint32` wrapping
//!   ring indices and the fact that `runqputslow` moves the **first 128 Gs
//!   plus the new one (129)** to the global queue, in order.
//! * The order of checks in `findRunnable` that matter for run order:
//!   fairness (`schedtick%61==0 && runqsize>0` → one G from the global queue),
//!   local `runqget` (runnext first, with `inheritTime=true`), global batch,
//!   stealing (4 rounds, other Ps' `runnext` only in the last round).
//! * `execute` increments `schedtick` only when `!inheritTime`, so a chain of
//!   Gs that run from `runnext` shares one tick (one time slice).
//! * A scenario simulator ([`simulate`]) for the golab lab "runq-order"
//!   (GOMAXPROCS=1, main spawns N goroutines and blocks), validated against
//!   real go1.19.8 runs (see [`LiveState::GO119_OBSERVED`] and the tests).
//!
//! ## Verification against real go1.19.8 runs
//! A Go version of the lab was used for this check; it is not shipped with
//! golab (what it did is described here in full). It runs
//! with GOMAXPROCS=1 and records `S`/`R`/`M` events together with P0's
//! schedtick, which it reads through `go:linkname runtime.allp` and field
//! offsets taken from the binary's DWARF. It was run with `GOGC=off GODEBUG=asyncpreemptoff=1` for N = 1, 5,
//! 10, 256, 257, 300, 1000 × {WaitGroup, buffered chan} × Gosched {none,
//! all, every 3rd, every 7th}, 20 runs each (1120 runs). It was also run
//! 280 times with only GOMAXPROCS=1 set, 40 times with N = 2000/5000, and
//! 48 runs (found among 600) whose live schedtick was 5 instead of 4. In
//! every one of these runs, the whole event stream (the order and the
//! schedtick at each event) equalled [`simulate`] given that run's
//! [`LiveState`]. For N = 10000 and 50000, sysmon preempted main after
//! about 10ms of spawning; 4 runs still matched as they were, and 16 matched
//! once the observed preemption points were put in
//! [`Scenario::main_preempted_after`]. With GC on, N = 10000 and 50000 never
//! matched (0 of 20). In every such run the divergence came at the same
//! spawn (about 5,417), and N = 6000 with only GOGC=off matched, so the
//! likely cause is a GC cycle starting. This was not confirmed with
//! gctrace.
//!
//! ## What the model is not
//! * No time, so sysmon preemption is not predicted. In the runtime, a G that
//!   runs for more than 10ms, or a `runnext` chain that shares one schedtick
//!   for more than 10ms, is preempted and goes to the **global** queue via
//!   `gopreempt_m → goschedImpl`. For main this can be put in by hand with
//!   [`Scenario::main_preempted_after`]. Also missing: async preemption,
//!   timers, netpoll, GC workers, the trace reader, and the finalizer wake
//!   (`fingwait && fingwake`, 2615: in 1.19+ it `ready`s the finalizer G into
//!   runnext *before* the local `runqget`). Any of these makes a real run
//!   differ from the model. For the lab, set `GOGC=off` and
//!   `GODEBUG=asyncpreemptoff=1`, and keep N small enough that the spawn
//!   loop takes less than 10ms (N ≤ 5000 was always fine here).
//! * No Ms, no spinning accounting, no `wakep`/`startm` side effects (the
//!   `wakep` here only reports which idle P the runtime would start an M on).
//! * No race-detector randomisation (`randomizeScheduler`), no `lockedg`.
//! * `runqgrab`'s `usleep(3)` before stealing a running P's `runnext` is not
//!   modelled (there is no clock); neither is the tip's extra "victim in
//!   syscall" condition around that sleep.
//! * Work-stealing victim order is random in the runtime
//!   (`stealOrder.start(fastrand())`); here [`RandomOrder`] is the runtime's
//!   own enumeration and the "random" start values come from [`StealRand`].
//! * Pre-existing runtime goroutines found in the queues at `main.main` are
//!   opaque: when picked they run and park without touching the queues.

mod explain;
mod model;
mod ops;
mod scenario;
mod sim;
#[cfg(test)]
mod tests;

pub use explain::*;
pub use model::*;
pub use ops::*;
pub use scenario::*;
pub use sim::*;

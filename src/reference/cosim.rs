//! # `reference::cosim`: the scheduler model stepped in lockstep with the live runtime
//!
//! Whole-order prediction ([`super::sched::simulate`]) fits one program shape. This
//! module fits any program: dlv stops at the scheduler's transition points (the run-queue
//! functions, `execute`, `gopark`, `ready`, `gosched_m`, `gopreempt_m`, `goexit0`,
//! `handoffp`) and reads, at each entry, the state the function acts on (the P's
//! `schedtick`, `runqhead`, `runqtail`, `runnext` and its 256-slot ring; the global
//! queue's head, tail and size; the g's address, goid and status). The model
//! ([`super::sched::Sched`], the same code as the whole-order simulator) is stepped with
//! the same calls and predicts, for every transition:
//!
//! * the state the next transition on that P will find (what `runqput` kicked from
//!   runnext to the tail, the half `runqputslow` moves, the half a steal takes, the
//!   schedtick `execute` advances only when `!inheritTime`), compared with what the next
//!   stop on that P reads;
//! * the calls the function makes next on the same thread (`runqput` → `runqputslow` →
//!   `globrunqputbatch(129)`, `globrunqget` → `runqput(next=false)` for the batch,
//!   `runqsteal` → `runqgrab`, `ready` → `runqput(next)`, `gosched_m` → `globrunqput`);
//! * which g a pick returns and from where (runnext with inheritTime, the ring's head,
//!   the global queue, a victim), compared with the `execute(gp, inheritTime)` that
//!   follows; and when `schedtick % 61 == 0` with a non-empty global queue, that the pick
//!   comes from the global queue.
//!
//! Each P is judged on its own state: a state read at an entry is compared with the
//! model's state for that P only. The model starts with every P and the global queue
//! empty (dlv sets its breakpoints at the ELF entry, before `procresize` makes the Ps),
//! so every transition of the run is judged, the runtime's own goroutines included.
//! After a disagreement the model takes the runtime's state and goes on, so one miss is
//! counted once.
//!
//! With several Ps two Ms can act on one queue between two stops (a thief's CAS on the
//! victim's head, the owner's `runqget`); their order is not observable from function
//! entries. A mismatch on a P that another M touched and has not yet left is counted as
//! *raced*, not as a disagreement, and named in the report.

use super::Profile as VersionProfile;
use super::sched::{self, G, Sched};
use crate::probe::dlv_rpc::Read;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// A transition point of the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Op {
    Runqput,
    Runqputslow,
    Runqget,
    Runqsteal,
    Runqgrab,
    Runqputbatch,
    Globrunqput,
    Globrunqputhead,
    Globrunqputbatch,
    Globrunqget,
    Globrunqgetbatch,
    Execute,
    Gopark,
    Ready,
    GoschedM,
    GopreemptM,
    Goexit0,
    Handoffp,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Runqput => "runqput",
            Op::Runqputslow => "runqputslow",
            Op::Runqget => "runqget",
            Op::Runqsteal => "runqsteal",
            Op::Runqgrab => "runqgrab",
            Op::Runqputbatch => "runqputbatch",
            Op::Globrunqput => "globrunqput",
            Op::Globrunqputhead => "globrunqputhead",
            Op::Globrunqputbatch => "globrunqputbatch",
            Op::Globrunqget => "globrunqget",
            Op::Globrunqgetbatch => "globrunqgetbatch",
            Op::Execute => "execute",
            Op::Gopark => "gopark",
            Op::Ready => "ready",
            Op::GoschedM => "gosched_m",
            Op::GopreemptM => "gopreempt_m",
            Op::Goexit0 => "goexit0",
            Op::Handoffp => "handoffp",
        }
    }
}

/// One breakpoint of the co-simulation: the function, what dlv reads at every hit
/// (a struct in one request where it can), and which recorded value the model reads
/// under which role (`p.tick`, `v.ring`, `g.goid`, `glob.size`, `arg.next`, ...).
#[derive(Clone, Debug)]
pub struct Point {
    pub op: Op,
    pub function: String,
    pub reads: Vec<Read>,
    /// role -> the key of the value in the hit (`eval EXPR`).
    pub roles: Vec<(String, String)>,
}

/// The transition points for a Go release, with the names its runtime uses (from the
/// one profile table: the P parameter, the g's status field, the global queue).
pub fn points(v: &VersionProfile) -> Vec<Point> {
    const REGS: [&str; 9] = ["rax", "rbx", "rcx", "rdi", "rsi", "r8", "r9", "r10", "r11"];
    let pp = v.p_param;
    // `NAME@K`: the K-th integer argument, by name (stack ABI) or register.
    let arg = |spec: &str| -> (String, Option<&'static str>) {
        match spec.split_once('@') {
            Some((name, k)) => {
                let k: usize = k.parse().expect("argument position");
                if v.register_args {
                    (name.to_string(), Some(REGS[k]))
                } else {
                    (name.to_string(), None)
                }
            }
            None => (spec.to_string(), None),
        }
    };
    let mut out = Vec::new();
    let mut add = |op: Op, parts: &[&str]| {
        let mut reads = Vec::new();
        let mut roles = Vec::new();
        for part in parts {
            let (role, what) = part.split_once('=').expect("role=what");
            let (name, reg) = arg(what);
            let deref = |ty: &str| match (what.strip_prefix('!'), reg) {
                // `!EXPR`: a struct reached otherwise than through an argument.
                (Some(raw), _) => raw.to_string(),
                (None, Some(r)) => format!("*(*runtime.{ty})({{reg:{r}}})"),
                (None, None) => format!("*{name}"),
            };
            match role {
                "p" | "v" => {
                    let e = deref("p");
                    for (f, r) in [
                        ("id", "id"),
                        ("schedtick", "tick"),
                        ("runqhead", "head"),
                        ("runqtail", "tail"),
                        ("runnext", "next"),
                        ("runq", "ring"),
                    ] {
                        roles.push((format!("{role}.{r}"), format!("eval {e}.{f}")));
                    }
                    reads.push(Read::Fields(e, 1));
                }
                "p.id" | "v.id" => {
                    let e = deref("p");
                    roles.push((role.to_string(), format!("eval {e}.id")));
                    reads.push(Read::Fields(e, 1));
                }
                "g" => {
                    let e = deref("g");
                    roles.push(("g".into(), format!("eval &{e}")));
                    roles.push(("g.goid".into(), format!("eval {e}.goid")));
                    roles.push(("g.status".into(), format!("eval {e}.{}", v.g_status_field)));
                    reads.push(Read::Fields(e, 2));
                }
                "batch" => {
                    let e = deref("gQueue");
                    roles.push(("batch.head".into(), format!("eval {e}.head")));
                    roles.push(("batch.tail".into(), format!("eval {e}.tail")));
                    reads.push(Read::Fields(e, 1));
                }
                "glob" => {
                    let e = "runtime.sched.runq".to_string();
                    roles.push(("glob.head".into(), format!("eval {e}.head")));
                    roles.push(("glob.tail".into(), format!("eval {e}.tail")));
                    reads.push(Read::Fields(e, 1));
                    if v.global_runq_size == "runtime.sched.runq.size" {
                        // 1.25+: the size is a field of the queue read above.
                        roles.push(("glob.size".into(), "eval runtime.sched.runq.size".into()));
                    } else {
                        roles.push(("glob.size".into(), format!("eval {}", v.global_runq_size)));
                        reads.push(Read::Eval(v.global_runq_size.into()));
                    }
                }
                _ => match reg {
                    Some(r) => {
                        roles.push((role.to_string(), format!("reg {r}")));
                        reads.push(Read::Reg(r.to_string()));
                    }
                    None => {
                        roles.push((role.to_string(), format!("eval {name}")));
                        reads.push(Read::Eval(name));
                    }
                },
            }
        }
        out.push(Point {
            op,
            function: format!("runtime.{}", op.name()),
            reads,
            roles,
        });
    };
    let p0 = format!("p={pp}@0");
    let pid = format!("p.id={pp}@0");
    add(Op::Runqput, &[&p0, "g=gp@1", "arg.next=next@2"]);
    add(Op::Runqputslow, &[&pid, "g=gp@1", "arg.h=h@2", "arg.t=t@3"]);
    add(Op::Runqget, &[&p0, "glob=-"]);
    add(Op::Runqsteal, &[&p0, "v=p2@1", "arg.steal=stealRunNextG@2"]);
    // The victim's whole state (one read, as for its id): the runnext the grab found.
    let v0 = format!("v={pp}@0");
    add(Op::Runqgrab, &[&v0, "arg.steal=stealRunNextG@3"]);
    add(Op::Runqputbatch, &["p=pp@0"]);
    add(Op::Globrunqput, &["glob=-", "g=gp@0"]);
    add(Op::Globrunqputhead, &["glob=-", "g=gp@0"]);
    add(Op::Globrunqputbatch, &["glob=-", "batch=batch@0"]);
    if v.global_get_takes_p() {
        add(Op::Globrunqget, &[&p0, "glob=-", "arg.max=max@1"]);
    } else {
        add(Op::Globrunqget, &["glob=-"]);
        add(Op::Globrunqgetbatch, &["glob=-", "arg.max=n@0"]);
    }
    // The running g at execute is the M's g0, and its m.p the P that execute advances
    // (an M changes Ps in stopm/startm and stoplockedm without a run-queue call in
    // between): R14 in the register ABI, the thread-local slot before.
    let exec_p = format!("p=!*(*runtime.p)({}.m.p)", v.running_g);
    add(
        Op::Execute,
        &["g=gp@0", "arg.inherit=inheritTime@1", exec_p.as_str()],
    );
    add(Op::Gopark, &["arg.reason=reason@2"]);
    add(Op::Ready, &["g=gp@0", "arg.next=next@2"]);
    add(Op::GoschedM, &["g=gp@0"]);
    add(Op::GopreemptM, &["g=gp@0"]);
    add(Op::Goexit0, &["g=gp@0"]);
    add(Op::Handoffp, &[&p0]);
    out
}

/// One stop at a transition point, decoded.
#[derive(Clone, Debug)]
pub struct Event {
    pub seq: usize,
    pub stop: usize,
    pub thread: i64,
    pub goroutine: i64,
    pub op: Op,
    pub vals: HashMap<String, String>,
}

impl Event {
    /// The events of a dlv session, in stop order (hits that are not transition points,
    /// and the ABI wrappers' hits, are left out).
    pub fn from_hits(points: &[Point], hits: &[crate::trace::Hit]) -> Vec<Event> {
        let by: HashMap<&str, &Point> = points.iter().map(|p| (p.function.as_str(), p)).collect();
        let mut out = Vec::new();
        for h in hits {
            let Some(pt) = by.get(h.breakpoint.as_str()) else {
                continue;
            };
            if h.in_wrapper() || h.function() != pt.function {
                continue;
            }
            let mut vals = HashMap::new();
            for (role, key) in &pt.roles {
                if let Some(v) = h.values.get(key) {
                    let v = if key.starts_with("reg ") {
                        // A register holds a narrow argument in its low bits only.
                        let mask: u64 = match role.as_str() {
                            "arg.h" | "arg.t" | "arg.max" => 0xffff_ffff,
                            _ => 0xff,
                        };
                        let x = v.trim().trim_start_matches("0x");
                        u64::from_str_radix(x, 16)
                            .map(|x| (x & mask).to_string())
                            .unwrap_or_else(|_| v.clone())
                    } else {
                        v.clone()
                    };
                    vals.insert(role.clone(), v);
                }
            }
            out.push(Event {
                seq: h.seq,
                stop: h.stop,
                thread: h.thread,
                goroutine: h.goroutine,
                op: pt.op,
                vals,
            });
        }
        out
    }

    fn int(&self, role: &str) -> Option<u64> {
        let v = self.vals.get(role)?.trim();
        if v == "true" {
            return Some(1);
        }
        if v == "false" {
            return Some(0);
        }
        // An enum prints as `waitReasonChanReceive (14)`.
        let v = match (v.rfind('('), v.ends_with(')')) {
            (Some(i), true) => &v[i + 1..v.len() - 1],
            _ => v,
        };
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => v.parse::<i64>().ok().map(|x| x as u64),
        }
    }

    fn flag(&self, role: &str) -> Option<bool> {
        self.int(role).map(|x| x != 0)
    }

    fn text(&self, role: &str) -> String {
        self.vals.get(role).cloned().unwrap_or_default()
    }

    /// The P state read under `role` (`p` or `v`), if every part was readable.
    fn pstate(&self, role: &str) -> Option<LiveP> {
        let id = self.int(&format!("{role}.id"))? as usize;
        let mut ring = Vec::with_capacity(256);
        for x in self.vals.get(&format!("{role}.ring"))?.split(',') {
            ring.push(x.trim().parse::<u64>().ok()?);
        }
        if ring.len() != 256 {
            return None;
        }
        Some(LiveP {
            id,
            tick: self.int(&format!("{role}.tick"))? as u32,
            head: self.int(&format!("{role}.head"))? as u32,
            tail: self.int(&format!("{role}.tail"))? as u32,
            runnext: self.int(&format!("{role}.next"))?,
            ring,
        })
    }

    fn global(&self) -> Option<LiveGlobal> {
        Some(LiveGlobal {
            head: self.int("glob.head")?,
            tail: self.int("glob.tail")?,
            size: self.int("glob.size")? as i64,
        })
    }

    /// The g argument: (address, goid).
    fn g(&self) -> Option<(u64, u64)> {
        Some((self.int("g")?, self.int("g.goid")?))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct LiveP {
    id: usize,
    tick: u32,
    head: u32,
    tail: u32,
    runnext: u64,
    ring: Vec<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LiveGlobal {
    head: u64,
    tail: u64,
    size: i64,
}

/// A call the model expects next on a thread, as part of the transition before it.
#[derive(Clone, Debug)]
struct Expect {
    op: Op,
    g: Option<u64>,
    next: Option<bool>,
    p: Option<usize>,
    n: Option<u64>,
    /// The expected call is a transition of its own (its state is compared and its
    /// effect applied when it comes); else the model applied it with its caller.
    apply: bool,
    /// For `runqputbatch` after `globrunqgetbatch`: the Gs it moves.
    batch: Option<VecDeque<G>>,
    because: String,
}

/// What a pick returned, as the model predicts it; `execute` is compared with it.
#[derive(Clone, Debug)]
struct PendingPick {
    g: u64,
    inherit: bool,
    from: String,
    victim: Option<usize>,
    /// The queue the g came from: a P, or the global queue (`GLOBAL`).
    src: usize,
    /// A steal that took the victim's runnext (the g, to give back if the thief's
    /// next stop shows the runtime's steal found nothing).
    took_runnext: Option<G>,
    /// The queue's state read at the pick was behind the model's (another M inside a
    /// transition on it): the half a steal takes, or which g an owner's runqget gets
    /// before a thief's CAS, is not the model's to predict.
    behind: bool,
    stop: usize,
}

/// The verdict on one transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Judged {
    Matched,
    Disagreed(String),
    /// Two Ms acted on one queue between two stops: not judged.
    Raced(String),
    /// Not judged, with the reason (e.g. a batch whose contents were not read).
    Unjudged(String),
}

/// One transition and what the model said of it.
#[derive(Clone, Debug, Serialize)]
pub struct Transition {
    pub seq: usize,
    pub op: Op,
    pub thread: i64,
    pub goroutine: i64,
    pub what: String,
    pub judged: Judged,
    /// At a disagreement: the model's state beside the runtime's.
    pub model_state: Option<String>,
    pub live_state: Option<String>,
}

/// The co-simulation of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub observed: usize,
    pub judged: usize,
    pub matched: usize,
    pub raced: usize,
    pub unjudged: usize,
    pub ps: usize,
    /// Per transition point: (matched, judged).
    pub by_op: BTreeMap<String, (usize, usize)>,
    pub disagreements: Vec<Transition>,
    pub raced_list: Vec<Transition>,
    pub unjudged_reasons: BTreeMap<String, usize>,
}

/// The lockstep model.
pub struct Cosim {
    s: Sched,
    /// Address -> goid, as last read.
    goid: HashMap<u64, u64>,
    /// Thread -> the P its last P-carrying transition named.
    thread_p: HashMap<i64, usize>,
    expect: HashMap<i64, VecDeque<Expect>>,
    pick: HashMap<i64, PendingPick>,
    /// goid -> P it runs on (set by execute, cleared by park, exit, gosched).
    running: HashMap<u64, usize>,
    parked: HashSet<u64>,
    /// Per P: threads whose last transition touched it (an M may still be inside).
    touched: HashMap<usize, HashSet<i64>>,
    /// Ps whose last comparison was a race: a further mismatch is the same race.
    contested: HashSet<usize>,
    /// Ps read behind the model at their last comparison (another M's transition had
    /// not landed): a steal from one predicts on a state the thief may not see.
    lagged: HashSet<usize>,
    /// Ps (or the global queue, `usize::MAX`) whose contents the model does not know.
    unknown: HashSet<usize>,
    /// Ps whose schedtick may be off (an execute whose P was not known).
    tick_unsure: bool,
    fairness_checked_thread: HashMap<i64, bool>,
    /// Per P: its last few model states with the thread whose transition made each
    /// one. A state read while another M's transition on that P has not landed yet
    /// equals one of these.
    recent: HashMap<usize, VecDeque<(i64, sched::P)>>,
    /// Per thread: the steal of this scheduling round (thief P, victim, stealRunNextG,
    /// whether the model's steal found a g).
    steal: HashMap<i64, (usize, usize, bool, bool)>,
    /// Per thread: the victim and its runnext as its last runqgrab read them.
    grab_next: HashMap<i64, (usize, u64)>,
    report: Report,
}

const GLOBAL: usize = usize::MAX;

impl Cosim {
    pub fn new(minor: u32, gomaxprocs: usize) -> Cosim {
        let n = gomaxprocs.clamp(1, 256);
        Cosim {
            s: Sched::new(crate::reference::Profile::line(minor), n),
            goid: HashMap::new(),
            thread_p: HashMap::new(),
            expect: HashMap::new(),
            pick: HashMap::new(),
            running: HashMap::new(),
            parked: HashSet::new(),
            touched: HashMap::new(),
            lagged: HashSet::new(),
            contested: HashSet::new(),
            unknown: HashSet::new(),
            tick_unsure: false,
            fairness_checked_thread: HashMap::new(),
            recent: HashMap::new(),
            steal: HashMap::new(),
            grab_next: HashMap::new(),
            report: Report {
                ps: n,
                ..Default::default()
            },
        }
    }

    /// Runs the whole event stream and returns the report.
    pub fn run(minor: u32, gomaxprocs: usize, events: &[Event]) -> Report {
        let mut c = Cosim::new(minor, gomaxprocs);
        for e in events {
            c.step(e);
        }
        c.report
    }

    fn label(&self, addr: u64) -> String {
        if addr == 0 {
            return "-".into();
        }
        match self.goid.get(&addr) {
            Some(id) => format!("g{id}"),
            None => format!("{addr:#x}"),
        }
    }

    fn gl(&self, addr: u64) -> G {
        G::new(addr, self.label(addr))
    }

    fn model_p(&self, p: usize) -> String {
        let pp = &self.s.ps[p];
        let ring: Vec<String> = pp
            .runq_contents()
            .iter()
            .map(|g| self.label(g.id))
            .collect();
        format!(
            "P{p}: schedtick={} runqhead={} runqtail={} runnext={} ring({})=[{}]",
            pp.schedtick,
            pp.runqhead,
            pp.runqtail,
            pp.runnext
                .as_ref()
                .map(|g| self.label(g.id))
                .unwrap_or("-".into()),
            ring.len(),
            ring.join(" ")
        )
    }

    fn live_p(&self, l: &LiveP) -> String {
        let n = l.tail.wrapping_sub(l.head).min(256);
        let ring: Vec<String> = (0..n)
            .map(|i| self.label(l.ring[(l.head.wrapping_add(i) % 256) as usize]))
            .collect();
        format!(
            "P{}: schedtick={} runqhead={} runqtail={} runnext={} ring({})=[{}]",
            l.id,
            l.tick,
            l.head,
            l.tail,
            self.label(l.runnext),
            ring.len(),
            ring.join(" ")
        )
    }

    fn model_global(&self) -> String {
        let q: Vec<String> = self.s.runq.iter().map(|g| self.label(g.id)).collect();
        format!("global({})=[{}]", self.s.runqsize, q.join(" "))
    }

    fn live_global(&self, l: &LiveGlobal) -> String {
        format!(
            "global({}) head={} tail={}",
            l.size,
            self.label(l.head),
            self.label(l.tail)
        )
    }

    fn p_matches(&self, l: &LiveP) -> bool {
        let pp = &self.s.ps[l.id];
        if pp.runqhead != l.head
            || pp.runqtail != l.tail
            || (!self.tick_unsure && pp.schedtick != l.tick)
        {
            return false;
        }
        if pp.runnext.as_ref().map(|g| g.id).unwrap_or(0) != l.runnext {
            return false;
        }
        let n = l.tail.wrapping_sub(l.head);
        if n > 256 {
            return false;
        }
        (0..n).all(|i| {
            let idx = (l.head.wrapping_add(i) % 256) as usize;
            pp.runq[idx].as_ref().map(|g| g.id) == Some(l.ring[idx])
        })
    }

    fn sync_p(&mut self, l: &LiveP) {
        let ring: Vec<Option<G>> = l.ring.iter().map(|&a| Some(self.gl(a))).collect();
        let next = (l.runnext != 0).then(|| self.gl(l.runnext));
        let pp = &mut self.s.ps[l.id];
        pp.schedtick = l.tick;
        pp.runqhead = l.head;
        pp.runqtail = l.tail;
        pp.runnext = next;
        pp.runq = ring;
        self.unknown.remove(&l.id);
    }

    fn global_matches(&self, l: &LiveGlobal) -> bool {
        let head = self.s.runq.front().map(|g| g.id).unwrap_or(0);
        let tail = self.s.runq.back().map(|g| g.id).unwrap_or(0);
        self.s.runqsize as i64 == l.size && (l.size == 0 || (head == l.head && tail == l.tail))
    }

    fn sync_global(&mut self, l: &LiveGlobal) {
        if !self.global_matches(l) {
            // Only the ends are read: the Gs between them are unknown to the model.
            let mut q = VecDeque::new();
            if l.size >= 1 {
                q.push_back(self.gl(l.head));
            }
            for _ in 2..l.size.max(2) {
                q.push_back(G::new(0, "?"));
            }
            if l.size >= 2 {
                q.push_back(self.gl(l.tail));
            }
            self.s.runq = q;
            self.s.runqsize = l.size as i32;
        }
        self.unknown.remove(&GLOBAL);
    }

    /// Compares the state read at this entry with the model's; returns a problem.
    fn compare_p(&mut self, e: &Event, l: &LiveP, problems: &mut Vec<Problem>) {
        if l.id >= self.s.ps.len() {
            problems.push(Problem::unjudged(format!(
                "P{} is beyond the {} Ps the model has",
                l.id,
                self.s.ps.len()
            )));
            return;
        }
        if self.unknown.contains(&l.id) {
            self.sync_p(l);
            problems.push(Problem::unjudged(
                "a batch whose contents were not read (injectglist)".into(),
            ));
            return;
        }
        if self.p_matches(l) {
            self.contested.remove(&l.id);
            if self.tick_unsure {
                self.s.ps[l.id].schedtick = l.tick;
            }
            return;
        }
        let others: Vec<i64> = self
            .touched
            .get(&l.id)
            .map(|s| s.iter().copied().filter(|t| *t != e.thread).collect())
            .unwrap_or_default();
        // The state before another M's transition that has not landed yet (that M is
        // still inside it): the model is ahead, not wrong; it keeps its state.
        let lagging = self.recent.get(&l.id).is_some_and(|r| {
            r.iter()
                .any(|(t, st)| *t != e.thread && others.contains(t) && same_p(st, l))
        });
        if lagging {
            self.lagged.insert(l.id);
            return;
        }
        let model = self.model_p(l.id);
        let live = self.live_p(l);
        if !others.is_empty() || self.contested.contains(&l.id) {
            self.contested.insert(l.id);
            problems.push(Problem {
                kind: Kind::Raced,
                why: format!(
                    "P{} was also acted on by thread(s) {:?} between two stops",
                    l.id, others
                ),
                model: Some(model),
                live: Some(live),
            });
        } else {
            problems.push(Problem {
                kind: Kind::Disagree,
                why: format!("the state of P{} at {}'s entry", l.id, e.op.name()),
                model: Some(model),
                live: Some(live),
            });
        }
        self.sync_p(l);
    }

    fn compare_global(&mut self, e: &Event, l: &LiveGlobal, problems: &mut Vec<Problem>) {
        if self.unknown.contains(&GLOBAL) {
            self.sync_global(l);
            problems.push(Problem::unjudged(
                "a global batch whose contents were not read (injectglist)".into(),
            ));
            return;
        }
        if !self.global_matches(l) {
            let model = self.model_global();
            let live = self.live_global(l);
            // Only the transitions that hold sched.lock see a settled global queue.
            let locked = matches!(
                e.op,
                Op::Globrunqput
                    | Op::Globrunqputhead
                    | Op::Globrunqputbatch
                    | Op::Globrunqget
                    | Op::Globrunqgetbatch
            );
            if !locked {
                // Read without sched.lock: an M without a P (exitsyscall0, sysmon's
                // injectglist) may be inside a global-queue call. The model keeps its
                // queue; the next locked read judges it.
                problems.push(Problem {
                    kind: Kind::Raced,
                    why: format!(
                        "the global queue read at {}'s entry without sched.lock while another M changed it",
                        e.op.name()
                    ),
                    model: Some(model),
                    live: Some(live),
                });
                return;
            }
            problems.push(Problem {
                kind: Kind::Disagree,
                why: format!("the global queue at {}'s entry", e.op.name()),
                model: Some(model),
                live: Some(live),
            });
            self.sync_global(l);
        }
    }

    fn record(&mut self, e: &Event, what: String, problems: Vec<Problem>) {
        self.report.observed += 1;
        let entry = self
            .report
            .by_op
            .entry(e.op.name().to_string())
            .or_insert((0, 0));
        let worst = problems
            .iter()
            .find(|p| p.kind == Kind::Disagree)
            .or_else(|| problems.iter().find(|p| p.kind == Kind::Raced))
            .or_else(|| problems.iter().find(|p| p.kind == Kind::Unjudged))
            .cloned();
        let judged = match &worst {
            None => Judged::Matched,
            Some(p) => match p.kind {
                Kind::Disagree => Judged::Disagreed(p.why.clone()),
                Kind::Raced => Judged::Raced(p.why.clone()),
                Kind::Unjudged => Judged::Unjudged(p.why.clone()),
            },
        };
        let t = Transition {
            seq: e.seq,
            op: e.op,
            thread: e.thread,
            goroutine: e.goroutine,
            what,
            judged: judged.clone(),
            model_state: worst.as_ref().and_then(|p| p.model.clone()),
            live_state: worst.as_ref().and_then(|p| p.live.clone()),
        };
        match judged {
            Judged::Matched => {
                self.report.judged += 1;
                self.report.matched += 1;
                entry.0 += 1;
                entry.1 += 1;
            }
            Judged::Disagreed(_) => {
                self.report.judged += 1;
                entry.1 += 1;
                if self.report.disagreements.len() < 50 {
                    self.report.disagreements.push(t);
                }
            }
            Judged::Raced(_) => {
                self.report.raced += 1;
                if self.report.raced_list.len() < 20 {
                    self.report.raced_list.push(t);
                }
            }
            Judged::Unjudged(why) => {
                self.report.unjudged += 1;
                *self.report.unjudged_reasons.entry(why).or_insert(0) += 1;
            }
        }
    }

    /// `thread` is about to change these Ps: remember the state it found.
    /// The thief `tid` starts another search while the model's steal of a victim's
    /// runnext is still waiting for its execute: the runtime's runqgrab found runnext
    /// empty. When the victim's owner was inside the runqput that filled it (its M had
    /// not left the P: the store had not landed), the model gives the g back to the
    /// victim's runnext; the owner's next stop judges it.
    fn give_back_unrun_steal(&mut self, tid: i64) {
        let Some(pk) = self.pick.get(&tid) else {
            return;
        };
        let (Some(v), Some(g)) = (pk.victim, pk.took_runnext.clone()) else {
            return;
        };
        // Only on 2 Ps: with more, a third M's steal may have taken the g meanwhile
        // (measured: giving back there made more misses on 4 Ps than it removed).
        let raced = pk.behind || self.victim_raced(v, tid);
        if self.s.gomaxprocs == 2 && v < self.s.ps.len() && self.s.ps[v].runnext.is_none() && raced
        {
            self.s.ps[v].runnext = Some(g);
            self.pick.remove(&tid);
        }
    }

    /// A steal's victim that another M than the thief `tid` acted on (or whose last
    /// comparison was a race) since: the half the thief took is not the model's.
    fn victim_raced(&self, v: usize, tid: i64) -> bool {
        self.touched
            .get(&v)
            .is_some_and(|s| s.iter().any(|t| *t != tid))
            || self.contested.contains(&v)
    }

    fn touch(&mut self, thread: i64, ps: &[usize]) {
        for p in ps {
            self.touched.entry(*p).or_default().insert(thread);
            if let Some(pp) = self.s.ps.get(*p) {
                let r = self.recent.entry(*p).or_default();
                r.push_back((thread, pp.clone()));
                if r.len() > 4 {
                    r.pop_front();
                }
            }
        }
    }

    fn untouch(&mut self, thread: i64) {
        for s in self.touched.values_mut() {
            s.remove(&thread);
        }
    }

    fn push_expect(&mut self, thread: i64, x: Expect) {
        self.expect.entry(thread).or_default().push_back(x);
    }

    /// One transition. A model `throw` (an impossible state) is a disagreement, and the
    /// model takes the runtime's state at the next stop.
    pub fn step(&mut self, e: &Event) {
        let saved = self.s.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step_inner(e)));
        if let Err(p) = r {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            self.s = saved;
            self.record(
                e,
                e.op.name().into(),
                vec![Problem::disagree(format!("the model threw: {msg}"))],
            );
        }
    }

    fn step_inner(&mut self, e: &Event) {
        let mut problems: Vec<Problem> = Vec::new();
        if let Some((addr, goid)) = e.g() {
            self.goid.insert(addr, goid);
        }
        if e.op == Op::Runqgrab
            && let Some(v) = e.pstate("v")
        {
            self.grab_next.insert(e.thread, (v.id, v.runnext));
        }
        // Does this call complete the transition before it on this thread?
        let mut inner_done = false;
        if let Some(x) = self.expect.get_mut(&e.thread).and_then(|q| q.pop_front()) {
            let g_ok =
                x.g.is_none_or(|g| e.int("g") == Some(g) || e.int("batch.tail") == Some(g));
            let next_ok = x.next.is_none_or(|n| e.flag("arg.next") == Some(n));
            let p_ok = x.p.is_none_or(|p| {
                e.int("p.id")
                    .or(e.int("v.id"))
                    .is_none_or(|id| id as usize == p)
            });
            let n_ok = x.n.is_none_or(|n| match (e.int("arg.h"), e.int("arg.t")) {
                (Some(h), Some(t)) => (t as u32).wrapping_sub(h as u32) as u64 == n,
                _ => true,
            });
            if x.op == e.op && g_ok && next_ok && p_ok && n_ok {
                if !x.apply {
                    inner_done = true;
                } else if let Some(mut batch) = x.batch {
                    // runqputbatch after globrunqgetbatch: compare the ring, then append.
                    if let Some(l) = e.pstate("p") {
                        self.compare_p(e, &l, &mut problems);
                        self.s.runqputbatch(l.id, &mut batch);
                        self.thread_p.insert(e.thread, l.id);
                    }
                    let what = format!("{} ({})", e.op.name(), x.because);
                    self.untouch(e.thread);
                    self.record(e, what, problems);
                    return;
                }
            } else {
                self.expect.remove(&e.thread);
                problems.push(Problem::disagree(format!(
                    "{}: the model expected {}{} next on this M, the runtime called {}",
                    x.because,
                    x.op.name(),
                    x.g.map(|g| format!("({})", self.label(g)))
                        .unwrap_or_default(),
                    e.op.name()
                )));
            }
        }
        if inner_done {
            let what = format!("{} (as predicted by its caller)", e.op.name());
            self.record(e, what, problems);
            return;
        }
        if e.op != Op::Execute {
            self.untouch(e.thread);
        }
        let what = self.transition(e, &mut problems);
        self.record(e, what, problems);
    }

    fn transition(&mut self, e: &Event, problems: &mut Vec<Problem>) -> String {
        let tid = e.thread;
        match e.op {
            Op::Runqput => {
                let (Some(l), Some((g, goid)), Some(next)) =
                    (e.pstate("p"), e.g(), e.flag("arg.next"))
                else {
                    problems.push(Problem::unjudged("runqput's state was not readable".into()));
                    return "runqput".into();
                };
                self.compare_p(e, &l, problems);
                self.thread_p.insert(tid, l.id);
                self.touch(tid, &[l.id]);
                let before = self.s.runqsize;
                let kicked = self.s.ps[l.id].runnext.clone();
                let head = self.s.ps[l.id].runq_contents().first().cloned();
                self.s.runqput(l.id, self.gl(g), next);
                self.s.take_notes();
                if self.s.runqsize > before {
                    let moved = if next { kicked.map(|k| k.id) } else { Some(g) };
                    self.push_expect(
                        tid,
                        Expect {
                            op: Op::Runqputslow,
                            g: moved,
                            next: None,
                            p: Some(l.id),
                            n: Some(256),
                            apply: false,
                            batch: None,
                            because: format!("runqput(P{}, g{goid}): the ring is full", l.id),
                        },
                    );
                    self.push_expect(
                        tid,
                        Expect {
                            op: Op::Globrunqputbatch,
                            g: moved,
                            next: None,
                            p: None,
                            n: None,
                            apply: false,
                            batch: None,
                            because: format!(
                                "runqputslow(P{}): 128 from the head ({}) and the new g go to the global queue",
                                l.id,
                                head.map(|h| self.label(h.id)).unwrap_or_default()
                            ),
                        },
                    );
                }
                format!("runqput(P{}, g{goid}, next={next})", l.id)
            }
            Op::Runqputslow | Op::Runqgrab => {
                problems.push(Problem::disagree(format!(
                    "{} was not predicted (the model's ring: {})",
                    e.op.name(),
                    e.int("p.id")
                        .or(e.int("v.id"))
                        .filter(|p| (*p as usize) < self.s.ps.len())
                        .map(|p| self.model_p(p as usize))
                        .unwrap_or_default()
                )));
                e.op.name().into()
            }
            Op::Runqget => {
                self.give_back_unrun_steal(tid);
                let Some(l) = e.pstate("p") else {
                    problems.push(Problem::unjudged("runqget's state was not readable".into()));
                    return "runqget".into();
                };
                // Read while a thief's runqgrab on this P had not landed: which of the
                // two CASes on the head comes first is not the model's to predict.
                self.lagged.remove(&l.id);
                self.compare_p(e, &l, problems);
                let behind = self.lagged.remove(&l.id);
                if let Some(gl) = e.global() {
                    self.compare_global(e, &gl, problems);
                }
                self.thread_p.insert(tid, l.id);
                self.touch(tid, &[l.id]);
                let tick = self.s.ps[l.id].schedtick;
                let already = self.fairness_checked_thread.remove(&tid).unwrap_or(false);
                if tick.is_multiple_of(sched::FAIRNESS_PERIOD) && self.s.runqsize > 0 && !already {
                    problems.push(Problem {
                        kind: if self.s.gomaxprocs == 1 {
                            Kind::Disagree
                        } else {
                            Kind::Raced
                        },
                        why: format!(
                            "schedtick {tick} % 61 == 0 with {} in the global queue: the model takes one from the global queue first, the runtime called runqget",
                            self.s.runqsize
                        ),
                        model: Some(self.model_global()),
                        live: e.global().map(|g| self.live_global(&g)),
                    });
                }
                match self.s.runqget(l.id) {
                    Some((g, inherit)) => {
                        let from = if inherit {
                            "runnext"
                        } else {
                            "the ring's head"
                        };
                        self.pick.insert(
                            tid,
                            PendingPick {
                                g: g.id,
                                inherit,
                                from: format!("P{}'s {from}", l.id),
                                src: l.id,
                                victim: None,
                                took_runnext: None,
                                behind,
                                stop: e.stop,
                            },
                        );
                        format!(
                            "runqget(P{}) -> {} from {from} (inheritTime={inherit})",
                            l.id,
                            self.label(g.id)
                        )
                    }
                    None => {
                        self.pick.remove(&tid);
                        format!("runqget(P{}) -> nothing (P's queues empty)", l.id)
                    }
                }
            }
            Op::Runqsteal => {
                self.give_back_unrun_steal(tid);
                let (Some(l), Some(v), Some(steal)) =
                    (e.pstate("p"), e.pstate("v"), e.flag("arg.steal"))
                else {
                    problems.push(Problem::unjudged(
                        "runqsteal's state was not readable".into(),
                    ));
                    return "runqsteal".into();
                };
                self.compare_p(e, &l, problems);
                self.lagged.remove(&v.id);
                if v.id < self.s.ps.len() {
                    self.compare_p(e, &v, problems);
                }
                let v_lagged = self.lagged.remove(&v.id);
                self.thread_p.insert(tid, l.id);
                self.touch(tid, &[l.id, v.id]);
                self.push_expect(
                    tid,
                    Expect {
                        op: Op::Runqgrab,
                        g: None,
                        next: None,
                        p: Some(v.id),
                        n: None,
                        apply: false,
                        batch: None,
                        because: format!("runqsteal(P{}, P{})", l.id, v.id),
                    },
                );
                if v.id >= self.s.ps.len() {
                    return format!("runqsteal(P{}, P{})", l.id, v.id);
                }
                let vlen = self.s.ps[v.id].runq_len();
                let got = self.s.runqsteal(l.id, v.id, steal);
                self.steal.insert(tid, (l.id, v.id, steal, got.is_some()));
                match got {
                    Some(g) => {
                        let n = if vlen == 0 { 1 } else { vlen - vlen / 2 };
                        self.pick.insert(
                            tid,
                            PendingPick {
                                g: g.id,
                                inherit: false,
                                from: format!("stolen from P{}", v.id),
                                src: v.id,
                                victim: Some(v.id),
                                took_runnext: (vlen == 0).then(|| g.clone()),
                                behind: v_lagged,
                                stop: e.stop,
                            },
                        );
                        format!(
                            "runqsteal(P{}, P{}, stealRunNextG={steal}) -> {} ({n} taken{})",
                            l.id,
                            v.id,
                            self.label(g.id),
                            if vlen == 0 { ", runnext" } else { "" }
                        )
                    }
                    None => {
                        self.pick.remove(&tid);
                        format!("runqsteal(P{}, P{}) -> nothing", l.id, v.id)
                    }
                }
            }
            Op::Runqputbatch => {
                if let Some(l) = e.pstate("p").filter(|l| l.id < self.s.ps.len()) {
                    self.compare_p(e, &l, problems);
                    self.unknown.insert(l.id);
                    self.thread_p.insert(tid, l.id);
                }
                problems.push(Problem::unjudged(
                    "a batch whose contents were not read (injectglist)".into(),
                ));
                "runqputbatch (not from globrunqgetbatch)".into()
            }
            Op::Globrunqput | Op::Globrunqputhead => {
                let (Some(gl), Some((g, goid))) = (e.global(), e.g()) else {
                    problems.push(Problem::unjudged(
                        "the global queue was not readable".into(),
                    ));
                    return e.op.name().into();
                };
                self.compare_global(e, &gl, problems);
                self.touch(tid, &[GLOBAL]);
                if e.op == Op::Globrunqput {
                    self.s.globrunqput(self.gl(g));
                } else {
                    self.s.globrunqputhead(self.gl(g));
                }
                self.running.remove(&goid);
                format!("{}(g{goid})", e.op.name())
            }
            Op::Globrunqputbatch => {
                if let Some(gl) = e.global() {
                    self.compare_global(e, &gl, problems);
                }
                self.unknown.insert(GLOBAL);
                problems.push(Problem::unjudged(
                    "a global batch whose contents were not read (injectglist)".into(),
                ));
                "globrunqputbatch (not from runqputslow)".into()
            }
            Op::Globrunqget => {
                let Some(gl) = e.global() else {
                    problems.push(Problem::unjudged(
                        "the global queue was not readable".into(),
                    ));
                    return "globrunqget".into();
                };
                self.compare_global(e, &gl, problems);
                let p = match e.pstate("p") {
                    Some(l) => {
                        self.compare_p(e, &l, problems);
                        self.thread_p.insert(tid, l.id);
                        Some(l.id)
                    }
                    None => self.thread_p.get(&tid).copied(),
                };
                let max = e.int("arg.max").unwrap_or(1) as i32;
                let fairness = max == 1 || !self.s_profile_takes_p();
                if !self.s_profile_takes_p() {
                    // 1.25+: `globrunqget()` pops one g; no P involved.
                    self.touch(tid, &[GLOBAL]);
                    return match self.s.globrunqget_one() {
                        Some(g) => {
                            self.pick.insert(
                                tid,
                                PendingPick {
                                    g: g.id,
                                    inherit: false,
                                    from: "the global queue".into(),
                                    src: GLOBAL,
                                    victim: None,
                                    took_runnext: None,
                                    behind: false,
                                    stop: e.stop,
                                },
                            );
                            format!("globrunqget() -> {}", self.label(g.id))
                        }
                        None => {
                            self.pick.remove(&tid);
                            "globrunqget() -> nothing".into()
                        }
                    };
                }
                let Some(p) = p else {
                    problems.push(Problem::unjudged("the M's P is not known".into()));
                    return "globrunqget".into();
                };
                self.touch(tid, &[p, GLOBAL]);
                let before = self.s.ps[p].runq_len();
                let got = self.s.globrunqget(p, max);
                self.s.take_notes();
                let moved: Vec<G> = {
                    let c = self.s.ps[p].runq_contents();
                    c[before as usize..].to_vec()
                };
                for g in &moved {
                    self.push_expect(
                        tid,
                        Expect {
                            op: Op::Runqput,
                            g: Some(g.id),
                            next: Some(false),
                            p: Some(p),
                            n: None,
                            apply: false,
                            batch: None,
                            because: format!(
                                "globrunqget(P{p}, {max}) moves the batch to the ring"
                            ),
                        },
                    );
                }
                if fairness && e.int("arg.max") == Some(1) {
                    self.fairness_checked_thread.insert(tid, true);
                }
                match got {
                    Some(g) => {
                        self.pick.insert(
                            tid,
                            PendingPick {
                                g: g.id,
                                inherit: false,
                                from: "the global queue".into(),
                                src: GLOBAL,
                                victim: None,
                                took_runnext: None,
                                behind: false,
                                stop: e.stop,
                            },
                        );
                        format!(
                            "globrunqget(P{p}, max={max}) -> {} (+{} to the ring)",
                            self.label(g.id),
                            moved.len()
                        )
                    }
                    None => {
                        self.pick.remove(&tid);
                        format!("globrunqget(P{p}) -> nothing")
                    }
                }
            }
            Op::Globrunqgetbatch => {
                let Some(gl) = e.global() else {
                    problems.push(Problem::unjudged(
                        "the global queue was not readable".into(),
                    ));
                    return "globrunqgetbatch".into();
                };
                self.compare_global(e, &gl, problems);
                let n = e.int("arg.max").unwrap_or(128) as i32;
                let (gp, q) = self.s.globrunqgetbatch(n);
                let p = self.thread_p.get(&tid).copied();
                let k = q.len();
                // findRunnable calls runqputbatch only when a G came back
                // (`if gp != nil`, proc.go of 1.25-1.27): a global queue that the
                // unlocked `!sched.runq.empty()` saw but the locked call found empty
                // (another P took it) hands nothing on.
                if gp.is_some() {
                    self.push_expect(
                        tid,
                        Expect {
                            op: Op::Runqputbatch,
                            g: None,
                            next: None,
                            p,
                            n: None,
                            apply: true,
                            batch: Some(q),
                            because: format!("globrunqgetbatch({n}) hands {k} to runqputbatch"),
                        },
                    );
                }
                match gp {
                    Some(g) => {
                        self.pick.insert(
                            tid,
                            PendingPick {
                                g: g.id,
                                inherit: false,
                                from: "the global queue".into(),
                                src: GLOBAL,
                                victim: None,
                                took_runnext: None,
                                behind: false,
                                stop: e.stop,
                            },
                        );
                        format!("globrunqgetbatch({n}) -> {} (+{k})", self.label(g.id))
                    }
                    None => "globrunqgetbatch -> nothing".into(),
                }
            }
            Op::Execute => {
                let (Some((g, goid)), Some(inherit)) = (e.g(), e.flag("arg.inherit")) else {
                    problems.push(Problem::unjudged(
                        "execute's arguments were not readable".into(),
                    ));
                    return "execute".into();
                };
                // A steal whose victim another M acted on between the thief's entry and
                // its CAS (runqgrab reads head and tail after the stop, and retries)
                // took another half than the model's: the thief's own ring is raced too.
                let steal_raced = self.pick.get(&tid).and_then(|pk| {
                    pk.victim
                        .filter(|v| pk.behind || self.victim_raced(*v, tid))
                });
                // A steal that found nothing at its entry can find work its victim's
                // owner queued while the thief was inside runqgrab: the model steals
                // again from the victim as it is now, before the thief's ring (where
                // the rest of the half goes) is compared.
                let held = if self.pick.contains_key(&tid) {
                    None
                } else {
                    self.holds(g)
                };
                let again = match (&held, self.steal.get(&tid)) {
                    // The grab found g in the victim's runnext and took it there, before
                    // the owner's runqput(next) kicked it to the ring in the model: that
                    // CAS failed in the runtime and retried on an empty runnext
                    // (runqput's retryNext), so the kick never happened.
                    (Some(_), Some(&(_, victim, true, false)))
                        if self.grab_next.get(&tid) == Some(&(victim, g))
                            && self.s.ps[victim]
                                .runq_contents()
                                .last()
                                .is_some_and(|x| x.id == g) =>
                    {
                        let pp = &mut self.s.ps[victim];
                        pp.runqtail = pp.runqtail.wrapping_sub(1);
                        Some((victim, true))
                    }
                    (Some(_), Some(&(thief, victim, sr, false))) => {
                        let saved = self.s.clone();
                        match self.s.runqsteal(thief, victim, sr) {
                            Some(x) if x.id == g => Some((victim, false)),
                            _ => {
                                self.s = saved;
                                None
                            }
                        }
                    }
                    _ => None,
                };
                let p = match e.pstate("p").filter(|l| l.id < self.s.ps.len()) {
                    Some(l) => {
                        match steal_raced {
                            Some(v) if !self.p_matches(&l) && !self.unknown.contains(&l.id) => {
                                problems.push(Problem {
                                    kind: Kind::Raced,
                                    why: format!(
                                        "P{}'s queue holds the half of a steal from P{v} while another M acted on P{v}",
                                        l.id
                                    ),
                                    model: Some(self.model_p(l.id)),
                                    live: Some(self.live_p(&l)),
                                });
                                self.sync_p(&l);
                            }
                            _ => self.compare_p(e, &l, problems),
                        }
                        self.thread_p.insert(tid, l.id);
                        Some(l.id)
                    }
                    None => self.thread_p.get(&tid).copied(),
                };
                let what;
                match self.pick.remove(&tid) {
                    Some(pk) => {
                        what = format!(
                            "execute(g{goid}, inheritTime={inherit}) [model: {} from {}, inheritTime={}]",
                            self.label(pk.g),
                            pk.from,
                            pk.inherit
                        );
                        if pk.g == 0 {
                            problems.push(Problem::unjudged(
                                "a g from the middle of the global queue, which is not read".into(),
                            ));
                        } else if pk.g != g || pk.inherit != inherit {
                            // The g this M ran is another M's pending pick: both took from
                            // one queue between their stops (an owner's runqget and a
                            // thief's runqgrab, or two thieves) and their CASes came in
                            // the other order than their entries. The other M gets this
                            // M's g, and its own P's ring may differ from the model's.
                            let swapped = (pk.g != g)
                                .then(|| {
                                    self.pick
                                        .iter_mut()
                                        .find(|(t, o)| **t != tid && o.g == g && o.src == pk.src)
                                })
                                .flatten()
                                .map(|(t, o)| {
                                    o.g = pk.g;
                                    o.behind = true;
                                    o.from = format!("{} (swapped with thread {tid})", o.from);
                                    *t
                                });
                            // A steal whose victim's owner acted in the meantime raced.
                            let raced = swapped.is_some()
                                || pk.behind
                                || pk.victim.is_some_and(|v| self.victim_raced(v, tid));
                            let why = match swapped {
                                Some(t) => format!(
                                    "this M and thread {t} took each other's g from one queue (their CASes in the other order than their entries): the model's pick was {} from {}, the runtime ran g{goid}",
                                    self.label(pk.g),
                                    pk.from
                                ),
                                None => format!(
                                    "the model's pick was {} from {} (inheritTime={}), the runtime ran g{goid} (inheritTime={inherit})",
                                    self.label(pk.g),
                                    pk.from,
                                    pk.inherit
                                ),
                            };
                            problems.push(Problem {
                                kind: if raced { Kind::Raced } else { Kind::Disagree },
                                why,
                                model: p.map(|p| {
                                    format!("{} {}", self.model_p(p), self.model_global())
                                }),
                                live: None,
                            });
                        }
                        let _ = pk.stop;
                        // A g that runs is in no run queue: a copy the model took from a
                        // state read while another M was still inside its steal of g
                        // (synced after a race) goes.
                        self.drop_queued(g);
                    }
                    None => {
                        what = format!(
                            "execute(g{goid}, inheritTime={inherit}) [not from a run queue]"
                        );
                        if let Some(where_) = held {
                            match again {
                                Some((victim, from_next)) => problems.push(Problem {
                                    kind: Kind::Raced,
                                    why: if from_next {
                                        format!(
                                            "the steal from P{victim} took g{goid} from its runnext before the owner's runqput(next) could kick it to the ring"
                                        )
                                    } else {
                                        format!(
                                            "the steal from P{victim} found g{goid}, queued by P{victim}'s owner after the steal began"
                                        )
                                    },
                                    model: None,
                                    live: None,
                                }),
                                None => problems.push(Problem::disagree(format!(
                                    "g{goid} runs without a pick, but the model holds it in {where_}"
                                ))),
                            }
                        }
                    }
                }
                self.steal.remove(&tid);
                self.grab_next.remove(&tid);
                self.untouch(tid);
                match p {
                    Some(p) => {
                        self.touch(tid, &[p]);
                        self.s.ps[p].curg = None;
                        self.s.execute(p, self.gl(g), inherit);
                        self.s.ps[p].curg = None;
                        self.running.insert(goid, p);
                    }
                    None => {
                        self.tick_unsure = true;
                        problems.push(Problem::unjudged("the M's P is not known".into()));
                    }
                }
                self.parked.remove(&goid);
                what
            }
            Op::Gopark => {
                let goid = e.goroutine as u64;
                let reason = e.text("arg.reason");
                if self.running.remove(&goid).is_none() {
                    problems.push(Problem::disagree(format!(
                        "g{goid} parks, but the model has it not running"
                    )));
                }
                self.parked.insert(goid);
                format!("gopark(g{goid}, {reason})")
            }
            Op::Ready => {
                let (Some((g, goid)), Some(next)) = (e.g(), e.flag("arg.next")) else {
                    problems.push(Problem::unjudged(
                        "ready's arguments were not readable".into(),
                    ));
                    return "ready".into();
                };
                if !self.parked.remove(&goid) {
                    problems.push(Problem::disagree(format!(
                        "ready(g{goid}): the model has no record of g{goid} parking"
                    )));
                }
                self.push_expect(
                    tid,
                    Expect {
                        op: Op::Runqput,
                        g: Some(g),
                        next: Some(next),
                        p: None,
                        n: None,
                        apply: true,
                        batch: None,
                        because: format!("ready(g{goid}, next={next})"),
                    },
                );
                format!("ready(g{goid}, next={next}) -> runqput on this M's P")
            }
            Op::GoschedM | Op::GopreemptM => {
                let Some((g, goid)) = e.g() else {
                    problems.push(Problem::unjudged("the g was not readable".into()));
                    return e.op.name().into();
                };
                if self.running.remove(&goid).is_none() {
                    problems.push(Problem::disagree(format!(
                        "g{goid} yields, but the model has it not running"
                    )));
                }
                self.push_expect(
                    tid,
                    Expect {
                        op: Op::Globrunqput,
                        g: Some(g),
                        next: None,
                        p: None,
                        n: None,
                        apply: true,
                        batch: None,
                        because: format!("{}(g{goid}) → goschedImpl", e.op.name()),
                    },
                );
                format!("{}(g{goid}) -> globrunqput", e.op.name())
            }
            Op::Goexit0 => {
                let Some((_, goid)) = e.g() else {
                    problems.push(Problem::unjudged("the g was not readable".into()));
                    return "goexit0".into();
                };
                if self.running.remove(&goid).is_none() {
                    problems.push(Problem::disagree(format!(
                        "g{goid} exits, but the model has it not running"
                    )));
                }
                format!("goexit0(g{goid})")
            }
            Op::Handoffp => {
                if let Some(l) = e.pstate("p") {
                    if l.id < self.s.ps.len() {
                        self.compare_p(e, &l, problems);
                    }
                    return format!("handoffp(P{})", l.id);
                }
                "handoffp".into()
            }
        }
    }

    fn s_profile_takes_p(&self) -> bool {
        self.s.profile.global_get == super::GlobalGet::RunqputEach
    }

    /// Takes g out of a P's runnext or its ring's head, where the model still holds it.
    fn drop_queued(&mut self, g: u64) {
        for pp in &mut self.s.ps {
            if pp.runnext.as_ref().is_some_and(|x| x.id == g) {
                pp.runnext = None;
            } else if pp.runq_contents().first().is_some_and(|x| x.id == g) {
                pp.runqhead = pp.runqhead.wrapping_add(1);
            }
        }
    }

    /// Where the model holds g in a run queue, if anywhere.
    fn holds(&self, g: u64) -> Option<String> {
        for pp in &self.s.ps {
            if pp.runnext.as_ref().is_some_and(|x| x.id == g) {
                return Some(format!("P{}'s runnext", pp.id));
            }
            if pp.runq_contents().iter().any(|x| x.id == g) {
                return Some(format!("P{}'s ring", pp.id));
            }
        }
        if self.s.runq.iter().any(|x| x.id == g) {
            return Some("the global queue".into());
        }
        None
    }
}

/// A model P equals a state read from the runtime.
fn same_p(pp: &sched::P, l: &LiveP) -> bool {
    if pp.runqhead != l.head || pp.runqtail != l.tail || pp.schedtick != l.tick {
        return false;
    }
    if pp.runnext.as_ref().map(|g| g.id).unwrap_or(0) != l.runnext {
        return false;
    }
    let n = l.tail.wrapping_sub(l.head);
    n <= 256
        && (0..n).all(|i| {
            let idx = (l.head.wrapping_add(i) % 256) as usize;
            pp.runq[idx].as_ref().map(|g| g.id) == Some(l.ring[idx])
        })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Disagree,
    Raced,
    Unjudged,
}

#[derive(Clone, Debug)]
struct Problem {
    kind: Kind,
    why: String,
    model: Option<String>,
    live: Option<String>,
}

impl Problem {
    fn disagree(why: String) -> Problem {
        Problem {
            kind: Kind::Disagree,
            why,
            model: None,
            live: None,
        }
    }
    fn unjudged(why: String) -> Problem {
        Problem {
            kind: Kind::Unjudged,
            why,
            model: None,
            live: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A P state as the breakpoints read it.
    fn pvals(
        v: &mut HashMap<String, String>,
        role: &str,
        id: u64,
        tick: u32,
        head: u32,
        ring: &[u64],
        next: u64,
    ) {
        let mut slots = vec![0u64; 256];
        for (i, g) in ring.iter().enumerate() {
            slots[(head as usize + i) % 256] = *g;
        }
        v.insert(format!("{role}.id"), id.to_string());
        v.insert(format!("{role}.tick"), tick.to_string());
        v.insert(format!("{role}.head"), head.to_string());
        v.insert(
            format!("{role}.tail"),
            (head + ring.len() as u32).to_string(),
        );
        v.insert(format!("{role}.next"), next.to_string());
        let s: Vec<String> = slots.iter().map(|x| x.to_string()).collect();
        v.insert(format!("{role}.ring"), s.join(","));
    }

    fn gvals(v: &mut HashMap<String, String>, addr: u64) {
        v.insert("g".into(), addr.to_string());
        v.insert("g.goid".into(), (addr / 0x100).to_string());
    }

    fn ev(seq: usize, op: Op, vals: HashMap<String, String>) -> Event {
        Event {
            seq,
            stop: seq,
            thread: 1,
            goroutine: 1,
            op,
            vals,
        }
    }

    fn runqput(seq: usize, tick: u32, ring: &[u64], next: u64, g: u64) -> Event {
        let mut v = HashMap::new();
        pvals(&mut v, "p", 0, tick, 0, ring, next);
        gvals(&mut v, g);
        v.insert("arg.next".into(), "true".into());
        ev(seq, Op::Runqput, v)
    }

    fn runqget(seq: usize, tick: u32, ring: &[u64], next: u64) -> Event {
        runqget_at(seq, tick, 0, ring, next)
    }

    fn runqget_at(seq: usize, tick: u32, head: u32, ring: &[u64], next: u64) -> Event {
        let mut v = HashMap::new();
        pvals(&mut v, "p", 0, tick, head, ring, next);
        v.insert("glob.head".into(), "0".into());
        v.insert("glob.tail".into(), "0".into());
        v.insert("glob.size".into(), "0".into());
        ev(seq, Op::Runqget, v)
    }

    fn execute(seq: usize, g: u64, inherit: bool) -> Event {
        let mut v = HashMap::new();
        gvals(&mut v, g);
        v.insert("arg.inherit".into(), inherit.to_string());
        ev(seq, Op::Execute, v)
    }

    #[test]
    fn a_kicked_runnext_and_an_inherited_pick_match() {
        // go f(A); go f(B): B in runnext, A kicked to the ring; runqget takes B with
        // inheritTime, so execute leaves schedtick alone.
        let (a, b) = (0x1100, 0x1200);
        let events = vec![
            runqput(0, 0, &[], 0, a),
            runqput(1, 0, &[], a, b),
            runqget(2, 0, &[a], b),
            execute(3, b, true),
            runqget(4, 0, &[a], 0),
            execute(5, a, false),
            runqget_at(6, 1, 1, &[], 0),
        ];
        let r = Cosim::run(19, 1, &events);
        assert_eq!((r.observed, r.judged, r.matched), (7, 7, 7), "{r:?}");
    }

    #[test]
    fn a_wrong_pick_and_a_wrong_state_are_disagreements_with_both_states() {
        let (a, b) = (0x1100, 0x1200);
        // The runtime ran A where the model picks B from runnext.
        let r = Cosim::run(
            19,
            1,
            &[
                runqput(0, 0, &[], 0, a),
                runqput(1, 0, &[], a, b),
                runqget(2, 0, &[a], b),
                execute(3, a, false),
            ],
        );
        assert_eq!(r.matched, 3);
        let d = &r.disagreements[0];
        assert!(
            matches!(&d.judged, Judged::Disagreed(w) if w.contains("g18 from P0's runnext")),
            "{d:?}"
        );
        // The ring read at runqget is not what the model holds (A was not kicked).
        let r = Cosim::run(
            19,
            1,
            &[
                runqput(0, 0, &[], 0, a),
                runqput(1, 0, &[], a, b),
                runqget(2, 0, &[], b),
            ],
        );
        assert_eq!((r.judged, r.matched), (3, 2));
        let d = &r.disagreements[0];
        assert!(
            d.model_state.as_deref().unwrap().contains("ring(1)=[g17]"),
            "{d:?}"
        );
        assert!(
            d.live_state.as_deref().unwrap().contains("ring(0)=[]"),
            "{d:?}"
        );
    }

    #[test]
    fn schedtick_moves_only_without_inherit_time() {
        let (a, b) = (0x1100, 0x1200);
        // execute(a, false) must advance schedtick: a later read of 0 disagrees.
        let r = Cosim::run(
            19,
            1,
            &[
                runqput(0, 0, &[], 0, a),
                runqput(1, 0, &[], a, b),
                runqget(2, 0, &[a], b),
                execute(3, b, true),
                runqget(4, 0, &[a], 0),
                execute(5, a, false),
                runqget_at(6, 0, 1, &[], 0),
            ],
        );
        assert_eq!(r.judged - r.matched, 1, "{r:?}");
        assert!(
            r.disagreements[0]
                .model_state
                .as_deref()
                .unwrap()
                .contains("schedtick=1")
        );
    }

    #[test]
    fn a_full_ring_predicts_runqputslow_and_its_batch() {
        let ring: Vec<u64> = (1..=256).map(|i| i * 0x100).collect();
        let g = 0x1_0000_0000u64;
        let mut v = HashMap::new();
        pvals(&mut v, "p", 0, 0, 0, &ring, 0);
        gvals(&mut v, g);
        v.insert("arg.next".into(), "false".into());
        let mut c = Cosim::new(19, 1);
        // The model learns the full ring from the first read (not judged as a match).
        c.sync_p(
            &Event {
                vals: v.clone(),
                ..ev(0, Op::Runqput, HashMap::new())
            }
            .pstate("p")
            .unwrap(),
        );
        c.step(&ev(0, Op::Runqput, v));
        let mut slow = HashMap::new();
        slow.insert("p.id".into(), "0".into());
        gvals(&mut slow, g);
        slow.insert("arg.h".into(), "0".into());
        slow.insert("arg.t".into(), "256".into());
        c.step(&ev(1, Op::Runqputslow, slow));
        let mut batch = HashMap::new();
        batch.insert("glob.head".into(), "0".into());
        batch.insert("glob.tail".into(), "0".into());
        batch.insert("glob.size".into(), "0".into());
        batch.insert("batch.head".into(), (0x100).to_string());
        batch.insert("batch.tail".into(), g.to_string());
        c.step(&ev(2, Op::Globrunqputbatch, batch));
        assert_eq!(
            (c.report.judged, c.report.matched),
            (3, 3),
            "{:?}",
            c.report
        );
        assert_eq!(c.s.runqsize, 129);
        assert_eq!(c.s.ps[0].runq_len(), 128);
        // A runqputslow the model did not predict is a disagreement.
        let mut c = Cosim::new(19, 1);
        let mut slow = HashMap::new();
        slow.insert("p.id".into(), "0".into());
        c.step(&ev(0, Op::Runqputslow, slow));
        assert_eq!(c.report.disagreements.len(), 1);
    }

    #[test]
    fn a_steal_whose_victim_moved_on_is_raced_not_a_disagreement() {
        // Recorded on go1.17.1, chan-handoff on 4 Ps (fidelity-cosim): the thief's
        // runqsteal read P0 as ring [A] with B in runnext; before its runqgrab's CAS the
        // owner queued C and D (ring [A, B, C]), so the thief took two, ran B and left
        // [A] in its own ring where the model, stealing at the entry, left nothing.
        let (a, b, c, d) = (0x1100, 0x1200, 0x1300, 0x1400);
        let on = |thread: i64, e: Event| Event { thread, ..e };
        let put =
            |seq: usize, ring: &[u64], next: u64, g: u64| on(1, runqput(seq, 0, ring, next, g));
        let mut steal = HashMap::new();
        pvals(&mut steal, "p", 1, 0, 0, &[], 0);
        pvals(&mut steal, "v", 0, 0, 0, &[a], b);
        steal.insert("arg.steal".into(), "true".into());
        let mut grab = HashMap::new();
        grab.insert("v.id".into(), "0".into());
        grab.insert("arg.steal".into(), "true".into());
        let mut exec = HashMap::new();
        gvals(&mut exec, b);
        exec.insert("arg.inherit".into(), "false".into());
        pvals(&mut exec, "p", 1, 0, 0, &[a], 0);
        let events = vec![
            put(0, &[], 0, a),
            put(1, &[], a, b),
            on(2, ev(2, Op::Runqsteal, steal)),
            on(2, ev(3, Op::Runqgrab, grab)),
            put(4, &[a], b, c),
            put(5, &[a, b], c, d),
            on(2, ev(6, Op::Execute, exec)),
        ];
        let r = Cosim::run(17, 2, &events);
        assert!(r.disagreements.is_empty(), "{r:?}");
        assert!(r.raced >= 1, "{r:?}");
        assert!(
            r.raced_list
                .iter()
                .any(|t| matches!(&t.judged, Judged::Raced(w) if w.contains("a steal from P0"))),
            "{r:?}"
        );
    }

    #[test]
    fn a_runnext_steal_that_found_nothing_gives_the_g_back() {
        // Recorded on go1.19.8, chan-token on 2 Ps (fidelity-cosim): the owner's
        // runqput(P0, main, next=true) had not stored runnext when a thief's runqsteal
        // read P0 (runnext empty, the model's ahead); the model's steal took main from
        // runnext, the runtime's runqgrab found nothing and the thief searched again.
        // The next read of P0 has main in runnext: the model must still hold it there.
        let (a, c) = (0x1100, 0x1300);
        let on = |thread: i64, e: Event| Event { thread, ..e };
        let steal = |seq: usize, next: u64, steal: bool| {
            let mut v = HashMap::new();
            pvals(&mut v, "p", 1, 0, 0, &[], 0);
            pvals(&mut v, "v", 0, 0, 0, &[], next);
            v.insert("arg.steal".into(), steal.to_string());
            on(2, ev(seq, Op::Runqsteal, v))
        };
        let mut grab = HashMap::new();
        grab.insert("v.id".into(), "0".into());
        grab.insert("arg.steal".into(), "true".into());
        let mut pre = HashMap::new();
        gvals(&mut pre, c);
        let mut get1 = HashMap::new();
        pvals(&mut get1, "p", 1, 0, 0, &[], 0);
        get1.insert("glob.head".into(), "0".into());
        get1.insert("glob.tail".into(), "0".into());
        get1.insert("glob.size".into(), "0".into());
        let events = vec![
            on(1, runqput(0, 0, &[], 0, c)),
            on(1, runqget(1, 0, &[], c)),
            on(1, execute(2, c, true)),
            on(1, runqput(3, 0, &[], 0, a)),
            steal(4, 0, true),
            on(2, ev(5, Op::Runqgrab, grab)),
            // The owner leaves P0's queues (its runqput has landed).
            on(1, ev(6, Op::GopreemptM, pre)),
            on(2, ev(7, Op::Runqget, get1)),
            steal(8, a, false),
        ];
        let r = Cosim::run(19, 2, &events);
        assert!(r.disagreements.is_empty(), "{r:?}");
    }

    #[test]
    fn points_use_the_profiles_names() {
        let (p17, _) = VersionProfile::for_version(crate::toolchain::GoVersion::new(1, 17, 1));
        let (p25, _) = VersionProfile::for_version(crate::toolchain::GoVersion::new(1, 25, 5));
        let f = |p: &VersionProfile, op: Op| {
            points(p)
                .into_iter()
                .find(|x| x.op == op)
                .map(|x| format!("{:?}", x.reads))
        };
        assert!(f(&p17, Op::Runqput).unwrap().contains("{reg:rax}"));
        let (p15, _) = VersionProfile::for_version(crate::toolchain::GoVersion::new(1, 15, 15));
        assert!(f(&p15, Op::Runqput).unwrap().contains("*_p_"));
        assert!(
            f(&p25, Op::Runqput)
                .unwrap()
                .contains("*(*runtime.p)({reg:rax})")
        );
        assert!(f(&p17, Op::Globrunqgetbatch).is_none());
        assert!(f(&p25, Op::Globrunqgetbatch).is_some());
    }

    /// A stop at `op`'s breakpoint on `thread`, its values keyed as go1.`minor`'s points
    /// read them (`eval *_p_.schedtick`, `eval *(*runtime.p)(...).id`, ...), from the
    /// values by role.
    fn hit_of(
        minor: u32,
        seq: usize,
        thread: i64,
        op: Op,
        by_role: &HashMap<String, String>,
    ) -> crate::trace::Hit {
        let pts = points(&VersionProfile::line(minor));
        let pt = pts.iter().find(|p| p.op == op).expect("a point for op");
        crate::trace::Hit {
            seq,
            tool: crate::trace::Tool::Dlv,
            breakpoint: pt.function.clone(),
            thread,
            goroutine: 0,
            stack: vec![crate::trace::Frame {
                function: pt.function.clone(),
                file: "proc.go".into(),
                line: 1,
                pc: 0,
                entry_pc: false,
            }],
            values: pt
                .roles
                .iter()
                .filter_map(|(role, key)| by_role.get(role).map(|v| (key.clone(), v.clone())))
                .collect(),
            stop: seq,
        }
    }

    #[test]
    fn an_m_that_takes_a_p_without_a_run_queue_call_advances_that_ps_schedtick_on_go115() {
        // go1.15 passes arguments on the stack, so execute's P is not in R14: the
        // point reads it through the thread-local g (-8(FS)). M1 last touched P0, then
        // took P1 the way stoplockedm does (acquirep of the P startlockedm handed over,
        // 1.15.15 proc.go:2093) and ran the locked g with inheritTime=false (proc.go:2618):
        // P1's schedtick advanced, not P0's.
        let (a, b, m) = (0x1100, 0x1200, 0x100);
        let (t1, t2) = (1, 2);
        let glob = |v: &mut HashMap<String, String>| {
            for k in ["glob.head", "glob.tail", "glob.size"] {
                v.insert(k.into(), "0".into());
            }
        };
        let mut hits = Vec::new();
        let mut v = HashMap::new();
        pvals(&mut v, "p", 0, 0, 0, &[], 0);
        gvals(&mut v, a);
        v.insert("arg.next".into(), "false".into());
        hits.push(hit_of(15, 0, t1, Op::Runqput, &v));
        let mut v = HashMap::new();
        pvals(&mut v, "p", 0, 0, 0, &[a], 0);
        glob(&mut v);
        hits.push(hit_of(15, 1, t2, Op::Runqget, &v));
        let mut v = HashMap::new();
        gvals(&mut v, a);
        v.insert("arg.inherit".into(), "false".into());
        pvals(&mut v, "p", 0, 0, 1, &[], 0);
        hits.push(hit_of(15, 2, t2, Op::Execute, &v));
        let mut v = HashMap::new();
        gvals(&mut v, m);
        v.insert("arg.inherit".into(), "false".into());
        pvals(&mut v, "p", 1, 0, 0, &[], 0);
        hits.push(hit_of(15, 3, t1, Op::Execute, &v));
        let mut v = HashMap::new();
        pvals(&mut v, "p", 1, 1, 0, &[], 0);
        gvals(&mut v, b);
        v.insert("arg.next".into(), "true".into());
        hits.push(hit_of(15, 4, t1, Op::Runqput, &v));
        let mut v = HashMap::new();
        pvals(&mut v, "p", 0, 1, 1, &[], 0);
        glob(&mut v);
        hits.push(hit_of(15, 5, t2, Op::Runqget, &v));
        let events = Event::from_hits(&points(&VersionProfile::line(15)), &hits);
        assert!(
            events[2].vals.contains_key("p.tick") && events[3].vals.contains_key("p.tick"),
            "go1.15's execute reads its P: {:?}",
            events[3].vals.keys().collect::<Vec<_>>()
        );
        let r = Cosim::run(15, 2, &events);
        assert_eq!((r.observed, r.judged, r.matched), (6, 6, 6), "{r:?}");
    }

    #[test]
    fn an_owner_and_a_thief_that_took_each_others_g_are_raced_and_swapped() {
        // Recorded on go1.17.1, mutex on 2 Ps (fidelity-cosim, seq 213-218): a thief's
        // runqsteal read P0's ring as [A, B] and its runqgrab was still to CAS the head
        // when the owner's runqget read [A, B] too. The model, stealing at the entry,
        // gave A to the thief and B to the owner; the owner's CAS came first: it ran A
        // and the thief B. Neither order is a disagreement, and once the owner's execute
        // shows which, the thief's pick is B.
        let (a, b) = (0x1100, 0x1200);
        let on = |thread: i64, e: Event| Event { thread, ..e };
        let put = |seq: usize, ring: &[u64], g: u64| {
            let mut e = runqput(seq, 0, ring, 0, g);
            e.vals.insert("arg.next".into(), "false".into());
            on(1, e)
        };
        let events_put = vec![put(0, &[], a), put(1, &[a], b)];
        let mut steal = HashMap::new();
        pvals(&mut steal, "p", 1, 0, 0, &[], 0);
        pvals(&mut steal, "v", 0, 0, 0, &[a, b], 0);
        steal.insert("arg.steal".into(), "false".into());
        let mut grab = HashMap::new();
        grab.insert("v.id".into(), "0".into());
        grab.insert("arg.steal".into(), "false".into());
        let owner_exec = on(1, execute(5, a, false));
        let mut exec = HashMap::new();
        gvals(&mut exec, b);
        exec.insert("arg.inherit".into(), "false".into());
        pvals(&mut exec, "p", 1, 0, 0, &[], 0);
        let mut events = events_put;
        events.extend([
            on(2, ev(2, Op::Runqsteal, steal)),
            on(2, ev(3, Op::Runqgrab, grab)),
            on(1, runqget(4, 0, &[a, b], 0)),
            owner_exec,
            on(2, ev(6, Op::Execute, exec)),
            on(1, runqget_at(7, 1, 2, &[], 0)),
        ]);
        let r = Cosim::run(17, 2, &events);
        assert!(r.disagreements.is_empty(), "{r:?}");
        assert!(
            r.raced_list.iter().any(|t| t.seq == 5
                && matches!(&t.judged, Judged::Raced(w) if w.contains("took each other's"))),
            "{r:?}"
        );
        // The thief's execute of B and the owner's next read of P0 are judged, and agree.
        assert!(r.matched >= 6, "{r:?}");
    }

    #[test]
    fn a_g_that_runs_is_in_no_run_queue_even_after_a_raced_read_put_it_back() {
        // Recorded on go1.17.1, chan-handoff on 4 Ps (fidelity-cosim, seq 55-70): two
        // thieves read P0's ring [A, B] (runnext C) before either CASed; the second
        // ran A, so the first's pick is B. Before the first's CAS landed the owner read
        // [B] and the model took that state (a race); when the first thief runs B, B is
        // in no run queue, and the owner's next read of P0 finds it empty.
        let (a, b, c) = (0x1100, 0x1200, 0x1300);
        let on = |thread: i64, e: Event| Event { thread, ..e };
        let put = |seq: usize, ring: &[u64], next: u64, g: u64, as_next: bool| {
            let mut e = runqput(seq, 0, ring, next, g);
            e.vals.insert("arg.next".into(), as_next.to_string());
            on(1, e)
        };
        let steal = |seq: usize, thread: i64, thief: u64| {
            let mut v = HashMap::new();
            pvals(&mut v, "p", thief, 0, 0, &[], 0);
            pvals(&mut v, "v", 0, 0, 0, &[a, b], c);
            v.insert("arg.steal".into(), "false".into());
            on(thread, ev(seq, Op::Runqsteal, v))
        };
        let grab = |seq: usize, thread: i64| {
            let mut v = HashMap::new();
            v.insert("v.id".into(), "0".into());
            v.insert("arg.steal".into(), "false".into());
            on(thread, ev(seq, Op::Runqgrab, v))
        };
        let exec_on = |seq: usize, thread: i64, g: u64, p: u64| {
            let mut v = HashMap::new();
            gvals(&mut v, g);
            v.insert("arg.inherit".into(), "false".into());
            pvals(&mut v, "p", p, 0, 0, &[], 0);
            on(thread, ev(seq, Op::Execute, v))
        };
        let mut owner_exec = execute(9, c, true);
        pvals(&mut owner_exec.vals, "p", 0, 0, 1, &[b], 0);
        let events = vec![
            put(0, &[], 0, a, false),
            put(1, &[a], 0, b, false),
            put(2, &[a, b], 0, c, true),
            steal(3, 2, 1),
            steal(4, 3, 2),
            grab(5, 2),
            grab(6, 3),
            exec_on(7, 3, a, 2),
            on(1, runqget_at(8, 0, 1, &[b], c)),
            on(1, owner_exec),
            exec_on(10, 2, b, 1),
            on(1, runqget_at(11, 0, 2, &[], 0)),
        ];
        let r = Cosim::run(17, 4, &events);
        assert!(r.disagreements.is_empty(), "{r:?}");
        assert_eq!(r.raced, 2, "{r:?}");
    }

    #[test]
    fn a_steal_that_found_work_after_its_entry_fills_the_thiefs_ring_before_it_is_compared() {
        // Recorded on go1.15.15, close-wake on 2 Ps (fidelity-cosim, seq 44-51): the
        // thief's runqsteal read P0 with only runnext (A) and its ring empty, so the
        // model's steal (stealRunNextG=false) found nothing; by its runqgrab's CAS the
        // owner had queued B, C and D, kicking A, B and C to the ring: the thief took
        // A and B, ran B and left A in its own ring, which its execute reads.
        let (a, b, c, d) = (0x1100, 0x1200, 0x1300, 0x1400);
        let on = |thread: i64, e: Event| Event { thread, ..e };
        let mut steal = HashMap::new();
        pvals(&mut steal, "p", 1, 0, 0, &[], 0);
        pvals(&mut steal, "v", 0, 0, 0, &[], a);
        steal.insert("arg.steal".into(), "false".into());
        let mut grab = HashMap::new();
        grab.insert("v.id".into(), "0".into());
        grab.insert("arg.steal".into(), "false".into());
        let mut exec = HashMap::new();
        gvals(&mut exec, b);
        exec.insert("arg.inherit".into(), "false".into());
        pvals(&mut exec, "p", 1, 0, 0, &[a], 0);
        let mut get = runqget(7, 1, &[a], 0);
        pvals(&mut get.vals, "p", 1, 1, 0, &[a], 0);
        let events = vec![
            on(1, runqput(0, 0, &[], 0, a)),
            on(2, ev(1, Op::Runqsteal, steal)),
            on(2, ev(2, Op::Runqgrab, grab)),
            on(1, runqput(3, 0, &[], a, b)),
            on(1, runqput(4, 0, &[a], b, c)),
            on(1, runqput(5, 0, &[a, b], c, d)),
            on(2, ev(6, Op::Execute, exec)),
            on(2, get),
        ];
        let r = Cosim::run(15, 2, &events);
        assert!(r.disagreements.is_empty(), "{r:?}");
        assert!(
            r.raced_list
                .iter()
                .any(|t| t.seq == 6
                    && matches!(&t.judged, Judged::Raced(w) if w.contains("found g"))),
            "{r:?}"
        );
        // The thief's next read of its own P (A in the ring) is judged and agrees.
        assert_eq!(r.by_op.get("runqget"), Some(&(1, 1)), "{r:?}");
    }

    #[test]
    fn an_owners_pick_read_before_a_thiefs_cas_landed_is_raced() {
        // Recorded on go1.15.15, close-wake on 4 Ps (fidelity-cosim, seq 118-126): a
        // thief's runqsteal read P0's ring [A, B, C, D] (the model: it takes A and B,
        // runs B), then the owner's runqget read the ring unchanged (the thief's CAS not
        // landed: the model's pick is C). The owner's CAS came first: it ran A, and the
        // thief took B and C from [B, C, D], ran C and kept B.
        let (a, b, c, d) = (0x1100, 0x1200, 0x1300, 0x1400);
        let on = |thread: i64, e: Event| Event { thread, ..e };
        let put = |seq: usize, ring: &[u64], g: u64| {
            let mut e = runqput(seq, 0, ring, 0, g);
            e.vals.insert("arg.next".into(), "false".into());
            on(1, e)
        };
        let mut steal = HashMap::new();
        pvals(&mut steal, "p", 2, 0, 0, &[], 0);
        pvals(&mut steal, "v", 0, 0, 0, &[a, b, c, d], 0);
        steal.insert("arg.steal".into(), "false".into());
        let mut grab = HashMap::new();
        grab.insert("v.id".into(), "0".into());
        grab.insert("arg.steal".into(), "false".into());
        let mut exec = HashMap::new();
        gvals(&mut exec, c);
        exec.insert("arg.inherit".into(), "false".into());
        pvals(&mut exec, "p", 2, 0, 0, &[b], 0);
        let events = vec![
            put(0, &[], a),
            put(1, &[a], b),
            put(2, &[a, b], c),
            put(3, &[a, b, c], d),
            on(2, ev(4, Op::Runqsteal, steal)),
            on(2, ev(5, Op::Runqgrab, grab)),
            on(1, runqget(6, 0, &[a, b, c, d], 0)),
            on(1, execute(7, a, false)),
            on(2, ev(8, Op::Execute, exec)),
            on(1, runqget_at(9, 1, 3, &[d], 0)),
        ];
        let r = Cosim::run(15, 4, &events);
        assert!(r.disagreements.is_empty(), "{r:?}");
        assert!(r.raced_list.iter().any(|t| t.seq == 7), "{r:?}");
        // The owner's next read of P0 ([D]) is judged and agrees.
        assert_eq!(r.by_op.get("runqget"), Some(&(2, 2)), "{r:?}");
    }

    #[test]
    fn a_thief_that_took_runnext_before_the_owners_kick_leaves_the_ring_alone() {
        // Recorded on go1.27.3 and go1.19.8, chan-handoff on 4 Ps (fidelity-cosim,
        // go1.27 seq 191-204): the thief's runqsteal read the victim's runnext empty,
        // its runqgrab found A there; the owner's runqput(B, next=true) read A in
        // runnext too, but the thief's CAS took A first, so the owner's CAS failed and
        // retried on an empty runnext: no kick, the ring unchanged.
        let (a, b) = (0x1100, 0x1200);
        let on = |thread: i64, e: Event| Event { thread, ..e };
        let mut steal = HashMap::new();
        pvals(&mut steal, "p", 1, 0, 0, &[], 0);
        pvals(&mut steal, "v", 0, 0, 0, &[], 0);
        steal.insert("arg.steal".into(), "true".into());
        let mut grab = HashMap::new();
        pvals(&mut grab, "v", 0, 0, 0, &[], a);
        grab.insert("arg.steal".into(), "true".into());
        let mut exec = HashMap::new();
        gvals(&mut exec, a);
        exec.insert("arg.inherit".into(), "false".into());
        pvals(&mut exec, "p", 1, 0, 0, &[], 0);
        let events = vec![
            on(2, ev(0, Op::Runqsteal, steal)),
            on(1, runqput(1, 0, &[], 0, a)),
            on(2, ev(2, Op::Runqgrab, grab)),
            on(1, runqput(3, 0, &[], a, b)),
            on(2, ev(4, Op::Execute, exec)),
            on(1, runqget(5, 0, &[], b)),
        ];
        let r = Cosim::run(27, 4, &events);
        assert!(r.disagreements.is_empty(), "{r:?}");
        assert!(
            r.raced_list.iter().any(|t| t.seq == 4
                && matches!(&t.judged, Judged::Raced(w) if w.contains("from its runnext"))),
            "{r:?}"
        );
        assert_eq!(r.by_op.get("runqget"), Some(&(1, 1)), "{r:?}");
    }
}

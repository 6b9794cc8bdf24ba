//! The amd64 (Linux) startup path as an executable walk.
//!
//! Each function on the path has a body: the jumps and calls it makes, in order, taken
//! from the runtime's source (asm_amd64.s, rt0_linux_amd64.s, proc.go; line numbers for
//! go1.17.1 in ../shared/GO-RUNTIME-SOURCE.md §1). Walking the bodies from the ELF entry
//! yields every function entered, how it was reached (jump, call, call through an ABI0
//! wrapper, or gogo's jump with `goexit` as the fake return address), by whom, and on
//! which thread. The expected chain a lab checks is the first entry of each function.

use super::Profile;
use serde::Serialize;

/// How control reached a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "how")]
pub enum Reached {
    /// The kernel starts the process here.
    Entry,
    /// A JMP: no return address, so no caller frame on the stack.
    Jump { from: String },
    /// A CALL; `wrapper` says it passed through the ABI0 wrapper of the same name.
    Call { from: String, wrapper: bool },
    /// `gogo` jumps to `gobuf.pc`; `newproc1` put `goexit` as the return address.
    Gogo { fake_return: String },
    /// `clone` starts a new OS thread at `mstart`.
    NewThread { from: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub function: String,
    #[serde(flatten)]
    pub reached: Reached,
    /// `m0` for the main thread; `sysmon` for the thread `runtime.main` starts.
    pub thread: &'static str,
    /// What the step does, in the lab notes' words.
    pub does: &'static str,
}

impl Step {
    /// The caller a stack shows at this step, with wrappers folded (None: no frame).
    pub fn caller(&self) -> Option<&str> {
        match &self.reached {
            Reached::Call { from, .. } => Some(from),
            Reached::Gogo { fake_return } => Some(fake_return),
            Reached::NewThread { .. } | Reached::Entry | Reached::Jump { .. } => None,
        }
    }
    pub fn via_wrapper(&self) -> bool {
        matches!(self.reached, Reached::Call { wrapper: true, .. })
    }
}

#[derive(Clone, Copy)]
enum Op {
    Jmp(&'static str),
    Call(&'static str),
    /// gogo's JMP to the new g's entry, with goexit as its return address.
    Gogo(&'static str),
    /// `newm` -> `newosproc` -> clone: a new thread starts at `mstart`.
    Clone(&'static str),
}

/// Functions written in assembly (ABI0); calls from them into Go need a wrapper.
fn is_asm(p: &Profile, f: &str) -> bool {
    matches!(
        f,
        "_rt0_amd64_linux" | "_rt0_amd64" | "runtime.rt0_go" | "runtime.gogo"
    ) || (f == "runtime.mstart" && p.mstart0)
}

/// What each function on the path does, in order: the model's source.
fn body(p: &Profile, f: &str) -> (Vec<Op>, &'static str) {
    use Op::*;
    match f {
        "_rt0_amd64_linux" => (
            vec![Jmp("_rt0_amd64")],
            "the ELF entry point: jumps to _rt0_amd64",
        ),
        "_rt0_amd64" => (
            vec![Jmp("runtime.rt0_go")],
            "moves argc (0(SP)) to DI and argv (8(SP)) to SI, jumps to rt0_go",
        ),
        "runtime.rt0_go" => (
            vec![
                Call("runtime.check"),
                Call("runtime.args"),
                Call("runtime.osinit"),
                Call("runtime.schedinit"),
                Call("runtime.newproc"),
                Call("runtime.mstart"),
            ],
            "sets up the g0 stack, reads CPUID, sets the TLS g and m0.g0 = &g0, then calls check, args, osinit, schedinit, newproc(mainPC) and mstart",
        ),
        "runtime.check" => (
            vec![],
            "checks the sizes and behaviour of the language's built-in types",
        ),
        "runtime.args" => (
            vec![],
            "stores argc/argv in runtime.argc/argv; sysargs reads the auxiliary vector (AT_PAGESZ -> physPageSize)",
        ),
        "runtime.osinit" => (
            vec![],
            "ncpu = the logical CPUs (sched_getaffinity); huge page size",
        ),
        "runtime.schedinit" => (
            vec![],
            "sched.maxmcount = 10000; procresize creates GOMAXPROCS Ps",
        ),
        "runtime.newproc" => (
            vec![Call("runtime.newproc1"), Call("runtime.runqput")],
            "on the system stack: newproc1 makes a g for fn, runqput(p, g, next=true) puts it in runnext",
        ),
        "runtime.newproc1" => (
            vec![],
            "allocates the g, sets its entry (startpc) and goexit as the return address",
        ),
        "runtime.runqput" => (
            vec![],
            "next=true: the new g goes to p.runnext (an old runnext is kicked to the local queue's tail)",
        ),
        "runtime.mstart" if p.mstart0 => (vec![Call("runtime.mstart0")], "assembly: calls mstart0"),
        "runtime.mstart" | "runtime.mstart0" => (
            vec![Call("runtime.mstart1")],
            "records the g0 stack bounds, calls mstart1",
        ),
        "runtime.mstart1" => (
            vec![Call("runtime.schedule")],
            "minit; on m0 mstartm0; runs m.mstartfn if set; then schedule()",
        ),
        "runtime.schedule" => {
            let find = if p.schedule_calls_runqget() {
                "runtime.runqget"
            } else {
                p.find_runnable
            };
            (
                vec![Call(find), Call("runtime.execute")],
                "finds a runnable g (the main g, in runnext) and executes it",
            )
        }
        "runtime.findRunnable" | "runtime.findrunnable" => (
            vec![Call("runtime.runqget")],
            "the local run queue first: runqget",
        ),
        "runtime.runqget" => (
            vec![],
            "takes p.runnext (inheritTime=true: the g inherits the time slice)",
        ),
        "runtime.execute" => (
            vec![Call("runtime.gogo")],
            "g._Grunnable -> _Grunning; schedtick++ unless the time slice is inherited; gogo(&g.sched)",
        ),
        "runtime.gogo" => (
            vec![Gogo("runtime.main")],
            "loads the g's registers (R14 = g since 1.17) and jumps to its pc",
        ),
        "runtime.main" => (
            vec![Clone("runtime.mstart"), Call("main.main")],
            "mainStarted = true; newm(sysmon) on a new thread; runtime and package inits; then main.main",
        ),
        "main.main" => (
            vec![Call("runtime.newproc"), Call("main.args")],
            "go func(){...}(): newproc(main.main.func1); then args()",
        ),
        "main.args" => (vec![], "println(\"do sth\")"),
        _ => (vec![], ""),
    }
}

/// Walks the startup path and returns every function entry, in order.
pub fn walk(p: &Profile) -> Vec<Step> {
    let mut out = Vec::new();
    let mut sysmon_started = false;
    visit(
        p,
        "_rt0_amd64_linux",
        Reached::Entry,
        "m0",
        &mut out,
        &mut sysmon_started,
    );
    out
}

fn visit(
    p: &Profile,
    f: &str,
    reached: Reached,
    thread: &'static str,
    out: &mut Vec<Step>,
    sysmon: &mut bool,
) {
    let (ops, does) = body(p, f);
    out.push(Step {
        function: f.to_string(),
        reached,
        thread,
        does,
    });
    for op in ops {
        match op {
            Op::Jmp(t) => visit(p, t, Reached::Jump { from: f.into() }, thread, out, sysmon),
            Op::Call(t) => {
                let wrapper = p.abi_wrappers && is_asm(p, f) && !is_asm(p, t);
                visit(
                    p,
                    t,
                    Reached::Call {
                        from: f.into(),
                        wrapper,
                    },
                    thread,
                    out,
                    sysmon,
                )
            }
            Op::Gogo(t) => visit(
                p,
                t,
                Reached::Gogo {
                    fake_return: "runtime.goexit".into(),
                },
                thread,
                out,
                sysmon,
            ),
            Op::Clone(t) => {
                *sysmon = true;
                // The new thread runs mstart -> (mstart0 ->) mstart1 -> sysmon (its mstartfn).
                out.push(Step {
                    function: t.to_string(),
                    reached: Reached::NewThread { from: f.into() },
                    thread: "sysmon",
                    does: "the new M's thread starts in mstart",
                });
                let mut cur = t.to_string();
                if p.mstart0 {
                    out.push(Step {
                        function: "runtime.mstart0".into(),
                        reached: Reached::Call {
                            from: cur.clone(),
                            wrapper: p.abi_wrappers,
                        },
                        thread: "sysmon",
                        does: "",
                    });
                    cur = "runtime.mstart0".into();
                }
                out.push(Step {
                    function: "runtime.mstart1".into(),
                    reached: Reached::Call {
                        from: cur,
                        wrapper: false,
                    },
                    thread: "sysmon",
                    does: "",
                });
                out.push(Step {
                    function: "runtime.sysmon".into(),
                    reached: Reached::Call {
                        from: "runtime.mstart1".into(),
                        wrapper: false,
                    },
                    thread: "sysmon",
                    does: "the system monitor: runs without a P, forever",
                });
            }
        }
    }
}

/// The startup chain a lab checks: the first entry of each function on the main thread,
/// from the ELF entry to `main.main`.
pub fn chain(p: &Profile) -> Vec<Step> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for s in walk(p) {
        if s.thread != "m0" || !seen.insert(s.function.clone()) {
            continue;
        }
        let end = s.function == "main.main";
        out.push(s);
        if end {
            break;
        }
    }
    out
}

/// The step that starts sysmon, if the model has one.
pub fn sysmon_step(p: &Profile) -> Option<Step> {
    walk(p).into_iter().find(|s| s.function == "runtime.sysmon")
}

/// The chain as a table for `golab reference`.
pub fn render(p: &Profile, v: crate::toolchain::GoVersion) -> String {
    let mut s = format!(
        "Reference profile {} for {v}: the amd64 Linux startup path, ELF entry to main.main\n",
        p.name()
    );
    let c = chain(p);
    for (i, st) in c.iter().enumerate() {
        let how = match &st.reached {
            Reached::Entry => "process entry".to_string(),
            Reached::Jump { from } => format!("JMP from {from}"),
            Reached::Call {
                from,
                wrapper: true,
            } => format!("CALL from {from} via its ABI0 wrapper"),
            Reached::Call { from, .. } => format!("CALL from {from}"),
            Reached::Gogo { fake_return } => format!("gogo's JMP; returns to {fake_return}"),
            Reached::NewThread { from } => format!("new thread from {from}"),
        };
        s.push_str(&format!(
            "{:>3}. {:<22} {:<44} {}\n",
            i + 1,
            st.function,
            how,
            st.does
        ));
    }
    let sysmon: Vec<String> = walk(p)
        .into_iter()
        .filter(|x| x.thread == "sysmon")
        .map(|x| x.function)
        .collect();
    s.push_str(&format!(
        "  on a new thread (runtime.main -> newm -> clone): {}\n",
        sysmon.join(" -> ")
    ));
    s.push_str(&format!(
        "  profile: ABI wrappers {}; mstart0 {}; newproc({}); {}; physPageSize set in {} (from the auxiliary vector)\n",
        if p.abi_wrappers { "yes" } else { "no" },
        if p.mstart0 { "yes" } else { "no" },
        if p.newproc_has_size { "siz, fn" } else { "fn" },
        if p.schedule_calls_runqget() { format!("schedule calls runqget, {} when it is empty", p.find_runnable) } else { format!("schedule calls {}, which calls runqget", p.find_runnable) },
        p.page_size_set_by
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolchain::GoVersion;

    fn names(v: (u32, u32)) -> Vec<String> {
        let (p, _) = Profile::for_version(GoVersion::new(1, v.0, v.1));
        chain(&p).into_iter().map(|s| s.function).collect()
    }

    #[test]
    fn startup_chain_on_go117_reaches_main_main_through_mstart0_and_runtime_main() {
        let n = names((17, 1));
        let want = [
            "_rt0_amd64_linux",
            "_rt0_amd64",
            "runtime.rt0_go",
            "runtime.check",
            "runtime.args",
            "runtime.osinit",
            "runtime.schedinit",
            "runtime.newproc",
            "runtime.newproc1",
            "runtime.runqput",
            "runtime.mstart",
            "runtime.mstart0",
            "runtime.mstart1",
            "runtime.schedule",
            "runtime.runqget",
            "runtime.execute",
            "runtime.gogo",
            "runtime.main",
            "main.main",
        ];
        assert_eq!(n, want);
    }

    #[test]
    fn go115_has_no_mstart0_and_go119_finds_work_in_find_runnable() {
        let n15 = names((15, 15));
        assert!(!n15.contains(&"runtime.mstart0".to_string()));
        let n19 = names((19, 8));
        let i = n19
            .iter()
            .position(|f| f == "runtime.findRunnable")
            .unwrap();
        assert_eq!(n19[i + 1], "runtime.runqget");
    }

    #[test]
    fn rt0_go_calls_go_through_abi_wrappers_from_117_only() {
        let (p17, _) = Profile::for_version(GoVersion::new(1, 17, 1));
        let c = chain(&p17);
        let sched = c
            .iter()
            .find(|s| s.function == "runtime.schedinit")
            .unwrap();
        assert!(sched.via_wrapper());
        assert_eq!(sched.caller(), Some("runtime.rt0_go"));
        // mstart is assembly from 1.17: rt0_go calls it directly.
        assert!(
            !c.iter()
                .find(|s| s.function == "runtime.mstart")
                .unwrap()
                .via_wrapper()
        );
        let (p15, _) = Profile::for_version(GoVersion::new(1, 15, 15));
        assert!(!chain(&p15).iter().any(Step::via_wrapper));
    }

    #[test]
    fn runtime_main_returns_to_goexit_and_sysmon_runs_on_its_own_thread() {
        let (p, _) = Profile::for_version(GoVersion::new(1, 19, 8));
        let c = chain(&p);
        assert_eq!(
            c.iter()
                .find(|s| s.function == "runtime.main")
                .unwrap()
                .caller(),
            Some("runtime.goexit")
        );
        assert_eq!(
            c.iter()
                .find(|s| s.function == "_rt0_amd64")
                .unwrap()
                .caller(),
            None
        );
        let s = sysmon_step(&p).unwrap();
        assert_eq!((s.thread, s.caller()), ("sysmon", Some("runtime.mstart1")));
    }
}

//! `golab tour startup-trace`: the lab notes' dlv session, performed for real on the
//! student's build and printed the way dlv's terminal prints it.
//!
//! The tour drives dlv over JSON-RPC (like every probe) and renders each answer with
//! `probe::dlv_console`. It walks the reference's startup chain for the Go in use:
//! `regs` at the ELF entry, `si` through `_rt0_amd64` until DI and SI hold argc and
//! argv, then `b`/`c` to each step with `bt`, `args`, `vars`, `print`, `s`/`so` and
//! `disass` where the notes use them, and `r` at the end. Each section carries the
//! reference's meaning of the step and where the notes are right, wrong or
//! version-dependent, and the values golab knows independently are checked.

pub mod notes;
pub mod session;

use crate::probe::dlv_console as con;
use crate::probe::dlv_rpc::{
    self, AsmInstruction, Breakpoint, Client, Location, Register, State, Thread, Variable,
};
use crate::probe::elf::Elf;
use crate::reference::{Profile, startup};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One command typed at `(dlv)` and what dlv printed.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub command: String,
    pub output: String,
    /// golab's remark under it (not dlv's output).
    pub remark: Option<String>,
}

/// A value golab knows independently, checked against what dlv showed.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub expected: String,
    pub observed: String,
    pub ok: bool,
}

/// One teaching step: a function of the startup path (or the entry, or the restart).
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub function: String,
    pub title: String,
    /// m0, or sysmon's thread.
    pub thread: String,
    pub os_thread: Option<i64>,
    pub via_wrapper: bool,
    pub reached: String,
    pub meaning: String,
    pub claims: Vec<notes::Claim>,
    pub entries: Vec<Entry>,
    pub checks: Vec<Check>,
    /// The stop's file and line, and the source excerpt there.
    pub file: String,
    pub line: i64,
    pub excerpt: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tour {
    pub go_version: String,
    pub dlv_version: String,
    pub profile: String,
    pub args: Vec<String>,
    pub sections: Vec<Section>,
    pub warnings: Vec<String>,
    /// Why the tour ended early, if it did (what it showed until then is kept).
    pub error: Option<String>,
}

impl Tour {
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.sections.iter().flat_map(|s| s.checks.iter())
    }
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.checks().all(|c| c.ok)
    }
}

pub struct Input<'a> {
    pub dlv: &'a Path,
    pub dlv_version: &'a str,
    pub go_version: crate::toolchain::GoVersion,
    pub binary: &'a Path,
    /// Where the program was built: paths under it print as `./`.
    pub source_dir: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub skip_version_check: bool,
    pub deadline: Instant,
    pub page_size: u64,
    pub ncpu: u64,
}

/// The section header a reader sees before its commands.
pub fn render_header(s: &Section, n: usize, total: usize) -> String {
    let mut h = format!(
        "\n=== {n}/{total} {} ({}; thread {}{}) ===\n",
        s.title,
        s.reached,
        s.thread,
        s.os_thread
            .map(|t| format!(" = LWP {t}"))
            .unwrap_or_default()
    );
    if !s.meaning.is_empty() {
        h.push_str(&format!("reference: {}\n", s.meaning));
    }
    for c in &s.claims {
        h.push_str(&format!(
            "notes: \"{}\": {}. {}\n",
            c.says,
            c.verdict.word(),
            c.why
        ));
    }
    h
}

pub fn render_body(s: &Section) -> String {
    let mut b = String::new();
    for e in &s.entries {
        b.push_str(&format!("(dlv) {}\n{}", e.command, e.output));
        if let Some(r) = &e.remark {
            for l in r.lines() {
                b.push_str(&format!("    # golab: {l}\n"));
            }
        }
    }
    for c in &s.checks {
        b.push_str(&format!(
            "{} {}: expected {}, dlv showed {}\n",
            if c.ok { "CHECK ok  " } else { "CHECK FAIL" },
            c.what,
            c.expected,
            c.observed
        ));
    }
    b
}

/// Runs the tour; `each` sees every section as soon as it is done (the terminal waits
/// for Enter there).
pub fn run(input: &Input, each: &mut dyn FnMut(&Section, usize)) -> Result<Tour> {
    let (p, warning) = Profile::for_version(input.go_version);
    let elf = Elf::read(input.binary)?;
    let mut skip = input.skip_version_check;
    let mut warnings: Vec<String> = warning.into_iter().collect();
    let plan = dlv_rpc::SessionPlan {
        breakpoints: vec![],
        stops: vec![],
        args: input.args.clone(),
        env: input.env.clone(),
        source_dir: input.source_dir.to_path_buf(),
        skip_version_check: skip,
    };
    let m = crate::machine::Machine::Host;
    loop {
        let (group, addr, console) =
            dlv_rpc::start_headless(&m, input.dlv, input.binary, &plan, skip, input.deadline)?;
        let client = Client::connect(&addr, input.deadline).and_then(|mut c| {
            c.call::<dlv_rpc::Version>("GetVersion", json!({}), None)
                .map(|_| c)
        });
        let mut client = match client {
            Ok(c) => c,
            Err(e) => {
                let mut group = group;
                let _ = group.wait_deadline(Instant::now() + Duration::from_secs(2));
                let out = console.snapshot();
                if !skip && dlv_rpc::is_version_complaint(&out) {
                    skip = true;
                    warnings.push(format!(
                        "dlv {} refused {}: ran with --check-go-version=false",
                        input.dlv_version, input.go_version
                    ));
                    continue;
                }
                bail!("dlv did not start a session: {e:#}\n{}", out.trim());
            }
        };
        if skip && !warnings.iter().any(|w| w.contains("check-go-version")) {
            warnings.push(format!(
                "dlv {} does not list {} as supported: ran with --check-go-version=false",
                input.dlv_version, input.go_version
            ));
        }
        let mut t = Tourist {
            c: &mut client,
            input,
            p: &p,
            elf: &elf,
            sections: Vec::new(),
            cur: None,
            entry_rsp: None,
            each,
            total: 0,
        };
        let r = t.walk();
        t.finish_section();
        let sections = std::mem::take(&mut t.sections);
        let _ = client.call::<Value>("Detach", json!({"Kill": true}), None);
        drop(group);
        let console = console.finish();
        let error = r.err().map(|e| {
            format!(
                "the tour stopped: {e:#} (dlv's and the program's output: {})",
                console.trim().replace('\n', " | ")
            )
        });
        return Ok(Tour {
            error,
            go_version: input.go_version.to_string(),
            dlv_version: input.dlv_version.to_string(),
            profile: p.name(),
            args: input.args.clone(),
            sections,
            warnings,
        });
    }
}

struct Tourist<'a> {
    c: &'a mut Client,
    input: &'a Input<'a>,
    p: &'a Profile,
    elf: &'a Elf,
    sections: Vec<Section>,
    cur: Option<Section>,
    entry_rsp: Option<u64>,
    each: &'a mut dyn FnMut(&Section, usize),
    total: usize,
}

fn hex(v: &str) -> Option<u64> {
    let v = v.split_whitespace().next()?;
    u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()
}

impl Tourist<'_> {
    fn cwd(&self) -> Option<&Path> {
        Some(self.input.source_dir)
    }

    fn begin(&mut self, function: &str, title: &str) {
        self.finish_section();
        let steps = startup::walk(self.p);
        let step = steps.iter().find(|s| s.function == function);
        let reached = match step.map(|s| &s.reached) {
            Some(startup::Reached::Entry) => "the ELF entry point".to_string(),
            Some(startup::Reached::Jump { from }) => format!("JMP from {from}"),
            Some(startup::Reached::Call {
                from,
                wrapper: true,
            }) => format!("CALL from {from} through its ABI0 wrapper"),
            Some(startup::Reached::Call { from, .. }) => format!("CALL from {from}"),
            Some(startup::Reached::Gogo { fake_return }) => {
                format!("gogo's JMP; returns to {fake_return}")
            }
            Some(startup::Reached::NewThread { from }) => format!("a new thread from {from}"),
            None => "the notes' restart".to_string(),
        };
        self.cur = Some(Section {
            function: function.to_string(),
            title: title.to_string(),
            thread: step.map(|s| s.thread).unwrap_or("m0").to_string(),
            os_thread: None,
            via_wrapper: step.is_some_and(|s| s.via_wrapper()),
            reached,
            meaning: step.map(|s| s.does.to_string()).unwrap_or_default(),
            claims: notes::claims(function, self.p),
            entries: Vec::new(),
            checks: Vec::new(),
            file: String::new(),
            line: 0,
            excerpt: String::new(),
        });
    }

    fn finish_section(&mut self) {
        if let Some(s) = self.cur.take() {
            self.total += 1;
            (self.each)(&s, self.total);
            self.sections.push(s);
        }
    }

    fn sec(&mut self) -> &mut Section {
        self.cur.as_mut().expect("a section is open")
    }

    fn entry(&mut self, command: &str, output: String) {
        self.sec().entries.push(Entry {
            command: command.to_string(),
            output,
            remark: None,
        });
    }

    fn remark(&mut self, r: String) {
        if let Some(e) = self.sec().entries.last_mut() {
            e.remark = Some(match e.remark.take() {
                Some(old) => format!("{old}\n{r}"),
                None => r,
            });
        }
    }

    fn check(&mut self, what: &str, expected: String, observed: String) {
        let ok = expected == observed;
        self.sec().checks.push(Check {
            what: what.to_string(),
            expected,
            observed,
            ok,
        });
    }

    /// The stop's place: file and line, and the source excerpt, for the report.
    fn place(&mut self, t: &Thread) {
        let excerpt = con::listing(&t.file, t.line, true).unwrap_or_default();
        let s = self.sec();
        s.file = t.file.clone();
        s.line = t.line;
        s.excerpt = excerpt;
        s.os_thread = Some(t.id);
    }

    fn state(&mut self) -> Result<State> {
        self.c
            .call("State", json!({"NonBlocking": true}), Some("State"))
    }

    fn regs(&mut self, thread: i64) -> Result<Vec<Register>> {
        self.c.call(
            "ListRegisters",
            json!({"ThreadID": thread, "IncludeFp": false}),
            Some("Regs"),
        )
    }

    fn reg(regs: &[Register], name: &str) -> Option<u64> {
        regs.iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .and_then(|r| hex(&r.value))
    }

    /// `regs` on the current thread.
    fn cmd_regs(&mut self, thread: i64) -> Result<Vec<Register>> {
        let r = self.regs(thread)?;
        self.entry("regs", con::regs(&r));
        Ok(r)
    }

    fn listing_of(&self, t: &Thread) -> String {
        con::listing(&t.file, t.line, true).unwrap_or_default()
    }

    /// A stepping command (`si`, `s`, `so`): its stop and what dlv shows there.
    fn step(&mut self, typed: &str, name: &str) -> Result<Option<Thread>> {
        // dlv's terminal loads return values with its long config.
        let st: Result<State> = self.c.call(
            "Command",
            json!({"name": name, "ReturnInfoLoadConfig": {"FollowPointers": true, "MaxVariableRecurse": 1, "MaxStringLen": 64, "MaxArrayValues": 64, "MaxStructFields": -1}}),
            Some("State"),
        );
        let st = match st {
            Ok(s) => s,
            Err(e) => {
                self.entry(typed, format!("Command failed: {e:#}\n"));
                return Ok(None);
            }
        };
        let mut out = con::context(
            &st,
            self.cwd(),
            con::shows_breakpoint_ids(self.input.dlv_version),
        );
        let Some(t) = st.current_thread.clone() else {
            self.entry(typed, out);
            return Ok(None);
        };
        if name == "stepInstruction" {
            let ins = self.disassemble_pc(t.pc)?;
            out.push_str(&con::disass_window(&ins));
        } else {
            out.push_str(&self.listing_of(&t));
        }
        self.entry(typed, out);
        self.place(&t);
        Ok(Some(t))
    }

    fn disassemble_pc(&mut self, pc: u64) -> Result<Vec<AsmInstruction>> {
        self.c.call(
            "Disassemble",
            json!({"Scope": {"GoroutineID": -1, "Frame": 0, "DeferredCall": 0}, "StartPC": pc, "EndPC": 0, "Flavour": 1}),
            Some("Disassemble"),
        )
    }

    /// `b LOCATION` (a function, or `*ADDR`).
    fn cmd_break(&mut self, spec: &str) -> Result<Option<Breakpoint>> {
        let bp = match spec.strip_prefix('*') {
            Some(a) => json!({"addr": hex(a).unwrap_or(0)}),
            None => json!({"functionName": spec}),
        };
        let r: Result<Breakpoint> = self.c.call(
            "CreateBreakpoint",
            json!({"Breakpoint": bp}),
            Some("Breakpoint"),
        );
        match r {
            Ok(bp) => {
                let out = con::breakpoint_set(&bp, self.cwd());
                self.entry(&format!("b {spec}"), out);
                Ok(Some(bp))
            }
            Err(e) => {
                self.entry(&format!("b {spec}"), format!("Command failed: {e:#}\n"));
                Ok(None)
            }
        }
    }

    fn cmd_clear(&mut self, id: i64) -> Result<()> {
        let bp: Breakpoint =
            self.c
                .call("ClearBreakpoint", json!({"Id": id}), Some("Breakpoint"))?;
        let set = con::breakpoint_set(&bp, self.cwd());
        let at = set.split_once(" set at ").map(|x| x.1).unwrap_or("\n");
        self.entry(
            &format!("clear {id}"),
            format!("Breakpoint {id} cleared at {at}"),
        );
        Ok(())
    }

    /// `c` until the current thread stops in `want` (other stops are shown and
    /// continued from, as a student would).
    fn cont_to(&mut self, want: &dyn Fn(&Thread) -> bool) -> Result<Thread> {
        match self.cont_until(want)? {
            Some(t) => Ok(t),
            None => bail!("the program exited before the tour reached its next stop"),
        }
    }

    /// `c` until `want` holds for the current thread; None when the process exits.
    fn cont_until(&mut self, want: &dyn Fn(&Thread) -> bool) -> Result<Option<Thread>> {
        for _ in 0..12 {
            let st: Result<State> =
                self.c
                    .call("Command", json!({"name": "continue"}), Some("State"));
            let st = match st {
                Ok(s) => s,
                Err(e) => {
                    let m = format!("{e:#}");
                    // Some dlv versions report the exit as an error.
                    if m.contains("has exited with status") {
                        self.entry("c", format!("{}\n", m.rsplit(": ").next().unwrap_or(&m)));
                        return Ok(None);
                    }
                    self.entry("c", format!("Command failed: {m}\n"));
                    bail!("continue failed: {m}");
                }
            };
            if st.exited {
                self.entry(
                    "c",
                    format!(
                        "Process {} has exited with status {}\n",
                        st.pid, st.exit_status
                    ),
                );
                return Ok(None);
            }
            let mut out = con::context(
                &st,
                self.cwd(),
                con::shows_breakpoint_ids(self.input.dlv_version),
            );
            let Some(t) = st.current_thread.clone() else {
                self.entry("c", out);
                continue;
            };
            out.push_str(&self.listing_of(&t));
            self.entry("c", out);
            if want(&t) {
                self.place(&t);
                return Ok(Some(t));
            }
        }
        bail!("12 continues did not reach the next step")
    }

    fn cmd_bt(&mut self) -> Result<Vec<Location>> {
        let frames: Vec<Location> = self.c.call(
            "Stacktrace",
            json!({"Id": -1, "Depth": 50, "Full": false, "Cfg": null}),
            Some("Locations"),
        )?;
        self.entry("bt", con::stack(&frames, self.cwd()));
        Ok(frames)
    }

    fn cmd_args(&mut self) -> Result<Vec<Variable>> {
        let r: Result<Vec<Variable>> = self.c.call(
            "ListFunctionArgs",
            json!({"Scope": {"GoroutineID": -1, "Frame": 0}, "Cfg": {"FollowPointers": false, "MaxVariableRecurse": 0, "MaxStringLen": 64, "MaxArrayValues": 16, "MaxStructFields": -1}}),
            Some("Args"),
        );
        match r {
            Ok(v) => {
                self.entry("args", con::var_lines(&v, "(no args)"));
                Ok(v)
            }
            Err(e) => {
                self.entry("args", format!("Command failed: {e:#}\n"));
                Ok(vec![])
            }
        }
    }

    /// `vars NAME`: the package variables whose name matches, as dlv lists them.
    fn cmd_vars(&mut self, name: &str) -> Result<Option<Variable>> {
        let filter = format!("^{}$", name.replace('.', "\\."));
        let r: Result<Vec<Variable>> = self.c.call(
            "ListPackageVars",
            json!({"Filter": filter, "Cfg": {"FollowPointers": false, "MaxVariableRecurse": 0, "MaxStringLen": 64, "MaxArrayValues": 16, "MaxStructFields": -1}}),
            Some("Variables"),
        );
        match r {
            Ok(v) => {
                self.entry(&format!("vars {name}"), con::var_lines(&v, "(no vars)"));
                Ok(v.into_iter().find(|x| x.name == name))
            }
            Err(e) => {
                self.entry(&format!("vars {name}"), format!("Command failed: {e:#}\n"));
                Ok(None)
            }
        }
    }

    fn cmd_print(&mut self, expr: &str) -> Result<Option<Variable>> {
        let r: Result<Variable> = self.c.call(
            "Eval",
            json!({"Scope": {"GoroutineID": -1, "Frame": 0}, "Expr": expr, "Cfg": {"FollowPointers": false, "MaxVariableRecurse": 0, "MaxStringLen": 64, "MaxArrayValues": 16, "MaxStructFields": -1}}),
            Some("Variable"),
        );
        match r {
            Ok(v) => {
                self.entry(&format!("print {expr}"), format!("{}\n", con::value(&v)));
                Ok(Some(v))
            }
            Err(e) => {
                self.entry(&format!("print {expr}"), format!("Command failed: {e:#}\n"));
                Ok(None)
            }
        }
    }

    /// The symbol an address points at, from the binary's symbol table.
    fn symbol_at(&self, addr: u64) -> Option<String> {
        self.elf
            .describe(addr)
            .or_else(|| self.elf.data_symbol_at(addr))
    }

    fn pointer_remark(&mut self, v: &Variable) {
        let addr = v
            .children
            .first()
            .map(|c| c.addr)
            .filter(|a| *a != 0)
            .or_else(|| {
                (v.kind == 22 || v.kind == 26)
                    .then_some(0)
                    .filter(|_| false)
            });
        if let Some(a) = addr
            && let Some(sym) = self.symbol_at(a)
        {
            self.remark(format!("{a:#x} is &{sym} (the binary's symbol table)"));
        }
    }

    fn walk(&mut self) -> Result<()> {
        let argc = self.input.args.len() as u64 + 1;
        // 1. The ELF entry point: the process is stopped at its first instruction.
        self.begin("_rt0_amd64_linux", "_rt0_amd64_linux: the ELF entry point");
        let st = self.state()?;
        let t = st
            .current_thread
            .context("dlv reported no thread at the entry point")?;
        self.place(&t);
        let r = self.cmd_regs(t.id)?;
        let rip = Self::reg(&r, "rip").unwrap_or(0);
        self.entry_rsp = Self::reg(&r, "rsp");
        self.check(
            "Rip at the start is the ELF entry (readelf -h)",
            format!("{:#x}", self.elf.entry),
            format!("{rip:#x}"),
        );
        self.check(
            "the entry point's symbol",
            "_rt0_amd64_linux".into(),
            self.elf.function_at(rip).unwrap_or("?").to_string(),
        );
        // 2. si through _rt0_amd64 until DI = argc and SI = argv.
        self.begin("_rt0_amd64", "_rt0_amd64: argc and argv into DI and SI");
        let mut di_si = None;
        for _ in 0..8 {
            let Some(t) = self.step("si", "stepInstruction")? else {
                break;
            };
            let r = self.regs(t.id)?;
            let (di, si) = (Self::reg(&r, "rdi"), Self::reg(&r, "rsi"));
            if let (Some(di), Some(si)) = (di, si)
                && di == argc
                && Some(si) == self.entry_rsp.map(|s| s + 8)
            {
                self.entry("regs", con::regs(&r));
                di_si = Some((di, si));
                break;
            }
        }
        let argv = self.entry_rsp.map(|s| s + 8).unwrap_or(0);
        self.check(
            "DI holds argc",
            argc.to_string(),
            di_si.map(|d| d.0.to_string()).unwrap_or("-".into()),
        );
        self.check(
            "SI holds argv (the entry's Rsp + 8)",
            format!("{argv:#x}"),
            di_si.map(|d| format!("{:#x}", d.1)).unwrap_or("-".into()),
        );
        // 3. rt0_go, then each Go function it calls.
        self.begin("runtime.rt0_go", "runtime.rt0_go");
        let rt0 = self.cmd_break("runtime.rt0_go")?;
        self.cont_to(&|t| fname(t) == "runtime.rt0_go")?;
        self.cmd_bt()?;
        let chain: Vec<String> = startup::chain(self.p)
            .into_iter()
            .map(|s| s.function)
            .collect();
        let mut disassembled = false;
        for f in chain.iter().skip_while(|f| *f != "runtime.rt0_go").skip(1) {
            let f = f.as_str();
            if f == "runtime.newproc1" || (f == "runtime.runqput" && self.done_runqput()) {
                continue;
            }
            if f == "main.main" {
                self.sysmon()?;
            }
            self.begin(f, f);
            self.break_and_reach(f, &mut disassembled)?;
            self.at_step(f, argc, argv)?;
        }
        // The notes' `r`: restart and run to the first breakpoint again.
        self.begin(
            "restart",
            "r: restart (the notes' way out of a run that ran away)",
        );
        self.restart()?;
        if rt0.is_some() {
            self.cont_to(&|t| fname(t) == "runtime.rt0_go")?;
        }
        self.finish_section();
        Ok(())
    }

    /// sysmon, on the thread runtime.main started with newm.
    fn sysmon(&mut self) -> Result<()> {
        self.begin("runtime.sysmon", "runtime.sysmon (on its own thread)");
        if let Some(bp) = self.cmd_break("runtime.sysmon")? {
            // Every stop holds all threads: sysmon's new thread may not have reached
            // sysmon before main returns. Then the notes' way out: r, and c again.
            let mut reached = None;
            for _ in 0..3 {
                if let Some(t) = self.cont_until(&|t| fname(t) == "runtime.sysmon")? {
                    reached = Some(t);
                    break;
                }
                self.remark("sysmon's thread had not reached sysmon when main returned (each stop holds every thread): restart and continue".into());
                self.restart()?;
                self.cont_to(&|t| fname(t) == "runtime.rt0_go")?;
            }
            let Some(t) = reached else {
                bail!("three runs ended before sysmon's thread reached runtime.sysmon");
            };
            self.cmd_bt()?;
            let m0 = self
                .sections
                .iter()
                .find(|s| s.function == "runtime.rt0_go")
                .and_then(|s| s.os_thread);
            self.check(
                "sysmon runs on a thread other than m0's",
                "a thread other than m0's".into(),
                if Some(t.id) != m0 {
                    "a thread other than m0's".into()
                } else {
                    format!("thread {} (m0's)", t.id)
                },
            );
            self.cmd_clear(bp.id)?;
        }
        Ok(())
    }

    fn done_runqput(&self) -> bool {
        self.sections
            .iter()
            .chain(self.cur.iter())
            .any(|s| s.function == "runtime.runqput")
    }

    /// m0's OS thread: where rt0_go stopped.
    fn m0(&self) -> Option<i64> {
        self.sections
            .iter()
            .chain(self.cur.iter())
            .find(|s| s.function == "runtime.rt0_go")
            .and_then(|s| s.os_thread)
    }

    fn restart(&mut self) -> Result<()> {
        let r: Result<Value> = self.c.call(
            "Restart",
            json!({"Position": "", "ResetArgs": false, "NewArgs": [], "Rerecord": false, "Rebuild": false, "NewRedirects": ["", "", ""]}),
            None,
        );
        match r {
            Ok(_) => {
                let st = self.state()?;
                self.entry("r", format!("Process restarted with PID {}\n", st.pid));
            }
            Err(e) => self.entry("r", format!("Command failed: {e:#}\n")),
        }
        Ok(())
    }

    /// `b f` and `c` to the function itself. Where the stop is its ABI0 wrapper, `disass`
    /// shows the real callee (the notes' PR 1915 tip); where dlv put the breakpoint on
    /// the wrapper only (dlv < 1.20), `b *ADDR` on that callee, as the notes advise.
    fn break_and_reach(&mut self, f: &str, disassembled: &mut bool) -> Result<Thread> {
        let Some(bp) = self.cmd_break(f)? else {
            bail!("dlv could not set a breakpoint on {f}");
        };
        let mut ids = vec![bp.id];
        if bp.file == "<autogenerated>" {
            // This dlv resolved the name to the ABI wrapper only: the notes' tip, at once.
            let entry = bp.addrs.first().copied().unwrap_or(bp.addr);
            let ins = self.disassemble_pc(entry)?;
            let target = ins
                .iter()
                .filter(|i| i.loc.function.as_ref().is_some_and(|x| x.value == entry))
                .find_map(|i| {
                    let d = i.dest.as_ref()?;
                    let name = &d.function.as_ref()?.name;
                    (name.trim_end_matches(".abi0") == f && d.pc != entry)
                        .then_some((i.clone(), d.pc))
                });
            let end = ins
                .iter()
                .filter(|i| i.loc.function.as_ref().is_some_and(|x| x.value == entry))
                .map(|i| i.loc.pc + i.bytes.len().max(1) as u64)
                .max()
                .unwrap_or(entry + 1);
            self.entry(
                &format!("disass -a {entry:#x} {end:#x}"),
                con::disass(&ins, true),
            );
            *disassembled = true;
            match target {
                Some((i, a)) => {
                    self.remark(format!(
                        "dlv {} put breakpoint {} on the wrapper only ({f}'s <autogenerated> ABI wrapper); its {} at {:#x} goes to the real {f} at {a:#x}{}: break there",
                        self.input.dlv_version,
                        bp.id,
                        i.text.split_whitespace().next().unwrap_or("call"),
                        i.loc.pc,
                        self.elf.describe(a).map(|s| format!(" ({s})")).unwrap_or_default()
                    ));
                    if let Some(b2) = self.cmd_break(&format!("*{a:#x}"))? {
                        ids.push(b2.id);
                    }
                }
                None => self.remark(format!("the wrapper at {entry:#x} names no call to {f}")),
            }
        }
        let want = f.to_string();
        // m0's steps stop on m0's thread; main.main on the main goroutine.
        let m0 = self
            .m0()
            .filter(|_| f != "main.main" && f != "runtime.rt0_go");
        let main_g = f == "main.main";
        let here =
            move |t: &Thread| m0.is_none_or(|id| t.id == id) && (!main_g || t.goroutine_id == 1);
        let t = self.cont_to(&|t| fname(t) == want && here(t))?;
        let t = if t.file == "<autogenerated>" && ids.len() > 1 {
            self.cmd_bt()?;
            self.cont_to(&|t| fname(t) == want && t.file != "<autogenerated>" && here(t))?
        } else if t.file == "<autogenerated>" {
            self.cmd_bt()?;
            let entry = t.function.as_ref().map(|x| x.value).unwrap_or(t.pc);
            let ins = self.disassemble_pc(entry)?;
            let call = ins.iter().find(|i| {
                i.dest
                    .as_ref()
                    .and_then(|d| d.function.as_ref())
                    .is_some_and(|d| d.name == f && d.value != entry)
            });
            let target = call.and_then(|i| i.dest.as_ref()).map(|d| d.pc);
            if !*disassembled
                || target.is_some_and(|a| !bp.addrs.contains(&a) && bp.addrs.len() < 2)
            {
                *disassembled = true;
                self.entry("disass", con::disass(&ins, true));
                if let (Some(i), Some(a)) = (call, target) {
                    self.remark(format!(
                        "{f} here is <autogenerated>: the ABI0 wrapper that assembly calls; its {} at {:#x} goes to the real {f} at {a:#x}{}",
                        i.text.split_whitespace().next().unwrap_or("call"),
                        i.loc.pc,
                        self.elf.describe(a).map(|s| format!(" ({s})")).unwrap_or_default()
                    ));
                }
            }
            let real_placed = bp.addrs.iter().any(|a| {
                Some(*a) != Some(entry)
                    && self.elf.describe(*a).is_some_and(|s| !s.contains(".abi0"))
            });
            if !real_placed {
                let Some(a) = target else {
                    bail!("the wrapper of {f} calls nothing named {f}");
                };
                self.remark(format!(
                    "dlv {} put breakpoint {} on the wrapper only: break on the real function",
                    self.input.dlv_version, bp.id
                ));
                if let Some(b2) = self.cmd_break(&format!("*{a:#x}"))? {
                    ids.push(b2.id);
                }
            }
            let t =
                self.cont_to(&|t| fname(t) == want && t.file != "<autogenerated>" && here(t))?;
            self.check(
                &format!("{f}: the wrapper's call target is where the real function stops"),
                target.map(|a| format!("{a:#x}")).unwrap_or("-".into()),
                format!("{:#x}", t.function.as_ref().map(|x| x.value).unwrap_or(0)),
            );
            t
        } else {
            t
        };
        self.cmd_bt()?;
        if f != "runtime.rt0_go" {
            for id in ids {
                self.cmd_clear(id)?;
            }
        }
        Ok(t)
    }

    /// What the notes look at in each function.
    fn at_step(&mut self, f: &str, argc: u64, argv: u64) -> Result<()> {
        match f {
            "runtime.check" => {
                if let Some(v) = self.cmd_print("&runtime.m0")? {
                    self.pointer_remark(&v);
                }
                let g0m = self.cmd_print("runtime.g0.m == &runtime.m0")?;
                self.check(
                    "rt0_go set g0.m = &m0",
                    "true".into(),
                    g0m.map(|v| v.value).unwrap_or("-".into()),
                );
                let m0g0 = self.cmd_print("runtime.m0.g0 == &runtime.g0")?;
                self.check(
                    "rt0_go set m0.g0 = &g0 (the notes' m->g0 = g0)",
                    "true".into(),
                    m0g0.map(|v| v.value).unwrap_or("-".into()),
                );
            }
            "runtime.args" => {
                let a = self.cmd_args()?;
                let c = a.iter().find(|v| v.name == "c").map(|v| v.value.clone());
                self.check("args(c): argc", argc.to_string(), c.unwrap_or("-".into()));
                let v = a
                    .iter()
                    .find(|v| v.name == "v")
                    .and_then(|v| v.children.first())
                    .map(|c| format!("{:#x}", c.addr));
                self.check(
                    "args(v): argv",
                    format!("{argv:#x}"),
                    v.unwrap_or("-".into()),
                );
                self.cmd_vars("runtime.argc")?;
                self.remark("not set yet: args is about to".into());
                self.step("so", "stepOut")?;
                let got = self.cmd_vars("runtime.argc")?;
                self.check(
                    "runtime.argc after args",
                    argc.to_string(),
                    got.map(|v| v.value).unwrap_or("-".into()),
                );
                self.cmd_vars("runtime.argv")?;
                let ps = self.cmd_vars("runtime.physPageSize")?;
                self.remark(
                    "already set, before osinit: args -> sysargs -> sysauxv read AT_PAGESZ".into(),
                );
                self.check(
                    "runtime.physPageSize set by args (before osinit)",
                    self.input.page_size.to_string(),
                    ps.map(|v| v.value).unwrap_or("-".into()),
                );
            }
            "runtime.osinit" => {
                let ncpu = self.p.ncpu_var;
                self.cmd_vars(ncpu)?;
                self.remark("0 until osinit sets it".into());
                self.step("so", "stepOut")?;
                let n = self.cmd_vars(ncpu)?;
                self.check(
                    &format!("{ncpu} after osinit (the CPUs this process may use)"),
                    self.input.ncpu.to_string(),
                    n.map(|v| v.value).unwrap_or("-".into()),
                );
            }
            "runtime.schedinit" => {
                self.step("so", "stepOut")?;
                let mm = self.cmd_print("runtime.sched.maxmcount")?;
                self.check(
                    "sched.maxmcount after schedinit",
                    "10000".into(),
                    mm.map(|v| v.value).unwrap_or("-".into()),
                );
                self.cmd_print("len(runtime.allp)")?;
                self.remark("procresize made one P per GOMAXPROCS".into());
            }
            "runtime.newproc" => {
                let a = self.cmd_args()?;
                let fnv = a.iter().find(|v| v.name == "fn");
                let mut addr = fnv.and_then(|v| v.children.first()).map(|c| c.addr);
                if let Some(v) = fnv.cloned() {
                    self.pointer_remark(&v);
                }
                if fnv.is_some_and(|v| !v.unreadable.is_empty()) {
                    // This dlv cannot read the argument here; rt0_go loaded it into AX.
                    let tid = self.sec().os_thread.unwrap_or(-1);
                    let r = self.cmd_regs(tid)?;
                    addr = Self::reg(&r, "rax");
                    self.remark(format!(
                        "dlv {} cannot read fn here; rt0_go loaded it into Rax (MOVQ $runtime·mainPC(SB), AX) and pushed it: Rax = {}",
                        self.input.dlv_version,
                        addr.map(|a| format!("{a:#x}{}", self.symbol_at(a).map(|s| format!(" = &{s}")).unwrap_or_default())).unwrap_or("-".into())
                    ));
                }
                let main_pc = self.elf.symbol("runtime.mainPC");
                self.check(
                    "newproc's fn is &runtime.mainPC",
                    main_pc.map(|a| format!("{a:#x}")).unwrap_or("-".into()),
                    addr.map(|a| format!("{a:#x}")).unwrap_or("-".into()),
                );
                // s into newproc1 (from the closure newproc runs on the system stack), so back.
                self.begin(
                    "runtime.newproc1",
                    "runtime.newproc1 (s into it, so back out)",
                );
                let closure = "runtime.newproc.func1";
                let bp = self.cmd_break(closure)?;
                self.cont_to(&|t| fname(t) == closure)?;
                let mut inside = false;
                for _ in 0..4 {
                    match self.step("s", "step")? {
                        Some(t) if fname(&t) == "runtime.newproc1" => {
                            inside = true;
                            break;
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                self.check(
                    "s from newproc's closure enters newproc1",
                    "runtime.newproc1".into(),
                    if inside {
                        "runtime.newproc1".into()
                    } else {
                        "-".into()
                    },
                );
                self.cmd_bt()?;
                self.step("so", "stepOut")?;
                if let Some(b) = bp {
                    self.cmd_clear(b.id)?;
                }
                self.begin("runtime.runqput", "runtime.runqput");
                self.break_and_reach("runtime.runqput", &mut true)?;
                let a = self.cmd_args()?;
                let next = a.iter().find(|v| v.name == "next").map(|v| v.value.clone());
                self.check(
                    "runqput(next=true): the new g goes to runnext",
                    "true".into(),
                    next.unwrap_or("-".into()),
                );
            }
            "runtime.runqget" => {
                self.step("so", "stepOut")?;
                self.remark("inheritTime = true: a g from runnext inherits the time slice".into());
            }
            "runtime.execute" => {
                let a = self.cmd_args()?;
                let it = a
                    .iter()
                    .find(|v| v.name == "inheritTime")
                    .map(|v| v.value.clone());
                self.check(
                    "execute(gp, inheritTime): main's g came from runnext",
                    "true".into(),
                    it.unwrap_or("-".into()),
                );
            }
            "main.main" => {
                self.cmd_vars(self.p.ncpu_var)?;
            }
            _ => {}
        }
        Ok(())
    }
}

fn fname(t: &Thread) -> &str {
    t.function.as_ref().map(|f| f.name.as_str()).unwrap_or("")
}

/// The tour's text, all at once (for `--all`, a pipe, and the tests).
pub fn render(t: &Tour) -> String {
    let mut s = header(t);
    let n = t.sections.len();
    for (i, sec) in t.sections.iter().enumerate() {
        s.push_str(&render_header(sec, i + 1, n));
        s.push_str(&render_body(sec));
    }
    s.push_str(&summary(t));
    s
}

pub fn header(t: &Tour) -> String {
    let mut s = format!(
        "golab tour startup-trace: go{} | dlv {} | reference profile {}\n$ dlv exec ./main -- {}\nType 'help' for list of commands.\n",
        t.go_version.trim_start_matches("go"),
        t.dlv_version,
        t.profile,
        t.args.join(" ")
    );
    for w in &t.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}

pub fn summary(t: &Tour) -> String {
    let all: Vec<&Check> = t.checks().collect();
    let ok = all.iter().filter(|c| c.ok).count();
    let mut s = format!(
        "\n{ok} of {} values as golab knows them independently{}\n",
        all.len(),
        if ok == all.len() {
            ""
        } else {
            " (CHECK FAIL lines above)"
        }
    );
    if let Some(e) = &t.error {
        s.push_str(&format!("error: {e}\n"));
    }
    s
}

/// The default program: the startup-trace lab's own folder.
pub fn lab_dir() -> Result<PathBuf> {
    Ok(crate::lab::load("startup-trace")?.dir)
}

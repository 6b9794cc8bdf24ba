//! dlv through its JSON-RPC API (service/rpc2), headless on 127.0.0.1.
//!
//! `Client` speaks the protocol (one JSON object per line, `RPCServer.<Method>`);
//! `run` drives one lab session: breakpoints from the lab, `continue` until the process
//! exits, every hit on every thread recorded with its stack, values read at the stops
//! the lab's checks name, and ABI wrappers disassembled. Alongside, it writes the
//! exchange itself and a dlv-style log of what a student would have typed.

use crate::exec::Group;
use crate::machine::{Cmd, Machine};
use crate::probe::dlv_console as console;
use crate::trace::{Frame, Hit, Instruction, Placed, RealBreakpoint, Session, Tool, WrapperCode};
use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::dlv_api::*;

/// A reply: `{"id":N,"result":{...},"error":null}`.
pub fn parse_reply(line: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(line)
        .with_context(|| format!("dlv sent a line that is not JSON: {line}"))?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        bail!("{e}");
    }
    Ok(v.get("result").cloned().unwrap_or(Value::Null))
}

/// A connection to a headless dlv.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    id: u64,
    deadline: Instant,
    /// The JSON-RPC exchange, one line each way (`-> ` sent, `<- ` received).
    pub exchange: String,
}

impl Client {
    pub fn connect(addr: &str, deadline: Instant) -> Result<Client> {
        let stream = crate::machine::connect_tcp(addr)
            .with_context(|| format!("cannot connect to dlv at {addr}"))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
            id: 0,
            deadline,
            exchange: String::new(),
        })
    }

    /// Calls `RPCServer.<method>` and decodes `result.<field>` (or the whole result).
    pub fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: Value,
        field: Option<&str>,
    ) -> Result<T> {
        self.id += 1;
        let req =
            json!({"method": format!("RPCServer.{method}"), "params": [params], "id": self.id})
                .to_string();
        self.exchange.push_str("-> ");
        self.exchange.push_str(&req);
        self.exchange.push('\n');
        // One write per request: two small writes meet Nagle's algorithm and the peer's
        // delayed ACK, costing ~40 ms a call.
        self.writer.write_all(format!("{req}\n").as_bytes())?;
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(
                crate::exec::TimedOut("the dlv session ran past its deadline".into()).into(),
            );
        }
        let mut line = String::new();
        // In the sandbox, a dlv that the program stopped is noticed within a poll.
        let poll = if crate::machine::jailed() {
            Duration::from_millis(250)
        } else {
            Duration::MAX
        };
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(crate::exec::TimedOut(format!(
                    "dlv did not answer {method} before the session's deadline"
                ))
                .into());
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(left.min(poll)))?;
            match self.reader.read_line(&mut line) {
                Ok(0) => bail!("dlv closed the connection during {method}"),
                Ok(_) if line.ends_with('\n') => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if let Some(why) = crate::machine::interference() {
                        return Err(why.into());
                    }
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("reading dlv's answer to {method}"));
                }
            }
        }
        self.exchange.push_str("<- ");
        self.exchange.push_str(line.trim_end());
        self.exchange.push('\n');
        let result = parse_reply(&line).with_context(|| format!("RPCServer.{method}"))?;
        let v = match field {
            Some(f) => result.get(f).cloned().unwrap_or(Value::Null),
            None => result,
        };
        serde_json::from_value(v).with_context(|| format!("decoding dlv's answer to {method}"))
    }
}

// ---- One lab session.

/// What to read at a stop: a Go expression through `Eval`, or a register.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Read {
    Eval(String),
    Reg(String),
    /// A struct read in one request, its fields `depth` levels deep (pointers not
    /// followed, arrays up to 256 elements): recorded as `eval EXPR.FIELD[.FIELD]`, and
    /// its address as `eval &EXPR`.
    Fields(String, u8),
}

impl Read {
    pub fn key(&self) -> String {
        match self {
            Read::Eval(e) => format!("eval {e}"),
            Read::Reg(r) => format!("reg {}", r.to_lowercase()),
            Read::Fields(e, _) => format!("eval &{e}"),
        }
    }
}

/// `{reg:NAME}` in an expression replaced by that register's value.
pub fn substitute_registers(template: &str, regs: &[Register]) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{reg:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 5..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = &after[..j];
        let value = regs
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .map(|r| r.value.clone())
            .unwrap_or_else(|| "0".into());
        out.push_str(&value);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

/// A struct's fields as `PREFIX.NAME` -> scalar, nested structs `depth` levels deep.
fn flatten(v: &Variable, prefix: &str, depth: u8, out: &mut Vec<(String, String)>) {
    const STRUCT: u32 = 25; // reflect.Struct
    for c in &v.children {
        let key = format!("{prefix}.{}", c.name);
        if c.kind == STRUCT && depth > 1 {
            flatten(c, &key, depth - 1, out);
        } else {
            out.push((key, c.scalar()));
        }
    }
}

/// A stop the checks want values from: the first hit of `function` in the function
/// itself (not its wrapper) whose folded caller is `caller`, if given.
#[derive(Debug, Clone)]
pub struct Stop {
    pub function: String,
    pub caller: Option<String>,
    /// Which hits count (after a function's first hit, inside a caller, on a program
    /// goroutine).
    pub scope: crate::trace::Scope,
    /// Read at every matching stop, not only the first.
    pub every: bool,
    pub reads: BTreeSet<Read>,
}

pub struct BreakpointPlan {
    pub function: String,
    /// Hits recorded before the breakpoint is cleared; 0: never cleared.
    pub max_hits: u32,
    /// How many frames of stack each hit records (the co-simulation's transition points
    /// need none: every frame costs dlv an unwind at every stop).
    pub stack_depth: u32,
}

impl BreakpointPlan {
    pub fn new(function: impl Into<String>, max_hits: u32) -> BreakpointPlan {
        BreakpointPlan {
            function: function.into(),
            max_hits,
            stack_depth: 64,
        }
    }
}

pub struct SessionPlan {
    pub breakpoints: Vec<BreakpointPlan>,
    pub stops: Vec<Stop>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the program was built: `FILE:LINE` breakpoints name files in it.
    pub source_dir: std::path::PathBuf,
    /// Start with `--check-go-version=false` (dlv's range does not cover this Go).
    pub skip_version_check: bool,
}

pub struct DlvRun {
    pub session: Session,
    pub wrappers: Vec<WrapperCode>,
    pub exchange: String,
    /// What a student would have typed and seen in `dlv exec`.
    pub readable: String,
    /// dlv's own output (and the program's), for the transcript.
    pub console: String,
    /// Why the session ended early, if it did; what it recorded until then is kept.
    pub error: Option<String>,
    /// The session ended because its deadline passed (`error` says which call).
    pub timed_out: bool,
    /// The session ended because the program under dlv stopped or killed it (in the
    /// grader's sandbox): nothing dlv said after that is evidence.
    pub interfered: bool,
}

/// Starts `dlv exec --headless` and returns the group and the API address.
/// dlv's output (and the program's, which shares its stdout), gathered by two threads.
pub struct Console {
    text: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Console {
    /// Everything printed so far.
    pub fn snapshot(&self) -> String {
        self.text.lock().unwrap().clone()
    }
    /// Everything printed, once the pipes are closed (dlv and the program are gone).
    pub fn finish(self) -> String {
        for r in self.readers {
            let _ = r.join();
        }
        self.text.lock().unwrap().clone()
    }
}

pub fn start_headless(
    m: &Machine,
    dlv: &Path,
    binary: &Path,
    plan: &SessionPlan,
    skip_check: bool,
    deadline: Instant,
) -> Result<(Group, String, Console)> {
    let mut cmd = Cmd::new(dlv);
    cmd.args(["exec", "--headless", "--api-version=2"]);
    // In the grader's sandbox dlv takes one client, golab, which connects before the
    // program has run an instruction: the program cannot talk to dlv's API itself.
    if !crate::machine::jailed() {
        cmd.arg("--accept-multiclient");
    }
    cmd.untrusted().arg(format!("--listen={}", m.dlv_listen()));
    if skip_check {
        cmd.arg("--check-go-version=false");
    }
    cmd.arg(binary).arg("--").args(&plan.args);
    cmd.envs(plan.env.iter().map(|(k, v)| (k, v)));
    cmd.deadline(deadline.saturating_duration_since(Instant::now()));
    let mut c = m.command(&cmd);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = Group::spawn(c, "dlv")?;
    let console = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = g.child_mut().stdout.take().context("dlv stdout")?;
    let stderr = g.child_mut().stderr.take().context("dlv stderr")?;
    let mut readers = Vec::new();
    // What is kept of the two is capped (a program can print gigabytes to the stdout it
    // shares with dlv): the rest is read and dropped, and its size noted.
    let kept = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // All of it, read: in the grader's sandbox past its output limit the run's outcome
    // is output-limit (`machine::note_output`).
    let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for (i, pipe) in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr) as Box<dyn std::io::Read + Send>,
    ]
    .into_iter()
    .enumerate()
    {
        let console = console.clone();
        let kept = kept.clone();
        let total = total.clone();
        let mut tx = (i == 0).then(|| tx.clone());
        readers.push(std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut line = Vec::new();
            let mut cut = 0u64;
            loop {
                line.clear();
                let n = read_line_capped(&mut r, &mut line, CONSOLE_LINE_MAX);
                if n == 0 {
                    break;
                }
                use std::sync::atomic::Ordering::SeqCst;
                crate::machine::note_output(total.fetch_add(n as u64, SeqCst) + n as u64);
                let l = String::from_utf8_lossy(&line).into_owned();
                if let Some(t) = tx.take() {
                    let _ = t.send(l.trim_end_matches('\n').to_string());
                }
                if kept.load(SeqCst) + l.len() > CONSOLE_MAX {
                    cut += n as u64;
                    continue;
                }
                kept.fetch_add(l.len(), SeqCst);
                let mut c = console.lock().unwrap();
                c.push_str(&l);
                if !l.ends_with('\n') {
                    c.push('\n');
                }
            }
            if cut > 0 {
                console
                    .lock()
                    .unwrap()
                    .push_str(&format!("[golab: {cut} more bytes of output dropped]\n"));
            }
        }));
    }
    drop(tx);
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_secs(60));
    let first = rx.recv_timeout(wait).map_err(|_| {
        let _ = g.wait_deadline(Instant::now() + Duration::from_millis(300));
        anyhow::anyhow!(
            "dlv printed no API address: {}",
            console.lock().unwrap().trim()
        )
    })?;
    let addr = first
        .split("listening at:")
        .nth(1)
        .map(|a| m.dlv_connect(a.trim()))
        .with_context(|| format!("dlv's first line has no address: {first}"))?;
    Ok((
        g,
        addr,
        Console {
            text: console,
            readers,
        },
    ))
}

/// The most of dlv's (and the program's) output kept, and of one line.
const CONSOLE_MAX: usize = 1 << 20;
const CONSOLE_LINE_MAX: usize = 64 << 10;

/// One line (with its newline) into `out`, at most `max` bytes of it kept; returns the
/// bytes read (0 at the end).
fn read_line_capped(r: &mut impl BufRead, out: &mut Vec<u8>, max: usize) -> usize {
    let mut n = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) if !b.is_empty() => b,
            _ => return n,
        };
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&buf[..take.min(room)]);
        r.consume(take);
        n += take;
        if done {
            return n;
        }
    }
}

pub fn is_version_complaint(s: &str) -> bool {
    let s = s.to_lowercase();
    s.contains("check-go-version")
        || (s.contains("version of go") && (s.contains("too old") || s.contains("too new")))
}

/// Runs one dlv session as the plan says.
pub fn run(
    m: &Machine,
    dlv: &Path,
    dlv_version: &str,
    binary: &Path,
    plan: &SessionPlan,
    deadline: Instant,
) -> Result<DlvRun> {
    let mut skip = plan.skip_version_check;
    let mut warnings = Vec::new();
    if skip {
        warnings.push(format!("dlv {dlv_version} does not list this Go version as supported: ran with --check-go-version=false"));
    }
    loop {
        let (mut group, addr, console) = start_headless(m, dlv, binary, plan, skip, deadline)?;
        // dlv prints its address before its Go version check, and may exit right after.
        let client = Client::connect(&addr, deadline)
            .and_then(|mut c| c.call::<Version>("GetVersion", json!({}), None).map(|_| c));
        let mut client = match client {
            Ok(c) => c,
            Err(e) => {
                let _ = group.wait_deadline(Instant::now() + Duration::from_secs(2));
                let out = console.snapshot();
                if !skip && is_version_complaint(&out) {
                    skip = true;
                    warnings.push(format!("dlv {dlv_version} refused this Go version: ran again with --check-go-version=false"));
                    continue;
                }
                let hint = if out.to_lowercase().contains("operation not permitted") {
                    "\nptrace is not permitted here. Fix: `sysctl -w kernel.yama.ptrace_scope=0`, or in a container --cap-add=SYS_PTRACE --security-opt seccomp=unconfined (golab doctor checks this)"
                } else {
                    ""
                };
                bail!("dlv did not start a session: {e:#}\n{}{hint}", out.trim());
            }
        };
        let mut d = Driver {
            c: &mut client,
            plan,
            log: String::new(),
            session: Session {
                version: dlv_version.to_string(),
                warnings: warnings.clone(),
                ..Default::default()
            },
            wrappers: Vec::new(),
            done_stops: vec![false; plan.stops.len()],
        };
        let failed = d.drive().err();
        let mut timed_out = failed.as_ref().is_some_and(crate::exec::timed_out);
        let mut interfered = failed
            .as_ref()
            .is_some_and(|e| crate::machine::interfered(e).is_some());
        let mut error = failed.map(|e| match crate::machine::interfered(&e) {
            Some(i) => i.0.clone(),
            None => format!("{e:#}"),
        });
        // In the sandbox dlv never ends a session by itself: if it is gone, the program
        // under it ended it (a signal), and nothing it said after that is evidence.
        if let Some(e) = &error
            && crate::machine::jailed()
            && !interfered
        {
            let end = Instant::now() + Duration::from_secs(1);
            let mut status = None;
            while status.is_none() && Instant::now() < end {
                status = group.child_mut().try_wait().ok().flatten();
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(st) = status {
                timed_out = false;
                interfered = true;
                error = Some(format!(
                    "dlv ended during the session ({st}) while your program ran under it: {e}"
                ));
            }
        }
        let (session, wrappers, readable) = (d.session, d.wrappers, d.log);
        // Whatever happened, the process group goes.
        let _ = client.call::<Value>("Detach", json!({"Kill": true}), None);
        drop(group);
        let console = console.finish();
        return Ok(DlvRun {
            session,
            wrappers,
            exchange: std::mem::take(&mut client.exchange),
            readable,
            console,
            error,
            timed_out,
            interfered,
        });
    }
}

struct Driver<'a> {
    c: &'a mut Client,
    plan: &'a SessionPlan,
    log: String,
    session: Session,
    wrappers: Vec<WrapperCode>,
    done_stops: Vec<bool>,
}

impl Driver<'_> {
    fn drive(&mut self) -> Result<()> {
        let plan = self.plan;
        self.log.push_str(&format!(
            "$ dlv exec ./main -- {}\nType 'help' for list of commands.\n",
            plan.args.join(" ")
        ));
        // The process is stopped at its first instruction: the ELF entry point.
        let st: State = self
            .c
            .call("State", json!({"NonBlocking": true}), Some("State"))?;
        let t = st
            .current_thread
            .context("dlv reported no thread at the entry point")?;
        let mut entry = Hit {
            seq: 0,
            tool: Tool::Dlv,
            breakpoint: "<entry>".into(),
            thread: t.id,
            goroutine: t.goroutine_id,
            stack: vec![thread_frame(&t)],
            values: Default::default(),
            stop: 0,
        };
        self.log.push_str("(dlv) regs\n");
        let all = self.registers(t.id)?;
        self.log.push_str(&console::regs(&all));
        for r in all {
            if ["rip", "rsp"].contains(&r.name.to_lowercase().as_str()) {
                entry
                    .values
                    .insert(Read::Reg(r.name.clone()).key(), r.value);
            }
        }
        self.session.hits.push(entry);

        // Each lab breakpoint is a group of dlv breakpoints (one, or two when the tip had
        // to add the real function's); hits and the hit limit count per group.
        let mut groups: Vec<BreakpointGroup> = Vec::new();
        let mut ids: HashMap<i64, usize> = HashMap::new();
        // The addresses the tip found: the real function, whatever dlv names the stop.
        let mut real_code: HashMap<u64, (String, String, i64)> = HashMap::new();
        for b in &plan.breakpoints {
            self.log.push_str(&format!("(dlv) b {}\n", b.function));
            let spec = match b.function.rsplit_once(':') {
                Some((file, line)) if crate::trace::is_line_location(&b.function) => {
                    json!({"file": plan.source_dir.join(file), "line": line.parse::<i64>().unwrap_or(0), "Stacktrace": b.stack_depth})
                }
                _ => json!({"functionName": b.function, "Stacktrace": b.stack_depth}),
            };
            match self.create_breakpoint(spec) {
                Ok(bp) => {
                    let mut addrs = bp_addrs(&bp);
                    self.log_set(&bp);
                    let mut bp_ids = vec![bp.id];
                    if bp.file == AUTOGENERATED
                        && let Some(real) = self.follow_wrapper(&b.function, &bp)?
                    {
                        for a in bp_addrs(&real) {
                            addrs.push(a);
                            real_code.insert(a, (b.function.clone(), real.file.clone(), real.line));
                        }
                        bp_ids.push(real.id);
                    }
                    self.session.breakpoints.push(Placed {
                        function: b.function.clone(),
                        addrs,
                        error: None,
                        symbols: vec![],
                    });
                    for id in &bp_ids {
                        ids.insert(*id, groups.len());
                    }
                    groups.push(BreakpointGroup {
                        function: b.function.clone(),
                        max_hits: b.max_hits,
                        hits: 0,
                        ids: bp_ids,
                    });
                }
                Err(e) => {
                    self.log.push_str(&format!("Command failed: {e:#}\n"));
                    self.session.breakpoints.push(Placed {
                        function: b.function.clone(),
                        addrs: vec![],
                        error: Some(format!("{e:#}")),
                        symbols: vec![],
                    });
                }
            }
        }

        for stop in 1..=20_000 {
            self.log.push_str("(dlv) c\n");
            let st: State = match self
                .c
                .call("Command", json!({"name": "continue"}), Some("State"))
            {
                Ok(s) => s,
                Err(e) => {
                    // Some dlv versions report the exit as an error: "Process N has exited with status S".
                    let m = format!("{e:#}");
                    if let Some(status) = m.split("exited with status").nth(1) {
                        let code = status
                            .trim()
                            .trim_end_matches(|c: char| !c.is_ascii_digit())
                            .parse()
                            .ok();
                        self.session.exit_status = code;
                        self.log.push_str(&format!(
                            "Process has exited with status {}\n",
                            code.unwrap_or(-1)
                        ));
                        break;
                    }
                    return Err(e);
                }
            };
            if st.exited {
                self.session.exit_status = Some(st.exit_status);
                self.log.push_str(&format!(
                    "Process {} has exited with status {}\n",
                    st.pid, st.exit_status
                ));
                break;
            }
            let ids_shown = console::shows_breakpoint_ids(&self.session.version);
            self.log
                .push_str(&console::context(&st, Some(&plan.source_dir), ids_shown));
            if let Some(t) = &st.current_thread
                && let Ok(l) = console::listing(&t.file, t.line, true)
            {
                self.log.push_str(&l);
            }
            let threads: Vec<Thread> = st
                .threads
                .unwrap_or_default()
                .into_iter()
                .filter(|t| t.breakpoint.is_some())
                .collect();
            if threads.is_empty() {
                self.session
                    .warnings
                    .push("dlv stopped with no thread at a breakpoint; continued".into());
            }
            let mut current = st.current_thread.as_ref().map(|t| t.id);
            for t in threads {
                let bp = t.breakpoint.clone().unwrap_or_default();
                let Some(&gi) = ids.get(&bp.id) else {
                    continue;
                };
                groups[gi].hits += 1;
                let (bp_function, max, count) = (
                    groups[gi].function.clone(),
                    groups[gi].max_hits,
                    groups[gi].hits,
                );
                let mut stack: Vec<Frame> = match &t.breakpoint_info {
                    Some(i) if !i.stacktrace.is_empty() => {
                        i.stacktrace.iter().map(Location::frame).collect()
                    }
                    _ => vec![thread_frame(&t)],
                };
                // dlv 1.7 sometimes names a stop at the real function's address after
                // its wrapper (`<autogenerated>:1`); the tip knows better.
                if let Some(f0) = stack.first_mut()
                    && f0.file == AUTOGENERATED
                    && let Some((function, file, line)) = real_code.get(&f0.pc)
                {
                    self.log.push_str(&format!(
                        "# dlv names this stop {AUTOGENERATED}; {:#x} is the real {function} ({file}:{line}), where the tip put it\n",
                        f0.pc
                    ));
                    f0.function = function.clone();
                    f0.file = file.clone();
                    f0.line = (*line).max(0) as u32;
                }
                let mut hit = Hit {
                    seq: self.session.hits.len(),
                    tool: Tool::Dlv,
                    breakpoint: bp_function.clone(),
                    thread: t.id,
                    goroutine: t.goroutine_id,
                    stack,
                    values: Default::default(),
                    stop,
                };
                // The stop line was printed with the continue; another thread's stack
                // needs `thread N` first, as in a real session.
                if current != Some(t.id) {
                    self.log.push_str(&format!(
                        "(dlv) thread {}\nSwitched from {} to {}\n",
                        t.id,
                        current.unwrap_or(0),
                        t.id
                    ));
                    let _: Value = self.c.call(
                        "Command",
                        json!({"name": "switchThread", "threadID": t.id}),
                        None,
                    )?;
                    current = Some(t.id);
                }
                self.log.push_str("(dlv) bt\n");
                let locs: Vec<Location> = match &t.breakpoint_info {
                    Some(i) if !i.stacktrace.is_empty() => i.stacktrace.clone(),
                    _ => vec![Location {
                        pc: t.pc,
                        file: t.file.clone(),
                        line: t.line,
                        function: t.function.clone(),
                    }],
                };
                self.log
                    .push_str(&console::stack(&locs, Some(&plan.source_dir)));
                self.read_values(&mut hit, &mut current)?;
                if hit.in_wrapper() && !real_code.contains_key(&t.pc) {
                    self.disassemble_wrapper(&t)?;
                }
                self.session.hits.push(hit);
                if max > 0 && count >= max {
                    for id in std::mem::take(&mut groups[gi].ids) {
                        self.log.push_str(&format!("(dlv) clear {id}\n"));
                        let cleared: Breakpoint = self.c.call(
                            "ClearBreakpoint",
                            json!({"Id": id}),
                            Some("Breakpoint"),
                        )?;
                        let set = console::breakpoint_set(&cleared, Some(&plan.source_dir));
                        let at = set.split_once(" set at ").map(|x| x.1).unwrap_or("\n");
                        self.log
                            .push_str(&format!("Breakpoint {id} cleared at {at}"));
                        ids.remove(&id);
                    }
                }
            }
        }
        Ok(())
    }
}

fn thread_frame(t: &Thread) -> Frame {
    Location {
        pc: t.pc,
        file: t.file.clone(),
        line: t.line,
        function: t.function.clone(),
    }
    .frame()
}

impl Driver<'_> {
    fn registers(&mut self, thread: i64) -> Result<Vec<Register>> {
        self.c.call(
            "ListRegisters",
            json!({"ThreadID": thread, "IncludeFp": false}),
            Some("Regs"),
        )
    }

    /// Reads what the checks want at this stop, if it is one they name.
    fn read_values(&mut self, hit: &mut Hit, current: &mut Option<i64>) -> Result<()> {
        let wanted: Vec<usize> = (0..self.plan.stops.len())
            .filter(|&i| {
                !self.done_stops[i]
                    && crate::trace::stop_matches(
                        hit,
                        &self.plan.stops[i].function,
                        self.plan.stops[i].caller.as_deref(),
                    )
                    && self.plan.stops[i].scope.admits(hit, &self.session.hits)
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        if *current != Some(hit.thread) {
            *current = Some(hit.thread);
            self.log.push_str(&format!("(dlv) thread {}\n", hit.thread));
            let _: Value = self.c.call(
                "Command",
                json!({"name": "switchThread", "threadID": hit.thread}),
                None,
            )?;
        }
        let mut regs: Option<Vec<Register>> = None;
        for i in wanted {
            self.done_stops[i] = !self.plan.stops[i].every;
            for r in self.plan.stops[i].reads.clone() {
                if let Read::Fields(template, depth) = &r {
                    // `{reg:rax}` stands for a register's value at this stop: an argument
                    // in the register ABI, read where dlv's own argument locations are
                    // not yet right (dlv 1.9 at a function's entry).
                    if template.contains("{reg:") && regs.is_none() {
                        self.log.push_str("(dlv) regs\n");
                        regs = Some(self.registers(hit.thread)?);
                    }
                    let e = &substitute_registers(template, regs.as_deref().unwrap_or(&[]));
                    self.log.push_str(&format!("(dlv) print {e}\n"));
                    let cfg = json!({"FollowPointers": false, "MaxVariableRecurse": depth, "MaxStringLen": 16, "MaxArrayValues": 256, "MaxStructFields": -1});
                    match self.c.call::<Variable>(
                        "Eval",
                        json!({"Scope": {"GoroutineID": -1, "Frame": 0}, "Expr": e, "Cfg": cfg}),
                        Some("Variable"),
                    ) {
                        Ok(v) => {
                            let mut fields = vec![(r.key(), v.addr.to_string())];
                            flatten(&v, &format!("eval {template}"), *depth, &mut fields);
                            self.log.push_str(&format!(
                                "{} fields at {:#x}\n",
                                fields.len() - 1,
                                v.addr
                            ));
                            hit.values.extend(fields);
                        }
                        Err(err) => {
                            let m = format!("error: {err:#}");
                            self.log.push_str(&format!("{m}\n"));
                            hit.values.insert(r.key(), m);
                        }
                    }
                    continue;
                }
                let mut shown: Option<String> = None;
                let v = match &r {
                    Read::Eval(e) => {
                        self.log.push_str(&format!("(dlv) print {e}\n"));
                        let cfg = json!({"FollowPointers": true, "MaxVariableRecurse": 1, "MaxStringLen": 64, "MaxArrayValues": 64, "MaxStructFields": -1});
                        match self.c.call::<Variable>("Eval", json!({"Scope": {"GoroutineID": -1, "Frame": 0}, "Expr": e, "Cfg": cfg}), Some("Variable")) {
                            Ok(v) => {
                                shown = Some(console::value_short(&v));
                                v.scalar()
                            }
                            Err(err) => {
                                shown = Some(format!("Command failed: {err:#}"));
                                format!("error: {err:#}")
                            }
                        }
                    }
                    Read::Reg(name) => {
                        if regs.is_none() {
                            self.log.push_str("(dlv) regs\n");
                            let all = self.registers(hit.thread)?;
                            self.log.push_str(&console::regs(&all));
                            regs = Some(all);
                        }
                        let found = regs
                            .as_ref()
                            .unwrap()
                            .iter()
                            .find(|x| x.name.eq_ignore_ascii_case(name))
                            .map(|x| x.value.clone());
                        found.unwrap_or_else(|| format!("error: no register {name}"))
                    }
                    Read::Fields(..) => continue,
                };
                // A register has no line of its own: the `regs` output above has it.
                if let Some(text) = shown {
                    self.log.push_str(&format!("{text}\n"));
                }
                hit.values.insert(r.key(), v);
            }
        }
        Ok(())
    }

    fn create_breakpoint(&mut self, spec: Value) -> Result<Breakpoint> {
        self.c.call(
            "CreateBreakpoint",
            json!({ "Breakpoint": spec }),
            Some("Breakpoint"),
        )
    }

    /// dlv's own line for a breakpoint it set.
    fn log_set(&mut self, bp: &Breakpoint) {
        let line = console::breakpoint_set(bp, Some(&self.plan.source_dir));
        self.log.push_str(&line);
    }

    /// The notes' tip (delve PR 1915), at the moment it is needed: dlv before 1.20 puts
    /// `b runtime.check` (args, osinit, schedinit, newproc, mstart0: every Go function
    /// that assembly calls, from Go 1.17) on the `<autogenerated>` ABI0 wrapper alone, so
    /// the function itself would never stop. Disassemble the wrapper, find its jump to
    /// the real code, and break on that code's `file:line` (its first line, which dlv
    /// resolves past the prologue: the address dlv >= 1.20 picks for the function).
    fn follow_wrapper(&mut self, function: &str, bp: &Breakpoint) -> Result<Option<Breakpoint>> {
        let entry = bp_addrs(bp).first().copied().unwrap_or(0);
        if entry == 0 {
            return Ok(None);
        }
        self.log.push_str(&format!(
            "# {function} resolved to its <autogenerated> ABI0 wrapper only: the notes' tip, disassemble it and find the real jump address\n"
        ));
        let mut code = self.disassemble(function, entry)?;
        let Some((file, line)) = code
            .call_to_real()
            .and_then(|i| Some((i.dest_file.clone()?, i.dest_line?)))
        else {
            self.log.push_str(&format!(
                "# no jump from the wrapper to the real {function}\n"
            ));
            self.wrappers.push(code);
            return Ok(None);
        };
        self.log.push_str(&format!("(dlv) b {file}:{line}\n"));
        let real =
            match self.create_breakpoint(json!({"file": file, "line": line, "Stacktrace": 64})) {
                Ok(r) => r,
                Err(e) => {
                    self.log.push_str(&format!("Command failed: {e:#}\n"));
                    self.wrappers.push(code);
                    return Ok(None);
                }
            };
        self.log_set(&real);
        code.real_breakpoint = Some(RealBreakpoint {
            file,
            line,
            addrs: bp_addrs(&real),
        });
        self.wrappers.push(code);
        Ok(Some(real))
    }

    /// The notes' `disass` tip: an `<autogenerated>` stop is an ABI wrapper; its code names
    /// the real function it calls.
    fn disassemble_wrapper(&mut self, t: &Thread) -> Result<()> {
        let Some(f) = &t.function else { return Ok(()) };
        if self.wrappers.iter().any(|w| w.entry == f.value) || f.value == 0 {
            return Ok(());
        }
        let code = self.disassemble(&f.name, f.value)?;
        self.wrappers.push(code);
        Ok(())
    }

    /// `disass` of the function that starts at `entry` (Intel syntax, dlv's default),
    /// printed as dlv prints it, with the command typed for exactly its range.
    fn disassemble(&mut self, name: &str, entry: u64) -> Result<WrapperCode> {
        let all: Vec<AsmInstruction> = self.c.call("Disassemble", json!({"Scope": {"GoroutineID": -1, "Frame": 0}, "StartPC": entry, "EndPC": entry + 0x80, "Flavour": 1}), Some("Disassemble"))?;
        let func_entry = all
            .first()
            .and_then(|i| i.loc.function.as_ref().map(|x| x.value));
        let ins: Vec<AsmInstruction> = all
            .into_iter()
            .take_while(|i| {
                let this = i.loc.function.as_ref().map(|x| x.value);
                this.is_some() && this == func_entry
            })
            .collect();
        let end = ins
            .iter()
            .map(|i| i.loc.pc + i.bytes.len().max(1) as u64)
            .max()
            .unwrap_or(entry + 1);
        self.log
            .push_str(&format!("(dlv) disass -a {entry:#x} {end:#x}\n"));
        self.log.push_str(&console::disass(&ins, true));
        let mut code = WrapperCode {
            function: name.to_string(),
            entry,
            instructions: Vec::new(),
            real_breakpoint: None,
        };
        for i in ins {
            let dest_function = i
                .dest
                .as_ref()
                .and_then(|d| d.function.as_ref().map(|x| x.name.clone()));
            let dest_file = i.dest.as_ref().map(|d| d.file.clone());
            let dest_line = i.dest.as_ref().map(|d| d.line);
            if let (Some(d), Some(l)) = (&dest_function, &i.dest)
                && d.trim_end_matches(".abi0") == name.trim_end_matches(".abi0")
                && l.file != AUTOGENERATED
                && !l.file.is_empty()
            {
                self.log.push_str(&format!(
                    "    # golab: {name} is an <autogenerated> ABI wrapper; the {} at {:#x} goes to the real {d} at {:#x} ({}:{})\n",
                    i.text.split_whitespace().next().unwrap_or("call"),
                    i.loc.pc,
                    l.pc,
                    l.file,
                    l.line
                ));
            }
            code.instructions.push(Instruction {
                pc: i.loc.pc,
                text: i.text,
                dest_function,
                dest_file,
                dest_line,
            });
        }
        Ok(code)
    }
}

const AUTOGENERATED: &str = "<autogenerated>";

/// One lab breakpoint as dlv breakpoints: its hits and hit limit are counted together.
struct BreakpointGroup {
    function: String,
    max_hits: u32,
    hits: u32,
    ids: Vec<i64>,
}

fn bp_addrs(bp: &Breakpoint) -> Vec<u64> {
    if bp.addrs.is_empty() {
        vec![bp.addr]
    } else {
        bp.addrs.clone()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_line_is_read_whole_but_kept_only_up_to_its_cap() {
        let data = format!("{}\nnext\n{}", "x".repeat(100), "y".repeat(10));
        let mut r = std::io::BufReader::with_capacity(7, data.as_bytes());
        let mut l = Vec::new();
        assert_eq!(read_line_capped(&mut r, &mut l, 16), 101);
        assert_eq!(l, b"x".repeat(16));
        l.clear();
        assert_eq!(read_line_capped(&mut r, &mut l, 16), 5);
        assert_eq!(l, b"next\n");
        l.clear();
        assert_eq!(read_line_capped(&mut r, &mut l, 16), 10);
        l.clear();
        assert_eq!(read_line_capped(&mut r, &mut l, 16), 0);
    }

    use super::*;

    #[test]
    fn decodes_a_recorded_exchange() {
        // Recorded from a real run; the fixture's first line says how.
        let text = include_str!("../../tests/fixtures/dlv-rpc.go1.19.jsonl");
        let mut hits = 0;
        let mut exited = false;
        let mut methods = Vec::new();
        let mut last_method = String::new();
        for l in text.lines().skip(1) {
            if let Some(req) = l.strip_prefix("-> ") {
                let v: Value = serde_json::from_str(req).unwrap();
                last_method = v["method"].as_str().unwrap().to_string();
                methods.push(last_method.clone());
            } else if let Some(rep) = l.strip_prefix("<- ") {
                let Ok(result) = parse_reply(rep) else {
                    continue;
                };
                if last_method == "RPCServer.Command" {
                    let st: State = serde_json::from_value(result["State"].clone()).unwrap();
                    exited |= st.exited;
                    for t in st.threads.unwrap_or_default() {
                        if let Some(bp) = t.breakpoint {
                            assert!(bp.id > 0);
                            let stack = t.breakpoint_info.unwrap().stacktrace;
                            assert!(!stack.is_empty());
                            hits += 1;
                        }
                    }
                }
            }
        }
        assert!(methods.iter().any(|m| m == "RPCServer.CreateBreakpoint"));
        assert!(hits >= 10, "{hits}");
        assert!(exited);
    }

    #[test]
    fn a_pointer_variable_reads_as_its_address() {
        // `&runtime.g0` as dlv 1.20 returns it: no value, the pointee as the one child.
        let v: Variable = serde_json::from_str(r#"{"name":"","type":"*runtime.g","kind":22,"value":"","addr":0,"children":[{"name":"","type":"runtime.g","kind":25,"addr":4962560,"children":[]}]}"#).unwrap();
        assert_eq!(v.scalar(), "4962560");
        let e =
            parse_reply(r#"{"id":3,"result":null,"error":"could not find symbol value for fn"}"#)
                .unwrap_err();
        assert_eq!(e.to_string(), "could not find symbol value for fn");
    }

    #[test]
    fn recognises_the_go_version_complaint() {
        assert!(is_version_complaint(
            "Version of Go is too old for this version of Delve (minimum supported version 1.18, suppress this error with --check-go-version=false)"
        ));
        assert!(!is_version_complaint(
            "could not launch process: permission denied"
        ));
    }
}

//! gdb through its machine interface (`gdb --interpreter=mi3`): a small MI parser and a
//! session that sets breakpoints, runs, and records every stop with its stack.
//!
//! No maintained Rust MI crate exists, so the parser is here; it follows the grammar of
//! the GDB manual's "GDB/MI Output Syntax" (results, tuples, lists, c-strings).

use crate::exec::Group;
use crate::machine::{Cmd, Machine};
use crate::trace::{Frame, Hit, Placed, Session, Tool};
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Tuple(Vec<(String, Value)>),
    List(Vec<Value>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Tuple(r) => r.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The items of a list; a list of results (`[frame={..},frame={..}]`) yields the values.
    pub fn items(&self) -> Vec<&Value> {
        match self {
            Value::List(v) => v
                .iter()
                .map(|i| match i {
                    Value::Tuple(r) if r.len() == 1 && r[0].0.starts_with('\u{1}') => &r[0].1,
                    other => other,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// `^done`, `^running`, `^error`, `^exit`, with the command's token.
    Result {
        token: Option<u64>,
        class: String,
        results: Value,
    },
    /// `*stopped` (exec), `+` (status), `=` (notify).
    Async {
        kind: char,
        class: String,
        results: Value,
    },
    /// `~` console, `@` target, `&` log.
    Stream {
        kind: char,
        text: String,
    },
    Prompt,
}

/// Parses one line of MI output.
pub fn parse_line(line: &str) -> Result<Record> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim() == "(gdb)" {
        return Ok(Record::Prompt);
    }
    let digits = line.chars().take_while(|c| c.is_ascii_digit()).count();
    let token = if digits > 0 {
        line[..digits].parse().ok()
    } else {
        None
    };
    let rest = &line[digits..];
    let mut chars = rest.chars();
    let kind = chars.next().context("empty MI line")?;
    let body = chars.as_str();
    match kind {
        '~' | '@' | '&' => {
            let mut p = Parser {
                s: body.as_bytes(),
                i: 0,
            };
            Ok(Record::Stream {
                kind,
                text: p.cstring()?,
            })
        }
        '^' | '*' | '+' | '=' => {
            let (class, results) = match body.split_once(',') {
                Some((c, r)) => (c.to_string(), r),
                None => (body.to_string(), ""),
            };
            let mut p = Parser {
                s: results.as_bytes(),
                i: 0,
            };
            let results = Value::Tuple(p.results(None)?);
            if kind == '^' {
                Ok(Record::Result {
                    token,
                    class,
                    results,
                })
            } else {
                Ok(Record::Async {
                    kind,
                    class,
                    results,
                })
            }
        }
        _ => bail!("not an MI record: {line}"),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Result<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            bail!(
                "MI: expected '{}' at byte {} of {:?}",
                c as char,
                self.i,
                String::from_utf8_lossy(self.s)
            )
        }
    }
    /// `a=v,b=v` up to `end` (or the end of input).
    fn results(&mut self, end: Option<u8>) -> Result<Vec<(String, Value)>> {
        let mut out = Vec::new();
        while self.peek().is_some() && self.peek() != end {
            let name = self.name()?;
            self.expect(b'=')?;
            out.push((name, self.value()?));
            if self.peek() == Some(b',') {
                self.i += 1;
            }
        }
        Ok(out)
    }
    fn name(&mut self) -> Result<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b'=' || c == b',' || c == b'}' || c == b']' {
                break;
            }
            self.i += 1;
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn value(&mut self) -> Result<Value> {
        match self.peek() {
            Some(b'"') => Ok(Value::Str(self.cstring()?)),
            Some(b'{') => {
                self.i += 1;
                let r = self.results(Some(b'}'))?;
                self.expect(b'}')?;
                Ok(Value::Tuple(r))
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                while self.peek() != Some(b']') {
                    if self.peek().is_none() {
                        bail!("MI: unterminated list");
                    }
                    if matches!(self.peek(), Some(b'"' | b'{' | b'[')) {
                        items.push(self.value()?);
                    } else {
                        // A result inside a list: `frame={...}`. Mark the name so items() unwraps it.
                        let name = self.name()?;
                        self.expect(b'=')?;
                        let v = self.value()?;
                        items.push(Value::Tuple(vec![(format!("\u{1}{name}"), v)]));
                    }
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    }
                }
                self.expect(b']')?;
                Ok(Value::List(items))
            }
            _ => bail!(
                "MI: expected a value at byte {} of {:?}",
                self.i,
                String::from_utf8_lossy(self.s)
            ),
        }
    }
    fn cstring(&mut self) -> Result<String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let c = self.peek().context("MI: unterminated string")?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().context("MI: bad escape")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'0'..=b'7' => {
                            let mut v = (e - b'0') as u32;
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + (d - b'0') as u32;
                                        self.i += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(v as u8);
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// A frame tuple of `-stack-list-frames` or `*stopped`.
pub fn frame(v: &Value) -> Frame {
    Frame {
        function: v.str("func").unwrap_or("??").to_string(),
        file: v.str("file").unwrap_or("").to_string(),
        line: v.str("line").and_then(|l| l.parse().ok()).unwrap_or(0),
        pc: v.str("addr").and_then(hex).unwrap_or(0),
        entry_pc: false,
    }
}

/// The addresses of a `-break-insert` result (one, or `<MULTIPLE>` with locations).
pub fn breakpoint_addrs(bkpt: &Value) -> Vec<u64> {
    match bkpt.get("locations") {
        Some(l) => l
            .items()
            .iter()
            .filter_map(|loc| loc.str("addr").and_then(hex))
            .collect(),
        None => bkpt.str("addr").and_then(hex).into_iter().collect(),
    }
}

/// `Entry point: 0x45d820` in the output of `info file`.
pub fn parse_info_file_entry(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| hex(l.trim().strip_prefix("Entry point:")?))
}

/// A running gdb/MI session. Dropping it kills gdb and the program under it.
pub struct Gdb {
    group: Group,
    stdin: ChildStdin,
    lines: Receiver<String>,
    token: u64,
    deadline: Instant,
    /// Everything sent (`> `) and received, for the transcript.
    pub log: String,
    /// The program has been started (`-exec-run`).
    running: bool,
}

/// One command's answer: its result record and the console text it printed.
pub struct Answer {
    pub class: String,
    pub results: Value,
    pub console: String,
}

impl Gdb {
    pub fn start(
        m: &Machine,
        gdb: &Path,
        binary: &Path,
        env: &[(String, String)],
        deadline: Instant,
    ) -> Result<Gdb> {
        let mut cmd = Cmd::new(gdb);
        cmd.untrusted()
            .arg("--interpreter=mi3")
            .arg("-nx")
            .arg("-q")
            .arg(binary);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.deadline(deadline.saturating_duration_since(Instant::now()));
        let mut c = m.command(&cmd);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut group = Group::spawn(c, "gdb")?;
        let stdin = group.child_mut().stdin.take().context("gdb stdin")?;
        let stdout = group.child_mut().stdout.take().context("gdb stdout")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Gdb {
            group,
            stdin,
            lines,
            token: 0,
            deadline,
            log: String::new(),
            running: false,
        })
    }

    fn next_record(&mut self) -> Result<Record> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            // In the sandbox, a gdb that the program stopped is noticed within a poll.
            let jailed = crate::machine::jailed();
            let wait = if jailed {
                left.min(Duration::from_millis(250))
            } else {
                left
            };
            match self.lines.recv_timeout(wait) {
                Ok(l) => {
                    self.log.push_str(&l);
                    self.log.push('\n');
                    if l.trim().is_empty() {
                        continue;
                    }
                    // Lines that are not MI (the program's own output) are kept in the log only.
                    if let Ok(r) = parse_line(&l) {
                        return Ok(r);
                    }
                }
                Err(RecvTimeoutError::Timeout) if jailed && !left.is_zero() => {
                    if let Some(why) = crate::machine::interference() {
                        self.group.kill();
                        return Err(why.into());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.group.kill();
                    return Err(crate::exec::TimedOut(
                        "gdb did not answer before the session's deadline: gdb and the program were killed".into(),
                    )
                    .into());
                }
                Err(RecvTimeoutError::Disconnected) if jailed && self.running => {
                    // gdb never ends a session by itself: the program under it did.
                    return Err(crate::machine::Interfered(
                        "gdb ended during the session while your program ran under it".into(),
                    )
                    .into());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("gdb exited unexpectedly (see the gdb/MI log)")
                }
            }
        }
    }

    /// Sends one MI command and waits for its result record.
    pub fn command(&mut self, cmd: &str) -> Result<Answer> {
        self.token += 1;
        let tok = self.token;
        if cmd.starts_with("-exec-run") {
            self.running = true;
        }
        let line = format!("{tok}{cmd}\n");
        self.log.push_str("> ");
        self.log.push_str(&line);
        self.stdin
            .write_all(line.as_bytes())
            .context("cannot write to gdb")?;
        self.stdin.flush()?;
        let mut console = String::new();
        loop {
            match self.next_record()? {
                Record::Result {
                    token,
                    class,
                    results,
                } if token == Some(tok) => {
                    if class == "error" {
                        let msg = results.str("msg").unwrap_or("").to_string();
                        return Ok(Answer {
                            class,
                            results: Value::Str(msg),
                            console,
                        });
                    }
                    return Ok(Answer {
                        class,
                        results,
                        console,
                    });
                }
                Record::Stream { kind: '~', text } => console.push_str(&text),
                _ => {}
            }
        }
    }

    /// Waits for the next `*stopped` record.
    pub fn wait_stopped(&mut self) -> Result<Value> {
        loop {
            if let Record::Async {
                kind: '*',
                class,
                results,
            } = self.next_record()?
                && class == "stopped"
            {
                return Ok(results);
            }
        }
    }
}

/// One gdb breakpoint to set, and how many of its hits to record before deleting it.
pub struct BreakAt<'a> {
    pub function: &'a str,
    pub max_hits: u32,
}

/// What a gdb session recorded, with its MI log.
pub struct GdbRun {
    pub session: Session,
    pub entry: Option<u64>,
    pub info_file: String,
    pub log: String,
    /// Why the session ended early, if it did; the log is kept.
    pub error: Option<String>,
    /// The session ended because its deadline passed (`error` says which call).
    pub timed_out: bool,
    /// The program under gdb stopped or killed it (in the grader's sandbox).
    pub interfered: bool,
}

/// The program a gdb session runs: its binary, arguments and environment.
pub struct Debuggee<'a> {
    pub binary: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
}

/// Runs the program under gdb: `info file`, breakpoints, run, and a stack at every stop.
#[allow(clippy::too_many_arguments)]
pub fn run(
    m: &Machine,
    gdb_path: &Path,
    version: &str,
    program: &Debuggee,
    plan: &[BreakAt],
    deadline: Instant,
) -> Result<GdbRun> {
    let Debuggee { binary, args, env } = *program;
    let mut g = Gdb::start(m, gdb_path, binary, env, deadline)?;
    let mut s = Session {
        version: version.to_string(),
        ..Default::default()
    };
    let mut entry = None;
    let mut info_file = String::new();
    let failed = drive(&mut g, &mut s, &mut entry, &mut info_file, args, plan).err();
    let timed_out = failed.as_ref().is_some_and(crate::exec::timed_out);
    let interfered = failed
        .as_ref()
        .is_some_and(|e| crate::machine::interfered(e).is_some());
    let error = failed.map(|e| match crate::machine::interfered(&e) {
        Some(i) => i.0.clone(),
        None => format!("{e:#}"),
    });
    // Whatever happened, gdb and the program go; the log is kept for the transcript.
    let log = std::mem::take(&mut g.log);
    drop(g);
    Ok(GdbRun {
        session: s,
        entry,
        info_file,
        log,
        error,
        timed_out,
        interfered,
    })
}

fn drive(
    g: &mut Gdb,
    s: &mut Session,
    entry: &mut Option<u64>,
    info_file: &mut String,
    args: &[String],
    plan: &[BreakAt],
) -> Result<()> {
    g.command("-gdb-set confirm off")?;
    g.command("-gdb-set backtrace past-main on")?;
    g.command("-gdb-set pagination off")?;
    // Go uses SIGURG for asynchronous preemption; it is not an event of the lab.
    g.command("-interpreter-exec console \"handle SIGURG nostop noprint pass\"")?;
    let info = g.command("-interpreter-exec console \"info file\"")?;
    *entry = parse_info_file_entry(&info.console);
    *info_file = info.console;
    if !args.is_empty() {
        g.command(&format!("-exec-arguments {}", args.join(" ")))?;
    }
    // The program's own output must not reach the MI stream (a program could print
    // records gdb never sent).
    g.command("-inferior-tty-set /dev/null")?;
    let mut by_number: HashMap<String, (String, u32, u32)> = HashMap::new();
    for p in plan {
        let a = g.command(&format!("-break-insert {}", p.function))?;
        if a.class == "error" {
            let Value::Str(msg) = a.results else {
                unreachable!()
            };
            s.breakpoints.push(Placed {
                function: p.function.to_string(),
                addrs: vec![],
                error: Some(msg),
                symbols: vec![],
            });
            continue;
        }
        let bkpt = a
            .results
            .get("bkpt")
            .context("-break-insert answered without bkpt")?
            .clone();
        let number = bkpt.str("number").unwrap_or("").to_string();
        s.breakpoints.push(Placed {
            function: p.function.to_string(),
            addrs: breakpoint_addrs(&bkpt),
            error: None,
            symbols: vec![],
        });
        by_number.insert(number, (p.function.to_string(), p.max_hits, 0));
    }
    let mut cmd = "-exec-run";
    for _ in 0..10_000 {
        let a = g.command(cmd)?;
        if a.class == "error" {
            let Value::Str(msg) = a.results else {
                unreachable!()
            };
            if msg.contains("ptrace") || msg.contains("Operation not permitted") {
                bail!(
                    "gdb cannot trace the program: {msg}. Fix: allow ptrace (`sysctl kernel.yama.ptrace_scope=0`; in a container, run it with --cap-add=SYS_PTRACE)"
                );
            }
            bail!("gdb {cmd}: {msg}");
        }
        cmd = "-exec-continue";
        let stop = g.wait_stopped()?;
        let reason = stop.str("reason").unwrap_or("");
        match reason {
            "breakpoint-hit" => {
                let number = stop.str("bkptno").unwrap_or("").to_string();
                let thread: i64 = stop
                    .str("thread-id")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                g.command(&format!("-thread-select {thread}"))?;
                let st = g.command("-stack-list-frames 0 63")?;
                let stack: Vec<Frame> = st
                    .results
                    .get("stack")
                    .map(|l| l.items().into_iter().map(frame).collect())
                    .unwrap_or_default();
                let Some(entry) = by_number.get_mut(&number) else {
                    continue;
                };
                entry.2 += 1;
                s.hits.push(Hit {
                    seq: s.hits.len(),
                    tool: Tool::Gdb,
                    breakpoint: entry.0.clone(),
                    thread,
                    goroutine: 0,
                    stack,
                    values: Default::default(),
                    stop: 0,
                });
                if entry.1 > 0 && entry.2 >= entry.1 {
                    g.command(&format!("-break-delete {number}"))?;
                }
            }
            "exited-normally" => {
                s.exit_status = Some(0);
                break;
            }
            "exited" => {
                s.exit_status = stop
                    .str("exit-code")
                    .and_then(|c| i64::from_str_radix(c, 8).ok());
                break;
            }
            "exited-signalled" => {
                s.warnings.push(format!(
                    "the program was killed by {}",
                    stop.str("signal-name").unwrap_or("a signal")
                ));
                break;
            }
            other => s
                .warnings
                .push(format!("gdb stopped for {other}; continued")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_breakpoint_with_two_locations() {
        // From the recorded session below: runtime.schedinit has an ABI wrapper since Go 1.17.
        let l = r#"3^done,bkpt={number="3",type="breakpoint",disp="keep",enabled="y",addr="<MULTIPLE>",times="0",original-location="runtime.schedinit",locations=[{number="3.1",enabled="y",addr="0x0000000000436aaa",func="runtime.schedinit",file="/usr/lib/go-1.19/src/runtime/proc.go",line="658",thread-groups=["i1"]},{number="3.2",enabled="y",addr="0x000000000045e5a0",func="runtime.schedinit",file="<autogenerated>",fullname="./<autogenerated>",line="1",thread-groups=["i1"]}]}"#;
        let Record::Result {
            token,
            class,
            results,
        } = parse_line(l).unwrap()
        else {
            panic!()
        };
        assert_eq!((token, class.as_str()), (Some(3), "done"));
        let b = results.get("bkpt").unwrap();
        assert_eq!(breakpoint_addrs(b), vec![0x436aaa, 0x45e5a0]);
    }

    #[test]
    fn parses_streams_with_escapes() {
        let r = parse_line(r#"~"\tEntry point: 0x45d820\n""#).unwrap();
        assert_eq!(
            r,
            Record::Stream {
                kind: '~',
                text: "\tEntry point: 0x45d820\n".into()
            }
        );
        assert_eq!(
            parse_info_file_entry("Symbols from \"/x\".\n\tEntry point: 0x45d820\n"),
            Some(0x45d820)
        );
        let r = parse_line(r#"&"caf\303\251 \"q\"""#).unwrap();
        assert_eq!(
            r,
            Record::Stream {
                kind: '&',
                text: "café \"q\"".into()
            }
        );
    }

    #[test]
    fn parses_a_recorded_session() {
        // Recorded from a real run (see the fixture's first line for the command).
        let text = include_str!("../../tests/fixtures/gdb-mi.go1.19.log");
        let mut stops = Vec::new();
        let mut frames_seen = 0;
        for l in text.lines().skip(1) {
            if l.starts_with("> ") || l.trim().is_empty() {
                continue;
            }
            let Ok(r) = parse_line(l) else { continue }; // the program's own output
            match r {
                Record::Async {
                    kind: '*',
                    class,
                    results,
                } if class == "stopped" => stops.push(results),
                Record::Result { results, .. } => {
                    if let Some(st) = results.get("stack") {
                        let frames: Vec<Frame> = st.items().into_iter().map(frame).collect();
                        assert!(frames.iter().all(|f| f.pc != 0 || f.function == "??"));
                        frames_seen += frames.len();
                    }
                }
                _ => {}
            }
        }
        let first = &stops[0];
        assert_eq!(first.str("reason"), Some("breakpoint-hit"));
        assert_eq!(
            frame(first.get("frame").unwrap()).function,
            "runtime.rt0_go"
        );
        assert!(
            stops
                .last()
                .unwrap()
                .str("reason")
                .unwrap()
                .starts_with("exited")
        );
        assert!(frames_seen > 10);
    }
}

//! Syscall evidence: strace's output read from a FIFO the program cannot see while the
//! run goes on (`TraceFifo`), parsed into calls and judged (`Trace`).

use super::{READY_MARKER, Verdict, normalize};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------------------------------
// Syscall evidence: strace's output, read from a FIFO while the run goes on.

pub(super) struct TraceFifo {
    _dir: tempfile::TempDir,
    pub(super) path: PathBuf,
    /// Our own write end: keeps the reader from seeing an end before strace opens the
    /// FIFO, closed once strace is gone.
    writer: Mutex<Option<std::fs::File>>,
    reader: Mutex<Option<std::fs::File>>,
}

impl TraceFifo {
    pub(super) fn new(uid: u32) -> Result<TraceFifo> {
        let dir = tempfile::Builder::new()
            .prefix(".golab-sandbox-trace-")
            .tempdir_in("/tmp")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid))?;
        let path = dir.path().join("trace");
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: mkfifo with a valid C string.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
            return Err(std::io::Error::last_os_error()).context("mkfifo");
        }
        std::os::unix::fs::chown(&path, Some(uid), Some(uid))?;
        use std::os::unix::fs::OpenOptionsExt;
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)?;
        let writer = std::fs::OpenOptions::new().write(true).open(&path)?;
        // Back to blocking reads.
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let fl = libc::fcntl(reader.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(reader.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
        Ok(TraceFifo {
            _dir: dir,
            path,
            writer: Mutex::new(Some(writer)),
            reader: Mutex::new(Some(reader)),
        })
    }

    pub(super) fn reader(
        &self,
        trace: Arc<Mutex<Trace>>,
        process_evidence: Arc<AtomicBool>,
    ) -> Result<std::thread::JoinHandle<()>> {
        let f = self
            .reader
            .lock()
            .unwrap()
            .take()
            .context("trace FIFO already read")?;
        Ok(std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 16, f);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.by_ref().take(1 << 16).read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if line.last() != Some(&b'\n') {
                            // A line longer than 64 KiB: skip the rest of it.
                            let mut rest = Vec::new();
                            let _ = r.read_until(b'\n', &mut rest);
                            continue;
                        }
                        let mut t = trace.lock().unwrap();
                        t.line(&String::from_utf8_lossy(&line[..line.len() - 1]));
                        if t.process_limit_seen() {
                            process_evidence.store(true, Ordering::SeqCst);
                        }
                    }
                    Err(_) => break,
                }
            }
        }))
    }

    pub(super) fn close_writer(&self) {
        self.writer.lock().unwrap().take();
    }
}

/// Evidence gathered from the trace. A line counts for the program when its pid was not
/// seen before the wrapper shell was exec'd (those are bwrap's own processes, which make
/// no traced call afterwards): strace prints host pids, while the pids clone() returns
/// inside the sandbox are of its own pid namespace, so parentage cannot be read from it.
pub(super) struct Trace {
    visible: Vec<PathBuf>,
    hidden: Vec<PathBuf>,
    cwd: PathBuf,
    /// The pid that exec'd the wrapper shell, and so the program.
    pub(super) root: Option<u32>,
    setup_pids: HashSet<u32>,
    pending: HashMap<u32, String>,
    /// (verdict, line) for the program's processes; at most KEEP lines of each verdict.
    found: Vec<(Verdict, String)>,
    pub(super) counts: HashMap<Verdict, usize>,
    /// EAGAIN from a fork or clone anywhere in the run.
    process_limit: bool,
    root_killed_by: Option<i32>,
}

const KEEP: usize = 8;

impl Trace {
    pub(super) fn new(visible: Vec<PathBuf>, hidden: Vec<PathBuf>, cwd: PathBuf) -> Trace {
        Trace {
            visible,
            hidden,
            cwd,
            root: None,
            setup_pids: HashSet::new(),
            pending: HashMap::new(),
            found: Vec::new(),
            counts: HashMap::new(),
            process_limit: false,
            root_killed_by: None,
        }
    }

    fn in_program(&self, pid: u32) -> bool {
        self.root.is_some() && !self.setup_pids.contains(&pid)
    }

    fn note(&mut self, pid: u32, v: Verdict, line: &str) {
        if v == Verdict::ProcessLimit {
            self.process_limit = true;
        }
        if !self.in_program(pid) {
            return;
        }
        let n = self.counts.entry(v).or_default();
        *n += 1;
        if *n <= KEEP {
            self.found.push((v, line.chars().take(400).collect()));
        }
    }

    pub(super) fn process_limit_seen(&self) -> bool {
        self.process_limit
    }

    /// One line of `strace -f -y` output.
    pub(super) fn line(&mut self, line: &str) {
        let Some((pid, rest)) = line.split_once(' ') else {
            return;
        };
        let Ok(pid) = pid.parse::<u32>() else { return };
        if self.root.is_none() {
            self.setup_pids.insert(pid);
        }
        let rest = rest.trim_start();
        if let Some(sig) = rest.strip_prefix("--- ") {
            if sig.starts_with("SIGXCPU") {
                self.note(pid, Verdict::CpuLimit, line);
            } else if sig.starts_with("SIGXFSZ") {
                self.note(pid, Verdict::OutputLimit, line);
            }
            return;
        }
        if let Some(end) = rest.strip_prefix("+++ ") {
            if Some(pid) == self.root
                && let Some(s) = end.strip_prefix("killed by ")
            {
                self.root_killed_by = signal_number(s.split_whitespace().next().unwrap_or(""));
            }
            return;
        }
        let full = if let Some(r) = rest.strip_prefix("<... ") {
            let Some((_, after)) = r.split_once(" resumed>") else {
                return;
            };
            match self.pending.remove(&pid) {
                Some(start) => format!("{start}{after}"),
                None => return,
            }
        } else if let Some(start) = rest.strip_suffix(" <unfinished ...>") {
            self.pending.insert(pid, start.to_string());
            return;
        } else {
            rest.to_string()
        };
        if let Some(call) = parse_call(&full) {
            // The evidence is the whole call, also when strace printed it in two pieces.
            self.call(pid, &call, &format!("{pid} {full}"));
        }
    }

    fn call(&mut self, pid: u32, c: &Call, line: &str) {
        match c.name.as_str() {
            "clone" | "clone3" | "fork" | "vfork" if c.errno.as_deref() == Some("EAGAIN") => {
                self.note(pid, Verdict::ProcessLimit, line);
            }
            "mmap" | "mremap" if c.errno.as_deref() == Some("ENOMEM") => {
                self.note(pid, Verdict::MemoryLimit, line);
            }
            "connect" | "sendto" | "sendmsg" | "sendmmsg"
                if outside_address(&c.args.join(", ")).is_some()
                    // A send to AF_UNSPEC is one to AF_INET for UDP (udp_sendmsg); in
                    // connect it is a disconnect.
                    || (c.name != "connect" && c.args.iter().any(|a| a.contains("sa_family=AF_UNSPEC"))) =>
            {
                self.note(pid, Verdict::NetworkDenied, line);
            }
            "execve" | "execveat" | "open" | "openat" | "openat2" | "creat" => {
                if c.name == "execve"
                    && c.ret == "0"
                    && self.root.is_none()
                    && c.args.first().map(String::as_str) == Some("\"/bin/sh\"")
                    && c.args.get(1).is_some_and(|a| a.contains(READY_MARKER))
                {
                    self.setup_pids.remove(&pid);
                    self.root = Some(pid);
                }
                // The path argument, and the directory it is relative to.
                let (dir, path) = match c.name.as_str() {
                    "open" | "creat" | "execve" => (None, c.args.first()),
                    _ => (c.args.first(), c.args.get(1)),
                };
                let Some(path) = path.and_then(|p| unquote(p)) else {
                    return;
                };
                let base = dir
                    .and_then(|d| fd_path(d))
                    .unwrap_or_else(|| self.cwd.clone());
                let full = normalize(&base.join(PathBuf::from(OsString::from_vec(path))));
                if self.is_escape(&full) {
                    self.note(pid, Verdict::EscapeDenied, line);
                }
            }
            _ => {}
        }
    }

    /// Under a hidden folder, and neither inside a visible path nor on the way to one.
    fn is_escape(&self, p: &Path) -> bool {
        self.hidden.iter().any(|h| p.starts_with(h))
            && !self
                .visible
                .iter()
                .any(|v| p.starts_with(v) || v.starts_with(p))
    }

    /// The verdict the trace shows for the program, strongest first.
    pub(super) fn verdict(&self) -> Option<Verdict> {
        for v in [
            Verdict::ProcessLimit,
            Verdict::MemoryLimit,
            Verdict::CpuLimit,
            Verdict::OutputLimit,
            Verdict::NetworkDenied,
            Verdict::EscapeDenied,
        ] {
            if self.counts.contains_key(&v) {
                return Some(v);
            }
        }
        self.root_killed_by.map(Verdict::Signaled)
    }

    pub(super) fn evidence_for(&self, v: Verdict) -> Vec<String> {
        let mut e: Vec<String> = self
            .found
            .iter()
            .filter(|(fv, _)| *fv == v)
            .map(|(_, l)| format!("strace: {l}"))
            .collect();
        if let Verdict::Signaled(s) = v {
            e.push(format!("strace: the program was killed by signal {s}"));
        }
        let n = self.counts.get(&v).copied().unwrap_or(0);
        if n > e.len() && !e.is_empty() {
            e.push(format!("({n} such calls in all)"));
        }
        e
    }
}

pub(super) struct Call {
    pub(super) name: String,
    pub(super) args: Vec<String>,
    pub(super) ret: String,
    pub(super) errno: Option<String>,
}

/// `name(arg, arg, ...) = ret [ERRNO (text)]`, splitting arguments at top-level commas.
pub(super) fn parse_call(s: &str) -> Option<Call> {
    let open = s.find('(')?;
    let name = s[..open].trim().to_string();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let b = s.as_bytes();
    let (mut depth, mut i, mut in_str, mut arg_start) = (0i32, open + 1, false, open + 1);
    let mut args = Vec::new();
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'(' | b'[' | b'{' | b'<' => depth += 1,
                b')' if depth == 0 => {
                    let a = s[arg_start..i].trim();
                    if !a.is_empty() {
                        args.push(a.to_string());
                    }
                    break;
                }
                b')' | b']' | b'}' | b'>' => depth -= 1,
                b',' if depth == 0 => {
                    args.push(s[arg_start..i].trim().to_string());
                    arg_start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    let after = s.get(i + 1..)?.trim_start();
    let result = after.strip_prefix("= ")?;
    let mut words = result.split_whitespace();
    let ret = words.next()?.to_string();
    let errno = if ret == "-1" {
        words.next().map(str::to_string)
    } else {
        None
    };
    Some(Call {
        name,
        args,
        ret,
        errno,
    })
}

/// The bytes of a strace string literal `"..."` (possibly followed by `...`).
pub(super) fn unquote(a: &str) -> Option<Vec<u8>> {
    let s = a.strip_prefix('"')?;
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(out),
            b'\\' if i + 1 < b.len() => {
                i += 1;
                match b[i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'v' => out.push(0x0b),
                    b'f' => out.push(0x0c),
                    b'x' if i + 2 < b.len() => {
                        out.push(
                            u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).ok()?, 16)
                                .ok()?,
                        );
                        i += 2;
                    }
                    d @ b'0'..=b'7' => {
                        let mut v = (d - b'0') as u32;
                        let mut n = 1;
                        while n < 3 && i + 1 < b.len() && (b'0'..=b'7').contains(&b[i + 1]) {
                            i += 1;
                            v = v * 8 + (b[i] - b'0') as u32;
                            n += 1;
                        }
                        out.push(v as u8);
                    }
                    c => out.push(c),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    None
}

/// The path strace -y prints for a directory fd: `AT_FDCWD</a/b>` or `3</a/b>`.
pub(super) fn fd_path(a: &str) -> Option<PathBuf> {
    let start = a.find('<')?;
    let inner = a[start + 1..].strip_suffix('>')?;
    inner.starts_with('/').then(|| PathBuf::from(inner))
}

/// The first IPv4/IPv6 address in a decoded sockaddr that is not loopback (or the
/// unspecified address, which means this host).
pub(super) fn outside_address(args: &str) -> Option<String> {
    const V4: &str = "inet_addr(\"";
    const V6: &str = "inet_pton(AF_INET6, \"";
    let mut rest = args;
    while let Some(i) = rest.find("sa_family=AF_INET") {
        rest = &rest[i..];
        let v6 = rest.starts_with("sa_family=AF_INET6");
        let addr = if v6 {
            rest.find(V6)
                .map(|j| &rest[j + V6.len()..])
                .and_then(|s| s.split('"').next())
        } else {
            rest.find(V4)
                .map(|j| &rest[j + V4.len()..])
                .and_then(|s| s.split('"').next())
        };
        if let Some(a) = addr {
            let local = match a.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(v)) => v.is_loopback() || v.is_unspecified(),
                Ok(std::net::IpAddr::V6(v)) => {
                    v.is_loopback()
                        || v.is_unspecified()
                        || v.to_ipv4_mapped()
                            .is_some_and(|m| m.is_loopback() || m.is_unspecified())
                }
                Err(_) => false,
            };
            if !local {
                return Some(a.to_string());
            }
        }
        rest = &rest[1..];
    }
    None
}

/// The number of a signal strace names (`SIGSEGV`), as this kernel numbers it.
pub(super) fn signal_number(name: &str) -> Option<i32> {
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

//! `golab tour startup-trace` with the real go and dlv: on Debian's pair (golang-go
//! 1.19 + delve 1.20) and on the course's pinned pair (go1.17.1 + dlv 1.9.1, from the
//! toolchains folder: GOLAB_TOOLCHAINS or ~/.cache/golab/toolchains, filled by
//! scripts/fetch-toolchains.sh). Each command of the notes must appear, the values
//! golab checks must be right, and what golab prints for a command must be what real
//! dlv prints for it: the same commands are typed into `dlv exec` and the outputs
//! compared line by line (stack addresses, thread and process ids aside).

mod common;

use common::golab;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Pair {
    goroot: Option<PathBuf>,
    /// None: dlv on PATH (Debian's delve).
    dlv: Option<PathBuf>,
}

fn debian_pair() -> Pair {
    Pair {
        goroot: None,
        dlv: None,
    }
}

fn toolchains() -> PathBuf {
    std::env::var_os("GOLAB_TOOLCHAINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/golab/toolchains")
        })
}

fn pinned_pair() -> Pair {
    let t = toolchains();
    let (goroot, dlv) = (t.join("go1.17"), t.join("dlv-1.9.1/dlv"));
    assert!(
        goroot.join("bin/go").is_file() && dlv.is_file(),
        "the course's pinned pair (go1.17.1 + dlv 1.9.1) is not in {}: run scripts/fetch-toolchains.sh",
        t.display()
    );
    Pair {
        goroot: Some(goroot),
        dlv: Some(dlv),
    }
}

struct Ran {
    text: String,
    tour: Value,
    code: i32,
}

fn tour(p: &Pair, dir: &Path) -> Ran {
    let json = dir.join("tour.json");
    let mut c = golab();
    c.args(["tour", "startup-trace", "--all", "--json-file"])
        .arg(&json);
    if let Some(d) = &p.dlv {
        c.arg("--dlv").arg(d);
    }
    if let Some(r) = &p.goroot {
        c.arg("--goroot").arg(r);
    }
    let o = c.stdin(Stdio::null()).output().expect("golab runs");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        json.is_file(),
        "no tour JSON; stdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let tour: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    Ran {
        text,
        tour,
        code: o.status.code().unwrap_or(-1),
    }
}

fn checks(t: &Value) -> Vec<(String, String, String, bool)> {
    t["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap().clone())
        .map(|c| {
            (
                c["what"].as_str().unwrap().to_string(),
                c["expected"].as_str().unwrap().to_string(),
                c["observed"].as_str().unwrap().to_string(),
                c["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn check<'a>(
    all: &'a [(String, String, String, bool)],
    what: &str,
) -> &'a (String, String, String, bool) {
    all.iter()
        .find(|c| c.0.contains(what))
        .unwrap_or_else(|| panic!("no check '{what}' in {all:?}"))
}

/// A symbol's address in a binary built the way the tour builds, read by `nm`.
fn nm_symbol(p: &Pair, dir: &Path, sym: &str) -> u64 {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace");
    let b = dir.join("b");
    std::fs::create_dir_all(&b).unwrap();
    for f in ["main.go", "go.mod"] {
        std::fs::copy(src.join(f), b.join(f)).unwrap();
    }
    let go = p
        .goroot
        .as_ref()
        .map(|r| r.join("bin/go"))
        .unwrap_or("go".into());
    let mut c = Command::new(go);
    if let Some(r) = &p.goroot {
        c.env("GOROOT", r);
    }
    let o = c
        .current_dir(&b)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .args(["build", "-gcflags", "all=-l -N", "-o", "main", "."])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("nm").arg(b.join("main")).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(sym))
        .unwrap_or_else(|| panic!("nm shows no {sym}"));
    u64::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
}

fn assert_tour(p: &Pair, wrapper_only: bool) {
    let d = tempfile::tempdir().unwrap();
    let r = tour(p, d.path());
    assert_eq!(r.code, 0, "{}", r.text);
    // Every command of the notes' session, as typed at (dlv).
    for cmd in [
        "(dlv) regs\n",
        "(dlv) si\n",
        "(dlv) b runtime.rt0_go\n",
        "(dlv) c\n",
        "(dlv) bt\n",
        "(dlv) args\n",
        "(dlv) vars runtime.argc\n",
        "(dlv) vars runtime.physPageSize\n",
        "(dlv) s\n",
        "(dlv) so\n",
        "(dlv) disass",
        "(dlv) r\n",
        "(dlv) print &runtime.m0\n",
    ] {
        assert!(
            r.text.contains(cmd),
            "no `{}` in the tour:\n{}",
            cmd.trim(),
            r.text
        );
    }
    // dlv's console, not golab's: registers by name, listings with =>, stops with PC.
    assert!(
        r.text.contains("    Rdi = 0x0000000000000004\n"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("\n=> 161:\t") || r.text.contains("\n=>"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Process restarted with PID "), "{}", r.text);
    assert!(
        r.text.contains("> runtime.rt0_go() ")
            || r.text.contains("> [Breakpoint 1] runtime.rt0_go() "),
        "{}",
        r.text
    );
    // The wrapper's real callee is named.
    assert!(
        r.text.contains("goes to the real runtime.check at 0x"),
        "{}",
        r.text
    );
    if wrapper_only {
        assert!(r.text.contains("on the wrapper only"), "{}", r.text);
        assert!(r.text.contains("(dlv) b *0x"), "{}", r.text);
    }
    let all = checks(&r.tour);
    assert!(all.len() >= 15, "{all:?}");
    for c in &all {
        assert!(c.3, "check failed: {c:?}\n{}", r.text);
    }
    // Values checked against what golab knows independently, and again here.
    assert_eq!(check(&all, "DI holds argc").2, "4");
    assert_eq!(check(&all, "args(c): argc").2, "4");
    assert_eq!(check(&all, "runtime.argc after args").2, "4");
    let main_pc = nm_symbol(p, d.path(), "runtime.mainPC");
    assert_eq!(
        check(&all, "fn is &runtime.mainPC").2,
        format!("{main_pc:#x}")
    );
    assert!(
        r.text.contains(&format!("{main_pc:#x} is &runtime.mainPC"))
            || r.text.contains("= &runtime.mainPC"),
        "{}",
        r.text
    );
    let page = check(&all, "physPageSize").2.clone();
    assert_eq!(page, "4096");
    assert_eq!(check(&all, "maxmcount").2, "10000");
    let sysmon = r.tour["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["function"] == "runtime.sysmon")
        .expect("a sysmon section");
    let m0 = r.tour["sections"][2]["os_thread"].as_i64().unwrap();
    assert_ne!(sysmon["os_thread"].as_i64().unwrap(), m0);

    // The same commands, typed into real dlv: the same output.
    compare_with_real_dlv(p, &r.tour, d.path());
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' && it.peek() == Some(&'[') {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// What differs between two runs of the same binary: stack addresses, heap addresses,
/// thread and process ids.
fn normalise(s: &str) -> String {
    let mut out = Vec::new();
    for l in s.lines() {
        let words: Vec<String> = l
            .split_inclusive(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
            .map(|w| {
                let t = w.trim_end_matches(|c: char| {
                    c.is_whitespace() || c == '(' || c == ')' || c == ','
                });
                let tail = &w[t.len()..];
                let hexv = t
                    .strip_prefix("0x")
                    .and_then(|h| u64::from_str_radix(h, 16).ok());
                match hexv {
                    Some(v) if v >= 0xc000000000 => format!("ADDR{tail}"),
                    _ => w.to_string(),
                }
            })
            .collect();
        let mut l = words.concat();
        // A breakpoint on several addresses lists them in an order that changes from
        // run to run (dlv 1.20 and older): compare them as a set.
        for key in [" set at ", " cleared at "] {
            if let Some(i) = l.find(key)
                && let Some(j) = l[i + key.len()..].find(' ')
            {
                let start = i + key.len();
                let mut addrs: Vec<&str> = l[start..start + j].split(',').collect();
                addrs.sort();
                l = format!("{}{}{}", &l[..start], addrs.join(","), &l[start + j..]);
            }
        }
        // A value read from uninitialised stack (dlv 1.9.1's `siz` at newproc on go1.17):
        // the digits change from run to run; large decimals are not compared.
        // (the value can be small too, by chance: `siz` is not compared at all).
        if let Some((name, v)) = l.split_once(" = ")
            && !name.contains(' ')
            && (name == "siz" || v.parse::<i64>().is_ok_and(|n| n.unsigned_abs() > 1 << 24))
        {
            l = format!("{name} = BIG");
        }
        for key in ["PID ", "thread ", "LWP "] {
            if let Some(i) = l.find(key) {
                let rest: String = l[i + key.len()..]
                    .chars()
                    .skip_while(|c| c.is_ascii_digit())
                    .collect();
                l = format!("{}{key}N{rest}", &l[..i]);
            }
        }
        out.push(l);
    }
    out.join("\n")
}

fn compare_with_real_dlv(p: &Pair, t: &Value, dir: &Path) {
    // The sections up to newproc: one path through the program's start (later ones
    // depend on when sysmon's thread happens to stop).
    let mut cmds: Vec<(String, String)> = Vec::new();
    for s in t["sections"].as_array().unwrap() {
        if s["function"] == "runtime.newproc1" {
            break;
        }
        for e in s["entries"].as_array().unwrap() {
            cmds.push((
                e["command"].as_str().unwrap().to_string(),
                e["output"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert!(cmds.len() > 20, "{cmds:?}");
    let b = dir.join("real");
    std::fs::create_dir_all(&b).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace");
    for f in ["main.go", "go.mod"] {
        std::fs::copy(src.join(f), b.join(f)).unwrap();
    }
    let go = p
        .goroot
        .as_ref()
        .map(|r| r.join("bin/go"))
        .unwrap_or("go".into());
    let mut c = Command::new(go);
    if let Some(r) = &p.goroot {
        c.env("GOROOT", r);
    }
    let o = c
        .current_dir(&b)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .args(["build", "-gcflags", "all=-l -N", "-o", "main", "."])
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut child = Command::new(p.dlv.clone().unwrap_or("dlv".into()))
        .current_dir(&b)
        .env("GOMAXPROCS", "1")
        .args([
            "exec",
            "--allow-non-terminal-interactive=true",
            "--check-go-version=false",
            "./main",
            "--",
            "golab",
            "startup",
            "trace",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dlv runs");
    {
        let mut stdin = child.stdin.take().unwrap();
        for (c, _) in &cmds {
            writeln!(stdin, "{c}").unwrap();
        }
        writeln!(stdin, "exit").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let real = strip_ansi(&String::from_utf8_lossy(&o.stdout));
    // Piped, dlv prints its prompt and then the command's output on the same line.
    let parts: Vec<&str> = real.split("(dlv) ").skip(1).collect();
    assert!(parts.len() >= cmds.len(), "real dlv said:\n{real}");
    let mut compared = 0;
    for (i, (c, ours)) in cmds.iter().enumerate() {
        let theirs = parts[i];
        let (a, b) = (normalise(ours), normalise(theirs));
        assert_eq!(
            a, b,
            "`{c}` (command {i}): golab printed\n{ours}\nreal dlv printed\n{theirs}"
        );
        compared += 1;
    }
    assert_eq!(compared, cmds.len());
}

#[test]
fn tour_on_debians_pair_is_the_real_session() {
    assert_tour(&debian_pair(), false);
}

#[test]
fn tour_on_the_courses_pinned_pair_breaks_past_the_wrappers() {
    assert_tour(&pinned_pair(), true);
}

#[test]
fn tour_of_an_unknown_lab_is_refused_by_name() {
    let o = golab()
        .args(["tour", "runq-order", "--all"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("there is a tour of startup-trace only"),
        "{err}"
    );
}

#[test]
fn reference_scheduler_callers_prints_the_table_and_where_the_notes_differ() {
    let o = golab()
        .args(["reference", "scheduler-callers", "--go", "1.19.8"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = String::from_utf8_lossy(&o.stdout);
    for f in [
        "runtime.runqget ",
        "runtime.runqput ",
        "runtime.globrunqget ",
        "runtime.globrunqput ",
        "runtime.schedule ",
        "runtime.findRunnable ",
        "runtime.stealWork ",
        "runtime.execute ",
        "runtime.newproc1 ",
        "runtime.sysmon ",
    ] {
        assert!(t.contains(f), "no {f} in\n{t}");
    }
    assert!(
        t.contains("\"schedule calls runqget\" is not true in go1.19: true only up to Go 1.18"),
        "{t}"
    );
    // For the notes' own Go, every answer they gave holds.
    let o = golab()
        .args(["reference", "scheduler-callers", "--go", "1.17.1"])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(!t.contains("DIFFERS"), "{t}");
    assert_eq!(t.matches("notes: the same").count(), 7, "{t}");
}

/// `golab run --transcript`'s dlv-session.txt reads like a real session (listings,
/// the whole register file, pointers in hex with their symbol, the `c` before every
/// stop, `thread N` before another thread's stack), and golab's own transcript check
/// finds it consistent with the binary it came from.
#[test]
fn the_transcript_reads_like_dlv_and_checks_as_consistent() {
    let d = tempfile::tempdir().unwrap();
    let (tr, work, json) = (
        d.path().join("tr"),
        d.path().join("w"),
        d.path().join("o.json"),
    );
    let o = golab()
        .args(["run", "startup-trace", "-q", "--transcript"])
        .arg(&tr)
        .arg("--work")
        .arg(&work)
        .arg("--json-file")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        o.status.code().unwrap() <= 1,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(tr.join("dlv-session.txt")).unwrap();
    for want in [
        "(dlv) regs\n    Rip = 0x",
        "    Rdi = 0x",
        " Rflags = 0x",
        "(dlv) c\n> ",
        "\n=> ",
        "(dlv) print runtime.g0.m\n(*runtime.m)(0x",
        "is &runtime.m0\n",
        "is &runtime.mainPC\n",
        "(dlv) disass -a 0x",
        "TEXT runtime.check(SB) <autogenerated>\n",
        "goes to the real runtime.check at 0x",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
    // Every stack follows a stop: a `c` (or a `thread N` switch) comes first.
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if *l == "(dlv) bt" {
            let before = lines[..i]
                .iter()
                .rev()
                .find(|x| x.starts_with("(dlv) ") && **x != "(dlv) bt")
                .unwrap();
            assert!(
                *before == "(dlv) c"
                    || before.starts_with("(dlv) thread ")
                    || before.starts_with("(dlv) clear"),
                "line {}: bt after {before}",
                i + 1
            );
        }
        if l.starts_with("(dlv) thread ") {
            assert!(lines[i + 1].starts_with("Switched from "), "line {}", i + 2);
        }
    }
    // No pointer printed as a bare decimal number.
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let obs: golab::trace::Observation = serde_json::from_value(v["observation"].clone()).unwrap();
    let c = golab::grade::transcript::check(&text, &obs, &work.join("main"));
    assert!(c.genuine, "{:?}", c.findings);
}

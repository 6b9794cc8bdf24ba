//! What the integration tests share: the golab under test with the clone's labs, its
//! output, a batch's results, and the startup-trace answers a student would write.
//! Each test file that needs it says `mod common;` (Cargo builds it into each of them,
//! so a file uses only some of it).
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The clone's folder (the crate's manifest folder).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The clone's `labs/`.
pub fn labs() -> PathBuf {
    repo().join("labs")
}

/// The golab under test, reading the clone's labs.
pub fn golab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_golab"));
    c.env("GOLAB_LABS", labs());
    c
}

/// [`golab`] for the grading tests: a seed or toolchains folder set in the environment
/// that runs the tests does not reach it (either would change the outcomes).
pub fn grader() -> Command {
    let mut c = golab();
    c.env_remove("GOLAB_SEED").env_remove("GOLAB_TOOLCHAINS");
    c
}

/// Runs `c`: its output, stdout and stderr.
pub fn run(c: &mut Command) -> (Output, String, String) {
    let o = c.output().expect("golab runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    (o, out, err)
}

/// Runs `c`, which must succeed: stdout and stderr together.
pub fn ok(c: &mut Command) -> String {
    let (o, out, err) = run(c);
    let text = format!("{out}{err}");
    assert!(o.status.success(), "{text}");
    text
}

/// `golab grade SUBS --lab startup-trace ARGS... -o OUT` ([`grader`]), to run or spawn.
pub fn grade_command(subs: &Path, out: &Path, args: &[&str]) -> Command {
    let mut c = grader();
    c.arg("grade")
        .arg(subs)
        .args(["--lab", "startup-trace"])
        .args(args)
        .arg("-o")
        .arg(out);
    c
}

/// [`grade_command`], which must succeed: stdout and stderr together.
pub fn grade(subs: &Path, out: &Path, args: &[&str]) -> String {
    ok(&mut grade_command(subs, out, args))
}

/// A batch's result for `student` (`OUT/results/STUDENT.json`).
pub fn result(out: &Path, student: &str) -> Value {
    let p = out.join("results").join(format!("{student}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The startup chain as a student answers it (Go 1.17 to 1.19, -l -N).
pub const CHAIN: &str = "[_rt0_amd64_linux, _rt0_amd64, runtime.rt0_go, runtime.check, runtime.args, runtime.osinit, runtime.schedinit, runtime.newproc, runtime.newproc1, runtime.runqput, runtime.mstart, runtime.mstart0, runtime.mstart1, runtime.schedule, runtime.findRunnable, runtime.runqget, runtime.execute, runtime.gogo, runtime.main, main.main]";

/// A startup-trace answers.yaml.
pub fn answers(go: &str, entry: &str, chain: &str, why: &str) -> String {
    format!(
        "lab: startup-trace\ngo: \"{go}\"\nanswers:\n  entry-point: {{address: {entry}, symbol: _rt0_amd64_linux}}\n  startup-chain: {chain}\n  why-runnext: \"{why}\"\n"
    )
}

/// The entry point of the program in `h` built as the lab builds it (the system go,
/// `readelf -h`).
pub fn entry(h: &Path) -> String {
    let o = Command::new("go")
        .args(["build", "-gcflags", "all=-l -N", "-o", "main", "."])
        .current_dir(h)
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = Command::new("readelf")
        .arg("-h")
        .arg(h.join("main"))
        .output()
        .unwrap();
    std::fs::remove_file(h.join("main")).unwrap();
    String::from_utf8_lossy(&r.stdout)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Entry point address:")
                .map(|a| a.trim().to_string())
        })
        .unwrap()
}

/// Sets `p`'s modification time (of a link itself, not what it names).
pub fn touch(p: &Path, when: &str) {
    assert!(
        Command::new("touch")
            .args(["-h", "-d", when])
            .arg(p)
            .status()
            .unwrap()
            .success()
    );
}

/// The startup-trace lab's program with an `init` that dials 1.1.1.1:80, only when its
/// tracer is dlv or gdb (`only_under_debugger`), else always: the program that behaves
/// only where it believes no strace watches (attack F12).
pub fn dialing_program(only_under_debugger: bool) -> String {
    program_doing(
        only_under_debugger,
        r#"net.DialTimeout("tcp", "1.1.1.1:80", time.Second)"#,
        &["net", "time"],
    )
}

/// The startup-trace lab's program with an `init` that prints 8 MiB to stdout, only
/// under dlv or gdb (attack F1: the observer outside the cgroup read all of it).
pub fn flooding_program() -> String {
    program_doing(
        true,
        r#"line := strings.Repeat("x", 1<<16) + "\n"
				for i := 0; i < 128; i++ {
					os.Stdout.WriteString(line)
				}"#,
        &[],
    )
}

/// The lab's program with an `init` that runs `action` when traced by dlv or gdb (or
/// always, when not `only_under_debugger`); `imports` beyond os and strings.
fn program_doing(only_under_debugger: bool, action: &str, imports: &[&str]) -> String {
    let lab = std::fs::read_to_string(labs().join("startup-trace/main.go")).unwrap();
    let body = lab
        .split_once('\n')
        .map(|(package, rest)| {
            assert!(package.starts_with("package"), "{package}");
            rest
        })
        .unwrap();
    let (skip, act) = if only_under_debugger {
        ("pid == \"0\"", "c == \"dlv\" || c == \"gdb\"")
    } else {
        ("false", "c == c")
    };
    let imports: String = ["os", "strings"]
        .iter()
        .chain(imports)
        .map(|i| format!("\t\"{i}\"\n"))
        .collect();
    format!(
        r#"package main

import (
{imports})

func init() {{
	st, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(st), "\n") {{
		if strings.HasPrefix(l, "TracerPid:") {{
			pid := strings.TrimSpace(strings.TrimPrefix(l, "TracerPid:"))
			if {skip} {{
				return
			}}
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			c := strings.TrimSpace(string(comm))
			if {act} {{
				{action}
			}}
		}}
	}}
}}
{body}"#
    )
}

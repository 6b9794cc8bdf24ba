//! End-to-end: `golab` as a user runs it, with the real go, dlv, gdb and readelf
//! (Debian's golang-go and delve, installed by scripts/install-deps.sh).

mod common;

use common::{golab, run};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Processes whose command line or executable mentions `dir`.
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().to_string();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.parse::<u32>().is_err() {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let exe = std::fs::read_link(e.path().join("exe"))
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_default();
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('Z'))
                    .unwrap_or(false)
            })
            .unwrap_or(false);
        if !zombie && (cmd.contains(&needle) || exe.contains(&needle)) {
            v.push(format!("{name}: {cmd}"));
        }
    }
    v
}

/// [`processes_under`] once it is empty, or as it is after 10 s: processes killed with
/// SIGKILL end when the kernel next schedules them, which on a loaded machine (CI: two
/// cores, the tests in parallel) may be later than any fixed pause.
fn processes_left_under(dir: &Path) -> Vec<String> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = processes_under(dir);
        if left.is_empty() || std::time::Instant::now() >= until {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A lab folder made from the bundled one, with `edit` applied to its files.
fn lab_copy(edit: impl Fn(&Path)) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace");
    for f in ["main.go", "go.mod", "lab.yaml"] {
        std::fs::copy(src.join(f), d.path().join(f)).unwrap();
    }
    edit(d.path());
    d
}

#[test]
fn startup_trace_passes_on_the_host_and_records_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let tr = dir.path().join("transcript");
    let (o, out, err) = run(golab()
        .args(["run", "startup-trace", "--json-file"])
        .arg(&json)
        .arg("--transcript")
        .arg(&tr));
    assert!(o.status.success(), "golab run failed:\n{out}\n{err}");
    let last = out.lines().last().unwrap();
    let (earned, possible) = last
        .strip_prefix("Score: ")
        .unwrap()
        .split_once('/')
        .unwrap();
    assert_eq!(earned, possible, "{out}");
    assert!(
        out.lines().nth(1).unwrap().contains("dlv 1.") && out.contains("gdb "),
        "the header names the tools: {out}"
    );

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["schema"], "golab.run/1");
    let obs = &v["observation"];
    // The entry point, three witnesses and dlv's first stop.
    assert_eq!(obs["entry"]["symbol"], "_rt0_amd64_linux");
    assert_eq!(obs["entry"]["readelf"], obs["entry"]["elf"]);
    assert_eq!(obs["entry"]["gdb"], obs["entry"]["elf"]);
    // Every stop carries a stack; main.main was reached from runtime.main.
    let hits = obs["dlv"]["hits"].as_array().unwrap();
    assert!(
        hits.iter()
            .all(|h| !h["stack"].as_array().unwrap().is_empty())
    );
    let main = hits
        .iter()
        .find(|h| h["stack"][0]["function"] == "main.main")
        .expect("main.main was hit");
    assert_eq!(main["stack"][1]["function"], "runtime.main");
    // The newproc made by main.main's go statement is recorded despite hit limits.
    assert!(hits.iter().any(|h| {
        h["stack"][0]["function"] == "runtime.newproc"
            && h["stack"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["function"] == "main.main")
    }));
    // sysmon on a thread other than the first.
    let t0 = &hits[0]["thread"];
    assert!(
        hits.iter()
            .any(|h| h["stack"][0]["function"] == "runtime.sysmon" && &h["thread"] != t0)
    );
    // The verdict agrees with the exit code.
    assert!(
        v["verdict"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true)
    );

    // Transcripts: the JSON-RPC exchange, the dlv-style log, the gdb/MI log, readelf.
    let rpc = std::fs::read_to_string(tr.join("dlv-rpc.jsonl")).unwrap();
    assert!(rpc.contains("RPCServer.CreateBreakpoint") && rpc.contains("\"exited\":true"));
    let session = std::fs::read_to_string(tr.join("dlv-session.txt")).unwrap();
    assert!(
        session.contains("(dlv) b runtime.rt0_go")
            && session.contains("(dlv) bt")
            && session.contains("has exited with status 0")
    );
    assert!(
        std::fs::read_to_string(tr.join("gdb-mi.log"))
            .unwrap()
            .contains("*stopped,reason=\"breakpoint-hit\"")
    );
    assert!(
        std::fs::read_to_string(tr.join("readelf-h.txt"))
            .unwrap()
            .contains("Entry point address")
    );
}

#[test]
fn plain_progress_lines_go_to_stderr_when_not_a_terminal() {
    let (o, out, err) = run(golab().args(["run", "startup-trace"]));
    assert!(o.status.success(), "{out}{err}");
    assert!(err.lines().any(|l| l.starts_with("[1/6] ")), "{err}");
    assert!(!out.contains("[1/6]"));
}

#[test]
fn a_lab_file_with_an_unknown_key_names_file_line_and_key() {
    let lab = lab_copy(|d| {
        let y = std::fs::read_to_string(d.join("lab.yaml"))
            .unwrap()
            .replace(
                "  timeout_secs: 120",
                "  timeout_secs: 120\n  timeout_sec: 5",
            );
        std::fs::write(d.join("lab.yaml"), y).unwrap();
    });
    let (o, _, err) = run(golab().arg("run").arg(lab.path()));
    assert_eq!(o.status.code(), Some(2));
    let line_no = std::fs::read_to_string(lab.path().join("lab.yaml"))
        .unwrap()
        .lines()
        .position(|l| l.contains("timeout_sec:"))
        .unwrap()
        + 1;
    assert!(
        err.contains("lab.yaml")
            && err.contains(&format!("line {line_no},"))
            && err.contains("unknown field `timeout_sec`"),
        "{err}"
    );
}

#[test]
fn a_program_that_does_not_compile_shows_the_compilers_words() {
    let lab = lab_copy(|d| {
        std::fs::write(
            d.join("main.go"),
            "package main\nfunc main() { undefinedThing() }\n",
        )
        .unwrap()
    });
    let (o, _, err) = run(golab().arg("run").arg(lab.path()).arg("-q"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("go build") && err.contains("undefined: undefinedThing"),
        "{err}"
    );
}

#[test]
fn a_missing_tool_names_the_fix() {
    let (o, _, err) =
        run(golab().args(["run", "startup-trace", "-q", "--dlv", "/nonexistent/dlv"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("/nonexistent/dlv does not exist") && err.contains("--dlv"),
        "{err}"
    );
    // No gdb on PATH: the doctor's fix.
    let bin = tempfile::tempdir().unwrap();
    for t in ["go", "dlv", "readelf"] {
        let p = which(t);
        std::os::unix::fs::symlink(p, bin.path().join(t)).unwrap();
    }
    let (o, _, err) = run(golab()
        .args(["run", "startup-trace", "-q"])
        .env("PATH", bin.path())
        .env_remove("GOLAB_GDB"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("gdb is not installed") && err.contains("apt-get install -y gdb"),
        "{err}"
    );
}

fn which(t: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(t))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{t} not on PATH"))
}

/// A lab program that loops forever.
const NEVER_ENDS: &str = "package main\n\nfunc main() {\n\tfor {\n\t}\n}\n\nfunc args() {}\n";

#[test]
fn a_program_that_never_ends_times_out_and_leaves_no_process_behind() {
    let lab = lab_copy(|d| {
        std::fs::write(d.join("main.go"), NEVER_ENDS).unwrap();
        let y = std::fs::read_to_string(d.join("lab.yaml"))
            .unwrap()
            .replace("timeout_secs: 120", "timeout_secs: 8");
        std::fs::write(d.join("lab.yaml"), y).unwrap();
    });
    let work = tempfile::tempdir().unwrap();
    let (o, _, err) = run(golab()
        .arg("run")
        .arg(lab.path())
        .arg("-q")
        .arg("--work")
        .arg(work.path()));
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("deadline"), "{err}");
    assert_eq!(
        processes_left_under(work.path()),
        Vec::<String>::new(),
        "processes left behind"
    );
}

#[test]
fn an_interrupt_stops_the_debuggers_and_the_program_it_started() {
    // The program never ends, so golab is surely still at work when the signal comes.
    let lab = lab_copy(|d| {
        std::fs::write(d.join("main.go"), NEVER_ENDS).unwrap();
    });
    let work = tempfile::tempdir().unwrap();
    let mut child = golab()
        .arg("run")
        .arg(lab.path())
        .arg("-q")
        .arg("--work")
        .arg(work.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the built program itself runs under a debugger: traced, it would go on
    // looping after its tracer died.
    let program = format!("{} ", work.path().join("main").display());
    let t = std::time::Instant::now();
    while !processes_under(work.path()).iter().any(|p| {
        p.split_once(": ")
            .is_some_and(|(_, cmd)| cmd.starts_with(&program))
    }) {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(120),
            "no debugger started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "golab ended before a debugger started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let running = processes_under(work.path());
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(
        processes_left_under(work.path()),
        Vec::<String>::new(),
        "left behind after the interrupt (running before it: {running:?})"
    );
}

#[test]
fn doctor_lists_the_tools_and_their_fixes() {
    let (o, out, _) = run(golab().arg("doctor"));
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("ok   go go1.")
            && out.contains("ok   dlv ")
            && out.contains("ok   ptrace works"),
        "{out}"
    );
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(which("go"), bin.path().join("go")).unwrap();
    let (o, out, _) = run(golab().arg("doctor").env("PATH", bin.path()));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out.contains("FAIL dlv is not installed") && out.contains("fix: apt-get install -y delve"),
        "{out}"
    );
}

#[test]
fn labs_lists_the_bundled_labs() {
    let (o, out, _) = run(golab().arg("labs"));
    assert!(o.status.success());
    assert!(
        out.lines().any(|l| l.starts_with("startup-trace ")),
        "{out}"
    );
}

#[test]
fn reference_prints_the_go117_chain_without_go117_installed() {
    let (o, out, _) = run(golab().args(["reference", "startup-trace", "--go", "1.17.1"]));
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("runtime.mstart0")
            && out.contains("runtime.findrunnable")
            && out.contains("via its ABI0 wrapper"),
        "{out}"
    );
    let (_, out15, _) = run(golab().args(["reference", "startup-trace", "--go", "1.15"]));
    assert!(
        !out15.contains("runtime.mstart0") && !out15.contains("via its ABI0 wrapper"),
        "{out15}"
    );
    let (o, _, err) = run(golab().args(["reference", "startup-trace", "--go", "1.99"]));
    assert!(o.status.success() && err.contains("nearest"), "{err}");
}

#[test]
fn scheduler_callers_agree_with_the_source_table_for_the_installed_go() {
    // `--json`: the document on stdout instead of the report.
    let (o, out, err) = run(golab().args(["run", "scheduler-callers", "-q", "--json"]));
    assert!(o.status.success(), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["schema"], "golab.run/1");
    // The machine code was really read: schedule has several callers in it.
    let sched = v["observation"]["static_callers"]["runtime.schedule"]
        .as_array()
        .unwrap();
    assert!(sched.len() >= 5, "{sched:?}");
    // The breakpoints really stopped in the scheduler.
    let hits = v["observation"]["dlv"]["hits"].as_array().unwrap();
    assert!(
        hits.iter()
            .filter(|h| h["stack"][0]["function"] == "runtime.execute")
            .count()
            >= 5
    );
}

#[test]
fn runq_order_observes_what_the_model_predicts_for_a_full_local_queue() {
    // N=257 overflows the 256-slot local ring: runqputslow moves half to the global queue.
    for sc in ["n5", "n257"] {
        let (o, out, err) = run(golab().args(["run", "runq-order", "-q", "-v", "--scenario", sc]));
        assert!(o.status.success(), "{sc}:\n{out}\n{err}");
        assert!(
            out.contains(&format!("{sc} (./main")) && out.contains("[1/1]"),
            "{out}"
        );
    }
    let (o, _, err) = run(golab().args(["run", "runq-order", "-q", "--scenario", "n7"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("no scenario 'n7'") && err.contains("n257"),
        "{err}"
    );
}

#[test]
fn explain_shows_the_queues_step_by_step() {
    let (o, out, _) = run(golab().args(["explain", "runq-order", "--n", "300"]));
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("runnext=") && out.contains("global(") && out.contains("local("),
        "{out}"
    );
    // The ring overflows once: runqputslow is named where it happens.
    assert!(
        out.to_lowercase().contains("runqputslow"),
        "{}",
        &out[..out.len().min(3000)]
    );
    let last = out.lines().rfind(|l| l.starts_with("order: ")).unwrap();
    assert_eq!(last.split_whitespace().count(), 301);
}

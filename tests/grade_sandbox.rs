//! Hostile submissions graded in the sandbox: each gets its own named verdict, within its
//! limits, and the batch goes on. The programs are the fixtures in tests/fixtures/hostile.
//!
//! These tests need bubblewrap and cgroups (memory, pids, cpu): without them they fail,
//! never skip (`sandbox_is_available`).
#![cfg(target_os = "linux")]

mod common;

use common::{grade_command, result};
use serde_json::Value;

/// The tests share the sandbox's uids (and the kill -9 test counts every process of
/// them), so they run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static M: std::sync::Mutex<()> = std::sync::Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}
use std::path::{Path, PathBuf};
use std::process::Command;

/// The sandbox's tools and cgroups are there, or the suite fails saying what is missing.
fn sandbox_is_available() {
    golab::grade::sandbox::available(true)
        .expect("the sandbox suite needs bubblewrap and strace (scripts/install-deps.sh)");
    golab::grade::sandbox::cgroup::available()
        .expect("the sandbox suite needs cgroups: memory, pids and cpu (v1) or v2");
}

#[test]
fn hostile_programs_each_get_their_own_verdict_and_the_batch_goes_on() {
    let _one_at_a_time = serial();
    sandbox_is_available();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile");
    // The grader's work folder must be reachable by the sandbox's unprivileged uids.
    let dir = tempfile::Builder::new()
        .prefix("golab-grade-")
        .tempdir_in("/tmp")
        .unwrap();
    let subs = dir.path().join("subs");
    let answers = "lab: startup-trace\nanswers:\n  why-runnext: locality\n";
    let cases = [
        ("ann", "well-behaved", "graded"),
        ("bea", "loops-forever", "timeout"),
        ("cid", "fork-bomb", "process-limit"),
        ("dot", "big-output", "output-limit"),
        ("eve", "network", "network-denied"),
        ("fay", "memory-hog", "memory-limit"),
        ("gus", "compile-error", "compile-error"),
    ];
    for (student, fixture, _) in cases {
        let to = subs.join(student);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(fixtures.join(fixture).join("main.go"), to.join("main.go")).unwrap();
        std::fs::write(to.join("answers.yaml"), answers).unwrap();
    }
    // Reads another student's submission from its own folder: ../../ann is hidden.
    let hal = subs.join("hal");
    std::fs::create_dir_all(&hal).unwrap();
    std::fs::write(hal.join("main.go"), "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tb, err := os.ReadFile(\"../../ann/submission/answers.yaml\")\n\tfmt.Println(string(b), err)\n}\n").unwrap();
    std::fs::write(hal.join("answers.yaml"), answers).unwrap();

    let out = dir.path().join("out");
    let start = std::time::Instant::now();
    let o = grade_command(&subs, &out, &["--program-seconds", "10", "-j", "2", "-q"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for (student, _, outcome) in cases {
        let r = result(&out, student);
        assert_eq!(r["outcome"], outcome, "{student}: {r}");
    }
    let hal = result(&out, "hal");
    assert_eq!(hal["outcome"], "escape-denied", "{hal}");
    assert!(
        hal["message"]
            .as_str()
            .unwrap()
            .contains("outside its own folder")
    );
    // The well-behaved one was graded in full, hostile neighbours notwithstanding.
    assert_eq!(result(&out, "ann")["questions"][2]["answer"], "locality");
    // Nothing of the sandboxes' uids is left running.
    for slot in 0..2 {
        assert!(
            golab::grade::sandbox::processes_of_uid(golab::grade::sandbox::first_uid() + slot)
                .is_empty()
        );
    }
    assert!(
        start.elapsed().as_secs() < 240,
        "the batch took {:?}",
        start.elapsed()
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile")
        .join(name)
        .join("main.go")
}

fn sha256(p: &Path) -> String {
    golab::grade::sandboxed::sha256_file(p).unwrap()
}

/// Every file under `dir` (no links followed), with its size.
fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            // (Paths past PATH_MAX, in the deep tree, are not looked into.)
            let Ok(md) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), md.len()));
            }
        }
    }
    out
}

/// `depth` nested folders under `at`, made relative to an open folder each time (the
/// whole path is longer than PATH_MAX).
fn deep_tree(at: &Path, depth: usize) {
    use std::os::unix::ffi::OsStrExt;
    std::fs::create_dir_all(at).unwrap();
    let c = std::ffi::CString::new(at.as_os_str().as_bytes()).unwrap();
    let d = c"d";
    // SAFETY: plain *at system calls on fds this function owns.
    unsafe {
        let mut fd = libc::open(c.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
        assert!(fd >= 0);
        for _ in 0..depth {
            assert_eq!(libc::mkdirat(fd, d.as_ptr(), 0o755), 0);
            let next = libc::openat(fd, d.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
            assert!(next >= 0);
            libc::close(fd);
            fd = next;
        }
        libc::close(fd);
    }
}

fn grade(subs: &Path, out: &Path) -> (String, String) {
    // Room for touching 2 GiB of shared memory on a loaded machine.
    let o = grade_command(subs, out, &["--program-seconds", "30", "-j", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Issue 10's ten findings, each a submission in one batch: the outcome a fair grader
/// gives, and nothing else changed (honest students' results, the build store, the
/// host's disk, the files a submission could not have sent).
#[test]
fn the_ten_findings_of_issue_10_each_get_a_fair_outcome() {
    let _one_at_a_time = serial();
    sandbox_is_available();
    let dir = tempfile::Builder::new()
        .prefix("golab-grade-10-")
        .tempdir_in("/tmp")
        .unwrap();
    let subs = dir.path().join("subs");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&subs).unwrap();
    let honest =
        |name: &str| format!("lab: startup-trace\nanswers:\n  why-runnext: locality # {name}\n");
    let send = |student: &str, program: Option<&Path>, answers: &str| {
        let to = subs.join(student);
        std::fs::create_dir_all(&to).unwrap();
        if let Some(p) = program {
            std::fs::copy(p, to.join("main.go")).unwrap();
        }
        std::fs::write(to.join("answers.yaml"), answers).unwrap();
    };
    // The answers a forged observation would have made right (finding 1).
    let forged_answers = "lab: startup-trace\nanswers:\n  entry-point: {address: 0x401000, symbol: _forged}\n  why-runnext: locality # forger\n";
    // Honest students, before and after the hostile ones in every order.
    for s in ["aaa-honest", "mmm-honest", "zzz-honest"] {
        send(s, None, &honest(s));
    }
    // 1. A forged observation, the observer stopped; 8. ... or killed.
    send("f1-stop", Some(&fixture("observer-stop")), forged_answers);
    send(
        "f8-kill",
        Some(&fixture("observer-kill")),
        &honest("f8-kill"),
    );
    // 2. The binary and lab.yaml replaced under the observer.
    send("f2-swap", Some(&fixture("swap-binary")), &honest("f2-swap"));
    // 3. The build cache of the next students corrupted, from the program: every cache it
    // could name (the warm cache's real path, GOCACHE, HOME's).
    let warm = out.join("work/.gocache");
    let poison = format!(
        "// Fixture (issue 10, finding 3): overwrites every Go build cache file it can reach.\npackage main\n\nimport (\n\t\"fmt\"\n\t\"io/fs\"\n\t\"os\"\n\t\"path/filepath\"\n)\n\nfunc main() {{\n\thome, _ := os.UserHomeDir()\n\tn := 0\n\tfor _, root := range []string{{{:?}, os.Getenv(\"GOCACHE\"), home + \"/.cache/go-build\"}} {{\n\t\tfilepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {{\n\t\t\tif err == nil && !d.IsDir() && os.WriteFile(p, []byte(\"poison\"), 0o644) == nil {{\n\t\t\t\tn++\n\t\t\t}}\n\t\t\treturn nil\n\t\t}})\n\t}}\n\tfmt.Println(\"poisoned\", n)\n}}\n",
        warm.display().to_string()
    );
    std::fs::create_dir_all(subs.join("f3-cache")).unwrap();
    std::fs::write(subs.join("f3-cache/main.go"), poison).unwrap();
    std::fs::write(subs.join("f3-cache/answers.yaml"), honest("f3-cache")).unwrap();
    // 4. Shared memory past the limit.
    send("f4-shm", Some(&fixture("shm-hog")), &honest("f4-shm"));
    // 5. A disk filled.
    send("f5-disk", Some(&fixture("disk-fill")), &honest("f5-disk"));
    // 6. A hard link to a root-only file.
    let secret = dir.path().join("root-only");
    std::fs::write(&secret, "TOP-SECRET-4242\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    send("f6-link", None, &honest("f6-link"));
    std::fs::hard_link(&secret, subs.join("f6-link/notes.txt")).unwrap();
    // 7. Misbehaves only under a debugger.
    send("f7-dbg", Some(&fixture("debugger-only")), &honest("f7-dbg"));
    // 8. 2,100 nested folders.
    send("f8-deep", None, &honest("f8-deep"));
    deep_tree(&subs.join("f8-deep/tree"), 2100);
    // 9. Names that are no student id, and one student twice.
    for bad in ["=cmd", "a<b&c>", "new\nline"] {
        send(bad, None, &honest("bad"));
    }
    send("bob", None, &honest("bob"));
    std::fs::write(subs.join("bob.zip"), b"PK\x05\x06").unwrap();
    // 10. A key twice; answers.yaml copied byte for byte; a transcript typed from nm.
    send(
        "f10-dupkey",
        None,
        "lab: startup-trace\nanswers:\n  why-runnext: locality\n  why-runnext: fairness\n",
    );
    let copied = "lab: startup-trace\nanswers:\n  why-runnext: copied word for word\n";
    send("f10-copy1", None, copied);
    send("f10-copy2", None, copied);
    let build = dir.path().join("nm-build");
    std::fs::create_dir_all(&build).unwrap();
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace");
    for f in ["main.go", "go.mod"] {
        std::fs::copy(lab.join(f), build.join(f)).unwrap();
    }
    let b = Command::new("go")
        .args(["build", "-gcflags", "all=-l -N", "-o", "main", "."])
        .env("GOTOOLCHAIN", "local")
        .current_dir(&build)
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let nm = Command::new("go")
        .args(["tool", "nm", "main"])
        .current_dir(&build)
        .output()
        .unwrap();
    let nm = String::from_utf8_lossy(&nm.stdout);
    let addr = |sym: &str| -> String {
        let l = nm
            .lines()
            .find(|l| l.ends_with(&format!(" T {sym}")))
            .unwrap_or_else(|| panic!("{sym} not in go tool nm"));
        format!(
            "0x{}",
            l.split_whitespace().next().unwrap().trim_start_matches('0')
        )
    };
    let typed = format!(
        "(dlv) b runtime.rt0_go\nBreakpoint 1 set at {} for runtime.rt0_go() asm_amd64.s:161\n(dlv) b runtime.schedinit\nBreakpoint 2 set at {} for runtime.schedinit() proc.go:666\n(dlv) c\n> [Breakpoint 1] runtime.rt0_go() asm_amd64.s:161 (hits goroutine(0):1 total:1) (PC: {})\n(dlv) c\n> [Breakpoint 2] runtime.schedinit() proc.go:666 (hits goroutine(0):1 total:1) (PC: {})\n",
        addr("runtime.rt0_go.abi0"),
        addr("runtime.schedinit"),
        addr("runtime.rt0_go.abi0"),
        addr("runtime.schedinit")
    );
    send(
        "f10-nm",
        None,
        "lab: startup-trace\ntranscript: dlv.txt\nanswers:\n  why-runnext: locality # nm\n",
    );
    std::fs::write(subs.join("f10-nm/dlv.txt"), typed).unwrap();

    // ... and one real dlv session (golab run's transcript) sent by two students.
    let tr = dir.path().join("tr");
    let lab_copy = dir.path().join("lab-copy");
    std::fs::create_dir_all(&lab_copy).unwrap();
    for e in std::fs::read_dir(&lab).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), lab_copy.join(e.file_name())).unwrap();
        }
    }
    let o = Command::new(env!("CARGO_BIN_EXE_golab"))
        .arg("run")
        .arg(&lab_copy)
        .arg("-q")
        .arg("--transcript")
        .arg(&tr)
        .output()
        .unwrap();
    assert!(o.status.code().unwrap() <= 1, "{o:?}");
    let session = std::fs::read_to_string(tr.join("dlv-session.txt")).unwrap();
    for s in ["f10-tr1", "f10-tr2"] {
        send(
            s,
            None,
            &format!(
                "lab: startup-trace\ntranscript: dlv.txt\nanswers:\n  why-runnext: mine # {s}\n"
            ),
        );
        std::fs::write(subs.join(s).join("dlv.txt"), &session).unwrap();
    }

    let start = std::time::Instant::now();
    let (table, _) = grade(&subs, &out);
    eprintln!("{table}\nthe batch took {:?}", start.elapsed());
    let outcome = |s: &str| result(&out, s)["outcome"].as_str().unwrap().to_string();
    let results = out.join("results");

    // 1 and 8: the program that stopped or killed its observer gets observer-killed, 0
    // points, and the forged entry point was never read.
    for s in ["f1-stop", "f8-kill"] {
        let r = result(&out, s);
        assert_eq!(r["outcome"], "observer-killed", "{s}: {r}");
        assert_eq!(r["score"], 0.0, "{s}: {r}");
    }
    assert!(
        !std::fs::read_to_string(results.join("f1-stop.json"))
            .unwrap()
            .contains("right"),
        "a forged answer was graded right"
    );
    // 2: graded on the grader's binary, which it could not replace; lab.yaml unchanged.
    let r = result(&out, "f2-swap");
    assert_eq!(r["outcome"], "graded", "{r}");
    let sha = r["binary_sha256"].as_str().unwrap().to_string();
    assert_eq!(sha, sha256(&out.join("work/f2-swap/lab/work/main")));
    assert_eq!(
        std::fs::read(out.join("work/f2-swap/lab/lab.yaml")).unwrap(),
        std::fs::read(lab.join("lab.yaml")).unwrap()
    );
    // The build store holds only binaries golab built: each equals the result that used it.
    let store: Vec<(PathBuf, u64)> = files_under(&out.join("work/.builds"));
    assert!(!store.is_empty());
    let graded_shas: Vec<String> = std::fs::read_dir(&results)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?;
            v["binary_sha256"].as_str().map(str::to_string)
        })
        .collect();
    for (p, _) in &store {
        assert!(
            graded_shas.contains(&sha256(p)),
            "{} is no binary a result was graded on",
            p.display()
        );
    }
    // 3: nothing of the warm cache changed (root's, read-only), honest students graded.
    let r = result(&out, "f3-cache");
    assert_eq!(r["outcome"], "graded", "{r}");
    for (p, _) in files_under(&warm) {
        if p.file_name().is_some_and(|n| n == "complete") {
            continue;
        }
        assert_ne!(std::fs::read(&p).unwrap(), b"poison", "{}", p.display());
    }
    for s in ["aaa-honest", "mmm-honest", "zzz-honest"] {
        let r = result(&out, s);
        assert_eq!(r["outcome"], "graded", "{s}: {r}");
        assert_eq!(r["questions"][2]["answer"], "locality", "{s}: {r}");
    }
    // 4: shared memory counts.
    assert_eq!(
        outcome("f4-shm"),
        "memory-limit",
        "{}",
        result(&out, "f4-shm")
    );
    // 5: its folder is read-only, its /tmp a size-capped tmpfs, and a file past the
    // size limit ends the run (SIGXFSZ): output-limit. Nothing written on the host's
    // disk: no "fill" file anywhere, the student's folder small.
    assert_eq!(
        outcome("f5-disk"),
        "output-limit",
        "{}",
        result(&out, "f5-disk")
    );
    let all = files_under(dir.path());
    assert!(
        !all.iter()
            .any(|(p, _)| p.file_name().is_some_and(|n| n == "fill")),
        "a fill file was left on the host"
    );
    let f5: u64 = files_under(&out.join("work/f5-disk"))
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert!(f5 < 32 << 20, "f5-disk's folder holds {f5} bytes");
    // 6: the hard link is refused; the secret is nowhere in the output.
    let r = result(&out, "f6-link");
    assert_eq!(r["outcome"], "unsafe-archive", "{r}");
    assert!(r["message"].as_str().unwrap().contains("hard link"), "{r}");
    for (p, _) in files_under(&out) {
        if let Ok(t) = std::fs::read(&p) {
            assert!(
                !t.windows(15).any(|w| w == b"TOP-SECRET-4242"),
                "{} holds the root-only file's contents",
                p.display()
            );
        }
    }
    // 7: misbehaving only under the debugger is caught there.
    assert_eq!(
        outcome("f7-dbg"),
        "process-limit",
        "{}",
        result(&out, "f7-dbg")
    );
    // 8: a tree that cannot be unpacked is the submission's, not golab's.
    let r = result(&out, "f8-deep");
    assert_eq!(r["outcome"], "unsafe-archive", "{r}");
    // 9: each bad name has its own result; the batch went on; ids escaped everywhere.
    let unusable: Vec<Value> = std::fs::read_dir(&results)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("unusable-"))
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap())
        .collect();
    assert_eq!(unusable.len(), 3, "{unusable:?}");
    assert!(unusable.iter().all(|r| r["outcome"] == "unusable-name"));
    assert_eq!(outcome("bob"), "duplicate-submission");
    let csv = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    for raw in ["=cmd", "a<b&c>", "new\nline"] {
        assert!(!csv.contains(raw), "{raw:?} in gradebook.csv");
    }
    for raw in ["a<b&c>", "new\nline"] {
        assert!(!junit.contains(raw), "{raw:?} unescaped in junit.xml");
    }
    assert!(
        junit.contains("a&lt;b&amp;c&gt;"),
        "the name is in junit.xml, escaped"
    );
    serde_json::from_str::<Value>(&std::fs::read_to_string(out.join("results.json")).unwrap())
        .unwrap();
    // 10: the duplicate key, the copies, the typed transcript.
    let r = result(&out, "f10-dupkey");
    assert_eq!(r["outcome"], "invalid-answers", "{r}");
    assert!(r["message"].as_str().unwrap().contains("line 4"), "{r}");
    let batch: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let flags = |s: &str| -> String {
        batch["submissions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["student"] == s)
            .map(|r| match &r["flags"] {
                // No flags: the field is left out.
                Value::Null => "[]".to_string(),
                f => f.to_string(),
            })
            .unwrap()
    };
    assert!(
        flags("f10-copy1").contains("f10-copy2"),
        "{}",
        flags("f10-copy1")
    );
    assert!(flags("f10-copy2").contains("f10-copy1"));
    assert_eq!(flags("aaa-honest"), "[]");
    assert!(
        flags("f10-tr1").contains("f10-tr2") && flags("f10-tr1").contains("stack address"),
        "{}",
        flags("f10-tr1")
    );
    assert!(flags("f10-tr2").contains("f10-tr1"));
    let t = &result(&out, "f10-nm")["transcript"];
    assert_eq!(t["genuine"], false, "{t}");
    assert!(
        t["findings"].to_string().contains("runtime.schedinit"),
        "{t}"
    );

    // Nothing is left running, and a rerun regrades none of these outcomes.
    for slot in 0..2 {
        assert!(
            golab::grade::sandbox::processes_of_uid(golab::grade::sandbox::first_uid() + slot)
                .is_empty()
        );
    }
    let before: Vec<(PathBuf, Vec<u8>)> = files_under(&results)
        .into_iter()
        .map(|(p, _)| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let (_, err) = grade(&subs, &out);
    assert!(err.contains("already graded"), "{err}");
    for (p, text) in before {
        assert_eq!(std::fs::read(&p).unwrap(), text, "{} changed", p.display());
    }
}

/// `golab grade` killed with -9 while it grades (a debugger session is running): no
/// observer, debugger or program is left behind, and a rerun grades only what was not
/// finished, keeping every result already written.
#[test]
fn a_grader_killed_with_9_leaves_nothing_running_and_a_rerun_finishes() {
    let _one_at_a_time = serial();
    sandbox_is_available();
    let dir = tempfile::Builder::new()
        .prefix("golab-grade-kill-")
        .tempdir_in("/tmp")
        .unwrap();
    let subs = dir.path().join("subs");
    for s in ["k1", "k2", "k3", "k4"] {
        std::fs::create_dir_all(subs.join(s)).unwrap();
        std::fs::write(
            subs.join(s).join("answers.yaml"),
            format!("lab: startup-trace\nanswers:\n  why-runnext: locality # {s}\n"),
        )
        .unwrap();
    }
    let out = dir.path().join("out");
    let mut child = grade_command(&subs, &out, &["-j", "2", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the first result is written: the other slot is mid-run.
    let results = out.join("results");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    // (A result being written is a `.tmp` file first: not one yet.)
    let written = || {
        std::fs::read_dir(&results).map_or(0, |d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
    };
    while written() == 0 {
        assert!(std::time::Instant::now() < deadline, "no result in 300 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&results)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect();
    assert!(!kept.is_empty() && kept.len() < 4, "{} results", kept.len());
    // The observer dies with the grader, its debuggers with it (within a moment).
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left: Vec<u32> = (0..2)
            .flat_map(|s| {
                golab::grade::sandbox::processes_of_uid(golab::grade::sandbox::first_uid() + s)
            })
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "sandbox processes left: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The quota tmpfs was mounted in the grader's own mount namespace: gone with it.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("golab-quota") && !mounts.contains("golab-cache"),
        "a quota mount outlived the grader:\n{mounts}"
    );
    let (_, err) = grade(&subs, &out);
    assert!(
        err.contains(&format!("{} of 4 submissions already graded", kept.len())),
        "{err}"
    );
    for (p, text) in kept {
        assert_eq!(std::fs::read(&p).unwrap(), text, "{} changed", p.display());
    }
    for s in ["k1", "k2", "k3", "k4"] {
        assert_eq!(result(&out, s)["outcome"], "graded", "{s}");
    }
}

/// Every place a submission's build or program can write is a size-capped tmpfs: a build
/// that writes past it (a 56 MiB initialised array: object, cache entry and binary, each
/// under the per-file limit) and a program that fills /tmp with files under that limit
/// both get `disk-limit`; the honest student beside them is graded; nothing of it is on
/// the host's disk afterwards, and a rerun regrades neither.
#[test]
fn every_writable_place_has_a_disk_quota() {
    let _one_at_a_time = serial();
    sandbox_is_available();
    let dir = tempfile::Builder::new()
        .prefix("golab-grade-disk-")
        .tempdir_in("/tmp")
        .unwrap();
    let subs = dir.path().join("subs");
    let out = dir.path().join("out");
    for (s, program) in [
        ("honest", None),
        ("build-fill", Some("build-fill")),
        ("tmp-fill", Some("tmp-fill")),
    ] {
        let to = subs.join(s);
        std::fs::create_dir_all(&to).unwrap();
        if let Some(p) = program {
            std::fs::copy(fixture(p), to.join("main.go")).unwrap();
        }
        std::fs::write(
            to.join("answers.yaml"),
            format!("lab: startup-trace\nanswers:\n  why-runnext: locality # {s}\n"),
        )
        .unwrap();
    }
    let (table, _) = grade(&subs, &out);
    for s in ["build-fill", "tmp-fill"] {
        let r = result(&out, s);
        assert_eq!(r["outcome"], "disk-limit", "{s}: {r}\n{table}");
        assert_eq!(r["score"], 0.0, "{s}: {r}");
        assert!(r["message"].as_str().unwrap().contains("128 MiB"), "{r}");
    }
    let r = result(&out, "honest");
    assert_eq!(r["outcome"], "graded", "{r}");
    assert_eq!(r["questions"][2]["answer"], "locality", "{r}");
    // The host's disk: no fill file anywhere, no binary of the filler, the students'
    // folders small, the quota's folders gone (unmounted and removed).
    let all = files_under(dir.path());
    assert!(
        !all.iter().any(|(p, _)| p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("fill-"))),
        "a fill file was left on the host"
    );
    for s in ["honest", "build-fill", "tmp-fill"] {
        let n: u64 = files_under(&out.join("work").join(s))
            .iter()
            .map(|(_, n)| n)
            .sum();
        assert!(n < 16 << 20, "{s}'s folder holds {n} bytes");
    }
    let scratch: Vec<_> = std::fs::read_dir(out.join("work/.scratch"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        scratch.is_empty(),
        "left in the quota's folder: {scratch:?}"
    );
    let before: Vec<(PathBuf, Vec<u8>)> = files_under(&out.join("results"))
        .into_iter()
        .map(|(p, _)| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let (_, err) = grade(&subs, &out);
    assert!(err.contains("3 of 3 submissions already graded"), "{err}");
    for (p, text) in before {
        assert_eq!(std::fs::read(&p).unwrap(), text, "{} changed", p.display());
    }
}

/// The attacker's second round (issue 10): each finding in golab's grading code gets the
/// outcome a fair grader gives, and the students beside it are graded as before.
/// - A transcript named `/dev/zero` is refused unread, and the batch finishes (F2).
/// - A made-up transcript listing thousands of thread ids frames nobody, and keeps no
///   per-run values (F10); an honest transcript with a thread switch is not flagged.
/// - `package notmain` builds an archive, not a program: `compile-error`, and nothing of
///   it reaches the build store (F5).
/// - A program that spins on every CPU only under a debugger: `cpu-limit` (F6).
/// - answers.yaml that is a folder: `invalid-answers`, not `grader-error` (F5).
/// - A 3 GiB sparse file in a folder: `unsafe-archive`, hashed without being read (F8).
#[test]
fn the_second_round_of_attacks_each_get_a_fair_outcome() {
    let _one_at_a_time = serial();
    sandbox_is_available();
    let dir = tempfile::Builder::new()
        .prefix("golab-grade-r2-")
        .tempdir_in("/tmp")
        .unwrap();
    let subs = dir.path().join("subs");
    let out = dir.path().join("out");
    let send = |s: &str, program: Option<&str>, extra: &str| {
        let to = subs.join(s);
        std::fs::create_dir_all(&to).unwrap();
        if let Some(p) = program {
            std::fs::write(to.join("main.go"), p).unwrap();
        }
        std::fs::write(
            to.join("answers.yaml"),
            format!("lab: startup-trace\n{extra}answers:\n  why-runnext: locality # {s}\n"),
        )
        .unwrap();
    };
    // A real session of the lab's program (what every student here builds), with one
    // thread switch as a session that follows sysmon has.
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace");
    let lab_copy = dir.path().join("lab-copy");
    std::fs::create_dir_all(&lab_copy).unwrap();
    for e in std::fs::read_dir(&lab).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), lab_copy.join(e.file_name())).unwrap();
        }
    }
    let tr = dir.path().join("tr");
    let o = Command::new(env!("CARGO_BIN_EXE_golab"))
        .arg("run")
        .arg(&lab_copy)
        .args(["-q", "--transcript"])
        .arg(&tr)
        .output()
        .unwrap();
    assert!(o.status.code().unwrap() <= 1, "{o:?}");
    let session = std::fs::read_to_string(tr.join("dlv-session.txt")).unwrap()
        + "(dlv) thread 23456\nSwitched from 23450 to 23456\n";
    send("alice", None, "transcript: dlv.txt\n");
    std::fs::write(subs.join("alice/dlv.txt"), &session).unwrap();
    let mut made_up = String::new();
    for n in 1000..60000 {
        made_up.push_str(&format!(
            "(dlv) thread {n}\nSwitched from {n} to {}\n",
            n + 1
        ));
    }
    send("mallory", None, "transcript: dlv.txt\n");
    std::fs::write(subs.join("mallory/dlv.txt"), &made_up).unwrap();
    send("aaron", None, "transcript: /dev/zero\n");
    send("zoe", None, "");
    send(
        "notmain",
        Some("package notmain\n\nfunc main() {\n\tprintln(\"hello\")\n}\n"),
        "",
    );
    // A 3 GiB sparse file in a folder submission (F8): refused by its size, never read.
    send("sparse", None, "");
    std::fs::File::create(subs.join("sparse/notes.bin"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    // answers.yaml that is a folder (F5): the submission's error, not golab's.
    std::fs::create_dir_all(subs.join("dirans/answers.yaml")).unwrap();
    std::fs::write(subs.join("dirans/answers.yaml/x"), "x").unwrap();
    send(
        "spinner",
        Some(&std::fs::read_to_string(fixture("cpu-under-debugger")).unwrap()),
        "",
    );

    let grade_once = || {
        // The CPU limit under the debugger is twice --program-seconds: 10 s here.
        let o = grade_command(
            &subs,
            &out,
            &["--program-seconds", "5", "--timeout", "90", "-j", "2"],
        )
        .output()
        .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{stdout}\n{stderr}");
        stderr
    };
    grade_once();
    // F2: the answers graded, the transcript refused with a reason before anything was
    // read (`invalid-answer`: one answer, not the file); zoe graded.
    let r = result(&out, "aaron");
    assert_eq!(r["outcome"], "invalid-answer", "{r}");
    assert_eq!(r["transcript"]["genuine"], false, "{r}");
    assert!(
        r["transcript"]["findings"][0]
            .as_str()
            .unwrap()
            .contains("is an absolute path: name a file inside the submission"),
        "{r}"
    );
    assert_eq!(result(&out, "zoe")["outcome"], "graded");
    // F10: mallory's made-up transcript keeps no per-run value and flags nobody.
    let m = result(&out, "mallory");
    assert_eq!(m["transcript"]["genuine"], false, "{m}");
    assert_eq!(m["transcript"]["per_run"], serde_json::json!([]), "{m}");
    let a = result(&out, "alice");
    assert_eq!(a["transcript"]["genuine"], true, "{a}");
    assert!(
        a["transcript"]["per_run"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "thread 23456"),
        "{a}"
    );
    let batch: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for s in batch["submissions"].as_array().unwrap() {
        assert!(
            s["flags"].is_null() || s["flags"] == serde_json::json!([]),
            "{} flagged: {}",
            s["student"],
            s["flags"]
        );
    }
    // F5: not a program; nothing of it in the build store.
    let r = result(&out, "notmain");
    assert_eq!(r["outcome"], "compile-error", "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("package main"),
        "{r}"
    );
    for (p, _) in files_under(&out.join("work/.builds")) {
        let mut head = [0u8; 4];
        use std::io::Read;
        std::fs::File::open(&p)
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        assert_eq!(&head, b"\x7fELF", "{} in the build store", p.display());
    }
    let r = result(&out, "sparse");
    assert_eq!(r["outcome"], "unsafe-archive", "{r}");
    let r = result(&out, "dirans");
    assert_eq!(r["outcome"], "invalid-answers", "{r}");
    // F6: CPU under the debugger counts.
    let r = result(&out, "spinner");
    assert_eq!(r["outcome"], "cpu-limit", "{r}");
    // Nothing left running; a rerun regrades none of them.
    for slot in 0..2 {
        assert!(
            golab::grade::sandbox::processes_of_uid(golab::grade::sandbox::first_uid() + slot)
                .is_empty()
        );
    }
    let err = grade_once();
    assert!(err.contains("8 of 8 submissions already graded"), "{err}");

    // F9: zoe resubmits twice, a comment changed each time. The build store keeps one
    // binary per current result: her first resubmission's build goes when the second
    // one is graded; the lab program's build, which others' results use, stays.
    let lab_main = std::fs::read_to_string(lab.join("main.go")).unwrap();
    let results = out.join("results");
    let store_keys = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(out.join("work/.builds"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect()
    };
    let current_builds = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(&results)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let v: Value =
                    serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?;
                v["build"].as_str().map(str::to_string)
            })
            .collect()
    };
    let before = result(&out, "zoe")["build"].as_str().unwrap().to_string();
    let mut zoe_builds = vec![];
    for v in ["v2", "v3"] {
        std::fs::write(subs.join("zoe/main.go"), format!("{lab_main}\n// {v}\n")).unwrap();
        let err = grade_once();
        assert!(err.contains("zoe: graded"), "{err}");
        let now = result(&out, "zoe")["build"].as_str().unwrap().to_string();
        assert!(!zoe_builds.contains(&now) && now != before);
        zoe_builds.push(now);
        assert_eq!(store_keys(), current_builds(), "{err}");
    }
    assert!(
        !store_keys().contains(&zoe_builds[0]),
        "the v2 build was kept"
    );
    assert!(
        store_keys().contains(&before),
        "the lab program's build went"
    );
    assert!(store_keys().contains(&zoe_builds[1]));
}

#[test]
fn what_a_program_does_only_under_the_debugger_is_evidence_too() {
    let _one_at_a_time = serial();
    sandbox_is_available();
    let dir = tempfile::Builder::new()
        .prefix("golab-grade-f12-")
        .tempdir_in("/tmp")
        .unwrap();
    let subs = dir.path().join("subs");
    let out = dir.path().join("out");
    for (s, program) in [
        ("underdlv", common::dialing_program(true)),
        ("always", common::dialing_program(false)),
        ("flood", common::flooding_program()),
    ] {
        std::fs::create_dir_all(subs.join(s)).unwrap();
        std::fs::write(subs.join(s).join("main.go"), program).unwrap();
        std::fs::write(
            subs.join(s).join("answers.yaml"),
            "lab: startup-trace\nanswers:\n  why-runnext: locality\n",
        )
        .unwrap();
    }
    let said = common::grade(&subs, &out, &["--timeout", "120"]);
    // Alone under strace, and only under the debugger: both are the same verdict, with
    // the call as evidence; the second says where it was seen.
    let r = result(&out, "always");
    assert_eq!(r["outcome"], "network-denied", "{said}\n{r}");
    assert!(r["message"].as_str().unwrap().contains("1.1.1.1"), "{r}");
    let r = result(&out, "underdlv");
    assert_eq!(r["outcome"], "network-denied", "{said}\n{r}");
    let m = r["message"].as_str().unwrap();
    assert!(
        m.contains("under the debugger") && m.contains("connect(AF_INET 1.1.1.1:80)"),
        "{m}"
    );
    assert_eq!(r["score"], 0.0);
    // F1: 8 MiB printed only under the debugger is output-limit (4 MiB), as it is alone.
    let r = result(&out, "flood");
    assert_eq!(r["outcome"], "output-limit", "{said}\n{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("under the debugger"),
        "{r}"
    );
}

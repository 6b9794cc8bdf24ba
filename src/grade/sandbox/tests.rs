use super::monitor::*;
use super::strace::*;
use super::*;
use std::collections::HashMap;
use std::sync::atomic::AtomicU32;

/// Test slots start high so a golab grading on the same machine keeps its own uids.
static NEXT_SLOT: AtomicU32 = AtomicU32::new(900);
const BUILDER_SLOT: u32 = 899;

fn slot() -> u32 {
    NEXT_SLOT.fetch_add(1, Ordering::SeqCst)
}

/// The sandbox's tests fail, never skip, without bubblewrap, strace or cgroups.
fn have_bwrap() -> bool {
    available(true).expect(
        "the sandbox tests need bubblewrap and strace (scripts/install-deps.sh installs them)",
    );
    cgroup::available().expect("the sandbox tests need cgroups (memory, pids, cpu)");
    true
}

fn small() -> Limits {
    Limits {
        wall: Duration::from_secs(10),
        cpu_secs: 2,
        memory_bytes: 512 << 20,
        processes: 64,
        output_bytes: 1 << 20,
        file_bytes: 16 << 20,
        disk_bytes: 64 << 20,
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A batch folder as golab lays it out: the student's folder (the work folder) next
/// to another student's, whose answers must stay out of reach.
struct Batch {
    _dir: tempfile::TempDir,
    batch: PathBuf,
    work: PathBuf,
    other_answers: PathBuf,
    sandbox: Sandbox,
}

fn batch(slot: u32) -> Batch {
    let dir = tempfile::Builder::new()
        .prefix("golab-sandbox-test-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let batch = dir.path().join("batch");
    let work = batch.join("alice");
    let other = batch.join("other-student");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let other_answers = other.join("answers.yaml");
    std::fs::write(&other_answers, "q1: the other student's secret answer\n").unwrap();
    let sandbox = Sandbox::new(&work, slot).hide(&batch);
    sandbox.prepare().unwrap();
    Batch {
        _dir: dir,
        batch,
        work,
        other_answers,
        sandbox,
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

const ALL: [&str; 9] = [
    "loops-forever",
    "fork-bomb",
    "big-output",
    "network",
    "reads-others",
    "memory-hog",
    "cpu-burner",
    "compile-error",
    "well-behaved",
];

/// Every fixture built once, by `go build` inside the sandbox (one slot, one cache).
struct Built {
    bins: HashMap<String, Vec<u8>>,
    builds: HashMap<String, Finished>,
}

fn built() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        let b = batch(BUILDER_SLOT);
        let mut bins = HashMap::new();
        let mut builds = HashMap::new();
        // The build cache outside the work folder, bound read-write, as a per-slot cache
        // shared between submissions would be.
        let cache = b._dir.path().join("gocache");
        std::fs::create_dir_all(&cache).unwrap();
        b.sandbox.give(&cache).unwrap();
        let env = [("GOCACHE".to_string(), cache.display().to_string())];
        for name in ALL {
            let src = b.work.join("src").join(name);
            copy_dir(&fixture(name), &src);
            b.sandbox.prepare().unwrap();
            let bin = b.work.join("bin").join(name);
            let sb = b.sandbox.clone().cwd(&src).read_write(&cache);
            let limits = Limits {
                wall: Duration::from_secs(240),
                cpu_secs: 240,
                ..Limits::default()
            };
            let t = Instant::now();
            let o = sb
                .run(
                    &s(&[
                        "go",
                        "build",
                        "-gcflags",
                        "all=-l -N",
                        "-o",
                        bin.to_str().unwrap(),
                        ".",
                    ]),
                    &env,
                    &limits,
                )
                .unwrap();
            eprintln!(
                "go build {name}: {:?} in {:.2}s (startup {:?}, cpu {:?})",
                o.verdict,
                t.elapsed().as_secs_f64(),
                o.startup,
                o.cpu
            );
            if o.verdict == Verdict::Ok {
                bins.insert(name.to_string(), std::fs::read(&bin).unwrap());
            }
            assert!(
                processes_of_uid(b.sandbox.uid()).is_empty(),
                "go build {name} left processes behind"
            );
            builds.insert(name.to_string(), o);
        }
        Built { bins, builds }
    })
}

fn install(bin: &[u8], to: &Path) {
    std::fs::write(to, bin).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs a built fixture as `./prog` in a fresh batch; checks nothing is left behind.
fn run_fixture(
    name: &str,
    limits: &Limits,
    evidence: bool,
    env: &[(&str, &str)],
) -> (Finished, Batch) {
    run_fixture_args(name, &[], limits, evidence, env)
}

fn run_fixture_args(
    name: &str,
    args: &[&str],
    limits: &Limits,
    evidence: bool,
    env: &[(&str, &str)],
) -> (Finished, Batch) {
    let built = built();
    let bin = built
        .bins
        .get(name)
        .unwrap_or_else(|| panic!("{name} did not build: {:?}", built.builds.get(name)));
    let b = batch(slot());
    install(bin, &b.work.join("prog"));
    b.sandbox.prepare().unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sb = b.sandbox.clone().with_syscall_evidence(evidence);
    let mut argv = s(&["./prog"]);
    argv.extend(s(args));
    let o = sb.run(&argv, &env, limits).unwrap();
    eprintln!(
        "{name} (evidence {evidence}): {:?} in {:.2}s, startup {:?}, cpu {:?}, memory {} MiB, tasks {}, output {} bytes; evidence: {:?}",
        o.verdict,
        o.wall.as_secs_f64(),
        o.startup,
        o.cpu,
        o.peak_memory_bytes >> 20,
        o.peak_tasks,
        o.output_bytes,
        o.evidence
    );
    assert_eq!(
        processes_of_uid(sb.uid()),
        Vec::<u32>::new(),
        "{name}: processes of uid {} left behind",
        sb.uid()
    );
    (o, b)
}

#[test]
fn well_behaved_is_ok() {
    if !have_bwrap() {
        return;
    }
    let (o, _) = run_fixture("well-behaved", &small(), true, &[]);
    assert_eq!(o.verdict, Verdict::Ok, "{o:?}");
    assert_eq!(o.status, Some(0));
    assert_eq!(o.stdout, "hello from a well-behaved lab program\n");
    assert!(o.evidence.is_empty(), "{:?}", o.evidence);
}

#[test]
fn go_build_runs_in_the_sandbox_and_a_compile_error_fails() {
    if !have_bwrap() {
        return;
    }
    let b = built();
    for name in ALL {
        let o = &b.builds[name];
        if name == "compile-error" {
            assert_eq!(
                o.verdict,
                Verdict::Failed(2),
                "go build exits 2 on a compile error: {o:?}"
            );
            assert!(
                o.stderr.contains("undefined: undefinedName"),
                "{}",
                o.stderr
            );
        } else {
            // Ok, with no false evidence: go build looks for go.work and VCS folders
            // above the module, inside the hidden batch folder.
            assert_eq!(o.verdict, Verdict::Ok, "{name}: {o:?}");
            assert!(o.evidence.is_empty(), "{name}: {:?}", o.evidence);
        }
    }
}

#[test]
fn loops_forever_times_out() {
    if !have_bwrap() {
        return;
    }
    let limits = Limits {
        wall: Duration::from_secs(2),
        cpu_secs: 10,
        ..small()
    };
    let (o, _) = run_fixture("loops-forever", &limits, true, &[]);
    assert_eq!(o.verdict, Verdict::Timeout, "{o:?}");
    assert_eq!(o.status, None);
    assert!(
        o.wall < Duration::from_secs(4),
        "killed promptly: {:?}",
        o.wall
    );
}

#[test]
fn cpu_burner_hits_the_cpu_limit_before_the_wall_clock() {
    if !have_bwrap() {
        return;
    }
    let (o, _) = run_fixture("cpu-burner", &small(), true, &[]);
    // The verdict itself says the CPU limit came first: the wall-clock limit is 10 s.
    assert_eq!(o.verdict, Verdict::CpuLimit, "{o:?}");
    assert!(o.cpu >= Duration::from_secs(2), "{o:?}");
}

#[test]
fn fork_bomb_hits_the_process_limit() {
    if !have_bwrap() {
        return;
    }
    let (o, _) = run_fixture("fork-bomb", &small(), true, &[]);
    assert_eq!(o.verdict, Verdict::ProcessLimit, "{o:?}");
    assert!(
        o.evidence
            .iter()
            .any(|e| e.contains("EAGAIN") || e.contains("tasks")),
        "{:?}",
        o.evidence
    );
}

#[test]
fn big_output_hits_the_output_limit() {
    if !have_bwrap() {
        return;
    }
    let (o, _) = run_fixture("big-output", &small(), true, &[]);
    assert_eq!(o.verdict, Verdict::OutputLimit, "{o:?}");
    assert_eq!(o.stdout.len(), 1 << 20, "stdout is cut at the limit");
}

#[test]
fn network_is_denied() {
    if !have_bwrap() {
        return;
    }
    let (o, _) = run_fixture("network", &small(), true, &[]);
    assert_eq!(o.verdict, Verdict::NetworkDenied, "{o:?}");
    assert!(
        o.evidence.iter().any(|e| e.contains("192.0.2.1")),
        "{:?}",
        o.evidence
    );
    assert!(!o.stdout.contains("connected"));
}

#[test]
fn reading_another_submission_is_denied() {
    if !have_bwrap() {
        return;
    }
    // The other student's answers exist, readable by anyone, next to the work folder.
    let probe = batch(slot());
    let other = probe
        .other_answers
        .to_str()
        .unwrap()
        .replace(probe.batch.to_str().unwrap(), "BATCH");
    drop(probe);
    let (o, b) = {
        let built = built();
        let b = batch(slot());
        install(&built.bins["reads-others"], &b.work.join("prog"));
        b.sandbox.prepare().unwrap();
        let abs = other.replace("BATCH", b.batch.to_str().unwrap());
        assert!(std::fs::read_to_string(&abs).unwrap().contains("secret"));
        let o = b
            .sandbox
            .run(
                &s(&["./prog", &abs]),
                &[("OTHER_ANSWERS".into(), abs.clone())],
                &small(),
            )
            .unwrap();
        (o, b)
    };
    eprintln!(
        "reads-others: {:?}, evidence {:?}, stderr {}",
        o.verdict, o.evidence, o.stderr
    );
    assert_eq!(o.verdict, Verdict::EscapeDenied, "{o:?}");
    assert!(!o.stdout.contains("secret"), "{}", o.stdout);
    assert!(
        o.evidence
            .iter()
            .any(|e| e.contains("../other-student/answers.yaml")),
        "{:?}",
        o.evidence
    );
    assert!(
        o.evidence
            .iter()
            .any(|e| e.contains(b.other_answers.to_str().unwrap())),
        "{:?}",
        o.evidence
    );
    assert_eq!(processes_of_uid(b.sandbox.uid()), Vec::<u32>::new());
}

#[test]
fn memory_hog_hits_the_memory_limit() {
    if !have_bwrap() {
        return;
    }
    let (o, _) = run_fixture("memory-hog", &small(), true, &[]);
    assert_eq!(o.verdict, Verdict::MemoryLimit, "{o:?}");
    assert!(o.peak_memory_bytes <= 700 << 20, "{}", o.peak_memory_bytes);
    // Memory that is touched is measured, so the verdict needs no trace either.
    let (o, _) = run_fixture("memory-hog", &small(), false, &[]);
    assert_eq!(o.verdict, Verdict::MemoryLimit, "{o:?}");
    // Memory asked for and never touched is refused by RLIMIT_DATA: only the trace
    // (mmap = ENOMEM) tells it from the program's own failure.
    let (o, _) = run_fixture_args("memory-hog", &["untouched"], &small(), true, &[]);
    assert_eq!(o.verdict, Verdict::MemoryLimit, "{o:?}");
    assert!(
        o.evidence.iter().any(|e| e.contains("ENOMEM")),
        "{:?}",
        o.evidence
    );
    let (o, _) = run_fixture_args("memory-hog", &["untouched"], &small(), false, &[]);
    assert_eq!(
        o.verdict,
        Verdict::Failed(2),
        "the Go runtime's exit status for out of memory: {o:?}"
    );
}

/// Timings for the report: sandbox start, and what strace costs. Run with
/// `cargo test sandbox_overhead -- --ignored --nocapture` on an idle machine.
#[test]
#[ignore]
fn sandbox_overhead() {
    if !have_bwrap() {
        return;
    }
    let built = built();
    for evidence in [false, true] {
        let b = batch(slot());
        install(&built.bins["well-behaved"], &b.work.join("prog"));
        b.sandbox.prepare().unwrap();
        let sb = b.sandbox.clone().with_syscall_evidence(evidence);
        let mut walls = Vec::new();
        let mut starts = Vec::new();
        for _ in 0..20 {
            let o = sb.run(&s(&["./prog"]), &[], &small()).unwrap();
            assert_eq!(o.verdict, Verdict::Ok);
            walls.push(o.wall.as_secs_f64() * 1000.0);
            starts.push(o.startup.unwrap().as_secs_f64() * 1000.0);
        }
        walls.sort_by(f64::total_cmp);
        starts.sort_by(f64::total_cmp);
        eprintln!(
            "hello world, evidence {evidence}: median wall {:.1} ms, median start {:.1} ms",
            walls[10], starts[10]
        );
        // A cold `go build` of a program that uses net (cgo: gcc runs too).
        let src = b.work.join("src");
        copy_dir(&fixture("network"), &src);
        b.sandbox.prepare().unwrap();
        let sb = sb.cwd(&src);
        let limits = Limits {
            wall: Duration::from_secs(300),
            cpu_secs: 300,
            ..Limits::default()
        };
        let o = sb
            .run(
                &s(&["go", "build", "-gcflags", "all=-l -N", "-o", "prog", "."]),
                &[],
                &limits,
            )
            .unwrap();
        assert_eq!(o.verdict, Verdict::Ok, "{o:?}");
        eprintln!(
            "cold go build, evidence {evidence}: wall {:.2}s, cpu {:.2}s",
            o.wall.as_secs_f64(),
            o.cpu.as_secs_f64()
        );
        let o = sb
            .run(
                &s(&["go", "build", "-gcflags", "all=-l -N", "-o", "prog", "."]),
                &[],
                &limits,
            )
            .unwrap();
        eprintln!(
            "warm go build, evidence {evidence}: wall {:.2}s, cpu {:.2}s",
            o.wall.as_secs_f64(),
            o.cpu.as_secs_f64()
        );
    }
}

#[test]
fn limits_that_are_measured_need_no_syscall_evidence() {
    if !have_bwrap() {
        return;
    }
    let wall2 = Limits {
        wall: Duration::from_secs(2),
        cpu_secs: 10,
        ..small()
    };
    assert_eq!(
        run_fixture("loops-forever", &wall2, false, &[]).0.verdict,
        Verdict::Timeout
    );
    assert_eq!(
        run_fixture("cpu-burner", &small(), false, &[]).0.verdict,
        Verdict::CpuLimit
    );
    assert_eq!(
        run_fixture("big-output", &small(), false, &[]).0.verdict,
        Verdict::OutputLimit
    );
    assert_eq!(
        run_fixture("fork-bomb", &small(), false, &[]).0.verdict,
        Verdict::ProcessLimit
    );
    assert_eq!(
        run_fixture("well-behaved", &small(), false, &[]).0.verdict,
        Verdict::Ok
    );
    // What the kernel refused is not seen without the trace: the program's own failure.
    assert_eq!(
        run_fixture("network", &small(), false, &[]).0.verdict,
        Verdict::Failed(1)
    );
}

#[test]
fn dlv_headless_works_in_the_sandbox() {
    if !have_bwrap() {
        return;
    }
    if find_tool("dlv").is_none() {
        eprintln!("SKIPPED: dlv is not installed");
        return;
    }
    let built = built();
    let b = batch(slot());
    install(&built.bins["well-behaved"], &b.work.join("prog"));
    // A client inside the sandbox speaks JSON-RPC to dlv's API on 127.0.0.1.
    std::fs::write(
        b.work.join("client.sh"),
        r#"set -u
dlv exec --headless --listen=127.0.0.1:0 --api-version=2 ./prog > dlv.out 2>&1 &
for i in $(seq 200); do grep -q "listening at" dlv.out && break; sleep 0.05; done
port=$(sed -n 's/.*listening at: 127.0.0.1:\([0-9]*\).*/\1/p' dlv.out)
exec 3<>/dev/tcp/127.0.0.1/$port
printf '{"method":"RPCServer.Command","params":[{"name":"continue"}],"id":1}\n' >&3
read -r -t 20 line <&3; echo "continue: $line"
printf '{"method":"RPCServer.Detach","params":[{"Kill":true}],"id":2}\n' >&3
read -r -t 20 line <&3; echo "detach: $line"
wait
cat dlv.out
"#,
    )
    .unwrap();
    b.sandbox.prepare().unwrap();
    let sb = b.sandbox.clone().with_syscall_evidence(false);
    let limits = Limits {
        wall: Duration::from_secs(30),
        cpu_secs: 20,
        ..small()
    };
    let o = sb.run(&s(&["bash", "client.sh"]), &[], &limits).unwrap();
    eprintln!(
        "dlv: {:?} in {:.2}s\n{}{}",
        o.verdict,
        o.wall.as_secs_f64(),
        o.stdout,
        o.stderr
    );
    assert_eq!(o.verdict, Verdict::Ok, "{o:?}");
    assert!(
        o.stdout.contains(r#""exited":true,"exitStatus":0"#),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("hello from a well-behaved lab program"),
        "{}",
        o.stdout
    );
    assert_eq!(processes_of_uid(sb.uid()), Vec::<u32>::new());
}

#[test]
fn a_signal_is_known_from_the_trace_and_an_exit_status_is_not_one() {
    if !have_bwrap() {
        return;
    }
    let b = batch(slot());
    let crash = s(&["sh", "-c", "kill -SEGV $$"]);
    let o = b.sandbox.run(&crash, &[], &small()).unwrap();
    assert_eq!(o.verdict, Verdict::Signaled(11), "{o:?}");
    let o = b
        .sandbox
        .clone()
        .with_syscall_evidence(false)
        .run(&crash, &[], &small())
        .unwrap();
    assert_eq!(
        o.verdict,
        Verdict::Failed(139),
        "without the trace, bwrap's 128 + 11: {o:?}"
    );
    // A program that exits 139 by itself is no crash.
    let o = b
        .sandbox
        .run(&s(&["sh", "-c", "exit 139"]), &[], &small())
        .unwrap();
    assert_eq!(o.verdict, Verdict::Failed(139), "{o:?}");
    assert_eq!(processes_of_uid(b.sandbox.uid()), Vec::<u32>::new());
}

#[test]
fn a_path_the_uid_cannot_reach_is_golabs_error() {
    if !have_bwrap() {
        return;
    }
    let b = batch(slot());
    let private = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = b
        .sandbox
        .clone()
        .read_only(private.path())
        .run(&s(&["true"]), &[], &small())
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot be bound in the sandbox"),
        "{err:#}"
    );
    let err = Sandbox::new(private.path(), slot())
        .run(&s(&["true"]), &[], &small())
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("call Sandbox::prepare"),
        "{err:#}"
    );
}

/// Attack H1: a UDP send to AF_UNSPEC goes out as AF_INET, and strace shows only the
/// family and the raw bytes; connect(AF_UNSPEC) is a disconnect, no attempt.
#[test]
fn a_send_to_af_unspec_is_a_network_attempt() {
    let mut t = Trace::new(
        vec!["/b/alice".into()],
        vec!["/b".into()],
        "/b/alice".into(),
    );
    t.line(r#"102 execve("/bin/sh", ["golab-sandbox-ready", "-c", "printf . >&3; exec 3>&-; exec \"$@\"", "golab-sandbox-ready", "./prog"], 0x5 /* 9 vars */) = 0"#);
    t.line(r#"102 connect(3<UDP:[9]>, {sa_family=AF_UNSPEC, sa_data="\0\t\300\0\2\1\0\0\0\0\0\0\0\0"}, 16) = 0"#);
    assert_eq!(t.verdict(), None);
    t.line(r#"102 sendto(3<UDP:[9]>, "x", 1, 0, {sa_family=AF_UNSPEC, sa_data="\0\t\300\0\2\1\0\0\0\0\0\0\0\0"}, 16) = -1 ENETUNREACH (Network is unreachable)"#);
    assert_eq!(t.verdict(), Some(Verdict::NetworkDenied));
}

/// The refusals of the debuggers' filter, installed alone (as for the program under
/// strace), in a real process: AF_VSOCK and io_uring are refused, and a send to the
/// loopback goes on (strace, not a supervisor, judges the network there).
#[test]
fn the_refusals_alone_refuse_vsock_and_io_uring_and_let_sends_go() {
    let r = super::notify::Refusals::default();
    // SAFETY: the child makes raw system calls on its stack and ends with _exit.
    let st = unsafe {
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            r.install();
            let mut fails = 0;
            let errno = || *libc::__errno_location();
            if libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) >= 0
                || errno() != libc::EAFNOSUPPORT
            {
                fails |= 1;
            }
            let mut params = [0u8; 120];
            if libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) >= 0
                || errno() != libc::ENOSYS
            {
                fails |= 2;
            }
            let udp = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
            let to = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 9u16.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
                },
                sin_zero: [0; 8],
            };
            if libc::sendto(
                udp,
                b"x".as_ptr().cast(),
                1,
                0,
                (&to as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ) != 1
            {
                fails |= 4;
            }
            libc::_exit(fails);
        }
        let mut st = 0;
        assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
        st
    };
    assert!(libc::WIFEXITED(st), "{st:#x}");
    assert_eq!(libc::WEXITSTATUS(st), 0, "failed checks (bits)");
}

#[test]
fn strace_lines_are_read_as_evidence() {
    let mut t = Trace::new(
        vec!["/b/alice".into(), "/usr".into()],
        vec!["/b".into()],
        "/b/alice".into(),
    );
    t.line(r#"100 execve("/usr/bin/bwrap", ["bwrap", "--", "/bin/sh", "-c", "x", "golab-sandbox-ready", "./prog"], 0x7ffd /* 3 vars */) = 0"#);
    t.line(r#"100 openat(AT_FDCWD</>, "/b/bob/answers.yaml", O_RDONLY|O_PATH) = 5</b/bob/answers.yaml>"#);
    assert!(
        t.root.is_none() && t.counts.is_empty(),
        "bwrap's own calls are not the program's"
    );
    t.line(r#"102 execve("/bin/sh", ["golab-sandbox-ready", "-c", "printf . >&3; exec 3>&-; exec \"$@\"", "golab-sandbox-ready", "./prog"], 0x5 /* 9 vars */) = 0"#);
    assert_eq!(t.root, Some(102));
    t.line(r#"102 openat(AT_FDCWD</b/alice>, "go.mod", O_RDONLY|O_CLOEXEC) = 3</b/alice/go.mod>"#);
    t.line(r#"102 openat(AT_FDCWD</b/alice>, "..", O_RDONLY|O_DIRECTORY) = 3</b>"#);
    assert!(
        t.verdict().is_none(),
        "the way to the work folder is no escape"
    );
    t.line(r#"103 openat(AT_FDCWD</b/alice>, "../other-student/answers.yaml", O_RDONLY|O_CLOEXEC <unfinished ...>"#);
    t.line(r#"103 <... openat resumed>) = -1 ENOENT (No such file or directory)"#);
    assert_eq!(t.verdict(), Some(Verdict::EscapeDenied));
    t.line(r#"104 connect(3<socket:[1]>, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EINPROGRESS"#);
    t.line(r#"104 connect(3<socket:[2]>, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0"#);
    assert_eq!(
        t.verdict(),
        Some(Verdict::EscapeDenied),
        "loopback is allowed"
    );
    t.line(r#"104 connect(3<socket:[3]>, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("192.0.2.1")}, 16) = -1 ENETUNREACH (Network is unreachable)"#);
    assert_eq!(t.verdict(), Some(Verdict::NetworkDenied));
    t.line(r#"105 mmap(0xc000400000, 67108864, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = -1 ENOMEM (Cannot allocate memory)"#);
    assert_eq!(t.verdict(), Some(Verdict::MemoryLimit));
    t.line(r#"106 clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD) = -1 EAGAIN (Resource temporarily unavailable)"#);
    assert_eq!(t.verdict(), Some(Verdict::ProcessLimit));
    assert!(t.process_limit_seen());
    let mut t = Trace::new(vec![], vec![], "/".into());
    t.line(r#"7 execve("/bin/sh", ["golab-sandbox-ready", "golab-sandbox-ready"], 0x1 /* 1 var */) = 0"#);
    t.line("7 +++ killed by SIGSEGV (core dumped) +++");
    assert_eq!(t.verdict(), Some(Verdict::Signaled(11)));
}

#[test]
fn strace_signal_names_become_this_kernels_numbers() {
    // Every name strace prints for the 31 standard signals, the Linux-only ones too.
    for (name, n) in [
        ("SIGHUP", libc::SIGHUP),
        ("SIGKILL", libc::SIGKILL),
        ("SIGSTKFLT", libc::SIGSTKFLT),
        ("SIGCHLD", libc::SIGCHLD),
        ("SIGIO", libc::SIGIO),
        ("SIGPWR", libc::SIGPWR),
        ("SIGSYS", libc::SIGSYS),
    ] {
        assert_eq!(signal_number(name), Some(n), "{name}");
    }
    assert_eq!(signal_number("SIGNOPE"), None);
    assert_eq!(signal_number(""), None);
    assert_eq!(signal_number("11"), None);
}

#[test]
fn strace_strings_and_paths_are_decoded() {
    assert_eq!(
        unquote(r#""a\"b\\c\x41\101\n"..."#).unwrap(),
        b"a\"b\\cAA\n"
    );
    assert_eq!(
        fd_path("AT_FDCWD</tmp/x y>"),
        Some(PathBuf::from("/tmp/x y"))
    );
    assert_eq!(fd_path("3<socket:[5]>"), None);
    assert_eq!(
        normalize(Path::new("/a/b/../../c/./d/..")),
        PathBuf::from("/c")
    );
    let c = parse_call(
        r#"openat(AT_FDCWD</a>, "x, (y)", O_RDONLY) = -1 ENOENT (No such file or directory)"#,
    )
    .unwrap();
    assert_eq!(
        (
            c.name.as_str(),
            c.args.len(),
            c.ret.as_str(),
            c.errno.as_deref()
        ),
        ("openat", 3, "-1", Some("ENOENT"))
    );
    assert_eq!(
        outside_address(
            r#"{sa_family=AF_INET6, sin6_port=htons(53), inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr)}"#
        ),
        None
    );
    assert_eq!(
        outside_address(r#"{sa_family=AF_INET6, sin6_port=htons(53), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr)}"#).as_deref(),
        Some("2001:db8::1")
    );
    assert_eq!(
        outside_address(r#"{sa_family=AF_UNIX, sun_path="/run/x"}"#),
        None
    );
}

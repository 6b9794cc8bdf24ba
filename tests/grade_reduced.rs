//! The reduced isolation (where the sandbox cannot start) on this machine, as root, with
//! real go, dlv, gdb and readelf (golab run). A lab program that reports its uid and
//! cgroups, and tries every place the observation or another student's work lives,
//! shows: it ran as the slot's own uid, inside a cgroup of its own (gone afterwards); it
//! could write its HOME (so its attempts could succeed) and nothing else: not the
//! observer's folder, not the program's files or binary, not another student's folder.
//! That is the sandbox's rule without namespaces: golab run, the observer, stays root.
#![cfg(target_os = "linux")]

mod common;

use golab::grade::batch::GolabRun;
use golab::grade::grader::{LabRunner, Ran};
use golab::grade::reduced::{Isolation, Reduced, first_uid};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

const PROGRAM: &str = r#"package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

func tryWrite(p string) bool {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func init() {
	bin := filepath.Dir(os.Args[0])
	student := filepath.Dir(bin)
	proof := "uid=" + strconv.Itoa(os.Getuid()) + "\n"
	tries := []struct{ name, path string }{
		{"home", filepath.Join(os.Getenv("HOME"), "x")},
		{"binary-folder", filepath.Join(bin, "x")},
		{"binary", os.Args[0]},
		{"observer", filepath.Join(student, "observer", "observation.json")},
		{"lab", filepath.Join(student, "lab", "x")},
		{"lab-binary", filepath.Join(student, "lab", "work", "main")},
		{"lab-yaml", filepath.Join(student, "lab", "lab.yaml")},
		{"bob", filepath.Join(student, "..", "bob", "x")},
	}
	for _, t := range tries {
		if tryWrite(t.path) {
			proof += "wrote:" + t.name + "\n"
		}
	}
	if _, err := os.ReadFile(filepath.Join(student, "..", "bob", "submission", "answers.yaml")); err == nil {
		proof += "read:bob\n"
	}
	// Left for the next debugger (a FIFO where dlv reads its configuration) and for
	// whoever comes after (files in the shared temporary folders).
	cfg := filepath.Join(os.Getenv("HOME"), ".config", "dlv")
	os.MkdirAll(cfg, 0o700)
	syscall.Mkfifo(filepath.Join(cfg, "config.yml"), 0o600)
	left := "golab-left-" + strconv.Itoa(os.Getuid())
	os.WriteFile(filepath.Join("/tmp", left), []byte("x"), 0o644)
	os.WriteFile(filepath.Join("/dev/shm", left), []byte("x"), 0o644)
	netns, _ := os.Readlink("/proc/self/ns/net")
	proof += "netns=" + netns + "\n"
	cg, _ := os.ReadFile("/proc/self/cgroup")
	os.WriteFile(PROOF, []byte(proof+string(cg)), 0o644)
}

func main() {
	go func() {
		println("in grt do sth")
	}()
	args()
}

func args() {
	println("do sth")
}
"#;

#[test]
fn a_reduced_run_keeps_the_observer_apart_from_its_own_uid_and_cgroup() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs as root, as scripts/test.sh does (the runner switches uids)"
    );
    let isolation = Isolation::probe();
    assert!(isolation.own_uid);
    let Some(cg) = isolation.cgroup.clone() else {
        panic!("no writable cgroup hierarchy with memory and pids limits under /sys/fs/cgroup");
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Where the program may leave its proof: a folder anyone can write.
    let drop_box = dir.path().join("drop");
    std::fs::create_dir(&drop_box).unwrap();
    std::fs::set_permissions(&drop_box, std::fs::Permissions::from_mode(0o777)).unwrap();
    let proof_path = drop_box.join("proof.txt");
    // The grader's layout: work/STUDENT/lab, every student's folder root's alone (0700).
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o711)).unwrap();
    let alice = work.join("alice");
    let bob = work.join("bob");
    for s in [&alice, &bob] {
        std::fs::create_dir(s).unwrap();
        std::fs::set_permissions(s, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::create_dir(bob.join("submission")).unwrap();
    std::fs::write(bob.join("submission/answers.yaml"), "answers: {}\n").unwrap();
    let lab = alice.join("lab");
    std::fs::create_dir(&lab).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace");
    for f in ["lab.yaml", "go.mod"] {
        std::fs::copy(src.join(f), lab.join(f)).unwrap();
    }
    let program = PROGRAM.replace("PROOF", &format!("{:?}", proof_path.display().to_string()));
    std::fs::write(lab.join("main.go"), program).unwrap();
    let r = Reduced::new(
        GolabRun {
            golab: env!("CARGO_BIN_EXE_golab").into(),
            dlv: None,
            dlv_for: vec![],
        },
        Duration::from_secs(180),
        isolation,
    );
    assert!(r.private_folders());
    let ran = r.run(&lab, None, None, 3).unwrap();
    match ran {
        Ran::Observed(o) => assert!(!o.dlv.hits.is_empty(), "the lab ran under dlv"),
        Ran::Stopped { outcome, message } => panic!("{} {message}", outcome.name()),
    }
    let proof = std::fs::read_to_string(&proof_path).unwrap();
    let uid = first_uid() + 3;
    assert!(proof.starts_with(&format!("uid={uid}\n")), "{proof}");
    let succeeded: Vec<&str> = proof
        .lines()
        .filter(|l| l.starts_with("wrote:") || l.starts_with("read:"))
        .collect();
    // Its HOME is writable (the attempts could succeed), and only that.
    assert_eq!(succeeded, ["wrote:home"], "{proof}");
    // A network namespace of its own (root on a host may make one), and nothing left in
    // the shared temporary folders; the FIFO it left in HOME under gdb did not stop dlv
    // (the run above was observed).
    assert!(r.isolation.own_network);
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let its_net = proof
        .lines()
        .find_map(|l| l.strip_prefix("netns="))
        .unwrap_or_else(|| panic!("{proof}"));
    assert_ne!(Path::new(its_net), host_net, "{proof}");
    for d in ["/tmp", "/dev/shm"] {
        let left = Path::new(d).join(format!("golab-left-{uid}"));
        assert!(!left.exists(), "{} left behind", left.display());
    }
    let name = format!("golab-reduced-{}-3", std::process::id());
    for (parent, _) in &cg.parents {
        let hierarchy = parent.file_name().unwrap().to_string_lossy().to_string();
        let line = proof
            .lines()
            .find(|l| {
                if cg.version == 2 {
                    l.starts_with("0::")
                } else {
                    l.split(':')
                        .nth(1)
                        .is_some_and(|c| c.split(',').any(|x| x == hierarchy))
                }
            })
            .unwrap_or_else(|| panic!("no {hierarchy} line in\n{proof}"));
        assert!(line.ends_with(&format!("/{name}")), "{line}");
        assert!(
            !parent.join(&name).exists(),
            "{} left behind",
            parent.join(&name).display()
        );
    }
    // Afterwards: the student's folder is root's alone again, the uid's HOME is gone,
    // the observation is root's, and the built binary is root's and read-only.
    let md = std::fs::metadata(&alice).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o777), (0, 0, 0o700));
    assert!(!alice.join("home").exists());
    let obs = std::fs::metadata(alice.join("observer/observation.json")).unwrap();
    assert_eq!(obs.uid(), 0);
    let bin = std::fs::metadata(lab.join("work/main")).unwrap();
    assert_eq!((bin.uid(), bin.mode() & 0o222), (0, 0));
    let desc = r.isolation.describe("test", Duration::from_secs(9));
    assert!(
        desc.contains(&format!("cgroup v{}", cg.version))
            && desc.contains(&format!("uid {}+", first_uid())),
        "{desc}"
    );
}

#[test]
fn a_network_attempt_under_the_debugger_is_refused_and_is_the_verdict() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs as root");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let student = dir.path().join("underdlv");
    let lab = student.join("lab");
    std::fs::create_dir_all(&lab).unwrap();
    let src = common::labs().join("startup-trace");
    for f in ["lab.yaml", "go.mod"] {
        std::fs::copy(src.join(f), lab.join(f)).unwrap();
    }
    std::fs::write(lab.join("main.go"), common::dialing_program(true)).unwrap();
    let r = Reduced::new(
        GolabRun {
            golab: env!("CARGO_BIN_EXE_golab").into(),
            dlv: None,
            dlv_for: vec![],
        },
        Duration::from_secs(180),
        Isolation::probe(),
    );
    match r.run(&lab, None, None, 2).unwrap() {
        Ran::Stopped { outcome, message } => {
            assert_eq!(outcome.name(), "network-denied", "{message}");
            assert!(message.contains("connect(AF_INET 1.1.1.1:80)"), "{message}");
        }
        Ran::Observed(_) => panic!("the dial under dlv went unseen"),
    }
}

#[test]
fn many_spinning_threads_meet_one_cpu_total() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs as root");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let lab = dir.path().join("spinner/lab");
    std::fs::create_dir_all(&lab).unwrap();
    let src = common::labs().join("startup-trace");
    for f in ["lab.yaml", "go.mod"] {
        std::fs::copy(src.join(f), lab.join(f)).unwrap();
    }
    // Eight threads spinning for ever, each far under its own RLIMIT_CPU for a while.
    std::fs::write(
        lab.join("main.go"),
        "package main\n\nimport \"runtime\"\n\nfunc init() {\n\truntime.GOMAXPROCS(8)\n\tfor i := 0; i < 8; i++ {\n\t\tgo func() {\n\t\t\tfor {\n\t\t\t}\n\t\t}()\n\t}\n\tselect {}\n}\n\nfunc main() {}\n",
    )
    .unwrap();
    let r = Reduced::new(
        GolabRun {
            golab: env!("CARGO_BIN_EXE_golab").into(),
            dlv: None,
            dlv_for: vec![],
        },
        // The CPU total is this many seconds and the observer's wall clock 30 s more:
        // 6 s of CPU come before that wall clock while the spinners get a sixth of a
        // core; 25 s did not at load 18 here (the lab run timed out first).
        Duration::from_secs(6),
        Isolation::probe(),
    );
    // Built beforehand (the system go, its warm cache), as the grader's build store hands
    // a binary over: the reduced run's own build is cold (a fresh GOCACHE in the uid's
    // fresh HOME) and falls under the same limit, which a loaded CI machine can spend on
    // compiling the runtime with -l -N alone ("go build did not finish in time" in 25 s,
    // seen here at load 15). The CPU total under the debuggers is what is tested.
    let build = dir.path().join("build");
    std::fs::create_dir(&build).unwrap();
    for f in ["main.go", "go.mod"] {
        std::fs::copy(lab.join(f), build.join(f)).unwrap();
    }
    let o = std::process::Command::new("go")
        .args(["build", "-gcflags", "all=-l -N", "-o", "spinner", "."])
        .current_dir(&build)
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = std::time::Instant::now();
    match r.run(&lab, Some(&build.join("spinner")), None, 1).unwrap() {
        Ran::Stopped { outcome, message } => {
            assert_eq!(outcome.name(), "cpu-limit", "{message}");
            assert!(message.contains("of 6 s"), "{message}");
        }
        Ran::Observed(_) => panic!("a program that never ends was observed"),
    }
    assert!(t.elapsed() < Duration::from_secs(80), "{:?}", t.elapsed());
    assert!(golab::grade::sandbox::processes_of_uid(first_uid() + 1).is_empty());
}

//! The reduced isolation (where the sandbox cannot start) on this machine, as root: a
//! lab run whose program reports its uid and cgroups shows it ran as the runner's own
//! uid, inside a cgroup of its own with memory and task limits, and the cgroups are gone
//! afterwards. Real go, dlv, gdb and readelf (golab run).

use golab::grade::batch::GolabRun;
use golab::grade::grader::{LabRunner, Ran};
use golab::grade::reduced::{Isolation, Reduced, UID_BASE};
use std::path::Path;
use std::time::Duration;

const PROGRAM: &str = r#"package main

import (
	"os"
	"path/filepath"
	"strconv"
)

func init() {
	cg, _ := os.ReadFile("/proc/self/cgroup")
	proof := "uid=" + strconv.Itoa(os.Getuid()) + "\n" + string(cg)
	os.WriteFile(filepath.Join(filepath.Dir(os.Args[0]), "proof.txt"), []byte(proof), 0o644)
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
fn a_reduced_run_takes_its_own_uid_and_cgroup() {
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
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let lab = dir.path().join("lab");
    std::fs::create_dir(&lab).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace");
    for f in ["lab.yaml", "go.mod"] {
        std::fs::copy(src.join(f), lab.join(f)).unwrap();
    }
    std::fs::write(lab.join("main.go"), PROGRAM).unwrap();
    let r = Reduced {
        run: GolabRun {
            golab: env!("CARGO_BIN_EXE_golab").into(),
            dlv: None,
            dlv_for: vec![],
        },
        timeout: Duration::from_secs(180),
        isolation,
    };
    let ran = r.run(&lab, None, None, 3).unwrap();
    match ran {
        Ran::Observed(o) => assert!(!o.dlv.hits.is_empty(), "the lab ran under dlv"),
        Ran::Stopped { outcome, message } => panic!("{} {message}", outcome.name()),
    }
    let proof = std::fs::read_to_string(lab.join("work/proof.txt")).unwrap();
    let uid = UID_BASE + 3;
    assert!(proof.starts_with(&format!("uid={uid}\n")), "{proof}");
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
    let desc = r.isolation.describe("test", Duration::from_secs(9));
    assert!(
        desc.contains(&format!("cgroup v{}", cg.version)) && desc.contains("uid 62000+"),
        "{desc}"
    );
}

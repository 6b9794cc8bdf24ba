//! Hostile submissions graded in the sandbox: each gets its own named verdict, within its
//! limits, and the batch goes on. The programs are the fixtures in tests/fixtures/hostile.
#![cfg(target_os = "linux")]

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn result(out: &Path, student: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(out.join("results").join(format!("{student}.json"))).unwrap(),
    )
    .unwrap()
}

#[test]
fn hostile_programs_each_get_their_own_verdict_and_the_batch_goes_on() {
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
    let o = Command::new(env!("CARGO_BIN_EXE_golab"))
        .env(
            "GOLAB_LABS",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("labs"),
        )
        .arg("grade")
        .arg(&subs)
        .args([
            "--lab",
            "startup-trace",
            "--program-seconds",
            "10",
            "-j",
            "2",
            "-q",
            "-o",
        ])
        .arg(&out)
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
            golab::grade::sandbox::processes_of_uid(golab::grade::sandbox::FIRST_UID + slot)
                .is_empty()
        );
    }
    assert!(
        start.elapsed().as_secs() < 240,
        "the batch took {:?}",
        start.elapsed()
    );
}

//! Whole-order prediction from a program's own shape, with the real go, dlv and the
//! helper golab builds (tools/goshape): new programs of every shape are predicted
//! exactly; programs it cannot follow are refused by name and line, never scored as
//! ordinary misses.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// tools/goshape built with the system's go, once per test binary.
fn helper() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let d = tempfile::tempdir().unwrap().keep();
        for f in ["main.go", "go.mod"] {
            std::fs::copy(root().join("tools/goshape").join(f), d.join(f)).unwrap();
        }
        let bin = d.join("goshape");
        let o = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&d)
            .env("GOTOOLCHAIN", "local")
            .output()
            .expect("go must be installed (scripts/install-deps.sh)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        bin
    })
    .clone()
}

fn shape(dir: &Path, args: &[&str]) -> Value {
    let o = Command::new(helper())
        .arg("-dir")
        .arg(dir)
        .arg("--")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn dirs(of: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures").join(of))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn every_refused_program_is_refused_for_its_own_reason_with_its_line() {
    let all = dirs("order-refused");
    assert!(all.len() >= 9);
    for d in all {
        let want = std::fs::read_to_string(d.join("expect.txt")).unwrap();
        let v = shape(&d, &[]);
        let why = v["refused"]
            .as_str()
            .unwrap_or_else(|| panic!("{d:?}: {v}"));
        assert!(why.contains(want.trim()), "{d:?}: {why}");
        assert!(why.starts_with("main.go:"), "{d:?}: {why}");
    }
}

#[test]
fn every_order_program_has_a_shape_for_each_of_its_scenarios() {
    for d in dirs("order-programs") {
        let sc = std::fs::read_to_string(d.join("scenarios.txt")).unwrap();
        for l in sc.lines().filter(|l| !l.trim().is_empty()) {
            let args: Vec<&str> = l.split_whitespace().skip(1).collect();
            let v = shape(&d, &args);
            assert!(v.get("refused").is_none(), "{d:?} {l}: {v}");
            let gs = v["goroutines"].as_array().unwrap();
            assert!(gs.len() > 2, "{d:?} {l}: {v}");
            // main ends the program; each goroutine ends with its exit.
            for g in gs {
                assert_eq!(g["ops"].as_array().unwrap().last().unwrap()["op"], "exit");
            }
        }
    }
}

/// A lab folder for one program (scripts/order-lab.sh writes it).
fn lab(program: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let o = Command::new("bash")
        .arg(root().join("scripts/order-lab.sh"))
        .arg(program)
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d
}

fn run(lab: &Path, extra: &[&str]) -> (bool, Value) {
    let json = lab.join("run.json");
    let o = Command::new(env!("CARGO_BIN_EXE_golab"))
        .args(["run", "-q", "--json-file"])
        .arg(&json)
        .args(extra)
        .arg(lab)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }))
    .unwrap();
    (o.status.success(), v)
}

#[test]
fn nested_spawns_handoffs_and_range_loops_are_predicted_exactly() {
    for p in ["nested", "chan-handoff", "token-ring", "wg-vs-chan"] {
        let d = lab(&root().join("tests/fixtures/order-programs").join(p));
        let (ok, v) = run(d.path(), &[]);
        let c = &v["verdict"]["checks"][0];
        assert!(ok, "{p}: {c}");
        assert_eq!(c["earned"], c["points"], "{p}: {c}");
        // Each run was predicted from the shape the helper read from the program.
        for s in v["observation"]["scenarios"].as_array().unwrap() {
            assert!(s["shape"]["program"]["goroutines"].is_array(), "{p}: {s}");
        }
    }
}

#[test]
fn a_program_the_model_cannot_follow_is_refused_by_name_not_scored_as_a_miss() {
    let d = lab(&root().join("tests/fixtures/order-refused/select"));
    let (ok, v) = run(d.path(), &[]);
    assert!(!ok);
    let c = &v["verdict"]["checks"][0];
    let line = c["lines"][0]["text"].as_str().unwrap();
    assert!(
        line.contains(
            "this program is not one the run-order model predicts: main.go:40: select is not modelled"
        ) && line.ends_with("use the co-simulation check (kind: cosim)"),
        "{line}"
    );
    assert!(!line.contains("divergence"), "{line}");
}

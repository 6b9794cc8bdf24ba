//! The co-simulation check and `golab lint`, end to end with the real go and dlv
//! (Debian's golang-go and delve, installed by scripts/install-deps.sh).

mod common;

use common::golab;
use serde_json::Value;
use std::path::Path;

/// A lab folder holding one of tests/fixtures/sched-programs with `lab` as its lab.yaml.
fn lab_of(program: &str, lab: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sched-programs")
        .join(program);
    for f in ["main.go", "go.mod"] {
        std::fs::copy(src.join(f), d.path().join(f)).unwrap();
    }
    std::fs::write(d.path().join("lab.yaml"), lab).unwrap();
    d
}

const COSIM_LAB: &str = "name: t\ntitle: t\nprogram: {env: {GOMAXPROCS: \"1\"}}\ndlv: {breakpoints: []}\nchecks:\n  - {id: cosim, kind: cosim}\n";

#[test]
fn every_transition_of_a_token_ring_agrees_with_the_model_on_one_p() {
    let d = lab_of("chan-token", COSIM_LAB);
    let json = d.path().join("run.json");
    let o = golab()
        .args(["run", "-q", "--json-file"])
        .arg(&json)
        .arg(d.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let c = &v["verdict"]["checks"][0];
    let summary = c["summary"].as_str().unwrap();
    // "N of N transitions as the model predicted (N observed, ...)"
    let n: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 100, "{summary}");
    assert!(summary.starts_with(&format!("{n} of {n} ")), "{summary}");
    // The transitions were read live: every kind the token ring makes was judged.
    let lines: Vec<&str> = c["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    for op in [
        "runqput", "runqget", "execute", "gopark", "ready", "goexit0",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{op}: "))),
            "{op} in {lines:?}"
        );
    }
}

#[test]
fn lint_names_a_misspelled_breakpoint_and_a_stop_nothing_makes_with_their_lines() {
    let lab = "name: t\ntitle: t\nprogram: {}\ndlv:\n  breakpoints:\n    - runtime.gopakr\n    - main.main\nchecks:\n  - id: v\n    kind: value\n    expect:\n      - {at: runtime.goready, eval: gp.goid, equals: \"1\"}\n";
    let d = lab_of("nested", lab);
    let o = golab().arg("lint").arg(d.path()).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("lab.yaml:6: breakpoint runtime.gopakr resolves to nothing"),
        "{out}"
    );
    assert!(
        out.contains(
            "lab.yaml:12: check 'v' reads at runtime.goready, but no breakpoint stops there"
        ),
        "{out}"
    );
    // A field typo is the loader's error, with its line, in plain words.
    std::fs::write(
        d.path().join("lab.yaml"),
        lab.replace("- main.main", "- {fuction: main.main}"),
    )
    .unwrap();
    let o = golab().arg("lint").arg(d.path()).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("line 7") && out.contains("unknown field `fuction`"),
        "{out}"
    );
    // The bundled labs are clean on the installed Go.
    for l in [
        "startup-trace",
        "runq-order",
        "scheduler-callers",
        "channel-park",
    ] {
        let o = golab().args(["lint", l]).output().unwrap();
        assert!(
            o.status.success(),
            "{l}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

const CHAIN_LAB: &str = r#"name: chain
title: "a lab-defined chain"
program:
  env: {GOMAXPROCS: "1"}
dlv:
  breakpoints:
    - {function: main.main, max_hits: 1}
    - {function: main.receiver, max_hits: 1}
    - {function: runtime.chanrecv1, max_hits: 0}
    - {function: runtime.chansend1, max_hits: 0}
checks:
  - id: order
    kind: chain-order
    steps:
      - {function: main.main}
      - {function: main.receiver}
      - {function: runtime.chanrecv1, after: main.main}
      - {function: runtime.chansend1, after: main.main}
  - id: callers
    kind: chain-callers
    steps:
      - {function: main.main, caller: runtime.main}
      - {function: main.receiver, caller: runtime.goexit}
      - {function: runtime.chanrecv1, caller: main.receiver, after: main.main}
      - {function: runtime.chansend1, caller: CALLER, after: main.main}
"#;

fn chain_run(lab: &str) -> Value {
    let d = tempfile::tempdir().unwrap();
    for f in ["main.go", "go.mod"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("labs/channel-park")
                .join(f),
            d.path().join(f),
        )
        .unwrap();
    }
    std::fs::write(d.path().join("lab.yaml"), lab).unwrap();
    let json = d.path().join("run.json");
    let o = golab()
        .args(["run", "-q", "--json-file"])
        .arg(&json)
        .arg(d.path())
        .output()
        .unwrap();
    assert!(
        json.exists(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

#[test]
fn a_lab_defined_chain_is_checked_for_order_and_callers_after_main() {
    let v = chain_run(&CHAIN_LAB.replace("CALLER", "main.main"));
    let checks = v["verdict"]["checks"].as_array().unwrap();
    for c in checks {
        assert_eq!(c["passed"], true, "{c}");
    }
    assert!(
        checks[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("4 of 4 steps in the lab's order")
    );
    // A wrong caller is named with what the stop showed.
    let v = chain_run(&CHAIN_LAB.replace("CALLER", "main.receiver"));
    let c = &v["verdict"]["checks"][1];
    assert_eq!(c["passed"], false, "{c}");
    let bad: Vec<&str> = c["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mark"] == "BAD")
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        bad,
        ["runtime.chansend1 <- main.main; expected main.receiver"],
        "{c}"
    );
}

#[test]
fn a_chain_step_without_its_breakpoint_is_refused_when_the_lab_loads() {
    let lab = CHAIN_LAB
        .replace("CALLER", "main.main")
        .replace("    - {function: runtime.chansend1, max_hits: 0}\n", "");
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("lab.yaml"), &lab).unwrap();
    std::fs::write(d.path().join("main.go"), "package main\nfunc main() {}\n").unwrap();
    let o = golab().args(["run", "-q"]).arg(d.path()).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("step runtime.chansend1 has no breakpoint: add it to dlv.breakpoints"),
        "{err}"
    );
}

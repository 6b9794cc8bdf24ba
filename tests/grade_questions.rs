//! Each question on its own: an answer of the wrong form costs that question only, an
//! answer that cannot be checked is held for review, and with a toolchains folder the
//! grader builds with the Go the student used. Real go, readelf, gdb and dlv.

mod common;

use common::grader;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A handout for `student` (lab startup-trace), as `golab assign` writes it.
fn handout(dir: &Path, student: &str) -> PathBuf {
    std::fs::write(dir.join("roster.csv"), format!("student\n{student}\n")).unwrap();
    let o = grader()
        .args([
            "assign",
            "--lab",
            "startup-trace",
            "--seed",
            "s-14",
            "--roster",
        ])
        .arg(dir.join("roster.csv"))
        .arg("-o")
        .arg(dir.join("handouts"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.join("handouts").join(student)
}

/// Builds the handout with GOROOT `goroot` (None: go on PATH); readelf's entry address.
fn entry(h: &Path, goroot: Option<&Path>) -> String {
    let go = goroot.map(|g| g.join("bin/go")).unwrap_or("go".into());
    let mut c = Command::new(go);
    c.args(["build", "-gcflags", "all=-l -N", "-o", "main", "."])
        .current_dir(h)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod");
    if let Some(g) = goroot {
        c.env("GOROOT", g);
    }
    let o = c.output().unwrap();
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

fn check(h: &Path, answers: &str, extra: &[&str]) -> (Value, String) {
    std::fs::write(h.join("answers.yaml"), answers).unwrap();
    let gs = h.parent().unwrap().join("gs.json");
    let o = grader()
        .args(["check", "--no-sandbox", "--gradescope"])
        .arg(&gs)
        .args(extra)
        .arg(h)
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let v = serde_json::from_str(&std::fs::read_to_string(&gs).unwrap_or_else(|_| panic!("{out}")))
        .unwrap();
    (v, out)
}

fn test<'a>(gs: &'a Value, id: &str) -> &'a Value {
    gs["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().starts_with(id))
        .unwrap()
}

#[test]
fn a_wrong_answer_form_costs_its_question_and_an_uncheckable_one_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let h = handout(dir.path(), "ada");
    let e = entry(&h, None);
    // startup-chain has the wrong form, why-runnext is left empty: the entry point is
    // still graded, the outcome names the question.
    let (gs, out) = check(
        &h,
        &format!(
            "lab: startup-trace\ngo: \"\"\nanswers:\n  entry-point: {{address: {e}, symbol: _rt0_amd64_linux}}\n  startup-chain: 7\n  why-runnext:\n"
        ),
        &[],
    );
    assert!(out.contains("ada: invalid-answer (2/6 points)"), "{out}");
    assert!(
        out.contains("answers 'startup-chain' cannot be read"),
        "{out}"
    );
    assert!(
        out.contains("answer 'startup-chain': expected a list (line 5)"),
        "{out}"
    );
    assert_eq!(test(&gs, "entry-point")["score"], 2.0, "{gs}");
    assert_eq!(test(&gs, "startup-chain")["score"], 0.0);
    assert_eq!(gs["extra_data"]["outcome"], "invalid-answer");

    // Built with go1.17.1 (they say), an address the grader's build does not have, and
    // no go1.17 toolchain configured: the address is held for review, not marked wrong.
    let (gs, out) = check(
        &h,
        "lab: startup-trace\ngo: \"go version go1.17.1 linux/amd64\"\nanswers:\n  entry-point: {address: 0x45c1e0, symbol: _rt0_amd64_linux}\n",
        &[],
    );
    assert!(out.contains("ada: graded (1/6 points)"), "{out}");
    assert!(
        out.contains("entry-point [1/2, 1 held for review]")
            && out
                .contains("held for review: you built with go1.17.1; the grader built with go1.19")
            && out.contains("no go1.17 toolchain configured"),
        "{out}"
    );
    let t = test(&gs, "entry-point");
    assert_eq!(
        (t["score"].as_f64(), t["max_score"].as_f64()),
        (Some(1.0), Some(1.0)),
        "{t}"
    );
    // Held is not passed: the point is not given until a person has looked.
    assert_eq!(t["status"], "failed", "{t}");
    assert!(
        t["name"].as_str().unwrap().ends_with("(held for review)"),
        "{t}"
    );
}

/// The toolchains folder of scripts/fetch-toolchains.sh (or GOLAB_TOOLCHAINS).
fn toolchains() -> PathBuf {
    std::env::var_os("GOLAB_TOOLCHAINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/golab/toolchains")
        })
}

#[test]
#[ignore = "needs go1.17 and dlv-1.9.1 in the toolchains folder (scripts/fetch-toolchains.sh); scripts/test-gradescope.sh runs it"]
fn with_a_toolchains_folder_the_grader_builds_with_the_students_go() {
    let t = toolchains();
    let go117 = t.join("go1.17");
    assert!(go117.join("bin/go").is_file(), "no {}", go117.display());
    let dir = tempfile::tempdir().unwrap();
    let h = handout(dir.path(), "ada");
    let e = entry(&h, Some(&go117));
    let (gs, out) = check(
        &h,
        &format!(
            "lab: startup-trace\ngo: \"go version go1.17.1 linux/amd64\"\nanswers:\n  entry-point: {{address: {e}, symbol: _rt0_amd64_linux}}\n"
        ),
        &["--toolchains", t.to_str().unwrap()],
    );
    assert!(
        out.contains("entry-point [2/2]") && out.contains("right for go1.17.1"),
        "{out}"
    );
    assert!(!out.contains("held"), "{out}");
    assert_eq!(test(&gs, "entry-point")["score"], 2.0);
}

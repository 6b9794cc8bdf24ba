//! `golab assign`, `golab grade` and `golab check` as an instructor and a student use
//! them, with the real go, dlv, gdb and readelf.

mod common;

use common::{golab, grade_command, result, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SEED: &str = "fall-2026";

/// Assigns variants to a roster and returns the handouts folder.
fn assign(dir: &Path, lab: &str, students: &[&str]) -> PathBuf {
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, format!("student\n{}\n", students.join("\n"))).unwrap();
    let out = dir.join("handouts");
    let (o, _, err) = run(golab()
        .args(["assign", "--lab", lab, "--seed", SEED, "--roster"])
        .arg(&roster)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{err}");
    out
}

fn go_version() -> String {
    let o = Command::new("go")
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_start_matches("go")
        .to_string()
}

const CHAIN: &str = "[_rt0_amd64_linux, _rt0_amd64, runtime.rt0_go, runtime.check, runtime.args, runtime.osinit, runtime.schedinit, runtime.newproc, runtime.newproc1, runtime.runqput, runtime.mstart, runtime.mstart0, runtime.mstart1, runtime.schedule, runtime.findRunnable, runtime.runqget, runtime.execute, runtime.gogo, runtime.main, main.main]";

fn answers(entry: &str, chain: &str) -> String {
    format!(
        "lab: startup-trace\ngo: {}\nanswers:\n  entry-point: {{address: {entry}, symbol: _rt0_amd64_linux}}\n  startup-chain: {chain}\n  why-runnext: locality\n  why-inherit: fairness\n",
        go_version()
    )
}

#[test]
fn a_batch_grades_right_copied_partial_and_broken_submissions_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let students = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let handouts = assign(dir.path(), "startup-trace", &students);
    let subs = dir.path().join("subs");
    std::fs::create_dir(&subs).unwrap();
    for s in students {
        let to = subs.join(s);
        std::fs::create_dir(&to).unwrap();
        for f in ["main.go", "go.mod"] {
            std::fs::copy(handouts.join(s).join(f), to.join(f)).unwrap();
        }
    }
    let alice_entry = common::entry(&handouts.join("alice"));
    // alice: right. bob: copies alice's answers. carol: half the chain, reordered.
    std::fs::write(
        subs.join("alice/answers.yaml"),
        answers(&alice_entry, CHAIN),
    )
    .unwrap();
    std::fs::write(subs.join("bob/answers.yaml"), answers(&alice_entry, CHAIN)).unwrap();
    std::fs::write(subs.join("carol/answers.yaml"), answers(&common::entry(&handouts.join("carol")), "[_rt0_amd64_linux, runtime.rt0_go, runtime.schedinit, runtime.osinit, runtime.mstart, main.main]")).unwrap();
    // dave: broken YAML. erin: no answers. frank: a main.go that does not compile
    // instead of his variant.
    std::fs::write(
        subs.join("dave/answers.yaml"),
        "lab: startup-trace\nanswers:\n  entry-point: [1, 2\n",
    )
    .unwrap();
    std::fs::write(subs.join("frank/answers.yaml"), answers("0x1", CHAIN)).unwrap();
    std::fs::write(
        subs.join("frank/main.go"),
        "package main\nfunc main() { nope() }\n",
    )
    .unwrap();

    let out = dir.path().join("out");
    let (o, table, err) = run(&mut grade_command(
        &subs,
        &out,
        &["--seed", SEED, "--no-sandbox", "-j", "2"],
    ));
    assert!(o.status.success(), "{table}\n{err}");
    assert_eq!(result(&out, "alice")["score"], 6.0, "{table}");
    let bob = result(&out, "bob");
    assert_eq!(bob["score"], 5.0, "copied answers lose the address: {bob}");
    assert!(
        bob["questions"][0]["feedback"]
            .to_string()
            .contains("your program's entry point is")
    );
    let carol = result(&out, "carol");
    let chain_pts = carol["questions"][1]["points"].as_f64().unwrap();
    assert!(
        chain_pts > 0.0 && chain_pts < 4.0,
        "partial credit: {carol}"
    );
    let fb = carol["questions"][1]["feedback"].to_string();
    assert!(
        fb.contains("missing") && fb.contains("out of order"),
        "{fb}"
    );
    assert_eq!(result(&out, "dave")["outcome"], "invalid-answers");
    assert!(
        result(&out, "dave")["message"]
            .as_str()
            .unwrap()
            .contains("line 4")
    );
    assert_eq!(result(&out, "erin")["outcome"], "missing-answers");
    // frank's main.go is not his variant: it is never built (so its compile error does
    // not count); his answers are checked against his variant's run, and the gradebook
    // flags the program he sent.
    let frank = result(&out, "frank");
    assert_eq!(frank["outcome"], "graded", "{frank}");
    assert_eq!(frank["score"], 5.0, "{frank}");
    assert!(
        frank["message"]
            .as_str()
            .unwrap()
            .contains("your main.go is not the program you were assigned"),
        "{frank}"
    );
    let batch: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let frank_flags = batch["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["student"] == "frank")
        .unwrap()["flags"]
        .to_string();
    assert!(
        frank_flags.contains("not-assigned-program: "),
        "{frank_flags}"
    );

    // Every rendering, from the same results.
    let csv = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
    assert!(
        csv.starts_with("student,outcome,total,max,entry-point,startup-chain")
            && csv.contains("alice,graded,6,6,2,4"),
        "{csv}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuite") && junit.contains("name=\"frank\""));
    let gs: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("gradescope/alice.json")).unwrap())
            .unwrap();
    assert_eq!(gs["score"], 6.0);
    assert!(
        gs["tests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["max_score"] == 4.0)
    );

    // A rerun redoes nothing: a result file is left as it was.
    let marker = out.join("results/alice.json");
    let before = std::fs::metadata(&marker).unwrap().modified().unwrap();
    let (o, _, err) = run(&mut grade_command(
        &subs,
        &out,
        &["--seed", SEED, "--no-sandbox"],
    ));
    assert!(o.status.success());
    assert!(err.contains("6 of 6 submissions already graded"), "{err}");
    assert_eq!(
        std::fs::metadata(&marker).unwrap().modified().unwrap(),
        before
    );
    // --force regrades.
    let (o, _, _) = run(&mut grade_command(
        &subs,
        &out,
        &["--seed", SEED, "--no-sandbox", "--force", "-q"],
    ));
    assert!(o.status.success());
    assert_ne!(
        std::fs::metadata(&marker).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn check_tells_a_student_what_the_grader_will_say_and_flags_a_made_up_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let handouts = assign(dir.path(), "startup-trace", &["gina"]);
    let sub = handouts.join("gina");
    let entry = common::entry(&sub);
    // A real dlv session of gina's own program, as golab records it.
    let tr = dir.path().join("tr");
    // The handout has no lab.yaml: run the lab's folder with gina's program in it.
    let lab_copy = dir.path().join("labcopy");
    std::fs::create_dir(&lab_copy).unwrap();
    for f in ["lab.yaml", "go.mod"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("labs/startup-trace")
                .join(f),
            lab_copy.join(f),
        )
        .unwrap();
    }
    std::fs::copy(sub.join("main.go"), lab_copy.join("main.go")).unwrap();
    let (o, _, err) = run(golab()
        .arg("run")
        .arg(&lab_copy)
        .arg("-q")
        .arg("--transcript")
        .arg(&tr));
    assert!(o.status.code().unwrap() <= 1, "{err}");
    std::fs::copy(tr.join("dlv-session.txt"), sub.join("dlv.txt")).unwrap();
    let with_transcript =
        answers(&entry, CHAIN).replace("answers:\n", "transcript: dlv.txt\nanswers:\n");
    std::fs::write(sub.join("answers.yaml"), &with_transcript).unwrap();
    let gs = dir.path().join("results.json");
    let (o, out, err) = run(golab()
        .arg("check")
        .arg(&sub)
        .args([
            "--lab",
            "startup-trace",
            "--seed",
            SEED,
            "--no-sandbox",
            "--gradescope",
        ])
        .arg(&gs));
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("gina: graded (6/6 points)")
            && out.contains("transcript: consistent with your binary ("),
        "{out}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&std::fs::read_to_string(&gs).unwrap()).unwrap()["score"],
        6.0
    );

    // The same transcript with a breakpoint address changed could not come from gina's program.
    let real = std::fs::read_to_string(sub.join("dlv.txt")).unwrap();
    let line = real
        .lines()
        .find(|l| l.starts_with("Breakpoint") && l.contains("runtime.schedinit"))
        .unwrap()
        .to_string();
    let addr = line
        .split(" set at ")
        .nth(1)
        .unwrap()
        .split([',', ' '])
        .next()
        .unwrap()
        .to_string();
    let fake_addr = format!(
        "{:#x}",
        u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap() + 0x40
    );
    std::fs::write(
        sub.join("dlv.txt"),
        real.replace(&line, &line.replace(&addr, &fake_addr)),
    )
    .unwrap();
    let (_, out, _) = run(golab().arg("check").arg(&sub).args([
        "--lab",
        "startup-trace",
        "--seed",
        SEED,
        "--no-sandbox",
    ]));
    assert!(
        out.contains("inconsistent with your binary") && out.contains("runtime.schedinit"),
        "{out}"
    );
}

#[test]
fn unsafe_archives_and_yaml_bombs_get_their_own_verdicts() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let subs = dir.path().join("subs");
    std::fs::create_dir(&subs).unwrap();
    // A zip that climbs out of its folder.
    let f = std::fs::File::create(subs.join("mallory.zip")).unwrap();
    let mut z = zip::ZipWriter::new(f);
    z.start_file("../../evil.go", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"package main").unwrap();
    z.finish().unwrap();
    // A billion laughs in answers.yaml.
    std::fs::create_dir(subs.join("oscar")).unwrap();
    let mut bomb = String::from(
        "lab: startup-trace\nanswers:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, p) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        bomb.push_str(&format!(
            "  {i}: &{i} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        ));
    }
    std::fs::write(subs.join("oscar/answers.yaml"), bomb).unwrap();
    let out = dir.path().join("out");
    let (o, table, err) = run(&mut grade_command(&subs, &out, &["--no-sandbox", "-q"]));
    assert!(o.status.success(), "{table}{err}");
    assert_eq!(result(&out, "mallory")["outcome"], "unsafe-archive");
    assert!(
        result(&out, "mallory")["message"]
            .as_str()
            .unwrap()
            .contains("..")
    );
    assert_eq!(result(&out, "oscar")["outcome"], "yaml-bomb");
    assert!(!dir.path().join("evil.go").exists() && !out.join("evil.go").exists());
}

#[test]
fn the_gradescope_autograder_zip_holds_a_crate_that_builds() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("autograder.zip");
    let (o, _, err) = run(golab()
        .args(["gradescope", "package", "--lab", "startup-trace", "-o"])
        .arg(&zip_path));
    assert!(o.status.success(), "{err}");
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let root = dir.path().join("x");
    z.extract(&root).unwrap();
    assert!(
        std::fs::read_to_string(root.join("run_autograder"))
            .unwrap()
            .contains("startup-trace")
    );
    // The packed sources compile on their own (offline, reusing this build's artifacts).
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let c = Command::new(env!("CARGO"))
        .args(["check", "--offline", "--quiet", "--lib", "--bins"])
        .current_dir(root.join("golab"))
        .env("CARGO_TARGET_DIR", target.join("autograder-check"))
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
}

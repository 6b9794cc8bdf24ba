//! Submissions built to forge or break `golab grade` (round 2 of issue 10's attacks:
//! F2, F3, F4/F4b, F5's answers half, F7, F13), graded in one batch with the real go,
//! readelf, gdb and dlv beside honest classmates. Each gets the fair outcome, and the
//! honest ones are graded exactly as they are alone.
//!
//! - F2: `transcript: /dev/zero`, a `..` path, a FIFO: refused before any read, the
//!   answers graded, `invalid-answer` naming the transcript; the batch finishes.
//! - F3: a `submission_metadata.json` the student put in the folder sets no time.
//! - F4/F4b: a main.go that is not the assigned variant (a classmate's, one that only
//!   prints) is never run: the answers are checked against the assigned variant's run,
//!   and the gradebook flags it (and whose variant it is, and who sent the same).
//! - F5: answers.yaml as a folder: `missing-answers` with the reason.
//! - F7: a claimed patch release nobody has does not hold a wrong address; a held
//!   answer is never "passed" on Gradescope.
//! - F13: answers.yaml with a UTF-8 byte-order mark is read.

mod common;

use common::{entry, grader, ok, touch};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const SEED: &str = "s3-attacks";

fn answers(go: &str, entry: &str, why: &str) -> String {
    common::answers(go, entry, common::CHAIN, why)
}

fn grade(subs: &Path, out: &Path, seed: &str) -> String {
    common::grade(
        subs,
        out,
        &[
            "--seed",
            seed,
            "--no-sandbox",
            "-j",
            "2",
            "--deadline",
            "2026-11-30T23:59:00Z",
            "--late-penalty",
            "50",
        ],
    )
}

/// The result, with the batch folder it came from (for `flags`).
fn result(out: &Path, s: &str) -> Value {
    let mut r = common::result(out, s);
    r["__out"] = Value::from(out.to_str().unwrap());
    r
}

/// The flags the gradebook gives `r` (set when the batch's results are put together:
/// results.json, gradebook.csv), found by its student.
fn flags(r: &Value) -> Vec<String> {
    let out = r["__out"].as_str().expect("a result read by result()");
    let b: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(out).join("results.json")).unwrap(),
    )
    .unwrap();
    b["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["student"] == r["student"])
        .and_then(|s| s["flags"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

/// What must not change for an honest student whoever their classmates are (the
/// binary's hash does: the build's folder is in its debug information).
fn verdict(r: &Value) -> Value {
    serde_json::json!({
        "outcome": r["outcome"],
        "score": r["score"],
        "message": r["message"],
        "variant": r["variant"],
        "late": r["late"],
        "flags": flags(r),
        "questions": r["questions"].as_array().unwrap().iter()
            .map(|q| (q["points"].clone(), q["held_points"].clone(), q["feedback"].clone()))
            .collect::<Vec<_>>(),
    })
}

fn gradescope_test(out: &Path, s: &str, id: &str) -> Value {
    let gs: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("gradescope/{s}.json"))).unwrap(),
    )
    .unwrap();
    gs["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().starts_with(id))
        .unwrap()
        .clone()
}

#[test]
fn forged_and_broken_submissions_get_fair_outcomes_and_honest_ones_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let honest = ["alice", "zoe"];
    let attackers = [
        "aaron", "bob", "bom", "dirans", "erin", "gina", "hank", "ivy", "mal", "pat", "rita", "wes",
    ];
    let all: Vec<&str> = honest.iter().chain(&attackers).copied().collect();
    std::fs::write(
        d.join("roster.csv"),
        format!("student\n{}\n", all.join("\n")),
    )
    .unwrap();
    let h = |s: &str| d.join("handouts").join(s);
    // bob copies alice: the copy is visible only when their variants' entry points differ.
    let seed = (0..20)
        .map(|i| format!("{SEED}-{i}"))
        .find(|seed| {
            let _ = std::fs::remove_dir_all(d.join("handouts"));
            ok(grader()
                .args([
                    "assign",
                    "--lab",
                    "startup-trace",
                    "--seed",
                    seed,
                    "--roster",
                ])
                .arg(d.join("roster.csv"))
                .arg("-o")
                .arg(d.join("handouts")));
            entry(&h("alice")) != entry(&h("bob"))
        })
        .expect("some seed gives alice and bob different entry points");
    let go = ok(Command::new("go")
        .arg("version")
        .env("GOTOOLCHAIN", "local"));
    let go = go.trim().to_string();
    let e: std::collections::BTreeMap<&str, String> =
        all.iter().map(|s| (*s, entry(&h(s)))).collect();

    let subs = d.join("subs");
    let honest_subs = d.join("honest");
    let put = |root: &Path, s: &str, main_from: &str, yaml: &str| {
        let to = root.join(s);
        std::fs::create_dir_all(&to).unwrap();
        for f in ["main.go", "go.mod"] {
            std::fs::copy(h(main_from).join(f), to.join(f)).unwrap();
        }
        std::fs::write(to.join("answers.yaml"), yaml).unwrap();
        to
    };
    for root in [&subs, &honest_subs] {
        put(
            root,
            "alice",
            "alice",
            &answers(&go, &e["alice"], "locality"),
        );
        put(
            root,
            "zoe",
            "zoe",
            &answers(&go, &e["zoe"], "the newest g runs next"),
        );
    }
    // F2: the transcript named in answers.yaml is outside the submission (a FIFO or a
    // device inside it: the unit tests of read_in_submission).
    let transcript = |s: &str, t: &str| {
        answers(&go, &e[s], "fairness")
            .replace("answers:\n", &format!("transcript: {t}\nanswers:\n"))
    };
    put(&subs, "aaron", "aaron", &transcript("aaron", "/dev/zero"));
    put(
        &subs,
        "rita",
        "rita",
        &transcript("rita", "../alice/answers.yaml"),
    );
    // F3: mal's folder is a day late; the metadata file she wrote into it says earlier.
    let mal = put(&subs, "mal", "mal", &answers(&go, &e["mal"], "speed"));
    std::fs::write(
        mal.join("submission_metadata.json"),
        r#"{"created_at": "2026-11-20T10:00:00Z"}"#,
    )
    .unwrap();
    // pat's folder is late by mtime, but the platform's metadata beside it is on time.
    let pat = put(&subs, "pat", "pat", &answers(&go, &e["pat"], "speed"));
    std::fs::write(
        subs.join("pat.submission_metadata.json"),
        r#"{"created_at": "2026-11-30T10:00:00-07:00"}"#,
    )
    .unwrap();
    // F4: bob sends alice's main.go and alice's answers (a comment added); erin sends
    // alice's main.go too, with her own variant's address.
    put(
        &subs,
        "bob",
        "alice",
        &format!("# mine\n{}", answers(&go, &e["alice"], "locality!")),
    );
    put(
        &subs,
        "erin",
        "alice",
        &answers(&go, &e["erin"], "warm cache"),
    );
    // F4b: gina's main.go prints and exits (no goroutine), and does not even compile:
    // were it built, she would get compile-error.
    let gina = put(
        &subs,
        "gina",
        "gina",
        &answers(&go, &e["gina"], "the newest g"),
    );
    std::fs::write(
        gina.join("main.go"),
        "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"order 0 1 2\\n\"); nope() }\n",
    )
    .unwrap();
    // wes sends his own variant with Windows line ends: his own program, no flag.
    let wes = put(&subs, "wes", "wes", &answers(&go, &e["wes"], "locality"));
    let crlf = std::fs::read_to_string(wes.join("main.go"))
        .unwrap()
        .replace('\n', "\r\n");
    std::fs::write(wes.join("main.go"), crlf).unwrap();
    // F5: dirans's answers.yaml is a folder.
    let dirans = put(&subs, "dirans", "dirans", "");
    std::fs::remove_file(dirans.join("answers.yaml")).unwrap();
    std::fs::create_dir(dirans.join("answers.yaml")).unwrap();
    std::fs::write(dirans.join("answers.yaml/x"), "lab: startup-trace\n").unwrap();
    // F7: hank claims a patch release of the grader's line that nobody has, with a
    // wrong address; ivy claims the course's pinned Go, which this grader lacks.
    let ours = go
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_start_matches("go");
    let mut v: Vec<u32> = ours.split('.').map(|x| x.parse().unwrap()).collect();
    v.resize(3, 0);
    let other_patch = format!(
        "go{}.{}.{}",
        v[0],
        v[1],
        if v[2] > 0 { v[2] - 1 } else { 99 }
    );
    put(
        &subs,
        "hank",
        "hank",
        &answers(
            &format!("go version {other_patch} linux/amd64"),
            "0x401000",
            "speed",
        ),
    );
    put(
        &subs,
        "ivy",
        "ivy",
        &answers("go version go1.17.1 linux/amd64", "0x401000", "speed"),
    );
    // F13: Notepad's byte-order mark.
    let bom = put(&subs, "bom", "bom", "");
    let mut text = b"\xEF\xBB\xBF".to_vec();
    text.extend_from_slice(answers(&go, &e["bom"], "locality").as_bytes());
    std::fs::write(bom.join("answers.yaml"), text).unwrap();

    for s in &all {
        touch(&subs.join(s), "2026-11-29T12:00:00Z");
    }
    touch(&honest_subs.join("alice"), "2026-11-29T12:00:00Z");
    touch(&honest_subs.join("zoe"), "2026-11-29T12:00:00Z");
    touch(&mal, "2026-12-01T12:00:00Z");
    touch(&pat, "2026-12-05T12:00:00Z");

    let out = d.join("out");
    let table = grade(&subs, &out, &seed);
    let alone = d.join("alone");
    grade(&honest_subs, &alone, &seed);

    // The honest students: full marks, no flag, and the same verdict as graded alone.
    for s in honest {
        let r = result(&out, s);
        assert_eq!(
            (r["outcome"].as_str(), r["score"].as_f64()),
            (Some("graded"), Some(6.0)),
            "{s}: {r}\n{table}"
        );
        assert_eq!(verdict(&r), verdict(&result(&alone, s)), "{s}");
        assert!(flags(&r).is_empty(), "{s}: {r}");
    }

    // F2: refused by name, the answers graded, nothing of the host read.
    for (s, why) in [
        ("aaron", "is an absolute path"),
        ("rita", "leaves the submission ('..')"),
    ] {
        let r = result(&out, s);
        assert_eq!(r["outcome"], "invalid-answer", "{s}: {r}");
        assert_eq!(r["score"], 6.0, "{s}: {r}");
        let m = r["message"].as_str().unwrap();
        assert!(
            m.contains("named in answers.yaml")
                && m.contains(why)
                && m.contains("it is not checked"),
            "{s}: {m}"
        );
        assert_eq!(r["transcript"]["facts_checked"], 0, "{s}: {r}");
    }

    // F3: mal is late by her folder's time; pat is on time by the platform's metadata.
    let mal = result(&out, "mal");
    assert_eq!(mal["submitted_at"], "2026-12-01T12:00:00Z", "{mal}");
    assert!(
        mal["submitted_from"]
            .as_str()
            .unwrap()
            .contains("student's file: not used"),
        "{mal}"
    );
    let csv = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
    let row = |s: &str| {
        csv.lines()
            .find(|l| l.starts_with(&format!("{s},")))
            .unwrap()
            .to_string()
    };
    assert!(
        row("mal").starts_with("mal,graded,3,6,") && row("mal").contains("1 day after"),
        "{}",
        row("mal")
    );
    assert_eq!(result(&out, "pat")["submitted_at"], "2026-11-30T17:00:00Z");
    assert!(row("pat").starts_with("pat,graded,6,6,"), "{}", row("pat"));

    // F4: bob's and erin's main.go is alice's: they were graded on their own variants.
    let bob = result(&out, "bob");
    assert_eq!(
        bob["score"], 5.0,
        "alice's address is wrong for bob's variant: {bob}"
    );
    assert_ne!(
        bob["binary_sha256"],
        result(&out, "alice")["binary_sha256"],
        "{bob}"
    );
    let bf = flags(&bob).join("\n");
    assert!(
        bf.contains("not-assigned-program: ")
            && bf.contains("it is the variant of alice")
            && bf.contains("the same main.go (not the assigned program) as erin sent")
            && bf.contains("entry-point: the answer is right for alice's build"),
        "{bf}"
    );
    let erin = result(&out, "erin");
    assert_eq!(
        erin["score"], 6.0,
        "her own variant's answers are right: {erin}"
    );
    let ef = flags(&erin).join("\n");
    assert!(
        ef.contains("it is the variant of alice") && ef.contains("as bob sent"),
        "{ef}"
    );
    // F4b: gina's program was never built: graded on her variant's run.
    let gina = result(&out, "gina");
    assert_eq!(gina["score"], 6.0, "{gina}");
    assert!(
        gina["message"]
            .as_str()
            .unwrap()
            .contains("the grader ran your assigned variant"),
        "{gina}"
    );
    assert!(
        flags(&gina)
            .iter()
            .any(|f| f.starts_with("not-assigned-program: ")),
        "{gina}"
    );
    let wes = result(&out, "wes");
    assert_eq!(
        (wes["score"].as_f64(), flags(&wes).len()),
        (Some(6.0), 0),
        "{wes}"
    );
    assert!(
        !wes["message"].as_str().unwrap().contains("main.go"),
        "{wes}"
    );

    // F5: a folder named answers.yaml is the student's: invalid-answers, not regraded.
    let dirans = result(&out, "dirans");
    assert_eq!(dirans["outcome"], "invalid-answers", "{dirans}");
    assert!(
        dirans["message"]
            .as_str()
            .unwrap()
            .contains("answers.yaml is a folder, not a file"),
        "{dirans}"
    );

    // F7: hank's claim is a release the course does not grade with: his wrong address is
    // wrong, not held; ivy's (the course's Go, missing here) is held, and not "passed".
    let hank = result(&out, "hank");
    assert_eq!(hank["questions"][0]["points"], 1.0, "{hank}");
    assert_eq!(hank["questions"][0]["held_points"], 0.0, "{hank}");
    assert!(
        hank["message"]
            .as_str()
            .unwrap()
            .contains("a release this course does not grade with"),
        "{hank}"
    );
    assert_eq!(
        gradescope_test(&out, "hank", "entry-point")["status"],
        "failed"
    );
    let ivy = result(&out, "ivy");
    assert_eq!(ivy["questions"][0]["held_points"], 1.0, "{ivy}");
    let t = gradescope_test(&out, "ivy", "entry-point");
    assert_eq!(t["status"], "failed", "{t}");

    // F13: the byte-order mark is read past.
    let bom = result(&out, "bom");
    assert_eq!(
        (bom["outcome"].as_str(), bom["score"].as_f64()),
        (Some("graded"), Some(6.0)),
        "{bom}"
    );

    // A rerun regrades none of them: every outcome above is the student's own.
    let before = std::fs::read_to_string(out.join("results/dirans.json")).unwrap();
    let again = grade(&subs, &out, &seed);
    assert!(!again.contains("grader-error"), "{again}");
    assert_eq!(
        std::fs::read_to_string(out.join("results/dirans.json")).unwrap(),
        before
    );
}

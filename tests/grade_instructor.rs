//! The instructor's view, with the real go, readelf, gdb and dlv: a changed submission
//! is regraded without flags, --only regrades one, a subset merges into the gradebook,
//! copy flags, held-for-review marks and lateness (mtime, a metadata file, extensions)
//! are in the gradebook, statistics and a histogram in the terminal and in report.html
//! (checked in headless Chromium), and free-text answers go out for hand grading and
//! come back as scores.

mod common;

use common::{CHAIN, answers, entry, grader, ok, result, touch};
use std::path::{Path, PathBuf};
use std::process::Command;

const SEED: &str = "s-14-instr";
const WHY: &str = "runnext keeps the newest g on the same P so it runs next, warm in the cache";

fn grade(subs: &Path, out: &Path, seed: &str, extra: &[&str]) -> String {
    let ext = out.parent().unwrap().join("ext.csv");
    let mut args = vec![
        "--seed",
        seed,
        "--no-sandbox",
        "-j",
        "2",
        "--deadline",
        "2026-01-10T00:00:00Z",
        "--late-penalty",
        "10",
        "--extensions",
        ext.to_str().unwrap(),
    ];
    args.extend(extra);
    common::grade(subs, out, &args)
}

fn csv_row(out: &Path, student: &str) -> Vec<String> {
    let csv = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("{student},")))
        .unwrap_or_else(|| panic!("{student} not in\n{csv}"));
    // Quoted fields here hold no commas but those inside quotes: split on quotes first.
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut q = false;
    for c in line.chars() {
        match c {
            '"' => q = !q,
            ',' if !q => cells.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    cells.push(cur);
    assert_eq!(cells.len(), header.len(), "{line}");
    header
        .iter()
        .zip(cells)
        .map(|(h, c)| format!("{h}={c}"))
        .collect()
}

fn has(row: &[String], cell: &str) -> bool {
    row.iter().any(|c| c.starts_with(cell))
}

fn modified(out: &Path, s: &str) -> std::time::SystemTime {
    std::fs::metadata(out.join(format!("results/{s}.json")))
        .unwrap()
        .modified()
        .unwrap()
}

#[test]
fn the_instructors_view_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let students = ["amy", "ben", "cat", "dan", "eve"];
    std::fs::write(
        d.join("roster.csv"),
        format!("student\n{}\n", students.join("\n")),
    )
    .unwrap();
    // A seed whose variants give amy and ben different entry points (a copied address
    // is then visible).
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
            entry(&d.join("handouts/amy")) != entry(&d.join("handouts/ben"))
        })
        .expect("some seed gives amy and ben different entry points");
    let seed = seed.as_str();
    let go = ok(Command::new("go")
        .arg("version")
        .env("GOTOOLCHAIN", "local"));
    let go = go.trim();
    let subs = d.join("subs");
    let late_subs = d.join("late");
    for s in students {
        let to = if s == "eve" {
            late_subs.join(s)
        } else {
            subs.join(s)
        };
        std::fs::create_dir_all(&to).unwrap();
        for f in ["main.go", "go.mod"] {
            std::fs::copy(d.join("handouts").join(s).join(f), to.join(f)).unwrap();
        }
    }
    let amy = entry(&d.join("handouts/amy"));
    std::fs::write(subs.join("amy/answers.yaml"), answers(go, &amy, CHAIN, WHY)).unwrap();
    // ben copies amy's answers, free text included.
    std::fs::write(subs.join("ben/answers.yaml"), answers(go, &amy, CHAIN, WHY)).unwrap();
    let cat = entry(&d.join("handouts/cat"));
    std::fs::write(
        subs.join("cat/answers.yaml"),
        answers(
            go,
            &cat,
            "[_rt0_amd64_linux, runtime.rt0_go, runtime.schedinit, runtime.main, main.main]",
            "so that it runs soon",
        ),
    )
    .unwrap();
    // dan built with a Go the grader does not have: his address is held for review.
    std::fs::write(
        subs.join("dan/answers.yaml"),
        answers(
            "go version go1.17.1 linux/amd64",
            "0x45c1e0",
            CHAIN,
            "because the scheduler says so",
        ),
    )
    .unwrap();
    std::fs::write(
        late_subs.join("eve/answers.yaml"),
        answers(go, &entry(&d.join("handouts/eve")), CHAIN, "locality"),
    )
    .unwrap();
    // Times: amy on time; ben 2 days late (folder mtime); cat late but with an
    // extension; dan from Gradescope's metadata (on time); eve 12 hours late.
    std::fs::write(
        d.join("ext.csv"),
        "student,deadline\ncat,2026-01-20T00:00:00Z\n",
    )
    .unwrap();
    std::fs::write(
        subs.join("dan.submission_metadata.json"),
        r#"{"id": 1, "created_at": "2026-01-09T14:22:32.365935-07:00", "users": [{"email": "dan@example.edu", "id": 7, "name": "Dan"}]}"#,
    )
    .unwrap();
    touch(&subs.join("amy"), "2026-01-09T10:00:00Z");
    touch(&subs.join("ben"), "2026-01-11T10:00:00Z");
    touch(&subs.join("cat"), "2026-01-15T10:00:00Z");
    touch(&subs.join("dan"), "2026-03-01T00:00:00Z");
    touch(&late_subs.join("eve"), "2026-01-10T12:00:00Z");

    let out = d.join("out");
    let table = grade(&subs, &out, seed, &[]);
    // Copy flags, held marks and lateness, in the gradebook.
    let ben = csv_row(&out, "ben");
    // ben handed in amy's answers.yaml byte for byte (the sandbox's copy check says so
    // first), with an address right for her build.
    assert!(
        ben.iter().any(
            |c| c.starts_with("flags=answers.yaml is byte for byte the same as amy's")
                && c.contains("entry-point: the answer is right for amy's build")
        ),
        "{ben:?}"
    );
    assert!(
        ben.iter()
            .any(|c| c.starts_with("flags=") && c.contains("why-runnext: the same answer as amy")),
        "{ben:?}"
    );
    assert!(
        has(&ben, "late=2 days after 2026-01-10T00:00:00Z: -20% of 5"),
        "{ben:?}\n{table}"
    );
    assert!(has(&ben, "total=4,") || has(&ben, "total=4"), "{ben:?}");
    let amy_row = csv_row(&out, "amy");
    // Identical free text flags both; the address only the one it is wrong for.
    assert!(
        has(&amy_row, "total=6") && amy_row.contains(&"late=".to_string()),
        "{amy_row:?}"
    );
    assert_eq!(
        amy_row.last().unwrap(),
        "flags=answers.yaml is byte for byte the same as ben's; why-runnext: the same answer as ben",
        "{amy_row:?}"
    );
    let cat_row = csv_row(&out, "cat");
    assert!(
        cat_row.contains(&"late=".to_string()),
        "the extension covers cat: {cat_row:?}"
    );
    let dan = csv_row(&out, "dan");
    assert!(
        has(&dan, "held=1")
            && dan
                .iter()
                .any(|c| c.starts_with("review=entry-point held: address 0x45c1e0")),
        "{dan:?}"
    );
    assert!(has(&dan, "late="), "{dan:?}");
    // dan's chain is go1.19's, wrong for the go1.17 he named: not a copy of the others'.
    assert_eq!(dan.last().unwrap(), "flags=", "{dan:?}");
    assert_eq!(result(&out, "dan")["submitted_at"], "2026-01-09T21:22:32Z");
    // Statistics and the histogram in the terminal.
    assert!(
        table.contains("question          max   graded  mean  spread  right  held  by hand"),
        "{table}"
    );
    let chain_line = table
        .lines()
        .find(|l| l.starts_with("startup-chain "))
        .unwrap();
    let cells: Vec<&str> = chain_line.split_whitespace().collect();
    assert_eq!(cells[..3], ["startup-chain", "4", "4"], "{chain_line}");
    // amy and ben have go1.19's whole chain; dan's is checked against go1.17's.
    assert_eq!(cells[5], "2", "{chain_line}");
    assert!(
        table.contains("copy flags")
            && table.contains("late:")
            && table.contains("held for review"),
        "{table}"
    );
    assert!(table.contains("scores:") && table.contains('#'), "{table}");

    // A rerun regrades nothing; a changed submission is regraded without flags.
    let before: Vec<_> = ["amy", "ben", "cat", "dan"]
        .iter()
        .map(|s| modified(&out, s))
        .collect();
    let again = grade(&subs, &out, seed, &[]);
    assert!(
        again.contains("4 of 4 submissions already graded and unchanged"),
        "{again}"
    );
    std::fs::write(
        subs.join("cat/answers.yaml"),
        answers(go, &cat, CHAIN, "so that it runs soon"),
    )
    .unwrap();
    touch(&subs.join("cat"), "2026-01-15T10:00:00Z");
    let again = grade(&subs, &out, seed, &[]);
    assert!(
        again.contains("3 of 4 submissions already graded and unchanged")
            && again.contains("] cat: graded 6/6"),
        "{again}"
    );
    assert_eq!(modified(&out, "amy"), before[0]);
    assert_ne!(modified(&out, "cat"), before[2]);
    // --only regrades one; the gradebook still holds everyone.
    let only = grade(&subs, &out, seed, &["--only", "ben"]);
    assert!(only.contains("[1/1] ben"), "{only}");
    assert_ne!(modified(&out, "ben"), before[1]);
    assert_eq!(modified(&out, "dan"), before[3]);
    // A subset from another folder (eve, late) merges into the same gradebook.
    grade(&late_subs, &out, seed, &[]);
    let csv = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(
        has(
            &csv_row(&out, "eve"),
            "late=1 day after 2026-01-10T00:00:00Z: -10% of 6"
        ),
        "{csv}"
    );

    // Hand grading: one file per question, filled in, imported into the same gradebook.
    let files = ok(grader()
        .args(["hand", "export", "--split", "question"])
        .arg(&out));
    let runnext = out.join("hand/hand-why-runnext.csv");
    assert!(files.contains(runnext.to_str().unwrap()), "{files}");
    let text = std::fs::read_to_string(&runnext).unwrap();
    assert!(
        text.starts_with("student,question,max,points,comment,answer\r\n") && text.contains(WHY),
        "{text}"
    );
    let filled: String = text
        .lines()
        .map(|l| {
            if l.starts_with("amy,") {
                l.replacen(
                    "amy,why-runnext,1,,",
                    "amy,why-runnext,2,2,\"clear, right\"",
                    1,
                )
            } else if l.starts_with("cat,") {
                l.replacen("cat,why-runnext,1,,", "cat,why-runnext,2,0.5,", 1)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&runnext, filled).unwrap();
    for split in ["one", "student"] {
        let f = ok(grader()
            .args(["hand", "export", "--split", split, "-d"])
            .arg(d.join(split))
            .arg(&out));
        assert!(f.lines().count() >= 1, "{f}");
    }
    assert!(d.join("student/hand-amy.csv").is_file() && d.join("one/hand-grading.csv").is_file());
    let imported = ok(grader().args(["hand", "import"]).arg(&out).arg(&runnext));
    assert!(imported.contains("2 hand scores"), "{imported}");
    let amy_row = csv_row(&out, "amy");
    assert!(
        has(&amy_row, "total=8") && has(&amy_row, "max=8") && has(&amy_row, "why-runnext=2"),
        "{amy_row:?}"
    );
    assert!(has(&csv_row(&out, "cat"), "why-runnext=0.5"));
    // A regrade keeps the hand scores (they live beside the results).
    grade(&subs, &out, seed, &["--only", "amy"]);
    assert!(has(&csv_row(&out, "amy"), "why-runnext=2"));
    // A bad score is refused with its line, and nothing is lost.
    std::fs::write(
        d.join("bad.csv"),
        "student,question,max,points,comment,answer\nben,why-runnext,2,3,,\n",
    )
    .unwrap();
    let o = grader()
        .args(["hand", "import"])
        .arg(&out)
        .arg(d.join("bad.csv"))
        .output()
        .unwrap();
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr)
                .contains("line 2: 3 points is not between 0 and the max 2")
    );
    assert!(has(&csv_row(&out, "amy"), "why-runnext=2"));

    report_in_chromium(&out.join("report.html"), d);
}

/// Headless Chromium renders report.html: the DOM it builds has the statistics, the
/// histogram's bars and the gradebook's marks; a screenshot is kept for a person.
fn report_in_chromium(report: &Path, d: &Path) {
    let chromium = ["chromium", "chromium-browser"]
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!("no chromium: scripts/install-deps.sh installs it (apt-get install chromium)")
        });
    let html = std::fs::read_to_string(report).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let run = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let o = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", report.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let dom = run(&["--dump-dom"]);
    assert!(dom.contains("<tr data-question=\"startup-chain\"><td class=\"t\">startup-chain</td><td>4</td><td>5</td>"), "{dom}");
    let bars = dom.matches("<rect class=\"bin\"").count();
    assert_eq!(bars, 10, "{dom}");
    let counted: usize = dom
        .split("data-count=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(counted, 5, "every submission in one bar");
    assert!(
        dom.contains("copy? entry-point: the answer is right for amy's build")
            && dom.contains("held: entry-point"),
        "{dom}"
    );
    let shot = std::env::var_os("GOLAB_KEEP_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or(d.join("report.png"));
    run(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1100,900",
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

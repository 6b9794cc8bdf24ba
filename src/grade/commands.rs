//! The grading commands' glue: from parsed arguments to a Grader and back to files.

use crate::cli::{AssignArgs, CheckArgs, GradeArgs, GradingArgs};
use anyhow::{Context, Result, bail};
use golab::files::write_atomic;
use golab::grade::{batch, gradebook, grader::Grader, handout, render, submission, variant};
use golab::lab;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub fn assign(a: &AssignArgs) -> Result<ExitCode> {
    let lab = lab::load(&a.lab)?;
    let spec = lab
        .variant
        .as_ref()
        .with_context(|| format!("lab {} declares no variant", lab.name))?;
    let text = std::fs::read_to_string(&a.roster)
        .with_context(|| format!("cannot read {}", a.roster.display()))?;
    let students = variant::roster(&text).with_context(|| format!("{}", a.roster.display()))?;
    let mut csv = String::from("student,variant\n");
    for s in &students {
        let v = variant::draw(spec, &a.seed, s);
        let dir = a.out.join(s);
        variant::materialize(&lab, &v, &dir)?;
        // The handout: the program, how to run it, and the answers to fill in.
        std::fs::rename(dir.join("lab.yaml"), dir.join("lab.yaml.variant")).ok();
        let tmpl = dir.join(&spec.template);
        if spec.template != "main.go" {
            std::fs::remove_dir_all(tmpl.parent().unwrap_or(&dir)).ok();
        }
        let go =
            golab::toolchain::GoVersion::parse(&a.go).with_context(|| format!("--go {}", a.go))?;
        std::fs::write(dir.join("answers.yaml"), handout::skeleton(&lab, go))?;
        std::fs::write(
            dir.join(handout::FILE),
            handout::Handout {
                lab: lab.name.clone(),
                seed: a.seed.clone(),
                student: s.clone(),
            }
            .text(),
        )?;
        let env: Vec<String> = lab
            .program
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let args = match lab::load_file(&dir.join("lab.yaml.variant"))
            .ok()
            .and_then(|l| l.scenarios.first().map(|s| s.args()))
        {
            Some(a) => a,
            None => lab.program.args.clone(),
        };
        let run = format!(
            "{}./main {}",
            if env.is_empty() {
                String::new()
            } else {
                format!("{} ", env.join(" "))
            },
            args.iter()
                .map(|a| handout::shell_word(a))
                .collect::<Vec<_>>()
                .join(" ")
        );
        std::fs::write(
            dir.join("README.txt"),
            handout::readme(&lab, &v.describe(), run.trim_end()),
        )?;
        std::fs::remove_file(dir.join("lab.yaml.variant")).ok();
        csv.push_str(&format!("{s},{}\n", v.describe()));
    }
    write_atomic(&a.out.join("assignments.csv"), csv.as_bytes())?;
    println!(
        "{} variants of {} in {} (assignments.csv lists them)",
        students.len(),
        lab.name,
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `hidden`: what the sandboxed programs must not see (the submissions folder).
/// Also returns what the results must say about the isolation, when it is reduced.
/// The grader for these arguments (the choice of isolation is the library's).
fn grader(g: &GradingArgs, work: PathBuf, hidden: &[PathBuf]) -> Result<(Grader, Option<String>)> {
    let setup = golab::grade::setup::Setup {
        lab: g.lab.clone(),
        seed: g.seed.clone(),
        toolchains: g.toolchains.clone(),
        dlv: g.tools.dlv.clone(),
        timeout: Duration::from_secs(g.timeout),
        program_time: Duration::from_secs(g.program_seconds),
        no_sandbox: g.no_sandbox,
        fallback_isolation: g.fallback_isolation,
    };
    golab::grade::setup::grader(&setup, std::env::current_exe()?, work, hidden)
}

pub fn grade(a: &GradeArgs) -> Result<ExitCode> {
    let subs = submission::discover(&a.dir)?;
    if subs.is_empty() {
        bail!(
            "no submissions in {} (expected STUDENT/ folders, STUDENT.zip or STUDENT.tar.gz)",
            a.dir.display()
        );
    }
    let late = late_policy(&a.late)?;
    let (g, note) = grader(&a.grading, a.out.join("work"), std::slice::from_ref(&a.dir))?;
    if let Some(p) = &g.lab.late {
        p.check()
            .with_context(|| format!("lab {}: late:", g.lab.name))?;
    }
    let b = batch::run(
        &g,
        &subs,
        &batch::Options {
            jobs: a.jobs,
            force: a.force,
            only: a.only.clone(),
            late: late.clone(),
            note,
            out: a.out.clone(),
            quiet: a.quiet,
        },
    )?;
    // The policy the gradebook was made with, for `golab hand import` to apply again.
    match late.as_ref().or(g.lab.late.as_ref()) {
        Some(p) => write_atomic(
            &a.out.join("late-policy.json"),
            serde_json::to_string_pretty(p)?.as_bytes(),
        )?,
        None => {
            let _ = std::fs::remove_file(a.out.join("late-policy.json"));
        }
    }
    batch::write_reports(&b, &a.out)?;
    print!("{}", render::table(&b));
    print!("{}", gradebook::stats_text(&b));
    println!(
        "reports: {}/gradebook.csv, report.html, junit.xml, results.json, gradescope/",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The late policy from the command line, if a deadline is given.
fn late_policy(l: &crate::cli::LateArgs) -> Result<Option<gradebook::LatePolicy>> {
    let Some(deadline) = &l.deadline else {
        if l.extensions.is_some() || l.late_penalty != 0.0 || l.late_max_days.is_some() {
            bail!("--extensions, --late-penalty and --late-max-days need --deadline");
        }
        return Ok(None);
    };
    let mut p = gradebook::LatePolicy {
        deadline: deadline.clone(),
        penalty_per_day: l.late_penalty,
        max_days: l.late_max_days,
        extensions: Default::default(),
    };
    if let Some(f) = &l.extensions {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        p.read_extensions(&text)
            .with_context(|| format!("{}", f.display()))?;
    }
    p.check()?;
    Ok(Some(p))
}

/// The gradebook of a grading folder as `golab grade` left it (results.json names the
/// lab and its questions), reloaded from the result files.
fn reload(out: &std::path::Path) -> Result<golab::grade::model::BatchResult> {
    let p = out.join("results.json");
    let text = std::fs::read_to_string(&p).with_context(|| {
        format!(
            "{} has no results.json: run golab grade -o {} first",
            out.display(),
            out.display()
        )
    })?;
    let old: golab::grade::model::BatchResult =
        serde_json::from_str(&text).with_context(|| format!("{}", p.display()))?;
    let saved = std::fs::read_to_string(out.join("late-policy.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<gradebook::LatePolicy>(&t).ok());
    batch::load(out, &old.lab, old.questions, saved.as_ref())
}

pub fn hand(a: &crate::cli::HandArgs) -> Result<ExitCode> {
    match &a.command {
        crate::cli::HandCmd::Export { out, split, dir } => {
            let b = reload(out)?;
            let split = match split.as_str() {
                "one" => gradebook::Split::One,
                "question" => gradebook::Split::Question,
                "student" => gradebook::Split::Student,
                other => bail!("--split {other}: use one, question or student"),
            };
            let hand = gradebook::HandScores::load(out)?;
            let files = gradebook::hand_export(&b, &hand, split);
            if files.is_empty() {
                bail!("no free-text answers to grade by hand in {}", out.display());
            }
            let dir = dir.clone().unwrap_or(out.join("hand"));
            for (name, text) in &files {
                write_atomic(&dir.join(name), text.as_bytes())?;
                println!("{}", dir.join(name).display());
            }
            Ok(ExitCode::SUCCESS)
        }
        crate::cli::HandCmd::Import { out, files } => {
            let b = reload(out)?;
            let mut hand = gradebook::HandScores::load(out)?;
            let mut n = 0;
            for f in files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                n += hand
                    .import(&text, &b)
                    .with_context(|| format!("{}", f.display()))?;
            }
            write_atomic(
                &out.join(gradebook::HAND_FILE),
                serde_json::to_string_pretty(&hand)?.as_bytes(),
            )?;
            let b = reload(out)?;
            batch::write_reports(&b, out)?;
            print!("{}", render::table(&b));
            println!(
                "{n} hand scores in {}",
                out.join(gradebook::HAND_FILE).display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn check(a: &CheckArgs) -> Result<ExitCode> {
    let name = a
        .submission
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // A handout folder says its lab, seed and student; flags given win.
    // Grading on Gradescope, the handout file in the submission is the student's to
    // edit: lab, seed and id come from the autograder and its metadata only.
    let from_handout = if a.submission.is_dir() && a.gradescope_metadata.is_none() {
        handout::Handout::read(&a.submission)?
    } else {
        None
    };
    let mut grading = a.grading.clone();
    if let Some(h) = &from_handout {
        if grading.lab.is_none() {
            grading.lab = Some(h.lab.clone());
        }
        if grading.seed.is_none() {
            grading.seed = Some(h.seed.clone());
        }
    }
    let meta = match &a.gradescope_metadata {
        Some(p) => Some(golab::grade::gradescope::Metadata::read(p)?),
        None => None,
    };
    let submitted_at = meta.as_ref().and_then(|m| m.created_at);
    let student = match (&a.student, &from_handout) {
        (Some(s), _) => s.clone(),
        (None, _) if meta.is_some() => meta.as_ref().expect("some").student.clone(),
        (None, Some(h)) => h.student.clone(),
        (None, None) => std::fs::canonicalize(&a.submission)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or(name.clone())
            .trim_end_matches(".zip")
            .trim_end_matches(".tar.gz")
            .trim_end_matches(".tgz")
            .to_string(),
    };
    variant::check_student_id(&student).context("give the id with --student")?;
    let source = if a.submission.is_dir() {
        submission::Source::Folder(a.submission.clone())
    } else if name.ends_with(".zip") {
        submission::Source::Zip(a.submission.clone())
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        submission::Source::TarGz(a.submission.clone())
    } else {
        bail!(
            "{} is not a folder, a .zip or a .tar.gz",
            a.submission.display()
        );
    };
    let tmp = tempfile::Builder::new().prefix("golab-check-").tempdir()?;
    let (g, note) = grader(&grading, tmp.path().to_path_buf(), &[])?;
    let mut r = g.grade(&submission::Submission { student, source }, 0);
    if let Some(n) = note {
        r.message = if r.message.is_empty() {
            n
        } else {
            format!("{}; {n}", r.message)
        };
    }
    if let Some(at) = &submitted_at {
        r.submitted_at = Some(gradebook::fmt_time(*at));
        r.submitted_from = Some("created_at of Gradescope's submission_metadata.json".into());
    }
    print!("{}", feedback(&r));
    if let Some(f) = &a.gradescope {
        write_atomic(
            f,
            serde_json::to_string_pretty(&render::gradescope(&r))?.as_bytes(),
        )?;
    }
    Ok(if r.outcome == golab::grade::model::Outcome::Graded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One submission's result in words, for the student.
pub fn feedback(r: &golab::grade::model::SubmissionResult) -> String {
    let mut s = format!(
        "{}: {} ({}/{} points)\n",
        r.student,
        r.outcome.name(),
        render::num(r.score),
        render::num(r.max_score)
    );
    if !r.message.is_empty() {
        s.push_str(&format!("  {}\n", r.message));
    }
    if let Some(v) = &r.variant {
        s.push_str(&format!("  variant: {v}\n"));
    }
    for q in &r.questions {
        let pts = if q.manual {
            "graded by hand".to_string()
        } else if q.held_points > 0.0 {
            format!(
                "{}/{}, {} held for review",
                render::num(q.points),
                render::num(q.max_points),
                render::num(q.held_points)
            )
        } else {
            format!("{}/{}", render::num(q.points), render::num(q.max_points))
        };
        s.push_str(&format!("- {} [{pts}]: {}\n", q.id, q.title));
        for f in &q.feedback {
            s.push_str(&format!("    {f}\n"));
        }
    }
    if let Some(t) = &r.transcript {
        s.push_str(&format!("- transcript: {}\n", t.summary()));
        for f in t.findings.iter().skip(1) {
            s.push_str(&format!("    {f}\n"));
        }
    }
    s
}

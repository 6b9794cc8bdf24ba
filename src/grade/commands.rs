//! The instructor's commands, `golab assign | grade | check | hand`, from plain requests
//! (`cli.rs` fills them from the command line) to a Grader, and back to files; each
//! returns what the command prints.

use crate::files::write_atomic;
use crate::grade::setup::Setup;
use crate::grade::{batch, gradebook, grader::Grader, handout, render, submission, variant};
use crate::lab;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// `golab assign`: one handout folder per student of the roster.
#[derive(Clone, Debug)]
pub struct Assign {
    pub lab: String,
    /// A CSV with a `student` (or `id`) column.
    pub roster: PathBuf,
    pub seed: String,
    pub out: PathBuf,
    /// The Go the course builds with (the skeleton's chain length).
    pub go: String,
}

/// A late policy from the command line: none without a deadline.
#[derive(Clone, Debug, Default)]
pub struct Late {
    pub deadline: Option<String>,
    pub penalty_per_day: f64,
    pub max_days: Option<f64>,
    /// A file of per-student extensions.
    pub extensions: Option<PathBuf>,
}

/// `golab grade`: a folder of submissions.
#[derive(Clone, Debug)]
pub struct Grade {
    pub dir: PathBuf,
    pub setup: Setup,
    pub jobs: usize,
    pub force: bool,
    pub only: Vec<String>,
    pub late: Late,
    pub out: PathBuf,
    pub quiet: bool,
}

/// `golab check`: one submission (a folder, .zip or .tar.gz), as a student or
/// Gradescope's autograder grades it.
#[derive(Clone, Debug)]
pub struct Check {
    pub submission: PathBuf,
    pub setup: Setup,
    pub student: Option<String>,
    /// Gradescope's submission_metadata.json.
    pub gradescope_metadata: Option<PathBuf>,
}

/// What `golab check` found: the feedback it prints, and whether it was graded.
#[derive(Debug)]
pub struct Checked {
    pub text: String,
    pub graded: bool,
    pub result: crate::grade::model::SubmissionResult,
}

impl Checked {
    /// Gradescope's results.json of this submission (`check --gradescope FILE`).
    pub fn write_gradescope(&self, f: &std::path::Path) -> Result<()> {
        write_atomic(
            f,
            serde_json::to_string_pretty(&render::gradescope(&self.result))?.as_bytes(),
        )
    }
}

/// `golab hand export | import`: free-text answers graded by hand.
#[derive(Clone, Debug)]
pub enum Hand {
    Export {
        out: PathBuf,
        /// one, question or student.
        split: String,
        dir: Option<PathBuf>,
    },
    Import {
        out: PathBuf,
        files: Vec<PathBuf>,
    },
}

/// `golab assign`; the line saying what was written.
pub fn assign(a: &Assign) -> Result<String> {
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
            crate::toolchain::GoVersion::parse(&a.go).with_context(|| format!("--go {}", a.go))?;
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
    Ok(format!(
        "{} variants of {} in {} (assignments.csv lists them)",
        students.len(),
        lab.name,
        a.out.display()
    ))
}

/// The grader for this setup (the choice of isolation is `setup`'s), and what the
/// results must say about the isolation when it is reduced. `hidden`: what the
/// sandboxed programs must not see (the submissions folder). Each submission's lab
/// run starts this same binary.
fn grader(g: &Setup, work: PathBuf, hidden: &[PathBuf]) -> Result<(Grader, Option<String>)> {
    crate::grade::setup::grader(g, std::env::current_exe()?, work, hidden)
}

/// `golab grade`; the table, the statistics and where the reports are.
pub fn grade(a: &Grade) -> Result<String> {
    let subs = submission::discover(&a.dir)?;
    if subs.is_empty() {
        bail!(
            "no submissions in {} (expected STUDENT/ folders, STUDENT.zip or STUDENT.tar.gz)",
            a.dir.display()
        );
    }
    let late = late_policy(&a.late)?;
    let (g, note) = grader(&a.setup, a.out.join("work"), std::slice::from_ref(&a.dir))?;
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
    Ok(format!(
        "{}{}reports: {}/gradebook.csv, report.html, junit.xml, results.json, gradescope/\n",
        render::table(&b),
        gradebook::stats_text(&b),
        a.out.display()
    ))
}

/// The late policy from the command line, if a deadline is given.
fn late_policy(l: &Late) -> Result<Option<gradebook::LatePolicy>> {
    let Some(deadline) = &l.deadline else {
        if l.extensions.is_some() || l.penalty_per_day != 0.0 || l.max_days.is_some() {
            bail!("--extensions, --late-penalty and --late-max-days need --deadline");
        }
        return Ok(None);
    };
    let mut p = gradebook::LatePolicy {
        deadline: deadline.clone(),
        penalty_per_day: l.penalty_per_day,
        max_days: l.max_days,
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
fn reload(out: &std::path::Path) -> Result<crate::grade::model::BatchResult> {
    let p = out.join("results.json");
    let text = std::fs::read_to_string(&p).with_context(|| {
        format!(
            "{} has no results.json: run golab grade -o {} first",
            out.display(),
            out.display()
        )
    })?;
    let old: crate::grade::model::BatchResult =
        serde_json::from_str(&text).with_context(|| format!("{}", p.display()))?;
    let saved = std::fs::read_to_string(out.join("late-policy.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<gradebook::LatePolicy>(&t).ok());
    batch::load(out, &old.lab, old.questions, saved.as_ref())
}

/// `golab hand`; the files written (export), or the table and the count (import).
pub fn hand(a: &Hand) -> Result<String> {
    match a {
        Hand::Export { out, split, dir } => {
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
            let mut written = String::new();
            for (name, text) in &files {
                write_atomic(&dir.join(name), text.as_bytes())?;
                written.push_str(&format!("{}\n", dir.join(name).display()));
            }
            Ok(written)
        }
        Hand::Import { out, files } => {
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
            Ok(format!(
                "{}{n} hand scores in {}\n",
                render::table(&b),
                out.join(gradebook::HAND_FILE).display()
            ))
        }
    }
}

/// `golab check`: the submission graded, with its feedback.
pub fn check(a: &Check) -> Result<Checked> {
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
    let mut grading = a.setup.clone();
    if let Some(h) = &from_handout {
        if grading.lab.is_none() {
            grading.lab = Some(h.lab.clone());
        }
        if grading.seed.is_none() {
            grading.seed = Some(h.seed.clone());
        }
    }
    let meta = match &a.gradescope_metadata {
        Some(p) => Some(crate::grade::gradescope::Metadata::read(p)?),
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
    Ok(Checked {
        text: feedback(&r),
        graded: r.outcome == crate::grade::model::Outcome::Graded,
        result: r,
    })
}

/// One submission's result in words, for the student.
pub fn feedback(r: &crate::grade::model::SubmissionResult) -> String {
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

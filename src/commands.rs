//! The grading commands' glue: from parsed arguments to a Grader and back to files.

use crate::cli::{AssignArgs, CheckArgs, GradeArgs, GradingArgs};
use anyhow::{Context, Result, bail};
use golab::files::write_atomic;
use golab::grade::{batch, grader::Grader, render, submission, variant};
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
        let mut answers = format!(
            "lab: {}\ngo: \"\"   # the output of `go version`, e.g. 1.17.1\n# transcript: dlv.txt   # optional: your dlv session, saved in this folder\nanswers:\n",
            lab.name
        );
        for q in &lab.questions {
            answers.push_str(&format!(
                "  # {} ({})\n  {}:\n",
                q.title,
                if q.points > 0.0 {
                    format!("{} points", q.points)
                } else {
                    "graded by hand".into()
                },
                q.id
            ));
        }
        std::fs::write(dir.join("answers.yaml"), answers)?;
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
            args.join(" ")
        );
        std::fs::write(
            dir.join("README.txt"),
            format!(
                "Lab {}: {}\nYour variant: {}\nBuild: go build -gcflags \"all=-l -N\" -o main .   Run: {run}\nFill in answers.yaml and hand in this folder (golab check . --lab {} shows what the grader will say).\n",
                lab.name,
                lab.title,
                v.describe(),
                lab.name
            ),
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
fn grader(g: &GradingArgs, work: PathBuf, hidden: &[PathBuf]) -> Result<Grader> {
    let lab = lab::load(&g.lab)?;
    if lab.questions.is_empty() {
        bail!("lab {} has no questions to grade", lab.name);
    }
    let mut goroots = Vec::new();
    let mut dlv_for = Vec::new();
    if let Some(t) = &g.toolchains {
        for e in std::fs::read_dir(t)
            .with_context(|| format!("cannot read the toolchains folder {}", t.display()))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("go1.") && e.path().join("bin/go").is_file() {
                goroots.push((name.clone(), e.path()));
                if let Some(dlv) = golab::toolchain::GoVersion::parse(&name)
                    .ok()
                    .and_then(|v| golab::toolchain::serving_dlv_in(t, v))
                {
                    dlv_for.push((name, dlv));
                }
            }
        }
    }
    let golab = std::env::current_exe()?;
    std::fs::create_dir_all(&work)?;
    let work = std::fs::canonicalize(&work)?;
    let timeout = Duration::from_secs(g.timeout);
    let runner: Box<dyn golab::grade::grader::LabRunner> = if g.no_sandbox {
        Box::new(batch::Direct {
            run: batch::GolabRun {
                golab,
                dlv: g.tools.dlv.clone(),
                dlv_for,
            },
            timeout,
        })
    } else {
        sandboxed_runner(g, &work, hidden, golab, dlv_for, timeout)?
    };
    Ok(Grader {
        lab,
        seed: g.seed.clone(),
        work,
        goroots,
        runner,
    })
}

pub fn grade(a: &GradeArgs) -> Result<ExitCode> {
    let subs = submission::discover(&a.dir)?;
    if subs.is_empty() {
        bail!(
            "no submissions in {} (expected STUDENT/ folders, STUDENT.zip or STUDENT.tar.gz)",
            a.dir.display()
        );
    }
    let g = grader(&a.grading, a.out.join("work"), std::slice::from_ref(&a.dir))?;
    let b = batch::run(
        &g,
        &subs,
        &batch::Options {
            jobs: a.jobs,
            force: a.force,
            out: a.out.clone(),
            quiet: a.quiet,
        },
    )?;
    batch::write_reports(&b, &a.out)?;
    print!("{}", render::table(&b));
    println!(
        "reports: {}/gradebook.csv, junit.xml, results.json, gradescope/",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn check(a: &CheckArgs) -> Result<ExitCode> {
    let name = a
        .submission
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let student = a.student.clone().unwrap_or_else(|| {
        name.trim_end_matches(".zip")
            .trim_end_matches(".tar.gz")
            .trim_end_matches(".tgz")
            .to_string()
    });
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
    let g = grader(&a.grading, tmp.path().to_path_buf(), &[])?;
    let r = g.grade(&submission::Submission { student, source }, 0);
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
        } else {
            format!("{}/{}", render::num(q.points), render::num(q.max_points))
        };
        s.push_str(&format!("- {} [{pts}]: {}\n", q.id, q.title));
        for f in &q.feedback {
            s.push_str(&format!("    {f}\n"));
        }
    }
    if let Some(t) = &r.transcript {
        s.push_str(&format!(
            "- transcript: {}\n",
            if t.genuine {
                "consistent with your program"
            } else {
                "could not have come from a real session of your program"
            }
        ));
        for f in &t.findings {
            s.push_str(&format!("    {f}\n"));
        }
    }
    s
}

/// The runner that puts each student's program in the sandbox (Linux only: bubblewrap,
/// uid switching, /proc monitoring).
#[cfg(target_os = "linux")]
fn sandboxed_runner(
    g: &GradingArgs,
    work: &std::path::Path,
    hidden: &[PathBuf],
    golab: PathBuf,
    dlv_for: Vec<(String, PathBuf)>,
    timeout: Duration,
) -> Result<Box<dyn golab::grade::grader::LabRunner>> {
    let work = work.to_path_buf();
    golab::grade::sandbox::available(true).context(
        "grading runs students' programs in a sandbox (or pass --no-sandbox for trusted code)",
    )?;
    // The sandbox runs as unprivileged uids: they must be able to enter the folders.
    for a in work.ancestors() {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(a)
            && m.permissions().mode() & 0o001 == 0
        {
            bail!(
                "{} is not enterable by other users (mode {:o}), so the sandbox cannot reach {}: grade into another folder (-o), or `chmod o+x {}`",
                a.display(),
                m.permissions().mode() & 0o777,
                work.display(),
                a.display()
            );
        }
    }
    let mut hide: Vec<PathBuf> = hidden
        .iter()
        .filter_map(|h| std::fs::canonicalize(h).ok())
        .collect();
    hide.push(work.clone());
    // golab itself runs inside the sandbox: a copy where its uids can reach it,
    // whatever the folder golab was installed in.
    let inside = work.join(".bin/golab");
    std::fs::create_dir_all(work.join(".bin"))?;
    std::fs::copy(&golab, &inside)
        .with_context(|| format!("cannot copy {} for the sandbox", golab.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.join(".bin"), std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o755))?;
    }
    let golab = inside;
    Ok(Box::new(golab::grade::sandboxed::Sandboxed {
        run: batch::GolabRun {
            golab,
            dlv: g.tools.dlv.clone(),
            dlv_for,
        },
        hidden: hide,
        caches: work.join(".gocache"),
        timeout,
        program: Duration::from_secs(g.program_seconds),
    }))
}

/// Elsewhere there is no sandbox: grading refuses, unless told the code is trusted.
#[cfg(not(target_os = "linux"))]
fn sandboxed_runner(
    _g: &GradingArgs,
    _work: &std::path::Path,
    _hidden: &[PathBuf],
    _golab: PathBuf,
    _dlv_for: Vec<(String, PathBuf)>,
    _timeout: Duration,
) -> Result<Box<dyn golab::grade::grader::LabRunner>> {
    bail!("{}", golab::grade::SANDBOX_ONLY_ON_LINUX)
}

//! A batch of submissions: N at a time, each result written atomically as soon as it
//! is known, so a batch killed at any moment resumes where it was and redoes nothing
//! (`--force` regrades). Also the direct way to run a lab for a submission.

use super::grader::{Grader, LabRunner, Ran};
use super::model::{BatchResult, Outcome, SubmissionResult};
use super::submission::Submission;
use crate::exec;
use crate::files::write_atomic;
use crate::trace::Observation;
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// The `golab run` a submission's lab gets, directly or in the sandbox.
pub struct GolabRun {
    pub golab: PathBuf,
    pub dlv: Option<PathBuf>,
    /// dlv for Go versions outside the default dlv's range (from the toolchains folder),
    /// by the GOROOT's folder name (`go1.21`).
    pub dlv_for: Vec<(String, PathBuf)>,
}

impl GolabRun {
    /// The dlv for a GOROOT: the toolchains folder's, else the one chosen for the batch.
    pub fn dlv(&self, goroot: Option<&Path>) -> Option<PathBuf> {
        let line = goroot
            .and_then(|g| g.file_name())
            .map(|n| n.to_string_lossy().to_string());
        line.and_then(|l| {
            self.dlv_for
                .iter()
                .find(|(x, _)| *x == l)
                .map(|(_, d)| d.clone())
        })
        .or_else(|| self.dlv.clone())
    }

    /// `golab run LAB_DIR -q --json-file OBS --work LAB_DIR/work [--binary] [--goroot] [--dlv]`.
    pub fn argv(
        &self,
        lab_dir: &Path,
        obs: &Path,
        binary: Option<&Path>,
        goroot: Option<&Path>,
    ) -> Vec<String> {
        let s = |p: &Path| p.display().to_string();
        let mut v = vec![
            s(&self.golab),
            "run".into(),
            s(lab_dir),
            "-q".into(),
            "--json-file".into(),
            s(obs),
            "--work".into(),
            s(&lab_dir.join("work")),
        ];
        if let Some(b) = binary {
            v.extend(["--binary".into(), s(b)]);
        }
        if let Some(g) = goroot {
            v.extend(["--goroot".into(), s(g)]);
        }
        if let Some(d) = self.dlv(goroot) {
            v.extend(["--dlv".into(), s(&d)]);
        }
        v
    }
}

/// Runs `golab run` on a submission's lab folder, as a child process of its own.
pub struct Direct {
    pub run: GolabRun,
    pub timeout: Duration,
}

/// Reads what `golab run` left: the Observation, or the outcome that stopped it.
pub fn outcome_of(code: Option<i32>, stderr: &str, obs: &Path) -> Result<Ran> {
    if matches!(code, Some(0) | Some(1)) {
        let text = std::fs::read_to_string(obs)
            .with_context(|| format!("golab run left no {}", obs.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let o: Observation = serde_json::from_value(v["observation"].clone())?;
        return Ok(Ran::Observed(Box::new(o)));
    }
    let err = stderr.trim();
    let (outcome, message) = if err.contains("go build") && err.contains("failed") {
        (
            Outcome::CompileError,
            err.split_once("failed in")
                .map(|(_, m)| m.split_once('\n').map(|x| x.1).unwrap_or(m))
                .unwrap_or(err)
                .trim()
                .to_string(),
        )
    } else if err.contains("deadline") || err.contains("did not finish in time") {
        (
            Outcome::Timeout,
            "the program did not finish within the lab's time limit (an endless loop?)".to_string(),
        )
    } else {
        (Outcome::GraderError, err.to_string())
    };
    Ok(Ran::Stopped {
        outcome,
        message: crate::exec::tail(&message),
    })
}

impl LabRunner for Direct {
    fn run(
        &self,
        lab_dir: &Path,
        prebuilt: Option<&Path>,
        goroot: Option<&Path>,
        _slot: usize,
    ) -> Result<Ran> {
        let obs = lab_dir.join("observation.json");
        let argv = self.run.argv(lab_dir, &obs, prebuilt, goroot);
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        match exec::run(c, "golab run", self.timeout) {
            Ok(out) => outcome_of(out.status.code(), &out.stderr, &obs),
            Err(e) if format!("{e:#}").contains("did not finish in time") => Ok(Ran::Stopped {
                outcome: Outcome::Timeout,
                message: "the lab run did not finish in time".into(),
            }),
            Err(e) => Err(e),
        }
    }
}

pub struct Options {
    pub jobs: usize,
    pub force: bool,
    /// Where results/ (one JSON per student) and the work folders go.
    pub out: PathBuf,
    pub quiet: bool,
}

pub fn result_path(out: &Path, student: &str) -> PathBuf {
    out.join("results").join(format!("{student}.json"))
}

/// Grades every submission not graded yet (all with `force`), `jobs` at a time.
pub fn run(g: &Grader, subs: &[Submission], o: &Options) -> Result<BatchResult> {
    std::fs::create_dir_all(o.out.join("results"))?;
    // A result stands unless --force, or unless it is golab's own failure (regraded).
    let done_before = |s: &Submission| -> bool {
        std::fs::read_to_string(result_path(&o.out, &s.student))
            .ok()
            .and_then(|t| serde_json::from_str::<SubmissionResult>(&t).ok())
            .is_some_and(|r| r.outcome != Outcome::GraderError)
    };
    let todo: VecDeque<&Submission> = subs.iter().filter(|s| o.force || !done_before(s)).collect();
    let total = todo.len();
    if !o.quiet && total < subs.len() {
        eprintln!(
            "grade: {} of {} submissions already graded (results/ in {}); --force regrades them",
            subs.len() - total,
            subs.len(),
            o.out.display()
        );
    }
    let queue = Mutex::new(todo);
    let done = Mutex::new(0usize);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for slot in 0..o.jobs.max(1) {
            let (queue, done, failure) = (&queue, &done, &failure);
            scope.spawn(move || {
                loop {
                    let Some(s) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let r = g.grade(s, slot);
                    let text = serde_json::to_string_pretty(&r).expect("serialisable");
                    if let Err(e) = write_atomic(&result_path(&o.out, &s.student), text.as_bytes())
                    {
                        *failure.lock().unwrap() = Some(e);
                        break;
                    }
                    let mut d = done.lock().unwrap();
                    *d += 1;
                    if !o.quiet {
                        eprintln!(
                            "[{}/{total}] {}: {} {}/{} ({:.1}s)",
                            *d,
                            s.student,
                            r.outcome.name(),
                            super::render::num(r.score),
                            super::render::num(r.max_score),
                            r.seconds
                        );
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    let mut results = Vec::new();
    for s in subs {
        let p = result_path(&o.out, &s.student);
        let text = std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()))?;
        let r: SubmissionResult = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a result golab wrote; delete it or use --force",
                p.display()
            )
        })?;
        results.push(r);
    }
    Ok(BatchResult {
        lab: g.lab.name.clone(),
        questions: g
            .lab
            .questions
            .iter()
            .map(|q| (q.id.clone(), q.points))
            .collect(),
        submissions: results,
    })
}

/// Writes every rendering of a batch into `out`.
pub fn write_reports(b: &BatchResult, out: &Path) -> Result<()> {
    write_atomic(&out.join("gradebook.csv"), super::render::csv(b).as_bytes())?;
    write_atomic(&out.join("junit.xml"), super::render::junit(b).as_bytes())?;
    write_atomic(&out.join("results.json"), super::render::json(b).as_bytes())?;
    for s in &b.submissions {
        let g = serde_json::to_string_pretty(&super::render::gradescope(s))?;
        write_atomic(
            &out.join("gradescope").join(format!("{}.json", s.student)),
            g.as_bytes(),
        )?;
    }
    Ok(())
}

//! A batch of submissions: N at a time, each result written atomically as soon as it
//! is known, so a batch killed at any moment resumes where it was and redoes nothing
//! (`--force` regrades). Also the direct way to run a lab for a submission.

use super::grader::{Grader, LabRunner, Ran};
use super::model::{BatchResult, Outcome, SubmissionResult};
use super::submission::Submission;
use crate::exec;
use crate::exit::{self, ErrorKind};
use crate::files::write_atomic;
use crate::trace::Observation;
use anyhow::{Context, Result, bail};
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

/// Reads what `golab run` left in its `--json-file` document: the Observation (exit 0
/// or 1), or the typed error that stopped it (`error.kind`, src/exit.rs). `stderr` is
/// only the message of a run that left no document (it crashed); it is never parsed.
pub fn outcome_of(code: Option<i32>, stderr: &str, obs: &Path) -> Result<Ran> {
    let doc = std::fs::read_to_string(obs)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    if matches!(code, Some(0) | Some(1)) {
        let v = doc.with_context(|| format!("golab run left no readable {}", obs.display()))?;
        let o: Observation = serde_json::from_value(v["observation"].clone())?;
        return Ok(Ran::Observed(Box::new(o)));
    }
    let (outcome, message) = match doc.as_ref().and_then(exit::error_of) {
        Some((ErrorKind::CompileError, m)) => (Outcome::CompileError, m),
        Some((ErrorKind::Timeout, _)) => (
            Outcome::Timeout,
            "the program did not finish within the lab's time limit (an endless loop?)".to_string(),
        ),
        Some((ErrorKind::ObserverKilled, m)) => (
            Outcome::ObserverKilled,
            format!("your program stopped or killed the debugger that observed it: {m}"),
        ),
        Some((ErrorKind::NetworkDenied, m)) => (
            Outcome::NetworkDenied,
            format!(
                "your program tried to open a network connection under the debugger; lab programs have no network ({m})"
            ),
        ),
        Some((ErrorKind::OutputLimit, m)) => (
            Outcome::OutputLimit,
            format!("your program wrote more output than allowed under the debugger ({m})"),
        ),
        Some((ErrorKind::Error, m)) => (Outcome::GraderError, m),
        None => (
            Outcome::GraderError,
            format!(
                "golab run ended ({}) without a result document: {}",
                code.map_or("by a signal".to_string(), |c| format!("exit status {c}")),
                stderr.trim()
            ),
        ),
    };
    Ok(Ran::Stopped {
        outcome,
        message: crate::exec::tail(message.trim()),
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
            Err(e) if exec::timed_out(&e) => Ok(Ran::Stopped {
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
    /// Grade only these students (always regraded); the others' results stay.
    pub only: Vec<String>,
    /// The deadline, extensions and penalty, applied when the gradebook is made.
    pub late: Option<super::gradebook::LatePolicy>,
    /// What every result must say about how it was graded (reduced isolation).
    pub note: Option<String>,
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
    for s in &o.only {
        if !subs.iter().any(|x| &x.student == s) {
            bail!("--only {s}: no submission of {s} in the submissions folder");
        }
    }
    // One submission that cannot be read whole never stops the batch: its unpacking
    // gives it an outcome of its own; the hash only says it is unreadable.
    let hashes: Vec<String> = subs
        .iter()
        .map(|s| super::gradebook::content_hash(s).unwrap_or_else(|e| format!("unreadable: {e:#}")))
        .collect();
    // A result stands unless --force, unless the submission changed since (its content
    // hash), or unless it is golab's own failure (regraded).
    let done_before = |s: &Submission, hash: &str| -> bool {
        std::fs::read_to_string(result_path(&o.out, &s.student))
            .ok()
            .and_then(|t| serde_json::from_str::<SubmissionResult>(&t).ok())
            .is_some_and(|r| r.outcome != Outcome::GraderError && r.content == hash)
    };
    let picked: Vec<(&Submission, &String)> = subs
        .iter()
        .zip(&hashes)
        .filter(|(s, _)| o.only.is_empty() || o.only.contains(&s.student))
        .collect();
    let todo: VecDeque<(&Submission, &String)> = picked
        .iter()
        .copied()
        .filter(|(s, h)| o.force || !o.only.is_empty() || !done_before(s, h))
        .collect();
    let total = todo.len();
    if !o.quiet && total < picked.len() {
        eprintln!(
            "grade: {} of {} submissions already graded and unchanged (results/ in {}); --force or --only STUDENT regrades",
            picked.len() - total,
            picked.len(),
            o.out.display()
        );
    }
    // Each slot's uid is this grader's alone: a run begins by killing its processes.
    for slot in 0..o.jobs.max(1) {
        if let Some(why) = g.runner.slot_in_use(slot) {
            bail!(
                "{why}: two graders on one machine need their own uids (GOLAB_SANDBOX_UID, or GOLAB_REDUCED_UID with --fallback-isolation, e.g. 63000)"
            );
        }
    }
    let queue = Mutex::new(todo);
    let done = Mutex::new(0usize);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for slot in 0..o.jobs.max(1) {
            let (queue, done, failure) = (&queue, &done, &failure);
            scope.spawn(move || {
                loop {
                    let Some((s, hash)) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let mut r = g.grade(s, slot);
                    r.content = hash.clone();
                    r.build = g.build_of(&s.student);
                    if let Some(n) = &o.note {
                        r.message = if r.message.is_empty() {
                            n.clone()
                        } else {
                            format!("{}; {n}", r.message)
                        };
                    }
                    if let Some((at, from)) = super::gradebook::submitted_at(s) {
                        r.submitted_at = Some(super::gradebook::fmt_time(at));
                        r.submitted_from = Some(from);
                    }
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
    // The build store keeps the binaries of the current results only (every result in
    // OUT/results, this batch's and earlier ones').
    let current: std::collections::BTreeSet<String> = std::fs::read_dir(o.out.join("results"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str::<SubmissionResult>(&t).ok())
        .filter_map(|r| r.build)
        .collect();
    let (n, bytes) = g.prune_builds(&current)?;
    if n > 0 && !o.quiet {
        eprintln!(
            "grade: removed {n} build(s) of programs no current submission has ({:.1} MiB) from {}",
            bytes as f64 / (1 << 20) as f64,
            g.work.join(".builds").display()
        );
    }
    let questions = g
        .lab
        .questions
        .iter()
        .map(|q| (q.id.clone(), q.points))
        .collect();
    let late = o.late.as_ref().or(g.lab.late.as_ref());
    load(&o.out, &g.lab.name, questions, late)
}

/// The gradebook from every result in OUT/results (earlier batches and subsets merge),
/// with hand scores, the late policy and copy flags applied.
pub fn load(
    out: &Path,
    lab: &str,
    questions: Vec<(String, f64)>,
    late: Option<&super::gradebook::LatePolicy>,
) -> Result<BatchResult> {
    let mut results = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("results"))
        .with_context(|| format!("no results/ in {}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for p in files {
        let text = std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()))?;
        let r: SubmissionResult = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a result golab wrote; delete it or use --force",
                p.display()
            )
        })?;
        results.push(r);
    }
    let mut b = BatchResult {
        lab: lab.to_string(),
        questions,
        submissions: results,
    };
    let hand = super::gradebook::HandScores::load(out)?;
    super::gradebook::finish(&mut b, &hand, late);
    Ok(b)
}

/// Writes every rendering of a batch into `out`.
pub fn write_reports(b: &BatchResult, out: &Path) -> Result<()> {
    write_atomic(&out.join("gradebook.csv"), super::render::csv(b).as_bytes())?;
    write_atomic(&out.join("junit.xml"), super::render::junit(b).as_bytes())?;
    write_atomic(&out.join("results.json"), super::render::json(b).as_bytes())?;
    write_atomic(
        &out.join("report.html"),
        super::gradebook::html(b).as_bytes(),
    )?;
    for s in &b.submissions {
        let g = serde_json::to_string_pretty(&super::render::gradescope(s))?;
        write_atomic(
            &out.join("gradescope").join(format!("{}.json", s.student)),
            g.as_bytes(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(r: Ran) -> (Outcome, String) {
        match r {
            Ran::Stopped { outcome, message } => (outcome, message.trim().to_string()),
            Ran::Observed(_) => panic!("expected a stopped run"),
        }
    }

    #[test]
    fn the_outcome_comes_from_the_error_document_not_the_wording() {
        let d = tempfile::tempdir().unwrap();
        let obs = d.path().join("observation.json");
        let doc = |k, m: &str| exit::error_document(exit::Doc::Run, k, m);
        // stderr says "deadline" and "go build ... failed": neither counts.
        let noise = "golab: go build failed in x\nthe deadline passed";
        std::fs::write(
            &obs,
            doc(ErrorKind::CompileError, "main.go:3: undefined: y"),
        )
        .unwrap();
        assert_eq!(
            stopped(outcome_of(Some(2), noise, &obs).unwrap()),
            (Outcome::CompileError, "main.go:3: undefined: y".into())
        );
        std::fs::write(&obs, doc(ErrorKind::Timeout, "dlv did not answer")).unwrap();
        assert_eq!(
            stopped(outcome_of(Some(2), "", &obs).unwrap()).0,
            Outcome::Timeout
        );
        // The observed program stopped its debugger: said by the kind, whatever the text.
        std::fs::write(
            &obs,
            doc(
                ErrorKind::ObserverKilled,
                "dlv (pid 7) was stopped by a signal",
            ),
        )
        .unwrap();
        let (o, m) = stopped(outcome_of(Some(2), noise, &obs).unwrap());
        assert_eq!(o, Outcome::ObserverKilled);
        assert!(m.ends_with("dlv (pid 7) was stopped by a signal"), "{m}");
        // The marker a person reads on stderr decides nothing.
        std::fs::write(&obs, doc(ErrorKind::Error, "no gdb")).unwrap();
        assert_eq!(
            stopped(outcome_of(Some(2), "observer-killed: dlv was stopped", &obs).unwrap()).0,
            Outcome::GraderError
        );
        assert_eq!(
            stopped(outcome_of(Some(2), noise, &obs).unwrap()),
            (Outcome::GraderError, "no gdb".into())
        );
        // No document (a crash): a grader error carrying what it printed.
        std::fs::remove_file(&obs).unwrap();
        let (o, m) = stopped(outcome_of(Some(101), noise, &obs).unwrap());
        assert_eq!(o, Outcome::GraderError);
        assert!(
            m.contains("exit status 101") && m.contains("deadline passed"),
            "{m}"
        );
        // Exit 0/1 without the document is an error, not a made-up outcome.
        assert!(outcome_of(Some(0), "", &obs).is_err());
    }
}

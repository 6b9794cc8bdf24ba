//! A batch of submissions: N at a time, each result written atomically as soon as it
//! is known, so a batch killed at any moment resumes where it was and redoes nothing
//! (`--force` regrades). Also the direct way to run a lab for a submission.

use super::grader::{Grader, LabRunner, Ran};
use super::model::{BatchResult, Outcome, SubmissionResult};
use super::submission::Submission;
use crate::exec;
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

/// Flags submissions that share what no two honest ones share: a byte-identical
/// answers.yaml, or values a real dlv session gets anew each run (a stack address under
/// ASLR; thread ids count beside one, not alone). Flags are for a person to look at;
/// they change no score.
pub fn flag_copies(results: &mut [SubmissionResult]) {
    use std::collections::BTreeMap;
    let mut by_answers: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut by_value: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        if let Some(h) = &r.answers_sha256 {
            by_answers.entry(h.clone()).or_default().push(i);
        }
        if let Some(t) = &r.transcript {
            for v in &t.per_run {
                by_value.entry(v.clone()).or_default().push(i);
            }
        }
    }
    let mut flags: Vec<Vec<String>> = vec![Vec::new(); results.len()];
    // One binary from two different assigned variants: at least one student did not
    // build the program they were given (sent a classmate's main.go, or the lab's own).
    let mut by_binary: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        if let (Some(b), Some(_)) = (&r.binary_sha256, &r.variant) {
            by_binary.entry(b.as_str()).or_default().push(i);
        }
    }
    for group in by_binary.values().filter(|g| g.len() > 1) {
        for &i in group {
            let others: Vec<&str> = group
                .iter()
                .filter(|&&j| j != i && results[j].variant != results[i].variant)
                .map(|&j| results[j].student.as_str())
                .collect();
            if !others.is_empty() {
                flags[i].push(format!(
                    "the program built is the same binary as {}'s, who were assigned other variants",
                    others.join(", ")
                ));
            }
        }
    }
    for group in by_answers.values().filter(|g| g.len() > 1) {
        for &i in group {
            let others: Vec<&str> = group
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| results[j].student.as_str())
                .collect();
            flags[i].push(format!(
                "answers.yaml is byte for byte the same as {}'s",
                others.join(", ")
            ));
        }
    }
    let mut shared: BTreeMap<(usize, usize), Vec<&str>> = BTreeMap::new();
    for (v, group) in by_value.iter().filter(|(_, g)| g.len() > 1) {
        for &i in group {
            for &j in group.iter().filter(|&&j| j != i) {
                shared.entry((i, j)).or_default().push(v.as_str());
            }
        }
    }
    // Thread ids alone can coincide (students' lab VMs boot alike); a stack address under
    // ASLR does not.
    for ((i, j), vals) in shared
        .into_iter()
        .filter(|(_, v)| v.iter().any(|x| x.starts_with("stack address ")))
    {
        flags[i].push(format!(
            "the dlv transcript shares values a real session gets anew each run with {}'s: {}",
            results[j].student,
            vals.join(", ")
        ));
    }
    for (r, f) in results.iter_mut().zip(flags) {
        r.flags = f;
    }
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

    fn result(
        student: &str,
        variant: Option<&str>,
        binary: &str,
        per_run: &[&str],
    ) -> SubmissionResult {
        serde_json::from_value(serde_json::json!({
            "student": student, "outcome": "graded", "message": "", "questions": [],
            "score": 0.0, "max_score": 0.0, "seconds": 0.0, "variant": variant,
            "binary_sha256": binary,
            "transcript": {"genuine": true, "findings": [], "facts_checked": 9, "per_run": per_run},
        }))
        .unwrap()
    }

    #[test]
    fn copies_are_flagged_on_what_no_two_honest_runs_share() {
        let mut r = vec![
            // bob built alice's variant: the same binary from another assignment.
            result(
                "alice",
                Some("n=3"),
                "aa",
                &["stack address 0x7ffd0001", "thread 4001"],
            ),
            result("bob", Some("n=5"), "aa", &["thread 4001"]),
            result("carol", Some("n=7"), "cc", &["stack address 0x7ffd0001"]),
            // Without variants every honest student builds the same program.
            result("dave", None, "dd", &[]),
            result("erin", None, "dd", &[]),
        ];
        flag_copies(&mut r);
        let f = |i: usize| r[i].flags.join(" | ");
        assert!(f(0).contains("same binary as bob's"), "{}", f(0));
        assert!(f(1).contains("same binary as alice's"), "{}", f(1));
        // A shared stack address flags alice and carol; a shared thread id alone (alice
        // and bob) does not.
        assert!(
            f(0).contains("carol's: stack address 0x7ffd0001"),
            "{}",
            f(0)
        );
        assert!(!f(1).contains("thread 4001"), "{}", f(1));
        assert!(r[3].flags.is_empty() && r[4].flags.is_empty());
    }
}

//! Grading one submission: unpack it, read its answers, run the lab on the student's
//! program (the variant assigned to them, or the program they sent), and check every
//! answer against what that run observed and against the Reference.
//!
//! `golab check` (a student, one submission) and `golab grade` (a batch) both come here.

use super::answers::{self, Answer, Refusal};
use super::model::{Outcome, QuestionResult, SubmissionResult, TranscriptCheck};
use super::submission::{self, Submission};
use super::{transcript, variant};
use crate::check::lcs;
use crate::lab::{Lab, Question, QuestionKind};
use crate::reference::{Profile, callers, startup};
use crate::toolchain::GoVersion;
use crate::trace::Observation;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a lab run for a submission is carried out: directly, or in a sandbox.
pub trait LabRunner: Sync {
    /// Runs `golab run LAB_DIR` (with `prebuilt` if given) and returns its Observation,
    /// or the outcome that stopped it.
    fn run(
        &self,
        lab_dir: &Path,
        prebuilt: Option<&Path>,
        goroot: Option<&Path>,
        slot: usize,
    ) -> Result<Ran>;

    /// Each student's folder is root's alone (0700) from the moment it is made: for a
    /// runner without a mount namespace, where that mode is all that keeps one student's
    /// program out of another student's folder (the runner opens it for its own run).
    fn private_folders(&self) -> bool {
        false
    }

    /// Why a slot cannot be used now: its uid is another grader's (a run starts by
    /// killing every process of its uid, so two graders must not share one). None for
    /// runners that keep golab's own uid.
    fn slot_in_use(&self, _slot: usize) -> Option<String> {
        None
    }
}

pub enum Ran {
    Observed(Box<Observation>),
    Stopped { outcome: Outcome, message: String },
}

pub struct Grader {
    pub lab: Lab,
    /// The course's seed for variants (none: everyone has the lab's own program).
    pub seed: Option<String>,
    /// Where submissions are unpacked and run, one folder per student.
    pub work: PathBuf,
    /// GOROOTs by release line (`go1.19` -> dir) to build with the Go a student used.
    pub goroots: Vec<(String, PathBuf)>,
    pub runner: Box<dyn LabRunner>,
    /// The build store's entry (`work/.builds/KEY`) of each student graded so far.
    pub builds_used: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl Grader {
    /// The build store entry of a student's program graded by this grader, if any.
    pub fn build_of(&self, student: &str) -> Option<String> {
        self.builds_used.lock().unwrap().get(student).cloned()
    }

    /// Removes every binary of the build store that is not in `current` (the entries of
    /// the students' current results) nor used by this grader: a resubmission's old
    /// build, a student gone. The store then holds at most one binary per current
    /// submission, not one per submission ever sent. Returns how many entries went and
    /// their bytes.
    pub fn prune_builds(&self, current: &BTreeSet<String>) -> Result<(usize, u64)> {
        let mut keep = current.clone();
        keep.extend(self.builds_used.lock().unwrap().values().cloned());
        prune_store(&self.work.join(".builds"), &keep)
    }

    pub fn grade(&self, s: &Submission, slot: usize) -> SubmissionResult {
        let start = Instant::now();
        let mut r = match self.grade_inner(s, slot) {
            Ok(r) => r,
            Err(e) => self.stopped(s, Outcome::GraderError, format!("{e:#}")),
        };
        r.seconds = start.elapsed().as_secs_f64();
        // What identifies the answers and the binary (for copies, and for the record).
        let dir = self.work.join(&s.student);
        let answers = dir.join("submission").join("answers.yaml");
        if std::fs::symlink_metadata(&answers).is_ok_and(|m| m.is_file()) {
            r.answers_sha256 = crate::download::sha256_file(&answers).ok();
        }
        let binary = dir.join("lab").join("work").join("main");
        if r.outcome == Outcome::Graded && binary.is_file() {
            r.binary_sha256 = crate::download::sha256_file(&binary).ok();
        }
        r
    }

    fn stopped(&self, s: &Submission, outcome: Outcome, message: String) -> SubmissionResult {
        let questions = self
            .lab
            .questions
            .iter()
            .map(|q| QuestionResult {
                id: q.id.clone(),
                title: q.title.clone(),
                kind: kind_name(q.kind),
                points: 0.0,
                max_points: q.points,
                feedback: vec![format!("not graded: {}", outcome.name())],
                manual: q.kind == QuestionKind::FreeText,
                answer: None,
                held_points: 0.0,
                held: None,
            })
            .collect();
        SubmissionResult {
            build: None,
            student: s.student.clone(),
            outcome,
            message,
            questions,
            score: 0.0,
            max_score: self.max_score(),
            transcript: None,
            variant: self.variant_of(&s.student).map(|v| v.describe()),
            seconds: 0.0,
            content: String::new(),
            submitted_at: None,
            submitted_from: None,
            late: None,
            binary_sha256: None,
            answers_sha256: None,
            program_sha256: None,
            sent_main_go_sha256: None,
            flags: vec![],
        }
    }

    pub fn max_score(&self) -> f64 {
        self.lab.questions.iter().map(|q| q.points).sum()
    }

    /// The exact releases of the grader's toolchains (their GOROOT's VERSION file).
    fn releases(&self) -> Vec<GoVersion> {
        self.goroots
            .iter()
            .filter_map(|(_, g)| {
                let v = std::fs::read_to_string(g.join("VERSION")).ok()?;
                GoVersion::parse(v.lines().next()?.trim()).ok()
            })
            .collect()
    }

    /// Whether a student's claim to have built with `w` is one the course allows.
    fn allows(&self, w: GoVersion) -> bool {
        GoVersion::parse(crate::pins::course().go.version).is_ok_and(|p| p == w)
            || self.releases().contains(&w)
    }

    fn variant_of(&self, student: &str) -> Option<variant::Variant> {
        Some(variant::draw(
            self.lab.variant.as_ref()?,
            self.seed.as_deref()?,
            student,
        ))
    }

    fn grade_inner(&self, s: &Submission, slot: usize) -> Result<SubmissionResult> {
        match &s.source {
            submission::Source::Unusable { name, .. } => {
                return Ok(self.stopped(
                    s,
                    Outcome::UnusableName,
                    format!(
                        "the submission {name:?} is not named after a usable student id (letters, digits, '.', '_' and '-', starting with a letter or digit): rename it"
                    ),
                ));
            }
            submission::Source::Duplicate(paths) => {
                let names: Vec<String> = paths
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| format!("{:?}", n.to_string_lossy()))
                    .collect();
                return Ok(self.stopped(
                    s,
                    Outcome::DuplicateSubmission,
                    format!(
                        "{} submitted more than once ({}): keep one",
                        s.student,
                        names.join(", ")
                    ),
                ));
            }
            _ => {}
        }
        let dir = self.work.join(&s.student);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        if self.runner.private_folders() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let sub = dir.join("submission");
        match submission::unpack(s, &sub) {
            Ok(Ok(())) => {}
            Ok(Err(u)) => return Ok(self.stopped(s, Outcome::UnsafeArchive, u.0)),
            // What the student sent cannot be unpacked here (a name too long, a file
            // that cannot be read): the submission's trouble, not golab's.
            Err(e) => {
                return Ok(self.stopped(
                    s,
                    Outcome::UnsafeArchive,
                    format!("the submission cannot be unpacked: {e:#}"),
                ));
            }
        }
        // Opened without following links, as a regular file only, and never more than
        // the limit: a folder, a FIFO or a device named answers.yaml is the student's.
        let text = match read_in_submission(&sub, "answers.yaml", answers::MAX_BYTES) {
            Ok(t) => t,
            Err(Unreadable::Missing) => {
                return Ok(self.stopped(
                    s,
                    Outcome::MissingAnswers,
                    "the submission has no answers.yaml at its top level".into(),
                ));
            }
            Err(Unreadable::TooBig(n)) => {
                return Ok(self.stopped(
                    s,
                    Outcome::YamlBomb,
                    format!(
                        "answers.yaml is {n} bytes; the limit is {}",
                        answers::MAX_BYTES
                    ),
                ));
            }
            Err(Unreadable::Refused(why)) => {
                return Ok(self.stopped(
                    s,
                    Outcome::InvalidAnswers,
                    format!("answers.yaml {why}: send your answers as a plain file"),
                ));
            }
        };
        let answers = match answers::parse(&text, &self.lab.name, &self.lab.questions) {
            Ok(a) => a,
            Err(Refusal::Bomb(m)) => return Ok(self.stopped(s, Outcome::YamlBomb, m)),
            Err(Refusal::Invalid(m)) => return Ok(self.stopped(s, Outcome::InvalidAnswers, m)),
        };

        // The program: the student's variant, replaced by the main.go they sent if any.
        let lab_dir = dir.join("lab");
        let v = self.variant_of(&s.student);
        match &v {
            Some(v) => variant::materialize(&self.lab, v, &lab_dir)?,
            None => copy_files(&self.lab.dir, &lab_dir)?,
        }
        let mut notes = Vec::new();
        // With variants the program graded is the one assigned: a main.go that is not it
        // (a classmate's variant, the lab's own, one that prints the answers) is never
        // built; the answers are checked against the assigned variant's run, and the
        // gradebook flags the difference. Without variants the student's program is
        // what the lab observes.
        let assigned = std::fs::read(lab_dir.join("main.go")).unwrap_or_default();
        let program_sha256 = Some(normal_sha256(&assigned));
        let mut sent_sha256 = None;
        let sent = sub.join("main.go");
        if std::fs::symlink_metadata(&sent).is_ok_and(|m| m.is_file()) {
            let theirs = read_in_submission(&sub, "main.go", 4 << 20).unwrap_or_default();
            let differs = normal_sha256(&theirs) != normal_sha256(&assigned);
            if differs {
                sent_sha256 = Some(normal_sha256(&theirs));
            }
            match &v {
                Some(v) if differs => notes.push(format!(
                    "your main.go is not the program you were assigned ({}): the grader ran your assigned variant, and your answers are checked against that run",
                    v.describe()
                )),
                Some(_) => {}
                None => {
                    if differs {
                        notes.push("your main.go differs from the lab's program; the answers are checked against what your program does".to_string());
                    }
                    std::fs::copy(&sent, lab_dir.join("main.go"))?;
                }
            }
        }
        // The Go the student says they used, when the grader has it.
        let wanted = answers.go.as_deref().and_then(super::handout::go_of);
        let goroot = wanted.and_then(|w| {
            self.goroots
                .iter()
                .find(|(n, _)| n == &format!("go{}", w.line()))
                .map(|(_, p)| p.clone())
        });
        let build_key = build_key(&lab_dir, goroot.as_deref())?;
        let cache = self.work.join(".builds").join(&build_key);
        let prebuilt = cache.join("main");
        let ran = self.runner.run(
            &lab_dir,
            prebuilt.is_file().then_some(prebuilt.as_path()),
            goroot.as_deref(),
            slot,
        )?;
        let obs = match ran {
            Ran::Observed(o) => o,
            Ran::Stopped { outcome, message } => return Ok(self.stopped(s, outcome, message)),
        };
        // Identical programs are built once: keep this binary for the next submission.
        if !prebuilt.is_file() {
            let built = lab_dir.join("work").join("main");
            if built.is_file() {
                std::fs::create_dir_all(&cache)?;
                // Other students' programs: the grader's alone.
                {
                    use std::os::unix::fs::PermissionsExt;
                    let store = self.work.join(".builds");
                    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700))?;
                }
                let tmp = cache.join(format!(".main.{slot}"));
                if crate::files::copy_executable(&built, &tmp).is_ok() {
                    let _ = std::fs::rename(&tmp, &prebuilt);
                }
            }
        }
        if prebuilt.is_file() {
            self.builds_used
                .lock()
                .unwrap()
                .insert(s.student.clone(), build_key.clone());
        }

        let observed_go = GoVersion::parse(&obs.go_version).ok();
        // A claim is taken up only for a release the course grades with: its pinned Go or
        // one of the grader's toolchains. Any other (a patch release nobody has) cannot
        // be reproduced, so the answers are checked against the grader's build, as they
        // would be without a claim; the student is told.
        let claimed = wanted;
        let wanted = claimed.filter(|w| observed_go == Some(*w) || self.allows(*w));
        if let Some(c) = claimed
            && wanted.is_none()
        {
            notes.push(format!(
                "you said you built with {c}, a release this course does not grade with (its Go is go{}{}): your answers are checked against the grader's build with {}",
                crate::pins::course().go.version,
                self.releases()
                    .iter()
                    .map(|r| format!(", {r}"))
                    .collect::<String>(),
                obs.go_version
            ));
        }
        // The student's Go is not the one the grader built with: what depends on the
        // exact build cannot be checked, and is held for review.
        let mismatch = match (wanted, observed_go) {
            (Some(w), Some(o)) if w != o => Some(match &goroot {
                Some(g) => format!(
                    "you built with {w}; the grader's go{} toolchain ({}) is {o}",
                    w.line(),
                    g.display()
                ),
                None => format!(
                    "you built with {w}; the grader built with {o} and has no go{} toolchain configured (golab grade --toolchains DIR)",
                    w.line()
                ),
            }),
            _ => None,
        };
        let mut questions = Vec::new();
        for q in &self.lab.questions {
            questions.push(grade_question(
                q,
                answers.by_question.get(&q.id),
                answers.problems.get(&q.id),
                &obs,
                wanted,
                observed_go,
                mismatch.as_deref(),
            ));
        }
        // The transcript is a file of the submission, read the way answers.yaml is: a
        // path out of it, a link, a FIFO or a device is refused before anything is read.
        let mut transcript_problem = None;
        let transcript = answers.transcript.as_ref().map(|t| {
            match read_in_submission(&sub, t, TRANSCRIPT_MAX_BYTES)
                .and_then(|b| String::from_utf8(b).map_err(|_| Unreadable::Refused("is not UTF-8 text".into())))
            {
                Ok(text) => transcript::check(&text, &obs, &lab_dir.join("work").join("main")),
                Err(e) => {
                    let why = match e {
                        Unreadable::Missing => "is not a file of the submission".to_string(),
                        Unreadable::TooBig(n) => format!("is {n} bytes; the limit is {TRANSCRIPT_MAX_BYTES} (a dlv session of this lab is under 100 KB)"),
                        Unreadable::Refused(why) => why,
                    };
                    let m = format!("the transcript '{}' named in answers.yaml {why}", t.escape_debug());
                    transcript_problem = Some(m.clone());
                    TranscriptCheck { genuine: false, findings: vec![m], facts_checked: 0, per_run: vec![], not_checked: vec![] }
                }
            }
        });
        let score = questions.iter().map(|q| q.points).sum::<f64>();
        let mut message = notes.join("; ");
        if let Some(w) = wanted
            && observed_go.is_some_and(|o| o.line() != w.line())
        {
            let m = format!(
                "you used {w}; the grader has no go{} and built with {}",
                w.line(),
                obs.go_version
            );
            message = if message.is_empty() {
                m
            } else {
                format!("{message}; {m}")
            };
        }
        // Answers of the wrong form cost their question only; say which.
        let mut wrong: Vec<String> = answers
            .problems
            .keys()
            .map(|id| format!("'{id}'"))
            .collect();
        wrong.extend(answers.unknown.iter().map(|u| {
            u.split('\'')
                .nth(1)
                .map(|k| format!("'{k}' (not a question)"))
                .unwrap_or_default()
        }));
        let outcome = if wrong.is_empty() && transcript_problem.is_none() {
            Outcome::Graded
        } else {
            let mut m = Vec::new();
            if !wrong.is_empty() {
                m.push(format!(
                    "answers {} cannot be read and get no points; the others are graded",
                    wrong.join(", ")
                ));
            }
            m.extend(answers.unknown.iter().cloned());
            // A transcript that cannot be read costs no points (it earns none), but the
            // outcome names it: the student is told, the batch goes on.
            if let Some(t) = transcript_problem {
                m.push(format!("{t}: it is not checked; the answers are graded"));
            }
            let m = m.join("; ");
            message = if message.is_empty() {
                m
            } else {
                format!("{m}; {message}")
            };
            Outcome::InvalidAnswer
        };
        Ok(SubmissionResult {
            build: None,
            student: s.student.clone(),
            outcome,
            message,
            questions,
            score: round2(score),
            max_score: self.max_score(),
            transcript,
            variant: v.map(|v| v.describe()),
            seconds: 0.0,
            content: String::new(),
            submitted_at: None,
            submitted_from: None,
            late: None,
            binary_sha256: None,
            answers_sha256: None,
            program_sha256,
            sent_main_go_sha256: sent_sha256,
            flags: vec![],
        })
    }
}

/// Larger than any dlv session of a lab (a real one is under 100 KB).
pub const TRANSCRIPT_MAX_BYTES: usize = 1 << 20;

/// Why a file of the submission (answers.yaml, the transcript it names) is not read.
#[derive(Debug, PartialEq)]
pub enum Unreadable {
    /// Nothing by that name.
    Missing,
    /// Larger than the limit: its size.
    TooBig(u64),
    /// Not a plain file inside the submission: why, in words that follow its name.
    Refused(String),
}

/// Reads `rel` inside the unpacked submission `root`, or says why not. The path is
/// judged before anything is opened: relative, without `..`, through folders only (no
/// link); the file is opened without following a link (O_NOFOLLOW) and without waiting
/// for a writer (O_NONBLOCK: a FIFO), must be a regular file, and is read to `cap` bytes
/// at most (so neither /dev/zero nor a sparse file can fill memory).
pub fn read_in_submission(root: &Path, rel: &str, cap: usize) -> Result<Vec<u8>, Unreadable> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    use std::path::Component;
    let refused = |w: String| Err(Unreadable::Refused(w));
    let no = Unreadable::Refused;
    if rel.trim().is_empty() {
        return refused("is an empty path".into());
    }
    let p = Path::new(rel);
    if p.is_absolute() {
        return refused(
            "is an absolute path: name a file inside the submission (e.g. dlv.txt)".into(),
        );
    }
    let parts: Vec<&std::ffi::OsStr> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Ok(n)),
            Component::CurDir => None,
            _ => Some(Err(())),
        })
        .collect::<Result<_, ()>>()
        .map_err(|_| no("leaves the submission ('..'): name a file inside it".into()))?;
    let Some((last, folders)) = parts.split_last() else {
        return refused("names no file".into());
    };
    let mut at = root.to_path_buf();
    for f in folders {
        at.push(f);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return refused("passes through a link".into()),
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return refused(format!(
                    "passes through {}, which is not a folder",
                    f.to_string_lossy()
                ));
            }
            Err(_) => return Err(Unreadable::Missing),
        }
    }
    at.push(last);
    let file = match crate::sys::fs::open_no_follow(&at) {
        crate::sys::fs::Opened::File(f) => f,
        crate::sys::fs::Opened::Missing => return Err(Unreadable::Missing),
        crate::sys::fs::Opened::Link => return refused("is a link, not a file".into()),
        crate::sys::fs::Opened::Failed(e) => return refused(format!("cannot be opened ({e})")),
    };
    let m = file
        .metadata()
        .map_err(|e| no(format!("cannot be read ({e})")))?;
    let t = m.file_type();
    let kind = if t.is_dir() {
        Some("a folder")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else if t.is_socket() {
        Some("a socket")
    } else if !t.is_file() {
        Some("not a regular file")
    } else {
        None
    };
    if let Some(k) = kind {
        return refused(if k.starts_with("not") {
            format!("is {k}")
        } else {
            format!("is {k}, not a file")
        });
    }
    if m.len() > cap as u64 {
        return Err(Unreadable::TooBig(m.len()));
    }
    let mut buf = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| no(format!("cannot be read ({e})")))?;
    if buf.len() > cap {
        return Err(Unreadable::TooBig(buf.len() as u64));
    }
    Ok(buf)
}

fn copy_files(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// SHA-256 of a Go source with its whitespace collapsed (a CRLF or re-indented copy of
/// a program is the same program).
fn normal_sha256(src: &[u8]) -> String {
    let text = String::from_utf8_lossy(src);
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Sha256::digest(words.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What makes two builds identical: the program's files and the Go that builds it.
/// Removes the entries of the build store `store` whose names are not in `keep`
/// (a half-written `.main.N` inside a kept entry goes too).
fn prune_store(store: &Path, keep: &BTreeSet<String>) -> Result<(usize, u64)> {
    let mut gone = (0, 0);
    let Ok(entries) = std::fs::read_dir(store) else {
        return Ok(gone);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let path = e.path();
        if keep.contains(&name) {
            for f in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                if f.file_name().to_string_lossy().starts_with(".main.") {
                    let _ = std::fs::remove_file(f.path());
                }
            }
            continue;
        }
        let bytes: u64 = std::fs::read_dir(&path)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("cannot remove {}", path.display()))?;
        gone.0 += 1;
        gone.1 += bytes;
    }
    Ok(gone)
}

fn build_key(lab_dir: &Path, goroot: Option<&Path>) -> Result<String> {
    let mut h = Sha256::new();
    for f in ["main.go", "go.mod"] {
        h.update(std::fs::read(lab_dir.join(f)).unwrap_or_default());
        h.update([0u8]);
    }
    h.update(
        goroot
            .map(|g| g.to_string_lossy().to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    Ok(h.finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn kind_name(k: QuestionKind) -> String {
    serde_norway::to_string(&k)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `runtime·rt0_go`, `rt0_go()`, `runtime.rt0_go` -> `runtime.rt0_go`.
fn function_name(s: &str) -> String {
    let t = s.trim().trim_end_matches("()").replace('·', ".");
    if t.starts_with("_rt0") || t.contains('.') {
        t
    } else {
        format!("runtime.{t}")
    }
}

fn grade_question(
    q: &Question,
    a: Option<&Answer>,
    problem: Option<&String>,
    obs: &Observation,
    wanted: Option<GoVersion>,
    observed: Option<GoVersion>,
    mismatch: Option<&str>,
) -> QuestionResult {
    let mut r = QuestionResult {
        id: q.id.clone(),
        title: q.title.clone(),
        kind: kind_name(q.kind),
        points: 0.0,
        max_points: q.points,
        feedback: vec![],
        manual: q.kind == QuestionKind::FreeText,
        answer: None,
        held_points: 0.0,
        held: None,
    };
    if let Some(p) = problem {
        r.feedback.push(format!(
            "{p}: this question gets no points; the others are graded"
        ));
        return r;
    }
    let Some(a) = a else {
        r.feedback.push("no answer".into());
        return r;
    };
    let go = wanted.or(observed).unwrap_or(GoVersion::new(1, 19, 0));
    let fraction = match (q.kind, a) {
        (QuestionKind::EntryPoint, Answer::EntryPoint { address, symbol }) => {
            r.answer = Some(format!("{address:#x} {symbol}"));
            let mut f = 0.0;
            let sym = obs.entry.symbol.clone().unwrap_or_default();
            if *symbol == sym {
                f += 0.5;
                r.feedback.push(format!("symbol {symbol}: right"));
            } else {
                r.feedback.push(format!("symbol {symbol}: the symbol at the entry point is {sym} (readelf -h gives the address; `info symbol ADDR` in gdb names it)"));
            }
            let same_go = wanted.is_none_or(|w| observed.is_some_and(|o| o == w));
            if *address == obs.entry.elf {
                f += 0.5;
                r.feedback.push(format!(
                    "address {address:#x}: right for {}",
                    obs.go_version
                ));
            } else if !same_go {
                let why = mismatch.map(str::to_string).unwrap_or_else(|| {
                    format!(
                        "you built with {}, the grader with {}",
                        wanted.map(|w| w.to_string()).unwrap_or_default(),
                        obs.go_version
                    )
                });
                r.feedback.push(format!("address {address:#x}: held for review: {why} (the entry point moves between Go versions); no points given, none lost"));
                r.held_points = round2(0.5 * q.points);
                r.held = Some(format!("address {address:#x}: {why}"));
            } else {
                r.feedback.push(format!("address {address:#x}: your program's entry point is {:#x} with {} (readelf -h ./main, `Entry point address`)", obs.entry.elf, obs.go_version));
            }
            f
        }
        (QuestionKind::Chain, Answer::Chain(list)) => {
            r.answer = Some(list.join(" -> "));
            let (p, _) = Profile::for_version(go);
            let reference: Vec<String> =
                startup::chain(&p).into_iter().map(|s| s.function).collect();
            let given: Vec<String> = list.iter().map(|s| function_name(s)).collect();
            let common = lcs(&reference, &given);
            let in_order: BTreeSet<&String> = common.iter().map(|(i, _)| &reference[*i]).collect();
            let missing: Vec<&String> = reference.iter().filter(|f| !given.contains(f)).collect();
            let misplaced: Vec<&String> = reference
                .iter()
                .filter(|f| given.contains(f) && !in_order.contains(f))
                .collect();
            let extra: Vec<&String> = given.iter().filter(|f| !reference.contains(f)).collect();
            let total = reference.len().max(given.len()).max(1) as f64;
            if !missing.is_empty() {
                r.feedback.push(format!("missing: {}", join(&missing)));
            }
            if !misplaced.is_empty() {
                r.feedback
                    .push(format!("out of order: {}", join(&misplaced)));
                for f in &misplaced {
                    r.feedback
                        .push(format!("  {}", belongs(f, &reference, &in_order, &given)));
                }
            }
            if !extra.is_empty() {
                r.feedback.push(format!(
                    "not on the startup path of {}: {}",
                    p.name(),
                    join(&extra)
                ));
            }
            // What the run showed, if it differs from the reference.
            let seen: Vec<String> = obs.dlv.hits.iter().map(|h| h.function().to_string()).fold(
                Vec::new(),
                |mut v, f| {
                    if reference.contains(&f) && !v.contains(&f) {
                        v.push(f);
                    }
                    v
                },
            );
            let watched: Vec<String> = reference
                .iter()
                .filter(|f| seen.contains(f))
                .cloned()
                .collect();
            if !seen.is_empty() && seen != watched {
                r.feedback.push(format!(
                    "note: the dlv run of your program hit them in this order: {}",
                    seen.join(" -> ")
                ));
            }
            if missing.is_empty() && misplaced.is_empty() && extra.is_empty() {
                r.feedback
                    .push(format!("the whole chain, in order ({})", p.name()));
            }
            let credit = common.len() as f64 / total;
            r.feedback.push(format!(
                "credit: {} of your {} steps are in the reference's order ({} has {} steps); {} / max({}, {}) = {:.2} of {} points = {}",
                common.len(),
                given.len(),
                p.name(),
                reference.len(),
                common.len(),
                reference.len(),
                given.len(),
                credit,
                super::render::num(q.points),
                super::render::num(round2(credit * q.points))
            ));
            credit
        }
        (QuestionKind::Callers, Answer::Callers(map)) => {
            r.answer = Some(
                map.iter()
                    .map(|(k, v)| format!("{k} <- {}", v.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            let table = match callers::Table::for_version(go) {
                Ok((t, _)) => t,
                Err(e) => {
                    r.feedback.push(format!(
                        "held for review: the grader has no caller table for {go} ({e:#}); no points given, none lost"
                    ));
                    r.held_points = q.points;
                    r.held = Some(format!("no caller table for {go}"));
                    return r;
                }
            };
            let mut sum = 0.0;
            for f in &q.functions {
                let name = table.resolve(f).unwrap_or_else(|| f.clone());
                let reference = table.static_callers(&name);
                let given: BTreeSet<String> = map
                    .iter()
                    .find(|(k, _)| {
                        function_name(k).eq_ignore_ascii_case(&name)
                            || function_name(k).eq_ignore_ascii_case(f)
                    })
                    .map(|(_, v)| {
                        v.iter()
                            .map(|c| {
                                table
                                    .resolve(&function_name(c))
                                    .unwrap_or_else(|| function_name(c))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let both = given.intersection(&reference).count() as f64;
                let union = given.union(&reference).count().max(1) as f64;
                sum += both / union;
                let missing: Vec<&String> = reference.difference(&given).collect();
                let extra: Vec<&String> = given.difference(&reference).collect();
                let mut line = format!(
                    "{}: {}/{}",
                    name.trim_start_matches("runtime."),
                    both as usize,
                    reference.len()
                );
                if !missing.is_empty() {
                    line.push_str(&format!("; missing {}", join(&missing)));
                }
                if !extra.is_empty() {
                    line.push_str(&format!("; not callers in {}: {}", table.go, join(&extra)));
                }
                r.feedback.push(line);
            }
            sum / q.functions.len().max(1) as f64
        }
        (QuestionKind::RunOrder, Answer::RunOrder(order)) => {
            r.answer = Some(
                order
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            let Some(run) = obs.scenarios.first() else {
                r.feedback
                    .push("grader: the run of your variant recorded no scenario".into());
                return r;
            };
            let Some(seen) = &run.observed else {
                r.feedback
                    .push("your program printed no order line when the grader ran it".into());
                return r;
            };
            let a: Vec<String> = order.iter().map(|i| i.to_string()).collect();
            let b: Vec<String> = seen.iter().map(|i| i.to_string()).collect();
            let common = lcs(&b, &a).len();
            if order == seen {
                r.feedback.push(format!(
                    "right: the {} goroutines of ./main {} ran in that order",
                    seen.len(),
                    run.args.join(" ")
                ));
            } else {
                let pos = order
                    .iter()
                    .zip(seen)
                    .position(|(x, y)| x != y)
                    .unwrap_or(order.len().min(seen.len()));
                r.feedback.push(format!("./main {} ran its goroutines in another order: they part at position {pos} (you: {}, the run: {})", run.args.join(" "), order.get(pos).map(|x| x.to_string()).unwrap_or("nothing".into()), seen.get(pos).map(|x| x.to_string()).unwrap_or("nothing".into())));
                r.feedback.push("hint: runnext holds the newest g; a full local ring (256) sends half to the global queue; every 61st schedtick takes one from the global queue (golab explain runq-order --n N)".into());
                if !run.disturbances.is_empty() {
                    r.feedback.push(format!(
                        "note: the grader's run was disturbed ({}); ask for a regrade",
                        run.disturbances.join("; ")
                    ));
                }
            }
            common as f64 / b.len().max(a.len()).max(1) as f64
        }
        (QuestionKind::FreeText, Answer::Text(t)) => {
            r.answer = Some(t.clone());
            r.feedback.push("kept for your instructor to grade".into());
            0.0
        }
        _ => {
            r.feedback
                .push("the answer does not fit the question".into());
            0.0
        }
    };
    r.points = round2(fraction * q.points);
    r
}

/// Where a step the student misplaced goes: between its nearest neighbours in the
/// reference that the student has in the right order, and where the student put it.
fn belongs(
    f: &str,
    reference: &[String],
    in_order: &BTreeSet<&String>,
    given: &[String],
) -> String {
    let short = |s: &str| s.trim_start_matches("runtime.").to_string();
    let i = reference.iter().position(|r| r == f).unwrap_or(0);
    let before = reference[..i].iter().rev().find(|r| in_order.contains(r));
    let after = reference[i + 1..].iter().find(|r| in_order.contains(r));
    let place = match (before, after) {
        (Some(b), Some(a)) => format!("after {}, before {}", short(b), short(a)),
        (Some(b), None) => format!("after {}", short(b)),
        (None, Some(a)) => format!("before {}", short(a)),
        (None, None) => format!("at position {} of {}", i + 1, reference.len()),
    };
    let yours = match given.iter().position(|g| g == f) {
        Some(0) => "first".to_string(),
        Some(j) => format!("after {}", short(&given[j - 1])),
        None => "nowhere".into(),
    };
    format!("{} belongs {place} (you have it {yours})", short(f))
}

fn join(v: &[&String]) -> String {
    v.iter()
        .map(|s| s.trim_start_matches("runtime."))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_store_keeps_only_the_entries_asked_for() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join(".builds");
        for k in ["old", "kept", "other"] {
            std::fs::create_dir_all(store.join(k)).unwrap();
            std::fs::write(store.join(k).join("main"), vec![0u8; 1000]).unwrap();
        }
        std::fs::write(store.join("kept/.main.1"), "half written").unwrap();
        let keep: BTreeSet<String> = ["kept".to_string()].into();
        assert_eq!(prune_store(&store, &keep).unwrap(), (2, 2000));
        let left: Vec<String> = std::fs::read_dir(&store)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(left, ["kept"]);
        assert!(store.join("kept/main").is_file());
        assert!(!store.join("kept/.main.1").exists());
        // No store yet: nothing to do.
        assert_eq!(prune_store(&d.path().join("none"), &keep).unwrap(), (0, 0));
    }

    fn refused(r: Result<Vec<u8>, Unreadable>) -> String {
        match r {
            Err(Unreadable::Refused(w)) => w,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_file_of_the_submission_is_read_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("submission");
        std::fs::create_dir_all(sub.join("notes")).unwrap();
        std::fs::write(sub.join("notes/dlv.txt"), "(dlv) c\n").unwrap();
        std::fs::write(d.path().join("secret"), "host").unwrap();
        assert_eq!(
            read_in_submission(&sub, "./notes/dlv.txt", 100).unwrap(),
            b"(dlv) c\n"
        );
        assert_eq!(
            read_in_submission(&sub, "gone.txt", 100),
            Err(Unreadable::Missing)
        );
        // Out of the submission: judged on the path, before anything is opened.
        assert!(refused(read_in_submission(&sub, "/dev/zero", 100)).contains("absolute path"));
        assert!(refused(read_in_submission(&sub, "../secret", 100)).contains("'..'"));
        assert!(refused(read_in_submission(&sub, "notes/../../secret", 100)).contains("'..'"));
        assert!(refused(read_in_submission(&sub, "", 100)).contains("empty"));
        // Links: neither the file nor a folder on the way is followed.
        std::os::unix::fs::symlink("/dev/zero", sub.join("zero")).unwrap();
        assert!(refused(read_in_submission(&sub, "zero", 100)).contains("is a link"));
        std::os::unix::fs::symlink(d.path(), sub.join("up")).unwrap();
        assert!(refused(read_in_submission(&sub, "up/secret", 100)).contains("through a link"));
        // Not a regular file: a folder, a FIFO (opening it would wait for a writer).
        assert_eq!(
            refused(read_in_submission(&sub, "notes", 100)),
            "is a folder, not a file"
        );
        crate::sys::fs::make_fifo(&sub.join("pipe")).unwrap();
        assert_eq!(
            refused(read_in_submission(&sub, "pipe", 100)),
            "is a FIFO (named pipe), not a file"
        );
        // Too big, by its size, without reading it: a sparse 3 GiB file.
        let big = std::fs::File::create(sub.join("big")).unwrap();
        big.set_len(3 << 30).unwrap();
        assert_eq!(
            read_in_submission(&sub, "big", TRANSCRIPT_MAX_BYTES),
            Err(Unreadable::TooBig(3 << 30))
        );
        std::fs::write(sub.join("eleven"), "01234567890").unwrap();
        assert_eq!(
            read_in_submission(&sub, "eleven", 10),
            Err(Unreadable::TooBig(11))
        );
    }
}

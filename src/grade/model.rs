//! The result model of grading: one `SubmissionResult` per student, gathered in a
//! `BatchResult`. Every output (terminal table, JSON, CSV gradebook, JUnit XML,
//! Gradescope results.json) is a rendering of these types and nothing else.

use serde::{Deserialize, Serialize};

/// What became of a submission as a whole. Anything but `Graded` means the answers
/// could not all be checked; the message says why in words a student can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every question was checked (some answers may still be wrong).
    Graded,
    /// No answers.yaml in the submission.
    MissingAnswers,
    /// answers.yaml is not valid (the message has the line and the key).
    InvalidAnswers,
    /// answers.yaml expands beyond the limits (a YAML alias bomb, or too large).
    YamlBomb,
    /// The archive holds `../` paths, absolute paths, or links out of its folder.
    UnsafeArchive,
    /// The submitted program does not compile (the message has the compiler's output).
    CompileError,
    /// The program ran past the wall-clock limit.
    Timeout,
    /// The program used more CPU time than allowed.
    CpuLimit,
    /// The program tried to use more memory than allowed.
    MemoryLimit,
    /// The program started more processes or threads than allowed (a fork bomb).
    ProcessLimit,
    /// The program wrote more output than allowed.
    OutputLimit,
    /// The program or its build wrote more than its disk quota (every writable place
    /// together: /tmp, the build's output, cache and temporary files).
    DiskLimit,
    /// The program tried to open a network connection (the sandbox has no network).
    NetworkDenied,
    /// The program tried to read outside its own folder (another submission, the grader).
    EscapeDenied,
    /// The program crashed or exited with an error.
    ProgramFailed,
    /// The program stopped or killed the debugger that observed it (nothing the
    /// debugger said after that counts).
    ObserverKilled,
    /// The observed binary was not the one built (its SHA-256 changed).
    BinaryChanged,
    /// The submission's name cannot be a student id (`=cmd`, `a<b&c>`, a line break).
    UnusableName,
    /// The same student sent two submissions (`bob/` and `bob.zip`): neither is graded.
    DuplicateSubmission,
    /// golab itself failed on this submission (a bug or a missing tool); regrade later.
    GraderError,
    /// answers.yaml parses, but some answers have the wrong form: those questions get
    /// no points (the message names them), the others are graded.
    InvalidAnswer,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Graded => "graded",
            Outcome::MissingAnswers => "missing-answers",
            Outcome::InvalidAnswers => "invalid-answers",
            Outcome::YamlBomb => "yaml-bomb",
            Outcome::UnsafeArchive => "unsafe-archive",
            Outcome::CompileError => "compile-error",
            Outcome::Timeout => "timeout",
            Outcome::CpuLimit => "cpu-limit",
            Outcome::MemoryLimit => "memory-limit",
            Outcome::ProcessLimit => "process-limit",
            Outcome::OutputLimit => "output-limit",
            Outcome::DiskLimit => "disk-limit",
            Outcome::NetworkDenied => "network-denied",
            Outcome::EscapeDenied => "escape-denied",
            Outcome::ProgramFailed => "program-failed",
            Outcome::ObserverKilled => "observer-killed",
            Outcome::BinaryChanged => "binary-changed",
            Outcome::UnusableName => "unusable-name",
            Outcome::DuplicateSubmission => "duplicate-submission",
            Outcome::GraderError => "grader-error",
            Outcome::InvalidAnswer => "invalid-answer",
        }
    }
}

/// One question's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuestionResult {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub points: f64,
    pub max_points: f64,
    /// What is right, missing or wrong, in words a student can act on.
    pub feedback: Vec<String>,
    /// Kept for a person to grade (free text): 0 automatic points.
    pub manual: bool,
    /// The student's answer as text, for the report (free text, lists).
    pub answer: Option<String>,
    /// Points that could not be checked automatically (e.g. an address built with a Go
    /// the grader does not have): not given, not lost; listed for the instructor.
    #[serde(default)]
    pub held_points: f64,
    /// Why those points are held for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// A submitted dlv transcript, checked against the student's variant's binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TranscriptCheck {
    /// True when no fact in it contradicts the student's binary: "consistent with your
    /// binary", never "genuine" (a transcript can be shown inconsistent, not proven real).
    pub genuine: bool,
    pub findings: Vec<String>,
    /// How many facts of the transcript were checked against the binary and its run.
    #[serde(default)]
    pub facts_checked: usize,
    /// Values a real session gets anew each run (stack addresses under ASLR, thread
    /// ids): two students sharing one copied a session.
    #[serde(default)]
    pub per_run: Vec<String>,
    /// Facts of the transcript that were not checked, and why (the student's binary's
    /// line table past golab's limits): "not checked: ...", never a crash of golab.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_checked: Vec<String>,
}

impl TranscriptCheck {
    /// "consistent with your binary (N facts checked)", or the first inconsistency;
    /// then what was not checked.
    pub fn summary(&self) -> String {
        let s = match self.findings.first() {
            Some(f) if !self.genuine => format!("inconsistent with your binary: {f}"),
            _ => format!(
                "consistent with your binary ({} facts checked)",
                self.facts_checked
            ),
        };
        if self.not_checked.is_empty() {
            s
        } else {
            format!("{s}; not checked: {}", self.not_checked.join("; "))
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmissionResult {
    pub student: String,
    pub outcome: Outcome,
    /// Why the outcome is what it is (empty for `Graded`).
    pub message: String,
    pub questions: Vec<QuestionResult>,
    pub score: f64,
    pub max_score: f64,
    pub transcript: Option<TranscriptCheck>,
    /// The variant this student was assigned (parameters in words).
    pub variant: Option<String>,
    pub seconds: f64,
    /// SHA-256 of what was handed in: a result stands while this is unchanged.
    #[serde(default)]
    pub content: String,
    /// When it was handed in (RFC 3339, UTC) and how golab knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_from: Option<String>,
    /// What the late policy did (set when the gradebook is put together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<Late>,
    /// SHA-256 of the binary golab built and observed.
    #[serde(default)]
    pub binary_sha256: Option<String>,
    /// The build store's entry for this submission's program (`work/.builds/KEY`): kept
    /// while this result is the student's current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// SHA-256 of the submitted answers.yaml (byte-identical files are flagged).
    #[serde(default)]
    pub answers_sha256: Option<String>,
    /// SHA-256 of the assigned program's main.go, whitespace collapsed (the variant, or
    /// the lab's own program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_sha256: Option<String>,
    /// The same of the main.go the student sent, when it is not the assigned one (with
    /// variants it is not run; the gradebook flags it, and a classmate's variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_main_go_sha256: Option<String>,
    /// What looks copied, for a person to look at (set when the gradebook is put
    /// together: the same answers or transcript values as another submission).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchResult {
    pub lab: String,
    /// Question ids and maximum points, in the lab's order (the gradebook's columns).
    pub questions: Vec<(String, f64)>,
    pub submissions: Vec<SubmissionResult>,
}

/// What lateness did to one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Late {
    pub submitted_at: String,
    pub deadline: String,
    /// Started days after the deadline (0: on time).
    pub days: u32,
    /// Fraction of the score lost.
    pub penalty: f64,
    pub score_before: f64,
}

//! Renderings of a grading result (`grade::model`): a terminal table, a gradebook CSV,
//! JUnit XML, Gradescope's results.json and plain JSON. Pure functions of the model:
//! nothing here reads or writes a file. Every rendering that returns a `String` ends
//! with a newline, ready to be written as it is.

use super::model::{BatchResult, Outcome, QuestionResult, SubmissionResult};
use serde_json::{Value, json};
use std::fmt::Write as _;

// ---------------------------------------------------------------------------
// Numbers and shared helpers

/// `1 day`, `3 days`.
pub fn days(n: u32) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// A number as people write points: at most 2 decimals, no trailing zeros
/// (`10`, `7.5`, `3.33`), never `-0`.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// The submission's result for a question of the lab, by id.
fn find<'a>(s: &'a SubmissionResult, id: &str) -> Option<&'a QuestionResult> {
    s.questions.iter().find(|q| q.id == id)
}

/// The lab's maximum: the sum of its questions' points.
fn lab_max(b: &BatchResult) -> f64 {
    b.questions.iter().map(|(_, p)| p).sum()
}

/// Outcome counts, `graded` first, then the others by name.
fn outcome_counts(b: &BatchResult) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for s in &b.submissions {
        match counts.iter_mut().find(|(n, _)| *n == s.outcome.name()) {
            Some((_, c)) => *c += 1,
            None => counts.push((s.outcome.name(), 1)),
        }
    }
    let graded = Outcome::Graded.name();
    counts.sort_by(|a, b| (a.0 != graded, a.0).cmp(&(b.0 != graded, b.0)));
    counts
}

// ---------------------------------------------------------------------------
// Terminal table

/// Makes text safe for a terminal cell: control characters (newlines, ESC that would
/// start a colour or cursor sequence) are shown escaped instead of acted on.
fn term_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// One line per submission: student, outcome, score/max and the points of each question
/// (`manual` for a question kept for a person to grade, `-` where there is no result),
/// then a summary line: how many submissions had each outcome, and the mean score.
pub fn table(b: &BatchResult) -> String {
    let mut header: Vec<String> = vec!["student".into(), "outcome".into(), "score".into()];
    header.extend(
        b.questions
            .iter()
            .map(|(id, max)| format!("{}/{}", term_safe(id), num(*max))),
    );
    // Left-aligned text columns; score and question columns are right-aligned.
    let right = |col: usize| col >= 2;

    let mut rows: Vec<Vec<String>> = Vec::with_capacity(b.submissions.len());
    for s in &b.submissions {
        let mut row = vec![
            term_safe(&s.student),
            s.outcome.name().to_string(),
            format!("{}/{}", num(s.score), num(s.max_score)),
        ];
        for (id, _) in &b.questions {
            row.push(match find(s, id) {
                Some(q) if q.manual => "manual".into(),
                Some(q) if q.held_points > 0.0 => {
                    format!("{} +{}?", num(q.points), num(q.held_points))
                }
                Some(q) => num(q.points),
                None => "-".into(),
            });
        }
        rows.push(row);
    }

    let width = |cell: &str| cell.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let pad = " ".repeat(widths[i] - width(cell));
            if right(i) {
                l.push_str(&pad);
                l.push_str(cell);
            } else {
                l.push_str(cell);
                if i + 1 < cells.len() {
                    l.push_str(&pad);
                }
            }
        }
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };

    let mut out = format!("lab {}\n", term_safe(&b.lab));
    out.push_str(&line(&header));
    for row in &rows {
        out.push_str(&line(row));
    }
    out.push_str(&summary(b));
    out.push('\n');
    let flagged: Vec<&SubmissionResult> = b
        .submissions
        .iter()
        .filter(|s| !s.flags.is_empty())
        .collect();
    if !flagged.is_empty() {
        out.push_str("copy flags (for a person to look at):\n");
        for s in flagged {
            let _ = writeln!(
                out,
                "  {}: {}",
                term_safe(&s.student),
                term_safe(&s.flags.join("; "))
            );
        }
    }
    let late: Vec<&SubmissionResult> = b
        .submissions
        .iter()
        .filter(|s| s.late.as_ref().is_some_and(|l| l.days > 0))
        .collect();
    if !late.is_empty() {
        out.push_str("late:\n");
        for s in late {
            let l = s.late.as_ref().expect("filtered");
            let _ = writeln!(
                out,
                "  {}: handed in {}, {} after {}: -{}% ({} -> {})",
                term_safe(&s.student),
                l.submitted_at,
                days(l.days),
                l.deadline,
                num(l.penalty * 100.0),
                num(l.score_before),
                num(s.score)
            );
        }
    }
    let held = held_list(b);
    if !held.is_empty() {
        out.push_str("held for review (+N? above: not given, not lost):\n");
        for (student, q, why) in held {
            let _ = writeln!(out, "  {}: {q}: {}", term_safe(&student), term_safe(&why));
        }
    }
    out
}

/// Every (student, question, reason) held for review, in the batch's order.
pub fn held_list(b: &BatchResult) -> Vec<(String, String, String)> {
    let mut v = Vec::new();
    for s in &b.submissions {
        for q in &s.questions {
            if q.held_points > 0.0 {
                v.push((
                    s.student.clone(),
                    q.id.clone(),
                    format!(
                        "{} points: {}",
                        num(q.held_points),
                        q.held.clone().unwrap_or_default()
                    ),
                ));
            }
        }
    }
    v
}

/// `3 submissions: 1 graded, 1 invalid-answers, 1 timeout; mean score 2.5/10 (25%)`.
fn summary(b: &BatchResult) -> String {
    let n = b.submissions.len();
    let mut s = format!("{n} submission{}", if n == 1 { "" } else { "s" });
    if n == 0 {
        return s;
    }
    let counts: Vec<String> = outcome_counts(b)
        .iter()
        .map(|(name, c)| format!("{c} {name}"))
        .collect();
    let mean = b.submissions.iter().map(|s| s.score).sum::<f64>() / n as f64;
    let max = lab_max(b);
    let _ = write!(
        s,
        ": {}; mean score {}/{}",
        counts.join(", "),
        num(mean),
        num(max)
    );
    if max > 0.0 {
        let _ = write!(s, " ({}%)", num(mean / max * 100.0));
    }
    s
}

// ---------------------------------------------------------------------------
// CSV gradebook

/// A CSV field, quoted as RFC 4180 says when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The gradebook: `student,outcome,total,max,<question id>...` (the lab's questions in
/// order), one row per submission. A question's cell is its points; it is empty for a
/// question kept for a person to grade (to be filled in by hand) and where the
/// submission has no result for it. RFC 4180: fields quoted when needed, CRLF line ends.
pub fn csv(b: &BatchResult) -> String {
    let mut out = String::new();
    let mut header: Vec<String> = ["student", "outcome", "total", "max"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    header.extend(b.questions.iter().map(|(id, _)| csv_field(id)));
    header.push("held".into());
    header.push("review".into());
    header.push("late".into());
    header.push("flags".into());
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for s in &b.submissions {
        let mut row = vec![
            csv_field(&s.student),
            s.outcome.name().to_string(),
            num(s.score),
            num(s.max_score),
        ];
        for (id, _) in &b.questions {
            row.push(match find(s, id) {
                Some(q) if !q.manual => num(q.points),
                _ => String::new(),
            });
        }
        let held: f64 = s.questions.iter().map(|q| q.held_points).sum();
        row.push(if held > 0.0 { num(held) } else { String::new() });
        let review: Vec<String> = s
            .questions
            .iter()
            .filter(|q| q.held_points > 0.0)
            .map(|q| format!("{} held: {}", q.id, q.held.clone().unwrap_or_default()))
            .collect();
        row.push(csv_field(&review.join("; ")));
        row.push(match &s.late {
            Some(l) if l.days > 0 => csv_field(&format!(
                "{} after {}: -{}% of {}",
                days(l.days),
                l.deadline,
                num(l.penalty * 100.0),
                num(l.score_before)
            )),
            _ => String::new(),
        });
        row.push(csv_field(&s.flags.join("; ")));
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------
// JUnit XML

/// Characters XML 1.0 allows (its `Char` production). Others (most C0 controls,
/// U+FFFE, U+FFFF) cannot appear even escaped: they are replaced by U+FFFD.
fn xml_char_ok(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn xml_escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            // Kept as character references: an attribute's value would otherwise have its
            // line breaks and tabs normalized to spaces, and a bare CR to LF in text.
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if xml_char_ok(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

fn attr(s: &str) -> String {
    xml_escape(s, true)
}

fn text(s: &str) -> String {
    xml_escape(s, false)
}

/// The first line of a text, for a `message` attribute.
fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

/// One `<testcase>` (indented for its suite), counted into `n`.
fn testcase(
    out: &mut String,
    lab: &str,
    s: &SubmissionResult,
    id: &str,
    max: f64,
    q: Option<&QuestionResult>,
    n: &mut Counts,
) {
    n.tests += 1;
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\"",
        attr(lab),
        attr(id)
    );
    let points = |q: &QuestionResult| format!("{}/{} points", num(q.points), num(q.max_points));
    let feedback = |q: &QuestionResult| q.feedback.join("\n");
    if s.outcome != Outcome::Graded {
        n.errors += 1;
        let message = match first_line(&s.message) {
            "" => s.outcome.name().to_string(),
            m => format!("{}: {m}", s.outcome.name()),
        };
        let mut body = s.message.clone();
        if let Some(q) = q {
            body = format!("{body}\n{}\n{}", points(q), feedback(q));
        }
        let _ = writeln!(
            out,
            ">\n      <error message=\"{}\" type=\"{}\">{}</error>\n    </testcase>",
            attr(&message),
            attr(s.outcome.name()),
            text(body.trim())
        );
        return;
    }
    match q {
        None => {
            n.errors += 1;
            let _ = writeln!(
                out,
                ">\n      <error message=\"{}\" type=\"missing-result\"/>\n    </testcase>",
                attr(&format!(
                    "golab recorded no result for this question ({} points)",
                    num(max)
                ))
            );
        }
        Some(q) if q.manual => {
            n.skipped += 1;
            let message = format!("kept for a person to grade ({} points)", num(q.max_points));
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                attr(&message)
            );
        }
        Some(q) if q.points < q.max_points => {
            n.failures += 1;
            let message = match q
                .feedback
                .iter()
                .map(|f| first_line(f))
                .find(|f| !f.is_empty())
            {
                Some(f) => format!("{}: {f}", points(q)),
                None => points(q),
            };
            let body = format!("{}\n{}", points(q), feedback(q));
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"points\">{}</failure>\n    </testcase>",
                attr(&message),
                text(body.trim())
            );
        }
        Some(_) => out.push_str("/>\n"),
    }
}

/// JUnit XML: a `<testsuite name=STUDENT>` per submission with a
/// `<testcase classname=LAB name=QUESTION>` per question of the lab (then any question
/// the submission has that the lab's list lacks). A question that lost points has a
/// `<failure>` with its feedback, a manual one is `<skipped>`, and every question of a
/// submission whose outcome is not `graded` has an `<error>` with the outcome's message.
pub fn junit(b: &BatchResult) -> String {
    let mut suites = String::new();
    let mut total = Counts::default();
    let mut seconds = 0.0;
    for s in &b.submissions {
        let mut cases = String::new();
        let mut n = Counts::default();
        for (id, max) in &b.questions {
            testcase(&mut cases, &b.lab, s, id, *max, find(s, id), &mut n);
        }
        for q in s
            .questions
            .iter()
            .filter(|q| !b.questions.iter().any(|(id, _)| *id == q.id))
        {
            testcase(&mut cases, &b.lab, s, &q.id, q.max_points, Some(q), &mut n);
        }
        let secs = if s.seconds.is_finite() && s.seconds > 0.0 {
            s.seconds
        } else {
            0.0
        };
        seconds += secs;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            attr(&s.student),
            n.tests,
            n.failures,
            n.errors,
            n.skipped,
            secs
        );
        suites.push_str("    <properties>\n");
        let mut prop = |name: &str, value: &str| {
            let _ = writeln!(
                suites,
                "      <property name=\"{}\" value=\"{}\"/>",
                attr(name),
                attr(value)
            );
        };
        prop("outcome", s.outcome.name());
        prop("score", &num(s.score));
        prop("max_score", &num(s.max_score));
        if !s.message.is_empty() {
            prop("message", &s.message);
        }
        if let Some(v) = &s.variant {
            prop("variant", v);
        }
        if let Some(t) = &s.transcript {
            prop(
                "transcript_genuine",
                if t.genuine { "true" } else { "false" },
            );
        }
        for f in &s.flags {
            prop("flag", f);
        }
        suites.push_str("    </properties>\n");
        suites.push_str(&cases);
        suites.push_str("  </testsuite>\n");
        total.tests += n.tests;
        total.failures += n.failures;
        total.errors += n.errors;
        total.skipped += n.skipped;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n{suites}</testsuites>\n",
        attr(&b.lab),
        total.tests,
        total.failures,
        total.errors,
        total.skipped,
        seconds
    )
}

// ---------------------------------------------------------------------------
// Gradescope results.json
//
// Format: https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output
// format"). Top level: `score` (overrides the sum of the tests), `execution_time`
// (seconds), `output` (text for the whole submission), `output_format`,
// `test_output_format`, `test_name_format`, `extra_data`, `tests[]`; each test:
// `name`, `score`, `max_score`, `status` ("passed"/"failed"), `output`,
// `output_format`, `visibility`. Visibility is one of hidden, after_due_date,
// after_published, visible (the default); the spec keeps `hidden` for tests that carry
// no points. We make every test `visible`: the student's feedback is the point of it,
// and a manual question is shown (with 0 points out of 0, its output saying it is
// graded by hand) so the student knows it was received; its points belong to the
// question the course adds for it in Gradescope, not to the autograder's score.
// All text is `text` format: shown as it is, never read as HTML or Markdown.

/// A number Gradescope can read (JSON has no NaN or infinity).
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn gradescope_output(s: &SubmissionResult) -> String {
    let mut out = Vec::<String>::new();
    if s.outcome == Outcome::Graded {
        out.push(format!("Score: {} / {}", num(s.score), num(s.max_score)));
        if !s.message.trim().is_empty() {
            out.push(s.message.trim_end().to_string());
        }
    } else {
        out.push(format!(
            "Your submission could not be fully graded ({}).",
            s.outcome.name()
        ));
        if !s.message.trim().is_empty() {
            out.push(s.message.trim_end().to_string());
        }
        out.push(format!("Score: {} / {}", num(s.score), num(s.max_score)));
    }
    let manual: Vec<String> = s
        .questions
        .iter()
        .filter(|q| q.manual)
        .map(|q| format!("{} ({} points)", q.id, num(q.max_points)))
        .collect();
    if !manual.is_empty() {
        out.push(format!(
            "Graded by hand by the course staff, not in this score: {}.",
            manual.join(", ")
        ));
    }
    if let Some(v) = &s.variant {
        out.push(format!("Your variant: {v}"));
    }
    if let Some(t) = &s.transcript {
        out.push(format!("Your dlv transcript: {}", t.summary()));
        out.extend(t.findings.iter().skip(1).map(|f| format!("  - {f}")));
    }
    out.join("\n")
}

fn gradescope_test(q: &QuestionResult) -> Value {
    let name = if q.title.trim().is_empty() {
        q.id.clone()
    } else {
        format!("{}: {}", q.id, q.title)
    };
    let mut output = q.feedback.clone();
    if q.manual {
        output.insert(0, format!("Graded by hand by the course staff (up to {} points, not part of the autograder's score).", num(q.max_points)));
    }
    if let Some(a) = &q.answer {
        output.push(format!("Your answer, as golab read it:\n{a}"));
    }
    // Points held for review are left out of the maximum: no penalty until a person
    // has looked.
    let max = finite(q.max_points - q.held_points).max(0.0);
    if let Some(h) = &q.held {
        output.insert(
            0,
            format!(
                "{} of the {} points are held for review by the course staff (not given, not lost): {h}",
                num(q.held_points),
                num(q.max_points)
            ),
        );
    }
    let mut t = json!({
        "name": name,
        "score": finite(q.points),
        "max_score": if q.manual { 0.0 } else { max },
        "output": output.join("\n"),
        "output_format": "text",
        "visibility": "visible",
    });
    if !q.manual {
        // A held test is not passed: its points are not given yet (a claim the grader
        // could not check must not read as a right answer).
        let passed = q.points >= max && q.held_points <= 0.0;
        t["status"] = json!(if passed { "passed" } else { "failed" });
        if q.held_points > 0.0 {
            t["name"] = json!(format!("{name} (held for review)"));
        }
    }
    t
}

/// Gradescope's results.json for one submission: the score, the outcome's message and
/// overall feedback as `output`, and a test per question with its points and feedback.
pub fn gradescope(s: &SubmissionResult) -> Value {
    json!({
        "score": finite(s.score),
        "execution_time": finite(s.seconds).max(0.0).ceil() as u64,
        "output": gradescope_output(s),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "extra_data": {
            "student": s.student,
            "outcome": s.outcome.name(),
            "max_score": finite(s.max_score),
            "variant": s.variant,
            "transcript_genuine": s.transcript.as_ref().map(|t| t.genuine),
        },
        "tests": s.questions.iter().map(gradescope_test).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------
// JSON

/// The whole batch as pretty JSON (the model's own serde shape).
pub fn json(b: &BatchResult) -> String {
    let mut s = serde_json::to_string_pretty(b)
        .expect("a BatchResult always serializes (no maps with non-string keys)");
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::model::TranscriptCheck;

    fn q(id: &str, points: f64, max: f64, feedback: &[&str], manual: bool) -> QuestionResult {
        QuestionResult {
            held_points: 0.0,
            held: None,
            id: id.into(),
            title: format!("Question {id}"),
            kind: if manual {
                "free-text".into()
            } else {
                "value".into()
            },
            points,
            max_points: max,
            feedback: feedback.iter().map(|f| f.to_string()).collect(),
            manual,
            answer: if manual {
                Some("runnext holds the newest g".into())
            } else {
                None
            },
        }
    }

    /// Three submissions: graded with partial points, invalid answers (no question
    /// results), a timeout (questions at 0). Student ids with a comma, quotes, `<`,
    /// `&` and a line break; feedback with an ESC and a NUL.
    fn batch() -> BatchResult {
        BatchResult {
            lab: "runq-order".into(),
            questions: vec![("q1".into(), 4.0), ("q2".into(), 3.0), ("q3".into(), 3.0)],
            submissions: vec![
                SubmissionResult {
                    build: None,
                    student: "doe, \"jane\"".into(),
                    outcome: Outcome::Graded,
                    message: String::new(),
                    questions: vec![
                        q("q1", 4.0, 4.0, &["right: runnext"], false),
                        q(
                            "q2",
                            4.0 / 3.0,
                            3.0,
                            &[
                                "missing: the global queue's turn every 61st schedtick",
                                "wrong: \u{1b}[31mred\u{1b}[0m & <b> \0 end",
                            ],
                            false,
                        ),
                        q("q3", 0.0, 3.0, &[], true),
                    ],
                    score: 16.0 / 3.0,
                    max_score: 10.0,
                    transcript: Some(TranscriptCheck {
                        genuine: false,
                        facts_checked: 0,
                        per_run: vec![],
                        not_checked: vec![],
                        findings: vec!["pc 0x1234 is not in main.main".into()],
                    }),
                    variant: Some("n=257, block on chan".into()),
                    seconds: 12.25,
                    content: String::new(),
                    submitted_at: None,
                    submitted_from: None,
                    late: None,
                    binary_sha256: None,
                    answers_sha256: None,
                    program_sha256: None,
                    sent_main_go_sha256: None,
                    flags: vec![],
                },
                SubmissionResult {
                    build: None,
                    student: "o'neil <b> & co".into(),
                    outcome: Outcome::InvalidAnswers,
                    message: "answers.yaml line 3, key q2: expected a list of function names"
                        .into(),
                    questions: vec![],
                    score: 0.0,
                    max_score: 10.0,
                    transcript: None,
                    variant: None,
                    seconds: 0.5,
                    content: String::new(),
                    submitted_at: None,
                    submitted_from: None,
                    late: None,
                    binary_sha256: None,
                    answers_sha256: None,
                    program_sha256: None,
                    sent_main_go_sha256: None,
                    flags: vec![],
                },
                SubmissionResult {
                    build: None,
                    student: "carol\nsmith".into(),
                    outcome: Outcome::Timeout,
                    message: "your program ran past the 120 s limit".into(),
                    questions: vec![
                        q("q1", 0.0, 4.0, &[], false),
                        q("q2", 0.0, 3.0, &[], false),
                        q("q3", 0.0, 3.0, &[], true),
                    ],
                    score: 0.0,
                    max_score: 10.0,
                    transcript: None,
                    variant: None,
                    seconds: 120.0,
                    content: String::new(),
                    submitted_at: None,
                    submitted_from: None,
                    late: None,
                    binary_sha256: None,
                    answers_sha256: None,
                    program_sha256: None,
                    sent_main_go_sha256: None,
                    flags: vec![],
                },
            ],
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(num(10.0), "10");
        assert_eq!(num(7.5), "7.5");
        assert_eq!(num(4.0 / 3.0), "1.33");
        assert_eq!(num(2.0 / 3.0), "0.67");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(100.0), "100");
        assert_eq!(num(0.1 + 0.2), "0.3");
    }

    #[test]
    fn csv_exact() {
        let expected = "student,outcome,total,max,q1,q2,q3,held,review,late,flags\r\n\
                        \"doe, \"\"jane\"\"\",graded,5.33,10,4,1.33,,,,,\r\n\
                        o'neil <b> & co,invalid-answers,0,10,,,,,,,\r\n\
                        \"carol\nsmith\",timeout,0,10,0,0,,1,\"q2 held: built with go1.17.1, \"\"no toolchain\"\"\",,\r\n";
        let mut b = batch();
        b.submissions[2].questions[1].held_points = 1.0;
        b.submissions[2].questions[1].held = Some("built with go1.17.1, \"no toolchain\"".into());
        assert_eq!(csv(&b), expected);
        let t = table(&b);
        assert!(
            t.contains("0 +1?")
                && t.contains("held for review")
                && t.contains("q2: 1 points: built with go1.17.1"),
            "{t}"
        );
        let g = gradescope(&b.submissions[2]);
        assert_eq!(
            g["tests"][1]["max_score"],
            json!(b.submissions[2].questions[1].max_points - 1.0)
        );
    }

    #[test]
    fn table_is_aligned_and_summarized() {
        let t = table(&batch());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "lab runq-order");
        assert_eq!(lines.len(), 6, "{t}");
        assert!(
            lines[1].starts_with("student") && lines[1].ends_with("q3/3"),
            "{t}"
        );
        // The score column ends at the same place on every line (right-aligned).
        let end = lines[1].find("score").unwrap() + "score".len();
        let row = lines[2];
        assert!(row.starts_with("doe, \"jane\""));
        assert_eq!(
            &row[..end].trim_end().rsplit(' ').next().unwrap(),
            &"5.33/10",
            "{t}"
        );
        assert!(row.ends_with("manual"), "{t}");
        assert!(lines[3].ends_with(" -"), "no results: {t}");
        assert!(
            lines[4].starts_with("carol\\nsmith"),
            "line break escaped: {t}"
        );
        let widths: Vec<usize> = lines[1..5].iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "aligned: {t}");
        assert_eq!(
            lines[5],
            "3 submissions: 1 graded, 1 invalid-answers, 1 timeout; mean score 1.78/10 (17.78%)"
        );
        assert!(!t.contains('\u{1b}'));
    }

    #[test]
    fn table_of_nothing() {
        let b = BatchResult {
            lab: "x".into(),
            questions: vec![],
            submissions: vec![],
        };
        assert_eq!(table(&b), "lab x\nstudent  outcome  score\n0 submissions\n");
    }

    #[test]
    fn junit_is_well_formed_and_counts_agree() {
        let b = batch();
        let xml = junit(&b);
        let root = xml::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(root.name, "testsuites");
        assert_eq!(root.attr("name"), Some("runq-order"));
        let count = |e: &xml::Element, what: &str| {
            e.children
                .iter()
                .filter(|c| c.name == "testcase")
                .filter(|c| c.children.iter().any(|x| x.name == what))
                .count()
        };
        let mut totals = [0usize; 4];
        assert_eq!(root.children.len(), 3);
        for (suite, s) in root.children.iter().zip(&b.submissions) {
            assert_eq!(suite.name, "testsuite");
            assert_eq!(
                suite.attr("name"),
                Some(s.student.as_str()),
                "student id round-trips"
            );
            let cases = suite
                .children
                .iter()
                .filter(|c| c.name == "testcase")
                .count();
            let got = [
                cases,
                count(suite, "failure"),
                count(suite, "error"),
                count(suite, "skipped"),
            ];
            let said: Vec<usize> = ["tests", "failures", "errors", "skipped"]
                .iter()
                .map(|a| suite.attr(a).unwrap().parse().unwrap())
                .collect();
            assert_eq!(got.to_vec(), said, "{}", s.student);
            for i in 0..4 {
                totals[i] += got[i];
            }
            for c in suite.children.iter().filter(|c| c.name == "testcase") {
                assert_eq!(c.attr("classname"), Some("runq-order"));
            }
        }
        let said: Vec<usize> = ["tests", "failures", "errors", "skipped"]
            .iter()
            .map(|a| root.attr(a).unwrap().parse().unwrap())
            .collect();
        assert_eq!(totals.to_vec(), said);
        assert_eq!(totals, [9, 1, 6, 1]);

        // The graded one: q1 passes, q2 fails with its feedback, q3 is skipped.
        let alice = &root.children[0];
        let cases: Vec<&xml::Element> = alice
            .children
            .iter()
            .filter(|c| c.name == "testcase")
            .collect();
        assert!(cases[0].children.is_empty());
        let failure = &cases[1].children[0];
        assert_eq!(failure.name, "failure");
        assert_eq!(
            failure.attr("message"),
            Some("1.33/3 points: missing: the global queue's turn every 61st schedtick")
        );
        assert!(
            failure
                .text
                .contains("wrong: \u{FFFD}[31mred\u{FFFD}[0m & <b> \u{FFFD} end"),
            "{}",
            failure.text
        );
        assert_eq!(cases[2].children[0].name, "skipped");
        // The properties come first and carry the outcome.
        let props = &alice
            .children
            .iter()
            .find(|c| c.name == "properties")
            .unwrap()
            .children;
        assert!(
            props
                .iter()
                .any(|p| p.attr("name") == Some("outcome") && p.attr("value") == Some("graded"))
        );
        // Invalid answers: an error per question, with the message.
        let bob = &root.children[1];
        let err = &bob
            .children
            .iter()
            .find(|c| c.name == "testcase")
            .unwrap()
            .children[0];
        assert_eq!(err.name, "error");
        assert_eq!(err.attr("type"), Some("invalid-answers"));
        assert_eq!(
            err.attr("message"),
            Some("invalid-answers: answers.yaml line 3, key q2: expected a list of function names")
        );
    }

    #[test]
    fn junit_attribute_keeps_line_breaks() {
        let mut b = batch();
        b.submissions[1].message = "line one\nline \"two\"\tend".into();
        let xml = junit(&b);
        let root = xml::parse(&xml).unwrap();
        let props = &root.children[1].children[0].children;
        let m = props
            .iter()
            .find(|p| p.attr("name") == Some("message"))
            .unwrap();
        assert_eq!(m.attr("value"), Some("line one\nline \"two\"\tend"));
    }

    #[test]
    fn gradescope_fields_and_sums() {
        let b = batch();
        let g = gradescope(&b.submissions[0]);
        assert!(g["score"].is_number());
        assert!((g["score"].as_f64().unwrap() - 16.0 / 3.0).abs() < 1e-9);
        assert_eq!(g["execution_time"], json!(13));
        let tests = g["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 3);
        for t in tests {
            assert!(t["score"].is_number() && t["max_score"].is_number(), "{t}");
            assert!(t["name"].is_string() && t["output"].is_string(), "{t}");
            assert_eq!(t["visibility"], "visible");
            assert_eq!(t["output_format"], "text");
            assert!(
                t["score"].as_f64().unwrap() <= t["max_score"].as_f64().unwrap(),
                "{t}"
            );
        }
        let sum: f64 = tests.iter().map(|t| t["score"].as_f64().unwrap()).sum();
        assert!(
            (sum - g["score"].as_f64().unwrap()).abs() < 1e-9,
            "test scores add up to the score"
        );
        let max: f64 = tests.iter().map(|t| t["max_score"].as_f64().unwrap()).sum();
        assert_eq!(
            max, 7.0,
            "the manual question's 3 points are not the autograder's"
        );
        assert_eq!(tests[0]["name"], "q1: Question q1");
        assert_eq!(tests[0]["status"], "passed");
        assert_eq!(tests[1]["status"], "failed");
        assert_eq!(tests[1]["max_score"], json!(3.0));
        assert_eq!(
            tests[1]["output"],
            "missing: the global queue's turn every 61st schedtick\nwrong: \u{1b}[31mred\u{1b}[0m & <b> \0 end"
        );
        assert!(tests[2].get("status").is_none());
        assert!(
            tests[2]["output"]
                .as_str()
                .unwrap()
                .contains("Graded by hand")
        );
        assert!(
            tests[2]["output"]
                .as_str()
                .unwrap()
                .contains("runnext holds the newest g")
        );
        let out = g["output"].as_str().unwrap();
        assert!(out.starts_with("Score: 5.33 / 10"), "{out}");
        assert!(out.contains("Your variant: n=257, block on chan"), "{out}");
        assert!(
            out.contains("inconsistent with your binary: pc 0x1234 is not in main.main"),
            "{out}"
        );
        assert_eq!(g["extra_data"]["outcome"], "graded");

        // Invalid answers: no tests, score 0, the message in the output.
        let g = gradescope(&b.submissions[1]);
        assert_eq!(g["score"], json!(0.0));
        assert_eq!(g["tests"], json!([]));
        let out = g["output"].as_str().unwrap();
        assert!(out.starts_with("Your submission could not be fully graded (invalid-answers).\nanswers.yaml line 3, key q2"), "{out}");

        // Timeout: every automatic test failed, sums still consistent.
        let g = gradescope(&b.submissions[2]);
        let tests = g["tests"].as_array().unwrap();
        assert_eq!(tests.iter().filter(|t| t["status"] == "failed").count(), 2);
        assert_eq!(
            tests
                .iter()
                .map(|t| t["score"].as_f64().unwrap())
                .sum::<f64>(),
            0.0
        );
        assert!(
            g["output"]
                .as_str()
                .unwrap()
                .contains("ran past the 120 s limit")
        );
    }

    #[test]
    fn gradescope_never_emits_null_numbers() {
        let mut s = batch().submissions[0].clone();
        s.score = f64::NAN;
        s.seconds = f64::INFINITY;
        s.questions[0].points = f64::NAN;
        let g = gradescope(&s);
        assert_eq!(g["score"], json!(0.0));
        assert_eq!(g["execution_time"], json!(0));
        assert_eq!(g["tests"][0]["score"], json!(0.0));
    }

    #[test]
    fn json_round_trips() {
        let b = batch();
        let j = json(&b);
        assert!(j.ends_with("}\n"));
        let back: BatchResult = serde_json::from_str(&j).unwrap();
        assert_eq!(back.submissions.len(), 3);
        assert_eq!(back.submissions[1].outcome, Outcome::InvalidAnswers);
        assert!(j.contains("\"outcome\": \"invalid-answers\""));
    }

    #[test]
    fn xml_checker_rejects_what_it_should() {
        for bad in [
            "<a>",
            "<a></b>",
            "<a x=\"1\" x=\"2\"/>",
            "<a x=\"<\"/>",
            "<a>&nope;</a>",
            "<a>\u{1}</a>",
            "<a/><b/>",
            "<a>x &amp y</a>",
            "<a>&#0;</a>",
            "<a x=1/>",
            "text",
        ] {
            assert!(xml::parse(bad).is_err(), "{bad:?} accepted");
        }
        let ok =
            xml::parse("<?xml version=\"1.0\"?>\n<a x='&lt;&#10;&#x41;'>t<b/>u</a>\n").unwrap();
        assert_eq!(ok.attr("x"), Some("<\nA"));
        assert_eq!(ok.text, "tu");
    }

    /// A small, strict XML 1.0 well-formedness check (elements, attributes, character
    /// and the five predefined entity references; no DTD, comments or CDATA, which the
    /// renderings never write), returning the tree for the tests to inspect.
    mod xml {
        pub struct Element {
            pub name: String,
            pub attrs: Vec<(String, String)>,
            pub children: Vec<Element>,
            pub text: String,
        }

        impl Element {
            pub fn attr(&self, name: &str) -> Option<&str> {
                self.attrs
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            }
        }

        fn char_ok(c: char) -> bool {
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
        }

        struct P<'a> {
            s: &'a str,
            i: usize,
        }

        impl P<'_> {
            fn rest(&self) -> &str {
                &self.s[self.i..]
            }
            fn peek(&self) -> Option<char> {
                self.rest().chars().next()
            }
            fn eat(&mut self, t: &str) -> bool {
                if self.rest().starts_with(t) {
                    self.i += t.len();
                    true
                } else {
                    false
                }
            }
            fn expect(&mut self, t: &str) -> Result<(), String> {
                if self.eat(t) {
                    Ok(())
                } else {
                    Err(format!("expected {t:?} at byte {}", self.i))
                }
            }
            fn ws(&mut self) -> bool {
                let start = self.i;
                while let Some(c) = self
                    .peek()
                    .filter(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
                {
                    self.i += c.len_utf8();
                }
                self.i > start
            }
            fn name(&mut self) -> Result<String, String> {
                let start = self.i;
                while let Some(c) = self.peek() {
                    let first = self.i == start;
                    if c.is_alphabetic()
                        || c == '_'
                        || c == ':'
                        || (!first && (c.is_ascii_digit() || c == '-' || c == '.'))
                    {
                        self.i += c.len_utf8();
                    } else {
                        break;
                    }
                }
                if self.i == start {
                    Err(format!("expected a name at byte {}", self.i))
                } else {
                    Ok(self.s[start..self.i].to_string())
                }
            }
            fn reference(&mut self) -> Result<char, String> {
                let end = self.rest().find(';').ok_or("unterminated reference")?;
                let r = &self.rest()[..end];
                let c = match r {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => {
                        let n = if let Some(h) = r.strip_prefix("#x") {
                            u32::from_str_radix(h, 16)
                                .map_err(|_| format!("bad reference &{r};"))?
                        } else if let Some(d) = r.strip_prefix('#') {
                            d.parse().map_err(|_| format!("bad reference &{r};"))?
                        } else {
                            return Err(format!("unknown entity &{r};"));
                        };
                        char::from_u32(n)
                            .filter(|c| char_ok(*c))
                            .ok_or(format!("illegal character reference &{r};"))?
                    }
                };
                self.i += end + 1;
                Ok(c)
            }
            fn element(&mut self) -> Result<Element, String> {
                self.expect("<")?;
                let name = self.name()?;
                let mut attrs: Vec<(String, String)> = Vec::new();
                loop {
                    let had_ws = self.ws();
                    if self.eat("/>") {
                        return Ok(Element {
                            name,
                            attrs,
                            children: vec![],
                            text: String::new(),
                        });
                    }
                    if self.eat(">") {
                        break;
                    }
                    if !had_ws {
                        return Err(format!(
                            "expected space before an attribute at byte {}",
                            self.i
                        ));
                    }
                    let a = self.name()?;
                    self.ws();
                    self.expect("=")?;
                    self.ws();
                    let q = self
                        .peek()
                        .filter(|c| *c == '"' || *c == '\'')
                        .ok_or(format!("unquoted attribute {a}"))?;
                    self.i += 1;
                    let mut v = String::new();
                    loop {
                        match self.peek().ok_or("unterminated attribute")? {
                            c if c == q => {
                                self.i += 1;
                                break;
                            }
                            '<' => return Err(format!("'<' in attribute {a}")),
                            '&' => {
                                self.i += 1;
                                v.push(self.reference()?);
                            }
                            c => {
                                self.i += c.len_utf8();
                                v.push(c);
                            }
                        }
                    }
                    if attrs.iter().any(|(n, _)| *n == a) {
                        return Err(format!("duplicate attribute {a}"));
                    }
                    attrs.push((a, v));
                }
                let mut children = Vec::new();
                let mut text = String::new();
                loop {
                    if self.eat("</") {
                        let end = self.name()?;
                        if end != name {
                            return Err(format!("</{end}> closes <{name}>"));
                        }
                        self.ws();
                        self.expect(">")?;
                        return Ok(Element {
                            name,
                            attrs,
                            children,
                            text,
                        });
                    }
                    if self.rest().starts_with("]]>") {
                        return Err("']]>' in text".into());
                    }
                    match self.peek().ok_or(format!("<{name}> is not closed"))? {
                        '<' => children.push(self.element()?),
                        '&' => {
                            self.i += 1;
                            text.push(self.reference()?);
                        }
                        c => {
                            self.i += c.len_utf8();
                            if !c.is_whitespace() || !text.is_empty() {
                                text.push(c);
                            }
                        }
                    }
                }
            }
        }

        pub fn parse(s: &str) -> Result<Element, String> {
            if let Some(c) = s.chars().find(|c| !char_ok(*c)) {
                return Err(format!(
                    "character U+{:04X} is not allowed in XML 1.0",
                    c as u32
                ));
            }
            let mut p = P { s, i: 0 };
            if p.eat("<?xml") {
                let end = p.rest().find("?>").ok_or("unterminated XML declaration")?;
                p.i += end + 2;
            }
            p.ws();
            let root = p.element()?;
            p.ws();
            if p.i != s.len() {
                return Err(format!("content after the root element at byte {}", p.i));
            }
            Ok(root)
        }
    }
}

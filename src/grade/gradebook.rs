//! The instructor's view of a batch: what a submission is (its content hash, its time),
//! the late policy, hand scores, copy flags, per-question statistics, a histogram, and
//! a self-contained HTML report. Result files keep what the grader computed; late
//! penalties, hand scores and flags are applied when the gradebook is put together
//! (`finish`), so regrading, importing or changing the policy never applies one twice.

use super::model::{BatchResult, SubmissionResult};
use super::render::num;
use super::submission::{Source, Submission};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

// ---------------------------------------------------------------------------
// What a submission is

/// SHA-256 of what the student handed in: the archive's bytes, or a folder's files
/// (relative paths, link targets and contents, sorted). A changed resubmission has
/// another hash, so it is regraded without --force.
pub fn content_hash(s: &Submission) -> Result<String> {
    let mut h = Sha256::new();
    match &s.source {
        Source::Zip(p) | Source::TarGz(p) => {
            h.update(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?)
        }
        Source::Folder(d) => hash_dir(&mut h, d, "", 0)?,
        // Not unpacked, not graded: their outcome stands on the name(s) alone.
        Source::Unusable { name, .. } => h.update(format!("U{name}").as_bytes()),
        Source::Duplicate(paths) => {
            for p in paths {
                h.update(format!("D{}\0", p.display()).as_bytes());
            }
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Deeper trees are refused when unpacked (`unsafe-archive`); their hash needs no more.
const HASH_DEPTH: usize = 32;

fn hash_dir(h: &mut Sha256, dir: &Path, rel: &str, depth: usize) -> Result<()> {
    if depth > HASH_DEPTH {
        h.update(format!("X{rel}\0").as_bytes());
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = format!("{rel}/{}", e.file_name().to_string_lossy());
        let t = e.file_type()?;
        if t.is_symlink() {
            h.update(format!("L{name}\0").as_bytes());
            h.update(std::fs::read_link(e.path())?.to_string_lossy().as_bytes());
        } else if t.is_dir() {
            h.update(format!("D{name}\0").as_bytes());
            hash_dir(h, &e.path(), &name, depth + 1)?;
        } else if t.is_file() {
            // Streamed, and a file past what unpacking accepts (a sparse 3 GiB one) not
            // read at all: it is refused (`unsafe-archive`) whatever it holds.
            let len = e.metadata()?.len();
            h.update(format!("F{name}\0{len}\0").as_bytes());
            if len > super::submission::MAX_BYTES {
                h.update(b"too large to unpack\0");
                continue;
            }
            let mut f = std::fs::File::open(e.path())?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = std::io::Read::read(&mut f, &mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
    }
    Ok(())
}

/// When the student handed it in, and how golab knows: only from what the platform or
/// the instructor supplies, never from a file the student wrote. Gradescope's
/// `submission_metadata.json` (`created_at`) given as `STUDENT.submission_metadata.json`
/// beside the submission (on Gradescope itself it is `/autograder/submission_metadata.json`,
/// outside the submission, which `golab check --gradescope-metadata` reads), else a
/// `STUDENT.submitted-at` file beside it (one RFC 3339 time), else the archive's or the
/// folder's modification time. A `submission_metadata.json` inside a folder submission is
/// the student's own file: it is named in `from`, never used.
pub fn submitted_at(s: &Submission) -> Option<(i64, String)> {
    let path = match &s.source {
        Source::Folder(p) | Source::Zip(p) | Source::TarGz(p) => p,
        Source::Unusable { path, .. } => path,
        Source::Duplicate(paths) => paths.first()?,
    };
    let parent = path.parent()?;
    let (at, from) = supplied_time(s, path, parent)?;
    if let Source::Folder(d) = &s.source
        && std::fs::symlink_metadata(d.join("submission_metadata.json")).is_ok()
    {
        return Some((
            at,
            format!(
                "{from} (the submission_metadata.json inside the submission is the student's file: not used)"
            ),
        ));
    }
    Some((at, from))
}

fn supplied_time(s: &Submission, path: &Path, parent: &Path) -> Option<(i64, String)> {
    let meta = parent.join(format!("{}.submission_metadata.json", s.student));
    if let Ok(t) = std::fs::read_to_string(&meta)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
        && let Some(c) = v["created_at"].as_str()
        && let Ok(at) = parse_time(c)
    {
        return Some((at, format!("created_at of {}", meta.display())));
    }
    let stamp = parent.join(format!("{}.submitted-at", s.student));
    if let Ok(t) = std::fs::read_to_string(&stamp)
        && let Ok(at) = parse_time(t.trim())
    {
        return Some((at, stamp.display().to_string()));
    }
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    let at = m.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some((at, format!("modification time of {}", path.display())))
}

/// Seconds since 1970 of `2026-12-01T23:59:00Z`, `2018-07-01T14:22:32.365935-07:00`,
/// `2026-12-01 23:59` (UTC) or `2026-12-01` (the end of that day, UTC).
pub fn parse_time(s: &str) -> Result<i64> {
    let s = s.trim();
    let bad = || {
        anyhow::anyhow!(
            "'{s}' is not a time (write e.g. 2026-12-01T23:59:00Z or 2026-12-01T23:59:00-07:00)"
        )
    };
    let (date, rest) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse::<i64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad())?;
    let [y, mo, da] = d[..] else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return Err(bad());
    }
    if rest.is_empty() {
        return Ok(days_from_civil(y, mo, da) * 86400 + 86399);
    }
    // Time, then an optional zone: Z, +HH:MM, -HH:MM, +HHMM.
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let t: Vec<&str> = time.split(':').collect();
    if t.len() < 2 || t.len() > 3 {
        return Err(bad());
    }
    let hh: i64 = t[0].parse().map_err(|_| bad())?;
    let mm: i64 = t[1].parse().map_err(|_| bad())?;
    let ss: i64 = match t.get(2) {
        Some(x) => x
            .split('.')
            .next()
            .unwrap_or("0")
            .parse()
            .map_err(|_| bad())?,
        None => 0,
    };
    if hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    let offset = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.len() != 4 {
                return Err(bad());
            }
            let oh: i64 = digits[..2].parse().map_err(|_| bad())?;
            let om: i64 = digits[2..].parse().map_err(|_| bad())?;
            sign * (oh * 3600 + om * 60)
        }
    };
    Ok(days_from_civil(y, mo, da) * 86400 + hh * 3600 + mm * 60 + ss - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `2026-12-01T23:59:00Z`.
pub fn fmt_time(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// ---------------------------------------------------------------------------
// Late policy

pub use crate::lab::LatePolicy;

pub use super::model::Late;

impl LatePolicy {
    pub fn check(&self) -> Result<()> {
        parse_time(&self.deadline).context("the late policy's deadline")?;
        for (s, d) in &self.extensions {
            parse_time(d).with_context(|| format!("the extension of {s}"))?;
        }
        if !(0.0..=100.0).contains(&self.penalty_per_day) {
            bail!(
                "the late penalty is a percent per day (0 to 100), not {}",
                self.penalty_per_day
            );
        }
        Ok(())
    }

    /// Reads `STUDENT,DEADLINE` lines (a header line `student,deadline` is skipped).
    pub fn read_extensions(&mut self, text: &str) -> Result<()> {
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            if l.is_empty() || (i == 0 && l.starts_with("student")) {
                continue;
            }
            let (s, d) = l
                .split_once(',')
                .with_context(|| format!("extensions line {}: expected STUDENT,DEADLINE", i + 1))?;
            parse_time(d).with_context(|| format!("extensions line {}", i + 1))?;
            self.extensions
                .insert(s.trim().to_string(), d.trim().to_string());
        }
        Ok(())
    }

    pub fn apply(&self, r: &mut SubmissionResult) {
        let Some(at) = r.submitted_at.as_deref().and_then(|t| parse_time(t).ok()) else {
            return;
        };
        let deadline = self
            .extensions
            .get(&r.student)
            .unwrap_or(&self.deadline)
            .clone();
        let Ok(due) = parse_time(&deadline) else {
            return;
        };
        let days = if at <= due {
            0
        } else {
            ((at - due) as f64 / 86400.0).ceil() as u32
        };
        let penalty = if days == 0 {
            0.0
        } else if self.max_days.is_some_and(|m| days as f64 > m) {
            1.0
        } else {
            (self.penalty_per_day / 100.0 * days as f64).min(1.0)
        };
        let before = r.score;
        r.score = round2(before * (1.0 - penalty));
        r.late = Some(Late {
            submitted_at: fmt_time(at),
            deadline: fmt_time(due),
            days,
            penalty,
            score_before: before,
        });
    }
}

pub use super::render::days;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------------------
// Hand scores

/// Scores a person gave, by student and question (OUT/hand-scores.json).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HandScores {
    pub scores: BTreeMap<String, BTreeMap<String, HandScore>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandScore {
    pub points: f64,
    pub max: f64,
    #[serde(default)]
    pub comment: String,
}

pub const HAND_FILE: &str = "hand-scores.json";
const HAND_HEADER: &str = "student,question,max,points,comment,answer";

impl HandScores {
    pub fn load(out: &Path) -> Result<HandScores> {
        let p = out.join(HAND_FILE);
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t)
                .with_context(|| format!("{} is not golab's hand scores", p.display())),
            Err(_) => Ok(HandScores::default()),
        }
    }

    /// Reads a filled-in export (any of its splits); returns how many scores it held.
    pub fn import(&mut self, text: &str, b: &BatchResult) -> Result<usize> {
        let mut n = 0;
        let rows = csv_rows(text).context("not a CSV file")?;
        let mut it = rows.into_iter().enumerate();
        match it.next() {
            Some((_, h)) if h.join(",").starts_with("student,question,max,points") => {}
            _ => bail!("the first line must be the export's header: {HAND_HEADER}"),
        }
        for (i, row) in it {
            let line = i + 1;
            if row.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let get = |k: usize| row.get(k).map(|s| s.trim()).unwrap_or("");
            let (student, question) = (get(0), get(1));
            let Some(s) = b.submissions.iter().find(|s| s.student == student) else {
                bail!("line {line}: no graded submission of '{student}'");
            };
            let Some(q) = s.questions.iter().find(|q| q.id == question) else {
                bail!(
                    "line {line}: '{question}' is not a question of lab {}",
                    b.lab
                );
            };
            if !q.manual
                && !self
                    .scores
                    .get(student)
                    .is_some_and(|m| m.contains_key(question))
            {
                bail!("line {line}: {question} is graded automatically, not by hand");
            }
            if get(3).is_empty() {
                continue; // not graded yet
            }
            let max: f64 = get(2)
                .parse()
                .with_context(|| format!("line {line}: max '{}' is not a number", get(2)))?;
            let points: f64 = get(3)
                .parse()
                .with_context(|| format!("line {line}: points '{}' is not a number", get(3)))?;
            if !(0.0..=max).contains(&points) || !points.is_finite() {
                bail!("line {line}: {points} points is not between 0 and the max {max}");
            }
            self.scores.entry(student.to_string()).or_default().insert(
                question.to_string(),
                HandScore {
                    points,
                    max,
                    comment: get(4).to_string(),
                },
            );
            n += 1;
        }
        Ok(n)
    }

    fn apply(&self, r: &mut SubmissionResult) {
        let Some(mine) = self.scores.get(&r.student) else {
            return;
        };
        for q in &mut r.questions {
            if let Some(h) = mine.get(&q.id) {
                let added_max = h.max - q.max_points;
                q.points = h.points;
                q.max_points = h.max;
                q.manual = false;
                q.feedback
                    .retain(|f| !f.starts_with("kept for your instructor"));
                q.feedback.push(if h.comment.is_empty() {
                    "graded by hand".to_string()
                } else {
                    format!("graded by hand: {}", h.comment)
                });
                r.score = round2(r.score + h.points);
                r.max_score = round2(r.max_score + added_max);
            }
        }
    }
}

/// How the free-text answers are split into files for hand grading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Split {
    One,
    Question,
    Student,
}

/// The free-text answers as CSV files to fill in (`points`, `comment`): (file name, text).
pub fn hand_export(b: &BatchResult, hand: &HandScores, split: Split) -> Vec<(String, String)> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for s in &b.submissions {
        for q in &s.questions {
            let done = hand.scores.get(&s.student).and_then(|m| m.get(&q.id));
            if !q.manual && done.is_none() {
                continue;
            }
            let name = match split {
                Split::One => "hand-grading.csv".to_string(),
                Split::Question => format!("hand-{}.csv", q.id),
                Split::Student => format!("hand-{}.csv", s.student),
            };
            let f = files
                .entry(name)
                .or_insert_with(|| format!("{HAND_HEADER}\r\n"));
            let max = done.map(|d| d.max).unwrap_or(q.max_points);
            let _ = write!(
                f,
                "{},{},{},{},{},{}\r\n",
                csv_field(&s.student),
                csv_field(&q.id),
                if max > 0.0 { num(max) } else { "1".into() },
                done.map(|d| num(d.points)).unwrap_or_default(),
                csv_field(done.map(|d| d.comment.as_str()).unwrap_or("")),
                csv_field(q.answer.as_deref().unwrap_or("")),
            );
        }
    }
    files.into_iter().collect()
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be a formula in a spreadsheet: quote it as text.
    let formula = s.starts_with(['=', '+', '-', '@']);
    if s.contains([',', '"', '\n', '\r']) || formula {
        format!(
            "\"{}{}\"",
            if formula { "'" } else { "" },
            s.replace('"', "\"\"")
        )
    } else {
        s.to_string()
    }
}

/// RFC 4180 rows (quoted fields may hold commas, quotes and line breaks).
fn csv_rows(text: &str) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            c => field.push(c),
        }
    }
    if quoted {
        bail!("a quoted field is not closed");
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// Copy flags

/// (question, answer, full points).
type Given = (String, String, bool);

/// Flags submissions that share what no two honest ones share: a byte-identical
/// answers.yaml, or a value a real dlv session gets anew each run (a stack address under
/// ASLR, a thread id). Flags are for a person to look at; they change no score.
fn flag_shared(results: &mut [SubmissionResult]) {
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
    // Thread ids alone can coincide (students' lab VMs boot alike, and a forged
    // transcript can list thousands to hit a classmate's); a stack address under ASLR
    // does not.
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

/// Flags what looks copied: an entry-point address that is wrong for its student but
/// right for another's build, and identical non-trivial answers between two students.
pub fn flag_copies(b: &mut BatchResult) {
    let answers: Vec<(String, Vec<Given>)> = b
        .submissions
        .iter()
        .map(|s| {
            (
                s.student.clone(),
                s.questions
                    .iter()
                    .filter_map(|q| {
                        let a = q.answer.clone()?;
                        Some((
                            q.id.clone(),
                            a,
                            q.points >= q.max_points && q.max_points > 0.0,
                        ))
                    })
                    .collect(),
            )
        })
        .collect();
    // Byte-identical answers.yaml files and transcripts sharing per-run values first;
    // it also clears what an earlier gradebook flagged.
    flag_shared(&mut b.submissions);
    flag_programs(&mut b.submissions);
    for s in &mut b.submissions {
        let Some((_, mine)) = answers.iter().find(|(st, _)| *st == s.student) else {
            continue;
        };
        for (id, a, right) in mine {
            if a.trim().chars().filter(|c| !c.is_whitespace()).count() < 12 {
                continue;
            }
            for (other, theirs) in &answers {
                if *other == s.student {
                    continue;
                }
                let Some((_, b_a, b_right)) = theirs.iter().find(|(i, _, _)| i == id) else {
                    continue;
                };
                if normal(b_a) != normal(a) {
                    continue;
                }
                let kind = s
                    .questions
                    .iter()
                    .find(|q| &q.id == id)
                    .map(|q| q.kind.as_str());
                let flag = if kind == Some("entry-point") {
                    // Entry points differ between variants: the same address is only
                    // suspicious when it is right for the other and wrong here.
                    if *b_right && !*right {
                        format!("{id}: the answer is right for {other}'s build, not for this one")
                    } else {
                        continue;
                    }
                } else if kind == Some("chain") || kind == Some("callers") {
                    // Everyone's right chain is the same: only the same wrong answer
                    // tells (wrong for both: a chain right for another Go is not).
                    if *right || *b_right {
                        continue;
                    }
                    format!("{id}: the same wrong answer as {other}")
                } else {
                    format!("{id}: the same answer as {other}")
                };
                if !s.flags.contains(&flag) {
                    s.flags.push(flag);
                }
            }
        }
    }
}

/// Flags a sent main.go that is not the assigned program (with variants it was not run:
/// the answers were checked against the assigned variant), one that is another student's
/// variant, the same main.go sent by two students, and one binary observed for two
/// different variants. Two students who drew the same variant and sent it unchanged
/// share a program and a binary honestly: that is no flag.
fn flag_programs(results: &mut [SubmissionResult]) {
    let mut add = Vec::new();
    for (i, s) in results.iter().enumerate() {
        let others = |f: &dyn Fn(&SubmissionResult) -> bool| -> Vec<&str> {
            results
                .iter()
                .enumerate()
                .filter(|(j, o)| *j != i && f(o))
                .map(|(_, o)| o.student.as_str())
                .collect()
        };
        let mut flags = Vec::new();
        if let Some(sent) = &s.sent_main_go_sha256 {
            if s.variant.is_some() {
                let mut f = "not-assigned-program: the main.go sent is not the assigned variant (not run; the answers were checked against the assigned variant's run)".to_string();
                let whose = others(&|o| o.program_sha256.as_ref() == Some(sent));
                if !whose.is_empty() {
                    f.push_str(&format!("; it is the variant of {}", whose.join(", ")));
                }
                flags.push(f);
            }
            let same = others(&|o| o.sent_main_go_sha256.as_ref() == Some(sent));
            if !same.is_empty() {
                flags.push(format!(
                    "the same main.go (not the assigned program) as {} sent",
                    same.join(", ")
                ));
            }
        }
        if let Some(bin) = &s.binary_sha256 {
            let same = others(&|o| o.binary_sha256.as_ref() == Some(bin) && o.variant != s.variant);
            if !same.is_empty() {
                flags.push(format!(
                    "the same binary as {}, whose variant is another",
                    same.join(", ")
                ));
            }
        }
        add.push(flags);
    }
    for (r, f) in results.iter_mut().zip(add) {
        for f in f {
            if !r.flags.contains(&f) {
                r.flags.push(f);
            }
        }
    }
}

fn normal(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

// ---------------------------------------------------------------------------
// Putting the gradebook together

/// Applies hand scores, the late policy and the copy flags to results as the grader
/// left them. Call once per load of the result files.
pub fn finish(b: &mut BatchResult, hand: &HandScores, late: Option<&LatePolicy>) {
    for s in &mut b.submissions {
        hand.apply(s);
        s.late = None;
        if let Some(p) = late {
            p.apply(s);
        }
    }
    for (id, max) in &mut b.questions {
        // A question graded by hand has the max its grader gave it.
        if let Some(m) = b
            .submissions
            .iter()
            .filter_map(|s| s.questions.iter().find(|q| &q.id == id))
            .filter(|q| !q.manual)
            .map(|q| q.max_points)
            .reduce(f64::max)
            && *max == 0.0
        {
            *max = m;
        }
    }
    flag_copies(b);
}

// ---------------------------------------------------------------------------
// Statistics

#[derive(Debug, Clone, PartialEq)]
pub struct QuestionStats {
    pub id: String,
    pub max: f64,
    /// Submissions with points for this question (graded automatically or by hand).
    pub n: usize,
    pub mean: f64,
    /// Standard deviation (population).
    pub spread: f64,
    /// Full points.
    pub right: usize,
    /// Held for review.
    pub held: usize,
    /// Kept for a person, not graded yet.
    pub manual: usize,
}

pub fn stats(b: &BatchResult) -> Vec<QuestionStats> {
    b.questions
        .iter()
        .map(|(id, max)| {
            let qs: Vec<_> = b
                .submissions
                .iter()
                .filter_map(|s| s.questions.iter().find(|q| &q.id == id))
                .collect();
            let graded: Vec<f64> = qs.iter().filter(|q| !q.manual).map(|q| q.points).collect();
            let n = graded.len();
            let mean = if n == 0 {
                0.0
            } else {
                graded.iter().sum::<f64>() / n as f64
            };
            let spread = if n == 0 {
                0.0
            } else {
                (graded.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
            };
            QuestionStats {
                id: id.clone(),
                max: *max,
                n,
                mean,
                spread,
                right: qs
                    .iter()
                    .filter(|q| !q.manual && q.max_points > 0.0 && q.points >= q.max_points)
                    .count(),
                held: qs.iter().filter(|q| q.held_points > 0.0).count(),
                manual: qs.iter().filter(|q| q.manual).count(),
            }
        })
        .collect()
}

/// Total scores in `bins` equal bins of 0..=max: (low, high, count); the last bin
/// holds the maximum itself.
pub fn histogram(b: &BatchResult, bins: usize) -> Vec<(f64, f64, usize)> {
    let max = b
        .submissions
        .iter()
        .map(|s| s.max_score)
        .fold(b.questions.iter().map(|(_, p)| p).sum::<f64>(), f64::max)
        .max(1.0);
    let w = max / bins as f64;
    let mut v: Vec<(f64, f64, usize)> = (0..bins)
        .map(|i| (w * i as f64, w * (i + 1) as f64, 0))
        .collect();
    for s in &b.submissions {
        let i = ((s.score / w).floor() as usize).min(bins - 1);
        v[i].2 += 1;
    }
    v
}

/// The statistics and the histogram as terminal text.
pub fn stats_text(b: &BatchResult) -> String {
    let mut out =
        String::from("question          max   graded  mean  spread  right  held  by hand\n");
    for q in stats(b) {
        let _ = writeln!(
            out,
            "{:<16} {:>5} {:>8} {:>5} {:>7} {:>6} {:>5} {:>8}",
            q.id,
            num(q.max),
            q.n,
            num(q.mean),
            num(q.spread),
            q.right,
            q.held,
            q.manual
        );
    }
    out.push_str("scores:\n");
    let h = histogram(b, 10);
    let top = h.iter().map(|x| x.2).max().unwrap_or(0).max(1);
    for (lo, hi, c) in &h {
        let _ = writeln!(
            out,
            "  {:>5}-{:<5} {:<30} {c}",
            num(*lo),
            num(*hi),
            "#".repeat((c * 30).div_ceil(top))
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c if c.is_control() && c != '\n' => format!("&#{};", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// A self-contained HTML report (no scripts, no external files): per-question
/// statistics, the score histogram as inline SVG, and the gradebook with flags,
/// held-for-review marks and lateness.
pub fn html(b: &BatchResult) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>golab: {lab}</title><style>\
         body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #bbb;padding:.25em .6em;text-align:right}}td.t,th.t{{text-align:left}}\
         .flag{{color:#a40000}}.held{{color:#8a5a00}}svg text{{font-size:11px}}\
         </style></head><body>\n<h1>Lab {lab}: {n} submissions</h1>\n",
        lab = esc(&b.lab),
        n = b.submissions.len()
    );
    o.push_str("<h2>Questions</h2>\n<table id=\"questions\"><tr><th class=\"t\">question</th><th>max</th><th>graded</th><th>mean</th><th>spread</th><th>right</th><th>held</th><th>by hand</th></tr>\n");
    for q in stats(b) {
        let _ = writeln!(
            o,
            "<tr data-question=\"{id}\"><td class=\"t\">{id}</td><td>{}</td><td>{}</td><td class=\"mean\">{}</td><td>{}</td><td class=\"right\">{}</td><td>{}</td><td>{}</td></tr>",
            num(q.max),
            q.n,
            num(q.mean),
            num(q.spread),
            q.right,
            q.held,
            q.manual,
            id = esc(&q.id)
        );
    }
    o.push_str("</table>\n<h2>Scores</h2>\n");
    let h = histogram(b, 10);
    let top = h.iter().map(|x| x.2).max().unwrap_or(0).max(1);
    let (bw, ht) = (48, 160);
    let _ = write!(
        o,
        "<svg id=\"histogram\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"score histogram\">",
        bw * h.len() + 20,
        ht + 40
    );
    for (i, (lo, hi, c)) in h.iter().enumerate() {
        let bar = c * ht / top;
        let x = 10 + i * bw;
        let _ = write!(
            o,
            "<rect class=\"bin\" data-count=\"{c}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{bar}\" fill=\"#3465a4\"><title>{}-{}: {c}</title></rect>\
             <text x=\"{}\" y=\"{}\">{c}</text><text x=\"{x}\" y=\"{}\">{}</text>",
            x + 2,
            10 + ht - bar,
            bw - 4,
            num(*lo),
            num(*hi),
            x + bw / 2 - 3,
            ht + 8 - bar.min(ht),
            ht + 25,
            num(*lo)
        );
    }
    o.push_str("</svg>\n<h2>Gradebook</h2>\n<table id=\"gradebook\"><tr><th class=\"t\">student</th><th class=\"t\">outcome</th><th>score</th>");
    for (id, max) in &b.questions {
        let _ = write!(o, "<th>{}/{}</th>", esc(id), num(*max));
    }
    o.push_str("<th class=\"t\">late</th><th class=\"t\">review</th></tr>\n");
    for s in &b.submissions {
        let _ = write!(
            o,
            "<tr data-student=\"{st}\"><td class=\"t\">{st}</td><td class=\"t\">{}</td><td>{}/{}</td>",
            esc(s.outcome.name()),
            num(s.score),
            num(s.max_score),
            st = esc(&s.student)
        );
        for (id, _) in &b.questions {
            let cell = match s.questions.iter().find(|q| &q.id == id) {
                Some(q) if q.manual => "by hand".to_string(),
                Some(q) if q.held_points > 0.0 => format!(
                    "{} <span class=\"held\">+{}?</span>",
                    num(q.points),
                    num(q.held_points)
                ),
                Some(q) => num(q.points),
                None => "-".into(),
            };
            let _ = write!(o, "<td>{cell}</td>");
        }
        let late = s
            .late
            .as_ref()
            .filter(|l| l.days > 0)
            .map(|l| format!("{}, -{}%", days(l.days), num(l.penalty * 100.0)))
            .unwrap_or_default();
        let mut review: Vec<String> = s
            .flags
            .iter()
            .map(|f| format!("<span class=\"flag\">copy? {}</span>", esc(f)))
            .collect();
        review.extend(s.questions.iter().filter(|q| q.held_points > 0.0).map(|q| {
            format!(
                "<span class=\"held\">held: {} {}</span>",
                esc(&q.id),
                esc(q.held.as_deref().unwrap_or(""))
            )
        }));
        let _ = writeln!(
            o,
            "<td class=\"t\">{}</td><td class=\"t\">{}</td></tr>",
            esc(&late),
            review.join("<br>")
        );
    }
    o.push_str("</table>\n</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form_a_course_writes() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        let t = parse_time("2018-07-01T14:22:32.365935-07:00").unwrap();
        assert_eq!(fmt_time(t), "2018-07-01T21:22:32Z");
        assert_eq!(
            parse_time("2026-12-01").unwrap(),
            parse_time("2026-12-01T23:59:59Z").unwrap()
        );
        assert_eq!(
            parse_time("2026-12-01 10:00+0100").unwrap(),
            parse_time("2026-12-01T09:00Z").unwrap()
        );
        for bad in [
            "",
            "tomorrow",
            "2026-13-01",
            "2026-12-01T25:00Z",
            "2026-12-01T10:00+1",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(
            fmt_time(parse_time("2024-02-29T12:00:00Z").unwrap()),
            "2024-02-29T12:00:00Z"
        );
    }

    #[test]
    fn a_late_policy_from_lab_yaml_costs_per_started_day() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace/lab.yaml"),
        )
        .unwrap();
        let p = dir.path().join("lab.yaml");
        std::fs::write(
            &p,
            format!("{base}\nlate:\n  deadline: 2026-12-01T23:59:00Z\n  penalty_per_day: 25\n  max_days: 3\n  extensions: {{bob: 2026-12-05T00:00:00Z}}\n"),
        )
        .unwrap();
        let lab = crate::lab::load_file(&p).unwrap();
        let policy = lab.late.clone().unwrap();
        policy.check().unwrap();
        let result = |student: &str, at: &str| SubmissionResult {
            build: None,
            student: student.into(),
            outcome: crate::grade::model::Outcome::Graded,
            message: String::new(),
            questions: vec![],
            score: 8.0,
            max_score: 8.0,
            transcript: None,
            variant: None,
            seconds: 0.0,
            content: String::new(),
            submitted_at: Some(at.into()),
            submitted_from: None,
            late: None,
            binary_sha256: None,
            answers_sha256: None,
            program_sha256: None,
            sent_main_go_sha256: None,
            flags: vec![],
        };
        let score = |student: &str, at: &str| {
            let mut r = result(student, at);
            policy.apply(&mut r);
            (r.score, r.late.unwrap().days)
        };
        assert_eq!(score("ann", "2026-12-01T23:59:00Z"), (8.0, 0));
        assert_eq!(score("ann", "2026-12-02T00:00:01Z"), (6.0, 1));
        assert_eq!(score("ann", "2026-12-03T23:59:01Z"), (2.0, 3));
        assert_eq!(score("ann", "2026-12-05T00:00:00Z"), (0.0, 4));
        assert_eq!(
            score("bob", "2026-12-04T12:00:00Z"),
            (8.0, 0),
            "bob's extension"
        );
        std::fs::write(&p, format!("{base}\nlate:\n  deadline: soon\n")).unwrap();
        let lab = crate::lab::load_file(&p).unwrap();
        assert!(
            format!("{:#}", lab.late.unwrap().check().unwrap_err())
                .contains("'soon' is not a time")
        );
    }

    #[test]
    fn a_sent_program_that_is_not_the_assigned_one_is_flagged() {
        let r = |student: &str, variant: &str, program: &str, sent: Option<&str>, bin: &str| {
            let mut s = SubmissionResult {
                build: None,
                student: student.into(),
                outcome: crate::grade::model::Outcome::Graded,
                message: String::new(),
                questions: vec![],
                score: 0.0,
                max_score: 0.0,
                transcript: None,
                variant: Some(variant.into()),
                seconds: 0.0,
                content: String::new(),
                submitted_at: None,
                submitted_from: None,
                late: None,
                binary_sha256: Some(bin.into()),
                answers_sha256: None,
                program_sha256: Some(program.into()),
                sent_main_go_sha256: sent.map(str::to_string),
                flags: vec![],
            };
            s.flags.clear();
            s
        };
        let mut rs = vec![
            // ann and amy drew the same variant and sent it unchanged: no flag.
            r("ann", "v1", "P1", None, "B1"),
            r("amy", "v1", "P1", None, "B1"),
            // bob and cy sent ann's variant; dee a program nobody was assigned.
            r("bob", "v2", "P2", Some("P1"), "B2"),
            r("cy", "v3", "P3", Some("P1"), "B3"),
            r("dee", "v4", "P4", Some("X"), "B4"),
            // eve's binary is bob's although her variant is another.
            r("eve", "v5", "P5", None, "B2"),
        ];
        flag_programs(&mut rs);
        let f = |i: usize| rs[i].flags.join(" | ");
        assert_eq!(f(0), "");
        assert_eq!(f(1), "");
        assert!(
            f(2).starts_with("not-assigned-program: ")
                && f(2).contains("it is the variant of ann, amy")
                && f(2).contains("the same main.go (not the assigned program) as cy sent")
                && f(2).contains("the same binary as eve, whose variant is another"),
            "{}",
            f(2)
        );
        assert!(f(3).contains("as bob sent"), "{}", f(3));
        assert!(
            f(4).starts_with("not-assigned-program: ") && !f(4).contains("variant of"),
            "{}",
            f(4)
        );
        assert_eq!(f(5), "the same binary as bob, whose variant is another");
    }

    #[test]
    fn the_time_of_a_submission_comes_from_metadata_a_stamp_or_mtime() {
        let d = tempfile::tempdir().unwrap();
        let sub = |name: &str, source: Source| Submission {
            student: name.into(),
            source,
        };
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(
            d.path().join("a.submission_metadata.json"),
            r#"{"created_at": "2026-12-01T10:00:00.5+01:00", "users": []}"#,
        )
        .unwrap();
        let (t, from) = submitted_at(&sub("a", Source::Folder(d.path().join("a")))).unwrap();
        assert_eq!(
            (fmt_time(t).as_str(), from.contains("created_at")),
            ("2026-12-01T09:00:00Z", true)
        );
        // The student's own metadata file inside the folder sets nothing.
        std::fs::create_dir(d.path().join("m")).unwrap();
        std::fs::write(
            d.path().join("m/submission_metadata.json"),
            r#"{"created_at": "2020-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let (t, from) = submitted_at(&sub("m", Source::Folder(d.path().join("m")))).unwrap();
        assert!(
            t > parse_time("2025-01-01").unwrap()
                && from.starts_with("modification time of")
                && from.contains("student's file: not used"),
            "{t} {from}"
        );
        std::fs::write(d.path().join("b.zip"), "zip").unwrap();
        std::fs::write(d.path().join("b.submitted-at"), "2026-12-02T08:00:00Z\n").unwrap();
        let (t, _) = submitted_at(&sub("b", Source::Zip(d.path().join("b.zip")))).unwrap();
        assert_eq!(fmt_time(t), "2026-12-02T08:00:00Z");
        std::fs::write(d.path().join("c.tar.gz"), "tgz").unwrap();
        let f = std::fs::File::options()
            .write(true)
            .open(d.path().join("c.tar.gz"))
            .unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000))
            .unwrap();
        let (t, from) = submitted_at(&sub("c", Source::TarGz(d.path().join("c.tar.gz")))).unwrap();
        assert_eq!(
            (t, from.contains("modification time")),
            (1_800_000_000, true)
        );
    }

    #[test]
    fn csv_rows_read_quoted_fields() {
        let r = csv_rows("a,\"b,\"\"c\"\"\nd\",e\r\nf,,\n").unwrap();
        assert_eq!(r, vec![vec!["a", "b,\"c\"\nd", "e"], vec!["f", "", ""]]);
        assert!(csv_rows("\"open").is_err());
    }
}

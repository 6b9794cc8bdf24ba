//! `answers.yaml`: a student's answers to a lab's questions, read strictly.
//!
//! The file is untrusted input: it is size-limited before parsing, YAML alias bombs
//! are refused, unknown keys and wrong types are errors with the line and the key,
//! and every answer must fit its question's kind.

use crate::lab::{Question, QuestionKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Larger than any honest answers.yaml; parsing stops before reading more.
pub const MAX_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnswersFile {
    pub lab: String,
    /// The Go version the student used (what `go version` prints, or e.g. 1.17.1).
    #[serde(default)]
    pub go: Option<serde_norway::Value>,
    /// A dlv session log in the submission, to be checked against the variant's binary.
    #[serde(default)]
    pub transcript: Option<String>,
    /// Empty (`answers:` with nothing under it) is no answers at all.
    #[serde(default)]
    pub answers: Option<BTreeMap<String, serde_norway::Value>>,
}

/// One answer, typed by its question's kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Answer {
    EntryPoint { address: u64, symbol: String },
    Chain(Vec<String>),
    Callers(BTreeMap<String, Vec<String>>),
    RunOrder(Vec<u32>),
    Text(String),
}

#[derive(Debug, Clone)]
pub struct Answers {
    pub lab: String,
    pub go: Option<String>,
    pub transcript: Option<String>,
    pub by_question: BTreeMap<String, Answer>,
    /// Answers that cannot be read (wrong type), by question: that question gets no
    /// points, the others are graded.
    pub problems: BTreeMap<String, String>,
    /// Keys that are no question of the lab (typos): named, not graded.
    pub unknown: Vec<String>,
}

/// Why answers.yaml cannot be graded.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Too big, or an alias bomb: nothing in it is read.
    Bomb(String),
    /// Not valid (the message has the line and the key).
    Invalid(String),
}

pub fn parse(text: &[u8], lab: &str, questions: &[Question]) -> Result<Answers, Refusal> {
    if text.len() > MAX_BYTES {
        return Err(Refusal::Bomb(format!(
            "answers.yaml is {} bytes; the limit is {MAX_BYTES}",
            text.len()
        )));
    }
    // Notepad saves UTF-8 with a byte-order mark; YAML allows one at the start of the
    // stream, and the parser would read it as a second document.
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let text = std::str::from_utf8(text)
        .map_err(|e| Refusal::Invalid(format!("answers.yaml is not UTF-8 text ({e})")))?;
    nesting(text)?;
    let file: AnswersFile = serde_norway::from_str(text).map_err(|e| {
        let msg = e.to_string();
        // serde_norway stops an alias bomb (a few lines that expand to billions of nodes)
        // with "repetition limit exceeded" before it expands.
        if msg.contains("repetition limit") || msg.contains("recursion limit") {
            Refusal::Bomb(format!("answers.yaml: {msg}"))
        } else {
            Refusal::Invalid(match e.location() {
                Some(l) => format!(
                    "answers.yaml line {}, column {}: {}",
                    l.line(),
                    l.column(),
                    msg.split(" at line ").next().unwrap_or(&msg)
                ),
                None => format!("answers.yaml: {msg}"),
            })
        }
    })?;
    // A key given twice is a mistake to show, not a choice to make (serde would keep
    // the last one silently).
    if let Err(e) = serde_norway::from_str::<serde_norway::Value>(text) {
        let msg = e.to_string();
        if let Some(rest) = msg.split("duplicate entry with key ").nth(1) {
            let key = rest
                .split(['"', ','])
                .find(|k| !k.trim().is_empty())
                .unwrap_or("")
                .to_string();
            let line = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.trim_start().starts_with(&format!("{key}:")))
                .nth(1)
                .map(|(n, _)| n + 1)
                .or(e.location().map(|l| l.line()));
            return Err(Refusal::Invalid(match line {
                Some(n) => format!(
                    "answers.yaml line {n}: '{key}' is given twice (only one answer per key)"
                ),
                None => format!("answers.yaml: '{key}' is given twice (only one answer per key)"),
            }));
        }
    }
    if file.lab != lab {
        return Err(Refusal::Invalid(format!(
            "answers.yaml is for lab '{}', not '{lab}'",
            file.lab
        )));
    }
    let mut by_question = BTreeMap::new();
    let mut problems = BTreeMap::new();
    let mut unknown = Vec::new();
    for (id, v) in file.answers.iter().flatten() {
        let Some(q) = questions.iter().find(|q| &q.id == id) else {
            let known: Vec<&str> = questions.iter().map(|q| q.id.as_str()).collect();
            unknown.push(
                format!(
                    "answers.yaml: '{id}' is not a question of lab {lab} (its questions: {})",
                    known.join(", ")
                ) + &line_hint(text, id),
            );
            continue;
        };
        // An answer left empty (the skeleton's `entry-point:`) is no answer.
        if v.is_null() || v.as_str().is_some_and(|t| t.trim().is_empty()) {
            continue;
        }
        match typed(q, v) {
            Ok(a) => {
                by_question.insert(id.clone(), a);
            }
            Err(e) => {
                problems.insert(
                    id.clone(),
                    format!("answers.yaml: answer '{id}': {e}{}", line_hint(text, id)),
                );
            }
        }
    }
    let go = match file.go {
        None | Some(serde_norway::Value::Null) => None,
        Some(serde_norway::Value::String(s)) => Some(s),
        Some(serde_norway::Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(Refusal::Invalid(format!(
                "answers.yaml: go: expected text such as \"go version go1.17.1 linux/amd64\"{}",
                line_hint(text, "go")
            )));
        }
    };
    Ok(Answers {
        lab: file.lab,
        go,
        transcript: file.transcript,
        by_question,
        problems,
        unknown,
    })
}

/// The deepest nesting of flow collections (`[`, `{`) let through to the YAML parser:
/// this lab's answers nest 2 deep. The parser's scanner does work proportional to the
/// depth for every token (120k nested `[` in 240 KB: 139 s of CPU before its own
/// recursion limit said no).
pub const MAX_FLOW_DEPTH: usize = 64;

/// The most `[` and `{` in the file, wherever they are (in quotes, comments, block
/// text: no context is trusted, so no quoting trick hides one): this bounds the
/// parser's work whatever `nesting`'s reading of quotes got wrong. A pasted stack
/// trace or Go function has a few dozen.
pub const MAX_FLOW_OPENERS: usize = 1024;

/// The deepest block nesting (`- - - x`, or indentation) let through: what the parser's
/// recursion limit would refuse anyway, refused before it runs.
pub const MAX_BLOCK_DEPTH: usize = 64;

/// A linear scan, before any YAML parsing, that refuses nesting far past any honest
/// answers.yaml with the line where it goes too deep (a `yaml-bomb`).
fn nesting(text: &str) -> Result<(), Refusal> {
    let openers = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if openers > MAX_FLOW_OPENERS {
        return Err(Refusal::Bomb(format!(
            "answers.yaml has {openers} '[' and '{{'; the limit is {MAX_FLOW_OPENERS}"
        )));
    }
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let bomb = |what: &str, limit: usize| {
            Refusal::Bomb(format!(
                "answers.yaml line {}: {what} nested deeper than {limit} levels",
                n + 1
            ))
        };
        // Block nesting: the indentation plus each `- ` / `? ` that opens a level on
        // the same line (only outside flow collections, where they mean that).
        if depth == 0 {
            let b = line.as_bytes();
            let mut i = 0;
            let mut levels = 0;
            loop {
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                if i + 1 < b.len() && matches!(b[i], b'-' | b'?') && b[i + 1] == b' ' {
                    levels += 1;
                    i += 2;
                } else {
                    break;
                }
            }
            // Two spaces of indentation a level, as the skeleton writes it.
            if levels + i.saturating_sub(levels * 2) / 2 > MAX_BLOCK_DEPTH {
                return Err(bomb("block collections", MAX_BLOCK_DEPTH));
            }
        }
        // Flow nesting, skipping quoted text and comments (a `[` in an answer's
        // quoted prose is no collection).
        let mut quote: Option<u8> = None;
        let mut prev = b' ';
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(b'"') if c == b'\\' => i += 1,
                Some(q) if c == q => {
                    if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    } else {
                        quote = None;
                    }
                }
                Some(_) => {}
                None => match c {
                    b'#' if prev == b' ' || prev == b'\t' => break,
                    b'"' | b'\'' if matches!(prev, b' ' | b'\t' | b'[' | b'{' | b',' | b':') => {
                        quote = Some(c)
                    }
                    b'[' | b'{' => {
                        depth += 1;
                        if depth > MAX_FLOW_DEPTH {
                            return Err(bomb("flow collections ('[', '{')", MAX_FLOW_DEPTH));
                        }
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                },
            }
            prev = c;
            i += 1;
        }
    }
    Ok(())
}

/// ` (line N)` for the first line that starts the key `id`.
fn line_hint(text: &str, id: &str) -> String {
    text.lines()
        .position(|l| l.trim_start().starts_with(&format!("{id}:")))
        .map(|n| format!(" (line {})", n + 1))
        .unwrap_or_default()
}

fn typed(q: &Question, v: &serde_norway::Value) -> Result<Answer, String> {
    use serde_norway::Value as V;
    let strings = |v: &V| -> Result<Vec<String>, String> {
        v.as_sequence()
            .ok_or("expected a list")?
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "expected a list of names".to_string())
            })
            .collect()
    };
    Ok(match q.kind {
        QuestionKind::EntryPoint => {
            let m = v
                .as_mapping()
                .ok_or("expected `{address: 0x..., symbol: NAME}`")?;
            let address = match m.get("address") {
                Some(V::Number(n)) => n.as_u64().ok_or("address must be a non-negative number")?,
                Some(V::String(s)) => parse_addr(s).ok_or_else(|| {
                    format!("address '{s}' is not a number (write it as 0x45d820)")
                })?,
                _ => return Err("missing `address`".into()),
            };
            let symbol = m
                .get("symbol")
                .and_then(V::as_str)
                .ok_or("missing `symbol`")?
                .to_string();
            Answer::EntryPoint { address, symbol }
        }
        QuestionKind::Chain => Answer::Chain(strings(v)?),
        QuestionKind::Callers => {
            let m = v
                .as_mapping()
                .ok_or("expected `FUNCTION: [CALLER, ...]` lines")?;
            let mut out = BTreeMap::new();
            for (k, list) in m {
                let k = k.as_str().ok_or("a function name must be text")?;
                out.insert(
                    k.to_string(),
                    strings(list).map_err(|e| format!("{k}: {e}"))?,
                );
            }
            Answer::Callers(out)
        }
        QuestionKind::RunOrder => {
            let s = v
                .as_sequence()
                .ok_or("expected a list of goroutine indices")?;
            Answer::RunOrder(
                s.iter()
                    .map(|x| {
                        x.as_u64()
                            .map(|n| n as u32)
                            .ok_or_else(|| "expected whole numbers".to_string())
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        QuestionKind::FreeText => Answer::Text(v.as_str().ok_or("expected text")?.to_string()),
    })
}

fn parse_addr(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn questions() -> Vec<Question> {
        let lab = crate::lab::load_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace/lab.yaml"),
        )
        .unwrap();
        lab.questions
    }

    #[test]
    fn a_byte_order_mark_is_allowed() {
        let a = parse(
            b"\xef\xbb\xbflab: startup-trace\nanswers:\n  why-runnext: locality\n",
            "startup-trace",
            &questions(),
        )
        .unwrap();
        assert!(a.by_question.contains_key("why-runnext"));
    }

    #[test]
    fn reads_typed_answers() {
        let a = parse(b"lab: startup-trace\ngo: 1.19.8\nanswers:\n  entry-point: {address: 0x45d820, symbol: _rt0_amd64_linux}\n  startup-chain: [_rt0_amd64_linux, runtime.rt0_go]\n  why-runnext: locality\n", "startup-trace", &questions()).unwrap();
        assert_eq!(
            a.by_question["entry-point"],
            Answer::EntryPoint {
                address: 0x45d820,
                symbol: "_rt0_amd64_linux".into()
            }
        );
        assert_eq!(
            a.by_question["startup-chain"],
            Answer::Chain(vec!["_rt0_amd64_linux".into(), "runtime.rt0_go".into()])
        );
    }

    #[test]
    fn a_byte_order_mark_is_read_past() {
        let plain = b"lab: startup-trace\nanswers:\n  why-runnext: locality\n".to_vec();
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(&plain);
        let a = parse(&bom, "startup-trace", &questions()).unwrap();
        assert_eq!(
            a.by_question["why-runnext"],
            Answer::Text("locality".into())
        );
        // Two marks are one too many: the second is text, and not YAML.
        let mut two = b"\xEF\xBB\xBF".to_vec();
        two.extend_from_slice(&bom);
        assert!(parse(&two, "startup-trace", &questions()).is_err());
    }

    #[test]
    fn a_key_given_twice_is_invalid_with_its_line() {
        let e = parse(b"lab: startup-trace\nanswers:\n  why-runnext: locality\n  entry-point: {address: 0x45d820, symbol: x}\n  why-runnext: fairness\n", "startup-trace", &questions()).unwrap_err();
        assert_eq!(
            e,
            Refusal::Invalid(
                "answers.yaml line 5: 'why-runnext' is given twice (only one answer per key)"
                    .into()
            )
        );
    }

    #[test]
    fn a_wrong_key_or_type_costs_that_answer_and_names_the_line() {
        let a = parse(b"lab: startup-trace\nanswers:\n  entry-point: {address: 0x45d820, symbol: x}\n  entry-pont: 3\n", "startup-trace", &questions()).unwrap();
        assert!(
            a.unknown.len() == 1
                && a.unknown[0].contains("'entry-pont' is not a question")
                && a.unknown[0].contains("(line 4)"),
            "{:?}",
            a.unknown
        );
        assert!(a.by_question.contains_key("entry-point"));
        let a = parse(
            b"lab: startup-trace\ngo: 1.17\nanswers:\n  entry-point:\n  startup-chain: 7\n  why-runnext: ''\n  why-inherit: [a]\n",
            "startup-trace",
            &questions(),
        )
        .unwrap();
        assert!(a.by_question.is_empty(), "{:?}", a.by_question);
        assert_eq!(a.go.as_deref(), Some("1.17"));
        assert!(
            a.problems["startup-chain"].contains("expected a list")
                && a.problems["startup-chain"].contains("(line 5)"),
            "{:?}",
            a.problems
        );
        assert!(a.problems["why-inherit"].contains("expected text"));
        assert_eq!(
            a.problems.len(),
            2,
            "empty answers are no answers, not problems"
        );
        let e = parse(
            b"lab: startup-trace\nanswrs: {}\n",
            "startup-trace",
            &questions(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, Refusal::Invalid(m) if m.contains("line 2") && m.contains("answrs")),
            "{e:?}"
        );
        let e = parse(
            b"lab: startup-trace\nanswers:\n  entry-point: [1, 2\n",
            "startup-trace",
            &questions(),
        )
        .unwrap_err();
        assert!(matches!(&e, Refusal::Invalid(_)), "{e:?}");
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_expands() {
        // Nine lists of nine aliases to the level below: 9^9 strings once expanded.
        let mut bomb = String::from(
            "lab: startup-trace\nanswers:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (i, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            bomb.push_str(&format!("  {i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        }
        // The work the parse did, as this thread's CPU time: wall-clock time on CI's two
        // loaded cores passed 1 s though the parse itself takes a fraction of that. Once
        // expanded, the bomb is 387 million strings: minutes of CPU, and gigabytes.
        let wall = std::time::Instant::now();
        let cpu = crate::sys::proc::thread_cpu_time();
        let e = parse(bomb.as_bytes(), "startup-trace", &questions()).unwrap_err();
        let used = crate::sys::proc::thread_cpu_time() - cpu;
        eprintln!(
            "alias bomb refused after {used:?} of CPU, {:?} of wall-clock time",
            wall.elapsed()
        );
        assert!(matches!(e, Refusal::Bomb(_)), "{e:?}");
        assert!(
            used < std::time::Duration::from_secs(2),
            "the refusal took {used:?} of CPU"
        );
        let big = vec![b'#'; MAX_BYTES + 1];
        assert!(matches!(
            parse(&big, "startup-trace", &questions()),
            Err(Refusal::Bomb(_))
        ));
    }

    /// G10: 120k nested `[` in 240 KB cost the parser 139 s before its recursion limit;
    /// the pre-scan refuses them first, naming the line, and lets real answers through.
    #[test]
    fn deep_nesting_is_refused_before_the_parser_runs() {
        let q = questions();
        let deep = |open: &str, close: &str, n: usize| {
            format!(
                "lab: startup-trace\nanswers:\n  startup-chain: {}{}\n",
                open.repeat(n),
                close.repeat(n)
            )
        };
        // The attack's file: every '[' counts, the refusal says so.
        let e = parse(deep("[", "]", 120_000).as_bytes(), "startup-trace", &q).unwrap_err();
        assert!(
            matches!(&e, Refusal::Bomb(m) if m.contains("120000 '[' and '{'")),
            "{e:?}"
        );
        // Under the count, past the depth: the line is named.
        let e = parse(deep("[", "]", 65).as_bytes(), "startup-trace", &q).unwrap_err();
        assert_eq!(
            e,
            Refusal::Bomb(
                "answers.yaml line 3: flow collections ('[', '{') nested deeper than 64 levels"
                    .into()
            )
        );
        let e = parse(deep("{a: ", "}", 65).as_bytes(), "startup-trace", &q).unwrap_err();
        assert!(
            matches!(&e, Refusal::Bomb(m) if m.contains("line 3")),
            "{e:?}"
        );
        // Closers in quotes do not hide the depth.
        let e = parse(deep("[\"]]]\", ", "]", 65).as_bytes(), "startup-trace", &q).unwrap_err();
        assert!(
            matches!(&e, Refusal::Bomb(m) if m.contains("nested deeper")),
            "{e:?}"
        );
        // Block nesting on one line.
        let mut t = String::from("lab: startup-trace\nanswers:\n  why-runnext:\n");
        t.push_str(&"- ".repeat(100_000));
        t.push_str("x\n");
        let e = parse(t.as_bytes(), "startup-trace", &q).unwrap_err();
        assert_eq!(
            e,
            Refusal::Bomb(
                "answers.yaml line 4: block collections nested deeper than 64 levels".into()
            )
        );
        // 64 levels, brackets in quoted and commented prose, and a pasted stack trace
        // in a block scalar are answers, not bombs.
        let ok = deep("[", "]", 64);
        assert!(!matches!(
            parse(ok.as_bytes(), "startup-trace", &q),
            Err(Refusal::Bomb(_))
        ));
        let prose = format!(
            "lab: startup-trace\nanswers:  # [[[[\n  why-runnext: \"{}\"\n  why-not: |\n{}",
            "[".repeat(100),
            "    goroutine 1 [running]:\n    main.main()\n".repeat(200)
        );
        let a = parse(prose.as_bytes(), "startup-trace", &q).unwrap();
        assert!(a.by_question.contains_key("why-runnext"));
    }
}

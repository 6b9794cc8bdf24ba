//! A student's handout folder: what `golab assign` writes beside the program (the
//! README's commands, the skeleton answers.yaml, and `.golab-handout.yaml` with the lab,
//! the seed and the student id), so `golab check .` in that folder needs no flags.
//!
//! The seed is written into every handout: it is what lets `golab check` rebuild the
//! student's variant on their machine. Variants make copied answers visible; they are
//! not secrets (a student's program is their variant anyway).

use crate::lab::{Lab, Question, QuestionKind};
use crate::reference::{Profile, startup};
use crate::toolchain::GoVersion;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file's name in a handout folder.
pub const FILE: &str = ".golab-handout.yaml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handout {
    pub lab: String,
    pub seed: String,
    pub student: String,
}

impl Handout {
    pub fn text(&self) -> String {
        format!(
            "# Written by `golab assign`: `golab check .` reads it, so it needs no flags.\n{}",
            serde_norway::to_string(self).expect("serialisable")
        )
    }

    /// The handout file in `dir`, if there is one (an error if it is there but broken).
    pub fn read(dir: &Path) -> Result<Option<Handout>> {
        let p = dir.join(FILE);
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            return Ok(None);
        };
        if !meta.is_file() || meta.len() > 4096 {
            bail!(
                "{} is not the small file `golab assign` writes",
                p.display()
            );
        }
        let text = std::fs::read_to_string(&p)?;
        let h: Handout = serde_norway::from_str(&text).with_context(|| {
            format!(
                "{} is not a handout file (lab, seed, student): {}",
                p.display(),
                "ask for the handout again or pass --lab, --seed and --student"
            )
        })?;
        super::variant::check_student_id(&h.student).with_context(|| format!("{}", p.display()))?;
        Ok(Some(h))
    }
}

/// The Go version in what a student wrote for `go:`: `go version go1.17.1 linux/amd64`
/// (what `go version` prints), `go1.17.1` or `1.17.1`. None for an empty field.
pub fn go_of(s: &str) -> Option<GoVersion> {
    s.split_whitespace()
        .filter(|w| *w != "version" && *w != "go")
        .find_map(|w| {
            let w = w.trim_matches(|c: char| c == '"' || c == '\'');
            (w.starts_with("go1") || w.starts_with("1."))
                .then(|| GoVersion::parse(w).ok())
                .flatten()
        })
}

/// What a question's answer looks like, with a made-up example (never a right answer).
pub fn form(q: &Question, go: GoVersion) -> Vec<String> {
    match q.kind {
        QuestionKind::EntryPoint => vec![
            "form: {address: 0x..., symbol: NAME}, the address in hex as readelf prints it".into(),
            "e.g.  entry-point: {address: 0x401a2c, symbol: _rt0_example_linux}".into(),
        ],
        QuestionKind::Chain => {
            let (p, _) = Profile::for_version(go);
            let n = startup::chain(&p).len();
            vec![
                "form: a list of function names, first to last, e.g.".into(),
                "      startup-chain: [_rt0_example, runtime.example_init, runtime.example_start, main.main]".into(),
                "granularity: one entry per function entered on the way, in the order they are first entered:".into(),
                "      the assembly entry stubs, every runtime function called on the path (also the small".into(),
                "      helpers a milestone calls to do its work, e.g. what newproc calls to create and queue".into(),
                "      main's goroutine), ending with runtime.main and main.main; ABI wrappers (*.abi0) and".into(),
                format!(
                    "      systemstack switches are not steps. For {} the grader's chain has {n} functions.",
                    p.name()
                ),
            ]
        }
        QuestionKind::Callers => vec![
            "form: one line per function, its callers as a list, e.g.".into(),
            "      runtime.example: [runtime.caller_one, runtime.caller_two]".into(),
        ],
        QuestionKind::RunOrder => {
            vec!["form: the goroutine indices in the order they ran, e.g. [3, 0, 1, 2]".into()]
        }
        QuestionKind::FreeText => {
            vec!["form: text in quotes, or a block:  why: |  followed by indented lines".into()]
        }
    }
}

/// The skeleton answers.yaml of a handout: every question with its form, no answers.
pub fn skeleton(lab: &Lab, go: GoVersion) -> String {
    let mut s = format!(
        "lab: {}\n\
         # The Go you built with: paste what `go version` prints, e.g.\n\
         # go: \"go version go1.17.1 linux/amd64\"\n\
         go: \"\"\n\
         # transcript: dlv.txt   # optional: your dlv session, saved in this folder\n\
         answers:\n",
        lab.name
    );
    for q in &lab.questions {
        s.push_str(&format!(
            "  # {} ({})\n",
            q.title,
            if q.points > 0.0 {
                format!("{} points", super::render::num(q.points))
            } else {
                "graded by hand".into()
            }
        ));
        for l in form(q, go) {
            s.push_str(&format!("  # {l}\n"));
        }
        s.push_str(&format!("  {}:\n", q.id));
    }
    s
}

/// The handout's README: the steps, each command on a line of its own after `$ `.
pub fn readme(lab: &Lab, variant: &str, run: &str) -> String {
    format!(
        "Lab {name}: {title}\n\
         Your variant: {variant}\n\
         \n\
         Work in this folder. The commands, in order:\n\
         \n\
         1. Build your program without optimisation or inlining:\n\
         $ go build -gcflags \"all=-l -N\" -o main .\n\
         2. Run it once:\n\
         $ {run}\n\
         3. Find the entry point (and, as in the lab notes, walk the startup with gdb ./main\n\
         \x20  and dlv exec ./main):\n\
         $ readelf -h ./main\n\
         4. Fill in answers.yaml (each question shows its form), then see what the grader\n\
         \x20  will say (the lab, your seed and your id are in {file}):\n\
         $ golab check .\n\
         5. Hand in this folder.\n",
        name = lab.name,
        title = lab.title,
        file = FILE,
    )
}

/// A word as sh reads it: as is when it is plain, else in single quotes.
pub fn shell_word(w: &str) -> String {
    if !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./=:,+-@%".contains(&b))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The commands of a handout README, as written (the lines that start with `$ `).
pub fn readme_commands(readme: &str) -> Vec<String> {
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("$ ").map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_version_as_go_prints_it() {
        let v = GoVersion::new(1, 17, 1);
        assert_eq!(go_of("go version go1.17.1 linux/amd64"), Some(v));
        assert_eq!(go_of("go1.17.1"), Some(v));
        assert_eq!(go_of("1.17.1"), Some(v));
        assert_eq!(go_of(""), None);
        assert_eq!(go_of("I used the latest"), None);
    }

    #[test]
    fn a_handout_file_round_trips_and_a_bad_one_is_named() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Handout::read(d.path()).unwrap(), None);
        let h = Handout {
            lab: "startup-trace".into(),
            seed: "fall 2026: \"x\"".into(),
            student: "alice".into(),
        };
        std::fs::write(d.path().join(FILE), h.text()).unwrap();
        assert_eq!(Handout::read(d.path()).unwrap(), Some(h));
        std::fs::write(d.path().join(FILE), "lab: x\nseed: y\nstudent: ../bob\n").unwrap();
        let e = format!("{:#}", Handout::read(d.path()).unwrap_err());
        assert!(e.contains("not a usable student id"), "{e}");
        std::fs::write(d.path().join(FILE), "lab: [\n").unwrap();
        let e = format!("{:#}", Handout::read(d.path()).unwrap_err());
        assert!(e.contains("not a handout file"), "{e}");
    }
}

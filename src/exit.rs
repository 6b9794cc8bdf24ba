//! golab's exit codes, one enum for every command (shown by `golab --help`), and the one
//! convention for machine-readable output: `--json` prints a single JSON document to
//! stdout instead of the text, and every such document carries a `schema` field naming
//! its kind and version (`golab.run/1`).

use std::process::ExitCode;

/// What a golab command's exit status means, the same for every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done, and everything passed: every check, every doctor finding; the VM runs.
    Ok = 0,
    /// Done, and the answer is no: a check failed, doctor found a blocking problem.
    Failed = 1,
    /// Could not be done: a bad argument or input file, a missing tool, a program that
    /// does not compile, a debugger that hung. The message says why and how to fix it.
    Error = 2,
    /// The lab VM named is not running (no such VM, or stopped): `status`, `ssh`.
    NotRunning = 3,
    /// Stopped by Ctrl-C, SIGTERM or a closed terminal, after ending its tools.
    Interrupted = 130,
}

impl Exit {
    pub const ALL: [Exit; 5] = [
        Exit::Ok,
        Exit::Failed,
        Exit::Error,
        Exit::NotRunning,
        Exit::Interrupted,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "done, and everything passed (every check; doctor: ready; status: running)",
            Exit::Failed => "done, and a check failed (doctor: a blocking problem)",
            Exit::Error => {
                "could not be done: bad arguments or input, a missing tool, a compile error, a hung debugger"
            }
            Exit::NotRunning => "the lab VM is not running (no such VM, or stopped): status, ssh",
            Exit::Interrupted => {
                "interrupted (Ctrl-C, SIGTERM); the tools golab started were ended"
            }
        }
    }

    /// The table `golab --help` ends with.
    pub fn help() -> String {
        let mut s = String::from("Exit status (every command):\n");
        for e in Exit::ALL {
            s.push_str(&format!("  {:>3}  {}\n", e.code(), e.meaning()));
        }
        s.push_str(
            "  `golab ssh -- CMD` exits with CMD's own status once the VM runs.\n\n\
             Machine-readable output: `--json` prints one JSON document to stdout instead of\n\
             the text (labs, doctor, status, run, reference, explain); each has a `schema`\n\
             field (e.g. \"golab.run/1\"). `golab run --json-file FILE` writes the same\n\
             document to FILE and keeps the text report on stdout.",
        );
        s
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The kinds of JSON document golab prints, each with its schema version: bumped when a
/// field changes meaning or goes away (added fields do not bump it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doc {
    Labs,
    Doctor,
    Status,
    Run,
    Reference,
    Explain,
    Tour,
}

impl Doc {
    pub fn schema(self) -> String {
        let (kind, version) = match self {
            Doc::Labs => ("labs", 1),
            Doc::Doctor => ("doctor", 1),
            Doc::Status => ("status", 1),
            Doc::Run => ("run", 1),
            // 2: the profile is the one per-version table (its scheduler half was a
            // second Profile type): fairness_site, steal and global_get replace the
            // schedule_calls_runqget, steal_work and global_get_takes_p booleans in
            // `reference`; `explain`'s profile has every field and find_runnable for
            // find_runnable_name.
            Doc::Reference => ("reference", 2),
            Doc::Explain => ("explain", 2),
            Doc::Tour => ("tour", 1),
        };
        format!("golab.{kind}/{version}")
    }
}

/// Why a command could not be done (exit status 2), as the `--json` error document
/// `{"schema": ..., "error": {"kind": ..., "message": ...}}` names it: the grader learns
/// a submission's outcome from this, never from the wording on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The lab's program does not compile (the message is the compiler's output).
    CompileError,
    /// A deadline passed: the program, or the debugger session over it, was killed.
    Timeout,
    /// The observed program stopped or killed its debugger (only known in the grader's
    /// sandbox); the message says which debugger and how.
    ObserverKilled,
    /// The observed program, under its debugger, tried to reach a network (only known in
    /// the grader's sandbox); the message lists the calls, refused.
    NetworkDenied,
    /// The observed program printed more under its debugger than the sandbox allows
    /// (only known in the grader's sandbox); the rest was read and dropped.
    OutputLimit,
    /// Anything else (a bad lab file, a missing tool, a debugger that failed).
    Error,
}

/// A command's failure as its `--json` document: `{"schema", "error": {kind, message}}`.
pub fn error_document(doc: Doc, kind: ErrorKind, message: &str) -> String {
    document(
        doc,
        serde_json::json!({"error": {"kind": kind, "message": message}}),
    )
}

/// The error of a `--json` document, if it is one.
pub fn error_of(doc: &serde_json::Value) -> Option<(ErrorKind, String)> {
    let e = doc.get("error")?;
    let kind = serde_json::from_value(e.get("kind")?.clone()).ok()?;
    let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
    Some((kind, message.to_string()))
}

/// `body` (a JSON object) with its `schema` field, pretty-printed.
pub fn document(kind: Doc, body: impl serde::Serialize) -> String {
    let mut v = serde_json::to_value(body).expect("serialisable");
    match v.as_object_mut() {
        Some(o) => {
            o.insert("schema".into(), serde_json::Value::String(kind.schema()));
        }
        None => {
            v = serde_json::json!({"schema": kind.schema(), "value": v});
        }
    }
    serde_json::to_string_pretty(&v).expect("serialisable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_the_help_lists_each() {
        let h = Exit::help();
        let mut codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), Exit::ALL.len());
        for e in Exit::ALL {
            assert!(
                h.contains(&format!("{:>3}  {}", e.code(), e.meaning())),
                "{h}"
            );
        }
    }

    #[test]
    fn every_document_names_its_schema() {
        let d: serde_json::Value =
            serde_json::from_str(&document(Doc::Labs, serde_json::json!({"labs": []}))).unwrap();
        assert_eq!(d["schema"], "golab.labs/1");
        assert_eq!(d["labs"], serde_json::json!([]));
        let d: serde_json::Value = serde_json::from_str(&document(Doc::Run, [1, 2])).unwrap();
        assert_eq!(d["schema"], "golab.run/1");
        assert_eq!(d["value"], serde_json::json!([1, 2]));
    }

    #[test]
    fn an_error_document_names_its_kind_and_reads_back() {
        let text = error_document(Doc::Run, ErrorKind::CompileError, "main.go:3: undefined: x");
        let d: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(d["schema"], "golab.run/1");
        assert_eq!(d["error"]["kind"], "compile-error");
        assert_eq!(
            error_of(&d),
            Some((ErrorKind::CompileError, "main.go:3: undefined: x".into()))
        );
        let d: serde_json::Value =
            serde_json::from_str(&error_document(Doc::Run, ErrorKind::Timeout, "")).unwrap();
        assert_eq!(d["error"]["kind"], "timeout");
        let d: serde_json::Value = serde_json::from_str(&error_document(
            Doc::Run,
            ErrorKind::ObserverKilled,
            "dlv (pid 7) was stopped by a signal",
        ))
        .unwrap();
        assert_eq!(d["error"]["kind"], "observer-killed");
        assert_eq!(error_of(&d).unwrap().0, ErrorKind::ObserverKilled);
        assert_eq!(error_of(&serde_json::json!({"observation": {}})), None);
        assert_eq!(
            error_of(&serde_json::json!({"error": {"kind": "no-such"}})),
            None
        );
    }
}

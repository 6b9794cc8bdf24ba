//! `golab run`'s failures are typed: its `--json-file` (and `--json`) document names
//! the error's kind, which is what the grader reads (src/grade/batch.rs `outcome_of`).
//! Real go and dlv: a program that does not compile, and one that never ends.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The startup lab copied into `dir` with `main.go` replaced and the session limit set.
fn lab_with(dir: &Path, main_go: &str, timeout_secs: u64) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace");
    let lab = dir.join("startup-trace");
    std::fs::create_dir_all(&lab).unwrap();
    for f in ["go.mod", "lab.yaml"] {
        std::fs::copy(from.join(f), lab.join(f)).unwrap();
    }
    let yaml = std::fs::read_to_string(lab.join("lab.yaml")).unwrap();
    let yaml = yaml.replace(
        "timeout_secs: 120",
        &format!("timeout_secs: {timeout_secs}"),
    );
    assert!(yaml.contains(&format!("timeout_secs: {timeout_secs}")));
    std::fs::write(lab.join("lab.yaml"), yaml).unwrap();
    std::fs::write(lab.join("main.go"), main_go).unwrap();
    lab
}

/// Runs `golab run LAB -q --json-file F --json`; returns the exit code, the file's
/// document and stdout's.
fn run(lab: &Path) -> (Option<i32>, Value, Value, String) {
    let doc = lab.join("out.json");
    // A stale document must not stand in for this run's.
    std::fs::write(&doc, r#"{"observation": {}}"#).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_golab"))
        .arg("run")
        .arg(lab)
        .args(["-q", "--json", "--json-file"])
        .arg(&doc)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&doc).unwrap()).unwrap();
    let printed: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one document ({e}): {stdout}\n{stderr}"));
    (o.status.code(), file, printed, stderr)
}

#[test]
fn a_compile_error_is_named_with_the_compilers_output() {
    let d = tempfile::tempdir().unwrap();
    let lab = lab_with(
        d.path(),
        "package main\n\nfunc main() {\n\tundefinedName()\n}\n",
        60,
    );
    let (code, file, printed, stderr) = run(&lab);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(file, printed);
    assert_eq!(file["schema"], "golab.run/1");
    assert_eq!(file["error"]["kind"], "compile-error", "{file}");
    let m = file["error"]["message"].as_str().unwrap();
    assert!(m.contains("undefined: undefinedName"), "{m}");
    assert!(!m.contains("failed in"), "only the compiler's output: {m}");
    assert!(file.get("observation").is_none());
}

#[test]
fn a_program_that_never_ends_is_a_timeout() {
    let d = tempfile::tempdir().unwrap();
    let lab = lab_with(
        d.path(),
        "package  main\nfunc main() {\n\tgo func() {\n\t\tprintln(\"in grt do sth\")\n    }()\n\targs()\n}\nfunc args() {\n\tfor {\n\t}\n}\n",
        8,
    );
    let (code, file, _, stderr) = run(&lab);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(file["error"]["kind"], "timeout", "{file}\n{stderr}");
}

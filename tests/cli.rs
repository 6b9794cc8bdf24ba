//! The command line's conventions, the same for every command: the exit-code table in
//! `--help`, `--json` on stdout with a `schema` field, the same exit code from `status`
//! and `ssh` for a VM that is not there, the VM commands' real default provider, and
//! shell completions and man pages generated from the same definitions.

mod common;

use serde_json::Value;
use std::process::{Command, Output};

fn golab(args: &[&str]) -> (Output, String, String) {
    common::run(common::golab().args(args))
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{out}"))
}

#[test]
fn help_ends_with_the_exit_codes() {
    let (o, out, _) = golab(&["--help"]);
    assert!(o.status.success());
    for line in [
        "Exit status (every command):",
        "    0  done, and everything passed",
        "    1  done, and a check failed",
        "    2  could not be done",
        "    3  the lab VM is not running",
        "  130  interrupted",
        "--json-file FILE",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
}

#[test]
fn json_goes_to_stdout_with_a_schema_on_every_reporting_command() {
    let (o, out, err) = golab(&["labs", "--json"]);
    assert!(o.status.success(), "{err}");
    let v = json(&out);
    assert_eq!(v["schema"], "golab.labs/1");
    let names: Vec<&str> = v["labs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    // Every lab folder of the clone, by name, in order.
    let mut bundled: Vec<String> = std::fs::read_dir(common::labs())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("lab.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    bundled.sort();
    assert!(bundled.len() >= 3, "{bundled:?}");
    assert_eq!(names, bundled);

    let (o, out, _) = golab(&["doctor", "--json"]);
    let v = json(&out);
    assert_eq!(v["schema"], "golab.doctor/1");
    assert!(!v["findings"].as_array().unwrap().is_empty());
    // The exit status and the document agree.
    assert_eq!(o.status.code() == Some(0), v["ready"] == true, "{out}");

    let (o, out, err) = golab(&["reference", "startup-trace", "--go", "1.17.1", "--json"]);
    assert!(o.status.success(), "{err}");
    let v = json(&out);
    assert_eq!(v["schema"], "golab.reference/2");
    // One per-version table: the startup facts and the scheduler's side by side.
    assert_eq!(
        v["profile"]["find_runnable"], "runtime.findrunnable",
        "{out}"
    );
    assert_eq!(v["profile"]["fairness_site"], "Schedule", "{out}");
    assert_eq!(v["profile"]["steal"], "StealWork", "{out}");
    assert!(
        v["chain"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["function"] == "runtime.rt0_go"),
        "{out}"
    );

    // The other kind of reference, a lab's callers table, keeps the same convention
    // (it printed JSON without a schema before).
    let (o, out, err) = golab(&["reference", "scheduler-callers", "--go", "1.17.1", "--json"]);
    assert!(o.status.success(), "{err}");
    let v = json(&out);
    assert_eq!(v["schema"], "golab.reference/2", "{out}");
    assert!(
        v["callers"]
            .as_object()
            .is_some_and(|c| c.contains_key("runtime.schedule")),
        "{out}"
    );

    let (o, out, err) = golab(&["explain", "runq-order", "--n", "3", "--json"]);
    assert!(o.status.success(), "{err}");
    let v = json(&out);
    assert_eq!(v["schema"], "golab.explain/2");
    assert_eq!(v["order"].as_array().unwrap().len(), 3, "{out}");
    assert!(v["profile"]["abi_wrappers"].is_boolean(), "{out}");
}

#[test]
fn status_and_ssh_exit_3_for_the_same_missing_vm_under_both_providers() {
    let state = tempfile::tempdir().unwrap();
    for provider in ["qemu", "vagrant"] {
        let run = |args: &[&str]| {
            let o = Command::new(env!("CARGO_BIN_EXE_golab"))
                .args(args)
                .args(["--provider", provider, "--name", "nothere"])
                .env("GOLAB_STATE", state.path())
                .output()
                .unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        let (code, out, err) = run(&["status"]);
        assert_eq!(code, Some(3), "{provider} status: {out}{err}");
        assert!(out.contains("nothere: no such machine"), "{out}");
        let (code, out, err) = run(&["status", "--json"]);
        assert_eq!(code, Some(3), "{provider}: {out}{err}");
        let v = json(&out);
        assert_eq!(v["schema"], "golab.status/1");
        assert_eq!(v["provider"], provider);
        assert_eq!(
            (v["exists"].clone(), v["running"].clone()),
            (false.into(), false.into())
        );
        let (code, out, err) = run(&["ssh", "--", "true"]);
        assert_eq!(code, Some(3), "{provider} ssh: {out}{err}");
        assert!(err.contains("is not running (no such machine)"), "{err}");
        // `--go` names a Go of this machine's toolchains folder (here one the test made:
        // the files are only looked at): refused for a lab VM by that reason, before the
        // missing machine is looked for.
        let tc = state.path().join("toolchains");
        for f in ["go1.17/bin/go", "dlv-1.9.1/dlv"] {
            std::fs::create_dir_all(tc.join(f).parent().unwrap()).unwrap();
            std::fs::write(tc.join(f), "").unwrap();
        }
        let o = Command::new(env!("CARGO_BIN_EXE_golab"))
            .args(["run", "startup-trace", "--go", "pinned"])
            .args(["--provider", provider, "--name", "nothere"])
            .env("GOLAB_STATE", state.path())
            .env("GOLAB_TOOLCHAINS", &tc)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{provider}: {err}");
        assert!(
            err.contains("--go pinned picks a Go from this machine's toolchains folder")
                && err.contains("leave --go out"),
            "{provider}: {err}"
        );
    }
    // The default provider is the one they use: qemu.
    let o = Command::new(env!("CARGO_BIN_EXE_golab"))
        .args(["status", "--name", "nothere", "--json"])
        .env("GOLAB_STATE", state.path())
        .output()
        .unwrap();
    assert_eq!(
        json(&String::from_utf8_lossy(&o.stdout))["provider"],
        "qemu"
    );
}

#[test]
fn vm_commands_show_their_real_default_and_render_lists_its_providers() {
    for cmd in ["status", "ssh", "down", "destroy"] {
        let (o, out, _) = golab(&[cmd, "-h"]);
        assert!(o.status.success());
        assert!(
            out.contains("[default: qemu]") && out.contains("[possible values: qemu, vagrant]"),
            "{cmd}:\n{out}"
        );
        assert!(!out.contains("[default: host]"), "{cmd}:\n{out}");
    }
    let (_, out, _) = golab(&["render", "-h"]);
    assert!(
        out.contains("[possible values: virtualbox, libvirt, qemu]"),
        "{out}"
    );
    let (o, _, err) = golab(&["render", "--provider", "parallels"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("possible values: virtualbox, libvirt, qemu"),
        "{err}"
    );
}

#[test]
fn completions_for_each_shell_and_bash_parses_its_own() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (o, out, err) = golab(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {err}");
        for word in ["golab", "gradescope", "json-file", "completions"] {
            assert!(out.contains(word), "{shell}: no {word}");
        }
    }
    let (_, bash, _) = golab(&["completions", "bash"]);
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("golab.bash");
    std::fs::write(&f, &bash).unwrap();
    // Sourced by a real bash: the completion function is defined and offers subcommands.
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". {}; COMP_WORDS=(golab re); COMP_CWORD=1; COMP_LINE='golab re'; COMP_POINT=8; _golab golab re golab; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            f.display()
        ))
        .output()
        .unwrap();
    let offered = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let offered: Vec<&str> = offered.lines().collect();
    assert_eq!(offered, ["reference", "render"], "{offered:?}");
}

#[test]
fn man_pages_for_golab_and_each_command() {
    let (o, out, _) = golab(&["man"]);
    assert!(o.status.success());
    assert!(
        out.starts_with(".ie \\n(.g .ds Aq \\(aq") || out.contains(".TH golab"),
        "{out}"
    );
    assert!(out.contains(".TH golab 1"), "{out}");
    let d = tempfile::tempdir().unwrap();
    let (o, _, err) = golab(&["man", "-o", d.path().to_str().unwrap()]);
    assert!(o.status.success(), "{err}");
    for page in [
        "golab.1",
        "golab-run.1",
        "golab-status.1",
        "golab-gradescope-package.1",
    ] {
        let text =
            std::fs::read_to_string(d.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
    // man(1) itself reads the page (man-db, installed by scripts/install-deps.sh).
    let o = Command::new("man")
        .arg("-l")
        .arg(d.path().join("golab-run.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("json-file"), "{text}");
}

//! objdump's output of a student's binary is read line by line, never held whole, and at
//! most `objdump::MAX_OUTPUT` of it (attack round 4, G7: 200 M nops in a cgo preamble's
//! asm made `objdump -d` print ~3 GB, buffered by the root observer until it was
//! OOM-killed). Real objdump on real builds with the system Go; its absence is a failure
//! with the fix, never a skip.

use golab::machine::Machine;
use golab::probe::objdump;
use std::path::{Path, PathBuf};
use std::process::Command;

fn objdump() -> PathBuf {
    let o = Command::new("objdump")
        .arg("--version")
        .output()
        .expect("objdump is installed (binutils: scripts/install-deps.sh)");
    assert!(o.status.success());
    PathBuf::from("objdump")
}

fn go_build(dir: &Path) -> PathBuf {
    let o = Command::new("go")
        .args(["build", "-gcflags", "all=-l -N", "-o", "main", "."])
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "1")
        .current_dir(dir)
        .output()
        .expect("go is installed (scripts/install-deps.sh)");
    assert!(
        o.status.success(),
        "go build (cgo needs gcc): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    dir.join("main")
}

fn targets() -> Vec<String> {
    [
        "runtime.schedule",
        "runtime.findrunnable",
        "runtime.runqget",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The lab's own program is read whole within the limit, and its call sites found
/// (the system Go is 1.19: `findRunnable`).
#[test]
fn the_lab_program_is_disassembled_within_the_limit() {
    let d = tempfile::tempdir().unwrap();
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/scheduler-callers");
    for f in ["main.go", "go.mod"] {
        std::fs::copy(lab.join(f), d.path().join(f)).unwrap();
    }
    let bin = go_build(d.path());
    let (sites, symbols) =
        objdump::call_sites(&Machine::Host, &objdump(), &bin, &targets()).unwrap();
    assert!(symbols.contains("main.main"), "{} symbols", symbols.len());
    assert!(
        sites
            .get("runtime.runqget")
            .is_some_and(|c| c.contains("runtime.findRunnable")),
        "{sites:?}"
    );
    // The same binary under a limit smaller than its disassembly: refused, named.
    let e = objdump::call_sites_within(&Machine::Host, &objdump(), &bin, &targets(), 1 << 20)
        .unwrap_err();
    let t = e
        .downcast_ref::<objdump::TooLarge>()
        .unwrap_or_else(|| panic!("not a TooLarge: {e:#}"));
    assert!(t.0.contains("more than 1 MiB"), "{t}");
}

/// A binary whose .text is a sled of nops (a few MB of binary, hundreds of MB of
/// disassembly) stops at the limit: `TooLarge`, not a buffer of all of it.
#[test]
fn a_nop_sled_stops_at_the_output_limit() {
    let d = tempfile::tempdir().unwrap();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/objdump-sled");
    let tmpl = std::fs::read_to_string(fx.join("main.go.tmpl")).unwrap();
    // 8 M nops: ~120 MB of objdump output, past MAX_OUTPUT (64 MiB).
    std::fs::write(d.path().join("main.go"), tmpl.replace("@NOPS@", "8000000")).unwrap();
    std::fs::copy(fx.join("go.mod"), d.path().join("go.mod")).unwrap();
    let bin = go_build(d.path());
    let e = objdump::call_sites(&Machine::Host, &objdump(), &bin, &targets()).unwrap_err();
    let t = e
        .downcast_ref::<objdump::TooLarge>()
        .unwrap_or_else(|| panic!("not a TooLarge: {e:#}"));
    assert!(
        t.0.contains(&format!("more than {} MiB", objdump::MAX_OUTPUT >> 20)),
        "{t}"
    );
}

/// `exec::run_lines` on a command that never stops printing (`yes`): it reads the limit,
/// hands over whole lines only, closes the pipe and returns `cut` (the command died
/// writing), long before the timeout.
#[test]
fn run_lines_closes_the_pipe_at_the_limit() {
    let mut n = 0u64;
    let mut bad = 0u64;
    let out = golab::exec::run_lines(
        Command::new("yes"),
        "yes",
        std::time::Duration::from_secs(120),
        1 << 20,
        |l: &str| {
            n += 1;
            if l != "y" {
                bad += 1;
            }
        },
    )
    .unwrap();
    assert!(out.cut);
    assert!(
        !out.status.success(),
        "yes ended by SIGPIPE: {:?}",
        out.status
    );
    assert_eq!(bad, 0);
    // "y\n" is 2 bytes: every whole line of the first MiB.
    assert_eq!(n, (1 << 20) / 2);
    // Under the limit: every line, not cut.
    let mut lines = Vec::new();
    let mut c = Command::new("printf");
    c.arg("a\nb\nc");
    let out = golab::exec::run_lines(
        c,
        "printf",
        std::time::Duration::from_secs(60),
        1 << 20,
        |l: &str| lines.push(l.to_string()),
    )
    .unwrap();
    assert!(!out.cut && out.status.success());
    assert_eq!(lines, ["a", "b", "c"]);
}

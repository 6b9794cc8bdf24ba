//! The static callers, decoded in-process (`probe::calls`), against real builds with the
//! system Go, and with real `objdump -d` as the independent witness: on the lab program,
//! every direct call and tail jump between functions that objdump prints is found, and
//! nothing else. A binary with more machine code than the limit (attack round 4, G7:
//! 200 M nops in a cgo preamble's asm made `objdump -d` print ~3 GB) is refused by its
//! size, before any decoding. A missing go or objdump is a failure with the fix, never a
//! skip.

use golab::probe::calls;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

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

fn lab_program() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/scheduler-callers");
    for f in ["main.go", "go.mod"] {
        std::fs::copy(lab.join(f), d.path().join(f)).unwrap();
    }
    let bin = go_build(d.path());
    (d, bin)
}

/// The lab program with `nops` one-byte nops in its text (tests/fixtures/nop-sled), built.
fn nop_sled(nops: u64) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nop-sled");
    let tmpl = std::fs::read_to_string(fx.join("main.go.tmpl")).unwrap();
    std::fs::write(
        d.path().join("main.go"),
        tmpl.replace("@NOPS@", &nops.to_string()),
    )
    .unwrap();
    std::fs::copy(fx.join("go.mod"), d.path().join("go.mod")).unwrap();
    let bin = go_build(d.path());
    (d, bin)
}

/// objdump's view: every function label, and for each, who calls or tail-jumps to its
/// start (the parser golab had before it decoded the code itself).
fn objdump_call_sites(bin: &Path) -> (BTreeSet<String>, calls::CallSites) {
    let o = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn", "-M", "att"])
        .arg(bin)
        .output()
        .expect("objdump is installed (binutils: scripts/install-deps.sh)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let (mut labels, mut sites) = (BTreeSet::new(), BTreeMap::new());
    let mut current: Option<String> = None;
    for line in text.lines() {
        // "000000000043d3e0 <runtime.newproc>:"
        if let Some((_, name)) = line.strip_suffix(">:").and_then(|r| r.split_once(" <")) {
            labels.insert(name.to_string());
            current = Some(name.to_string());
            continue;
        }
        // "  43d3f5:\tcall   43d4e0 <runtime.newproc1>"
        let Some((_, insn)) = line.split_once(":\t") else {
            continue;
        };
        let op = insn.split_whitespace().next().unwrap_or("");
        if !matches!(op, "call" | "callq" | "jmp" | "jmpq") {
            continue;
        }
        let Some(t) = insn
            .rsplit_once(" <")
            .and_then(|(_, t)| t.strip_suffix('>'))
        else {
            continue;
        };
        if let Some(c) = &current
            && !t.contains('+')
            && t != c
        {
            sites
                .entry(t.to_string())
                .or_insert_with(BTreeSet::new)
                .insert(c.clone());
        }
    }
    (labels, sites)
}

/// Every function of the lab program as a target: the decoder's call graph is objdump's.
#[test]
fn the_call_graph_is_objdumps_on_the_lab_program() {
    let (_d, bin) = lab_program();
    let (labels, want) = objdump_call_sites(&bin);
    assert!(labels.len() > 1000, "{} functions", labels.len());
    let targets: Vec<String> = labels.iter().cloned().collect();
    let got = calls::call_sites(&bin, &targets).unwrap();
    let edges = |s: &calls::CallSites| -> BTreeSet<(String, String)> {
        s.iter()
            .flat_map(|(t, cs)| cs.iter().map(move |c| (c.clone(), t.clone())))
            .collect()
    };
    let (g, w) = (edges(&got), edges(&want));
    assert!(w.len() > 5000, "objdump saw {} call edges", w.len());
    let missing: Vec<_> = w.difference(&g).take(20).collect();
    let extra: Vec<_> = g.difference(&w).take(20).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} edges: missing (objdump has them) {missing:?}; extra {extra:?}",
        w.len()
    );
    // The scheduler's own edges the lab asks about (the system Go is 1.19: findRunnable).
    assert!(
        got["runtime.runqget"].contains("runtime.findRunnable"),
        "{got:?}"
    );
    assert!(got["runtime.findRunnable"].contains("runtime.schedule"));
}

/// The limit is on the machine code's size: the lab program under a limit smaller than
/// its code is refused, named, and so is a nop sled past the default limit.
#[test]
fn machine_code_past_the_limit_is_refused_by_size() {
    let (_d, bin) = lab_program();
    let targets = vec!["runtime.schedule".to_string()];
    let e = calls::call_sites_within(&bin, &targets, 256 << 10).unwrap_err();
    let t = e
        .downcast_ref::<calls::TooLarge>()
        .unwrap_or_else(|| panic!("not a TooLarge: {e:#}"));
    assert!(t.0.contains("more than 0.2 MiB"), "{t}");

    // 72 M nops: 72 MiB of code, past MAX_CODE (64 MiB).
    let (_s, sled) = nop_sled(72_000_000);
    let e = calls::call_sites(&sled, &targets).unwrap_err();
    let t = e
        .downcast_ref::<calls::TooLarge>()
        .unwrap_or_else(|| panic!("not a TooLarge: {e:#}"));
    assert!(
        t.0.contains(&format!("more than {}.0 MiB", calls::MAX_CODE >> 20)),
        "{t}"
    );
}

/// A sled under the limit is decoded whole (8 M nops, which objdump printed as ~120 MB
/// of text), and the program's own call sites are still found in it.
#[test]
fn a_nop_sled_under_the_limit_is_decoded() {
    let (_d, bin) = nop_sled(8_000_000);
    let targets = vec!["runtime.runqget".to_string(), "main.worker".to_string()];
    let got = calls::call_sites(&bin, &targets).unwrap();
    assert!(
        got["runtime.runqget"].contains("runtime.findRunnable"),
        "{got:?}"
    );
    // `go worker(...)` calls it from the closure the compiler wraps it in.
    assert!(
        got["main.worker"]
            .iter()
            .any(|c| c.starts_with("main.main.")),
        "{got:?}"
    );
}

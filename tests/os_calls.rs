//! Every OS call golab makes lives in src/sys/ (with its `#[cfg]` halves for Linux and
//! macOS), or in the Linux-only grading sandbox (src/grade/sandbox*): this test reads
//! every other source file and fails on a call that would not build, or would silently
//! do nothing, on a Mac.

use std::path::{Path, PathBuf};

/// What counts as an OS call, and why it belongs in src/sys/.
const FORBIDDEN: &[(&str, &str)] = &[
    ("libc::", "a raw libc call"),
    // nix's modules by name (a bare `nix::` would match `std::os::unix::`).
    ("nix::sys", "a nix call (an OS call too)"),
    ("nix::unistd", "a nix call (an OS call too)"),
    ("nix::errno", "a nix call (an OS call too)"),
    ("use nix::", "a nix call (an OS call too)"),
    ("procfs::", "a /proc read (Linux only)"),
    (
        "pre_exec",
        "CommandExt::pre_exec (runs code between fork and exec)",
    ),
    ("std::os::linux", "a Linux-only std API"),
    ("\"/proc", "a /proc path (Linux only)"),
    ("/proc/{", "a /proc path (Linux only)"),
    ("\"/sys/", "a /sys path (Linux only)"),
    ("open(\"/dev/", "a device opened outside src/sys/"),
    ("sched_getaffinity(", "a Linux-only call"),
    ("target_os", "an OS #[cfg] outside src/sys/"),
];

/// Files allowed an OS `#[cfg]` that only gates the Linux-only sandbox, not an OS call.
const SANDBOX_GATES: &[&str] = &["src/grade/mod.rs", "src/grade/setup.rs"];

fn allowed(rel: &str) -> bool {
    // reduced.rs: the sandbox's fallback where bubblewrap cannot start (a uid, rlimits,
    // a cgroup), grading code as Linux-bound as the sandbox itself.
    rel.starts_with("src/sys/")
        || rel.starts_with("src/grade/sandbox")
        || rel == "src/grade/reduced.rs"
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The forbidden uses in `text` (comments are not code), as "line: what (text)".
fn offences(rel: &str, text: &str) -> Vec<String> {
    let mut v = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for (needle, what) in FORBIDDEN {
            if *needle == "target_os" && SANDBOX_GATES.contains(&rel) {
                continue;
            }
            if code.contains(needle) {
                v.push(format!("{rel}:{}: {what}: {}", i + 1, code.trim()));
            }
        }
    }
    v
}

#[test]
fn os_calls_are_only_in_src_sys_and_the_linux_sandbox() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    assert!(files.len() > 30, "{files:?}");
    let mut bad = Vec::new();
    let mut in_sys = 0;
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&f).unwrap();
        if allowed(&rel) {
            in_sys += offences(&rel, &text).len();
            continue;
        }
        bad.extend(offences(&rel, &text));
    }
    assert!(
        bad.is_empty(),
        "OS calls outside src/sys/ (move them there, with #[cfg] halves):\n{}",
        bad.join("\n")
    );
    // The scanner sees the calls where they are.
    assert!(in_sys > 10, "{in_sys}");
}

#[test]
fn the_scanner_catches_each_kind_and_skips_comments() {
    let code = "fn f() {\n    unsafe { libc::kill(1, 0) };\n    // libc:: in a comment\n    let s = std::fs::read(\"/proc/self/stat\");\n    #[cfg(target_os = \"linux\")]\n    c.pre_exec(|| Ok(()));\n}\n";
    let o = offences("src/x.rs", code);
    assert_eq!(o.len(), 4, "{o:#?}");
    assert!(o[0].starts_with("src/x.rs:2: a raw libc call"));
    assert!(offences("src/grade/mod.rs", "#[cfg(target_os = \"linux\")]\n").is_empty());
}

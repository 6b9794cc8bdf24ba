//! A student follows the handout README literally: every `$ ` command of the README
//! `golab assign` wrote, run as written with sh in the handout folder, with the real go,
//! readelf, gdb and dlv (golab check runs the lab).

use std::path::Path;
use std::process::Command;

fn sh(dir: &Path, cmd: &str) -> (bool, String) {
    let bin = Path::new(env!("CARGO_BIN_EXE_golab")).parent().unwrap();
    let o = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env(
            "GOLAB_LABS",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("labs"),
        )
        .env_remove("GOLAB_SEED")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// The chain as go1.19 has it, with args and osinit swapped.
const SWAPPED: &str = "[_rt0_amd64_linux, _rt0_amd64, runtime.rt0_go, runtime.check, runtime.osinit, runtime.args, runtime.schedinit, runtime.newproc, runtime.newproc1, runtime.runqput, runtime.mstart, runtime.mstart0, runtime.mstart1, runtime.schedule, runtime.findRunnable, runtime.runqget, runtime.execute, runtime.gogo, runtime.main, main.main]";

#[test]
fn the_handout_readme_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roster.csv"), "student\nalice\n").unwrap();
    let (ok, out) = sh(
        dir.path(),
        "golab assign --lab startup-trace --roster roster.csv --seed fall-2026 -o handouts",
    );
    assert!(ok, "{out}");
    let h = dir.path().join("handouts/alice");
    let readme = std::fs::read_to_string(h.join("README.txt")).unwrap();
    let commands: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("$ "))
        .collect();
    assert!(
        commands.len() >= 4 && commands.last() == Some(&"golab check ."),
        "{readme}"
    );
    // The skeleton shows each answer's form with a made-up example, and parses.
    let skeleton = std::fs::read_to_string(h.join("answers.yaml")).unwrap();
    assert!(
        skeleton.contains("e.g.  entry-point: {address: 0x")
            && skeleton.contains("startup-chain: [_rt0_example")
            && skeleton.contains("granularity:")
            && skeleton.contains("go version go1.17.1 linux/amd64"),
        "{skeleton}"
    );
    let _: serde_norway::Value = serde_norway::from_str(&skeleton).unwrap();

    let mut entry = None;
    for c in &commands {
        if *c == "golab check ." {
            // The student's part: answers.yaml filled in from what the commands showed.
            let (_, v) = sh(&h, "go version");
            let filled = skeleton
                .replace("go: \"\"", &format!("go: \"{}\"", v.trim()))
                .replace(
                    "  entry-point:\n",
                    &format!(
                        "  entry-point: {{address: {}, symbol: _rt0_amd64_linux}}\n",
                        entry.clone().expect("readelf ran before golab check")
                    ),
                )
                .replace(
                    "  startup-chain:\n",
                    &format!("  startup-chain: {SWAPPED}\n"),
                )
                .replace("  why-runnext:\n", "  why-runnext: \"locality\"\n")
                .replace("  why-inherit:\n", "  why-inherit: \"fairness\"\n");
            std::fs::write(h.join("answers.yaml"), filled).unwrap();
        }
        let (ok, out) = sh(&h, c);
        if *c == "golab check ." {
            // Right but for one swap: the feedback says where the step goes and how the
            // partial credit was computed.
            assert!(
                !out.contains("--student") && !out.contains("differs"),
                "{out}"
            );
            assert!(out.contains("alice: graded"), "{out}");
            assert!(out.contains("entry-point [2/2]"), "{out}");
            assert!(
                out.contains("args belongs after check, before osinit (you have it after osinit)"),
                "{out}"
            );
            assert!(
                out.contains("credit: 19 of your 20 steps are in the reference's order (go1.19 has 20 steps); 19 / max(20, 20) = 0.95 of 4 points = 3.8"),
                "{out}"
            );
            assert!(out.contains("startup-chain [3.8/4]"), "{out}");
            assert!(ok, "{out}");
        } else {
            assert!(ok, "`{c}` failed:\n{out}");
        }
        if c.starts_with("readelf -h") {
            entry = out.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("Entry point address:")
                    .map(|a| a.trim().to_string())
            });
        }
    }
}

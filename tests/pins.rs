//! The pins (the course's Go and dlv versions and the Go tarball's SHA-256) are written
//! in one place, toolchains.txt: the code, the provisioner and the scripts read it.
//! This test fails on a copy anywhere else.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The part of a Rust file before its first test module (tests may name versions).
fn non_test(p: &Path, text: &str) -> String {
    if p.extension().is_some_and(|e| e == "rs") {
        // A file of tests only (`#[cfg(test)] mod tests;` beside it) says so itself.
        if text.contains("\n#![cfg(test)]") || text.starts_with("#![cfg(test)]") {
            return String::new();
        }
        text.split("#[cfg(test)]").next().unwrap_or("").to_string()
    } else {
        text.to_string()
    }
}

#[test]
fn the_pins_are_written_only_in_toolchains_txt() {
    let table = std::fs::read_to_string(repo().join("toolchains.txt")).unwrap();
    let pin: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("pin "))
        .expect("a pin row")
        .split_whitespace()
        .collect();
    let go: Vec<&str> = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"go") && f.get(1) == Some(&pin[1]))
        .expect("the pin's go row");
    let (go_version, sha, dlv) = (go[2], go[6], pin[2]);
    // What a copy would look like in code or a script.
    let copies = [
        sha.to_string(),
        format!("\"{go_version}\""),
        format!("\"go{go_version}\""),
        format!("\"v{dlv}\""),
        format!("\"{dlv}\""),
        format!(":-{go_version}"),
        format!(":-{dlv}"),
        format!("={go_version}\n"),
        format!("={dlv}\n"),
        format!("!= {dlv} "),
        // A script's paths and artifact names (scripts/pins.sh reads them instead).
        format!("/dlv-{dlv}/dlv\""),
        format!("/delve-{dlv}"),
        format!("delve-{dlv}.tar"),
        format!("/go{go_version}.linux-amd64"),
        format!(" dlv-{dlv}\""),
    ];
    let mut all = vec![];
    for d in ["src", "scripts", "provision"] {
        files(&repo().join(d), &mut all);
    }
    all.push(repo().join("Vagrantfile.tmpl"));
    let mut found = vec![];
    for p in &all {
        let rel = p.strip_prefix(repo()).unwrap().display().to_string();
        let code = ["rs", "sh", "tmpl", "j2"];
        if !p.extension().is_some_and(|e| code.iter().any(|c| e == *c)) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(p) else {
            continue;
        };
        let text = non_test(p, &text);
        for c in &copies {
            if let Some(at) = text.find(c.as_str()) {
                let line = text[..at].lines().count().max(1);
                found.push(format!("{rel}:{line}: {}", c.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "pins copied outside toolchains.txt (read them from it: src/pins.rs, or awk in a script):\n{}",
        found.join("\n")
    );
}

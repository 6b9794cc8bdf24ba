//! `golab lint LAB`: what a lab file asks for that this Go cannot give, said with the
//! file and line, before anyone runs it. The lab's program is built (with the lab's
//! gcflags) and its symbol table read: a breakpoint on a function the binary does not
//! have would stop nowhere; a check reading at a stop no breakpoint makes would find
//! nothing; a `FILE:LINE` past the file's end names no line. Unknown fields and wrong
//! types are the loader's errors, already with their line.

use crate::lab::{self, CheckKind, Lab};
use crate::machine::Machine;
use crate::probe::{build, elf::Elf};
use crate::reference::{Profile, cosim, startup};
use crate::toolchain::{self, Choice, Toolchain};
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::Path;

/// One problem, with the line of the lab file it is about.
pub struct Finding {
    pub line: Option<usize>,
    pub text: String,
}

/// The first line of `text` at or after `from` that contains `needle`.
fn line_of(text: &str, needle: &str, from: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
}

/// Lints the lab; the report and whether it is clean.
pub fn lint(name_or_path: &str, choice: &Choice) -> Result<(String, bool)> {
    let p = Path::new(name_or_path);
    let dir = if p.join("lab.yaml").is_file() {
        p.to_path_buf()
    } else {
        lab::labs_dir()?.join(name_or_path)
    };
    let file = dir.join("lab.yaml");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let shown = file.display().to_string();
    let mut out = String::new();
    let lab = match lab::parse(&text) {
        Ok(mut l) => {
            l.dir = dir.clone();
            l
        }
        Err(e) => {
            out.push_str(&format!("{shown}: {e}\n"));
            return Ok((out, false));
        }
    };
    let m = Machine::Host;
    let tc = Toolchain::find(choice, &m)?;
    let (profile, _) = Profile::for_version(tc.go_version);
    let (work, _tmp) = m.temp_dir()?;
    let (env, _) = tc.build_env(profile.dwarf5_default);
    let built = build::build(&m, &tc, &lab.dir, &work, &lab.program.gcflags, &env)?;
    let elf = Elf::read(&built.binary)?;
    let findings = findings(&lab, &text, &profile, tc.go_version, &elf);
    for f in &findings {
        match f.line {
            Some(l) => out.push_str(&format!("{shown}:{l}: {}\n", f.text)),
            None => out.push_str(&format!("{shown}: {}\n", f.text)),
        }
    }
    out.push_str(&format!(
        "golab lint {}: {} with {} ({} problem{})\n",
        lab.name,
        if findings.is_empty() {
            "clean"
        } else {
            "not clean"
        },
        tc.go_version,
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    ));
    Ok((out, findings.is_empty()))
}

/// The problems of a parsed lab against a built binary.
pub fn findings(
    lab: &Lab,
    text: &str,
    profile: &Profile,
    v: toolchain::GoVersion,
    elf: &Elf,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let bp_line = line_of(text, "breakpoints:", 1).unwrap_or(1);
    let mut stops: BTreeSet<String> = BTreeSet::new();
    let plans = lab
        .dlv
        .breakpoints
        .iter()
        .chain(lab.gdb.iter().flat_map(|g| g.breakpoints.iter()));
    for b in plans {
        let f = b.function();
        if f == "@chain" {
            stops.extend(startup::chain(profile).into_iter().map(|s| s.function));
            continue;
        }
        if !toolchain::applies(b.go(), v) {
            continue;
        }
        stops.insert(f.to_string());
        let line = line_of(text, f, bp_line);
        if crate::trace::is_line_location(f) {
            let (file, n) = f.rsplit_once(':').expect("FILE:LINE");
            let n: usize = n.parse().unwrap_or(0);
            match std::fs::read_to_string(lab.dir.join(file)) {
                Err(_) => out.push(Finding {
                    line,
                    text: format!("breakpoint {f}: the lab folder has no file {file}"),
                }),
                Ok(src) if n == 0 || n > src.lines().count() => out.push(Finding {
                    line,
                    text: format!("breakpoint {f}: {file} has {} lines", src.lines().count()),
                }),
                Ok(_) => {}
            }
            continue;
        }
        if !elf.is_function(f) && !elf.is_function(&format!("{f}.abi0")) {
            out.push(Finding {
                line,
                text: format!(
                    "breakpoint {f} resolves to nothing: no such function in this {v} binary's symbol table{}",
                    if f.starts_with("runtime.") {
                        " (renamed in this version, inlined without -l, or misspelled)"
                    } else {
                        ""
                    }
                ),
            });
        }
    }
    let cosim = lab.checks.iter().any(|c| c.kind == CheckKind::Cosim);
    if cosim {
        for pt in cosim::points(profile) {
            stops.insert(pt.function.clone());
            if !elf.is_function(&pt.function) {
                out.push(Finding {
                    line: line_of(text, "cosim", 1),
                    text: format!(
                        "the cosim check stops at {}, which this {v} binary does not have",
                        pt.function
                    ),
                });
            }
        }
    }
    for c in &lab.checks {
        if !toolchain::applies(c.go.as_deref(), v) {
            continue;
        }
        let cline = line_of(text, &format!("id: {}", c.id), 1);
        for x in c
            .expect
            .iter()
            .filter(|x| toolchain::applies(x.go.as_deref(), v))
        {
            let f = x.at.function();
            let line = cline.and_then(|l| line_of(text, f, l)).or(cline);
            if !stops.contains(f) {
                out.push(Finding {
                    line,
                    text: format!(
                        "check '{}' reads at {f}, but no breakpoint stops there (add it to dlv.breakpoints)",
                        c.id
                    ),
                });
            }
            if let Some(a) = &x.at.scope().after
                && !stops.contains(a)
            {
                out.push(Finding {
                    line,
                    text: format!(
                        "check '{}' reads after {a}, but no breakpoint stops at {a}: the stop would never be in scope",
                        c.id
                    ),
                });
            }
        }
        if c.kind == CheckKind::DynamicCallers {
            // A name of any version (`findrunnable` finds 1.19's `findRunnable`).
            let table = crate::reference::callers::Table::for_version(v)
                .ok()
                .map(|t| t.0);
            for f in &c.functions {
                let f = &table
                    .as_ref()
                    .and_then(|t| t.resolve(f))
                    .unwrap_or(f.clone());
                if !stops.contains(f) {
                    out.push(Finding {
                        line: cline,
                        text: format!(
                            "check '{}' judges the callers of {f}, but no breakpoint stops there",
                            c.id
                        ),
                    });
                }
            }
        }
    }
    out
}

//! `go build -gcflags "all=-l -N"` of a lab program in a work folder of its own.

use crate::machine::Machine;
use crate::toolchain::Toolchain;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Built {
    pub binary: PathBuf,
    pub seconds: f64,
    /// Where the program's sources were when it was built (DWARF names files there).
    pub source_dir: PathBuf,
}

/// The program does not compile: `output` is the compiler's own. Callers (the grader,
/// through `golab run`'s error document) learn this from the type, not the wording.
#[derive(Debug)]
pub struct CompileError {
    pub gcflags: String,
    pub work: PathBuf,
    pub output: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "go build -gcflags \"{}\" failed in {}:\n{}",
            self.gcflags,
            self.work.display(),
            self.output
        )
    }
}

impl std::error::Error for CompileError {}

/// Copies the lab's files (not its subfolders) into `work` on the machine and builds
/// `work/main` there. A compile error comes back with the compiler's own output.
pub fn build(
    m: &Machine,
    tc: &Toolchain,
    lab_dir: &Path,
    work: &Path,
    gcflags: &str,
    env: &[(String, String)],
) -> Result<Built> {
    m.copy_files_in(lab_dir, work)
        .with_context(|| format!("cannot copy the lab's program to {}", m.name()))?;
    let binary = work.join("main");
    let mut c = tc.go_command();
    c.envs(env.iter().map(|(k, v)| (k, v)));
    c.current_dir(work)
        .arg("build")
        .arg("-gcflags")
        .arg(gcflags)
        .arg("-o")
        .arg(&binary)
        .arg(".");
    let start = Instant::now();
    let out = m.run(&c, "go build", Duration::from_secs(900))?;
    if !out.ok() {
        return Err(CompileError {
            gcflags: gcflags.to_string(),
            work: work.to_path_buf(),
            output: out.combined().trim_end().to_string(),
        }
        .into());
    }
    Ok(Built {
        binary,
        seconds: start.elapsed().as_secs_f64(),
        source_dir: work.to_path_buf(),
    })
}

/// Uses a binary built earlier from the same program (copied into `work`).
pub fn reuse(binary: &Path, work: &Path) -> Result<Built> {
    std::fs::create_dir_all(work)?;
    let dest = work.join("main");
    if binary != dest {
        std::fs::copy(binary, &dest)
            .with_context(|| format!("cannot copy the prebuilt {}", binary.display()))?;
    }
    let source_dir = binary
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| work.to_path_buf());
    Ok(Built {
        binary: dest,
        seconds: 0.0,
        source_dir,
    })
}

//! Running a submission's lab in the sandbox: the student's program is built, run once
//! on its own under syscall tracing (so a fork bomb, a network connection or a look at
//! another submission is caught and named), then the lab runs on it with dlv and gdb.
//! Each step is a sandboxed process as the job slot's own uid, with limits.

use super::batch::{GolabRun, outcome_of};
use super::grader::{LabRunner, Ran};
use super::model::Outcome;
use super::sandbox::{Limits, Sandbox, Verdict};
use crate::lab;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Sandboxed {
    /// golab itself (a copy its uids can reach) and the dlv to give it.
    pub run: GolabRun,
    /// Folders no submission may see: the submissions, and every student's work folder.
    pub hidden: Vec<PathBuf>,
    /// Per-slot Go build caches live here (slot-N), shared by that slot's runs.
    pub caches: PathBuf,
    pub timeout: Duration,
    /// Wall-clock and CPU time of the program's traced run on its own.
    pub program: Duration,
}

/// What a sandbox verdict means for the submission, when it stops the grading.
fn stopping(v: Verdict, what: &str) -> Option<(Outcome, String)> {
    Some(match v {
        Verdict::Timeout => (
            Outcome::Timeout,
            format!("{what} did not finish in time (an endless loop?)"),
        ),
        Verdict::CpuLimit => (
            Outcome::CpuLimit,
            format!("{what} used more CPU time than allowed"),
        ),
        Verdict::MemoryLimit => (
            Outcome::MemoryLimit,
            format!("{what} used more memory than allowed"),
        ),
        Verdict::ProcessLimit => (
            Outcome::ProcessLimit,
            format!("{what} started more processes or threads than allowed (a fork bomb?)"),
        ),
        Verdict::OutputLimit => (
            Outcome::OutputLimit,
            format!("{what} wrote more output than allowed"),
        ),
        Verdict::NetworkDenied => (
            Outcome::NetworkDenied,
            format!("{what} tried to open a network connection; lab programs have no network"),
        ),
        Verdict::EscapeDenied => (
            Outcome::EscapeDenied,
            format!("{what} tried to read outside its own folder (another submission?)"),
        ),
        Verdict::Ok | Verdict::Failed(_) | Verdict::Signaled(_) => return None,
    })
}

impl Sandboxed {
    fn sandbox(
        &self,
        student_dir: &Path,
        slot: usize,
        extra_ro: &[PathBuf],
    ) -> Result<(Sandbox, PathBuf)> {
        let cache = self.caches.join(format!("slot-{slot}"));
        std::fs::create_dir_all(&cache)?;
        let mut s = Sandbox::new(student_dir, slot as u32)
            .read_only(&self.run.golab)
            .read_write(&cache);
        for p in self.hidden.iter() {
            s = s.hide(p);
        }
        for p in extra_ro {
            s = s.read_only(p);
        }
        s.prepare()?;
        s.give(&cache)?;
        Ok((s, cache))
    }
}

impl LabRunner for Sandboxed {
    fn run(
        &self,
        lab_dir: &Path,
        prebuilt: Option<&Path>,
        goroot: Option<&Path>,
        slot: usize,
    ) -> Result<Ran> {
        let student_dir = lab_dir
            .parent()
            .context("a lab folder inside the student's folder")?;
        let the_lab = lab::load_file(&lab_dir.join("lab.yaml"))?;
        let work = lab_dir.join("work");
        std::fs::create_dir_all(&work)?;
        let binary = work.join("main");
        let dlv = self.run.dlv(goroot);
        let mut ro: Vec<PathBuf> = goroot.into_iter().map(Path::to_path_buf).collect();
        ro.extend(dlv.iter().cloned());
        if let Some(p) = prebuilt {
            std::fs::copy(p, &binary)
                .with_context(|| format!("cannot copy the prebuilt {}", p.display()))?;
        }
        let (sb, cache) = self.sandbox(student_dir, slot, &ro)?;
        let mut env = vec![("GOCACHE".to_string(), cache.display().to_string())];
        if let Some(g) = goroot {
            env.push(("GOROOT".into(), g.display().to_string()));
            env.push((
                "PATH".into(),
                format!("{}/bin:/usr/local/bin:/usr/bin:/bin", g.display()),
            ));
        }
        let limits = Limits {
            wall: self.timeout,
            ..Limits::default()
        };

        // 1. Build (the compiler only reads the student's files: no tracing needed).
        if prebuilt.is_none() {
            let go = goroot
                .map(|g| g.join("bin/go").display().to_string())
                .unwrap_or_else(|| "go".into());
            let argv: Vec<String> = vec![
                go,
                "build".into(),
                "-gcflags".into(),
                the_lab.program.gcflags.clone(),
                "-o".into(),
                binary.display().to_string(),
                ".".into(),
            ];
            let out = sb
                .clone()
                .cwd(lab_dir)
                .with_syscall_evidence(false)
                .run(&argv, &env, &limits)?;
            if let Some((o, m)) = stopping(out.verdict, "go build") {
                return Ok(Ran::Stopped {
                    outcome: o,
                    message: m,
                });
            }
            if out.verdict != Verdict::Ok {
                return Ok(Ran::Stopped {
                    outcome: Outcome::CompileError,
                    message: crate::exec::tail(&format!("{}{}", out.stdout, out.stderr)),
                });
            }
        }

        // 2. The program alone, traced: what it tries is evidence.
        let args: Vec<String> = the_lab
            .scenarios
            .first()
            .map(|s| s.args())
            .unwrap_or_else(|| the_lab.program.args.clone());
        let mut argv = vec![binary.display().to_string()];
        argv.extend(args);
        let mut run_env = env.clone();
        run_env.extend(
            the_lab
                .program
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let alone = Limits {
            wall: self.program.min(self.timeout),
            cpu_secs: self.program.as_secs().max(1),
            ..limits.clone()
        };
        let out = sb
            .clone()
            .cwd(lab_dir)
            .with_syscall_evidence(true)
            .run(&argv, &run_env, &alone)?;
        if let Some((o, m)) = stopping(out.verdict, "your program") {
            let evidence = out
                .evidence
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(Ran::Stopped {
                outcome: o,
                message: if evidence.is_empty() {
                    m
                } else {
                    format!("{m} ({evidence})")
                },
            });
        }

        // 3. The lab itself, with dlv and gdb (which need ptrace: no tracing).
        let obs = lab_dir.join("observation.json");
        let argv = self.run.argv(lab_dir, &obs, Some(&binary), goroot);
        let out = sb
            .cwd(lab_dir)
            .with_syscall_evidence(false)
            .run(&argv, &env, &limits)?;
        if let Some((o, m)) = stopping(out.verdict, "the lab run of your program") {
            return Ok(Ran::Stopped {
                outcome: o,
                message: m,
            });
        }
        outcome_of(out.status, &out.stderr, &obs)
    }
}

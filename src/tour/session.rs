//! `golab tour`'s preparation: which tour, which go and dlv, the build, the deadline.
//! The binary only reads the terminal (one step per Enter) and prints; everything the
//! tour decides is here.

use super::{Input, Section, Tour};
use crate::lab::Lab;
use crate::machine::Machine;
use crate::probe::build::{self, Built};
use crate::reference::Profile;
use crate::toolchain::{Choice, Toolchain};
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What `golab tour` was asked.
pub struct Request {
    /// The tour's name: only startup-trace has one.
    pub lab: String,
    /// A program folder of one's own (main.go, go.mod) instead of the lab's.
    pub program: Option<PathBuf>,
    pub choice: Choice,
    /// A person steps through it at a terminal: the deadline is then hours, not the
    /// lab's timeout.
    pub interactive: bool,
}

/// A tour ready to run: the program built with the lab's flags, the tools found.
pub struct Prepared {
    lab: Lab,
    tc: Toolchain,
    profile: Profile,
    build_warning: Option<String>,
    built: Built,
    deadline: Instant,
    page_size: u64,
    ncpu: u64,
    /// The build's folder, removed when the tour is dropped.
    _work: tempfile::TempDir,
}

/// Finds go and dlv, builds the program, and sets the deadline.
pub fn prepare(req: &Request) -> Result<Prepared> {
    if req.lab != "startup-trace" {
        bail!(
            "there is a tour of startup-trace only (asked for '{}'); for the scheduler, see `golab explain runq-order --summary` and `golab reference scheduler-callers --go VERSION`",
            req.lab
        );
    }
    let lab = crate::lab::load("startup-trace")?;
    let m = Machine::Host;
    let tc = Toolchain::find_go_and_dlv(&req.choice, &m)?;
    let (profile, _) = Profile::for_version(tc.go_version);
    let dir = req.program.clone().unwrap_or(lab.dir.clone());
    if !dir.join("main.go").is_file() {
        bail!(
            "--program {}: there is no main.go in it (a program folder holds main.go and go.mod)",
            dir.display()
        );
    }
    let work = tempfile::Builder::new().prefix("golab-tour-").tempdir()?;
    let (env, build_warning) = tc.build_env(profile.dwarf5_default);
    let built = build::build(&m, &tc, &dir, work.path(), &lab.program.gcflags, &env)?;
    let deadline = Instant::now()
        + if req.interactive {
            Duration::from_secs(4 * 3600)
        } else {
            Duration::from_secs(lab.program.timeout_secs)
        };
    Ok(Prepared {
        page_size: m.page_size()?,
        ncpu: m.ncpu()?,
        lab,
        tc,
        profile,
        build_warning,
        built,
        deadline,
        _work: work,
    })
}

impl Prepared {
    /// What a person at the terminal reads before the first step.
    pub fn banner(&self) -> String {
        format!(
            "golab tour startup-trace: go{} | dlv {} | reference profile {}{}\nEnter: the next step; q then Enter: stop.\n$ dlv exec ./main -- {}\n",
            self.tc.go_version.to_string().trim_start_matches("go"),
            self.tc.dlv_version,
            self.profile.name(),
            self.build_warning
                .as_ref()
                .map(|w| format!("\nwarning: {w}"))
                .unwrap_or_default(),
            self.lab.program.args.join(" ")
        )
    }

    /// The build's folder (removed on drop; a caller that ends the process at once
    /// removes it itself).
    pub fn work_dir(&self) -> &std::path::Path {
        self._work.path()
    }

    /// Runs the tour; `each` sees every section as it is done.
    pub fn run(&self, each: &mut dyn FnMut(&Section, usize)) -> Result<Tour> {
        let input = Input {
            dlv: &self.tc.dlv,
            dlv_version: &self.tc.dlv_version,
            go_version: self.tc.go_version,
            binary: &self.built.binary,
            source_dir: &self.built.source_dir,
            args: self.lab.program.args.clone(),
            env: self
                .lab
                .program
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            skip_version_check: self.tc.dlv_supports_go() == Some(false),
            deadline: self.deadline,
            page_size: self.page_size,
            ncpu: self.ncpu,
        };
        super::run(&input, each)
    }
}

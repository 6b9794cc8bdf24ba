//! `golab tour`'s glue: find the tools, build the program, run the tour, print it (one
//! step per Enter on a terminal), and write the HTML page or JSON if asked.

use crate::cli::TourArgs;
use anyhow::{Result, bail};
use golab::files::write_atomic;
use golab::machine::Machine;
use golab::probe::build;
use golab::reference::Profile;
use golab::toolchain::{self, Toolchain};
use golab::tour;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub fn run(a: &TourArgs) -> Result<ExitCode> {
    if a.lab != "startup-trace" {
        bail!(
            "there is a tour of startup-trace only (asked for '{}'); for the scheduler, see `golab explain runq-order --summary` and `golab reference scheduler-callers --go VERSION`",
            a.lab
        );
    }
    let lab = golab::lab::load("startup-trace")?;
    let m = Machine::Host;
    let tc = go_and_dlv(&a.tools.choice()?, &m)?;
    let (profile, _) = Profile::for_version(tc.go_version);
    let dir = a.program.clone().unwrap_or(lab.dir.clone());
    if !dir.join("main.go").is_file() {
        bail!(
            "--program {}: there is no main.go in it (a program folder holds main.go and go.mod)",
            dir.display()
        );
    }
    let work = tempfile::Builder::new().prefix("golab-tour-").tempdir()?;
    let (env, build_warning) = tc.build_env(profile.dwarf5_default);
    let built = build::build(&m, &tc, &dir, work.path(), &lab.program.gcflags, &env)?;
    let interactive =
        !a.all && !a.json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let deadline = Instant::now()
        + if interactive {
            Duration::from_secs(4 * 3600)
        } else {
            Duration::from_secs(lab.program.timeout_secs)
        };
    let input = tour::Input {
        dlv: &tc.dlv,
        dlv_version: &tc.dlv_version,
        go_version: tc.go_version,
        binary: &built.binary,
        source_dir: &built.source_dir,
        args: lab.program.args.clone(),
        env: lab
            .program
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        skip_version_check: tc.dlv_supports_go() == Some(false),
        deadline,
        page_size: m.page_size()?,
        ncpu: m.ncpu()?,
    };
    if interactive {
        println!(
            "golab tour startup-trace: go{} | dlv {} | reference profile {}{}",
            tc.go_version.to_string().trim_start_matches("go"),
            tc.dlv_version,
            profile.name(),
            build_warning
                .map(|w| format!("\nwarning: {w}"))
                .unwrap_or_default()
        );
        println!("Enter: the next step; q then Enter: stop.");
        println!("$ dlv exec ./main -- {}", lab.program.args.join(" "));
    }
    let stdin = std::io::stdin();
    let mut each = |s: &tour::Section, n: usize| {
        if !interactive {
            return;
        }
        print!(
            "{}{}",
            tour::render_header(s, n, 0).replace("/0 ", " "),
            tour::render_body(s)
        );
        print!("-- Enter for the next step, q to stop -- ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = stdin.lock().read_line(&mut line);
        if line.trim() == "q" {
            let n = golab::exec::kill_all_live();
            eprintln!("golab: tour stopped (ended {n} process group(s))");
            std::process::exit(0);
        }
    };
    let t = tour::run(&input, &mut each)?;
    let json = golab::exit::document(golab::exit::Doc::Tour, &t);
    if a.json {
        println!("{json}");
    } else if interactive {
        print!("{}", tour::summary(&t));
    } else {
        print!("{}", tour::render(&t));
    }
    if let Some(j) = &a.json_file {
        write_atomic(j, json.as_bytes())?;
    }
    if let Some(h) = &a.html {
        write_atomic(h, golab::html::tour_page(&t).as_bytes())?;
    }
    Ok(if t.passed() {
        golab::exit::Exit::Ok.into()
    } else {
        golab::exit::Exit::Failed.into()
    })
}

/// The tour needs go and dlv only: no gdb or readelf version to ask for (each is a
/// process start, and the tour aims at seconds).
fn go_and_dlv(choice: &toolchain::Choice, m: &Machine) -> Result<Toolchain> {
    let (go, goroot) = match &choice.goroot {
        Some(root) => {
            let go = root.join("bin/go");
            if !m.is_file(&go) {
                bail!(
                    "--goroot {}: there is no bin/go in it (a GOROOT is the folder that holds bin/go and src/runtime)",
                    root.display()
                );
            }
            (go, Some(root.clone()))
        }
        None => (
            toolchain::find_tool(m, "go", None, "--goroot / GOLAB_GOROOT")?,
            None,
        ),
    };
    let go_version = toolchain::go_version(m, &go, goroot.as_deref())?;
    let dlv = toolchain::find_tool(m, "dlv", choice.dlv.as_deref(), "--dlv / GOLAB_DLV")?;
    let dlv_version = toolchain::dlv_version(m, &dlv)?;
    Ok(Toolchain {
        go,
        goroot,
        go_version,
        dlv,
        dlv_version,
        gdb: Default::default(),
        gdb_version: String::new(),
        readelf: Default::default(),
        readelf_version: String::new(),
    })
}

//! golab's command line: parses the arguments and dispatches; the work lives in the
//! library (src/lib.rs).

mod cli;
mod tour_cmd;

/// golab's own sources, embedded by build.rs for `golab gradescope package`.
mod sources {
    include!(concat!(env!("OUT_DIR"), "/sources.rs"));
}

use golab::exit::{Doc, Exit, document};
use golab::grade::commands;
use golab::machine::lifecycle;
use golab::{doctor, files, lab, report, runner};

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Cmd};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of stdout goes away
    // (`golab explain ... | head`) instead of panicking on a broken pipe.
    golab::sys::proc::default_sigpipe();
    let cli = Cli::parse();
    // Commands that run the lab's tools here run them where a SIGKILL of golab ends them
    // too (src/sys/reaper.rs); it forks, so before any thread starts.
    let here = match &cli.command {
        Cmd::Run(a) => a.machine.provider == cli::VmProvider::Host,
        Cmd::Grade(_) | Cmd::Check(_) => true,
        _ => false,
    };
    if here {
        golab::sys::reaper::enter();
    }
    // The grader's observer runs the student's program (under dlv, gdb) in the sandbox
    // it was handed (GOLAB_JAIL).
    golab::grade::enter_observer_jail();
    // The tools golab starts (go, gdb, dlv and the program it debugs, vagrant, the
    // sandbox) each run in a process group of their own, out of the terminal's reach:
    // on Ctrl-C, SIGTERM or a closed terminal golab ends them before it goes. Files
    // golab writes are written whole (written aside, then renamed), so what was
    // recorded before the interrupt stays.
    if let Err(e) = ctrlc::set_handler(|| {
        let n = golab::exec::kill_all_live();
        eprintln!("\ngolab: interrupted; stopped {n} process group(s) it had started");
        std::process::exit(Exit::Interrupted.code().into());
    }) {
        eprintln!(
            "golab: warning: cannot handle interrupts ({e}); a Ctrl-C may leave its tools running"
        );
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("golab: {e:#}");
            Exit::Error.into()
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Doctor(t) => {
            let findings = doctor::examine(&t.tools.choice()?);
            let (text, ready) = doctor::report(&findings);
            if t.json {
                println!(
                    "{}",
                    document(
                        Doc::Doctor,
                        serde_json::json!({"ready": ready, "findings": findings})
                    )
                );
            } else {
                print!("{text}");
            }
            Ok(if ready { Exit::Ok } else { Exit::Failed }.into())
        }
        Cmd::Lint(a) => {
            let (text, clean) = golab::lint::lint(&a.lab, &a.tools.choice()?)?;
            print!("{text}");
            Ok(if clean { Exit::Ok } else { Exit::Failed }.into())
        }
        Cmd::Labs { json } => {
            let labs = lab::list()?;
            if json {
                println!("{}", lab::listing_json(&labs)?);
            } else {
                print!("{}", lab::listing_text(&labs));
            }
            Ok(Exit::Ok.into())
        }
        Cmd::Run(a) => run(&a),
        Cmd::Assign(a) => {
            println!("{}", commands::assign(&a.request())?);
            Ok(Exit::Ok.into())
        }
        Cmd::Grade(a) => {
            print!("{}", commands::grade(&a.request())?);
            Ok(Exit::Ok.into())
        }
        Cmd::Check(a) => {
            let c = commands::check(&a.request())?;
            print!("{}", c.text);
            if let Some(f) = &a.gradescope {
                c.write_gradescope(f)?;
            }
            Ok(if c.graded { Exit::Ok } else { Exit::Failed }.into())
        }
        Cmd::Tour(a) => tour_cmd::run(&a),
        Cmd::Hand(a) => {
            print!("{}", commands::hand(&a.request())?);
            Ok(Exit::Ok.into())
        }
        Cmd::Gradescope(a) => match a.command {
            cli::GradescopeCmd::Probe => {
                println!("{}", golab::grade::setup::probe());
                Ok(ExitCode::SUCCESS)
            }
            cli::GradescopeCmd::Package {
                lab,
                out,
                seed,
                binary,
                no_binary,
            } => {
                let binary = if no_binary {
                    None
                } else {
                    Some(binary.unwrap_or(std::env::current_exe()?))
                };
                golab::grade::gradescope::package(
                    &lab,
                    seed.as_deref(),
                    binary.as_deref(),
                    sources::SOURCES,
                    &lab::labs_dir()?,
                    &out,
                )?;
                println!(
                    "wrote {} (upload it as the autograder of lab {lab})",
                    out.display()
                );
                Ok(ExitCode::SUCCESS)
            }
        },
        Cmd::Up(a) => {
            println!("{}", lifecycle::up(&a.request())?);
            Ok(Exit::Ok.into())
        }
        Cmd::Image(cli::ImageCmd::Build(a)) => {
            for line in lifecycle::image_build(&a.request())? {
                println!("{line}");
            }
            Ok(Exit::Ok.into())
        }
        Cmd::Status { vm, json } => {
            let st = lifecycle::status(&vm.machine().which())?;
            if json {
                println!("{}", document(Doc::Status, st.doc));
            } else {
                println!("{}", st.line);
            }
            Ok(if st.running {
                Exit::Ok
            } else {
                Exit::NotRunning
            }
            .into())
        }
        Cmd::Ssh { vm, command } => match lifecycle::ssh(&vm.machine().which(), &command)? {
            lifecycle::Ssh::NotRunning(why) => {
                eprintln!("golab: {why}");
                Ok(Exit::NotRunning.into())
            }
            lifecycle::Ssh::Exited(code) => Ok(ExitCode::from(code)),
        },
        Cmd::Down(m) => {
            println!("{}", lifecycle::down(&m.machine().which())?);
            Ok(Exit::Ok.into())
        }
        Cmd::Destroy(m) => {
            println!("{}", lifecycle::destroy(&m.machine().which())?);
            Ok(Exit::Ok.into())
        }
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "golab", &mut std::io::stdout());
            Ok(Exit::Ok.into())
        }
        Cmd::Man { out } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match out {
                None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    clap_mangen::generate_to(cmd, &dir)?;
                    println!("wrote the man pages into {}", dir.display());
                }
            }
            Ok(Exit::Ok.into())
        }
        Cmd::Render(a) => {
            use golab::machine::vagrant::write;
            let provider = a.provider.provider();
            let mut cfg = lifecycle::vagrant_config(
                a.cpus,
                a.memory,
                &a.pins.pins(),
                &a.boot.boot(),
                &a.vagrant.settings(),
            )?;
            cfg.ssh_port = a.ssh_port.unwrap_or(cfg.ssh_port);
            cfg.dlv_port = a.dlv_port.unwrap_or(cfg.dlv_port);
            let path = write(provider, &cfg, &a.out)?;
            println!(
                "wrote {} for {provider} (ssh on 127.0.0.1:{}, dlv on 127.0.0.1:{})",
                path.display(),
                cfg.ssh_port,
                cfg.dlv_port
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Explain(a) => {
            let e = golab::lookup::explain(&a.request())?;
            if a.json {
                println!("{}", e.json());
            } else if a.summary {
                print!("{}", e.summary());
            } else {
                print!("{}", e.text());
            }
            Ok(Exit::Ok.into())
        }
        Cmd::Reference(a) => {
            let p = golab::lookup::reference(&a.lab, &a.go)?;
            if let Some(w) = p.warning {
                eprintln!("warning: {w}");
            }
            if a.json {
                println!("{}", p.json);
            } else {
                print!("{}", p.text);
            }
            Ok(Exit::Ok.into())
        }
    }
}

/// `golab run`. When it cannot be done, `--json`/`--json-file` still get a document:
/// the error's kind (`compile-error`, `timeout`, `observer-killed`, `error`) and message, which is how the
/// grader learns a submission's outcome.
fn run(a: &cli::RunArgs) -> Result<ExitCode> {
    if let Some(j) = &a.json_file {
        // No document from an earlier run may stand in for this one's if it dies.
        let _ = std::fs::remove_file(j);
    }
    match run_lab(a) {
        Ok(code) => Ok(code),
        Err(e) => {
            if a.json_file.is_some() || a.json {
                let (kind, message) = runner::failure(&e);
                let doc = golab::exit::error_document(Doc::Run, kind, &message);
                if let Some(j) = &a.json_file {
                    files::write_atomic(j, doc.as_bytes())?;
                }
                if a.json {
                    println!("{doc}");
                }
            }
            Err(e)
        }
    }
}

fn run_lab(a: &cli::RunArgs) -> Result<ExitCode> {
    let lab = lab::load(&a.lab)?;
    let choice = a.tools.choice()?;
    let opts = runner::Options {
        machine: lifecycle::machine(
            a.machine.provider.provider(),
            &a.machine.name,
            choice.release.as_deref(),
        )?,
        choice,
        transcript: a.transcript.clone(),
        keep_work: a.work.clone(),
        quiet: a.quiet,
        scenario: a.scenario.clone(),
        repeat: a.repeat,
        prebuilt: a.binary.clone(),
    };
    let out = runner::run(&lab, &opts)?;
    let json = report::json(&out.observation, &out.verdict);
    if let Some(j) = &a.json_file {
        files::write_atomic(j, json.as_bytes())?;
    }
    if a.json {
        println!("{json}");
    } else {
        print!("{}", report::terminal(&out.verdict, &out.header, a.verbose));
    }
    if let Some(h) = &a.html {
        let page = golab::html::run_page(&lab, &out.observation, &out.verdict, &out.header);
        files::write_atomic(h, page.as_bytes())?;
    }
    Ok(if out.verdict.passed() {
        Exit::Ok
    } else {
        Exit::Failed
    }
    .into())
}

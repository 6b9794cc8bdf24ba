//! golab's command line: parses the arguments and dispatches; the work lives in the
//! library (src/lib.rs).

mod cli;
mod commands;
mod tour_cmd;
mod vm;

use golab::{doctor, files, lab, reference, report, runner, toolchain};

use anyhow::{Result, bail};
use clap::Parser;
use cli::{Cli, Cmd};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of stdout goes away
    // (`golab explain ... | head`) instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // Commands that run the lab's tools here run them where a SIGKILL of golab ends them
    // too (src/reaper.rs); it forks, so before any thread starts.
    let here = match &cli.command {
        Cmd::Run(a) => a.machine.provider == cli::VmProvider::Host,
        Cmd::Grade(_) | Cmd::Check(_) => true,
        _ => false,
    };
    if here {
        golab::reaper::enter();
    }
    // The tools golab starts (go, gdb, dlv and the program it debugs, vagrant, the
    // sandbox) each run in a process group of their own, out of the terminal's reach:
    // on Ctrl-C, SIGTERM or a closed terminal golab ends them before it goes. Files
    // golab writes are written whole (written aside, then renamed), so what was
    // recorded before the interrupt stays.
    if let Err(e) = ctrlc::set_handler(|| {
        let n = golab::exec::kill_all_live();
        eprintln!("\ngolab: interrupted; stopped {n} process group(s) it had started");
        std::process::exit(130);
    }) {
        eprintln!(
            "golab: warning: cannot handle interrupts ({e}); a Ctrl-C may leave its tools running"
        );
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("golab: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Doctor(t) => {
            let findings = doctor::examine(&t.choice());
            let (text, ready) = doctor::report(&findings);
            print!("{text}");
            Ok(if ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Labs => {
            for l in lab::list()? {
                println!("{:<18} {}", l.name, l.title);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run(a) => {
            let lab = lab::load(&a.lab)?;
            let opts = runner::Options {
                choice: a.tools.choice(),
                transcript: a.transcript.clone(),
                keep_work: a.work.clone(),
                quiet: a.quiet,
                scenario: a.scenario.clone(),
                repeat: a.repeat,
                prebuilt: a.binary.clone(),
                machine: vm::machine(a.machine.provider, &a.machine.name)?,
            };
            let out = runner::run(&lab, &opts)?;
            print!("{}", report::terminal(&out.verdict, &out.header, a.verbose));
            if let Some(j) = &a.json {
                files::write_atomic(j, report::json(&out.observation, &out.verdict).as_bytes())?;
            }
            if let Some(h) = &a.html {
                let page = golab::html::run_page(&lab, &out.observation, &out.verdict, &out.header);
                files::write_atomic(h, page.as_bytes())?;
            }
            Ok(if out.verdict.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Assign(a) => commands::assign(&a),
        Cmd::Grade(a) => commands::grade(&a),
        Cmd::Check(a) => commands::check(&a),
        Cmd::Tour(a) => tour_cmd::run(&a),
        Cmd::Gradescope(a) => match a.command {
            cli::GradescopeCmd::Package { lab, out } => {
                let source = std::env::current_exe()?
                    .ancestors()
                    .find(|d| d.join("Cargo.toml").is_file() && d.join("src").is_dir())
                    .map(|d| d.to_path_buf())
                    .unwrap_or(std::path::PathBuf::from("."));
                golab::grade::gradescope::package(&lab, &source, &out)?;
                println!(
                    "wrote {} (upload it as the autograder of lab {lab})",
                    out.display()
                );
                Ok(ExitCode::SUCCESS)
            }
        },
        Cmd::Up(a) => vm::up(&a),
        Cmd::Status(m) => vm::status(&qemu_only(m)?),
        Cmd::Ssh { machine, command } => vm::ssh(&qemu_only(machine)?, &command),
        Cmd::Down(m) => vm::down(&qemu_only(m)?),
        Cmd::Destroy(m) => vm::destroy(&qemu_only(m)?),
        Cmd::Render(a) => {
            use golab::machine::vagrant::{Provider, write};
            let provider: Provider = a.provider.parse()?;
            let mut cfg = vm::vagrant_config(a.cpus, a.memory, &a.pins, &a.boot, &a.vagrant)?;
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
            let lab = lab::load(&a.lab)?;
            if !lab
                .checks
                .iter()
                .any(|c| c.kind == lab::CheckKind::RunOrder)
            {
                bail!("lab {} has no run-order scenarios to explain", lab.name);
            }
            let v = toolchain::GoVersion::parse(&a.go)?;
            let spec = lab::ScenarioSpec {
                id: "explain".into(),
                n: a.n,
                block: a.block.clone(),
                gosched: a.gosched.clone(),
            };
            let scenario = spec.model().map_err(anyhow::Error::msg)?;
            let live = reference::sched::LiveState {
                schedtick: a.schedtick,
                runqhead: 0,
                local_len: a.local,
                runnext: a.runnext,
                global_len: a.global,
            };
            let e = reference::sched::simulate(
                &reference::sched::Profile::for_version(v.minor),
                &scenario,
                &live,
            );
            if a.summary {
                print!("{}", reference::moments::summary(&e));
            } else {
                print!("{}", e.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Reference(a) => {
            let lab = lab::load(&a.lab)?;
            let v = toolchain::GoVersion::parse(&a.go)?;
            if lab.chain.as_deref() != Some("startup")
                && lab.checks.iter().any(|c| {
                    matches!(
                        c.kind,
                        lab::CheckKind::StaticCallers | lab::CheckKind::DynamicCallers
                    )
                })
            {
                let (t, note) = reference::callers::Table::for_version(v)?;
                if let Some(n) = note {
                    eprintln!("warning: {n}");
                }
                if a.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "go": t.go, "source": t.source,
                            "callers": reference::callers::FUNCTIONS.iter().map(|f| {
                                let here = t.resolve(f).unwrap_or(f.to_string());
                                (here.clone(), t.notes_callers(&here))
                            }).collect::<std::collections::BTreeMap<_, _>>(),
                            "notes_differences": t.notes_differences(),
                        }))?
                    );
                } else {
                    print!("{}", t.render(v));
                }
                return Ok(ExitCode::SUCCESS);
            }
            if lab.chain.as_deref() != Some("startup") {
                bail!(
                    "lab {} has no reference chain to print (its lab.yaml sets no `chain: startup`)",
                    lab.name
                );
            }
            let (p, warning) = reference::Profile::for_version(v);
            if let Some(w) = warning {
                eprintln!("warning: {w}");
            }
            if a.json {
                let steps = reference::startup::walk(&p);
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"profile": p, "chain": reference::startup::chain(&p), "walk": steps})
                    )?
                );
            } else {
                print!("{}", reference::startup::render(&p, v));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Lab VM commands take the qemu provider (given or not: it is the only VM provider).
fn qemu_only(mut m: cli::MachineArgs) -> Result<cli::MachineArgs> {
    if m.provider == cli::VmProvider::Host {
        m.provider = cli::VmProvider::Qemu;
    }
    Ok(m)
}

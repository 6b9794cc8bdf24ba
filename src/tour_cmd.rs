//! `golab tour` at the terminal: one step per Enter when a person is there, the whole
//! tour at once otherwise; the tour itself is the library's (golab::tour::session).

use crate::cli::TourArgs;
use anyhow::Result;
use golab::exit::{Doc, Exit, document};
use golab::files::write_atomic;
use golab::tour::{self, session};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

pub fn run(a: &TourArgs) -> Result<ExitCode> {
    let interactive =
        !a.all && !a.json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let prepared = session::prepare(&session::Request {
        lab: a.lab.clone(),
        program: a.program.clone(),
        choice: a.tools.choice()?,
        interactive,
    })?;
    if interactive {
        print!("{}", prepared.banner());
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
            // Exiting here skips the build folder's drop.
            let _ = std::fs::remove_dir_all(prepared.work_dir());
            eprintln!("golab: tour stopped (ended {n} process group(s))");
            std::process::exit(0);
        }
    };
    let t = prepared.run(&mut each)?;
    let json = document(Doc::Tour, &t);
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
    Ok(if t.passed() { Exit::Ok } else { Exit::Failed }.into())
}

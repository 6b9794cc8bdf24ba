//! The program's shape for whole-order prediction (here, not in probe/, because it hands the
//! reference its own type and probes never import the reference): `tools/goshape` (embedded in golab)
//! built with the lab's own Go on the lab's machine, then run once per scenario on the
//! program's sources. It reads syntax and never runs the program.

use crate::machine::Machine;
use crate::reference::shape::{HELPER_GO_MOD, HELPER_SOURCE, Shape};
use crate::toolchain::Toolchain;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Builds the helper in `work/.goshape` and returns the binary's path on the machine.
pub fn build_helper(
    m: &Machine,
    tc: &Toolchain,
    work: &Path,
    env: &[(String, String)],
) -> Result<PathBuf> {
    let dir = work.join(".goshape");
    if let Machine::Host = m {
        std::fs::create_dir_all(&dir)?;
    }
    m.put(HELPER_SOURCE.as_bytes(), &dir.join("main.go"))?;
    m.put(HELPER_GO_MOD.as_bytes(), &dir.join("go.mod"))?;
    let bin = dir.join("goshape");
    let mut c = tc.go_command();
    c.envs(env.iter().map(|(k, v)| (k, v)));
    c.current_dir(&dir)
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(".");
    let out = m.run(&c, "go build (goshape)", Duration::from_secs(300))?;
    if !out.ok() {
        bail!(
            "building golab's shape helper with this Go failed:\n{}",
            out.combined().trim_end()
        );
    }
    Ok(bin)
}

/// The shape of the program in `src` (on the machine) for one scenario's arguments.
pub fn derive(m: &Machine, helper: &Path, src: &Path, record: &str, args: &[String]) -> Shape {
    let mut c = crate::machine::Cmd::new(helper);
    c.arg("-dir").arg(src).arg("-record").arg(record).arg("--");
    c.args(args);
    match m.run(&c, "goshape", Duration::from_secs(120)) {
        Ok(out) if out.ok() => Shape::from_json(&out.stdout).unwrap_or_else(Shape::Failed),
        Ok(out) => Shape::Failed(format!(
            "golab's shape helper failed: {}",
            out.combined().trim_end()
        )),
        Err(e) => Shape::Failed(format!("golab's shape helper did not run: {e:#}")),
    }
}

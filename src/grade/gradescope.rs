//! The Gradescope autograder zip for a lab.
//!
//! Gradescope's format (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
//! the zip holds `setup.sh` (run once, as root, when Gradescope builds its Ubuntu image)
//! and `run_autograder` (run for every submission, working directory `/autograder`)
//! at its root; it is unpacked to `/autograder/source`, the student's files are in
//! `/autograder/submission`, and `run_autograder` must leave
//! `/autograder/results/results.json`.
//!
//! Ours also holds golab's own sources under `golab/` (Cargo.toml, Cargo.lock, src/,
//! embedded in the binary by build.rs) and the labs folder in use as `golab/labs/`: setup.sh installs the tools golab drives, a Rust toolchain when the image has
//! none recent enough, and builds golab there. run_autograder runs `golab check` on the
//! submission; when golab leaves no results.json it writes one itself, with score 0 and
//! golab's last output, so the student sees why instead of a blank result.

use anyhow::{Context, Result, bail};
use std::io::{Cursor, Write};
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// The oldest Rust that builds golab and its dependencies (zip 9 needs 1.89): Cargo.toml's
/// `rust-version` (a test holds them equal).
pub const MIN_RUST: (u32, u32) = (1, 89);

/// A lab name that is safe to write into a shell script and to pass as an argument:
/// ASCII letters, digits and `-`, not starting with `-`, at most 64 characters.
pub fn valid_lab_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub fn setup_sh(lab: &str) -> String {
    let (major, minor) = MIN_RUST;
    format!(
        r#"#!/usr/bin/env bash
# Gradescope autograder setup for the golab lab '{lab}' (written by golab).
# Gradescope runs this once, as root, when it builds the autograder's image; the zip
# is unpacked in /autograder/source. It installs the tools golab drives and builds
# golab from the sources in golab/.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SRC="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"

apt-get update
apt-get install -y golang-go delve gdb binutils bubblewrap strace \
    build-essential ca-certificates curl

# A Rust toolchain: the image's cargo if it is {major}.{minor} or newer, else rustup's stable.
rust_recent_enough() {{
    command -v cargo >/dev/null 2>&1 || return 1
    local v major minor
    v="$(cargo --version 2>/dev/null | awk '{{print $2}}')"
    major="${{v%%.*}}"
    minor="${{v#*.}}"
    minor="${{minor%%.*}}"
    [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
    (( major > {major} || (major == {major} && minor >= {minor}) ))
}}
if ! rust_recent_enough; then
    export RUSTUP_INIT_SKIP_PATH_CHECK=yes
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
export PATH="$HOME/.cargo/bin:$PATH"
cargo --version

cd "$SRC/golab"
cargo build --release --locked
install -m 0755 target/release/golab /usr/local/bin/golab
# What golab thinks of this machine, for the build log (not fatal: the image is
# built without ptrace rights that the autograder's run may have).
GOLAB_LABS="$SRC/golab/labs" golab doctor || true
"#
    )
}

pub fn run_autograder(lab: &str) -> String {
    format!(
        r#"#!/usr/bin/env bash
# Gradescope runs this for every submission of the golab lab '{lab}' (written by golab).
# golab writes results.json itself; if it leaves none, this script writes one with
# score 0 and golab's last output, so the student sees what happened.
# GOLAB_AUTOGRADER_ROOT and GOLAB_BIN exist only to test this script elsewhere.
set -uo pipefail
LAB='{lab}'
ROOT="${{GOLAB_AUTOGRADER_ROOT:-/autograder}}"
GOLAB="${{GOLAB_BIN:-$ROOT/source/golab/target/release/golab}}"
RESULTS="$ROOT/results/results.json"
export GOLAB_LABS="$ROOT/source/golab/labs"

mkdir -p "$ROOT/results"
rm -f "$RESULTS"
LOG="$(mktemp)"
# Gradescope keeps this script's output for the instructors.
"$GOLAB" check "$ROOT/submission" --lab "$LAB" --gradescope "$RESULTS" 2>&1 | tee "$LOG"
status="${{PIPESTATUS[0]}}"

if [ ! -s "$RESULTS" ]; then
    # JSON string contents from golab's last output: valid UTF-8, no control
    # characters but line breaks and tabs, then backslashes, quotes and those escaped.
    utf8() {{ if command -v iconv >/dev/null 2>&1; then iconv -c -f UTF-8 -t UTF-8; else cat; fi; }}
    tail="$(tail -c 6000 "$LOG" | utf8 | tr -d '\000-\010\013\014\016-\037')"
    msg="The autograder could not grade this submission: golab stopped (exit status $status) without writing a result.
This is most likely a problem on the course's side, not with your answers: please tell the course staff.

The end of golab's output:
$tail"
    msg="${{msg//'\'/'\\'}}"
    msg="${{msg//'"'/'\"'}}"
    msg="${{msg//$'\n'/'\n'}}"
    msg="${{msg//$'\r'/'\r'}}"
    msg="${{msg//$'\t'/'\t'}}"
    printf '{{"score": 0, "output": "%s", "output_format": "text", "tests": []}}\n' "$msg" >"$RESULTS"
    echo "run_autograder: golab wrote no results.json (exit status $status); wrote one with score 0" >&2
fi
rm -f "$LOG"
exit 0
"#
    )
}

/// Adds every regular file under `dir` (sorted, recursively) to the zip as `prefix/...`.
/// Links and other special files are left out.
fn add_tree(
    zip: &mut ZipWriter<Cursor<Vec<u8>>>,
    dir: &Path,
    prefix: &str,
    file: SimpleFileOptions,
    folder: SimpleFileOptions,
) -> Result<()> {
    zip.add_directory(format!("{prefix}/"), folder)?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            bail!("{} has a name that is not UTF-8", e.path().display());
        };
        let kind = e.file_type()?;
        let path = format!("{prefix}/{name}");
        if kind.is_dir() {
            add_tree(zip, &e.path(), &path, file, folder)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(e.path())
                .with_context(|| format!("cannot read {}", e.path().display()))?;
            zip.start_file(path, file)?;
            zip.write_all(&bytes)?;
        }
    }
    Ok(())
}

/// Writes the Gradescope autograder zip for `lab_name` to `out`: `setup.sh` and
/// `run_autograder` (mode 0755) at the root, and `golab/` with golab's sources (`sources`:
/// paths relative to the crate root and their bytes; the binary passes the ones build.rs
/// embedded) and `labs_dir`'s labs as `golab/labs/`, so a lab of the course's own
/// (`GOLAB_LABS`) is packed as well.
///
/// Sources rather than the running binary: Gradescope's image is Ubuntu on x86_64, while
/// the instructor's golab may be a macOS build, or linked against a newer glibc than
/// that image has; built there by setup.sh, golab fits the image it runs on.
pub fn package(
    lab_name: &str,
    sources: &[(&str, &[u8])],
    labs_dir: &Path,
    out: &Path,
) -> Result<()> {
    if !valid_lab_name(lab_name) {
        bail!(
            "'{lab_name}' is not a lab name golab can package: use letters, digits and '-' (e.g. runq-order)"
        );
    }
    let lab_yaml = labs_dir.join(lab_name).join("lab.yaml");
    if !lab_yaml.is_file() {
        bail!(
            "no lab '{lab_name}' in {}: {} does not exist",
            labs_dir.display(),
            lab_yaml.display()
        );
    }
    for f in ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs"] {
        if !sources.iter().any(|(p, _)| *p == f) {
            bail!("golab's sources given to pack have no {f}");
        }
    }

    let file = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let script = file.unix_permissions(0o755);
    let folder = file.unix_permissions(0o755);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("setup.sh", script)?;
    zip.write_all(setup_sh(lab_name).as_bytes())?;
    zip.start_file("run_autograder", script)?;
    zip.write_all(run_autograder(lab_name).as_bytes())?;
    zip.add_directory("golab/", folder)?;
    let mut sorted: Vec<&(&str, &[u8])> = sources.iter().collect();
    sorted.sort_by_key(|(p, _)| *p);
    let mut folders = std::collections::BTreeSet::new();
    for (path, bytes) in sorted {
        if path.starts_with('/') || path.split('/').any(|c| c == ".." || c.is_empty()) {
            bail!("'{path}' is not a path inside golab's sources");
        }
        // Each folder once, before its first file.
        let mut prefix = String::new();
        for part in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            prefix.push_str(part);
            prefix.push('/');
            if folders.insert(prefix.clone()) {
                zip.add_directory(format!("golab/{prefix}"), folder)?;
            }
        }
        zip.start_file(format!("golab/{path}"), file)?;
        zip.write_all(bytes)?;
    }
    add_tree(&mut zip, labs_dir, "golab/labs", file, folder)?;
    let bytes = zip.finish()?.into_inner();
    crate::files::write_atomic(out, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Read;
    use std::path::PathBuf;
    use std::process::Command;

    /// Fake golab sources, and a labs folder with a lab.
    const SOURCES: &[(&str, &[u8])] = &[
        ("Cargo.toml", b"[package]\nname = \"golab\"\n"),
        ("Cargo.lock", b"version = 4\n"),
        ("src/main.rs", b"fn main() {}\n"),
        ("src/lib.rs", b""),
        ("src/grade/model.rs", b"// model\n"),
    ];
    fn labs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for (f, body) in [
            ("runq-order/lab.yaml", "name: runq-order\n"),
            ("runq-order/main.go", "package main\n"),
        ] {
            fs::create_dir_all(p.join(f).parent().unwrap()).unwrap();
            fs::write(p.join(f), body).unwrap();
        }
        d
    }

    fn entries(zip: &Path) -> Vec<(String, u32, String)> {
        let mut a = zip::ZipArchive::new(fs::File::open(zip).unwrap()).unwrap();
        (0..a.len())
            .map(|i| {
                let mut f = a.by_index(i).unwrap();
                let name = f.name().unwrap().to_string();
                let mode = f.unix_mode().unwrap_or(0) & 0o777;
                let mut body = String::new();
                if !f.is_dir() {
                    f.read_to_string(&mut body).unwrap();
                }
                (name, mode, body)
            })
            .collect()
    }

    fn bash_ok(script: &str) -> bool {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        fs::write(&p, script).unwrap();
        Command::new("bash")
            .arg("-n")
            .arg(&p)
            .status()
            .unwrap()
            .success()
    }

    #[test]
    fn zip_has_the_scripts_and_the_sources() {
        let labs = labs();
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("autograder.zip");
        package("runq-order", SOURCES, labs.path(), &out).unwrap();
        let e = entries(&out);
        let names: Vec<&str> = e.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "setup.sh",
                "run_autograder",
                "golab/",
                "golab/Cargo.lock",
                "golab/Cargo.toml",
                "golab/src/",
                "golab/src/grade/",
                "golab/src/grade/model.rs",
                "golab/src/lib.rs",
                "golab/src/main.rs",
                "golab/labs/",
                "golab/labs/runq-order/",
                "golab/labs/runq-order/lab.yaml",
                "golab/labs/runq-order/main.go",
            ]
        );
        let get = |n: &str| e.iter().find(|(name, _, _)| name == n).unwrap();
        assert_eq!(get("setup.sh").1, 0o755);
        assert_eq!(get("run_autograder").1, 0o755);
        assert_eq!(get("golab/src/main.rs").1, 0o644);
        assert_eq!(get("golab/src/main.rs").2, "fn main() {}\n");
        let setup = &get("setup.sh").2;
        let run = &get("run_autograder").2;
        assert!(
            setup.starts_with("#!/usr/bin/env bash\n") && run.starts_with("#!/usr/bin/env bash\n")
        );
        assert!(bash_ok(setup), "bash -n rejects setup.sh:\n{setup}");
        assert!(bash_ok(run), "bash -n rejects run_autograder:\n{run}");
        assert!(
            setup.contains("apt-get install -y golang-go delve gdb binutils bubblewrap strace")
        );
        assert!(setup.contains("cargo build --release --locked"));
        assert!(run.contains("LAB='runq-order'"));
        assert!(
            run.contains(
                r#""$GOLAB" check "$ROOT/submission" --lab "$LAB" --gradescope "$RESULTS""#
            )
        );
    }

    #[test]
    fn min_rust_is_cargo_tomls_rust_version() {
        let (major, minor) = MIN_RUST;
        assert_eq!(env!("CARGO_PKG_RUST_VERSION"), format!("{major}.{minor}"));
    }

    #[test]
    fn lab_names_cannot_inject_shell() {
        let labs = labs();
        let d = tempfile::tempdir().unwrap();
        for bad in [
            "",
            "-x",
            "a;b",
            "$(reboot)",
            "a b",
            "../runq-order",
            "x'y",
            "lab\n",
            "ünï",
        ] {
            let err = package(bad, SOURCES, labs.path(), &d.path().join("a.zip")).unwrap_err();
            assert!(err.to_string().contains("not a lab name"), "{bad:?}: {err}");
        }
        assert!(valid_lab_name("runq-order") && valid_lab_name("Lab2"));
        let err = package("nope", SOURCES, labs.path(), &d.path().join("a.zip")).unwrap_err();
        assert!(err.to_string().contains("no lab 'nope'"), "{err}");
        let err = package(
            "runq-order",
            &SOURCES[1..],
            labs.path(),
            &d.path().join("a.zip"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no Cargo.toml"), "{err}");
        let evil: &[(&str, &[u8])] = &[("../x", b"")];
        let err = package(
            "runq-order",
            &[SOURCES, evil].concat(),
            labs.path(),
            &d.path().join("a.zip"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a path inside"), "{err}");
        assert!(!d.path().join("a.zip").exists());
    }

    /// Runs run_autograder in a fake /autograder with a stub golab.
    fn run_with_stub(stub: &str) -> (PathBuf, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("submission")).unwrap();
        let script = root.path().join("run_autograder");
        fs::write(&script, run_autograder("runq-order")).unwrap();
        let golab = root.path().join("golab-stub");
        fs::write(&golab, stub).unwrap();
        fs::set_permissions(&golab, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let status = Command::new("bash")
            .arg(&script)
            .env("GOLAB_AUTOGRADER_ROOT", root.path())
            .env("GOLAB_BIN", &golab)
            .env("STUB_ARGS", root.path().join("args"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        (root.path().join("results/results.json"), root)
    }

    #[test]
    fn run_autograder_passes_the_lab_and_keeps_golabs_results() {
        let stub = "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > \"$STUB_ARGS\"\necho \"$GOLAB_LABS\" >> \"$STUB_ARGS\"\necho '{\"score\": 7}' > \"$6\"\n";
        let (results, root) = run_with_stub(stub);
        let args = fs::read_to_string(root.path().join("args")).unwrap();
        let r = root.path().display();
        assert_eq!(
            args,
            format!(
                "check\n{r}/submission\n--lab\nrunq-order\n--gradescope\n{r}/results/results.json\n{r}/source/golab/labs\n"
            )
        );
        assert_eq!(fs::read_to_string(results).unwrap(), "{\"score\": 7}\n");
    }

    #[test]
    fn run_autograder_writes_a_result_when_golab_fails() {
        let stub = "#!/usr/bin/env bash\nprintf 'error: cannot \"parse\" C:\\\\path\\tx\\r\\n\\001\\033[31mred ü\\n' >&2\nexit 3\n";
        let (results, _root) = run_with_stub(stub);
        let text = fs::read_to_string(&results).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(v["score"], serde_json::json!(0));
        let out = v["output"].as_str().unwrap();
        assert!(out.contains("exit status 3"), "{out}");
        assert!(
            out.contains("error: cannot \"parse\" C:\\path\tx\r\n[31mred ü"),
            "{out:?}"
        );
    }

    #[test]
    fn run_autograder_writes_a_result_when_golab_is_missing() {
        let root = tempfile::tempdir().unwrap();
        let script = root.path().join("run_autograder");
        fs::write(&script, run_autograder("runq-order")).unwrap();
        let status = Command::new("bash")
            .arg(&script)
            .env("GOLAB_AUTOGRADER_ROOT", root.path())
            .env_remove("GOLAB_BIN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let v: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(root.path().join("results/results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(v["score"], serde_json::json!(0));
        assert!(v["output"].as_str().unwrap().contains("exit status 127"));
    }
}

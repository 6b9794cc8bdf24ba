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

/// setup.sh installs the course's pinned toolchain (toolchains.txt's `pin`) through
/// golab's provisioner (`golab/provision/lab-vm.sh`): Go from the official tarball,
/// SHA-256 checked, and dlv.
pub fn setup_sh(lab: &str) -> String {
    let (major, minor) = MIN_RUST;
    let pin = crate::pins::course();
    let (pinned_go, pinned_dlv, go_sha) = (pin.go.version, pin.dlv, pin.go.tarball_sha256);
    format!(
        r#"#!/usr/bin/env bash
# Gradescope autograder setup for the golab lab '{lab}' (written by golab).
# Gradescope runs this once, as root, when it builds the autograder's image; the zip
# is unpacked in /autograder/source. It installs the tools golab drives, the course's
# pinned toolchain (Go {pinned_go} from the official tarball, SHA-256 {go_sha},
# and dlv v{pinned_dlv}), golab itself, and checks whether golab's sandbox can start.
# The provisioner honours GOLAB_GO_BASE_URL, GOLAB_GO_SHA256, GOLAB_DLV_SOURCE (and its
# GOLAB_DLV_TARBALL_URL/_SHA256) and GOPROXY: golab's tests set them; Gradescope does not.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SRC="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"

apt-get update
apt-get install -y --no-install-recommends gdb binutils bubblewrap strace procps \
    ca-certificates curl

# Go {pinned_go} into /usr/local/go and dlv v{pinned_dlv} into /usr/local/bin (not the
# image's golang-go: Ubuntu 22.04 has 1.18).
GOLAB_GO_VERSION={pinned_go} GOLAB_DLV_VERSION={pinned_dlv} \
    GOLAB_GO_SHA256="${{GOLAB_GO_SHA256:-{go_sha}}}" \
    bash "$SRC/golab/provision/lab-vm.sh"
export PATH="/usr/local/go/bin:/usr/local/bin:$PATH"
go version
dlv version

# golab: the binary in the zip when it runs on this image, else built from the sources.
if [ -x "$SRC/golab/bin/golab" ] && "$SRC/golab/bin/golab" --version >/dev/null 2>&1; then
    install -m 0755 "$SRC/golab/bin/golab" /usr/local/bin/golab
else
    apt-get install -y --no-install-recommends build-essential
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
    (cd "$SRC/golab" && cargo build --release --locked)
    install -m 0755 "$SRC/golab/target/release/golab" /usr/local/bin/golab
fi
golab --version
# Can the sandbox start? (Gradescope's container usually blocks user namespaces:
# run_autograder then grades with the isolation that remains, and says so.)
golab gradescope probe
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
# The student's id and the submission's time come from /autograder/submission_metadata.json,
# the course's seed from golab-seed.txt beside this script. golab writes results.json
# itself; if it leaves none, this script writes one with score 0 and golab's last output.
# When the sandbox cannot start (user namespaces blocked), golab grades with the
# isolation that remains and says so in results.json's output.
# GOLAB_AUTOGRADER_ROOT and GOLAB_BIN exist only to test this script elsewhere.
set -uo pipefail
LAB='{lab}'
ROOT="${{GOLAB_AUTOGRADER_ROOT:-/autograder}}"
GOLAB="${{GOLAB_BIN:-/usr/local/bin/golab}}"
RESULTS="$ROOT/results/results.json"
export GOLAB_LABS="$ROOT/source/golab/labs"
export PATH="/usr/local/go/bin:/usr/local/bin:$PATH"

mkdir -p "$ROOT/results"
rm -f "$RESULTS"
LOG="$(mktemp)"
args=(check "$ROOT/submission" --lab "$LAB" --gradescope "$RESULTS" --fallback-isolation)
if [ -f "$ROOT/submission_metadata.json" ]; then
    args+=(--gradescope-metadata "$ROOT/submission_metadata.json")
fi
if [ -f "$ROOT/source/golab-seed.txt" ]; then
    args+=("--seed=$(cat "$ROOT/source/golab-seed.txt")")
fi
# Gradescope keeps this script's output for the instructors.
"$GOLAB" "${{args[@]}}" 2>&1 | tee "$LOG"
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

/// What golab reads of Gradescope's `/autograder/submission_metadata.json`
/// (https://gradescope-autograders.readthedocs.io/en/latest/submission_metadata/):
/// `users[]` (`email`, `id`, `name`, and `sid` where the course has student ids) and
/// `created_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub student: String,
    pub created_at: Option<i64>,
}

impl Metadata {
    pub fn read(path: &Path) -> Result<Metadata> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Metadata::parse(&text).with_context(|| format!("{}", path.display()))
    }

    /// The student id is the first user's `sid`, else the part of their email before
    /// the @, else their Gradescope id: the roster given to `golab assign` must use the
    /// same ids.
    pub fn parse(text: &str) -> Result<Metadata> {
        let v: serde_json::Value =
            serde_json::from_str(text).context("not Gradescope's submission metadata (JSON)")?;
        let Some(user) = v["users"].as_array().and_then(|u| u.first()) else {
            bail!("no users[] in the submission metadata");
        };
        let ok = |s: &str| super::variant::check_student_id(s).is_ok();
        let sid = user["sid"].as_str().map(str::trim).filter(|s| ok(s));
        let email = user["email"]
            .as_str()
            .and_then(|e| e.split('@').next())
            .filter(|s| ok(s));
        let id = match &user["id"] {
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::String(s) if ok(s) => Some(s.clone()),
            _ => None,
        };
        let Some(student) = sid.map(str::to_string).or(email.map(str::to_string)).or(id) else {
            bail!("the first user in the submission metadata has no usable sid, email or id");
        };
        let created_at = v["created_at"]
            .as_str()
            .and_then(|t| super::gradebook::parse_time(t).ok());
        Ok(Metadata {
            student,
            created_at,
        })
    }
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
/// (`GOLAB_LABS`) is packed as well. With `seed`, the course's seed (`golab-seed.txt`,
/// root's only); with `binary`, a golab binary (`golab/bin/golab`) that setup.sh installs
/// when it runs on the image, and otherwise builds from the sources.
///
/// Sources as well as the binary: Gradescope's image is Ubuntu on x86_64, while the
/// instructor's golab may be a macOS build, or linked against a newer glibc than that
/// image has; built there by setup.sh, golab fits the image it runs on.
pub fn package(
    lab_name: &str,
    seed: Option<&str>,
    binary: Option<&Path>,
    sources: &[(&str, &[u8])],
    labs_dir: &Path,
    out: &Path,
) -> Result<()> {
    if let Some(s) = seed
        && (s.is_empty() || s.contains(['\n', '\r', '\0']))
    {
        bail!("the seed must be one line of text");
    }
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
    if let Some(seed) = seed {
        // Root's only: run_autograder (root) reads it; a student's program, run as a uid
        // of its own, cannot.
        zip.start_file("golab-seed.txt", file.unix_permissions(0o600))?;
        zip.write_all(format!("{seed}\n").as_bytes())?;
    }
    zip.add_directory("golab/", folder)?;
    if let Some(b) = binary {
        zip.add_directory("golab/bin/", folder)?;
        zip.start_file("golab/bin/golab", script)?;
        zip.write_all(&std::fs::read(b).with_context(|| format!("cannot read {}", b.display()))?)?;
    }
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
        package("runq-order", None, None, SOURCES, labs.path(), &out).unwrap();
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
        // Not the image's Go or delve: the course's pins.
        let apt: Vec<&str> = setup
            .lines()
            .filter(|l| l.contains("apt-get install"))
            .collect();
        assert!(
            !apt.is_empty()
                && apt
                    .iter()
                    .all(|l| !l.contains("golang") && !l.contains("delve")),
            "{apt:?}"
        );
        assert!(
            setup.contains("provision/lab-vm.sh")
                && setup.contains("GOLAB_GO_VERSION=1.17.1 GOLAB_DLV_VERSION=1.9.1")
        );
        assert!(setup.contains("dab7d9c34361dc21ec237d584590d72500652e7c909bf082758fb63064fca0ef"));
        assert!(setup.contains("golab gradescope probe"));
        assert!(setup.contains("cargo build --release --locked"));
        assert!(run.contains("LAB='runq-order'"));
        assert!(
            run.contains(
                r#"args=(check "$ROOT/submission" --lab "$LAB" --gradescope "$RESULTS" --fallback-isolation)"#
            )
        );
    }

    #[test]
    fn min_rust_is_cargo_tomls_rust_version() {
        let (major, minor) = MIN_RUST;
        assert_eq!(env!("CARGO_PKG_RUST_VERSION"), format!("{major}.{minor}"));
    }

    #[test]
    fn the_student_comes_from_gradescopes_metadata() {
        // The documented example, trimmed.
        let doc = r#"{"id": 123456, "created_at": "2018-07-01T14:22:32.365935-07:00",
            "assignment": {"due_date": "2018-07-31T23:00:00.000000-07:00"},
            "users": [{"email": "student@example.com", "id": 1234, "name": "Student User"}]}"#;
        let m = Metadata::parse(doc).unwrap();
        assert_eq!(m.student, "student");
        assert_eq!(
            m.created_at,
            Some(crate::grade::gradebook::parse_time("2018-07-01T21:22:32Z").unwrap())
        );
        let with_sid = r#"{"users": [{"email": "x y@z", "id": 5, "name": "N", "sid": "s0042"}]}"#;
        assert_eq!(Metadata::parse(with_sid).unwrap().student, "s0042");
        let only_id = r#"{"users": [{"email": "../@z", "id": 5}]}"#;
        assert_eq!(Metadata::parse(only_id).unwrap().student, "5");
        assert!(Metadata::parse(r#"{"users": []}"#).is_err());
        assert!(Metadata::parse("nope").is_err());
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
            let err = package(
                bad,
                None,
                None,
                SOURCES,
                labs.path(),
                &d.path().join("a.zip"),
            )
            .unwrap_err();
            assert!(err.to_string().contains("not a lab name"), "{bad:?}: {err}");
        }
        assert!(valid_lab_name("runq-order") && valid_lab_name("Lab2"));
        let err = package(
            "nope",
            None,
            None,
            SOURCES,
            labs.path(),
            &d.path().join("a.zip"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no lab 'nope'"), "{err}");
        let err = package(
            "runq-order",
            None,
            None,
            &SOURCES[1..],
            labs.path(),
            &d.path().join("a.zip"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no Cargo.toml"), "{err}");
        let evil: &[(&str, &[u8])] = &[("../x", b"")];
        let err = package(
            "runq-order",
            None,
            None,
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
        fs::create_dir_all(root.path().join("source")).unwrap();
        fs::write(root.path().join("submission_metadata.json"), "{}").unwrap();
        fs::write(root.path().join("source/golab-seed.txt"), "fall 2026: $x\n").unwrap();
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
                "check\n{r}/submission\n--lab\nrunq-order\n--gradescope\n{r}/results/results.json\n--fallback-isolation\n--gradescope-metadata\n{r}/submission_metadata.json\n--seed=fall 2026: $x\n{r}/source/golab/labs\n"
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
            // A path that cannot exist: the default (/usr/local/bin/golab) is a real golab
            // on machines the quick start installed, CI among them.
            .env("GOLAB_BIN", root.path().join("no-golab-here"))
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

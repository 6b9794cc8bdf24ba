//! An installed golab works from any folder: only the built binary is copied into a
//! fresh temporary folder, far from the clone, and the commands a student or a course
//! author types run from there with the real go, dlv, gdb and readelf. The labs come out
//! of the binary into a cache of the test's own; the Gradescope zip carries golab's
//! sources, byte for byte the clone's.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Away {
    dir: tempfile::TempDir,
    exe: PathBuf,
    cache: PathBuf,
    gocache: String,
}

impl Away {
    fn new() -> Away {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("bin/golab");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_golab"), &exe).unwrap();
        let cache = dir.path().join("cache");
        // go's own build cache stays where it is (XDG_CACHE_HOME would move it too).
        let gocache = Command::new("go")
            .args(["env", "GOCACHE"])
            .output()
            .unwrap();
        assert!(gocache.status.success(), "go env GOCACHE failed");
        let gocache = String::from_utf8(gocache.stdout)
            .unwrap()
            .trim()
            .to_string();
        Away {
            dir,
            exe,
            cache,
            gocache,
        }
    }

    fn work(&self) -> PathBuf {
        let w = self.dir.path().join("somewhere/else");
        std::fs::create_dir_all(&w).unwrap();
        w
    }

    fn golab(&self, args: &[&str]) -> (Output, String, String) {
        // The copy was written by this process: a child another test thread forked while
        // the copy's file was open for writing holds that descriptor until its own exec,
        // and the kernel refuses to run a file open for writing (ETXTBSY). That child
        // execs within moments; asking again is the known remedy.
        let mut tries = 0;
        let o = loop {
            match Command::new(&self.exe)
                .args(args)
                .current_dir(self.work())
                .env_remove("GOLAB_LABS")
                .env("XDG_CACHE_HOME", &self.cache)
                .env("GOCACHE", &self.gocache)
                .output()
            {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.unwrap(),
            }
        };
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (o, out, err)
    }

    /// The one folder the embedded labs were written to.
    fn labs_copy(&self) -> PathBuf {
        let parent = self.cache.join("golab/labs");
        let dirs: Vec<PathBuf> = std::fs::read_dir(&parent)
            .unwrap_or_else(|e| panic!("{}: {e}", parent.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs[0].clone()
    }
}

fn clone() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn labs_reference_explain_and_an_unknown_lab_work_away_from_the_clone() {
    let a = Away::new();
    let (o, out, err) = a.golab(&["labs"]);
    assert!(o.status.success(), "{out}{err}");
    let names: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    // Every lab of the clone, and nothing else.
    let mut bundled: Vec<String> = std::fs::read_dir(clone().join("labs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("lab.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    bundled.sort();
    assert!(bundled.len() >= 3, "{bundled:?}");
    assert_eq!(names, bundled);
    // The copy in the cache is the clone's labs, file for file.
    let copy = a.labs_copy();
    for lab in &bundled {
        for f in std::fs::read_dir(clone().join("labs").join(lab)).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                let rel = f.strip_prefix(clone().join("labs")).unwrap();
                assert_eq!(
                    std::fs::read(&f).unwrap(),
                    std::fs::read(copy.join(rel)).unwrap(),
                    "{}",
                    rel.display()
                );
            }
        }
    }

    let (o, out, err) = a.golab(&["reference", "startup-trace", "--go", "1.17.1"]);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("runtime.rt0_go") && out.contains("runtime.schedinit"),
        "{out}"
    );

    let (o, out, err) = a.golab(&["explain", "runq-order", "--n", "3"]);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("runnext"), "{out}");

    let (o, out, err) = a.golab(&["run", "no-such-lab"]);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains(&format!("bundled labs: {}", bundled.join(", "))),
        "{err}"
    );
}

#[test]
fn run_startup_trace_passes_away_from_the_clone() {
    let a = Away::new();
    let json = a.dir.path().join("run.json");
    let (o, out, err) = a.golab(&[
        "run",
        "startup-trace",
        "--json-file",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{out}{err}");
    let last = out.lines().last().unwrap();
    let (earned, possible) = last
        .strip_prefix("Score: ")
        .unwrap()
        .split_once('/')
        .unwrap();
    assert_eq!(earned, possible, "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["observation"].is_object(), "{v}");
    // Nothing was written into the folder it ran from.
    assert_eq!(std::fs::read_dir(a.work()).unwrap().count(), 0);
}

#[test]
fn gradescope_package_and_render_work_away_from_the_clone() {
    let a = Away::new();
    let zip_path = a.dir.path().join("autograder.zip");
    let (o, out, err) = a.golab(&[
        "gradescope",
        "package",
        "--lab",
        "runq-order",
        "-o",
        zip_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{out}{err}");
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut seen = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        if f.is_dir() {
            continue;
        }
        let Some(rel) = name.strip_prefix("golab/") else {
            assert!(name == "setup.sh" || name == "run_autograder", "{name}");
            continue;
        };
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        // The binary that packed the zip goes in too, for setup.sh to install.
        let from = if rel == "bin/golab" {
            a.exe.clone()
        } else {
            clone().join(rel)
        };
        assert_eq!(
            bytes,
            std::fs::read(&from).unwrap(),
            "{rel} differs from {}",
            from.display()
        );
        seen.push(rel.to_string());
    }
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "Vagrantfile.tmpl",
        "provision/lab-vm.sh",
        "src/main.rs",
        "src/lib.rs",
        "src/embedded.rs",
        "src/machine/cloudinit/user-data.yaml.j2",
        "labs/runq-order/lab.yaml",
        "labs/startup-trace/variant/main.go.tmpl",
        "tools/goshape/main.go",
        "tools/goshape/go.mod",
    ] {
        assert!(seen.iter().any(|s| s == f), "{f} not packed: {seen:?}");
    }
    assert!(
        !seen
            .iter()
            .any(|s| s.starts_with("target/") || s.starts_with("tests/")),
        "{seen:?}"
    );

    let out_dir = a.dir.path().join("vm");
    let (o, out, err) = a.golab(&[
        "render",
        "--provider",
        "libvirt",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{out}{err}");
    let vagrantfile = std::fs::read_to_string(out_dir.join("Vagrantfile")).unwrap();
    assert_eq!(
        std::fs::read(out_dir.join("provision/lab-vm.sh")).unwrap(),
        std::fs::read(clone().join("provision/lab-vm.sh")).unwrap()
    );
    // The labs synced into the VM are the copy written from the binary.
    let copy = std::fs::canonicalize(a.labs_copy()).unwrap();
    assert!(
        vagrantfile.contains(copy.to_str().unwrap()),
        "{} not in:\n{vagrantfile}",
        copy.display()
    );
    assert!(copy.join("startup-trace/lab.yaml").is_file());
}

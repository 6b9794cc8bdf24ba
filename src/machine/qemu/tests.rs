//! The qemu provider's tests: unit tests of each part, and the ignored real-VM test
//! (scripts/test-vm.sh runs it).
#![cfg(test)]

use super::accel::*;
use super::cidata::*;
use super::launch::*;
use super::process::*;
use super::ready::*;
use super::state::*;
use super::*;
use crate::exec;
use crate::sys;
use anyhow::ensure;
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Stdio;

fn opts() -> UpOptions {
    let mut o = UpOptions::new(
        "/img/debian-12-golab.img",
        "/cache/go1.19.8.linux-amd64.tar.gz",
    );
    o.go_version = "1.19.8".into();
    o.go_sha256 = "ab".repeat(32);
    o.dlv_source = DlvSource::Apt;
    o
}

fn made() -> Made {
    Made {
        image: "/img/base.img".into(),
        image_format: "qcow2".into(),
        kernel: Some("/img/base.vmlinuz".into()),
        initrd: Some("/img/base.initrd".into()),
        go_version: "1.19.8".into(),
        go_sha256: "ab".repeat(32),
        dlv_source: DlvSource::Apt,
        instance_id: "golab-lab-1".into(),
        baked: None,
    }
}

#[test]
fn auto_accelerates_only_an_x86_64_host_and_probes_first() {
    assert_eq!(
        auto_plan("linux", "x86_64", true, false),
        AutoPlan::Probe(AccelUsed::Kvm)
    );
    assert_eq!(
        auto_plan("macos", "x86_64", false, true),
        AutoPlan::Probe(AccelUsed::Hvf)
    );
    let tcg = |p: AutoPlan| match p {
        AutoPlan::Tcg(why) => why,
        other => panic!("expected TCG, got {other:?}"),
    };
    assert!(tcg(auto_plan("linux", "x86_64", false, false)).contains("/dev/kvm"));
    assert!(tcg(auto_plan("macos", "x86_64", false, false)).contains("kern.hv_support"));
    // Apple Silicon has HVF, but not for an x86_64 guest.
    assert!(tcg(auto_plan("macos", "aarch64", false, true)).contains("Apple Silicon"));
    assert!(tcg(auto_plan("linux", "aarch64", true, false)).contains("aarch64"));
    assert!(tcg(auto_plan("freebsd", "x86_64", false, false)).contains("freebsd"));
}

#[test]
fn hvf_runs_with_the_host_cpu_and_short_deadlines() {
    let c = qemu_command(
        Path::new("/s/machines/lab1"),
        "lab1",
        &made(),
        &opts(),
        AccelUsed::Hvf,
        Ports {
            ssh: 40022,
            dlv: 40345,
        },
    );
    let args: Vec<String> = c
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let at = args.iter().position(|a| a == "-accel").unwrap();
    assert_eq!(args[at + 1..at + 4], ["hvf", "-cpu", "host"]);
    assert_eq!(read_accel_name("hvf"), Some(AccelUsed::Hvf));
    assert!(Deadlines::for_accel(AccelUsed::Hvf).ssh < Deadlines::for_accel(AccelUsed::Tcg).ssh);
}

#[test]
fn a_half_made_machine_is_cleaned_and_a_provisioned_one_resumed() {
    assert_eq!(plan(None, false), UpStep::Create);
    assert_eq!(plan(Some(Stage::Creating), false), UpStep::Clean);
    assert_eq!(plan(Some(Stage::Created), false), UpStep::Clean);
    assert_eq!(
        plan(Some(Stage::Booting), false),
        UpStep::Clean,
        "a first boot that died may have run half the provisioner"
    );
    assert_eq!(plan(Some(Stage::Booting), true), UpStep::Wait);
    assert_eq!(plan(Some(Stage::Provisioned), true), UpStep::Wait);
    assert_eq!(plan(Some(Stage::Provisioned), false), UpStep::Resume);
    assert_eq!(plan(Some(Stage::Ready), false), UpStep::Resume);
    assert_eq!(plan(Some(Stage::Ready), true), UpStep::AlreadyRunning);
    assert_eq!(plan(None, true), UpStep::Clean);
    for s in [
        Stage::Creating,
        Stage::Created,
        Stage::Booting,
        Stage::Provisioned,
        Stage::Ready,
    ] {
        assert_eq!(Stage::parse(&format!("{}\n", s.as_str())), Some(s));
    }
}

#[test]
fn without_a_mirror_asked_the_guests_apt_is_left_alone() {
    let s = render_seed("lab1", "golab-lab1-1", "ssh-ed25519 AAAA k", None, &opts()).unwrap();
    let v: serde_norway::Value = serde_norway::from_str(&s.user_data).unwrap();
    let boot = v["bootcmd"].as_sequence().unwrap();
    assert_eq!(boot.len(), 1, "{boot:?}");
    let boot = serde_norway::to_string(&boot).unwrap();
    assert!(
        !boot.contains("golab-apt")
            && !boot.contains("golab-hosts")
            && boot.contains("trans=virtio"),
        "{boot}"
    );
}

/// lab1's seed with a host mirror, as the seed tests read it.
fn seed_with_mirror() -> Seed {
    let m = Mirror {
        uri: "http://mirror.example/debian".into(),
        host: "mirror.example".into(),
        ip: "192.0.2.7".into(),
    };
    render_seed(
        "lab1",
        "golab-lab1-1",
        "ssh-ed25519 AAAA golab-lab1",
        Some(&m),
        &opts(),
    )
    .unwrap()
}

#[test]
fn golab_env_is_one_line_a_value_and_refuses_line_breaks() {
    let s = seed_with_mirror();
    let lines: Vec<&str> = s.golab_env.lines().collect();
    assert_eq!(
        lines,
        [
            "instance_id=golab-lab1-1",
            "hostname=golab-lab1",
            "user=golab",
            "ssh_key=ssh-ed25519 AAAA golab-lab1",
            "mirror_ip=192.0.2.7",
            "mirror_host=mirror.example",
            "mirror_uri=http://mirror.example/debian",
        ]
    );
    let plain = render_seed("lab1", "i-1", "ssh-ed25519 AAAA k", None, &opts()).unwrap();
    assert!(!plain.golab_env.contains("mirror"));
    // A second line would be a second KEY=VALUE to the guest's script.
    let e = golab_env("golab-x", "i-1", "ssh-ed25519 AAAA k\nuser=root", None).unwrap_err();
    assert!(format!("{e:#}").contains("line break"), "{e:#}");
}

#[test]
fn user_data_is_yaml_with_the_key_the_mirror_and_the_pins() {
    let s = seed_with_mirror();
    assert!(s.user_data.starts_with("#cloud-config\n"));
    let v: serde_norway::Value = serde_norway::from_str(&s.user_data).unwrap();
    assert_eq!(v["users"][0]["name"], "golab");
    assert_eq!(
        v["users"][0]["ssh_authorized_keys"][0],
        "ssh-ed25519 AAAA golab-lab1"
    );
    assert_eq!(v["users"][0]["sudo"], "ALL=(ALL) NOPASSWD:ALL");
    assert_eq!(
        v["ssh_genkeytypes"],
        serde_norway::Value::Sequence(vec!["ed25519".into()])
    );
    let boot = serde_norway::to_string(&v["bootcmd"]).unwrap();
    assert!(
        boot.contains("192.0.2.7")
            && boot.contains("mirror.example")
            && boot.contains("trans=virtio"),
        "{boot}"
    );
    let files = v["write_files"].as_sequence().unwrap();
    let env = files
        .iter()
        .find(|f| f["path"] == "/etc/golab/provision.env")
        .unwrap()["content"]
        .as_str()
        .unwrap();
    assert!(
        env.contains("GOLAB_GO_VERSION=1.19.8\n")
            && env.contains("GOLAB_DLV_SOURCE=apt\n")
            && env.contains(&"ab".repeat(32)),
        "{env}"
    );
    let prov = files
        .iter()
        .find(|f| f["path"] == "/usr/local/lib/golab/lab-vm.sh")
        .unwrap()["content"]
        .as_str()
        .unwrap();
    assert_eq!(prov, PROVISIONER, "the provisioner arrives byte for byte");
    let meta: serde_norway::Value = serde_norway::from_str(&s.meta_data).unwrap();
    assert_eq!(meta["instance-id"], "golab-lab1-1");
    assert_eq!(meta["local-hostname"], "golab-lab1");
}

#[test]
fn the_qemu_command_forwards_ssh_and_dlv_on_loopback_and_shares_the_cache_read_only() {
    let c = qemu_command(
        Path::new("/s/machines/lab1"),
        "lab1",
        &made(),
        &opts(),
        AccelUsed::Tcg,
        Ports {
            ssh: 40022,
            dlv: 40345,
        },
    );
    let a: Vec<String> = c
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let line = a.join(" ");
    assert!(
        line.contains("hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40345-:2345"),
        "{line}"
    );
    assert!(line.contains("-accel tcg,thread=multi"));
    assert!(line.contains("path=/s/machines/lab1/share,security_model=none,readonly=on"));
    assert!(line.contains("mount_tag=golabcache"));
    assert!(line.contains("-pidfile /s/machines/lab1/qemu.pid -daemonize"));
    assert!(
        line.contains("-kernel /img/base.vmlinuz -initrd /img/base.initrd -append root=/dev/vda")
    );
    assert!(!line.contains("10.0.2.2"));
}

#[test]
fn the_mirror_is_read_from_apt_sources() {
    let deb822 = "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm\n";
    assert_eq!(
        mirror_uri(deb822, "").as_deref(),
        Some("http://mirror.example/debian")
    );
    assert_eq!(
        mirror_uri(
            "",
            "# x\ndeb [arch=amd64] https://m.example:8443/debian bookworm main\n"
        )
        .as_deref(),
        Some("https://m.example:8443/debian")
    );
    assert_eq!(mirror_uri("", ""), None);
    assert_eq!(
        uri_host_port("http://mirror.example/debian"),
        Some(("mirror.example".into(), 80))
    );
    assert_eq!(
        uri_host_port("https://m.example:8443/debian"),
        Some(("m.example".into(), 8443))
    );
}

#[test]
fn machine_names_become_host_names() {
    assert!(check_name("lab1").is_ok() && check_name("go-117").is_ok());
    for bad in ["", "-x", "Lab", "a/b", "..", "a_b", &"x".repeat(41)] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn tools_are_checked_against_the_pins() {
    let out = "go version go1.19.8 linux/amd64\n---\nDelve Debugger\nVersion: 1.20.2\nBuild: $Id$\n---\nGNU gdb (Debian 13.1-3) 13.1\n---\nGNU readelf (GNU Binutils for Debian) 2.40\n";
    let t = check_tools(out, &made()).unwrap();
    assert_eq!(t.dlv, "1.20.2");
    let mut m = made();
    m.dlv_source = DlvSource::GoInstall("v1.9.1".into());
    assert!(format!("{:#}", check_tools(out, &m).unwrap_err()).contains("not v1.9.1"));
    m.go_version = "1.17.1".into();
    assert!(format!("{:#}", check_tools(out, &m).unwrap_err()).contains("not go1.17.1"));
}

#[test]
fn a_baked_image_is_not_provisioned_and_its_tools_must_be_the_manifests() {
    let out = "go version go1.19.8 linux/amd64\n---\nDelve Debugger\nVersion: 1.20.2\nBuild: $Id$\n---\nGNU gdb (Debian 13.1-3) 13.1\n---\nGNU readelf (GNU Binutils for Debian) 2.40\n";
    let mut m = made();
    let t = check_tools(out, &m).unwrap();
    m.baked = Some(t.clone());
    assert_eq!(check_tools(out, &m).unwrap(), t);
    m.baked.as_mut().unwrap().gdb = "GNU gdb (Debian 12.1-4) 12.1".into();
    let e = format!("{:#}", check_tools(out, &m).unwrap_err());
    assert!(e.contains("gdb answers") && e.contains("manifest"), "{e}");
    let mirror = Mirror {
        uri: "http://mirror.example/debian".into(),
        host: "mirror.example".into(),
        ip: "192.0.2.7".into(),
    };
    let mut o = opts();
    let provisioned = render_seed("lab1", "i", "ssh-ed25519 A", Some(&mirror), &o).unwrap();
    let v: serde_norway::Value = serde_norway::from_str(&provisioned.user_data).unwrap();
    assert!(v["runcmd"].is_sequence());
    o.baked = Some(t);
    let baked = render_seed("lab1", "i", "ssh-ed25519 A", Some(&mirror), &o).unwrap();
    let v: serde_norway::Value = serde_norway::from_str(&baked.user_data).unwrap();
    assert!(v["runcmd"].is_null(), "a baked image runs no provisioner");
    assert_eq!(v["users"][0]["name"], "golab");
}

#[test]
fn ports_are_two_distinct_free_ones_and_kept_when_still_free() {
    let p = choose_ports(None).unwrap();
    assert_ne!(p.ssh, p.dlv);
    assert_eq!(choose_ports(Some(p)).unwrap(), p);
    let hold = TcpListener::bind(("127.0.0.1", p.ssh)).unwrap();
    assert_ne!(choose_ports(Some(p)).unwrap().ssh, p.ssh);
    drop(hold);
}

#[test]
fn status_of_a_missing_machine_and_a_stale_pid_file() {
    let d = tempfile::tempdir().unwrap();
    let q = Qemu::with_state_root(d.path());
    let s = q.status("lab1").unwrap();
    assert!(!s.exists && !s.running());
    let dir = q.dir("lab1");
    std::fs::create_dir_all(&dir).unwrap();
    // pid 1 is alive but is not this machine's QEMU.
    std::fs::write(dir.join("qemu.pid"), "1\n").unwrap();
    write_stage(&dir, Stage::Ready).unwrap();
    let s = q.status("lab1").unwrap();
    assert!(
        s.exists && !s.running() && s.stage == Some(Stage::Ready),
        "{s}"
    );
    q.down("lab1").unwrap();
    q.destroy("lab1").unwrap();
    assert!(!dir.exists());
}

#[test]
fn an_up_that_cannot_make_the_machine_leaves_no_folder_behind() {
    let d = tempfile::tempdir().unwrap();
    let q = Qemu::with_state_root(d.path());
    // A folder left half-made by an earlier `up` is cleaned first.
    std::fs::create_dir_all(q.dir("lab1")).unwrap();
    write_stage(&q.dir("lab1"), Stage::Creating).unwrap();
    let mut o = opts();
    o.image = d.path().join("missing.img");
    o.quiet = true;
    let e = format!("{:#}", q.up("lab1", &o).unwrap_err());
    assert!(
        e.contains("no base image") && e.contains("vm-image.sh"),
        "{e}"
    );
    assert!(!q.dir("lab1").exists());
    assert!(q.up("Bad/Name", &o).is_err());
}

// ---- the real VM test --------------------------------------------------------------
// scripts/test-vm.sh builds the image and the tarball and runs this with --ignored.

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run scripts/test-vm.sh"))
}

struct Clock {
    rows: Vec<(String, Duration)>,
}

impl Clock {
    fn time<T>(&mut self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        eprintln!("vm-test: {what} ...");
        let t = Instant::now();
        let r = f();
        let took = t.elapsed();
        eprintln!(
            "vm-test: {what}: {} in {:.1}s",
            if r.is_ok() { "ok" } else { "FAILED" },
            took.as_secs_f64()
        );
        self.rows.push((what.to_string(), took));
        r
    }
}

/// Runs a command in the guest through a login shell (PATH from /etc/profile.d).
fn guest(q: &Qemu, name: &str, cmd: &str, timeout: Duration) -> Result<exec::Captured> {
    let mut c = q.ssh_command(name)?;
    c.arg("--")
        .arg(format!("bash -lc {}", super::super::shell_quote(cmd)));
    let out = exec::run(c, &format!("ssh {name}"), timeout)?;
    if !out.ok() {
        bail!(
            "`{cmd}` in {name} failed ({}):\n{}",
            out.status,
            out.combined()
        );
    }
    Ok(out)
}

/// JSON-RPC requests to dlv on one connection through the forwarded port (a headless
/// dlv without --accept-multiclient serves one client). The forward accepts before
/// dlv listens, and then closes: the first answer is retried until `limit`.
fn dlv_session(port: u16, requests: &[&str], limit: Duration) -> Result<Vec<serde_json::Value>> {
    let deadline = Instant::now() + limit;
    loop {
        let attempt = (|| -> Result<Vec<serde_json::Value>> {
            let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            let mut r = BufReader::new(&s);
            let mut answers = Vec::new();
            for req in requests {
                (&s).write_all(format!("{req}\n").as_bytes())?;
                let mut line = String::new();
                r.read_line(&mut line)?;
                if line.trim().is_empty() {
                    bail!("the connection closed without an answer to {req}");
                }
                answers.push(serde_json::from_str(&line)?);
            }
            Ok(answers)
        })();
        match attempt {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("dlv on 127.0.0.1:{port} did not answer")));
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

fn lab_opts() -> UpOptions {
    let mut o = UpOptions::new(env("GOLAB_VM_IMAGE"), env("GOLAB_VM_GO_TARBALL"));
    o.go_version = env("GOLAB_VM_GO_VERSION");
    o.go_sha256 = env("GOLAB_VM_GO_SHA256");
    // dlv built in the guest from its source tarball (shared in; the URL names it).
    o.dlv_source = DlvSource::source(
        &env("GOLAB_VM_DLV_VERSION"),
        &env("GOLAB_VM_DLV_SRC_URL"),
        &env("GOLAB_VM_DLV_SRC_SHA256"),
    )
    .unwrap();
    o.dlv_tarball = Some(env("GOLAB_VM_DLV_SRC").into());
    // The test image is Debian's, offline but for this host's mirror.
    o.apt_mirror = Some("host".into());
    o.cpus = 2;
    o.memory_mib = 2048;
    // GOLAB_VM_BAKED=NAME.manifest.json: machines from that baked image (what
    // scripts/test-vm.sh baked from nothing just before), so the suite provisions
    // from nothing once, not once per test.
    if let Ok(m) = std::env::var("GOLAB_VM_BAKED") {
        let cache = crate::download::Cache::from_env().unwrap();
        super::super::image::resolve(&m, None, &cache)
            .unwrap()
            .apply(&mut o);
    }
    o
}

/// QEMU processes (by their program's name) whose command line names `root`. Only
/// QEMU: scripts/test-vm.sh's own HTTP server serves from a folder under the same root
/// and lives until the script ends, and an ssh to a machine names its key there.
fn qemu_processes_under(root: &Path) -> Vec<u32> {
    let want = root.to_string_lossy().to_string();
    sys::proc::all()
        .into_iter()
        .filter(|p| pid_alive(*p))
        .filter(|p| {
            sys::proc::cmdline(*p).is_some_and(|c| {
                let program = c.split_whitespace().next().unwrap_or("");
                let name = program.rsplit('/').next().unwrap_or(program);
                name.starts_with("qemu-system") && c.contains(&want)
            })
        })
        .collect()
}

/// The leftover check sees a QEMU naming the state folder, and not the test script's
/// HTTP server serving from it (what made scripts/test-vm.sh fail with every machine
/// destroyed).
#[test]
fn the_leftover_check_sees_qemu_and_only_qemu() {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("qemu-system-x86_64");
    crate::files::copy_executable(Path::new("/bin/sh"), &fake).unwrap();
    let served = root.path().join("served");
    // Both wait in the shell's own `read` on a pipe this test holds: no child process,
    // which between its fork and exec would show its parent's command line.
    let mut qemu = std::process::Command::new(&fake)
        .args(["-c", "read x"])
        .arg(root.path().join("disk.qcow2"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut other = std::process::Command::new("sh")
        .args(["-c", "read x", "server"])
        .arg(&served)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = qemu_processes_under(root.path());
    while seen.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        seen = qemu_processes_under(root.path());
    }
    let _ = qemu.kill();
    let _ = other.kill();
    let _ = qemu.wait();
    let _ = other.wait();
    assert_eq!(
        seen,
        vec![qemu.id()],
        "the sh naming the folder is pid {}",
        other.id()
    );
}

#[test]
#[ignore = "boots real VMs (minutes under TCG): scripts/test-vm.sh"]
fn a_lab_vm_builds_the_seed_and_answers_gdb_and_dlv_through_the_forward() -> Result<()> {
    let q = Qemu::new()?;
    let opts = lab_opts();
    let seed = PathBuf::from(env("GOLAB_VM_SEED"));
    let mut clock = Clock { rows: Vec::new() };
    let r = (|| -> Result<()> {
        let vm = clock.time("up lab1 (create, boot, cloud-init, provisioning)", || {
            q.up("lab1", &opts)
        })?;
        for s in &vm.stages {
            clock.rows.push((format!("  lab1 {}", s.stage), s.took));
        }
        eprintln!("vm-test: accel {:?}; notes: {:?}", vm.accel, vm.notes);
        ensure!(
            vm.tools.go.contains(&format!("go{} ", opts.go_version)),
            "{:?}",
            vm.tools
        );

        let again = clock.time("up lab1 again while it runs", || q.up("lab1", &opts))?;
        ensure!(again.already_running && again.ports == vm.ports);

        let out = guest(&q, "lab1", "go version", Duration::from_secs(120))?;
        ensure!(
            out.stdout
                .contains(&format!("go{} linux/amd64", opts.go_version)),
            "{}",
            out.stdout
        );
        guest(&q, "lab1", "mkdir -p ~/lab", Duration::from_secs(60))?;
        q.copy_in("lab1", &seed, "lab/main.go")?;
        clock.time("go build -gcflags all=-l -N (in the guest)", || guest(&q, "lab1", "cd ~/lab && GOFLAGS=-mod=mod GOPROXY=off go build -gcflags 'all=-l -N' -o main main.go", Duration::from_secs(1200)))?;
        let out = guest(&q, "lab1", "readelf -h ~/lab/main", Duration::from_secs(60))?;
        ensure!(
            out.stdout.contains("Advanced Micro Devices X86-64") && out.stdout.contains("EXEC"),
            "{}",
            out.stdout
        );
        let out = clock.time("gdb -batch, break runtime.schedinit", || {
            guest(
                &q,
                "lab1",
                "cd ~/lab && gdb -batch -ex 'break runtime.schedinit' -ex run -ex bt ./main 2>&1",
                Duration::from_secs(300),
            )
        })?;
        ensure!(out.stdout.contains("runtime.schedinit"), "{}", out.stdout);
        ensure!(
            out.stdout.contains("Breakpoint 1") && out.stdout.contains("runtime.schedinit ()"),
            "gdb did not stop at runtime.schedinit:\n{}",
            out.stdout
        );

        clock.time("dlv --headless in the guest, JSON-RPC from the host", || {
            let tmp = tempfile::tempdir()?;
            let mut c = q.ssh_command("lab1")?;
            c.arg("--").arg("bash -lc 'cd ~/lab && exec dlv exec --headless --listen=0.0.0.0:2345 --api-version=2 ./main'");
            c.stdin(Stdio::null()).stdout(std::fs::File::create(tmp.path().join("out"))?).stderr(std::fs::File::create(tmp.path().join("err"))?);
            let mut g = exec::Group::spawn(c, "ssh (dlv)")?;
            let get = r#"{"method":"RPCServer.GetVersion","params":[{}],"id":1}"#;
            let detach = r#"{"method":"RPCServer.Detach","params":[{"Kill":true}],"id":2}"#;
            let answers = dlv_session(vm.ports.dlv, &[get, detach], Duration::from_secs(180)).with_context(|| std::fs::read_to_string(tmp.path().join("err")).unwrap_or_default())?;
            let v = &answers[0];
            eprintln!("vm-test: dlv answered {v}");
            ensure!(v["id"] == 1, "{v}");
            ensure!(v["result"]["DelveVersion"].as_str().unwrap_or("").contains(&format!("Version: {}", env("GOLAB_VM_DLV_VERSION"))), "{v}");
            ensure!(v["result"]["APIVersion"] == 2, "{v}");
            ensure!(answers[1]["error"].is_null(), "detach: {}", answers[1]);
            g.wait_deadline(Instant::now() + Duration::from_secs(60))?;
            let left = guest(&q, "lab1", "pgrep -x dlv || echo none", Duration::from_secs(60))?;
            ensure!(left.stdout.trim() == "none", "dlv left running in the guest: {}", left.stdout);
            Ok(())
        })?;

        let how = clock.time("down lab1", || q.down("lab1"))?;
        ensure!(
            how == Stopped::PoweredOff,
            "lab1 stopped by {how:?}, not by a clean poweroff"
        );
        let st = q.status("lab1")?;
        ensure!(!st.running() && st.stage == Some(Stage::Ready), "{st}");
        ensure!(!pid_alive(vm.pid));
        let vm = clock.time("up lab1 (resume: boot, no provisioning)", || {
            q.up("lab1", &opts)
        })?;
        for s in &vm.stages {
            clock
                .rows
                .push((format!("  lab1 resume {}", s.stage), s.took));
        }
        ensure!(vm.resumed && !vm.already_running);
        let m = q.machine("lab1")?;
        ensure!(
            m.ncpu()? == 2,
            "the guest's CPUs as the Go runtime counts them"
        );
        let runs = guest(
            &q,
            "lab1",
            "cat /var/lib/golab-provisioned; test -x ~/lab/main && echo binary-kept",
            Duration::from_secs(60),
        )?;
        ensure!(
            runs.stdout.matches("provisioned ").count() == 1,
            "provisioned again on resume: {}",
            runs.stdout
        );
        ensure!(runs.stdout.contains("binary-kept"));

        // A second machine while the first runs; its first `up` dies half-way (QEMU
        // killed during the first boot), and the next `up` starts it over.
        let crashed = clock.time("up lab2, its QEMU killed during the first boot", || {
            let q2 = Qemu::new()?;
            let o2 = opts.clone();
            let h = std::thread::spawn(move || q2.up("lab2", &o2));
            let dir = q.dir("lab2");
            let deadline = Instant::now() + Duration::from_secs(300);
            let pid = loop {
                if read_stage(&dir) == Some(Stage::Booting)
                    && let Some(p) = running_pid(&dir)
                {
                    break p;
                }
                ensure!(
                    Instant::now() < deadline && !h.is_finished(),
                    "lab2 never reached its first boot"
                );
                std::thread::sleep(Duration::from_millis(200));
            };
            std::thread::sleep(Duration::from_secs(5));
            sys::proc::signal(pid, sys::proc::Signal::Kill);
            let r = h.join().expect("up thread");
            Ok(r.err().map(|e| format!("{e:#}")))
        })?;
        let msg = crashed.context("an up whose QEMU was killed must fail")?;
        ensure!(msg.contains("exited while booting"), "{msg}");
        ensure!(
            q.status("lab2")?.stage == Some(Stage::Booting),
            "{}",
            q.status("lab2")?
        );
        let vm2 = clock.time(
            "up lab2 again (cleaned, created anew) while lab1 runs",
            || q.up("lab2", &opts),
        )?;
        for s in &vm2.stages {
            clock.rows.push((format!("  lab2 {}", s.stage), s.took));
        }
        ensure!(!vm2.resumed);
        ensure!(
            vm2.ports.ssh != vm.ports.ssh
                && vm2.ports.dlv != vm.ports.dlv
                && vm2.ports.ssh != vm.ports.dlv,
            "{:?} {:?}",
            vm.ports,
            vm2.ports
        );
        ensure!(q.status("lab1")?.running() && q.status("lab2")?.running());
        let h1 = guest(&q, "lab1", "hostname", Duration::from_secs(60))?;
        let h2 = guest(&q, "lab2", "hostname", Duration::from_secs(60))?;
        ensure!(
            (h1.stdout.trim(), h2.stdout.trim()) == ("golab-lab1", "golab-lab2"),
            "host names {:?} {:?}",
            h1.stdout,
            h2.stdout
        );

        clock.time("destroy lab2", || q.destroy("lab2"))?;
        clock.time("destroy lab1", || q.destroy("lab1"))?;
        ensure!(!q.dir("lab1").exists() && !q.dir("lab2").exists());

        // A baked disk given as a plain base image (to provision, or to bake anew): its
        // cloud-init is off, so it is refused by name, not waited for until a deadline.
        if opts.baked.is_some() {
            let mut plain = lab_opts();
            plain.baked = None;
            let t = Instant::now();
            let refused = clock.time(
                "up lab3 from the baked disk as a plain base (refused)",
                || match q.up("lab3", &plain) {
                    Ok(_) => bail!("a baked disk given as a base image was provisioned"),
                    Err(e) => Ok(format!("{e:#}")),
                },
            )?;
            ensure!(
                refused.contains("cloud-init is off in the base image"),
                "{refused}"
            );
            ensure!(
                t.elapsed() < Duration::from_secs(600),
                "refused only after {:?}",
                t.elapsed()
            );
            clock.time("destroy lab3", || q.destroy("lab3"))?;
        }
        Ok(())
    })();
    if r.is_err() {
        let _ = q.destroy("lab3");
        let _ = q.destroy("lab2");
        let _ = q.destroy("lab1");
    }
    eprintln!("vm-test: timings");
    for (what, took) in &clock.rows {
        eprintln!("vm-test:   {:>7.1}s  {what}", took.as_secs_f64());
    }
    // A QEMU that was stopped may still be exiting (flushing its disk, closing its
    // sockets) for a moment after `destroy` saw it go: looked at until a deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = qemu_processes_under(&q.root);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        left = qemu_processes_under(&q.root);
    }
    let said: Vec<String> = left
        .iter()
        .map(|p| format!("{p}: {}", sys::proc::cmdline(*p).unwrap_or_default()))
        .collect();
    assert!(left.is_empty(), "QEMU processes left after 30 s: {said:?}");
    r
}

//! A lab run through the ssh machine, against a real sshd on 127.0.0.1 started by the
//! test: the same code path the VM providers use, without a VM (scripts/test-vm.sh runs
//! the real VMs).

use golab::machine::{Machine, Ssh};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keygen(path: &Path) {
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// An sshd for the current user on 127.0.0.1, accepting one generated key.
fn sshd(dir: &Path) -> Option<(Sshd, u16, std::path::PathBuf, String)> {
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    keygen(&dir.join("host_key"));
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = free_port();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let cfg = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n",
        d = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), cfg).unwrap();
    // sshd wants its privilege separation folder.
    std::fs::create_dir_all("/run/sshd").ok();
    let child = Command::new(sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .spawn()
        .unwrap();
    let guard = Sshd(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((guard, port, dir.join("client_key"), user))
}

#[test]
fn startup_trace_runs_through_ssh_with_the_same_verdict_as_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_sshd, port, key, user)) = sshd(dir.path()) else {
        panic!("no sshd: scripts/install-deps.sh installs openssh-server");
    };
    let dlv_port = free_port();
    let m = Machine::Ssh(Ssh {
        name: "localhost".into(),
        user,
        port,
        key,
        dlv_port,
        guest_dlv_port: dlv_port,
        dlv_listen_host: "127.0.0.1".into(),
        master: None,
    });
    // As `golab run --provider` does: every command through one connection.
    let (m, why) = m.sharing_one_connection();
    assert!(why.is_none(), "{why:?}");
    let socket = m.control_socket().unwrap().to_path_buf();
    assert!(socket.exists());
    let lab = golab::lab::load_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace/lab.yaml"),
    )
    .unwrap();
    let opts = |machine| golab::runner::Options {
        choice: Default::default(),
        transcript: None,
        keep_work: None,
        quiet: true,
        scenario: None,
        repeat: 1,
        prebuilt: None,
        machine,
    };
    let remote = golab::runner::run(&lab, &opts(m)).expect("the lab runs over ssh");
    // The master ended with the machine: no ssh process names its socket any more.
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(socket.to_str().unwrap()))
        .collect();
    assert!(
        left.is_empty(),
        "the shared ssh connection outlived the run: {left:?}"
    );
    assert!(!socket.exists());
    let host = golab::runner::run(&lab, &opts(Machine::Host)).unwrap();
    let verdict = |o: &golab::runner::RunResult| {
        o.verdict
            .checks
            .iter()
            .map(|c| (c.id.clone(), c.passed))
            .collect::<Vec<_>>()
    };
    assert_eq!(verdict(&remote), verdict(&host));
    assert!(
        remote.verdict.passed(),
        "{:#?}",
        remote
            .verdict
            .checks
            .iter()
            .filter(|c| !c.passed)
            .collect::<Vec<_>>()
    );
    // It really went through ssh: the build happened in a folder made on the "guest".
    assert!(remote.observation.dlv.hits.len() > 20);
}

//! scripts/fetch-toolchains.sh's download path, as a course machine with the internet
//! takes it: no source archive of Go beside the repository, so Go 1.17.1 comes as a
//! go.dev-style binary tarball (top-level `go/`) from GOLAB_GO_BASE_URL, checked by
//! SHA-256. Here the tarball is one the test packs from the Go 1.17.1 that
//! `fetch-toolchains.sh pinned` built, served from 127.0.0.1 with its own SHA-256 (the
//! official pin stays the script's default); dlv 1.9.1 is built from its source archive.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn built_go117() -> PathBuf {
    let c = std::env::var_os("GOLAB_TOOLCHAINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/golab/toolchains")
        });
    let g = c.join("go1.17");
    assert!(
        g.join("bin/go").is_file(),
        "no Go 1.17.1 in {}: run `bash scripts/fetch-toolchains.sh pinned`",
        c.display()
    );
    g
}

fn sources() -> PathBuf {
    let s = repo().join("../shared/toolchains");
    assert!(
        s.join("delve-1.9.1.src.tar.xz").is_file(),
        "the delve source archives are not in {}",
        s.display()
    );
    s
}

/// `python3 -m http.server` on a free 127.0.0.1 port, serving `dir`.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the test server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, port }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A source folder with the delve archives but not Go's: the script must download Go.
fn sources_without_go(dir: &Path) -> PathBuf {
    let s = dir.join("sources");
    std::fs::create_dir_all(&s).unwrap();
    for e in std::fs::read_dir(sources()).unwrap().flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with("delve-") {
            std::os::unix::fs::symlink(e.path(), s.join(name)).unwrap();
        }
    }
    s
}

fn fetch(cache: &Path, sources: &Path, base: &str, sha: Option<&str>) -> (bool, String) {
    let mut c = Command::new("bash");
    c.arg(repo().join("scripts/fetch-toolchains.sh"))
        .arg("pinned")
        .env("GOLAB_TOOLCHAINS", cache)
        .env("GOLAB_TOOLCHAIN_SOURCES", sources)
        .env("GOLAB_GO_BASE_URL", base);
    match sha {
        Some(s) => c.env("GOLAB_GO_SHA256", s),
        None => c.env_remove("GOLAB_GO_SHA256"),
    };
    let o = c.output().expect("bash runs");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// go1.17.1.linux-amd64.tar.gz as go.dev packs it: the GOROOT under a top-level `go/`.
fn pack_like_godev(goroot: &Path, out: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(goroot.parent().unwrap())
        .args(["--exclude=pkg/obj", "--transform"])
        .arg(format!(
            "s,^{},go,",
            goroot.file_name().unwrap().to_string_lossy()
        ))
        .arg("-czf")
        .arg(out)
        .arg(goroot.file_name().unwrap())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn go_1171_downloads_from_the_tarball_path_checks_its_sha256_and_builds_dlv_191() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let tarball = www.join("go1.17.1.linux-amd64.tar.gz");
    pack_like_godev(&built_go117(), &tarball);
    let sha = sha256(&tarball);
    let server = Server::start(&www);
    let src = sources_without_go(dir.path());

    // The official pin is the default: the test's own tarball does not match it, and
    // nothing is installed.
    let cache = dir.path().join("cache");
    let (ok, out) = fetch(&cache, &src, &server.url(), None);
    assert!(!ok, "{out}");
    assert!(
        out.contains("does not have the pinned SHA-256 dab7d9c3"),
        "{out}"
    );
    assert!(!cache.join("go1.17").exists(), "{out}");

    // With the tarball's own SHA-256: downloaded, unpacked, working; dlv built.
    let (ok, out) = fetch(&cache, &src, &server.url(), Some(&sha));
    assert!(ok, "{out}");
    assert!(out.contains("downloading"), "{out}");
    let v = Command::new(cache.join("go1.17/bin/go"))
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .env_remove("GOROOT")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        "go version go1.17.1 linux/amd64"
    );
    let d = Command::new(cache.join("dlv-1.9.1/dlv"))
        .arg("version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&d.stdout).contains("Version: 1.9.1"));

    // A second run finds both and fetches nothing.
    drop(server);
    let (ok, out) = fetch(&cache, &src, "http://127.0.0.1:9", Some(&sha));
    assert!(ok, "{out}");
    assert!(out.contains("go1.17: present, skipped"), "{out}");
    assert!(out.contains("dlv-1.9.1: present, skipped"), "{out}");
}

//! golab::download against a small HTTP server that each test starts on 127.0.0.1,
//! serving a Go tarball packed here from the installed Go toolchain the way go.dev packs
//! them (top folder `go/`, regular files and folders with their modes).

use golab::download::{Artifact, Cache, extract_go, go_tarball, require_go_tarball, sha256_file};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- the test server

#[derive(Debug, Clone, PartialEq)]
struct Req {
    path: String,
    range: Option<String>,
}

#[derive(Default)]
struct State {
    files: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    requests: Mutex<Vec<Req>>,
    /// Close the connection after this many body bytes, on the next answer only.
    cut_next: Mutex<Option<usize>>,
    /// Send this many body bytes, then go silent, on the next answer only.
    stall_next: Mutex<Option<usize>>,
    /// Answer 200 with the whole file even when asked for a range.
    ignore_range: AtomicBool,
}

/// A one-connection-at-a-time HTTP/1.1 server for GET; it stops when dropped, or by
/// itself after a minute.
struct Server {
    base: String,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            while !sp.load(Ordering::SeqCst) && Instant::now() < until {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = serve(conn, &st, &sp);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Server {
            base,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn put(&self, path: &str, data: Arc<Vec<u8>>) {
        self.state
            .files
            .lock()
            .unwrap()
            .insert(path.to_string(), data);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> Vec<Req> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, st: &State, stop: &AtomicBool) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut b)?;
        if n == 0 || head.len() > 16384 {
            return Ok(());
        }
        head.extend_from_slice(&b[..n]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let first: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let (method, path) = (
        first.first().copied().unwrap_or(""),
        first.get(1).copied().unwrap_or("").to_string(),
    );
    let range = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.trim().to_string());
    st.requests.lock().unwrap().push(Req {
        path: path.clone(),
        range: range.clone(),
    });
    let answer = |conn: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
        let h = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        );
        conn.write_all(h.as_bytes())
    };
    if method != "GET" {
        return answer(&mut conn, "405 Method Not Allowed", "", b"");
    }
    let Some(data) = st.files.lock().unwrap().get(&path).cloned() else {
        return answer(&mut conn, "404 Not Found", "", b"not found\n");
    };
    let len = data.len();
    let start = range.as_deref().and_then(|r| {
        r.strip_prefix("bytes=")?
            .strip_suffix('-')?
            .parse::<usize>()
            .ok()
    });
    let (status, extra, body): (&str, String, &[u8]) = match start {
        Some(_) if st.ignore_range.load(Ordering::SeqCst) => ("200 OK", String::new(), &data[..]),
        Some(s) if s >= len => {
            return answer(
                &mut conn,
                "416 Range Not Satisfiable",
                &format!("Content-Range: bytes */{len}\r\n"),
                b"",
            );
        }
        Some(s) => (
            "206 Partial Content",
            format!("Content-Range: bytes {s}-{}/{len}\r\n", len - 1),
            &data[s..],
        ),
        None => ("200 OK", String::new(), &data[..]),
    };
    let h = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    if let Some(k) = st.stall_next.lock().unwrap().take() {
        // Head and the first bytes in one write: written apart, a server thread
        // descheduled between them for longer than the client's read timeout (a loaded
        // CI machine) would make the client give up with fewer bytes than the test counts.
        let mut first = h.into_bytes();
        first.extend_from_slice(&body[..k.min(body.len())]);
        conn.write_all(&first)?;
        conn.flush()?;
        let until = Instant::now() + Duration::from_secs(10);
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        return Ok(());
    }
    conn.write_all(h.as_bytes())?;
    if let Some(k) = st.cut_next.lock().unwrap().take() {
        conn.write_all(&body[..k.min(body.len())])?;
        conn.flush()?;
        return conn.shutdown(std::net::Shutdown::Both);
    }
    conn.write_all(body)
}

// ---------------------------------------------------------------- the tarball

struct Tarball {
    bytes: Arc<Vec<u8>>,
    sha256: String,
    /// Packed from a real Go toolchain (else from a stand-in whose bin/go is a script).
    real: bool,
}

/// What of a GOROOT is packed: enough for `go version`, and for `go env GOROOT` to
/// recognise the unpacked tree (it looks for `pkg/tool`). Kept small: hashing and gzip
/// are slow in unoptimised test builds. A name ending in `/` is packed as a bare folder.
const SUBSET: &[&str] = &[
    "VERSION",
    "bin/go",
    "bin/gofmt",
    "src/runtime/extern.go",
    "pkg/tool/linux_amd64/",
];

fn tarball() -> &'static Tarball {
    static T: OnceLock<Tarball> = OnceLock::new();
    T.get_or_init(|| {
        let t0 = Instant::now();
        let goroot = Command::new("go")
            .args(["env", "GOROOT"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        let stand_in = tempfile::tempdir().unwrap();
        let (root, real) = match goroot.filter(|r| r.join("bin/go").is_file()) {
            Some(r) => (r, true),
            None => {
                eprintln!("no Go toolchain on PATH: packing a stand-in GOROOT");
                let r = stand_in.path().to_path_buf();
                write_exec(
                    &r.join("bin/go"),
                    b"#!/bin/sh\necho go version go0.0.0-standin linux/amd64\n",
                );
                write_exec(&r.join("bin/gofmt"), b"#!/bin/sh\n");
                std::fs::write(r.join("VERSION"), "go0.0.0-standin").unwrap();
                std::fs::create_dir_all(r.join("src/runtime")).unwrap();
                std::fs::write(r.join("src/runtime/extern.go"), "package runtime\n").unwrap();
                std::fs::create_dir_all(r.join("pkg/tool/linux_amd64")).unwrap();
                (r, false)
            }
        };
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut dirs_done = std::collections::HashSet::new();
        for rel in SUBSET {
            let src = root.join(rel);
            if !src.exists() {
                continue;
            }
            // Folders first, down to the entry, as a tar of the whole tree has them.
            let folders = if rel.ends_with('/') {
                Some(Path::new(rel))
            } else {
                Path::new(rel).parent()
            };
            let mut at = PathBuf::from("go");
            add_dir(&mut b, &at, &mut dirs_done);
            for c in folders.into_iter().flat_map(|p| p.components()) {
                at.push(c);
                add_dir(&mut b, &at, &mut dirs_done);
            }
            if !rel.ends_with('/') {
                pack(&mut b, &src, &Path::new("go").join(rel), &mut dirs_done);
            }
        }
        let bytes = b.into_inner().unwrap().finish().unwrap();
        let sha256 = hex_sha(&bytes);
        eprintln!(
            "packed {} MiB of {} in {:.1}s",
            bytes.len() / 1048576,
            root.display(),
            t0.elapsed().as_secs_f64()
        );
        Tarball {
            bytes: Arc::new(bytes),
            sha256,
            real,
        }
    })
}

fn write_exec(p: &Path, body: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn add_dir<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    done: &mut std::collections::HashSet<PathBuf>,
) {
    if done.insert(path.to_path_buf()) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    }
}

/// Packs `src` as `name`, following symlinks (a distribution's GOROOT may link its
/// `src` elsewhere): only folders and regular files go in, with their mode bits.
fn pack<W: Write>(
    b: &mut tar::Builder<W>,
    src: &Path,
    name: &Path,
    done: &mut std::collections::HashSet<PathBuf>,
) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(src).unwrap();
    if meta.is_dir() {
        add_dir(b, name, done);
        let mut kids: Vec<_> = std::fs::read_dir(src)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        kids.sort();
        for k in kids {
            pack(b, &src.join(&k), &name.join(&k), done);
        }
    } else if meta.is_file() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(meta.permissions().mode() & 0o777);
        h.set_size(meta.len());
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, name, std::fs::File::open(src).unwrap())
            .unwrap();
    }
}

fn hex_sha(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

const NAME: &str = "go-test.linux-amd64.tar.gz";

/// A server holding the tarball at /dl/NAME, and its artifact.
fn served() -> (Server, Artifact, &'static Tarball) {
    let t = tarball();
    let s = Server::start();
    s.put(&format!("/dl/{NAME}"), t.bytes.clone());
    let a = Artifact {
        name: NAME.into(),
        url: s.url(&format!("/dl/{NAME}")),
        sha256: t.sha256.clone(),
    };
    (s, a, t)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- the tests

#[test]
fn a_good_download_is_cached_and_unpacks_to_a_working_goroot() {
    let (srv, a, t) = served();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("downloads"), None);
    let p = cache.fetch(&a, true).unwrap();
    assert_eq!(p, dir.path().join("downloads").join(NAME));
    assert_eq!(std::fs::read(&p).unwrap(), *t.bytes);
    assert_eq!(
        names_in(cache.dir()),
        vec![NAME.to_string()],
        "no .part left"
    );
    assert_eq!(
        srv.requests(),
        vec![Req {
            path: format!("/dl/{NAME}"),
            range: None
        }]
    );

    // Cache hit: no request.
    assert_eq!(cache.fetch(&a, false).unwrap(), p);
    assert_eq!(
        srv.requests().len(),
        1,
        "a cached, verified file needs no request"
    );

    // A cached file that no longer matches is fetched again.
    std::fs::write(&p, b"corrupted").unwrap();
    assert_eq!(cache.fetch(&a, false).unwrap(), p);
    assert_eq!(sha256_file(&p).unwrap(), t.sha256);
    assert_eq!(srv.requests().len(), 2);

    // The tarball unpacks to a GOROOT whose go runs.
    let goroot = extract_go(&p, &dir.path().join("toolchains/go-test")).unwrap();
    assert_eq!(goroot, dir.path().join("toolchains/go-test/go"));
    let out = Command::new(goroot.join("bin/go"))
        .arg("version")
        .env_remove("GOROOT")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && version.starts_with("go version go"),
        "{version}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if t.real {
        let out = Command::new(goroot.join("bin/go"))
            .args(["env", "GOROOT"])
            .env_remove("GOROOT")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            goroot.to_str().unwrap(),
            "go finds its GOROOT where it was unpacked"
        );
    }
    assert_eq!(
        names_in(&dir.path().join("toolchains")),
        vec!["go-test".to_string()],
        "no temporary folder left"
    );
    // Unpacking again replaces the tree whole.
    extract_go(&p, &dir.path().join("toolchains/go-test")).unwrap();
    assert!(goroot.join("bin/go").is_file());
    assert_eq!(
        names_in(&dir.path().join("toolchains")),
        vec!["go-test".to_string()]
    );
}

#[test]
fn a_wrong_checksum_names_both_hashes_and_caches_nothing() {
    let (srv, mut a, t) = served();
    a.sha256 = "0".repeat(64);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path(), None);
    let err = format!("{:#}", cache.fetch(&a, false).unwrap_err());
    assert!(
        err.contains(&a.sha256)
            && err.contains(&t.sha256)
            && err.contains(&a.url)
            && err.contains(NAME),
        "{err}"
    );
    assert!(
        !dir.path().join(NAME).exists(),
        "nothing under the final name"
    );
    assert_eq!(
        names_in(dir.path()),
        vec![format!("{NAME}.bad")],
        "the bad download is kept aside, no .part"
    );
    // The next try downloads again (and fails the same way): the .bad file is no cache.
    assert!(cache.fetch(&a, false).is_err());
    assert_eq!(srv.requests().len(), 2);
}

#[test]
fn a_transfer_cut_off_halfway_is_resumed() {
    let (srv, a, t) = served();
    let half = t.bytes.len() / 2;
    *srv.state.cut_next.lock().unwrap() = Some(half);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path(), None);
    let err = format!("{:#}", cache.fetch(&a, true).unwrap_err());
    assert!(err.contains(&a.url) && err.contains("resume"), "{err}");
    let part = dir.path().join(format!("{NAME}.part"));
    let have = std::fs::metadata(&part).expect(".part is kept").len() as usize;
    assert!(have > 0 && have <= half, "{have} of {half}");
    assert!(!dir.path().join(NAME).exists());

    let p = cache.fetch(&a, true).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), *t.bytes);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].range,
        Some(format!("bytes={have}-")),
        "resumed where the first stopped"
    );
    assert_eq!(names_in(dir.path()), vec![NAME.to_string()]);
}

#[test]
fn a_resume_copes_with_servers_that_ignore_or_refuse_the_range() {
    let (srv, a, t) = served();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path(), None);
    let part = dir.path().join(format!("{NAME}.part"));

    // 200 instead of 206: start over.
    std::fs::write(&part, &t.bytes[..1000]).unwrap();
    srv.state.ignore_range.store(true, Ordering::SeqCst);
    let p = cache.fetch(&a, false).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), *t.bytes);
    assert_eq!(srv.requests()[0].range.as_deref(), Some("bytes=1000-"));
    srv.state.ignore_range.store(false, Ordering::SeqCst);

    // 416 on a whole .part: verified and kept.
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&part, &*t.bytes).unwrap();
    assert_eq!(cache.fetch(&a, false).unwrap(), p);
    assert_eq!(sha256_file(&p).unwrap(), t.sha256);
    assert_eq!(srv.requests().len(), 2);

    // 416 on a .part longer than the file: thrown away, downloaded again.
    std::fs::remove_file(&p).unwrap();
    let mut long = t.bytes.to_vec();
    long.extend_from_slice(b"junk");
    std::fs::write(&part, &long).unwrap();
    assert_eq!(cache.fetch(&a, false).unwrap(), p);
    assert_eq!(sha256_file(&p).unwrap(), t.sha256);
    let r = srv.requests();
    assert_eq!((r.len(), r[3].range.as_deref()), (4, None), "{r:?}");

    // A .part whose bytes are not the file's: the resumed result fails the checksum,
    // so it is downloaded once more, whole.
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&part, vec![0u8; 1000]).unwrap();
    assert_eq!(cache.fetch(&a, false).unwrap(), p);
    assert_eq!(sha256_file(&p).unwrap(), t.sha256);
    let r: Vec<Option<String>> = srv
        .requests()
        .into_iter()
        .skip(4)
        .map(|r| r.range)
        .collect();
    assert_eq!(r, vec![Some("bytes=1000-".to_string()), None]);
}

#[test]
fn a_stalled_transfer_times_out_and_a_missing_file_names_the_url() {
    let (srv, a, _) = served();
    *srv.state.stall_next.lock().unwrap() = Some(5000);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path(), None)
        .with_timeouts(Duration::from_secs(5), Duration::from_millis(300));
    let t0 = Instant::now();
    let err = format!("{:#}", cache.fetch(&a, false).unwrap_err());
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "timed out after {:?}",
        t0.elapsed()
    );
    assert!(
        err.contains(&a.url) && err.to_lowercase().contains("timeout"),
        "{err}"
    );
    assert_eq!(
        std::fs::metadata(dir.path().join(format!("{NAME}.part")))
            .unwrap()
            .len(),
        5000
    );

    drop(srv);
    let srv = Server::start();
    let missing = Artifact {
        name: "nothing.tar.gz".into(),
        url: srv.url("/dl/nothing.tar.gz"),
        sha256: "1".repeat(64),
    };
    let err = format!("{:#}", cache.fetch(&missing, false).unwrap_err());
    assert!(
        err.contains(&missing.url) && err.contains("404") && err.contains("GOLAB_MIRROR"),
        "{err}"
    );
}

#[test]
fn pinned_go_versions() {
    let a = go_tarball("go1.17.1").unwrap();
    assert_eq!(a.name, "go1.17.1.linux-amd64.tar.gz");
    assert_eq!(
        a.url,
        format!("{}go1.17.1.linux-amd64.tar.gz", golab::download::GO_BASE)
    );
    assert_eq!(
        a.sha256,
        "dab7d9c34361dc21ec237d584590d72500652e7c909bf082758fb63064fca0ef"
    );
    assert_eq!(go_tarball("1.17.1"), Some(a));
    assert!(go_tarball("go1.99.0").is_none());
    let err = require_go_tarball("go1.99.0").unwrap_err().to_string();
    assert!(
        err.contains("go1.99.0") && err.contains("go1.17.1"),
        "{err}"
    );
}

/// GOLAB_MIRROR (read from the real environment, in a child process) replaces go.dev's
/// base; progress without a terminal is percentage lines.
#[test]
fn a_mirror_replaces_the_default_base() {
    let t = tarball();
    let srv = Server::start();
    srv.put("/mirror/go1.17.1.linux-amd64.tar.gz", t.bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mirror_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GOLAB_MIRROR", srv.url("/mirror/"))
        .env("GOLAB_CACHE", dir.path())
        .env("GOLAB_TEST_SHA256", &t.sha256)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child test ran"
    );
    assert!(
        stderr.contains("50%") && stderr.contains("100%"),
        "{stderr}"
    );
    assert_eq!(
        srv.requests(),
        vec![Req {
            path: "/mirror/go1.17.1.linux-amd64.tar.gz".into(),
            range: None
        }]
    );
    assert_eq!(
        sha256_file(&dir.path().join("go1.17.1.linux-amd64.tar.gz")).unwrap(),
        t.sha256
    );

    // The pinned checksum is checked against what the mirror serves.
    let cache = Cache::from_lookup(|k| match k {
        "GOLAB_MIRROR" => Some(srv.url("/mirror")),
        "GOLAB_CACHE" => Some(dir.path().join("other").to_string_lossy().into_owned()),
        _ => None,
    })
    .unwrap();
    let err = format!(
        "{:#}",
        cache
            .fetch(&go_tarball("go1.17.1").unwrap(), false)
            .unwrap_err()
    );
    assert!(
        err.contains(&srv.url("/mirror/go1.17.1.linux-amd64.tar.gz"))
            && err.contains("dab7d9c3")
            && err.contains(&t.sha256),
        "{err}"
    );
}

#[test]
#[ignore = "run by a_mirror_replaces_the_default_base in a child process"]
fn mirror_child() {
    let Ok(sha) = std::env::var("GOLAB_TEST_SHA256") else {
        return;
    };
    let cache = Cache::from_env().unwrap();
    assert_eq!(
        cache.dir(),
        Path::new(&std::env::var("GOLAB_CACHE").unwrap())
    );
    let mut a = go_tarball("go1.17.1").unwrap();
    assert!(!a.url.contains("127.0.0.1"));
    a.sha256 = sha; // the mirror serves the test's tarball under the pinned name
    let p = cache.fetch(&a, true).unwrap();
    assert_eq!(p, cache.dir().join("go1.17.1.linux-amd64.tar.gz"));
}

/// A gzipped tarball whose entries are written raw, so that names the tar crate would
/// refuse to write (`..`, absolute) can be made.
fn raw_tarball(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, kind, body_or_link) in entries {
        let mut h = tar::Header::new_old();
        let n = name.as_bytes();
        h.as_old_mut().name[..n.len()].copy_from_slice(n);
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        let body: &[u8] = if *kind == tar::EntryType::Regular {
            body_or_link.as_bytes()
        } else {
            b""
        };
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            let l = body_or_link.as_bytes();
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
        }
        h.set_size(body.len() as u64);
        h.set_cksum();
        b.append(&h, body).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn extract_go_refuses_unsafe_tarballs() {
    use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};
    let ok: &[(&str, tar::EntryType, &str)] = &[
        ("go/", D, ""),
        ("go/bin/", D, ""),
        ("go/bin/go", F, "#!/bin/sh\n"),
    ];
    type Entries<'a> = Vec<(&'a str, tar::EntryType, &'a str)>;
    let cases: Vec<(&str, Entries, &str)> = vec![
        ("parent", vec![("go/../evil", F, "x")], ".."),
        ("parent inside", vec![("go/bin/../../evil", F, "x")], ".."),
        ("absolute", vec![("ABSOLUTE", F, "x")], "absolute"),
        ("outside go/", vec![("evil", F, "x")], "under go/"),
        (
            "symlink out",
            vec![("go/lib", S, "../../evil")],
            "outside go/",
        ),
        ("absolute symlink", vec![("go/etc", S, "/etc")], "absolute"),
        ("hard link out", vec![("go/pw", H, "../evil")], ".."),
        // Each link stays inside alone; together they lead out.
        (
            "symlink chain",
            vec![
                ("go/a/", D, ""),
                ("go/a/b/", D, ""),
                ("go/a/b/c", S, "../.."),
                ("go/x", S, "a/b/c/../../.."),
            ],
            "outside go/",
        ),
        ("no bin/go", vec![("go/VERSION", F, "go1")], "bin/go"),
    ];
    for (what, entries, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let abs = format!("{}/evil", dir.path().display());
        let entries: Vec<_> = entries
            .into_iter()
            .map(|(n, k, b)| (if n == "ABSOLUTE" { abs.as_str() } else { n }, k, b))
            .collect();
        let mut all: Vec<(&str, tar::EntryType, &str)> = if what == "no bin/go" {
            vec![("go/", D, "")]
        } else {
            ok.to_vec()
        };
        all.extend(entries);
        let tgz = dir.path().join("t.tar.gz");
        std::fs::write(&tgz, raw_tarball(&all)).unwrap();
        let err = format!(
            "{:#}",
            extract_go(&tgz, &dir.path().join("out/go-x")).unwrap_err()
        );
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(
            names_in(&dir.path().join("out")),
            Vec::<String>::new(),
            "{what}: nothing left in out/"
        );
        assert!(
            !dir.path().join("evil").exists() && !dir.path().join("out/evil").exists(),
            "{what}"
        );
    }
    // The same entries with no bad one unpack.
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("t.tar.gz");
    let mut good = ok.to_vec();
    good.push(("go/lib", S, "bin/go"));
    std::fs::write(&tgz, raw_tarball(&good)).unwrap();
    let root = extract_go(&tgz, &dir.path().join("out")).unwrap();
    assert!(root.join("lib").is_file());
    // A destination holding anything but go/ is not replaced.
    std::fs::write(dir.path().join("out/notes.txt"), "mine").unwrap();
    let err = format!(
        "{:#}",
        extract_go(&tgz, &dir.path().join("out")).unwrap_err()
    );
    assert!(err.contains("notes.txt"), "{err}");
    assert!(dir.path().join("out/notes.txt").is_file() && root.join("bin/go").is_file());
}

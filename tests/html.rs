//! The HTML reports in Debian's headless chromium (installed by scripts/install-deps.sh),
//! run inside a network namespace of the test's own (`unshare -n`): a screenshot of each
//! page, and assertions on the DOM chromium built: every step present, every internal
//! link resolves, no external reference, and chromium's network log shows no request
//! made by the page.

mod common;

use common::golab;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

struct Rendered {
    dom: String,
    png: Vec<u8>,
    /// URL requests the page itself started (chromium's own background ones aside).
    page_requests: Vec<String>,
}

fn chromium(page: &Path, scratch: &Path) -> Rendered {
    let which = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .unwrap();
    assert!(
        which.status.success(),
        "chromium is not installed: scripts/install-deps.sh installs Debian's chromium"
    );
    let run = |extra: &[String]| {
        let profile = tempfile::tempdir().unwrap();
        let mut c = Command::new("unshare");
        c.args([
            "-n",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()));
        let o = c.output().expect("chromium runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    let png_path = scratch.join(format!(
        "{}.png",
        page.file_stem().unwrap().to_string_lossy()
    ));
    let net = scratch.join("net.json");
    run(&[format!("--screenshot={}", png_path.display())]);
    let o = run(&[
        "--dump-dom".to_string(),
        format!("--log-net-log={}", net.display()),
    ]);
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&net).unwrap()).unwrap();
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_i64()
        .unwrap();
    let page_requests = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_i64() == Some(start_job) && e["phase"].as_i64() == Some(1))
        .filter(|e| e["params"]["initiator"].as_str() != Some("not an origin"))
        .map(|e| e["params"]["url"].as_str().unwrap_or("?").to_string())
        .collect();
    Rendered {
        dom,
        png: std::fs::read(&png_path).unwrap(),
        page_requests,
    }
}

/// Values of `attr="..."` in the DOM.
fn attrs(dom: &str, attr: &str) -> Vec<String> {
    let key = format!(" {attr}=\"");
    dom.match_indices(&key)
        .map(|(i, _)| {
            let rest = &dom[i + key.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

fn assert_self_contained(r: &Rendered) {
    assert!(r.png.starts_with(b"\x89PNG") && r.png.len() > 10_000);
    assert!(r.page_requests.is_empty(), "{:?}", r.page_requests);
    for a in ["src", "href", "xlink:href"] {
        for v in attrs(&r.dom, a) {
            assert!(
                v.starts_with('#'),
                "{a}=\"{v}\" is not a link inside the page"
            );
        }
    }
    for bad in ["<script", "<link", "<iframe", "@import", "url(http"] {
        assert!(!r.dom.contains(bad), "the page holds {bad}");
    }
    let ids = attrs(&r.dom, "id");
    for h in attrs(&r.dom, "href") {
        assert!(
            ids.contains(&h[1..].to_string()),
            "link {h} goes nowhere (ids: {ids:?})"
        );
    }
}

/// The reference chain for the Go on PATH, from `golab reference`.
fn chain() -> Vec<String> {
    let v = Command::new("go").arg("version").output().unwrap();
    let v = String::from_utf8_lossy(&v.stdout);
    let ver = v.split_whitespace().nth(2).unwrap().to_string();
    let o = golab()
        .args(["reference", "startup-trace", "--json", "--go", &ver])
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    j["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["function"].as_str().unwrap().to_string())
        .collect()
}

fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id}"));
    let end = dom[start..].find("</section>").unwrap() + start;
    &dom[start..end]
}

#[test]
fn tour_page_draws_every_step_and_fetches_nothing() {
    let d = tempfile::tempdir().unwrap();
    let page = d.path().join("tour.html");
    let o = golab()
        .args(["tour", "startup-trace", "--all", "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let r = chromium(&page, d.path());
    assert_self_contained(&r);
    for f in chain() {
        assert!(
            r.dom.contains(&format!(">{f}<")) || r.dom.contains(&format!(">{f} ✗<")),
            "no box for {f}"
        );
    }
    assert!(r.dom.contains("sysmon's thread"));
    assert!(r.dom.contains("ABI0 wrapper"));
    // Each step links to its section, which holds the runtime source around the stop.
    let rt0 = section(&r.dom, "step-2");
    assert!(
        rt0.contains("runtime.rt0_go") && rt0.contains("=&gt;"),
        "{rt0}"
    );
    assert!(r.dom.contains("href=\"#step-2\""));
}

#[test]
fn run_page_shows_a_failing_check_in_place_expected_beside_observed() {
    let d = tempfile::tempdir().unwrap();
    let lab = d.path().join("lab");
    std::fs::create_dir(&lab).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace");
    for f in ["main.go", "go.mod", "lab.yaml"] {
        std::fs::copy(src.join(f), lab.join(f)).unwrap();
    }
    // A lab whose author expects argc in DI to be 5: the run must fail that check.
    let y = std::fs::read_to_string(lab.join("lab.yaml")).unwrap();
    let wrong = y.replacen(
        "{at: runtime.rt0_go, reg: rdi, equals: argc}",
        "{at: runtime.rt0_go, reg: rdi, equals: \"5\"}",
        1,
    );
    assert_ne!(y, wrong);
    std::fs::write(lab.join("lab.yaml"), wrong).unwrap();
    let page = d.path().join("run.html");
    let o = golab()
        .arg("run")
        .arg(&lab)
        .args(["-q", "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let r = chromium(&page, d.path());
    assert_self_contained(&r);
    // Every step of the chain has its section (sysmon's thread adds its own).
    let ids: Vec<String> = attrs(&r.dom, "id")
        .into_iter()
        .filter(|i| i.starts_with("step-"))
        .collect();
    let sec_of = |f: &str| {
        ids.iter()
            .map(|id| section(&r.dom, id))
            .find(|s| s.contains(&format!(". {f}</h3>")))
            .unwrap_or_else(|| panic!("no section for {f}"))
    };
    for f in chain() {
        sec_of(&f);
    }
    let s = sec_of("runtime.rt0_go");
    assert!(
        r.dom
            .contains("<section class=\"step failed\" id=\"step-2\">"),
        "{s}"
    );
    assert!(
        s.contains("fail-row") && s.contains("argc-argv-in-registers"),
        "{s}"
    );
    assert!(
        s.contains("<td>5 (literal)</td><td>4</td><td class=\"fail\">FAIL</td>"),
        "expected 5 beside the observed 4: {s}"
    );
    assert!(
        r.dom.contains("runtime.rt0_go ✗"),
        "the diagram marks the failing step"
    );
}

#[test]
fn callers_page_marks_where_the_notes_differ() {
    let d = tempfile::tempdir().unwrap();
    let page = d.path().join("callers.html");
    let o = golab()
        .args(["run", "scheduler-callers", "-q", "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(o.status.code().unwrap() <= 1);
    let r = chromium(&page, d.path());
    assert_self_contained(&r);
    for f in [
        "runqget",
        "runqput",
        "globrunqget",
        "globrunqput",
        "schedule",
        "stealWork",
        "execute",
        "newproc1",
        "sysmon",
    ] {
        assert!(
            r.dom.contains(&format!("id=\"callers-runtime-{f}\"")),
            "{f}"
        );
    }
    // Go 1.19 (Debian's): schedule no longer calls runqget; the notes' edge is dashed red.
    assert!(r.dom.contains("runtime.runqget  (differs from the notes)"));
    assert!(
        r.dom
            .contains("runtime.schedule -&gt; runtime.runqget (gone)")
    );
}

#[test]
fn runq_page_marks_the_notable_moments() {
    let d = tempfile::tempdir().unwrap();
    let page = d.path().join("runq.html");
    let o = golab()
        .args(["run", "runq-order", "-q", "--scenario", "n300", "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(o.status.code().unwrap() <= 1);
    let r = chromium(&page, d.path());
    assert_self_contained(&r);
    let rows: Vec<String> = attrs(&r.dom, "id")
        .into_iter()
        .filter(|i| i.starts_with("n300-m"))
        .collect();
    assert!(rows.len() >= 3, "{rows:?}");
    // The moments are the model's, stepped from the state read live; a run in which main
    // was preempted while it spawned (a loaded machine) is another run, whose queue may
    // never fill: then the page must say so with its own moment.
    let preempted = r.dom.contains("<td>preempted</td>");
    let moments: Vec<&str> = r
        .dom
        .split("class=\"moment\">")
        .skip(1)
        .map(|row| row.split("</tr>").next().unwrap_or(""))
        .collect();
    for m in [
        "runqputslow",
        "schedtick % 61",
        "inheritTime",
        "globrunqget",
    ] {
        assert!(
            r.dom.contains(&format!("<td>{m}</td>")) || (preempted && m != "inheritTime"),
            "no {m} moment in {moments:#?}"
        );
    }
    // Each moment's marker in the picture links to its row.
    for id in &rows {
        assert!(r.dom.contains(&format!("href=\"#{id}\"")), "{id}");
    }
}

#[test]
fn the_fetch_detector_sees_a_page_that_fetches() {
    // The same detector on a page that does fetch (a port nothing listens on, inside
    // the test's own network namespace): it must see the request.
    let d = tempfile::tempdir().unwrap();
    let page = d.path().join("fetching.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p><img src=\"http://127.0.0.1:9/x.png\"></body></html>",
    )
    .unwrap();
    let r = chromium(&page, d.path());
    assert!(
        r.page_requests.iter().any(|u| u.contains("127.0.0.1:9")),
        "{:?}",
        r.page_requests
    );
}

//! Judges recorded fidelity runs again with this tree's model, without running them:
//! the `--json-file` documents that `scripts/fidelity-cosim.sh` and
//! `scripts/fidelity-order.sh` keep (`GOLAB_FIDELITY_OUT`). A co-simulation run is
//! re-stepped from its dlv hits (`cosim::points` + `Event::from_hits` + `Cosim::run`,
//! what the check runs); a whole-order run is predicted again from its shape, the
//! state read at `main.main` and the measured preemptions (`shape::predict`). Prints
//! the tables and every disagreement or miss.
//!
//! Usage: cargo run --release --example restep -- DIR...

use golab::reference::cosim::{self, Cosim, Event};
use golab::reference::sched::LiveState;
use golab::reference::{Profile, shape};
use golab::toolchain::GoVersion;
use serde_json::Value;
use std::collections::BTreeMap;

fn main() {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        eprintln!("usage: restep DIR... (folders of fidelity-cosim / fidelity-order JSON)");
        std::process::exit(2);
    }
    // (minor, Ps) -> matched, judged, raced, runs
    let mut cos: BTreeMap<(u32, u64), [usize; 4]> = BTreeMap::new();
    // minor -> as predicted, compared
    let mut ord: BTreeMap<u32, [usize; 2]> = BTreeMap::new();
    let mut notes = Vec::new();
    for d in &dirs {
        let mut files: Vec<_> = match std::fs::read_dir(d) {
            Ok(r) => r
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(e) => {
                eprintln!("{d}: {e}");
                std::process::exit(1);
            }
        };
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let j: Value = match std::fs::read_to_string(&f)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            {
                Ok(j) => j,
                Err(e) => {
                    notes.push(format!("{name}: unreadable: {e}"));
                    continue;
                }
            };
            if let Some(m) = j["error"]["message"].as_str() {
                notes.push(format!("{name}: no result: {m}"));
                continue;
            }
            let o = &j["observation"];
            let Some(v) = o["go_version"]
                .as_str()
                .and_then(|s| GoVersion::parse(s).ok())
            else {
                notes.push(format!("{name}: no Go version"));
                continue;
            };
            let (p, _) = Profile::for_version(v);
            let kinds: Vec<&str> = j["verdict"]["checks"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c["kind"].as_str()).collect())
                .unwrap_or_default();
            if kinds.contains(&"cosim") {
                let ps = o["facts"]["gomaxprocs"].as_u64().unwrap_or(1).max(1);
                let hits: Vec<golab::trace::Hit> =
                    match serde_json::from_value(o["dlv"]["hits"].clone()) {
                        Ok(h) => h,
                        Err(e) => {
                            notes.push(format!("{name}: hits unreadable: {e}"));
                            continue;
                        }
                    };
                let events = Event::from_hits(&cosim::points(&p), &hits);
                let r = Cosim::run(p.minor, ps as usize, &events);
                let t = cos.entry((p.minor, ps)).or_default();
                t[0] += r.matched;
                t[1] += r.judged;
                t[2] += r.raced;
                t[3] += 1;
                for x in &r.disagreements {
                    notes.push(format!(
                        "{name}: seq {} (thread {}) {}: {:?}; model {}; runtime {}",
                        x.seq,
                        x.thread,
                        x.what,
                        x.judged,
                        x.model_state.as_deref().unwrap_or("-"),
                        x.live_state.as_deref().unwrap_or("-")
                    ));
                }
            } else if kinds.contains(&"run-order") {
                for s in o["scenarios"].as_array().into_iter().flatten() {
                    let id = s["id"].as_str().unwrap_or("?");
                    match order_run(&p, s) {
                        Ok(None) => {}
                        Ok(Some(miss)) => {
                            let t = ord.entry(p.minor).or_default();
                            t[1] += 1;
                            match miss {
                                None => t[0] += 1,
                                Some(m) => notes.push(format!("{name} {id}: {m}")),
                            }
                        }
                        Err(e) => notes.push(format!("{name} {id}: not predicted: {e}")),
                    }
                }
            }
        }
    }
    if !cos.is_empty() {
        println!("| Go | Ps | runs | matched/judged | % | raced |");
        println!("|---|---|---|---|---|---|");
        for ((m, ps), t) in &cos {
            println!(
                "| go1.{m} | {ps} | {} | {}/{} | {:.2}% | {} |",
                t[3],
                t[0],
                t[1],
                100.0 * t[0] as f64 / t[1].max(1) as f64,
                t[2]
            );
        }
    }
    if !ord.is_empty() {
        println!("| Go | runs as predicted / compared |");
        println!("|---|---|");
        for (m, t) in &ord {
            println!("| go1.{m} | {}/{} |", t[0], t[1]);
        }
    }
    for n in notes {
        println!("  {n}");
    }
}

/// One whole-order scenario run: None when it is not comparable (disturbed, no shape,
/// no order printed), else whether the prediction held (None) or the first divergence.
fn order_run(p: &Profile, s: &Value) -> Result<Option<Option<String>>, String> {
    if s["disturbances"].as_array().is_some_and(|d| !d.is_empty()) {
        return Ok(None);
    }
    let (Some(prog), Some(obs)) = (s["shape"]["program"].as_object(), s["observed"].as_array())
    else {
        return Ok(None);
    };
    let prog: shape::Program =
        serde_json::from_value(Value::Object(prog.clone())).map_err(|e| e.to_string())?;
    let obs: Vec<i64> = obs.iter().filter_map(|x| x.as_i64()).collect();
    let live = &s["live"];
    let [tick, head, tail, next, global] = p.live_state_exprs();
    let get = |e: &str| -> Result<u64, String> {
        live[format!("eval {e}")]
            .as_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{e} not read at main.main"))
    };
    let (h, t) = (get(head)?, get(tail)?);
    let state = LiveState {
        schedtick: get(tick)? as u32,
        runqhead: h as u32,
        local_len: t.wrapping_sub(h) as u32,
        runnext: get(next)? != 0,
        global_len: get(global)? as u32,
    };
    let after: Vec<u32> = serde_json::from_value(s["preempted_after"].clone()).unwrap_or_default();
    let at: Vec<Vec<String>> =
        serde_json::from_value(s["preempted_at"].clone()).unwrap_or_default();
    let mut pre: Vec<(u32, Vec<String>)> = after
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, at.get(i).cloned().unwrap_or_default()))
        .collect();
    pre.sort_by_key(|(k, _)| *k);
    let pr = shape::predict(p, &prog, &state, &pre)?;
    if pr.order == obs {
        return Ok(Some(None));
    }
    let i = pr
        .order
        .iter()
        .zip(&obs)
        .position(|(a, b)| a != b)
        .unwrap_or(pr.order.len().min(obs.len()));
    Ok(Some(Some(format!(
        "first divergence at position {i}: predicted {:?}, observed {:?} (preempted {pre:?})",
        &pr.order[i..(i + 5).min(pr.order.len())],
        &obs[i..(i + 5).min(obs.len())]
    ))))
}

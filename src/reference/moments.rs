//! The notable moments of a run-order explanation: where the local ring overflows
//! (runqputslow), where schedtick % 61 makes the scheduler look at the global queue
//! first, where globrunqget refills the ring, where a picked g inherits the time slice,
//! and where sysmon preempts. `golab explain --summary` prints just these.

use super::sched::{Explanation, Snapshot};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Runqputslow,
    Schedtick61,
    Globrunqget,
    InheritTime,
    Preempt,
    Idle,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Runqputslow => "runqputslow",
            Kind::Schedtick61 => "schedtick % 61",
            Kind::Globrunqget => "globrunqget",
            Kind::InheritTime => "inheritTime",
            Kind::Preempt => "preempted",
            Kind::Idle => "P idle",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Moment {
    pub kind: Kind,
    /// The first and last step of the moment (a run of inheritTime picks is one).
    pub from: usize,
    pub to: usize,
    pub text: String,
}

fn kinds(st: &Snapshot) -> Vec<(Kind, String)> {
    let mut v = Vec::new();
    for n in &st.notes {
        let k = if n.contains("runqputslow") {
            Kind::Runqputslow
        } else if n.contains("% 61") {
            Kind::Schedtick61
        } else if n.starts_with("globrunqget") {
            Kind::Globrunqget
        } else if n.contains("sysmon") || n.contains("goschedImpl") {
            Kind::Preempt
        } else if n.contains("pidleput") {
            Kind::Idle
        } else {
            continue;
        };
        v.push((k, n.clone()));
    }
    if st.inherit_time == Some(true) {
        v.push((
            Kind::InheritTime,
            format!(
                "{} from runnext inherits the time slice: schedtick stays {}",
                st.picked.as_deref().unwrap_or("?"),
                st.schedtick
            ),
        ));
    }
    v
}

/// The moments in step order; consecutive inheritTime picks fold into one.
pub fn moments(e: &Explanation) -> Vec<Moment> {
    let mut out: Vec<Moment> = Vec::new();
    for st in &e.steps {
        for (k, text) in kinds(st) {
            if k == Kind::InheritTime
                && let Some(last) = out.last_mut()
                && last.kind == Kind::InheritTime
            {
                last.to = st.step;
                continue;
            }
            out.push(Moment {
                kind: k,
                from: st.step,
                to: st.step,
                text,
            });
        }
    }
    for m in out
        .iter_mut()
        .filter(|m| m.kind == Kind::InheritTime && m.to > m.from)
    {
        let picks = e.steps[m.from..=m.to]
            .iter()
            .filter(|s| s.inherit_time == Some(true))
            .count();
        m.text = format!(
            "{picks} picks from runnext inherit the time slice (schedtick unchanged); the first: {}",
            m.text
        );
    }
    out
}

/// `golab explain --summary`.
pub fn summary(e: &Explanation) -> String {
    let mut s = format!(
        "runq-order: Go 1.{} model, N={}, {:?}, Gosched={:?}: {} steps, {} notable moments\n",
        e.profile.minor,
        e.scenario.n,
        e.scenario.block,
        e.scenario.gosched,
        e.steps.len(),
        moments(e).len()
    );
    for m in moments(e) {
        let at = if m.to > m.from {
            format!("steps {}-{}", m.from, m.to)
        } else {
            format!("step {}", m.from)
        };
        let st = &e.steps[m.to];
        s.push_str(&format!(
            "[{at:>11}] {:<15} {}\n              tick={} runnext={} local({}) global({})\n",
            m.kind.label(),
            m.text,
            st.schedtick,
            st.runnext.as_deref().unwrap_or("-"),
            st.local_len,
            st.global_len
        ));
    }
    let order: Vec<String> = e.order.iter().map(|i| i.to_string()).collect();
    s.push_str(&format!("order: {}\n", order.join(" ")));
    if let Some(err) = &e.error {
        s.push_str(&format!("stopped: {err}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Profile;
    use crate::reference::sched::{LiveState, Scenario, simulate};

    #[test]
    fn three_hundred_goroutines_overflow_the_ring_once_and_fairness_fires() {
        let live = LiveState {
            schedtick: 4,
            runqhead: 0,
            local_len: 0,
            runnext: true,
            global_len: 0,
        };
        let e = simulate(&Profile::line(19), &Scenario::new(300), &live);
        let m = moments(&e);
        assert_eq!(
            m.iter().filter(|m| m.kind == Kind::Runqputslow).count(),
            1,
            "{m:?}"
        );
        assert!(m.iter().any(|m| m.kind == Kind::Schedtick61), "{m:?}");
        assert!(m.iter().any(|m| m.kind == Kind::InheritTime), "{m:?}");
        let s = summary(&e);
        assert!(s.lines().count() < 40, "{s}");
        assert!(s.contains("runqputslow"));
        // The full explanation is far longer.
        assert!(e.render().lines().count() > 1000);
    }
}

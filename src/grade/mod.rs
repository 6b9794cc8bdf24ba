//! Grading students' lab submissions: answers checked against what golab observes
//! when it runs the lab for that submission (in a sandbox) and against the Reference.

pub mod answers;
pub mod batch;
pub mod commands;
pub mod gradebook;
pub mod grader;
pub mod gradescope;
pub mod handout;
pub mod model;
// The reduced isolation (a uid, rlimits, a cgroup, the sandbox's killer): Linux only too.
#[cfg(target_os = "linux")]
pub mod reduced;
pub mod render;
// The sandbox (bubblewrap, uid switching, /proc monitoring) exists only on Linux.
#[cfg(target_os = "linux")]
pub mod sandbox;
#[cfg(target_os = "linux")]
pub mod sandboxed;
pub mod setup;
pub mod submission;
pub mod transcript;
pub mod variant;

/// In the grader's observer (`golab run` handed `GOLAB_JAIL`), makes the machine layer
/// run the student's program (dlv, gdb) in that sandbox. Elsewhere, and on hosts
/// without the sandbox, nothing to do (a `GOLAB_JAIL` there is refused when a command
/// would need it).
pub fn enter_observer_jail() {
    #[cfg(target_os = "linux")]
    sandbox::jail::install();
}

/// What `golab grade`/`check` say on a host without the sandbox.
pub const SANDBOX_ONLY_ON_LINUX: &str = "sandboxed grading runs only on Linux (bubblewrap, \
     unprivileged uids, /proc): grade on a Linux machine or in the lab VM (`golab up`, then \
     `golab ssh`), or pass --no-sandbox for code you trust";

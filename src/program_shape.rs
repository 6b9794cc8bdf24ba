//! What `tools/goshape` reads from a lab program's syntax (each goroutine's
//! scheduler-visible steps, or why it cannot be followed): plain data, shared by the
//! observation (`trace::ScenarioRun::shape`) and the reference that replays it
//! (`reference::shape::predict`), so that neither layer imports the other.

use serde::{Deserialize, Serialize};

/// The helper's source, built with the lab's Go when a run-order lab runs.
pub const HELPER_SOURCE: &str = include_str!("../tools/goshape/main.go");
pub const HELPER_GO_MOD: &str = include_str!("../tools/goshape/go.mod");

/// One step of a goroutine that the scheduler sees.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Op {
    /// `go`, `gosched`, `record`, `send`, `recv`, `close`, `wgadd`, `wgwait`, `exit`;
    /// `rangerecv` (a receive of `for range ch`; `n`: how many steps a close skips)
    /// and `loop` (back `n` steps to its `rangerecv`).
    pub op: String,
    /// For `go`: the index of the new goroutine.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub g: usize,
    /// For channel operations: the channel (1-based, in the order of `make`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ch: usize,
    /// For WaitGroup operations: the WaitGroup (1-based).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wg: usize,
    /// For `record`: the value; for `wgadd`: the delta; for `rangerecv`/`loop`: a jump.
    #[serde(default, skip_serializing_if = "is_zero_i")]
    pub n: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// `main.go:12`.
    #[serde(default)]
    pub pos: String,
}

fn is_zero(x: &usize) -> bool {
    *x == 0
}
fn is_zero_i(x: &i64) -> bool {
    *x == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Goroutine {
    pub label: String,
    pub ops: Vec<Op>,
}

/// What the helper worked out for one scenario: goroutine 0 is main.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Program {
    #[serde(default)]
    pub goroutines: Vec<Goroutine>,
    /// Each channel's capacity.
    #[serde(default)]
    pub chans: Vec<i64>,
    #[serde(default)]
    pub wgs: usize,
}

/// The helper's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    Program(Program),
    /// Why the whole-order model cannot predict this program ("main.go:12: select ...").
    Refused(String),
    /// golab's helper could not be built or run: nothing is known about the program.
    Failed(String),
}

impl Shape {
    /// Parses the helper's JSON line.
    pub fn from_json(text: &str) -> Result<Shape, String> {
        #[derive(Deserialize)]
        struct Out {
            #[serde(default)]
            refused: Option<String>,
            #[serde(flatten)]
            program: Program,
        }
        let o: Out = serde_json::from_str(text.trim())
            .map_err(|e| format!("the shape helper's answer is not JSON ({e}): {text}"))?;
        Ok(match o.refused {
            Some(r) => Shape::Refused(r),
            None => Shape::Program(o.program),
        })
    }
}

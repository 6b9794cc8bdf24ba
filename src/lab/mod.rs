//! The `lab.yaml` schema: what a lab builds, where the debuggers stop, and what is checked.
//!
//! A lab is a folder under `labs/` holding a Go program and a `lab.yaml`. Course authors
//! add labs here without touching Rust: the check kinds are generic (chains, callers,
//! values read in the live process) and a lab picks and parameterises them.
//! Unknown keys and wrong types are errors that name the file, the line and the key.

pub mod fact;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    pub name: String,
    pub title: String,
    /// Which chain of the Reference this lab is checked against (`startup`), if any.
    #[serde(default)]
    pub chain: Option<String>,
    pub program: Program,
    pub dlv: DlvPlan,
    #[serde(default)]
    pub gdb: Option<GdbPlan>,
    pub checks: Vec<CheckSpec>,
    /// What students answer in answers.yaml, and how each answer is checked.
    #[serde(default)]
    pub questions: Vec<Question>,
    /// How `golab assign` varies the program per student (see `grade::variant`).
    #[serde(default)]
    pub variant: Option<VariantSpec>,
    /// Runs of the program with different arguments, each its own dlv session
    /// (the runq-order lab: N goroutines, how main waits, who yields).
    #[serde(default)]
    pub scenarios: Vec<ScenarioSpec>,
    /// The deadline, extensions and late penalty (`golab grade` options override it).
    #[serde(default)]
    pub late: Option<LatePolicy>,
    /// The folder the lab was loaded from (not part of the file).
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// gcflags for `go build`; the lab needs optimisation and inlining off.
    #[serde(default = "default_gcflags")]
    pub gcflags: String,
    /// Arguments the program runs with (argv[1..]); makes argc distinctive.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment for the debugged run, with the reason in `env_why`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub env_why: Option<String>,
    /// Wall-clock limit for each debugger session, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_gcflags() -> String {
    "all=-l -N".into()
}
fn default_timeout() -> u64 {
    120
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DlvPlan {
    pub breakpoints: Vec<BreakpointSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GdbPlan {
    pub breakpoints: Vec<BreakpointSpec>,
}

/// A question students answer in answers.yaml.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub kind: QuestionKind,
    pub title: String,
    /// Automatic points (free text: 0, kept for a person to grade).
    #[serde(default)]
    pub points: f64,
    /// For `callers`: the runtime functions whose callers are asked.
    #[serde(default)]
    pub functions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuestionKind {
    /// `{address, symbol}` of the student's build: checked against the build (same Go).
    EntryPoint,
    /// The startup chain in order: LCS against the reference chain for the Go used.
    Chain,
    /// Callers of each function: set overlap with the Go version's source table.
    Callers,
    /// The run order of the student's runq-order variant: against the real run.
    RunOrder,
    /// Free text: shown in the report for a person to grade.
    FreeText,
}

/// How a lab's program varies between students. The template is the program with
/// `{{ name }}` placeholders (minijinja, strict about undefined names); each parameter
/// draws one of its choices from the student's id and the course's seed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// The template file, relative to the lab folder (e.g. `variant/main.go.tmpl`).
    pub template: String,
    /// Parameter name -> its choices (strings; lists are joined by the template).
    pub params: BTreeMap<String, Vec<serde_norway::Value>>,
    /// For labs with scenarios: which scenario fields the variant sets (n, block, gosched)
    /// from parameters of the same names.
    #[serde(default)]
    pub scenario: bool,
}

/// One run-order scenario: the program runs as `./main ARGS...` (`args`), or, for the
/// runq-order program, as `./main N BLOCK GOSCHED [main:K,...]` from the fields below.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub id: String,
    /// The program's arguments as they are; then `n`, `block`, `gosched` and
    /// `main_gosched` are not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub n: u32,
    /// How main waits: `wg` (sync.WaitGroup) or `chan` (a buffered channel).
    #[serde(default = "default_block")]
    pub block: String,
    /// Which goroutines call runtime.Gosched() before recording: `none`, `all`, `every:K`.
    #[serde(default = "default_gosched")]
    pub gosched: String,
    /// After how many `go` statements main itself calls runtime.Gosched() (main goes to
    /// the global queue's tail, as when sysmon preempts it), e.g. `[3, 7]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub main_gosched: Vec<u32>,
}

fn default_block() -> String {
    "wg".into()
}
fn default_gosched() -> String {
    "none".into()
}

impl ScenarioSpec {
    pub fn args(&self) -> Vec<String> {
        if let Some(a) = &self.args {
            return a.clone();
        }
        let mut a = vec![self.n.to_string(), self.block.clone(), self.gosched.clone()];
        if !self.main_gosched.is_empty() {
            let k: Vec<String> = self.main_gosched.iter().map(|k| k.to_string()).collect();
            a.push(format!("main:{}", k.join(",")));
        }
        a
    }

    /// The spec back from a run's arguments (`N BLOCK GOSCHED [main:K,...]`).
    pub fn from_args(id: &str, args: &[String]) -> ScenarioSpec {
        ScenarioSpec {
            id: id.to_string(),
            args: None,
            n: args.first().and_then(|a| a.parse().ok()).unwrap_or(0),
            block: args.get(1).cloned().unwrap_or_else(default_block),
            gosched: args.get(2).cloned().unwrap_or_else(default_gosched),
            main_gosched: args
                .get(3)
                .and_then(|a| a.strip_prefix("main:"))
                .map(|l| l.split(',').filter_map(|k| k.parse().ok()).collect())
                .unwrap_or_default(),
        }
    }

    /// The model's scenario, or why this one cannot be modelled.
    pub fn model(&self) -> Result<crate::reference::sched::Scenario, String> {
        use crate::reference::sched::{Block, Scenario, Yield};
        let block = match self.block.as_str() {
            "wg" => Block::WaitGroup,
            "chan" => Block::BufferedChan,
            other => {
                return Err(format!(
                    "scenario '{}': block '{other}' is not wg or chan",
                    self.id
                ));
            }
        };
        let gosched = match self.gosched.as_str() {
            "none" => Yield::None,
            "all" => Yield::All,
            g => match g.strip_prefix("every:").and_then(|k| k.parse::<u32>().ok()) {
                Some(k) if k > 0 => Yield::EveryNth(k),
                _ => {
                    return Err(format!(
                        "scenario '{}': gosched '{g}' is not none, all or every:K",
                        self.id
                    ));
                }
            },
        };
        let mut main = self.main_gosched.clone();
        main.sort_unstable();
        if main.iter().any(|k| *k > self.n) {
            return Err(format!(
                "scenario '{}': main_gosched {:?} goes past its {} go statements",
                self.id, self.main_gosched, self.n
            ));
        }
        Ok(Scenario {
            n: self.n,
            block,
            gosched,
            // runtime.Gosched() in main is what sysmon's preemption of main does:
            // goschedImpl puts main at the global queue's tail.
            main_preempted_after: main,
        })
    }
}

/// A breakpoint on a function: `runtime.schedinit`, or `{function: ..., max_hits: N}`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BreakpointSpec {
    Name(String),
    Full(BreakpointFull),
}

/// A name or a map, read so that a mistake inside the map is reported with its own
/// words and line (an untagged enum would only say "did not match any variant").
macro_rules! name_or_map {
    ($ty:ident, $name:ident, $full:ident, $inner:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        Ok($ty::$name(v.to_string()))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        m: A,
                    ) -> Result<$ty, A::Error> {
                        let full =
                            <$inner>::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                        Ok($ty::$full(full))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

name_or_map!(
    BreakpointSpec,
    Name,
    Full,
    BreakpointFull,
    "a function name (runtime.gopark) or a map with `function:` and optionally max_hits, go, means, read"
);

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakpointFull {
    pub function: String,
    /// Hits recorded before the breakpoint is cleared; 0 means never cleared.
    #[serde(default = "default_max_hits")]
    pub max_hits: u32,
    /// Go versions this breakpoint applies to, e.g. `>=1.17`.
    #[serde(default)]
    pub go: Option<String>,
    /// What a hit means, in the report's words (e.g. "sysmon preempted a goroutine").
    #[serde(default)]
    pub means: Option<String>,
    /// Go expressions read at every hit (through dlv's Eval).
    #[serde(default)]
    pub read: Vec<String>,
}

fn default_max_hits() -> u32 {
    5
}

impl BreakpointSpec {
    pub fn function(&self) -> &str {
        match self {
            BreakpointSpec::Name(n) => n,
            BreakpointSpec::Full(f) => &f.function,
        }
    }
    pub fn max_hits(&self) -> u32 {
        match self {
            BreakpointSpec::Name(_) => default_max_hits(),
            BreakpointSpec::Full(f) => f.max_hits,
        }
    }
    pub fn reads(&self) -> &[String] {
        match self {
            BreakpointSpec::Name(_) => &[],
            BreakpointSpec::Full(f) => &f.read,
        }
    }
    pub fn means(&self) -> Option<&str> {
        match self {
            BreakpointSpec::Name(_) => None,
            BreakpointSpec::Full(f) => f.means.as_deref(),
        }
    }
    pub fn go(&self) -> Option<&str> {
        match self {
            BreakpointSpec::Name(_) => None,
            BreakpointSpec::Full(f) => f.go.as_deref(),
        }
    }
}

/// One graded check of the lab.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub id: String,
    pub kind: CheckKind,
    #[serde(default = "default_points")]
    pub points: u32,
    /// What the lab notes claim, in words (shown in the report).
    #[serde(default)]
    pub says: Option<String>,
    /// A correction or remark shown with the result.
    #[serde(default)]
    pub note: Option<String>,
    /// Go versions the check applies to, e.g. `>=1.17`.
    #[serde(default)]
    pub go: Option<String>,
    /// For `kind: value`: what to read in the live process and what it must equal.
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// For `static-callers` and `dynamic-callers`: the runtime functions whose callers
    /// are checked (a name of any version: `runtime.findrunnable` finds `findRunnable`).
    #[serde(default)]
    pub functions: Vec<String>,
    /// For `chain-order` and `chain-callers`: the lab's own chain, in order, instead of
    /// the reference's startup chain: each step a function (a breakpoint of the lab),
    /// optionally the caller its first stop must show (wrappers folded) and a Go range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<ChainStep>,
    /// For `run-order`: the program's function whose calls record a value (its first
    /// argument); the program prints `order V1 V2 ...` at the end. Default `record`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// One step of a lab-defined chain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChainStep {
    pub function: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// Judge the first stop after the first stop in this function (`main.main`: not
    /// the runtime's own calls before the program starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go: Option<String>,
}

fn default_points() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The binary was built with `-l -N`: DWARF present, `main.args` a function symbol.
    BuildFlags,
    /// readelf, gdb and the ELF header agree on the entry point; the symbol there.
    EntryPoint,
    /// First hits in the Reference's order.
    ChainOrder,
    /// Each step's caller (wrappers folded) is the Reference's.
    ChainCallers,
    /// `main.main`'s `go` statement: newproc -> newproc1 -> runqput(next).
    GoStatement,
    /// `sysmon` runs on a thread of its own.
    SysmonThread,
    /// dlv and gdb agree on addresses and callers where both looked.
    WitnessesAgree,
    /// Each ABI wrapper hit disassembles to a call of the real function.
    WrapperDisassembly,
    /// Values read in the live process (registers, runtime variables).
    Value,
    /// Callers found in the binary's machine code vs the Reference's caller table.
    StaticCallers,
    /// Every caller seen at a breakpoint is one the Reference's caller table allows.
    DynamicCallers,
    /// Each scenario's goroutines ran in the order the scheduler model predicts.
    RunOrder,
    /// The scheduler model stepped in lockstep with the live runtime: every transition
    /// (runqput, runqget, steals, the global queue, execute, gopark, ready, ...) with the
    /// state it acted on, read through dlv, against the model's prediction. Any program,
    /// any GOMAXPROCS.
    Cosim,
}

/// `at` a stop, read `eval` (a Go expression, through dlv) or `reg` (a register) and
/// compare with `equals`: a fact golab knows (`argc`, `argv`, `page-size`, `ncpu`,
/// `gomaxprocs`, `symbol NAME`), or a literal (`10000`, `true`, `0`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub at: StopSpec,
    /// Go versions this expectation applies to (a runtime variable may be renamed).
    #[serde(default)]
    pub go: Option<String>,
    #[serde(default)]
    pub eval: Option<String>,
    #[serde(default)]
    pub reg: Option<String>,
    pub equals: String,
}

/// Which stop: the first hit of the real function (not its ABI wrapper), optionally
/// the first whose caller (wrappers folded) is `caller`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StopSpec {
    Function(String),
    Full {
        function: String,
        caller: Option<String>,
        scope: crate::trace::Scope,
    },
}

/// Written back as the author writes it (`golab assign` saves a lab.yaml per student).
impl Serialize for StopSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            function: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            caller: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            after: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            inside: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            goroutine: Option<&'a str>,
        }
        match self {
            StopSpec::Function(f) => s.serialize_str(f),
            StopSpec::Full {
                function,
                caller,
                scope,
            } => Out {
                function,
                caller: caller.as_deref(),
                after: scope.after.as_deref(),
                inside: scope.inside.as_deref(),
                goroutine: scope.program_goroutine.then_some("program"),
            }
            .serialize(s),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopFull {
    function: String,
    #[serde(default)]
    caller: Option<String>,
    /// Only hits after the first hit of this function (`after: main.main`).
    #[serde(default)]
    after: Option<String>,
    /// Only hits with this function among their callers (wrappers folded).
    #[serde(default)]
    inside: Option<String>,
    /// `goroutine: program`: only hits on a goroutine running the program's code.
    #[serde(default)]
    goroutine: Option<GoroutineScope>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum GoroutineScope {
    Program,
    Any,
}

impl<'de> Deserialize<'de> for StopSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum Tmp {
            F(String),
            M(StopFull),
        }
        struct W(Tmp);
        name_or_map!(
            W,
            F,
            M,
            StopFull,
            "a function name or a map with `function:` and optionally `caller:`, `after:`, `inside:`, `goroutine: program`"
        );
        #[allow(non_snake_case)]
        impl W {
            fn F(s: String) -> W {
                W(Tmp::F(s))
            }
            fn M(m: StopFull) -> W {
                W(Tmp::M(m))
            }
        }
        Ok(match W::deserialize(d)?.0 {
            Tmp::F(f) => StopSpec::Function(f),
            Tmp::M(m) => StopSpec::Full {
                function: m.function,
                caller: m.caller,
                scope: crate::trace::Scope {
                    after: m.after,
                    inside: m.inside,
                    program_goroutine: m.goroutine == Some(GoroutineScope::Program),
                },
            },
        })
    }
}

impl StopSpec {
    pub fn function(&self) -> &str {
        match self {
            StopSpec::Function(f) => f,
            StopSpec::Full { function, .. } => function,
        }
    }
    pub fn caller(&self) -> Option<&str> {
        match self {
            StopSpec::Function(_) => None,
            StopSpec::Full { caller, .. } => caller.as_deref(),
        }
    }
    pub fn scope(&self) -> crate::trace::Scope {
        match self {
            StopSpec::Function(_) => Default::default(),
            StopSpec::Full { scope, .. } => scope.clone(),
        }
    }
    pub fn describe(&self) -> String {
        let mut d = match self.caller() {
            Some(c) => format!("{} (called from {c})", self.function()),
            None => self.function().to_string(),
        };
        let scope = self.scope();
        if !scope.is_any() {
            d.push_str(&format!(" [{}]", scope.describe()));
        }
        d
    }
}

/// The folder holding the labs golab knows by name: `GOLAB_LABS`, else the `labs/` of
/// the clone the executable was built in (found upward from the executable, so edits to a
/// clone's labs count without a rebuild), else the labs embedded in the binary, written
/// once into the cache (`embedded::labs_folder`).
pub fn labs_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("GOLAB_LABS").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe() {
        for a in exe.ancestors().skip(1) {
            let c = a.join("labs");
            if c.join("startup-trace").join("lab.yaml").is_file() && a.join("Cargo.toml").is_file()
            {
                return Ok(c);
            }
        }
    }
    crate::embedded::labs_folder()
}

/// Loads a lab by name (a folder under the labs dir) or by path to its folder.
pub fn load(name_or_path: &str) -> Result<Lab> {
    let p = Path::new(name_or_path);
    let dir = if p.join("lab.yaml").is_file() {
        p.to_path_buf()
    } else {
        labs_dir()?.join(name_or_path)
    };
    let file = dir.join("lab.yaml");
    if !file.is_file() {
        let known = list()
            .map(|l| {
                l.iter()
                    .map(|l| l.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        bail!(
            "no lab named '{name_or_path}': {} does not exist (bundled labs: {known})",
            file.display()
        );
    }
    load_file(&file)
}

pub fn load_file(file: &Path) -> Result<Lab> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut lab = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    lab.dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    Ok(lab)
}

/// Parses and validates a lab file's text; errors carry the line and column.
pub fn parse(text: &str) -> Result<Lab, String> {
    let lab: Lab = serde_norway::from_str(text).map_err(|e| describe_yaml_error(&e))?;
    validate(&lab)?;
    Ok(lab)
}

fn describe_yaml_error(e: &serde_norway::Error) -> String {
    let msg = e.to_string();
    match e.location() {
        // serde_norway (serde_yaml's maintained fork) already appends "at line L column C"; make the line lead.
        Some(loc) => {
            let core = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            format!("line {}, column {}: {core}", loc.line(), loc.column())
        }
        None => msg,
    }
}

fn validate(lab: &Lab) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for c in &lab.checks {
        if !seen.insert(c.id.as_str()) {
            return Err(format!("check id '{}' is used twice", c.id));
        }
        if let Some(g) = &c.go {
            crate::toolchain::GoRange::parse(g)
                .map_err(|e| format!("check '{}': go: {e}", c.id))?;
        }
        if c.kind == CheckKind::Value {
            if c.expect.is_empty() {
                return Err(format!(
                    "check '{}' of kind value needs at least one `expect`",
                    c.id
                ));
            }
            for x in &c.expect {
                if let Some(g) = &x.go {
                    crate::toolchain::GoRange::parse(g)
                        .map_err(|e| format!("check '{}': go: {e}", c.id))?;
                }
                match (&x.eval, &x.reg) {
                    (Some(_), None) | (None, Some(_)) => {}
                    _ => {
                        return Err(format!(
                            "check '{}': each expect needs exactly one of `eval` or `reg`",
                            c.id
                        ));
                    }
                }
                fact::Fact::parse(&x.equals)
                    .map_err(|e| format!("check '{}': equals: {e}", c.id))?;
            }
        } else if !c.expect.is_empty() {
            return Err(format!(
                "check '{}': `expect` belongs to checks of kind value",
                c.id
            ));
        }
        let wants_functions =
            matches!(c.kind, CheckKind::StaticCallers | CheckKind::DynamicCallers);
        if wants_functions && c.functions.is_empty() {
            return Err(format!("check '{}' needs a list of `functions`", c.id));
        }
        if !wants_functions && !c.functions.is_empty() {
            return Err(format!(
                "check '{}': `functions` belongs to checks of kind static-callers or dynamic-callers",
                c.id
            ));
        }
        let chain_kinds = matches!(c.kind, CheckKind::ChainOrder | CheckKind::ChainCallers);
        if !c.steps.is_empty() && !chain_kinds {
            return Err(format!(
                "check '{}': `steps` goes with kind chain-order or chain-callers",
                c.id
            ));
        }
        for st in &c.steps {
            if !lab
                .dlv
                .breakpoints
                .iter()
                .any(|b| b.function() == st.function)
            {
                return Err(format!(
                    "check '{}': step {} has no breakpoint: add it to dlv.breakpoints",
                    c.id, st.function
                ));
            }
            if let Some(g) = &st.go {
                crate::toolchain::GoRange::parse(g)
                    .map_err(|e| format!("check '{}': step {}: {e}", c.id, st.function))?;
            }
        }
        if chain_kinds && c.steps.is_empty() && lab.chain.as_deref() != Some("startup") {
            return Err(format!(
                "check '{}' compares with a reference chain: set `chain: startup`, or list the lab's own `steps`",
                c.id
            ));
        }
    }
    let mut ids = std::collections::HashSet::new();
    for s in &lab.scenarios {
        if !ids.insert(s.id.as_str()) {
            return Err(format!("scenario id '{}' is used twice", s.id));
        }
        if s.args.is_none() {
            s.model()?;
        }
    }
    if lab.checks.iter().any(|c| c.kind == CheckKind::RunOrder) {
        if lab.scenarios.is_empty() {
            return Err("a run-order check needs `scenarios`".into());
        }
        if let Some(g) = lab
            .program
            .env
            .get("GOMAXPROCS")
            .filter(|g| g.trim() != "1")
        {
            return Err(format!(
                "this program is not one the run-order model predicts: GOMAXPROCS is \"{g}\" and the whole-order model has one P; use the co-simulation check (kind: cosim)"
            ));
        }
    }
    let mut qids = std::collections::HashSet::new();
    for q in &lab.questions {
        if !qids.insert(q.id.as_str()) {
            return Err(format!("question id '{}' is used twice", q.id));
        }
        if q.kind == QuestionKind::FreeText && q.points != 0.0 {
            return Err(format!(
                "question '{}': free-text answers are graded by a person: points must be 0",
                q.id
            ));
        }
        if (q.kind == QuestionKind::Callers) == q.functions.is_empty() {
            return Err(format!(
                "question '{}': `functions` goes with kind callers, and only there",
                q.id
            ));
        }
    }
    for b in &lab.dlv.breakpoints {
        if b.function() == "@chain" && lab.chain.is_none() {
            return Err("breakpoint \"@chain\" needs `chain:` (e.g. `chain: startup`)".into());
        }
        if let Some(g) = b.go() {
            crate::toolchain::GoRange::parse(g)
                .map_err(|e| format!("breakpoint {}: go: {e}", b.function()))?;
        }
    }
    Ok(())
}

/// Every bundled lab, sorted by name.
pub fn list() -> Result<Vec<Lab>> {
    let dir = labs_dir()?;
    let mut labs = Vec::new();
    for e in std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read the labs folder {}", dir.display()))?
    {
        let e = e?;
        let f = e.path().join("lab.yaml");
        if f.is_file() {
            labs.push(load_file(&f)?);
        }
    }
    labs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(labs)
}

/// `golab labs`: one line per bundled lab.
pub fn listing_text(labs: &[Lab]) -> String {
    labs.iter()
        .map(|l| format!("{:<18} {}\n", l.name, l.title))
        .collect()
}

/// `golab labs --json` (schema golab.labs): where the labs were read, and each one's size.
pub fn listing_json(labs: &[Lab]) -> Result<String> {
    let labs: Vec<_> = labs
        .iter()
        .map(|l| {
            serde_json::json!({
                "name": l.name,
                "title": l.title,
                "dir": l.dir,
                "checks": l.checks.len(),
                "questions": l.questions.len(),
                "scenarios": l.scenarios.len(),
            })
        })
        .collect();
    Ok(crate::exit::document(
        crate::exit::Doc::Labs,
        serde_json::json!({"labs_dir": labs_dir()?, "labs": labs}),
    ))
}

/// A deadline, per-student extensions and what lateness costs. In lab.yaml as `late:`,
/// or from the command line (`golab grade --deadline ... --late-penalty ...`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LatePolicy {
    /// The deadline (RFC 3339, e.g. 2026-12-01T23:59:00Z).
    pub deadline: String,
    /// Percent of the score lost per started day late.
    #[serde(default)]
    pub penalty_per_day: f64,
    /// Later than this many days: no points.
    #[serde(default)]
    pub max_days: Option<f64>,
    /// Per-student deadlines that replace the course's.
    #[serde(default)]
    pub extensions: BTreeMap<String, String>,
}
// (Checked and applied by `grade::gradebook`, where lateness is scored.)

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_startup_lab_loads() {
        let lab =
            load_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace/lab.yaml"))
                .unwrap();
        assert_eq!(lab.name, "startup-trace");
        assert_eq!(lab.program.gcflags, "all=-l -N");
        assert!(
            lab.dlv
                .breakpoints
                .iter()
                .any(|b| b.function() == "runtime.newproc" && b.max_hits() == 0)
        );
    }

    #[test]
    fn an_unknown_key_names_its_line_and_key() {
        let text = "name: x\ntitle: t\nchain: startup\nprogram: {}\ndlv:\n  breakpoints: []\n  brekpoints: []\nchecks: []\n";
        let err = parse(text).unwrap_err();
        assert!(err.starts_with("line 7,"), "{err}");
        assert!(err.contains("unknown field `brekpoints`"), "{err}");
    }

    #[test]
    fn a_misspelled_breakpoint_field_says_which_and_where() {
        let text = "name: x\ntitle: t\nprogram: {}\ndlv:\n  breakpoints:\n    - runtime.gopark\n    - {fuction: runtime.goready}\nchecks: []\n";
        let err = parse(text).unwrap_err();
        assert!(err.starts_with("line 7,"), "{err}");
        assert!(err.contains("unknown field `fuction`"), "{err}");
        assert!(!err.contains("untagged"), "{err}");
        let text = "name: x\ntitle: t\nprogram: {}\ndlv: {breakpoints: []}\nchecks:\n- id: a\n  kind: value\n  expect:\n  - {at: {function: runtime.gopark, caler: main.main}, eval: reason, equals: waitReasonChanReceive}\n";
        let err = parse(text).unwrap_err();
        assert!(err.contains("unknown field `caler`"), "{err}");
    }

    #[test]
    fn a_scoped_stop_is_written_back_as_read() {
        let text = "name: x\ntitle: t\nprogram: {}\ndlv: {breakpoints: [runtime.gopark]}\nchecks:\n- id: a\n  kind: value\n  expect:\n  - {at: {function: runtime.gopark, after: main.main, goroutine: program}, eval: reason, equals: waitReasonChanReceive}\n";
        let lab = parse(text).unwrap();
        let again = parse(&serde_norway::to_string(&lab).unwrap()).unwrap();
        assert_eq!(lab.checks[0].expect[0].at, again.checks[0].expect[0].at);
        assert!(again.checks[0].expect[0].at.scope().program_goroutine);
    }

    #[test]
    fn whole_order_prediction_refuses_more_than_one_p() {
        let text = "name: x\ntitle: t\nprogram: {env: {GOMAXPROCS: \"2\"}}\ndlv: {breakpoints: []}\nscenarios: [{id: a, n: 3}]\nchecks:\n- {id: r, kind: run-order}\n";
        let err = parse(text).unwrap_err();
        assert!(
            err.contains("not one the run-order model predicts") && err.contains("cosim"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_type_names_its_line() {
        let text = "name: x\ntitle: t\nchain: startup\nprogram:\n  timeout_secs: soon\ndlv: {breakpoints: []}\nchecks: []\n";
        let err = parse(text).unwrap_err();
        assert!(err.starts_with("line 5,"), "{err}");
        assert!(err.contains("timeout_secs"), "{err}");
    }

    #[test]
    fn a_value_check_needs_a_known_fact() {
        let text = "name: x\ntitle: t\nchain: startup\nprogram: {}\ndlv: {breakpoints: []}\nchecks:\n- id: a\n  kind: value\n  expect:\n  - {at: runtime.osinit, eval: runtime.ncpu, equals: cpus}\n";
        let err = parse(text).unwrap_err();
        assert!(err.contains("check 'a'") && err.contains("cpus"), "{err}");
    }
}

//! The dlv JSON-RPC API's types that golab reads: a subset of delve's service/api,
//! unknown fields ignored. `dlv_rpc` speaks the protocol with them and `dlv_console`
//! renders them as dlv's terminal would; neither needs the other.

use crate::trace::Frame;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Function {
    pub name: String,
    pub value: u64,
    /// Compiled with optimisations (dlv then warns: "debugging optimized function").
    pub optimized: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Location {
    pub pc: u64,
    pub file: String,
    pub line: i64,
    pub function: Option<Function>,
}

impl Location {
    pub fn frame(&self) -> Frame {
        Frame {
            function: self
                .function
                .as_ref()
                .map(|f| f.name.clone())
                .unwrap_or_else(|| "?".into()),
            file: self.file.clone(),
            line: self.line.max(0) as u32,
            pc: self.pc,
            entry_pc: self.function.as_ref().is_some_and(|f| f.value == self.pc),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BreakpointInfo {
    pub stacktrace: Vec<Location>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Breakpoint {
    pub id: i64,
    pub addr: u64,
    pub addrs: Vec<u64>,
    pub file: String,
    pub line: i64,
    #[serde(rename = "functionName")]
    pub function_name: String,
    /// Hits per goroutine id (dlv counts no goroutine for a thread without a g).
    #[serde(rename = "hitCount")]
    pub hit_count: HashMap<String, u64>,
    #[serde(rename = "totalHitCount")]
    pub total_hit_count: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Thread {
    pub id: i64,
    pub pc: u64,
    pub file: String,
    pub line: i64,
    pub function: Option<Function>,
    #[serde(rename = "goroutineID")]
    pub goroutine_id: i64,
    #[serde(rename = "breakPoint")]
    pub breakpoint: Option<Breakpoint>,
    #[serde(rename = "breakPointInfo")]
    pub breakpoint_info: Option<BreakpointInfo>,
    /// What `stepout` returned (dlv prints them as "Values returned:").
    #[serde(rename = "ReturnValues")]
    pub return_values: Option<Vec<Variable>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct State {
    #[serde(rename = "Pid")]
    pub pid: i64,
    #[serde(rename = "currentThread")]
    pub current_thread: Option<Thread>,
    #[serde(rename = "Threads")]
    pub threads: Option<Vec<Thread>>,
    pub exited: bool,
    #[serde(rename = "exitStatus")]
    pub exit_status: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Variable {
    pub name: String,
    #[serde(rename = "type")]
    pub typ: String,
    pub kind: u32,
    pub value: String,
    pub addr: u64,
    pub unreadable: String,
    pub children: Vec<Variable>,
    pub len: i64,
    pub cap: i64,
    /// A slice's or string's data address.
    pub base: u64,
    /// dlv's VariableFlags (1 escaped, 2 shadowed, 4 constant, 8 argument, 16 local, 32 return argument).
    pub flags: u32,
}

impl Variable {
    /// The value as one scalar string: a pointer's address, a number, a bool, a name;
    /// an array or slice as its elements' scalars joined by commas.
    pub fn scalar(&self) -> String {
        const POINTER: u32 = 22; // reflect.Ptr
        const ARRAY: u32 = 17; // reflect.Array
        const SLICE: u32 = 23; // reflect.Slice
        if !self.unreadable.is_empty() {
            return format!("unreadable: {}", self.unreadable);
        }
        if self.kind == ARRAY || self.kind == SLICE {
            return self
                .children
                .iter()
                .map(Variable::scalar)
                .collect::<Vec<_>>()
                .join(",");
        }
        if self.kind == POINTER && self.value.is_empty() {
            return self
                .children
                .first()
                .map(|c| c.addr.to_string())
                .unwrap_or_default();
        }
        self.value.clone()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Register {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Value")]
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AsmInstruction {
    #[serde(rename = "Loc")]
    pub loc: Location,
    #[serde(rename = "DestLoc")]
    pub dest: Option<Location>,
    #[serde(rename = "Text")]
    pub text: String,
    /// The instruction's bytes (base64 in the JSON).
    #[serde(rename = "Bytes", deserialize_with = "base64_bytes")]
    pub bytes: Vec<u8>,
    #[serde(rename = "Breakpoint")]
    pub breakpoint: bool,
    #[serde(rename = "AtPC")]
    pub at_pc: bool,
}

/// Go's encoding/json writes a []byte as base64 (or null).
fn base64_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.map(|s| base64_decode(&s)).unwrap_or_default())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Version {
    #[serde(rename = "DelveVersion")]
    pub delve: String,
    #[serde(rename = "TargetGoVersion")]
    pub target_go: String,
}

/// Standard base64 (Go's encoding/json form of []byte).
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

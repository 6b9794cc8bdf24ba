//! golab: the Go runtime internals lab, reproducible, scripted and gradable.
//!
//! The library holds the work; `main.rs` is only the command line. See ARCHITECTURE.md
//! for how the modules hand data to each other.

pub mod check;
pub mod doctor;
pub mod download;
pub mod embedded;
pub mod exec;
pub mod exit;
pub mod files;
pub mod grade;
pub mod html;
pub mod lab;
pub mod lint;
pub mod lookup;
pub mod machine;
pub mod pins;
pub mod probe;
pub mod program_shape;
pub mod progress;
pub mod reference;
pub mod report;
pub mod runner;
pub mod sys;
pub mod toolchain;
pub mod tour;
pub mod trace;

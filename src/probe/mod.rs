//! Probes: one file per tool. Each runs its tool and returns typed data; none of them
//! judges what it saw (that is `check`) or prints it (that is `report`).

pub mod build;
pub mod calls;
pub mod dlv_api;
pub mod dlv_console;
pub mod dlv_rpc;
pub mod dwarf;
pub mod elf;
pub mod gdb_mi;
pub mod readelf;

/// A student's binary is past one of a probe's limits (its machine code, its line
/// table): that part is not read, never held whole, and the checks that need it say
/// "not checked" with this reason.
#[derive(Debug)]
pub struct TooLarge(pub String);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TooLarge {}

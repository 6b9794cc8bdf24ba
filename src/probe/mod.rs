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

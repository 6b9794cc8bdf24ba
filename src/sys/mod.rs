//! Every operating-system call golab makes beyond std's portable API, with its
//! `#[cfg]` halves for Linux and macOS: the only place (with the Linux-only grading
//! sandbox, `grade/sandbox*`) where golab talks to the OS through libc or /proc.
//! `tests/os_calls.rs` fails when such a call appears anywhere else.
//!
//! - [`proc`]: processes: alive or not (kill(pid, 0)), command lines, descendants,
//!   signals.
//! - [`host`]: facts about the machine: logical CPUs as Go counts them, the page size,
//!   a per-boot id, ptrace's yama scope, whether we are in a container, /dev/kvm.

pub mod fs;
pub mod host;
pub mod proc;
pub mod reaper;

/// Whether this build runs on Linux (the grading sandbox, /proc, KVM).
pub const LINUX: bool = cfg!(target_os = "linux");

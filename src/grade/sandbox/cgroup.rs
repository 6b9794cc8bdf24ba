//! Limits the kernel counts over a whole sandbox: one cgroup per job slot uid.
//!
//! The memory controller counts every page the sandbox's processes are charged for:
//! anonymous memory, shared memory (`memfd`, `shm_open`, `MAP_SHARED|MAP_ANONYMOUS`) and
//! the tmpfs files they write, which RSS-based polling and RLIMIT_DATA do not see. When
//! the group passes its limit the kernel's OOM killer ends one of its processes and
//! counts it (`oom_kill`). The pids controller refuses a fork past `pids.max` and counts
//! each refusal (`pids.events`). CPU time is the group's total (`cpuacct.usage` or
//! `cpu.stat`). cgroup v2 is used where a v2 hierarchy has the memory and pids
//! controllers; otherwise v1 (`/sys/fs/cgroup/memory`, `/pids`, `/cpuacct`).
//!
//! Counters are cumulative: a run takes a `Snapshot` before and reads the difference.

use super::Limits;
use anyhow::{Context, Result, bail};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
enum Kind {
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
    },
    V2 {
        dir: PathBuf,
    },
}

/// The cgroup of one sandbox uid.
#[derive(Debug, Clone)]
pub struct Cgroup {
    kind: Kind,
}

/// What the group has counted so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub oom_kills: u64,
    pub pids_refused: u64,
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    pub tasks: u64,
}

const V1_ROOT: &str = "/sys/fs/cgroup";

fn read_u64(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|w| w.parse().ok()))
        .unwrap_or(0)
}

/// `key value` lines (memory.oom_control, pids.events, memory.events, cpu.stat).
fn read_key(p: &Path, key: &str) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}

fn write(p: &Path, v: &str) -> Result<()> {
    std::fs::write(p, v).with_context(|| format!("cannot write {v:?} to {}", p.display()))
}

/// A cgroup v2 hierarchy with the memory and pids controllers available.
fn v2_root() -> Option<PathBuf> {
    for r in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        // A hybrid layout has no cgroup.controllers at /sys/fs/cgroup itself: look on.
        let Ok(c) = std::fs::read_to_string(Path::new(r).join("cgroup.controllers")) else {
            continue;
        };
        let has = |x: &str| c.split_whitespace().any(|w| w == x);
        if has("memory") && has("pids") {
            return Some(PathBuf::from(r));
        }
    }
    None
}

/// Are cgroups usable here? The error says what is missing.
pub fn available() -> Result<()> {
    if v2_root().is_some() {
        return Ok(());
    }
    for c in ["memory", "pids", "cpuacct"] {
        let p = Path::new(V1_ROOT).join(c);
        if !p.join("cgroup.procs").is_file() {
            bail!(
                "no cgroup {c} controller at {} and no cgroup v2 hierarchy with memory and pids: the sandbox cannot count memory, tasks and CPU (mount cgroups, or run golab where /sys/fs/cgroup is writable)",
                p.display()
            );
        }
    }
    Ok(())
}

impl Cgroup {
    /// The group `golab/uid-UID` (created if needed), with nothing in it.
    pub fn for_uid(uid: u32) -> Result<Cgroup> {
        available()?;
        let name = format!("uid-{uid}");
        let kind = if let Some(root) = v2_root() {
            let parent = root.join("golab");
            std::fs::create_dir_all(&parent)
                .with_context(|| format!("cannot create the cgroup {}", parent.display()))?;
            // Controllers must be enabled on the way down, one by one: a write naming a
            // controller the hierarchy lacks (cpu, where only memory and pids are
            // delegated) fails whole, and would leave memory and pids off too.
            for d in [root.as_path(), parent.as_path()] {
                for c in ["+memory", "+pids", "+cpu"] {
                    let _ = std::fs::write(d.join("cgroup.subtree_control"), c);
                }
            }
            let dir = parent.join(&name);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the cgroup {}", dir.display()))?;
            // The kernel refuses to enable controllers below a cgroup that has processes
            // of its own (EBUSY), as the root of a container's cgroup namespace has: the
            // group then has no limit files, which must be said as such.
            for f in ["memory.max", "pids.max"] {
                if !dir.join(f).is_file() {
                    bail!(
                        "cgroup v2 at {}: the memory and pids controllers could not be enabled below it (its cgroup.subtree_control says {:?}; the kernel refuses them in a cgroup that has processes of its own, as a container's cgroup root has), so {} has no {f}: run golab where it can make cgroups with limits (a host or VM as root, or a container whose processes are in a child cgroup)",
                        root.display(),
                        std::fs::read_to_string(root.join("cgroup.subtree_control"))
                            .unwrap_or_default()
                            .trim(),
                        dir.display()
                    );
                }
            }
            Kind::V2 { dir }
        } else {
            let mk = |c: &str| -> Result<PathBuf> {
                let d = Path::new(V1_ROOT).join(c).join("golab").join(&name);
                std::fs::create_dir_all(&d)
                    .with_context(|| format!("cannot create the cgroup {}", d.display()))?;
                Ok(d)
            };
            Kind::V1 {
                memory: mk("memory")?,
                pids: mk("pids")?,
                cpu: mk("cpuacct")?,
            }
        };
        Ok(Cgroup { kind })
    }

    /// Sets the memory (no swap) and task limits of the group.
    pub fn set(&self, l: &Limits) -> Result<()> {
        let mem = l.memory_bytes.to_string();
        let pids = l.processes.to_string();
        match &self.kind {
            Kind::V1 {
                memory, pids: p, ..
            } => {
                write(&memory.join("memory.limit_in_bytes"), &mem)?;
                // Where swap accounting exists, swap counts too (memsw >= limit).
                let memsw = memory.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    let _ = std::fs::write(&memsw, &mem);
                }
                write(&p.join("pids.max"), &pids)?;
            }
            Kind::V2 { dir } => {
                write(&dir.join("memory.max"), &mem)?;
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                write(&dir.join("pids.max"), &pids)?;
            }
        }
        Ok(())
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        match &self.kind {
            Kind::V1 { memory, pids, cpu } => Counters {
                oom_kills: read_key(&memory.join("memory.oom_control"), "oom_kill"),
                pids_refused: read_key(&pids.join("pids.events"), "max"),
                cpu_ns: read_u64(&cpu.join("cpuacct.usage")),
                memory_bytes: read_u64(&memory.join("memory.usage_in_bytes")),
                tasks: read_u64(&pids.join("pids.current")),
            },
            Kind::V2 { dir } => Counters {
                oom_kills: read_key(&dir.join("memory.events"), "oom_kill"),
                pids_refused: read_key(&dir.join("pids.events"), "max"),
                cpu_ns: read_key(&dir.join("cpu.stat"), "usage_usec") * 1000,
                memory_bytes: read_u64(&dir.join("memory.current")),
                tasks: read_u64(&dir.join("pids.current")),
            },
        }
    }

    /// The highest memory use since the last `reset_peak` (v1; v2 reads memory.peak).
    pub fn peak_memory(&self) -> u64 {
        match &self.kind {
            Kind::V1 { memory, .. } => read_u64(&memory.join("memory.max_usage_in_bytes")),
            Kind::V2 { dir } => read_u64(&dir.join("memory.peak")),
        }
    }

    pub fn reset_peak(&self) {
        if let Kind::V1 { memory, .. } = &self.kind {
            let _ = std::fs::write(memory.join("memory.max_usage_in_bytes"), "0");
        }
    }

    /// The `cgroup.procs` files, opened for writing: a child joins the group by writing
    /// its pid into each, before it drops root (see `launch`).
    pub fn procs_files(&self) -> Result<Vec<OwnedFd>> {
        let dirs: Vec<&PathBuf> = match &self.kind {
            Kind::V1 { memory, pids, cpu } => vec![memory, pids, cpu],
            Kind::V2 { dir } => vec![dir],
        };
        let mut v = Vec::new();
        for d in dirs {
            let p = d.join("cgroup.procs");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .with_context(|| format!("cannot open {}", p.display()))?;
            v.push(OwnedFd::from(f));
        }
        Ok(v)
    }

    /// The pids in the group (none once a run is over).
    pub fn pids(&self) -> Vec<u32> {
        let d = match &self.kind {
            Kind::V1 { pids, .. } => pids,
            Kind::V2 { dir } => dir,
        };
        std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// Raw fds of `procs_files`, for the child.
pub fn raw(fds: &[OwnedFd]) -> Vec<i32> {
    fds.iter().map(|f| f.as_raw_fd()).collect()
}

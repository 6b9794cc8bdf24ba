//! Facts about the machine golab runs on.

/// The logical CPUs as the Go runtime counts them: Linux asks sched_getaffinity (a
/// process pinned to 2 CPUs gets GOMAXPROCS 2); elsewhere the online CPUs.
#[cfg(target_os = "linux")]
pub fn logical_cpus() -> u32 {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this process.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            return libc::CPU_COUNT(&set) as u32;
        }
    }
    online_cpus()
}

#[cfg(not(target_os = "linux"))]
pub fn logical_cpus() -> u32 {
    online_cpus()
}

fn online_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// The page size (what Linux puts in the auxiliary vector as AT_PAGESZ).
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

/// An id that changes with every boot of this machine, if the OS gives one.
#[cfg(target_os = "linux")]
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// macOS: `kern.bootsessionuuid`.
#[cfg(target_os = "macos")]
pub fn boot_id() -> Option<String> {
    let name = c"kern.bootsessionuuid";
    let mut buf = [0u8; 64];
    let mut len = buf.len();
    // SAFETY: sysctlbyname writes at most `len` bytes into buf and sets len.
    let r = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if r != 0 {
        return None;
    }
    let s = String::from_utf8_lossy(&buf[..len]);
    let s = s.trim_end_matches('\0').trim().to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn boot_id() -> Option<String> {
    None
}

/// Linux's yama `ptrace_scope` (0-3), where there is one.
pub fn ptrace_scope() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whether golab runs in a Docker (or containerd) container.
pub fn in_container() -> bool {
    std::path::Path::new("/.dockerenv").exists()
        || (cfg!(target_os = "linux")
            && std::fs::read_to_string("/proc/1/cgroup")
                .is_ok_and(|c| c.contains("docker") || c.contains("containerd")))
}

/// What opening /dev/kvm and asking KVM_GET_API_VERSION gave.
#[derive(Debug)]
pub enum Kvm {
    /// The API version it answered (12 is the only stable one).
    Api(i32),
    /// It could not be opened.
    Unusable(std::io::Error),
    /// Not a Linux host: no KVM.
    NotLinux,
}

#[cfg(target_os = "linux")]
pub fn kvm() -> Kvm {
    use std::os::fd::AsRawFd;
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        // SAFETY: a KVM ioctl without arguments on an open /dev/kvm.
        Ok(f) => Kvm::Api(unsafe { libc::ioctl(f.as_raw_fd(), KVM_GET_API_VERSION) }),
        Err(e) => Kvm::Unusable(e),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn kvm() -> Kvm {
    Kvm::NotLinux
}

/// macOS: whether Hypervisor.framework is there (`sysctl -n kern.hv_support`, for
/// QEMU's `-accel hvf`); false elsewhere.
#[cfg(target_os = "macos")]
pub fn hv_support() -> bool {
    std::process::Command::new("sysctl")
        .args(["-n", "kern.hv_support"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
        .unwrap_or(false)
}

#[cfg(not(target_os = "macos"))]
pub fn hv_support() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facts_are_plausible() {
        let n = logical_cpus();
        assert!(n >= 1 && n <= online_cpus().max(1) * 4, "{n}");
        let p = page_size();
        assert!(p.is_power_of_two() && p >= 4096, "{p}");
        if cfg!(target_os = "linux") {
            let id = boot_id().expect("Linux has a boot id");
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(boot_id(), Some(id));
        }
    }
}

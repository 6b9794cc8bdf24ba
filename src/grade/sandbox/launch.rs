//! Starting a sandboxed process from root: in the forked child, before exec, it joins
//! the slot's cgroup (as root: the cgroup files are root's), drops to the slot uid and
//! gid with no supplementary groups, lowers its rlimits, and asks to die with its parent.
//! Everything here is a raw system call: the child of a threaded parent may only make
//! async-signal-safe calls.

use super::RlimitPlan;

#[derive(Clone)]
pub struct Launch {
    pub uid: u32,
    /// `cgroup.procs` of each controller, open in the parent (closed at exec).
    pub cgroup_fds: Vec<i32>,
    pub rlimits: RlimitPlan,
    /// Duplicated onto fd 3 (the sandbox's ready pipe), if any.
    pub ready_fd: Option<i32>,
    /// The seccomp filter whose listener goes to the observer (`notify`), last before
    /// exec.
    pub notify: Option<super::notify::Child>,
    /// The same filter's refusals alone, without a supervisor (`notify::Refusals`).
    pub refusals: Option<super::notify::Refusals>,
}

impl Launch {
    /// Runs in the child between fork and exec.
    pub fn apply(&self) -> std::io::Result<()> {
        let err = std::io::Error::last_os_error;
        // SAFETY: raw system calls on values prepared before fork.
        unsafe {
            let mut buf = [0u8; 16];
            let n = decimal(libc::getpid() as u64, &mut buf);
            for &fd in &self.cgroup_fds {
                if libc::write(fd, buf.as_ptr() as *const libc::c_void, n) != n as isize {
                    return Err(err());
                }
            }
            let u = self.uid as libc::c_long;
            if libc::syscall(
                libc::SYS_setgroups,
                0 as libc::c_long,
                std::ptr::null::<libc::gid_t>(),
            ) != 0
                || libc::syscall(libc::SYS_setresgid, u, u, u) != 0
                || libc::syscall(libc::SYS_setresuid, u, u, u) != 0
            {
                return Err(err());
            }
            if libc::getuid() != self.uid || libc::geteuid() != self.uid {
                return Err(std::io::Error::from_raw_os_error(libc::EPERM));
            }
        }
        self.rlimits.apply()?;
        // SAFETY: fcntl/dup2 on fds we own; prctl with constant arguments.
        unsafe {
            if let Some(fd) = self.ready_fd {
                if fd == 3 {
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(err());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(err());
                }
            }
            // Set after setuid, which clears it: if golab dies, so does the sandbox.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        }
        if let Some(n) = &self.notify {
            n.install();
        } else if let Some(r) = &self.refusals {
            r.install();
        }
        Ok(())
    }
}

/// Writes `v` in decimal into `buf`; returns the length.
fn decimal(mut v: u64, buf: &mut [u8; 16]) -> usize {
    let mut tmp = [0u8; 16];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        buf[i] = tmp[n - 1 - i];
    }
    n
}

/// A network namespace of its own with only a loopback that is up, where the kernel
/// allows one (root on a host); `Ok(false)` where it does not (a container without
/// CAP_SYS_ADMIN: nothing changed). Err: the namespace was made but its loopback could
/// not be brought up. Runs in the child before exec.
pub fn private_network() -> std::io::Result<bool> {
    // SAFETY: unshare with a constant flag.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Ok(false);
    }
    loopback_up()?;
    Ok(true)
}

/// Brings `lo` up in this process's network namespace. Async-signal-safe.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: socket and ioctl on a zeroed ifreq; all async-signal-safe.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::close(s);
    }
    Ok(())
}

/// For the observer (`golab run` as root): it dies with the grader (a `golab grade`
/// killed with -9 leaves no observer, and so no debugger, behind), and it gets a network
/// namespace of its own with only a loopback that is up. The debugger sessions share it
/// (dlv's API on 127.0.0.1 reaches golab), and nothing in it reaches another machine.
/// Runs in the child before exec.
pub fn observer() -> std::io::Result<()> {
    // SAFETY: prctl and unshare with constant arguments; async-signal-safe.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    loopback_up()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_digits() {
        let mut b = [0u8; 16];
        let n = super::decimal(4194304, &mut b);
        assert_eq!(&b[..n], b"4194304");
        let n = super::decimal(0, &mut b);
        assert_eq!(&b[..n], b"0");
    }
}

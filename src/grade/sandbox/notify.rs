//! Evidence from the debugger step, without ptrace: a seccomp filter with user
//! notification on the calls that reach a network (connect, and sendto/sendmsg with an
//! address), installed on dlv and gdb before exec and so inherited by the program they
//! start. The observer (`golab run`, root) receives each such call, reads its address
//! from the caller's memory, and answers it.
//!
//! Why: under strace (the program alone) a program's attempts are evidence, and strace
//! is invisible from inside the pid namespace; under the debugger the program sees a
//! tracer (TracerPid, the tracer's comm), so a program could behave only there (attack
//! F12). With this filter the debugger step has evidence of its own for the network:
//! which step a program is in no longer decides whether its attempt is seen. (File
//! escapes under the debugger are refused by the sandbox's mounts, not recorded.)
//!
//! Policy, for the processes that are not golab's own tools (dlv, gdb, bubblewrap: known
//! by the device and inode of their executable): a call to an address outside the
//! loopback is refused with ENETUNREACH (what the empty network namespace answers
//! anyway) and recorded; one to the loopback is refused with ECONNREFUSED, unrecorded
//! (dlv's API is there: the program never talks to it); other families (a Unix socket
//! path) go on. The tools' own calls go on untouched. The address is read before the
//! answer, and a call that is refused never happens, so a program cannot show one
//! address and use another.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `seccomp_data` offsets (include/uapi/linux/seccomp.h).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: BPF_JEQ_K,
        jt,
        jf,
        k,
    }
}

/// The filter: on this architecture, connect, sendto and sendmsg notify the
/// supervisor; everything else is allowed.
fn program() -> Vec<libc::sock_filter> {
    vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        // Another architecture's calls (none here): allowed, as without a filter.
        jump(AUDIT_ARCH, 0, 5),
        stmt(BPF_LD_W_ABS, OFF_NR),
        jump(libc::SYS_connect as u32, 3, 0),
        jump(libc::SYS_sendto as u32, 2, 0),
        jump(libc::SYS_sendmsg as u32, 1, 0),
        stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW),
        stmt(BPF_RET_K, libc::SECCOMP_RET_USER_NOTIF),
    ]
}

/// The child's half: the filter and the socket its listener goes back on. Made before
/// the fork; [`Child::install`] runs between fork and exec.
#[derive(Clone)]
pub struct Child {
    filter: Arc<Vec<libc::sock_filter>>,
    sock: Arc<OwnedFd>,
}

// SAFETY: sock_filter is plain data; the vector is never written after it is made.
unsafe impl Send for Child {}
// SAFETY: as above.
unsafe impl Sync for Child {}

impl Child {
    /// Installs the filter (with no_new_privs, which an unprivileged filter needs) and
    /// sends its listener to the supervisor. The sending is done by a process cloned
    /// before the filter, sharing this one's file table (`CLONE_FILES`): this process's
    /// own sendmsg would wait on the very supervisor it feeds. A kernel without user
    /// notification (before 5.0) or a container that refuses seccomp: nothing is sent,
    /// and the supervisor records that the step had no evidence. Async-signal-safe:
    /// system calls on memory made before the fork.
    pub fn install(&self) {
        // SAFETY: raw system calls on values prepared before fork; the clone has no
        // CLONE_VM (a copy of this process, as fork makes), and only reads, sends and exits.
        unsafe {
            let sock = self.sock.as_raw_fd();
            let mut p = [-1 as RawFd; 2];
            if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                libc::close(sock);
                return;
            }
            let sender = libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_FILES | libc::SIGCHLD) as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
            if sender == 0 {
                let mut fd: RawFd = -1;
                let n = libc::read(p[0], (&mut fd as *mut RawFd).cast(), 4);
                if n == 4 && fd >= 0 {
                    send_fd(sock, fd);
                }
                libc::_exit(0);
            }
            let mut fd: RawFd = -1;
            if sender > 0 && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 {
                let prog = libc::sock_fprog {
                    len: self.filter.len() as u16,
                    filter: self.filter.as_ptr() as *mut libc::sock_filter,
                };
                fd = libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                    // SPEC_ALLOW: no speculation mitigations forced on the filtered
                    // tasks (the kernel's default for seccomp tasks, SSBD and IBPB on
                    // every switch, made dlv and its ptrace-bound program ~40% slower:
                    // scripts/bench-grade.sh); they run as they would without the filter.
                    libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                    &prog as *const libc::sock_fprog,
                ) as RawFd;
            }
            if sender > 0 {
                libc::write(p[1], (&fd as *const RawFd).cast(), 4);
                libc::wait4(
                    sender as libc::pid_t,
                    std::ptr::null_mut(),
                    0,
                    std::ptr::null_mut(),
                );
            }
            if fd >= 0 {
                libc::close(fd);
            }
            libc::close(p[0]);
            libc::close(p[1]);
            libc::close(sock);
        }
    }
}

/// One byte with `fd` attached (SCM_RIGHTS). Async-signal-safe.
unsafe fn send_fd(sock: RawFd, fd: RawFd) {
    let mut byte = [1u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one fd's control message, aligned.
    let mut control = [0u64; 4];
    // SAFETY: a zeroed msghdr is valid; every pointer set points into this frame.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::copy_nonoverlapping(
            (&fd as *const RawFd).cast::<u8>(),
            libc::CMSG_DATA(c),
            std::mem::size_of::<RawFd>(),
        );
        libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL);
    }
}

/// The fd that came with one message on `sock`, if any, within `wait`.
fn recv_fd(sock: &OwnedFd, wait: Duration) -> Option<OwnedFd> {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one pollfd of ours.
    if unsafe { libc::poll(&mut pfd, 1, wait.as_millis().min(i32::MAX as u128) as i32) } <= 0 {
        return None;
    }
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: as in send_fd; the kernel fills the control buffer it was given.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        if libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) <= 0 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return None;
        }
        let mut fd: RawFd = -1;
        std::ptr::copy_nonoverlapping(
            libc::CMSG_DATA(c),
            (&mut fd as *mut RawFd).cast::<u8>(),
            std::mem::size_of::<RawFd>(),
        );
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    }
}

/// What the supervisors of one observer have seen.
#[derive(Default)]
pub struct Evidence {
    /// The program's refused calls, in the words of strace's evidence
    /// (`connect(AF_INET 1.1.1.1:80)`).
    pub calls: Vec<String>,
    /// Debugger steps whose filter could not be installed (no evidence from them).
    pub unsupervised: usize,
}

/// Starts supervising one command: returns the child's half (for its `pre_exec`) and
/// spawns the thread that takes the listener and answers the calls. `tools`: the
/// (device, inode) of the executables whose calls go on untouched.
pub fn supervise(
    uid: u32,
    tools: Vec<(u64, u64)>,
    sink: Arc<Mutex<Evidence>>,
) -> std::io::Result<Child> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair fills two fds, which we own from here on.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds are new and ours.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    std::thread::spawn(move || {
        // The program's /proc files are read with its uid as this thread's file-system
        // uid: root without CAP_SYS_PTRACE (a container) may read a process of that uid,
        // as its own user may. A per-thread credential; the thread ends with the command.
        // SAFETY: setfsuid changes only this thread's file-system uid.
        unsafe {
            libc::setfsuid(uid);
        }
        // The child sends at once (before its exec); a command never spawned, or one
        // whose filter failed, sends nothing and its half closes.
        let Some(listener) = recv_fd(&ours, Duration::from_secs(600)) else {
            sink.lock().unwrap().unsupervised += 1;
            return;
        };
        answer_all(&listener, &tools, &sink);
    });
    Ok(Child {
        filter: Arc::new(program()),
        sock: Arc::new(theirs),
    })
}

fn answer_all(listener: &OwnedFd, tools: &[(u64, u64)], sink: &Mutex<Evidence>) {
    loop {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd of ours.
        let n = unsafe { libc::poll(&mut pfd, 1, 1000) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 {
            continue;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: every process under the filter is gone.
            return;
        }
        // SAFETY: a zeroed seccomp_notif is what NOTIF_RECV expects.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the ioctl fills `req`.
        if unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV as _,
                &mut req,
            )
        } != 0
        {
            // ENOENT: the caller died before we took it; EINTR: again. With every
            // process under the filter gone there is nothing more to take.
            if pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                return;
            }
            continue;
        }
        let (error, call) = decide(&req, tools);
        // The address was read from a live caller (not a reused pid).
        // SAFETY: the ioctl reads the id.
        let valid = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
                &req.id,
            )
        } == 0;
        let resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: -error,
            flags: if error == 0 {
                libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
            } else {
                0
            },
        };
        // SAFETY: the ioctl reads `resp`.
        unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND as _,
                &resp,
            );
        }
        if valid && let Some(c) = call {
            let mut s = sink.lock().unwrap();
            if s.calls.len() < 16 {
                s.calls.push(c);
            }
        }
    }
}

/// The errno to answer (0: go on) and the call to record, for one notification.
fn decide(req: &libc::seccomp_notif, tools: &[(u64, u64)]) -> (i32, Option<String>) {
    use std::os::unix::fs::MetadataExt;
    let pid = req.pid;
    let tool = std::fs::metadata(format!("/proc/{pid}/exe"))
        .map(|m| tools.contains(&(m.dev(), m.ino())))
        // A caller whose executable cannot be read is not a tool of ours.
        .unwrap_or(false);
    if tool {
        return (0, None);
    }
    let a = req.data.args;
    let nr = req.data.nr as libc::c_long;
    let name = match nr {
        libc::SYS_connect => "connect",
        libc::SYS_sendto => "sendto",
        _ => "sendmsg",
    };
    let (ptr, len) = match nr {
        libc::SYS_connect => (a[1], a[2]),
        libc::SYS_sendto => (a[4], a[5]),
        _ => {
            // struct msghdr: msg_name (a pointer), then msg_namelen.
            let Some(h) = read_mem(pid, a[1], 16) else {
                return (libc::EFAULT, None);
            };
            (
                u64::from_ne_bytes(h[0..8].try_into().unwrap()),
                u32::from_ne_bytes(h[8..12].try_into().unwrap()) as u64,
            )
        }
    };
    if ptr == 0 {
        // No address: a send on a socket already connected (whose connect came here).
        return (0, None);
    }
    let Some(addr) = read_mem(pid, ptr, len.min(128) as usize) else {
        return (libc::EFAULT, None);
    };
    match sockaddr(&addr) {
        Some((_, true)) => (libc::ECONNREFUSED, None),
        Some((text, false)) => (libc::ENETUNREACH, Some(format!("{name}({text})"))),
        None => (0, None),
    }
}

fn read_mem(pid: u32, at: u64, len: usize) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, at).ok()?;
    Some(buf)
}

/// An inet address as text, and whether it is the loopback; None for other families.
fn sockaddr(b: &[u8]) -> Option<(String, bool)> {
    if b.len() < 2 {
        return None;
    }
    let family = u16::from_ne_bytes([b[0], b[1]]) as i32;
    match family {
        libc::AF_INET if b.len() >= 8 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = std::net::Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some((format!("AF_INET {ip}:{port}"), ip.is_loopback()))
        }
        libc::AF_INET6 if b.len() >= 24 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let octets: [u8; 16] = b[8..24].try_into().unwrap();
            let ip = std::net::Ipv6Addr::from(octets);
            let loopback =
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback());
            Some((format!("AF_INET6 [{ip}]:{port}"), loopback))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_strace_writes_them() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&80u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[1, 1, 1, 1]);
        assert_eq!(sockaddr(&v4), Some(("AF_INET 1.1.1.1:80".into(), false)));
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert!(sockaddr(&v4).unwrap().1);
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(sockaddr(&v6), Some(("AF_INET6 [::1]:443".into(), true)));
        let mut unix = vec![0u8; 8];
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(sockaddr(&unix), None);
        assert_eq!(sockaddr(&[2]), None);
    }
}

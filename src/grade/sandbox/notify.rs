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
//! Policy ([`decide`]), for every process under the filter, the tools included: they
//! make no such call to an inet address of their own (dlv's API is a listener;
//! bubblewrap's loopback set-up is netlink). Exempting them by their executable let a
//! program exec dlv or gdb (attack H1); by pid, an orphan reparented to bubblewrap.
//! Calls on Unix and netlink sockets go on; on inet sockets an address outside the
//! loopback is refused with ENETUNREACH (what the empty network namespace answers
//! anyway) and recorded, one on the loopback is refused with ECONNREFUSED; the family
//! is read from the kernel's socket tables, so a program cannot show one address and
//! use another. The filter itself refuses the ways around it: other architectures'
//! calls, io_uring, and socket families no network namespace encloses (AF_VSOCK).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `seccomp_data` offsets (include/uapi/linux/seccomp.h): the call's number, its
/// architecture, and the low 32 bits of its first argument (little-endian).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0: u32 = 16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
/// x32's calls are the x86_64 architecture's with this bit set in the number.
const X32_BIT: u32 = 0x4000_0000;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The filter's instructions, with jumps to absolute targets (resolved by [`program`]):
/// `JumpIf` goes to its target if the test holds, `JumpUnless` if it does not, each
/// else to the next instruction.
enum Op {
    Load(u32),
    JumpIf(u16, u32, usize),
    JumpUnless(u16, u32, usize),
    Return(u32),
}

/// The socket families a process under the filter may create: Unix and netlink
/// sockets (Go's runtime and net package, bubblewrap's loopback set-up) and inet ones,
/// whose calls with an address are decided by the supervisor. Others (AF_VSOCK, which
/// no network namespace encloses; AF_PACKET...) are refused at `socket`.
const FAMILIES: [i32; 4] = [
    libc::AF_UNIX,
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_NETLINK,
];

/// The filter. Calls of another architecture (`int $0x80`) and x32's are refused with
/// ENOSYS (Go and the debuggers make none; unfiltered they would be a way around the
/// rest); io_uring is refused the same way (its IORING_OP_CONNECT makes no connect
/// call); `socket` of a family outside [`FAMILIES`] is refused with EAFNOSUPPORT;
/// connect, sendto, sendmsg and sendmmsg notify the supervisor (only with `notify`:
/// else they are allowed, for strace to see); the rest is allowed.
fn program(notify: bool) -> Vec<libc::sock_filter> {
    const ALLOW: usize = 100;
    const NOTIFY: usize = 101;
    const NOSYS: usize = 102;
    let mut ops = vec![
        Op::Load(OFF_ARCH),
        Op::JumpUnless(BPF_JEQ_K, AUDIT_ARCH, NOSYS),
        Op::Load(OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    ops.push(Op::JumpIf(BPF_JGE_K, X32_BIT, NOSYS));
    let notified = [
        libc::SYS_connect,
        libc::SYS_sendto,
        libc::SYS_sendmsg,
        libc::SYS_sendmmsg,
    ];
    for nr in notified.iter().filter(|_| notify) {
        ops.push(Op::JumpIf(BPF_JEQ_K, *nr as u32, NOTIFY));
    }
    ops.push(Op::JumpIf(
        BPF_JEQ_K,
        libc::SYS_io_uring_setup as u32,
        NOSYS,
    ));
    let socket_at = ops.len() + 2;
    ops.push(Op::JumpIf(BPF_JEQ_K, libc::SYS_socket as u32, socket_at));
    ops.push(Op::Return(libc::SECCOMP_RET_ALLOW));
    ops.push(Op::Load(OFF_ARG0));
    for f in FAMILIES {
        ops.push(Op::JumpIf(BPF_JEQ_K, f as u32, ALLOW));
    }
    ops.push(Op::Return(
        libc::SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32,
    ));
    let tail = ops.len();
    ops.push(Op::Return(libc::SECCOMP_RET_ALLOW));
    ops.push(Op::Return(libc::SECCOMP_RET_USER_NOTIF));
    ops.push(Op::Return(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    let at = |to: usize| match to {
        ALLOW => tail,
        NOTIFY => tail + 1,
        NOSYS => tail + 2,
        i => i,
    };
    ops.iter()
        .enumerate()
        .map(|(i, op)| match *op {
            Op::Load(off) => stmt(BPF_LD_W_ABS, off),
            Op::JumpIf(code, k, to) => libc::sock_filter {
                code,
                jt: u8::try_from(at(to) - i - 1).expect("a short jump"),
                jf: 0,
                k,
            },
            Op::JumpUnless(code, k, to) => libc::sock_filter {
                code,
                jt: 0,
                jf: u8::try_from(at(to) - i - 1).expect("a short jump"),
                k,
            },
            Op::Return(v) => stmt(BPF_RET_K, v),
        })
        .collect()
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

/// The filter without a supervisor, for the program run alone under strace (which sees
/// its network calls itself): the refusals only (other architectures, io_uring,
/// socket families like AF_VSOCK that no network namespace encloses). Made before the
/// fork; [`Refusals::install`] runs between fork and exec.
#[derive(Clone)]
pub struct Refusals(Arc<Vec<libc::sock_filter>>);

// SAFETY: as for Child: plain data, never written after it is made.
unsafe impl Send for Refusals {}
// SAFETY: as above.
unsafe impl Sync for Refusals {}

impl Default for Refusals {
    fn default() -> Refusals {
        Refusals(Arc::new(program(false)))
    }
}

impl Refusals {
    /// Installs the filter (with no_new_privs). Async-signal-safe. A kernel that
    /// refuses it leaves the process as it was, as for [`Child::install`].
    pub fn install(&self) {
        // SAFETY: prctl and seccomp on memory made before the fork.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 {
                let prog = libc::sock_fprog {
                    len: self.0.len() as u16,
                    filter: self.0.as_ptr() as *mut libc::sock_filter,
                };
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                    libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as libc::c_ulong,
                    &prog as *const libc::sock_fprog,
                );
            }
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
/// spawns the thread that takes the listener and answers the calls.
pub fn supervise(uid: u32, sink: Arc<Mutex<Evidence>>) -> std::io::Result<Child> {
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
        answer_all(&listener, &sink);
    });
    Ok(Child {
        filter: Arc::new(program(true)),
        sock: Arc::new(theirs),
    })
}

fn answer_all(listener: &OwnedFd, sink: &Mutex<Evidence>) {
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
        let (answer, call) = decide(&req);
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
            error: match answer {
                Answer::Refuse(e) => -e,
                _ => 0,
            },
            flags: if answer == Answer::GoOn {
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

/// What one notification is answered: go on, a result without the call (`Fake`), or
/// an errno; and the call to record, if it was an attempt to reach a network.
#[derive(Debug, PartialEq)]
enum Answer {
    GoOn,
    Fake,
    Refuse(i32),
}

/// The answer for one notification, and the call to record.
///
/// The one question is the socket's family, read from the kernel's tables
/// (`/proc/PID/net/unix`, `netlink`), never from the caller's memory: on a Unix or
/// netlink socket the call goes on, whatever address it names (the kernel refuses an
/// inet address there itself), so what another thread writes into the address after it
/// was read changes nothing. On any other socket (inet: `socket` allows no other
/// family) nothing goes on: an inet address (or AF_UNSPEC, which a UDP send reads as
/// AF_INET) is refused, ECONNREFUSED for the loopback (dlv's API is there: the program
/// never talks to it) and ENETUNREACH, recorded, for the rest; connect(AF_UNSPEC)
/// (disconnect) is answered 0 without effect; another family gets EAFNOSUPPORT, as the
/// kernel answers it; a sendmsg without an address gets EDESTADDRREQ (its msghdr is in
/// memory another thread may change once read: such a socket was never connected
/// through here, since every connect of an inet socket is refused). sendto without an
/// address (the pointer is in a register) goes on: it fails or goes to the peer of an
/// accepted connection.
fn decide(req: &libc::seccomp_notif) -> (Answer, Option<String>) {
    let pid = req.pid;
    let a = req.data.args;
    let nr = req.data.nr as libc::c_long;
    let fd = a[0] as i32;
    if socket_family(pid, fd).is_some() {
        return (Answer::GoOn, None);
    }
    let name = match nr {
        libc::SYS_connect => "connect",
        libc::SYS_sendto => "sendto",
        libc::SYS_sendmsg => "sendmsg",
        _ => "sendmmsg",
    };
    // The addresses the call names: (pointer, length), one per message.
    let names: Vec<(u64, u64)> = match nr {
        libc::SYS_connect => vec![(a[1], a[2])],
        libc::SYS_sendto if a[4] == 0 => return (Answer::GoOn, None),
        libc::SYS_sendto => vec![(a[4], a[5])],
        libc::SYS_sendmsg => {
            // struct msghdr: msg_name (a pointer), then msg_namelen.
            let Some(h) = read_mem(pid, a[1], 16) else {
                return (Answer::Refuse(libc::EFAULT), None);
            };
            vec![name_of(&h)]
        }
        _ => {
            // struct mmsghdr: a msghdr (56 bytes) and msg_len, 64 bytes each; the
            // kernel takes at most UIO_MAXIOV (1024) of them.
            let n = (a[2] as usize).min(1024);
            let Some(v) = read_mem(pid, a[1], n * 64) else {
                return (Answer::Refuse(libc::EFAULT), None);
            };
            v.chunks(64).map(name_of).collect()
        }
    };
    let mut answer = Answer::Refuse(libc::EDESTADDRREQ);
    for (ptr, len) in names {
        if ptr == 0 {
            continue;
        }
        let Some(addr) = read_mem(pid, ptr, len.min(128) as usize) else {
            return (Answer::Refuse(libc::EFAULT), None);
        };
        match sockaddr(&addr, nr != libc::SYS_connect) {
            Address::Inet(text, false) => {
                return (
                    Answer::Refuse(libc::ENETUNREACH),
                    Some(format!("{name}({text})")),
                );
            }
            Address::Inet(_, true) => answer = Answer::Refuse(libc::ECONNREFUSED),
            Address::Unspec if nr == libc::SYS_connect => answer = Answer::Fake,
            _ => return (Answer::Refuse(libc::EAFNOSUPPORT), None),
        }
    }
    (answer, None)
}

/// A msghdr's (msg_name, msg_namelen).
fn name_of(h: &[u8]) -> (u64, u64) {
    (
        u64::from_ne_bytes(h[0..8].try_into().unwrap()),
        u32::from_ne_bytes(h[8..12].try_into().unwrap()) as u64,
    )
}

/// AF_UNIX or AF_NETLINK if `fd` of `pid` is a socket of that family, by its inode in
/// the tables of the caller's network namespace; None for any other socket (or none).
fn socket_family(pid: u32, fd: i32) -> Option<i32> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let inode = link
        .to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .to_string();
    // net/unix: "Num RefCount Protocol Flags Type St Inode Path"; net/netlink:
    // "sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode".
    for (table, column, family) in [("unix", 6, libc::AF_UNIX), ("netlink", 9, libc::AF_NETLINK)] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok()?;
        if text
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(column) == Some(inode.as_str()))
        {
            return Some(family);
        }
    }
    None
}

fn read_mem(pid: u32, at: u64, len: usize) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, at).ok()?;
    Some(buf)
}

/// What an address names.
#[derive(Debug, PartialEq)]
enum Address {
    /// An inet address as text, and whether it is the loopback.
    Inet(String, bool),
    /// AF_UNSPEC in a connect (a disconnect).
    Unspec,
    Other,
}

/// The address in `b`; `send`: in a send, where UDP reads AF_UNSPEC as AF_INET
/// (net/ipv4/udp.c, udp_sendmsg).
fn sockaddr(b: &[u8], send: bool) -> Address {
    if b.len() < 2 {
        return Address::Other;
    }
    let family = u16::from_ne_bytes([b[0], b[1]]) as i32;
    match family {
        libc::AF_INET | libc::AF_UNSPEC if b.len() >= 8 && (send || family == libc::AF_INET) => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = std::net::Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            let f = if family == libc::AF_INET {
                "AF_INET"
            } else {
                "AF_UNSPEC, read as AF_INET,"
            };
            Address::Inet(format!("{f} {ip}:{port}"), ip.is_loopback())
        }
        libc::AF_UNSPEC if !send => Address::Unspec,
        libc::AF_INET6 if b.len() >= 24 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let octets: [u8; 16] = b[8..24].try_into().unwrap();
            let ip = std::net::Ipv6Addr::from(octets);
            let loopback =
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback());
            Address::Inet(format!("AF_INET6 [{ip}]:{port}"), loopback)
        }
        _ => Address::Other,
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
        assert_eq!(
            sockaddr(&v4, false),
            Address::Inet("AF_INET 1.1.1.1:80".into(), false)
        );
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            sockaddr(&v4, true),
            Address::Inet("AF_INET 127.0.0.1:80".into(), true)
        );
        // AF_UNSPEC: a disconnect in connect, AF_INET in a send (as UDP reads it).
        v4[..2].copy_from_slice(&(libc::AF_UNSPEC as u16).to_ne_bytes());
        assert_eq!(sockaddr(&v4, false), Address::Unspec);
        assert_eq!(
            sockaddr(&v4, true),
            Address::Inet("AF_UNSPEC, read as AF_INET, 127.0.0.1:80".into(), true)
        );
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(
            sockaddr(&v6, false),
            Address::Inet("AF_INET6 [::1]:443".into(), true)
        );
        let mut unix = vec![0u8; 8];
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(sockaddr(&unix, true), Address::Other);
        assert_eq!(sockaddr(&[2], true), Address::Other);
    }

    fn errno() -> i32 {
        // SAFETY: the calling thread's errno.
        unsafe { *libc::__errno_location() }
    }

    fn inet(family: i32, ip: [u8; 4], port: u16) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: family as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(ip),
            },
            sin_zero: [0; 8],
        }
    }

    /// `getpid` through the i386 entry (`int $0x80`, call 20): what a program can
    /// reach past a filter that looks at x86_64 numbers only.
    #[cfg(target_arch = "x86_64")]
    fn int80_getpid() -> i64 {
        let r: i64;
        // SAFETY: a system call with no memory operands; r8-r11 may be cleared.
        unsafe {
            std::arch::asm!("int 0x80", inlateout("rax") 20i64 => r,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
        }
        r
    }

    /// Whether this kernel runs i386 calls (`int $0x80`), for the forked child.
    #[cfg(target_arch = "x86_64")]
    static I386: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Runs `f` in a forked child (under the filter when `child` is given) and returns
    /// its exit status as waitpid gives it. `f` makes raw system calls only.
    fn in_child(child: Option<&Child>, f: fn() -> i32) -> i32 {
        // SAFETY: the child makes async-signal-safe calls only (the filter's install,
        // socket calls on stack memory) and ends with _exit.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                if let Some(c) = child {
                    c.install();
                }
                libc::_exit(f());
            }
            let mut st = 0;
            assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
            st
        }
    }

    /// The filter and its supervisor, in a real process: every way round that attack
    /// H1 found is refused, the two sends to outside addresses are recorded, and Unix
    /// sockets still work. The child reports each failed check as a bit of its exit
    /// code.
    #[test]
    fn the_ways_round_the_filter_are_closed_and_the_attempts_recorded() {
        // The control for the i386 check: without the filter the same call gives the
        // child's pid where the kernel runs i386 calls (it does here); a kernel without
        // them (ia32_emulation off) kills the caller, and has no such way round.
        #[cfg(target_arch = "x86_64")]
        {
            let st = in_child(None, || {
                // SAFETY: getpid has no preconditions.
                i32::from(int80_getpid() != i64::from(unsafe { libc::getpid() }))
            });
            let runs = libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0;
            eprintln!(
                "the i386 entry: {}",
                if runs { "present" } else { "absent" }
            );
            I386.store(runs, std::sync::atomic::Ordering::SeqCst);
        }
        let sink = Arc::new(Mutex::new(Evidence::default()));
        // SAFETY: geteuid has no preconditions.
        let child = supervise(unsafe { libc::geteuid() }, sink.clone()).unwrap();
        let st = in_child(Some(&child), || {
            let mut fails = 0;
            // SAFETY: system calls on this stack's memory.
            unsafe {
                // 1: a family no network namespace encloses.
                if libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) >= 0
                    || errno() != libc::EAFNOSUPPORT
                {
                    fails |= 1;
                }
                // 2: io_uring, whose connect is no connect call.
                let mut params = [0u8; 120];
                if libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) >= 0
                    || errno() != libc::ENOSYS
                {
                    fails |= 2;
                }
                let udp = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
                let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                // 4: AF_UNSPEC, which UDP sends as AF_INET.
                let to = inet(libc::AF_UNSPEC, [192, 0, 2, 1], 9);
                if libc::sendto(
                    udp,
                    b"x".as_ptr().cast(),
                    1,
                    0,
                    (&to as *const libc::sockaddr_in).cast(),
                    len,
                ) >= 0
                    || errno() != libc::ENETUNREACH
                {
                    fails |= 4;
                }
                // 8: sendmmsg.
                let mut to2 = inet(libc::AF_INET, [192, 0, 2, 2], 9);
                let mut byte = *b"y";
                let mut iov = libc::iovec {
                    iov_base: byte.as_mut_ptr().cast(),
                    iov_len: 1,
                };
                let mut m: libc::mmsghdr = std::mem::zeroed();
                m.msg_hdr.msg_name = (&mut to2 as *mut libc::sockaddr_in).cast();
                m.msg_hdr.msg_namelen = len;
                m.msg_hdr.msg_iov = &mut iov;
                m.msg_hdr.msg_iovlen = 1;
                if libc::sendmmsg(udp, &mut m, 1, 0) >= 0 || errno() != libc::ENETUNREACH {
                    fails |= 8;
                }
                // 16: the loopback, refused and not recorded.
                let lo = inet(libc::AF_INET, [127, 0, 0, 1], 9);
                if libc::connect(udp, (&lo as *const libc::sockaddr_in).cast(), len) == 0
                    || errno() != libc::ECONNREFUSED
                {
                    fails |= 16;
                }
                // 32: a Unix address on an inet socket (what a program would show the
                // supervisor before writing an inet one in its place).
                let mut un: libc::sockaddr_un = std::mem::zeroed();
                un.sun_family = libc::AF_UNIX as libc::sa_family_t;
                if libc::connect(udp, (&un as *const libc::sockaddr_un).cast(), 8) == 0
                    || errno() != libc::EAFNOSUPPORT
                {
                    fails |= 32;
                }
                // 64: Unix sockets go on.
                let mut pair = [0; 2];
                libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, pair.as_mut_ptr());
                let mut h: libc::msghdr = std::mem::zeroed();
                h.msg_iov = &mut iov;
                h.msg_iovlen = 1;
                if libc::sendmsg(pair[0], &h, 0) != 1 {
                    fails |= 64;
                }
            }
            // 128: the i386 entry, where this kernel has one.
            #[cfg(target_arch = "x86_64")]
            if I386.load(std::sync::atomic::Ordering::SeqCst)
                && int80_getpid() != -(libc::ENOSYS as i64)
            {
                fails |= 128;
            }
            fails
        });
        assert!(libc::WIFEXITED(st), "the child ended by a signal: {st:#x}");
        assert_eq!(libc::WEXITSTATUS(st), 0, "failed checks (bits)");
        // The supervisor records a call after answering it: wait for the second.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while sink.lock().unwrap().calls.len() < 2 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            sink.lock().unwrap().calls,
            [
                "sendto(AF_UNSPEC, read as AF_INET, 192.0.2.1:9)",
                "sendmmsg(AF_INET 192.0.2.2:9)"
            ]
        );
    }
}

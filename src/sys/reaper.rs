//! No process outlives golab, SIGKILL included.
//!
//! Ctrl-C, SIGTERM and a closed terminal are handled in `main` (the live process groups
//! are killed). A SIGKILL cannot be handled, and dlv and gdb put the program they debug
//! in a process group of their own: without more, `kill -9` of golab during the dlv
//! stage leaves dlv and its stopped debuggee running, reparented to init.
//!
//! So a command that starts tools runs them inside a PID namespace of its own: golab
//! forks, and the child, process 1 of the new namespace (with a /proc of its own, in a
//! private mount namespace), does the work. The child asks the kernel for SIGKILL when
//! its parent dies (PR_SET_PDEATHSIG); when process 1 of a PID namespace dies, the
//! kernel kills every process in it. Either golab process may be killed: everything goes.
//! The parent only waits, forwards SIGTERM and SIGHUP, and exits as the child did.
//!
//! This needs the privilege to make namespaces (root, as on the lab machines and
//! graders). Without it, or off Linux, golab runs as before and says nothing: the
//! handled signals still end every tool. `GOLAB_NO_PIDNS=1` turns it off.
//! Not for: VM providers, whose processes (QEMU) must outlive the command that
//! starts them; `main` enters the namespace only for commands that run the lab here.

/// Set in the child's environment, so that a golab it runs does not nest another.
pub const INSIDE: &str = "GOLAB_PIDNS";

/// Moves the rest of this process's life into a PID namespace of its own, if it can.
/// Must be called before any thread starts (it forks). Returns in the child, or when
/// no namespace could be made; the parent never returns.
pub fn enter() {
    if std::env::var_os(INSIDE).is_some() || std::env::var_os("GOLAB_NO_PIDNS").is_some() {
        return;
    }
    imp::enter();
}

#[cfg(target_os = "linux")]
mod imp {
    use std::sync::atomic::{AtomicI32, Ordering};

    static CHILD: AtomicI32 = AtomicI32::new(0);

    /// Passes a signal sent to this process on to the child. The terminal's Ctrl-C
    /// (si_code SI_KERNEL) already reaches the child, which is in the same process
    /// group; a signal that kill(2) sent to this pid alone (SI_USER) does not.
    extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        let c = CHILD.load(Ordering::Relaxed);
        // SAFETY: the kernel passes a valid siginfo; kill is async-signal-safe.
        unsafe {
            let from_tty = (sig == libc::SIGINT || sig == libc::SIGQUIT)
                && !info.is_null()
                && (*info).si_code == libc::SI_KERNEL;
            if c > 0 && !from_tty {
                libc::kill(c, sig);
            }
        }
    }

    pub fn enter() {
        // SAFETY: plain system calls on this process; no thread has started yet (the
        // caller's contract), so fork is safe and the child may go on running Rust code.
        unsafe {
            // To undo the unshare below for this process's later children, if the
            // child cannot go on.
            let own_pidns = libc::open(
                c"/proc/self/ns/pid".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            if own_pidns < 0 {
                return;
            }
            let undo = || {
                libc::setns(own_pidns, libc::CLONE_NEWPID);
                libc::close(own_pidns);
            };
            if libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS) != 0 {
                libc::close(own_pidns);
                return; // not privileged: run as before
            }
            // The parent's death is seen by the child as the end of this pipe.
            let mut fds = [0 as libc::c_int; 2];
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                undo();
                return;
            }
            let pid = libc::fork();
            if pid < 0 {
                // unshare(CLONE_NEWPID) applies to children only: with it undone, this
                // process can go on as before.
                undo();
                return;
            }
            if pid == 0 {
                libc::close(own_pidns);
                libc::close(fds[1]);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                let mut p = libc::pollfd {
                    fd: fds[0],
                    events: libc::POLLIN,
                    revents: 0,
                };
                if libc::poll(&mut p, 1, 0) > 0 && p.revents & libc::POLLHUP != 0 {
                    libc::_exit(137); // the parent died before PDEATHSIG was set
                }
                // A /proc that shows this namespace's processes (the ones golab
                // starts and kills by pid), in a mount namespace nobody else sees.
                let none = std::ptr::null();
                let root = c"/".as_ptr();
                let private = libc::MS_REC | libc::MS_PRIVATE;
                if libc::mount(none, root, none, private, std::ptr::null()) != 0
                    || libc::mount(
                        c"proc".as_ptr(),
                        c"/proc".as_ptr(),
                        c"proc".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        std::ptr::null(),
                    ) != 0
                {
                    libc::_exit(super::exit::NO_PIDNS);
                }
                std::env::set_var(super::INSIDE, "1");
                return;
            }
            libc::close(fds[0]);
            CHILD.store(pid, Ordering::Relaxed);
            // The child handles every signal that ends golab (it cleans up and exits
            // 130); this process passes on what reaches it alone and exits with it.
            for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP] {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = forward as *const () as libc::sighandler_t;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
            let mut status = 0;
            loop {
                let r = libc::waitpid(pid, &mut status, 0);
                if r == pid {
                    break;
                }
                if r < 0 && *libc::__errno_location() != libc::EINTR {
                    libc::_exit(2);
                }
            }
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            if code == super::exit::NO_PIDNS {
                // The child could not make its /proc and did nothing: do the work here,
                // with later children in this process's own PID namespace again.
                undo();
                std::env::set_var(super::INSIDE, "1");
                return;
            }
            libc::_exit(code);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn enter() {}
}

/// Exit codes of the two processes among themselves (only Linux forks them).
#[cfg(target_os = "linux")]
mod exit {
    /// The child could not mount its /proc: the parent goes on without a namespace.
    pub const NO_PIDNS: i32 = 121;
}

//! Process attributes: prctl, descriptors, keyrings, OOM score, session.

use std::os::fd::RawFd;

use nix::errno::Errno;

pub use nix::sys::prctl::{set_child_subreaper, set_dumpable, set_keepcaps, set_no_new_privs};

/// fork(2) that also creates the namespaces in `flags` (CLONE_NEW*), like clone(2) without
/// a new stack: the child continues on a copy of the caller's stack.
///
/// # Safety
/// As for `fork`: the caller must be single-threaded, and the child must limit itself to
/// what is safe after fork (it will exec or exit).
pub unsafe fn fork_with_namespaces(
    flags: nix::sched::CloneFlags,
) -> nix::Result<nix::unistd::ForkResult> {
    use nix::unistd::{ForkResult, Pid};
    // SAFETY: clone without CLONE_VM and without a new stack duplicates the process like
    // fork; the caller upholds fork's contract (see above).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match Errno::result(rc)? {
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// Mark every descriptor from `first` upwards close-on-exec, so nothing of the runtime's
/// reaches the container's program (CVE-2024-21626 class).
pub fn cloexec_from(first: RawFd) -> nix::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on descriptors of this
    // process; it touches no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(rc).map(drop)
}

/// Clear close-on-exec on `fd` so it survives into the container's program.
pub fn keep_across_exec(fd: RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    // SAFETY: the descriptor number comes from --preserve-fds/LISTEN_FDS, which promise it
    // is open; fcntl on a closed one fails with EBADF, which is returned.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map(drop)
}

/// Whether `fd` is an open descriptor of this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Join a new session keyring named `name`, so containers do not share the caller's keys.
pub fn join_session_keyring(name: &str) -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING) reads the NUL-terminated name only.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(rc).map(drop)
}

/// Set the NIS domain name of the current UTS namespace.
pub fn set_domainname(name: &str) -> nix::Result<()> {
    // SAFETY: setdomainname reads exactly `len` bytes from the pointer.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(rc).map(drop)
}

/// Install a seccomp BPF filter (seccomp(SECCOMP_SET_MODE_FILTER)).
pub fn seccomp_set_filter(flags: libc::c_ulong, filter: &[libc::sock_filter]) -> nix::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).map_err(|_| Errno::E2BIG)?,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: the kernel copies `len` instructions from `filter`, which outlives the call,
    // and never writes through the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    Errno::result(rc).map(drop)
}

/// Set the file mode creation mask.
pub fn set_umask(mask: u32) {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
}

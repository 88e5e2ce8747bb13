//! Process attributes: prctl, descriptors, keyrings, OOM score, session.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

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
    Errno::result(rc).map(fork_result)
}

/// What a fork-like syscall's return value says: the child (0) or the parent of `rc`.
fn fork_result(rc: libc::c_long) -> nix::unistd::ForkResult {
    match rc {
        0 => nix::unistd::ForkResult::Child,
        pid => nix::unistd::ForkResult::Parent {
            child: nix::unistd::Pid::from_raw(pid as i32),
        },
    }
}

/// linux/sched.h (libc's constant is an overflowing c_int).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// [`fork_with_namespaces`], with the child born in the cgroup v2 directory `cgroup`
/// (clone3's CLONE_INTO_CGROUP, Linux 5.7+), so that it never has to be moved there.
/// Returns, in parent and child alike, whether it was; a kernel that cannot falls back to
/// a plain fork into the caller's cgroup.
///
/// # Safety
/// As for [`fork_with_namespaces`].
pub unsafe fn fork_with_namespaces_into(
    flags: nix::sched::CloneFlags,
    cgroup: BorrowedFd<'_>,
) -> nix::Result<(nix::unistd::ForkResult, bool)> {
    // SAFETY: every field of clone_args is an integer; zero is "unset" for each of them.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags.bits() as u64 | CLONE_INTO_CGROUP;
    args.exit_signal = libc::SIGCHLD as u64;
    args.cgroup = cgroup.as_raw_fd() as u64;
    // SAFETY: without CLONE_VM and without a stack, clone3 duplicates the process as fork
    // does; `args` is valid for its size during the call; the caller upholds fork's contract.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match Errno::result(rc) {
        Ok(rc) => Ok((fork_result(rc), true)),
        // SAFETY: as above.
        Err(_) => unsafe { fork_with_namespaces(flags) }.map(|f| (f, false)),
    }
}

/// Mark every descriptor from `first` upwards close-on-exec, so nothing of the runtime's
/// reaches the container's program (CVE-2024-21626 class). close_range(CLOSE_RANGE_CLOEXEC)
/// does it in one call; a kernel before 5.11 (ENOSYS, EINVAL) or a seccomp filter the
/// runtime itself runs under (EPERM) gets runc's way: each descriptor listed in
/// /proc/self/fd.
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
    match Errno::result(rc) {
        Err(Errno::ENOSYS | Errno::EINVAL | Errno::EPERM) => cloexec_listed_from(first),
        other => other.map(drop),
    }
}

/// [`cloexec_from`] one descriptor at a time, from the list in /proc/self/fd.
pub(crate) fn cloexec_listed_from(first: RawFd) -> nix::Result<()> {
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|fd| *fd >= first)
        .collect();
    for fd in listed {
        // SAFETY: F_GETFD/F_SETFD only change a flag in this process's descriptor table.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        // EBADF: the descriptor of the listing itself, closed since.
        if flags == -1 || flags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        // SAFETY: as above.
        Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    }
    Ok(())
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

/// Install a seccomp BPF filter (seccomp(SECCOMP_SET_MODE_FILTER)). With
/// SECCOMP_FILTER_FLAG_NEW_LISTENER in `flags`, returns the filter's notify listener.
pub fn seccomp_set_filter(
    flags: libc::c_ulong,
    filter: &[libc::sock_filter],
) -> nix::Result<Option<std::os::fd::OwnedFd>> {
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
    let rc = Errno::result(rc)?;
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = RawFd::try_from(rc).map_err(|_| Errno::EBADF)?;
    // SAFETY: with NEW_LISTENER the kernel returns a new descriptor that nothing else owns.
    Ok(Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
}

/// Set the file mode creation mask.
pub fn set_umask(mask: u32) {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_fallback_marks_descriptors_close_on_exec() {
        let file = std::fs::File::open("/proc/self/status").expect("open");
        // SAFETY: dup of an open descriptor; the copy (without FD_CLOEXEC) is closed below.
        let copy = unsafe { libc::dup(file.as_raw_fd()) };
        assert!(copy >= 0);
        // SAFETY: F_GETFD only reads a flag.
        let before = unsafe { libc::fcntl(copy, libc::F_GETFD) };
        assert_eq!(before & libc::FD_CLOEXEC, 0, "dup clears close-on-exec");
        cloexec_listed_from(copy).expect("mark");
        // SAFETY: as above.
        let after = unsafe { libc::fcntl(copy, libc::F_GETFD) };
        // SAFETY: `copy` is ours and closed once.
        unsafe { libc::close(copy) };
        assert_ne!(
            after & libc::FD_CLOEXEC,
            0,
            "close-on-exec set from the listing"
        );
    }
}

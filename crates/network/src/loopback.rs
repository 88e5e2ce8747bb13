//! `lo` up in a container's network namespace, as Docker brings it up in every namespace it
//! creates (`--network none` included): a new namespace starts with its loopback down, and
//! programs that talk to 127.0.0.1 fail.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{AddressFamily, SockFlag, SockType};

use crate::{Error, Result};

const LO: &CStr = c"lo";

/// Bring `lo` up in the network namespace `netns` (a path such as `/proc/PID/ns/net`).
pub fn loopback_up(netns: &Path) -> Result<()> {
    crate::netns::run_in(netns, "netns-lo", set_up)
}

/// In the calling thread's network namespace: `lo` gets IFF_UP (the other flags kept);
/// `path` names the namespace in errors.
pub(crate) fn loopback_up_here(path: &Path) -> Result<()> {
    set_up(path)
}

fn set_up(path: &Path) -> Result<()> {
    let fail = |operation, source| Error::Interface {
        operation,
        interface: "lo",
        path: path.to_path_buf(),
        source,
    };
    let sock = socket().map_err(|e| fail("open a socket", e))?;
    let mut req = request();
    // SAFETY: SIOCGIFFLAGS reads the flags into the ifreq it is given, which lives for
    // the call; the socket is open.
    let got = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    nix::errno::Errno::result(got).map_err(|e| fail("read the flags", e))?;
    // SAFETY: the kernel filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let up = libc::IFF_UP as libc::c_short;
    if flags & up != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | up;
    // SAFETY: SIOCSIFFLAGS reads the name and flags of the ifreq, which lives for the call.
    let set = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    nix::errno::Errno::result(set).map_err(|e| fail("set IFF_UP", e))?;
    Ok(())
}

/// Any socket of the namespace serves interface ioctls.
fn socket() -> nix::Result<OwnedFd> {
    nix::sys::socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// An ifreq naming `lo`.
fn request() -> libc::ifreq {
    // SAFETY: ifreq is plain data (a name and a union of integers); all zeros is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(LO.to_bytes()) {
        *dst = *src as libc::c_char;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::path::PathBuf;

    use nix::sched::CloneFlags;

    /// Whether `lo` is up in the namespace `netns` (for tests).
    fn loopback_is_up(netns: PathBuf) -> bool {
        std::thread::spawn(move || {
            let ns = File::open(&netns).expect("open the namespace");
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
            let sock = socket().expect("socket");
            let mut req = request();
            // SAFETY: as in set_up.
            let got = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
            assert_eq!(got, 0, "SIOCGIFFLAGS");
            // SAFETY: the kernel filled the flags.
            let flags = unsafe { req.ifr_ifru.ifru_flags };
            flags & libc::IFF_UP as libc::c_short != 0
        })
        .join()
        .expect("thread")
    }

    /// A new namespace's `lo` is down; after `loopback_up` it is up, and the caller's own
    /// namespace is left as it was.
    #[test]
    fn loopback_of_a_new_namespace_comes_up() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let before = std::fs::read_link("/proc/thread-self/ns/net").expect("own netns");
        // A thread unshares a namespace and keeps it open for the test, then ends.
        let ns: File = std::thread::spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare");
            File::open("/proc/thread-self/ns/net").expect("open")
        })
        .join()
        .expect("thread");
        let path = PathBuf::from(format!("/proc/self/fd/{}", ns.as_raw_fd()));
        assert!(!loopback_is_up(path.clone()), "a new namespace's lo is up");
        loopback_up(&path).expect("loopback_up");
        assert!(loopback_is_up(path.clone()));
        // Twice is fine (already up).
        loopback_up(&path).expect("again");
        let after = std::fs::read_link("/proc/thread-self/ns/net").expect("own netns");
        assert_eq!(before, after);
    }

    #[test]
    fn a_missing_namespace_is_named() {
        let err = loopback_up(Path::new("/proc/nonexistent/ns/net")).expect_err("missing");
        assert!(
            err.to_string().contains("/proc/nonexistent/ns/net"),
            "{err}"
        );
    }
}

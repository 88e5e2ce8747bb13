//! User namespaces made only to carry id maps, for idmapped mounts (MOUNT_ATTR_IDMAP takes
//! a user namespace, not a map).

use std::fs::File;
use std::io;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::ForkResult;

/// A user namespace with these `uid_map` and `gid_map` contents (lines of
/// "inside outside count"), held by its nsfs file. A child is cloned into a new user
/// namespace and waits; the maps are written from here (from the parent namespace, so any
/// host ids may be mapped), its namespace opened, and the child ends: the file keeps the
/// namespace alive.
///
/// # Safety
/// As for `fork`: the caller must be single-threaded.
pub unsafe fn with_maps(uid_map: &str, gid_map: &str) -> io::Result<File> {
    let (wait_end, release_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the caller is single-threaded; the child only reads a pipe and exits.
    let child = match unsafe { super::proc::fork_with_namespaces(CloneFlags::CLONE_NEWUSER) }? {
        ForkResult::Child => {
            drop(release_end);
            let mut byte = [0u8; 1];
            let _ = nix::unistd::read(&wait_end, &mut byte);
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(wait_end);
    let opened = (|| {
        for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            std::fs::write(format!("/proc/{child}/{file}"), map)
                .map_err(|e| io::Error::new(e.kind(), format!("write {file}: {e}")))?;
        }
        File::open(format!("/proc/{child}/ns/user"))
    })();
    drop(release_end);
    let _ = waitpid(child, None);
    opened
}

//! mount(2), umount2(2), pivot_root(2) and mount_setattr(2), on resolved handles.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::fs::fd_path;

/// Mount `source` (or nothing) of type `fstype` onto the directory or file behind `target`.
pub fn mount_on(
    source: Option<&Path>,
    target: BorrowedFd<'_>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(source, &fd_path(target), fstype, flags, data)
}

/// Mount on a path of the current mount namespace (used once the root is pivoted, and for
/// the rootfs itself, which comes from the bundle and not from the image).
pub fn mount_path(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(source, target, fstype, flags, data)
}

/// Change the propagation type of the mount at `target`.
pub fn set_propagation(target: &Path, flags: MsFlags) -> nix::Result<()> {
    nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
}

/// Lazily detach the mount at `target`.
pub fn detach(target: &Path) -> nix::Result<()> {
    nix::mount::umount2(target, MntFlags::MNT_DETACH)
}

/// `pivot_root(".", ".")`: the new root stacks on top of the old one, which the caller then
/// detaches. Needs no directory for the old root inside the image.
pub fn pivot_root_here() -> nix::Result<()> {
    nix::unistd::pivot_root(".", ".")
}

/// Flags read back from a mount (statvfs), in mount(2) terms.
pub fn mount_flags(target: BorrowedFd<'_>) -> nix::Result<MsFlags> {
    use nix::sys::statvfs::{fstatvfs, FsFlags};
    let st = fstatvfs(target)?;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    Ok(out)
}

/// Attributes for mount_setattr(2) (`struct mount_attr`), applied to a whole mount tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecursiveAttrs {
    pub set: u64,
    pub clear: u64,
}

impl RecursiveAttrs {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Apply `attrs` to the mount behind `target` and every mount below it.
pub fn set_recursive_attrs(target: BorrowedFd<'_>, attrs: RecursiveAttrs) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: attrs.set,
        attr_clr: attrs.clear,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes from `&attr`, a live,
    // properly laid-out `struct mount_attr`; the path is a valid NUL-terminated string and
    // `target` is an open descriptor for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            target.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    nix::errno::Errno::result(rc).map(drop)
}

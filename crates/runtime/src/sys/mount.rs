//! mount(2), umount2(2), pivot_root(2), mount_setattr(2) and the detached trees of
//! open_tree(2)/move_mount(2), on resolved handles.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use super::fs::{fd_path, path_bytes};

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
    Errno::result(rc).map(drop)
}

/// linux/mount.h, absent from libc.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// A detached copy of the mount tree at `source` (`open_tree(OPEN_TREE_CLONE)`): the whole
/// tree under it with `recursive` (rbind), else its top mount only (bind).
pub fn clone_tree(source: &Path, recursive: bool) -> nix::Result<OwnedFd> {
    let path = std::ffi::CString::new(path_bytes(source)).map_err(|_| Errno::EINVAL)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree reads the NUL-terminated path only; a non-negative result is a new
    // descriptor that nothing else owns.
    let rc = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = Errno::result(rc)?;
    // SAFETY: see above: the descriptor was just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Make the detached tree `tree` an idmapped mount through the user namespace `userns`
/// (`MOUNT_ATTR_IDMAP`): its top mount only, or every mount of it with `recursive`.
pub fn set_idmap(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: as in set_recursive_attrs: a live `struct mount_attr` of the size passed, an
    // empty NUL-terminated path, descriptors open for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// Attach the detached tree `tree` onto the directory or file behind `target`.
pub fn attach_tree(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: move_mount reads two empty NUL-terminated paths; both descriptors are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(rc).map(drop)
}

//! maskedPaths and readonlyPaths, applied after pivot_root (paths are the container's).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use crate::error::{Error, Result, SysContext};
use crate::sys::fs::{is_dir, open_in_root};
use crate::sys::mount as m;

fn root() -> Result<OwnedFd> {
    nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /".into())
}

/// Open a path of the container, or None if it does not exist.
fn existing(root: BorrowedFd<'_>, path: &str) -> Result<Option<OwnedFd>> {
    match open_in_root(root, Path::new(path), OFlag::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::sys(format!("open {path}"), e)),
    }
}

/// Hide each path: /dev/null over files, an empty read-only tmpfs over directories.
pub(super) fn mask(paths: &[String]) -> Result<()> {
    let root = root()?;
    for path in paths {
        let Some(fd) = existing(root.as_fd(), path)? else {
            continue;
        };
        let result = if is_dir(fd.as_fd()).ctx(|| format!("stat {path}"))? {
            m::mount_on(
                Some(Path::new("tmpfs")),
                fd.as_fd(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )
        } else {
            m::mount_on(
                Some(Path::new("/dev/null")),
                fd.as_fd(),
                None,
                MsFlags::MS_BIND,
                None,
            )
        };
        result.ctx(|| format!("mask {path}"))?;
    }
    Ok(())
}

/// Bind each path onto itself and remount it read-only.
pub(super) fn make_readonly(paths: &[String]) -> Result<()> {
    let root = root()?;
    for path in paths {
        let Some(fd) = existing(root.as_fd(), path)? else {
            continue;
        };
        m::mount_on(
            Some(&crate::sys::fs::fd_path(fd.as_fd())),
            fd.as_fd(),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .ctx(|| format!("bind {path} read-only"))?;
        let Some(mounted) = existing(root.as_fd(), path)? else {
            continue;
        };
        remount_readonly(mounted.as_fd()).ctx(|| format!("remount {path} read-only"))?;
    }
    Ok(())
}

fn remount_readonly(target: BorrowedFd<'_>) -> nix::Result<()> {
    let keep =
        m::mount_flags(target)? & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    m::mount_on(
        None,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
        None,
    )
}

/// `root.readonly`.
pub(super) fn remount_root_readonly() -> Result<()> {
    let root = root()?;
    remount_readonly(root.as_fd()).ctx(|| "remount / read-only".into())
}

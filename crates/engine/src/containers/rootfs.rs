//! A container's root filesystem: an overlay of the image's snapshots (read-only) and the
//! container's own upper directory, mounted while the container runs; beside it, for a
//! shareable IPC namespace (`--ipc shareable`), the /dev/shm tmpfs other containers join.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};

/// The overlay mount for `lower` (top layer first) at `target`.
pub fn mount_overlay(lower: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    Ok(berth_image::overlay::mount_overlay(
        lower, upper, work, target,
    )?)
}

/// Where the shareable /dev/shm of the container whose root filesystem is `rootfs` goes.
pub fn shm_beside(rootfs: &Path) -> PathBuf {
    rootfs.with_file_name("shm")
}

/// A tmpfs of `size` bytes at `target` for /dev/shm, as dockerd mounts a shareable one.
pub fn mount_shm(target: &Path, size: i64) -> Result<()> {
    std::fs::create_dir_all(target)
        .map_err(|e| Error::Io(format!("create {}: {e}", target.display())))?;
    umount_quiet(target)?;
    let data = format!("mode=1777,size={size}");
    mount(
        Some("shm"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .map_err(|e| Error::Io(format!("mounting shm tmpfs on {}: {e}", target.display())))
}

pub(crate) fn umount_quiet(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::Io(format!("unmount {}: {e}", target.display()))),
    }
}

/// Unmount the container's root filesystem, and its shareable /dev/shm beside it (absent
/// is fine): whatever ends or removes a container ends both.
pub fn unmount(target: &Path) -> Result<()> {
    umount_quiet(target)?;
    umount_quiet(&shm_beside(target))
}

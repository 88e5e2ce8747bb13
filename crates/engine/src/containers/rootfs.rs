//! A container's root filesystem: an overlay of the image's snapshots (read-only) and the
//! container's own upper directory, mounted while the container runs.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};

/// The overlay mount for `lower` (top layer first) at `target`.
pub fn mount_overlay(lower: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    for dir in [upper, work, target] {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("create {}: {e}", dir.display())))?;
    }
    if lower
        .iter()
        .any(|l| l.to_string_lossy().contains([',', ':']))
    {
        return Err(Error::InvalidArgument(
            "a snapshot path holds ',' or ':'".into(),
        ));
    }
    let lowers: Vec<String> = lower.iter().map(|l| l.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    );
    // The kernel takes one page of mount options; long layer lists need shorter paths
    // (containerd's trick of mounting relative to the snapshot directory) later.
    if data.len() >= 4096 {
        return Err(Error::InvalidArgument(format!(
            "the image has too many layers ({}) for one overlay mount",
            lower.len()
        )));
    }
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| Error::Io(format!("mount overlay on {}: {e}", target.display())))
}

/// Unmount the container's root filesystem (absent is fine).
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::Io(format!("unmount {}: {e}", target.display()))),
    }
}

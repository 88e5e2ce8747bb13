//! A snapshot chain mounted as an overlay: the image's layers read-only below, an upper
//! directory of the caller's above (a container's root, a build step's tree).

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::error::{Error, Result};

/// The kernel takes one page of mount options.
const MOUNT_DATA_MAX: usize = 4096;

/// Mount `lower` (top layer first, at least one) with `upper` and `work` at `target`,
/// making the three directories.
pub fn mount_overlay(lower: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    for dir in [upper, work, target] {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let data = options(lower, upper, work)?;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| Error::io("mount overlay on", target, e.into()))
}

/// overlayfs' options; the paths may not hold its separators, and the whole must fit a page
/// (long layer lists would need shorter paths: containerd mounts relative to the snapshots).
fn options(lower: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    if lower
        .iter()
        .any(|l| l.to_string_lossy().contains([',', ':']))
    {
        return Err(Error::Overlay("a snapshot path holds ',' or ':'".into()));
    }
    let lowers: Vec<String> = lower.iter().map(|l| l.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    );
    if data.len() >= MOUNT_DATA_MAX {
        return Err(Error::Overlay(format!(
            "the image has too many layers ({}) for one overlay mount",
            lower.len()
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_name_the_layers_top_first_and_refuse_what_overlayfs_cannot_take() {
        let lower = [PathBuf::from("/s/2"), PathBuf::from("/s/1")];
        let data = options(&lower, Path::new("/c/upper"), Path::new("/c/work")).expect("options");
        assert_eq!(data, "lowerdir=/s/2:/s/1,upperdir=/c/upper,workdir=/c/work");
        assert!(options(&[PathBuf::from("/s/a:b")], Path::new("/u"), Path::new("/w")).is_err());
        let many: Vec<PathBuf> = (0..500)
            .map(|i| PathBuf::from(format!("/snapshots/{i:04}/fs")))
            .collect();
        let e = options(&many, Path::new("/u"), Path::new("/w")).expect_err("too long");
        assert!(e.to_string().contains("too many layers (500)"), "{e}");
    }
}

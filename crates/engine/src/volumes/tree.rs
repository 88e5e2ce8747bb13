//! Walking a volume's directory tree: whether something is mounted on it, and its removal,
//! which never crosses into another mount (its size: berth_image::dir_size).

use std::path::Path;

use rustix::fs::{statx, AtFlags, StatxFlags, CWD};

use crate::error::{Error, Result};

/// The mount id of `path` itself (not following a last symlink).
fn mount_id(path: &Path) -> Option<u64> {
    statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::MNT_ID | StatxFlags::TYPE,
    )
    .ok()
    .map(|s| s.stx_mnt_id)
}

/// Whether a filesystem is mounted on `path` (its mount differs from its parent's; a bind
/// mount of the same filesystem has the same device, so devices cannot tell).
pub fn is_mount_point(path: &Path) -> bool {
    let Some(parent) = path.parent() else {
        return true;
    };
    match (mount_id(path), mount_id(parent)) {
        (Some(own), Some(above)) => own != above,
        _ => false,
    }
}

/// Delete `dir` and everything in it, without following symlinks and without entering
/// another filesystem mounted below it (that is an error: it is not the volume's to
/// delete). Absent is fine.
pub fn remove(dir: &Path) -> Result<()> {
    let Some(root_mount) = mount_id(dir) else {
        return Ok(());
    };
    fn walk(dir: &Path, root_mount: u64) -> Result<()> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::Io(format!("read {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                if mount_id(&path) != Some(root_mount) {
                    return Err(Error::Io(format!(
                        "{} is a mount point: not removed",
                        path.display()
                    )));
                }
                walk(&path, root_mount)?;
                std::fs::remove_dir(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .map_err(|e| Error::Io(format!("remove {}: {e}", path.display())))?;
        }
        Ok(())
    }
    walk(dir, root_mount)?;
    std::fs::remove_dir(dir).map_err(|e| Error::Io(format!("remove {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_removal() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("v");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::write(root.join("a/b/f"), b"1234").expect("write");
        std::fs::hard_link(root.join("a/b/f"), root.join("g")).expect("link");
        std::os::unix::fs::symlink("/etc", root.join("a/etc")).expect("symlink");
        assert!(!is_mount_point(&root));
        remove(&root).expect("remove");
        assert!(!root.exists());
        assert!(Path::new("/etc/passwd").exists());
        remove(&root).expect("absent is fine");
    }
}

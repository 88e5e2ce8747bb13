//! Mounts of a container that shares the runtime's mount namespace (its config lists no
//! "mount" namespace). runc and crun run such a config and mount what it asks under the
//! rootfs in the host's namespace, where the mounts outlive the container. berth records
//! the mounts the create added under the rootfs (by mount id, from /proc/self/mountinfo
//! before the fork and once init is ready) and detaches them at delete, or when the create
//! fails. Only such configs pay for the two reads of mountinfo.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The record in the state directory.
const FILE: &str = "host-mounts.json";

/// One mount: its id (unique while it is mounted) and its mount point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HostMount {
    id: u64,
    path: PathBuf,
}

/// The mounts at or under `rootfs` before the create touched anything.
pub(super) struct Before {
    rootfs: PathBuf,
    ids: HashSet<u64>,
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
pub(crate) fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The mounts of `mountinfo` (its text) at or under `rootfs`, in mount order.
fn parse_under(mountinfo: &str, rootfs: &Path) -> Vec<HostMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?.parse().ok()?;
            let path = unescape(fields.nth(3)?);
            path.starts_with(rootfs).then_some(HostMount { id, path })
        })
        .collect()
}

fn under(rootfs: &Path) -> Result<Vec<HostMount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    Ok(parse_under(&text, rootfs))
}

impl Before {
    pub fn take(rootfs: &Path) -> Result<Before> {
        Ok(Before {
            rootfs: rootfs.to_path_buf(),
            ids: under(rootfs)?.into_iter().map(|m| m.id).collect(),
        })
    }

    fn added(&self) -> Result<Vec<HostMount>> {
        Ok(under(&self.rootfs)?
            .into_iter()
            .filter(|m| !self.ids.contains(&m.id))
            .collect())
    }

    /// Record what the create added, for delete.
    pub fn record(&self, state_dir: &Path) -> Result<()> {
        let added = self.added()?;
        let path = state_dir.join(FILE);
        let json = serde_json::to_vec(&added)
            .map_err(|e| Error::Init(format!("encode host mounts: {e}")))?;
        std::fs::write(&path, json).map_err(|e| Error::io("write", &path, e))
    }

    /// A failed create: detach what it added.
    pub fn undo(&self) {
        if let Ok(added) = self.added() {
            detach_all(&added);
        }
    }
}

/// Delete: detach the mounts recorded at create that are still there (same id, same place).
pub(super) fn remove(state_dir: &Path) -> Result<()> {
    let path = state_dir.join(FILE);
    let recorded: Vec<HostMount> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::Init(format!("{}: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let Some(top) = recorded.iter().map(|m| m.path.as_path()).min() else {
        return Ok(());
    };
    let present = under(top)?;
    let still: Vec<HostMount> = recorded
        .into_iter()
        .filter(|m| present.contains(m))
        .collect();
    detach_all(&still);
    Ok(())
}

/// Detach, last mounted first, never following a symlink put in the way.
fn detach_all(mounts: &[HostMount]) {
    for m in mounts.iter().rev() {
        match nix::mount::umount2(
            &m.path,
            nix::mount::MntFlags::MNT_DETACH | nix::mount::MntFlags::UMOUNT_NOFOLLOW,
        ) {
            // EINVAL: already gone with a parent detached before it.
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => tracing::warn!("detach {}: {e}", m.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_under_the_rootfs_are_found_with_escapes_undone() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
40 22 0:5 / /b/root\\040fs rw - ext4 /dev/sda1 rw
41 40 0:6 / /b/root\\040fs/proc rw - proc proc rw
42 22 0:7 / /b/root\\040fs2 rw - tmpfs tmpfs rw
";
        let found = parse_under(info, Path::new("/b/root fs"));
        let ids: Vec<u64> = found.iter().map(|m| m.id).collect();
        assert_eq!(ids, [40, 41], "{found:?}");
        assert_eq!(found[1].path, Path::new("/b/root fs/proc"));
    }
}

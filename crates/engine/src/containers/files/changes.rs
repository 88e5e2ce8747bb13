//! `docker diff`: what the container changed, read from its overlay's upper directory.
//! A whiteout (a 0:0 character device) is a deletion; anything else is a change when the
//! image's layers have that path and an addition when they do not (copied-up parent
//! directories are changes, as overlay2's diff in dockerd shows them).

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::Engine;

/// moby's change kinds (0: modified, 1: added, 2: deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeJson<'a> {
    path: &'a str,
    kind: u8,
}

impl Change {
    /// As `/containers/{id}/changes` answers it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(ChangeJson {
            path: &self.path,
            kind: self.kind as u8,
        })
        .unwrap_or_default()
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io(format!("open {}: {e}", path.display())))
}

fn is_whiteout(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFCHR.bits() && st.st_rdev == 0
}

/// Whether the image's layers (top first) show `rel`: the first layer that has the path
/// (or a whiteout of it, or a non-directory on its way) decides.
fn in_lower(lower: &[OwnedFd], rel: &Path) -> bool {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    for layer in lower {
        match openat2(layer, rel, how) {
            Ok(fd) => return fstat(&fd).is_ok_and(|st| !is_whiteout(&st)),
            Err(Errno::ENOENT) => continue,
            // A symlink or file where a directory would be: the path is not there.
            Err(_) => return false,
        }
    }
    false
}

struct Walk<'a> {
    lower: &'a [OwnedFd],
    /// Runtime mount points, left out while they are added and empty.
    mount_points: Vec<PathBuf>,
    out: Vec<Change>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &OwnedFd, rel: &Path, opaque: bool) -> Result<()> {
        for name in berth_image::tarball::list_dir(dir, rel)? {
            self.entry(dir, &name, &rel.join(&name), opaque)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: &OwnedFd, name: &OsString, rel: &Path, opaque: bool) -> Result<()> {
        let st = match fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(Error::Io(format!("stat {}: {e}", rel.display()))),
        };
        let path = format!("/{}", rel.display());
        if is_whiteout(&st) {
            self.out.push(Change {
                path,
                kind: ChangeKind::Deleted,
            });
            return Ok(());
        }
        let kind = if !opaque && in_lower(self.lower, rel) {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        let is_dir = st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits();
        if kind == ChangeKind::Added && self.mount_points.iter().any(|p| p == rel) {
            let empty = if is_dir {
                openat(
                    dir,
                    name.as_os_str(),
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .ok()
                .and_then(|fd| berth_image::tarball::list_dir(&fd, rel).ok())
                .is_some_and(|n| n.is_empty())
            } else {
                st.st_size == 0
            };
            if empty {
                return Ok(());
            }
        }
        let reported = self.out.len();
        self.out.push(Change { path, kind });
        if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() {
            let sub = match openat(
                dir,
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(()),
                Err(e) => return Err(Error::Io(format!("open {}: {e}", rel.display()))),
            };
            // An opaque directory hides the layers' contents: what it holds is new.
            let hides = opaque
                || berth_image::tarball::xattr(&sub, "trusted.overlay.opaque").as_deref()
                    == Some(b"y");
            self.dir(&sub, rel, hides)?;
            // A directory in the upper layer only because mount points were made in it
            // (/etc for /etc/hosts) is dockerd's init layer's, not the container's change.
            let holds_mount_points = self
                .mount_points
                .iter()
                .any(|p| p.starts_with(rel) && p != rel);
            if holds_mount_points && self.out.len() == reported + 1 {
                self.out.truncate(reported);
            }
        }
        Ok(())
    }
}

impl Engine {
    /// `docker diff`, sorted by path.
    pub fn container_changes(&self, name: &str) -> Result<Vec<Change>> {
        let record = self.containers.resolve(name)?;
        let lower: Vec<PathBuf> = self.lower_dirs(&record)?;
        let lower = lower
            .iter()
            .map(|p| open_dir(p))
            .collect::<Result<Vec<_>>>()?;
        let upper = self.containers.dir(&record.id).join("upper");
        let upper = match open_dir(&upper) {
            Ok(fd) => fd,
            // Never started: nothing changed.
            Err(_) if !upper.exists() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut walk = Walk {
            lower: &lower,
            mount_points: super::mount_points(&record),
            out: Vec::new(),
        };
        walk.dir(&upper, Path::new(""), false)?;
        walk.out.sort();
        Ok(walk.out)
    }
}

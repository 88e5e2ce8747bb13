//! Filling a new, empty volume with what the image has at the volume's destination (moby's
//! copy-up): files, directories, symlinks, hard links, fifos and devices, with their owners,
//! modes, times and extended attributes.
//!
//! The source lies in a container's root filesystem, which the container (or its image)
//! controls: the destination is resolved inside the root (openat2 RESOLVE_IN_ROOT), and the
//! walk goes from directory descriptor to directory descriptor without following a symlink,
//! so no path of the host outside that root is read. What is written goes below the
//! volume's `_data` the same way.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    openat, openat2, AtFlags, Dir, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Timestamps,
    Uid, CWD,
};

use crate::error::{Error, Result};

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io(format!("copy-up: {what} {}: {e}", path.display()))
}

/// Copy the directory at `dest` inside `rootfs` into `data`, if `data` is empty and the
/// image has a directory there (else nothing, as moby). `data` takes the directory's own
/// owner and mode too. Whether anything was copied.
pub fn copy_up(rootfs: &Path, dest: &str, data: &Path) -> Result<bool> {
    let dst = open_dir(CWD, data.as_os_str()).map_err(|e| err("open", data, e))?;
    if !is_empty(&dst).map_err(|e| err("read", data, e))? {
        return Ok(false);
    }
    let root = open_dir(CWD, rootfs.as_os_str()).map_err(|e| err("open", rootfs, e))?;
    let inner = dest.trim_start_matches('/');
    let src = match openat2(
        &root,
        if inner.is_empty() { "." } else { inner },
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
    ) {
        Ok(fd) => fd,
        // Nothing (or not a directory) in the image there: nothing to copy.
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => {
            return Ok(false)
        }
        Err(e) => return Err(err("open", &rootfs.join(inner), e)),
    };
    let mut walk = Walk {
        links: HashMap::new(),
        shown: rootfs.join(inner),
    };
    walk.dir(&src, &dst, PathBuf::new(), &dst)?;
    let st = rustix::fs::fstat(&src).map_err(|e| err("stat", &walk.shown, e))?;
    attributes(&src, &dst, &st).map_err(|e| err("set attributes of", data, e))?;
    Ok(true)
}

fn open_dir<Fd: AsFd, P: rustix::path::Arg>(dir: Fd, path: P) -> rustix::io::Result<OwnedFd> {
    openat(
        dir,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
}

fn is_empty(dir: &OwnedFd) -> rustix::io::Result<bool> {
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

struct Walk {
    /// Files with several links already copied: (dev, ino) to their path below `_data`.
    links: HashMap<(u64, u64), PathBuf>,
    /// The source directory, for messages.
    shown: PathBuf,
}

impl Walk {
    /// Copy the entries of `src` into `dst` (at `rel` below the volume's `_data`, whose
    /// descriptor is `top`).
    fn dir(&mut self, src: &OwnedFd, dst: &OwnedFd, rel: PathBuf, top: &OwnedFd) -> Result<()> {
        let here = self.shown.join(&rel);
        let entries: Vec<CString> = Dir::read_from(src)
            .map_err(|e| err("read", &here, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        for name in entries {
            let shown = here.join(OsStr::from_bytes(name.as_bytes()));
            self.entry(src, dst, &name, &rel, top)
                .map_err(|e| match e {
                    Error::Io(m) if m.starts_with("copy-up") => Error::Io(m),
                    other => err("copy", &shown, other),
                })?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &CStr,
        rel: &Path,
        top: &OwnedFd,
    ) -> Result<()> {
        let io = |e: rustix::io::Errno| Error::Io(e.to_string());
        let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
        let rel = rel.join(OsStr::from_bytes(name.to_bytes()));
        let kind = FileType::from_raw_mode(st.st_mode);
        let perm = Mode::from_raw_mode(st.st_mode & 0o7777);
        if kind != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                return rustix::fs::linkat(top, first.as_path(), dst, name, AtFlags::empty())
                    .map_err(io);
            }
            self.links.insert(key, rel.clone());
        }
        match kind {
            FileType::Directory => {
                rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700)).map_err(io)?;
                let s = open_dir(src, name).map_err(io)?;
                let d = open_dir(dst, name).map_err(io)?;
                self.dir(&s, &d, rel, top)?;
                attributes(&s, &d, &st).map_err(io)
            }
            FileType::RegularFile => {
                let s = openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(io)?;
                let d = openat(
                    dst,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::CLOEXEC
                        | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(io)?;
                let (mut from, mut to) = (std::fs::File::from(s), std::fs::File::from(d));
                std::io::copy(&mut from, &mut to).map_err(|e| Error::Io(e.to_string()))?;
                attributes(&from, &to, &st).map_err(io)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new()).map_err(io)?;
                rustix::fs::symlinkat(target.as_c_str(), dst, name).map_err(io)?;
                owner_at(dst, name, &st)?;
                times_at(dst, name, &st)
            }
            FileType::Fifo
            | FileType::CharacterDevice
            | FileType::BlockDevice
            | FileType::Socket => {
                rustix::fs::mknodat(dst, name, kind, perm, st.st_rdev).map_err(io)?;
                owner_at(dst, name, &st)?;
                rustix::fs::chmodat(dst, name, perm, AtFlags::empty()).map_err(io)?;
                times_at(dst, name, &st)
            }
            FileType::Unknown => Ok(()),
        }
    }
}

fn owner_at(dst: &OwnedFd, name: &CStr, st: &Stat) -> Result<()> {
    rustix::fs::chownat(
        dst,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::Io(e.to_string()))
}

fn timestamps(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

fn times_at(dst: &OwnedFd, name: &CStr, st: &Stat) -> Result<()> {
    rustix::fs::utimensat(dst, name, &timestamps(st), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::Io(e.to_string()))
}

/// Owner, then mode (a chown clears set-id bits), extended attributes, times: from the
/// open source to the open copy.
fn attributes<S: AsFd, D: AsFd>(src: S, dst: D, st: &Stat) -> rustix::io::Result<()> {
    rustix::fs::fchown(
        &dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    rustix::fs::fchmod(&dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    xattrs(&src, &dst)?;
    rustix::fs::futimens(&dst, &timestamps(st))
}

fn xattrs<S: AsFd, D: AsFd>(src: S, dst: D) -> rustix::io::Result<()> {
    let len = match rustix::fs::flistxattr_query(&src) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e),
    };
    if len == 0 {
        return Ok(());
    }
    let mut names = vec![0u8; len];
    let len = rustix::fs::flistxattr(&src, &mut names[..])?;
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = CString::new(name) else {
            continue;
        };
        let size = rustix::fs::fgetxattr_query(&src, name.as_c_str())?;
        let mut value = vec![0u8; size];
        let size = rustix::fs::fgetxattr(&src, name.as_c_str(), &mut value[..])?;
        match rustix::fs::fsetxattr(
            &dst,
            name.as_c_str(),
            &value[..size],
            rustix::fs::XattrFlags::empty(),
        ) {
            // A namespace the volume's filesystem does not take (as tar warns and goes on).
            Ok(()) | Err(rustix::io::Errno::NOTSUP) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn copies_a_tree_with_its_attributes_and_never_leaves_the_root() {
        let dir = tempfile::tempdir().expect("tmp");
        let rootfs = dir.path().join("rootfs");
        let src = rootfs.join("srv/data");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("sub/f"), b"hello").expect("write");
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640))
            .expect("chmod");
        std::os::unix::fs::chown(src.join("sub/f"), Some(1234), Some(99)).expect("chown");
        std::fs::hard_link(src.join("sub/f"), src.join("g")).expect("link");
        std::os::unix::fs::symlink("/etc/passwd", src.join("abs")).expect("symlink");
        nix::unistd::mkfifo(
            &src.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .expect("mkfifo");
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let _ = rustix::fs::setxattr(
            src.join("sub/f").as_path(),
            "user.k",
            b"v",
            rustix::fs::XattrFlags::empty(),
        );
        // A link that points out of the root: followed inside it (where nothing is).
        std::os::unix::fs::symlink("../../../../../../etc", rootfs.join("escape"))
            .expect("symlink");
        let data = dir.path().join("_data");
        std::fs::create_dir(&data).expect("mkdir");
        assert!(copy_up(&rootfs, "/srv/data", &data).expect("copy"));
        assert_eq!(std::fs::read(data.join("sub/f")).expect("read"), b"hello");
        let meta = std::fs::metadata(data.join("sub/f")).expect("stat");
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (1234, 99, 0o640)
        );
        assert_eq!(
            meta.ino(),
            std::fs::metadata(data.join("g")).expect("stat").ino()
        );
        assert_eq!(
            std::fs::read_link(data.join("abs")).expect("link").to_str(),
            Some("/etc/passwd")
        );
        assert!(std::fs::symlink_metadata(data.join("fifo"))
            .expect("fifo")
            .file_type()
            .is_fifo_like());
        assert_eq!(
            std::fs::metadata(&data).expect("stat").mode() & 0o7777,
            0o1777
        );
        if let Ok(n) =
            rustix::fs::getxattr(src.join("sub/f").as_path(), "user.k", &mut [0u8; 8][..])
        {
            let mut v = [0u8; 8];
            let m = rustix::fs::getxattr(data.join("sub/f").as_path(), "user.k", &mut v[..])
                .expect("xattr");
            assert_eq!(&v[..m], &b"v"[..n]);
        }
        // Not empty any more: a second copy does nothing.
        assert!(!copy_up(&rootfs, "/srv/data", &data).expect("again"));
        // Through the link out of the root: nothing there inside the root, nothing copied.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).expect("mkdir");
        assert!(!copy_up(&rootfs, "/escape", &other).expect("escape"));
        assert_eq!(std::fs::read_dir(&other).expect("read").count(), 0);
        assert!(!copy_up(&rootfs, "/missing", &other).expect("missing"));
    }

    trait FifoLike {
        fn is_fifo_like(&self) -> bool;
    }
    impl FifoLike for std::fs::FileType {
        fn is_fifo_like(&self) -> bool {
            std::os::unix::fs::FileTypeExt::is_fifo(self)
        }
    }
}

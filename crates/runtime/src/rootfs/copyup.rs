//! `tmpcopyup`: a tmpfs mounted over a directory of the image starts with a copy of what
//! that directory holds, as runc and crun do (podman asks for it on /run, /tmp...).
//!
//! The copy reads the directory through a handle opened before the tmpfs covers it, so no
//! temporary mount is needed; every entry is opened relative to its parent without
//! following symlinks, so the image cannot lead the copy outside itself. Copied: regular
//! files, directories, symlinks, fifos, sockets and device nodes, with their owner and mode
//! (set-id bits included); hard links become separate files and times are not kept, as with
//! runc and crun.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

use crate::error::{Error, Result};

/// A readable handle on the directory behind `target` (an O_PATH handle on the mount
/// point): taken before the tmpfs is mounted, it keeps reaching what the tmpfs covers.
pub(super) fn open_covered(target: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        target,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Copy the content of `from` into the directory `to`; `dest` names the mount in errors.
pub(super) fn copy_dir(from: BorrowedFd<'_>, to: BorrowedFd<'_>, dest: &Path) -> Result<()> {
    copy_entries(from, to, &mut dest.to_path_buf())
}

fn fail(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Init(format!("tmpcopyup: {what} {}: {e}", path.display()))
}

fn copy_entries(from: BorrowedFd<'_>, to: BorrowedFd<'_>, path: &mut PathBuf) -> Result<()> {
    let names = entry_names(from).map_err(|e| fail(path, "read directory", e))?;
    for name in names {
        let name = OsStr::from_bytes(&name);
        path.push(name);
        let copied = copy_entry(from, to, name, path);
        path.pop();
        copied?;
    }
    Ok(())
}

/// The names in a directory but `.` and `..`, read before anything is created in the copy.
fn entry_names(dir: BorrowedFd<'_>) -> nix::Result<Vec<Vec<u8>>> {
    let fd = nix::fcntl::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in Dir::from_fd(fd)?.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

fn copy_entry(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    name: &OsStr,
    path: &mut PathBuf,
) -> Result<()> {
    let st =
        fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| fail(path, "stat", e))?;
    let (uid, gid) = (Uid::from_raw(st.st_uid), Gid::from_raw(st.st_gid));
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let kind = st.st_mode & libc::S_IFMT;
    match kind {
        libc::S_IFDIR => {
            mkdirat(to, name, Mode::from_bits_truncate(0o700))
                .map_err(|e| fail(path, "create", e))?;
            let nofollow =
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let src = nix::fcntl::openat(from, name, nofollow, Mode::empty())
                .map_err(|e| fail(path, "open", e))?;
            let dst = nix::fcntl::openat(to, name, nofollow, Mode::empty())
                .map_err(|e| fail(path, "open the copy of", e))?;
            copy_entries(src.as_fd(), dst.as_fd(), path)?;
        }
        libc::S_IFREG => copy_file(from, to, name, path)?,
        libc::S_IFLNK => {
            let target =
                nix::fcntl::readlinkat(from, name).map_err(|e| fail(path, "read link", e))?;
            nix::unistd::symlinkat(target.as_os_str(), to, name)
                .map_err(|e| fail(path, "create", e))?;
        }
        libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK => {
            mknodat(to, name, SFlag::from_bits_truncate(kind), mode, st.st_rdev)
                .map_err(|e| fail(path, "create", e))?;
        }
        _ => return Err(fail(path, "copy", format!("unknown file type {kind:o}"))),
    }
    fchownat(to, name, Some(uid), Some(gid), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| fail(path, &format!("chown {uid}:{gid}"), e))?;
    // After the chown, which clears set-id bits; symlinks have no mode of their own. The
    // entry was just made by us and is no symlink, so following changes nothing.
    if kind != libc::S_IFLNK {
        fchmodat(to, name, mode, FchmodatFlags::FollowSymlink)
            .map_err(|e| fail(path, &format!("chmod {:o}", mode.bits()), e))?;
    }
    Ok(())
}

fn copy_file(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<()> {
    let src = nix::fcntl::openat(
        from,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(path, "open", e))?;
    let dst = nix::fcntl::openat(
        to,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| fail(path, "create", e))?;
    std::io::copy(&mut File::from(src), &mut File::from(dst)).map_err(|e| fail(path, "copy", e))?;
    Ok(())
}

//! Unpack one layer (a tar, plain, gzip or zstd) into an empty directory that becomes an
//! overlayfs lower layer: whiteouts (`.wh.name`) become 0:0 character devices and opaque
//! markers (`.wh..wh..opq`) the `trusted.overlay.opaque` xattr, as overlayfs reads them.
//!
//! Layers are hostile input. Every entry is created relative to a descriptor of its parent
//! directory, reached one component at a time with O_NOFOLLOW, so no entry can be written
//! through a symlink; `..` components are refused; absolute paths are taken from the
//! layer's root; a hardlink may only point at an entry of the same layer. Ownership, modes
//! (set after chown, which clears set-id bits), mtimes, device nodes and xattrs are kept.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, futimens, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What unpacking a layer found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The digest of the uncompressed tar (the layer's DiffID).
    pub diff_id: Digest,
    /// Bytes of regular file content.
    pub size: u64,
}

/// Compression of a layer stream, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// The decompressed stream of `reader`.
pub fn decompressed<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered
        .fill_buf()
        .map_err(|e| Error::io("read", "layer", e))?;
    Ok(match detect(head) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|e| Error::io("zstd", "layer", e))?,
        ),
    })
}

fn unsafe_entry(path: &Path, why: &'static str) -> Error {
    Error::UnsafeEntry {
        path: path.display().to_string(),
        why,
    }
}

fn sys(op: &'static str, path: &Path, e: Errno) -> Error {
    Error::io(op, path, std::io::Error::from(e))
}

/// The components of an entry path, relative to the layer root; `..` is refused.
fn components(path: &Path) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => return Err(unsafe_entry(path, "contains \"..\"")),
            Component::Prefix(_) => return Err(unsafe_entry(path, "has a prefix")),
        }
    }
    Ok(out)
}

fn open_dir_nofollow(dir: impl AsFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The directory at `parents` below `root`, created (0755) where missing. Every component
/// must be a real directory: a symlink on the way is refused.
fn walk(root: &OwnedFd, parents: &[OsString], entry: &Path, create: bool) -> Result<OwnedFd> {
    let mut dir = root.try_clone().map_err(|e| Error::io("dup", entry, e))?;
    for name in parents {
        let next = match open_dir_nofollow(&dir, name) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => {
                match mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(sys("mkdir", entry, e)),
                }
                open_dir_nofollow(&dir, name).map_err(|e| sys("open", entry, e))?
            }
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                return Err(unsafe_entry(
                    entry,
                    "a parent is not a directory (a symlink?)",
                ))
            }
            Err(e) => return Err(sys("open", entry, e)),
        };
        dir = next;
    }
    Ok(dir)
}

/// The directory the previous entry went into, kept open: tar entries come directory by
/// directory, and walking from the root for each costs a syscall per path component. Any
/// removal forgets it, so a directory replaced since it was opened is never written into.
struct ParentCache {
    comps: Vec<OsString>,
    fd: Option<OwnedFd>,
}

impl ParentCache {
    /// The directory at `parents` (created where missing), as its own descriptor.
    fn get(&mut self, root: &OwnedFd, parents: &[OsString], entry: &Path) -> Result<OwnedFd> {
        let fd = match &self.fd {
            Some(fd) if self.comps.as_slice() == parents => {
                return fd.try_clone().map_err(|e| Error::io("dup", entry, e));
            }
            // Going deeper: walk on from the cached directory.
            Some(fd) if parents.starts_with(&self.comps) => {
                walk(fd, &parents[self.comps.len()..], entry, true)?
            }
            _ => walk(root, parents, entry, true)?,
        };
        let out = fd.try_clone().map_err(|e| Error::io("dup", entry, e))?;
        self.comps = parents.to_vec();
        self.fd = Some(fd);
        Ok(out)
    }

    fn forget(&mut self) {
        self.fd = None;
        self.comps.clear();
    }
}

/// Remove whatever is at `name` (a directory only if asked to replace it by a non-directory).
fn clear(dir: &OwnedFd, name: &OsStr, entry: &Path, cache: &mut ParentCache) -> Result<()> {
    let removed = match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => true,
        Err(Errno::ENOENT) => false,
        Err(Errno::EISDIR) => match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
            Ok(()) => true,
            Err(Errno::ENOENT) => false,
            Err(e) => return Err(sys("replace", entry, e)),
        },
        Err(e) => return Err(sys("replace", entry, e)),
    };
    if removed {
        cache.forget();
    }
    Ok(())
}

fn create_file(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
}

fn set_xattr(fd: &impl AsRawFd, name: &str, value: &[u8], entry: &Path) -> Result<()> {
    let cname =
        std::ffi::CString::new(name).map_err(|_| unsafe_entry(entry, "xattr name has NUL"))?;
    // SAFETY: name is NUL-terminated; value is valid for value.len() bytes.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc)
        .map(drop)
        .map_err(|e| sys("set xattr", entry, e))
}

/// Layer metadata of one entry.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// A numeric header field; an empty one (all NUL or spaces) reads as 0, as Go's archive/tar
/// (which wrote most layers) reads it.
fn field<T: Default>(
    parsed: std::io::Result<T>,
    raw: &[u8],
    path: &Path,
    name: &'static str,
) -> Result<T> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(T::default()),
        Err(_) => Err(unsafe_entry(path, name)),
    }
}

fn meta_of<R: Read>(entry: &mut tar::Entry<'_, R>, path: &Path) -> Result<Meta> {
    let mut xattrs = Vec::new();
    if let Ok(Some(ext)) = entry.pax_extensions() {
        for e in ext.flatten() {
            if let Some(name) = e.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                xattrs.push((name.to_string(), e.value_bytes().to_vec()));
            }
        }
    }
    let h = entry.header();
    let old = h.as_old();
    let mode = field(h.mode(), &old.mode, path, "unreadable mode")?;
    let uid = field(h.uid(), &old.uid, path, "unreadable uid")?;
    let gid = field(h.gid(), &old.gid, path, "unreadable gid")?;
    let mtime = field(h.mtime(), &old.mtime, path, "unreadable mtime")?;
    Ok(Meta {
        mode: mode & 0o7777,
        uid: u32::try_from(uid).map_err(|_| unsafe_entry(path, "uid out of range"))?,
        gid: u32::try_from(gid).map_err(|_| unsafe_entry(path, "gid out of range"))?,
        mtime: i64::try_from(mtime).unwrap_or(0),
        xattrs,
    })
}

/// Unpack `layer` into `dest`, an empty directory.
pub fn unpack(layer: impl Read, dest: &Path) -> Result<Unpacked> {
    let root: OwnedFd = openat(
        nix::fcntl::AT_FDCWD,
        dest,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| sys("open", dest, e))?;
    let mut hashing = HashingReader::new(decompressed(layer)?);
    let mut size = 0u64;
    let mut dirs: Vec<(Vec<OsString>, Meta)> = Vec::new();
    let mut cache = ParentCache {
        comps: Vec::new(),
        fd: None,
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive
            .entries()
            .map_err(|e| Error::archive(format!("layer is not a tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::archive(format!("corrupt layer tar: {e}")))?;
            let path = entry
                .path()
                .map_err(|e| Error::archive(format!("bad entry name: {e}")))?
                .into_owned();
            let comps = components(&path)?;
            let Some((name, parents)) = comps.split_last() else {
                continue; // the layer root itself
            };
            let name_str = name.to_string_lossy();
            let parent = cache.get(&root, parents, &path)?;
            if name_str == OPAQUE_MARKER {
                let dir = openat(
                    &parent,
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| sys("open", &path, e))?;
                set_xattr(&dir, "trusted.overlay.opaque", b"y", &path)?;
                continue;
            }
            if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX) {
                if hidden.is_empty() {
                    return Err(unsafe_entry(&path, "empty whiteout"));
                }
                clear(&parent, OsStr::new(hidden), &path, &mut cache)?;
                mknodat(&parent, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| sys("create whiteout", &path, e))?;
                continue;
            }
            let meta = meta_of(&mut entry, &path)?;
            let kind = entry.header().entry_type();
            match kind {
                tar::EntryType::Directory => {
                    match open_dir_nofollow(&parent, name) {
                        Ok(_) => {}
                        Err(Errno::ENOENT) => {
                            mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(0o700))
                                .map_err(|e| sys("mkdir", &path, e))?
                        }
                        Err(_) => {
                            clear(&parent, name, &path, &mut cache)?;
                            mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(0o700))
                                .map_err(|e| sys("mkdir", &path, e))?;
                        }
                    }
                    // Modes and times of directories are set last: later entries change them.
                    dirs.push((comps.clone(), meta));
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    // Mostly the name is new: try that first, replace only when it is not.
                    let fd = match create_file(&parent, name) {
                        Err(Errno::EEXIST) => {
                            clear(&parent, name, &path, &mut cache)?;
                            create_file(&parent, name)
                        }
                        other => other,
                    }
                    .map_err(|e| sys("create", &path, e))?;
                    let mut file = std::fs::File::from(fd);
                    size += std::io::copy(&mut entry, &mut file)
                        .map_err(|e| Error::io("write", &path, e))?;
                    finish_fd(&file, &meta, &path)?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(|e| Error::archive(format!("bad link target: {e}")))?
                        .ok_or_else(|| unsafe_entry(&path, "symlink without a target"))?;
                    clear(&parent, name, &path, &mut cache)?;
                    symlinkat(target.as_os_str(), &parent, name.as_os_str())
                        .map_err(|e| sys("symlink", &path, e))?;
                    owner_and_time_nofollow(&parent, name, &meta, &path)?;
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(|e| Error::archive(format!("bad link target: {e}")))?
                        .ok_or_else(|| unsafe_entry(&path, "hardlink without a target"))?;
                    let tcomps = components(&target)?;
                    let Some((tname, tparents)) = tcomps.split_last() else {
                        return Err(unsafe_entry(&path, "hardlink to the layer root"));
                    };
                    let tdir = walk(&root, tparents, &path, false)?;
                    clear(&parent, name, &path, &mut cache)?;
                    linkat(
                        &tdir,
                        tname.as_os_str(),
                        &parent,
                        name.as_os_str(),
                        AtFlags::empty(),
                    )
                    .map_err(|e| sys("hardlink", &path, e))?;
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    let h = entry.header();
                    let major = h.device_major().ok().flatten().unwrap_or(0);
                    let minor = h.device_minor().ok().flatten().unwrap_or(0);
                    let sflag = match kind {
                        tar::EntryType::Char => SFlag::S_IFCHR,
                        tar::EntryType::Block => SFlag::S_IFBLK,
                        _ => SFlag::S_IFIFO,
                    };
                    clear(&parent, name, &path, &mut cache)?;
                    mknodat(
                        &parent,
                        name.as_os_str(),
                        sflag,
                        Mode::from_bits_truncate(meta.mode),
                        nix::sys::stat::makedev(major.into(), minor.into()),
                    )
                    .map_err(|e| sys("mknod", &path, e))?;
                    // The node was just made by us, so following its name cannot leave the layer.
                    owner_and_time_nofollow(&parent, name, &meta, &path)?;
                    nix::sys::stat::fchmodat(
                        &parent,
                        name.as_os_str(),
                        Mode::from_bits_truncate(meta.mode),
                        nix::sys::stat::FchmodatFlags::FollowSymlink,
                    )
                    .map_err(|e| sys("chmod", &path, e))?;
                }
                tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink => {}
                other => {
                    return Err(Error::archive(format!(
                        "entry {} has an unsupported type {other:?}",
                        path.display()
                    )))
                }
            }
        }
    }
    // Directories deepest first, so setting a parent's mtime is not undone by its children.
    dirs.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
    for (comps, meta) in dirs {
        let path: std::path::PathBuf = comps.iter().collect();
        let dir = walk(&root, &comps, &path, false)?;
        let fd = openat(
            &dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys("open", &path, e))?;
        finish_fd(&std::fs::File::from(fd), &meta, &path)?;
    }
    // The tar's end-of-archive padding belongs to the DiffID too.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| Error::io("read", "layer", e))?;
    Ok(Unpacked {
        diff_id: Digest::from_hasher(hashing.hasher),
        size,
    })
}

/// Owner, then mode (chown clears set-id bits), xattrs and mtime of an open file or dir.
fn finish_fd(file: &std::fs::File, meta: &Meta, path: &Path) -> Result<()> {
    nix::unistd::fchown(
        file,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
    )
    .map_err(|e| sys("chown", path, e))?;
    fchmod(file, Mode::from_bits_truncate(meta.mode)).map_err(|e| sys("chmod", path, e))?;
    for (name, value) in &meta.xattrs {
        set_xattr(file, name, value, path)?;
    }
    let t = TimeSpec::new(meta.mtime, 0);
    futimens(file, &t, &t).map_err(|e| sys("set times of", path, e))
}

fn owner_and_time_nofollow(parent: &OwnedFd, name: &OsStr, meta: &Meta, path: &Path) -> Result<()> {
    fchownat(
        parent,
        name,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| sys("chown", path, e))?;
    let t = TimeSpec::new(meta.mtime, 0);
    utimensat(parent, name, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| sys("set times of", path, e))
}

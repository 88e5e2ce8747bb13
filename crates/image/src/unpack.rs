//! Unpack one layer (a tar, plain, gzip or zstd) into an empty directory that becomes an
//! overlayfs lower layer: whiteouts (`.wh.name`) become 0:0 character devices and opaque
//! markers (`.wh..wh..opq`) the `trusted.overlay.opaque` xattr, as overlayfs reads them.
//!
//! Layers are hostile input. Every entry is created relative to a descriptor of its parent
//! directory, reached one component at a time with O_NOFOLLOW, so no entry can be written
//! through a symlink; `..` components are refused; absolute paths are taken from the
//! layer's root; a hardlink may only point at an entry of the same layer. Ownership, modes
//! (set after chown, which clears set-id bits), mtimes, device nodes and xattrs are kept.
//!
//! The same code extracts `docker cp` archives into a container ([`extract`]): there the
//! destination is a descriptor of a directory inside the container (which may be running
//! and hostile), `.wh.` names are plain names, and Docker's copy rules apply (optionally no
//! directory replaced by a non-directory or the reverse; optionally one owner for all).
//! Nothing follows a symlink there either, so a container that swaps a directory for a
//! link while the copy runs only makes the copy fail, inside the container.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, futimens, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::graft::Grafts;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// File contents are copied through a buffer this large (one write for most files).
const COPY_BUFFER: usize = 256 * 1024;

/// What unpacking a layer found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The digest of the uncompressed tar (the layer's DiffID).
    pub diff_id: Digest,
    /// Bytes of regular file content.
    pub size: u64,
}

/// How a `docker cp` archive is extracted into a container ([`extract`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// An existing directory may not be replaced by a non-directory, nor the reverse
    /// (moby's `noOverwriteDirNonDir`, which the docker CLI always asks for).
    pub no_overwrite_dir_non_dir: bool,
    /// Every entry gets this owner instead of the archive's (`docker cp -a`: the
    /// container's user).
    pub owner: Option<(u32, u32)>,
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

/// Longest entry path and name a layer may have (the kernel's PATH_MAX and NAME_MAX).
const MAX_PATH: usize = 4096;
const MAX_NAME: usize = 255;

/// An entry's path as messages show it: cut short, since a hostile one can be huge.
fn shown(path: &Path) -> String {
    const SHOWN: usize = 96;
    let text = path.to_string_lossy();
    if text.len() <= SHOWN {
        return text.into_owned();
    }
    let mut cut = SHOWN;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} bytes)", &text[..cut], text.len())
}

fn unsafe_entry(path: &Path, why: &'static str) -> Error {
    Error::UnsafeEntry {
        path: shown(path),
        why,
    }
}

fn invalid_entry(path: &Path, why: String) -> Error {
    Error::InvalidEntry {
        path: shown(path),
        why,
    }
}

/// A failed system call `op` on entry `path`: the entry's fault (an error that names it)
/// unless the errno says the host failed (space, I/O, permissions of the store, limits).
fn sys(op: &'static str, path: &Path, e: Errno) -> Error {
    match e {
        Errno::ENOSPC
        | Errno::EDQUOT
        | Errno::EIO
        | Errno::EROFS
        | Errno::ENOMEM
        | Errno::EMFILE
        | Errno::ENFILE
        | Errno::EACCES
        | Errno::EPERM => Error::io(op, path, std::io::Error::from(e)),
        _ => invalid_entry(path, format!("{op}: {}", e.desc())),
    }
}

/// The components of an entry path, relative to the layer root; `..` is refused, and so
/// are paths and names longer than the kernel takes.
fn components(path: &Path) -> Result<Vec<OsString>> {
    if path.as_os_str().len() > MAX_PATH {
        return Err(unsafe_entry(path, "a path longer than 4096 bytes"));
    }
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) if n.len() > MAX_NAME => {
                return Err(unsafe_entry(path, "a name longer than 255 bytes"))
            }
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

/// Where entries go: the directory extracted into, the mounts laid over it (a stopped
/// container's binds and volumes), and whether it is a container's tree (`docker cp`) rather
/// than a fresh layer directory.
struct Tree<'a> {
    root: &'a OwnedFd,
    grafts: &'a Grafts,
    copy: bool,
}

impl Tree<'_> {
    /// The mount source to continue from at `comps`, if a mount is there.
    fn graft_at(&self, comps: &[OsString], entry: &Path) -> Result<Option<OwnedFd>> {
        let Some(g) = self.grafts.at(comps) else {
            return Ok(None);
        };
        if g.read_only {
            return Err(unsafe_entry(entry, "below a read-only mount"));
        }
        let st = nix::sys::stat::fstat(&g.source).map_err(|e| sys("stat", entry, e))?;
        if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFDIR.bits() {
            return Err(unsafe_entry(entry, "a parent is a mounted file"));
        }
        g.source
            .try_clone()
            .map(Some)
            .map_err(|e| Error::io("dup", entry, e))
    }
}

/// The directory at `parents` below `start` (which is at `done` below the tree's root),
/// created (0755) where missing. Every component must be a real directory: a symlink on
/// the way is refused. A mount laid over the tree is entered at its path.
fn walk(
    tree: &Tree<'_>,
    start: &OwnedFd,
    done: &[OsString],
    parents: &[OsString],
    entry: &Path,
    create: bool,
) -> Result<OwnedFd> {
    let mut dir = start.try_clone().map_err(|e| Error::io("dup", entry, e))?;
    let mut at: Vec<OsString> = if tree.grafts.is_empty() {
        Vec::new()
    } else {
        done.to_vec()
    };
    for name in parents {
        if !tree.grafts.is_empty() {
            at.push(name.clone());
            if let Some(source) = tree.graft_at(&at, entry)? {
                dir = source;
                continue;
            }
        }
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
        // A live container's tree has the kernel's filesystems mounted (its /proc, /sys):
        // no archive entry goes there. A layer's fresh directory cannot hold a mount, so
        // the fstatfs per directory is spent only on copies.
        if tree.copy && crate::tarball::pseudo_fs(&next).is_some() {
            return Err(unsafe_entry(
                entry,
                "a parent is on a kernel filesystem (proc, sysfs...)",
            ));
        }
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
    /// The directory at `parents` (created where missing).
    fn get(
        &mut self,
        tree: &Tree<'_>,
        parents: &[OsString],
        entry: &Path,
    ) -> Result<BorrowedFd<'_>> {
        let reusable = self.fd.is_some() && self.comps.as_slice() == parents;
        if !reusable {
            let fd = match &self.fd {
                // Going deeper: walk on from the cached directory.
                Some(fd) if parents.starts_with(&self.comps) => walk(
                    tree,
                    fd,
                    &self.comps,
                    &parents[self.comps.len()..],
                    entry,
                    true,
                )?,
                _ => walk(tree, tree.root, &[], parents, entry, true)?,
            };
            self.comps = parents.to_vec();
            self.fd = Some(fd);
        }
        match &self.fd {
            Some(fd) => Ok(fd.as_fd()),
            None => Err(unsafe_entry(entry, "its directory vanished")),
        }
    }

    fn forget(&mut self) {
        self.fd = None;
        self.comps.clear();
    }
}

/// What the files this process creates get unasked: an owner, and the permission bits its
/// umask leaves. Entries that want the same skip their chown or their chmod (syscalls that
/// also dirty the inode a second time).
struct Defaults {
    uid: u32,
    gid: u32,
    /// None when it cannot be read (then every mode is set explicitly).
    umask: Option<u32>,
}

impl Defaults {
    fn of_this_process() -> Defaults {
        // Read, not set and restored: umask(2) is process-wide and other threads create files.
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            });
        Defaults {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            umask,
        }
    }

    /// Nothing taken for granted: every owner and mode is set (a container's existing
    /// directories may carry set-group-id bits or default ACLs).
    fn none() -> Defaults {
        Defaults {
            uid: u32::MAX,
            gid: u32::MAX,
            umask: None,
        }
    }

    /// No directory of the layer has its set-group-id bit while it is unpacked (modes are
    /// set at the end), so new entries get the process's own ids.
    fn owns(&self, meta: &Meta) -> bool {
        meta.uid == self.uid && meta.gid == self.gid
    }

    /// The mode a regular file is created with, and whether that is exactly `mode`.
    fn create_mode(&self, mode: u32) -> (u32, bool) {
        match self.umask {
            Some(umask) if mode & 0o7000 == 0 && mode & umask == 0 => (mode, true),
            _ => (0o600, false),
        }
    }
}

/// Remove whatever is at `name` (a directory only if asked to replace it by a non-directory).
/// Whether something was removed (the caller then forgets its cached directory).
fn clear(dir: BorrowedFd<'_>, name: &OsStr, entry: &Path) -> Result<bool> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(Errno::EISDIR) => match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(sys("replace", entry, e)),
        },
        Err(e) => Err(sys("replace", entry, e)),
    }
}

fn create_file(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )
}

/// A directory of the layer by its path, in one syscall: no component may be a symlink, as
/// [`walk`] would check one component at a time (which is the fallback before Linux 5.6).
fn open_dir_beneath(tree: &Tree<'_>, comps: &[OsString], path: &Path) -> Result<OwnedFd> {
    // Below a mount laid over the tree: from its source.
    let (root, comps, path) = match tree.grafts.deepest_on(comps) {
        Some((g, n)) if n == comps.len() => return reopen_readable(&g.source, path),
        Some((g, n)) => {
            let rest: std::path::PathBuf = comps[n..].iter().collect();
            return open_dir_beneath_of(tree, &g.source, &comps[n..], &rest);
        }
        None => (tree.root, comps, path),
    };
    open_dir_beneath_of(tree, root, comps, path)
}

fn open_dir_beneath_of(
    tree: &Tree<'_>,
    root: &OwnedFd,
    comps: &[OsString],
    path: &Path,
) -> Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    match openat2(root, path, how) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOTDIR | Errno::ELOOP) => Err(unsafe_entry(
            path,
            "a parent is not a directory (a symlink?)",
        )),
        Err(Errno::ENOSYS) => {
            let plain = Tree {
                root,
                grafts: &NO_GRAFTS,
                copy: tree.copy,
            };
            reopen_readable(&walk(&plain, root, &[], comps, path, false)?, path)
        }
        Err(e) => Err(sys("open", path, e)),
    }
}

/// A readable descriptor of the directory `dir` (an O_PATH one cannot take xattrs, modes
/// or times).
fn reopen_readable(dir: &impl AsFd, path: &Path) -> Result<OwnedFd> {
    openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| sys("open", path, e))
}

/// Copy an entry's content into `file` through `buf`; the bytes copied. The buffer is
/// filled before each write: a request body arrives in chunks of a few KiB, and writing
/// each as it comes costs a syscall per chunk (a 100 KB file in one write instead of ~10).
fn copy_content(
    entry: &mut impl Read,
    file: &mut std::fs::File,
    buf: &mut [u8],
) -> std::io::Result<u64> {
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match entry.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        file.write_all(&buf[..filled])?;
        total += filled as u64;
        if filled < buf.len() {
            return Ok(total);
        }
    }
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

/// An owner id of the layer. 4294967295 is (uid_t)-1, which chown reads as "leave it", so
/// the entry would silently keep the unpacker's owner (root): refused like larger ids.
fn id_of(id: u64) -> Option<u32> {
    u32::try_from(id).ok().filter(|id| *id != u32::MAX)
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
        uid: id_of(uid).ok_or_else(|| unsafe_entry(path, "uid out of range"))?,
        gid: id_of(gid).ok_or_else(|| unsafe_entry(path, "gid out of range"))?,
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
    let size = unpack_entries(&mut hashing, &root, None, &NO_GRAFTS)?;
    // The tar's end-of-archive padding belongs to the DiffID too.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| Error::io("read", "layer", e))?;
    Ok(Unpacked {
        diff_id: Digest::from_hasher(hashing.hasher),
        size,
    })
}

/// Extract a `docker cp` archive (plain or compressed) into the directory `root`, a
/// descriptor of a directory inside a container; the bytes of file content written.
pub fn extract(archive: impl Read, root: &OwnedFd, opts: &CopyOptions) -> Result<u64> {
    extract_grafted(archive, root, opts, &NO_GRAFTS)
}

/// [`extract`], with the mounts of a stopped container below `root` entered at their paths
/// (entries below them go into their sources, as into a running container's mounts).
pub fn extract_grafted(
    archive: impl Read,
    root: &OwnedFd,
    opts: &CopyOptions,
    grafts: &Grafts,
) -> Result<u64> {
    // No digest: nothing records a copy's archive.
    unpack_entries(&mut decompressed(archive)?, root, Some(opts), grafts)
}

static NO_GRAFTS: Grafts = Grafts::empty();

/// Place every entry of the tar `input` below `root`; the bytes of file content.
fn unpack_entries(
    input: &mut impl Read,
    root: &OwnedFd,
    copy: Option<&CopyOptions>,
    grafts: &Grafts,
) -> Result<u64> {
    let tree = Tree {
        root,
        grafts,
        copy: copy.is_some(),
    };
    let defaults = match copy {
        None => Defaults::of_this_process(),
        Some(_) => Defaults::none(),
    };
    let mut size = 0u64;
    let mut dirs = DirEntries::default();
    let mut cache = ParentCache {
        comps: Vec::new(),
        fd: None,
    };
    let mut buf = vec![0u8; COPY_BUFFER];
    {
        let mut archive = tar::Archive::new(input);
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
            if let Some(g) = grafts.at(&comps) {
                // The mount point itself: a directory entry sets its source's metadata (as
                // through a mount); nothing may replace it.
                if g.read_only {
                    return Err(unsafe_entry(&path, "a read-only mount point"));
                }
                if entry.header().entry_type() != tar::EntryType::Directory {
                    return Err(unsafe_entry(&path, "replaces a mount point"));
                }
            }
            let parent = cache.get(&tree, parents, &path)?;
            let at = Placing {
                tree: &tree,
                parent,
                name,
                path: &path,
                defaults: &defaults,
                copy,
            };
            let (placed, replaced) = place(&mut entry, at, &mut buf)?;
            match placed {
                Placed::Directory(meta) => dirs.note(&comps, meta),
                Placed::File(bytes) => size += bytes,
                Placed::Other => {}
            }
            if replaced {
                cache.forget();
            }
        }
    }
    // Directories deepest first, so setting a parent's mtime is not undone by its children.
    let mut dirs = dirs.list;
    dirs.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
    for (comps, meta) in dirs {
        let path: std::path::PathBuf = comps.iter().collect();
        let fd = open_dir_beneath(&tree, &comps, &path)?;
        finish_fd(&std::fs::File::from(fd), &meta, &path, &defaults, false)?;
    }
    Ok(size)
}

/// The metadata of the layer's directories, set once everything is unpacked, one record per
/// directory. A directory listed again takes the last entry's owner, mode and time, and keeps
/// the xattrs of all: applying each entry in turn would leave an earlier entry's owner when
/// the last one asks for the unpacker's own, whose chown is skipped.
#[derive(Default)]
struct DirEntries {
    list: Vec<(Vec<OsString>, Meta)>,
    index: std::collections::HashMap<Vec<OsString>, usize>,
}

impl DirEntries {
    fn note(&mut self, comps: &[OsString], mut meta: Meta) {
        match self.index.get(comps) {
            Some(&i) => {
                let earlier = std::mem::take(&mut self.list[i].1.xattrs);
                meta.xattrs.splice(0..0, earlier);
                self.list[i].1 = meta;
            }
            None => {
                self.index.insert(comps.to_vec(), self.list.len());
                self.list.push((comps.to_vec(), meta));
            }
        }
    }
}

/// Where one entry goes.
struct Placing<'a> {
    tree: &'a Tree<'a>,
    /// Its directory.
    parent: BorrowedFd<'a>,
    name: &'a OsStr,
    path: &'a Path,
    defaults: &'a Defaults,
    /// A `docker cp` into a container, not a layer.
    copy: Option<&'a CopyOptions>,
}

/// What placing an entry made.
enum Placed {
    /// A directory, whose metadata is set once everything is unpacked.
    Directory(Meta),
    /// A regular file of this many bytes.
    File(u64),
    Other,
}

/// Create one entry of the layer in its directory. Also says whether something that was
/// there was removed first (the caller then forgets its cached directory).
fn place<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    at: Placing<'_>,
    buf: &mut [u8],
) -> Result<(Placed, bool)> {
    let Placing {
        tree,
        parent,
        name,
        path,
        defaults,
        copy,
    } = at;
    let name_str = name.to_string_lossy();
    if copy.is_none() && name_str == OPAQUE_MARKER {
        let dir = reopen_readable(&parent, path)?;
        set_xattr(&dir, "trusted.overlay.opaque", b"y", path)?;
        return Ok((Placed::Other, false));
    }
    if let Some(hidden) = name_str
        .strip_prefix(WHITEOUT_PREFIX)
        .filter(|_| copy.is_none())
    {
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(unsafe_entry(path, "a whiteout of no name, . or .."));
        }
        let removed = clear(parent, OsStr::new(hidden), path)?;
        mknodat(parent, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(|e| sys("create whiteout", path, e))?;
        return Ok((Placed::Other, removed));
    }
    let mut meta = meta_of(entry, path)?;
    if let Some((uid, gid)) = copy.and_then(|c| c.owner) {
        meta.uid = uid;
        meta.gid = gid;
    }
    let kind = entry.header().entry_type();
    let no_overwrite = copy.is_some_and(|c| c.no_overwrite_dir_non_dir);
    if no_overwrite {
        refuse_type_change(parent, name, path, kind == tar::EntryType::Directory)?;
    }
    let mut removed = false;
    let placed = match kind {
        tar::EntryType::Directory => {
            match open_dir_nofollow(parent, name) {
                Ok(_) => {}
                Err(Errno::ENOENT) => mkdirat(parent, name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| sys("mkdir", path, e))?,
                Err(_) => {
                    removed = clear(parent, name, path)?;
                    mkdirat(parent, name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| sys("mkdir", path, e))?;
                }
            }
            // Modes and times of directories are set last: later entries change them.
            Placed::Directory(meta)
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let (mode, exact) = defaults.create_mode(meta.mode);
            // Mostly the name is new: try that first, replace only when it is not.
            let fd = match create_file(parent, name, mode) {
                Err(Errno::EEXIST) => {
                    removed = clear(parent, name, path)?;
                    create_file(parent, name, mode)
                }
                other => other,
            }
            .map_err(|e| sys("create", path, e))?;
            let mut file = std::fs::File::from(fd);
            let bytes =
                copy_content(entry, &mut file, buf).map_err(|e| Error::io("write", path, e))?;
            finish_fd(&file, &meta, path, defaults, exact)?;
            Placed::File(bytes)
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(|e| Error::archive(format!("bad link target: {e}")))?
                .ok_or_else(|| unsafe_entry(path, "symlink without a target"))?;
            removed = clear(parent, name, path)?;
            symlinkat(target.as_os_str(), parent, name).map_err(|e| sys("symlink", path, e))?;
            owner_and_time_nofollow(parent, name, &meta, path, defaults)?;
            Placed::Other
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(|e| Error::archive(format!("bad link target: {e}")))?
                .ok_or_else(|| unsafe_entry(path, "hardlink without a target"))?;
            let tcomps = components(&target)?;
            let Some((tname, tparents)) = tcomps.split_last() else {
                return Err(unsafe_entry(path, "hardlink to the layer root"));
            };
            let missing = || {
                invalid_entry(
                    path,
                    format!(
                        "a hard link to {:?}, which the layer does not have",
                        shown(&target)
                    ),
                )
            };
            let tdir = walk(tree, tree.root, &[], tparents, path, false).map_err(|e| match e {
                Error::InvalidEntry { .. } => missing(),
                other => other,
            })?;
            removed = clear(parent, name, path)?;
            linkat(&tdir, tname.as_os_str(), parent, name, AtFlags::empty()).map_err(
                |e| match e {
                    Errno::ENOENT => missing(),
                    e => sys("hardlink", path, e),
                },
            )?;
            Placed::Other
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
            removed = clear(parent, name, path)?;
            mknodat(
                parent,
                name,
                sflag,
                Mode::from_bits_truncate(meta.mode),
                nix::sys::stat::makedev(major.into(), minor.into()),
            )
            .map_err(|e| sys("mknod", path, e))?;
            // The node was just made by us, so following its name cannot leave the layer.
            owner_and_time_nofollow(parent, name, &meta, path, defaults)?;
            nix::sys::stat::fchmodat(
                parent,
                name,
                Mode::from_bits_truncate(meta.mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| sys("chmod", path, e))?;
            Placed::Other
        }
        tar::EntryType::XGlobalHeader
        | tar::EntryType::XHeader
        | tar::EntryType::GNULongName
        | tar::EntryType::GNULongLink => Placed::Other,
        other => {
            return Err(Error::archive(format!(
                "entry {} has an unsupported type {other:?}",
                path.display()
            )))
        }
    };
    Ok((placed, removed))
}

/// Docker's `noOverwriteDirNonDir`: an existing directory is not replaced by a
/// non-directory, nor an existing non-directory (a symlink too) by a directory.
fn refuse_type_change(parent: BorrowedFd<'_>, name: &OsStr, path: &Path, dir: bool) -> Result<()> {
    let existing = match nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(sys("stat", path, e)),
    };
    let is_dir = existing.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits();
    match (is_dir, dir) {
        (true, false) => Err(invalid_entry(
            path,
            "cannot overwrite a directory with a non-directory".into(),
        )),
        (false, true) => Err(invalid_entry(
            path,
            "cannot overwrite a non-directory with a directory".into(),
        )),
        _ => Ok(()),
    }
}

/// Owner, then mode (chown clears set-id bits), xattrs and mtime of an open file or dir;
/// the owner only if it is not the creator's already, the mode only unless `mode_exact`.
fn finish_fd(
    file: &std::fs::File,
    meta: &Meta,
    path: &Path,
    defaults: &Defaults,
    mode_exact: bool,
) -> Result<()> {
    if !defaults.owns(meta) {
        nix::unistd::fchown(
            file,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(|e| sys("chown", path, e))?;
    }
    // A chown clears set-id bits, which the mode then puts back.
    if !mode_exact || !defaults.owns(meta) {
        fchmod(file, Mode::from_bits_truncate(meta.mode)).map_err(|e| sys("chmod", path, e))?;
    }
    for (name, value) in &meta.xattrs {
        set_xattr(file, name, value, path)?;
    }
    let t = TimeSpec::new(meta.mtime, 0);
    futimens(file, &t, &t).map_err(|e| sys("set times of", path, e))
}

fn owner_and_time_nofollow(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    meta: &Meta,
    path: &Path,
    defaults: &Defaults,
) -> Result<()> {
    if !defaults.owns(meta) {
        fchownat(
            parent,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| sys("chown", path, e))?;
    }
    let t = TimeSpec::new(meta.mtime, 0);
    utimensat(parent, name, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| sys("set times of", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out a few bytes at a time, as a request body's chunks come.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = out.len().min(self.0.len()).min(4093);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Content gathered from small reads into whole buffers arrives intact, past several
    /// buffers and with a partial last one.
    #[test]
    fn content_from_small_reads_is_written_whole() {
        let dir = tempfile::tempdir().expect("tmp");
        let data: Vec<u8> = (0..(COPY_BUFFER * 2 + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        let path = dir.path().join("f");
        let mut file = std::fs::File::create(&path).expect("create");
        let mut buf = vec![0u8; COPY_BUFFER];
        let n = copy_content(&mut Trickle(&data), &mut file, &mut buf).expect("copy");
        assert_eq!(n, data.len() as u64);
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }
}

//! Tar streams of directory trees, read through descriptors: `docker cp` out of a container,
//! `docker export` of its root filesystem, and the layer `docker commit` makes of its upper
//! directory.
//!
//! The trees may belong to a running, hostile container, which can rename, swap and replace
//! entries while they are read. Every entry is reached from a descriptor of its directory
//! with O_NOFOLLOW (a directory swapped for a symlink is a symlink when it is opened, and
//! is archived as one, never followed), contents are read from a descriptor whose type is
//! checked after the open (a FIFO put in a file's place cannot block the copy: O_NONBLOCK),
//! and the header is made from that descriptor's own `fstat`. A file that shrinks while it
//! is read is padded with zeros, one that grows is cut at the size in its header, so the
//! stream always stays a valid tar.
//!
//! For a layer ([`TreeOptions::whiteouts`]) overlayfs's whiteouts (0:0 character devices)
//! become `.wh.<name>` entries and opaque directories (`trusted.overlay.opaque=y`) get a
//! `.wh..wh..opq` entry, the form image layers carry.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const COPY_BUFFER: usize = 256 * 1024;

/// How a tree becomes a tar stream.
#[derive(Debug, Clone, Default)]
pub struct TreeOptions {
    /// The tree is an overlayfs upper directory that becomes an image layer: whiteouts and
    /// opaque directories are written in the layer's `.wh.` form.
    pub whiteouts: bool,
    /// Entries (archive paths) left out when they are an empty directory or an empty
    /// file: the mount points a runtime created in a container's tree.
    pub skip_empty: Vec<PathBuf>,
    /// A directory on a kernel pseudo filesystem (a live container's /proc, /sys...) is
    /// written empty: its content is the kernel's, not the container's files.
    pub pseudo_fs_empty: bool,
}

/// Writes entries of trees into one tar stream.
pub struct TreeWriter<W: Write> {
    builder: tar::Builder<W>,
    opts: TreeOptions,
    /// Files with several links already written, by (device, inode): later names become
    /// hard links to the first, as tar and Docker write them.
    links: HashMap<(u64, u64), PathBuf>,
    buf: Vec<u8>,
    /// Mounts of a stopped container below the archived path, walked from their sources.
    grafts: crate::graft::Grafts,
    /// Regular files written and their bytes.
    pub files: u64,
    pub bytes: u64,
}

/// The name of the kernel pseudo filesystem `fd` is on (procfs, sysfs, cgroupfs...), if it
/// is on one: a live container's tree has them mounted, and they are no files of its own.
pub fn pseudo_fs(fd: impl AsFd) -> Option<&'static str> {
    const KINDS: [(i64, &str); 17] = [
        (0x9fa0, "proc"),
        (0x6265_6572, "sysfs"),
        (0x0027_e0eb, "cgroup"),
        (0x6367_7270, "cgroup2"),
        (0x1cd1, "devpts"),
        (0x1980_0202, "mqueue"),
        (0x7363_6673, "securityfs"),
        (0x6462_6720, "debugfs"),
        (0x7472_6163, "tracefs"),
        (0xcafe_4a11, "bpf"),
        (0x6265_6570, "configfs"),
        (0x6165_676c, "pstore"),
        (0x6573_5543, "fusectl"),
        (0x4249_4e4d, "binfmt_misc"),
        (0xf97c_ff8c, "selinuxfs"),
        (0xde5e_81e4, "efivarfs"),
        (0x6e73_6673, "nsfs"),
    ];
    let magic = nix::sys::statfs::fstatfs(fd).ok()?.filesystem_type().0 as i64;
    KINDS.iter().find(|(m, _)| *m == magic).map(|(_, n)| *n)
}

fn io_err(op: &'static str, path: &Path, e: Errno) -> Error {
    Error::io(op, path, std::io::Error::from(e))
}

impl<W: Write> TreeWriter<W> {
    pub fn new(out: W, opts: TreeOptions) -> TreeWriter<W> {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Complete);
        TreeWriter {
            builder,
            opts,
            links: HashMap::new(),
            buf: vec![0u8; COPY_BUFFER],
            grafts: crate::graft::Grafts::default(),
            files: 0,
            bytes: 0,
        }
    }

    /// Archive the content of these mount sources at their paths (archive paths) instead
    /// of what the walked tree has there.
    pub fn with_grafts(mut self, grafts: crate::graft::Grafts) -> TreeWriter<W> {
        self.grafts = grafts;
        self
    }

    /// The entry `name` of directory `parent`, archived as `tar_path`, and everything below
    /// it when it is a directory. Symlinks are archived as links, never followed.
    pub fn append(&mut self, parent: BorrowedFd<'_>, name: &OsStr, tar_path: &Path) -> Result<()> {
        if let Some(graft) = self.grafts.at_path(tar_path) {
            let source = graft
                .source
                .try_clone()
                .map_err(|e| Error::io("dup", tar_path, e))?;
            return self.append_fd(&source, tar_path);
        }
        let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed since its directory was listed: a live tree changes.
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(io_err("stat", tar_path, e)),
        };
        if self.skips(parent, name, tar_path, &st) {
            return Ok(());
        }
        match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => self.directory(parent, name, tar_path),
            SFlag::S_IFREG => self.regular(parent, name, tar_path),
            SFlag::S_IFLNK => self.symlink(parent, name, tar_path, &st),
            SFlag::S_IFCHR if self.opts.whiteouts && st.st_rdev == 0 => {
                self.whiteout(tar_path, &st)
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => self.special(tar_path, &st),
            // Sockets have no tar form (Go's archive/tar refuses them; Docker skips them).
            _ => Ok(()),
        }
    }

    /// The entry `entry` (an O_PATH descriptor, as an in-root resolution gives it) archived
    /// as `tar_path`, and everything below it when it is a directory.
    pub fn append_fd(&mut self, entry: &OwnedFd, tar_path: &Path) -> Result<()> {
        let st = fstat(entry).map_err(|e| io_err("stat", tar_path, e))?;
        match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => {
                let dir = openat(
                    entry,
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err("open", tar_path, e))?;
                self.open_directory(dir, tar_path)
            }
            SFlag::S_IFREG => {
                // An O_PATH descriptor cannot be read: it is reopened through procfs's link
                // to exactly that file (no path in the container is looked up again).
                let own = format!("/proc/self/fd/{}", entry.as_raw_fd());
                let fd = openat(
                    nix::fcntl::AT_FDCWD,
                    own.as_str(),
                    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err("open", tar_path, e))?;
                self.open_regular(fd, tar_path)
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(entry, "").map_err(|e| io_err("readlink", tar_path, e))?;
                let mut h = Self::header(&st, tar::EntryType::Symlink);
                h.set_mode(0o777);
                self.put(&mut h, tar_path, Some(Path::new(&target)), std::io::empty())
                    .map_err(|e| Error::io("write", tar_path, e))
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => self.special(tar_path, &st),
            _ => Ok(()),
        }
    }

    /// Every entry of the directory `dir` (not the directory itself), named below `prefix`
    /// (empty: at the top of the archive).
    pub fn append_children(&mut self, dir: &OwnedFd, prefix: &Path) -> Result<()> {
        let mut names = list_dir(dir, prefix)?;
        // A mount point the tree does not have (a container never started): the runtime
        // would create it, and the mount's content is there.
        let missing: Vec<OsString> = self
            .grafts
            .children_of(prefix)
            .into_iter()
            .filter(|g| !names.contains(g))
            .collect();
        if !missing.is_empty() {
            names.extend(missing);
            names.sort();
            names.dedup();
        }
        for name in names {
            let path = prefix.join(&name);
            self.append(dir.as_fd(), &name, &path)?;
        }
        Ok(())
    }

    fn skips(&self, parent: BorrowedFd<'_>, name: &OsStr, tar_path: &Path, st: &FileStat) -> bool {
        if !self.opts.skip_empty.iter().any(|p| p == tar_path) {
            return false;
        }
        match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFREG => st.st_size == 0,
            SFlag::S_IFDIR => openat(
                parent,
                name,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()
            .and_then(|fd| list_dir(&fd, tar_path).ok())
            .is_some_and(|names| names.is_empty()),
            _ => false,
        }
    }

    /// Append an entry. Names under `./` (the archive of a directory's contents, `docker cp
    /// CTR:/dir/.`, as moby names them) are written as they are: the tar crate would drop
    /// the `./` that the docker CLI's rebasing looks for.
    fn put(
        &mut self,
        h: &mut tar::Header,
        path: impl AsRef<Path>,
        link: Option<&Path>,
        data: impl Read,
    ) -> std::io::Result<()> {
        let path = path.as_ref();
        let raw = path.as_os_str().as_bytes();
        if !raw.starts_with(b"./") {
            return match link {
                Some(target) => self.builder.append_link(h, path, target),
                None => self.builder.append_data(h, path, data),
            };
        }
        if let Some(target) = link {
            h.set_link_name(target)?;
        }
        let name_field = h.as_old().name.len();
        if raw.len() > name_field {
            // GNU's long name entry, as the tar crate writes it.
            let mut long = tar::Header::new_gnu();
            long.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
            long.set_mode(0o644);
            long.set_mtime(0);
            long.set_size(raw.len() as u64 + 1);
            long.set_entry_type(tar::EntryType::GNULongName);
            long.set_cksum();
            let mut content = raw.to_vec();
            content.push(0);
            self.builder.append(&long, content.as_slice())?;
        }
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        let n = raw.len().min(name_field);
        name[..n].copy_from_slice(&raw[..n]);
        h.set_cksum();
        self.builder.append(h, data)
    }

    /// End the archive; the writer.
    pub fn finish(self) -> Result<W> {
        self.builder
            .into_inner()
            .map_err(|e| Error::io("finish", "tar stream", e))
    }

    fn header(st: &FileStat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    fn directory(&mut self, parent: BorrowedFd<'_>, name: &OsStr, tar_path: &Path) -> Result<()> {
        let dir = match openat(
            parent,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(()),
            // Swapped for something else since the stat: a live tree changes, and what took
            // its place is left out rather than chased (a hostile one could swap forever).
            Err(Errno::ENOTDIR | Errno::ELOOP) => return Ok(()),
            Err(e) => return Err(io_err("open", tar_path, e)),
        };
        self.open_directory(dir, tar_path)
    }

    /// The directory open at `dir` and everything below it.
    fn open_directory(&mut self, dir: OwnedFd, tar_path: &Path) -> Result<()> {
        let st = fstat(&dir).map_err(|e| io_err("stat", tar_path, e))?;
        if !tar_path.as_os_str().is_empty() {
            let mut h = Self::header(&st, tar::EntryType::Directory);
            self.put(&mut h, tar_path, None, std::io::empty())
                .map_err(|e| Error::io("write", tar_path, e))?;
        }
        if self.opts.whiteouts && xattr(&dir, "trusted.overlay.opaque").as_deref() == Some(b"y") {
            let mut h = Self::header(&st, tar::EntryType::Regular);
            h.set_mode(0o600);
            self.put(&mut h, tar_path.join(OPAQUE_MARKER), None, std::io::empty())
                .map_err(|e| Error::io("write", tar_path, e))?;
        }
        if self.opts.pseudo_fs_empty && pseudo_fs(&dir).is_some() {
            return Ok(());
        }
        self.append_children(&dir, tar_path)
    }

    fn regular(&mut self, parent: BorrowedFd<'_>, name: &OsStr, tar_path: &Path) -> Result<()> {
        let fd = match openat(
            parent,
            name,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::ELOOP) => return Ok(()),
            Err(e) => return Err(io_err("open", tar_path, e)),
        };
        self.open_regular(fd, tar_path)
    }

    /// The regular file open (for reading) at `fd`.
    fn open_regular(&mut self, fd: OwnedFd, tar_path: &Path) -> Result<()> {
        let st = fstat(&fd).map_err(|e| io_err("stat", tar_path, e))?;
        if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
            // Replaced by a directory, device or FIFO after the stat: left out.
            return Ok(());
        }
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                let mut h = Self::header(&st, tar::EntryType::Link);
                let first = first.clone();
                return self
                    .put(&mut h, tar_path, Some(&first), std::io::empty())
                    .map_err(|e| Error::io("write", tar_path, e));
            }
            self.links.insert(key, tar_path.to_path_buf());
        }
        if let Some(cap) = xattr(&fd, "security.capability") {
            let key = "SCHILY.xattr.security.capability";
            self.builder
                .append_pax_extensions([(key, cap.as_slice())])
                .map_err(|e| Error::io("write", tar_path, e))?;
        }
        let size = u64::try_from(st.st_size).unwrap_or(0);
        let mut h = Self::header(&st, tar::EntryType::Regular);
        h.set_size(size);
        let mut content = Exactly {
            inner: std::fs::File::from(fd),
            left: size,
        };
        // Through our own buffer: the tar crate's copy uses 8 KiB reads.
        let buf = std::mem::take(&mut self.buf);
        let reader = Buffered {
            inner: &mut content,
            buf,
            pos: 0,
            len: 0,
        };
        let mut reader = reader;
        let result = self.put(&mut h, tar_path, None, &mut reader);
        self.buf = reader.buf;
        result.map_err(|e| Error::io("write", tar_path, e))?;
        self.files += 1;
        self.bytes += size;
        Ok(())
    }

    fn symlink(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        tar_path: &Path,
        st: &FileStat,
    ) -> Result<()> {
        let target = match readlinkat(parent, name) {
            Ok(t) => t,
            Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EINVAL) => return Ok(()),
            Err(e) => return Err(io_err("readlink", tar_path, e)),
        };
        let mut h = Self::header(st, tar::EntryType::Symlink);
        h.set_mode(0o777);
        self.put(&mut h, tar_path, Some(Path::new(&target)), std::io::empty())
            .map_err(|e| Error::io("write", tar_path, e))
    }

    fn whiteout(&mut self, tar_path: &Path, st: &FileStat) -> Result<()> {
        let Some(name) = tar_path.file_name() else {
            return Ok(());
        };
        let mut marked = OsString::from(WHITEOUT_PREFIX);
        marked.push(name);
        let path = tar_path.with_file_name(marked);
        let mut h = Self::header(st, tar::EntryType::Regular);
        h.set_mode(0o600);
        self.put(&mut h, &path, None, std::io::empty())
            .map_err(|e| Error::io("write", tar_path, e))
    }

    fn special(&mut self, tar_path: &Path, st: &FileStat) -> Result<()> {
        let kind = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFCHR => tar::EntryType::Char,
            SFlag::S_IFBLK => tar::EntryType::Block,
            _ => tar::EntryType::Fifo,
        };
        let mut h = Self::header(st, kind);
        if kind != tar::EntryType::Fifo {
            let major = nix::sys::stat::major(st.st_rdev);
            let minor = nix::sys::stat::minor(st.st_rdev);
            let set = h
                .set_device_major(u32::try_from(major).unwrap_or(0))
                .and_then(|()| h.set_device_minor(u32::try_from(minor).unwrap_or(0)));
            set.map_err(|e| Error::io("write", tar_path, e))?;
        }
        self.put(&mut h, tar_path, None, std::io::empty())
            .map_err(|e| Error::io("write", tar_path, e))
    }
}

/// The names in directory `dir`, sorted (the same tree gives the same stream, so the same
/// commit gives the same layer digest).
pub fn list_dir(dir: &OwnedFd, path: &Path) -> Result<Vec<OsString>> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open", path, e))?;
    let mut d = nix::dir::Dir::from_fd(fd).map_err(|e| io_err("read", path, e))?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(|e| io_err("read", path, e))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// An extended attribute of an open file (None when it has none, or it cannot be read).
pub fn xattr(fd: &impl AsRawFd, name: &str) -> Option<Vec<u8>> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut value = vec![0u8; 256];
    loop {
        // SAFETY: name is NUL-terminated; value is valid for value.len() bytes.
        let n = unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if n >= 0 {
            value.truncate(usize::try_from(n).ok()?);
            return Some(value);
        }
        if Errno::last() != Errno::ERANGE || value.len() >= 64 * 1024 {
            return None;
        }
        value.resize(value.len() * 4, 0);
    }
}

/// Exactly `left` bytes of `inner`: zeros past its end, nothing past `left`.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(0) => {
                buf[..want].fill(0);
                want
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// A reader that fills a large buffer at a time (one read syscall per 256 KiB).
struct Buffered<'a, R> {
    inner: &'a mut R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl<R: Read> Read for Buffered<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.len {
            if out.len() >= self.buf.len() {
                return self.inner.read(out);
            }
            self.len = self.inner.read(&mut self.buf)?;
            self.pos = 0;
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn pseudo_filesystems_by_magic() {
        let proc = open_dir(Path::new("/proc"));
        assert_eq!(pseudo_fs(&proc), Some("proc"));
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(pseudo_fs(open_dir(dir.path())), None);
    }

    use super::*;

    fn open_dir(path: &Path) -> OwnedFd {
        openat(
            nix::fcntl::AT_FDCWD,
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open dir")
    }

    fn entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, String)> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("entry");
                let path = e.path().expect("path").display().to_string();
                let kind = e.header().entry_type();
                let link = e
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default();
                let mut content = String::new();
                let _ = e.read_to_string(&mut content);
                (path, kind, if link.is_empty() { content } else { link })
            })
            .collect()
    }

    /// A tree with a file, a hard link, a symlink out of the tree and a subdirectory comes
    /// out as tar entries of the same kinds; the symlink is not followed.
    #[test]
    fn tree_to_tar_keeps_kinds_and_never_follows_links() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("d");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/a"), b"hello").expect("write");
        std::fs::hard_link(root.join("sub/a"), root.join("b")).expect("link");
        std::os::unix::fs::symlink("/etc", root.join("out")).expect("symlink");
        let parent = open_dir(dir.path());
        let mut w = TreeWriter::new(Vec::new(), TreeOptions::default());
        w.append(parent.as_fd(), OsStr::new("d"), Path::new("d"))
            .expect("append");
        let bytes = w.finish().expect("finish");
        let got = entries(&bytes);
        let find = |p: &str| got.iter().find(|e| e.0 == p).cloned();
        assert_eq!(find("d").map(|e| e.1), Some(tar::EntryType::Directory));
        assert_eq!(
            find("d/b"),
            Some(("d/b".into(), tar::EntryType::Regular, "hello".into()))
        );
        assert_eq!(
            find("d/sub/a"),
            Some(("d/sub/a".into(), tar::EntryType::Link, "d/b".into()))
        );
        assert_eq!(
            find("d/out"),
            Some(("d/out".into(), tar::EntryType::Symlink, "/etc".into()))
        );
        assert!(!got.iter().any(|e| e.0.starts_with("d/out/")));
    }

    /// An upper directory's whiteout (a 0:0 character device) and opaque directory become
    /// the layer's `.wh.` entries.
    #[test]
    fn upper_dir_whiteouts_become_wh_entries() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        nix::sys::stat::mknod(
            &root.join("gone"),
            SFlag::S_IFCHR,
            Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .expect("mknod (tests run as root)");
        std::fs::create_dir(root.join("opaque")).expect("mkdir");
        let opaque = open_dir(&root.join("opaque"));
        let ro = openat(&opaque, ".", OFlag::O_RDONLY, Mode::empty()).expect("open");
        let name = std::ffi::CString::new("trusted.overlay.opaque").expect("name");
        // SAFETY: valid name and a one-byte value.
        let rc =
            unsafe { libc::fsetxattr(ro.as_raw_fd(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
        assert_eq!(rc, 0, "set xattr");
        let mut w = TreeWriter::new(
            Vec::new(),
            TreeOptions {
                whiteouts: true,
                skip_empty: Vec::new(),
                pseudo_fs_empty: false,
            },
        );
        w.append_children(&open_dir(root), Path::new(""))
            .expect("append");
        let got = entries(&w.finish().expect("finish"));
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, vec![".wh.gone", "opaque", "opaque/.wh..wh..opq"]);
    }
}

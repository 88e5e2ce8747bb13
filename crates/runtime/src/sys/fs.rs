//! Path resolution that can never leave a root directory.
//!
//! Every path taken from a bundle (mount destinations, device paths, cwd, masked paths) is
//! resolved with `openat2(RESOLVE_IN_ROOT)`: `..` and absolute symlinks are clamped to the
//! root, and magic links (`/proc/self/fd/N`) are refused. This is what keeps a hostile image
//! from sending a mount outside its rootfs or a cwd into a host directory (CVE-2024-21626).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

/// What to create at the end of a path that does not exist yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// The components of `path` below the root, without `.` and leading `/`.
fn relative_components(path: &Path) -> Vec<&OsStr> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            Component::ParentDir => Some(OsStr::new("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn join(components: &[&OsStr]) -> PathBuf {
    if components.is_empty() {
        PathBuf::from(".")
    } else {
        components.iter().collect()
    }
}

/// Open `path` inside `root` (as if `root` were `/`), refusing magic links.
///
/// The kernel answers EAGAIN when it resolved `..` while a mount or rename happened
/// anywhere on the system (it cannot then vouch that the walk stayed inside the root); the
/// documented answer is to try again.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    const ATTEMPTS: usize = 128;
    let rel = join(&relative_components(path));
    let how = || {
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let mut result = openat2(root, rel.as_path(), how());
    for _ in 1..ATTEMPTS {
        if !matches!(result, Err(Errno::EAGAIN)) {
            break;
        }
        result = openat2(root, rel.as_path(), how());
    }
    result
}

/// What a path inside a root is, found without following any symlink.
#[derive(Debug)]
pub enum Entry {
    Missing,
    /// An `O_PATH` handle on it.
    Dir(OwnedFd),
    /// A file, device, socket...
    Other,
    /// The path itself, or a directory on the way to it, is a symlink.
    Symlink,
}

/// What is at `path` inside `root`, without following a symlink anywhere on the way
/// (`openat2(RESOLVE_NO_SYMLINKS)`, the trailing one opened with O_NOFOLLOW).
pub fn entry_without_symlinks(root: BorrowedFd<'_>, path: &Path) -> nix::Result<Entry> {
    const ATTEMPTS: usize = 128;
    let rel = join(&relative_components(path));
    let how = || {
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS)
    };
    let mut result = openat2(root, rel.as_path(), how());
    for _ in 1..ATTEMPTS {
        if !matches!(result, Err(Errno::EAGAIN)) {
            break;
        }
        result = openat2(root, rel.as_path(), how());
    }
    let fd = match result {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => return Ok(Entry::Symlink),
        Err(Errno::ENOENT) => return Ok(Entry::Missing),
        Err(Errno::ENOTDIR) => return Ok(Entry::Other),
        Err(e) => return Err(e),
    };
    let st = nix::sys::stat::fstat(&fd)?;
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFLNK => Entry::Symlink,
        libc::S_IFDIR => Entry::Dir(fd),
        _ => Entry::Other,
    })
}

/// Open `path` inside `root` as an `O_PATH` handle, creating missing directories (mode 0755)
/// and, if `leaf` is `File`, an empty final file. Symlinks met on the way are followed
/// inside the root only; a dangling one has its target created inside the root, as runc's
/// securejoin does.
pub fn create_in_root(root: BorrowedFd<'_>, path: &Path, leaf: Leaf) -> nix::Result<OwnedFd> {
    const MAX_LINKS: usize = 40;
    // Most mount points and device directories exist: one resolution of the whole path is
    // what the walk below would end with, without opening every prefix first.
    match open_in_root(root, path, OFlag::O_PATH) {
        Err(Errno::ENOENT) => {}
        existing => return existing,
    }
    let mut todo: VecDeque<OsString> = relative_components(path)
        .into_iter()
        .map(OsStr::to_os_string)
        .collect();
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        let mut candidate: Vec<&OsStr> = done.iter().map(OsString::as_os_str).collect();
        candidate.push(&name);
        match open_in_root(root, &join(&candidate), OFlag::O_PATH) {
            Ok(_) => done.push(name),
            Err(Errno::ENOENT) => {
                let parent_parts: Vec<&OsStr> = done.iter().map(OsString::as_os_str).collect();
                let parent = open_in_root(
                    root,
                    &join(&parent_parts),
                    OFlag::O_PATH | OFlag::O_DIRECTORY,
                )?;
                // Never create in, or follow links of, procfs: its links are magic links
                // (and /proc/self/fd/N may even name the handle we just opened).
                if is_procfs(parent.as_fd())? {
                    return Err(Errno::ENOENT);
                }
                if let Ok(target) = nix::fcntl::readlinkat(parent.as_fd(), name.as_os_str()) {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = PathBuf::from(target);
                    if target.is_absolute() {
                        done.clear();
                    }
                    for c in relative_components(&target).into_iter().rev() {
                        todo.push_front(c.to_os_string());
                    }
                    continue;
                }
                create_entry(
                    parent.as_fd(),
                    &name,
                    if todo.is_empty() { leaf } else { Leaf::Dir },
                )?;
                done.push(name);
            }
            Err(e) => return Err(e),
        }
    }
    let parts: Vec<&OsStr> = done.iter().map(OsString::as_os_str).collect();
    open_in_root(root, &join(&parts), OFlag::O_PATH)
}

fn create_entry(parent: BorrowedFd<'_>, name: &OsStr, leaf: Leaf) -> nix::Result<()> {
    let result = match leaf {
        Leaf::Dir => mkdirat(parent, name, Mode::from_bits_truncate(0o755)),
        Leaf::File => nix::fcntl::openat(
            parent,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop),
    };
    match result {
        // Lost a race with someone creating the same entry, or a dangling symlink; the
        // caller's next resolution decides.
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `path` is on a procfs (a bind source that may go on /proc).
pub fn is_procfs_path(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Whether `path` is on a sysfs.
pub fn is_sysfs_path(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::SYSFS_MAGIC)
}

fn is_procfs(fd: BorrowedFd<'_>) -> nix::Result<bool> {
    let fs = nix::sys::statfs::fstatfs(fd)?;
    Ok(fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// The `/proc/self/fd/N` path of a descriptor: how mount(2) and friends reach a resolved
/// handle without re-walking a path that could have been swapped underneath.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Whether the handle refers to a directory.
pub fn is_dir(fd: BorrowedFd<'_>) -> nix::Result<bool> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Bytes of a path, for syscalls that want C strings.
pub fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, OwnedFd) {
        let dir = tempfile::tempdir().expect("tempdir");
        let fd = nix::fcntl::open(
            dir.path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .expect("open root");
        (dir, fd)
    }

    fn real_path(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd.as_fd())).expect("readlink")
    }

    #[test]
    fn creates_missing_directories_and_files() {
        let (dir, fd) = root();
        let leaf = create_in_root(fd.as_fd(), Path::new("/a/b/c"), Leaf::File).expect("create");
        assert_eq!(real_path(&leaf), dir.path().join("a/b/c"));
        assert!(dir.path().join("a/b/c").is_file());
    }

    #[test]
    fn absolute_symlink_stays_inside_root() {
        let (dir, fd) = root();
        symlink("/etc", dir.path().join("escape")).expect("symlink");
        let leaf =
            create_in_root(fd.as_fd(), Path::new("escape/target"), Leaf::Dir).expect("create");
        assert_eq!(real_path(&leaf), dir.path().join("etc/target"));
        assert!(!Path::new("/etc/target").exists());
    }

    #[test]
    fn dotdot_is_clamped_to_root() {
        let (dir, fd) = root();
        let leaf = create_in_root(fd.as_fd(), Path::new("../../../x"), Leaf::Dir).expect("create");
        assert_eq!(real_path(&leaf), dir.path().join("x"));
    }

    #[test]
    fn relative_symlink_escape_is_clamped() {
        let (dir, fd) = root();
        symlink("../../../../tmp", dir.path().join("up")).expect("symlink");
        let leaf = create_in_root(fd.as_fd(), Path::new("up/y"), Leaf::Dir).expect("create");
        assert_eq!(real_path(&leaf), dir.path().join("tmp/y"));
    }

    #[test]
    fn dangling_absolute_symlink_is_created_inside_root() {
        let (dir, fd) = root();
        symlink("/host/only/path", dir.path().join("dangling")).expect("symlink");
        let leaf = create_in_root(fd.as_fd(), Path::new("dangling/x"), Leaf::File).expect("create");
        assert_eq!(real_path(&leaf), dir.path().join("host/only/path/x"));
        assert!(!Path::new("/host/only/path").exists());
    }

    #[test]
    fn entries_are_classified_without_following_symlinks() {
        let (dir, fd) = root();
        std::fs::create_dir_all(dir.path().join("d/sub")).expect("mkdir");
        std::fs::write(dir.path().join("f"), "").expect("file");
        symlink("d", dir.path().join("link")).expect("symlink");
        let entry = |p: &str| entry_without_symlinks(fd.as_fd(), Path::new(p)).expect(p);
        match entry("/d/sub") {
            Entry::Dir(sub) => assert_eq!(real_path(&sub), dir.path().join("d/sub")),
            other => panic!("/d/sub: {other:?}"),
        }
        assert!(matches!(entry("/d"), Entry::Dir(_)));
        assert!(matches!(entry("/f"), Entry::Other));
        assert!(matches!(entry("/f/x"), Entry::Other));
        assert!(matches!(entry("/missing"), Entry::Missing));
        assert!(matches!(entry("/link"), Entry::Symlink));
        assert!(matches!(entry("/link/sub"), Entry::Symlink));
    }

    #[test]
    fn symlink_loops_end() {
        let (dir, fd) = root();
        symlink("b", dir.path().join("a")).expect("symlink");
        symlink("a", dir.path().join("b")).expect("symlink");
        assert!(create_in_root(fd.as_fd(), Path::new("a/x"), Leaf::Dir).is_err());
    }

    #[test]
    fn magic_links_are_refused() {
        let (dir, fd) = root();
        symlink("/proc/self/cwd", dir.path().join("magic")).expect("symlink");
        // Resolved in root, /proc/self/cwd does not exist inside the root, so it is created
        // there as a plain directory instead of following the host's magic link.
        let leaf = create_in_root(fd.as_fd(), Path::new("magic"), Leaf::Dir).expect("create");
        assert_eq!(real_path(&leaf), dir.path().join("proc/self/cwd"));
    }
}

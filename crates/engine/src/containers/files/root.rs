//! A container's file tree as berthd reaches it, and paths resolved inside it.
//!
//! For `docker cp` of a running container (a *live* root), the tree is the container's
//! own: its root directory opened through its init's `/proc/<pid>/root`, checked to be the
//! container's overlay. A descriptor keeps the mount it was opened on, so every walk from
//! it crosses the mounts of the container's mount namespace as the container sees them
//! (tmpfs content, binds nested below a copied directory), without berthd entering that
//! namespace or running anything there; the kernel's pseudo filesystems mounted in it
//! (/proc, /sys...) are not walked into.
//!
//! Otherwise (a stopped container; `export`) the tree is the container's overlay (mounted
//! privately and detached at once when it does not run, so only our descriptor holds it
//! and nothing is left mounted if berthd dies), plus the bind mounts of its spec (`-v`,
//! `--mount`, volumes) at their destinations, found by their container paths as
//! resolution reaches them. A tmpfs has no content then: its path is the overlay's, as
//! in moby's view of a container's files.
//!
//! Resolution never goes through a path string on the host: it walks one component at a
//! time from descriptors it holds, each step an `openat(O_PATH | O_NOFOLLOW)` relative to
//! the directory reached so far. Symlinks are read and their targets walked the same way,
//! an absolute target from the container's root; `..` pops the walk's own stack of
//! directories and never asks the kernel. So a container that swaps a directory for a
//! symlink to `/` (the CVE-2018-15664 race) only changes what is found inside its own
//! tree: at worst a copy fails or lands elsewhere in the container. Kernel
//! `openat2(RESOLVE_IN_ROOT)` gives the same guarantee but cannot switch to a bind mount's
//! source half-way, which these trees need.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

use berth_image::graft::{Graft, Grafts};

use crate::containers::{ContainerRecord, Containers, Status};
use crate::error::{Error, Result};

/// Symlinks followed in one resolution before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;
/// statfs's f_type of overlayfs.
const OVERLAYFS_MAGIC: i64 = 0x794c_7630;

/// One mount of the container's spec that resolution switches to.
#[derive(Debug, Clone)]
struct MountPoint {
    dest: Vec<OsString>,
    kind: MountKind,
    read_only: bool,
}

#[derive(Debug, Clone)]
enum MountKind {
    Bind(PathBuf),
    /// A tmpfs exists only in the container's mount namespace.
    Tmpfs,
}

/// Containers (by directory) whose overlay a copy has mounted privately: a start waits
/// for them, so that the container's own overlay is never mounted on the same upper
/// directory at the same time (dockerd holds the container's lock for the same reason).
static PRIVATE_MOUNTS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
static MOUNTS_RELEASED: std::sync::Condvar = std::sync::Condvar::new();

/// Held while a private mount of the overlay of the container at `dir` is open.
struct PrivateMount {
    dir: PathBuf,
}

impl Drop for PrivateMount {
    fn drop(&mut self) {
        let mut held = PRIVATE_MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = held.iter().position(|d| *d == self.dir) {
            held.swap_remove(i);
        }
        MOUNTS_RELEASED.notify_all();
    }
}

/// Wait until no copy holds a private mount of the container at `dir`; the start mounts
/// its overlay while it holds what this returns, so no copy mounts one meanwhile (a copy
/// that comes after finds the start's mount and uses it).
pub(crate) fn wait_for_copies(dir: &Path) -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    let mut held = PRIVATE_MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut told = false;
    while held.iter().any(|d| d == dir) {
        if !told {
            tracing::info!("start of {} waits for a copy of its files", dir.display());
            told = true;
        }
        held = MOUNTS_RELEASED
            .wait(held)
            .unwrap_or_else(|e| e.into_inner());
    }
    held
}

/// The container's tree, open.
pub(crate) struct ContainerRoot {
    /// Declared first: dropped (and the descriptor closed, which ends the private mount)
    /// before the guard that lets a start go on.
    root: OwnedFd,
    _private: Option<PrivateMount>,
    mounts: Vec<MountPoint>,
    read_only_root: bool,
    /// `root` is the running container's own root: its mounts are crossed by the kernel.
    live: bool,
    /// The container's name, for messages.
    pub name: String,
}

/// A path resolved in the container.
pub(crate) struct Resolved {
    /// O_PATH descriptor of the entry (not followed if it is a symlink and the resolution
    /// did not ask to follow the last component).
    pub entry: OwnedFd,
    /// The absolute path in the container that was reached.
    pub path: String,
    /// The entry is on a read-only mount (or the read-only root).
    pub read_only: bool,
    /// `path`'s components, as the container's mount destinations are matched.
    logical: Vec<OsString>,
}

/// Where a resolution ended.
pub(crate) enum Lookup {
    Found(Resolved),
    /// Everything but the last component exists.
    Missing,
}

struct Frame {
    fd: OwnedFd,
    name: OsString,
    read_only: bool,
}

fn errno(op: &str, what: &str, e: Errno) -> Error {
    Error::Io(format!("{op} {what}: {}", e.desc()))
}

fn open_path(dir: impl AsFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The components of a container path (`.` and empty ones dropped, `..` kept).
fn components(path: &[u8]) -> Vec<OsString> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsStr::from_bytes(c).to_os_string())
        .collect()
}

fn kind_of(st: &nix::sys::stat::FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

impl ContainerRoot {
    /// Open the tree of container `record`; Docker's rule: any container, running or not.
    /// `lower` are the image's snapshots, top first.
    /// `live`: a running container's tree as the container sees it (see the module's text).
    pub fn open(
        containers: &Containers,
        record: &ContainerRecord,
        lower: &[PathBuf],
        live: bool,
    ) -> Result<ContainerRoot> {
        let rootfs = containers.rootfs(&record.id);
        let running = record.state.status == Status::Running;
        let (root, private) = if running && live {
            (open_live(&rootfs, record.state.pid, &record.name)?, None)
        } else if running {
            (open_mounted(&rootfs)?, None)
        } else {
            let dir = containers.dir(&record.id);
            PRIVATE_MOUNTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(dir.clone());
            // Dropped on failure too: a waiting start goes on at once.
            let guard = PrivateMount { dir };
            // Started since its record was read: its own overlay is the tree.
            match open_mounted(&rootfs) {
                Ok(fd) => (fd, None),
                Err(_) => (mount_private(containers, record, lower)?, Some(guard)),
            }
        };
        Ok(ContainerRoot {
            root,
            _private: private,
            mounts: mount_points(&record.host.mounts, &record.host.volumes),
            read_only_root: record.host.readonly_rootfs,
            live: running && live,
            name: record.name.clone(),
        })
    }

    /// A path of the tree usable as a host path by code that reads through a root path
    /// (it names our descriptor, not a place in the host's tree).
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.root.as_raw_fd()))
    }

    /// Resolve `path` (taken from the container's root); the last component is followed
    /// when it is a symlink only if `follow_last` (or the path ends in `/` or `/.`).
    pub fn lookup(&self, path: &str, follow_last: bool) -> Result<Lookup> {
        let bytes = path.as_bytes();
        let follow_last =
            follow_last || bytes.ends_with(b"/") || bytes.ends_with(b"/.") || bytes == b".";
        let mut todo: std::collections::VecDeque<OsString> = components(bytes).into();
        let mut stack: Vec<Frame> = Vec::new();
        let mut links = 0usize;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                stack.pop();
                continue;
            }
            let last = todo.is_empty();
            let (dir, read_only) = match stack.last() {
                Some(f) => (f.fd.as_fd(), f.read_only),
                None => (self.root.as_fd(), self.read_only_root),
            };
            let logical: Vec<&OsStr> = stack
                .iter()
                .map(|f| f.name.as_os_str())
                .chain(std::iter::once(name.as_os_str()))
                .collect();
            let mount = self.mount_at(&logical);
            // A live root reaches every mount through the kernel: only the flag is taken.
            if let (Some(m), false) = (mount, self.live) {
                if let MountKind::Bind(source) = &m.kind {
                    let fd = nix::fcntl::open(
                        source.as_path(),
                        OFlag::O_PATH | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| {
                        errno("open the mount source", &source.display().to_string(), e)
                    })?;
                    stack.push(Frame {
                        fd,
                        name,
                        read_only: m.read_only,
                    });
                    continue;
                }
                // A tmpfs of a container that does not run: its path is the overlay's.
            }
            let read_only = mount.map_or(read_only, |m| m.read_only);
            let fd = match open_path(dir, &name) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if last => return Ok(Lookup::Missing),
                Err(Errno::ENOENT | Errno::ENOTDIR) => return Err(self.not_found(path)),
                Err(e) => return Err(errno("resolve", path, e)),
            };
            let st = fstat(&fd).map_err(|e| errno("stat", path, e))?;
            match kind_of(&st) {
                SFlag::S_IFLNK if !last || follow_last => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Error::InvalidArgument(format!(
                            "{path}: too many levels of symbolic links in container {}",
                            self.name
                        )));
                    }
                    let target = readlinkat(&fd, "").map_err(|e| errno("readlink", path, e))?;
                    let target = target.as_bytes();
                    if target.starts_with(b"/") {
                        stack.clear();
                    }
                    for c in components(target).into_iter().rev() {
                        todo.push_front(c);
                    }
                    // A link to "." or "/" ends at the directory reached: nothing to push.
                }
                SFlag::S_IFDIR => {
                    if !last && self.live {
                        self.refuse_pseudo(&fd, path)?;
                    }
                    stack.push(Frame {
                        fd,
                        name,
                        read_only,
                    })
                }
                _ if last => stack.push(Frame {
                    fd,
                    name,
                    read_only,
                }),
                _ => return Err(self.not_found(path)),
            }
        }
        Ok(Lookup::Found(self.resolved(&stack)?))
    }

    /// Like [`ContainerRoot::lookup`], but the entry must exist.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Resolved> {
        match self.lookup(path, follow_last)? {
            Lookup::Found(r) => Ok(r),
            Lookup::Missing => Err(self.not_found(path)),
        }
    }

    /// A path below one of the kernel's filesystems mounted in a live container (its
    /// /proc, /sys...) is refused: those are no files of the container, and some of them
    /// act on the host when written.
    pub fn refuse_pseudo(&self, fd: &OwnedFd, path: &str) -> Result<()> {
        match berth_image::tarball::pseudo_fs(fd) {
            Some(fs) => Err(Error::InvalidArgument(format!(
                "{path} is on the {fs} filesystem of container {}, which cp does not reach",
                self.name
            ))),
            None => Ok(()),
        }
    }

    /// moby's containerFileNotFound.
    pub fn not_found(&self, path: &str) -> Error {
        Error::NotFound(format!(
            "Could not find the file {path} in container {}",
            self.name
        ))
    }

    fn resolved(&self, stack: &[Frame]) -> Result<Resolved> {
        let (fd, read_only) = match stack.last() {
            Some(f) => (&f.fd, f.read_only),
            None => (&self.root, self.read_only_root),
        };
        let mut path = String::new();
        for f in stack {
            path.push('/');
            path.push_str(&f.name.to_string_lossy());
        }
        if path.is_empty() {
            path.push('/');
        }
        Ok(Resolved {
            entry: fd.try_clone().map_err(|e| Error::Io(format!("dup: {e}")))?,
            path,
            read_only,
            logical: stack.iter().map(|f| f.name.clone()).collect(),
        })
    }

    /// The binds and volumes of a container that does not run mounted strictly below
    /// `at`, as grafts for a copy of it: their paths relative to `at`, under `prefix` (the
    /// archive's top name, or none), and descriptors of their sources. A live root has
    /// none: the kernel crosses its mounts.
    pub fn grafts_below(&self, at: &Resolved, prefix: Option<&OsStr>) -> Result<Grafts> {
        if self.live {
            return Ok(Grafts::default());
        }
        let mut list = Vec::new();
        for m in &self.mounts {
            let MountKind::Bind(source) = &m.kind else {
                continue;
            };
            if m.dest.len() <= at.logical.len() || !m.dest.starts_with(&at.logical) {
                continue;
            }
            let fd = nix::fcntl::open(
                source.as_path(),
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| errno("open the mount source", &source.display().to_string(), e))?;
            let path = prefix
                .map(OsStr::to_os_string)
                .into_iter()
                .chain(m.dest[at.logical.len()..].iter().cloned())
                .collect();
            list.push(Graft {
                path,
                source: fd,
                read_only: m.read_only,
            });
        }
        Ok(Grafts::new(list))
    }

    /// The mount whose destination is `logical` (the last one listed wins, as it is
    /// mounted last).
    fn mount_at(&self, logical: &[&OsStr]) -> Option<&MountPoint> {
        self.mounts.iter().rev().find(|m| {
            m.dest.len() == logical.len() && m.dest.iter().zip(logical).all(|(a, b)| a == b)
        })
    }

    /// The read-only error moby gives, for a write to `resolved`.
    pub fn check_writable(&self, resolved: &Resolved) -> Result<()> {
        if !resolved.read_only {
            return Ok(());
        }
        let on_mount = self.mounts.iter().any(|m| {
            let dest: Vec<String> = m
                .dest
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            let prefix = format!("/{}", dest.join("/"));
            resolved.path == prefix || resolved.path.starts_with(&format!("{prefix}/"))
        });
        Err(Error::InvalidArgument(if on_mount {
            "mounted volume is marked read-only".into()
        } else {
            "container rootfs is marked read-only".into()
        }))
    }
}

/// The bind and tmpfs mounts of a container's spec and its volumes (binds of their `_data`),
/// parents before what is mounted inside them, as the spec orders them.
fn mount_points(
    mounts: &[serde_json::Value],
    volumes: &[crate::volumes::mounts::VolumeMount],
) -> Vec<MountPoint> {
    let mut points: Vec<MountPoint> = spec_mount_points(mounts);
    points.extend(volumes.iter().map(|v| {
        MountPoint {
            dest: components(v.destination.as_bytes())
                .into_iter()
                .filter(|c| c != "..")
                .collect(),
            kind: MountKind::Bind(v.source.clone()),
            read_only: v.read_only,
        }
    }));
    points.sort_by_key(|m| m.dest.len());
    points
}

fn spec_mount_points(mounts: &[serde_json::Value]) -> Vec<MountPoint> {
    mounts
        .iter()
        .filter_map(|m| {
            let dest = m["destination"].as_str()?;
            let options: Vec<&str> = m["options"]
                .as_array()
                .map(|o| o.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let ty = m["type"].as_str().unwrap_or_default();
            let kind = if ty == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind") {
                MountKind::Bind(PathBuf::from(m["source"].as_str()?))
            } else if ty == "tmpfs" {
                MountKind::Tmpfs
            } else {
                return None;
            };
            Some(MountPoint {
                dest: components(dest.as_bytes())
                    .into_iter()
                    .filter(|c| c != "..")
                    .collect(),
                kind,
                read_only: options.contains(&"ro"),
            })
        })
        .collect()
}

/// The mounted overlay of a running container.
fn open_mounted(rootfs: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno("open", &rootfs.display().to_string(), e))?;
    let fs = nix::sys::statfs::fstatfs(&fd)
        .map_err(|e| errno("statfs", &rootfs.display().to_string(), e))?;
    // Never the empty directory under it: a copy would go where the container cannot see.
    if fs.filesystem_type().0 as i64 != OVERLAYFS_MAGIC {
        return Err(Error::Conflict(format!(
            "the root filesystem of the container is not mounted at {}",
            rootfs.display()
        )));
    }
    Ok(fd)
}

/// The root of the running container whose overlay is mounted at `rootfs`, as its init
/// `pid` sees it. The same directory as the overlay's root, or the pid is no longer the
/// container's (it exited and the number was reused): then refused, not followed.
fn open_live(rootfs: &Path, pid: i32, name: &str) -> Result<OwnedFd> {
    let mounted = open_mounted(rootfs)?;
    let gone = || Error::Conflict(format!("container {name} is not running"));
    if pid <= 0 {
        return Err(gone());
    }
    let proc_root = format!("/proc/{pid}/root");
    let fd = nix::fcntl::open(
        proc_root.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ENOENT | Errno::ESRCH => gone(),
        e => errno("open", &proc_root, e),
    })?;
    let (a, b) = (
        fstat(&mounted).map_err(|e| errno("stat", &rootfs.display().to_string(), e))?,
        fstat(&fd).map_err(|e| errno("stat", &proc_root, e))?,
    );
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
        return Err(gone());
    }
    Ok(fd)
}

/// Mount the overlay of a container that does not run at a private place, open it, and
/// detach it at once: the descriptor keeps it alive, nothing else sees it, and nothing
/// stays mounted whatever happens next.
fn mount_private(
    containers: &Containers,
    record: &ContainerRecord,
    lower: &[PathBuf],
) -> Result<OwnedFd> {
    let dir = containers.dir(&record.id);
    let target = dir.join(format!("files-{}", std::process::id()));
    let target = unique(&target);
    crate::containers::rootfs::mount_overlay(
        lower,
        &dir.join("upper"),
        &dir.join("work"),
        &target,
    )?;
    let opened = nix::fcntl::open(
        target.as_path(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let detached = nix::mount::umount2(target.as_path(), nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(&target);
    let fd = opened.map_err(|e| errno("open", &target.display().to_string(), e))?;
    detached.map_err(|e| errno("detach", &target.display().to_string(), e))?;
    Ok(fd)
}

/// `base` with a counter so that concurrent copies of one container each get their own.
fn unique(base: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = base.as_os_str().to_os_string();
    name.push(format!("-{n}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_at(dir: &Path, mounts: Vec<MountPoint>) -> ContainerRoot {
        ContainerRoot {
            root: nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
                .expect("open"),
            _private: None,
            mounts,
            read_only_root: false,
            live: false,
            name: "c".into(),
        }
    }

    /// Symlinks (absolute, relative, through `..`) resolve inside the tree; a link to `/`
    /// is the tree's root, never the host's.
    #[test]
    fn links_resolve_inside_the_root() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/sub")).expect("mkdir");
        std::fs::write(r.join("etc/hostname"), b"inside").expect("write");
        std::os::unix::fs::symlink("/", r.join("etc/sub/up")).expect("link");
        std::os::unix::fs::symlink("../../../../etc", r.join("etc/sub/rel")).expect("link");
        let root = root_at(r, Vec::new());
        for p in [
            "/etc/sub/up/etc/hostname",
            "etc/sub/rel/hostname",
            "/../../etc/hostname",
        ] {
            let found = root.resolve(p, true).expect(p);
            assert_eq!(found.path, "/etc/hostname", "{p}");
        }
        let link = root.resolve("/etc/sub/up", false).expect("link");
        assert_eq!(link.path, "/etc/sub/up");
        assert!(matches!(
            root.lookup("/etc/sub/up/nothing", false).expect("lookup"),
            Lookup::Missing
        ));
        assert!(root.resolve("/etc/hostname/x", false).is_err());
    }

    /// A tmpfs of a container that does not run has no content: its path is the tree's
    /// own directory, as in moby's view (it was refused by name before).
    #[test]
    fn a_tmpfs_path_is_the_trees_when_not_live() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("scratch")).expect("mkdir");
        std::fs::write(dir.path().join("scratch/f"), b"x").expect("write");
        let root = root_at(
            dir.path(),
            vec![MountPoint {
                dest: components(b"/scratch"),
                kind: MountKind::Tmpfs,
                read_only: false,
            }],
        );
        let f = root.resolve("/scratch/f", false).expect("on the tree");
        assert_eq!(f.path, "/scratch/f");
    }

    /// Below the kernel's filesystems of a live tree nothing is resolved.
    #[test]
    fn live_roots_refuse_paths_below_procfs() {
        let mut root = root_at(Path::new("/"), Vec::new());
        root.live = true;
        assert!(root.resolve("/proc", false).is_ok());
        let e = root
            .resolve("/proc/self/environ", false)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("proc filesystem"), "{e}");
    }

    /// A path reaching a bind's destination continues in the bind's source.
    #[test]
    fn binds_switch_to_their_source() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = dir.path().join("root");
        let src = dir.path().join("src");
        std::fs::create_dir_all(r.join("data")).expect("mkdir");
        std::fs::create_dir_all(&src).expect("mkdir");
        std::fs::write(src.join("f"), b"x").expect("write");
        std::os::unix::fs::symlink("/data", r.join("link")).expect("link");
        let root = root_at(
            &r,
            vec![MountPoint {
                dest: components(b"/data"),
                kind: MountKind::Bind(src.clone()),
                read_only: true,
            }],
        );
        let f = root.resolve("/link/f", false).expect("through the link");
        assert_eq!(f.path, "/data/f");
        assert!(f.read_only);
        assert!(root.check_writable(&f).is_err());
    }

    /// The mounts strictly below a resolved directory become grafts relative to it, under
    /// the archive's top name; a live root has none (the kernel crosses its mounts).
    #[test]
    fn grafts_are_the_binds_below_the_copied_directory() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = dir.path().join("root");
        let src = dir.path().join("src");
        std::fs::create_dir_all(r.join("data")).expect("mkdir");
        std::fs::create_dir_all(&src).expect("mkdir");
        let bind = |dest: &[u8], read_only| MountPoint {
            dest: components(dest),
            kind: MountKind::Bind(src.clone()),
            read_only,
        };
        let mut root = root_at(
            &r,
            vec![
                bind(b"/data", false),
                bind(b"/data/sub/deep", true),
                bind(b"/other", false),
            ],
        );
        let at = root.resolve("/data", false).expect("data");
        let grafts = root
            .grafts_below(&at, Some(OsStr::new("data")))
            .expect("grafts");
        let g = grafts
            .at(&components(b"data/sub/deep"))
            .expect("the nested bind");
        assert!(g.read_only);
        assert!(grafts.at(&components(b"data")).is_none());
        assert!(grafts.at(&components(b"other")).is_none());
        root.live = true;
        assert!(root.grafts_below(&at, None).expect("live").is_empty());
    }
}

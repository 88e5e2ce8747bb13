//! One `mounts[]` entry: bind mounts from the host, or a fresh filesystem.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use super::{cgroupfs, copyup, MountOptions, RootfsConfig};
use crate::error::{Error, Result, SysContext};
use crate::sys::fs::{
    create_in_root, entry_without_symlinks, fd_path, is_procfs_path, is_sysfs_path, open_in_root,
    Entry, Leaf,
};
use crate::sys::mount as m;

/// `mounts[index]`.
pub(super) fn mount_one(
    cfg: &RootfsConfig<'_>,
    root: BorrowedFd<'_>,
    index: usize,
    mount: &Mount,
) -> Result<()> {
    let opts = MountOptions::parse(mount.options().as_deref().unwrap_or_default())?;
    let dest = mount.destination();
    let typ = mount.typ().as_deref().unwrap_or("");
    match typ {
        "cgroup" | "cgroup2" => cgroupfs::mount(cfg, root, dest, &opts),
        _ if opts.bind || typ == "bind" => bind(cfg, root, mount, &opts, cfg.idmapped.tree(index)),
        _ => fresh(cfg, root, mount, typ, &opts),
    }
}

/// Re-open the destination after mounting: the old handle still points *under* the mount.
pub(super) fn reopen(root: BorrowedFd<'_>, dest: &Path) -> Result<OwnedFd> {
    open_in_root(root, dest, OFlag::O_PATH).ctx(|| format!("open mount {}", dest.display()))
}

/// A bind mount of the host's `source`, or the idmapped tree the runtime made of it.
fn bind(
    cfg: &RootfsConfig<'_>,
    root: BorrowedFd<'_>,
    mount: &Mount,
    opts: &MountOptions,
    idmapped: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let dest = mount.destination();
    let source = source_path(cfg.bundle, mount)?;
    let leaf = if source.is_dir() {
        Leaf::Dir
    } else {
        Leaf::File
    };
    // A whole procfs or sysfs bound in is held to the same rule as a fresh one (a file of
    // theirs goes on a file, as lxcfs's do).
    let existing = if leaf == Leaf::Dir && is_procfs_path(&source) {
        check_plain_dir(root, mount, "proc")?
    } else if leaf == Leaf::Dir && is_sysfs_path(&source) {
        check_plain_dir(root, mount, "sysfs")?
    } else {
        None
    };
    let target = match existing {
        Some(dir) => dir,
        None => create_in_root(root, dest, leaf)
            .ctx(|| format!("create mount point {}", dest.display()))?,
    };
    check_proc(cfg, target.as_fd(), mount, is_procfs_path(&source))?;
    let mut flags = MsFlags::MS_BIND;
    if opts.recursive_bind {
        flags |= MsFlags::MS_REC;
    }
    match idmapped {
        Some(tree) => m::attach_tree(tree, target.as_fd())
            .ctx(|| format!("attach idmapped {} to {}", source.display(), dest.display()))?,
        None => m::mount_on(Some(&source), target.as_fd(), None, flags, None)
            .ctx(|| format!("bind {} to {}", source.display(), dest.display()))?,
    }
    let mounted = reopen(root, dest)?;
    if opts.needs_remount() {
        remount_bind(mounted.as_fd(), opts.flags, cfg.in_user_ns)
            .ctx(|| format!("remount {} with its options", dest.display()))?;
    }
    apply_after(mounted.as_fd(), dest, opts)
}

/// runc's rule for procfs and sysfs (CVE-2019-16884, CVE-2019-19921): they go on an
/// ordinary directory of the rootfs, never through a symlink, which the image (or a
/// container sharing a volume with it) could point wherever it likes, or swap while the
/// mount happens. Checked before the mount point is created, as runc does, and stricter
/// than runc's lstat of the last component: no directory on the way may be a symlink
/// either. Returns the mount point when it exists (so it is not looked up twice).
fn check_plain_dir(root: BorrowedFd<'_>, mount: &Mount, fs: &str) -> Result<Option<OwnedFd>> {
    let dest = mount.destination();
    let entry = entry_without_symlinks(root, dest)
        .ctx(|| format!("inspect mount point {}", dest.display()))?;
    let why = match entry {
        Entry::Missing => return Ok(None),
        Entry::Dir(fd) => return Ok(Some(fd)),
        Entry::Symlink => "is (or goes through) a symlink in the rootfs",
        Entry::Other => "is not a directory in the rootfs",
    };
    Err(Error::config(format!(
        "mount on {}: filesystem {fs:?} must be mounted on an ordinary directory, and {} \
         {why} (runc refuses it too)",
        dest.display(),
        dest.display()
    )))
}

/// The files under /proc that lxcfs emulates: the only mounts runc allows inside /proc.
const LXCFS_FILES: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// runc's rule for /proc: on /proc itself only a procfs (fresh, or a bind of one), inside
/// it only the files lxcfs emulates; anything else would hide or replace what the kernel
/// shows (and what maskedPaths hides). `target` is the mount point as resolved in the
/// rootfs, so a symlink in the image cannot lead a mount there unseen.
fn check_proc(
    cfg: &RootfsConfig<'_>,
    target: BorrowedFd<'_>,
    mount: &Mount,
    is_procfs: bool,
) -> Result<()> {
    let resolved = std::fs::read_link(fd_path(target)).ok();
    let inside = match resolved
        .as_deref()
        .and_then(|r| r.strip_prefix(cfg.rootfs).ok())
    {
        Some(rel) => Path::new("/").join(rel),
        None => mount.destination().clone(),
    };
    let what = || match mount.source() {
        Some(src) => format!(
            "mount of {} on {}",
            src.display(),
            mount.destination().display()
        ),
        None => format!("mount on {}", mount.destination().display()),
    };
    if inside == Path::new("/proc") {
        if !is_procfs {
            return Err(Error::config(format!(
                "{}: /proc cannot be mounted because it is not of type proc",
                what()
            )));
        }
    } else if inside.starts_with("/proc") && !LXCFS_FILES.iter().any(|f| inside == Path::new(f)) {
        return Err(Error::config(format!(
            "{}: {} cannot be mounted because it is inside /proc",
            what(),
            inside.display()
        )));
    }
    Ok(())
}

/// The host path a bind mount takes: `source`, relative to the bundle unless absolute.
pub(super) fn source_path(bundle: &Path, mount: &Mount) -> Result<PathBuf> {
    let source = mount.source().as_ref().ok_or_else(|| {
        Error::config(format!(
            "bind mount {} has no source",
            mount.destination().display()
        ))
    })?;
    let source = if source.is_absolute() {
        source.clone()
    } else {
        bundle.join(source)
    };
    if !source.exists() {
        return Err(Error::config(format!(
            "bind mount source {} for {} does not exist",
            source.display(),
            mount.destination().display()
        )));
    }
    Ok(source)
}

/// Apply flags to a bind mount. In a user namespace the kernel locks the flags inherited
/// from the source mount; keep those or the remount fails with EPERM.
pub(super) fn remount_bind(
    target: BorrowedFd<'_>,
    flags: MsFlags,
    in_user_ns: bool,
) -> nix::Result<()> {
    let locked = if in_user_ns {
        m::mount_flags(target)?
            & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY)
    } else {
        MsFlags::empty()
    };
    let flags = (flags | locked) & !MsFlags::MS_REC;
    m::mount_on(
        None,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        None,
    )
}

fn fresh(
    cfg: &RootfsConfig<'_>,
    root: BorrowedFd<'_>,
    mount: &Mount,
    typ: &str,
    opts: &MountOptions,
) -> Result<()> {
    let dest = mount.destination();
    if typ.is_empty() {
        return Err(Error::config(format!(
            "mount {} has no type",
            dest.display()
        )));
    }
    let existing = match typ {
        "proc" | "sysfs" => check_plain_dir(root, mount, typ)?,
        _ => None,
    };
    let target = match existing {
        Some(dir) => dir,
        None => create_in_root(root, dest, Leaf::Dir)
            .ctx(|| format!("create mount point {}", dest.display()))?,
    };
    check_proc(cfg, target.as_fd(), mount, typ == "proc")?;
    let source = mount.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let data = opts.data_string();
    let mut flags = opts.flags & !MsFlags::MS_REMOUNT;
    let covered = match opts.tmpcopyup {
        true => {
            // Writable until the copy is in; `ro` comes after it.
            flags &= !MsFlags::MS_RDONLY;
            Some(copyup::open_covered(target.as_fd()).ctx(|| format!("open {}", dest.display()))?)
        }
        false => None,
    };
    match m::mount_on(
        Some(&source),
        target.as_fd(),
        Some(typ),
        flags,
        data.as_deref(),
    ) {
        Ok(()) => {}
        // In a user namespace without its own network (sysfs) or ipc (mqueue) namespace
        // the kernel refuses a fresh instance; use the host's, read-only, as runc does.
        Err(Errno::EPERM) if cfg.in_user_ns && matches!(typ, "sysfs" | "mqueue") => {
            let host = if typ == "sysfs" {
                "/sys"
            } else {
                "/dev/mqueue"
            };
            m::mount_on(
                Some(Path::new(host)),
                target.as_fd(),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .ctx(|| format!("bind {host} to {}", dest.display()))?;
            let mounted = reopen(root, dest)?;
            remount_bind(mounted.as_fd(), flags | MsFlags::MS_RDONLY, true)
                .ctx(|| format!("remount {} read-only", dest.display()))?;
        }
        Err(e) => {
            return Err(Error::sys(format!("mount {typ} on {}", dest.display()), e));
        }
    }
    let mounted = reopen(root, dest)?;
    if let Some(covered) = covered {
        copyup::copy_dir(covered.as_fd(), mounted.as_fd(), dest)?;
        if opts.flags.contains(MsFlags::MS_RDONLY) {
            remount_bind(mounted.as_fd(), flags | MsFlags::MS_RDONLY, cfg.in_user_ns)
                .ctx(|| format!("remount {} read-only", dest.display()))?;
        }
    }
    apply_after(mounted.as_fd(), dest, opts)
}

/// Propagation and recursive attributes, applied to the mount itself.
pub(super) fn apply_after(mounted: BorrowedFd<'_>, dest: &Path, opts: &MountOptions) -> Result<()> {
    for flags in &opts.propagation {
        m::mount_on(None, mounted, None, *flags, None)
            .ctx(|| format!("set propagation of {}", dest.display()))?;
    }
    if !opts.recursive.is_empty() {
        m::set_recursive_attrs(mounted, opts.recursive)
            .ctx(|| format!("set recursive attributes of {}", dest.display()))?;
    }
    Ok(())
}

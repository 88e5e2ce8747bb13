//! The `cgroup` mount type: show the container its own cgroups at /sys/fs/cgroup.
//!
//! Each hierarchy is bind-mounted from the container's cgroup directory, so the container
//! never sees its siblings: on pure v2 that directory becomes the mount, on v1 and hybrid
//! hosts a tmpfs holds one directory per hierarchy, as runc lays it out.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{mkdirat, Mode};

use super::mounts::{apply_after, remount_bind, reopen};
use super::options::bind_remount_attrs;
use super::{MountOptions, RootfsConfig};
use crate::error::{Error, Result, SysContext};
use crate::sys::fs::{create_in_root, Leaf};
use crate::sys::mount as m;

pub(super) fn mount(
    cfg: &RootfsConfig<'_>,
    root: BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
) -> Result<()> {
    let bind_flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if cfg.cgroup.layout().unified_only() {
        let (_, dir) = cfg
            .cgroup
            .dirs()
            .next()
            .ok_or_else(|| Error::Init("no cgroup2 hierarchy found".into()))?;
        bind_hierarchy(cfg, root, &dir, dest, bind_flags)?;
    } else {
        let target =
            create_in_root(root, dest, Leaf::Dir).ctx(|| format!("create {}", dest.display()))?;
        let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        m::mount_on(
            Some(Path::new("tmpfs")),
            target.as_fd(),
            Some("tmpfs"),
            tmpfs_flags,
            Some("mode=755"),
        )
        .ctx(|| format!("mount tmpfs on {}", dest.display()))?;
        // The tmpfs is ours and empty: entries are made directly under its handle, with no
        // path resolution (nothing in it can be a symlink).
        let tmpfs = reopen(root, dest)?;
        for (h, dir) in cfg.cgroup.dirs() {
            bind_into(tmpfs.as_fd(), &h.name, &dir, dest)?;
            link_comounted(tmpfs.as_fd(), &h.name)?;
        }
        // The tmpfs and every bind get the mount's flags in one mount_setattr over the
        // tree, instead of one remount each (a kernel without it gets those remounts).
        let mounted = reopen(root, dest)?;
        let attrs = bind_remount_attrs(bind_flags, cfg.in_user_ns);
        match m::set_recursive_attrs(mounted.as_fd(), attrs) {
            Err(nix::errno::Errno::ENOSYS) => remount_each(cfg, &tmpfs, dest, bind_flags)?,
            other => other.ctx(|| format!("set the flags of {}", dest.display()))?,
        }
        // The tmpfs's own filesystem read-only too, as runc leaves it.
        if opts.flags.contains(MsFlags::MS_RDONLY) {
            m::mount_on(
                None,
                mounted.as_fd(),
                None,
                MsFlags::MS_REMOUNT | tmpfs_flags | MsFlags::MS_RDONLY,
                None,
            )
            .ctx(|| format!("remount {} read-only", dest.display()))?;
        }
    }
    let mounted = reopen(root, dest)?;
    apply_after(mounted.as_fd(), dest, opts)
}

fn bind_hierarchy(
    cfg: &RootfsConfig<'_>,
    root: BorrowedFd<'_>,
    source: &Path,
    dest: &Path,
    flags: MsFlags,
) -> Result<()> {
    let target =
        create_in_root(root, dest, Leaf::Dir).ctx(|| format!("create {}", dest.display()))?;
    m::mount_on(
        Some(source),
        target.as_fd(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .ctx(|| format!("bind {} to {}", source.display(), dest.display()))?;
    let mounted = reopen(root, dest)?;
    remount_bind(mounted.as_fd(), flags, cfg.in_user_ns)
        .ctx(|| format!("remount {}", dest.display()))
}

/// Bind the cgroup directory `source` of hierarchy `name` to `<tmpfs>/<name>`.
fn bind_into(tmpfs: BorrowedFd<'_>, name: &str, source: &Path, dest: &Path) -> Result<()> {
    let shown = || dest.join(name).display().to_string();
    if name.is_empty() || name.contains('/') {
        return Err(Error::Init(format!("unexpected cgroup mount {}", shown())));
    }
    mkdirat(tmpfs, name, Mode::from_bits_truncate(0o755)).ctx(|| format!("mkdir {}", shown()))?;
    let point = open_in_tmpfs(tmpfs, name).ctx(|| format!("open {}", shown()))?;
    m::mount_on(
        Some(source),
        point.as_fd(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .ctx(|| format!("bind {} to {}", source.display(), shown()))
}

fn open_in_tmpfs(tmpfs: BorrowedFd<'_>, name: &str) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        tmpfs,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Without mount_setattr: remount each hierarchy's bind with the mount's flags.
fn remount_each(
    cfg: &RootfsConfig<'_>,
    tmpfs: &OwnedFd,
    dest: &Path,
    flags: MsFlags,
) -> Result<()> {
    for (h, _) in cfg.cgroup.dirs() {
        let shown = || dest.join(&h.name).display().to_string();
        let mounted = open_in_tmpfs(tmpfs.as_fd(), &h.name).ctx(|| format!("open {}", shown()))?;
        remount_bind(mounted.as_fd(), flags, cfg.in_user_ns)
            .ctx(|| format!("remount {}", shown()))?;
    }
    Ok(())
}

/// "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on the host.
fn link_comounted(tmpfs: BorrowedFd<'_>, name: &str) -> Result<()> {
    if !name.contains(',') {
        return Ok(());
    }
    for part in name.split(',') {
        match nix::unistd::symlinkat(name, tmpfs, part) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink {part} -> {name}"), e)),
        }
    }
    Ok(())
}

//! Building the container's root filesystem inside its new mount namespace:
//! propagation, the rootfs bind, every configured mount, /dev, then pivot_root and the
//! finishing touches (masked and read-only paths, read-only root).
//!
//! Order, as runc's: `prepare` (before the createRuntime hooks) → `enter` (pivot) →
//! `finalize`. Every destination is resolved inside the rootfs (see `sys::fs`).

mod cgroupfs;
mod copyup;
mod devices;
mod idmap;
mod mounts;
mod options;
mod paths;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::error::{Result, SysContext};
use crate::sys::mount as m;

pub(crate) use idmap::IdmappedMounts;
pub use options::{propagation_flags, MountOptions};

/// What the rootfs steps need to know.
pub(crate) struct RootfsConfig<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    /// Canonical (create resolved it), so resolved mount points compare with it as is.
    pub rootfs: &'a Path,
    pub in_user_ns: bool,
    /// The container has a mount namespace of its own. Without one (joined by path, or the
    /// runtime's), nothing outside the rootfs is changed and the root is entered with
    /// chroot, as crun does: pivot_root would move the root of every process sharing it.
    pub new_mount_ns: bool,
    pub no_pivot: bool,
    /// The container's cgroup: the cgroup mount shows its directories.
    pub cgroup: &'a berth_cgroups::Cgroup,
    /// The idmapped mounts' trees, made by the runtime.
    pub idmapped: &'a IdmappedMounts,
}

impl RootfsConfig<'_> {
    fn rootfs_propagation(&self) -> Result<Option<MsFlags>> {
        let linux = self.spec.linux().as_ref();
        linux
            .and_then(|l| l.rootfs_propagation().as_deref())
            .map(propagation_flags)
            .transpose()
    }
}

/// Mount everything the config asks for under the rootfs. Returns a handle on the rootfs.
pub(crate) fn prepare(cfg: &RootfsConfig<'_>) -> Result<OwnedFd> {
    let requested = cfg.rootfs_propagation()?;
    // Nothing we mount may propagate back to the host, unless the config asks for a shared
    // root: then, as runc, the namespace stays shared (so that a bind of a shared host
    // directory joins its peer group and mounts made under it in the container reach the
    // host) and only the mount holding the rootfs is made private.
    let shared = requested.is_some_and(|f| f.contains(MsFlags::MS_SHARED));
    let initial = match requested {
        Some(f) if shared => f,
        Some(f) if f.contains(MsFlags::MS_PRIVATE) => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    if cfg.new_mount_ns {
        m::set_propagation(Path::new("/"), initial).ctx(|| "set the propagation of /".into())?;
        if shared {
            parent_mount_private(cfg.rootfs)?;
        }
    }
    m::mount_path(
        Some(cfg.rootfs),
        cfg.rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .ctx(|| format!("bind rootfs {}", cfg.rootfs.display()))?;
    if !cfg.new_mount_ns {
        // In a shared namespace only our own bind of the rootfs is made private, so that
        // what is mounted under it reaches no peer of the namespace.
        m::set_propagation(cfg.rootfs, MsFlags::MS_PRIVATE | MsFlags::MS_REC)
            .ctx(|| format!("make rootfs {} private", cfg.rootfs.display()))?;
    }
    let root = nix::fcntl::open(
        cfg.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", cfg.rootfs.display()))?;
    for (index, mount) in cfg.spec.mounts().iter().flatten().enumerate() {
        mounts::mount_one(cfg, root.as_fd(), index, mount)?;
    }
    if devices::needs_dev_setup(cfg.spec) {
        devices::setup(cfg, root.as_fd())?;
    }
    Ok(root)
}

/// runc's rootfsParentMountPrivate: the mount holding the rootfs (the longest mount point
/// that is a prefix of it) made private, so that the rootfs bind and pivot_root reach no
/// peer (and pivot_root accepts the new root).
fn parent_mount_private(rootfs: &Path) -> Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| crate::error::Error::io("read", "/proc/self/mountinfo", e))?;
    let parent = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(crate::container::host_mounts::unescape)
        .filter(|point| rootfs.starts_with(point))
        .max_by_key(|point| point.as_os_str().len());
    match parent {
        Some(point) => m::set_propagation(&point, MsFlags::MS_PRIVATE)
            .ctx(|| format!("make {} private", point.display())),
        None => Ok(()),
    }
}

/// Make the rootfs the root of the mount namespace.
pub(crate) fn enter(cfg: &RootfsConfig<'_>) -> Result<()> {
    if !cfg.new_mount_ns {
        return chroot(cfg.rootfs);
    }
    if cfg.no_pivot {
        move_root(cfg.rootfs)
    } else {
        pivot_root(cfg.rootfs)
    }
}

fn pivot_root(rootfs: &Path) -> Result<()> {
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = nix::fcntl::open("/", dir, Mode::empty()).ctx(|| "open /".into())?;
    let new = nix::fcntl::open(rootfs, dir, Mode::empty())
        .ctx(|| format!("open {}", rootfs.display()))?;
    nix::unistd::fchdir(&new).ctx(|| "chdir to rootfs".into())?;
    m::pivot_root_here().ctx(|| format!("pivot_root to {}", rootfs.display()))?;
    nix::unistd::fchdir(&old).ctx(|| "chdir to old root".into())?;
    // The old root is now stacked under ".": keep its unmount from reaching the host.
    m::set_propagation(Path::new("."), MsFlags::MS_SLAVE | MsFlags::MS_REC)
        .ctx(|| "make old root a slave".into())?;
    m::detach(Path::new(".")).ctx(|| "unmount old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

fn move_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    m::mount_path(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)
        .ctx(|| "move rootfs to /".into())?;
    nix::unistd::chroot(".").ctx(|| "chroot".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

fn chroot(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    nix::unistd::chroot(".").ctx(|| "chroot".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// After pivot: masked and read-only paths, read-only root, final propagation.
pub(crate) fn finalize(cfg: &RootfsConfig<'_>) -> Result<()> {
    let linux = cfg.spec.linux().as_ref();
    paths::mask(
        linux
            .and_then(|l| l.masked_paths().as_deref())
            .unwrap_or_default(),
    )?;
    paths::make_readonly(
        linux
            .and_then(|l| l.readonly_paths().as_deref())
            .unwrap_or_default(),
    )?;
    if cfg
        .spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        paths::remount_root_readonly()?;
    }
    if let Some(flags) = cfg.rootfs_propagation()? {
        m::set_propagation(Path::new("/"), flags).ctx(|| "set rootfs propagation".into())?;
    }
    Ok(())
}

/// Check what `mounts[index]` asks beyond its options' syntax (for `validate`):
/// `tmpcopyup` on a tmpfs only, idmapped mounts that can be made.
pub(crate) fn check_mount(
    spec: &Spec,
    index: usize,
    mount: &oci_spec::runtime::Mount,
    opts: &MountOptions,
) -> Result<()> {
    let typ = mount.typ().as_deref().unwrap_or("");
    if opts.tmpcopyup && (typ != "tmpfs" || opts.bind) {
        return Err(crate::Error::config(format!(
            "mounts[{index}] ({}): option \"tmpcopyup\" is for tmpfs mounts, not type {typ:?} \
             (crun refuses it too)",
            mount.destination().display()
        )));
    }
    idmap::check(spec, index, mount, opts)
}

/// Runtime side, before init is forked: the trees of the idmapped mounts.
///
/// # Safety
/// The caller must be single-threaded.
pub(crate) unsafe fn prepare_idmapped(spec: &Spec, bundle: &Path) -> Result<IdmappedMounts> {
    // SAFETY: passed on from the caller.
    unsafe { idmap::prepare(spec, bundle) }
}

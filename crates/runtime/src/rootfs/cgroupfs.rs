//! The `cgroup` mount type: show the container its own cgroups at /sys/fs/cgroup.
//!
//! The host's layout is read once by the runtime process (pure v2, pure v1, or hybrid like
//! v1 controllers plus /sys/fs/cgroup/unified). Each hierarchy is bind-mounted from the
//! container's own cgroup directory, so the container never sees its siblings: on v2 the
//! cgroup directory becomes the mount, on v1/hybrid a tmpfs holds one directory per
//! hierarchy, as runc lays it out.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{mkdirat, Mode};

use super::mounts::{apply_after, remount_bind, reopen};
use super::{MountOptions, RootfsConfig};
use crate::error::{Error, Result, SysContext};
use crate::sys::fs::{create_in_root, Leaf};
use crate::sys::mount as m;

/// One cgroup hierarchy of the host, and the directory of our cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Name under /sys/fs/cgroup ("memory", "cpu,cpuacct", "unified", "systemd").
    pub name: String,
    /// Host directory of the caller's cgroup in this hierarchy.
    pub own_dir: PathBuf,
}

/// The host's cgroup mounts under /sys/fs/cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCgroups {
    /// Pure cgroup v2: one hierarchy mounted at /sys/fs/cgroup itself.
    pub unified_only: bool,
    pub hierarchies: Vec<Hierarchy>,
}

impl HostCgroups {
    /// Read the layout from /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| Error::io("read", "/proc/self/cgroup", e))?;
        Ok(Self::parse(&mountinfo, &cgroup))
    }

    fn parse(mountinfo: &str, cgroup: &str) -> Self {
        let mut out = HostCgroups::default();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let (Some(root), Some(point), Some(fstype), Some(opts)) =
                (pre.get(3), pre.get(4), post.first(), post.get(2))
            else {
                continue;
            };
            let Some(name) = point.strip_prefix("/sys/fs/cgroup") else {
                continue;
            };
            let own = match *fstype {
                "cgroup2" => own_path(cgroup, |ctrls| ctrls.is_empty()),
                "cgroup" => {
                    let wanted: Vec<&str> = opts.split(',').filter(|o| is_controller(o)).collect();
                    own_path(cgroup, |ctrls| {
                        let mut have: Vec<&str> = ctrls.split(',').collect();
                        have.sort_unstable();
                        let mut want = wanted.clone();
                        want.sort_unstable();
                        have == want
                    })
                }
                _ => continue,
            };
            let Some(own) = own else { continue };
            let rel = own
                .strip_prefix(root)
                .unwrap_or(own.as_str())
                .trim_start_matches('/');
            let dir = Path::new(point).join(rel);
            let name = name.trim_start_matches('/').to_string();
            if name.is_empty() {
                out.unified_only = *fstype == "cgroup2";
            }
            out.hierarchies.push(Hierarchy { name, own_dir: dir });
        }
        out
    }
}

fn is_controller(opt: &str) -> bool {
    !matches!(
        opt,
        "rw" | "ro"
            | "relatime"
            | "noatime"
            | "nosuid"
            | "nodev"
            | "noexec"
            | "nsdelegate"
            | "memory_recursiveprot"
            | "xattr"
            | "noprefix"
            | "cpuset_v2_mode"
            | "favordynmods"
    ) && !opt.starts_with("release_agent=")
        && !opt.starts_with("clone_children")
}

/// Our cgroup path in the hierarchy whose controller list satisfies `matches`.
fn own_path(cgroup: &str, matches: impl Fn(&str) -> bool) -> Option<String> {
    cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        matches(ctrls).then(|| path.to_string())
    })
}

pub(super) fn mount(
    cfg: &RootfsConfig<'_>,
    root: BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
) -> Result<()> {
    let host = cfg.host_cgroups;
    let bind_flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if host.unified_only {
        let h = host
            .hierarchies
            .first()
            .ok_or_else(|| Error::Init("no cgroup2 hierarchy found".into()))?;
        bind_hierarchy(cfg, root, &h.own_dir, dest, bind_flags)?;
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
        for h in &host.hierarchies {
            bind_into(cfg, tmpfs.as_fd(), h, dest, bind_flags)?;
            link_comounted(tmpfs.as_fd(), &h.name)?;
        }
        if opts.flags.contains(MsFlags::MS_RDONLY) {
            let mounted = reopen(root, dest)?;
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

/// Bind one host hierarchy to `<tmpfs>/<name>` and apply the mount's flags.
fn bind_into(
    cfg: &RootfsConfig<'_>,
    tmpfs: BorrowedFd<'_>,
    h: &Hierarchy,
    dest: &Path,
    flags: MsFlags,
) -> Result<()> {
    let shown = || dest.join(&h.name).display().to_string();
    if h.name.contains('/') {
        return Err(Error::Init(format!("unexpected cgroup mount {}", shown())));
    }
    mkdirat(tmpfs, h.name.as_str(), Mode::from_bits_truncate(0o755))
        .ctx(|| format!("mkdir {}", shown()))?;
    let open = || {
        nix::fcntl::openat(
            tmpfs,
            h.name.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {}", shown()))
    };
    let point = open()?;
    m::mount_on(
        Some(&h.own_dir),
        point.as_fd(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .ctx(|| format!("bind {} to {}", h.own_dir.display(), shown()))?;
    let mounted = open()?;
    remount_bind(mounted.as_fd(), flags, cfg.in_user_ns).ctx(|| format!("remount {}", shown()))
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

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";
    const HYBRID_CGROUP: &str = "\
12:memory:/user/1
11:cpuacct,cpu:/user/1
1:name=systemd:/user/1
0::/user/1
";

    #[test]
    fn hybrid_layout_finds_every_hierarchy() {
        let h = HostCgroups::parse(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        assert!(!h.unified_only);
        let names: Vec<&str> = h.hierarchies.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["unified", "memory", "cpu,cpuacct", "systemd"]);
        assert_eq!(
            h.hierarchies[1].own_dir,
            Path::new("/sys/fs/cgroup/memory/user/1")
        );
    }

    #[test]
    fn pure_v2_with_a_nested_mount_root() {
        let mi = "30 24 0:26 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let h = HostCgroups::parse(mi, "0::/outer/inner\n");
        assert!(h.unified_only);
        assert_eq!(h.hierarchies[0].own_dir, Path::new("/sys/fs/cgroup/inner"));
    }
}

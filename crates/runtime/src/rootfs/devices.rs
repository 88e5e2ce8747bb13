//! /dev: the default devices, `linux.devices`, and the standard links.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::RootfsConfig;
use crate::error::{Error, Result, SysContext};
use crate::sys::fs::{create_in_root, Leaf};
use crate::sys::mount as m;

/// A device node to create.
struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn default_node(name: &str, major: u64, minor: u64) -> Node {
    Node {
        path: PathBuf::from("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    }
}

const LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

/// /dev is set up unless the config bind-mounts it from somewhere.
pub(super) fn needs_dev_setup(spec: &Spec) -> bool {
    !spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}

pub(super) fn setup(cfg: &RootfsConfig<'_>, root: BorrowedFd<'_>) -> Result<()> {
    let mut nodes = vec![
        default_node("null", 1, 3),
        default_node("zero", 1, 5),
        default_node("full", 1, 7),
        default_node("random", 1, 8),
        default_node("urandom", 1, 9),
        default_node("tty", 5, 0),
    ];
    for d in cfg
        .spec
        .linux()
        .iter()
        .flat_map(|l| l.devices().iter().flatten())
    {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::config(format!(
                    "device {}: type \"a\" is not a node type",
                    d.path().display()
                )))
            }
        };
        if !d.path().starts_with("/dev") {
            return Err(Error::config(format!(
                "device path {} must be under /dev",
                d.path().display()
            )));
        }
        let number = |n: i64, what: &str| {
            u64::try_from(n).map_err(|_| {
                Error::config(format!("device {}: negative {what}", d.path().display()))
            })
        };
        nodes.retain(|n| n.path != *d.path());
        nodes.push(Node {
            path: d.path().clone(),
            kind,
            major: number(d.major(), "major")?,
            minor: number(d.minor(), "minor")?,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    for node in &nodes {
        if cfg.in_user_ns {
            bind_host_device(root, node)?;
        } else {
            make_node(root, node)?;
        }
    }
    let dev = create_in_root(root, Path::new("/dev"), Leaf::Dir).ctx(|| "open /dev".into())?;
    for (target, name) in LINKS {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name}"), e)),
        }
    }
    if Path::new("/proc/kcore").exists() {
        let _ = nix::unistd::symlinkat("/proc/kcore", dev.as_fd(), "core");
    }
    Ok(())
}

fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(Error::config(format!(
            "device path {} has no file name",
            path.display()
        ))),
    }
}

fn make_node(root: BorrowedFd<'_>, node: &Node) -> Result<()> {
    let (parent, name) = split(&node.path)?;
    let dir =
        create_in_root(root, parent, Leaf::Dir).ctx(|| format!("create {}", parent.display()))?;
    let dev = makedev(node.major, node.minor);
    let mode = Mode::from_bits_truncate(node.mode);
    match mknodat(dir.as_fd(), name, node.kind, mode, dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir)
                .ctx(|| format!("replace {}", node.path.display()))?;
            mknodat(dir.as_fd(), name, node.kind, mode, dev)
                .ctx(|| format!("mknod {}", node.path.display()))?;
        }
        Err(e) => return Err(Error::sys(format!("mknod {}", node.path.display()), e)),
    }
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {}", node.path.display()))
}

/// In a user namespace mknod is not allowed: bind the host's node instead, as runc does.
fn bind_host_device(root: BorrowedFd<'_>, node: &Node) -> Result<()> {
    let target = create_in_root(root, &node.path, Leaf::File)
        .ctx(|| format!("create {}", node.path.display()))?;
    m::mount_on(
        Some(&node.path),
        target.as_fd(),
        None,
        MsFlags::MS_BIND,
        None,
    )
    .ctx(|| format!("bind host {}", node.path.display()))
}

//! At each start: the namespaces a container joins (`--pid`/`--ipc container:X` through X's
//! init, `/proc/PID/ns/...`, as dockerd points runc at them) and where its /dev/shm comes
//! from, found from the other containers' state at that moment.

use std::path::PathBuf;

use super::namespaces::{IpcMode, PidMode};
use crate::containers::{ContainerRecord, Containers, Status};
use crate::error::{Error, Result};

/// /dev/shm of a container.
#[derive(Debug, Clone, PartialEq)]
pub enum Shm {
    /// A tmpfs of its own, made by the runtime (private IPC).
    Tmpfs(i64),
    /// None at all (`--ipc none`).
    Absent,
    /// A bind of a directory berthd or the host mounted: a shareable container's tmpfs (its
    /// own, or the one of the container whose IPC it joins), or the host's /dev/shm.
    Bind(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sources {
    /// The pid namespace to join, by path.
    pub pid: Option<String>,
    /// The IPC namespace to join, by path.
    pub ipc: Option<String>,
    pub shm: Shm,
    /// `--network container:X`: X's network (see `net::donor`).
    pub net: Option<crate::containers::net::Donor>,
    /// `--network none` or `host`: the directory of the /etc files written for it.
    pub etc_files: Option<PathBuf>,
}

/// Where a shareable container's /dev/shm tmpfs is mounted (beside its root filesystem,
/// unmounted with it).
pub fn shm_dir(containers: &Containers, id: &str) -> PathBuf {
    crate::containers::rootfs::shm_beside(&containers.rootfs(id))
}

/// Before a start: the sources, with a shareable container's /dev/shm mounted.
pub fn prepare(containers: &Containers, record: &ContainerRecord) -> Result<Sources> {
    let mut sources = sources(containers, record)?;
    sources.etc_files = crate::containers::net::own_files::write(containers, record)?;
    if record.host.namespaces.ipc == IpcMode::Shareable {
        crate::containers::rootfs::mount_shm(
            &shm_dir(containers, &record.id),
            record.host.namespaces.shm_bytes(),
        )?;
    }
    Ok(sources)
}

/// Container `id`, which must run, and its init's pid; `what` names the namespace.
fn running(containers: &Containers, id: &str, what: &str) -> Result<(ContainerRecord, i32)> {
    let wrap = |e: Error| match e {
        Error::NotFound(m) => {
            Error::InvalidArgument(format!("failed to join {what} namespace: {m}"))
        }
        other => other,
    };
    let c = containers.resolve(id).map_err(wrap)?;
    if c.state.status != Status::Running || c.state.pid <= 0 {
        return Err(Error::Conflict(format!(
            "failed to join {what} namespace: container {id} is not running"
        )));
    }
    let pid = c.state.pid;
    Ok((c, pid))
}

/// The /dev/shm a container shares with those that join its IPC namespace, as dockerd's
/// ShmPath: its own tmpfs when shareable, the host's, or its own donor's; None when private.
fn shared_shm(containers: &Containers, c: &ContainerRecord, depth: u8) -> Option<PathBuf> {
    match &c.host.namespaces.ipc {
        IpcMode::Shareable => Some(shm_dir(containers, &c.id)),
        IpcMode::Host => Some(PathBuf::from("/dev/shm")),
        IpcMode::Container(donor) if depth < 8 => {
            shared_shm(containers, &containers.resolve(donor).ok()?, depth + 1)
        }
        _ => None,
    }
}

/// The sources of `record`'s namespaces and /dev/shm now.
pub fn sources(containers: &Containers, record: &ContainerRecord) -> Result<Sources> {
    let ns = &record.host.namespaces;
    let pid = match &ns.pid {
        PidMode::Container(id) => {
            let (_, pid) = running(containers, id, "PID")?;
            Some(format!("/proc/{pid}/ns/pid"))
        }
        PidMode::Private | PidMode::Host => None,
    };
    let (ipc, shm) = match &ns.ipc {
        IpcMode::Private => (None, Shm::Tmpfs(ns.shm_bytes())),
        IpcMode::None => (None, Shm::Absent),
        IpcMode::Shareable => (None, Shm::Bind(shm_dir(containers, &record.id))),
        IpcMode::Host => {
            if !std::path::Path::new("/dev/shm").is_dir() {
                return Err(Error::InvalidArgument(
                    "/dev/shm is not mounted, but must be for --ipc=host".into(),
                ));
            }
            (None, Shm::Bind(PathBuf::from("/dev/shm")))
        }
        IpcMode::Container(id) => {
            let (donor, pid) = running(containers, id, "IPC")?;
            let shm = shared_shm(containers, &donor, 0).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "failed to join IPC namespace: container {id}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                ))
            })?;
            (Some(format!("/proc/{pid}/ns/ipc")), Shm::Bind(shm))
        }
    };
    let net = crate::containers::net::donor(containers, record)?;
    Ok(Sources {
        pid,
        ipc,
        shm,
        net,
        etc_files: None,
    })
}

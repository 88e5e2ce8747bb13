//! Namespaces held by a file instead of a process: a thread of its own unshares a new
//! namespace, binds `/proc/thread-self/ns/<kind>` onto a file and ends; the bind mount keeps
//! the namespace alive until it is unmounted. A Kubernetes pod's network, IPC and UTS
//! namespaces live this way (as CRI-O's pinns keeps them), so a pod costs no process.

use std::path::Path;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use crate::{Error, Result};

/// The kinds of namespace a file can hold without a process in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Net,
    Ipc,
    Uts,
}

impl Kind {
    fn proc_name(self) -> &'static str {
        match self {
            Kind::Net => "net",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
        }
    }

    fn flag(self) -> CloneFlags {
        match self {
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

/// A new namespace of `kind` held at `path`. A new UTS namespace gets `hostname`; a new
/// network namespace its loopback up (as every namespace Docker or a kubelet's runtime makes).
pub fn new_at(kind: Kind, path: &Path, hostname: Option<&str>) -> Result<()> {
    let path_owned = path.to_path_buf();
    let hostname = hostname.map(str::to_string);
    crate::netns::in_own_thread(path, "pin-namespace", move || {
        nix::sched::unshare(kind.flag())
            .map_err(|e| Error::Config(format!("a new {} namespace: {e}", kind.proc_name())))?;
        if let Some(name) = &hostname {
            nix::unistd::sethostname(name)
                .map_err(|e| Error::Config(format!("set the hostname {name:?}: {e}")))?;
        }
        if kind == Kind::Net {
            crate::loopback::loopback_up_here(&path_owned)?;
        }
        bind_current(kind, &path_owned)
    })
}

/// Bind this thread's namespace of `kind` onto the file `path` (made if missing).
pub(crate) fn bind_current(kind: Kind, path: &Path) -> Result<()> {
    let io = |source| Error::NamespaceFile {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let source = format!("/proc/thread-self/ns/{}", kind.proc_name());
    nix::mount::mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| Error::EnterNamespace {
        path: path.to_path_buf(),
        source,
    })
}

/// Let go of a held namespace (unmount and remove its file); absent is fine.
pub fn release(path: &Path) -> Result<()> {
    crate::endpoint::release_namespace(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn a_pinned_uts_namespace_keeps_its_hostname_and_is_released() {
        if !root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("uts");
        new_at(Kind::Uts, &path, Some("pod-a")).expect("pin");
        let host = std::fs::metadata("/proc/self/ns/uts")
            .expect("host ns")
            .ino();
        let pinned = std::fs::metadata(&path).expect("pinned").ino();
        assert_ne!(host, pinned, "a namespace of its own");
        let name = std::thread::spawn({
            let path = path.clone();
            move || {
                let f = std::fs::File::open(&path).expect("open");
                nix::sched::setns(&f, CloneFlags::CLONE_NEWUTS).expect("setns");
                nix::unistd::gethostname().expect("hostname")
            }
        })
        .join()
        .expect("thread");
        assert_eq!(name, "pod-a");
        release(&path).expect("release");
        assert!(!path.exists());
    }

    #[test]
    fn pinned_network_and_ipc_namespaces_are_new_ones() {
        if !root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        for (kind, name) in [(Kind::Net, "net"), (Kind::Ipc, "ipc")] {
            let path = dir.path().join(name);
            new_at(kind, &path, None).expect("pin");
            let host = std::fs::metadata(format!("/proc/self/ns/{name}"))
                .expect("host ns")
                .ino();
            assert_ne!(host, std::fs::metadata(&path).expect("pinned").ino());
            release(&path).expect("release");
        }
    }
}

//! Work inside another network namespace. setns of a network namespace moves only the
//! calling thread, so a thread of its own enters the namespace, does the work and ends: no
//! other thread of the caller ever runs there.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use crate::{Error, Result};

/// Run `work` in a thread `name` that has entered the network namespace at `netns` (a
/// namespace file, or a path such as `/proc/PID/ns/net`); `work` is given that path.
pub(crate) fn run_in<T: Send + 'static>(
    netns: &Path,
    name: &str,
    work: impl FnOnce(&Path) -> Result<T> + Send + 'static,
) -> Result<T> {
    let ns = File::open(netns).map_err(|source| Error::OpenNamespace {
        path: netns.to_path_buf(),
        source,
    })?;
    let inside: PathBuf = netns.to_path_buf();
    in_own_thread(netns, name, move || {
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|source| {
            Error::EnterNamespace {
                path: inside.clone(),
                source,
            }
        })?;
        work(&inside)
    })
}

/// Run `work` in a thread `name` of its own and wait for it (`netns`: for the errors).
pub(crate) fn in_own_thread<T: Send + 'static>(
    netns: &Path,
    name: &str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map_err(|e| Error::Thread {
            path: netns.to_path_buf(),
            message: e.to_string(),
        })?
        .join()
        .map_err(|_| Error::Thread {
            path: netns.to_path_buf(),
            message: "it panicked".into(),
        })?
}

/// A TCP connection to `addr` made from inside the network namespace at `netns` (a
/// forwarded port of a pod: its loopback is reachable only from inside). The socket stays
/// in that namespace; the calling thread does not move.
pub fn tcp_connect_in(netns: &Path, addr: std::net::SocketAddr) -> Result<std::net::TcpStream> {
    run_in(netns, "netns-connect", move |inside| {
        std::net::TcpStream::connect(addr).map_err(|source| Error::Connect {
            addr,
            path: inside.to_path_buf(),
            source,
        })
    })
}

//! The container's files: `docker cp` both ways (`/containers/{id}/archive`), `docker diff`,
//! `docker export` and `docker commit`, for running and stopped containers.
//!
//! Everything goes through [`root::ContainerRoot`]: paths are resolved inside the
//! container's tree from descriptors, never as host path strings, and the container's
//! binds are reached through their sources. Nothing of the container is executed or
//! loaded by berthd (no helper process chrooted into it, no library of its own): the tree
//! is read and written by berthd's own code through those descriptors.

mod archive;
mod changes;
mod commit;
mod root;

pub use archive::{Archive, PathStat};
pub use changes::{Change, ChangeKind};
pub use commit::CommitOptions;
pub(crate) use root::wait_for_copies;

use std::path::PathBuf;

use crate::containers::ContainerRecord;
use crate::error::{Error, Result};
use crate::Engine;

impl Engine {
    /// The image's snapshots under a container, top first (its overlay's lowerdirs),
    /// unpacked first where a commit left them to be.
    fn lower_dirs(&self, record: &ContainerRecord) -> Result<Vec<PathBuf>> {
        let image = self.images.resolve(&record.image)?;
        Ok(self.images.lower_dirs(&image.record.layers)?)
    }

    /// Open the tree of container `name` (which must exist); `live`: as a running
    /// container sees it, with its mounts (`docker cp`), else its overlay and binds.
    fn container_root(
        &self,
        name: &str,
        live: bool,
    ) -> Result<(ContainerRecord, root::ContainerRoot)> {
        let record = self.containers.resolve(name)?;
        let lower = self.lower_dirs(&record)?;
        let root = root::ContainerRoot::open(&self.containers, &record, &lower, live)?;
        Ok((record, root))
    }
}

/// The mount points the runtime creates in a container's tree (its default mounts, its
/// binds and tmpfs mounts, the init binary), relative to the root: what dockerd keeps in
/// a separate init layer, and so leaves out of `diff` and `commit` while they are empty.
fn mount_points(record: &ContainerRecord) -> Vec<PathBuf> {
    // The /etc files every container gets mounted (its endpoint's, a donor's, a pod's, or
    // those of `none` and `host`).
    let mut dests: Vec<String> = [
        "/proc",
        "/dev",
        "/sys",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
    ]
    .map(String::from)
    .to_vec();
    dests.extend(
        record
            .host
            .mounts
            .iter()
            .filter_map(|m| m["destination"].as_str().map(String::from)),
    );
    if record.host.init {
        dests.push(crate::containers::spec::INIT_PATH.to_string());
    }
    dests
        .iter()
        .map(|d| PathBuf::from(d.trim_start_matches('/')))
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// An image-store error about a `docker cp` archive, as the client should read it.
fn copy_error(e: berth_image::Error) -> Error {
    use berth_image::Error as I;
    match e {
        I::UnsafeEntry { path, why } => {
            Error::InvalidArgument(format!("refused archive entry {path:?}: {why}"))
        }
        I::InvalidEntry { path, why } => {
            Error::InvalidArgument(format!("archive entry {path:?}: {why}"))
        }
        I::InvalidArchive(m) => Error::InvalidArgument(format!("invalid archive: {m}")),
        other => Error::Image(other),
    }
}

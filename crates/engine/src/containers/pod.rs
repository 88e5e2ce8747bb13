//! A container in a Kubernetes pod (made through the CRI): it joins the pod's namespaces,
//! held as files by the CRI (no pause process), shares the pod's /etc files and logs in the
//! kubelet's CRI format where the kubelet says. Such containers are kept apart from
//! Docker's: the Docker API neither lists nor changes them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ContainerRecord;
use crate::error::{Error, Result};
use crate::Engine;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PodLink {
    /// The pod sandbox's id.
    pub sandbox: String,
    /// The pod's network namespace file (None: the node's network).
    pub net: Option<PathBuf>,
    /// The pod's IPC namespace file (None: the node's).
    pub ipc: Option<PathBuf>,
    /// The pod's UTS namespace file (None: the node's).
    pub uts: Option<PathBuf>,
    /// The node's pid namespace.
    pub pid_host: bool,
    /// The pod's shared pid namespace (its holder's, `/proc/PID/ns/pid`); None with
    /// `pid_host` false: the container's own.
    pub pid: Option<PathBuf>,
    /// The pod's hosts, hostname and resolv.conf.
    pub etc_dir: Option<PathBuf>,
    /// The pod's hostname.
    pub hostname: String,
    /// The pod's /dev/shm, shared by its containers (None: each container's own, or the
    /// node's with the node's IPC).
    #[serde(default)]
    pub shm: Option<PathBuf>,
    /// The pod's cgroup (the kubelet's, e.g. `/kubepods/burstable/pod<uid>`); empty: none.
    pub cgroup_parent: String,
    /// The kubelet's masked and read-only paths (None: Docker's defaults; empty: none, as
    /// for a privileged container or procMount Unmasked).
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// OCI `linux.resources` entries Docker's HostConfig has no field for (the CRI's
    /// `hugepageLimits` and `unified`), merged into the container's resources.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub resources: serde_json::Map<String, serde_json::Value>,
    /// The CRI-format log the kubelet reads (None: not kept).
    pub log_path: Option<PathBuf>,
}

impl ContainerRecord {
    /// Made through the CRI, for a pod.
    pub fn in_pod(&self) -> bool {
        self.pod.is_some()
    }
}

impl PodLink {
    /// The OCI namespaces of a pod's container: a mount namespace of its own, the pod's
    /// network, IPC and UTS (or the node's), a pid namespace of its own or the node's.
    pub(crate) fn namespaces(&self) -> Vec<serde_json::Value> {
        use serde_json::json;
        let mut out = vec![json!({"type": "mount"})];
        match (&self.pid, self.pid_host) {
            (_, true) => {}
            (Some(path), false) => out.push(json!({"type": "pid", "path": path})),
            (None, false) => out.push(json!({"type": "pid"})),
        }
        for (kind, path) in [
            ("network", &self.net),
            ("ipc", &self.ipc),
            ("uts", &self.uts),
        ] {
            if let Some(path) = path {
                out.push(json!({"type": kind, "path": path}));
            }
        }
        out
    }
}

/// The tmpfs a pod's containers share as /dev/shm (Docker's default size), at `dir`.
pub fn mount_pod_shm(dir: &std::path::Path) -> Result<()> {
    super::rootfs::mount_shm(dir, super::host::namespaces::DEFAULT_SHM_SIZE)
}

/// Let go of a pod's /dev/shm (absent is fine).
pub fn unmount_pod_shm(dir: &std::path::Path) -> Result<()> {
    super::rootfs::umount_quiet(dir)
}

impl Engine {
    /// Create a container of a pod: the body as the Docker API's create takes it (its
    /// network mode `none` or `host`), the pod's namespaces and files from `pod`.
    pub fn create_in_pod(
        &self,
        body: &super::request::CreateBody,
        name: &str,
        pod: PodLink,
    ) -> Result<ContainerRecord> {
        if let Some(dir) = pod.log_path.as_ref().and_then(|p| p.parent()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Io(format!("create {}: {e}", dir.display())))?;
        }
        self.create_with(body, Some(name), None, Some(pod))
            .map(|(record, _)| record)
    }
}

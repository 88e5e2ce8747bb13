//! Containers nothing supervises any more. A shim that dies without having the runtime
//! delete its container (SIGKILL, the OOM killer) leaves it running, its init reparented
//! away from berth, its cgroups and runtime state in place. berthd ends such a container
//! through its runtime (`delete --force` kills what is left in it, then removes its cgroups
//! and state): when it sees a shim end, and when it starts, for every container a runtime
//! holds that no live shim serves, recorded or not (an older berthd's `rm -f` forgot those).
//! A start also unmounts the root filesystems of containers that do not run (a start that
//! a SIGKILL of berthd interrupted leaves its overlay mounted).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{Containers, Paths, Status};
use crate::Engine;

/// A container's OCI runtime, as berthd calls it to end an orphan.
#[derive(Debug, Clone)]
pub(super) struct Runtime {
    binary: PathBuf,
    /// Its --root, one directory per container named by its id (runc's layout, which
    /// berth-runtime and crun share).
    root: PathBuf,
}

impl Runtime {
    /// Runtime `name` (empty: the default) as berthd knows it; None if it is not configured.
    pub(super) fn of(paths: &Paths, name: &str) -> Option<Runtime> {
        Some(Runtime {
            binary: paths.binary(name).ok()?.clone(),
            root: paths.state_root(name),
        })
    }

    /// Kill and delete container `id` if the runtime still holds it; whether it did.
    pub(super) fn end(&self, id: &str) -> bool {
        if !self.root.join(id).exists() {
            return false;
        }
        let out = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match out {
            Ok(out) if out.status.success() => {
                tracing::warn!(container = %id, "ended a container that its shim left behind")
            }
            Ok(out) => tracing::error!(
                container = %id,
                runtime = %self.binary.display(),
                "cannot end a container that its shim left behind: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => tracing::error!(
                container = %id,
                "cannot run {} to end a container that its shim left behind: {e}",
                self.binary.display()
            ),
        }
        true
    }
}

/// The exit record of a container berthd killed because its shim died without one.
pub(super) fn killed_exit() -> Value {
    serde_json::json!({
        "exit_code": 128 + libc::SIGKILL,
        "error": "the container's shim died: berthd killed the container",
    })
}

/// Whether `name` is a container id as berth makes them (64 hex digits): a runtime's root
/// holds other things too (berth-runtime's cache).
fn is_container_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Unmount the root filesystems of containers that do not run.
fn unmount_idle(containers: &Containers) {
    for r in containers.list() {
        if r.state.status == Status::Running {
            continue;
        }
        if let Err(e) = super::rootfs::unmount(&containers.rootfs(&r.id)) {
            tracing::warn!(container = %r.id, "{e}");
        }
    }
}

impl Engine {
    /// At start, once the shims that still run are adopted (`adopted`: their containers):
    /// end whatever else the runtimes hold, and unmount what does not run.
    pub(super) fn end_orphans(&self, adopted: &HashSet<String>) {
        unmount_idle(&self.containers);
        let Some(paths) = &self.paths else {
            return;
        };
        for name in paths.runtimes.keys() {
            let Some(runtime) = Runtime::of(paths, name) else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(&runtime.root) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(id) = name.to_str().filter(|n| is_container_id(n)) else {
                    continue;
                };
                if !adopted.contains(id) {
                    runtime.end(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_container_ids_are_taken_for_containers() {
        assert!(is_container_id(&"ab12".repeat(16)));
        assert!(!is_container_id("@cache"));
        assert!(!is_container_id(&"xy12".repeat(16)));
        assert!(!is_container_id(&"ab12".repeat(15)));
    }
}

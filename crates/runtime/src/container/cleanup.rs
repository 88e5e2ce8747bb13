//! Undo a failed `create`: no state, mount or process may be left behind.

use std::path::PathBuf;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// Removes the state directory and kills the processes of a create that did not finish.
/// Mounts need no cleanup when they live in the container's mount namespace, which dies
/// with its last process; those made in the runtime's own namespace are detached.
pub(super) struct CreateGuard {
    pub dir: PathBuf,
    pub stage1: Option<Pid>,
    pub init: Option<Pid>,
    /// Init is our child (foreground `run`), so we reap it too.
    pub init_is_child: bool,
    pub cgroup: Option<berth_cgroups::Cgroup>,
    /// The container shares our mount namespace: what was under its rootfs before.
    pub host_mounts: Option<super::host_mounts::Before>,
    armed: bool,
}

impl CreateGuard {
    pub fn new(dir: PathBuf, init_is_child: bool) -> Self {
        CreateGuard {
            dir,
            stage1: None,
            init: None,
            init_is_child,
            cgroup: None,
            host_mounts: None,
            armed: true,
        }
    }

    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.init {
            let _ = kill(pid, Signal::SIGKILL);
        }
        if let Some(pid) = self.stage1 {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let (Some(pid), true) = (self.init, self.init_is_child) {
            let _ = waitpid(pid, None);
        }
        if let Some(cgroup) = &self.cgroup {
            for pid in cgroup.pids().unwrap_or_default() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = cgroup.remove();
        }
        if let Some(before) = &self.host_mounts {
            before.undo();
        }
        let _ = crate::intel_rdt::remove(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

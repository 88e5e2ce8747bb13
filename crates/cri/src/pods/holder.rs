//! The pid 1 of a pod's shared pid namespace: berth-pause, beside berth-shim.

use std::process::{Command, Stdio};

use crate::error::{CriError, Result};
use crate::Cri;

/// Start a holder; its pid (in berthd's namespace). berthd is a subreaper: the holder is
/// re-parented to it and reaped by its reaper when it ends.
pub(super) fn start(cri: &Cri) -> Result<i32> {
    let paths = cri.engine.paths.as_ref().ok_or_else(|| {
        CriError::FailedPrecondition(
            "berthd found no shim: pods cannot share a pid namespace".into(),
        )
    })?;
    let binary = paths.shim.with_file_name("berth-pause");
    let out = Command::new(&binary)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| CriError::Io {
            what: format!("run {}", binary.display()),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    match (out.status.success(), text.trim().parse::<i32>()) {
        (true, Ok(pid)) if pid > 0 => Ok(pid),
        _ => Err(CriError::Network(format!(
            "the pod's pid namespace: {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// End a holder (SIGKILL: every process of the namespace goes with it, as they must when
/// a pod stops). A pid that is no longer a berth-pause is left alone.
pub(super) fn stop(pid: i32) {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "berth-pause" {
        return;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The holder's pid namespace, for the pod's containers to join.
pub(crate) fn namespace_of(pid: i32) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/{pid}/ns/pid"))
}

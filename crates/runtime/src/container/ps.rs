//! `ps`: the processes of a container, from its cgroup.

use crate::error::Result;
use crate::state::StateRoot;

/// A process of the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub command: String,
}

/// Pids (in the runtime's pid namespace) and command lines of the container's processes.
pub fn ps(root: &StateRoot, id: &str) -> Result<Vec<ProcessInfo>> {
    let container = root.load(id)?;
    let mut pids = match container.cgroup()? {
        Some(cgroup) => cgroup.pids()?,
        None => Vec::new(),
    };
    pids.sort_unstable();
    Ok(pids
        .into_iter()
        .map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let command = raw
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            ProcessInfo { pid, command }
        })
        .collect())
}

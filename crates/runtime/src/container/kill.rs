//! `kill`: signal init, or every process of the container.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use berth_cgroups::Cgroup;

use crate::error::{Error, Result};
use crate::state::{Container, StateRoot, Status};

pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<()> {
    let container = root.load(id)?;
    let status = container.status();
    let stored = match (&container.stored, status) {
        (Some(s), Status::Created | Status::Running | Status::Paused) => s,
        _ => {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.to_string(),
                action: "container not running",
            })
        }
    };
    if all {
        for pid in processes(&container, container.cgroup()?)? {
            send(pid, signal)?;
        }
        Ok(())
    } else {
        send(stored.pid, signal)
    }
}

fn send(pid: i32, signal: i32) -> Result<()> {
    // Real-time signals have no `Signal` variant: use the raw number.
    // SAFETY: kill(2) only sends a signal; the number was validated by `signal::parse`.
    let rc = unsafe { libc::kill(pid, signal) };
    match nix::errno::Errno::result(rc) {
        Ok(_) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(Error::sys(format!("kill {pid} with signal {signal}"), e)),
    }
}

/// Every process of the container: its cgroup's members, init first.
pub(crate) fn processes(container: &Container, cgroup: Option<&Cgroup>) -> Result<Vec<i32>> {
    let Some(stored) = &container.stored else {
        return Ok(Vec::new());
    };
    let mut out = vec![stored.pid];
    if let Some(cgroup) = cgroup {
        out.extend(cgroup.pids()?.into_iter().filter(|p| *p != stored.pid));
    }
    Ok(out)
}

/// SIGKILL every process of the container and wait until init is gone and the cgroup is
/// empty (processes leave their cgroup when they exit, before anyone reaps them).
pub(crate) fn kill_and_wait(container: &Container, cgroup: Option<&Cgroup>) -> Result<()> {
    let Some(stored) = &container.stored else {
        return Ok(());
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_micros(200);
    loop {
        let alive: Vec<i32> = processes(container, cgroup)?
            .into_iter()
            .filter(|p| {
                *p != stored.pid || crate::state::process_alive(stored.pid, stored.init_start_time)
            })
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Init(format!(
                "container {} did not die after SIGKILL: {alive:?}",
                container.id
            )));
        }
        for pid in alive {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // A frozen task dies only once thawed.
        if let Some(c) = cgroup.filter(|c| c.is_frozen().unwrap_or(false)) {
            c.thaw()?;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

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
    let mut out: Vec<i32> = container.stored.iter().map(|s| s.pid).collect();
    if let Some(cgroup) = cgroup {
        let members = cgroup.pids()?;
        // On cgroup v1 a zombie stays listed until it is reaped: it is gone for our purposes.
        let live = |p: &i32| {
            crate::state::process_stat(*p).is_some_and(|(state, _)| state != 'Z' && state != 'X')
        };
        out.extend(
            members
                .into_iter()
                .filter(|p| Some(*p) != container.stored.as_ref().map(|s| s.pid) && live(p)),
        );
    }
    Ok(out)
}

/// SIGKILL every process of the container and wait until init is gone and the cgroup is
/// empty (processes leave their cgroup when they exit, before anyone reaps them).
pub(crate) fn kill_and_wait(container: &Container, cgroup: Option<&Cgroup>) -> Result<()> {
    // Init is judged by its start time too (its pid may have been reused); other members of
    // the cgroup are there as long as the kernel lists them.
    let init_alive = |pid: i32| {
        container
            .stored
            .as_ref()
            .is_none_or(|s| s.pid != pid || crate::state::process_alive(s.pid, s.init_start_time))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_micros(200);
    loop {
        let alive: Vec<i32> = processes(container, cgroup)?
            .into_iter()
            .filter(|p| init_alive(*p))
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

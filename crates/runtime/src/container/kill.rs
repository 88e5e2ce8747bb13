//! `kill`: signal init, or every process of the container.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::state::{Container, StateRoot, Status};

pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<()> {
    let container = root.load(id)?;
    let status = container.status();
    let stored = match (&container.stored, status) {
        (Some(s), Status::Created | Status::Running) => s,
        _ => {
            return Err(Error::WrongState {
                id: id.into(),
                status: status.to_string(),
                action: "container not running",
            })
        }
    };
    if all {
        if !stored.own_pid_namespace {
            return Err(Error::Unsupported {
                field: "kill --all".into(),
                why: "without a pid namespace of its own, the container's processes are found through its cgroup, which comes with cgroup support".into(),
            });
        }
        for pid in processes(&container)? {
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

/// Every process in the pid namespace of the container's init (init first).
pub(crate) fn processes(container: &Container) -> Result<Vec<i32>> {
    let Some(stored) = &container.stored else {
        return Ok(Vec::new());
    };
    let ns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(ns) = ns_of(stored.pid) else {
        return Ok(Vec::new());
    };
    let mut out = vec![stored.pid];
    let entries = std::fs::read_dir("/proc").map_err(|e| Error::io("read", "/proc", e))?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != stored.pid && ns_of(pid).as_ref() == Some(&ns) {
            out.push(pid);
        }
    }
    Ok(out)
}

/// SIGKILL the container and wait until init is gone.
pub(crate) fn kill_and_wait(container: &Container) -> Result<()> {
    let Some(stored) = &container.stored else {
        return Ok(());
    };
    let targets = if stored.own_pid_namespace {
        processes(container)?
    } else {
        vec![stored.pid]
    };
    for pid in targets {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_micros(200);
    while crate::state::process_alive(stored.pid, stored.init_start_time) {
        if std::time::Instant::now() > deadline {
            return Err(Error::Init(format!(
                "container {} did not die after SIGKILL",
                container.id
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
    Ok(())
}

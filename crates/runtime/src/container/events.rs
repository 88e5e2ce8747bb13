//! `events`: the container's resource usage every interval, and its OOM events as they
//! happen, in runc's JSON shape. Ends when the container stops.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;

use crate::error::{Error, Result, SysContext};
use crate::state::{StateRoot, Status};

/// One line of `events` output.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    Stats {
        id: String,
        data: Box<berth_cgroups::Stats>,
    },
    Oom {
        id: String,
    },
}

/// How often to check that the container still runs while waiting for the next report.
const LIVENESS_CHECK: Duration = Duration::from_millis(250);

fn cgroup_of(container: &crate::state::Container) -> Result<&berth_cgroups::Cgroup> {
    container
        .cgroup()?
        .ok_or_else(|| Error::Init(format!("container {:?} has no cgroup", container.id)))
}

/// The container's usage now.
pub fn stats(root: &StateRoot, id: &str) -> Result<Event> {
    let container = root.load(id)?;
    running_or_created(&container)?;
    Ok(Event::Stats {
        id: id.into(),
        data: Box::new(cgroup_of(&container)?.stats()?),
    })
}

fn running_or_created(container: &crate::state::Container) -> Result<()> {
    match container.status() {
        Status::Stopped | Status::Creating => Err(Error::WrongState {
            id: container.id.clone(),
            status: container.status().to_string(),
            action: "events need a created, running or paused container",
        }),
        _ => Ok(()),
    }
}

/// Report to `emit` until the container stops (Ok) or `emit` fails.
pub fn events(
    root: &StateRoot,
    id: &str,
    interval: Duration,
    emit: &mut dyn FnMut(&Event) -> std::io::Result<()>,
) -> Result<()> {
    let mut emit = |e: &Event| emit(e).map_err(|err| Error::io("write", "events", err));
    if interval.is_zero() {
        return Err(Error::Usage("--interval must be above zero".into()));
    }
    let container = root.load(id)?;
    running_or_created(&container)?;
    let cgroup = cgroup_of(&container)?;
    let mut oom = match cgroup.watch_oom() {
        Ok(w) => Some(w),
        // No memory controller in the cgroup (v2 without it delegated): no OOM to report.
        Err(berth_cgroups::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
    let mut next_stats = Instant::now();
    loop {
        let new_ooms = match &mut oom {
            Some(w) => w.take()?,
            None => 0,
        };
        for _ in 0..new_ooms {
            emit(&Event::Oom { id: id.into() })?;
        }
        if container.status() == Status::Stopped {
            return Ok(());
        }
        let now = Instant::now();
        if now >= next_stats {
            emit(&Event::Stats {
                id: id.into(),
                data: Box::new(cgroup.stats()?),
            })?;
            next_stats = now + interval;
        }
        let wait = next_stats
            .saturating_duration_since(Instant::now())
            .min(LIVENESS_CHECK);
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        let mut fds: Vec<PollFd> = oom
            .iter()
            .map(|w| PollFd::new(w.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "poll for OOM events".into()),
        }
    }
}

//! OOM notifications of a cgroup, as a descriptor to poll: v1's eventfd registered on
//! memory.oom_control, or on v2 an inotify watch of memory.events and its oom_kill count.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::error::{Error, Result};
use crate::layout::Version;
use crate::Cgroup;

/// Watches one cgroup for OOM events. Poll [`AsFd::as_fd`] for readability, then call
/// [`OomWatch::take`].
pub struct OomWatch {
    source: Source,
}

enum Source {
    V1 {
        eventfd: EventFd,
        /// Registered with cgroup.event_control; the registration lives as long as it is open.
        _control: File,
    },
    V2 {
        inotify: Inotify,
        events: PathBuf,
        seen: u64,
    },
}

fn nix_err(op: &'static str, path: impl Into<PathBuf>, e: Errno) -> Error {
    Error::io(op, path, std::io::Error::from(e))
}

impl Cgroup {
    /// Start watching for OOM events; only those after this call are reported.
    pub fn watch_oom(&self) -> Result<OomWatch> {
        let h = self
            .layout()
            .for_controller("memory")
            .ok_or(Error::NoHierarchy)?;
        let dir = h.dir_of(self.path());
        let source = match h.version {
            Version::V1 => {
                let control_path = dir.join("memory.oom_control");
                let control =
                    File::open(&control_path).map_err(|e| Error::io("open", &control_path, e))?;
                let eventfd = EventFd::from_value_and_flags(
                    0,
                    EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
                )
                .map_err(|e| nix_err("eventfd for", &control_path, e))?;
                let register = dir.join("cgroup.event_control");
                let line = format!("{} {}", eventfd.as_fd().as_raw_fd(), control.as_raw_fd());
                std::fs::write(&register, line).map_err(|e| Error::io("write", &register, e))?;
                Source::V1 {
                    eventfd,
                    _control: control,
                }
            }
            Version::V2 => {
                let events = dir.join("memory.events");
                let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                    .map_err(|e| nix_err("inotify for", &events, e))?;
                inotify
                    .add_watch(&events, AddWatchFlags::IN_MODIFY)
                    .map_err(|e| nix_err("watch", &events, e))?;
                let seen = oom_kills(&events)?;
                Source::V2 {
                    inotify,
                    events,
                    seen,
                }
            }
        };
        Ok(OomWatch { source })
    }

    /// How many processes the OOM killer has killed in this cgroup so far (the `oom_kill`
    /// line of v1's memory.oom_control or v2's memory.events).
    pub fn oom_kills(&self) -> Result<u64> {
        let h = self
            .layout()
            .for_controller("memory")
            .ok_or(Error::NoHierarchy)?;
        let file = match h.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        oom_kills(&h.dir_of(self.path()).join(file))
    }
}

/// The oom_kill count of a v1 memory.oom_control or v2 memory.events file.
fn oom_kills(events: &std::path::Path) -> Result<u64> {
    let text = std::fs::read_to_string(events).map_err(|e| Error::io("read", events, e))?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0))
}

impl OomWatch {
    /// The number of OOM events since the last call (0 if none); never blocks.
    pub fn take(&mut self) -> Result<u64> {
        match &mut self.source {
            Source::V1 { eventfd, .. } => match eventfd.read() {
                Ok(n) => Ok(n),
                Err(Errno::EAGAIN) => Ok(0),
                Err(e) => Err(nix_err("read", "OOM eventfd", e)),
            },
            Source::V2 {
                inotify,
                events,
                seen,
            } => {
                loop {
                    match inotify.read_events() {
                        Ok(batch) if !batch.is_empty() => continue,
                        Ok(_) | Err(Errno::EAGAIN) => break,
                        Err(e) => return Err(nix_err("read inotify for", events.clone(), e)),
                    }
                }
                let now = match oom_kills(events) {
                    Ok(n) => n,
                    // The cgroup was removed: nothing more will happen.
                    Err(Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        *seen
                    }
                    Err(e) => return Err(e),
                };
                let new = now.saturating_sub(*seen);
                *seen = now;
                Ok(new)
            }
        }
    }
}

impl AsFd for OomWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.source {
            Source::V1 { eventfd, .. } => eventfd.as_fd(),
            Source::V2 { inotify, .. } => inotify.as_fd(),
        }
    }
}

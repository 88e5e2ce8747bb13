//! Restart policies: no, always, unless-stopped, on-failure[:N], applied when a container
//! exits and when berthd starts.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::request::RestartPolicyConfig;
use super::{ContainerRecord, Containers, Status};
use crate::error::{Error, Result};
use crate::Engine;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestartPolicy {
    /// "" or "no", "always", "unless-stopped", "on-failure".
    pub name: String,
    pub max_retries: u32,
}

impl RestartPolicy {
    pub fn parse(p: &RestartPolicyConfig) -> Result<RestartPolicy> {
        let name = p.name.clone();
        let max = p.maximum_retry_count;
        match name.as_str() {
            "" | "no" | "always" | "unless-stopped" if max != 0 => Err(Error::InvalidArgument(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .into(),
            )),
            "" | "no" | "always" | "unless-stopped" => Ok(RestartPolicy {
                name,
                max_retries: 0,
            }),
            "on-failure" if max < 0 => Err(Error::InvalidArgument(
                "invalid restart policy: maximum retry count cannot be negative".into(),
            )),
            "on-failure" => Ok(RestartPolicy {
                name,
                max_retries: u32::try_from(max).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "invalid restart policy: maximum retry count {max} is too large"
                    ))
                })?,
            }),
            other => Err(Error::InvalidArgument(format!(
                "invalid restart policy {other:?}"
            ))),
        }
    }

    pub fn is_none(&self) -> bool {
        self.name.is_empty() || self.name == "no"
    }

    /// Whether a container that just exited should start again.
    pub(crate) fn after_exit(&self, r: &ContainerRecord) -> bool {
        if r.manually_stopped {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                r.state.exit_code != 0
                    && (self.max_retries == 0 || r.restart_count < self.max_retries)
            }
            _ => false,
        }
    }

    /// Whether a stopped container starts again when berthd starts.
    fn at_daemon_start(&self, r: &ContainerRecord) -> bool {
        match self.name.as_str() {
            "always" => true,
            "unless-stopped" => !r.manually_stopped,
            _ => false,
        }
    }
}

/// Docker's back-off: 100 ms, doubling, at most a minute.
fn delay(count: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << count.min(10))).min(Duration::from_secs(60))
}

/// Restarts by policy whose back-off has ended and whose start is under way. A restart in
/// its back-off is the record's `restarting` alone; this set lets a stop, kill or removal
/// that comes during the start wait for it, then act on the container it started.
#[derive(Default)]
pub(crate) struct Starting {
    ids: Mutex<HashSet<String>>,
    done: Condvar,
}

impl Starting {
    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The back-off of `id` has ended: whether its start goes on (not cancelled meanwhile).
    fn begin(&self, containers: &Containers, id: &str) -> bool {
        let mut ids = self.lock();
        let go = containers
            .resolve(id)
            .is_ok_and(|r| r.state.restarting && !r.manually_stopped);
        if go {
            ids.insert(id.to_string());
        }
        go
    }

    fn finish(&self, id: &str) {
        self.lock().remove(id);
        self.done.notify_all();
    }

    /// A user's stop, kill or removal of a restarting container cancels its restart (moby's
    /// ExitOnNext): true when it was in its back-off (it is now exited, and marked as
    /// stopped by the user); false when its start was under way, which is waited for (the
    /// container then runs, or failed to start).
    pub(crate) fn cancel(&self, containers: &Containers, id: &str) -> bool {
        let mut ids = self.lock();
        while ids.contains(id) {
            ids = self.done.wait(ids).unwrap_or_else(|e| e.into_inner());
        }
        if !containers.resolve(id).is_ok_and(|r| r.state.restarting) {
            return false;
        }
        let cancelled = containers.update(id, |r| {
            r.state.restarting = false;
            r.manually_stopped = true;
        });
        if let Err(e) = cancelled {
            // Cancelled in memory all the same; only the record on disk is behind.
            tracing::warn!("container {id}: {e}");
        }
        true
    }
}

/// Start `id` again after its back-off, unless a stop, kill or removal cancels it meanwhile.
fn restart(engine: &Engine, id: &str, count: u32) {
    // The record changes when the restart is cancelled, which ends the wait early.
    engine
        .containers
        .wait_until(id, delay(count.saturating_sub(1)), |r| {
            r.is_none_or(|r| !r.state.restarting)
        });
    restart_now(engine, id);
}

/// Start a restarting container, unless its restart was cancelled.
fn restart_now(engine: &Engine, id: &str) {
    if !engine.containers.restarts.begin(&engine.containers, id) {
        return;
    }
    let started = engine.start_restarting(id);
    engine.containers.restarts.finish(id);
    if let Err(e) = started {
        tracing::warn!("restarting {id}: {e}");
    }
}

impl Engine {
    /// Apply restart policies from now on: after each exit, and now to the containers a
    /// policy says to start with the daemon.
    pub fn enable_restarts(engine: &Arc<Engine>) {
        let weak: Weak<Engine> = Arc::downgrade(engine);
        engine.containers.set_exit_hook(Box::new(move |id: &str| {
            let Some(engine) = weak.upgrade() else { return };
            let Ok(r) = engine.containers.resolve(id) else {
                return;
            };
            // Decided as the exit was recorded (lifecycle's `record_exit`).
            if r.state.restarting {
                let id = id.to_string();
                std::thread::spawn(move || restart(&engine, &id, r.restart_count));
            }
        }));
        for r in engine.containers.list() {
            if r.state.restarting {
                // A back-off that a stop of berthd interrupted: its start is now.
                restart_now(engine, &r.id);
            } else if r.state.status == Status::Exited && r.restart.at_daemon_start(&r) {
                if let Err(e) = engine.start_container(&r.id) {
                    tracing::warn!("starting {} (restart policy {}): {e}", r.id, r.restart.name);
                }
            }
        }
    }
}

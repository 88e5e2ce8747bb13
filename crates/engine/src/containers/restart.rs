//! Restart policies: no, always, unless-stopped, on-failure[:N], applied when a container
//! exits and when berthd starts.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::request::RestartPolicyConfig;
use super::{ContainerRecord, Status};
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
    fn after_exit(&self, r: &ContainerRecord) -> bool {
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

fn restart(engine: &Engine, id: &str) {
    let Ok(record) = engine.containers.update(id, |r| r.restart_count += 1) else {
        return;
    };
    std::thread::sleep(delay(record.restart_count.saturating_sub(1)));
    // The user may have stopped or removed it meanwhile.
    match engine.containers.resolve(id) {
        Ok(r) if !r.manually_stopped && r.state.status == Status::Exited => {}
        _ => return,
    }
    if let Err(e) = engine.start_container(id) {
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
            if r.restart.after_exit(&r) {
                let id = id.to_string();
                std::thread::spawn(move || restart(&engine, &id));
            }
        }));
        for r in engine.containers.list() {
            if r.state.status == Status::Exited && r.restart.at_daemon_start(&r) {
                if let Err(e) = engine.start_container(&r.id) {
                    tracing::warn!("starting {} (restart policy {}): {e}", r.id, r.restart.name);
                }
            }
        }
    }
}

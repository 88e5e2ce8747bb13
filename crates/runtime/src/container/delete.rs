//! `delete`: destroy what `create` made, then run the poststop hooks.

use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::state::{Container, StateRoot, Status};

pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<()> {
    let container = match root.load(id) {
        Err(Error::NotFound(_)) if force => return Ok(()),
        other => other?,
    };
    let _lock = container.lock()?;
    delete_container(&container, force)
}

/// Delete a container already loaded (and locked, or private to the caller).
pub(super) fn delete_container(container: &Container, force: bool) -> Result<()> {
    let id = &container.id;
    let status = container.status();
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(Error::WrongState {
            id: id.clone(),
            status: status.to_string(),
            action: "cannot delete a container that is not stopped (use --force)",
        });
    }
    // runc deletes a created container without --force: nothing of the user's runs yet.
    // A stopped one may still hold processes that init left behind: kill those too.
    let cgroup = container.cgroup()?;
    super::kill::kill_and_wait(container, cgroup)?;
    if let Some(cgroup) = cgroup {
        cgroup.remove()?;
    }
    super::host_mounts::remove(&container.dir)?;
    // Only a config with intelRdt (or a record lost half-way) may have left a group.
    let rdt = container.stored.as_ref().map(|s| {
        s.config
            .linux()
            .as_ref()
            .is_some_and(|l| l.intel_rdt().is_some())
    });
    if rdt != Some(false) {
        crate::intel_rdt::remove(&container.dir)?;
    }
    std::fs::remove_dir_all(&container.dir).map_err(|e| Error::io("remove", &container.dir, e))?;
    if let Some(stored) = &container.stored {
        let state = container.spec_state(Status::Stopped);
        hooks::run_all_warn(
            hooks::of_kind(stored.config.hooks().as_ref(), HookKind::Poststop),
            &state,
        );
    }
    Ok(())
}

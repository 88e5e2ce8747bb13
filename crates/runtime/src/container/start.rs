//! `start`: release init from the exec barrier.

use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::state::{Container, StateRoot, Status};

pub fn start(root: &StateRoot, id: &str) -> Result<()> {
    let container = root.load(id)?;
    let _lock = container.lock()?;
    start_container(&container)
}

/// Start a container already loaded (and locked, or private to the caller).
pub(super) fn start_container(container: &Container) -> Result<()> {
    let id = &container.id;
    let status = container.status();
    if status != Status::Created {
        return Err(Error::WrongState {
            id: id.clone(),
            status: status.to_string(),
            action: "only a created container can be started",
        });
    }
    let barrier = crate::barrier::path(&container.dir);
    let released = crate::barrier::release(&container.dir);
    // Whatever happened, init has left the barrier: the container is running or stopped.
    std::fs::remove_file(&barrier).map_err(|e| Error::io("remove", &barrier, e))?;
    released?;
    // release returned at the close of init's end of the barrier, which the exec itself
    // does (close-on-exec): the user's program is executed, as poststart requires.
    if let Some(stored) = &container.stored {
        let state = container.spec_state(Status::Running);
        hooks::run_all_warn(
            hooks::of_kind(stored.config.hooks().as_ref(), HookKind::Poststart),
            &state,
        );
    }
    Ok(())
}

//! `pause` and `resume`: freeze and thaw the container's cgroup.

use crate::error::{Error, Result};
use crate::state::{StateRoot, Status};

fn change(
    root: &StateRoot,
    id: &str,
    from: Status,
    action: &'static str,
    freeze: bool,
) -> Result<()> {
    let container = root.load(id)?;
    let _lock = container.lock()?;
    let status = container.status();
    if status != from {
        return Err(Error::WrongState {
            id: id.into(),
            status: status.to_string(),
            action,
        });
    }
    let cgroup = container
        .cgroup()?
        .ok_or_else(|| Error::Init(format!("container {id:?} has no cgroup")))?;
    if freeze {
        cgroup.freeze()?;
    } else {
        cgroup.thaw()?;
    }
    Ok(())
}

pub fn pause(root: &StateRoot, id: &str) -> Result<()> {
    change(
        root,
        id,
        Status::Running,
        "only a running container can be paused",
        true,
    )
}

pub fn resume(root: &StateRoot, id: &str) -> Result<()> {
    change(
        root,
        id,
        Status::Paused,
        "only a paused container can be resumed",
        false,
    )
}

//! `update`: change the resources of a created, running or paused container, and record
//! them in its state.

use oci_spec::runtime::{LinuxResources, Spec};

use crate::error::{Error, Result};
use crate::state::{Container, StateRoot, Status};

pub fn update(root: &StateRoot, id: &str, resources: &LinuxResources) -> Result<()> {
    let container = root.load(id)?;
    let _lock = container.lock()?;
    let status = container.status();
    let (Some(stored), Status::Created | Status::Running | Status::Paused) =
        (&container.stored, status)
    else {
        return Err(Error::WrongState {
            id: id.into(),
            status: status.to_string(),
            action: "only a created, running or paused container can be updated",
        });
    };
    let cgroup = container
        .cgroup()?
        .ok_or_else(|| Error::Init(format!("container {id:?} has no cgroup")))?;
    let plan = berth_cgroups::resources::plan(resources, cgroup.layout())?;
    cgroup.apply(&plan)?;
    let mut stored = stored.clone();
    stored.config = merged(&stored.config, resources)?;
    Container::save(&container.dir, &stored)
}

/// The config with `update`'s resources merged over its own, field by field.
fn merged(config: &Spec, update: &LinuxResources) -> Result<Spec> {
    let encode = |e: serde_json::Error| Error::Init(format!("record updated resources: {e}"));
    let mut spec = serde_json::to_value(config).map_err(encode)?;
    let update = serde_json::to_value(update).map_err(encode)?;
    let slot = &mut spec["linux"]["resources"];
    if slot.is_null() {
        *slot = serde_json::json!({});
    }
    merge(slot, &update);
    serde_json::from_value(spec).map_err(encode)
}

fn merge(into: &mut serde_json::Value, from: &serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

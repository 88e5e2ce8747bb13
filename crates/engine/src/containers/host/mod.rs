//! The HostConfig options berth honours, checked at create (ranges and formats as dockerd
//! checks them, so that a bad value is a 400 then and not a failed start) and applied to
//! the OCI config at start: resources, ulimits, capabilities, read-only root, tmpfs mounts,
//! bind mounts and devices.

mod caps;
pub mod devices;
mod mounts;
mod resources;
mod ulimits;

pub(crate) use caps::all_caps;
pub use mounts::create_bind_sources;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::HostConfig;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostOptions {
    /// OCI linux.resources, without device rules (added at start: `devices`).
    pub resources: Option<Value>,
    /// OCI process.rlimits.
    pub rlimits: Vec<Value>,
    /// The capability set (Docker's defaults with --cap-add/--cap-drop applied).
    pub caps: Vec<String>,
    pub readonly_rootfs: bool,
    /// OCI mounts (tmpfs, binds).
    pub mounts: Vec<Value>,
    /// --privileged: every capability and device, no seccomp, no masked paths.
    #[serde(default)]
    pub privileged: bool,
    /// --init: a tiny init (docker-init, tini) runs as PID 1 and reaps.
    #[serde(default)]
    pub init: bool,
    /// `--device`: host devices, resolved into nodes and rules at each start.
    #[serde(default)]
    pub devices: Vec<devices::DeviceSpec>,
    /// `--device-cgroup-rule`: OCI device cgroup rules added after Docker's.
    #[serde(default)]
    pub device_cgroup_rules: Vec<Value>,
}

fn invalid(what: String) -> Error {
    Error::InvalidArgument(what)
}

/// The options of `host`, checked.
pub fn parse(host: &HostConfig, default_caps: &[&str]) -> Result<HostOptions> {
    let mut mounts = mounts::tmpfs_mounts(&host.tmpfs)?;
    mounts.extend(mounts::bind_mounts(&host.binds)?);
    let resources = resources::resources(host)?;
    Ok(HostOptions {
        resources: (!resources.is_empty()).then_some(Value::Object(resources)),
        rlimits: ulimits::rlimits(&host.ulimits)?,
        caps: if host.privileged {
            all_caps()
        } else {
            caps::capabilities(&host.cap_add, &host.cap_drop, default_caps)?
        },
        privileged: host.privileged,
        init: host.init.unwrap_or(false),
        readonly_rootfs: host.readonly_rootfs,
        mounts,
        devices: devices::device_specs(&host.devices)?,
        device_cgroup_rules: devices::cgroup_rules(&host.device_cgroup_rules)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_of_a_host_config() {
        let h: HostConfig = serde_json::from_value(json!({
            "Memory": 67108864, "CapDrop": ["chown"], "Tmpfs": {"/scratch": "size=1m"},
            "Binds": ["/tmp:/host-tmp:ro"], "Ulimits": [{"Name": "nofile", "Soft": 512, "Hard": 1024}],
            "DeviceCgroupRules": ["c 1:3 r"], "Init": true,
        }))
        .expect("host config");
        let o = parse(&h, &["CAP_CHOWN", "CAP_KILL"]).expect("parse");
        assert_eq!(o.caps, ["CAP_KILL"]);
        assert_eq!(o.mounts.len(), 2);
        assert_eq!(o.rlimits[0]["type"], "RLIMIT_NOFILE");
        assert_eq!(o.device_cgroup_rules.len(), 1);
        assert!(o.init && o.resources.is_some());
    }
}

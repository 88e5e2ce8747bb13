//! The HostConfig options berth honours, checked at create (ranges and formats as dockerd
//! checks them, so that a bad value is a 400 then and not a failed start; what this host's
//! kernel lacks is discarded with dockerd's warnings) and applied to the OCI config at
//! start: resources (memory, CPU, block I/O), ulimits, capabilities, read-only root, tmpfs
//! mounts, bind mounts, devices, namespaces and sysctls, groups, the OOM score.

pub mod blkio;
mod caps;
pub mod devices;
pub mod joins;
mod memory;
mod mounts;
pub mod namespaces;
mod resources;
mod sysctls;
pub mod sysinfo;
mod ulimits;

use std::collections::BTreeMap;

pub(crate) use caps::all_caps;
pub use mounts::create_bind_sources;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::HostConfig;
use crate::error::{Error, Result};

/// Where a container's output goes (`--log-driver`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    #[default]
    JsonFile,
    /// Nowhere: no log file; `logs` is refused as dockerd refuses it.
    None,
}

impl LogDriver {
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::None => "none",
        }
    }
}

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
    /// `--pid`, `--ipc`, `--uts`, `--cgroupns`, `--shm-size`.
    #[serde(default)]
    pub namespaces: namespaces::Namespaces,
    /// `--sysctl` (namespaced ones only, checked against the namespaces).
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// `--group-add`: groups by name or number, looked up in the image at each start.
    #[serde(default)]
    pub group_add: Vec<String>,
    /// `--oom-score-adj` (dockerd sets it, 0 by default, for every container).
    #[serde(default)]
    pub oom_score_adj: i64,
    /// `--blkio-weight`, `--blkio-weight-device`, `--device-read/write-bps/iops`.
    #[serde(default)]
    pub blkio: blkio::Blkio,
    #[serde(default)]
    pub log_driver: LogDriver,
    /// The volumes mounted in the container (made at create).
    #[serde(default)]
    pub volumes: Vec<crate::volumes::mounts::VolumeMount>,
    /// `--cgroup-parent` or the daemon's: an absolute cgroup path ("" for the root).
    #[serde(default)]
    pub cgroup_parent: String,
}

/// What `parse` needs besides the HostConfig.
pub struct Context<'a> {
    /// Config.Hostname as asked for.
    pub hostname: &'a str,
    /// The container has a network namespace of its own (`--network none`).
    pub own_network: bool,
    pub default_caps: &'a [&'a str],
    pub sys: &'a sysinfo::SysInfo,
    /// A container's id by name or id (for `container:NAME` modes).
    pub resolve: &'a dyn Fn(&str) -> Result<String>,
    /// The daemon's `cgroup-parent`, for a request that names none.
    pub default_cgroup_parent: &'a str,
}

fn invalid(what: String) -> Error {
    Error::InvalidArgument(what)
}

/// The cgroup limits of `host`, checked: block I/O (whose device numbers are found at each
/// start) and the rest of linux.resources (None when nothing is limited).
pub fn limits(
    host: &HostConfig,
    sys: &sysinfo::SysInfo,
    warnings: &mut Vec<String>,
) -> Result<(blkio::Blkio, Option<Value>)> {
    let blkio = blkio::parse(host, sys, warnings)?;
    let resources = resources::resources(host, sys, warnings)?;
    Ok((
        blkio,
        (!resources.is_empty()).then_some(Value::Object(resources)),
    ))
}

/// A cgroup parent as an absolute, clean path ("" for the root). A relative one is taken
/// from the hierarchies' root, for every runtime alike (runc would take it from its own
/// cgroup); one that climbs out with `..` is refused.
pub fn cgroup_parent(parent: &str) -> Result<String> {
    // Cleaned as the runtime cleans a cgroups path ("" stands for the root here).
    let clean =
        berth_cgroups::container_path(Some(std::path::Path::new(parent)), "").map_err(|_| {
            invalid(format!(
                "invalid cgroup parent {parent:?}: it may not contain \"..\""
            ))
        })?;
    Ok(if clean == "/" { String::new() } else { clean })
}

/// The options of `host`, checked, and dockerd's warnings for what this host discards.
pub fn parse(host: &HostConfig, cx: &Context) -> Result<(HostOptions, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut mounts = mounts::tmpfs_mounts(&host.tmpfs)?;
    mounts.extend(mounts::bind_mounts(&host.binds)?);
    // dockerd's order: the request's own checks (QoS, real-time), the resources, then the
    // namespaces and the rest.
    let (blkio, resources) = limits(host, cx.sys, &mut warnings)?;
    let namespaces = namespaces::parse(host, cx.hostname, cx.sys, &mut warnings, cx.resolve)?;
    let oom_score_adj = namespaces::oom_score_adj(host.oom_score_adj)?;
    let sysctls = sysctls::sysctls(&host.sysctls, &namespaces, cx.own_network)?;
    for group in &host.group_add {
        // Names are looked up in the image at start; numbers are checked now.
        super::user::check_group_add(group)?;
    }
    let options = HostOptions {
        resources,
        rlimits: ulimits::rlimits(&host.ulimits)?,
        caps: if host.privileged {
            all_caps()
        } else {
            caps::capabilities(&host.cap_add, &host.cap_drop, cx.default_caps)?
        },
        privileged: host.privileged,
        init: host.init.unwrap_or(false),
        readonly_rootfs: host.readonly_rootfs,
        mounts,
        devices: devices::device_specs(&host.devices)?,
        device_cgroup_rules: devices::cgroup_rules(&host.device_cgroup_rules)?,
        namespaces,
        sysctls,
        group_add: host.group_add.clone(),
        oom_score_adj,
        blkio,
        log_driver: LogDriver::default(),
        volumes: Vec::new(),
        cgroup_parent: cgroup_parent(if host.cgroup_parent.is_empty() {
            cx.default_cgroup_parent
        } else {
            &host.cgroup_parent
        })?,
    };
    Ok((options, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cgroup_parents_are_absolute_and_clean() {
        assert_eq!(cgroup_parent("").expect("root"), "");
        assert_eq!(cgroup_parent("/").expect("root"), "");
        assert_eq!(cgroup_parent("a//b/./").expect("relative"), "/a/b");
        assert_eq!(cgroup_parent("/docker").expect("absolute"), "/docker");
        assert!(cgroup_parent("a/../../b").is_err());
    }

    #[test]
    fn options_of_a_host_config() {
        let h: HostConfig = serde_json::from_value(json!({
            "Memory": 67108864, "CapDrop": ["chown"], "Tmpfs": {"/scratch": "size=1m"},
            "Binds": ["/tmp:/host-tmp:ro"], "Ulimits": [{"Name": "nofile", "Soft": 512, "Hard": 1024}],
            "DeviceCgroupRules": ["c 1:3 r"], "Init": true,
        }))
        .expect("host config");
        let cx = Context {
            hostname: "",
            own_network: true,
            default_caps: &["CAP_CHOWN", "CAP_KILL"],
            sys: &sysinfo::SysInfo::all_v1(),
            resolve: &|n: &str| Err(Error::NotFound(format!("No such container: {n}"))),
            default_cgroup_parent: "",
        };
        let (o, warnings) = parse(&h, &cx).expect("parse");
        assert!(warnings.is_empty());
        assert_eq!(o.caps, ["CAP_KILL"]);
        assert_eq!(o.mounts.len(), 2);
        assert_eq!(o.rlimits[0]["type"], "RLIMIT_NOFILE");
        assert_eq!(o.device_cgroup_rules.len(), 1);
        assert!(o.init && o.resources.is_some());
    }
}

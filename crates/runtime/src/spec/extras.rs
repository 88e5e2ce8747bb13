//! Checks of the runtime-spec 1.2 fields of the process and the kernel beyond the basics:
//! scheduler, ioPriority, personality, memoryPolicy, execCPUAffinity, netDevices and
//! intelRdt. Each reads the host only when its field is set.

use oci_spec::runtime::{Linux, Process};

use crate::error::{Error, Result};

/// `has_netns`: the config lists a network namespace (new or joined).
pub(super) fn check(process: &Process, linux: &Linux, has_netns: bool) -> Result<()> {
    crate::process::Attributes::of(process, Some(linux)).check()?;
    crate::process::ExecAffinity::of(process)?;
    if let Some(policy) = linux.memory_policy() {
        if policy
            .nodes()
            .as_deref()
            .is_some_and(|n| !n.trim().is_empty())
        {
            let online = std::fs::read_to_string("/sys/devices/system/node/online").map_err(|_| {
                Error::config("linux.memoryPolicy.nodes: this host has no NUMA support (no /sys/devices/system/node/online)")
            })?;
            crate::process::check_nodes_exist(policy, &online)?;
        }
    }
    if let Some(devices) = linux.net_devices() {
        check_net_devices(devices, has_netns)?;
    }
    if let Some(rdt) = linux.intel_rdt() {
        crate::intel_rdt::check(rdt)?;
    }
    Ok(())
}

fn check_net_devices(
    devices: &std::collections::HashMap<String, oci_spec::runtime::LinuxNetDevice>,
    has_netns: bool,
) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    if !has_netns {
        return Err(Error::config(
            "linux.netDevices needs a network namespace for the container (they would stay where they are)",
        ));
    }
    let mut names: Vec<&String> = devices.keys().collect();
    names.sort();
    let mut targets = std::collections::HashSet::new();
    for name in names {
        crate::netdev::check_name("linux.netDevices key", name)?;
        let field = format!("linux.netDevices[{name:?}].name");
        let target = devices[name].name().as_deref().unwrap_or(name);
        crate::netdev::check_name(&field, target)?;
        if !target.contains("%d") && !targets.insert(target) {
            return Err(Error::config(format!(
                "{field} {target:?}: two devices would have this name in the container"
            )));
        }
    }
    Ok(())
}

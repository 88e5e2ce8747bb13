//! network (v1 net_cls and net_prio) and rdma.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxNetwork, LinuxRdma};

use super::{invalid, unsupported, w, Write};
use crate::error::Result;
use crate::layout::Version;

pub(super) fn network(
    n: &LinuxNetwork,
    layout_has_v1: impl Fn(&str) -> bool,
    out: &mut Vec<Write>,
) -> Result<()> {
    if let Some(id) = n.class_id() {
        if !layout_has_v1("net_cls") {
            return Err(unsupported(
                "network.classID",
                "without a v1 net_cls hierarchy (cgroup v2 has none)",
            ));
        }
        out.push(w("net_cls", "net_cls.classid", id));
    }
    for p in n.priorities().iter().flatten() {
        if !layout_has_v1("net_prio") {
            return Err(unsupported(
                "network.priorities",
                "without a v1 net_prio hierarchy (cgroup v2 has none)",
            ));
        }
        if p.name().is_empty() || p.name().contains(char::is_whitespace) {
            return Err(invalid(
                "network.priorities.name",
                format!("{:?} is not an interface name", p.name()),
            ));
        }
        out.push(w(
            "net_prio",
            "net_prio.ifpriomap",
            format!("{} {}", p.name(), p.priority()),
        ));
    }
    Ok(())
}

pub(super) fn rdma(
    r: &HashMap<String, LinuxRdma>,
    _version: Option<Version>,
    out: &mut Vec<Write>,
) -> Result<()> {
    let mut devices: Vec<&String> = r.keys().collect();
    devices.sort();
    for dev in devices {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(invalid("rdma", format!("{dev:?} is not a device name")));
        }
        let limits = &r[dev];
        let mut line = dev.clone();
        if let Some(h) = limits.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = limits.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line != *dev {
            out.push(w("rdma", "rdma.max", line));
        }
    }
    Ok(())
}

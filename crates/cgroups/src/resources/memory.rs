//! memory: limit, reservation, swap, swappiness, OOM killer.

use oci_spec::runtime::LinuxMemory;

use super::{invalid, limit, unsupported, w, Write};
use crate::error::Result;
use crate::layout::Version;

pub(super) fn memory(
    m: &LinuxMemory,
    version: Option<Version>,
    out: &mut Vec<Write>,
) -> Result<()> {
    if let Some(k) = m.kernel() {
        // Linux 5.16 deprecated the kernel memory limit and 6.x ignores it; runc ignores
        // it too, with a warning, and crun writes a file the kernel discards.
        tracing::warn!(
            "linux.resources.memory.kernel ({k}) is ignored: the kernel no longer limits \
             kernel memory separately"
        );
    }
    let mem_limit = m
        .limit()
        .map(|v| limit("memory.limit", v))
        .transpose()?
        .flatten();
    let swap = m.swap().map(|v| limit("memory.swap", v)).transpose()?;
    if let (Some(Some(swap)), Some(l)) = (swap, mem_limit) {
        if swap < l {
            return Err(invalid(
                "memory.swap",
                format!("{swap} is less than memory.limit {l} (swap counts memory plus swap)"),
            ));
        }
    }
    let reservation = m
        .reservation()
        .map(|v| limit("memory.reservation", v))
        .transpose()?;
    match version {
        Some(Version::V1) => {
            if m.limit().is_some() {
                out.push(w(
                    "memory",
                    "memory.limit_in_bytes",
                    mem_limit.unwrap_or(-1),
                ));
            }
            if let Some(s) = swap {
                out.push(w("memory", "memory.memsw.limit_in_bytes", s.unwrap_or(-1)));
            }
            if let Some(r) = reservation {
                out.push(w("memory", "memory.soft_limit_in_bytes", r.unwrap_or(-1)));
            }
            if let Some(s) = m.swappiness() {
                if s > 100 {
                    return Err(invalid("memory.swappiness", format!("{s} is above 100")));
                }
                out.push(w("memory", "memory.swappiness", s));
            }
            if m.disable_oom_killer() == Some(true) {
                out.push(w("memory", "memory.oom_control", 1));
            }
            if let Some(t) = m.kernel_tcp() {
                // Still enforced by v1 kernels that have the file (as crun does); runc
                // ignores it. Kernels built without it get a warning, not a failure.
                let t = limit("memory.kernelTCP", t)?.unwrap_or(-1);
                out.push(w("memory", "memory.kmem.tcp.limit_in_bytes", t).if_present());
            }
        }
        _ => {
            let max = |v: Option<i64>| v.map_or("max".to_string(), |v| v.to_string());
            if m.limit().is_some() {
                out.push(w("memory", "memory.max", max(mem_limit)));
            }
            if let Some(s) = swap {
                // v2 limits swap alone; OCI's swap is memory plus swap.
                let only_swap = match (s, mem_limit) {
                    (Some(s), Some(l)) => Some(s - l),
                    _ => None,
                };
                out.push(w("memory", "memory.swap.max", max(only_swap)));
            }
            if let Some(r) = reservation {
                out.push(w("memory", "memory.low", max(r)));
            }
            if m.swappiness().is_some() {
                return Err(unsupported("memory.swappiness", "on cgroup v2"));
            }
            if m.disable_oom_killer() == Some(true) {
                return Err(unsupported("memory.disableOOMKiller", "on cgroup v2"));
            }
            if let Some(t) = m.kernel_tcp() {
                // cgroup v2 accounts socket memory with the rest and has no limit of its own.
                tracing::warn!(
                    "linux.resources.memory.kernelTCP ({t}) is ignored: cgroup v2 has no \
                     separate TCP memory limit"
                );
            }
        }
    }
    Ok(())
}

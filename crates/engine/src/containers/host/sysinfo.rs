//! What this host's cgroups can do, as moby's pkg/sysinfo finds it: a resource the kernel
//! lacks is discarded at create with dockerd's warning (or refused where dockerd refuses
//! it), instead of failing the start in the runtime.

use std::path::Path;
use std::sync::OnceLock;

use berth_cgroups::{Layout, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysInfo {
    /// Pure cgroup v2 (dockerd's "unified" mode: private cgroup namespaces by default).
    pub unified: bool,
    pub memory_reservation: bool,
    pub memory_swappiness: bool,
    pub oom_kill_disable: bool,
    pub cpu_realtime: bool,
    pub blkio_weight: bool,
    pub blkio_weight_device: bool,
    pub blkio_read_bps: bool,
    pub blkio_write_bps: bool,
    pub blkio_read_iops: bool,
    pub blkio_write_iops: bool,
    pub cgroup_namespaces: bool,
}

impl SysInfo {
    /// This host's, read once.
    pub fn host() -> &'static SysInfo {
        static HOST: OnceLock<SysInfo> = OnceLock::new();
        HOST.get_or_init(|| {
            Layout::detect()
                .map(|l| SysInfo::of(&l))
                .unwrap_or_else(|e| {
                    tracing::warn!("cannot read the cgroup layout: {e}");
                    SysInfo::none()
                })
        })
    }

    /// Nothing supported (a host whose cgroups cannot be read).
    pub fn none() -> SysInfo {
        SysInfo {
            unified: false,
            memory_reservation: false,
            memory_swappiness: false,
            oom_kill_disable: false,
            cpu_realtime: false,
            blkio_weight: false,
            blkio_weight_device: false,
            blkio_read_bps: false,
            blkio_write_bps: false,
            blkio_read_iops: false,
            blkio_write_iops: false,
            cgroup_namespaces: false,
        }
    }

    /// What the hierarchies of `layout` offer (their root cgroups' files, as moby checks).
    pub fn of(layout: &Layout) -> SysInfo {
        let unified = layout.unified_only();
        // The file in the hierarchy that holds `controller` (v1), or in the v2 one.
        let has = |controller: &str, file: &str| {
            layout
                .for_controller(controller)
                .is_some_and(|h| h.mountpoint.join(file).exists())
        };
        let v1 = |controller: &str, file: &str| {
            layout
                .for_controller(controller)
                .is_some_and(|h| h.version == Version::V1 && h.mountpoint.join(file).exists())
        };
        // cgroup v2 keeps io files in children only: the controller must be enabled.
        let v2_io = unified
            && layout.v2().is_some_and(|h| {
                std::fs::read_to_string(h.mountpoint.join("cgroup.controllers"))
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"))
            });
        SysInfo {
            unified,
            memory_reservation: has("memory", "memory.soft_limit_in_bytes") || unified,
            // No v2 equivalents: dockerd discards these there.
            memory_swappiness: v1("memory", "memory.swappiness"),
            oom_kill_disable: v1("memory", "memory.oom_control"),
            cpu_realtime: v1("cpu", "cpu.rt_runtime_us"),
            blkio_weight: v1("blkio", "blkio.weight") || v1("blkio", "blkio.bfq.weight") || v2_io,
            blkio_weight_device: v1("blkio", "blkio.weight_device")
                || v1("blkio", "blkio.bfq.weight_device")
                || v2_io,
            blkio_read_bps: v1("blkio", "blkio.throttle.read_bps_device") || v2_io,
            blkio_write_bps: v1("blkio", "blkio.throttle.write_bps_device") || v2_io,
            blkio_read_iops: v1("blkio", "blkio.throttle.read_iops_device") || v2_io,
            blkio_write_iops: v1("blkio", "blkio.throttle.write_iops_device") || v2_io,
            cgroup_namespaces: Path::new("/proc/self/ns/cgroup").exists(),
        }
    }
}

#[cfg(test)]
impl SysInfo {
    /// Everything supported, on a v1 host (for tests of the checks themselves).
    pub fn all_v1() -> SysInfo {
        SysInfo {
            unified: false,
            memory_reservation: true,
            memory_swappiness: true,
            oom_kill_disable: true,
            cpu_realtime: true,
            blkio_weight: true,
            blkio_weight_device: true,
            blkio_read_bps: true,
            blkio_write_bps: true,
            blkio_read_iops: true,
            blkio_write_iops: true,
            cgroup_namespaces: true,
        }
    }
}

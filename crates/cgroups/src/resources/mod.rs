//! `linux.resources` as the file writes that enforce it, for the version of the hierarchy
//! that holds each controller. Pure: planned here, performed by `Cgroup::apply`.

mod blkio;
mod cpu;
mod devices;
mod memory;
mod net;

use oci_spec::runtime::LinuxResources;

pub use blkio::blkio_weight_to_io_weight;
pub use cpu::shares_to_weight;

use crate::devices::DeviceRule;
use crate::error::{Error, Result};
use crate::layout::{Layout, Version};

/// One write: `value` into `<cgroup dir of controller>/<file>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// Written instead when this file exists (BFQ's weights, in another unit on v2).
    pub preferred: Option<(String, String)>,
    /// A kernel without the file skips the write with a warning instead of failing
    /// (settings the kernel dropped, which runc and crun warn about and go on).
    pub optional: bool,
}

impl Write {
    fn or_if_present(mut self, file: &str, value: impl ToString) -> Self {
        self.preferred = Some((file.into(), value.to_string()));
        self
    }

    fn if_present(mut self) -> Self {
        self.optional = true;
        self
    }
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
        preferred: None,
        optional: false,
    }
}

fn invalid(field: &str, why: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

fn unsupported(field: &str, why: &str) -> Error {
    Error::Unsupported {
        field: field.into(),
        why: why.into(),
    }
}

/// A limit in bytes: positive, or -1 for none.
fn limit(field: &str, v: i64) -> Result<Option<i64>> {
    match v {
        -1 => Ok(None),
        v if v > 0 => Ok(Some(v)),
        _ => Err(invalid(
            field,
            format!("{v} is not a positive number of bytes or -1"),
        )),
    }
}

/// What enforcing `linux.resources` takes: file writes, and on cgroup v2 the rules of the
/// device filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In the order they must happen.
    pub writes: Vec<Write>,
    pub device_filter: Option<Vec<DeviceRule>>,
}

/// Plan the enforcement of `res` on `layout`.
pub fn plan(res: &LinuxResources, layout: &Layout) -> Result<Plan> {
    let mut device_filter = None;
    let writes = plan_writes(res, layout, &mut device_filter)?;
    Ok(Plan {
        writes,
        device_filter,
    })
}

fn plan_writes(
    res: &LinuxResources,
    layout: &Layout,
    device_filter: &mut Option<Vec<DeviceRule>>,
) -> Result<Vec<Write>> {
    let version = |controller: &str| layout.for_controller(controller).map(|h| h.version);
    let mut out = Vec::new();
    if let Some(m) = res.memory() {
        memory::memory(m, version("memory"), &mut out)?;
    }
    if let Some(c) = res.cpu() {
        cpu::cpu(c, version("cpu"), &mut out)?;
    }
    if let Some(b) = res.block_io() {
        blkio::blkio(b, version("blkio"), &mut out)?;
    }
    if let Some(n) = res.network() {
        let has_v1 = |c: &str| {
            layout
                .hierarchies
                .iter()
                .any(|h| h.version == Version::V1 && h.has(c))
        };
        net::network(n, has_v1, &mut out)?;
    }
    if let Some(r) = res.rdma() {
        net::rdma(r, version("rdma"), &mut out)?;
    }
    if let Some(p) = res.pids() {
        match p.limit() {
            l if l > 0 => out.push(w("pids", "pids.max", l)),
            -1 | 0 => out.push(w("pids", "pids.max", "max")),
            l => {
                return Err(invalid(
                    "pids.limit",
                    format!("{l} is not a positive number or -1"),
                ))
            }
        }
    }
    for h in res.hugepage_limits().iter().flatten() {
        let size = h.page_size();
        if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "hugepageLimits.pageSize",
                format!("{size:?} is not a page size like 2MB"),
            ));
        }
        let file = match version("hugetlb") {
            Some(Version::V1) => format!("hugetlb.{size}.limit_in_bytes"),
            _ => format!("hugetlb.{size}.max"),
        };
        out.push(w("hugetlb", file, h.limit()));
    }
    if let Some(rules) = res.devices() {
        *device_filter = devices::devices(rules, version("devices"), &mut out)?;
    }
    if let Some(unified) = res.unified() {
        if layout.v2().is_none() {
            return Err(unsupported("unified", "on a host without cgroup v2"));
        }
        let mut keys: Vec<&String> = unified.keys().collect();
        keys.sort();
        for key in keys {
            if key.contains('/') || !key.contains('.') {
                return Err(invalid(
                    &format!("unified.{key}"),
                    "not a cgroup v2 file name",
                ));
            }
            out.push(w("", key.clone(), &unified[key]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::devices::DEFAULT_ALLOWED;
    use super::*;

    fn layout(v1: bool) -> Layout {
        if v1 {
            Layout::parse(
                "1 0 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 2 0 0:2 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                 3 0 0:3 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                 4 0 0:4 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n\
                 5 0 0:5 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                 6 0 0:6 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n",
                "5:blkio:/\n4:memory:/\n3:cpu:/\n2:pids:/\n1:devices:/\n0::/\n",
            )
        } else {
            Layout::parse(
                "1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                "0::/\n",
            )
        }
    }

    fn res(json: serde_json::Value) -> LinuxResources {
        serde_json::from_value(json).expect("resources")
    }

    fn files(plan: &Plan) -> Vec<String> {
        plan.writes
            .iter()
            .map(|w| format!("{}={}", w.file, w.value))
            .collect()
    }

    #[test]
    fn memory_pids_cpu_on_v1() {
        let r = res(serde_json::json!({
            "memory": {"limit": 104857600, "swap": 209715200, "swappiness": 10},
            "pids": {"limit": 20},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"}
        }));
        assert_eq!(
            files(&plan(&r, &layout(true)).expect("plan")),
            [
                "memory.limit_in_bytes=104857600",
                "memory.memsw.limit_in_bytes=209715200",
                "memory.swappiness=10",
                "cpu.shares=512",
                "cpu.cfs_period_us=100000",
                "cpu.cfs_quota_us=50000",
                "cpuset.cpus=0",
                "pids.max=20",
            ]
        );
    }

    #[test]
    fn memory_pids_cpu_on_v2() {
        let r = res(serde_json::json!({
            "memory": {"limit": 100, "swap": 300, "reservation": 50},
            "pids": {"limit": -1},
            "cpu": {"shares": 1024, "quota": 50000},
            "unified": {"memory.high": "90"}
        }));
        assert_eq!(
            files(&plan(&r, &layout(false)).expect("plan")),
            [
                "memory.max=100",
                "memory.swap.max=200",
                "memory.low=50",
                "cpu.weight=39",
                "cpu.max=50000 100000",
                "pids.max=max",
                "memory.high=90"
            ]
        );
    }

    #[test]
    fn kernel_memory_is_ignored_and_kernel_tcp_written_only_where_the_kernel_has_it() {
        let r = res(serde_json::json!({
            "memory": {"limit": 104857600, "kernel": 52428800, "kernelTCP": 10485760}
        }));
        let v1 = plan(&r, &layout(true)).expect("v1 plan");
        assert_eq!(
            files(&v1),
            [
                "memory.limit_in_bytes=104857600",
                "memory.kmem.tcp.limit_in_bytes=10485760"
            ]
        );
        assert!(v1.writes[1].optional && !v1.writes[0].optional);
        let v2 = plan(&r, &layout(false)).expect("v2 plan");
        assert_eq!(files(&v2), ["memory.max=104857600"]);
    }

    #[test]
    fn invalid_values_name_their_field() {
        for (json, field) in [
            (serde_json::json!({"memory": {"limit": -5}}), "memory.limit"),
            (
                serde_json::json!({"memory": {"limit": 200, "swap": 100}}),
                "memory.swap",
            ),
            (serde_json::json!({"pids": {"limit": -7}}), "pids.limit"),
            (serde_json::json!({"cpu": {"quota": 0}}), "cpu.quota"),
            (serde_json::json!({"cpu": {"cpus": "0;rm"}}), "cpu.cpus"),
            (
                serde_json::json!({"blockIO": {"weight": 5}}),
                "blockIO.weight",
            ),
            (
                serde_json::json!({"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}),
                "blockIO device",
            ),
            (
                serde_json::json!({"network": {"classID": 1}}),
                "network.classID",
            ),
            (
                serde_json::json!({"rdma": {"bad dev": {"hcaHandles": 1}}}),
                "rdma",
            ),
            (
                serde_json::json!({"devices": [{"allow": true, "access": "rwx"}]}),
                "devices.access",
            ),
        ] {
            let err = plan(&res(json), &layout(true)).expect_err("refused");
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn device_rules_then_defaults_as_v1_writes_or_a_v2_filter() {
        let r = res(
            serde_json::json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}),
        );
        let v1 = plan(&r, &layout(true)).expect("plan");
        assert_eq!(
            files(&v1)[..3],
            [
                "devices.deny=a *:* rwm",
                "devices.allow=c 1:3 rw",
                "devices.allow=c *:* m"
            ]
        );
        assert_eq!(v1.writes.len(), 2 + DEFAULT_ALLOWED.len());
        assert_eq!(v1.device_filter, None);
        let v2 = plan(&r, &layout(false)).expect("plan");
        assert!(v2.writes.is_empty());
        assert_eq!(
            v2.device_filter.map(|f| f.len()),
            Some(2 + DEFAULT_ALLOWED.len())
        );
    }

    #[test]
    fn block_io_network_rdma_and_burst() {
        let r = res(serde_json::json!({
            "blockIO": {
                "weight": 500,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]
            },
            "cpu": {"burst": 1000, "idle": 1},
            "rdma": {"mlx4_0": {"hcaHandles": 2, "hcaObjects": 2000}}
        }));
        let v1 = plan(&r, &layout(true)).expect("plan");
        assert_eq!(
            files(&v1),
            [
                "cpu.cfs_burst_us=1000",
                "cpu.idle=1",
                "blkio.weight=500",
                "blkio.weight_device=8:0 100",
                "blkio.throttle.read_bps_device=8:0 1048576",
                "blkio.throttle.write_iops_device=8:0 0",
                "rdma.max=mlx4_0 hca_handle=2 hca_object=2000",
            ]
        );
        assert_eq!(
            v1.writes[2].preferred,
            Some(("blkio.bfq.weight".into(), "500".into()))
        );
        let v2 = plan(&r, &layout(false)).expect("plan");
        assert_eq!(
            files(&v2),
            [
                "cpu.max.burst=1000",
                "cpu.idle=1",
                "io.weight=default 4950",
                "io.weight=8:0 910",
                "io.max=8:0 rbps=1048576",
                "io.max=8:0 wiops=max",
                "rdma.max=mlx4_0 hca_handle=2 hca_object=2000",
            ]
        );
        assert_eq!(
            v2.writes[3].preferred,
            Some(("io.bfq.weight".into(), "8:0 100".into()))
        );
        let net = res(
            serde_json::json!({"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}}),
        );
        let with_net = Layout::parse(
            "1 0 0:1 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n",
            "1:net_cls,net_prio:/\n",
        );
        assert_eq!(
            files(&plan(&net, &with_net).expect("plan")),
            ["net_cls.classid=1048577", "net_prio.ifpriomap=eth0 5"]
        );
    }

    #[test]
    fn shares_map_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
    }
}

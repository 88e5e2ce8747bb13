//! `linux.resources` as the file writes that enforce it, for the version of the hierarchy
//! that holds each controller. Pure: planned here, performed by `Cgroup::apply`.

use oci_spec::runtime::{
    LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources,
};

use crate::error::{Error, Result};
use crate::layout::{Layout, Version};

/// One write: `value` into `<cgroup dir of controller>/<file>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
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

/// Plan every write for `res` on `layout`, in the order they must happen.
pub fn plan(res: &LinuxResources, layout: &Layout) -> Result<Vec<Write>> {
    let version = |controller: &str| layout.for_controller(controller).map(|h| h.version);
    let mut out = Vec::new();
    if res.block_io().is_some() {
        return Err(unsupported("blockIO", "yet"));
    }
    if res.network().is_some() {
        return Err(unsupported("network", "yet"));
    }
    if res.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(unsupported("rdma", "yet"));
    }
    if let Some(m) = res.memory() {
        memory(m, version("memory"), &mut out)?;
    }
    if let Some(c) = res.cpu() {
        cpu(c, version("cpu"), &mut out)?;
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
        devices(rules, version("devices"), &mut out)?;
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
            out.push(Write {
                controller: "",
                file: key.clone(),
                value: unified[key].clone(),
            });
        }
    }
    Ok(out)
}

fn memory(m: &LinuxMemory, version: Option<Version>, out: &mut Vec<Write>) -> Result<()> {
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        return Err(unsupported("memory.kernel", "(deprecated by the kernel)"));
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
        }
    }
    Ok(())
}

/// runc's mapping of cpu.shares (2..262144) onto cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        0
    } else {
        1 + (shares.clamp(2, 262144) - 2) * 9999 / 262142
    }
}

fn cpu(c: &LinuxCpu, version: Option<Version>, out: &mut Vec<Write>) -> Result<()> {
    if c.burst().is_some() {
        return Err(unsupported("cpu.burst", "yet"));
    }
    if let Some(q) = c.quota() {
        if q == 0 || q < -1 {
            return Err(invalid(
                "cpu.quota",
                format!("{q} is not a positive number of microseconds or -1"),
            ));
        }
    }
    if c.period().is_some_and(|p| !(1000..=1_000_000).contains(&p)) {
        return Err(invalid(
            "cpu.period",
            "must be between 1000 and 1000000 microseconds",
        ));
    }
    match version {
        Some(Version::V1) => {
            if let Some(s) = c.shares() {
                out.push(w("cpu", "cpu.shares", s));
            }
            if let Some(p) = c.period() {
                out.push(w("cpu", "cpu.cfs_period_us", p));
            }
            if let Some(q) = c.quota() {
                out.push(w("cpu", "cpu.cfs_quota_us", q));
            }
            if let Some(p) = c.realtime_period() {
                out.push(w("cpu", "cpu.rt_period_us", p));
            }
            if let Some(r) = c.realtime_runtime() {
                out.push(w("cpu", "cpu.rt_runtime_us", r));
            }
            if c.idle().is_some_and(|i| i != 0) {
                return Err(unsupported("cpu.idle", "on cgroup v1"));
            }
        }
        _ => {
            if let Some(s) = c.shares() {
                out.push(w("cpu", "cpu.weight", shares_to_weight(s)));
            }
            if c.quota().is_some() || c.period().is_some() {
                let quota = c
                    .quota()
                    .filter(|q| *q > 0)
                    .map_or("max".to_string(), |q| q.to_string());
                out.push(w(
                    "cpu",
                    "cpu.max",
                    format!("{quota} {}", c.period().unwrap_or(100_000)),
                ));
            }
            if let Some(i) = c.idle() {
                out.push(w("cpu", "cpu.idle", i));
            }
            if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
                return Err(unsupported("cpu.realtimeRuntime", "on cgroup v2"));
            }
        }
    }
    for (field, file, value) in [
        ("cpu.cpus", "cpuset.cpus", c.cpus()),
        ("cpu.mems", "cpuset.mems", c.mems()),
    ] {
        if let Some(v) = value {
            if !v
                .chars()
                .all(|ch| ch.is_ascii_digit() || ch == ',' || ch == '-')
            {
                return Err(invalid(field, format!("{v:?} is not a list like 0-2,4")));
            }
            out.push(w("cpuset", file, v));
        }
    }
    Ok(())
}

/// The devices every container needs, allowed after the config's own rules (runc's list).
const DEFAULT_ALLOWED: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

fn device_rule(r: &LinuxDeviceCgroup) -> Result<String> {
    let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::P => {
            return Err(invalid(
                "devices.type",
                "\"p\" cannot be controlled by the devices cgroup",
            ))
        }
    };
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let access = r.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(invalid(
            "devices.access",
            format!("{access:?} is not made of r, w and m"),
        ));
    }
    Ok(format!(
        "{typ} {}:{} {access}",
        num(r.major()),
        num(r.minor())
    ))
}

fn devices(
    rules: &[LinuxDeviceCgroup],
    version: Option<Version>,
    out: &mut Vec<Write>,
) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    if version != Some(Version::V1) {
        return Err(unsupported(
            "devices",
            "on cgroup v2 yet (it needs an eBPF device program)",
        ));
    }
    for r in rules {
        let file = if r.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push(w("devices", file, device_rule(r)?));
    }
    for rule in DEFAULT_ALLOWED {
        out.push(w("devices", "devices.allow", rule));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(v1: bool) -> Layout {
        if v1 {
            Layout::parse(
                "1 0 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 2 0 0:2 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                 3 0 0:3 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                 4 0 0:4 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n\
                 5 0 0:5 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
                "4:memory:/\n3:cpu:/\n2:pids:/\n1:devices:/\n0::/\n",
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

    fn files(writes: &[Write]) -> Vec<String> {
        writes
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
            (serde_json::json!({"blockIO": {"weight": 10}}), "blockIO"),
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
    fn device_rules_then_defaults_on_v1_refused_on_v2() {
        let r = res(
            serde_json::json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}),
        );
        let writes = plan(&r, &layout(true)).expect("plan");
        assert_eq!(
            files(&writes[..2]),
            ["devices.deny=a *:* rwm", "devices.allow=c 1:3 rw"]
        );
        assert_eq!(writes.len(), 2 + DEFAULT_ALLOWED.len());
        assert!(plan(&r, &layout(false)).is_err());
    }

    #[test]
    fn shares_map_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
    }
}

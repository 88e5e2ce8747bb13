//! linux.resources from HostConfig: memory (memory.rs), CPU, cpuset and pids, with
//! dockerd's checks and messages (daemon_unix.go's verifyPlatformContainerResources and
//! runconfig's validateResources) applied at create. Block I/O needs device numbers, which
//! are found at each start (blkio.rs).

use serde_json::{json, Map, Value};

use super::invalid;
use super::sysinfo::SysInfo;
use crate::containers::request::HostConfig;
use crate::error::Result;

/// The resources object (empty when nothing is limited); the caller adds device rules and
/// block I/O. What this host cannot do is discarded with dockerd's warnings.
pub fn resources(
    h: &HostConfig,
    sys: &SysInfo,
    warnings: &mut Vec<String>,
) -> Result<Map<String, Value>> {
    let mut r = Map::new();
    if let Some(memory) = super::memory::memory(h, sys, warnings)? {
        r.insert("memory".into(), memory);
    }
    if let Some(cpu) = cpu(h, sys)? {
        r.insert("cpu".into(), cpu);
    }
    // 0 and negative values mean "unlimited", as in dockerd.
    match h.pids_limit {
        Some(p) if p > 0 => {
            r.insert("pids".into(), json!({"limit": p}));
        }
        Some(p) if p < 0 => {
            r.insert("pids".into(), json!({"limit": -1}));
        }
        _ => {}
    }
    Ok(r)
}

/// The CPUs this process may run on (Go's runtime.NumCPU, which dockerd's check uses).
fn cpu_count() -> i64 {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count() as i64
        })
        .unwrap_or(1)
        .max(1)
}

fn cpu(h: &HostConfig, sys: &SysInfo) -> Result<Option<Value>> {
    let mut cpu = Map::new();
    realtime(h, sys, &mut cpu)?;
    if h.nano_cpus != 0 {
        if h.cpu_period > 0 {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        if h.cpu_quota > 0 {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into(),
            ));
        }
        let n = cpu_count();
        if h.nano_cpus < 0 || h.nano_cpus > n * 1_000_000_000 {
            return Err(invalid(format!(
                "range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
            )));
        }
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(h.nano_cpus / 10_000));
    }
    if h.cpu_shares < 0 {
        return Err(invalid(format!(
            "invalid CPU shares ({}): value must be a positive integer",
            h.cpu_shares
        )));
    }
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if h.cpu_period != 0 {
        if !(1000..=1_000_000).contains(&h.cpu_period) {
            return Err(invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into(),
            ));
        }
        cpu.insert("period".into(), json!(h.cpu_period));
    }
    if h.cpu_quota != 0 {
        if h.cpu_quota < -1 {
            return Err(invalid(format!(
                "invalid CpuQuota {}: microseconds per period, or -1 for unlimited",
                h.cpu_quota
            )));
        }
        if (1..1000).contains(&h.cpu_quota) {
            return Err(invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
            ));
        }
        cpu.insert("quota".into(), json!(h.cpu_quota));
    }
    for (value, field, what, online) in [
        (
            &h.cpuset_cpus,
            "cpus",
            "cpus",
            "/sys/devices/system/cpu/online",
        ),
        (
            &h.cpuset_mems,
            "mems",
            "mems",
            "/sys/devices/system/node/online",
        ),
    ] {
        if !value.is_empty() {
            check_cpuset(value, what, online)?;
            cpu.insert(field.into(), json!(value));
        }
    }
    Ok((!cpu.is_empty()).then_some(Value::Object(cpu)))
}

/// `--cpu-rt-period`, `--cpu-rt-runtime` (microseconds): runconfig's checks, at create.
fn realtime(h: &HostConfig, sys: &SysInfo, cpu: &mut Map<String, Value>) -> Result<()> {
    let (period, runtime) = (h.cpu_realtime_period, h.cpu_realtime_runtime);
    if period == 0 && runtime == 0 {
        return Ok(());
    }
    if !sys.cpu_realtime {
        // cgroup v2 has no such files; on v1 the kernel needs CONFIG_RT_GROUP_SCHED.
        return Err(invalid(
            "kernel does not support CPU real-time scheduler (no cpu.rt_runtime_us: real-time group scheduling needs cgroup v1 and CONFIG_RT_GROUP_SCHED)".into(),
        ));
    }
    if period != 0 && runtime != 0 && runtime > period {
        return Err(invalid(
            "cpu real-time runtime cannot be higher than cpu real-time period".into(),
        ));
    }
    if period < 0 {
        return Err(invalid(format!(
            "invalid CpuRealtimePeriod {period}: a period in microseconds"
        )));
    }
    if runtime < -1 {
        return Err(invalid(format!(
            "invalid CpuRealtimeRuntime {runtime}: microseconds per period, or -1 for unlimited"
        )));
    }
    if period != 0 {
        cpu.insert("realtimePeriod".into(), json!(period));
    }
    if runtime != 0 {
        cpu.insert("realtimeRuntime".into(), json!(runtime));
    }
    Ok(())
}

/// A cpuset list ("0-2,4"), as the kernel's list format: its members, or None.
fn cpuset_members(list: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in list.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.parse::<u32>().ok()?, hi.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        // A bound on the list's size: the kernel has at most a few thousand CPUs.
        if lo > hi || hi >= 1 << 16 {
            return None;
        }
        out.extend(lo..=hi);
    }
    Some(out)
}

/// The set must parse and name only CPUs (memory nodes) this host has online.
fn check_cpuset(value: &str, what: &str, online: &str) -> Result<()> {
    let requested = cpuset_members(value).ok_or_else(|| {
        invalid(format!(
            "Invalid value {value} for cpuset {what}: invalid format: {value}"
        ))
    })?;
    // A host without NUMA information has node 0 only.
    let available = std::fs::read_to_string(online).unwrap_or_else(|_| "0".into());
    let members = cpuset_members(&available).unwrap_or_default();
    if requested.iter().any(|n| !members.contains(n)) {
        let noun = if what == "cpus" {
            "CPUs"
        } else {
            "memory nodes"
        };
        return Err(invalid(format!(
            "Requested {noun} are not available - requested {value}, available: {}",
            available.trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(v: Value) -> HostConfig {
        serde_json::from_value(v).expect("host config")
    }

    fn resources(h: &HostConfig) -> Result<Map<String, Value>> {
        super::resources(h, &SysInfo::all_v1(), &mut Vec::new())
    }

    #[test]
    fn limits() {
        let r = resources(&host(
            json!({"Memory": 67108864, "NanoCpus": 500000000, "PidsLimit": 20, "CpuShares": 512}),
        ))
        .expect("resources");
        assert_eq!(
            Value::Object(r),
            json!({"memory": {"limit": 67108864, "swap": 134217728}, "cpu": {"period": 100000, "quota": 50000, "shares": 512}, "pids": {"limit": 20}})
        );
        assert!(resources(&host(json!({}))).is_ok_and(|r| r.is_empty()));
    }

    #[test]
    fn out_of_range_values_are_refused_with_dockerd_messages() {
        for (bad, msg) in [
            (json!({"Memory": 1000}), "Minimum memory limit"),
            (json!({"NanoCpus": -1}), "range of CPUs"),
            (
                json!({"NanoCpus": 1_000_000_000_000_000i64}),
                "range of CPUs",
            ),
            (json!({"CpuShares": -1}), "invalid CPU shares (-1)"),
            (json!({"CpuPeriod": 10}), "CPU cfs period"),
            (json!({"CpuQuota": 10}), "CPU cfs quota"),
            (
                json!({"CpusetCpus": "0-x"}),
                "Invalid value 0-x for cpuset cpus",
            ),
            (json!({"CpusetCpus": "3-1"}), "Invalid value 3-1"),
            (
                json!({"CpusetCpus": "60000"}),
                "Requested CPUs are not available",
            ),
            (
                json!({"CpusetMems": "4000"}),
                "Requested memory nodes are not available",
            ),
        ] {
            let err = resources(&host(bad.clone()));
            assert!(
                err.as_ref().is_err_and(|e| e.to_string().contains(msg)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn realtime_as_runconfig_checks_it() {
        let r = resources(&host(
            json!({"CpuRealtimePeriod": 1000000, "CpuRealtimeRuntime": 95000}),
        ))
        .expect("rt");
        assert_eq!(
            r["cpu"],
            json!({"realtimePeriod": 1000000, "realtimeRuntime": 95000})
        );
        let higher = resources(&host(
            json!({"CpuRealtimePeriod": 5000, "CpuRealtimeRuntime": 10000}),
        ));
        assert!(higher.is_err_and(|e| e
            .to_string()
            .contains("cpu real-time runtime cannot be higher than cpu real-time period")));
        let mut w = Vec::new();
        let lacking = super::resources(
            &host(json!({"CpuRealtimeRuntime": 1000})),
            &SysInfo::none(),
            &mut w,
        );
        assert!(lacking.is_err_and(|e| e
            .to_string()
            .starts_with("kernel does not support CPU real-time scheduler")));
    }

    #[test]
    fn cpuset_lists() {
        assert_eq!(cpuset_members("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(cpuset_members("0\n"), Some(vec![0]));
        for bad in ["", "a", "1-", "-1", "2-1", "1,,2", "0-99999999"] {
            assert_eq!(cpuset_members(bad), None, "{bad}");
        }
    }
}

//! linux.resources from HostConfig: memory, CPU, cpuset and pids, with dockerd's checks and
//! messages (daemon_unix.go's verifyPlatformContainerResources) applied at create.

use serde_json::{json, Map, Value};

use super::invalid;
use crate::containers::request::HostConfig;
use crate::error::Result;

/// dockerd's floor for memory limits.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The resources object (empty when nothing is limited); the caller adds device rules.
pub fn resources(h: &HostConfig) -> Result<Map<String, Value>> {
    let mut r = Map::new();
    if let Some(memory) = memory(h)? {
        r.insert("memory".into(), memory);
    }
    if let Some(cpu) = cpu(h)? {
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

fn memory(h: &HostConfig) -> Result<Option<Value>> {
    let (m, swap) = (h.memory, h.memory_swap);
    if swap < -1 {
        return Err(invalid(format!(
            "invalid MemorySwap {swap}: a size in bytes, or -1 for unlimited swap"
        )));
    }
    if m == 0 {
        if swap > 0 {
            return Err(invalid(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            ));
        }
        return Ok(None);
    }
    if m < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB".into()));
    }
    let swap = match swap {
        0 => m.saturating_mul(2),
        -1 => -1,
        s if s < m => {
            return Err(invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ))
        }
        s => s,
    };
    Ok(Some(json!({"limit": m, "swap": swap})))
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

fn cpu(h: &HostConfig) -> Result<Option<Value>> {
    let mut cpu = Map::new();
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
            (json!({"Memory": -5}), "Minimum memory limit"),
            (json!({"MemorySwap": 100}), "always set the Memory limit"),
            (json!({"MemorySwap": -2}), "MemorySwap"),
            (
                json!({"Memory": 67108864, "MemorySwap": 1000}),
                "Minimum memoryswap",
            ),
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
    fn cpuset_lists() {
        assert_eq!(cpuset_members("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(cpuset_members("0\n"), Some(vec![0]));
        for bad in ["", "a", "1-", "-1", "2-1", "1,,2", "0-99999999"] {
            assert_eq!(cpuset_members(bad), None, "{bad}");
        }
    }
}

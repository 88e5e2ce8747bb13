//! ContainerStats and ListContainerStats: the engine's cgroup sample of each container as
//! the CRI reports it (as containerd computes its figures from the same cgroup files).

use std::collections::HashMap;
use std::sync::Mutex;

use berth_cgroups::Stats;
use k8s_cri::v1::{
    ContainerAttributes, ContainerStats, ContainerStatsFilter, CpuUsage, FilesystemIdentifier,
    FilesystemUsage, LinuxPodSandboxStats, MemoryUsage, NetworkInterfaceUsage, NetworkUsage,
    PodSandboxAttributes, PodSandboxStats, PodSandboxStatsFilter, ProcessUsage, UInt64Value,
};

use crate::containers::CriContainer;
use crate::error::Result;
use crate::pods::now_nanos;
use crate::Cri;

fn value(v: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value: v })
}

/// A memory.stat counter under its cgroup v1 (`total_`) or v2 name.
fn counter(stats: &Stats, v1: &str, v2: &str) -> u64 {
    let raw = &stats.memory.raw;
    raw.get(v1).or_else(|| raw.get(v2)).copied().unwrap_or(0)
}

fn memory(stats: Option<&Stats>, at: i64) -> MemoryUsage {
    let Some(s) = stats else {
        return MemoryUsage {
            timestamp: at,
            ..Default::default()
        };
    };
    let usage = s.memory.usage.usage;
    // The kubelet's working set: usage without the inactive page cache.
    let inactive = counter(s, "total_inactive_file", "inactive_file");
    let working_set = usage.saturating_sub(inactive);
    let limit = s.memory.usage.limit;
    MemoryUsage {
        timestamp: at,
        working_set_bytes: value(working_set),
        available_bytes: (limit != u64::MAX && limit > 0)
            .then(|| value(limit.saturating_sub(working_set)))
            .flatten(),
        usage_bytes: value(usage),
        rss_bytes: value(counter(s, "total_rss", "anon")),
        page_faults: value(counter(s, "total_pgfault", "pgfault")),
        major_page_faults: value(counter(s, "total_pgmajfault", "pgmajfault")),
    }
}

fn network_usage(
    interfaces: &std::collections::BTreeMap<String, berth_engine::containers::stats::NetCounters>,
    at: i64,
) -> NetworkUsage {
    let usage = |(name, n): (&String, &berth_engine::containers::stats::NetCounters)| {
        NetworkInterfaceUsage {
            name: name.clone(),
            rx_bytes: value(n.rx_bytes),
            rx_errors: value(n.rx_errors),
            tx_bytes: value(n.tx_bytes),
            tx_errors: value(n.tx_errors),
        }
    };
    let all: Vec<NetworkInterfaceUsage> = interfaces.iter().map(usage).collect();
    NetworkUsage {
        timestamp: at,
        default_interface: all.iter().find(|i| i.name == "eth0").cloned(),
        interfaces: all,
    }
}

/// One cumulative CPU usage reading and when it was taken (Unix nanoseconds).
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    usage: u64,
    at: i64,
}

/// The last CPU reading of each container and pod: `usage_nano_cores` is the rate since the
/// previous stats call, as containerd computes it (the cgroup has only the cumulative sum).
#[derive(Debug, Default)]
pub(crate) struct CpuRates(Mutex<HashMap<String, CpuSample>>);

impl CpuRates {
    /// The rate since the previous reading of `key`, recording this one; 0 for the first
    /// reading, or when no time passed (as containerd gives).
    fn nano_cores(&self, key: &str, usage: u64, at: i64) -> u64 {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = CpuSample { usage, at };
        let previous = map.get(key).copied();
        if previous.is_some_and(|p| at <= p.at) {
            return 0;
        }
        map.insert(key.to_string(), now);
        previous.map_or(0, |p| rate(p, now))
    }

    /// A removed container's or pod's reading.
    pub(crate) fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// Nanoseconds of CPU per second between two readings; a counter that went back (a pod's
/// sum after a container left) counts as no use.
fn rate(previous: CpuSample, now: CpuSample) -> u64 {
    let elapsed = now.at.saturating_sub(previous.at);
    if elapsed <= 0 {
        return 0;
    }
    let used = u128::from(now.usage.saturating_sub(previous.usage));
    u64::try_from(used * 1_000_000_000 / elapsed as u128).unwrap_or(u64::MAX)
}

/// A pod's key among the containers' in `CpuRates`.
pub(crate) fn pod_key(id: &str) -> String {
    format!("pod/{id}")
}

impl Cri {
    fn stats_of(&self, c: &CriContainer) -> Result<ContainerStats> {
        let sample = self.engine.container_stats(&c.id)?;
        Ok(self.stats_from(c, &sample))
    }

    /// A container's figures from a sample already taken (a pod's stats read each
    /// container's cgroup once).
    fn stats_from(
        &self,
        c: &CriContainer,
        sample: &berth_engine::containers::stats::Sample,
    ) -> ContainerStats {
        let at = now_nanos();
        let cgroup = sample.usage.as_ref().map(|u| &u.cgroup);
        let upper = self.engine.containers().dir(&c.id).join("upper");
        ContainerStats {
            attributes: Some(ContainerAttributes {
                id: c.id.clone(),
                metadata: c.config.metadata.clone(),
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
            }),
            cpu: Some(CpuUsage {
                timestamp: at,
                usage_core_nano_seconds: cgroup.and_then(|s| value(s.cpu.usage.total)),
                usage_nano_cores: cgroup
                    .and_then(|s| value(self.cpu_rates.nano_cores(&c.id, s.cpu.usage.total, at))),
            }),
            memory: Some(memory(cgroup, at)),
            writable_layer: Some(FilesystemUsage {
                timestamp: at,
                fs_id: Some(FilesystemIdentifier {
                    mountpoint: upper.display().to_string(),
                }),
                used_bytes: value(self.engine.container_size(&c.id)),
                inodes_used: None,
            }),
            swap: None,
        }
    }

    /// A pod's figures: its containers' summed, the pod network's interfaces (seen from
    /// any of its running containers: they share the namespace).
    fn pod_stats_of(&self, pod: &crate::pods::Pod) -> Result<PodSandboxStats> {
        let at = now_nanos();
        let mut containers = Vec::new();
        let (mut cpu, mut usage, mut working_set, mut processes) = (0u64, 0u64, 0u64, 0u64);
        let mut network = None;
        for c in self
            .containers
            .list()
            .iter()
            .filter(|c| c.sandbox == pod.id)
        {
            let sample = self.engine.container_stats(&c.id)?;
            if let Some(u) = &sample.usage {
                cpu += u.cgroup.cpu.usage.total;
                usage += u.cgroup.memory.usage.usage;
                working_set += u.cgroup.memory.usage.usage.saturating_sub(counter(
                    &u.cgroup,
                    "total_inactive_file",
                    "inactive_file",
                ));
                processes += u.cgroup.pids.current;
                if network.is_none() && !u.networks.is_empty() {
                    network = Some(network_usage(&u.networks, at));
                }
            }
            containers.push(self.stats_from(c, &sample));
        }
        Ok(PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id: pod.id.clone(),
                metadata: pod.config.metadata.clone(),
                labels: pod.config.labels.clone(),
                annotations: pod.config.annotations.clone(),
            }),
            linux: Some(LinuxPodSandboxStats {
                cpu: Some(CpuUsage {
                    timestamp: at,
                    usage_core_nano_seconds: value(cpu),
                    usage_nano_cores: value(self.cpu_rates.nano_cores(&pod_key(&pod.id), cpu, at)),
                }),
                memory: Some(MemoryUsage {
                    timestamp: at,
                    working_set_bytes: value(working_set),
                    usage_bytes: value(usage),
                    ..Default::default()
                }),
                network,
                process: Some(ProcessUsage {
                    timestamp: at,
                    process_count: value(processes),
                }),
                containers,
            }),
            windows: None,
        })
    }

    pub(crate) fn pod_stats(&self, id: &str) -> Result<PodSandboxStats> {
        let pod = self.pods.get(id)?;
        self.pod_stats_of(&pod)
    }

    pub(crate) fn list_pod_stats(
        &self,
        filter: Option<PodSandboxStatsFilter>,
    ) -> Result<Vec<PodSandboxStats>> {
        let f = filter.unwrap_or_default();
        self.pods
            .list()
            .iter()
            .filter(|p| p.ready)
            .filter(|p| f.id.is_empty() || p.id.starts_with(&f.id))
            .filter(|p| {
                f.label_selector
                    .iter()
                    .all(|(k, v)| p.config.labels.get(k) == Some(v))
            })
            .map(|p| self.pod_stats_of(p))
            .collect()
    }

    pub(crate) fn container_stats(&self, id: &str) -> Result<ContainerStats> {
        let c = self.containers.get(id)?;
        self.stats_of(&c)
    }

    pub(crate) fn list_container_stats(
        &self,
        filter: Option<ContainerStatsFilter>,
    ) -> Result<Vec<ContainerStats>> {
        let f = filter.unwrap_or_default();
        let mut out = Vec::new();
        for c in self.containers.list() {
            let wanted = (f.id.is_empty() || c.id.starts_with(&f.id))
                && (f.pod_sandbox_id.is_empty() || c.sandbox.starts_with(&f.pod_sandbox_id))
                && f.label_selector
                    .iter()
                    .all(|(k, v)| c.config.labels.get(k) == Some(v));
            if wanted {
                match self.stats_of(&c) {
                    Ok(s) => out.push(s),
                    // Removed meanwhile: not listed.
                    Err(crate::error::CriError::Engine(berth_engine::Error::NotFound(_))) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_cores_are_the_rate_since_the_previous_reading() {
        let rates = CpuRates::default();
        assert_eq!(
            rates.nano_cores("c", 5_000_000, 1_000_000_000),
            0,
            "first reading"
        );
        // Half a core for two seconds.
        assert_eq!(
            rates.nano_cores("c", 1_005_000_000, 3_000_000_000),
            500_000_000
        );
        assert_eq!(
            rates.nano_cores("c", 2_000_000_000, 3_000_000_000),
            0,
            "no time passed"
        );
        assert_eq!(
            rates.nano_cores("c", 1_005_000_000, 4_000_000_000),
            0,
            "went back"
        );
        assert_eq!(
            rates.nano_cores("other", 9, 4_000_000_000),
            0,
            "its own first reading"
        );
        rates.forget("c");
        assert_eq!(
            rates.nano_cores("c", 3_000_000_000, 5_000_000_000),
            0,
            "forgotten"
        );
        assert_eq!(
            rates.nano_cores("c", 3_000_000_000 + 2_000_000_000, 6_000_000_000),
            2_000_000_000,
            "two cores"
        );
    }

    #[test]
    fn the_working_set_leaves_out_inactive_cache() {
        let mut s = Stats::default();
        s.memory.usage.usage = 100;
        s.memory.usage.limit = u64::MAX;
        s.memory.raw.insert("total_inactive_file".into(), 30);
        s.memory.raw.insert("total_rss".into(), 50);
        let m = memory(Some(&s), 1);
        assert_eq!(m.working_set_bytes.map(|v| v.value), Some(70));
        assert_eq!(m.rss_bytes.map(|v| v.value), Some(50));
        assert_eq!(m.available_bytes, None, "no limit");
        s.memory.usage.limit = 200;
        assert_eq!(
            memory(Some(&s), 1).available_bytes.map(|v| v.value),
            Some(130)
        );
        assert_eq!(memory(None, 5).timestamp, 5);
    }
}

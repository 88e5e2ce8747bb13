//! GET /containers/{id}/stats: moby's StatsJSON (api/types/stats.go of API 1.45): the
//! embedded Stats first, then name, id and networks. The Windows-only members are kept
//! (omitted at zero, as dockerd on Linux omits them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatsResponse {
    /// When this sample was read (Go's zero time when the container has no process).
    pub read: String,
    /// When the previous sample (`precpu_stats`) was read.
    pub preread: String,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    /// Windows only.
    pub num_procs: u32,
    /// Windows only.
    pub storage_stats: StorageStats,
    pub cpu_stats: CpuStats,
    /// The previous sample's: the docker CLI's CPU % is the ratio of the two deltas.
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    /// With its leading slash.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The container's interfaces by name; absent on the host's network or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PidsStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0: no limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// Block I/O by device: null lists where the kernel has no figures (cgroup v2 has only
/// the first two).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_serviced_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_queue_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_service_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_wait_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_merged_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub sectors_recursive: Option<Vec<BlkioStatEntry>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BlkioStatEntry {
    pub major: u64,
    pub minor: u64,
    /// Read, Write, Sync, Async, Discard or Total.
    pub op: String,
    pub value: u64,
}

/// Windows only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StorageStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_count_normalized: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_size_bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub write_count_normalized: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub write_size_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    /// The host's CPU time in nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub system_cpu_usage: u64,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub online_cpus: u32,
    pub throttling_data: ThrottlingData,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuUsage {
    pub total_usage: u64,
    /// Per CPU (cgroup v1 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    /// Nanoseconds.
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_usage: u64,
    /// memory.stat's figures.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    /// Times the usage hit the limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failcnt: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
    /// Windows only.
    #[serde(rename = "commitbytes", default, skip_serializing_if = "is_zero")]
    pub commit: u64,
    /// Windows only.
    #[serde(rename = "commitpeakbytes", default, skip_serializing_if = "is_zero")]
    pub commit_peak: u64,
    /// Windows only.
    #[serde(rename = "privateworkingset", default, skip_serializing_if = "is_zero")]
    pub private_working_set: u64,
}

/// One interface's counters (moby's NetworkStats).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
    /// Windows only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint_id: String,
    /// Windows only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance_id: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn encode(v: &impl Serialize) -> Value {
        serde_json::to_value(v).unwrap_or_default()
    }

    /// What dockerd sends for a container that does not run: every struct member present
    /// (Go's omitempty never drops a struct), the omitempty numbers gone, blkio's lists null.
    #[test]
    fn a_sample_without_figures_is_dockerds() {
        let v = encode(&StatsResponse {
            read: "0001-01-01T00:00:00Z".into(),
            preread: "0001-01-01T00:00:00Z".into(),
            name: "/web".into(),
            id: "abc".into(),
            ..StatsResponse::default()
        });
        let cpu = json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
        });
        assert_eq!(
            v,
            json!({
                "read": "0001-01-01T00:00:00Z",
                "preread": "0001-01-01T00:00:00Z",
                "pids_stats": {},
                "blkio_stats": {
                    "io_service_bytes_recursive": null, "io_serviced_recursive": null,
                    "io_queue_recursive": null, "io_service_time_recursive": null,
                    "io_wait_time_recursive": null, "io_merged_recursive": null,
                    "io_time_recursive": null, "sectors_recursive": null
                },
                "num_procs": 0,
                "storage_stats": {},
                "cpu_stats": cpu,
                "precpu_stats": cpu,
                "memory_stats": {},
                "name": "/web",
                "id": "abc"
            })
        );
    }

    /// swagger's ContainerStats example's members, for a running container.
    #[test]
    fn figures_are_named_as_moby_s() {
        let mut networks = BTreeMap::new();
        networks.insert(
            "eth0".to_string(),
            NetworkStats {
                rx_bytes: 5338,
                rx_packets: 36,
                tx_bytes: 648,
                tx_packets: 8,
                ..NetworkStats::default()
            },
        );
        let v = encode(&StatsResponse {
            pids_stats: PidsStats {
                current: 3,
                limit: 0,
            },
            cpu_stats: CpuStats {
                cpu_usage: CpuUsage {
                    total_usage: 100215355,
                    percpu_usage: vec![8646879, 24472255],
                    usage_in_kernelmode: 30000000,
                    usage_in_usermode: 50000000,
                },
                system_cpu_usage: 739306590000000,
                online_cpus: 4,
                throttling_data: ThrottlingData::default(),
            },
            memory_stats: MemoryStats {
                usage: 6537216,
                limit: 67108864,
                ..MemoryStats::default()
            },
            blkio_stats: BlkioStats {
                io_service_bytes_recursive: Some(vec![BlkioStatEntry {
                    major: 8,
                    minor: 0,
                    op: "Read".into(),
                    value: 4096,
                }]),
                ..BlkioStats::default()
            },
            networks: Some(networks),
            ..StatsResponse::default()
        });
        assert_eq!(v["pids_stats"], json!({"current": 3}));
        assert_eq!(v["cpu_stats"]["online_cpus"], 4);
        assert_eq!(v["cpu_stats"]["system_cpu_usage"], 739306590000000u64);
        assert_eq!(
            v["cpu_stats"]["cpu_usage"]["percpu_usage"],
            json!([8646879, 24472255])
        );
        assert_eq!(
            v["memory_stats"],
            json!({"usage": 6537216, "limit": 67108864})
        );
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"],
            json!([{"major": 8, "minor": 0, "op": "Read", "value": 4096}])
        );
        assert_eq!(
            v["networks"]["eth0"],
            json!({"rx_bytes": 5338, "rx_packets": 36, "rx_errors": 0, "rx_dropped": 0,
                   "tx_bytes": 648, "tx_packets": 8, "tx_errors": 0, "tx_dropped": 0})
        );
    }
}

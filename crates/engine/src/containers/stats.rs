//! `docker stats`: one sample of a container's usage, read by berthd itself from the
//! container's cgroup (whichever hierarchy holds each controller) and from its network
//! namespace's interface counters. Nothing is asked of the shim or the runtime, so a sample
//! costs a few file reads.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::SystemTime;

use berth_cgroups::{Cgroup, Layout};
// The cgroup figures are part of a sample; their types come with it.
pub use berth_cgroups::stats::{BlkioEntry, Stats};

use super::{ContainerRecord, Status};
use crate::error::Result;
use crate::Engine;

/// An interface's counters, as /proc/net/dev has them (and moby's NetworkStats names them).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// What the host offers, for the figures that are ratios of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFigures {
    /// Nanoseconds the host's CPUs have run (all states but guest), as moby sums /proc/stat.
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    /// Bytes of RAM: the memory limit shown for a container without one.
    pub memory_bytes: u64,
}

/// One sample of a container's usage.
#[derive(Debug, Clone)]
pub struct Sample {
    pub id: String,
    /// With its leading slash, as moby names containers.
    pub name: String,
    pub read: SystemTime,
    /// None when the container has no process (its figures are all zero, as dockerd's).
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone)]
pub struct Usage {
    pub cgroup: Stats,
    pub host: HostFigures,
    /// The container's own interfaces by name (none for the host's network, and not `lo`).
    pub networks: BTreeMap<String, NetCounters>,
}

fn layout() -> Option<&'static Layout> {
    static LAYOUT: OnceLock<Option<Layout>> = OnceLock::new();
    LAYOUT
        .get_or_init(|| match Layout::detect() {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("stats: cannot read the cgroup layout: {e}");
                None
            }
        })
        .as_ref()
}

impl Engine {
    /// A sample of the container's usage now.
    pub fn container_stats(&self, name: &str) -> Result<Sample> {
        let record = self.containers.resolve(name)?;
        Ok(Sample {
            id: record.id.clone(),
            name: format!("/{}", record.name),
            read: SystemTime::now(),
            usage: usage(&record)?,
        })
    }
}

fn usage(record: &ContainerRecord) -> Result<Option<Usage>> {
    let running = record.state.status == Status::Running && !record.state.restarting;
    let Some(layout) = layout().filter(|_| running) else {
        return Ok(None);
    };
    let cgroup = Cgroup::at(layout.clone(), super::spec::cgroups_path(record));
    let cgroup = match cgroup.stats() {
        Ok(s) => s,
        // The container ended between the check and the read: no figures, as if stopped.
        Err(e) if !cgroup_exists(&cgroup) => {
            tracing::debug!("stats of {}: {e}", record.id);
            return Ok(None);
        }
        Err(e) => {
            return Err(crate::error::Error::Io(format!(
                "stats of {}: {e}",
                record.id
            )))
        }
    };
    let networks = if record.network_mode() == "host" {
        BTreeMap::new()
    } else {
        interfaces(record.state.pid)
    };
    Ok(Some(Usage {
        cgroup,
        host: host_figures(),
        networks,
    }))
}

fn cgroup_exists(cgroup: &Cgroup) -> bool {
    cgroup.dirs().any(|(_, dir)| dir.exists())
}

/// The counters of the interfaces in `pid`'s network namespace, but loopback.
fn interfaces(pid: i32) -> BTreeMap<String, NetCounters> {
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .map(|text| parse_net_dev(&text))
        .unwrap_or_default()
}

/// /proc/net/dev: two header lines, then `name: rx(8 columns) tx(8 columns)`.
fn parse_net_dev(text: &str) -> BTreeMap<String, NetCounters> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, figures) = line.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let n: Vec<u64> = figures
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            let at = |i: usize| n.get(i).copied().unwrap_or(0);
            Some((
                name.to_string(),
                NetCounters {
                    rx_bytes: at(0),
                    rx_packets: at(1),
                    rx_errors: at(2),
                    rx_dropped: at(3),
                    tx_bytes: at(8),
                    tx_packets: at(9),
                    tx_errors: at(10),
                    tx_dropped: at(11),
                },
            ))
        })
        .collect()
}

fn host_figures() -> HostFigures {
    let system_cpu_ns = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| system_cpu_ns(&text))
        .unwrap_or(0);
    // SAFETY: sysconf and sysinfo only read the kernel's figures into our own memory.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let memory_bytes = nix::sys::sysinfo::sysinfo()
        .map(|i| i.ram_total())
        .unwrap_or(0);
    HostFigures {
        system_cpu_ns,
        online_cpus: u32::try_from(online).unwrap_or(1).max(1),
        memory_bytes,
    }
}

/// The first line of /proc/stat, user to softirq (the 7 fields moby sums), in nanoseconds.
fn system_cpu_ns(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100);
    Some(ticks.saturating_mul(1_000_000_000 / hz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_counters_skip_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0:  123456     789    1    2    0     0          0         0    65432     321    3    4    0     0       0          0\n";
        let nets = parse_net_dev(text);
        assert_eq!(nets.len(), 1);
        let eth0 = &nets["eth0"];
        assert_eq!(
            (
                eth0.rx_bytes,
                eth0.rx_packets,
                eth0.rx_errors,
                eth0.rx_dropped
            ),
            (123456, 789, 1, 2)
        );
        assert_eq!(
            (
                eth0.tx_bytes,
                eth0.tx_packets,
                eth0.tx_errors,
                eth0.tx_dropped
            ),
            (65432, 321, 3, 4)
        );
    }

    #[test]
    fn system_cpu_sums_user_to_softirq() {
        let stat = "cpu  10 20 30 40 50 60 70 80 90 100\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        // SAFETY: as above.
        let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).expect("hz");
        assert_eq!(system_cpu_ns(stat), Some(280 * (1_000_000_000 / hz)));
        assert_eq!(system_cpu_ns("intr 1 2\n"), None);
    }
}

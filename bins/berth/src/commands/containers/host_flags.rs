//! The `run`/`create` flags for namespaces, groups, sysctls, the OOM killer, memory and CPU
//! tuning and block I/O, checked where the docker CLI checks them (with its messages) and
//! put into HostConfig as it puts them.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use berth_api_types::container::{HostConfig, ThrottleDevice, WeightDevice};
use clap::Args;

use super::options::parse_bytes;

#[derive(Debug, Args)]
pub struct HostFlags {
    /// Add additional groups to join (name or number).
    #[arg(long)]
    pub group_add: Vec<String>,
    /// PID namespace to use (host, container:NAME).
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use (private, shareable, none, host, container:NAME).
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use (host).
    #[arg(long)]
    pub uts: Option<String>,
    /// Cgroup namespace to use (host, private).
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container.
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// Size of /dev/shm (e.g. 64m).
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Sysctl options (NAME=VALUE; namespaced ones only).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Disable the OOM killer.
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Tune the host's OOM preferences (-1000 to 1000).
    #[arg(long, allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Memory soft limit (e.g. 32m).
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Tune the container's memory swappiness (0 to 100, -1: the default).
    #[arg(long, allow_hyphen_values = true, default_value_t = -1)]
    pub memory_swappiness: i64,
    /// Limit the CPU CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// Limit the CPU CFS quota in microseconds (-1: none).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Memory nodes in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// User namespace to use (host).
    #[arg(long)]
    pub userns: Option<String>,
    /// Storage driver options for the container (KEY=VALUE).
    #[arg(long)]
    pub storage_opt: Vec<String>,
    /// Limit the CPU real-time period in microseconds.
    #[arg(long)]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// Block I/O weight (10 to 1000, 0: none).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Block I/O weight per device (DEVICE:WEIGHT).
    #[arg(long)]
    pub blkio_weight_device: Vec<String>,
    /// Limit the read rate from a device (DEVICE:RATE, e.g. /dev/sda:1mb).
    #[arg(long)]
    pub device_read_bps: Vec<String>,
    /// Limit the write rate to a device (DEVICE:RATE).
    #[arg(long)]
    pub device_write_bps: Vec<String>,
    /// Limit the read operations per second from a device (DEVICE:NUMBER).
    #[arg(long)]
    pub device_read_iops: Vec<String>,
    /// Limit the write operations per second to a device (DEVICE:NUMBER).
    #[arg(long)]
    pub device_write_iops: Vec<String>,
    /// Write the container's id to this file.
    #[arg(long)]
    pub cidfile: Option<std::path::PathBuf>,
}

/// Reads one `DEVICE:VALUE` flag into its API object.
type DeviceParser = fn(&str) -> Result<ThrottleDevice>;

/// `DEVICE:VALUE` with a device path under /dev (the docker CLI's checks and messages).
fn device_pair(val: &str) -> Result<(&str, &str)> {
    match val.split_once(':') {
        Some((path, value)) if !path.is_empty() => {
            if !path.starts_with("/dev/") {
                bail!("bad format for device path: {val}");
            }
            Ok((path, value))
        }
        _ => bail!("bad format: {val}"),
    }
}

/// `--device-read-bps /dev/sda:1mb` as moby's ThrottleDevice.
fn throttle_bps(val: &str) -> Result<ThrottleDevice> {
    let (path, rate) = device_pair(val)?;
    let rate = parse_bytes(rate).ok().filter(|r| *r >= 0).ok_or_else(|| {
        anyhow::anyhow!("invalid rate for device: {val}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
    })?;
    Ok(ThrottleDevice {
        path: path.to_string(),
        // Not negative: checked above.
        rate: rate.unsigned_abs(),
    })
}

/// `--device-read-iops /dev/sda:100`.
fn throttle_iops(val: &str) -> Result<ThrottleDevice> {
    let (path, rate) = device_pair(val)?;
    let rate: u64 = rate.parse().map_err(|_| {
        anyhow::anyhow!("invalid rate for device: {val}. The correct format is <device-path>:<number>. Number must be a positive integer")
    })?;
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate,
    })
}

/// `--blkio-weight-device /dev/sda:300`.
fn weight_device(val: &str) -> Result<WeightDevice> {
    let (path, weight) = device_pair(val)?;
    let weight: u16 = weight
        .parse()
        .ok()
        .filter(|w| *w == 0 || (10..=1000).contains(w))
        .ok_or_else(|| anyhow::anyhow!("invalid weight for device: {val}"))?;
    Ok(WeightDevice {
        path: path.to_string(),
        weight,
    })
}

/// `--sysctl NAME=VALUE`: only the namespaced ones (the docker CLI's ValidateSysctl).
fn sysctl(val: &str) -> Result<(String, String)> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let refused = || {
        anyhow::anyhow!(
            "invalid argument \"{val}\" for \"--sysctl\" flag: sysctl '{val}' is not allowed"
        )
    };
    let (name, value) = val.split_once('=').ok_or_else(refused)?;
    if IPC.contains(&name) || name.starts_with("net.") || name.starts_with("fs.mqueue.") {
        return Ok((name.to_string(), value.to_string()));
    }
    Err(refused())
}

impl HostFlags {
    /// The docker CLI's checks of the namespace modes.
    fn check_modes(&self) -> Result<()> {
        let container_named = |m: &str| m.strip_prefix("container:").is_some_and(|n| !n.is_empty());
        if let Some(pid) = &self.pid {
            if !(pid.is_empty() || pid == "host" || container_named(pid)) {
                bail!("--pid: invalid PID mode");
            }
        }
        if let Some(uts) = &self.uts {
            if !(uts.is_empty() || uts == "host") {
                bail!("--uts: invalid UTS mode");
            }
        }
        if let Some(ns) = &self.cgroupns {
            if !matches!(ns.as_str(), "" | "host" | "private") {
                bail!("--cgroupns: invalid CGROUP mode");
            }
        }
        if self.memory_swappiness != -1 && !(0..=100).contains(&self.memory_swappiness) {
            bail!(
                "invalid value: {}. Valid memory swappiness range is 0-100",
                self.memory_swappiness
            );
        }
        Ok(())
    }

    /// Put the flags into `host` (the HostConfig).
    pub fn apply(&self, host: &mut HostConfig) -> Result<()> {
        self.check_modes()?;
        let strings = [
            (&mut host.pid_mode, &self.pid),
            (&mut host.ipc_mode, &self.ipc),
            (&mut host.uts_mode, &self.uts),
            (&mut host.cgroupns_mode, &self.cgroupns),
            (&mut host.cgroup_parent, &self.cgroup_parent),
        ];
        for (field, value) in strings {
            if let Some(v) = value {
                field.clone_from(v);
            }
        }
        host.group_add.clone_from(&self.group_add);
        host.sysctls = self
            .sysctl
            .iter()
            .map(|s| sysctl(s))
            .collect::<Result<BTreeMap<_, _>>>()?;
        if let Some(s) = &self.shm_size {
            host.shm_size = parse_bytes(s)?;
        }
        if let Some(s) = &self.memory_reservation {
            host.memory_reservation = parse_bytes(s)?;
        }
        if self.oom_kill_disable {
            host.oom_kill_disable = Some(true);
        }
        host.memory_swappiness = Some(self.memory_swappiness);
        host.oom_score_adj = self.oom_score_adj.unwrap_or(0);
        host.cpu_period = self.cpu_period.unwrap_or(0);
        host.cpu_quota = self.cpu_quota.unwrap_or(0);
        host.cpuset_mems = self.cpuset_mems.clone().unwrap_or_default();
        host.userns_mode = self.userns.clone().unwrap_or_default();
        host.storage_opt = self
            .storage_opt
            .iter()
            .map(|o| match o.split_once('=') {
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => bail!("invalid storage option {o:?}: expected KEY=VALUE"),
            })
            .collect::<Result<_>>()?;
        host.cpu_realtime_period = self.cpu_rt_period.unwrap_or(0);
        host.cpu_realtime_runtime = self.cpu_rt_runtime.unwrap_or(0);
        host.blkio_weight = self.blkio_weight.unwrap_or(0);
        host.blkio_weight_device = devices(&self.blkio_weight_device, weight_device)?;
        let throttles: [(_, &Vec<String>, DeviceParser); 4] = [
            (
                &mut host.blkio_device_read_bps,
                &self.device_read_bps,
                throttle_bps,
            ),
            (
                &mut host.blkio_device_write_bps,
                &self.device_write_bps,
                throttle_bps,
            ),
            (
                &mut host.blkio_device_read_iops,
                &self.device_read_iops,
                throttle_iops,
            ),
            (
                &mut host.blkio_device_write_iops,
                &self.device_write_iops,
                throttle_iops,
            ),
        ];
        for (field, values, parse) in throttles {
            *field = devices(values, parse)?;
        }
        if let Some(path) = &self.cidfile {
            host.container_id_file = path.to_string_lossy().into_owned();
        }
        Ok(())
    }
}

/// A device list flag, parsed; None (null, as the docker CLI sends it) when not given.
fn devices<T>(values: &[String], parse: fn(&str) -> Result<T>) -> Result<Option<Vec<T>>> {
    if values.is_empty() {
        return Ok(None);
    }
    values
        .iter()
        .map(|v| parse(v))
        .collect::<Result<_>>()
        .map(Some)
}

/// `--cidfile`: created before the create request (an existing file is refused, as the
/// docker CLI refuses it), written with the new id, removed if the create fails.
pub struct CidFile {
    path: Option<std::path::PathBuf>,
    file: Option<std::fs::File>,
    written: bool,
}

impl CidFile {
    pub fn create(path: Option<&std::path::Path>) -> Result<CidFile> {
        let Some(path) = path else {
            return Ok(CidFile {
                path: None,
                file: None,
                written: false,
            });
        };
        if path.exists() {
            bail!(
                "container ID file found, make sure the other container isn't running or delete {}",
                path.display()
            );
        }
        let file = std::fs::File::create(path)
            .map_err(|e| anyhow::anyhow!("failed to create the container ID file: {e}"))?;
        Ok(CidFile {
            path: Some(path.to_path_buf()),
            file: Some(file),
            written: false,
        })
    }

    pub fn write(&mut self, id: &str) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            std::io::Write::write_all(f, id.as_bytes()).map_err(|e| {
                anyhow::anyhow!("failed to write the container ID to the file: {e}")
            })?;
            self.written = true;
        }
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let (Some(path), false) = (&self.path, self.written) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_values_as_the_docker_cli_reads_them() {
        assert_eq!(
            throttle_bps("/dev/sda:1mb").ok(),
            Some(ThrottleDevice {
                path: "/dev/sda".into(),
                rate: 1048576
            })
        );
        assert!(throttle_bps("sda:1mb")
            .is_err_and(|e| e.to_string().starts_with("bad format for device path")));
        assert!(throttle_bps("/dev/sda").is_err_and(|e| e.to_string() == "bad format: /dev/sda"));
        assert!(throttle_iops("/dev/sda:1k")
            .is_err_and(|e| e.to_string().starts_with("invalid rate for device")));
        assert_eq!(
            weight_device("/dev/sda:300").ok(),
            Some(WeightDevice {
                path: "/dev/sda".into(),
                weight: 300
            })
        );
        assert!(weight_device("/dev/sda:5").is_err());
    }

    #[test]
    fn sysctls() {
        assert_eq!(
            sysctl("net.ipv4.ip_forward=1").ok(),
            Some(("net.ipv4.ip_forward".into(), "1".into()))
        );
        assert!(sysctl("kernel.shmmax=1").is_ok());
        assert!(sysctl("vm.swappiness=1").is_err_and(|e| e
            .to_string()
            .contains("sysctl 'vm.swappiness=1' is not allowed")));
    }
}

//! `docker update`: change a container's resources and restart policy, running or not, as
//! moby's Container.UpdateContainer merges them: a field sent at its zero value (or null)
//! keeps the container's own; the merged HostConfig is checked as at create, stored, and
//! given to the runtime's `update` when a process runs.

use serde_json::{Map, Value};

use berth_api_types::container::decode::is_zero;

use super::request::{HostConfig, UpdateConfig};
use super::{host, restart::RestartPolicy, ContainerRecord, Status};
use crate::error::{Error, Result};
use crate::Engine;

/// Keys copied from the update when they are not zero (moby's UpdateContainer).
const SET_WHEN_NOT_ZERO: [&str; 12] = [
    "BlkioWeight",
    "CpuShares",
    "NanoCpus",
    "CpuPeriod",
    "CpuQuota",
    "CpusetCpus",
    "CpusetMems",
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
];

/// Keys copied from the update when they are present (not null), even empty.
const SET_WHEN_PRESENT: [&str; 6] = [
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "PidsLimit",
];

/// Keys of moby's UpdateConfig that dockerd reads but does not change (it ignores them).
fn ignored_by_update(key: &str) -> bool {
    !SET_WHEN_NOT_ZERO.contains(&key) && !SET_WHEN_PRESENT.contains(&key) && key != "RestartPolicy"
}

fn conflict(what: &str) -> Error {
    Error::InvalidArgument(format!("Conflicting options: {what}"))
}

/// dockerd's refusals of an update that contradicts what the container already has.
fn check_against(current: &HostConfig, update: &HostConfig, auto_remove: bool) -> Result<()> {
    if update.nano_cpus > 0 && current.cpu_period > 0 {
        return Err(conflict(
            "Nano CPUs cannot be updated as CPU Period has already been set",
        ));
    }
    if update.nano_cpus > 0 && current.cpu_quota > 0 {
        return Err(conflict(
            "Nano CPUs cannot be updated as CPU Quota has already been set",
        ));
    }
    if update.cpu_period > 0 && current.nano_cpus > 0 {
        return Err(conflict(
            "CPU Period cannot be updated as NanoCPUs has already been set",
        ));
    }
    if update.cpu_quota > 0 && current.nano_cpus > 0 {
        return Err(conflict(
            "CPU Quota cannot be updated as NanoCPUs has already been set",
        ));
    }
    if update.memory != 0 && update.memory > current.memory_swap && update.memory_swap == 0 {
        return Err(Error::InvalidArgument(
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
        ));
    }
    let policy = RestartPolicy::parse(&update.restart_policy)?;
    if !update.restart_policy.name.is_empty() && auto_remove && !policy.is_none() {
        return Err(conflict(
            "Restart policy cannot be updated because AutoRemove is enabled for the container",
        ));
    }
    Ok(())
}

/// `current` with the update's fields merged in (SET_WHEN_NOT_ZERO, SET_WHEN_PRESENT).
fn merge(current: &HostConfig, update: &UpdateConfig) -> HostConfig {
    fn set<T: Clone + PartialEq + Default>(mine: &mut T, theirs: &T) {
        if *theirs != T::default() {
            *mine = theirs.clone();
        }
    }
    fn given<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
        if theirs.is_some() {
            mine.clone_from(theirs);
        }
    }
    let mut m = current.clone();
    let u = update;
    set(&mut m.blkio_weight, &u.blkio_weight);
    set(&mut m.cpu_shares, &u.cpu_shares);
    set(&mut m.nano_cpus, &u.nano_cpus);
    set(&mut m.cpu_period, &u.cpu_period);
    set(&mut m.cpu_quota, &u.cpu_quota);
    set(&mut m.cpuset_cpus, &u.cpuset_cpus);
    set(&mut m.cpuset_mems, &u.cpuset_mems);
    set(&mut m.memory, &u.memory);
    set(&mut m.memory_swap, &u.memory_swap);
    set(&mut m.memory_reservation, &u.memory_reservation);
    set(&mut m.cpu_realtime_period, &u.cpu_realtime_period);
    set(&mut m.cpu_realtime_runtime, &u.cpu_realtime_runtime);
    given(&mut m.blkio_weight_device, &u.blkio_weight_device);
    given(&mut m.blkio_device_read_bps, &u.blkio_device_read_bps);
    given(&mut m.blkio_device_write_bps, &u.blkio_device_write_bps);
    given(&mut m.blkio_device_read_iops, &u.blkio_device_read_iops);
    given(&mut m.blkio_device_write_iops, &u.blkio_device_write_iops);
    given(&mut m.pids_limit, &u.pids_limit);
    m
}

/// The stored HostConfig as dockerd keeps it: a memory limit without a swap limit has
/// twice the limit as its swap limit (moby's adaptContainerSettings).
fn adapted(stored: &HostConfig) -> HostConfig {
    let mut host = stored.clone();
    if host.memory > 0 && host.memory_swap == 0 {
        host.memory_swap = host.memory.saturating_mul(2);
    }
    host
}

/// The members of `update` an update does not change, given at a value that is not zero.
fn ignored_members(update: &UpdateConfig) -> Vec<String> {
    let Ok(Value::Object(members)) = serde_json::to_value(update) else {
        return Vec::new();
    };
    members
        .into_iter()
        .filter(|(key, value)| ignored_by_update(key) && !is_zero(value))
        .map(|(key, _)| key)
        .collect()
}

impl Engine {
    /// POST /containers/{id}/update: dockerd's warnings (what this host discards, and the
    /// fields an update cannot change).
    pub fn update_container(&self, name: &str, update: &UpdateConfig) -> Result<Vec<String>> {
        let record = self.containers.resolve(name)?;
        let current = adapted(&record.host_config);
        check_against(&current, update, record.auto_remove())
            .map_err(|e| cannot_update(&record.id, e))?;
        let mut merged = merge(&current, update);
        let mut warnings = Vec::new();
        let sys = host::sysinfo::SysInfo::host();
        let (blkio, resources) = host::limits(&merged, sys, &mut warnings)?;
        for key in ignored_members(update) {
            warnings.push(format!(
                "{key} cannot be changed by an update: ignored, as dockerd ignores it"
            ));
        }
        let restart = (!update.restart_policy.name.is_empty())
            .then(|| RestartPolicy::parse(&update.restart_policy))
            .transpose()?;
        let mut changed = record.clone();
        if let Some(policy) = &restart {
            merged.restart_policy = update.restart_policy.clone();
            changed.restart = policy.clone();
        }
        changed.host_config = merged;
        changed.host.blkio = blkio;
        changed.host.resources = resources;
        if record.state.status == Status::Running && !record.state.restarting {
            self.apply_resources(&changed)
                .map_err(|e| cannot_update(&record.id, e))?;
        }
        self.containers.update(&record.id, |r| {
            r.host_config = changed.host_config;
            r.restart = changed.restart;
            r.host.blkio = changed.host.blkio;
            r.host.resources = changed.host.resources;
        })?;
        self.containers.event(&record.id, "update", &[]);
        Ok(warnings)
    }

    /// Give the running container's runtime the record's resources (`runtime update -r`).
    fn apply_resources(&self, record: &ContainerRecord) -> Result<()> {
        let mut resources = record
            .host
            .resources
            .clone()
            .unwrap_or_else(|| Value::Object(Map::new()));
        if let Some(blkio) = record.host.blkio.for_container()? {
            resources["blockIO"] = blkio;
        }
        let file = self
            .containers
            .dir(&record.id)
            .join("update-resources.json");
        let bytes = serde_json::to_vec(&resources).map_err(|e| Error::Io(e.to_string()))?;
        super::write_private(&file, &bytes)?;
        let file_arg = file.to_string_lossy().into_owned();
        let outcome = self.runtime(record, &["update", "--resources", &file_arg, &record.id]);
        let _ = std::fs::remove_file(&file);
        outcome.map(drop)
    }
}

/// moby's errCannotUpdate wording around the cause, keeping its kind (a 400 stays a 400).
fn cannot_update(id: &str, e: Error) -> Error {
    let say = |m: String| format!("Cannot update container {id}: {m}");
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(say(m)),
        Error::Conflict(m) => Error::Io(say(m)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(v: Value) -> HostConfig {
        berth_api_types::container::decode::update_config(&v).expect("typed")
    }

    #[test]
    fn zero_fields_keep_the_containers_own_and_null_pids_limit_too() {
        let stored = adapted(&typed(
            json!({"Memory": 67108864, "CpuShares": 512, "PidsLimit": 10}),
        ));
        let update =
            typed(json!({"Memory": 0, "CpuShares": 256, "PidsLimit": null, "CpusetCpus": ""}));
        let merged = merge(&stored, &update);
        assert_eq!(merged.memory, 67108864);
        assert_eq!(merged.memory_swap, 134217728);
        assert_eq!(merged.cpu_shares, 256);
        assert_eq!(merged.pids_limit, Some(10));
        let merged = merge(&stored, &typed(json!({"PidsLimit": 0})));
        assert_eq!(merged.pids_limit, Some(0));
        let with_devices = merge(
            &stored,
            &typed(json!({"BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 300}]})),
        );
        let kept = merge(&with_devices, &typed(json!({"BlkioWeightDevice": null})));
        assert_eq!(kept.blkio_weight_device.map(|d| d.len()), Some(1));
        let cleared = merge(&with_devices, &typed(json!({"BlkioWeightDevice": []})));
        assert_eq!(cleared.blkio_weight_device.map(|d| d.len()), Some(0));
    }

    #[test]
    fn members_an_update_cannot_change_are_named() {
        let update = typed(
            json!({"Memory": 1048576, "Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1}],
            "KernelMemory": 1048576, "Privileged": false, "RestartPolicy": {"Name": "always"}}),
        );
        assert_eq!(ignored_members(&update), ["KernelMemory", "Ulimits"]);
    }

    #[test]
    fn dockerd_conflicts_are_refused() {
        let cases = [
            (
                json!({"CpuPeriod": 100000}),
                json!({"NanoCpus": 1000000000}),
                "Nano CPUs cannot be updated",
            ),
            (
                json!({"NanoCpus": 1000000000}),
                json!({"CpuQuota": 5000}),
                "CPU Quota cannot be updated",
            ),
            (
                json!({}),
                json!({"Memory": 67108864}),
                "Memory limit should be smaller",
            ),
            (
                json!({}),
                json!({"RestartPolicy": {"Name": "always"}}),
                "AutoRemove",
            ),
        ];
        for (current, update, message) in cases {
            let e = check_against(&typed(current), &typed(update), true).expect_err("refused");
            assert!(e.to_string().contains(message), "{e}");
        }
        let fine = check_against(
            &typed(json!({"Memory": 67108864, "MemorySwap": 134217728})),
            &typed(json!({"Memory": 33554432})),
            false,
        );
        assert!(fine.is_ok());
    }

    #[test]
    fn only_unchangeable_keys_are_ignored() {
        assert!(ignored_by_update("Ulimits"));
        assert!(ignored_by_update("KernelMemory"));
        assert!(!ignored_by_update("Memory"));
        assert!(!ignored_by_update("PidsLimit"));
        assert!(!ignored_by_update("RestartPolicy"));
    }
}

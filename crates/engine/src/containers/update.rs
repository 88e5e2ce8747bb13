//! `docker update`: change a container's resources and restart policy, running or not, as
//! moby's Container.UpdateContainer merges them: a field sent at its zero value (or null)
//! keeps the container's own; the merged HostConfig is checked as at create, stored, and
//! given to the runtime's `update` when a process runs.

use serde_json::{Map, Value};

use super::request::{self, HostConfig};
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

/// The stored HostConfig with the update's fields merged in.
fn merge(stored: &Map<String, Value>, update: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = stored.clone();
    for key in SET_WHEN_NOT_ZERO {
        if let Some(v) = update.get(key).filter(|v| !request::is_zero(v)) {
            merged.insert(key.to_string(), v.clone());
        }
    }
    for key in SET_WHEN_PRESENT {
        if let Some(v) = update.get(key).filter(|v| !v.is_null()) {
            merged.insert(key.to_string(), v.clone());
        }
    }
    merged
}

/// The stored HostConfig as dockerd keeps it: a memory limit without a swap limit has
/// twice the limit as its swap limit (moby's adaptContainerSettings).
fn adapted(stored: &Value) -> Map<String, Value> {
    let mut map = stored.as_object().cloned().unwrap_or_default();
    let memory = map.get("Memory").and_then(Value::as_i64).unwrap_or(0);
    let swap = map.get("MemorySwap").and_then(Value::as_i64).unwrap_or(0);
    if memory > 0 && swap == 0 {
        map.insert("MemorySwap".into(), Value::from(memory.saturating_mul(2)));
    }
    map
}

impl Engine {
    /// POST /containers/{id}/update: dockerd's warnings (what this host discards, and the
    /// fields an update cannot change).
    pub fn update_container(&self, name: &str, body: &Value) -> Result<Vec<String>> {
        let update = request::update_body(body)?;
        let update_map = body.as_object().cloned().unwrap_or_default();
        let record = self.containers.resolve(name)?;
        let stored = adapted(&record.host_config);
        let current = request::host_config(&Value::Object(stored.clone()))?;
        check_against(&current, &update, record.auto_remove())
            .map_err(|e| cannot_update(&record.id, e))?;
        let merged_map = merge(&stored, &update_map);
        let merged = request::host_config(&Value::Object(merged_map.clone()))?;
        let mut warnings = Vec::new();
        let sys = host::sysinfo::SysInfo::host();
        let (blkio, resources) = host::limits(&merged, sys, &mut warnings)?;
        for (key, value) in &update_map {
            if ignored_by_update(key) && !request::is_zero(value) {
                warnings.push(format!(
                    "{key} cannot be changed by an update: ignored, as dockerd ignores it"
                ));
            }
        }
        let restart = (!update.restart_policy.name.is_empty())
            .then(|| RestartPolicy::parse(&update.restart_policy))
            .transpose()?;
        let mut changed = record.clone();
        changed.host_config = Value::Object(merged_map);
        if let Some(policy) = &restart {
            changed.host_config["RestartPolicy"] = body["RestartPolicy"].clone();
            changed.restart = policy.clone();
        }
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
        request::host_config(&v).expect("typed")
    }

    #[test]
    fn zero_fields_keep_the_containers_own_and_null_pids_limit_too() {
        let stored = adapted(&json!({"Memory": 67108864, "CpuShares": 512, "PidsLimit": 10}));
        let update = json!({"Memory": 0, "CpuShares": 256, "PidsLimit": null, "CpusetCpus": ""});
        let merged = merge(&stored, update.as_object().expect("object"));
        assert_eq!(merged["Memory"], 67108864);
        assert_eq!(merged["MemorySwap"], 134217728);
        assert_eq!(merged["CpuShares"], 256);
        assert_eq!(merged["PidsLimit"], 10);
        let merged = merge(
            &stored,
            json!({"PidsLimit": 0}).as_object().expect("object"),
        );
        assert_eq!(merged["PidsLimit"], 0);
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

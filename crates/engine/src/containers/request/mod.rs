//! The bodies of `POST /containers/create` and `POST /containers/{id}/exec`, typed as moby's
//! Config, HostConfig and ExecConfig are. dockerd decodes them into Go structs, so a value of
//! the wrong JSON type (`"Memory": "1g"`, `"Env": {}`, a number that does not fit an int64)
//! is a 400 that names the field; berth refuses them the same way, before anything is
//! created, instead of dropping them. A key berth does not honour is refused by name unless
//! it carries its zero value (clients send whole structs).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

mod unsupported;

/// Docker's StrSlice: a list of strings, or one string (a list of one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrSlice(pub Vec<String>);

impl<'de> Deserialize<'de> for StrSlice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            One(String),
        }
        match Form::deserialize(d) {
            Ok(Form::List(list)) => Ok(StrSlice(list)),
            Ok(Form::One(one)) => Ok(StrSlice(vec![one])),
            Err(_) => Err(serde::de::Error::custom(
                "expected a string or a list of strings",
            )),
        }
    }
}

/// The Config keys berth reads (the create body is a Config with HostConfig inside).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateBody {
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Option<StrSlice>,
    pub entrypoint: Option<StrSlice>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    pub stop_timeout: Option<i64>,
    pub image: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// Deprecated since API 1.44 (the docker CLI sends NetworkingConfig's instead).
    pub mac_address: String,
    /// moby's HealthConfig (durations in nanoseconds).
    pub healthcheck: Option<super::health::HealthConfig>,
    /// Anonymous volumes by destination (`-v /path`; the values are empty objects).
    pub volumes: BTreeMap<String, Value>,
    pub domainname: String,
    /// `{"80/tcp": {}}`: the ports the container listens on (`--expose`, image EXPOSE).
    pub exposed_ports: BTreeMap<String, Value>,
    pub host_config: HostConfig,
    pub networking_config: NetworkingConfig,
}

/// NetworkingConfig: berth reads the endpoints' MAC addresses only (to refuse them: none
/// and host networks have no interface of the container's own).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    pub mac_address: String,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfig>,
    /// `--gw-priority` (API 1.48): the network with the highest gives the default route.
    pub gw_priority: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// The HostConfig keys berth reads, with moby's types.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub ulimits: Vec<Ulimit>,
    pub cap_add: StrSlice,
    pub cap_drop: StrSlice,
    pub readonly_rootfs: bool,
    pub tmpfs: BTreeMap<String, String>,
    pub binds: Vec<String>,
    /// `--mount` (moby's mount.Mount).
    pub mounts: Vec<crate::volumes::mounts::MountSpec>,
    /// `--volumes-from CONTAINER[:ro|rw]`.
    pub volumes_from: Vec<String>,
    /// The driver of the volumes the container makes (only `local`).
    pub volume_driver: String,
    pub privileged: bool,
    pub init: Option<bool>,
    pub devices: Vec<DeviceMapping>,
    pub device_cgroup_rules: Vec<String>,
    pub network_mode: String,
    pub auto_remove: bool,
    pub security_opt: Vec<String>,
    pub restart_policy: RestartPolicyConfig,
    pub console_size: Option<[u64; 2]>,
    pub log_config: LogConfig,
    pub runtime: String,
    /// Written by the client (the docker CLI writes the file itself); dockerd ignores it.
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    pub group_add: Vec<String>,
    pub pid_mode: String,
    pub ipc_mode: String,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub cgroupns_mode: String,
    pub shm_size: i64,
    pub sysctls: BTreeMap<String, String>,
    /// Go's int (64 bits on the platforms dockerd runs on).
    pub oom_score_adj: i64,
    pub oom_kill_disable: Option<bool>,
    pub memory_reservation: i64,
    pub memory_swappiness: Option<i64>,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub blkio_weight: u16,
    pub blkio_weight_device: Vec<WeightDevice>,
    pub blkio_device_read_bps: Vec<ThrottleDevice>,
    pub blkio_device_write_bps: Vec<ThrottleDevice>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Vec<ThrottleDevice>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Vec<ThrottleDevice>,
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: u64,
    /// `-p`: container port (`80/tcp`) to host bindings.
    pub port_bindings: BTreeMap<String, Option<Vec<PortBinding>>>,
    /// `-P`: every exposed port on an ephemeral host port.
    pub publish_all_ports: bool,
    pub dns: Vec<String>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    /// `--add-host NAME:IP` (IP may be `host-gateway`).
    pub extra_hosts: Vec<String>,
}

/// moby's nat.PortBinding.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// moby's blkiodev.WeightDevice (`--blkio-weight-device /dev/sda:300`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// moby's blkiodev.ThrottleDevice (`--device-read-bps /dev/sda:1mb`): bytes or operations
/// per second.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `--device /dev/host[:/dev/container[:rwm]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicyConfig {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub driver: String,
    pub config: BTreeMap<String, String>,
}

/// The exec config keys berth reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecBody {
    pub tty: bool,
    pub env: Vec<String>,
    /// A list: moby's ExecConfig.Cmd is a []string, not a StrSlice.
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub privileged: bool,
    pub detach_keys: String,
    pub console_size: Option<[u64; 2]>,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
}

/// `v` without the object members that are null: Go's decoder leaves a field at its zero
/// value for a null, which serde's defaults give when the member is absent.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Decode `v` as `T`; a mismatch names the field's path under `section`.
fn typed<T: for<'de> Deserialize<'de>>(section: &str, v: &Value) -> Result<T> {
    serde_path_to_error::deserialize(&without_nulls(v)).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            section.to_string()
        } else {
            format!("{section}.{path}")
        };
        Error::InvalidArgument(format!("invalid {field}: {}", e.inner()))
    })
}

fn object<'a>(body: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    body.as_object()
        .ok_or_else(|| Error::InvalidArgument(format!("the {what} must be a JSON object")))
}

/// The create body, checked for options berth does not honour and typed.
pub fn create_body(body: &Value) -> Result<CreateBody> {
    let obj = object(body, "body")?;
    unsupported::refuse(unsupported::Section::Config, obj)?;
    match obj.get("HostConfig") {
        None | Some(Value::Null) => {}
        Some(host) => unsupported::refuse(
            unsupported::Section::HostConfig,
            object(host, "HostConfig")?,
        )?,
    }
    typed("Config", body)
}

/// The body of `POST /containers/{id}/update` (moby's UpdateConfig: the Resources and the
/// RestartPolicy of a HostConfig, under the same keys), typed. Keys it does not have are
/// ignored, as dockerd's decoder ignores them.
pub fn update_body(body: &Value) -> Result<HostConfig> {
    object(body, "body")?;
    typed("update config", body)
}

/// A stored HostConfig (checked at create), typed again to be merged with an update.
pub fn host_config(stored: &Value) -> Result<HostConfig> {
    typed("HostConfig", stored)
}

pub(crate) use unsupported::is_zero;

/// The exec body, typed (berth honours every field of moby's ExecConfig; others are
/// ignored, as dockerd's decoder ignores them).
pub fn exec_body(body: &Value) -> Result<ExecBody> {
    object(body, "body")?;
    typed("exec config", body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(body: Value) -> String {
        match create_body(&body) {
            Err(e) => e.to_string(),
            Ok(b) => panic!("{body} accepted as {b:?}"),
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            (json!({"HostConfig": {"Memory": "1g"}}), "HostConfig.Memory"),
            (
                json!({"HostConfig": {"Memory": 9223372036854775808u64}}),
                "HostConfig.Memory",
            ),
            (
                json!({"HostConfig": {"Memory": 18446744073709551621.0}}),
                "HostConfig.Memory",
            ),
            (json!({"HostConfig": {"Memory": 1.5}}), "HostConfig.Memory"),
            (
                json!({"HostConfig": {"PidsLimit": 9223372036854775808u64}}),
                "HostConfig.PidsLimit",
            ),
            (
                json!({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 9223372036854775808u64, "Hard": 1}]}}),
                "HostConfig.Ulimits[0].Soft",
            ),
            (json!({"Env": {"A": "1"}}), "Config.Env"),
            (json!({"Cmd": 5}), "Config.Cmd"),
            (json!({"Labels": {"a": 1}}), "Config.Labels.a"),
            (
                json!({"Healthcheck": {"Test": "true"}}),
                "Config.Healthcheck.Test",
            ),
            (
                json!({"Healthcheck": {"Interval": "1s"}}),
                "Config.Healthcheck.Interval",
            ),
        ];
        for (body, field) in cases {
            let msg = refused(body.clone());
            assert!(msg.contains(field), "{body}: {msg}");
        }
    }

    #[test]
    fn nulls_zero_values_and_strings_as_lists_are_accepted() {
        let b = create_body(&json!({
            "Image": "x", "Cmd": "echo hi", "Entrypoint": null, "Hostname": null,
            "Volumes": null, "Domainname": "", "HostConfig": {"Memory": null, "CpuShares": 0,
            "Isolation": "", "MemorySwappiness": -1, "Devices": [], "Ulimits": null},
        }))
        .expect("accepted");
        assert_eq!(b.cmd, Some(StrSlice(vec!["echo hi".into()])));
        assert_eq!(b.entrypoint, None);
        assert_eq!(b.host_config.memory, 0);
    }

    #[test]
    fn unsupported_keys_are_refused_by_name() {
        assert!(refused(json!({"NetworkDisabled": true})).contains("Config.NetworkDisabled"));
        assert!(refused(json!({"HostConfig": {"Links": ["other"]}})).contains("HostConfig.Links"));
        assert!(refused(json!({"HostConfig": {"BlkioWeight": 70000}}))
            .contains("HostConfig.BlkioWeight"));
        assert!(
            refused(json!({"HostConfig": {"Sysctls": {"kernel.sem": 1}}}))
                .contains("HostConfig.Sysctls.kernel.sem")
        );
        assert!(refused(json!({"HostConfig": "x"})).contains("HostConfig"));
        assert!(refused(json!([1])).contains("JSON object"));
    }

    #[test]
    fn exec_bodies_are_typed() {
        let b = exec_body(&json!({"Cmd": ["sh"], "Env": null, "Tty": true})).expect("exec");
        assert_eq!(b.cmd, ["sh"]);
        assert!(exec_body(&json!({"Cmd": "sh"}))
            .is_err_and(|e| e.to_string().contains("exec config.Cmd")));
        assert!(b.tty);
        assert!(exec_body(&json!({"Cmd": ["sh"], "Env": "A=1"}))
            .is_err_and(|e| e.to_string().contains("exec config.Env")));
    }
}

//! The body of `POST /containers/create` (moby's Config with HostConfig and
//! NetworkingConfig inside), and of `POST /containers/{id}/update` (moby's UpdateConfig:
//! the Resources and RestartPolicy of a HostConfig, under the same keys). Members follow
//! moby's Go structs for API 1.45 in their order; `omitempty` members are skipped when
//! zero. Decode request bodies with [`super::decode`], which applies dockerd's rules (a
//! null is the zero value, a wrong type names the field, options berth does not honour
//! are refused by name).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::mount::Mount;
use crate::network::EndpointSettings;

/// Docker's StrSlice: a list of strings, or one string (a list of one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrSlice(pub Vec<String>);

impl<'de> Deserialize<'de> for StrSlice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
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

impl Serialize for StrSlice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A Go slice member that is nil unless given: dockerd writes null for it, and so does a
/// list here when it is empty.
fn null_if_empty<T: Serialize, S: Serializer>(list: &[T], s: S) -> Result<S::Ok, S::Error> {
    if list.is_empty() {
        s.serialize_none()
    } else {
        list.serialize(s)
    }
}

fn str_slice_null_if_empty<S: Serializer>(list: &StrSlice, s: S) -> Result<S::Ok, S::Error> {
    null_if_empty(&list.0, s)
}

fn null_if_no_members<V: Serialize, S: Serializer>(
    map: &BTreeMap<String, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    if map.is_empty() {
        s.serialize_none()
    } else {
        map.serialize(s)
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// moby's HealthConfig (dockerspec.HealthcheckConfig): durations in nanoseconds, zero for
/// the default (or the image's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub start_period: i64,
    /// API 1.44 and later (compat drops an older client's).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub start_interval: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub retries: i64,
}

/// moby's container.Config, with the create request's HostConfig and NetworkingConfig
/// (moby's CreateRequest) inline, as the create body carries them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// `{"80/tcp": {}}`: the ports the container listens on (`--expose`, image EXPOSE).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Value>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// None (null) when not given; the engine's merge with the image's always makes a
    /// list, even an empty one (an `Env: ["PATH"]` unsetting the image's only variable).
    pub env: Option<Vec<String>>,
    pub cmd: Option<StrSlice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    pub image: String,
    /// Anonymous volumes by destination (`-v /path`; the values are empty objects).
    #[serde(serialize_with = "null_if_no_members")]
    pub volumes: BTreeMap<String, Value>,
    pub working_dir: String,
    pub entrypoint: Option<StrSlice>,
    #[serde(skip_serializing_if = "is_false")]
    pub network_disabled: bool,
    /// Deprecated since API 1.44 (the docker CLI sends NetworkingConfig's instead).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    pub on_build: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<StrSlice>,
    /// The create body carries HostConfig and NetworkingConfig inside Config (moby's
    /// CreateRequest); inspect's Config, which leaves them at their defaults, has neither.
    #[serde(skip_serializing_if = "is_default")]
    pub host_config: HostConfig,
    #[serde(skip_serializing_if = "is_default")]
    pub networking_config: NetworkingConfig,
}

/// moby's NetworkingConfig: the endpoint to make on each network at create (the same
/// EndpointSettings inspect reports, of which a client sets IPAMConfig, Links, Aliases,
/// MacAddress, DriverOpts and GwPriority).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// moby's HostConfig with its embedded Resources inline (the JSON has them at one level).
/// Every member of API 1.45's; which ones berth refuses is the decoder's business.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    #[serde(serialize_with = "null_if_empty")]
    pub binds: Vec<String>,
    /// Written by the client (the docker CLI writes the file itself); dockerd ignores it.
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    pub log_config: LogConfig,
    pub network_mode: String,
    /// `-p`: container port (`80/tcp`) to host bindings.
    pub port_bindings: BTreeMap<String, Option<Vec<PortBinding>>>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    /// The driver of the volumes the container makes (only `local`).
    pub volume_driver: String,
    /// `--volumes-from CONTAINER[:ro|rw]`.
    #[serde(serialize_with = "null_if_empty")]
    pub volumes_from: Vec<String>,
    /// Height and width of the terminal at start (0: none given).
    pub console_size: [u64; 2],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(serialize_with = "str_slice_null_if_empty")]
    pub cap_add: StrSlice,
    #[serde(serialize_with = "str_slice_null_if_empty")]
    pub cap_drop: StrSlice,
    pub cgroupns_mode: String,
    #[serde(serialize_with = "null_if_empty")]
    pub dns: Vec<String>,
    #[serde(serialize_with = "null_if_empty")]
    pub dns_options: Vec<String>,
    #[serde(serialize_with = "null_if_empty")]
    pub dns_search: Vec<String>,
    /// `--add-host NAME:IP` (IP may be `host-gateway`).
    #[serde(serialize_with = "null_if_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(serialize_with = "null_if_empty")]
    pub group_add: Vec<String>,
    pub ipc_mode: String,
    pub cgroup: String,
    pub links: Option<Vec<String>>,
    /// Go's int (64 bits on the platforms dockerd runs on).
    pub oom_score_adj: i64,
    pub pid_mode: String,
    pub privileged: bool,
    /// `-P`: every exposed port on an ephemeral host port.
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    #[serde(serialize_with = "null_if_empty")]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub storage_opt: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub shm_size: i64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    pub isolation: String,
    // moby's Resources, embedded.
    pub cpu_shares: i64,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cgroup_parent: String,
    pub blkio_weight: u16,
    /// The device lists are null when not given: an update changes them only when given.
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    #[serde(serialize_with = "null_if_empty")]
    pub devices: Vec<DeviceMapping>,
    #[serde(serialize_with = "null_if_empty")]
    pub device_cgroup_rules: Vec<String>,
    pub device_requests: Option<Vec<DeviceRequest>>,
    /// Deprecated (kernel 5.4 dropped kmem limits); dockerd ignores it.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub kernel_memory: i64,
    #[serde(rename = "KernelMemoryTCP", skip_serializing_if = "is_zero_i64")]
    pub kernel_memory_tcp: i64,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    /// None: unchanged by an update, the default at create.
    pub pids_limit: Option<i64>,
    #[serde(serialize_with = "null_if_empty")]
    pub ulimits: Vec<Ulimit>,
    /// Windows only.
    pub cpu_count: i64,
    /// Windows only.
    pub cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: u64,
    // End of Resources.
    /// `--mount` (moby's mount.Mount).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}

/// moby's UpdateConfig: Resources and RestartPolicy, under HostConfig's keys. It is a
/// HostConfig because the JSON is one: the members an update does not change are the
/// engine's to ignore (with a warning), as dockerd decodes and ignores them.
pub type UpdateConfig = HostConfig;

/// moby's nat.PortBinding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// moby's blkiodev.WeightDevice (`--blkio-weight-device /dev/sda:300`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// moby's blkiodev.ThrottleDevice (`--device-read-bps /dev/sda:1mb`): bytes or operations
/// per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

/// go-units' Ulimit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `--device /dev/host[:/dev/container[:rwm]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// `--gpus` (moby's DeviceRequest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceRequest {
    pub driver: String,
    /// -1: all.
    pub count: i64,
    #[serde(rename = "DeviceIDs")]
    pub device_ids: Option<Vec<String>>,
    /// An OR list of AND lists of capabilities.
    pub capabilities: Option<Vec<Vec<String>>>,
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub driver: String,
    pub config: BTreeMap<String, String>,
}

/// moby's UpdateResponse (`POST /containers/{id}/update`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateResponse {
    /// Always a list (dockerd's is never null for this route).
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A HostConfig no option was given for, as dockerd encodes moby's zero HostConfig
    /// (Go's encoding of hostconfig.go's struct: nil slices and pointers null, `omitempty`
    /// members absent, ConsoleSize a [2]uint, Resources' members inline after Isolation).
    #[test]
    fn an_empty_host_config_has_dockerds_shape() {
        let v = serde_json::to_value(HostConfig::default()).expect("json");
        let dockerd: Value = serde_json::from_str(
            r#"{
                "Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
                "NetworkMode": "", "PortBindings": {}, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
                "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "ConsoleSize": [0, 0],
                "CapAdd": null, "CapDrop": null, "CgroupnsMode": "", "Dns": null, "DnsOptions": null,
                "DnsSearch": null, "ExtraHosts": null, "GroupAdd": null, "IpcMode": "", "Cgroup": "",
                "Links": null, "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
                "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null,
                "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "",
                "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
                "BlkioWeightDevice": null, "BlkioDeviceReadBps": null, "BlkioDeviceWriteBps": null,
                "BlkioDeviceReadIOps": null, "BlkioDeviceWriteIOps": null, "CpuPeriod": 0,
                "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
                "CpusetMems": "", "Devices": null, "DeviceCgroupRules": null, "DeviceRequests": null,
                "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null,
                "OomKillDisable": null, "PidsLimit": null, "Ulimits": null, "CpuCount": 0,
                "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
                "MaskedPaths": null, "ReadonlyPaths": null
            }"#,
        )
        .expect("fragment");
        assert_eq!(v, dockerd);
        // Go's order: HostConfig's own members, then Resources', then Mounts and the rest.
        let text = serde_json::to_string(&HostConfig::default()).expect("text");
        let at = |key: &str| text.find(&format!("\"{key}\":")).expect(key);
        assert!(text.starts_with(r#"{"Binds":null,"ContainerIDFile":"""#));
        assert!(at("Isolation") < at("CpuShares") && at("IOMaximumBandwidth") < at("MaskedPaths"));
        assert!(text.ends_with(r#""ReadonlyPaths":null}"#));
    }

    /// The `omitempty` members appear once given; Mounts in moby's mount.Mount shape.
    #[test]
    fn given_omitempty_members_are_written() {
        let host = HostConfig {
            sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
            runtime: "runc".into(),
            init: Some(true),
            mounts: vec![Mount {
                kind: "tmpfs".into(),
                target: "/t".into(),
                ..Mount::default()
            }],
            ..HostConfig::default()
        };
        let v = serde_json::to_value(host).expect("json");
        assert_eq!(v["Sysctls"], json!({"net.ipv4.ip_forward": "1"}));
        assert_eq!(v["Runtime"], "runc");
        assert_eq!(v["Init"], true);
        assert_eq!(v["Mounts"], json!([{"Type": "tmpfs", "Target": "/t"}]));
        assert!(v.get("Tmpfs").is_none() && v.get("Annotations").is_none());
    }

    /// moby's Config as dockerd encodes it for a create without options: the create
    /// body's members (Env, Cmd, Entrypoint null when not given), `omitempty` ones absent.
    #[test]
    fn an_empty_config_has_dockerds_members() {
        let v = serde_json::to_value(Config {
            image: "busybox".into(),
            ..Config::default()
        })
        .expect("json");
        for (key, want) in [
            ("Env", json!(null)),
            ("Cmd", json!(null)),
            ("Entrypoint", json!(null)),
            ("OnBuild", json!(null)),
            ("Image", json!("busybox")),
            ("AttachStdin", json!(false)),
        ] {
            assert_eq!(v[key], want, "{key}");
        }
        for absent in [
            "ExposedPorts",
            "Healthcheck",
            "ArgsEscaped",
            "NetworkDisabled",
            "MacAddress",
            "StopSignal",
            "StopTimeout",
            "Shell",
        ] {
            assert!(v.get(absent).is_none(), "{absent}");
        }
    }
}

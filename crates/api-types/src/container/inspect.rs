//! GET /containers/{id}/json: moby's ContainerJSON (ContainerJSONBase with Mounts, Config
//! and NetworkSettings after it) and the parts it shares with the list (MountPoint, the
//! network endpoints), as api/types/types.go and api/types/network/endpoint.go of API 1.45.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::network::{EndpointIpamConfig, EndpointSettings};
pub use crate::storage::GraphDriverData;

/// The inspect response (moby's ContainerJSON, whose embedded ContainerJSONBase comes
/// first, in its order).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectResponse {
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    /// The image's id.
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    /// With its leading slash.
    pub name: String,
    pub restart_count: u32,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    /// null when no exec was made.
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    /// HostConfig and Config are the request types, which encode empty lists as null (as
    /// dockerd does): a client decodes them with Go's null rule, as a Go client does.
    #[serde(deserialize_with = "super::decode::with_nulls")]
    pub host_config: super::HostConfig,
    pub graph_driver: GraphDriverData,
    /// Only with `?size=1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<MountPoint>,
    #[serde(deserialize_with = "super::decode::with_nulls")]
    pub config: super::Config,
    pub network_settings: NetworkSettings,
}

/// moby's ContainerState.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// created, running, paused, restarting, removing, exited or dead.
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    /// RFC 3339; Go's zero time before the first start.
    pub started_at: String,
    pub finished_at: String,
    /// Only for a container with a health check, once started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// none, starting, healthy or unhealthy.
    pub status: String,
    /// Consecutive failed probes.
    pub failing_streak: i64,
    /// The last results, oldest first.
    pub log: Vec<HealthcheckResult>,
}

/// One probe's run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckResult {
    pub start: String,
    pub end: String,
    /// 0: healthy, 1: unhealthy, else an error running the probe.
    pub exit_code: i64,
    pub output: String,
}

/// A mount as inspect and the list report it (moby's MountPoint).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// bind, volume or tmpfs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    /// The volume's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// The options the user gave (`ro`...).
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// moby's NetworkSettings: NetworkSettingsBase, then DefaultNetworkSettings (the first
/// network's endpoint, for old clients), then Networks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    /// The bridge set by dockerd's --bridge (never set by berthd).
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    /// The network namespace's path.
    pub sandbox_key: String,
    pub ports: PortMap,
    pub hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: u8,
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<Address>>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<Address>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    pub mac_address: String,
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// An address with its prefix length (moby's network.Address).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    pub addr: String,
    pub prefix_len: u8,
}

/// Each exposed port (`80/tcp`) with its host bindings; null when not published.
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// A port's binding on the host (go-connections' nat.PortBinding).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PortBinding {
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn encode(v: &impl Serialize) -> Value {
        serde_json::to_value(v).unwrap_or_default()
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// ContainerJSONBase + ContainerJSON for a container made and never started, as
    /// dockerd encodes it (no omitempty but Node, SizeRw, SizeRootFs and State.Health).
    #[test]
    fn inspect_has_dockerds_members_with_nulls_where_go_has_nil() {
        let v = encode(&InspectResponse::default());
        let mut want = vec![
            "Id",
            "Created",
            "Path",
            "Args",
            "State",
            "Image",
            "ResolvConfPath",
            "HostnamePath",
            "HostsPath",
            "LogPath",
            "Name",
            "RestartCount",
            "Driver",
            "Platform",
            "MountLabel",
            "ProcessLabel",
            "AppArmorProfile",
            "ExecIDs",
            "HostConfig",
            "GraphDriver",
            "Mounts",
            "Config",
            "NetworkSettings",
        ];
        want.sort_unstable();
        assert_eq!(keys(&v), want);
        assert_eq!(v["ExecIDs"], Value::Null);
        assert_eq!(v["Args"], json!([]));
        assert_eq!(v["Mounts"], json!([]));
        assert_eq!(v["GraphDriver"], json!({"Data": {}, "Name": ""}));
        assert_eq!(
            v["State"],
            json!({
                "Status": "", "Running": false, "Paused": false, "Restarting": false,
                "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 0, "Error": "",
                "StartedAt": "", "FinishedAt": ""
            })
        );
    }

    #[test]
    fn sizes_appear_only_when_asked_for() {
        let v = encode(&InspectResponse {
            size_rw: Some(0),
            size_root_fs: Some(4096),
            ..InspectResponse::default()
        });
        assert_eq!(v["SizeRw"], 0);
        assert_eq!(v["SizeRootFs"], 4096);
    }

    /// swagger's Health example (ContainerState.Health).
    #[test]
    fn health_is_moby_s() {
        let v = encode(&State {
            health: Some(Health {
                status: "healthy".into(),
                failing_streak: 0,
                log: vec![HealthcheckResult {
                    start: "2019-12-22T10:59:05.6385933Z".into(),
                    end: "2019-12-22T10:59:05.8078452Z".into(),
                    exit_code: 0,
                    output: String::new(),
                }],
            }),
            ..State::default()
        });
        assert_eq!(
            v["Health"],
            json!({
                "Status": "healthy",
                "FailingStreak": 0,
                "Log": [{
                    "Start": "2019-12-22T10:59:05.6385933Z",
                    "End": "2019-12-22T10:59:05.8078452Z",
                    "ExitCode": 0,
                    "Output": ""
                }]
            })
        );
    }

    /// dockerd's NetworkSettings of a stopped container on the default bridge: every member
    /// (none is omitempty), the deprecated secondary addresses as null, Ports as {}.
    #[test]
    fn network_settings_are_moby_s() {
        let v = encode(&NetworkSettings::default());
        assert_eq!(
            v,
            json!({
                "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {},
                "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
                "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0,
                "IPv6Gateway": "", "MacAddress": "", "Networks": {}
            })
        );
    }

    /// A published port and an exposed one, as `docker inspect` shows NetworkSettings.Ports.
    #[test]
    fn ports_are_null_when_not_published() {
        let mut ports = PortMap::new();
        ports.insert("53/udp".into(), None);
        ports.insert(
            "80/tcp".into(),
            Some(vec![PortBinding {
                host_ip: "0.0.0.0".into(),
                host_port: "8080".into(),
            }]),
        );
        assert_eq!(
            encode(&ports),
            json!({"53/udp": null, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]})
        );
    }

    /// The endpoint as dockerd 26 shows a container on the host network: nil slices and
    /// maps are null, IPAMConfig null (plus GwPriority, which berthd reports).
    #[test]
    fn an_endpoint_without_config_has_nulls() {
        assert_eq!(
            encode(&EndpointSettings::default()),
            json!({
                "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
                "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": null,
                "GwPriority": 0
            })
        );
        let ipam = EndpointIpamConfig {
            ipv4_address: "10.1.0.5".into(),
            ..EndpointIpamConfig::default()
        };
        assert_eq!(encode(&ipam), json!({"IPv4Address": "10.1.0.5"}));
    }

    /// swagger's MountPoint: Name and Driver are omitempty (a bind has neither).
    #[test]
    fn a_bind_mount_has_no_name_or_driver() {
        let bind = MountPoint {
            r#type: "bind".into(),
            source: "/srv".into(),
            destination: "/data".into(),
            mode: "ro".into(),
            rw: false,
            propagation: "rprivate".into(),
            ..MountPoint::default()
        };
        assert_eq!(
            encode(&bind),
            json!({"Type": "bind", "Source": "/srv", "Destination": "/data", "Mode": "ro",
                   "RW": false, "Propagation": "rprivate"})
        );
    }

    /// A client reads an endpoint's IPAMConfig as dockerd sends it when no address was
    /// asked for: every member omitted.
    #[test]
    fn an_empty_ipam_config_decodes() {
        let c: EndpointIpamConfig = serde_json::from_value(json!({})).expect("decodes");
        assert!(c.ipv4_address.is_empty() && c.link_local_ips.is_empty());
    }

    /// A client reads inspect as berthd (and dockerd) sends it: Binds, Env, CapAdd... are
    /// null when empty.
    #[test]
    fn inspect_decodes_with_its_null_lists() {
        let sent = encode(&InspectResponse::default());
        assert!(sent["HostConfig"]["Binds"].is_null() && sent["Config"]["Env"].is_null());
        let read: InspectResponse = serde_json::from_value(sent).expect("decodes");
        assert!(read.host_config.binds.is_empty() && read.config.env.is_none());
    }
}

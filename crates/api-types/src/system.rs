//! moby's `api/types/system` and the system router's other bodies: `/version`
//! (types.Version), `/info` (system.Info, with the members berth reports), `/system/df`
//! (types.DiskUsage, types.BuildCache), the build cache prune report and `/auth`'s answer
//! (registry.AuthenticateOKBody).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::image;

/// `GET /version`.
/// The body of every error answer (moby's types.ErrorResponse): the docker CLI prints the
/// message as the error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub platform: Platform,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentVersion>,
    pub version: String,
    pub api_version: String,
    #[serde(
        rename = "MinAPIVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kernel_version: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub experimental: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub build_time: String,
}

/// The product's name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    pub name: String,
}

/// One component of the server (the Engine) with its details as strings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// `GET /info`: the members of moby's system.Info that berth reports, in its order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub driver: String,
    pub driver_status: Vec<[String; 2]>,
    pub plugins: PluginsInfo,
    pub memory_limit: bool,
    pub swap_limit: bool,
    #[serde(rename = "CpuCfsPeriod")]
    pub cpu_cfs_period: bool,
    #[serde(rename = "CpuCfsQuota")]
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    pub pids_limit: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    /// Whether bridged traffic goes through iptables (the br_netfilter sysctls; always
    /// false from API 1.48, omitted from 1.50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge_nf_iptables: Option<bool>,
    #[serde(rename = "BridgeNfIp6tables", skip_serializing_if = "Option::is_none")]
    pub bridge_nf_ip6tables: Option<bool>,
    pub debug: bool,
    #[serde(rename = "NFd")]
    pub nfd: usize,
    pub oom_kill_disable: bool,
    #[serde(rename = "NGoroutines")]
    pub ngoroutines: usize,
    /// RFC 3339 with nanoseconds.
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    /// `1` or `2`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup_version: String,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    pub index_server_address: String,
    pub registry_config: Option<ServiceConfig>,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    /// Swarm's generic resources of the node (never any: null).
    pub generic_resources: Option<Vec<GenericResource>>,
    pub docker_root_dir: String,
    #[serde(rename = "HttpProxy")]
    pub http_proxy: String,
    #[serde(rename = "HttpsProxy")]
    pub https_proxy: String,
    pub no_proxy: String,
    pub name: String,
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub server_version: String,
    pub runtimes: BTreeMap<String, Runtime>,
    pub default_runtime: String,
    pub swarm: SwarmInfo,
    pub live_restore_enabled: bool,
    pub isolation: String,
    pub init_binary: String,
    pub security_options: Vec<String>,
    /// Where CDI device specs are read from ([] when none, as dockerd's promoteNil).
    #[serde(rename = "CDISpecDirs")]
    pub cdi_spec_dirs: Vec<String>,
    /// What sets the daemon's firewall rules (API 1.49).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall_backend: Option<FirewallInfo>,
    pub warnings: Option<Vec<String>>,
}

/// moby's FirewallInfo: the rules' backend (`iptables`, `nftables`...).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FirewallInfo {
    pub driver: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub info: Vec<[String; 2]>,
}

/// The plugins of each kind (Go nil slices are null).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PluginsInfo {
    pub volume: Option<Vec<String>>,
    pub network: Option<Vec<String>>,
    pub authorization: Option<Vec<String>>,
    pub log: Option<Vec<String>>,
}

/// An OCI runtime the daemon can run containers with (moby's system.RuntimeWithStatus).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Runtime {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// The registries (moby's registry.ServiceConfig, the members berth reports).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceConfig {
    /// Networks reached without verified TLS, as CIDRs.
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    pub index_configs: BTreeMap<String, IndexInfo>,
    pub mirrors: Vec<String>,
}

/// One registry (moby's registry.IndexInfo).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexInfo {
    pub name: String,
    pub mirrors: Vec<String>,
    /// Whether it is reached with verified TLS.
    pub secure: bool,
    /// Whether it is Docker Hub.
    pub official: bool,
}

/// The node's swarm membership (moby's swarm.Info): berth is never in a swarm.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    /// `inactive`, `pending`, `active`, `error` or `locked`.
    pub local_node_state: String,
    pub control_available: bool,
    pub error: String,
    pub remote_managers: Option<Vec<Peer>>,
}

/// A swarm manager (moby's swarm.Peer).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Peer {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub addr: String,
}

/// A user-defined resource of a swarm node (moby's swarm.GenericResource): one of the two.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenericResource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_resource_spec: Option<NamedGenericResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteGenericResource>,
}

/// A resource known by name (a GPU's UUID).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedGenericResource {
    pub kind: String,
    pub value: String,
}

/// A resource known by count.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscreteGenericResource {
    pub kind: String,
    pub value: i64,
}

/// `GET /system/df`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Bytes of every image layer.
    pub layers_size: u64,
    pub images: Vec<image::Summary>,
    pub containers: Vec<crate::container::Summary>,
    pub volumes: Vec<crate::volume::Volume>,
    pub build_cache: Vec<BuildCache>,
}

/// One build cache record (moby's types.BuildCache, the members berth keeps).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuildCache {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
    /// `regular`, `source.local`, `exec.cachemount`...
    pub r#type: String,
    pub description: String,
    pub in_use: bool,
    pub shared: bool,
    pub size: u64,
    /// RFC 3339; null when unknown.
    pub created_at: Option<String>,
}

/// `POST /build/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuildCachePruneReport {
    pub caches_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

/// `POST /auth`'s answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthenticateOkBody {
    /// A token for later logins instead of the password (berth never issues one).
    pub identity_token: String,
    pub status: String,
}

/// A login (moby's registry.AuthConfig): the body of `POST /auth`, `X-Registry-Auth`, and
/// each entry of `X-Registry-Config`. As moby's decoder: a null member is empty, unknown
/// members are ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub username: String,
    #[serde(
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub password: String,
    /// base64 of `username:password`.
    #[serde(
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub auth: String,
    /// Deprecated by moby, ignored.
    #[serde(
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub email: String,
    /// The registry (`https://index.docker.io/v1/`, `localhost:5000`).
    #[serde(
        rename = "serveraddress",
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub server_address: String,
    /// A token the registry issued instead of a password.
    #[serde(
        rename = "identitytoken",
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub identity_token: String,
    /// A bearer token for the registry.
    #[serde(
        rename = "registrytoken",
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub registry_token: String,
}

/// A JSON null as an empty string (Go's decoder leaves the field at its zero value).
fn null_is_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn to_value(v: &impl Serialize) -> Value {
        serde_json::to_value(v).expect("serializes")
    }

    /// swagger.yaml's SystemVersion example and types.Version's tags: Platform always,
    /// KernelVersion, Experimental and BuildTime omitted when empty.
    #[test]
    fn version_as_dockerd() {
        let v = Version {
            platform: Platform {
                name: "berth".into(),
            },
            components: vec![ComponentVersion {
                name: "Engine".into(),
                version: "1.0".into(),
                details: BTreeMap::from([("ApiVersion".into(), "1.45".into())]),
            }],
            version: "1.0".into(),
            api_version: "1.45".into(),
            min_api_version: "1.24".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            ..Version::default()
        };
        assert_eq!(
            to_value(&v),
            json!({
                "Platform": {"Name": "berth"},
                "Components": [{"Name": "Engine", "Version": "1.0", "Details": {"ApiVersion": "1.45"}}],
                "Version": "1.0", "ApiVersion": "1.45", "MinAPIVersion": "1.24",
                "GitCommit": "", "GoVersion": "", "Os": "linux", "Arch": "amd64"
            })
        );
    }

    /// system.Info's names where they are not PascalCase of the field (ID, CpuCfsPeriod,
    /// NFd, OSType, NCPU, HttpProxy...), the nil slices dockerd emits as null, and
    /// swarm.Info's members.
    #[test]
    fn info_as_dockerd() {
        let v = to_value(&Info {
            plugins: PluginsInfo {
                log: Some(vec!["json-file".into()]),
                volume: Some(vec![]),
                ..PluginsInfo::default()
            },
            driver_status: vec![["Backing Filesystem".into(), "extfs".into()]],
            bridge_nf_iptables: Some(false),
            bridge_nf_ip6tables: Some(false),
            firewall_backend: Some(FirewallInfo {
                driver: "nftables".into(),
                info: vec![],
            }),
            runtimes: BTreeMap::from([(
                "runc".into(),
                Runtime {
                    path: "runc".into(),
                },
            )]),
            ..Info::default()
        });
        for name in [
            "ID",
            "CpuCfsPeriod",
            "CpuCfsQuota",
            "CPUShares",
            "CPUSet",
            "IPv4Forwarding",
            "NFd",
            "NGoroutines",
            "OSVersion",
            "OSType",
            "NCPU",
            "MemTotal",
            "HttpProxy",
            "HttpsProxy",
            "NoProxy",
            "DockerRootDir",
            "IndexServerAddress",
            "LiveRestoreEnabled",
            "BridgeNfIptables",
            "BridgeNfIp6tables",
        ] {
            assert!(v.get(name).is_some(), "{name} missing: {v}");
        }
        assert!(v.get("CgroupVersion").is_none(), "omitempty");
        assert_eq!(v["FirewallBackend"], json!({"Driver": "nftables"}));
        assert_eq!(v["Warnings"], Value::Null);
        assert_eq!(v["GenericResources"], Value::Null);
        assert_eq!(v["CDISpecDirs"], json!([]));
        assert_eq!(v["RegistryConfig"], Value::Null);
        assert_eq!(v["DriverStatus"], json!([["Backing Filesystem", "extfs"]]));
        assert_eq!(
            v["Plugins"],
            json!({"Volume": [], "Network": null, "Authorization": null, "Log": ["json-file"]})
        );
        assert_eq!(v["Runtimes"], json!({"runc": {"path": "runc"}}));
        assert_eq!(
            v["Swarm"],
            json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null})
        );
        let registries = to_value(&ServiceConfig {
            insecure_registry_cidrs: vec!["127.0.0.0/8".into()],
            index_configs: BTreeMap::from([(
                "docker.io".into(),
                IndexInfo {
                    name: "docker.io".into(),
                    secure: true,
                    official: true,
                    ..IndexInfo::default()
                },
            )]),
            mirrors: vec![],
        });
        assert_eq!(
            registries,
            json!({"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}}, "Mirrors": []})
        );
    }

    /// types.DiskUsage's members and types.BuildCache's (Parents omitempty).
    #[test]
    fn disk_usage_as_dockerd() {
        let du = DiskUsage {
            build_cache: vec![BuildCache {
                id: "k".into(),
                r#type: "regular".into(),
                ..BuildCache::default()
            }],
            ..DiskUsage::default()
        };
        assert_eq!(
            to_value(&du),
            json!({
                "LayersSize": 0, "Images": [], "Containers": [], "Volumes": [],
                "BuildCache": [{"ID": "k", "Type": "regular", "Description": "", "InUse": false, "Shared": false, "Size": 0, "CreatedAt": null}]
            })
        );
        let with_parent = to_value(&BuildCache {
            parents: vec!["sha256:1".into()],
            ..BuildCache::default()
        });
        assert_eq!(with_parent["Parents"], json!(["sha256:1"]));
    }

    /// registry.AuthConfig's lower-case names; null members are empty, unknown ones ignored,
    /// a member of the wrong type refused.
    #[test]
    fn auth_config_as_dockerd() {
        let a: AuthConfig = serde_json::from_value(json!({
            "username": "u", "password": null, "serveraddress": "localhost:5000",
            "identitytoken": "", "unknown": 1
        }))
        .expect("decodes");
        assert_eq!(
            (
                a.username.as_str(),
                a.password.as_str(),
                a.server_address.as_str()
            ),
            ("u", "", "localhost:5000")
        );
        assert!(serde_json::from_value::<AuthConfig>(json!({"username": 5})).is_err());
        assert_eq!(
            to_value(&AuthConfig {
                username: "u".into(),
                server_address: "s".into(),
                ..AuthConfig::default()
            }),
            json!({"username": "u", "serveraddress": "s"})
        );
    }

    #[test]
    fn prune_and_auth_as_dockerd() {
        assert_eq!(
            to_value(&BuildCachePruneReport::default()),
            json!({"CachesDeleted": null, "SpaceReclaimed": 0})
        );
        assert_eq!(
            to_value(&AuthenticateOkBody {
                status: "Login Succeeded".into(),
                ..AuthenticateOkBody::default()
            }),
            json!({"IdentityToken": "", "Status": "Login Succeeded"})
        );
    }
}

//! The `/networks` bodies: moby's `NetworkResource`, `NetworkCreateRequest`,
//! `NetworkConnect`... of API 1.45 (api/types in moby 26.1; later moby moved them into
//! api/types/network as `Inspect`, `CreateRequest`, ...), and api/types/network's IPAM and
//! EndpointSettings.
//!
//! Requests decode with [`decode`]: moby's decoder rules, which serde's alone do not give.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---- responses ----------------------------------------------------------------------------

/// A network, as `GET /networks/{id}` and (without `Containers`) `GET /networks` show it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkResource {
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339; Go's zero time (`0001-01-01T00:00:00Z`) for the predefined networks.
    pub created: String,
    pub scope: String,
    pub driver: String,
    /// API 1.48's, which dockerd sends to clients of every version (berth always did).
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigReference,
    pub config_only: bool,
    /// The containers on it, by id. None: a list's entry, which has no such member (as
    /// moby's network.Summary; dockerd 26 sent `{}` there, and the full map before API 1.28).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<BTreeMap<String, EndpointResource>>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// An overlay network's peers; absent for every other network.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerInfo>,
}

/// IP address management: a network's pools (`IPAM` in moby).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    pub driver: String,
    /// The IPAM driver's options (a Go map: `null` when the network was given none).
    pub options: Option<BTreeMap<String, String>>,
    pub config: Vec<IpamConfig>,
}

/// One pool of a network (`IPAMConfig` in moby).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    /// CIDR.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// The part of the subnet containers' addresses are taken from (CIDR).
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// Addresses kept out of the pool, by host name.
    #[serde(
        rename = "AuxiliaryAddresses",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aux_address: BTreeMap<String, String>,
}

/// The config-only network a network takes its configuration from ("" for none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigReference {
    pub network: String,
}

/// A container on a network, as the network shows it (swagger's `NetworkContainer`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointResource {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    /// CIDR (the address with the subnet's prefix length), "" for none.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// One peer node of an overlay network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PeerInfo {
    pub name: String,
    #[serde(rename = "IP")]
    pub ip: String,
}

/// `POST /networks/create`'s answer (moby's NetworkCreateResponse).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateResponse {
    #[serde(rename = "Id")]
    pub id: String,
    pub warning: String,
}

/// `POST /networks/prune`'s answer (moby's NetworksPruneReport).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PruneReport {
    /// The removed networks' names; `null` when none was (a nil Go slice).
    pub networks_deleted: Option<Vec<String>>,
}

// ---- requests -----------------------------------------------------------------------------

/// `POST /networks/create`'s body (moby's NetworkCreateRequest: NetworkCreate's members,
/// then Name).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    /// Deprecated since API 1.44: dockerd refuses a duplicate name whatever this says.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub check_duplicate: bool,
    pub driver: String,
    pub scope: String,
    /// API 1.48 (None: not said, IPv4 on).
    #[serde(rename = "EnableIPv4", skip_serializing_if = "Option::is_none")]
    pub enable_ipv4: Option<bool>,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Option<Ipam>,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_only: bool,
    pub config_from: Option<ConfigReference>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub name: String,
}

/// `POST /networks/{id}/connect`'s body (moby's NetworkConnect).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConnectRequest {
    /// The container's id or name.
    pub container: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_config: Option<EndpointSettings>,
}

/// `POST /networks/{id}/disconnect`'s body (moby's NetworkDisconnect).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DisconnectRequest {
    /// The container's id or name.
    pub container: String,
    pub force: bool,
}

/// A container's endpoint on one network (moby's network.EndpointSettings): what a client
/// asks for (connect, create's NetworkingConfig) and, from `NetworkID` on, what inspect and
/// the list report once it is made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    pub links: Option<Vec<String>>,
    /// The names the user gave the container on this network.
    pub aliases: Option<Vec<String>>,
    pub mac_address: String,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Every name the network's DNS answers for the container (user-defined networks).
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
    /// Which endpoint gives the default route (highest wins): API 1.48's member, which
    /// berthd's `--network name=...,gw-priority=` sets and so reports.
    pub gw_priority: i64,
}

/// The addresses asked for on a network (moby's EndpointIPAMConfig).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
}

// ---- decoding -----------------------------------------------------------------------------

/// A request body that is not the type it should be: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct DecodeError {
    /// The member's path (`IPAM.Config[0].Subnet`); empty for the body itself.
    pub path: String,
    pub message: String,
}

/// Decode a request body as dockerd's decoder (Go's encoding/json) would: a `null` member
/// leaves the field at its zero value, a member the type does not have is ignored, and a
/// member of the wrong JSON type is an error naming its path. (Also used by
/// [`crate::volume`].)
pub fn decode<T: DeserializeOwned>(body: Value) -> Result<T, DecodeError> {
    // serde would take an array for a struct, member by member; Go's decoder does not.
    let body = match body {
        Value::Null => Value::Object(serde_json::Map::new()),
        Value::Object(_) => body,
        _ => {
            return Err(DecodeError {
                path: String::new(),
                message: "the body must be a JSON object".into(),
            })
        }
    };
    crate::container::decode::go_decode(&body)
        .map_err(|(path, message)| DecodeError { path, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// dockerd's `docker network inspect bridge`, trimmed (moby's swagger example and Go
    /// tags): every member present at its zero value, IPAM's Options a nil map, Containers
    /// keyed by id, no Peers.
    #[test]
    fn inspect_has_dockerds_members() {
        let mut containers = BTreeMap::new();
        containers.insert(
            "19a4d5d687db".to_string(),
            EndpointResource {
                name: "test".into(),
                endpoint_id: "628cadb8bcb9".into(),
                mac_address: "02:42:ac:13:00:02".into(),
                ipv4_address: "172.19.0.2/16".into(),
                ipv6_address: String::new(),
            },
        );
        let n = NetworkResource {
            name: "bridge".into(),
            id: "7d86d31b1478".into(),
            created: "2016-10-19T04:33:30.360899459Z".into(),
            scope: "local".into(),
            driver: "bridge".into(),
            enable_ipv4: true,
            ipam: Ipam {
                driver: "default".into(),
                options: None,
                config: vec![IpamConfig {
                    subnet: "172.19.0.0/16".into(),
                    gateway: "172.19.0.1".into(),
                    ..Default::default()
                }],
            },
            containers: Some(containers),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&n).expect("json"),
            json!({
                "Name": "bridge",
                "Id": "7d86d31b1478",
                "Created": "2016-10-19T04:33:30.360899459Z",
                "Scope": "local",
                "Driver": "bridge",
                "EnableIPv4": true,
                "EnableIPv6": false,
                "IPAM": {"Driver": "default", "Options": null,
                         "Config": [{"Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1"}]},
                "Internal": false,
                "Attachable": false,
                "Ingress": false,
                "ConfigFrom": {"Network": ""},
                "ConfigOnly": false,
                "Containers": {"19a4d5d687db": {"Name": "test", "EndpointID": "628cadb8bcb9",
                    "MacAddress": "02:42:ac:13:00:02", "IPv4Address": "172.19.0.2/16",
                    "IPv6Address": ""}},
                "Options": {},
                "Labels": {}
            })
        );
        // A list's entry has no Containers member at all (not null, not {}).
        let listed = serde_json::to_value(NetworkResource::default()).expect("json");
        assert!(listed.get("Containers").is_none(), "{listed}");
        assert!(listed.get("Peers").is_none(), "{listed}");
    }

    /// Members in moby's Go struct order (what dockerd's encoder emits).
    #[test]
    fn member_order_is_mobys() {
        assert_eq!(
            serde_json::to_string(&NetworkResource::default()).expect("json"),
            concat!(
                r#"{"Name":"","Id":"","Created":"","Scope":"","Driver":"","EnableIPv4":false,"#,
                r#""EnableIPv6":false,"IPAM":{"Driver":"","Options":null,"Config":[]},"#,
                r#""Internal":false,"Attachable":false,"Ingress":false,"#,
                r#""ConfigFrom":{"Network":""},"ConfigOnly":false,"Options":{},"Labels":{}}"#
            )
        );
    }

    #[test]
    fn create_response_and_prune_report() {
        let created = CreateResponse {
            id: "abc".into(),
            warning: String::new(),
        };
        assert_eq!(
            serde_json::to_value(created).expect("json"),
            json!({"Id": "abc", "Warning": ""})
        );
        assert_eq!(
            serde_json::to_value(PruneReport::default()).expect("json"),
            json!({"NetworksDeleted": null})
        );
        let pruned = PruneReport {
            networks_deleted: Some(vec!["n1".into()]),
        };
        assert_eq!(
            serde_json::to_value(pruned).expect("json"),
            json!({"NetworksDeleted": ["n1"]})
        );
    }

    /// What `docker network create --subnet 10.1.0.0/24 n` sends, with the nulls of clients
    /// that spell out what they leave unset (docker-compose).
    #[test]
    fn create_bodies_decode_as_dockerd_reads_them() {
        let req: CreateRequest = decode(json!({
            "Name": "n", "CheckDuplicate": true, "Driver": "bridge", "Scope": "",
            "EnableIPv6": null, "Internal": false, "Attachable": null, "Ingress": false,
            "ConfigOnly": false, "ConfigFrom": null, "Options": {"a": "b"}, "Labels": null,
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": "10.1.0.0/24", "IPRange": null}]},
            "EnableIPv4": true, "SomethingNewer": {"x": 1}
        }))
        .expect("decodes");
        assert_eq!(req.name, "n");
        assert!(!req.enable_ipv6 && !req.attachable && req.labels.is_empty());
        assert_eq!(req.enable_ipv4, Some(true));
        assert_eq!(req.options.get("a").map(String::as_str), Some("b"));
        let ipam = req.ipam.expect("ipam");
        assert_eq!(ipam.config[0].subnet, "10.1.0.0/24");
        assert_eq!(ipam.config[0].ip_range, "");
        // An empty body is every member at its zero value.
        let empty: CreateRequest = decode(json!({})).expect("decodes");
        assert!(empty.name.is_empty() && empty.ipam.is_none());
    }

    #[test]
    fn a_wrong_type_names_the_member() {
        let err =
            decode::<CreateRequest>(json!({"Name": "n", "Internal": "yes"})).expect_err("refused");
        assert_eq!(err.path, "Internal");
        assert!(
            err.to_string()
                .starts_with("Internal: invalid type: string"),
            "{err}"
        );
        let err = decode::<CreateRequest>(json!({"IPAM": {"Config": [{"Subnet": 10}]}}))
            .expect_err("refused");
        assert_eq!(err.path, "IPAM.Config[0].Subnet");
        let err =
            decode::<ConnectRequest>(json!({"Container": "c", "EndpointConfig": {"Aliases": "a"}}))
                .expect_err("refused");
        assert_eq!(err.path, "EndpointConfig.Aliases");
        let err = decode::<DisconnectRequest>(json!(["c"])).expect_err("refused");
        assert_eq!(err.to_string(), "the body must be a JSON object");
        // A JSON null body leaves every member at its zero value, as Go's decoder.
        assert!(decode::<DisconnectRequest>(Value::Null).is_ok());
    }

    /// `docker network connect --alias a --ip 10.1.0.5 n c`, and what disconnect sends.
    #[test]
    fn connect_and_disconnect_bodies() {
        let req: ConnectRequest = decode(json!({
            "Container": "c",
            "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.1.0.5"}, "Links": null,
                               "Aliases": ["a"], "DriverOpts": null, "GwPriority": 2,
                               "NetworkID": "", "MacAddress": ""}
        }))
        .expect("decodes");
        let e = req.endpoint_config.expect("endpoint");
        assert_eq!(e.aliases, Some(vec!["a".to_string()]));
        assert_eq!(e.ipam_config.expect("ipam").ipv4_address, "10.1.0.5");
        assert_eq!(e.gw_priority, 2);
        assert!(e.links.is_none() && e.driver_opts.is_none());
        let req: DisconnectRequest =
            decode(json!({"Container": "c", "Force": true})).expect("decodes");
        assert!(req.force && req.container == "c");
    }

    /// moby's Go tags: EndpointIPAMConfig's members are omitempty, EndpointSettings' are
    /// not (nil slices and maps are null).
    #[test]
    fn endpoint_settings_emit_as_moby() {
        let e = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: "10.1.0.5".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(e).expect("json");
        assert_eq!(v["IPAMConfig"], json!({"IPv4Address": "10.1.0.5"}));
        for null in ["Links", "Aliases", "DriverOpts", "DNSNames"] {
            assert!(v[null].is_null() && v.get(null).is_some(), "{null}: {v}");
        }
        assert_eq!(v["IPPrefixLen"], 0);
        assert_eq!(v["MacAddress"], "");
    }
}

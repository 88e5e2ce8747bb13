//! GET /containers/json: one moby Container (api/types/types.go of API 1.45, with 1.46's
//! HostConfig.Annotations) per container.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::inspect::{EndpointSettings, MountPoint};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    #[serde(rename = "Id")]
    pub id: String,
    /// Each with its leading slash.
    pub names: Vec<String>,
    /// The image as the user named it.
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    pub ports: Vec<Port>,
    /// The writable layer's size (`?size=1`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size_rw: i64,
    /// The writable layer's and the image's (`?size=1`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size_root_fs: i64,
    pub labels: BTreeMap<String, String>,
    /// created, running, paused, restarting, exited...
    pub state: String,
    /// The human text `docker ps` shows (`Up 2 minutes`).
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: SummaryNetworkSettings,
    pub mounts: Vec<MountPoint>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_mode: String,
    /// The container's annotations (API 1.46).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// A published or exposed port (moby's Port): an exposed one has no IP and no PublicPort.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Port {
    #[serde(rename = "IP", default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    #[serde(rename = "PublicPort", default, skip_serializing_if = "is_zero_port")]
    pub public_port: u16,
    /// tcp, udp or sctp.
    #[serde(rename = "Type")]
    pub r#type: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_port(n: &u16) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn encode(v: &impl Serialize) -> Value {
        serde_json::to_value(v).unwrap_or_default()
    }

    /// swagger's ContainerList example (its second container), with the sizes left out as
    /// dockerd's omitempty does without `?size=1`.
    #[test]
    fn a_summary_is_moby_s() {
        let s = Summary {
            id: "9cd87474be90".into(),
            names: vec!["/coolName".into()],
            image: "ubuntu:latest".into(),
            image_id: "d74508fb6632".into(),
            command: "echo 222222".into(),
            created: 1367854155,
            state: "Exited".into(),
            status: "Exit 0".into(),
            host_config: SummaryHostConfig {
                network_mode: "default".into(),
                annotations: BTreeMap::from([("a".into(), "b".into())]),
            },
            ..Summary::default()
        };
        assert_eq!(
            encode(&s),
            json!({
                "Id": "9cd87474be90",
                "Names": ["/coolName"],
                "Image": "ubuntu:latest",
                "ImageID": "d74508fb6632",
                "Command": "echo 222222",
                "Created": 1367854155,
                "State": "Exited",
                "Status": "Exit 0",
                "Ports": [],
                "Labels": {},
                "HostConfig": {"NetworkMode": "default", "Annotations": {"a": "b"}},
                "NetworkSettings": {"Networks": {}},
                "Mounts": []
            })
        );
        let sized = encode(&Summary {
            size_rw: 12288,
            size_root_fs: 1 << 20,
            ..Summary::default()
        });
        assert_eq!(
            (sized["SizeRw"].clone(), sized["SizeRootFs"].clone()),
            (json!(12288), json!(1 << 20))
        );
        assert_eq!(encode(&Summary::default())["HostConfig"], json!({}));
    }

    /// swagger's Port: IP and PublicPort are omitempty (an exposed, unpublished port).
    #[test]
    fn ports_published_and_exposed() {
        let published = Port {
            ip: "0.0.0.0".into(),
            private_port: 2222,
            public_port: 3333,
            r#type: "tcp".into(),
        };
        assert_eq!(
            encode(&published),
            json!({"IP": "0.0.0.0", "PrivatePort": 2222, "PublicPort": 3333, "Type": "tcp"})
        );
        let exposed = Port {
            private_port: 53,
            r#type: "udp".into(),
            ..Port::default()
        };
        assert_eq!(encode(&exposed), json!({"PrivatePort": 53, "Type": "udp"}));
    }

    /// A client reads the list as dockerd sends it: without `?size=1` no sizes, a bind
    /// mount without Name and Driver, an exposed port without IP and PublicPort, and
    /// HostConfig without NetworkMode (all omitempty).
    #[test]
    fn a_summary_without_its_omitempty_members_decodes() {
        let listed = json!({
            "Id": "8dfafdbc3a40", "Names": ["/boring_feynman"], "Image": "ubuntu",
            "ImageID": "sha256:d74508fb6632", "Command": "echo 1", "Created": 1367854155,
            "Ports": [{"PrivatePort": 53, "Type": "udp"}], "Labels": {}, "State": "exited",
            "Status": "Exit 0", "HostConfig": {}, "NetworkSettings": {"Networks": {}},
            "Mounts": [{"Type": "bind", "Source": "/srv", "Destination": "/data",
                        "Mode": "ro", "RW": false, "Propagation": "rprivate"}],
        });
        let s: Summary = serde_json::from_value(listed).expect("a summary");
        assert_eq!((s.size_rw, s.size_root_fs), (0, 0));
        assert_eq!(s.host_config.network_mode, "");
        assert_eq!((s.ports[0].ip.as_str(), s.ports[0].public_port), ("", 0));
        assert_eq!(
            (s.mounts[0].name.as_str(), s.mounts[0].driver.as_str()),
            ("", "")
        );
    }
}

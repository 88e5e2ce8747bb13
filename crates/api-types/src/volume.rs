//! The `/volumes` bodies: moby's api/types/volume (Volume, ListResponse, CreateOptions) and
//! its VolumesPruneReport, as of API 1.45. moby generates these from swagger.yaml, so their
//! members are in alphabetical order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::network::{decode, DecodeError};

/// A volume, as inspect, create, list and `system df` show it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    /// RFC 3339.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    pub driver: String,
    /// A Go map: `null` when the volume has none.
    pub labels: Option<BTreeMap<String, String>>,
    /// The directory on the host the volume's data is in.
    pub mountpoint: String,
    pub name: String,
    /// The driver's options (`type`, `device`, `o`); `null` when it was given none.
    pub options: Option<BTreeMap<String, String>>,
    /// `local` (or `global`, a swarm cluster's).
    pub scope: String,
    /// Only in `GET /system/df`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<UsageData>,
}

/// A volume's size and users, for `GET /system/df`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UsageData {
    /// The containers that use it; -1: not known.
    pub ref_count: i64,
    /// Bytes; -1: not known.
    pub size: i64,
}

/// `GET /volumes`'s answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListResponse {
    pub volumes: Vec<Volume>,
    /// `null` when there are none (a nil Go slice).
    pub warnings: Option<Vec<String>>,
}

/// `POST /volumes/create`'s body (moby's CreateOptions).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateOptions {
    /// A swarm cluster volume's spec, kept as JSON: berth is no swarm manager and honours
    /// none (see [`CreateOptions::asks_for_cluster_volume`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_volume_spec: Option<Value>,
    /// Empty: `local`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// None (null or absent) is kept apart from `{}`: the volume shows what was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Empty: a generated name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl CreateOptions {
    /// Whether the body asks for a cluster volume: a ClusterVolumeSpec with any member that
    /// is not its zero value.
    pub fn asks_for_cluster_volume(&self) -> bool {
        self.cluster_volume_spec
            .as_ref()
            .is_some_and(|v| !is_zero(v))
    }
}

/// A JSON value that asks for nothing (Go's zero value of whatever it decodes into).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// `POST /volumes/prune`'s answer (moby's VolumesPruneReport).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PruneReport {
    /// The removed volumes' names; `null` when none was.
    pub volumes_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// dockerd's `docker volume inspect` of a local volume with no labels or options (the
    /// Go tags of api/types/volume.Volume): Labels and Options null, no Status, UsageData or
    /// ClusterVolume; CreatedAt omitted only when empty.
    #[test]
    fn inspect_has_dockerds_members() {
        let v = Volume {
            created_at: "2016-06-07T20:31:11Z".into(),
            driver: "local".into(),
            mountpoint: "/var/lib/docker/volumes/tardis/_data".into(),
            name: "tardis".into(),
            scope: "local".into(),
            ..Default::default()
        };
        let text = serde_json::to_string(&v).expect("json");
        assert_eq!(
            text,
            r#"{"CreatedAt":"2016-06-07T20:31:11Z","Driver":"local","Labels":null,"Mountpoint":"/var/lib/docker/volumes/tardis/_data","Name":"tardis","Options":null,"Scope":"local"}"#
        );
        assert!(serde_json::to_value(Volume::default())
            .expect("json")
            .get("CreatedAt")
            .is_none());
    }

    /// `system df`'s volumes carry UsageData {Size, RefCount} (swagger's required members).
    #[test]
    fn usage_data_for_system_df() {
        let v = Volume {
            labels: Some(BTreeMap::from([("a".into(), "b".into())])),
            usage_data: Some(UsageData {
                ref_count: 1,
                size: 4096,
            }),
            ..Default::default()
        };
        let j = serde_json::to_value(v).expect("json");
        assert_eq!(j["UsageData"], json!({"RefCount": 1, "Size": 4096}));
        assert_eq!(j["Labels"], json!({"a": "b"}));
    }

    #[test]
    fn list_response_and_prune_report() {
        assert_eq!(
            serde_json::to_value(ListResponse::default()).expect("json"),
            json!({"Volumes": [], "Warnings": null})
        );
        assert_eq!(
            serde_json::to_value(PruneReport::default()).expect("json"),
            json!({"VolumesDeleted": null, "SpaceReclaimed": 0})
        );
    }

    /// What `docker volume create` sends, with nulls for what a client leaves unset.
    #[test]
    fn create_bodies_decode_as_dockerd_reads_them() {
        let req: CreateOptions = decode(json!({
            "Name": "v", "Driver": "local", "DriverOpts": {"type": "tmpfs"}, "Labels": null,
            "ClusterVolumeSpec": null, "Unknown": 1
        }))
        .expect("decodes");
        assert_eq!(req.name, "v");
        assert!(req.labels.is_none() && !req.asks_for_cluster_volume());
        assert_eq!(
            req.driver_opts
                .as_ref()
                .map(|o| o["type"].as_str())
                .unwrap_or_default(),
            "tmpfs"
        );
        let err = decode::<CreateOptions>(json!({"Labels": {"a": 1}})).expect_err("refused");
        assert_eq!(err.path, "Labels.a");
    }

    #[test]
    fn only_a_cluster_volume_spec_that_asks_for_something_counts() {
        let spec = |v: Value| CreateOptions {
            cluster_volume_spec: Some(v),
            ..Default::default()
        };
        assert!(!spec(json!({})).asks_for_cluster_volume());
        assert!(!spec(json!({"Group": "", "AccessMode": {"Scope": ""}})).asks_for_cluster_volume());
        assert!(spec(json!({"Group": "g"})).asks_for_cluster_volume());
        assert!(spec(json!({"AccessMode": {"Scope": "single"}})).asks_for_cluster_volume());
    }
}

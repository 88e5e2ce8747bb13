//! moby's `api/types/image` (Summary, InspectResponse, HistoryResponseItem, DeleteResponse,
//! PruneReport) and `pkg/jsonmessage`, the message of the progress streams of pull, push,
//! load and build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::storage::GraphDriverData;

/// One entry of `GET /images/json` (and of `/system/df`'s Images).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    /// -1: not computed (dockerd computes it only for `/system/df`).
    pub containers: i64,
    /// Unix seconds.
    pub created: i64,
    #[serde(rename = "Id")]
    pub id: String,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "ParentId")]
    pub parent_id: String,
    pub repo_digests: Vec<String>,
    pub repo_tags: Vec<String>,
    /// -1: not computed.
    pub shared_size: i64,
    pub size: u64,
    /// Only for API < 1.44 (the same as Size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<u64>,
}

/// `GET /images/{name}/json` (moby's types.ImageInspect in 26.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectResponse {
    #[serde(rename = "Id")]
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Only for API < 1.45.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Only for API < 1.45: the config of the container the image was committed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_config: Option<serde_json::Value>,
    pub docker_version: String,
    pub author: String,
    /// The image's config as stored, with its nulls and the members only Docker writes
    /// (berth_image's DockerOCIImageConfig, which this crate, below the image store, does
    /// not know).
    pub config: serde_json::Value,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    /// Only for API < 1.44 (the same as Size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<u64>,
    pub graph_driver: GraphDriverData,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    /// The layers' diff IDs, bottom first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// RFC 3339; `0001-01-01T00:00:00Z` when never tagged (a Go zero time is emitted).
    pub last_tag_time: String,
}

/// One entry of `GET /images/{name}/history`, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryResponseItem {
    pub comment: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    /// `<missing>` for a layer that is not an image of its own.
    #[serde(rename = "Id")]
    pub id: String,
    pub size: u64,
    pub tags: Option<Vec<String>>,
}

/// One entry of `DELETE /images/{name}` and of a prune: a tag removed or an image deleted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteResponse {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deleted: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub untagged: String,
}

impl DeleteResponse {
    pub fn deleted(id: impl Into<String>) -> DeleteResponse {
        DeleteResponse {
            deleted: id.into(),
            ..DeleteResponse::default()
        }
    }

    pub fn untagged(name: impl Into<String>) -> DeleteResponse {
        DeleteResponse {
            untagged: name.into(),
            ..DeleteResponse::default()
        }
    }
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub images_deleted: Option<Vec<DeleteResponse>>,
    pub space_reclaimed: u64,
}

/// One line of a progress stream (moby's jsonmessage.JSONMessage): every member is
/// omitted at its zero value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonMessage {
    /// Text for the client to print as is (build output, "Loaded image: ...").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stream: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress: Option<JsonProgress>,
    /// A progress bar as text (deprecated by moby; progressDetail carries the numbers).
    #[serde(rename = "progress", default, skip_serializing_if = "String::is_empty")]
    pub progress_message: String,
    /// The layer or tag the message is about.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time_nano: i64,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error: Option<JsonError>,
    /// The error's message again (deprecated by moby, still read by older clients).
    #[serde(rename = "error", default, skip_serializing_if = "String::is_empty")]
    pub error_message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<Aux>,
}

impl JsonMessage {
    pub fn status(status: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: status.into(),
            ..JsonMessage::default()
        }
    }

    pub fn stream(text: impl Into<String>) -> JsonMessage {
        JsonMessage {
            stream: text.into(),
            ..JsonMessage::default()
        }
    }

    /// A failure as the stream's last message (moby's streamformatter.FormatError), with the
    /// failed command's exit status as `code` where there is one.
    pub fn failure(message: impl Into<String>, code: Option<i32>) -> JsonMessage {
        let message = message.into();
        JsonMessage {
            error: Some(JsonError {
                code: code.unwrap_or_default(),
                message: message.clone(),
            }),
            error_message: message,
            ..JsonMessage::default()
        }
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Byte counts of a transfer (moby's jsonmessage.JSONProgress).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JsonProgress {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: i64,
    /// Unix seconds the transfer began.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidecounts: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub units: String,
}

/// moby's jsonmessage.JSONError.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JsonError {
    /// The failed command's exit status (a build's RUN), which the docker CLI exits with.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub code: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

/// The out-of-band data of a stream message: what a build made or a push sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Aux {
    Build(BuildResult),
    Push(PushResult),
}

/// moby's types.BuildResult: the image a build made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildResult {
    #[serde(rename = "ID")]
    pub id: String,
}

/// moby's types.PushResult: a tag pushed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PushResult {
    pub tag: String,
    pub digest: String,
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn to_value(v: &impl Serialize) -> Value {
        serde_json::to_value(v).expect("serializes")
    }

    /// swagger.yaml's ImageSummary example: every member present, Labels null when none
    /// (a Go nil map), VirtualSize only when asked for.
    #[test]
    fn summary_members_as_dockerd() {
        let s = Summary {
            containers: -1,
            created: 1644009612,
            id: "sha256:ec3f0931a6e6b6855d76b2d7b0be30e81860baccd891b2e243280bf1cd8ad710".into(),
            parent_id: String::new(),
            repo_digests: vec![],
            repo_tags: vec!["example:1.0".into()],
            shared_size: -1,
            size: 172064416,
            ..Summary::default()
        };
        // Members in image.Summary's order.
        assert_eq!(
            serde_json::to_string(&s).expect("serializes"),
            r#"{"Containers":-1,"Created":1644009612,"Id":"sha256:ec3f0931a6e6b6855d76b2d7b0be30e81860baccd891b2e243280bf1cd8ad710","Labels":null,"ParentId":"","RepoDigests":[],"RepoTags":["example:1.0"],"SharedSize":-1,"Size":172064416}"#
        );
        let v = to_value(&s);
        assert_eq!(v["Labels"], Value::Null);
        assert_eq!(v["RepoDigests"], json!([]));
        let old = to_value(&Summary {
            virtual_size: Some(5),
            ..s
        });
        assert_eq!(old["VirtualSize"], 5);
    }

    /// types.ImageInspect's tags: Created, Container, ContainerConfig, Variant and
    /// VirtualSize are omitempty; Config is emitted null; RootFS and Metadata always.
    #[test]
    fn inspect_members_as_dockerd() {
        let i = InspectResponse {
            id: "sha256:abc".into(),
            created: Some("2022-02-04T21:20:12.497794809Z".into()),
            graph_driver: GraphDriverData {
                name: "overlay2".into(),
                data: BTreeMap::from([("LowerDir".into(), "/a:/b".into())]),
            },
            root_fs: RootFs {
                r#type: "layers".into(),
                layers: vec!["sha256:1".into()],
            },
            metadata: Metadata {
                last_tag_time: "0001-01-01T00:00:00Z".into(),
            },
            ..InspectResponse::default()
        };
        let v = to_value(&i);
        for absent in [
            "Container",
            "ContainerConfig",
            "Variant",
            "VirtualSize",
            "OsVersion",
        ] {
            assert!(v.get(absent).is_none(), "{absent} must be omitted: {v}");
        }
        assert_eq!(v["Config"], Value::Null);
        assert_eq!(v["Parent"], "");
        assert_eq!(v["RepoTags"], json!([]));
        assert_eq!(
            v["GraphDriver"],
            json!({"Data": {"LowerDir": "/a:/b"}, "Name": "overlay2"})
        );
        assert_eq!(
            v["RootFS"],
            json!({"Type": "layers", "Layers": ["sha256:1"]})
        );
        assert_eq!(
            v["Metadata"],
            json!({"LastTagTime": "0001-01-01T00:00:00Z"})
        );
        // API < 1.45: the committed-from container's members, ContainerConfig null as given.
        let old = to_value(&InspectResponse {
            container: Some(String::new()),
            container_config: Some(Value::Null),
            ..i
        });
        assert_eq!(old["Container"], "");
        assert_eq!(old["ContainerConfig"], Value::Null);
    }

    /// swagger.yaml's HistoryResponseItem example; Tags null for an untagged entry.
    #[test]
    fn history_as_dockerd() {
        let h = HistoryResponseItem {
            id: "<missing>".into(),
            created: 1398108222,
            created_by: "/bin/sh -c #(nop) MAINTAINER x".into(),
            ..HistoryResponseItem::default()
        };
        assert_eq!(
            to_value(&h),
            json!({"Comment": "", "Created": 1398108222, "CreatedBy": "/bin/sh -c #(nop) MAINTAINER x", "Id": "<missing>", "Size": 0, "Tags": null})
        );
    }

    /// DeleteResponse's members are omitempty: each entry names one of them; a prune with
    /// nothing deleted reports null.
    #[test]
    fn delete_and_prune_as_dockerd() {
        assert_eq!(
            to_value(&DeleteResponse::untagged("busybox:latest")),
            json!({"Untagged": "busybox:latest"})
        );
        assert_eq!(
            to_value(&DeleteResponse::deleted("sha256:1")),
            json!({"Deleted": "sha256:1"})
        );
        assert_eq!(
            to_value(&PruneReport::default()),
            json!({"ImagesDeleted": null, "SpaceReclaimed": 0})
        );
    }

    /// jsonmessage's tags: all omitempty, an empty progressDetail still an object, the
    /// error in both errorDetail and error, aux as the build's or the push's result.
    #[test]
    fn json_messages_as_dockerd() {
        let layer = JsonMessage {
            id: "a3ed95caeb02".into(),
            progress: Some(JsonProgress::default()),
            ..JsonMessage::status("Pulling fs layer")
        };
        assert_eq!(
            to_value(&layer),
            json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "a3ed95caeb02"})
        );
        let downloading = JsonMessage {
            progress: Some(JsonProgress {
                current: 1,
                total: 2,
                ..JsonProgress::default()
            }),
            ..JsonMessage::status("Downloading")
        };
        assert_eq!(
            to_value(&downloading)["progressDetail"],
            json!({"current": 1, "total": 2})
        );
        assert_eq!(
            to_value(&JsonMessage::failure("boom", Some(2))),
            json!({"errorDetail": {"code": 2, "message": "boom"}, "error": "boom"})
        );
        assert_eq!(
            to_value(&JsonMessage::failure("boom", None)),
            json!({"errorDetail": {"message": "boom"}, "error": "boom"})
        );
        let built = JsonMessage {
            aux: Some(Aux::Build(BuildResult {
                id: "sha256:1".into(),
            })),
            ..JsonMessage::default()
        };
        assert_eq!(to_value(&built), json!({"aux": {"ID": "sha256:1"}}));
        let pushed = JsonMessage {
            progress: Some(JsonProgress::default()),
            aux: Some(Aux::Push(PushResult {
                tag: "1".into(),
                digest: "sha256:2".into(),
                size: 3,
            })),
            ..JsonMessage::default()
        };
        assert_eq!(
            to_value(&pushed),
            json!({"progressDetail": {}, "aux": {"Tag": "1", "Digest": "sha256:2", "Size": 3}})
        );
        assert_eq!(
            to_value(&JsonMessage::stream("x\n")),
            json!({"stream": "x\n"})
        );
    }

    /// A client reads RootFS as dockerd sends it for an image without layers: `{}`.
    #[test]
    fn an_empty_root_fs_decodes() {
        let r: RootFs = serde_json::from_value(json!({})).expect("decodes");
        assert!(r.r#type.is_empty() && r.layers.is_empty());
    }
}

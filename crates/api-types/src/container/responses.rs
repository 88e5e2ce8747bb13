//! The smaller container responses of API 1.45: create, wait, top, changes, prune, commit
//! and the archive's path stat (api/types/container/*.go and api/types/types.go).

use serde::{Deserialize, Serialize};

/// POST /containers/create's 201.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateResponse {
    #[serde(rename = "Id")]
    pub id: String,
    /// Always a list (dockerd makes an empty one rather than send null).
    pub warnings: Vec<String>,
}

/// POST /containers/{id}/wait's answer once the condition is met.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    /// Only when waiting failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitExitError>,
    /// The exit code, -1 when waiting failed.
    pub status_code: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitExitError {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// GET /containers/{id}/top (moby's ContainerTopOKBody).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopResponse {
    /// One row per process, a value per title.
    pub processes: Vec<Vec<String>>,
    /// ps's column titles.
    pub titles: Vec<String>,
}

/// One entry of GET /containers/{id}/changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilesystemChange {
    pub kind: ChangeType,
    pub path: String,
}

/// 0: modified, 1: added, 2: deleted (sent as the number).
pub type ChangeType = u8;

/// POST /containers/prune.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    /// null when none was removed (a nil slice in dockerd).
    pub containers_deleted: Option<Vec<String>>,
    /// Bytes.
    pub space_reclaimed: u64,
}

/// POST /commit's 201: the new image's id (moby's IDResponse).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommitResponse {
    #[serde(rename = "Id")]
    pub id: String,
}

/// A path in a container, as the `X-Docker-Container-Path-Stat` header carries it (base64
/// of this JSON; moby's ContainerPathStat).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PathStat {
    /// The base name.
    pub name: String,
    pub size: i64,
    /// Go's os.FileMode bits (type bits high, permissions low).
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    /// A symbolic link's target, else empty.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn encode(v: &impl Serialize) -> Value {
        serde_json::to_value(v).unwrap_or_default()
    }

    /// Go tags: WaitResponse.Error is omitempty, so a clean exit has no Error at all.
    #[test]
    fn wait_has_an_error_only_when_it_failed() {
        assert_eq!(
            encode(&WaitResponse {
                status_code: 3,
                error: None
            }),
            json!({"StatusCode": 3})
        );
        let failed = WaitResponse {
            status_code: -1,
            error: Some(WaitExitError {
                message: "gone".into(),
            }),
        };
        assert_eq!(
            encode(&failed),
            json!({"StatusCode": -1, "Error": {"Message": "gone"}})
        );
    }

    /// swagger's examples for create, top and changes, and dockerd's empty prune.
    #[test]
    fn small_responses_are_moby_s() {
        assert_eq!(
            encode(&CreateResponse {
                id: "e90e34656806".into(),
                warnings: vec![]
            }),
            json!({"Id": "e90e34656806", "Warnings": []})
        );
        assert_eq!(
            encode(&TopResponse {
                titles: vec!["UID".into(), "PID".into()],
                processes: vec![vec!["root".into(), "13642".into()]],
            }),
            json!({"Titles": ["UID", "PID"], "Processes": [["root", "13642"]]})
        );
        assert_eq!(
            encode(&FilesystemChange {
                path: "/dev".into(),
                kind: 0
            }),
            json!({"Path": "/dev", "Kind": 0})
        );
        assert_eq!(
            encode(&PruneReport::default()),
            json!({"ContainersDeleted": null, "SpaceReclaimed": 0})
        );
        assert_eq!(
            encode(&CommitResponse {
                id: "sha256:ab".into()
            }),
            json!({"Id": "sha256:ab"})
        );
    }

    /// ContainerPathStat's Go tags: lower-case names, linkTarget in camel case.
    #[test]
    fn a_path_stat_is_moby_s() {
        let stat = PathStat {
            name: "passwd".into(),
            size: 1024,
            mode: 0o644,
            mtime: "2024-01-02T03:04:05Z".into(),
            link_target: String::new(),
        };
        assert_eq!(
            encode(&stat),
            json!({"name": "passwd", "size": 1024, "mode": 420,
                   "mtime": "2024-01-02T03:04:05Z", "linkTarget": ""})
        );
    }
}

//! The image config as Docker writes and reads it: the OCI image config plus Docker's own
//! members, as moby's docker-image-spec defines `DockerOCIImage` and `DockerOCIImageConfig`.
//! oci-spec's types hold every OCI part; members neither knows (a pulled config's
//! `container_config`, the legacy `Hostname`, `AttachStdin`...) are kept in `extra` so a
//! commit or build on top of an image carries them on as it did when configs were plain JSON.
//!
//! A stored config's bytes are never re-serialized from this type where its digest matters:
//! it is parsed to be read, and serialized once, for a new image only.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::oci::{Arch, Config, History, Os, RootFs};
use crate::Platform;

/// The image config blob (`application/vnd.oci.image.config.v1+json` or Docker's
/// `application/vnd.docker.container.image.v1+json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerOCIImage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Absent in a config is an empty name, not the host's (oci-spec's default).
    #[serde(default = "no_arch")]
    pub architecture: Arch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default = "no_os")]
    pub os: Os,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<DockerOCIImageConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<History>>,
    /// Members outside the OCI spec (`container`, `container_config`, `docker_version`...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn no_arch() -> Arch {
    Arch::Other(String::new())
}

fn no_os() -> Os {
    Os::Other(String::new())
}

/// The config's `config`: the OCI execution parameters plus Docker's.
///
/// A member that is null where it is read (Go's nil slice or map: dockerd writes
/// `"Entrypoint": null`) is kept in `extra` as null, and written again while its typed field
/// is unset, so a config read and written back (inspect, a commit or build on top) keeps
/// null and absent apart as dockerd wrote them. A set field wins over such a null.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DockerOCIImageConfig {
    pub oci: Config,
    /// Deprecated in the OCI spec (Windows only), still written by Docker's builders.
    pub args_escaped: bool,
    pub healthcheck: Option<HealthcheckConfig>,
    /// Dockerfile lines run when an image is built FROM this one.
    pub on_build: Option<Vec<String>>,
    pub shell: Option<Vec<String>>,
    /// Members of moby's container.Config that Docker writes into image configs
    /// (`Hostname`, `Domainname`, `AttachStdin`, `Image`...), other unknown members, and the
    /// null ones.
    pub extra: Map<String, Value>,
}

/// DockerOCIImageConfig as it is on the wire.
#[derive(Serialize, Deserialize)]
struct ConfigWire<O, X> {
    #[serde(flatten)]
    oci: O,
    #[serde(
        rename = "ArgsEscaped",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    args_escaped: bool,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    healthcheck: Option<HealthcheckConfig>,
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Option::is_none")]
    on_build: Option<Vec<String>>,
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    shell: Option<Vec<String>>,
    #[serde(flatten)]
    extra: X,
}

impl Serialize for DockerOCIImageConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let typed = ConfigWire {
            oci: &self.oci,
            args_escaped: self.args_escaped,
            healthcheck: self.healthcheck.clone(),
            on_build: self.on_build.clone(),
            shell: self.shell.clone(),
            extra: Map::new(),
        };
        let mut map = match serde_json::to_value(&typed).map_err(S::Error::custom)? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for (k, v) in &self.extra {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for DockerOCIImageConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let map = Map::<String, Value>::deserialize(d)?;
        let nulls: Vec<String> = map
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.clone())
            .collect();
        let wire: ConfigWire<Config, Map<String, Value>> =
            serde_json::from_value(Value::Object(map)).map_err(D::Error::custom)?;
        let mut extra = wire.extra;
        for k in nulls {
            extra.insert(k, Value::Null);
        }
        Ok(DockerOCIImageConfig {
            oci: wire.oci,
            args_escaped: wire.args_escaped,
            healthcheck: wire.healthcheck,
            on_build: wire.on_build,
            shell: wire.shell,
            extra,
        })
    }
}

/// moby's HealthcheckConfig: the same type as a container's HealthConfig (moby's
/// container.HealthConfig is an alias of the image spec's), so the image's check and the
/// request's merge without a conversion.
pub use berth_api_types::container::HealthConfig as HealthcheckConfig;

impl DockerOCIImage {
    /// Parse a config blob.
    pub fn from_slice(bytes: &[u8]) -> Result<DockerOCIImage> {
        serde_json::from_slice(bytes).map_err(|e| Error::Meta(format!("image config: {e}")))
    }

    /// The bytes of a new image's config (made once; its digest is the image id). Keys
    /// are sorted, so that the same config makes the same bytes (oci-spec keeps labels,
    /// ports and volumes in hash maps).
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let invalid = |e: serde_json::Error| Error::Meta(format!("image config: {e}"));
        let sorted = serde_json::to_value(self).map_err(invalid)?;
        serde_json::to_vec(&sorted).map_err(invalid)
    }

    /// The platform it was built for.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.to_string(),
            architecture: self.architecture.to_string(),
            variant: self.variant.clone().filter(|v| !v.is_empty()),
        }
    }

    /// The execution parameters (an empty set when the config has none).
    pub fn exec_config(&self) -> DockerOCIImageConfig {
        self.config.clone().unwrap_or_default()
    }

    /// The execution parameters as JSON (null when the config has none), for readers that
    /// take them as the API shows them.
    pub fn config_value(&self) -> Value {
        // Serializing this type cannot fail: every map has string keys.
        self.config
            .as_ref()
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or(Value::Null)
    }

    /// The history entries (none when the config has no `history`).
    pub fn history_entries(&self) -> &[History] {
        self.history.as_deref().unwrap_or_default()
    }

    /// The labels of its execution parameters.
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.oci.labels().clone())
            .map(|l| l.into_iter().collect())
            .unwrap_or_default()
    }
}

impl DockerOCIImageConfig {
    /// Write `member` as null while its field is unset (Go's nil: what dockerd's builder
    /// writes for a Cmd an ENTRYPOINT reset, or the OnBuild a child consumed).
    pub fn null(&mut self, member: &str) {
        self.extra.insert(member.to_string(), Value::Null);
    }

    /// Add ports to `ExposedPorts` (a set: each once).
    pub fn expose(&mut self, ports: impl IntoIterator<Item = String>) {
        let set = add_to_set(self.oci.exposed_ports().clone(), ports);
        self.oci.set_exposed_ports(Some(set));
    }

    /// Add paths to `Volumes` (a set: each once).
    pub fn add_volumes(&mut self, paths: impl IntoIterator<Item = String>) {
        let set = add_to_set(self.oci.volumes().clone(), paths);
        self.oci.set_volumes(Some(set));
    }
}

fn add_to_set(set: Option<Vec<String>>, items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut set = set.unwrap_or_default();
    for item in items {
        if !set.contains(&item) {
            set.push(item);
        }
    }
    set
}

/// A history entry as Docker writes them (`empty_layer` only when true).
pub fn history_entry(
    created: &str,
    created_by: &str,
    author: &str,
    comment: &str,
    empty_layer: bool,
) -> History {
    let mut h = History::default();
    h.set_created(Some(created.to_string()));
    h.set_created_by(Some(created_by.to_string()));
    h.set_author(Some(author.to_string()).filter(|s| !s.is_empty()));
    h.set_comment(Some(comment.to_string()).filter(|s| !s.is_empty()));
    h.set_empty_layer(empty_layer.then_some(true));
    h
}

/// A `rootfs` of layers with these diff ids.
pub fn rootfs(diff_ids: Vec<String>) -> RootFs {
    let mut r = RootFs::default();
    r.set_diff_ids(diff_ids);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A config as dockerd 26's classic builder writes it (moby's image.Image with a
    /// container.Config), with Docker's Healthcheck, OnBuild, Shell and ArgsEscaped.
    fn docker_config() -> Value {
        json!({
            "architecture": "amd64",
            "config": {
                "Hostname": "", "Domainname": "", "User": "app",
                "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                "Tty": false, "OpenStdin": false, "StdinOnce": false,
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh", "-c", "serve"],
                "Healthcheck": {"Test": ["CMD-SHELL", "check || exit 1"], "Interval": 5_000_000_000_i64, "Retries": 3},
                "ArgsEscaped": true,
                "Image": "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
                "Volumes": {"/data": {}},
                "WorkingDir": "/srv",
                "Entrypoint": null,
                "OnBuild": ["RUN echo child"],
                "Labels": {"org.opencontainers.image.title": "app"},
                "StopSignal": "SIGQUIT",
                "Shell": ["/bin/bash", "-c"]
            },
            "container": "8e8b1c7d6b2f",
            "container_config": {"Hostname": "8e8b1c7d6b2f", "Cmd": ["/bin/sh", "-c", "#(nop) SHELL [/bin/bash -c]"]},
            "created": "2024-05-01T10:00:00.123456789Z",
            "docker_version": "26.1.3",
            "history": [
                {"created": "2024-04-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
                {"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c #(nop)  SHELL [/bin/bash -c]", "empty_layer": true}
            ],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:d101c9453715a978a2a520f553588e77dfb4236762175eba61c5c264a449c75d"]}
        })
    }

    #[test]
    fn a_docker_config_keeps_dockers_members() {
        let bytes = serde_json::to_vec(&docker_config()).expect("fixture");
        let image = DockerOCIImage::from_slice(&bytes).expect("parse");
        assert_eq!(image.platform().to_string(), "linux/amd64");
        assert_eq!(image.history_entries().len(), 2);
        assert_eq!(image.history_entries()[1].empty_layer(), Some(true));
        assert_eq!(image.rootfs.diff_ids().len(), 1);
        let c = image.exec_config();
        assert_eq!(c.oci.user().as_deref(), Some("app"));
        assert_eq!(c.oci.stop_signal().as_deref(), Some("SIGQUIT"));
        assert!(c.args_escaped);
        assert_eq!(c.on_build, Some(vec!["RUN echo child".to_string()]));
        assert_eq!(c.shell, Some(vec!["/bin/bash".into(), "-c".into()]));
        let check = c.healthcheck.clone().expect("healthcheck");
        assert_eq!((check.interval, check.retries), (5_000_000_000, 3));
        assert_eq!(c.extra["Hostname"], json!(""));
        assert_eq!(c.extra["AttachStdin"], json!(false));
        assert!(
            !c.extra.contains_key("Cmd"),
            "an OCI member is not an extra"
        );
        assert_eq!(image.extra["docker_version"], json!("26.1.3"));

        // Serialized again, every member is there with its value, nulls as nulls.
        let again: Value = serde_json::to_value(&image).expect("serialize");
        assert_eq!(again, docker_config());

        // A field set wins over the null it had; unset again, it is null again.
        let mut c = image.exec_config();
        c.oci.set_entrypoint(Some(vec!["/run".into()]));
        let v = serde_json::to_value(&c).expect("serialize");
        assert_eq!(v["Entrypoint"], json!(["/run"]));
        c.oci.set_entrypoint(None);
        let v = serde_json::to_value(&c).expect("serialize");
        assert_eq!(v.get("Entrypoint"), Some(&Value::Null));
        c.oci.set_cmd(None);
        c.on_build = None;
        c.null("OnBuild");
        let v = serde_json::to_value(&c).expect("serialize");
        assert_eq!((v.get("Cmd"), v.get("OnBuild")), (None, Some(&Value::Null)));
    }

    #[test]
    fn an_oci_config_has_only_oci_members() {
        // From the OCI image spec's config.md example.
        let oci = json!({
            "created": "2015-10-31T22:22:56.015925234Z",
            "author": "Alyssa P. Hacker <alyspdev@example.com>",
            "architecture": "arm64",
            "variant": "v8",
            "os": "linux",
            "config": {
                "User": "alice",
                "ExposedPorts": {"8080/tcp": {}},
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FOO=oci_is_a"],
                "Entrypoint": ["/bin/my-app-binary"],
                "Cmd": ["--foreground", "--config", "/etc/my-app.d/default.cfg"],
                "Volumes": {"/var/job-result-data": {}, "/var/log/my-app-logs": {}},
                "WorkingDir": "/home/alice",
                "Labels": {"com.example.project.git.url": "https://example.com/project.git"}
            },
            "rootfs": {"diff_ids": ["sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1"], "type": "layers"},
            "history": [{"created": "2015-10-31T22:22:54.690851953Z", "created_by": "/bin/sh -c #(nop) ADD file:a3bc1e842b69636f9df5256c49c5374fb4eef1e281fe3f282c65fb853ee171c5 in /"}]
        });
        let image: DockerOCIImage = serde_json::from_value(oci.clone()).expect("parse");
        assert_eq!(image.platform().to_string(), "linux/arm64/v8");
        assert!(image.extra.is_empty());
        let c = image.exec_config();
        assert!(c.extra.is_empty() && c.healthcheck.is_none() && c.shell.is_none());
        assert_eq!(image.labels().len(), 1);
        assert_eq!(serde_json::to_value(&image).expect("serialize"), oci);
    }

    #[test]
    fn a_minimal_config_reads_as_empty_not_the_host() {
        let image = DockerOCIImage::from_slice(b"{}").expect("parse");
        assert_eq!(image.platform().to_string(), "/");
        assert!(image.config.is_none() && image.history_entries().is_empty());
    }

    #[test]
    fn new_history_entries_leave_empty_members_out() {
        let h = history_entry("2024-01-01T00:00:00Z", "RUN x", "", "", false);
        assert_eq!(
            serde_json::to_value(&h).expect("history"),
            json!({"created": "2024-01-01T00:00:00Z", "created_by": "RUN x"})
        );
        let h = history_entry("t", "ENV a=b", "me", "hi", true);
        assert_eq!(
            serde_json::to_value(&h).expect("history"),
            json!({"created": "t", "created_by": "ENV a=b", "author": "me", "comment": "hi", "empty_layer": true})
        );
    }
}

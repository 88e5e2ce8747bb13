//! Manifests and indexes as registries serve them (OCI and Docker v2 schema 2), fetched
//! with a size limit and checked against their digests; platform choice from an index.

use berth_image::manifest as mt;
pub use berth_image::oci::{Descriptor, ImageIndex as Index, ImageManifest};
use berth_image::Digest;
pub use berth_image::Platform;
use reqwest::{header, Method};
use serde::Deserialize;

use crate::client::{check, Repository};
use crate::error::{Error, Result};

/// containerd's limit: a manifest is small; anything larger is refused unread.
pub const MAX_MANIFEST: usize = 4 << 20;
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// What a manifest body says it is, read before it is parsed as one kind.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
}

/// A manifest as fetched: its bytes, digest and what it is.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub digest: Digest,
    pub bytes: Vec<u8>,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// Both boxed: oci-spec's manifest and index are hundreds of bytes each.
    Index(Box<Index>),
    Image(Box<ImageManifest>),
}

/// GET a manifest by tag or digest. The bytes must hash to the digest asked for, and to
/// the Docker-Content-Digest the registry announces.
pub async fn fetch(repo: &Repository, reference: &str, what: &str) -> Result<Fetched> {
    let url = repo.url(&format!("manifests/{reference}"));
    let resp = repo
        .send(&url, |r| r.header(header::ACCEPT, ACCEPT), Method::GET)
        .await?;
    let resp = check(resp, &format!("manifest for {what}")).await?;
    let announced = header_str(&resp, "docker-content-digest").map(|d| Digest::parse(&d));
    let content_type = header_str(&resp, header::CONTENT_TYPE.as_str()).unwrap_or_default();
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_MANIFEST as u64)
    {
        return Err(too_large(what));
    }
    let bytes = read_limited(resp, &url, what).await?;
    let digest = Digest::of(&bytes);
    let expected = match Digest::parse(reference) {
        Ok(d) => Some(d),
        Err(_) => announced.transpose().map_err(|e| Error::InvalidManifest {
            what: format!("manifest for {what}"),
            why: format!("the registry's Docker-Content-Digest is invalid: {e}"),
        })?,
    };
    if let Some(expected) = expected.filter(|e| *e != digest) {
        return Err(Error::DigestMismatch {
            what: format!("manifest for {what}"),
            expected: expected.to_string(),
            actual: digest.to_string(),
        });
    }
    let kind = parse(&bytes, &content_type, what)?;
    Ok(Fetched {
        digest,
        bytes,
        kind,
    })
}

fn header_str(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
}

fn too_large(what: &str) -> Error {
    Error::InvalidManifest {
        what: format!("manifest for {what}"),
        why: format!(
            "larger than the {} MiB a manifest may be",
            MAX_MANIFEST >> 20
        ),
    }
}

async fn read_limited(mut resp: reqwest::Response, url: &str, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| Error::http(url, &e))? {
        if out.len() + chunk.len() > MAX_MANIFEST {
            return Err(too_large(what));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// What the bytes are, by the body's mediaType or the Content-Type.
pub fn parse(bytes: &[u8], content_type: &str, what: &str) -> Result<Kind> {
    let invalid = |why: String| Error::InvalidManifest {
        what: format!("manifest for {what}"),
        why,
    };
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let media_type = probe
        .media_type
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| content_type.to_string());
    let is_index = match media_type.as_str() {
        mt::OCI_INDEX | mt::DOCKER_MANIFEST_LIST => true,
        mt::OCI_MANIFEST | mt::DOCKER_MANIFEST => false,
        "" | "application/json" => probe.manifests.is_some(),
        DOCKER_SCHEMA1 => {
            return Err(Error::UnsupportedMediaType {
                what: format!("manifest for {what} (Docker schema 1 is deprecated)"),
                media_type,
            })
        }
        _ => {
            return Err(Error::UnsupportedMediaType {
                what: format!("manifest for {what}"),
                media_type,
            })
        }
    };
    if probe.schema_version != Some(2) {
        return Err(invalid("schemaVersion is not 2".into()));
    }
    if is_index {
        serde_json::from_slice(bytes)
            .map(|i| Kind::Index(Box::new(i)))
            .map_err(|e| invalid(format!("invalid index: {e}")))
    } else {
        let m: ImageManifest =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("invalid manifest: {e}")))?;
        check_image_media_types(&m, what)?;
        Ok(Kind::Image(Box::new(m)))
    }
}

/// Only container images: an image config and tar layers berth can unpack.
fn check_image_media_types(m: &ImageManifest, what: &str) -> Result<()> {
    let config_type = m.config().media_type().to_string();
    if !matches!(config_type.as_str(), mt::OCI_CONFIG | DOCKER_CONFIG) {
        return Err(Error::UnsupportedMediaType {
            what: format!("config of {what} (not a container image)"),
            media_type: config_type,
        });
    }
    for l in m.layers() {
        let media_type = l.media_type().to_string();
        layer_media_type(&media_type).ok_or_else(|| Error::UnsupportedMediaType {
            what: format!("layer {} of {what}", l.digest()),
            media_type: media_type.clone(),
        })?;
    }
    Ok(())
}

/// The OCI media type berth records a pulled layer under.
pub fn layer_media_type(media_type: &str) -> Option<&'static str> {
    match media_type {
        mt::OCI_LAYER => Some(mt::OCI_LAYER),
        mt::OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(mt::OCI_LAYER_GZIP),
        mt::OCI_LAYER_ZSTD => Some(mt::OCI_LAYER_ZSTD),
        _ => None,
    }
}

/// The entry of `index` for `platform`.
pub fn choose<'a>(index: &'a Index, platform: &Platform, what: &str) -> Result<&'a Descriptor> {
    index
        .manifests()
        .iter()
        .find(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| platform.served_by(&p.into()))
        })
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no matching manifest for {platform} in the manifest list entries of {what}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let json = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": mt::OCI_MANIFEST, "digest": Digest::of(b"a"), "size": 1,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": mt::OCI_MANIFEST, "digest": Digest::of(b"b"), "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        serde_json::from_value(json).expect("index")
    }

    #[test]
    fn platform_choice() {
        let i = index();
        let amd = Platform::parse("linux/amd64").expect("p");
        assert_eq!(
            choose(&i, &amd, "x").expect("c").digest().to_string(),
            Digest::of(b"b").to_string()
        );
        let arm = Platform::parse("linux/arm64").expect("p");
        assert_eq!(
            choose(&i, &arm, "x").expect("c").digest().to_string(),
            Digest::of(b"a").to_string()
        );
        let arm7 = Platform::parse("linux/arm64/v7").expect("p");
        assert!(choose(&i, &arm7, "x").is_err());
        assert!(Platform::parse("linux").is_err());
    }

    #[test]
    fn media_types() {
        let bad = br#"{"schemaVersion":2,"mediaType":"application/vnd.example+json"}"#;
        assert!(matches!(
            parse(bad, "", "x"),
            Err(Error::UnsupportedMediaType { .. })
        ));
        assert!(matches!(
            parse(b"{", "", "x"),
            Err(Error::InvalidManifest { .. })
        ));
        let helm = serde_json::json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": Digest::of(b"c"), "size": 1},
            "layers": []});
        let err = parse(&serde_json::to_vec(&helm).expect("j"), "", "x").expect_err("helm");
        assert!(err.to_string().contains("not a container image"), "{err}");
    }
}

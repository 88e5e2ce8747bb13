//! The OCI manifest berth records for every image (what save and push send), and the media
//! types it uses.

use serde_json::json;

use crate::digest::Digest;
use crate::meta::LayerRecord;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The OCI layer media type for a blob's compression.
pub fn layer_media_type(c: crate::unpack::Compression) -> &'static str {
    match c {
        crate::unpack::Compression::None => OCI_LAYER,
        crate::unpack::Compression::Gzip => OCI_LAYER_GZIP,
        crate::unpack::Compression::Zstd => OCI_LAYER_ZSTD,
    }
}

pub fn oci_manifest(config: &Digest, config_size: u64, layers: &[LayerRecord]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.blob, "size": l.blob_size}))
        .collect();
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": config_size},
        "layers": layers,
    });
    serde_json::to_vec(&m).unwrap_or_default()
}

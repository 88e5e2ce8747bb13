//! The OCI manifest berth records for every image (what save and push send), and the media
//! types it uses.

use serde::Serialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::meta::LayerRecord;
use crate::oci::{Descriptor, ImageManifestBuilder, MediaType};

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

/// The descriptor of a blob.
pub fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Result<Descriptor> {
    Ok(Descriptor::new(media_type.into(), size, digest.to_oci()?))
}

/// `value` as JSON with its object keys sorted, so that the same value makes the same bytes
/// (oci-spec keeps annotations in hash maps).
pub fn sorted_json(value: &impl Serialize) -> Result<Vec<u8>> {
    let invalid = |e: serde_json::Error| Error::Meta(format!("manifest: {e}"));
    serde_json::to_vec(&serde_json::to_value(value).map_err(invalid)?).map_err(invalid)
}

/// The manifest of a new image (written once: its digest names the image in a registry).
pub fn oci_manifest(config: &Digest, config_size: u64, layers: &[LayerRecord]) -> Result<Vec<u8>> {
    let layers = layers
        .iter()
        .map(|l| descriptor(&l.media_type, &l.blob, l.blob_size))
        .collect::<Result<Vec<_>>>()?;
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(OCI_CONFIG, config, config_size)?)
        .layers(layers)
        .build()
        .map_err(|e| Error::Meta(format!("manifest: {e}")))?;
    sorted_json(&m)
}

#[cfg(test)]
mod tests;

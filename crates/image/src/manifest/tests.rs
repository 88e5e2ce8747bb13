//! Real manifests and indexes read as oci-spec's types and written back unchanged: Docker's
//! schema2 manifest and manifest list have the OCI shape with other media types.

use serde_json::{json, Value};

use super::*;
use crate::oci::{ImageIndex, ImageManifest};

fn docker_manifest() -> Value {
    // As Docker Hub serves busybox's linux/amd64 manifest.
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1457,
            "digest": "sha256:a416a98b71e224a31ee99cff8e16063554498227d2b696152a9c3e0aa65e5824"
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 2591575,
            "digest": "sha256:ec562eabd705d25bfea8c8d79e4610775e375524af00552fe871d3338261563c"
        }]
    })
}

fn docker_manifest_list() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "size": 527,
                "digest": "sha256:907ca53d7e2947e849b839b1cd258c98fd3916c60f2e6e70c30edbf741ab6754",
                "platform": {"architecture": "amd64", "os": "linux"}
            },
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "size": 527,
                "digest": "sha256:4f6a30da4a5ea49f2d5be5ba2a5b0ab4a8f2c8a3d6c2c8dd0f6eb19d5c0a1f9e",
                "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}
            }
        ]
    })
}

/// As BuildKit pushes an image with provenance: each image manifest has an attestation
/// manifest beside it, on the platform unknown/unknown.
fn oci_index_with_attestations() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:1fa89c01cd0473cedbd1a470abb8c139eeb80920edf1bc55de87851bfb63ea11",
                "size": 610,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:b4e8cc4a9d2c9ed1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70819",
                "size": 566,
                "annotations": {
                    "vnd.docker.reference.digest": "sha256:1fa89c01cd0473cedbd1a470abb8c139eeb80920edf1bc55de87851bfb63ea11",
                    "vnd.docker.reference.type": "attestation-manifest"
                },
                "platform": {"architecture": "unknown", "os": "unknown"}
            }
        ]
    })
}

#[test]
fn a_docker_schema2_manifest_round_trips() {
    let m: ImageManifest = serde_json::from_value(docker_manifest()).expect("manifest");
    assert_eq!(
        m.media_type().as_ref().map(|t| t.to_string()).as_deref(),
        Some(DOCKER_MANIFEST)
    );
    assert_eq!(
        m.config().media_type(),
        &MediaType::Other("application/vnd.docker.container.image.v1+json".into())
    );
    assert_eq!(m.layers()[0].size(), 2591575);
    assert_eq!(
        serde_json::to_value(&m).expect("serialize"),
        docker_manifest()
    );
}

#[test]
fn a_manifest_list_and_an_index_with_attestations_round_trip() {
    for fixture in [docker_manifest_list(), oci_index_with_attestations()] {
        let index: ImageIndex = serde_json::from_value(fixture.clone()).expect("index");
        assert_eq!(serde_json::to_value(&index).expect("serialize"), fixture);
    }
    let index: ImageIndex = serde_json::from_value(oci_index_with_attestations()).expect("index");
    let host = crate::Platform::parse("linux/arm64").expect("platform");
    let served: Vec<bool> = index
        .manifests()
        .iter()
        .map(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| host.served_by(&p.into()))
        })
        .collect();
    assert_eq!(served, [true, false], "the attestation serves no platform");
    let list: ImageIndex = serde_json::from_value(docker_manifest_list()).expect("list");
    let arm = crate::Platform::parse("linux/arm/v7").expect("platform");
    let p = list.manifests()[1].platform().as_ref().expect("platform");
    assert!(arm.served_by(&p.into()));
}

#[test]
fn berths_manifest_is_the_oci_shape_with_sorted_keys() {
    let config = Digest::of(b"{}");
    let layer = crate::LayerRecord {
        diff_id: Digest::of(b"diff"),
        blob: Digest::of(b"blob"),
        media_type: OCI_LAYER_GZIP.into(),
        blob_size: 42,
        chain_id: Digest::of(b"diff"),
    };
    let bytes = oci_manifest(&config, 2, &[layer]).expect("manifest");
    // The bytes json! made before these types: the same digest for the same image.
    let want = format!(
        concat!(
            r#"{{"config":{{"digest":"{}","mediaType":"application/vnd.oci.image.config.v1+json","size":2}},"#,
            r#""layers":[{{"digest":"{}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":42}}],"#,
            r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#
        ),
        config,
        Digest::of(b"blob")
    );
    assert_eq!(String::from_utf8(bytes).expect("utf-8"), want);
}

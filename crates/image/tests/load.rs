//! Loading archives into a store: what the loader leaves in the content store.

use std::io::Write;

use berth_image::ImageStore;
use sha2::Digest as _;

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, path, data).expect("append");
}

/// A docker-archive of one image whose one layer (holding one file) is stored as `layer`.
fn docker_archive(layer_tar: &[u8], layer: &[u8]) -> Vec<u8> {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha(layer_tar))]},
    }))
    .expect("config");
    let config_path = format!("{}.json", sha(&config));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_path, "RepoTags": ["img:1"], "Layers": ["l/layer.tar"]}
    ]))
    .expect("manifest");
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, &config_path, &config);
    append(&mut b, "l/layer.tar", layer);
    append(&mut b, "manifest.json", &manifest);
    b.into_inner().expect("tar")
}

/// Found by fuzzing (fuzz/tests/fuzz_load.rs): loading an image the store already has, with its
/// layer compressed otherwise, stored the new blob and then kept the image's record (and
/// its blobs): the new blob belonged to no image until berthd's next start swept it.
#[test]
fn loading_a_present_image_again_leaves_no_unused_blob() {
    let mut layer = tar::Builder::new(Vec::new());
    append(&mut layer, "hello", b"hi");
    let layer_tar = layer.into_inner().expect("layer");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer_tar).expect("gzip");
    let gzipped = gz.finish().expect("gzip");

    let dir = tempfile::tempdir().expect("tmp");
    let store = ImageStore::open(dir.path()).expect("store");
    for stored_as in [&layer_tar, &gzipped] {
        let archive = docker_archive(&layer_tar, stored_as);
        berth_image::archive::load(&store, archive.as_slice(), None, &mut |_| {}).expect("load");
    }
    let images = store.list().expect("list");
    assert_eq!(images.len(), 1);
    let r = &images[0].record;
    let mut referenced: Vec<String> = [r.id.to_string(), r.manifest.to_string()]
        .into_iter()
        .chain(r.layers.iter().map(|l| l.blob.to_string()))
        .collect();
    referenced.sort();
    let mut blobs: Vec<String> = store
        .content()
        .list()
        .expect("blobs")
        .iter()
        .map(ToString::to_string)
        .collect();
    blobs.sort();
    assert_eq!(blobs, referenced);
}

//! `import`: a root filesystem tarball (plain or compressed) as a one-layer image.

use std::collections::HashMap;
use std::io::Read;

use crate::config::DockerOCIImage;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{ImageStore, NewLayer};
use crate::ImageRecord;

/// Import `input`; `config_for` builds the image config from the layer's DiffID.
pub fn import(
    store: &ImageStore,
    mut input: impl Read,
    config_for: impl FnOnce(&Digest) -> DockerOCIImage,
    tags: &[Reference],
) -> Result<ImageRecord> {
    let scratch = store.scratch()?;
    let path = scratch.path().join("rootfs");
    let mut file = std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
    std::io::copy(&mut input, &mut file).map_err(|e| Error::io("receive", "rootfs tarball", e))?;
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    let _ = f.read(&mut head).map_err(|e| Error::io("read", &path, e))?;
    let media_type = crate::manifest::layer_media_type(crate::unpack::detect(&head)).to_string();
    let blob = store.content().adopt(&path, None, "rootfs tarball")?;
    let staging = store.staging_dir()?;
    let fs_dir = staging.path().join("fs");
    std::fs::create_dir(&fs_dir).map_err(|e| Error::io("create", &fs_dir, e))?;
    let unpacked = match crate::unpack::unpack(store.content().open_blob(&blob)?, &fs_dir) {
        Ok(u) => u,
        Err(e) => {
            let _ = store.discard(std::slice::from_ref(&blob), &[]);
            return Err(e);
        }
    };
    let chain = unpacked.diff_id.clone();
    store.install_snapshot(staging, &chain)?;
    let config = config_for(&unpacked.diff_id).to_vec()?;
    let layer = NewLayer {
        blob,
        media_type,
        diff_id: unpacked.diff_id,
    };
    let sizes = HashMap::from([(chain, unpacked.size)]);
    store.commit(&config, &[layer], &sizes, tags, None)
}

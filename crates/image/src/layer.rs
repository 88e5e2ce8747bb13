//! A new layer on top of an image (`docker commit`): the tar stream a caller writes becomes
//! a blob in the content store (its digest is the DiffID: the blob is not compressed), the
//! image is recorded with the parent's layers plus this one, and the layer's snapshot is
//! unpacked afterwards, off the request's path (see the store's `lazy`).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use crate::config::DockerOCIImage;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{ImageStore, NewLayer};
use crate::{ImageRecord, LayerRecord};

/// Add an image made of `parent` (its layers, bottom first) and one layer whose tar stream
/// `write` produces (returning its bytes of file content, the layer's size); `config_for`
/// builds the image config from the new layer's DiffID.
pub fn commit_layer(
    store: &Arc<ImageStore>,
    parent: &[LayerRecord],
    write: impl FnOnce(&mut dyn Write) -> Result<u64>,
    config_for: impl FnOnce(&Digest) -> DockerOCIImage,
    tags: &[Reference],
) -> Result<ImageRecord> {
    let mut ingest = store.content().ingest()?;
    let size = write(&mut ingest)?;
    let diff_id = ingest.digest();
    let blob = ingest.commit(None, "committed layer")?;
    let mut diff_ids: Vec<Digest> = parent.iter().map(|l| l.diff_id.clone()).collect();
    diff_ids.push(diff_id.clone());
    let chains = ImageStore::chain_ids(&diff_ids);
    let Some(chain) = chains.last().cloned() else {
        return Err(Error::archive("no layer to commit"));
    };
    let mut layers: Vec<NewLayer> = parent
        .iter()
        .map(|l| NewLayer {
            blob: l.blob.clone(),
            media_type: l.media_type.clone(),
            diff_id: l.diff_id.clone(),
        })
        .collect();
    layers.push(NewLayer {
        blob,
        media_type: crate::manifest::layer_media_type(crate::unpack::Compression::None).to_string(),
        diff_id: diff_id.clone(),
    });
    let sizes = HashMap::from([(chain, size)]);
    let config = config_for(&diff_id).to_vec()?;
    let record = store.commit(&config, &layers, &sizes, tags, None)?;
    if let Some(top) = record.layers.last() {
        store.unpack_in_background(vec![top.clone()]);
    }
    Ok(record)
}

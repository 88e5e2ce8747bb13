//! Snapshots unpacked after their image is recorded.
//!
//! `docker commit` stores the new layer's blob and records the image without unpacking it:
//! creating the layer's inodes is most of a commit's time on a disk, and nothing needs them
//! before the image's first use. The layer's snapshot is then unpacked from its blob by a
//! background thread ([`ImageStore::unpack_in_background`]) or, if a consumer comes first,
//! by that consumer ([`ImageStore::lower_dirs`]); one unpack per layer, whoever starts it
//! (a lock per ChainID), the others wait for it. A snapshot is unpacked into a `tmp-`
//! directory and renamed into place whole, so `snapshots/<chain>/fs` exists only complete;
//! a crash leaves a `tmp-` directory, removed at the next start, and the layer is unpacked
//! again from its blob at its first use or by the start's background pass.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::ImageStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::meta::{self, ImageRecord, LayerRecord, IMAGES};

impl ImageStore {
    /// The snapshot directories of `layers` (bottom first, as an image lists them) in
    /// overlayfs' order, top first; each unpacked first if it is not yet.
    pub fn lower_dirs(&self, layers: &[LayerRecord]) -> Result<Vec<PathBuf>> {
        let mut out = layers
            .iter()
            .map(|l| self.ensure_snapshot(l))
            .collect::<Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    /// The snapshot directory of `layer`, unpacked from its blob if it is not there yet.
    pub fn ensure_snapshot(&self, layer: &LayerRecord) -> Result<PathBuf> {
        let dir = self.snapshot_dir(&layer.chain_id);
        if dir.is_dir() {
            return Ok(dir);
        }
        let lock = self.unpack_lock(&layer.chain_id);
        let held = lock.lock().unwrap_or_else(|e| e.into_inner());
        // Whoever held the lock before may have made it.
        let result = if dir.is_dir() {
            Ok(())
        } else {
            self.unpack_snapshot(layer)
        };
        drop(held);
        self.forget_unpack_lock(&layer.chain_id, &lock);
        result?;
        Ok(dir)
    }

    /// Unpack, in a thread of their own, the snapshots of `layers` that are not there yet
    /// (after a commit; at start, the ones a crash left unmade).
    pub fn unpack_in_background(self: &Arc<Self>, layers: Vec<LayerRecord>) {
        if layers.is_empty() {
            return;
        }
        let store = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("berth-unpack".into())
            .spawn(move || {
                // A consumer needing a layer meanwhile does not wait for this: it unpacks
                // the layer itself under the layer's own lock.
                let _one = store.background.lock().unwrap_or_else(|e| e.into_inner());
                for layer in &layers {
                    match store.ensure_snapshot(layer) {
                        Ok(_) => tracing::debug!("layer {} unpacked", layer.chain_id),
                        // The image was removed meanwhile: nothing wants the snapshot.
                        Err(e) if !store.has_snapshot(&layer.chain_id).unwrap_or(true) => {
                            tracing::debug!("layer {}: not unpacked: {e}", layer.chain_id)
                        }
                        Err(e) => tracing::warn!("layer {}: unpack: {e}", layer.chain_id),
                    }
                }
            });
        if let Err(e) = spawned {
            // Not fatal: each consumer unpacks what it needs.
            tracing::warn!("cannot start the layer unpacker: {e}");
        }
    }

    /// The layers of recorded images whose snapshot is not unpacked (each once).
    pub fn missing_snapshots(&self) -> Result<Vec<LayerRecord>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (_, image) in meta::all::<ImageRecord>(&self.db, IMAGES, "image")? {
            for layer in image.layers {
                if !self.snapshot_dir(&layer.chain_id).is_dir()
                    && seen.insert(layer.chain_id.clone())
                {
                    out.push(layer);
                }
            }
        }
        Ok(out)
    }

    fn unpack_lock(&self, chain: &Digest) -> Arc<Mutex<()>> {
        let mut locks = self.unpacking.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(chain.clone()).or_default())
    }

    /// Drop the lock of `chain` from the table once no one else holds or waits for it.
    fn forget_unpack_lock(&self, chain: &Digest, lock: &Arc<Mutex<()>>) {
        let mut locks = self.unpacking.lock().unwrap_or_else(|e| e.into_inner());
        // The table's reference and ours: no one else has it.
        if Arc::strong_count(lock) == 2 {
            locks.remove(chain);
        }
    }

    /// Unpack `layer`'s blob into a staging directory and move it into place, if the
    /// layer still has its record (a `docker rmi` may have removed it meanwhile).
    fn unpack_snapshot(&self, layer: &LayerRecord) -> Result<()> {
        let staging = self.staging_dir()?;
        let fs_dir = staging.path().join("fs");
        std::fs::create_dir(&fs_dir).map_err(|e| Error::io("create", &fs_dir, e))?;
        let unpacked = crate::unpack::unpack(self.content.open_blob(&layer.blob)?, &fs_dir)?;
        if unpacked.diff_id != layer.diff_id {
            return Err(Error::DigestMismatch {
                what: format!("layer {}", layer.blob),
                expected: layer.diff_id.to_string(),
                actual: unpacked.diff_id.to_string(),
            });
        }
        // Under the store's lock, as a remove decides and frees under it: either the
        // snapshot is in place before the remove (which then frees it) or the record is
        // gone and the unpacked copy is dropped.
        let _guard = self.lock();
        if !self.has_snapshot(&layer.chain_id)? {
            return Err(Error::Conflict(format!(
                "layer {} was removed while it was being unpacked",
                layer.diff_id
            )));
        }
        self.install_snapshot(staging, &layer.chain_id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::config::{rootfs, DockerOCIImage};
    use crate::store::NewLayer;

    /// A store with one image whose one layer has its blob stored and no snapshot yet.
    fn store_with_unmade_layer(dir: &Path) -> (Arc<ImageStore>, ImageRecord) {
        let store = Arc::new(ImageStore::open(&dir.join("store")).expect("open"));
        let upper = dir.join("upper");
        std::fs::create_dir_all(upper.join("d")).expect("mkdir");
        for i in 0..50 {
            std::fs::write(upper.join(format!("d/{i}")), format!("{i}\n")).expect("write");
        }
        let mut ingest = store.content().ingest().expect("ingest");
        let size = crate::layer_from_dir::layer_from_dir(&upper, Vec::new(), &mut ingest)
            .expect("layer tar");
        let diff_id = ingest.digest();
        let blob = ingest.commit(None, "layer").expect("blob");
        let config = DockerOCIImage {
            rootfs: rootfs(vec![diff_id.to_string()]),
            ..DockerOCIImage::default()
        };
        let layer = NewLayer {
            blob,
            media_type: crate::manifest::layer_media_type(crate::unpack::Compression::None)
                .to_string(),
            diff_id: diff_id.clone(),
        };
        let record = store
            .commit(
                &config.to_vec().expect("config"),
                &[layer],
                &HashMap::from([(diff_id, size)]),
                &[],
                None,
            )
            .expect("commit");
        (store, record)
    }

    fn staging_left(store: &ImageStore) -> Vec<String> {
        std::fs::read_dir(&store.snapshots)
            .expect("read snapshots")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("tmp-"))
            .collect()
    }

    #[test]
    fn racing_consumers_get_one_unpacked_snapshot() {
        let d = tempfile::tempdir().expect("tmp");
        let (store, record) = store_with_unmade_layer(d.path());
        let top = store.snapshot_dir(&record.layers[0].chain_id);
        assert!(!top.exists());
        assert_eq!(store.missing_snapshots().expect("missing"), record.layers);
        let all: Vec<Vec<PathBuf>> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| store.lower_dirs(&record.layers)))
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("thread").expect("lower dirs"))
                .collect()
        });
        assert!(
            all.iter().all(|dirs| dirs == std::slice::from_ref(&top)),
            "{all:?}"
        );
        assert_eq!(
            std::fs::read_to_string(top.join("d/7")).expect("read"),
            "7\n"
        );
        assert!(staging_left(&store).is_empty());
        assert!(store.missing_snapshots().expect("missing").is_empty());
        let locks = store.unpacking.lock().expect("locks");
        assert!(
            locks.is_empty(),
            "the per-layer locks are dropped after use"
        );
    }

    #[test]
    fn a_load_of_a_layer_not_yet_unpacked_leaves_it_to_its_first_use() {
        let d = tempfile::tempdir().expect("tmp");
        let (store, record) = store_with_unmade_layer(d.path());
        let mut archive = Vec::new();
        crate::archive::save(&store, &[record.id.to_string()], &mut archive).expect("save");
        crate::archive::load(&store, archive.as_slice(), None, &mut |_| {}).expect("load");
        let top = store.snapshot_dir(&record.layers[0].chain_id);
        assert!(!top.exists(), "the load unpacked the layer again");
        assert!(staging_left(&store).is_empty());
        assert_eq!(
            store.lower_dirs(&record.layers).expect("lower dirs"),
            vec![top.clone()]
        );
        assert_eq!(
            std::fs::read_to_string(top.join("d/7")).expect("read"),
            "7\n"
        );
    }

    #[test]
    fn a_removed_image_leaves_no_snapshot() {
        let d = tempfile::tempdir().expect("tmp");
        let (store, record) = store_with_unmade_layer(d.path());
        store
            .remove(record.id.as_str(), false)
            .expect("remove the image");
        assert!(store.ensure_snapshot(&record.layers[0]).is_err());
        assert!(!store.snapshot_dir(&record.layers[0].chain_id).exists());
        assert!(staging_left(&store).is_empty());
    }
}

//! The image store: images by id, tags, and the layer snapshots they share.
//!
//! On disk, under its root:
//! - `content/`                 blobs by digest (configs, manifests, layer blobs as received)
//! - `snapshots/<chain>/fs`     one unpacked layer each, an overlayfs lower directory
//! - `snapshots/tmp-*`          a layer being unpacked (removed at start if a crash left it)
//!   (a committed layer's snapshot is unpacked after its image is recorded: see `lazy`)
//! - `meta.redb`                images, tags, snapshot refcounts (see `meta`)
//!
//! A layer is unpacked once per ChainID and shared by every image whose chain includes it;
//! the last image to let go of it frees the directory and its blob. Nothing becomes visible
//! before its metadata commits, and [`ImageStore::open`] sweeps what a crash left behind.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableTable};

use crate::config::DockerOCIImage;
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::meta::{self, ImageRecord, LayerRecord, SnapshotRecord, IMAGES, SNAPSHOTS, TAGS};
use crate::reference::{familiar, Reference};

mod lazy;

pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    snapshots: PathBuf,
    db: Database,
    /// Serializes changes to tags and refcounts (redb serializes transactions, but a
    /// remove must decide and act on one view).
    write: Mutex<()>,
    /// One lock per layer being unpacked after its image was recorded (see `lazy`).
    unpacking: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
    /// Held by the background unpacker at work: one background unpack at a time, so that
    /// several commits in a row do not create their layers' inodes all at once.
    background: Mutex<()>,
}

/// An image with the names that point at it.
#[derive(Debug, Clone)]
pub struct Image {
    pub record: ImageRecord,
    /// Fully qualified `repository:tag`, sorted.
    pub tags: Vec<String>,
}

impl Image {
    /// Tags as Docker shows them (`busybox:latest`).
    pub fn familiar_tags(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .map(|r| format!("{}:{}", r.familiar_repository(), r.tag.unwrap_or_default()))
            .collect()
    }

    pub fn familiar_repo_digests(&self) -> Vec<String> {
        self.record
            .repo_digests
            .iter()
            .map(|d| match d.split_once('@') {
                Some((repo, digest)) => format!("{}@{digest}", familiar(repo)),
                None => d.clone(),
            })
            .collect()
    }
}

/// What `remove` did, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Untagged(String),
    Deleted(Digest),
}

/// A layer ready to be added: its blob already in the content store.
#[derive(Debug, Clone)]
pub struct NewLayer {
    pub blob: Digest,
    pub media_type: String,
    /// From the image config; the unpacked tar must hash to it.
    pub diff_id: Digest,
}

pub(crate) fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl ImageStore {
    /// Open the store under `root`, repairing what an interrupted run left.
    pub fn open(root: &Path) -> Result<ImageStore> {
        fs::create_dir_all(root).map_err(|e| Error::io("create", root, e))?;
        // Only root may reach layers: they hold images' setuid binaries and device nodes.
        fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| Error::io("chmod", root, e))?;
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).map_err(|e| Error::io("create", &snapshots, e))?;
        let store = ImageStore {
            root: root.to_path_buf(),
            content: ContentStore::open(&root.join("content"))?,
            db: meta::open(&root.join("meta.redb"))?,
            snapshots,
            write: Mutex::new(()),
            unpacking: Mutex::new(HashMap::new()),
            background: Mutex::new(()),
        };
        store.collect_garbage()?;
        Ok(store)
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A scratch directory on the store's filesystem (an archive being loaded).
    pub fn scratch(&self) -> Result<tempfile::TempDir> {
        let dir = self.root.join("tmp");
        fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        tempfile::tempdir_in(&dir).map_err(|e| Error::io("create scratch in", &dir, e))
    }

    /// The directory holding the unpacked layer of `chain`.
    pub fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.snapshots.join(chain.hex()).join("fs")
    }

    /// A fresh directory to unpack a layer into, inside the snapshot area.
    pub fn staging_dir(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("tmp-")
            .tempdir_in(&self.snapshots)
            .map_err(|e| Error::io("create staging dir in", &self.snapshots, e))
    }

    /// Whether the layer `chain` is in the store: recorded, and unpacked or to be unpacked
    /// from its blob at its first use (a commit's layer, see `store::lazy`). A pull or load
    /// that brings the same layer stores its blob and does not unpack it again.
    pub fn has_snapshot(&self, chain: &Digest) -> Result<bool> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(SNAPSHOTS)?;
        Ok(t.get(chain.as_str())?.is_some())
    }

    /// The chain ids of `layers` (by their diff ids), bottom first.
    pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::new();
        for d in diff_ids {
            out.push(chain_id(out.last(), d));
        }
        out
    }

    /// Move an unpacked staging directory into place as the snapshot of `chain` (a snapshot
    /// someone else finished first wins; ours is dropped).
    pub fn install_snapshot(&self, staging: tempfile::TempDir, chain: &Digest) -> Result<()> {
        let target = self.snapshots.join(chain.hex());
        if target.join("fs").is_dir() {
            return Ok(());
        }
        let staged = staging.keep();
        match fs::rename(&staged, &target) {
            Ok(()) => Ok(()),
            Err(_) if target.join("fs").is_dir() => {
                let _ = fs::remove_dir_all(&staged);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&staged);
                Err(Error::io("install snapshot", target, e))
            }
        }
    }

    /// Undo what a failed add wrote: `blobs` no committed image refers to, and snapshots of
    /// `chains` that have no record.
    pub fn discard(&self, blobs: &[Digest], chains: &[Digest]) -> Result<()> {
        let _guard = self.lock();
        let referenced = self.referenced_blobs()?;
        for b in blobs {
            if !referenced.contains(b) {
                self.content.remove(b)?;
            }
        }
        let txn = self.db.begin_read()?;
        let snaps = txn.open_table(SNAPSHOTS)?;
        for c in chains {
            if snaps.get(c.as_str())?.is_none() {
                let dir = self.snapshots.join(c.hex());
                if dir.exists() {
                    fs::remove_dir_all(&dir).map_err(|e| Error::io("remove snapshot", dir, e))?;
                }
            }
        }
        Ok(())
    }

    /// Keep an unpacked layer (installed as the snapshot of `chain`, its blob stored) that no
    /// image holds yet: a pull that fails later leaves it for its retry instead of throwing
    /// it away. `image prune` removes such layers.
    pub fn keep_layer(
        &self,
        chains: &[Digest],
        index: usize,
        diff_id: &Digest,
        size: u64,
        blob: &Digest,
    ) -> Result<()> {
        let Some(chain) = chains.get(index) else {
            return Ok(());
        };
        let _guard = self.lock();
        let txn = self.db.begin_write()?;
        {
            let mut snaps = txn.open_table(SNAPSHOTS)?;
            if snaps.get(chain.as_str())?.is_none() {
                let rec = SnapshotRecord {
                    parent: index.checked_sub(1).and_then(|p| chains.get(p)).cloned(),
                    diff_id: diff_id.clone(),
                    size,
                    refs: 0,
                    blob: Some(blob.clone()),
                };
                snaps.insert(chain.as_str(), meta::encode(&rec)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Remember that `image` is known to a registry as `repository@digest` (after a push).
    pub fn add_repo_digest(&self, image: &Digest, repo_digest: &str) -> Result<()> {
        let _guard = self.lock();
        let txn = self.db.begin_write()?;
        {
            let mut images = txn.open_table(IMAGES)?;
            let current: Option<ImageRecord> = match images.get(image.as_str())? {
                Some(v) => Some(meta::decode(v.value(), "image")?),
                None => None,
            };
            let Some(mut record) = current else {
                return Err(Error::ImageNotFound(image.to_string()));
            };
            if !record.repo_digests.iter().any(|d| d == repo_digest) {
                record.repo_digests.push(repo_digest.to_string());
                images.insert(image.as_str(), meta::encode(&record)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Drop the layers unfinished pulls kept (see [`ImageStore::keep_layer`]).
    fn drop_kept_layers(&self) -> Result<()> {
        let _guard = self.lock();
        let txn = self.db.begin_write()?;
        let mut kept = Vec::new();
        {
            let mut snaps = txn.open_table(SNAPSHOTS)?;
            for (chain, rec) in meta::all::<SnapshotRecord>(&self.db, SNAPSHOTS, "snapshot")? {
                if rec.refs == 0 {
                    snaps.remove(chain.as_str())?;
                    kept.push((Digest::parse(&chain)?, rec.blob));
                }
            }
        }
        txn.commit()?;
        let referenced = self.referenced_blobs()?;
        for (chain, blob) in kept {
            let dir = self.snapshots.join(chain.hex());
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(|e| Error::io("remove snapshot", dir, e))?;
            }
            if let Some(b) = blob.filter(|b| !referenced.contains(b)) {
                self.content.remove(&b)?;
            }
        }
        Ok(())
    }

    /// Record an image whose blobs and snapshots are all in place, and point `tags` at it
    /// (moving them from other images). One transaction.
    pub fn commit(
        &self,
        config: &[u8],
        layers: &[NewLayer],
        sizes: &HashMap<Digest, u64>,
        tags: &[Reference],
        repo_digest: Option<String>,
    ) -> Result<ImageRecord> {
        let mut written = Vec::new();
        let result = self.commit_inner(config, layers, sizes, tags, repo_digest, &mut written);
        let mut blobs = written;
        blobs.extend(layers.iter().map(|l| l.blob.clone()));
        match result {
            Err(e) => {
                let chains =
                    Self::chain_ids(&layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>());
                let _ = self.discard(&blobs, &chains);
                Err(e)
            }
            // The image was there already and keeps its record: what this add wrote or
            // brought that the record does not use (its manifest, a layer compressed
            // otherwise) would belong to no image.
            Ok((record, true)) => {
                let _ = self.discard(&blobs, &[]);
                Ok(record)
            }
            Ok((record, false)) => Ok(record),
        }
    }

    fn commit_inner(
        &self,
        config: &[u8],
        layers: &[NewLayer],
        sizes: &HashMap<Digest, u64>,
        tags: &[Reference],
        repo_digest: Option<String>,
        written: &mut Vec<Digest>,
    ) -> Result<(ImageRecord, bool)> {
        let id = self.content.write_bytes(config, "image config")?;
        written.push(id.clone());
        let chains = Self::chain_ids(&layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>());
        let mut records = Vec::new();
        for (l, chain) in layers.iter().zip(&chains) {
            records.push(LayerRecord {
                diff_id: l.diff_id.clone(),
                blob: l.blob.clone(),
                media_type: l.media_type.clone(),
                blob_size: self.content.size(&l.blob)?,
                chain_id: chain.clone(),
            });
        }
        let manifest = crate::manifest::oci_manifest(&id, config.len() as u64, &records)?;
        let manifest_digest = self.content.write_bytes(&manifest, "image manifest")?;
        written.push(manifest_digest.clone());
        let _guard = self.lock();
        // A remove running alongside may have freed a layer this image shares: fail
        // clearly rather than record an image without its files. A layer's blob is
        // enough: a snapshot not (or no longer) there is unpacked from it at first use.
        for l in layers {
            if !self.content.contains(&l.blob) {
                return Err(Error::Conflict(format!(
                    "layer {} was removed while the image was being added; try again",
                    l.diff_id
                )));
            }
        }
        let txn = self.db.begin_write()?;
        let record = {
            let mut images = txn.open_table(IMAGES)?;
            let mut snaps = txn.open_table(SNAPSHOTS)?;
            let mut tag_table = txn.open_table(TAGS)?;
            let existing: Option<ImageRecord> = match images.get(id.as_str())? {
                Some(v) => Some(meta::decode(v.value(), "image")?),
                None => None,
            };
            let existed = existing.is_some();
            let mut record = match existing {
                Some(r) => r,
                None => {
                    for (i, (l, chain)) in records.iter().zip(&chains).enumerate() {
                        let rec = match snaps.get(chain.as_str())? {
                            Some(v) => {
                                let mut r: SnapshotRecord = meta::decode(v.value(), "snapshot")?;
                                r.refs += 1;
                                r
                            }
                            None => SnapshotRecord {
                                parent: i.checked_sub(1).map(|p| chains[p].clone()),
                                diff_id: l.diff_id.clone(),
                                size: sizes.get(chain).copied().unwrap_or(0),
                                refs: 1,
                                blob: None,
                            },
                        };
                        snaps.insert(chain.as_str(), meta::encode(&rec)?.as_slice())?;
                    }
                    let mut size = 0;
                    for chain in &chains {
                        if let Some(v) = snaps.get(chain.as_str())? {
                            size += meta::decode::<SnapshotRecord>(v.value(), "snapshot")?.size;
                        }
                    }
                    ImageRecord {
                        id: id.clone(),
                        manifest: manifest_digest.clone(),
                        layers: records,
                        size,
                        repo_digests: Vec::new(),
                        last_tag_time: None,
                    }
                }
            };
            if let Some(d) = repo_digest {
                if !record.repo_digests.contains(&d) {
                    record.repo_digests.push(d);
                }
            }
            for tag in tags {
                if let Some(key) = tag.tagged() {
                    tag_table.insert(key.as_str(), id.as_str())?;
                    record.last_tag_time = Some(now());
                }
            }
            images.insert(id.as_str(), meta::encode(&record)?.as_slice())?;
            (record, existed)
        };
        txn.commit()?;
        Ok(record)
    }

    /// Every image with its tags.
    pub fn list(&self) -> Result<Vec<Image>> {
        let mut tags: HashMap<String, Vec<String>> = HashMap::new();
        for (tag, id) in meta::all_tags(&self.db)? {
            tags.entry(id).or_default().push(tag);
        }
        let mut out: Vec<Image> = meta::all::<ImageRecord>(&self.db, IMAGES, "image")?
            .into_iter()
            .map(|(id, record)| {
                let mut t = tags.remove(&id).unwrap_or_default();
                t.sort();
                Image { record, tags: t }
            })
            .collect();
        out.sort_by(|a, b| a.record.id.cmp(&b.record.id));
        Ok(out)
    }

    fn get(&self, id: &str) -> Result<Option<ImageRecord>> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(IMAGES)?;
        match t.get(id)? {
            Some(v) => Ok(Some(meta::decode(v.value(), "image")?)),
            None => Ok(None),
        }
    }

    fn with_tags(&self, record: ImageRecord) -> Result<Image> {
        let id = record.id.to_string();
        let mut tags: Vec<String> = meta::all_tags(&self.db)?
            .into_iter()
            .filter(|(_, i)| *i == id)
            .map(|(t, _)| t)
            .collect();
        tags.sort();
        Ok(Image { record, tags })
    }

    /// Find an image as Docker does: a reference (tag or digest), a full id, or an id prefix.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let not_found = || Error::ImageNotFound(name.to_string());
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        let is_hex = !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex && hex.len() == 64 {
            return self
                .get(&format!("sha256:{hex}"))?
                .map_or_else(|| Err(not_found()), |r| self.with_tags(r));
        }
        if let Ok(reference) = Reference::parse(name) {
            let reference = reference.with_default_tag();
            if let Some(key) = reference.tagged() {
                let txn = self.db.begin_read()?;
                let t = txn.open_table(TAGS)?;
                if let Some(id) = t.get(key.as_str())? {
                    let id = id.value().to_string();
                    if let Some(r) = self.get(&id)? {
                        return self.with_tags(r);
                    }
                }
            } else if let Some(d) = &reference.digest {
                let wanted = reference.digested();
                for image in self.list()? {
                    if image.record.manifest == *d
                        || wanted
                            .as_ref()
                            .is_some_and(|w| image.record.repo_digests.contains(w))
                    {
                        return Ok(image);
                    }
                }
            }
        }
        if is_hex {
            let matches: Vec<Image> = self
                .list()?
                .into_iter()
                .filter(|i| i.record.id.hex().starts_with(hex))
                .collect();
            return match matches.len() {
                1 => Ok(matches.into_iter().next().ok_or_else(not_found)?),
                0 => Err(not_found()),
                _ => Err(Error::Conflict(format!(
                    "image id prefix {name:?} is ambiguous"
                ))),
            };
        }
        Err(not_found())
    }

    /// The image's config.
    pub fn config(&self, image: &ImageRecord) -> Result<DockerOCIImage> {
        let bytes = self.content.read(&image.id)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Meta(format!("config of {}: {e}", image.id)))
    }

    /// Point `target` at the image `source` names.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let image = self.resolve(source)?;
        let key =
            target
                .clone()
                .with_default_tag()
                .tagged()
                .ok_or_else(|| Error::InvalidReference {
                    reference: target.to_string(),
                    why: "a tag cannot carry a digest",
                })?;
        let _guard = self.lock();
        let txn = self.db.begin_write()?;
        {
            let mut tags = txn.open_table(TAGS)?;
            tags.insert(key.as_str(), image.record.id.as_str())?;
            let mut images = txn.open_table(IMAGES)?;
            let mut record = image.record.clone();
            record.last_tag_time = Some(now());
            images.insert(record.id.as_str(), meta::encode(&record)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// `docker rmi`: untag the reference given, and delete the image once nothing names it.
    /// An id naming an image with several repositories needs `force`.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Removal>> {
        self.remove_keeping(name, force, false)
    }

    /// As [`ImageStore::remove`]; with `keep`, names are removed but the image itself stays
    /// (a container still uses it).
    pub fn remove_keeping(&self, name: &str, force: bool, keep: bool) -> Result<Vec<Removal>> {
        let image = self.resolve(name)?;
        let by_reference = Reference::parse(name)
            .ok()
            .map(Reference::with_default_tag)
            .and_then(|r| r.tagged())
            .filter(|t| image.tags.contains(t));
        let _guard = self.lock();
        let txn = self.db.begin_write()?;
        let mut out = Vec::new();
        let mut freed = Vec::new();
        {
            let mut tags = txn.open_table(TAGS)?;
            let untag: Vec<String> = match &by_reference {
                Some(t) => vec![t.clone()],
                None => {
                    let repos: HashSet<&str> = image
                        .tags
                        .iter()
                        .filter_map(|t| t.rsplit_once(':').map(|(r, _)| r))
                        .collect();
                    if repos.len() > 1 && !force {
                        return Err(Error::Conflict(format!(
                            "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            image.record.id.short()
                        )));
                    }
                    image.tags.clone()
                }
            };
            for t in &untag {
                tags.remove(t.as_str())?;
                let shown = Reference::parse(t)
                    .map(|r| format!("{}:{}", r.familiar_repository(), r.tag.unwrap_or_default()))
                    .unwrap_or_else(|_| t.clone());
                out.push(Removal::Untagged(shown));
            }
            let remaining = image.tags.len() - untag.len();
            if remaining == 0 && !keep {
                for d in &image.record.repo_digests {
                    out.push(Removal::Untagged(d.clone()));
                }
                freed = self.delete_in(&txn, &image.record)?;
                out.push(Removal::Deleted(image.record.id.clone()));
            }
        }
        txn.commit()?;
        if out.iter().any(|r| matches!(r, Removal::Deleted(_))) {
            self.free(&image.record, &freed)?;
        }
        Ok(out)
    }

    /// After a delete committed: remove the snapshots no image holds any more, and the
    /// image's blobs that no other image refers to.
    fn free(&self, record: &ImageRecord, chains: &[Digest]) -> Result<()> {
        for chain in chains {
            let dir = self.snapshots.join(chain.hex());
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove snapshot", dir, e)),
            }
        }
        let referenced = self.referenced_blobs()?;
        let mine = [record.id.clone(), record.manifest.clone()]
            .into_iter()
            .chain(record.layers.iter().map(|l| l.blob.clone()));
        for blob in mine {
            if !referenced.contains(&blob) {
                self.content.remove(&blob)?;
            }
        }
        Ok(())
    }

    /// Drop the image record and one reference to each snapshot of its chain; returns the
    /// chains nothing holds any more.
    fn delete_in(&self, txn: &redb::WriteTransaction, record: &ImageRecord) -> Result<Vec<Digest>> {
        let mut freed = Vec::new();
        let mut images = txn.open_table(IMAGES)?;
        images.remove(record.id.as_str())?;
        let mut snaps = txn.open_table(SNAPSHOTS)?;
        for layer in &record.layers {
            let key = layer.chain_id.as_str();
            let current: Option<SnapshotRecord> = match snaps.get(key)? {
                Some(v) => Some(meta::decode(v.value(), "snapshot")?),
                None => None,
            };
            if let Some(mut s) = current {
                s.refs = s.refs.saturating_sub(1);
                if s.refs == 0 {
                    snaps.remove(key)?;
                    freed.push(layer.chain_id.clone());
                } else {
                    snaps.insert(key, meta::encode(&s)?.as_slice())?;
                }
            }
        }
        Ok(freed)
    }

    /// Remove dangling images (or, with `all`, every image without a container: the caller
    /// passes the ids in use). Returns what was removed and the bytes freed.
    pub fn prune(&self, all: bool, in_use: &HashSet<Digest>) -> Result<(Vec<Removal>, u64)> {
        let before = self.disk_usage()?;
        let mut out = Vec::new();
        for image in self.list()? {
            if in_use.contains(&image.record.id) || (!all && !image.tags.is_empty()) {
                continue;
            }
            out.extend(self.remove(image.record.id.as_str(), true)?);
        }
        self.drop_kept_layers()?;
        Ok((out, before.saturating_sub(self.disk_usage()?)))
    }

    /// Each snapshot's bytes, by chain id (for the shared sizes `system df` shows).
    pub fn snapshot_sizes(&self) -> Result<HashMap<String, u64>> {
        Ok(
            meta::all::<SnapshotRecord>(&self.db, SNAPSHOTS, "snapshot")?
                .into_iter()
                .map(|(chain, s)| (chain, s.size))
                .collect(),
        )
    }

    /// Bytes held by snapshots.
    pub fn disk_usage(&self) -> Result<u64> {
        Ok(
            meta::all::<SnapshotRecord>(&self.db, SNAPSHOTS, "snapshot")?
                .iter()
                .map(|(_, s)| s.size)
                .sum(),
        )
    }

    /// Remove snapshot directories without a record and blobs no image refers to. Only at
    /// open: later, a load in progress has blobs and snapshots not committed yet.
    fn sweep_unreferenced(&self) -> Result<()> {
        let known: HashSet<String> = meta::all::<SnapshotRecord>(&self.db, SNAPSHOTS, "snapshot")?
            .into_iter()
            .map(|(k, _)| k.trim_start_matches("sha256:").to_string())
            .collect();
        let entries =
            fs::read_dir(&self.snapshots).map_err(|e| Error::io("read", &self.snapshots, e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("tmp-") || known.contains(&name) {
                continue;
            }
            fs::remove_dir_all(e.path())
                .map_err(|err| Error::io("remove snapshot", e.path(), err))?;
        }
        let referenced = self.referenced_blobs()?;
        for d in self.content.list()? {
            if !referenced.contains(&d) {
                self.content.remove(&d)?;
            }
        }
        Ok(())
    }

    fn referenced_blobs(&self) -> Result<HashSet<Digest>> {
        let mut out: HashSet<Digest> =
            meta::all::<SnapshotRecord>(&self.db, SNAPSHOTS, "snapshot")?
                .into_iter()
                .filter_map(|(_, s)| s.blob)
                .collect();
        for (_, r) in meta::all::<ImageRecord>(&self.db, IMAGES, "image")? {
            out.insert(r.id.clone());
            out.insert(r.manifest.clone());
            out.extend(r.layers.iter().map(|l| l.blob.clone()));
        }
        Ok(out)
    }

    /// Repair after a crash: half-unpacked layers, interrupted blob writes, snapshots and
    /// blobs that no committed image refers to.
    pub fn collect_garbage(&self) -> Result<()> {
        let _guard = self.lock();
        self.content.clean_ingest()?;
        let tmp = self.root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
        }
        let entries =
            fs::read_dir(&self.snapshots).map_err(|e| Error::io("read", &self.snapshots, e))?;
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("tmp-") {
                fs::remove_dir_all(e.path()).map_err(|err| Error::io("remove", e.path(), err))?;
            }
        }
        self.sweep_unreferenced()
    }

    /// Layer history paired with layers, newest first, as `docker history` shows it.
    pub fn history(&self, image: &Image) -> Result<Vec<HistoryEntry>> {
        let config = self.config(&image.record)?;
        let mut layer_sizes = Vec::new();
        {
            let txn = self.db.begin_read()?;
            let snaps = txn.open_table(SNAPSHOTS)?;
            for l in &image.record.layers {
                let size = match snaps.get(l.chain_id.as_str())? {
                    Some(v) => meta::decode::<SnapshotRecord>(v.value(), "snapshot")?.size,
                    None => 0,
                };
                layer_sizes.push(size);
            }
        }
        let mut entries = Vec::new();
        let history = config.history_entries();
        let mut sizes = layer_sizes.into_iter();
        if history.is_empty() {
            for size in sizes {
                entries.push(HistoryEntry {
                    created: config.created.clone(),
                    created_by: String::new(),
                    comment: String::new(),
                    size,
                    ..HistoryEntry::default()
                });
            }
        } else {
            for h in history {
                let empty = h.empty_layer().unwrap_or(false);
                entries.push(HistoryEntry {
                    created: h.created().clone(),
                    created_by: h.created_by().clone().unwrap_or_default(),
                    comment: h.comment().clone().unwrap_or_default(),
                    size: if empty { 0 } else { sizes.next().unwrap_or(0) },
                    ..HistoryEntry::default()
                });
            }
        }
        entries.reverse();
        if let Some(top) = entries.first_mut() {
            top.id = Some(image.record.id.clone());
            top.tags = image.familiar_tags();
        }
        Ok(entries)
    }

    /// Labels and creation time of an image (for list filters and summaries).
    pub fn summary_fields(
        &self,
        image: &ImageRecord,
    ) -> Result<(Option<String>, BTreeMap<String, String>)> {
        let config = self.config(image)?;
        Ok((config.created.clone(), config.labels()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Only the top entry has an id (Docker prints `<missing>` for the rest).
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    pub comment: String,
    pub size: u64,
    pub tags: Vec<String>,
}

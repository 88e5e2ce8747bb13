//! Pull: resolve a reference to an image manifest (choosing the platform from an index),
//! fetch its config, then its layers several at a time, each streamed from the network
//! through the digest check into the content store and, in the same pass, decompressed
//! and unpacked into its snapshot. Present layers are skipped; finished layers are kept
//! for a retry if the pull fails later; the image is recorded in one commit at the end.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use berth_image::store::NewLayer;
use berth_image::{Digest, DockerOCIImage, ImageStore, Reference};
use bytes::{Buf, Bytes};
use reqwest::Method;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::blob;
use crate::client::{check, Access, Repository};
use crate::error::{Error, Result};
use crate::manifest::{self, ImageManifest, Kind, Platform};
use crate::mirrors::Need;
use crate::progress::{byte_reporter, LayerState, Progress, Sink};
use crate::transfer::Transfer;

/// Docker's default max-concurrent-downloads.
const PARALLEL_DOWNLOADS: usize = 3;
/// An image config larger than this is refused unread.
const MAX_CONFIG: u64 = 16 << 20;
/// Chunks in flight between a download and its unpacker.
const CHUNKS_IN_FLIGHT: usize = 32;

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: Digest,
    /// The digest the reference resolved to (the index's, for a multi-platform image).
    pub digest: Digest,
    /// The tag already named this image: nothing changed.
    pub up_to_date: bool,
}

pub(crate) fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

impl Transfer {
    /// Pull `reference` (a tag or a digest); from an index, the image for `platform`.
    pub async fn pull(&self, reference: &Reference, platform: &Platform) -> Result<Pulled> {
        let what = reference.to_string();
        let wanted = match (&reference.digest, &reference.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => berth_image::reference::DEFAULT_TAG.to_string(),
        };
        let (repo, top) = self.resolve(reference, &wanted, &what).await?;
        (self.progress)(Progress::Pulling {
            repository: reference.path().to_string(),
            tag: wanted.clone(),
        });
        let image = match top.kind {
            Kind::Image(m) => *m,
            Kind::Index(index) => {
                let entry = manifest::choose(&index, platform, &what)?;
                match manifest::fetch(&repo, entry.digest().as_ref(), &what)
                    .await?
                    .kind
                {
                    Kind::Image(m) => *m,
                    Kind::Index(_) => {
                        return Err(Error::InvalidManifest {
                            what: format!("manifest for {what}"),
                            why: "an index inside an index".into(),
                        })
                    }
                }
            }
        };
        let config_digest = Digest::from_oci(image.config().digest())?;
        let config = match self.store.content().read(&config_digest) {
            Ok(stored) => stored,
            Err(_) => fetch_config(&repo, &config_digest, image.config().size()).await?,
        };
        let diff_ids = diff_ids(&config, &image, &what)?;
        let before = self.store.resolve(&what).ok().map(|i| i.record.id);
        let (layers, sizes) = self.pull_layers(&repo, &image, &diff_ids).await?;
        let store = self.store.clone();
        let tags: Vec<Reference> = reference.tag.iter().map(|_| reference.clone()).collect();
        let repo_digest = format!("{}@{}", reference.repository, top.digest);
        let record = tokio::task::spawn_blocking(move || {
            store.commit(&config, &layers, &sizes, &tags, Some(repo_digest))
        })
        .await
        .map_err(|e| Error::InvalidArgument(format!("the pull's commit failed: {e}")))??;
        Ok(Pulled {
            up_to_date: before.as_ref() == Some(&record.id),
            id: record.id,
            digest: top.digest,
        })
    }

    /// The top manifest of `reference` (`wanted` is its tag or digest), from the first of
    /// the registry's endpoints (mirrors, then its server) that has it, and a session on
    /// that endpoint for the rest of the pull. A tag is only resolved by hosts trusted to
    /// (`resolve`); a digest checks itself, so any host that may `pull` serves it.
    async fn resolve(
        &self,
        reference: &Reference,
        wanted: &str,
        what: &str,
    ) -> Result<(Arc<Repository>, manifest::Fetched)> {
        let need = if reference.digest.is_some() {
            Need::Pull
        } else {
            Need::Resolve
        };
        let domain = reference.domain();
        let endpoints = self.client.endpoints(domain, need);
        let mut last = None;
        for endpoint in &endpoints {
            let attempt = async {
                let repo = self
                    .client
                    .open(
                        endpoint,
                        reference.path(),
                        self.credentials.clone(),
                        Access::Pull,
                    )
                    .await?;
                let top = manifest::fetch(&repo, wanted, what).await?;
                Ok::<_, Error>((Arc::new(repo), top))
            };
            match attempt.await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    if endpoints.len() > 1 {
                        tracing::warn!(image = what, endpoint = %endpoint.origin(), "{e}; trying the next host");
                    }
                    // A host that answered says more than one that could not be reached
                    // (an offline upstream after a mirror without the image).
                    let unreachable = matches!(e, Error::Http { .. });
                    if !(unreachable && last.is_some()) {
                        last = Some(e);
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::InvalidArgument(format!(
                "{what}: no host configured for {domain} may pull it (see its hosts.toml)"
            ))
        }))
    }

    /// Every layer in place: present ones skipped, the rest fetched (and unpacked) at most
    /// [`PARALLEL_DOWNLOADS`] at a time. Returns the layers and the sizes of new snapshots.
    async fn pull_layers(
        &self,
        repo: &Arc<Repository>,
        image: &ImageManifest,
        diff_ids: &[Digest],
    ) -> Result<(Vec<NewLayer>, HashMap<Digest, u64>)> {
        let chains = Arc::new(ImageStore::chain_ids(diff_ids));
        let limit = Arc::new(Semaphore::new(PARALLEL_DOWNLOADS));
        let mut tasks = JoinSet::new();
        for (index, (desc, diff_id)) in image.layers().iter().zip(diff_ids).enumerate() {
            let job = LayerJob {
                index,
                digest: Digest::from_oci(desc.digest())?,
                size: desc.size(),
                diff_id: diff_id.clone(),
                chains: chains.clone(),
                media_type: manifest::layer_media_type(desc.media_type().as_ref())
                    .unwrap_or_default(),
            };
            let (repo, store, sink, limit) = (
                repo.clone(),
                self.store.clone(),
                self.progress.clone(),
                limit.clone(),
            );
            tasks.spawn(async move {
                let result = job.run(&repo, &store, &sink, &limit).await;
                (index, result)
            });
        }
        let mut done: Vec<Option<(NewLayer, Option<u64>)>> = vec![None; image.layers().len()];
        while let Some(joined) = tasks.join_next().await {
            let (index, result) = joined
                .map_err(|e| Error::InvalidArgument(format!("a layer download failed: {e}")))?;
            // Dropping the set on an error stops the other downloads.
            done[index] = Some(result?);
        }
        let mut layers = Vec::new();
        let mut sizes = HashMap::new();
        for (entry, chain) in done.into_iter().zip(chains.iter()) {
            let (layer, size) =
                entry.ok_or_else(|| Error::InvalidArgument("a layer download vanished".into()))?;
            if let Some(s) = size {
                sizes.insert(chain.clone(), s);
            }
            layers.push(layer);
        }
        Ok((layers, sizes))
    }
}

/// GET the image config (small, so in memory) and check its digest.
async fn fetch_config(repo: &Repository, digest: &Digest, size: u64) -> Result<Vec<u8>> {
    let what = format!("config {digest} of {}", repo.name());
    if size > MAX_CONFIG {
        return Err(Error::InvalidManifest {
            what,
            why: format!("the config is {size} bytes, more than allowed"),
        });
    }
    let url = repo.url(&format!("blobs/{digest}"));
    let resp = check(repo.send(&url, |r| r, Method::GET).await?, &what).await?;
    let bytes = resp.bytes().await.map_err(|e| Error::http(&url, &e))?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(Error::DigestMismatch {
            what,
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes.to_vec())
}

fn diff_ids(config: &[u8], image: &ImageManifest, what: &str) -> Result<Vec<Digest>> {
    let invalid = |why: String| Error::InvalidManifest {
        what: format!("image config of {what}"),
        why,
    };
    let config: DockerOCIImage =
        serde_json::from_slice(config).map_err(|e| invalid(format!("not an image config: {e}")))?;
    let ids = config
        .rootfs
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() != image.layers().len() {
        return Err(invalid(format!(
            "it lists {} layers, the manifest {}",
            ids.len(),
            image.layers().len()
        )));
    }
    Ok(ids)
}

/// One layer of a pull.
struct LayerJob {
    index: usize,
    /// The layer blob's digest and size (its descriptor's).
    digest: Digest,
    size: u64,
    diff_id: Digest,
    chains: Arc<Vec<Digest>>,
    media_type: &'static str,
}

impl LayerJob {
    fn chain(&self) -> &Digest {
        &self.chains[self.index]
    }

    fn new_layer(&self) -> NewLayer {
        NewLayer {
            blob: self.digest.clone(),
            media_type: self.media_type.to_string(),
            diff_id: self.diff_id.clone(),
        }
    }

    fn what(&self) -> String {
        format!("layer {}", self.digest)
    }

    async fn run(
        self,
        repo: &Repository,
        store: &Arc<ImageStore>,
        sink: &Sink,
        limit: &Semaphore,
    ) -> Result<(NewLayer, Option<u64>)> {
        let id = short(&self.digest);
        let report = |state| {
            sink(Progress::Layer {
                id: id.clone(),
                state,
            })
        };
        let has_snapshot = store.has_snapshot(self.chain())?;
        let has_blob = store.content().contains(&self.digest);
        if has_snapshot && has_blob {
            report(LayerState::AlreadyExists);
            return Ok((self.new_layer(), None));
        }
        report(LayerState::Waiting);
        let _permit = limit
            .acquire()
            .await
            .map_err(|_| Error::InvalidArgument("the pull was stopped".into()))?;
        let job = Arc::new(self);
        let size = if has_blob {
            let (store, job) = (store.clone(), job.clone());
            blocking(move || job.unpack_stored(&store)).await?
        } else {
            let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
            let receiver = {
                let (store, job) = (store.clone(), job.clone());
                tokio::task::spawn_blocking(move || {
                    job.receive(&store, ChunkReader::new(rx), !has_snapshot)
                })
            };
            let mut on_bytes =
                byte_reporter(sink.clone(), id.clone(), job.size, |current, total| {
                    LayerState::Downloading { current, total }
                });
            let downloaded = blob::download(repo, &job.digest, job.size, &tx, &mut on_bytes).await;
            drop(tx);
            let received = receiver
                .await
                .map_err(|e| Error::InvalidArgument(format!("a layer unpack failed: {e}")))?;
            downloaded?;
            report(LayerState::DownloadComplete);
            received?
        };
        report(LayerState::PullComplete);
        Ok((job.new_layer(), size))
    }

    /// Store the streamed blob, unpacking it on the way when `unpack`; returns the
    /// snapshot's size when one was made.
    fn receive(
        &self,
        store: &ImageStore,
        chunks: ChunkReader,
        unpack: bool,
    ) -> Result<Option<u64>> {
        let mut tee = Tee {
            chunks,
            ingest: store.content().ingest()?,
        };
        let unpacked = if unpack {
            let staging = store.staging_dir()?;
            let fs_dir = staging.path().join("fs");
            std::fs::create_dir(&fs_dir)
                .map_err(|e| berth_image::Error::io("create", &fs_dir, e))?;
            let result = berth_image::unpack::unpack(&mut tee, &fs_dir);
            let drained = io::copy(&mut tee, &mut io::sink());
            match result {
                // A broken blob explains a broken tar better than the tar error does.
                Err(e) => {
                    drained.map_err(|e| berth_image::Error::io("download", self.what(), e))?;
                    self.verify(&tee.ingest.digest())?;
                    return Err(e.into());
                }
                Ok(u) => Some((staging, u)),
            }
        } else {
            None
        };
        if unpacked.is_none() {
            io::copy(&mut tee, &mut io::sink())
                .map_err(|e| berth_image::Error::io("download", self.what(), e))?;
        }
        self.verify(&tee.ingest.digest())?;
        let blob = tee.ingest.commit(Some(&self.digest), &self.what())?;
        let Some((staging, unpacked)) = unpacked else {
            return Ok(None);
        };
        self.check_diff_id(&unpacked.diff_id)?;
        store.install_snapshot(staging, self.chain())?;
        store.keep_layer(
            &self.chains,
            self.index,
            &self.diff_id,
            unpacked.size,
            &blob,
        )?;
        Ok(Some(unpacked.size))
    }

    /// Unpack a blob the store already has (its snapshot is missing).
    fn unpack_stored(&self, store: &ImageStore) -> Result<Option<u64>> {
        let staging = store.staging_dir()?;
        let fs_dir = staging.path().join("fs");
        std::fs::create_dir(&fs_dir).map_err(|e| berth_image::Error::io("create", &fs_dir, e))?;
        let reader = store.content().open_blob(&self.digest)?;
        let unpacked = berth_image::unpack::unpack(reader, &fs_dir)?;
        self.check_diff_id(&unpacked.diff_id)?;
        store.install_snapshot(staging, self.chain())?;
        let blob = &self.digest;
        store.keep_layer(&self.chains, self.index, &self.diff_id, unpacked.size, blob)?;
        Ok(Some(unpacked.size))
    }

    fn verify(&self, actual: &Digest) -> Result<()> {
        if *actual != self.digest {
            return Err(Error::DigestMismatch {
                what: self.what(),
                expected: self.digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    fn check_diff_id(&self, actual: &Digest) -> Result<()> {
        if *actual != self.diff_id {
            return Err(Error::DigestMismatch {
                what: format!("{} (DiffID in the image config)", self.what()),
                expected: self.diff_id.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::InvalidArgument(format!("a layer task failed: {e}")))?
}

/// The download's chunks as a `Read`, for the unpacker's thread.
struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChunkReader {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> ChunkReader {
        ChunkReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Every byte read is also written to the blob being ingested: one pass over the data.
struct Tee {
    chunks: ChunkReader,
    ingest: berth_image::content::Ingest,
}

impl Read for Tee {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.chunks.read(out)?;
        self.ingest.write_all(&out[..n])?;
        Ok(n)
    }
}

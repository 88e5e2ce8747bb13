//! Push: every layer and the config (skipped when the registry has them, mounted from
//! another repository of the same registry when the image came from one), then the
//! manifest berth recorded for the image, under the tag.

use std::sync::Arc;

use berth_image::manifest::OCI_MANIFEST;
use berth_image::{Digest, Image, ImageStore, Reference};
use reqwest::{header, Method};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::blob::{self, Started};
use crate::client::{check, Access, Repository};
use crate::error::{Error, Result};
use crate::progress::{byte_reporter, LayerState, Progress, Sink};
use crate::pull::short;
use crate::transfer::Transfer;

/// Docker's default max-concurrent-uploads.
const PARALLEL_UPLOADS: usize = 5;

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    pub digest: Digest,
    pub size: usize,
}

/// A blob to send, and where it might be mounted from.
#[derive(Clone)]
struct BlobJob {
    digest: Digest,
    size: u64,
    mount_from: Option<String>,
    /// Config blobs are sent without progress lines.
    reported: bool,
}

impl Transfer {
    /// Push the image `reference` (which must carry a tag) names.
    pub async fn push(&self, reference: &Reference) -> Result<Pushed> {
        let tag = reference
            .tag
            .clone()
            .ok_or_else(|| Error::InvalidArgument(format!("{reference}: a push needs a tag")))?;
        let image = self.store.resolve(&reference.to_string())?;
        let mount_from = mount_sources(&image, reference);
        let repo = Arc::new(
            self.client
                .repository(
                    reference.domain(),
                    reference.path(),
                    self.credentials.clone(),
                    Access::Push {
                        mount_from: mount_from.clone(),
                    },
                )
                .await?,
        );
        (self.progress)(Progress::Pushing {
            repository: repo.name(),
        });
        let from = mount_from.first().cloned();
        let mut jobs: Vec<BlobJob> = image
            .record
            .layers
            .iter()
            .map(|l| BlobJob {
                digest: l.blob.clone(),
                size: l.blob_size,
                mount_from: from.clone(),
                reported: true,
            })
            .collect();
        jobs.push(BlobJob {
            digest: image.record.id.clone(),
            size: self.store.content().size(&image.record.id)?,
            mount_from: from,
            reported: false,
        });
        self.push_blobs(&repo, jobs).await?;
        let manifest = self.store.content().read(&image.record.manifest)?;
        let digest = put_manifest(&repo, &tag, manifest.clone()).await?;
        let repo_digest = format!("{}@{digest}", reference.repository);
        self.store.add_repo_digest(&image.record.id, &repo_digest)?;
        Ok(Pushed {
            tag,
            digest,
            size: manifest.len(),
        })
    }

    async fn push_blobs(&self, repo: &Arc<Repository>, jobs: Vec<BlobJob>) -> Result<()> {
        let limit = Arc::new(Semaphore::new(PARALLEL_UPLOADS));
        let mut tasks = JoinSet::new();
        for job in jobs {
            if job.reported {
                (self.progress)(Progress::Layer {
                    id: short(&job.digest),
                    state: LayerState::Preparing,
                });
            }
            let (repo, store, sink, limit) = (
                repo.clone(),
                self.store.clone(),
                self.progress.clone(),
                limit.clone(),
            );
            tasks.spawn(async move {
                let _permit = limit.acquire().await;
                send_blob(&repo, &store, &sink, job).await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|e| Error::InvalidArgument(format!("an upload failed: {e}")))??;
        }
        Ok(())
    }
}

/// Repositories of the same registry the image was pulled from or pushed to.
fn mount_sources(image: &Image, target: &Reference) -> Vec<String> {
    let mut out: Vec<String> = image
        .record
        .repo_digests
        .iter()
        .filter_map(|d| d.split_once('@'))
        .filter_map(|(repo, _)| Reference::parse(repo).ok())
        .filter(|r| r.domain() == target.domain() && r.path() != target.path())
        .map(|r| r.path().to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

async fn send_blob(repo: &Repository, store: &ImageStore, sink: &Sink, job: BlobJob) -> Result<()> {
    let id = short(&job.digest);
    let report = |state| {
        if job.reported {
            sink(Progress::Layer {
                id: id.clone(),
                state,
            });
        }
    };
    if blob::exists(repo, &job.digest).await? {
        report(LayerState::Exists);
        return Ok(());
    }
    let at = match blob::start_upload(repo, &job.digest, job.mount_from.as_deref()).await? {
        Started::Mounted => {
            report(LayerState::MountedFrom(job.mount_from.unwrap_or_default()));
            return Ok(());
        }
        Started::Upload(at) => at,
    };
    let path = store.content().path(&job.digest);
    let mut on_bytes: Box<dyn FnMut(u64) + Send> = if job.reported {
        Box::new(byte_reporter(
            sink.clone(),
            id.clone(),
            job.size,
            |current, total| LayerState::Uploading { current, total },
        ))
    } else {
        Box::new(|_| {})
    };
    blob::upload(repo, at, &job.digest, &path, job.size, &mut on_bytes).await?;
    report(LayerState::Pushed);
    Ok(())
}

/// PUT the manifest under `tag`; returns its digest (checked against the registry's).
async fn put_manifest(repo: &Repository, tag: &str, manifest: Vec<u8>) -> Result<Digest> {
    let digest = Digest::of(&manifest);
    let url = repo.url(&format!("manifests/{tag}"));
    let body = bytes::Bytes::from(manifest);
    let resp = repo
        .send(
            &url,
            |r| {
                r.header(header::CONTENT_TYPE, OCI_MANIFEST)
                    .body(body.clone())
            },
            Method::PUT,
        )
        .await?;
    let resp = check(resp, &format!("manifest {tag} of {}", repo.name())).await?;
    let announced = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if let Some(a) = announced.filter(|a| *a != digest.as_str()) {
        return Err(Error::DigestMismatch {
            what: format!("manifest {tag} pushed to {}", repo.name()),
            expected: digest.to_string(),
            actual: a,
        });
    }
    Ok(digest)
}

//! Blobs over the distribution API: download (redirects followed, resumed with Range after
//! a broken connection), existence checks, cross-repository mounts and uploads (one PUT
//! when small, PATCH chunks then PUT when large).

use std::io;
use std::path::Path;
use std::time::Duration;

use berth_image::Digest;
use bytes::Bytes;
use reqwest::{header, Method, StatusCode, Url};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::client::{check, Repository};
use crate::error::{Error, Result};

/// Reconnections tried for one blob before a download fails.
const RESUME_ATTEMPTS: u32 = 3;
/// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size.
const UPLOAD_CHUNK: usize = 16 << 20;

/// Bytes of a blob as they arrive, for a reader on another thread.
pub type Chunks = mpsc::Sender<io::Result<Bytes>>;

/// Stream the blob `digest` (`size` bytes) into `tx`, calling `on_bytes` with the total so
/// far. A broken connection is resumed where it stopped. Stops quietly when the receiver
/// is gone (it failed and says why); a failure here is also sent to the receiver.
pub async fn download(
    repo: &Repository,
    digest: &Digest,
    size: u64,
    tx: &Chunks,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<()> {
    let result = download_inner(repo, digest, size, tx, on_bytes).await;
    if let Err(e) = &result {
        let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
    }
    result
}

async fn download_inner(
    repo: &Repository,
    digest: &Digest,
    size: u64,
    tx: &Chunks,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<()> {
    let url = repo.url(&format!("blobs/{digest}"));
    let what = format!("blob {digest} of {}", repo.name());
    let mut received = 0u64;
    let mut attempt = 0;
    loop {
        match fetch_from(repo, &url, &what, size, &mut received, tx, on_bytes).await {
            Ok(Fetch::Done | Fetch::ReceiverGone) => return Ok(()),
            Ok(Fetch::Broken(e)) | Err(e @ Error::Http { .. }) if attempt < RESUME_ATTEMPTS => {
                attempt += 1;
                tracing::warn!("{what}: {e}; resuming at byte {received} (attempt {attempt})");
                tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
            }
            Ok(Fetch::Broken(e)) | Err(e) => return Err(e),
        }
    }
}

enum Fetch {
    Done,
    ReceiverGone,
    /// The connection broke; the download may resume.
    Broken(Error),
}

async fn fetch_from(
    repo: &Repository,
    url: &str,
    what: &str,
    size: u64,
    received: &mut u64,
    tx: &Chunks,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<Fetch> {
    let from = *received;
    let resp = repo
        .send(
            url,
            |r| {
                if from > 0 {
                    r.header(header::RANGE, format!("bytes={from}-"))
                } else {
                    r
                }
            },
            Method::GET,
        )
        .await?;
    let mut resp = check(resp, what).await?;
    // A registry that ignores Range sends the blob from its start again.
    let mut skip = if from > 0 && resp.status() != StatusCode::PARTIAL_CONTENT {
        from
    } else {
        0
    };
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) if *received == size => return Ok(Fetch::Done),
            Ok(None) => {
                return Ok(Fetch::Broken(Error::Http {
                    url: url.into(),
                    message: format!("the blob ended after {received} of {size} bytes"),
                }))
            }
            Err(e) => return Ok(Fetch::Broken(Error::http(url, &e))),
        };
        let chunk = if skip > 0 {
            let n = skip.min(chunk.len() as u64);
            skip -= n;
            chunk.slice(n as usize..)
        } else {
            chunk
        };
        if chunk.is_empty() {
            continue;
        }
        *received += chunk.len() as u64;
        if *received > size {
            return Err(Error::DigestMismatch {
                what: what.to_string(),
                expected: format!("{size} bytes"),
                actual: format!("more than {size} bytes"),
            });
        }
        if tx.send(Ok(chunk)).await.is_err() {
            return Ok(Fetch::ReceiverGone);
        }
        on_bytes(*received);
    }
}

/// HEAD: whether the repository has the blob already.
pub async fn exists(repo: &Repository, digest: &Digest) -> Result<bool> {
    let url = repo.url(&format!("blobs/{digest}"));
    let resp = repo.send(&url, |r| r, Method::HEAD).await?;
    match resp.status() {
        StatusCode::NOT_FOUND => Ok(false),
        _ => check(resp, &format!("blob {digest} of {}", repo.name()))
            .await
            .map(|_| true),
    }
}

/// Where an upload goes next: the blob was mounted, or an upload session was opened.
pub enum Started {
    Mounted,
    Upload(Url),
}

/// POST an upload, asking to mount the blob from `mount_from` (a repository on the same
/// registry) when given; a registry that cannot mount opens an upload instead.
pub async fn start_upload(
    repo: &Repository,
    digest: &Digest,
    mount_from: Option<&str>,
) -> Result<Started> {
    let mut url = repo.url("blobs/uploads/");
    if let Some(from) = mount_from {
        url = format!("{url}?mount={digest}&from={from}");
    }
    let resp = repo
        .send(
            &url,
            |r| r.header(header::CONTENT_LENGTH, "0"),
            Method::POST,
        )
        .await?;
    let resp = check(resp, &format!("upload to {}", repo.name())).await?;
    if resp.status() == StatusCode::CREATED && mount_from.is_some() {
        return Ok(Started::Mounted);
    }
    location(repo, &resp).map(Started::Upload)
}

fn location(repo: &Repository, resp: &reqwest::Response) -> Result<Url> {
    let loc = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Status {
            what: format!("upload to {}", repo.name()),
            status: resp.status().as_u16(),
            message: "the registry gave no Location".into(),
        })?;
    repo.resolve(loc)
}

/// Upload the file at `path` (`size` bytes, hashing to `digest`) to the session at `at`.
pub async fn upload(
    repo: &Repository,
    at: Url,
    digest: &Digest,
    path: &Path,
    size: u64,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<()> {
    let what = format!("upload of {digest} to {}", repo.name());
    let io_err = |e: io::Error| Error::Image(berth_image::Error::io("read", path, e));
    let mut file = tokio::fs::File::open(path).await.map_err(io_err)?;
    let mut at = at;
    let mut sent = 0u64;
    let mut buf = vec![0u8; UPLOAD_CHUNK.min(size as usize)];
    if size as usize > UPLOAD_CHUNK {
        while sent < size {
            let n = read_full(&mut file, &mut buf).await.map_err(io_err)?;
            if n == 0 {
                break;
            }
            let body = Bytes::copy_from_slice(&buf[..n]);
            let range = format!("{}-{}", sent, sent + n as u64 - 1);
            let resp = repo
                .send(
                    at.as_str(),
                    |r| {
                        r.header(header::CONTENT_TYPE, "application/octet-stream")
                            .header(header::CONTENT_RANGE, range.clone())
                            .body(body.clone())
                    },
                    Method::PATCH,
                )
                .await?;
            let resp = check(resp, &what).await?;
            at = location(repo, &resp)?;
            sent += n as u64;
            on_bytes(sent);
        }
        buf.clear();
    } else {
        let n = read_full(&mut file, &mut buf).await.map_err(io_err)?;
        buf.truncate(n);
        sent = n as u64;
    }
    at.query_pairs_mut().append_pair("digest", digest.as_str());
    let body = Bytes::from(buf);
    let resp = repo
        .send(
            at.as_str(),
            |r| {
                r.header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            },
            Method::PUT,
        )
        .await?;
    check(resp, &what).await?;
    on_bytes(sent);
    Ok(())
}

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let r = file.read(&mut buf[n..]).await?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(n)
}

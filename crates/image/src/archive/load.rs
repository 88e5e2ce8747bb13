//! `load`: images from a `docker save` archive (the classic layout, `<id>/layer.tar` and
//! `<id>.json`, or the OCI layout inside it that docker 25+ writes), or from a plain OCI
//! image layout tar. Gzip, zstd or uncompressed; layers are unpacked in parallel.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::spool::Spool;
use super::ArchiveManifest;
use crate::config::DockerOCIImage;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest;
use crate::oci::{Descriptor, ImageIndex, ImageManifest};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{ImageStore, NewLayer};

/// Progress of a load, for the API's stream.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A layer of an image is unpacked (or was already present); `bytes` of its blob.
    Layer {
        diff_id: Digest,
        present: bool,
        bytes: u64,
    },
    /// An image was loaded, named by its first tag or its id.
    Loaded { name: String, tagged: bool },
}

/// Whether a manifest blob is an index (has `manifests`), whatever its media type says.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
}

/// One image to add: config bytes and each layer's archive path (with the digest the
/// path or a descriptor promises, if any).
struct Pending {
    config: Vec<u8>,
    layers: Vec<(String, Option<Digest>)>,
    tags: Vec<Reference>,
}

/// `blobs/sha256/<hex>` names its digest.
fn digest_of_path(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn read_verified(
    spool: &Spool,
    path: &str,
    expected: Option<&Digest>,
    what: &str,
) -> Result<Vec<u8>> {
    let file = spool.file(path)?;
    let bytes = std::fs::read(file).map_err(|e| Error::io("read", file, e))?;
    if let Some(expected) = expected {
        let actual = Digest::of(&bytes);
        if actual != *expected {
            return Err(Error::DigestMismatch {
                what: what.into(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    Ok(bytes)
}

fn docker_archive(spool: &Spool) -> Result<Vec<Pending>> {
    let manifests: Vec<ArchiveManifest> = spool.json("manifest.json")?;
    let mut out = Vec::new();
    for m in manifests {
        let expected = digest_of_path(&m.config).or_else(|| {
            let hex = m.config.trim_end_matches(".json");
            Digest::parse(&format!("sha256:{hex}")).ok()
        });
        let config = read_verified(
            spool,
            &m.config,
            expected.as_ref(),
            &format!("config {}", m.config),
        )?;
        let tags = m
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| Reference::parse(t).map(Reference::with_default_tag))
            .collect::<Result<Vec<_>>>()?;
        let layers = m.layers.into_iter().map(|l| {
            let d = digest_of_path(&l);
            (l, d)
        });
        out.push(Pending {
            config,
            layers: layers.collect(),
            tags,
        });
    }
    Ok(out)
}

/// The image manifests an OCI index leads to on `platform`, with their names.
fn oci_layout(spool: &Spool, platform: &Platform) -> Result<Vec<Pending>> {
    let index: ImageIndex = spool.json("index.json")?;
    let mut out = Vec::new();
    for desc in index.manifests() {
        let annotations = desc.annotations().clone().unwrap_or_default();
        let name = annotations
            .get("io.containerd.image.name")
            .or_else(|| annotations.get("org.opencontainers.image.ref.name"))
            .and_then(|n| Reference::parse(n).ok())
            .filter(|r| r.tag.is_some());
        let tags: Vec<Reference> = name.into_iter().collect();
        out.push(oci_image(spool, desc, tags, platform, 0)?);
    }
    Ok(out)
}

fn oci_image(
    spool: &Spool,
    desc: &Descriptor,
    tags: Vec<Reference>,
    platform: &Platform,
    depth: u32,
) -> Result<Pending> {
    if depth > 2 {
        return Err(Error::archive("index nesting is too deep"));
    }
    let digest = Digest::from_oci(desc.digest())?;
    let bytes = read_verified(spool, &blob_path(&digest), Some(&digest), "manifest")?;
    let probe: Probe = serde_json::from_slice(&bytes)
        .map_err(|e| Error::archive(format!("manifest {digest}: {e}")))?;
    let media_type = desc.media_type().to_string();
    let is_index = probe.manifests.is_some()
        || media_type == manifest::OCI_INDEX
        || media_type == manifest::DOCKER_MANIFEST_LIST;
    if is_index {
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| Error::archive(format!("index {digest}: {e}")))?;
        let chosen = index
            .manifests()
            .iter()
            .find(|m| {
                m.platform()
                    .as_ref()
                    .is_some_and(|p| platform.served_by(&p.into()))
            })
            .ok_or_else(|| Error::archive(format!("index {digest} has no image for {platform}")))?;
        return oci_image(spool, chosen, tags, platform, depth + 1);
    }
    let m: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::archive(format!("manifest {digest}: {e}")))?;
    let config_digest = Digest::from_oci(m.config().digest())?;
    let config = read_verified(
        spool,
        &blob_path(&config_digest),
        Some(&config_digest),
        "config",
    )?;
    let mut layers = Vec::new();
    for l in m.layers() {
        let d = Digest::from_oci(l.digest())?;
        layers.push((blob_path(&d), Some(d)));
    }
    Ok(Pending {
        config,
        layers,
        tags,
    })
}

/// Load every image of the archive `input`; with `only`, the images of that platform
/// alone (an index's for it; the others are skipped, as moby's loader skips them).
pub fn load(
    store: &ImageStore,
    input: impl Read,
    only: Option<&Platform>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<String>> {
    let spool = Spool::read(input, store.scratch()?)?;
    let host = Platform::host();
    let pending = if spool.has("manifest.json") {
        docker_archive(&spool)?
    } else if spool.has("index.json") {
        oci_layout(&spool, only.unwrap_or(&host))?
    } else {
        return Err(Error::archive(
            "neither manifest.json (docker-archive) nor index.json (OCI layout) found",
        ));
    };
    if pending.is_empty() {
        return Err(Error::archive("the archive holds no image"));
    }
    let mut names = Vec::new();
    for p in pending {
        if let Some(wanted) = only {
            let config: DockerOCIImage = serde_json::from_slice(&p.config)
                .map_err(|e| Error::archive(format!("image config: {e}")))?;
            if !wanted.served_by(&config.platform()) {
                continue;
            }
        }
        let name = add(store, &spool, p, progress)?;
        names.push(name);
    }
    Ok(names)
}

fn diff_ids_of(config: &[u8]) -> Result<Vec<Digest>> {
    let config: DockerOCIImage =
        serde_json::from_slice(config).map_err(|e| Error::archive(format!("image config: {e}")))?;
    config
        .rootfs
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d))
        .collect()
}

fn add(
    store: &ImageStore,
    spool: &Spool,
    p: Pending,
    progress: &mut dyn FnMut(Progress),
) -> Result<String> {
    let diff_ids = diff_ids_of(&p.config)?;
    if diff_ids.len() != p.layers.len() {
        return Err(Error::archive(format!(
            "the config lists {} layers, the manifest {}",
            diff_ids.len(),
            p.layers.len()
        )));
    }
    let chains = ImageStore::chain_ids(&diff_ids);
    let touched = std::sync::Mutex::new(Vec::new());
    let results = match unpack_all(store, spool, &p.layers, &diff_ids, &chains, &touched) {
        Ok(r) => r,
        Err(e) => {
            // Nothing of a failed image may stay: its blobs and unpacked layers go.
            let blobs = touched.into_inner().unwrap_or_else(|e| e.into_inner());
            let _ = store.discard(&blobs, &chains);
            return Err(e);
        }
    };
    let mut layers = Vec::new();
    let mut sizes = HashMap::new();
    for ((layer, size, present), chain) in results.into_iter().zip(&chains) {
        progress(Progress::Layer {
            diff_id: layer.diff_id.clone(),
            present,
            bytes: store.content().size(&layer.blob).unwrap_or(0),
        });
        if let Some(s) = size {
            sizes.insert(chain.clone(), s);
        }
        layers.push(layer);
    }
    let record = store.commit(&p.config, &layers, &sizes, &p.tags, None)?;
    let (name, tagged) = match p.tags.first() {
        Some(t) => (
            format!(
                "{}:{}",
                t.familiar_repository(),
                t.tag.clone().unwrap_or_default()
            ),
            true,
        ),
        None => (record.id.to_string(), false),
    };
    for t in p.tags.iter().skip(1) {
        progress(Progress::Loaded {
            name: format!(
                "{}:{}",
                t.familiar_repository(),
                t.tag.clone().unwrap_or_default()
            ),
            tagged: true,
        });
    }
    progress(Progress::Loaded {
        name: name.clone(),
        tagged,
    });
    Ok(name)
}

type LayerResult = (NewLayer, Option<u64>, bool);

/// Store and unpack every layer, several at once.
fn unpack_all(
    store: &ImageStore,
    spool: &Spool,
    layers: &[(String, Option<Digest>)],
    diff_ids: &[Digest],
    chains: &[Digest],
    touched: &std::sync::Mutex<Vec<Digest>>,
) -> Result<Vec<LayerResult>> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(layers.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<LayerResult>>>> =
        layers.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= layers.len() {
                    break;
                }
                let r = one_layer(store, spool, &layers[i], &diff_ids[i], &chains[i], touched);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(Error::archive("a layer worker failed")))
        })
        .collect()
}

fn one_layer(
    store: &ImageStore,
    spool: &Spool,
    (path, expected): &(String, Option<Digest>),
    diff_id: &Digest,
    chain: &Digest,
    touched: &std::sync::Mutex<Vec<Digest>>,
) -> Result<LayerResult> {
    let file = spool.file(path)?;
    let head = head_of(file)?;
    let media_type = manifest::layer_media_type(crate::unpack::detect(&head)).to_string();
    let blob = store
        .content()
        .adopt(file, expected.as_ref(), &format!("layer {path}"))?;
    if let Ok(mut t) = touched.lock() {
        t.push(blob.clone());
    }
    if store.has_snapshot(chain)? {
        let layer = NewLayer {
            blob,
            media_type,
            diff_id: diff_id.clone(),
        };
        return Ok((layer, None, true));
    }
    let staging = store.staging_dir()?;
    let fs_dir = staging.path().join("fs");
    std::fs::create_dir(&fs_dir).map_err(|e| Error::io("create", &fs_dir, e))?;
    let reader = store.content().open_blob(&blob)?;
    let unpacked = crate::unpack::unpack(reader, &fs_dir)?;
    if unpacked.diff_id != *diff_id {
        return Err(Error::DigestMismatch {
            what: format!("layer {path} (DiffID in the image config)"),
            expected: diff_id.to_string(),
            actual: unpacked.diff_id.to_string(),
        });
    }
    store.install_snapshot(staging, chain)?;
    let layer = NewLayer {
        blob,
        media_type,
        diff_id: diff_id.clone(),
    };
    Ok((layer, Some(unpacked.size), false))
}

fn head_of(path: &Path) -> Result<[u8; 4]> {
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let _ = f.read(&mut head).map_err(|e| Error::io("read", path, e))?;
    Ok(head)
}

//! Fuzz the image archive loader (berth_image::archive::load and its spool): docker-archive
//! and OCI layout tars whose manifests, configs, digests, paths, tags, indexes and layers
//! are each right or wrong in one of the ways they can be, plus hostile extra entries,
//! damage and compression. Every case loads into a store that already holds a good image;
//! after it, whether the load succeeded or not:
//! - every image in the store is whole: its config readable, each layer's blob and
//!   snapshot present, and a loaded name resolves;
//! - a failed load of one image added nothing;
//! - nothing leaked: every blob is an image's, every snapshot directory has its record, no
//!   scratch or staging directory or interrupted write is left.

use std::collections::BTreeSet;
use std::path::Path;

use berth_fuzz::tar::{Compression, Entry, Kind, Layer, Target};
use berth_image::{Digest, ImageStore};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use sha2::Digest as _;

#[derive(Debug, Clone)]
enum LayerChoice {
    New(Layer),
    /// The base image's layer i (shared blobs and snapshots).
    Base(usize),
}

#[derive(Debug, Clone, Copy)]
enum Mistake {
    None,
    /// The config lists another DiffID for layer 0.
    WrongDiffId,
    /// The config has no rootfs.diff_ids.
    NoDiffIds,
    /// One layer more in the config than in the manifest.
    ExtraDiffId,
    /// The config is not JSON.
    ConfigNotJson,
    /// A path (docker) or digest (OCI) that names a missing or wrong blob.
    MissingLayer,
    WrongDigest,
    MalformedDigest,
    /// A layer path with `..` (docker) or a config path outside blobs/.
    DotDotPath,
    /// The layer reached through a symlink, as old `docker save` wrote repeated layers.
    SymlinkedLayer,
}

#[derive(Debug, Clone)]
struct ImageSpec {
    layers: Vec<LayerChoice>,
    tags: Vec<&'static str>,
    mistake: Mistake,
    /// OCI: the index entry's platform (None: no platform) and whether it goes through a
    /// nested index.
    platform: Option<&'static str>,
    nested: bool,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Docker,
    Oci,
    Neither,
}

#[derive(Debug, Clone)]
struct Archive {
    format: Format,
    images: Vec<ImageSpec>,
    /// The manifest (docker) or index (OCI) replaced by this JSON.
    manifest_override: Option<Value>,
    junk: Vec<Entry>,
    corruption: Vec<(usize, u8)>,
    truncate: Option<usize>,
    compression: Compression,
}

fn mistake() -> impl Strategy<Value = Mistake> {
    prop_oneof![
        12 => Just(Mistake::None),
        1 => Just(Mistake::WrongDiffId),
        1 => Just(Mistake::NoDiffIds),
        1 => Just(Mistake::ExtraDiffId),
        1 => Just(Mistake::ConfigNotJson),
        1 => Just(Mistake::MissingLayer),
        1 => Just(Mistake::WrongDigest),
        1 => Just(Mistake::MalformedDigest),
        1 => Just(Mistake::DotDotPath),
        2 => Just(Mistake::SymlinkedLayer),
    ]
}

fn small_layer() -> impl Strategy<Value = Layer> {
    // Mostly ordinary layers: the unpacker has its own target.
    prop_oneof![
        3 => (vec(berth_fuzz::tar::plain_entry(), 0..4), berth_fuzz::tar::compression()).prop_map(
            |(entries, compression)| Layer {
                entries,
                corruption: Vec::new(),
                truncate: None,
                compression,
            }
        ),
        1 => berth_fuzz::tar::layer(4),
    ]
}

fn image() -> impl Strategy<Value = ImageSpec> {
    (
        vec(
            prop_oneof![4 => small_layer().prop_map(LayerChoice::New), 1 => (0usize..2).prop_map(LayerChoice::Base)],
            0..4,
        ),
        vec(
            select(vec![
                "fuzz:latest", "fuzz:1", "library/fuzz:2", "localhost:5000/a/b:c", "base:latest",
                "fuzz:latest", "fuzz:2", "other", "fuzz:1",
                "Bad:Tag", "fuzz", "a@sha256:0123", "", ":x", "fuzz:-bad",
            ]),
            0..3,
        ),
        mistake(),
        prop_oneof![4 => Just(Some("host")), 1 => Just(Some("linux/s390x")), 1 => Just(None)],
        prop::bool::weighted(0.15),
    )
        .prop_map(|(layers, tags, mistake, platform, nested)| ImageSpec {
            layers,
            tags,
            mistake,
            platform,
            nested,
        })
}

fn archive() -> impl Strategy<Value = Archive> {
    (
        prop_oneof![5 => Just(Format::Docker), 4 => Just(Format::Oci), 1 => Just(Format::Neither)],
        prop_oneof![1 => vec(image(), 0..1), 12 => vec(image(), 1..3)],
        prop_oneof![12 => Just(None), 1 => berth_fuzz::json::any_value().prop_map(Some)],
        prop_oneof![8 => Just(Vec::new()), 1 => vec(berth_fuzz::tar::entry(), 1..3)],
        prop_oneof![
            20 => Just((Vec::new(), None)),
            1 => (vec((any::<usize>(), any::<u8>()), 1..3), Just(None)),
            1 => (Just(Vec::new()), any::<usize>().prop_map(Some)),
        ],
        berth_fuzz::tar::compression(),
    )
        .prop_map(
            |(format, images, manifest_override, junk, (corruption, truncate), compression)| {
                Archive {
                    format,
                    images,
                    manifest_override,
                    junk,
                    corruption,
                    truncate,
                    compression,
                }
            },
        )
}

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Files of the archive being built.
#[derive(Default)]
struct Files(Vec<Entry>);

impl Files {
    fn file(&mut self, path: &str, data: Vec<u8>) {
        self.0.push(entry(path, Kind::File(data)));
    }
    fn blob(&mut self, data: Vec<u8>) -> String {
        let hex = sha(&data);
        self.file(&format!("blobs/sha256/{hex}"), data);
        hex
    }
}

fn entry(path: &str, kind: Kind) -> Entry {
    Entry {
        path: path.to_string(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: Vec::new(),
        long_name: false,
    }
}

fn host_platform() -> Value {
    let p = berth_image::Platform::host();
    json!({"os": p.os, "architecture": p.architecture, "variant": p.variant})
}

/// The layers of an image as (stream, diff_id hex).
fn layer_blobs(spec: &ImageSpec, base: &[Layer], outside: &Path) -> Vec<(Vec<u8>, String)> {
    spec.layers
        .iter()
        .map(|l| {
            let layer = match l {
                LayerChoice::New(l) => l,
                LayerChoice::Base(i) => &base[*i % base.len()],
            };
            (layer.stream(outside), sha(&layer.tar(outside)))
        })
        .collect()
}

fn config_bytes(spec: &ImageSpec, diff_ids: &[String]) -> Vec<u8> {
    let mut ids: Vec<String> = diff_ids.iter().map(|d| format!("sha256:{d}")).collect();
    match spec.mistake {
        Mistake::WrongDiffId if !ids.is_empty() => ids[0] = format!("sha256:{}", sha(b"other")),
        Mistake::ExtraDiffId => ids.push(format!("sha256:{}", sha(b"extra"))),
        Mistake::ConfigNotJson => return b"{not json".to_vec(),
        _ => {}
    }
    let mut config = json!({
        "architecture": host_platform()["architecture"],
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": ids},
    });
    if let Mistake::NoDiffIds = spec.mistake {
        config["rootfs"] = json!({"type": "layers"});
    }
    serde_json::to_vec(&config).unwrap_or_default()
}

fn docker_image(
    files: &mut Files,
    spec: &ImageSpec,
    base: &[Layer],
    n: usize,
    outside: &Path,
) -> Value {
    let layers = layer_blobs(spec, base, outside);
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.clone()).collect();
    let config = config_bytes(spec, &diff_ids);
    let config_hex = sha(&config);
    let config_path = match spec.mistake {
        Mistake::WrongDigest => format!("{}.json", sha(b"wrong")),
        Mistake::DotDotPath => format!("../{config_hex}.json"),
        _ => format!("{config_hex}.json"),
    };
    files.file(&format!("{config_hex}.json"), config);
    let mut paths = Vec::new();
    for (i, (stream, _)) in layers.into_iter().enumerate() {
        let dir = format!("{n}-{i}");
        let path = match (spec.mistake, i) {
            (Mistake::MissingLayer, 0) => format!("{dir}/missing.tar"),
            (Mistake::DotDotPath, 0) => format!("../{dir}/layer.tar"),
            (Mistake::MalformedDigest, 0) => "blobs/sha256/xyz".to_string(),
            (Mistake::SymlinkedLayer, 0) => {
                let hex = files.blob(stream);
                files.0.push(entry(
                    &format!("{dir}/layer.tar"),
                    Kind::Symlink(Target::Named(format!("../blobs/sha256/{hex}"))),
                ));
                format!("{dir}/layer.tar")
            }
            _ => {
                files.file(&format!("{dir}/layer.tar"), stream);
                format!("{dir}/layer.tar")
            }
        };
        paths.push(path);
    }
    json!({"Config": config_path, "RepoTags": spec.tags, "Layers": paths})
}

fn descriptor(media_type: &str, hex: &str, size: usize) -> Value {
    json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": size})
}

fn oci_image(files: &mut Files, spec: &ImageSpec, base: &[Layer], outside: &Path) -> Value {
    let layers = layer_blobs(spec, base, outside);
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.clone()).collect();
    let config = config_bytes(spec, &diff_ids);
    let config_len = config.len();
    let config_hex = files.blob(config);
    let mut descs = Vec::new();
    for (i, (stream, _)) in layers.into_iter().enumerate() {
        let len = stream.len();
        let hex = match (spec.mistake, i) {
            (Mistake::MissingLayer, 0) => sha(&stream),
            (Mistake::WrongDigest, 0) => {
                let real = sha(&stream);
                files.file(&format!("blobs/sha256/{}", sha(b"wrong")), stream);
                let _ = real;
                sha(b"wrong")
            }
            (Mistake::MalformedDigest, 0) => "XYZ".to_string(),
            (Mistake::SymlinkedLayer, 0) => {
                let hex = sha(&stream);
                files.file("layers/0.tar", stream);
                files.0.push(entry(
                    &format!("blobs/sha256/{hex}"),
                    Kind::Symlink(Target::Named("../../layers/0.tar".into())),
                ));
                hex
            }
            _ => files.blob(stream),
        };
        descs.push(descriptor(berth_image::manifest::OCI_LAYER, &hex, len));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": berth_image::manifest::OCI_MANIFEST,
        "config": descriptor(berth_image::manifest::OCI_CONFIG, &config_hex, config_len),
        "layers": descs,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let len = bytes.len();
    let hex = files.blob(bytes);
    let mut desc = descriptor(berth_image::manifest::OCI_MANIFEST, &hex, len);
    match spec.platform {
        Some("host") => desc["platform"] = host_platform(),
        Some(other) => {
            let (os, arch) = other.split_once('/').unwrap_or(("linux", other));
            desc["platform"] = json!({"os": os, "architecture": arch});
        }
        None => {}
    }
    if spec.nested {
        let index = json!({"schemaVersion": 2, "manifests": [desc]});
        let bytes = serde_json::to_vec(&index).unwrap_or_default();
        let len = bytes.len();
        let hex = files.blob(bytes);
        desc = descriptor(berth_image::manifest::OCI_INDEX, &hex, len);
    }
    if let Some(tag) = spec.tags.first() {
        desc["annotations"] = json!({"io.containerd.image.name": tag});
    }
    desc
}

/// The archive's bytes; link targets meant to leave a layer point below `outside`.
fn build(a: &Archive, base: &[Layer], outside: &Path) -> Vec<u8> {
    let mut files = Files::default();
    match a.format {
        Format::Docker => {
            let manifest: Vec<Value> = a
                .images
                .iter()
                .enumerate()
                .map(|(n, spec)| docker_image(&mut files, spec, base, n, outside))
                .collect();
            let manifest = a.manifest_override.clone().unwrap_or(Value::from(manifest));
            files.file(
                "manifest.json",
                serde_json::to_vec(&manifest).unwrap_or_default(),
            );
        }
        Format::Oci => {
            let descs: Vec<Value> = a
                .images
                .iter()
                .map(|spec| oci_image(&mut files, spec, base, outside))
                .collect();
            let index = json!({"schemaVersion": 2, "manifests": descs});
            let index = a.manifest_override.clone().unwrap_or(index);
            files.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
            files.file("index.json", serde_json::to_vec(&index).unwrap_or_default());
        }
        Format::Neither => files.file("repositories", b"{}".to_vec()),
    }
    files.0.extend(a.junk.iter().cloned());
    let mut tar = berth_fuzz::tar::archive(&files.0, outside);
    let len = tar.len();
    for (at, xor) in &a.corruption {
        tar[at % len] ^= xor.max(&1);
    }
    if let Some(cut) = a.truncate {
        tar.truncate(cut % len);
    }
    berth_fuzz::tar::compress(&tar, a.compression)
}

/// The base image every case starts from: two small layers, tagged base:latest.
fn base_layers() -> Vec<Layer> {
    let file = |path: &str, data: &[u8]| entry(path, Kind::File(data.to_vec()));
    [
        vec![
            entry("etc", Kind::Dir),
            file("etc/passwd", b"root:x:0:0::/:/bin/sh\n"),
        ],
        vec![file("bin/sh", b"#!"), file(".wh.gone", b"")],
    ]
    .into_iter()
    .map(|entries| Layer {
        entries,
        corruption: Vec::new(),
        truncate: None,
        compression: Compression::Gzip,
    })
    .collect()
}

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

/// Everything the store holds must be whole, and nothing may be left over.
fn check_store(
    store: &ImageStore,
    root: &std::path::Path,
) -> Result<BTreeSet<String>, TestCaseError> {
    let images = store.list().map_err(fail)?;
    let mut referenced = BTreeSet::new();
    for image in &images {
        let r = &image.record;
        store
            .config(r)
            .map_err(|e| fail(format!("image {}: config: {e}", r.id)))?;
        referenced.insert(r.id.to_string());
        referenced.insert(r.manifest.to_string());
        for l in &r.layers {
            referenced.insert(l.blob.to_string());
            if !store.content().contains(&l.blob) {
                return Err(fail(format!("image {}: blob {} is missing", r.id, l.blob)));
            }
            if !store.snapshot_dir(&l.chain_id).is_dir() {
                return Err(fail(format!(
                    "image {}: snapshot {} is missing",
                    r.id, l.chain_id
                )));
            }
        }
    }
    for blob in store.content().list().map_err(fail)? {
        if !referenced.contains(&blob.to_string()) {
            return Err(fail(format!("blob {blob} belongs to no image")));
        }
    }
    for dir in std::fs::read_dir(root.join("snapshots"))
        .map_err(fail)?
        .flatten()
    {
        let name = dir.file_name().to_string_lossy().into_owned();
        let recorded = Digest::parse(&format!("sha256:{name}"))
            .ok()
            .map(|d| store.has_snapshot(&d))
            .transpose()
            .map_err(fail)?
            .unwrap_or(false);
        if !recorded {
            return Err(fail(format!("snapshot directory {name} has no record")));
        }
    }
    if let Ok(mut tmp) = std::fs::read_dir(root.join("tmp")) {
        if let Some(left) = tmp.next() {
            return Err(fail(format!("scratch left behind: {left:?}")));
        }
    }
    let interrupted = store.content().clean_ingest().map_err(fail)?;
    if interrupted != 0 {
        return Err(fail(format!("{interrupted} unfinished blob writes left")));
    }
    Ok(images.iter().map(|i| i.record.id.to_string()).collect())
}

/// The store every case loads into, holding the base image; each case returns it to that
/// state (and checks it did), so cases stay independent without paying ~100 ms for a new
/// redb database each (debug build).
struct Shared {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: ImageStore,
    base: String,
    /// check_store's answer and the blobs of the base state.
    blobs: BTreeSet<String>,
}

/// The shared store, made when there is none: a case that fails drops it, so that the
/// shrinking that follows starts from a clean one.
static SHARED: std::sync::Mutex<Option<Shared>> = std::sync::Mutex::new(None);

fn take_shared() -> Result<Shared, TestCaseError> {
    if let Some(s) = SHARED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Ok(s);
    }
    let dir = tempfile::tempdir_in(berth_fuzz::scratch_root()).map_err(fail)?;
    let root = dir.path().join("image");
    let store = ImageStore::open(&root).map_err(fail)?;
    let base_archive = Archive {
        format: Format::Docker,
        images: vec![ImageSpec {
            layers: vec![LayerChoice::Base(0), LayerChoice::Base(1)],
            tags: vec!["base:latest"],
            mistake: Mistake::None,
            platform: None,
            nested: false,
        }],
        manifest_override: None,
        junk: Vec::new(),
        corruption: Vec::new(),
        truncate: None,
        compression: Compression::None,
    };
    let archive = build(&base_archive, &base_layers(), &dir.path().join("outside"));
    berth_image::archive::load(&store, archive.as_slice(), None, &mut |_| {})
        .map_err(|e| fail(format!("the base image does not load: {e}")))?;
    let base = store
        .resolve("base:latest")
        .map_err(fail)?
        .record
        .id
        .to_string();
    let blobs = blob_set(&store)?;
    Ok(Shared {
        _dir: dir,
        root,
        store,
        base,
        blobs,
    })
}

fn blob_set(store: &ImageStore) -> Result<BTreeSet<String>, TestCaseError> {
    Ok(store
        .content()
        .list()
        .map_err(fail)?
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// Remove what the case added (images, tags) and check that the store is as it was.
fn reset(s: &Shared) -> Result<(), TestCaseError> {
    for image in s.store.list().map_err(fail)? {
        let id = image.record.id.to_string();
        if id != s.base {
            s.store
                .remove(&id, true)
                .map_err(|e| fail(format!("removing loaded image {id}: {e}")))?;
        } else {
            for tag in image
                .tags
                .iter()
                .filter(|t| t.as_str() != "docker.io/library/base:latest")
            {
                s.store
                    .remove(tag, false)
                    .map_err(|e| fail(format!("untagging {tag}: {e}")))?;
            }
        }
    }
    if s.store
        .resolve("base:latest")
        .map(|i| i.record.id.to_string())
        .ok()
        != Some(s.base.clone())
    {
        let tag = berth_image::Reference::parse("base:latest").map_err(fail)?;
        s.store.tag(&s.base, &tag).map_err(fail)?;
    }
    let images = check_store(&s.store, &s.root)?;
    if images != BTreeSet::from([s.base.clone()]) || blob_set(&s.store)? != s.blobs {
        return Err(fail(format!(
            "removing what the load added did not bring the store back: images {images:?}, blobs {:?} (were {:?})",
            blob_set(&s.store)?,
            s.blobs
        )));
    }
    Ok(())
}

fn case(a: Archive) -> Result<(), TestCaseError> {
    let s = take_shared()?;
    load_and_reset(&s, &a)?;
    *SHARED.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    Ok(())
}

fn load_and_reset(s: &Shared, a: &Archive) -> Result<(), TestCaseError> {
    let before = check_store(&s.store, &s.root)?;
    let outside = s.root.parent().unwrap_or(&s.root).join("outside");
    let archive = build(a, &base_layers(), &outside);
    let result = berth_image::archive::load(&s.store, archive.as_slice(), None, &mut |_| {});
    let after = check_store(&s.store, &s.root)?;
    match result {
        Ok(names) => {
            LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if names.is_empty() {
                return Err(fail("a load that succeeded named no image"));
            }
            for name in &names {
                s.store
                    .resolve(name)
                    .map_err(|e| fail(format!("loaded {name:?} does not resolve: {e}")))?;
            }
        }
        // Images are added one by one: an archive's later image can fail after an earlier
        // one was added. One that holds a single image adds nothing when it fails.
        Err(_) if a.images.len() <= 1 && before != after => {
            return Err(fail(format!(
                "a failed load changed the images: {before:?} -> {after:?}"
            )))
        }
        Err(_) => {}
    }
    reset(s)
}

static LOADED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Removes the shared directory when the test ends, passed or failed (a static is never
/// dropped).
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        drop(SHARED.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

#[test]
fn load_hostile_archives() {
    let _teardown = Teardown;
    berth_fuzz::check("load", 300, archive(), case);
    eprintln!(
        "fuzz load: {} archives loaded",
        LOADED.load(std::sync::atomic::Ordering::Relaxed)
    );
}

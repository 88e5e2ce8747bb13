//! `save`: images as one archive that `docker load`, `podman load` and skopeo's
//! `docker-archive:` read: docker 25's layout, which is an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/`) plus docker's `manifest.json` and `repositories`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use super::ArchiveManifest;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, sorted_json};
use crate::oci::{ImageIndexBuilder, MediaType, OciLayoutBuilder};
use crate::reference::Reference;
use crate::store::{Image, ImageStore};

/// An image to save and the tags to save it under.
struct Selected {
    image: Image,
    tags: Vec<Reference>,
}

fn select(store: &ImageStore, names: &[String]) -> Result<Vec<Selected>> {
    let mut out: Vec<Selected> = Vec::new();
    for name in names {
        let image = store.resolve(name)?;
        let tag = Reference::parse(name)
            .ok()
            .map(Reference::with_default_tag)
            .filter(|r| r.tagged().is_some_and(|t| image.tags.contains(&t)));
        match out
            .iter_mut()
            .find(|s| s.image.record.id == image.record.id)
        {
            Some(s) => s.tags.extend(tag),
            None => out.push(Selected {
                image,
                tags: tag.into_iter().collect(),
            }),
        }
    }
    Ok(out)
}

fn header(path: &str, size: u64, dir: bool) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)
        .map_err(|e| Error::archive(format!("{path}: {e}")))?;
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    Ok(h)
}

fn io_err(e: std::io::Error) -> Error {
    Error::io("write", "archive", e)
}

/// Write the archive of the images `names` to `out`.
pub fn save(store: &ImageStore, names: &[String], out: impl Write) -> Result<()> {
    let selected = select(store, names)?;
    let mut tar = tar::Builder::new(out);
    for dir in ["blobs/", "blobs/sha256/"] {
        tar.append(&header(dir, 0, true)?, std::io::empty())
            .map_err(io_err)?;
    }
    let mut written: HashSet<Digest> = HashSet::new();
    let mut blob = |tar: &mut tar::Builder<_>, d: &Digest| -> Result<()> {
        if !written.insert(d.clone()) {
            return Ok(());
        }
        let size = store.content().size(d)?;
        let file = store.content().open_blob(d)?;
        tar.append(
            &header(&format!("blobs/sha256/{}", d.hex()), size, false)?,
            file,
        )
        .map_err(io_err)
    };
    let mut index = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in &selected {
        let rec = &s.image.record;
        blob(&mut tar, &rec.id)?;
        for l in &rec.layers {
            blob(&mut tar, &l.blob)?;
        }
        blob(&mut tar, &rec.manifest)?;
        let manifest_size = store.content().size(&rec.manifest)?;
        let descriptor = |annotations: HashMap<String, String>| -> Result<_> {
            let mut d = manifest::descriptor(manifest::OCI_MANIFEST, &rec.manifest, manifest_size)?;
            d.set_annotations(Some(annotations));
            Ok(d)
        };
        if s.tags.is_empty() {
            index.push(descriptor(HashMap::new())?);
        }
        for t in &s.tags {
            let tag = t.tag.clone().unwrap_or_default();
            index.push(descriptor(HashMap::from([
                ("io.containerd.image.name".to_string(), t.to_string()),
                ("org.opencontainers.image.ref.name".to_string(), tag.clone()),
            ]))?);
            if let Some(top) = rec.layers.last() {
                repositories
                    .entry(t.familiar_repository())
                    .or_default()
                    .insert(tag.clone(), top.blob.hex().to_string());
            }
        }
        docker_manifest.push(ArchiveManifest {
            config: format!("blobs/sha256/{}", rec.id.hex()),
            repo_tags: Some(
                s.tags
                    .iter()
                    .map(|t| {
                        let tag = t.tag.clone().unwrap_or_default();
                        format!("{}:{tag}", t.familiar_repository())
                    })
                    .collect(),
            ),
            layers: rec
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.blob.hex()))
                .collect(),
        });
    }
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(|e| Error::archive(e.to_string()))?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(index)
        .build()
        .map_err(|e| Error::archive(e.to_string()))?;
    // Sorted keys: the same images make the same archive.
    let files = [
        ("oci-layout", sorted_json(&layout)?),
        ("index.json", sorted_json(&index)?),
        ("manifest.json", sorted_json(&docker_manifest)?),
        ("repositories", sorted_json(&repositories)?),
    ];
    for (name, bytes) in files {
        tar.append(&header(name, bytes.len() as u64, false)?, &bytes[..])
            .map_err(io_err)?;
    }
    tar.into_inner().map_err(io_err)?.flush().map_err(io_err)
}

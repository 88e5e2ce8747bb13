//! The layer cache, as the legacy builder's: every step's result is an image in the store,
//! found again by a key made of the parent image, the step with its expanded arguments and
//! the content it takes (COPY's files by their digests, not their mtimes). One small file
//! per key under the builder's directory, so the cache survives restarts; an entry whose
//! image is gone (pruned) is a miss.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use berth_image::{Digest, ImageStore};

pub struct Cache {
    dir: PathBuf,
}

/// One cached step.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    /// The image the step made.
    pub image: Digest,
    /// The image it was made on.
    pub parent: Option<Digest>,
    /// Bytes of the layer the step added (0 for a step that changed the config only).
    pub size: u64,
    pub created: Option<std::time::SystemTime>,
}

impl Entry {
    /// Its type among BuildKit's cache records.
    pub const KIND: &'static str = "regular";

    /// How `system df -v` describes it.
    pub fn description(&self) -> String {
        format!("step of a build: image {}", self.image)
    }
}

/// The key of a step: its parent image, what it does, and what it reads.
pub fn key(parent: &Digest, step: &str, content: &str) -> String {
    let mut h = Sha256::new();
    for part in [parent.as_str(), step, content] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("{:x}", h.finalize())
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Cache> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// The image a step made before, if it is still in the store.
    pub fn get(&self, store: &ImageStore, key: &str) -> Option<Digest> {
        let text = std::fs::read_to_string(self.dir.join(key)).ok()?;
        let id = Digest::parse(text.lines().next()?.trim()).ok()?;
        store.resolve(id.as_str()).ok().map(|i| i.record.id)
    }

    /// Record that the step `key` made `image` on top of `parent`, adding `size` bytes.
    pub fn put(&self, key: &str, image: &Digest, parent: &Digest, size: u64) -> Result<()> {
        // A file of its own per writer: stages built at once may make the same step.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io("create a temporary file in", &self.dir, e))?;
        std::io::Write::write_all(&mut tmp, format!("{image}\n{parent}\n{size}\n").as_bytes())
            .map_err(|e| Error::io("write", tmp.path(), e))?;
        let target = self.dir.join(key);
        tmp.persist(&target)
            .map(drop)
            .map_err(|e| Error::io("rename", &target, e.error))
    }

    /// The images some cached step was made on: the parents of other images, which
    /// `docker images` hides without -a and a dangling prune keeps, as dockerd does with
    /// its legacy builder's intermediate images.
    pub fn parents(&self) -> std::collections::HashSet<Digest> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Default::default();
        };
        entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| Digest::parse(t.lines().nth(1)?.trim()).ok())
            .collect()
    }

    /// Every entry (for `system df`).
    pub fn entries(&self) -> Vec<Entry> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in dir.flatten() {
            let key = e.file_name().to_string_lossy().into_owned();
            if key.starts_with('.') {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let mut lines = text.lines();
            let (Some(image), parent, size) = (
                lines.next().and_then(|l| Digest::parse(l.trim()).ok()),
                lines.next().and_then(|l| Digest::parse(l.trim()).ok()),
                lines
                    .next()
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0),
            ) else {
                continue;
            };
            let created = e.metadata().and_then(|m| m.modified()).ok();
            out.push(Entry {
                key,
                image,
                parent,
                size,
                created,
            });
        }
        out
    }

    /// Forget the entries `keys` (one already gone is no error).
    pub fn remove(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            let path = self.dir.join(key);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("remove", &path, e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Forget every entry; their keys.
    pub fn clear(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io("read", &self.dir, e))?;
        for e in entries.flatten() {
            std::fs::remove_file(e.path()).map_err(|err| Error::io("remove", e.path(), err))?;
            keys.push(e.file_name().to_string_lossy().into_owned());
        }
        Ok(keys)
    }
}

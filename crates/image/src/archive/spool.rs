//! An archive unpacked to a scratch directory, so its files can be read in any order
//! (`docker save` writes manifest.json last). Only regular files are kept, under numbered
//! names; symlinks (old `docker save` links repeated layers) become aliases. Paths with
//! `..` are refused.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

pub struct Spool {
    dir: tempfile::TempDir,
    files: HashMap<String, PathBuf>,
    aliases: HashMap<String, String>,
}

/// `a/./b/` -> `a/b`; `..` is an error.
fn normalize(path: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::CurDir | Component::RootDir => {}
            _ => {
                return Err(Error::archive(format!(
                    "entry {} escapes the archive",
                    path.display()
                )))
            }
        }
    }
    Ok(parts.join("/"))
}

impl Spool {
    /// Read the whole (maybe compressed) archive into `scratch`.
    pub fn read(input: impl Read, scratch: tempfile::TempDir) -> Result<Spool> {
        let mut spool = Spool {
            dir: scratch,
            files: HashMap::new(),
            aliases: HashMap::new(),
        };
        let mut archive = tar::Archive::new(crate::unpack::decompressed(input)?);
        let entries = archive
            .entries()
            .map_err(|e| Error::archive(format!("not a tar archive: {e}")))?;
        for (n, entry) in entries.enumerate() {
            let mut entry = entry.map_err(|e| Error::archive(format!("corrupt archive: {e}")))?;
            let raw = entry
                .path()
                .map_err(|e| Error::archive(format!("bad entry name: {e}")))?
                .into_owned();
            let name = normalize(&raw)?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = spool.dir.path().join(n.to_string());
                    let mut file =
                        std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
                    std::io::copy(&mut entry, &mut file).map_err(|e| {
                        Error::archive(format!("truncated or corrupt archive at {name}: {e}"))
                    })?;
                    spool.files.insert(name, path);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let Some(target) = entry.link_name().ok().flatten() else {
                        continue;
                    };
                    let base = if entry.header().entry_type() == tar::EntryType::Link {
                        PathBuf::new()
                    } else {
                        raw.parent().map(Path::to_path_buf).unwrap_or_default()
                    };
                    let joined = resolve_relative(&base, &target)?;
                    spool.aliases.insert(name, joined);
                }
                _ => {}
            }
        }
        Ok(spool)
    }

    /// The spooled file for archive path `name`, following aliases.
    pub fn file(&self, name: &str) -> Result<&Path> {
        let mut current = normalize(Path::new(name))?;
        for _ in 0..16 {
            if let Some(p) = self.files.get(&current) {
                return Ok(p);
            }
            match self.aliases.get(&current) {
                Some(next) => current = next.clone(),
                None => break,
            }
        }
        Err(Error::archive(format!("the archive has no file {name:?}")))
    }

    pub fn has(&self, name: &str) -> bool {
        self.file(name).is_ok()
    }

    /// A small JSON file of the archive.
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        let path = self.file(name)?;
        let meta = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
        if meta.len() > 16 * 1024 * 1024 {
            return Err(Error::archive(format!(
                "{name} is too large ({} bytes)",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::archive(format!("{name} is not valid JSON: {e}")))
    }
}

/// `base/target` normalized within the archive (symlink targets may use `..` to go up, but
/// not above the archive root).
fn resolve_relative(base: &Path, target: &Path) -> Result<String> {
    let mut parts: Vec<String> = if target.is_absolute() {
        Vec::new()
    } else {
        base.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    };
    for c in target.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::ParentDir if parts.pop().is_none() => {
                return Err(Error::archive(format!(
                    "link target {} escapes the archive",
                    target.display()
                )));
            }
            _ => {}
        }
    }
    Ok(parts.join("/"))
}

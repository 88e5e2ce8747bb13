//! The content store: blobs by digest under `blobs/sha256/<hex>`.
//!
//! A blob is written to `ingest/` first, hashed as it is written, fsynced, checked against
//! the digest it must have, and only then renamed into place (and the directory fsynced): a
//! blob under `blobs/` is always whole and correct. A crash leaves at most files in
//! `ingest/`, which [`ContentStore::clean_ingest`] removes at start.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync", dir, e))
}

/// The digest content hashed to must be the one it was announced with.
fn verify(expected: Option<&Digest>, actual: &Digest, what: &str) -> Result<()> {
    match expected {
        Some(e) if e != actual => Err(Error::DigestMismatch {
            what: what.into(),
            expected: e.to_string(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<ContentStore> {
        for dir in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        }
        Ok(ContentStore { root: root.into() })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let p = self.path(digest);
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| Error::io("stat", p, e))
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.path(digest);
        File::open(&p).map_err(|e| Error::io("open blob", p, e))
    }

    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.path(digest);
        fs::read(&p).map_err(|e| Error::io("read blob", p, e))
    }

    /// Store `reader`'s bytes; they must hash to `expected` if given. Returns the digest.
    pub fn write(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<Digest> {
        let mut ingest = self.ingest()?;
        std::io::copy(reader, &mut ingest).map_err(|e| Error::io("write blob for", what, e))?;
        ingest.commit(expected, what)
    }

    /// A blob being written piece by piece (a download), committed once whole.
    pub fn ingest(&self) -> Result<Ingest> {
        let dir = self.root.join("ingest");
        let tmp =
            tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io("create in", &dir, e))?;
        Ok(Ingest {
            store: self.clone(),
            writer: HashingWriter::new(tmp),
        })
    }

    /// Link the file at `path` (on the same filesystem) into the store after hashing it; it
    /// must hash to `expected` if given. The file itself is left where it is.
    pub fn adopt(&self, path: &Path, expected: Option<&Digest>, what: &str) -> Result<Digest> {
        let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let mut hashing = crate::digest::HashingReader::new(&mut file);
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(|e| Error::io("read", path, e))?;
        let digest = Digest::from_hasher(hashing.hasher);
        verify(expected, &digest, what)?;
        let target = self.path(&digest);
        if target.exists() {
            return Ok(digest);
        }
        file.sync_all().map_err(|e| Error::io("fsync", path, e))?;
        match fs::hard_link(path, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(digest),
            Err(_) => {
                // Another filesystem: copy through ingest like any other write.
                let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
                return self.write(&mut f, Some(&digest), what);
            }
        }
        fsync_dir(target.parent().unwrap_or(&self.root))?;
        Ok(digest)
    }

    pub fn write_bytes(&self, bytes: &[u8], what: &str) -> Result<Digest> {
        self.write(&mut &bytes[..], None, what)
    }

    /// Remove a blob (absent is fine).
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        let p = self.path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove blob", p, e)),
        }
    }

    /// Every stored digest.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("blobs/sha256");
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("read", &dir, e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| {
                Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy())).ok()
            })
            .collect())
    }

    /// Drop what interrupted writes left in `ingest/`.
    pub fn clean_ingest(&self) -> Result<usize> {
        let dir = self.root.join("ingest");
        let mut n = 0;
        for e in fs::read_dir(&dir)
            .map_err(|e| Error::io("read", &dir, e))?
            .flatten()
        {
            if fs::remove_file(e.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A blob being written: hashed as it is written, visible in the store only after
/// [`Ingest::commit`]; dropped uncommitted, it leaves nothing.
pub struct Ingest {
    store: ContentStore,
    writer: HashingWriter<tempfile::NamedTempFile>,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

impl Ingest {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.writer.written
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.writer.hasher.clone())
    }

    /// Check the digest (when one is expected), fsync and move the blob into place.
    pub fn commit(self, expected: Option<&Digest>, what: &str) -> Result<Digest> {
        let w = self.writer;
        let digest = Digest::from_hasher(w.hasher);
        verify(expected, &digest, what)?;
        let target = self.store.path(&digest);
        if target.exists() {
            return Ok(digest);
        }
        w.inner
            .as_file()
            .sync_all()
            .map_err(|e| Error::io("fsync", w.inner.path(), e))?;
        w.inner
            .persist(&target)
            .map_err(|e| Error::io("rename into", &target, e.error))?;
        fsync_dir(target.parent().unwrap_or(&self.store.root))?;
        Ok(digest)
    }
}

/// A blob's bytes written to a writer (for save).
pub fn copy_blob(store: &ContentStore, digest: &Digest, out: &mut dyn Write) -> Result<u64> {
    let mut f = store.open_blob(digest)?;
    std::io::copy(&mut f, out).map_err(|e| Error::io("copy blob", store.path(digest), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_atomic_writes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = ContentStore::open(tmp.path()).expect("open");
        let d = store.write_bytes(b"hello", "test").expect("write");
        assert_eq!(store.read(&d).expect("read"), b"hello");
        let wrong = Digest::of(b"other");
        let err = store
            .write(&mut &b"hello!"[..], Some(&wrong), "layer x")
            .expect_err("mismatch");
        assert!(err.to_string().contains("layer x"), "{err}");
        assert_eq!(store.list().expect("list"), vec![d]);
        assert_eq!(
            fs::read_dir(tmp.path().join("ingest"))
                .expect("ingest")
                .count(),
            0
        );
    }
}

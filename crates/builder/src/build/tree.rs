//! What COPY, ADD and `RUN --mount=type=bind` read from: a tree of files addressed by paths
//! relative to its root. The build context is one (an index of the client's tar, read from
//! the stream, its contents kept in one spool file: nothing unpacked), a stage's or an
//! image's root mounted as an overlay is another ([`HostTree`]). Paths given to a tree are
//! already resolved inside it ([`resolve`]); "" is the root.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Sha256;

use crate::error::{Error, Result};

/// The kinds of file a tree holds (devices are never copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Other,
}

/// What COPY and the cache key take from a file's metadata (never its inode or ctime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (0o7777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
}

impl Meta {
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
}

/// A tree of files COPY can read.
pub trait Tree: Sync {
    /// The entry at `rel` itself (a symlink is not followed); None when there is none.
    fn stat(&self, rel: &str) -> Option<Meta>;
    /// A symlink's target.
    fn read_link(&self, rel: &str) -> Result<String>;
    /// The names in directory `rel`, sorted.
    fn list(&self, rel: &str) -> Result<Vec<String>>;
    /// A regular file's content.
    fn open(&self, rel: &str) -> Result<Box<dyn Read + '_>>;
    /// Add what identifies a regular file's content to `h`.
    fn hash_content(&self, rel: &str, h: &mut Sha256) -> Result<()>;
    /// A regular file's content digest, when the tree knows it without reading the file.
    fn content_id(&self, _rel: &str) -> Option<[u8; 32]> {
        None
    }
    /// Write a regular file's content to a new file at `to` (on the host).
    fn copy_file(&self, rel: &str, to: &Path) -> Result<()>;
}

/// `path` (absolute or relative to the root) resolved in `tree`: symlinks followed (the last
/// one only with `follow_last`), never leading above its root.
pub fn resolve(tree: &dyn Tree, path: &str, follow_last: bool) -> Result<String> {
    let readlink = |rel: &str| -> Result<Option<String>> {
        match tree.stat(rel) {
            Some(m) if m.kind == Kind::Symlink => tree.read_link(rel).map(Some),
            _ => Ok(None),
        }
    };
    super::fs::resolve_rel(path, follow_last, &readlink)
}

/// A directory on this host as a tree (a stage's or image's root mounted for COPY --from).
pub struct HostTree {
    pub root: PathBuf,
}

impl HostTree {
    fn path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }
}

impl Tree for HostTree {
    fn stat(&self, rel: &str) -> Option<Meta> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = std::fs::symlink_metadata(self.path(rel)).ok()?;
        let ft = m.file_type();
        let kind = if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Other
        };
        Some(Meta {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }

    fn read_link(&self, rel: &str) -> Result<String> {
        let p = self.path(rel);
        std::fs::read_link(&p)
            .map(|t| t.to_string_lossy().into_owned())
            .map_err(|e| Error::io("readlink", &p, e))
    }

    fn list(&self, rel: &str) -> Result<Vec<String>> {
        let p = self.path(rel);
        let mut names: Vec<String> = std::fs::read_dir(&p)
            .map_err(|e| Error::io("read", &p, e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn open(&self, rel: &str) -> Result<Box<dyn Read + '_>> {
        let p = self.path(rel);
        let f = std::fs::File::open(&p).map_err(|e| Error::io("open", &p, e))?;
        Ok(Box::new(f))
    }

    fn hash_content(&self, rel: &str, h: &mut Sha256) -> Result<()> {
        let p = self.path(rel);
        let mut f = self.open(rel)?;
        std::io::copy(&mut f, h).map_err(|e| Error::io("read", &p, e))?;
        Ok(())
    }

    fn copy_file(&self, rel: &str, to: &Path) -> Result<()> {
        std::fs::copy(self.path(rel), to)
            .map(drop)
            .map_err(|e| Error::io("copy to", to, e))
    }
}

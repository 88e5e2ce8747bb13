//! A layer from a directory of changes (an overlayfs upper directory): the tar, with
//! overlayfs' whiteouts (0/0 character devices) and opaque directories turned into the
//! OCI `.wh.` markers, stored as a blob and installed as the snapshot on top of a parent.
//! The builder's steps use it; so can commit.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::{ImageStore, NewLayer};

/// A layer made by [`store_layer_from_dir`].
#[derive(Debug, Clone)]
pub struct DirLayer {
    pub layer: NewLayer,
    /// Its ChainID on top of the parent given.
    pub chain_id: Digest,
    /// Bytes of file content.
    pub size: u64,
}

/// Write `dir` as a layer tar to `out`. `skip` names paths (relative, no leading `/`) left
/// out with what is under them. Returns the bytes of file content.
pub fn layer_from_dir(dir: &Path, skip: &dyn Fn(&Path) -> bool, out: impl Write) -> Result<u64> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut walk = Walk {
        root: dir.to_path_buf(),
        links: HashMap::new(),
        size: 0,
        skip,
    };
    walk.dir(&mut tar, Path::new(""))?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::io("write layer of", dir, e))?;
    Ok(walk.size)
}

/// Make a layer of `dir`, store its blob and install its snapshot above `parent` (the
/// ChainID of the layers below; None for a first layer). The image is committed later by
/// the caller with [`ImageStore::commit`].
pub fn store_layer_from_dir(
    store: &ImageStore,
    dir: &Path,
    parent: Option<&Digest>,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<DirLayer> {
    let mut ingest = store.content().ingest()?;
    layer_from_dir(dir, skip, &mut ingest)?;
    let diff_id = ingest.digest();
    let blob = ingest.commit(None, "layer")?;
    let chain_id = crate::store::chain_id(parent, &diff_id);
    let mut size = 0;
    if !store.snapshot_dir(&chain_id).is_dir() {
        let staging = store.staging_dir()?;
        let fs_dir = staging.path().join("fs");
        std::fs::create_dir(&fs_dir).map_err(|e| Error::io("create", &fs_dir, e))?;
        let unpacked = crate::unpack::unpack(store.content().open_blob(&blob)?, &fs_dir)?;
        size = unpacked.size;
        store.install_snapshot(staging, &chain_id)?;
    }
    Ok(DirLayer {
        layer: NewLayer {
            blob,
            media_type: crate::manifest::layer_media_type(crate::unpack::Compression::None)
                .to_string(),
            diff_id,
        },
        chain_id,
        size,
    })
}

struct Walk<'a> {
    root: PathBuf,
    /// (dev, inode) of files with several links -> the first path written.
    links: HashMap<(u64, u64), PathBuf>,
    size: u64,
    skip: &'a dyn Fn(&Path) -> bool,
}

fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer is valid for its length; the kernel writes at most that much.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(text) = std::str::from_utf8(name) else {
            continue;
        };
        // overlayfs' own attributes describe the upper directory, not the layer.
        if text.starts_with("trusted.overlay.") || text.starts_with("user.overlay.") {
            continue;
        }
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 65536];
        // SAFETY: as above.
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len >= 0 {
            value.truncate(len as usize);
            out.push((text.to_string(), value));
        }
    }
    out
}

fn opaque(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| {
            let Ok(n) = CString::new(*name) else {
                return false;
            };
            let mut v = [0u8; 2];
            // SAFETY: the buffer is valid for its length.
            let len = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), v.as_mut_ptr().cast(), 2) };
            len == 1 && v[0] == b'y'
        })
}

impl Walk<'_> {
    fn dir<W: Write>(&mut self, tar: &mut tar::Builder<W>, rel: &Path) -> Result<()> {
        let full = self.root.join(rel);
        let mut entries: Vec<_> = std::fs::read_dir(&full)
            .map_err(|e| Error::io("read", &full, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io("read", &full, e))?;
        entries.sort_by_key(|e| e.file_name());
        if !rel.as_os_str().is_empty() && opaque(&full) {
            self.marker(tar, &rel.join(".wh..wh..opq"))?;
        }
        for e in entries {
            let rel = rel.join(e.file_name());
            if (self.skip)(&rel) {
                continue;
            }
            self.entry(tar, &rel)?;
        }
        Ok(())
    }

    /// An empty regular file: a whiteout or opaque marker.
    fn marker<W: Write>(&mut self, tar: &mut tar::Builder<W>, rel: &Path) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, rel, std::io::empty())
            .map_err(|e| Error::io("write layer entry", rel, e))
    }

    fn entry<W: Write>(&mut self, tar: &mut tar::Builder<W>, rel: &Path) -> Result<()> {
        let full = self.root.join(rel);
        let meta = std::fs::symlink_metadata(&full).map_err(|e| Error::io("stat", &full, e))?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return self.marker(tar, &rel.with_file_name(format!(".wh.{name}")));
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(meta.uid().into());
        h.set_gid(meta.gid().into());
        h.set_mtime(meta.mtime().max(0) as u64);
        h.set_size(0);
        let x = xattrs(&full);
        if !x.is_empty() {
            let pax: Vec<(String, Vec<u8>)> = x
                .into_iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
                .collect();
            tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|e| Error::io("write layer entry", rel, e))?;
        }
        let io = |e| Error::io("write layer entry", rel, e);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut h, rel, std::io::empty()).map_err(io)?;
            return self.dir(tar, rel);
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(&full).map_err(|e| Error::io("readlink", &full, e))?;
            h.set_entry_type(tar::EntryType::Symlink);
            return tar.append_link(&mut h, rel, &target).map_err(io);
        }
        if !ft.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                return tar.append_link(&mut h, rel, &first).map_err(io);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = std::fs::File::open(&full).map_err(|e| Error::io("open", &full, e))?;
            self.size += meta.len();
            return tar.append_data(&mut h, rel, f).map_err(io);
        }
        let kind = if ft.is_fifo() {
            tar::EntryType::Fifo
        } else if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            // Sockets have no tar form; Docker leaves them out too.
            return Ok(());
        };
        h.set_entry_type(kind);
        let rdev = meta.rdev();
        h.set_device_major(libc::major(rdev)).map_err(io)?;
        h.set_device_minor(libc::minor(rdev)).map_err(io)?;
        tar.append_data(&mut h, rel, std::io::empty()).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_opaque_links_and_skips() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        std::fs::create_dir_all(root.join("etc/sub")).expect("mkdir");
        std::fs::write(root.join("etc/a"), "hello").expect("write");
        std::fs::hard_link(root.join("etc/a"), root.join("etc/b")).expect("link");
        std::os::unix::fs::symlink("a", root.join("etc/c")).expect("symlink");
        std::fs::write(root.join("skipme"), "x").expect("write");
        nix::sys::stat::mknod(
            &root.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .expect("mknod (root)");
        let c = CString::new(root.join("etc/sub").as_os_str().as_bytes()).expect("cstring");
        let n = CString::new("trusted.overlay.opaque").expect("cstring");
        // SAFETY: valid C strings and buffer.
        let r = unsafe { libc::setxattr(c.as_ptr(), n.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
        assert_eq!(r, 0, "setxattr (root)");
        let mut out = Vec::new();
        let size =
            layer_from_dir(root, &|p: &Path| p == Path::new("skipme"), &mut out).expect("layer");
        assert_eq!(size, 5);
        let mut ar = tar::Archive::new(out.as_slice());
        let mut seen = Vec::new();
        for e in ar.entries().expect("entries") {
            let e = e.expect("entry");
            let kind = e.header().entry_type();
            let path = e.path().expect("path").display().to_string();
            let link = e
                .link_name()
                .ok()
                .flatten()
                .map(|l| l.display().to_string());
            seen.push((path, kind, link));
        }
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "etc",
                "etc/a",
                "etc/b",
                "etc/c",
                "etc/.wh.gone",
                "etc/sub",
                "etc/sub/.wh..wh..opq"
            ]
        );
        assert_eq!(seen[2].1, tar::EntryType::Link);
        assert_eq!(seen[2].2.as_deref(), Some("etc/a"));
        assert_eq!(seen[3].1, tar::EntryType::Symlink);
        assert_eq!(seen[4].1, tar::EntryType::Regular);
    }
}

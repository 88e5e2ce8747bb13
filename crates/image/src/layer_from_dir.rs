//! A layer from a directory of changes (an overlayfs upper directory): its tar in the
//! layer's form (tarball.rs's TreeWriter: whiteouts and opaque directories as OCI `.wh.`
//! markers, hard links, xattrs), stored as a blob and installed as the snapshot on top of a
//! parent. The builder's steps store it here; `docker commit` writes the same tar into
//! layer.rs, which also unpacks it in the same pass.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::{ImageStore, NewLayer};
use crate::tarball::{TreeOptions, TreeWriter};

/// A layer made by [`store_layer_from_dir`].
#[derive(Debug, Clone)]
pub struct DirLayer {
    pub layer: NewLayer,
    /// Its ChainID on top of the parent given.
    pub chain_id: Digest,
    /// Bytes of file content.
    pub size: u64,
}

/// Write `dir` as a layer tar to `out`. `skip_empty` names paths (relative, no leading `/`)
/// left out when they are an empty directory or an empty file (the mount points a runtime
/// made). Returns the bytes of file content.
pub fn layer_from_dir(dir: &Path, skip_empty: Vec<PathBuf>, out: impl Write) -> Result<u64> {
    let opts = TreeOptions {
        whiteouts: true,
        skip_empty,
    };
    let mut tree = TreeWriter::new(out, opts);
    if dir.is_dir() {
        let fd = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::io("open", dir, e.into()))?;
        tree.append_children(&fd, Path::new(""))?;
    }
    let bytes = tree.bytes;
    tree.finish()?
        .flush()
        .map_err(|e| Error::io("write layer of", dir, e))?;
    Ok(bytes)
}

/// Make a layer of `dir`, store its blob and install its snapshot above `parent` (the
/// ChainID of the layers below; None for a first layer). The image is committed later by
/// the caller with [`ImageStore::commit`].
pub fn store_layer_from_dir(
    store: &ImageStore,
    dir: &Path,
    parent: Option<&Digest>,
    skip_empty: Vec<PathBuf>,
) -> Result<DirLayer> {
    let mut ingest = store.content().ingest()?;
    layer_from_dir(dir, skip_empty, &mut ingest)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn whiteouts_opaque_links_and_skips() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        std::fs::create_dir_all(root.join("etc/sub")).expect("mkdir");
        std::fs::write(root.join("etc/a"), "hello").expect("write");
        std::fs::hard_link(root.join("etc/a"), root.join("etc/b")).expect("link");
        std::os::unix::fs::symlink("a", root.join("etc/c")).expect("symlink");
        std::fs::write(root.join("skipme"), "").expect("write");
        std::fs::write(root.join("kept"), "").expect("write");
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
        let size = layer_from_dir(
            root,
            vec![PathBuf::from("skipme"), PathBuf::from("etc/a")],
            &mut out,
        )
        .expect("layer");
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
                "etc/sub/.wh..wh..opq",
                "kept"
            ]
        );
        assert_eq!(seen[2].1, tar::EntryType::Link);
        assert_eq!(seen[2].2.as_deref(), Some("etc/a"));
        assert_eq!(seen[3].1, tar::EntryType::Symlink);
        assert_eq!(seen[4].1, tar::EntryType::Regular);
    }
}

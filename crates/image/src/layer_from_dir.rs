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
        pseudo_fs_empty: false,
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

/// As [`store_layer_from_dir`], for a directory of changes nothing uses afterwards (a build
/// step's overlay upper directory, unmounted): the directory becomes the snapshot itself,
/// moved into place, instead of a second copy unpacked from the tar just written (on this
/// kind of disk, making inodes is what a layer of many small files costs). First it keeps
/// only the extended attributes the tar keeps (`security.capability`, overlayfs' opaque
/// mark), so the snapshot is what unpacking the blob would give; overlayfs' own marks on
/// copied-up directories (origin, impure) do not belong in a lower layer. When the move
/// cannot be done (another filesystem), the blob is unpacked as usual.
pub fn store_layer_moving_dir(
    store: &ImageStore,
    dir: &Path,
    parent: Option<&Digest>,
) -> Result<DirLayer> {
    let mut ingest = store.content().ingest()?;
    let bytes = layer_from_dir(dir, Vec::new(), &mut ingest)?;
    let diff_id = ingest.digest();
    let blob = ingest.commit(None, "layer")?;
    let chain_id = crate::store::chain_id(parent, &diff_id);
    let mut size = 0;
    if !store.snapshot_dir(&chain_id).is_dir() {
        let staging = store.staging_dir()?;
        let fs_dir = staging.path().join("fs");
        let moved =
            dir.is_dir() && keep_layer_xattrs(dir).is_ok() && std::fs::rename(dir, &fs_dir).is_ok();
        size = if moved {
            bytes
        } else {
            std::fs::create_dir_all(&fs_dir).map_err(|e| Error::io("create", &fs_dir, e))?;
            crate::unpack::unpack(store.content().open_blob(&blob)?, &fs_dir)?.size
        };
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

/// The extended attributes a layer's tar carries; others are removed below `dir`.
const LAYER_XATTRS: &[&str] = &["security.capability", "trusted.overlay.opaque"];

/// Remove, from `path` and everything below it (symlinks not followed), the extended
/// attributes a layer tar does not carry.
fn keep_layer_xattrs(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::io(
            "list xattrs of",
            path,
            std::io::ErrorKind::InvalidInput.into(),
        )
    })?;
    let mut names = vec![0u8; 4096];
    // SAFETY: c is NUL-terminated; names is valid for names.len() bytes.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let n = usize::try_from(n)
        .map_err(|_| Error::io("list xattrs of", path, std::io::Error::last_os_error()))?;
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if LAYER_XATTRS.iter().any(|k| k.as_bytes() == name) {
            continue;
        }
        let cname = std::ffi::CString::new(name).map_err(|_| {
            Error::io(
                "remove xattr of",
                path,
                std::io::ErrorKind::InvalidInput.into(),
            )
        })?;
        // SAFETY: both strings are NUL-terminated.
        if unsafe { libc::lremovexattr(c.as_ptr(), cname.as_ptr()) } != 0 {
            return Err(Error::io(
                "remove xattr of",
                path,
                std::io::Error::last_os_error(),
            ));
        }
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io("stat", path, e))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(|e| Error::io("read", path, e))? {
            let entry = entry.map_err(|e| Error::io("read", path, e))?;
            keep_layer_xattrs(&entry.path())?;
        }
    }
    Ok(())
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

    fn set(path: &Path, name: &str, value: &[u8]) {
        let c = CString::new(path.as_os_str().as_bytes()).expect("cstring");
        let n = CString::new(name).expect("cstring");
        // SAFETY: valid C strings and buffer.
        let r = unsafe {
            libc::lsetxattr(
                c.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        assert_eq!(r, 0, "setxattr {name} (root)");
    }

    fn has(path: &Path, name: &str) -> bool {
        let f = std::fs::File::open(path).expect("open");
        crate::tarball::xattr(&f, name).is_some()
    }

    /// The moved directory is the snapshot, as unpacking its blob would make it: overlayfs'
    /// own marks gone, the opaque mark and capabilities kept.
    #[test]
    fn a_moved_upper_is_the_snapshot() {
        let d = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(&d.path().join("store")).expect("store");
        let upper = d.path().join("upper");
        std::fs::create_dir_all(upper.join("usr/bin")).expect("mkdir");
        std::fs::create_dir_all(upper.join("opaque")).expect("mkdir");
        std::fs::write(upper.join("usr/bin/tool"), "tool").expect("write");
        set(&upper.join("usr"), "trusted.overlay.origin", b"x");
        set(&upper.join("usr/bin"), "trusted.overlay.impure", b"y");
        set(&upper.join("opaque"), "trusted.overlay.opaque", b"y");
        // A capability set (v2, CAP_NET_RAW permitted and effective).
        let mut cap = vec![0u8; 20];
        cap[0..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
        cap[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes());
        set(&upper.join("usr/bin/tool"), "security.capability", &cap);
        let layer = store_layer_moving_dir(&store, &upper, None).expect("layer");
        assert!(!upper.exists(), "moved");
        assert_eq!(layer.size, 4);
        let snap = store.snapshot_dir(&layer.chain_id);
        assert_eq!(
            std::fs::read_to_string(snap.join("usr/bin/tool")).expect("read"),
            "tool"
        );
        assert!(!has(&snap.join("usr"), "trusted.overlay.origin"));
        assert!(!has(&snap.join("usr/bin"), "trusted.overlay.impure"));
        assert!(has(&snap.join("opaque"), "trusted.overlay.opaque"));
        assert!(has(&snap.join("usr/bin/tool"), "security.capability"));
        // The blob says the same.
        let out = d.path().join("unpacked");
        std::fs::create_dir(&out).expect("mkdir");
        crate::unpack::unpack(
            store.content().open_blob(&layer.layer.blob).expect("blob"),
            &out,
        )
        .expect("unpack");
        assert_eq!(
            std::fs::read_to_string(out.join("usr/bin/tool")).expect("read"),
            "tool"
        );
        assert!(has(&out.join("opaque"), "trusted.overlay.opaque"));
    }
}

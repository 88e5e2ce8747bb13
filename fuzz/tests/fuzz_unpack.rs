//! Fuzz the layer unpacker (berth_image::unpack) with hostile tars. Every case unpacks into
//! `dest` beside a sentinel directory `outside` that links in the tar point at; after it:
//! - nothing outside `dest` changed (no entry was written, linked or chowned through a
//!   symlink, a hardlink or `..`);
//! - if it succeeded: the DiffID is the digest of the uncompressed stream, and the tree is
//!   the one a small model of the unpacker's rules predicts (kinds, contents, link targets,
//!   device numbers, modes, owners, xattrs), which catches entries written into a stale or
//!   wrong directory.
//!
//! Runs as root (ownership, device nodes, trusted.* xattrs), on /dev/shm.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_fuzz::tar::{Entry, Kind, Layer};
use proptest::test_runner::TestCaseError;
use sha2::Digest as _;

type Comps = Vec<String>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
        xattrs: BTreeMap<String, Vec<u8>>,
    },
    File {
        data: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
        xattrs: BTreeMap<String, Vec<u8>>,
    },
    Symlink {
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    Dev {
        block: bool,
        major: u32,
        minor: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Fifo {
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// A directory entry: its path, mode, owner and xattrs.
type DirEntry = (Comps, u32, u32, u32, Vec<(String, Vec<u8>)>);

/// What the unpacker is expected to make of a layer it accepts, by its documented rules.
/// `None` where the model predicts a refusal (the real unpacker must then not succeed with a
/// different tree; the model is only compared when both succeed).
struct Model {
    tree: BTreeMap<Comps, Node>,
    /// Directory entries, whose owner, mode and xattrs are applied at the end.
    dir_entries: Vec<DirEntry>,
    size: u64,
    umask: u32,
}

fn comps_of(path: &[u8]) -> Option<Comps> {
    let mut out = Vec::new();
    for c in Path::new(std::ffi::OsStr::from_bytes(path)).components() {
        match c {
            Component::Normal(n) => out.push(String::from_utf8_lossy(n.as_bytes()).into_owned()),
            Component::CurDir | Component::RootDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

impl Model {
    fn is_dir(&self, c: &[String]) -> bool {
        matches!(self.tree.get(c), Some(Node::Dir { .. }))
    }

    fn has_children(&self, c: &[String]) -> bool {
        self.tree
            .range(c.to_vec()..)
            .nth(1)
            .is_some_and(|(k, _)| k.len() > c.len() && k.starts_with(c))
    }

    /// Remove what is at `c` (a directory only if empty); false when that fails.
    fn clear(&mut self, c: &[String]) -> bool {
        if self.is_dir(c) && self.has_children(c) {
            return false;
        }
        self.tree.remove(c);
        true
    }

    fn implicit_dir(&self) -> Node {
        Node::Dir {
            mode: 0o755 & !self.umask,
            uid: 0,
            gid: 0,
            xattrs: BTreeMap::new(),
        }
    }

    /// Apply one entry as the tar crate hands it over; None if the unpacker must refuse.
    fn apply(&mut self, e: &Entry, outside: &Path) -> Option<()> {
        let kind = match &e.kind {
            // A pax header of its own: the tar crate reads it as the next entry's.
            Kind::Other(b'x') => return Some(()),
            // Old-style regular file and the contiguous type are files.
            Kind::Other(0 | b'7') => Kind::File(Vec::new()),
            Kind::Other(b'g') => Kind::Other(b'g'),
            Kind::Other(_) => return None,
            k => k.clone(),
        };
        let comps = comps_of(e.path.as_bytes())?;
        let Some((name, parents)) = comps.split_last() else {
            return Some(());
        };
        for i in 1..=parents.len() {
            match self.tree.get(&parents[..i]) {
                None => {
                    let dir = self.implicit_dir();
                    self.tree.insert(parents[..i].to_vec(), dir);
                }
                Some(Node::Dir { .. }) => {}
                Some(_) => return None,
            }
        }
        if name == ".wh..wh..opq" {
            let parent = if parents.is_empty() {
                // The layer root: not in the tree, not compared.
                return Some(());
            } else {
                self.tree.get_mut(parents)?
            };
            if let Node::Dir { xattrs, .. } = parent {
                xattrs.insert("trusted.overlay.opaque".into(), b"y".to_vec());
            }
            return Some(());
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return None;
            }
            let mut at = parents.to_vec();
            at.push(hidden.to_string());
            if !self.clear(&at) {
                return None;
            }
            self.tree.insert(
                at,
                Node::Dev {
                    block: false,
                    major: 0,
                    minor: 0,
                    mode: 0,
                    uid: 0,
                    gid: 0,
                },
            );
            return Some(());
        }
        let uid = u32::try_from(e.uid).ok().filter(|u| *u != u32::MAX)?;
        let gid = u32::try_from(e.gid).ok().filter(|g| *g != u32::MAX)?;
        let mode = e.mode & 0o7777;
        let xattrs: BTreeMap<String, Vec<u8>> = e.xattrs.iter().cloned().collect();
        match kind {
            Kind::Dir => {
                if !self.is_dir(&comps) {
                    if !self.clear(&comps) {
                        return None;
                    }
                    let dir = self.implicit_dir();
                    self.tree.insert(comps.clone(), dir);
                }
                self.dir_entries
                    .push((comps, mode, uid, gid, e.xattrs.clone()));
            }
            Kind::File(data) => {
                if !self.clear(&comps) {
                    return None;
                }
                self.size += data.len() as u64;
                self.tree.insert(
                    comps,
                    Node::File {
                        data,
                        mode,
                        uid,
                        gid,
                        xattrs,
                    },
                );
            }
            Kind::Symlink(t) => {
                let target = t.bytes(true, outside);
                if target.is_empty() || !self.clear(&comps) {
                    return None;
                }
                self.tree.insert(comps, Node::Symlink { target, uid, gid });
            }
            Kind::Hardlink(t) => {
                let tcomps = comps_of(&t.bytes(false, outside))?;
                let (_, tparents) = tcomps.split_last()?;
                if (1..=tparents.len()).any(|i| !self.is_dir(&tparents[..i])) {
                    return None;
                }
                if !self.clear(&comps) {
                    return None;
                }
                let node = self.tree.get(&tcomps)?.clone();
                if matches!(node, Node::Dir { .. }) {
                    return None;
                }
                self.tree.insert(comps, node);
            }
            Kind::Char(major, minor) | Kind::Block(major, minor) => {
                if !self.clear(&comps) {
                    return None;
                }
                let block = matches!(kind, Kind::Block(..));
                self.tree.insert(
                    comps,
                    Node::Dev {
                        block,
                        major,
                        minor,
                        mode,
                        uid,
                        gid,
                    },
                );
            }
            Kind::Fifo => {
                if !self.clear(&comps) {
                    return None;
                }
                self.tree.insert(comps, Node::Fifo { mode, uid, gid });
            }
            Kind::Other(_) => {}
        }
        Some(())
    }

    /// Directory metadata, deepest first (entries of one directory in their order).
    fn finish(&mut self) -> Option<()> {
        let mut entries = std::mem::take(&mut self.dir_entries);
        entries.sort_by_key(|(c, ..)| std::cmp::Reverse(c.len()));
        for (c, m, u, g, x) in entries {
            match self.tree.get_mut(&c) {
                Some(Node::Dir {
                    mode,
                    uid,
                    gid,
                    xattrs,
                }) => {
                    (*mode, *uid, *gid) = (m, u, g);
                    xattrs.extend(x);
                }
                _ => return None,
            }
        }
        Some(())
    }
}

/// Whether the kernel takes `name` with a short value on a file of the scratch filesystem
/// (user.* on tmpfs needs Linux 6.6; security.capability needs a whole capability set).
fn xattr_settable(name: &str) -> bool {
    static USER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    match name {
        "trusted.t" | "trusted.overlay.opaque" => true,
        "user.a" => *USER.get_or_init(|| {
            let Ok(f) = tempfile::NamedTempFile::new_in(berth_fuzz::scratch_root()) else {
                return false;
            };
            let Ok(c) = CString::new(f.path().as_os_str().as_bytes()) else {
                return false;
            };
            // SAFETY: both strings are NUL-terminated; the value is 1 byte long.
            unsafe {
                libc::setxattr(c.as_ptr(), c"user.a".as_ptr(), b"1".as_ptr().cast(), 1, 0) == 0
            }
        }),
        _ => false,
    }
}

/// The model's verdict on a whole layer, reading the entries as the tar crate does: meta
/// headers (a pax header for xattrs or of its own, a GNU long name) belong to the next
/// entry; two of a kind before one entry, or one left at the end, make the tar corrupt.
fn predict(entries: &[Entry], outside: &Path) -> Option<Model> {
    let mut m = Model {
        tree: BTreeMap::new(),
        dir_entries: Vec::new(),
        size: 0,
        umask: umask(),
    };
    let mut pax = false;
    let mut long_name: Option<String> = None;
    for e in entries {
        if !e.xattrs.is_empty() {
            if pax {
                return None;
            }
            pax = true;
        }
        if e.long_name || e.path.len() > 100 {
            if long_name.is_some() {
                return None;
            }
            long_name = Some(e.path.clone());
        }
        if e.kind == Kind::Other(b'x') {
            if pax {
                return None;
            }
            pax = true;
            continue;
        }
        let path = long_name.take().unwrap_or_else(|| e.path.clone());
        pax = false;
        let takes_xattrs = matches!(e.kind, Kind::File(_) | Kind::Dir | Kind::Other(0 | b'7'));
        let whiteout = path
            .rsplit('/')
            .find(|c| !c.is_empty())
            .is_some_and(|n| n.starts_with(".wh."));
        if takes_xattrs && !whiteout && e.xattrs.iter().any(|(k, _)| !xattr_settable(k)) {
            m.apply(&Entry { path, ..e.clone() }, outside)?;
            return None;
        }
        m.apply(&Entry { path, ..e.clone() }, outside)?;
    }
    if pax || long_name.is_some() {
        return None;
    }
    m.finish()?;
    Some(m)
}

fn xattrs_of(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return out;
    };
    let mut names = vec![0u8; 4096];
    // SAFETY: c is NUL-terminated; names is writable for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return out;
    }
    for name in names[..n as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let Ok(cn) = CString::new(name) else { continue };
        let mut value = vec![0u8; 4096];
        // SAFETY: both strings are NUL-terminated; value is writable for its length.
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cn.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len >= 0 {
            value.truncate(len as usize);
            out.insert(String::from_utf8_lossy(name).into_owned(), value);
        }
    }
    out
}

/// The tree under `root` as the model describes one.
fn read_tree(root: &Path, prefix: &mut Comps, out: &mut BTreeMap<Comps, Node>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        prefix.push(entry.file_name().to_string_lossy().into_owned());
        let (mode, uid, gid) = (meta.mode() & 0o7777, meta.uid(), meta.gid());
        let ft = meta.file_type();
        let node = if ft.is_dir() {
            read_tree(&path, prefix, out);
            Node::Dir {
                mode,
                uid,
                gid,
                xattrs: xattrs_of(&path),
            }
        } else if ft.is_file() {
            Node::File {
                data: std::fs::read(&path).unwrap_or_default(),
                mode,
                uid,
                gid,
                xattrs: xattrs_of(&path),
            }
        } else if ft.is_symlink() {
            Node::Symlink {
                target: std::fs::read_link(&path)
                    .map(|t| t.as_os_str().as_bytes().to_vec())
                    .unwrap_or_default(),
                uid,
                gid,
            }
        } else if ft.is_fifo() {
            Node::Fifo { mode, uid, gid }
        } else {
            let rdev = meta.rdev();
            Node::Dev {
                block: ft.is_block_device(),
                major: libc::major(rdev),
                minor: libc::minor(rdev),
                mode,
                uid,
                gid,
            }
        };
        out.insert(prefix.clone(), node);
        prefix.pop();
    }
}

/// Everything under `root` but `skip`, with what a write, link or chown would change.
fn snapshot(root: &Path, skip: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path == skip {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let content = if m.is_file() {
                format!(
                    "{:x}",
                    sha2::Sha256::digest(std::fs::read(&path).unwrap_or_default())
                )
            } else {
                format!("{:?}", std::fs::read_link(&path).ok())
            };
            out.insert(
                path.display().to_string(),
                format!(
                    "{:o} {}:{} nlink {} size {} mtime {} {content}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    m.nlink(),
                    m.size(),
                    m.mtime()
                ),
            );
            if m.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

fn fail(what: String) -> TestCaseError {
    TestCaseError::fail(what)
}

fn case(layer: Layer) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir_in(berth_fuzz::scratch_root()).map_err(|e| fail(e.to_string()))?;
    let dest = tmp.path().join("dest");
    let outside = tmp.path().join("outside");
    for d in [&dest, &outside, &outside.join("sub")] {
        std::fs::create_dir(d).map_err(|e| fail(e.to_string()))?;
    }
    std::fs::write(outside.join("victim"), b"victim").map_err(|e| fail(e.to_string()))?;
    let before = snapshot(tmp.path(), &dest);
    let tar = layer.tar(&outside);
    let result = berth_image::unpack::unpack(layer.stream(&outside).as_slice(), &dest);
    let after = snapshot(tmp.path(), &dest);
    if before != after {
        return Err(fail(format!(
            "the unpack changed files outside its target:\nbefore {before:#?}\nafter {after:#?}"
        )));
    }
    let unpacked = match result {
        Ok(u) => u,
        Err(e) if layer.intact() && predict(&layer.entries, &outside).is_some() => {
            return Err(fail(format!(
                "the unpacker refused a layer its rules accept: {e}"
            )));
        }
        Err(_) => return Ok(()),
    };
    UNPACKED.fetch_add(1, Ordering::Relaxed);
    let digest = format!("sha256:{:x}", sha2::Sha256::digest(&tar));
    if unpacked.diff_id.to_string() != digest {
        return Err(fail(format!(
            "DiffID {} is not the digest of the tar, {digest}",
            unpacked.diff_id
        )));
    }
    if !layer.intact() {
        return Ok(());
    }
    if let Some(model) = predict(&layer.entries, &outside) {
        COMPARED.fetch_add(1, Ordering::Relaxed);
        let mut real = BTreeMap::new();
        read_tree(&dest, &mut Vec::new(), &mut real);
        if real != model.tree {
            let diff: Vec<String> = real
                .keys()
                .chain(model.tree.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|k| real.get(*k) != model.tree.get(*k))
                .map(|k| {
                    format!(
                        "{}: unpacked {:?}, expected {:?}",
                        k.join("/"),
                        real.get(k),
                        model.tree.get(k)
                    )
                })
                .collect();
            return Err(fail(format!(
                "the unpacked tree is not the expected one:\n{}",
                diff.join("\n")
            )));
        }
        if unpacked.size != model.size {
            return Err(fail(format!(
                "size {} reported, {} bytes of files in the layer",
                unpacked.size, model.size
            )));
        }
    }
    Ok(())
}

/// How many cases unpacked, and how many of those were compared with the model (the
/// fuzzer's reach, printed).
static UNPACKED: AtomicU64 = AtomicU64::new(0);
static COMPARED: AtomicU64 = AtomicU64::new(0);

#[test]
fn unpack_hostile_layers() {
    berth_fuzz::check("unpack", 2000, berth_fuzz::tar::layer(10), case);
    eprintln!(
        "fuzz unpack: {} layers unpacked, {} of them compared with the model",
        UNPACKED.load(Ordering::Relaxed),
        COMPARED.load(Ordering::Relaxed)
    );
}

/// `docker cp` into a container (berth_image::unpack::extract): the same hostile tars go
/// into a directory that already holds a symlink out of it and a subdirectory, with
/// Docker's copy rules on; whatever the archive, nothing outside the target changes.
fn copy_case(layer: Layer) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir_in(berth_fuzz::scratch_root()).map_err(|e| fail(e.to_string()))?;
    let dest = tmp.path().join("dest");
    let outside = tmp.path().join("outside");
    for d in [&dest, &dest.join("sub"), &outside, &outside.join("sub")] {
        std::fs::create_dir(d).map_err(|e| fail(e.to_string()))?;
    }
    std::fs::write(outside.join("victim"), b"victim").map_err(|e| fail(e.to_string()))?;
    std::os::unix::fs::symlink(&outside, dest.join("escape")).map_err(|e| fail(e.to_string()))?;
    let before = snapshot(tmp.path(), &dest);
    let root: std::os::fd::OwnedFd = std::fs::File::open(&dest)
        .map_err(|e| fail(e.to_string()))?
        .into();
    let opts = berth_image::unpack::CopyOptions {
        no_overwrite_dir_non_dir: true,
        owner: Some((1000, 1000)),
    };
    let _ = berth_image::unpack::extract(layer.stream(&outside).as_slice(), &root, &opts);
    let after = snapshot(tmp.path(), &dest);
    if before != after {
        return Err(fail(format!(
            "the copy changed files outside its target:\nbefore {before:#?}\nafter {after:#?}"
        )));
    }
    Ok(())
}

#[test]
fn copy_hostile_archives_into_a_directory() {
    berth_fuzz::check("cp extract", 1000, berth_fuzz::tar::layer(10), copy_case);
}

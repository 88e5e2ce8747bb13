//! The build context: the tar the client sends (plain or gzip), read as a stream into an
//! index (every entry's path kept inside the context, its type, mode, owner and, for a
//! regular file, the SHA-256 of its content) while the files' contents go into one spool
//! file. Nothing is unpacked: COPY's cache keys come from the index, a COPY that runs
//! writes its files from the spool straight into the step's root, and only a
//! `RUN --mount=type=bind` of the context has the context unpacked (once per build).
//! `.dockerignore` is applied to the index (the docker CLI applies it already; clients that
//! do not are held to it too).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use super::tree::{self, Kind, Meta, Tree};
use crate::error::{Error, Result};
use crate::ignore::Ignore;

/// The largest Dockerfile read (BuildKit's frontend refuses far smaller files in practice).
pub const MAX_DOCKERFILE: u64 = 10 << 20;

/// A reader that ends a tar stream cut short of its last padding and end-of-archive
/// blocks: the docker CLI sends such a tar when it adds a Dockerfile from outside the
/// context (Go's reader, and so dockerd, accept it). At the end of the input it gives zeros
/// up to the next 512-byte block, then two zero blocks.
struct Padded<R> {
    inner: R,
    read: u64,
    pad: Option<u64>,
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pad.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.pad = Some((512 - self.read % 512) % 512 + 1024);
        }
        let left = self.pad.unwrap_or(0);
        let n = (left.min(buf.len() as u64)) as usize;
        buf[..n].fill(0);
        self.pad = Some(left - n as u64);
        Ok(n)
    }
}

/// One entry of the context.
#[derive(Debug, Clone)]
struct Entry {
    meta: Meta,
    /// A symlink's target.
    link: String,
    /// A regular file's content: its SHA-256 and where it is in the spool.
    digest: [u8; 32],
    offset: u64,
}

/// A build context, indexed.
pub struct Context {
    pub dockerfile: String,
    /// The Dockerfile's name as given (`-f`), for errors.
    pub dockerfile_name: String,
    pub ignore: Ignore,
    /// By path relative to the context's root ("" is the root); parents before children.
    entries: BTreeMap<String, Entry>,
    spool: std::fs::File,
    /// Where the context is unpacked when a step needs it on disk; whether it is.
    dir: PathBuf,
    unpacked: Mutex<bool>,
}

/// A part of the spool file, as a reader.
struct SpoolReader<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..n], self.pos)?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += got as u64;
        Ok(got)
    }
}

/// Writes to the spool and hashes what it writes.
struct Spooler<'a> {
    out: &'a mut BufWriter<std::fs::File>,
    hash: Sha256,
    written: u64,
}

impl Write for Spooler<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A path inside the context from a tar entry: relative, no `..`.
fn inside(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "the build context has an entry outside it: {}",
                    path.display()
                )))
            }
        }
    }
    Ok(out)
}

/// The header's metadata (mtime in whole seconds, as tar keeps it). A field left empty
/// reads as 0, as Go's reader (and so dockerd) reads it.
fn meta_of(h: &tar::Header, kind: Kind) -> Meta {
    let id = |v: std::io::Result<u64>| v.ok().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    Meta {
        kind,
        mode: h.mode().unwrap_or(0) & 0o7777,
        uid: id(h.uid()),
        gid: id(h.gid()),
        size: 0,
        mtime: (
            h.mtime()
                .ok()
                .and_then(|t| i64::try_from(t).ok())
                .unwrap_or(0),
            0,
        ),
    }
}

fn utf8(path: &Path) -> Result<String> {
    path.to_str().map(String::from).ok_or_else(|| {
        Error::Invalid(format!(
            "the build context entry {} is not a UTF-8 path (berth's builder takes UTF-8 names only)",
            path.display()
        ))
    })
}

fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(p, _)| p)
}

/// The context's tar as a stream of entries, plain or gzip; a tar cut short of its end
/// blocks is read (see [`Padded`]).
fn tar_stream<'a>(input: impl Read + 'a) -> Result<tar::Archive<Padded<Box<dyn Read + 'a>>>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered
        .fill_buf()
        .map_err(|e| Error::io("read", "the build context", e))?;
    let reader: Box<dyn Read + 'a> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(buffered))
    } else if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        return Err(Error::Invalid(
            "the build context is compressed with bzip2 or xz: send it as a plain or gzip tar"
                .into(),
        ));
    } else {
        Box::new(buffered)
    };
    Ok(tar::Archive::new(Padded {
        inner: reader,
        read: 0,
        pad: None,
    }))
}

impl Context {
    /// Read the context `input` (its contents spooled to a file in `scratch`, an existing
    /// private directory) and the Dockerfile `dockerfile` from it.
    pub fn read(input: impl Read, scratch: &Path, dockerfile: &str) -> Result<Context> {
        let spool_path = scratch.join("context.spool");
        let spool = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&spool_path)
            .map_err(|e| Error::io("create", &spool_path, e))?;
        let mut out = BufWriter::with_capacity(256 * 1024, spool);
        let mut entries = BTreeMap::new();
        let mut archive = tar_stream(input)?;
        let stream = archive
            .entries()
            .map_err(|e| Error::Invalid(format!("reading the build context: {e}")))?;
        let mut offset = 0;
        for entry in stream {
            let entry =
                entry.map_err(|e| Error::Invalid(format!("reading the build context: {e}")))?;
            if let Some((rel, e)) = Self::entry(entry, &entries, &mut out, &mut offset)? {
                entries.insert(rel, e);
            }
        }
        let spool = out
            .into_inner()
            .map_err(|e| Error::io("write", &spool_path, e.into_error()))?;
        add_parents(&mut entries)?;
        let mut ctx = Context {
            dockerfile: String::new(),
            dockerfile_name: dockerfile.to_string(),
            ignore: Ignore::default(),
            entries,
            spool,
            dir: scratch.join("context"),
            unpacked: Mutex::new(false),
        };
        ctx.dockerfile = ctx.read_dockerfile(dockerfile)?;
        let ignore = match ctx.find_file(".dockerignore") {
            Some(rel) => {
                let bytes = ctx.read_all(&rel)?;
                Ignore::parse(&String::from_utf8_lossy(&bytes))?
            }
            None => Ignore::default(),
        };
        ctx.ignore = ignore;
        ctx.apply_ignore();
        Ok(ctx)
    }

    /// One tar entry indexed (its content spooled); None for what a context does not keep
    /// (the root itself, devices, tar's global headers).
    fn entry<R: Read>(
        mut entry: tar::Entry<'_, R>,
        entries: &BTreeMap<String, Entry>,
        out: &mut BufWriter<std::fs::File>,
        offset: &mut u64,
    ) -> Result<Option<(String, Entry)>> {
        let raw = entry
            .path()
            .map_err(|e| Error::Invalid(format!("a build context entry: {e}")))?
            .into_owned();
        let rel = utf8(&inside(&raw)?)?;
        let header = entry.header().clone();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                Kind::File
            }
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::Link => {
                // A hard link: the same file again (COPY copies each name on its own).
                let target = entry
                    .link_name()
                    .map_err(|e| Error::Invalid(format!("the build context entry {rel}: {e}")))?
                    .ok_or_else(|| {
                        Error::Invalid(format!("the build context entry {rel}: a link to nothing"))
                    })?;
                let target = utf8(&inside(&target)?)?;
                let linked = entries
                    .get(&target)
                    .filter(|e| e.meta.kind == Kind::File)
                    .cloned()
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "the build context entry {rel} links to {target}, which is no earlier file"
                        ))
                    })?;
                return Ok(Some((rel, linked)));
            }
            // Devices have no place in a context (and COPY would give them to images).
            _ => return Ok(None),
        };
        let mut meta = meta_of(&header, kind);
        if rel.is_empty() && kind != Kind::Dir {
            return Err(Error::Invalid(
                "the build context's root entry is not a directory".into(),
            ));
        }
        let mut e = Entry {
            meta: meta.clone(),
            link: String::new(),
            digest: [0; 32],
            offset: *offset,
        };
        match kind {
            Kind::File => {
                let mut w = Spooler {
                    out,
                    hash: Sha256::new(),
                    written: 0,
                };
                std::io::copy(&mut entry, &mut w).map_err(|err| {
                    Error::Invalid(format!("reading the build context entry {rel}: {err}"))
                })?;
                meta.size = w.written;
                e.digest = w.hash.finalize().into();
                *offset += meta.size;
                e.meta = meta;
            }
            Kind::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|err| Error::Invalid(format!("the build context entry {rel}: {err}")))?
                    .ok_or_else(|| {
                        Error::Invalid(format!("the build context entry {rel}: a link to nothing"))
                    })?;
                e.link = utf8(&target)?;
            }
            _ => {}
        }
        Ok(Some((rel, e)))
    }

    /// The Dockerfile, read from the index.
    fn read_dockerfile(&self, dockerfile: &str) -> Result<String> {
        let missing =
            || Error::NotFound(format!("Cannot locate specified Dockerfile: {dockerfile}"));
        let name = crate::ignore::clean(dockerfile.trim_start_matches('/'));
        let rel = utf8(&inside(Path::new(&name))?)?;
        let rel = self.find_file(&rel).ok_or_else(missing)?;
        let size = self.entries.get(&rel).map_or(0, |e| e.meta.size);
        if size > MAX_DOCKERFILE {
            return Err(Error::Invalid(format!(
                "the Dockerfile {dockerfile} is too large ({size} bytes; berth reads at most {} MiB)",
                MAX_DOCKERFILE >> 20
            )));
        }
        String::from_utf8(self.read_all(&rel)?)
            .map_err(|_| Error::Invalid(format!("the Dockerfile {dockerfile} is not UTF-8 text")))
    }

    /// A regular file at `path` (symlinks followed inside the context), resolved.
    fn find_file(&self, path: &str) -> Option<String> {
        let rel = tree::resolve(self, path, true).ok()?;
        self.entries
            .get(&rel)
            .filter(|e| e.meta.kind == Kind::File)
            .map(|_| rel)
    }

    fn reader(&self, rel: &str) -> Result<SpoolReader<'_>> {
        let e = self
            .entries
            .get(rel)
            .filter(|e| e.meta.kind == Kind::File)
            .ok_or_else(|| Error::Step(format!("{rel}: not a file in the build context")))?;
        Ok(SpoolReader {
            file: &self.spool,
            pos: e.offset,
            end: e.offset + e.meta.size,
        })
    }

    fn read_all(&self, rel: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.reader(rel)?
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", rel, e))?;
        Ok(bytes)
    }

    /// Drop what `.dockerignore` excludes (the Dockerfile and .dockerignore too, once
    /// read, as moby does when they are excluded): an excluded directory goes with all it
    /// holds, unless an exception brings back something below it (it stays, holding only
    /// that).
    fn apply_ignore(&mut self) {
        if self.ignore.is_empty() {
            return;
        }
        let ignore = &self.ignore;
        let has_exceptions = ignore.has_exceptions();
        let mut dropped: Vec<String> = Vec::new();
        // Directories excluded but looked into for exceptions: kept only if something
        // below them is. (What is below an excluded directory is excluded itself: a pattern
        // matching a parent matches.)
        let mut kept_if_not_empty: Vec<String> = Vec::new();
        for (rel, e) in &self.entries {
            if rel.is_empty() || !ignore.excludes(rel) {
                continue;
            }
            if e.meta.kind == Kind::Dir && has_exceptions {
                kept_if_not_empty.push(rel.clone());
            } else {
                dropped.push(rel.clone());
            }
        }
        for rel in dropped {
            self.entries.remove(&rel);
        }
        // Deepest first: an emptied directory may empty its parent.
        for dir in kept_if_not_empty.into_iter().rev() {
            let prefix = format!("{dir}/");
            let empty = !self
                .entries
                .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                .next()
                .is_some_and(|(k, _)| k.starts_with(&prefix));
            if empty {
                self.entries.remove(&dir);
            }
        }
    }

    /// The context unpacked on disk (for `RUN --mount=type=bind` of it): done once per
    /// build, the first time a step asks.
    pub fn unpacked(&self) -> Result<&Path> {
        let mut done = self.unpacked.lock().unwrap_or_else(|e| e.into_inner());
        if !*done {
            self.unpack_all()?;
            *done = true;
        }
        Ok(&self.dir)
    }

    fn unpack_all(&self) -> Result<()> {
        use super::fs::lchown;
        for (rel, e) in &self.entries {
            let host = if rel.is_empty() {
                self.dir.clone()
            } else {
                self.dir.join(rel)
            };
            match e.meta.kind {
                Kind::Dir => match std::fs::create_dir(&host) {
                    Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(Error::io("create", &host, err))
                    }
                    _ => {}
                },
                Kind::File => self.copy_file(rel, &host)?,
                Kind::Symlink => std::os::unix::fs::symlink(&e.link, &host)
                    .map_err(|err| Error::io("symlink", &host, err))?,
                Kind::Fifo => nix::unistd::mkfifo(&host, nix::sys::stat::Mode::S_IRWXU)
                    .map_err(|err| Error::io("mkfifo", &host, err.into()))?,
                Kind::Other => continue,
            }
            lchown(&host, e.meta.uid, e.meta.gid)?;
        }
        // Modes and times last, deepest first: writing into a directory changes its mtime.
        for (rel, e) in self.entries.iter().rev() {
            if e.meta.kind == Kind::Symlink {
                continue;
            }
            let host = if rel.is_empty() {
                self.dir.clone()
            } else {
                self.dir.join(rel)
            };
            std::fs::set_permissions(
                &host,
                std::os::unix::fs::PermissionsExt::from_mode(e.meta.mode),
            )
            .map_err(|err| Error::io("chmod", &host, err))?;
            let t = nix::sys::time::TimeSpec::new(e.meta.mtime.0, e.meta.mtime.1);
            let _ = nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &host,
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            );
        }
        Ok(())
    }
}

/// Directories a tar names only through its files' paths are added (0755, root's); an
/// entry below a non-directory is refused (unpacking it would follow a symlink).
fn add_parents(entries: &mut BTreeMap<String, Entry>) -> Result<()> {
    let implied = Entry {
        meta: Meta {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: (0, 0),
        },
        link: String::new(),
        digest: [0; 32],
        offset: 0,
    };
    let mut missing = Vec::new();
    for rel in entries.keys().filter(|r| !r.is_empty()) {
        let mut p = parent(rel);
        loop {
            match entries.get(p) {
                Some(e) if e.meta.kind == Kind::Dir => break,
                Some(_) => {
                    return Err(Error::Invalid(format!(
                        "the build context entry {rel} is below {p}, which is no directory"
                    )))
                }
                None => missing.push(p.to_string()),
            }
            if p.is_empty() {
                break;
            }
            p = parent(p);
        }
    }
    for p in missing {
        entries.insert(p, implied.clone());
    }
    Ok(())
}

impl Tree for Context {
    fn stat(&self, rel: &str) -> Option<Meta> {
        self.entries.get(rel).map(|e| e.meta.clone())
    }

    fn read_link(&self, rel: &str) -> Result<String> {
        self.entries
            .get(rel)
            .filter(|e| e.meta.kind == Kind::Symlink)
            .map(|e| e.link.clone())
            .ok_or_else(|| Error::Step(format!("{rel}: not a symbolic link")))
    }

    fn list(&self, rel: &str) -> Result<Vec<String>> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        Ok(self
            .entries
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let name = &k[prefix.len()..];
                (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
            })
            .collect())
    }

    fn open(&self, rel: &str) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.reader(rel)?))
    }

    fn hash_content(&self, rel: &str, h: &mut Sha256) -> Result<()> {
        let e = self
            .entries
            .get(rel)
            .ok_or_else(|| Error::Step(format!("{rel}: not in the build context")))?;
        h.update(e.digest);
        Ok(())
    }

    fn content_id(&self, rel: &str) -> Option<[u8; 32]> {
        self.entries
            .get(rel)
            .filter(|e| e.meta.kind == Kind::File)
            .map(|e| e.digest)
    }

    fn copy_file(&self, rel: &str, to: &Path) -> Result<()> {
        let mut from = self.reader(rel)?;
        let mut f = std::fs::File::create(to).map_err(|e| Error::io("create", to, e))?;
        std::io::copy(&mut from, &mut f).map_err(|e| Error::io("write", to, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, body.as_bytes())
                .expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn indexes_reads_and_ignores() {
        let d = tempfile::tempdir().expect("tempdir");
        let t = tar_of(&[
            ("Dockerfile", "FROM x\n"),
            (
                ".dockerignore",
                "*.log\nsub\n!sub/keep\nempty\n!empty/nothing\n",
            ),
            ("a.log", "x"),
            ("sub/drop", "x"),
            ("sub/keep", "kept"),
            ("empty/drop", "x"),
            ("src/main.rs", "fn main(){}"),
        ]);
        let ctx = Context::read(t.as_slice(), d.path(), "Dockerfile").expect("context");
        assert_eq!(ctx.dockerfile, "FROM x\n");
        assert_eq!(
            ctx.list("").expect("list"),
            [".dockerignore", "Dockerfile", "src", "sub"]
        );
        assert_eq!(ctx.list("sub").expect("list"), ["keep"]);
        assert_eq!(ctx.stat("src").map(|m| m.kind), Some(Kind::Dir));
        // Nothing is on disk but the spool, until a step asks for the context unpacked.
        assert!(!d.path().join("context").exists());
        let dir = ctx.unpacked().expect("unpacked");
        assert_eq!(
            std::fs::read_to_string(dir.join("sub/keep")).expect("read"),
            "kept"
        );
        assert!(!dir.join("a.log").exists() && !dir.join("empty").exists());
        let e = Context::read(t.as_slice(), tempfile::tempdir().expect("t").path(), "Nope")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("Cannot locate specified Dockerfile: Nope")
        );
    }

    /// The cache key of a COPY from the context: what changes the copy changes it, what
    /// does not (mtimes; owners under --chown) leaves it.
    #[test]
    fn content_digests_from_the_stream() {
        use super::super::copy::{content_digest, find_sources};
        let entry = |name: &str, body: &str, mode: u32, uid: u64, mtime: u64| {
            (name.to_string(), body.to_string(), mode, uid, mtime)
        };
        let digest = |files: &[(String, String, u32, u64, u64)], owners: bool| {
            let mut b = tar::Builder::new(Vec::new());
            for (name, body, mode, uid, mtime) in files {
                let mut h = tar::Header::new_gnu();
                h.set_size(body.len() as u64);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_mtime(*mtime);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, name, body.as_bytes())
                    .expect("append");
            }
            let t = b.into_inner().expect("tar");
            let d = tempfile::tempdir().expect("tempdir");
            let ctx = Context::read(t.as_slice(), d.path(), "Dockerfile").expect("context");
            let s = find_sources(&ctx, &["src".to_string()], true).expect("sources");
            content_digest(&ctx, &s, &Ignore::default(), owners).expect("digest")
        };
        let base = vec![
            entry("Dockerfile", "FROM x", 0o644, 0, 1),
            entry("src/a", "a", 0o644, 0, 1),
            entry("src/b", "b", 0o644, 0, 1),
        ];
        let d0 = digest(&base, true);
        let mut touched = base.clone();
        touched[1].4 = 99;
        touched[0].1 = "FROM y".into();
        assert_eq!(
            digest(&touched, true),
            d0,
            "mtimes and other files do not count"
        );
        let mut changed = base.clone();
        changed[1].1 = "A".into();
        assert_ne!(digest(&changed, true), d0, "content");
        let mut mode = base.clone();
        mode[1].2 = 0o755;
        assert_ne!(digest(&mode, true), d0, "mode");
        let mut owner = base.clone();
        owner[2].3 = 1000;
        assert_ne!(digest(&owner, true), d0, "owner");
        assert_eq!(
            digest(&owner, false),
            digest(&base, false),
            "owner under --chown"
        );
        let mut added = base.clone();
        added.push(entry("src/c", "", 0o644, 0, 1));
        assert_ne!(digest(&added, true), d0, "a new file");
        assert_ne!(digest(&base[..2], true), d0, "a removed file");
    }

    #[test]
    fn a_tar_cut_short_of_its_padding_is_read() {
        let t = tar_of(&[("Dockerfile", "FROM x\n"), (".d", "short")]);
        // The last entry's data ends without its padding and the end-of-archive blocks.
        let cut = &t[..512 + 512 + 512 + 5];
        let d = tempfile::tempdir().expect("tempdir");
        let ctx = Context::read(cut, d.path(), ".d").expect("context");
        assert_eq!(ctx.dockerfile, "short");
    }

    #[test]
    fn hostile_paths_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // The tar crate refuses to write `..`; write the name into the header directly.
        let name = b"../escape";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &b"x"[..]).expect("append");
        let t = b.into_inner().expect("tar");
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().join("ctx");
        std::fs::create_dir(&root).expect("mkdir");
        let e = Context::read(t.as_slice(), &root, "Dockerfile")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("outside it: ../escape"), "{e}");
        assert!(!d.path().join("escape").exists());
    }
}

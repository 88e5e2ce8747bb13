//! The build context: the tar the client sends (plain or gzip), unpacked into a private
//! directory with every path kept inside it; the Dockerfile read from it; `.dockerignore`
//! applied (the docker CLI applies it already; clients that do not are held to it too).

use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

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

/// An unpacked context.
pub struct Context {
    pub root: PathBuf,
    pub dockerfile: String,
    /// The Dockerfile's name as given (`-f`), for errors.
    pub dockerfile_name: String,
    pub ignore: Ignore,
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

impl Context {
    /// Unpack `input` into `root` (an empty directory) and read `dockerfile` from it.
    pub fn unpack(input: impl Read, root: &Path, dockerfile: &str) -> Result<Context> {
        let mut buffered = BufReader::with_capacity(256 * 1024, input);
        let head = buffered
            .fill_buf()
            .map_err(|e| Error::io("read", "the build context", e))?;
        let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(buffered))
        } else if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
            return Err(Error::Invalid(
                "the build context is compressed with bzip2 or xz: send it as a plain or gzip tar"
                    .into(),
            ));
        } else {
            Box::new(buffered)
        };
        let mut archive = tar::Archive::new(Padded {
            inner: reader,
            read: 0,
            pad: None,
        });
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(false);
        archive.set_overwrite(true);
        let entries = archive
            .entries()
            .map_err(|e| Error::Invalid(format!("reading the build context: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| Error::Invalid(format!("reading the build context: {e}")))?;
            let raw = entry
                .path()
                .map_err(|e| Error::Invalid(format!("a build context entry: {e}")))?
                .into_owned();
            let rel = inside(&raw)?;
            if rel.as_os_str().is_empty() {
                continue;
            }
            if matches!(
                entry.header().entry_type(),
                tar::EntryType::Char | tar::EntryType::Block
            ) {
                // Devices have no place in a context (and COPY would give them to images).
                continue;
            }
            let ok = entry.unpack_in(root).map_err(|e| {
                Error::Invalid(format!("the build context entry {}: {e}", raw.display()))
            })?;
            if !ok {
                return Err(Error::Invalid(format!(
                    "the build context has an entry outside it: {}",
                    raw.display()
                )));
            }
        }
        let name = crate::ignore::clean(dockerfile.trim_start_matches('/'));
        let path = root.join(inside(Path::new(&name))?);
        let meta = std::fs::metadata(&path).map_err(|_| {
            Error::NotFound(format!("Cannot locate specified Dockerfile: {dockerfile}"))
        })?;
        if meta.len() > MAX_DOCKERFILE {
            return Err(Error::Invalid(format!(
                "the Dockerfile {dockerfile} is too large ({} bytes; berth reads at most {} MiB)",
                meta.len(),
                MAX_DOCKERFILE >> 20
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::Invalid(format!("the Dockerfile {dockerfile} is not UTF-8 text"))
        })?;
        let ignore = match std::fs::read_to_string(root.join(".dockerignore")) {
            Ok(t) => Ignore::parse(&t)?,
            Err(_) => Ignore::default(),
        };
        let ctx = Context {
            root: root.to_path_buf(),
            dockerfile: text,
            dockerfile_name: dockerfile.to_string(),
            ignore,
        };
        ctx.apply_ignore()?;
        Ok(ctx)
    }

    /// Remove what `.dockerignore` excludes (the Dockerfile and .dockerignore too, once
    /// read, as moby does when they are excluded).
    fn apply_ignore(&self) -> Result<()> {
        if self.ignore.is_empty() {
            return Ok(());
        }
        self.prune(Path::new(""))
    }

    fn prune(&self, rel: &Path) -> Result<()> {
        let dir = self.root.join(rel);
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("read", &dir, e))?;
        for e in entries.flatten() {
            let child = rel.join(e.file_name());
            let text = child.to_string_lossy();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if self.ignore.excludes(&text) {
                // An exception may bring back something below an excluded directory.
                if is_dir && self.ignore.has_exceptions() {
                    self.prune(&child)?;
                    if std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_none()) {
                        let _ = std::fs::remove_dir(e.path());
                    }
                    continue;
                }
                let r = if is_dir {
                    std::fs::remove_dir_all(e.path())
                } else {
                    std::fs::remove_file(e.path())
                };
                r.map_err(|err| Error::io("remove", e.path(), err))?;
            } else if is_dir {
                self.prune(&child)?;
            }
        }
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
    fn unpacks_reads_and_ignores() {
        let d = tempfile::tempdir().expect("tempdir");
        let t = tar_of(&[
            ("Dockerfile", "FROM x\n"),
            (".dockerignore", "*.log\nsub\n!sub/keep\n"),
            ("a.log", "x"),
            ("sub/drop", "x"),
            ("sub/keep", "x"),
            ("src/main.rs", "fn main(){}"),
        ]);
        let ctx = Context::unpack(t.as_slice(), d.path(), "Dockerfile").expect("context");
        assert_eq!(ctx.dockerfile, "FROM x\n");
        assert!(!d.path().join("a.log").exists());
        assert!(!d.path().join("sub/drop").exists());
        assert!(d.path().join("sub/keep").exists());
        assert!(d.path().join("src/main.rs").exists());
        let e = Context::unpack(t.as_slice(), tempfile::tempdir().expect("t").path(), "Nope")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("Cannot locate specified Dockerfile: Nope")
        );
    }

    #[test]
    fn a_tar_cut_short_of_its_padding_is_read() {
        let t = tar_of(&[("Dockerfile", "FROM x\n"), (".d", "short")]);
        // The last entry's data ends without its padding and the end-of-archive blocks.
        let cut = &t[..512 + 512 + 512 + 5];
        let d = tempfile::tempdir().expect("tempdir");
        let ctx = Context::unpack(cut, d.path(), ".d").expect("context");
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
        let e = Context::unpack(t.as_slice(), &root, "Dockerfile")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("outside it: ../escape"), "{e}");
        assert!(!d.path().join("escape").exists());
    }
}

//! COPY and ADD with Docker's rules: sources relative to the context (or a stage's root),
//! wildcards matched per path segment, a directory's contents copied (not the directory),
//! a destination ending in `/` (or several sources, or an existing directory) taken as a
//! directory, relative destinations under WORKDIR, owner root unless `--chown`, `--chmod`,
//! `--exclude`, `--parents`, heredoc sources, ADD of a local tar extracted, ADD of a URL.
//! Every destination path is resolved inside the image's root.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::fs::{lchown, mkdir_all, resolve_in_root};
use super::tree::{resolve, Kind, Tree};
use crate::error::{Error, Result};
use crate::ignore::{clean, Ignore};
use crate::parser::Heredoc;

/// One source of a COPY, found.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file or directory of the tree the COPY reads: `path` resolved in it (symlinks
    /// followed), `rel` as the Dockerfile matched it (for `--parents` and a file's name).
    Path { path: String, rel: String },
    /// A heredoc's text, or a downloaded URL's body: a file to write.
    Data {
        name: String,
        bytes: Vec<u8>,
        mode: u32,
    },
}

/// What a COPY needs beyond its sources.
pub struct CopyOptions<'a> {
    pub dest: String,
    pub workdir: &'a str,
    pub owner: Option<(u32, u32)>,
    pub chmod: Option<u32>,
    pub parents: bool,
    /// Extract local tar archives (ADD).
    pub extract: bool,
    /// Where files already copied by earlier builds are kept, to be hard-linked instead of
    /// written again (only when copying into a plain directory, never through an overlay).
    pub pool: Option<&'a Pool>,
}

/// Files a COPY from the context wrote, kept by what makes them what they are in a layer
/// (content digest, mode, owner, mtime): a later COPY that takes the same file links it
/// instead of making a new inode. Layers never change in place (overlayfs copies a lower
/// file up before any change), so they can share these inodes.
pub struct Pool {
    pub dir: PathBuf,
    /// How many files of each key this COPY took: the n-th file of the same content
    /// takes the n-th entry (one inode twice in a layer would be a hard link in its tar).
    used: std::cell::RefCell<std::collections::HashMap<String, usize>>,
}

impl Pool {
    pub fn new(dir: PathBuf) -> Pool {
        Pool {
            dir,
            used: Default::default(),
        }
    }

    /// The pool entry of a file: what makes it what it is in a layer, and how many files
    /// of the same this COPY took before it.
    fn entry(&self, content: &[u8; 32], mode: u32, owner: (u32, u32), mtime: (i64, i64)) -> String {
        let mut h = Sha256::new();
        h.update(content);
        h.update(format!(
            "{mode:o} {}:{} {}.{}",
            owner.0, owner.1, mtime.0, mtime.1
        ));
        let key = format!("{:x}", h.finalize());
        let mut used = self.used.borrow_mut();
        let n = used.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            key
        } else {
            format!("{key}-{n}")
        }
    }

    /// Link the pooled file `key` at `host`; whether it was there to link.
    fn place(&self, key: &str, host: &Path) -> bool {
        std::fs::hard_link(self.dir.join(key), host).is_ok()
    }

    /// Keep `host` (just written) as `key`, unless another build did first.
    fn keep(&self, key: &str, host: &Path) {
        let _ = std::fs::create_dir_all(&self.dir);
        let _ = std::fs::hard_link(host, self.dir.join(key));
    }
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's filepath.Match for one segment.
fn segment_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return false;
                };
                let Some(&c) = n.first() else { return false };
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('^') | Some('!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != neg && go(&p[end + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

/// The sources a COPY names in `tree` (the context, or a stage's filesystem): wildcards
/// expanded, paths kept inside, what `.dockerignore` removed reported missing.
pub fn find_sources(tree: &dyn Tree, patterns: &[String], in_context: bool) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for pattern in patterns {
        let cleaned = clean(pattern.trim_start_matches('/'));
        if in_context && (cleaned == ".." || cleaned.starts_with("../")) {
            return Err(Error::Step(format!(
                "Forbidden path outside the build context: {pattern} ()"
            )));
        }
        let cleaned = clean(&format!("/{cleaned}"));
        let rel = cleaned.trim_start_matches('/').to_string();
        if !has_wildcard(&rel) {
            let path = resolve(tree, &cleaned, true)?;
            if tree.stat(&path).is_none() {
                return Err(Error::Step(if in_context {
                    format!("file not found in build context or excluded by .dockerignore: stat {rel}: file does not exist")
                } else {
                    format!("{cleaned}: no such file or directory")
                }));
            }
            out.push(Source::Path { path, rel });
            continue;
        }
        // (the path in the tree, resolved; the path as matched)
        let mut found = vec![(String::new(), String::new())];
        for seg in rel.split('/') {
            let mut next = Vec::new();
            for (dir, r) in &found {
                let dir = resolve(tree, dir, true)?;
                if !has_wildcard(seg) {
                    let child = join_rel(&dir, seg);
                    if tree.stat(&child).is_some() {
                        next.push((child, join_rel(r, seg)));
                    }
                    continue;
                }
                if !tree.stat(&dir).is_some_and(|m| m.is_dir()) {
                    continue;
                }
                for name in tree
                    .list(&dir)?
                    .into_iter()
                    .filter(|n| segment_matches(seg, n))
                {
                    next.push((join_rel(&dir, &name), join_rel(r, &name)));
                }
            }
            found = next;
        }
        if found.is_empty() {
            return Err(Error::Step(format!(
                "no source files were specified (nothing matches {pattern})"
            )));
        }
        for (p, r) in found {
            out.push(Source::Path {
                path: resolve(tree, &p, true)?,
                rel: r,
            });
        }
    }
    Ok(out)
}

fn join_rel(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// Heredoc sources (`<<EOF`) and the rest, split.
pub fn heredoc_sources(
    sources: &[String],
    heredocs: &[Heredoc],
    expand: &dyn Fn(&str) -> Result<String>,
) -> Result<(Vec<Source>, Vec<String>)> {
    let mut data = Vec::new();
    let mut paths = Vec::new();
    for s in sources {
        let name = s
            .strip_prefix("<<")
            .map(|n| n.trim_start_matches('-').trim_matches(['"', '\'']));
        match name.and_then(|n| heredocs.iter().find(|h| h.name == n)) {
            Some(h) => {
                let text = if h.expand {
                    expand(&h.content)?
                } else {
                    h.content.clone()
                };
                data.push(Source::Data {
                    name: h.name.clone(),
                    bytes: text.into_bytes(),
                    mode: 0o644,
                });
            }
            None => paths.push(s.clone()),
        }
    }
    Ok((data, paths))
}

/// A digest of what the sources hold (paths, types, modes, contents, link targets, and
/// owners when the COPY keeps them (no `--chown`); not mtimes), for the cache key.
pub fn content_digest(
    tree: &dyn Tree,
    sources: &[Source],
    exclude: &Ignore,
    owners: bool,
) -> Result<String> {
    let mut h = Sha256::new();
    for s in sources {
        match s {
            Source::Data { name, bytes, mode } => {
                h.update(format!("data {name} {mode:o} {}\n", bytes.len()));
                h.update(bytes);
            }
            Source::Path { path, rel } => {
                h.update(format!("source {rel}\n"));
                if is_excluded_file(tree, path, rel, exclude) {
                    continue;
                }
                hash_tree(tree, &mut h, path, "", exclude, owners)?;
            }
        }
    }
    Ok(format!("sha256:{:x}", h.finalize()))
}

/// `--exclude` patterns are relative to what a source copies: a directory's contents by
/// their path inside it, a file by its name.
fn is_excluded_file(tree: &dyn Tree, path: &str, rel: &str, exclude: &Ignore) -> bool {
    !exclude.is_empty()
        && !tree.stat(path).is_some_and(|m| m.is_dir())
        && exclude.excludes(rel.rsplit('/').next().unwrap_or(rel))
}

fn hash_tree(
    tree: &dyn Tree,
    h: &mut Sha256,
    path: &str,
    rel: &str,
    exclude: &Ignore,
    owners: bool,
) -> Result<()> {
    if !rel.is_empty() && exclude.excludes(rel) {
        return Ok(());
    }
    let meta = tree
        .stat(path)
        .ok_or_else(|| Error::Step(format!("{path}: no such file or directory")))?;
    h.update(format!("{rel} {:?} {:o}\n", meta.kind, meta.mode));
    if owners {
        h.update(format!("owner {}:{}\n", meta.uid, meta.gid));
    }
    match meta.kind {
        Kind::Symlink => h.update(tree.read_link(path)?.as_bytes()),
        Kind::File => tree.hash_content(path, h)?,
        Kind::Dir => {
            for n in tree.list(path)? {
                hash_tree(
                    tree,
                    h,
                    &join_rel(path, &n),
                    &join_rel(rel, &n),
                    exclude,
                    owners,
                )?;
            }
        }
        Kind::Fifo | Kind::Other => {}
    }
    Ok(())
}

/// Copy `sources` (of `tree`) into the image mounted at `root`.
pub fn copy_into(
    root: &Path,
    tree: &dyn Tree,
    sources: &[Source],
    opts: &CopyOptions,
    exclude: &Ignore,
) -> Result<()> {
    let dest = if opts.dest.starts_with('/') {
        opts.dest.clone()
    } else {
        format!("{}/{}", opts.workdir.trim_end_matches('/'), opts.dest)
    };
    let dir_dest = dest.ends_with('/') || dest.ends_with("/.") || dest == "/";
    let dest = clean(&dest);
    let existing_dir = resolve_in_root(root, &dest, true)?.is_dir();
    if sources.len() > 1 && !dir_dest && !existing_dir {
        return Err(Error::Step(
            "When using COPY with more than one source file, the destination must be a directory and end with a /".into(),
        ));
    }
    let into_dir = dir_dest || existing_dir || sources.len() > 1;
    for s in sources {
        match s {
            Source::Data { name, bytes, mode } => {
                let target = if into_dir {
                    format!("{dest}/{name}")
                } else {
                    dest.clone()
                };
                let parent = parent_of(&target);
                mkdir_all(root, &parent, opts.owner)?;
                let host = resolve_in_root(root, &target, false)?;
                remove_non_dir(&host)?;
                let mut f =
                    std::fs::File::create(&host).map_err(|e| Error::io("create", &host, e))?;
                f.write_all(bytes)
                    .map_err(|e| Error::io("write", &host, e))?;
                set_attrs(
                    &host,
                    opts.chmod.unwrap_or(*mode),
                    opts.owner.unwrap_or((0, 0)),
                    None,
                )?;
            }
            Source::Path { path, rel } => {
                if is_excluded_file(tree, path, rel, exclude) {
                    continue;
                }
                let meta = tree
                    .stat(path)
                    .ok_or_else(|| Error::Step(format!("{rel}: no such file or directory")))?;
                let base_dest = if opts.parents {
                    let parent = parent_of(&format!("/{rel}"));
                    clean(&format!("{dest}/{parent}"))
                } else {
                    dest.clone()
                };
                if meta.is_dir() {
                    let target = if opts.parents {
                        clean(&format!("{dest}/{rel}"))
                    } else {
                        base_dest
                    };
                    mkdir_all(root, &target, opts.owner)?;
                    copy_dir_contents(root, tree, path, &target, "", opts, exclude)?;
                    continue;
                }
                if opts.extract && is_archive(tree, path) {
                    let target = mkdir_all(root, &base_dest, opts.owner)?;
                    extract(tree, path, &target)?;
                    continue;
                }
                let name = Path::new(rel)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = if into_dir || opts.parents {
                    format!("{base_dest}/{name}")
                } else {
                    base_dest
                };
                mkdir_all(root, &parent_of(&target), opts.owner)?;
                copy_entry(root, tree, path, &target, opts)?;
            }
        }
    }
    Ok(())
}

fn parent_of(p: &str) -> String {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((a, _)) => a.to_string(),
    }
}

fn remove_non_dir(host: &Path) -> Result<()> {
    match std::fs::symlink_metadata(host) {
        Ok(m) if !m.is_dir() => {
            std::fs::remove_file(host).map_err(|e| Error::io("replace", host, e))
        }
        _ => Ok(()),
    }
}

fn copy_dir_contents(
    root: &Path,
    tree: &dyn Tree,
    src: &str,
    dest: &str,
    rel: &str,
    opts: &CopyOptions,
    exclude: &Ignore,
) -> Result<()> {
    for name in tree.list(src)? {
        let child_rel = join_rel(rel, &name);
        if !exclude.is_empty() && exclude.excludes(&child_rel) {
            continue;
        }
        let child = join_rel(src, &name);
        let target = format!("{}/{name}", dest.trim_end_matches('/'));
        if copy_entry(root, tree, &child, &target, opts)? {
            copy_dir_contents(root, tree, &child, &target, &child_rel, opts, exclude)?;
        }
    }
    Ok(())
}

/// One file, symlink, directory (itself only) or fifo of `tree` at `target` in the image;
/// whether it was a directory.
fn copy_entry(
    root: &Path,
    tree: &dyn Tree,
    src: &str,
    target: &str,
    opts: &CopyOptions,
) -> Result<bool> {
    let meta = tree
        .stat(src)
        .ok_or_else(|| Error::Step(format!("{src}: no such file or directory")))?;
    let host = resolve_in_root(root, target, false)?;
    let owner = opts.owner.unwrap_or((0, 0));
    let mode = opts.chmod.unwrap_or(meta.mode);
    let mtime = Some(meta.mtime);
    if meta.kind == Kind::Dir {
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                remove_non_dir(&host)?;
                std::fs::create_dir(&host).map_err(|e| Error::io("create", &host, e))?;
            }
            Err(_) => std::fs::create_dir(&host).map_err(|e| Error::io("create", &host, e))?,
        }
        set_attrs(&host, mode, owner, mtime)?;
        return Ok(true);
    }
    if let Ok(m) = std::fs::symlink_metadata(&host) {
        if m.is_dir() {
            std::fs::remove_dir_all(&host).map_err(|e| Error::io("replace", &host, e))?;
        } else {
            std::fs::remove_file(&host).map_err(|e| Error::io("replace", &host, e))?;
        }
    }
    match meta.kind {
        Kind::Symlink => {
            let t = tree.read_link(src)?;
            std::os::unix::fs::symlink(&t, &host).map_err(|e| Error::io("symlink", &host, e))?;
            lchown(&host, owner.0, owner.1)?;
        }
        Kind::File => {
            let pooled = opts
                .pool
                .zip(tree.content_id(src))
                .map(|(p, id)| (p, p.entry(&id, mode, owner, meta.mtime)));
            if let Some((pool, key)) = &pooled {
                if pool.place(key, &host) {
                    return Ok(false);
                }
            }
            tree.copy_file(src, &host)?;
            set_attrs(&host, mode, owner, mtime)?;
            if let Some((pool, key)) = &pooled {
                pool.keep(key, &host);
            }
        }
        Kind::Fifo => {
            nix::unistd::mkfifo(&host, nix::sys::stat::Mode::from_bits_truncate(meta.mode))
                .map_err(|e| Error::io("mkfifo", &host, e.into()))?;
            set_attrs(&host, mode, owner, mtime)?;
        }
        // Sockets and devices are not copied (the context drops devices already).
        Kind::Dir | Kind::Other => {}
    }
    Ok(false)
}

fn set_attrs(host: &Path, mode: u32, owner: (u32, u32), mtime: Option<(i64, i64)>) -> Result<()> {
    lchown(host, owner.0, owner.1)?;
    std::fs::set_permissions(host, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| Error::io("chmod", host, e))?;
    if let Some((s, ns)) = mtime {
        let t = nix::sys::time::TimeSpec::new(s, ns);
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            host,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(())
}

/// A tar archive, plain or gzip (what ADD extracts).
fn is_archive(tree: &dyn Tree, path: &str) -> bool {
    let Ok(mut f) = tree.open(path) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return true;
    }
    n >= 262 && &head[257..262] == b"ustar"
}

/// An error with its causes (the tar crate puts the reason in the source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cur = c.source();
    }
    text
}

fn extract(tree: &dyn Tree, archive: &str, dest: &Path) -> Result<()> {
    let mut f = std::io::BufReader::new(tree.open(archive)?);
    let gzip = std::io::BufRead::fill_buf(&mut f)
        .map_err(|e| Error::Step(format!("ADD: reading {archive}: {e}")))?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_overwrite(true);
    let entries = ar
        .entries()
        .map_err(|e| Error::Step(format!("ADD: reading {}: {e}", archive)))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Step(format!("ADD: reading {}: {e}", archive)))?;
        let ok = entry
            .unpack_in(dest)
            .map_err(|e| Error::Step(format!("ADD: extracting {}: {}", archive, chain(&e))))?;
        if !ok {
            return Err(Error::Step(format!(
                "ADD: {} has an entry outside its destination",
                archive
            )));
        }
    }
    Ok(())
}

/// What an HTTP GET brought: the URL's last path segment (`index.html` when it has none,
/// as Docker names it), the Content-Type, the body.
pub struct Download {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// GET of an `http://` or `https://` URL, through the workspace's HTTP client (TLS with
/// the system's CAs, SSL_CERT_FILE honoured; redirects followed; the daemon's proxy
/// variables). `what` starts the errors (`ADD URL`, `remote build context URL`).
pub fn http_get(url: &str, what: &str) -> Result<Download> {
    let fail = |why: String| Error::Step(format!("{what}: {why}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| fail(format!("not a URL: {e}")))?;
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .timeout(std::time::Duration::from_secs(300))
        .user_agent("berth-builder")
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let response = client.get(parsed.clone()).send().map_err(|e| {
        let place = format!(
            "{}:{}",
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or_default()
        );
        if e.is_connect() {
            fail(format!(
                "cannot connect to {place}: {} (is the network reachable?)",
                chain(&e)
            ))
        } else {
            fail(chain(&e))
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(format!("server answered {status}")));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = response.bytes().map_err(|e| fail(chain(&e)))?;
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_string))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "index.html".to_string());
    Ok(Download {
        name,
        content_type,
        bytes: bytes.to_vec(),
    })
}

/// ADD of an `http://` or `https://` URL: the file's name and content.
pub fn fetch_url(url: &str) -> Result<(String, Vec<u8>)> {
    let d = http_get(url, &format!("ADD {url}"))?;
    Ok((d.name, d.bytes))
}

#[cfg(test)]
mod tests {
    use super::super::tree::HostTree;
    use super::*;

    #[test]
    fn wildcards_as_go() {
        assert!(segment_matches("*.txt", "a.txt"));
        assert!(!segment_matches("*.txt", "a.txtx"));
        assert!(segment_matches("a?c", "abc"));
        assert!(segment_matches("[a-c]x", "bx"));
        assert!(!segment_matches("[^a-c]x", "bx"));
        assert!(segment_matches("\\*", "*"));
    }

    fn ctx() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        std::fs::create_dir_all(r.join("dir/sub")).expect("mkdir");
        std::fs::write(r.join("a.txt"), "a").expect("w");
        std::fs::write(r.join("b.txt"), "b").expect("w");
        std::fs::write(r.join("dir/one"), "1").expect("w");
        std::fs::write(r.join("dir/sub/two"), "2").expect("w");
        d
    }

    fn copy(ctx: &Path, image: &Path, srcs: &[&str], dest: &str) -> Result<()> {
        let s: Vec<String> = srcs.iter().map(|s| s.to_string()).collect();
        let tree = HostTree {
            root: ctx.to_path_buf(),
        };
        let sources = find_sources(&tree, &s, true)?;
        let opts = CopyOptions {
            dest: dest.into(),
            workdir: "/work",
            owner: None,
            chmod: None,
            parents: false,
            extract: false,
            pool: None,
        };
        copy_into(image, &tree, &sources, &opts, &Ignore::default())
    }

    #[test]
    fn docker_directory_semantics() {
        let c = ctx();
        let img = tempfile::tempdir().expect("tempdir");
        let i = img.path();
        // A file to a name: the file gets that name, parents created.
        copy(c.path(), i, &["a.txt"], "/x/y").expect("copy");
        assert_eq!(std::fs::read_to_string(i.join("x/y")).expect("r"), "a");
        // A file into a directory (trailing slash).
        copy(c.path(), i, &["a.txt"], "/d/").expect("copy");
        assert!(i.join("d/a.txt").is_file());
        // A directory's contents, not the directory.
        copy(c.path(), i, &["dir"], "/t").expect("copy");
        assert!(i.join("t/one").is_file() && i.join("t/sub/two").is_file());
        assert!(!i.join("t/dir").exists());
        // Wildcards; relative destinations under WORKDIR.
        copy(c.path(), i, &["*.txt"], "rel/").expect("copy");
        assert!(i.join("work/rel/a.txt").is_file() && i.join("work/rel/b.txt").is_file());
        let e = copy(c.path(), i, &["*.txt"], "/single").expect_err("needs a dir");
        assert!(
            e.to_string()
                .contains("must be a directory and end with a /"),
            "{e}"
        );
        let e = copy(c.path(), i, &["../x"], "/").expect_err("outside");
        assert!(
            e.to_string()
                .contains("Forbidden path outside the build context"),
            "{e}"
        );
        let e = copy(c.path(), i, &["nope"], "/").expect_err("missing");
        assert!(
            e.to_string().contains("file not found in build context"),
            "{e}"
        );
        let e = copy(c.path(), i, &["*.md"], "/").expect_err("no match");
        assert!(e.to_string().contains("no source files"), "{e}");
    }

    #[test]
    fn digest_ignores_mtime_not_content() {
        let c = ctx();
        let tree = HostTree {
            root: c.path().to_path_buf(),
        };
        let srcs = find_sources(&tree, &["dir".to_string()], true).expect("sources");
        let digest = || content_digest(&tree, &srcs, &Ignore::default(), true).expect("digest");
        let d1 = digest();
        let t = nix::sys::time::TimeSpec::new(1000, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &c.path().join("dir/one"),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .expect("utime");
        assert_eq!(digest(), d1);
        std::fs::write(c.path().join("dir/one"), "changed").expect("w");
        assert_ne!(digest(), d1);
    }
}

//! `cp`, `diff`, `export` and `commit`, as the docker CLI does them: cp stats the
//! container's path (HEAD .../archive), then sends or receives a tar; tars are written and
//! extracted with the image store's descriptor-based code (no symlink of either side is
//! followed, `..` entries are refused).

use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use berth_api::client::{for_each_chunk, query, Client, ClientError};
use berth_api_types::container::{CommitResponse, FilesystemChange, PathStat};
use clap::Args;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode: keep owners (into a container: the container's user owns the files).
    #[arg(short = 'a', long)]
    archive: bool,
    /// Follow a symlink that the source path names.
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// CONTAINER:SRC_PATH, or a local path (`-` for a tar on stdin).
    source: String,
    /// CONTAINER:DEST_PATH, or a local path (`-` for a tar on stdout).
    destination: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    container: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    container: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g. "Jane <jane@example.com>").
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instructions to the image (as import --change).
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    message: Option<String>,
    /// Pause the container during the commit (default true).
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

/// `CONTAINER:PATH` (a local path holds no ':' before its first '/').
fn split_container(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

/// What the daemon's `X-Docker-Container-Path-Stat` says.
struct Stat {
    is_dir: bool,
    is_link: bool,
    link_target: String,
}

fn parse_stat(resp: &hyper::Response<hyper::body::Incoming>) -> Result<Stat> {
    let header = resp
        .headers()
        .get("X-Docker-Container-Path-Stat")
        .context("the daemon sent no path stat")?;
    let json = base64::engine::general_purpose::STANDARD.decode(header.as_bytes())?;
    let stat: PathStat = serde_json::from_slice(&json)?;
    Ok(Stat {
        is_dir: stat.mode & (1 << 31) != 0,
        is_link: stat.mode & (1 << 27) != 0,
        link_target: stat.link_target,
    })
}

async fn stat(client: &Client, container: &str, path: &str) -> Result<Option<Stat>> {
    let url = format!(
        "/containers/{container}/archive?{}",
        query(&[("path", path)])
    );
    match client.head(&url).await {
        Ok(resp) => Ok(Some(parse_stat(&resp)?)),
        Err(ClientError::Daemon { status: 404, .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix_open(path, true)
}

fn nix_open(path: &Path, dir: bool) -> Result<OwnedFd> {
    let mut flags = rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC;
    if dir {
        flags |= rustix::fs::OFlags::DIRECTORY;
    }
    rustix::fs::open(path, flags, rustix::fs::Mode::empty())
        .with_context(|| format!("open {}", path.display()))
}

pub async fn cp(client: &Client, args: CpArgs) -> Result<()> {
    match (
        split_container(&args.source),
        split_container(&args.destination),
    ) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((c, p)), None) => copy_from(client, &args, c, p).await,
        (None, Some((c, p))) => copy_to(client, &args, c, p).await,
    }
}

async fn copy_from(client: &Client, args: &CpArgs, container: &str, path: &str) -> Result<()> {
    let mut path = path.to_string();
    if args.follow_link {
        if let Some(st) = stat(client, container, &path).await? {
            if st.is_link && !st.link_target.is_empty() {
                path = st.link_target;
            }
        }
    }
    let url = format!(
        "/containers/{container}/archive?{}",
        query(&[("path", &path)])
    );
    let resp = client.get_stream(&url).await?;
    let src = parse_stat(&resp)?;
    if args.destination == "-" {
        let mut out = std::io::stdout().lock();
        for_each_chunk(resp, |c| out.write_all(c)).await?;
        out.flush()?;
        return Ok(());
    }
    let dest = PathBuf::from(&args.destination);
    let dest_is_dir = dest.is_dir();
    if !dest_is_dir && args.destination.ends_with('/') {
        bail!("no such directory: {}", dest.display());
    }
    if src.is_dir && dest.exists() && !dest_is_dir {
        bail!("cannot copy a directory to a file: {}", dest.display());
    }
    // Into an existing directory as it is named; otherwise under the destination's name:
    // extracted beside it first, then renamed into place.
    let (into, staging) = if dest_is_dir {
        (dest.clone(), None)
    } else {
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".berth-cp-")
            .tempdir_in(&parent)
            .with_context(|| format!("create a directory in {}", parent.display()))?;
        (tmp.path().to_path_buf(), Some(tmp))
    };
    let root = open_dir(&into)?;
    let owner = (!args.archive).then(|| {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    });
    extract(resp, root, owner).await?;
    if let Some(tmp) = staging {
        let name = base_of(&path);
        let from = tmp
            .path()
            .join(if name == "." { "" } else { name.as_str() });
        if dest.is_dir() && !src.is_dir {
            bail!(
                "cannot overwrite a directory with a file: {}",
                dest.display()
            );
        }
        std::fs::rename(&from, &dest)
            .with_context(|| format!("move the copy to {}", dest.display()))?;
    }
    Ok(())
}

/// The name the daemon gives the archive's top entry (Go's filepath.Base).
fn base_of(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|b| !b.is_empty())
        .unwrap_or("/")
        .to_string()
}

/// Extract the response's tar into `root` on a blocking thread, fed by chunks.
async fn extract(
    resp: hyper::Response<hyper::body::Incoming>,
    root: OwnedFd,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let worker = tokio::task::spawn_blocking(move || {
        let reader = ChunkReader {
            rx,
            current: Vec::new(),
            pos: 0,
        };
        let opts = berth_image::unpack::CopyOptions {
            no_overwrite_dir_non_dir: true,
            owner,
        };
        berth_image::unpack::extract(reader, &root, &opts)
    });
    let fed = for_each_chunk(resp, |c| {
        tx.send(c.to_vec())
            .map_err(|_| std::io::Error::other("the extraction stopped"))
    })
    .await;
    drop(tx);
    worker.await??;
    fed?;
    Ok(())
}

struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.current = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

async fn copy_to(client: &Client, args: &CpArgs, container: &str, path: &str) -> Result<()> {
    let mut dest = path.to_string();
    let mut dest_stat = stat(client, container, &dest).await?;
    if let Some(st) = &dest_stat {
        if st.is_link && !st.link_target.is_empty() {
            dest = st.link_target.clone();
            dest_stat = stat(client, container, &dest).await?;
        }
    }
    let flags = [
        ("noOverwriteDirNonDir", "true"),
        ("copyUIDGID", if args.archive { "true" } else { "false" }),
    ];
    if args.source == "-" {
        let url = format!(
            "/containers/{container}/archive?{}",
            query(&[&[("path", dest.as_str())][..], &flags[..]].concat())
        );
        return Ok(client
            .put_stream(&url, "application/x-tar", tokio::io::stdin())
            .await?);
    }
    let src = PathBuf::from(&args.source);
    let src_meta = std::fs::symlink_metadata(&src)
        .with_context(|| format!("could not find the file {}", src.display()))?;
    let src_name = src
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| ".".into());
    // Into an existing directory under the source's name; else as the destination's name
    // in its parent.
    let (dir, name) = match &dest_stat {
        Some(st) if st.is_dir => (dest.clone(), src_name.clone()),
        Some(_) if src_meta.is_dir() => bail!("cannot copy a directory to a file"),
        None if dest.ends_with('/') => bail!("no such directory"),
        _ => {
            let trimmed = dest.trim_end_matches('/');
            let (parent, base) = trimmed.rsplit_once('/').unwrap_or((".", trimmed));
            let parent = if parent.is_empty() { "/" } else { parent };
            (parent.to_string(), base.into())
        }
    };
    let parent = match src.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent_fd = open_dir(&parent)?;
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let writer = std::thread::spawn(move || -> Result<()> {
        let out = std::io::BufWriter::with_capacity(256 * 1024, std::fs::File::from(write));
        let mut w = berth_image::tarball::TreeWriter::new(out, Default::default());
        w.append(parent_fd.as_fd(), &src_name, Path::new(&name))?;
        w.finish()?.flush()?;
        Ok(())
    });
    let url = format!(
        "/containers/{container}/archive?{}",
        query(&[&[("path", dir.as_str())][..], &flags[..]].concat())
    );
    let input = tokio::fs::File::from_std(std::fs::File::from(read));
    let sent = client.put_stream(&url, "application/x-tar", input).await;
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the archive writer failed"))?;
    sent?;
    // A daemon that refused early closes the pipe: its answer is the error that counts.
    written
}

pub async fn diff(client: &Client, args: DiffArgs) -> Result<()> {
    // null when nothing changed.
    let changes: Option<Vec<FilesystemChange>> = client
        .get_json(&format!("/containers/{}/changes", args.container))
        .await?;
    let mut out = std::io::stdout().lock();
    for c in changes.into_iter().flatten() {
        let kind = match c.kind {
            0 => 'C',
            1 => 'A',
            2 => 'D',
            _ => '?',
        };
        writeln!(out, "{kind} {}", c.path)?;
    }
    Ok(())
}

pub async fn export(client: &Client, args: ExportArgs) -> Result<()> {
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("create {}", p.display()))?)
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            Box::new(std::io::stdout().lock())
        }
    };
    let resp = client
        .get_stream(&format!("/containers/{}/export", args.container))
        .await?;
    for_each_chunk(resp, |c| out.write_all(c)).await?;
    out.flush()?;
    Ok(())
}

pub async fn commit(client: &Client, args: CommitArgs) -> Result<()> {
    let mut q: Vec<(&str, &str)> = vec![("container", &args.container)];
    let (repo, tag) = match args.reference.as_deref() {
        Some(r) => match r.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
            _ => (r.to_string(), String::new()),
        },
        None => (String::new(), String::new()),
    };
    if !repo.is_empty() {
        q.push(("repo", &repo));
    }
    if !tag.is_empty() {
        q.push(("tag", &tag));
    }
    if let Some(m) = &args.message {
        q.push(("comment", m));
    }
    if let Some(a) = &args.author {
        q.push(("author", a));
    }
    for c in &args.change {
        q.push(("changes", c));
    }
    if !args.pause {
        q.push(("pause", "0"));
    }
    let answer: CommitResponse = client
        .post_body(&format!("/commit?{}", query(&q)), &())
        .await?;
    println!("{}", answer.id);
    Ok(())
}

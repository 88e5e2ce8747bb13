//! images, image ls/rm/inspect/prune/..., load, save, import, tag, rmi, history, inspect.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context, Result};
use berth_api::client::{for_each_chunk, query, Client};
use berth_api_types::image::{self, DeleteResponse, HistoryResponseItem, JsonMessage};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::filters_json;
use crate::format::{human_size, human_size_4, print_inspected, print_rows, since};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show all images (the intermediate images of builds too).
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Filter (dangling=true, reference=PATTERN, label=K[=V], before=IMG, since=IMG).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Go template ('{{.Repository}}:{{.Tag}}', 'table {{.ID}}\t{{.Size}}') or json.
    #[arg(long)]
    format: Option<String>,
    /// Only images of this repository[:tag].
    reference: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Remove images.
    #[command(alias = "remove")]
    Rm(RemoveArgs),
    /// Show low-level information on images.
    Inspect(InspectArgs),
    /// Show an image's history.
    History(HistoryArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Load images from a tar archive.
    Load(LoadArgs),
    /// Save images to a tar archive.
    Save(SaveArgs),
    /// Import a root filesystem tarball.
    Import(ImportArgs),
    /// Give an image another name.
    Tag(TagArgs),
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Remove even if the image has several repositories.
    #[arg(short, long)]
    force: bool,
    /// Keep the untagged parents (a build's intermediate images).
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template applied to each image's JSON.
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Sizes and dates for people (-H=false: bytes and RFC 3339 times).
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    human: bool,
    /// Go template ('{{.ID}} {{.CreatedBy}}', 'table ...') or json.
    #[arg(long)]
    format: Option<String>,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    image: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove every image not used by a container, not only dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Filter (until=DURATION, label=K[=V]).
    #[arg(long)]
    filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this file instead of standard input.
    #[arg(short, long)]
    input: Option<std::path::PathBuf>,
    /// Print only the loaded names.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A Dockerfile instruction to apply (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL,
    /// USER, VOLUME, WORKDIR); repeatable.
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    message: Option<String>,
    /// A file, or - for standard input.
    file: String,
    /// The name to give the image.
    reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    source: String,
    target: String,
}

/// The fields `docker images --format` offers, per (image, tag) row.
fn image_rows(list: &[image::Summary], args: &ListArgs) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in list {
        let id = &img.id;
        let short = if args.no_trunc {
            id.to_string()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        };
        let (tags, digests) = (&img.repo_tags, &img.repo_digests);
        let created = img.created;
        let size = human_size(img.size);
        let pairs: Vec<(String, String)> = if tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            tags.iter()
                .map(|t| match t.rsplit_once(':') {
                    Some((r, tag)) if !tag.contains('/') => (r.to_string(), tag.to_string()),
                    _ => (t.clone(), "<none>".into()),
                })
                .collect()
        };
        for (repo, tag) in pairs {
            let digest = digests
                .iter()
                .find(|d| d.starts_with(&format!("{repo}@")))
                .and_then(|d| d.split_once('@').map(|(_, x)| x.to_string()))
                .unwrap_or_else(|| "<none>".into());
            rows.push(json!({
                "ID": short, "Repository": repo, "Tag": tag, "Digest": digest,
                "CreatedSince": since(created),
                "CreatedAt": humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(created.max(0) as u64)).to_string(),
                "Size": size,
                "Containers": "N/A",
            }));
        }
    }
    rows
}

fn header_name(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" => "IMAGE ID",
        "Repository" => "REPOSITORY",
        "Tag" => "TAG",
        "Digest" => "DIGEST",
        "CreatedSince" => "CREATED",
        "CreatedAt" => "CREATED AT",
        "Size" => "SIZE",
        "CreatedBy" => "CREATED BY",
        "Comment" => "COMMENT",
        _ => return None,
    })
}

pub async fn list(client: &Client, mut args: ListArgs) -> Result<()> {
    if let Some(r) = args.reference.take() {
        args.filter.push(format!("reference={r}"));
    }
    let mut q = vec![];
    let filters = filters_json(&args.filter)?;
    if let Some(f) = &filters {
        q.push(("filters", f.as_str()));
    }
    if args.all {
        q.push(("all", "1"));
    }
    let list: Vec<image::Summary> = client
        .get_json(&format!("/images/json?{}", query(&q)))
        .await?;
    let rows = image_rows(&list, &args);
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or_default();
            if seen.insert(id.to_string()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    let default = if args.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    print_rows(&rows, args.format.as_deref(), default, &header_name)
}

pub async fn image(client: &Client, cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Ls(a) => list(client, a).await,
        ImageCommand::Rm(a) => remove(client, a).await,
        ImageCommand::Inspect(a) => inspect(client, a).await,
        ImageCommand::History(a) => history(client, a).await,
        ImageCommand::Prune(a) => prune(client, a).await,
        ImageCommand::Load(a) => load(client, a).await,
        ImageCommand::Save(a) => save(client, a).await,
        ImageCommand::Import(a) => import(client, a).await,
        ImageCommand::Tag(a) => tag(client, a).await,
    }
}

/// One message of a JSON stream (load, import), printed as docker does; an error fails.
fn print_message(line: &[u8], quiet: bool) -> Result<()> {
    let m: JsonMessage = serde_json::from_slice(line)
        .with_context(|| format!("bad message {:?}", String::from_utf8_lossy(line)))?;
    if !m.error_message.is_empty() {
        bail!("{}", m.error_message);
    }
    if let Some(err) = m.error {
        bail!("{}", err.message);
    }
    if !m.stream.is_empty() {
        print!("{}", m.stream);
    } else if !quiet && !m.status.is_empty() {
        match m.id.as_str() {
            "" => println!("{}", m.status),
            id => println!("{id}: {}", m.status),
        }
    }
    Ok(())
}

/// Print a response's JSON message stream as its lines arrive.
async fn print_stream(resp: hyper::Response<hyper::body::Incoming>, quiet: bool) -> Result<()> {
    super::for_each_message(resp, |line| print_message(line, quiet)).await
}

pub async fn load(client: &Client, args: LoadArgs) -> Result<()> {
    let input: Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin> = match &args.input {
        Some(p) => Box::new(
            tokio::fs::File::open(p)
                .await
                .with_context(|| format!("open {}", p.display()))?,
        ),
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(tokio::io::stdin())
        }
    };
    let q = query(&[("quiet", if args.quiet { "1" } else { "0" })]);
    let resp = client
        .post_stream(&format!("/images/load?{q}"), "application/x-tar", input)
        .await?;
    print_stream(resp, args.quiet).await
}

pub async fn save(client: &Client, args: SaveArgs) -> Result<()> {
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
    let names: Vec<(&str, &str)> = args.images.iter().map(|n| ("names", n.as_str())).collect();
    let resp = client
        .get_stream(&format!("/images/get?{}", query(&names)))
        .await?;
    for_each_chunk(resp, |c| out.write_all(c)).await?;
    out.flush()?;
    Ok(())
}

pub async fn import(client: &Client, args: ImportArgs) -> Result<()> {
    let input: Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin> = if args.file == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(&args.file)
                .await
                .with_context(|| format!("open {}", args.file))?,
        )
    };
    let mut q: Vec<(&str, &str)> = vec![("fromSrc", "-")];
    if let Some(r) = &args.reference {
        q.push(("repo", r));
    }
    if let Some(m) = &args.message {
        q.push(("message", m));
    }
    for c in &args.change {
        q.push(("changes", c));
    }
    let resp = client
        .post_stream(
            &format!("/images/create?{}", query(&q)),
            "application/x-tar",
            input,
        )
        .await?;
    print_stream(resp, false).await
}

pub async fn tag(client: &Client, args: TagArgs) -> Result<()> {
    let (repo, tag) = match args.target.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (args.target.clone(), String::new()),
    };
    let q = query(&[("repo", &repo), ("tag", &tag)]);
    client
        .post_empty(&format!("{}?{q}", Client::image_path(&args.source, "/tag")))
        .await?;
    Ok(())
}

pub async fn remove(client: &Client, args: RemoveArgs) -> Result<()> {
    let mut failed = false;
    for name in &args.images {
        let flag = |on: bool| if on { "1" } else { "0" };
        let q = query(&[
            ("force", flag(args.force)),
            ("noprune", flag(args.no_prune)),
        ]);
        match client
            .delete_json::<Vec<DeleteResponse>>(&format!("{}?{q}", Client::image_path(name, "")))
            .await
        {
            Ok(list) => {
                for r in list {
                    if !r.untagged.is_empty() {
                        println!("Untagged: {}", r.untagged);
                    }
                    if !r.deleted.is_empty() {
                        println!("Deleted: {}", r.deleted);
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        bail!("some images could not be removed");
    }
    Ok(())
}

pub async fn inspect(client: &Client, args: InspectArgs) -> Result<()> {
    let mut all = Vec::new();
    for name in &args.images {
        let v: Value = client.get_json(&Client::image_path(name, "/json")).await?;
        all.push(v);
    }
    print_inspected(&all, args.format.as_deref())
}

fn history_header(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" => "IMAGE",
        "CreatedSince" => "CREATED",
        "CreatedAt" => "CREATED AT",
        "CreatedBy" => "CREATED BY",
        "Size" => "SIZE",
        "Comment" => "COMMENT",
        _ => return None,
    })
}

/// One layer of `history` with the fields its `--format` offers (`-H=false`: raw times and
/// byte counts, as the docker CLI prints them).
fn history_row(h: &HistoryResponseItem, args: &HistoryArgs) -> Value {
    let id = if h.id == "<missing>" || args.no_trunc {
        h.id.clone()
    } else {
        h.id.trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect()
    };
    let mut by = h.created_by.clone();
    if !args.no_trunc && by.chars().count() > 45 {
        by = format!("{}…", by.chars().take(44).collect::<String>());
    }
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(h.created.max(0).unsigned_abs());
    let created_at = humantime::format_rfc3339_seconds(at).to_string();
    let (created, size) = if args.human {
        (since(h.created), human_size(h.size))
    } else {
        (created_at.clone(), h.size.to_string())
    };
    json!({
        "ID": id, "CreatedSince": created, "CreatedAt": created_at, "CreatedBy": by,
        "Size": size, "Comment": h.comment,
    })
}

pub async fn history(client: &Client, args: HistoryArgs) -> Result<()> {
    let list: Vec<HistoryResponseItem> = client
        .get_json(&Client::image_path(&args.image, "/history"))
        .await?;
    let rows: Vec<Value> = list.iter().map(|h| history_row(h, &args)).collect();
    let quiet = args.quiet.then_some("{{.ID}}");
    print_rows(
        &rows,
        quiet.or(args.format.as_deref()),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &history_header,
    )
}

pub async fn prune(client: &Client, args: PruneArgs) -> Result<()> {
    if !args.force {
        bail!("image prune removes images: confirm with --force (berth does not prompt)");
    }
    let mut filters = args.filter.clone();
    if args.all {
        filters.push("dangling=false".into());
    }
    let q = match filters_json(&filters)? {
        Some(f) => query(&[("filters", &f)]),
        None => String::new(),
    };
    let r: image::PruneReport = client.post_json(&format!("/images/prune?{q}")).await?;
    let deleted = r.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for d in deleted {
            if !d.untagged.is_empty() {
                println!("untagged: {}", d.untagged);
            }
            if !d.deleted.is_empty() {
                println!("deleted: {}", d.deleted);
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size_4(r.space_reclaimed));
    Ok(())
}

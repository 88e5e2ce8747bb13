//! version, info, system df/prune/events, builder prune.

use anyhow::{bail, Result};
use berth_api::client::{query, Client};
use berth_api_types::system::{BuildCachePruneReport, DiskUsage, Info, Version};
use berth_api_types::{container, image, network, volume};
use clap::{Args, Subcommand};

use super::filters_json;
use crate::format::{bytes_size, human_size_4, print_rows, Template};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df(FormatArgs),
    /// Show system-wide information.
    Info(FormatArgs),
    /// Remove stopped containers, unused networks, dangling images and the build cache.
    Prune(PruneArgs),
    /// Show the daemon's events as they happen.
    Events(super::events::EventsArgs),
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Go template ('{{.Server.Version}}', '{{json .}}') or json.
    #[arg(short, long)]
    format: Option<String>,
}

/// `--format`: the value through the template (json: one line of JSON).
fn print_formatted(value: &serde_json::Value, format: &str) -> Result<()> {
    if format == "json" {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", Template::parse(format)?.render(value)?);
    }
    Ok(())
}

pub async fn version(client: &Client, args: FormatArgs) -> Result<()> {
    let v: Version = client.get_json("/version").await?;
    if let Some(format) = &args.format {
        // The docker CLI's VersionInfo, by its Go field names: the client's figures and
        // the daemon's answer (whose JSON says ApiVersion for the field APIVersion).
        let mut server = serde_json::to_value(&v)?;
        if let Some(map) = server.as_object_mut() {
            if let Some(api) = map.remove("ApiVersion") {
                map.insert("APIVersion".into(), api);
            }
        }
        let value = serde_json::json!({
            "Client": {
                "Version": env!("CARGO_PKG_VERSION"),
                "APIVersion": client.version().to_string(),
                "Os": std::env::consts::OS,
                "Arch": std::env::consts::ARCH,
            },
            "Server": server,
        });
        return print_formatted(&value, format);
    }
    println!(
        "Client:\n Version:      {}\n API version:  {}",
        env!("CARGO_PKG_VERSION"),
        client.version()
    );
    println!(
        "\nServer: {}\n Version:      {}\n API version:  {} (minimum version {})\n OS/Arch:      {}/{}\n Kernel:       {}",
        v.platform.name,
        v.version,
        v.api_version,
        v.min_api_version,
        v.os,
        v.arch,
        v.kernel_version,
    );
    Ok(())
}

pub async fn info(client: &Client, args: FormatArgs) -> Result<()> {
    if let Some(format) = &args.format {
        let value: serde_json::Value = client.get_json("/info").await?;
        return print_formatted(&value, format);
    }
    let i: Info = client.get_json("/info").await?;
    let lines = [
        ("Server Version", i.server_version),
        ("Images", i.images.to_string()),
        ("Storage Driver", i.driver),
        ("Cgroup Driver", i.cgroup_driver),
        ("Cgroup Version", i.cgroup_version),
        ("Default Runtime", i.default_runtime),
        ("Kernel Version", i.kernel_version),
        ("Operating System", i.operating_system),
        ("Architecture", i.architecture),
        ("CPUs", i.ncpu.to_string()),
        ("Total Memory", bytes_size(i.mem_total)),
        ("Name", i.name),
        ("ID", i.id),
        ("Root Dir", i.docker_root_dir),
    ];
    for (label, value) in lines {
        println!("{label}: {value}");
    }
    Ok(())
}

pub async fn system(client: &Client, cmd: SystemCommand) -> Result<()> {
    match cmd {
        SystemCommand::Info(a) => info(client, a).await,
        SystemCommand::Df(a) => df(client, a).await,
        SystemCommand::Prune(a) => prune(client, a).await,
        SystemCommand::Events(a) => super::events::events(client, a).await,
    }
}

fn df_header(field: &str) -> Option<&'static str> {
    Some(match field {
        "Type" => "TYPE",
        "TotalCount" => "TOTAL",
        "Active" => "ACTIVE",
        "Size" => "SIZE",
        "Reclaimable" => "RECLAIMABLE",
        _ => return None,
    })
}

/// `docker system df`, with the docker CLI's figures (formatter/disk_usage.go).
async fn df(client: &Client, args: FormatArgs) -> Result<()> {
    let df: DiskUsage = client.get_json("/system/df").await?;
    let images_used: u64 = df
        .images
        .iter()
        .filter(|i| i.containers > 0 && i.shared_size >= 0)
        .map(|i| i.size.saturating_sub(i.shared_size.unsigned_abs()))
        .sum();
    let active_images = df.images.iter().filter(|i| i.containers > 0).count();
    let running =
        |c: &&container::Summary| matches!(c.state.as_str(), "running" | "paused" | "restarting");
    let rw = |c: &container::Summary| c.size_rw.max(0).unsigned_abs();
    // -1 (not computed) counts as nothing.
    let size_of = |v: &volume::Volume| {
        v.usage_data
            .as_ref()
            .map_or(0, |u| u.size.max(0).unsigned_abs())
    };
    let used = |v: &&volume::Volume| v.usage_data.as_ref().is_some_and(|u| u.ref_count > 0);
    let (volumes, cache) = (&df.volumes, &df.build_cache);
    let rows = [
        row(
            "Images",
            df.images.len(),
            active_images,
            df.layers_size,
            df.layers_size.saturating_sub(images_used),
        ),
        row(
            "Containers",
            df.containers.len(),
            df.containers.iter().filter(running).count(),
            df.containers.iter().map(rw).sum(),
            df.containers.iter().filter(|c| !running(c)).map(rw).sum(),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(used).count(),
            volumes.iter().map(size_of).sum(),
            volumes.iter().filter(|v| !used(v)).map(size_of).sum(),
        ),
        row(
            "Build Cache",
            cache.len(),
            cache.iter().filter(|c| c.in_use).count(),
            cache.iter().filter(|c| !c.shared).map(|c| c.size).sum(),
            cache
                .iter()
                .filter(|c| !c.shared && !c.in_use)
                .map(|c| c.size)
                .sum(),
        ),
    ];
    print_rows(
        &rows,
        args.format.as_deref(),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        &df_header,
    )
}

/// One row of `system df`: the reclaimable bytes with their share of the total, as docker.
fn row(kind: &str, total: usize, active: usize, size: u64, reclaimable: u64) -> serde_json::Value {
    let share = match size {
        0 => String::new(),
        size => format!(" ({}%)", u128::from(reclaimable) * 100 / u128::from(size)),
    };
    serde_json::json!({
        "Type": kind,
        "TotalCount": total.to_string(),
        "Active": active.to_string(),
        "Size": human_size_4(size),
        "Reclaimable": format!("{}{share}", human_size_4(reclaimable)),
    })
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove every unused image, not only dangling ones, and the whole build cache.
    #[arg(short, long)]
    all: bool,
    /// Prune anonymous volumes too.
    #[arg(long)]
    volumes: bool,
    /// Filter (until=DURATION, label=K[=V], label!=K[=V]).
    #[arg(long)]
    filter: Vec<String>,
    /// Do not ask (berth never prompts: required).
    #[arg(short, long)]
    force: bool,
}

/// `?filters=...` for `extra` filters beside the flags'.
fn filters_query(flags: &[String], extra: &[&str]) -> Result<String> {
    let mut all: Vec<String> = flags.to_vec();
    all.extend(extra.iter().map(|e| e.to_string()));
    Ok(match filters_json(&all)? {
        Some(f) => format!("?{}", query(&[("filters", &f)])),
        None => String::new(),
    })
}

fn section(title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    println!("{title}:");
    for i in items {
        println!("{i}");
    }
    println!();
}

/// `docker system prune`: stopped containers, unused networks, (anonymous volumes), dangling
/// (or all unused) images and the build cache, in the docker CLI's order and words.
async fn prune(client: &Client, a: PruneArgs) -> Result<()> {
    if !a.force {
        bail!("system prune removes stopped containers, unused networks, images and the build cache: confirm with --force (berth does not prompt)");
    }
    let mut reclaimed = 0u64;
    let q = filters_query(&a.filter, &[])?;
    let c: container::PruneReport = client.post_json(&format!("/containers/prune{q}")).await?;
    reclaimed += c.space_reclaimed;
    section(
        "Deleted Containers",
        &c.containers_deleted.unwrap_or_default(),
    );
    let n: network::PruneReport = client.post_json(&format!("/networks/prune{q}")).await?;
    section("Deleted Networks", &n.networks_deleted.unwrap_or_default());
    if a.volumes {
        let v: volume::PruneReport = client.post_json(&format!("/volumes/prune{q}")).await?;
        reclaimed += v.space_reclaimed;
        section("Deleted Volumes", &v.volumes_deleted.unwrap_or_default());
    }
    let dangling: &[&str] = if a.all { &["dangling=false"] } else { &[] };
    let iq = filters_query(&a.filter, dangling)?;
    let i: image::PruneReport = client.post_json(&format!("/images/prune{iq}")).await?;
    reclaimed += i.space_reclaimed;
    let images: Vec<String> = i
        .images_deleted
        .unwrap_or_default()
        .into_iter()
        .flat_map(|d| {
            let untagged = (!d.untagged.is_empty()).then(|| format!("untagged: {}", d.untagged));
            let deleted = (!d.deleted.is_empty()).then(|| format!("deleted: {}", d.deleted));
            untagged.into_iter().chain(deleted)
        })
        .collect();
    section("Deleted Images", &images);
    let b = build_prune(client, a.all, &a.filter).await?;
    reclaimed += b.space_reclaimed;
    section(
        "Deleted build cache objects",
        &b.caches_deleted.unwrap_or_default(),
    );
    println!("Total reclaimed space: {}", human_size_4(reclaimed));
    Ok(())
}

async fn build_prune(
    client: &Client,
    all: bool,
    filter: &[String],
) -> Result<BuildCachePruneReport> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if all {
        pairs.push(("all", "1".into()));
    }
    if let Some(f) = filters_json(filter)? {
        pairs.push(("filters", f));
    }
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(client
        .post_json(&format!("/build/prune?{}", query(&borrowed)))
        .await?)
}

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache.
    Prune(BuilderPruneArgs),
}

#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all of the build cache, not only dangling entries.
    #[arg(short, long)]
    all: bool,
    /// Filter (until=DURATION, label=K[=V]).
    #[arg(long)]
    filter: Vec<String>,
    /// Do not ask (berth never prompts: required).
    #[arg(short, long)]
    force: bool,
}

/// `docker builder prune`.
pub async fn builder(client: &Client, cmd: BuilderCommand) -> Result<()> {
    match cmd {
        BuilderCommand::Prune(a) => {
            if !a.force {
                bail!("builder prune removes the build cache: confirm with --force (berth does not prompt)");
            }
            let b = build_prune(client, a.all, &a.filter).await?;
            section(
                "Deleted build cache objects",
                &b.caches_deleted.unwrap_or_default(),
            );
            println!("Total reclaimed space: {}", human_size_4(b.space_reclaimed));
            Ok(())
        }
    }
}

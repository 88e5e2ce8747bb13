//! `berth volume create|ls|inspect|rm|prune`, as the docker CLI's.

use anyhow::{bail, Result};
use berth_api::client::{path_name, query, Client};
use berth_api_types::volume::{CreateOptions, ListResponse, PruneReport, Volume};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::containers::run::daemon_message;
use super::{filters_json, key_value_map};
use crate::exit;
use crate::format::{human_size_4, print_inspected, print_rows};

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Show volumes in detail.
    Inspect(InspectArgs),
    /// Remove volumes (not one a container uses).
    #[command(alias = "remove")]
    Rm(RemoveArgs),
    /// Remove unused anonymous volumes (every unused one with -a).
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The volume driver (only local).
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// A label, key=value.
    #[arg(long)]
    label: Vec<String>,
    /// A driver option, key=value (type, device, o).
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// The name (a generated one without it).
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only names.
    #[arg(short, long)]
    quiet: bool,
    /// dangling=true|false, name=PART, label=KEY[=VALUE], driver=NAME.
    #[arg(short, long)]
    filter: Vec<String>,
    /// Go template ('{{.Name}}', 'table {{.Driver}}\t{{.Name}}') or json.
    #[arg(long)]
    format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template applied to each volume's JSON.
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// No error for a volume that does not exist.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Every unused volume, not only anonymous ones.
    #[arg(short, long)]
    all: bool,
    /// label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long)]
    filter: Vec<String>,
    /// Do not ask (berth never prompts: required).
    #[arg(short, long)]
    force: bool,
}

fn header_name(field: &str) -> Option<&'static str> {
    Some(match field {
        "Driver" => "DRIVER",
        "Name" => "VOLUME NAME",
        "Mountpoint" => "MOUNTPOINT",
        "Scope" => "SCOPE",
        "Labels" => "LABELS",
        "CreatedAt" => "CREATED AT",
        _ => return None,
    })
}

/// The fields `docker volume ls --format` offers: the volume's (Labels as `k=v,...`).
fn row(v: &Volume) -> Result<Value> {
    let labels: Vec<String> = v
        .labels
        .iter()
        .flatten()
        .map(|(k, x)| format!("{k}={x}"))
        .collect();
    let mut r = serde_json::to_value(v)?;
    r["Labels"] = json!(labels.join(","));
    Ok(r)
}

pub async fn volume(client: &Client, cmd: VolumeCommand) -> Result<()> {
    match cmd {
        VolumeCommand::Create(a) => {
            let body = CreateOptions {
                name: a.name.unwrap_or_default(),
                driver: a.driver,
                // Left out when empty, as the docker CLI 28 leaves them (shown as null).
                driver_opts: Some(key_value_map(&a.opt)).filter(|m| !m.is_empty()),
                labels: Some(key_value_map(&a.label)).filter(|m| !m.is_empty()),
                ..CreateOptions::default()
            };
            let v: Volume = client.post_body("/volumes/create", &body).await?;
            println!("{}", v.name);
            Ok(())
        }
        VolumeCommand::Ls(a) => {
            let q = match filters_json(&a.filter)? {
                Some(f) => format!("?{}", query(&[("filters", &f)])),
                None => String::new(),
            };
            let list: ListResponse = client.get_json(&format!("/volumes{q}")).await?;
            if a.quiet {
                for v in &list.volumes {
                    println!("{}", v.name);
                }
                return Ok(());
            }
            let rows: Vec<Value> = list.volumes.iter().map(row).collect::<Result<_>>()?;
            print_rows(
                &rows,
                a.format.as_deref(),
                "table {{.Driver}}\t{{.Name}}",
                &header_name,
            )
        }
        VolumeCommand::Inspect(a) => {
            let mut all = Vec::new();
            for name in &a.volumes {
                all.push(
                    client
                        .get_json::<Value>(&format!("/volumes/{}", path_name(name)))
                        .await?,
                );
            }
            print_inspected(&all, a.format.as_deref())
        }
        VolumeCommand::Rm(a) => {
            let q = query(&[("force", if a.force { "1" } else { "0" })]);
            let mut failed = false;
            for name in &a.volumes {
                let path = format!("/volumes/{}?{q}", path_name(name));
                match client.delete_json::<Value>(&path).await {
                    Ok(_) => println!("{name}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", daemon_message(&e));
                        failed = true;
                    }
                }
            }
            if failed {
                return Err(exit::with_code(1));
            }
            Ok(())
        }
        VolumeCommand::Prune(a) => {
            if !a.force {
                bail!("volume prune removes volumes: confirm with --force (berth does not prompt)");
            }
            let mut filters = a.filter.clone();
            if a.all {
                filters.push("all=true".into());
            }
            let q = match filters_json(&filters)? {
                Some(f) => format!("?{}", query(&[("filters", &f)])),
                None => String::new(),
            };
            let r: PruneReport = client.post_json(&format!("/volumes/prune{q}")).await?;
            let deleted = r.volumes_deleted.unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Volumes:");
                for d in deleted {
                    println!("{d}");
                }
                println!();
            }
            println!("Total reclaimed space: {}", human_size_4(r.space_reclaimed));
            Ok(())
        }
    }
}

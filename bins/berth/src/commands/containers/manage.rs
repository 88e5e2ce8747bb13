//! stop, kill, restart, rm, pause, unpause, rename, wait, top, port, container prune,
//! inspect: one request per container, reported as docker reports them.

use anyhow::{bail, Result};
use berth_api::client::{query, Client, ClientError};
use berth_api_types::container::{InspectResponse, PruneReport, TopResponse, WaitResponse};
use clap::Args;
use serde_json::Value;

use super::run::{container_path, daemon_message};
use crate::commands::filters_json;
use crate::exit;
use crate::format::{human_size_4, print_inspected, Table};

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_hyphen_values = true
    )]
    time: Option<i64>,
    /// The signal to stop with (else the container's stop signal).
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The signal to send.
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short, long)]
    force: bool,
    /// Remove the container's anonymous volumes.
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainersArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    container: String,
    /// ps options (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    port: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Filter (until=DURATION, label=K[=V]).
    #[arg(long)]
    filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template applied to each object's JSON.
    #[arg(short, long)]
    format: Option<String>,
    /// Only this kind of object: container or image.
    #[arg(long = "type")]
    kind: Option<String>,
    /// Show sizes (containers).
    #[arg(short, long)]
    size: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

/// Run `action` for each container: docker's error line for each failure, status 1 if any
/// failed. `action` prints what a success shows.
async fn for_each_container<F, Fut>(containers: &[String], mut action: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let mut failed = false;
    for name in containers {
        if let Err(e) = action(name.clone()).await {
            eprintln!("Error response from daemon: {}", daemon_message(&e));
            failed = true;
        }
    }
    if failed {
        return Err(exit::with_code(1));
    }
    Ok(())
}

/// As [`for_each_container`], printing each name that succeeded.
pub(super) async fn each<F, Fut>(containers: &[String], mut action: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    for_each_container(containers, |name| {
        let done = action(name.clone());
        async move {
            done.await?;
            println!("{name}");
            Ok(())
        }
    })
    .await
}

/// POST `action` (a path after the container's, with its query) to each container.
pub(super) async fn post_to_each(
    client: &Client,
    containers: &[String],
    action: &str,
) -> Result<()> {
    each(containers, |name| {
        let path = container_path(&name, action);
        async move { client.post_empty(&path).await }
    })
    .await
}

fn stop_query(args: &StopArgs) -> String {
    let mut q = Vec::new();
    let t = args.time.map(|t| t.to_string());
    if let Some(t) = &t {
        q.push(("t", t.as_str()));
    }
    if let Some(s) = &args.signal {
        q.push(("signal", s.as_str()));
    }
    query(&q)
}

pub async fn stop(client: &Client, args: StopArgs) -> Result<()> {
    let q = stop_query(&args);
    post_to_each(client, &args.containers, &format!("/stop?{q}")).await
}

pub async fn restart(client: &Client, args: StopArgs) -> Result<()> {
    let q = stop_query(&args);
    post_to_each(client, &args.containers, &format!("/restart?{q}")).await
}

pub async fn kill(client: &Client, args: KillArgs) -> Result<()> {
    let q = query(&[("signal", &args.signal)]);
    post_to_each(client, &args.containers, &format!("/kill?{q}")).await
}

pub async fn rm(client: &Client, args: RmArgs) -> Result<()> {
    let q = query(&[
        ("force", if args.force { "1" } else { "0" }),
        ("v", if args.volumes { "1" } else { "0" }),
    ]);
    each(&args.containers, |name| {
        let path = container_path(&name, &format!("?{q}"));
        async move { client.delete_json::<Value>(&path).await.map(drop) }
    })
    .await
}

pub async fn pause(client: &Client, args: ContainersArgs) -> Result<()> {
    post_to_each(client, &args.containers, "/pause").await
}

pub async fn unpause(client: &Client, args: ContainersArgs) -> Result<()> {
    post_to_each(client, &args.containers, "/unpause").await
}

pub async fn rename(client: &Client, args: RenameArgs) -> Result<()> {
    let q = query(&[("name", &args.new_name)]);
    client
        .post_empty(&container_path(&args.container, &format!("/rename?{q}")))
        .await?;
    Ok(())
}

/// Each container's exit code, once it is not running.
pub async fn wait(client: &Client, args: ContainersArgs) -> Result<()> {
    for_each_container(&args.containers, |name| async move {
        let v: WaitResponse = client.post_json(&container_path(&name, "/wait")).await?;
        println!("{}", v.status_code);
        Ok(())
    })
    .await
}

pub async fn top(client: &Client, args: TopArgs) -> Result<()> {
    let mut path = container_path(&args.container, "/top");
    if !args.ps_args.is_empty() {
        path.push('?');
        path.push_str(&query(&[("ps_args", &args.ps_args.join(" "))]));
    }
    let top: TopResponse = client.get_json(&path).await?;
    let mut t = Table::new();
    t.push_line(&top.titles.join("\t"));
    for p in &top.processes {
        t.push_line(&p.join("\t"));
    }
    print!("{}", t.render());
    Ok(())
}

/// The published ports (none until bridge networking exists).
pub async fn port(client: &Client, args: PortArgs) -> Result<()> {
    let c: InspectResponse = client
        .get_json(&container_path(&args.container, "/json"))
        .await?;
    let mut printed = false;
    for (private, bindings) in &c.network_settings.ports {
        if let Some(want) = &args.port {
            let want = if want.contains('/') {
                want.clone()
            } else {
                format!("{want}/tcp")
            };
            if *private != want {
                continue;
            }
        }
        for b in bindings.iter().flatten() {
            let (ip, port) = (&b.host_ip, &b.host_port);
            match &args.port {
                Some(_) => println!("{ip}:{port}"),
                None => println!("{private} -> {ip}:{port}"),
            }
            printed = true;
        }
    }
    if let (Some(want), false) = (&args.port, printed) {
        bail!(
            "Error: No public port '{want}' published for {}",
            args.container
        );
    }
    Ok(())
}

pub async fn prune(client: &Client, args: PruneArgs) -> Result<()> {
    if !args.force {
        bail!("container prune removes every stopped container: confirm with --force (berth does not prompt)");
    }
    let q = match filters_json(&args.filter)? {
        Some(f) => query(&[("filters", &f)]),
        None => String::new(),
    };
    let r: PruneReport = client.post_json(&format!("/containers/prune?{q}")).await?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for id in deleted {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size_4(r.space_reclaimed));
    Ok(())
}

/// `inspect`: containers first, then images, as docker looks them up.
pub async fn inspect(client: &Client, args: InspectArgs) -> Result<()> {
    let kind = args.kind.as_deref().unwrap_or("");
    if !["", "container", "image"].contains(&kind) {
        bail!("\"{kind}\" is not a valid value for --type");
    }
    let mut all = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        let mut found = None;
        if kind != "image" {
            let size = if args.size { "?size=1" } else { "" };
            found = lookup(client, &container_path(name, &format!("/json{size}"))).await?;
        }
        if found.is_none() && kind != "container" {
            found = lookup(client, &Client::image_path(name, "/json")).await?;
        }
        match found {
            Some(v) => all.push(v),
            None => missing.push(name.clone()),
        }
    }
    print_inspected(&all, args.format.as_deref())?;
    if !missing.is_empty() {
        for name in &missing {
            eprintln!("Error: No such object: {name}");
        }
        return Err(exit::with_code(1));
    }
    Ok(())
}

/// A GET that may find nothing (404).
async fn lookup(client: &Client, path: &str) -> Result<Option<Value>> {
    match client.get_json(path).await {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::Daemon { status: 404, .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

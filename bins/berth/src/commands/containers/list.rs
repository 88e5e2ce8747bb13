//! ps: containers as docker lists them (the same columns, filters and --format fields).

use anyhow::Result;
use berth_api::client::{query, Client};
use berth_api_types::container::Summary;
use clap::Args;
use serde_json::{json, Value};

use crate::commands::filters_json;
use crate::format::{human_size, print_rows, since};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows only running ones).
    #[arg(short, long)]
    all: bool,
    /// Only show container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show the n last created containers (all states).
    #[arg(short = 'n', long, allow_hyphen_values = true)]
    last: Option<i64>,
    /// Show the latest created container (all states).
    #[arg(short, long)]
    latest: bool,
    /// Show sizes.
    #[arg(short, long)]
    size: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Filter (status=, name=, label=, ancestor=, exited=, id=, health=).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Go template ('{{.ID}} {{.Names}}', 'table {{.Names}}\t{{.Status}}') or json.
    #[arg(long)]
    format: Option<String>,
}

/// docker's Ellipsis: at most `max` characters, the last one "…" when cut.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

/// The fields `docker ps --format` offers.
fn row(c: &Summary, args: &PsArgs) -> Value {
    let names: Vec<&str> = c.names.iter().map(|n| n.trim_start_matches('/')).collect();
    let command = &c.command;
    let command = if args.no_trunc {
        format!("\"{command}\"")
    } else {
        format!("\"{}\"", ellipsis(command, 20))
    };
    let image = if c.image.starts_with("sha256:") {
        short_id(&c.image, args.no_trunc)
    } else {
        c.image.clone()
    };
    let created = c.created;
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // Negative sizes are not sent; were one, it would show as none.
    let bytes = |n: i64| human_size(u64::try_from(n).unwrap_or(0));
    let size = format!("{} (virtual {})", bytes(c.size_rw), bytes(c.size_root_fs));
    json!({
        "ID": short_id(&c.id, args.no_trunc),
        "Image": image,
        "Command": command,
        "CreatedAt": humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(created.max(0) as u64)).to_string(),
        "RunningFor": since(created),
        "Ports": "",
        "State": c.state,
        "Status": c.status,
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "Mounts": "",
        "Networks": networks(c),
    })
}

/// The Networks column as before the types: HostConfig.NetworkMode, null when the daemon
/// left it out (an empty mode).
fn networks(c: &Summary) -> Value {
    match c.host_config.network_mode.as_str() {
        "" => Value::Null,
        mode => json!(mode),
    }
}

fn header_name(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" => "CONTAINER ID",
        "Image" => "IMAGE",
        "Command" => "COMMAND",
        "CreatedAt" => "CREATED AT",
        "RunningFor" => "CREATED",
        "Ports" => "PORTS",
        "State" => "STATE",
        "Status" => "STATUS",
        "Size" => "SIZE",
        "Names" => "NAMES",
        "Labels" => "LABELS",
        "Mounts" => "MOUNTS",
        "Networks" => "NETWORKS",
        _ => return None,
    })
}

pub async fn ps(client: &Client, args: PsArgs) -> Result<()> {
    let mut q: Vec<(&str, String)> = Vec::new();
    if args.all {
        q.push(("all", "1".into()));
    }
    if args.size {
        q.push(("size", "1".into()));
    }
    if let Some(n) = args.last.filter(|n| *n > 0) {
        q.push(("limit", n.to_string()));
    } else if args.latest {
        q.push(("limit", "1".into()));
    }
    if let Some(f) = filters_json(&args.filter)? {
        q.push(("filters", f));
    }
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let list: Vec<Summary> = client
        .get_json(&format!("/containers/json?{}", query(&pairs)))
        .await?;
    if args.quiet {
        for c in &list {
            println!("{}", short_id(&c.id, args.no_trunc));
        }
        return Ok(());
    }
    let rows: Vec<Value> = list.iter().map(|c| row(c, &args)).collect();
    let default = if args.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    print_rows(&rows, args.format.as_deref(), default, &header_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_are_cut_as_docker_cuts_them() {
        assert_eq!(ellipsis("sh", 20), "sh");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
    }
}

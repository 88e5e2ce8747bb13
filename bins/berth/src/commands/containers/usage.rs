//! `berth stats` and `berth update`: containers' resource use, and changing their limits.

use anyhow::Result;
use berth_api::client::{query, Client};
use berth_api_types::container::{Summary, UpdateResponse};
use clap::Args;
use serde_json::{json, Map, Value};

use super::manage::each;
use super::options::{parse_bytes, parse_cpus, parse_restart};
use super::run::{container_path, daemon_message};
use crate::format::{human_size, print_rows};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Print the first result and exit.
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Go template, `table TEMPLATE` or `json`.
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn header_name(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" | "Container" => "CONTAINER ID",
        "Name" => "NAME",
        "CPUPerc" => "CPU %",
        "MemUsage" => "MEM USAGE / LIMIT",
        "MemPerc" => "MEM %",
        "NetIO" => "NET I/O",
        "BlockIO" => "BLOCK I/O",
        "PIDs" => "PIDS",
        _ => return None,
    })
}

pub async fn stats(client: &Client, args: StatsArgs) -> Result<()> {
    loop {
        let names = chosen(client, &args).await?;
        let mut rows = Vec::new();
        for name in &names {
            let path = format!(
                "{}?{}",
                container_path(name, "/stats"),
                query(&[("stream", "false")])
            );
            match client.get_json::<Value>(&path).await {
                Ok(v) => rows.push(row(&v, name, args.no_trunc)),
                // Named containers must exist; a listed one may have gone meanwhile.
                Err(e) if !args.containers.is_empty() => {
                    anyhow::bail!("Error response from daemon: {}", daemon_message(&e))
                }
                Err(_) => {}
            }
        }
        if !args.no_stream && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            // Redraw in place, as the docker CLI does on a terminal.
            print!("\x1b[2J\x1b[H");
        }
        print_rows(&rows, args.format.as_deref(), STATS_TABLE, &header_name)?;
        if args.no_stream {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The named containers, or those `ps` (with `-a`) lists.
async fn chosen(client: &Client, args: &StatsArgs) -> Result<Vec<String>> {
    if !args.containers.is_empty() {
        return Ok(args.containers.clone());
    }
    let q = if args.all { "?all=1" } else { "" };
    let list: Vec<Summary> = client.get_json(&format!("/containers/json{q}")).await?;
    Ok(list.into_iter().map(|c| c.id).collect())
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// One line of the table, as the docker CLI computes it from moby's StatsResponse.
fn row(v: &Value, asked: &str, no_trunc: bool) -> Value {
    let id = v["id"].as_str().unwrap_or_default();
    let (memory, limit) = memory_usage(&v["memory_stats"]);
    let (rx, tx) = network_io(&v["networks"]);
    let (read, write) = block_io(&v["blkio_stats"]["io_service_bytes_recursive"]);
    let mem_percent = if limit > 0.0 {
        memory / limit * 100.0
    } else {
        0.0
    };
    json!({
        "ID": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Container": asked,
        "Name": v["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{:.2}%", cpu_percent(v)),
        "MemUsage": format!("{} / {}", bytes_size(memory), bytes_size(limit)),
        "MemPerc": format!("{mem_percent:.2}%"),
        "NetIO": format!("{} / {}", human_size(rx as u64), human_size(tx as u64)),
        "BlockIO": format!("{} / {}", human_size(read as u64), human_size(write as u64)),
        "PIDs": number(&v["pids_stats"]["current"]).to_string(),
    })
}

fn cpu_percent(v: &Value) -> f64 {
    let (now, before) = (&v["cpu_stats"], &v["precpu_stats"]);
    let cpu =
        number(&now["cpu_usage"]["total_usage"]) - number(&before["cpu_usage"]["total_usage"]);
    let system = number(&now["system_cpu_usage"]) - number(&before["system_cpu_usage"]);
    let mut cpus = number(&now["online_cpus"]);
    if cpus == 0.0 {
        cpus = now["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, Vec::len) as f64;
    }
    if cpu > 0.0 && system > 0.0 {
        cpu / system * cpus * 100.0
    } else {
        0.0
    }
}

/// Usage without the inactive page cache (v1's total_inactive_file, v2's inactive_file).
fn memory_usage(m: &Value) -> (f64, f64) {
    let usage = number(&m["usage"]);
    let stats = &m["stats"];
    let cache = [&stats["total_inactive_file"], &stats["inactive_file"]]
        .into_iter()
        .find_map(Value::as_f64)
        .filter(|c| *c < usage)
        .unwrap_or(0.0);
    (usage - cache, number(&m["limit"]))
}

fn network_io(networks: &Value) -> (f64, f64) {
    networks
        .as_object()
        .into_iter()
        .flat_map(Map::values)
        .fold((0.0, 0.0), |(rx, tx), n| {
            (rx + number(&n["rx_bytes"]), tx + number(&n["tx_bytes"]))
        })
}

fn block_io(entries: &Value) -> (f64, f64) {
    entries
        .as_array()
        .into_iter()
        .flatten()
        .fold((0.0, 0.0), |(r, w), e| {
            match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => (r + number(&e["value"]), w),
                Some("write") => (r, w + number(&e["value"])),
                _ => (r, w),
            }
        })
}

/// docker's units.BytesSize: binary units, four significant digits ("1.984MiB").
fn bytes_size(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let (mut v, mut i) = (bytes, 0);
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    let digits = 3usize.saturating_sub(if v >= 1.0 {
        v.log10().floor() as usize
    } else {
        0
    });
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{}", units[i])
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Memory limit.
    #[arg(short, long)]
    memory: Option<String>,
    /// Memory plus swap limit ("-1" for unlimited swap).
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    cpu_shares: Option<i64>,
    /// CPU CFS period (microseconds).
    #[arg(long)]
    cpu_period: Option<i64>,
    /// CPU CFS quota (microseconds).
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU real-time period (microseconds).
    #[arg(long)]
    cpu_rt_period: Option<i64>,
    /// CPU real-time runtime (microseconds).
    #[arg(long)]
    cpu_rt_runtime: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution.
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Process limit ("-1" for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block I/O weight (10 to 1000, 0 to leave it).
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// Restart policy (no, always, unless-stopped, on-failure[:N]).
    #[arg(long)]
    restart: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

impl UpdateArgs {
    /// moby's UpdateConfig with the flags given (the rest at zero: left as they are).
    fn body(&self) -> Result<Value> {
        let mut body = Map::new();
        let mut put = |key: &str, v: Value| {
            body.insert(key.to_string(), v);
        };
        for (key, size) in [
            ("Memory", &self.memory),
            ("MemoryReservation", &self.memory_reservation),
        ] {
            if let Some(s) = size {
                put(key, json!(parse_bytes(s)?));
            }
        }
        if let Some(s) = &self.memory_swap {
            put(
                "MemorySwap",
                json!(if s == "-1" { -1 } else { parse_bytes(s)? }),
            );
        }
        if let Some(c) = &self.cpus {
            put("NanoCpus", json!(parse_cpus(c)?));
        }
        for (key, n) in [
            ("CpuShares", self.cpu_shares),
            ("CpuPeriod", self.cpu_period),
            ("CpuQuota", self.cpu_quota),
            ("CpuRealtimePeriod", self.cpu_rt_period),
            ("CpuRealtimeRuntime", self.cpu_rt_runtime),
            ("PidsLimit", self.pids_limit),
        ] {
            if let Some(n) = n {
                put(key, json!(n));
            }
        }
        if let Some(s) = &self.cpuset_cpus {
            put("CpusetCpus", json!(s));
        }
        if let Some(s) = &self.cpuset_mems {
            put("CpusetMems", json!(s));
        }
        if let Some(w) = self.blkio_weight {
            put("BlkioWeight", json!(w));
        }
        if let Some(r) = &self.restart {
            put("RestartPolicy", serde_json::to_value(parse_restart(r)?)?);
        }
        if body.is_empty() {
            anyhow::bail!("you must provide one or more flags when using this command");
        }
        Ok(Value::Object(body))
    }
}

pub async fn update(client: &Client, args: UpdateArgs) -> Result<()> {
    let body = args.body()?;
    each(&args.containers, |name| {
        let path = container_path(&name, "/update");
        let body = &body;
        async move {
            let answer: UpdateResponse = client.post_body(&path, body).await?;
            for w in &answer.warnings {
                eprintln!("{w}");
            }
            Ok(())
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_binary_units_as_docker_stats_shows_them() {
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(64.0 * 1024.0 * 1024.0), "64MiB");
        assert_eq!(bytes_size(2080374.0), "1.984MiB");
        assert_eq!(bytes_size(8.337e9), "7.764GiB");
    }

    #[test]
    fn a_row_as_the_docker_cli_computes_it() {
        let v = json!({
            "id": "0123456789abcdef", "name": "/web", "read": "2026-12-07T01:00:00Z",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3145728, "limit": 8388608, "stats": {"inactive_file": 1048576}},
            "pids_stats": {"current": 3},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096}, {"op": "Write", "value": 8192}]},
        });
        let r = row(&v, "web", false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "2MiB / 8MiB");
        assert_eq!(r["MemPerc"], "25.00%");
        assert_eq!(r["NetIO"], "1.5kB / 0B");
        assert_eq!(r["BlockIO"], "4.1kB / 8.19kB");
        assert_eq!(r["PIDs"], "3");
        let stopped = row(
            &json!({"id": "ab", "name": "/x", "read": "0001-01-01T00:00:00Z"}),
            "x",
            false,
        );
        assert_eq!(stopped["CPUPerc"], "0.00%");
        assert_eq!(stopped["MemUsage"], "0B / 0B");
    }

    #[test]
    fn update_sends_only_the_flags_given() {
        let args = UpdateArgs {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            memory_reservation: None,
            cpus: Some("0.5".into()),
            cpu_shares: None,
            cpu_period: None,
            cpu_quota: None,
            cpu_rt_period: None,
            cpu_rt_runtime: None,
            cpuset_cpus: None,
            cpuset_mems: None,
            pids_limit: Some(-1),
            blkio_weight: None,
            restart: Some("on-failure:3".into()),
            containers: vec!["web".into()],
        };
        assert_eq!(
            args.body().expect("a body"),
            json!({"Memory": 67108864, "MemorySwap": -1, "NanoCpus": 500000000, "PidsLimit": -1,
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})
        );
    }
}

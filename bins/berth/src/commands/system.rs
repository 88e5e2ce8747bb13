//! version, info, system df.

use anyhow::Result;
use berth_api::client::Client;
use clap::Subcommand;
use serde_json::Value;

use crate::format::{human_size, Table};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df,
    /// Show system-wide information.
    Info,
}

pub async fn version(client: &Client) -> Result<()> {
    let v: Value = client.get_json("/version").await?;
    println!(
        "Client:\n Version:      {}\n API version:  {}",
        env!("CARGO_PKG_VERSION"),
        client.version()
    );
    println!(
        "\nServer: {}\n Version:      {}\n API version:  {} (minimum version {})\n OS/Arch:      {}/{}\n Kernel:       {}",
        v["Platform"]["Name"].as_str().unwrap_or_default(),
        v["Version"].as_str().unwrap_or_default(),
        v["ApiVersion"].as_str().unwrap_or_default(),
        v["MinAPIVersion"].as_str().unwrap_or_default(),
        v["Os"].as_str().unwrap_or_default(),
        v["Arch"].as_str().unwrap_or_default(),
        v["KernelVersion"].as_str().unwrap_or_default(),
    );
    Ok(())
}

pub async fn info(client: &Client) -> Result<()> {
    let i: Value = client.get_json("/info").await?;
    let s = |k: &str| i[k].as_str().map_or_else(|| i[k].to_string(), String::from);
    for (label, key) in [
        ("Server Version", "ServerVersion"),
        ("Images", "Images"),
        ("Storage Driver", "Driver"),
        ("Cgroup Driver", "CgroupDriver"),
        ("Cgroup Version", "CgroupVersion"),
        ("Default Runtime", "DefaultRuntime"),
        ("Kernel Version", "KernelVersion"),
        ("Operating System", "OperatingSystem"),
        ("Architecture", "Architecture"),
        ("CPUs", "NCPU"),
        ("Total Memory", "MemTotal"),
        ("Name", "Name"),
        ("ID", "ID"),
        ("Root Dir", "DockerRootDir"),
    ] {
        let value = if key == "MemTotal" {
            human_size(i[key].as_u64().unwrap_or(0))
        } else {
            s(key)
        };
        println!("{label}: {value}");
    }
    Ok(())
}

pub async fn system(client: &Client, cmd: SystemCommand) -> Result<()> {
    match cmd {
        SystemCommand::Info => info(client).await,
        SystemCommand::Df => {
            let df: Value = client.get_json("/system/df").await?;
            let images = df["Images"].as_array().cloned().unwrap_or_default();
            let mut t = Table::new();
            t.push_line("TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE");
            let size = df["LayersSize"].as_u64().unwrap_or(0);
            t.push_line(&format!(
                "Images\t{}\t0\t{}\t{}",
                images.len(),
                human_size(size),
                human_size(size)
            ));
            t.push_line("Containers\t0\t0\t0B\t0B");
            let volumes = df["Volumes"].as_array().cloned().unwrap_or_default();
            let size_of = |v: &Value| v["UsageData"]["Size"].as_u64().unwrap_or(0);
            let used = |v: &&Value| v["UsageData"]["RefCount"].as_u64().unwrap_or(0) > 0;
            let total: u64 = volumes.iter().map(size_of).sum();
            let unused: u64 = volumes.iter().filter(|v| !used(v)).map(size_of).sum();
            t.push_line(&format!(
                "Local Volumes\t{}\t{}\t{}\t{}",
                volumes.len(),
                volumes.iter().filter(used).count(),
                human_size(total),
                human_size(unused)
            ));
            t.push_line("Build Cache\t0\t0\t0B\t0B");
            print!("{}", t.render());
            Ok(())
        }
    }
}

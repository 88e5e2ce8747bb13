//! version, info, system df.

use anyhow::Result;
use berth_api::client::Client;
use berth_api_types::system::{DiskUsage, Info, Version};
use berth_api_types::volume;
use clap::Subcommand;

use crate::format::{human_size, Table};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df,
    /// Show system-wide information.
    Info,
}

pub async fn version(client: &Client) -> Result<()> {
    let v: Version = client.get_json("/version").await?;
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

pub async fn info(client: &Client) -> Result<()> {
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
        ("Total Memory", human_size(i.mem_total)),
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
        SystemCommand::Info => info(client).await,
        SystemCommand::Df => {
            let df: DiskUsage = client.get_json("/system/df").await?;
            let images = df.images;
            let mut t = Table::new();
            t.push_line("TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE");
            let size = df.layers_size;
            t.push_line(&format!(
                "Images\t{}\t0\t{}\t{}",
                images.len(),
                human_size(size),
                human_size(size)
            ));
            t.push_line("Containers\t0\t0\t0B\t0B");
            let volumes = df.volumes;
            // -1 (not computed) counts as nothing, as before.
            let size_of = |v: &volume::Volume| {
                v.usage_data
                    .as_ref()
                    .map_or(0, |u| u.size.max(0).unsigned_abs())
            };
            let used = |v: &&volume::Volume| v.usage_data.as_ref().is_some_and(|u| u.ref_count > 0);
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

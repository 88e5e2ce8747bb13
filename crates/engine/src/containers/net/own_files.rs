//! The /etc/hosts, /etc/hostname and /etc/resolv.conf of a container with no endpoint of its
//! own (`--network none` or `host`), as dockerd writes them, so that `--add-host`, `--dns*`,
//! `--hostname` and `--domainname` hold there too: `none` gets the default hosts lines and
//! the resolv.conf a bridge container gets (the host's loopback servers dropped); `host` gets
//! copies of the host's hosts and resolv.conf (its loopback servers are reachable there) and
//! the host's name.

use std::net::IpAddr;
use std::path::PathBuf;

use berth_network::etc;

use crate::containers::{ContainerRecord, Containers};
use crate::error::{Error, Result};

/// Write the files into the container's directory for a container on `none` or `host`;
/// the directory to mount them from (None: another mode, whose files come from its
/// endpoint, donor or pod).
pub(crate) fn write(containers: &Containers, record: &ContainerRecord) -> Result<Option<PathBuf>> {
    let on_host = match record.network_mode() {
        "host" => true,
        "none" => false,
        _ => return Ok(None),
    };
    let dir = containers.dir(&record.id);
    let extra = extra_hosts(record, || host_gateway(containers))?;
    let given = etc::Resolv {
        servers: record.net.dns.clone(),
        search: record.net.dns_search.clone(),
        options: record.net.dns_options.clone(),
    };
    let (hosts, hostname, resolv) = if on_host {
        let mut hosts = read("/etc/hosts")?;
        if !hosts.is_empty() && !hosts.ends_with('\n') {
            hosts.push('\n');
        }
        for (name, ip) in &extra {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
        let name = read("/proc/sys/kernel/hostname")?.trim().to_string();
        (
            hosts,
            name,
            etc::host_network_resolv_conf(&etc::host_resolv_conf(), &given),
        )
    } else {
        let hosts = etc::hosts(&extra, &[], &record.hostname(), &record.net.domainname);
        (
            hosts,
            record.hostname(),
            etc::resolv_conf(&etc::host_resolv_conf(), &given),
        )
    };
    super::write_etc(&dir, &hosts, &hostname, &resolv)?;
    Ok(Some(dir))
}

fn read(path: &str) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::Io(format!("read {path}: {e}"))),
    }
}

/// What `host-gateway` in `--add-host` stands for: the default bridge's address, as
/// dockerd's default host-gateway-ip.
fn host_gateway(containers: &Containers) -> Option<IpAddr> {
    containers
        .net
        .get()
        .and_then(|n| n.default.as_ref())
        .and_then(|n| n.view())
        .and_then(|v| v.address)
        .map(|a| IpAddr::V4(a.addr()))
}

/// `--add-host` entries, `host-gateway` resolved (`gateway` asked only then).
fn extra_hosts(
    record: &ContainerRecord,
    gateway: impl Fn() -> Option<IpAddr>,
) -> Result<Vec<(String, String)>> {
    record
        .net
        .extra_hosts
        .iter()
        .map(|(name, ip)| match ip.as_str() {
            "host-gateway" => gateway()
                .map(|g| (name.clone(), g.to_string()))
                .ok_or_else(no_host_gateway),
            _ => Ok((name.clone(), ip.clone())),
        })
        .collect()
}

fn no_host_gateway() -> Error {
    Error::InvalidArgument(
        "unable to derive the IP value for host-gateway: berthd has no default bridge".into(),
    )
}

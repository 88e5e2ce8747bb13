//! `berth network create|ls|inspect|rm|prune|connect|disconnect`, as the docker CLI's.

use std::net::IpAddr;

use anyhow::{bail, Result};
use berth_api::client::{path_name, query, Client};
use berth_api_types::network::{
    ConnectRequest, CreateRequest, CreateResponse, DisconnectRequest, EndpointIpamConfig,
    EndpointSettings, Ipam, IpamConfig, NetworkResource, PruneReport,
};
use clap::{Args, Subcommand};
use ipnet::IpNet;
use serde_json::{json, Value};

use super::containers::run::daemon_message;
use super::{filters_json, key_value_map};
use crate::exit;
use crate::format::{print_inspected, print_rows};

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Show networks in detail.
    Inspect(InspectArgs),
    /// Remove networks (not one a running container is on).
    #[command(alias = "remove")]
    Rm(RemoveArgs),
    /// Remove the user-defined networks no container refers to.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The network driver (bridge).
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// A subnet in CIDR form (one IPv4 and one IPv6).
    #[arg(long)]
    subnet: Vec<String>,
    /// Allocate container addresses from this sub-range (of the subnet that holds it).
    #[arg(long)]
    ip_range: Vec<String>,
    /// The gateway of the subnet that holds it.
    #[arg(long)]
    gateway: Vec<String>,
    /// An auxiliary address the driver must not hand out (NAME=IP).
    #[arg(long)]
    aux_address: Vec<String>,
    /// The IPAM driver (default).
    #[arg(long, default_value = "default")]
    ipam_driver: String,
    /// An IPAM driver option (KEY=VALUE).
    #[arg(long)]
    ipam_opt: Vec<String>,
    /// Enable IPv6.
    #[arg(long)]
    ipv6: bool,
    /// No way out of the network.
    #[arg(long)]
    internal: bool,
    /// Enable manual container attachment.
    #[arg(long)]
    attachable: bool,
    /// A label, KEY=VALUE.
    #[arg(long)]
    label: Vec<String>,
    /// A driver option, KEY=VALUE (com.docker.network.bridge.name, ...driver.mtu).
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// The network's scope (local).
    #[arg(long)]
    scope: Option<String>,
    name: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only ids.
    #[arg(short, long)]
    quiet: bool,
    /// name=, id=, driver=, type=custom|builtin, scope=, label=, dangling=.
    #[arg(short, long)]
    filter: Vec<String>,
    /// Go template ('{{.Name}}', 'table {{.ID}}\t{{.Name}}') or json.
    #[arg(long)]
    format: Option<String>,
    /// Do not shorten ids.
    #[arg(long)]
    no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template applied to each network's JSON.
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// No error for a network that does not exist.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// label=KEY[=VALUE], label!=KEY[=VALUE], until=TIME.
    #[arg(long)]
    filter: Vec<String>,
    /// Do not ask (berth never prompts: required).
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// A network-scoped alias.
    #[arg(long)]
    alias: Vec<String>,
    /// IPv4 address.
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address.
    #[arg(long)]
    ip6: Option<String>,
    /// A link-local address.
    #[arg(long)]
    link_local_ip: Vec<String>,
    /// A driver option for the endpoint (KEY=VALUE).
    #[arg(long)]
    driver_opt: Vec<String>,
    /// The network with the highest priority gives the default route.
    #[arg(long, allow_hyphen_values = true, default_value_t = 0)]
    gw_priority: i64,
    network: String,
    container: String,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Disconnect even from a network that no longer exists.
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

/// Whether `data` (an address, or a CIDR's address) lies in `subnet`.
fn subnet_holds(subnet: &str, data: &str) -> Result<bool> {
    let Ok(net) = subnet.parse::<IpNet>() else {
        bail!("invalid subnet {subnet}: invalid CIDR address");
    };
    let addr = data.split('/').next().unwrap_or(data);
    let Ok(ip) = addr.parse::<IpAddr>() else {
        bail!("invalid address {data}");
    };
    Ok(net.contains(&ip))
}

/// The one subnet of `subnets` that holds `data`, as the docker CLI pairs them.
fn holder<'a>(subnets: &'a [String], data: &str, what: &str) -> Result<&'a str> {
    for s in subnets {
        if subnet_holds(s, data)? {
            return Ok(s);
        }
    }
    bail!("no matching subnet for {what} {data}")
}

/// `--subnet`, `--ip-range`, `--gateway` and `--aux-address` paired into IPAM configs, as
/// the docker CLI's consolidateIpam pairs them (each with the subnet that holds it).
fn ipam_configs(a: &CreateArgs) -> Result<Vec<IpamConfig>> {
    if a.subnet.len() < a.ip_range.len() || a.subnet.len() < a.gateway.len() {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let mut configs: Vec<IpamConfig> = Vec::new();
    for s in &a.subnet {
        for c in &configs {
            if subnet_holds(s, &c.subnet)? || subnet_holds(&c.subnet, s)? {
                bail!("multiple overlapping subnet configuration is not supported");
            }
        }
        configs.push(IpamConfig {
            subnet: s.clone(),
            ..IpamConfig::default()
        });
    }
    let index = |s: &str| a.subnet.iter().position(|x| x == s).unwrap_or_default();
    for (values, what) in [(&a.ip_range, "range"), (&a.gateway, "gateway")] {
        for v in values {
            let config = &mut configs[index(holder(&a.subnet, v, what)?)];
            let field = if what == "range" {
                &mut config.ip_range
            } else {
                &mut config.gateway
            };
            if !field.is_empty() {
                bail!(
                    "cannot configure multiple {what}s ({v}, {field}) on the same subnet ({})",
                    config.subnet
                );
            }
            field.clone_from(v);
        }
    }
    for (key, addr) in key_value_map(&a.aux_address) {
        let config = &mut configs[index(holder(&a.subnet, &addr, "aux-address")?)];
        config.aux_address.insert(key, addr);
    }
    Ok(configs)
}

fn create_request(a: &CreateArgs) -> Result<CreateRequest> {
    Ok(CreateRequest {
        name: a.name.clone(),
        driver: a.driver.clone(),
        scope: a.scope.clone().unwrap_or_default(),
        enable_ipv6: a.ipv6,
        ipam: Some(Ipam {
            driver: a.ipam_driver.clone(),
            options: Some(key_value_map(&a.ipam_opt)),
            config: ipam_configs(a)?,
        }),
        internal: a.internal,
        attachable: a.attachable,
        options: key_value_map(&a.opt),
        labels: key_value_map(&a.label),
        ..CreateRequest::default()
    })
}

fn connect_request(a: &ConnectArgs) -> ConnectRequest {
    let ipam = EndpointIpamConfig {
        ipv4_address: a.ip.clone().unwrap_or_default(),
        ipv6_address: a.ip6.clone().unwrap_or_default(),
        link_local_ips: a.link_local_ip.clone(),
    };
    ConnectRequest {
        container: a.container.clone(),
        endpoint_config: Some(EndpointSettings {
            ipam_config: Some(ipam),
            aliases: Some(a.alias.clone()).filter(|x| !x.is_empty()),
            driver_opts: Some(key_value_map(&a.driver_opt)).filter(|o| !o.is_empty()),
            gw_priority: a.gw_priority,
            ..EndpointSettings::default()
        }),
    }
}

fn header_name(field: &str) -> Option<&'static str> {
    Some(match field {
        "ID" => "NETWORK ID",
        "Name" => "NAME",
        "Driver" => "DRIVER",
        "Scope" => "SCOPE",
        "IPv6" => "IPV6",
        "IPv4" => "IPV4",
        "Internal" => "INTERNAL",
        "Labels" => "LABELS",
        "CreatedAt" => "CREATED AT",
        _ => return None,
    })
}

/// The fields `docker network ls --format` offers.
fn row(n: &NetworkResource, no_trunc: bool) -> Value {
    let id = if no_trunc {
        n.id.as_str()
    } else {
        n.id.get(..12).unwrap_or(&n.id)
    };
    let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "ID": id,
        "Name": n.name,
        "Driver": n.driver,
        "Scope": n.scope,
        "IPv6": n.enable_ipv6,
        "IPv4": n.enable_ipv4,
        "Internal": n.internal,
        "Labels": labels.join(","),
        "CreatedAt": n.created,
    })
}

/// Run `each` for every name, printing the name on success and the daemon's message on
/// failure, as the docker CLI's rm commands; exit 1 when any failed.
async fn for_each_name<F, Fut>(names: &[String], mut each: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<bool, berth_api::client::ClientError>>,
{
    let mut failed = false;
    for name in names {
        match each(name.clone()).await {
            Ok(true) => println!("{name}"),
            Ok(false) => {}
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

pub async fn network(client: &Client, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Create(a) => {
            let r: CreateResponse = client
                .post_body("/networks/create", &create_request(&a)?)
                .await?;
            if !r.warning.is_empty() {
                eprintln!("WARNING: {}", r.warning);
            }
            println!("{}", r.id);
            Ok(())
        }
        NetworkCommand::Ls(a) => {
            let q = match filters_json(&a.filter)? {
                Some(f) => format!("?{}", query(&[("filters", &f)])),
                None => String::new(),
            };
            let mut list: Vec<NetworkResource> = client.get_json(&format!("/networks{q}")).await?;
            list.sort_by(|x, y| x.name.cmp(&y.name));
            if a.quiet {
                for n in &list {
                    println!("{}", row(n, a.no_trunc)["ID"].as_str().unwrap_or_default());
                }
                return Ok(());
            }
            let rows: Vec<Value> = list.iter().map(|n| row(n, a.no_trunc)).collect();
            print_rows(
                &rows,
                a.format.as_deref(),
                "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
                &header_name,
            )
        }
        NetworkCommand::Inspect(a) => {
            let mut all = Vec::new();
            for name in &a.networks {
                let path = format!("/networks/{}", path_name(name));
                all.push(client.get_json::<Value>(&path).await?);
            }
            print_inspected(&all, a.format.as_deref())
        }
        NetworkCommand::Rm(a) => {
            for_each_name(&a.networks, |name| async move {
                let path = format!("/networks/{}", path_name(&name));
                match client.delete_json::<Value>(&path).await {
                    Ok(_) => Ok(true),
                    Err(e) if a.force && is_not_found(&e) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await
        }
        NetworkCommand::Prune(a) => {
            if !a.force {
                bail!(
                    "network prune removes networks: confirm with --force (berth does not prompt)"
                );
            }
            let q = match filters_json(&a.filter)? {
                Some(f) => format!("?{}", query(&[("filters", &f)])),
                None => String::new(),
            };
            let r: PruneReport = client.post_json(&format!("/networks/prune{q}")).await?;
            let deleted = r.networks_deleted.unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                for d in deleted {
                    println!("{d}");
                }
            }
            Ok(())
        }
        NetworkCommand::Connect(a) => {
            let path = format!("/networks/{}/connect", path_name(&a.network));
            client
                .post_body::<_, Value>(&path, &connect_request(&a))
                .await?;
            Ok(())
        }
        NetworkCommand::Disconnect(a) => {
            let path = format!("/networks/{}/disconnect", path_name(&a.network));
            let body = DisconnectRequest {
                container: a.container,
                force: a.force,
            };
            client.post_body::<_, Value>(&path, &body).await?;
            Ok(())
        }
    }
}

fn is_not_found(e: &berth_api::client::ClientError) -> bool {
    matches!(e, berth_api::client::ClientError::Daemon { status, .. } if *status == 404)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: NetworkCommand,
    }

    fn create(args: &[&str]) -> Result<CreateRequest> {
        let argv = ["berth", "create"].into_iter().chain(args.iter().copied());
        match Cli::try_parse_from(argv).map_err(anyhow::Error::from)?.cmd {
            NetworkCommand::Create(a) => create_request(&a),
            other => bail!("parsed as {other:?}"),
        }
    }

    #[test]
    fn subnets_pair_with_their_ranges_gateways_and_aux_addresses() {
        let r = create(&[
            "--subnet",
            "10.5.0.0/16",
            "--subnet",
            "fd00:5::/64",
            "--gateway",
            "fd00:5::1",
            "--gateway",
            "10.5.0.1",
            "--ip-range",
            "10.5.1.0/24",
            "--aux-address",
            "x=10.5.0.9",
            "--ipv6",
            "n",
        ])
        .expect("create");
        let ipam = r.ipam.expect("ipam");
        assert_eq!(ipam.driver, "default");
        assert_eq!(ipam.config.len(), 2);
        assert_eq!(ipam.config[0].gateway, "10.5.0.1");
        assert_eq!(ipam.config[0].ip_range, "10.5.1.0/24");
        assert_eq!(ipam.config[0].aux_address["x"], "10.5.0.9");
        assert_eq!(ipam.config[1].gateway, "fd00:5::1");
        assert!(r.enable_ipv6);
        for (args, message) in [
            (
                &["--gateway", "10.0.0.1", "n"][..],
                "every ip-range or gateway must have a corresponding subnet",
            ),
            (
                &["--subnet", "10.0.0.0/8", "--subnet", "10.1.0.0/16", "n"][..],
                "overlapping",
            ),
            (
                &["--subnet", "10.0.0.0/24", "--gateway", "10.9.0.1", "n"][..],
                "no matching subnet for gateway 10.9.0.1",
            ),
            (
                &["--subnet", "nonsense", "--gateway", "10.0.0.1", "n"][..],
                "invalid subnet nonsense",
            ),
        ] {
            let err = create(args).expect_err(message).to_string();
            assert!(err.contains(message), "{args:?}: {err}");
        }
    }
}

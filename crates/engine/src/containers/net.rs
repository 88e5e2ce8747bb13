//! The default bridge network of containers: its options from the create request, the
//! container's endpoint (address from an IPAM whose state is the containers' records,
//! namespace, veth, published ports) made at start and undone at exit, and the repair of
//! all of it when berthd starts.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_image::DockerOCIImageConfig;
use berth_network::nft::{Forward, Forward6, Proto};
use berth_network::{bridge, dns, endpoint, etc, nft, ports, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::CreateBody;
use super::{ContainerRecord, Containers, Status};
use crate::error::{Error, Result};

pub(crate) mod own_files;
mod spares;

/// The daemon's network settings (daemon.json's `bridge`, `bip`, `iptables`...).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// None: `bridge: none`, no default network.
    pub bridge: Option<bridge::BridgeConfig>,
    /// Published ports and masquerading through berth's nftables table.
    pub iptables: bool,
    pub ip_masq: bool,
    pub ip_forward: bool,
    /// The nftables table (one per bridge, so daemons with their own bridges never meet).
    pub table: String,
    /// Where containers' network namespaces are held (under the exec root).
    pub netns_dir: PathBuf,
    /// The network's id in endpoints: `bridge` for the default network.
    pub id: String,
    /// No traffic between the bridge and anything else (`docker network create --internal`).
    pub internal: bool,
    /// IPv6 on the default bridge (daemon option `ipv6`): its subnet.
    pub ipv6: Option<Subnet6>,
    /// The IPv6 entries of `default-address-pools` (base, size); none: the daemon's ULA /48
    /// in /64s, as dockerd 27+.
    pub pools6: Vec<(Ipv6Net, u8)>,
}

/// Where the default bridge's IPv6 subnet comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subnet6 {
    /// `fixed-cidr-v6`.
    Fixed(Ipv6Net),
    /// `ipv6` alone: a subnet of the IPv6 pools, kept across restarts (dockerd 28).
    FromPools,
}

/// What a container asked of its network at create.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NetOptions {
    /// Container port (`80/tcp`) to its host bindings (host IP, host port or range).
    #[serde(default)]
    pub port_bindings: BTreeMap<String, Vec<(String, String)>>,
    /// Exposed ports (`80/tcp`), the image's and the request's.
    #[serde(default)]
    pub exposed: BTreeSet<String>,
    #[serde(default)]
    pub publish_all: bool,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `--add-host`: (name, address or `host-gateway`).
    #[serde(default)]
    pub extra_hosts: Vec<(String, String)>,
    #[serde(default)]
    pub domainname: String,
    /// The user-defined network (its id) when the container is on one.
    #[serde(default)]
    pub network_id: String,
    /// `--network-alias`: more names of the container on its user-defined network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`: the address asked for on a user-defined network.
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// `--ip6`: the IPv6 address asked for on an IPv6 user-defined network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    /// `--gw-priority` on its first network.
    #[serde(default)]
    pub gw_priority: i64,
    /// `--mac-address` on its first network (`aa:bb:...`; None: Docker's, from its IPv4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Its first network's interface sysctls (`net.X.Y.IFNAME.Z=V`, the endpoint's
    /// [`ENDPOINT_SYSCTLS`] driver option).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<String>,
    /// The networks it is on besides its first one (`docker network connect`, or a create
    /// body naming several).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<Join>,
}

/// One network a container is on, as asked.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Join {
    /// The network's name (`bridge`, or a user-defined network's).
    pub name: String,
    /// Its key in endpoints: `bridge`, or the user-defined network's id.
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    /// `--gw-priority`: the network with the highest gives the default route.
    #[serde(default)]
    pub gw_priority: i64,
    /// The MAC address asked for (None: Docker's, from its IPv4 address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Interface sysctls (`net.X.Y.IFNAME.Z=V`), set before the interface comes up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<String>,
}

/// A published port as it was made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Published {
    pub port: u16,
    pub proto: String,
    pub host_ip: String,
    pub host_port: u16,
}

/// A running container's place on the bridge (kept in its record while it runs: the IPAM
/// hands out no address a record holds, and a start of berthd undoes the endpoints of
/// containers that no longer run).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub host_ifname: String,
    pub netns: PathBuf,
    /// The directory of the container's hosts, hostname and resolv.conf.
    pub files: PathBuf,
    pub ports: Vec<Published>,
    pub endpoint_id: String,
    /// The network's id (`bridge`: the default network).
    #[serde(default = "default_network")]
    pub network: String,
    /// The container's end of the veth pair (eth0 for its first network).
    #[serde(default = "default_ifname")]
    pub ifname: String,
    /// Its IPv6 address, prefix and gateway (an IPv6 network's endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prefix6: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn default_network() -> String {
    "bridge".into()
}

fn default_ifname() -> String {
    endpoint::CONTAINER_IFNAME.into()
}

/// `80/tcp` (or `80`): the port and protocol, as moby's nat.NewPort reads them.
pub fn parse_port_key(key: &str) -> Result<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = Proto::parse(proto)
        .ok_or_else(|| Error::InvalidArgument(format!("invalid proto: {proto}")))?;
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "invalid containerPort: {port}"
            )))
        }
    };
    Ok((port, proto))
}

/// A host port: empty (any), `N` or `N-M`.
fn parse_host_port(s: &str) -> Result<ports::HostPorts> {
    let bad = || Error::InvalidArgument(format!("invalid hostPort: {s}"));
    let one = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
    match s {
        "" => Ok(ports::HostPorts { first: 0, last: 0 }),
        s => match s.split_once('-') {
            Some((a, b)) => {
                let (first, last) = (one(a)?, one(b)?);
                if first > last {
                    return Err(bad());
                }
                Ok(ports::HostPorts { first, last })
            }
            None => one(s).map(|p| ports::HostPorts { first: p, last: p }),
        },
    }
}

fn parse_host_ip(s: &str) -> Result<IpAddr> {
    match s {
        "" => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        s => match s.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            // IPv6 has no route_localnet: a packet from ::1 never leaves the loopback, so
            // only a proxy (dockerd's docker-proxy) could serve it; berth runs none.
            Ok(IpAddr::V6(ip)) if ip.is_loopback() => Err(Error::InvalidArgument(format!(
                "host IP {s}: a port on the IPv6 loopback needs a userland proxy, which berth does not run (use [::] or another address)"
            ))),
            Ok(ip) => Ok(ip),
            Err(_) => Err(Error::InvalidArgument(format!("invalid host IP: {s}"))),
        },
    }
}

fn check_ip(what: &str, s: &str) -> Result<()> {
    s.parse::<IpAddr>()
        .map(drop)
        .map_err(|_| Error::InvalidArgument(format!("{what}: {s} is not an IP address")))
}

/// The network options of a create request, checked (`image`: the image's config, for its
/// ExposedPorts).
pub(crate) fn options(req: &CreateBody, image: &DockerOCIImageConfig) -> Result<NetOptions> {
    let host = &req.host_config;
    let mut exposed = BTreeSet::new();
    let image_ports = image.oci.exposed_ports().clone().unwrap_or_default();
    for key in image_ports.iter().chain(req.exposed_ports.keys()) {
        let (port, proto) = parse_port_key(key)?;
        exposed.insert(format!("{port}/{}", proto.as_str()));
    }
    let mut port_bindings = BTreeMap::new();
    for (key, bindings) in &host.port_bindings {
        let (port, proto) = parse_port_key(key)?;
        let key = format!("{port}/{}", proto.as_str());
        let mut list = Vec::new();
        for b in bindings.iter().flatten() {
            parse_host_ip(&b.host_ip)?;
            parse_host_port(&b.host_port)?;
            list.push((b.host_ip.clone(), b.host_port.clone()));
        }
        if list.is_empty() {
            list.push((String::new(), String::new()));
        }
        // A published port is an exposed one (moby adds it to ExposedPorts).
        exposed.insert(key.clone());
        port_bindings.insert(key, list);
    }
    for s in &host.dns {
        check_ip("--dns", s)?;
    }
    let mut extra_hosts = Vec::new();
    for entry in &host.extra_hosts {
        let (name, ip) = entry
            .split_once([':', '='])
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| Error::InvalidArgument(format!("invalid extra host: {entry}")))?;
        if ip != "host-gateway" {
            check_ip(
                "--add-host",
                ip.trim_start_matches('[').trim_end_matches(']'),
            )?;
        }
        extra_hosts.push((name.to_string(), ip.to_string()));
    }
    Ok(NetOptions {
        port_bindings,
        exposed,
        publish_all: host.publish_all_ports,
        dns: host.dns.clone(),
        dns_search: host.dns_search.clone(),
        dns_options: host.dns_options.clone(),
        extra_hosts,
        domainname: req.domainname.clone(),
        network_id: String::new(),
        aliases: Vec::new(),
        ip: None,
        ip6: None,
        gw_priority: 0,
        mac: None,
        sysctls: Vec::new(),
        more: Vec::new(),
    })
}

/// A network a create body's EndpointsConfig names, as the engine finds it.
pub(crate) struct Known {
    pub name: String,
    /// The user-defined network's id (empty: the default bridge).
    pub id: String,
    /// Where its addresses come from (`--ip-range`, else the subnet).
    pub range: Option<Ipv4Net>,
    /// Where its IPv6 addresses come from (None: not an IPv6 network).
    pub range6: Option<Ipv6Net>,
}

/// dockerd's refusal of an IPv6 address on a network without IPv6, or outside its subnet
/// (or range).
pub(crate) fn check_ip6_in(ip: Ipv6Addr, range: Option<Ipv6Net>) -> Result<()> {
    match range {
        Some(r) if r.contains(&ip) => Ok(()),
        Some(_) => Err(Error::InvalidArgument(format!(
            "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {ip}"
        ))),
        None => Err(Error::InvalidArgument(format!(
            "invalid endpoint settings:\nuser specified IP address {ip} on a network with IPv6 disabled"
        ))),
    }
}

/// dockerd's refusal of an address outside a network's subnet (or range).
pub(crate) fn check_ip_in(ip: Ipv4Addr, range: Option<Ipv4Net>) -> Result<()> {
    match range {
        Some(r) if !r.contains(&ip) => Err(Error::InvalidArgument(format!(
            "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {ip}"
        ))),
        _ => Ok(()),
    }
}

/// An endpoint's `--ip6`, checked for the network `known` (as dockerd: on a user-defined
/// network with IPv6, within its subnet).
fn endpoint_ip6(e: &super::request::EndpointSettings, known: &Known) -> Result<Option<Ipv6Addr>> {
    let Some(ip) = e
        .ipam_config
        .as_ref()
        .map(|c| c.ipv6_address.as_str())
        .filter(|a| !a.is_empty())
    else {
        return Ok(None);
    };
    if known.id.is_empty() {
        return Err(Error::InvalidArgument(
            "user specified IP address is supported on user defined networks only".into(),
        ));
    }
    let ip: Ipv6Addr = ip
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("invalid IPv6 address: {ip}")))?;
    check_ip6_in(ip, known.range6)?;
    Ok(Some(ip))
}

/// An endpoint's MAC address (`--mac-address`), checked and written as dockerd shows it.
pub(crate) fn endpoint_mac(asked: &str) -> Result<Option<String>> {
    if asked.is_empty() {
        return Ok(None);
    }
    endpoint::parse_mac(asked)
        .map(|mac| Some(endpoint::mac_string(&mac)))
        .ok_or_else(|| Error::InvalidArgument(format!("invalid MAC address {asked}")))
}

/// An endpoint's `--ip` and `--network-alias`, checked for the network `known`.
fn endpoint_settings(
    e: &super::request::EndpointSettings,
    known: &Known,
) -> Result<(Vec<String>, Option<Ipv4Addr>)> {
    let ip = e
        .ipam_config
        .as_ref()
        .map(|c| c.ipv4_address.as_str())
        .filter(|a| !a.is_empty());
    if known.id.is_empty() && ip.is_some() {
        return Err(Error::InvalidArgument(
            "user specified IP address is supported on user defined networks only".into(),
        ));
    }
    let aliases = e.aliases.clone().unwrap_or_default();
    if known.id.is_empty() && !aliases.is_empty() {
        return Err(Error::InvalidArgument(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    let ip = match ip {
        Some(ip) => {
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| Error::InvalidArgument(format!("invalid IPv4 address: {ip}")))?;
            check_ip_in(ip, known.range)?;
            Some(ip)
        }
        None => None,
    };
    Ok((aliases, ip))
}

/// NetworkingConfig's endpoints: `--network-alias` and `--ip` of the container's network
/// (only on a user-defined network, as dockerd says), and the other networks it names
/// (API 1.44 and later: `docker run --network A --network B`, compose v2, SDKs), which
/// become joins of their own. `find` looks a network up by name or id.
pub(crate) fn endpoint_options(
    req: &CreateBody,
    mode: &str,
    network_id: &str,
    net: &mut NetOptions,
    find: &dyn Fn(&str) -> Option<Known>,
) -> Result<()> {
    let on_bridge_network = !matches!(mode, "none" | "host") && !mode.starts_with("container:");
    for (name, e) in &req.networking_config.endpoints_config {
        // The container's own network, by the name the client gave (`container:X` is
        // recorded by X's id).
        let primary = name == mode
            || (!network_id.is_empty() && name == network_id)
            || (mode == "bridge" && matches!(name.as_str(), "bridge" | "default"))
            || (mode.starts_with("container:") && name.starts_with("container:"));
        if primary {
            let known = match network_id {
                "" => Known {
                    name: mode.to_string(),
                    id: String::new(),
                    range: None,
                    range6: None,
                },
                id => find(id)
                    .ok_or_else(|| Error::InvalidArgument(format!("network {name} not found")))?,
            };
            let sysctls = endpoint_sysctls(e.driver_opts.as_ref())?;
            if known.id.is_empty() && !on_bridge_network {
                if !sysctls.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "{ENDPOINT_SYSCTLS}: the {mode} network gives the container no interface of its own"
                    )));
                }
                // host, none: nothing of an endpoint to set, as before.
                if e.aliases.as_ref().is_none_or(Vec::is_empty)
                    && e.ipam_config
                        .as_ref()
                        .is_none_or(|c| c.ipv4_address.is_empty() && c.ipv6_address.is_empty())
                {
                    continue;
                }
            }
            let (aliases, ip) = endpoint_settings(e, &known)?;
            let ip6 = endpoint_ip6(e, &known)?;
            net.aliases.extend(aliases);
            if ip.is_some() {
                net.ip = ip;
            }
            if ip6.is_some() {
                net.ip6 = ip6;
            }
            net.gw_priority = e.gw_priority;
            if let Some(mac) = endpoint_mac(&e.mac_address)? {
                net.mac = Some(mac);
            }
            net.sysctls = sysctls;
            continue;
        }
        match mode {
            "none" => {
                return Err(Error::InvalidArgument(
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode".into(),
                ))
            }
            m if m == "host" || m.starts_with("container:") => {
                return Err(Error::InvalidArgument(
                    "container sharing network namespace with another container or host cannot be connected to any other network".into(),
                ))
            }
            _ => {}
        }
        match name.as_str() {
            "host" => {
                return Err(Error::InvalidArgument(
                    "container cannot be disconnected from host network or connected to host network".into(),
                ))
            }
            "none" => {
                return Err(Error::InvalidArgument(
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode".into(),
                ))
            }
            _ => {}
        }
        let known = find(name)
            .ok_or_else(|| Error::InvalidArgument(format!("network {name} not found")))?;
        let key = if known.id.is_empty() {
            "bridge".to_string()
        } else {
            known.id.clone()
        };
        if key == network_id || (key == "bridge" && mode == "bridge") {
            continue;
        }
        if net.more.iter().any(|j| j.network == key) {
            continue;
        }
        let (aliases, ip) = endpoint_settings(e, &known)?;
        let ip6 = endpoint_ip6(e, &known)?;
        net.more.push(Join {
            name: known.name,
            network: key,
            aliases,
            ip,
            ip6,
            gw_priority: e.gw_priority,
            mac: endpoint_mac(&e.mac_address)?,
            sysctls: endpoint_sysctls(e.driver_opts.as_ref())?,
        });
    }
    // Config.MacAddress (deprecated since API 1.44) is the first network's, as dockerd
    // moves it there when that endpoint names none.
    if on_bridge_network && net.mac.is_none() {
        net.mac = endpoint_mac(&req.mac_address)?;
    }
    Ok(())
}

/// The endpoint driver option of interface sysctls (API 1.46; libnetwork's
/// netlabel.EndpointSysctls): `net.X.Y.IFNAME.Z=V`, comma separated.
pub const ENDPOINT_SYSCTLS: &str = "com.docker.network.endpoint.sysctls";

/// An endpoint's DriverOpts as the bridge takes them: its interface sysctls, checked as
/// dockerd's validateEndpointSettings (`ifname` allowed for `IFNAME`: the docker CLI
/// lowercases it); another option asks for what berth's bridge does not do, and is
/// refused by name.
pub fn endpoint_sysctls(opts: Option<&BTreeMap<String, String>>) -> Result<Vec<String>> {
    let mut sysctls = Vec::new();
    for (key, value) in opts.into_iter().flatten() {
        if key != ENDPOINT_SYSCTLS {
            return Err(Error::InvalidArgument(format!(
                "EndpointConfig.DriverOpts {key:?} is not supported by berth yet"
            )));
        }
        for sysctl in value.split(',') {
            let (name, _) = sysctl.split_once('=').unwrap_or((sysctl, ""));
            let parts: Vec<&str> = name.splitn(5, '.').collect();
            let known = parts.len() == 5
                && parts[0] == "net"
                && matches!(parts[1], "ipv4" | "ipv6" | "mpls")
                && matches!(parts[3], "IFNAME" | "ifname")
                && sysctl.contains('=');
            if !known {
                return Err(Error::InvalidArgument(format!(
                    "invalid endpoint settings:\nunrecognised network interface sysctl '{sysctl}'; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"
                )));
            }
            sysctls.push(sysctl.to_string());
        }
    }
    Ok(sysctls)
}

/// The driver options an endpoint shows in inspect (its sysctls, as given).
pub fn endpoint_driver_opts(sysctls: &[String]) -> Option<BTreeMap<String, String>> {
    (!sysctls.is_empty())
        .then(|| BTreeMap::from([(ENDPOINT_SYSCTLS.to_string(), sysctls.join(","))]))
}

/// The bridge network's id (stable for a bridge name, as inspect shows it).
pub fn network_id(bridge: &str) -> String {
    berth_image::Digest::of(format!("berth-network:{bridge}").as_bytes())
        .hex()
        .to_string()
}

/// The default bridge as `docker network inspect bridge` shows it.
#[derive(Debug, Clone)]
pub struct BridgeView {
    pub name: String,
    /// Its IPv6 gateway with the subnet's prefix (`ipv6`).
    pub address6: Option<Ipv6Net>,
    /// The gateway with the subnet's prefix (None: the bridge is not made yet, and no bip).
    pub address: Option<Ipv4Net>,
    pub mtu: u32,
    pub ip_masq: bool,
}

/// One network of one daemon (the default bridge, or a user-defined network).
pub struct Net {
    pub config: NetConfig,
    /// The bridge once made or checked (made at the first container that needs it).
    bridge: Mutex<Option<bridge::Bridge>>,
    /// Held host ports, by container. Also serializes IPAM and the nftables table.
    held: Mutex<HashMap<String, Vec<OwnedFd>>>,
    /// The forwards berth's table holds (None: the table is to be built whole).
    applied: Mutex<Option<Vec<Forward>>>,
    /// The subnets of berth's other networks (not reached from this one).
    isolated: Mutex<Vec<Ipv4Net>>,
    /// The embedded resolver (user-defined networks only; started with the first use).
    dns: Option<SharedResolver>,
    /// An IPv6 network's gateway (with the subnet's prefix) and range.
    v6: Option<(Ipv6Net, Ipv6Net)>,
    /// The IPv6 forwards berth's `ip6` table holds (None: to be built).
    applied6: Mutex<Option<Vec<Forward6>>>,
    /// The IPv6 subnets of berth's other networks.
    isolated6: Mutex<Vec<Ipv6Net>>,
    /// Namespaces with their veth made ahead of time (the default bridge: `spares.rs`).
    spares: Option<Arc<berth_network::pool::Pool>>,
}

/// The one resolver of all user-defined networks, started when first needed, and each
/// container's socket on it (by container id: one per container, whatever its networks).
#[derive(Default)]
pub(crate) struct DnsState {
    resolver: Option<Arc<dns::Resolver>>,
    tokens: HashMap<String, u64>,
}

pub(crate) type SharedResolver = Arc<Mutex<DnsState>>;

/// The resolver, started the first time it is needed.
pub(crate) fn resolver(shared: &SharedResolver) -> Option<Arc<dns::Resolver>> {
    let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
    if state.resolver.is_none() {
        match dns::Resolver::start() {
            Ok(started) => state.resolver = Some(started),
            Err(e) => tracing::error!("the embedded DNS resolver: {e}"),
        }
    }
    state.resolver.clone()
}

/// Container `record` is answered with the names of `networks` (its user-defined ones;
/// none: its sockets go). `socket`: the sockets just made in its namespace, if any; else
/// they are made in `netns` when it has none yet.
pub(crate) fn serve_dns(
    shared: &SharedResolver,
    record: &ContainerRecord,
    networks: Vec<String>,
    socket: Option<dns::Sockets>,
    netns: &Path,
) {
    if networks.is_empty() {
        let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
        let token = state.tokens.remove(&record.id);
        if let (Some(token), Some(r)) = (token, state.resolver.as_ref()) {
            r.remove(token);
        }
        return;
    }
    let Some(resolver) = resolver(shared) else {
        return;
    };
    let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(token) = state.tokens.get(&record.id) {
        resolver.set_networks(*token, networks);
        return;
    }
    let socket = match socket {
        Some(fd) => Ok(fd),
        None => endpoint::dns_socket_in(netns).map_err(|e| e.to_string()),
    };
    let added = socket.and_then(|fd| {
        resolver
            .add(fd, networks, upstream(record))
            .map_err(|e| e.to_string())
    });
    match added {
        Ok(token) => {
            state.tokens.insert(record.id.clone(), token);
        }
        Err(e) => tracing::warn!("container {}: the DNS socket: {e}", record.id),
    }
}

/// The network namespace of a container with endpoints: its init's while it runs (a
/// berthd started in a mount namespace of its own, as the tests start it, no longer sees
/// the file's mount after a restart), else the file that holds it.
pub(crate) fn namespace_of(record: &ContainerRecord) -> PathBuf {
    let by_pid = PathBuf::from(format!("/proc/{}/ns/net", record.state.pid));
    if record.state.status == Status::Running && record.state.pid > 0 && by_pid.exists() {
        return by_pid;
    }
    record.endpoint().map(|e| e.netns.clone()).unwrap_or(by_pid)
}

/// How an endpoint is made: in a new namespace or one the container has, with or without
/// the default route, with or without the published ports.
pub(crate) struct Placement {
    /// The namespace to join (None: a new one, held at `netns_dir/<id>`).
    pub join: Option<PathBuf>,
    pub ifname: String,
    pub default_route: bool,
    /// The container's published ports go on this endpoint.
    pub ports: bool,
}

/// One binding to make: container port, protocol, host IP and ports.
struct Wanted {
    port: u16,
    proto: Proto,
    host_ip: IpAddr,
    host_ports: ports::HostPorts,
}

fn wanted(opts: &NetOptions) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (key, list) in &opts.port_bindings {
        let (port, proto) = parse_port_key(key)?;
        seen.insert(key.clone());
        for (ip, hp) in list {
            out.push(Wanted {
                port,
                proto,
                host_ip: parse_host_ip(ip)?,
                host_ports: parse_host_port(hp)?,
            });
        }
    }
    if opts.publish_all {
        for key in opts.exposed.iter().filter(|k| !seen.contains(*k)) {
            let (port, proto) = parse_port_key(key)?;
            out.push(Wanted {
                port,
                proto,
                host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                host_ports: ports::HostPorts { first: 0, last: 0 },
            });
        }
    }
    Ok(out)
}

/// The host ports of `record`'s published ports, held (a port in use is dockerd's error).
/// `ipv6`: the endpoint has an IPv6 address, so a port without a host IP is published on
/// `[::]` too, with the same host port (as dockerd does); without one, an IPv6 host IP is
/// refused (dockerd needs its proxy for that).
fn reserve_ports(record: &ContainerRecord, ipv6: bool) -> Result<(Vec<OwnedFd>, Vec<Published>)> {
    let mut fds = Vec::new();
    let mut published = Vec::new();
    let failed = |e: ports::PortError| {
        Error::Conflict(format!(
            "driver failed programming external connectivity on endpoint {} ({}): {e}",
            record.name, record.id
        ))
    };
    for w in wanted(&record.net)? {
        if w.host_ip.is_ipv6() && !ipv6 {
            return Err(Error::InvalidArgument(format!(
                "host IP {}: the container has no IPv6 address on the network publishing its ports",
                w.host_ip
            )));
        }
        let (host_port, fd) =
            ports::reserve_ip(w.host_ip, w.host_ports, w.proto).map_err(failed)?;
        fds.extend(fd);
        let mut made = vec![(w.host_ip, host_port)];
        if ipv6 && w.host_ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
            let same = ports::HostPorts {
                first: host_port,
                last: host_port,
            };
            let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
            let (_, fd) = ports::reserve_ip(any6, same, w.proto).map_err(failed)?;
            fds.extend(fd);
            made.push((any6, host_port));
        }
        published.extend(made.into_iter().map(|(ip, host_port)| Published {
            port: w.port,
            proto: w.proto.as_str().to_string(),
            host_ip: ip.to_string(),
            host_port,
        }));
    }
    Ok((fds, published))
}

fn net_error(e: berth_network::Error) -> Error {
    Error::Io(e.to_string())
}

impl Net {
    pub fn new(config: NetConfig) -> Net {
        Net {
            config,
            bridge: Mutex::new(None),
            held: Mutex::new(HashMap::new()),
            applied: Mutex::new(None),
            isolated: Mutex::new(Vec::new()),
            dns: None,
            v6: None,
            applied6: Mutex::new(None),
            isolated6: Mutex::new(Vec::new()),
            spares: None,
        }
    }

    /// An IPv6 network: the bridge's IPv6 `gateway` (with the subnet's prefix), addresses
    /// from `range`.
    pub(crate) fn with_ipv6(mut self, gateway: Ipv6Net, range: Ipv6Net) -> Net {
        self.v6 = Some((gateway, range));
        self
    }

    /// A user-defined network: with the embedded resolver.
    pub(crate) fn with_dns(mut self, dns: SharedResolver) -> Net {
        self.dns = Some(dns);
        self
    }

    /// Its containers' names are answered by the embedded resolver.
    pub(crate) fn has_dns(&self) -> bool {
        self.dns.is_some()
    }

    /// The resolver's names of this network: each running container's name, short id and
    /// aliases on it (`extra`: one being connected).
    fn refresh_names(
        &self,
        containers: &Containers,
        extra: Option<(&ContainerRecord, &[String], &Endpoint)>,
    ) {
        let Some(resolver) = self.dns.as_ref().and_then(resolver) else {
            return;
        };
        let id = &self.config.id;
        let mut entries: Vec<(Vec<String>, Ipv4Addr)> = containers
            .list()
            .into_iter()
            .filter(|r| extra.is_none_or(|(x, _, _)| x.id != r.id))
            .filter_map(|r| {
                let ep = r.endpoint_on(id)?;
                let join = r.joins().into_iter().find(|j| j.network == *id);
                let aliases = join.map(|j| j.aliases).unwrap_or_default();
                Some((dns_names(&r, &aliases), ep.ip))
            })
            .collect();
        if let Some((r, aliases, ep)) = extra {
            entries.push((dns_names(r, aliases), ep.ip));
        }
        if self.v6.is_some() {
            let mut entries6: Vec<(Vec<String>, Ipv6Addr)> = containers
                .list()
                .into_iter()
                .filter(|r| extra.is_none_or(|(x, _, _)| x.id != r.id))
                .filter_map(|r| {
                    let ip6 = r.endpoint_on(id)?.ip6?;
                    let join = r.joins().into_iter().find(|j| j.network == *id);
                    Some((
                        dns_names(&r, &join.map(|j| j.aliases).unwrap_or_default()),
                        ip6,
                    ))
                })
                .collect();
            if let Some((r, aliases, ep)) = extra {
                entries6.extend(ep.ip6.map(|ip6| (dns_names(r, aliases), ip6)));
            }
            resolver.set_names6(id, entries6);
        }
        resolver.set_names(id, entries);
    }

    /// The default bridge (None: `bridge: none`).
    pub fn view(&self) -> Option<BridgeView> {
        let config = self.config.bridge.as_ref()?;
        let made = *self.bridge.lock().unwrap_or_else(|p| p.into_inner());
        Some(BridgeView {
            name: config.name.clone(),
            address6: self.v6.map(|(gateway, _)| gateway),
            address: made.map(|b| b.address).or(config.bip),
            mtu: config.mtu,
            ip_masq: self.config.ip_masq,
        })
    }

    fn bridge_config(&self) -> Result<&bridge::BridgeConfig> {
        self.config
            .bridge
            .as_ref()
            .ok_or_else(|| Error::NotFound("network bridge not found".into()))
    }

    /// The bridge, made or set right the first time it is needed.
    fn bridge(&self) -> Result<bridge::Bridge> {
        let config = self.bridge_config()?;
        let mut known = self.bridge.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = *known {
            return Ok(b);
        }
        if self.config.ip_forward {
            bridge::enable_forwarding().map_err(net_error)?;
        }
        let b = bridge::ensure(config).map_err(net_error)?;
        if let Some((gateway, _)) = self.v6 {
            bridge::ensure_ipv6(&config.name, gateway).map_err(net_error)?;
            if self.config.ip_forward {
                bridge::enable_forwarding6().map_err(net_error)?;
            }
        }
        tracing::info!(bridge = %config.name, address = %b.address, "bridge ready");
        *known = Some(b);
        Ok(b)
    }

    /// Put container `record` on this network as `join` asks: host ports held first (a
    /// port in use fails before anything is made), then the address (saved in the record),
    /// veth (and namespace, for a container's first network) and NAT rules. Undone entirely
    /// when a step fails. The resolver socket made with a new namespace is returned.
    pub(crate) fn connect(
        &self,
        containers: &Containers,
        record: &ContainerRecord,
        join: &Join,
        place: &Placement,
    ) -> Result<(Endpoint, Option<dns::Sockets>)> {
        let bridge = self.bridge()?;
        let config = self.bridge_config()?;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (fds, published) = if place.ports {
            reserve_ports(record, self.v6.is_some())?
        } else {
            (Vec::new(), Vec::new())
        };
        let spare = self.take_spare(place, join);
        let asked = join.ip.or(spare.as_ref().map(|s| s.ip));
        let ip = allocate(
            containers,
            bridge,
            record,
            &self.config.id,
            asked,
            &self.reserved(),
        )
        .inspect_err(|_| spares::discard(spare.as_ref()))?;
        let ip6 = match self.v6 {
            Some(v6) => Some(allocate6(
                containers,
                v6,
                record,
                &self.config.id,
                join.ip6,
            )?),
            None => join
                .ip6
                .map_or(Ok(None), |ip| check_ip6_in(ip, None).map(|()| None))
                .inspect_err(|_| spares::discard(spare.as_ref()))?,
        };
        let ep = Endpoint {
            ip,
            prefix: bridge.address.prefix_len(),
            gateway: bridge.gateway(),
            mac: join
                .mac
                .clone()
                .unwrap_or_else(|| endpoint::mac_string(&endpoint::mac_for(ip))),
            host_ifname: match &spare {
                Some(s) => s.host_ifname.clone(),
                None => host_ifname(&record.id)?,
            },
            netns: self.config.netns_dir.join(&record.id),
            files: containers.dir(&record.id),
            ports: published,
            endpoint_id: berth_image::Digest::of(format!("{}:{ip}", record.id).as_bytes())
                .hex()
                .to_string(),
            network: self.config.id.clone(),
            ifname: place.ifname.clone(),
            ip6,
            prefix6: self.v6.map_or(0, |(g, _)| g.prefix_len()),
            gateway6: self.v6.map(|(g, _)| g.addr()),
        };
        let saved = ep.clone();
        containers
            .update(&record.id, move |r| {
                r.endpoints.retain(|e| e.network != saved.network);
                r.endpoints.push(saved);
            })
            .inspect_err(|_| spares::discard(spare.as_ref()))?;
        let made = self
            .place(&bridge, config, &ep, place, spare.as_ref(), &join.sysctls)
            .and_then(|socket| {
                held.insert(record.id.clone(), fds);
                self.apply_rules(containers, Some(&ep)).map(|()| socket)
            });
        match made {
            Ok(socket) => {
                self.refill(containers, &bridge, config);
                self.refresh_names(containers, Some((record, &join.aliases, &ep)));
                Ok((ep, socket))
            }
            Err(e) => {
                held.remove(&record.id);
                self.undo(containers, &record.id, &ep, place.join.is_none());
                self.rules_or_warn(containers);
                Err(e)
            }
        }
    }

    fn attach(
        &self,
        bridge: &bridge::Bridge,
        config: &bridge::BridgeConfig,
        ep: &Endpoint,
        place: &Placement,
        sysctls: &[String],
    ) -> Result<Option<dns::Sockets>> {
        let address = Ipv4Net::new(ep.ip, ep.prefix).map_err(|e| Error::Io(e.to_string()))?;
        endpoint::attach(&endpoint::Attachment {
            netns: place.join.clone().unwrap_or_else(|| ep.netns.clone()),
            join: place.join.is_some(),
            bridge: config.name.clone(),
            host_ifname: ep.host_ifname.clone(),
            ifname: ep.ifname.clone(),
            mac: endpoint::parse_mac(&ep.mac).unwrap_or_else(|| endpoint::mac_for(ep.ip)),
            address,
            gateway: ep.gateway,
            address6: match (ep.ip6, ep.gateway6) {
                (Some(ip), Some(gateway)) => Some((
                    Ipv6Net::new(ip, ep.prefix6).map_err(|e| Error::Io(e.to_string()))?,
                    gateway,
                )),
                _ => None,
            },
            default_route: place.default_route,
            mtu: bridge.mtu,
            dns: self.dns.is_some(),
            sysctls: sysctls.to_vec(),
        })
        .map_err(net_error)
    }

    /// The veth and the record's endpoint on this network of container `id` go (and the
    /// namespace's file, with `release`: the container leaves its last network at exit).
    fn undo(&self, containers: &Containers, id: &str, ep: &Endpoint, release: bool) {
        // The namespace file goes now; the veth pair in the background: deleting a link
        // waits for an RCU grace period (10-20 ms here), which would delay every exit.
        // The kernel deletes the pair itself when the namespace ends; this is for the case
        // where something still holds the namespace (and for a disconnect while it runs).
        if release {
            if let Err(e) = endpoint::release_namespace(&ep.netns) {
                tracing::warn!("container {id}: {e}");
            }
        }
        let veth = ep.host_ifname.clone();
        std::thread::spawn(move || {
            if let Err(e) = endpoint::delete_veth(&veth) {
                tracing::warn!("{e}");
            }
        });
        let network = ep.network.clone();
        let _ = containers.update(id, |r| r.endpoints.retain(|e| e.network != network));
        self.refresh_names(containers, None);
    }

    /// Take container `id` off this network (at its exit, a start that failed, or a
    /// disconnect while it runs); `release`: its namespace's file goes too.
    pub(crate) fn disconnect(&self, containers: &Containers, id: &str, release: bool) {
        let Some(ep) = containers
            .resolve(id)
            .ok()
            .and_then(|r| r.endpoint_on(&self.config.id).cloned())
        else {
            return;
        };
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(id);
        self.undo(containers, id, &ep, release);
        self.rules_or_warn(containers);
    }

    /// The container's published ports leave its endpoint on this network (the default
    /// route moved to another network): host ports let go, rules and record updated.
    pub(crate) fn withdraw_ports(&self, containers: &Containers, id: &str) -> Result<()> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(id);
        let network = self.config.id.clone();
        containers.update(id, move |r| {
            r.endpoints
                .iter_mut()
                .filter(|e| e.network == network)
                .for_each(|e| e.ports.clear());
        })?;
        self.apply_rules(containers, None)
    }

    /// The container's published ports come to its endpoint on this network (it gives
    /// the default route now), as at its start: host ports held, record and rules updated.
    pub(crate) fn publish_ports(
        &self,
        containers: &Containers,
        record: &ContainerRecord,
    ) -> Result<()> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (fds, published) = reserve_ports(record, self.v6.is_some())?;
        let network = self.config.id.clone();
        containers.update(&record.id, move |r| {
            r.endpoints
                .iter_mut()
                .filter(|e| e.network == network)
                .for_each(|e| e.ports = published.clone());
        })?;
        held.insert(record.id.clone(), fds);
        let applied = self.apply_rules(containers, None);
        if applied.is_err() {
            drop(held);
            let _ = self.withdraw_ports(containers, &record.id);
        }
        applied
    }

    /// The endpoints on this network, from the records (`extra`: one being made, in case
    /// its record is not readable yet).
    fn endpoints(&self, containers: &Containers, extra: Option<&Endpoint>) -> Vec<Endpoint> {
        let mut endpoints: Vec<Endpoint> = containers
            .list()
            .into_iter()
            .filter_map(|r| r.endpoint_on(&self.config.id).cloned())
            .collect();
        if let Some(e) = extra {
            if !endpoints.contains(e) {
                endpoints.push(e.clone());
            }
        }
        endpoints
    }

    /// berth's nftables table from the endpoints the records hold (`extra`: one being made,
    /// in case its record is not readable yet).
    fn apply_rules(&self, containers: &Containers, extra: Option<&Endpoint>) -> Result<()> {
        if !self.config.iptables {
            return Ok(());
        }
        let Some(bridge) = *self.bridge.lock().unwrap_or_else(|p| p.into_inner()) else {
            return Ok(());
        };
        let config = self.bridge_config()?;
        let mut forwards = Vec::new();
        for ep in &self.endpoints(containers, extra) {
            for p in &ep.ports {
                if p.host_ip.contains(':') {
                    continue;
                }
                let host_ip: Ipv4Addr = p.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
                forwards.push(Forward {
                    host_ip: (!host_ip.is_unspecified()).then_some(host_ip),
                    host_port: p.host_port,
                    proto: Proto::parse(&p.proto).unwrap_or(Proto::Tcp),
                    addr: ep.ip,
                    port: p.port,
                });
            }
        }
        self.apply_rules6(containers, extra)?;
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        if applied.as_ref() == Some(&forwards) {
            return Ok(());
        }
        // Only the published ports' chain changes once the table is there (base chains
        // registered anew would cost a grace period each); the whole table when it is not.
        let only_ports =
            applied.is_some() && nft::set_forwards(&self.config.table, &forwards).is_ok();
        if !only_ports {
            nft::apply(&nft::Ruleset {
                table: &self.config.table,
                bridge: &config.name,
                subnet: bridge.subnet(),
                masquerade: self.config.ip_masq,
                internal: self.config.internal,
                isolated: &self
                    .isolated
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
                forwards: &forwards,
            })
            .map_err(|e| {
                *applied = None;
                Error::Io(e.to_string())
            })?;
        }
        *applied = Some(forwards);
        Ok(())
    }

    /// berth's `ip6` table of an IPv6 network, from the endpoints' IPv6 published ports.
    fn apply_rules6(&self, containers: &Containers, extra: Option<&Endpoint>) -> Result<()> {
        let (Some((gateway, _)), Some(config)) = (self.v6, self.config.bridge.as_ref()) else {
            return Ok(());
        };
        let mut forwards = Vec::new();
        for ep in &self.endpoints(containers, extra) {
            let Some(addr) = ep.ip6 else { continue };
            for p in ep.ports.iter().filter(|p| p.host_ip.contains(':')) {
                let host_ip: Ipv6Addr = p.host_ip.parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
                forwards.push(Forward6 {
                    host_ip: (!host_ip.is_unspecified()).then_some(host_ip),
                    host_port: p.host_port,
                    proto: Proto::parse(&p.proto).unwrap_or(Proto::Tcp),
                    addr,
                    port: p.port,
                });
            }
        }
        let mut applied = self.applied6.lock().unwrap_or_else(|p| p.into_inner());
        if applied.as_ref() == Some(&forwards) {
            return Ok(());
        }
        let isolated = self
            .isolated6
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        nft::apply6(&nft::Ruleset6 {
            table: &self.config.table,
            bridge: &config.name,
            subnet: gateway.trunc(),
            masquerade: self.config.ip_masq,
            internal: self.config.internal,
            isolated: &isolated,
            forwards: &forwards,
        })
        .map_err(|e| {
            *applied = None;
            Error::Io(e.to_string())
        })?;
        *applied = Some(forwards);
        Ok(())
    }

    /// The other networks' IPv6 subnets changed: the `ip6` table is built anew with them.
    pub(crate) fn isolate_from6(&self, containers: &Containers, others: Vec<Ipv6Net>) {
        *self.isolated6.lock().unwrap_or_else(|p| p.into_inner()) = others;
        *self.applied6.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.rules_or_warn(containers);
    }

    /// Its IPv6 subnet (an IPv6 network's).
    pub(crate) fn subnet6(&self) -> Option<Ipv6Net> {
        self.v6.map(|(gateway, _)| gateway.trunc())
    }

    /// The other networks' subnets changed: the table is built anew with them.
    pub(crate) fn isolate_from(&self, containers: &Containers, others: Vec<Ipv4Net>) {
        *self.isolated.lock().unwrap_or_else(|p| p.into_inner()) = others;
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.rules_or_warn(containers);
    }

    /// The bridge's subnet, once it is made (or as configured).
    pub(crate) fn subnet(&self) -> Option<Ipv4Net> {
        self.view().and_then(|v| v.address).map(|a| a.trunc())
    }

    /// Make the bridge and the table now (a user-defined network exists on the host from
    /// its creation, as with dockerd).
    pub(crate) fn materialize(&self, containers: &Containers) -> Result<()> {
        self.bridge()?;
        self.apply_rules(containers, None)
    }

    /// Remove the bridge and the table (the network is removed; no container is on it).
    pub(crate) fn dismantle(&self) {
        if let Some(config) = &self.config.bridge {
            if let Err(e) = bridge::remove(&config.name) {
                tracing::warn!("{e}");
            }
        }
        if self.config.iptables {
            if let Err(e) = nft::remove(&self.config.table) {
                tracing::warn!("{e}");
            }
            if self.v6.is_some() {
                if let Err(e) = nft::remove6(&self.config.table) {
                    tracing::warn!("{e}");
                }
            }
        }
    }

    fn rules_or_warn(&self, containers: &Containers) {
        if let Err(e) = self.apply_rules(containers, None) {
            tracing::warn!("berth's nftables table: {e}");
        }
    }

    /// At berthd's start, once the running containers are known (those that no longer run
    /// have left every network already): live containers' host ports are held again, their
    /// names answered, and the table is rebuilt.
    pub(crate) fn reconcile(&self, containers: &Containers) {
        let live: Vec<(String, Endpoint)> = containers
            .list()
            .into_iter()
            .filter(|r| r.state.status == Status::Running)
            .filter_map(|r| r.endpoint_on(&self.config.id).cloned().map(|e| (r.id, e)))
            .collect();
        let Some(config) = &self.config.bridge else {
            return;
        };
        if live.is_empty() {
            // Nothing of this daemon's is on the bridge: it is set right (or made) at the
            // first container that needs it. A bridge that exists is left alone till then:
            // it may be another daemon's (tests start many with the default settings).
            return;
        }
        if let Err(e) = self.bridge() {
            tracing::error!("the bridge {}: {e}", config.name);
            return;
        }
        self.refresh_names(containers, None);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for (id, ep) in live {
            let mut fds = Vec::new();
            for p in &ep.ports {
                let ip = p
                    .host_ip
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                let port = ports::HostPorts {
                    first: p.host_port,
                    last: p.host_port,
                };
                match ports::reserve_ip(ip, port, Proto::parse(&p.proto).unwrap_or(Proto::Tcp)) {
                    Ok((_, fd)) => fds.extend(fd),
                    Err(e) => tracing::warn!("container {id}: {e}"),
                }
            }
            held.insert(id, fds);
        }
        drop(held);
        self.rules_or_warn(containers);
    }
}

/// The host end's name: `vb`, the container's id, and a random part, so that a veth still
/// being deleted from the container's last run never has the name of its new one.
fn host_ifname(id: &str) -> Result<String> {
    let random = super::random_id()?;
    Ok(format!("vb{}{}", &id[..6.min(id.len())], &random[..7]))
}

/// The first free address of the bridge's range (not the network's, the gateway's or the
/// broadcast address): free means no record holds it.
fn allocate(
    containers: &Containers,
    bridge: bridge::Bridge,
    record: &ContainerRecord,
    network: &str,
    asked: Option<Ipv4Addr>,
    spares: &[Ipv4Addr],
) -> Result<Ipv4Addr> {
    let used = held_addresses(containers, network, &record.id, spares);
    let subnet = bridge.subnet();
    if let Some(ip) = asked {
        if !subnet.contains(&ip) || ip == bridge.gateway() || ip == subnet.broadcast() {
            return Err(Error::InvalidArgument(format!(
                "invalid address {ip}: it does not belong to the network's subnet {subnet}"
            )));
        }
        if used.contains(&ip) {
            return Err(Error::Conflict(format!("Address already in use: {ip}")));
        }
        return Ok(ip);
    }
    let first = free_addresses(&bridge, &used).next();
    first.ok_or_else(|| {
        Error::Conflict(format!(
            "no available IPv4 address on the default bridge ({})",
            bridge.range
        ))
    })
}

/// The addresses on `network` that the records (but `except`'s) and the `spares` hold.
pub(super) fn held_addresses(
    containers: &Containers,
    network: &str,
    except: &str,
    spares: &[Ipv4Addr],
) -> HashSet<Ipv4Addr> {
    containers
        .list()
        .into_iter()
        .filter(|r| r.id != except)
        .filter_map(|r| r.endpoint_on(network).map(|e| e.ip))
        .chain(spares.iter().copied())
        .collect()
}

/// `bridge`'s range in order, without its gateway, network and broadcast addresses and
/// those in `used`.
pub(super) fn free_addresses<'a>(
    bridge: &'a bridge::Bridge,
    used: &'a HashSet<Ipv4Addr>,
) -> impl Iterator<Item = Ipv4Addr> + 'a {
    let subnet = bridge.subnet();
    let reserved = [bridge.gateway(), subnet.network(), subnet.broadcast()];
    bridge
        .range
        .hosts()
        .filter(move |ip| !reserved.contains(ip) && !used.contains(ip))
}

/// The first free IPv6 address of an IPv6 network's range (`v6`: its gateway and range),
/// or the one `asked` (`--ip6`): free means no record holds it. The subnet's first
/// address (the subnet-router anycast) and the gateway are never handed out.
fn allocate6(
    containers: &Containers,
    v6: (Ipv6Net, Ipv6Net),
    record: &ContainerRecord,
    network: &str,
    asked: Option<Ipv6Addr>,
) -> Result<Ipv6Addr> {
    let (gateway, range) = v6;
    let used: HashSet<Ipv6Addr> = containers
        .list()
        .into_iter()
        .filter(|r| r.id != record.id)
        .filter_map(|r| r.endpoint_on(network).and_then(|e| e.ip6))
        .chain([gateway.addr(), gateway.network()])
        .collect();
    if let Some(ip) = asked {
        check_ip6_in(ip, Some(range))?;
        if used.contains(&ip) {
            return Err(Error::Conflict(format!("Address already in use: {ip}")));
        }
        return Ok(ip);
    }
    // The range can be huge (a /64): addresses are tried in order, and at most one more
    // than there are holders is ever needed.
    let first = u128::from(range.network());
    let last = u128::from(range.broadcast());
    (0..=used.len() as u128)
        .filter_map(|i| first.checked_add(i).filter(|a| *a <= last))
        .map(Ipv6Addr::from)
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| {
            Error::Conflict(format!(
                "no available IPv6 address on the network ({range})"
            ))
        })
}

/// Namespace files of containers that do not run are unmounted and removed (`live`: the
/// files of those that run).
pub(crate) fn sweep_namespaces(dir: &Path, live: &[PathBuf]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !live.contains(&path) {
            if let Err(e) = endpoint::release_namespace(&path) {
                tracing::warn!("{e}");
            }
        }
    }
}

/// The container's /etc/hosts, /etc/hostname and /etc/resolv.conf, in its directory
/// `dir`, for its endpoints (`embedded_dns`: it is on a user-defined network, and asks the
/// embedded resolver). Written in place: a running container's bind mounts see the change.
pub(crate) fn write_files(
    record: &ContainerRecord,
    dir: &Path,
    endpoints: &[Endpoint],
    embedded_dns: bool,
) -> Result<()> {
    let hostname = record.hostname();
    let gateway = endpoints.first().map(|e| e.gateway.to_string());
    let extra: Vec<(String, String)> = record
        .net
        .extra_hosts
        .iter()
        .map(|(name, ip)| {
            let ip = match (ip.as_str(), &gateway) {
                ("host-gateway", Some(g)) => g.clone(),
                _ => ip.clone(),
            };
            (name.clone(), ip)
        })
        .collect();
    let own: Vec<IpAddr> = endpoints
        .iter()
        .map(|e| IpAddr::V4(e.ip))
        .chain(endpoints.iter().filter_map(|e| e.ip6.map(IpAddr::V6)))
        .collect();
    let hosts = etc::hosts(&extra, &own, &hostname, &record.net.domainname);
    let resolv = if embedded_dns {
        etc::embedded_resolv_conf(
            &etc::host_resolv_conf(),
            &record.net.dns_search,
            &record.net.dns_options,
        )
    } else {
        etc::resolv_conf(
            &etc::host_resolv_conf(),
            &etc::Resolv {
                servers: record.net.dns.clone(),
                search: record.net.dns_search.clone(),
                options: record.net.dns_options.clone(),
            },
        )
    };
    write_etc(dir, &hosts, &hostname, &resolv)
}

/// hosts, hostname and resolv.conf into `dir` (in place: a running container's bind
/// mounts see the change).
pub(crate) fn write_etc(dir: &Path, hosts: &str, hostname: &str, resolv: &str) -> Result<()> {
    for (name, text) in [
        ("hosts", hosts.to_string()),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv.to_string()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Error::Io(format!("write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// The names a container answers to on a user-defined network, as moby's
/// buildEndpointDNSNames lists them (inspect's DNSNames): its name, its aliases there, its
/// short id, and the hostname it was given.
pub fn dns_names(r: &ContainerRecord, aliases: &[String]) -> Vec<String> {
    let mut names = vec![r.name.clone()];
    names.extend(aliases.iter().cloned());
    names.push(r.id[..12.min(r.id.len())].to_string());
    names.extend(r.config.hostname.clone().filter(|h| !h.is_empty()));
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Where the resolver forwards what it does not know: the container's `--dns`, else the
/// host's name servers (loopback ones included: berthd asks from the host's namespace).
fn upstream(record: &ContainerRecord) -> Vec<std::net::SocketAddr> {
    let servers: Vec<String> = if record.net.dns.is_empty() {
        etc::host_resolv_conf()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .map(|s| s.trim().to_string())
            .collect()
    } else {
        record.net.dns.clone()
    };
    servers
        .iter()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

/// The bind mounts of the /etc files in `dir` (as dockerd mounts them); those present.
pub(crate) fn etc_mounts(dir: &Path) -> Vec<Value> {
    ["resolv.conf", "hostname", "hosts"]
        .iter()
        .filter(|name| dir.join(name).exists())
        .map(|name| {
            serde_json::json!({
                "destination": format!("/etc/{name}"),
                "type": "bind",
                "source": dir.join(name),
                "options": ["rbind", "rprivate"],
            })
        })
        .collect()
}

/// The network a `--network container:X` container joins, found at its start.
#[derive(Debug, Clone, PartialEq)]
pub struct Donor {
    /// X's network namespace, by path (None: X is on the host's network).
    pub netns: Option<String>,
    /// X's directory, whose hosts, hostname and resolv.conf are shared (as dockerd does).
    pub files: PathBuf,
    /// X's hostname, which the joiner takes (as dockerd does).
    pub hostname: String,
}

/// The donor of `record`'s network, when it joins another container's: X must run.
pub(crate) fn donor(containers: &Containers, record: &ContainerRecord) -> Result<Option<Donor>> {
    let Some(id) = record.network_mode().strip_prefix("container:") else {
        return Ok(None);
    };
    let x = containers.resolve(id).map_err(|e| match e {
        Error::NotFound(m) => {
            Error::InvalidArgument(format!("failed to join network namespace: {m}"))
        }
        other => other,
    })?;
    if x.state.status != Status::Running || x.state.pid <= 0 {
        return Err(Error::Conflict(format!(
            "cannot join network namespace of a non running container: {id}"
        )));
    }
    // Through X's init, which runs: its namespace is X's whatever made it.
    let netns = match x.network_mode() {
        "host" => None,
        _ => Some(format!("/proc/{}/ns/net", x.state.pid)),
    };
    Ok(Some(Donor {
        netns,
        files: containers.dir(&x.id),
        hostname: x.hostname(),
    }))
}

/// `--network container:X` with options only X's network decides: dockerd's refusals.
pub(crate) fn check_container_mode(req: &CreateBody) -> Result<()> {
    let host = &req.host_config;
    let conflict = |what: &str| {
        Err(Error::InvalidArgument(format!(
            "conflicting options: {what} and the network mode"
        )))
    };
    if host.publish_all_ports || !host.port_bindings.is_empty() || !req.exposed_ports.is_empty() {
        return Err(Error::InvalidArgument(
            "conflicting options: port publishing and the container type network mode".into(),
        ));
    }
    if !req.hostname.is_empty() {
        return conflict("hostname");
    }
    if !host.dns.is_empty() || !host.dns_search.is_empty() || !host.dns_options.is_empty() {
        return conflict("dns");
    }
    if !host.extra_hosts.is_empty() {
        return conflict("custom host-to-IP mapping");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> CreateBody {
        serde_json::from_value(v).expect("create body")
    }

    /// Networks `net-a` (id `aaa`, 10.1.0.0/24) and `net-b` (id `bbb`, 10.2.0.0/24).
    fn find(name: &str) -> Option<Known> {
        let (name, id, range) = match name {
            "net-a" | "aaa" => ("net-a", "aaa", "10.1.0.0/24"),
            "net-b" | "bbb" => ("net-b", "bbb", "10.2.0.0/24"),
            "bridge" | "default" => ("bridge", "", "172.17.0.0/16"),
            _ => return None,
        };
        Some(Known {
            name: name.into(),
            id: id.into(),
            range: range.parse().ok(),
            range6: (id == "bbb")
                .then(|| "fd42:b0e7:2::/64".parse().ok())
                .flatten(),
        })
    }

    #[test]
    fn an_ipv6_address_is_taken_on_an_ipv6_network_only() {
        let req = body(serde_json::json!({"NetworkingConfig": {"EndpointsConfig": {
            "net-b": {"IPAMConfig": {"IPv6Address": "fd42:b0e7:2::9"}}}}}));
        let mut net = NetOptions::default();
        endpoint_options(&req, "net-b", "bbb", &mut net, &find).expect("ok");
        assert_eq!(net.ip6, "fd42:b0e7:2::9".parse().ok());
        let outside = body(serde_json::json!({"NetworkingConfig": {"EndpointsConfig": {
            "net-b": {"IPAMConfig": {"IPv6Address": "fd42:b0e7:3::9"}}}}}));
        let e = endpoint_options(&outside, "net-b", "bbb", &mut NetOptions::default(), &find);
        assert!(format!("{e:?}").contains("no configured subnet"), "{e:?}");
        let no_v6 = body(serde_json::json!({"NetworkingConfig": {"EndpointsConfig": {
            "net-a": {"IPAMConfig": {"IPv6Address": "fd42:b0e7:2::9"}}}}}));
        let e = endpoint_options(&no_v6, "net-a", "aaa", &mut NetOptions::default(), &find);
        assert!(format!("{e:?}").contains("IPv6 disabled"), "{e:?}");
    }

    #[test]
    fn a_create_body_naming_several_networks_joins_each() {
        let req = body(serde_json::json!({"NetworkingConfig": {"EndpointsConfig": {
            "net-a": {"Aliases": ["a1"]},
            "net-b": {"Aliases": ["b1"], "IPAMConfig": {"IPv4Address": "10.2.0.9"},
                      "DriverOpts": {ENDPOINT_SYSCTLS: "net.ipv6.conf.ifname.disable_ipv6=1"}},
        }}}));
        let mut net = NetOptions::default();
        endpoint_options(&req, "net-a", "aaa", &mut net, &find).expect("ok");
        assert_eq!(net.aliases, ["a1"]);
        assert_eq!(
            net.more,
            [Join {
                name: "net-b".into(),
                network: "bbb".into(),
                aliases: vec!["b1".into()],
                ip: Some(Ipv4Addr::new(10, 2, 0, 9)),
                ip6: None,
                gw_priority: 0,
                mac: None,
                sysctls: vec!["net.ipv6.conf.ifname.disable_ipv6=1".into()],
            }]
        );
        let sysctls = |v: &str| {
            endpoint_sysctls(Some(&BTreeMap::from([(ENDPOINT_SYSCTLS.into(), v.into())])))
        };
        assert_eq!(
            sysctls("net.ipv4.conf.IFNAME.a=1,net.mpls.conf.IFNAME.input=1").expect("two"),
            ["net.ipv4.conf.IFNAME.a=1", "net.mpls.conf.IFNAME.input=1"]
        );
        for bad in [
            "net.ipv4.conf.eth0.a=1",
            "net.core.x.IFNAME.a=1",
            "net.ipv4.conf.IFNAME.a",
            "kernel.a.b.IFNAME.c=1",
        ] {
            assert!(sysctls(bad).is_err(), "{bad}");
        }
        assert_eq!(
            endpoint_mac("92:D0:c6:0a:29:33").expect("colons"),
            Some("92:d0:c6:0a:29:33".to_string())
        );
        assert_eq!(
            endpoint_mac("92-d0-c6-0a-29-33").expect("dashes"),
            Some("92:d0:c6:0a:29:33".to_string())
        );
        for bad in [
            "92:d0:c6:0a:29",
            "92:d0:c6:0a:29:33:44",
            "zz:d0:c6:0a:29:33",
            "92d0c60a2933",
        ] {
            assert!(endpoint_mac(bad).is_err(), "{bad}");
        }
        // An address outside the network's subnet, another network beside `none` or
        // `container:X`, an unknown network: dockerd's refusals.
        let outside = body(serde_json::json!({"NetworkingConfig": {"EndpointsConfig": {
            "net-b": {"IPAMConfig": {"IPv4Address": "10.1.0.9"}}}}}));
        let e = endpoint_options(&outside, "net-a", "aaa", &mut NetOptions::default(), &find);
        assert!(e.is_err_and(|e| e.to_string().contains("no configured subnet")));
        for mode in ["none", "container:abc"] {
            let e = endpoint_options(&req, mode, "", &mut NetOptions::default(), &find);
            assert!(e.is_err(), "{mode}");
        }
        let unknown = body(serde_json::json!({"NetworkingConfig": {"EndpointsConfig": {
            "nosuch": {}}}}));
        let e = endpoint_options(&unknown, "net-a", "aaa", &mut NetOptions::default(), &find);
        assert!(e.is_err_and(|e| e.to_string() == "network nosuch not found"));
        // The container's own network under the name the client used is no other one.
        let own = body(serde_json::json!({"NetworkingConfig": {"EndpointsConfig": {
            "container:web": {}}}}));
        let mut net = NetOptions::default();
        endpoint_options(&own, "container:0123", "", &mut net, &find).expect("ok");
        assert!(net.more.is_empty());
    }

    #[test]
    fn port_specs_are_checked_as_moby_checks_them() {
        assert_eq!(parse_port_key("80/udp").expect("ok"), (80, Proto::Udp));
        assert_eq!(parse_port_key("80").expect("ok"), (80, Proto::Tcp));
        for bad in ["99999/tcp", "abc", "0/tcp", "80/xyz"] {
            assert!(parse_port_key(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_host_port("8000-8010").expect("ok"),
            ports::HostPorts {
                first: 8000,
                last: 8010
            }
        );
        for bad in ["99999", "x", "9-1", "0"] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }
}

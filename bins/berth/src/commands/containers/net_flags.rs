//! The `run`/`create` networking flags (`--network`, `--network-alias`, `--ip`, `--ip6`,
//! `--mac-address`, `-p`, `-P`, `--expose`, `--dns*`, `--add-host`, `--domainname`), put into
//! the create body as the docker CLI 28 puts them (its opts/parse.go and go-connections'
//! nat.ParsePortSpec), with its messages.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use berth_api_types::container::{Config, NetworkingConfig, PortBinding};
use berth_api_types::network::{EndpointIpamConfig, EndpointSettings};
use clap::Args;
use serde_json::json;

#[derive(Debug, Args)]
pub struct NetFlags {
    /// Connect to a network: bridge, none, host, container:NAME or a network's name; or
    /// name=NET[,alias=A][,ip=X][,ip6=X][,mac-address=M][,driver-opt=K=V][,gw-priority=N].
    /// Given again, the container joins several networks.
    #[arg(long, alias = "net")]
    pub network: Vec<String>,
    /// A network-scoped alias (on the first network).
    #[arg(long, alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address on the first network (e.g. 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address on the first network (e.g. 2001:db8::33).
    #[arg(long)]
    pub ip6: Option<String>,
    /// A link-local address on the first network.
    #[arg(long)]
    pub link_local_ip: Vec<String>,
    /// Container MAC address on the first network (e.g. 92:d0:c6:0a:29:33).
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Publish a port: [IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|udp|sctp].
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish every exposed port on an ephemeral host port.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range (PORT[-END][/PROTO]) without publishing it.
    #[arg(long)]
    pub expose: Vec<String>,
    /// A DNS server for the container.
    #[arg(long)]
    pub dns: Vec<String>,
    /// A DNS search domain.
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// A DNS option (resolv.conf's `options`).
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// A line for /etc/hosts: HOST:IP (IP may be host-gateway).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Container NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
}

/// One `--network` value: a network and the endpoint settings it carries.
#[derive(Debug, Default)]
struct Attachment {
    target: String,
    endpoint: EndpointSettings,
}

impl NetFlags {
    /// Put the flags into `config` (its HostConfig and NetworkingConfig too).
    pub fn apply(&self, config: &mut Config) -> Result<()> {
        for port in &self.expose {
            for key in expose(port)? {
                config.exposed_ports.insert(key, json!({}));
            }
        }
        let host = &mut config.host_config;
        for spec in &self.publish {
            for (key, binding) in parse_port_spec(spec)? {
                config.exposed_ports.insert(key.clone(), json!({}));
                host.port_bindings
                    .entry(key)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(binding);
            }
        }
        host.publish_all_ports = self.publish_all;
        host.dns.clone_from(&self.dns);
        host.dns_search.clone_from(&self.dns_search);
        host.dns_options.clone_from(&self.dns_option);
        host.extra_hosts = self
            .add_host
            .iter()
            .map(|h| extra_host(h))
            .collect::<Result<_>>()?;
        config.domainname = self.domainname.clone().unwrap_or_default();
        let (mode, networking) = self.networking()?;
        config.host_config.network_mode = mode;
        config.networking_config = networking;
        Ok(())
    }

    /// HostConfig.NetworkMode (the first network, else `default`) and the endpoints.
    fn networking(&self) -> Result<(String, NetworkingConfig)> {
        let mut attachments = self
            .network
            .iter()
            .map(|n| attachment(n))
            .collect::<Result<Vec<_>>>()?;
        let single = attachments.len() <= 1;
        if attachments.is_empty() {
            attachments.push(Attachment {
                target: "default".into(),
                ..Attachment::default()
            });
        }
        self.apply_to_first(&mut attachments[0])?;
        let user_defined = |a: &Attachment| is_user_defined(&a.target);
        if attachments.iter().any(user_defined) && !attachments.iter().all(user_defined) {
            bail!(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
            );
        }
        let mode = attachments[0].target.clone();
        let mut networking = NetworkingConfig::default();
        for a in attachments {
            // One network without settings sends no endpoint, as the docker CLI.
            if single && a.endpoint == EndpointSettings::default() {
                continue;
            }
            if networking.endpoints_config.contains_key(&a.target) {
                bail!("network {:?} is specified multiple times", a.target);
            }
            networking.endpoints_config.insert(a.target, a.endpoint);
        }
        Ok((mode, networking))
    }

    /// The flags that name no network (`--network-alias`, `--ip`, `--ip6`,
    /// `--mac-address`) belong to the first one.
    fn apply_to_first(&self, first: &mut Attachment) -> Result<()> {
        let ep = &mut first.endpoint;
        if !self.network_alias.is_empty() {
            if ep.aliases.is_some() {
                bail!("conflicting options: cannot specify both --network-alias and per-network alias");
            }
            ep.aliases = Some(self.network_alias.clone());
        }
        let ipam = [
            ("--ip", "IPv4", &self.ip, true),
            ("--ip6", "IPv6", &self.ip6, false),
        ];
        for (flag, family, value, v4) in ipam {
            let Some(value) = value else { continue };
            let config = ep
                .ipam_config
                .get_or_insert_with(EndpointIpamConfig::default);
            let field = if v4 {
                &mut config.ipv4_address
            } else {
                &mut config.ipv6_address
            };
            if !field.is_empty() {
                bail!("conflicting options: cannot specify both {flag} and per-network {family} address");
            }
            field.clone_from(value);
        }
        if !self.link_local_ip.is_empty() {
            let config = ep
                .ipam_config
                .get_or_insert_with(EndpointIpamConfig::default);
            if !config.link_local_ips.is_empty() {
                bail!("conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses");
            }
            config.link_local_ips.clone_from(&self.link_local_ip);
        }
        if let Some(mac) = &self.mac_address {
            if !ep.mac_address.is_empty() {
                bail!(
                    "conflicting options: cannot specify both --mac-address and per-network MAC address"
                );
            }
            ep.mac_address = mac_address(mac)?;
        }
        Ok(())
    }
}

/// Whether a network mode names a user-defined network (as moby's IsUserDefined).
fn is_user_defined(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

/// `--network` in its plain (`NAME`) or advanced (`name=NET,alias=A,...`) form.
fn attachment(value: &str) -> Result<Attachment> {
    if !value.contains('=') {
        return Ok(Attachment {
            target: value.to_string(),
            ..Attachment::default()
        });
    }
    let mut a = Attachment::default();
    let ep = &mut a.endpoint;
    for field in value.split(',') {
        let Some((key, val)) = field.split_once('=') else {
            bail!("invalid field {field:?}: must be a key=value pair");
        };
        match key.to_ascii_lowercase().as_str() {
            "name" => a.target = val.to_string(),
            "alias" => ep
                .aliases
                .get_or_insert_with(Vec::new)
                .push(val.to_string()),
            "ip" => {
                ep.ipam_config
                    .get_or_insert_with(Default::default)
                    .ipv4_address = val.into()
            }
            "ip6" => {
                ep.ipam_config
                    .get_or_insert_with(Default::default)
                    .ipv6_address = val.into()
            }
            "mac-address" => ep.mac_address = mac_address(val)?,
            "link-local-ip" => ep
                .ipam_config
                .get_or_insert_with(Default::default)
                .link_local_ips
                .push(val.to_string()),
            "driver-opt" => {
                let Some((k, v)) = val.split_once('=') else {
                    bail!("invalid key value pair format in driver options");
                };
                ep.driver_opts
                    .get_or_insert_with(BTreeMap::new)
                    .insert(k.to_string(), v.to_string());
            }
            "gw-priority" => {
                ep.gw_priority = val
                    .parse()
                    .map_err(|_| anyhow::anyhow!("invalid gw-priority: {val}"))?
            }
            _ => bail!("invalid field key {key}"),
        }
    }
    if a.target.is_empty() {
        bail!("network name must be set: {value}");
    }
    Ok(a)
}

/// `--mac-address`, checked as the docker CLI checks it (six hex pairs, `:` or `-`).
pub fn mac_address(val: &str) -> Result<String> {
    let pairs: Vec<&str> = val.split([':', '-']).collect();
    let valid = pairs.len() == 6
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        bail!("invalid argument \"{val}\" for \"--mac-address\" flag: {val} is not a valid mac address");
    }
    Ok(val.to_string())
}

/// `--add-host HOST:IP` or `HOST=IP`, sent as `HOST:IP` (IPv6 brackets dropped).
fn extra_host(val: &str) -> Result<String> {
    let split = val.split_once('=').or_else(|| val.split_once(':'));
    let Some((host, ip)) = split.filter(|(h, i)| !h.is_empty() && !i.is_empty()) else {
        bail!(
            "invalid argument \"{val}\" for \"--add-host\" flag: bad format for add-host: {val:?}"
        );
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
        bail!("invalid argument \"{val}\" for \"--add-host\" flag: invalid IP address in add-host: {ip:?}");
    }
    Ok(format!("{host}:{ip}"))
}

/// `PORT[-END]`, as go-connections' ParsePortRange.
fn port_range(s: &str) -> Option<(u16, u16)> {
    let (first, last) = s.split_once('-').unwrap_or((s, s));
    let (first, last) = (first.parse::<u16>().ok()?, last.parse::<u16>().ok()?);
    (first <= last).then_some((first, last))
}

fn protocol(proto: &str) -> Result<String> {
    let proto = if proto.is_empty() { "tcp" } else { proto };
    let lower = proto.to_ascii_lowercase();
    if !matches!(lower.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    Ok(lower)
}

/// `--expose PORT[-END][/PROTO]`: the ExposedPorts keys.
fn expose(val: &str) -> Result<Vec<String>> {
    let (ports, proto) = val.split_once('/').unwrap_or((val, ""));
    let proto = protocol(proto)?;
    let Some((first, last)) = port_range(ports) else {
        bail!("invalid range format for --expose: {val}");
    };
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// `-p [IP:][HOST[-END]:]CONTAINER[-END][/PROTO]`: an ExposedPorts key and a binding per
/// container port, as go-connections' ParsePortSpec.
fn parse_port_spec(spec: &str) -> Result<Vec<(String, PortBinding)>> {
    let parts: Vec<&str> = spec.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (container, proto) = container.split_once('/').unwrap_or((container, ""));
    let ip = ip.trim_start_matches('[').trim_end_matches(']').to_string();
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        bail!("invalid IP address: {ip}");
    }
    if container.is_empty() {
        bail!("no port specified: {spec}<empty>");
    }
    let Some((first, last)) = port_range(container) else {
        bail!("invalid containerPort: {container}");
    };
    let hosts = match host {
        "" => None,
        h => Some(port_range(h).ok_or_else(|| anyhow::anyhow!("invalid hostPort: {h}"))?),
    };
    if let Some((hfirst, hlast)) = hosts {
        // A host range with one container port is the range to pick a free port from.
        if hlast - hfirst != last - first && first != last {
            bail!("invalid ranges specified for container and host Ports: {container} and {host}");
        }
    }
    let proto = protocol(proto)?;
    Ok((0..=last - first)
        .map(|i| {
            let host_port = match hosts {
                None => String::new(),
                Some((hf, hl)) if first == last && hf != hl => format!("{hf}-{hl}"),
                Some((hf, _)) => (hf + i).to_string(),
            };
            let binding = PortBinding {
                host_ip: ip.clone(),
                host_port,
            };
            (format!("{}/{proto}", first + i), binding)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings(spec: &str) -> Vec<(String, String, String)> {
        parse_port_spec(spec)
            .expect(spec)
            .into_iter()
            .map(|(k, b)| (k, b.host_ip, b.host_port))
            .collect()
    }

    fn own(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        v.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn port_specs_as_the_docker_cli_reads_them() {
        assert_eq!(bindings("80"), own(&[("80/tcp", "", "")]));
        assert_eq!(bindings("8080:80/udp"), own(&[("80/udp", "", "8080")]));
        assert_eq!(
            bindings("127.0.0.1::80"),
            own(&[("80/tcp", "127.0.0.1", "")])
        );
        assert_eq!(
            bindings("[::1]:8080:80/SCTP"),
            own(&[("80/sctp", "::1", "8080")])
        );
        assert_eq!(
            bindings("8000-8001:80-81"),
            own(&[("80/tcp", "", "8000"), ("81/tcp", "", "8001")])
        );
        assert_eq!(
            bindings("8000-8010:80"),
            own(&[("80/tcp", "", "8000-8010")])
        );
        for (bad, message) in [
            ("abc", "invalid containerPort: abc"),
            ("99999:80", "invalid hostPort: 99999"),
            ("1.2.3:80:80", "invalid IP address: 1.2.3"),
            ("80:", "no port specified: 80:<empty>"),
            ("8000-8001:80-82", "invalid ranges specified"),
            ("80/icmp", "invalid proto: icmp"),
        ] {
            let err = parse_port_spec(bad).expect_err(bad).to_string();
            assert!(err.contains(message), "{bad}: {err}");
        }
    }

    #[test]
    fn exposed_ranges_hosts_and_macs() {
        assert_eq!(
            expose("80-82/udp").expect("range"),
            ["80/udp", "81/udp", "82/udp"]
        );
        assert!(expose("x").is_err());
        assert_eq!(extra_host("db=10.0.0.2").expect("="), "db:10.0.0.2");
        assert_eq!(extra_host("gw:host-gateway").expect(":"), "gw:host-gateway");
        assert_eq!(extra_host("v6=[::1]").expect("v6"), "v6:::1");
        assert!(extra_host("nohost").is_err());
        assert!(extra_host("db:not-an-ip").is_err());
        assert!(mac_address("02:42:ac:11:00:02").is_ok());
        assert!(mac_address("02:42:ac").is_err());
    }

    fn flags(args: &[&str]) -> NetFlags {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            net: NetFlags,
        }
        let argv = std::iter::once("berth").chain(args.iter().copied());
        Cli::try_parse_from(argv).expect("flags").net
    }

    #[test]
    fn networks_and_the_first_ones_settings() {
        let (mode, net) = flags(&[]).networking().expect("none given");
        assert_eq!(mode, "default");
        assert!(net.endpoints_config.is_empty());
        let (mode, net) = flags(&[
            "--network",
            "front",
            "--ip",
            "10.1.0.9",
            "--network-alias",
            "web",
        ])
        .networking()
        .expect("one");
        assert_eq!(mode, "front");
        let ep = &net.endpoints_config["front"];
        assert_eq!(ep.aliases.as_deref(), Some(&["web".to_string()][..]));
        assert_eq!(
            ep.ipam_config.as_ref().map(|c| c.ipv4_address.as_str()),
            Some("10.1.0.9")
        );
        let (mode, net) = flags(&[
            "--network",
            "a",
            "--network",
            "name=b,alias=x,gw-priority=5",
        ])
        .networking()
        .expect("two");
        assert_eq!(mode, "a");
        assert_eq!(net.endpoints_config.len(), 2);
        assert_eq!(net.endpoints_config["b"].gw_priority, 5);
        for (args, message) in [
            (
                &["--network", "a", "--network", "host"][..],
                "non-user-defined",
            ),
            (
                &["--network", "a", "--network", "a"][..],
                "specified multiple times",
            ),
            (
                &["--network", "name=a,alias=x", "--network-alias", "y"][..],
                "--network-alias and per-network alias",
            ),
            (
                &["--network", "name=a,bogus=1"][..],
                "invalid field key bogus",
            ),
        ] {
            let err = flags(args).networking().expect_err(message).to_string();
            assert!(err.contains(message), "{args:?}: {err}");
        }
    }
}

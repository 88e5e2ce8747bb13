//! Which registries are spoken to how: Docker Hub's API host, and the registries that may
//! use plain HTTP or an unverified certificate (`insecure-registries` in daemon.json, and
//! loopback, as Docker allows).

use std::net::IpAddr;

/// The host the Docker Hub API lives on; references name it `docker.io`.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The name credentials for Docker Hub are stored under in `config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The host to send API requests to for a reference's domain.
pub fn api_host(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" => DOCKER_HUB_API,
        other => other,
    }
}

/// The registry a `login` server address names: `https://index.docker.io/v1/` and
/// `docker.io` are Docker Hub, `http://host:5000/` is `host:5000`.
pub fn registry_of(server: &str) -> String {
    let trimmed = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = trimmed.split('/').next().unwrap_or_default();
    match host {
        "" | "index.docker.io" | "docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

/// `host` without its port (brackets of an IPv6 address removed).
fn hostname(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// One `insecure-registries` entry: `host[:port]` or an IP network in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Host(String),
    Network(IpAddr, u8),
}

fn parse_entry(s: &str) -> Entry {
    let s = s
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if let Some((ip, bits)) = s.split_once('/') {
        if let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
            return Entry::Network(ip, bits);
        }
    }
    Entry::Host(s.to_string())
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The registries berth may reach without verified TLS.
#[derive(Debug, Clone, Default)]
pub struct Insecure {
    entries: Vec<Entry>,
}

impl Insecure {
    pub fn new(list: &[String]) -> Insecure {
        Insecure {
            entries: list.iter().map(|s| parse_entry(s)).collect(),
        }
    }

    /// Loopback is always insecure; otherwise the host must be listed (by name, by
    /// host:port, or by an address inside a listed network).
    pub fn allows(&self, host: &str) -> bool {
        let name = hostname(host);
        let ip = name.parse::<IpAddr>().ok();
        if name == "localhost" || ip.is_some_and(|a| a.is_loopback()) {
            return true;
        }
        self.entries.iter().any(|e| match e {
            Entry::Host(h) => h == host || h == name,
            Entry::Network(net, bits) => ip.is_some_and(|a| in_network(a, *net, *bits)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries() {
        let i = Insecure::new(&["reg.example:5000".into(), "10.1.0.0/16".into()]);
        assert!(i.allows("localhost:5000"));
        assert!(i.allows("127.0.0.5:8080"));
        assert!(i.allows("[::1]:5000"));
        assert!(i.allows("reg.example:5000"));
        assert!(!i.allows("reg.example:5001"));
        assert!(i.allows("10.1.200.3:443"));
        assert!(!i.allows("10.2.0.1"));
        assert!(!i.allows("registry-1.docker.io"));
    }

    #[test]
    fn registries_of_login_servers() {
        assert_eq!(registry_of("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_of("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost:5000"), "localhost:5000");
        assert_eq!(api_host("docker.io"), DOCKER_HUB_API);
    }
}

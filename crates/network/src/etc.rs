//! /etc/hosts and /etc/resolv.conf of a container, as dockerd writes them.

use std::net::IpAddr;

/// dockerd's default lines of /etc/hosts.
const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// /etc/hosts: the defaults, the `--add-host` entries (name, address), then the container's
/// own addresses (one per network it is on) under its name (the FQDN first when there is a
/// domain, then the short name), as libnetwork's buildHostsFile and updateHostsFile write it.
pub fn hosts(
    extra: &[(String, String)],
    own: &[IpAddr],
    hostname: &str,
    domainname: &str,
) -> String {
    let mut out = String::from(DEFAULT_HOSTS);
    for (name, ip) in extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    for ip in own {
        let fqdn = if domainname.is_empty() {
            hostname.to_string()
        } else {
            format!("{hostname}.{domainname}")
        };
        let names = match fqdn.split_once('.') {
            Some((short, _)) => format!("{fqdn} {short}"),
            None => fqdn,
        };
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    out
}

/// What the container's resolv.conf is made of.
#[derive(Debug, Default, Clone)]
pub struct Resolv {
    /// `--dns`: replaces the host's name servers.
    pub servers: Vec<String>,
    /// `--dns-search`: replaces the host's search domains (`.` alone: none).
    pub search: Vec<String>,
    /// `--dns-option`: replaces the host's options.
    pub options: Vec<String>,
}

/// Google's public resolvers: dockerd's when the host has none a container can reach.
const DEFAULT_SERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

fn is_loopback(server: &str) -> bool {
    server
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// The container's resolv.conf from the host's (`host`: its text): the host's name servers
/// on loopback cannot be reached from the container's namespace and are dropped (dockerd's
/// FilterResolvDNS), and when none is left the defaults take their place; `--dns`,
/// `--dns-search` and `--dns-option` replace what the host's file says.
pub fn resolv_conf(host: &str, given: &Resolv) -> String {
    let mut servers = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut other = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => servers.extend(words.next().map(String::from)),
            Some("search") | Some("domain") => search = words.map(String::from).collect(),
            Some("options") => options.extend(words.map(String::from)),
            Some(w) if w.starts_with('#') || w.starts_with(';') => {}
            Some(_) => other.push(line.to_string()),
            None => {}
        }
    }
    servers.retain(|s| !is_loopback(s));
    if !given.servers.is_empty() {
        servers = given.servers.clone();
    } else if servers.is_empty() {
        servers = DEFAULT_SERVERS.iter().map(|s| s.to_string()).collect();
    }
    if !given.search.is_empty() {
        search = given.search.iter().filter(|s| *s != ".").cloned().collect();
    }
    if !given.options.is_empty() {
        options = given.options.clone();
    }
    let mut out = String::new();
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    for line in other {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The resolv.conf of a container on the host's network: the host's file as it is, or with
/// `--dns`, `--dns-search` and `--dns-option` replacing its lines (its loopback servers are
/// reachable from there and stay, as under dockerd).
pub fn host_network_resolv_conf(host: &str, given: &Resolv) -> String {
    if given.servers.is_empty() && given.search.is_empty() && given.options.is_empty() {
        return host.to_string();
    }
    let mut out = String::new();
    let mut written = (false, false, false);
    for line in host.lines() {
        match line.split_whitespace().next() {
            Some("nameserver") if !given.servers.is_empty() => {
                if !written.0 {
                    for s in &given.servers {
                        out.push_str(&format!("nameserver {s}\n"));
                    }
                    written.0 = true;
                }
            }
            Some("search" | "domain") if !given.search.is_empty() => {
                if !written.1 {
                    out.push_str(&search_line(&given.search));
                    written.1 = true;
                }
            }
            Some("options") if !given.options.is_empty() => {
                if !written.2 {
                    out.push_str(&format!("options {}\n", given.options.join(" ")));
                    written.2 = true;
                }
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if !written.0 {
        for s in &given.servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    if !written.1 && !given.search.is_empty() {
        out.push_str(&search_line(&given.search));
    }
    if !written.2 && !given.options.is_empty() {
        out.push_str(&format!("options {}\n", given.options.join(" ")));
    }
    out
}

/// `search` with the domains given (`.` alone: none, so no line).
fn search_line(search: &[String]) -> String {
    let domains: Vec<&str> = search
        .iter()
        .map(String::as_str)
        .filter(|s| *s != ".")
        .collect();
    if domains.is_empty() {
        String::new()
    } else {
        format!("search {}\n", domains.join(" "))
    }
}

/// The resolv.conf of a container on a user-defined network: the embedded resolver, the
/// host's search domains unless `--dns-search` replaces them, `ndots:0` unless
/// `--dns-option` says otherwise, and the servers it forwards to named in a comment, as
/// dockerd writes it.
pub fn embedded_resolv_conf(host: &str, search: &[String], options: &[String]) -> String {
    let base = resolv_conf(
        host,
        &Resolv {
            servers: Vec::new(),
            search: search.to_vec(),
            options: Vec::new(),
        },
    );
    let mut out = format!("nameserver {}\n", crate::dns::ADDRESS);
    for line in base.lines().filter(|l| l.starts_with("search ")) {
        out.push_str(line);
        out.push('\n');
    }
    let options = if options.is_empty() {
        vec!["ndots:0".to_string()]
    } else {
        options.to_vec()
    };
    out.push_str(&format!("options {}\n", options.join(" ")));
    let external: Vec<&str> = host
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    out.push_str(&format!("\n# ExtServers: [{}]\n", external.join(" ")));
    out
}

/// The host's resolv.conf, where systemd-resolved keeps the real servers when it runs
/// (its stub on 127.0.0.53 is of no use in a container), as dockerd reads it.
pub fn host_resolv_conf() -> String {
    let main = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if main.lines().any(|l| l.trim() == "nameserver 127.0.0.53") {
        if let Ok(real) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            return real;
        }
    }
    main
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_networks_file_is_the_hosts_with_the_flags_lines() {
        let host = "# comment\nnameserver 127.0.0.53\nsearch lan\noptions edns0\n";
        assert_eq!(host_network_resolv_conf(host, &Resolv::default()), host);
        let given = Resolv {
            servers: vec!["10.0.0.53".into()],
            search: vec![],
            options: vec!["ndots:2".into()],
        };
        assert_eq!(
            host_network_resolv_conf(host, &given),
            "# comment\nnameserver 10.0.0.53\nsearch lan\noptions ndots:2\n"
        );
    }

    #[test]
    fn loopback_servers_are_replaced_and_flags_win() {
        let host = "# comment\nnameserver 127.0.0.53\nnameserver ::1\nsearch lan\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &Resolv::default()),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\noptions edns0\n"
        );
        let given = Resolv {
            servers: vec!["10.0.0.1".into()],
            search: vec!["a.example".into(), "b.example".into()],
            options: vec!["ndots:2".into()],
        };
        assert_eq!(
            resolv_conf("nameserver 192.0.2.1\nsearch lan\n", &given),
            "nameserver 10.0.0.1\nsearch a.example b.example\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_conf(
                "nameserver 192.0.2.1\nsearch lan\n",
                &Resolv {
                    search: vec![".".into()],
                    ..Resolv::default()
                }
            ),
            "nameserver 192.0.2.1\n"
        );
    }

    #[test]
    fn hosts_end_with_the_container() {
        let h = hosts(
            &[("db".into(), "10.1.2.3".into())],
            &[
                "172.17.0.2".parse().expect("ip"),
                "10.5.0.3".parse().expect("ip"),
            ],
            "web",
            "example.com",
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(
            h.ends_with(
                "10.1.2.3\tdb\n172.17.0.2\tweb.example.com web\n10.5.0.3\tweb.example.com web\n"
            ),
            "{h}"
        );
    }
}

//! A pod's /etc/hosts, /etc/hostname and /etc/resolv.conf, shared by its containers (as
//! containerd writes them for a sandbox).

use std::path::Path;

use k8s_cri::v1::DnsConfig;

use crate::error::{CriError, Result};

fn resolv_conf(dns: Option<&DnsConfig>) -> String {
    let Some(dns) =
        dns.filter(|d| !(d.servers.is_empty() && d.searches.is_empty() && d.options.is_empty()))
    else {
        return std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    };
    let mut out = String::new();
    if !dns.searches.is_empty() {
        out.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for server in &dns.servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    out
}

const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Write the files into `dir`. On the node's network a pod has the node's hosts file.
pub fn write(
    dir: &Path,
    hostname: &str,
    dns: Option<&DnsConfig>,
    node_network: bool,
) -> Result<()> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |source| CriError::Io {
            what: format!("write {what}"),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let hosts = if node_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| HOSTS.to_string())
    } else {
        HOSTS.to_string()
    };
    for (name, text) in [
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv_conf(dns)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_from_the_pods_dns_config() {
        let dns = DnsConfig {
            servers: vec!["10.10.10.10".into()],
            searches: vec!["google.com".into()],
            options: vec!["ndots:8".into()],
        };
        assert_eq!(
            resolv_conf(Some(&dns)),
            "search google.com\nnameserver 10.10.10.10\noptions ndots:8\n"
        );
    }

    #[test]
    fn the_files_are_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "pod-a", None, false).expect("write");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("hostname")).expect("hostname"),
            "pod-a\n"
        );
        assert!(std::fs::read_to_string(dir.path().join("hosts"))
            .expect("hosts")
            .contains("localhost"));
    }
}

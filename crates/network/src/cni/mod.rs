//! A CNI client, as a kubelet's runtime calls the plugins: the network configuration list
//! from a conf dir (the first valid file by name, as libcni and containerd choose it), each
//! plugin run with the CNI environment and its config on stdin, ADD in order with the
//! previous result chained, DEL in reverse with the cached result, CHECK. Plugins are
//! programs by contract (the CNI spec), so this is the one place the network crate runs them.

mod conf;
mod exec;

pub use conf::NetworkList;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// What the CNI needs to know about one attachment.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The sandbox's id (CNI_CONTAINERID).
    pub container_id: String,
    /// The namespace file (CNI_NETNS).
    pub netns: PathBuf,
    /// The interface inside (CNI_IFNAME).
    pub ifname: String,
    /// CNI_ARGS, as a kubelet's runtime passes them (K8S_POD_NAME, ...).
    pub args: Vec<(String, String)>,
    /// The `portMappings` capability (the portmap plugin).
    pub port_mappings: Vec<PortMapping>,
}

/// A host port mapped to the sandbox (CNI's portMappings runtime config).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("no CNI network configuration in {0}")]
    NoNetwork(PathBuf),
    #[error("read the CNI configuration {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("the CNI plugin {plugin} was not found in {dirs}")]
    PluginMissing { plugin: String, dirs: String },
    #[error("run the CNI plugin {plugin}: {source}")]
    Spawn {
        plugin: String,
        source: std::io::Error,
    },
    #[error("the CNI plugin {plugin} did not finish {command} within {timeout:?}: killed")]
    Timeout {
        plugin: String,
        command: &'static str,
        timeout: std::time::Duration,
    },
    #[error("the CNI plugin {plugin} failed ({command}): {message}")]
    Plugin {
        plugin: String,
        command: &'static str,
        message: String,
    },
}

pub type Result<T, E = CniError> = std::result::Result<T, E>;

/// Where the configuration and the plugins are.
#[derive(Debug, Clone)]
pub struct Cni {
    pub conf_dir: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
    /// How long one plugin run may take before it is killed and the call fails.
    pub timeout: Duration,
}

/// A plugin run's limit unless configured: far above what bridge with its iptables runs
/// take on a loaded machine (well under a second), below the kubelet's 2-minute request
/// deadline even when a failed ADD's DEL also hangs.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Cni {
    pub fn new(conf_dir: &Path, bin_dirs: &[PathBuf]) -> Cni {
        Cni {
            conf_dir: conf_dir.to_path_buf(),
            bin_dirs: bin_dirs.to_vec(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same, with plugin runs limited to `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Cni {
        Cni { timeout, ..self }
    }

    /// The network configuration, read again at each call (a kubelet's node agent may
    /// write it after the runtime started).
    pub fn network(&self) -> Result<NetworkList> {
        conf::load(&self.conf_dir)
    }

    /// ADD: every plugin in order; the last one's result.
    pub fn add(&self, net: &NetworkList, a: &Attachment) -> Result<Value> {
        let mut prev: Option<Value> = None;
        for plugin in &net.plugins {
            let result = exec::run(self, net, plugin, exec::Command::Add, a, prev.as_ref())?;
            prev = Some(result);
        }
        Ok(prev.unwrap_or(Value::Null))
    }

    /// DEL: every plugin in reverse, with the result ADD gave (when known). Plugins are
    /// idempotent for DEL; every one runs even if one fails, and the first error is returned.
    pub fn del(&self, net: &NetworkList, a: &Attachment, result: Option<&Value>) -> Result<()> {
        let mut first_error = None;
        for plugin in net.plugins.iter().rev() {
            if let Err(e) = exec::run(self, net, plugin, exec::Command::Del, a, result) {
                tracing::warn!(error = %e, "CNI DEL");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// CHECK (CNI 0.4.0 and later): every plugin in order, with the result ADD gave. A list
    /// older than 0.4.0 or with `disableCheck` is not checked (as libcni skips it): Ok.
    pub fn check(&self, net: &NetworkList, a: &Attachment, result: &Value) -> Result<()> {
        if !conf::supports_check(&net.cni_version) {
            tracing::info!(network = %net.name, version = %net.cni_version,
                "CNI CHECK skipped: the network's cniVersion predates CHECK (0.4.0)");
            return Ok(());
        }
        if net.disable_check {
            tracing::info!(network = %net.name, "CNI CHECK skipped: the network sets disableCheck");
            return Ok(());
        }
        for plugin in &net.plugins {
            exec::run(self, net, plugin, exec::Command::Check, a, Some(result))?;
        }
        Ok(())
    }
}

/// The addresses of a result, first the ones of the interface inside (CNI 0.3+ `ips`, or
/// 0.2's `ip4`/`ip6`).
pub fn ips_of(result: &Value) -> Vec<IpAddr> {
    let parse = |s: &str| s.split('/').next().and_then(|a| a.parse::<IpAddr>().ok());
    let mut out: Vec<IpAddr> = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str().and_then(parse))
        .collect();
    for key in ["ip4", "ip6"] {
        out.extend(result[key]["ip"].as_str().and_then(parse));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_either_result_format() {
        let v1 = serde_json::json!({"cniVersion": "1.0.0", "ips": [
            {"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 0},
            {"address": "fd00::5/64"}]});
        assert_eq!(
            ips_of(&v1),
            vec![
                "10.88.0.5".parse::<IpAddr>().expect("ip"),
                "fd00::5".parse().expect("ip")
            ]
        );
        let v02 = serde_json::json!({"ip4": {"ip": "10.1.2.3/24"}});
        assert_eq!(
            ips_of(&v02),
            vec!["10.1.2.3".parse::<IpAddr>().expect("ip")]
        );
        assert!(ips_of(&Value::Null).is_empty());
    }
}

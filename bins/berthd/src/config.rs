//! The daemon's configuration: flags, /etc/berth/daemon.json, and dockerd's rules for the
//! two together (an unknown key is an error; a setting given both ways is an error).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_engine::containers::net::{NetConfig, Subnet6};
use clap::Parser;
use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = "/etc/berth/daemon.json";

#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    version,
    about = "The berth daemon: serves the Docker Engine API"
)]
pub struct Flags {
    /// Socket to listen on (unix:///path); repeatable.
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Daemon configuration file.
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config_file: PathBuf,
    /// Where images and containers are kept.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Where run-time state is kept (sockets, pid file).
    #[arg(long)]
    pub exec_root: Option<PathBuf>,
    /// The pid file.
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    /// error, warn, info, debug or trace.
    #[arg(short = 'l', long)]
    pub log_level: Option<String>,
    /// Debug logging (log level debug).
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Registries reached over plain HTTP or unverified TLS; repeatable.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Per-registry mirrors and endpoints: a directory of <registry>/hosts.toml files
    /// (containerd's format); "" for none.
    #[arg(long)]
    pub registry_config: Option<PathBuf>,
    /// The OCI runtime used when a container names none.
    #[arg(long)]
    pub default_runtime: Option<String>,
    /// An extra OCI runtime, NAME=PATH; repeatable.
    #[arg(long = "add-runtime")]
    pub add_runtimes: Vec<String>,
    /// The storage driver (overlay2 only).
    #[arg(short = 's', long)]
    pub storage_driver: Option<String>,
    /// Containers' default seccomp profile (Docker's format), "builtin" or "unconfined".
    #[arg(long)]
    pub seccomp_profile: Option<String>,
    /// The static init binary for --init (default: docker-init or tini-static on PATH).
    #[arg(long)]
    pub init_path: Option<PathBuf>,
    /// The cgroup containers go under unless they name one (default: the root).
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// The Kubernetes CRI socket (default: cri.sock in the exec root; "" disables the CRI).
    #[arg(long)]
    pub cri_socket: Option<String>,
    /// The CNI network configuration directory for pods (default /etc/cni/net.d).
    #[arg(long)]
    pub cni_conf_dir: Option<PathBuf>,
    /// Where the CNI plugins are, colon-separated (default /usr/lib/cni:/opt/cni/bin).
    #[arg(long)]
    pub cni_bin_dir: Option<String>,
    /// Seconds one CNI plugin run may take before it is killed and the call fails (30).
    #[arg(long)]
    pub cni_plugin_timeout: Option<u64>,
    /// Where the CRI's streaming server (exec, attach, port-forward) listens.
    #[arg(long)]
    pub cri_stream_address: Option<String>,
    /// The containers' log driver (json-file only).
    #[arg(long)]
    pub log_driver: Option<String>,
    /// An option of the log driver, KEY=VALUE (max-size, max-file); repeatable.
    #[arg(long = "log-opt")]
    pub log_opts: Vec<String>,
    /// The default network's bridge (`none`: no default network).
    #[arg(short = 'b', long)]
    pub bridge: Option<String>,
    /// The bridge's address and prefix (ADDRESS/PREFIX).
    #[arg(long)]
    pub bip: Option<String>,
    /// Where containers' addresses come from, within the bridge's subnet.
    #[arg(long)]
    pub fixed_cidr: Option<String>,
    /// IPv6 on the default bridge (its subnet: --fixed-cidr-v6, else one of the IPv6 pools).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub ipv6: Option<bool>,
    /// The default bridge's IPv6 subnet (with --ipv6).
    #[arg(long)]
    pub fixed_cidr_v6: Option<String>,
    /// The MTU of the bridge and the containers' interfaces.
    #[arg(long)]
    pub mtu: Option<u32>,
    /// A pool for the bridge's subnet: base=CIDR,size=PREFIX; repeatable.
    #[arg(long = "default-address-pool")]
    pub default_address_pools: Vec<String>,
    /// Turn IPv4 forwarding on (default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub ip_forward: Option<bool>,
    /// Published ports and masquerading through berth's nftables table (default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub iptables: Option<bool>,
    /// Masquerade containers' outbound traffic (default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub ip_masq: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct File {
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    hosts: Option<Vec<String>>,
    pidfile: Option<PathBuf>,
    log_level: Option<String>,
    debug: Option<bool>,
    insecure_registries: Option<Vec<String>>,
    registry_config: Option<PathBuf>,
    default_runtime: Option<String>,
    runtimes: Option<BTreeMap<String, RuntimeEntry>>,
    storage_driver: Option<String>,
    seccomp_profile: Option<String>,
    log_driver: Option<String>,
    log_opts: Option<BTreeMap<String, String>>,
    init_path: Option<PathBuf>,
    cgroup_parent: Option<String>,
    bridge: Option<String>,
    bip: Option<String>,
    fixed_cidr: Option<String>,
    ipv6: Option<bool>,
    fixed_cidr_v6: Option<String>,
    mtu: Option<u32>,
    default_address_pools: Option<Vec<AddressPool>>,
    ip_forward: Option<bool>,
    iptables: Option<bool>,
    ip_masq: Option<bool>,
    cri_socket: Option<String>,
    cni_conf_dir: Option<PathBuf>,
    cni_bin_dir: Option<String>,
    cni_plugin_timeout: Option<u64>,
    cri_stream_address: Option<String>,
}

/// daemon.json's `default-address-pools` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressPool {
    base: String,
    size: u8,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuntimeEntry {
    path: String,
    #[serde(default)]
    runtime_args: Vec<String>,
}

/// The settled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub sockets: Vec<PathBuf>,
    pub pidfile: PathBuf,
    pub log_level: String,
    pub insecure_registries: Vec<String>,
    /// The hosts.toml directory, when there is one to read.
    pub registry_config: Option<PathBuf>,
    pub default_runtime: String,
    pub runtimes: BTreeMap<String, String>,
    pub storage_driver: String,
    pub seccomp_profile: SeccompDefault,
    pub init_path: Option<PathBuf>,
    /// Containers' default cgroup parent, absolute ("" for the root).
    pub cgroup_parent: String,
    /// The json-file driver's options (validated by the engine).
    pub log_opts: serde_json::Map<String, serde_json::Value>,
    pub network: NetConfig,
    /// The CRI's socket (None: no CRI).
    pub cri_socket: Option<PathBuf>,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dirs: Vec<PathBuf>,
    pub cni_plugin_timeout: std::time::Duration,
    pub cri_stream_address: std::net::SocketAddr,
}

/// Containers' seccomp profile when they do not ask for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompDefault {
    File(PathBuf),
    /// berth's own (engine `builtin_profile`): asked for, or no file was found.
    Builtin,
    Unconfined,
}

impl SeccompDefault {
    /// As `docker info` names it (`name=seccomp,profile=...`).
    pub fn describe(&self) -> String {
        match self {
            SeccompDefault::File(p) => p.display().to_string(),
            SeccompDefault::Builtin => "builtin".into(),
            SeccompDefault::Unconfined => "unconfined".into(),
        }
    }
}

/// Where a default seccomp profile is looked for when none is configured: berth's own,
/// then the one containers-common (podman's) installs, which is Docker's format; without
/// either, the built-in one.
const SECCOMP_CANDIDATES: [&str; 2] = [
    "/etc/berth/seccomp.json",
    "/usr/share/containers/seccomp.json",
];

fn first_profile_file(candidates: &[&str]) -> SeccompDefault {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .map_or(SeccompDefault::Builtin, SeccompDefault::File)
}

fn read_file(flags: &Flags) -> Result<File> {
    let path = &flags.config_file;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && path.as_os_str() == DEFAULT_CONFIG =>
        {
            return Ok(File::default())
        }
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(File::default());
    }
    serde_json::from_str(&text).map_err(|e| {
        let msg = e.to_string();
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let key = rest.split('`').next().unwrap_or_default();
            anyhow::anyhow!(
                "{}: the following directives don't match any configuration option: {key}",
                path.display()
            )
        } else {
            anyhow::anyhow!("{}: {msg}", path.display())
        }
    })
}

/// Refuse a setting given both as a flag and in the file, as dockerd does.
fn one_of<T: std::fmt::Debug>(name: &str, flag: Option<T>, file: Option<T>) -> Result<Option<T>> {
    match (flag, file) {
        (Some(a), Some(b)) => bail!(
            "the following directives are specified both as a flag and in the configuration file: {name}: (from flag: {a:?}, from file: {b:?})"
        ),
        (a, b) => Ok(a.or(b)),
    }
}

fn nonempty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn nonempty_map<K, V>(m: BTreeMap<K, V>) -> Option<BTreeMap<K, V>> {
    (!m.is_empty()).then_some(m)
}

/// `unix:///path` (or a bare path) as a socket path; anything else is refused by name.
fn socket_path(host: &str) -> Result<PathBuf> {
    if let Some(p) = host.strip_prefix("unix://") {
        if p.is_empty() {
            bail!("invalid host {host:?}: the socket path is empty");
        }
        return Ok(PathBuf::from(p));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    if host.starts_with("tcp://") {
        bail!(
            "host {host:?}: tcp:// listeners are not supported yet (TLS comes later); use unix://"
        );
    }
    bail!("host {host:?}: only unix:///path is supported")
}

/// The default hosts.toml directory: read when it exists.
pub const DEFAULT_REGISTRY_CONFIG: &str = "/etc/berth/certs.d";

/// The registry configuration directory: the default one only if it exists, a configured
/// one must exist (a typo would silently drop every mirror), and "" means none.
fn registry_config(configured: Option<PathBuf>) -> Result<Option<PathBuf>> {
    match configured {
        None => {
            let default = PathBuf::from(DEFAULT_REGISTRY_CONFIG);
            Ok(default.is_dir().then_some(default))
        }
        Some(p) if p.as_os_str().is_empty() => Ok(None),
        Some(p) if p.is_dir() => Ok(Some(p)),
        Some(p) => bail!(
            "registry-config {}: not a directory (it holds <registry>/hosts.toml files)",
            p.display()
        ),
    }
}

impl Config {
    pub fn load(flags: Flags) -> Result<Config> {
        let file = read_file(&flags)?;
        let net_flags = flags_net(&flags)?;
        let net_file = file_net(&file);
        let data_root = one_of("data-root", flags.data_root, file.data_root)?
            .unwrap_or_else(|| "/var/lib/berth".into());
        let exec_root = one_of("exec-root", flags.exec_root, file.exec_root)?
            .unwrap_or_else(|| "/run/berth".into());
        let hosts = one_of("hosts", nonempty(flags.hosts), file.hosts)?
            .unwrap_or_else(|| vec![format!("unix://{}", exec_root.join("berth.sock").display())]);
        let sockets = hosts
            .iter()
            .map(|h| socket_path(h))
            .collect::<Result<Vec<_>>>()?;
        let pidfile = one_of("pidfile", flags.pidfile, file.pidfile)?
            .unwrap_or_else(|| exec_root.join("berthd.pid"));
        let debug = flags.debug || file.debug == Some(true);
        let log_level = one_of("log-level", flags.log_level, file.log_level)?
            .unwrap_or_else(|| if debug { "debug".into() } else { "info".into() });
        if !["error", "warn", "info", "debug", "trace", "fatal"].contains(&log_level.as_str()) {
            bail!("invalid log level {log_level:?}: use error, warn, info, debug or trace");
        }
        let insecure_registries = one_of(
            "insecure-registries",
            nonempty(flags.insecure_registries),
            file.insecure_registries,
        )?
        .unwrap_or_default();
        let registry_config = registry_config(one_of(
            "registry-config",
            flags.registry_config,
            file.registry_config,
        )?)?;
        let storage_driver = one_of("storage-driver", flags.storage_driver, file.storage_driver)?
            .unwrap_or_else(|| "overlay2".into());
        if storage_driver != "overlay2" {
            bail!("storage driver {storage_driver:?} is not supported: berth uses overlay2");
        }
        let mut runtimes =
            BTreeMap::from([("berth-runtime".to_string(), "berth-runtime".to_string())]);
        for (name, entry) in file.runtimes.unwrap_or_default() {
            if !entry.runtime_args.is_empty() {
                bail!("runtimes.{name}.runtimeArgs is not supported yet");
            }
            runtimes.insert(name, entry.path);
        }
        for spec in flags.add_runtimes {
            let (name, path) = spec
                .split_once('=')
                .with_context(|| format!("--add-runtime {spec:?}: expected NAME=PATH"))?;
            if runtimes.insert(name.into(), path.into()).is_some() && name != "berth-runtime" {
                bail!("runtime {name:?} is defined twice");
            }
        }
        let default_runtime = one_of(
            "default-runtime",
            flags.default_runtime,
            file.default_runtime,
        )?
        .unwrap_or_else(|| "berth-runtime".into());
        if !runtimes.contains_key(&default_runtime) {
            bail!("default runtime {default_runtime:?} is not among the configured runtimes");
        }
        let seccomp_profile = match one_of(
            "seccomp-profile",
            flags.seccomp_profile,
            file.seccomp_profile,
        )? {
            Some(p) if p == "unconfined" => SeccompDefault::Unconfined,
            Some(p) if p == "builtin" => SeccompDefault::Builtin,
            Some(p) => SeccompDefault::File(PathBuf::from(p)),
            None => first_profile_file(&SECCOMP_CANDIDATES),
        };
        let log_driver = one_of("log-driver", flags.log_driver, file.log_driver)?
            .unwrap_or_else(|| "json-file".into());
        if log_driver != "json-file" {
            bail!("log driver {log_driver:?} is not supported by berth yet (json-file is)");
        }
        let mut log_flags = BTreeMap::new();
        for opt in &flags.log_opts {
            let (k, v) = opt
                .split_once('=')
                .with_context(|| format!("--log-opt {opt:?}: expected KEY=VALUE"))?;
            log_flags.insert(k.to_string(), v.to_string());
        }
        let log_opts = one_of("log-opts", nonempty_map(log_flags), file.log_opts)?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        let init_path = one_of("init-path", flags.init_path, file.init_path)?;
        let cgroup_parent =
            one_of("cgroup-parent", flags.cgroup_parent, file.cgroup_parent)?.unwrap_or_default();
        let cgroup_parent = berth_engine::containers::host::cgroup_parent(&cgroup_parent)
            .context("cgroup-parent")?;
        let network = network(net_flags, net_file, &exec_root)?;
        let cri_socket = match one_of("cri-socket", flags.cri_socket, file.cri_socket)? {
            None => Some(exec_root.join("cri.sock")),
            Some(s) if s.is_empty() => None,
            Some(s) => Some(socket_path(&s).unwrap_or_else(|_| PathBuf::from(s))),
        };
        let cni_conf_dir = one_of("cni-conf-dir", flags.cni_conf_dir, file.cni_conf_dir)?
            .unwrap_or_else(|| "/etc/cni/net.d".into());
        let cni_bin_dirs = one_of("cni-bin-dir", flags.cni_bin_dir, file.cni_bin_dir)?
            .unwrap_or_else(|| "/usr/lib/cni:/opt/cni/bin".into())
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        let cni_plugin_timeout = match one_of(
            "cni-plugin-timeout",
            flags.cni_plugin_timeout,
            file.cni_plugin_timeout,
        )? {
            Some(0) => bail!("cni-plugin-timeout: expected a number of seconds above 0"),
            Some(secs) => std::time::Duration::from_secs(secs),
            None => berth_network::cni::DEFAULT_TIMEOUT,
        };
        let stream = one_of(
            "cri-stream-address",
            flags.cri_stream_address,
            file.cri_stream_address,
        )?
        .unwrap_or_else(|| "127.0.0.1:0".into());
        let cri_stream_address = stream
            .parse()
            .with_context(|| format!("cri-stream-address {stream:?}: expected IP:PORT"))?;
        Ok(Config {
            cri_stream_address,
            cri_socket,
            cni_conf_dir,
            cni_bin_dirs,
            cni_plugin_timeout,
            network,
            init_path,
            cgroup_parent,
            log_opts,
            data_root,
            seccomp_profile,
            exec_root,
            sockets,
            pidfile,
            log_level,
            insecure_registries,
            registry_config,
            default_runtime,
            runtimes,
            storage_driver,
        })
    }
}

/// The network settings, flag or file (each from one of them only).
struct NetSettings {
    bridge: Option<String>,
    bip: Option<String>,
    fixed_cidr: Option<String>,
    ipv6: Option<bool>,
    fixed_cidr_v6: Option<String>,
    mtu: Option<u32>,
    pools: Option<Vec<(String, u8)>>,
    ip_forward: Option<bool>,
    iptables: Option<bool>,
    ip_masq: Option<bool>,
}

fn flags_net(flags: &Flags) -> Result<NetSettings> {
    let mut pools = Vec::new();
    for spec in &flags.default_address_pools {
        let mut base = None;
        let mut size = None;
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("base", b)) => base = Some(b.to_string()),
                Some(("size", s)) => size = s.parse::<u8>().ok(),
                _ => bail!("--default-address-pool {spec:?}: expected base=CIDR,size=PREFIX"),
            }
        }
        match (base, size) {
            (Some(b), Some(s)) => pools.push((b, s)),
            _ => bail!("--default-address-pool {spec:?}: expected base=CIDR,size=PREFIX"),
        }
    }
    Ok(NetSettings {
        bridge: flags.bridge.clone(),
        bip: flags.bip.clone(),
        fixed_cidr: flags.fixed_cidr.clone(),
        ipv6: flags.ipv6,
        fixed_cidr_v6: flags.fixed_cidr_v6.clone(),
        mtu: flags.mtu,
        pools: nonempty(pools),
        ip_forward: flags.ip_forward,
        iptables: flags.iptables,
        ip_masq: flags.ip_masq,
    })
}

fn file_net(file: &File) -> NetSettings {
    NetSettings {
        bridge: file.bridge.clone(),
        bip: file.bip.clone(),
        fixed_cidr: file.fixed_cidr.clone(),
        ipv6: file.ipv6,
        fixed_cidr_v6: file.fixed_cidr_v6.clone(),
        mtu: file.mtu,
        pools: file
            .default_address_pools
            .as_ref()
            .map(|p| p.iter().map(|p| (p.base.clone(), p.size)).collect()),
        ip_forward: file.ip_forward,
        iptables: file.iptables,
        ip_masq: file.ip_masq,
    }
}

fn cidr(name: &str, s: &str) -> Result<berth_network::Ipv4Net> {
    s.parse()
        .with_context(|| format!("{name} {s:?}: expected an IPv4 ADDRESS/PREFIX"))
}

/// The default network as dockerd's flags and daemon.json describe it.
fn network(
    flags: NetSettings,
    file: NetSettings,
    exec_root: &std::path::Path,
) -> Result<NetConfig> {
    let bridge = one_of("bridge", flags.bridge.clone(), file.bridge)?
        .unwrap_or_else(|| DEFAULT_BRIDGE.to_string());
    let bip = one_of("bip", flags.bip.clone(), file.bip)?
        .map(|b| cidr("bip", &b))
        .transpose()?;
    let fixed_cidr = one_of("fixed-cidr", flags.fixed_cidr.clone(), file.fixed_cidr)?
        .map(|b| cidr("fixed-cidr", &b).map(|n| n.trunc()))
        .transpose()?;
    let ipv6 = one_of("ipv6", flags.ipv6, file.ipv6)?.unwrap_or(false);
    let fixed_cidr_v6 = one_of("fixed-cidr-v6", flags.fixed_cidr_v6, file.fixed_cidr_v6)?
        .map(|s| {
            s.parse::<berth_network::Ipv6Net>()
                .map(|n| n.trunc())
                .with_context(|| format!("fixed-cidr-v6 {s:?}: expected an IPv6 ADDRESS/PREFIX"))
        })
        .transpose()?;
    // `ipv6` alone: as dockerd 28, a subnet of the IPv6 pools (chosen when the networks open).
    let ipv6 = match (ipv6, fixed_cidr_v6) {
        (true, Some(subnet)) => Some(Subnet6::Fixed(subnet)),
        (true, None) => Some(Subnet6::FromPools),
        (false, Some(_)) => bail!("fixed-cidr-v6 needs ipv6 (true)"),
        (false, None) => None,
    };
    let mtu = one_of("mtu", flags.mtu, file.mtu)?.unwrap_or(1500);
    if !(68..=65535).contains(&mtu) {
        bail!("mtu {mtu}: expected 68 to 65535");
    }
    let (pools, pools6) = match one_of("default-address-pools", flags.pools.clone(), file.pools)? {
        Some(list) => address_pools(list)?,
        None => (berth_network::bridge::default_pools(), Vec::new()),
    };
    if bridge.len() > 15 || bridge.is_empty() || bridge.contains(['/', ' ']) {
        bail!("bridge {bridge:?}: not an interface name (1 to 15 characters)");
    }
    let table = if bridge == DEFAULT_BRIDGE {
        "berth".to_string()
    } else {
        format!("berth-{bridge}")
    };
    Ok(NetConfig {
        bridge: (bridge != "none").then_some(berth_network::bridge::BridgeConfig {
            name: bridge,
            bip,
            fixed_cidr,
            mtu,
            pools,
        }),
        iptables: one_of("iptables", flags.iptables, file.iptables)?.unwrap_or(true),
        ip_masq: one_of("ip-masq", flags.ip_masq, file.ip_masq)?.unwrap_or(true),
        ip_forward: one_of("ip-forward", flags.ip_forward, file.ip_forward)?.unwrap_or(true),
        table,
        netns_dir: exec_root.join("netns"),
        id: "bridge".into(),
        internal: false,
        ipv6,
        pools6,
    })
}

/// Address pools (base, size) of one family.
type Pools<N> = Vec<(N, u8)>;

/// `default-address-pools` split into its IPv4 and IPv6 entries (dockerd takes both).
fn address_pools(
    list: Vec<(String, u8)>,
) -> Result<(Pools<berth_network::Ipv4Net>, Pools<berth_network::Ipv6Net>)> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (base, size) in list {
        if let Ok(base) = base.parse::<berth_network::Ipv6Net>() {
            let base = base.trunc();
            if size < base.prefix_len() || size > 124 {
                bail!("default-address-pools: size {size} does not fit base {base}");
            }
            v6.push((base, size));
            continue;
        }
        let base = cidr("default-address-pools base", &base)?.trunc();
        if size < base.prefix_len() || size > 30 {
            bail!("default-address-pools: size {size} does not fit base {base}");
        }
        v4.push((base, size));
    }
    Ok((v4, v6))
}

/// berth's default bridge (dockerd's is docker0).
const DEFAULT_BRIDGE: &str = "berth0";

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> NetSettings {
        NetSettings {
            bridge: None,
            bip: None,
            fixed_cidr: None,
            ipv6: None,
            fixed_cidr_v6: None,
            mtu: None,
            pools: None,
            ip_forward: None,
            iptables: None,
            ip_masq: None,
        }
    }

    #[test]
    fn the_registry_config_directory() {
        // "" turns mirrors off; a configured directory must exist.
        assert_eq!(registry_config(Some(PathBuf::new())).expect("none"), None);
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(
            registry_config(Some(dir.path().into())).expect("dir"),
            Some(dir.path().to_path_buf())
        );
        let missing = dir.path().join("certs.d");
        let err = registry_config(Some(missing.clone())).expect_err("missing");
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn ipv6_on_the_default_bridge_takes_its_subnet_or_one_of_the_pools() {
        let run = std::path::Path::new("/run/berth");
        let on = NetSettings {
            ipv6: Some(true),
            ..settings()
        };
        let file = NetSettings {
            fixed_cidr_v6: Some("fd42:b0e7:20::/64".into()),
            ..settings()
        };
        let c = network(on, file, run).expect("ipv6");
        assert_eq!(
            c.ipv6,
            Some(Subnet6::Fixed("fd42:b0e7:20::/64".parse().expect("net")))
        );
        let alone = NetSettings {
            ipv6: Some(true),
            ..settings()
        };
        let c = network(alone, settings(), run).expect("ipv6 alone");
        assert_eq!(c.ipv6, Some(Subnet6::FromPools));
        assert!(c.pools6.is_empty());
        // default-address-pools may hold IPv6 bases: those are the IPv6 pools.
        let pools = NetSettings {
            ipv6: Some(true),
            pools: Some(vec![
                ("10.66.0.0/16".into(), 24),
                ("fd42:b0e7:50::/48".into(), 64),
            ]),
            ..settings()
        };
        let c = network(pools, settings(), run).expect("pools");
        assert_eq!(
            c.pools6,
            vec![("fd42:b0e7:50::/48".parse().expect("net"), 64)]
        );
        let bridge = c.bridge.expect("a bridge");
        assert_eq!(
            bridge.pools,
            vec![("10.66.0.0/16".parse().expect("net"), 24)]
        );
        let small = NetSettings {
            pools: Some(vec![("fd42:b0e7:50::/64".into(), 48)]),
            ..settings()
        };
        let e = network(small, settings(), run).expect_err("size");
        assert!(format!("{e:#}").contains("does not fit"), "{e:#}");
        for (ipv6, cidr, needle) in [
            (None, Some("fd42:b0e7:20::/64"), "needs ipv6"),
            (Some(true), Some("10.0.0.0/8"), "expected an IPv6"),
        ] {
            let bad = NetSettings {
                ipv6,
                fixed_cidr_v6: cidr.map(String::from),
                ..settings()
            };
            let e = network(bad, settings(), run).expect_err("refused");
            assert!(format!("{e:#}").contains(needle), "{e:#}");
        }
        assert_eq!(
            network(settings(), settings(), run).expect("off").ipv6,
            None
        );
    }

    #[test]
    fn the_network_settings_as_dockerd_reads_them() {
        let run = std::path::Path::new("/run/berth");
        let default = network(settings(), settings(), run).expect("defaults");
        let bridge = default.bridge.expect("a bridge");
        assert_eq!(bridge.name, "berth0");
        assert_eq!(bridge.mtu, 1500);
        assert_eq!(default.table, "berth");
        assert!(default.iptables && default.ip_masq && default.ip_forward);
        let none = NetSettings {
            bridge: Some("none".into()),
            ..settings()
        };
        assert!(network(none, settings(), run)
            .expect("none")
            .bridge
            .is_none());
        let own = NetSettings {
            bridge: Some("bt0".into()),
            bip: Some("10.213.9.1/24".into()),
            fixed_cidr: Some("10.213.9.128/25".into()),
            ..settings()
        };
        let c = network(own, settings(), run).expect("own");
        assert_eq!(c.table, "berth-bt0");
        let b = c.bridge.expect("bridge");
        assert_eq!(b.bip, Some("10.213.9.1/24".parse().expect("net")));
        assert_eq!(b.fixed_cidr, Some("10.213.9.128/25".parse().expect("net")));
        for bad in [
            NetSettings {
                bip: Some("10.213.9.1".into()),
                ..settings()
            },
            NetSettings {
                bridge: Some("a-name-longer-than-15".into()),
                ..settings()
            },
            NetSettings {
                mtu: Some(10),
                ..settings()
            },
        ] {
            assert!(network(bad, settings(), run).is_err());
        }
        // One setting given both ways is an error, as dockerd's.
        let flag = NetSettings {
            bridge: Some("a".into()),
            ..settings()
        };
        let file = NetSettings {
            bridge: Some("b".into()),
            ..settings()
        };
        assert!(network(flag, file, run).is_err());
    }

    #[test]
    fn without_a_profile_file_the_builtin_profile_is_the_default() {
        let dir = tempfile::tempdir().expect("tmp");
        let present = dir.path().join("seccomp.json");
        std::fs::write(&present, "{}").expect("write");
        let missing = dir.path().join("missing.json");
        let (present, missing) = (
            present.to_str().expect("utf8"),
            missing.to_str().expect("utf8"),
        );
        assert_eq!(first_profile_file(&[missing]), SeccompDefault::Builtin);
        assert_eq!(
            first_profile_file(&[missing, present]),
            SeccompDefault::File(PathBuf::from(present))
        );
    }
}

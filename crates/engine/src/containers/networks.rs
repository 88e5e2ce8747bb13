//! The networks of a daemon: the default bridge and user-defined bridge networks (`docker
//! network create`), each with a bridge, subnet and nftables table of its own, kept as JSON
//! records under `<data-root>/networks/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_network::{bridge, Ipv4Net};
use serde::{Deserialize, Serialize};

use super::net::{Net, NetConfig};
use super::{Containers, Status};
use crate::error::{Error, Result};

/// A user-defined network as it is kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The gateway with the subnet's prefix.
    pub address: Ipv4Net,
    pub ip_range: Option<Ipv4Net>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// The bridge's name (`com.docker.network.bridge.name`, else `br-` and the id's start).
    pub bridge: String,
}

/// `docker network create`'s request, as the engine takes it.
#[derive(Debug, Default, Clone)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: String,
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// The daemon's networks.
pub struct Networks {
    /// The default bridge (None: `bridge: none`).
    pub default: Option<Arc<Net>>,
    base: NetConfig,
    dir: PathBuf,
    user: Mutex<BTreeMap<String, (NetworkRecord, Arc<Net>)>>,
    /// The embedded resolver all user-defined networks share.
    dns: super::net::SharedResolver,
}

/// Names dockerd keeps for its predefined networks.
const PREDEFINED: [&str; 4] = ["bridge", "host", "none", "default"];

impl Networks {
    /// The default network from `base`, and the user-defined networks kept in `dir`.
    pub fn open(base: NetConfig, dir: PathBuf) -> Networks {
        let default = base
            .bridge
            .is_some()
            .then(|| Arc::new(Net::new(base.clone())));
        let dns = super::net::SharedResolver::default();
        let mut user = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                match std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<NetworkRecord>(&b).ok())
                {
                    Some(rec) => {
                        let net =
                            Arc::new(Net::new(user_config(&base, &rec)).with_dns(dns.clone()));
                        user.insert(rec.id.clone(), (rec, net));
                    }
                    None => tracing::warn!("skipping the network record {}", path.display()),
                }
            }
        }
        Networks {
            default,
            base,
            dir,
            user: Mutex::new(user),
            dns,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (NetworkRecord, Arc<Net>)>> {
        self.user.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The network of endpoints with network id `id` (`bridge`: the default one).
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Net>> {
        if id == "bridge" {
            return self.default.clone();
        }
        self.lock().get(id).map(|(_, n)| n.clone())
    }

    /// A user-defined network by name, id or id prefix.
    pub fn find(&self, wanted: &str) -> Option<NetworkRecord> {
        let user = self.lock();
        user.values()
            .find(|(r, _)| r.name == wanted || r.id == wanted)
            .or_else(|| {
                let mut matching = user.values().filter(|(r, _)| r.id.starts_with(wanted));
                match (matching.next(), matching.next()) {
                    (Some(one), None) if !wanted.is_empty() => Some(one),
                    _ => None,
                }
            })
            .map(|(r, _)| r.clone())
    }

    pub fn list(&self) -> Vec<NetworkRecord> {
        self.lock().values().map(|(r, _)| r.clone()).collect()
    }

    /// Every subnet berth's networks use (the default bridge's once made).
    fn subnets(&self) -> Vec<(String, Ipv4Net)> {
        let mut out: Vec<(String, Ipv4Net)> = self
            .lock()
            .values()
            .map(|(r, _)| (r.id.clone(), r.address.trunc()))
            .collect();
        if let Some(s) = self.default.as_ref().and_then(|d| d.subnet()) {
            out.push(("bridge".into(), s));
        }
        out
    }

    /// Tell each network the others' subnets (its containers do not reach them).
    fn isolate(&self, containers: &Containers) {
        let all = self.subnets();
        let nets: Vec<(String, Arc<Net>)> = self
            .lock()
            .iter()
            .map(|(id, (_, n))| (id.clone(), n.clone()))
            .chain(
                self.default
                    .iter()
                    .map(|n| ("bridge".to_string(), n.clone())),
            )
            .collect();
        for (id, net) in nets {
            let others = all
                .iter()
                .filter(|(other, _)| *other != id)
                .map(|(_, s)| *s)
                .collect();
            net.isolate_from(containers, others);
        }
    }

    /// `docker network create`: checked, then the bridge and table made, then recorded.
    pub fn create(&self, containers: &Containers, req: &CreateNetwork) -> Result<NetworkRecord> {
        if !matches!(req.driver.as_str(), "" | "bridge") {
            return Err(Error::InvalidArgument(format!(
                "network driver {:?} is not supported by berth (bridge is)",
                req.driver
            )));
        }
        if req.name.is_empty() || PREDEFINED.contains(&req.name.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "{} is a pre-defined network and cannot be created",
                req.name
            )));
        }
        if self.find(&req.name).is_some_and(|r| r.name == req.name) {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let address = self.address(req)?;
        let ip_range = match &req.ip_range {
            Some(r) => {
                let r: Ipv4Net = r
                    .parse()
                    .map_err(|_| Error::InvalidArgument(format!("invalid CIDR address: {r}")))?;
                if !address.trunc().contains(&r) {
                    return Err(Error::InvalidArgument(format!(
                        "IP range {r} is not within the subnet {}",
                        address.trunc()
                    )));
                }
                Some(r.trunc())
            }
            None => None,
        };
        let id = super::random_id()?;
        let bridge = match req.options.get("com.docker.network.bridge.name") {
            Some(b) if b.is_empty() || b.len() > 15 || b.contains(['/', ' ']) => {
                return Err(Error::InvalidArgument(format!(
                    "bridge name {b:?}: not an interface name (1 to 15 characters)"
                )))
            }
            Some(b) => b.clone(),
            None => format!("br-{}", &id[..12]),
        };
        if bridge::ensure_exists(&bridge) {
            return Err(Error::Conflict(format!(
                "an interface named {bridge} exists already"
            )));
        }
        let rec = NetworkRecord {
            id: id.clone(),
            name: req.name.clone(),
            created: super::lifecycle::now(),
            address,
            ip_range,
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels.clone(),
            options: req.options.clone(),
            bridge,
        };
        let net = Arc::new(Net::new(user_config(&self.base, &rec)).with_dns(self.dns.clone()));
        if let Err(e) = net.materialize(containers) {
            net.dismantle();
            return Err(e);
        }
        if let Err(e) = self.save(&rec) {
            net.dismantle();
            return Err(e);
        }
        self.lock().insert(id, (rec.clone(), net));
        self.isolate(containers);
        network_event(containers, "create", &rec, None);
        Ok(rec)
    }

    /// The gateway/prefix of a new network: as asked (checked against the others), or the
    /// first free subnet of the pools.
    fn address(&self, req: &CreateNetwork) -> Result<Ipv4Net> {
        let taken: Vec<Ipv4Net> = self.subnets().into_iter().map(|(_, s)| s).collect();
        let overlaps = |s: &Ipv4Net| taken.iter().any(|t| t.contains(s) || s.contains(t));
        let subnet = match &req.subnet {
            Some(s) => {
                let s: Ipv4Net = s
                    .parse()
                    .map_err(|_| Error::InvalidArgument(format!("invalid CIDR address: {s}")))?;
                let s = s.trunc();
                if overlaps(&s) {
                    return Err(Error::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({s})"
                    )));
                }
                s
            }
            None => {
                if req.gateway.is_some() || req.ip_range.is_some() {
                    return Err(Error::InvalidArgument(
                        "a gateway or an IP range needs --subnet".into(),
                    ));
                }
                let pools = self
                    .base
                    .bridge
                    .as_ref()
                    .map(|b| b.pools.clone())
                    .unwrap_or_else(bridge::default_pools);
                pools
                    .iter()
                    .flat_map(|(base, size)| base.subnets(*size).into_iter().flatten())
                    .find(|s| !overlaps(s) && !bridge::routed(s))
                    .ok_or_else(|| {
                        Error::Conflict(
                            "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
                        )
                    })?
            }
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let g: std::net::Ipv4Addr = g
                    .parse()
                    .map_err(|_| Error::InvalidArgument(format!("invalid gateway address: {g}")))?;
                if !subnet.contains(&g) || g == subnet.network() || g == subnet.broadcast() {
                    return Err(Error::InvalidArgument(format!(
                        "gateway {g} is not within the subnet {subnet}"
                    )));
                }
                g
            }
            None => subnet.hosts().next().unwrap_or(subnet.network()),
        };
        Ipv4Net::new(gateway, subnet.prefix_len())
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    fn save(&self, rec: &NetworkRecord) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::Io(format!("create {}: {e}", self.dir.display())))?;
        let bytes = serde_json::to_vec(rec).map_err(|e| Error::Io(e.to_string()))?;
        let tmp = self.dir.join(format!("{}.json.tmp", rec.id));
        super::write_private(&tmp, &bytes)?;
        std::fs::rename(&tmp, self.dir.join(format!("{}.json", rec.id)))
            .map_err(|e| Error::Io(format!("save the network {}: {e}", rec.name)))
    }

    /// `docker network rm`: refused while a running container is on it.
    pub fn remove(&self, containers: &Containers, wanted: &str) -> Result<NetworkRecord> {
        if PREDEFINED.contains(&wanted) {
            return Err(Error::InvalidArgument(format!(
                "{wanted} is a pre-defined network and cannot be removed"
            )));
        }
        let rec = self
            .find(wanted)
            .ok_or_else(|| Error::NotFound(format!("network {wanted} not found")))?;
        let active = containers.list().into_iter().any(|r| {
            r.state.status == Status::Running
                && r.endpoint.as_ref().is_some_and(|e| e.network == rec.id)
        });
        if active {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                rec.name, rec.id
            )));
        }
        let removed = self.lock().remove(&rec.id);
        if let Some((_, net)) = removed {
            net.dismantle();
        }
        let _ = std::fs::remove_file(self.dir.join(format!("{}.json", rec.id)));
        self.isolate(containers);
        network_event(containers, "destroy", &rec, None);
        Ok(rec)
    }

    /// Take container `id` off whichever network its endpoint is on.
    pub(crate) fn disconnect(&self, containers: &Containers, id: &str) {
        let network = containers
            .resolve(id)
            .ok()
            .and_then(|r| r.endpoint)
            .map(|e| e.network);
        if let Some(net) = network.and_then(|n| self.get(&n)) {
            net.disconnect(containers, id);
        }
    }

    /// At berthd's start: endpoints of containers that no longer run go, then each network
    /// sets its bridge, ports and table right.
    pub(crate) fn reconcile(&self, containers: &Containers) {
        for r in containers.list() {
            if r.endpoint.is_some() && r.state.status != Status::Running {
                self.disconnect(containers, &r.id);
            }
        }
        let live: Vec<super::net::Endpoint> = containers
            .list()
            .into_iter()
            .filter(|r| r.state.status == Status::Running)
            .filter_map(|r| r.endpoint)
            .collect();
        super::net::sweep_namespaces(&self.base.netns_dir, &live);
        let user: Vec<Arc<Net>> = self.lock().values().map(|(_, n)| n.clone()).collect();
        for net in user.iter().chain(self.default.iter()) {
            net.reconcile(containers);
        }
        for net in &user {
            // A user-defined network's bridge exists as long as the network does.
            if let Err(e) = net.materialize(containers) {
                tracing::warn!("{e}");
            }
        }
        self.isolate(containers);
    }
}

/// The settings of a user-defined network's own bridge and table.
fn user_config(base: &NetConfig, rec: &NetworkRecord) -> NetConfig {
    let mtu = rec
        .options
        .get("com.docker.network.driver.mtu")
        .and_then(|m| m.parse().ok())
        .or(base.bridge.as_ref().map(|b| b.mtu))
        .unwrap_or(1500);
    NetConfig {
        bridge: Some(bridge::BridgeConfig {
            name: rec.bridge.clone(),
            bip: Some(rec.address),
            fixed_cidr: rec.ip_range,
            mtu,
            pools: Vec::new(),
        }),
        iptables: base.iptables,
        ip_masq: base.ip_masq && !rec.internal,
        ip_forward: base.ip_forward,
        table: format!("berth-{}", rec.bridge),
        netns_dir: base.netns_dir.clone(),
        id: rec.id.clone(),
        internal: rec.internal,
    }
}

/// A network event as dockerd sends it (type network, the network's id as the actor, its
/// name and driver; the container's id for connect and disconnect).
fn network_event(
    containers: &Containers,
    action: &str,
    rec: &NetworkRecord,
    container: Option<&str>,
) {
    let mut e = crate::events::Event::new("network", action, &rec.id)
        .with("name", rec.name.clone())
        .with("type", "bridge");
    if let Some(c) = container {
        e = e.with("container", c);
    }
    containers.events.publish(e);
}

impl crate::Engine {
    /// `docker network connect` of a container that does not run: it is put on `network`
    /// (berth keeps a container on one network, so only one without a network of its own,
    /// or already on this one, can be). A running container is refused by name.
    pub fn network_connect(
        &self,
        network: &str,
        container: &str,
        aliases: Vec<String>,
        ip: Option<std::net::Ipv4Addr>,
    ) -> Result<()> {
        let networks = self
            .networks()
            .ok_or_else(|| Error::NotFound(format!("network {network} not found")))?;
        let (name, id) = match network {
            "bridge" if networks.default.is_some() => ("bridge".to_string(), String::new()),
            other => {
                let rec = networks
                    .find(other)
                    .ok_or_else(|| Error::NotFound(format!("network {other} not found")))?;
                (rec.name, rec.id)
            }
        };
        if id.is_empty() && (!aliases.is_empty() || ip.is_some()) {
            return Err(Error::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        let r = self.containers.resolve(container)?;
        if r.state.status == Status::Running {
            return Err(Error::Conflict(format!(
                "connecting the running container {} to a network is not supported by berth yet",
                r.name
            )));
        }
        let mode = r.network_mode().to_string();
        if mode != "none" && mode != name {
            return Err(Error::Conflict(format!(
                "container {} is on network {mode}: berth keeps a container on one network (disconnect it first)",
                r.name
            )));
        }
        let rec = (!id.is_empty()).then(|| networks.find(&id)).flatten();
        self.containers.update(&r.id, move |r| {
            r.network_mode = name;
            r.net.network_id = id;
            r.net.aliases = aliases;
            r.net.ip = ip;
        })?;
        if let Some(rec) = rec {
            network_event(&self.containers, "connect", &rec, Some(&r.id));
        }
        Ok(())
    }

    /// `docker network disconnect` of a container that does not run: it is left with no
    /// network (`none`) until it is connected again.
    pub fn network_disconnect(&self, network: &str, container: &str) -> Result<()> {
        let r = self.containers.resolve(container)?;
        let on_it = r.on_network()
            && (r.network_mode() == network
                || (!r.net.network_id.is_empty() && r.net.network_id.starts_with(network))
                || (network == "bridge" && r.net.network_id.is_empty()));
        if !on_it {
            return Err(Error::Conflict(format!(
                "container {} is not connected to network {network}",
                r.name
            )));
        }
        if r.state.status == Status::Running {
            return Err(Error::Conflict(format!(
                "disconnecting the running container {} from a network is not supported by berth yet",
                r.name
            )));
        }
        let rec = self.networks().and_then(|n| {
            (!r.net.network_id.is_empty())
                .then(|| n.find(&r.net.network_id))
                .flatten()
        });
        self.containers.update(&r.id, |r| {
            r.network_mode = "none".into();
            r.net.network_id.clear();
            r.net.aliases.clear();
            r.net.ip = None;
        })?;
        if let Some(rec) = rec {
            network_event(&self.containers, "disconnect", &rec, Some(&r.id));
        }
        Ok(())
    }
}

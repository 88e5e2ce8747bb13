//! The networks of a daemon: the default bridge and user-defined bridge networks (`docker
//! network create`), each with a bridge, subnet and nftables table of its own, kept as JSON
//! records under `<data-root>/networks/`.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_network::{bridge, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::net::{Endpoint, Join, Net, NetConfig, Placement, Subnet6};
use super::{ContainerRecord, Containers, Status};
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
    /// `--ipv6`: the IPv6 gateway with the subnet's prefix, and the IPv6 range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Net>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range6: Option<Ipv6Net>,
}

impl NetworkRecord {
    /// Where its IPv6 addresses come from (None: no IPv6).
    pub fn range6(&self) -> Option<Ipv6Net> {
        self.address6.map(|a| self.ip_range6.unwrap_or(a.trunc()))
    }
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
    /// `--ipv6`, and the IPv6 entry of the IPAM config (`--subnet`, `--gateway`,
    /// `--ip-range` given with an IPv6 subnet).
    pub enable_ipv6: bool,
    pub subnet6: Option<String>,
    pub ip_range6: Option<String>,
    pub gateway6: Option<String>,
}

/// `docker network connect`'s endpoint settings, as the engine takes them.
#[derive(Debug, Default, Clone)]
pub struct ConnectOptions {
    pub aliases: Vec<String>,
    pub ip: Option<std::net::Ipv4Addr>,
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--gw-priority`: the network with the highest gives the default route.
    pub gw_priority: i64,
    /// The endpoint's MAC address as asked (`aa:bb:...`; empty: Docker's, from its IPv4).
    pub mac_address: String,
    /// The endpoint's driver options (DriverOpts: interface sysctls).
    pub driver_opts: Option<BTreeMap<String, String>>,
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
    /// Held while a running container gains or loses a network (two at once would pick
    /// the same interface name, or move its default route past each other).
    hotplug: Mutex<()>,
}

/// Names dockerd keeps for its predefined networks.
const PREDEFINED: [&str; 4] = ["bridge", "host", "none", "default"];

impl Networks {
    /// The default network from `base`, and the user-defined networks kept in `dir`.
    pub fn open(base: NetConfig, dir: PathBuf) -> Result<Networks> {
        let dns = super::net::SharedResolver::default();
        let user = load_user(&base, &dir, &dns);
        let default = match &base.bridge {
            Some(_) => Some(Arc::new(default_net(&base, &dir, &user)?)),
            None => None,
        };
        Ok(Networks {
            default,
            base,
            dir,
            user: Mutex::new(user),
            dns,
            hotplug: Mutex::new(()),
        })
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
        let all6: Vec<(String, Ipv6Net)> = nets
            .iter()
            .filter_map(|(id, n)| n.subnet6().map(|s| (id.clone(), s)))
            .collect();
        for (id, net) in nets {
            let others = all
                .iter()
                .filter(|(other, _)| *other != id)
                .map(|(_, s)| *s)
                .collect();
            if net.subnet6().is_some() {
                let others6 = all6
                    .iter()
                    .filter(|(other, _)| *other != id)
                    .map(|(_, s)| *s)
                    .collect();
                net.isolate_from6(containers, others6);
            }
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
        let (address6, ip_range6) = self.address6(req)?;
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
            address6,
            ip_range6,
        };
        let net = Arc::new(user_net(&self.base, &rec).with_dns(self.dns.clone()));
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

    /// The IPv6 gateway/prefix and range of a new network: None without `--ipv6`; the
    /// IPv6 subnet asked (checked against the other networks'), else, as dockerd 27+, the
    /// first free subnet of the IPv6 pools (by default /64s of a ULA /48 derived from the
    /// daemon's id).
    fn address6(&self, req: &CreateNetwork) -> Result<(Option<Ipv6Net>, Option<Ipv6Net>)> {
        if !req.enable_ipv6 {
            if let Some(s) = &req.subnet6 {
                // dockerd skips such an entry (validateIpamConfig) and makes an IPv4 network
                // whose inspect still lists it; refused here rather than kept unused.
                return Err(Error::InvalidArgument(format!(
                    "invalid network config:\nIPv6 subnet {s} is set but IPv6 is not enabled"
                )));
            }
            return Ok((None, None));
        }
        let taken: Vec<Ipv6Net> = self
            .lock()
            .values()
            .filter_map(|(r, _)| r.address6.map(|a| a.trunc()))
            .chain(self.default.as_ref().and_then(|d| d.subnet6()))
            .collect();
        let overlaps = |s: &Ipv6Net| taken.iter().any(|t| t.contains(s) || s.contains(t));
        let parse = |what: &str, s: &str| -> Result<Ipv6Net> {
            s.parse::<Ipv6Net>()
                .map(|n| n.trunc())
                .map_err(|_| Error::InvalidArgument(format!("invalid {what}: {s}")))
        };
        let subnet = match &req.subnet6 {
            Some(s) => {
                let s = parse("CIDR address", s)?;
                if overlaps(&s) {
                    return Err(Error::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({s})"
                    )));
                }
                s
            }
            None => {
                if req.gateway6.is_some() || req.ip_range6.is_some() {
                    return Err(Error::InvalidArgument(
                        "an IPv6 gateway or IP range needs an IPv6 --subnet".into(),
                    ));
                }
                first_free6(&pools6(&self.base, &self.dir)?, &taken)?
            }
        };
        let gateway = match &req.gateway6 {
            Some(g) => {
                let g: std::net::Ipv6Addr = g
                    .parse()
                    .map_err(|_| Error::InvalidArgument(format!("invalid gateway address: {g}")))?;
                if !subnet.contains(&g) || g == subnet.network() {
                    return Err(Error::InvalidArgument(format!(
                        "gateway {g} is not within the subnet {subnet}"
                    )));
                }
                g
            }
            // The subnet's first address is its subnet-router anycast: the one after it.
            None => std::net::Ipv6Addr::from(u128::from(subnet.network()).saturating_add(1)),
        };
        let range = match &req.ip_range6 {
            Some(r) => {
                let r = parse("CIDR address", r)?;
                if !subnet.contains(&r) {
                    return Err(Error::InvalidArgument(format!(
                        "IP range {r} is not within the subnet {subnet}"
                    )));
                }
                Some(r)
            }
            None => None,
        };
        let address = Ipv6Net::new(gateway, subnet.prefix_len())
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok((Some(address), range))
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
        let active: Vec<String> = containers
            .list()
            .into_iter()
            .filter(|r| r.state.status == Status::Running && r.endpoint_on(&rec.id).is_some())
            .map(|r| format!("name:{:?} id:{:?}", r.name, &r.id[..12.min(r.id.len())]))
            .collect();
        if !active.is_empty() {
            // moby 28's words.
            return Err(Error::Conflict(format!(
                "error while removing network: network {} has active endpoints ({})",
                rec.name,
                active.join(", ")
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

    /// The name and internal flag of the network of endpoints with key `key`.
    fn describe(&self, key: &str) -> (String, bool) {
        if key == "bridge" {
            return ("bridge".into(), false);
        }
        self.lock()
            .get(key)
            .map(|(r, _)| (r.name.clone(), r.internal))
            .unwrap_or_else(|| (key.to_string(), false))
    }

    /// Which of `joins` gives the container its default route: dockerd's order
    /// (libnetwork's Endpoint.Less: the highest gateway priority, then networks with a way
    /// out before internal ones, then by name).
    fn gateway_of<'a>(&self, joins: impl Iterator<Item = &'a Join>) -> Option<String> {
        joins
            .map(|j| {
                let (name, internal) = self.describe(&j.network);
                ((std::cmp::Reverse(j.gw_priority), internal, name), j)
            })
            .min_by(|(a, _), (b, _)| a.cmp(b))
            .map(|(_, j)| j.network.clone())
    }

    /// Which of `joins` holds the published ports: the one giving the default route
    /// among those with a way out (libnetwork's getGatewayEndpoint; an internal network
    /// gives no gateway, so a container only on internal ones publishes nothing).
    fn ports_of<'a>(&self, joins: impl Iterator<Item = &'a Join>) -> Option<String> {
        self.gateway_of(joins.filter(|j| !self.describe(&j.network).1))
    }

    /// The user-defined networks (with names resolved) among `endpoints`.
    fn dns_networks(&self, endpoints: &[Endpoint]) -> Vec<String> {
        endpoints
            .iter()
            .filter(|e| self.get(&e.network).is_some_and(|n| n.has_dns()))
            .map(|e| e.network.clone())
            .collect()
    }

    /// The container's /etc files and resolver socket for the endpoints its record holds
    /// (`socket`: one just made in its namespace; `netns`: where to make one otherwise).
    fn settle(
        &self,
        containers: &Containers,
        id: &str,
        netns: &std::path::Path,
        socket: Option<berth_network::dns::Sockets>,
    ) -> Result<()> {
        let r = containers.resolve(id)?;
        let dns = self.dns_networks(&r.endpoints);
        super::net::write_files(&r, &containers.dir(&r.id), &r.endpoints, !dns.is_empty())?;
        super::net::serve_dns(&self.dns, &r, dns, socket, netns);
        Ok(())
    }

    /// At the container's start: it is put on each of its networks, its first network's
    /// endpoint making its namespace (and holding its published ports), the default route
    /// through the network dockerd would choose. All undone when one fails.
    pub(crate) fn connect_all(
        &self,
        containers: &Containers,
        record: &ContainerRecord,
    ) -> Result<Vec<Endpoint>> {
        let joins = record.joins();
        let gateway = self.gateway_of(joins.iter());
        let ports = self.ports_of(joins.iter());
        let netns = self.base.netns_dir.join(&record.id);
        let mut socket = None;
        for (i, join) in joins.iter().enumerate() {
            let made = self
                .get(&join.network)
                .ok_or_else(|| Error::NotFound(format!("network {} not found", join.name)))
                .and_then(|net| {
                    let place = Placement {
                        join: (i > 0).then(|| netns.clone()),
                        ifname: format!("eth{i}"),
                        default_route: gateway.as_deref() == Some(join.network.as_str()),
                        ports: ports.as_deref() == Some(join.network.as_str()),
                    };
                    net.connect(containers, record, join, &place)
                });
            match made {
                Ok((_, s)) => socket = socket.or(s),
                Err(e) => {
                    self.leave_all(containers, &record.id, false);
                    return Err(e);
                }
            }
        }
        let settled = self
            .route6(containers, &record.id, &netns)
            .and_then(|()| self.settle(containers, &record.id, &netns, socket));
        if let Err(e) = settled {
            self.leave_all(containers, &record.id, false);
            return Err(e);
        }
        for join in &joins {
            self.endpoint_event(containers, "connect", &join.network, &record.id);
        }
        Ok(containers.resolve(&record.id)?.endpoints)
    }

    /// `docker network connect` of a running container (its record names `join` already):
    /// a new interface in its namespace, the default route moved when the new network
    /// comes first, its /etc/hosts and resolver told.
    fn connect_running(&self, containers: &Containers, id: &str, join: &Join) -> Result<()> {
        let _one = self.hotplug.lock().unwrap_or_else(|p| p.into_inner());
        let r = containers.resolve(id)?;
        let net = self
            .get(&join.network)
            .ok_or_else(|| Error::NotFound(format!("network {} not found", join.name)))?;
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !r.endpoints.iter().any(|e| e.ifname == *n))
            .unwrap_or_default();
        // The record names the new network already.
        let joins = r.joins();
        let gateway = self.gateway_of(
            joins
                .iter()
                .filter(|j| j.network == join.network || r.endpoint_on(&j.network).is_some()),
        );
        let netns = super::net::namespace_of(&r);
        // The published ports follow the default route, as dockerd moves them: off the
        // endpoint that held them (first, so fixed host ports can be held again) when the
        // new network takes the route.
        let ports = self.ports_of(
            joins
                .iter()
                .filter(|j| j.network == join.network || r.endpoint_on(&j.network).is_some()),
        );
        let before = self.ports_of(joins.iter().filter(|j| r.endpoint_on(&j.network).is_some()));
        let moving = ports.as_deref() == Some(join.network.as_str());
        let from = before
            .filter(|_| moving)
            .and_then(|k| self.get(&k).map(|n| (k, n)));
        if let Some((_, old)) = &from {
            old.withdraw_ports(containers, id)?;
        }
        let place = Placement {
            join: Some(netns.clone()),
            ifname,
            default_route: gateway.as_deref() == Some(join.network.as_str()),
            ports: moving,
        };
        let made = net.connect(containers, &r, join, &place).and_then(|_| {
            self.route6(containers, id, &netns)?;
            let settled = self.settle(containers, id, &netns, None);
            if settled.is_err() {
                net.disconnect(containers, id, false);
            }
            settled
        });
        if made.is_err() {
            if let Some((key, old)) = &from {
                let restored = containers
                    .resolve(id)
                    .and_then(|r| old.publish_ports(containers, &r));
                if let Err(e) = restored {
                    tracing::warn!("container {id}: its published ports back on {key}: {e}");
                }
            }
        }
        made
    }

    /// `docker network disconnect` of a running container from network `key`: its
    /// interface there goes, the default route moves to the next network in dockerd's order.
    fn disconnect_running(&self, containers: &Containers, id: &str, key: &str) -> Result<()> {
        let _one = self.hotplug.lock().unwrap_or_else(|p| p.into_inner());
        let r = containers.resolve(id)?;
        let netns = super::net::namespace_of(&r);
        // (Its record has left `key` already: the endpoint tells whether it held ports.)
        let held_ports = r.endpoint_on(key).is_some_and(|e| !e.ports.is_empty());
        match self.get(key) {
            Some(net) => net.disconnect(containers, id, false),
            None => drop_endpoint(containers, id, key),
        }
        // The route through the network left went with its interface; the one dockerd
        // would choose among those left is set (again, when it was not that one).
        let r = containers.resolve(id)?;
        let joins = r.joins();
        let next = self.gateway_of(joins.iter().filter(|j| r.endpoint_on(&j.network).is_some()));
        if let Some(ep) = next.and_then(|k| r.endpoint_on(&k).cloned()) {
            berth_network::endpoint::set_default_route(&netns, ep.gateway, &ep.ifname)
                .map_err(|e| Error::Io(e.to_string()))?;
        }
        // The published ports left with the endpoint that held them: they go to the
        // network that gives the default route now, as dockerd moves them.
        if held_ports {
            let to = self.ports_of(joins.iter().filter(|j| r.endpoint_on(&j.network).is_some()));
            if let Some(net) = to.and_then(|k| self.get(&k)) {
                net.publish_ports(containers, &r)?;
            }
        }
        self.route6(containers, id, &netns)?;
        self.settle(containers, id, &netns, None)
    }

    /// The IPv6 default route of running container `id` through its IPv6 gateway
    /// network: the first of its networks with IPv6 in dockerd's order (libnetwork's
    /// getGatewayEndpoint picks the IPv4 and IPv6 gateways apart), whichever gives the
    /// IPv4 route.
    fn route6(&self, containers: &Containers, id: &str, netns: &std::path::Path) -> Result<()> {
        let r = containers.resolve(id)?;
        let joins = r.joins();
        let gw6 = self.gateway_of(joins.iter().filter(|j| {
            r.endpoint_on(&j.network)
                .is_some_and(|e| e.gateway6.is_some())
        }));
        let Some(ep) = gw6.and_then(|k| r.endpoint_on(&k).cloned()) else {
            return Ok(());
        };
        match ep.gateway6 {
            Some(gateway6) => {
                berth_network::endpoint::set_default_route6(netns, gateway6, &ep.ifname)
                    .map_err(|e| Error::Io(e.to_string()))
            }
            None => Ok(()),
        }
    }

    /// Take container `id` off every network it is on (at its exit, or a start that
    /// failed): its endpoints, namespace file and resolver socket go.
    pub(crate) fn disconnect(&self, containers: &Containers, id: &str) {
        self.leave_all(containers, id, true);
    }

    /// [`Self::disconnect`]; `events`: a disconnect event per network (not for a start
    /// that failed half-way, which sent no connect).
    fn leave_all(&self, containers: &Containers, id: &str, events: bool) {
        let Ok(r) = containers.resolve(id) else {
            return;
        };
        for ep in &r.endpoints {
            match self.get(&ep.network) {
                Some(net) => net.disconnect(containers, id, false),
                None => drop_endpoint(containers, id, &ep.network),
            }
            if events {
                self.endpoint_event(containers, "disconnect", &ep.network, &r.id);
            }
        }
        let netns = r
            .endpoint()
            .map(|e| e.netns.clone())
            .unwrap_or_else(|| self.base.netns_dir.join(&r.id));
        if let Err(e) = berth_network::endpoint::release_namespace(&netns) {
            tracing::warn!("container {id}: {e}");
        }
        super::net::serve_dns(&self.dns, &r, Vec::new(), None, &netns);
    }

    /// At berthd's stop: the default bridge's spare namespaces are destroyed.
    pub fn drain_spares(&self) {
        if let Some(net) = &self.default {
            net.drain_spares();
        }
    }

    /// At berthd's start: endpoints of containers that no longer run go, then each network
    /// sets its bridge, ports and table right, and live containers' names are answered.
    pub(crate) fn reconcile(&self, containers: &Containers) {
        for r in containers.list() {
            if !r.endpoints.is_empty() && r.state.status != Status::Running {
                self.disconnect(containers, &r.id);
            }
        }
        let running: Vec<ContainerRecord> = containers
            .list()
            .into_iter()
            .filter(|r| r.state.status == Status::Running)
            .collect();
        let live: Vec<std::path::PathBuf> = running
            .iter()
            .map(|r| self.base.netns_dir.join(&r.id))
            .collect();
        super::net::sweep_namespaces(&self.base.netns_dir, &live);
        if let Some(net) = &self.default {
            net.sweep_spares();
        }
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
        for r in running {
            let dns = self.dns_networks(&r.endpoints);
            if !dns.is_empty() {
                let netns = super::net::namespace_of(&r);
                super::net::serve_dns(&self.dns, &r, dns, None, &netns);
            }
        }
    }
}

/// The endpoint on `key` of container `id`, whose network is gone: its veth and record
/// entry go.
fn drop_endpoint(containers: &Containers, id: &str, key: &str) {
    let Some(ep) = containers
        .resolve(id)
        .ok()
        .and_then(|r| r.endpoint_on(key).cloned())
    else {
        return;
    };
    if let Err(e) = berth_network::endpoint::delete_veth(&ep.host_ifname) {
        tracing::warn!("{e}");
    }
    let _ = containers.update(id, |r| r.endpoints.retain(|e| e.network != key));
}

type UserNets = BTreeMap<String, (NetworkRecord, Arc<Net>)>;

/// The user-defined networks whose records are in `dir`.
fn load_user(base: &NetConfig, dir: &Path, dns: &super::net::SharedResolver) -> UserNets {
    let mut user = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return user;
    };
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
                let net = Arc::new(user_net(base, &rec).with_dns(dns.clone()));
                user.insert(rec.id.clone(), (rec, net));
            }
            None => tracing::warn!("skipping the network record {}", path.display()),
        }
    }
    user
}

/// The default bridge, with IPv6 when the daemon has `ipv6`.
fn default_net(base: &NetConfig, dir: &Path, user: &UserNets) -> Result<Net> {
    let net = Net::new(base.clone());
    let Some(subnet) = default_subnet6(base, dir, user)? else {
        // Spares are made with an IPv4 endpoint only: an IPv4-only bridge has them.
        return Ok(net.with_spares());
    };
    // The gateway is the subnet's first address after its subnet-router anycast, as
    // dockerd's.
    let gateway = Ipv6Addr::from(u128::from(subnet.network()).saturating_add(1));
    let gateway = Ipv6Net::new(gateway, subnet.prefix_len())
        .map_err(|e| Error::InvalidArgument(format!("IPv6 subnet {subnet}: {e}")))?;
    Ok(net.with_ipv6(gateway, subnet))
}

/// Where the default bridge's IPv6 subnet taken from the pools is kept (between starts).
const DEFAULT_SUBNET6: &str = "default-ipv6";

/// The default bridge's IPv6 subnet: `fixed-cidr-v6`; with `ipv6` alone (dockerd 28), the
/// subnet an earlier start took while it is still in a pool and no user network's, else
/// the pools' first free one, kept in `dir` so that live-restored containers' addresses
/// stay on it.
fn default_subnet6(base: &NetConfig, dir: &Path, user: &UserNets) -> Result<Option<Ipv6Net>> {
    match base.ipv6 {
        None => return Ok(None),
        Some(Subnet6::Fixed(subnet)) => return Ok(Some(subnet)),
        Some(Subnet6::FromPools) => {}
    }
    let pools = pools6(base, dir)?;
    let taken: Vec<Ipv6Net> = user
        .values()
        .filter_map(|(r, _)| r.address6.map(|a| a.trunc()))
        .collect();
    let overlaps = |s: &Ipv6Net| taken.iter().any(|t| t.contains(s) || s.contains(t));
    let kept = dir.join(DEFAULT_SUBNET6);
    let earlier = std::fs::read_to_string(&kept)
        .ok()
        .and_then(|s| s.trim().parse::<Ipv6Net>().ok());
    if let Some(subnet) = earlier.filter(|s| {
        !overlaps(s)
            && pools
                .iter()
                .any(|(b, size)| b.contains(s) && s.prefix_len() == *size)
    }) {
        return Ok(Some(subnet));
    }
    let subnet = first_free6(&pools, &taken)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io(format!("create {}: {e}", dir.display())))?;
    let tmp = dir.join(format!("{DEFAULT_SUBNET6}.tmp"));
    super::write_private(&tmp, format!("{subnet}\n").as_bytes())?;
    std::fs::rename(&tmp, &kept).map_err(|e| Error::Io(format!("save {}: {e}", kept.display())))?;
    Ok(Some(subnet))
}

/// The IPv6 pools: `default-address-pools`' IPv6 entries, else (dockerd 27+) a ULA /48
/// derived from the daemon's id, in /64s.
fn pools6(base: &NetConfig, dir: &Path) -> Result<Vec<(Ipv6Net, u8)>> {
    if !base.pools6.is_empty() {
        return Ok(base.pools6.clone());
    }
    Ok(vec![(ula_base(&engine_id(dir)?), 64)])
}

/// The first subnet of the pools that overlaps none of `taken`.
fn first_free6(pools: &[(Ipv6Net, u8)], taken: &[Ipv6Net]) -> Result<Ipv6Net> {
    let overlaps = |s: &Ipv6Net| taken.iter().any(|t| t.contains(s) || s.contains(t));
    pools
        .iter()
        .find_map(|(base, size)| base.subnets(*size).ok()?.find(|s| !overlaps(s)))
        .ok_or_else(|| {
            Error::Conflict(
                "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network".into(),
            )
        })
}

/// The daemon's id (`<data-root>/engine-id`, beside the networks' directory `dir`).
fn engine_id(dir: &Path) -> Result<String> {
    let path = dir
        .parent()
        .map(|root| root.join("engine-id"))
        .ok_or_else(|| Error::Io("the data root has no engine-id".into()))?;
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::Io(format!("read {}: {e}", path.display())))
}

/// dockerd's default IPv6 pool (daemon.go, deriveULABaseNetwork): fd00::/8 with the 40
/// low bits of the first 8 bytes of the sha256 of the daemon's id as global id, a /48.
fn ula_base(engine_id: &str) -> Ipv6Net {
    let digest = berth_image::Digest::of(engine_id.as_bytes());
    let hex = digest.hex();
    let first = u64::from_str_radix(&hex[..16.min(hex.len())], 16).unwrap_or(0);
    let gid = u128::from(first & ((1 << 40) - 1));
    let addr = u128::from(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)) | (gid << 80);
    Ipv6Net::new(std::net::Ipv6Addr::from(addr), 48).unwrap_or_default()
}

/// A user-defined network (with IPv6 when it has it).
fn user_net(base: &NetConfig, rec: &NetworkRecord) -> Net {
    let net = Net::new(user_config(base, rec));
    match (rec.address6, rec.range6()) {
        (Some(gateway), Some(range)) => net.with_ipv6(gateway, range),
        _ => net,
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
        ipv6: None,
        pools6: Vec::new(),
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

impl Networks {
    /// A connect or disconnect event of container `id` on the network with key `key`
    /// (dockerd sends them at each start and exit too, per network).
    fn endpoint_event(&self, containers: &Containers, action: &str, key: &str, id: &str) {
        if key == "bridge" {
            let e = crate::events::Event::new("network", action, &super::net::network_id("bridge"))
                .with("name", "bridge")
                .with("type", "bridge")
                .with("container", id);
            containers.events.publish(e);
        } else if let Some(rec) = self.find(key) {
            network_event(containers, action, &rec, Some(id));
        }
    }
}

/// dockerd's refusals (runconfig's errors).
const CONFLICT_HOST: &str =
    "container cannot be disconnected from host network or connected to host network";
const CONFLICT_NONE: &str =
    "container cannot be connected to multiple networks with one of the networks in private (none) mode";
const CONFLICT_SHARED: &str = "container sharing network namespace with another container or host cannot be connected to any other network";

/// A network as connect and disconnect name it: its name, key in endpoints, and range.
struct Target {
    name: String,
    key: String,
    range: Option<Ipv4Net>,
    range6: Option<Ipv6Net>,
}

impl Networks {
    /// The default bridge (`bridge`) or a user-defined network by name, id or id prefix.
    fn target(&self, wanted: &str) -> Result<Target> {
        if wanted == "bridge" && self.default.is_some() {
            return Ok(Target {
                name: "bridge".into(),
                key: "bridge".into(),
                range: None,
                range6: None,
            });
        }
        let rec = self
            .find(wanted)
            .ok_or_else(|| Error::NotFound(format!("network {wanted} not found")))?;
        Ok(Target {
            range: Some(rec.ip_range.unwrap_or(rec.address.trunc())),
            range6: rec.range6(),
            name: rec.name,
            key: rec.id,
        })
    }

    /// The network a create body names, for [`super::net::endpoint_options`].
    pub(crate) fn known(&self, wanted: &str) -> Option<super::net::Known> {
        let wanted = if wanted == "default" {
            "bridge"
        } else {
            wanted
        };
        self.target(wanted).ok().map(|t| super::net::Known {
            name: t.name,
            id: if t.key == "bridge" {
                String::new()
            } else {
                t.key
            },
            range: t.range,
            range6: t.range6,
        })
    }
}

/// The record of a container that leaves the network with key `key`: a join of its own
/// goes; its first network's is taken by the next one (none left: `none`).
fn leave(r: &mut ContainerRecord, key: &str) {
    if r.on_network() && r.network_key() == key {
        match (!r.net.more.is_empty()).then(|| r.net.more.remove(0)) {
            Some(next) => {
                r.network_mode = next.name;
                r.net.network_id = if next.network == "bridge" {
                    String::new()
                } else {
                    next.network
                };
                r.net.aliases = next.aliases;
                r.net.ip = next.ip;
                r.net.ip6 = next.ip6;
                r.net.gw_priority = next.gw_priority;
                r.net.mac = next.mac;
                r.net.sysctls = next.sysctls;
            }
            None => {
                r.network_mode = "none".into();
                r.net.network_id.clear();
                r.net.aliases.clear();
                r.net.ip = None;
                r.net.ip6 = None;
                r.net.gw_priority = 0;
                r.net.mac = None;
                r.net.sysctls.clear();
            }
        }
    } else {
        r.net.more.retain(|j| j.network != key);
    }
}

/// The record of a container that joins: as its first network when it has none.
fn enter(r: &mut ContainerRecord, join: Join) {
    if r.on_network() {
        r.net.more.push(join);
    } else {
        r.network_mode = join.name;
        r.net.network_id = if join.network == "bridge" {
            String::new()
        } else {
            join.network
        };
        r.net.aliases = join.aliases;
        r.net.ip = join.ip;
        r.net.ip6 = join.ip6;
        r.net.gw_priority = join.gw_priority;
        r.net.mac = join.mac;
        r.net.sysctls = join.sysctls;
    }
}

impl crate::Engine {
    /// `docker network connect`: a container that does not run is recorded on `network`
    /// (it gets its endpoint at start); a running one gets it now, beside those it has.
    pub fn network_connect(
        &self,
        network: &str,
        container: &str,
        asked: ConnectOptions,
    ) -> Result<()> {
        let ConnectOptions {
            aliases,
            ip,
            ip6,
            gw_priority,
            mac_address,
            driver_opts,
        } = asked;
        let mac = super::net::endpoint_mac(&mac_address)?;
        let sysctls = super::net::endpoint_sysctls(driver_opts.as_ref())?;
        let networks = self
            .networks()
            .ok_or_else(|| Error::NotFound(format!("network {network} not found")))?;
        let r = self.containers.resolve(container)?;
        let mode = r.network_mode().to_string();
        let running = r.state.status == Status::Running;
        match network {
            "host" if mode == "host" => {
                return Err(Error::Forbidden(format!(
                    "endpoint with name {} already exists in network host",
                    r.name
                )))
            }
            "host" => return Err(Error::InvalidArgument(CONFLICT_HOST.into())),
            "none" if mode == "none" && !running => return Ok(()),
            "none" => return Err(Error::InvalidArgument(CONFLICT_NONE.into())),
            _ => {}
        }
        let target = networks.target(network)?;
        if mode == "host" || mode.starts_with("container:") {
            return Err(Error::InvalidArgument(CONFLICT_SHARED.into()));
        }
        // A container started on `none` has no namespace of berth's to add to (one that
        // left all its networks while it runs still has).
        let detached = self
            .containers
            .net
            .get()
            .is_some_and(|n| n.base.netns_dir.join(&r.id).exists());
        if running && mode == "none" && !detached {
            return Err(Error::InvalidArgument(CONFLICT_NONE.into()));
        }
        if r.joins().iter().any(|j| j.network == target.key) {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                r.name, target.name
            )));
        }
        if target.key == "bridge" && (ip.is_some() || ip6.is_some()) {
            return Err(Error::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if target.key == "bridge" && !aliases.is_empty() {
            return Err(Error::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        if let Some(ip) = ip {
            super::net::check_ip_in(ip, target.range)?;
        }
        if let Some(ip6) = ip6 {
            super::net::check_ip6_in(ip6, target.range6)?;
        }
        let join = Join {
            name: target.name.clone(),
            network: target.key.clone(),
            aliases,
            ip,
            ip6,
            gw_priority,
            mac,
            sysctls,
        };
        let recorded = join.clone();
        self.containers.update(&r.id, move |r| enter(r, recorded))?;
        if running {
            if let Err(e) = networks.connect_running(&self.containers, &r.id, &join) {
                let _ = self.containers.update(&r.id, |r| leave(r, &join.network));
                return Err(e);
            }
        }
        networks.endpoint_event(&self.containers, "connect", &target.key, &r.id);
        Ok(())
    }

    /// `docker network disconnect [-f]`: the container leaves `network` (a running one
    /// loses its interface there now).
    pub fn network_disconnect(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let r = self.containers.resolve(container)?;
        let running = r.state.status == Status::Running;
        let mode = r.network_mode().to_string();
        let not_connected = |name: &str| {
            let the = if running { "" } else { "the " };
            Error::Io(format!(
                "container {} is not connected to {the}network {name}",
                r.id
            ))
        };
        if network == "host" || network == "none" {
            return Err(match (network, mode.as_str()) {
                ("host", "host") => Error::InvalidArgument(CONFLICT_HOST.into()),
                (n, m) if n == m => Error::InvalidArgument(format!(
                    "container {} is on network {n}, which it cannot leave",
                    r.name
                )),
                (n, _) => not_connected(n),
            });
        }
        let networks = self
            .networks()
            .ok_or_else(|| Error::NotFound(format!("network {network} not found")))?;
        let target = match networks.target(network) {
            Ok(t) => t,
            // `-f`: a network removed since the container joined it (while it did not
            // run) is left all the same, as dockerd does.
            Err(Error::NotFound(m)) if force => {
                let gone = r
                    .joins()
                    .into_iter()
                    .find(|j| j.name == network || j.network.starts_with(network));
                match gone {
                    Some(j) => Target {
                        name: j.name,
                        key: j.network,
                        range: None,
                        range6: None,
                    },
                    None => return Err(Error::NotFound(m)),
                }
            }
            Err(e) => return Err(e),
        };
        if !r.joins().iter().any(|j| j.network == target.key) {
            return Err(not_connected(&target.name));
        }
        let key = target.key.clone();
        self.containers.update(&r.id, |r| leave(r, &key))?;
        if running {
            networks.disconnect_running(&self.containers, &r.id, &target.key)?;
        }
        networks.endpoint_event(&self.containers, "disconnect", &target.key, &r.id);
        Ok(())
    }
}

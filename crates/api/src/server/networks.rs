//! `/networks`: the predefined networks (bridge, host, none) and user-defined bridge
//! networks (create, list, inspect, remove, prune), as dockerd shows them.

use std::collections::BTreeMap;

use berth_api_types::network::{
    self as types, ConnectRequest, CreateResponse, DisconnectRequest, EndpointResource, Ipam,
    IpamConfig, NetworkResource, PruneReport,
};
use berth_engine::containers::net::{network_id, BridgeView, Endpoint};
use berth_engine::containers::networks::{ConnectOptions, CreateNetwork, NetworkRecord};
use berth_engine::containers::{ContainerRecord, Status};
use berth_engine::filters::Filters;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde::de::DeserializeOwned;

use super::body::{self, Body};
use super::compat;
use super::error::{ApiError, ApiResult};
use super::Ctx;

const FILTERS: &[&str] = &["name", "id", "driver", "type", "scope", "label", "dangling"];

/// The creation time of the predefined networks (Go's zero time, as dockerd shows it).
const PREDEFINED_CREATED: &str = "0001-01-01T00:00:00Z";

/// A network with what every network of berth's has: local, IPv4 only, default IPAM.
fn resource(name: &str, id: String, created: String, driver: &str, ipam: Ipam) -> NetworkResource {
    NetworkResource {
        name: name.to_string(),
        id,
        created,
        scope: "local".into(),
        driver: driver.to_string(),
        enable_ipv4: true,
        ipam,
        ..Default::default()
    }
}

/// One predefined network; `containers`: its endpoints (for inspect), or None (a list's).
fn network(
    name: &str,
    bridge: Option<&BridgeView>,
    containers: Option<&[ContainerRecord]>,
) -> NetworkResource {
    // Each predefined network's driver has its name, but none's is `null` (libnetwork's
    // null driver); no IPAM options (a nil map in moby).
    let ipam = Ipam {
        driver: "default".into(),
        options: None,
        config: Vec::new(),
    };
    let driver = if name == "none" { "null" } else { name };
    let mut n = resource(
        name,
        network_id(name),
        PREDEFINED_CREATED.into(),
        driver,
        ipam,
    );
    if let Some(b) = bridge {
        if let Some(address) = b.address {
            n.ipam.config = vec![IpamConfig {
                subnet: address.trunc().to_string(),
                gateway: address.addr().to_string(),
                ..Default::default()
            }];
        }
        if let Some(a) = b.address6 {
            n.enable_ipv6 = true;
            n.ipam.config.push(IpamConfig {
                subnet: a.trunc().to_string(),
                gateway: a.addr().to_string(),
                ..Default::default()
            });
        }
        n.options = BTreeMap::from([
            (
                "com.docker.network.bridge.default_bridge".into(),
                "true".into(),
            ),
            ("com.docker.network.bridge.enable_icc".into(), "true".into()),
            (
                "com.docker.network.bridge.enable_ip_masquerade".into(),
                b.ip_masq.to_string(),
            ),
            (
                "com.docker.network.bridge.host_binding_ipv4".into(),
                "0.0.0.0".into(),
            ),
            ("com.docker.network.bridge.name".into(), b.name.clone()),
            ("com.docker.network.driver.mtu".into(), b.mtu.to_string()),
        ]);
    }
    n.containers = containers.map(|list| {
        list.iter()
            .filter(|r| r.state.status == Status::Running)
            .filter_map(|r| {
                let on_it = match name {
                    "bridge" => Some(r.endpoint_on("bridge")?),
                    // host and none: the containers in that mode, which have no endpoint.
                    other if r.network_mode() == other => None,
                    _ => return None,
                };
                Some((r.id.clone(), endpoint(r, on_it)))
            })
            .collect()
    });
    n
}

/// A container's endpoint as a network shows it (empty members: no endpoint of its own).
fn endpoint(r: &ContainerRecord, e: Option<&Endpoint>) -> EndpointResource {
    EndpointResource {
        name: r.name.clone(),
        endpoint_id: e.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        mac_address: e.map(|e| e.mac.clone()).unwrap_or_default(),
        ipv4_address: e
            .map(|e| format!("{}/{}", e.ip, e.prefix))
            .unwrap_or_default(),
        ipv6_address: e
            .and_then(|e| e.ip6.map(|ip| format!("{ip}/{}", e.prefix6)))
            .unwrap_or_default(),
    }
}

/// A user-defined network; `containers`: its endpoints (for inspect), or None (a list's).
fn user_network(rec: &NetworkRecord, containers: Option<&[ContainerRecord]>) -> NetworkResource {
    let config = IpamConfig {
        subnet: rec.address.trunc().to_string(),
        ip_range: rec.ip_range.map(|r| r.to_string()).unwrap_or_default(),
        gateway: rec.address.addr().to_string(),
        ..Default::default()
    };
    let config6 = rec.address6.map(|a| IpamConfig {
        subnet: a.trunc().to_string(),
        ip_range: rec.ip_range6.map(|r| r.to_string()).unwrap_or_default(),
        gateway: a.addr().to_string(),
        ..Default::default()
    });
    let ipam = Ipam {
        driver: "default".into(),
        options: Some(BTreeMap::new()),
        config: std::iter::once(config).chain(config6).collect(),
    };
    let mut n = resource(
        &rec.name,
        rec.id.clone(),
        rec.created.clone(),
        "bridge",
        ipam,
    );
    n.internal = rec.internal;
    n.enable_ipv6 = rec.address6.is_some();
    n.attachable = rec.attachable;
    n.options = rec.options.clone();
    n.labels = rec.labels.clone();
    n.containers = containers.map(|list| {
        list.iter()
            .filter(|r| r.state.status == Status::Running)
            .filter_map(|r| Some((r.id.clone(), endpoint(r, Some(r.endpoint_on(&rec.id)?)))))
            .collect()
    });
    n
}

fn names(bridge: &Option<BridgeView>) -> Vec<&'static str> {
    let mut out = Vec::new();
    if bridge.is_some() {
        out.push("bridge");
    }
    out.extend(["host", "none"]);
    out
}

/// moby's network filters: each key's values are alternatives (labels must all hold);
/// `dangling`: user-defined networks no running container is on (false: the others).
fn matches(filters: &Filters, n: &NetworkResource, dangling: Option<bool>) -> bool {
    let builtin = n.created == PREDEFINED_CREATED;
    let label_ok = filters
        .get("label")
        .iter()
        .all(|l| match l.split_once('=') {
            Some((k, val)) => n.labels.get(k).map(String::as_str) == Some(val),
            None => n.labels.contains_key(l.as_str()),
        });
    let in_use = n.containers.as_ref().is_some_and(|c| !c.is_empty());
    filters.any_of("name", |f| n.name.contains(f))
        && filters.any_of("id", |i| n.id.starts_with(i))
        && filters.any_of("driver", |d| n.driver == d)
        && filters.any_of("type", |t| (t == "builtin") == builtin)
        && filters.any_of("scope", |s| s == "local")
        && dangling.is_none_or(|only| only == (!builtin && !in_use))
        && label_ok
}

/// The `dangling` and `type` filters' values, checked as dockerd checks them.
fn check_filters(filters: &Filters) -> ApiResult<Option<bool>> {
    if let Some(t) = filters
        .get("type")
        .iter()
        .find(|t| !matches!(t.as_str(), "custom" | "builtin"))
    {
        return Err(ApiError::bad_request(format!(
            "invalid filter: 'type'='{t}'"
        )));
    }
    match filters.get("dangling") {
        [] => Ok(None),
        [one] => match one.as_str() {
            "1" | "true" => Ok(Some(true)),
            "0" | "false" => Ok(Some(false)),
            _ => Err(ApiError::bad_request(
                "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")",
            )),
        },
        _ => Err(ApiError::bad_request(
            "got more than one value for filter key \"dangling\"",
        )),
    }
}

/// A request body as moby's decoder reads it; `what` starts the 400's message.
async fn request<T: DeserializeOwned>(body_in: Incoming, what: &str) -> ApiResult<T> {
    let value = body::read_json(body_in, 1 << 20).await?;
    types::decode(value).map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

/// GET /networks
pub(super) async fn list(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filters = Filters::parse(ctx.query.get("filters"), FILTERS)?;
    let dangling = check_filters(&filters)?;
    let (bridge, user, records) = ctx
        .blocking(|e| {
            let user = e.networks().map(|n| n.list()).unwrap_or_default();
            Ok((e.default_bridge(), user, e.containers().list()))
        })
        .await?;
    // Built with their containers, as the oldest clients get them; compat drops them.
    let mut out: Vec<NetworkResource> = names(&bridge)
        .into_iter()
        .map(|n| network(n, bridge.as_ref().filter(|_| n == "bridge"), Some(&records)))
        .chain(user.iter().map(|r| user_network(r, Some(&records))))
        .filter(|n| matches(&filters, n, dangling))
        .collect();
    compat::network_list(&mut out, ctx.version);
    Ok(body::json(StatusCode::OK, &out))
}

/// GET /networks/{id or name}
pub(super) async fn inspect(ctx: &Ctx, wanted: String) -> ApiResult<Response<Body>> {
    let lookup = wanted.clone();
    let (bridge, records, user) = ctx
        .blocking(move |e| {
            let user = e.networks().and_then(|n| n.find(&lookup));
            Ok((e.default_bridge(), e.containers().list(), user))
        })
        .await?;
    if let Some(rec) = user {
        return Ok(body::json(
            StatusCode::OK,
            &user_network(&rec, Some(&records)),
        ));
    }
    let found = names(&bridge).into_iter().find(|n| {
        *n == wanted || (wanted.len() >= 3 && network_id(n).starts_with(wanted.as_str()))
    });
    match found {
        Some(n) => Ok(body::json(
            StatusCode::OK,
            &network(n, bridge.as_ref().filter(|_| n == "bridge"), Some(&records)),
        )),
        None => Err(ApiError::not_found(format!("network {wanted} not found"))),
    }
}

/// Members of a create body that ask for what berth's networks cannot be (dockerd's
/// decoder would take them, so they are refused by name rather than ignored).
fn refuse_unsupported(req: &types::CreateRequest) -> ApiResult<()> {
    if !matches!(req.scope.as_str(), "" | "local") {
        return Err(ApiError::bad_request(format!(
            "network scope {:?} is not supported by berth (local is)",
            req.scope
        )));
    }
    let refused = [
        ("Ingress", req.ingress),
        ("ConfigOnly", req.config_only),
        (
            "ConfigFrom",
            req.config_from
                .as_ref()
                .is_some_and(|c| !c.network.is_empty()),
        ),
        // A network without IPv4 (IPv6 only).
        ("EnableIPv4=false", req.enable_ipv4 == Some(false)),
    ];
    if let Some((name, _)) = refused.iter().find(|(_, asks)| *asks) {
        return Err(ApiError::bad_request(format!(
            "{name} is not supported by berth yet"
        )));
    }
    let Some(ipam) = &req.ipam else {
        return Ok(());
    };
    if !matches!(ipam.driver.as_str(), "" | "default") {
        return Err(ApiError::bad_request(format!(
            "IPAM driver {:?} is not supported by berth (default is)",
            ipam.driver
        )));
    }
    let v6 = |c: &&IpamConfig| c.subnet.contains(':');
    if ipam.config.iter().filter(v6).count() > 1
        || ipam.config.iter().filter(|c| !v6(c)).count() > 1
    {
        return Err(ApiError::bad_request(
            "berth takes one IPv4 and one IPv6 IPAM config per network",
        ));
    }
    if ipam.config.iter().any(|c| !c.aux_address.is_empty()) {
        return Err(ApiError::bad_request(
            "IPAM.Config.AuxiliaryAddresses is not supported by berth yet",
        ));
    }
    Ok(())
}

/// The engine's create options from the wire's.
fn create_options(req: types::CreateRequest) -> CreateNetwork {
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    let configs = req.ipam.map(|i| i.config).unwrap_or_default();
    // An entry is IPv6 by its subnet (one without a subnet: IPv4, as berth had it).
    let (v6, v4): (Vec<IpamConfig>, Vec<IpamConfig>) =
        configs.into_iter().partition(|c| c.subnet.contains(':'));
    let (subnet6, ip_range6, gateway6) = match v6.into_iter().next() {
        Some(c) => (
            nonempty(c.subnet),
            nonempty(c.ip_range),
            nonempty(c.gateway),
        ),
        None => (None, None, None),
    };
    let first = v4.into_iter().next();
    let (subnet, ip_range, gateway) = match first {
        Some(c) => (
            nonempty(c.subnet),
            nonempty(c.ip_range),
            nonempty(c.gateway),
        ),
        None => (None, None, None),
    };
    CreateNetwork {
        name: req.name,
        driver: req.driver,
        subnet,
        ip_range,
        gateway,
        internal: req.internal,
        attachable: req.attachable,
        labels: req.labels,
        options: req.options,
        enable_ipv6: req.enable_ipv6,
        subnet6,
        ip_range6,
        gateway6,
    }
}

/// POST /networks/create
pub(super) async fn create(ctx: &Ctx, body_in: Incoming) -> ApiResult<Response<Body>> {
    let mut req: types::CreateRequest = request(body_in, "network config").await?;
    super::compat::network_create_request(&mut req, ctx.version);
    refuse_unsupported(&req)?;
    let create = create_options(req);
    let rec = ctx
        .blocking(move |e| {
            let networks = e
                .networks()
                .ok_or_else(|| ApiError::internal("berthd was started without networking"))?;
            Ok(networks.create(e.containers(), &create)?)
        })
        .await?;
    let created = CreateResponse {
        id: rec.id,
        warning: String::new(),
    };
    Ok(body::json(StatusCode::CREATED, &created))
}

/// DELETE /networks/{id}
pub(super) async fn remove(ctx: &Ctx, wanted: String) -> ApiResult<Response<Body>> {
    ctx.blocking(move |e| {
        let networks = e
            .networks()
            .ok_or_else(|| ApiError::not_found(format!("network {wanted} not found")))?;
        networks.remove(e.containers(), &wanted)?;
        Ok(())
    })
    .await?;
    Ok(body::empty(StatusCode::NO_CONTENT))
}

/// POST /networks/prune: user-defined networks no container refers to.
pub(super) async fn prune(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filters = Filters::parse(ctx.query.get("filters"), &["until", "label", "label!"])?;
    let deleted = ctx
        .blocking(move |e| {
            let Some(networks) = e.networks() else {
                return Ok(Vec::new());
            };
            let used: Vec<String> = e
                .containers()
                .list()
                .into_iter()
                .flat_map(|r| r.joins().into_iter().map(|j| j.network))
                .collect();
            let mut deleted = Vec::new();
            for rec in networks.list() {
                let labelled = |l: &String| match l.split_once('=') {
                    Some((k, v)) => rec.labels.get(k).map(String::as_str) == Some(v),
                    None => rec.labels.contains_key(l.as_str()),
                };
                if used.contains(&rec.id)
                    || !filters.get("label").iter().all(labelled)
                    || filters.get("label!").iter().any(labelled)
                {
                    continue;
                }
                if networks.remove(e.containers(), &rec.id).is_ok() {
                    deleted.push(rec.name);
                }
            }
            Ok(deleted)
        })
        .await?;
    let report = PruneReport {
        networks_deleted: (!deleted.is_empty()).then_some(deleted),
    };
    Ok(body::json(StatusCode::OK, &report))
}

/// Members of a connect body's EndpointConfig that ask for what berth does not do.
fn refuse_unsupported_endpoint(e: &types::EndpointSettings) -> ApiResult<()> {
    let ipam = e.ipam_config.clone().unwrap_or_default();
    let refused = [
        ("IPAMConfig.LinkLocalIPs", !ipam.link_local_ips.is_empty()),
        ("Links", e.links.as_ref().is_some_and(|l| !l.is_empty())),
    ];
    match refused.iter().find(|(_, asks)| *asks) {
        Some((name, _)) => Err(ApiError::bad_request(format!(
            "EndpointConfig.{name} is not supported by berth yet"
        ))),
        None => Ok(()),
    }
}

/// POST /networks/{id}/connect (of a running container or one that does not run).
pub(super) async fn connect(
    ctx: &Ctx,
    network: String,
    body_in: Incoming,
) -> ApiResult<Response<Body>> {
    let req: ConnectRequest = request(body_in, "connect request").await?;
    let endpoint = req.endpoint_config.unwrap_or_default();
    refuse_unsupported_endpoint(&endpoint)?;
    let ip6 = match endpoint
        .ipam_config
        .as_ref()
        .map(|c| c.ipv6_address.as_str())
        .filter(|a| !a.is_empty())
    {
        Some(a) => Some(
            a.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid IPv6 address: {a}")))?,
        ),
        None => None,
    };
    let ip = match endpoint
        .ipam_config
        .map(|c| c.ipv4_address)
        .filter(|a| !a.is_empty())
    {
        Some(a) => Some(
            a.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid IPv4 address: {a}")))?,
        ),
        None => None,
    };
    let asked = ConnectOptions {
        aliases: endpoint.aliases.unwrap_or_default(),
        ip,
        ip6,
        gw_priority: endpoint.gw_priority,
        mac_address: endpoint.mac_address,
        driver_opts: endpoint.driver_opts,
    };
    ctx.blocking(move |e| Ok(e.network_connect(&network, &req.container, asked)?))
        .await?;
    Ok(body::empty(StatusCode::OK))
}

/// POST /networks/{id}/disconnect (of a running container or one that does not run).
pub(super) async fn disconnect(
    ctx: &Ctx,
    network: String,
    body_in: Incoming,
) -> ApiResult<Response<Body>> {
    let req: DisconnectRequest = request(body_in, "disconnect request").await?;
    ctx.blocking(move |e| Ok(e.network_disconnect(&network, &req.container, req.force)?))
        .await?;
    Ok(body::empty(StatusCode::OK))
}

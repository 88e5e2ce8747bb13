//! `/networks`: the predefined networks (bridge, host, none) and user-defined bridge
//! networks (create, list, inspect, remove, prune), as dockerd shows them.

use std::collections::BTreeMap;

use berth_engine::containers::net::{network_id, BridgeView};
use berth_engine::containers::networks::{CreateNetwork, NetworkRecord};
use berth_engine::containers::{ContainerRecord, Status};
use berth_engine::filters::Filters;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};
use super::Ctx;

const FILTERS: &[&str] = &["name", "id", "driver", "type", "scope", "label"];

/// One predefined network; `containers`: its endpoints (inspect), or None (list).
fn network(
    name: &str,
    bridge: Option<&BridgeView>,
    containers: Option<&[ContainerRecord]>,
) -> Value {
    // Each predefined network's driver has its name.
    let driver = name;
    let mut v = json!({
        "Name": name,
        "Id": network_id(name),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {},
    });
    if let Some(b) = bridge {
        if let Some(address) = b.address {
            v["IPAM"]["Config"] = json!([{"Subnet": address.trunc().to_string(), "Gateway": address.addr().to_string()}]);
        }
        v["Options"] = json!({
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": b.ip_masq.to_string(),
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": b.name,
            "com.docker.network.driver.mtu": b.mtu.to_string(),
        });
    }
    if let Some(list) = containers {
        let mut out = serde_json::Map::new();
        for r in list {
            if r.state.status != Status::Running {
                continue;
            }
            let on_it = match name {
                "bridge" => r.endpoint_on("bridge"),
                other if r.network_mode() == other => None,
                _ => continue,
            };
            if name == "bridge" && on_it.is_none() {
                continue;
            }
            out.insert(
                r.id.clone(),
                json!({
                    "Name": r.name,
                    "EndpointID": on_it.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
                    "MacAddress": on_it.map(|e| e.mac.clone()).unwrap_or_default(),
                    "IPv4Address": on_it.map(|e| format!("{}/{}", e.ip, e.prefix)).unwrap_or_default(),
                    "IPv6Address": "",
                }),
            );
        }
        v["Containers"] = Value::Object(out);
    } else {
        v.as_object_mut().map(|o| o.remove("Containers"));
    }
    v
}

/// A user-defined network; `containers`: for inspect.
fn user_network(rec: &NetworkRecord, containers: Option<&[ContainerRecord]>) -> Value {
    let mut config = json!({"Subnet": rec.address.trunc().to_string(), "Gateway": rec.address.addr().to_string()});
    if let Some(r) = rec.ip_range {
        config["IPRange"] = json!(r.to_string());
    }
    let mut v = json!({
        "Name": rec.name,
        "Id": rec.id,
        "Created": rec.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [config]},
        "Internal": rec.internal,
        "Attachable": rec.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Options": rec.options,
        "Labels": rec.labels,
    });
    if let Some(list) = containers {
        let mut out = serde_json::Map::new();
        for r in list {
            let Some(e) = r.endpoint_on(&rec.id) else {
                continue;
            };
            if r.state.status != Status::Running {
                continue;
            }
            out.insert(
                r.id.clone(),
                json!({
                    "Name": r.name,
                    "EndpointID": e.endpoint_id,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                    "IPv6Address": "",
                }),
            );
        }
        v["Containers"] = Value::Object(out);
    }
    v
}

fn names(bridge: &Option<BridgeView>) -> Vec<&'static str> {
    let mut out = Vec::new();
    if bridge.is_some() {
        out.push("bridge");
    }
    out.extend(["host", "none"]);
    out
}

fn matches(filters: &Filters, name: &str, v: &Value) -> bool {
    let id = v["Id"].as_str().unwrap_or_default();
    // The predefined networks are the ones without a creation time.
    let builtin = v["Created"] == "0001-01-01T00:00:00Z";
    let labels = v["Labels"].as_object().cloned().unwrap_or_default();
    let label_ok = filters
        .get("label")
        .iter()
        .all(|l| match l.split_once('=') {
            Some((k, val)) => labels.get(k).and_then(Value::as_str) == Some(val),
            None => labels.contains_key(l.as_str()),
        });
    filters
        .get("name")
        .iter()
        .all(|n| name.contains(n.as_str()))
        && filters.get("id").iter().all(|i| id.starts_with(i.as_str()))
        && filters
            .get("driver")
            .iter()
            .all(|d| v["Driver"].as_str() == Some(d.as_str()))
        && filters
            .get("type")
            .iter()
            .all(|t| (t == "builtin") == builtin)
        && filters.get("scope").iter().all(|s| s == "local")
        && label_ok
}

/// GET /networks
pub(super) async fn list(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filters = Filters::parse(ctx.query.get("filters"), FILTERS)?;
    let (bridge, user) = ctx
        .blocking(|e| {
            let user = e.networks().map(|n| n.list()).unwrap_or_default();
            Ok((e.default_bridge(), user))
        })
        .await?;
    let out: Vec<Value> = names(&bridge)
        .into_iter()
        .map(|n| {
            let v = network(n, bridge.as_ref().filter(|_| n == "bridge"), None);
            (n.to_string(), v)
        })
        .chain(user.iter().map(|r| (r.name.clone(), user_network(r, None))))
        .filter(|(n, v)| matches(&filters, n, v))
        .map(|(_, v)| v)
        .collect();
    Ok(body::json(StatusCode::OK, &Value::Array(out)))
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

/// moby's NetworkCreateRequest, the keys berth reads.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
    attachable: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
    gateway: String,
}

/// `v` without null members: clients (docker-compose) send nulls for what they leave unset,
/// which Go's decoder reads as zero values.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// POST /networks/create
pub(super) async fn create(ctx: &Ctx, body_in: Incoming) -> ApiResult<Response<Body>> {
    let value = body::read_json(body_in, 1 << 20).await?;
    let req: CreateBody = serde_json::from_value(without_nulls(value))
        .map_err(|e| ApiError::bad_request(format!("invalid network config: {e}")))?;
    if req.enable_ipv6 == Some(true) {
        return Err(ApiError::bad_request(
            "IPv6 networks are not supported by berth yet",
        ));
    }
    let configs = req.ipam.and_then(|i| i.config).unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::bad_request(
            "berth takes one IPAM config (one IPv4 subnet) per network",
        ));
    }
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let first = configs.first();
    let create = CreateNetwork {
        name: req.name,
        driver: req.driver,
        subnet: first.and_then(|c| nonempty(&c.subnet)),
        ip_range: first.and_then(|c| nonempty(&c.ip_range)),
        gateway: first.and_then(|c| nonempty(&c.gateway)),
        internal: req.internal,
        attachable: req.attachable,
        labels: req.labels.unwrap_or_default(),
        options: req.options.unwrap_or_default(),
    };
    let rec = ctx
        .blocking(move |e| {
            let networks = e
                .networks()
                .ok_or_else(|| ApiError::internal("berthd was started without networking"))?;
            Ok(networks.create(e.containers(), &create)?)
        })
        .await?;
    Ok(body::json(
        StatusCode::CREATED,
        &json!({"Id": rec.id, "Warning": ""}),
    ))
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
    let deleted = if deleted.is_empty() {
        Value::Null
    } else {
        json!(deleted)
    };
    Ok(body::json(
        StatusCode::OK,
        &json!({"NetworksDeleted": deleted}),
    ))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointConfig>,
    /// disconnect's `-f`.
    force: bool,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointConfig {
    aliases: Option<Vec<String>>,
    /// `--gw-priority`.
    gw_priority: i64,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
}

/// POST /networks/{id}/connect (of a running container or one that does not run).
pub(super) async fn connect(
    ctx: &Ctx,
    network: String,
    body_in: Incoming,
) -> ApiResult<Response<Body>> {
    let value = body::read_json(body_in, 1 << 20).await?;
    let req: ConnectBody = serde_json::from_value(without_nulls(value))
        .map_err(|e| ApiError::bad_request(format!("invalid connect request: {e}")))?;
    let endpoint = req.endpoint_config.unwrap_or_default();
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
    let aliases = endpoint.aliases.unwrap_or_default();
    let priority = endpoint.gw_priority;
    ctx.blocking(move |e| {
        Ok(e.network_connect(&network, &req.container, aliases, ip, priority)?)
    })
    .await?;
    Ok(body::empty(StatusCode::OK))
}

/// POST /networks/{id}/disconnect (of a running container or one that does not run).
pub(super) async fn disconnect(
    ctx: &Ctx,
    network: String,
    body_in: Incoming,
) -> ApiResult<Response<Body>> {
    let value = body::read_json(body_in, 1 << 20).await?;
    let req: ConnectBody = serde_json::from_value(without_nulls(value))
        .map_err(|e| ApiError::bad_request(format!("invalid disconnect request: {e}")))?;
    ctx.blocking(move |e| Ok(e.network_disconnect(&network, &req.container, req.force)?))
        .await?;
    Ok(body::empty(StatusCode::OK))
}

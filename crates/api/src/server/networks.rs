//! `GET /networks` and `GET /networks/{id}`: the predefined networks (bridge, host, none)
//! as dockerd shows them. User-defined networks are not there yet.

use berth_engine::containers::net::{network_id, BridgeView};
use berth_engine::containers::{ContainerRecord, Status};
use berth_engine::filters::Filters;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};
use super::Ctx;

const FILTERS: &[&str] = &["name", "id", "driver", "type", "scope", "label", "dangling"];

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
                "bridge" => r.endpoint.as_ref(),
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
    filters
        .get("name")
        .iter()
        .all(|n| name.contains(n.as_str()))
        && filters.get("id").iter().all(|i| id.starts_with(i.as_str()))
        && filters
            .get("driver")
            .iter()
            .all(|d| v["Driver"].as_str() == Some(d.as_str()))
        && filters.get("type").iter().all(|t| t == "builtin")
        && filters.get("scope").iter().all(|s| s == "local")
        && filters.get("label").is_empty()
        && filters
            .get("dangling")
            .iter()
            .all(|d| d == "false" || d == "0")
}

/// GET /networks
pub(super) async fn list(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filters = Filters::parse(ctx.query.get("filters"), FILTERS)?;
    let bridge = ctx.blocking(|e| Ok(e.default_bridge())).await?;
    let out: Vec<Value> = names(&bridge)
        .into_iter()
        .map(|n| {
            (
                n,
                network(n, bridge.as_ref().filter(|_| n == "bridge"), None),
            )
        })
        .filter(|(n, v)| matches(&filters, n, v))
        .map(|(_, v)| v)
        .collect();
    Ok(body::json(StatusCode::OK, &Value::Array(out)))
}

/// GET /networks/{id or name}
pub(super) async fn inspect(ctx: &Ctx, wanted: String) -> ApiResult<Response<Body>> {
    let (bridge, records) = ctx
        .blocking(|e| Ok((e.default_bridge(), e.containers().list())))
        .await?;
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

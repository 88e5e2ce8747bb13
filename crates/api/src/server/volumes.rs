//! The volume routes: create, list, inspect, remove, prune (the `local` driver only).

use std::collections::BTreeMap;

use berth_engine::filters::Filters;
use berth_engine::volumes::{Volume, VolumeRequest};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};
use super::Ctx;

/// The filters `docker volume ls` takes, and `volume prune`'s.
const LIST_FILTERS: &[&str] = &["dangling", "name", "label", "driver"];
pub(super) const PRUNE_FILTERS: &[&str] = &["label", "label!", "all"];

/// A volume create body is small.
const MAX_BODY: usize = 1024 * 1024;

/// moby's volume.CreateOptions.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    driver_opts: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

/// A volume as moby's API shows it; `usage` for `system df` (Size, RefCount).
pub(super) fn view(e: &berth_engine::Engine, v: &Volume, usage: Option<(u64, usize)>) -> Value {
    let mut out = json!({
        "Name": v.name,
        "Driver": v.driver,
        "Mountpoint": e.volumes().data_path(&v.name),
        "CreatedAt": v.created_at,
        // null when empty, as moby's (a Go map left nil).
        "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    });
    if let Some((size, refs)) = usage {
        out["UsageData"] = json!({"Size": size, "RefCount": refs});
    }
    out
}

pub(super) async fn create(ctx: &Ctx, body_in: Incoming) -> ApiResult<Response<Body>> {
    let value = body::read_json(body_in, MAX_BODY).await?;
    let req: CreateBody = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("invalid volume create body: {e}")))?;
    let out = ctx
        .blocking(move |e| {
            let v = e.create_volume(&VolumeRequest {
                name: req.name,
                driver: req.driver,
                options: req.driver_opts,
                labels: req.labels,
            })?;
            Ok(view(e, &v, None))
        })
        .await?;
    Ok(body::json(StatusCode::CREATED, &out))
}

pub(super) async fn list(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filters = Filters::parse(ctx.query.get("filters"), LIST_FILTERS)?;
    let out = ctx
        .blocking(move |e| {
            let list = e.list_volumes(&filters)?;
            Ok(list.iter().map(|v| view(e, v, None)).collect::<Vec<_>>())
        })
        .await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"Volumes": out, "Warnings": null}),
    ))
}

pub(super) async fn inspect(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let out = ctx
        .blocking(move |e| Ok(view(e, &e.volume(&name)?, None)))
        .await?;
    Ok(body::json(StatusCode::OK, &out))
}

pub(super) async fn remove(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let force = ctx.query.bool("force");
    ctx.blocking(move |e| Ok(e.remove_volume(&name, force)?))
        .await?;
    Ok(body::empty(StatusCode::NO_CONTENT))
}

pub(super) async fn prune(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filters = Filters::parse(ctx.query.get("filters"), PRUNE_FILTERS)?;
    let (names, bytes) = ctx
        .blocking(move |e| Ok(e.prune_volumes(&filters)?))
        .await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"VolumesDeleted": if names.is_empty() { Value::Null } else { json!(names) }, "SpaceReclaimed": bytes}),
    ))
}

/// The volumes of `system df`: each with its size and how many containers use it.
pub(super) fn usage(e: &berth_engine::Engine) -> Vec<Value> {
    e.volume_usage()
        .iter()
        .map(|u| view(e, &u.volume, Some((u.size, u.ref_count))))
        .collect()
}

//! The volume routes: create, list, inspect, remove, prune (the `local` driver only).

use berth_api_types::volume::{self as types, CreateOptions, ListResponse, PruneReport, UsageData};
use berth_engine::filters::Filters;
use berth_engine::volumes::{Volume, VolumeRequest};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::compat;
use super::error::{ApiError, ApiResult};
use super::Ctx;

/// The filters `docker volume ls` takes, and `volume prune`'s.
const LIST_FILTERS: &[&str] = &["dangling", "name", "label", "driver"];
pub(super) const PRUNE_FILTERS: &[&str] = &["label", "label!", "all"];

/// A volume create body is small.
const MAX_BODY: usize = 1024 * 1024;

/// A volume as moby's API shows it; `usage` for `system df` (Size, RefCount).
pub(super) fn view(
    e: &berth_engine::Engine,
    v: &Volume,
    usage: Option<(u64, usize)>,
) -> types::Volume {
    types::Volume {
        created_at: v.created_at.clone(),
        driver: v.driver.clone(),
        // null when the request gave none, `{}` when it gave an empty set, as moby's.
        labels: v.labels.clone(),
        mountpoint: e.volumes().data_path(&v.name).display().to_string(),
        name: v.name.clone(),
        options: v.options.clone(),
        scope: "local".into(),
        usage_data: usage.map(|(size, refs)| UsageData {
            ref_count: i64::try_from(refs).unwrap_or(i64::MAX),
            size: i64::try_from(size).unwrap_or(i64::MAX),
        }),
    }
}

pub(super) async fn create(ctx: &Ctx, body_in: Incoming) -> ApiResult<Response<Body>> {
    let value = body::read_json(body_in, MAX_BODY).await?;
    let mut req: CreateOptions = types::decode(value)
        .map_err(|e| ApiError::bad_request(format!("invalid volume create body: {e}")))?;
    compat::volume_create_request(&mut req, ctx.version);
    // A cluster volume is a swarm manager's; dockerd's decoder takes the member, so it is
    // refused by name rather than a local volume made in its place.
    if req.asks_for_cluster_volume() {
        return Err(ApiError::bad_request(
            "ClusterVolumeSpec is not supported by berth (cluster volumes need a swarm)",
        ));
    }
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
    let volumes = ctx
        .blocking(move |e| {
            let list = e.list_volumes(&filters)?;
            Ok(list.iter().map(|v| view(e, v, None)).collect::<Vec<_>>())
        })
        .await?;
    let out = ListResponse {
        volumes,
        warnings: None,
    };
    Ok(body::json(StatusCode::OK, &out))
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
    let report = PruneReport {
        volumes_deleted: (!names.is_empty()).then_some(names),
        space_reclaimed: bytes,
    };
    Ok(body::json(StatusCode::OK, &report))
}

/// The volumes of `system df`: each with its size and how many containers use it.
pub(super) fn usage(e: &berth_engine::Engine) -> Vec<types::Volume> {
    e.volume_usage()
        .iter()
        .map(|u| view(e, &u.volume, Some((u.size, u.ref_count))))
        .collect()
}

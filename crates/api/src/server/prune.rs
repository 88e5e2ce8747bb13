//! `POST /volumes/prune` and `/build/prune`, which `docker system prune` calls after the
//! container and network prunes (with `--volumes`, and for the build cache). berth has no
//! volumes and no build cache yet: each prune checks its filters as dockerd does and
//! removes nothing, in moby's response shape. (Networks: networks.rs.)

use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::body::{self, Body};
use super::error::ApiResult;
use super::Ctx;
use berth_engine::filters::Filters;

/// The volume prune's.
const VOLUME_FILTERS: &[&str] = &["label", "label!", "all"];
/// The build cache prune's (BuildKit's cache fields and until).
const BUILD_FILTERS: &[&str] = &[
    "until",
    "id",
    "parent",
    "type",
    "description",
    "inuse",
    "shared",
    "private",
];

/// The filters of the request, checked (an `until` must be a time).
fn checked(ctx: &Ctx, allowed: &[&str]) -> ApiResult<Filters> {
    let filters = Filters::parse(ctx.query.get("filters"), allowed)?;
    for until in filters.get("until") {
        berth_engine::images::parse_until(until)?;
    }
    Ok(filters)
}

/// POST /volumes/prune: berth has no volumes yet.
pub(super) async fn volumes(ctx: &Ctx) -> ApiResult<Response<Body>> {
    checked(ctx, VOLUME_FILTERS)?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"VolumesDeleted": Value::Null, "SpaceReclaimed": 0}),
    ))
}

/// POST /build/prune: berth has no build cache yet.
pub(super) async fn build_cache(ctx: &Ctx) -> ApiResult<Response<Body>> {
    checked(ctx, BUILD_FILTERS)?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"CachesDeleted": Value::Null, "SpaceReclaimed": 0}),
    ))
}

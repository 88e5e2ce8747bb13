//! `POST /networks/prune`, which `docker system prune` calls after the container prune (the
//! volume prune, with `--volumes`, is the volumes' own; the build cache's is in build.rs).
//! berth has no user-defined networks yet: the prune checks its filters as dockerd does and
//! removes nothing, in moby's response shape.

use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::body::{self, Body};
use super::error::ApiResult;
use super::Ctx;
use berth_engine::filters::Filters;

/// The filters dockerd's network prune takes.
const NETWORK_FILTERS: &[&str] = &["until", "label", "label!"];
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

/// POST /networks/prune: only user-defined networks are pruned, and berth has none (none,
/// host and bridge are predefined).
pub(super) async fn networks(ctx: &Ctx) -> ApiResult<Response<Body>> {
    checked(ctx, NETWORK_FILTERS)?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"NetworksDeleted": Value::Null}),
    ))
}

/// The filters of a POST /build/prune, checked as dockerd checks them.
pub(super) fn check_build_filters(ctx: &Ctx) -> ApiResult<()> {
    checked(ctx, BUILD_FILTERS).map(drop)
}

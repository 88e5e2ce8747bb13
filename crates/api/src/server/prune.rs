//! The filters of `POST /build/prune`, which `docker system prune` calls after the container,
//! network and volume prunes, checked as dockerd checks them (the prunes themselves are
//! their areas' own: networks.rs, volumes.rs, build.rs).

use super::error::ApiResult;
use super::Ctx;
use berth_engine::filters::Filters;

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

/// The filters of a POST /build/prune, checked as dockerd checks them.
pub(super) fn check_build_filters(ctx: &Ctx) -> ApiResult<()> {
    checked(ctx, BUILD_FILTERS).map(drop)
}

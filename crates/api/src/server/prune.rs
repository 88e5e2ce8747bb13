//! The filters of `POST /build/prune`, which `docker system prune` calls after the container,
//! network and volume prunes, checked as dockerd checks them (the prunes themselves are
//! their areas' own: networks.rs, volumes.rs, build.rs).

use super::error::{ApiError, ApiResult};
use super::Ctx;
use berth_builder::PruneOptions;
use berth_engine::filters::Filters;

/// The build cache prune's (BuildKit's cache fields, and until or its older name).
const BUILD_FILTERS: &[&str] = &[
    "until",
    "unused-for",
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

/// A POST /build/prune's filters and space limits, as moby's toBuildkitPruneInfo reads
/// them: one value per filter; `until` (or `unused-for`, not both) a duration or a time;
/// `id` a regular expression; `reserved-space` from API 1.48 on (before: `keep-storage`),
/// with `max-used-space` and `min-free-space`.
pub(super) fn build_prune_options(ctx: &Ctx) -> ApiResult<PruneOptions> {
    let filters = checked(ctx, BUILD_FILTERS)?;
    let one = |key: &str| -> ApiResult<Option<String>> {
        match filters.get(key) {
            [] => Ok(None),
            [v] => Ok(Some(v.clone())),
            _ => Err(ApiError::bad_request("filters expect only one value")),
        }
    };
    if filters.has("until") && filters.has("unused-for") {
        return Err(ApiError::bad_request(
            "conflicting filters: \"until\" and \"unused-for\"",
        ));
    }
    let until = match one("until")? {
        Some(v) => Some(v),
        None => one("unused-for")?,
    };
    let before = until
        .map(|v| berth_engine::images::parse_until(&v))
        .transpose()?
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64));
    let id = one("id")?
        .map(|re| regex::Regex::new(&re))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("invalid filter 'id': {e}")))?;
    let flag = |key: &str| -> ApiResult<Option<bool>> {
        one(key)?
            .map(|v| match v.as_str() {
                "" | "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ApiError::bad_request(format!("invalid filter '{key}={v}'"))),
            })
            .transpose()
    };
    let bytes = |key: &str| -> ApiResult<u64> {
        ctx.query
            .get(key)
            .filter(|v| !v.is_empty())
            .map_or(Ok(0), |v| {
                v.parse::<i64>().map(|n| n.max(0) as u64).map_err(|_| {
                    ApiError::bad_request(format!(
                        "{key} is in bytes and expects an integer, got {v}"
                    ))
                })
            })
    };
    let (reserved_space, max_used_space, min_free_space) =
        if super::compat::build_prune_limits(ctx.version) {
            let reserved = match bytes("reserved-space")? {
                0 => bytes("keep-storage")?,
                n => n,
            };
            (reserved, bytes("max-used-space")?, bytes("min-free-space")?)
        } else {
            (bytes("keep-storage")?, 0, 0)
        };
    Ok(PruneOptions {
        before,
        id,
        parent: one("parent")?,
        kind: one("type")?,
        description: one("description")?,
        in_use: flag("inuse")?,
        shared: flag("shared")?,
        private: flag("private")?,
        reserved_space,
        max_used_space,
        min_free_space,
    })
}

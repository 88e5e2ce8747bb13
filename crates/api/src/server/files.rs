//! The container's files: `/containers/{id}/archive` (HEAD, GET, PUT: `docker cp`),
//! `/containers/{id}/changes` (`docker diff`), `/containers/{id}/export` and `/commit`.

use base64::Engine as _;
use berth_api_types::container;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};
use super::Ctx;
use berth_engine::containers::files::{CommitOptions, PathStat};
use berth_image::Reference;

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn path_param(ctx: &Ctx) -> ApiResult<String> {
    match ctx.query.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("path is required")),
    }
}

/// The stat as moby sends it: base64 of its JSON.
fn with_stat(mut resp: Response<Body>, stat: &PathStat) -> Response<Body> {
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(stat).unwrap_or_default());
    if let Ok(v) = encoded.parse() {
        resp.headers_mut().insert(STAT_HEADER, v);
    }
    resp
}

/// HEAD /containers/{id}/archive.
pub(super) async fn stat(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let path = path_param(ctx)?;
    let stat = ctx
        .blocking(move |e| Ok(e.container_stat_path(&name, &path)?))
        .await?;
    Ok(with_stat(body::empty(StatusCode::OK), &stat))
}

/// GET /containers/{id}/archive: the stat header, then the tar stream.
pub(super) async fn get(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let path = path_param(ctx)?;
    let archive = ctx
        .blocking(move |e| Ok(e.container_archive(&name, &path)?))
        .await?;
    let stat = archive.stat.clone();
    let (resp, writer) = body::streamed("application/x-tar");
    tokio::task::spawn_blocking(move || {
        if let Err(e) = archive.write_to(writer) {
            tracing::warn!("archive of a container path: {e}");
        }
    });
    Ok(with_stat(resp, &stat))
}

/// PUT /containers/{id}/archive: extract the body into the directory `path`.
pub(super) async fn put(ctx: &Ctx, name: String, body_in: Incoming) -> ApiResult<Response<Body>> {
    let path = path_param(ctx)?;
    let no_overwrite = ctx.query.bool("noOverwriteDirNonDir");
    let copy_uid_gid = ctx.query.bool("copyUIDGID");
    let reader = body::reader(body_in);
    ctx.blocking(move |e| {
        Ok(e.container_extract(&name, &path, no_overwrite, copy_uid_gid, reader)?)
    })
    .await?;
    Ok(body::empty(StatusCode::OK))
}

/// GET /containers/{id}/changes.
pub(super) async fn changes(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let changes = ctx
        .blocking(move |e| Ok(e.container_changes(&name)?))
        .await?;
    let list: Vec<container::FilesystemChange> = changes
        .into_iter()
        .map(|c| container::FilesystemChange {
            kind: c.kind as u8,
            path: c.path,
        })
        .collect();
    // null when nothing changed, as dockerd's nil slice.
    let list = (!list.is_empty()).then_some(list);
    Ok(body::json(StatusCode::OK, &list))
}

/// GET /containers/{id}/export.
pub(super) async fn export(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let archive = ctx
        .blocking(move |e| {
            let archive = e.container_export(&name)?;
            Ok(archive)
        })
        .await?;
    let (resp, writer) = body::streamed("application/x-tar");
    tokio::task::spawn_blocking(move || {
        if let Err(e) = archive.write_to(writer) {
            tracing::warn!("export of a container: {e}");
        }
    });
    Ok(resp)
}

/// POST /commit?container=...: 201 with the new image's id.
pub(super) async fn commit(ctx: &Ctx, body_in: Incoming) -> ApiResult<Response<Body>> {
    let container = ctx
        .query
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("container is required"))?
        .to_string();
    let tag = match ctx.query.get("repo").filter(|r| !r.is_empty()) {
        Some(repo) => {
            let full = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            };
            Some(Reference::parse(&full)?.with_default_tag())
        }
        None => None,
    };
    // Docker pauses unless told not to (an absent `pause` is true since API 1.13).
    let pause = match ctx.query.get("pause") {
        None | Some("") => true,
        Some(_) => ctx.query.bool("pause"),
    };
    let config = match body::read_json(body_in, 1 << 20).await? {
        Value::Object(m) if !m.is_empty() => Some(m),
        _ => None,
    };
    let opts = CommitOptions {
        tag,
        comment: ctx.query.get("comment").unwrap_or_default().to_string(),
        author: ctx.query.get("author").unwrap_or_default().to_string(),
        changes: ctx.query.all("changes"),
        pause,
        config,
    };
    // The engine sends the container's `commit` event (dockerd sends no image event).
    let record = ctx
        .blocking(move |e| Ok(e.commit_container(&container, &opts)?))
        .await?;
    Ok(body::json(
        StatusCode::CREATED,
        &container::CommitResponse {
            id: record.id.to_string(),
        },
    ))
}

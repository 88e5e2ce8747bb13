//! The image routes: list, inspect, history, tag, remove, prune, load, save, import.

use std::collections::HashMap;

use berth_api_types::image::{
    DeleteResponse, GraphDriverData, HistoryResponseItem, InspectResponse, JsonMessage,
    JsonProgress, Metadata, PruneReport, RootFs, Summary,
};
use berth_engine::filters::Filters;
use berth_engine::images::{ImageView, LIST_FILTERS, PRUNE_FILTERS};
use berth_image::{Reference, Removal};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};
use super::progress::{self, Event};
use super::{compat, Ctx};
use crate::version::ApiVersion;

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// One entry of GET /images/json.
pub(super) fn summary(v: &ImageView, version: ApiVersion) -> Summary {
    let mut s = Summary {
        containers: -1,
        created: v.created_unix,
        id: v.image.record.id.to_string(),
        labels: (!v.labels.is_empty()).then(|| v.labels.clone()),
        parent_id: String::new(),
        repo_digests: v.image.familiar_repo_digests(),
        repo_tags: v.image.familiar_tags(),
        shared_size: -1,
        size: v.image.record.size,
        virtual_size: None,
    };
    compat::image_summary(&mut s, version);
    s
}

/// `system df`'s per-image figures, as dockerd computes them: Containers (how many
/// containers use the image) and SharedSize.
pub(super) fn count_usage(
    summaries: &mut [Summary],
    views: &[ImageView],
    containers: &[berth_engine::containers::ContainerRecord],
    snapshot_sizes: &HashMap<String, u64>,
) {
    for (s, v) in summaries.iter_mut().zip(views) {
        let id = v.image.record.id.as_str();
        s.containers = containers.iter().filter(|r| r.image == id).count() as i64;
    }
    shared_sizes(summaries, views, snapshot_sizes);
}

/// Each image's SharedSize: the bytes of its layers that another image has too.
fn shared_sizes(
    summaries: &mut [Summary],
    views: &[ImageView],
    snapshot_sizes: &HashMap<String, u64>,
) {
    let mut images_per_layer: HashMap<&str, usize> = HashMap::new();
    for v in views {
        for l in &v.image.record.layers {
            *images_per_layer.entry(l.chain_id.as_str()).or_default() += 1;
        }
    }
    for (s, v) in summaries.iter_mut().zip(views) {
        let shared: u64 = v
            .image
            .record
            .layers
            .iter()
            .filter(|l| {
                images_per_layer
                    .get(l.chain_id.as_str())
                    .is_some_and(|n| *n > 1)
            })
            .filter_map(|l| snapshot_sizes.get(l.chain_id.as_str()))
            .sum();
        s.shared_size = i64::try_from(shared).unwrap_or(i64::MAX);
    }
}

pub(super) async fn list(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filters = Filters::parse(ctx.query.get("filters"), LIST_FILTERS)?;
    let version = ctx.version;
    let all = ctx.query.bool("all");
    // `shared-size=1`: SharedSize computed (-1 otherwise, as dockerd).
    let shared = ctx.query.bool("shared-size");
    let list = ctx
        .blocking(move |e| {
            let mut views = e.list_images(&filters)?;
            if !all {
                // dockerd shows its builds' intermediate images only with -a.
                let hidden = e.builder.intermediate_images();
                views.retain(|v| !v.image.tags.is_empty() || !hidden.contains(&v.image.record.id));
            }
            let mut list: Vec<Summary> = views.iter().map(|v| summary(v, version)).collect();
            if shared {
                shared_sizes(&mut list, &views, &e.images.snapshot_sizes()?);
            }
            Ok(list)
        })
        .await?;
    Ok(body::json(StatusCode::OK, &list))
}

pub(super) async fn inspect(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let version = ctx.version;
    let platform = if compat::inspect_platform(version) {
        ctx.query.json_platform()?
    } else {
        None
    };
    if platform.is_some() && ctx.query.bool("manifests") {
        return Err(ApiError::bad_request(
            "conflicting options: manifests and platform options cannot both be set",
        ));
    }
    let out = ctx
        .blocking(move |e| {
            let view = e.image_view(e.image_of_platform(&name, platform.as_ref())?)?;
            let config = e.images.config(&view.image.record)?;
            let lower: Vec<String> = view
                .image
                .record
                .layers
                .iter()
                .rev()
                .map(|l| e.images.snapshot_dir(&l.chain_id).display().to_string())
                .collect();
            let rec = &view.image.record;
            let mut v = InspectResponse {
                id: rec.id.to_string(),
                repo_tags: view.image.familiar_tags(),
                repo_digests: view.image.familiar_repo_digests(),
                parent: String::new(),
                comment: config
                    .history_entries()
                    .last()
                    .and_then(|h| h.comment().clone())
                    .unwrap_or_default(),
                created: Some(view.created.clone().unwrap_or_else(|| ZERO_TIME.into())),
                docker_version: config
                    .extra
                    .get("docker_version")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                author: config.author.clone().unwrap_or_default(),
                config: config.config_value(),
                architecture: config.architecture.to_string(),
                variant: config.variant.clone(),
                os: config.os.to_string(),
                size: rec.size,
                graph_driver: GraphDriverData {
                    data: [("LowerDir".to_string(), lower.join(":"))].into(),
                    name: "overlay2".into(),
                },
                root_fs: RootFs {
                    r#type: "layers".into(),
                    layers: rec.layers.iter().map(|l| l.diff_id.to_string()).collect(),
                },
                metadata: Metadata {
                    last_tag_time: rec
                        .last_tag_time
                        .map_or_else(|| ZERO_TIME.to_string(), rfc3339),
                },
                ..InspectResponse::default()
            };
            compat::image_inspect(&mut v, version, || {
                config
                    .extra
                    .get("container_config")
                    .cloned()
                    .unwrap_or_default()
            });
            Ok(v)
        })
        .await?;
    Ok(body::json(StatusCode::OK, &out))
}

pub(super) async fn history(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let platform = if compat::image_platform(ctx.version) {
        ctx.query.json_platform()?
    } else {
        None
    };
    let entries = ctx
        .blocking(move |e| {
            let image = e.image_of_platform(&name, platform.as_ref())?;
            Ok(e.images.history(&image)?)
        })
        .await?;
    let list: Vec<HistoryResponseItem> = entries
        .into_iter()
        .map(|h| HistoryResponseItem {
            comment: h.comment,
            created: berth_engine::images::unix_time(h.created.as_deref()),
            created_by: h.created_by,
            id: h
                .id
                .map_or_else(|| "<missing>".to_string(), |d| d.to_string()),
            size: h.size,
            tags: (!h.tags.is_empty()).then_some(h.tags),
        })
        .collect();
    Ok(body::json(StatusCode::OK, &list))
}

pub(super) async fn tag(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let repo = ctx
        .query
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("repository name (repo) is required"))?;
    let target = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let reference = Reference::parse(&target)?;
    if reference.digest.is_some() {
        return Err(ApiError::bad_request(format!(
            "refusing to create a tag with a digest reference: {target}"
        )));
    }
    ctx.blocking(move |e| {
        e.images.tag(&name, &reference)?;
        let id = e.images.resolve(&name)?.record.id.to_string();
        // Named as moby's tag event names it (the familiar form, as untag's).
        let name = reference.with_default_tag().familiar_string();
        e.image_event("tag", &id, &name);
        Ok(())
    })
    .await?;
    Ok(body::empty(StatusCode::CREATED))
}

pub(super) async fn remove(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let force = ctx.query.bool("force");
    let prune = !ctx.query.bool("noprune");
    // API 1.50: the image must be of the platform given (a store of one platform per
    // image, as dockerd's graphdriver one, deletes the image whole).
    let platform = one_platform(
        ctx,
        "platforms",
        compat::delete_platforms(ctx.version),
        "multiple platforms are not supported",
    )?;
    let removed = ctx
        .blocking(move |e| {
            e.image_of_platform(&name, platform.as_ref())?;
            let removed = e.remove_image(&name, force, prune)?;
            publish_removals(e, &removed);
            Ok(removed)
        })
        .await?;
    Ok(body::json(StatusCode::OK, &removals(&removed)))
}

/// untag and delete events, as Docker publishes them.
fn publish_removals(engine: &berth_engine::Engine, list: &[Removal]) {
    for r in list {
        match r {
            Removal::Untagged(t) => engine.image_event("untag", t, t),
            Removal::Deleted(d) => engine.image_event("delete", &d.to_string(), ""),
        }
    }
}

fn removals(list: &[Removal]) -> Vec<DeleteResponse> {
    list.iter()
        .map(|r| match r {
            Removal::Untagged(t) => DeleteResponse::untagged(t.as_str()),
            Removal::Deleted(d) => DeleteResponse::deleted(d.to_string()),
        })
        .collect()
}

pub(super) async fn prune(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filters = Filters::parse(ctx.query.get("filters"), PRUNE_FILTERS)?;
    let (removed, space) = ctx
        .blocking(move |e| {
            Ok({
                let r = e.prune_images(&filters)?;
                publish_removals(e, &r.0);
                r
            })
        })
        .await?;
    let report = PruneReport {
        images_deleted: (!removed.is_empty()).then(|| removals(&removed)),
        space_reclaimed: space,
    };
    Ok(body::json(StatusCode::OK, &report))
}

pub(super) async fn load(ctx: &Ctx, body_in: Incoming) -> ApiResult<Response<Body>> {
    use berth_image::archive::Progress;
    let quiet = ctx.query.bool("quiet");
    let only = save_load_platform(ctx)?;
    let reader = body::reader(body_in);
    let (tx, rx) = progress::channel();
    let engine = ctx.state.engine.clone();
    tokio::task::spawn_blocking(move || {
        let send = |m: JsonMessage| {
            let _ = tx.send(Event::message(m));
        };
        let mut progress = |p: Progress| match p {
            Progress::Layer {
                diff_id,
                present,
                bytes,
            } if !quiet => {
                let status = if present {
                    "Layer already exists"
                } else {
                    "Loading layer"
                };
                let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
                send(JsonMessage {
                    progress: Some(JsonProgress {
                        current: bytes,
                        total: bytes,
                        ..JsonProgress::default()
                    }),
                    id: diff_id.short().to_string(),
                    ..JsonMessage::status(status)
                });
            }
            Progress::Loaded { name, tagged } => {
                engine.image_event("load", &name, &name);
                let text = if tagged {
                    format!("Loaded image: {name}\n")
                } else {
                    format!("Loaded image ID: {name}\n")
                };
                send(JsonMessage::stream(text));
            }
            _ => {}
        };
        let loaded =
            berth_image::archive::load(&engine.images, reader, only.as_ref(), &mut progress);
        if let Err(e) = loaded {
            let _ = tx.send(Event::Failed(e.into()));
        }
    });
    progress::respond(rx, progress::Rule::AlwaysStream).await
}

/// The repeatable JSON platform `key` of a request (ignored where the client's version
/// predates it: `supported`): one at the most, as moby's graphdriver store (one platform per
/// image) takes; several are refused with `several`, moby's words.
fn one_platform(
    ctx: &Ctx,
    key: &str,
    supported: bool,
    several: &str,
) -> ApiResult<Option<berth_image::Platform>> {
    if !supported {
        return Ok(None);
    }
    let mut platforms = ctx.query.json_platforms(key)?;
    if platforms.len() > 1 {
        return Err(ApiError::bad_request(several));
    }
    Ok(platforms.pop())
}

/// Save's and load's `platform` (API 1.48).
fn save_load_platform(ctx: &Ctx) -> ApiResult<Option<berth_image::Platform>> {
    one_platform(
        ctx,
        "platform",
        compat::image_platform(ctx.version),
        "multiple platforms not supported for this image store; use a multi-platform image store such as containerd-snapshotter",
    )
}

/// GET /images/get and /images/{name}/get: a tar stream. Names are checked first, so an
/// unknown image is a 404 rather than a broken stream.
pub(super) async fn save(ctx: &Ctx, names: Vec<String>) -> ApiResult<Response<Body>> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    let only = save_load_platform(ctx)?;
    let check = names.clone();
    let ids = ctx
        .blocking(move |e| {
            check
                .iter()
                .map(|n| {
                    let image = e.images.resolve(n)?;
                    if let Some(wanted) = &only {
                        if !wanted.served_by(&e.images.config(&image.record)?.platform()) {
                            return Err(ApiError::internal(format!(
                                "no suitable export target found for platform {wanted}"
                            )));
                        }
                    }
                    Ok(image.record.id.to_string())
                })
                .collect::<ApiResult<Vec<String>>>()
        })
        .await?;
    let (resp, writer) = body::streamed("application/x-tar");
    let engine = ctx.state.engine.clone();
    tokio::task::spawn_blocking(move || {
        match berth_image::archive::save(&engine.images, &names, writer) {
            Ok(()) => {
                for (id, name) in ids.iter().zip(&names) {
                    engine.image_event("save", id, name);
                }
            }
            Err(err) => tracing::error!("save {names:?}: {err}"),
        }
    });
    Ok(resp)
}

/// POST /images/create: import from the request body (`fromSrc=-`); `fromImage` (a pull)
/// is routed to the registry routes.
pub(super) async fn create(ctx: &Ctx, body_in: Incoming) -> ApiResult<Response<Body>> {
    let reader = body::reader(body_in);
    match ctx.query.get("fromSrc") {
        Some("-") => {}
        Some(url) => {
            return Err(ApiError::bad_request(format!(
                "importing from {url} is not supported: send the tarball in the request body (fromSrc=-)"
            )))
        }
        None => return Err(ApiError::bad_request("fromImage or fromSrc is required")),
    }
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
    let changes = ctx.query.all("changes");
    let message = ctx.query.get("message").unwrap_or_default().to_string();
    let platform = ctx
        .query
        .platform()?
        .unwrap_or_else(berth_image::Platform::host);
    let record = ctx
        .blocking(move |e| {
            let name = tag.as_ref().map(|t| t.to_string()).unwrap_or_default();
            let record = e.import_image(reader, tag, &changes, &message, &platform)?;
            e.image_event("import", &record.id.to_string(), &name);
            Ok(record)
        })
        .await?;
    let done = JsonMessage::status(record.id.to_string());
    Ok(body::json(StatusCode::OK, &done))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moby 26.1 sends Container and ContainerConfig to clients below API 1.45, and
    /// VirtualSize below 1.44.
    #[test]
    fn inspect_members_by_version() {
        let shaped = |v: ApiVersion| {
            let mut i = InspectResponse {
                size: 7,
                ..InspectResponse::default()
            };
            compat::image_inspect(&mut i, v, || serde_json::json!({"Cmd": ["sh"]}));
            serde_json::to_value(&i).unwrap_or_default()
        };
        let v144 = shaped(ApiVersion(1, 44));
        assert_eq!(v144["Container"], "");
        assert_eq!(v144["ContainerConfig"]["Cmd"][0], "sh");
        assert!(v144.get("VirtualSize").is_none());
        let v145 = shaped(ApiVersion(1, 45));
        assert!(v145.get("Container").is_none() && v145.get("ContainerConfig").is_none());
        assert_eq!(shaped(ApiVersion(1, 43))["VirtualSize"], 7);
    }
}

//! The server: one hyper HTTP/1 connection per client on the unix socket, a router over
//! the version-stripped path, and handlers that run the synchronous engine on blocking
//! threads.

mod body;
mod build;
mod compat;
mod containers;
mod distribution;
mod error;
mod events;
mod exec;
mod files;
mod hijack;
mod images;
mod list_filters;
mod networks;
mod progress;
mod prune;
mod query;
mod stats;
mod system;
mod volumes;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

pub use body::Body;
use error::{ApiError, ApiResult};
use query::Query;

use crate::version::{self, ApiVersion};

/// Facts about the daemon that /info and /version report.
#[derive(Debug, Clone)]
pub struct DaemonInfo {
    pub id: String,
    pub name: String,
    pub server_version: String,
    pub data_root: String,
    pub storage_driver: String,
    pub default_runtime: String,
    pub runtimes: Vec<(String, String)>,
    pub insecure_registries: Vec<String>,
    /// As /info's SecurityOptions ("name=seccomp,profile=...").
    pub security_options: Vec<String>,
}

pub struct State {
    pub engine: Arc<berth_engine::Engine>,
    pub registry: Arc<berth_registry::Client>,
    pub info: DaemonInfo,
}

/// One request's context.
pub(crate) struct Ctx {
    pub state: Arc<State>,
    pub version: ApiVersion,
    pub query: Query,
}

impl Ctx {
    /// Run engine work on a blocking thread.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&berth_engine::Engine) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let engine = self.state.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
    }
}

/// Serve until `shutdown` resolves, then let the requests in flight finish (up to 10 s).
pub async fn serve(
    listeners: Vec<UnixListener>,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel::<tokio::net::UnixStream>(64);
    for listener in listeners {
        let tx = conn_tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if tx.send(stream).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!("accept: {e}"),
                }
            }
        });
    }
    drop(conn_tx);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            stream = conn_rx.recv() => {
                let Some(stream) = stream else { break };
                let state = state.clone();
                let mut stop = stop_rx.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::pin!(conn);
                    let result = tokio::select! {
                        r = conn.as_mut() => r,
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!("connection: {e}");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    let _ = stop_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("requests still running after 10 s; stopping anyway");
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let mut resp = match route(state, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::error!(%method, %path, status = e.status.as_u16(), "{}", e.message);
            }
            let error = berth_api_types::system::ErrorResponse { message: e.message };
            body::json(e.status, &error)
        }
    };
    let headers = resp.headers_mut();
    if let Ok(v) = version::MAX.to_string().parse() {
        headers.insert("Api-Version", v);
    }
    if let Ok(v) = format!("berth/{}", env!("CARGO_PKG_VERSION")).parse() {
        headers.insert(hyper::header::SERVER, v);
    }
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64);
    Ok(resp)
}

fn negotiate(requested: Option<&str>) -> ApiResult<ApiVersion> {
    let Some(v) = requested else {
        return Ok(version::MAX);
    };
    let parsed = ApiVersion::parse(v)
        .ok_or_else(|| ApiError::bad_request(format!("invalid API version {v:?}")))?;
    if parsed > version::MAX {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {}",
            version::MAX
        )));
    }
    if parsed < version::MIN {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            version::MIN
        )));
    }
    Ok(parsed)
}

async fn route(state: Arc<State>, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let (requested, path) = version::split_path(req.uri().path());
    let path = path.to_string();
    let version = negotiate(requested)?;
    let ctx = Ctx {
        state,
        version,
        query: Query::parse(req.uri().query()),
    };
    let method = req.method().clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => Ok(system::ping(&method)),
        (&Method::GET, ["version"]) => Ok(system::version(&ctx)),
        (&Method::GET, ["info"]) => system::info(&ctx).await,
        (&Method::GET, ["system", "df"]) => system::df(&ctx).await,
        (&Method::GET, ["events"]) => events::events(&ctx).await,
        (&Method::GET, ["images", "json"]) => images::list(&ctx).await,
        (&Method::POST, ["images", "load"]) => images::load(&ctx, req.into_body()).await,
        (&Method::GET, ["images", "get"]) => images::save(&ctx, ctx.query.all("names")).await,
        (&Method::POST, ["images", "create"]) if ctx.query.get("fromImage").is_some() => {
            distribution::pull(&ctx, req.headers()).await
        }
        (&Method::POST, ["images", "create"]) => images::create(&ctx, req.into_body()).await,
        (&Method::GET, ["images", "search"]) => Err(distribution::search()),
        (&Method::POST, ["auth"]) => distribution::login(&ctx, req.into_body()).await,
        (&Method::POST, ["images", "prune"]) => images::prune(&ctx).await,
        (_, ["images", rest @ ..]) if !rest.is_empty() => {
            images_by_name(&ctx, &method, rest, req.headers()).await
        }
        (&Method::POST, ["containers", "create"]) => {
            containers::create(&ctx, req.into_body()).await
        }
        (&Method::GET, ["containers", "json"]) => containers::list(&ctx).await,
        (&Method::POST, ["containers", "prune"]) => containers::prune(&ctx).await,
        (&Method::POST, ["networks", "prune"]) => networks::prune(&ctx).await,
        (&Method::POST, ["networks", "create"]) => networks::create(&ctx, req.into_body()).await,
        (&Method::DELETE, ["networks", id]) => networks::remove(&ctx, id.to_string()).await,
        (&Method::POST, ["networks", id, "connect"]) => {
            networks::connect(&ctx, id.to_string(), req.into_body()).await
        }
        (&Method::POST, ["networks", id, "disconnect"]) => {
            networks::disconnect(&ctx, id.to_string(), req.into_body()).await
        }
        (&Method::GET, ["networks"]) => networks::list(&ctx).await,
        (&Method::GET, ["networks", id]) => networks::inspect(&ctx, id.to_string()).await,
        (&Method::POST, ["volumes", "prune"]) => volumes::prune(&ctx).await,
        (&Method::GET, ["volumes"]) => volumes::list(&ctx).await,
        (&Method::POST, ["volumes", "create"]) => volumes::create(&ctx, req.into_body()).await,
        (&Method::GET, ["volumes", name]) => volumes::inspect(&ctx, name.to_string()).await,
        (&Method::DELETE, ["volumes", name]) => volumes::remove(&ctx, name.to_string()).await,
        (&Method::POST, ["build", "prune"]) => build::prune(&ctx).await,
        (&Method::POST, ["build"]) => build::build(&ctx, req).await,
        (&Method::DELETE, ["containers", name]) => containers::remove(&ctx, name.to_string()).await,
        (&Method::POST, ["containers", name, "attach"]) => {
            containers::attach(&ctx, name.to_string(), req).await
        }
        (&Method::PUT, ["containers", name, "archive"]) => {
            files::put(&ctx, name.to_string(), req.into_body()).await
        }
        (&Method::POST, ["commit"]) => files::commit(&ctx, req.into_body()).await,
        (&Method::POST, ["containers", name, "exec"]) => {
            exec::create(&ctx, name.to_string(), req.into_body()).await
        }
        (&Method::POST, ["exec", id, "start"]) => exec::start(&ctx, id.to_string(), req).await,
        (&Method::GET, ["exec", id, "json"]) => exec::inspect(&ctx, id.to_string()).await,
        (&Method::POST, ["exec", id, "resize"]) => exec::resize(&ctx, id.to_string()).await,
        (&Method::POST, ["containers", name, "update"]) => {
            containers::update(&ctx, name.to_string(), req.into_body()).await
        }
        (_, ["containers", name, action]) => container_action(&ctx, &method, name, action).await,
        (_, [area, ..]) => match missing_area(area) {
            Some(what) => Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("{what} not supported by berth yet"),
            )),
            None => Err(ApiError::not_found("page not found")),
        },
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// Parts of the Engine API berth does not have yet, by the first segment of their paths:
/// clients are told what is missing rather than "page not found".
fn missing_area(segment: &str) -> Option<&'static str> {
    Some(match segment {
        "networks" => "these network operations are",
        "volumes" => "cluster volumes are",
        "swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs" => "swarm mode is",
        "plugins" => "plugins are",
        "session" | "grpc" => "BuildKit sessions are",
        "distribution" => "registry distribution inspection is",
        _ => return None,
    })
}

/// `/containers/{name}/{action}`.
async fn container_action(
    ctx: &Ctx,
    method: &Method,
    name: &str,
    action: &str,
) -> ApiResult<Response<Body>> {
    let name = name.to_string();
    match (method, action) {
        (&Method::POST, "start") => containers::start(ctx, name).await,
        (&Method::GET, "json") => containers::inspect(ctx, name).await,
        (&Method::POST, "wait") => containers::wait(ctx, name).await,
        (&Method::POST, "stop") => containers::stop(ctx, name).await,
        (&Method::POST, "kill") => containers::kill(ctx, name).await,
        (&Method::GET, "logs") => containers::logs(ctx, name).await,
        (&Method::POST, "resize") => containers::resize(ctx, name).await,
        (&Method::POST, "restart") => containers::restart(ctx, name).await,
        (&Method::POST, "pause") => containers::pause(ctx, name, true).await,
        (&Method::POST, "unpause") => containers::pause(ctx, name, false).await,
        (&Method::POST, "rename") => containers::rename(ctx, name).await,
        (&Method::GET, "top") => containers::top(ctx, name).await,
        (&Method::GET, "stats") => stats::stats(ctx, name).await,
        (&Method::HEAD, "archive") => files::stat(ctx, name).await,
        (&Method::GET, "archive") => files::get(ctx, name).await,
        (&Method::GET, "changes") => files::changes(ctx, name).await,
        (&Method::GET, "export") => files::export(ctx, name).await,
        (_, "attach" | "exec" | "update") => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("{action} is not supported by berth yet"),
        )),
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `/images/{name}/...`, where the name itself may contain slashes.
async fn images_by_name(
    ctx: &Ctx,
    method: &Method,
    rest: &[&str],
    headers: &hyper::HeaderMap,
) -> ApiResult<Response<Body>> {
    let joined = rest.join("/");
    let action = |suffix: &str| {
        joined
            .strip_suffix(suffix)
            .filter(|n| !n.is_empty())
            .map(String::from)
    };
    match *method {
        Method::GET => {
            if let Some(name) = action("/json") {
                return images::inspect(ctx, name).await;
            }
            if let Some(name) = action("/history") {
                return images::history(ctx, name).await;
            }
            if let Some(name) = action("/get") {
                return images::save(ctx, vec![name]).await;
            }
        }
        Method::POST => {
            if let Some(name) = action("/tag") {
                return images::tag(ctx, name).await;
            }
            if let Some(name) = action("/push") {
                return distribution::push(ctx, name, headers).await;
            }
        }
        Method::DELETE => return images::remove(ctx, joined).await,
        _ => {}
    }
    Err(ApiError::not_found("page not found"))
}

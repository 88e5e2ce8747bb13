//! `POST /build` (the legacy builder's endpoint, which the docker CLI uses without buildx)
//! and `POST /build/prune`. The answer is moby's JSON message stream: `stream` text
//! ("Step 1/5 : FROM ...", " ---> id"), `aux` with the image ID, and a failure as the
//! stream's last message with `errorDetail` (its `code` the failed command's status, which
//! the docker CLI exits with); a failure before any output is the response's status.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};
use super::Ctx;
use berth_api_types::container::{HostConfig, Ulimit};
use berth_api_types::image::{Aux, BuildResult, JsonMessage};
use berth_api_types::system::{AuthConfig, BuildCache, BuildCachePruneReport};
use berth_builder::{Message, Options};
use berth_image::Reference;

enum Event {
    Message(Box<JsonMessage>),
    Failed(ApiError, Option<i32>),
}

impl Event {
    /// A message (boxed: it is far larger than a failure).
    fn message(m: JsonMessage) -> Event {
        Event::Message(Box::new(m))
    }
}

/// A JSON object of strings in a query parameter (`buildargs`, `labels`).
fn json_map(ctx: &Ctx, key: &str) -> ApiResult<BTreeMap<String, Option<String>>> {
    match ctx.query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(text) => {
            serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("{key}: {e}")))
        }
    }
}

/// `berth-secrets` (berth build --secret): secret ids to files on this host. Only the berth
/// CLI sends it; the socket's users are root's equals, so the daemon may read the files.
fn secrets(ctx: &Ctx) -> ApiResult<HashMap<String, std::path::PathBuf>> {
    Ok(json_map(ctx, "berth-secrets")?
        .into_iter()
        .filter_map(|(k, v)| Some((k, std::path::PathBuf::from(v?))))
        .collect())
}

fn options(ctx: &Ctx) -> ApiResult<(Options, bool)> {
    let q = &ctx.query;
    if q.get("version") == Some("2") {
        return Err(ApiError::bad_request(
            "BuildKit sessions (version=2) are not supported by berth; its builder serves the classic endpoint (DOCKER_BUILDKIT=0)",
        ));
    }
    if q.bool("squash") {
        return Err(ApiError::bad_request("--squash is not supported by berth"));
    }
    let mut tags = Vec::new();
    for t in q.all("t").into_iter().filter(|t| !t.is_empty()) {
        let r = Reference::parse(&t)?;
        if r.digest.is_some() {
            return Err(ApiError::bad_request(format!(
                "invalid tag {t:?}: a tag cannot carry a digest"
            )));
        }
        tags.push(r.with_default_tag());
    }
    // RUN steps go on the default bridge, as under dockerd's legacy builder (`none` when
    // berthd has no bridge: `bridge: none`), or on the network the build names.
    let network = match q.get("networkmode").unwrap_or_default() {
        "" | "default"
            if ctx
                .state
                .engine
                .networks()
                .is_some_and(|n| n.default.is_some()) =>
        {
            "bridge".to_string()
        }
        "" | "default" => "none".to_string(),
        other => other.to_string(),
    };
    let labels = json_map(ctx, "labels")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let opts = Options {
        dockerfile: q.get("dockerfile").unwrap_or("Dockerfile").to_string(),
        tags,
        build_args: json_map(ctx, "buildargs")?,
        labels,
        target: q.get("target").filter(|t| !t.is_empty()).map(String::from),
        no_cache: q.bool("nocache"),
        // The docker CLI sends rm=1 unless --rm=false; absent means on, as in moby.
        remove: q.get("rm").is_none_or(|_| q.bool("rm")),
        force_remove: q.bool("forcerm"),
        network,
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(String::from),
        secrets: secrets(ctx)?,
        cancel: Arc::new(AtomicBool::new(false)),
        puller: None,
        always_pull: false,
        cache_from: match q.get("cachefrom").filter(|c| !c.is_empty()) {
            None => Vec::new(),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("cachefrom: {e}")))?,
        },
    };
    Ok((opts, q.bool("q")))
}

/// An integer member of the query (absent or empty: 0, as moby's Int64ValueOrZero).
fn int(ctx: &Ctx, key: &str) -> ApiResult<i64> {
    match ctx.query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid {key} value {v:?}: not an integer"))
        }),
    }
}

/// The HostConfig every RUN container of the build starts from: the build's resources,
/// shm size, ulimits, cgroup parent and extra hosts, as moby's hostConfigFromOptions.
fn step_host(ctx: &Ctx) -> ApiResult<HostConfig> {
    let q = &ctx.query;
    if !q.all("securityopt").iter().all(|o| o.is_empty()) {
        // moby's own answer on Linux (security options on build are Windows' credentials).
        return Err(ApiError::bad_request(
            "The daemon on this platform does not support setting security options on build",
        ));
    }
    if let Some(i) = q.get("isolation").filter(|i| !matches!(*i, "" | "default")) {
        return Err(ApiError::bad_request(format!(
            "Unsupported isolation: {i:?}"
        )));
    }
    let ulimits: Vec<Ulimit> = match q.get("ulimits").filter(|u| !u.is_empty()) {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("ulimits: {e}")))?,
    };
    let text = |key: &str| q.get(key).unwrap_or_default().to_string();
    Ok(HostConfig {
        memory: int(ctx, "memory")?,
        memory_swap: int(ctx, "memswap")?,
        cpu_shares: int(ctx, "cpushares")?,
        cpu_period: int(ctx, "cpuperiod")?,
        cpu_quota: int(ctx, "cpuquota")?,
        cpuset_cpus: text("cpusetcpus"),
        cpuset_mems: text("cpusetmems"),
        cgroup_parent: text("cgroupparent"),
        shm_size: int(ctx, "shmsize")?,
        ulimits,
        extra_hosts: q
            .all("extrahosts")
            .into_iter()
            .filter(|h| !h.is_empty())
            .collect(),
        ..HostConfig::default()
    })
}

fn status_of(e: &berth_builder::Error) -> StatusCode {
    use berth_builder::Error as E;
    match e {
        E::Parse { .. } | E::Ignore { .. } | E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The credentials of `X-Registry-Config` (the docker CLI's logins, by server) for the
/// registry of `reference`.
fn credentials_for(
    logins: &BTreeMap<String, AuthConfig>,
    reference: &Reference,
) -> berth_registry::Credentials {
    let domain = reference.domain();
    let hub = domain == "docker.io";
    logins
        .iter()
        .find(|(server, _)| {
            let host = server
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default();
            host == domain || (hub && host.ends_with("docker.io"))
        })
        .and_then(|(_, v)| super::distribution::credentials_of(v).ok())
        .unwrap_or_default()
}

/// Pulls for the builder: a missing base image (every one with `--pull`), with the logins
/// the docker CLI sent, its progress in the build's stream.
fn puller(
    ctx: &Ctx,
    headers: &hyper::HeaderMap,
    tx: mpsc::UnboundedSender<Event>,
    quiet: bool,
) -> ApiResult<berth_builder::build::Puller> {
    let logins: BTreeMap<String, AuthConfig> = match headers
        .get("x-registry-config")
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
    {
        None => BTreeMap::new(),
        Some(text) => super::distribution::decode_base64(text)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ApiError::bad_request("X-Registry-Config is not base64 JSON"))?,
    };
    let handle = tokio::runtime::Handle::current();
    let state = ctx.state.clone();
    Ok(Arc::new(move |name: &str| {
        let step = |e: String| berth_builder::Error::Step(e);
        let reference = Reference::parse(name)
            .map_err(|e| step(e.to_string()))?
            .with_default_tag();
        let progress_tx = tx.clone();
        let transfer = berth_registry::Transfer {
            client: state.registry.clone(),
            store: state.engine.images.clone(),
            credentials: credentials_for(&logins, &reference),
            progress: Arc::new(move |p: berth_registry::Progress| {
                if !quiet {
                    let _ =
                        progress_tx.send(Event::message(super::distribution::progress_message(&p)));
                }
            }),
        };
        let pulled = handle
            .block_on(transfer.pull(&reference, &berth_registry::Platform::host()))
            .map_err(|e| step(format!("pulling {name}: {e}")))?;
        if !quiet {
            let _ = tx.send(Event::message(JsonMessage::status(format!(
                "Digest: {}",
                pulled.digest
            ))));
        }
        let shown = reference.familiar_string();
        state.engine.image_event("pull", &shown, &shown);
        Ok(())
    }))
}

/// POST /build.
pub(super) async fn build(ctx: &Ctx, req: hyper::Request<Incoming>) -> ApiResult<Response<Body>> {
    // A refused request's context is drained first (up to 1 MiB), so the client sees why.
    let ((mut opts, quiet), step_host) = match options(ctx).and_then(|o| Ok((o, step_host(ctx)?))) {
        Ok(prepared) => prepared,
        Err(e) => {
            body::drain(req.into_body(), 1 << 20).await;
            return Err(e);
        }
    };
    let cancel = opts.cancel.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    opts.puller = Some(puller(ctx, req.headers(), tx.clone(), quiet)?);
    opts.always_pull = ctx.query.bool("pull");
    // `remote=URL`: the daemon fetches the context (the request's body is not read).
    let remote = ctx
        .query
        .get("remote")
        .filter(|r| !r.is_empty())
        .map(String::from);
    let reader = body::reader(req.into_body());
    let engine = ctx.state.engine.clone();
    tokio::task::spawn_blocking(move || {
        let input: Box<dyn std::io::Read> = match remote {
            None => Box::new(reader),
            Some(url) => match berth_builder::build::remote::fetch(&url, &opts.dockerfile) {
                Ok(tar) => Box::new(std::io::Cursor::new(tar)),
                Err(e) => {
                    let _ = tx.send(Event::Failed(
                        ApiError::new(status_of(&e), e.to_string()),
                        None,
                    ));
                    return;
                }
            },
        };
        let send = |v: JsonMessage| {
            let _ = tx.send(Event::message(v));
        };
        // With -q the output is held back, and given only with a failure (moby's rule).
        let mut held = Vec::new();
        let mut out = |m: Message| match m {
            Message::Stream(s) if quiet => held.push(s),
            Message::Stream(s) => send(JsonMessage::stream(s)),
            Message::Aux(id) => send(JsonMessage {
                aux: Some(Aux::Build(BuildResult { id: id.to_string() })),
                ..JsonMessage::default()
            }),
            // The engine publishes it as an image event; nothing for the build's stream.
            Message::Created(_) => {}
        };
        match engine.build(input, &opts, &step_host, &mut out) {
            Ok(id) => {
                if quiet {
                    send(JsonMessage::stream(format!("{id}\n")));
                }
            }
            Err(e) => {
                tracing::info!(error = %e, "build failed");
                let code = match &e {
                    berth_builder::Error::Command { code, .. } => Some(*code),
                    _ => None,
                };
                let _ = tx.send(Event::Failed(
                    ApiError::new(status_of(&e), e.to_string()),
                    code,
                ));
                for s in held {
                    send(JsonMessage::stream(s));
                }
            }
        }
    });
    respond(rx, cancel).await
}

fn error_line(e: &ApiError, code: Option<i32>) -> JsonMessage {
    JsonMessage::failure(e.message.as_str(), code)
}

/// A failure before the first message is the response's status (moby's
/// `if !output.Flushed() { return err }`); later ones are the stream's.
/// When the client goes (its connection closes), `cancel` is set.
async fn respond(
    mut rx: mpsc::UnboundedReceiver<Event>,
    cancel: Arc<AtomicBool>,
) -> ApiResult<Response<Body>> {
    let first = match rx.recv().await {
        Some(Event::Failed(e, None)) => return Err(e),
        Some(Event::Failed(e, code)) => error_line(&e, code),
        Some(Event::Message(m)) => *m,
        None => return Err(ApiError::internal("the build ended without a result")),
    };
    let (resp, out) = body::streamed_async("application/json");
    tokio::spawn(async move {
        let _ = out.send(Ok(body::message_line(&first))).await;
        loop {
            let event = tokio::select! {
                e = rx.recv() => e,
                () = out.closed() => None,
            };
            let Some(event) = event else { break };
            let line = match event {
                Event::Message(m) => *m,
                Event::Failed(e, code) => error_line(&e, code),
            };
            if out.send(Ok(body::message_line(&line))).await.is_err() {
                break;
            }
        }
        if out.is_closed() {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    Ok(resp)
}

/// POST /build/prune: the builder's cache entries are dropped (the intermediate images
/// they named become dangling, for `image prune`).
pub(super) async fn prune(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let opts = super::prune::build_prune_options(ctx)?;
    let engine = ctx.state.engine.clone();
    let dropped = tokio::task::spawn_blocking(move || engine.prune_build_cache(&opts))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let report = BuildCachePruneReport {
        caches_deleted: (!dropped.is_empty()).then_some(dropped),
        space_reclaimed: 0,
    };
    Ok(body::json(StatusCode::OK, &report))
}

/// The build cache as `system df` lists it (moby's BuildCache records): each step's entry
/// with the bytes its layer added, and each RUN --mount=type=cache directory.
pub(super) fn df_entries(engine: &berth_engine::Engine) -> Vec<BuildCache> {
    let time = |t: Option<std::time::SystemTime>| {
        t.map(|t| humantime::format_rfc3339_seconds(t).to_string())
    };
    engine
        .builder
        .cache_records()
        .into_iter()
        .map(|r| BuildCache {
            parents: r.parent.map(|p| vec![p]).unwrap_or_default(),
            r#type: r.kind.into(),
            description: r.description,
            in_use: r.in_use,
            shared: false,
            size: r.size,
            created_at: time(r.created),
            id: r.id,
        })
        .collect()
}

//! The registry routes: pull (`POST /images/create?fromImage=`), push
//! (`POST /images/{name}/push`), login (`POST /auth`) and search (refused).

use std::sync::Arc;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{alphabet, Engine as _};
use berth_api_types::image::{Aux, JsonMessage, JsonProgress, PushResult};
use berth_api_types::system::{AuthConfig, AuthenticateOkBody};
use berth_image::Reference;
use berth_registry::{Credentials, LayerState, Platform, Progress};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};
use super::progress::{self, Event, Sender};
use super::Ctx;

impl From<berth_registry::Error> for ApiError {
    fn from(e: berth_registry::Error) -> ApiError {
        use berth_registry::Error as E;
        let status = match e {
            // Image errors keep their own mapping (a missing image to push is a 404).
            E::Image(inner) => return inner.into(),
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            E::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// A refusal during a pull or push. Not a 401: the docker CLI answers a 401 by prompting
/// for a login, which is dockerd's behaviour only for `/auth`.
fn denied(e: berth_registry::Error, action: &str, reference: &Reference) -> ApiError {
    match e {
        berth_registry::Error::Unauthorized(m) => ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{action} access denied for {}, the registry may require 'login': {m}",
                reference.familiar_repository()
            ),
        ),
        other => other.into(),
    }
}

/// base64 as the docker CLI writes it (URL-safe) or as others do, padded or not.
pub(super) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::URL_SAFE, config)
        .decode(s.trim())
        .or_else(|_| GeneralPurpose::new(&alphabet::STANDARD, config).decode(s.trim()))
        .ok()
}

/// The JSON of a login: `X-Registry-Auth` and the body of `POST /auth`.
pub(super) fn credentials_of(v: &AuthConfig) -> ApiResult<Credentials> {
    let mut creds = Credentials {
        username: v.username.clone(),
        password: v.password.clone(),
    };
    if creds.username.is_empty() {
        if let Some((user, pass)) = decode_base64(&v.auth)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
        {
            creds = Credentials {
                username: user,
                password: pass,
            };
        }
    }
    if creds.username.is_empty() && !v.identity_token.is_empty() {
        return Err(ApiError::bad_request(
            "identity tokens are not supported by berth: log in with a username and password",
        ));
    }
    Ok(creds)
}

/// `X-Registry-Auth`: base64url JSON credentials; absent or `{}` is anonymous.
fn registry_auth(headers: &HeaderMap) -> ApiResult<Credentials> {
    let Some(header) = headers.get("x-registry-auth") else {
        return Ok(Credentials::default());
    };
    let text = header.to_str().unwrap_or_default();
    if text.is_empty() {
        return Ok(Credentials::default());
    }
    let json = decode_base64(text)
        .ok_or_else(|| ApiError::bad_request("X-Registry-Auth is not base64"))?;
    // As moby's DecodeAuthConfig: JSON that is not a login is a 400.
    let v: AuthConfig = serde_json::from_slice(&json)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))?;
    credentials_of(&v)
}

/// `fromImage` and `tag` as the docker CLI splits them: `busybox` + `latest`, or
/// `busybox` + `sha256:...`. Without either, every tag.
fn pull_reference(from_image: &str, tag: Option<&str>) -> ApiResult<Reference> {
    let name = match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{from_image}@{t}"),
        Some(t) => format!("{from_image}:{t}"),
        None => from_image.to_string(),
    };
    Ok(Reference::parse(&name)?)
}

/// A status line; one about a layer or tag (`id`) carries an empty progressDetail, as
/// moby's progress output.
fn message(status: impl Into<String>, id: Option<&str>) -> JsonMessage {
    match id {
        Some(id) => JsonMessage {
            id: id.to_string(),
            progress: Some(JsonProgress::default()),
            ..JsonMessage::status(status)
        },
        None => JsonMessage::status(status),
    }
}

/// Docker's words for a layer's state.
fn layer_message(id: &str, state: &LayerState) -> JsonMessage {
    let (status, detail) = match state {
        LayerState::Waiting => ("Pulling fs layer".to_string(), None),
        LayerState::AlreadyExists => ("Already exists".to_string(), None),
        LayerState::Downloading { current, total } => {
            ("Downloading".into(), Some((current, total)))
        }
        LayerState::DownloadComplete => ("Download complete".into(), None),
        LayerState::PullComplete => ("Pull complete".into(), None),
        LayerState::Preparing => ("Preparing".into(), None),
        LayerState::Uploading { current, total } => ("Pushing".into(), Some((current, total))),
        LayerState::Pushed => ("Pushed".into(), None),
        LayerState::MountedFrom(from) => (format!("Mounted from {from}"), None),
        LayerState::Exists => ("Layer already exists".into(), None),
    };
    let mut m = message(status, Some(id));
    if let Some((current, total)) = detail {
        let bytes = |n: &u64| i64::try_from(*n).unwrap_or(i64::MAX);
        m.progress = Some(JsonProgress {
            current: bytes(current),
            total: bytes(total),
            ..JsonProgress::default()
        });
    }
    m
}

pub(super) fn progress_message(p: &Progress) -> JsonMessage {
    match p {
        Progress::Pulling { repository, tag } => {
            message(format!("Pulling from {repository}"), Some(tag))
        }
        Progress::Pushing { repository } => message(
            format!("The push refers to repository [{repository}]"),
            None,
        ),
        Progress::Layer { id, state } => layer_message(id, state),
    }
}

fn sink(tx: &Sender) -> berth_registry::Sink {
    let tx = tx.clone();
    Arc::new(move |p: Progress| {
        let _ = tx.send(Event::message(progress_message(&p)));
    })
}

fn platform(ctx: &Ctx) -> ApiResult<Platform> {
    Ok(ctx.query.platform()?.unwrap_or_else(Platform::host))
}

/// POST /images/create?fromImage=...: pull, streaming Docker's progress messages.
pub(super) async fn pull(ctx: &Ctx, headers: &HeaderMap) -> ApiResult<Response<Body>> {
    let from_image = ctx.query.get("fromImage").unwrap_or_default();
    let reference = pull_reference(from_image, ctx.query.get("tag"))?;
    let (tx, rx) = progress::channel();
    let transfer = berth_registry::Transfer {
        client: ctx.state.registry.clone(),
        store: ctx.state.engine.images.clone(),
        credentials: registry_auth(headers)?,
        progress: sink(&tx),
    };
    let platform = platform(ctx)?;
    let engine = ctx.state.engine.clone();
    tokio::spawn(async move {
        if let Err(e) = pull_all(&transfer, &reference, &platform, &engine, &tx).await {
            let _ = tx.send(Event::Failed(e));
        }
    });
    progress::respond(rx, progress::Rule::StatusBeforeFirstMessage).await
}

/// The references a pull asks for: itself, or with no tag nor digest every tag.
async fn pull_all(
    transfer: &berth_registry::Transfer,
    reference: &Reference,
    platform: &Platform,
    engine: &berth_engine::Engine,
    tx: &Sender,
) -> ApiResult<()> {
    let references = if reference.tag.is_none() && reference.digest.is_none() {
        let tags = berth_registry::tags(
            &transfer.client,
            reference.domain(),
            reference.path(),
            transfer.credentials.clone(),
        )
        .await
        .map_err(|e| denied(e, "pull", reference))?;
        tags.into_iter()
            .map(|t| Reference::parse(&format!("{}:{t}", reference.repository)))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        vec![reference.clone()]
    };
    let mut newer = false;
    for r in &references {
        let pulled = transfer
            .pull(r, platform)
            .await
            .map_err(|e| denied(e, "pull", r))?;
        let _ = tx.send(Event::message(message(
            format!("Digest: {}", pulled.digest),
            None,
        )));
        newer |= !pulled.up_to_date;
        let name = shown(r);
        engine.image_event("pull", &name, &name);
    }
    let name = if references.len() == 1 {
        shown(reference)
    } else {
        reference.familiar_repository()
    };
    let status = if newer {
        format!("Status: Downloaded newer image for {name}")
    } else {
        format!("Status: Image is up to date for {name}")
    };
    let _ = tx.send(Event::message(message(status, None)));
    Ok(())
}

/// `busybox:latest`, `localhost:5000/app@sha256:...`.
fn shown(r: &Reference) -> String {
    let repo = r.familiar_repository();
    match (&r.tag, &r.digest) {
        (_, Some(d)) => format!("{repo}@{d}"),
        (Some(t), None) => format!("{repo}:{t}"),
        (None, None) => repo,
    }
}

/// POST /images/{name}/push?tag=: push one tag, or every tag of the repository.
pub(super) async fn push(
    ctx: &Ctx,
    name: String,
    headers: &HeaderMap,
) -> ApiResult<Response<Body>> {
    let reference = pull_reference(&name, ctx.query.get("tag"))?;
    if reference.digest.is_some() {
        return Err(ApiError::bad_request(format!(
            "cannot push a digest reference {name:?}: push a tag"
        )));
    }
    let credentials = registry_auth(headers)?;
    // The image must be of the platform asked for (moby's graphdriver push).
    let platform = if super::compat::push_platform(ctx.version) {
        ctx.query.json_platform()?
    } else {
        None
    };
    let (tx, rx) = progress::channel();
    // As moby's push, the first message comes before the image is looked for: a missing
    // one is the stream's error, not the request's status.
    let tags = match local_tags(ctx, &reference).await {
        Ok(tags) => {
            if let Some(wanted) = platform {
                check_platform(ctx, &tags, wanted).await?;
            }
            tags
        }
        Err(e) => {
            let refers = format!("The push refers to repository [{}]", reference.repository);
            let _ = tx.send(Event::message(message(refers, None)));
            let _ = tx.send(Event::Failed(e));
            return progress::respond(rx, progress::Rule::StatusBeforeFirstMessage).await;
        }
    };
    let (client, store, engine) = (
        ctx.state.registry.clone(),
        ctx.state.engine.images.clone(),
        ctx.state.engine.clone(),
    );
    tokio::spawn(async move {
        let transfer = berth_registry::Transfer {
            client,
            store,
            credentials,
            progress: sink(&tx),
        };
        for t in &tags {
            match transfer.push(t).await {
                Ok(p) => {
                    let line = format!("{}: digest: {} size: {}", p.tag, p.digest, p.size);
                    let _ = tx.send(Event::message(message(line, None)));
                    let aux = JsonMessage {
                        progress: Some(JsonProgress::default()),
                        aux: Some(Aux::Push(PushResult {
                            tag: p.tag.clone(),
                            digest: p.digest.to_string(),
                            size: u64::try_from(p.size).unwrap_or(u64::MAX),
                        })),
                        ..JsonMessage::default()
                    };
                    let _ = tx.send(Event::message(aux));
                    let name = shown(t);
                    engine.image_event("push", &name, &name);
                }
                Err(e) => {
                    let _ = tx.send(Event::Failed(denied(e, "push", t)));
                    return;
                }
            }
        }
    });
    progress::respond(rx, progress::Rule::StatusBeforeFirstMessage).await
}

/// Every tag is an image of `wanted`, else moby's error (a 404, before the stream).
async fn check_platform(ctx: &Ctx, tags: &[Reference], wanted: Platform) -> ApiResult<()> {
    let tags = tags.to_vec();
    ctx.blocking(move |e| {
        for t in &tags {
            e.image_of_platform(&t.to_string(), Some(&wanted))?;
        }
        Ok(())
    })
    .await
}

/// The tags a push sends (the one asked for, or every tag of the repository), each
/// present in the store.
async fn local_tags(ctx: &Ctx, reference: &Reference) -> ApiResult<Vec<Reference>> {
    let tags: Vec<Reference> = match &reference.tag {
        Some(_) => vec![reference.clone()],
        None => {
            let repository = reference.repository.clone();
            let images = ctx.state.engine.images.clone();
            let all = tokio::task::spawn_blocking(move || images.list())
                .await
                .map_err(|e| ApiError::internal(e.to_string()))??;
            let prefix = format!("{repository}:");
            let mut tags: Vec<Reference> = all
                .iter()
                .flat_map(|i| i.tags.iter())
                .filter(|t| t.starts_with(&prefix))
                .filter_map(|t| Reference::parse(t).ok())
                .collect();
            tags.sort();
            if tags.is_empty() {
                return Err(ApiError::not_found(format!(
                    "An image does not exist locally with the tag: {}",
                    reference.familiar_repository()
                )));
            }
            tags
        }
    };
    for t in &tags {
        let images = ctx.state.engine.images.clone();
        let key = t.to_string();
        let found = tokio::task::spawn_blocking(move || images.resolve(&key).is_ok())
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if !found {
            return Err(ApiError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                shown(t)
            )));
        }
    }
    Ok(tags)
}

/// POST /auth: check credentials against the registry (the CLI stores them).
pub(super) async fn login(ctx: &Ctx, body_in: Incoming) -> ApiResult<Response<Body>> {
    let v: Option<AuthConfig> = serde_json::from_value(body::read_json(body_in, 64 * 1024).await?)
        .map_err(|e| ApiError::bad_request(format!("invalid login: {e}")))?;
    let v = v.unwrap_or_default();
    let credentials = credentials_of(&v)?;
    let registry = berth_registry::hosts::registry_of(&v.server_address);
    ctx.state.registry.login(&registry, &credentials).await?;
    let ok = AuthenticateOkBody {
        identity_token: String::new(),
        status: "Login Succeeded".into(),
    };
    Ok(body::json(StatusCode::OK, &ok))
}

/// GET /images/search: only Docker Hub has a search API, and berth does not speak it.
pub(super) fn search() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "search is not supported by berth: registries other than Docker Hub have no search API, and berth does not use Docker Hub's index",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose;

    #[test]
    fn registry_auth_header() {
        let mut h = HeaderMap::new();
        let json = br#"{"username":"u","password":"p?>","serveraddress":"x"}"#;
        let encoded = general_purpose::URL_SAFE.encode(json);
        h.insert("x-registry-auth", encoded.parse().expect("header"));
        let c = registry_auth(&h).expect("creds");
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        h.insert("x-registry-auth", "e30".parse().expect("header"));
        assert_eq!(registry_auth(&h).expect("empty"), Credentials::default());
        h.insert("x-registry-auth", "!!".parse().expect("header"));
        assert!(registry_auth(&h).is_err());
        // As moby's DecodeAuthConfig: a member of the wrong type is refused, not ignored.
        let wrong = general_purpose::URL_SAFE.encode(br#"{"username":5}"#);
        h.insert("x-registry-auth", wrong.parse().expect("header"));
        assert!(registry_auth(&h).is_err());
        let nulls = general_purpose::URL_SAFE.encode(br#"{"username":null,"auth":null}"#);
        h.insert("x-registry-auth", nulls.parse().expect("header"));
        assert_eq!(registry_auth(&h).expect("nulls"), Credentials::default());
    }

    #[test]
    fn references_of_pulls() {
        let r = pull_reference("busybox", Some("latest")).expect("r");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = pull_reference("localhost:5000/app", Some(&d)).expect("r");
        assert!(r.digest.is_some());
        let r = pull_reference("localhost:5000/app", None).expect("r");
        assert!(r.tag.is_none() && r.digest.is_none());
    }
}

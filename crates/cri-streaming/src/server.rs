//! The HTTP side: a TCP listener, one-time URLs (`/exec/TOKEN`, `/attach/TOKEN`,
//! `/portforward/TOKEN`, GET or POST, as the kubelet's streaming server routes them), the
//! protocol handshake and the upgrade to SPDY/3.1 or WebSocket (chosen by the Upgrade
//! header), after which remotecommand.rs or portforward.rs (SPDY), or their twins in
//! websocket/, take the connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::handshake::{self, ACCEPTED_HEADER, PROTOCOL_HEADER};
use crate::remotecommand::{self, Command, Protocol, StreamOptions};
use crate::spdy::Session;
use crate::tokens::{RequestCache, TokenError, MAX_IN_FLIGHT, TOKEN_TTL};
use crate::websocket;
use crate::{portforward, AttachRequest, ExecRequest, PortForwardRequest};

const SPDY_31: &str = "SPDY/3.1";

/// The server's settings; `Config::default()` is the kubelet's and containerd's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (see `StreamServer::local_addr`).
    pub addr: SocketAddr,
    /// How long a client has to open its streams after the upgrade.
    pub stream_creation_timeout: Duration,
    /// An upgraded connection with no frame either way for this long is closed (the
    /// kubelet's default is 4 hours); None keeps it open.
    pub stream_idle_timeout: Option<Duration>,
    /// How long a URL stays valid.
    pub token_ttl: Duration,
    /// URLs handed out and not yet used, at most.
    pub max_in_flight: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stream_creation_timeout: Duration::from_secs(30),
            stream_idle_timeout: Some(Duration::from_secs(4 * 60 * 60)),
            token_ttl: TOKEN_TTL,
            max_in_flight: MAX_IN_FLIGHT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing required container_id")]
    MissingContainerId,
    #[error("tty and stderr cannot both be true")]
    TtyWithStderr,
    #[error("one of stdin, stdout, or stderr must be set")]
    NoStreams,
    #[error("missing required pod_sandbox_id")]
    MissingPodSandboxId,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("binding the streaming server to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl Error {
    /// The request was wrong (gRPC InvalidArgument), as opposed to the server failing.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(
            self,
            Error::MissingContainerId
                | Error::TtyWithStderr
                | Error::NoStreams
                | Error::MissingPodSandboxId
        )
    }
}

enum Cached {
    Exec(ExecRequest),
    Attach(AttachRequest),
    PortForward(PortForwardRequest),
}

struct Inner {
    config: Config,
    cache: RequestCache<Cached>,
    backend: Arc<dyn Backend>,
    shutdown: CancellationToken,
}

/// The running server. Dropping it (or `shutdown`) stops it and ends its connections.
pub struct StreamServer {
    inner: Arc<Inner>,
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl StreamServer {
    /// Binds `config.addr` and starts serving on the current tokio runtime.
    pub async fn bind(config: Config, backend: Arc<dyn Backend>) -> Result<StreamServer, Error> {
        let addr = config.addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let inner = Arc::new(Inner {
            cache: RequestCache::new(config.token_ttl, config.max_in_flight),
            config,
            backend,
            shutdown: CancellationToken::new(),
        });
        let task = tokio::spawn(accept_loop(listener, inner.clone()));
        tracing::info!(%local_addr, "CRI streaming server listening");
        Ok(StreamServer {
            inner,
            local_addr,
            task,
        })
    }

    /// The address it listens on (with the port the kernel picked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL for an Exec request (the CRI ExecResponse's url).
    pub fn get_exec(&self, req: ExecRequest) -> Result<String, Error> {
        check_streams(
            &req.container_id,
            req.tty,
            req.stdin,
            req.stdout,
            req.stderr,
        )?;
        self.url("exec", Cached::Exec(req))
    }

    /// The URL for an Attach request.
    pub fn get_attach(&self, req: AttachRequest) -> Result<String, Error> {
        check_streams(
            &req.container_id,
            req.tty,
            req.stdin,
            req.stdout,
            req.stderr,
        )?;
        self.url("attach", Cached::Attach(req))
    }

    /// The URL for a PortForward request.
    pub fn get_port_forward(&self, req: PortForwardRequest) -> Result<String, Error> {
        if req.pod_sandbox_id.is_empty() {
            return Err(Error::MissingPodSandboxId);
        }
        self.url("portforward", Cached::PortForward(req))
    }

    /// Stops accepting and ends the open connections.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    fn url(&self, kind: &str, request: Cached) -> Result<String, Error> {
        let token = self.inner.cache.insert(request)?;
        Ok(format!("http://{}/{kind}/{token}", self.local_addr))
    }
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        self.inner.shutdown.cancel();
        self.task.abort();
    }
}

fn check_streams(
    container_id: &str,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<(), Error> {
    if container_id.is_empty() {
        return Err(Error::MissingContainerId);
    }
    if tty && stderr {
        return Err(Error::TtyWithStderr);
    }
    if !stdin && !stdout && !stderr {
        return Err(Error::NoStreams);
    }
    Ok(())
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    // Dropping the set at shutdown aborts the connections still being served.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => break,
            Some(_) = connections.join_next() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tracing::debug!(%peer, "streaming connection");
                    connections.spawn(serve_http(tcp, inner.clone()));
                }
                Err(e) => {
                    // Out of descriptors, most likely: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a streaming connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn serve_http(tcp: tokio::net::TcpStream, inner: Arc<Inner>) {
    let service = hyper::service::service_fn(move |req| {
        let inner = inner.clone();
        async move { Ok::<_, Infallible>(route(req, inner)) }
    });
    // The timer makes hyper's header read timeout (30 s) apply: a client that connects and
    // never sends its request does not hold a task forever.
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(error = %e, "streaming HTTP connection");
    }
}

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn not_found() -> Response<Full<Bytes>> {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

fn route(req: Request<hyper::body::Incoming>, inner: Arc<Inner>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed\n");
    }
    let mut parts = req.uri().path().trim_start_matches('/').splitn(2, '/');
    let (Some(kind), Some(token)) = (parts.next(), parts.next()) else {
        return not_found();
    };
    if token.is_empty() || token.contains('/') {
        return not_found();
    }
    let cached = match kind {
        "exec" | "attach" | "portforward" => inner.cache.consume(token),
        _ => None,
    };
    match (kind, cached) {
        ("exec", Some(Cached::Exec(r))) => {
            let opts = StreamOptions {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                tty: r.tty,
            };
            let command = Command::Exec {
                container_id: r.container_id,
                cmd: r.cmd,
            };
            upgrade_remotecommand(req, inner, opts, command)
        }
        ("attach", Some(Cached::Attach(r))) => {
            let opts = StreamOptions {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                tty: r.tty,
            };
            let command = Command::Attach {
                container_id: r.container_id,
            };
            upgrade_remotecommand(req, inner, opts, command)
        }
        ("portforward", Some(Cached::PortForward(r))) => {
            upgrade_portforward(req, inner, r.pod_sandbox_id)
        }
        _ => not_found(),
    }
}

/// The protocol both sides speak, or the response that says there is none.
fn negotiate<B>(
    req: &Request<B>,
    server: &[&'static str],
) -> Result<&'static str, Box<Response<Full<Bytes>>>> {
    let offered = handshake::client_protocols(
        req.headers()
            .get_all(PROTOCOL_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    if offered.is_empty() {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            format!("unable to upgrade: {PROTOCOL_HEADER} is required"),
        )));
    }
    let Some(protocol) = handshake::negotiate(&offered, server) else {
        let mut resp = text(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {server:?}"
            ),
        );
        for p in server {
            resp.headers_mut()
                .append(ACCEPTED_HEADER, HeaderValue::from_static(p));
        }
        return Err(Box::new(resp));
    };
    if !header_contains(req, CONNECTION, "upgrade") || !header_contains(req, UPGRADE, "spdy/3.1") {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: missing upgrade headers in request",
        )));
    }
    Ok(protocol)
}

fn header_contains<B>(req: &Request<B>, name: hyper::header::HeaderName, needle: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains(needle))
}

fn is_websocket<B>(req: &Request<B>) -> bool {
    header_contains(req, CONNECTION, "upgrade") && header_contains(req, UPGRADE, "websocket")
}

fn switching_protocols(protocol: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static(SPDY_31));
    h.insert(PROTOCOL_HEADER, HeaderValue::from_static(protocol));
    resp
}

/// Answers 101 and runs `then` on the upgraded connection (until it ends or the server
/// shuts down).
fn upgrade<F, Fut>(
    mut req: Request<hyper::body::Incoming>,
    inner: &Arc<Inner>,
    protocol: &'static str,
    then: F,
) -> Response<Full<Bytes>>
where
    F: FnOnce(Session, tokio::sync::mpsc::Receiver<crate::spdy::IncomingStream>) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut req);
    let shutdown = inner.shutdown.clone();
    let idle_timeout = inner.config.stream_idle_timeout;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "upgrading a streaming connection");
                return;
            }
        };
        let (session, incoming) = Session::start(TokioIo::new(upgraded), idle_timeout);
        tokio::select! {
            _ = then(session, incoming) => {}
            _ = shutdown.cancelled() => {}
        }
    });
    switching_protocols(protocol)
}

fn upgrade_remotecommand(
    req: Request<hyper::body::Incoming>,
    inner: Arc<Inner>,
    opts: StreamOptions,
    command: Command,
) -> Response<Full<Bytes>> {
    if is_websocket(&req) {
        return upgrade_remotecommand_ws(req, inner, opts, command);
    }
    let name = match negotiate(&req, &remotecommand::SUPPORTED) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let Some(protocol) = Protocol::from_name(name) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "negotiated an unknown protocol",
        );
    };
    let backend = inner.backend.clone();
    let timeout = inner.config.stream_creation_timeout;
    upgrade(req, &inner, name, move |session, incoming| {
        remotecommand::serve(session, incoming, protocol, opts, command, backend, timeout)
    })
}

fn upgrade_portforward(
    req: Request<hyper::body::Incoming>,
    inner: Arc<Inner>,
    pod_sandbox_id: String,
) -> Response<Full<Bytes>> {
    if is_websocket(&req) {
        return upgrade_portforward_ws(req, inner, pod_sandbox_id);
    }
    let name = match negotiate(&req, &portforward::SUPPORTED) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let backend = inner.backend.clone();
    let timeout = inner.config.stream_creation_timeout;
    upgrade(req, &inner, name, move |session, incoming| {
        portforward::serve(session, incoming, pod_sandbox_id, backend, timeout)
    })
}

/// Answers 101 to a WebSocket upgrade and runs `then` on the framed connection (until it
/// ends or the server shuts down).
fn upgrade_ws<F, Fut>(
    mut req: Request<hyper::body::Incoming>,
    inner: &Arc<Inner>,
    protocol: websocket::Subprotocol,
    accept: &str,
    then: F,
) -> Response<Full<Bytes>>
where
    F: FnOnce(WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut req);
    let shutdown = inner.shutdown.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "upgrading a streaming connection to WebSocket");
                return;
            }
        };
        let ws = websocket::server_stream(TokioIo::new(upgraded)).await;
        tokio::select! {
            _ = then(ws) => {}
            _ = shutdown.cancelled() => {}
        }
    });
    websocket::switching_protocols(protocol, accept)
}

fn upgrade_remotecommand_ws(
    req: Request<hyper::body::Incoming>,
    inner: Arc<Inner>,
    opts: StreamOptions,
    command: Command,
) -> Response<Full<Bytes>> {
    let (protocol, accept) = match websocket::negotiate(&req, &websocket::REMOTECOMMAND) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let backend = inner.backend.clone();
    let idle = inner.config.stream_idle_timeout;
    upgrade_ws(req, &inner, protocol, &accept, move |ws| {
        websocket::remotecommand::serve(ws, protocol, opts, command, backend, idle)
    })
}

fn upgrade_portforward_ws(
    req: Request<hyper::body::Incoming>,
    inner: Arc<Inner>,
    pod_sandbox_id: String,
) -> Response<Full<Bytes>> {
    let ports = match websocket::portforward::ports_from_query(req.uri().query()) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let (protocol, accept) = match websocket::negotiate(&req, &websocket::PORTFORWARD) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let backend = inner.backend.clone();
    let idle = inner.config.stream_idle_timeout;
    upgrade_ws(req, &inner, protocol, &accept, move |ws| {
        websocket::portforward::serve(ws, protocol, ports, pod_sandbox_id, backend, idle)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_as_the_kubelet_checks_them() {
        assert!(matches!(
            check_streams("", false, true, false, false),
            Err(Error::MissingContainerId)
        ));
        assert!(matches!(
            check_streams("c", true, false, true, true),
            Err(Error::TtyWithStderr)
        ));
        assert!(matches!(
            check_streams("c", false, false, false, false),
            Err(Error::NoStreams)
        ));
        assert!(check_streams("c", true, true, true, false).is_ok());
        assert!(Error::NoStreams.is_invalid_argument());
        assert!(!Error::Token(TokenError::TooMany).is_invalid_argument());
    }
}

//! WebSocket streaming beside SPDY, as the kubelet's streaming server serves it: the same
//! URLs, chosen by `Upgrade: websocket`. The subprotocol (Sec-WebSocket-Protocol) picks the
//! framing (framing.rs) and, for exec and attach, how the outcome is written.
//!
//! The connection: one task writes the messages every channel queues, one reads and routes
//! the client's messages to the channels that take input. The exchange itself is in
//! remotecommand.rs and portforward.rs.

pub mod framing;
pub(crate) mod portforward;
pub(crate) mod remotecommand;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

pub use framing::{Codec, Framing, Incoming};

const PROTOCOL_HEADER: &str = "Sec-WebSocket-Protocol";
const KEY_HEADER: &str = "Sec-WebSocket-Key";
const VERSION_HEADER: &str = "Sec-WebSocket-Version";
const ACCEPT_HEADER: &str = "Sec-WebSocket-Accept";

/// Messages queued for the writer, at most; a slow client slows the channels down.
const OUTGOING_QUEUE: usize = 64;
/// Chunks of one channel's input queued for its reader, at most.
const INBOUND_QUEUE: usize = 16;

/// A subprotocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subprotocol {
    /// Its name; "" stands for a client that names none.
    pub name: &'static str,
    pub framing: Framing,
    /// The error channel carries a metav1.Status JSON (v4 and v5), not the failure's text.
    pub status_json: bool,
}

const fn sub(name: &'static str, codec: Codec, status_json: bool, close: bool) -> Subprotocol {
    Subprotocol {
        name,
        framing: Framing {
            codec,
            close_signal: close,
        },
        status_json,
    }
}

/// Exec and attach: the kubelet's list (channel.k8s.io, base64.channel.k8s.io, their v4.
/// forms, none) plus v5.channel.k8s.io (its close signal) and the v2 and v3 names client-go
/// offers over SPDY, framed as before v4.
pub const REMOTECOMMAND: [Subprotocol; 10] = [
    sub("v5.channel.k8s.io", Codec::Binary, true, true),
    sub("v4.channel.k8s.io", Codec::Binary, true, false),
    sub("v4.base64.channel.k8s.io", Codec::Base64, true, false),
    sub("v3.channel.k8s.io", Codec::Binary, false, false),
    sub("v3.base64.channel.k8s.io", Codec::Base64, false, false),
    sub("v2.channel.k8s.io", Codec::Binary, false, false),
    sub("v2.base64.channel.k8s.io", Codec::Base64, false, false),
    sub("channel.k8s.io", Codec::Binary, false, false),
    sub("base64.channel.k8s.io", Codec::Base64, false, false),
    sub("", Codec::Binary, false, false),
];

/// Port forwarding: the kubelet's portforward/websocket.go list.
pub const PORTFORWARD: [Subprotocol; 3] = [
    sub("v4.channel.k8s.io", Codec::Binary, false, false),
    sub("v4.base64.channel.k8s.io", Codec::Base64, false, false),
    sub("", Codec::Binary, false, false),
];

type Refusal = Box<Response<http_body_util::Full<Bytes>>>;

fn refuse(status: StatusCode, message: String) -> Refusal {
    Box::new(crate::server::text(status, message))
}

/// Checks the request's WebSocket handshake and picks the first of the client's
/// subprotocols the server speaks (x/net/websocket answers 403 when none is shared).
pub fn negotiate<B>(
    req: &Request<B>,
    server: &[Subprotocol],
) -> Result<(Subprotocol, String), Refusal> {
    let headers = req.headers();
    let key = headers
        .get(KEY_HEADER)
        .and_then(|k| k.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let version = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok());
    let (Some(key), Some("13")) = (key, version.map(str::trim)) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13".into(),
        ));
    };
    let mut offered = crate::handshake::client_protocols(
        headers
            .get_all(PROTOCOL_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    if offered.is_empty() {
        offered.push(String::new());
    }
    let chosen = offered
        .iter()
        .find_map(|c| server.iter().find(|s| s.name == c.as_str()).copied());
    let Some(chosen) = chosen else {
        let names: Vec<&str> = server.iter().map(|s| s.name).collect();
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("requested protocol(s) are not supported: {offered:?}; supports {names:?}"),
        ));
    };
    Ok((chosen, derive_accept_key(key.as_bytes())))
}

/// The 101 answer to a WebSocket upgrade.
pub fn switching_protocols(
    protocol: Subprotocol,
    accept: &str,
) -> Response<http_body_util::Full<Bytes>> {
    let mut resp = Response::new(http_body_util::Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(ACCEPT_HEADER, v);
    }
    if !protocol.name.is_empty() {
        h.insert(PROTOCOL_HEADER, HeaderValue::from_static(protocol.name));
    }
    resp
}

/// When anything last went either way, for the idle timeout.
struct Activity {
    start: tokio::time::Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> tokio::time::Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Sends on channels of the connection; cloned by every channel that writes.
#[derive(Clone)]
pub struct Outgoing {
    tx: mpsc::Sender<Message>,
    framing: Framing,
}

#[derive(Debug, thiserror::Error)]
#[error("the WebSocket connection is closed")]
pub struct Closed;

impl Outgoing {
    pub async fn send(&self, channel: u8, data: &[u8]) -> Result<(), Closed> {
        self.tx
            .send(self.framing.encode(channel, data))
            .await
            .map_err(|_| Closed)
    }
}

/// A running connection.
pub struct Connection {
    outgoing: Outgoing,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
    /// Cancelled when the client hangs up, the connection fails or goes idle.
    closed: CancellationToken,
}

impl Connection {
    /// Starts the reader and writer on an upgraded stream. `routes` are the channels that
    /// take input: what the client sends on them goes to the sender (a dropped receiver
    /// discards that channel's input); the senders are dropped when the client closes the
    /// channel (v5) or the connection.
    pub fn start<S>(
        ws: WebSocketStream<S>,
        framing: Framing,
        routes: HashMap<u8, mpsc::Sender<Bytes>>,
        idle_timeout: Option<Duration>,
    ) -> Connection
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sink, stream) = ws.split();
        let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
        let closed = CancellationToken::new();
        let activity = Arc::new(Activity::new());
        let writer = tokio::spawn(write_loop(sink, rx, activity.clone(), closed.clone()));
        let reader = tokio::spawn(read_loop(
            stream,
            framing,
            routes,
            activity,
            idle_timeout,
            closed.clone(),
        ));
        Connection {
            outgoing: Outgoing { tx, framing },
            writer,
            reader,
            closed,
        }
    }

    pub fn outgoing(&self) -> Outgoing {
        self.outgoing.clone()
    }

    pub fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }

    /// Sends what is queued, then a close frame, and ends the connection.
    pub async fn close(self) {
        let Connection {
            outgoing,
            writer,
            reader,
            closed,
        } = self;
        drop(outgoing);
        // The writer ends once every Outgoing is gone (the channels' pumps are done by now).
        let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
        closed.cancel();
        reader.abort();
    }
}

async fn write_loop<S>(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<Message>,
    activity: Arc<Activity>,
    closed: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    loop {
        let message = tokio::select! {
            m = rx.recv() => m,
            _ = closed.cancelled() => None,
        };
        let Some(message) = message else { break };
        activity.touch();
        if let Err(e) = sink.send(message).await {
            tracing::debug!(error = %e, "writing to a WebSocket");
            closed.cancel();
            return;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    let _ = sink.close().await;
}

async fn read_loop<S>(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<S>>,
    framing: Framing,
    mut routes: HashMap<u8, mpsc::Sender<Bytes>>,
    activity: Arc<Activity>,
    idle_timeout: Option<Duration>,
    closed: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = idle(&activity, idle_timeout) => {
                tracing::debug!("WebSocket connection idle; closing it");
                break;
            }
            _ = closed.cancelled() => break,
        };
        activity.touch();
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "reading from a WebSocket");
                break;
            }
            None => break,
        };
        match framing.decode(message) {
            Ok(Incoming::Data { channel, data }) => {
                let Some(route) = routes.get(&channel) else {
                    tracing::trace!(channel, "message for a channel that takes no input");
                    continue;
                };
                if route.send(data).await.is_err() {
                    routes.remove(&channel);
                }
            }
            Ok(Incoming::Close { channel }) => {
                routes.remove(&channel);
            }
            Ok(Incoming::Nothing) => {}
            Ok(Incoming::End) => break,
            // wsstream logs a bad frame and reads on.
            Err(e) => tracing::debug!(error = %e, "bad WebSocket message"),
        }
    }
    closed.cancel();
}

/// Resolves once nothing went either way for `timeout`; never without one.
async fn idle(activity: &Activity, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        let deadline = activity.last() + timeout;
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// A channel that takes input: the route for the reader and the receiving end.
pub fn input_channel() -> (mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>) {
    mpsc::channel(INBOUND_QUEUE)
}

/// Sends what `from` yields on `channel` until EOF (a WebSocket channel has no end of its
/// own: the connection's close ends it).
pub fn outbound<R>(mut from: R, channel: u8, to: Outgoing) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    if to.send(channel, &buf[..n]).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(channel, error = %e, "reading output failed");
                    return;
                }
            }
        }
    })
}

/// The server's side of an upgraded connection, framed.
pub async fn server_stream<S>(io: S) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    WebSocketStream::from_raw_socket(io, Role::Server, None).await
}

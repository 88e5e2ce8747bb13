//! The typed client the berth CLI uses: the Docker Engine API over berthd's unix socket,
//! with the same version negotiation as the docker CLI (`/_ping`, then `/v1.NN/` paths).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncRead;

use crate::version::{self, ApiVersion};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cause is in the message, not a source: printed with its chain (`{:#}`), it
    /// came twice.
    #[error("Cannot connect to the berth daemon at unix://{socket}: {cause}. Is berthd running?")]
    Connect {
        socket: PathBuf,
        cause: std::io::Error,
    },
    /// The daemon's `{"message": ...}`, with its status.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    // Transparent: "{0}" with the error as its source printed it twice with its chain.
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error("invalid response from the daemon: {0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

type ReqBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    version: ApiVersion,
}

/// `key=value` pairs as a query string.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Percent-encode a name for a path segment (names may hold '/' and ':', which the daemon
/// accepts as they are).
pub fn path_name(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'/'
            | b':'
            | b'@' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    /// Connect to `socket` and agree on an API version.
    pub async fn connect(socket: &Path) -> Result<Client> {
        let mut client = Client {
            socket: socket.to_path_buf(),
            version: version::MAX,
        };
        let resp = client.raw(Method::HEAD, "/_ping", None, empty()).await?;
        if let Some(v) = resp
            .headers()
            .get("Api-Version")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiVersion::parse)
        {
            client.version = v.min(version::MAX);
        }
        Ok(client)
    }

    pub fn version(&self) -> ApiVersion {
        self.version
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: ReqBody,
    ) -> Result<Response<Incoming>> {
        let req = self.request(method, path, content_type)?;
        let req = req
            .body(body)
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let mut sender = self.connection().await?;
        Ok(sender.send_request(req).await?)
    }

    /// A new connection to the daemon, served (with upgrades) in the background.
    async fn connection(&self) -> Result<hyper::client::conn::http1::SendRequest<ReqBody>> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|cause| ClientError::Connect {
                socket: self.socket.clone(),
                cause,
            })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
    ) -> Result<hyper::http::request::Builder> {
        let uri = if path == "/_ping" {
            path.to_string()
        } else {
            format!("/v{}{path}", self.version)
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "berth");
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        Ok(req)
    }

    /// POST that takes over the connection as moby's attach and exec start do (`Upgrade:
    /// tcp`, 101): the raw stream to the container, both ways.
    pub async fn hijack<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<Hijacked> {
        let req = self
            .request(Method::POST, path, Some("application/json"))?
            .header("Connection", "Upgrade")
            .header("Upgrade", "tcp")
            .body(full(to_json(body)?))
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let mut sender = self.connection().await?;
        let resp = sender.send_request(req).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(error_of(resp).await);
        }
        let upgraded = hyper::upgrade::on(resp).await?;
        Ok(TokioIo::new(upgraded))
    }

    /// Send a request; a non-2xx answer becomes [`ClientError::Daemon`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: ReqBody,
    ) -> Result<Response<Incoming>> {
        let resp = self.raw(method, path, content_type, body).await?;
        // 304: already in the state asked for (start, stop), which docker counts as done.
        if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(resp);
        }
        Err(error_of(resp).await)
    }

    /// POST a JSON body (a typed request, or a Value), expecting a JSON answer (or none:
    /// Null).
    pub async fn post_body<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let body = full(to_json(body)?);
        let resp = self
            .send(Method::POST, path, Some("application/json"), body)
            .await?;
        read_json(resp).await
    }

    /// A request with an empty body and a JSON answer.
    async fn json<T: DeserializeOwned>(&self, method: Method, path: &str) -> Result<T> {
        let resp = self.send(method, path, None, empty()).await?;
        read_json(resp).await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(Method::GET, path).await
    }

    pub async fn post_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(Method::POST, path).await
    }

    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(Method::DELETE, path).await
    }

    /// GET a streamed body (an archive).
    pub async fn get_stream(&self, path: &str) -> Result<Response<Incoming>> {
        self.send(Method::GET, path, None, empty()).await
    }

    /// POST with an empty body, returning the response once its headers are in (a wait:
    /// registered, its answer still to come).
    pub async fn post_for_stream(&self, path: &str) -> Result<Response<Incoming>> {
        self.send(Method::POST, path, None, empty()).await
    }

    /// POST with an empty body and `X-Registry-Auth` (pull, push), returning the response
    /// to read its progress stream from.
    pub async fn post_with_registry_auth(
        &self,
        path: &str,
        registry_auth: &str,
    ) -> Result<Response<Incoming>> {
        let req = self
            .request(Method::POST, path, None)?
            .header("X-Registry-Auth", registry_auth)
            .body(empty())
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let mut sender = self.connection().await?;
        let resp = sender.send_request(req).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(error_of(resp).await)
    }

    /// POST with an empty body, expecting no content back.
    pub async fn post_empty(&self, path: &str) -> Result<()> {
        self.send(Method::POST, path, None, empty()).await.map(drop)
    }

    /// POST a body read from `input` (streamed), returning the response to read.
    pub async fn post_stream(
        &self,
        path: &str,
        content_type: &str,
        input: impl AsyncRead + Send + Sync + Unpin + 'static,
    ) -> Result<Response<Incoming>> {
        let stream = tokio_util_stream(input);
        let body = StreamBody::new(stream).boxed();
        self.send(Method::POST, path, Some(content_type), body)
            .await
    }

    /// PUT a body read from `input` (streamed): `docker cp` into a container.
    pub async fn put_stream(
        &self,
        path: &str,
        content_type: &str,
        input: impl AsyncRead + Send + Sync + Unpin + 'static,
    ) -> Result<()> {
        let body = StreamBody::new(tokio_util_stream(input)).boxed();
        self.send(Method::PUT, path, Some(content_type), body)
            .await
            .map(drop)
    }

    /// HEAD: the answer's headers (a failure has no body, so only its status is known).
    pub async fn head(&self, path: &str) -> Result<Response<Incoming>> {
        self.send(Method::HEAD, path, None, empty()).await
    }

    pub fn image_path(name: &str, action: &str) -> String {
        format!("/images/{}{action}", path_name(name))
    }
}

/// A daemon's error answer: its `{"message": ...}` with the status.
async fn error_of(resp: Response<Incoming>) -> ClientError {
    let status = resp.status().as_u16();
    let bytes = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return ClientError::Http(e),
    };
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
    ClientError::Daemon { status, message }
}

/// The stream of a hijacked connection.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// A request body as JSON (a map with non-string keys is the one way this fails).
fn to_json<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| ClientError::Invalid(format!("request body: {e}")))
}

fn full(bytes: Vec<u8>) -> ReqBody {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed()
}

fn empty() -> ReqBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// A whole JSON answer.
pub async fn read_json<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
    let bytes = resp.into_body().collect().await?.to_bytes();
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"null")
    } else {
        bytes
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| ClientError::Invalid(format!("{e}: {}", String::from_utf8_lossy(&bytes))))
}

/// Read an async reader as a stream of body frames (64 KiB chunks).
fn tokio_util_stream(
    mut input: impl AsyncRead + Send + Sync + Unpin + 'static,
) -> impl tokio_stream::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send + Sync + 'static
{
    use tokio::io::AsyncReadExt;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match input.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .send(Ok(Frame::data(Bytes::copy_from_slice(&buf[..n]))))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Read a response body to its end, handing each chunk to `sink`.
pub async fn for_each_chunk(
    resp: Response<Incoming>,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<()> {
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            sink(&data)?;
        }
    }
    Ok(())
}

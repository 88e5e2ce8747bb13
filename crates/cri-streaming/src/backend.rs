//! What the server asks of the runtime: run a command in a container, attach to its main
//! process, connect to a port in a pod's network namespace. The CRI service implements
//! `Backend`; this crate knows nothing of containers.

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::sync::mpsc;

/// A terminal size from the client's resize stream (client-go's TerminalSize).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// The client's input: ends (EOF) when the client closes stdin.
pub type Input = Box<dyn AsyncRead + Send + Unpin>;
/// Output to the client: dropping it (or shutting it down) ends the client's copy.
pub type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// The streams of one exec or attach, as the request asked for them.
pub struct Streams {
    pub stdin: Option<Input>,
    pub stdout: Option<Output>,
    /// Never present with a terminal: there is no stderr apart from the pty's output.
    pub stderr: Option<Output>,
    /// Terminal sizes as the client sends them; present with a terminal (protocol v3 and up).
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
    pub tty: bool,
}

/// A byte stream to one forwarded port: read what the client sends, write what goes back;
/// shut it down (or drop it) when the port's side is done.
pub type PortStream = DuplexStream;

/// Why the runtime could not do what was asked; its text goes to the client (on the error
/// stream, as the kubelet sends "error executing command in container: ...").
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

impl BackendError {
    pub fn new(message: impl std::fmt::Display) -> Self {
        BackendError(message.to_string())
    }
}

impl From<std::io::Error> for BackendError {
    fn from(e: std::io::Error) -> Self {
        BackendError(e.to_string())
    }
}

pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// The runtime behind the server.
///
/// Each call owns its streams: when the future resolves, everything it wrote must have been
/// written and its `Output`s dropped, since the server reports the result only after the
/// client has received all output. The future is dropped unfinished when the client goes
/// away (the kubelet cancels the request's context then): it must clean up on drop (an exec
/// keeps running in the container, as it does under the kubelet, unless the backend kills it).
pub trait Backend: Send + Sync + 'static {
    /// Runs `cmd` in the container and returns its exit code (0 to 255; 0 is success).
    fn exec(
        &self,
        container_id: String,
        cmd: Vec<String>,
        streams: Streams,
    ) -> BackendFuture<'_, i32>;

    /// Attaches to the container's main process until the process ends or the client's stdin
    /// closes (with `stdin` asked for), or the client goes.
    fn attach(&self, container_id: String, streams: Streams) -> BackendFuture<'_, ()>;

    /// Connects `stream` to `port` on the pod's loopback (inside its network namespace) and
    /// copies both ways until both sides are done.
    fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        stream: PortStream,
    ) -> BackendFuture<'_, ()>;
}

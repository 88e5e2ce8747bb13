//! The kubelet-style streaming server the CRI's Exec, Attach and PortForward RPCs hand out
//! URLs for (k8s.io/kubelet/pkg/cri/streaming), speaking what crictl and critest speak:
//! an HTTP upgrade to SPDY/3.1 or to WebSocket (the `channel.k8s.io` subprotocols), then
//! client-go's remotecommand or portforward protocol.
//!
//! The CRI service binds a `StreamServer` with its `Backend`, and answers Exec, Attach and
//! PortForward with `get_exec`, `get_attach` and `get_port_forward`: one-time URLs
//! (`http://ADDR/exec/TOKEN`, ...) the client follows within a minute.

mod backend;
mod handshake;
mod portforward;
mod pump;
mod remotecommand;
mod server;
pub mod spdy;
mod tokens;
pub mod websocket;

pub use backend::{
    Backend, BackendError, BackendFuture, Input, Output, PortStream, Streams, TerminalSize,
};
pub use server::{Config, Error, StreamServer};
pub use tokens::TokenError;

/// An Exec to serve: the fields of the CRI ExecRequest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// An Attach to serve: the fields of the CRI AttachRequest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachRequest {
    pub container_id: String,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// A PortForward to serve: the fields of the CRI PortForwardRequest. As in the kubelet, the
/// ports the client forwards come from its stream headers; `ports` is not enforced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortForwardRequest {
    pub pod_sandbox_id: String,
    pub ports: Vec<i32>,
}

//! Exec and attach over WebSocket (the kubelet's remotecommand/websocket.go): channels 0
//! stdin, 1 stdout, 2 stderr, 3 error, 4 resize (a TerminalSize JSON per message), opened
//! at once by the upgrade. The server first sends an empty message on the lowest channel it
//! writes, so the client knows the connection is up; the outcome goes on the error channel
//! as over SPDY (a metav1.Status in v4 and v5, a failure's text before), then the server
//! closes the connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;

use super::{input_channel, outbound, Connection, Subprotocol};
use crate::backend::{Backend, Input, Output, Streams};
use crate::pump;
use crate::remotecommand::{resize_pump, run, Command, Protocol, StreamOptions};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;

/// One exec or attach on an upgraded connection, start to end.
pub async fn serve<S>(
    ws: WebSocketStream<S>,
    protocol: Subprotocol,
    opts: StreamOptions,
    command: Command,
    backend: Arc<dyn Backend>,
    idle_timeout: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut routes = HashMap::new();
    let stdin = opts.stdin.then(|| {
        let (route, inbound) = input_channel();
        routes.insert(STDIN, route);
        let (ours, theirs) = pump::pipe();
        pump::inbound(inbound, ours);
        Box::new(theirs) as Input
    });
    // The kubelet reads the resize channel whatever the request; only a terminal uses it.
    let resize = opts.tty.then(|| {
        let (route, inbound) = input_channel();
        routes.insert(RESIZE, route);
        let (tx, rx) = mpsc::channel(16);
        resize_pump(inbound, tx);
        rx
    });
    let conn = Connection::start(ws, protocol.framing, routes, idle_timeout);
    let outgoing = conn.outgoing();
    let first = if opts.stdout {
        STDOUT
    } else if opts.stderr {
        STDERR
    } else {
        ERROR
    };
    if outgoing.send(first, &[]).await.is_err() {
        conn.close().await;
        return;
    }
    let mut outputs = Vec::new();
    let mut output = |wanted: bool, channel: u8| -> Option<Output> {
        if !wanted {
            return None;
        }
        let (theirs, ours) = pump::pipe();
        outputs.push(outbound(ours, channel, outgoing.clone()));
        Some(Box::new(theirs))
    };
    let stdout = output(opts.stdout, STDOUT);
    let stderr = output(opts.stderr, STDERR);
    let streams = Streams {
        stdin,
        stdout,
        stderr,
        resize,
        tty: opts.tty,
    };
    let closed = conn.closed();
    let outcome = tokio::select! {
        outcome = run(backend.as_ref(), command, streams) => outcome,
        _ = closed.cancelled() => {
            tracing::debug!("client went away during exec/attach");
            conn.close().await;
            return;
        }
    };
    tracing::debug!(?outcome, "remotecommand (WebSocket) finished");
    // All output reaches the client before the outcome does.
    for pump in outputs {
        let _ = pump.await;
    }
    let status_protocol = if protocol.status_json {
        Protocol::V4
    } else {
        Protocol::V1
    };
    if let Some(message) = outcome.error_stream_message(status_protocol) {
        let _ = outgoing.send(ERROR, &message).await;
    }
    drop(outgoing);
    conn.close().await;
}

//! The portforward protocol over SPDY (kubelet's portforward/httpstream.go, protocol
//! `portforward.k8s.io`).
//!
//! Per forwarded connection the client opens two streams with the same `requestID` and
//! `port` headers: `streamType: error` (which it half-closes at once) and `streamType: data`.
//! Once both are there the bytes of `data` go to the port and back; a failure is written as
//! text on `error`, and both are closed when the forwarding ends. One upgraded connection
//! carries any number of these pairs, until the client hangs up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::backend::Backend;
use crate::pump;
use crate::spdy::{IncomingStream, Session, StreamSink};

pub const PROTOCOL: &str = "portforward.k8s.io";
pub const SUPPORTED: [&str; 1] = [PROTOCOL];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Error,
    Data,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("\"port\" header is required")]
    MissingPort,
    #[error("unable to parse {0:?} as a port")]
    BadPort(String),
    #[error("port {0:?} must be > 0")]
    ZeroPort(String),
    #[error("\"streamType\" header is required")]
    MissingType,
    #[error("invalid stream type {0:?}")]
    BadType(String),
}

/// A stream's port, kind and request id, checked as the kubelet checks them.
fn classify(stream: &IncomingStream) -> Result<(u16, Kind, String), HeaderError> {
    let headers = stream.headers();
    let port_text = headers
        .get("port")
        .filter(|p| !p.is_empty())
        .ok_or(HeaderError::MissingPort)?;
    let port: u16 = port_text
        .parse()
        .map_err(|_| HeaderError::BadPort(port_text.to_string()))?;
    if port == 0 {
        return Err(HeaderError::ZeroPort(port_text.to_string()));
    }
    let kind = match headers.get("streamtype").filter(|t| !t.is_empty()) {
        None => return Err(HeaderError::MissingType),
        Some("error") => Kind::Error,
        Some("data") => Kind::Data,
        Some(other) => return Err(HeaderError::BadType(other.to_string())),
    };
    let request_id = match headers.get("requestid").filter(|r| !r.is_empty()) {
        Some(id) => id.to_string(),
        // Clients older than request ids open error then data with consecutive odd ids;
        // the kubelet pairs them by id, as here.
        None => match kind {
            Kind::Error => stream.id().to_string(),
            Kind::Data => stream.id().saturating_sub(2).to_string(),
        },
    };
    Ok((port, kind, request_id))
}

struct Accepted {
    port: u16,
    kind: Kind,
    inbound: mpsc::Receiver<Bytes>,
    sink: StreamSink,
}

/// Serves port forwarding on an upgraded connection until the client hangs up.
pub async fn serve(
    session: Session,
    mut incoming: mpsc::Receiver<IncomingStream>,
    pod_sandbox_id: String,
    backend: Arc<dyn Backend>,
    creation_timeout: Duration,
) {
    // Pairs still waiting for their second stream, by request id.
    let mut waiting: HashMap<String, mpsc::Sender<Accepted>> = HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let (port, kind, request_id) = match classify(&stream) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "refusing a port forward stream");
                stream.refuse().await;
                continue;
            }
        };
        let Ok((inbound, sink)) = stream.accept().await else {
            break;
        };
        let accepted = Accepted {
            port,
            kind,
            inbound,
            sink,
        };
        waiting.retain(|_, tx| !tx.is_closed());
        let accepted = match waiting.get(&request_id) {
            Some(tx) => match tx.send(accepted).await {
                Ok(()) => continue,
                // The pair finished meanwhile: this one starts a new pair.
                Err(mpsc::error::SendError(accepted)) => accepted,
            },
            None => accepted,
        };
        let (tx, rx) = mpsc::channel(1);
        waiting.insert(request_id.clone(), tx);
        tokio::spawn(pair(
            accepted,
            rx,
            request_id,
            pod_sandbox_id.clone(),
            backend.clone(),
            creation_timeout,
        ));
    }
    session.close().await;
}

/// One forwarded connection: waits for the second stream, then forwards.
async fn pair(
    first: Accepted,
    mut rest: mpsc::Receiver<Accepted>,
    request_id: String,
    pod_sandbox_id: String,
    backend: Arc<dyn Backend>,
    creation_timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + creation_timeout;
    let (mut error, mut data) = (None, None);
    let mut next = Some(first);
    while let Some(stream) = next.take() {
        let slot = match stream.kind {
            Kind::Error => &mut error,
            Kind::Data => &mut data,
        };
        if slot.is_some() {
            let which = if stream.kind == Kind::Error {
                "error"
            } else {
                "data"
            };
            let message = format!(
                "error processing stream for request {request_id}: {which} stream already assigned"
            );
            tracing::warn!("{message}");
            report(error.as_ref(), &message).await;
            stream
                .sink
                .reset(crate::spdy::frame::rst::PROTOCOL_ERROR)
                .await;
        } else {
            *slot = Some(stream);
        }
        if error.is_some() && data.is_some() {
            break;
        }
        match tokio::time::timeout_at(deadline, rest.recv()).await {
            Ok(Some(s)) => next = Some(s),
            Ok(None) => return,
            Err(_) => {
                let message = format!("timed out waiting for streams of request {request_id}");
                tracing::warn!("{message}");
                report(error.as_ref(), &message).await;
                if let Some(e) = &error {
                    let _ = e.sink.finish().await;
                }
                return;
            }
        }
    }
    drop(rest);
    let (Some(error), Some(data)) = (error, data) else {
        return;
    };
    forward(error, data, &pod_sandbox_id, backend.as_ref()).await;
}

async fn report(error: Option<&Accepted>, message: &str) {
    if let Some(e) = error {
        let _ = e.sink.write(message.as_bytes()).await;
    }
}

async fn forward(error: Accepted, data: Accepted, pod_sandbox_id: &str, backend: &dyn Backend) {
    let port = data.port;
    let (theirs, ours) = pump::pipe();
    let (ours_read, ours_write) = tokio::io::split(ours);
    pump::inbound(data.inbound, ours_write);
    let outbound = pump::outbound(ours_read, data.sink);
    let result = backend
        .port_forward(pod_sandbox_id.to_string(), port, theirs)
        .await;
    // Everything the port sent reaches the client before the streams close.
    let _ = outbound.await;
    if let Err(e) = result {
        let message = format!("error forwarding port {port} to pod {pod_sandbox_id}, uid : {e}");
        tracing::warn!("{message}");
        let _ = error.sink.write(message.as_bytes()).await;
    }
    let _ = error.sink.finish().await;
}

//! Port forwarding over WebSocket (the kubelet's portforward/websocket.go): the ports come
//! from the URL's `port` query parameters; port i has channel 2i for data (both ways) and
//! 2i+1 for errors (server to client). The server starts each of these channels with the
//! port as two bytes, little endian, then forwards until every port's forwarding ends, and
//! closes the connection. One connection to each port: a WebSocket channel has no end of
//! its own, so the client ends the forwarding by closing the connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;

use super::{input_channel, outbound, Connection, Outgoing, Subprotocol};
use crate::backend::Backend;
use crate::pump;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortsError {
    #[error("query parameter \"port\" is required")]
    Missing,
    #[error("query parameter \"port\" cannot be empty")]
    Empty,
    #[error("unable to parse {0:?} as a port")]
    Bad(String),
    #[error("port {0:?} must be > 0")]
    Zero(String),
    #[error("{0} ports are more than one connection's channels can carry")]
    TooMany(usize),
}

/// The ports of a request's query (`port=80&port=8080,9090`), checked as the kubelet
/// checks them.
pub fn ports_from_query(query: Option<&str>) -> Result<Vec<u16>, PortsError> {
    let values: Vec<String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "port")
        .map(|(_, v)| v.into_owned())
        .collect();
    if values.is_empty() {
        return Err(PortsError::Missing);
    }
    let mut ports = Vec::new();
    for value in values {
        if value.is_empty() {
            return Err(PortsError::Empty);
        }
        for p in value.split(',') {
            let port: u16 = p.parse().map_err(|_| PortsError::Bad(value.clone()))?;
            if port == 0 {
                return Err(PortsError::Zero(value.clone()));
            }
            ports.push(port);
        }
    }
    // Channel numbers are one byte, and 255 is reserved.
    if ports.len() > 127 {
        return Err(PortsError::TooMany(ports.len()));
    }
    Ok(ports)
}

/// Serves the forwarding of `ports` until it ends or the client hangs up.
pub async fn serve<S>(
    ws: WebSocketStream<S>,
    protocol: Subprotocol,
    ports: Vec<u16>,
    pod_sandbox_id: String,
    backend: Arc<dyn Backend>,
    idle_timeout: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut routes = HashMap::new();
    let mut inputs = Vec::new();
    for (i, _) in ports.iter().enumerate() {
        let (route, inbound) = input_channel();
        // At most 127 ports (checked), so 2i + 1 fits a byte.
        routes.insert(data_channel(i), route);
        inputs.push(inbound);
    }
    let conn = Connection::start(ws, protocol.framing, routes, idle_timeout);
    let outgoing = conn.outgoing();
    for (i, port) in ports.iter().enumerate() {
        let le = port.to_le_bytes();
        if outgoing.send(data_channel(i), &le).await.is_err()
            || outgoing.send(data_channel(i) + 1, &le).await.is_err()
        {
            conn.close().await;
            return;
        }
    }
    let mut forwards = JoinSet::new();
    for (i, (port, inbound)) in ports.into_iter().zip(inputs).enumerate() {
        forwards.spawn(forward(
            port,
            data_channel(i),
            inbound,
            outgoing.clone(),
            pod_sandbox_id.clone(),
            backend.clone(),
        ));
    }
    drop(outgoing);
    let closed = conn.closed();
    tokio::select! {
        _ = async { while forwards.join_next().await.is_some() {} } => {}
        _ = closed.cancelled() => forwards.abort_all(),
    }
    conn.close().await;
}

fn data_channel(i: usize) -> u8 {
    u8::try_from(i * 2).unwrap_or(u8::MAX)
}

async fn forward(
    port: u16,
    channel: u8,
    inbound: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    outgoing: Outgoing,
    pod_sandbox_id: String,
    backend: Arc<dyn Backend>,
) {
    let (theirs, ours) = pump::pipe();
    let (ours_read, ours_write) = tokio::io::split(ours);
    pump::inbound(inbound, ours_write);
    let out = outbound(ours_read, channel, outgoing.clone());
    let result = backend
        .port_forward(pod_sandbox_id.clone(), port, theirs)
        .await;
    // Everything the port sent reaches the client before an error does.
    let _ = out.await;
    if let Err(e) = result {
        let message = format!("error forwarding port {port} to pod {pod_sandbox_id}, uid : {e}");
        tracing::warn!("{message}");
        let _ = outgoing.send(channel + 1, message.as_bytes()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_query_as_the_kubelet_reads_them() {
        assert_eq!(
            ports_from_query(Some("port=80&port=8080%2C9090")),
            Ok(vec![80, 8080, 9090])
        );
        assert_eq!(ports_from_query(None), Err(PortsError::Missing));
        assert_eq!(ports_from_query(Some("x=1")), Err(PortsError::Missing));
        assert_eq!(ports_from_query(Some("port=")), Err(PortsError::Empty));
        assert_eq!(
            ports_from_query(Some("port=http")),
            Err(PortsError::Bad("http".into()))
        );
        assert_eq!(
            ports_from_query(Some("port=70000")),
            Err(PortsError::Bad("70000".into()))
        );
        assert_eq!(
            ports_from_query(Some("port=0")),
            Err(PortsError::Zero("0".into()))
        );
        assert_eq!(data_channel(3), 6);
    }
}

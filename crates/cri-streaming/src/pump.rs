//! Copies between SPDY streams and the in-memory pipes the backend reads and writes.
//!
//! An inbound queue nobody reads would stall the whole connection (its reader waits on full
//! queues), so a pump that has no use for more data drops its receiver: the connection then
//! discards that stream's data.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::spdy::StreamSink;

const PIPE_BUFFER: usize = 64 * 1024;

/// A pipe: what the backend gets, and our end of it.
pub(crate) fn pipe() -> (tokio::io::DuplexStream, tokio::io::DuplexStream) {
    tokio::io::duplex(PIPE_BUFFER)
}

/// Sends what `from` yields on `sink` until EOF, then FIN; stops early if the client resets
/// the stream or the connection goes.
pub(crate) fn outbound<R>(mut from: R, sink: StreamSink) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let reset = sink.reset_token();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = tokio::select! {
                n = from.read(&mut buf) => n,
                _ = reset.cancelled() => return,
            };
            match n {
                Ok(0) => break,
                Ok(n) => {
                    if sink.write(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(stream = sink.id(), error = %e, "reading output failed");
                    break;
                }
            }
        }
        let _ = sink.finish().await;
    })
}

/// Writes the client's data into `to`; shuts `to` down at the client's FIN, so its reader
/// sees EOF.
pub(crate) fn inbound<W>(mut from: mpsc::Receiver<Bytes>, mut to: W) -> JoinHandle<()>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        while let Some(chunk) = from.recv().await {
            if let Err(e) = to.write_all(&chunk).await {
                // The backend stopped reading: the rest is discarded.
                tracing::debug!(error = %e, "the backend no longer takes input");
                return;
            }
        }
        let _ = to.shutdown().await;
    })
}

//! Exec, Attach and PortForward: the CRI answers with a URL of the streaming server
//! (berth-cri-streaming), which calls back here once the client connects. Exec and attach
//! go through the container's shim, as the Docker API's do; a forwarded port is connected
//! from inside the pod's network namespace.

use std::sync::Arc;

use berth_cri_streaming::{Backend, BackendError, BackendFuture, PortStream, Streams};
use berth_shim_protocol::{parse_header, EXIT, STDERR, STDOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Cri;

pub(crate) struct StreamBackend(pub(crate) Arc<Cri>);

fn failed(e: impl std::fmt::Display) -> BackendError {
    BackendError::new(e)
}

/// A blocking engine call off the async workers (the gRPC services' helper), its failure
/// as the text the client gets.
async fn blocking<T: Send + 'static>(
    cri: &Arc<Cri>,
    work: impl FnOnce(&Cri) -> crate::error::Result<T> + Send + 'static,
) -> Result<T, BackendError> {
    crate::images::blocking(cri, work)
        .await
        .map_err(|status| BackendError::new(status.message()))
}

/// What came of a shim stream: the process's exit code (None: the stream ended without).
type ShimOutcome = Option<i32>;

/// Copy a shim stream to the client's streams and the client's input to the shim, until the
/// shim's exit frame or its end; terminal sizes go to `resize`.
async fn pump(
    shim: berth_engine::containers::stream::ShimStream,
    mut streams: Streams,
    resize: impl Fn(u16, u16) + Send,
) -> Result<ShimOutcome, BackendError> {
    let leftover = shim.buffer().to_vec();
    let sock = shim.into_inner();
    sock.set_nonblocking(true).map_err(failed)?;
    let sock = tokio::net::UnixStream::from_std(sock).map_err(failed)?;
    let (mut shim_rd, mut shim_wr) = sock.into_split();
    let mut from_shim = leftover;
    let mut stdin = streams.stdin.take();
    let mut resizes = streams.resize.take();
    let mut input = vec![0u8; 32 * 1024];
    loop {
        while let Some((kind, payload)) = take_frame(&mut from_shim) {
            let out = match kind {
                EXIT => {
                    let code = payload
                        .get(..4)
                        .and_then(|b| b.try_into().ok())
                        .map_or(255, i32::from_be_bytes);
                    return Ok(Some(code));
                }
                STDOUT => streams.stdout.as_mut(),
                STDERR => streams.stderr.as_mut().or(streams.stdout.as_mut()),
                _ => None,
            };
            if let Some(out) = out {
                // A client gone away is not the process's failure: its output is dropped.
                if out.write_all(&payload).await.is_err() {
                    streams.stdout = None;
                    streams.stderr = None;
                }
            }
        }
        let mut chunk = [0u8; 32 * 1024];
        let event = tokio::select! {
            n = shim_rd.read(&mut chunk) => Event::Shim(n),
            n = read_input(&mut stdin, &mut input) => Event::Input(n),
            size = next_size(&mut resizes) => Event::Resize(size),
        };
        match event {
            Event::Shim(Ok(0) | Err(_)) => return Ok(None),
            Event::Shim(Ok(n)) => from_shim.extend_from_slice(&chunk[..n]),
            Event::Input(Ok(0) | Err(_)) => {
                stdin = None;
                let _ = shim_wr.shutdown().await;
            }
            Event::Input(Ok(n)) => {
                if shim_wr.write_all(&input[..n]).await.is_err() {
                    stdin = None;
                }
            }
            Event::Resize(Some(size)) => resize(size.height, size.width),
            Event::Resize(None) => resizes = None,
        }
    }
}

enum Event {
    Shim(std::io::Result<usize>),
    Input(std::io::Result<usize>),
    Resize(Option<berth_cri_streaming::TerminalSize>),
}

/// The client's next input, or never when it has none (left).
async fn read_input(
    stdin: &mut Option<berth_cri_streaming::Input>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match stdin.as_mut() {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}

/// The client's next terminal size, or never without a resize stream.
async fn next_size(
    resizes: &mut Option<tokio::sync::mpsc::Receiver<berth_cri_streaming::TerminalSize>>,
) -> Option<berth_cri_streaming::TerminalSize> {
    match resizes.as_mut() {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// One frame from the front of `buf` (8-byte header: stream, 0, 0, 0, length).
fn take_frame(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let header: [u8; 8] = buf.get(..8)?.try_into().ok()?;
    let (stream, len) = parse_header(&header);
    if buf.len() < 8 + len {
        return None;
    }
    let payload = buf[8..8 + len].to_vec();
    buf.drain(..8 + len);
    Some((stream, payload))
}

impl Backend for StreamBackend {
    fn exec(
        &self,
        container_id: String,
        cmd: Vec<String>,
        streams: Streams,
    ) -> BackendFuture<'_, i32> {
        Box::pin(async move {
            let body = berth_api_types::exec::ExecConfig {
                cmd,
                tty: streams.tty,
                attach_stdin: streams.stdin.is_some(),
                attach_stdout: streams.stdout.is_some(),
                attach_stderr: streams.stderr.is_some(),
                ..Default::default()
            };
            let (exec_id, shim) = blocking(&self.0, move |cri| {
                let id = cri.engine_id(&container_id)?;
                let exec_id = cri.engine.create_exec(&id, body)?;
                let (_, stream) = cri.engine.start_exec(&exec_id, false)?;
                let stream = stream.ok_or_else(|| {
                    crate::error::CriError::FailedPrecondition("the exec gave no stream".into())
                })?;
                Ok((exec_id, stream))
            })
            .await?;
            let engine = self.0.engine.clone();
            let resize = move |h, w| {
                let _ = engine.resize_exec(&exec_id, h, w);
            };
            Ok(pump(shim, streams, resize).await?.unwrap_or(137))
        })
    }

    fn attach(&self, container_id: String, streams: Streams) -> BackendFuture<'_, ()> {
        Box::pin(async move {
            let opts = berth_engine::containers::stream::AttachOptions {
                stdin: streams.stdin.is_some(),
                stdout: streams.stdout.is_some(),
                stderr: streams.stderr.is_some(),
                logs: false,
            };
            let (id, shim) = blocking(&self.0, move |cri| {
                let id = cri.engine_id(&container_id)?;
                match cri.engine.attach_container(&id, opts)? {
                    (_, berth_engine::containers::stream::Attached::Now(stream, _)) => {
                        Ok((id, stream))
                    }
                    (_, berth_engine::containers::stream::Attached::AtStart(_)) => {
                        Err(crate::error::CriError::FailedPrecondition(format!(
                            "container {id} is not running"
                        )))
                    }
                }
            })
            .await?;
            let engine = self.0.engine.clone();
            let resize = move |h, w| {
                let _ = engine.resize_container(&id, h, w);
            };
            pump(shim, streams, resize).await.map(drop)
        })
    }

    fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        stream: PortStream,
    ) -> BackendFuture<'_, ()> {
        Box::pin(async move {
            let conn = blocking(&self.0, move |cri| {
                cri.connect_in_pod(&pod_sandbox_id, port)
            })
            .await?;
            conn.set_nonblocking(true).map_err(failed)?;
            let conn = tokio::net::TcpStream::from_std(conn).map_err(failed)?;
            let (mut from_client, mut to_client) = tokio::io::split(stream);
            let (mut from_port, mut to_port) = conn.into_split();
            // The client's end of input half-closes the port's connection; the forward is
            // over when the port has said all it will (as containerd's, so that the client
            // sees the end of a response and closes its side).
            let upload = async {
                let _ = tokio::io::copy(&mut from_client, &mut to_port).await;
                let _ = to_port.shutdown().await;
                std::future::pending::<()>().await
            };
            let download = async {
                let copied = tokio::io::copy(&mut from_port, &mut to_client).await;
                let _ = to_client.shutdown().await;
                copied
            };
            tokio::select! {
                copied = download => copied.map(drop).map_err(failed),
                () = upload => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole() {
        let mut buf = vec![1, 0, 0, 0, 0, 0, 0, 2, b'h', b'i', 2, 0, 0, 0, 0, 0];
        assert_eq!(take_frame(&mut buf), Some((1, b"hi".to_vec())));
        assert_eq!(take_frame(&mut buf), None, "a partial header stays");
        assert_eq!(buf.len(), 6);
    }
}

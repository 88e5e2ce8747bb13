//! A test backend: exec runs the command as a host child process (tests only; the CRI's
//! backend execs in containers), attach echoes stdin, port_forward connects to a TCP port
//! on 127.0.0.1.

#![allow(dead_code)]

use std::process::Stdio;
use std::sync::Arc;

use berth_cri_streaming::{
    Backend, BackendError, BackendFuture, Config, PortStream, StreamServer, Streams,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const POD: &str = "pod-1";

pub struct HostBackend;

impl Backend for HostBackend {
    fn exec(
        &self,
        _container_id: String,
        cmd: Vec<String>,
        streams: Streams,
    ) -> BackendFuture<'_, i32> {
        Box::pin(exec(cmd, streams))
    }

    fn attach(&self, _container_id: String, streams: Streams) -> BackendFuture<'_, ()> {
        Box::pin(attach(streams))
    }

    fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        stream: PortStream,
    ) -> BackendFuture<'_, ()> {
        Box::pin(port_forward(pod_sandbox_id, port, stream))
    }
}

async fn exec(cmd: Vec<String>, streams: Streams) -> Result<i32, BackendError> {
    let Streams {
        stdin,
        stdout,
        stderr,
        resize,
        tty,
    } = streams;
    if cmd.first().map(String::as_str) == Some("report-resize") {
        // Prints the first terminal size the client sends.
        let mut resize = resize.ok_or_else(|| BackendError::new("no resize stream"))?;
        let mut out = stdout.ok_or_else(|| BackendError::new("no stdout"))?;
        let size = resize
            .recv()
            .await
            .ok_or_else(|| BackendError::new("resize stream ended"))?;
        out.write_all(format!("tty={tty} {}x{}\n", size.width, size.height).as_bytes())
            .await?;
        return Ok(0);
    }
    let (program, args) = cmd
        .split_first()
        .ok_or_else(|| BackendError::new("empty command"))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BackendError::new(format!("starting {program}: {e}")))?;
    let feeding = match (stdin, child.stdin.take()) {
        (Some(mut from), Some(mut to)) => Some(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut to).await;
        })),
        _ => None,
    };
    let copies = [
        (
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            stdout,
        ),
        (
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            stderr,
        ),
    ]
    .into_iter()
    .filter_map(|(from, to)| {
        let (mut from, mut to) = (from?, to?);
        Some(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut to).await;
            let _ = to.shutdown().await;
        }))
    })
    .collect::<Vec<_>>();
    let status = child.wait().await?;
    for copy in copies {
        let _ = copy.await;
    }
    if let Some(feeding) = feeding {
        feeding.abort();
    }
    Ok(status.code().unwrap_or(255))
}

async fn attach(streams: Streams) -> Result<(), BackendError> {
    if let Some(mut err) = streams.stderr {
        err.write_all(b"attached\n").await?;
    }
    let (Some(mut input), Some(mut output)) = (streams.stdin, streams.stdout) else {
        return Err(BackendError::new("attach needs stdin and stdout"));
    };
    tokio::io::copy(&mut input, &mut output).await?;
    Ok(())
}

async fn port_forward(pod: String, port: u16, mut stream: PortStream) -> Result<(), BackendError> {
    if pod != POD {
        return Err(BackendError::new(format!("no pod {pod}")));
    }
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tokio::io::copy_bidirectional(&mut stream, &mut tcp).await?;
    Ok(())
}

pub async fn server() -> StreamServer {
    match StreamServer::bind(Config::default(), Arc::new(HostBackend)).await {
        Ok(s) => s,
        Err(e) => panic!("binding the streaming server: {e}"),
    }
}

/// A TCP service on 127.0.0.1 that answers each connection's whole input with
/// "pong:" + input.
pub async fn pong_service() -> u16 {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("binding the pong service: {e}"),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut input = Vec::new();
                if conn.read_to_end(&mut input).await.is_ok() {
                    let mut reply = b"pong:".to_vec();
                    reply.extend_from_slice(&input);
                    let _ = conn.write_all(&reply).await;
                }
            });
        }
    });
    port
}

/// A port on 127.0.0.1 nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => panic!("binding: {e}"),
    };
    listener.local_addr().map(|a| a.port()).unwrap_or(0)
}

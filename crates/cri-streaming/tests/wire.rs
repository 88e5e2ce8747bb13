//! The server on the wire, without Go: the HTTP refusals, and the SPDY protocols spoken
//! frame by frame with the crate's own framer (so these run wherever the tests do).

mod common;

use std::sync::Arc;
use std::time::Duration;

use berth_cri_streaming::spdy::frame::rst;
use berth_cri_streaming::spdy::{Frame, FrameDecoder, FrameEncoder, Headers};
use berth_cri_streaming::{Config, ExecRequest, PortForwardRequest, StreamServer};
use bytes::{Bytes, BytesMut};
use common::{pong_service, server, HostBackend, POD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Sends one HTTP request for `url`'s path and returns the response head and the
/// connection (with whatever followed the head).
async fn request(
    url: &str,
    method: &str,
    extra: &[(&str, &str)],
) -> Result<(String, TcpStream, BytesMut), Box<dyn std::error::Error>> {
    let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
    let (addr, path) = rest.split_at(rest.find('/').ok_or("no path")?);
    let mut tcp = TcpStream::connect(addr).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n");
    for (n, v) in extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await?;
    let mut buf = BytesMut::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf.split_to(end + 4)).into_owned();
            return Ok((head, tcp, buf));
        }
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err(format!("connection closed before the response head: {buf:?}").into());
        }
    }
}

const UPGRADE: [(&str, &str); 2] = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")];

fn exec_url(server: &StreamServer, cmd: &[&str]) -> String {
    server
        .get_exec(ExecRequest {
            container_id: "c1".into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn requests_that_cannot_upgrade_get_the_kubelets_answers() -> TestResult {
    let server = server().await;
    let addr = server.local_addr();

    let (head, ..) = request(&format!("http://{addr}/exec/nosuchtoken"), "POST", &UPGRADE).await?;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, ..) = request(&format!("http://{addr}/logs/x"), "GET", &[]).await?;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    let url = exec_url(&server, &["true"]);
    let (head, ..) = request(&url, "PUT", &UPGRADE).await?;
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");

    // A URL of one kind is not good for another.
    let url = exec_url(&server, &["true"]);
    let (head, ..) = request(&url.replace("/exec/", "/attach/"), "POST", &UPGRADE).await?;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    let url = exec_url(&server, &["true"]);
    let (head, ..) = request(&url, "POST", &UPGRADE).await?;
    assert!(
        head.starts_with("HTTP/1.1 400"),
        "no protocol offered: {head}"
    );

    let url = exec_url(&server, &["true"]);
    let mut h = UPGRADE.to_vec();
    h.push(("X-Stream-Protocol-Version", "v9.channel.k8s.io"));
    let (head, ..) = request(&url, "POST", &h).await?;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("x-accepted-stream-protocol-versions: v4.channel.k8s.io"),
        "{head}"
    );

    let url = exec_url(&server, &["true"]);
    let (head, ..) = request(
        &url,
        "POST",
        &[("X-Stream-Protocol-Version", "v4.channel.k8s.io")],
    )
    .await?;
    assert!(head.starts_with("HTTP/1.1 400"), "not an upgrade: {head}");

    // A WebSocket upgrade without its key and version (tests/websocket.rs has the real ones).
    let url = exec_url(&server, &["true"]);
    let (head, ..) = request(
        &url,
        "GET",
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ],
    )
    .await?;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    Ok(())
}

/// The client's end of an upgraded connection.
struct Client {
    tcp: TcpStream,
    buf: BytesMut,
    enc: FrameEncoder,
    dec: FrameDecoder,
}

impl Client {
    async fn upgrade(url: &str, protocols: &str) -> Result<Client, Box<dyn std::error::Error>> {
        let mut h = UPGRADE.to_vec();
        h.push(("X-Stream-Protocol-Version", protocols));
        let (head, tcp, buf) = request(url, "POST", &h).await?;
        if !head.starts_with("HTTP/1.1 101") {
            return Err(format!("no upgrade: {head}").into());
        }
        Ok(Client {
            tcp,
            buf,
            enc: FrameEncoder::new()?,
            dec: FrameDecoder::new(),
        })
    }

    async fn send(&mut self, frame: Frame) -> TestResult {
        let mut out = BytesMut::new();
        self.enc.encode(&frame, &mut out)?;
        self.tcp.write_all(&out).await?;
        Ok(())
    }

    async fn open(&mut self, id: u32, pairs: &[(&str, &str)]) -> TestResult {
        let mut headers = Headers::new();
        for (n, v) in pairs {
            headers.set(n, v);
        }
        self.send(Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers,
        })
        .await
    }

    async fn recv(&mut self) -> Result<Option<Frame>, Box<dyn std::error::Error>> {
        loop {
            if let Some(f) = self.dec.decode(&mut self.buf)? {
                return Ok(Some(f));
            }
            if self.tcp.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads until the connection ends; returns each stream's data and whether it was FIN'd.
    async fn drain(&mut self) -> Result<Vec<Frame>, Box<dyn std::error::Error>> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv().await? {
            let goaway = matches!(f, Frame::GoAway { .. });
            frames.push(f);
            if goaway {
                break;
            }
        }
        Ok(frames)
    }
}

fn data_of(frames: &[Frame], id: u32) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    let mut fin = false;
    for f in frames {
        if let Frame::Data {
            stream_id,
            fin: f_fin,
            data: d,
        } = f
        {
            if *stream_id == id {
                data.extend_from_slice(d);
                fin |= f_fin;
            }
        }
    }
    (data, fin)
}

#[tokio::test]
async fn exec_over_v4_frame_by_frame() -> TestResult {
    let server = server().await;
    let url = exec_url(&server, &["sh", "-c", "echo hi; echo oops >&2; exit 7"]);
    let mut c = Client::upgrade(&url, "v5.channel.k8s.io, v4.channel.k8s.io").await?;
    c.open(1, &[("streamType", "error")]).await?;
    c.open(3, &[("streamType", "stdout")]).await?;
    c.open(5, &[("streamType", "stderr")]).await?;
    let frames = c.drain().await?;
    let replies: Vec<u32> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::SynReply { stream_id, .. } => Some(*stream_id),
            _ => None,
        })
        .collect();
    assert_eq!(replies, vec![1, 3, 5]);
    assert_eq!(data_of(&frames, 3), (b"hi\n".to_vec(), true));
    assert_eq!(data_of(&frames, 5), (b"oops\n".to_vec(), true));
    let (status, fin) = data_of(&frames, 1);
    assert!(fin);
    let status: serde_json::Value = serde_json::from_slice(&status)?;
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "7");
    assert!(matches!(
        frames.last(),
        Some(Frame::GoAway { last_good: 5, .. })
    ));
    Ok(())
}

#[tokio::test]
async fn a_client_that_never_opens_its_streams_is_hung_up_on() -> TestResult {
    let config = Config {
        stream_creation_timeout: Duration::from_millis(100),
        ..Config::default()
    };
    let server = StreamServer::bind(config, Arc::new(HostBackend)).await?;
    let url = exec_url(&server, &["true"]);
    let mut c = Client::upgrade(&url, "v4.channel.k8s.io").await?;
    c.open(1, &[("streamType", "error")]).await?;
    let frames = c.drain().await?;
    assert!(matches!(
        frames.first(),
        Some(Frame::SynReply { stream_id: 1, .. })
    ));
    assert!(
        matches!(frames.last(), Some(Frame::GoAway { .. })),
        "{frames:?}"
    );
    Ok(())
}

#[tokio::test]
async fn port_forward_refuses_bad_streams_and_pairs_old_clients_by_stream_id() -> TestResult {
    let server = server().await;
    let port = pong_service().await.to_string();
    let url = server
        .get_port_forward(PortForwardRequest {
            pod_sandbox_id: POD.into(),
            ports: vec![],
        })
        .unwrap_or_default();
    let mut c = Client::upgrade(&url, "portforward.k8s.io").await?;
    c.open(1, &[("streamType", "data")]).await?;
    assert_eq!(
        c.recv().await?,
        Some(Frame::RstStream {
            stream_id: 1,
            status: rst::CANCEL
        }),
        "no port header"
    );
    c.open(3, &[("streamType", "data"), ("port", "0")]).await?;
    assert!(matches!(
        c.recv().await?,
        Some(Frame::RstStream { stream_id: 3, .. })
    ));
    c.open(5, &[("streamType", "stdin"), ("port", &port)])
        .await?;
    assert!(matches!(
        c.recv().await?,
        Some(Frame::RstStream { stream_id: 5, .. })
    ));

    // No requestID header: error then data, ids two apart, make a pair.
    c.open(7, &[("streamType", "error"), ("port", &port)])
        .await?;
    c.open(9, &[("streamType", "data"), ("port", &port)])
        .await?;
    c.send(Frame::Data {
        stream_id: 9,
        fin: true,
        data: Bytes::from_static(b"old"),
    })
    .await?;
    let mut frames = Vec::new();
    while !frames.iter().any(|f| {
        matches!(
            f,
            Frame::Data {
                stream_id: 7,
                fin: true,
                ..
            }
        )
    }) {
        match c.recv().await? {
            Some(f) => frames.push(f),
            None => return Err("connection closed".into()),
        }
    }
    assert_eq!(data_of(&frames, 9), (b"pong:old".to_vec(), true));
    assert_eq!(data_of(&frames, 7), (Vec::new(), true), "no error");
    Ok(())
}

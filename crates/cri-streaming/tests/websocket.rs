//! The server's WebSocket side through a real WebSocket client (tokio-tungstenite): exec
//! and attach in v4, v5, base64 and before v4; resize; port forwarding; refusals.

mod common;

use std::collections::BTreeMap;

use base64::Engine;
use berth_cri_streaming::{AttachRequest, ExecRequest, PortForwardRequest, StreamServer};
use common::{closed_port, server, POD};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Ws = WebSocketStream<TcpStream>;

async fn connect(
    url: &str,
    protocols: &str,
) -> Result<(Ws, Response), tokio_tungstenite::tungstenite::Error> {
    let url = url.replacen("http://", "ws://", 1);
    let mut request = url.as_str().into_client_request()?;
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocols)
                .map_err(tokio_tungstenite::tungstenite::http::Error::from)?,
        );
    }
    let host = request
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let tcp = TcpStream::connect(host).await?;
    tokio_tungstenite::client_async(request, tcp).await
}

/// One message's channel and data, in binary or base64 framing.
fn decode(message: &Message, base64: bool) -> Option<(u8, Vec<u8>)> {
    let payload: &[u8] = match message {
        Message::Binary(b) => b,
        Message::Text(t) => t.as_bytes(),
        _ => return None,
    };
    let (&first, rest) = payload.split_first()?;
    if base64 {
        let data = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        Some((first.wrapping_sub(b'0'), data))
    } else {
        Some((first, rest.to_vec()))
    }
}

/// Everything the server sends until it closes: the data per channel, and the messages in
/// order (channel, length) to check what came first.
async fn read_to_close(
    ws: &mut Ws,
    base64: bool,
) -> Result<(BTreeMap<u8, Vec<u8>>, Vec<(u8, usize)>), Box<dyn std::error::Error>> {
    let mut channels: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut order = Vec::new();
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_close() {
            break;
        }
        let (channel, data) = decode(&message, base64).ok_or("undecodable message")?;
        order.push((channel, data.len()));
        channels
            .entry(channel)
            .or_default()
            .extend_from_slice(&data);
    }
    Ok((channels, order))
}

fn exec_url(server: &StreamServer, cmd: &[&str], stdin: bool, tty: bool) -> String {
    server
        .get_exec(ExecRequest {
            container_id: "c1".into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty,
            stdin,
            stdout: true,
            stderr: !tty,
        })
        .unwrap_or_default()
}

fn text(channels: &BTreeMap<u8, Vec<u8>>, channel: u8) -> String {
    String::from_utf8_lossy(channels.get(&channel).map(Vec::as_slice).unwrap_or(b"")).into_owned()
}

#[tokio::test]
async fn v4_exec_sends_output_then_the_exit_code_as_a_status() -> TestResult {
    let server = server().await;
    let url = exec_url(
        &server,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
        false,
    );
    let (mut ws, resp) = connect(&url, "v4.channel.k8s.io").await?;
    assert_eq!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.as_bytes()),
        Some(&b"v4.channel.k8s.io"[..])
    );
    let (channels, order) = read_to_close(&mut ws, false).await?;
    // The kubelet's "connection is up" message: empty, on stdout.
    assert_eq!(order.first(), Some(&(1, 0)));
    assert_eq!(text(&channels, 1), "out\n");
    assert_eq!(text(&channels, 2), "err\n");
    let status: serde_json::Value = serde_json::from_slice(&channels[&3])?;
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    // The status comes after all output.
    assert_eq!(order.last().map(|(c, _)| *c), Some(3));
    Ok(())
}

#[tokio::test]
async fn v5_stdin_ends_with_the_close_signal() -> TestResult {
    let server = server().await;
    let url = exec_url(&server, &["sh", "-c", "cat; echo done"], true, false);
    // client-go's order of preference: v5 wins.
    let (mut ws, resp) = connect(&url, "v5.channel.k8s.io, v4.channel.k8s.io").await?;
    assert_eq!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.as_bytes()),
        Some(&b"v5.channel.k8s.io"[..])
    );
    ws.send(Message::binary(b"\x00hello\n".to_vec())).await?;
    ws.send(Message::binary(vec![255u8, 0])).await?;
    let (channels, _) = read_to_close(&mut ws, false).await?;
    assert_eq!(text(&channels, 1), "hello\ndone\n");
    assert_eq!(text(&channels, 3), r#"{"metadata":{},"status":"Success"}"#);
    Ok(())
}

#[tokio::test]
async fn base64_framing_goes_both_ways() -> TestResult {
    let server = server().await;
    let url = exec_url(
        &server,
        &["sh", "-c", "head -c 3; echo; exit 0"],
        true,
        false,
    );
    let (mut ws, _) = connect(&url, "v4.base64.channel.k8s.io").await?;
    // "abc" on stdin, as '0' + base64.
    ws.send(Message::text("0YWJj")).await?;
    let first = ws.next().await.ok_or("closed")??;
    // Every message from the server is text: '1' and base64 (here the empty first one).
    assert_eq!(first, Message::text("1"));
    let (channels, _) = read_to_close(&mut ws, true).await?;
    assert_eq!(text(&channels, 1), "abc\n");
    assert_eq!(text(&channels, 3), r#"{"metadata":{},"status":"Success"}"#);
    Ok(())
}

#[tokio::test]
async fn before_v4_the_error_channel_has_only_a_failures_text() -> TestResult {
    let server = server().await;
    let url = exec_url(&server, &["sh", "-c", "exit 2"], false, false);
    let (mut ws, _) = connect(&url, "channel.k8s.io").await?;
    let (channels, _) = read_to_close(&mut ws, false).await?;
    assert_eq!(
        text(&channels, 3),
        "command terminated with non-zero exit code: error executing command [sh -c exit 2], exit code 2"
    );

    // A client that names no subprotocol gets the same (the kubelet's "" entry).
    let url = exec_url(&server, &["true"], false, false);
    let (mut ws, resp) = connect(&url, "").await?;
    assert!(resp.headers().get("Sec-WebSocket-Protocol").is_none());
    let (channels, _) = read_to_close(&mut ws, false).await?;
    assert!(!channels.contains_key(&3) || channels[&3].is_empty());
    Ok(())
}

#[tokio::test]
async fn a_terminal_takes_sizes_on_the_resize_channel() -> TestResult {
    let server = server().await;
    let url = exec_url(&server, &["report-resize"], true, true);
    let (mut ws, _) = connect(&url, "v4.channel.k8s.io").await?;
    ws.send(Message::binary(
        b"\x04{\"Width\":100,\"Height\":42}".to_vec(),
    ))
    .await?;
    let (channels, _) = read_to_close(&mut ws, false).await?;
    assert_eq!(text(&channels, 1), "tty=true 100x42\n");
    assert!(!channels.contains_key(&2));
    Ok(())
}

#[tokio::test]
async fn attach_streams_stdin_back() -> TestResult {
    let server = server().await;
    let url = server.get_attach(AttachRequest {
        container_id: "c1".into(),
        tty: false,
        stdin: true,
        stdout: true,
        stderr: true,
    })?;
    let (mut ws, _) = connect(&url, "v5.channel.k8s.io").await?;
    ws.send(Message::binary(b"\x00echoed".to_vec())).await?;
    ws.send(Message::binary(vec![255u8, 0])).await?;
    let (channels, _) = read_to_close(&mut ws, false).await?;
    assert_eq!(text(&channels, 2), "attached\n");
    assert_eq!(text(&channels, 1), "echoed");
    assert_eq!(text(&channels, 3), r#"{"metadata":{},"status":"Success"}"#);
    Ok(())
}

/// A TCP service on 127.0.0.1 that answers every chunk it reads with "echo:" + chunk.
async fn echo_service() -> Result<u16, std::io::Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let mut reply = b"echo:".to_vec();
                    reply.extend_from_slice(&buf[..n]);
                    if conn.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

#[tokio::test]
async fn port_forward_announces_each_port_then_forwards() -> TestResult {
    let server = server().await;
    let open = echo_service().await?;
    let closed = closed_port();
    let url = server.get_port_forward(PortForwardRequest {
        pod_sandbox_id: POD.into(),
        ports: vec![],
    })?;
    let (mut ws, resp) = connect(
        &format!("{url}?port={open}&port={closed}"),
        "v4.channel.k8s.io",
    )
    .await?;
    assert_eq!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.as_bytes()),
        Some(&b"v4.channel.k8s.io"[..])
    );
    // Each port's data and error channels start with the port, little endian.
    let mut announced = BTreeMap::new();
    while announced.len() < 4 {
        let m = ws.next().await.ok_or("closed")??;
        let (channel, data) = decode(&m, false).ok_or("undecodable")?;
        if announced.contains_key(&channel) {
            // The closed port's error may follow its announcement at once.
            assert_eq!(
                channel, 3,
                "a second message on {channel} before all announcements"
            );
            continue;
        }
        announced.insert(channel, data);
    }
    assert_eq!(announced[&0], open.to_le_bytes());
    assert_eq!(announced[&1], open.to_le_bytes());
    assert_eq!(announced[&2], closed.to_le_bytes());
    assert_eq!(announced[&3], closed.to_le_bytes());

    ws.send(Message::binary(b"\x00ping".to_vec())).await?;
    let mut reply = Vec::new();
    let mut errors = Vec::new();
    while reply != b"echo:ping" || errors.is_empty() {
        let m = ws.next().await.ok_or("closed")??;
        match decode(&m, false).ok_or("undecodable")? {
            (0, data) => reply.extend_from_slice(&data),
            (3, data) => errors.extend_from_slice(&data),
            (c, data) => return Err(format!("unexpected message on {c}: {data:?}").into()),
        }
    }
    let errors = String::from_utf8_lossy(&errors);
    assert!(
        errors.starts_with(&format!("error forwarding port {closed} to pod {POD}")),
        "{errors}"
    );
    ws.close(None).await?;
    Ok(())
}

#[tokio::test]
async fn bad_upgrades_are_refused_as_the_kubelet_refuses_them() -> TestResult {
    let server = server().await;
    let url = exec_url(&server, &["true"], false, false);
    let refused = connect(&url, "v9.channel.k8s.io").await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "{refused:?}"
    );
    // Port forwarding over WebSocket takes its ports from the query.
    let url = server.get_port_forward(PortForwardRequest {
        pod_sandbox_id: POD.into(),
        ports: vec![],
    })?;
    let refused = connect(&url, "v4.channel.k8s.io").await;
    match &refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 400);
            let body = String::from_utf8_lossy(r.body().as_deref().unwrap_or(b""));
            assert!(
                body.contains("query parameter \"port\" is required"),
                "{body}"
            );
        }
        other => panic!("a port forward without ports: {other:?}"),
    }
    Ok(())
}

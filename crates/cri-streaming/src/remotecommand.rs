//! The remotecommand protocol over SPDY (kubelet's remotecommand/httpstream.go), for exec
//! and attach.
//!
//! After the upgrade the client opens one stream per channel, each named by its `streamType`
//! header: `error` always, `stdin`, `stdout`, `stderr` as asked for, `resize` with a terminal
//! (v3 and v4). Once all have arrived the command runs; its outcome goes on the error stream:
//! in v4 a JSON metav1.Status (an exit code as reason NonZeroExitCode with an ExitCode
//! cause), in v1 to v3 the failure's text and nothing on success.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::backend::{Backend, BackendError, Input, Output, Streams, TerminalSize};
use crate::pump;
use crate::spdy::{IncomingStream, Session, StreamSink};

pub const V1: &str = "channel.k8s.io";
pub const V2: &str = "v2.channel.k8s.io";
pub const V3: &str = "v3.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";
/// What the kubelet of Kubernetes 1.29 accepts, in its order (client-go 1.29 also offers
/// v5.channel.k8s.io first; v5 only adds a WebSocket close signal, and the kubelet of 1.29
/// negotiates v4 with it).
pub const SUPPORTED: [&str; 4] = [V4, V3, V2, V1];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    V1,
    V2,
    V3,
    V4,
}

impl Protocol {
    pub fn from_name(name: &str) -> Option<Protocol> {
        match name {
            V1 => Some(Protocol::V1),
            V2 => Some(Protocol::V2),
            V3 => Some(Protocol::V3),
            V4 => Some(Protocol::V4),
            _ => None,
        }
    }

    fn resizes(self) -> bool {
        self >= Protocol::V3
    }
}

/// Which streams the request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamOptions {
    /// The streams to wait for: the error stream and the ones asked for.
    pub fn expected_streams(&self, protocol: Protocol) -> usize {
        1 + usize::from(self.stdin)
            + usize::from(self.stdout)
            + usize::from(self.stderr)
            + usize::from(self.tty && protocol.resizes())
    }
}

/// What the client asked to run.
#[derive(Debug, Clone)]
pub enum Command {
    Exec {
        container_id: String,
        cmd: Vec<String>,
    },
    Attach {
        container_id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error("timed out waiting for client to create streams")]
    Timeout,
    #[error("the client went away before creating its streams")]
    Closed,
}

type Accepted = (mpsc::Receiver<Bytes>, StreamSink);

/// The streams as they arrived, by type.
#[derive(Default)]
pub struct Collected {
    error: Option<Accepted>,
    stdin: Option<Accepted>,
    stdout: Option<Accepted>,
    stderr: Option<Accepted>,
    resize: Option<Accepted>,
}

impl Collected {
    /// Files an accepted stream by its type; false for a type this protocol does not have
    /// (accepted anyway, and ignored, as the kubelet does).
    fn file(&mut self, stream_type: &str, accepted: Accepted, protocol: Protocol) -> bool {
        let slot = match stream_type {
            "error" => &mut self.error,
            "stdin" => &mut self.stdin,
            "stdout" => &mut self.stdout,
            "stderr" => &mut self.stderr,
            "resize" if protocol.resizes() => &mut self.resize,
            other => {
                tracing::warn!(stream_type = other, "unexpected stream type");
                return false;
            }
        };
        *slot = Some(accepted);
        true
    }
}

/// Waits for the client's streams, replying to each, until as many as expected arrived.
pub async fn collect(
    incoming: &mut mpsc::Receiver<IncomingStream>,
    protocol: Protocol,
    opts: StreamOptions,
    timeout: Duration,
) -> Result<Collected, StreamsError> {
    let expected = opts.expected_streams(protocol);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut collected = Collected::default();
    let mut received = 0;
    while received < expected {
        let stream = match tokio::time::timeout_at(deadline, incoming.recv()).await {
            Err(_) => return Err(StreamsError::Timeout),
            Ok(None) => return Err(StreamsError::Closed),
            Ok(Some(stream)) => stream,
        };
        let stream_type = stream.headers().get("streamtype").unwrap_or("").to_string();
        let accepted = stream.accept().await.map_err(|_| StreamsError::Closed)?;
        if collected.file(&stream_type, accepted, protocol) {
            received += 1;
        }
    }
    Ok(collected)
}

/// How the command ended, for the error stream.
#[derive(Debug)]
pub enum Outcome {
    Success,
    ExitCode { code: i32, cmd: Vec<String> },
    ExecFailed(BackendError),
    AttachFailed(BackendError),
}

/// metav1.Status as client-go decodes it (field names and omissions as Go's encoding/json
/// writes them).
#[derive(Serialize)]
struct Status {
    metadata: Empty,
    status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    #[serde(skip_serializing_if = "is_zero")]
    code: i32,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Details {
    causes: Vec<Cause>,
}

/// metav1.StatusCause: its Go field Type is written as "reason".
#[derive(Serialize)]
struct Cause {
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    message: String,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl Outcome {
    fn status(&self) -> Status {
        let failure = |message: String, reason, details, code| Status {
            metadata: Empty {},
            status: "Failure",
            message,
            reason,
            details,
            code,
        };
        match self {
            Outcome::Success => Status {
                metadata: Empty {},
                status: "Success",
                message: String::new(),
                reason: "",
                details: None,
                code: 0,
            },
            Outcome::ExitCode { code, cmd } => failure(
                format!(
                    "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                    cmd.join(" ")
                ),
                "NonZeroExitCode",
                Some(Details {
                    causes: vec![Cause {
                        reason: "ExitCode",
                        message: code.to_string(),
                    }],
                }),
                0,
            ),
            Outcome::ExecFailed(e) => internal(format!("error executing command in container: {e}")),
            Outcome::AttachFailed(e) => internal(format!("error attaching to container: {e}")),
        }
    }

    /// What goes on the error stream, if anything.
    pub fn error_stream_message(&self, protocol: Protocol) -> Option<Vec<u8>> {
        let status = self.status();
        if protocol == Protocol::V4 {
            return serde_json::to_vec(&status).ok();
        }
        match self {
            Outcome::Success => None,
            _ => Some(status.message.into_bytes()),
        }
    }
}

/// apierrors.NewInternalError.
fn internal(cause: String) -> Status {
    Status {
        metadata: Empty {},
        status: "Failure",
        message: format!("Internal error occurred: {cause}"),
        reason: "InternalError",
        details: Some(Details {
            causes: vec![Cause {
                reason: "",
                message: cause,
            }],
        }),
        code: 500,
    }
}

/// Turns the resize stream's JSON objects ({"Width":80,"Height":24}, one after another)
/// into sizes, across DATA frame boundaries.
#[derive(Default)]
pub struct ResizeDecoder {
    pending: Vec<u8>,
}

impl ResizeDecoder {
    /// The sizes complete in what has arrived so far; an error for bytes that are not a
    /// size, after which the kubelet stops reading resizes.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<TerminalSize>, serde_json::Error> {
        self.pending.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut iter =
            serde_json::Deserializer::from_slice(&self.pending).into_iter::<TerminalSize>();
        let mut used = 0;
        loop {
            match iter.next() {
                Some(Ok(size)) => {
                    sizes.push(size);
                    used = iter.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => return Err(e),
                None => {
                    used = iter.byte_offset();
                    break;
                }
            }
        }
        self.pending.drain(..used);
        Ok(sizes)
    }
}

/// Forwards decoded sizes to the backend; a backend that does not keep up loses sizes
/// rather than stalling the connection.
pub(crate) fn resize_pump(
    mut from: mpsc::Receiver<Bytes>,
    to: mpsc::Sender<TerminalSize>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut decoder = ResizeDecoder::default();
        while let Some(chunk) = from.recv().await {
            let sizes = match decoder.push(&chunk) {
                Ok(sizes) => sizes,
                Err(e) => {
                    tracing::debug!(error = %e, "bad resize message; ignoring further resizes");
                    return;
                }
            };
            for size in sizes {
                if let Err(mpsc::error::TrySendError::Full(size)) = to.try_send(size) {
                    tracing::debug!(?size, "backend is not taking resizes; dropped one");
                }
            }
        }
    })
}

/// Connects the collected streams to pipes for the backend; returns the backend's streams,
/// the output pumps to wait for, and the error stream.
fn wire(
    collected: Collected,
    protocol: Protocol,
    tty: bool,
) -> (Streams, Vec<JoinHandle<()>>, Option<StreamSink>) {
    let mut outputs = Vec::new();
    let mut output = |accepted: Option<Accepted>| -> Option<Output> {
        let (_inbound, sink) = accepted?;
        let (theirs, ours) = pump::pipe();
        outputs.push(pump::outbound(ours, sink));
        Some(Box::new(theirs))
    };
    let stdout = output(collected.stdout);
    let stderr = output(collected.stderr);
    let stdin = collected.stdin.map(|(inbound, sink)| -> Input {
        let (ours, theirs) = pump::pipe();
        pump::inbound(inbound, ours);
        if protocol == Protocol::V1 {
            // The kubelet's v1 handler closes its side of stdin at once (client-go then
            // stops sending); kept for old clients.
            tokio::spawn(async move {
                let _ = sink.finish().await;
            });
        }
        Box::new(theirs)
    });
    let resize = collected.resize.map(|(inbound, _sink)| {
        let (tx, rx) = mpsc::channel(16);
        resize_pump(inbound, tx);
        rx
    });
    let streams = Streams {
        stdin,
        stdout,
        stderr,
        resize,
        tty,
    };
    (streams, outputs, collected.error.map(|(_, sink)| sink))
}

pub(crate) async fn run(backend: &dyn Backend, command: Command, streams: Streams) -> Outcome {
    match command {
        Command::Exec { container_id, cmd } => {
            match backend.exec(container_id, cmd.clone(), streams).await {
                Ok(0) => Outcome::Success,
                Ok(code) => Outcome::ExitCode { code, cmd },
                Err(e) => Outcome::ExecFailed(e),
            }
        }
        Command::Attach { container_id } => match backend.attach(container_id, streams).await {
            Ok(()) => Outcome::Success,
            Err(e) => Outcome::AttachFailed(e),
        },
    }
}

/// One exec or attach on an upgraded connection, start to end.
pub async fn serve(
    session: Session,
    mut incoming: mpsc::Receiver<IncomingStream>,
    protocol: Protocol,
    opts: StreamOptions,
    command: Command,
    backend: Arc<dyn Backend>,
    creation_timeout: Duration,
) {
    let collected = match collect(&mut incoming, protocol, opts, creation_timeout).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, ?command, "remotecommand streams");
            session.close().await;
            return;
        }
    };
    let (streams, outputs, error_stream) = wire(collected, protocol, opts.tty);
    let closed = session.closed();
    let outcome = tokio::select! {
        outcome = run(backend.as_ref(), command, streams) => outcome,
        _ = closed.cancelled() => {
            tracing::debug!("client went away during exec/attach");
            return;
        }
    };
    tracing::debug!(?outcome, "remotecommand finished");
    // All output reaches the client before the outcome does.
    for pump in outputs {
        let _ = pump.await;
    }
    if let Some(error_stream) = error_stream {
        if let Some(message) = outcome.error_stream_message(protocol) {
            let _ = error_stream.write(&message).await;
        }
        let _ = error_stream.finish().await;
    }
    session.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::testpeer::Peer;
    use crate::spdy::Frame;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn collect_replies_to_every_stream_and_counts_the_known_ones() -> TestResult {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (_session, mut incoming) = Session::start(ours, None);
        let mut peer = Peer::new(theirs)?;
        let opts = StreamOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let collecting = tokio::spawn(async move {
            collect(&mut incoming, Protocol::V4, opts, Duration::from_secs(600)).await
        });
        peer.open(1, &[("streamType", "error")]).await?;
        // Replied to but not counted, as the kubelet does with unknown types.
        peer.open(3, &[("streamType", "bogus")]).await?;
        peer.open(5, &[("streamType", "stdout")]).await?;
        peer.open(7, &[("streamType", "stderr")]).await?;
        let collected = collecting.await??;
        assert!(
            collected.error.is_some() && collected.stdout.is_some() && collected.stderr.is_some()
        );
        assert!(collected.stdin.is_none() && collected.resize.is_none());
        for id in [1, 3, 5, 7] {
            assert!(
                matches!(peer.recv().await?, Some(Frame::SynReply { stream_id, .. }) if stream_id == id)
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn collect_fails_when_the_client_goes_or_takes_too_long() -> TestResult {
        let opts = StreamOptions {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: false,
        };
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (_session, mut incoming) = Session::start(ours, None);
        let mut peer = Peer::new(theirs)?;
        peer.open(1, &[("streamType", "error")]).await?;
        drop(peer);
        let r = collect(&mut incoming, Protocol::V4, opts, Duration::from_secs(600)).await;
        assert!(matches!(r, Err(StreamsError::Closed)));

        let (ours, _theirs) = tokio::io::duplex(64 * 1024);
        let (_session, mut incoming) = Session::start(ours, None);
        let r = collect(&mut incoming, Protocol::V4, opts, Duration::ZERO).await;
        assert!(matches!(r, Err(StreamsError::Timeout)));
        Ok(())
    }

    #[test]
    fn the_streams_to_wait_for_depend_on_options_and_protocol() {
        let all = StreamOptions {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        };
        assert_eq!(all.expected_streams(Protocol::V4), 4);
        assert_eq!(all.expected_streams(Protocol::V2), 3);
        let plain = StreamOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            tty: false,
        };
        assert_eq!(plain.expected_streams(Protocol::V4), 3);
    }

    #[test]
    fn v4_statuses_are_what_client_go_decodes() -> Result<(), serde_json::Error> {
        let ok = Outcome::Success
            .error_stream_message(Protocol::V4)
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&ok),
            r#"{"metadata":{},"status":"Success"}"#
        );

        let exit = Outcome::ExitCode {
            code: 3,
            cmd: vec!["sh".into(), "-c".into(), "exit 3".into()],
        };
        let v: serde_json::Value =
            serde_json::from_slice(&exit.error_stream_message(Protocol::V4).unwrap_or_default())?;
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        assert!(v.get("code").is_none());

        let failed = Outcome::ExecFailed(BackendError::new("container \"x\" is not running"));
        let v: serde_json::Value = serde_json::from_slice(
            &failed
                .error_stream_message(Protocol::V4)
                .unwrap_or_default(),
        )?;
        assert_eq!(v["reason"], "InternalError");
        assert_eq!(v["code"], 500);
        assert_eq!(
            v["message"],
            "Internal error occurred: error executing command in container: container \"x\" is not running"
        );
        Ok(())
    }

    #[test]
    fn older_protocols_carry_only_failures_as_text() {
        assert_eq!(Outcome::Success.error_stream_message(Protocol::V3), None);
        let exit = Outcome::ExitCode {
            code: 1,
            cmd: vec!["false".into()],
        };
        let text = exit.error_stream_message(Protocol::V2).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&text),
            "command terminated with non-zero exit code: error executing command [false], exit code 1"
        );
    }

    #[test]
    fn resizes_decode_across_frame_boundaries() -> Result<(), serde_json::Error> {
        let mut d = ResizeDecoder::default();
        assert_eq!(d.push(br#"{"Width":80,"#)?, vec![]);
        assert_eq!(
            d.push(b"\"Height\":24}\n{\"Width\":100,\"Height\":42}\n{")?,
            vec![
                TerminalSize {
                    width: 80,
                    height: 24
                },
                TerminalSize {
                    width: 100,
                    height: 42
                }
            ]
        );
        assert_eq!(
            d.push(br#""Width":1,"Height":2}"#)?,
            vec![TerminalSize {
                width: 1,
                height: 2
            }]
        );
        assert!(d.push(b"{\"Width\":\"wide\"}").is_err());
        Ok(())
    }
}

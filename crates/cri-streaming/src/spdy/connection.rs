//! The server side of a SPDY connection: the client opens the streams (odd ids, SYN_STREAM),
//! the server answers each with SYN_REPLY or RST_STREAM, and both send DATA until FIN.
//!
//! Two tasks per connection: the reader owns the peer's header decompression context, the
//! writer ours; everything sent goes through the writer's queue, so a stream's SYN_REPLY is
//! always on the wire before its first DATA. spdystream does no flow control (no
//! WINDOW_UPDATE), so neither do we: a stream's inbound queue is bounded and the reader waits
//! for it, as spdystream's frame workers wait on their streams.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::frame::{goaway, rst, Frame, FrameDecoder, FrameEncoder, Headers, StreamId};

/// DATA frames we send carry at most this much (client-go copies in 32 KiB pieces too).
const MAX_CHUNK: usize = 32 * 1024;
/// Inbound DATA frames queued per stream before the reader waits for its consumer.
const INBOUND_QUEUE: usize = 16;
/// Frames queued for the writer.
const OUTBOUND_QUEUE: usize = 64;
/// After our GOAWAY, how long the peer gets to read what we sent and hang up before we close
/// the socket anyway (closing while its frames are unread would reset the connection and
/// could lose our last frames in the peer's kernel).
const LINGER: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the stream was reset by the peer")]
    Reset,
    #[error("the connection is closed")]
    Closed,
}

enum Outbound {
    Frame(Frame),
    GoAway(u32),
}

struct Entry {
    inbound: Option<mpsc::Sender<Bytes>>,
    reset: CancellationToken,
    local_done: bool,
}

#[derive(Default)]
struct State {
    streams: HashMap<StreamId, Entry>,
    last_received: StreamId,
}

type Shared = Arc<Mutex<State>>;

/// When a frame last went either way, for the idle timeout (spdystream's idleAwareFramer).
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_until(&self, timeout: Duration) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + timeout
    }
}

/// Ends the connection once no frame has gone either way for `timeout`.
async fn watchdog(activity: Arc<Activity>, timeout: Duration, closed: CancellationToken) {
    loop {
        let deadline = activity.idle_until(timeout);
        if Instant::now() >= deadline {
            tracing::info!(?timeout, "closing an idle streaming connection");
            closed.cancel();
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = closed.cancelled() => return,
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic elsewhere cannot leave the map half-updated in a way that matters here.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// One upgraded connection.
pub struct Session {
    out: mpsc::Sender<Outbound>,
    closed: CancellationToken,
    /// The reader and writer tasks; taken by `close`.
    tasks: Option<(JoinHandle<()>, JoinHandle<()>)>,
}

/// A stream the client opened, waiting for `accept` or `refuse`.
pub struct IncomingStream {
    headers: Headers,
    inbound: mpsc::Receiver<Bytes>,
    sink: StreamSink,
}

/// Our sending half of a stream.
#[derive(Clone)]
pub struct StreamSink {
    id: StreamId,
    out: mpsc::Sender<Outbound>,
    reset: CancellationToken,
    shared: Shared,
}

impl Session {
    /// Serves SPDY on `io`; the streams the client opens arrive on the returned receiver,
    /// which closes when the client goes away or sends GOAWAY. With `idle_timeout`, the
    /// connection ends after that long without a frame either way.
    pub fn start<T>(
        io: T,
        idle_timeout: Option<Duration>,
    ) -> (Session, mpsc::Receiver<IncomingStream>)
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let (incoming_tx, incoming) = mpsc::channel(8);
        let closed = CancellationToken::new();
        let shared: Shared = Arc::default();
        let activity = Arc::new(Activity::new());
        if let Some(timeout) = idle_timeout {
            tokio::spawn(watchdog(activity.clone(), timeout, closed.clone()));
        }
        let reader = tokio::spawn(read_loop(
            rd,
            shared.clone(),
            out.clone(),
            incoming_tx,
            closed.clone(),
            activity.clone(),
        ));
        let writer = tokio::spawn(write_loop(wr, out_rx, shared, closed.clone(), activity));
        let session = Session {
            out,
            closed,
            tasks: Some((reader, writer)),
        };
        (session, incoming)
    }

    /// Cancelled once the connection is gone (the peer hung up, or a read or write failed).
    pub fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }

    /// Says GOAWAY, flushes everything queued before it, and closes the connection once the
    /// peer hangs up (or after a short linger).
    pub async fn close(mut self) {
        let Some((reader, writer)) = self.tasks.take() else {
            return;
        };
        if self.out.send(Outbound::GoAway(goaway::OK)).await.is_ok() {
            let _ = writer.await;
            let _ = tokio::time::timeout(LINGER, self.closed.cancelled()).await;
        } else {
            writer.abort();
        }
        self.closed.cancel();
        reader.abort();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropped without close(): tear the tasks down rather than leak them.
        if let Some((reader, writer)) = self.tasks.take() {
            reader.abort();
            writer.abort();
        }
        self.closed.cancel();
    }
}

impl IncomingStream {
    pub fn id(&self) -> StreamId {
        self.sink.id
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Sends SYN_REPLY; returns the inbound data (closed at the peer's FIN or reset) and our
    /// sending half.
    pub async fn accept(self) -> Result<(mpsc::Receiver<Bytes>, StreamSink), SessionError> {
        self.sink
            .send(Frame::SynReply {
                stream_id: self.sink.id,
                fin: false,
                headers: Headers::new(),
            })
            .await?;
        Ok((self.inbound, self.sink))
    }

    /// Resets the stream, as apimachinery does to a stream its handler rejects.
    pub async fn refuse(self) {
        self.sink.reset(rst::CANCEL).await;
    }
}

impl StreamSink {
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Cancelled when the peer resets the stream or the connection goes.
    pub fn reset_token(&self) -> CancellationToken {
        self.reset.clone()
    }

    async fn send(&self, frame: Frame) -> Result<(), SessionError> {
        if self.reset.is_cancelled() {
            return Err(SessionError::Reset);
        }
        self.out
            .send(Outbound::Frame(frame))
            .await
            .map_err(|_| SessionError::Closed)
    }

    /// Sends `data` as DATA frames.
    pub async fn write(&self, data: &[u8]) -> Result<(), SessionError> {
        for chunk in data.chunks(MAX_CHUNK) {
            self.send(Frame::Data {
                stream_id: self.id,
                fin: false,
                data: Bytes::copy_from_slice(chunk),
            })
            .await?;
        }
        Ok(())
    }

    /// Half-closes our side (an empty DATA frame with FIN, as spdystream's Close).
    pub async fn finish(&self) -> Result<(), SessionError> {
        {
            let mut state = lock(&self.shared);
            let remove = match state.streams.get_mut(&self.id) {
                Some(entry) if entry.local_done => return Ok(()),
                Some(entry) => {
                    entry.local_done = true;
                    entry.inbound.is_none()
                }
                None => false,
            };
            if remove {
                state.streams.remove(&self.id);
            }
        }
        self.send(Frame::Data {
            stream_id: self.id,
            fin: true,
            data: Bytes::new(),
        })
        .await
    }

    /// Resets the stream (RST_STREAM with `status`).
    pub async fn reset(&self, status: u32) {
        let entry = lock(&self.shared).streams.remove(&self.id);
        if let Some(entry) = entry {
            entry.reset.cancel();
        }
        let _ = self
            .out
            .send(Outbound::Frame(Frame::RstStream {
                stream_id: self.id,
                status,
            }))
            .await;
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    shared: Shared,
    out: mpsc::Sender<Outbound>,
    incoming: mpsc::Sender<IncomingStream>,
    closed: CancellationToken,
    activity: Arc<Activity>,
) {
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut incoming = Some(incoming);
    loop {
        let frame = match decoder.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => match tokio::select! {
                n = rd.read_buf(&mut buf) => n,
                _ = closed.cancelled() => break,
            } {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "SPDY connection read failed");
                    break;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "SPDY protocol error from the client");
                let _ = out.send(Outbound::GoAway(goaway::PROTOCOL_ERROR)).await;
                break;
            }
        };
        activity.touch();
        on_frame(frame, &shared, &out, &mut incoming).await;
    }
    // The peer is gone: readers see EOF, writers stop.
    let entries: Vec<Entry> = lock(&shared).streams.drain().map(|(_, e)| e).collect();
    for entry in entries {
        entry.reset.cancel();
    }
    closed.cancel();
}

async fn on_frame(
    frame: Frame,
    shared: &Shared,
    out: &mpsc::Sender<Outbound>,
    incoming: &mut Option<mpsc::Sender<IncomingStream>>,
) {
    match frame {
        Frame::SynStream {
            stream_id,
            fin,
            headers,
            ..
        } => on_syn_stream(stream_id, fin, headers, shared, out, incoming).await,
        Frame::Data {
            stream_id,
            fin,
            data,
        } => on_data(stream_id, fin, data, shared).await,
        Frame::RstStream { stream_id, status } => {
            tracing::debug!(stream_id, status, "client reset a stream");
            let entry = lock(shared).streams.remove(&stream_id);
            if let Some(entry) = entry {
                entry.reset.cancel();
            }
        }
        Frame::Ping { id } => {
            // Client pings are odd; ours would be even (we send none).
            if id % 2 == 1 {
                let _ = out.send(Outbound::Frame(Frame::Ping { id })).await;
            }
        }
        Frame::GoAway { .. } => {
            // No new streams; the open ones carry on until they finish.
            *incoming = None;
        }
        Frame::SynReply { .. }
        | Frame::Headers { .. }
        | Frame::Settings { .. }
        | Frame::WindowUpdate { .. } => {
            tracing::trace!(?frame, "ignoring a SPDY control frame");
        }
    }
}

async fn on_syn_stream(
    stream_id: StreamId,
    fin: bool,
    headers: Headers,
    shared: &Shared,
    out: &mpsc::Sender<Outbound>,
    incoming: &mut Option<mpsc::Sender<IncomingStream>>,
) {
    let refuse = |status| Outbound::Frame(Frame::RstStream { stream_id, status });
    let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
    let reset = CancellationToken::new();
    let fresh = {
        let mut state = lock(shared);
        // spdystream refuses ids that do not increase.
        let fresh = stream_id > state.last_received;
        if fresh {
            state.last_received = stream_id;
            state.streams.insert(
                stream_id,
                Entry {
                    inbound: (!fin).then_some(tx),
                    reset: reset.clone(),
                    local_done: false,
                },
            );
        }
        fresh
    };
    if !fresh {
        let _ = out.send(refuse(rst::PROTOCOL_ERROR)).await;
        return;
    }
    let stream = IncomingStream {
        headers,
        inbound: rx,
        sink: StreamSink {
            id: stream_id,
            out: out.clone(),
            reset,
            shared: shared.clone(),
        },
    };
    let delivered = match incoming {
        Some(tx) => tx.send(stream).await.is_ok(),
        None => false,
    };
    if !delivered {
        lock(shared).streams.remove(&stream_id);
        let _ = out.send(refuse(rst::REFUSED_STREAM)).await;
    }
}

async fn on_data(stream_id: StreamId, fin: bool, data: Bytes, shared: &Shared) {
    let tx = {
        let mut state = lock(shared);
        let Some(entry) = state.streams.get_mut(&stream_id) else {
            // spdystream drops data for streams it does not know, too.
            return;
        };
        let tx = entry.inbound.clone();
        if fin {
            entry.inbound = None;
            if entry.local_done {
                state.streams.remove(&stream_id);
            }
        }
        tx
    };
    if let Some(tx) = tx {
        if !data.is_empty() {
            // A consumer that has dropped its receiver no longer wants the data.
            let _ = tx.send(data).await;
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Outbound>,
    shared: Shared,
    closed: CancellationToken,
    activity: Arc<Activity>,
) {
    let mut encoder = match FrameEncoder::new() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up SPDY header compression");
            closed.cancel();
            return;
        }
    };
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        // Queued frames first: a GOAWAY the reader queued just before it gave up still goes.
        let msg = tokio::select! {
            biased;
            msg = rx.recv() => msg,
            _ = closed.cancelled() => None,
        };
        let Some(mut msg) = msg else { break };
        let mut going_away = None;
        // Batch what is queued into one write.
        loop {
            let frame = match msg {
                Outbound::Frame(frame) => frame,
                Outbound::GoAway(status) => {
                    going_away = Some(status);
                    Frame::GoAway {
                        last_good: lock(&shared).last_received,
                        status,
                    }
                }
            };
            if let Err(e) = encoder.encode(&frame, &mut buf) {
                tracing::error!(error = %e, "cannot encode a SPDY frame");
                closed.cancel();
                return;
            }
            if going_away.is_some() || buf.len() >= 64 * 1024 {
                break;
            }
            match rx.try_recv() {
                Ok(next) => msg = next,
                Err(_) => break,
            }
        }
        if let Err(e) = write_out(&mut wr, &buf).await {
            tracing::debug!(error = %e, "SPDY connection write failed");
            closed.cancel();
            return;
        }
        activity.touch();
        buf.clear();
        if going_away.is_some() {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

async fn write_out<W: AsyncWrite + Unpin>(wr: &mut W, buf: &[u8]) -> std::io::Result<()> {
    wr.write_all(buf).await?;
    wr.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::testpeer::Peer;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn a_stream_is_replied_its_data_delivered_and_answered() -> TestResult {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (session, mut incoming) = Session::start(ours, None);
        let mut peer = Peer::new(theirs)?;
        peer.open(1, &[("streamType", "stdin")]).await?;
        let stream = incoming.recv().await.ok_or("no stream")?;
        assert_eq!(stream.headers().get("streamtype"), Some("stdin"));
        let (mut inbound, sink) = stream.accept().await?;
        assert!(matches!(
            peer.recv().await?,
            Some(Frame::SynReply { stream_id: 1, .. })
        ));
        peer.data(1, b"hello", false).await?;
        peer.data(1, b"", true).await?;
        assert_eq!(inbound.recv().await.as_deref(), Some(&b"hello"[..]));
        assert_eq!(inbound.recv().await, None, "FIN ends the inbound data");
        sink.write(b"back").await?;
        sink.finish().await?;
        assert_eq!(
            peer.recv().await?,
            Some(Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"back")
            })
        );
        assert!(matches!(
            peer.recv().await?,
            Some(Frame::Data { fin: true, .. })
        ));
        peer.send(Frame::Ping { id: 3 }).await?;
        assert_eq!(peer.recv().await?, Some(Frame::Ping { id: 3 }));
        let closing = tokio::spawn(session.close());
        assert_eq!(
            peer.recv().await?,
            Some(Frame::GoAway {
                last_good: 1,
                status: goaway::OK
            })
        );
        drop(peer);
        closing.await?;
        Ok(())
    }

    #[tokio::test]
    async fn big_writes_are_split_into_frames_of_32k() -> TestResult {
        let (ours, theirs) = tokio::io::duplex(1024 * 1024);
        let (_session, mut incoming) = Session::start(ours, None);
        let mut peer = Peer::new(theirs)?;
        peer.open(1, &[("streamType", "stdout")]).await?;
        let (_inbound, sink) = incoming.recv().await.ok_or("no stream")?.accept().await?;
        let payload = vec![7u8; 100_000];
        let writer = tokio::spawn(async move { sink.write(&payload).await });
        let _reply = peer.recv().await?;
        let mut got = 0;
        while got < 100_000 {
            match peer.recv().await? {
                Some(Frame::Data { data, .. }) => {
                    assert!(data.len() <= MAX_CHUNK);
                    got += data.len();
                }
                other => return Err(format!("unexpected {other:?}").into()),
            }
        }
        writer.await??;
        Ok(())
    }

    #[tokio::test]
    async fn reset_by_the_client_ends_inbound_and_fails_writes() -> TestResult {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (_session, mut incoming) = Session::start(ours, None);
        let mut peer = Peer::new(theirs)?;
        peer.open(1, &[("streamType", "data")]).await?;
        let (mut inbound, sink) = incoming.recv().await.ok_or("no stream")?.accept().await?;
        peer.send(Frame::RstStream {
            stream_id: 1,
            status: rst::CANCEL,
        })
        .await?;
        assert_eq!(inbound.recv().await, None);
        sink.reset_token().cancelled().await;
        assert!(matches!(sink.write(b"x").await, Err(SessionError::Reset)));
        Ok(())
    }

    #[tokio::test]
    async fn stream_ids_must_increase() -> TestResult {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (_session, mut incoming) = Session::start(ours, None);
        let mut peer = Peer::new(theirs)?;
        peer.open(5, &[]).await?;
        let _ = incoming.recv().await.ok_or("no stream")?;
        peer.open(3, &[]).await?;
        assert_eq!(
            peer.recv().await?,
            Some(Frame::RstStream {
                stream_id: 3,
                status: rst::PROTOCOL_ERROR
            })
        );
        Ok(())
    }

    #[tokio::test]
    async fn garbage_gets_a_protocol_error_goaway_and_the_end() -> TestResult {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let (session, mut incoming) = Session::start(ours, None);
        // A control frame of SPDY version 2.
        theirs.write_all(&[0x80, 0x02, 0, 1, 0, 0, 0, 0]).await?;
        let mut peer = Peer::new(theirs)?;
        assert!(matches!(
            peer.recv().await?,
            Some(Frame::GoAway {
                status: goaway::PROTOCOL_ERROR,
                ..
            })
        ));
        assert!(incoming.recv().await.is_none());
        session.closed().cancelled().await;
        Ok(())
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed() -> TestResult {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (session, mut incoming) = Session::start(ours, Some(Duration::from_millis(50)));
        let mut peer = Peer::new(theirs)?;
        peer.open(1, &[("streamType", "data")]).await?;
        let (mut inbound, sink) = incoming.recv().await.ok_or("no stream")?.accept().await?;
        session.closed().cancelled().await;
        assert_eq!(inbound.recv().await, None);
        sink.reset_token().cancelled().await;
        assert!(matches!(peer.recv().await?, Some(Frame::SynReply { .. })));
        assert_eq!(peer.recv().await?, None, "the connection ends");
        drop(session);
        Ok(())
    }

    #[tokio::test]
    async fn after_the_clients_goaway_new_streams_are_refused() -> TestResult {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (_session, mut incoming) = Session::start(ours, None);
        let mut peer = Peer::new(theirs)?;
        peer.send(Frame::GoAway {
            last_good: 0,
            status: goaway::OK,
        })
        .await?;
        peer.open(1, &[]).await?;
        assert_eq!(
            peer.recv().await?,
            Some(Frame::RstStream {
                stream_id: 1,
                status: rst::REFUSED_STREAM
            })
        );
        assert!(incoming.recv().await.is_none());
        Ok(())
    }
}

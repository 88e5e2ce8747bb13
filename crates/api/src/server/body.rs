//! Request and response bodies: JSON replies, streamed replies fed by blocking code, and
//! request bodies read by blocking code.

use std::io::{Read, Write};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(status: StatusCode, content_type: &str, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(bytes.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    if !content_type.is_empty() {
        if let Ok(v) = content_type.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
    }
    r
}

pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    full(status, "application/json", message_line(value))
}

pub fn empty(status: StatusCode) -> Response<Body> {
    full(status, "", Bytes::new())
}

/// A response whose bytes a blocking task writes to the returned writer.
pub fn streamed(content_type: &str) -> (Response<Body>, ChannelWriter) {
    let (resp, tx) = streamed_async(content_type);
    (
        resp,
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHANNEL_CHUNK_CAPACITY),
        },
    )
}

/// A streamed response fed from async code through the returned sender.
pub fn streamed_async(
    content_type: &str,
) -> (Response<Body>, mpsc::Sender<Result<Bytes, std::io::Error>>) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let body = StreamBody::new(tokio_stream::StreamExt::map(stream, |r| r.map(Frame::data)));
    let mut resp = Response::new(BodyExt::boxed(body));
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    (resp, tx)
}

/// One JSON message of docker's progress streams, newline-terminated.
pub fn message_line(v: &impl serde::Serialize) -> Bytes {
    let mut bytes = serde_json::to_vec(v).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// A streamed body's chunk is sent once it holds this much.
const CHANNEL_CHUNK: usize = 64 * 1024;
/// Room for a chunk and the write that fills it (a tar writer's are 8 KiB): no chunk grows
/// its buffer by doubling, copying what it held each time.
const CHANNEL_CHUNK_CAPACITY: usize = CHANNEL_CHUNK + 16 * 1024;

/// Bytes written here become the response body (in chunks of about 64 KiB).
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHANNEL_CHUNK_CAPACITY),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHANNEL_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// The request body as a blocking reader (for the stores, which are synchronous). If the
/// reader is dropped early (the request failed), the rest of the body is still read and
/// discarded, so the client can finish sending and then read the error.
pub fn reader(body: Incoming) -> BodyReader {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let item = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => Ok(d),
                    Err(_) => continue,
                },
                Err(e) => Err(std::io::Error::other(e)),
            };
            let failed = item.is_err();
            if failed || tx.send(item).await.is_err() {
                break;
            }
        }
        // Drain whatever the reader did not take.
        while let Some(Ok(_)) = body.frame().await {}
    });
    BodyReader {
        rx,
        current: Bytes::new(),
    }
}

pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    current: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Read and drop up to `max` bytes of a request body the answer will not use, so that a
/// client still sending it (the docker CLI streaming a build context) reads the answer
/// rather than a broken pipe, as Go's server drains a small unread body.
pub async fn drain(mut body: Incoming, max: usize) {
    let mut read = 0;
    while read < max {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}

/// A JSON request body of at most `max` bytes; an empty body is an empty object.
pub async fn read_json(
    body: Incoming,
    max: usize,
) -> Result<serde_json::Value, super::error::ApiError> {
    use super::error::ApiError;
    let bytes = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
}

//! The kubelet and crictl (grpc-go through k8s.io's CRI client) dial the CRI's unix socket
//! with the socket's path as the HTTP/2 `:authority`, which is not an authority; h2, under
//! tonic, refuses such a request with PROTOCOL_ERROR (hyperium/h2#487). containerd and
//! CRI-O, in Go, accept it. So each connection passes through a relay that decodes every
//! request header block the client sends and encodes it again for the server, with an
//! invalid `:authority` replaced by `localhost`, as grpc-go itself sends for unix sockets
//! from 1.5x on. Every other frame, and the whole server-to-client direction, is copied
//! unchanged. The two HPACK contexts (client's and server's) are kept apart, so the
//! dynamic tables stay consistent on both sides.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::UnixStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame h2 accepts unless it says otherwise (SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: usize = 16_384;

/// A relayed connection, as tonic's server takes it.
pub struct Relayed(DuplexStream);

impl tonic::transport::server::Connected for Relayed {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Relayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Relayed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Relay `client` to the server side returned.
pub fn relay(client: UnixStream) -> Relayed {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = tokio::io::split(theirs);
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    tokio::spawn(async move {
        if let Err(e) = requests(&mut client_read, &mut server_write).await {
            tracing::debug!("CRI connection: {e}");
        }
        let _ = server_write.shutdown().await;
    });
    Relayed(ours)
}

/// The client's side: the preface, then frame by frame.
async fn requests(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<()> {
    let mut preface = [0u8; PREFACE.len()];
    from.read_exact(&mut preface).await?;
    to.write_all(&preface).await?;
    let mut rewriter = Rewriter::default();
    loop {
        let mut header = [0u8; 9];
        match from.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        from.read_exact(&mut payload).await?;
        let frame = Frame {
            kind: header[3],
            flags: header[4],
            stream: u32::from_be_bytes([header[5], header[6], header[7], header[8]]),
            payload,
        };
        for out in rewriter.frame(frame)? {
            to.write_all(&out).await?;
        }
        to.flush().await?;
    }
}

struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    fn encode(&self) -> Vec<u8> {
        let len = (self.payload.len() as u32).to_be_bytes();
        let mut out = Vec::with_capacity(9 + self.payload.len());
        out.extend_from_slice(&len[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&self.stream.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// A header block being received: the HEADERS frame's flags and priority, and the block.
struct Pending {
    stream: u32,
    flags: u8,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
}

#[derive(Default)]
struct Rewriter {
    decoder: loona_hpack::Decoder<'static>,
    encoder: loona_hpack::Encoder<'static>,
    pending: Option<Pending>,
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

/// An :authority h2 accepts: a host name or address and a port. (grpc-go percent-encodes
/// the path, which the http crate refuses as well.)
fn valid_authority(value: &[u8]) -> bool {
    !value.is_empty()
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:[]".contains(b))
}

impl Rewriter {
    /// The frames to send for one received frame.
    fn frame(&mut self, frame: Frame) -> std::io::Result<Vec<Vec<u8>>> {
        match (frame.kind, self.pending.is_some()) {
            (HEADERS, false) => {
                let (priority, block) = headers_payload(&frame)?;
                self.pending = Some(Pending {
                    stream: frame.stream,
                    flags: frame.flags,
                    priority,
                    block,
                });
                self.maybe_finish(frame.flags)
            }
            (CONTINUATION, true) => {
                if let Some(p) = self.pending.as_mut() {
                    p.block.extend_from_slice(&frame.payload);
                }
                self.maybe_finish(frame.flags)
            }
            (_, true) => Err(invalid("a frame inside a header block")),
            (_, false) => Ok(vec![frame.encode()]),
        }
    }

    fn maybe_finish(&mut self, flags: u8) -> std::io::Result<Vec<Vec<u8>>> {
        if flags & END_HEADERS == 0 {
            return Ok(Vec::new());
        }
        let Some(p) = self.pending.take() else {
            return Ok(Vec::new());
        };
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        self.decoder
            .decode_with_cb(&p.block, |name, value| {
                fields.push((name.into_owned(), value.into_owned()))
            })
            .map_err(|e| invalid(&format!("a header block: {e:?}")))?;
        for (name, value) in fields.iter_mut() {
            if name.as_slice() == b":authority" && !valid_authority(value) {
                *value = b"localhost".to_vec();
            }
        }
        let block = self
            .encoder
            .encode(fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
        Ok(reframe(&p, block))
    }
}

/// The HEADERS payload without its padding: its priority fields and its block fragment.
fn headers_payload(frame: &Frame) -> std::io::Result<(Option<[u8; 5]>, Vec<u8>)> {
    let mut body: &[u8] = &frame.payload;
    let mut pad = 0usize;
    if frame.flags & PADDED != 0 {
        let (&n, rest) = body
            .split_first()
            .ok_or_else(|| invalid("a short HEADERS frame"))?;
        pad = n as usize;
        body = rest;
    }
    let mut priority = None;
    if frame.flags & PRIORITY != 0 {
        let fields: [u8; 5] = body
            .get(..5)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid("a short HEADERS frame"))?;
        priority = Some(fields);
        body = &body[5..];
    }
    let end = body
        .len()
        .checked_sub(pad)
        .ok_or_else(|| invalid("HEADERS padding longer than the frame"))?;
    Ok((priority, body[..end].to_vec()))
}

/// One HEADERS frame, with CONTINUATION frames when the block is larger than a frame.
fn reframe(p: &Pending, block: Vec<u8>) -> Vec<Vec<u8>> {
    let room = MAX_FRAME - if p.priority.is_some() { 5 } else { 0 };
    let mut chunks: Vec<&[u8]> = Vec::new();
    let (first, mut rest) = block.split_at(block.len().min(room));
    chunks.push(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
        chunks.push(chunk);
        rest = tail;
    }
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let end_headers = if i == last { END_HEADERS } else { 0 };
            let frame = if i == 0 {
                let mut payload = Vec::new();
                if let Some(priority) = p.priority {
                    payload.extend_from_slice(&priority);
                }
                payload.extend_from_slice(chunk);
                Frame {
                    kind: HEADERS,
                    flags: (p.flags & (END_STREAM | PRIORITY)) | end_headers,
                    stream: p.stream,
                    payload,
                }
            } else {
                Frame {
                    kind: CONTINUATION,
                    flags: end_headers,
                    stream: p.stream,
                    payload: chunk.to_vec(),
                }
            };
            frame.encode()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_frame(block: Vec<u8>, flags: u8) -> Frame {
        Frame {
            kind: HEADERS,
            flags,
            stream: 1,
            payload: block,
        }
    }

    fn decode(frames: &[Vec<u8>], decoder: &mut loona_hpack::Decoder) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut block = Vec::new();
        for f in frames {
            let skip = if f[3] == HEADERS && f[4] & PRIORITY != 0 {
                14
            } else {
                9
            };
            block.extend_from_slice(&f[skip..]);
        }
        decoder.decode(&block).expect("decode")
    }

    #[test]
    fn a_socket_path_authority_becomes_localhost_and_the_rest_stays() {
        let mut client = loona_hpack::Encoder::new();
        let mut server = loona_hpack::Decoder::new();
        let mut r = Rewriter::default();
        for _ in 0..3 {
            let block = client.encode(vec![
                (&b":method"[..], &b"POST"[..]),
                (b":authority", b"%2Frun%2Fberth%2Fcri.sock"),
                (b":path", b"/runtime.v1.RuntimeService/Version"),
                (b"content-type", b"application/grpc"),
            ]);
            let out = r
                .frame(headers_frame(block, END_HEADERS | END_STREAM))
                .expect("rewrite");
            assert_eq!(out.len(), 1);
            assert_eq!(out[0][4] & END_STREAM, END_STREAM);
            let fields = decode(&out, &mut server);
            let get = |n: &[u8]| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            assert_eq!(get(b":authority").as_deref(), Some(&b"localhost"[..]));
            assert_eq!(
                get(b":path").as_deref(),
                Some(&b"/runtime.v1.RuntimeService/Version"[..])
            );
        }
    }

    #[test]
    fn continuations_are_joined_and_other_frames_pass() {
        let mut client = loona_hpack::Encoder::new();
        let block = client.encode(vec![(&b":authority"[..], &b"localhost:1"[..])]);
        let (a, b) = block.split_at(1);
        let mut r = Rewriter::default();
        assert!(r
            .frame(headers_frame(a.to_vec(), 0))
            .expect("first")
            .is_empty());
        let out = r
            .frame(Frame {
                kind: CONTINUATION,
                flags: END_HEADERS,
                stream: 1,
                payload: b.to_vec(),
            })
            .expect("continuation");
        let fields = decode(&out, &mut loona_hpack::Decoder::new());
        assert_eq!(
            fields,
            vec![(b":authority".to_vec(), b"localhost:1".to_vec())]
        );
        let data = Frame {
            kind: 0x0,
            flags: 0,
            stream: 1,
            payload: b"x".to_vec(),
        };
        assert_eq!(
            r.frame(data).expect("data"),
            vec![b"\0\0\x01\0\0\0\0\0\x01x".to_vec()]
        );
    }

    #[test]
    fn a_frame_inside_a_header_block_is_refused() {
        let mut r = Rewriter::default();
        assert!(r
            .frame(headers_frame(vec![0x82], 0))
            .expect("first")
            .is_empty());
        let data = Frame {
            kind: 0x0,
            flags: 0,
            stream: 1,
            payload: Vec::new(),
        };
        assert!(r.frame(data).is_err());
    }
}

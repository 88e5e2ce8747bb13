//! The client's end of a SPDY connection for unit tests: frames in, frames out.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::frame::{Frame, FrameDecoder, FrameEncoder, FrameError, Headers, StreamId};

pub(crate) struct Peer {
    io: DuplexStream,
    enc: FrameEncoder,
    dec: FrameDecoder,
    buf: BytesMut,
}

impl Peer {
    pub(crate) fn new(io: DuplexStream) -> Result<Self, FrameError> {
        Ok(Peer {
            io,
            enc: FrameEncoder::new()?,
            dec: FrameDecoder::new(),
            buf: BytesMut::new(),
        })
    }

    pub(crate) async fn send(&mut self, frame: Frame) -> Result<(), Box<dyn std::error::Error>> {
        let mut out = BytesMut::new();
        self.enc.encode(&frame, &mut out)?;
        self.io.write_all(&out).await?;
        Ok(())
    }

    /// The next frame, or None at EOF.
    pub(crate) async fn recv(&mut self) -> Result<Option<Frame>, Box<dyn std::error::Error>> {
        loop {
            if let Some(f) = self.dec.decode(&mut self.buf)? {
                return Ok(Some(f));
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    pub(crate) async fn open(
        &mut self,
        id: StreamId,
        pairs: &[(&str, &str)],
    ) -> Result<(), Box<dyn std::error::Error>> {
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

    pub(crate) async fn data(
        &mut self,
        id: StreamId,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Box<dyn std::error::Error>> {
        self.send(Frame::Data {
            stream_id: id,
            fin,
            data: Bytes::copy_from_slice(data),
        })
        .await
    }
}

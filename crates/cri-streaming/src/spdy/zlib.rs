//! SPDY/3 header blocks are zlib streams primed with the SPDY dictionary: one stream per
//! direction for the whole connection, each header block ending at a sync flush, so a block
//! can only be decoded after every block before it (spdystream keeps one zlib.Writer and one
//! zlib.Reader per Framer, as here).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::DICTIONARY;

/// The most a header block may inflate to: the streaming protocols' blocks are a few dozen
/// bytes, so anything near this is hostile (a zlib bomb), not a client.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ZlibError {
    #[error("header block compression: {0}")]
    Compress(String),
    #[error("header block decompression: {0}")]
    Decompress(String),
    #[error("header block inflates past {MAX_HEADER_BLOCK} bytes")]
    TooLarge,
}

/// Our direction's zlib stream.
pub struct HeaderCompressor {
    inner: Compress,
}

impl HeaderCompressor {
    pub fn new() -> Result<Self, ZlibError> {
        let mut inner = Compress::new(Compression::best(), true);
        inner
            .set_dictionary(DICTIONARY)
            .map_err(|e| ZlibError::Compress(e.to_string()))?;
        Ok(HeaderCompressor { inner })
    }

    /// Compresses one header block and sync-flushes, so the peer can decode it at once.
    pub fn compress(&mut self, block: &[u8]) -> Result<Vec<u8>, ZlibError> {
        let mut out = Vec::with_capacity(block.len() / 2 + 64);
        let start_in = self.inner.total_in();
        loop {
            let consumed = usize::try_from(self.inner.total_in() - start_in)
                .map_err(|e| ZlibError::Compress(e.to_string()))?;
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            self.inner
                .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| ZlibError::Compress(e.to_string()))?;
            let all_in = self.inner.total_in() - start_in == block.len() as u64;
            // The sync flush is complete once all input is taken and zlib stopped short of
            // the end of the output buffer.
            if all_in && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The peer's zlib stream.
pub struct HeaderDecompressor {
    inner: Decompress,
}

impl HeaderDecompressor {
    pub fn new() -> Self {
        HeaderDecompressor {
            inner: Decompress::new(true),
        }
    }

    /// Inflates one compressed header block (the rest of a SYN_STREAM, SYN_REPLY or HEADERS
    /// frame after its fixed fields).
    pub fn decompress(&mut self, compressed: &[u8]) -> Result<Vec<u8>, ZlibError> {
        let mut out = Vec::with_capacity(256);
        let start_in = self.inner.total_in();
        loop {
            let consumed = usize::try_from(self.inner.total_in() - start_in)
                .map_err(|e| ZlibError::Decompress(e.to_string()))?;
            if out.len() >= MAX_HEADER_BLOCK {
                return Err(ZlibError::TooLarge);
            }
            if out.capacity() - out.len() < 256 {
                out.reserve(1024);
            }
            let before_out = out.len();
            let status = match self.inner.decompress_vec(
                &compressed[consumed..],
                &mut out,
                FlushDecompress::Sync,
            ) {
                Ok(status) => status,
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inner
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| ZlibError::Decompress(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(ZlibError::Decompress(e.to_string())),
            };
            let all_in = self.inner.total_in() - start_in == compressed.len() as u64;
            match status {
                Status::StreamEnd => {
                    return Err(ZlibError::Decompress(
                        "the peer ended its header stream".into(),
                    ))
                }
                Status::Ok | Status::BufError => {
                    if all_in && out.len() < out.capacity() {
                        return Ok(out);
                    }
                    if out.len() == before_out && !all_in && status == Status::BufError {
                        return Err(ZlibError::Decompress("no progress".into()));
                    }
                }
            }
        }
    }
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_through_one_context_per_direction() -> Result<(), ZlibError> {
        let mut c = HeaderCompressor::new()?;
        let mut d = HeaderDecompressor::new();
        let blocks: [&[u8]; 3] = [b"\0\0\0\x01\0\0\0\nstreamtype\0\0\0\x05error", b"", b"xyz"];
        for block in blocks {
            let packed = c.compress(block)?;
            assert_eq!(d.decompress(&packed)?, block);
        }
        // A big block that does not fit the first output buffer.
        let big: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let packed = c.compress(&big)?;
        assert_eq!(d.decompress(&packed)?, big);
        Ok(())
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = HeaderDecompressor::new();
        assert!(d.decompress(b"\x12\x34\x56\x78garbage").is_err());
    }

    #[test]
    fn a_zlib_bomb_is_refused() -> Result<(), ZlibError> {
        let mut c = HeaderCompressor::new()?;
        let zeros = vec![0u8; MAX_HEADER_BLOCK * 4];
        let packed = c.compress(&zeros)?;
        let mut d = HeaderDecompressor::new();
        assert!(matches!(d.decompress(&packed), Err(ZlibError::TooLarge)));
        Ok(())
    }
}

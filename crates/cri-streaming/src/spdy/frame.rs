//! SPDY/3 frames on the wire (draft 3, section 2.2), as moby/spdystream writes and reads them.
//!
//! Every frame has an 8-byte header. A control frame: the control bit, a 15-bit version (3),
//! a 16-bit type, 8 bits of flags, a 24-bit length. A data frame: the control bit clear, a
//! 31-bit stream id, 8 bits of flags, a 24-bit length. SYN_STREAM, SYN_REPLY and HEADERS carry
//! a header block: a 32-bit count, then per header a 32-bit length and the lowercase name, a
//! 32-bit length and the value (several values joined by NUL), all zlib-compressed (zlib.rs).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::zlib::{HeaderCompressor, HeaderDecompressor, ZlibError};

pub type StreamId = u32;

pub const VERSION: u16 = 3;
const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
const FLAG_SETTINGS_CLEAR: u8 = 0x01;

/// The largest payload a frame's 24-bit length can describe.
pub const MAX_DATA_LENGTH: usize = (1 << 24) - 1;
/// Control frames are small (a header block, a few ids); a larger one is refused before it
/// is buffered.
pub const MAX_CONTROL_LENGTH: usize = 128 * 1024;

/// RST_STREAM status codes (draft 3, 2.6.3).
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
}

/// GOAWAY status codes (draft 3, 2.6.6).
pub mod goaway {
    pub const OK: u32 = 0;
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INTERNAL_ERROR: u32 = 2;
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("SPDY version {0} is not supported (only 3)")]
    Version(u16),
    #[error("{kind} frame of {length} bytes is malformed")]
    Length { kind: &'static str, length: usize },
    #[error("{0} frame names stream 0")]
    ZeroStream(&'static str),
    #[error("control frame of {0} bytes is larger than {MAX_CONTROL_LENGTH}")]
    TooLarge(usize),
    #[error("data frame of {0} bytes is larger than {MAX_DATA_LENGTH}")]
    DataTooLarge(usize),
    #[error("RST_STREAM with status 0")]
    ZeroStatus,
    #[error("header block: {0}")]
    HeaderBlock(&'static str),
    #[error("header {0:?} appears twice in one block")]
    DuplicateHeader(String),
    #[error(transparent)]
    Zlib(#[from] ZlibError),
}

/// A header block: lowercase names, each once, a value (NUL-joined when several).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Sets `name` (lowercased, as SPDY wants) to `value`, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.0.push((name, value.to_string())),
        }
    }

    /// The first value of `name`, case-insensitively, as Go's http.Header.Get.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split('\0').next().unwrap_or(v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_u32(self.0.len() as u32);
        for (name, value) in &self.0 {
            out.put_u32(name.len() as u32);
            out.put_slice(name.as_bytes());
            out.put_u32(value.len() as u32);
            out.put_slice(value.as_bytes());
        }
        out
    }

    fn decode(mut block: &[u8]) -> Result<Headers, FrameError> {
        let count = take_u32(&mut block)? as usize;
        // Each header needs at least its two lengths: a count beyond that is a lie, and must
        // not size an allocation.
        if count > block.len() / 8 {
            return Err(FrameError::HeaderBlock("more headers than bytes"));
        }
        let mut headers = Headers(Vec::with_capacity(count));
        for _ in 0..count {
            let name = take_string(&mut block)?.to_ascii_lowercase();
            let value = take_string(&mut block)?;
            if name.is_empty() {
                return Err(FrameError::HeaderBlock("empty header name"));
            }
            if headers.0.iter().any(|(n, _)| *n == name) {
                return Err(FrameError::DuplicateHeader(name));
            }
            headers.0.push((name, value));
        }
        Ok(headers)
    }
}

fn take_u32(block: &mut &[u8]) -> Result<u32, FrameError> {
    if block.len() < 4 {
        return Err(FrameError::HeaderBlock("cut short"));
    }
    Ok(block.get_u32())
}

fn take_string(block: &mut &[u8]) -> Result<String, FrameError> {
    let len = take_u32(block)? as usize;
    if block.len() < len {
        return Err(FrameError::HeaderBlock("cut short"));
    }
    let (s, rest) = block.split_at(len);
    *block = rest;
    String::from_utf8(s.to_vec()).map_err(|_| FrameError::HeaderBlock("not UTF-8"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: StreamId,
        associated_to: StreamId,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: StreamId,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: StreamId,
        status: u32,
    },
    Settings {
        clear: bool,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: StreamId,
        status: u32,
    },
    Headers {
        stream_id: StreamId,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: StreamId,
        delta: u32,
    },
    Data {
        stream_id: StreamId,
        fin: bool,
        data: Bytes,
    },
}

/// Writes frames, with our direction's header compression context.
pub struct FrameEncoder {
    zlib: HeaderCompressor,
}

impl FrameEncoder {
    pub fn new() -> Result<Self, FrameError> {
        Ok(FrameEncoder {
            zlib: HeaderCompressor::new()?,
        })
    }

    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), FrameError> {
        match frame {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                let block = self.zlib.compress(&headers.encode())?;
                let flags = flag(*fin, FLAG_FIN) | flag(*unidirectional, FLAG_UNIDIRECTIONAL);
                control_header(out, TYPE_SYN_STREAM, flags, 10 + block.len())?;
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(associated_to & 0x7fff_ffff);
                out.put_u8((priority & 0x07) << 5);
                out.put_u8(0);
                out.put_slice(&block);
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => self.stream_headers(out, TYPE_SYN_REPLY, *stream_id, *fin, headers)?,
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => self.stream_headers(out, TYPE_HEADERS, *stream_id, *fin, headers)?,
            Frame::RstStream { stream_id, status } => {
                control_header(out, TYPE_RST_STREAM, 0, 8)?;
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(*status);
            }
            Frame::Settings { clear, entries } => {
                control_header(
                    out,
                    TYPE_SETTINGS,
                    flag(*clear, FLAG_SETTINGS_CLEAR),
                    4 + 8 * entries.len(),
                )?;
                out.put_u32(entries.len() as u32);
                for e in entries {
                    out.put_u32(u32::from(e.flags) << 24 | (e.id & 0x00ff_ffff));
                    out.put_u32(e.value);
                }
            }
            Frame::Ping { id } => {
                control_header(out, TYPE_PING, 0, 4)?;
                out.put_u32(*id);
            }
            Frame::GoAway { last_good, status } => {
                control_header(out, TYPE_GOAWAY, 0, 8)?;
                out.put_u32(last_good & 0x7fff_ffff);
                out.put_u32(*status);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control_header(out, TYPE_WINDOW_UPDATE, 0, 8)?;
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(delta & 0x7fff_ffff);
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if data.len() > MAX_DATA_LENGTH {
                    return Err(FrameError::DataTooLarge(data.len()));
                }
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(u32::from(flag(*fin, FLAG_FIN)) << 24 | data.len() as u32);
                out.put_slice(data);
            }
        }
        Ok(())
    }

    fn stream_headers(
        &mut self,
        out: &mut BytesMut,
        kind: u16,
        stream_id: StreamId,
        fin: bool,
        headers: &Headers,
    ) -> Result<(), FrameError> {
        let block = self.zlib.compress(&headers.encode())?;
        control_header(out, kind, flag(fin, FLAG_FIN), 4 + block.len())?;
        out.put_u32(stream_id & 0x7fff_ffff);
        out.put_slice(&block);
        Ok(())
    }
}

fn flag(on: bool, bit: u8) -> u8 {
    if on {
        bit
    } else {
        0
    }
}

fn control_header(
    out: &mut BytesMut,
    kind: u16,
    flags: u8,
    length: usize,
) -> Result<(), FrameError> {
    if length > MAX_DATA_LENGTH {
        return Err(FrameError::TooLarge(length));
    }
    out.reserve(8 + length);
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32(u32::from(flags) << 24 | length as u32);
    Ok(())
}

/// Reads frames, with the peer's header compression context.
pub struct FrameDecoder {
    zlib: HeaderDecompressor,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    pub fn new() -> Self {
        FrameDecoder {
            zlib: HeaderDecompressor::new(),
        }
    }

    /// Takes one whole frame off the front of `buf`; `None` until all of it has arrived.
    /// A control frame of a type spdystream never sends (CREDENTIAL) is consumed and skipped.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            if buf.len() < 8 {
                return Ok(None);
            }
            let first = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            let flags = buf[4];
            let length = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
            let control = first & 0x8000_0000 != 0;
            if control && length > MAX_CONTROL_LENGTH {
                return Err(FrameError::TooLarge(length));
            }
            if buf.len() < 8 + length {
                buf.reserve(8 + length - buf.len());
                return Ok(None);
            }
            let mut frame = buf.split_to(8 + length);
            frame.advance(8);
            if !control {
                let stream_id = first & 0x7fff_ffff;
                if stream_id == 0 {
                    return Err(FrameError::ZeroStream("DATA"));
                }
                return Ok(Some(Frame::Data {
                    stream_id,
                    fin: flags & FLAG_FIN != 0,
                    data: frame.freeze(),
                }));
            }
            let version = ((first >> 16) & 0x7fff) as u16;
            if version != VERSION {
                return Err(FrameError::Version(version));
            }
            let kind = (first & 0xffff) as u16;
            if let Some(frame) = self.control(kind, flags, frame)? {
                return Ok(Some(frame));
            }
        }
    }

    fn control(
        &mut self,
        kind: u16,
        flags: u8,
        mut p: BytesMut,
    ) -> Result<Option<Frame>, FrameError> {
        let length = p.len();
        let fin = flags & FLAG_FIN != 0;
        let frame = match kind {
            TYPE_SYN_STREAM => {
                need("SYN_STREAM", length, length >= 10)?;
                let stream_id = nonzero("SYN_STREAM", p.get_u32() & 0x7fff_ffff)?;
                let associated_to = p.get_u32() & 0x7fff_ffff;
                let priority = p.get_u8() >> 5;
                let _slot = p.get_u8();
                let headers = Headers::decode(&self.zlib.decompress(&p)?)?;
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                let name = if kind == TYPE_SYN_REPLY {
                    "SYN_REPLY"
                } else {
                    "HEADERS"
                };
                need(name, length, length >= 4)?;
                let stream_id = nonzero(name, p.get_u32() & 0x7fff_ffff)?;
                let headers = Headers::decode(&self.zlib.decompress(&p)?)?;
                if kind == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                }
            }
            TYPE_RST_STREAM => {
                need("RST_STREAM", length, length == 8)?;
                let stream_id = nonzero("RST_STREAM", p.get_u32() & 0x7fff_ffff)?;
                let status = p.get_u32();
                if status == 0 {
                    return Err(FrameError::ZeroStatus);
                }
                Frame::RstStream { stream_id, status }
            }
            TYPE_SETTINGS => {
                need("SETTINGS", length, length >= 4)?;
                let count = p.get_u32() as usize;
                need("SETTINGS", length, count.checked_mul(8) == Some(length - 4))?;
                let entries = (0..count)
                    .map(|_| {
                        let word = p.get_u32();
                        Setting {
                            flags: (word >> 24) as u8,
                            id: word & 0x00ff_ffff,
                            value: p.get_u32(),
                        }
                    })
                    .collect();
                Frame::Settings {
                    clear: flags & FLAG_SETTINGS_CLEAR != 0,
                    entries,
                }
            }
            TYPE_PING => {
                need("PING", length, length == 4)?;
                Frame::Ping { id: p.get_u32() }
            }
            TYPE_GOAWAY => {
                need("GOAWAY", length, length == 8)?;
                Frame::GoAway {
                    last_good: p.get_u32() & 0x7fff_ffff,
                    status: p.get_u32(),
                }
            }
            TYPE_WINDOW_UPDATE => {
                need("WINDOW_UPDATE", length, length == 8)?;
                Frame::WindowUpdate {
                    stream_id: p.get_u32() & 0x7fff_ffff,
                    delta: p.get_u32() & 0x7fff_ffff,
                }
            }
            other => {
                tracing::debug!(kind = other, "skipping an unknown SPDY control frame");
                return Ok(None);
            }
        };
        Ok(Some(frame))
    }
}

fn need(kind: &'static str, length: usize, ok: bool) -> Result<(), FrameError> {
    if ok {
        Ok(())
    } else {
        Err(FrameError::Length { kind, length })
    }
}

fn nonzero(kind: &'static str, id: StreamId) -> Result<StreamId, FrameError> {
    if id == 0 {
        Err(FrameError::ZeroStream(kind))
    } else {
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.set(n, v);
        }
        h
    }

    fn all_kinds() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 3,
                fin: false,
                unidirectional: true,
                headers: headers(&[("streamType", "error")]),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: Headers::new(),
            },
            Frame::Headers {
                stream_id: 3,
                fin: true,
                headers: headers(&[("port", "80"), ("requestid", "0")]),
            },
            Frame::RstStream {
                stream_id: 5,
                status: rst::CANCEL,
            },
            Frame::Settings {
                clear: true,
                entries: vec![Setting {
                    flags: 1,
                    id: 7,
                    value: 65536,
                }],
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_good: 9,
                status: goaway::OK,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 4096,
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 3,
                fin: false,
                data: Bytes::new(),
            },
        ]
    }

    #[test]
    fn every_frame_kind_round_trips() -> Result<(), FrameError> {
        let mut enc = FrameEncoder::new()?;
        let mut dec = FrameDecoder::new();
        let mut wire = BytesMut::new();
        for f in all_kinds() {
            enc.encode(&f, &mut wire)?;
        }
        for f in all_kinds() {
            assert_eq!(dec.decode(&mut wire)?, Some(f));
        }
        assert!(wire.is_empty());
        Ok(())
    }

    #[test]
    fn a_frame_arriving_byte_by_byte_decodes_once_whole() -> Result<(), FrameError> {
        let mut enc = FrameEncoder::new()?;
        let mut wire = BytesMut::new();
        let frame = all_kinds().remove(0);
        enc.encode(&frame, &mut wire)?;
        let mut dec = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let total = wire.len();
        for (i, b) in wire.iter().enumerate() {
            buf.put_u8(*b);
            let got = dec.decode(&mut buf)?;
            assert_eq!(got.is_some(), i + 1 == total);
        }
        Ok(())
    }

    /// Written by moby/spdystream's own Framer (tests/go/framecapture.go, with the vendored
    /// spdystream of cri-tools 1.29): SYN_STREAM 1 {streamType: error}, SYN_STREAM 3
    /// {streamType: stdin}, DATA 3 "hello", DATA 3 FIN, PING 1, RST_STREAM 1 CANCEL, GOAWAY.
    const GO_CLIENT_FRAMES: &str = "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff800300010000001700000003000000000000c22e555c92929907000000ffff000000030000000568656c6c6f00000003010000008003000600000004000000018003000300000008000000010000000580030007000000080000000000000000";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    }

    #[test]
    fn frames_written_by_the_go_client_decode() -> Result<(), FrameError> {
        let mut wire = BytesMut::from(&unhex(GO_CLIENT_FRAMES)[..]);
        let mut dec = FrameDecoder::new();
        let mut got = Vec::new();
        while let Some(f) = dec.decode(&mut wire)? {
            got.push(f);
        }
        assert!(wire.is_empty());
        assert_eq!(
            got,
            vec![
                Frame::SynStream {
                    stream_id: 1,
                    associated_to: 0,
                    priority: 0,
                    fin: false,
                    unidirectional: false,
                    headers: headers(&[("streamtype", "error")]),
                },
                Frame::SynStream {
                    stream_id: 3,
                    associated_to: 0,
                    priority: 0,
                    fin: false,
                    unidirectional: false,
                    headers: headers(&[("streamtype", "stdin")]),
                },
                Frame::Data {
                    stream_id: 3,
                    fin: false,
                    data: Bytes::from_static(b"hello"),
                },
                Frame::Data {
                    stream_id: 3,
                    fin: true,
                    data: Bytes::new(),
                },
                Frame::Ping { id: 1 },
                Frame::RstStream {
                    stream_id: 1,
                    status: rst::CANCEL,
                },
                Frame::GoAway {
                    last_good: 0,
                    status: goaway::OK,
                },
            ]
        );
        Ok(())
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_takes_the_first_value() {
        let h = headers(&[("streamType", "data\0error")]);
        assert_eq!(h.get("STREAMTYPE"), Some("data"));
        assert_eq!(h.get("port"), None);
    }

    fn control(kind: u16, flags: u8, payload: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_u16(0x8003);
        b.put_u16(kind);
        b.put_u32(u32::from(flags) << 24 | payload.len() as u32);
        b.put_slice(payload);
        b
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let cases: Vec<BytesMut> = vec![
            control(TYPE_RST_STREAM, 0, &[0, 0, 0, 1]),
            control(TYPE_RST_STREAM, 0, &[0, 0, 0, 1, 0, 0, 0, 0]),
            control(TYPE_RST_STREAM, 0, &[0, 0, 0, 0, 0, 0, 0, 5]),
            control(TYPE_PING, 0, &[0, 0]),
            control(TYPE_SETTINGS, 0, &[0xff, 0xff, 0xff, 0xff]),
            control(TYPE_SYN_STREAM, 0, &[0, 0, 0, 1, 0, 0]),
            control(TYPE_SYN_STREAM, 0, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3]),
            control(TYPE_GOAWAY, 0, &[0; 4]),
            {
                let mut b = BytesMut::new();
                b.put_u32(0);
                b.put_u32(1);
                b.put_u8(0);
                b
            },
            {
                let mut b = control(TYPE_PING, 0, &[0, 0, 0, 1]);
                b[1] = 2;
                b
            },
        ];
        for mut case in cases {
            let mut dec = FrameDecoder::new();
            assert!(dec.decode(&mut case).is_err(), "{case:?}");
        }
        let mut huge = BytesMut::new();
        huge.put_u16(0x8003);
        huge.put_u16(TYPE_SETTINGS);
        huge.put_u32(0x00ff_ffff);
        assert!(matches!(
            FrameDecoder::new().decode(&mut huge),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn a_lying_header_count_is_refused_without_allocating() -> Result<(), FrameError> {
        let mut z = HeaderCompressor::new()?;
        let block = z.compress(&[0xff, 0xff, 0xff, 0xff])?;
        let mut payload = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        payload.extend_from_slice(&block);
        let mut wire = control(TYPE_SYN_STREAM, 0, &payload);
        assert!(matches!(
            FrameDecoder::new().decode(&mut wire),
            Err(FrameError::HeaderBlock(_))
        ));
        Ok(())
    }

    #[test]
    fn unknown_control_frames_are_skipped() -> Result<(), FrameError> {
        let mut wire = control(10, 0, &[1, 2, 3]);
        wire.extend_from_slice(&control(TYPE_PING, 0, &[0, 0, 0, 9]));
        assert_eq!(
            FrameDecoder::new().decode(&mut wire)?,
            Some(Frame::Ping { id: 9 })
        );
        Ok(())
    }
}

//! Hijacked streams (attach, exec start): after the 101, the container's output goes to the
//! client (Docker's 8-byte frames, or raw bytes for a terminal) and the client's input goes
//! to the shim, until the process ends or the client types the detach keys.

use berth_shim_protocol::{parse_header, EXIT};
use bytes::{Buf, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::{ApiError, ApiResult};
pub use crate::detach::DetachKeys;

/// The detach keys of a request, its error as a 400.
pub fn parse_detach_keys(spec: Option<&str>) -> ApiResult<Vec<u8>> {
    crate::detach::parse(spec).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// How a hijacked stream behaves.
pub struct Pump {
    pub tty: bool,
    /// The client's input goes to the process.
    pub stdin: bool,
    pub detach_keys: Vec<u8>,
    /// For an exec: told the exit status (from the shim's exit frame), before the client's
    /// stream ends. The shim's stream is then read to that frame even if the client leaves.
    pub on_exit: Option<Box<dyn FnOnce(i32) + Send>>,
}

/// A complete frame at the front of `buf`, taken out.
fn take_frame(buf: &mut BytesMut) -> Option<(u8, BytesMut)> {
    let header: [u8; 8] = buf.get(..8)?.try_into().ok()?;
    let (stream, len) = parse_header(&header);
    if buf.len() < 8 + len {
        return None;
    }
    let mut frame = buf.split_to(8 + len);
    Some((stream, {
        frame.advance(8);
        frame
    }))
}

/// What the pump holds for each direction before it stops reading more: the shim is not
/// read while the client has not taken this much, nor the client while the shim has not.
const PUMP_BUFFER: usize = 64 * 1024;

/// How long the input typed before the detach keys may take to reach a process that does
/// not read it, before the pump lets go of it.
const DETACH_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// The two connections of a hijacked stream and what is on its way between them.
struct Ends<C> {
    client_rd: tokio::io::ReadHalf<C>,
    client_wr: tokio::io::WriteHalf<C>,
    shim_rd: tokio::net::unix::OwnedReadHalf,
    shim_wr: tokio::net::unix::OwnedWriteHalf,
    from_shim: BytesMut,
    to_client: BytesMut,
    from_client: BytesMut,
    to_shim: BytesMut,
}

impl<C> Ends<C> {
    /// Move the complete frames read from the shim to the client's queue (as they are, or
    /// only their payload for a terminal; dropped when `deliver` is false), up to
    /// [`PUMP_BUFFER`]. The exit status, when the shim's exit frame came.
    fn queue_output(&mut self, tty: bool, deliver: bool) -> Option<i32> {
        while self.to_client.len() < PUMP_BUFFER {
            let (stream, payload) = take_frame(&mut self.from_shim)?;
            if stream == EXIT {
                return payload
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_be_bytes);
            }
            if !deliver {
                continue;
            }
            if tty {
                self.to_client.extend_from_slice(&payload);
            } else {
                let framed = berth_shim_protocol::frame(stream, &payload);
                self.to_client.extend_from_slice(&framed);
            }
        }
        None
    }
}

/// Pump between the upgraded client connection and the shim's stream; `leftover` is what
/// was read from the shim past its answer line. Both directions move at once, each as fast
/// as its reader takes it, so a process that echoes its input (`cat`) cannot leave the pump
/// stuck writing that input while the output waits unread.
pub async fn pump(
    client: Upgraded,
    shim: std::os::unix::net::UnixStream,
    leftover: Vec<u8>,
    mut p: Pump,
) {
    let mut client = TokioIo::new(client);
    let shim = shim
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(shim));
    let Ok(shim) = shim else {
        let _ = client.shutdown().await;
        return;
    };
    let (shim_rd, shim_wr) = shim.into_split();
    let (client_rd, client_wr) = tokio::io::split(client);
    let mut e = Ends {
        client_rd,
        client_wr,
        shim_rd,
        shim_wr,
        from_shim: BytesMut::from(&leftover[..]),
        to_client: BytesMut::new(),
        from_client: BytesMut::new(),
        to_shim: BytesMut::new(),
    };
    // Docker watches for the detach keys only on a terminal (moby's attach copies other
    // input as it is): in piped, binary input they are just bytes.
    let mut keys = p
        .tty
        .then(|| DetachKeys::new(std::mem::take(&mut p.detach_keys)));
    let mut client_open = true;
    let mut reading_client = p.stdin;
    // The client is done sending: the process's input ends once `to_shim` is written.
    let mut input_ended = false;
    let mut exit_code;
    loop {
        exit_code = e.queue_output(p.tty, client_open);
        if exit_code.is_some() {
            break;
        }
        if input_ended && e.to_shim.is_empty() {
            input_ended = false;
            let _ = e.shim_wr.shutdown().await;
        }
        e.from_shim.reserve(PUMP_BUFFER);
        e.from_client.reserve(PUMP_BUFFER);
        tokio::select! {
            n = e.shim_rd.read_buf(&mut e.from_shim), if e.to_client.len() < PUMP_BUFFER => {
                if matches!(n, Ok(0) | Err(_)) {
                    break;
                }
            }
            n = e.client_wr.write_buf(&mut e.to_client),
                if client_open && !e.to_client.is_empty() => {
                if matches!(n, Ok(0) | Err(_)) {
                    client_open = false;
                    e.to_client.clear();
                    if p.on_exit.is_none() {
                        break;
                    }
                }
            }
            n = e.shim_wr.write_buf(&mut e.to_shim), if !e.to_shim.is_empty() => {
                if matches!(n, Ok(0) | Err(_)) {
                    // The process's input is gone: what the client sends is dropped.
                    e.to_shim.clear();
                    reading_client = false;
                }
            }
            n = e.client_rd.read_buf(&mut e.from_client),
                if client_open && reading_client && e.to_shim.is_empty() => {
                match n {
                    // The client is done sending: the process's input ends (stdin-once).
                    Ok(0) | Err(_) => {
                        reading_client = false;
                        input_ended = true;
                    }
                    Ok(_) => {
                        let (data, detached) = match keys.as_mut() {
                            Some(k) => k.feed(&e.from_client),
                            None => (e.from_client.to_vec(), false),
                        };
                        e.from_client.clear();
                        e.to_shim.extend_from_slice(&data);
                        if detached {
                            client_open = false;
                            reading_client = false;
                            e.to_client.clear();
                            let _ = e.client_wr.shutdown().await;
                            if p.on_exit.is_none() {
                                // What was typed before the keys still goes in, if the
                                // process takes it soon.
                                let flush = e.shim_wr.write_all(&e.to_shim);
                                let _ = tokio::time::timeout(DETACH_FLUSH, flush).await;
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
    // What the process wrote last still reaches the client.
    if client_open && !e.to_client.is_empty() && e.client_wr.write_all(&e.to_client).await.is_err()
    {
        client_open = false;
    }
    if let Some(on_exit) = p.on_exit.take() {
        // No exit frame: the shim went away with the container.
        on_exit(exit_code.unwrap_or(137));
    }
    if client_open {
        let _ = e.client_wr.shutdown().await;
    }
}

/// Write an error into a hijacked stream (stderr, or raw for a terminal), then close it.
pub async fn refuse(client: Upgraded, tty: bool, message: &str) {
    let mut client = TokioIo::new(client);
    let bytes = if tty {
        message.as_bytes().to_vec()
    } else {
        berth_shim_protocol::frame(berth_shim_protocol::STDERR, message.as_bytes())
    };
    let _ = client.write_all(&bytes).await;
    let _ = client.shutdown().await;
}

/// A resize request's `h` and `w`, in characters.
pub fn terminal_size(ctx: &super::Ctx) -> ApiResult<(u16, u16)> {
    let dimension = |key: &str| {
        let v = ctx.query.get(key).unwrap_or_default();
        v.parse::<u16>().map_err(|_| {
            ApiError::bad_request(format!("invalid {key} {v:?}: a number of characters"))
        })
    };
    Ok((dimension("h")?, dimension("w")?))
}

/// The 101 answer that hands the connection over.
pub fn switching_protocols(tty: bool) -> hyper::Response<super::body::Body> {
    let mut resp = super::body::empty(hyper::StatusCode::SWITCHING_PROTOCOLS);
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let h = resp.headers_mut();
    for (k, v) in [
        ("Content-Type", content_type),
        ("Connection", "Upgrade"),
        ("Upgrade", "tcp"),
    ] {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker_does() {
        assert_eq!(parse_detach_keys(None).ok(), Some(vec![16, 17]));
        assert_eq!(
            parse_detach_keys(Some("ctrl-a,x")).ok(),
            Some(vec![1, b'x'])
        );
        assert!(parse_detach_keys(Some("ctrl-")).is_err());
        assert!(parse_detach_keys(Some("ctrl-1")).is_err());
        assert!(parse_detach_keys(Some("ab")).is_err());
    }

    #[test]
    fn detach_sequence_is_held_then_released_or_detected() {
        let mut d = DetachKeys::new(vec![16, 17]);
        assert_eq!(d.feed(b"ab\x10"), (b"ab".to_vec(), false));
        // Not followed by ctrl-q: the ctrl-p goes through.
        assert_eq!(d.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(d.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(d.feed(b"\x11rest"), (Vec::new(), true));
        // ctrl-p ctrl-p ctrl-q: the first ctrl-p passes, then detach.
        let mut d = DetachKeys::new(vec![16, 17]);
        assert_eq!(d.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
    }
}

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

/// Pump between the upgraded client connection and the shim's stream; `leftover` is what
/// was read from the shim past its answer line.
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
    let Ok(mut shim) = shim else {
        let _ = client.shutdown().await;
        return;
    };
    let mut from_shim = BytesMut::from(&leftover[..]);
    let mut from_client = BytesMut::with_capacity(8 * 1024);
    let mut keys = DetachKeys::new(std::mem::take(&mut p.detach_keys));
    let mut client_open = true;
    let mut reading_client = p.stdin;
    let mut exit_code = None;
    'outer: loop {
        while let Some((stream, payload)) = take_frame(&mut from_shim) {
            if stream == EXIT {
                exit_code = payload
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_be_bytes);
                break 'outer;
            }
            if !client_open {
                continue;
            }
            let written = if p.tty {
                client.write_all(&payload).await
            } else {
                client
                    .write_all(&berth_shim_protocol::frame(stream, &payload))
                    .await
            };
            if written.is_err() {
                client_open = false;
                if p.on_exit.is_none() {
                    break 'outer;
                }
            }
        }
        tokio::select! {
            n = shim.read_buf(&mut from_shim) => {
                if matches!(n, Ok(0) | Err(_)) {
                    break 'outer;
                }
            }
            n = client.read_buf(&mut from_client), if client_open && reading_client => {
                match n {
                    Ok(0) | Err(_) => {
                        // The client is done sending: the process's input ends (stdin-once).
                        reading_client = false;
                        let _ = shim.shutdown().await;
                    }
                    Ok(_) => {
                        let (data, detached) = keys.feed(&from_client);
                        from_client.clear();
                        if !data.is_empty() && shim.write_all(&data).await.is_err() {
                            reading_client = false;
                        }
                        if detached {
                            let _ = client.shutdown().await;
                            client_open = false;
                            if p.on_exit.is_none() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(on_exit) = p.on_exit.take() {
        // No exit frame: the shim went away with the container.
        on_exit(exit_code.unwrap_or(137));
    }
    if client_open {
        let _ = client.shutdown().await;
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

//! The shim's socket protocol, shared by berth-shim (server) and berthd (client).
//!
//! A client connects to `<bundle>/shim.sock` and sends one [`Request`] as a JSON line. The
//! shim answers one line: `ok[ DETAIL]` or `error MESSAGE`. What follows depends on the
//! request:
//! - `attach`: the container's output as frames (below) until it ends; bytes the client
//!   writes go to the container's standard input; the client's EOF closes that input when
//!   the container was created with `stdin_once`. With `logs`, the answer's detail is a
//!   [`LogPosition`] (JSON; none without a log) and the first frames are the text the log
//!   does not hold yet (the lines not ended): the log up to that position, then the
//!   stream, is the whole output without a gap or a repeat.
//! - `exec`: the same for one exec'd process, then an [`EXIT`] frame with its status.
//! - `wait`: nothing until the container ends, then its exit record as a JSON line.
//! - `start`, `resize`: nothing more.
//!
//! Frames are Docker's multiplexed-stream frames (stream byte, three zeros, big-endian
//! length, payload), so berthd forwards them unchanged to a client that did not ask for a
//! terminal.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The socket's name inside the container's bundle.
pub const SOCKET: &str = "shim.sock";

/// Frame stream ids: Docker's stdout and stderr, and berth's own for an exec's exit status
/// (4-byte big-endian code), which berthd consumes.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 0xff;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Stream the container's output (the chosen streams), and feed its input.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
        /// The client replays the log first (`attach?logs=1`).
        #[serde(default)]
        logs: bool,
    },
    /// Start the created container (the runtime's `start`).
    Start,
    /// Set the terminal size of the container (exec: None) or of an exec'd process.
    Resize {
        exec: Option<String>,
        height: u16,
        width: u16,
    },
    /// Run a process in the container: `process` is a runtime-spec process.
    Exec {
        id: String,
        process: serde_json::Value,
        stdin: bool,
    },
    /// Hold the connection until the container ends.
    Wait,
    /// Close the log and open its path again (a kubelet rotated the file away).
    ReopenLog,
}

/// Where the live json log ended when an attach with `logs` began: its inode and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    pub inode: u64,
    pub size: u64,
}

/// The 8-byte header and the payload of one frame.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A frame header: the stream id and the payload's length.
pub fn parse_header(header: &[u8; 8]) -> (u8, usize) {
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    (header[0], len as usize)
}

/// Connect to the shim of the container whose bundle is `bundle`.
///
/// Through `/proc/self/fd/N/shim.sock` with `N` the bundle directory opened by this call:
/// a socket address holds at most 107 bytes, and data roots can be long.
pub fn connect(bundle: &Path) -> std::io::Result<UnixStream> {
    let dir = std::fs::File::open(bundle)?;
    let path = format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd());
    let stream = UnixStream::connect(path);
    drop(dir);
    stream
}

/// Send `request` and read the shim's one-line answer: Ok(detail) or Err(message). The
/// returned reader holds the stream (and anything already buffered after the answer).
pub fn request(
    bundle: &Path,
    request: &Request,
) -> std::io::Result<(BufReader<UnixStream>, Result<String, String>)> {
    request_within(bundle, request, None)
}

/// [`request`], waiting at most `timeout` for the answer (an error of kind `WouldBlock`
/// or `TimedOut` past it); the stream returned has no timeout.
pub fn request_within(
    bundle: &Path,
    request: &Request,
    timeout: Option<std::time::Duration>,
) -> std::io::Result<(BufReader<UnixStream>, Result<String, String>)> {
    let mut stream = connect(bundle)?;
    stream.set_read_timeout(timeout)?;
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    reader.get_ref().set_read_timeout(None)?;
    let answer = answer.trim_end();
    let outcome = match answer.split_once(' ') {
        _ if answer == "ok" => Ok(String::new()),
        Some(("ok", detail)) => Ok(detail.to_string()),
        Some(("error", msg)) => Err(msg.to_string()),
        _ if answer.is_empty() => Err("the shim closed the connection".into()),
        _ => Err(format!("unexpected answer from the shim: {answer:?}")),
    };
    Ok((reader, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let f = frame(STDERR, b"hello");
        let header: [u8; 8] = f[..8].try_into().unwrap_or_default();
        assert_eq!(parse_header(&header), (STDERR, 5));
        assert_eq!(&f[8..], b"hello");
    }

    #[test]
    fn requests_are_tagged_json() {
        let r = Request::Resize {
            exec: None,
            height: 24,
            width: 80,
        };
        let text = serde_json::to_string(&r).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"op":"resize","exec":null,"height":24,"width":80}"#
        );
        let back: Request = serde_json::from_str(&text).unwrap_or(Request::Wait);
        assert_eq!(back, r);
    }
}

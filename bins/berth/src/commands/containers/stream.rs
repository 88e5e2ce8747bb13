//! An attached container or exec: the hijacked stream wired to this process's standard
//! streams, demultiplexed unless it is a TTY, with the detach keys watched for.

use anyhow::Result;
use berth_api::client::Hijacked;
use berth_api::detach::DetachKeys;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What is attached.
pub struct Session {
    pub tty: bool,
    /// Standard input goes to the container.
    pub stdin: bool,
    /// `--detach-keys`, else ctrl-p,ctrl-q.
    pub detach_keys: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The container's output ended (it exited, or the daemon closed the stream).
    Output,
    /// The user typed the detach keys: the container goes on.
    Detached,
}

/// Stream until the output ends or the user detaches.
pub async fn stream(conn: Hijacked, session: &Session) -> Result<Ended> {
    let keys = berth_api::detach::parse(session.detach_keys.as_deref())?;
    let (mut output, input) = tokio::io::split(conn);
    let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
    if session.stdin {
        // Detach keys only mean something on a terminal; piped input passes as it is.
        let keys = session.tty.then_some(keys);
        tokio::spawn(async move {
            if feed_input(tokio::io::stdin(), input, keys).await {
                let _ = detached_tx.send(());
            }
        });
    }
    tokio::select! {
        copied = copy_output(&mut output, session.tty) => {
            copied?;
            Ok(Ended::Output)
        }
        Ok(()) = &mut detached => Ok(Ended::Detached),
    }
}

/// Copy standard input to the container; at its end, close the container's input (half
/// close). True when the detach keys were typed.
async fn feed_input(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    keys: Option<Vec<u8>>,
) -> bool {
    let mut detect = keys.map(DetachKeys::new);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (pass, detach) = match &mut detect {
            Some(d) => d.feed(&buf[..n]),
            None => (buf[..n].to_vec(), false),
        };
        if to.write_all(&pass).await.is_err() || to.flush().await.is_err() {
            return false;
        }
        if detach {
            return true;
        }
    }
    let _ = to.shutdown().await;
    false
}

/// Tell the daemon this terminal's size now and whenever it changes (`resize` is the
/// container's or the exec's resize path).
pub async fn follow_resizes(client: berth_api::client::Client, resize: String) {
    let send = || async {
        if let Some((h, w)) = crate::terminal::size() {
            let _ = client.post_empty(&format!("{resize}?h={h}&w={w}")).await;
        }
    };
    send().await;
    let Ok(mut changes) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
    else {
        return;
    };
    while changes.recv().await.is_some() {
        send().await;
    }
}

/// The container's output to ours: raw for a TTY, else demultiplexed.
async fn copy_output(from: &mut (impl AsyncRead + Unpin), tty: bool) -> Result<()> {
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut demux = Demux::new(tty);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        for (stream, bytes) in demux.feed(&buf[..n]) {
            let out: &mut (dyn AsyncWrite + Unpin) = match stream {
                Stream::Stderr => &mut stderr,
                Stream::Stdout => &mut stdout,
            };
            out.write_all(&bytes).await?;
            out.flush().await?;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Splits Docker's multiplexed stream (8-byte headers: stream type, three zero bytes,
/// big-endian length) into its stdout and stderr parts; a TTY's stream is all stdout.
pub struct Demux {
    tty: bool,
    pending: Vec<u8>,
}

impl Demux {
    pub fn new(tty: bool) -> Demux {
        Demux {
            tty,
            pending: Vec::new(),
        }
    }

    /// The complete parts in `chunk` (with what was pending); a partial frame waits.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<(Stream, Vec<u8>)> {
        if self.tty {
            return vec![(Stream::Stdout, chunk.to_vec())];
        }
        self.pending.extend_from_slice(chunk);
        let mut parts = Vec::new();
        while let Some(header) = self.pending.get(..8) {
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if self.pending.len() < 8 + len {
                break;
            }
            let stream = if header[0] == 2 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            let frame: Vec<u8> = self.pending.drain(..8 + len).skip(8).collect();
            parts.push((stream, frame));
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_chunks_come_out_whole() {
        let mut d = Demux::new(false);
        let mut wire = vec![1, 0, 0, 0, 0, 0, 0, 3];
        wire.extend_from_slice(b"out");
        wire.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
        wire.extend_from_slice(b"err!");
        assert_eq!(d.feed(&wire[..5]), vec![]);
        assert_eq!(
            d.feed(&wire[5..13]),
            vec![(Stream::Stdout, b"out".to_vec())]
        );
        assert_eq!(
            d.feed(&wire[13..]),
            vec![(Stream::Stderr, b"err!".to_vec())]
        );
        let mut tty = Demux::new(true);
        assert_eq!(
            tty.feed(b"\x01raw"),
            vec![(Stream::Stdout, b"\x01raw".to_vec())]
        );
    }
}

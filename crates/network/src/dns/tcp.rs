//! DNS over TCP (RFC 7766): each message behind a 2-byte length, several queries on one
//! connection, answered in any order. A connection is a small state machine driven by the
//! resolver's epoll thread: bytes read until complete queries appear, answers queued and
//! written as the socket takes them; the resolver closes it when the client is done, when
//! it fails, or when it has been idle too long.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use nix::sys::epoll::EpollFlags;

/// A connection with no query for this long is closed (miekg/dns's default, the library
/// of Docker's resolver).
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(8);

/// The most input held: one whole message and its length.
const MAX_INPUT: usize = 2 + u16::MAX as usize;

/// Beyond this much unsent output, no more queries are read until the client reads its
/// answers.
const MAX_OUTPUT: usize = 4 * MAX_INPUT;

/// How long an upstream server has to accept, take the query and answer each read.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// One client's connection.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Forwarded queries whose answers have not come back yet.
    pub(super) pending: usize,
    /// The client has closed its side: no more queries.
    eof: bool,
    last: Instant,
    /// The events the connection is registered for.
    pub(super) interest: EpollFlags,
}

impl Conn {
    pub(super) fn new(stream: TcpStream, now: Instant) -> Conn {
        Conn {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            pending: 0,
            eof: false,
            last: now,
            interest: EpollFlags::EPOLLIN,
        }
    }

    /// Read what the client sent; the complete queries in it.
    pub(super) fn read(&mut self, now: Instant) -> std::io::Result<Vec<Vec<u8>>> {
        let mut chunk = [0u8; 4096];
        while !self.eof && self.input.len() < MAX_INPUT && self.output.len() < MAX_OUTPUT {
            match self.stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    self.last = now;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(split(&mut self.input))
    }

    /// Queue `answer` (sent at the next [`Conn::flush`]).
    pub(super) fn queue(&mut self, answer: &[u8], now: Instant) {
        // An answer longer than a length can say cannot be sent over TCP: none is.
        let Ok(len) = u16::try_from(answer.len()) else {
            return;
        };
        self.output.extend_from_slice(&len.to_be_bytes());
        self.output.extend_from_slice(answer);
        self.last = now;
    }

    /// Write what the socket takes now.
    pub(super) fn flush(&mut self) -> std::io::Result<()> {
        let mut sent = 0;
        let result = loop {
            if sent == self.output.len() {
                break Ok(());
            }
            match self.stream.write(&self.output[sent..]) {
                Ok(0) => break Err(ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.output.drain(..sent);
        result
    }

    /// The client closed its side and has every answer: nothing is left to do.
    pub(super) fn finished(&self) -> bool {
        self.eof && self.pending == 0 && self.output.is_empty()
    }

    /// Nothing came, and nothing was answered, for `timeout` (a query being forwarded
    /// keeps the connection).
    pub(super) fn idle(&self, now: Instant, timeout: Duration) -> bool {
        self.pending == 0 && now.saturating_duration_since(self.last) >= timeout
    }

    /// The events to wait for now.
    pub(super) fn wanted(&self) -> EpollFlags {
        let mut flags = EpollFlags::empty();
        if !self.eof && self.output.len() < MAX_OUTPUT {
            flags |= EpollFlags::EPOLLIN;
        }
        if !self.output.is_empty() {
            flags |= EpollFlags::EPOLLOUT;
        }
        flags
    }
}

/// The complete messages at the start of `input` (taken out of it).
fn split(input: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut at = 0;
    while let Some(len) = input.get(at..at + 2) {
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let Some(message) = input.get(at + 2..at + 2 + len) else {
            break;
        };
        messages.push(message.to_vec());
        at += 2 + len;
    }
    input.drain(..at);
    messages
}

/// The first answer of the upstream servers, tried in turn, each over TCP.
pub(super) fn forward(query: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    upstream.iter().find_map(|server| {
        ask(query, server)
            .ok()
            .filter(|answer| answer.len() >= 2 && answer[..2] == query[..2])
    })
}

fn ask(query: &[u8], server: &SocketAddr) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(query.len()).map_err(|_| ErrorKind::InvalidInput)?;
    let mut stream = TcpStream::connect_timeout(server, UPSTREAM_TIMEOUT)?;
    stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    stream.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
    let mut framed = Vec::with_capacity(2 + query.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_split_at_their_lengths_and_a_partial_one_waits() {
        let mut input = vec![0, 2, 0xaa, 0xbb, 0, 0, 0, 3, 1];
        assert_eq!(split(&mut input), vec![vec![0xaa, 0xbb], vec![]]);
        assert_eq!(input, vec![0, 3, 1]);
        input.extend_from_slice(&[2, 3, 0]);
        assert_eq!(split(&mut input), vec![vec![1, 2, 3]]);
        assert_eq!(input, vec![0]);
    }

    #[test]
    fn a_connection_reads_pipelined_queries_and_sends_framed_answers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        let now = Instant::now();
        let mut conn = Conn::new(server, now);
        client.write_all(&[0, 1, 7, 0, 2, 8, 9]).expect("write");
        let mut got = Vec::new();
        while got.len() < 2 {
            got.extend(conn.read(now).expect("read"));
        }
        assert_eq!(got, vec![vec![7], vec![8, 9]]);
        conn.queue(&[5, 6], now);
        assert!(conn.wanted().contains(EpollFlags::EPOLLOUT));
        conn.flush().expect("flush");
        assert_eq!(conn.wanted(), EpollFlags::EPOLLIN);
        let mut answer = [0u8; 4];
        client.read_exact(&mut answer).expect("answer");
        assert_eq!(answer, [0, 2, 5, 6]);
        assert!(!conn.idle(now, IDLE_TIMEOUT));
        assert!(conn.idle(now + IDLE_TIMEOUT, IDLE_TIMEOUT));
        conn.pending = 1;
        assert!(!conn.idle(now + IDLE_TIMEOUT, IDLE_TIMEOUT));
        conn.pending = 0;
        drop(client);
        while !conn.eof {
            conn.read(now).expect("read");
        }
        assert!(conn.finished());
        assert_eq!(conn.wanted(), EpollFlags::empty());
    }
}

//! The embedded DNS resolver of user-defined networks: one thread in berthd answers for
//! every container. Each container on such a network gets a UDP socket bound to
//! 127.0.0.11:53 inside its own network namespace (made while berthd's attach thread is in
//! it; a socket stays in the namespace it was made in), and the thread waits on all of them
//! with one epoll. Names of containers on the same network (name, short id, aliases) are
//! answered from a table berthd keeps; other names are forwarded, from the host's namespace,
//! to the container's upstream servers (the host's, or its `--dns`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// Where containers find the resolver (Docker's address).
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// A socket for the resolver in the calling thread's network namespace.
pub fn bind_here() -> std::io::Result<OwnedFd> {
    let sock = UdpSocket::bind((ADDRESS, 53))?;
    Ok(OwnedFd::from(sock))
}

struct Listener {
    sock: Arc<UdpSocket>,
    /// The networks whose names the container asking here is answered from (a container
    /// on several networks has one socket: its namespace has one 127.0.0.11).
    networks: Vec<String>,
    upstream: Vec<SocketAddr>,
}

/// A container's names and its address.
pub type Entry = (Vec<String>, Ipv4Addr);

/// The resolver: sockets by token, and each network's names.
pub struct Resolver {
    epoll: Epoll,
    listeners: Mutex<HashMap<u64, Listener>>,
    names: Mutex<HashMap<String, Vec<Entry>>>,
    next: AtomicU64,
    /// Forwarded queries under way (each holds a thread until its upstream answers).
    forwarding: Arc<AtomicUsize>,
}

/// At most this many forwarded queries at once: beyond, a container flooding the resolver
/// with unknown names gets SERVFAIL instead of making berthd spawn threads.
const MAX_FORWARDS: usize = 64;

impl Resolver {
    /// The resolver and its thread (which lives as long as berthd).
    pub fn start() -> std::io::Result<Arc<Resolver>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let r = Arc::new(Resolver {
            epoll,
            listeners: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            forwarding: Arc::new(AtomicUsize::new(0)),
        });
        let serving = r.clone();
        std::thread::Builder::new()
            .name("dns".into())
            .spawn(move || serving.serve())?;
        Ok(r)
    }

    /// Answer on `sock` (bound in a container's namespace) with the names of `networks`;
    /// its token.
    pub fn add(
        &self,
        sock: OwnedFd,
        networks: Vec<String>,
        upstream: Vec<SocketAddr>,
    ) -> std::io::Result<u64> {
        let sock = UdpSocket::from(sock);
        sock.set_nonblocking(true)?;
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        self.epoll
            .add(sock.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))?;
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                token,
                Listener {
                    sock: Arc::new(sock),
                    networks,
                    upstream,
                },
            );
        Ok(token)
    }

    /// The container answered on `token` is now on `networks`.
    pub fn set_networks(&self, token: u64, networks: Vec<String>) {
        if let Some(l) = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&token)
        {
            l.networks = networks;
        }
    }

    pub fn remove(&self, token: u64) {
        let gone = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token);
        if let Some(l) = gone {
            let _ = self.epoll.delete(l.sock.as_fd());
        }
    }

    /// The names on `network`: each container's names (lower case) and address.
    pub fn set_names(&self, network: &str, entries: Vec<Entry>) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(network.to_string(), entries);
    }

    /// `name` on the first of `networks` that has it.
    fn lookup(&self, networks: &[String], name: &str) -> Option<Ipv4Addr> {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        networks.iter().find_map(|network| {
            names.get(network)?.iter().find_map(|(names, ip)| {
                names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name))
                    .then_some(*ip)
            })
        })
    }

    fn serve(self: Arc<Self>) {
        let mut events = [EpollEvent::empty(); 32];
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("the DNS resolver stopped: {e}");
                    return;
                }
            };
            for ev in &events[..n] {
                self.readable(ev.data());
            }
        }
    }

    /// Every query waiting on the socket of `token`.
    fn readable(&self, token: u64) {
        let Some((sock, networks, upstream)) = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&token)
            .map(|l| (l.sock.clone(), l.networks.clone(), l.upstream.clone()))
        else {
            return;
        };
        let mut buf = [0u8; 1500];
        while let Ok((len, from)) = sock.recv_from(&mut buf) {
            let query = &buf[..len];
            let Some(q) = Question::parse(query) else {
                continue;
            };
            match self.lookup(&networks, &q.name) {
                Some(ip) => {
                    let _ = sock.send_to(&answer(query, &q, Some(ip)), from);
                }
                None if self.forwarding.fetch_add(1, Ordering::AcqRel) >= MAX_FORWARDS => {
                    self.forwarding.fetch_sub(1, Ordering::AcqRel);
                    let _ = sock.send_to(&failure(query, &q, 2), from);
                }
                None => {
                    let (sock, query, upstream) = (sock.clone(), query.to_vec(), upstream.clone());
                    let forwarding = self.forwarding.clone();
                    // Off the resolver's thread: an upstream may take seconds.
                    let spawned = std::thread::Builder::new()
                        .name("dns-forward".into())
                        .spawn(move || {
                            let reply = forward(&query, &upstream)
                                .unwrap_or_else(|| failure(&query, &q, 2));
                            let _ = sock.send_to(&reply, from);
                            forwarding.fetch_sub(1, Ordering::AcqRel);
                        });
                    if spawned.is_err() {
                        self.forwarding.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            }
        }
    }
}

/// The first question of a query.
#[derive(Debug, Clone)]
struct Question {
    name: String,
    qtype: u16,
    /// Where the question ends (the answer starts there).
    end: usize,
}

impl Question {
    fn parse(msg: &[u8]) -> Option<Question> {
        if msg.len() < 12 || msg[2] & 0x80 != 0 || u16::from_be_bytes([msg[4], msg[5]]) != 1 {
            return None;
        }
        let mut at = 12;
        let mut labels = Vec::new();
        loop {
            let len = *msg.get(at)? as usize;
            at += 1;
            if len == 0 {
                break;
            }
            if len > 63 {
                return None;
            }
            labels.push(String::from_utf8_lossy(msg.get(at..at + len)?).into_owned());
            at += len;
        }
        let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
        msg.get(at + 3)?;
        Some(Question {
            name: labels.join("."),
            qtype,
            end: at + 4,
        })
    }
}

const TYPE_A: u16 = 1;
const TYPE_ANY: u16 = 255;

/// The reply to `query`: the address for an A (or ANY) question, no record for another
/// type of a known name.
fn answer(query: &[u8], q: &Question, ip: Option<Ipv4Addr>) -> Vec<u8> {
    let mut out = query[..q.end].to_vec();
    // QR, the query's opcode and RD, RA; no error.
    out[2] = 0x80 | (query[2] & 0x79);
    out[3] = 0x80;
    let with_address = ip.filter(|_| q.qtype == TYPE_A || q.qtype == TYPE_ANY);
    out[6..8].copy_from_slice(&(with_address.is_some() as u16).to_be_bytes());
    out[8..12].copy_from_slice(&[0, 0, 0, 0]);
    if let Some(ip) = with_address {
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&600u32.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// A reply with response code `rcode` and nothing else.
fn failure(query: &[u8], q: &Question, rcode: u8) -> Vec<u8> {
    let mut out = answer(query, q, None);
    out[3] = 0x80 | rcode;
    out
}

/// The first answer of the upstream servers, tried in turn.
fn forward(query: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let local: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(sock) = UdpSocket::bind(local) else {
            continue;
        };
        let _ = sock.set_read_timeout(Some(Duration::from_secs(3)));
        if sock.send_to(query, server).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok((len, _)) = sock.recv_from(&mut buf) {
            if len >= 2 && buf[..2] == query[..2] {
                buf.truncate(len);
                return Some(buf);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn an_a_question_gets_the_address() {
        let q = query("web", TYPE_A);
        let parsed = Question::parse(&q).expect("question");
        assert_eq!(parsed.name, "web");
        let a = answer(&q, &parsed, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80);
        assert_eq!(&a[6..8], &[0, 1]);
        assert_eq!(&a[a.len() - 4..], &[10, 0, 0, 2]);
        let aaaa = query("web", 28);
        let parsed = Question::parse(&aaaa).expect("question");
        assert_eq!(
            &answer(&aaaa, &parsed, Some(Ipv4Addr::new(10, 0, 0, 2)))[6..8],
            &[0, 0]
        );
        assert!(Question::parse(&[0; 5]).is_none());
    }
}

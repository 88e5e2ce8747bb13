//! The embedded DNS resolver of user-defined networks: one thread in berthd answers for
//! every container. Each container on such a network gets a UDP socket and a TCP listener
//! bound to 127.0.0.11:53 inside its own network namespace (made while berthd's attach
//! thread is in it; a socket stays in the namespace it was made in), and the thread waits
//! on all of them, and on the TCP connections they accept (dns/tcp.rs), with one epoll.
//! Names of containers on the same network (name, short id, aliases) are answered from a
//! table berthd keeps; other names are forwarded, from the host's namespace, to the
//! container's upstream servers (the host's, or its `--dns`) over the protocol the query
//! came by, as Docker's resolver does. A UDP answer larger than the client takes (512 bytes,
//! or its EDNS0 size) is cut to its question with TC set, so the client asks over TCP.

mod tcp;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

/// Where containers find the resolver (Docker's address).
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// The resolver's sockets in one container's namespace.
#[derive(Debug)]
pub struct Sockets {
    udp: OwnedFd,
    tcp: OwnedFd,
}

/// The resolver's sockets in the calling thread's network namespace.
pub fn bind_here() -> std::io::Result<Sockets> {
    let udp = UdpSocket::bind((ADDRESS, 53))?;
    let tcp = TcpListener::bind((ADDRESS, 53))?;
    Ok(Sockets {
        udp: udp.into(),
        tcp: tcp.into(),
    })
}

struct Listener {
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    /// Its open TCP connections, by their part of the epoll token.
    conns: HashMap<u32, tcp::Conn>,
    next_conn: u32,
    /// The networks whose names the container asking here is answered from (a container
    /// on several networks has one socket: its namespace has one 127.0.0.11).
    networks: Vec<String>,
    upstream: Vec<SocketAddr>,
}

/// The descriptor [`Resolver`] keeps in reserve.
fn spare_descriptor() -> std::io::Result<std::fs::File> {
    std::fs::File::open("/dev/null")
}

/// The process or the system has no descriptor left for an accept.
fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// A container's names and its address.
pub type Entry = (Vec<String>, Ipv4Addr);

/// A container's names and its IPv6 address.
pub type Entry6 = (Vec<String>, Ipv6Addr);

/// Each network's containers: their names and an address of one family.
type NameTable<A> = Mutex<HashMap<String, Vec<(Vec<String>, A)>>>;

/// `name`'s address (of either family) on the first of `networks` where it has one.
fn lookup<A: Copy>(table: &NameTable<A>, networks: &[String], name: &str) -> Option<A> {
    let names = table.lock().unwrap_or_else(|p| p.into_inner());
    networks.iter().find_map(|network| {
        names.get(network)?.iter().find_map(|(names, ip)| {
            names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
                .then_some(*ip)
        })
    })
}

/// Epoll tokens: a container's token in the high 32 bits, which of its sockets in the low
/// ones (the UDP socket, the TCP listener, then its connections); token 0 (no container's)
/// is the wake-up of answers forwarded over TCP.
const WAKE: u64 = 0;
const UDP: u32 = 0;
const LISTEN: u32 = 1;
const FIRST_CONN: u32 = 2;

fn token(container: u64, socket: u32) -> u64 {
    container << 32 | u64::from(socket)
}

/// An answer forwarded over TCP, for the connection of its token.
type Forwarded = (u64, Vec<u8>);

/// The resolver: sockets by token, and each network's names.
pub struct Resolver {
    epoll: Epoll,
    listeners: Mutex<HashMap<u64, Listener>>,
    names: NameTable<Ipv4Addr>,
    /// The IPv6 addresses of the containers on IPv6 networks (AAAA answers).
    names6: NameTable<Ipv6Addr>,
    next: AtomicU64,
    /// Forwarded queries under way (each holds a thread until its upstream answers).
    forwarding: Arc<AtomicUsize>,
    /// Open TCP connections, all containers together.
    connections: AtomicUsize,
    /// Where forwarding threads leave TCP answers, and how they wake the resolver's thread
    /// (which alone writes to connections).
    forwarded: mpsc::Sender<Forwarded>,
    wake: Arc<EventFd>,
    /// A descriptor held in reserve: when berthd has none left, a listener's pending
    /// connection is accepted with it and closed, so that the listener does not stay
    /// readable and spin the resolver's thread (None while it could not be reopened).
    spare: Mutex<Option<std::fs::File>>,
}

/// At most this many forwarded queries at once: beyond, a container flooding the resolver
/// with unknown names gets SERVFAIL instead of making berthd spawn threads.
const MAX_FORWARDS: usize = 64;

/// At most this many TCP connections open from one container, and from all: a connection
/// beyond is closed as soon as it is accepted, so that no container can take berthd's
/// file descriptors.
const MAX_CONNECTIONS_PER_CONTAINER: usize = 32;
const MAX_CONNECTIONS: usize = 512;

/// How often idle connections are looked for while some are open.
const SWEEP: Duration = Duration::from_secs(1);

impl Resolver {
    /// The resolver and its thread (which lives as long as berthd).
    pub fn start() -> std::io::Result<Arc<Resolver>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        let (forwarded, answers) = mpsc::channel();
        let r = Arc::new(Resolver {
            epoll,
            listeners: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            names6: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            forwarding: Arc::new(AtomicUsize::new(0)),
            connections: AtomicUsize::new(0),
            forwarded,
            wake: Arc::new(wake),
            spare: Mutex::new(Some(spare_descriptor()?)),
        });
        let serving = r.clone();
        std::thread::Builder::new()
            .name("dns".into())
            .spawn(move || serving.serve(&answers))?;
        Ok(r)
    }

    /// Answer on `sockets` (bound in a container's namespace) with the names of
    /// `networks`; its token.
    pub fn add(
        &self,
        sockets: Sockets,
        networks: Vec<String>,
        upstream: Vec<SocketAddr>,
    ) -> std::io::Result<u64> {
        let udp = UdpSocket::from(sockets.udp);
        udp.set_nonblocking(true)?;
        let tcp = TcpListener::from(sockets.tcp);
        tcp.set_nonblocking(true)?;
        let container = self.next.fetch_add(1, Ordering::Relaxed);
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        let events = EpollFlags::EPOLLIN;
        self.epoll
            .add(udp.as_fd(), EpollEvent::new(events, token(container, UDP)))?;
        if let Err(e) = self.epoll.add(
            tcp.as_fd(),
            EpollEvent::new(events, token(container, LISTEN)),
        ) {
            let _ = self.epoll.delete(udp.as_fd());
            return Err(e.into());
        }
        listeners.insert(
            container,
            Listener {
                udp: Arc::new(udp),
                tcp,
                conns: HashMap::new(),
                next_conn: FIRST_CONN,
                networks,
                upstream,
            },
        );
        Ok(container)
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

    /// The sockets of `token` go, and the connections they accepted.
    pub fn remove(&self, token: u64) {
        let gone = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token);
        if let Some(l) = gone {
            let _ = self.epoll.delete(l.udp.as_fd());
            let _ = self.epoll.delete(l.tcp.as_fd());
            for conn in l.conns.values() {
                let _ = self.epoll.delete(conn.stream.as_fd());
            }
            self.connections.fetch_sub(l.conns.len(), Ordering::AcqRel);
        }
    }

    /// The names on `network`: each container's names (lower case) and address.
    pub fn set_names(&self, network: &str, entries: Vec<Entry>) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(network.to_string(), entries);
    }

    /// The IPv6 addresses on `network` (an IPv6 network): each container's names and
    /// address.
    pub fn set_names6(&self, network: &str, entries: Vec<Entry6>) {
        self.names6
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(network.to_string(), entries);
    }

    /// The answer for a known `name`: its IPv6 address for an AAAA question, else its
    /// IPv4 one (None: an unknown name, forwarded).
    fn known(&self, networks: &[String], q: &Question) -> Option<IpAddr> {
        let v4 = lookup(&self.names, networks, &q.name)?;
        if q.qtype == TYPE_AAAA {
            if let Some(v6) = lookup(&self.names6, networks, &q.name) {
                return Some(IpAddr::V6(v6));
            }
        }
        Some(IpAddr::V4(v4))
    }

    fn serve(self: Arc<Self>, answers: &mpsc::Receiver<Forwarded>) {
        let mut events = [EpollEvent::empty(); 32];
        let mut swept = Instant::now();
        loop {
            let timeout = if self.connections.load(Ordering::Acquire) > 0 {
                EpollTimeout::from(SWEEP.as_millis() as u16)
            } else {
                EpollTimeout::NONE
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("the DNS resolver stopped: {e}");
                    return;
                }
            };
            for ev in &events[..n] {
                let (container, socket) = (ev.data() >> 32, ev.data() as u32);
                match (ev.data(), socket) {
                    (WAKE, _) => self.answered(answers),
                    (_, UDP) => self.readable(container),
                    (_, LISTEN) => self.accept(container),
                    _ => self.ready(container, socket, ev.events()),
                }
            }
            if swept.elapsed() >= SWEEP {
                swept = Instant::now();
                self.sweep(swept);
            }
        }
    }

    /// Every query waiting on the UDP socket of `token`.
    fn readable(&self, token: u64) {
        let Some((sock, networks, upstream)) = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&token)
            .map(|l| (l.udp.clone(), l.networks.clone(), l.upstream.clone()))
        else {
            return;
        };
        let mut buf = [0u8; 1500];
        while let Ok((len, from)) = sock.recv_from(&mut buf) {
            let query = &buf[..len];
            let Some(q) = Question::parse(query) else {
                continue;
            };
            match self.known(&networks, &q) {
                Some(ip) => {
                    let _ = sock.send_to(&answer(query, &q, Some(ip)), from);
                }
                None if !self.may_forward() => {
                    let _ = sock.send_to(&failure(query, &q, 2), from);
                }
                None => {
                    let (sock, query, upstream) = (sock.clone(), query.to_vec(), upstream.clone());
                    let forwarding = self.forwarding.clone();
                    // Off the resolver's thread: an upstream may take seconds.
                    let spawned = std::thread::Builder::new()
                        .name("dns-forward".into())
                        .spawn(move || {
                            let limit = udp_limit(&query, &q);
                            let reply = forward(&query, &upstream)
                                .map(|reply| fit(reply, &query, &q, limit))
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

    /// One more forwarded query, if under the bound (then counted in `forwarding`).
    fn may_forward(&self) -> bool {
        if self.forwarding.fetch_add(1, Ordering::AcqRel) >= MAX_FORWARDS {
            self.forwarding.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// The connections waiting on the TCP listener of `container`.
    fn accept(&self, container: u64) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        let Some(l) = listeners.get_mut(&container) else {
            return;
        };
        loop {
            let stream = match l.tcp.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if out_of_descriptors(&e) => {
                    if !self.shed_one(&l.tcp) {
                        return;
                    }
                    continue;
                }
                // A connection reset before it was taken, a signal: try the next.
                Err(_) => continue,
            };
            if l.conns.len() >= MAX_CONNECTIONS_PER_CONTAINER
                || self.connections.load(Ordering::Acquire) >= MAX_CONNECTIONS
            {
                tracing::debug!(container, "a DNS connection beyond the bound closed");
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut id = l.next_conn;
            while l.conns.contains_key(&id) {
                id = id.checked_add(1).unwrap_or(FIRST_CONN);
            }
            l.next_conn = id.checked_add(1).unwrap_or(FIRST_CONN);
            let event = EpollEvent::new(EpollFlags::EPOLLIN, token(container, id));
            if self.epoll.add(stream.as_fd(), event).is_err() {
                continue;
            }
            l.conns.insert(id, tcp::Conn::new(stream, Instant::now()));
            self.connections.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// With no descriptor left, close the oldest pending connection of `listener` through
    /// the spare one (its client sees the connection closed and may retry); false when
    /// there is no spare to do it with, or it cannot be taken back.
    fn shed_one(&self, listener: &TcpListener) -> bool {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.take().is_none() {
            // Lost at the last shedding: taken back if a descriptor has been freed since.
            *spare = spare_descriptor().ok();
            return false;
        }
        tracing::warn!("the DNS resolver is out of file descriptors: a TCP connection closed");
        let shed = listener.accept().is_ok();
        *spare = spare_descriptor().ok();
        shed && spare.is_some()
    }

    /// Connection `id` of `container` can be read or written (or has failed).
    fn ready(&self, container: u64, id: u32, events: EpollFlags) {
        let now = Instant::now();
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        let Some(l) = listeners.get_mut(&container) else {
            return;
        };
        let Listener {
            conns,
            networks,
            upstream,
            ..
        } = l;
        let Some(conn) = conns.get_mut(&id) else {
            return;
        };
        // Error or hang-up: both directions are done, no answer can reach the client.
        let result = if events.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
            Err(std::io::ErrorKind::ConnectionReset.into())
        } else {
            conn.read(now).and_then(|queries| {
                for query in queries {
                    self.tcp_query(token(container, id), conn, &query, networks, upstream, now);
                }
                conn.flush()
            })
        };
        self.settle(conns, id, container, result);
    }

    /// Answer `query` on `conn`: at once for a local name, else when the upstream does.
    fn tcp_query(
        &self,
        token: u64,
        conn: &mut tcp::Conn,
        query: &[u8],
        networks: &[String],
        upstream: &[SocketAddr],
        now: Instant,
    ) {
        let Some(q) = Question::parse(query) else {
            // Unlike a lost datagram, an unanswered query holds the connection: say why.
            if let Some(reply) = format_error(query) {
                conn.queue(&reply, now);
            }
            return;
        };
        if let Some(ip) = self.known(networks, &q) {
            conn.queue(&answer(query, &q, Some(ip)), now);
            return;
        }
        if !self.may_forward() {
            conn.queue(&failure(query, &q, 2), now);
            return;
        }
        let (owned, upstream) = (query.to_vec(), upstream.to_vec());
        let (forwarding, forwarded, wake) = (
            self.forwarding.clone(),
            self.forwarded.clone(),
            self.wake.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("dns-forward".into())
            .spawn(move || {
                let reply =
                    tcp::forward(&owned, &upstream).unwrap_or_else(|| failure(&owned, &q, 2));
                forwarding.fetch_sub(1, Ordering::AcqRel);
                if forwarded.send((token, reply)).is_ok() {
                    let _ = wake.write(1);
                }
            });
        match spawned {
            Ok(_) => conn.pending += 1,
            Err(_) => {
                self.forwarding.fetch_sub(1, Ordering::AcqRel);
                if let Some(q) = Question::parse(query) {
                    conn.queue(&failure(query, &q, 2), now);
                }
            }
        }
    }

    /// The answers forwarding threads left, each queued on its connection.
    fn answered(&self, answers: &mpsc::Receiver<Forwarded>) {
        let _ = self.wake.read();
        let now = Instant::now();
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        while let Ok((token, reply)) = answers.try_recv() {
            let (container, id) = (token >> 32, token as u32);
            let Some(conns) = listeners.get_mut(&container).map(|l| &mut l.conns) else {
                continue;
            };
            let Some(conn) = conns.get_mut(&id) else {
                continue;
            };
            conn.pending = conn.pending.saturating_sub(1);
            conn.queue(&reply, now);
            let result = conn.flush();
            self.settle(conns, id, container, result);
        }
    }

    /// Connection `id` after some work: closed if it failed or is done, else waiting for
    /// what it needs next.
    fn settle(
        &self,
        conns: &mut HashMap<u32, tcp::Conn>,
        id: u32,
        container: u64,
        result: std::io::Result<()>,
    ) {
        let Some(conn) = conns.get_mut(&id) else {
            return;
        };
        let open = result.is_ok() && !conn.finished() && {
            let wanted = conn.wanted();
            wanted == conn.interest
                || self
                    .epoll
                    .modify(
                        conn.stream.as_fd(),
                        &mut EpollEvent::new(wanted, token(container, id)),
                    )
                    .map(|()| conn.interest = wanted)
                    .is_ok()
        };
        if !open {
            self.close(conns, id);
        }
    }

    fn close(&self, conns: &mut HashMap<u32, tcp::Conn>, id: u32) {
        if let Some(conn) = conns.remove(&id) {
            let _ = self.epoll.delete(conn.stream.as_fd());
            self.connections.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Close the connections idle for too long.
    fn sweep(&self, now: Instant) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        for l in listeners.values_mut() {
            let idle: Vec<u32> = l
                .conns
                .iter()
                .filter(|(_, c)| c.idle(now, tcp::IDLE_TIMEOUT))
                .map(|(id, _)| *id)
                .collect();
            for id in idle {
                self.close(&mut l.conns, id);
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
const TYPE_AAAA: u16 = 28;

/// The reply to `query`: the address for an A (or ANY) question, no record for another
/// type of a known name.
fn answer(query: &[u8], q: &Question, ip: Option<IpAddr>) -> Vec<u8> {
    let mut out = query[..q.end].to_vec();
    // QR, the query's opcode and RD, RA; no error.
    out[2] = 0x80 | (query[2] & 0x79);
    out[3] = 0x80;
    let with_address = ip.filter(|ip| match ip {
        IpAddr::V4(_) => q.qtype == TYPE_A || q.qtype == TYPE_ANY,
        IpAddr::V6(_) => q.qtype == TYPE_AAAA,
    });
    out[6..8].copy_from_slice(&(with_address.is_some() as u16).to_be_bytes());
    out[8..12].copy_from_slice(&[0, 0, 0, 0]);
    let (rtype, data) = match with_address {
        Some(IpAddr::V4(ip)) => (TYPE_A, ip.octets().to_vec()),
        Some(IpAddr::V6(ip)) => (TYPE_AAAA, ip.octets().to_vec()),
        None => return out,
    };
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&600u32.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(&data);
    out
}

/// A reply with response code `rcode` and nothing else.
fn failure(query: &[u8], q: &Question, rcode: u8) -> Vec<u8> {
    let mut out = answer(query, q, None);
    out[3] = 0x80 | rcode;
    out
}

/// A reply saying `query` is malformed (FORMERR), if it has a header to answer.
fn format_error(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let mut out = query[..12].to_vec();
    out[2] = 0x80 | (query[2] & 0x79);
    out[3] = 0x80 | 1;
    out[4..12].fill(0);
    Some(out)
}

const TYPE_OPT: u16 = 41;

/// The most a UDP answer to `query` may hold: the payload size of its EDNS0 record, else
/// 512 bytes (RFC 1035, RFC 6891).
fn udp_limit(query: &[u8], q: &Question) -> usize {
    let count = |at: usize| usize::from(u16::from_be_bytes([query[at], query[at + 1]]));
    // The question parsed: the header is there.
    let (answers, authority, additional) = (count(6), count(8), count(10));
    let mut at = q.end;
    for i in 0..answers + authority + additional {
        let Some((rtype, class, next)) = record(query, at) else {
            break;
        };
        if i >= answers + authority && rtype == TYPE_OPT {
            return usize::from(class).max(512);
        }
        at = next;
    }
    512
}

/// The type, class and end of the resource record at `at` of `msg`.
fn record(msg: &[u8], at: usize) -> Option<(u16, u16, usize)> {
    let at = skip_name(msg, at)?;
    let field = |offset: usize| -> Option<u16> {
        Some(u16::from_be_bytes([
            *msg.get(at + offset)?,
            *msg.get(at + offset + 1)?,
        ]))
    };
    let end = at + 10 + usize::from(field(8)?);
    (end <= msg.len()).then_some((field(0)?, field(2)?, end))
}

/// Where the name at `at` of `msg` ends.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *msg.get(at)? {
            0 => return Some(at + 1),
            len if len & 0xc0 == 0xc0 => return msg.get(at + 1).map(|_| at + 2),
            len if len < 64 => at += 1 + usize::from(len),
            _ => return None,
        }
    }
}

/// `reply` as sent over UDP: whole if it fits in `limit`, else its header and the question
/// with TC set (the client asks again over TCP, as RFC 7766 has it).
fn fit(reply: Vec<u8>, query: &[u8], q: &Question, limit: usize) -> Vec<u8> {
    if reply.len() <= limit || reply.len() < 12 {
        return reply;
    }
    let mut out = reply[..12].to_vec();
    out[2] |= 0x02;
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..12].fill(0);
    out.extend_from_slice(&query[12..q.end]);
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
        // As large as a datagram gets: a longer answer than the client takes is cut by
        // `fit`, not by a short buffer (which would send part of a record).
        let mut buf = vec![0u8; u16::MAX as usize];
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
        let a = answer(&q, &parsed, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80);
        assert_eq!(&a[6..8], &[0, 1]);
        assert_eq!(&a[a.len() - 4..], &[10, 0, 0, 2]);
        let aaaa = query("web", 28);
        let parsed = Question::parse(&aaaa).expect("question");
        assert_eq!(
            &answer(&aaaa, &parsed, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))))[6..8],
            &[0, 0]
        );
        assert!(Question::parse(&[0; 5]).is_none());
    }

    #[test]
    fn an_aaaa_question_gets_the_ipv6_address() {
        let aaaa = query("web", TYPE_AAAA);
        let parsed = Question::parse(&aaaa).expect("question");
        let ip: Ipv6Addr = "fd42:b0e7:1::2".parse().expect("address");
        let a = answer(&aaaa, &parsed, Some(IpAddr::V6(ip)));
        assert_eq!(&a[6..8], &[0, 1]);
        assert_eq!(&a[a.len() - 18..a.len() - 16], &[0, 16]);
        assert_eq!(&a[a.len() - 16..], &ip.octets());
        // An A question is not answered with an IPv6 address.
        let q = query("web", TYPE_A);
        let parsed = Question::parse(&q).expect("question");
        assert_eq!(&answer(&q, &parsed, Some(IpAddr::V6(ip)))[6..8], &[0, 0]);
    }

    #[test]
    fn a_udp_answer_larger_than_the_client_takes_is_cut_with_tc() {
        let plain = query("big", TYPE_A);
        let q = Question::parse(&plain).expect("question");
        assert_eq!(udp_limit(&plain, &q), 512);
        // The same with an EDNS0 record offering 1232 bytes.
        let mut edns = plain.clone();
        edns[11] = 1;
        edns.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        let eq = Question::parse(&edns).expect("question");
        assert_eq!(udp_limit(&edns, &eq), 1232);
        let mut reply = answer(&plain, &q, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
        let record = reply[q.end..].to_vec();
        while reply.len() <= 600 {
            reply.extend_from_slice(&record);
        }
        let count = ((reply.len() - q.end) / record.len()) as u16;
        reply[6..8].copy_from_slice(&count.to_be_bytes());
        let whole = fit(reply.clone(), &edns, &eq, 1232);
        assert_eq!(whole, reply);
        let cut = fit(reply, &plain, &q, 512);
        assert_eq!(cut.len(), q.end);
        assert_eq!(cut[2] & 0x02, 0x02, "TC");
        assert_eq!(&cut[..2], &[0x12, 0x34]);
        assert_eq!(&cut[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&cut[12..], &plain[12..q.end]);
        let formerr = format_error(&plain[..12]).expect("a header");
        assert_eq!(formerr[3] & 0x0f, 1);
    }
}

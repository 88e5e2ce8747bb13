//! The embedded resolver over TCP (RFC 7766), and UDP answers cut with TC when they do not
//! fit. Queries are sent from inside a container's network namespace: its sockets are made
//! by a thread that entered the namespace (a socket stays in the namespace it was made in),
//! and used from the test's thread. Forwarded names go to a DNS server the test runs on a
//! loopback address of the host, given as `--dns`. Each daemon has a bridge and subnets
//! (10.213.6N.0/24) of its own.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{busybox_image, wait_for, Daemon};

const RESOLVER: (Ipv4Addr, u16) = (Ipv4Addr::new(127, 0, 0, 11), 53);

/// A daemon on its own bridge `bt<N>x<pid>` (10.213.N.0/24) with a user-defined network
/// `dnsnet` on `bt<N+1>x<pid>` (10.213.N+1.0/24).
struct DnsDaemon {
    d: Daemon,
    bridges: [String; 2],
    bip: String,
}

impl DnsDaemon {
    fn start(n: u8) -> DnsDaemon {
        let pid = std::process::id() % 100_000;
        let bridges = [format!("bt{n}x{pid}"), format!("bt{}x{pid}", n + 1)];
        let bip = format!("10.213.{n}.1/24");
        let d = Daemon::start_for_containers_with(&["--bridge", &bridges[0], "--bip", &bip]);
        busybox_image(&d);
        let subnet = format!("10.213.{}.0/24", n + 1);
        let opt = format!("com.docker.network.bridge.name={}", bridges[1]);
        d.docker(&[
            "network", "create", "--subnet", &subnet, "-o", &opt, "dnsnet",
        ])
        .ok();
        DnsDaemon { d, bridges, bip }
    }

    /// SIGKILL berthd and start it again on the same data root (containers keep running).
    fn kill_and_restart(&mut self) {
        self.d.kill();
        let (bridge, bip) = (self.bridges[0].clone(), self.bip.clone());
        self.d.spawn(&["--bridge", &bridge, "--bip", &bip]);
    }

    /// A container sleeping on `dnsnet`; its init's pid.
    fn run(&self, name: &str, extra: &[&str]) -> i32 {
        let mut args = vec!["run", "-d", "--name", name, "--network", "dnsnet"];
        args.extend(extra);
        args.extend(["bb:1", "sleep", "600"]);
        self.d.docker(&args).ok();
        self.inspect(name, "{{.State.Pid}}")
            .parse()
            .expect("the container's pid")
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.d.docker(&["inspect", "-f", format, name]);
        out.ok();
        out.stdout.trim().to_string()
    }
}

impl Drop for DnsDaemon {
    fn drop(&mut self) {
        let ids = self.d.docker(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.d.docker(&["rm", "-f", id]);
        }
        let _ = self.d.docker(&["network", "prune", "-f"]);
        for bridge in &self.bridges {
            let _ = Command::new("ip").args(["link", "del", bridge]).output();
            let table = format!("berth-{bridge}");
            let _ = Command::new("nft")
                .args(["delete", "table", "ip", &table])
                .output();
        }
    }
}

/// `make` run by a thread that entered the network namespace of process `pid`.
fn in_netns<T: Send>(pid: i32, make: impl FnOnce() -> T + Send) -> T {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("the namespace");
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            make()
        })
        .join()
        .expect("the thread in the namespace")
    })
}

/// A TCP connection to the resolver from inside the namespace of `pid`.
fn connect_in(pid: i32) -> std::io::Result<TcpStream> {
    let stream = in_netns(pid, || TcpStream::connect(RESOLVER))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(stream)
}

/// A query for the A records of `name`, with an EDNS0 record offering `edns` bytes.
fn query(id: u16, name: &str, edns: Option<u16>) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    if let Some(size) = edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    q
}

/// What a test reads from an answer.
#[derive(Debug, PartialEq)]
struct Reply {
    id: u16,
    truncated: bool,
    rcode: u8,
    addresses: Vec<Ipv4Addr>,
}

/// Where the name at `at` ends.
fn skip_name(msg: &[u8], mut at: usize) -> usize {
    loop {
        match msg[at] {
            0 => return at + 1,
            len if len & 0xc0 == 0xc0 => return at + 2,
            len => at += 1 + len as usize,
        }
    }
}

fn parse(msg: &[u8]) -> Reply {
    assert!(msg.len() >= 12, "a short answer: {msg:?}");
    let count = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]) as usize;
    let mut at = 12;
    for _ in 0..count(4) {
        at = skip_name(msg, at) + 4;
    }
    let mut addresses = Vec::new();
    for _ in 0..count(6) {
        at = skip_name(msg, at);
        let rdlen = u16::from_be_bytes([msg[at + 8], msg[at + 9]]) as usize;
        if msg[at..at + 2] == [0, 1] && rdlen == 4 {
            addresses.push(Ipv4Addr::new(
                msg[at + 10],
                msg[at + 11],
                msg[at + 12],
                msg[at + 13],
            ));
        }
        at += 10 + rdlen;
    }
    Reply {
        id: u16::from_be_bytes([msg[0], msg[1]]),
        truncated: msg[2] & 0x02 != 0,
        rcode: msg[3] & 0x0f,
        addresses,
    }
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

fn read_framed(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut message)?;
    Ok(message)
}

/// One query over a new TCP connection from the namespace of `pid`.
fn ask_tcp(pid: i32, message: &[u8]) -> Reply {
    let mut stream = connect_in(pid).expect("a TCP connection to 127.0.0.11:53");
    stream.write_all(&framed(message)).expect("send");
    parse(&read_framed(&mut stream).expect("an answer over TCP"))
}

/// One query over UDP from the namespace of `pid`; the answer's bytes.
fn ask_udp(pid: i32, message: &[u8]) -> Vec<u8> {
    let sock = in_netns(pid, || UdpSocket::bind("127.0.0.1:0")).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    sock.send_to(message, RESOLVER).expect("send");
    let mut buf = vec![0u8; 65535];
    let len = sock.recv(&mut buf).expect("an answer over UDP");
    buf.truncate(len);
    buf
}

/// The connection was closed by the resolver: no answer comes.
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn tcp_queries_are_answered_several_on_a_connection_bounded_and_gone_with_the_container() {
    let n = DnsDaemon::start(60);
    n.run("target", &["--network-alias", "tgt"]);
    let ip: Ipv4Addr = n
        .inspect(
            "target",
            "{{(index .NetworkSettings.Networks \"dnsnet\").IPAddress}}",
        )
        .parse()
        .expect("the target's address");
    let client = n.run("client", &[]);

    // Another container's name over TCP, as over UDP.
    let reply = ask_tcp(client, &query(7, "target", None));
    assert_eq!(
        reply,
        Reply {
            id: 7,
            truncated: false,
            rcode: 0,
            addresses: vec![ip]
        }
    );
    assert_eq!(
        parse(&ask_udp(client, &query(8, "target", None))).addresses,
        vec![ip]
    );

    // Two queries on one connection, sent in one write, then a third after the answers.
    let mut stream = connect_in(client).expect("connect");
    let mut both = framed(&query(1, "target", None));
    both.extend(framed(&query(2, "TGT", None)));
    stream.write_all(&both).expect("send");
    let mut answers: Vec<Reply> = (0..2)
        .map(|_| parse(&read_framed(&mut stream).expect("an answer")))
        .collect();
    answers.sort_by_key(|r| r.id);
    assert_eq!(answers.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2]);
    assert!(
        answers.iter().all(|r| r.addresses == vec![ip]),
        "{answers:?}"
    );
    stream
        .write_all(&framed(&query(3, "target", None)))
        .expect("send");
    assert_eq!(parse(&read_framed(&mut stream).expect("an answer")).id, 3);
    drop(stream);

    // At most 32 connections from one container: the next is closed unanswered, and a
    // slot freed is taken again.
    let mut kept: Vec<TcpStream> = (0..32)
        .map(|i| {
            let mut s = connect_in(client).expect("connect");
            s.write_all(&framed(&query(100 + i, "target", None)))
                .expect("send");
            assert_eq!(parse(&read_framed(&mut s).expect("an answer")).id, 100 + i);
            s
        })
        .collect();
    let mut extra = connect_in(client).expect("connect");
    let _ = extra.write_all(&framed(&query(200, "target", None)));
    assert!(closed(&mut extra), "a 33rd connection was served");
    kept.remove(0);
    assert!(wait_for(|| {
        let Ok(mut s) = connect_in(client) else {
            return false;
        };
        s.write_all(&framed(&query(201, "target", None))).is_ok()
            && read_framed(&mut s).is_ok_and(|a| parse(&a).id == 201)
    }));

    // An idle connection is closed by the resolver.
    assert!(closed(&mut kept[0]), "an idle connection stayed open");
    drop(kept);

    // The sockets go with the container's last user-defined network, and its connections.
    let mut open = connect_in(client).expect("connect");
    open.write_all(&framed(&query(300, "target", None)))
        .expect("send");
    assert_eq!(parse(&read_framed(&mut open).expect("an answer")).id, 300);
    n.d.docker(&["network", "disconnect", "dnsnet", "client"])
        .ok();
    assert!(
        closed(&mut open),
        "a connection outlived the resolver's sockets"
    );
    let refused = connect_in(client).map(drop);
    assert_eq!(
        refused.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionRefused)
    );
}

/// A DNS server on a loopback address of the host (UDP and TCP, port 53): `small.test` has
/// one address, `big.test` 40 (more than 512 bytes, sent whole over UDP too, as a server
/// that ignores the client's size would). It notes each name asked and how.
struct Upstream {
    addr: Ipv4Addr,
    seen: Arc<Mutex<Vec<(String, &'static str)>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn big() -> Vec<Ipv4Addr> {
    (1..=40).map(|i| Ipv4Addr::new(198, 51, 100, i)).collect()
}

/// The server's answer to `query`, and the name asked.
fn upstream_answer(query: &[u8]) -> (Vec<u8>, String) {
    let end = skip_name(query, 12);
    let mut labels = Vec::new();
    let mut at = 12;
    while query[at] != 0 {
        let len = query[at] as usize;
        labels.push(String::from_utf8_lossy(&query[at + 1..at + 1 + len]).into_owned());
        at += 1 + len;
    }
    let name = labels.join(".");
    let addresses = match name.as_str() {
        "small.test" => vec![Ipv4Addr::new(192, 0, 2, 7)],
        "big.test" => big(),
        _ => Vec::new(),
    };
    let mut out = query[..2].to_vec();
    out.extend_from_slice(&[0x81, if addresses.is_empty() { 0x83 } else { 0x80 }]);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..end + 4]);
    for a in addresses {
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend_from_slice(&a.octets());
    }
    (out, name)
}

impl Upstream {
    fn start(addr: Ipv4Addr) -> Upstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let udp = UdpSocket::bind((addr, 53)).expect("bind the upstream's UDP");
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let tcp = TcpListener::bind((addr, 53)).expect("bind the upstream's TCP");
        tcp.set_nonblocking(true).expect("nonblocking");
        let (seen_udp, stop_udp) = (seen.clone(), stop.clone());
        let udp_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop_udp.load(Ordering::Acquire) {
                if let Ok((len, from)) = udp.recv_from(&mut buf) {
                    let (reply, name) = upstream_answer(&buf[..len]);
                    seen_udp.lock().expect("seen").push((name, "udp"));
                    let _ = udp.send_to(&reply, from);
                }
            }
        });
        let (seen_tcp, stop_tcp) = (seen.clone(), stop.clone());
        let tcp_thread = std::thread::spawn(move || {
            while !stop_tcp.load(Ordering::Acquire) {
                let Ok((mut s, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                while let Ok(q) = read_framed(&mut s) {
                    let (reply, name) = upstream_answer(&q);
                    seen_tcp.lock().expect("seen").push((name, "tcp"));
                    if s.write_all(&framed(&reply)).is_err() {
                        break;
                    }
                }
            }
        });
        Upstream {
            addr,
            seen,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    fn asked(&self, name: &str, how: &'static str) -> bool {
        self.seen
            .lock()
            .expect("seen")
            .contains(&(name.to_string(), how))
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn forwarded_names_go_upstream_over_tcp_and_a_large_udp_answer_comes_cut_with_tc() {
    let upstream = Upstream::start(Ipv4Addr::new(127, 213, 62, 1));
    let mut n = DnsDaemon::start(62);
    let dns = upstream.addr.to_string();
    let client = n.run("client", &["--dns", &dns]);

    // Over UDP, the 40 addresses do not fit in 512 bytes: the answer is cut, with TC set.
    let plain = ask_udp(client, &query(11, "big.test", None));
    assert!(plain.len() <= 512, "{} bytes over UDP", plain.len());
    let reply = parse(&plain);
    assert!(reply.truncated, "{reply:?}");
    assert_eq!((reply.id, reply.addresses.len()), (11, 0));
    // With EDNS0 room for them, they come whole.
    let reply = parse(&ask_udp(client, &query(12, "big.test", Some(4096))));
    assert_eq!((reply.id, reply.truncated), (12, false));
    assert_eq!(reply.addresses, big());
    assert!(upstream.asked("big.test", "udp"));

    // Over TCP they come whole, asked upstream over TCP.
    let reply = ask_tcp(client, &query(13, "big.test", None));
    assert_eq!((reply.id, reply.truncated), (13, false));
    assert_eq!(reply.addresses, big());
    assert!(upstream.asked("big.test", "tcp"));
    let reply = ask_tcp(client, &query(14, "small.test", None));
    assert_eq!(reply.addresses, vec![Ipv4Addr::new(192, 0, 2, 7)]);
    assert!(upstream.asked("small.test", "tcp"));
    // A name the upstream does not know: its NXDOMAIN, passed on.
    assert_eq!(ask_tcp(client, &query(15, "nowhere.test", None)).rcode, 3);

    // A restarted berthd listens again in the running container's namespace.
    let ip: Ipv4Addr = n
        .inspect(
            "client",
            "{{(index .NetworkSettings.Networks \"dnsnet\").IPAddress}}",
        )
        .parse()
        .expect("the client's address");
    n.kill_and_restart();
    assert!(wait_for(|| connect_in(client).is_ok()));
    assert_eq!(
        ask_tcp(client, &query(16, "client", None)).addresses,
        vec![ip]
    );
    let reply = ask_tcp(client, &query(17, "small.test", None));
    assert_eq!(reply.addresses, vec![Ipv4Addr::new(192, 0, 2, 7)]);
}

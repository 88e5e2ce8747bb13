//! The embedded resolver when berthd has no file descriptor left: a pending TCP connection
//! is closed (its client can retry) instead of staying in the listener's queue, which would
//! keep the listener readable and spin the resolver's thread; once descriptors are free
//! again, queries over TCP are answered. Its own process (this file holds one test) and
//! its own network namespace: the descriptor limit is the process's, and the resolver's
//! address, 127.0.0.11:53, is bound in a namespace the test makes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use berth_network::dns::{self, Resolver};
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// A query for `name` (type A), framed for TCP.
fn tcp_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend(q);
    framed
}

/// The highest descriptor open now.
fn highest_descriptor() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[test]
fn a_resolver_out_of_descriptors_closes_connections_and_recovers() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("a network namespace");
    let netns = PathBuf::from(format!("/proc/self/task/{}/ns/net", nix::unistd::gettid()));
    berth_network::loopback_up(&netns).expect("lo up");

    let resolver = Resolver::start().expect("resolver");
    let web = Ipv4Addr::new(10, 9, 8, 7);
    resolver.set_names("net", vec![(vec!["web".into()], web)]);
    resolver
        .add(
            dns::bind_here().expect("bind"),
            vec!["net".into()],
            Vec::new(),
        )
        .expect("add");

    // One descriptor left: the client's socket takes it, the resolver's accept finds none.
    // (The limit bounds descriptor numbers, so the holes below it are filled first.)
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("limit");
    setrlimit(Resource::RLIMIT_NOFILE, highest_descriptor() + 8, hard).expect("lower the limit");
    let mut fillers = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        fillers.push(f);
    }
    fillers.pop();
    let client = TcpStream::connect((dns::ADDRESS, 53)).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let read = (&client).read(&mut buf);
    drop(fillers);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("restore the limit");
    match read {
        Ok(0) => {}
        other => panic!("the pending connection was not closed: {other:?}"),
    }
    drop(client);

    let mut client = TcpStream::connect((dns::ADDRESS, 53)).expect("connect again");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client.write_all(&tcp_query("web")).expect("query");
    let mut len = [0u8; 2];
    client.read_exact(&mut len).expect("answer length");
    let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
    client.read_exact(&mut answer).expect("answer");
    assert!(answer.ends_with(&web.octets()), "{answer:?}");
}

//! IPv6 on bridge networks and published ports that follow the network giving a container
//! its default route. Each daemon runs in a network namespace the test makes (`ip netns`),
//! so that its bridges, nftables tables and forwarding sysctls (IPv6 forwarding would stop
//! the host accepting router advertisements) never touch the host's; its IPv6 subnets are
//! in fd42:b0e7::/32, which no other test uses. Traffic to its published ports is sent
//! from inside that namespace.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{busybox_image, wait_for, Daemon};

/// A daemon in the network namespace `b6<N>x<pid>` (removed with it).
struct NsDaemon {
    d: Daemon,
    ns: String,
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip");
    assert!(st.success(), "ip {args:?}");
}

impl NsDaemon {
    fn start(n: u8, extra: &[&str]) -> NsDaemon {
        let ns = format!("b6{n}x{}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let mut d = Daemon::start_unspawned();
        d.private_mounts = true;
        let mut n = NsDaemon { d, ns };
        n.spawn(extra);
        busybox_image(&n.d);
        n
    }

    /// Start berthd (again) in the namespace: spawned by a thread that entered it (`ip
    /// netns exec` would remount /sys, hiding the cgroup hierarchies containers need).
    fn spawn(&mut self, extra: &[&str]) {
        let ns = std::fs::File::open(format!("/run/netns/{}", self.ns)).expect("the namespace");
        let d = &mut self.d;
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                d.spawn(extra);
            })
            .join()
            .expect("the thread in the namespace")
        })
    }

    /// `docker network create` with bridge `b6n<N>` (the namespace is the daemon's own).
    fn network(&self, name: &str, n: u8, args: &[&str]) {
        let opt = format!("com.docker.network.bridge.name=b6n{n}");
        let mut all = vec!["network", "create", "-o", &opt];
        all.extend(args);
        all.push(name);
        self.d.docker(&all).ok();
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.d.docker(&["inspect", "-f", format, name]);
        out.ok();
        out.stdout.trim().to_string()
    }

    /// A busybox httpd on port 80 (both families) serving `page`.
    fn httpd(&self, name: &str, args: &[&str], page: &str) {
        let script = format!(
            "mkdir -p /www && echo {page} > /www/index.html && httpd -f -p [::]:80 -h /www"
        );
        let mut all = vec!["run", "-d", "--name", name];
        all.extend(args);
        all.extend(["bb:1", "sh", "-c", &script]);
        self.d.docker(&all).ok();
    }

    /// berth's nftables table `table` in the daemon's namespace (empty when absent).
    fn rules(&self, family: &str, table: &str) -> String {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "nft", "list", "table", family, table,
            ])
            .output()
            .expect("nft");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The body of a GET of http://addr/ made from the daemon's namespace (None: no answer).
    fn get(&self, addr: SocketAddr) -> Option<String> {
        let ns = std::fs::File::open(format!("/run/netns/{}", self.ns)).expect("the namespace");
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
                c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
                c.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
                let mut body = String::new();
                c.read_to_string(&mut body).ok()?;
                Some(body)
            })
            .join()
            .expect("the thread in the namespace")
        })
    }

    /// Whether http://addr/ answers `page` (the server may still be starting).
    fn serves(&self, addr: &str, page: &str) -> bool {
        let addr: SocketAddr = addr.parse().expect("address");
        for _ in 0..40 {
            if self.get(addr).is_some_and(|b| b.contains(page)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        let ids = self.d.docker(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.d.docker(&["rm", "-f", id]);
        }
        let _ = self.d.docker(&["network", "prune", "-f"]);
        self.d.kill();
        // Bridges, tables and sysctls go with the namespace.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// dockerd programs a container's published ports on the endpoint that gives its default
/// route (libnetwork's gateway endpoint): they move with the route on connect and
/// disconnect, and survive the container leaving the network it started on.
#[test]
fn published_ports_follow_the_default_route() {
    let n = NsDaemon::start(1, &[]);
    n.network("pa", 1, &["--subnet", "10.66.1.0/24"]);
    n.network("pb", 2, &["--subnet", "10.66.2.0/24"]);
    n.httpd("web", &["--network", "pa", "-p", "8080:80"], "moved");
    assert!(n.serves("127.0.0.1:8080", "moved"));
    assert!(n.rules("ip", "berth-b6n1").contains("dport 8080"));
    // pb takes the default route: the ports go with it.
    n.d.docker(&["network", "connect", "--gw-priority", "10", "pb", "web"])
        .ok();
    let gw_b = n.inspect(
        "web",
        "{{(index .NetworkSettings.Networks \"pb\").Gateway}}",
    );
    assert!(
        wait_for(|| n.rules("ip", "berth-b6n2").contains("dport 8080")),
        "{}",
        n.rules("ip", "berth-b6n2")
    );
    assert!(!n.rules("ip", "berth-b6n1").contains("dport 8080"));
    let route = n.d.docker(&["exec", "web", "ip", "route"]);
    assert!(
        route.stdout.contains(&format!("default via {gw_b}")),
        "{}",
        route.stdout
    );
    assert!(n.serves("127.0.0.1:8080", "moved"));
    // The network it started on goes: the ports stay, on pb.
    n.d.docker(&["network", "disconnect", "pa", "web"]).ok();
    assert!(n.serves("127.0.0.1:8080", "moved"));
    let ps =
        n.d.docker(&["ps", "--format", "{{.Ports}}", "-f", "name=web"]);
    assert!(ps.stdout.contains("0.0.0.0:8080->80/tcp"), "{}", ps.stdout);
    // Back on pa (lower priority): the route and ports stay on pb, till pb goes.
    n.d.docker(&["network", "connect", "pa", "web"]).ok();
    assert!(n.rules("ip", "berth-b6n2").contains("dport 8080"));
    assert!(!n.rules("ip", "berth-b6n1").contains("dport 8080"));
    n.d.docker(&["network", "disconnect", "pb", "web"]).ok();
    assert!(n.rules("ip", "berth-b6n1").contains("dport 8080"));
    assert!(n.serves("127.0.0.1:8080", "moved"));
    let port = n.d.docker(&["port", "web", "80"]);
    assert!(port.stdout.contains("0.0.0.0:8080"), "{}", port.stdout);
}

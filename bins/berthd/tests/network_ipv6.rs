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

use common::{ip, wait_for, NsDaemon};

impl NsDaemon {
    /// `docker network create` with bridge `b6n<N>` (the namespace is the daemon's own).
    fn network(&self, name: &str, n: u8, args: &[&str]) {
        let opt = format!("com.docker.network.bridge.name=b6n{n}");
        let mut all = vec!["network", "create", "-o", &opt];
        all.extend(args);
        all.push(name);
        self.d.docker(&all).ok();
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

/// dockerd programs a container's published ports on the endpoint that gives its default
/// route (libnetwork's gateway endpoint): they move with the route on connect and
/// disconnect, and survive the container leaving the network it started on.
#[test]
fn published_ports_follow_the_default_route() {
    let n = NsDaemon::start("b61", &[]);
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

/// `docker network create --ipv6`: dual stack, a v6 address, route and AAAA for each
/// container, inspect as dockerd shows it, traffic over IPv6 between containers, and the
/// addresses kept by the records across a SIGKILL of berthd.
#[test]
fn an_ipv6_network_gives_containers_addresses_routes_and_names() {
    let mut n = NsDaemon::start("b62", &[]);
    n.network(
        "v6net",
        3,
        &[
            "--ipv6",
            "--subnet",
            "10.66.3.0/24",
            "--subnet",
            "fd42:b0e7:3::/64",
        ],
    );
    let net = n.d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{json .IPAM.Config}}",
        "v6net",
    ]);
    net.ok();
    assert!(net.stdout.starts_with("true "), "{}", net.stdout);
    assert!(
        net.stdout
            .contains(r#"{"Subnet":"fd42:b0e7:3::/64","Gateway":"fd42:b0e7:3::1"}"#),
        "{}",
        net.stdout
    );
    n.httpd("web", &["--network", "v6net"], "over-six");
    assert_eq!(
        n.inspect(
            "web",
            "{{with index .NetworkSettings.Networks \"v6net\"}}{{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}}{{end}}"
        ),
        "fd42:b0e7:3::2/64 fd42:b0e7:3::1"
    );
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "v6net",
        "--ip6",
        "fd42:b0e7:3::99",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    assert_eq!(
        n.inspect(
            "client",
            "{{(index .NetworkSettings.Networks \"v6net\").IPAMConfig.IPv6Address}} {{(index .NetworkSettings.Networks \"v6net\").GlobalIPv6Address}}"
        ),
        "fd42:b0e7:3::99 fd42:b0e7:3::99"
    );
    let exec = |cmd: &str| {
        let out = n.d.docker(&["exec", "client", "sh", "-c", cmd]);
        format!("{}{}", out.stdout, out.stderr)
    };
    let routes = exec("ip -6 route");
    assert!(
        routes.contains("default via fd42:b0e7:3::1 dev eth0"),
        "{routes}"
    );
    assert!(
        exec("cat /etc/hosts").contains("fd42:b0e7:3::99\t"),
        "{}",
        exec("cat /etc/hosts")
    );
    // The embedded resolver answers AAAA with the v6 address, A with the v4 one.
    let aaaa = exec("nslookup -type=AAAA web 127.0.0.11");
    assert!(aaaa.contains("fd42:b0e7:3::2"), "{aaaa}");
    let a = exec("nslookup -type=A web 127.0.0.11");
    assert!(a.contains("10.66.3.2") && !a.contains("fd42"), "{a}");
    // Real traffic over IPv6, to the address the name has.
    let mut page = String::new();
    for _ in 0..20 {
        page = exec("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 fd42:b0e7:3::2 80 2>&1");
        if page.contains("over-six") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(page.contains("over-six"), "{page}");
    let members = n.d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.IPv6Address}} {{end}}",
        "v6net",
    ]);
    assert!(
        members.stdout.contains("fd42:b0e7:3::2/64"),
        "{}",
        members.stdout
    );
    // SIGKILL berthd: the records keep the addresses; none is handed out twice.
    n.d.kill();
    n.spawn(&[]);
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "third",
        "--network",
        "v6net",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    let third = n.inspect(
        "third",
        "{{(index .NetworkSettings.Networks \"v6net\").GlobalIPv6Address}}",
    );
    assert_eq!(third, "fd42:b0e7:3::3");
    assert_eq!(
        n.inspect(
            "web",
            "{{(index .NetworkSettings.Networks \"v6net\").GlobalIPv6Address}}"
        ),
        "fd42:b0e7:3::2"
    );
    n.d.docker(&["rm", "-f", "third"]).ok();
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "fourth",
        "--network",
        "v6net",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    assert_eq!(
        n.inspect(
            "fourth",
            "{{(index .NetworkSettings.Networks \"v6net\").GlobalIPv6Address}}"
        ),
        "fd42:b0e7:3::3"
    );
}

/// Bad IPv6 input gets dockerd's answers, and nothing is left half-made.
#[test]
fn bad_ipv6_input_is_refused_and_nothing_is_half_made() {
    let n = NsDaemon::start("b63", &[]);
    // --ipv6 with only an IPv4 subnet: as dockerd 27+, a /64 from the ULA pool derived
    // from the daemon's id.
    n.network("auto6", 4, &["--ipv6", "--subnet", "10.66.4.0/24"]);
    let auto = n.d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        "auto6",
    ]);
    let subnets: Vec<&str> = auto.stdout.split_whitespace().collect();
    assert_eq!(subnets.len(), 2, "{}", auto.stdout);
    assert!(
        subnets[1].starts_with("fd") && subnets[1].ends_with("::/64"),
        "{}",
        auto.stdout
    );
    // A second one takes the next /64.
    n.network("auto6b", 5, &["--ipv6", "--subnet", "10.66.5.0/24"]);
    let next = n.d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        "auto6b",
    ]);
    assert!(!next.stdout.contains(subnets[1]), "{}", next.stdout);
    let count = || n.d.docker(&["network", "ls", "-q"]).stdout.lines().count();
    let before = count();
    n.d.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd42:b0e7:zz::/64",
        "-o",
        "com.docker.network.bridge.name=b6n6",
        "bad1",
    ])
    .failed_with("invalid CIDR address");
    n.d.docker(&[
        "network",
        "create",
        "--subnet",
        "fd42:b0e7:6::/64",
        "-o",
        "com.docker.network.bridge.name=b6n6",
        "bad2",
    ])
    .failed_with("IPv6 is not enabled");
    n.network("v6a", 7, &["--ipv6", "--subnet", "fd42:b0e7:7::/64"]);
    let before_overlap = count();
    n.d.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd42:b0e7:7:0:1::/80",
        "-o",
        "com.docker.network.bridge.name=b6n8",
        "bad3",
    ])
    .failed_with("Pool overlaps");
    assert_eq!(count(), before_overlap);
    assert_eq!(before + 1, before_overlap);
    let links = Command::new("ip")
        .args(["-n", &n.ns, "-o", "link", "show"])
        .output()
        .expect("ip");
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.contains("b6n6") && !links.contains("b6n8"),
        "{links}"
    );
    // --ip6 outside the subnet, or on a network without IPv6: refused, nothing created.
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "out",
        "--network",
        "v6a",
        "--ip6",
        "fd42:b0e7:9::5",
        "bb:1",
        "true",
    ])
    .failed_with("no configured subnet or ip-range contain the IP address fd42:b0e7:9::5");
    n.network("v4only", 9, &["--subnet", "10.66.9.0/24"]);
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "out",
        "--network",
        "v4only",
        "--ip6",
        "fd42:b0e7:9::5",
        "bb:1",
        "true",
    ])
    .failed_with("IPv6 disabled");
    assert_eq!(n.d.docker(&["ps", "-aq"]).stdout.trim(), "");
    // connect --ip6 the same way.
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "cc",
        "--network",
        "v4only",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    n.d.docker(&["network", "connect", "--ip6", "fd42:b0e7:9::5", "v6a", "cc"])
        .failed_with("no configured subnet or ip-range contain the IP address");
    n.d.docker(&["network", "connect", "--ip6", "fd42:b0e7:7::5", "v6a", "cc"])
        .ok();
    assert_eq!(
        n.inspect(
            "cc",
            "{{(index .NetworkSettings.Networks \"v6a\").GlobalIPv6Address}}"
        ),
        "fd42:b0e7:7::5"
    );
}

/// Published ports on an IPv6 network: a port without a host IP is published on 0.0.0.0
/// and [::] with the same host port (as dockerd), an IPv6 host address works through
/// berth's `ip6` table, [::1] (which only a proxy could serve) and an IPv6 host address
/// for a container without IPv6 are clear errors; IPv6 networks do not reach each other.
#[test]
fn ipv6_published_ports_and_isolation() {
    let n = NsDaemon::start("b64", &[]);
    ip(&[
        "-n",
        &n.ns,
        "addr",
        "add",
        "fd42:b0e7:ff::1/128",
        "dev",
        "lo",
    ]);
    n.network(
        "pv6",
        10,
        &[
            "--ipv6",
            "--subnet",
            "10.66.10.0/24",
            "--subnet",
            "fd42:b0e7:10::/64",
        ],
    );
    n.httpd(
        "web",
        &[
            "--network",
            "pv6",
            "-p",
            "8090:80",
            "-p",
            "[fd42:b0e7:ff::1]:8091:80",
        ],
        "six-port",
    );
    assert!(n.serves("[fd42:b0e7:ff::1]:8090", "six-port"));
    assert!(n.serves("127.0.0.1:8090", "six-port"));
    assert!(n.serves("[fd42:b0e7:ff::1]:8091", "six-port"));
    let port = n.d.docker(&["port", "web", "80"]);
    for needle in ["0.0.0.0:8090", "[::]:8090", "[fd42:b0e7:ff::1]:8091"] {
        assert!(port.stdout.contains(needle), "{needle}: {}", port.stdout);
    }
    let rules = n.rules("ip6", "berth-b6n10");
    assert!(rules.contains("dnat to [fd42:b0e7:10::2]:80"), "{rules}");
    assert!(
        rules.contains("ip6 saddr fd42:b0e7:10::/64 oifname != \"b6n10\" masquerade"),
        "{rules}"
    );
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "lo6",
        "--network",
        "pv6",
        "-p",
        "[::1]:8092:80",
        "bb:1",
        "true",
    ])
    .failed_with("IPv6 loopback");
    n.network("only4", 11, &["--subnet", "10.66.11.0/24"]);
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "v4c",
        "--network",
        "only4",
        "-p",
        "[fd42:b0e7:ff::1]:8093:80",
        "bb:1",
        "sleep",
        "300",
    ])
    .failed_with("no IPv6 address");
    let v4c = n.inspect("v4c", "{{.State.Running}}");
    assert_eq!(v4c, "false");
    // Another IPv6 network's container does not reach this one's over IPv6.
    n.network(
        "other6",
        12,
        &[
            "--ipv6",
            "--subnet",
            "10.66.12.0/24",
            "--subnet",
            "fd42:b0e7:12::/64",
        ],
    );
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "other6",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    let out = n.d.docker(&[
        "exec",
        "peer",
        "sh",
        "-c",
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 fd42:b0e7:10::2 80 2>&1; true",
    ]);
    assert!(!out.stdout.contains("six-port"), "{}", out.stdout);
    n.d.docker(&["rm", "-f", "web"]).ok();
    assert!(!n.rules("ip6", "berth-b6n10").contains("dnat to"));
}

/// The daemon options `ipv6` and `fixed-cidr-v6` (dockerd's names): containers on the
/// default bridge get an IPv6 address from that subnet, bridge's inspect shows it.
#[test]
fn the_default_bridge_with_ipv6_and_fixed_cidr_v6() {
    let n = NsDaemon::start("b65", &["--ipv6", "--fixed-cidr-v6", "fd42:b0e7:20::/64"]);
    n.d.docker(&["run", "-d", "--name", "one", "bb:1", "sleep", "300"])
        .ok();
    assert_eq!(
        n.inspect("one", "{{.NetworkSettings.GlobalIPv6Address}}/{{.NetworkSettings.GlobalIPv6PrefixLen}} {{.NetworkSettings.IPv6Gateway}}"),
        "fd42:b0e7:20::2/64 fd42:b0e7:20::1"
    );
    let net = n.d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{json .IPAM.Config}}",
        "bridge",
    ]);
    assert!(net.stdout.starts_with("true "), "{}", net.stdout);
    assert!(
        net.stdout
            .contains(r#"{"Subnet":"fd42:b0e7:20::/64","Gateway":"fd42:b0e7:20::1"}"#),
        "{}",
        net.stdout
    );
    let routes = n.d.docker(&["exec", "one", "ip", "-6", "route"]);
    assert!(
        routes.stdout.contains("default via fd42:b0e7:20::1"),
        "{}",
        routes.stdout
    );
    // --ip6 is for user-defined networks only, as dockerd says.
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "two",
        "--ip6",
        "fd42:b0e7:20::9",
        "bb:1",
        "true",
    ])
    .failed_with("user defined networks only");
}

/// The IPv6 default route goes through the first of a container's networks with IPv6 in
/// dockerd's order, apart from the IPv4 one (libnetwork's separate IPv4 and IPv6 gateway
/// endpoints): at start, on connect and on disconnect.
#[test]
fn the_ipv6_default_route_follows_the_first_ipv6_network() {
    let n = NsDaemon::start("b66", &[]);
    n.network("four", 30, &["--subnet", "10.66.30.0/24"]);
    n.network(
        "six",
        31,
        &[
            "--ipv6",
            "--subnet",
            "10.66.31.0/24",
            "--subnet",
            "fd42:b0e7:31::/64",
        ],
    );
    let routes = |name: &str| {
        let out = n.d.docker(&["exec", name, "ip", "-6", "route"]);
        out.stdout
    };
    // Started on both, the IPv4-only one first in dockerd's order (by name).
    n.d.docker(&[
        "create",
        "--name",
        "both",
        "--network",
        "four",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    n.d.docker(&["network", "connect", "six", "both"]).ok();
    n.d.docker(&["start", "both"]).ok();
    assert!(
        routes("both").contains("default via fd42:b0e7:31::1 dev eth1"),
        "{}",
        routes("both")
    );
    let v4 = n.d.docker(&["exec", "both", "ip", "route"]);
    assert!(
        v4.stdout.contains("default via 10.66.30.1 dev eth0"),
        "{}",
        v4.stdout
    );
    // Connected while it runs: an IPv4-only container gains the IPv6 route.
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "four",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    assert!(!routes("late").contains("default"), "{}", routes("late"));
    n.d.docker(&["network", "connect", "six", "late"]).ok();
    assert!(
        routes("late").contains("default via fd42:b0e7:31::1 dev eth1"),
        "{}",
        routes("late")
    );
}

/// IPv6 published ports across a SIGKILL of berthd: a container that lives on keeps its
/// ports on IPv6 (and IPv4) after the restart; the rules of one that died meanwhile go.
#[test]
fn ipv6_ports_survive_a_restart_and_a_dead_containers_go() {
    let mut n = NsDaemon::start("b67", &[]);
    ip(&[
        "-n",
        &n.ns,
        "addr",
        "add",
        "fd42:b0e7:ff::7/128",
        "dev",
        "lo",
    ]);
    n.network(
        "rv6",
        40,
        &[
            "--ipv6",
            "--subnet",
            "10.66.40.0/24",
            "--subnet",
            "fd42:b0e7:40::/64",
        ],
    );
    n.httpd("keep", &["--network", "rv6", "-p", "8100:80"], "kept");
    n.httpd("dies", &["--network", "rv6", "-p", "8101:80"], "gone");
    assert!(n.serves("[fd42:b0e7:ff::7]:8100", "kept"));
    assert!(n.serves("[fd42:b0e7:ff::7]:8101", "gone"));
    let pid: i32 = n.inspect("dies", "{{.State.Pid}}").parse().expect("pid");
    n.d.kill();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the container's init");
    n.spawn(&[]);
    assert!(n.serves("[fd42:b0e7:ff::7]:8100", "kept"));
    assert!(n.serves("127.0.0.1:8100", "kept"));
    assert!(
        wait_for(|| !n.rules("ip6", "berth-b6n40").contains("dport 8101")),
        "{}",
        n.rules("ip6", "berth-b6n40")
    );
    assert!(n.rules("ip6", "berth-b6n40").contains("dport 8100"));
    assert_eq!(n.inspect("dies", "{{.State.Running}}"), "false");
}

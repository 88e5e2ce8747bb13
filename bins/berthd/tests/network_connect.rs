//! A container on several networks: `docker network connect/disconnect` of running and
//! stopped containers, a create body naming several networks, with real traffic between
//! containers, names answered on each network, the default route, restarts of berthd, and
//! dockerd's errors. Each daemon has a bridge and subnets of its own (10.213.40.0/24 to
//! 10.213.49.0/24 and 10.213.66.0/24 to 10.213.74.0/24, which no other test file uses),
//! removed when the test ends.

mod common;

use std::process::Command;

use common::{busybox_image, wait_for, Daemon};

/// A daemon on its own bridge `bc<N>x<pid>` with address `bip`.
struct NetDaemon {
    d: Daemon,
    bridge: String,
    bip: String,
}

impl NetDaemon {
    fn start(n: u8, bip: &str) -> NetDaemon {
        let bridge = format!("bc{n}x{}", std::process::id() % 100_000);
        let d = Daemon::start_for_containers_with(&["--bridge", &bridge, "--bip", bip]);
        busybox_image(&d);
        NetDaemon {
            d,
            bridge,
            bip: bip.to_string(),
        }
    }

    /// SIGKILL berthd and start it again with the same settings.
    fn kill_and_restart(&mut self) {
        self.d.kill();
        let (bridge, bip) = (self.bridge.clone(), self.bip.clone());
        self.d.spawn(&["--bridge", &bridge, "--bip", &bip]);
    }

    /// `docker network create` with bridge `bc<N>x<pid>` and `subnet`.
    fn network(&self, name: &str, n: u8, subnet: &str) {
        let opt = format!(
            "com.docker.network.bridge.name=bc{n}x{}",
            std::process::id() % 100_000
        );
        self.d
            .docker(&["network", "create", "--subnet", subnet, "-o", &opt, name])
            .ok();
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.d.docker(&["inspect", "-f", format, name]);
        out.ok();
        out.stdout.trim().to_string()
    }

    /// The container's address on `network`.
    fn ip_on(&self, name: &str, network: &str) -> String {
        self.inspect(
            name,
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        )
    }

    /// A busybox httpd on port 80 serving `page`, on `network`.
    fn httpd(&self, name: &str, network: &str, page: &str) {
        let script =
            format!("mkdir -p /www && echo {page} > /www/index.html && httpd -f -p 80 -h /www");
        self.d
            .docker(&[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                network,
                "bb:1",
                "sh",
                "-c",
                &script,
            ])
            .ok();
    }

    /// A GET of http://host/ from inside container `from`, with busybox nc (its wget, static,
    /// cannot resolve names); its error when it fails.
    fn get(&self, from: &str, host: &str) -> String {
        let out = self.d.docker(&[
            "exec",
            from,
            "sh",
            "-c",
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 80 2>&1 || true"),
        ]);
        format!("{}{}", out.stdout, out.stderr)
    }

    /// Whether `from` gets `page` from http://host/ (the server may still be starting).
    fn reaches(&self, from: &str, host: &str, page: &str) -> bool {
        for _ in 0..20 {
            if self.get(from, host).contains(page) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        eprintln!("{from} -> {host}: {}", self.get(from, host));
        false
    }

    fn exec(&self, name: &str, cmd: &str) -> String {
        let out = self.d.docker(&["exec", name, "sh", "-c", cmd]);
        format!("{}{}", out.stdout, out.stderr)
    }

    /// The host ends of veths on bridge `bc<N>x<pid>`.
    fn veths(&self, n: u8) -> Vec<String> {
        let bridge = format!("bc{n}x{}", std::process::id() % 100_000);
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &bridge])
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }
}

impl Drop for NetDaemon {
    fn drop(&mut self) {
        let ids = self.d.docker(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.d.docker(&["rm", "-f", id]);
        }
        // User-defined networks: their bridges and tables go with them.
        let _ = self.d.docker(&["network", "prune", "-f"]);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &format!("berth-{}", self.bridge)])
            .output();
    }
}

/// The names of network events of `container` on `network`, in order.
fn network_events(n: &NetDaemon, network: &str, container: &str) -> Vec<String> {
    n.d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        &format!("network={network}"),
        "--format",
        "{{.Action}} {{.Actor.Attributes.container}}",
    ])
    .stdout
    .lines()
    .filter(|l| l.ends_with(container))
    .map(|l| l.split(' ').next().unwrap_or_default().to_string())
    .collect()
}

#[test]
fn a_running_container_joins_and_leaves_a_second_network() {
    let n = NetDaemon::start(40, "10.213.40.1/24");
    n.network("net-a", 41, "10.213.41.0/24");
    n.network("net-b", 42, "10.213.42.0/24");
    n.httpd("web-a", "net-a", "on-a");
    n.httpd("web-b", "net-b", "on-b");
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "net-a",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    let web_b = n.ip_on("web-b", "net-b");
    assert!(n.reaches("client", "web-a", "on-a"));
    // Not on net-b yet: neither its names nor its addresses.
    assert!(!n.get("client", "web-b").contains("on-b"));
    assert!(!n.get("client", &web_b).contains("on-b"));

    n.d.docker(&["network", "connect", "--alias", "cli-b", "net-b", "client"])
        .ok();
    let client_id = n.inspect("client", "{{.Id}}");
    // Both networks reached, by name and by address, and ping.
    assert!(n.reaches("client", "web-b", "on-b"));
    assert!(n.reaches("client", &web_b, "on-b"));
    assert!(n.reaches("client", "web-a", "on-a"));
    assert!(n
        .exec("client", &format!("ping -c 1 -W 3 {web_b}"))
        .contains("1 packets received"));
    let on_a = n.ip_on("client", "net-a");
    let on_b = n.ip_on("client", "net-b");
    assert!(on_a.starts_with("10.213.41."), "{on_a}");
    assert!(on_b.starts_with("10.213.42."), "{on_b}");
    // An interface per network; the default route stays through net-a's gateway (the
    // first of the two in dockerd's order).
    let addrs = n.exec("client", "ip -o -4 addr");
    assert!(
        addrs.contains(&format!("eth0    inet {on_a}/24"))
            || addrs.contains(&format!("eth0 inet {on_a}/24")),
        "{addrs}"
    );
    assert!(
        addrs.contains(&format!("inet {on_b}/24")) && addrs.contains("eth1"),
        "{addrs}"
    );
    let routes = n.exec("client", "ip route");
    assert!(
        routes.contains("default via 10.213.41.1 dev eth0"),
        "{routes}"
    );
    // The other members of net-b know it by its name and its alias there.
    for name in ["client", "cli-b"] {
        let looked = n.exec("web-b", &format!("nslookup {name}"));
        assert!(looked.contains(&on_b), "{name}: {looked}");
    }
    // /etc/hosts has both addresses, inspect and network inspect list both.
    let hosts = n.exec("client", "cat /etc/hosts");
    assert!(hosts.contains(&on_a) && hosts.contains(&on_b), "{hosts}");
    let nets = n.inspect(
        "client",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
    );
    assert_eq!(nets, format!("net-a={on_a} net-b={on_b}"));
    let names = n.inspect(
        "client",
        "{{join (index .NetworkSettings.Networks \"net-b\").DNSNames \",\"}}",
    );
    assert_eq!(names, format!("client,cli-b,{}", &client_id[..12]));
    let members = n.d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
        "net-b",
    ]);
    assert!(
        members.stdout.contains(&format!("client={on_b}/24")),
        "{}",
        members.stdout
    );
    assert_eq!(n.veths(42).len(), 2, "web-b's and client's");
    let ps =
        n.d.docker(&["ps", "--filter", "name=client", "--format", "{{.Networks}}"]);
    // The docker CLI walks a Go map: the order of the names is not fixed.
    let mut shown: Vec<&str> = ps.stdout.trim().split(',').collect();
    shown.sort_unstable();
    assert_eq!(shown, ["net-a", "net-b"]);

    n.d.docker(&["network", "disconnect", "net-b", "client"])
        .ok();
    // Cut off net-b again; net-a still works; the interface and veth are gone.
    assert!(!n.get("client", "web-b").contains("on-b"));
    assert!(!n.get("client", &web_b).contains("on-b"));
    assert!(n.reaches("client", "web-a", "on-a"));
    assert!(!n.exec("client", "ip -o link").contains("eth1"));
    assert!(wait_for(|| n.veths(42).len() == 1), "{:?}", n.veths(42));
    assert!(!n.exec("web-b", "nslookup cli-b").contains(&on_b));
    assert_eq!(
        n.inspect("client", "{{len .NetworkSettings.Networks}}"),
        "1"
    );
    let hosts = n.exec("client", "cat /etc/hosts");
    assert!(!hosts.contains(&on_b), "{hosts}");
    // Its address on net-b is free again.
    n.d.docker(&[
        "run",
        "--rm",
        "--network",
        "net-b",
        "--ip",
        &on_b,
        "bb:1",
        "true",
    ])
    .ok();
    assert!(
        wait_for(|| network_events(&n, "net-b", &client_id) == ["connect", "disconnect"]),
        "{:?}",
        network_events(&n, "net-b", &client_id)
    );

    // Leaving the network that gives the default route moves it to the next one.
    n.d.docker(&["network", "connect", "net-b", "client"]).ok();
    n.d.docker(&["network", "disconnect", "net-a", "client"])
        .ok();
    let routes = n.exec("client", "ip route");
    assert!(
        routes.contains("default via 10.213.42.1 dev eth1"),
        "{routes}"
    );
    assert!(n.reaches("client", "web-b", "on-b"));
    assert!(!n.get("client", "web-a").contains("on-a"));
    // A gateway priority outranks the name order: back on net-a with a priority below
    // net-b's, the default route stays through net-b.
    n.d.docker(&[
        "network",
        "connect",
        "--gw-priority",
        "-1",
        "net-a",
        "client",
    ])
    .ok();
    let routes = n.exec("client", "ip route");
    assert!(
        routes.contains("default via 10.213.42.1 dev eth1"),
        "{routes}"
    );
    assert_eq!(
        n.inspect(
            "client",
            "{{(index .NetworkSettings.Networks \"net-a\").GwPriority}}"
        ),
        "-1"
    );
    assert!(n.reaches("client", "web-a", "on-a"));
}

#[test]
fn several_networks_at_create_and_on_a_stopped_container() {
    let n = NetDaemon::start(43, "10.213.43.1/24");
    n.network("net-d", 44, "10.213.44.0/24");
    n.network("net-c", 45, "10.213.45.0/24");
    n.httpd("web-d", "net-d", "on-d");
    n.httpd("web-c", "net-c", "on-c");
    // The docker CLI sends both in the create body's EndpointsConfig (API >= 1.44). The
    // default route goes through net-c's gateway: dockerd orders networks by name.
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "multi",
        "--network",
        "net-d",
        "--network",
        "net-c",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    assert!(n.reaches("multi", "web-d", "on-d"));
    assert!(n.reaches("multi", "web-c", "on-c"));
    let routes = n.exec("multi", "ip route");
    assert!(
        routes.contains("default via 10.213.45.1 dev eth1"),
        "{routes}"
    );
    assert!(n.ip_on("multi", "net-d").starts_with("10.213.44."));
    assert!(n.ip_on("multi", "net-c").starts_with("10.213.45."));
    // Each network's members resolve it to its address there.
    let on_c = n.ip_on("multi", "net-c");
    assert!(n.exec("web-c", "nslookup multi").contains(&on_c));

    // A stopped container connected with --alias and --ip gets them at its start.
    n.d.docker(&[
        "create",
        "--name",
        "st",
        "--network",
        "net-d",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    n.d.docker(&[
        "network",
        "connect",
        "--alias",
        "st-alias",
        "--ip",
        "10.213.45.50",
        "net-c",
        "st",
    ])
    .ok();
    assert_eq!(
        n.inspect(
            "st",
            "{{(index .NetworkSettings.Networks \"net-c\").IPAMConfig.IPv4Address}}"
        ),
        "10.213.45.50"
    );
    n.d.docker(&["start", "st"]).ok();
    assert_eq!(n.ip_on("st", "net-c"), "10.213.45.50");
    assert!(n
        .exec("web-c", "nslookup st-alias")
        .contains("10.213.45.50"));
    assert!(n.reaches("st", "web-c", "on-c"));
    assert!(n.reaches("st", "web-d", "on-d"));
    // Disconnected while stopped: it starts on net-d only.
    n.d.docker(&["stop", "-t", "0", "st"]).ok();
    n.d.docker(&["network", "disconnect", "net-c", "st"]).ok();
    n.d.docker(&["start", "st"]).ok();
    assert_eq!(n.inspect("st", "{{len .NetworkSettings.Networks}}"), "1");
    assert!(!n.get("st", "web-c").contains("on-c"));
    assert!(n.reaches("st", "web-d", "on-d"));
    // A container on the default bridge (no names there) connected to net-c asks the
    // embedded resolver from then on, and keeps its default route through the bridge.
    n.d.docker(&["run", "-d", "--name", "onbridge", "bb:1", "sleep", "300"])
        .ok();
    assert!(!n
        .exec("onbridge", "cat /etc/resolv.conf")
        .contains("127.0.0.11"));
    n.d.docker(&["network", "connect", "net-c", "onbridge"])
        .ok();
    assert!(n
        .exec("onbridge", "cat /etc/resolv.conf")
        .contains("nameserver 127.0.0.11"));
    assert!(n.reaches("onbridge", "web-c", "on-c"));
    let routes = n.exec("onbridge", "ip route");
    assert!(
        routes.contains("default via 10.213.43.1 dev eth0"),
        "{routes}"
    );
    // All endpoints go at exit: no veth of multi or st stays on either bridge; each
    // network told of the start and the exit, as dockerd tells them.
    let multi = n.inspect("multi", "{{.Id}}");
    n.d.docker(&["rm", "-f", "multi", "st", "onbridge"]).ok();
    assert!(wait_for(|| n.veths(44).len() == 1 && n.veths(45).len() == 1));
    for net in ["net-c", "net-d"] {
        assert!(
            wait_for(|| network_events(&n, net, &multi) == ["connect", "disconnect"]),
            "{net}: {:?}",
            network_events(&n, net, &multi)
        );
    }
}

#[test]
fn endpoints_and_addresses_survive_a_restart_of_berthd() {
    let mut n = NetDaemon::start(46, "10.213.46.1/24");
    n.network("net-e", 47, "10.213.47.0/24");
    n.network("net-f", 48, "10.213.48.0/24");
    n.httpd("web-f", "net-f", "on-f");
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "cee",
        "--network",
        "net-e",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    n.d.docker(&["network", "connect", "--alias", "c-f", "net-f", "cee"])
        .ok();
    let (on_e, on_f) = (n.ip_on("cee", "net-e"), n.ip_on("cee", "net-f"));
    n.kill_and_restart();
    assert_eq!(n.ip_on("cee", "net-e"), on_e);
    assert_eq!(n.ip_on("cee", "net-f"), on_f);
    assert!(n.reaches("cee", "web-f", "on-f"));
    assert!(n.exec("web-f", "nslookup c-f").contains(&on_f));
    // The addresses stay taken: a new container on net-f gets another one.
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "dee",
        "--network",
        "net-f",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    assert_ne!(n.ip_on("dee", "net-f"), on_f);
    n.d.docker(&[
        "run",
        "--rm",
        "--network",
        "net-f",
        "--ip",
        &on_f,
        "bb:1",
        "true",
    ])
    .failed_with("Address already in use");
    // Disconnect after the restart works as before it.
    n.d.docker(&["network", "disconnect", "net-f", "cee"]).ok();
    assert!(!n.get("cee", "web-f").contains("on-f"));
    assert!(wait_for(|| n.veths(48).len() == 2), "{:?}", n.veths(48));
    // A graceful stop and start: the container ended, its endpoints are released.
    n.d.docker(&["network", "connect", "net-f", "cee"]).ok();
    n.d.docker(&["stop", "-t", "0", "cee"]).ok();
    assert!(wait_for(|| n.veths(48).len() == 2 && n.veths(47).is_empty()));
    n.d.docker(&["start", "cee"]).ok();
    assert!(n.reaches("cee", "web-f", "on-f"));
}

#[test]
fn connect_and_disconnect_refuse_as_dockerd_does() {
    // One /24 for this test: the default bridge on its first quarter, networks on the rest.
    let n = NetDaemon::start(49, "10.213.49.1/26");
    n.network("net-g", 50, "10.213.49.128/25");
    n.network("net-h", 51, "10.213.49.64/26");
    // A network removed while a stopped container is on it: left with -f only.
    n.d.docker(&[
        "create",
        "--name",
        "orphan",
        "--network",
        "net-g",
        "bb:1",
        "true",
    ])
    .ok();
    n.d.docker(&["network", "connect", "net-h", "orphan"]).ok();
    n.d.docker(&["network", "rm", "net-h"]).ok();
    n.d.docker(&["network", "disconnect", "net-h", "orphan"])
        .failed_with("network net-h not found");
    n.d.docker(&["network", "disconnect", "-f", "net-h", "orphan"])
        .ok();
    assert_eq!(
        n.inspect(
            "orphan",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"
        ),
        "net-g"
    );
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "gee",
        "--network",
        "net-g",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    n.d.docker(&[
        "create",
        "--name",
        "stopped",
        "--network",
        "net-g",
        "bb:1",
        "true",
    ])
    .ok();
    let id = n.inspect("gee", "{{.Id}}");
    for c in ["gee", "stopped"] {
        n.d.docker(&["network", "connect", "net-g", c])
            .failed_with(&format!(
                "endpoint with name {c} already exists in network net-g"
            ));
    }
    let (status, body) = n.d.http(
        "POST",
        "/networks/net-g/connect",
        br#"{"Container": "gee"}"#,
    );
    assert_eq!(status, 403, "{body}");
    n.d.docker(&["network", "connect", "host", "gee"])
        .failed_with(
            "container cannot be disconnected from host network or connected to host network",
        );
    n.d.docker(&["network", "connect", "none", "gee"]).failed_with(
        "container cannot be connected to multiple networks with one of the networks in private (none) mode",
    );
    n.d.docker(&["network", "disconnect", "bridge", "gee"])
        .failed_with(&format!(
            "container {id} is not connected to network bridge"
        ));
    n.d.docker(&["network", "connect", "--ip", "10.213.49.5", "bridge", "gee"])
        .failed_with("user specified IP address is supported on user defined networks only");
    n.d.docker(&["network", "disconnect", "net-g", "gee"]).ok();
    n.d.docker(&["network", "connect", "--ip", "10.213.48.7", "net-g", "gee"])
        .failed_with("no configured subnet or ip-range contain the IP address 10.213.48.7");
    n.d.docker(&["network", "connect", "nosuch", "gee"])
        .failed_with("network nosuch not found");
    n.d.docker(&[
        "network",
        "connect",
        "--ip",
        "10.213.49.200",
        "net-g",
        "gee",
    ])
    .ok();
    assert_eq!(n.ip_on("gee", "net-g"), "10.213.49.200");
    n.d.docker(&["network", "rm", "net-g"])
        .failed_with("has active endpoints");
    // A container on the host's network joins no other.
    n.d.docker(&[
        "create",
        "--name",
        "hh",
        "--network",
        "host",
        "bb:1",
        "true",
    ])
    .ok();
    n.d.docker(&["network", "connect", "net-g", "hh"]).failed_with(
        "container sharing network namespace with another container or host cannot be connected to any other network",
    );
    // A create body naming host beside a bridge network.
    let (status, body) = n.d.http(
        "POST",
        "/containers/create",
        br#"{"Image": "bb:1", "HostConfig": {"NetworkMode": "net-g"}, "NetworkingConfig": {"EndpointsConfig": {"net-g": {}, "host": {}}}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("host network"), "{body}");
    // --ip outside the subnet at create.
    n.d.docker(&[
        "create",
        "--network",
        "net-g",
        "--ip",
        "10.213.40.9",
        "bb:1",
        "true",
    ])
    .failed_with("no configured subnet or ip-range contain the IP address 10.213.40.9");
}

/// A connect body's EndpointConfig.MacAddress (the SDKs and compose send it): the interface
/// has it, for a running container at once and for one that does not run at its start.
#[test]
fn a_connect_body_gives_the_endpoint_its_mac_address() {
    let n = NetDaemon::start(66, "10.213.66.1/24");
    n.network("net-m", 67, "10.213.67.0/24");
    n.d.docker(&["run", "-d", "--name", "live", "bb:1", "sleep", "300"])
        .ok();
    n.d.docker(&["create", "--name", "later", "bb:1", "sleep", "300"])
        .ok();
    for (container, mac) in [
        ("live", "92:d0:c6:0a:29:33"),
        ("later", "92-D0-C6-0A-29-34"),
    ] {
        let body = format!(
            r#"{{"Container": "{container}", "EndpointConfig": {{"MacAddress": "{mac}"}}}}"#
        );
        let (status, reply) = n.d.http("POST", "/networks/net-m/connect", body.as_bytes());
        assert_eq!(status, 200, "{reply}");
    }
    n.d.docker(&["start", "later"]).ok();
    for (container, mac) in [
        ("live", "92:d0:c6:0a:29:33"),
        ("later", "92:d0:c6:0a:29:34"),
    ] {
        assert_eq!(
            n.inspect(
                container,
                "{{(index .NetworkSettings.Networks \"net-m\").MacAddress}}"
            ),
            mac
        );
        let macs = n.exec(container, "cat /sys/class/net/eth*/address");
        assert!(macs.lines().any(|l| l == mac), "{container}: {macs}");
    }
    let (status, reply) = n.d.http(
        "POST",
        "/networks/bridge/connect",
        br#"{"Container": "later", "EndpointConfig": {"MacAddress": "92:d0:c6"}}"#,
    );
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("invalid MAC address 92:d0:c6"), "{reply}");
}

/// An endpoint's interface sysctls (API 1.46's `com.docker.network.endpoint.sysctls`
/// driver option, `net.X.Y.IFNAME.Z=V`): set on the interface the container gets on that
/// network, at create and at a connect of a running container; dockerd's errors for the
/// rest.
#[test]
fn an_endpoint_s_sysctls_are_set_on_its_interface() {
    let n = NetDaemon::start(72, "10.213.72.1/24");
    n.network("net-s", 73, "10.213.73.0/24");
    n.network("net-t", 74, "10.213.74.0/24");
    let opt = |sysctls: &str| format!("com.docker.network.endpoint.sysctls={sysctls}");
    let martians = opt("net.ipv4.conf.IFNAME.log_martians=1");
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "tuned",
        "--network",
        &format!("name=net-s,driver-opt={martians}"),
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    let read = |key: &str| n.exec("tuned", &format!("cat /proc/sys/net/ipv4/conf/{key}"));
    assert_eq!(read("eth0/log_martians").trim(), "1");
    assert_eq!(
        n.inspect(
            "tuned",
            "{{json (index .NetworkSettings.Networks \"net-s\").DriverOpts}}"
        ),
        // As given: the docker CLI lowercases a driver option's value.
        r#"{"com.docker.network.endpoint.sysctls":"net.ipv4.conf.ifname.log_martians=1"}"#
    );
    // A second network's interface, at a connect of the running container: only its own.
    // Quoted: the docker CLI splits an unquoted --driver-opt at its commas.
    let two = format!(
        "\"{}\"",
        opt("net.ipv4.conf.IFNAME.accept_local=1,net.ipv4.conf.IFNAME.log_martians=1")
    );
    n.d.docker(&["network", "connect", "--driver-opt", &two, "net-t", "tuned"])
        .ok();
    assert_eq!(read("eth1/accept_local").trim(), "1");
    assert_eq!(read("eth1/log_martians").trim(), "1");
    assert_eq!(read("eth0/accept_local").trim(), "0");
    // Set again at the next start.
    n.d.docker(&["restart", "-t", "0", "tuned"]).ok();
    assert_eq!(read("eth0/log_martians").trim(), "1");
    assert_eq!(read("eth1/accept_local").trim(), "1");

    // A top-level sysctl of eth0 moves to the endpoint, with dockerd's warning (API up to
    // 1.47); from 1.48 on it must come as the endpoint's option.
    n.d.docker(&[
        "create",
        "--network",
        "net-s",
        "--sysctl",
        "net.ipv4.conf.eth0.log_martians=1",
        "bb:1",
    ])
    .failed_with("interface specific sysctl setting \"net.ipv4.conf.eth0.log_martians\" must be supplied using driver option 'com.docker.network.endpoint.sysctls'");
    let body = r#"{"Image": "bb:1", "Cmd": ["sleep", "300"], "HostConfig": {"NetworkMode": "net-s",
        "Sysctls": {"net.ipv4.conf.eth0.log_martians": "1"}}}"#;
    let (status, created) = n.d.http(
        "POST",
        "/v1.47/containers/create?name=legacy",
        body.as_bytes(),
    );
    assert_eq!(status, 201, "{created}");
    assert!(
        created.contains(
            r#"Migrated sysctl \"net.ipv4.conf.eth0.log_martians\" to DriverOpts{\"com.docker.network.endpoint.sysctls\":\"net.ipv4.conf.IFNAME.log_martians=1\"}."#
        ),
        "{created}"
    );
    n.d.docker(&["start", "legacy"]).ok();
    assert_eq!(
        n.exec("legacy", "cat /proc/sys/net/ipv4/conf/eth0/log_martians")
            .trim(),
        "1"
    );
    assert_eq!(n.inspect("legacy", "{{json .HostConfig.Sysctls}}"), "null");
    let body = body.replace("eth0", "eth1");
    let (status, refused) =
        n.d.http("POST", "/v1.47/containers/create", body.as_bytes());
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused.contains(
            "unable to determine network endpoint for sysctl net.ipv4.conf.eth1.log_martians"
        ),
        "{refused}"
    );

    for (driver_opt, error) in [
        (
            opt("net.ipv4.conf.eth0.log_martians=1"),
            "unrecognised network interface sysctl 'net.ipv4.conf.eth0.log_martians=1'",
        ),
        (
            opt("kernel.shm.x.IFNAME.y=1"),
            "unrecognised network interface sysctl",
        ),
        (
            "com.docker.network.endpoint.ifname=foo0".to_string(),
            "\"com.docker.network.endpoint.ifname\" is not supported by berth yet",
        ),
    ] {
        n.d.docker(&[
            "create",
            "--network",
            &format!("name=net-s,driver-opt={driver_opt}"),
            "bb:1",
        ])
        .failed_with(error);
    }
    // A sysctl the kernel does not have fails the start, and nothing is left of it.
    n.d.docker(&[
        "create",
        "--name",
        "unknown",
        "--network",
        &format!(
            "name=net-s,driver-opt={}",
            opt("net.ipv4.conf.IFNAME.no_such=1")
        ),
        "bb:1",
        "true",
    ])
    .ok();
    n.d.docker(&["start", "unknown"])
        .failed_with("/proc/sys/net/ipv4/conf/eth0/no_such is not a sysctl file");
    assert_eq!(n.inspect("unknown", "{{.State.Status}}"), "created");
}

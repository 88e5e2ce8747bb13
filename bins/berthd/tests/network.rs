//! The default bridge network and published ports, with real traffic: from the host
//! (127.0.0.1 and the host's address), from a "remote" client in a network namespace this
//! test makes, and from other containers. Each daemon has a bridge, subnet (10.213.N.0/24)
//! and nftables table of its own, removed when the test ends.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::{busybox_image, wait_for, Daemon};

/// A daemon on its own bridge `bt<N><pid>` with subnet 10.213.N.0/24 (N: one per test).
struct NetDaemon {
    d: Daemon,
    bridge: String,
    n: u8,
}

impl NetDaemon {
    fn start(n: u8) -> NetDaemon {
        let bridge = format!("bt{n}x{}", std::process::id() % 100_000);
        let bip = format!("10.213.{n}.1/24");
        let d = Daemon::start_for_containers_with(&["--bridge", &bridge, "--bip", &bip]);
        busybox_image(&d);
        NetDaemon { d, bridge, n }
    }

    fn table(&self) -> String {
        format!("berth-{}", self.bridge)
    }

    fn gateway(&self) -> String {
        format!("10.213.{}.1", self.n)
    }

    /// The nftables table as `nft` lists it (empty if there is none).
    fn rules(&self) -> String {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &self.table()])
            .output()
            .expect("nft");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Another table's listing (empty if there is none).
    fn rules_of(&self, table: &str) -> String {
        let out = Command::new("nft")
            .args(["list", "table", "ip", table])
            .output()
            .expect("nft");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The host ends of containers' veths on this daemon's bridge (not the spares' ones,
    /// made ahead of time and named by their files: network_pool.rs tests those).
    fn veths(&self) -> Vec<String> {
        let spares: Vec<String> = std::fs::read_dir(self.d.exec_root().join("netns-spares"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| !spares.contains(n))
            .collect()
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.d.docker(&["inspect", "-f", format, name]);
        out.ok();
        out.stdout.trim().to_string()
    }

    /// A busybox httpd serving `page` on `port` inside the container.
    fn httpd(&self, name: &str, publish: &[&str], page: &str) {
        let script =
            format!("mkdir -p /www && echo {page} > /www/index.html && httpd -f -p 80 -h /www");
        let mut args = vec!["run", "-d", "--name", name];
        for p in publish {
            args.push("-p");
            args.push(p);
        }
        args.extend(["bb:1", "sh", "-c", &script]);
        self.d.docker(&args).ok();
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
            .args(["delete", "table", "ip", &self.table()])
            .output();
    }
}

/// An HTTP GET of `/` from `addr`; the body, or None.
fn http_get(addr: &str) -> Option<String> {
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split("\r\n\r\n").nth(1).map(|b| b.trim().to_string())
}

/// A free TCP port on 127.0.0.1 (for the host side of a published port).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// The same GET from inside a new container on the bridge (busybox nc).
fn get_from_container(n: &NetDaemon, host: &str, port: u16) -> String {
    let out = n.d.docker(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}"),
    ]);
    out.stdout
}

/// A network namespace standing for another machine: a veth pair with 10.214.N.1/30 inside
/// and 10.214.N.2/30 on the host. Removed on drop.
struct Remote {
    ns: String,
    host_if: String,
}

impl Remote {
    fn new(n: u8) -> Remote {
        let ns = format!("btr{n}x{}", std::process::id() % 100_000);
        let host_if = format!("{ns}h");
        let run = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().expect("ip");
            assert!(st.success(), "ip {args:?}");
        };
        run(&["netns", "add", &ns]);
        run(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        run(&["addr", "add", &format!("10.214.{n}.2/30"), "dev", &host_if]);
        run(&["link", "set", &host_if, "up"]);
        run(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("10.214.{n}.1/30"),
            "dev",
            "eth0",
        ]);
        run(&["-n", &ns, "link", "set", "eth0", "up"]);
        run(&["-n", &ns, "link", "set", "lo", "up"]);
        Remote { ns, host_if }
    }

    fn get(&self, url: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "curl", "-s", "-m", "5", url])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn a_published_port_answers_from_the_host_another_machine_and_a_container() {
    let n = NetDaemon::start(11);
    let (local, any) = (free_port(), free_port());
    n.httpd(
        "web",
        &[&format!("127.0.0.1:{local}:80"), &format!("{any}:80")],
        "hello-berth",
    );
    let ip = n.inspect("web", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with(&format!("10.213.{}.", n.n)), "{ip}");
    assert_eq!(
        n.inspect("web", "{{.NetworkSettings.Gateway}}"),
        n.gateway()
    );
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().expect("octet")).collect();
    assert_eq!(
        n.inspect("web", "{{.NetworkSettings.MacAddress}}"),
        format!(
            "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
            octets[0], octets[1], octets[2], octets[3]
        )
    );
    assert_eq!(
        n.inspect("web", "{{.NetworkSettings.Networks.bridge.IPAddress}}"),
        ip
    );
    // From the host's loopback.
    assert!(wait_for(|| http_get(&format!("127.0.0.1:{local}"))
        .as_deref()
        == Some("hello-berth")));
    assert_eq!(
        http_get(&format!("127.0.0.1:{any}")).as_deref(),
        Some("hello-berth")
    );
    // From another machine, to the host's address on its link.
    let remote = Remote::new(n.n);
    assert_eq!(
        remote.get(&format!("http://10.214.{}.2:{any}/", n.n)),
        "hello-berth"
    );
    // The 127.0.0.1-only binding is not reachable from there.
    assert_eq!(remote.get(&format!("http://10.214.{}.2:{local}/", n.n)), "");
    // From another container: directly, and through the host's port (hairpin).
    assert!(get_from_container(&n, &ip, 80).contains("hello-berth"));
    assert!(get_from_container(&n, &n.gateway(), any).contains("hello-berth"));
    // docker port, ps and inspect say the same.
    let port = n.d.docker(&["port", "web"]);
    port.ok();
    assert!(
        port.stdout
            .contains(&format!("80/tcp -> 127.0.0.1:{local}"))
            && port.stdout.contains(&format!("80/tcp -> 0.0.0.0:{any}")),
        "{}",
        port.stdout
    );
    let ps = n.d.docker(&["ps", "--format", "{{.Ports}}"]);
    assert!(
        ps.stdout.contains(&format!("127.0.0.1:{local}->80/tcp")),
        "{}",
        ps.stdout
    );
    assert!(n
        .inspect("web", "{{json .HostConfig.PortBindings}}")
        .contains(&local.to_string()));
    // A restart makes it all again: same ports, an address, the page.
    n.d.docker(&["restart", "-t", "1", "web"]).ok();
    assert!(wait_for(|| http_get(&format!("127.0.0.1:{local}"))
        .as_deref()
        == Some("hello-berth")));
    // (the last run's veth is deleted in the background)
    assert!(wait_for(|| n.veths().len() == 1), "{:?}", n.veths());
    let ip = n.inspect("web", "{{.NetworkSettings.IPAddress}}");
    // docker network ls / inspect show the predefined networks, the bridge's subnet and
    // the containers on it.
    let ls =
        n.d.docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    ls.ok();
    assert_eq!(ls.stdout, "bridge bridge\nhost host\nnone null\n");
    let net = n.d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
        "bridge",
    ]);
    net.ok();
    assert_eq!(
        net.stdout.trim(),
        format!("10.213.{}.0/24 {} web {ip}/24", n.n, n.gateway())
    );
}

#[test]
fn udp_a_port_range_and_publish_all() {
    let n = NetDaemon::start(12);
    // UDP: a server in the container's namespace (busybox has none: python3 of the host),
    // reached through NAT.
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let uport = udp.local_addr().expect("addr").port();
    drop(udp);
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        &format!("127.0.0.1:{uport}:5353/udp"),
        "bb:1",
        "sleep",
        "60",
    ])
    .ok();
    let pid = n.inspect("udp", "{{.State.Pid}}");
    let mut server = Command::new("nsenter")
        .args([
            "-t",
            &pid,
            "-n",
            "python3",
            "-c",
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 5353))\ns.settimeout(20)\nd, a = s.recvfrom(100)\ns.sendto(b'pong\\n', a)\n",
        ])
        .spawn()
        .expect("python3");
    let client = UdpSocket::bind("127.0.0.1:0").expect("udp");
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let got = wait_for(|| {
        let _ = client.send_to(b"ping", ("127.0.0.1", uport));
        matches!(client.recv_from(&mut buf), Ok((len, _)) if &buf[..len] == b"pong\n")
    });
    let _ = server.kill();
    let _ = server.wait();
    assert!(got, "no UDP answer through the published port");
    // A range: two host ports to two container ports.
    let first = free_port();
    let range = format!("127.0.0.1:{first}-{}:80-81", first + 1);
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "two",
        "-p",
        &range,
        "bb:1",
        "sh",
        "-c",
        "mkdir /w && echo two > /w/index.html && httpd -p 81 -h /w && httpd -f -p 80 -h /w",
    ])
    .ok();
    assert!(wait_for(|| http_get(&format!("127.0.0.1:{first}"))
        .as_deref()
        == Some("two")));
    assert_eq!(
        http_get(&format!("127.0.0.1:{}", first + 1)).as_deref(),
        Some("two")
    );
    // -P: the image's EXPOSE on an ephemeral port the kernel chose.
    let rootfs = common::busybox_rootfs_tar(n.d.dir.path());
    n.d.docker(&[
        "import",
        "--change",
        "EXPOSE 80",
        rootfs.to_str().expect("utf8"),
        "web:exposed",
    ])
    .ok();
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "all",
        "-P",
        "web:exposed",
        "sh",
        "-c",
        "mkdir /w && echo all > /w/index.html && httpd -f -p 80 -h /w",
    ])
    .ok();
    let port = n.d.docker(&["port", "all", "80/tcp"]);
    port.ok();
    let mapped: u16 = port
        .stdout
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .expect("a mapped port");
    assert!((32768..=60999).contains(&mapped), "{mapped}");
    assert!(wait_for(|| http_get(&format!("127.0.0.1:{mapped}"))
        .as_deref()
        == Some("all")));
}

#[test]
fn a_host_port_in_use_and_bad_specs_are_clear_errors_with_nothing_made() {
    let n = NetDaemon::start(13);
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = n.d.docker(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "bb:1",
        "sleep",
        "60",
    ]);
    out.failed_with("address already in use");
    assert_eq!(n.inspect("clash", "{{.State.Running}}"), "false");
    assert!(n.veths().is_empty(), "{:?}", n.veths());
    assert!(!n.rules().contains(&format!("dport {port}")));
    assert_eq!(n.inspect("clash", "{{.NetworkSettings.IPAddress}}"), "");
    // Another container on the same host port, through berth itself.
    drop(taken);
    n.httpd("first", &[&format!("127.0.0.1:{port}:80")], "one");
    n.d.docker(&[
        "run",
        "-d",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "bb:1",
        "true",
    ])
    .failed_with("address already in use");
    n.d.docker(&["run", "-d", "-p", "99999:80", "bb:1", "true"])
        .failed_with("99999");
    n.d.docker(&["run", "-d", "-p", "abc", "bb:1", "true"])
        .failed_with("abc");
    // The same refusals from the API itself (clients that do not check).
    let (status, body) = n.d.http(
        "POST",
        "/containers/create",
        br#"{"Image": "bb:1", "Cmd": ["true"], "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid hostPort: 99999"), "{body}");
    let (status, body) = n.d.http(
        "POST",
        "/containers/create",
        br#"{"Image": "bb:1", "Cmd": ["true"], "ExposedPorts": {"abc/tcp": {}}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid containerPort: abc"), "{body}");
}

#[test]
fn containers_reach_each_other_and_get_dockerds_etc_files() {
    let n = NetDaemon::start(14);
    n.httpd("web-a", &[], "from-a");
    let a_ip = n.inspect("web-a", "{{.NetworkSettings.IPAddress}}");
    let b_ip_out = n.d.docker(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {a_ip} 80"),
    ]);
    assert!(b_ip_out.stdout.contains("from-a"), "{}", b_ip_out.stdout);
    let out = n.d.docker(&[
        "run",
        "--rm",
        "--hostname",
        "web",
        "--domainname",
        "example.com",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "a.example",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "bb:1",
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo ==; cat /etc/hosts; echo ==; cat /etc/hostname; echo ==; ip -4 -o addr show eth0",
    ]);
    out.ok();
    let parts: Vec<&str> = out.stdout.split("==\n").collect();
    assert_eq!(parts.len(), 4, "{}", out.stdout);
    assert_eq!(
        parts[0],
        "nameserver 10.0.0.53\nsearch a.example\noptions ndots:2\n"
    );
    let hosts = parts[1];
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains("10.1.2.3\tdb\n"), "{hosts}");
    assert!(hosts.contains(&format!("{}\tgw\n", n.gateway())), "{hosts}");
    let own = parts[3]
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.split('/').next())
        .expect("address")
        .to_string();
    assert!(
        hosts.ends_with(&format!("{own}\tweb.example.com web\n")),
        "{hosts}"
    );
    assert_eq!(parts[2], "web\n");
    // Without --dns: the host's resolvers, none of them on loopback.
    let plain =
        n.d.docker(&["run", "--rm", "bb:1", "cat", "/etc/resolv.conf"]);
    plain.ok();
    assert!(plain.stdout.contains("nameserver "), "{}", plain.stdout);
    assert!(
        !plain.stdout.contains("nameserver 127."),
        "{}",
        plain.stdout
    );
    // container:X shares X's namespace (same address, X's /etc files and name); what only
    // X's network decides is refused.
    let joined = n.d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:web-a",
        "bb:1",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; hostname; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 80",
    ]);
    joined.ok();
    assert!(
        joined.stdout.contains(&format!("inet {a_ip}/24")),
        "{}",
        joined.stdout
    );
    assert!(joined.stdout.contains("from-a"), "{}", joined.stdout);
    let a_hostname = n.inspect("web-a", "{{.Config.Hostname}}");
    assert!(joined.stdout.contains(&a_hostname), "{}", joined.stdout);
    n.d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:web-a",
        "-p",
        "8080:80",
        "bb:1",
        "true",
    ])
    .failed_with("conflicting options: port publishing");
    // --network none and host keep working beside the bridge.
    let none = n.d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "ip",
        "-o",
        "link",
    ]);
    assert!(!none.stdout.contains("eth0"), "{}", none.stdout);
}

#[test]
fn teardown_after_rm_and_after_sigkill_and_restart_of_berthd() {
    let mut n = NetDaemon::start(15);
    let (p1, p2) = (free_port(), free_port());
    n.httpd("keep", &[&format!("127.0.0.1:{p1}:80")], "kept");
    n.httpd("gone", &[&format!("127.0.0.1:{p2}:80")], "gone");
    assert!(wait_for(
        || http_get(&format!("127.0.0.1:{p1}")).as_deref() == Some("kept")
    ));
    assert_eq!(n.veths().len(), 2);
    let keep_ip = n.inspect("keep", "{{.NetworkSettings.IPAddress}}");
    let gone_pid = n.inspect("gone", "{{.State.Pid}}");
    let netns_dir = n.d.exec_root().join("netns");
    // SIGKILL berthd, then the container "gone" dies while no berthd runs.
    n.d.kill();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gone_pid.parse().expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let bridge = n.bridge.clone();
    let gateway = n.gateway();
    n.d.spawn(&["--bridge", &bridge, "--bip", &format!("{gateway}/24")]);
    assert!(wait_for(|| n.veths().len() == 1), "{:?}", n.veths());
    assert!(wait_for(|| !n.rules().contains(&format!("dport {p2}"))));
    assert_eq!(n.inspect("gone", "{{.NetworkSettings.IPAddress}}"), "");
    // The live one kept its address and port.
    assert_eq!(n.inspect("keep", "{{.NetworkSettings.IPAddress}}"), keep_ip);
    assert_eq!(
        http_get(&format!("127.0.0.1:{p1}")).as_deref(),
        Some("kept")
    );
    assert!(n.rules().contains(&format!("dport {p1}")));
    // The address of the dead one is free again, not the live one's.
    n.httpd("next", &[], "next");
    assert_ne!(n.inspect("next", "{{.NetworkSettings.IPAddress}}"), keep_ip);
    // rm: veth, rule and namespace go.
    n.d.docker(&["rm", "-f", "keep", "next"]).ok();
    assert!(wait_for(|| n.veths().is_empty()), "{:?}", n.veths());
    assert!(!n.rules().contains(&format!("dport {p1}")));
    assert!(wait_for(|| std::fs::read_dir(&netns_dir)
        .map(|d| d.count() == 0)
        .unwrap_or(true)));
    assert_eq!(http_get(&format!("127.0.0.1:{p1}")), None);
}

/// `docker network create` for a test: bridge `bt<N>x<pid>`, subnet 10.213.N.0/24.
fn user_network(n: &NetDaemon, name: &str, net: u8, extra: &[&str]) -> String {
    let bridge = format!("bt{net}x{}", std::process::id() % 100_000);
    let subnet = format!("10.213.{net}.0/24");
    let opt = format!("com.docker.network.bridge.name={bridge}");
    let mut args = vec!["network", "create", "--subnet", &subnet, "-o", &opt];
    args.extend(extra);
    args.push(name);
    n.d.docker(&args).ok();
    bridge
}

fn nc_get(n: &NetDaemon, network: &str, host: &str) -> String {
    n.d.docker(&[
        "run",
        "--rm",
        "--network",
        network,
        "bb:1",
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80"),
    ])
    .stdout
}

#[test]
fn user_networks_resolve_names_isolate_and_refuse_bad_input() {
    let mut n = NetDaemon::start(19);
    let bridge_a = user_network(&n, "net-a", 16, &["--label", "team=x"]);
    user_network(&n, "net-b", 17, &[]);
    user_network(&n, "net-c", 18, &["--internal"]);
    n.d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "net-a",
        "--network-alias",
        "www",
        "bb:1",
        "sh",
        "-c",
        "mkdir /w && echo on-a > /w/index.html && httpd -f -p 80 -h /w",
    ])
    .ok();
    let ip = n.inspect(
        "web",
        "{{(index .NetworkSettings.Networks \"net-a\").IPAddress}}",
    );
    assert!(ip.starts_with("10.213.16."), "{ip}");
    let short = n.inspect("web", "{{.Id}}")[..12].to_string();
    // By name, alias and short id through the embedded resolver.
    for name in ["web", "www", short.as_str()] {
        assert!(nc_get(&n, "net-a", name).contains("on-a"), "{name}");
    }
    let resolv = n.d.docker(&[
        "run",
        "--rm",
        "--network",
        "net-a",
        "bb:1",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(
        resolv.stdout.starts_with("nameserver 127.0.0.11\n"),
        "{}",
        resolv.stdout
    );
    // Another network reaches neither the name nor the address; nor does the default
    // bridge; an internal network has no way out.
    assert!(!nc_get(&n, "net-b", "web").contains("on-a"));
    assert!(!nc_get(&n, "net-b", &ip).contains("on-a"));
    assert!(!nc_get(&n, "bridge", &ip).contains("on-a"));
    assert!(!nc_get(&n, "net-c", &ip).contains("on-a"));
    assert!(n
        .rules_of(&format!("berth-bt18x{}", std::process::id() % 100_000))
        .contains("oifname != "));
    // ls, filters, inspect.
    let ls = n.d.docker(&[
        "network",
        "ls",
        "--filter",
        "label=team=x",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ls.stdout, "net-a\n");
    let inspect = n.d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Options}} {{range .Containers}}{{.Name}}{{end}}",
        "net-a",
    ]);
    assert!(
        inspect.stdout.contains("10.213.16.0/24"),
        "{}",
        inspect.stdout
    );
    assert!(
        inspect.stdout.trim_end().ends_with("web"),
        "{}",
        inspect.stdout
    );
    // Bad input: clear errors, nothing made.
    n.d.docker(&[
        "network",
        "create",
        "--subnet",
        "10.213.16.128/25",
        "overlap",
    ])
    .failed_with("overlaps");
    // (the docker CLI checks the gateway itself; the API says the same to other clients)
    let (status, body) = n.d.http(
        "POST",
        "/networks/create",
        br#"{"Name": "gw", "IPAM": {"Config": [{"Subnet": "10.213.20.0/24", "Gateway": "10.213.21.1"}]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not within the subnet"), "{body}");
    n.d.docker(&["network", "create", "--subnet", "10.213.20.0/24", "net-a"])
        .failed_with("already exists");
    n.d.docker(&["network", "rm", "net-a"])
        .failed_with("active endpoints");
    n.d.docker(&["run", "--rm", "--network-alias", "x", "bb:1", "true"])
        .failed_with("user-defined networks");
    let names = n.d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!names.stdout.contains("overlap") && !names.stdout.contains("gw\n"));
    // A container that runs through a SIGKILL of berthd is still answered.
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
    n.d.kill();
    let (bridge, gateway) = (n.bridge.clone(), n.gateway());
    n.d.spawn(&["--bridge", &bridge, "--bip", &format!("{gateway}/24")]);
    let looked = n.d.docker(&["exec", "client", "nslookup", "www"]);
    assert!(looked.stdout.contains(&ip), "{}", looked.stdout);
    // rm once nothing runs on it: the bridge and the table go; prune takes the unused.
    n.d.docker(&["rm", "-f", "web", "client"]).ok();
    n.d.docker(&["network", "rm", "net-a"]).ok();
    let gone = Command::new("ip")
        .args(["link", "show", &bridge_a])
        .output()
        .expect("ip");
    assert!(!gone.status.success(), "{bridge_a} is still there");
    assert_eq!(n.rules_of(&format!("berth-{bridge_a}")), "");
    let pruned = n.d.docker(&["network", "prune", "-f"]);
    assert!(
        pruned.stdout.contains("net-b") && pruned.stdout.contains("net-c"),
        "{}",
        pruned.stdout
    );
}

/// Debian's docker-compose 1.29 (an Engine API client): a project on its own network
/// (bridge and subnet of the test's), a published port, service names resolved, ps, logs,
/// exec, stop, down (which removes the network).
#[test]
fn a_compose_project_runs_on_its_network() {
    let n = NetDaemon::start(22);
    let port = free_port();
    let bridge = format!("bt21x{}", std::process::id() % 100_000);
    let dir = n.d.dir.path().join("proj");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            r#"version: "3"
services:
  web:
    image: bb:1
    command: sh -c "mkdir -p /w && echo compose-web > /w/index.html && echo serving && httpd -f -p 80 -h /w"
    ports:
      - "127.0.0.1:{port}:80"
  client:
    image: bb:1
    command: sleep 300
networks:
  default:
    driver_opts:
      com.docker.network.bridge.name: {bridge}
    ipam:
      config:
        - subnet: 10.213.21.0/24
"#
        ),
    )
    .expect("compose file");
    let compose = |args: &[&str]| {
        let out = Command::new("docker-compose")
            .args(["-p", "bt21"])
            .args(args)
            .current_dir(&dir)
            .env("DOCKER_HOST", format!("unix://{}", n.d.socket().display()))
            .env("DOCKER_CONFIG", n.d.client_config())
            .output()
            .expect("docker-compose");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "docker-compose {args:?}: {text}");
        text
    };
    compose(&["up", "-d"]);
    assert!(wait_for(|| http_get(&format!("127.0.0.1:{port}"))
        .as_deref()
        == Some("compose-web")));
    let ps = compose(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    let exec = compose(&[
        "exec",
        "-T",
        "client",
        "sh",
        "-c",
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 web 80",
    ]);
    assert!(exec.contains("compose-web"), "{exec}");
    assert!(compose(&["logs", "web"]).contains("serving"));
    compose(&["stop"]);
    compose(&["down"]);
    let nets = n.d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.stdout.contains("bt21_default"), "{}", nets.stdout);
    let gone = Command::new("ip")
        .args(["link", "show", &bridge])
        .output()
        .expect("ip");
    assert!(!gone.status.success(), "{bridge} is still there");
}

#[test]
fn a_build_runs_its_steps_on_the_network_it_asks_for() {
    let n = NetDaemon::start(30);
    user_network(&n, "buildnet", 31, &[]);
    let ctx = n.d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    // The step records the interfaces it sees (lo only, or lo and eth0).
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:1\nARG WHERE\nRUN grep -o 'eth0' /proc/net/dev > /seen-$WHERE || echo none > /seen-$WHERE\n",
    )
    .expect("Dockerfile");
    let ctx = ctx.to_str().expect("utf8");
    for (network, seen) in [("default", "eth0"), ("none", "none"), ("buildnet", "eth0")] {
        let mut args = vec!["build", "-q", "--build-arg"];
        let arg = format!("WHERE={network}");
        args.push(&arg);
        if network != "default" {
            args.extend(["--network", network]);
        }
        args.extend(["-t", "netbuild:1", ctx]);
        n.d.docker(&args).ok();
        let out = n.d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "netbuild:1",
            "cat",
            &format!("/seen-{network}"),
        ]);
        assert_eq!(out.ok().stdout.trim(), seen, "{network}");
    }
    n.d.docker(&["build", "--network", "nosuch", ctx])
        .failed_with("network nosuch not found");
}

#[test]
fn network_and_volume_events_are_sent_and_filtered() {
    let n = NetDaemon::start(32);
    user_network(&n, "evnet", 33, &[]);
    n.d.docker(&[
        "create",
        "--name",
        "evc",
        "--network",
        "none",
        "bb:1",
        "true",
    ])
    .ok();
    n.d.docker(&["network", "connect", "evnet", "evc"]).ok();
    n.d.docker(&["network", "disconnect", "evnet", "evc"]).ok();
    n.d.docker(&["network", "rm", "evnet"]).ok();
    n.d.docker(&["volume", "create", "evvol"]).ok();
    n.d.docker(&["volume", "rm", "evvol"]).ok();
    let events = |filter: &str| {
        n.d.docker(&[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            filter,
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout
    };
    let wanted = "network create evnet\nnetwork connect evnet\nnetwork disconnect evnet\nnetwork destroy evnet\n";
    assert!(
        wait_for(|| events("network=evnet") == wanted),
        "{}",
        events("network=evnet")
    );
    let volume_events = || events("volume=evvol").replace(" <no value>", "");
    assert!(
        wait_for(|| volume_events() == "volume create\nvolume destroy\n"),
        "{}",
        volume_events()
    );
    assert_eq!(events("type=network").lines().count(), 4);
    n.d.docker(&["rm", "evc"]).ok();
}

//! The berth CLI's networking: `berth network create/ls/inspect/connect/disconnect/rm/prune`
//! and `run`'s `--network`, `--network-alias`, `--ip`, `-p`, `-P`, `--expose`, `--dns*`,
//! `--add-host`, `--domainname`, with real traffic. The daemon's bridge and the networks
//! use 10.213.68.0/24 to 10.213.70.0/24, which no other test file uses.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{busybox_image, remove_bridge, wait_for, Daemon};

/// A daemon on its own bridge `bn68x<pid>`, removed with its table at the end.
struct NetDaemon {
    d: Daemon,
    bridge: String,
}

impl NetDaemon {
    fn start() -> NetDaemon {
        let bridge = format!("bn68x{}", std::process::id() % 100_000);
        let d =
            Daemon::start_for_containers_with(&["--bridge", &bridge, "--bip", "10.213.68.1/24"]);
        busybox_image(&d);
        NetDaemon { d, bridge }
    }

    /// The bridge option that gives network `n` a bridge of this test's own.
    fn bridge_opt(n: u8) -> String {
        format!(
            "com.docker.network.bridge.name=bn{n}x{}",
            std::process::id() % 100_000
        )
    }
}

impl Drop for NetDaemon {
    fn drop(&mut self) {
        let ids = self.d.berth(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.d.berth(&["rm", "-f", id]);
        }
        let _ = self.d.berth(&["network", "prune", "-f"]);
        remove_bridge(&self.bridge);
    }
}

/// An HTTP GET of `/` from the host; the body.
fn http_get(addr: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn berth_network_commands_and_run_flags_carry_real_traffic() {
    let n = NetDaemon::start();
    let d = &n.d;
    let front = NetDaemon::bridge_opt(69);
    let id = d
        .berth(&[
            "network",
            "create",
            "--subnet",
            "10.213.69.0/24",
            "--gateway",
            "10.213.69.1",
            "-o",
            &front,
            "--label",
            "tier=front",
            "front",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let listed = d.berth(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Labels}}",
    ]);
    for line in [
        "front bridge tier=front",
        "bridge bridge ",
        "host host ",
        "none null ",
    ] {
        assert!(
            listed
                .ok()
                .stdout
                .lines()
                .any(|l| l.trim_end() == line.trim_end()),
            "{line}: {}",
            listed.stdout
        );
    }
    let quiet = d.berth(&["network", "ls", "-q", "--filter", "name=front"]);
    assert_eq!(quiet.ok().stdout.trim(), &id[..12]);
    let gateway = d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "front",
    ]);
    assert_eq!(gateway.ok().stdout.trim(), "10.213.69.1");

    // A user network: name and alias answered by the embedded resolver, --ip kept.
    d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "--ip",
        "10.213.69.50",
        "bb:1",
        "sh",
        "-c",
        HTTPD,
    ])
    .ok();
    let ip = d.berth(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"front\").IPAddress}}",
        "web",
    ]);
    assert_eq!(ip.ok().stdout.trim(), "10.213.69.50");
    for host in ["web", "www"] {
        let url = format!("http://{host}/");
        let got = wait_for(|| {
            d.berth(&[
                "run",
                "--rm",
                "--network",
                "front",
                "bb:1",
                "wget",
                "-qO-",
                &url,
            ])
            .stdout
            .contains("hello-")
        });
        assert!(got, "{host} not reached from another container on front");
    }

    // A published port on the default bridge, reached from the host's loopback.
    d.berth(&[
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        "127.0.0.1::80",
        "--expose",
        "81-82/udp",
        "bb:1",
        "sh",
        "-c",
        HTTPD,
    ])
    .ok();
    let port = d.berth(&["port", "pub", "80/tcp"]);
    let addr = port.ok().stdout.trim().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(
        wait_for(|| http_get(&addr).contains("hello-")),
        "{addr} not reached"
    );
    let exposed = d.berth(&[
        "inspect",
        "-f",
        "{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}",
        "pub",
    ]);
    assert_eq!(exposed.ok().stdout.trim(), "80/tcp 81/udp 82/udp");

    // connect and disconnect of a running container.
    d.berth(&["network", "connect", "--alias", "side", "front", "pub"])
        .ok();
    let nets = d.berth(&[
        "inspect",
        "-f",
        "{{range $k, $_ := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "pub",
    ]);
    assert_eq!(nets.ok().stdout.trim(), "bridge front");
    assert!(wait_for(|| d
        .berth(&["exec", "web", "wget", "-qO-", "http://side/"])
        .stdout
        .contains("hello-")));
    d.berth(&["network", "disconnect", "front", "pub"]).ok();
    d.berth(&["network", "disconnect", "front", "pub"])
        .failed_with("is not connected to network front");

    // docker ps's network, publish, expose, before, since and is-task filters.
    let host_port = addr.rsplit(':').next().unwrap_or_default().to_string();
    let publish = format!("publish={host_port}");
    for (filter, want) in [
        ("network=front", "web"),
        ("network=bridge", "pub"),
        (publish.as_str(), "pub"),
        ("expose=80", "pub"),
        ("expose=81-82/udp", "pub"),
        ("before=pub", "web"),
        ("since=web", "pub"),
        ("is-task=false", "pub web"),
        ("is-task=true", ""),
    ] {
        let names = d.docker(&["ps", "--filter", filter, "--format", "{{.Names}}"]);
        let mut got: Vec<&str> = names.ok().stdout.lines().collect();
        got.sort();
        assert_eq!(got.join(" "), want, "{filter}");
    }
    d.docker(&["ps", "--filter", "publish=1:2"])
        .failed_with("should not contain ':'");
    d.docker(&["ps", "--filter", "before=nosuch"])
        .failed_with("No such container: nosuch");

    // resolv.conf, hosts and the domain name from the flags.
    let files = d.berth(&[
        "run",
        "--rm",
        "--dns",
        "10.213.68.53",
        "--dns-search",
        "example.org",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db=10.213.68.77",
        "--domainname",
        "corp.example",
        "bb:1",
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts; hostname -d",
    ]);
    let text = files.ok().stdout.clone();
    for want in [
        "nameserver 10.213.68.53",
        "search example.org",
        "options ndots:2",
        "10.213.68.77\tdb",
        "corp.example",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }

    // Bad input: the docker CLI's messages, nothing made.
    d.berth(&["run", "-p", "abc", "bb:1", "true"])
        .failed_with("invalid containerPort: abc");
    d.berth(&["run", "-p", "99999:80", "bb:1", "true"])
        .failed_with("invalid hostPort: 99999");
    d.berth(&[
        "run",
        "--network",
        "front",
        "--network",
        "host",
        "bb:1",
        "true",
    ])
    .failed_with("cannot attach both user-defined and non-user-defined network-modes");
    d.berth(&[
        "network",
        "create",
        "--subnet",
        "10.213.69.0/25",
        "-o",
        &NetDaemon::bridge_opt(70),
        "clash",
    ])
    .failed();
    d.berth(&[
        "network",
        "create",
        "--subnet",
        "10.213.70.0/24",
        "--gateway",
        "10.213.71.1",
        "bad",
    ])
    .failed_with("no matching subnet for gateway 10.213.71.1");
    let names = d.berth(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !names
            .ok()
            .stdout
            .lines()
            .any(|l| l == "clash" || l == "bad"),
        "{}",
        names.stdout
    );

    // rm of a network in use fails (exit 1) and keeps it; rm and prune after.
    d.berth(&["network", "rm", "front"])
        .failed_with("has active endpoints");
    d.berth(&["rm", "-f", "web"]).ok();
    let removed = d.berth(&["network", "rm", "front"]);
    assert_eq!(removed.ok().stdout.trim(), "front");
    d.berth(&["network", "rm", "front"])
        .failed_with("not found");
    d.berth(&["network", "rm", "-f", "front"]).ok();
    d.berth(&[
        "network",
        "create",
        "--subnet",
        "10.213.70.0/24",
        "-o",
        &NetDaemon::bridge_opt(70),
        "spare",
    ])
    .ok();
    for (filters, want) in [
        (&["dangling=true"][..], "spare"),
        (&["dangling=false"][..], "bridge host none"),
        (&["name=spare", "name=none"][..], "none spare"),
        (&["type=custom"][..], "spare"),
    ] {
        let mut args = vec!["network", "ls", "--format", "{{.Name}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        let names = d.berth(&args);
        let mut got: Vec<&str> = names.ok().stdout.lines().collect();
        got.sort();
        assert_eq!(got.join(" "), want, "{filters:?}");
    }
    d.berth(&["network", "ls", "--filter", "dangling=maybe"])
        .failed_with("invalid value for filter 'dangling'");
    d.berth(&["network", "ls", "--filter", "type=bogus"])
        .failed_with("invalid filter: 'type'='bogus'");
    let pruned = d.berth(&["network", "prune", "-f"]);
    assert_eq!(pruned.ok().stdout, "Deleted Networks:\nspare\n");
}

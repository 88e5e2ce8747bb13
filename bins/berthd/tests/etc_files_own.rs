//! /etc/hosts, /etc/hostname and /etc/resolv.conf of containers on `--network none` and
//! `--network host`, as dockerd writes them: `--add-host` (with `host-gateway`), `--dns*`,
//! `--hostname` and `--domainname` hold there too.

mod common;

use common::{busybox_image, Daemon};

const SHOW: &str = "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hostname";

#[test]
fn none_and_host_containers_get_their_etc_files() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let gateway = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "bridge",
    ]);
    let gateway = gateway.ok().stdout.trim().to_string();
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--hostname",
        "box",
        "--domainname",
        "corp.example",
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "example.org",
        "--dns-option",
        "ndots:3",
        "bb:1",
        "sh",
        "-c",
        SHOW,
    ]);
    let parts = files_of(&out.ok().stdout);
    let text = parts.join("---\n");
    assert!(parts[0].starts_with("127.0.0.1\tlocalhost\n"), "{text}");
    assert!(parts[0].contains("10.1.2.3\tdb\n"), "{text}");
    assert!(parts[0].contains(&format!("{gateway}\tgw\n")), "{text}");
    assert_eq!(
        parts[1],
        "nameserver 10.0.0.53\nsearch example.org\noptions ndots:3\n"
    );
    assert_eq!(parts[2], "box\n");

    // host: the host's own files, with the flags' lines.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--add-host",
        "db:10.1.2.3",
        "bb:1",
        "sh",
        "-c",
        SHOW,
    ]);
    let parts = files_of(&out.ok().stdout);
    let text = parts.join("---\n");
    let host_hosts = std::fs::read_to_string("/etc/hosts").expect("host's hosts");
    assert!(parts[0].starts_with(host_hosts.trim_end()), "{text}");
    assert!(parts[0].ends_with("10.1.2.3\tdb\n"), "{text}");
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(parts[2], host_name);
    // The mounted files are the init layer's, as dockerd's: no diff, nothing committed.
    for network in ["none", "host", "bridge"] {
        let name = format!("quiet-{network}");
        d.docker(&["run", "--name", &name, "--network", network, "bb:1", "true"])
            .ok();
        let diff = d.docker(&["diff", &name]);
        assert_eq!(diff.ok().stdout, "", "{network}");
        d.docker(&["rm", &name]).ok();
    }
    let resolv = hosts_resolv_conf();
    assert_eq!(parts[1], resolv);
}

/// SHOW's output: hosts, resolv.conf, hostname.
fn files_of(output: &str) -> Vec<String> {
    let parts: Vec<String> = output.split("---\n").map(String::from).collect();
    assert_eq!(parts.len(), 3, "{output}");
    parts
}

/// The host's resolv.conf as a host-network container sees it (systemd-resolved's real
/// file when its stub is the host's).
fn hosts_resolv_conf() -> String {
    let main = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if main.lines().any(|l| l.trim() == "nameserver 127.0.0.53") {
        if let Ok(real) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            return real;
        }
    }
    main
}

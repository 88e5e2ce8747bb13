//! IPv6 on the default bridge without `fixed-cidr-v6` (dockerd 28): the bridge takes a
//! subnet of the IPv6 `default-address-pools`, else a /64 of the daemon's ULA /48, and keeps
//! it across restarts. Each daemon runs in a network namespace the test makes (`ip netns`),
//! so its bridge, nftables tables and forwarding sysctls never touch the host's; the pools
//! given here are in fd42:b0e7:40::/44, which no other test uses.

mod common;

use common::NsDaemon;

impl NsDaemon {
    /// The default bridge's IPv6 subnet as `network inspect` shows it.
    fn subnet6(&self) -> String {
        let out = self.d.docker(&[
            "network",
            "inspect",
            "-f",
            "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}",
            "bridge",
        ]);
        out.ok();
        let mut words = out.stdout.split_whitespace();
        assert_eq!(words.next(), Some("true"), "{}", out.stdout);
        words
            .find(|s| s.contains(':'))
            .unwrap_or_else(|| panic!("no IPv6 subnet: {}", out.stdout))
            .to_string()
    }

    fn address6(&self, name: &str) -> String {
        self.inspect(
            name,
            "{{.NetworkSettings.GlobalIPv6Address}}/{{.NetworkSettings.GlobalIPv6PrefixLen}} {{.NetworkSettings.IPv6Gateway}}",
        )
    }
}

/// `ipv6` alone: the default bridge takes the first /64 of the daemon's ULA /48 (a user
/// network with `--ipv6` and no subnet the next one), containers get addresses in it, and
/// a restarted daemon keeps it (the running container keeps its address).
#[test]
fn ipv6_alone_takes_a_ula_subnet_and_keeps_it() {
    let mut n = NsDaemon::start("b6d1", &["--ipv6"]);
    let subnet = n.subnet6();
    let net: berth_network::Ipv6Net = subnet.parse().expect("an IPv6 subnet");
    assert_eq!(net.prefix_len(), 64, "{subnet}");
    let first = net.network().segments();
    assert_eq!(first[0] & 0xff00, 0xfd00, "a ULA: {subnet}");
    assert_eq!(first[3], 0, "the /48's first /64: {subnet}");
    n.d.docker(&["run", "-d", "--name", "one", "bb:1", "sleep", "300"])
        .ok();
    let prefix = subnet.trim_end_matches("/64");
    assert_eq!(
        n.address6("one"),
        format!("{prefix}2/64 {prefix}1"),
        "the subnet {subnet}"
    );
    let routes = n.d.docker(&["exec", "one", "ip", "-6", "route"]);
    assert!(
        routes.stdout.contains(&format!("default via {prefix}1")),
        "{}",
        routes.stdout
    );
    // A user network with --ipv6 alone: the same /48, the next /64.
    n.d.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=b6dn1",
        "--ipv6",
        "--subnet",
        "10.66.41.0/24",
        "six",
    ])
    .ok();
    let user = n.inspect("six", "{{range .IPAM.Config}}{{.Subnet}} {{end}}");
    let mut next = first;
    next[3] = 1;
    let next = berth_network::Ipv6Net::new(next.into(), 64).expect("net");
    assert!(
        user.split_whitespace().any(|s| s == next.to_string()),
        "{user} (the bridge's: {subnet})"
    );
    // SIGKILL and restart: the same subnet, the running container its address.
    n.d.kill();
    n.spawn(&["--ipv6"]);
    assert_eq!(n.subnet6(), subnet);
    assert_eq!(n.address6("one"), format!("{prefix}2/64 {prefix}1"));
    n.d.docker(&["run", "-d", "--name", "two", "bb:1", "sleep", "300"])
        .ok();
    assert_eq!(n.address6("two"), format!("{prefix}3/64 {prefix}1"));
}

/// With IPv6 entries in `default-address-pools` the bridge takes the first free subnet of
/// those; a restart whose pools still hold it keeps it even when another subnet now comes
/// first, and one whose pools no longer hold it takes a new one.
#[test]
fn ipv6_alone_takes_a_subnet_of_the_ipv6_pools_and_keeps_it_while_they_hold_it() {
    let v4 = "base=10.66.40.0/22,size=24";
    let p = "base=fd42:b0e7:40::/56,size=64";
    let q = "base=fd42:b0e7:41::/56,size=64";
    let pools = |list: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["--bridge", "b6dbr2", "--ipv6"];
        for pool in list {
            args.extend(["--default-address-pool", pool]);
        }
        args
    };
    let mut n = NsDaemon::start("b6d2", &pools(&[v4, p]));
    assert_eq!(n.subnet6(), "fd42:b0e7:40::/64");
    n.d.docker(&["run", "-d", "--name", "one", "bb:1", "sleep", "300"])
        .ok();
    assert_eq!(n.address6("one"), "fd42:b0e7:40::2/64 fd42:b0e7:40::1");
    // The IPv4 subnet from the IPv4 pool (once the bridge is made).
    let bridge4 = n.d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        "bridge",
    ]);
    assert!(
        bridge4.stdout.contains("10.66.40.0/24"),
        "{}",
        bridge4.stdout
    );
    // Restarted with another pool first: the subnet is still in a pool, it stays.
    n.d.stop();
    n.spawn(&pools(&[v4, q, p]));
    assert_eq!(n.subnet6(), "fd42:b0e7:40::/64");
    assert_eq!(n.address6("one"), "fd42:b0e7:40::2/64 fd42:b0e7:40::1");
    // Restarted without it: the new pool's first subnet.
    n.d.docker(&["rm", "-f", "one"]).ok();
    n.d.stop();
    n.spawn(&pools(&[v4, q]));
    assert_eq!(n.subnet6(), "fd42:b0e7:41::/64");
    n.d.docker(&["run", "-d", "--name", "two", "bb:1", "sleep", "300"])
        .ok();
    assert_eq!(n.address6("two"), "fd42:b0e7:41::2/64 fd42:b0e7:41::1");
}

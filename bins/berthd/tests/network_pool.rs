//! The default bridge's spare network namespaces (made ahead of time, with their veth pair,
//! address and route): a container that starts takes one and gets exactly what a namespace
//! made for it would have; none is left after berthd stops, nor after it is killed and
//! started again. Each daemon has its own bridge and subnet (10.213.7N.0/24).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{busybox_image, Daemon};

/// How many spares berthd keeps (its `SPARES`).
const SPARES: usize = 3;

struct PoolDaemon {
    d: Daemon,
    bridge: String,
    n: u8,
}

impl PoolDaemon {
    fn start(n: u8) -> PoolDaemon {
        let bridge = format!("bt{n}p{}", std::process::id() % 100_000);
        let bip = format!("10.213.{n}.1/24");
        let d = Daemon::start_for_containers_with(&["--bridge", &bridge, "--bip", &bip]);
        busybox_image(&d);
        PoolDaemon { d, bridge, n }
    }

    /// The host ends of the spares on this daemon's bridge (named by their files; a
    /// container keeps its spare's name).
    fn spare_links(&self) -> Vec<String> {
        let files = self.spare_files();
        self.links()
            .into_iter()
            .filter(|n| files.contains(n))
            .collect()
    }

    /// Every link on this daemon's bridge.
    fn links(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    fn spare_dir(&self) -> std::path::PathBuf {
        self.d.exec_root().join("netns-spares")
    }

    fn spare_files(&self) -> Vec<String> {
        std::fs::read_dir(self.spare_dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The namespaces the spares' files hold (`net:[N]` as /proc shows them), seen
    /// through berthd's root: it has a mount namespace of its own.
    fn spare_namespaces(&self) -> Vec<String> {
        let dir = format!("/proc/{}/root{}", self.d.pid(), self.spare_dir().display());
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(e.path()).ok()?);
                Some(format!("net:[{ino}]"))
            })
            .collect()
    }

    fn exec(&self, name: &str, script: &str) -> String {
        let out = self.d.docker(&["exec", name, "sh", "-c", script]);
        out.ok();
        out.stdout.trim().to_string()
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.d.docker(&["inspect", "-f", format, name]);
        out.ok();
        out.stdout.trim().to_string()
    }
}

impl Drop for PoolDaemon {
    fn drop(&mut self) {
        let ids = self.d.docker(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.d.docker(&["rm", "-f", id]);
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &format!("berth-{}", self.bridge)])
            .output();
    }
}

/// `f` turns true within a minute (the spares are made in the background, on a machine
/// that may be busy: this bounds a hang, it measures nothing).
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_container_takes_a_spare_with_its_own_address_mac_route_and_files() {
    let p = PoolDaemon::start(77);
    // The first container on the bridge makes its own place; the spares follow.
    p.d.docker(&["run", "-d", "--name", "first", "bb:1", "sleep", "1000"])
        .ok();
    assert!(
        eventually(|| p.spare_links().len() == SPARES),
        "spares: {:?}\n{}",
        p.spare_links(),
        p.d.log()
    );
    let spares = p.spare_namespaces();
    assert_eq!(spares.len(), SPARES, "{spares:?}");

    p.d.docker(&["run", "-d", "--name", "second", "bb:1", "sleep", "1000"])
        .ok();
    // Its namespace is one of the spares'.
    let pid = p.inspect("second", "{{.State.Pid}}");
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("ns");
    assert!(
        spares.contains(&ns.to_string_lossy().into_owned()),
        "{ns:?} not in {spares:?}"
    );

    // What inspect says is what the container has.
    let ip = p.inspect("second", "{{.NetworkSettings.IPAddress}}");
    let mac = p.inspect("second", "{{.NetworkSettings.MacAddress}}");
    let first_ip = p.inspect("first", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with(&format!("10.213.{}.", p.n)), "{ip}");
    assert_ne!(ip, first_ip);
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().expect("octet")).collect();
    let want_mac = format!(
        "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
        octets[0], octets[1], octets[2], octets[3]
    );
    assert_eq!(mac, want_mac);
    let addr = p.exec("second", "ip -o -4 addr show eth0");
    assert!(addr.contains(&format!("{ip}/24")), "{addr}");
    let link = p.exec("second", "cat /sys/class/net/eth0/address");
    assert_eq!(link, want_mac);
    let route = p.exec("second", "ip route show default");
    assert!(
        route.contains(&format!("via 10.213.{}.1 dev eth0", p.n)),
        "{route}"
    );
    let lo = p.exec("second", "ip -o link show lo");
    assert!(lo.contains("UP"), "{lo}");
    let hosts = p.exec("second", "cat /etc/hosts");
    assert!(hosts.contains(&ip), "{hosts}");
    // Traffic both ways on the bridge.
    p.exec("second", &format!("ping -c 1 -W 5 {first_ip}"));
    p.exec("first", &format!("ping -c 1 -W 5 {ip}"));

    // The pool is refilled, with addresses no container holds.
    assert!(
        eventually(|| p.spare_links().len() == SPARES),
        "{:?}",
        p.spare_links()
    );
    p.d.docker(&["run", "-d", "--name", "third", "bb:1", "sleep", "1000"])
        .ok();
    let third = p.inspect("third", "{{.NetworkSettings.IPAddress}}");
    assert!(third != ip && third != first_ip, "{third}");
    p.exec("third", &format!("ping -c 1 -W 5 {ip}"));
}

#[test]
fn spares_go_when_berthd_stops_and_after_it_is_killed() {
    let mut p = PoolDaemon::start(78);
    // A container that outlives the daemon keeps its mount namespace (where the spares'
    // files are mounted) alive: only berthd's sweep can destroy them.
    p.d.docker(&["run", "-d", "--name", "live", "bb:1", "sleep", "1000"])
        .ok();
    assert!(
        eventually(|| p.spare_links().len() == SPARES),
        "{:?}\n{}",
        p.spare_links(),
        p.d.log()
    );
    let left = p.spare_links();
    p.d.kill();
    assert_eq!(p.spare_links(), left, "the spares outlive a killed berthd");
    p.d.spawn(&[
        "--bridge",
        &p.bridge.clone(),
        "--bip",
        &format!("10.213.{}.1/24", p.n),
    ]);
    assert!(
        eventually(|| p.links().iter().all(|l| !left.contains(l))),
        "left: {:?}, now: {:?}",
        left,
        p.links()
    );
    let files = p.spare_files();
    assert!(files.iter().all(|f| !left.contains(f)), "{files:?}");
    // The live container kept its place; a new one gets another address and a new spare.
    let live_ip = p.inspect("live", "{{.NetworkSettings.IPAddress}}");
    p.d.docker(&["run", "-d", "--name", "next", "bb:1", "sleep", "1000"])
        .ok();
    let next_ip = p.inspect("next", "{{.NetworkSettings.IPAddress}}");
    assert_ne!(live_ip, next_ip);
    p.exec("next", &format!("ping -c 1 -W 5 {live_ip}"));
    assert!(
        eventually(|| p.spare_links().len() == SPARES),
        "{:?}",
        p.spare_links()
    );

    // A stop destroys them all.
    let spares = p.spare_links();
    p.d.docker(&["rm", "-f", "live", "next"]).ok();
    p.d.stop();
    let links = p.links();
    assert!(links.iter().all(|l| !spares.contains(l)), "{links:?}");
    assert!(p.spare_files().is_empty(), "{:?}", p.spare_files());
}

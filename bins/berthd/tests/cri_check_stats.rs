//! The CRI's CNI CHECK of restored pods (a pod whose network was broken while berthd was
//! down is NotReady after the restart) and its CPU rate (`usage_nano_cores`), through
//! crictl 1.29 (built from ../shared/peers by scripts/critest.sh --build-only).

mod common;

use std::path::Path;
use std::process::Command;

use common::{busybox_image, crictl_binary, wait_for, Daemon, Out};

/// A berthd with its CRI socket and a CNI bridge network of its own (10.216.x.0/24, apart
/// from the other tests' subnets).
struct Cri {
    d: Daemon,
    dir: tempfile::TempDir,
    bridge: String,
    subnet: String,
}

fn write_conflist(dir: &Path, bridge: &str, subnet: &str, disable_check: bool) {
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "checkstats",
        "disableCheck": disable_check,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                      "dataDir": dir.join("ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    std::fs::write(dir.join("10-cs.conflist"), conf.to_string()).expect("conflist");
}

impl Cri {
    fn start() -> Cri {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let dir = tempfile::tempdir().expect("cni dir");
        let bridge = format!("cc{n}x{}", pid % 100_000);
        let subnet = format!("10.216.{}.0/24", (pid % 50) * 5 + n);
        write_conflist(dir.path(), &bridge, &subnet, false);
        // In the host's mount namespace (as berthd runs under systemd): the pods' namespace
        // files, bind mounts, outlive a killed berthd only there, not in a private one.
        let mut d = Daemon::start_unspawned();
        d.spawn(&Cri::flags(dir.path()).each_ref().map(|s| s.as_str()));
        busybox_image(&d);
        Cri {
            d,
            dir,
            bridge,
            subnet,
        }
    }

    fn flags(dir: &Path) -> [String; 4] {
        [
            "--cni-conf-dir".into(),
            dir.to_string_lossy().into_owned(),
            "--cni-bin-dir".into(),
            "/usr/lib/cni".into(),
        ]
    }

    /// Start berthd again (after a kill) with the CNI configuration as it is now.
    fn respawn(&mut self) {
        let flags = Cri::flags(self.dir.path());
        self.d.spawn(&flags.each_ref().map(|s| s.as_str()));
        // The CRI socket comes up after the restored pods' checks.
        assert!(
            wait_for(|| self.crictl(&["version"]).code == 0),
            "no CRI socket: {}",
            self.d.log()
        );
    }

    fn crictl(&self, args: &[&str]) -> Out {
        let socket = format!("unix://{}", self.d.exec_root().join("cri.sock").display());
        let out = Command::new(crictl_binary())
            .args(["-r", &socket, "-i", &socket, "--timeout", "30s"])
            .args(args)
            .output()
            .expect("crictl");
        Out::from(out)
    }

    fn file(&self, name: &str, v: serde_json::Value) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, v.to_string()).expect("config");
        path.to_string_lossy().into_owned()
    }

    fn pod_config(&self, name: &str) -> String {
        self.file(
            &format!("pod-{name}.json"),
            serde_json::json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "attempt": 0},
                "log_directory": self.dir.path().join("logs").join(name),
                "linux": {},
            }),
        )
    }

    fn run_pod(&self, name: &str) -> String {
        let pod = self.pod_config(name);
        self.crictl(&["runp", &pod]).ok().stdout.trim().to_string()
    }

    fn run(&self, pod: &str, pod_name: &str, name: &str, command: &str) -> String {
        let ctr = self.file(
            &format!("ctr-{name}.json"),
            serde_json::json!({
                "metadata": {"name": name},
                "image": {"image": "bb:1"},
                "command": ["sh", "-c", command],
                "log_path": format!("{name}.log"),
                "linux": {},
            }),
        );
        let pod_config = self.pod_config(pod_name);
        let out = self.crictl(&["create", pod, &ctr, &pod_config]);
        let id = out.ok().stdout.trim().to_string();
        self.crictl(&["start", &id]).ok();
        id
    }

    fn pod_state(&self, pod: &str) -> String {
        let out = self.crictl(&["inspectp", pod]);
        let v: serde_json::Value = serde_json::from_str(&out.ok().stdout).expect("inspectp");
        v["status"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The host side of the pod's veth: the bridge's port whose peer is the pod's eth0.
    fn host_veths(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .output()
            .expect("ip link");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|name| name.split('@').next().unwrap_or(name).to_string())
            .collect()
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        let _ = self.crictl(&["rmp", "--all", "--force"]);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// A number from crictl's JSON (protojson writes 64-bit integers as strings).
fn number(v: &serde_json::Value) -> u64 {
    match v {
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_u64().unwrap_or(0),
    }
}

#[test]
fn a_pod_whose_veth_was_deleted_while_berthd_was_down_is_not_ready() {
    let mut c = Cri::start();
    let broken = c.run_pod("broken");
    assert!(c.host_veths().len() == 1, "{:?}", c.host_veths());
    let veth = c.host_veths().remove(0);
    let intact = c.run_pod("intact");
    c.run(&intact, "intact", "app", "sleep 1004");
    assert_eq!(c.pod_state(&broken), "SANDBOX_READY");
    c.d.kill();
    // Deleting the host end takes its peer, the pod's eth0, with it.
    let out = Command::new("ip")
        .args(["link", "del", &veth])
        .output()
        .expect("ip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.respawn();
    assert_eq!(c.pod_state(&broken), "SANDBOX_NOTREADY");
    assert_eq!(c.pod_state(&intact), "SANDBOX_READY", "{}", c.d.log());
    let ready = c
        .crictl(&["pods", "-q", "--state", "ready"])
        .ok()
        .stdout
        .clone();
    assert!(
        ready.contains(&intact) && !ready.contains(&broken),
        "{ready}"
    );
    let not_ready = c
        .crictl(&["pods", "-q", "--state", "notready"])
        .ok()
        .stdout
        .clone();
    assert!(not_ready.contains(&broken), "{not_ready}");
    // The kubelet's next steps: stop and remove it (CNI DEL of a half-gone network), then
    // a new pod of the same name.
    c.crictl(&["stopp", &broken]).ok();
    c.crictl(&["rmp", &broken]).ok();
    let again = c.run_pod("broken");
    assert_eq!(c.pod_state(&again), "SANDBOX_READY");
}

#[test]
fn a_network_with_disable_check_is_not_checked_at_restore() {
    let mut c = Cri::start();
    let pod = c.run_pod("unchecked");
    let veth = c.host_veths().remove(0);
    c.d.kill();
    let out = Command::new("ip")
        .args(["link", "del", &veth])
        .output()
        .expect("ip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write_conflist(c.dir.path(), &c.bridge, &c.subnet, true);
    c.respawn();
    assert_eq!(c.pod_state(&pod), "SANDBOX_READY");
}

#[test]
fn cpu_usage_in_nano_cores_is_the_rate_since_the_previous_call() {
    let c = Cri::start();
    let pod = c.run_pod("busy");
    let id = c.run(&pod, "busy", "spin", "while :; do :; done");
    let cpu = |args: &[&str], pick: &dyn Fn(&serde_json::Value) -> serde_json::Value| {
        let out = c.crictl(args);
        let v: serde_json::Value = serde_json::from_str(&out.ok().stdout).expect("stats json");
        let cpu = pick(&v);
        (
            number(&cpu["usageCoreNanoSeconds"]["value"]),
            cpu["usageNanoCores"]["value"].clone(),
        )
    };
    let container = |v: &serde_json::Value| v["stats"][0]["cpu"].clone();
    let pod_cpu = |v: &serde_json::Value| v["stats"][0]["linux"]["cpu"].clone();
    let container_args = ["stats", "-o", "json", "--id", id.as_str()];
    let pod_args = ["statsp", "-o", "json", "--id", pod.as_str()];
    // The first call has no previous reading: 0, as containerd gives.
    let (first_total, first) = cpu(&container_args, &container);
    assert_eq!(number(&first), 0, "{first}");
    let (_, pod_first) = cpu(&pod_args, &pod_cpu);
    assert_eq!(number(&pod_first), 0, "{pod_first}");
    // Wait until the cumulative usage has grown, then the rate is that growth over time.
    let mut rate = 0;
    let mut pod_rate = 0;
    assert!(wait_for(|| {
        let (total, r) = cpu(&container_args, &container);
        rate = number(&r);
        pod_rate = number(&cpu(&pod_args, &pod_cpu).1);
        total > first_total && rate > 0 && pod_rate > 0
    }));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert!(
        rate <= cores * 1_000_000_000,
        "{rate} nanocores on {cores} cores"
    );
    assert!(
        pod_rate <= cores * 1_000_000_000,
        "{pod_rate} on {cores} cores"
    );
}

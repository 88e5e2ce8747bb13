//! The Kubernetes CRI through cri-tools' own client, crictl 1.29 (built from
//! ../shared/peers by scripts/critest.sh --build-only): pods on a private CNI bridge, their
//! containers, logs in the kubelet's format, exec, the pod's shared namespaces, berthd
//! restarts, bad requests, and the wall between CRI and Docker objects.

mod common;

use std::path::Path;
use std::process::Command;

use common::{busybox_image, crictl_binary, wait_for, CgroupParents, Daemon, Out};

/// A berthd with its CRI socket and a CNI bridge network of its own.
struct Cri {
    d: Daemon,
    cni: tempfile::TempDir,
    bridge: String,
    subnet: String,
    /// The daemon's cgroup parent, where pods that name none go (removed after the daemon).
    cgroups: CgroupParents,
}

fn next_net() -> (String, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    (
        format!("cr{n}x{}", pid % 100_000),
        format!("10.212.{}.0/24", (pid % 50) * 5 + n),
    )
}

fn write_conflist(dir: &Path, bridge: &str, subnet: &str, first_plugin: &str) {
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "crit",
        "plugins": [
            {"type": first_plugin, "bridge": bridge, "isGateway": true, "ipMasq": false,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                      "dataDir": dir.join("ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    std::fs::write(dir.join("10-crit.conflist"), conf.to_string()).expect("conflist");
}

impl Cri {
    fn start() -> Cri {
        Cri::start_with_plugin("bridge")
    }

    /// `first_plugin`: the CNI plugin type of the network (a missing one makes pods fail).
    fn start_with_plugin(first_plugin: &str) -> Cri {
        Cri::start_with(first_plugin, false)
    }

    /// berthd in the host's mount namespace (as under systemd), not a private one: the pods'
    /// namespace files (bind mounts) outlive a killed berthd only there, and berthd checks
    /// a restored pod's network (CNI CHECK) in its namespace file.
    fn start_in_host_mounts() -> Cri {
        Cri::start_with("bridge", true)
    }

    fn start_with(first_plugin: &str, host_mounts: bool) -> Cri {
        let cni = tempfile::tempdir().expect("cni dir");
        let (bridge, subnet) = next_net();
        write_conflist(cni.path(), &bridge, &subnet, first_plugin);
        let conf = cni.path().to_string_lossy().into_owned();
        let cgroups = CgroupParents(vec![format!("/berth-test-{bridge}")]);
        let flags = [
            "--cni-conf-dir",
            &conf,
            "--cni-bin-dir",
            "/usr/lib/cni",
            "--cgroup-parent",
            &cgroups.0[0],
        ];
        let d = if host_mounts {
            let mut d = Daemon::start_unspawned();
            d.spawn(&flags);
            d
        } else {
            Daemon::start_for_containers_with(&flags)
        };
        busybox_image(&d);
        Cri {
            d,
            cni,
            bridge,
            subnet,
            cgroups,
        }
    }

    fn socket(&self) -> String {
        format!("unix://{}", self.d.exec_root().join("cri.sock").display())
    }

    fn crictl(&self, args: &[&str]) -> Out {
        let out = Command::new(crictl_binary())
            .args([
                "-r",
                &self.socket(),
                "-i",
                &self.socket(),
                "--timeout",
                "30s",
            ])
            .args(args)
            .output()
            .expect("crictl");
        Out::from(out)
    }

    /// A JSON config file for crictl.
    fn file(&self, name: &str, v: serde_json::Value) -> String {
        let path = self.cni.path().join(name);
        std::fs::write(&path, v.to_string()).expect("config");
        path.to_string_lossy().into_owned()
    }

    fn pod_config(&self, name: &str) -> String {
        let logs = self.cni.path().join("logs").join(name);
        self.file(
            &format!("pod-{name}.json"),
            serde_json::json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "attempt": 0},
                "hostname": format!("{name}-host"),
                "log_directory": logs,
                "linux": {},
            }),
        )
    }

    fn container_config(&self, name: &str, command: &str) -> String {
        self.file(
            &format!("ctr-{name}.json"),
            serde_json::json!({
                "metadata": {"name": name},
                "image": {"image": "bb:1"},
                "command": ["sh", "-c", command],
                "log_path": format!("{name}.log"),
                "linux": {},
            }),
        )
    }

    fn run_pod(&self, name: &str) -> String {
        let pod = self.pod_config(name);
        self.crictl(&["runp", &pod]).ok().stdout.trim().to_string()
    }

    /// A started container in `pod`.
    fn run(&self, pod: &str, pod_name: &str, name: &str, command: &str) -> String {
        let ctr = self.container_config(name, command);
        let pod_config = self.pod_config(pod_name);
        let id = self
            .crictl(&["create", pod, &ctr, &pod_config])
            .ok()
            .stdout
            .trim()
            .to_string();
        self.crictl(&["start", &id]).ok();
        id
    }

    /// Start berthd again (after a kill or stop) with the same CNI configuration.
    fn respawn(&mut self) {
        let conf = self.cni.path().to_string_lossy().into_owned();
        self.d.spawn(&[
            "--cni-conf-dir",
            &conf,
            "--cni-bin-dir",
            "/usr/lib/cni",
            "--cgroup-parent",
            &self.cgroups.0[0],
        ]);
        // The CRI socket comes up after the restored pods' network checks.
        assert!(
            wait_for(|| self.crictl(&["version"]).code == 0),
            "no CRI socket: {}",
            self.d.log()
        );
    }

    /// No pod directory (namespace files, /etc files, /dev/shm) is left in the exec root.
    fn assert_no_pod_state_left(&self) {
        let pods_dir = self.d.exec_root().join("cri/pods");
        let left: Vec<_> = std::fs::read_dir(&pods_dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    fn log_of(&self, pod_name: &str, name: &str) -> String {
        let path = self
            .cni
            .path()
            .join("logs")
            .join(pod_name)
            .join(format!("{name}.log"));
        std::fs::read_to_string(path).unwrap_or_default()
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        // Pods first: their containers are not the Docker API's to remove.
        let _ = self.crictl(&["rmp", "--all", "--force"]);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

#[test]
fn crictl_runs_a_pod_with_a_container_and_cleans_up() {
    let c = Cri::start();
    let pod = c.run_pod("web");
    let status: serde_json::Value =
        serde_json::from_str(&c.crictl(&["inspectp", &pod]).ok().stdout).expect("inspectp");
    assert_eq!(status["status"]["state"], "SANDBOX_READY");
    let ip = status["status"]["network"]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let prefix = c.subnet.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "{ip} not in {}", c.subnet);

    let id = c.run(&pod, "web", "app", "echo hello; hostname; sleep 1000");
    assert!(wait_for(|| c.log_of("web", "app").contains("web-host")));
    let log = c.log_of("web", "app");
    let first = log.lines().next().unwrap_or_default();
    let fields: Vec<&str> = first.splitn(4, ' ').collect();
    assert_eq!(fields[1..], ["stdout", "F", "hello"], "{log}");
    assert!(c.crictl(&["logs", &id]).ok().stdout.contains("hello"));

    // crictl reports the exit code and standard error of a failed command.
    c.crictl(&["exec", "-s", &id, "sh", "-c", "echo err >&2; exit 3"])
        .failed_with("exited with 3: err");
    let out = c.crictl(&["exec", "-s", &id, "sh", "-c", "echo out"]);
    assert_eq!(out.ok().stdout.trim(), "out");
    let addr = c.crictl(&["exec", "-s", &id, "ip", "-4", "addr", "show", "eth0"]);
    assert!(addr.ok().stdout.contains(&ip), "{}", addr.stdout);

    let stats: serde_json::Value =
        serde_json::from_str(&c.crictl(&["stats", "-o", "json", &id]).ok().stdout).expect("stats");
    let sample = &stats["stats"][0];
    assert_eq!(sample["attributes"]["id"], id.as_str());
    let working_set = sample["memory"]["workingSetBytes"]["value"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(working_set > 0, "{stats}");

    let pod_stats: serde_json::Value =
        serde_json::from_str(&c.crictl(&["statsp", "-o", "json", &pod]).ok().stdout)
            .expect("statsp");
    let pod_sample = &pod_stats["stats"][0];
    assert_eq!(pod_sample["attributes"]["id"], pod.as_str(), "{pod_stats}");
    assert_eq!(
        pod_sample["linux"]["containers"][0]["attributes"]["id"],
        id.as_str()
    );
    assert_eq!(
        pod_sample["linux"]["network"]["defaultInterface"]["name"],
        "eth0"
    );

    // UpdateContainerResources, seen by the Docker API through the full id.
    c.crictl(&["update", "--memory", "67108864", &id]).ok();
    let memory =
        c.d.docker(&["inspect", "-f", "{{.HostConfig.Memory}}", &id])
            .ok()
            .stdout
            .trim()
            .to_string();
    assert_eq!(memory, "67108864");

    let listed = c.crictl(&["ps", "-q"]).ok().stdout.clone();
    assert!(listed.contains(&id));
    // Docker's side does not see it, unless asked by a Kubernetes label, nor reaches it by
    // its name or short id.
    assert!(!c
        .d
        .docker(&["ps", "-aq", "--no-trunc"])
        .ok()
        .stdout
        .contains(&id));
    assert!(c
        .d
        .docker(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            "label=io.kubernetes.pod.name=web"
        ])
        .ok()
        .stdout
        .contains(&id));
    c.d.docker(&["stop", "k8s_app_web_default_uid-web_0"])
        .failed_with("No such container");
    c.d.docker(&["stop", &id[..12]])
        .failed_with("No such container");

    c.crictl(&["stop", &id]).ok();
    let state: serde_json::Value =
        serde_json::from_str(&c.crictl(&["inspect", &id]).ok().stdout).expect("inspect");
    assert_eq!(state["status"]["state"], "CONTAINER_EXITED");
    c.crictl(&["rm", &id]).ok();
    c.crictl(&["stopp", &pod]).ok();
    c.crictl(&["rmp", &pod]).ok();
    assert!(c.crictl(&["pods", "-q"]).ok().stdout.trim().is_empty());
    c.assert_no_pod_state_left();
}

#[test]
fn a_pods_containers_share_its_network_ipc_uts_and_pid_namespaces() {
    let c = Cri::start();
    let pod = c.run_pod("shared");
    let a = c.run(
        &pod,
        "shared",
        "a",
        "echo shared > /dev/shm/note; sleep 1001",
    );
    let b = c.run(&pod, "shared", "b", "sleep 1002");
    // b sees a's process: one pid namespace, whose pid 1 is the pod's holder.
    let ps = c.crictl(&["exec", "-s", &b, "ps"]).ok().stdout.clone();
    assert!(ps.contains("sleep 1001"), "{ps}");
    assert!(
        ps.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("berth-pause")),
        "{ps}"
    );
    for (what, cmd) in [
        ("network", "readlink /proc/self/ns/net"),
        ("ipc", "readlink /proc/self/ns/ipc"),
        ("uts", "readlink /proc/self/ns/uts"),
    ] {
        let of = |id: &str| {
            c.crictl(&["exec", "-s", id, "sh", "-c", cmd])
                .ok()
                .stdout
                .clone()
        };
        assert_eq!(of(&a), of(&b), "{what}");
    }
    assert_eq!(
        c.crictl(&["exec", "-s", &a, "hostname"]).ok().stdout.trim(),
        "shared-host"
    );
    // One /dev/shm for the pod, as its IPC namespace is one.
    assert!(wait_for(|| c
        .crictl(&["exec", "-s", &b, "cat", "/dev/shm/note"])
        .stdout
        .contains("shared")));
}

#[test]
fn pods_and_their_containers_survive_a_berthd_kill() {
    let mut c = Cri::start_in_host_mounts();
    let pod = c.run_pod("kept");
    let id = c.run(&pod, "kept", "app", "sleep 1003");
    c.d.kill();
    c.respawn();
    let pods = c
        .crictl(&["pods", "-q", "--state", "ready"])
        .ok()
        .stdout
        .clone();
    assert!(pods.contains(&pod), "{pods}");
    let state: serde_json::Value =
        serde_json::from_str(&c.crictl(&["inspect", &id]).ok().stdout).expect("inspect");
    assert_eq!(state["status"]["state"], "CONTAINER_RUNNING");
    c.crictl(&["exec", "-s", &id, "true"]).ok();
}

#[test]
fn bad_requests_get_clear_errors_and_leave_nothing() {
    let c = Cri::start();
    let ctr = c.container_config("x", "true");
    let pod_config = c.pod_config("p");
    c.crictl(&["create", "0123456789ab", &ctr, &pod_config])
        .failed_with("not found");
    let pod = c.run_pod("p");
    // The same pod (name, namespace, uid, attempt) twice.
    c.crictl(&["runp", &pod_config]).failed_with("reserved");
    let missing = c.file(
        "ctr-missing.json",
        serde_json::json!({"metadata": {"name": "m"}, "image": {"image": "nosuch:1"}, "linux": {}}),
    );
    c.crictl(&["create", &pod, &missing, &pod_config])
        .failed_with("not found");
    let other = c.pod_config("h");
    c.crictl(&["runp", "--runtime", "nosuchruntime", &other])
        .failed_with("nosuchruntime");
    assert_eq!(c.crictl(&["pods", "-q"]).ok().stdout.trim(), pod);
}

#[test]
fn a_failing_cni_plugin_fails_the_pod_and_leaves_nothing() {
    let c = Cri::start_with_plugin("nosuchplugin");
    let pod_config = c.pod_config("broken");
    c.crictl(&["runp", &pod_config]).failed_with("nosuchplugin");
    assert!(c.crictl(&["pods", "-q"]).ok().stdout.trim().is_empty());
    c.assert_no_pod_state_left();
}

#[test]
fn exec_attach_and_port_forward_stream_through_crictl() {
    let c = Cri::start();
    let pod = c.run_pod("stream");
    let web = c.run(
        &pod,
        "stream",
        "web",
        "mkdir -p /www; echo page > /www/index.html; httpd -f -p 8080 -h /www",
    );
    let tick = c.run(
        &pod,
        "stream",
        "tick",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    );
    // exec: output, standard input to its end, the exit code.
    let out = c.crictl(&["exec", &web, "sh", "-c", "echo streamed; exit 4"]);
    out.failed_with("exit code 4");
    assert!(out.stdout.contains("streamed"), "{}", out.stdout);
    let typed = Command::new(crictl_binary())
        .args([
            "-r",
            &c.socket(),
            "-i",
            &c.socket(),
            "exec",
            "-i",
            &web,
            "cat",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b"typed input\n")?;
            child.wait_with_output()
        })
        .expect("crictl exec -i");
    assert_eq!(String::from_utf8_lossy(&typed.stdout), "typed input\n");
    // attach: the running process's output as it comes.
    let attach = Command::new("timeout")
        .args(["3"])
        .arg(crictl_binary())
        .args(["-r", &c.socket(), "-i", &c.socket(), "attach", &tick])
        .output()
        .expect("attach");
    assert!(
        String::from_utf8_lossy(&attach.stdout).contains("tick"),
        "{}",
        String::from_utf8_lossy(&attach.stderr)
    );
    // port-forward: a local port reaches the pod's loopback.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let mut forward = Command::new(crictl_binary())
        .args(["-r", &c.socket(), "-i", &c.socket(), "port-forward", &pod])
        .arg(format!("{port}:8080"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("port-forward");
    let mut page = String::new();
    let fetched = wait_for(|| {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        // The response ends with the pod's side closing (a hang here is a lost FIN).
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
        let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
        page.clear();
        s.read_to_string(&mut page).is_ok() && page.contains("page")
    });
    let _ = forward.kill();
    let _ = forward.wait();
    assert!(fetched, "{page}");
}

#[test]
fn what_a_pod_without_a_record_left_is_removed_at_start() {
    let mut c = Cri::start();
    let pod = c.run_pod("kept");
    c.d.stop();
    // As a crash between pinning a pod's namespaces and saving its record leaves it.
    let orphan = c.d.exec_root().join("cri/pods").join("0".repeat(64));
    std::fs::create_dir_all(orphan.join("etc")).expect("orphan dir");
    std::fs::write(orphan.join("net"), b"").expect("net file");
    c.respawn();
    assert!(wait_for(|| !orphan.exists()), "the orphan stays");
    assert!(
        c.d.exec_root().join("cri/pods").join(&pod).exists(),
        "a recorded pod went"
    );
    assert!(c.crictl(&["pods", "-q"]).ok().stdout.contains(&pod));
}

#[test]
fn container_events_stream_as_the_evented_pleg_reads_them() {
    let c = Cri::start();
    let pod = c.run_pod("evented");
    let mut events = Command::new(crictl_binary())
        .args(["-r", &c.socket(), "-i", &c.socket(), "events", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("crictl events");
    // Give the subscription a moment to be made before the container's life begins.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let id = c.run(&pod, "evented", "app", "sleep 1004");
    c.crictl(&["stop", "-t", "0", &id]).ok();
    c.crictl(&["rm", &id]).ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = events.kill();
    let out = events.wait_with_output().expect("events output");
    let text = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "CONTAINER_CREATED_EVENT",
        "CONTAINER_STARTED_EVENT",
        "CONTAINER_STOPPED_EVENT",
        "CONTAINER_DELETED_EVENT",
    ] {
        assert!(text.contains(kind), "no {kind} in {text}");
    }
    assert!(text.contains(&id) && text.contains(&pod), "{text}");
}

#[test]
fn a_container_can_target_another_ones_pid_namespace() {
    let c = Cri::start();
    // Pid namespaces per container (CONTAINER = 1), as the kubelet asks by default.
    let pod_config = c.file(
        "pod-target.json",
        serde_json::json!({
            "metadata": {"name": "target", "namespace": "default", "uid": "uid-target", "attempt": 0},
            "linux": {"security_context": {"namespace_options": {"pid": 1}}},
        }),
    );
    let pod = c
        .crictl(&["runp", &pod_config])
        .ok()
        .stdout
        .trim()
        .to_string();
    let start = |name: &str, command: &str, options: serde_json::Value| {
        let ctr = c.file(
            &format!("ctr-{name}.json"),
            serde_json::json!({
                "metadata": {"name": name},
                "image": {"image": "bb:1"},
                "command": ["sh", "-c", command],
                "linux": {"security_context": {"namespace_options": options}},
            }),
        );
        let id = c
            .crictl(&["create", &pod, &ctr, &pod_config])
            .ok()
            .stdout
            .trim()
            .to_string();
        c.crictl(&["start", &id]).ok();
        id
    };
    let a = start("a", "sleep 1005", serde_json::json!({"pid": 1}));
    let own = start("own", "sleep 1006", serde_json::json!({"pid": 1}));
    // TARGET = 3: a's pid namespace.
    let b = start(
        "b",
        "sleep 1007",
        serde_json::json!({"pid": 3, "target_id": a}),
    );
    let ps = c.crictl(&["exec", "-s", &b, "ps"]).ok().stdout.clone();
    assert!(
        ps.contains("sleep 1005") && ps.contains("sleep 1007"),
        "{ps}"
    );
    let ps = c.crictl(&["exec", "-s", &own, "ps"]).ok().stdout.clone();
    assert!(!ps.contains("sleep 1005"), "{ps}");
    // A target that does not exist.
    let ctr = c.file(
        "ctr-lost.json",
        serde_json::json!({
            "metadata": {"name": "lost"},
            "image": {"image": "bb:1"},
            "linux": {"security_context": {"namespace_options": {"pid": 3, "target_id": "0123456789ab"}}},
        }),
    );
    c.crictl(&["create", &pod, &ctr, &pod_config])
        .failed_with("target container");
}

#[test]
fn removing_a_pod_with_running_containers_removes_them_all() {
    let c = Cri::start();
    let pod = c.run_pod("busy");
    c.run(&pod, "busy", "a", "sleep 1008");
    c.run(&pod, "busy", "b", "sleep 1009");
    c.crictl(&["rmp", "-f", &pod]).ok();
    assert!(c.crictl(&["ps", "-aq"]).ok().stdout.trim().is_empty());
    assert!(c.crictl(&["pods", "-q"]).ok().stdout.trim().is_empty());
    c.assert_no_pod_state_left();
    // Nothing of them is left for the Docker API either.
    let all =
        c.d.docker(&["ps", "-aq", "--filter", "label=io.kubernetes.pod.name=busy"])
            .ok()
            .stdout
            .clone();
    assert!(all.trim().is_empty(), "{all}");
}

#[test]
fn a_pod_with_a_long_name_and_no_hostname_gets_the_nodes_name() {
    let c = Cri::start();
    // critest's pods have names longer than a hostname may be (64 bytes), and no hostname.
    let name = format!(
        "create-PodSandbox-for-container-{}",
        "0123456789-".repeat(4)
    );
    assert!(name.len() > 64);
    let pod_config = c.file(
        "pod-long.json",
        serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": "uid-long", "attempt": 0},
            "log_directory": c.cni.path().join("logs").join("long"),
            "linux": {},
        }),
    );
    let pod = c
        .crictl(&["runp", &pod_config])
        .ok()
        .stdout
        .trim()
        .to_string();
    let ctr = c.container_config("h", "sleep 1010");
    let id = c
        .crictl(&["create", &pod, &ctr, &pod_config])
        .ok()
        .stdout
        .trim()
        .to_string();
    c.crictl(&["start", &id]).ok();
    let node = nix::unistd::gethostname()
        .expect("hostname")
        .to_string_lossy()
        .into_owned();
    let host = c
        .crictl(&["exec", "-s", &id, "hostname"])
        .ok()
        .stdout
        .clone();
    assert_eq!(
        host.trim(),
        node,
        "as containerd names a pod given no hostname"
    );
}

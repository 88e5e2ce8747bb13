//! runtime-spec 1.2 features beyond the basics (issue 19): process.ioPriority,
//! process.scheduler, process.execCPUAffinity, linux.personality, linux.memoryPolicy,
//! linux.intelRdt, linux.netDevices, and a time namespace inside a user namespace. Each
//! setting is read back from inside the container.

mod common;

use common::*;
use serde_json::json;

/// Item: a time namespace with clock offsets in a new user namespace. The offsets were
/// written by stage 1 after it became root of the new user namespace, on a /proc file the
/// host's root owns (stage 1 is not dumpable): EACCES.
#[test]
fn time_offsets_in_a_user_namespace() {
    let mut world = World::new("cut -d. -f1 /proc/uptime");
    world.map_users();
    world.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    });
    let out = world.run("timens-userns");
    out.ok();
    let inside: u64 = out.stdout.trim().parse().expect("uptime");
    assert!(inside >= 86400000, "boottime offset not applied: {inside}");
    world.assert_no_state();
}

/// Fields of /proc/<pid>/stat after the command name: priority, nice, rt_priority, policy.
const SCHED_FIELDS: &str = "sed 's/^.*) //' /proc/$$/stat | cut -d' ' -f16,17,38,39";

/// process.scheduler, process.ioPriority and linux.personality, read back inside: the
/// stat fields of the scheduler, busybox's ionice, and uname's machine under LINUX32.
#[test]
fn scheduler_io_priority_and_personality_inside_the_container() {
    let mut world = World::new(&format!("{SCHED_FIELDS}; ionice -p $$; uname -m"));
    world.edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 10,
            "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 3});
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
        // A v1 cpu controller with real-time group scheduling (this host's) gives a new
        // cgroup no real-time time: the config must ask for some.
        c["linux"]["resources"]["cpu"] = json!({"realtimeRuntime": 10000});
    });
    let out = world.run("sched1");
    out.ok();
    // SCHED_RR (2) at rt_priority 10 shows as priority -11; uname says a 32-bit machine.
    assert_eq!(out.stdout, "-11 0 10 2\nrealtime: prio 3\ni686\n");

    world.edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        c["linux"]["personality"] = json!({"domain": "LINUX"});
    });
    let out = world.run("sched2");
    out.ok();
    assert_eq!(out.stdout, "27 7 0 3\nidle\nx86_64\n");
}

/// What crun 1.8.1 implements of the same fields (personality) gives the same answer.
#[test]
fn personality_matches_crun() {
    let mut world = World::new("uname -m");
    world.edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX32"}));
    let ours = world.run("pers");
    ours.ok();
    let theirs = crun_run(&world, "pers");
    assert_eq!(theirs.code, 0, "crun: {theirs:?}");
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(ours.stdout, "i686\n");
}

/// A value the kernel would refuse is refused at create, naming the field and the value,
/// and nothing is left behind.
#[test]
fn bad_values_are_refused_naming_field_and_value() {
    let cases: [(&str, serde_json::Value, &str); 9] = [
        (
            "/process/ioPriority",
            json!({"class": "IOPRIO_CLASS_BE", "priority": 9}),
            "process.ioPriority.priority 9",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_FIFO"}),
            "process.scheduler: priority 0: SCHED_FIFO needs 1 to 99",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_OTHER", "nice": -30}),
            "nice -30",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_BOGUS"]}),
            "SCHED_FLAG_BOGUS",
        ),
        (
            "/linux/personality",
            json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}),
            "linux.personality.flags [\"ADDR_NO_RANDOMIZE\"]",
        ),
        (
            "/linux/memoryPolicy",
            json!({"mode": "MPOL_BIND"}),
            "MPOL_BIND needs at least one node",
        ),
        (
            "/linux/memoryPolicy",
            json!({"mode": "MPOL_BIND", "nodes": "0-1,4096"}),
            "linux.memoryPolicy.nodes \"0-1,4096\": this host has no memory node 1",
        ),
        (
            "/process/execCPUAffinity",
            json!({"initial": "3-1"}),
            "process.execCPUAffinity.initial \"3-1\": range \"3-1\" runs backwards",
        ),
        (
            "/linux/netDevices",
            json!({"d0": {"name": "a/b"}}),
            "linux.netDevices[\"d0\"].name \"a/b\" is not a valid network device name",
        ),
    ];
    for (i, (pointer, value, needle)) in cases.into_iter().enumerate() {
        let mut world = World::new("true");
        world.edit(|c| {
            let (parent, key) = pointer.rsplit_once('/').expect("pointer");
            c.pointer_mut(parent).expect("parent")[key] = value.clone();
        });
        let bundle = world.bundle().to_str().expect("utf8").to_string();
        let out = world.cmd(&["create", "--bundle", &bundle, &format!("bad{i}")]);
        out.failed();
        // The log line quotes the message: its own quotes come escaped.
        let message = out.stderr.replace("\\\"", "\"");
        assert!(message.contains(needle), "{pointer} {value}: {message}");
        world.assert_no_state();
    }
}

/// Whether the host has a resctrl filesystem mounted.
fn resctrl_mount() -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split(' ').next() == Some("resctrl"))
            .then(|| left.split(' ').nth(4).map(String::from))?
    })
}

/// linux.intelRdt: without resctrl (this VM: no RDT hardware) create fails with an error
/// that says so, as runtime-spec requires. With it, init is in a group of its own, which
/// delete removes.
#[test]
fn intel_rdt_needs_resctrl() {
    let mut world = World::new("sleep 10");
    world.edit(|c| c["linux"]["intelRdt"] = json!({}));
    let bundle = world.bundle().to_str().expect("utf8").to_string();
    match resctrl_mount() {
        None => {
            let out = world.cmd(&["create", "--bundle", &bundle, "rdt"]);
            out.failed();
            assert!(
                out.stderr.contains("linux.intelRdt")
                    && out.stderr.contains("no resctrl filesystem mounted"),
                "{}",
                out.stderr
            );
            world.assert_no_state();
        }
        Some(root) => {
            world.cmd(&["create", "--bundle", &bundle, "rdt"]).ok();
            let pid = world.state("rdt")["pid"].as_i64().expect("pid");
            let group = std::path::Path::new(&root).join("rdt");
            let tasks = std::fs::read_to_string(group.join("tasks")).expect("tasks");
            assert!(tasks.lines().any(|l| l == pid.to_string()), "{tasks}");
            world.cmd(&["delete", "--force", "rdt"]).ok();
            reap(pid as i32);
            assert!(!group.exists(), "the resctrl group was left behind");
        }
    }
}

/// linux.memoryPolicy, read back from numa_maps (which shows the task's policy for
/// mappings without one of their own). runc 1.1.5 and crun 1.8.1 ignore the field: their
/// containers show "default".
#[test]
fn memory_policy_inside_the_container() {
    let mut world = World::new("head -1 /proc/self/numa_maps | cut -d' ' -f2");
    for (i, (policy, shown)) in [
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "bind=static:0",
        ),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            "interleave:0",
        ),
        (json!({"mode": "MPOL_PREFERRED", "nodes": "0"}), "prefer:0"),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
        (json!({"mode": "MPOL_DEFAULT"}), "default"),
    ]
    .into_iter()
    .enumerate()
    {
        world.edit(|c| c["linux"]["memoryPolicy"] = policy.clone());
        let out = world.run(&format!("mpol{i}"));
        out.ok();
        assert_eq!(out.stdout.trim(), shown, "{policy}");
    }
}

/// The CPUs a process may run on, from its status.
fn cpus_of(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Two CPUs of this host (the machines have two cores).
fn two_cpus() -> (usize, usize) {
    let ours = std::fs::read_to_string("/proc/self/status").expect("status");
    let list = cpus_of(&ours);
    let first: Vec<usize> = list
        .split(',')
        .flat_map(|r| match r.split_once('-') {
            Some((a, b)) => (a.parse().expect("cpu")..=b.parse().expect("cpu")).collect(),
            None => vec![r.parse().expect("cpu")],
        })
        .collect();
    assert!(first.len() >= 2, "this test needs two CPUs, has {list}");
    (first[0], first[1])
}

/// process.execCPUAffinity: not init's; an exec'd process ends on `final` (after the
/// cgroup v1 cpuset reset its affinity when it joined); its own process.json's affinity
/// wins over the container's. runc 1.1.5 and crun 1.8.1 do not implement the field.
#[test]
fn exec_cpu_affinity_applies_to_exec_not_init() {
    let (a, b) = two_cpus();
    let mut world = World::new("sleep 30");
    world.edit(|c| {
        c["process"]["execCPUAffinity"] = json!({"initial": a.to_string(), "final": b.to_string()});
    });
    let bundle = world.bundle().to_str().expect("utf8").to_string();
    world.cmd(&["run", "-d", "--bundle", &bundle, "aff"]).ok();
    let pid = world.state("aff")["pid"].as_i64().expect("pid") as i32;
    let init = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert_eq!(
        cpus_of(&init),
        format!("{a}-{b}"),
        "init's affinity was changed"
    );
    let out = world.cmd(&["exec", "aff", "cat", "/proc/self/status"]);
    out.ok();
    assert_eq!(cpus_of(&out.stdout), b.to_string());

    let mut process = world.config["process"].clone();
    process["args"] = json!(["cat", "/proc/self/status"]);
    process["execCPUAffinity"] = json!({"final": a.to_string()});
    let path = world.dir.path().join("process.json");
    std::fs::write(&path, process.to_string()).expect("process.json");
    let out = world.cmd(&["exec", "--process", path.to_str().expect("utf8"), "aff"]);
    out.ok();
    assert_eq!(cpus_of(&out.stdout), a.to_string());
    world.cmd(&["delete", "--force", "aff"]).ok();
    reap(pid);
}

/// A wrapper that runs berth-runtime with only cgroup2 at /sys/fs/cgroup (no cpuset
/// controller there), as in cgroup_v2.rs.
fn v2_runtime(world: &World) -> std::path::PathBuf {
    let path = world.dir.path().join("runtime-v2");
    script(
        &path,
        &format!(
            "exec unshare --mount --propagation private sh -c \
             'umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" \"$@\"' {BIN} \"$@\""
        ),
    );
    path
}

/// Without `final`, the affinity after the cgroup join is left as it is: with no cpuset
/// to reset it, the exec'd process keeps `initial`, which the runtime's side of the exec
/// had before it joined.
#[test]
fn exec_cpu_affinity_initial_is_kept_without_final() {
    let (_, b) = two_cpus();
    let mut world = World::new("sleep 30");
    world.edit(|c| {
        c["process"]["execCPUAffinity"] = json!({"initial": b.to_string()});
        c["linux"]["cgroupsPath"] = json!(format!("/berth-test-aff-{}", std::process::id()));
    });
    let runtime = v2_runtime(&world);
    let runtime = runtime.to_str().expect("utf8");
    let root = world.root();
    let bundle = world.bundle().to_str().expect("utf8").to_string();
    world
        .cmd_with(runtime, &root, &["run", "-d", "--bundle", &bundle, "aff2"])
        .ok();
    let pid = world.state("aff2")["pid"].as_i64().expect("pid") as i32;
    let out = world.cmd_with(
        runtime,
        &root,
        &["exec", "aff2", "cat", "/proc/self/status"],
    );
    out.ok();
    assert_eq!(cpus_of(&out.stdout), b.to_string());
    world
        .cmd_with(runtime, &root, &["delete", "--force", "aff2"])
        .ok();
    reap(pid);
}

/// A network namespace of the test's own (`ip netns add`), deleted on drop, so that no
/// device of the host is touched.
struct TestNetns(String);

impl TestNetns {
    fn new(tag: &str) -> Self {
        let name = format!("berth-sf-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        TestNetns(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    /// `ip -n <ns> args`, which must succeed.
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.0];
        all.extend_from_slice(args);
        ip(&all)
    }

    fn has_link(&self, name: &str) -> bool {
        std::process::Command::new("ip")
            .args(["-n", &self.0, "link", "show", name])
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("ip")
            .success()
    }

    /// A berth-runtime that runs in this namespace (nsenter only switches the network
    /// namespace; `ip netns exec` would also remount /sys and lose the cgroup mounts).
    fn runtime(&self, world: &World) -> std::path::PathBuf {
        let path = world.dir.path().join(format!("runtime-{}", self.0));
        script(
            &path,
            &format!("exec nsenter --net={} {BIN} \"$@\"", self.path()),
        );
        path
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// linux.netDevices: a veth device of the runtime's network namespace is moved into the
/// container's, renamed, with its permanent global addresses (not the link-local one),
/// and up. At delete nothing moves it back: the kernel destroys a virtual device with its
/// namespace (a veth pair, both ends) (physical ones return to the host's initial namespace), as runtime-spec says.
/// runc 1.1.5 and crun 1.8.1 do not implement the field.
#[test]
fn net_devices_are_moved_renamed_with_their_addresses() {
    let ns = TestNetns::new("mv");
    // This VM's kernel has veth built in, not dummy.
    ns.ip(&[
        "link", "add", "bsf0", "type", "veth", "peer", "name", "bsf0p",
    ]);
    ns.ip(&["addr", "add", "10.99.7.1/24", "dev", "bsf0"]);
    ns.ip(&["addr", "add", "fd00:99:7::1/64", "dev", "bsf0", "nodad"]);
    ns.ip(&[
        "addr",
        "add",
        "169.254.9.9/16",
        "dev",
        "bsf0",
        "scope",
        "link",
    ]);
    ns.ip(&[
        "link", "add", "bsf2", "type", "veth", "peer", "name", "bsf2p",
    ]);
    let mut world = World::new(
        "ip -o link show ctr0 | grep -o '<[^>]*>'; ip -o addr show dev ctr0 | \
         sed 's/.* \\(inet6\\{0,1\\} [^ ]*\\).*/\\1/' | sort; \
         ip -o link show eth0 >/dev/null && echo eth0-numbered; sleep 30",
    );
    world.edit(|c| {
        // The default config has a network namespace already. "%d": the kernel numbers it.
        c["linux"]["netDevices"] = json!({"bsf0": {"name": "ctr0"}, "bsf2": {"name": "eth%d"}});
    });
    let runtime = ns.runtime(&world);
    let runtime = runtime.to_str().expect("utf8");
    let root = world.root();
    let bundle = world.bundle().to_str().expect("utf8").to_string();
    let log = world.dir.path().join("netdev.log");
    let status = std::process::Command::new(runtime)
        .args([
            "--root",
            root.to_str().expect("utf8"),
            "run",
            "-d",
            "--bundle",
            &bundle,
            "nd",
        ])
        .stdout(std::fs::File::create(&log).expect("log"))
        .status()
        .expect("run");
    assert!(status.success());
    let pid = world.state("nd")["pid"].as_i64().expect("pid") as i32;
    assert!(
        wait_until(5, || std::fs::read_to_string(&log)
            .is_ok_and(|s| s.lines().count() >= 4)),
        "{:?}",
        std::fs::read_to_string(&log)
    );
    let seen = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = seen.lines().collect();
    assert!(lines[0].contains("UP"), "{seen}");
    assert_eq!(
        lines[1..],
        [
            "inet 10.99.7.1/24",
            "inet6 fd00:99:7::1/64",
            "eth0-numbered"
        ],
        "{seen}"
    );
    assert!(
        !ns.has_link("bsf0"),
        "the device is still in the runtime's namespace"
    );
    world
        .cmd_with(runtime, &root, &["delete", "--force", "nd"])
        .ok();
    reap(pid);
    assert!(
        wait_until(5, || !ns.has_link("bsf0p") && !ns.has_link("bsf2p")),
        "{}",
        ns.ip(&["link"])
    );
}

/// A device the runtime's namespace lacks, and a name the container's namespace has (lo),
/// fail the create naming the device; nothing is left behind and the device stays.
#[test]
fn net_device_errors_name_the_device() {
    let ns = TestNetns::new("err");
    ns.ip(&[
        "link", "add", "bsf1", "type", "veth", "peer", "name", "bsf1p",
    ]);
    let mut world = World::new("true");
    let runtime = ns.runtime(&world);
    let runtime = runtime.to_str().expect("utf8");
    let root = world.root();
    let bundle = world.bundle().to_str().expect("utf8").to_string();
    for (devices, needle) in [
        (
            json!({"nosuch0": {}}),
            "the runtime's network namespace has no device",
        ),
        (
            json!({"bsf1": {"name": "lo"}}),
            "already has a device of that name",
        ),
    ] {
        world.edit(|c| c["linux"]["netDevices"] = devices.clone());
        let out = world.cmd_with(runtime, &root, &["create", "--bundle", &bundle, "nderr"]);
        out.failed();
        let message = out.stderr.replace("\\\"", "\"");
        assert!(
            message.contains(needle) && message.contains("linux.netDevices"),
            "{message}"
        );
        world.assert_no_state();
    }
    assert!(
        ns.has_link("bsf1"),
        "a device that could not be moved was lost"
    );
    world.edit(|c| {
        c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
        c["linux"]["netDevices"] = json!({"bsf1": {}});
    });
    let out = world.cmd_with(runtime, &root, &["create", "--bundle", &bundle, "nderr"]);
    out.failed();
    assert!(
        out.stderr.contains("needs a network namespace"),
        "{}",
        out.stderr
    );
}

/// `features` lists what is implemented now: intelRdt (schemata, no monitoring), every
/// memory policy mode and flag, netDevices.
#[test]
fn features_list_the_new_fields() {
    let out = std::process::Command::new(BIN)
        .arg("features")
        .output()
        .expect("features");
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let linux = &f["linux"];
    assert_eq!(
        linux["intelRdt"],
        json!({"enabled": true, "schemata": true, "monitoring": false})
    );
    assert_eq!(linux["netDevices"], json!({"enabled": true}));
    assert_eq!(
        linux["memoryPolicy"]["modes"].as_array().map(Vec::len),
        Some(7)
    );
    assert_eq!(
        linux["memoryPolicy"]["flags"].as_array().map(Vec::len),
        Some(3)
    );
}

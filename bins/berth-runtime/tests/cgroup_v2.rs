//! berth-runtime on a pure cgroup v2 host. This host is hybrid, so each command runs in a
//! private mount namespace where /sys/fs/cgroup is this host's cgroup2 hierarchy alone: the
//! runtime sees a v2-only layout. That hierarchy has no controllers enabled, which is
//! enough for what v2 does without them: membership, the device filter (eBPF), freezing,
//! kill and removal.

mod common;

use common::*;
use serde_json::json;

/// A wrapper that runs berth-runtime with only cgroup2 at /sys/fs/cgroup.
fn v2_runtime(world: &World) -> std::path::PathBuf {
    let path = world.dir.path().join("runtime-v2");
    script(
        &path,
        &format!(
            "#!/bin/sh\nexec unshare --mount --propagation private sh -c \
             'umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" \"$@\"' {BIN} \"$@\"\n"
        ),
    );
    path
}

/// The host directory of a cgroup path in the unified hierarchy.
fn unified_dir(path: &str) -> std::path::PathBuf {
    let layout = berth_cgroups::Layout::detect().expect("layout");
    layout.v2().expect("cgroup2").dir_of(path)
}

#[test]
fn device_filter_freezer_kill_and_removal_on_v2() {
    let mut world = World::new(
        "echo ok > /dev/null && echo null-ok; cat /dev/kmsg > /dev/null 2>&1 || echo kmsg-denied; \
         i=0; while :; do i=$((i+1)); echo $i > /tmp/count; done",
    );
    let cgroup_path = format!("/berth-test-v2-{}", std::process::id());
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["cgroupsPath"] = json!(cgroup_path);
        c["linux"]["devices"] =
            json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644}]);
        c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    });
    let runtime = v2_runtime(&world);
    let runtime = runtime.to_str().expect("utf8");
    let root = world.root();
    let cmd = |args: &[&str]| world.cmd_with(runtime, &root, args);
    let log = world.dir.path().join("v2.log");
    let bundle = world.bundle().to_str().expect("utf8");
    // Detached run: the container's output goes to a file we can read.
    let out = std::process::Command::new(runtime)
        .args([
            "--root",
            root.to_str().expect("utf8"),
            "run",
            "-d",
            "--bundle",
            bundle,
            "v2",
        ])
        .stdout(std::fs::File::create(&log).expect("log"))
        .status()
        .expect("run");
    assert!(out.success());
    let pid = world.state("v2")["pid"].as_i64().expect("pid") as i32;
    let dir = unified_dir(&cgroup_path);
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).expect("v2 cgroup");
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    assert!(wait_until(5, || std::fs::read_to_string(&log)
        .is_ok_and(|s| s.contains("kmsg-denied"))));
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "null-ok\nkmsg-denied\n"
    );

    let count = || std::fs::read_to_string(world.rootfs().join("tmp/count")).unwrap_or_default();
    cmd(&["pause", "v2"]).ok();
    assert_eq!(
        std::fs::read_to_string(dir.join("cgroup.freeze"))
            .expect("freeze")
            .trim(),
        "1"
    );
    let frozen_at = count();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(count(), frozen_at, "a paused container kept running");
    cmd(&["resume", "v2"]).ok();
    assert!(wait_until(5, || count() != frozen_at));

    let stats = cmd(&["events", "--stats", "v2"]);
    stats.ok();
    let event: serde_json::Value = serde_json::from_str(&stats.stdout).expect("stats");
    assert!(
        event["data"]["cpu"]["usage"]["total"].as_u64() > Some(0),
        "{event}"
    );

    cmd(&["kill", "v2", "KILL"]).ok();
    reap(pid);
    cmd(&["delete", "v2"]).ok();
    assert!(!dir.exists(), "the v2 cgroup was left behind");
    world.assert_no_state();
}

//! linux.resources and cgroupsPath, seen from inside the container, and the cgroup's
//! removal afterwards. This host is hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified).

mod common;

use common::*;
use serde_json::json;

fn cgroup_dirs_named(name: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroup root")
        .flatten()
    {
        let dir = h.path().join(name.trim_start_matches('/'));
        if dir.is_dir() {
            out.push(dir);
        }
    }
    out
}

#[test]
fn limits_are_visible_inside_and_the_cgroup_is_removed() {
    let mut world = World::new(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
         /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us; grep -c . /proc/self/cgroup",
    );
    let name = format!("/berth-test-limits-{}", std::process::id());
    world.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(name);
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864},
            "pids": {"limit": 42},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000}
        });
    });
    let out = world.run("cg1");
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        ["67108864", "42", "512", "50000"],
        "{}",
        out.stdout
    );
    assert!(cgroup_dirs_named(&name).is_empty(), "cgroup left behind");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    // 30 forks under a limit of 10 (in a child shell: busybox's sh gives up at the first
    // refused fork); once they are done, the kernel's count of refused forks.
    let mut world = World::new(
        "sh -c 'for i in $(seq 30); do sleep 1 & done' 2>/dev/null; sleep 2; cat /sys/fs/cgroup/pids/pids.events",
    );
    world.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 10}}));
    let out = world.run("bomb");
    out.ok();
    let refused: u32 = out
        .stdout
        .trim()
        .strip_prefix("max ")
        .and_then(|n| n.parse().ok())
        .expect("pids.events");
    assert!(refused >= 1, "no fork was refused at the limit: {out:?}");
}

#[test]
fn memory_limit_oom_kills() {
    // Command substitution holds all 200 MB in the shell (init): the OOM killer ends it.
    let mut world = World::new("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived");
    world.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}})
    });
    let out = world.run("oom");
    assert_eq!(out.code, 128 + 9, "init was not OOM-killed: {out:?}");
    assert!(!out.stdout.contains("survived"));
}

#[test]
fn devices_cgroup_denies_what_is_not_allowed() {
    let mut world = World::new(
        "echo ok > /dev/null && echo null-ok; cat /dev/kmsg > /dev/null 2>&1 || echo kmsg-denied",
    );
    world.edit(|c| {
        c["linux"]["devices"] =
            json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644}]);
        c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    });
    let out = world.run("dev");
    out.ok();
    assert_eq!(out.stdout, "null-ok\nkmsg-denied\n");
}

#[test]
fn cgroup_namespace_is_rooted_at_the_container() {
    let mut world = World::new("cat /proc/self/cgroup");
    world.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "cgroup"}))
    });
    let out = world.run("cgns");
    out.ok();
    for line in out.stdout.lines() {
        assert!(
            line.ends_with(":/"),
            "not rooted at the container's cgroup: {line}"
        );
    }
}

#[test]
fn kill_all_reaches_every_process_without_a_pid_namespace() {
    let mut world = World::new("sleep 30 & sleep 30 & sleep 30");
    world.edit(|c| c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]));
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, "ka"]).ok();
    let pid = world.state("ka")["pid"].as_i64().expect("pid") as i32;
    let members = || {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let path = cg
            .lines()
            .find(|l| l.contains(":pids:"))
            .and_then(|l| l.splitn(3, ':').nth(2))
            .unwrap_or("")
            .to_string();
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids{path}/cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(
        wait_until(5, || members() == 3),
        "expected 3 processes, saw {}",
        members()
    );
    let procs_file = {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        let path = cg
            .lines()
            .find(|l| l.contains(":pids:"))
            .and_then(|l| l.splitn(3, ':').nth(2))
            .expect("pids line")
            .to_string();
        format!("/sys/fs/cgroup/pids{path}/cgroup.procs")
    };
    let all: Vec<i32> = std::fs::read_to_string(&procs_file)
        .expect("procs")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    world.cmd(&["kill", "--all", "ka", "KILL"]).ok();
    for p in all {
        reap(p);
    }
    assert_eq!(world.status("ka"), "stopped");
    world.cmd(&["delete", "ka"]).ok();
    assert!(
        !std::path::Path::new(&procs_file).exists(),
        "cgroup left behind"
    );
}

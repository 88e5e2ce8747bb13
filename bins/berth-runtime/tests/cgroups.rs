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
    let procs_file = host_cgroup_file(pid as i64, "pids", "cgroup.procs");
    let members = || {
        std::fs::read_to_string(&procs_file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(
        wait_until(5, || members() == 3),
        "expected 3 processes, saw {}",
        members()
    );
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

/// A host path of the container's cgroup in hierarchy `name`.
fn host_cgroup_file(pid: i64, name: &str, file: &str) -> std::path::PathBuf {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let path = cg
        .lines()
        .find(|l| l.split(':').nth(1) == Some(name))
        .and_then(|l| l.splitn(3, ':').nth(2))
        .expect("hierarchy line")
        .to_string();
    std::path::Path::new("/sys/fs/cgroup")
        .join(name)
        .join(path.trim_start_matches('/'))
        .join(file)
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let mut world = World::new("i=0; while :; do i=$((i+1)); echo $i > /tmp/count; done");
    world.edit(|c| c["root"]["readonly"] = json!(false));
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, "pz"]).ok();
    let pid = world.state("pz")["pid"].as_i64().expect("pid") as i32;
    let count = || std::fs::read_to_string(world.rootfs().join("tmp/count")).unwrap_or_default();
    world.cmd(&["pause", "pz"]).ok();
    assert_eq!(world.status("pz"), "paused");
    let frozen_at = count();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(count(), frozen_at, "a paused container kept running");
    world.cmd(&["pause", "pz"]).failed();
    world.cmd(&["start", "pz"]).failed();
    let refused = world.cmd(&["delete", "pz"]);
    refused.failed();
    assert!(refused.stderr.contains("paused"), "{}", refused.stderr);
    world.cmd(&["resume", "pz"]).ok();
    assert_eq!(world.status("pz"), "running");
    assert!(
        wait_until(5, || count() != frozen_at),
        "a resumed container did not go on"
    );
    world.cmd(&["resume", "pz"]).failed();
    world.cmd(&["pause", "pz"]).ok();
    // delete --force of a paused container: killed, thawed so it can die, removed.
    world.cmd(&["delete", "--force", "pz"]).ok();
    reap(pid);
    world.assert_no_state();
}

#[test]
fn ps_lists_the_processes_of_the_container() {
    let world = World::new("sleep 30 & sleep 30 & exec sleep 31");
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, "ps1"]).ok();
    let pid = world.state("ps1")["pid"].as_i64().expect("pid");
    assert!(wait_until(5, || {
        let out = world.cmd(&["ps", "--format", "json", "ps1"]);
        serde_json::from_str::<Vec<i64>>(&out.stdout)
            .is_ok_and(|p| p.len() == 3 && p.contains(&pid))
    }));
    let table = world.cmd(&["ps", "ps1"]);
    table.ok();
    assert!(
        table.stdout.starts_with("PID") && table.stdout.contains("sleep 31"),
        "{}",
        table.stdout
    );
    let refused = world.cmd(&["ps", "ps1", "--", "-ef"]);
    refused.failed();
    assert!(refused.stderr.contains("-ef"), "{}", refused.stderr);
    world.cmd(&["delete", "--force", "ps1"]).ok();
    reap(pid as i32);
}

#[test]
fn update_changes_limits_live() {
    let mut world = World::new("sleep 30");
    world.edit(|c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 10}, "memory": {"limit": 67108864}})
    });
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, "up"]).ok();
    let pid = world.state("up")["pid"].as_i64().expect("pid");
    let read = |name: &str, file: &str| {
        std::fs::read_to_string(host_cgroup_file(pid, name, file))
            .expect("read")
            .trim()
            .to_string()
    };
    assert_eq!(read("pids", "pids.max"), "10");
    world
        .cmd(&[
            "update",
            "--pids-limit",
            "25",
            "--memory",
            "128m",
            "--cpu-share",
            "256",
            "up",
        ])
        .ok();
    assert_eq!(read("pids", "pids.max"), "25");
    assert_eq!(read("memory", "memory.limit_in_bytes"), "134217728");
    assert_eq!(read("cpu", "cpu.shares"), "256");
    let file = world.dir.path().join("res.json");
    std::fs::write(&file, r#"{"pids": {"limit": 7}}"#).expect("write");
    world
        .cmd(&["update", "--resources", file.to_str().expect("utf8"), "up"])
        .ok();
    assert_eq!(read("pids", "pids.max"), "7");
    for bad in [
        vec!["update", "--memory", "abc", "up"],
        vec!["update", "--pids-limit", "-5", "up"],
        vec!["update", "--blkio-weight", "5000", "up"],
        vec!["update", "up"],
        vec!["update", "--pids-limit", "5", "missing"],
    ] {
        world.cmd(&bad).failed();
    }
    assert_eq!(
        read("pids", "pids.max"),
        "7",
        "a refused update changed something"
    );
    world.cmd(&["delete", "--force", "up"]).ok();
    reap(pid as i32);
    world.cmd(&["update", "--pids-limit", "5", "up"]).failed();
}

#[test]
fn events_report_stats_and_oom_then_end_with_the_container() {
    // Waits for its cue, then holds 200 MB in the shell under a 32 MB limit: OOM-killed.
    let mut world = World::new(
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}",
    );
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["resources"] =
            json!({"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 50}});
    });
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, "ev"]).ok();
    let pid = world.state("ev")["pid"].as_i64().expect("pid");

    let once = world.cmd(&["events", "--stats", "ev"]);
    once.ok();
    let event: serde_json::Value = serde_json::from_str(&once.stdout).expect("one JSON line");
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], "ev");
    let data = &event["data"];
    assert_eq!(data["memory"]["usage"]["limit"], 33554432, "{data}");
    assert!(
        data["memory"]["usage"]["usage"].as_u64() > Some(0),
        "{data}"
    );
    assert_eq!(data["pids"]["limit"], 50, "{data}");
    assert!(data["pids"]["current"].as_u64() >= Some(1), "{data}");
    assert!(data["cpu"]["usage"]["total"].as_u64() > Some(0), "{data}");
    assert!(data["memory"]["raw"]["rss"].is_u64(), "{data}");

    // The stream: stats every 100 ms; the OOM is reported; it ends when the container does.
    let root = world.root();
    let mut stream = std::process::Command::new(BIN)
        .args([
            "--root",
            root.to_str().expect("utf8"),
            "events",
            "--interval",
            "100ms",
            "ev",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("events");
    let mut pipe = stream.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    std::thread::sleep(std::time::Duration::from_millis(350));
    std::fs::write(world.rootfs().join("tmp/go"), "").expect("cue");
    let ended = wait_with_deadline(stream.id() as i32, 20);
    if !ended {
        let _ = stream.kill();
    }
    let _ = stream.wait();
    let stdout = reader.join().expect("reader");
    assert!(ended, "events did not end with the container: {stdout}");
    let types: Vec<String> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            v["type"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(
        types.iter().filter(|t| *t == "stats").count() >= 2,
        "{stdout}"
    );
    assert!(types.iter().any(|t| t == "oom"), "no OOM event: {stdout}");
    reap(pid as i32);

    let refused = world.cmd(&["events", "--stats", "ev"]);
    refused.failed();
    assert!(refused.stderr.contains("stopped"), "{}", refused.stderr);
    world.cmd(&["delete", "ev"]).ok();
    let missing = world.cmd(&["events", "nope"]);
    missing.failed();
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
}

/// Whether process `pid` (our child) exits within `secs`; it is left to be waited for.
fn wait_with_deadline(pid: i32, secs: u64) -> bool {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    wait_until(secs, || {
        waitid(
            Id::Pid(nix::unistd::Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        )
        .is_ok_and(|s| s.pid().is_some())
    })
}

/// "major:minor" of a whole disk of this machine (throttles apply to disks, not partitions).
fn some_disk() -> String {
    let mut disks: Vec<String> = std::fs::read_dir("/sys/block")
        .expect("/sys/block")
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !["loop", "ram", "zram"].iter().any(|p| name.starts_with(p))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .map(|d| d.trim().to_string())
        .collect();
    disks.sort();
    disks.into_iter().next().expect("a disk under /sys/block")
}

/// Weights are set where the kernel has them (BFQ's or CFQ's files); where it has neither,
/// a weight is refused with a message that names the file, not EACCES.
#[test]
fn block_io_weight_and_throttle_and_cpu_burst() {
    let disk = some_disk();
    let (major, minor) = disk.split_once(':').expect("maj:min");
    let mut world = World::new("sleep 30");
    world.edit(|c| {
        c["linux"]["resources"] = json!({
            "blockIO": {
                "throttleReadBpsDevice": [{"major": major.parse::<i64>().expect("major"), "minor": minor.parse::<i64>().expect("minor"), "rate": 1048576}]
            },
            "cpu": {"quota": 50000, "period": 100000, "burst": 5000}
        })
    });
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, "bio"]).ok();
    let pid = world.state("bio")["pid"].as_i64().expect("pid");
    let read = |name: &str, file: &str| {
        std::fs::read_to_string(host_cgroup_file(pid, name, file))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("blkio", "blkio.throttle.read_bps_device"),
        format!("{disk} 1048576")
    );
    assert_eq!(read("cpu", "cpu.cfs_burst_us"), "5000");
    let weights = ["blkio.bfq.weight", "blkio.weight"]
        .iter()
        .any(|f| host_cgroup_file(pid, "blkio", f).exists());
    let update = world.cmd(&["update", "--blkio-weight", "500", "bio"]);
    if weights {
        update.ok();
        let weight = read("blkio", "blkio.bfq.weight");
        let weight = if weight.is_empty() {
            read("blkio", "blkio.weight")
        } else {
            weight
        };
        assert!(weight.ends_with("500"), "weight {weight:?}");
    } else {
        update.failed();
        assert!(
            update
                .stderr
                .contains("blkio.weight is not supported by this kernel"),
            "{}",
            update.stderr
        );
    }
    let refused = world.cmd(&["update", "--blkio-weight", "5", "bio"]);
    refused.failed();
    assert!(
        refused.stderr.contains("blockIO.weight"),
        "{}",
        refused.stderr
    );
    world.cmd(&["delete", "--force", "bio"]).ok();
    reap(pid as i32);
}

/// A container joining another's pid namespace (a pod's containers, `--pid container:X`)
/// is cloned directly into it and born in its cgroup: the runtime enters the namespace for
/// its child around the clone, so no stage 1 forks init and no process is moved into a
/// cgroup (cgroup.procs, whose write waits for an RCU grace period, is never opened).
#[test]
fn an_init_joining_a_pid_namespace_is_born_in_it_and_in_its_cgroup() {
    assert!(installed("strace"), "this test needs strace");
    let host = World::new("sleep 30");
    let bundle = host.bundle().to_str().expect("utf8");
    host.cmd(&["run", "-d", "--bundle", bundle, "pj0"]).ok();
    let host_pid = host.state("pj0")["pid"].as_i64().expect("pid");
    let host_ns = std::fs::read_link(format!("/proc/{host_pid}/ns/pid")).expect("ns");

    let name = format!("/berth-test-pidjoin-{}", std::process::id());
    let mut joiner = World::new("readlink /proc/self/ns/pid; cat /proc/self/cgroup");
    joiner.edit(|c| {
        c["linux"]["namespaces"] = json!([
            {"type": "mount"},
            {"type": "pid", "path": format!("/proc/{host_pid}/ns/pid")}
        ]);
        c["linux"]["cgroupsPath"] = json!(name);
        c.as_object_mut().expect("obj").remove("hostname");
    });
    let trace = joiner.dir.path().join("trace");
    let output = joiner.dir.path().join("output");
    // strace follows init until it exits: create returns while it is still traced.
    let mut strace = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat,clone,clone3", "-o"])
        .arg(&trace)
        .arg(BIN)
        .arg("--root")
        .arg(joiner.root())
        .args(["create", "--bundle"])
        .arg(joiner.bundle())
        .arg("pj1")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&output).expect("output"))
        .spawn()
        .expect("strace");
    assert!(
        wait_until(10, || {
            let out = joiner.cmd(&["state", "pj1"]);
            out.code == 0
                && serde_json::from_str::<serde_json::Value>(&out.stdout)
                    .is_ok_and(|s| s["status"] == "created")
        }),
        "pj1 was not created"
    );
    let pid = joiner.state("pj1")["pid"].as_i64().expect("pid");
    joiner.cmd(&["start", "pj1"]).ok();
    assert!(strace.wait().expect("strace").success());
    reap_if_exited(pid as i32);
    joiner.cmd(&["delete", "pj1"]).ok();
    host.cmd(&["delete", "--force", "pj0"]).ok();
    reap(host_pid as i32);

    let seen = std::fs::read_to_string(&output).expect("output");
    assert_eq!(
        seen.lines().next(),
        host_ns.to_str(),
        "not in the joined pid namespace:\n{seen}"
    );
    assert!(
        seen.lines()
            .any(|l| l.starts_with("0::") || l.ends_with(&format!(":{name}"))),
        "not in its cgroup:\n{seen}"
    );
    assert!(
        seen.lines()
            .filter(|l| l.contains(":memory:") || l.contains(":pids:"))
            .all(|l| l.ends_with(&name)),
        "a v1 hierarchy without the container's cgroup:\n{seen}"
    );
    assert_no_cgroup_procs_write(&trace);
    assert!(cgroup_dirs_named(&name).is_empty(), "cgroup left behind");
}

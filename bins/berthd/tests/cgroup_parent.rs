//! `--cgroup-parent` (the create body's HostConfig.CgroupParent) and the daemon's
//! `cgroup-parent`: a container's cgroup goes below the one it names, or below the daemon's,
//! and stats and update follow it there. Each test names parents of its own (with its pid)
//! and removes them from every hierarchy at the end.

mod common;

use std::path::Path;

use common::{busybox_image, hierarchy_dirs, CgroupParents, Daemon};

/// The memory controller's cgroup of `pid` (v1's memory line, else the unified one).
fn memory_cgroup(pid: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup file");
    let line = |want: &dyn Fn(&str) -> bool| {
        text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            want(controllers).then(|| path.to_string())
        })
    };
    line(&|c| c.split(',').any(|c| c == "memory"))
        .or_else(|| line(&|c| c.is_empty()))
        .expect("a memory cgroup")
}

/// The memory limit file of cgroup `path`, in whichever hierarchy holds the controller.
fn memory_limit(path: &str) -> String {
    let rel = path.trim_start_matches('/');
    let v1 = Path::new("/sys/fs/cgroup/memory").join(rel);
    let file = if v1.is_dir() {
        v1.join("memory.limit_in_bytes")
    } else {
        Path::new("/sys/fs/cgroup").join(rel).join("memory.max")
    };
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .to_string()
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    let out = d.docker(&["inspect", "-f", format, name]);
    out.ok();
    out.stdout.trim().to_string()
}

#[test]
fn containers_go_below_their_own_or_the_daemons_cgroup_parent() {
    let tag = format!("berth-test-cgparent-{}", std::process::id());
    let daemon_parent = format!("/{tag}-daemon");
    // Relative, as users write it: taken from the hierarchies' root.
    let own_parent = format!("{tag}-own/sub");
    let _parents = CgroupParents(vec![daemon_parent.clone(), own_parent.clone()]);
    let d = Daemon::start_for_containers_with(&["--cgroup-parent", &daemon_parent]);
    busybox_image(&d);

    d.docker(&["run", "-d", "--name", "plain", "bb:1", "sleep", "300"])
        .ok();
    let plain_id = inspect(&d, "plain", "{{.Id}}");
    let plain_pid = inspect(&d, "plain", "{{.State.Pid}}");
    assert_eq!(
        memory_cgroup(&plain_pid),
        format!("{daemon_parent}/berth-{plain_id}")
    );

    d.docker(&[
        "run",
        "-d",
        "--name",
        "own",
        "--cgroup-parent",
        &own_parent,
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    let own_id = inspect(&d, "own", "{{.Id}}");
    let own_pid = inspect(&d, "own", "{{.State.Pid}}");
    let own_cgroup = format!("/{own_parent}/berth-{own_id}");
    assert_eq!(memory_cgroup(&own_pid), own_cgroup);
    // Inspect shows what was asked for, as dockerd's.
    assert_eq!(
        inspect(&d, "own", "{{.HostConfig.CgroupParent}}"),
        own_parent
    );

    // update and stats find the cgroup where it is.
    d.docker(&["update", "--memory", "64m", "--memory-swap", "-1", "own"])
        .ok();
    assert_eq!(memory_limit(&own_cgroup), "67108864");
    let usage = d.docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "own"]);
    usage.ok();
    assert!(
        usage.stdout.contains("/ 64MiB") && !usage.stdout.starts_with("0B"),
        "{}",
        usage.stdout
    );

    // A parent that climbs out of the hierarchy is refused, and nothing is made.
    d.docker(&[
        "run",
        "--name",
        "climb",
        "--cgroup-parent",
        "../up",
        "bb:1",
        "true",
    ])
    .failed_with("may not contain \"..\"");
    d.docker(&["inspect", "climb"]).failed();

    d.docker(&["rm", "-f", "plain", "own"]).ok();
    for (parent, id) in [(&daemon_parent, &plain_id), (&own_parent, &own_id)] {
        let leaf = format!("{}/berth-{id}", parent.trim_start_matches('/'));
        assert!(hierarchy_dirs(&leaf).is_empty(), "{leaf} left behind");
    }
}

#[test]
fn a_daemon_cgroup_parent_that_climbs_out_is_refused_at_start() {
    let d = Daemon::start_unspawned();
    let out = std::process::Command::new(common::BERTHD)
        .arg("--config-file")
        .arg(d.data_root().with_file_name("daemon.json"))
        .args(["--cgroup-parent", "a/../../b", "-H"])
        .arg(format!("unix://{}", d.socket().display()))
        .arg("--data-root")
        .arg(d.data_root())
        .arg("--exec-root")
        .arg(d.exec_root())
        .output()
        .expect("berthd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cgroup-parent") && err.contains(".."), "{err}");
}

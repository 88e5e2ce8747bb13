//! How containers end, with the real docker CLI: the exit is reported before the shim has
//! the runtime delete the container, so a start right after an exit must wait for that
//! cleanup; --rm leaves no directory, bundle or cgroup; and a client that stops waiting
//! (`docker run -d` drops its wait) leaves no worker behind in berthd.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_start_right_after_an_exit_runs_again() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let run = d.docker(&[
        "run",
        "--name",
        "again",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "echo ran; exit 3",
    ]);
    assert_eq!((run.code, run.stdout.trim()), (3, "ran"), "{}", run.stderr);
    // Each start comes as soon as the previous run was reported ended: its shim may still
    // be having the runtime delete it.
    for round in 0..5 {
        let again = d.docker(&["start", "-a", "again"]);
        assert_eq!(
            (again.code, again.stdout.trim()),
            (3, "ran"),
            "round {round}: {}",
            again.stderr
        );
    }
    d.docker(&["restart", "-t", "0", "again"]).ok();
    assert!(wait_for(|| d
        .docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "again"
        ])
        .stdout
        .trim()
        == "exited 3"));
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.RestartCount}}", "again"])
            .stdout
            .trim(),
        "0",
        "a manual start is not a restart"
    );
}

#[test]
fn removed_containers_leave_nothing_behind() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let mut ids = Vec::new();
    for i in 0..5 {
        let name = format!("rm{i}");
        d.docker(&[
            "run",
            "--rm",
            "--name",
            &name,
            "--network",
            "none",
            "bb:1",
            "true",
        ])
        .ok();
        assert!(
            d.docker(&["inspect", &name]).code != 0,
            "{name} is still there"
        );
    }
    let out = d
        .docker(&["run", "-d", "--network", "none", "bb:1", "sleep", "100"])
        .ok()
        .stdout
        .trim()
        .to_string();
    ids.push(out);
    d.docker(&["rm", "-f", &ids[0]]).ok();
    let bundles = d.exec_root().join("containers");
    let removing = d.data_root().join("removing");
    assert!(
        wait_for(|| entries(&d.data_root().join("containers")).is_empty()
            && entries(&bundles).is_empty()
            && entries(&removing).is_empty()),
        "left: containers {:?}, bundles {:?}, removing {:?}",
        entries(&d.data_root().join("containers")),
        entries(&bundles),
        entries(&removing)
    );
    // No container's cgroup is left in any hierarchy (each is /berth-<id>).
    let ours = |dir: &str| {
        entries(Path::new(dir))
            .into_iter()
            .filter(|e| ids.iter().any(|id| e.ends_with(id.as_str())))
            .count()
    };
    assert!(wait_for(
        || ours("/sys/fs/cgroup/pids") == 0 && ours("/sys/fs/cgroup/memory") == 0
    ));
    // Nothing of theirs is mounted any more.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(
        !mounts.contains(d.data_root().to_str().unwrap_or("?")),
        "{mounts}"
    );
}

#[test]
fn detached_runs_leave_no_waiting_workers() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&["run", "--rm", "--network", "none", "bb:1", "true"])
        .ok();
    // Idle blocking workers end after 10 s; count from a quiet daemon.
    let quiet = |limit: usize| (0..2).any(|_| wait_for(|| threads(d.pid()) <= limit));
    assert!(
        quiet(8),
        "berthd does not go quiet: {} threads",
        threads(d.pid())
    );
    let base = threads(d.pid());
    let n = 6;
    for _ in 0..n {
        d.docker(&["run", "-d", "--network", "none", "bb:1", "sleep", "100"])
            .ok();
    }
    // One watcher per running container; the waits the CLI dropped are gone.
    assert!(
        quiet(base + n),
        "{} threads for {n} containers (from {base}): dropped waits still hold workers",
        threads(d.pid())
    );
    let ids = d.docker(&["ps", "-q"]).ok().stdout.clone();
    let mut args = vec!["rm", "-f"];
    args.extend(ids.split_whitespace());
    d.docker(&args).ok();
    std::thread::sleep(Duration::from_millis(100));
}

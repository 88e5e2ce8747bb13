//! berthd killed (SIGKILL) while containers run: they keep running, their logs keep
//! flowing, and the restarted daemon finds them, reports those that ended meanwhile with
//! their exit codes, and can attach to, exec in and stop the others.

mod common;

use std::time::Duration;

use common::*;

/// The numbers of `line N` log lines, checked to be 1, 2, 3... without a gap.
fn counted_lines(logs: &str) -> usize {
    let numbers: Vec<usize> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("line ")?.trim().parse().ok())
        .collect();
    for (i, n) in numbers.iter().enumerate() {
        assert_eq!(*n, i + 1, "a log line is missing or repeated: {logs}");
    }
    numbers.len()
}

#[test]
fn containers_outlive_a_killed_daemon_and_are_found_again() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    let ticker = "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.1; done";
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        ticker,
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "short",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "sleep 1; exit 42",
    ])
    .ok();
    d.docker(&[
        "run",
        "-dit",
        "--name",
        "term",
        "--network",
        "none",
        "bb:1",
        "sh",
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(500));
    let pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "ticker"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let at_kill = counted_lines(&d.docker(&["logs", "ticker"]).ok().stdout);
    d.kill();
    // While berthd is gone: `short` ends, `ticker` keeps writing.
    std::thread::sleep(Duration::from_millis(2000));
    d.spawn(&[]);
    let ps = d.docker(&["ps", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = ps.ok().stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["term", "ticker"]);
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "short"
        ])
        .ok()
        .stdout
        .trim(),
        "exited 42"
    );
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Pid}}", "ticker"])
            .ok()
            .stdout
            .trim(),
        pid,
        "the same process still runs"
    );
    std::thread::sleep(Duration::from_millis(500));
    let before = counted_lines(&d.docker(&["logs", "ticker"]).ok().stdout);
    // Two seconds down at ten lines a second: at least half of them, however loaded the machine.
    assert!(
        before >= at_kill + 10,
        "lines kept flowing while berthd was down: {at_kill} then {before}"
    );
    // The restarted daemon reaches the shims again: exec, attach, stop.
    assert_eq!(
        d.docker(&["exec", "ticker", "echo", "hi"]).ok().stdout,
        "hi\n"
    );
    let mut s = d.docker_pty("attach term");
    s.send("echo back-$((2*3))\n");
    s.expect("back-6");
    s.send("exit 9\n");
    let (code, out) = s.finish();
    assert_eq!(code, 9, "{out}");
    d.docker(&["stop", "-t", "1", "ticker"]).ok();
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "ticker"
        ])
        .ok()
        .stdout
        .trim(),
        "exited 137"
    );
    let after = counted_lines(&d.docker(&["logs", "ticker"]).ok().stdout);
    assert!(after >= before);
    assert!(d.docker(&["ps", "-q"]).ok().stdout.trim().is_empty());
}

#[test]
fn json_file_logs_rotate_and_read_back_in_order() {
    let d =
        Daemon::start_for_containers_with(&["--log-opt", "max-size=4k", "--log-opt", "max-file=3"]);
    busybox_image(&d);
    d.docker(&[
        "run",
        "--name",
        "chatty",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo line $i; done",
    ])
    .ok();
    let log_path = d
        .docker(&["inspect", "-f", "{{.LogPath}}", "chatty"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert!(size(&log_path) <= 4096, "{}", size(&log_path));
    assert!(size(&format!("{log_path}.1")) > 0);
    assert!(size(&format!("{log_path}.2")) > 0);
    assert_eq!(
        size(&format!("{log_path}.3")),
        0,
        "max-file=3 keeps three files"
    );
    // What is kept reads back in order and ends with the last line.
    let logs = d.docker(&["logs", "chatty"]).ok().stdout.clone();
    let numbers: Vec<usize> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("line ")?.parse().ok())
        .collect();
    assert_eq!(numbers.last(), Some(&2000));
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "in order");
    assert!(numbers.len() < 2000, "the oldest lines were rotated away");
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{index .HostConfig.LogConfig.Config \"max-file\"}}",
            "chatty"
        ])
        .ok()
        .stdout
        .trim(),
        "3"
    );
    // Per container, overriding the daemon's: no rotation with a large max-size.
    d.docker(&[
        "run",
        "--name",
        "big",
        "--log-opt",
        "max-size=10m",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo line $i; done",
    ])
    .ok();
    let all = d.docker(&["logs", "big"]).ok().stdout.lines().count();
    assert_eq!(all, 2000);
    // logs -f follows across a rotation.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "follow",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo line $i; sleep 0.005; done",
    ])
    .ok();
    let followed = d.docker(&["logs", "-f", "follow"]).ok().stdout.clone();
    let numbers: Vec<usize> = followed
        .lines()
        .filter_map(|l| l.strip_prefix("line ")?.parse().ok())
        .collect();
    assert_eq!(numbers.last(), Some(&400), "{followed}");
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap while following"
    );
    // A bad option is refused by name, at the daemon and per container.
    let bad = d.docker(&[
        "run",
        "--log-opt",
        "max-size=lots",
        "--network",
        "none",
        "bb:1",
        "true",
    ]);
    bad.failed_with("invalid log-opt max-size");
}

/// A container left running by a berthd that kept bundles in the data root
/// (`containers/<id>/bundle`, before 2026-12) is found, stopped and started again by
/// this one.
#[test]
fn a_container_running_from_a_legacy_bundle_is_restored() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    let id = d
        .docker(&["run", "-d", "--network", "none", "bb:1", "sleep", "60"])
        .ok()
        .stdout
        .trim()
        .to_string();
    d.kill();
    // The older layout: the bundle (shim socket included) inside the container's directory.
    let legacy = d.data_root().join("containers").join(&id).join("bundle");
    std::fs::rename(d.exec_root().join("containers").join(&id), &legacy).expect("move bundle");
    d.spawn(&[]);
    let state = |d: &Daemon| {
        d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &id,
        ])
        .ok()
        .stdout
        .trim()
        .to_string()
    };
    assert_eq!(state(&d), "running 0");
    assert_eq!(d.docker(&["exec", &id, "echo", "hi"]).ok().stdout, "hi\n");
    d.docker(&["stop", "-t", "0", &id]).ok();
    assert_eq!(state(&d), "exited 137");
    d.docker(&["start", &id]).ok();
    assert_eq!(state(&d), "running 0");
    assert!(
        !legacy.exists(),
        "the legacy bundle is retired at the next start"
    );
    assert!(d.exec_root().join("containers").join(&id).is_dir());
    d.docker(&["rm", "-f", &id]).ok();
}

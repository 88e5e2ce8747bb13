//! `docker stats` and `docker update` through the real docker CLI (issue 16).

mod common;

use std::path::PathBuf;

use common::*;

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.docker(&["inspect", "--format", format, name])
        .stdout
        .trim()
        .to_string()
}

/// The file `name` of the container's cgroup, in whichever hierarchy has it.
fn cgroup_file(d: &Daemon, container: &str, controller: &str, name: &str) -> String {
    let id = inspect(d, container, "{{.Id}}");
    let candidates = [
        PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth-{id}/{name}")),
        PathBuf::from(format!("/sys/fs/cgroup/berth-{id}/{name}")),
        PathBuf::from(format!("/sys/fs/cgroup/unified/berth-{id}/{name}")),
    ];
    candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {candidates:?}"))
}

/// A MiB figure of docker stats' "64.2MiB / 7.7GiB" (the usage part).
fn mebibytes(usage: &str) -> f64 {
    let first = usage.split('/').next().unwrap_or_default().trim();
    let (number, factor) = if let Some(n) = first.strip_suffix("GiB") {
        (n, 1024.0)
    } else if let Some(n) = first.strip_suffix("MiB") {
        (n, 1.0)
    } else if let Some(n) = first.strip_suffix("KiB") {
        (n, 1.0 / 1024.0)
    } else {
        (first.trim_end_matches('B'), 1.0 / 1024.0 / 1024.0)
    };
    number
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("{usage:?}"))
        * factor
}

#[test]
fn stats_shows_what_a_container_allocates() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    // 64 MiB held by a process (a shell variable), then the container waits: one
    // long sleep, so the count of processes (sh and sleep) holds between the reads.
    let hold =
        "x=$(head -c 67108864 /dev/zero | tr '\\0' a); touch /tmp/held; while :; do sleep 1000; done";
    d.docker(&[
        "run",
        "-d",
        "--name",
        "hog",
        "--network",
        "none",
        "-m",
        "512m",
        "bb:1",
        "sh",
        "-c",
        hold,
    ])
    .ok();
    assert!(wait_for(|| d
        .docker(&["exec", "hog", "test", "-e", "/tmp/held"])
        .code
        == 0));
    let out = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.MemPerc}} {{.PIDs}} {{.CPUPerc}}",
        "hog",
    ]);
    out.ok();
    let line = out.stdout.trim();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[0], "hog", "{line}");
    let used = mebibytes(fields[1]);
    assert!((64.0..100.0).contains(&used), "{line}");
    // The limit is the container's own.
    assert!(line.contains("/ 512MiB"), "{line}");
    assert_eq!(fields[5], "2", "sh and sleep: {line}");
    // The whole JSON as moby sends it.
    let (status, body) = d.http("GET", "/containers/hog/stats?stream=false", b"");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["name"], "/hog");
    assert!(
        v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(
        v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(
        v["memory_stats"]["stats"]
            .as_object()
            .is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert_eq!(v["pids_stats"]["current"], 2);
    // The berth CLI reads the same figures.
    let berth = d.berth(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}}",
        "hog",
    ]);
    berth.ok();
    assert!(
        (64.0..100.0).contains(&mebibytes(berth.stdout.trim().trim_start_matches("hog "))),
        "{}",
        berth.stdout
    );
    d.docker(&["rm", "-f", "hog"]).ok();
}

#[test]
fn stats_streams_every_second_and_stopped_containers_have_no_figures() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "while :; do :; done",
    ])
    .ok();
    d.docker(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        "bb:1",
        "true",
    ])
    .ok();
    // Two messages of the stream: the second carries the first as its previous sample.
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "2.5", "--unix-socket"])
        .arg(d.socket())
        .arg("http://berth/containers/busy/stats")
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let messages: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON message per line"))
        .collect();
    assert!(messages.len() >= 2, "{text}");
    assert_eq!(
        messages[1]["precpu_stats"]["cpu_usage"]["total_usage"],
        messages[0]["cpu_stats"]["cpu_usage"]["total_usage"]
    );
    assert!(
        messages[1]["cpu_stats"]["cpu_usage"]["total_usage"].as_u64()
            > messages[0]["cpu_stats"]["cpu_usage"]["total_usage"].as_u64(),
        "a busy loop uses CPU: {text}"
    );
    let all = d.docker(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.MemUsage}}",
    ]);
    all.ok();
    assert!(all.stdout.contains("idle 0.00% 0B / 0B"), "{}", all.stdout);
    let busy = all
        .stdout
        .lines()
        .find(|l| l.starts_with("busy "))
        .expect("busy listed");
    let cpu: f64 = busy
        .split(' ')
        .nth(1)
        .and_then(|c| c.trim_end_matches('%').parse().ok())
        .expect("cpu %");
    assert!(cpu > 20.0, "a busy loop: {busy}");
    d.docker(&["stats", "--no-stream", "nosuch"])
        .failed_with("No such container");
    d.docker(&["rm", "-f", "busy", "idle"]).ok();
}

#[test]
fn update_of_a_stopped_container_is_kept_and_applied_at_start() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "create",
        "--name",
        "cx",
        "--network",
        "none",
        "--cpu-shares",
        "512",
        "bb:1",
        "sleep",
        "600",
    ])
    .ok();
    let out = d.docker(&[
        "update",
        "--cpu-shares",
        "1024",
        "--pids-limit",
        "50",
        "--restart",
        "on-failure:2",
        "cx",
    ]);
    out.ok();
    assert_eq!(out.stdout.trim(), "cx");
    assert_eq!(
        inspect(&d, "cx", "{{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"),
        "1024 50 on-failure:2"
    );
    // Kept across a restart of berthd.
    let mut d = d;
    d.stop();
    d.spawn(&[]);
    d.docker(&["start", "cx"]).ok();
    assert_eq!(cgroup_file(&d, "cx", "pids", "pids.max"), "50");
    // And on the running container: the runtime's update changes the cgroup.
    d.docker(&["update", "--pids-limit", "70", "cx"]).ok();
    assert_eq!(cgroup_file(&d, "cx", "pids", "pids.max"), "70");
    assert_eq!(inspect(&d, "cx", "{{.HostConfig.PidsLimit}}"), "70");
    // berthd keeps its events in memory (as dockerd): the one since the restart. `--until
    // 0s` is whole seconds: wait for the second to pass.
    let updates = || {
        d.docker(&[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            "event=update",
            "--format",
            "{{.Actor.Attributes.name}}",
        ])
        .stdout
    };
    assert!(wait_for(|| updates().trim() == "cx"), "{}", updates());
    d.docker(&["rm", "-f", "cx"]).ok();
}

#[test]
fn lowering_the_memory_limit_of_a_running_container_gets_it_oom_killed() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let hog = "while [ ! -e /tmp/go ]; do sleep 0.1; done; x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived; sleep 600";
    d.docker(&[
        "run",
        "-d",
        "--name",
        "hog",
        "--network",
        "none",
        "-m",
        "256m",
        "--memory-swap",
        "256m",
        "bb:1",
        "sh",
        "-c",
        hog,
    ])
    .ok();
    // dockerd's rule: a memory limit above the swap limit needs the swap limit too.
    d.docker(&["update", "-m", "512m", "hog"])
        .failed_with("Memory limit should be smaller than already set memoryswap limit");
    d.docker(&["update", "-m", "24m", "--memory-swap", "24m", "hog"])
        .ok();
    assert_eq!(
        inspect(
            &d,
            "hog",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"
        ),
        "25165824 25165824"
    );
    d.docker(&["exec", "hog", "touch", "/tmp/go"]).ok();
    let code = d.docker(&["wait", "hog"]);
    assert_eq!(
        code.stdout.trim(),
        "137",
        "{}",
        d.docker(&["logs", "hog"]).stdout
    );
    assert_eq!(inspect(&d, "hog", "{{.State.OOMKilled}}"), "true");
    assert!(!d.docker(&["logs", "hog"]).stdout.contains("survived"));
    d.docker(&["rm", "-f", "hog"]).ok();
}

#[test]
fn update_refuses_what_dockerd_refuses() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&["update", "--cpu-shares", "512", "nosuch"])
        .failed_with("No such container");
    d.docker(&[
        "create",
        "--name",
        "cx",
        "--network",
        "none",
        "--cpus",
        "1",
        "--rm",
        "bb:1",
        "true",
    ])
    .ok();
    d.docker(&["update", "--cpu-quota", "5000", "cx"])
        .failed_with("CPU Quota cannot be updated as NanoCPUs has already been set");
    d.docker(&["update", "--restart", "always", "cx"])
        .failed_with("Restart policy cannot be updated because AutoRemove is enabled");
    d.docker(&["update", "--restart", "sometimes", "cx"])
        .failed_with("invalid restart policy");
    d.docker(&["update", "-m", "1k", "--memory-swap", "1m", "cx"])
        .failed_with("Minimum memory limit allowed is 6MB");
    let (status, body) = d.http("POST", "/containers/cx/update", b"{\"Memory\": \"64m\"}");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Memory"), "{body}");
    // Nothing was changed by the refusals.
    assert_eq!(
        inspect(
            &d,
            "cx",
            "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuQuota}} {{.HostConfig.Memory}}"
        ),
        "1000000000 0 0"
    );
    d.docker(&["rm", "cx"]).ok();
}

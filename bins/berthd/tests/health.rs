//! Health checks with the real docker CLI: `--health-*` and the image's HEALTHCHECK, the
//! probe's results in inspect, `(healthy)` in ps, `health_status` events, `--filter health=`,
//! timeouts, the start period, `--no-healthcheck`, restart policies left alone by an
//! unhealthy container, and a restart of berthd.

mod common;

use std::path::Path;

use common::sha2_lite::sha256_hex;
use common::*;
use serde_json::{json, Value};

fn inspect(d: &Daemon, name: &str) -> Value {
    let out = d.docker(&["inspect", name]);
    let all: Value = serde_json::from_str(&out.ok().stdout).expect("inspect JSON");
    all[0].clone()
}

fn health(d: &Daemon, name: &str) -> Value {
    inspect(d, name)["State"]["Health"].clone()
}

fn status(d: &Daemon, name: &str) -> String {
    health(d, name)["Status"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

/// Wait until the health of `name` is `want`; the last health seen when it is not.
fn wait_for_status(d: &Daemon, name: &str, want: &str) -> Value {
    let mut last = Value::Null;
    let reached = wait_for(|| {
        last = health(d, name);
        last["Status"] == want
    });
    assert!(reached, "{name} never became {want}: {last}");
    last
}

/// Names `docker ps --filter health=<word>` lists.
fn ps_health(d: &Daemon, word: &str) -> Vec<String> {
    let filter = format!("health={word}");
    d.docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
        .ok()
        .stdout
        .lines()
        .map(String::from)
        .collect()
}

/// The container's events so far (`docker events` from the start until a second from now).
fn events(d: &Daemon, name: &str) -> String {
    let filter = format!("container={name}");
    d.past_events(&["--filter", &filter, "--format", "{{.Action}}"])
        .ok()
        .stdout
        .clone()
}

fn run(d: &Daemon, args: &[&str]) {
    let mut all = vec!["run", "-d", "--network", "none"];
    all.extend_from_slice(args);
    d.docker(&all).ok();
}

#[test]
fn a_passing_check_is_healthy_in_inspect_ps_events_and_filters() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    run(
        &d,
        &[
            "--name",
            "good",
            "--health-cmd",
            "echo probe-ok",
            "--health-interval",
            "100ms",
            "bb:1",
            "sleep",
            "300",
        ],
    );
    run(&d, &["--name", "plain", "bb:1", "sleep", "300"]);
    let h = wait_for_status(&d, "good", "healthy");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let log = h["Log"].as_array().expect("log");
    let last = log.last().expect("a result");
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"], "probe-ok\n", "{h}");
    assert!(last["Start"].as_str().is_some_and(|s| !s.is_empty()), "{h}");
    assert!(last["End"].as_str().is_some_and(|s| !s.is_empty()), "{h}");
    // The check as given, in moby's form.
    let config = inspect(&d, "good")["Config"]["Healthcheck"].clone();
    assert_eq!(
        config,
        json!({"Test": ["CMD-SHELL", "echo probe-ok"], "Interval": 100_000_000}),
    );
    // Only the last five results are kept.
    assert!(wait_for(|| health(&d, "good")["Log"]
        .as_array()
        .is_some_and(|l| l.len() == 5)));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(health(&d, "good")["Log"].as_array().map(Vec::len), Some(5));
    // No check: no State.Health.
    assert!(health(&d, "plain").is_null());

    let ps = d
        .docker(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .ok()
        .stdout
        .clone();
    let row = |name: &str| {
        ps.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("good").contains("Up") && row("good").ends_with("(healthy)"),
        "{ps}"
    );
    assert!(!row("plain").contains('('), "{ps}");
    assert_eq!(ps_health(&d, "healthy"), ["good"]);
    assert_eq!(ps_health(&d, "none"), ["plain"]);
    assert!(ps_health(&d, "unhealthy").is_empty());
    assert!(ps_health(&d, "starting").is_empty());
    d.docker(&["ps", "--filter", "health=fine"])
        .failed_with("invalid filter 'health=fine'");

    let actions = events(&d, "good");
    assert!(
        actions.contains("health_status: healthy"),
        "no health event: {actions}"
    );
    // Each probe is an exec, as moby logs it.
    assert!(
        actions.contains("exec_start: /bin/sh -c echo probe-ok"),
        "{actions}"
    );
    assert!(!events(&d, "plain").contains("health_status"));

    // The berth CLI shows and filters the same.
    let berth_ps = d.berth(&["ps", "--filter", "health=healthy"]);
    assert!(
        berth_ps.ok().stdout.contains("(healthy)") && berth_ps.stdout.contains("good"),
        "{}",
        berth_ps.stdout
    );

    // Paused: no probes, and unhealthy (moby stops the monitor); unpaused: probed again.
    d.docker(&["pause", "good"]).ok();
    assert_eq!(status(&d, "good"), "unhealthy");
    d.docker(&["unpause", "good"]).ok();
    wait_for_status(&d, "good", "healthy");

    // A stopped container keeps its last results, its status unhealthy, as in moby.
    d.docker(&["stop", "-t", "0", "good"]).ok();
    let h = health(&d, "good");
    assert_eq!(h["Status"], "unhealthy", "{h}");
    assert!(!h["Log"].as_array().is_none_or(Vec::is_empty), "{h}");
    assert_eq!(ps_health(&d, "unhealthy"), ["good"]);
    // Started again: starting, then healthy.
    d.docker(&["start", "good"]).ok();
    wait_for_status(&d, "good", "healthy");
    d.docker(&["rm", "-f", "good", "plain"]).ok();
}

#[test]
fn a_failing_check_turns_unhealthy_after_its_retries_and_is_not_restarted() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    run(
        &d,
        &[
            "--name",
            "bad",
            "--restart",
            "always",
            "--health-cmd",
            "echo broken >&2; exit 3",
            "--health-interval",
            "100ms",
            "--health-retries",
            "2",
            "bb:1",
            "sleep",
            "300",
        ],
    );
    let pid = inspect(&d, "bad")["State"]["Pid"].clone();
    let h = wait_for_status(&d, "bad", "unhealthy");
    assert!(h["FailingStreak"].as_i64().is_some_and(|n| n >= 2), "{h}");
    let last = h["Log"]
        .as_array()
        .and_then(|l| l.last())
        .expect("a result");
    assert_eq!(last["ExitCode"], 3, "{h}");
    assert_eq!(last["Output"], "broken\n", "{h}");
    let actions = events(&d, "bad");
    assert!(actions.contains("health_status: unhealthy"), "{actions}");
    assert!(!actions.contains("health_status: healthy"), "{actions}");
    assert!(d
        .docker(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .ok()
        .stdout
        .contains("(unhealthy)"));
    assert_eq!(ps_health(&d, "unhealthy"), ["bad"]);
    // Unhealthy is not an exit: the restart policy does nothing (as Docker).
    std::thread::sleep(std::time::Duration::from_millis(500));
    let state = inspect(&d, "bad");
    assert_eq!(state["State"]["Running"], true);
    assert_eq!(state["State"]["Pid"], pid);
    assert_eq!(state["RestartCount"], 0);
    assert!(!events(&d, "bad").lines().any(|a| a == "die"));
    d.docker(&["rm", "-f", "bad"]).ok();
}

#[test]
fn a_probe_that_outlasts_its_timeout_fails_with_mobys_message() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    run(
        &d,
        &[
            "--name",
            "slow",
            "--health-cmd",
            "echo started; exec sleep 30",
            "--health-interval",
            "100ms",
            "--health-timeout",
            "1s",
            "--health-retries",
            "1",
            "bb:1",
            "sleep",
            "300",
        ],
    );
    let h = wait_for_status(&d, "slow", "unhealthy");
    let first = &h["Log"][0];
    assert_eq!(first["ExitCode"], -1, "{h}");
    assert_eq!(
        first["Output"], "Health check exceeded timeout (1s): started\n",
        "{h}"
    );
    // The probe was killed: its exec died by SIGKILL.
    let actions = events(&d, "slow");
    assert!(actions.contains("exec_die"), "{actions}");
    // (Its process ends: killed, as moby kills a probe past its timeout.)
    let probe_runs = || {
        d.docker(&["top", "slow"])
            .ok()
            .stdout
            .lines()
            .any(|l| l.ends_with(" sleep 30"))
    };
    assert!(wait_for(|| !probe_runs()), "the timed-out probe still runs");
    d.docker(&["rm", "-f", "slow"]).ok();
}

#[test]
fn failures_in_the_start_period_do_not_count_and_a_success_there_does() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    // Failing: unhealthy only once the start period (1.5 s) is over, though every probe
    // fails and one failure would do.
    run(
        &d,
        &[
            "--name",
            "warming",
            "--health-cmd",
            "exit 1",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
            "--health-start-period",
            "1500ms",
            "--health-start-interval",
            "100ms",
            "bb:1",
            "sleep",
            "300",
        ],
    );
    let started = inspect(&d, "warming")["State"]["StartedAt"]
        .as_str()
        .map(parse_time)
        .expect("StartedAt");
    // Whenever every result so far began within the period, it is still starting, with no
    // failure counted (one inspect: a consistent view).
    let mut seen = Value::Null;
    assert!(wait_for(|| {
        seen = health(&d, "warming");
        seen["Log"].as_array().is_some_and(|l| !l.is_empty())
    }));
    let within = seen["Log"].as_array().into_iter().flatten().all(|r| {
        r["Start"]
            .as_str()
            .map(parse_time)
            .is_some_and(|t| t - started < 1.5)
    });
    if within {
        assert_eq!(seen["Status"], "starting", "{seen}");
        assert_eq!(seen["FailingStreak"], 0, "{seen}");
    }
    let h = wait_for_status(&d, "warming", "unhealthy");
    let log = h["Log"].as_array().expect("log");
    // The failure that made it unhealthy started after the period; any before it did not
    // count (retries 1 would have made the first one unhealthy).
    let counted = log
        .iter()
        .filter(|r| {
            r["Start"]
                .as_str()
                .map(parse_time)
                .is_some_and(|t| t - started >= 1.5)
        })
        .count();
    assert!(counted >= 1, "{h}");
    let streak = h["FailingStreak"].as_i64().expect("streak");
    // With a result of the period still in the log, every later one is there too: the
    // streak is exactly those.
    if counted < log.len() {
        assert_eq!(streak, counted as i64, "{h}");
    } else {
        assert!(streak >= counted as i64, "{h}");
    }
    // Not probed yet (the first probe is an interval away): starting.
    run(
        &d,
        &[
            "--name",
            "waiting",
            "--health-cmd",
            "true",
            "--health-interval",
            "60s",
            "bb:1",
            "sleep",
            "300",
        ],
    );
    assert_eq!(status(&d, "waiting"), "starting");
    let ps = d
        .docker(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .ok()
        .stdout
        .clone();
    assert!(
        ps.lines()
            .any(|l| l.starts_with("waiting ") && l.ends_with("(health: starting)")),
        "{ps}"
    );
    assert_eq!(ps_health(&d, "starting"), ["waiting"]);
    // Passing: healthy at the first probe of the period, long before the 60 s interval.
    run(
        &d,
        &[
            "--name",
            "quick",
            "--health-cmd",
            "true",
            "--health-interval",
            "60s",
            "--health-start-period",
            "60s",
            "--health-start-interval",
            "100ms",
            "bb:1",
            "sleep",
            "300",
        ],
    );
    wait_for_status(&d, "quick", "healthy");
    d.docker(&["rm", "-f", "warming", "quick", "waiting"]).ok();
}

/// RFC 3339 as unix seconds (the `date` tool reads it).
fn parse_time(t: &str) -> f64 {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", t, "+%s.%N"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a time")
}

/// A docker-archive of busybox whose config has `Healthcheck`, loaded as `tag`.
fn image_with_healthcheck(d: &Daemon, tag: &str, check: Value) {
    let layer = std::fs::read(busybox_rootfs_tar(d.dir.path())).expect("rootfs tar");
    let diff_id = format!("sha256:{}", sha256_hex(&layer));
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["sleep", "300"], "Healthcheck": check},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "busybox"}],
    });
    let config_bytes = serde_json::to_vec(&config).expect("config");
    let config_name = format!("{}.json", sha256_hex(&config_bytes));
    let layer_path = format!("{}/layer.tar", sha256_hex(&layer));
    let manifest =
        json!([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_path.clone()]}]);
    let archive = d.dir.path().join("health-image.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&archive).expect("archive"));
    let manifest = serde_json::to_vec(&manifest).expect("manifest");
    for (name, data) in [
        (layer_path.as_str(), &layer[..]),
        (config_name.as_str(), &config_bytes[..]),
        ("manifest.json", &manifest[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).expect("path");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    b.finish().expect("finish");
    load(d, &archive);
}

fn load(d: &Daemon, archive: &Path) {
    d.docker(&["load", "-i", archive.to_str().expect("utf8")])
        .ok();
}

#[test]
fn the_images_check_is_merged_and_no_healthcheck_disables_it() {
    let d = Daemon::start_for_containers();
    image_with_healthcheck(
        &d,
        "checked:1",
        json!({"Test": ["CMD-SHELL", "echo from-image"], "Interval": 100_000_000, "Retries": 4}),
    );
    // The image's check as it is.
    run(&d, &["--name", "inherits", "checked:1"]);
    let h = wait_for_status(&d, "inherits", "healthy");
    assert_eq!(h["Log"][0]["Output"], "from-image\n", "{h}");
    // The container's command over the image's; its other fields inherited.
    run(
        &d,
        &[
            "--name",
            "overrides",
            "--health-cmd",
            "echo mine",
            "checked:1",
        ],
    );
    let h = wait_for_status(&d, "overrides", "healthy");
    assert_eq!(h["Log"][0]["Output"], "mine\n", "{h}");
    assert_eq!(
        inspect(&d, "overrides")["Config"]["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "echo mine"], "Interval": 100_000_000, "Retries": 4})
    );
    // CMD (exec form) from the API, not through a shell.
    let body = json!({"Image": "checked:1", "HostConfig": {"NetworkMode": "none"},
        "Healthcheck": {"Test": ["CMD", "echo", "exec", "$HOME"]}});
    let (code, answer) = d.http(
        "POST",
        "/containers/create?name=execform",
        body.to_string().as_bytes(),
    );
    assert_eq!(code, 201, "{answer}");
    d.docker(&["start", "execform"]).ok();
    let h = wait_for_status(&d, "execform", "healthy");
    assert_eq!(h["Log"][0]["Output"], "exec $HOME\n", "{h}");
    // HEALTHCHECK given to `docker import --change`.
    let rootfs = busybox_rootfs_tar(d.dir.path());
    d.docker(&[
        "import",
        "--change",
        "CMD [\"sleep\", \"300\"]",
        "--change",
        "HEALTHCHECK --interval=100ms --retries=1 CMD echo imported",
        rootfs.to_str().expect("utf8"),
        "imported:1",
    ])
    .ok();
    run(&d, &["--name", "imported", "imported:1"]);
    let h = wait_for_status(&d, "imported", "healthy");
    assert_eq!(h["Log"][0]["Output"], "imported\n", "{h}");
    // --no-healthcheck: no probes at all.
    run(
        &d,
        &["--name", "unchecked", "--no-healthcheck", "checked:1"],
    );
    // moby's merge keeps the image's other fields under NONE.
    assert_eq!(
        inspect(&d, "unchecked")["Config"]["Healthcheck"]["Test"],
        json!(["NONE"])
    );
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(health(&d, "unchecked").is_null());
    assert!(ps_health(&d, "none").contains(&"unchecked".to_string()));
    assert!(!events(&d, "unchecked").contains("exec_"));
    d.docker(&[
        "rm",
        "-f",
        "inherits",
        "overrides",
        "execform",
        "imported",
        "unchecked",
    ])
    .ok();
}

#[test]
fn invalid_checks_are_refused_with_mobys_messages() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "create",
        "--health-cmd",
        "true",
        "--health-interval",
        "500us",
        "bb:1",
    ])
    .failed_with("Interval in Healthcheck cannot be less than 1ms");
    for (check, message) in [
        (
            json!({"Test": ["CMD", "true"], "Retries": -1}),
            "Retries in Healthcheck cannot be negative",
        ),
        (
            json!({"Test": ["CMD", "true"], "Timeout": 10}),
            "Timeout in Healthcheck cannot be less than 1ms",
        ),
        (
            json!({"Test": ["CMD", "true"], "StartInterval": 999}),
            "StartInterval in Healthcheck cannot be less than 1ms",
        ),
        (json!({"Test": "true"}), "Config.Healthcheck.Test"),
    ] {
        let body = json!({"Image": "bb:1", "Healthcheck": check});
        let (code, answer) = d.http("POST", "/containers/create", body.to_string().as_bytes());
        assert_eq!(code, 400, "{check}: {answer}");
        assert!(answer.contains(message), "{check}: {answer}");
    }
    // StartInterval came with API 1.44; older clients' is ignored, as by dockerd.
    let body = json!({"Image": "bb:1", "HostConfig": {"NetworkMode": "none"},
        "Healthcheck": {"Test": ["CMD", "true"], "StartInterval": 5}});
    let (code, answer) = d.http(
        "POST",
        "/v1.43/containers/create",
        body.to_string().as_bytes(),
    );
    assert_eq!(code, 201, "{answer}");
    let (code, answer) = d.http(
        "POST",
        "/v1.44/containers/create",
        body.to_string().as_bytes(),
    );
    assert_eq!(code, 400, "{answer}");
    d.berth(&[
        "create",
        "--no-healthcheck",
        "--health-retries",
        "2",
        "bb:1",
    ])
    .failed_with("--no-healthcheck conflicts with --health-* options");
}

#[test]
fn probes_begin_again_after_a_restart_of_berthd() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    run(
        &d,
        &[
            "--name",
            "kept",
            "--health-cmd",
            "echo alive",
            "--health-interval",
            "100ms",
            "bb:1",
            "sleep",
            "300",
        ],
    );
    wait_for_status(&d, "kept", "healthy");
    d.stop();
    let stopped = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    d.spawn(&[]);
    // Live-restored, and probed again (as moby restarts the monitor).
    assert_eq!(inspect(&d, "kept")["State"]["Running"], true);
    let mut last = Value::Null;
    assert!(
        wait_for(|| {
            last = health(&d, "kept");
            last["Status"] == "healthy"
                && last["Log"]
                    .as_array()
                    .and_then(|l| l.last())
                    .and_then(|r| r["Start"].as_str())
                    .is_some_and(|t| parse_time(t) > stopped)
        }),
        "no probe since berthd's restart: {last}"
    );
    d.docker(&["rm", "-f", "kept"]).ok();
}

#[test]
fn the_berth_cli_sends_the_health_flags_as_the_docker_cli() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.berth(&[
        "run",
        "-d",
        "--name",
        "viaberth",
        "--network",
        "none",
        "--health-cmd",
        "echo from-berth",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "1.5s",
        "--health-retries",
        "2",
        "--health-start-period",
        "1m",
        "--health-start-interval",
        "50ms",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    assert_eq!(
        inspect(&d, "viaberth")["Config"]["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "echo from-berth"], "Interval": 100_000_000,
            "Timeout": 1_500_000_000, "StartPeriod": 60_000_000_000i64,
            "StartInterval": 50_000_000, "Retries": 2})
    );
    let h = wait_for_status(&d, "viaberth", "healthy");
    assert_eq!(h["Log"][0]["Output"], "from-berth\n", "{h}");
    let ps = d.berth(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.ok().stdout.contains("(healthy)"), "{}", ps.stdout);
    d.berth(&["create", "--health-interval", "-1s", "bb:1"])
        .failed_with("--health-interval cannot be negative");
    d.berth(&["rm", "-f", "viaberth"]).ok();
}

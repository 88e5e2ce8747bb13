//! Where berthd answered differently from dockerd for the same request (issue 18): each
//! case as the docker CLI sends it.

mod common;

use common::*;

/// Endpoints berth lacks name the feature (a 501), instead of a bare "page not found".
#[test]
fn missing_features_are_named() {
    let d = Daemon::start();
    for (method, path, needle) in [
        ("GET", "/v1.45/plugins", "plugins"),
        ("GET", "/v1.45/swarm", "swarm mode"),
    ] {
        let (status, body) = d.http(method, path, b"");
        assert_eq!(status, 501, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body}");
    }
    let (status, _) = d.http("GET", "/v1.45/nonsense", b"");
    assert_eq!(status, 404);
}

/// A terminal gets TERM=xterm (run -t and exec -t), a container on the host's network the
/// host's name, inspect shows StopTimeout, and max-file alone is accepted, as in Docker.
#[test]
fn terminal_hostname_stop_timeout_and_log_options_as_docker() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let term = d.docker(&[
        "run",
        "--rm",
        "-t",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "echo $TERM",
    ]);
    assert_eq!(term.ok().stdout.trim(), "xterm");
    let own = d.docker(&[
        "run",
        "--rm",
        "-t",
        "--network",
        "none",
        "-e",
        "TERM=vt100",
        "bb:1",
        "sh",
        "-c",
        "echo $TERM",
    ]);
    assert_eq!(own.ok().stdout.trim(), "vt100");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "long",
        "--network",
        "none",
        "--stop-timeout",
        "7",
        "--log-opt",
        "max-file=3",
        "bb:1",
        "sleep",
        "60",
    ])
    .ok();
    let exec = d.docker(&["exec", "-t", "long", "sh", "-c", "echo $TERM"]);
    assert_eq!(exec.ok().stdout.trim(), "xterm");
    let plain = d.docker(&["exec", "long", "sh", "-c", "echo ${TERM:-none}"]);
    assert_eq!(plain.ok().stdout.trim(), "none");
    let inspect = d.docker(&[
        "inspect",
        "-f",
        "{{.Config.StopTimeout}} {{index .HostConfig.LogConfig.Config \"max-file\"}}",
        "long",
    ]);
    assert_eq!(inspect.ok().stdout.trim(), "7 3");
    let host = nix::unistd::gethostname().expect("hostname");
    let name = d.docker(&["run", "--rm", "--network", "host", "bb:1", "hostname"]);
    assert_eq!(name.ok().stdout.trim(), host.to_string_lossy());
    d.docker(&["rm", "-f", "long"]).ok();
}

/// SDKs send whole structs: fields dockerd ignores (an exec's `Container`, keys moby does
/// not have) and options at their defaults are accepted; an option that asks for what
/// berth lacks is refused by name, never dropped (`-v /data` used to be ignored, so the
/// data went to the container's layer instead of a volume).
#[test]
fn whole_structs_are_accepted_and_what_asks_is_refused() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let body = br#"{"Image":"bb:1","Cmd":["sleep","60"],"Runtime":"","AttachStdin":false,"ArgsEscaped":false,
        "Healthcheck":{"Test":["NONE"]},"Volumes":{},"ExposedPorts":{},"OnBuild":null,"Shell":null,
        "HostConfig":{"NetworkMode":"none","Isolation":"default","MemorySwappiness":-1,"IpcMode":"private",
        "ShmSize":67108864,"Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"PortBindings":{},
        "Mounts":[],"ContainerIDFile":"","OomScoreAdj":0,"KernelMemory":0,"CgroupParent":""}}"#;
    let (status, answer) = d.http("POST", "/containers/create?name=whole", body);
    assert_eq!(status, 201, "{answer}");
    d.docker(&["start", "whole"]).ok();
    let id = d
        .docker(&["inspect", "-f", "{{.Id}}", "whole"])
        .stdout
        .trim()
        .to_string();
    let exec =
        format!(r#"{{"Container":"{id}","Cmd":["true"],"AttachStdout":true,"Privileged":false}}"#);
    let (status, answer) = d.http("POST", "/containers/whole/exec", exec.as_bytes());
    assert_eq!(status, 201, "{answer}");
    // `-v /data` is an anonymous volume now (tests/volumes.rs), no longer refused.
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/data",
        "bb:1",
        "true",
    ])
    .ok();
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--link",
        "other:db",
        "bb:1",
        "true",
    ])
    .failed_with("HostConfig.Links is not supported by berth yet");
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "other",
        "bb:1",
        "true",
    ])
    .failed_with("No such container: other");
    d.docker(&["rm", "-f", "whole"]).ok();
}

/// A kill with SIGKILL returns once the exit is recorded (an rm right after works), an
/// exec's stream is framed as its start request says, and a `run --rm` whose start fails
/// ends with the error and leaves no container (the docker CLI waited for ever).
#[test]
fn kill_exec_framing_and_failed_rm_starts_as_dockerd() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for round in 0..5 {
        let name = format!("k{round}");
        d.docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "bb:1",
            "sleep",
            "60",
        ])
        .ok();
        d.berth(&["kill", &name]).ok();
        d.berth(&["rm", &name]).ok();
    }
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "nosuchuser",
        "bb:1",
        "true",
    ]);
    out.failed_with("nosuchuser");
    assert_eq!(
        d.docker(&["ps", "-aq"]).stdout.trim(),
        "",
        "a failed --rm start left a container"
    );
    // An exec made with a terminal, started with {"Tty": false}: frames (stream type 1).
    d.docker(&[
        "run",
        "-d",
        "--name",
        "xe",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "60",
    ])
    .ok();
    let (_, created) = d.http(
        "POST",
        "/containers/xe/exec",
        br#"{"Cmd":["echo","framed"],"Tty":true,"AttachStdout":true}"#,
    );
    let id = serde_json::from_str::<serde_json::Value>(&created).expect("json")["Id"]
        .as_str()
        .expect("id")
        .to_string();
    let raw = hijacked_exec_output(&d, &id, br#"{"Detach":false,"Tty":false}"#);
    assert!(raw.len() > 8 && raw[0] == 1, "not framed: {raw:?}");
    assert!(String::from_utf8_lossy(&raw[8..]).contains("framed"));
    d.docker(&["rm", "-f", "xe"]).ok();
}

/// The bytes an exec start sends back on its hijacked connection, after the 101 head.
fn hijacked_exec_output(d: &Daemon, id: &str, body: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).expect("connect");
    let head = format!(
        "POST /exec/{id}/start HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("body");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let start = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    all[start..].to_vec()
}

/// `{{.State.Status}} {{.State.Running}} {{.State.Restarting}} {{.RestartCount}} {{.State.StartedAt}}`
fn restart_state(d: &Daemon, name: &str) -> Vec<String> {
    let out = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Running}} {{.State.Restarting}} {{.RestartCount}} {{.State.StartedAt}}",
        name,
    ]);
    out.stdout.split_whitespace().map(String::from).collect()
}

/// Wait until `name` is in a restart back-off with at least `count` restarts behind it.
fn wait_restarting(d: &Daemon, name: &str, count: u32) -> bool {
    wait_for(|| {
        let s = restart_state(d, name);
        s.len() == 5
            && s[..3] == ["restarting", "true", "true"]
            && s[3].parse::<u32>().is_ok_and(|n| n >= count)
    })
}

/// A container whose policy restarts it is `restarting` during the back-off, as in
/// dockerd (it showed `exited`): inspect says Running and Restarting, ps says
/// "Restarting (N) ... ago", a plain rm is refused with dockerd's 409, and a stop or kill
/// cancels the restart (it stays exited; the stop used to be a no-op and it restarted).
#[test]
fn restarting_containers_are_restarting_until_stopped() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for name in ["again", "killed"] {
        d.docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--restart",
            "always",
            "bb:1",
            "sh",
            "-c",
            "exit 3",
        ])
        .ok();
    }
    // Three restarts in, the back-off is 400 ms and more: time to look at it.
    assert!(
        wait_restarting(&d, "again", 3),
        "{:?}",
        restart_state(&d, "again")
    );
    let listed = wait_for(|| {
        let ps = d.docker(&[
            "ps",
            "--filter",
            "status=restarting",
            "--filter",
            "name=again",
            "--format",
            "{{.Status}}",
        ]);
        ps.stdout.starts_with("Restarting (3) ")
    });
    assert!(listed, "{}", d.docker(&["ps", "-a"]).stdout);
    // A start may be under way at the moment of the rm (then it is running): try again.
    let refused = wait_for(|| {
        let rm = d.docker(&["rm", "again"]);
        assert_ne!(rm.code, 0, "a restarting container was removed");
        rm.stderr
            .contains("You cannot remove a restarting container")
            && rm
                .stderr
                .contains("Stop the container before attempting removal or force remove")
    });
    assert!(refused);
    let (status, body) = d.http("DELETE", "/containers/again", b"");
    assert!(status == 409, "{status} {body}");
    // Prune leaves it, as it leaves running ones.
    assert!(wait_restarting(&d, "again", 3));
    d.docker(&["container", "prune", "-f"]).ok();
    assert_eq!(restart_state(&d, "again").len(), 5, "pruned");
    // The stop during the back-off cancels the restart: exited, and not started again.
    assert!(wait_restarting(&d, "again", 3));
    d.docker(&["stop", "again"]).ok();
    let stopped = restart_state(&d, "again");
    assert_eq!(stopped[..3], ["exited", "false", "false"], "{stopped:?}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        restart_state(&d, "again"),
        stopped,
        "restarted after its stop"
    );
    d.docker(&["rm", "again"]).ok();
    // So does a kill.
    assert!(wait_restarting(&d, "killed", 3));
    d.docker(&["kill", "killed"]).ok();
    let killed = restart_state(&d, "killed");
    assert_eq!(killed[..3], ["exited", "false", "false"], "{killed:?}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        restart_state(&d, "killed"),
        killed,
        "restarted after its kill"
    );
    d.docker(&["rm", "killed"]).ok();
}

/// A push of an image the store lacks is a 200 stream, "The push refers to repository"
/// then the error, as dockerd's push (it writes that message before it looks for the
/// image); berth answered a 404. Either CLI prints the error and exits 1.
#[test]
fn push_of_a_missing_image_fails_in_its_stream() {
    let d = Daemon::start();
    let (status, body) = d.http("POST", "/v1.45/images/127.0.0.1:9/nosuch/push?tag=1", b"");
    assert_eq!(status, 200, "{body}");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 2, "{body}");
    assert_eq!(
        lines[0]["status"],
        "The push refers to repository [127.0.0.1:9/nosuch]"
    );
    let error = lines[1]["errorDetail"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("does not exist locally"), "{body}");
    assert_eq!(lines[1]["error"], error);
    let out = d.docker(&["push", "127.0.0.1:9/nosuch:1"]);
    out.failed_with("An image does not exist locally with the tag");
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("The push refers to repository"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stderr.contains("Error response from daemon"),
        "{}",
        out.stderr
    );
    d.berth(&["push", "127.0.0.1:9/nosuch:1"])
        .failed_with("An image does not exist locally with the tag");
}

/// `--add-runtime` for crun through a wrapper that gives it a mount namespace without the
/// hybrid host's cgroup2 mount (crun 1.8 refuses hybrid hosts).
fn crun_v1_flag(dir: &std::path::Path) -> String {
    let path = dir.join("crun-v1");
    std::fs::write(
        &path,
        "#!/bin/sh\nexec unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec \"$0\" \"$@\"' /usr/bin/crun \"$@\"\n",
    )
    .expect("wrapper");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    format!("--add-runtime=crun-v1={}", path.display())
}

/// A container's own network namespace has its loopback up, as Docker brings it up in
/// every namespace it creates (berth left it down: nothing reached 127.0.0.1 under
/// `--network none`), whichever runtime made it.
#[test]
fn loopback_is_up_in_a_containers_own_network_namespace() {
    let tmp = tempfile::tempdir().expect("tmp");
    let crun = crun_v1_flag(tmp.path());
    let d = Daemon::start_for_containers_with(&[&crun]);
    busybox_image(&d);
    for runtime in ["berth-runtime", "runc", "crun-v1"] {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--runtime",
            runtime,
            "bb:1",
            "sh",
            "-c",
            "ip link show lo && ping -c1 -W2 127.0.0.1",
        ]);
        out.ok();
        let link = out.stdout.lines().next().unwrap_or_default();
        assert!(link.contains(",UP"), "{runtime}: {}", out.stdout);
        assert!(
            out.stdout.contains("1 packets received"),
            "{runtime}: {}",
            out.stdout
        );
    }
    // The host's own loopback is not the container's: a host-network container sees it.
    let host = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "bb:1",
        "ip",
        "link",
        "show",
        "lo",
    ]);
    assert!(host.ok().stdout.contains(",UP"), "{}", host.stdout);
}

/// The berth CLI against `socket` with only these environment variables for the host.
fn berth_with_env(env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut cmd = std::process::Command::new(berth_cli());
    cmd.env_remove("BERTH_HOST").env_remove("DOCKER_HOST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run berth");
    Out::from(out)
}

/// The berth CLI finds the daemon through DOCKER_HOST too (-H first, then BERTH_HOST,
/// then DOCKER_HOST), says why it cannot connect once, not twice, and ends as the docker
/// CLI does when its output is closed (`logs -f | head`: killed by SIGPIPE, no message;
/// it printed "Broken pipe"). A tag event names the tag as docker shows it (`bb:2`, as the
/// untag event does; it said `docker.io/library/bb:2`).
#[test]
fn berth_cli_host_errors_closed_output_and_tag_events() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let real = format!("unix://{}", d.socket().display());
    let bogus = "unix:///nonexistent/berth.sock";
    berth_with_env(&[("DOCKER_HOST", &real)], &["images", "-q"]).ok();
    berth_with_env(
        &[("BERTH_HOST", &real), ("DOCKER_HOST", bogus)],
        &["images"],
    )
    .ok();
    berth_with_env(&[("BERTH_HOST", bogus)], &["-H", &real, "images"]).ok();
    let refused = berth_with_env(
        &[("BERTH_HOST", bogus), ("DOCKER_HOST", &real)],
        &["images"],
    );
    refused.failed_with("Cannot connect to the berth daemon at unix:///nonexistent/berth.sock");
    assert_eq!(
        refused.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        refused.stderr
    );

    d.docker(&[
        "run",
        "-d",
        "--name",
        "talker",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "while true; do echo line; sleep 0.05; done",
    ])
    .ok();
    let cli = |program: &std::path::Path, host: &[&str]| {
        let mut child = std::process::Command::new(program)
            .args(host)
            .args(["logs", "-f", "talker"])
            .env("DOCKER_HOST", &real)
            .env("DOCKER_CONFIG", d.client_config())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut first).expect("a line");
        assert_eq!(first, "line\n");
        drop(out);
        let status = child.wait().expect("wait");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
            .expect("stderr");
        (status.signal(), err)
    };
    let docker = cli(std::path::Path::new("docker"), &[]);
    assert_eq!(docker, (Some(libc::SIGPIPE), String::new()), "docker");
    let berth = cli(&berth_cli(), &["-H", &real]);
    assert_eq!(berth, docker, "berth");
    d.docker(&["rm", "-f", "talker"]).ok();

    d.docker(&["tag", "bb:1", "bb:2"]).ok();
    d.docker(&["rmi", "bb:2"]).ok();
    let events = d.past_events(&[
        "--filter",
        "type=image",
        "--filter",
        "image=bb:2",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(events.ok().stdout, "tag bb:2\nuntag bb:2\n");
}

/// `docker wait` on a container that its policy keeps restarting waits, as dockerd's does
/// (moby counts the back-off as running): it returned at once with the last exit code.
#[test]
fn wait_blocks_through_restarts_until_a_stop() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "again",
        "--network",
        "none",
        "--restart",
        "always",
        "bb:1",
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    assert!(
        wait_restarting(&d, "again", 1),
        "{:?}",
        restart_state(&d, "again")
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let out = d.docker(&["wait", "again"]);
            let _ = tx.send(out.stdout.trim().to_string());
        });
        // Still waiting after two more restarts.
        assert!(
            rx.recv_timeout(std::time::Duration::from_secs(2)).is_err(),
            "wait returned during the restarts"
        );
        d.docker(&["stop", "again"]).ok();
        let code = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("wait returns after the stop");
        assert_eq!(code, "3");
    });
    d.docker(&["rm", "again"]).ok();
}

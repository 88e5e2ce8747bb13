//! Containers through berthd with the real docker CLI: the seed notes' session as far as
//! this first slice goes (detached containers: create, start, run -d, ps, logs, wait, stop,
//! kill, rm, --rm), and refusals that name what is not supported yet.

mod common;

use std::time::Duration;

use common::*;

fn state(d: &Daemon, name: &str) -> String {
    let out = d.docker(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        name,
    ]);
    out.ok();
    out.stdout.trim().to_string()
}

#[test]
fn create_start_run_logs_wait_stop_rm() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);

    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "c1",
        "bb:1",
        "sh",
        "-c",
        "echo created-then-started; echo to-stderr >&2",
    ])
    .ok();
    assert_eq!(state(&d, "c1"), "created 0");
    let listed = d.docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(listed.stdout.contains("c1 Created"), "{}", listed.stdout);
    d.docker(&["start", "c1"]).ok();
    assert_eq!(d.docker(&["wait", "c1"]).stdout.trim(), "0");
    let logs = d.docker(&["logs", "c1"]);
    assert_eq!(logs.stdout, "created-then-started\n");
    assert_eq!(logs.stderr, "to-stderr\n");
    assert_eq!(state(&d, "c1"), "exited 0");

    let id = d.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "web",
        "bb:1",
        "sh",
        "-c",
        "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
    ]);
    id.ok();
    let id = id.stdout.trim().to_string();
    assert_eq!(id.len(), 64);
    assert!(d
        .docker(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .stdout
        .contains("web Up"));
    assert_eq!(state(&d, &id[..12]), "running 0");
    std::thread::sleep(Duration::from_millis(500));
    let tail = d.docker(&["logs", "--tail", "2", "web"]);
    assert_eq!(tail.stdout.lines().count(), 2, "{}", tail.stdout);
    // logs -f follows until the container ends.
    let follower = std::thread::spawn({
        let sock = d.socket();
        let cfg = d.dir.path().join("docker-config");
        move || {
            std::process::Command::new("docker")
                .args(["logs", "-f", "web"])
                .env("DOCKER_HOST", format!("unix://{}", sock.display()))
                .env("DOCKER_CONFIG", cfg)
                .output()
                .expect("logs -f")
        }
    });
    // Stopped once it has written the lines the follower must show (however slow the machine).
    assert!(wait_for(|| d
        .docker(&["logs", "web"])
        .stdout
        .lines()
        .count()
        >= 8));
    std::thread::sleep(Duration::from_millis(100));
    d.docker(&["stop", "-t", "0", "web"]).ok();
    let followed = follower.join().expect("follower");
    let text = String::from_utf8_lossy(&followed.stdout);
    assert!(
        text.lines().count() >= 8 && text.starts_with("line 0\n"),
        "{text}"
    );
    assert_eq!(state(&d, "web"), "exited 137");

    d.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "three",
        "bb:1",
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    assert_eq!(d.docker(&["wait", "three"]).stdout.trim(), "3");
    let exited = d.docker(&["ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}"]);
    assert_eq!(exited.stdout.trim(), "three");

    // A running container is removed only by force.
    d.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "busy",
        "bb:1",
        "sleep",
        "30",
    ])
    .ok();
    let refused = d.docker(&["rm", "busy"]);
    refused.failed_with("cannot remove a running container");
    d.docker(&["kill", "busy"]).ok();
    assert_eq!(d.docker(&["wait", "busy"]).stdout.trim(), "137");
    let killed_again = d.docker(&["kill", "busy"]);
    killed_again.failed_with("is not running");
    d.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "busy2",
        "bb:1",
        "sleep",
        "30",
    ])
    .ok();
    d.docker(&["rm", "-f", "busy2"]).ok();

    // --rm: gone once it ends.
    d.docker(&[
        "run",
        "-d",
        "--rm",
        "--network",
        "none",
        "--name",
        "gone",
        "bb:1",
        "true",
    ])
    .ok();
    assert!(wait_gone(&d, "gone"), "an --rm container stayed");

    // `docker ps -aq | xargs docker rm`
    let all = d.docker(&["ps", "-aq"]);
    let ids: Vec<&str> = all.stdout.split_whitespace().collect();
    assert_eq!(ids.len(), 4, "{}", all.stdout);
    let mut args = vec!["rm"];
    args.extend(ids);
    d.docker(&args).ok();
    assert_eq!(d.docker(&["ps", "-aq"]).stdout.trim(), "");
    let left = std::fs::read_dir(d.data_root().join("containers"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "container directories left");
}

fn wait_gone(d: &Daemon, name: &str) -> bool {
    for _ in 0..100 {
        if d.docker(&["inspect", name]).code != 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn what_is_not_supported_yet_is_refused_by_name() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for (args, needle) in [
        (
            vec!["run", "-d", "--network", "user-net", "bb:1", "true"],
            "network user-net not found",
        ),
        (
            vec![
                "run",
                "-d",
                "--network",
                "none",
                "--link",
                "other:db",
                "bb:1",
                "true",
            ],
            "HostConfig.Links is not supported",
        ),
        (
            vec![
                "run",
                "-d",
                "--network",
                "none",
                "--storage-opt",
                "size=1G",
                "bb:1",
                "true",
            ],
            "HostConfig.StorageOpt is not supported",
        ),
        (
            vec![
                "run",
                "-d",
                "--network",
                "none",
                "--log-opt",
                "compress=true",
                "bb:1",
                "true",
            ],
            "unknown log opt 'compress' for json-file log driver",
        ),
        (
            vec![
                "run",
                "-d",
                "--network",
                "none",
                "--log-driver",
                "syslog",
                "bb:1",
                "true",
            ],
            "logger: no log driver named 'syslog' is registered",
        ),
        (
            vec![
                "run",
                "-d",
                "--pull",
                "never",
                "--network",
                "none",
                "missing:1",
                "true",
            ],
            "No such image: missing:1",
        ),
        (
            vec![
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                "x y",
                "bb:1",
                "true",
            ],
            "Invalid container name",
        ),
        (vec!["logs", "nothing"], "No such container"),
        (
            vec![
                "run",
                "-d",
                "--network",
                "none",
                "-u",
                "ghost",
                "bb:1",
                "true",
            ],
            "unable to find user ghost",
        ),
    ] {
        let out = d.docker(&args);
        out.failed();
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "taken",
        "bb:1",
        "true",
    ])
    .ok();
    let clash = d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "taken",
        "bb:1",
        "true",
    ]);
    clash.failed_with("is already in use");
    let (status, body) = d.http("POST", "/v1.45/containers/create", b"{not json");
    assert_eq!(status, 400, "{body}");

    // The image of a container is not deleted: 409 without -f, only untagged with it.
    let refused = d.docker(&["rmi", "bb:1"]);
    refused.failed_with("is using its referenced image");
    d.docker(&["image", "prune", "-a", "-f"]).ok();
    assert_eq!(
        d.docker(&["images", "-q"]).stdout.lines().count(),
        1,
        "prune kept the used image"
    );
    let forced = d.docker(&["rmi", "-f", "bb:1"]);
    forced.ok();
    assert_eq!(forced.stdout.trim(), "Untagged: bb:1");
    assert_eq!(d.docker(&["images", "-q"]).stdout.lines().count(), 1);
    // A start that failed (-u nobody) left a created container, as Docker does.
    let ids = d.docker(&["ps", "-aq"]);
    assert_eq!(ids.stdout.lines().count(), 2, "{}", ids.stdout);
    for id in ids.stdout.lines() {
        d.docker(&["rm", id]).ok();
    }
    d.docker(&["image", "prune", "-f"]).ok();
    assert_eq!(d.docker(&["images", "-q"]).stdout.trim(), "");
}

#[test]
fn seccomp_profiles_and_no_new_privileges() {
    // A Docker-format profile that refuses mkdir and allows the rest.
    let profile_dir = tempfile::tempdir().expect("tmp");
    let profile = profile_dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .expect("profile");
    let d =
        Daemon::start_for_containers_with(&["--seccomp-profile", profile.to_str().expect("utf8")]);
    busybox_image(&d);
    let probe =
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/made 2>&1 && echo made; true";
    let run = |name: &str, extra: &[&str]| -> String {
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        args.extend(extra);
        args.extend(["bb:1", "sh", "-c", probe]);
        d.docker(&args).ok();
        assert_eq!(d.docker(&["wait", name]).stdout.trim(), "0");
        let logs = d.docker(&["logs", name]);
        format!("{}{}", logs.stdout, logs.stderr)
    };
    let default = run("default", &[]);
    assert!(
        default.contains("Seccomp:\t2") && default.contains("Operation not permitted"),
        "{default}"
    );
    assert!(default.contains("NoNewPrivs:\t0"), "{default}");
    let unconfined = run("unconfined", &["--security-opt", "seccomp=unconfined"]);
    assert!(
        unconfined.contains("Seccomp:\t0") && unconfined.contains("made"),
        "{unconfined}"
    );
    let nnp = run("nnp", &["--security-opt", "no-new-privileges"]);
    assert!(nnp.contains("NoNewPrivs:\t1"), "{nnp}");
    let refused = d.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--security-opt",
        "apparmor=x",
        "bb:1",
        "true",
    ]);
    refused.failed_with("is not supported by berth yet");
}

/// `--seccomp-profile builtin` (also what berthd uses when no profile file is found): a
/// user namespace, which needs no capability, is refused; CAP_SYS_ADMIN gives it back.
#[test]
fn the_builtin_seccomp_profile() {
    let d = Daemon::start_for_containers_with(&["--seccomp-profile", "builtin"]);
    busybox_image(&d);
    let info = d.docker(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert!(
        info.ok().stdout.contains("name=seccomp,profile=builtin"),
        "{}",
        info.stdout
    );
    let probe = "grep '^Seccomp:' /proc/self/status; unshare -U true 2>&1 && echo userns-made; \
                 chroot / true && echo chroot-ok; ls / > /dev/null && echo ls-ok";
    let run = |extra: &[&str]| -> String {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(extra);
        args.extend(["bb:1", "sh", "-c", probe]);
        let out = d.docker(&args);
        format!("{}{}", out.ok().stdout, out.stderr)
    };
    let default = run(&[]);
    assert!(default.contains("Seccomp:\t2"), "{default}");
    assert!(
        default.contains("Operation not permitted") && !default.contains("userns-made"),
        "{default}"
    );
    assert!(
        default.contains("chroot-ok") && default.contains("ls-ok"),
        "{default}"
    );
    let admin = run(&["--cap-add", "SYS_ADMIN"]);
    assert!(admin.contains("userns-made"), "{admin}");
    let unconfined = run(&["--security-opt", "seccomp=unconfined"]);
    assert!(
        unconfined.contains("Seccomp:\t0") && unconfined.contains("userns-made"),
        "{unconfined}"
    );
}

#[test]
fn resources_capabilities_mounts_and_ulimits() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host_dir = d.dir.path().join("shared");
    std::fs::create_dir(&host_dir).expect("shared");
    std::fs::write(host_dir.join("from-host"), "hello host\n").expect("write");
    let bind = format!("{}:/shared", host_dir.display());
    let bind_ro = format!("{}:/shared-ro:ro", host_dir.display());
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us; \
                  grep CapEff /proc/self/status; ulimit -n; cat /shared/from-host; echo written > /shared/from-container; \
                  touch /shared-ro/x 2>&1 | grep -c Read-only; touch /rootfile 2>&1 | grep -c Read-only; \
                  echo ok > /scratch/f && cat /scratch/f";
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-m",
        "64m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "--cap-drop",
        "chown",
        "--ulimit",
        "nofile=512:1024",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "-v",
        &bind,
        "-v",
        &bind_ro,
        "bb:1",
        "sh",
        "-c",
        script,
    ]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..3], ["67108864", "20", "50000"], "{}", out.stdout);
    let cap_eff =
        u64::from_str_radix(lines[3].split_whitespace().nth(1).expect("caps"), 16).expect("hex");
    assert_eq!(cap_eff & 1, 0, "CAP_CHOWN was dropped: {}", out.stdout);
    assert_ne!(cap_eff & (1 << 5), 0, "CAP_KILL stays");
    assert_eq!(
        &lines[4..],
        ["512", "hello host", "1", "1", "ok"],
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("from-container")).expect("bind write"),
        "written\n"
    );

    let who = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "nobody:tty",
        "bb:1",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    who.ok();
    assert_eq!(who.stdout, "65534\n5\n");

    for (args, needle) in [
        (vec!["-m", "1k"], "Minimum memory limit"),
        (vec!["-v", "named:/data:bogus"], "invalid mode"),
        (vec!["--cap-add", "not a cap"], "unknown capability"),
    ] {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend(args);
        all.extend(["bb:1", "true"]);
        let refused = d.docker(&all);
        refused.failed();
        assert!(
            refused.stderr.contains(needle),
            "{all:?}: {}",
            refused.stderr
        );
    }
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.docker(&["inspect", "--format", format, name])
        .stdout
        .trim()
        .to_string()
}

#[test]
fn restart_policies() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    let run = |name: &str, policy: &str, script: &str| {
        d.docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            name,
            "--restart",
            policy,
            "bb:1",
            "sh",
            "-c",
            script,
        ])
        .ok();
    };
    // on-failure:3 restarts three times, then leaves it exited.
    run("flaky", "on-failure:3", "exit 1");
    assert!(
        wait_for(|| inspect(&d, "flaky", "{{.RestartCount}} {{.State.Status}}") == "3 exited"),
        "on-failure:3 gave {}",
        inspect(&d, "flaky", "{{.RestartCount}} {{.State.Status}}")
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        inspect(&d, "flaky", "{{.RestartCount}} {{.State.ExitCode}}"),
        "3 1"
    );
    // on-failure does not restart a success.
    run("fine", "on-failure", "exit 0");
    assert_eq!(d.docker(&["wait", "fine"]).stdout.trim(), "0");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(inspect(&d, "fine", "{{.RestartCount}}"), "0");

    // always restarts after exits, until the user stops it.
    run("forever", "always", "sleep 0.1");
    assert!(wait_for(|| inspect(&d, "forever", "{{.RestartCount}}")
        .parse::<u32>()
        .unwrap_or(0)
        >= 2));
    d.docker(&["stop", "-t", "1", "forever"]).ok();
    run("service", "unless-stopped", "sleep 30");
    d.docker(&["stop", "-t", "0", "service"]).ok();
    run("daemon-bound", "always", "sleep 30");
    d.docker(&["stop", "-t", "0", "daemon-bound"]).ok();
    assert_eq!(inspect(&d, "daemon-bound", "{{.State.Status}}"), "exited");

    // Across a daemon restart: always starts again, unless-stopped stays stopped.
    assert!(d.stop().success());
    d.spawn(&[]);
    assert!(wait_for(|| inspect(
        &d,
        "daemon-bound",
        "{{.State.Status}}"
    ) == "running"));
    assert_eq!(inspect(&d, "service", "{{.State.Status}}"), "exited");
    assert_eq!(
        inspect(&d, "service", "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );

    // The docker CLI refuses --rm with --restart itself; the API does too.
    let body = br#"{"Image": "bb:1", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none", "AutoRemove": true, "RestartPolicy": {"Name": "always"}}}"#;
    let (status, text) = d.http("POST", "/v1.45/containers/create", body);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Conflicting options"), "{text}");
    let bad = d.docker(&[
        "run",
        "-d",
        "--restart",
        "always:3",
        "--network",
        "none",
        "bb:1",
        "true",
    ]);
    bad.failed();
}

#[test]
fn oom_killed_in_inspect_and_events() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    // tail keeps a line without an end in memory: far past 16 MiB.
    let hog = "head -c 100000000 /dev/zero | tail > /dev/null";
    let out = d.docker(&[
        "run",
        "--name",
        "hog",
        "--network",
        "none",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "bb:1",
        "sh",
        "-c",
        hog,
    ]);
    out.failed();
    assert_eq!(
        inspect(&d, "hog", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137"
    );
    // The events are recorded as the exit is: poll until die is there.
    let actions = || {
        d.docker(&[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            "container=hog",
            "--format",
            "{{.Action}}",
        ])
        .stdout
    };
    assert!(wait_for(|| actions().contains("die")), "{}", actions());
    let seen = actions();
    let order: Vec<&str> = seen
        .lines()
        .filter(|a| *a == "oom" || *a == "die")
        .collect();
    assert_eq!(order, ["oom", "die"], "{seen}");
    // A run that stays within the limit clears it.
    d.docker(&[
        "run",
        "--name",
        "calm",
        "--network",
        "none",
        "-m",
        "16m",
        "bb:1",
        "true",
    ])
    .ok();
    assert_eq!(
        inspect(&d, "calm", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "false 0"
    );
}

#[test]
fn runtime_chosen_per_container() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let runtimes = d.docker(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(runtimes.stdout.contains("\"runc\""), "{}", runtimes.stdout);
    // The container's processes run under the runtime's own state and cgroup.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "by-runc",
        "--runtime",
        "runc",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "60",
    ])
    .ok();
    assert_eq!(inspect(&d, "by-runc", "{{.HostConfig.Runtime}}"), "runc");
    let id = inspect(&d, "by-runc", "{{.Id}}");
    let runc_state = d
        .exec_root()
        .join("runtime/runc")
        .join(&id)
        .join("state.json");
    assert!(runc_state.exists(), "runc keeps {}", runc_state.display());
    let exec = d.docker(&["exec", "by-runc", "sh", "-c", "echo exec-through-runc"]);
    assert_eq!(exec.stdout, "exec-through-runc\n", "{}", exec.stderr);
    d.docker(&["pause", "by-runc"]).ok();
    assert_eq!(inspect(&d, "by-runc", "{{.State.Paused}}"), "true");
    d.docker(&["unpause", "by-runc"]).ok();
    let top = d.docker(&["top", "by-runc"]);
    assert!(top.stdout.contains("sleep 60"), "{}", top.stdout);
    d.docker(&["stop", "-t", "1", "by-runc"]).ok();
    assert_eq!(state(&d, "by-runc"), "exited 137");
    assert!(
        !runc_state.exists(),
        "runc's state is deleted with the container"
    );
    // The default stays berth-runtime.
    d.docker(&[
        "create",
        "--name",
        "by-default",
        "--network",
        "none",
        "bb:1",
        "true",
    ])
    .ok();
    assert_eq!(
        inspect(&d, "by-default", "{{.HostConfig.Runtime}}"),
        "berth-runtime"
    );
    // An unknown runtime: Docker's message, nothing created.
    let bad = d.docker(&[
        "create",
        "--name",
        "nope",
        "--runtime",
        "nope",
        "--network",
        "none",
        "bb:1",
        "true",
    ]);
    bad.failed_with("unknown or invalid runtime name: nope");
    d.docker(&["inspect", "nope"]).failed();
}

#[test]
fn inspect_shows_the_host_config_and_bind_mounts() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host_dir = d.dir.path().join("data-dir");
    std::fs::create_dir(&host_dir).expect("dir");
    let bind = format!("{}:/data:ro", host_dir.display());
    d.docker(&[
        "create",
        "--name",
        "shown",
        "--network",
        "none",
        "-m",
        "32m",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
        "--cap-add",
        "NET_ADMIN",
        "-v",
        &bind,
        "bb:1",
        "true",
    ])
    .ok();
    assert_eq!(
        inspect(
            &d,
            "shown",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.CapAdd}} {{.HostConfig.Binds}}"
        ),
        format!("33554432 50 512 [CAP_NET_ADMIN] [{bind}]")
    );
    assert_eq!(
        inspect(
            &d,
            "shown",
            "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}}{{end}}"
        ),
        format!("bind {} /data false", host_dir.display())
    );
}

#[test]
fn minimal_api_bodies_are_enough() {
    // Clients other than the docker CLI leave out what they do not set: no key is required
    // beyond the image (and an exec's Cmd).
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let (status, text) = d.http(
        "POST",
        "/v1.45/containers/create?name=bare",
        br#"{"Image": "bb:1", "Cmd": ["sleep", "30"], "HostConfig": {"NetworkMode": "none"}}"#,
    );
    assert_eq!(status, 201, "{text}");
    let (status, text) = d.http("POST", "/v1.45/containers/bare/start", b"");
    assert_eq!(status, 204, "{text}");
    let (status, text) = d.http(
        "POST",
        "/v1.45/containers/bare/exec",
        br#"{"Cmd": ["true"]}"#,
    );
    assert_eq!(status, 201, "{text}");
    d.docker(&["rm", "-f", "bare"]).ok();
}

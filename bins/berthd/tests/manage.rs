//! Managing containers with the real docker CLI: pause/unpause, rename, top, port,
//! restart, container prune, ps -s/--filter ancestor, --init and --privileged.

mod common;

use common::*;

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.docker(&["inspect", "-f", format, name])
        .ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn pause_rename_top_port_restart_and_prune() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ticker = "while true; do date +%s%N; sleep 0.05; done";
    d.docker(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        ticker,
    ])
    .ok();
    d.docker(&["pause", "p1"]).ok();
    assert_eq!(
        inspect(
            &d,
            "p1",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"
        ),
        "paused true true"
    );
    let ps = d.docker(&[
        "ps",
        "--filter",
        "status=paused",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.ok().stdout.contains("p1 Up") && ps.stdout.contains("(Paused)"),
        "{}",
        ps.stdout
    );
    // Frozen: the log does not grow.
    let lines = || d.docker(&["logs", "p1"]).ok().stdout.lines().count();
    let frozen = lines();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(lines(), frozen, "a paused container wrote output");
    let refused = d.docker(&["exec", "p1", "true"]);
    refused.failed_with("is paused");
    assert!(d
        .docker(&["pause", "p1"])
        .failed()
        .stderr
        .contains("already paused"));
    d.docker(&["unpause", "p1"]).ok();
    assert!(wait_for(|| lines() > frozen), "unpaused, it writes again");
    assert!(d
        .docker(&["unpause", "p1"])
        .failed()
        .stderr
        .contains("is not paused"));

    // top: the container's processes only, with ps's columns; ps options pass through.
    let top = d.docker(&["top", "p1"]);
    let out = top.ok().stdout.clone();
    assert!(out.starts_with("UID"), "{out}");
    assert!(out.contains("sh -c while true"), "{out}");
    assert!(!out.contains("berthd"), "{out}");
    let pid_comm = d.docker(&["top", "p1", "-o", "pid,comm"]);
    assert!(
        pid_comm
            .ok()
            .stdout
            .lines()
            .any(|l| l.trim().ends_with(" sh")),
        "{}",
        pid_comm.stdout
    );

    // rename: the new name works, the old is gone; clashes and bad names are refused.
    d.docker(&[
        "create",
        "--name",
        "other",
        "--network",
        "none",
        "bb:1",
        "true",
    ])
    .ok();
    d.docker(&["rename", "p1", "p2"]).ok();
    assert!(d
        .docker(&["inspect", "p1"])
        .failed()
        .stderr
        .contains("No such"));
    assert_eq!(inspect(&d, "p2", "{{.Name}}"), "/p2");
    assert!(d
        .docker(&["rename", "p2", "other"])
        .failed()
        .stderr
        .contains("already in use"));
    assert!(d
        .docker(&["rename", "p2", "bad name"])
        .failed()
        .stderr
        .contains("Invalid container name"));

    // port: nothing published (no networking yet), and no error.
    let port = d.docker(&["port", "p2"]);
    assert_eq!(port.ok().stdout.trim(), "");

    // restart: a new process, running again.
    let pid = inspect(&d, "p2", "{{.State.Pid}}");
    d.docker(&["restart", "-t", "0", "p2"]).ok();
    assert_eq!(inspect(&d, "p2", "{{.State.Running}}"), "true");
    assert_ne!(inspect(&d, "p2", "{{.State.Pid}}"), pid);

    // ps -s and the ancestor filter.
    d.docker(&["exec", "p2", "sh", "-c", "head -c 100000 /dev/zero > /big"])
        .ok();
    let sizes = d.docker(&["ps", "-s", "--format", "{{.Names}} {{.Size}}"]);
    assert!(sizes.ok().stdout.contains("p2 100kB"), "{}", sizes.stdout);
    let ancestors = d.docker(&["ps", "-a", "--filter", "ancestor=bb:1", "-q"]);
    assert_eq!(ancestors.ok().stdout.lines().count(), 2);
    let none = d.docker(&["ps", "-a", "--filter", "ancestor=other:1", "-q"]);
    assert_eq!(none.ok().stdout.trim(), "");
    let latest = d.docker(&["ps", "-l", "--format", "{{.Names}}"]);
    assert_eq!(latest.ok().stdout.trim(), "other");

    // prune: stopped containers only, the label filter honoured.
    d.docker(&[
        "run",
        "--name",
        "keepme",
        "-l",
        "keep=yes",
        "--network",
        "none",
        "bb:1",
        "true",
    ])
    .ok();
    let pruned = d.docker(&["container", "prune", "-f", "--filter", "label=keep=yes"]);
    assert!(
        pruned.ok().stdout.contains("Deleted Containers"),
        "{}",
        pruned.stdout
    );
    assert!(d
        .docker(&["inspect", "keepme"])
        .failed()
        .stderr
        .contains("No such"));
    // label!=: what carries the label is spared.
    d.docker(&[
        "create",
        "--name",
        "spare",
        "-l",
        "spare=1",
        "--network",
        "none",
        "bb:1",
        "true",
    ])
    .ok();
    d.docker(&["container", "prune", "-f", "--filter", "label!=spare"])
        .ok();
    let left = d.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = left.ok().stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["p2", "spare"]);
    d.docker(&["container", "prune", "-f"]).ok();
    let left = d.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left.ok().stdout.trim(), "p2", "the running container stays");
    d.docker(&["rm", "-f", "-v", "p2"]).ok();
}

#[test]
fn init_and_privileged() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    // --init: the init is PID 1, the command its child; orphans are reaped.
    let ps = d.docker(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "bb:1",
        "ps",
        "-o",
        "pid,args",
    ]);
    let out = ps.ok().stdout.clone();
    assert!(
        out.lines()
            .any(|l| l.trim().starts_with("1 /sbin/docker-init --")),
        "{out}"
    );
    let zombies = d.docker(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "(sleep 0.1 &) ; sleep 0.5; ps -o stat | grep -c Z || true",
    ]);
    assert_eq!(zombies.ok().stdout.trim(), "0", "the init reaps orphans");
    let code = d.docker(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(code.code, 7, "the init passes the exit code on");

    // --privileged: the host's capabilities, no seccomp, devices, writable /sys.
    let script = "grep -E 'CapEff|Seccomp:' /proc/self/status; ls /dev/kmsg; touch /sys/.x 2>&1 | grep -c Read-only";
    let privileged = d.docker(&[
        "run",
        "--rm",
        "--privileged",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        script,
    ]);
    let out = privileged.stdout.clone();
    let bounding = std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .expect("CapBnd");
    assert!(out.contains(&format!("CapEff:\t{bounding}")), "{out}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.contains("/dev/kmsg"), "{out}");
    assert!(out.trim_end().ends_with('0'), "/sys is writable: {out}");
    // Without it: Docker's defaults.
    let plain = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; ls /dev/kmsg 2>&1",
    ]);
    assert!(plain.stdout.contains("Seccomp:\t2"), "{}", plain.stdout);
    assert!(plain.stdout.contains("No such file"), "{}", plain.stdout);
    assert_eq!(inspect_created(&d), "true true");
}

/// HostConfig shows what was asked for.
fn inspect_created(d: &Daemon) -> String {
    d.docker(&[
        "create",
        "--name",
        "shown",
        "--init",
        "--privileged",
        "--network",
        "none",
        "bb:1",
        "true",
    ])
    .ok();
    inspect(
        d,
        "shown",
        "{{.HostConfig.Init}} {{.HostConfig.Privileged}}",
    )
}

#[test]
fn events_of_containers_and_images() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    // A live follower, started first.
    let follower = std::process::Command::new("docker")
        .args([
            "events",
            "--filter",
            "type=container",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker events");
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.docker(&[
        "run",
        "--rm",
        "--name",
        "ev",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "exit 3",
    ]);
    d.docker(&["tag", "bb:1", "bb:2"]).ok();
    d.docker(&["rmi", "bb:2"]).ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "30",
    ])
    .ok();
    d.docker(&["exec", "ex", "sh", "-c", "exit 6"]).failed();
    d.docker(&["rm", "-f", "ex"]).ok();
    let saved = d.dir.path().join("saved.tar");
    d.docker(&["save", "-o", saved.to_str().expect("utf8"), "bb:1"])
        .ok();
    d.docker_stdin(&["import", "-", "bb:imported"], Some(&saved))
        .ok();
    // Until a second from now: the past events, then the call ends.
    let until = common::a_second_from_now();
    let past = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    ]);
    let text = past.ok().stdout.clone();
    for line in [
        "container create ev",
        "container start ev",
        "container die ev 3",
        "container destroy ev",
        "image tag bb:2",
        "image untag bb:2",
        "container exec_die ex 6",
        "image save bb:1",
        "image import docker.io/library/bb:imported",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
    let dies = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--filter",
        "container=ev",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(dies.ok().stdout.trim(), "die");
    let bad = d.docker(&[
        "events", "--since", &since, "--until", &until, "--filter", "bogus=1",
    ]);
    bad.failed();
    // The follower saw them live.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(follower.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let out = follower.wait_with_output().expect("events output");
    let live = String::from_utf8_lossy(&out.stdout);
    assert!(
        live.contains("start ev") && live.contains("destroy ev"),
        "{live}"
    );
    assert!(!live.contains("tag"), "type=container only: {live}");
}

//! The berth CLI's container commands against a private berthd: the seed notes' session
//! (create, start, ps, logs, start -a, run, run -d, exec, exec -it, kill, stop, rm -f,
//! `ps -aq | xargs rm`), run's flags seen from inside the container, exit codes as docker
//! gives them, and bad input.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

fn berth_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.berth(args);
    out.ok();
    out.stdout
}

fn run_none<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["run", "--network", "none"];
    all.extend_from_slice(args);
    all
}

#[test]
fn the_seed_session_with_the_berth_cli() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);

    let id = berth_ok(
        &d,
        &[
            "create",
            "--network",
            "none",
            "--name",
            "first",
            "bb:1",
            "sh",
            "-c",
            "echo to-out; echo to-err >&2",
        ],
    );
    assert_eq!(id.trim().len(), 64, "{id}");
    let listed = berth_ok(&d, &["ps", "--all", "--format", "{{.Names}} {{.State}}"]);
    assert!(listed.contains("first created"), "{listed}");
    assert_eq!(berth_ok(&d, &["start", "first"]), "first\n");
    assert_eq!(berth_ok(&d, &["wait", "first"]), "0\n");
    let logs = d.berth(&["logs", "first"]);
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("to-out\n", "to-err\n")
    );
    // start --attach streams the output again and ends with the container.
    let again = d.berth(&["start", "--attach", "first"]);
    assert_eq!(again.stdout, "to-out\n", "{}", again.stderr);

    let run = d.berth(&run_none(&[
        "--rm",
        "bb:1",
        "sh",
        "-c",
        "echo hello; exit 7",
    ]));
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (7, "hello\n"),
        "{}",
        run.stderr
    );

    berth_ok(
        &d,
        &run_none(&[
            "-d",
            "--name",
            "ticker",
            "bb:1",
            "sh",
            "-c",
            "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
        ]),
    );
    assert_eq!(
        berth_ok(&d, &["exec", "ticker", "echo", "inside"]),
        "inside\n"
    );
    let code = d.berth(&["exec", "ticker", "sh", "-c", "exit 9"]).code;
    assert_eq!(code, 9);
    assert!(wait_for(|| d
        .berth(&["logs", "--tail", "1", "ticker"])
        .stdout
        .starts_with("tick")));

    // exec -it: a shell on a terminal.
    let mut pty = d.berth_pty("exec -it ticker sh");
    pty.expect("# ");
    pty.send("stty size; tty\r");
    pty.expect("33 101");
    pty.expect("/dev/pts/");
    pty.send("exit 4\r");
    let (code, _) = pty.finish();
    assert_eq!(code, 4);

    assert_eq!(berth_ok(&d, &["stop", "ticker"]), "ticker\n");
    assert_eq!(berth_ok(&d, &["wait", "ticker"]), "0\n");
    berth_ok(
        &d,
        &run_none(&["-d", "--name", "sleeper", "bb:1", "sleep", "60"]),
    );
    assert_eq!(berth_ok(&d, &["kill", "sleeper"]), "sleeper\n");
    assert_eq!(berth_ok(&d, &["wait", "sleeper"]), "137\n");
    berth_ok(
        &d,
        &run_none(&["-d", "--name", "fast", "bb:1", "sleep", "60"]),
    );
    berth_ok(&d, &["stop", "-t", "0", "fast"]);
    berth_ok(
        &d,
        &run_none(&["-d", "--name", "forced", "bb:1", "sleep", "60"]),
    );
    let refused = d.berth(&["rm", "forced"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("cannot remove a running container"),
        "{}",
        refused.stderr
    );
    assert_eq!(berth_ok(&d, &["rm", "-f", "forced"]), "forced\n");

    // ps -aq | xargs berth rm
    let ids = berth_ok(&d, &["ps", "-aq"]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    assert_eq!(ids.len(), 4, "first, ticker, sleeper, fast: {ids:?}");
    let mut rm = vec!["rm"];
    rm.extend(ids.iter().copied());
    berth_ok(&d, &rm);
    assert_eq!(berth_ok(&d, &["ps", "-aq"]), "");
}

#[test]
fn run_it_attach_and_detach_keys_on_a_terminal() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let mut pty = d.berth_pty("run -it --rm --network none bb:1 sh");
    pty.expect("# ");
    pty.send("echo $((6*7)); stty size\r");
    pty.expect("42");
    pty.expect("33 101");
    // Job control: a background job, then ctrl-c interrupts a foreground one.
    pty.send("sleep 30 & jobs\r");
    pty.expect("[1]");
    pty.send("sleep 60\r");
    std::thread::sleep(Duration::from_millis(300));
    pty.send("\x03");
    pty.send("echo after-ctrl-c\r");
    pty.expect("after-ctrl-c");
    pty.send("exit 3\r");
    let (code, _) = pty.finish();
    assert_eq!(code, 3);
    assert_eq!(berth_ok(&d, &["ps", "-aq"]), "", "--rm removed it");

    berth_ok(&d, &run_none(&["-dit", "--name", "box", "bb:1", "sh"]));
    let mut pty = d.berth_pty("attach box");
    pty.send("echo attached-$((2+3))\r");
    pty.expect("attached-5");
    pty.send("\x10\x11");
    let (code, _) = pty.finish();
    assert_eq!(code, 0, "detaching is a success");
    assert_eq!(
        berth_ok(&d, &["inspect", "-f", "{{.State.Running}}", "box"]),
        "true\n",
        "the container goes on after a detach"
    );
    let mut pty = d.berth_pty("attach --detach-keys ctrl-x box");
    pty.send("echo custom-keys\r");
    pty.expect("custom-keys");
    pty.send("\x18");
    assert_eq!(pty.finish().0, 0);
    berth_ok(&d, &["rm", "-f", "box"]);
}

#[test]
fn stdin_exit_codes_and_signals() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let input = d.dir.path().join("input");
    let lines: String = (0..3000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, &lines).expect("input");
    let out = d.berth_stdin(
        &run_none(&["-i", "--rm", "bb:1", "wc", "-l"]),
        Stdio::from(std::fs::File::open(&input).expect("open")),
    );
    assert_eq!(out.stdout.trim(), "3000", "{}", out.stderr);

    let missing = d.berth(&run_none(&["--rm", "bb:1", "no-such-command"]));
    assert_eq!(missing.code, 127, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no-such-command"),
        "{}",
        missing.stderr
    );
    let bad_flag = d.berth(&run_none(&["--memory", "abc", "bb:1", "true"]));
    assert_eq!(bad_flag.code, 125);
    assert!(
        bad_flag.stderr.contains("invalid size: 'abc'"),
        "{}",
        bad_flag.stderr
    );

    // Without a TTY, signals to `berth run` go to the container.
    let child = std::process::Command::new(berth_cli())
        .arg("-H")
        .arg(format!("unix://{}", d.socket().display()))
        .args(run_none(&[
            "--name",
            "proxied",
            "bb:1",
            "sh",
            "-c",
            "trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.1; done",
        ]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth run");
    let pid = child.id() as i32;
    assert!(wait_for(|| d
        .berth(&["logs", "proxied"])
        .stdout
        .contains("ready")));
    // SAFETY: kill(2) on the child this test spawned.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("got-term"));
}

#[test]
fn run_flags_seen_from_inside() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host_dir = d.dir.path().join("shared");
    std::fs::create_dir(&host_dir).expect("dir");
    std::fs::write(host_dir.join("f"), "from host\n").expect("write");
    let env_file = d.dir.path().join("env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=yes\n\n").expect("env file");
    let bind = format!("{}:/shared:ro", host_dir.display());
    let script = "echo $FOO $FROM_FILE; pwd; id -u; hostname; ulimit -n; \
                  cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us; \
                  cat /shared/f; touch /shared/x 2>/dev/null || echo ro-bind; touch /x 2>/dev/null || echo ro-root; \
                  echo ok > /scratch/t && cat /scratch/t";
    let out = d.berth(&run_none(&[
        "--rm",
        "-e",
        "FOO=bar",
        "--env-file",
        env_file.to_str().expect("utf8"),
        "-w",
        "/tmp",
        "-u",
        "1000",
        "-h",
        "inside",
        "--ulimit",
        "nofile=256:512",
        "-m",
        "32m",
        "--pids-limit",
        "30",
        "--cpus",
        "0.25",
        "-v",
        &bind,
        "--read-only",
        "--tmpfs",
        "/scratch",
        "-l",
        "team=core",
        "--entrypoint",
        "sh",
        "bb:1",
        "-c",
        script,
    ]));
    out.ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "bar yes",
            "/tmp",
            "1000",
            "inside",
            "256",
            "33554432",
            "30",
            "25000",
            "from host",
            "ro-bind",
            "ro-root",
            "ok"
        ],
        "{}",
        out.stderr
    );
    // The same options, as inspect shows them.
    berth_ok(
        &d,
        &run_none(&[
            "-d",
            "--name",
            "kept",
            "--restart",
            "on-failure:2",
            "--cap-drop",
            "chown",
            "--stop-signal",
            "SIGUSR1",
            "-l",
            "team=core",
            "bb:1",
            "sleep",
            "60",
        ]),
    );
    let shown = berth_ok(
        &d,
        &[
            "inspect", "-f",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.CapDrop}} {{.Config.StopSignal}} {{.Config.Labels.team}}",
            "kept",
        ],
    );
    assert_eq!(shown.trim(), "on-failure:2 [chown] SIGUSR1 core");
    let filtered = berth_ok(
        &d,
        &[
            "ps",
            "--filter",
            "label=team=core",
            "--format",
            "{{.Names}}",
        ],
    );
    assert_eq!(filtered, "kept\n");
    berth_ok(&d, &["rm", "-f", "kept"]);
}

#[test]
fn ps_logs_inspect_and_management_commands() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    berth_ok(
        &d,
        &run_none(&[
            "-d",
            "--name",
            "talker",
            "bb:1",
            "sh",
            "-c",
            "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; sleep 60",
        ]),
    );
    assert!(wait_for(
        || d.berth(&["logs", "talker"]).stdout == "one\nthree\n"
    ));
    assert_eq!(
        d.berth(&["logs", "--tail", "1", "talker"]).stdout,
        "three\n"
    );
    let stamped = d.berth(&["logs", "-t", "talker"]).stdout;
    assert!(
        stamped.starts_with("20") && stamped.contains("Z one"),
        "{stamped}"
    );
    assert_eq!(
        d.berth(&["logs", "--since", "1h", "talker"]).stdout,
        "one\nthree\n"
    );
    assert_eq!(d.berth(&["logs", "--until", "1h", "talker"]).stdout, "");

    let table = berth_ok(&d, &["ps"]);
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(table.contains("\"sh -c echo one; sle…\""), "{table}");
    assert!(berth_ok(&d, &["ps", "--no-trunc"]).contains("echo three; sleep 60"));
    let sized = berth_ok(&d, &["ps", "-s", "--format", "{{.Size}}"]);
    assert!(sized.contains("(virtual"), "{sized}");

    berth_ok(&d, &["pause", "talker"]);
    assert_eq!(
        berth_ok(
            &d,
            &["ps", "--filter", "status=paused", "--format", "{{.Names}}"]
        ),
        "talker\n"
    );
    berth_ok(&d, &["unpause", "talker"]);
    let top = berth_ok(&d, &["top", "talker"]);
    assert!(top.starts_with("UID") && top.contains("sleep 60"), "{top}");
    berth_ok(&d, &["rename", "talker", "quiet"]);
    assert_eq!(berth_ok(&d, &["port", "quiet"]), "");
    assert_eq!(
        berth_ok(&d, &["inspect", "-f", "{{.Name}}", "quiet"]),
        "/quiet\n"
    );
    // inspect finds images too, and says what it did not find.
    assert_eq!(
        berth_ok(
            &d,
            &["inspect", "--type", "image", "-f", "{{.RepoTags}}", "bb:1"]
        ),
        "[bb:1]\n"
    );
    let missing = d.berth(&["inspect", "nothing-here"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("No such object: nothing-here"),
        "{}",
        missing.stderr
    );
    berth_ok(&d, &["restart", "-t", "0", "quiet"]);
    assert_eq!(
        berth_ok(&d, &["inspect", "-f", "{{.State.Running}}", "quiet"]),
        "true\n"
    );
    berth_ok(&d, &["stop", "-t", "0", "quiet"]);
    let pruned = berth_ok(&d, &["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert_eq!(berth_ok(&d, &["ps", "-aq"]), "");
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "run",
                "--pull",
                "never",
                "--network",
                "none",
                "no-such-image:1",
                "true",
            ],
            "No such image",
        ),
        (
            &["run", "--network", "none", "--cpus", "-1", "bb:1", "true"],
            "--cpus",
        ),
        (
            &[
                "run",
                "--network",
                "none",
                "--restart",
                "bogus",
                "bb:1",
                "true",
            ],
            "restart policy",
        ),
        (
            &[
                "run",
                "--network",
                "none",
                "--ulimit",
                "nofile=x",
                "bb:1",
                "true",
            ],
            "invalid ulimit",
        ),
        (
            &["run", "--network", "user-net", "bb:1", "true"],
            "network user-net not found",
        ),
        (
            &[
                "run",
                "--network",
                "none",
                "-v",
                "named:/data:bogus",
                "bb:1",
                "true",
            ],
            "invalid mode",
        ),
    ];
    for (args, needle) in cases {
        let out = d.berth(args);
        assert_eq!(out.code, 125, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    assert_eq!(
        berth_ok(&d, &["ps", "-aq"]),
        "",
        "no half-created container"
    );

    berth_ok(
        &d,
        &[
            "create",
            "--network",
            "none",
            "--name",
            "taken",
            "bb:1",
            "true",
        ],
    );
    let clash = d.berth(&[
        "create",
        "--network",
        "none",
        "--name",
        "taken",
        "bb:1",
        "true",
    ]);
    assert!(clash.stderr.contains("already in use"), "{}", clash.stderr);
    let stopped = d.berth(&["exec", "taken", "true"]);
    assert!(
        stopped.stderr.contains("is not running"),
        "{}",
        stopped.stderr
    );
    let missing = d.berth(&["attach", "ghost"]);
    assert!(
        missing.stderr.contains("No such container: ghost"),
        "{}",
        missing.stderr
    );
    let stop_missing = d.berth(&["stop", "ghost", "taken"]);
    assert_eq!(stop_missing.code, 1);
    assert_eq!(
        stop_missing.stdout, "taken\n",
        "the others are still stopped"
    );
}

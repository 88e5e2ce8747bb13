//! Interactive containers with the real docker CLI on a terminal: run -it (a shell with job
//! control), attach and the detach keys, exec (-i, -t, -d, -u, -w, -e, --privileged), stdin
//! through pipes, resize, and the refusals around them.

mod common;

use common::*;

#[test]
fn run_it_gives_a_shell_with_a_terminal_and_job_control() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let mut s = d.docker_pty("run -it --rm --network none bb:1 sh");
    s.expect("/ # ");
    s.send("tty; stty size; echo sum=$((40+2))\n");
    s.expect("sum=42");
    // Job control: a background job, listed, then brought back and interrupted.
    s.send("sleep 100 &\n");
    s.send("jobs\n");
    s.expect("Running");
    s.send("fg\n");
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.send("\x03");
    s.send("echo after-ctrl-c\n");
    s.expect("after-ctrl-c\r\n");
    s.send("exit 3\n");
    let (code, out) = s.finish();
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("33 101"), "the terminal size: {out}");
    // --rm removed it.
    assert_eq!(d.docker(&["ps", "-aq"]).stdout.trim(), "");
}

#[test]
fn stdin_through_pipes_and_attach_with_detach_keys() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let input = d.dir.path().join("input.txt");
    let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, &text).expect("input");
    // -i without a terminal: all of stdin arrives, then EOF ends `cat` (stdin-once).
    let out = d.docker_stdin(
        &["run", "-i", "--rm", "--network", "none", "bb:1", "cat"],
        Some(&input),
    );
    out.ok();
    assert_eq!(out.stdout, text);
    let wc = d.docker_stdin(
        &["run", "-i", "--rm", "--network", "none", "bb:1", "wc", "-l"],
        Some(&input),
    );
    assert_eq!(wc.ok().stdout.trim(), "5000");

    // A detached terminal container, attached to, typed into, left with ctrl-p ctrl-q.
    d.docker(&[
        "run",
        "-dit",
        "--name",
        "tt",
        "--network",
        "none",
        "bb:1",
        "sh",
    ])
    .ok();
    let mut s = d.docker_pty("attach tt");
    s.send("echo attached-$((1+1))\n");
    s.expect("attached-2");
    s.send("\x10\x11");
    let (_, out) = s.finish();
    assert!(out.contains("read escape sequence"), "{out}");
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Running}}", "tt"])
            .ok()
            .stdout
            .trim(),
        "true",
        "detaching leaves the container running"
    );
    // Custom detach keys.
    let mut s = d.docker_pty("attach --detach-keys ctrl-x,x tt");
    s.send("echo again\n");
    s.expect("again\r\n");
    s.send("\x18x");
    s.finish();
    // The output went to the log as well.
    let logs = d.docker(&["logs", "tt"]);
    assert!(logs.ok().stdout.contains("attached-2"), "{}", logs.stdout);
    // Resize of a running terminal: seen by the shell.
    let (status, body) = d.http("POST", "/v1.45/containers/tt/resize?h=40&w=120", b"");
    assert_eq!(status, 200, "{body}");
    let size = d.docker(&["exec", "tt", "sh", "-c", "stty size < /dev/console"]);
    assert_eq!(size.ok().stdout.trim(), "40 120");
    let (status, _) = d.http("POST", "/v1.45/containers/tt/resize?h=x&w=120", b"");
    assert_eq!(status, 400);
    d.docker(&["rm", "-f", "tt"]).ok();
}

#[test]
fn exec_runs_processes_in_a_running_container() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "-e",
        "BASE=1",
        "bb:1",
        "sleep",
        "1000",
    ])
    .ok();
    let out = d.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5"]);
    assert_eq!(out.code, 5);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    let env = d.docker(&[
        "exec",
        "-u",
        "1000:1000",
        "-w",
        "/bin",
        "-e",
        "EXTRA=2",
        "box",
        "sh",
        "-c",
        "id -u; pwd; echo $BASE$EXTRA",
    ]);
    assert_eq!(env.ok().stdout, "1000\n/bin\n12\n");
    let piped = d.dir.path().join("piped");
    std::fs::write(&piped, "through stdin\n").expect("write");
    let cat = d.docker_stdin(&["exec", "-i", "box", "cat"], Some(&piped));
    assert_eq!(cat.ok().stdout, "through stdin\n");
    // Capabilities: Docker's default set, all of the host's with --privileged.
    let caps = |extra: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["box", "grep", "CapEff", "/proc/self/status"]);
        d.docker(&args).ok().stdout.clone()
    };
    assert!(caps(&[]).contains("00000000a80425fb"), "{}", caps(&[]));
    let host_bounding = std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .expect("CapBnd");
    assert!(caps(&["--privileged"]).contains(&host_bounding));
    // -d: runs on its own; inspect shows it ran.
    d.docker(&["exec", "-d", "box", "touch", "/tmp/made-by-exec"])
        .ok();
    let mut seen = false;
    for _ in 0..100 {
        if d.docker(&["exec", "box", "ls", "/tmp/made-by-exec"]).code == 0 {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen, "exec -d did not run");
    // -it: a terminal.
    let mut s = d.docker_pty("exec -it box sh");
    s.expect("# ");
    s.send("tty; stty size; exit 4\n");
    let (code, out) = s.finish();
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("33 101"), "{out}");
    // A command that does not exist: Docker's message and 126.
    let missing = d.docker(&["exec", "box", "no-such-command"]);
    assert_eq!(missing.code, 126);
    assert!(
        missing.stdout.contains("executable file not found")
            || missing.stderr.contains("executable file not found"),
        "{}{}",
        missing.stdout,
        missing.stderr
    );
    // ExecIDs in inspect.
    let ids = d.docker(&["inspect", "-f", "{{len .ExecIDs}}", "box"]);
    assert_ne!(ids.ok().stdout.trim(), "0");
    // Bad input: a stopped container, a missing container, a missing exec, malformed JSON.
    d.docker(&["stop", "-t", "0", "box"]).ok();
    let stopped = d.docker(&["exec", "box", "true"]);
    stopped.failed_with("is not running");
    let nobody = d.docker(&["exec", "nobody", "true"]);
    nobody.failed_with("No such container");
    let (status, body) = d.http("GET", "/v1.45/exec/0123abcd/json", b"");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("No such exec instance"), "{body}");
    let (status, _) = d.http("POST", "/v1.45/containers/box/exec", b"{\"Cmd\": [");
    assert_eq!(status, 400);
    let (status, body) = d.http("POST", "/v1.45/containers/box/exec", b"{\"Cmd\": []}");
    assert!(status == 400 || status == 409, "{status} {body}");
    let attach_missing = d.docker(&["attach", "nobody"]);
    attach_missing.failed();
    assert!(attach_missing.stderr.contains("No such container"));
}

#[test]
fn start_attach_and_stdin_once() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    // docker create -i, then start -a -i with stdin from a file.
    d.docker(&[
        "create",
        "-i",
        "--name",
        "c1",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "read x; echo got:$x",
    ])
    .ok();
    let input = d.dir.path().join("in");
    std::fs::write(&input, "hello\n").expect("write");
    let out = d.docker_stdin(&["start", "-a", "-i", "c1"], Some(&input));
    assert_eq!(out.ok().stdout, "got:hello\n");
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.Config.OpenStdin}}",
            "c1"
        ])
        .ok()
        .stdout
        .trim(),
        "exited 0 true"
    );
    // start -a of a container printing to both streams: both arrive, split.
    d.docker(&[
        "create",
        "--name",
        "c2",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; exit 2",
    ])
    .ok();
    let out = d.docker(&["start", "-a", "c2"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "to-out\n");
    assert_eq!(out.stderr, "to-err\n");
}

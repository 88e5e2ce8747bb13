//! `exec`: another process in the container's namespaces, cgroup and security.

mod common;

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

fn running(world: &World, id: &str) -> i32 {
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, id]).ok();
    world.state(id)["pid"].as_i64().expect("pid") as i32
}

fn stop(world: &World, id: &str, pid: i32) {
    world.cmd(&["delete", "--force", id]).ok();
    reap(pid);
}

#[test]
fn exec_joins_namespaces_cgroup_and_security() {
    let mut world = World::new("sleep 30");
    world.edit(|c| c["hostname"] = json!("exec-host"));
    let pid = running(&world, "x1");
    let out = world.cmd(&[
        "exec",
        "x1",
        "sh",
        "-c",
        "hostname; echo pid=$$; grep CapEff /proc/self/status; cat /proc/self/cgroup; exit 7",
    ]);
    assert_eq!(out.code, 7, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "exec-host");
    assert_ne!(
        lines[1], "pid=1",
        "exec'd process is not in the container's pid namespace"
    );
    let init_caps = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let init_eff = init_caps
        .lines()
        .find(|l| l.starts_with("CapEff"))
        .expect("CapEff");
    assert_eq!(
        lines[2], init_eff,
        "capabilities differ from the container's"
    );
    let init_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert_eq!(
        lines[3..].join("\n").trim(),
        init_cgroup.trim(),
        "not in the container's cgroup"
    );
    stop(&world, "x1", pid);
}

#[test]
fn exec_flags_and_process_file() {
    let world = World::new("sleep 30");
    let pid = running(&world, "x2");
    let out = world.cmd(&[
        "exec",
        "-u",
        "1000:1000",
        "-e",
        "GREETING=hi",
        "--cwd",
        "/tmp",
        "x2",
        "sh",
        "-c",
        "id -u; id -g; echo $GREETING; pwd",
    ]);
    out.ok();
    assert_eq!(out.stdout, "1000\n1000\nhi\n/tmp\n");
    let process = world.dir.path().join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sh", "-c", "echo from-file $X"], "env": ["PATH=/bin", "X=1"], "cwd": "/", "user": {"uid": 0, "gid": 0}}).to_string(),
    )
    .expect("write");
    let out = world.cmd(&["exec", "--process", process.to_str().expect("utf8"), "x2"]);
    out.ok();
    assert_eq!(out.stdout, "from-file 1\n");
    stop(&world, "x2", pid);
}

#[test]
fn exec_detached_with_pid_file() {
    let world = World::new("sleep 30");
    let pid = running(&world, "x3");
    let pid_file = world.dir.path().join("exec.pid");
    world
        .cmd(&[
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().expect("utf8"),
            "x3",
            "sleep",
            "0.2",
        ])
        .ok();
    let exec_pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    // The detached process is ours to reap (we are the subreaper), as a shim's would be.
    assert!(matches!(
        reap(exec_pid),
        nix::sys::wait::WaitStatus::Exited(_, 0)
    ));
    stop(&world, "x3", pid);
}

#[test]
fn exec_with_a_terminal_through_the_console_socket() {
    let world = World::new("sleep 30");
    let pid = running(&world, "x4");
    let socket = world.dir.path().join("console.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(world.root())
        .args(["exec", "-t", "--console-socket"])
        .arg(&socket)
        .args(["x4", "sh", "-c", "tty; [ -t 1 ] && echo is-a-tty"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("exec");
    let (conn, _) = listener.accept().expect("connect");
    let master = berth_runtime::container::receive_master(&conn).expect("master");
    let mut pty = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = pty.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(child.wait().expect("wait").success());
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(
        text.contains("/dev/pts/") && text.contains("is-a-tty"),
        "{text}"
    );
    stop(&world, "x4", pid);
}

#[test]
fn exec_into_a_user_namespace() {
    let mut world = World::new("sleep 30");
    world.map_users();
    let pid = running(&world, "x5");
    let out = world.cmd(&["exec", "x5", "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    out.ok();
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(fields, ["0", "0", "100000", "65536"], "{}", out.stdout);
    stop(&world, "x5", pid);
}

#[test]
fn exec_bad_input() {
    let world = World::new("true");
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["exec", "missing", "true"]).failed();
    world
        .cmd(&["run", "--keep", "--bundle", bundle, "stopped"])
        .ok();
    let out = world.cmd(&["exec", "stopped", "true"]);
    out.failed();
    assert!(out.stderr.contains("stopped"), "{}", out.stderr);
    world.cmd(&["delete", "stopped"]).ok();
    let world = World::new("sleep 30");
    let pid = running(&world, "x6");
    for bad in [
        vec!["exec", "x6"],
        vec!["exec", "x6", "no-such-program"],
        vec!["exec", "-u", "nobody", "x6", "true"],
        vec!["exec", "--cap", "CAP_BOGUS", "x6", "true"],
    ] {
        world.cmd(&bad).failed();
    }
    assert_eq!(world.status("x6"), "running");
    stop(&world, "x6", pid);
}

#[test]
fn a_foreground_exec_terminal_has_our_size_from_the_start() {
    let world = World::new("sleep 30");
    let pid = running(&world, "x6");
    // `stty size` is the first thing the process does: the pty must not start at 0x0.
    let inner = format!(
        "stty cols 77 rows 11; {BIN} --root {} exec -t x6 stty size; echo exit=$?",
        world.root().display()
    );
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    // `script` may echo its end of input (^@ or ^D) anywhere after the command's output.
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.contains("11 77\n"), "{text}");
    assert!(text.contains("exit=0\n"), "{text}");
    stop(&world, "x6", pid);
}

/// An exec's process enters the container's cgroup as init does: born in its v2 cgroup,
/// its own thread into each v1 hierarchy; the runtime moves no process (cgroup.procs, whose
/// write waits for an RCU grace period, is never opened for writing).
#[test]
fn an_exec_enters_the_cgroup_without_a_process_move() {
    assert!(installed("strace"), "this test needs strace");
    let world = World::new("sleep 30");
    let pid = running(&world, "xm");
    let trace = world.dir.path().join("trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat", "-o"])
        .arg(&trace)
        .arg(BIN)
        .arg("--root")
        .arg(world.root())
        .args(["exec", "xm", "cat", "/proc/self/cgroup"])
        .stdin(Stdio::null())
        .output()
        .expect("strace");
    assert!(out.status.success(), "{out:?}");
    let init_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        init_cgroup.trim(),
        "not in the container's cgroup"
    );
    assert_no_cgroup_procs_write(&trace);
    stop(&world, "xm", pid);
}

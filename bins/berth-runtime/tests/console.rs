//! process.terminal with --console-socket: the pty master arrives by SCM_RIGHTS, the
//! container's stdio is the slave, which is also /dev/console.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

#[test]
fn console_socket_receives_a_working_pty() {
    let mut world = World::new("tty; stty size; [ -t 0 ] && echo stdin-is-tty; read line; echo got:$line; ls -l /dev/console | cut -c1");
    world.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    });
    let socket_path = world.dir.path().join("console.sock");
    let listener = UnixListener::bind(&socket_path).expect("bind");
    let bundle = world.bundle().to_str().expect("utf8");
    let mut create = Command::new(BIN)
        .arg("--root")
        .arg(world.root())
        .args(["create", "--bundle", bundle, "--console-socket"])
        .arg(&socket_path)
        .arg("t1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("create");
    let (conn, _) = listener.accept().expect("runtime connects");
    let master = berth_runtime::container::receive_master(&conn).expect("master fd");
    assert!(create.wait().expect("wait").success());
    let pid = world.state("t1")["pid"].as_i64().expect("pid") as i32;
    world.cmd(&["start", "t1"]).ok();
    let mut pty = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let mut typed = false;
    // Read until the slave closes (EIO) when the container exits; type a line once the
    // container has shown it sees a terminal (typing earlier would race the tty's echo).
    while let Ok(n) = pty.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if !typed && String::from_utf8_lossy(&out).contains("stdin-is-tty") {
            pty.write_all(b"hello\n").expect("type");
            typed = true;
        }
    }
    reap(pid);
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(
        text.contains("/dev/pts/0\n30 100\nstdin-is-tty\n"),
        "{text}"
    );
    assert!(text.contains("got:hello\nc\n"), "{text}");
    world.cmd(&["delete", "t1"]).ok();
}

#[test]
fn foreground_run_proxies_its_own_terminal() {
    let mut world = World::new("tty; stty size; read x; echo got:$x; exit 3");
    world.edit(|c| c["process"]["terminal"] = json!(true));
    // `script` gives berth-runtime a terminal of 20x90; a line is typed into it.
    let inner = format!(
        "stty cols 90 rows 20; {BIN} --root {} run -b {} tty1; echo exit=$?",
        world.root().display(),
        world.bundle().display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(sleep 0.3; echo typed-line) | script -qec '{inner}' /dev/null"
        ))
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.contains("/dev/pts/0\n20 90\n"), "{text}");
    assert!(
        text.contains("got:typed-line\n") && text.contains("exit=3\n"),
        "{text}"
    );
    world.assert_no_state();
}

//! berthd's own contract: its configuration rules, socket, pid file and graceful stop.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;

/// Run berthd with a config file holding `json` and extra flags; it must fail with `needle`.
fn refuses(json: &str, flags: &[&str], needle: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("daemon.json");
    std::fs::write(&config, json).expect("config");
    let out = Command::new(BERTHD)
        .arg("--config-file")
        .arg(&config)
        .arg("--exec-root")
        .arg(dir.path().join("run"))
        .args(flags)
        .output()
        .expect("berthd");
    assert!(!out.status.success(), "berthd accepted {json} {flags:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert!(
        !dir.path().join("run/berth.sock").exists(),
        "a socket was left"
    );
}

#[test]
fn configuration_rules_as_dockerd() {
    refuses(
        r#"{"bogus-key": 1}"#,
        &[],
        "don't match any configuration option: bogus-key",
    );
    refuses(
        r#"{"data-root": "/tmp/a"}"#,
        &["--data-root", "/tmp/b"],
        "specified both as a flag and in the configuration file: data-root",
    );
    refuses(
        r#"{"hosts": ["unix:///tmp/x.sock"]}"#,
        &["-H", "unix:///tmp/y.sock"],
        "hosts",
    );
    refuses(
        "{}",
        &["-H", "tcp://127.0.0.1:2375"],
        "tcp:// listeners are not supported yet",
    );
    refuses(
        r#"{"storage-driver": "btrfs"}"#,
        &[],
        "storage driver \"btrfs\" is not supported",
    );
    refuses(
        r#"{"default-runtime": "nope"}"#,
        &[],
        "default runtime \"nope\"",
    );
    refuses("{not json", &[], "daemon.json");
    let missing = Command::new(BERTHD)
        .args(["--config-file", "/nonexistent/daemon.json"])
        .output()
        .expect("berthd");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/daemon.json"));
}

#[test]
fn socket_pidfile_and_graceful_stop() {
    let mut d = Daemon::start();
    let mode = std::fs::metadata(d.socket())
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
    let pidfile = d.exec_root().join("berthd.pid");
    assert_eq!(
        std::fs::read_to_string(&pidfile).expect("pidfile").trim(),
        d.pid().to_string()
    );
    assert!(d.data_root().join("image/meta.redb").exists());

    // A second daemon on the same socket or pid file is refused.
    let second = Command::new(BERTHD)
        .arg("--config-file")
        .arg(d.dir.path().join("daemon.json"))
        .arg("-H")
        .arg(format!("unix://{}", d.socket().display()))
        .arg("--data-root")
        .arg(d.dir.path().join("data2"))
        .arg("--exec-root")
        .arg(d.exec_root())
        .output()
        .expect("berthd");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("already running") || err.contains("another daemon"),
        "{err}"
    );

    let status = d.stop();
    assert!(status.success(), "{status}");
    assert!(!d.socket().exists(), "socket left after SIGTERM");
    assert!(!pidfile.exists(), "pid file left after SIGTERM");
    // A socket file left by a killed daemon does not stop the next start.
    d.spawn(&[]);
    d.kill();
    assert!(d.socket().exists());
    d.spawn(&[]);
    d.docker(&["version"]).ok();
}

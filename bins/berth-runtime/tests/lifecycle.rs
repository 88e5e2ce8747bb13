//! The runtime-spec lifecycle through runc's command line, compared with runc itself.

mod common;

use common::*;
use serde_json::json;

/// Drive create → state → start → kill → delete with `runtime`, recording exit codes and
/// statuses, so berth-runtime and runc can be compared step by step.
fn lifecycle_trace(world: &World, runtime: &str, root: &std::path::Path) -> Vec<String> {
    let bundle = world.bundle().to_str().expect("utf8");
    let pid_file = world
        .dir
        .path()
        .join(format!("pid-{}", runtime.replace('/', "_")));
    let trace = std::cell::RefCell::new(Vec::new());
    let step = |name: &str, args: &[&str]| {
        let out = world.cmd_with(runtime, root, args);
        trace.borrow_mut().push(format!("{name}={}", out.code));
        out
    };
    step(
        "create",
        &[
            "create",
            "--bundle",
            bundle,
            "--pid-file",
            pid_file.to_str().expect("utf8"),
            "c1",
        ],
    );
    // The status, and the state's field names (runc's are the reference).
    let status = |o: Outcome| {
        serde_json::from_str::<serde_json::Value>(&o.stdout)
            .map(|v| {
                let mut keys: Vec<String> = v
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                keys.sort();
                format!("{} keys={}", v["status"], keys.join(","))
            })
            .unwrap_or_default()
    };
    let s = status(step("state", &["state", "c1"]));
    trace.borrow_mut().push(s);
    step("create-again", &["create", "--bundle", bundle, "c1"]);
    step("start", &["start", "c1"]);
    let s = status(step("state", &["state", "c1"]));
    trace.borrow_mut().push(s);
    step("start-again", &["start", "c1"]);
    step("delete-running", &["delete", "c1"]);
    step("kill", &["kill", "c1", "KILL"]);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    reap(pid);
    let out = step("state", &["state", "c1"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("state json");
    trace
        .borrow_mut()
        .push(format!("{} pid={}", v["status"], v["pid"]));
    step("kill-stopped", &["kill", "c1", "KILL"]);
    step("delete", &["delete", "c1"]);
    step("state-missing", &["state", "c1"]);
    step("delete-missing", &["delete", "c1"]);
    step("delete-missing-force", &["delete", "--force", "c1"]);
    trace.into_inner()
}

#[test]
fn lifecycle_matches_runc() {
    let world = World::new("sleep 30");
    let ours = lifecycle_trace(&world, BIN, &world.root());
    let runc_root = world.dir.path().join("runc-state");
    let theirs = lifecycle_trace(&world, "runc", &runc_root);
    assert_eq!(ours, theirs);
    assert!(
        ours.iter().any(|s| s.starts_with("\"created\" keys=")),
        "{ours:?}"
    );
    assert!(
        ours.iter().any(|s| s.starts_with("\"running\" keys=")),
        "{ours:?}"
    );
    world.assert_no_state();
}

#[test]
fn run_returns_the_exit_status() {
    let world = World::new("exit 3");
    assert_eq!(world.run("c1").code, 3);
    world.assert_no_state();
    // PID 1 of a pid namespace cannot SIGKILL itself: share the runtime's pid namespace.
    let mut world = World::new("kill -9 $$");
    world.edit(|c| c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]));
    assert_eq!(world.run("c1").code, 128 + 9);
}

#[test]
fn run_detach_then_force_delete() {
    let world = World::new("sleep 30");
    let bundle = world.bundle().to_str().expect("utf8");
    world
        .cmd(&["run", "--detach", "--bundle", bundle, "d1"])
        .ok();
    assert_eq!(world.status("d1"), "running");
    let pid = world.state("d1")["pid"].as_i64().expect("pid") as i32;
    world.cmd(&["delete", "--force", "d1"]).ok();
    reap(pid);
    world.assert_no_state();
}

#[test]
fn state_carries_annotations_and_bundle() {
    let mut world = World::new("sleep 30");
    world.edit(|c| c["annotations"] = json!({"org.example/key": "value"}));
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["create", "--bundle", bundle, "a1"]).ok();
    let state = world.state("a1");
    assert_eq!(state["annotations"]["org.example/key"], "value");
    assert_eq!(state["bundle"], bundle);
    assert_eq!(state["ociVersion"], "1.2.0");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    assert!(pid > 0);
    world.cmd(&["delete", "a1"]).ok();
    reap(pid);
}

/// Wait (up to 10 s) until process `pid` has a handler for `signal` (its SigCgt mask).
fn wait_until_caught(pid: i32, signal: i32) {
    let bit = 1u64 << (signal - 1);
    for _ in 0..1000 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok());
        if caught.is_some_and(|m| m & bit != 0) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("process {pid} never caught signal {signal}");
}

#[test]
fn kill_accepts_names_numbers_and_all() {
    let world = World::new("trap 'exit 42' USR1; sleep 1 & sleep 1 & while :; do sleep 0.05; done");
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, "k1"]).ok();
    let pid = world.state("k1")["pid"].as_i64().expect("pid") as i32;
    // The shell's trap must be set before the signal comes (else USR1 ends it).
    wait_until_caught(pid, libc::SIGUSR1);
    world.cmd(&["kill", "k1", "SIGUSR1"]).ok();
    assert!(matches!(
        reap(pid),
        nix::sys::wait::WaitStatus::Exited(_, 42)
    ));
    world.cmd(&["delete", "k1"]).ok();

    world.cmd(&["run", "-d", "--bundle", bundle, "k2"]).ok();
    let pid = world.state("k2")["pid"].as_i64().expect("pid") as i32;
    world.cmd(&["kill", "--all", "k2", "9"]).ok();
    assert!(matches!(
        reap(pid),
        nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
    ));
    assert_eq!(world.status("k2"), "stopped");
    world.cmd(&["kill", "k2", "BOGUS"]).failed();
    world.cmd(&["delete", "k2"]).ok();
}

#[test]
fn list_table_json_and_quiet() {
    let world = World::new("sleep 30");
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["create", "--bundle", bundle, "l1"]).ok();
    world.cmd(&["create", "--bundle", bundle, "l2"]).ok();
    assert_eq!(world.cmd(&["list", "-q"]).stdout, "l1\nl2\n");
    let table = world.cmd(&["list"]).stdout;
    assert!(
        table.starts_with("ID") && table.contains("created"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&world.cmd(&["list", "--format", "json"]).stdout).expect("json");
    assert_eq!(json.as_array().map(|a| a.len()), Some(2));
    let pids: Vec<i32> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["pid"].as_i64().expect("pid") as i32)
        .collect();
    world.cmd(&["delete", "l1"]).ok();
    world.cmd(&["delete", "l2"]).ok();
    pids.into_iter().for_each(|p| {
        reap(p);
    });
    world.assert_no_state();
}

#[test]
fn spec_writes_runc_defaults_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = |extra: &[&str]| {
        std::process::Command::new(BIN)
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .args(extra)
            .output()
            .expect("spec")
    };
    assert!(spec(&[]).status.success());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).expect("read"))
            .expect("json");
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["process"]["args"], json!(["sh"]));
    assert!(config["linux"]["maskedPaths"]
        .as_array()
        .is_some_and(|m| m.contains(&json!("/proc/kcore"))));
    let again = spec(&[]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"));
    std::fs::remove_file(dir.path().join("config.json")).expect("rm");
    assert!(spec(&["--rootless"]).status.success());
    let rootless: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).expect("read"))
            .expect("json");
    assert_eq!(rootless["linux"]["uidMappings"][0]["size"], 1);
}

#[test]
fn features_lists_what_is_implemented() {
    let out = std::process::Command::new(BIN)
        .arg("features")
        .output()
        .expect("features");
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(f["ociVersionMax"], "1.2.0");
    assert_eq!(f["hooks"].as_array().map(|h| h.len()), Some(6));
    assert_eq!(
        f["linux"]["namespaces"].as_array().map(|n| n.len()),
        Some(8)
    );
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert!(f["linux"]["capabilities"]
        .as_array()
        .is_some_and(|c| c.contains(&json!("CAP_SYS_ADMIN"))));
}

#[test]
fn systemd_cgroup_and_checkpoint_are_refused_clearly() {
    let world = World::new("true");
    let out = world.cmd(&["--systemd-cgroup", "create", "x"]);
    out.failed();
    assert!(out.stderr.contains("--systemd-cgroup"), "{}", out.stderr);
    let out = world.cmd(&["checkpoint", "x"]);
    out.failed();
    assert!(out.stderr.contains("checkpoint"), "{}", out.stderr);
}

#[test]
fn json_log_format_for_callers_that_parse_it() {
    let world = World::new("true");
    let log = world.dir.path().join("runtime.log");
    let out = world.cmd(&[
        "--log",
        log.to_str().expect("utf8"),
        "--log-format",
        "json",
        "state",
        "missing",
    ]);
    out.failed();
    let line = std::fs::read_to_string(&log).expect("log");
    let entry: serde_json::Value =
        serde_json::from_str(line.lines().last().expect("a line")).expect("json line");
    assert_eq!(entry["level"], "error");
    assert!(entry["msg"]
        .as_str()
        .is_some_and(|m| m.contains("does not exist")));
    assert!(entry["time"].is_string());
}

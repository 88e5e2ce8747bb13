//! The six hook kinds: when they run, with which state on stdin, and what a failure does.

mod common;

use common::*;
use serde_json::json;

fn hook(path: &std::path::Path, arg: &str) -> serde_json::Value {
    json!({"path": path, "args": ["hook", arg], "env": ["HOOK_ENV=1"], "timeout": 10})
}

#[test]
fn all_six_hooks_run_in_lifecycle_order() {
    let mut world = World::new("sleep 30");
    let log = world.dir.path().join("hooks.log");
    let host_hook = world.dir.path().join("hook.sh");
    // Records its kind, the status and pid it was given, and its HOOK_ENV.
    script(&host_hook, &format!(
        "state=$(cat); status=$(echo \"$state\" | sed 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/'); \
         pid=$(echo \"$state\" | grep -c '\"pid\"'); echo \"$1 $status pid=$pid env=$HOOK_ENV\" >> {}",
        log.display()
    ));
    // startContainer runs inside the container: its path is the container's.
    script(
        &world.rootfs().join("start-hook.sh"),
        "cat > /dev/null; echo \"$1 $HOOK_ENV\" > /tmp/start-hook.out",
    );
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["hooks"] = json!({
            "prestart": [hook(&host_hook, "prestart")],
            "createRuntime": [hook(&host_hook, "createRuntime")],
            "createContainer": [hook(&host_hook, "createContainer")],
            "startContainer": [{"path": "/start-hook.sh", "args": ["hook", "startContainer"], "env": ["HOOK_ENV=1"]}],
            "poststart": [hook(&host_hook, "poststart")],
            "poststop": [hook(&host_hook, "poststop")],
        });
    });
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["create", "--bundle", bundle, "h1"]).ok();
    let pid = world.state("h1")["pid"].as_i64().expect("pid") as i32;
    world.cmd(&["start", "h1"]).ok();
    world.cmd(&["kill", "h1", "KILL"]).ok();
    reap(pid);
    world.cmd(&["delete", "h1"]).ok();
    let lines = std::fs::read_to_string(&log).expect("hook log");
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        [
            "prestart created pid=1 env=1",
            "createRuntime created pid=1 env=1",
            "createContainer created pid=1 env=1",
            "poststart running pid=1 env=1",
            "poststop stopped pid=0 env=1",
        ]
    );
    let start = std::fs::read_to_string(world.rootfs().join("tmp/start-hook.out"))
        .expect("startContainer ran");
    assert_eq!(start, "startContainer 1\n");
}

#[test]
fn failing_create_runtime_hook_aborts_create_and_runs_poststop() {
    let mut world = World::new("sleep 30");
    let marker = world.dir.path().join("poststop-ran");
    let failing = world.dir.path().join("fail.sh");
    script(&failing, "echo hook refused >&2; exit 7");
    let poststop = world.dir.path().join("poststop.sh");
    script(&poststop, &format!("touch {}", marker.display()));
    world.edit(|c| {
        c["hooks"] = json!({
            "createRuntime": [{"path": failing}],
            "poststop": [{"path": poststop}],
        })
    });
    let bundle = world.bundle().to_str().expect("utf8");
    let out = world.cmd(&["create", "--bundle", bundle, "h2"]);
    out.failed();
    assert!(
        out.stderr.contains("hook refused") && out.stderr.contains("7"),
        "{}",
        out.stderr
    );
    assert!(marker.exists(), "poststop hooks run after a failed create");
    world.assert_no_state();
    assert!(processes_mentioning(bundle).is_empty());
}

#[test]
fn failing_poststart_hook_only_warns() {
    let mut world = World::new("true");
    let failing = world.dir.path().join("fail.sh");
    script(&failing, "exit 1");
    world.edit(|c| c["hooks"] = json!({"poststart": [{"path": failing}]}));
    let out = world.run("h3");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("level=warn"), "{}", out.stderr);
}

#[test]
fn failing_start_container_hook_fails_start() {
    let mut world = World::new("sleep 30");
    script(&world.rootfs().join("bad-hook.sh"), "exit 9");
    world.edit(|c| c["hooks"] = json!({"startContainer": [{"path": "/bad-hook.sh"}]}));
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["create", "--bundle", bundle, "h4"]).ok();
    let pid = world.state("h4")["pid"].as_i64().expect("pid") as i32;
    let out = world.cmd(&["start", "h4"]);
    out.failed();
    assert!(out.stderr.contains("bad-hook.sh"), "{}", out.stderr);
    reap(pid);
    assert_eq!(world.status("h4"), "stopped");
    world.cmd(&["delete", "h4"]).ok();
}

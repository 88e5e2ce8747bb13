//! Bad bundles and wrong lifecycle calls: a clear error on stderr, a non-zero exit, and
//! nothing left behind (no state, no process, no mount).

mod common;

use common::*;
use serde_json::json;

/// `create` must fail, name `needle` in its message, and leave nothing behind.
fn create_fails(world: &World, needle: &str) {
    let bundle = world.bundle().to_str().expect("utf8");
    let out = world.cmd(&["create", "--bundle", bundle, "bad"]);
    out.failed();
    assert!(
        out.stderr.contains(needle),
        "expected {needle:?} in {:?}",
        out.stderr
    );
    world.assert_no_state();
    assert!(
        processes_mentioning(bundle).is_empty(),
        "a process was left behind"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(bundle), "a mount was left behind");
}

/// As `create_fails`, and runc (the reference) refuses the same bundle.
fn create_fails_like_runc(world: &World, needle: &str) {
    create_fails(world, needle);
    let bundle = world.bundle().to_str().expect("utf8");
    let runc_root = world.dir.path().join("runc-state");
    let theirs = world.cmd_with("runc", &runc_root, &["create", "--bundle", bundle, "bad"]);
    if theirs.code == 0 {
        let _ = world.cmd_with("runc", &runc_root, &["delete", "--force", "bad"]);
    }
    assert_ne!(
        theirs.code, 0,
        "runc accepted what berth-runtime refused: {theirs:?}"
    );
}

#[test]
fn missing_config() {
    let world = World::new("true");
    std::fs::remove_file(world.bundle().join("config.json")).expect("rm");
    create_fails_like_runc(&world, "config.json");
}

#[test]
fn malformed_config() {
    let world = World::new("true");
    std::fs::write(world.bundle().join("config.json"), b"{\"process\": [").expect("write");
    create_fails_like_runc(&world, "config.json");
}

#[test]
fn unknown_namespace_type() {
    let mut world = World::new("true");
    world.edit(|c| c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "bogus"}]));
    create_fails_like_runc(&world, "bogus");
}

#[test]
fn duplicate_namespace() {
    let mut world = World::new("true");
    world.edit(|c| {
        c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}, {"type": "pid"}])
    });
    create_fails(&world, "twice");
}

#[test]
fn missing_rootfs() {
    let mut world = World::new("true");
    world.edit(|c| c["root"]["path"] = json!("no-such-rootfs"));
    create_fails_like_runc(&world, "no-such-rootfs");
}

#[test]
fn unsupported_or_invalid_resources_are_refused_by_name() {
    let mut world = World::new("true");
    for (field, resources) in [
        ("blockIO.weight", json!({"blockIO": {"weight": 5}})),
        ("network.classID", json!({"network": {"classID": 1}})),
        ("memory.limit", json!({"memory": {"limit": -5}})),
        ("pids.limit", json!({"pids": {"limit": -7}})),
        ("cpu.cpus", json!({"cpu": {"cpus": "zero"}})),
    ] {
        world.edit(|c| c["linux"]["resources"] = resources);
        create_fails(&world, field);
    }
    world.edit(|c| {
        c["linux"]
            .as_object_mut()
            .expect("linux")
            .remove("resources");
        c["linux"]["cgroupsPath"] = json!("/berth-test/../../escape");
    });
    create_fails(&world, "cgroupsPath");
}

#[test]
fn security_module_labels_fail_as_under_runc_without_the_module() {
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let mut world = World::new("true");
    for (field, enabled, edit) in [
        (
            "process.apparmorProfile",
            apparmor,
            json!({"process": {"apparmorProfile": "docker-default"}}),
        ),
        (
            "process.selinuxLabel",
            selinux,
            json!({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}),
        ),
        (
            "linux.mountLabel",
            selinux,
            json!({"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}),
        ),
    ] {
        world.edit(|c| {
            c["process"]
                .as_object_mut()
                .expect("process")
                .remove("apparmorProfile");
            c["process"]
                .as_object_mut()
                .expect("process")
                .remove("selinuxLabel");
            c["linux"]
                .as_object_mut()
                .expect("linux")
                .remove("mountLabel");
            for (section, values) in edit.as_object().expect("edit") {
                for (k, v) in values.as_object().expect("values") {
                    c[section][k] = v.clone();
                }
            }
        });
        if enabled {
            create_fails(&world, "does not apply");
        } else {
            create_fails_like_runc(&world, field);
            create_fails(&world, "is not enabled on this host");
        }
    }
}

#[test]
fn program_not_found() {
    let mut world = World::new("true");
    world.edit(|c| c["process"]["args"] = json!(["no-such-program"]));
    create_fails_like_runc(&world, "no-such-program");
}

#[test]
fn failing_mount() {
    let mut world = World::new("true");
    world.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({"destination": "/data", "type": "bind", "source": "/no/such/source", "options": ["rbind"]}))
    });
    create_fails_like_runc(&world, "/no/such/source");
}

/// runc's rule for /proc: only a procfs on /proc itself, and inside /proc only the files
/// lxcfs emulates; the message names the mount (it used to be a later, unrelated mask
/// error), also when the image leads the mount there through a symlink.
#[test]
fn mounts_over_proc_are_refused_naming_the_mount() {
    let mut world = World::new("true");
    let source = world.dir.path().join("empty");
    std::fs::create_dir_all(&source).expect("source");
    std::os::unix::fs::symlink("/proc/sys", world.bundle().join("rootfs/sneaky")).expect("symlink");
    for (dest, needle) in [
        (
            "/proc",
            "/proc cannot be mounted because it is not of type proc",
        ),
        (
            "/proc/sys",
            "/proc/sys cannot be mounted because it is inside /proc",
        ),
        (
            "/sneaky",
            "/proc/sys cannot be mounted because it is inside /proc",
        ),
    ] {
        let bind =
            json!({"destination": dest, "type": "bind", "source": source, "options": ["rbind"]});
        world.edit(|c| {
            let mounts = c["mounts"].as_array_mut().expect("mounts");
            mounts.retain(|m| m["type"] != "bind");
            mounts.push(bind.clone());
        });
        create_fails_like_runc(&world, needle);
    }
}

#[test]
fn hostname_without_uts_namespace() {
    let mut world = World::new("true");
    world.edit(|c| c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]));
    create_fails_like_runc(&world, "UTS");
}

#[test]
fn non_namespaced_sysctl() {
    let mut world = World::new("true");
    world.edit(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"}));
    create_fails_like_runc(&world, "vm.swappiness");
}

#[test]
fn user_namespace_without_mappings() {
    let mut world = World::new("true");
    world.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "user"}))
    });
    create_fails_like_runc(&world, "uidMappings");
}

#[test]
fn invalid_container_ids() {
    let world = World::new("true");
    let bundle = world.bundle().to_str().expect("utf8");
    for id in ["../escape", "a/b", ""] {
        world.cmd(&["create", "--bundle", bundle, id]).failed();
    }
    world.assert_no_state();
}

#[test]
fn terminal_without_console_socket() {
    let mut world = World::new("true");
    world.edit(|c| c["process"]["terminal"] = json!(true));
    create_fails_like_runc(&world, "console-socket");
}

#[test]
fn wrong_lifecycle_calls() {
    let world = World::new("sleep 30");
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["start", "nope"]).failed();
    world.cmd(&["kill", "nope"]).failed();
    world.cmd(&["state", "nope"]).failed();
    world.cmd(&["run", "-d", "--bundle", bundle, "w1"]).ok();
    let pid = world.state("w1")["pid"].as_i64().expect("pid") as i32;
    let out = world.cmd(&["start", "w1"]);
    out.failed();
    assert!(out.stderr.contains("running"));
    let out = world.cmd(&["delete", "w1"]);
    out.failed();
    assert!(out.stderr.contains("not stopped"));
    assert_eq!(
        world.status("w1"),
        "running",
        "a refused delete changed nothing"
    );
    world.cmd(&["delete", "--force", "w1"]).ok();
    reap(pid);
    world.assert_no_state();
}

#[test]
fn a_runtime_killed_during_create_leaves_nothing_that_delete_cannot_remove() {
    let mut world = World::new("sleep 30");
    let hook = world.dir.path().join("kill-runtime.sh");
    let hook_pid = world.dir.path().join("hook.pid");
    let hook_state = world.dir.path().join("hook-state.json");
    // The createRuntime hook runs in the runtime process: kill it there, mid-create. It
    // keeps the state it was given (init's pid) and its own pid, for reaping below.
    let body = format!(
        "cat > {}; echo $$ > {}; kill -9 $PPID",
        hook_state.display(),
        hook_pid.display()
    );
    script(&hook, &body);
    world.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": hook}]}));
    let bundle = world.bundle().to_str().expect("utf8");
    let out = world.cmd(&["create", "--bundle", bundle, "crash"]);
    assert_eq!(out.code, -1, "the runtime was not killed: {out:?}");
    assert_eq!(world.status("crash"), "creating");
    let path = std::fs::read_to_string(world.root().join("crash/cgroup"))
        .expect("cgroup recorded before it was made");
    let procs = format!("/sys/fs/cgroup/pids{path}/cgroup.procs");
    world.cmd(&["delete", "crash"]).ok();
    world.assert_no_state();
    assert!(!std::path::Path::new(&procs).exists(), "cgroup left behind");
    // The hook and init were orphaned to us (the subreaper): reap them by pid.
    let read_pid = |s: String| s.trim().parse::<i32>().expect("pid");
    let hook = read_pid(std::fs::read_to_string(&hook_pid).expect("hook pid"));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&hook_state).expect("state")).expect("json");
    let init = state["pid"].as_i64().expect("init pid") as i32;
    reap(hook);
    reap(init);
}

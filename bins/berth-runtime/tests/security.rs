//! runc's CVEs, not again: the host's runtime binary cannot be reached from a container
//! (CVE-2019-5736 class), no host descriptor or directory leaks in as cwd (CVE-2024-21626).

mod common;

use std::fs::OpenOptions;
use std::io::Read;

use common::*;
use serde_json::json;

fn digest(path: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .expect("open")
        .read_to_end(&mut bytes)
        .expect("read");
    bytes
}

#[test]
fn an_init_joining_a_pid_namespace_runs_from_a_sealed_copy() {
    let host = World::new("sleep 30");
    let bundle = host.bundle().to_str().expect("utf8");
    host.cmd(&["run", "-d", "--bundle", bundle, "s0"]).ok();
    let host_pid = host.state("s0")["pid"].as_i64().expect("pid");
    let mut joiner = World::new("sleep 30");
    joiner.edit(|c| {
        c["linux"]["namespaces"] =
            json!([{"type": "mount"}, {"type": "pid", "path": format!("/proc/{host_pid}/ns/pid")}]);
        c.as_object_mut().expect("obj").remove("hostname");
    });
    let bundle = joiner.bundle().to_str().expect("utf8");
    joiner.cmd(&["create", "--bundle", bundle, "s1"]).ok();
    let pid = joiner.state("s1")["pid"].as_i64().expect("pid");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    assert!(
        exe.to_string_lossy().starts_with("/memfd:berth-runtime"),
        "{exe:?}"
    );
    let write = OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"));
    assert!(write.is_err(), "the sealed copy must not be writable");
    joiner.cmd(&["delete", "s1"]).ok();
    reap(pid as i32);
    host.cmd(&["delete", "--force", "s0"]).ok();
    reap(host_pid as i32);
}

#[test]
fn a_container_cannot_reach_a_parked_init_or_the_runtime_binary() {
    let before = digest(BIN);
    let parked = World::new("sleep 30");
    let bundle = parked.bundle().to_str().expect("utf8");
    parked.cmd(&["create", "--bundle", bundle, "victim"]).ok();
    let pid = parked.state("victim")["pid"].as_i64().expect("pid");
    // An attacker sharing the parked init's pid namespace, where it is PID 1, as root with
    // the default capabilities.
    let mut attacker = World::new(
        "cat /proc/1/exe > /dev/null 2>&1 && echo read-exe; \
         echo x 2>/dev/null > /proc/1/exe && echo wrote-exe; \
         readlink /proc/1/cwd > /dev/null 2>&1 && echo read-cwd; echo done",
    );
    attacker.edit(|c| {
        c["linux"]["namespaces"] =
            json!([{"type": "mount"}, {"type": "pid", "path": format!("/proc/{pid}/ns/pid")}]);
        c.as_object_mut().expect("obj").remove("hostname");
    });
    let out = attacker.run("attacker");
    out.ok();
    assert_eq!(out.stdout, "done\n");
    parked.cmd(&["start", "victim"]).ok();
    parked.cmd(&["delete", "--force", "victim"]).ok();
    reap(pid as i32);
    assert_eq!(digest(BIN), before, "the runtime binary changed");
}

#[test]
fn cwd_through_a_descriptor_magic_link_is_refused() {
    for n in 3..9 {
        let mut world = World::new("pwd");
        world.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}")));
        let bundle = world.bundle().to_str().expect("utf8");
        let out = world.cmd(&["run", "--bundle", bundle, "cwd"]);
        out.failed();
        assert!(out.stderr.contains("cwd"), "{}", out.stderr);
        world.assert_no_state();
    }
}

//! The work a container's lifecycle costs: what `run` does once and not again (the host's
//! cgroup layout, the kernel's capability list), the round trip init skips when the runtime
//! has nothing to do before the pivot, and the mounts and cgroups that the cheaper paths
//! must still leave exactly as before.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;

/// `run` under strace (syscalls `trace`), returning the trace.
fn traced_run(world: &World, id: &str, trace: &str) -> String {
    assert!(installed("strace"), "these tests need strace");
    let log = world.dir.path().join(format!("strace-{id}"));
    let mut command = Command::new("strace");
    command
        .args(["-f", "-s", "64", "-e"])
        .arg(format!("trace={trace}"))
        .arg("-o")
        .arg(&log)
        .arg(BIN)
        .arg("--root")
        .arg(world.root())
        .args(["run", "--bundle"])
        .arg(world.bundle())
        .arg(id);
    let out = world.run_command(command);
    out.ok();
    std::fs::read_to_string(&log).expect("strace log")
}

#[test]
fn run_reads_the_cgroup_layout_and_probes_capabilities_once() {
    let world = World::new("true");
    let trace = traced_run(&world, "once", "openat,prctl");
    let mountinfo = trace.matches("/proc/self/mountinfo").count();
    assert_eq!(
        mountinfo, 1,
        "create and delete each read mountinfo:\n{trace}"
    );
    // One PR_CAPBSET_READ per capability the library knows (41), not one per set applied.
    let probes = trace.matches("PR_CAPBSET_READ").count();
    assert!(
        (1..=41).contains(&probes),
        "{probes} PR_CAPBSET_READ calls: the capability list is probed more than once"
    );
}

#[test]
fn init_asks_the_runtime_only_when_it_has_steps_to_run() {
    let mut world = World::new("true");
    let trace = traced_run(&world, "plain", "sendto,sendmsg");
    assert!(
        !trace.contains("RunRuntimeHooks"),
        "a round trip for no hooks:\n{trace}"
    );
    // With a createRuntime hook the runtime runs it, between the mounts and the pivot.
    let log = world.dir.path().join("hook.log");
    let hook = world.dir.path().join("hook.sh");
    script(
        &hook,
        &format!("cat > /dev/null; echo ran >> {}", log.display()),
    );
    world.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": hook}]}));
    let trace = traced_run(&world, "hooked", "sendto,sendmsg");
    assert!(trace.contains("RunRuntimeHooks"), "{trace}");
    assert_eq!(
        std::fs::read_to_string(&log).expect("hook log"),
        "ran\n",
        "the createRuntime hook did not run once"
    );
}

/// Mount point and per-mount options of each mount under /sys/fs/cgroup, from the
/// container's mountinfo.
fn cgroup_mounts(mountinfo: &str) -> Vec<(String, Vec<String>)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let (point, opts) = (fields.get(4)?, fields.get(5)?);
            point.starts_with("/sys/fs/cgroup").then(|| {
                let opts = opts.split(',').map(String::from).collect();
                (point.to_string(), opts)
            })
        })
        .collect()
}

#[test]
fn every_cgroup_hierarchy_gets_the_mounts_flags() {
    let mut world = World::new("cat /proc/self/mountinfo");
    let out = world.run("ro");
    out.ok();
    let mounts = cgroup_mounts(&out.stdout);
    assert!(!mounts.is_empty(), "no cgroup mount:\n{}", out.stdout);
    for (point, opts) in &mounts {
        for want in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(
                opts.iter().any(|o| o == want),
                "{point} lacks {want}: {opts:?}"
            );
        }
    }
    // The same mount without "ro": every hierarchy writable, still nosuid,nodev,noexec.
    world.edit(|c| {
        for m in c["mounts"].as_array_mut().expect("mounts") {
            if m["type"] == "cgroup" {
                let opts = m["options"].as_array_mut().expect("options");
                opts.retain(|o| o != "ro");
            }
        }
    });
    let out = world.run("rw");
    out.ok();
    let rw = cgroup_mounts(&out.stdout);
    assert_eq!(rw.len(), mounts.len(), "{}", out.stdout);
    for (point, opts) in &rw {
        assert!(
            opts.iter().any(|o| o == "rw"),
            "{point} is not rw: {opts:?}"
        );
        for want in ["nosuid", "nodev", "noexec"] {
            assert!(
                opts.iter().any(|o| o == want),
                "{point} lacks {want}: {opts:?}"
            );
        }
    }
}

/// Removes the directories of a cgroup path in every hierarchy, deepest first.
struct CgroupDirs(Vec<std::path::PathBuf>);

impl Drop for CgroupDirs {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn cpuset_is_filled_under_a_parent_left_empty() {
    let cpuset = Path::new("/sys/fs/cgroup/cpuset");
    if !cpuset.join("cpuset.cpus").exists() {
        eprintln!("no cgroup v1 cpuset hierarchy here: nothing to check");
        return;
    }
    let mut world = World::new("cat /sys/fs/cgroup/cpuset/cpuset.cpus");
    // A parent someone made and never filled: a child cannot take its (empty) cpus.
    let parent = format!("berth-lw-{}", std::process::id());
    let hierarchies: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
        .expect("/sys/fs/cgroup")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists() && !p.is_symlink())
        .collect();
    let mut dirs = Vec::new();
    for h in &hierarchies {
        dirs.push(h.join(&parent));
    }
    for h in &hierarchies {
        dirs.push(h.join(&parent).join("c"));
    }
    let _cleanup = CgroupDirs(dirs);
    std::fs::create_dir(cpuset.join(&parent)).expect("make the parent cgroup");
    let empty = std::fs::read_to_string(cpuset.join(&parent).join("cpuset.cpus")).expect("read");
    assert_eq!(empty.trim(), "", "a new cpuset cgroup starts empty");
    world.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{parent}/c")));
    let out = world.run("cpus");
    out.ok();
    let host = std::fs::read_to_string(cpuset.join("cpuset.cpus")).expect("read");
    assert_eq!(out.stdout.trim(), host.trim(), "{}", out.stderr);
}

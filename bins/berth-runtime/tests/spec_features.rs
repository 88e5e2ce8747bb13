//! runtime-spec 1.2 features beyond the basics (issue 19): process.ioPriority,
//! process.scheduler, process.execCPUAffinity, linux.personality, linux.memoryPolicy,
//! linux.intelRdt, linux.netDevices, and a time namespace inside a user namespace. Each
//! setting is read back from inside the container.

mod common;

use common::*;
use serde_json::json;

/// Item: a time namespace with clock offsets in a new user namespace. The offsets were
/// written by stage 1 after it became root of the new user namespace, on a /proc file the
/// host's root owns (stage 1 is not dumpable): EACCES.
#[test]
fn time_offsets_in_a_user_namespace() {
    let mut world = World::new("cut -d. -f1 /proc/uptime");
    world.map_users();
    world.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    });
    let out = world.run("timens-userns");
    out.ok();
    let inside: u64 = out.stdout.trim().parse().expect("uptime");
    assert!(inside >= 86400000, "boottime offset not applied: {inside}");
    world.assert_no_state();
}

/// Fields of /proc/<pid>/stat after the command name: priority, nice, rt_priority, policy.
const SCHED_FIELDS: &str = "sed 's/^.*) //' /proc/$$/stat | cut -d' ' -f16,17,38,39";

/// process.scheduler, process.ioPriority and linux.personality, read back inside: the
/// stat fields of the scheduler, busybox's ionice, and uname's machine under LINUX32.
#[test]
fn scheduler_io_priority_and_personality_inside_the_container() {
    let mut world = World::new(&format!("{SCHED_FIELDS}; ionice -p $$; uname -m"));
    world.edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 10,
            "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 3});
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
        // A v1 cpu controller with real-time group scheduling (this host's) gives a new
        // cgroup no real-time time: the config must ask for some.
        c["linux"]["resources"]["cpu"] = json!({"realtimeRuntime": 10000});
    });
    let out = world.run("sched1");
    out.ok();
    // SCHED_RR (2) at rt_priority 10 shows as priority -11; uname says a 32-bit machine.
    assert_eq!(out.stdout, "-11 0 10 2\nrealtime: prio 3\ni686\n");

    world.edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        c["linux"]["personality"] = json!({"domain": "LINUX"});
    });
    let out = world.run("sched2");
    out.ok();
    assert_eq!(out.stdout, "27 7 0 3\nidle\nx86_64\n");
}

/// What crun 1.8.1 implements of the same fields (personality) gives the same answer.
#[test]
fn personality_matches_crun() {
    let mut world = World::new("uname -m");
    world.edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX32"}));
    let ours = world.run("pers");
    ours.ok();
    let theirs = crun_run(&world, "pers");
    assert_eq!(theirs.code, 0, "crun: {theirs:?}");
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(ours.stdout, "i686\n");
}

/// A value the kernel would refuse is refused at create, naming the field and the value,
/// and nothing is left behind.
#[test]
fn bad_values_are_refused_naming_field_and_value() {
    let cases: [(&str, serde_json::Value, &str); 9] = [
        (
            "/process/ioPriority",
            json!({"class": "IOPRIO_CLASS_BE", "priority": 9}),
            "process.ioPriority.priority 9",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_FIFO"}),
            "process.scheduler: priority 0: SCHED_FIFO needs 1 to 99",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_OTHER", "nice": -30}),
            "nice -30",
        ),
        (
            "/process/scheduler",
            json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_BOGUS"]}),
            "SCHED_FLAG_BOGUS",
        ),
        (
            "/linux/personality",
            json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}),
            "linux.personality.flags [\"ADDR_NO_RANDOMIZE\"]",
        ),
        (
            "/linux/memoryPolicy",
            json!({"mode": "MPOL_BIND"}),
            "MPOL_BIND needs at least one node",
        ),
        (
            "/linux/memoryPolicy",
            json!({"mode": "MPOL_BIND", "nodes": "0-1,4096"}),
            "linux.memoryPolicy.nodes \"0-1,4096\": this host has no memory node 1",
        ),
        (
            "/process/execCPUAffinity",
            json!({"initial": "3-1"}),
            "process.execCPUAffinity.initial \"3-1\": range \"3-1\" runs backwards",
        ),
        (
            "/linux/netDevices",
            json!({"d0": {"name": "a/b"}}),
            "linux.netDevices[\"d0\"].name \"a/b\" is not a valid network device name",
        ),
    ];
    for (i, (pointer, value, needle)) in cases.into_iter().enumerate() {
        let mut world = World::new("true");
        world.edit(|c| {
            let (parent, key) = pointer.rsplit_once('/').expect("pointer");
            c.pointer_mut(parent).expect("parent")[key] = value.clone();
        });
        let bundle = world.bundle().to_str().expect("utf8").to_string();
        let out = world.cmd(&["create", "--bundle", &bundle, &format!("bad{i}")]);
        out.failed();
        // The log line quotes the message: its own quotes come escaped.
        let message = out.stderr.replace("\\\"", "\"");
        assert!(message.contains(needle), "{pointer} {value}: {message}");
        world.assert_no_state();
    }
}

/// Whether the host has a resctrl filesystem mounted.
fn resctrl_mount() -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split(' ').next() == Some("resctrl"))
            .then(|| left.split(' ').nth(4).map(String::from))?
    })
}

/// linux.intelRdt: without resctrl (this VM: no RDT hardware) create fails with an error
/// that says so, as runtime-spec requires. With it, init is in a group of its own, which
/// delete removes.
#[test]
fn intel_rdt_needs_resctrl() {
    let mut world = World::new("sleep 10");
    world.edit(|c| c["linux"]["intelRdt"] = json!({}));
    let bundle = world.bundle().to_str().expect("utf8").to_string();
    match resctrl_mount() {
        None => {
            let out = world.cmd(&["create", "--bundle", &bundle, "rdt"]);
            out.failed();
            assert!(
                out.stderr.contains("linux.intelRdt")
                    && out.stderr.contains("no resctrl filesystem mounted"),
                "{}",
                out.stderr
            );
            world.assert_no_state();
        }
        Some(root) => {
            world.cmd(&["create", "--bundle", &bundle, "rdt"]).ok();
            let pid = world.state("rdt")["pid"].as_i64().expect("pid");
            let group = std::path::Path::new(&root).join("rdt");
            let tasks = std::fs::read_to_string(group.join("tasks")).expect("tasks");
            assert!(tasks.lines().any(|l| l == pid.to_string()), "{tasks}");
            world.cmd(&["delete", "--force", "rdt"]).ok();
            reap(pid as i32);
            assert!(!group.exists(), "the resctrl group was left behind");
        }
    }
}

/// linux.memoryPolicy, read back from numa_maps (which shows the task's policy for
/// mappings without one of their own). runc 1.1.5 and crun 1.8.1 ignore the field: their
/// containers show "default".
#[test]
fn memory_policy_inside_the_container() {
    let mut world = World::new("head -1 /proc/self/numa_maps | cut -d' ' -f2");
    for (i, (policy, shown)) in [
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "bind=static:0",
        ),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            "interleave:0",
        ),
        (json!({"mode": "MPOL_PREFERRED", "nodes": "0"}), "prefer:0"),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
        (json!({"mode": "MPOL_DEFAULT"}), "default"),
    ]
    .into_iter()
    .enumerate()
    {
        world.edit(|c| c["linux"]["memoryPolicy"] = policy.clone());
        let out = world.run(&format!("mpol{i}"));
        out.ok();
        assert_eq!(out.stdout.trim(), shown, "{policy}");
    }
}

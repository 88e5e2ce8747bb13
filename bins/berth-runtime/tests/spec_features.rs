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

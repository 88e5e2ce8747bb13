//! Fuzz the runtime's config.json loader and validator (berth_runtime::spec): the default
//! config with fields replaced by plausible or wrong values, removed, or its text damaged.
//! Checks: nothing panics; a config that loads is validated without panicking, its rootfs
//! path worked out, and it survives the round trip the runtime makes when it keeps the
//! config in state.json (serialize, parse again: the same config, validated the same way),
//! or the container would be unmanageable after create.

use berth_fuzz::json::{any_value, scalar, string_list, tricky_string};
use berth_runtime::spec::{self, SpecFlavor};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

/// Where a change goes (a JSON pointer), with values that field could plausibly take.
fn field_values() -> Vec<(&'static str, BoxedStrategy<Value>)> {
    let strings = || tricky_string().boxed();
    let path = || {
        select(vec![
            "/",
            "/tmp",
            "rootfs",
            "",
            "relative",
            "/proc/self/ns/net",
            "/../..",
            "/nonexistent",
        ])
        .prop_map(Value::from)
        .boxed()
    };
    let caps = || {
        string_list(
            select(vec![
                "CAP_CHOWN",
                "CAP_SYS_ADMIN",
                "CAP_BOGUS",
                "chown",
                "",
                "ALL",
            ])
            .prop_map(String::from)
            .boxed(),
        )
        .boxed()
    };
    let namespace = select(vec![
        "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time", "bogus",
    ])
    .prop_flat_map(|t| {
        (
            Just(t),
            proptest::option::of(select(vec![
                "/proc/self/ns/net",
                "relative",
                "/nonexistent",
            ])),
        )
    })
    .prop_map(|(t, p)| match p {
        Some(p) => json!({"type": t, "path": p}),
        None => json!({"type": t}),
    });
    let mount = (
        select(vec!["/proc", "/dev", "relative", "/tmp/x", ""]),
        select(vec!["proc", "tmpfs", "bind", "sysfs", "bogus"]),
        vec(
            select(vec![
                "nosuid",
                "ro",
                "rbind",
                "rprivate",
                "size=1k",
                "mode=755",
                "bogus",
                "tmpcopyup",
                "idmap",
                "",
            ]),
            0..4,
        ),
    )
        .prop_map(|(d, t, o)| json!({"destination": d, "type": t, "source": t, "options": o}));
    let id_map = (
        any::<u32>(),
        any::<u32>(),
        select(vec![0u32, 1, 65536, u32::MAX]),
    )
        .prop_map(|(c, h, s)| json!([{"containerID": c, "hostID": h, "size": s}]));
    let hook = (path(), vec(strings(), 0..3), proptest::option::of(-2i64..3))
        .prop_map(|(p, a, t)| json!([{"path": p, "args": a, "timeout": t}]));
    vec![
        ("/ociVersion", select(vec!["1.2.0", "1.0.0", "", "bogus"]).prop_map(Value::from).boxed()),
        ("/process/args", string_list(strings()).boxed()),
        ("/process/cwd", path()),
        ("/process/env", string_list(strings()).boxed()),
        ("/process/terminal", any::<bool>().prop_map(Value::Bool).boxed()),
        ("/process/user", (any::<u32>(), any::<u32>(), vec(any::<u32>(), 0..3))
            .prop_map(|(u, g, a)| json!({"uid": u, "gid": g, "additionalGids": a})).boxed()),
        ("/process/user/umask", any::<u32>().prop_map(Value::from).boxed()),
        ("/process/capabilities/bounding", caps()),
        ("/process/capabilities/effective", caps()),
        ("/process/rlimits", vec(
            (select(vec!["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_BOGUS", "nofile"]), any::<u64>(), any::<u64>())
                .prop_map(|(t, s, h)| json!({"type": t, "soft": s, "hard": h})),
            0..3,
        ).prop_map(Value::Array).boxed()),
        ("/process/noNewPrivileges", any::<bool>().prop_map(Value::Bool).boxed()),
        ("/process/oomScoreAdj", prop_oneof![Just(json!(-1000)), Just(json!(1001)), any::<i32>().prop_map(Value::from)].boxed()),
        ("/process/apparmorProfile", strings().prop_map(Value::from).boxed()),
        ("/process/selinuxLabel", strings().prop_map(Value::from).boxed()),
        ("/process/consoleSize", (any::<u32>(), any::<u32>()).prop_map(|(h, w)| json!({"height": h, "width": w})).boxed()),
        ("/process/ioPriority", Just(json!({"class": "IOPRIO_CLASS_RT", "priority": 1})).boxed()),
        ("/root", (path(), any::<bool>()).prop_map(|(p, r)| json!({"path": p, "readonly": r})).boxed()),
        ("/hostname", strings().prop_map(Value::from).boxed()),
        ("/domainname", strings().prop_map(Value::from).boxed()),
        ("/mounts", vec(mount, 0..4).prop_map(Value::Array).boxed()),
        ("/hooks/prestart", hook.clone().boxed()),
        ("/hooks/createRuntime", hook.boxed()),
        ("/annotations", proptest::collection::btree_map(strings(), strings(), 0..3)
            .prop_map(|m| json!(m)).boxed()),
        ("/linux/namespaces", vec(namespace, 0..5).prop_map(Value::Array).boxed()),
        ("/linux/uidMappings", id_map.clone().boxed()),
        ("/linux/gidMappings", id_map.boxed()),
        ("/linux/sysctl", proptest::collection::btree_map(
            select(vec!["net.ipv4.ip_forward", "kernel.shmmax", "kernel.hostname", "fs.mqueue.x", "vm.swappiness", "net..x", "net./x"]),
            strings(),
            0..3,
        ).prop_map(|m| json!(m)).boxed()),
        ("/linux/rootfsPropagation", select(vec!["private", "rslave", "shared", "bogus", ""]).prop_map(Value::from).boxed()),
        ("/linux/timeOffsets", Just(json!({"monotonic": {"secs": 1, "nanosecs": 0}, "bogus": {"secs": 1}})).boxed()),
        ("/linux/maskedPaths", string_list(strings()).boxed()),
        ("/linux/readonlyPaths", string_list(strings()).boxed()),
        ("/linux/devices", vec(
            (select(vec!["c", "b", "u", "p", "x"]), path(), any::<i64>(), any::<i64>())
                .prop_map(|(t, p, ma, mi)| json!({"type": t, "path": p, "major": ma, "minor": mi})),
            0..3,
        ).prop_map(Value::Array).boxed()),
        ("/linux/resources", any_value().boxed()),
        ("/linux/resources/memory/limit", any::<i64>().prop_map(Value::from).boxed()),
        ("/linux/resources/devices", Just(json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "z", "major": -5}])).boxed()),
        ("/linux/cgroupsPath", path()),
        ("/linux/seccomp", (
            select(vec!["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_BOGUS", "SCMP_ACT_NOTIFY"]),
            vec(select(vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_BOGUS"]), 0..2),
            vec((vec(select(vec!["getpid", "bogus_call", "", "clone"]), 0..3), select(vec!["SCMP_ACT_ERRNO", "SCMP_ACT_KILL"]))
                .prop_map(|(n, a)| json!({"names": n, "action": a, "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]})), 0..3),
        ).prop_map(|(d, a, s)| json!({"defaultAction": d, "architectures": a, "syscalls": s})).boxed()),
        ("/linux/intelRdt", Just(json!({"closID": "x"})).boxed()),
        ("/linux/personality", Just(json!({"domain": "LINUX"})).boxed()),
    ]
}

#[derive(Debug, Clone)]
enum Change {
    Set(&'static str, Value),
    Remove(&'static str),
}

#[derive(Debug, Clone)]
struct Case {
    rootless: bool,
    changes: Vec<Change>,
    /// Byte damage to the JSON text: (offset, byte), and a cut.
    damage: Vec<(usize, u8)>,
    cut: Option<usize>,
}

fn change() -> impl Strategy<Value = Change> {
    let fields = field_values();
    let pointers: Vec<&'static str> = fields.iter().map(|(p, _)| *p).collect();
    let sets: Vec<BoxedStrategy<Change>> = fields
        .into_iter()
        .map(|(p, v)| {
            prop_oneof![5 => v, 1 => scalar()]
                .prop_map(move |v| Change::Set(p, v))
                .boxed()
        })
        .collect();
    prop_oneof![
        6 => proptest::strategy::Union::new(sets),
        1 => select(pointers).prop_map(Change::Remove),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop::bool::weighted(0.2),
        vec(change(), 0..5),
        prop_oneof![12 => Just((Vec::new(), None)), 1 => (vec((any::<usize>(), any::<u8>()), 1..3), Just(None)), 1 => (Just(Vec::new()), any::<usize>().prop_map(Some))],
    )
        .prop_map(|(rootless, changes, (damage, cut))| Case {
            rootless,
            changes,
            damage,
            cut,
        })
}

/// Set `value` at `pointer`, making the objects on the way.
fn set(root: &mut Value, pointer: &str, value: Value) {
    let mut at = root;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let Some(obj) = at.as_object_mut() else {
            return;
        };
        if i == parts.len() - 1 {
            obj.insert((*part).to_string(), value);
            return;
        }
        at = obj.entry(*part).or_insert_with(|| json!({}));
    }
}

fn remove(root: &mut Value, pointer: &str) {
    if let Some((parent, key)) = pointer.rsplit_once('/') {
        let parent = if parent.is_empty() {
            Some(&mut *root)
        } else {
            root.pointer_mut(parent)
        };
        if let Some(obj) = parent.and_then(Value::as_object_mut) {
            obj.remove(key);
        }
    }
}

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

fn case(c: Case) -> Result<(), TestCaseError> {
    let flavor = if c.rootless {
        SpecFlavor::Rootless {
            uid: 1000,
            gid: 1000,
        }
    } else {
        SpecFlavor::Rootful
    };
    let mut config = spec::default_spec(flavor);
    for ch in &c.changes {
        match ch {
            Change::Set(p, v) => set(&mut config, p, v.clone()),
            Change::Remove(p) => remove(&mut config, p),
        }
    }
    let mut text = serde_json::to_vec_pretty(&config).map_err(fail)?;
    let len = text.len();
    for (at, xor) in &c.damage {
        text[at % len] ^= xor.max(&1);
    }
    if let Some(cut) = c.cut {
        text.truncate(cut % len);
    }
    let bundle = tempfile::tempdir_in(berth_fuzz::scratch_root()).map_err(fail)?;
    std::fs::write(bundle.path().join("config.json"), &text).map_err(fail)?;
    let Ok(loaded) = spec::load(bundle.path()) else {
        return Ok(());
    };
    LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let verdict = spec::validate(&loaded).map_err(|e| e.to_string());
    if verdict.is_ok() {
        VALID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let _ = spec::rootfs_path(bundle.path(), &loaded);
    let _ = spec::joins_pid_namespace(&loaded);
    spec::Bundle::load(bundle.path()).map_err(|e| fail(format!("Bundle::load after load: {e}")))?;
    // The round trip through state.json.
    let kept = serde_json::to_vec(&loaded).map_err(|e| fail(format!("serialize: {e}")))?;
    let again: oci_spec::runtime::Spec = serde_json::from_slice(&kept).map_err(|e| {
        fail(format!(
            "a loaded config does not parse once written back: {e}\n{}",
            String::from_utf8_lossy(&kept)
        ))
    })?;
    if again != loaded {
        return Err(fail(format!(
            "the config changed in a round trip:\n{loaded:?}\n{again:?}"
        )));
    }
    let verdict_again = spec::validate(&again).map_err(|e| e.to_string());
    if verdict_again != verdict {
        return Err(fail(format!(
            "validation changed in a round trip: {verdict:?} -> {verdict_again:?}"
        )));
    }
    Ok(())
}

static LOADED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static VALID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[test]
fn runtime_config_json() {
    berth_fuzz::check("oci-config", 1500, case_strategy(), case);
    eprintln!(
        "fuzz oci-config: {} configs loaded, {} valid",
        LOADED.load(std::sync::atomic::Ordering::Relaxed),
        VALID.load(std::sync::atomic::Ordering::Relaxed)
    );
}

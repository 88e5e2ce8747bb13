//! Fuzz the Engine API bodies through the engine's public entry points, on an engine with a
//! temp data root and one small imported image (no shim or runtime: nothing starts):
//! - `Engine::create_container` (POST /containers/create): Docker's Config with HostConfig,
//!   every supported key with plausible and wrong values, unsupported keys, names,
//!   platforms. A container it creates must resolve by id and name, be stored on disk as
//!   it is in memory, hold only what the runtime can parse (seccomp, resources, rlimits,
//!   mounts, capabilities: else it is created and can never start), and be removable
//!   without a trace; a refused body leaves nothing.
//! - `Engine::create_exec` (POST /containers/{id}/exec) on a container marked running: an
//!   exec it creates must hold a process the runtime can parse, with its command, an
//!   absolute cwd and the container's capabilities or all of them.
//!
//! (There is no update endpoint yet: POST /containers/{id}/update answers 501.)

use std::collections::BTreeSet;

use berth_engine::containers::{ContainerRecord, Status};
use berth_engine::Engine;
use berth_fuzz::json::{
    any_value, merge, object, object_with, scalar, string_list, tricky_number, tricky_string,
};
use berth_image::{Platform, Reference};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

fn pick(values: Vec<&'static str>) -> BoxedStrategy<Value> {
    select(values).prop_map(Value::from).boxed()
}

fn strings_of(values: Vec<&'static str>) -> BoxedStrategy<Value> {
    string_list(select(values).prop_map(String::from).boxed()).boxed()
}

fn number() -> BoxedStrategy<Value> {
    tricky_number().boxed()
}

fn boolean() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::Bool).boxed()
}

/// A seccomp profile in Docker's format, right or wrong in places.
fn seccomp_profile() -> BoxedStrategy<Value> {
    let action = || {
        pick(vec![
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_KILL",
            "SCMP_ACT_LOG",
            "SCMP_ACT_BOGUS",
            "",
        ])
    };
    let rule = (
        strings_of(vec!["getpid", "clone", "bogus_call", "", "mount", "ptrace"]),
        prop_oneof![4 => action(), 1 => scalar().boxed()],
        prop_oneof![
            3 => Just(Value::Null),
            1 => vec((0u32..8, select(vec!["SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ", "BOGUS"])), 0..3)
                .prop_map(|a| Value::from(a.into_iter().map(|(i, op)| json!({"index": i, "value": 1, "op": op})).collect::<Vec<_>>())),
            1 => any_value(),
        ],
        prop_oneof![3 => Just(Value::Null), 1 => strings_of(vec!["CAP_SYS_ADMIN", "CAP_BOGUS", "SYS_PTRACE"])],
        prop_oneof![3 => Just(Value::Null), 1 => pick(vec!["4.8", "99.0", "x", ""])],
        prop_oneof![3 => Just(Value::Null), 1 => number()],
    )
        .prop_map(|(names, action, args, caps, kernel, errno)| {
            json!({"names": names, "action": action, "args": args,
                   "includes": {"caps": caps, "minKernel": kernel}, "errnoRet": errno})
        });
    object(vec![
        ("defaultAction", prop_oneof![4 => action(), 1 => scalar().boxed()].boxed()),
        ("defaultErrnoRet", number()),
        ("architectures", strings_of(vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_BOGUS", ""])),
        ("archMap", Just(json!([{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}])).boxed()),
        ("syscalls", vec(rule, 0..4).prop_map(Value::from).boxed()),
    ])
}

fn security_opt() -> BoxedStrategy<Value> {
    let fixed = select(vec![
        "no-new-privileges",
        "no-new-privileges=true",
        "no-new-privileges:false",
        "no-new-privileges=maybe",
        "seccomp=unconfined",
        "seccomp=",
        "seccomp={not json",
        "seccomp:unconfined",
        "apparmor=unconfined",
        "label=disable",
        "",
        "=",
    ])
    .prop_map(String::from);
    let profile = seccomp_profile().prop_map(|p| format!("seccomp={p}"));
    string_list(prop_oneof![3 => fixed, 1 => profile].boxed()).boxed()
}

fn host_config() -> BoxedStrategy<Value> {
    let caps = || {
        strings_of(vec![
            "ALL",
            "NET_ADMIN",
            "CAP_SYS_ADMIN",
            "chown",
            "CAP_BOGUS",
            "",
            "all",
            "SYS_PTRACE",
        ])
    };
    let supported = object_with(
        vec![
            (
                "NetworkMode",
                pick(vec!["none", "host", "default", "bridge", "container:x", ""]),
            ),
            ("AutoRemove", boolean()),
            ("SecurityOpt", security_opt()),
            (
                "RestartPolicy",
                object(vec![
                    (
                        "Name",
                        pick(vec![
                            "no",
                            "always",
                            "unless-stopped",
                            "on-failure",
                            "",
                            "bogus",
                        ]),
                    ),
                    ("MaximumRetryCount", number()),
                ]),
            ),
            (
                "ConsoleSize",
                vec(number(), 0..3).prop_map(Value::from).boxed(),
            ),
            (
                "LogConfig",
                object(vec![
                    ("Type", pick(vec!["json-file", "none", "syslog", ""])),
                    (
                        "Config",
                        btree_map(
                            select(vec!["max-size", "max-file", "compress", "labels"]),
                            select(vec![
                                "1k",
                                "10m",
                                "bogus",
                                "-1",
                                "",
                                "0",
                                "3",
                                "99999999999999999999g",
                            ]),
                            0..3,
                        )
                        .prop_map(|m| json!(m))
                        .boxed(),
                    ),
                ]),
            ),
            ("Runtime", pick(vec!["", "berth-runtime", "runc", "bogus"])),
            ("Memory", number()),
            ("MemorySwap", number()),
            ("NanoCpus", number()),
            ("CpuShares", number()),
            ("CpuQuota", number()),
            ("CpuPeriod", number()),
            (
                "CpusetCpus",
                pick(vec![
                    "0",
                    "0-1",
                    "1,3",
                    "x",
                    "",
                    "0-",
                    "3-1",
                    "99999999999",
                    "0,,1",
                ]),
            ),
            ("CpusetMems", pick(vec!["0", "0-1", "x", ""])),
            ("PidsLimit", number()),
            (
                "Ulimits",
                vec(
                    object(vec![
                        (
                            "Name",
                            pick(vec!["nofile", "nproc", "core", "bogus", "", "NOFILE"]),
                        ),
                        ("Soft", number()),
                        ("Hard", number()),
                    ]),
                    0..3,
                )
                .prop_map(Value::from)
                .boxed(),
            ),
            ("CapAdd", caps()),
            ("CapDrop", caps()),
            ("ReadonlyRootfs", boolean()),
            (
                "Tmpfs",
                btree_map(
                    select(vec!["/tmp", "relative", "/", "/proc", "", "/run/x"]),
                    select(vec![
                        "",
                        "size=1m",
                        "rw,noexec",
                        "bogus=1",
                        "mode=1777",
                        "size=-1",
                        "uid=x",
                    ]),
                    0..3,
                )
                .prop_map(|m| json!(m))
                .boxed(),
            ),
            (
                "Binds",
                strings_of(vec![
                    "/tmp:/ctr",
                    "/tmp:/ctr:ro",
                    "rel:/x",
                    "/tmp:/b:bogus",
                    "/tmp:relative",
                    "named:/data",
                    ":",
                    "/a:/b:c:d",
                    "/tmp:/",
                    "/tmp:/proc",
                    "/tmp:/x:rw,z",
                    "vol:/data:ro,nocopy",
                    "/anonymous",
                    "../up:/x",
                ]),
            ),
            (
                "Mounts",
                vec(
                    prop_oneof![
                        Just(json!({"Type": "volume", "Source": "mv", "Target": "/m", "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"}}})),
                        Just(json!({"Type": "volume", "Target": "/anon"})),
                        Just(json!({"Type": "volume", "Source": "../x", "Target": "/m"})),
                        Just(json!({"Type": "volume", "Source": "tv", "Target": "/t", "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}})),
                        Just(json!({"Type": "tmpfs", "Target": "/tm", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}})),
                        Just(json!({"Type": "bind", "Source": "/tmp", "Target": "/b", "ReadOnly": true})),
                        Just(json!({"Type": "bind", "Source": "/nonexistent/fuzz", "Target": "/b"})),
                        Just(json!({"Type": "bogus", "Target": "/x"})),
                        Just(json!({"Type": "volume", "Target": "/"})),
                        any_value(),
                    ],
                    0..3,
                )
                .prop_map(Value::from)
                .boxed(),
            ),
            ("Privileged", boolean()),
            ("Init", boolean()),
            (
                "PidMode",
                pick(vec!["host", "", "container:x", "container:", "bogus"]),
            ),
            (
                "IpcMode",
                pick(vec![
                    "private",
                    "shareable",
                    "none",
                    "host",
                    "container:x",
                    "bogus",
                    "",
                ]),
            ),
            ("UTSMode", pick(vec!["host", "", "private"])),
            ("CgroupnsMode", pick(vec!["host", "private", "", "bogus"])),
            ("ShmSize", number()),
            (
                "Sysctls",
                btree_map(
                    select(vec![
                        "net.ipv4.ip_forward",
                        "kernel.shmmax",
                        "vm.swappiness",
                        "kernel.hostname",
                        "net/ipv4/conf/all/forwarding",
                        "",
                        "net..x",
                    ]),
                    select(vec!["1", "0", ""]),
                    0..3,
                )
                .prop_map(|m| json!(m))
                .boxed(),
            ),
            (
                "GroupAdd",
                strings_of(vec!["tty", "4242", "-1", "nosuch", ""]),
            ),
            ("OomScoreAdj", number()),
            ("OomKillDisable", boolean()),
            ("MemoryReservation", number()),
            ("MemorySwappiness", number()),
            ("CpuRealtimePeriod", number()),
            ("CpuRealtimeRuntime", number()),
            ("BlkioWeight", number()),
            (
                "BlkioDeviceReadBps",
                vec(
                    object(vec![
                        (
                            "Path",
                            pick(vec!["/dev/null", "/dev/nope", "", "/dev/loop0"]),
                        ),
                        ("Rate", number()),
                    ]),
                    0..2,
                )
                .prop_map(Value::from)
                .boxed(),
            ),
        ],
        0.2,
    );
    // Keys berth refuses while they are set, now and then.
    let refused = object_with(vec![
        ("PortBindings", Just(json!({"80/tcp": [{"HostPort": "8080"}]})).boxed()),
        ("Devices", Just(json!([{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}])).boxed()),
        ("VolumesFrom", strings_of(vec!["other"])),
    ], 0.015);
    // Without a network mode berth refuses the body (no bridge yet): mostly one it runs.
    let network = prop_oneof![
        9 => Just(json!({"NetworkMode": "none"})),
        3 => Just(json!({"NetworkMode": "host"})),
        1 => Just(json!({"NetworkMode": "default"})),
        1 => Just(json!({})),
    ]
    .boxed();
    merge(merge(supported, refused), network)
}

/// Docker's container Config with HostConfig inside.
fn create_body() -> BoxedStrategy<Value> {
    let config = object(vec![
        ("Hostname", tricky_string().prop_map(Value::from).boxed()),
        ("User", pick(vec!["", "root", "0", "1000:1000", "fuzz", "fuzz:fuzz", "missing", "0:missing", "a:b:c", ":"])),
        ("Env", strings_of(vec!["A=1", "PATH=/x", "=x", "A", "", "A=b=c", "HOME="])),
        ("Cmd", prop_oneof![3 => strings_of(vec!["sh", "-c", "true", ""]), 1 => pick(vec!["sh -c true"])].boxed()),
        ("Entrypoint", prop_oneof![3 => strings_of(vec!["/bin/sh", "", "-c"]), 1 => pick(vec!["/bin/sh"])].boxed()),
        ("WorkingDir", pick(vec!["/", "/tmp", "relative", "", "/a/../.."])),
        ("Labels", btree_map(select(vec!["a", "", "com.x", "\u{0}"]), scalar(), 0..3).prop_map(|m| json!(m)).boxed()),
        ("StopSignal", pick(vec!["SIGTERM", "9", "KILL", "SIGBOGUS", "", "-1", "100", "SIGRTMIN+3"])),
        ("StopTimeout", number()),
        ("Tty", boolean()),
        ("OpenStdin", boolean()),
        ("StdinOnce", boolean()),
        ("HostConfig", host_config()),
        ("NetworkingConfig", any_value().boxed()),
    ]);
    let refused = object_with(
        vec![
            ("Volumes", Just(json!({"/data": {}})).boxed()),
            ("ExposedPorts", Just(json!({"80/tcp": {}})).boxed()),
            (
                "Healthcheck",
                Just(json!({"Test": ["CMD", "true"]})).boxed(),
            ),
        ],
        0.015,
    );
    let must = (
        prop_oneof![
            12 => select(vec!["fuzz:latest", "fuzz", "docker.io/library/fuzz:latest"]).prop_map(Value::from),
            1 => pick(vec!["missing:1", "", "Bad:Name"]),
            1 => scalar(),
        ],
        host_config(),
    )
        .prop_map(|(image, host)| json!({"Image": image, "HostConfig": host}))
        .boxed();
    merge(merge(config, refused), must)
}

fn exec_body() -> BoxedStrategy<Value> {
    let optional = object(vec![
        ("AttachStdin", boolean()),
        ("AttachStdout", boolean()),
        ("AttachStderr", boolean()),
        ("Tty", boolean()),
        (
            "Env",
            strings_of(vec!["A=1", "PATH=/x", "=x", "A", "", "A=b=c"]),
        ),
        (
            "WorkingDir",
            pick(vec!["/", "/tmp", "relative", "", "/a/../.."]),
        ),
        (
            "User",
            pick(vec![
                "",
                "root",
                "0",
                "1000:1000",
                "fuzz",
                "fuzz:fuzz",
                "missing",
                "0:missing",
                "a:b:c",
                ":",
                "4294967296",
            ]),
        ),
        ("Privileged", boolean()),
        (
            "DetachKeys",
            pick(vec!["ctrl-p,ctrl-q", "", "bogus", "ctrl-"]),
        ),
        (
            "ConsoleSize",
            vec(number(), 0..3).prop_map(Value::from).boxed(),
        ),
        ("Detach", boolean()),
    ]);
    let cmd = object_with(
        vec![(
            "Cmd",
            prop_oneof![
                6 => Just(json!(["sh", "-c", "true"])),
                3 => strings_of(vec!["sh", "-c", "true", ""]),
                1 => pick(vec!["sh"]),
            ]
            .boxed(),
        )],
        0.95,
    );
    let refused = object_with(vec![("Container", pick(vec!["x"]))], 0.03);
    merge(merge(optional, cmd), refused)
}

#[derive(Debug, Clone)]
struct CreateCase {
    body: Value,
    name: Option<&'static str>,
    platform: Option<&'static str>,
}

fn create_case() -> impl Strategy<Value = CreateCase> {
    (
        create_body(),
        proptest::option::weighted(
            0.4,
            select(vec![
                "fuzz-1",
                "/fuzz-2",
                "",
                "bad name!",
                "a",
                "x/y",
                "\u{fc}",
            ]),
        ),
        proptest::option::weighted(0.2, select(vec!["host", "linux/arm64", "linux/amd64/v9"])),
    )
        .prop_map(|(body, name, platform)| CreateCase {
            body,
            name,
            platform,
        })
}

/// The engine all cases use: a temp data root with the image fuzz:latest, and a container
/// marked running for exec.
struct Setup {
    _dir: tempfile::TempDir,
    engine: Engine,
    running: String,
}

fn setup() -> Result<Setup, TestCaseError> {
    let dir = tempfile::tempdir_in(berth_fuzz::scratch_root()).map_err(fail)?;
    let mut engine =
        Engine::open(&dir.path().join("data"), &dir.path().join("exec"), None).map_err(fail)?;
    engine.default_seccomp = Some(berth_engine::containers::seccomp::builtin_profile());
    let tag = Reference::parse("fuzz:latest").map_err(fail)?;
    let platform = Platform::host();
    berth_image::archive::import(
        &engine.images,
        berth_fuzz::tar::image_rootfs().as_slice(),
        |diff_id| {
            serde_json::from_value(json!({
                "architecture": platform.architecture, "os": "linux",
                "config": {"Env": ["PATH=/bin", "HOME=/"], "Cmd": ["sh"], "WorkingDir": "/",
                           "Labels": {"from": "image"}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            }))
            .unwrap_or_default()
        },
        &[tag],
    )
    .map_err(fail)?;
    let record = engine
        .create_container(
            &decoded(&json!({"Image": "fuzz:latest", "Cmd": ["sh"], "HostConfig": {"NetworkMode": "none"}}))
                .map_err(fail)?,
            Some("running"),
            None,
        )
        .map_err(fail)?;
    // What start would do, without a shim: the bundle's config and the state.
    let bundle = engine.containers.bundle(&record.id);
    std::fs::create_dir_all(&bundle).map_err(fail)?;
    let process = json!({"process": {
        "args": ["sh"], "cwd": "/", "env": ["PATH=/bin", "HOME=/"], "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]},
        "noNewPrivileges": false,
    }});
    std::fs::write(bundle.join("config.json"), process.to_string()).map_err(fail)?;
    let etc = engine.containers.dir(&record.id).join("rootfs/etc");
    std::fs::create_dir_all(&etc).map_err(fail)?;
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0::/root:/bin/sh\nfuzz:x:1000:1000::/home:/bin/sh\n",
    )
    .map_err(fail)?;
    std::fs::write(etc.join("group"), "root:x:0:\nfuzz:x:1000:\n").map_err(fail)?;
    engine
        .containers
        .update(&record.id, |r| r.state.status = Status::Running)
        .map_err(fail)?;
    Ok(Setup {
        _dir: dir,
        engine,
        running: record.id,
    })
}

static SETUP: std::sync::Mutex<Option<Setup>> = std::sync::Mutex::new(None);

/// Run `f` on the shared engine; a failing case drops it, so shrinking starts clean.
fn with_setup(f: impl FnOnce(&Setup) -> Result<(), TestCaseError>) -> Result<(), TestCaseError> {
    let taken = SETUP.lock().unwrap_or_else(|e| e.into_inner()).take();
    let s = match taken {
        Some(s) => s,
        None => setup()?,
    };
    f(&s)?;
    *SETUP.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    Ok(())
}

/// The volumes on disk (not the staging directories of the store, `_creating` and
/// `_removing`).
fn volumes(engine: &berth_engine::Engine) -> BTreeSet<String> {
    let mut names = listing(&engine.data_root.join("volumes"));
    names.retain(|n| !n.starts_with('_'));
    names
}

fn listing(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The parts of a record the runtime will parse at start.
fn runtime_parses(r: &ContainerRecord) -> Result<(), TestCaseError> {
    fn parse<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> Result<T, TestCaseError> {
        serde_json::from_value(v.clone()).map_err(|e| {
            fail(format!(
                "the container holds a {what} the runtime cannot parse ({e}): {v}"
            ))
        })
    }
    // A profile the user gave goes through as written, as Docker's does (its runtime
    // refuses a bad one at start); the default profile's conversion is berth's own.
    let own_profile = r
        .host_config
        .security_opt
        .iter()
        .any(|o| o.starts_with("seccomp"));
    if let Some(s) = r.seccomp.as_ref().filter(|_| !own_profile) {
        parse::<oci_spec::runtime::LinuxSeccomp>("seccomp filter", s)?;
    }
    if let Some(res) = &r.host.resources {
        parse::<oci_spec::runtime::LinuxResources>("resources section", res)?;
    }
    // A ulimit name goes through as written (RLIMIT_<NAME>), as dockerd's does: its
    // runtime refuses an unknown one at start. The numbers are berth's.
    for l in &r.host.rlimits {
        let mut known_type = l.clone();
        known_type["type"] = Value::from("RLIMIT_NOFILE");
        parse::<oci_spec::runtime::PosixRlimit>("rlimit", &known_type)?;
    }
    for m in &r.host.mounts {
        let mount: oci_spec::runtime::Mount = parse("mount", m)?;
        if !mount.destination().is_absolute() {
            return Err(fail(format!("mount destination is not absolute: {m}")));
        }
    }
    for c in &r.host.caps {
        parse::<oci_spec::runtime::Capability>("capability", &Value::from(c.as_str()))?;
    }
    Ok(())
}

/// Create makes a missing bind source on the host, as dockerd does for -v: a source other
/// than /tmp (which exists) becomes /tmp, so that no case writes outside its directory.
fn confine_binds(body: &mut Value) {
    let Some(binds) = body
        .pointer_mut("/HostConfig/Binds")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for bind in binds.iter_mut() {
        if let Some((source, rest)) = bind.as_str().and_then(|b| b.split_once(':')) {
            if source.starts_with('/') && source != "/tmp" {
                *bind = Value::from(format!("/tmp:{rest}"));
            }
        }
    }
}

fn create(mut c: CreateCase) -> Result<(), TestCaseError> {
    confine_binds(&mut c.body);
    with_setup(|s| {
        let engine = &s.engine;
        let root = engine.data_root.join("containers");
        let before = listing(&root);
        let volumes_before = volumes(engine);
        let count = engine.containers.list().len();
        let platform = match c.platform {
            Some("host") => Some(Platform::host()),
            Some(p) => Some(Platform::parse(p).map_err(fail)?),
            None => None,
        };
        let result = decoded(&c.body)
            .and_then(|req| engine.create_container(&req, c.name, platform.as_ref()));
        let Ok(record) = result else {
            if engine.containers.list().len() != count || listing(&root) != before {
                return Err(fail("a refused create left a container behind"));
            }
            if volumes(engine) != volumes_before {
                return Err(fail("a refused create left a volume behind"));
            }
            return Ok(());
        };
        CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resolved = engine.containers.resolve(&record.id).map_err(fail)?;
        if resolved != record {
            return Err(fail("the container resolves to another record"));
        }
        if let Some(name) = c.name.filter(|n| !n.is_empty()) {
            let by_name = engine
                .containers
                .resolve(name)
                .map_err(|e| fail(format!("by name {name:?}: {e}")))?;
            if by_name.id != record.id {
                return Err(fail(format!("name {name:?} resolves to another container")));
            }
        }
        let stored = std::fs::read(engine.containers.dir(&record.id).join("config.v2.json"))
            .map_err(fail)?;
        let stored: ContainerRecord = serde_json::from_slice(&stored)
            .map_err(|e| fail(format!("the stored record does not load: {e}")))?;
        if stored != record {
            return Err(fail(format!("stored {stored:?}\nin memory {record:?}")));
        }
        runtime_parses(&record)?;
        engine
            .remove_container(&record.id, false)
            .map_err(|e| fail(format!("remove: {e}")))?;
        if engine.containers.resolve(&record.id).is_ok() || listing(&root) != before {
            return Err(fail("a removed container left something behind"));
        }
        Ok(())
    })
}

/// A create body decoded as berthd's API decodes it before the engine sees it.
fn decoded(body: &Value) -> Result<berth_api_types::container::Config, berth_engine::Error> {
    Ok(berth_api_types::container::decode::create_request(body)?)
}

fn exec(body: Value) -> Result<(), TestCaseError> {
    with_setup(|s| {
        let engine = &s.engine;
        let decoded = berth_api_types::exec::ExecConfig::decode(&body);
        let Ok(id) = decoded
            .map_err(berth_engine::Error::from)
            .and_then(|b| engine.create_exec(&s.running, b))
        else {
            return Ok(());
        };
        EXECS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let exec = engine.execs.get(&id).map_err(fail)?;
        engine.execs.forget_container(&s.running);
        let process: oci_spec::runtime::Process = serde_json::from_value(exec.process.clone())
            .map_err(|e| {
                fail(format!(
                    "the exec's process does not parse ({e}): {}",
                    exec.process
                ))
            })?;
        let cmd = berth_engine::containers::string_list(&body["Cmd"]).unwrap_or_default();
        if process.args().as_deref() != Some(cmd.as_slice()) || cmd.is_empty() {
            return Err(fail(format!(
                "the exec runs {:?}, asked {cmd:?}",
                process.args()
            )));
        }
        if !process.cwd().is_absolute() {
            return Err(fail(format!(
                "the exec's cwd {:?} is not absolute",
                process.cwd()
            )));
        }
        let caps = process
            .capabilities()
            .as_ref()
            .and_then(|c| c.bounding().clone())
            .unwrap_or_default();
        let privileged = body["Privileged"].as_bool() == Some(true);
        if privileged != (caps.len() > 1) {
            return Err(fail(format!(
                "privileged {privileged}, bounding set {caps:?}"
            )));
        }
        Ok(())
    })
}

static CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static EXECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// One test: the two share the engine (a lock), and run one after the other.
/// Removes the shared directory when the test ends, passed or failed (a static is never
/// dropped).
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        drop(SETUP.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

#[test]
fn engine_create_and_exec_bodies() {
    let _teardown = Teardown;
    berth_fuzz::check("create", 1500, create_case(), create);
    berth_fuzz::check("exec", 2000, exec_body(), exec);
    eprintln!(
        "fuzz engine: {} containers created, {} execs created",
        CREATED.load(std::sync::atomic::Ordering::Relaxed),
        EXECS.load(std::sync::atomic::Ordering::Relaxed),
    );
}

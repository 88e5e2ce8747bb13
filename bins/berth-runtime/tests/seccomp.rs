//! linux.seccomp: actions, errno values, argument filters, the load point with and without
//! no_new_privs, exec, and refusals that name what is wrong.

mod common;

use common::*;
use serde_json::{json, Value};

fn profile(default: &str, rules: Value) -> Value {
    json!({"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": rules})
}

#[test]
fn denied_syscalls_fail_with_the_configured_errno() {
    let mut world = World::new(
        "mkdir /tmp/d 2>&1 || true; rmdir /tmp 2>&1 || true; grep Seccomp: /proc/self/status",
    );
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]),
        );
    });
    let out = world.run("sc1");
    out.ok();
    assert!(
        out.stdout.contains("Operation not permitted"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Function not implemented"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Seccomp:\t2"), "{}", out.stdout);
}

#[test]
fn argument_filters_and_kill_process() {
    // Only `kill` with signal 10 (SIGUSR1) is refused; the same call with 0 passes.
    let mut world =
        World::new("kill -0 $$ && echo probe-ok; kill -USR1 $$ 2>&1; echo after; exec sleep 0");
    world.edit(|c| {
        c["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}]),
        );
    });
    let out = world.run("sc2");
    out.ok();
    assert!(
        out.stdout.starts_with("probe-ok\n")
            && out.stdout.contains("Operation not permitted\nafter"),
        "{}",
        out.stdout
    );
    let mut world = World::new("exec mkdir /tmp/x");
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]),
        );
    });
    let out = world.run("sc3");
    assert_eq!(out.code, 128 + 31, "killed by SIGSYS expected: {out:?}");
}

#[test]
fn without_no_new_privs_the_filter_loads_before_privileges_drop() {
    let mut world = World::new(
        "id -u; grep -E 'Seccomp:|NoNewPrivs:' /proc/self/status; mkdir /tmp/x 2>&1 || true",
    );
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]),
        );
    });
    let out = world.run("sc4");
    out.ok();
    assert!(out.stdout.starts_with("1000\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("NoNewPrivs:\t0") && out.stdout.contains("Seccomp:\t2"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Operation not permitted"),
        "{}",
        out.stdout
    );
}

#[test]
fn exec_gets_the_containers_filter() {
    let mut world = World::new("sleep 30");
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]),
        );
    });
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, "sc5"]).ok();
    let pid = world.state("sc5")["pid"].as_i64().expect("pid") as i32;
    let out = world.cmd(&[
        "exec",
        "sc5",
        "sh",
        "-c",
        "mkdir /tmp/y 2>&1; grep Seccomp: /proc/self/status",
    ]);
    assert!(
        out.stdout.contains("Operation not permitted") && out.stdout.contains("Seccomp:\t2"),
        "{out:?}"
    );
    world.cmd(&["delete", "--force", "sc5"]).ok();
    reap(pid);
}

#[test]
fn bad_profiles_are_refused_by_name() {
    for (seccomp, needle) in [
        (
            profile(
                "SCMP_ACT_ALLOW",
                json!([{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]),
            ),
            "no_such_syscall",
        ),
        (
            profile(
                "SCMP_ACT_ALLOW",
                json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]),
            ),
            "SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/x.sock"}),
            "defaultAction SCMP_ACT_NOTIFY",
        ),
        (
            profile(
                "SCMP_ACT_ALLOW",
                json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
            ),
            "index",
        ),
    ] {
        let mut world = World::new("true");
        world.edit(|c| c["linux"]["seccomp"] = seccomp);
        let bundle = world.bundle().to_str().expect("utf8");
        let out = world.cmd(&["create", "--bundle", bundle, "bad"]);
        out.failed();
        assert!(
            out.stderr.contains(needle),
            "expected {needle:?} in {}",
            out.stderr
        );
        world.assert_no_state();
    }
    // An unknown name in an allowing rule of a deny-by-default profile cannot weaken it: skipped.
    let mut world = World::new("echo loaded");
    let mut allow: Vec<&str> = vec!["no_such_syscall"];
    allow.extend([
        "execve",
        "brk",
        "mmap",
        "munmap",
        "mprotect",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "getrandom",
        "write",
        "exit_group",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "fcntl",
        "close",
        "read",
        "newfstatat",
        "fstat",
        "stat",
        "uname",
        "getcwd",
        "wait4",
        "clone",
        "exit",
        "sigaltstack",
        "dup2",
    ]);
    world.edit(|c| {
        c["linux"]["seccomp"] = profile(
            "SCMP_ACT_ERRNO",
            json!([{"names": allow, "action": "SCMP_ACT_ALLOW"}]),
        )
    });
    // The filter loads last before exec (no_new_privs is set by the default config).
    let out = world.run("ok");
    assert_eq!(out.stdout, "loaded\n", "{out:?}");
}

#[test]
fn compiled_programs_are_cached_and_a_damaged_cache_is_recompiled() {
    let mut world = World::new("mkdir /tmp/d 2>&1 || true");
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]),
        );
    });
    let cache = world.root().join("@cache/seccomp");
    let cached = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let denied = |id: &str| {
        let out = world.run(id);
        out.ok();
        assert!(
            out.stdout.contains("Operation not permitted"),
            "{}",
            out.stdout
        );
    };
    denied("cache1");
    let files = cached();
    assert_eq!(files.len(), 1, "one program cached: {files:?}");
    let program = std::fs::read(&files[0]).expect("read cache");
    denied("cache2");
    assert_eq!(cached(), files, "the same profile reuses its program");

    // A program that allows everything, as a damaged or planted file might be: refused by
    // its checksum, recompiled, and the container is still filtered.
    let allow_all = [6u8, 0, 0, 0, 0, 0, 0xff, 0x7f];
    std::fs::write(&files[0], allow_all).expect("damage cache");
    denied("cache3");
    assert_eq!(std::fs::read(&files[0]).expect("reread"), program);
    assert!(world
        .cmd(&["list", "-q"])
        .stdout
        .lines()
        .all(|l| !l.contains('@')));
}

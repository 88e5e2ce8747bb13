//! The container's process: user, groups, umask, cwd, env, rlimits, capabilities,
//! no_new_privs, OOM score, descriptors.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

#[test]
fn user_groups_umask_cwd_and_env() {
    let mut world = World::new("id; umask; pwd; echo $HOME $GREETING; touch f && stat -c %a f");
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 65534], "umask": 0o027});
        c["process"]["cwd"] = json!("/work/dir");
        c["process"]["env"] = json!(["PATH=/bin", "GREETING=hello"]);
    });
    std::fs::create_dir_all(world.rootfs().join("work/dir")).expect("mkdir");
    std::process::Command::new("chown")
        .args(["1000:1001"])
        .arg(world.rootfs().join("work/dir"))
        .status()
        .expect("chown");
    let out = world.run("p1");
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0], "uid=1000 gid=1001 groups=5(tty),65534(nogroup)",
        "{}",
        out.stdout
    );
    assert_eq!(
        lines[1..],
        ["0027", "/work/dir", "/ hello", "640"],
        "{}",
        out.stdout
    );
}

#[test]
fn missing_cwd_is_created_and_home_comes_from_passwd() {
    let mut world = World::new("pwd; echo $HOME");
    world.edit(|c| c["process"]["cwd"] = json!("/new/cwd"));
    let out = world.run("p2");
    out.ok();
    assert_eq!(out.stdout, "/new/cwd\n/root\n");
}

#[test]
fn rlimits_oom_score_and_no_new_privs() {
    let mut world = World::new(
        "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status",
    );
    world.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 900}]);
        c["process"]["oomScoreAdj"] = json!(300);
        c["process"]["noNewPrivileges"] = json!(true);
    });
    let out = world.run("p3");
    out.ok();
    assert_eq!(out.stdout, "512\n900\n300\nNoNewPrivs:\t1\n");
}

fn cap_mask(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} missing"));
    u64::from_str_radix(line.split_whitespace().nth(1).expect("value"), 16).expect("hex")
}

#[test]
fn all_five_capability_sets() {
    let mut world = World::new("grep Cap /proc/self/status");
    world.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        });
    });
    let out = world.run("caps");
    out.ok();
    let kill = 1u64 << 5;
    let bind = 1u64 << 10;
    let setuid = 1u64 << 7;
    // A non-root program: only the ambient set survives its exec, into P and E.
    assert_eq!(cap_mask(&out.stdout, "CapBnd"), kill | bind | setuid);
    assert_eq!(cap_mask(&out.stdout, "CapInh"), bind);
    assert_eq!(cap_mask(&out.stdout, "CapAmb"), bind);
    assert_eq!(cap_mask(&out.stdout, "CapPrm"), bind);
    assert_eq!(cap_mask(&out.stdout, "CapEff"), bind);
    let runc_root = world.dir.path().join("runc-state");
    let bundle = world.bundle().to_str().expect("utf8");
    let theirs = world.cmd_with("runc", &runc_root, &["run", "--bundle", bundle, "caps"]);
    assert_eq!(out.stdout, theirs.stdout, "differs from runc");
}

#[test]
fn capabilities_match_runc() {
    let world = World::new("grep Cap /proc/self/status");
    let ours = world.run("c1");
    let runc_root = world.dir.path().join("runc-state");
    let bundle = world.bundle().to_str().expect("utf8");
    let theirs = world.cmd_with("runc", &runc_root, &["run", "--bundle", bundle, "c1"]);
    assert_eq!(ours.stdout, theirs.stdout);
}

#[test]
fn preserve_fds_and_listen_fds() {
    let world = World::new("echo via-fd3 >&3; echo via-fd4 >&4; echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let file3 = tempfile::tempfile().expect("tmp");
    let file4 = tempfile::tempfile().expect("tmp");
    let out_path = world.dir.path().join("out");
    let bundle = world.bundle().to_str().expect("utf8");
    let (f3, f4) = (file3.as_raw_fd(), file4.as_raw_fd());
    let mut cmd = Command::new(BIN);
    cmd.arg("--root").arg(world.root()).args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        bundle,
        "fds",
    ]);
    cmd.env("LISTEN_FDS", "1")
        .stdout(std::fs::File::create(&out_path).expect("out"))
        .stdin(Stdio::null());
    // SAFETY: between fork and exec the closure only calls dup2, which is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // Move both out of the way first: dup2(3, 3) would keep close-on-exec.
            let h3 = libc::fcntl(f3, libc::F_DUPFD_CLOEXEC, 100);
            let h4 = libc::fcntl(f4, libc::F_DUPFD_CLOEXEC, 100);
            if h3 < 0 || h4 < 0 || libc::dup2(h3, 3) < 0 || libc::dup2(h4, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert!(cmd.status().expect("run").success());
    let read = |f: &std::fs::File| {
        use std::io::{Read, Seek};
        let mut f = f.try_clone().expect("clone");
        f.rewind().expect("rewind");
        let mut s = String::new();
        f.read_to_string(&mut s).expect("read");
        s
    };
    assert_eq!(read(&file3), "via-fd3\n");
    assert_eq!(read(&file4), "via-fd4\n");
    let out = std::fs::read_to_string(out_path).expect("out");
    assert!(out.starts_with("1 1\n"), "{out}");
    // 0-4 are ours; ls adds one for the directory it reads. Nothing else leaks in.
    assert_eq!(
        out.lines().nth(1).map(str::trim),
        Some("0 1 2 3 4 5"),
        "{out}"
    );
}

#[test]
fn only_stdio_reaches_the_container() {
    let world = World::new("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let out = world.run("fd0");
    out.ok();
    assert_eq!(out.stdout.trim(), "0 1 2 3", "{}", out.stdout);
}

#[test]
fn a_dropped_capability_is_missing_and_its_operation_fails() {
    let mut world = World::new(
        "grep CapEff /proc/self/status; touch /tmp/f; chown 1 /tmp/f 2>&1 && echo chown-ok; \
         kill -0 1 && echo kill-ok",
    );
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        // root, with every default capability but CAP_CHOWN.
        for set in ["bounding", "effective", "permitted"] {
            let list = c["process"]["capabilities"][set].as_array_mut().expect(set);
            list.retain(|cap| cap != "CAP_CHOWN");
        }
    });
    let out = world.run("nochown");
    out.ok();
    assert_eq!(cap_mask(&out.stdout, "CapEff") & 1, 0, "{}", out.stdout);
    assert!(
        out.stdout.contains("Operation not permitted") && !out.stdout.contains("chown-ok"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("kill-ok"), "{}", out.stdout);
}

/// A static program that prints its effective uid, installed setuid-root in the rootfs.
fn install_euid_probe(world: &World) {
    let src = world.dir.path().join("euid.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf(\"euid=%d\\n\", (int)geteuid()); return 0; }\n",
    )
    .expect("source");
    let bin = world.rootfs().join("bin/euid");
    let built = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("cc (build-essential)");
    assert!(built.success(), "cc failed");
    std::os::unix::fs::chown(&bin, Some(0), Some(0)).expect("chown");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o4755)).expect("chmod");
}

#[test]
fn no_new_privileges_blocks_a_setuid_gain() {
    let mut world = World::new("exec /bin/euid");
    install_euid_probe(&world);
    world.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["noNewPrivileges"] = json!(false);
    });
    let out = world.run("suid");
    out.ok();
    assert_eq!(
        out.stdout, "euid=0\n",
        "without NNP the setuid bit works (control)"
    );
    world.edit(|c| c["process"]["noNewPrivileges"] = json!(true));
    let out = world.run("nnp");
    out.ok();
    assert_eq!(out.stdout, "euid=1000\n", "NNP must block the setuid gain");
}

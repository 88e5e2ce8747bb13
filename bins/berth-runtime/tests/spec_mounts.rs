//! runtime-spec 1.2 beyond runc 1.1 (issue 19): seccomp notify with a listener, the
//! `tmpcopyup` mount option, idmapped mounts; the clear refusals of `--systemd-cgroup` and
//! of checkpoint/restore; and what `features` says about them. Compared with runc 1.1.5 and
//! crun 1.8.1 where they support the field.

mod common;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// seccomp notify

/// What a seccomp agent saw: the container process state, and the paths of the mkdir calls
/// it answered.
struct AgentReport {
    state: Value,
    answered: Vec<String>,
}

/// A seccomp agent on a unix socket: it takes the listener that comes with the container
/// process state, then answers mkdir notifications until the filter has no process left:
/// a path ending in "fake" succeeds without anything being made, any other fails with EXDEV.
fn start_agent(path: &Path) -> JoinHandle<Option<AgentReport>> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind agent socket");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let conn = loop {
            match listener.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => return None,
            }
        };
        conn.set_nonblocking(false).expect("blocking");
        let (state, listener_fd) = receive_state(conn.as_raw_fd());
        let mut answered = Vec::new();
        while let Some(path) = answer_one(&listener_fd) {
            answered.push(path);
        }
        Some(AgentReport { state, answered })
    })
}

/// The container process state and the listener sent with it.
fn receive_state(conn: RawFd) -> (Value, OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(conn, &mut iov, Some(&mut space), MsgFlags::empty()).expect("recvmsg");
    let mut fd = None;
    for cmsg in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel installed these descriptors for us.
            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
        }
    }
    let n = msg.bytes;
    let state = serde_json::from_slice(&buf[..n]).expect("state json");
    (state, fd.expect("the listener came with the state"))
}

/// Answer one notification; None once no process uses the filter any more.
fn answer_one(listener: &OwnedFd) -> Option<String> {
    // SAFETY: plain C structs the kernel fills in; zero is a valid value for every field.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one seccomp_notif into `req`.
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req,
        )
    };
    if rc != 0 {
        return None;
    }
    let address = match req.data.nr as libc::c_long {
        libc::SYS_mkdir => req.data.args[0],
        _ => req.data.args[1],
    };
    let path = read_string(req.pid, address);
    // SAFETY: as above.
    let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
    resp.id = req.id;
    if !path.ends_with("fake") {
        resp.error = -libc::EXDEV;
    }
    // SAFETY: the ioctl reads one seccomp_notif_resp.
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp,
        )
    };
    assert!(rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT));
    Some(path)
}

/// A NUL-terminated string in the memory of process `pid`.
fn read_string(pid: u32, address: u64) -> String {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open mem");
    let mut buf = [0u8; 256];
    let n = mem.read_at(&mut buf, address).unwrap_or(0);
    let end = buf[..n].iter().position(|b| *b == 0).unwrap_or(n);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn notify_profile(agent: &Path) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent,
        "listenerMetadata": "berth-test",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

const MKDIR_SCRIPT: &str =
    "mkdir /tmp/fake && echo made; ls -d /tmp/fake 2>/dev/null || echo absent; \
     mkdir /tmp/other 2>&1; echo status=$?";

fn notify_world(nnp: bool) -> (World, PathBuf) {
    let mut world = World::new(MKDIR_SCRIPT);
    let agent = world.bundle().join("agent.sock");
    world.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["noNewPrivileges"] = json!(nnp);
        c["annotations"] = json!({"org.example.key": "value"});
        c["linux"]["seccomp"] = notify_profile(&agent);
    });
    (world, agent)
}

fn assert_agent_answered(out: &Outcome, report: &AgentReport) {
    assert!(
        out.stdout.starts_with("made\nabsent\n")
            && out.stdout.contains("Invalid cross-device link")
            && out.stdout.contains("status=1"),
        "{out:?}"
    );
    assert_eq!(report.answered, ["/tmp/fake", "/tmp/other"], "{out:?}");
}

#[test]
fn seccomp_notify_hands_the_listener_to_the_agent_like_runc_and_crun() {
    for nnp in [true, false] {
        let (world, agent) = notify_world(nnp);
        let id = format!("spm-notify-{nnp}");
        let handle = start_agent(&agent);
        let out = world.run(&id);
        out.ok();
        let report = handle
            .join()
            .expect("agent")
            .expect("the agent got the listener");
        assert_agent_answered(&out, &report);
        let s = &report.state;
        assert_eq!(s["ociVersion"], "1.2.0", "{s}");
        assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
        assert_eq!(s["metadata"], "berth-test", "{s}");
        assert_eq!(s["state"]["id"], id.as_str(), "{s}");
        // runtime-spec: the state while the container is being created, with init's pid.
        assert_eq!(s["state"]["status"], "creating", "{s}");
        assert!(s["pid"].as_i64().is_some_and(|p| p > 0) && s["pid"] == s["state"]["pid"]);
        assert_eq!(s["state"]["bundle"], json!(world.bundle()), "{s}");
        assert_eq!(s["state"]["annotations"]["org.example.key"], "value", "{s}");
        world.assert_no_state();
    }
    // The same bundle and agent under runc and crun: the same answers, the same state.
    let (world, agent) = notify_world(true);
    let handle = start_agent(&agent);
    let runc = world.cmd_with(
        "runc",
        &world.dir.path().join("runc"),
        &["run", "spm-notify-runc"],
    );
    let report = handle
        .join()
        .expect("agent")
        .expect("runc sent the listener");
    assert_agent_answered(&runc, &report);
    assert_eq!(report.state["state"]["status"], "creating");
    assert_eq!(report.state["metadata"], "berth-test");
    if installed("crun") {
        let handle = start_agent(&agent);
        let crun = world.crun(&world.dir.path().join("crun"), &["run", "spm-notify-crun"]);
        let report = handle
            .join()
            .expect("agent")
            .expect("crun sent the listener");
        assert_agent_answered(&crun, &report);
        assert_eq!(report.state["state"]["status"], "creating");
    }
}

#[test]
fn seccomp_notify_covers_exec_like_runc() {
    for (runtime, root_name) in [(BIN, "state"), ("runc", "runc")] {
        let mut world = World::new("exec sleep 60");
        let agent = world.bundle().join("agent.sock");
        world.edit(|c| {
            c["root"]["readonly"] = json!(false);
            c["linux"]["seccomp"] = notify_profile(&agent);
        });
        let root = world.dir.path().join(root_name);
        let bundle = world.bundle().to_str().expect("utf8").to_string();
        let init_agent = start_agent(&agent);
        world
            .cmd_with(runtime, &root, &["create", "--bundle", &bundle, "spm-exec"])
            .ok();
        let state = world.cmd_with(runtime, &root, &["state", "spm-exec"]);
        let init = serde_json::from_str::<Value>(&state.ok().stdout).expect("state")["pid"]
            .as_i64()
            .expect("pid");
        // The exec'd process's listener goes to the same path: a second agent takes it
        // (the first one keeps answering init's filter until the container ends).
        let exec_agent = start_agent(&agent);
        let out = world.cmd_with(
            runtime,
            &root,
            &["exec", "spm-exec", "sh", "-c", MKDIR_SCRIPT],
        );
        world
            .cmd_with(runtime, &root, &["delete", "--force", "spm-exec"])
            .ok();
        reap_if_exited(init as i32);
        out.ok();
        let report = exec_agent
            .join()
            .expect("agent")
            .expect("exec sent the listener");
        assert_agent_answered(&out, &report);
        let s = &report.state;
        // runc's: the container is running, `pid` is the exec'd process, state.pid is init.
        assert_eq!(s["state"]["status"], "running", "{runtime}: {s}");
        assert_eq!(s["state"]["pid"], json!(init), "{runtime}: {s}");
        assert!(
            s["pid"].as_i64().is_some_and(|p| p != init),
            "{runtime}: {s}"
        );
        let init_report = init_agent.join().expect("agent").expect("init's listener");
        assert_eq!(
            init_report.state["state"]["status"], "creating",
            "{runtime}"
        );
        assert!(init_report.answered.is_empty(), "{runtime}");
    }
}

#[test]
fn seccomp_notify_refusals_name_the_field() {
    let world = World::new("true");
    let missing = world.bundle().join("no-agent.sock");
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".to_string(),
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock",
                "syscalls": [{"names": ["sendmsg", "mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "syscalls[0]: SCMP_ACT_NOTIFY on \\\"sendmsg\\\"".to_string(),
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/x.sock"}),
            "defaultAction SCMP_ACT_NOTIFY".to_string(),
        ),
        (
            notify_profile(&missing),
            format!(
                "linux.seccomp.listenerPath \\\"{}\\\": connect to the seccomp agent",
                missing.display()
            ),
        ),
    ];
    for (profile, needle) in cases {
        let mut world = World::new("true");
        world.edit(|c| c["linux"]["seccomp"] = profile.clone());
        let bundle = world.bundle().to_str().expect("utf8");
        let out = world.cmd(&["create", "--bundle", bundle, "spm-bad-notify"]);
        out.failed();
        assert!(
            out.stderr.contains(&needle),
            "{needle:?} not in {}",
            out.stderr
        );
        world.assert_no_state();
        // runc refuses each of these too (its messages differ).
        let runc_root = world.dir.path().join("runc");
        let theirs = world.cmd_with(
            "runc",
            &runc_root,
            &["create", "--bundle", bundle, "spm-bad-notify"],
        );
        if theirs.code == 0 {
            let _ = world.cmd_with("runc", &runc_root, &["delete", "--force", "spm-bad-notify"]);
            // runc 1.1 has no sendmsg rule of its own (it refuses notify on write instead).
            assert!(needle.contains("sendmsg"), "runc accepted {profile}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// tmpcopyup

/// A directory of the image with one entry of each kind, owners and modes of their own.
fn fill_data_dir(rootfs: &Path) {
    let data = rootfs.join("data");
    let script = format!(
        "set -e; d={d}; mkdir -p $d/sub/deep; echo hello > $d/file; chown 1000:1001 $d/file; \
         chmod 4755 $d/file; ln -s file $d/link; mkfifo $d/fifo; mknod $d/null c 1 3; \
         echo deep > $d/sub/deep/y; chown 7:8 $d/sub; chmod 751 $d/sub; echo h > $d/.hidden; \
         chown 5:6 $d; chmod 750 $d",
        d = data.display()
    );
    let status = Command::new("sh")
        .args(["-c", &script])
        .status()
        .expect("sh");
    assert!(status.success(), "fill {}", data.display());
}

const LIST_DATA: &str = "cd /data && for f in . * .hidden sub/deep sub/deep/y; do \
     stat -c '%n %a %u:%g %F' $f; done; readlink link; cat file sub/deep/y; \
     awk '$5 == \"/data\" { for (i = 7; $i != \"-\"; i++); print $5, $6, $(i+1), $(i+3) }' \
     /proc/self/mountinfo; (echo new > /data/new) 2>&1 && echo wrote || echo refused";

fn copyup_world(options: Value) -> World {
    let mut world = World::new(LIST_DATA);
    fill_data_dir(&world.rootfs());
    world.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": options}),
        );
    });
    world
}

#[test]
fn tmpcopyup_gives_the_tmpfs_a_copy_of_the_directory_like_crun() {
    let world = copyup_world(json!(["tmpcopyup", "nosuid", "mode=755"]));
    let out = world.run("spm-copyup");
    out.ok();
    for line in [
        ". 755 0:0 directory",
        "file 4755 1000:1001 regular file",
        "fifo 644 0:0 fifo",
        "link 777 0:0 symbolic link",
        "null 644 0:0 character special file",
        "sub 751 7:8 directory",
        ".hidden 644 0:0 regular file",
        "sub/deep/y 644 0:0 regular file",
        "hello\ndeep\n",
        "/data rw,nosuid,relatime tmpfs rw,mode=755",
        "wrote",
    ] {
        assert!(out.stdout.contains(line), "{line:?} not in\n{}", out.stdout);
    }
    // The copy is the tmpfs's own: the image's directory is unchanged.
    assert!(!world.rootfs().join("data/new").exists());
    if installed("crun") {
        let crun = world.crun(&world.dir.path().join("crun"), &["run", "spm-copyup-crun"]);
        crun.ok();
        assert_eq!(crun.stdout, out.stdout, "crun differs");
    }
}

#[test]
fn tmpcopyup_read_only_is_applied_after_the_copy() {
    let world = copyup_world(json!(["tmpcopyup", "ro"]));
    let out = world.run("spm-copyup-ro");
    out.ok();
    assert!(
        out.stdout.contains("file 4755 1000:1001 regular file"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("/data ro,relatime"), "{}", out.stdout);
    assert!(
        out.stdout.contains("Read-only file system\nrefused"),
        "{}",
        out.stdout
    );
    // runc 1.1 (which cannot copy fifos: it fails on this directory) and crun both make the
    // root of the tmpfs 1777 without a mode option; crun agrees with the whole listing.
    if installed("crun") {
        let crun = world.crun(
            &world.dir.path().join("crun"),
            &["run", "spm-copyup-ro-crun"],
        );
        crun.ok();
        assert_eq!(crun.stdout, out.stdout, "crun differs");
    }
}

#[test]
fn tmpcopyup_off_a_tmpfs_is_refused_by_name() {
    let mut world = World::new("true");
    let source = world.bundle().to_str().expect("utf8").to_string();
    world.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(
            json!({"destination": "/data", "type": "bind", "source": source, "options": ["bind", "tmpcopyup"]}),
        );
    });
    let bundle = world.bundle().to_str().expect("utf8");
    let out = world.cmd(&["create", "--bundle", bundle, "spm-copyup-bad"]);
    out.failed();
    assert!(
        out.stderr.contains(
            "(/data): option \\\"tmpcopyup\\\" is for tmpfs mounts, not type \\\"bind\\\""
        ),
        "{}",
        out.stderr
    );
    world.assert_no_state();
}

// ---------------------------------------------------------------------------------------
// idmapped mounts

/// A host directory with files of known owners: `a` 1000:1000, `b` 0:0.
fn idmap_source(world: &World) -> PathBuf {
    let src = world.dir.path().join("idmap-src");
    std::fs::create_dir(&src).expect("mkdir");
    for (name, owner) in [("a", 1000), ("b", 0)] {
        let path = src.join(name);
        std::fs::write(&path, name).expect("write");
        std::os::unix::fs::chown(&path, Some(owner), Some(owner)).expect("chown");
    }
    src
}

const STAT_DATA: &str =
    "stat -c '%n %u:%g' /data/*; grep ' /data ' /proc/self/mountinfo | cut -d' ' -f6";

#[test]
fn mount_id_maps_change_the_owners_seen_like_crun() {
    let mut world = World::new(STAT_DATA);
    let src = idmap_source(&world);
    world.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/data", "type": "bind", "source": src, "options": ["bind"],
            "uidMappings": [{"containerID": 1000, "hostID": 2000, "size": 1}],
            "gidMappings": [{"containerID": 1000, "hostID": 3000, "size": 1}]
        }));
    });
    let out = world.run("spm-idmap");
    out.ok();
    // Owned by 1000 on disk, 2000:3000 through the mount; 0 is not in the mapping.
    assert_eq!(
        out.stdout,
        "/data/a 2000:3000\n/data/b 65534:65534\nrw,relatime,idmapped\n"
    );
    // The files themselves are unchanged.
    let meta = std::fs::metadata(src.join("a")).expect("stat");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);
    if installed("crun") {
        let crun = world.crun(&world.dir.path().join("crun"), &["run", "spm-idmap-crun"]);
        crun.ok();
        assert_eq!(crun.stdout, out.stdout, "crun differs");
    }
    // runc 1.1.5 predates idmapped mounts: it ignores the maps and shows 1000:1000.
}

#[test]
fn idmap_option_takes_the_container_user_namespace_like_crun() {
    let mut world = World::new(&format!("{STAT_DATA}; touch /data/new; id -u"));
    world.map_users();
    let src = idmap_source(&world);
    world.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "idmap"]
        }));
    });
    let out = world.run("spm-idmap-userns");
    out.ok();
    // The container's root (host 100000) sees the files as on disk, and what it creates is
    // root's on disk: the mount maps back what the user namespace maps.
    assert_eq!(
        out.stdout,
        "/data/a 1000:1000\n/data/b 0:0\nrw,relatime,idmapped\n0\n"
    );
    let meta = std::fs::metadata(src.join("new")).expect("stat");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    std::fs::remove_file(src.join("new")).expect("rm");
    if installed("crun") {
        let crun = world.crun(
            &world.dir.path().join("crun"),
            &["run", "spm-idmap-userns-crun"],
        );
        crun.ok();
        assert_eq!(crun.stdout, out.stdout, "crun differs");
    }
}

/// A bind mount inside the source, unmounted when dropped (by path: it is ours).
struct HostMount(PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn ridmap_maps_the_mounts_below_idmap_only_the_top() {
    let mut world = World::new("stat -c '%n %u:%g' /top/a /top/sub/a /rtop/a /rtop/sub/a");
    let src = idmap_source(&world);
    let other = world.dir.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::create_dir(src.join("sub")).expect("mkdir");
    std::fs::write(other.join("a"), "a").expect("write");
    std::os::unix::fs::chown(other.join("a"), Some(1000), Some(1000)).expect("chown");
    nix::mount::mount(
        Some(&other),
        &src.join("sub"),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .expect("bind a mount inside the source");
    let _sub = HostMount(src.join("sub"));
    let maps = json!([{"containerID": 1000, "hostID": 2000, "size": 1}]);
    world.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        for (dest, option) in [("/top", "idmap"), ("/rtop", "ridmap")] {
            mounts.push(json!({
                "destination": dest, "type": "bind", "source": src, "options": ["rbind", option],
                "uidMappings": maps, "gidMappings": maps
            }));
        }
    });
    let out = world.run("spm-ridmap");
    out.ok();
    assert_eq!(
        out.stdout,
        "/top/a 2000:2000\n/top/sub/a 1000:1000\n/rtop/a 2000:2000\n/rtop/sub/a 2000:2000\n"
    );
}

#[test]
fn idmap_refusals_name_the_field_and_value() {
    let world = World::new("true");
    let src = idmap_source(&world);
    let one = json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
    let cases = [
        (
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "uidMappings": one, "gidMappings": one}),
            "mounts[N] (/data): an idmapped mount must be a bind mount, not type \\\"tmpfs\\\"",
        ),
        (
            json!({"destination": "/data", "type": "bind", "source": src, "options": ["bind"], "uidMappings": one}),
            "mounts[N] (/data): an idmapped mount needs both uidMappings and gidMappings",
        ),
        (
            json!({"destination": "/data", "type": "bind", "source": src, "options": ["bind", "ridmap"]}),
            "mounts[N] (/data): option \\\"ridmap\\\" without uidMappings and gidMappings",
        ),
        (
            json!({"destination": "/data", "type": "bind", "source": src, "options": ["bind"],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 0}], "gidMappings": one}),
            "mounts[N].uidMappings[0] (containerID 0, hostID 100000, size 0): size must be above 0",
        ),
        (
            json!({"destination": "/data", "type": "bind", "source": src, "options": ["bind"],
                "uidMappings": one, "gidMappings": [{"containerID": 4294967295u32, "hostID": 0, "size": 2}]}),
            "mounts[N].gidMappings[0] (containerID 4294967295, hostID 0, size 2): the range goes past",
        ),
    ];
    for (mount, needle) in cases {
        let mut world = World::new("true");
        let index = world.config["mounts"].as_array().expect("mounts").len();
        world.edit(|c| {
            c["mounts"]
                .as_array_mut()
                .expect("mounts")
                .push(mount.clone())
        });
        let needle = needle.replace("[N]", &format!("[{index}]"));
        let bundle = world.bundle().to_str().expect("utf8");
        let out = world.cmd(&["create", "--bundle", bundle, "spm-bad-idmap"]);
        out.failed();
        assert!(
            out.stderr.contains(&needle),
            "{needle:?} not in {}",
            out.stderr
        );
        world.assert_no_state();
    }
}

// ---------------------------------------------------------------------------------------
// --systemd-cgroup, checkpoint/restore, features

#[test]
fn systemd_cgroup_is_refused_at_create_with_the_reason() {
    let world = World::new("true");
    let bundle = world.bundle().to_str().expect("utf8");
    for verb in ["create", "run"] {
        let out = world.cmd(&["--systemd-cgroup", verb, "--bundle", bundle, "spm-systemd"]);
        out.failed();
        let expected = if Path::new("/run/systemd/system").is_dir() {
            "--systemd-cgroup is not supported yet: systemd runs here"
        } else {
            "--systemd-cgroup: systemd is not running on this host (PID 1 is"
        };
        assert!(out.stderr.contains(expected), "{}", out.stderr);
        world.assert_no_state();
    }
    // As with runc, commands on existing containers take the flag (it changes nothing).
    world.cmd(&["--systemd-cgroup", "list"]).ok();
    if !Path::new("/run/systemd/system").is_dir() {
        let theirs = world.cmd_with(
            "runc",
            &world.dir.path().join("runc"),
            &["--systemd-cgroup", "run", "--bundle", bundle, "spm-systemd"],
        );
        assert_ne!(
            theirs.code, 0,
            "runc ran a systemd-managed container without systemd"
        );
    }
}

#[test]
fn checkpoint_and_restore_are_refused_with_what_is_missing() {
    let world = World::new("sleep 60");
    let run = |path: &std::ffi::OsStr, args: &[&str]| {
        let mut command = Command::new(BIN);
        command
            .env("PATH", path)
            .arg("--root")
            .arg(world.root())
            .args(args);
        world.run_command(command)
    };
    // No CRIU at all.
    for verb in ["checkpoint", "restore"] {
        let out = run(
            "/nonexistent".as_ref(),
            &[verb, "--image-path", "/tmp/none", "spm-cr"],
        );
        out.failed();
        assert!(
            out.stderr.contains(&format!(
                "{verb} is not supported: it needs CRIU, and criu is not installed"
            )),
            "{}",
            out.stderr
        );
    }
    // A CRIU whose own check fails: its first error is what the refusal names.
    let fake = world.dir.path().join("fake-criu");
    std::fs::create_dir(&fake).expect("mkdir");
    script(
        &fake.join("criu"),
        "case $1 in --version) echo 'Version: 9.9';; check) echo 'Warn (x.c:1): fine' >&2; \
         echo 'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds' >&2; exit 1;; esac",
    );
    let out = run(fake.as_os_str(), &["checkpoint", "spm-cr"]);
    out.failed();
    assert!(
        out.stderr
            .contains("CRIU cannot work on this host: `criu check` fails with criu 9.9 on kernel")
            && out
                .stderr
                .contains("Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds"),
        "{}",
        out.stderr
    );
    // This host's own CRIU, if any, is named as well (Debian 12's criu 3.17 fails its check
    // on kernels from 6.13 on, which moved the vDSO; runc fails its checkpoint the same way).
    let out = world.cmd(&["checkpoint", "spm-cr"]);
    out.failed();
    assert!(
        out.stderr.contains("CRIU") || out.stderr.contains("criu"),
        "{}",
        out.stderr
    );
}

#[test]
fn features_list_what_is_now_supported() {
    let world = World::new("true");
    let out = world.cmd(&["features"]);
    out.ok();
    let f: Value = serde_json::from_str(&out.stdout).expect("features json");
    let options = f["mountOptions"].as_array().expect("mountOptions");
    for option in ["tmpcopyup", "idmap", "ridmap"] {
        assert!(options.contains(&json!(option)), "{option} missing");
    }
    assert!(f["linux"]["seccomp"]["actions"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("SCMP_ACT_NOTIFY"))));
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    // Still not there: systemd cgroups and checkpoint.
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
    assert_eq!(
        f["annotations"]["org.opencontainers.runc.checkpoint.enabled"],
        "false"
    );
}

//! What the container sees, checked from inside: namespaces, rootfs, mounts, devices,
//! masked and read-only paths.

mod common;

use std::os::unix::fs::{symlink, MetadataExt};

use common::*;
use serde_json::json;

fn run_ok(world: &World) -> String {
    let out = world.run("iso");
    out.ok();
    out.stdout
}

#[test]
fn hostname_domainname_and_private_pid_namespace() {
    let mut world = World::new(
        "hostname; cat /proc/sys/kernel/domainname; echo pid=$$; ls /proc | grep -c '^[0-9]'",
    );
    world.edit(|c| {
        c["hostname"] = json!("box1");
        c["domainname"] = json!("example.test");
    });
    let out = run_ok(&world);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["box1", "example.test", "pid=1"], "{out}");
    assert!(
        lines[3].parse::<u32>().expect("count") <= 3,
        "host processes visible: {out}"
    );
}

#[test]
fn network_ipc_and_cgroup_namespaces_are_new() {
    let mut world = World::new(
        "ls /sys/class/net; for n in net ipc cgroup; do readlink /proc/self/ns/$n; done",
    );
    world.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "cgroup"}))
    });
    let out = run_ok(&world);
    assert_eq!(out.lines().next(), Some("lo"), "{out}");
    for ns in ["net", "ipc", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("host ns");
        assert!(
            !out.contains(host.to_str().expect("utf8")),
            "shares host {ns}: {out}"
        );
    }
}

#[test]
fn a_new_network_namespace_has_its_loopback_up() {
    // As runc and crun do: `--network none` containers reach their own 127.0.0.1.
    let world = World::new("cat /sys/class/net/lo/flags");
    let flags = run_ok(&world);
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).expect("flags");
    assert_eq!(
        flags & libc::IFF_UP as u32,
        libc::IFF_UP as u32,
        "lo is down: {flags:#x}"
    );
}

#[test]
fn user_namespace_maps_ids() {
    let mut world = World::new(
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/f && stat -c %u /tmp/f",
    );
    world.map_users();
    world.edit(|c| c["root"]["readonly"] = json!(false));
    let out = run_ok(&world);
    let fields: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(fields[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(fields[1], ["0", "100000", "65536"], "{out}");
    assert_eq!(fields[2], ["0"]);
    assert_eq!(fields[3], ["0"]);
    let host_uid = std::fs::metadata(world.rootfs().join("tmp/f"))
        .expect("file")
        .uid();
    assert_eq!(host_uid, 100000);
}

#[test]
fn time_namespace_offsets_boottime() {
    let mut world = World::new("cut -d. -f1 /proc/uptime");
    world.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    });
    let inside: u64 = run_ok(&world).trim().parse().expect("uptime");
    let host: u64 = std::fs::read_to_string("/proc/uptime")
        .expect("uptime")
        .split('.')
        .next()
        .expect("secs")
        .parse()
        .expect("n");
    assert!(
        inside >= host + 86400000 - 5,
        "inside {inside}, host {host}"
    );
}

#[test]
fn joins_a_namespace_by_path() {
    let world = World::new("sleep 30");
    let mut joiner = World::new("hostname");
    let bundle = world.bundle().to_str().expect("utf8");
    world.cmd(&["run", "-d", "--bundle", bundle, "host1"]).ok();
    let pid = world.state("host1")["pid"].as_i64().expect("pid");
    joiner.edit(|c| {
        c.as_object_mut().expect("obj").remove("hostname");
        c["linux"]["namespaces"] =
            json!([{"type": "mount"}, {"type": "uts", "path": format!("/proc/{pid}/ns/uts")}]);
    });
    assert_eq!(run_ok(&joiner).trim(), "berth");
    world.cmd(&["delete", "--force", "host1"]).ok();
    reap(pid as i32);
}

#[test]
fn mounts_have_their_types_and_options() {
    let world = World::new("cat /proc/self/mountinfo");
    let out = run_ok(&world);
    let find = |point: &str| {
        out.lines()
            .find(|l| l.split(' ').nth(4) == Some(point))
            .unwrap_or_else(|| panic!("{point} not mounted:\n{out}"))
    };
    assert!(find("/proc").contains(" - proc "));
    let dev = find("/dev");
    assert!(dev.contains(" - tmpfs ") && dev.contains("nosuid"), "{dev}");
    assert!(find("/dev/pts").contains(" - devpts "));
    assert!(find("/dev/shm").contains("nodev"));
    assert!(find("/dev/mqueue").contains(" - mqueue "));
    let sys = find("/sys");
    assert!(
        sys.contains(" - sysfs ") && sys.split(' ').nth(5).is_some_and(|o| o.starts_with("ro")),
        "{sys}"
    );
    assert!(
        find("/")
            .split(' ')
            .nth(5)
            .is_some_and(|o| o.starts_with("ro")),
        "root.readonly"
    );
    assert!(
        find("/sys/fs/cgroup").contains(" - tmpfs ")
            || find("/sys/fs/cgroup").contains(" - cgroup2 ")
    );
}

#[test]
fn readonly_root_masked_and_readonly_paths() {
    let world = World::new(
        "touch /x 2>/dev/null && echo root-writable; \
         cat /proc/keys | wc -c; ls /proc/acpi 2>/dev/null | wc -l; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable; \
         echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; echo done",
    );
    let out = run_ok(&world);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0", "0", "done"], "{out}");
}

#[test]
fn bind_mounts_with_options_and_propagation() {
    let mut world = World::new("cat /data/file; echo x > /data/new 2>/dev/null && echo writable; cat /ro/file; echo y > /ro/new 2>/dev/null || echo ro-refused; cat /single");
    let data = world.dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("file"), "hello\n").expect("write");
    std::fs::write(world.dir.path().join("single"), "one file\n").expect("write");
    world.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.push(json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rprivate"]}));
        mounts.push(json!({"destination": "/ro", "type": "none", "source": data, "options": ["bind", "ro", "nosuid"]}));
        mounts.push(json!({"destination": "/single", "type": "bind", "source": "single", "options": ["bind", "ro"]}));
    });
    let out = run_ok(&world);
    assert_eq!(out, "hello\nwritable\nhello\nro-refused\none file\n");
    assert!(data.join("new").exists());
}

#[test]
fn tmpfs_size_and_mode() {
    let mut world = World::new("stat -c %a /scratch; df -k /scratch | tail -1 | awk '{print $2}'");
    world.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1770"]}))
    });
    assert_eq!(run_ok(&world), "1770\n1024\n");
}

#[test]
fn symlinks_in_the_image_cannot_send_mounts_outside() {
    let mut world = World::new("ls /evil/inside && cat /proc/self/mountinfo | grep -c tmpfs");
    let outside = world.dir.path().join("outside-target");
    // An image with an absolute symlink to a host path and a relative one climbing out.
    symlink(&outside, world.rootfs().join("evil")).expect("symlink");
    symlink("../../../../../../../../tmp", world.rootfs().join("climb")).expect("symlink");
    world.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.push(json!({"destination": "/evil/inside", "type": "tmpfs", "source": "tmpfs"}));
        mounts.push(
            json!({"destination": "/climb/berth-escape-test", "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    world.run("iso").ok();
    assert!(!outside.exists(), "a mount point was created on the host");
    assert!(world
        .rootfs()
        .join(outside.strip_prefix("/").expect("abs"))
        .join("inside")
        .is_dir());
    assert!(!std::path::Path::new("/tmp/berth-escape-test").exists());
    assert!(world.rootfs().join("tmp/berth-escape-test").is_dir());
}

#[test]
fn default_and_configured_devices() {
    let mut world = World::new(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t,%T %a' /dev/$d; done; \
         stat -c '%n %F %t,%T %a %u:%g' /dev/custom; for l in fd stdin ptmx; do readlink /dev/$l; done; \
         echo hi > /dev/null && head -c 3 /dev/zero | wc -c",
    );
    world.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/custom", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620, "uid": 7, "gid": 8}])
    });
    let out = run_ok(&world);
    assert!(
        out.contains("/dev/null character special file 1,3 666"),
        "{out}"
    );
    assert!(
        out.contains("/dev/tty character special file 5,0 666"),
        "{out}"
    );
    assert!(
        out.contains("/dev/custom character special file 1,3 620 7:8"),
        "{out}"
    );
    assert!(
        out.contains("/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n"),
        "{out}"
    );
    assert!(out.ends_with("3\n"), "{out}");
}

#[test]
fn namespaced_sysctls_are_set() {
    let mut world = World::new("cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward");
    world.edit(|c| {
        c["linux"]["sysctl"] = json!({"kernel.shmmni": "1234", "net.ipv4.ip_forward": "1"})
    });
    assert_eq!(run_ok(&world), "1234\n1\n");
}

#[test]
fn no_pivot_uses_move_and_chroot() {
    let world = World::new("ls / | grep -c bin; cat /proc/self/mountinfo | wc -l");
    let bundle = world.bundle().to_str().expect("utf8");
    let out = world.cmd(&["run", "--no-pivot", "--bundle", bundle, "np"]);
    out.ok();
    assert!(out.stdout.starts_with("1\n"), "{}", out.stdout);
}

#[test]
fn rootfs_propagation_and_cgroup_mount_read_only() {
    let mut world = World::new("grep ' / / ' /proc/self/mountinfo; touch /sys/fs/cgroup/x 2>/dev/null || echo cgroup-ro; ls /sys/fs/cgroup | head -3");
    world.edit(|c| c["linux"]["rootfsPropagation"] = json!("rprivate"));
    let out = run_ok(&world);
    let root_line = out.lines().next().expect("root line");
    assert!(
        !root_line.contains("shared:") && !root_line.contains("master:"),
        "{root_line}"
    );
    assert!(out.contains("cgroup-ro"), "{out}");
}

//! What a default container may not do, through the real docker CLI: reach the host's
//! devices (the device cgroup), with every runtime berthd can use, on cgroup v1 and v2.
//! And create bodies that dockerd refuses: wrong JSON types and out-of-range values.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A loop device holding a host file (the block device a container must not reach),
/// detached on drop.
struct LoopDevice {
    path: String,
    backing: PathBuf,
}

const SECRET: &str = "host-secret-0123456789";

impl LoopDevice {
    fn new(dir: &Path) -> LoopDevice {
        let backing = dir.join("disk.img");
        let mut data = SECRET.as_bytes().to_vec();
        data.resize(1 << 20, 0);
        std::fs::write(&backing, data).expect("backing file");
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&backing)
            .output()
            .expect("losetup");
        assert!(out.status.success(), "losetup: {:?}", out);
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        LoopDevice { path, backing }
    }

    fn minor(&self) -> u32 {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&self.path).expect("loop device").rdev();
        libc::minor(rdev)
    }

    fn untouched(&self) -> bool {
        std::fs::read(&self.backing).is_ok_and(|d| d.starts_with(SECRET.as_bytes()))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.path]).status();
    }
}

/// Runtimes to try: berth-runtime (the default) and runc on this host's v1 devices
/// controller; berth-runtime on a v2-only layout (its eBPF device filter) and crun on a
/// v1-only one (crun 1.8 refuses hybrid hosts), each through a wrapper that gives the
/// runtime its own mount namespace with that layout.
fn runtimes(dir: &Path) -> Vec<(String, Vec<String>)> {
    let runtime = Path::new(BERTHD)
        .parent()
        .expect("target dir")
        .join("berth-runtime");
    let wrapper = |name: &str, setup: &str, binary: &Path| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nexec unshare --mount --propagation private sh -c '{setup} && exec \"$0\" \"$@\"' {} \"$@\"\n",
                binary.display()
            ),
        )
        .expect("wrapper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    };
    let v2 = wrapper(
        "berth-runtime-v2",
        "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup",
        &runtime,
    );
    let crun = wrapper(
        "crun-v1",
        "umount /sys/fs/cgroup/unified",
        Path::new("/usr/bin/crun"),
    );
    vec![
        ("berth-runtime".into(), vec![]),
        ("runc".into(), vec![]),
        (
            "berth-runtime-v2".into(),
            vec![format!("--add-runtime=berth-runtime-v2={}", v2.display())],
        ),
        (
            "crun-v1".into(),
            vec![format!("--add-runtime=crun-v1={}", crun.display())],
        ),
    ]
}

/// Output of `sh -c script` in a default container with `extra` run flags.
fn run(d: &Daemon, runtime: &str, extra: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", "none", "--runtime", runtime];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["bb:1", "sh", "-c", script]);
    let out = d.docker(&args);
    format!("{}{}", out.stdout, out.stderr)
}

/// Issue 20, item 1: the device cgroup. A default container holds CAP_MKNOD, so it can
/// make nodes; opening a block device or a character device outside Docker's list must
/// fail with EPERM (the cgroup's answer; an allowed device without a driver gives ENXIO).
#[test]
fn default_containers_cannot_open_host_devices_with_any_runtime() {
    let tmp = tempfile::tempdir().expect("tmp");
    let disk = LoopDevice::new(tmp.path());
    let minor = disk.minor();
    for (runtime, flags) in runtimes(tmp.path()) {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let d = Daemon::start_for_containers_with(&flags);
        busybox_image(&d);
        let block = run(
            &d,
            &runtime,
            &[],
            &format!(
                "mknod /tmp/b b 7 {minor} && head -c 22 /tmp/b; echo read=$?; \
                 echo overwritten > /tmp/b; echo write=$?"
            ),
        );
        assert!(
            !block.contains(SECRET),
            "{runtime}: read the host's disk: {block}"
        );
        assert!(
            block.contains("read=1") && block.contains("write=1"),
            "{runtime}: {block}"
        );
        assert!(
            block.contains("Operation not permitted"),
            "{runtime}: {block}"
        );
        assert!(disk.untouched(), "{runtime}: the host's disk was written");
        for (major, minor) in [(1, 1), (4, 0), (10, 232), (10, 237)] {
            let out = run(
                &d,
                &runtime,
                &[],
                &format!("mknod /tmp/c c {major} {minor} && head -c 1 /tmp/c; echo rc=$?"),
            );
            assert!(
                out.contains("Operation not permitted") && out.contains("rc=1"),
                "{runtime}: c {major}:{minor} opened: {out}"
            );
        }
        let standard = run(
            &d,
            &runtime,
            &[],
            "echo x > /dev/null && head -c 4 /dev/urandom | wc -c && head -c 2 /dev/zero | wc -c",
        );
        assert_eq!(
            standard.trim(),
            "4\n2",
            "{runtime}: standard devices: {standard}"
        );
        // --device and --device-cgroup-rule open exactly what they name.
        let device = format!("{}:/dev/xvda:r", disk.path);
        let mapped = run(&d, &runtime, &["--device", &device], "head -c 22 /dev/xvda");
        assert_eq!(mapped, SECRET, "{runtime}: --device");
        let rule = format!("b 7:{minor} r");
        let ruled = run(
            &d,
            &runtime,
            &["--device-cgroup-rule", &rule],
            &format!("mknod /tmp/b b 7 {minor} && head -c 22 /tmp/b"),
        );
        assert_eq!(ruled, SECRET, "{runtime}: --device-cgroup-rule");
        let read_only = run(
            &d,
            &runtime,
            &["--device", &device],
            "echo overwritten > /dev/xvda; echo write=$?",
        );
        assert!(read_only.contains("write=1"), "{runtime}: {read_only}");
        assert!(
            disk.untouched(),
            "{runtime}: a read-only --device was written"
        );
        let privileged = run(
            &d,
            &runtime,
            &["--privileged"],
            &format!("head -c 22 {}", disk.path),
        );
        assert_eq!(privileged, SECRET, "{runtime}: --privileged");
    }
}

/// Bad --device values are refused at create, naming them.
#[test]
fn bad_devices_are_refused_at_create() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "create",
        "--network",
        "none",
        "--device",
        "/nonexistent",
        "bb:1",
    ])
    .failed_with("/nonexistent");
    let (status, body) = d.http(
        "POST",
        "/containers/create",
        br#"{"Image":"bb:1","HostConfig":{"NetworkMode":"none","DeviceCgroupRules":["c 1:3 rwx"]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("invalid device cgroup rule format: 'c 1:3 rwx'"),
        "{body}"
    );
    let (status, body) = d.http(
        "POST",
        "/containers/create",
        br#"{"Image":"bb:1","HostConfig":{"NetworkMode":"none","Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/n","CgroupPermissions":"rwx"}]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid device cgroup permissions"), "{body}");
    assert!(d.docker(&["ps", "-aq"]).stdout.trim().is_empty());
}

/// Issue 20, item 6: values of the wrong JSON type and out-of-range values are a 400
/// naming the field, and nothing is created; they used to be dropped (the container ran
/// unlimited, or with the image's command) or to fail only at start.
#[test]
fn wrong_types_and_out_of_range_values_are_refused_at_create() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let cases: &[(&str, &str)] = &[
        (r#""HostConfig":{"Memory":"1g"}"#, "HostConfig.Memory"),
        (
            r#""HostConfig":{"Memory":9223372036854775808}"#,
            "HostConfig.Memory",
        ),
        (
            r#""HostConfig":{"Memory":18446744073709551621}"#,
            "HostConfig.Memory",
        ),
        (r#""HostConfig":{"Memory":1.5}"#, "HostConfig.Memory"),
        (
            r#""HostConfig":{"PidsLimit":9223372036854775808}"#,
            "HostConfig.PidsLimit",
        ),
        (
            r#""HostConfig":{"Ulimits":[{"Name":"nofile","Soft":9223372036854775808,"Hard":1}]}"#,
            "HostConfig.Ulimits[0].Soft",
        ),
        (r#""Cmd":5"#, "Config.Cmd"),
        (r#""Env":{"A":"1"}"#, "Config.Env"),
        (r#""HostConfig":{"NanoCpus":-1}"#, "range of CPUs"),
        (
            r#""HostConfig":{"NanoCpus":1000000000000000}"#,
            "range of CPUs",
        ),
        (r#""HostConfig":{"CpuShares":-1}"#, "invalid CPU shares"),
        (
            r#""HostConfig":{"CpusetCpus":"0-x"}"#,
            "Invalid value 0-x for cpuset cpus",
        ),
        (r#""StopSignal":"SIGBOGUS""#, "Invalid signal: SIGBOGUS"),
        (r#""Env":["=x"]"#, "invalid environment variable: =x"),
        (r#""HostConfig":{"CapAdd":["NOPE"]}"#, "unknown capability"),
        (
            r#""HostConfig":{"Binds":["/:/"]}"#,
            "destination can't be '/'",
        ),
        (
            r#""HostConfig":{"Ulimits":[{"Name":"nofile","Soft":10,"Hard":5}]}"#,
            "ulimit soft limit must be less than or equal to hard limit",
        ),
    ];
    for (fields, needle) in cases {
        let body = format!(r#"{{"Image":"bb:1",{fields}}}"#);
        let (status, answer) = d.http("POST", "/containers/create", body.as_bytes());
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.contains(needle), "{body}: {answer}");
    }
    assert!(
        d.docker(&["ps", "-aq"]).stdout.trim().is_empty(),
        "a refused create left a container"
    );
    // The docker CLI's own spellings of the same mistakes.
    d.docker(&["create", "--cpus", "1000000", "bb:1"])
        .failed_with("range of CPUs");
    d.docker(&["create", "-v", "/:/", "bb:1"])
        .failed_with("destination can't be '/'");
    d.docker(&["create", "--cap-add", "NOPE", "bb:1"])
        .failed_with("invalid CapAdd: unknown capability: \"CAP_NOPE\"");
}

/// What dockerd accepts is accepted: a Cmd given as one string (moby's StrSlice), null
/// members (SDKs send them), zero values of options berth lacks, and an environment
/// entry without `=` unsets the image's variable.
#[test]
fn what_dockerd_accepts_is_accepted() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let body = r#"{"Image":"bb:1","Cmd":"echo","Hostname":null,"Env":["PATH"],"Volumes":null,
        "HostConfig":{"NetworkMode":"none","Memory":null,"Isolation":"","CpuShares":0,"Devices":[],"MemorySwappiness":-1}}"#;
    let (status, answer) = d.http("POST", "/containers/create?name=lenient", body.as_bytes());
    assert_eq!(status, 201, "{answer}");
    let cmd = d.docker(&[
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{json .Config.Env}}",
        "lenient",
    ]);
    assert_eq!(cmd.ok().stdout.trim(), r#"["echo"] []"#);
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0)
}

/// Every path under `root` (as root sees them).
fn tree(root: &Path, out: &mut Vec<PathBuf>) {
    out.push(root.to_path_buf());
    if std::fs::symlink_metadata(root).is_ok_and(|m| m.is_dir()) {
        for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
            tree(&e.path(), out);
        }
    }
}

/// What user nobody manages with `paths`: lists a directory, reads a file or runs it.
fn reached_by_nobody(paths: &[PathBuf]) -> String {
    let script = r#"for p in "$@"; do
        if [ -d "$p" ]; then ls "$p" >/dev/null 2>&1 && echo "listed $p"
        else head -c 1 "$p" >/dev/null 2>&1 && echo "read $p"
             "$p" true >/dev/null 2>&1 && echo "ran $p"; fi
    done; true"#;
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .args(paths)
        .output()
        .expect("setpriv");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issue 20, item 2: the data root held images' setuid binaries and containers' secrets
/// where any local user could reach them. Now the roots are 0710 (fixed at start for a
/// data root an older berthd made), records 0600, logs 0640, and user nobody reaches
/// nothing under them.
#[test]
fn the_data_and_exec_roots_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    // As an older berthd left them.
    d.stop();
    let open = std::fs::Permissions::from_mode(0o755);
    for dir in [
        d.dir.path().to_path_buf(),
        d.data_root(),
        d.data_root().join("image"),
        d.data_root().join("containers"),
        d.exec_root(),
    ] {
        std::fs::set_permissions(&dir, open.clone()).expect("chmod");
    }
    d.spawn(&[]);
    assert_eq!(mode(&d.data_root()), 0o710);
    assert_eq!(mode(&d.exec_root()), 0o710);
    assert_eq!(mode(&d.data_root().join("image")), 0o700);
    assert_eq!(mode(&d.data_root().join("containers")), 0o710);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "secret",
        "--network",
        "none",
        "-e",
        "TOKEN=hunter2",
        "bb:1",
        "sh",
        "-c",
        "echo started; sleep 60",
    ])
    .ok();
    assert!(wait_for(|| d
        .docker(&["logs", "secret"])
        .stdout
        .contains("started")));
    let id = d
        .docker(&["inspect", "-f", "{{.Id}}", "secret"])
        .stdout
        .trim()
        .to_string();
    let dir = d.data_root().join("containers").join(&id);
    assert_eq!(mode(&dir.join("config.v2.json")), 0o600);
    assert_eq!(mode(&dir.join(format!("{id}-json.log"))), 0o640);
    assert_eq!(
        mode(
            &d.exec_root()
                .join("containers")
                .join(&id)
                .join("config.json")
        ),
        0o600
    );
    let mut paths = Vec::new();
    tree(&d.data_root(), &mut paths);
    tree(&d.exec_root(), &mut paths);
    // A setuid-root shell in an image layer was a local root exploit.
    let busybox = paths
        .iter()
        .find(|p| p.ends_with("bin/busybox") && p.starts_with(d.data_root().join("image")))
        .expect("busybox in a snapshot")
        .clone();
    std::fs::set_permissions(&busybox, std::fs::Permissions::from_mode(0o4755)).expect("setuid");
    let reached = reached_by_nobody(&paths);
    assert!(reached.is_empty(), "nobody reached: {reached}");
    d.docker(&["rm", "-f", "secret"]).ok();
}

/// Issue 20, item 7: a bind onto /proc fails with a message that names the bind (it was a
/// later "mask /sys/firmware" error), and one inside /proc is refused as runc refuses it.
#[test]
fn binds_onto_proc_are_refused_naming_the_bind() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let source = d.dir.path().join("empty");
    std::fs::create_dir_all(&source).expect("source");
    for (dest, needle) in [
        (
            "/proc",
            "/proc cannot be mounted because it is not of type proc",
        ),
        (
            "/proc/sys",
            "/proc/sys cannot be mounted because it is inside /proc",
        ),
    ] {
        let bind = format!("{}:{dest}", source.display());
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &bind,
            "bb:1",
            "true",
        ]);
        out.failed_with(needle);
        assert!(
            out.stderr.contains(&source.display().to_string()),
            "{}",
            out.stderr
        );
    }
}

/// The masked (`/proc/keys`...) and read-only (`/proc/sys`...) paths: Docker's by default,
/// shown by inspect as dockerd fills them; none with `--security-opt systempaths=unconfined`
/// (an empty list); a body's own list instead of the defaults; none for --privileged.
#[test]
fn masked_and_readonly_paths_follow_the_host_config() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    // Which of the probes is a mount in the container (a masked or read-only path is one).
    let probe = "for p in /proc/keys /proc/sys /proc/cpuinfo; do \
                 grep -q \" $p \" /proc/self/mountinfo && echo -n \"$p \"; done; echo";
    let mounts = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["bb:1", "sh", "-c", probe]);
        let out = d.docker(&all);
        out.ok();
        out.stdout.trim().to_string()
    };
    assert_eq!(mounts(&[]), "/proc/keys /proc/sys");
    assert_eq!(mounts(&["--security-opt", "systempaths=unconfined"]), "");
    assert_eq!(mounts(&["--privileged"]), "");

    d.docker(&["create", "--name", "defaults", "bb:1"]).ok();
    let shown = d.docker(&[
        "inspect",
        "-f",
        "{{json .HostConfig.MaskedPaths}} {{json .HostConfig.ReadonlyPaths}}",
        "defaults",
    ]);
    shown.ok();
    assert!(
        shown.stdout.contains("\"/proc/keys\"") && shown.stdout.contains("\"/proc/sys\""),
        "{}",
        shown.stdout
    );

    // A body's own lists replace the defaults: /proc/cpuinfo masked (it reads empty),
    // nothing read-only.
    let body = serde_json::json!({
        "Image": "bb:1",
        "Cmd": ["sh", "-c", format!("cat /proc/cpuinfo | wc -c; {probe}")],
        "HostConfig": {"NetworkMode": "none", "MaskedPaths": ["/proc/cpuinfo"], "ReadonlyPaths": []},
    });
    let (status, body) = d.http(
        "POST",
        "/containers/create?name=own",
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    let out = d.docker(&["start", "-a", "own"]);
    out.ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "/proc/cpuinfo"]
    );
}

//! The rest of the create surface (issue 18), through the real docker CLI, the berth CLI
//! and the API: each option's effect seen from inside the container (or in its cgroup
//! files), and bad values refused at create with dockerd's (or the docker CLI's) messages.
//! `--pid/--ipc/--uts/--cgroupns`, `container:X` joins, `--shm-size`, `--sysctl`,
//! `--group-add`, `--oom-score-adj`, memory and real-time tuning, block I/O, the none and
//! local log drivers, `--cidfile`, `--mac-address`, `attach?logs=1`, exec detach keys and
//! `docker system prune`.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

/// `docker run --rm --network none [extra] bb:1 sh -c script` (docker, or berth with
/// `berth: true`): its output (stdout then stderr).
fn sh(d: &Daemon, berth: bool, extra: &[&str], script: &str) -> Out {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["bb:1", "sh", "-c", script]);
    if berth {
        d.berth(&args)
    } else {
        d.docker(&args)
    }
}

/// Standard output of a run that must succeed.
fn sh_ok(d: &Daemon, berth: bool, extra: &[&str], script: &str) -> String {
    let out = sh(d, berth, extra, script);
    out.ok();
    out.stdout
}

/// This process's namespace of `kind` (the host's: tests do not run in containers).
fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .expect("namespace link")
        .display()
        .to_string()
}

/// A create body posted to the API: (status, answer).
fn create_api(d: &Daemon, host_config: &str) -> (u16, String) {
    let body = format!(
        r#"{{"Image":"bb:1","Cmd":["true"],"HostConfig":{{"NetworkMode":"none",{host_config}}}}}"#
    );
    d.http("POST", "/v1.45/containers/create", body.as_bytes())
}

/// The API refuses `host_config` with a 400 saying `needle`.
fn refused_by_api(d: &Daemon, host_config: &str, needle: &str) {
    let (status, answer) = create_api(d, host_config);
    assert_eq!(status, 400, "{host_config}: {answer}");
    assert!(answer.contains(needle), "{host_config}: {answer}");
}

/// --pid, --uts, --ipc, --cgroupns and --shm-size, with both CLIs: the namespaces seen from
/// inside are the host's or the container's own as asked; bad modes are refused at create
/// with dockerd's messages.
#[test]
fn namespace_modes_and_shm_size() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let hostname = nix::unistd::gethostname()
        .expect("hostname")
        .to_string_lossy()
        .into_owned();
    let ns = "for n in pid ipc cgroup; do readlink /proc/self/ns/$n; done";
    for berth in [false, true] {
        let own = sh_ok(&d, berth, &[], ns);
        for kind in ["pid", "ipc"] {
            assert!(!own.contains(&host_ns(kind)), "{kind}: {own}");
        }
        // A cgroup v1 host: the host's cgroup namespace by default, as dockerd.
        assert!(own.contains(&host_ns("cgroup")), "{own}");
        let shared = sh_ok(
            &d,
            berth,
            &["--pid", "host", "--ipc", "host", "--cgroupns", "private"],
            ns,
        );
        assert!(shared.contains(&host_ns("pid")), "{shared}");
        assert!(shared.contains(&host_ns("ipc")), "{shared}");
        assert!(!shared.contains(&host_ns("cgroup")), "{shared}");
        let cgroup = sh_ok(
            &d,
            berth,
            &["--cgroupns", "private"],
            "cat /proc/self/cgroup",
        );
        assert!(
            cgroup.lines().all(|l| l.ends_with(":/")),
            "a private cgroup namespace is rooted at the container's cgroup: {cgroup}"
        );
        // --uts host: the host's name; $HOSTNAME is still the short id, as in Docker.
        let uts = sh_ok(&d, berth, &["--uts", "host"], "hostname; echo $HOSTNAME");
        let lines: Vec<&str> = uts.lines().collect();
        assert_eq!(lines.first(), Some(&hostname.as_str()), "{uts}");
        assert_eq!(lines.get(1).map(|l| l.len()), Some(12), "{uts}");
        // /dev/shm: its size, or none at all.
        let shm = sh_ok(
            &d,
            berth,
            &["--shm-size", "1m"],
            "grep ' /dev/shm ' /proc/mounts",
        );
        assert!(shm.contains("size=1024k"), "{shm}");
        let default = sh_ok(&d, berth, &[], "grep ' /dev/shm ' /proc/mounts");
        assert!(default.contains("size=65536k"), "{default}");
        let none = sh(&d, berth, &["--ipc", "none"], "ls /dev/shm");
        assert_ne!(none.code, 0, "--ipc none has no /dev/shm: {}", none.stdout);
        // -h with --uts host is dockerd's conflict.
        sh(&d, berth, &["--uts", "host", "-h", "box"], "true")
            .failed_with("conflicting options: hostname and the UTS mode");
        sh(&d, berth, &["--ipc", "bogus"], "true").failed_with("invalid IPC mode: bogus");
    }
    // What the docker CLI checks itself, the daemon checks for other clients.
    d.docker(&["run", "--rm", "--pid", "bogus", "bb:1", "true"])
        .failed_with("--pid: invalid PID mode");
    d.berth(&["run", "--rm", "--uts", "bogus", "bb:1", "true"])
        .failed_with("--uts: invalid UTS mode");
    for (host_config, needle) in [
        (r#""PidMode":"bogus""#, "invalid PID mode: bogus"),
        (r#""UTSMode":"private""#, "invalid UTS mode: private"),
        (
            r#""CgroupnsMode":"shared""#,
            "invalid cgroup namespace mode: shared",
        ),
        (r#""ShmSize":-1"#, "SHM size can not be less than 0"),
        (
            r#""PidMode":"container:nosuch""#,
            "No such container: nosuch",
        ),
    ] {
        refused_by_api(&d, host_config, needle);
    }
    let (status, inspect) = d.http("GET", "/v1.45/containers/json?all=1", b"");
    assert_eq!(
        (status, inspect.trim()),
        (200, "[]"),
        "refusals left containers"
    );
}

/// `container:X` modes join X's namespaces through its init: an IPC joiner sees X's
/// /dev/shm and SysV namespace, a PID joiner X's processes. When X stops, the IPC joiner
/// runs on and the PID joiner dies with X's pid namespace (the kernel's rule, as under
/// dockerd); a private IPC cannot be joined.
#[test]
fn containers_join_each_others_namespaces() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--network",
        "none",
        "--ipc",
        "shareable",
        "bb:1",
        "sh",
        "-c",
        "echo shared-memory > /dev/shm/note; exec sleep 300",
    ])
    .ok();
    assert!(wait_for(|| d
        .docker(&["exec", "donor", "cat", "/dev/shm/note"])
        .stdout
        .contains("shared-memory")));
    let donor_ipc = d
        .docker(&["exec", "donor", "readlink", "/proc/self/ns/ipc"])
        .ok()
        .stdout
        .clone();
    for berth in [false, true] {
        let seen = sh_ok(
            &d,
            berth,
            &["--ipc", "container:donor"],
            "cat /dev/shm/note; readlink /proc/self/ns/ipc",
        );
        assert_eq!(
            seen,
            format!("shared-memory\n{donor_ipc}"),
            "berth: {berth}"
        );
        let ps = sh_ok(&d, berth, &["--pid", "container:donor"], "ps -o comm");
        assert!(ps.contains("sleep"), "the donor's processes: {ps}");
    }
    for (name, mode) in [("ipc-joiner", "--ipc"), ("pid-joiner", "--pid")] {
        d.docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            mode,
            "container:donor",
            "bb:1",
            "sleep",
            "300",
        ])
        .ok();
    }
    let modes = d
        .docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.IpcMode}} {{.HostConfig.PidMode}}",
            "ipc-joiner",
            "pid-joiner",
            "donor",
        ])
        .ok()
        .stdout
        .clone();
    let donor_id = d
        .docker(&["inspect", "-f", "{{.Id}}", "donor"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(
        modes,
        format!("container:{donor_id} \nprivate container:{donor_id}\nshareable \n"),
    );
    d.docker(&["kill", "donor"]).ok();
    let state = |name: &str| {
        d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            name,
        ])
        .stdout
        .trim()
        .to_string()
    };
    assert!(
        wait_for(|| state("pid-joiner") == "exited 137"),
        "{}",
        state("pid-joiner")
    );
    assert_eq!(state("ipc-joiner"), "running 0");
    // The donor's tmpfs went with it (unmounted from berthd's namespace, not left behind).
    let mounts =
        std::fs::read_to_string(format!("/proc/{}/mountinfo", d.pid())).unwrap_or_default();
    assert!(!mounts.contains(&format!("{donor_id}/shm")), "{mounts}");
    // A stopped donor, a private one, a missing one.
    sh(&d, false, &["--ipc", "container:donor"], "true")
        .failed_with(&format!("container {donor_id} is not running"));
    d.docker(&[
        "run",
        "-d",
        "--name",
        "private",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    sh(&d, false, &["--ipc", "container:private"], "true")
        .failed_with("non-shareable IPC (hint: use IpcMode:shareable for the donor container)");
    sh(&d, true, &["--pid", "container:nosuch"], "true").failed_with("No such container: nosuch");
}

/// Without a pid namespace of its own (`--pid host`), a container's processes are still
/// all ended through its cgroup: by stop, and by its init's exit.
#[test]
fn host_pid_containers_end_whole() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    };
    let pid_of = |out: &str| -> i32 { out.trim().parse().expect("a pid") };
    // Stopped: the init takes SIGTERM, its background child goes with the cgroup.
    let id = d
        .docker(&[
            "run",
            "-d",
            "--pid",
            "host",
            "--network",
            "none",
            "bb:1",
            "sh",
            "-c",
            "sleep 301 & echo $! > /child; exec sleep 300",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let child = pid_of(&d.docker(&["exec", &id, "cat", "/child"]).ok().stdout);
    assert!(alive(child));
    d.docker(&["stop", "-t", "5", &id]).ok();
    assert!(
        wait_for(|| !alive(child)),
        "the background child outlived the container"
    );
    // The init ends by itself: what it left running is killed, and the run returns.
    let out = d.docker(&[
        "run",
        "--rm",
        "--pid",
        "host",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "sleep 302 & echo $!",
    ]);
    let left = pid_of(&out.ok().stdout);
    assert!(
        wait_for(|| !alive(left)),
        "a process outlived its container's init"
    );
}

/// --sysctl: namespaced ones are set inside; one for a namespace the container shares
/// with the host is refused at create (runc's messages), and the CLIs refuse the others.
#[test]
fn sysctls_in_the_containers_own_namespaces() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for berth in [false, true] {
        let seen = sh_ok(
            &d,
            berth,
            &[
                "--sysctl",
                "kernel.shmmax=123456789",
                "--sysctl",
                "net.ipv4.ip_forward=1",
            ],
            "cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ip_unprivileged_port_start",
        );
        // With Docker's default for a network of its own: low ports for everyone.
        assert_eq!(seen, "123456789\n1\n0\n");
        let mut args = vec!["run", "--rm", "--network", "host"];
        args.extend(["--sysctl", "net.ipv4.ip_forward=1", "bb:1", "true"]);
        let refused = if berth {
            d.berth(&args)
        } else {
            d.docker(&args)
        };
        refused.failed_with("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace");
        sh(
            &d,
            berth,
            &["--ipc", "host", "--sysctl", "kernel.shmmax=1"],
            "true",
        )
        .failed_with("sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace");
        sh(&d, berth, &["--sysctl", "vm.swappiness=1"], "true")
            .failed_with("sysctl 'vm.swappiness=1' is not allowed");
    }
    refused_by_api(
        &d,
        r#""Sysctls":{"vm.swappiness":"1"}"#,
        "sysctl \\\"vm.swappiness\\\" is not in a separate kernel namespace",
    );
    // The host was not touched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap_or_default(),
        "123456789\n"
    );
}

/// --group-add (names from the image's /etc/group, numbers as they are) for the container
/// and its execs; --oom-score-adj; bad values.
#[test]
fn groups_and_the_oom_score() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for berth in [false, true] {
        let seen = sh_ok(
            &d,
            berth,
            &[
                "--group-add",
                "tty",
                "--group-add",
                "4242",
                "--oom-score-adj",
                "500",
            ],
            "id -G; cat /proc/self/oom_score_adj",
        );
        assert_eq!(seen, "0 5 4242\n500\n");
        sh(&d, berth, &["--group-add", "nosuch"], "true")
            .failed_with("Unable to find group nosuch: no matching entries in group file");
        sh(&d, berth, &["--oom-score-adj", "1001"], "true")
            .failed_with("Invalid value 1001, range for oom score adj is [-1000, 1000]");
    }
    d.docker(&[
        "run",
        "-d",
        "--name",
        "grouped",
        "--network",
        "none",
        "--group-add",
        "tty",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    assert_eq!(
        d.docker(&["exec", "grouped", "id", "-G"]).ok().stdout,
        "0 5\n"
    );
    assert_eq!(
        d.docker(&["exec", "-u", "nobody", "grouped", "id", "-G"])
            .ok()
            .stdout,
        "65534 5\n"
    );
    refused_by_api(
        &d,
        r#""GroupAdd":["-5"]"#,
        "uids and gids must be in range 0-2147483647",
    );
}

/// The memory cgroup file of the container, read from inside (cgroup v1 host).
const MEMORY: &str = "cd /sys/fs/cgroup/memory && cat memory.soft_limit_in_bytes memory.swappiness && grep oom_kill_disable memory.oom_control";

/// --memory-reservation, --memory-swappiness, --oom-kill-disable in the cgroup; dockerd's
/// checks and warning.
#[test]
fn memory_tuning() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for berth in [false, true] {
        let seen = sh_ok(
            &d,
            berth,
            &[
                "-m",
                "64m",
                "--memory-reservation",
                "32m",
                "--memory-swappiness",
                "10",
                "--oom-kill-disable",
            ],
            MEMORY,
        );
        assert_eq!(seen, "33554432\n10\noom_kill_disable 1\n");
        let warned = sh(&d, berth, &["--oom-kill-disable"], "true");
        warned.ok();
        assert!(
            warned.stderr.contains(
                "WARNING: OOM killer is disabled for the container, but no memory limit is set"
            ),
            "{}",
            warned.stderr
        );
        sh(&d, berth, &["--memory-reservation", "1m"], "true")
            .failed_with("Minimum memory reservation allowed is 6MB");
        sh(
            &d,
            berth,
            &["-m", "16m", "--memory-reservation", "32m"],
            "true",
        )
        .failed_with("Minimum memory limit can not be less than memory reservation limit");
        sh(&d, berth, &["--memory-swappiness", "101"], "true")
            .failed_with("Valid memory swappiness range is 0-100");
    }
    refused_by_api(
        &d,
        r#""MemorySwappiness":101"#,
        "Invalid value: 101, valid memory swappiness range is 0-100",
    );
}

/// --cpu-rt-period/--cpu-rt-runtime in the cpu cgroup where the kernel has real-time group
/// scheduling, a clear refusal where it does not.
#[test]
fn cpu_realtime() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let flags = ["--cpu-rt-period", "1000000", "--cpu-rt-runtime", "95000"];
    let script = "cat /sys/fs/cgroup/cpu/cpu.rt_period_us /sys/fs/cgroup/cpu/cpu.rt_runtime_us";
    let supported = std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists();
    for berth in [false, true] {
        if supported {
            assert_eq!(sh_ok(&d, berth, &flags, script), "1000000\n95000\n");
        } else {
            sh(&d, berth, &flags, script)
                .failed_with("kernel does not support CPU real-time scheduler");
        }
        sh(
            &d,
            berth,
            &["--cpu-rt-period", "5000", "--cpu-rt-runtime", "10000"],
            "true",
        )
        .failed_with("cpu real-time runtime cannot be higher than cpu real-time period");
    }
}

/// A loop device (a block device of the test's own), detached on drop.
struct LoopDevice(String);

impl LoopDevice {
    fn new(dir: &std::path::Path) -> LoopDevice {
        let backing = dir.join("blkio.img");
        std::fs::write(&backing, vec![0u8; 1 << 20]).expect("backing file");
        let out = std::process::Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&backing)
            .output()
            .expect("losetup");
        assert!(out.status.success(), "losetup: {out:?}");
        LoopDevice(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn number(&self) -> String {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&self.0).expect("loop device").rdev();
        format!("{}:{}", libc::major(rdev), libc::minor(rdev))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

/// Block I/O throttles in the blkio cgroup (by the device's number); weights where the
/// kernel has a scheduler that honours them, else dockerd's warning; bad devices.
#[test]
fn block_io_limits() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let disk = LoopDevice::new(d.dir.path());
    let n = disk.number();
    let read_bps = format!("{}:1mb", disk.0);
    let write_iops = format!("{}:100", disk.0);
    let weight = format!("{}:200", disk.0);
    let weights = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists();
    for berth in [false, true] {
        let seen = sh_ok(
            &d,
            berth,
            &["--device-read-bps", &read_bps, "--device-write-iops", &write_iops],
            "cd /sys/fs/cgroup/blkio && cat blkio.throttle.read_bps_device blkio.throttle.write_iops_device",
        );
        assert_eq!(seen, format!("{n} 1048576\n{n} 100\n"));
        let weighted = sh(
            &d,
            berth,
            &["--blkio-weight", "300", "--blkio-weight-device", &weight],
            "cat /sys/fs/cgroup/blkio/blkio.weight 2>/dev/null || true",
        );
        weighted.ok();
        if weights {
            assert!(weighted.stdout.contains("300"), "{}", weighted.stdout);
        } else {
            for warning in [
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
                "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.",
            ] {
                assert!(weighted.stderr.contains(warning), "{}", weighted.stderr);
            }
        }
        sh(
            &d,
            berth,
            &["--device-read-bps", "/dev/no-such-disk:1mb"],
            "true",
        )
        .failed_with("stat /dev/no-such-disk: no such file or directory");
        sh(&d, berth, &["--device-write-bps", "/dev/null:1mb"], "true")
            .failed_with("/dev/null is not a block device");
        sh(&d, berth, &["--device-read-iops", "disk:1"], "true")
            .failed_with("bad format for device path: disk:1");
    }
    if weights {
        refused_by_api(
            &d,
            r#""BlkioWeight":5"#,
            "Range of blkio weight is from 10 to 1000",
        );
    }
    refused_by_api(
        &d,
        r#""IOMaximumBandwidth":1"#,
        "invalid option: QoS maximum bandwidth configuration is not supported on linux",
    );
}

/// --log-driver none: the output still reaches an attached client, nothing is kept, and
/// logs is refused as dockerd refuses it; local is refused by name.
#[test]
fn log_drivers_none_and_local() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for berth in [false, true] {
        let name = if berth { "quiet-berth" } else { "quiet-docker" };
        let mut args = vec![
            "run",
            "--name",
            name,
            "--network",
            "none",
            "--log-driver",
            "none",
        ];
        args.extend(["bb:1", "echo", "attached"]);
        let out = if berth {
            d.berth(&args)
        } else {
            d.docker(&args)
        };
        assert_eq!(out.ok().stdout, "attached\n");
        let logs = if berth {
            d.berth(&["logs", name])
        } else {
            d.docker(&["logs", name])
        };
        logs.failed_with("configured logging driver does not support reading");
        let inspected = d
            .docker(&[
                "inspect",
                "-f",
                "{{.LogPath}}|{{.HostConfig.LogConfig.Type}}",
                name,
            ])
            .ok()
            .stdout
            .clone();
        assert_eq!(inspected, "|none\n");
        let id = d
            .docker(&["inspect", "-f", "{{.Id}}", name])
            .ok()
            .stdout
            .trim()
            .to_string();
        let kept: Vec<String> = std::fs::read_dir(d.data_root().join("containers").join(&id))
            .expect("container dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!kept.iter().any(|f| f.contains("log")), "{kept:?}");
        sh(&d, berth, &["--log-driver", "local"], "true")
            .failed_with("logging driver \"local\" is not supported by berth");
    }
    let (status, body) = d.http(
        "POST",
        "/v1.45/containers/quiet-docker/attach?logs=1&stream=0&stdout=1",
        b"",
    );
    assert_eq!(status, 501, "{body}");
}

/// --cidfile: the docker CLI writes it itself; the berth CLI writes it too, refuses to
/// overwrite one, and removes it when the create fails.
#[test]
fn cidfile_written_by_both_clis() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for berth in [false, true] {
        let cid = d.dir.path().join(format!("cid-{berth}"));
        let cid_arg = cid.to_str().expect("utf8");
        let args = [
            "create",
            "--network",
            "none",
            "--cidfile",
            cid_arg,
            "bb:1",
            "true",
        ];
        let out = if berth {
            d.berth(&args)
        } else {
            d.docker(&args)
        };
        let id = out.ok().stdout.trim().to_string();
        assert_eq!(std::fs::read_to_string(&cid).expect("cidfile"), id);
        let again = if berth {
            d.berth(&args)
        } else {
            d.docker(&args)
        };
        again.failed_with("container ID file found, make sure the other container isn't running");
        std::fs::remove_file(&cid).expect("rm cidfile");
        let failing = [
            "create",
            "--network",
            "none",
            "--cidfile",
            cid_arg,
            "--ipc",
            "bogus",
            "bb:1",
        ];
        let failed = if berth {
            d.berth(&failing)
        } else {
            d.docker(&failing)
        };
        failed.failed_with("invalid IPC mode: bogus");
        assert!(!cid.exists(), "a failed create left its cidfile");
    }
}

/// --mac-address asks for an interface of the container's own: the none and host networks
/// have none to give it, and the create is refused with dockerd's conflict (both the
/// endpoint's address of API 1.44+ and the container-wide one of older clients).
#[test]
fn mac_address_needs_a_network_of_its_own() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for network in ["none", "host"] {
        let args = [
            "run",
            "--rm",
            "--network",
            network,
            "--mac-address",
            "02:42:ac:11:00:02",
            "bb:1",
            "true",
        ];
        d.docker(&args)
            .failed_with("conflicting options: mac-address and the network mode");
        d.berth(&args)
            .failed_with("conflicting options: mac-address and the network mode");
    }
    let body =
        br#"{"Image":"bb:1","MacAddress":"02:42:ac:11:00:02","HostConfig":{"NetworkMode":"none"}}"#;
    let (status, answer) = d.http("POST", "/v1.43/containers/create", body);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("conflicting options: mac-address and the network mode"));
}

/// --mac-address on the default bridge and on a user-defined network: the container's
/// interface has it, inspect shows it; an older client's Config.MacAddress is its first
/// network's; a malformed one is refused with dockerd's message.
#[test]
fn mac_address_is_the_interfaces() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let subnet = format!("10.214.{}.0/24", std::process::id() % 200);
    d.docker(&["network", "create", "--subnet", &subnet, "macnet"])
        .ok();
    for (network, mac) in [
        ("bridge", "92:d0:c6:0a:29:33"),
        ("macnet", "92:d0:c6:0a:29:34"),
    ] {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            network,
            "--mac-address",
            &mac.to_uppercase(),
            "bb:1",
            "cat",
            "/sys/class/net/eth0/address",
        ]);
        assert_eq!(out.ok().stdout.trim(), mac, "on {network}");
    }
    d.docker(&[
        "run",
        "-d",
        "--name",
        "shown",
        "--mac-address",
        "92:d0:c6:0a:29:35",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    let shown = d.docker(&["inspect", "-f", "{{.NetworkSettings.MacAddress}}", "shown"]);
    assert_eq!(shown.ok().stdout.trim(), "92:d0:c6:0a:29:35");
    d.docker(&["rm", "-f", "shown"]).ok();

    let body = br#"{"Image":"bb:1","Cmd":["cat","/sys/class/net/eth0/address"],"MacAddress":"92:d0:c6:0a:29:36"}"#;
    let (status, answer) = d.http("POST", "/v1.43/containers/create?name=old", body);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        d.docker(&["start", "-a", "old"]).ok().stdout.trim(),
        "92:d0:c6:0a:29:36"
    );

    // The docker CLI checks the form itself; a body's is checked by berthd.
    let body = br#"{"Image":"bb:1","NetworkingConfig":{"EndpointsConfig":{"bridge":{"MacAddress":"92:d0:c6:0a:29"}}}}"#;
    let (status, answer) = d.http("POST", "/containers/create", body);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("invalid MAC address 92:d0:c6:0a:29"),
        "{answer}"
    );
    d.docker(&["rm", "-f", "old"]).ok();
    d.docker(&["network", "rm", "macnet"]).ok();
}

/// A raw hijacked attach to `name`: what the stream carries in `for_how_long` (or until
/// it ends), unframed.
fn attach_raw(d: &Daemon, name: &str, query: &str, for_how_long: Duration) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).expect("connect");
    write!(
        s,
        "POST /v1.45/containers/{name}/attach?{query} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("request");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + for_how_long;
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, _) = text.split_once("\r\n\r\n").expect("an answer");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let start = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let mut body = &raw[start..];
    let mut out = Vec::new();
    while body.len() >= 8 {
        let len = u32::from_be_bytes([body[4], body[5], body[6], body[7]]) as usize;
        let end = (8 + len).min(body.len());
        out.extend_from_slice(&body[8..end]);
        body = &body[end..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The line numbers of a counter's output, each line checked for the text the counter
/// writes before its newline (a line cut between the log and the live stream shows).
fn counted(text: &str) -> Vec<u64> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines.pop();
    lines
        .iter()
        .map(|l| {
            let (prefix, n) = l
                .rsplit_once("line ")
                .unwrap_or_else(|| panic!("{l:?} in {text}"));
            let n: u64 = n.parse().unwrap_or_else(|_| panic!("{l:?}"));
            if n > 1 {
                assert_eq!(prefix, format!("part{}-", n - 1), "{l:?} in {text}");
            }
            n
        })
        .collect()
}

/// `attach?logs=1&stream=1`: the log so far, then the live output from exactly where the
/// log ended (nothing lost or repeated, a line begun before the attach included);
/// `stream=0`: the log only, then the end.
#[test]
fn attach_replays_the_log_then_streams() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "counter",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo \"line $i\"; printf \"part$i-\"; sleep 0.01; done",
    ])
    .ok();
    assert!(wait_for(|| d
        .docker(&["logs", "counter"])
        .stdout
        .lines()
        .count()
        > 20));
    let both = counted(&attach_raw(
        &d,
        "counter",
        "logs=1&stream=1&stdout=1&stderr=1",
        Duration::from_secs(2),
    ));
    assert_eq!(both.first(), Some(&1), "the log comes first");
    let expected: Vec<u64> = (1..=*both.last().expect("lines")).collect();
    assert_eq!(
        both, expected,
        "a gap or a repeat between the log and the stream"
    );
    let logged = d.docker(&["logs", "counter"]).stdout.lines().count() as u64;
    assert!(*both.last().unwrap_or(&0) > 20 && logged >= 20);
    // stream=0: the log as it is, then the stream ends by itself.
    let only = attach_raw(
        &d,
        "counter",
        "logs=1&stream=0&stdout=1",
        Duration::from_secs(5),
    );
    let only = counted(&only);
    assert_eq!(only.first(), Some(&1));
    // stderr only: nothing (the counter writes to stdout).
    let none = attach_raw(
        &d,
        "counter",
        "logs=1&stream=0&stderr=1",
        Duration::from_secs(1),
    );
    assert_eq!(none, "");
    // A container that does not run: its log, then the next run's output live, once.
    d.docker(&[
        "run",
        "--name",
        "again",
        "--network",
        "none",
        "bb:1",
        "echo",
        "hello",
    ])
    .ok();
    std::thread::scope(|s| {
        let attached = s.spawn(|| {
            attach_raw(
                &d,
                "again",
                "logs=1&stream=1&stdout=1",
                Duration::from_secs(10),
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        d.docker(&["start", "again"]).ok();
        assert_eq!(attached.join().expect("attach"), "hello\nhello\n");
    });
}

/// exec's DetachKeys, end to end: typing them detaches the client, the process runs on.
#[test]
fn exec_detach_keys() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    let mut docker = d.docker_pty("exec -it --detach-keys ctrl-x,x box sh");
    let mut berth = d.berth_pty("exec -it --detach-keys ctrl-x,x box sh");
    for (name, session) in [("docker", &mut docker), ("berth", &mut berth)] {
        session.expect("/ # ");
        session.send(&format!("echo from-{name}\n"));
        session.expect(&format!("from-{name}\r\n"));
        session.send("\x18x");
    }
    let (code, out) = docker.finish();
    assert!(out.contains("read escape sequence"), "{out}");
    assert_eq!(code, 1, "docker's exit code after an exec detach: {out}");
    // The berth CLI ends the same way.
    let (code, out) = berth.finish();
    assert_eq!(code, 1, "berth's exit code after an exec detach: {out}");
    assert!(out.contains("read escape sequence"), "{out}");
    // Both shells still run in the container.
    let ps = d
        .docker(&["exec", "box", "ps", "-o", "comm"])
        .ok()
        .stdout
        .clone();
    assert_eq!(ps.lines().filter(|l| l.trim() == "sh").count(), 2, "{ps}");
}

/// `docker system prune` (with -a and --volumes): every call it makes answers as dockerd's
/// would (stopped containers and unused images go; berth has no networks, volumes or build
/// cache to remove), so it succeeds.
#[test]
fn system_prune() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "create",
        "--name",
        "stopped",
        "--network",
        "none",
        "bb:1",
        "true",
    ])
    .ok();
    let out = d.docker(&["system", "prune", "-f"]);
    assert!(
        out.ok().stdout.contains("Total reclaimed space"),
        "{}",
        out.stdout
    );
    assert_eq!(d.docker(&["ps", "-aq"]).stdout.trim(), "");
    assert!(
        d.docker(&["images", "-q"]).stdout.trim().len() > 1,
        "the image is dangling only with -a"
    );
    let all = d.docker(&["system", "prune", "-a", "-f", "--volumes"]);
    assert!(all.ok().stdout.contains("untagged: bb:1"), "{}", all.stdout);
    for (path, shape) in [
        ("/v1.45/networks/prune", r#"{"NetworksDeleted":null}"#),
        (
            "/v1.45/volumes/prune",
            r#"{"SpaceReclaimed":0,"VolumesDeleted":null}"#,
        ),
        (
            "/v1.45/build/prune",
            r#"{"CachesDeleted":null,"SpaceReclaimed":0}"#,
        ),
    ] {
        let (status, body) = d.http("POST", path, b"");
        assert_eq!(status, 200, "{path}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        let shape: serde_json::Value = serde_json::from_str(shape).expect("shape");
        assert_eq!(body, shape, "{path}");
        let (status, body) = d.http(
            "POST",
            &format!("{path}?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D"),
            b"",
        );
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("invalid filter 'bogus'"), "{body}");
    }
}

/// `--annotation` (HostConfig.Annotations, API 1.43+) reaches the runtime's config, and
/// inspect shows it; an empty key is refused as dockerd refuses it; an older client's are
/// ignored, as dockerd ignores them.
#[test]
fn annotations_reach_the_runtime() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ann",
        "--network",
        "none",
        "--annotation",
        "com.example.team=storage",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    let id = d
        .docker(&["inspect", "-f", "{{.Id}}", "ann"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let config = d
        .exec_root()
        .join("containers")
        .join(&id)
        .join("config.json");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).expect("bundle config")).expect("json");
    assert_eq!(
        config["annotations"]["com.example.team"], "storage",
        "{config}"
    );
    let shown = d.docker(&["inspect", "-f", "{{json .HostConfig.Annotations}}", "ann"]);
    assert_eq!(
        shown.ok().stdout.trim(),
        r#"{"com.example.team":"storage"}"#
    );
    d.docker(&["rm", "-f", "ann"]).ok();

    let (status, body) = d.http(
        "POST",
        "/containers/create?name=empty-key",
        br#"{"Image": "bb:1", "HostConfig": {"Annotations": {"": "x"}}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("the empty string is not permitted as an annotation key"),
        "{body}"
    );
    let (status, body) = d.http(
        "POST",
        "/v1.42/containers/create?name=old",
        br#"{"Image": "bb:1", "HostConfig": {"Annotations": {"a": "b"}}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let shown = d.docker(&["inspect", "-f", "{{json .HostConfig.Annotations}}", "old"]);
    assert_eq!(shown.ok().stdout.trim(), "null");
}

//! The berth CLI's run/create flags for devices, CPU tuning, annotations, label files, the
//! user namespace, storage options and quiet pulls, judged by what the container gets and
//! what inspect shows (the docker CLI sends the same body).

mod common;

use common::{busybox_image, Daemon};

#[test]
fn devices_cpu_tuning_annotations_and_label_files() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let labels = d.data_root().join("../labels");
    std::fs::write(&labels, "# a comment\ntier=back\n\nowner=ops\n").expect("label file");
    let labels = labels.to_string_lossy().into_owned();
    let out = d.berth(&[
        "run",
        "--name",
        "tuned",
        "--network",
        "none",
        "--device",
        "/dev/null:/dev/mynull:rw",
        "--device-cgroup-rule",
        "c 1:5 rwm",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--cpuset-mems",
        "0",
        "--annotation",
        "org.example/a=b",
        "--label-file",
        &labels,
        "--label",
        "owner=dev",
        "bb:1",
        "sh",
        "-c",
        "ls /dev/mynull && head -c 3 /dev/zero | wc -c",
    ]);
    assert_eq!(out.ok().stdout, "/dev/mynull\n3\n");
    let inspect = d.berth(&[
        "inspect", "-f",
        "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpusetMems}} {{index .HostConfig.Annotations \"org.example/a\"}} {{.Config.Labels.tier}} {{.Config.Labels.owner}} {{range .HostConfig.Devices}}{{.PathOnHost}}>{{.PathInContainer}}:{{.CgroupPermissions}}{{end}} {{index .HostConfig.DeviceCgroupRules 0}}",
        "tuned",
    ]);
    assert_eq!(
        inspect.ok().stdout.trim(),
        "100000 50000 0 b back dev /dev/null>/dev/mynull:rw c 1:5 rwm"
    );
    // What berth lacks is refused by the daemon, naming it; bad values by the CLI.
    d.berth(&["run", "--userns", "private", "bb:1", "true"])
        .failed_with("UsernsMode");
    d.berth(&["run", "--storage-opt", "size=1G", "bb:1", "true"])
        .failed_with("StorageOpt");
    d.berth(&["run", "--device", "/dev/null:rr", "bb:1", "true"])
        .failed_with("bad format for path: rr");
    d.berth(&["run", "--device-cgroup-rule", "q 1:5 rwm", "bb:1", "true"])
        .failed_with("invalid device cgroup format 'q 1:5 rwm'");
    d.berth(&["run", "--volume-driver", "nfs", "bb:1", "true"])
        .failed_with("nfs");
    // -q: a pull of a missing image says nothing but its failure.
    let loud = d.berth(&["run", "127.0.0.1:1/nope:1", "true"]);
    assert!(
        loud.failed().stderr.contains("Unable to find image"),
        "{}",
        loud.stderr
    );
    let quiet = d.berth(&["run", "-q", "127.0.0.1:1/nope:1", "true"]);
    assert!(
        !quiet.failed().stderr.contains("Unable to find image"),
        "{}",
        quiet.stderr
    );
    assert_eq!(d.berth(&["ps", "-aq"]).ok().stdout.lines().count(), 1);
    // -a: only the streams named reach this command.
    let script = "echo out; echo err >&2";
    let only_out = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-a",
        "stdout",
        "bb:1",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(
        (only_out.ok().stdout.as_str(), only_out.stderr.as_str()),
        ("out\n", "")
    );
    let only_err = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-a",
        "STDERR",
        "bb:1",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(
        (only_err.ok().stdout.as_str(), only_err.stderr.as_str()),
        ("", "err\n")
    );
    d.berth(&["run", "-d", "-a", "stdout", "bb:1", "true"])
        .failed_with("cannot specify both --attach and --detach");
    d.berth(&["run", "-a", "stdlog", "bb:1", "true"])
        .failed_with("valid streams are STDIN, STDOUT and STDERR");

    // rm --link of a container's own name: dockerd's refusal; the container stays.
    d.docker(&["rm", "--link", "tuned"])
        .failed_with("cannot remove the default link name");
    d.berth(&["rm", "tuned"]).ok();
}

//! A build's options for its RUN steps' containers (memory, CPU, shm size, ulimits, extra
//! hosts, cgroup parent), from the docker CLI and the berth CLI, as dockerd's legacy builder
//! gives them; what dockerd refuses on Linux is refused with its words.

mod common;

use common::{busybox_image, Daemon};

/// What a RUN step sees, written into the image.
const DOCKERFILE: &str = "FROM bb:1\n\
RUN (grep db /etc/hosts | tr -s ' \\t' ' '; df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2; \
ulimit -n; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us) > /facts\n";

const FACTS: &str = "10.9.8.7 db\n16384\n512\n67108864\n512\n50000\n";

#[test]
fn run_steps_get_the_builds_resources_from_both_clis() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).expect("Dockerfile");
    let ctx = ctx.to_string_lossy().into_owned();
    let flags = [
        "--network",
        "none",
        "--memory",
        "64m",
        "--cpu-shares",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--shm-size",
        "16m",
        "--ulimit",
        "nofile=512:1024",
        "--add-host",
        "db:10.9.8.7",
        "--no-cache",
    ];
    let mut docker_args = vec!["build", "-t", "facts:docker"];
    docker_args.extend(flags);
    docker_args.push(&ctx);
    d.docker(&docker_args).ok();
    let mut berth_args = vec!["build", "-t", "facts:berth"];
    berth_args.extend(flags);
    berth_args.push(&ctx);
    d.berth(&berth_args).ok();
    for image in ["facts:docker", "facts:berth"] {
        let out = d.docker(&["run", "--rm", "--network", "none", image, "cat", "/facts"]);
        assert_eq!(out.ok().stdout, FACTS, "{image}");
    }
    d.docker(&["build", "--security-opt", "seccomp=unconfined", &ctx])
        .failed_with("does not support setting security options on build");
    d.berth(&["build", "--ulimit", "nofile", &ctx]).failed();
}

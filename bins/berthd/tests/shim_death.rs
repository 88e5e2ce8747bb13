//! Nothing of a container outlives its record: a berth-shim killed with SIGKILL (while
//! berthd runs, or while it is down) takes its container's processes, cgroups and runtime
//! state with it; a start of berthd ends containers the runtime still holds without a
//! record; a start SIGKILL interrupted does not keep its overlay mounted; a stale pid file
//! naming a zombie or another program does not block berthd.
//!
//! Zombies are never counted as running: this host's PID 1 does not reap, so a process
//! orphaned to it stays a zombie whatever berth does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// One process, by pid and start time (a pid alone may be reused meanwhile).
#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: i32,
    start: u64,
}

/// State letter and start time of `pid`, from /proc/PID/stat.
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl Proc {
    fn of(pid: i32) -> Option<Proc> {
        stat(pid).map(|(_, start)| Proc { pid, start })
    }

    /// The same process, not yet reaped (running or a zombie).
    fn exists(&self) -> bool {
        stat(self.pid).is_some_and(|(_, start)| start == self.start)
    }

    /// The same process, and not a zombie.
    fn running(&self) -> bool {
        stat(self.pid)
            .is_some_and(|(state, start)| start == self.start && !matches!(state, 'Z' | 'X'))
    }
}

/// The container's cgroup directories in every hierarchy (its cgroupsPath is /berth-<id>).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let name = format!("berth-{id}");
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join(&name)];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(entries.flatten().map(|e| e.path().join(&name)));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// Every process in the container's cgroups.
fn container_procs(id: &str) -> Vec<Proc> {
    let mut pids: Vec<i32> = cgroup_dirs(id)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter().filter_map(Proc::of).collect()
}

/// The berth-shim processes serving container `id` (a zombie's cmdline is empty: not listed).
fn shims_of(id: &str) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| {
            let pid: i32 = p.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(p.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline);
            (text.contains("berth-shim") && text.contains(id)).then_some(pid)
        })
        .collect()
}

fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A runtime binary as berthd finds it: beside berthd, else on PATH.
fn runtime_binary(name: &str) -> PathBuf {
    let beside = Path::new(BERTHD).with_file_name(name);
    if beside.exists() {
        return beside;
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} is not installed"))
}

/// Ends what a failing test would leave behind: the container in the runtime, then any of
/// its processes still running (by pid and start time).
struct Leftovers {
    runtime: PathBuf,
    root: PathBuf,
    id: String,
    procs: Vec<Proc>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let _ = Command::new(&self.runtime)
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .output();
        for p in self.procs.iter().filter(|p| p.running()) {
            sigkill(p.pid);
        }
    }
}

/// A running container of two processes (its init and a child) with `runtime`.
fn run_sleeper(d: &Daemon, runtime: &str) -> (String, Vec<Proc>, Leftovers) {
    run_sleeper_with(d, runtime, runtime_binary(runtime))
}

/// As `run_sleeper`, with a runtime added by `--add-runtime NAME=BINARY`.
fn run_sleeper_with(d: &Daemon, runtime: &str, binary: PathBuf) -> (String, Vec<Proc>, Leftovers) {
    let id = d
        .docker(&[
            "run",
            "-d",
            "--runtime",
            runtime,
            "--network",
            "none",
            "bb:1",
            "sh",
            "-c",
            "sleep 600 & exec sleep 601",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let mut procs = Vec::new();
    assert!(
        wait_for(|| {
            procs = container_procs(&id);
            procs.len() >= 2
        }),
        "the container's processes are not in its cgroup: {procs:?}"
    );
    let leftovers = Leftovers {
        runtime: binary,
        root: d.exec_root().join("runtime").join(runtime),
        id: id.clone(),
        procs: procs.clone(),
    };
    (id, procs, leftovers)
}

fn status(d: &Daemon, id: &str) -> String {
    d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id])
        .ok()
        .stdout
        .trim()
        .to_string()
}

/// The one shim of `id`, killed with SIGKILL.
fn kill_shim(id: &str) {
    let shims = shims_of(id);
    assert_eq!(shims.len(), 1, "the shims of {id}: {shims:?}");
    sigkill(shims[0]);
    assert!(wait_for(|| shims_of(id).is_empty()), "the shim survived");
}

/// None of the container's processes runs, its cgroups and runtime state are gone.
fn assert_ended(d: &Daemon, runtime: &str, id: &str, procs: &[Proc]) {
    assert!(
        wait_for(|| procs.iter().all(|p| !p.running())),
        "the container's processes still run: {:?}",
        procs.iter().filter(|p| p.running()).collect::<Vec<_>>()
    );
    assert!(
        wait_for(|| cgroup_dirs(id).is_empty()),
        "cgroups left: {:?}",
        cgroup_dirs(id)
    );
    let state = d.exec_root().join("runtime").join(runtime).join(id);
    assert!(
        wait_for(|| !state.exists()),
        "the runtime still holds the container: {}",
        state.display()
    );
}

/// The container's root filesystem is not mounted in the mount namespace of `pid`.
fn assert_unmounted(pid: i32, id: &str) {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    assert!(
        !info.contains(&format!("{id}/rootfs")),
        "the rootfs of {id} is still mounted"
    );
}

/// Shim killed while berthd runs: berthd ends the container through the runtime, and
/// reaps its init (reparented to berthd, a subreaper), so not even a zombie is left.
fn shim_killed_while_berthd_runs(runtime: &str) {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    let (id, procs, _leftovers) = run_sleeper(&d, runtime);
    kill_shim(&id);
    assert!(
        wait_for(|| status(&d, &id).starts_with("exited")),
        "{}",
        status(&d, &id)
    );
    assert_ended(&d, runtime, &id, &procs);
    assert!(
        wait_for(|| procs.iter().all(|p| !p.exists())),
        "not reaped: {:?}",
        procs.iter().filter(|p| p.exists()).collect::<Vec<_>>()
    );
    assert_eq!(status(&d, &id), "exited 137");
    d.docker(&["rm", "-f", &id]).ok();
    assert_ended(&d, runtime, &id, &procs);
    assert_unmounted(d.pid(), &id);
    d.kill();
    d.spawn(&[]);
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout.trim(), "");
    assert_ended(&d, runtime, &id, &procs);
}

#[test]
fn a_killed_shim_takes_its_container_with_it() {
    shim_killed_while_berthd_runs("berth-runtime");
}

#[test]
fn a_killed_shim_takes_its_runc_container_with_it() {
    shim_killed_while_berthd_runs("runc");
}

/// The parent of `pid`, from /proc/PID/stat.
fn parent(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// berthd is a subreaper: what a dead shim leaves (here a process its runtime left in the
/// background) becomes berthd's child, and berthd reaps it when it ends.
#[test]
fn berthd_reaps_what_a_dead_shim_leaves() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    let runtime = runtime_binary("berth-runtime");
    let wrapper = d.dir.path().join("leaving-runtime");
    let left = d.dir.path().join("left.pid");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" create \"*) sleep 60 </dev/null >/dev/null 2>&1 & echo $! > {};; esac\nexec {} \"$@\"\n",
            left.display(),
            runtime.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let flag = format!("leaving={}", wrapper.display());
    d.kill();
    d.spawn(&["--add-runtime", &flag]);
    let (id, procs, _leftovers) = run_sleeper_with(&d, "leaving", wrapper.clone());
    let pid: i32 = std::fs::read_to_string(&left)
        .expect("the runtime's background process")
        .trim()
        .parse()
        .expect("pid");
    let background = Proc::of(pid).expect("running");
    let _background = Leftovers {
        runtime: runtime.clone(),
        root: d.dir.path().join("none"),
        id: String::new(),
        procs: vec![background],
    };
    kill_shim(&id);
    assert_ended(&d, "leaving", &id, &procs);
    assert!(
        wait_for(|| parent(pid) == Some(d.pid())),
        "the dead shim's process went to {:?}, not to berthd ({})",
        parent(pid),
        d.pid()
    );
    sigkill(pid);
    assert!(
        wait_for(|| !background.exists()),
        "berthd did not reap its orphan"
    );
    d.docker(&["rm", "-f", &id]).ok();
}

/// Shims killed while berthd is down: the next start ends their containers (one with a
/// record, one whose record is gone); a shim it adopted and that is killed afterwards
/// takes its container with it too.
fn shims_killed_while_berthd_is_down(runtime: &str) {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    let (orphan, orphan_procs, _l1) = run_sleeper(&d, runtime);
    let (unrecorded, unrecorded_procs, _l2) = run_sleeper(&d, runtime);
    let (adopted, adopted_procs, _l3) = run_sleeper(&d, runtime);
    d.kill();
    kill_shim(&orphan);
    kill_shim(&unrecorded);
    // As an older berthd's `rm -f` of a container whose shim was dead left it.
    std::fs::remove_dir_all(d.data_root().join("containers").join(&unrecorded))
        .expect("remove the record");
    assert!(
        orphan_procs
            .iter()
            .chain(&unrecorded_procs)
            .all(Proc::running),
        "the containers run on without their shims until berthd is back"
    );
    d.spawn(&[]);
    assert_ended(&d, runtime, &orphan, &orphan_procs);
    assert_eq!(status(&d, &orphan), "exited 137");
    assert_ended(&d, runtime, &unrecorded, &unrecorded_procs);
    assert_eq!(status(&d, &adopted), "running 0");
    assert!(adopted_procs.iter().all(Proc::running));
    kill_shim(&adopted);
    assert!(
        wait_for(|| status(&d, &adopted).starts_with("exited")),
        "{}",
        status(&d, &adopted)
    );
    assert_ended(&d, runtime, &adopted, &adopted_procs);
    d.docker(&["rm", "-f", &orphan, &adopted]).ok();
    d.kill();
    d.spawn(&[]);
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout.trim(), "");
    for (id, procs) in [
        (&orphan, &orphan_procs),
        (&unrecorded, &unrecorded_procs),
        (&adopted, &adopted_procs),
    ] {
        assert_ended(&d, runtime, id, procs);
    }
}

#[test]
fn shims_killed_while_berthd_is_down_are_found_at_its_start() {
    shims_killed_while_berthd_is_down("berth-runtime");
}

#[test]
fn runc_shims_killed_while_berthd_is_down_are_found_at_its_start() {
    shims_killed_while_berthd_is_down("runc");
}

/// berthd killed while a start waits for the runtime's create: the restarted berthd
/// unmounts the overlay of the container that never ran (it was kept until `rm`).
#[test]
fn a_start_sigkill_interrupted_does_not_keep_the_overlay_mounted() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    // A runtime whose create takes a second, so that the kill lands inside the start.
    let flag = slow_runtime_flag(&d);
    // In the test's own mount namespace: the mounts outlive the daemon, as on a host.
    d.kill();
    d.private_mounts = false;
    d.spawn(&["--add-runtime", &flag]);
    let id = d
        .docker(&[
            "create",
            "--runtime",
            "slow",
            "--network",
            "none",
            "bb:1",
            "sleep",
            "60",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let mut start = Command::new("docker")
        .args(["start", &id])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.client_config())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker start");
    assert!(
        wait_for(|| !shims_of(&id).is_empty()),
        "no shim was started"
    );
    d.kill();
    let _ = start.kill();
    let _ = start.wait();
    let mountinfo = || std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(
        mountinfo().contains(&format!("{id}/rootfs")),
        "the start had mounted the overlay"
    );
    assert!(
        wait_for(|| shims_of(&id).is_empty()),
        "the shim of the unstarted container outlived its daemon"
    );
    d.spawn(&["--add-runtime", &flag]);
    assert_ne!(status(&d, &id), "running 0");
    assert_unmounted(std::process::id() as i32, &id);
    d.docker(&["start", &id]).ok();
    assert_eq!(status(&d, &id), "running 0");
    d.docker(&["rm", "-f", &id]).ok();
    assert!(wait_for(|| shims_of(&id).is_empty()));
    assert_unmounted(std::process::id() as i32, &id);
}

/// A pid file naming a zombie (a berthd SIGKILLed under a parent that does not reap) or a
/// live process that is not a berthd (its pid reused) is stale; one naming a running
/// berthd still refuses the start.
#[test]
fn a_stale_pid_file_does_not_block_the_start() {
    let mut d = Daemon::start_unspawned();
    let pidfile = d.dir.path().join("berthd.pid");
    let pidfile_flag = pidfile.display().to_string();
    // A zombie: this test's child, exited and not waited for yet.
    let mut zombie = Command::new("true").spawn().expect("true");
    let zpid = zombie.id() as i32;
    assert!(wait_for(|| stat(zpid).is_some_and(|(s, _)| s == 'Z')));
    std::fs::write(&pidfile, format!("{zpid}\n")).expect("pid file");
    d.spawn(&["--pidfile", &pidfile_flag]);
    d.stop();
    let _ = zombie.wait();
    // A live process that is not a berthd.
    let mut other = Command::new("sleep").arg("60").spawn().expect("sleep");
    std::fs::write(&pidfile, format!("{}\n", other.id())).expect("pid file");
    d.spawn(&["--pidfile", &pidfile_flag]);
    let _ = other.kill();
    let _ = other.wait();
    // A running berthd.
    let mut second = Command::new(BERTHD)
        .arg("--config-file")
        .arg(d.dir.path().join("daemon.json"))
        .arg("-H")
        .arg(format!(
            "unix://{}",
            d.dir.path().join("second.sock").display()
        ))
        .arg("--data-root")
        .arg(d.dir.path().join("data2"))
        .arg("--exec-root")
        .arg(d.dir.path().join("run2"))
        .arg("--pidfile")
        .arg(&pidfile)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("berthd");
    let refused = wait_for(|| second.try_wait().is_ok_and(|s| s.is_some()));
    if !refused {
        let _ = second.kill();
    }
    let out = second.wait_with_output().expect("berthd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(refused && !out.status.success(), "{err}");
    assert!(err.contains("already running"), "{err}");
}

//! The container start path's cost (issue 21): berth-runtime started from berthd's one
//! sealed copy of it instead of copying itself at each create (CVE-2019-5736 defence kept).

mod common;

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::{busybox_image, wait_for, Daemon};

/// The descriptors of `pid` that are memfds named berth-runtime: their /proc paths.
fn sealed_runtime_fds(pid: i32) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read_link(p)
                .is_ok_and(|l| l.to_string_lossy().starts_with("/memfd:berth-runtime"))
        })
        .collect()
}

/// The pid of the shim of container `id`.
fn shim_of(id: &str) -> i32 {
    let found = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.first().is_some_and(|a| a.ends_with(b"berth-shim"))
                    && args
                        .windows(2)
                        .any(|w| w[0] == b"--id" && w[1] == id.as_bytes())
            })
        });
    found.unwrap_or_else(|| panic!("no shim for {id}"))
}

fn run_joined(d: &Daemon, name: &str) -> String {
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--pid",
        "container:holder",
        "bb:1",
        "sleep",
        "600",
    ]);
    out.ok();
    out.stdout.trim().to_string()
}

/// strace of berthd and everything it starts, attached (every thread) when this returns.
struct Trace {
    child: Child,
    out: PathBuf,
}

impl Trace {
    fn attach(pid: i32, out: PathBuf) -> Trace {
        let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("tasks")
            .count();
        let err = out.with_extension("err");
        let mut child = Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-v",
                "-s",
                "256",
                "-e",
                "trace=memfd_create,execve",
                "-o",
            ])
            .arg(&out)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).expect("strace stderr"))
            .spawn()
            .expect("strace");
        // Without -qq strace says when it attached; with it, /proc says it: every thread
        // of berthd traced (a thread that ended meanwhile is not waited for).
        let traced = |t: &std::fs::DirEntry| {
            std::fs::read_to_string(t.path().join("status")).is_ok_and(|s| {
                s.lines()
                    .any(|l| l.starts_with("TracerPid:") && !l.ends_with("\t0"))
            })
        };
        let all = wait_for(|| {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|tasks| tasks.flatten().all(|t| traced(&t)))
                .unwrap_or(false)
        });
        if !all {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strace did not attach to all {threads} threads of berthd");
        }
        Trace { child, out }
    }

    /// Detach and return the trace.
    fn finish(mut self) -> String {
        // SIGINT: strace detaches from its tracees and ends.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = self.child.wait();
        std::fs::read_to_string(&self.out).expect("trace")
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A container that joins another's pid namespace (as every CRI container joins its pod's)
/// is where berth-runtime must run from a sealed copy of itself. berthd makes that copy once
/// and every shim starts the runtime from it: sealed against any write, the same copy for
/// all, and no runtime copies itself again.
#[test]
fn the_runtime_runs_from_the_daemons_one_sealed_copy() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&["run", "-d", "--name", "holder", "bb:1", "sleep", "600"])
        .ok();
    let first = run_joined(&d, "first");

    // One copy in berthd, the one the shims hold.
    let daemon_fds = sealed_runtime_fds(d.pid());
    assert_eq!(
        daemon_fds.len(),
        1,
        "berthd's sealed copies: {daemon_fds:?}"
    );
    let copy = std::fs::metadata(&daemon_fds[0])
        .expect("stat the copy")
        .ino();
    let shim_copies: Vec<u64> = sealed_runtime_fds(shim_of(&first))
        .iter()
        .map(|p| std::fs::metadata(p).expect("stat").ino())
        .collect();
    assert_eq!(shim_copies, vec![copy]);

    // Immutable: sealed (write, grow, shrink, and the seals themselves), and a descriptor
    // opened for writing (as through /proc/<pid>/exe of a runtime run from it) writes nothing.
    let sealed = std::fs::File::open(&daemon_fds[0]).expect("open the copy");
    let seals =
        nix::fcntl::fcntl(sealed.as_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).expect("seals");
    let want = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    assert_eq!(seals & want, want, "seals {seals:#x}");
    let mut writable = std::fs::OpenOptions::new()
        .write(true)
        .open(&daemon_fds[0])
        .expect("open for writing");
    let err = writable
        .write_all(b"\x7fELF")
        .expect_err("a sealed copy takes no write");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    // (An open writable descriptor makes exec fail with ETXTBSY.)
    drop(writable);

    // The next joined container: the runtime is started from the copy and copies nothing.
    let trace = Trace::attach(d.pid(), d.dir.path().join("start.trace"));
    let second = run_joined(&d, "second");
    let trace = trace.finish();
    let runtime_runs = trace
        .lines()
        .filter(|l| {
            l.contains("execve(\"/proc/self/fd/4\"")
                && (l.contains("\"create\"") || l.contains("\"run\""))
        })
        .count();
    // A detached run: create and start in one runtime call (`run --detach`).
    assert_eq!(
        runtime_runs, 1,
        "one runtime create (or run) from the copy:\n{trace}"
    );
    let copies: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("memfd_create("))
        .collect();
    assert!(copies.is_empty(), "the start made memfds: {copies:?}");
    assert_eq!(
        sealed_runtime_fds(shim_of(&second))
            .iter()
            .map(|p| std::fs::metadata(p).expect("stat").ino())
            .collect::<Vec<_>>(),
        vec![copy]
    );
    // An exec (which always runs the runtime sealed) through the same copy.
    let out = d.docker(&["exec", "second", "echo", "in"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "in");
    d.docker(&["rm", "-f", "first", "second", "holder"]).ok();
}

/// crictl 1.29 against `d`'s CRI socket.
fn crictl(d: &Daemon, args: &[&str]) -> common::Out {
    let socket = format!("unix://{}", d.exec_root().join("cri.sock").display());
    let out = Command::new(common::crictl_binary())
        .args(["-r", &socket, "-i", &socket, "--timeout", "60s"])
        .args(args)
        .output()
        .expect("crictl");
    common::Out::from(out)
}

/// Whether `pid` has ended (gone, or a zombie nobody reaps).
fn ended(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

/// A CNI network of one plugin, `script` (a shell script; `{pids}` in it is the file
/// where it may note its processes' pids), and a berthd using it with a `timeout`-second
/// `cni-plugin-timeout`; the pod config `pod.json` for a pod named `name`.
struct OnePluginNetwork {
    dir: tempfile::TempDir,
    flags: Vec<String>,
    /// The cgroup parent of its pods, removed when this is dropped.
    _cgroups: common::CgroupParents,
}

impl OnePluginNetwork {
    fn new(name: &str, script: &str, timeout: u32) -> (OnePluginNetwork, Daemon) {
        let dir = tempfile::tempdir().expect("cni dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let pids = dir.path().join("pids");
        let script = script.replace("{pids}", &pids.to_string_lossy());
        std::fs::write(bin.join(name), script).expect("plugin");
        std::fs::set_permissions(
            bin.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let conf = serde_json::json!({
            "cniVersion": "1.0.0", "name": name, "plugins": [{"type": name}],
        });
        std::fs::write(dir.path().join("10-net.conflist"), conf.to_string()).expect("conflist");
        let pod = serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "attempt": 0},
            "linux": {},
        });
        std::fs::write(dir.path().join("pod.json"), pod.to_string()).expect("pod config");

        let mut d = Daemon::start_unspawned();
        d.private_mounts = true;
        std::fs::write(
            d.dir.path().join("daemon.json"),
            format!(r#"{{"cni-plugin-timeout": {timeout}}}"#),
        )
        .expect("daemon.json");
        let cgroup = format!("/berth-test-{name}{}", std::process::id());
        let flags = vec![
            "--cni-conf-dir".to_string(),
            dir.path().to_string_lossy().into_owned(),
            "--cni-bin-dir".to_string(),
            bin.to_string_lossy().into_owned(),
            "--cgroup-parent".to_string(),
            cgroup.clone(),
        ];
        let net = OnePluginNetwork {
            dir,
            flags,
            _cgroups: common::CgroupParents(vec![cgroup]),
        };
        net.spawn(&mut d);
        (net, d)
    }

    fn spawn(&self, d: &mut Daemon) {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        d.spawn(&flags);
    }

    fn pod(&self) -> String {
        self.dir
            .path()
            .join("pod.json")
            .to_string_lossy()
            .into_owned()
    }

    /// The pids the plugin noted.
    fn pids(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("pids")).ok()
    }
}

/// A CNI plugin that never answers ADD no longer blocks RunPodSandbox: after the
/// configured `cni-plugin-timeout` (daemon.json) the plugin and what it started are killed
/// and the call fails with DeadlineExceeded, leaving no pod.
#[test]
fn a_hung_cni_plugin_is_killed_at_its_timeout() {
    let (net, d) = OnePluginNetwork::new(
        "hang",
        "#!/bin/sh\necho $$ >> {pids}\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n\
         sleep 1000 &\necho $! >> {pids}\nwait\n",
        2,
    );
    let out = crictl(&d, &["runp", &net.pod()]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains("DeadlineExceeded")
            && out.stderr.contains("hang did not finish ADD within 2s"),
        "{}",
        out.stderr
    );
    let started = net.pids().expect("the plugin ran");
    // The ADD (its shell and its sleep), then DEL after the failure.
    assert!(started.lines().count() >= 3, "{started}");
    for pid in started.lines() {
        assert!(ended(pid), "plugin process {pid} still runs");
    }
    let pods = crictl(&d, &["pods", "-q"]);
    pods.ok();
    assert_eq!(pods.stdout.trim(), "", "a pod was left");
    drop(d);
    drop(net);
}

/// After berthd is killed and started again, a restored pod's network is checked (CNI
/// CHECK) beside the served APIs: a plugin that never answers CHECK holds up neither the
/// Docker API nor the CRI, and at the `cni-plugin-timeout` the plugin and what it started
/// are killed and the pod is NotReady.
#[test]
fn a_hung_check_at_a_restart_holds_up_nothing_and_leaves_the_pod_not_ready() {
    // ADD answers an address; CHECK hangs (its shell and a sleep); DEL succeeds.
    let (net, mut d) = OnePluginNetwork::new(
        "hangcheck",
        "#!/bin/sh\n\
         case \"$CNI_COMMAND\" in\n\
         ADD) echo '{\"cniVersion\": \"1.0.0\", \"ips\": [{\"address\": \"10.99.0.2/24\"}]}' ;;\n\
         CHECK) echo $$ >> {pids}; sleep 1000 & echo $! >> {pids}; wait ;;\n\
         esac\n",
        6,
    );
    let id = crictl(&d, &["runp", &net.pod()]);
    let id = id.ok().stdout.trim().to_string();
    let state = |d: &Daemon| {
        let out = crictl(d, &["inspectp", "-o", "json", &id]);
        let v: serde_json::Value = serde_json::from_str(&out.ok().stdout).expect("inspectp json");
        v["status"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(state(&d), "SANDBOX_READY");

    d.kill();
    net.spawn(&mut d);
    // Both APIs answer while the CHECK hangs (the plugin has started it, not yet ended).
    let socket = d.exec_root().join("cri.sock");
    assert!(
        common::wait_for(|| socket.exists() && net.pids().is_some()),
        "no CRI socket, or no CHECK: {}",
        d.log()
    );
    d.docker(&["version"]).ok();
    let hung = net.pids().expect("pids");
    assert!(
        hung.lines().any(|pid| !ended(pid)),
        "the CHECK ended before the APIs were asked: {hung}"
    );
    assert_eq!(
        state(&d),
        "SANDBOX_READY",
        "NotReady before the check ended"
    );
    // At the timeout: killed, and the pod NotReady.
    assert!(
        common::wait_for(|| state(&d) == "SANDBOX_NOTREADY"),
        "the pod stayed ready: {}",
        d.log()
    );
    let started = net.pids().expect("pids");
    assert!(started.lines().count() >= 2, "{started}");
    for pid in started.lines() {
        assert!(
            common::wait_for(|| ended(pid)),
            "plugin process {pid} still runs"
        );
    }
    crictl(&d, &["stopp", &id]).ok();
    crictl(&d, &["rmp", &id]).ok();
    drop(d);
    drop(net);
}

//! Shared harness for berth-runtime's integration tests: a private state root and a
//! busybox bundle per test, commands whose output goes to files (init inherits stdio, so a
//! pipe would never see EOF), and reaping of orphaned inits by pid.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// Orphaned inits are reparented to this test process, which reaps them by pid.
pub fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        assert!(
            nix::unistd::geteuid().is_root(),
            "berth-runtime's integration tests run as root"
        );
        nix::sys::prctl::set_child_subreaper(true).expect("become subreaper");
    });
}

/// The busybox rootfs template, built once under cargo's target/tmp (atomically: test
/// binaries run in parallel) and copied into each test's bundle.
fn template() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox-rootfs");
        if dir.join("bin/busybox").exists() {
            return dir;
        }
        let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
        let status = Command::new("sh")
            .arg(script)
            .arg(&tmp)
            .status()
            .expect("run busybox-rootfs.sh");
        assert!(status.success(), "busybox-rootfs.sh failed");
        if fs::rename(&tmp, &dir).is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        dir
    })
}

/// The result of one runtime command.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }
    pub fn failed(&self) -> &Self {
        assert_ne!(self.code, 0, "command unexpectedly succeeded: {self:?}");
        assert!(
            !self.stderr.trim().is_empty(),
            "failure without a message: {self:?}"
        );
        self
    }
}

/// A test container world: state root, bundle, rootfs.
pub struct World {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl World {
    /// A bundle whose process runs `sh -c script`, with no terminal.
    pub fn new(script: &str) -> Self {
        setup();
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("cp")
            .arg("-a")
            .arg(template())
            .arg(dir.path().join("rootfs"))
            .status()
            .expect("cp");
        assert!(status.success());
        let out = Command::new(BIN)
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .output()
            .expect("spec");
        assert!(out.status.success(), "spec failed: {out:?}");
        let mut config: Value =
            serde_json::from_slice(&fs::read(dir.path().join("config.json")).expect("read config"))
                .expect("parse");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["sh", "-c", script]);
        let world = World { dir, config };
        world.save();
        world
    }

    pub fn bundle(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn save(&self) {
        fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("json"),
        )
        .expect("write config");
    }

    /// Edit the config and save it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        f(&mut self.config);
        self.save();
    }

    /// Give the container a user namespace mapping 0..65536 to host 100000.., with the
    /// rootfs owned by the mapped root, as an image unpacked for this mapping would be.
    pub fn map_users(&mut self) {
        let status = Command::new("chown")
            .args(["-hR", "100000:100000"])
            .arg(self.rootfs())
            .status()
            .expect("chown");
        assert!(status.success(), "chown the rootfs");
        self.edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        });
    }

    /// Run berth-runtime with this world's --root (or `runtime` for comparisons).
    pub fn cmd_with(&self, runtime: &str, root: &Path, args: &[&str]) -> Outcome {
        let out_path = self.dir.path().join(format!("out-{}", rand_suffix()));
        let err_path = self.dir.path().join(format!("err-{}", rand_suffix()));
        let status = Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(args)
            .current_dir(self.bundle())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).expect("out"))
            .stderr(fs::File::create(&err_path).expect("err"))
            .status()
            .expect("spawn runtime");
        let read = |p: &Path| {
            let s = fs::read_to_string(p).unwrap_or_default();
            let _ = fs::remove_file(p);
            s
        };
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: read(&out_path),
            stderr: read(&err_path),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Outcome {
        self.cmd_with(BIN, &self.root(), args)
    }

    /// `run` the bundle in the foreground; returns the outcome.
    pub fn run(&self, id: &str) -> Outcome {
        self.cmd(&["run", "--bundle", self.bundle().to_str().expect("utf8"), id])
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.cmd(&["state", id]);
        out.ok();
        serde_json::from_str(&out.stdout).expect("state json")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The state directory of the world holds no container.
    pub fn assert_no_state(&self) {
        let root = self.root();
        // "@cache" holds compiled seccomp programs, not containers.
        let left: Vec<_> = fs::read_dir(&root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name())
                    .filter(|n| n != "@cache")
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "state left behind in {}: {left:?}",
            root.display()
        );
    }
}

impl Drop for World {
    /// A test that failed half-way must not leave containers running: force-delete every
    /// container in this world's private root (which also removes its cgroup) and reap its
    /// init, which was reparented to this test process.
    fn drop(&mut self) {
        let Ok(entries) = fs::read_dir(self.root()) else {
            return;
        };
        for entry in entries.flatten() {
            let state: Option<Value> = fs::read(entry.path().join("state.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let id = entry.file_name().to_string_lossy().into_owned();
            let _ = self.cmd(&["delete", "--force", &id]);
            if let Some(pid) = state.and_then(|s| s["pid"].as_i64()) {
                reap_if_exited(pid as i32);
            }
        }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Wait for process `pid` (an orphaned init reparented to us) to exit; returns its status.
pub fn reap(pid: i32) -> nix::sys::wait::WaitStatus {
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).expect("waitpid")
}

/// Reap `pid` if it has exited (or is not our child); never blocks.
pub fn reap_if_exited(pid: i32) {
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

/// Poll `f` until it is true or `secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Write an executable script.
pub fn script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Processes whose command line mentions `needle` (to check nothing was left running).
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").expect("proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// A wrapper that runs crun in a private mount namespace without the unified cgroup
/// mount: crun 1.8 refuses this hybrid host otherwise (MACHINE-NOTES.md).
pub fn crun_wrapper(world: &World) -> PathBuf {
    let path = world.dir.path().join("crun-private");
    script(
        &path,
        "exec unshare --mount --propagation private sh -c \
         'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec crun \"$@\"' crun \"$@\"",
    );
    path
}

/// `crun run` of this world's bundle (see [`crun_wrapper`]), with its own state root.
pub fn crun_run(world: &World, id: &str) -> Outcome {
    let wrapper = crun_wrapper(world);
    let root = world.dir.path().join("crun-state");
    let bundle = world.bundle().to_str().expect("utf8").to_string();
    world.cmd_with(
        wrapper.to_str().expect("utf8"),
        &root,
        &["run", "--bundle", &bundle, id],
    )
}

impl World {
    /// Run `command` in the bundle with its output to files (as `cmd_with` does).
    pub fn run_command(&self, mut command: Command) -> Outcome {
        let out_path = self.dir.path().join(format!("out-{}", rand_suffix()));
        let err_path = self.dir.path().join(format!("err-{}", rand_suffix()));
        let status = command
            .current_dir(self.bundle())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).expect("out"))
            .stderr(fs::File::create(&err_path).expect("err"))
            .status()
            .expect("spawn");
        let read = |p: &Path| {
            let s = fs::read_to_string(p).unwrap_or_default();
            let _ = fs::remove_file(p);
            s
        };
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: read(&out_path),
            stderr: read(&err_path),
        }
    }

    /// Run crun with `root` as its --root. crun 1.8 refuses hybrid cgroup hosts, so it runs
    /// in a private mount namespace without /sys/fs/cgroup/unified (MACHINE-NOTES.md).
    pub fn crun(&self, root: &Path, args: &[&str]) -> Outcome {
        let mut command = Command::new("unshare");
        command
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("umount /sys/fs/cgroup/unified 2>/dev/null; exec crun \"$@\"")
            .args(["sh", "--root"])
            .arg(root)
            .args(args);
        self.run_command(command)
    }
}

/// Whether `program` is on PATH (peers are compared with where they are installed).
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Fail if an strace of the runtime (`-e trace=openat`) shows a process moved into a
/// cgroup: a `cgroup.procs` opened for writing (its write waits for an RCU grace period).
pub fn assert_no_cgroup_procs_write(trace_file: &Path) {
    let trace = fs::read_to_string(trace_file).expect("trace");
    let moves: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("cgroup.procs") && l.contains("O_WRONLY"))
        .collect();
    assert!(
        moves.is_empty(),
        "the runtime moved a process into the cgroup:\n{}",
        moves.join("\n")
    );
}

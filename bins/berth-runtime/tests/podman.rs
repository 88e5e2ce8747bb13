//! podman driving berth-runtime as its OCI runtime (`podman --runtime`), every podman path
//! private to the test: root, runroot, tmpdir, locks; no network (`--network none`).
//! Podman's default seccomp profile applies.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;

const IMAGE: &str = "localhost/berth-busybox:test";

struct Podman {
    world: World,
    runtime: String,
    /// Each test's own cgroup parent: podman puts the containers and conmon under it.
    cgroup_parent: String,
}

impl Podman {
    fn new() -> Self {
        Self::with_runtime(BIN)
    }

    fn with_runtime(runtime: &str) -> Self {
        let world = World::new("true");
        let dir = world.dir.path().to_path_buf();
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = []\n[engine]\nlock_type = \"file\"\ntmp_dir = \"{}\"\n",
                dir.join("tmp").display()
            ),
        )
        .expect("containers.conf");
        let unique = dir
            .file_name()
            .map(|n| n.to_string_lossy().trim_start_matches('.').to_string())
            .unwrap_or_default();
        let podman = Podman {
            world,
            runtime: runtime.to_string(),
            cgroup_parent: format!("/berth-podman-test-{unique}"),
        };
        let tar = dir.join("rootfs.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(podman.world.rootfs())
            .args(["-cf"])
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(status.success());
        podman
            .run(&["import", tar.to_str().expect("utf8"), IMAGE])
            .ok();
        podman
    }

    fn path(&self, name: &str) -> PathBuf {
        self.world.dir.path().join(name)
    }

    /// The podman command line, as one shell-quoted string.
    fn command_line(&self, args: &[&str]) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let dir = |n: &str| q(&self.path(n).to_string_lossy());
        let mut line = format!(
            "export CONTAINERS_CONF={}; exec podman --root {} --runroot {} --tmpdir {} --cgroup-manager cgroupfs --events-backend none --runtime {}",
            dir("containers.conf"),
            dir("root"),
            dir("runroot"),
            dir("tmp"),
            q(&self.runtime)
        );
        for a in args {
            line.push(' ');
            line.push_str(&q(a));
        }
        line
    }

    /// A shell that runs `line` with /run and /var/lib replaced by this test's own
    /// directories, in a private mount namespace: podman writes state there (netavark's
    /// /run/containers, the blob cache in /var/lib/containers) whatever its flags say.
    fn command(&self, args: &[&str]) -> Command {
        for d in ["run", "varlib"] {
            std::fs::create_dir_all(self.path(d)).expect("mkdir");
        }
        let script = format!(
            "mount --bind '{}' /run && mount --bind '{}' /var/lib && {}",
            self.path("run").display(),
            self.path("varlib").display(),
            self.command_line(args)
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
        cmd
    }

    fn run(&self, args: &[&str]) -> Outcome {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(&["system", "reset", "--force"]);
        // podman (like runc) leaves the cgroup parents it made: remove ours, deepest first.
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let parent = h.path().join(self.cgroup_parent.trim_start_matches('/'));
            for child in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                if child.path().is_dir() {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
            let _ = std::fs::remove_dir(&parent);
        }
    }
}

impl Podman {
    /// `podman run` with this test's isolation flags, then `rest`.
    fn run_args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "run",
            "--network",
            "none",
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        args.extend_from_slice(rest);
        args
    }
}

#[test]
fn podman_run_rm_and_exit_status() {
    let p = Podman::new();
    let out = p.run(&p.run_args(&[
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo hello from berth; hostname; exit 3",
    ]));
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.starts_with("hello from berth\n"), "{out:?}");
    assert!(
        p.run(&["ps", "-aq"]).stdout.trim().is_empty(),
        "--rm left a container"
    );
}

#[test]
fn podman_detached_exec_logs_pause_stop_rm_with_limits() {
    let p = Podman::new();
    let args = p.run_args(&[
        "-d",
        "--name",
        "web",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cap-drop",
        "CHOWN",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do echo tick; sleep 0.2; done",
    ]);
    p.run(&args).ok();
    let out = p.run(&["exec", "web", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; grep CapBnd /proc/self/status"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..2], ["67108864", "50"], "{out:?}");
    let bnd =
        u64::from_str_radix(lines[2].split_whitespace().nth(1).expect("mask"), 16).expect("hex");
    assert_eq!(bnd & 1, 0, "CAP_CHOWN was not dropped");
    assert!(wait_until(5, || p
        .run(&["logs", "web"])
        .stdout
        .contains("tick")));
    p.run(&["pause", "web"]).ok();
    assert!(p
        .run(&["ps", "-a", "--format", "{{.Status}}"])
        .stdout
        .starts_with("Paused"));
    p.run(&["unpause", "web"]).ok();
    p.run(&["stop", "-t", "5", "web"]).ok();
    let status = p.run(&["ps", "-a", "--format", "{{.Status}}"]).stdout;
    assert!(status.starts_with("Exited (0)"), "{status}");
    p.run(&["rm", "web"]).ok();
}

#[test]
fn podman_run_interactive_terminal() {
    let p = Podman::new();
    let args = p.run_args(&["--rm", "-it", IMAGE, "sh", "-c", "tty; read x; echo got:$x"]);
    // `script` gives podman a terminal; the command runs from a file, so no quoting games.
    let cmd = p.command(&args);
    let mut line: Vec<String> = vec![cmd.get_program().to_string_lossy().into_owned()];
    line.extend(
        cmd.get_args()
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''"))),
    );
    let run_sh = p.path("run-it.sh");
    std::fs::write(&run_sh, line.join(" ")).expect("write");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(sleep 1; echo typed) | script -qec 'sh {}' /dev/null",
            run_sh.display()
        ))
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("got:typed"), "{text}");
}

#[test]
fn podman_default_seccomp_profile_behaves_as_under_runc() {
    let probe = "for t in 'unshare -U true' 'swapon /dev/null' 'nice -n -5 true' 'hostname x' 'chroot / true'; do \
                 sh -c \"$t\" >/dev/null 2>&1 && echo \"$t: ok\" || echo \"$t: refused\"; done; grep Seccomp: /proc/self/status";
    let outputs: Vec<String> = [BIN, "runc"]
        .iter()
        .map(|runtime| {
            let p = Podman::with_runtime(runtime);
            let out = p.run(&p.run_args(&["--rm", IMAGE, "sh", "-c", probe]));
            out.ok();
            out.stdout
        })
        .collect();
    assert!(
        outputs[0].contains("Seccomp:\t2"),
        "no filter: {}",
        outputs[0]
    );
    assert!(
        outputs[0].contains("swapon /dev/null: refused"),
        "{}",
        outputs[0]
    );
    assert_eq!(
        outputs[0], outputs[1],
        "berth-runtime and runc differ under podman's default profile"
    );
}

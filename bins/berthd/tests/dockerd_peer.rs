//! Archives exchanged with a real dockerd (Debian's docker.io, started privately in its own
//! mount namespace): what berth saves, dockerd loads with the same image id and layers; what
//! dockerd saves (the classic layout), berth loads.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Dockerd {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path();
        // Its mounts live and die with a private mount namespace.
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "dockerd"])
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", p.join("d.sock").display()))
            .arg("--pidfile")
            .arg(p.join("d.pid"))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver",
                "overlay2",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p.join("dockerd.log")).expect("log"))
            .spawn()
            .expect("dockerd (apt-get install docker.io)");
        let d = Dockerd { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while d.docker(&["version"]).code != 0 {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn docker(&self, args: &[&str]) -> Out {
        let p = self.dir.path();
        docker_at(&p.join("d.sock"), &p.join("cfg"), args, None)
    }
}

impl Drop for Dockerd {
    /// SIGTERM (dockerd stops its containerd), then anything still running from our exec
    /// root, found by its command line and killed by pid.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !matches!(self.child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let marker = self.dir.path().join("exec").display().to_string();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(n) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(n),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn layers(out: &Out) -> String {
    out.stdout.trim().to_string()
}

#[test]
fn archives_round_trip_with_a_real_dockerd() {
    let berth = Daemon::start();
    let dockerd = Dockerd::start();
    let tar = busybox_rootfs_tar(berth.dir.path());
    berth
        .docker(&[
            "import",
            "--change",
            "CMD [\"/bin/sh\"]",
            tar.to_str().expect("utf8"),
            "peer/bb:1",
        ])
        .ok();
    let id = berth
        .docker(&["images", "-q", "--no-trunc", "peer/bb:1"])
        .stdout
        .trim()
        .to_string();
    let want = layers(&berth.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        "peer/bb:1",
    ]));

    let ours = berth.dir.path().join("berth-save.tar");
    berth
        .docker(&["save", "-o", ours.to_str().expect("utf8"), "peer/bb:1"])
        .ok();
    let loaded = dockerd.docker(&["load", "-i", ours.to_str().expect("utf8")]);
    loaded.ok();
    assert!(loaded.stdout.contains("peer/bb:1"), "{}", loaded.stdout);
    assert_eq!(
        dockerd
            .docker(&["images", "-q", "--no-trunc", "peer/bb:1"])
            .stdout
            .trim(),
        id
    );
    assert_eq!(
        layers(&dockerd.docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            "peer/bb:1"
        ])),
        want
    );

    dockerd.docker(&["tag", "peer/bb:1", "from/dockerd:2"]).ok();
    let theirs = berth.dir.path().join("dockerd-save.tar");
    dockerd
        .docker(&[
            "save",
            "-o",
            theirs.to_str().expect("utf8"),
            "from/dockerd:2",
        ])
        .ok();
    berth.docker(&["rmi", "peer/bb:1"]).ok();
    berth
        .docker(&["load", "-i", theirs.to_str().expect("utf8")])
        .ok();
    assert_eq!(
        berth
            .docker(&["images", "-q", "--no-trunc", "from/dockerd:2"])
            .stdout
            .trim(),
        id
    );
    assert_eq!(
        layers(&berth.docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            "from/dockerd:2"
        ])),
        want
    );
}

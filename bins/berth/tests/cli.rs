//! The berth CLI against a private berthd: the image commands and their flags, formats and
//! errors, the same session the docker CLI tests drive.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// berthd from the same target directory (built on demand when this package is tested alone).
fn berthd() -> PathBuf {
    let dir = Path::new(BERTH).parent().expect("target dir");
    let path = dir.join("berthd");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "berthd"])
            .status()
            .expect("cargo build");
        assert!(ok.success(), "building berthd failed");
    }
    path
}

struct Env {
    dir: tempfile::TempDir,
    daemon: std::process::Child,
}

impl Env {
    fn start() -> Env {
        let dir = tempfile::tempdir().expect("tmp");
        let sock = dir.path().join("berth.sock");
        let daemon = Command::new(berthd())
            .args(["--config-file", "/dev/null", "-H"])
            .arg(format!("unix://{}", sock.display()))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("run"))
            .stderr(Stdio::null())
            .spawn()
            .expect("berthd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "berthd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Env { dir, daemon }
    }

    fn berth(&self, args: &[&str]) -> (i32, String, String) {
        self.berth_stdin(args, Stdio::null())
    }

    fn berth_stdin(&self, args: &[&str], stdin: Stdio) -> (i32, String, String) {
        let out = Command::new(BERTH)
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("berth.sock").display()
            ))
            .args(args)
            .stdin(stdin)
            .output()
            .expect("berth");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.berth(args);
        assert_eq!(code, 0, "berth {args:?}: {err}");
        out
    }

    fn fails(&self, args: &[&str], needle: &str) {
        let (code, _, err) = self.berth(args);
        assert_ne!(code, 0, "berth {args:?} succeeded");
        assert!(
            err.contains(needle),
            "berth {args:?}: expected {needle:?} in {err}"
        );
    }

    fn rootfs_tar(&self) -> PathBuf {
        let rootfs = self.dir.path().join("rootfs");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/busybox-rootfs.sh"
        );
        assert!(Command::new(script)
            .arg(&rootfs)
            .stdout(Stdio::null())
            .status()
            .expect("script")
            .success());
        let tar = self.dir.path().join("rootfs.tar");
        assert!(Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar")
            .success());
        tar
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = nix_kill(self.daemon.id());
        let _ = self.daemon.wait();
    }
}

fn nix_kill(pid: u32) -> std::io::Result<()> {
    // SAFETY: kill only sends a signal to our own child.
    let rc = unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn image_commands_end_to_end() {
    let env = Env::start();
    let tar = env.rootfs_tar();
    let tar_s = tar.to_str().expect("utf8");
    assert!(env.ok(&["version"]).contains("API version:  1.50"));
    assert!(env.ok(&["info"]).contains("Storage Driver: overlay2"));

    let id = env
        .ok(&[
            "import",
            "-c",
            "CMD [\"/bin/sh\"]",
            "-m",
            "first",
            tar_s,
            "bb:1",
        ])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let (code, _, err) = env.berth_stdin(
        &["import", "-", "stdin/img:2"],
        Stdio::from(std::fs::File::open(&tar).expect("tar")),
    );
    assert_eq!(code, 0, "{err}");
    env.ok(&["tag", "bb:1", "localhost:5000/x/y:v2"]);

    let table = env.ok(&["images"]);
    let header = table.lines().next().expect("header");
    let columns: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        columns,
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{table}"
    );
    assert_eq!(table.lines().count(), 4, "{table}");
    let names = env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["bb:1", "localhost:5000/x/y:v2", "stdin/img:2"]);
    assert_eq!(
        env.ok(&["images", "-q"]).lines().count(),
        2,
        "ids are listed once"
    );
    assert_eq!(
        env.ok(&[
            "images",
            "--filter",
            "reference=stdin/*",
            "--format",
            "{{.Tag}}"
        ])
        .trim(),
        "2"
    );
    assert_eq!(env.ok(&["images", "bb"]).lines().count(), 2);
    assert!(env
        .ok(&["images", "--digests"])
        .lines()
        .next()
        .expect("h")
        .contains("DIGEST"));
    assert!(env
        .ok(&["images", "--format", "json"])
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    env.fails(&["images", "--filter", "nope"], "bad format of filter");
    env.fails(&["images", "--format", "{{range .X}}"], "unexpected EOF");

    assert_eq!(
        env.ok(&[
            "inspect",
            "--format",
            "{{.Id}} {{json .Config.Cmd}}",
            "bb:1"
        ])
        .trim(),
        format!("{id} [\"/bin/sh\"]")
    );
    assert!(env.ok(&["image", "inspect", "bb:1"]).contains("\"RootFS\""));
    let history = env.ok(&["history", "bb:1"]);
    assert!(history.contains("first"), "{history}");

    let saved = env.dir.path().join("saved.tar");
    env.ok(&[
        "save",
        "-o",
        saved.to_str().expect("utf8"),
        "bb:1",
        "localhost:5000/x/y:v2",
    ]);
    let untag = env.ok(&["rmi", "localhost:5000/x/y:v2"]);
    assert_eq!(untag.trim(), "Untagged: localhost:5000/x/y:v2");
    env.fails(&["rmi", "missing:1"], "No such image");
    let deleted = env.ok(&["rmi", "bb:1"]);
    assert!(deleted.contains(&format!("Deleted: {id}")), "{deleted}");
    let loaded = env.ok(&["load", "-i", saved.to_str().expect("utf8")]);
    assert!(
        loaded.contains("Loaded image: bb:1")
            && loaded.contains("Loaded image: localhost:5000/x/y:v2"),
        "{loaded}"
    );
    let (code, out, err) = env.berth_stdin(
        &["load"],
        Stdio::from(std::fs::File::open(&saved).expect("saved")),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bb:1"));

    env.fails(&["tag", "bb:1", "UPPER:case"], "invalid reference format");
    env.fails(&["image", "prune"], "--force");
    env.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(env.ok(&["images", "-q"]).trim(), "");
    let df = env.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE") && df.contains("Images"), "{df}");
}

#[test]
fn a_missing_daemon_is_a_clear_error() {
    let out = Command::new(BERTH)
        .args(["-H", "unix:///nonexistent/berth.sock", "images"])
        .output()
        .expect("berth");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot connect to the berth daemon"));
    let out = Command::new(BERTH)
        .args(["-H", "tcp://127.0.0.1:1", "images"])
        .output()
        .expect("berth");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only unix:///path"));
}

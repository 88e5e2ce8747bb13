//! A private berthd per test (its own data root, exec root and socket), the real docker
//! CLI pointed at it, and test images made from busybox-static.
#![allow(dead_code)]

pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    /// Run berthd in its own mount namespace (containers' overlay mounts stay there).
    pub private_mounts: bool,
    /// Run berthd inside this network namespace (`ip netns` name).
    pub netns: Option<String>,
    /// The default bridge's name and address given to berthd (unless the test gives its own
    /// `--bridge`): each daemon has a bridge of its own, made only if a container uses it,
    /// removed with its nftables table when the daemon goes.
    pub bridge: (String, String),
    /// Extra environment for berthd (e.g. SSL_CERT_FILE).
    pub env: Vec<(String, String)>,
}

/// A bridge name (at most 15 bytes) and a /24 for a new test daemon, unique within this
/// process and unlikely to meet another test process's (network.rs uses 10.213/10.214).
fn own_bridge() -> (String, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 250;
    let pid = std::process::id();
    (
        format!("bd{n}x{}", pid % 100_000),
        format!("10.{}.{n}.1/24", 215 + pid % 20),
    )
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A finished command's code (-1: killed by a signal) and output.
impl From<std::process::Output> for Out {
    fn from(out: std::process::Output) -> Out {
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "command failed: {}{}",
            self.stdout, self.stderr
        );
        self
    }
    /// Failed, saying `needle` on standard error.
    pub fn failed_with(&self, needle: &str) -> &Self {
        self.failed();
        assert!(self.stderr.contains(needle), "{}", self.stderr);
        self
    }

    pub fn failed(&self) -> &Self {
        assert_ne!(
            self.code, 0,
            "command unexpectedly succeeded: {}",
            self.stdout
        );
        self
    }
}

impl Daemon {
    pub fn start() -> Daemon {
        let mut d = Self::start_unspawned();
        d.spawn(&[]);
        d
    }

    /// A daemon's directory and settings, not started yet (see [`Daemon::spawn`]).
    pub fn start_unspawned() -> Daemon {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("daemon.json"), "{}").expect("daemon.json");
        Daemon {
            dir,
            child: None,
            private_mounts: false,
            netns: None,
            bridge: own_bridge(),
            env: Vec::new(),
        }
    }

    /// A daemon that can run containers: berth-shim and berth-runtime built beside berthd,
    /// and a private mount namespace.
    pub fn start_for_containers() -> Daemon {
        Self::start_for_containers_with(&[])
    }

    /// As `start_for_containers`, with extra berthd flags.
    pub fn start_for_containers_with(extra: &[&str]) -> Daemon {
        Self::start_for_containers_env(extra, &[])
    }

    /// As `start_for_containers_with`, with extra environment for berthd.
    pub fn start_for_containers_env(extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = std::path::Path::new(BERTHD).parent().expect("target dir");
        if ["berth-shim", "berth-runtime", "berth", "berth-pause"]
            .iter()
            .any(|b| !dir.join(b).exists())
        {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let ok = Command::new(cargo)
                .args([
                    "build",
                    "-p",
                    "berth-shim",
                    "-p",
                    "berth-runtime-cli",
                    "-p",
                    "berth",
                    "-p",
                    "berth-pause",
                ])
                .status()
                .expect("cargo build");
            assert!(ok.success(), "building the helpers failed");
        }
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::write(tmp.path().join("daemon.json"), "{}").expect("daemon.json");
        let mut d = Daemon {
            dir: tmp,
            child: None,
            private_mounts: true,
            netns: None,
            bridge: own_bridge(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        d.spawn(extra);
        d
    }

    /// This daemon's own default bridge, unless `extra` names one.
    fn bridge_flags(&self, extra: &[&str]) -> Vec<String> {
        if extra.contains(&"--bridge") {
            return Vec::new();
        }
        let (name, bip) = &self.bridge;
        vec!["--bridge".into(), name.clone(), "--bip".into(), bip.clone()]
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Start berthd (again) with this daemon's paths and `extra` flags.
    pub fn spawn(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .expect("log");
        let mut cmd = match (&self.netns, self.private_mounts) {
            (Some(ns), _) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(BERTHD);
                c
            }
            (None, true) => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private"]).arg(BERTHD);
                c
            }
            (None, false) => Command::new(BERTHD),
        };
        let child = cmd
            .arg("--config-file")
            .arg(self.dir.path().join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .args(self.bridge_flags(extra))
            .args(extra)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("berthd exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// SIGKILL the daemon (by pid) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: the graceful path.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        c.wait().expect("wait")
    }

    /// The real docker CLI against this daemon (with a private client config dir).
    pub fn docker(&self, args: &[&str]) -> Out {
        self.docker_stdin(args, None)
    }

    /// `docker events` from the start until a second from now, with `args` (filters,
    /// format): every event so far, the last second's included.
    pub fn past_events(&self, args: &[&str]) -> Out {
        let until = a_second_from_now();
        let mut all = vec!["events", "--since", "0", "--until", &until];
        all.extend_from_slice(args);
        self.docker(&all)
    }

    pub fn docker_stdin(&self, args: &[&str], stdin: Option<&Path>) -> Out {
        docker_at(
            &self.socket(),
            &self.dir.path().join("docker-config"),
            args,
            stdin,
        )
    }

    /// The client config dir the docker CLI uses here (credentials of `login`).
    pub fn client_config(&self) -> PathBuf {
        self.dir.path().join("docker-config")
    }

    /// The berth CLI (built beside berthd) against this daemon.
    pub fn berth(&self, args: &[&str]) -> Out {
        self.berth_stdin(args, Stdio::null())
    }

    pub fn berth_stdin(&self, args: &[&str], stdin: Stdio) -> Out {
        let out = Command::new(berth_cli())
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .env("DOCKER_CONFIG", self.client_config())
            .stdin(stdin)
            .output()
            .expect("run berth");
        Out::from(out)
    }

    /// A raw HTTP request on the socket: (status, body).
    pub fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(self.socket()).expect("connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(body).expect("write body");
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).expect("read");
        let text = String::from_utf8_lossy(&resp).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Files under the image store's blobs and snapshots (for leftovers checks).
    pub fn stored_blobs(&self) -> Vec<String> {
        list(&self.data_root().join("image/content/blobs/sha256"))
    }
    pub fn stored_snapshots(&self) -> Vec<String> {
        list(&self.data_root().join("image/snapshots"))
    }
}

/// The real docker CLI against the daemon on `socket`, with a private client config dir.
/// Poll `f` for up to 10 s.
pub fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// This machine's platform as `--platform` names it (`linux/amd64`).
pub fn host_platform() -> String {
    berth_registry::Platform::host().to_string()
}

/// Unix seconds a second from now (an `--until` that ends `docker events` after the past).
pub fn a_second_from_now() -> String {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1)
    .to_string()
}

/// The berth CLI binary, beside berthd.
pub fn berth_cli() -> PathBuf {
    Path::new(BERTHD)
        .parent()
        .expect("target dir")
        .join("berth")
}

pub fn docker_at(socket: &Path, config: &Path, args: &[&str], stdin: Option<&Path>) -> Out {
    let _ = std::fs::create_dir_all(config);
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", config)
        .stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).expect("stdin file")),
            None => Stdio::null(),
        })
        .output()
        .expect("run docker");
    Out::from(out)
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Containers first: their shims would outlive the daemon.
        if self.child.is_some() && std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
            let (_, list) = self.http("GET", "/containers/json?all=1", b"");
            if let Ok(serde_json::Value::Array(list)) = serde_json::from_str(&list) {
                for c in list {
                    if let Some(id) = c["Id"].as_str() {
                        let _ = self.http("DELETE", &format!("/containers/{id}?force=1"), b"");
                    }
                }
            }
            // User-defined networks' bridges and tables are the host's until removed (a
            // test that failed before its own `network rm` would leave them).
            let (_, list) = self.http("GET", "/networks", b"");
            if let Ok(serde_json::Value::Array(list)) = serde_json::from_str(&list) {
                for n in list {
                    let predefined = matches!(n["Name"].as_str(), Some("bridge" | "host" | "none"));
                    if let (false, Some(id)) = (predefined, n["Id"].as_str()) {
                        let _ = self.http("DELETE", &format!("/networks/{id}"), b"");
                    }
                }
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        // This daemon's own bridge and its NAT table, if a container made them.
        let (bridge, _) = &self.bridge;
        let _ = Command::new("ip").args(["link", "del", bridge]).output();
        let table = format!("berth-{bridge}");
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .output();
    }
}

/// A busybox-static root filesystem as a tarball in `dir` (made once per test).
pub fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/busybox-rootfs.sh"
    );
    let st = Command::new(script)
        .arg(&rootfs)
        .stdout(Stdio::null())
        .status()
        .expect("busybox-rootfs.sh");
    assert!(st.success(), "busybox-rootfs.sh failed");
    let tar = dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    tar
}

/// A docker-archive in the classic layout (`<id>/layer.tar`, `<config>.json`,
/// manifest.json, repositories) with the given layers (tar bytes), written by hand.
pub fn classic_archive(path: &Path, tag: &str, layers: &[Vec<u8>], labels: serde_json::Value) {
    use sha2_lite::sha256_hex;
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created": "2024-01-02T03:04:05Z", "created_by": "test layer"})).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).expect("config");
    let config_name = format!("{}.json", sha256_hex(&config_bytes));
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("archive"));
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).expect("path");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).expect("append");
    };
    let mut layer_paths = Vec::new();
    for l in layers {
        let id = sha256_hex(l);
        let p = format!("{id}/layer.tar");
        add(&p, l);
        layer_paths.push(p);
    }
    add(&config_name, &config_bytes);
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_paths}]);
    add(
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("manifest"),
    );
    b.finish().expect("finish");
}

/// A layer tar with regular files `(name, contents)`.
pub fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).expect("path");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("layer")
}

pub mod sha2_lite {
    /// sha256 through the system tool, so the tests do not share the code under test.
    pub fn sha256_hex(data: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sha256sum");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(data)
            .expect("write");
        let out = child.wait_with_output().expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// The docker CLI on a terminal: `script` gives it a pty; what the test types goes in, what
/// the terminal shows comes out (an expect-like session).
pub struct PtySession {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Daemon {
    pub fn docker_pty(&self, args: &str) -> PtySession {
        self.pty(&format!("docker {args}"))
    }

    /// The berth CLI on a terminal.
    pub fn berth_pty(&self, args: &str) -> PtySession {
        self.pty(&format!(
            "{} -H unix://{} {args}",
            berth_cli().display(),
            self.socket().display()
        ))
    }

    /// `command` (a shell line) on a terminal of 33 rows and 101 columns.
    fn pty(&self, command: &str) -> PtySession {
        let config = self.dir.path().join("docker-config");
        let _ = std::fs::create_dir_all(&config);
        // A fixed terminal size, so that what the container sees is known.
        let cmd = format!("stty rows 33 cols 101; exec {command}");
        let mut child = Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run script");
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut out = child.stdout.take().expect("stdout");
        let sink = output.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        PtySession {
            stdin: child.stdin.take(),
            child,
            output,
        }
    }
}

impl PtySession {
    pub fn send(&mut self, text: &str) {
        use std::io::Write;
        if let Some(s) = self.stdin.as_mut() {
            s.write_all(text.as_bytes()).expect("type");
            s.flush().expect("flush");
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Wait (up to 30 s) until the terminal has shown `needle`.
    pub fn expect(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.output().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {needle:?}; it shows:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for the docker CLI to end (up to 30 s): its exit code and the whole output.
    pub fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the docker CLI did not end; the terminal shows:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.stdin.take();
        std::thread::sleep(Duration::from_millis(50));
        (code, self.output())
    }
}

/// `bb:1`: busybox-static imported through the docker CLI, with `CMD ["sh"]`.
pub fn busybox_image(d: &Daemon) {
    let tar = busybox_rootfs_tar(d.dir.path());
    d.docker(&[
        "import",
        "--change",
        "CMD [\"sh\"]",
        tar.to_str().expect("utf8"),
        "bb:1",
    ])
    .ok();
}

/// `NAME=PATH` for `--add-runtime`: berth-runtime behind a shell script that runs `before`
/// (which sees the runtime's arguments as `$*`) and then execs the runtime (`{rt}` in
/// `before` is the runtime's path).
pub fn wrapped_runtime_flag(d: &Daemon, name: &str, before: &str) -> String {
    let script = d.dir.path().join(format!("{name}-runtime"));
    let runtime = Path::new(BERTHD).with_file_name("berth-runtime");
    let rt = runtime.display().to_string();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{}\nexec {rt} \"$@\"\n",
            before.replace("{rt}", &rt)
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    format!("{name}={}", script.display())
}

/// `slow=PATH` for `--add-runtime`: berth-runtime behind a script whose create takes a
/// second, so that a kill of berthd lands inside a start.
pub fn slow_runtime_flag(d: &Daemon) -> String {
    wrapped_runtime_flag(d, "slow", "case \" $* \" in *\" create \"*) sleep 1;; esac")
}

/// An image `tag` made from busybox-static, with `setup` run on its root filesystem first
/// and `changes` (import --change lines, such as `VOLUME /srv`) applied.
pub fn busybox_image_with(d: &Daemon, tag: &str, setup: impl FnOnce(&Path), changes: &[&str]) {
    let work = d
        .dir
        .path()
        .join(format!("image-{}", tag.replace([':', '/'], "-")));
    std::fs::create_dir_all(&work).expect("mkdir");
    let tar = busybox_rootfs_tar(&work);
    setup(&work.join("rootfs"));
    let st = Command::new("tar")
        .arg("-C")
        .arg(work.join("rootfs"))
        .arg("--xattrs")
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    let mut args = vec!["import"];
    for c in changes {
        args.extend(["--change", c]);
    }
    args.extend([tar.to_str().expect("utf8"), tag]);
    d.docker(&args).ok();
}

/// A test's cgroup parents (`--cgroup-parent`, relative to each hierarchy's root), removed
/// from every hierarchy at drop, once the daemon and its containers are gone: declare it
/// before the daemon (or after it among a struct's fields).
pub struct CgroupParents(pub Vec<String>);

impl Drop for CgroupParents {
    fn drop(&mut self) {
        for parent in &self.0 {
            let top = parent
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            if top.is_empty() {
                continue;
            }
            for dir in hierarchy_dirs(top) {
                remove_tree(&dir);
            }
        }
    }
}

/// `rel` in each cgroup hierarchy mounted under /sys/fs/cgroup (v1 and unified).
pub fn hierarchy_dirs(rel: &str) -> Vec<PathBuf> {
    let mut dirs = vec![Path::new("/sys/fs/cgroup").join(rel)];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            dirs.push(e.path().join(rel));
        }
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// Empty cgroups are removed with rmdir, innermost first.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// crictl 1.29, built from ../shared/peers by scripts/critest.sh --build-only (once per
/// test process), or `BERTH_CRICTL`.
pub fn crictl_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("BERTH_CRICTL") {
                return PathBuf::from(path);
            }
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let out = Command::new(root.join("scripts/critest.sh"))
                .arg("--build-only")
                .output()
                .expect("scripts/critest.sh");
            let text = String::from_utf8_lossy(&out.stdout);
            let path = text
                .lines()
                .find_map(|l| l.strip_prefix("crictl "))
                .unwrap_or_else(|| {
                    panic!(
                        "critest.sh --build-only gave no crictl: {text}{}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
            PathBuf::from(path.trim())
        })
        .clone()
}

/// Remove a test daemon's bridge `name` and berth's nftables table for it (what a daemon
/// killed before its cleanup leaves).
#[allow(dead_code)]
pub fn remove_bridge(name: &str) {
    let _ = Command::new("ip").args(["link", "del", name]).output();
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", &format!("berth-{name}")])
        .output();
}

/// A file server on 127.0.0.1 (python3's http.server) serving `dir`, over TLS with
/// `tls` (certificate, key) when given; stopped (by its PID) when dropped.
#[allow(dead_code)]
pub struct FileServer {
    child: Child,
    pub port: u16,
}

#[allow(dead_code)]
impl FileServer {
    pub fn start(dir: &Path, tls: Option<(&Path, &Path)>) -> FileServer {
        use std::io::BufRead;
        let script = r#"
import functools, http.server, ssl, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
if len(sys.argv) > 2:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(script).arg(dir);
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("port");
        let port = line.trim().parse().expect("a port");
        FileServer { child, port }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ip ARGS`, which must succeed.
#[allow(dead_code)]
pub fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip");
    assert!(st.success(), "ip {args:?}");
}

/// A daemon in a network namespace the test makes (`ip netns`), so that its bridges,
/// nftables tables and forwarding sysctls never touch the host's; removed with it.
#[allow(dead_code)]
pub struct NsDaemon {
    pub d: Daemon,
    pub ns: String,
}

#[allow(dead_code)]
impl NsDaemon {
    /// A daemon in namespace `<name><pid>` with `extra` flags and the busybox image.
    pub fn start(name: &str, extra: &[&str]) -> NsDaemon {
        let ns = format!("{name}x{}", std::process::id() % 100_000);
        let _ = Command::new("ip")
            .args(["netns", "del", &ns])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let mut d = Daemon::start_unspawned();
        d.private_mounts = true;
        let mut n = NsDaemon { d, ns };
        n.spawn(extra);
        busybox_image(&n.d);
        n
    }

    /// Start berthd (again) in the namespace: spawned by a thread that entered it (`ip
    /// netns exec` would remount /sys, hiding the cgroup hierarchies containers need).
    pub fn spawn(&mut self, extra: &[&str]) {
        let ns = std::fs::File::open(format!("/run/netns/{}", self.ns)).expect("the namespace");
        let d = &mut self.d;
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                d.spawn(extra);
            })
            .join()
            .expect("the thread in the namespace")
        })
    }

    pub fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.d.docker(&["inspect", "-f", format, name]);
        out.ok();
        out.stdout.trim().to_string()
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        let ids = self.d.docker(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.d.docker(&["rm", "-f", id]);
        }
        let _ = self.d.docker(&["network", "prune", "-f"]);
        self.d.kill();
        // Bridges, tables and sysctls go with the namespace.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

//! Piped (non-terminal) input reaches the process whole: binary data that holds the detach
//! keys' bytes goes through exec -i, run -i, start -ai and attach, with the docker CLI and the
//! berth CLI, and the process sees its end. And a data root whose disk is full when a
//! container exits: the attached client still ends, the exit is still reported, and no
//! temporary file stays.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// How long a command may take before the test calls it hung (a guard, not a measure).
const HANG: Duration = Duration::from_secs(120);

/// 10 MB of random bytes that also begin with ctrl-p ctrl-q (the default detach keys) in
/// the middle of text, in `dir`; and its sha256.
fn random_input(dir: &Path) -> (PathBuf, String) {
    let mut data = b"abc\x10\x11def".to_vec();
    std::fs::File::open("/dev/urandom")
        .expect("urandom")
        .take(10_000_000 - data.len() as u64)
        .read_to_end(&mut data)
        .expect("random bytes");
    let path = dir.join("random.bin");
    std::fs::write(&path, &data).expect("input file");
    (path, sha2_lite::sha256_hex(&data))
}

/// `program args` with `stdin` as its standard input: (exit code, stdout bytes, stderr).
/// Killed (by pid) and failed if it does not end within [`HANG`].
fn run_piped(cmd: Command, stdin: &Path) -> (i32, Vec<u8>, String) {
    run_piped_pausing(cmd, stdin, Duration::ZERO)
}

/// As [`run_piped`], with a reader of its output that stops for `pause` after the first
/// bytes (a consumer that falls behind).
fn run_piped_pausing(mut cmd: Command, stdin: &Path, pause: Duration) -> (i32, Vec<u8>, String) {
    let mut child = cmd
        .stdin(Stdio::from(std::fs::File::open(stdin).expect("stdin")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut v = vec![0u8; 1];
        if pause > Duration::ZERO {
            if out.read_exact(&mut v).is_err() {
                v.clear();
            }
            std::thread::sleep(pause);
        } else {
            v.clear();
        }
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        out.join().expect("stdout"),
        err.join().expect("stderr"),
    )
}

fn docker_cmd(d: &Daemon, args: &[&str]) -> Command {
    let mut c = Command::new("docker");
    c.args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.client_config());
    c
}

fn berth_cmd(d: &Daemon, args: &[&str]) -> Command {
    let mut c = Command::new(berth_cli());
    c.arg("-H")
        .arg(format!("unix://{}", d.socket().display()))
        .args(args)
        .env("DOCKER_CONFIG", d.client_config());
    c
}

/// The sha256 a `sha256sum` of standard input printed.
fn printed_sum(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Which CLI drives the test.
#[derive(Clone, Copy)]
enum Cli {
    Docker,
    Berth,
}

impl Cli {
    fn cmd(self, d: &Daemon, args: &[&str]) -> Command {
        match self {
            Cli::Docker => docker_cmd(d, args),
            Cli::Berth => berth_cmd(d, args),
        }
    }

    fn ok(self, d: &Daemon, args: &[&str]) -> String {
        match self {
            Cli::Docker => d.docker(args).ok().stdout.clone(),
            Cli::Berth => d.berth(args).ok().stdout.clone(),
        }
    }
}

/// Every hijacked path that takes piped input, with `cli`: the data arrives whole (the
/// same sha256 inside, and back out through `cat`) and the process sees its end.
fn piped_input_arrives_whole(cli: Cli) {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let (input, sum) = random_input(d.dir.path());
    let net = ["--network", "none"];
    let check = |what: &str, args: &[&str], expect_sum: bool| {
        let (code, out, err) = run_piped(cli.cmd(&d, args), &input);
        assert_eq!(code, 0, "{what}: {err}");
        let got = if expect_sum {
            printed_sum(&out)
        } else {
            sha2_lite::sha256_hex(&out)
        };
        assert_eq!(got, sum, "{what}: {} bytes came out; {err}", out.len());
    };

    cli.ok(
        &d,
        &[
            &["run", "-d", "--name", "long"][..],
            &net,
            &["bb:1", "sleep", "1000"],
        ]
        .concat(),
    );
    check(
        "exec -i sha256sum",
        &["exec", "-i", "long", "sha256sum"],
        true,
    );
    check("exec -i cat", &["exec", "-i", "long", "cat"], false);
    // The detach keys of a terminal are plain bytes here: all 8 arrive and wc ends.
    let small = d.dir.path().join("small.bin");
    std::fs::write(&small, b"abc\x10\x11def").expect("small input");
    let (code, out, err) = run_piped(cli.cmd(&d, &["exec", "-i", "long", "wc", "-c"]), &small);
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "8");

    check(
        "run -i sha256sum",
        &[&["run", "-i", "--rm"][..], &net, &["bb:1", "sha256sum"]].concat(),
        true,
    );
    check(
        "run -i cat",
        &[&["run", "-i", "--rm"][..], &net, &["bb:1", "cat"]].concat(),
        false,
    );

    // start -ai: the container created with -i, its input from the start.
    cli.ok(
        &d,
        &[
            &["create", "-i", "--name", "created"][..],
            &net,
            &["bb:1", "sha256sum"],
        ]
        .concat(),
    );
    check("start -ai", &["start", "-ai", "created"], true);

    // attach to a running container: without stdin-once its input stays open after the
    // client's end, so the program reads exactly the size and ends by itself.
    cli.ok(
        &d,
        &[
            &["run", "-d", "-i", "--name", "running"][..],
            &net,
            &["bb:1", "sh", "-c", "head -c 10000000 | sha256sum"],
        ]
        .concat(),
    );
    check("attach", &["attach", "running"], true);
}

#[test]
fn piped_input_arrives_whole_through_the_docker_cli() {
    piped_input_arrives_whole(Cli::Docker);
}

#[test]
fn piped_input_arrives_whole_through_the_berth_cli() {
    piped_input_arrives_whole(Cli::Berth);
}

/// A client that stops reading for a while (a pager, a slow pipe) slows the process down:
/// its output waits, none is lost, and the stream is not cut.
#[test]
fn a_reader_that_falls_behind_still_gets_all_the_output() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let (input, sum) = random_input(d.dir.path());
    d.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "long",
        "bb:1",
        "sleep",
        "1000",
    ])
    .ok();
    // Longer than any write timeout a shim or daemon might hold a stalled client for.
    let pause = Duration::from_secs(7);
    for args in [
        &["exec", "-i", "long", "cat"][..],
        &["run", "-i", "--rm", "--network", "none", "bb:1", "cat"][..],
    ] {
        let (code, out, err) = run_piped_pausing(docker_cmd(&d, args), &input, pause);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(
            sha2_lite::sha256_hex(&out),
            sum,
            "{args:?}: {} bytes came out; {err}",
            out.len()
        );
    }
}

/// A client of the shim that goes away with output unread (the shim's next read fails
/// with ECONNRESET, not EOF): the container's stdin-once input still ends, so `cat` ends.
#[test]
fn a_lost_attach_client_ends_a_stdin_once_input() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    // create -i attaches stdin, so the docker CLI asks for stdin-once.
    let id = d
        .docker(&[
            "create",
            "-i",
            "--network",
            "none",
            "--name",
            "once",
            "bb:1",
            "sh",
            "-c",
            "cat; echo eof-seen",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let once = d.docker(&["inspect", "-f", "{{.Config.StdinOnce}}", "once"]);
    assert_eq!(once.ok().stdout.trim(), "true");
    d.docker(&["start", "once"]).ok();
    // Straight to the shim, through /proc/self/fd: a socket address holds 107 bytes.
    let bundle = std::fs::File::open(d.exec_root().join("containers").join(&id)).expect("bundle");
    let socket = format!("/proc/self/fd/{}/shim.sock", bundle.as_raw_fd());
    let mut shim = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    shim.set_read_timeout(Some(HANG)).expect("timeout");
    shim.write_all(b"{\"op\":\"attach\",\"stdin\":true,\"stdout\":true,\"stderr\":true}\nabc\n")
        .expect("attach");
    // The answer and the echo arrive; they are left unread.
    let mut peek = [0u8; 16];
    let mut seen = 0;
    let deadline = Instant::now() + HANG;
    while seen < 3 + 8 + 4 {
        assert!(Instant::now() < deadline, "the echo did not come");
        seen = nix::sys::socket::recv(
            shim.as_raw_fd(),
            &mut peek,
            nix::sys::socket::MsgFlags::MSG_PEEK,
        )
        .expect("peek");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(shim);
    let (code, out, err) = run_piped(docker_cmd(&d, &["wait", "once"]), Path::new("/dev/null"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "0");
    let logs = d.docker(&["logs", "once"]);
    assert!(logs.ok().stdout.contains("eof-seen"), "{}", logs.stdout);
}

/// A daemon whose data root is a tmpfs of `size` (the image imported onto it). Dropped:
/// the filler goes, the containers are removed, berthd stops, then the tmpfs is unmounted.
struct OnTmpfs {
    d: Daemon,
}

impl OnTmpfs {
    fn new(size: &str) -> OnTmpfs {
        let mut d = Daemon::start_for_containers();
        d.stop();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(d.data_root())
            .status()
            .expect("mount");
        assert!(st.success(), "mount a tmpfs on the data root");
        let mut t = OnTmpfs { d };
        t.d.spawn(&[]);
        busybox_image(&t.d);
        t
    }

    fn filler(&self) -> PathBuf {
        self.d.data_root().join("filler")
    }

    /// Write (on) a file until the tmpfs is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the data root: {e}"),
            }
        }
    }

    /// Temporary files left under the containers' directories.
    fn leftover_tmp(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let root = self.d.data_root().join("containers");
        for dir in std::fs::read_dir(root).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if f.file_name().to_string_lossy().ends_with(".tmp") {
                    found.push(f.path());
                }
            }
        }
        found
    }
}

impl Drop for OnTmpfs {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.filler());
        if self.d.child.is_some() {
            let (_, list) = self.d.http("GET", "/containers/json?all=1", b"");
            if let Ok(serde_json::Value::Array(list)) = serde_json::from_str(&list) {
                for c in list {
                    if let Some(id) = c["Id"].as_str() {
                        let _ = self
                            .d
                            .http("DELETE", &format!("/containers/{id}?force=1"), b"");
                    }
                }
            }
            self.d.stop();
        }
        let unmounted = Command::new("umount")
            .arg(self.d.data_root())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.d.data_root())
                .status();
        }
    }
}

/// An attached run whose container prints "started", then waits for a line of input.
struct Attached {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    out: std::sync::mpsc::Receiver<String>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Attached {
    fn spawn(mut cmd: Command) -> Attached {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take();
        let reader = child.stdout.take().expect("stdout");
        let (tx, out) = std::sync::mpsc::channel();
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let all = stdout.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(reader)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(mut all) = all.lock() {
                    all.push_str(&line);
                    all.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        Attached {
            child,
            stdin,
            out,
            stdout,
        }
    }

    fn wait_started(&self) {
        loop {
            match self.out.recv_timeout(HANG) {
                Ok(line) if line == "started" => return,
                Ok(_) => {}
                Err(e) => panic!("the container did not start: {e}"),
            }
        }
    }

    /// Give it its line; then its exit code, stdout and stderr.
    fn finish(mut self) -> (i32, String, String) {
        use std::io::Write;
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        let deadline = Instant::now() + HANG;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the attached client did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        // The reader thread ends with the pipe.
        while self.out.recv_timeout(Duration::from_secs(5)).is_ok() {}
        let out = self.stdout.lock().map(|s| s.clone()).unwrap_or_default();
        (status.code().unwrap_or(-1), out, err)
    }
}

const WAIT_FOR_A_LINE: &str = "echo started; read line; echo \"got $line\"; exit $0";

/// The data root fills up while containers run: their exits cannot be saved, yet the
/// attached clients end with the exit codes, `wait` and `inspect` report them, `stop`
/// works, `--rm` still removes, and no temporary file stays.
fn a_full_data_root_at_exit(cli: Cli) {
    let t = OnTmpfs::new("24m");
    let d = &t.d;
    let run = |extra: &[&str], code: &str| {
        let args = [
            &["run", "-i", "--network", "none"][..],
            extra,
            &["bb:1", "sh", "-c", WAIT_FOR_A_LINE, code],
        ]
        .concat();
        let a = Attached::spawn(cli.cmd(d, &args));
        a.wait_started();
        a
    };
    let kept = run(&["--name", "kept"], "3");
    let removed = run(&["--rm", "--name", "removed"], "4");
    cli.ok(
        d,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "other",
            "bb:1",
            "sleep",
            "1000",
        ],
    );
    t.fill();

    let (code, out, err) = kept.finish();
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("got go"), "{out}{err}");
    let (code, out, err) = removed.finish();
    assert_eq!(code, 4, "{out}{err}");
    // The exit is known (in memory) though it could not be written.
    let state = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "kept",
    ]);
    assert_eq!(state.ok().stdout.trim(), "exited 3");
    assert_eq!(d.docker(&["wait", "kept"]).ok().stdout.trim(), "3");
    // --rm removed it all the same.
    let gone = d.docker(&["inspect", "removed"]);
    gone.failed_with("No such");
    // A user can still end a container, the disk full again once the removal freed what
    // it held.
    let removing = d.data_root().join("removing");
    assert!(wait_for(
        || std::fs::read_dir(&removing).is_ok_and(|mut r| r.next().is_none())
    ));
    t.fill();
    cli.ok(d, &["stop", "-t", "1", "other"]);
    let state = d.docker(&["inspect", "-f", "{{.State.Status}}", "other"]);
    assert_eq!(state.ok().stdout.trim(), "exited");
    assert_eq!(t.leftover_tmp(), Vec::<PathBuf>::new());
}

#[test]
fn a_full_data_root_at_exit_through_the_docker_cli() {
    a_full_data_root_at_exit(Cli::Docker);
}

#[test]
fn a_full_data_root_at_exit_through_the_berth_cli() {
    a_full_data_root_at_exit(Cli::Berth);
}

/// `run --rm` whose removal fails (here the directory removals go through is a file):
/// the client ends with the error (moby's SetRemovalError) instead of waiting for a
/// removal that will not come; the container stays, with its exit, and can be removed.
#[test]
fn a_failed_removal_ends_run_rm_with_its_error() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let a = Attached::spawn(docker_cmd(
        &d,
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            "--name",
            "stays",
            "bb:1",
            "sh",
            "-c",
            WAIT_FOR_A_LINE,
            "5",
        ],
    ));
    a.wait_started();
    let removing = d.data_root().join("removing");
    let _ = std::fs::remove_dir(&removing);
    std::fs::write(&removing, b"not a directory").expect("block removals");
    let (code, out, err) = a.finish();
    assert_eq!(code, 125, "{out}{err}");
    assert!(err.contains("unable to remove container"), "{err}");
    let state = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "stays",
    ]);
    assert_eq!(state.ok().stdout.trim(), "exited 5");
    std::fs::remove_file(&removing).expect("unblock removals");
    d.docker(&["rm", "stays"]).ok();
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout.trim(), "");
}

//! The server against the real clients: client-go's SPDY executor and port forwarder as
//! vendored by cri-tools 1.29 (what crictl and critest run), in tests/go/streamprobe.go.
//!
//! The probe is built once from the cri-tools tarball (`BERTH_CRI_TOOLS_TAR`, by default
//! ../shared/peers/cri-tools-v1.29.0.tar.gz beside the repository) into target/tmp, and
//! rebuilt only when streamprobe.go changes. Without `go` on PATH the tests say so and pass.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use berth_cri_streaming::{AttachRequest, ExecRequest, PortForwardRequest};
use common::{closed_port, pong_service, server, POD};

const PROBE_SOURCE: &str = include_str!("go/streamprobe.go");

fn tarball() -> PathBuf {
    match std::env::var_os("BERTH_CRI_TOOLS_TAR") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/peers/cri-tools-v1.29.0.tar.gz"),
    }
}

fn have_go() -> bool {
    Command::new("go")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// FNV-1a, to name the cached probe after its source.
fn fingerprint(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn build_probe() -> Result<PathBuf, String> {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bin = tmp.join(format!("streamprobe-{:016x}", fingerprint(PROBE_SOURCE)));
    if bin.exists() {
        return Ok(bin);
    }
    let tree = tmp.join("cri-tools-streamprobe");
    let module = tree.join("cri-tools");
    if !module.join("go.mod").exists() {
        let tar = tarball();
        if !tar.exists() {
            return Err(format!(
                "{} is missing (set BERTH_CRI_TOOLS_TAR to the cri-tools 1.29 source tarball)",
                tar.display()
            ));
        }
        let unpacking = tmp.join("cri-tools-streamprobe.unpacking");
        let _ = std::fs::remove_dir_all(&unpacking);
        std::fs::create_dir_all(&unpacking).map_err(|e| e.to_string())?;
        run(Command::new("tar")
            .arg("xzf")
            .arg(&tar)
            .arg("-C")
            .arg(&unpacking))?;
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::rename(&unpacking, &tree).map_err(|e| e.to_string())?;
    }
    let cmd_dir = module.join("cmd/streamprobe");
    std::fs::create_dir_all(&cmd_dir).map_err(|e| e.to_string())?;
    std::fs::write(cmd_dir.join("main.go"), PROBE_SOURCE).map_err(|e| e.to_string())?;
    let building = tmp.join(format!("streamprobe.building.{}", std::process::id()));
    let mut go = Command::new("go");
    go.args(["build", "-mod=vendor", "-o"])
        .arg(&building)
        .arg("./cmd/streamprobe")
        .current_dir(&module)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=vendor")
        .env("GOTOOLCHAIN", "local");
    // Go needs a build cache; CI runners may have no HOME to put it under.
    if ["GOCACHE", "XDG_CACHE_HOME", "HOME"]
        .iter()
        .all(|v| std::env::var_os(v).is_none())
    {
        go.env("GOCACHE", tmp.join("go-build-cache"));
    }
    run(&mut go)?;
    std::fs::rename(&building, &bin).map_err(|e| e.to_string())?;
    Ok(bin)
}

/// The probe, or None (with a message) when there is no Go toolchain.
fn probe() -> Option<PathBuf> {
    static PROBE: OnceLock<Option<Result<PathBuf, String>>> = OnceLock::new();
    let built = PROBE.get_or_init(|| {
        if !have_go() {
            return None;
        }
        Some(build_probe())
    });
    match built {
        None => {
            eprintln!("SKIPPED: `go` is not on PATH; install golang-go to run the client-go tests");
            None
        }
        Some(Ok(p)) => Some(p.clone()),
        Some(Err(e)) => panic!("building the Go stream probe: {e}"),
    }
}

/// Runs the probe with `stdin` as its input (closed at the end) and returns its output.
async fn run_probe(probe: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = match tokio::process::Command::new(probe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("running the probe: {e}"),
    };
    if let Some(mut input) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = input.write_all(stdin).await;
    }
    match child.wait_with_output().await {
        Ok(out) => out,
        Err(e) => panic!("waiting for the probe: {e}"),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn exec_request(cmd: &[&str], stdin: bool, tty: bool) -> ExecRequest {
    ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_without_tty_streams_stdout_stderr_and_the_exit_code() {
    let Some(probe) = probe() else { return };
    let server = server().await;
    let url = server
        .get_exec(exec_request(
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            false,
            false,
        ))
        .unwrap_or_default();
    let out = run_probe(&probe, &["exec", &url], b"").await;
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\nprobe: exit code 3\n");
    assert_eq!(out.status.code(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_stdin_gets_everything_until_the_client_closes_it() {
    let Some(probe) = probe() else { return };
    let server = server().await;
    let url = server
        .get_exec(exec_request(&["cat"], true, false))
        .unwrap_or_default();
    let input: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let out = run_probe(&probe, &["exec", &url, "-stdin"], &input).await;
    assert_eq!(text(&out.stderr), "");
    assert!(
        out.stdout == input,
        "stdout is {} bytes, not the {} sent",
        out.stdout.len(),
        input.len()
    );
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_tty_has_no_stderr_and_gets_the_terminal_size() {
    let Some(probe) = probe() else { return };
    let server = server().await;
    let url = server
        .get_exec(exec_request(&["report-resize"], true, true))
        .unwrap_or_default();
    let out = run_probe(
        &probe,
        &["exec", &url, "-stdin", "-tty", "-resize", "100x42"],
        b"",
    )
    .await;
    assert_eq!(text(&out.stdout), "tty=true 100x42\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_exec_reaches_the_client_as_an_internal_error() {
    let Some(probe) = probe() else { return };
    let server = server().await;
    let url = server
        .get_exec(exec_request(&["/nonexistent/berth-probe"], false, false))
        .unwrap_or_default();
    let out = run_probe(&probe, &["exec", &url], b"").await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Internal error occurred: error executing command in container: starting /nonexistent/berth-probe"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(99));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_protocols_still_work_and_carry_the_exit_as_text() {
    let Some(probe) = probe() else { return };
    let server = server().await;
    let url = server
        .get_exec(exec_request(&["sh", "-c", "echo v2; exit 4"], false, false))
        .unwrap_or_default();
    let out = run_probe(
        &probe,
        &["exec", &url, "-protocols", "v2.channel.k8s.io"],
        b"",
    )
    .await;
    assert_eq!(text(&out.stdout), "v2\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error executing remote command: command terminated with non-zero exit code: error executing command [sh -c echo v2; exit 4], exit code 4"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_is_good_for_one_request() {
    let Some(probe) = probe() else { return };
    let server = server().await;
    let url = server
        .get_exec(exec_request(&["true"], false, false))
        .unwrap_or_default();
    let first = run_probe(&probe, &["exec", &url], b"").await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let second = run_probe(&probe, &["exec", &url], b"").await;
    assert_eq!(second.status.code(), Some(99));
    assert!(
        text(&second.stderr).contains("404 page not found"),
        "{}",
        text(&second.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_streams_both_ways_until_stdin_closes() {
    let Some(probe) = probe() else { return };
    let server = server().await;
    let url = server
        .get_attach(AttachRequest {
            container_id: "c1".into(),
            tty: false,
            stdin: true,
            stdout: true,
            stderr: true,
        })
        .unwrap_or_default();
    let out = run_probe(&probe, &["exec", &url, "-stdin"], b"hello\nattach\n").await;
    assert_eq!(text(&out.stdout), "hello\nattach\n");
    assert_eq!(text(&out.stderr), "attached\n");
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_carries_several_connections_over_one_upgrade() {
    let Some(probe) = probe() else { return };
    let server = server().await;
    let port = pong_service().await.to_string();
    let url = server
        .get_port_forward(PortForwardRequest {
            pod_sandbox_id: POD.into(),
            ports: vec![],
        })
        .unwrap_or_default();
    let out = run_probe(
        &probe,
        &["portforward", &url, &port, "ping-1", "ping-2"],
        b"",
    )
    .await;
    assert_eq!(
        text(&out.stdout),
        "pong:ping-1\npong:ping-2\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_forward_failure_reaches_the_client_on_the_error_stream() {
    let Some(probe) = probe() else { return };
    let server = server().await;
    let port = closed_port();
    let url = server
        .get_port_forward(PortForwardRequest {
            pod_sandbox_id: POD.into(),
            ports: vec![i32::from(port)],
        })
        .unwrap_or_default();
    let out = run_probe(
        &probe,
        &["portforward", &url, &port.to_string(), "ping"],
        b"",
    )
    .await;
    // No reply: an empty one, or, when client-go closes the local connection before the
    // probe has read it, a reset that ends the probe before it prints (timing decides which).
    let stdout = text(&out.stdout);
    assert!(
        stdout == "\n" || stdout.is_empty(),
        "no reply from a port nobody listens on: {stdout:?}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("error forwarding port {port} to pod {POD}")),
        "{stderr}"
    );
}

//! Fuzz the API's request-body readers (crates/api/src/server/body.rs: read_json for JSON
//! bodies, reader for streamed ones) through the real server (`berth_api::server::serve`
//! on a unix socket, an engine on a temp data root): raw HTTP requests to
//! POST /containers/create, POST /containers/{id}/exec (read_json) and POST /images/load,
//! POST /images/create?fromSrc=- (reader), with bodies that are JSON, damaged JSON, blank,
//! oversized, tars or noise, framed by an exact, short or long Content-Length or by chunks
//! (split anywhere, with extensions, or malformed). Checks:
//! - a well-framed request is answered, with a status that is not a server error for a JSON
//!   route (a body is the client's fault);
//! - a badly framed or cut request ends the connection (no hang);
//! - nothing the server runs panics, and it answers /_ping after every case.
//!
//! No route that reaches out (pull, push, login) is used.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_fuzz::json::any_value;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Create,
    Exec,
    Load,
    Import,
}

impl Route {
    fn target(self) -> &'static str {
        match self {
            Route::Create => "/v1.45/containers/create?name=",
            Route::Exec => "/v1.45/containers/running/exec",
            Route::Load => "/v1.45/images/load?quiet=1",
            Route::Import => "/v1.45/images/create?fromSrc=-&repo=imported&tag=1",
        }
    }

    fn json(self) -> bool {
        matches!(self, Route::Create | Route::Exec)
    }
}

#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    /// JSON text with bytes changed.
    Damaged(Value, Vec<(usize, u8)>),
    Blank(&'static str),
    Noise(Vec<u8>),
    /// A tar (a layer's worth of entries).
    Tar(berth_fuzz::tar::Layer),
    /// This many bytes of JSON whitespace around `{}`: over the create route's 4 MiB limit
    /// when large.
    Big(usize),
}

#[derive(Debug, Clone)]
enum Framing {
    Length,
    /// Content-Length says this many bytes more than are sent; then the client stops
    /// writing.
    Short(usize),
    /// Content-Length says this many bytes fewer (the rest is a second, garbage request).
    Long(usize),
    /// Chunks at these cut points, each maybe with an extension.
    Chunked(Vec<usize>, bool),
    /// A chunk-size line that is not hex, or a chunked body cut before its end.
    BadChunk(&'static str),
    /// Neither length nor chunks: an empty body to the server.
    Neither,
}

#[derive(Debug, Clone)]
struct Case {
    route: Route,
    body: Body,
    framing: Framing,
    name: &'static str,
}

fn body() -> impl Strategy<Value = Body> {
    let plausible = select(vec![
        json!({"Image": "fuzz:latest", "HostConfig": {"NetworkMode": "none"}}),
        json!({"Image": "fuzz:latest", "Cmd": ["sh"], "HostConfig": {"NetworkMode": "none", "Memory": 8388608}}),
        json!({"Cmd": ["sh", "-c", "true"], "AttachStdout": true}),
        json!({"Cmd": ["sh"], "User": "fuzz", "Env": ["A=1"], "Tty": true}),
        json!({}),
        json!([]),
    ]);
    prop_oneof![
        4 => plausible.clone().prop_map(Body::Json),
        2 => any_value().prop_map(Body::Json),
        2 => (plausible, vec((any::<usize>(), any::<u8>()), 1..3)).prop_map(|(v, d)| Body::Damaged(v, d)),
        1 => select(vec!["", " ", "\n\t \r\n", "\u{0}", "\u{feff}{}"]).prop_map(Body::Blank),
        2 => vec(any::<u8>(), 0..600).prop_map(Body::Noise),
        3 => berth_fuzz::tar::layer(4).prop_map(Body::Tar),
        1 => prop_oneof![Just(1000usize), Just(4 * 1024 * 1024 + 1)].prop_map(Body::Big),
    ]
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        6 => Just(Framing::Length),
        1 => (1usize..5000).prop_map(Framing::Short),
        1 => (1usize..20).prop_map(Framing::Long),
        4 => (vec(any::<usize>(), 0..5), any::<bool>()).prop_map(|(c, e)| Framing::Chunked(c, e)),
        1 => select(vec!["zz\r\n", "-1\r\n", "ffffffffffffffffff\r\n", "5\r\nab", "3\r\nabcXY\r\n", ""]).prop_map(Framing::BadChunk),
        1 => Just(Framing::Neither),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop_oneof![3 => Just(Route::Create), 2 => Just(Route::Exec), 2 => Just(Route::Load), 2 => Just(Route::Import)],
        body(),
        framing(),
        select(vec!["", "api-1", "bad name!"]),
    )
        .prop_map(|(route, body, framing, name)| Case {
            route,
            body,
            framing,
            name,
        })
}

fn body_bytes(b: &Body, outside: &std::path::Path) -> Vec<u8> {
    match b {
        Body::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
        Body::Damaged(v, damage) => {
            let mut bytes = serde_json::to_vec(v).unwrap_or_default();
            let len = bytes.len();
            for (at, xor) in damage {
                bytes[at % len] ^= xor.max(&1);
            }
            bytes
        }
        Body::Blank(s) => s.as_bytes().to_vec(),
        Body::Noise(n) => n.clone(),
        Body::Tar(l) => l.stream(outside),
        Body::Big(n) => {
            let mut v = vec![b' '; *n];
            v.extend_from_slice(b"{}");
            v
        }
    }
}

/// The request's bytes (link targets meant to leave a layer point below `outside`), and
/// whether it is well framed (so it must be answered).
fn request(c: &Case, outside: &std::path::Path) -> (Vec<u8>, bool) {
    let body = body_bytes(&c.body, outside);
    let target = if c.route == Route::Create {
        format!("{}{}", c.route.target(), c.name.replace(' ', "%20"))
    } else {
        c.route.target().to_string()
    };
    let content_type = if c.route.json() {
        "application/json"
    } else {
        "application/x-tar"
    };
    let mut out = format!(
        "POST {target} HTTP/1.1\r\nHost: berth\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
    )
    .into_bytes();
    let well_framed = match &c.framing {
        Framing::Length => {
            out.extend(format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes());
            out.extend_from_slice(&body);
            true
        }
        Framing::Short(more) => {
            out.extend(format!("Content-Length: {}\r\n\r\n", body.len() + more).into_bytes());
            out.extend_from_slice(&body);
            false
        }
        Framing::Long(fewer) => {
            let declared = body.len().saturating_sub(*fewer);
            out.extend(format!("Content-Length: {declared}\r\n\r\n").into_bytes());
            out.extend_from_slice(&body);
            // The first request is whole: it is answered (then the garbage after it is a
            // second request, refused or dropped).
            true
        }
        Framing::Chunked(cuts, ext) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
            points.push(0);
            points.push(body.len());
            points.sort_unstable();
            points.dedup();
            for w in points.windows(2) {
                let chunk = &body[w[0]..w[1]];
                let extension = if *ext { ";name=value" } else { "" };
                out.extend(format!("{:x}{extension}\r\n", chunk.len()).into_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            true
        }
        Framing::BadChunk(line) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            out.extend_from_slice(line.as_bytes());
            false
        }
        Framing::Neither => {
            out.extend_from_slice(b"\r\n");
            true
        }
    };
    (out, well_framed)
}

/// A private server: its runtime's thread, socket, and engine (with the image fuzz:latest
/// and a container "running" marked running, for exec).
struct Server {
    dir: tempfile::TempDir,
    socket: PathBuf,
    engine: Arc<berth_engine::Engine>,
    running: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = &self.dir;
    }
}

fn start() -> Result<Server, TestCaseError> {
    let dir = tempfile::tempdir_in(berth_fuzz::scratch_root()).map_err(fail)?;
    let engine =
        berth_engine::Engine::open(&dir.path().join("data"), &dir.path().join("exec"), None)
            .map_err(fail)?;
    let arch = berth_image::Platform::host().architecture;
    berth_image::archive::import(
        &engine.images,
        berth_fuzz::tar::image_rootfs().as_slice(),
        |d| {
            serde_json::from_value(
                json!({"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": [d.to_string()]}}),
            )
            .unwrap_or_default()
        },
        &[berth_image::Reference::parse("fuzz:latest").map_err(fail)?],
    )
    .map_err(fail)?;
    let running = engine
        .create_container(
            &berth_api_types::container::decode::create_request(
                &json!({"Image": "fuzz:latest", "HostConfig": {"NetworkMode": "none"}}),
            )
            .map_err(fail)?,
            Some("running"),
            None,
        )
        .map_err(fail)?
        .id;
    let bundle = engine.containers.bundle(&running);
    std::fs::create_dir_all(&bundle).map_err(fail)?;
    std::fs::write(
        bundle.join("config.json"),
        json!({"process": {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}}).to_string(),
    )
    .map_err(fail)?;
    // The rootfs a running container has mounted, for exec's user lookups.
    let etc = engine.containers.dir(&running).join("rootfs/etc");
    std::fs::create_dir_all(&etc).map_err(fail)?;
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0::/root:/bin/sh\nfuzz:x:1000:1000::/home:/bin/sh\n",
    )
    .map_err(fail)?;
    std::fs::write(etc.join("group"), "root:x:0:\nfuzz:x:1000:\n").map_err(fail)?;
    engine
        .containers
        .update(&running, |r| {
            r.state.status = berth_engine::containers::Status::Running
        })
        .map_err(fail)?;
    let engine = Arc::new(engine);
    let state = Arc::new(berth_api::server::State {
        engine: engine.clone(),
        registry: Arc::new(berth_registry::Client::new(&[]).map_err(fail)?),
        info: berth_api::server::DaemonInfo {
            id: "fuzz".into(),
            name: "fuzz".into(),
            server_version: "0".into(),
            data_root: dir.path().display().to_string(),
            storage_driver: "overlay2".into(),
            default_runtime: "berth-runtime".into(),
            runtimes: Vec::new(),
            insecure_registries: Vec::new(),
            security_options: Vec::new(),
        },
    });
    let socket = dir.path().join("api.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready) = std::sync::mpsc::channel::<Result<(), String>>();
    let path = socket.clone();
    let thread = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        rt.block_on(async move {
            let listener = match tokio::net::UnixListener::bind(&path) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            berth_api::server::serve(vec![listener], state, async {
                let _ = stopped.await;
            })
            .await;
        });
    });
    ready
        .recv_timeout(Duration::from_secs(30))
        .map_err(fail)?
        .map_err(fail)?;
    Ok(Server {
        dir,
        socket,
        engine,
        running,
        stop: Some(stop),
        thread: Some(thread),
    })
}

static SERVER: std::sync::Mutex<Option<Server>> = std::sync::Mutex::new(None);

/// Send `bytes` (then, unless `keep_open`, close the writing side); what came back before
/// the server closed, or an error after `limit`.
fn exchange(
    socket: &std::path::Path,
    bytes: &[u8],
    keep_open: bool,
    limit: Duration,
) -> Result<Vec<u8>, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    // The server may answer (and close) before it read everything: a failed write is fine.
    let _ = s.write_all(bytes);
    if !keep_open {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(out),
            Err(e) => {
                return Err(format!(
                    "no end after {limit:?} ({e}); got {:?}",
                    String::from_utf8_lossy(&out)
                ))
            }
        }
    }
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Back to the starting state: containers and images the case made are removed.
fn reset(s: &Server) -> Result<(), TestCaseError> {
    for c in s.engine.containers.list() {
        if c.id != s.running {
            s.engine.remove_container(&c.id, true).map_err(fail)?;
        }
    }
    let keep = s
        .engine
        .images
        .resolve("fuzz:latest")
        .map_err(fail)?
        .record
        .id;
    for image in s.engine.images.list().map_err(fail)? {
        if image.record.id != keep {
            s.engine
                .images
                .remove(&image.record.id.to_string(), true)
                .map_err(fail)?;
        }
    }
    s.engine.execs.forget_container(&s.running);
    Ok(())
}

fn case(c: Case) -> Result<(), TestCaseError> {
    let taken = SERVER.lock().unwrap_or_else(|e| e.into_inner()).take();
    let server = match taken {
        Some(s) => s,
        None => start()?,
    };
    let (bytes, well_framed) = request(&c, &server.dir.path().join("outside"));
    // A well-framed request is sent whole and answered on the open connection; a badly
    // framed one is followed by the end of the writing side, as a client that died.
    let response = exchange(&server.socket, &bytes, well_framed, Duration::from_secs(30))
        .map_err(|e| fail(format!("the request was not finished: {e}")))?;
    if well_framed {
        let status = status_of(&response).ok_or_else(|| {
            fail(format!(
                "no answer: {:?}",
                String::from_utf8_lossy(&response)
            ))
        })?;
        if c.route.json() && status >= 500 {
            return Err(fail(format!(
                "a request body gave a server error: {}",
                String::from_utf8_lossy(&response)
            )));
        }
        ANSWERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if status < 300 {
            ACCEPTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let ping = exchange(
        &server.socket,
        b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n",
        true,
        Duration::from_secs(30),
    )
    .map_err(|e| fail(format!("no /_ping answer after the case: {e}")))?;
    if status_of(&ping) != Some(200) {
        return Err(fail(format!(
            "/_ping: {:?}",
            String::from_utf8_lossy(&ping)
        )));
    }
    reset(&server)?;
    *SERVER.lock().unwrap_or_else(|e| e.into_inner()) = Some(server);
    Ok(())
}

static ANSWERED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static ACCEPTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Stops the server and removes its directory when the test ends, passed or failed.
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        drop(SERVER.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

#[test]
fn api_request_bodies() {
    let _teardown = Teardown;
    berth_fuzz::check("api-bodies", 600, case_strategy(), case);
    eprintln!(
        "fuzz api-bodies: {} requests answered, {} of them accepted",
        ANSWERED.load(std::sync::atomic::Ordering::Relaxed),
        ACCEPTED.load(std::sync::atomic::Ordering::Relaxed)
    );
}

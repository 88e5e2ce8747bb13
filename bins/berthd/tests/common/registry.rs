//! Registries for the tests: Debian's docker-registry (distribution 2.8) started privately
//! on a free port with its own storage (optionally with htpasswd or token auth, or TLS),
//! a token server for it, and a scripted fake registry for what a real one never does
//! (wrong digests, redirect loops, oversized manifests, stalls).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sha2_lite::sha256_hex;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate (for TLS, and to sign tokens) valid for `ips`.
pub fn self_signed(dir: &Path, ips: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let san: Vec<String> = ips.iter().map(|ip| format!("IP:{ip}")).collect();
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=berth-test"])
        .arg("-addext")
        .arg(format!("subjectAltName={}", san.join(",")))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

#[derive(Default)]
pub struct Options {
    /// htpasswd Basic auth with this user and password.
    pub basic: Option<(String, String)>,
    /// Token auth: the realm URL and the certificate tokens are signed with.
    pub token: Option<(String, PathBuf)>,
    /// TLS with this certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Listen here instead of 127.0.0.1:<free port>.
    pub addr: Option<String>,
    /// Run inside this network namespace.
    pub netns: Option<String>,
}

pub struct Registry {
    pub dir: tempfile::TempDir,
    pub addr: String,
    child: Option<Child>,
    netns: Option<String>,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Registry {
        let dir = tempfile::tempdir().expect("tmp");
        let addr = opts
            .addr
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{}", free_port()));
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
        if let Some((cert, key)) = &opts.tls {
            config += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
        }
        if let Some((user, pass)) = &opts.basic {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd");
            assert!(out.status.success());
            std::fs::write(&htpasswd, out.stdout).expect("write htpasswd");
            config += &format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        if let Some((realm, cert)) = &opts.token {
            config += &format!(
                "auth:\n  token:\n    realm: {realm}\n    service: berth-test-registry\n    issuer: berth-test\n    rootcertbundle: {}\n",
                cert.display()
            );
        }
        std::fs::write(dir.path().join("config.yml"), config).expect("config");
        let mut r = Registry {
            dir,
            addr,
            child: None,
            netns: opts.netns,
        };
        r.spawn();
        r
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.log_path());
        let log = std::fs::File::create(self.log_path()).expect("log");
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "docker-registry"]);
                c
            }
            None => Command::new("docker-registry"),
        };
        let child = cmd
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log().contains("listening on") {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop it (by pid); its storage stays for a restart.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Digests of the blobs served whole or in part by GET, in order.
    pub fn blob_gets(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
            .filter(|l| l.contains("HTTP/1.1\" 200") || l.contains("HTTP/1.1\" 206"))
            .filter_map(|l| {
                let start = l.find("sha256:")?;
                Some(l[start..start + 71].to_string())
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn base64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// A token server as distribution's token auth expects one: Basic credentials checked,
/// an RS256 JWT signed (by openssl) with the key whose certificate the registry trusts.
pub struct TokenServer {
    pub realm: String,
    pub cert: PathBuf,
    pub requests: Arc<Mutex<u32>>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start(user: &str, pass: &str) -> TokenServer {
        let dir = tempfile::tempdir().expect("tmp");
        let (cert, key) = self_signed(dir.path(), &["127.0.0.1"]);
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        use base64::Engine as _;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let realm = format!("http://{}/token", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(0));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        let (count, key, user) = (requests.clone(), key.clone(), user.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                if let Ok(mut n) = count.lock() {
                    *n += 1;
                }
                let _ = serve_token(conn, &expected, &user, &key, &x5c);
            }
        });
        TokenServer {
            realm,
            cert,
            requests,
            _dir: dir,
        }
    }
}

fn serve_token(
    mut conn: TcpStream,
    expected_auth: &str,
    user: &str,
    key: &Path,
    x5c: &str,
) -> std::io::Result<()> {
    let (target, headers) = read_head(&mut conn)?;
    if headers.get("authorization").map(String::as_str) != Some(expected_auth) {
        return respond(
            &mut conn,
            "401 Unauthorized",
            &[],
            br#"{"details":"incorrect username or password"}"#,
        );
    }
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let access: Vec<serde_json::Value> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(|s| s.replace("%3A", ":").replace("%2C", ",").replace("%2F", "/"))
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": "berth-test", "sub": user, "aud": "berth-test-registry",
        "exp": now + 600, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", access.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(signing_input.as_bytes())?;
    let sig = child.wait_with_output()?.stdout;
    let token = format!("{signing_input}.{}", base64url(&sig));
    let body = serde_json::json!({"token": token, "expires_in": 600}).to_string();
    respond(&mut conn, "200 OK", &[], body.as_bytes())
}

/// The request line's target and the headers (lower-case names).
fn read_head(conn: &mut TcpStream) -> std::io::Result<(String, HashMap<String, String>)> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    headers.insert(":method".into(), method);
    Ok((target, headers))
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

/// How the fake serves one blob or manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    Normal,
    /// One byte changed.
    Corrupt,
    /// A redirect to itself, forever.
    RedirectLoop,
    /// Half the bytes, then nothing until the connection is dropped.
    Stall,
    /// (Manifests) a Docker-Content-Digest that is not the content's.
    WrongDigestHeader,
    /// Half the bytes, then the connection closes; every time.
    Drop,
    /// As Drop the first time, then normal (and Range requests are honoured).
    DropOnce,
}

#[derive(Default)]
struct FakeState {
    /// path under /v2/ -> (content type, bytes)
    content: HashMap<String, (String, Vec<u8>)>,
    behavior: HashMap<String, Behavior>,
    requests: Vec<String>,
}

/// A registry that serves what the test put in it, the way the test says.
pub struct FakeRegistry {
    pub addr: String,
    state: Arc<Mutex<FakeState>>,
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(Mutex::new(FakeState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve_fake(conn, &state);
                });
            }
        });
        FakeRegistry { addr, state }
    }

    fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().expect("fake state"))
    }

    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = digest(bytes);
        self.with(|s| {
            s.content.insert(
                format!("{repo}/blobs/{d}"),
                ("application/octet-stream".into(), bytes.to_vec()),
            )
        });
        d
    }

    /// A manifest under a tag and under its digest; returns the digest.
    pub fn put_manifest(&self, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) -> String {
        let d = digest(bytes);
        self.with(|s| {
            for r in [tag.to_string(), d.clone()] {
                s.content.insert(
                    format!("{repo}/manifests/{r}"),
                    (media_type.into(), bytes.to_vec()),
                );
            }
        });
        d
    }

    /// `key` is a blob digest or `manifests/<ref>`.
    pub fn set_behavior(&self, key: &str, b: Behavior) {
        self.with(|s| s.behavior.insert(key.to_string(), b));
    }

    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }

    /// How many GETs reached the blob `d`.
    pub fn blob_gets(&self, d: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with("GET ") && r.contains(&format!("/blobs/{d}")))
            .count()
    }
}

fn serve_fake(mut conn: TcpStream, state: &Mutex<FakeState>) -> std::io::Result<()> {
    let (target, headers) = read_head(&mut conn)?;
    let method = headers.get(":method").cloned().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let Some(rest) = path.strip_prefix("/v2/") else {
        return respond(&mut conn, "404 Not Found", &[], b"");
    };
    if rest.is_empty() {
        return respond(&mut conn, "200 OK", &[], b"{}");
    }
    let range_from: Option<usize> = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok());
    let (found, behavior) = {
        let mut s = state.lock().expect("state");
        let shown = match range_from {
            Some(n) => format!("{method} {path} from {n}"),
            None => format!("{method} {path}"),
        };
        s.requests.push(shown);
        let key = rest.rsplit_once("/blobs/").map_or_else(
            || format!("manifests/{}", rest.rsplit('/').next().unwrap_or_default()),
            |(_, d)| d.to_string(),
        );
        let behavior = s.behavior.get(&key).cloned().unwrap_or(Behavior::Normal);
        if behavior == Behavior::DropOnce {
            s.behavior.insert(key, Behavior::Normal);
        }
        (s.content.get(rest).cloned(), behavior)
    };
    let Some((content_type, mut bytes)) = found else {
        return respond(
            &mut conn,
            "404 Not Found",
            &[("Content-Type", "application/json".into())],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        );
    };
    let mut headers = vec![("Content-Type", content_type)];
    let real = digest(&bytes);
    match behavior {
        Behavior::RedirectLoop => {
            return respond(
                &mut conn,
                "307 Temporary Redirect",
                &[("Location", path)],
                b"",
            )
        }
        Behavior::Corrupt => {
            if let Some(b) = bytes.last_mut() {
                *b ^= 0xff;
            }
        }
        Behavior::WrongDigestHeader => {
            headers.push(("Docker-Content-Digest", digest(b"something else")));
        }
        Behavior::Stall => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                bytes.len()
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(&bytes[..bytes.len() / 2])?;
            conn.flush()?;
            // Hold the connection until the client gives up.
            let mut sink = [0u8; 64];
            while conn.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
            return Ok(());
        }
        Behavior::Drop | Behavior::DropOnce => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                bytes.len()
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(&bytes[..bytes.len() / 2])?;
            return conn.flush();
        }
        Behavior::Normal => {}
    }
    if let Some(from) = range_from.filter(|n| *n < bytes.len()) {
        let total = bytes.len();
        headers.push((
            "Content-Range",
            format!("bytes {from}-{}/{total}", total - 1),
        ));
        return respond(&mut conn, "206 Partial Content", &headers, &bytes[from..]);
    }
    if !headers.iter().any(|(k, _)| *k == "Docker-Content-Digest") {
        headers.push(("Docker-Content-Digest", real));
    }
    if method == "HEAD" {
        headers.push(("X-Length", bytes.len().to_string()));
        return respond(&mut conn, "200 OK", &headers, b"");
    }
    respond(&mut conn, "200 OK", &headers, &bytes)
}

/// An image's pieces as a registry serves them: gzip layers, config, OCI manifest.
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An image of `layers` (plain tars, gzipped here) for `arch`.
pub fn test_image(layers: &[Vec<u8>], arch: &str) -> TestImage {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let blobs: Vec<Vec<u8>> = layers
        .iter()
        .map(|l| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(l).expect("gzip");
            gz.finish().expect("gzip")
        })
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": blobs.iter().map(|b| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(b), "size": b.len()})).collect::<Vec<_>>(),
    }))
    .expect("manifest");
    TestImage {
        layers: blobs,
        config,
        manifest,
    }
}

impl FakeRegistry {
    /// Serve `image` as `repo:tag`; returns the manifest digest.
    pub fn serve_image(&self, repo: &str, tag: &str, image: &TestImage) -> String {
        for l in &image.layers {
            self.put_blob(repo, l);
        }
        self.put_blob(repo, &image.config);
        self.put_manifest(repo, tag, OCI_MANIFEST, &image.manifest)
    }
}

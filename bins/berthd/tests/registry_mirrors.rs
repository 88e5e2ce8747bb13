//! Per-registry mirrors (`--registry-config DIR`, containerd's hosts.toml files): pulls of
//! a registry that cannot be reached here (gcr.io) served by a private docker-registry on
//! loopback, the order mirrors are tried in, a TLS mirror trusted through its CA file, and a
//! bad hosts.toml refused at start.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::registry::{free_port, Registry};
use common::{classic_archive, layer, Daemon, BERTHD};

/// Push a two-layer image as `<registry>/some/image:tag`; returns its image ID.
fn push_image(reg: &Registry) -> String {
    let d = Daemon::start();
    let name = format!("{}/some/image:tag", reg.addr);
    let layers = vec![
        layer(&[("etc/mirrored", b"from the mirror")]),
        layer(&[("second.txt", b"second layer")]),
    ];
    let archive = d.dir.path().join("image.tar");
    classic_archive(&archive, &name, &layers, serde_json::json!({}));
    d.docker(&["load", "-i", archive.to_str().expect("utf8")])
        .ok();
    d.docker(&["push", &name]).ok();
    inspect(&d, &name, "{{.Id}}")
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.docker(&["image", "inspect", "--format", format, name])
        .ok()
        .stdout
        .trim()
        .to_string()
}

/// A registry configuration directory holding `namespace/hosts.toml`.
fn hosts_dir(parent: &Path, namespace: &str, hosts_toml: &str) -> String {
    let dir = parent.join("certs.d");
    std::fs::create_dir_all(dir.join(namespace)).expect("mkdir");
    std::fs::write(dir.join(namespace).join("hosts.toml"), hosts_toml).expect("hosts.toml");
    dir.to_str().expect("utf8").to_string()
}

/// A daemon reading its mirrors from `hosts_toml` for `namespace`.
fn daemon_with_hosts(namespace: &str, hosts_toml: &str) -> Daemon {
    let mut d = Daemon::start_unspawned();
    let dir = hosts_dir(d.dir.path(), namespace, hosts_toml);
    d.spawn(&["--registry-config", &dir]);
    d
}

#[test]
fn a_gcr_io_pull_is_served_by_the_configured_mirror_and_tagged_with_the_name_asked_for() {
    let reg = Registry::start();
    let id = push_image(&reg);
    let d = daemon_with_hosts(
        "gcr.io",
        &format!(
            "server = \"https://gcr.io\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            reg.addr
        ),
    );
    let pulled = d.docker(&["pull", "gcr.io/some/image:tag"]);
    pulled.ok();
    assert!(pulled.stdout.contains("Pull complete"), "{}", pulled.stdout);
    assert_eq!(inspect(&d, "gcr.io/some/image:tag", "{{.Id}}"), id);
    assert_eq!(
        inspect(&d, "gcr.io/some/image:tag", "{{json .RepoTags}}"),
        "[\"gcr.io/some/image:tag\"]"
    );
    // The repository digest names the registry asked for, not the mirror.
    let repo_digests = inspect(&d, "gcr.io/some/image:tag", "{{json .RepoDigests}}");
    assert!(
        repo_digests.starts_with("[\"gcr.io/some/image@sha256:"),
        "{repo_digests}"
    );
    assert_eq!(
        reg.blob_gets().len(),
        3,
        "the config and both layers came from the mirror"
    );
    // Told which registry the pull is for, as containerd tells mirrors.
    assert!(
        reg.log()
            .contains("GET /v2/some/image/manifests/tag?ns=gcr.io"),
        "{}",
        reg.log()
    );
    // The mirror serves pulls by digest too.
    let digest = repo_digests.trim_matches(['[', ']', '"']).to_string();
    let down = format!("127.0.0.1:{}", free_port());
    let fresh = daemon_with_hosts(
        "gcr.io",
        &format!(
            "server = \"http://{down}\"\n[host.\"http://{}\"]\n  capabilities = [\"pull\"]\n",
            reg.addr
        ),
    );
    fresh.docker(&["pull", &digest]).ok();
    assert_eq!(inspect(&fresh, &digest, "{{.Id}}"), id);
    // A host that may only pull is not trusted to resolve a tag: the pull goes on to the
    // server (nothing listens there) and fails there.
    fresh
        .docker(&["pull", "gcr.io/some/image:tag"])
        .failed_with(&down);
    // Registries without a hosts.toml are untouched by gcr.io's.
    let other = d.docker(&["pull", &format!("{}/some/image:tag", reg.addr)]);
    other.ok();
}

#[test]
fn a_mirror_that_is_down_or_lacks_the_image_falls_through_to_the_next() {
    let reg = Registry::start();
    let id = push_image(&reg);
    // An empty registry answers 404 for the image; nothing listens on the free port.
    let empty = Registry::start();
    let down = format!("127.0.0.1:{}", free_port());
    let upstream_down = format!("127.0.0.1:{}", free_port());
    let d = daemon_with_hosts(
        "registry.k8s.io",
        &format!(
            "server = \"https://{upstream_down}\"\n\
             [host.\"http://{down}\"]\n  capabilities = [\"pull\", \"resolve\"]\n\
             [host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n\
             [host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            empty.addr, reg.addr
        ),
    );
    d.docker(&["pull", "registry.k8s.io/some/image:tag"]).ok();
    assert_eq!(inspect(&d, "registry.k8s.io/some/image:tag", "{{.Id}}"), id);
    assert!(
        empty.log().contains("/v2/some/image/manifests/tag"),
        "the empty mirror was asked first: {}",
        empty.log()
    );
    assert!(empty.blob_gets().is_empty());
    // When every host fails, the error is the one of a host that answered (the empty
    // mirror's "manifest unknown"), not the unreachable upstream's.
    d.docker(&["pull", "registry.k8s.io/some/image:missing"])
        .failed_with("manifest unknown");
}

#[test]
fn the_default_namespace_and_a_server_with_a_path_apply_to_every_registry() {
    let reg = Registry::start();
    let id = push_image(&reg);
    // `_default` sends every registry to the local one, as its server, with the API root
    // given in the URL.
    let d = daemon_with_hosts(
        "_default",
        &format!(
            "server = \"http://{}/v2\"\ncapabilities = [\"pull\", \"resolve\"]\n",
            reg.addr
        ),
    );
    d.docker(&["pull", "quay.io/some/image:tag"]).ok();
    assert_eq!(inspect(&d, "quay.io/some/image:tag", "{{.Id}}"), id);
    // The server may not push: a push is refused with what the configuration says.
    d.docker(&["tag", "quay.io/some/image:tag", "quay.io/some/other:1"])
        .ok();
    d.docker(&["push", "quay.io/some/other:1"])
        .failed_with("no host configured for quay.io may push");
}

/// berthd started with `args`, expected to refuse to start: its stderr.
fn start_error(dir: &Path, args: &[&str]) -> String {
    std::fs::write(dir.join("daemon.json"), "{}").expect("daemon.json");
    let out = Command::new(BERTHD)
        .arg("--config-file")
        .arg(dir.join("daemon.json"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("berth.sock").display()))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("run"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run berthd");
    assert!(!out.status.success(), "berthd started");
    assert!(
        !dir.join("data").exists(),
        "nothing is set up before the configuration is read"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_hosts_toml_stops_berthd_at_start_naming_the_file_and_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = hosts_dir(
        tmp.path(),
        "gcr.io",
        "server = \"https://gcr.io\"\n\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"\n",
    );
    let err = start_error(tmp.path(), &["--registry-config", &dir]);
    let file = format!("{dir}/gcr.io/hosts.toml");
    assert!(err.contains(&file), "{err}");
    assert!(err.contains("line 4"), "{err}");

    // A misspelt key is refused (with its line), not ignored.
    std::fs::write(
        &file,
        "server = \"https://gcr.io\"\n\n[host.\"http://127.0.0.1:5000\"]\n  skip_verfy = true\n",
    )
    .expect("write");
    let err = start_error(tmp.path(), &["--registry-config", &dir]);
    assert!(
        err.contains(&file) && err.contains("line 3") && err.contains("skip_verfy"),
        "{err}"
    );

    // A CA file that is not there is a start error too.
    std::fs::write(
        &file,
        "[host.\"https://m.example\"]\n  ca = \"missing.pem\"\n",
    )
    .expect("write");
    let err = start_error(tmp.path(), &["--registry-config", &dir]);
    assert!(err.contains(&format!("{dir}/gcr.io/missing.pem")), "{err}");

    // A configured directory that does not exist (a typo) is an error.
    let missing = tmp.path().join("nope");
    let err = start_error(
        tmp.path(),
        &["--registry-config", missing.to_str().expect("utf8")],
    );
    assert!(
        err.contains("registry-config") && err.contains("nope"),
        "{err}"
    );
}

#[test]
fn daemon_json_names_the_registry_config_directory() {
    let reg = Registry::start();
    let id = push_image(&reg);
    let mut d = Daemon::start_unspawned();
    let dir = hosts_dir(
        d.dir.path(),
        "gcr.io",
        &format!("[host.\"http://{}\"]\n", reg.addr),
    );
    std::fs::write(
        d.dir.path().join("daemon.json"),
        serde_json::json!({ "registry-config": dir }).to_string(),
    )
    .expect("daemon.json");
    d.spawn(&[]);
    d.docker(&["pull", "gcr.io/some/image:tag"]).ok();
    assert_eq!(inspect(&d, "gcr.io/some/image:tag", "{{.Id}}"), id);
}

/// A network namespace of the test's own with a non-loopback address on its loopback device
/// (an address berth does not take as insecure).
struct Netns(String);

impl Netns {
    fn create(addr: &str) -> Netns {
        let name = format!("berth-mirror-{}-{}", std::process::id(), free_port());
        let ip = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().expect("ip");
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &ns.0,
            "addr",
            "add",
            &format!("{addr}/32"),
            "dev",
            "lo",
        ]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate it signed for `ip` (rustls refuses a self-signed CA
/// certificate as the server's own): (CA certificate, server certificate, server key).
fn ca_and_server_cert(dir: &Path, ip: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |name: &str| dir.join(name);
    let s = |path: &PathBuf| path.to_str().expect("utf8").to_string();
    let (ca, ca_key) = (p("ca.pem"), p("ca-key.pem"));
    let (cert, key, csr, ext) = (p("cert.pem"), p("key.pem"), p("req.csr"), p("ext.cnf"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=berth-test-ca",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=berth-test-registry",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    std::fs::write(
        &ext,
        format!("basicConstraints=CA:FALSE\nsubjectAltName=IP:{ip}\n"),
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]);
    (ca, cert, key)
}

#[test]
fn a_tls_mirror_is_trusted_through_the_ca_file_its_hosts_toml_names() {
    // 192.0.2.3 (TEST-NET) is not loopback: its self-signed certificate is refused unless
    // a CA says otherwise.
    let ns = Netns::create("192.0.2.3");
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = ca_and_server_cert(dir.path(), "192.0.2.3");
    let mut reg = Registry::start_with(common::registry::Options {
        tls: Some((cert, key)),
        addr: Some("192.0.2.3:5443".into()),
        netns: Some(ns.0.clone()),
        ..Default::default()
    });
    // The image goes in through a daemon that takes the registry as insecure.
    let mut pusher = Daemon::start_unspawned();
    pusher.netns = Some(ns.0.clone());
    pusher.spawn(&["--insecure-registry", "192.0.2.3:5443"]);
    let name = "192.0.2.3:5443/some/image:tag";
    let archive = pusher.dir.path().join("image.tar");
    classic_archive(
        &archive,
        name,
        &[layer(&[("tls.txt", b"over TLS")])],
        serde_json::json!({}),
    );
    pusher
        .docker(&["load", "-i", archive.to_str().expect("utf8")])
        .ok();
    pusher.docker(&["push", name]).ok();
    let id = inspect(&pusher, name, "{{.Id}}");
    pusher.kill();

    let mut d = Daemon::start_unspawned();
    d.netns = Some(ns.0.clone());
    let mirror = "[host.\"https://192.0.2.3:5443\"]\n  capabilities = [\"pull\", \"resolve\"]\n";
    let certs = hosts_dir(
        d.dir.path(),
        "gcr.io",
        &format!("server = \"https://192.0.2.3:1\"\n{mirror}"),
    );
    d.spawn(&["--registry-config", &certs]);
    d.docker(&["pull", "gcr.io/some/image:tag"])
        .failed_with("certificate");
    d.kill();
    // The CA file, relative to the hosts.toml.
    std::fs::copy(&ca, Path::new(&certs).join("gcr.io/registry-ca.pem")).expect("copy");
    hosts_dir(
        d.dir.path(),
        "gcr.io",
        &format!("server = \"https://192.0.2.3:1\"\n{mirror}  ca = \"registry-ca.pem\"\n"),
    );
    d.spawn(&["--registry-config", &certs]);
    d.docker(&["pull", "gcr.io/some/image:tag"]).ok();
    assert_eq!(inspect(&d, "gcr.io/some/image:tag", "{{.Id}}"), id);
    d.kill();
    reg.stop();
}

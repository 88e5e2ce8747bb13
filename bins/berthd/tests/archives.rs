//! save and load: berth's own round trip, docker-archive in the classic layout and docker
//! 25's OCI layout, plain OCI layouts, gzip'd input, and the peers: skopeo and podman.

mod common;

use std::process::Command;

use common::*;

fn podman(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(dir.join("podman/root"))
        .arg("--runroot")
        .arg(dir.join("podman/run"))
        .args([
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
            "--storage-driver",
            "vfs",
        ])
        .args(args);
    cmd.output().expect("podman")
}

fn layer_digests(d: &Daemon, name: &str) -> String {
    let out = d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        name,
    ]);
    out.ok();
    out.stdout.trim().to_string()
}

#[test]
fn classic_layout_with_shared_layers_and_gzip() {
    let d = Daemon::start();
    let base = layer(&[("etc/base", b"base\n")]);
    let top = layer(&[("etc/top", b"top\n"), ("etc/.wh.base", b"")]);
    let archive = d.dir.path().join("classic.tar");
    classic_archive(
        &archive,
        "classic/img:1",
        &[base.clone(), top],
        serde_json::json!({"k": "v"}),
    );
    let out = d.docker(&["load", "-i", archive.to_str().expect("utf8")]);
    out.ok();
    assert!(
        out.stdout.contains("Loaded image: classic/img:1"),
        "{}",
        out.stdout
    );
    assert_eq!(d.stored_snapshots().len(), 2);
    // A second image on the same base shares its snapshot.
    let other = d.dir.path().join("other.tar.gz");
    let plain = d.dir.path().join("other.tar");
    classic_archive(
        &plain,
        "classic/other:1",
        &[base, layer(&[("srv/x", b"x")])],
        serde_json::json!({}),
    );
    let gz = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", plain.display(), other.display()))
        .status()
        .expect("gzip");
    assert!(gz.success());
    d.docker(&["load", "-i", other.to_str().expect("utf8")])
        .ok();
    assert_eq!(
        d.stored_snapshots().len(),
        3,
        "the base layer is unpacked once"
    );
    let history = d.docker(&["history", "--format", "{{.CreatedBy}}", "classic/img:1"]);
    assert_eq!(
        history.stdout.lines().collect::<Vec<_>>(),
        ["test layer", "test layer"]
    );
    // Removing one image keeps the shared layer for the other.
    d.docker(&["rmi", "classic/img:1"]).ok();
    assert_eq!(d.stored_snapshots().len(), 2);
    d.docker(&["rmi", "classic/other:1"]).ok();
    assert!(d.stored_snapshots().is_empty());
}

#[test]
fn save_load_round_trip_and_peers_skopeo_podman() {
    let d = Daemon::start();
    let tar = busybox_rootfs_tar(d.dir.path());
    d.docker(&[
        "import",
        "--change",
        "CMD [\"/bin/sh\"]",
        tar.to_str().expect("utf8"),
        "rt/bb:1",
    ])
    .ok();
    d.docker(&["tag", "rt/bb:1", "localhost:5000/rt/bb:2"]).ok();
    let layers = layer_digests(&d, "rt/bb:1");
    let id = d
        .docker(&["images", "-q", "--no-trunc", "rt/bb:1"])
        .stdout
        .trim()
        .to_string();
    let saved = d.dir.path().join("saved.tar");
    let saved_s = saved.to_str().expect("utf8");
    d.docker(&["save", "-o", saved_s, "rt/bb:1", "localhost:5000/rt/bb:2"])
        .ok();

    // berth itself: remove and load back, same id and layers.
    d.docker(&["rmi", "rt/bb:1", "localhost:5000/rt/bb:2"]).ok();
    let loaded = d.docker(&["load", "-i", saved_s]);
    loaded.ok();
    assert!(
        loaded.stdout.contains("rt/bb:1") && loaded.stdout.contains("localhost:5000/rt/bb:2"),
        "{}",
        loaded.stdout
    );
    assert_eq!(
        d.docker(&["images", "-q", "--no-trunc", "rt/bb:1"])
            .stdout
            .trim(),
        id
    );
    assert_eq!(layer_digests(&d, "localhost:5000/rt/bb:2"), layers);

    // skopeo reads what berth saved, and writes archives and OCI layouts berth loads.
    let inspect = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("docker-archive:{saved_s}:rt/bb:1"))
        .output()
        .expect("skopeo");
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let sk_archive = d.dir.path().join("skopeo.tar");
    let copy = Command::new("skopeo")
        .args([
            "copy",
            &format!("docker-archive:{saved_s}:rt/bb:1"),
            &format!("docker-archive:{}:sk/copy:1", sk_archive.display()),
        ])
        .output()
        .expect("skopeo copy");
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    d.docker(&["load", "-i", sk_archive.to_str().expect("utf8")])
        .ok();
    assert_eq!(layer_digests(&d, "sk/copy:1"), layers);
    let oci_dir = d.dir.path().join("oci");
    let copy = Command::new("skopeo")
        .args([
            "copy",
            &format!("docker-archive:{saved_s}:rt/bb:1"),
            &format!("oci:{}:sk", oci_dir.display()),
        ])
        .output()
        .expect("skopeo copy oci");
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let oci_tar = d.dir.path().join("oci.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&oci_dir)
        .arg("-cf")
        .arg(&oci_tar)
        .arg(".")
        .status()
        .expect("tar")
        .success());
    let loaded = d.docker(&["load", "-i", oci_tar.to_str().expect("utf8")]);
    loaded.ok();
    assert!(
        loaded.stdout.contains("Loaded image ID: sha256:"),
        "{}",
        loaded.stdout
    );

    // podman loads berth's archive with the same layers, and berth loads podman's.
    let out = podman(d.dir.path(), &["load", "-i", saved_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = podman(
        d.dir.path(),
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            "localhost/rt/bb:1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), layers);
    let pm_tar = d.dir.path().join("podman.tar");
    let out = podman(
        d.dir.path(),
        &[
            "save",
            "-o",
            pm_tar.to_str().expect("utf8"),
            "localhost/rt/bb:1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.docker(&["load", "-i", pm_tar.to_str().expect("utf8")])
        .ok();
    assert_eq!(layer_digests(&d, "localhost/rt/bb:1"), layers);
    let _ = podman(d.dir.path(), &["rmi", "-a", "-f"]);
}

//! `docker cp` of a STOPPED container through the binds and volumes mounted below the
//! copied directory (issue 16): dockerd mounts them into its private view of the
//! container's files, so a copy out carries their content and a copy in writes into
//! them; berthd reads and writes their sources. A read-only volume refuses what would go
//! into it, and a link in a volume is archived as a link, never followed out of it.

mod common;

use std::path::Path;

use common::*;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn exec_out(d: &Daemon, name: &str, script: &str) -> String {
    d.docker(&["exec", name, "sh", "-c", script])
        .ok()
        .stdout
        .clone()
}

fn mountpoint(d: &Daemon, volume: &str) -> std::path::PathBuf {
    let out = d
        .docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", volume])
        .ok()
        .stdout
        .clone();
    std::path::PathBuf::from(out.trim())
}

/// A container with a named volume at /data/sub and a bind at /data/b writes into both,
/// then stops: a copy of /data (and of /data/.) has the volume's and the bind's files;
/// a link to / in the volume comes out as a link.
#[test]
fn cp_out_of_a_stopped_container_carries_nested_mounts() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    let bound = d.dir.path().join("bound");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::create_dir_all(&bound).expect("mkdir");
    std::fs::write(bound.join("from-host"), "bound\n").expect("write");

    let bind = format!("{}:/data/b", s(&bound));
    d.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "st",
        "-v",
        "stvol:/data/sub",
        "-v",
        &bind,
        "bb:1",
        "sleep",
        "1000",
    ])
    .ok();
    exec_out(
        &d,
        "st",
        "echo own > /data/own && mkdir /data/sub/deep && echo vol > /data/sub/deep/v && ln -s / /data/sub/up",
    );
    d.docker(&["stop", "-t", "0", "st"]).ok();

    d.docker(&["cp", "st:/data", s(&host.join("out"))]).ok();
    assert_eq!(read(&host.join("out/own")), "own\n");
    assert_eq!(read(&host.join("out/sub/deep/v")), "vol\n");
    assert_eq!(read(&host.join("out/b/from-host")), "bound\n");
    let up = std::fs::symlink_metadata(host.join("out/sub/up")).expect("the link");
    assert!(up.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(host.join("out/sub/up")).expect("readlink"),
        Path::new("/")
    );

    d.docker(&["cp", "st:/data/.", s(&host.join("content"))])
        .ok();
    assert_eq!(read(&host.join("content/sub/deep/v")), "vol\n");
    assert_eq!(read(&host.join("content/b/from-host")), "bound\n");
    d.docker(&["rm", "-f", "st"]).ok();
    d.docker(&["volume", "rm", "stvol"]).ok();
}

/// A container created and never started has no mount point in its tree yet: a copy of
/// the directory above has the volume's content all the same.
#[test]
fn cp_out_of_a_created_container_carries_its_volume() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).expect("mkdir");
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "crvol:/v",
        "bb:1",
        "sh",
        "-c",
        "echo filled > /v/f",
    ])
    .ok();
    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        "cr",
        "-v",
        "crvol:/tmp/vol",
        "bb:1",
        "true",
    ])
    .ok();
    d.docker(&["cp", "cr:/tmp", s(&host.join("tmp"))]).ok();
    assert_eq!(read(&host.join("tmp/vol/f")), "filled\n");
    d.docker(&["rm", "cr"]).ok();
    d.docker(&["volume", "rm", "crvol"]).ok();
}

/// A tree copied into /data of a stopped container puts what is under sub/ in the volume
/// and what is under b/ in the bind's host directory, where the container sees them once
/// it runs again; under a read-only volume the copy is refused and nothing is written.
#[test]
fn cp_into_a_stopped_container_writes_into_nested_mounts() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    let bound = d.dir.path().join("bound");
    std::fs::create_dir_all(&bound).expect("mkdir");
    std::fs::create_dir_all(host.join("tree/sub/deep")).expect("mkdir");
    std::fs::create_dir_all(host.join("tree/b")).expect("mkdir");
    std::fs::write(host.join("tree/top"), "top\n").expect("write");
    std::fs::write(host.join("tree/sub/deep/new"), "in the volume\n").expect("write");
    std::fs::write(host.join("tree/b/new"), "in the bind\n").expect("write");

    let bind = format!("{}:/data/b", s(&bound));
    d.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "pt",
        "-v",
        "ptvol:/data/sub",
        "-v",
        "ptro:/data/ro:ro",
        "-v",
        &bind,
        "bb:1",
        "sleep",
        "1000",
    ])
    .ok();
    d.docker(&["stop", "-t", "0", "pt"]).ok();

    d.docker(&["cp", &format!("{}/.", s(&host.join("tree"))), "pt:/data"])
        .ok();
    assert_eq!(
        read(&mountpoint(&d, "ptvol").join("deep/new")),
        "in the volume\n"
    );
    assert_eq!(read(&bound.join("new")), "in the bind\n");

    // Into the read-only volume below the destination: refused, the volume stays empty.
    std::fs::create_dir_all(host.join("rotree/ro")).expect("mkdir");
    std::fs::write(host.join("rotree/ro/x"), "no\n").expect("write");
    d.docker(&["cp", &format!("{}/.", s(&host.join("rotree"))), "pt:/data"])
        .failed();
    let ro = mountpoint(&d, "ptro");
    assert!(!ro.join("x").exists(), "written into a read-only volume");

    d.docker(&["start", "pt"]).ok();
    assert_eq!(
        exec_out(&d, "pt", "cat /data/top /data/sub/deep/new /data/b/new"),
        "top\nin the volume\nin the bind\n"
    );
    d.docker(&["rm", "-f", "pt"]).ok();
    d.docker(&["volume", "rm", "ptvol", "ptro"]).ok();
}

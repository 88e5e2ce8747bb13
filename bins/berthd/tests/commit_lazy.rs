//! `docker commit` answers once the layer's blob is stored and the image recorded; the
//! layer's snapshot is unpacked afterwards (issue 16's speed target). Every consumer of a
//! committed image's files waits for that unpack or makes it: run at once, two runs at
//! once, a restart after SIGKILL that left the snapshot unmade, rmi at once, save/load.

mod common;

use std::collections::BTreeSet;

use common::*;

/// A stopped container `name` of `bb:1` that added `files` files under /many, changed
/// /etc/passwd and deleted /etc/group.
fn changed_container(d: &Daemon, name: &str, files: u32) {
    let script = format!(
        "mkdir /many && for i in $(seq {files}); do echo $i > /many/$i; done; \
         echo extra:x:9:9::/:/bin/sh >> /etc/passwd; rm /etc/group"
    );
    d.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        name,
        "bb:1",
        "sh",
        "-c",
        &script,
    ])
    .ok();
}

/// What a container of `image` sees of the committed changes.
fn seen(d: &Daemon, image: &str) -> String {
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        "ls /many | wc -l; cat /many/7; tail -n1 /etc/passwd; test -e /etc/group || echo no-group",
    ])
    .ok()
    .stdout
    .clone()
}

const SEEN: &str = "300\n7\nextra:x:9:9::/:/bin/sh\nno-group\n";

/// The entries of the store's snapshot area.
fn snapshot_entries(d: &Daemon) -> BTreeSet<String> {
    d.stored_snapshots().into_iter().collect()
}

#[test]
fn commit_then_run_at_once_and_diff_is_the_containers_own() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    changed_container(&d, "src", 300);
    d.docker(&["commit", "src", "lazy:1"]).ok();
    assert_eq!(seen(&d, "lazy:1"), SEEN);
    // A container of the committed image: its diff is its own change only, not the
    // committed layer's files (they are in a lower layer).
    d.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        "next",
        "lazy:1",
        "sh",
        "-c",
        "echo 8 > /many/8",
    ])
    .ok();
    let diff = d.docker(&["diff", "next"]).ok().stdout.clone();
    let mut lines: Vec<&str> = diff.lines().collect();
    lines.sort();
    assert_eq!(lines, ["C /many", "C /many/8"], "{diff}");
}

#[test]
fn two_runs_at_once_of_a_fresh_commit() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    changed_container(&d, "src", 300);
    d.docker(&["commit", "src", "lazy:2"]).ok();
    let outs: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2).map(|_| s.spawn(|| seen(&d, "lazy:2"))).collect();
        runs.into_iter()
            .map(|r| r.join().expect("a run thread"))
            .collect()
    });
    assert_eq!(outs, [SEEN, SEEN]);
    assert!(
        !snapshot_entries(&d).iter().any(|e| e.starts_with("tmp-")),
        "no staging directory left: {:?}",
        snapshot_entries(&d)
    );
}

/// berthd killed before the committed layer was unpacked (its snapshot removed by hand,
/// a half-made staging directory left as a crash leaves it): after the restart the image
/// runs, and the staging directory is gone.
#[test]
fn commit_then_sigkill_restart_run() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    changed_container(&d, "src", 300);
    let id = d
        .docker(&["commit", "src", "lazy:3"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let top = d
        .docker(&[
            "image",
            "inspect",
            "-f",
            "{{.GraphDriver.Data.LowerDir}}",
            &id,
        ])
        .ok()
        .stdout
        .trim()
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    d.kill();
    let top = std::path::PathBuf::from(top);
    assert!(top.ends_with("fs"), "{top:?}");
    let chain_dir = top.parent().expect("the snapshot's directory");
    if chain_dir.exists() {
        std::fs::remove_dir_all(chain_dir).expect("remove the snapshot");
    }
    let half = d.data_root().join("image/snapshots/tmp-crashed/fs/many");
    std::fs::create_dir_all(&half).expect("a half-made staging dir");
    std::fs::write(half.join("1"), "1\n").expect("a half-made file");
    d.spawn(&[]);
    assert_eq!(seen(&d, "lazy:3"), SEEN);
    assert!(chain_dir.join("fs/many/300").is_file());
    assert!(!d.data_root().join("image/snapshots/tmp-crashed").exists());
    // And a kill right after a commit, whatever the unpack had done by then.
    d.docker(&["commit", "src", "lazy:4"]).ok();
    d.kill();
    d.spawn(&[]);
    assert_eq!(seen(&d, "lazy:4"), SEEN);
}

#[test]
fn commit_then_rmi_at_once() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    changed_container(&d, "src", 300);
    let (snaps, blobs) = (snapshot_entries(&d), d.stored_blobs());
    d.docker(&["commit", "src", "lazy:5"]).ok();
    d.docker(&["rmi", "lazy:5"]).ok();
    // The background unpack, finding the image gone, leaves nothing behind.
    assert!(
        wait_for(|| snapshot_entries(&d) == snaps),
        "{:?} != {snaps:?}",
        snapshot_entries(&d)
    );
    assert_eq!(d.stored_blobs(), blobs);
    // The store still works for the same layer committed again.
    d.docker(&["commit", "src", "lazy:6"]).ok();
    assert_eq!(seen(&d, "lazy:6"), SEEN);
}

#[test]
fn commit_then_save_and_load() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    changed_container(&d, "src", 300);
    d.docker(&["commit", "src", "lazy:7"]).ok();
    let archive = d.data_root().join("../lazy7.tar");
    d.docker(&["save", "-o", archive.to_str().expect("utf8"), "lazy:7"])
        .ok();
    d.docker(&["rmi", "lazy:7"]).ok();
    d.docker(&["load", "-i", archive.to_str().expect("utf8")])
        .ok();
    assert_eq!(seen(&d, "lazy:7"), SEEN);
    let _ = std::fs::remove_file(&archive);
}

//! berthd killed with SIGKILL in the middle of a load restarts clean: no partial image, no
//! orphan blob or snapshot, and the load can be repeated.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

/// A multi-layer archive big enough that loading it takes a while.
fn big_archive(d: &Daemon) -> std::path::PathBuf {
    let path = d.dir.path().join("big.tar");
    let mut layers = Vec::new();
    for i in 0..4u8 {
        let data: Vec<u8> = (0..12_000_000u32)
            .map(|n| (n.wrapping_mul(2654435761) >> 13) as u8 ^ i)
            .collect();
        let files: Vec<(String, Vec<u8>)> = (0..8)
            .map(|f| {
                (
                    format!("layer{i}/file{f}"),
                    data[f * 1_500_000..(f + 1) * 1_500_000].to_vec(),
                )
            })
            .collect();
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        layers.push(layer(&refs));
    }
    classic_archive(&path, "big/img:1", &layers, serde_json::json!({}));
    path
}

fn assert_clean_after_restart(d: &mut Daemon) {
    d.spawn(&[]);
    assert_eq!(
        d.docker(&["images", "-q"]).stdout.trim(),
        "",
        "a partial image is listed"
    );
    assert!(
        d.stored_blobs().is_empty(),
        "orphan blobs: {:?}",
        d.stored_blobs()
    );
    assert!(
        d.stored_snapshots().is_empty(),
        "orphan snapshots: {:?}",
        d.stored_snapshots()
    );
    assert!(
        !d.data_root().join("image/tmp").exists()
            || std::fs::read_dir(d.data_root().join("image/tmp"))
                .map(|r| r.count())
                .unwrap_or(0)
                == 0
    );
}

#[test]
fn sigkill_during_a_load_leaves_nothing_and_the_load_can_be_repeated() {
    let mut d = Daemon::start();
    let archive = big_archive(&d);
    let bytes = std::fs::read(&archive).expect("archive");

    // Killed while the archive is still arriving.
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).expect("connect");
    write!(
        s,
        "POST /v1.45/images/load HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .expect("head");
    s.write_all(&bytes[..bytes.len() / 2]).expect("half");
    std::thread::sleep(Duration::from_millis(200));
    d.kill();
    drop(s);
    assert_clean_after_restart(&mut d);

    // Killed while layers are being unpacked (after the whole archive was sent).
    for delay in [150u64, 400, 800] {
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).expect("connect");
        write!(
            s,
            "POST /v1.45/images/load HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            bytes.len()
        )
        .expect("head");
        s.write_all(&bytes).expect("body");
        std::thread::sleep(Duration::from_millis(delay));
        d.kill();
        drop(s);
        d.spawn(&[]);
        // Either the load finished before the kill, whole, or nothing of it remains.
        let listed = d.docker(&["images", "-q"]).stdout.trim().to_string();
        if listed.is_empty() {
            assert!(
                d.stored_blobs().is_empty(),
                "orphan blobs after kill at {delay} ms"
            );
            assert!(
                d.stored_snapshots().is_empty(),
                "orphan snapshots after kill at {delay} ms"
            );
        } else {
            assert_eq!(d.stored_snapshots().len(), 4);
            d.docker(&["rmi", "big/img:1"]).ok();
        }
        d.kill();
        assert_clean_after_restart(&mut d);
    }

    let out = d.docker(&["load", "-i", archive.to_str().expect("utf8")]);
    out.ok();
    assert!(out.stdout.contains("big/img:1"));
    assert_eq!(d.stored_snapshots().len(), 4);
}

/// The pids of the berth-shim processes serving container `id`.
fn shims_of(id: &str) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| {
            let pid: i32 = p.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(p.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline);
            (text.contains("berth-shim") && text.contains(id)).then_some(pid)
        })
        .collect()
}

/// berthd killed between spawning a container's shim and starting it: the shim does not
/// wait forever for a start nobody will send; the restarted daemon starts the container.
#[test]
fn sigkill_during_a_start_leaves_no_shim_behind() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    // A runtime whose create takes a second, so that the kill lands inside the start.
    let flag = slow_runtime_flag(&d);
    d.kill();
    d.spawn(&["--add-runtime", &flag]);
    let id = d
        .docker(&[
            "create",
            "--runtime",
            "slow",
            "--network",
            "none",
            "bb:1",
            "sleep",
            "60",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let mut start = std::process::Command::new("docker")
        .args(["start", &id])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.client_config())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker start");
    assert!(
        wait_for(|| !shims_of(&id).is_empty()),
        "no shim was started"
    );
    d.kill();
    let _ = start.kill();
    let _ = start.wait();
    // The runtime's create finishes a second later; then the shim finds berthd gone.
    assert!(
        wait_for(|| shims_of(&id).is_empty()),
        "the shim of an unstarted container outlived its daemon"
    );
    d.spawn(&["--add-runtime", &flag]);
    let state = |d: &Daemon| {
        d.docker(&["inspect", "-f", "{{.State.Status}}", &id])
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    assert_ne!(state(&d), "running");
    d.docker(&["start", &id]).ok();
    assert_eq!(state(&d), "running");
    d.docker(&["rm", "-f", &id]).ok();
    assert!(wait_for(|| shims_of(&id).is_empty()));
}

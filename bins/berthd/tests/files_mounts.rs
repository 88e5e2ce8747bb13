//! `docker cp` through a running container's own mounts (issue 16): into and out of its
//! tmpfs mounts (`--tmpfs`, `--mount type=tmpfs`), of a directory with a bind nested below
//! it, and into a path under that bind; a symlink on the tmpfs that points out of the
//! container (and a loop that swaps a directory there for one) stays inside it. A stopped
//! container's tmpfs path is its rootfs's, as under dockerd.

mod common;

use std::path::Path;

use common::*;

fn run_sleeper(d: &Daemon, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["bb:1", "sleep", "1000"]);
    d.docker(&args).ok();
}

fn exec_out(d: &Daemon, name: &str, script: &str) -> String {
    d.docker(&["exec", name, "sh", "-c", script])
        .ok()
        .stdout
        .clone()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A file both ways through `--tmpfs` and `--mount type=tmpfs` of a running container,
/// seen from inside; `-L` through a link on the tmpfs; `-a`. Stopped, the path is the
/// rootfs's again (the tmpfs's content went with it), as dockerd's view has no tmpfs.
#[test]
fn cp_in_and_out_of_tmpfs_mounts() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("f.txt"), "to the tmpfs\n").expect("write");

    run_sleeper(
        &d,
        "tm",
        &[
            "--tmpfs",
            "/scratch",
            "--mount",
            "type=tmpfs,dst=/t2",
            "-u",
            "1234:5678",
        ],
    );
    d.docker(&["cp", s(&host.join("f.txt")), "tm:/scratch/f.txt"])
        .ok();
    d.docker(&["cp", "-a", s(&host.join("f.txt")), "tm:/t2/"])
        .ok();
    assert_eq!(
        exec_out(&d, "tm", "cat /scratch/f.txt; stat -c %u:%g /t2/f.txt"),
        "to the tmpfs\n1234:5678\n"
    );

    exec_out(
        &d,
        "tm",
        "echo from inside > /t2/g && ln -s /t2/g /scratch/link",
    );
    d.docker(&["cp", "tm:/t2/g", s(&host.join("g"))]).ok();
    assert_eq!(read(&host.join("g")), "from inside\n");
    d.docker(&["cp", "-L", "tm:/scratch/link", s(&host.join("followed"))])
        .ok();
    assert_eq!(read(&host.join("followed")), "from inside\n");
    d.docker(&["cp", "tm:/scratch", s(&host.join("scratch"))])
        .ok();
    assert_eq!(read(&host.join("scratch/f.txt")), "to the tmpfs\n");

    // Stopped: what was on the tmpfs is gone; a copy lands on the rootfs under the mount
    // point, which the tmpfs covers again once it runs.
    d.docker(&["stop", "-t", "0", "tm"]).ok();
    d.docker(&["cp", "tm:/scratch/f.txt", s(&host.join("gone"))])
        .failed_with("Could not find the file");
    d.docker(&["cp", s(&host.join("f.txt")), "tm:/scratch/under.txt"])
        .ok();
    d.docker(&["cp", "tm:/scratch/under.txt", s(&host.join("under"))])
        .ok();
    assert_eq!(read(&host.join("under")), "to the tmpfs\n");
    d.docker(&["start", "tm"]).ok();
    assert_eq!(exec_out(&d, "tm", "ls /scratch"), "");
    d.docker(&["rm", "-f", "tm"]).ok();
}

/// A directory copied out with a bind nested below it carries the bind's content.
#[test]
fn cp_a_directory_out_with_a_nested_bind() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    let bound = d.dir.path().join("bound");
    std::fs::create_dir_all(&bound).expect("mkdir");
    std::fs::write(bound.join("from-host"), "bound\n").expect("write");
    std::fs::create_dir_all(&host).expect("mkdir");

    let bind = format!("{}:/srv/app/data", s(&bound));
    run_sleeper(&d, "nb", &["-v", &bind]);
    exec_out(&d, "nb", "echo own > /srv/app/own");

    // Out: a tar of /srv/app with the bind's file in it.
    d.docker(&["cp", "nb:/srv/app", s(&host.join("app"))]).ok();
    assert_eq!(read(&host.join("app/own")), "own\n");
    assert_eq!(read(&host.join("app/data/from-host")), "bound\n");

    d.docker(&["rm", "-f", "nb"]).ok();
}

/// A directory copied in with entries under a bind nested below it puts them in the
/// bind's host directory, as the container sees them.
#[test]
fn cp_into_a_directory_with_a_nested_bind() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    let bound = d.dir.path().join("bound");
    std::fs::create_dir_all(&bound).expect("mkdir");
    std::fs::create_dir_all(host.join("tree/data")).expect("mkdir");
    std::fs::write(host.join("tree/top"), "top\n").expect("write");
    std::fs::write(host.join("tree/data/new"), "new\n").expect("write");
    let bind = format!("{}:/srv/app/data", s(&bound));
    run_sleeper(&d, "nb", &["-v", &bind]);

    // tree/. into /srv/app, whose data/ is the bind.
    d.docker(&["cp", &format!("{}/.", s(&host.join("tree"))), "nb:/srv/app"])
        .ok();
    assert_eq!(read(&bound.join("new")), "new\n");
    assert_eq!(
        exec_out(&d, "nb", "cat /srv/app/top /srv/app/data/new"),
        "top\nnew\n"
    );
    d.docker(&["rm", "-f", "nb"]).ok();
}

/// Links on a tmpfs that point out of the container (to `/`, up through `..`) resolve in
/// the container's root, never the host's, also while the container swaps a directory for
/// such a link in a loop (CVE-2018-15664); the container's /proc is not walked into.
#[test]
fn links_on_a_tmpfs_stay_inside() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).expect("mkdir");
    let marker = format!("berth-cp-mounts-{}", std::process::id());
    std::fs::write(host.join(&marker), "inside\n").expect("write");

    run_sleeper(&d, "ln", &["--tmpfs", "/scratch"]);
    exec_out(
        &d,
        "ln",
        "echo container > /etc/berth-id && ln -s / /scratch/up && ln -s ../../../../.. /scratch/rel",
    );
    d.docker(&["cp", s(&host.join(&marker)), "ln:/scratch/up/tmp/"])
        .ok();
    d.docker(&["cp", s(&host.join(&marker)), "ln:/scratch/rel/etc/"])
        .ok();
    assert!(!Path::new("/tmp").join(&marker).exists());
    assert!(!Path::new("/etc").join(&marker).exists());
    assert_eq!(
        exec_out(&d, "ln", &format!("cat /tmp/{marker} /etc/{marker}")),
        "inside\ninside\n"
    );
    d.docker(&["cp", "ln:/scratch/rel/etc/berth-id", s(&host.join("id"))])
        .ok();
    assert_eq!(read(&host.join("id")), "container\n");

    // The swap loop: /scratch/w is a directory or a link to / by turns.
    d.docker(&[
        "exec",
        "-d",
        "ln",
        "sh",
        "-c",
        "while true; do mkdir -p /scratch/w; rmdir /scratch/w; ln -s / /scratch/w; rm /scratch/w; done",
    ])
    .ok();
    let swapped = format!("{marker}-swap");
    std::fs::write(host.join(&swapped), "swap\n").expect("write");
    for _ in 0..20 {
        // Either outcome inside is fine (a failed copy, or one in the container's / or w).
        let _ = d.docker(&["cp", s(&host.join(&swapped)), "ln:/scratch/w/"]);
        let _ = d.docker(&["cp", "ln:/scratch/w/etc/berth-id", s(&host.join("raced"))]);
        if let Ok(text) = std::fs::read_to_string(host.join("raced")) {
            assert_eq!(text, "container\n");
        }
        assert!(!Path::new("/").join(&swapped).exists());
    }

    // The kernel's filesystems in the container are no files of it.
    d.docker(&["cp", "ln:/proc/1/environ", s(&host.join("environ"))])
        .failed_with("proc filesystem");
    d.docker(&["cp", s(&host.join(&marker)), "ln:/proc/"])
        .failed_with("proc filesystem");
    std::fs::create_dir_all(host.join("withproc/proc")).expect("mkdir");
    std::fs::write(host.join("withproc/proc/x"), "x\n").expect("write");
    d.docker(&["cp", &format!("{}/.", s(&host.join("withproc"))), "ln:/"])
        .failed_with("kernel filesystem");
    d.docker(&["cp", "ln:/proc", s(&host.join("proc"))]).ok();
    assert_eq!(
        std::fs::read_dir(host.join("proc")).expect("proc").count(),
        0
    );
    d.docker(&["rm", "-f", "ln"]).ok();
}

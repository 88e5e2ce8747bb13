//! The container's files through the real docker CLI (issue 16): `docker cp` both ways, to
//! and from running and stopped containers, through symlinks and binds, against a hostile
//! container that swaps a directory for a symlink to `/`; `diff`, `export` and `commit`
//! (the committed image runs, saves, loads, pushes and pulls).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::Registry;
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

/// Mounts berthd holds (its own mount namespace) whose path mentions `needle`.
fn berthd_mounts(d: &Daemon, needle: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{}/mountinfo", d.pid()))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// Tar entries of an archive file: (path, content or link target).
fn tar_entries(path: &Path) -> Vec<(String, String)> {
    let file = std::fs::File::open(path).expect("open tar");
    let mut archive = tar::Archive::new(file);
    archive
        .entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").display().to_string();
            let link = e
                .link_name()
                .ok()
                .flatten()
                .map(|l| l.display().to_string());
            let mut content = String::new();
            let _ = e.read_to_string(&mut content);
            (name, link.unwrap_or(content))
        })
        .collect()
}

/// A file and a directory both ways, into and out of a running container, through a
/// symlink inside it (in the path and with -L), and with a stopped container.
#[test]
fn cp_files_and_directories_both_ways() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).expect("mkdir");
    std::fs::write(host.join("f.txt"), "hello\n").expect("write");
    std::fs::write(host.join("tree/a"), "a\n").expect("write");
    std::fs::write(host.join("tree/sub/b"), "b\n").expect("write");
    std::os::unix::fs::symlink("sub/b", host.join("tree/link")).expect("symlink");

    run_sleeper(&d, "ctr", &[]);
    // Host to container: a file into a directory, a directory under a new name.
    d.docker(&["cp", s(&host.join("f.txt")), "ctr:/tmp/"]).ok();
    d.docker(&["cp", s(&host.join("tree")), "ctr:/tmp/tree2"])
        .ok();
    assert_eq!(
        exec_out(
            &d,
            "ctr",
            "cat /tmp/f.txt /tmp/tree2/a /tmp/tree2/sub/b; readlink /tmp/tree2/link"
        ),
        "hello\na\nb\nsub/b\n"
    );

    // Container to host.
    exec_out(
        &d,
        "ctr",
        "mkdir -p /out/x && echo y > /out/x/y && ln -s /out/x /out/link && chmod 640 /out/x/y",
    );
    d.docker(&["cp", "ctr:/out/x/y", s(&host.join("y"))]).ok();
    assert_eq!(std::fs::read_to_string(host.join("y")).expect("y"), "y\n");
    let mode = std::fs::metadata(host.join("y")).expect("meta");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o640
    );
    d.docker(&["cp", "ctr:/out", s(&host.join("out"))]).ok();
    assert_eq!(
        std::fs::read_to_string(host.join("out/x/y")).expect("out/x/y"),
        "y\n"
    );
    assert_eq!(
        std::fs::read_link(host.join("out/link")).expect("link"),
        PathBuf::from("/out/x")
    );

    // Through a symlink of the container: in the middle of the path (resolved inside the
    // container: /out/link is /out/x), and followed at the end with -L.
    d.docker(&["cp", "ctr:/out/link/y", s(&host.join("y2"))])
        .ok();
    assert_eq!(std::fs::read_to_string(host.join("y2")).expect("y2"), "y\n");
    d.docker(&["cp", s(&host.join("f.txt")), "ctr:/out/link/"])
        .ok();
    assert_eq!(exec_out(&d, "ctr", "cat /out/x/f.txt"), "hello\n");
    d.docker(&["cp", "-L", "ctr:/out/link", s(&host.join("followed"))])
        .ok();
    assert!(host.join("followed/y").is_file(), "-L copies the directory");
    d.docker(&["cp", "ctr:/out/link", s(&host.join("notfollowed"))])
        .ok();
    assert!(std::fs::symlink_metadata(host.join("notfollowed"))
        .expect("meta")
        .file_type()
        .is_symlink());

    // A path that does not exist.
    d.docker(&["cp", "ctr:/nothing/here", s(&host.join("z"))])
        .failed_with("Could not find the file /nothing/here in container ctr");

    // A stopped container: both ways, and the change is there when it runs again.
    d.docker(&["kill", "ctr"]).ok();
    d.docker(&["wait", "ctr"]).ok();
    d.docker(&["cp", s(&host.join("tree")), "ctr:/stopped"])
        .ok();
    d.docker(&["cp", "ctr:/stopped/sub/b", s(&host.join("b-back"))])
        .ok();
    assert_eq!(
        std::fs::read_to_string(host.join("b-back")).expect("binds"),
        "b\n"
    );
    assert!(
        berthd_mounts(&d, "/files-").is_empty(),
        "a copy of a stopped container leaves no mount"
    );
    d.docker(&["start", "ctr"]).ok();
    assert_eq!(
        exec_out(&d, "ctr", "cat /stopped/a /tmp/f.txt"),
        "a\nhello\n"
    );
    d.docker(&["rm", "-f", "ctr"]).ok();
}

/// `docker cp -a` gives the container's user as owner; binds are reached through their
/// sources, a read-only one refuses a copy.
#[test]
fn cp_archive_mode_and_binds() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    let data = d.dir.path().join("data");
    let ro = d.dir.path().join("ro");
    for dir in [&host, &data, &ro] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(host.join("f.txt"), "hello\n").expect("write");
    std::fs::write(data.join("in-bind"), "from the host\n").expect("write");

    d.docker(&[
        "create",
        "--name",
        "owned",
        "--network",
        "none",
        "--user",
        "1234:5678",
        "bb:1",
        "stat",
        "-c",
        "%u:%g",
        "/owned.txt",
        "/plain.txt",
    ])
    .ok();
    d.docker(&["cp", "-a", s(&host.join("f.txt")), "owned:/owned.txt"])
        .ok();
    d.docker(&["cp", s(&host.join("f.txt")), "owned:/plain.txt"])
        .ok();
    let out = d.docker(&["start", "-a", "owned"]);
    assert_eq!(out.ok().stdout, "1234:5678\n0:0\n");

    let vol = format!("{}:/data", s(&data));
    let rovol = format!("{}:/ro:ro", s(&ro));
    run_sleeper(
        &d,
        "binds",
        &["-v", &vol, "-v", &rovol, "--tmpfs", "/scratch"],
    );
    d.docker(&["cp", s(&host.join("f.txt")), "binds:/data/"])
        .ok();
    assert_eq!(
        std::fs::read_to_string(data.join("f.txt")).expect("in the bind's source"),
        "hello\n"
    );
    d.docker(&["cp", "binds:/data/in-bind", s(&host.join("from-bind"))])
        .ok();
    assert_eq!(
        std::fs::read_to_string(host.join("from-bind")).expect("copied"),
        "from the host\n"
    );
    d.docker(&["cp", s(&host.join("f.txt")), "binds:/ro/"])
        .failed_with("read-only");
    assert!(!ro.join("f.txt").exists());
    // A running container's tmpfs is reached as the container sees it (files_mounts.rs).
    d.docker(&["cp", s(&host.join("f.txt")), "binds:/scratch/f.txt"])
        .ok();
    assert_eq!(exec_out(&d, "binds", "cat /scratch/f.txt"), "hello\n");
    // And when it does not run.
    d.docker(&["stop", "-t", "0", "binds"]).ok();
    d.docker(&["cp", "binds:/data/f.txt", s(&host.join("again"))])
        .ok();
    assert!(host.join("again").is_file());
    d.docker(&["rm", "-f", "owned", "binds"]).ok();
}

/// A tar header (ustar) naming `name`, of `kind`, with `link` as its link target.
fn raw_entry(name: &str, kind: u8, link: &str, content: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_mode(0o644);
    h.set_size(content.len() as u64);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn finish_tar(mut body: Vec<u8>) -> Vec<u8> {
    body.extend_from_slice(&[0u8; 1024]);
    body
}

/// Hostile input: a copy to a path that climbs out of the root lands inside it, PUT tars
/// with `../` entries or a symlink to the host's directory are refused, and a missing
/// container is named; nothing is written outside the container.
#[test]
fn cp_refuses_escapes() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    let outside = d.dir.path().join("outside");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(host.join("f.txt"), "hello\n").expect("write");
    run_sleeper(&d, "ctr", &[]);

    // `..` past the root stays at the container's root.
    d.docker(&[
        "cp",
        s(&host.join("f.txt")),
        "ctr:/../../../../tmp/../../f.txt",
    ])
    .ok();
    assert_eq!(exec_out(&d, "ctr", "cat /f.txt"), "hello\n");
    let escape = format!("ctr:/../../../..{}/", s(&outside));
    d.docker(&["cp", s(&host.join("f.txt")), &escape]).failed();
    assert!(!outside.join("f.txt").exists());

    // PUT tars built by hand.
    let dotdot = finish_tar(raw_entry("../../../escaped", b'0', "", b"x"));
    let (status, body) = d.http("PUT", "/v1.45/containers/ctr/archive?path=/tmp", &dotdot);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(".."), "{body}");
    let target = s(&outside);
    let mut link_trick = raw_entry("evil", b'2', target, b"");
    link_trick.extend(raw_entry("evil/canary", b'0', "", b"x"));
    let (status, body) = d.http(
        "PUT",
        "/v1.45/containers/ctr/archive?path=/tmp",
        &finish_tar(link_trick),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        !outside.join("canary").exists(),
        "written through a symlink"
    );
    let mut abs_link = raw_entry("up", b'2', "/", b"");
    abs_link.extend(raw_entry(&format!("up{target}/canary2"), b'0', "", b"x"));
    let (status, _) = d.http(
        "PUT",
        "/v1.45/containers/ctr/archive?path=/tmp",
        &finish_tar(abs_link),
    );
    assert_eq!(status, 400);
    assert!(!outside.join("canary2").exists());
    assert!(std::fs::read_dir(&outside).expect("ls").next().is_none());
    // The directory was kept for a directory entry of the same name (noOverwriteDirNonDir).
    exec_out(&d, "ctr", "mkdir -p /tmp/isdir/sub");
    let file_over_dir = finish_tar(raw_entry("isdir", b'0', "", b"x"));
    let (status, body) = d.http(
        "PUT",
        "/v1.45/containers/ctr/archive?path=/tmp&noOverwriteDirNonDir=true",
        &file_over_dir,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("cannot overwrite a directory"), "{body}");

    // A missing container, and a path that is not a directory for a PUT.
    d.docker(&["cp", s(&host.join("f.txt")), "nosuch:/tmp/new.txt"])
        .failed_with("No such container");
    let (status, body) = d.http(
        "PUT",
        "/v1.45/containers/ctr/archive?path=/bin/busybox",
        &finish_tar(Vec::new()),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a directory"), "{body}");
    let (status, _) = d.http("HEAD", "/v1.45/containers/nosuch/archive?path=/", b"");
    assert_eq!(status, 404);
    d.docker(&["rm", "-f", "ctr"]).ok();
}

/// CVE-2018-15664: the container swaps a directory and a symlink to `/` in a loop while
/// `docker cp` reads and writes through it. Reads only ever see the container's files and
/// writes only ever land in it; the host's canary is never read or written.
#[test]
fn cp_survives_a_symlink_exchange_race() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let canary_dir = d.dir.path().join("canary");
    std::fs::create_dir_all(&canary_dir).expect("mkdir");
    std::fs::write(canary_dir.join("secret"), "HOST SECRET\n").expect("write");
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("payload"), "payload\n").expect("write");
    let canary = s(&canary_dir);
    run_sleeper(&d, "hostile", &[]);
    // Inside: /w/d is a real directory holding the canary's path with the container's own
    // content; /<canary path> exists in the container too. The loop swaps /w/d and a
    // symlink to / back and forth.
    let setup = format!(
        "mkdir -p /w/d{canary} {canary} && echo inside-dir > /w/d{canary}/secret && echo inside-root > {canary}/secret && ln -s / /w/sym"
    );
    exec_out(&d, "hostile", &setup);
    d.docker(&[
        "exec",
        "-d",
        "hostile",
        "sh",
        "-c",
        "while :; do mv /w/d /w/tmp; mv /w/sym /w/d; mv /w/d /w/sym; mv /w/tmp /w/d; done",
    ])
    .ok();
    let src = format!("hostile:/w/d{canary}/secret");
    let dst = format!("hostile:/w/d{canary}/");
    let mut reads = 0;
    for i in 0..40 {
        let out = host.join(format!("read-{i}"));
        if d.docker(&["cp", &src, s(&out)]).code == 0 {
            reads += 1;
            let got = std::fs::read_to_string(&out).expect("read back");
            assert!(
                got == "inside-dir\n" || got == "inside-root\n",
                "read {got:?}: the copy left the container"
            );
        }
        let _ = d.docker(&["cp", s(&host.join("payload")), &dst]);
        assert!(
            !canary_dir.join("payload").exists(),
            "written outside the container"
        );
    }
    assert!(reads > 0, "no copy succeeded at all");
    assert_eq!(
        std::fs::read_to_string(canary_dir.join("secret")).expect("canary"),
        "HOST SECRET\n"
    );
    d.docker(&["rm", "-f", "hostile"]).ok();
}

/// diff shows A/C/D; export is the merged tree; commit makes an image with the same
/// changes, its config and history, which runs, saves, loads, pushes and pulls.
#[test]
fn diff_export_and_commit() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "--name",
        "ctr",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "echo new > /added.txt && echo extra:x:7: >> /etc/group && rm -r /root && mkdir /newdir && echo f > /newdir/f",
    ])
    .ok();
    let diff = d.docker(&["diff", "ctr"]);
    let lines: Vec<&str> = diff.ok().stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            "A /added.txt",
            "C /etc",
            "C /etc/group",
            "A /newdir",
            "A /newdir/f",
            "D /root"
        ],
        "{}",
        diff.stdout
    );

    // Export: the merged tree.
    let exported = d.dir.path().join("export.tar");
    d.docker(&["export", "-o", s(&exported), "ctr"]).ok();
    let entries = tar_entries(&exported);
    let find = |p: &str| entries.iter().find(|e| e.0 == p).map(|e| e.1.clone());
    assert_eq!(find("added.txt").as_deref(), Some("new\n"));
    assert!(find("etc/group").is_some_and(|g| g.ends_with("extra:x:7:\n")));
    assert_eq!(find("bin/sh").as_deref(), Some("busybox"));
    assert!(
        find("root").is_none(),
        "a deleted directory is not exported"
    );

    // Commit with a message, an author and a change line.
    let id = d
        .docker(&[
            "commit",
            "-m",
            "my change",
            "-a",
            "me <me@example.com>",
            "-c",
            "ENV FOO=bar",
            "ctr",
            "committed:1",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let inspect = |name: &str, f: &str| {
        d.docker(&["image", "inspect", "-f", f, name])
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    assert_eq!(inspect("committed:1", "{{.Author}}"), "me <me@example.com>");
    assert_eq!(inspect("committed:1", "{{.Comment}}"), "my change");
    assert_eq!(
        inspect("committed:1", "{{len .RootFS.Layers}}"),
        (inspect("bb:1", "{{len .RootFS.Layers}}")
            .parse::<usize>()
            .expect("n")
            + 1)
        .to_string()
    );
    let history = d.docker(&["history", "--no-trunc", "committed:1"]);
    assert!(
        history.ok().stdout.contains("my change"),
        "{}",
        history.stdout
    );
    let script =
        "cat /added.txt /newdir/f; tail -n1 /etc/group; test -e /root || echo gone; echo $FOO";
    let expected = "new\nf\nextra:x:7:\ngone\nbar\n";
    let run = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "committed:1",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(run.ok().stdout, expected);
    // A container of the committed image starts with no changes of its own.
    d.docker(&[
        "create",
        "--name",
        "fresh",
        "--network",
        "none",
        "committed:1",
    ])
    .ok();
    assert_eq!(d.docker(&["diff", "fresh"]).ok().stdout, "");

    // save / load into another daemon, then push / pull through a registry.
    let saved = d.dir.path().join("committed.tar");
    d.docker(&["save", "-o", s(&saved), "committed:1"]).ok();
    let other = Daemon::start_for_containers();
    other.docker(&["load", "-i", s(&saved)]).ok();
    let run = other.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "committed:1",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(run.ok().stdout, expected);

    let reg = Registry::start();
    let name = format!("{}/committed:1", reg.addr);
    d.docker(&["tag", "committed:1", &name]).ok();
    d.docker(&["push", &name]).ok();
    let third = Daemon::start_for_containers();
    third.docker(&["pull", &name]).ok();
    let run = third.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(run.ok().stdout, expected);
    d.docker(&["rm", "-f", "ctr", "fresh"]).ok();
}

/// commit of a running container pauses it by default and leaves it running; a bad
/// change line is refused before anything is written.
#[test]
fn commit_running_container_and_bad_changes() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    run_sleeper(&d, "runner", &[]);
    exec_out(&d, "runner", "echo live > /live.txt");
    let id = d
        .docker(&["commit", "-c", "LABEL tier=web", "runner", "live:1"])
        .ok()
        .stdout
        .trim()
        .to_string();
    // The new image's `create` event (API 1.46), then the container's `commit`, as
    // dockerd; a client before 1.46 does not get the create.
    let until = a_second_from_now();
    let events = |version: &str| {
        let path = format!("/{version}/events?since=0&until={until}");
        let (status, body) = d.http("GET", &path, b"");
        assert_eq!(status, 200, "{body}");
        // Chunked: the JSON lines between the chunk sizes.
        body.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).expect("json"))
            .filter(|e| e["Action"] == "create" || e["Action"] == "commit")
            .map(|e| format!("{} {} {}", e["Type"], e["Action"], e["Actor"]["ID"]))
            .collect::<Vec<_>>()
    };
    let runner = d.docker(&["inspect", "-f", "{{.Id}}", "runner"]);
    let runner = runner.ok().stdout.trim().to_string();
    assert_eq!(
        events("v1.47"),
        [
            format!("\"container\" \"create\" \"{runner}\""),
            format!("\"image\" \"create\" \"{id}\""),
            format!("\"container\" \"commit\" \"{runner}\""),
        ]
    );
    assert_eq!(
        events("v1.45"),
        [
            format!("\"container\" \"create\" \"{runner}\""),
            format!("\"container\" \"commit\" \"{runner}\""),
        ]
    );
    // An image event has the image's labels among its attributes, as moby's.
    let labelled = d.past_events(&[
        "--filter",
        "label=tier=web",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(
        labelled.ok().stdout.lines().collect::<Vec<_>>(),
        [
            format!("image create {id} {id}"),
            format!("image tag {id} live:1")
        ]
    );
    let state = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "runner",
    ]);
    assert_eq!(state.ok().stdout.trim(), "running false");
    let run = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "live:1",
        "cat",
        "/live.txt",
    ]);
    assert_eq!(run.ok().stdout, "live\n");
    d.docker(&["commit", "-c", "RUN echo no", "runner", "bad:1"])
        .failed_with("RUN");
    d.docker(&["commit", "nosuch", "x:1"])
        .failed_with("No such container");
    d.docker(&["rm", "-f", "runner"]).ok();
}

/// The berth CLI's cp (both ways, a directory under a new name, -L), diff, export and
/// commit.
#[test]
fn berth_cli_cp_diff_export_commit() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).expect("mkdir");
    std::fs::write(host.join("f.txt"), "hello\n").expect("write");
    std::fs::write(host.join("tree/sub/b"), "b\n").expect("write");
    d.berth(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "bc",
        "bb:1",
        "sleep",
        "1000",
    ])
    .ok();
    d.berth(&["cp", s(&host.join("f.txt")), "bc:/tmp/"]).ok();
    d.berth(&["cp", s(&host.join("tree")), "bc:/tree2"]).ok();
    d.berth(&["cp", s(&host.join("f.txt")), "bc:/renamed.txt"])
        .ok();
    assert_eq!(
        exec_out(&d, "bc", "cat /tmp/f.txt /tree2/sub/b /renamed.txt"),
        "hello\nb\nhello\n"
    );
    exec_out(&d, "bc", "ln -s /tree2 /link && rm /bin/vi");
    d.berth(&["cp", "bc:/tree2", s(&host.join("back"))]).ok();
    assert_eq!(
        std::fs::read_to_string(host.join("back/sub/b")).expect("back"),
        "b\n"
    );
    d.berth(&["cp", "bc:/renamed.txt", s(&host.join("tree"))])
        .ok();
    assert!(host.join("tree/renamed.txt").is_file());
    d.berth(&["cp", "-L", "bc:/link", s(&host.join("followed"))])
        .ok();
    assert!(host.join("followed/sub/b").is_file());
    d.berth(&["cp", "bc:/missing", s(&host.join("x"))])
        .failed_with("Could not find the file /missing");

    let diff = d.berth(&["diff", "bc"]);
    let out = &diff.ok().stdout;
    for line in [
        "C /bin",
        "D /bin/vi",
        "A /link",
        "A /renamed.txt",
        "A /tree2/sub/b",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line} missing from:\n{out}"
        );
    }
    let exported = d.dir.path().join("e.tar");
    d.berth(&["export", "-o", s(&exported), "bc"]).ok();
    assert!(tar_entries(&exported)
        .iter()
        .any(|(p, c)| p == "renamed.txt" && c == "hello\n"));
    let id = d
        .berth(&[
            "commit",
            "-m",
            "by berth",
            "-c",
            "CMD [\"cat\", \"/renamed.txt\"]",
            "bc",
            "bcommit:2",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let run = d.docker(&["run", "--rm", "--network", "none", "bcommit:2"]);
    assert_eq!(run.ok().stdout, "hello\n");
    d.berth(&["rm", "-f", "bc"]).ok();
}

/// A start waits while a copy out of the stopped container is still streaming (the copy
/// holds a private mount of the container's overlay; two overlays on one upper directory
/// are undefined), then goes on once the copy is gone.
#[test]
fn start_waits_for_a_copy_of_the_stopped_container() {
    use std::io::Write;
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "--name",
        "big",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "test -e /big || dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null",
    ])
    .ok();
    let mut stream = std::os::unix::net::UnixStream::connect(d.socket()).expect("connect");
    stream
        .write_all(b"GET /v1.45/containers/big/archive?path=/big HTTP/1.1\r\nHost: berth\r\n\r\n")
        .expect("request");
    // The answer has begun (the mount is open); the rest waits in the socket.
    let mut head = [0u8; 4096];
    let n = stream.read(&mut head).expect("read");
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        let d = &d;
        scope.spawn(move || {
            let out = d.docker(&["start", "big"]);
            let _ = tx.send(out.code);
        });
        std::thread::sleep(std::time::Duration::from_secs(2));
        assert!(
            rx.try_recv().is_err(),
            "the start went on while a copy held the container's overlay"
        );
        drop(stream);
        assert_eq!(rx.recv().expect("start ended"), 0);
    });
    assert!(berthd_mounts(&d, "/files-").is_empty());
    d.docker(&["rm", "-f", "big"]).ok();
}

/// The docker CLI's other forms: a directory's contents (`SRC/.`), a tar on stdin into the
/// container and a tar of a path on stdout.
#[test]
fn cp_contents_and_tar_streams() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    run_sleeper(&d, "st", &[]);
    exec_out(
        &d,
        "st",
        "mkdir -p /src/sub && echo 1 > /src/one && echo 2 > /src/sub/two",
    );
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(host.join("existing")).expect("mkdir");
    // Contents into a new directory and into an existing one.
    d.docker(&["cp", "st:/src/.", s(&host.join("new"))]).ok();
    assert_eq!(
        std::fs::read_to_string(host.join("new/sub/two")).expect("two"),
        "2\n"
    );
    d.docker(&["cp", "st:/src/.", s(&host.join("existing"))])
        .ok();
    assert_eq!(
        std::fs::read_to_string(host.join("existing/one")).expect("one"),
        "1\n"
    );
    // A tar on stdout.
    let tar_out = d.dir.path().join("out.tar");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "DOCKER_HOST=unix://{} DOCKER_CONFIG={} docker cp st:/src - > {}",
            s(&d.socket()),
            s(&d.client_config()),
            s(&tar_out)
        ))
        .status()
        .expect("docker cp to stdout");
    assert!(out.success());
    let names: Vec<String> = tar_entries(&tar_out).into_iter().map(|e| e.0).collect();
    assert!(names.contains(&"src/sub/two".to_string()), "{names:?}");
    // The same tar on stdin, into another directory of the container.
    exec_out(&d, "st", "mkdir /again");
    d.docker_stdin(&["cp", "-", "st:/again"], Some(&tar_out))
        .ok();
    assert_eq!(exec_out(&d, "st", "cat /again/src/sub/two"), "2\n");
    d.docker(&["rm", "-f", "st"]).ok();
}

#[test]
fn cp_into_and_out_of_named_and_anonymous_volumes() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("f.txt"), "into the volume\n").expect("write");
    d.docker(&[
        "create",
        "--name",
        "vols",
        "--network",
        "none",
        "-v",
        "cpdata:/data",
        "-v",
        "/anon",
        "-v",
        "cpro:/ro:ro",
        "bb:1",
        "cat",
        "/data/f.txt",
        "/anon/f.txt",
    ])
    .ok();
    // Stopped: the copies land in the volumes, not in the container's own layer.
    d.docker(&["cp", s(&host.join("f.txt")), "vols:/data/"])
        .ok();
    d.docker(&["cp", s(&host.join("f.txt")), "vols:/anon/"])
        .ok();
    d.docker(&["cp", s(&host.join("f.txt")), "vols:/ro/"])
        .failed_with("read-only");
    let mountpoint = d
        .docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", "cpdata"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(Path::new(&mountpoint).join("f.txt")).expect("in the volume"),
        "into the volume\n"
    );
    assert_eq!(
        d.docker(&["start", "-a", "vols"]).ok().stdout,
        "into the volume\ninto the volume\n"
    );
    assert!(d
        .docker(&["diff", "vols"])
        .stdout
        .lines()
        .all(|l| !l.contains("f.txt")));
    // And out of a volume, through a second container that mounts it.
    run_sleeper(&d, "reader", &["-v", "cpdata:/other"]);
    d.docker(&["cp", "reader:/other/f.txt", s(&host.join("back.txt"))])
        .ok();
    assert_eq!(
        std::fs::read_to_string(host.join("back.txt")).expect("copied out"),
        "into the volume\n"
    );
    d.docker(&["rm", "-f", "-v", "vols", "reader"]).ok();
}

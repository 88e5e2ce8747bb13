//! Rebuilds through the docker CLI: the layer cache keys of COPY come from the context as
//! the client sends it (content, mode, owner, the files under a source, `.dockerignore`),
//! so each change that counts misses, and a rebuild with nothing changed hits every step
//! and runs no container. Also: RUN in an empty scratch stage, and remote contexts.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn path(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, body).expect("write");
}

/// Now, as `docker events --since` takes it.
fn unix_now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// Containers created since `since`, by the daemon's events.
fn containers_created(d: &Daemon, since: &str) -> usize {
    let until = a_second_from_now();
    let out = d.docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--filter",
        "event=create",
    ]);
    out.ok().stdout.lines().count()
}

/// The numbers of the steps the build took from its cache ("Step N/M" followed by
/// " ---> Using cache").
fn cached_steps(out: &Out) -> Vec<usize> {
    let mut step = 0;
    let mut cached = Vec::new();
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix("Step ") {
            step = rest
                .split('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if line.trim() == "---> Using cache" {
            cached.push(step);
        }
    }
    cached
}

fn built_id(out: &Out) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no image built: {}{}", out.stdout, out.stderr))
        .to_string()
}

const DOCKERFILE: &str = "FROM bb:1
COPY src/ /src/
RUN ls -lnR /src > /listing
CMD [\"sh\", \"-c\", \"cat /src/a; cat /listing\"]
";

/// Build `ctx` as `app`; the output.
fn build(d: &Daemon, ctx: &Path) -> Out {
    let out = d.docker(&["build", "-t", "app", path(ctx)]);
    out.ok();
    out
}

/// Each change under the COPY's source misses the COPY (and the RUN after it, which then
/// runs a container); what does not count (an mtime, a file outside the source, a
/// .dockerignore that leaves the source alone) hits.
#[test]
fn each_change_under_a_copy_source_misses_and_nothing_else_does() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = d.dir.path().join("ctx");
    write(&ctx, "Dockerfile", DOCKERFILE);
    write(&ctx, "src/a", "a1\n");
    write(&ctx, "src/sub/b", "b1\n");
    write(&ctx, "elsewhere", "not copied\n");
    let first = build(&d, &ctx);
    assert!(cached_steps(&first).is_empty(), "{}", first.stdout);
    let id = built_id(&first);

    // Nothing changed: every step from the cache, the same image, no container.
    let since = unix_now();
    let again = build(&d, &ctx);
    assert_eq!(cached_steps(&again), [2, 3, 4], "{}", again.stdout);
    assert!(!again.stdout.contains("Running in"), "{}", again.stdout);
    assert_eq!(built_id(&again), id);
    assert_eq!(containers_created(&d, &since), 0);

    // What does not count: mtimes, files no COPY takes, ignoring only them.
    let t = nix::sys::time::TimeSpec::new(1_000_000, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &ctx.join("src/a"),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::FollowSymlink,
    )
    .expect("utimensat");
    write(&ctx, "elsewhere", "changed, still not copied\n");
    write(&ctx, ".dockerignore", "elsewhere\n");
    let since = unix_now();
    let touched = build(&d, &ctx);
    assert_eq!(cached_steps(&touched), [2, 3, 4], "{}", touched.stdout);
    assert_eq!(built_id(&touched), id);
    assert_eq!(containers_created(&d, &since), 0);

    // Each change that counts (each to a state not built before): the COPY and what
    // follows it run again.
    type Change = Box<dyn Fn(&Path)>;
    let changes: Vec<(&str, Change)> = vec![
        ("content", Box::new(|c| write(c, "src/sub/b", "b2\n"))),
        (
            "mode",
            Box::new(|c| {
                std::fs::set_permissions(
                    c.join("src/a"),
                    std::os::unix::fs::PermissionsExt::from_mode(0o751),
                )
                .expect("chmod")
            }),
        ),
        ("a new file", Box::new(|c| write(c, "src/sub/c", "c\n"))),
        (
            "a removed file",
            Box::new(|c| std::fs::remove_file(c.join("src/sub/b")).expect("rm")),
        ),
        (
            "a .dockerignore that drops a copied file",
            Box::new(|c| write(c, ".dockerignore", "elsewhere\nsrc/sub/c\n")),
        ),
    ];
    let mut seen = vec![id];
    for (what, change) in changes {
        change(&ctx);
        let since = unix_now();
        let out = build(&d, &ctx);
        assert_eq!(
            cached_steps(&out),
            Vec::<usize>::new(),
            "{what}: {}",
            out.stdout
        );
        assert_eq!(containers_created(&d, &since), 1, "{what}");
        let id = built_id(&out);
        assert!(!seen.contains(&id), "{what}: an image built before");
        seen.push(id);
        // And a rebuild right after hits.
        let hit = build(&d, &ctx);
        assert_eq!(cached_steps(&hit), [2, 3, 4], "{what}: {}", hit.stdout);
    }
    // Back to a state built before (src/sub/c not ignored any more): its image again.
    write(&ctx, ".dockerignore", "elsewhere\n");
    let back = build(&d, &ctx);
    assert_eq!(cached_steps(&back), [2, 3, 4], "{}", back.stdout);
    assert_eq!(built_id(&back), seen[4]);
    // What the misses copied is the context as it was sent (written from the stream).
    let run = d.docker(&["run", "--rm", "--network", "none", "app"]);
    let text = run.ok().stdout.clone();
    assert!(text.starts_with("a1\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("-rwxr-x--x") && l.ends_with(" a")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.ends_with(" c")), "{text}");
    assert!(!text.lines().any(|l| l.ends_with(" b")), "{text}");
}

/// A tar of `files` (path, content, uid) as a client other than the docker CLI may send it:
/// owners kept (the docker CLI makes every owner root).
fn tar_with_owners(files: &[(&str, &str, u64)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body, uid) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_uid(*uid);
        h.set_gid(*uid);
        h.set_mtime(1);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, body.as_bytes())
            .expect("append");
    }
    b.into_inner().expect("tar")
}

/// A context tar on standard input (`docker build - < ctx.tar`) keeps its owners: a changed
/// owner misses a COPY that keeps owners, and hits one with --chown (which replaces them).
#[test]
fn a_changed_owner_misses_unless_chown_replaces_it() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let dockerfile = "FROM bb:1\nCOPY --chown=7:7 src/ /owned/\nCOPY src/ /plain/\nRUN stat -c '%u %n' /owned/f /plain/f > /owners\nCMD [\"cat\", \"/owners\"]\n";
    let tar_file = |uid: u64| -> PathBuf {
        let p = d.dir.path().join(format!("ctx-{uid}.tar"));
        std::fs::write(
            &p,
            tar_with_owners(&[("Dockerfile", dockerfile, 0), ("src/f", "f\n", uid)]),
        )
        .expect("write tar");
        p
    };
    let build = |tar: &Path| {
        let out = d.docker_stdin(&["build", "-t", "owned", "-"], Some(tar));
        out.ok();
        out
    };
    let root_owned = tar_file(0);
    build(&root_owned);
    assert_eq!(cached_steps(&build(&root_owned)), [2, 3, 4, 5]);
    let since = unix_now();
    let out = build(&tar_file(1000));
    // --chown's COPY hits; the plain COPY and the RUN after it do not.
    assert_eq!(cached_steps(&out), [2], "{}", out.stdout);
    assert_eq!(containers_created(&d, &since), 1);
    // Without --chown the copy is root's, as Docker's.
    let run = d.docker(&["run", "--rm", "--network", "none", "owned"]);
    assert_eq!(run.ok().stdout, "7 /owned/f\n0 /plain/f\n");
}

/// Symlinks in the context resolve inside it: a COPY through one that points at the
/// host's /etc finds the context's own /etc (none here), never the host's.
#[test]
fn symlinks_in_the_context_resolve_inside_it() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = d.dir.path().join("links");
    write(
        &ctx,
        "Dockerfile",
        "FROM bb:1\nCOPY in /in\nCMD [\"cat\", \"/in\"]\n",
    );
    write(&ctx, "real/file", "inside\n");
    std::os::unix::fs::symlink("/etc", ctx.join("out")).expect("symlink");
    std::os::unix::fs::symlink("/real/file", ctx.join("in")).expect("symlink");
    d.docker(&["build", "-t", "links", path(&ctx)]).ok();
    let run = d.docker(&["run", "--rm", "--network", "none", "links"]);
    assert_eq!(run.ok().stdout, "inside\n");
    write(&ctx, "Dockerfile", "FROM bb:1\nCOPY out/ /out/\n");
    d.docker(&["build", path(&ctx)])
        .failed_with("file not found in build context");
    // A wildcard below it matches nothing (it used to list the host's /etc).
    write(&ctx, "Dockerfile", "FROM bb:1\nCOPY out/pass* /out/\n");
    d.docker(&["build", path(&ctx)])
        .failed_with("no source files were specified");
}

/// RUN where there is no file at all (FROM scratch, nothing copied in): Docker's runtime
/// message with the reason, and no container made.
#[test]
fn run_in_an_empty_scratch_stage_says_there_is_nothing_to_run() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = d.dir.path().join("scratch");
    write(&ctx, "Dockerfile", "FROM scratch\nLABEL a=b\nRUN echo hi\n");
    let since = unix_now();
    d.docker(&["build", path(&ctx)]).failed_with(
        "Dockerfile:3: exec: \"/bin/sh\": stat /bin/sh: no such file or directory: the stage is FROM scratch and has no files yet",
    );
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch\nRUN [\"/bin/busybox\", \"true\"]\n",
    );
    d.docker(&["build", path(&ctx)])
        .failed_with("exec: \"/bin/busybox\": stat /bin/busybox: no such file or directory");
    assert_eq!(containers_created(&d, &since), 0);
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout, "");
    // Once the stage has its shell, RUN runs.
    write(
        &ctx,
        "Dockerfile",
        "FROM scratch\nCOPY --from=bb:1 / /\nRUN echo ran > /r\nCMD [\"cat\", \"/r\"]\n",
    );
    d.docker(&["build", "-t", "from-scratch", path(&ctx)]).ok();
    let run = d.docker(&["run", "--rm", "--network", "none", "from-scratch"]);
    assert_eq!(run.ok().stdout, "ran\n");
}

/// A context the daemon would have to fetch from Git (`remote=`: the docker CLI clones
/// those itself, other clients of the API hand them to the daemon) is refused, naming it,
/// before anything is read; an http context that cannot be fetched says why (the fetched
/// ones: build_remote.rs).
#[test]
fn a_git_context_is_refused_by_name() {
    let d = Daemon::start();
    let (status, body) = d.http(
        "POST",
        "/build?remote=https%3A%2F%2Fexample.com%2Frepo.git%23main",
        b"",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("remote build context https://example.com/repo.git#main: Git repositories are not fetched by berth"),
        "{body}"
    );
    let (_, body) = d.http(
        "POST",
        "/build?remote=http%3A%2F%2F127.0.0.1%3A9%2Fcontext.tar",
        b"",
    );
    assert!(body.contains("cannot connect to 127.0.0.1:9"), "{body}");
}

/// `RUN --mount=type=bind` of the context (the one step that needs it on disk): the files
/// as sent, without what .dockerignore drops; its key follows what it binds.
#[test]
fn a_bind_mount_of_the_context_sees_it_and_keys_on_it() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = d.dir.path().join("bind");
    write(
        &ctx,
        "Dockerfile",
        "FROM bb:1\nRUN --mount=type=bind,source=src,target=/s ls /s > /seen && cat /s/a >> /seen\nCMD [\"cat\", \"/seen\"]\n",
    );
    write(&ctx, "src/a", "a1\n");
    write(&ctx, "src/skip.log", "x\n");
    write(&ctx, ".dockerignore", "**/*.log\n");
    let build = || {
        let out = d.docker(&["build", "-t", "bound", path(&ctx)]);
        out.ok();
        out
    };
    build();
    let run = d.docker(&["run", "--rm", "--network", "none", "bound"]);
    assert_eq!(run.ok().stdout, "a\na1\n");
    assert_eq!(cached_steps(&build()), [2, 3]);
    write(&ctx, "src/a", "a2\n");
    let out = build();
    assert_eq!(cached_steps(&out), Vec::<usize>::new(), "{}", out.stdout);
    let run = d.docker(&["run", "--rm", "--network", "none", "bound"]);
    assert_eq!(run.ok().stdout, "a\na2\n");
}

/// A COPY that makes a new directory tree writes it into its layer directly, and a rebuild
/// after a change links the files that did not change from the earlier layer instead of
/// making new ones (their inode is the same in both images); two identical files of one
/// COPY still get an inode each, and a file under a directory the image has is copied
/// through the overlay as before.
#[test]
fn a_rebuilt_copy_links_its_unchanged_files() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = d.dir.path().join("pool");
    write(
        &ctx,
        "Dockerfile",
        "FROM bb:1\nCOPY src/ /src/\nCOPY src/ /etc/copied/\n",
    );
    write(&ctx, "src/a", "same\n");
    write(&ctx, "src/b", "same\n");
    write(&ctx, "src/c", "c1\n");
    let t = nix::sys::time::TimeSpec::new(1_000_000, 0);
    for f in ["src/a", "src/b"] {
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &ctx.join(f),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .expect("utimensat");
    }
    let inodes = |image: &str| -> Vec<String> {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "sh",
            "-c",
            "stat -c %i /src/a /src/b /src/c; cat /src/a /src/b /src/c /etc/copied/c",
        ]);
        out.ok().stdout.lines().map(String::from).collect()
    };
    d.docker(&["build", "-t", "pool:1", path(&ctx)]).ok();
    let first = inodes("pool:1");
    assert_eq!(first[3..], ["same", "same", "c1", "c1"], "{first:?}");
    assert_ne!(first[0], first[1], "identical files, one inode each");
    write(&ctx, "src/c", "c2\n");
    d.docker(&["build", "-t", "pool:2", path(&ctx)]).ok();
    let second = inodes("pool:2");
    assert_eq!(second[3..], ["same", "same", "c2", "c2"], "{second:?}");
    assert_eq!(second[0], first[0], "unchanged: linked");
    assert_eq!(second[1], first[1], "unchanged: linked");
    assert_ne!(second[2], first[2], "changed: a new file");
    // The first image is intact.
    assert_eq!(inodes("pool:1")[3..], ["same", "same", "c1", "c1"]);
}

//! `docker build` (the docker CLI's legacy builder path, POST /build) and `berth build`
//! against berthd: Dockerfiles FROM a busybox image the test imports, run afterwards; the
//! layer cache; multi-stage builds; build args; .dockerignore; heredocs; ONBUILD; failures.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// A build context directory `name` with `files` (path, content).
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.path().join(name);
    for (path, body) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, body).expect("write");
    }
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn config(d: &Daemon, image: &str) -> Value {
    let out = d.docker(&["image", "inspect", image]);
    let v: Value = serde_json::from_str(&out.ok().stdout).expect("inspect JSON");
    v[0]["Config"].clone()
}

/// The id "Successfully built" names.
fn built_id(out: &Out) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no image built: {}{}", out.stdout, out.stderr))
        .to_string()
}

/// Containers created between `since` and now.
fn containers_created(d: &Daemon, since: &str) -> usize {
    created(d, since, "container").len()
}

/// The ids of the objects of `kind` (container, image) created between `since` and now.
fn created(d: &Daemon, since: &str, kind: &str) -> Vec<String> {
    let until = a_second_from_now();
    let out = d.docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        &format!("type={kind}"),
        "--filter",
        "event=create",
        "--format",
        "{{.Actor.ID}}",
    ]);
    out.ok().stdout.lines().map(String::from).collect()
}

/// Now, as `docker events --since` takes it (seconds and nanoseconds).
fn unix_now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

const APP: &str = r#"FROM bb:1
ENV GREETING=hello
WORKDIR /app
COPY hello.txt ./
COPY data /app/data/
RUN echo "$GREETING from run" > run.txt && cat hello.txt
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/run.txt /app/hello.txt /app/data/one; pwd"]
"#;

#[test]
fn docker_build_copy_run_env_workdir_cmd_and_the_cache() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "app",
        &[
            ("Dockerfile", APP),
            ("hello.txt", "hi there\n"),
            ("data/one", "1\n"),
        ],
    );
    let since = unix_now();
    let first = d.docker(&["build", "-t", "app:1", path(&ctx)]);
    first.ok();
    // The one RUN step ran in a container of its own; each step after FROM made an image.
    assert_eq!(containers_created(&d, &since), 1);
    let images = created(&d, &since, "image");
    assert!(
        first.stdout.contains("Step 1/8 : FROM bb:1"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("Step 6/8 : RUN echo \"$GREETING from run\""),
        "{}",
        first.stdout
    );
    // The RUN's output and its container, as the legacy builder shows them.
    assert!(
        first.stdout.contains(" ---> Running in "),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("\nhi there\n"), "{}", first.stdout);
    assert!(
        first.stdout.contains("Removing intermediate container"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("Successfully tagged app:1"),
        "{}",
        first.stdout
    );
    let id = built_id(&first);
    assert_eq!(images.len(), 7, "{images:?}");
    assert!(images[6].starts_with(&format!("sha256:{id}")), "{images:?}");

    let run = d.docker(&["run", "--rm", "--network", "none", "app:1"]);
    assert_eq!(run.ok().stdout, "hello from run\nhi there\n1\n/app\n");
    let cfg = config(&d, "app:1");
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["Entrypoint"][0], "sh");
    assert!(cfg["Env"].to_string().contains("GREETING=hello"), "{cfg}");
    let history = d.docker(&["history", "--no-trunc", "app:1"]);
    assert!(
        history.ok().stdout.contains("echo \"$GREETING from run\""),
        "{}",
        history.stdout
    );

    // Nothing changed: every step from the cache, the same image, no container made.
    let since = unix_now();
    let again = d.docker(&["build", "-t", "app:1", path(&ctx)]);
    again.ok();
    assert_eq!(
        again.stdout.matches("Using cache").count(),
        7,
        "{}",
        again.stdout
    );
    assert_eq!(built_id(&again), id);
    assert_eq!(containers_created(&d, &since), 0);
    assert_eq!(created(&d, &since, "image"), Vec::<String>::new());

    // One COPYed file changed (not its mtime alone): the steps before it stay cached.
    std::fs::write(ctx.join("data/one"), "changed\n").expect("write");
    let changed = d.docker(&["build", "-t", "app:2", path(&ctx)]);
    changed.ok();
    assert_eq!(
        changed.stdout.matches("Using cache").count(),
        3,
        "{}",
        changed.stdout
    );
    let run = d.docker(&["run", "--rm", "--network", "none", "app:2"]);
    assert_eq!(run.ok().stdout, "hello from run\nhi there\nchanged\n/app\n");

    // --no-cache: nothing from the cache.
    let fresh = d.docker(&["build", "--no-cache", "-q", "-t", "app:3", path(&ctx)]);
    fresh.ok();
    assert!(
        fresh.stdout.trim().starts_with("sha256:"),
        "{}",
        fresh.stdout
    );
    assert!(
        !fresh.stdout.contains("Step"),
        "-q prints only the id: {}",
        fresh.stdout
    );
    // The steps' containers are gone; intermediate images show only with -a.
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout, "");
    let listed = d.docker(&["images", "-q"]).ok().stdout.lines().count();
    let all = d.docker(&["images", "-aq"]).ok().stdout.lines().count();
    assert!(all > listed, "{listed} {all}");
}

#[test]
fn docker_build_multi_stage_args_ignore_heredocs_onbuild_user() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let dockerfile = r#"ARG BASE=bb:1
FROM ${BASE} AS builder
ARG VERSION=0.1
RUN mkdir /out && echo "built $VERSION" > /out/result
RUN <<EOF
echo heredoc-run > /out/here
EOF
COPY <<EOF /out/copied
copied ${VERSION:-none} ${UNSET:-default}
EOF
COPY src/ /out/src/

FROM bb:1 AS unused
RUN exit 7

FROM bb:1
RUN echo 'app:x:1234:1234::/:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group
COPY --from=builder --chown=app:app /out /srv/
USER app
ONBUILD RUN echo triggered > /tmp/trig
HEALTHCHECK --interval=5s --retries=2 CMD true
EXPOSE 8080 53/udp
CMD ["sh", "-c", "cat /srv/result /srv/here /srv/copied; ls /srv/src; id -u; stat -c %u /srv/result"]
"#;
    let ctx = context(
        &d,
        "multi",
        &[
            ("Dockerfile", dockerfile),
            (".dockerignore", "src/*.log\n!src/keep.log\n"),
            ("src/a.rs", "a"),
            ("src/debug.log", "x"),
            ("src/keep.log", "k"),
        ],
    );
    let out = d.docker(&[
        "build",
        "--build-arg",
        "VERSION=2.0",
        "--build-arg",
        "UNUSED=1",
        "-t",
        "multi",
        path(&ctx),
    ]);
    out.ok();
    // The stage the target does not need is not built (its RUN would fail).
    assert!(!out.stdout.contains("exit 7"), "{}", out.stdout);
    assert!(
        out.stdout.contains("build-args [UNUSED] were not consumed"),
        "{}",
        out.stdout
    );
    let run = d.docker(&["run", "--rm", "--network", "none", "multi"]);
    assert_eq!(
        run.ok().stdout,
        "built 2.0\nheredoc-run\ncopied 2.0 default\na.rs\nkeep.log\n1234\n1234\n"
    );
    let cfg = config(&d, "multi");
    assert_eq!(cfg["User"], "app");
    assert_eq!(cfg["Healthcheck"]["Test"][1], "true");
    assert_eq!(cfg["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(cfg["Healthcheck"]["Retries"], 2);
    assert!(cfg["ExposedPorts"]["53/udp"].is_object(), "{cfg}");
    assert_eq!(cfg["OnBuild"][0], "RUN echo triggered > /tmp/trig");

    // ONBUILD triggers run in the child build (and are not inherited further); --target
    // picks a stage; -f names a Dockerfile outside the context.
    let child = d.dir.path().join("Child.Dockerfile");
    std::fs::write(&child, "FROM multi\nRUN cat /tmp/trig\n").expect("write");
    let out = d.docker(&["build", "-f", path(&child), "-t", "child", path(&ctx)]);
    out.ok();
    assert!(
        out.stdout.contains("Executing 1 build trigger"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\ntriggered\n"), "{}", out.stdout);
    assert!(config(&d, "child")["OnBuild"].is_null());
    let out = d.docker(&["build", "--target", "builder", "-t", "stage1", path(&ctx)]);
    out.ok();
    let run = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "stage1",
        "cat",
        "/out/result",
    ]);
    assert_eq!(run.ok().stdout, "built 0.1\n");
    d.docker(&["build", "--target", "nope", path(&ctx)])
        .failed_with("failed to reach build target nope in Dockerfile");
}

#[test]
fn a_failing_run_stops_the_build_with_its_code_and_output() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "fail",
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN echo before-fail && exit 3\nRUN echo never\n",
        )],
    );
    let out = d.docker(&["build", "-t", "failing", path(&ctx)]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("before-fail"), "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "The command '/bin/sh -c echo before-fail && exit 3' returned a non-zero code: 3"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("never"), "{}", out.stdout);
    // No half-built image is tagged, and the failed step's container is gone.
    d.docker(&["image", "inspect", "failing"]).failed();
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout, "");
}

#[test]
fn bad_dockerfiles_and_contexts_are_refused_with_their_line() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let cases: &[(&str, &str)] = &[
        (
            "FROM bb:1\n\nFOO bar\n",
            "Dockerfile:3: unknown instruction: FOO",
        ),
        (
            "FROM bb:1\nCOPY --chmown=1 a /\n",
            "Dockerfile:2: unknown flag: chmown",
        ),
        (
            "FROM bb:1\nRUN <<EOF\necho\n",
            "Dockerfile:2: unterminated heredoc EOF",
        ),
        (
            "FROM bb:1\nCOPY ../x /x\n",
            "Forbidden path outside the build context: ../x",
        ),
        (
            "FROM bb:1\nCOPY missing /x\n",
            "Dockerfile:2: file not found in build context",
        ),
        (
            "RUN true\n",
            "Dockerfile:1: no build stage in current context",
        ),
        (
            "FROM 127.0.0.1:9/nosuch:1\n",
            "Dockerfile:1: pulling 127.0.0.1:9/nosuch:1",
        ),
        (
            "FROM --platform=linux/s390x bb:1\n",
            "Dockerfile:1: platform linux/s390x is not this host's",
        ),
    ];
    for (i, (dockerfile, message)) in cases.iter().enumerate() {
        let ctx = context(&d, &format!("bad{i}"), &[("Dockerfile", dockerfile)]);
        d.docker(&["build", path(&ctx)]).failed_with(message);
    }
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout, "");
    // --platform: the host's is fine, another one is refused before anything is built.
    let ctx = context(&d, "plat", &[("Dockerfile", "FROM bb:1\nLABEL a=b\n")]);
    let host = host_platform();
    d.docker(&[
        "build",
        "--platform",
        &host,
        "--label",
        "from=cli",
        "-t",
        "plat",
        path(&ctx),
    ])
    .ok();
    assert_eq!(config(&d, "plat")["Labels"]["from"], "cli");
    assert_eq!(config(&d, "plat")["Labels"]["a"], "b");
    d.docker(&["build", "--platform", "linux/s390x", path(&ctx)])
        .failed_with("berth builds only for the host's platform");
    // --rm=false keeps a successful step's container, as the legacy builder does.
    let ctx = context(&d, "keep", &[("Dockerfile", "FROM bb:1\nRUN echo kept\n")]);
    d.docker(&["build", "--rm=false", path(&ctx)]).ok();
    let kept = d.docker(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(
        kept.ok().stdout.starts_with("Exited (0)"),
        "{}",
        kept.stdout
    );
    // Nothing mounted is left behind by the failed COPY steps.
    let mounts =
        std::fs::read_to_string(format!("/proc/{}/mountinfo", d.pid())).expect("mountinfo");
    assert!(
        !mounts.contains(path(&d.data_root().join("builder"))),
        "{mounts}"
    );
}

#[test]
fn run_mount_cache_keeps_files_between_builds() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "cache",
        &[(
            "Dockerfile",
            "FROM bb:1\nARG N\nRUN --mount=type=cache,target=/cache echo run$N >> /cache/log && cat /cache/log\n",
        )],
    );
    d.docker(&["build", "--build-arg", "N=1", path(&ctx)]).ok();
    let out = d.docker(&["build", "--build-arg", "N=2", path(&ctx)]);
    assert!(out.ok().stdout.contains("run1\nrun2\n"), "{}", out.stdout);
    // The cache mount is a record of the build cache (BuildKit's exec.cachemount).
    let records = |kind: &str| {
        let df = d.docker(&["system", "df", "-v", "--format", "{{json .BuildCache}}"]);
        let all: serde_json::Value = serde_json::from_str(df.ok().stdout.trim()).expect("json");
        all.as_array()
            .expect("records")
            .iter()
            .filter(|r| r["CacheType"] == kind)
            .count()
    };
    assert_eq!(records("exec.cachemount"), 1);
    // A prune of the steps' records keeps it; one of its type takes it alone.
    d.docker(&["builder", "prune", "-f", "--filter", "type=regular"])
        .ok();
    assert_eq!((records("regular"), records("exec.cachemount")), (0, 1));
    let out = d.docker(&["build", "--build-arg", "N=3", path(&ctx)]);
    assert!(
        out.ok().stdout.contains("run1\nrun2\nrun3\n"),
        "{}",
        out.stdout
    );
    let steps = records("regular");
    assert!(steps > 0);
    let pruned = d.docker(&["builder", "prune", "-f", "--filter", "type=exec.cachemount"]);
    assert!(
        pruned.ok().stdout.contains("cache-mount-"),
        "{}",
        pruned.stdout
    );
    assert_eq!((records("regular"), records("exec.cachemount")), (steps, 0));
    let out = d.docker(&["build", "--build-arg", "N=4", path(&ctx)]);
    assert!(out.ok().stdout.contains("\nrun4\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("run1"), "{}", out.stdout);
    // An unfiltered prune empties cache mounts too.
    d.docker(&["builder", "prune", "-f"]).ok();
    assert_eq!(records("exec.cachemount"), 0);
}

#[test]
fn berth_build_shows_steps_cached_marks_and_the_failed_output() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "berth",
        &[
            (
                "Dockerfile",
                "FROM bb:1\nCOPY . /ctx/\nRUN --mount=type=secret,id=tok test \"$(cat /run/secrets/tok)\" = s3cret && cp /ctx/a.txt /b.txt\nCMD [\"cat\", \"/b.txt\"]\n",
            ),
            ("a.txt", "from berth build\n"),
            (".dockerignore", "ignored\n"),
            ("ignored/big", "x"),
        ],
    );
    let secret = d.dir.path().join("secret");
    std::fs::write(&secret, "s3cret").expect("write");
    let secret_flag = format!("id=tok,src={}", secret.display());
    let iid = d.dir.path().join("iid");
    let out = d.berth(&[
        "build",
        "-t",
        "bb-built",
        "--secret",
        &secret_flag,
        "--iidfile",
        path(&iid),
        path(&ctx),
    ]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("[1/4] FROM bb:1  "), "{}", out.stdout);
    assert!(
        lines[2].starts_with("[3/4] RUN --mount=type=secret"),
        "{}",
        out.stdout
    );
    assert!(
        lines[2].ends_with('s'),
        "each step with its time: {}",
        out.stdout
    );
    let id = std::fs::read_to_string(&iid).expect("iidfile");
    assert!(
        out.stdout.contains(&format!("built {id}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("tagged bb-built:latest"),
        "{}",
        out.stdout
    );
    let run = d.docker(&["run", "--rm", "--network", "none", "bb-built"]);
    assert_eq!(run.ok().stdout, "from berth build\n");
    // The ignored directory never reached the daemon.
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb-built",
        "ls",
        "/ignored",
    ])
    .failed();

    let again = d.berth(&[
        "build",
        "-t",
        "bb-built",
        "--secret",
        &secret_flag,
        path(&ctx),
    ]);
    again.ok();
    assert_eq!(
        again.stdout.matches("CACHED [").count(),
        3,
        "{}",
        again.stdout
    );

    // A failed step: its line marked, its output, the command's status as berth's.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:1\nRUN echo some output; exit 4\n",
    )
    .expect("write");
    let failed = d.berth(&["build", path(&ctx)]);
    assert_eq!(failed.code, 4, "{}{}", failed.stdout, failed.stderr);
    assert!(
        failed
            .stdout
            .contains("ERROR [2/2] RUN echo some output; exit 4"),
        "{}",
        failed.stdout
    );
    assert!(
        failed.stdout.contains("  | some output"),
        "{}",
        failed.stdout
    );
    assert!(
        failed.stderr.contains("returned a non-zero code: 4"),
        "{}",
        failed.stderr
    );

    // `-`: the context as a tar on standard input.
    let tar = d.dir.path().join("stdin-context.tar");
    std::fs::write(
        &tar,
        tar_bytes(&[
            (
                "Dockerfile",
                "FROM bb:1\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n",
            ),
            ("f", "via stdin\n"),
        ]),
    )
    .expect("write");
    let stdin = std::process::Stdio::from(std::fs::File::open(&tar).expect("open"));
    d.berth_stdin(&["build", "-t", "from-stdin", "-"], stdin)
        .ok();
    let run = d.docker(&["run", "--rm", "--network", "none", "from-stdin"]);
    assert_eq!(run.ok().stdout, "via stdin\n");
}

/// The seed notes' second Dockerfile (004, "server.Dockerfile"), adapted to the busybox
/// image: apt steps become a file written by RUN, bash becomes sh. Built with `docker build
/// -f`, then run detached, exec'd into and stopped as the notes do.
#[test]
fn the_seed_notes_server_dockerfile_builds_and_runs() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let dockerfile = r#"FROM bb:1
LABEL maintainer="Carlos Nunez <dev@carlosnunez.me>"

USER root
COPY ./server.sh /

RUN chmod 755 /server.sh
RUN echo installed > /installed

USER nobody

ENTRYPOINT [ "/server.sh" ]
"#;
    let server = "#!/bin/sh\ncat /installed\necho \"Server started. Press CTRL-C to stop...\"\nwhile true\ndo sleep 10\ndone\n";
    let ctx = context(
        &d,
        "seed",
        &[("server.Dockerfile", dockerfile), ("server.sh", server)],
    );
    let ctx_path = path(&ctx);
    let dockerfile_path = ctx.join("server.Dockerfile");
    d.docker(&[
        "build",
        "-t",
        "my-server-image",
        "-f",
        path(&dockerfile_path),
        ctx_path,
    ])
    .ok();
    let cfg = config(&d, "my-server-image");
    assert_eq!(
        cfg["Labels"]["maintainer"],
        "Carlos Nunez <dev@carlosnunez.me>"
    );
    assert_eq!(cfg["User"], "nobody");
    let id = d
        .docker(&["run", "-d", "--network", "none", "my-server-image"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(
        wait_for(|| d.docker(&["logs", &id]).stdout.contains("Server started")),
        "{}",
        d.docker(&["logs", &id]).stdout
    );
    assert_eq!(
        d.docker(&["logs", &id]).ok().stdout.lines().next(),
        Some("installed")
    );
    let who = d.docker(&["exec", &id, "id", "-u"]);
    assert_eq!(who.ok().stdout, "65534\n");
    d.docker(&["stop", "-t", "0", &id]).ok();
    d.docker(&["rm", &id]).ok();
}

/// The "Build Cache" total of `docker system df`.
fn build_cache_total(d: &Daemon) -> usize {
    let df = d.docker(&["system", "df"]);
    df.ok()
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Build Cache"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no build cache line: {}", df.stdout))
}

#[test]
fn the_cache_survives_a_restart_and_builder_prune_empties_it() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "restart",
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN echo one > /one\nCMD [\"cat\", \"/one\"]\n",
        )],
    );
    let first = d.docker(&["build", "-t", "r", path(&ctx)]);
    let id = built_id(first.ok());
    // The build's scratch space is gone with it.
    let tmp = d.data_root().join("builder/tmp");
    assert_eq!(std::fs::read_dir(&tmp).expect("builder tmp").count(), 0);
    d.stop();
    d.spawn(&[]);
    let again = d.docker(&["build", "-t", "r", path(&ctx)]);
    assert_eq!(
        again.ok().stdout.matches("Using cache").count(),
        2,
        "{}",
        again.stdout
    );
    assert_eq!(built_id(&again), id);
    assert_eq!(build_cache_total(&d), 2);
    let pruned = d.docker(&["builder", "prune", "-f"]);
    assert!(
        pruned.ok().stdout.contains("Deleted build cache objects"),
        "{}",
        pruned.stdout
    );
    assert_eq!(build_cache_total(&d), 0);
    let after = d.docker(&["build", "-t", "r", path(&ctx)]);
    assert_eq!(
        after.ok().stdout.matches("Using cache").count(),
        0,
        "{}",
        after.stdout
    );
}

#[test]
fn a_client_that_goes_away_stops_the_build_and_its_container() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "slow",
        &[("Dockerfile", "FROM bb:1\nRUN sleep 60\nRUN echo after\n")],
    );
    let config = d.client_config();
    std::fs::create_dir_all(&config).expect("config dir");
    let mut cli = std::process::Command::new("docker")
        .args(["build", "-t", "slow", path(&ctx)])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", &config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker build");
    let running = wait_for(|| !d.docker(&["ps", "-q"]).stdout.trim().is_empty());
    let _ = cli.kill();
    let _ = cli.wait();
    assert!(running, "the RUN step never started");
    // Its container is killed and removed long before the sleep would end; nothing tagged.
    assert!(wait_for(|| d
        .docker(&["ps", "-aq"])
        .stdout
        .trim()
        .is_empty()));
    d.docker(&["image", "inspect", "slow"]).failed();
}

/// A tar (in memory) of `files`.
fn tar_bytes(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, body.as_bytes())
            .expect("append");
    }
    b.into_inner().expect("tar")
}

#[test]
fn scratch_add_shell_volume_and_copy_flags() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let dockerfile = r#"FROM scratch
COPY --from=bb:1 /bin/busybox /bin/
SHELL ["/bin/busybox", "sh", "-c"]
RUN /bin/busybox --install -s /bin
SHELL ["/bin/sh", "-xc"]
ADD layer.tar /unpacked/
ADD --unpack=false layer.tar /kept/
RUN test -f /kept/layer.tar
ADD plain.txt /plain/
COPY --chmod=0750 --exclude=*.log dir/ /copied/
COPY --parents dir/sub/deep.txt /parents/
MAINTAINER someone@example.com
VOLUME /data
STOPSIGNAL SIGINT
EXPOSE 7000-7002/udp
RUN echo shell-x-on
CMD ["sh", "-c", "cat /unpacked/inner/file.txt /plain/plain.txt; ls /copied; stat -c %a /copied/a.txt; cat /parents/dir/sub/deep.txt"]
"#;
    let ctx = context(
        &d,
        "scratch",
        &[
            ("Dockerfile", dockerfile),
            ("plain.txt", "plain\n"),
            ("dir/a.txt", "a"),
            ("dir/skip.log", "x"),
            ("dir/sub/deep.txt", "deep\n"),
        ],
    );
    std::fs::write(
        ctx.join("layer.tar"),
        tar_bytes(&[("inner/file.txt", "from the tar\n")]),
    )
    .expect("tar");
    let out = d.docker(&["build", "-t", "scratchy", path(&ctx)]);
    out.ok();
    // SHELL changed how RUN runs (sh -x echoes the command).
    assert!(out.stdout.contains("+ echo shell-x-on"), "{}", out.stdout);
    let run = d.docker(&["run", "--rm", "--network", "none", "scratchy"]);
    assert_eq!(
        run.ok().stdout,
        "from the tar\nplain\na.txt\nsub\n750\ndeep\n"
    );
    let inspect = d.docker(&["image", "inspect", "scratchy"]);
    let v: Value = serde_json::from_str(&inspect.ok().stdout).expect("json");
    assert_eq!(v[0]["Author"], "someone@example.com");
    let cfg = &v[0]["Config"];
    assert!(cfg["Volumes"]["/data"].is_object(), "{cfg}");
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert!(cfg["ExposedPorts"]["7001/udp"].is_object(), "{cfg}");
    assert_eq!(cfg["Shell"][1], "-xc");

    // ADD of a URL nobody answers: a clear error naming it.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:1\nADD http://127.0.0.1:9/file /f\n",
    )
    .expect("write");
    d.docker(&["build", path(&ctx)])
        .failed_with("ADD http://127.0.0.1:9/file: cannot connect to 127.0.0.1:9");
}

#[test]
fn a_missing_base_image_is_pulled_and_pull_pulls_again() {
    let reg = common::registry::Registry::start();
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let remote = format!("{}/base/bb:1", reg.addr);
    d.docker(&["tag", "bb:1", &remote]).ok();
    d.docker(&["push", &remote]).ok();
    d.docker(&["rmi", &remote]).ok();
    d.docker(&["rmi", "bb:1"]).ok();
    let ctx = context(
        &d,
        "pull",
        &[(
            "Dockerfile",
            &format!("FROM {remote}\nRUN echo pulled-base > /p\nCMD [\"cat\", \"/p\"]\n"),
        )],
    );
    let out = d.docker(&["build", "-t", "from-registry", path(&ctx)]);
    out.ok();
    assert!(
        out.stdout.contains("Pulling from base/bb"),
        "{}",
        out.stdout
    );
    let run = d.docker(&["run", "--rm", "--network", "none", "from-registry"]);
    assert_eq!(run.ok().stdout, "pulled-base\n");
    // A built image pushes and pulls back like any other.
    let pushed = format!("{}/built/app:1", reg.addr);
    d.docker(&["tag", "from-registry", &pushed]).ok();
    d.docker(&["push", &pushed]).ok();
    d.docker(&["rmi", &pushed]).ok();
    d.docker(&["rmi", "from-registry"]).ok();
    d.docker(&["pull", &pushed]).ok();
    let run = d.docker(&["run", "--rm", "--network", "none", &pushed]);
    assert_eq!(run.ok().stdout, "pulled-base\n");
    // Present now: no pull without --pull, one with it.
    let again = d.docker(&["build", path(&ctx)]);
    assert!(
        !again.ok().stdout.contains("Pulling from"),
        "{}",
        again.stdout
    );
    let pulled = d.docker(&["build", "--pull", path(&ctx)]);
    assert!(
        pulled.ok().stdout.contains("Pulling from base/bb"),
        "{}",
        pulled.stdout
    );
    // A base no registry has: the registry's answer, with the step.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}/nothing/here:1\n", reg.addr),
    )
    .expect("write");
    d.docker(&["build", path(&ctx)]).failed_with("pulling");
}

/// Two stages that need each other's progress: each makes a file in a shared cache mount
/// and waits (up to 20 s) for the other's. Built one after the other, the first would give
/// up; built at once, both finish.
#[test]
fn independent_stages_build_at_once() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=sync,target=/sync touch /sync/{me}-$N && for i in $(seq 200); do [ -e /sync/{other}-$N ] && echo {me} > /{me} && exit 0; sleep 0.1; done; exit 1"
        )
    };
    let dockerfile = format!(
        "FROM bb:1 AS one\nARG N\n{}\n\nFROM bb:1 AS two\nARG N\n{}\n\nFROM bb:1\nCOPY --from=one /one /\nCOPY --from=two /two /\nCMD [\"cat\", \"/one\", \"/two\"]\n",
        wait("one", "two"),
        wait("two", "one")
    );
    let ctx = context(&d, "parallel", &[("Dockerfile", &dockerfile)]);
    let out = d.docker(&[
        "build",
        "--build-arg",
        &format!("N={}", unix_now()),
        "-t",
        "par",
        path(&ctx),
    ]);
    out.ok();
    // The stream stays in step order.
    let one = out.stdout.find("Step 2/10 : ARG N").expect("step 2");
    let two = out
        .stdout
        .find("Step 4/10 : FROM bb:1 AS two")
        .expect("step 4");
    assert!(one < two, "{}", out.stdout);
    let run = d.docker(&["run", "--rm", "--network", "none", "par"]);
    assert_eq!(run.ok().stdout, "one\ntwo\n");

    // Two stages making the very same steps at once (the same cache key, the same script).
    let same = "RUN <<EOF\n#!/bin/sh\necho same > /s\nEOF\n";
    let twins = format!(
        "FROM bb:1 AS a\n{same}\nFROM bb:1 AS b\n{same}\nFROM bb:1\nCOPY --from=a /s /a\nCOPY --from=b /s /b\nCMD [\"cat\", \"/a\", \"/b\"]\n"
    );
    let ctx = context(&d, "twins", &[("Dockerfile", &twins)]);
    d.docker(&["build", "-t", "twins", path(&ctx)]).ok();
    let run = d.docker(&["run", "--rm", "--network", "none", "twins"]);
    assert_eq!(run.ok().stdout, "same\nsame\n");
    // Cache mounts shared by stages that run at once: `locked` makes one wait for the
    // other, `private` gives the second a directory of its own; with either, no RUN finds
    // the other's work in progress.
    for sharing in ["locked", "private"] {
        let step = |me: &str| {
            format!(
                "RUN --mount=type=cache,id={sharing},target=/c,sharing={sharing} test ! -e /c/busy && touch /c/busy && sleep 1 && rm /c/busy && echo {me}-$N > /{me}"
            )
        };
        let dockerfile = format!(
            "FROM bb:1 AS one\nARG N\n{}\n\nFROM bb:1 AS two\nARG N\n{}\n\nFROM bb:1\nCOPY --from=one /one /\nCOPY --from=two /two /\n",
            step("one"),
            step("two")
        );
        let ctx = context(&d, sharing, &[("Dockerfile", &dockerfile)]);
        let n = unix_now();
        d.docker(&["build", "--build-arg", &format!("N={n}"), path(&ctx)])
            .ok();
    }
}

#[test]
fn hostile_and_oversized_contexts_are_refused() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    // A context entry that climbs out: refused before anything is written outside.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    let name = b"../../escaped";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    b.append(&h, &b"x"[..]).expect("append");
    let hostile = b.into_inner().expect("tar");
    let (status, body) = d.http("POST", "/build", &hostile);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("the build context has an entry outside it: ../../escaped"),
        "{body}"
    );
    assert!(!d.data_root().join("builder/escaped").exists());
    assert!(!d.data_root().join("escaped").exists());
    // A Dockerfile of 11 MiB: refused with its size.
    let big = "# padding\n".repeat((11 << 20) / 10);
    let ctx = tar_bytes(&[("Dockerfile", &big)]);
    let (status, body) = d.http("POST", "/build", &ctx);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is too large"), "{body}");
    assert_eq!(
        std::fs::read_dir(d.data_root().join("builder/tmp"))
            .expect("tmp")
            .count(),
        0
    );
}

#[test]
fn expanded_flags_and_the_network_are_part_of_a_step() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "flags",
        &[
            (
                "Dockerfile",
                "FROM bb:1\nARG U\nCOPY --chown=$U a /a\nRUN ls /sys/class/net > /nets\nCMD [\"sh\", \"-c\", \"stat -c %u /a; cat /nets\"]\n",
            ),
            ("a", "a"),
        ],
    );
    d.docker(&["build", "--build-arg", "U=1", "-t", "u1", path(&ctx)])
        .ok();
    let out = d.docker(&["build", "--build-arg", "U=2", "-t", "u2", path(&ctx)]);
    assert_eq!(
        out.ok().stdout.matches("Using cache").count(),
        0,
        "{}",
        out.stdout
    );
    let run = |tag: &str| {
        d.docker(&["run", "--rm", "--network", "none", tag])
            .ok()
            .stdout
            .clone()
    };
    // RUN steps are on the default bridge unless the build asks for another network.
    assert_eq!(run("u1"), "1\neth0\nlo\n");
    assert_eq!(run("u2"), "2\neth0\nlo\n");
    let host = d.docker(&[
        "build",
        "--network",
        "host",
        "--build-arg",
        "U=1",
        "-t",
        "uh",
        path(&ctx),
    ]);
    // The COPY comes from the cache; the RUN, on another network, does not.
    assert_eq!(
        host.ok().stdout.matches("Using cache").count(),
        1,
        "{}",
        host.stdout
    );
    let nets = run("uh");
    assert!(nets.lines().count() > 2, "the host's interfaces: {nets}");
}

#[test]
fn rmi_of_a_built_image_deletes_its_untagged_parents() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "rmi",
        &[(
            "Dockerfile",
            "FROM bb:1\nENV A=1\nRUN echo x > /x\nCMD [\"cat\", \"/x\"]\n",
        )],
    );
    d.docker(&["build", "-t", "built", path(&ctx)]).ok();
    // A second image shares the first two steps: those stay while it does.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:1\nENV A=1\nCMD [\"true\"]\n",
    )
    .expect("w");
    d.docker(&["build", "-t", "sibling", path(&ctx)]).ok();
    let before = d.docker(&["images", "-aq"]).ok().stdout.lines().count();
    let out = d.docker(&["rmi", "built"]);
    // built itself, its CMD and RUN steps' parents; not the ENV step the sibling needs.
    assert_eq!(
        out.ok().stdout.matches("Deleted: ").count(),
        2,
        "{}",
        out.stdout
    );
    let after = d.docker(&["images", "-aq"]).ok().stdout.lines().count();
    assert_eq!(before - after, 2);
    let out = d.docker(&["rmi", "sibling"]);
    assert_eq!(
        out.ok().stdout.matches("Deleted: ").count(),
        2,
        "{}",
        out.stdout
    );
    let left = d.docker(&["images", "-a", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(left.ok().stdout, "bb:1\n");
}

/// `rmi --no-prune`: the image goes, its untagged build parents stay (both CLIs).
#[test]
fn rmi_no_prune_keeps_the_untagged_parents() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "noprune",
        &[("Dockerfile", "FROM bb:1\nENV B=2\nCMD [\"true\"]\n")],
    );
    for (client, name) in [("docker", "kept-d"), ("berth", "kept-b")] {
        d.docker(&["build", "--no-cache", "-t", name, path(&ctx)])
            .ok();
        let before = d.docker(&["images", "-aq"]).ok().stdout.lines().count();
        let args = ["rmi", "--no-prune", name];
        let out = if client == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        assert_eq!(
            out.ok().stdout.matches("Deleted: ").count(),
            1,
            "{}",
            out.stdout
        );
        let after = d.docker(&["images", "-aq"]).ok().stdout.lines().count();
        assert_eq!(before - after, 1, "{client}");
    }
}

#[test]
fn run_heredocs_are_left_to_the_shell_and_shebangs_executed() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let dockerfile = "FROM bb:1\nARG WHO=builder\nRUN <<EOF\necho 'literal $WHO' > /single\necho \"env $WHO\" >> /single\nEOF\nRUN <<EOF\n#!/bin/sh\necho \"run as $0\" > /shebang\nEOF\nRUN cat <<EOF > /fed\nfed $WHO\nEOF\nCMD [\"cat\", \"/single\", \"/shebang\", \"/fed\"]\n";
    let ctx = context(&d, "heredocs", &[("Dockerfile", dockerfile)]);
    d.docker(&["build", "-t", "heredocs", path(&ctx)]).ok();
    let run = d.docker(&["run", "--rm", "--network", "none", "heredocs"]);
    assert_eq!(
        run.ok().stdout,
        "literal $WHO\nenv builder\nrun as /dev/pipes/EOF\nfed builder\n"
    );
    // The script's mount point is not in the image.
    let ls = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "heredocs",
        "ls",
        "/dev/pipes",
    ]);
    ls.failed();
}

#[test]
fn cache_from_a_loaded_image_stands_for_its_steps() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "cachefrom",
        &[
            ("Dockerfile", APP),
            ("hello.txt", "hi there\n"),
            ("data/one", "1\n"),
        ],
    );
    d.docker(&["build", "-t", "app:1", path(&ctx)]).ok();
    let saved = d.dir.path().join("app.tar");
    d.docker(&["save", "-o", path(&saved), "app:1"]).ok();
    d.docker(&["rmi", "app:1"]).ok();
    d.docker(&["builder", "prune", "-f"]).ok();
    // Loaded: the same history, but no cache entries of its own.
    d.docker(&["load", "-i", path(&saved)]).ok();
    let since = unix_now();
    let out = d.docker(&["build", "--cache-from", "app:1", "-t", "app:2", path(&ctx)]);
    assert_eq!(
        out.ok().stdout.matches("Using cache").count(),
        7,
        "{}",
        out.stdout
    );
    assert_eq!(containers_created(&d, &since), 0);
    let run = d.docker(&["run", "--rm", "--network", "none", "app:2"]);
    assert_eq!(run.ok().stdout, "hello from run\nhi there\n1\n/app\n");
}

#[test]
fn what_a_run_writes_under_a_volume_is_discarded_and_no_volume_is_left() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "volume",
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN mkdir /data && echo before > /data/kept\nVOLUME /data\nRUN echo during > /data/lost && echo outside > /kept\n",
        )],
    );
    d.docker(&["build", "-t", "vol:1", path(&ctx)]).ok();
    // As under dockerd: the volume's content at the VOLUME line is the image's; a later RUN's
    // writes there went to a volume removed with its step.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "vol:1",
        "sh",
        "-c",
        "ls /data; cat /kept",
    ]);
    assert_eq!(out.ok().stdout, "kept\noutside\n");
    assert_eq!(
        d.docker(&["volume", "ls", "-q"]).ok().stdout,
        "",
        "the steps' volumes were removed"
    );
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let ok = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success(), "openssl {args:?}");
}

#[test]
fn add_of_an_https_url_fetches_it_over_tls_and_refuses_an_untrusted_server() {
    let tls = tempfile::tempdir().expect("tls dir");
    let t = tls.path();
    // A CA the daemon trusts (SSL_CERT_FILE), a server certificate it signed, and one that
    // signed itself.
    openssl(
        t,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=berth-test-ca",
        ],
    );
    openssl(
        t,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(t.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    openssl(
        t,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
    openssl(
        t,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "self.key",
            "-out",
            "self.pem",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    let files = t.join("www");
    std::fs::create_dir_all(&files).expect("www");
    std::fs::write(files.join("payload.txt"), "over tls\n").expect("payload");
    let trusted = FileServer::start(&files, Some((&t.join("srv.pem"), &t.join("srv.key"))));
    let untrusted = FileServer::start(&files, Some((&t.join("self.pem"), &t.join("self.key"))));

    let ca = t.join("ca.pem").to_string_lossy().into_owned();
    let d = Daemon::start_for_containers_env(&[], &[("SSL_CERT_FILE", &ca)]);
    common::busybox_image(&d);
    let ctx = tempfile::tempdir().expect("ctx");
    let url = format!("https://127.0.0.1:{}/payload.txt", trusted.port);
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM bb:1\nADD {url} /got/\n"),
    )
    .expect("Dockerfile");
    d.docker(&["build", "-t", "fetched:1", &ctx.path().to_string_lossy()])
        .ok();
    let got = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "fetched:1",
        "cat",
        "/got/payload.txt",
    ]);
    assert_eq!(got.ok().stdout, "over tls\n");

    let bad = format!("https://127.0.0.1:{}/payload.txt", untrusted.port);
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM bb:1\nADD {bad} /got/\n"),
    )
    .expect("Dockerfile");
    let out = d.docker(&["build", &ctx.path().to_string_lossy()]);
    out.failed_with(&format!("ADD {bad}"));
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
}

/// The cache entries' files (one per step), each with the bytes its layer added.
fn cache_entries(d: &Daemon) -> Vec<(std::path::PathBuf, u64)> {
    let dir = d.data_root().join("builder/cache");
    let mut out: Vec<(std::path::PathBuf, u64)> = std::fs::read_dir(&dir)
        .expect("cache dir")
        .flatten()
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).expect("entry");
            let size = text
                .lines()
                .nth(2)
                .and_then(|l| l.parse().ok())
                .expect("size");
            (e.path(), size)
        })
        .collect();
    out.sort_by_key(|(_, size)| *size);
    out
}

/// Make an entry look last used `ago` (`touch -d`).
fn age(path: &std::path::Path, ago: &str) {
    let out = std::process::Command::new("touch")
        .args(["-d", ago])
        .arg(path)
        .output()
        .expect("touch");
    assert!(out.status.success(), "{out:?}");
}

/// `docker builder prune` with filters and a space to keep: only the entries they pick
/// go, the oldest first (BuildKit's rules, which dockerd applies); bad filters are
/// refused as dockerd refuses them.
#[test]
fn builder_prune_takes_its_filters_and_the_space_to_keep() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let ctx = context(
        &d,
        "sized",
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN head -c 100000 /dev/urandom > /a\nRUN head -c 200000 /dev/urandom > /b\nENV X=1\n",
        )],
    );
    d.docker(&["build", "-t", "sized", path(&ctx)]).ok();
    assert_eq!(build_cache_total(&d), 3);
    // Nothing was last used an hour ago.
    d.docker(&["builder", "prune", "-f", "--filter", "until=1h"])
        .ok();
    assert_eq!(build_cache_total(&d), 3);
    let entries = cache_entries(&d);
    let (env, small, big) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(env.1, 0);
    age(&env.0, "2 hours ago");
    age(&small.0, "3 hours ago");
    let pruned = d.docker(&["builder", "prune", "-f", "--filter", "until=1h"]);
    assert!(
        pruned.ok().stdout.contains("Deleted build cache objects"),
        "{}",
        pruned.stdout
    );
    assert_eq!(cache_entries(&d), std::slice::from_ref(big));

    // Keep room for the big step alone: the oldest go first until the rest fits.
    d.docker(&["builder", "prune", "-f"]).ok();
    d.docker(&["build", "-t", "sized", path(&ctx)]).ok();
    let entries = cache_entries(&d);
    age(&entries[1].0, "3 hours ago");
    age(&entries[2].0, "2 hours ago");
    age(&entries[0].0, "1 hour ago");
    let keep = (entries[2].1 + entries[0].1 + 1000).to_string();
    d.docker(&["builder", "prune", "-f", "--keep-storage", &keep])
        .ok();
    let left: Vec<u64> = cache_entries(&d).iter().map(|(_, s)| *s).collect();
    assert_eq!(left, [entries[0].1, entries[2].1]);

    for (filter, error) in [
        ("until=soon", "invalid filter 'until=soon'"),
        ("id=[", "invalid filter 'id'"),
        ("nosuch=1", "invalid filter 'nosuch'"),
    ] {
        d.docker(&["builder", "prune", "-f", "--filter", filter])
            .failed_with(error);
    }
    d.docker(&[
        "builder", "prune", "-f", "--filter", "until=1h", "--filter", "until=2h",
    ])
    .failed_with("filters expect only one value");
    assert_eq!(build_cache_total(&d), 2);
}

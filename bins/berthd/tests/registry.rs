//! Pull, push and login against real registries (Debian's docker-registry, started per test
//! on a free loopback port) and against a scripted fake for hostile answers.

mod common;

use common::registry::{
    self, digest, test_image, Behavior, FakeRegistry, Options, Registry, TestImage, TokenServer,
    OCI_INDEX,
};
use common::{classic_archive, layer, Daemon, Out};

/// Load a three-layer image named `tag` into the daemon.
fn three_layer_image(d: &Daemon, tag: &str, salt: &str) {
    let layers = vec![
        layer(&[("a.txt", format!("first {salt}").as_bytes())]),
        layer(&[("b.txt", format!("second {salt}").as_bytes())]),
        layer(&[("c.txt", format!("third {salt}").as_bytes())]),
    ];
    let archive = d.dir.path().join(format!("{salt}.tar"));
    classic_archive(&archive, tag, &layers, serde_json::json!({}));
    d.docker(&["load", "-i", archive.to_str().expect("utf8")])
        .ok();
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.docker(&["image", "inspect", "--format", format, name])
        .ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn docker_cli_push_then_pull_by_tag_and_digest() {
    let reg = Registry::start();
    let d = Daemon::start();
    let name = format!("{}/app:1", reg.addr);
    three_layer_image(&d, &name, "push");
    let id = inspect(&d, &name, "{{.Id}}");
    let out = d.docker(&["push", &name]);
    out.ok();
    assert!(out.stdout.contains("Pushed"), "{}", out.stdout);
    let pushed_digest = out
        .stdout
        .lines()
        .find_map(|l| l.split("digest: ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .expect("digest line")
        .to_string();
    assert_eq!(reg.blob_gets().len(), 0, "a push downloads nothing");

    // Pushing again: every layer is there already.
    let again = d.docker(&["push", &name]);
    assert_eq!(again.ok().stdout.matches("Layer already exists").count(), 3);
    // Another repository of the same registry mounts the blobs instead of uploading them.
    let other = format!("{}/other:2", reg.addr);
    d.docker(&["tag", &name, &other]).ok();
    let mounted = d.docker(&["push", &other]);
    assert_eq!(
        mounted.ok().stdout.matches("Mounted from app").count(),
        3,
        "{}",
        mounted.stdout
    );

    // Into a daemon that has nothing: same image, same digests.
    let fresh = Daemon::start();
    let pulled = fresh.docker(&["pull", &name]);
    pulled.ok();
    assert!(pulled.stdout.contains("Pull complete"), "{}", pulled.stdout);
    assert!(pulled.stdout.contains(&format!("Digest: {pushed_digest}")));
    assert_eq!(inspect(&fresh, &name, "{{.Id}}"), id);
    assert_eq!(
        inspect(&fresh, &name, "{{json .RepoDigests}}"),
        format!("[\"{}/app@{pushed_digest}\"]", reg.addr)
    );
    assert_eq!(
        inspect(&fresh, &name, "{{json .RootFS.Layers}}"),
        inspect(&d, &name, "{{json .RootFS.Layers}}")
    );
    // Up to date the second time, and nothing fetched again.
    let gets = reg.blob_gets().len();
    let again = fresh.docker(&["pull", &name]);
    assert!(again.ok().stdout.contains("Image is up to date"));
    assert_eq!(reg.blob_gets().len(), gets);

    // By digest, into another fresh daemon.
    let by_digest = format!("{}/app@{pushed_digest}", reg.addr);
    let third = Daemon::start();
    third.docker(&["pull", &by_digest]).ok();
    assert_eq!(inspect(&third, &by_digest, "{{.Id}}"), id);

    // Pull events, and a missing tag is docker's 404 message.
    fresh
        .docker(&["pull", &format!("{}/app:nope", reg.addr)])
        .failed_with("manifest unknown");
    let events = fresh.past_events(&["--format", "{{.Type}} {{.Action}} {{.Actor.ID}}"]);
    assert!(
        events
            .ok()
            .stdout
            .contains(&format!("image pull {}", &name)),
        "{}",
        events.stdout
    );
}

#[test]
fn a_pull_transfers_only_the_layers_the_store_lacks() {
    let reg = Registry::start();
    let d = Daemon::start();
    // `small` has the first two layers of `big`.
    let l = |s: &str| layer(&[(s, s.as_bytes())]);
    let (a, b, c) = (l("one"), l("two"), l("three"));
    let small = format!("{}/small:1", reg.addr);
    let big = format!("{}/big:1", reg.addr);
    let dir = d.dir.path();
    classic_archive(
        &dir.join("s.tar"),
        &small,
        &[a.clone(), b.clone()],
        serde_json::json!({}),
    );
    classic_archive(
        &dir.join("b.tar"),
        &big,
        &[a, b, c.clone()],
        serde_json::json!({}),
    );
    for t in ["s.tar", "b.tar"] {
        d.docker(&["load", "-i", dir.join(t).to_str().expect("utf8")])
            .ok();
    }
    d.berth(&["push", &small]).ok();
    d.berth(&["push", &big]).ok();

    let fresh = Daemon::start();
    fresh.berth(&["pull", &small]).ok();
    let before = reg.blob_gets().len();
    let out = fresh.berth(&["pull", &big]);
    out.ok();
    assert_eq!(
        out.stdout.matches("Already exists").count(),
        2,
        "{}",
        out.stdout
    );
    let fetched: Vec<String> = reg.blob_gets().split_off(before);
    // The new layer and the config, nothing else.
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    assert!(fetched.contains(&digest(&c)), "{fetched:?}");
    fresh
        .docker(&["run", "--rm", "--network", "none", &big, "cat", "/three"])
        .failed(); // no container support in this daemon: the image is what is checked
    assert_eq!(
        fresh
            .docker(&[
                "image",
                "inspect",
                "--format",
                "{{len .RootFS.Layers}}",
                &big
            ])
            .ok()
            .stdout
            .trim(),
        "3"
    );
}

/// `multi:1`: an index of `arm` (linux/arm64/v8) and `amd` (linux/amd64); its digest.
fn serve_two_platforms(fake: &FakeRegistry, amd: &TestImage, arm: &TestImage) -> String {
    let amd_digest = fake.serve_image("multi", "amd", amd);
    let arm_digest = fake.serve_image("multi", "arm", arm);
    let index = serde_json::to_vec(&serde_json::json!({
    "schemaVersion": 2, "mediaType": OCI_INDEX,
    "manifests": [
        {"mediaType": registry::OCI_MANIFEST, "digest": arm_digest, "size": arm.manifest.len(),
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": registry::OCI_MANIFEST, "digest": amd_digest, "size": amd.manifest.len(),
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]}))
    .expect("index");
    fake.put_manifest("multi", "1", OCI_INDEX, &index)
}

#[test]
fn an_index_pull_picks_the_platform() {
    let fake = FakeRegistry::start();
    let amd = test_image(&[layer(&[("arch", b"amd64")])], "amd64");
    let arm = test_image(&[layer(&[("arch", b"arm64")])], "arm64");
    let index_digest = serve_two_platforms(&fake, &amd, &arm);
    let d = Daemon::start();
    let name = format!("{}/multi:1", fake.addr);
    d.berth(&["pull", &name]).ok();
    assert_eq!(inspect(&d, &name, "{{.Architecture}}"), "amd64");
    // RepoDigests name the index, as Docker records it.
    assert!(inspect(&d, &name, "{{json .RepoDigests}}").contains(&index_digest));
    d.berth(&["pull", "--platform", "linux/arm64", &name]).ok();
    assert_eq!(inspect(&d, &name, "{{.Architecture}}"), "arm64");
    d.berth(&["pull", "--platform", "linux/s390x", &name])
        .failed_with("no matching manifest for linux/s390x");
    assert_eq!(fake.blob_gets(&digest(&arm.layers[0])), 1);
}

fn login(d: &Daemon, cli: &str, server: &str, user: &str, pass: &str) -> Out {
    let args = ["login", "-u", user, "-p", pass, server];
    if cli == "docker" {
        d.docker(&args)
    } else {
        d.berth(&args)
    }
}

#[test]
fn basic_auth_login_push_pull_logout() {
    let reg = Registry::start_with(Options {
        basic: Some(("alice".into(), "s3cret".into())),
        ..Options::default()
    });
    let d = Daemon::start();
    let name = format!("{}/private:1", reg.addr);
    three_layer_image(&d, &name, "basic");
    d.berth(&["push", &name]).failed_with("push access denied");
    login(&d, "berth", &reg.addr, "alice", "wrong").failed_with("401 Unauthorized");
    login(&d, "berth", &reg.addr, "alice", "s3cret").ok();
    let config = std::fs::read_to_string(d.client_config().join("config.json")).expect("config");
    assert!(config.contains(&reg.addr), "{config}");
    d.berth(&["push", &name]).ok();
    d.docker(&["rmi", &name]).ok();
    // The docker CLI reads the same config.json: berth's login serves it.
    d.docker(&["pull", &name]).ok();
    d.berth(&["logout", &reg.addr])
        .ok()
        .stdout
        .contains("Removing login credentials");
    d.docker(&["rmi", &name]).ok();
    d.berth(&["pull", &name]).failed_with("pull access denied");
    // And docker login through berthd stores what berth then uses.
    login(&d, "docker", &reg.addr, "alice", "s3cret").ok();
    d.berth(&["pull", &name]).ok();
}

#[test]
fn token_auth_login_push_pull() {
    let tokens = TokenServer::start("bob", "hunter2");
    let reg = Registry::start_with(Options {
        token: Some((tokens.realm.clone(), tokens.cert.clone())),
        ..Options::default()
    });
    let d = Daemon::start();
    let name = format!("{}/team/app:1", reg.addr);
    three_layer_image(&d, &name, "token");
    login(&d, "berth", &reg.addr, "bob", "wrong").failed_with("incorrect username or password");
    login(&d, "berth", &reg.addr, "bob", "hunter2").ok();
    d.berth(&["push", &name]).ok();
    let fresh = Daemon::start();
    fresh
        .docker(&["pull", &name])
        .failed_with("incorrect username or password");
    std::fs::create_dir_all(fresh.client_config()).expect("config dir");
    std::fs::copy(
        d.client_config().join("config.json"),
        fresh.client_config().join("config.json"),
    )
    .expect("copy config");
    fresh.berth(&["pull", &name]).ok();
    assert_eq!(
        inspect(&fresh, &name, "{{.Id}}"),
        inspect(&d, &name, "{{.Id}}")
    );
    assert!(*tokens.requests.lock().expect("count") >= 2);
}

/// A network namespace of the test's own, with loopback up and a non-loopback address.
struct Netns(String);

impl Netns {
    fn create(addr: &str) -> Netns {
        let name = format!(
            "berth-test-{}-{}",
            std::process::id(),
            common::registry::free_port()
        );
        let ip = |args: &[&str]| {
            let st = std::process::Command::new("ip")
                .args(args)
                .status()
                .expect("ip");
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
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[test]
fn a_self_signed_registry_needs_insecure_registries() {
    // 192.0.2.1 (TEST-NET) is not loopback, so it is not insecure by default.
    let ns = Netns::create("192.0.2.1");
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = registry::self_signed(dir.path(), &["192.0.2.1"]);
    let mut reg = Registry::start_with(Options {
        tls: Some((cert, key)),
        addr: Some("192.0.2.1:5443".into()),
        netns: Some(ns.0.clone()),
        ..Options::default()
    });
    let mut d = Daemon::start_unspawned();
    d.netns = Some(ns.0.clone());
    d.spawn(&[]);
    let name = "192.0.2.1:5443/tls:1";
    three_layer_image(&d, name, "tls");
    d.berth(&["push", name]).failed_with("certificate");
    d.kill();
    d.spawn(&["--insecure-registry", "192.0.2.1:5443"]);
    let info = d.docker(&["info", "--format", "{{json .RegistryConfig.IndexConfigs}}"]);
    assert!(
        info.ok()
            .stdout
            .contains(r#""Name":"192.0.2.1:5443","Mirrors":[],"Secure":false"#),
        "{}",
        info.stdout
    );
    d.berth(&["push", name]).ok();
    d.docker(&["rmi", name]).ok();
    d.berth(&["pull", name]).ok();
    d.kill();
    reg.stop();
}

#[test]
fn an_interrupted_pull_leaves_no_image_and_its_retry_reuses_finished_layers() {
    let fake = FakeRegistry::start();
    let big: Vec<u8> = (0..4_000_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761) as u8)
        .collect();
    let image = test_image(
        &[layer(&[("small", b"small")]), layer(&[("big", &big)])],
        "amd64",
    );
    fake.serve_image("app", "1", &image);
    let (small_blob, big_blob) = (digest(&image.layers[0]), digest(&image.layers[1]));
    fake.set_behavior(&big_blob, Behavior::Stall);
    let mut d = Daemon::start();
    let name = format!("{}/app:1", fake.addr);
    let progress = d.dir.path().join("pull-progress");
    let puller = std::process::Command::new(common::berth_cli())
        .arg("-H")
        .arg(format!("unix://{}", d.socket().display()))
        .args(["pull", &name])
        .stdout(std::fs::File::create(&progress).expect("progress file"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("berth pull");
    assert!(common::wait_for(
        || fake.blob_gets(&big_blob) >= 1 && fake.blob_gets(&small_blob) == 1
    ));
    // Let the small layer land (recorded, not only unpacked: "Pull complete"), then kill
    // the daemon mid-pull.
    let small_id = &small_blob["sha256:".len().."sha256:".len() + 12];
    assert!(common::wait_for(|| std::fs::read_to_string(&progress)
        .unwrap_or_default()
        .contains(&format!("{small_id}: Pull complete"))));
    d.kill();
    let mut puller = puller;
    let _ = puller.wait();
    d.spawn(&[]);
    assert_eq!(d.docker(&["images", "-q"]).ok().stdout.trim(), "");
    fake.set_behavior(&big_blob, Behavior::Normal);
    d.berth(&["pull", &name]).ok();
    assert_eq!(
        fake.blob_gets(&small_blob),
        1,
        "the finished layer was fetched again"
    );
    assert_eq!(inspect(&d, &name, "{{len .RootFS.Layers}}"), "2");
    // Pruning after a removal leaves nothing behind.
    d.docker(&["rmi", &name]).ok();
    d.docker(&["image", "prune", "-f"]).ok();
    assert_eq!(d.stored_blobs(), Vec::<String>::new());
}

#[test]
fn a_broken_download_resumes_and_a_registry_that_keeps_failing_fails_the_pull_cleanly() {
    let fake = FakeRegistry::start();
    let payload: Vec<u8> = (0..600_000u32)
        .map(|i| i.wrapping_mul(40_503) as u8)
        .collect();
    let image = test_image(
        &[layer(&[("small", b"small")]), layer(&[("x", &payload)])],
        "amd64",
    );
    fake.serve_image("flaky", "1", &image);
    let (small, big) = (digest(&image.layers[0]), digest(&image.layers[1]));
    let d = Daemon::start();
    let name = format!("{}/flaky:1", fake.addr);

    // Every connection breaks halfway: the retries give up, nothing is left of the image.
    fake.set_behavior(&big, Behavior::Drop);
    d.berth(&["pull", &name])
        .failed_with(&format!("blobs/{big}"));
    assert_eq!(d.docker(&["images", "-q"]).ok().stdout.trim(), "");
    assert!(fake.blob_gets(&big) > 1, "no retry: {:?}", fake.requests());

    // Breaks once: resumed with a Range request where it stopped; the finished small
    // layer of the failed pull is not fetched again.
    fake.set_behavior(&big, Behavior::DropOnce);
    d.berth(&["pull", &name]).ok();
    let half = image.layers[1].len() / 2;
    assert!(
        fake.requests()
            .contains(&format!("GET /v2/flaky/blobs/{big} from {half}")),
        "{:?}",
        fake.requests()
    );
    assert_eq!(fake.blob_gets(&small), 1);
    assert_eq!(inspect(&d, &name, "{{len .RootFS.Layers}}"), "2");
}

/// Each hostile answer is a clear error and leaves nothing stored.
#[test]
fn hostile_registry_answers_are_refused() {
    let fake = FakeRegistry::start();
    let d = Daemon::start();
    let pull = |repo: &str, tag: &str, needle: &str| {
        d.berth(&["pull", &format!("{}/{repo}:{tag}", fake.addr)])
            .failed_with(needle);
        assert_eq!(d.docker(&["images", "-q"]).ok().stdout.trim(), "");
        assert_eq!(d.stored_blobs(), Vec::<String>::new(), "{repo}");
    };
    let image = || test_image(&[layer(&[("f", b"data")])], "amd64");

    let img = image();
    fake.serve_image("wrongheader", "1", &img);
    fake.set_behavior("manifests/1", Behavior::WrongDigestHeader);
    pull("wrongheader", "1", "digest mismatch for manifest");
    fake.set_behavior("manifests/1", Behavior::Normal);

    let img = image();
    fake.serve_image("badblob", "2", &img);
    fake.set_behavior(&digest(&img.layers[0]), Behavior::Corrupt);
    pull("badblob", "2", "digest mismatch for layer");

    let img = image();
    fake.serve_image("loop", "3", &img);
    fake.set_behavior(&digest(&img.layers[0]), Behavior::RedirectLoop);
    pull("loop", "3", "redirect");

    let huge = vec![b' '; 5 << 20];
    fake.put_manifest("huge", "4", registry::OCI_MANIFEST, &huge);
    pull("huge", "4", "larger than");

    fake.put_manifest(
        "malformed",
        "5",
        registry::OCI_MANIFEST,
        b"{\"schemaVersion\": 2, \"layers\": 7",
    );
    pull("malformed", "5", "not JSON");

    let odd = br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}"#;
    fake.put_manifest("odd", "6", "application/vnd.example.thing+json", odd);
    pull("odd", "6", "unsupported media type");

    let img = image();
    let m: serde_json::Value = serde_json::from_slice(&img.manifest).expect("manifest");
    let mut m2 = m.clone();
    m2["layers"][0]["mediaType"] = "application/vnd.example.layer".into();
    fake.serve_image("oddlayer", "x", &img);
    fake.put_manifest(
        "oddlayer",
        "7",
        registry::OCI_MANIFEST,
        &serde_json::to_vec(&m2).expect("json"),
    );
    pull("oddlayer", "7", "unsupported media type");

    // A digest reference whose content does not hash to it.
    let img = image();
    fake.serve_image("bydigest", "8", &img);
    let wrong = digest(b"not the manifest");
    fake.put_manifest("bydigest", "ignored", registry::OCI_MANIFEST, &img.manifest);
    d.berth(&["pull", &format!("{}/bydigest@{wrong}", fake.addr)])
        .failed_with("not found");
    let unknown = d.berth(&["pull", &format!("{}/nothing:1", fake.addr)]);
    unknown.failed_with("manifest unknown");
}

#[test]
fn search_is_refused_clearly() {
    let d = Daemon::start();
    d.docker(&["search", "busybox"])
        .failed_with("search is not supported");
    d.berth(&["search", "busybox"])
        .failed_with("search is not supported");
}

/// `run --platform`: an image present for another platform is not run; the docker CLI
/// (and berth's) then pull the platform asked for, and `--pull never` shows moby's error.
#[test]
fn run_with_a_platform_pulls_and_runs_that_platform() {
    let fake = FakeRegistry::start();
    let d = Daemon::start_for_containers();
    let busybox = std::fs::read(common::busybox_rootfs_tar(d.dir.path())).expect("rootfs");
    // Both entries run here (busybox for this machine); a file says which was chosen.
    let amd = test_image(&[busybox.clone(), layer(&[("arch", b"amd64")])], "amd64");
    let arm = test_image(&[busybox, layer(&[("arch", b"arm64")])], "arm64");
    serve_two_platforms(&fake, &amd, &arm);
    let name = format!("{}/multi:1", fake.addr);
    let run = ["run", "--rm", "--network", "none"];
    let arch_of = |cli: &str, platform: &[&str]| {
        let args: Vec<&str> = run
            .iter()
            .chain(platform)
            .chain(&[name.as_str(), "cat", "/arch"])
            .copied()
            .collect();
        let out = if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        out.ok().stdout.clone()
    };
    assert_eq!(arch_of("docker", &[]), "amd64");
    assert_eq!(arch_of("docker", &["--platform", "linux/arm64"]), "arm64");
    assert_eq!(inspect(&d, &name, "{{.Architecture}}"), "arm64");
    let never: Vec<&str> = run
        .iter()
        .chain(&[
            "--pull",
            "never",
            "--platform",
            "linux/amd64",
            &name,
            "true",
        ])
        .copied()
        .collect();
    d.docker(&never).failed_with(&format!(
        "image with reference {name} was found but does not match the specified platform: wanted linux/amd64, actual: linux/arm64"
    ));
    assert_eq!(arch_of("berth", &["--platform", "linux/x86_64"]), "amd64");
    assert_eq!(arch_of("berth", &["--platform", "linux/aarch64"]), "arm64");
    d.berth(&["create", "--platform", "linux", &name])
        .failed_with("invalid platform \"linux\": expected os/arch[/variant]");
    assert!(d.docker(&["ps", "-aq"]).ok().stdout.trim().is_empty());
}

/// `docker push --platform` (API 1.46): the image must be of that platform, as dockerd's
/// graphdriver store checks; an older client's platform is ignored, as dockerd ignores it.
#[test]
fn a_push_for_a_platform_checks_the_image_s() {
    let reg = Registry::start();
    let d = Daemon::start();
    let name = format!("{}/plat:1", reg.addr);
    three_layer_image(&d, &name, "platform");
    let pushed = d.docker(&["push", "--platform", "linux/amd64", &name]);
    assert!(
        pushed.ok().stdout.contains("digest: sha256:"),
        "{}",
        pushed.stdout
    );
    d.docker(&["push", "--platform", "linux/s390x", &name])
        .failed_with(
            "its platform (linux/amd64) does not match the specified platform (linux/s390x)",
        );
    let (status, body) = d.http(
        "POST",
        &format!("/v1.46/images/{name}/push?platform=linux%2Famd64"),
        b"",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("failed to parse platform"), "{body}");
    let (status, body) = d.http(
        "POST",
        &format!("/v1.45/images/{name}/push?platform=%7B%22os%22%3A%22linux%22%2C%22architecture%22%3A%22s390x%22%7D"),
        b"",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("digest: sha256:"), "{body}");
}

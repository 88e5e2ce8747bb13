//! The real docker CLI (28.x) against berthd: version, info, import, images (flags, filters,
//! formats), tag, inspect, history, rmi, prune, system df.

mod common;

use common::*;

#[test]
fn version_info_and_ping() {
    let d = Daemon::start();
    let v = d.docker(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
    ]);
    v.ok();
    assert_eq!(v.stdout.trim(), "1.50 1.24 linux");
    let info = d.docker(&[
        "info",
        "--format",
        "{{.Images}} {{.Driver}} {{.DockerRootDir}} {{.OSType}}",
    ]);
    info.ok();
    assert_eq!(
        info.stdout.trim(),
        format!("0 overlay2 {} linux", d.data_root().display())
    );
    // Every version the docker CLI may negotiate down to is accepted as a prefix.
    for v in [
        "1.40", "1.41", "1.44", "1.45", "1.46", "1.47", "1.48", "1.49", "1.50",
    ] {
        let (status, body) = d.http("GET", &format!("/v{v}/images/json"), b"");
        assert_eq!((status, body.trim()), (200, "[]"), "v{v}");
    }
    let (status, body) = d.http("GET", "/v1.51/version", b"");
    assert_eq!(status, 400);
    assert!(body.contains("too new"), "{body}");
    let (status, body) = d.http("GET", "/v1.12/version", b"");
    assert_eq!(status, 400);
    assert!(body.contains("too old"), "{body}");
    let (status, body) = d.http("GET", "/nope", b"");
    assert_eq!(status, 404);
    assert!(body.contains("\"message\""), "{body}");
}

#[test]
fn import_tag_list_inspect_history_and_remove() {
    let d = Daemon::start();
    let tar = busybox_rootfs_tar(d.dir.path());
    let tar = tar.to_str().expect("utf8");
    let id = d.docker(&[
        "import",
        "--change",
        "CMD [\"/bin/sh\"]",
        "--change",
        "ENV A=1",
        "--change",
        "WORKDIR /srv",
        "--change",
        "LABEL team=infra",
        "--message",
        "from a test",
        tar,
        "bb:1",
    ]);
    id.ok();
    let id = id.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    // Import from stdin too (`-`), for another platform (variant kept).
    d.docker_stdin(
        &["import", "--platform", "linux/arm/v7", "-", "other/img:2"],
        Some(std::path::Path::new(tar)),
    )
    .ok();
    assert_eq!(
        d.docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}}/{{.Variant}}",
            "other/img:2"
        ])
        .ok()
        .stdout
        .trim(),
        "linux/arm/v7"
    );

    let inspect = d.docker(&["image", "inspect", "--format", "{{.Id}}|{{json .Config.Cmd}}|{{json .Config.Env}}|{{.Config.WorkingDir}}|{{.Comment}}|{{.Os}}|{{.Architecture}}|{{len .RootFS.Layers}}|{{json .RepoTags}}", "bb:1"]);
    inspect.ok();
    assert_eq!(
        inspect.stdout.trim(),
        format!("{id}|[\"/bin/sh\"]|[\"A=1\"]|/srv|from a test|linux|amd64|1|[\"bb:1\"]")
    );

    d.docker(&["tag", "bb:1", "localhost:5000/x/y:v2"]).ok();
    d.docker(&["tag", "bb", "bb:latest"]).failed(); // bb:latest does not exist yet
    d.docker(&["tag", "bb:1", "bb"]).ok();
    let names = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    names.ok();
    let mut listed: Vec<&str> = names.stdout.lines().collect();
    listed.sort();
    assert_eq!(
        listed,
        ["bb:1", "bb:latest", "localhost:5000/x/y:v2", "other/img:2"]
    );
    let quiet = d.docker(&["images", "-q", "bb"]);
    assert_eq!(quiet.stdout.lines().count(), 2, "{}", quiet.stdout);
    assert!(quiet.stdout.lines().all(|l| id.contains(l)));
    let by_ref = d.docker(&[
        "images",
        "--filter",
        "reference=other/*",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(by_ref.stdout.trim(), "other/img");
    let by_label = d.docker(&[
        "images",
        "--filter",
        "label=team=infra",
        "--format",
        "{{.Tag}}",
    ]);
    let mut tags: Vec<&str> = by_label.stdout.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1", "latest", "v2"]);
    let since = d.docker(&[
        "images",
        "--filter",
        "since=bb:1",
        "--format",
        "{{.Repository}}",
    ]);
    since.ok();
    let before = d.docker(&[
        "images",
        "--filter",
        "before=other/img:2",
        "--format",
        "{{.Repository}}",
    ]);
    before.ok();
    let digests = d.docker(&["images", "--digests", "--format", "{{.Digest}}"]);
    digests.ok();
    let all = d.docker(&["images", "-a", "-q"]);
    assert_eq!(all.stdout.lines().count(), 4);
    let bad = d.docker(&["images", "--filter", "bogus=1"]);
    bad.failed_with("invalid filter 'bogus'");

    let history = d.docker(&["history", "--format", "{{.ID}} {{.Comment}}", "bb:1"]);
    history.ok();
    assert_eq!(history.stdout.trim(), format!("{} from a test", &id[7..19]));

    // An id with several repositories needs -f; a tag is untagged; the last one deletes.
    let refused = d.docker(&["rmi", &id[7..19]]);
    refused.failed_with("must be forced");
    let untag = d.docker(&["rmi", "localhost:5000/x/y:v2"]);
    untag.ok();
    assert_eq!(untag.stdout.trim(), "Untagged: localhost:5000/x/y:v2");
    d.docker(&["rmi", "bb:latest"]).ok();
    let last = d.docker(&["rmi", "bb:1"]);
    last.ok();
    assert_eq!(last.stdout.trim(), format!("Untagged: bb:1\nDeleted: {id}"));
    let gone = d.docker(&["image", "inspect", "bb:1"]);
    gone.failed_with("No such image");

    // By digest (the full image id) and by a `sha256:` prefix, as Docker accepts them.
    d.docker(&["import", tar, "digest/img:1"]).ok();
    let digest_id = d
        .docker(&["images", "-q", "--no-trunc", "digest/img:1"])
        .stdout
        .trim()
        .to_string();
    let by_prefix = d.docker(&["image", "inspect", "--format", "{{.Id}}", &digest_id[..20]]);
    assert_eq!(by_prefix.stdout.trim(), digest_id);
    let removed = d.docker(&["rmi", &digest_id]);
    removed.ok();
    assert!(
        removed.stdout.contains(&format!("Deleted: {digest_id}")),
        "{}",
        removed.stdout
    );

    // Forced removal by id prefix, then nothing is left on disk.
    let other = d
        .docker(&["images", "-q", "other/img"])
        .stdout
        .trim()
        .to_string();
    d.docker(&["tag", "other/img:2", "second/name:1"]).ok();
    d.docker(&["rmi", "-f", &other]).ok();
    assert_eq!(d.docker(&["images", "-q"]).stdout.trim(), "");
    assert!(d.stored_blobs().is_empty(), "{:?}", d.stored_blobs());
    assert!(
        d.stored_snapshots().is_empty(),
        "{:?}",
        d.stored_snapshots()
    );
}

#[test]
fn dangling_images_prune_and_system_df() {
    let d = Daemon::start();
    let tar = busybox_rootfs_tar(d.dir.path());
    let tar = tar.to_str().expect("utf8");
    d.docker(&["import", tar, "keep:1"]).ok();
    // A second import under the same tag leaves the first image dangling.
    d.docker(&["import", "--change", "CMD [\"true\"]", tar, "keep:1"])
        .ok();
    let dangling = d.docker(&[
        "images",
        "--filter",
        "dangling=true",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(dangling.stdout.trim(), "<none>:<none>");
    let df = d.docker(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    df.ok();
    assert!(df.stdout.contains("Images 2"), "{}", df.stdout);
    let pruned = d.docker(&["image", "prune", "-f"]);
    pruned.ok();
    assert!(
        pruned.stdout.contains("deleted: sha256:"),
        "{}",
        pruned.stdout
    );
    assert_eq!(d.docker(&["images", "-q"]).stdout.lines().count(), 1);
    // label!=: unused images without the label go, the labelled one stays.
    d.docker(&["import", "--change", "LABEL keep=1", tar, "labelled:1"])
        .ok();
    d.docker(&["image", "prune", "-a", "-f", "--filter", "label!=keep"])
        .ok();
    let left = d.docker(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(left.ok().stdout.trim(), "labelled");
    d.docker(&["image", "prune", "-a", "-f"]).ok();
    assert_eq!(d.docker(&["images", "-q"]).stdout.trim(), "");
    assert!(d.stored_snapshots().is_empty());
}

/// API 1.48's `--platform` of history, save and load, as dockerd's graphdriver store (one
/// platform per image) answers them.
#[test]
fn history_save_and_load_for_a_platform() {
    let d = Daemon::start();
    busybox_image(&d);
    let host = host_platform();
    d.docker(&["history", "-q", "--platform", &host, "bb:1"])
        .ok();
    d.docker(&["history", "--platform", "linux/s390x", "bb:1"])
        .failed_with(&format!(
            "image with reference bb:1 was found but its platform ({host}) does not match the specified platform (linux/s390x)"
        ));
    let archive = d.dir.path().join("bb.tar");
    let archive = archive.to_str().expect("utf8");
    d.docker(&["save", "--platform", "linux/s390x", "-o", archive, "bb:1"])
        .failed_with("no suitable export target found for platform linux/s390x");
    d.docker(&["save", "--platform", &host, "-o", archive, "bb:1"])
        .ok();
    let (status, body) = d.http(
        "GET",
        "/v1.48/images/get?names=bb:1&platform=%7B%22os%22%3A%22linux%22%2C%22architecture%22%3A%22amd64%22%7D&platform=%7B%22os%22%3A%22linux%22%2C%22architecture%22%3A%22arm64%22%7D",
        b"",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("multiple platforms not supported"), "{body}");
    // A load for another platform skips the image; for its own, loads it.
    d.docker(&["rmi", "bb:1"]).ok();
    let skipped = d.docker(&["load", "--platform", "linux/s390x", "-i", archive]);
    assert_eq!(skipped.ok().stdout, "");
    assert_eq!(d.docker(&["images", "-q"]).ok().stdout, "");
    let loaded = d.docker(&["load", "--platform", &host, "-i", archive]);
    assert_eq!(loaded.ok().stdout, "Loaded image: bb:1\n");
}

/// What API 1.48 adds and berth does not do is refused by name: an image mounted into a
/// container, a network without IPv4 (which an older client's body does not ask for).
#[test]
fn image_mounts_and_networks_without_ipv4_are_refused_by_name() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "create",
        "--mount",
        "type=image,source=bb:1,target=/img",
        "bb:1",
    ])
    .failed_with("mount type \"image\" is not supported by berth yet");
    // The daemon (not the CLI, from 1.48 on) warns that VolumeDriver misses --mount volumes.
    let body = br#"{"Image": "bb:1", "HostConfig": {"VolumeDriver": "local",
        "Mounts": [{"Type": "volume", "Target": "/data"}]}}"#;
    let (status, created) = d.http("POST", "/v1.48/containers/create", body);
    assert_eq!(status, 201, "{created}");
    assert!(
        created.contains("the container-wide volume-driver configuration is ignored"),
        "{created}"
    );
    let (status, created) = d.http("POST", "/v1.47/containers/create", body);
    assert_eq!(status, 201, "{created}");
    assert!(created.contains(r#""Warnings":[]"#), "{created}");
    let body = br#"{"Name": "v6only", "EnableIPv4": false}"#;
    let (status, refused) = d.http("POST", "/v1.48/networks/create", body);
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused.contains("EnableIPv4=false is not supported by berth yet"),
        "{refused}"
    );
    let (status, created) = d.http("POST", "/v1.47/networks/create", body);
    assert_eq!(status, 201, "{created}");
    let inspect = d.docker(&["network", "inspect", "-f", "{{.EnableIPv4}}", "v6only"]);
    assert_eq!(inspect.ok().stdout.trim(), "true");
    d.docker(&["network", "rm", "v6only"]).ok();
    // BridgeNf*: always false from 1.48, gone from 1.50; FirewallBackend from 1.49.
    let info = |version: &str| {
        let (status, body) = d.http("GET", &format!("/{version}/info"), b"");
        assert_eq!(status, 200, "{body}");
        body
    };
    let v148 = info("v1.48");
    assert!(v148.contains(r#""BridgeNfIptables":false"#), "{v148}");
    assert!(!v148.contains("FirewallBackend"), "{v148}");
    let v149 = info("v1.49");
    assert!(
        v149.contains(r#""FirewallBackend":{"Driver":"nftables"}"#),
        "{v149}"
    );
    assert!(!info("v1.50").contains("BridgeNfIptables"));
}

/// API 1.49's image inspect `--platform` and 1.50's `rmi --platform` (checked against the
/// image, as dockerd's graphdriver store), and the image Config members each version has.
#[test]
fn inspect_and_rmi_for_a_platform_and_the_config_members() {
    let d = Daemon::start();
    busybox_image(&d);
    let host = host_platform();
    let id = d.docker(&[
        "image",
        "inspect",
        "--platform",
        &host,
        "-f",
        "{{.Id}}",
        "bb:1",
    ]);
    let id = id.ok().stdout.trim().to_string();
    d.docker(&["image", "inspect", "--platform", "linux/s390x", "bb:1"])
        .failed_with("does not match the specified platform (linux/s390x)");
    let config = |version: &str| {
        let (status, body) = d.http("GET", &format!("/{version}/images/bb:1/json"), b"");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        v["Config"].clone()
    };
    let (old, new) = (config("v1.49"), config("v1.50"));
    assert_eq!(
        (&old["Hostname"], &old["AttachStdin"]),
        (&serde_json::json!(""), &serde_json::json!(false))
    );
    assert!(
        new.get("Hostname").is_none() && new.get("AttachStdin").is_none(),
        "{new}"
    );
    assert_eq!(
        (&new["Entrypoint"], &new["WorkingDir"]),
        (&serde_json::Value::Null, &serde_json::json!(""))
    );
    d.docker(&["rmi", "--platform", "linux/s390x", "bb:1"])
        .failed_with("does not match the specified platform (linux/s390x)");
    let removed = d.docker(&["rmi", "--platform", &host, "bb:1"]);
    assert!(
        removed.ok().stdout.contains(&format!("Deleted: {id}")),
        "{}",
        removed.stdout
    );
}

//! Image configs as berthd reads and writes them since they are typed (Docker's superset of
//! the OCI config): Docker's own members and members berth does not know survive a build and
//! a commit on top of a loaded image, and a saved image's config keeps its bytes (its id).

mod common;

use std::io::Read;
use std::path::Path;

use common::sha2_lite::sha256_hex;
use common::*;
use serde_json::{json, Value};

/// A config as dockerd's classic builder writes it, with Docker's members (Healthcheck,
/// Shell, ArgsEscaped, the legacy container.Config ones) and members no spec has.
fn docker_config(diff_id: &str) -> Value {
    json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "docker_version": "26.1.3",
        "container": "8e8b1c7d6b2f",
        "container_config": {"Hostname": "8e8b1c7d6b2f", "Cmd": ["/bin/sh", "-c", "#(nop) CMD"]},
        "x-vendor": {"kept": true},
        "config": {
            "Hostname": "", "Domainname": "", "User": "",
            "AttachStdin": false, "Tty": false,
            "Env": ["PATH=/bin"],
            "Cmd": ["sleep", "300"],
            "Healthcheck": {"Test": ["NONE"]},
            "ArgsEscaped": true,
            "Image": "",
            "Volumes": null,
            "WorkingDir": "",
            "Entrypoint": null,
            "OnBuild": null,
            "Labels": {"base": "1"},
            "Shell": ["/bin/sh", "-e", "-c"],
            "X-Custom": {"n": 1}
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "busybox"}],
    })
}

/// A docker-archive of busybox with `config`, loaded as `tag`; returns the config's id.
fn load_with_config(d: &Daemon, tag: &str) -> String {
    let layer = std::fs::read(busybox_rootfs_tar(d.dir.path())).expect("rootfs tar");
    let diff_id = format!("sha256:{}", sha256_hex(&layer));
    let config_bytes = serde_json::to_vec(&docker_config(&diff_id)).expect("config");
    let config_name = format!("{}.json", sha256_hex(&config_bytes));
    let layer_path = format!("{}/layer.tar", sha256_hex(&layer));
    let manifest = json!([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_path]}]);
    let manifest = serde_json::to_vec(&manifest).expect("manifest");
    let archive = d.dir.path().join("docker-config.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&archive).expect("archive"));
    for (name, data) in [
        (layer_path.as_str(), &layer[..]),
        (config_name.as_str(), &config_bytes[..]),
        ("manifest.json", &manifest[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).expect("path");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    b.finish().expect("finish");
    d.docker(&["load", "-i", archive.to_str().expect("utf8")])
        .ok();
    format!("sha256:{}", sha256_hex(&config_bytes))
}

/// The config blob of `image` as `docker save` writes it, and its file name's digest.
fn saved_config(d: &Daemon, image: &str) -> (Vec<u8>, String) {
    let out = d
        .dir
        .path()
        .join(format!("saved-{}.tar", sha256_hex(image.as_bytes())));
    let out_s = out.to_str().expect("utf8");
    d.docker(&["save", "-o", out_s, image]).ok();
    let files = entries(&out);
    let manifest: Value =
        serde_json::from_slice(&files_get(&files, "manifest.json")).expect("manifest.json");
    let path = manifest[0]["Config"].as_str().expect("Config").to_string();
    let hex = path.rsplit('/').next().expect("name").to_string();
    (files_get(&files, &path), format!("sha256:{hex}"))
}

fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(std::fs::File::open(archive).expect("open"));
    let mut out = Vec::new();
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        out.push((name, data));
    }
    out
}

fn files_get(files: &[(String, Vec<u8>)], name: &str) -> Vec<u8> {
    files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d.clone())
        .unwrap_or_else(|| panic!("no {name} in the archive"))
}

fn image_id(d: &Daemon, image: &str) -> String {
    d.docker(&["image", "inspect", "-f", "{{.Id}}", image])
        .ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn a_loaded_config_keeps_its_bytes_and_its_members_through_build_and_commit() {
    let d = Daemon::start_for_containers();
    let id = load_with_config(&d, "cfg/base:1");
    assert_eq!(image_id(&d, "cfg/base:1"), id);

    // Saved again, the config is the same blob (never re-serialized): its digest is the id.
    let (bytes, digest) = saved_config(&d, "cfg/base:1");
    assert_eq!(
        (sha256_hex(&bytes), digest.clone()),
        (id[7..].to_string(), id.clone())
    );

    // Inspect shows Docker's members of the config.
    let out = d.docker(&["image", "inspect", "cfg/base:1"]);
    let inspect: Value = serde_json::from_str(&out.ok().stdout).expect("inspect");
    let c = &inspect[0]["Config"];
    assert_eq!(c["Shell"], json!(["/bin/sh", "-e", "-c"]));
    assert_eq!(c["Healthcheck"], json!({"Test": ["NONE"]}));
    assert_eq!(c["ArgsEscaped"], json!(true));
    assert_eq!(c["X-Custom"], json!({"n": 1}));
    assert_eq!(inspect[0]["DockerVersion"], "26.1.3");
    // A member dockerd wrote null (Go's nil) is null, not left out.
    let members = c.as_object().expect("Config");
    assert_eq!(members.get("Entrypoint"), Some(&Value::Null), "{c}");
    assert_eq!(members.get("OnBuild"), Some(&Value::Null), "{c}");

    // A build on top: the step's change, and every other member as the base had it.
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(ctx.join("Dockerfile"), "FROM cfg/base:1\nLABEL added=2\n").expect("write");
    d.docker(&[
        "build",
        "-q",
        "-t",
        "cfg/built:1",
        ctx.to_str().expect("utf8"),
    ])
    .ok();
    let (bytes, digest) = saved_config(&d, "cfg/built:1");
    assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), digest);
    let built: Value = serde_json::from_slice(&bytes).expect("built config");
    let c = &built["config"];
    assert_eq!(c["Labels"], json!({"base": "1", "added": "2"}));
    for (k, v) in [
        ("Shell", json!(["/bin/sh", "-e", "-c"])),
        ("Healthcheck", json!({"Test": ["NONE"]})),
        ("ArgsEscaped", json!(true)),
        ("X-Custom", json!({"n": 1})),
        ("Hostname", json!("")),
        ("AttachStdin", json!(false)),
        ("Cmd", json!(["sleep", "300"])),
    ] {
        assert_eq!(c[k], v, "{k} of the built image's config");
    }
    let members = c.as_object().expect("config");
    assert_eq!(members.get("Volumes"), Some(&Value::Null), "{c}");
    assert_eq!(built["x-vendor"], json!({"kept": true}));
    assert_eq!(built["docker_version"], "26.1.3");
    assert_eq!(built["history"].as_array().map(Vec::len), Some(2));

    // A commit on top: the container's config over the image's, unknown members kept.
    d.docker(&["create", "--name", "cfg-c", "cfg/base:1"]).ok();
    d.docker(&["commit", "-m", "note", "cfg-c", "cfg/committed:1"])
        .ok();
    let (bytes, _) = saved_config(&d, "cfg/committed:1");
    let committed: Value = serde_json::from_slice(&bytes).expect("committed config");
    let c = &committed["config"];
    assert_eq!(c["X-Custom"], json!({"n": 1}));
    assert_eq!(c["Labels"]["base"], "1");
    assert_eq!(c["Cmd"], json!(["sleep", "300"]));
    assert_eq!(committed["comment"], "note");
    assert!(committed["container_config"].is_object(), "{committed}");
    d.docker(&["rm", "cfg-c"]).ok();
}

//! The berth CLI's commands whose answers it reads into the typed API models (version,
//! info, images, history, diff, commit, rmi, image prune), against a private berthd: what
//! they print agrees with what the docker CLI reads from the same daemon.

mod common;

use common::*;

fn berth_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.berth(args);
    out.ok();
    out.stdout
}

fn docker_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.docker(args);
    out.ok();
    out.stdout.trim().to_string()
}

#[test]
fn version_info_and_images_as_the_docker_cli_reads_them() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);

    let version = berth_ok(&d, &["version"]);
    let api = docker_ok(&d, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(version.contains("\nServer: berth\n"), "{version}");
    assert!(
        version.contains(&format!(" API version:  {api} (minimum version ")),
        "{version}"
    );

    let info = berth_ok(&d, &["info"]);
    let server = docker_ok(&d, &["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        info.contains(&format!("Server Version: {server}\n")),
        "{info}"
    );
    assert!(info.contains("Images: 1\n"), "{info}");

    let id = docker_ok(&d, &["images", "-q", "bb:1"]);
    assert_eq!(id.len(), 12, "{id}");
    assert_eq!(
        berth_ok(
            &d,
            &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]
        ),
        format!("bb:1 {id}\n")
    );
    let history = berth_ok(&d, &["history", "-q", "bb:1"]);
    assert_eq!(history.lines().next(), Some(id.as_str()), "{history}");
}

#[test]
fn diff_commit_rmi_and_prune_print_the_typed_answers() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);

    berth_ok(
        &d,
        &[
            "run",
            "--network",
            "none",
            "--name",
            "changed",
            "bb:1",
            "sh",
            "-c",
            "echo x > /new",
        ],
    );
    let diff = berth_ok(&d, &["diff", "changed"]);
    assert!(diff.lines().any(|l| l == "A /new"), "{diff}");

    let committed = berth_ok(&d, &["commit", "changed", "committed:1"]);
    let full = docker_ok(&d, &["image", "inspect", "-f", "{{.Id}}", "committed:1"]);
    assert_eq!(committed.trim(), full);

    berth_ok(&d, &["rm", "changed"]);
    let removed = berth_ok(&d, &["rmi", "committed:1"]);
    assert!(removed.contains("Untagged: committed:1\n"), "{removed}");
    assert!(removed.contains(&format!("Deleted: {full}\n")), "{removed}");

    let pruned = berth_ok(&d, &["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("untagged: bb:1\n"), "{pruned}");
    assert!(pruned.contains("Total reclaimed space: "), "{pruned}");
    assert_eq!(docker_ok(&d, &["images", "-q"]), "");
}

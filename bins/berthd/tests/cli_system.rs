//! The berth CLI's `system df`, `system prune`, `builder prune` and `events`, judged against
//! the docker CLI on the same daemon.

mod common;

use common::{busybox_image, Daemon};

/// Each line's words (the two CLIs' tables may pad their columns differently).
fn words(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn system_df_prune_and_events_as_the_docker_cli() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.berth(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "up",
        "bb:1",
        "sleep",
        "300",
    ])
    .ok();
    d.berth(&[
        "run",
        "--network",
        "none",
        "--name",
        "done",
        "bb:1",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /junk",
    ])
    .ok();
    d.berth(&["volume", "create", "spare"]).ok();

    // df: the same figures as the docker CLI computes from the same answer.
    let ours = d.berth(&["system", "df"]);
    let theirs = d.docker(&["system", "df"]);
    assert_eq!(
        words(&ours.ok().stdout),
        words(&theirs.ok().stdout),
        "{}",
        ours.stdout
    );
    let containers = words(&ours.stdout)
        .into_iter()
        .find(|w| w.first().map(String::as_str) == Some("Containers"))
        .expect("a Containers row");
    assert_eq!(containers[1..3], ["2", "1"], "{containers:?}");
    assert!(containers[3].ends_with("kB"), "{containers:?}");

    // GET /images/json?shared-size=1: the bytes an image shares with another (-1 unasked).
    d.docker(&["commit", "up", "child:1"]).ok();
    let shared = |query: &str| -> Vec<i64> {
        let (status, body) = d.http("GET", &format!("/images/json{query}"), b"");
        assert_eq!(status, 200, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let mut sizes: Vec<i64> = list
            .as_array()
            .expect("a list")
            .iter()
            .map(|i| i["SharedSize"].as_i64().expect("SharedSize"))
            .collect();
        sizes.sort();
        sizes
    };
    assert_eq!(shared(""), [-1, -1]);
    let sizes = shared("?shared-size=1");
    assert!(sizes[0] > 0 && sizes[0] == sizes[1], "{sizes:?}");
    d.docker(&["rmi", "child:1"]).ok();

    // --format of df, version, info and history: the same text as the docker CLI's.
    for args in [
        &[
            "system",
            "df",
            "--format",
            "{{.Type}}={{.TotalCount}}/{{.Active}} {{.Size}} {{.Reclaimable}}",
        ][..],
        &[
            "version",
            "--format",
            "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
        ][..],
        &[
            "info",
            "--format",
            "{{.ServerVersion}} {{.Driver}} {{.Containers}} {{json .Images}}",
        ][..],
        &[
            "history",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
            "bb:1",
        ][..],
        &[
            "history",
            "--human=false",
            "--format",
            "{{.Size}} {{.CreatedAt}}",
            "bb:1",
        ][..],
        &["history", "-H=false", "--format", "{{.Size}}", "bb:1"][..],
        &["history", "-q", "--no-trunc", "bb:1"][..],
    ] {
        let ours = d.berth(args);
        let theirs = d.docker(args);
        assert_eq!(ours.ok().stdout, theirs.ok().stdout, "{args:?}");
    }
    // exec --env-file, then -e.
    let env = d.data_root().join("../exec.env");
    std::fs::write(&env, "# a comment\nA=from-file\nB=file\n").expect("env file");
    let out = d.berth(&[
        "exec",
        "--env-file",
        &env.to_string_lossy(),
        "-e",
        "B=flag",
        "up",
        "sh",
        "-c",
        "echo $A $B",
    ]);
    assert_eq!(out.ok().stdout, "from-file flag\n");

    // events: the container's lifecycle, in order, through filters and a template.
    let actions = d.berth(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "container=done",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let lines: Vec<&str> = actions.ok().stdout.lines().collect();
    for want in [
        "container create done",
        "container start done",
        "container die done",
    ] {
        assert!(lines.contains(&want), "{want}: {lines:?}");
    }
    let plain = d.berth(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "event=create",
        "--filter",
        "container=done",
    ]);
    let line = plain.ok().stdout.trim().to_string();
    assert!(
        line.contains(" container create ") && line.contains("name=done"),
        "{line}"
    );
    d.berth(&["events", "--format", "{{range .X}}"])
        .failed_with("unexpected EOF");

    // system prune: the stopped container goes, the running one and the volume stay.
    let done_id = d
        .berth(&["inspect", "-f", "{{.Id}}", "done"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let pruned = d.berth(&["system", "prune", "-f"]);
    let text = pruned.ok().stdout.clone();
    assert!(
        text.starts_with(&format!("Deleted Containers:\n{done_id}\n")),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with(" reclaimed space: ") || text.contains("Total reclaimed space: "),
        "{text}"
    );
    assert_eq!(d.berth(&["ps", "-aq"]).ok().stdout.lines().count(), 1);
    d.berth(&["volume", "inspect", "spare"]).ok();
    // A filter key given twice: either value (moby's filters).
    d.berth(&["volume", "create", "other"]).ok();
    let both = d.berth(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        "name=spare",
        "--filter",
        "name=other",
    ]);
    assert_eq!(both.ok().stdout, "other\nspare\n");
    d.berth(&["system", "prune"]).failed_with("--force");
    let builder = d.berth(&["builder", "prune", "-f"]);
    assert!(
        builder.ok().stdout.contains("Total reclaimed space: "),
        "{}",
        builder.stdout
    );
    d.berth(&["rm", "-f", "up"]).ok();
}

//! The container responses' JSON as dockerd 26 (API 1.45) writes it, where berthd's used
//! to differ: wait's Error, an endpoint on the host or none network, empty lists that are
//! Go nil slices, and the inspect members' order.

mod common;

use common::*;
use serde_json::{json, Value};

/// The top-level keys of a JSON object, in the order the text has them.
fn top_level_keys(text: &str) -> Vec<String> {
    let (mut depth, mut in_string, mut escaped) = (0, false, false);
    let (mut keys, mut current) = (Vec::new(), String::new());
    let mut last_string = String::new();
    for c in text.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    in_string = false;
                    last_string = std::mem::take(&mut current);
                    continue;
                }
                _ => {}
            }
            current.push(c);
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ':' if depth == 1 => keys.push(std::mem::take(&mut last_string)),
            _ => {}
        }
    }
    keys
}

/// The JSON message in a (chunked) streamed body.
fn message(body: &str) -> Value {
    let start = body.find('{').expect("a JSON object");
    let end = body.rfind('}').expect("a JSON object");
    serde_json::from_str(&body[start..=end]).expect("json")
}

/// moby's WaitResponse.Error is omitempty: a wait that did not fail has none (it was null).
#[test]
fn a_wait_that_did_not_fail_has_no_error() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "--name",
        "three",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "exit 3",
    ]);
    let (status, body) = d.http("POST", "/v1.45/containers/three/wait", b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(message(&body), json!({"StatusCode": 3}), "{body}");
}

/// A container on the none network shows its endpoint with every member, nil slices and
/// maps null, as dockerd does (berthd showed six of them), in inspect and in the list.
#[test]
fn an_endpoint_on_the_none_network_has_every_member() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&["create", "--name", "off", "--network", "none", "bb:1"])
        .ok();
    let want = json!({
        "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DriverOpts": null, "DNSNames": null, "GwPriority": 0
    });
    let (status, body) = d.http("GET", "/v1.45/containers/off/json", b"");
    assert_eq!(status, 200, "{body}");
    let inspect: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(inspect["NetworkSettings"]["Networks"]["none"], want);
    let (status, body) = d.http("GET", "/v1.45/containers/json?all=1", b"");
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        list[0]["NetworkSettings"]["Networks"]["none"], want,
        "{body}"
    );
}

/// dockerd's nil slices: a container that changed nothing has `null` changes, and a prune
/// that removed nothing `"ContainersDeleted": null` (berthd sent []).
#[test]
fn no_changes_and_nothing_pruned_are_null() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&["create", "--name", "fresh", "--network", "none", "bb:1"])
        .ok();
    let (status, body) = d.http("GET", "/v1.45/containers/fresh/changes", b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.trim(), "null");
    d.docker(&["rm", "fresh"]).ok();
    let (status, body) = d.http("POST", "/v1.45/containers/prune", b"");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        report,
        json!({"ContainersDeleted": null, "SpaceReclaimed": 0})
    );
}

/// Inspect's members come in moby's order (ContainerJSONBase's, then Mounts, Config,
/// NetworkSettings), as dockerd's encoder writes them; they came sorted.
#[test]
fn inspect_members_come_in_moby_s_order() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&["create", "--name", "ordered", "--network", "none", "bb:1"])
        .ok();
    let (status, body) = d.http("GET", "/v1.45/containers/ordered/json", b"");
    assert_eq!(status, 200, "{body}");
    let want = [
        "Id",
        "Created",
        "Path",
        "Args",
        "State",
        "Image",
        "ResolvConfPath",
        "HostnamePath",
        "HostsPath",
        "LogPath",
        "Name",
        "RestartCount",
        "Driver",
        "Platform",
        "MountLabel",
        "ProcessLabel",
        "AppArmorProfile",
        "ExecIDs",
        "HostConfig",
        "GraphDriver",
        "Mounts",
        "Config",
        "NetworkSettings",
    ];
    assert_eq!(top_level_keys(&body), want, "{body}");
}

/// Removes this test's containers and user-defined networks (their bridges and nftables
/// tables go with them) before the daemon stops.
struct Networks<'a>(&'a Daemon);

impl Drop for Networks<'_> {
    fn drop(&mut self) {
        for id in self.0.docker(&["ps", "-aq"]).stdout.split_whitespace() {
            let _ = self.0.docker(&["rm", "-f", id]);
        }
        let _ = self.0.docker(&["network", "prune", "-f"]);
    }
}

/// dockerd 26 adds the short id and the hostname to a user-defined network's Aliases for
/// a client older than API 1.45 only (compat.rs); the default bridge gets none.
#[test]
fn an_older_client_sees_the_short_id_and_hostname_as_aliases() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let _networks = Networks(&d);
    let pid = std::process::id() % 100_000;
    let opt = format!("com.docker.network.bridge.name=cr{pid}");
    let subnet = format!("10.247.{}.0/24", pid % 250);
    d.docker(&[
        "network", "create", "--subnet", &subnet, "-o", &opt, "crnet",
    ])
    .ok();
    d.docker(&[
        "create",
        "--name",
        "aliased",
        "--hostname",
        "box",
        "--network",
        "crnet",
        "--network-alias",
        "one",
        "bb:1",
    ])
    .ok();
    let id = d
        .docker(&["inspect", "-f", "{{.Id}}", "aliased"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let aliases = |version: &str| {
        let (status, body) = d.http("GET", &format!("/{version}/containers/aliased/json"), b"");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        v["NetworkSettings"]["Networks"]["crnet"]["Aliases"].clone()
    };
    assert_eq!(aliases("v1.45"), json!(["one"]));
    assert_eq!(aliases("v1.44"), json!(["one", &id[..12], "box"]));
}

/// `one-shot` came with API 1.41: an older client's `stream=0&one-shot=1` gets a primed
/// sample (a previous read time), as dockerd ignores the parameter before 1.41.
#[test]
fn one_shot_is_ignored_before_api_1_41() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "1000",
    ])
    .ok();
    let preread = |version: &str| {
        let path = format!("/{version}/containers/busy/stats?stream=0&one-shot=1");
        let (status, body) = d.http("GET", &path, b"");
        assert_eq!(status, 200, "{body}");
        message(&body)["preread"].clone()
    };
    assert_eq!(preread("v1.41"), "0001-01-01T00:00:00Z");
    assert_ne!(preread("v1.40"), "0001-01-01T00:00:00Z");
}

/// `GET /containers/json` lists a container's annotations from API 1.46 on.
#[test]
fn the_list_has_annotations_from_api_1_46() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    d.docker(&[
        "create",
        "--name",
        "noted",
        "--annotation",
        "team=infra",
        "bb:1",
    ])
    .ok();
    let listed = |version: &str| {
        let (status, body) = d.http("GET", &format!("/{version}/containers/json?all=1"), b"");
        assert_eq!(status, 200, "{body}");
        message(&body)["HostConfig"].clone()
    };
    assert_eq!(
        listed("v1.46"),
        json!({"NetworkMode": "bridge", "Annotations": {"team": "infra"}})
    );
    assert_eq!(listed("v1.45"), json!({"NetworkMode": "bridge"}));
}

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

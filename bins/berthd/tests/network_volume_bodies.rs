//! The `/networks` and `/volumes` request bodies as dockerd's decoder reads them (a null is
//! the zero value, a wrong JSON type is a 400 naming the member, a body that is no object
//! is refused), members berth cannot honour refused by name with nothing made, and the
//! version-dependent shapes (a network list's Containers before API 1.28, ClusterVolumeSpec
//! before 1.42). Nothing here runs a container: each request is answered before the engine
//! makes anything, or makes only a volume directory under the test's own data root.

mod common;

use common::Daemon;
use serde_json::Value;

fn post(d: &Daemon, path: &str, body: &str) -> (u16, String) {
    d.http("POST", path, body.as_bytes())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn network_names(d: &Daemon) -> Vec<String> {
    let (status, body) = d.http("GET", "/networks", b"");
    assert_eq!(status, 200, "{body}");
    json(&body)
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bodies_decode_as_dockerds_decoder_reads_them() {
    let d = Daemon::start();
    // Nulls are zero values (docker-compose sends them for what it leaves unset).
    let (status, body) = post(
        &d,
        "/volumes/create",
        r#"{"Name": "nulls", "Driver": null, "DriverOpts": null, "Labels": null}"#,
    );
    assert_eq!(status, 201, "{body}");
    let v = json(&body);
    assert_eq!(v["Name"], "nulls");
    assert!(v["Labels"].is_null() && v["Options"].is_null(), "{v}");
    // A member of the wrong type: a 400 that says which.
    let (status, body) = post(
        &d,
        "/volumes/create",
        r#"{"Name": "x", "Labels": {"a": 1}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("invalid volume create body: Labels.a: invalid type"),
        "{body}"
    );
    let (status, body) = post(
        &d,
        "/networks/create",
        r#"{"Name": "typed", "Internal": "yes"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("invalid network config: Internal: invalid type: string"),
        "{body}"
    );
    let (status, body) = post(
        &d,
        "/networks/create",
        r#"{"Name": "typed", "IPAM": {"Config": [{"Subnet": 10}]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("IPAM.Config[0].Subnet: invalid type"),
        "{body}"
    );
    let (status, body) = post(
        &d,
        "/networks/bridge/connect",
        r#"{"Container": "c", "EndpointConfig": {"Aliases": "a"}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("invalid connect request: EndpointConfig.Aliases: invalid type"),
        "{body}"
    );
    let (status, body) = post(&d, "/networks/bridge/disconnect", r#"{"Force": 1}"#);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("invalid disconnect request: Force:"),
        "{body}"
    );
    // An array is no body of moby's, even one whose items would fill the members in turn.
    let (status, body) = post(&d, "/networks/create", r#"["positional", "bridge"]"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("the body must be a JSON object"), "{body}");
    assert!(
        !network_names(&d)
            .iter()
            .any(|n| n == "positional" || n == "typed"),
        "{:?}",
        network_names(&d)
    );
}

#[test]
fn members_berth_cannot_honour_are_refused_by_name() {
    let d = Daemon::start();
    for (member, needle) in [
        (r#""Ingress": true"#, "Ingress is not supported by berth"),
        (
            r#""ConfigOnly": true"#,
            "ConfigOnly is not supported by berth",
        ),
        (
            r#""ConfigFrom": {"Network": "base"}"#,
            "ConfigFrom is not supported by berth",
        ),
        (
            r#""Scope": "swarm""#,
            r#"network scope \"swarm\" is not supported"#,
        ),
        (
            r#""IPAM": {"Driver": "dhcp"}"#,
            r#"IPAM driver \"dhcp\" is not supported"#,
        ),
        (
            r#""IPAM": {"Config": [{"Subnet": "10.213.90.0/24", "AuxiliaryAddresses": {"h": "10.213.90.9"}}]}"#,
            "AuxiliaryAddresses is not supported by berth",
        ),
    ] {
        let (status, body) = post(
            &d,
            "/networks/create",
            &format!(r#"{{"Name": "refused", {member}}}"#),
        );
        assert_eq!(status, 400, "{member}: {body}");
        assert!(body.contains(needle), "{member}: {body}");
    }
    assert!(
        !network_names(&d).iter().any(|n| n == "refused"),
        "{:?}",
        network_names(&d)
    );
    for (member, needle) in [
        (r#""Links": ["db:db"]"#, "EndpointConfig.Links"),
        // Only the interface sysctls option is a bridge's.
        (
            r#""DriverOpts": {"k": "v"}"#,
            r#"EndpointConfig.DriverOpts \"k\""#,
        ),
    ] {
        let (status, body) = post(
            &d,
            "/networks/bridge/connect",
            &format!(r#"{{"Container": "c", "EndpointConfig": {{{member}}}}}"#),
        );
        assert_eq!(status, 400, "{member}: {body}");
        assert!(
            body.contains(&format!("{needle} is not supported by berth")),
            "{member}: {body}"
        );
    }
    // A cluster volume needs a swarm; a spec that asks for nothing is no cluster volume,
    // and a client older than API 1.42 (cluster volumes) has its spec ignored, as dockerd.
    let spec = r#""ClusterVolumeSpec": {"Group": "g", "AccessMode": {"Scope": "single"}}"#;
    let (status, body) = post(
        &d,
        "/volumes/create",
        &format!(r#"{{"Name": "cluster", {spec}}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("ClusterVolumeSpec is not supported"),
        "{body}"
    );
    let (status, body) = d.http("GET", "/volumes/cluster", b"");
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(
        &d,
        "/volumes/create",
        r#"{"Name": "zero-spec", "ClusterVolumeSpec": {"Group": "", "AccessMode": null}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &d,
        "/v1.41/volumes/create",
        &format!(r#"{{"Name": "old-client", {spec}}}"#),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(json(&body)["Scope"], "local");
}

#[test]
fn a_network_list_before_api_1_28_has_each_networks_containers() {
    let d = Daemon::start();
    let (status, body) = d.http("GET", "/v1.27/networks", b"");
    assert_eq!(status, 200, "{body}");
    let old = json(&body);
    let old = old.as_array().expect("a list");
    assert!(old.iter().any(|n| n["Name"] == "host"), "{body}");
    assert!(old.iter().all(|n| n["Containers"].is_object()), "{body}");
    let (status, body) = d.http("GET", "/v1.45/networks", b"");
    assert_eq!(status, 200, "{body}");
    let new = json(&body);
    let new = new.as_array().expect("a list");
    assert_eq!(new.len(), old.len(), "{body}");
    assert!(new.iter().all(|n| n.get("Containers").is_none()), "{body}");
    // Inspect has them at every version; the host network as dockerd (20.10, checked on
    // this machine) shows it, but for its id and creation time and API 1.48's EnableIPv4.
    let (status, body) = d.http("GET", "/networks/host", b"");
    assert_eq!(status, 200, "{body}");
    let mut host = json(&body);
    for (member, berths) in [
        ("Id", None),
        ("Created", Some("0001-01-01T00:00:00Z")),
        ("EnableIPv4", None),
    ] {
        let v = host
            .as_object_mut()
            .and_then(|o| o.remove(member))
            .unwrap_or_else(|| panic!("no {member}: {body}"));
        assert!(berths.is_none_or(|b| v == b), "{member}: {v}");
    }
    let dockerd = r#"{"Name":"host","Scope":"local","Driver":"host","EnableIPv6":false,
        "IPAM":{"Driver":"default","Options":null,"Config":[]},"Internal":false,
        "Attachable":false,"Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,
        "Containers":{},"Options":{},"Labels":{}}"#;
    assert_eq!(host, json(dockerd));
}

#[test]
fn a_volume_shows_its_labels_and_options_as_they_were_sent() {
    let mut d = Daemon::start();
    // Clients that send `{}` (older docker CLIs, SDKs) get `{}` back from dockerd, and null
    // when they send nothing (the docker CLI 28 omits both when empty).
    let (status, body) = post(
        &d,
        "/volumes/create",
        r#"{"Name": "empty", "Labels": {}, "DriverOpts": {}}"#,
    );
    assert_eq!(status, 201, "{body}");
    d.docker(&["volume", "create", "cli"]).ok();
    let shown = |d: &Daemon, name: &str| {
        let out = d.docker(&[
            "volume",
            "inspect",
            "-f",
            "{{json .Labels}} {{json .Options}}",
            name,
        ]);
        out.ok();
        out.stdout.trim().to_string()
    };
    assert_eq!(shown(&d, "empty"), "{} {}");
    assert_eq!(shown(&d, "cli"), "null null");
    // The difference is part of the record: a restarted daemon shows the same.
    d.stop();
    d.spawn(&[]);
    assert_eq!(shown(&d, "empty"), "{} {}");
    assert_eq!(shown(&d, "cli"), "null null");
}

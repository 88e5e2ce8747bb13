//! Where berthd answered differently from dockerd for the same request (issue 18): each
//! case as the docker CLI sends it.

mod common;

use common::*;

/// Endpoints berth lacks name the feature (a 501), instead of a bare "page not found".
#[test]
fn missing_features_are_named() {
    let d = Daemon::start();
    d.docker(&["network", "ls"])
        .failed_with("networks (docker network) are not supported by berth yet");
    d.docker(&["volume", "ls"])
        .failed_with("volumes (docker volume) are not supported by berth yet");
    for (method, path, needle) in [
        ("POST", "/v1.45/build", "image builds"),
        ("POST", "/v1.45/commit?container=x", "commit"),
        ("GET", "/v1.45/swarm", "swarm mode"),
    ] {
        let (status, body) = d.http(method, path, b"");
        assert_eq!(status, 501, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body}");
    }
    let (status, _) = d.http("GET", "/v1.45/nonsense", b"");
    assert_eq!(status, 404);
}

/// A terminal gets TERM=xterm (run -t and exec -t), a container on the host's network the
/// host's name, inspect shows StopTimeout, and max-file alone is accepted, as in Docker.
#[test]
fn terminal_hostname_stop_timeout_and_log_options_as_docker() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let term = d.docker(&[
        "run",
        "--rm",
        "-t",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "echo $TERM",
    ]);
    assert_eq!(term.ok().stdout.trim(), "xterm");
    let own = d.docker(&[
        "run",
        "--rm",
        "-t",
        "--network",
        "none",
        "-e",
        "TERM=vt100",
        "bb:1",
        "sh",
        "-c",
        "echo $TERM",
    ]);
    assert_eq!(own.ok().stdout.trim(), "vt100");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "long",
        "--network",
        "none",
        "--stop-timeout",
        "7",
        "--log-opt",
        "max-file=3",
        "bb:1",
        "sleep",
        "60",
    ])
    .ok();
    let exec = d.docker(&["exec", "-t", "long", "sh", "-c", "echo $TERM"]);
    assert_eq!(exec.ok().stdout.trim(), "xterm");
    let plain = d.docker(&["exec", "long", "sh", "-c", "echo ${TERM:-none}"]);
    assert_eq!(plain.ok().stdout.trim(), "none");
    let inspect = d.docker(&[
        "inspect",
        "-f",
        "{{.Config.StopTimeout}} {{index .HostConfig.LogConfig.Config \"max-file\"}}",
        "long",
    ]);
    assert_eq!(inspect.ok().stdout.trim(), "7 3");
    let host = nix::unistd::gethostname().expect("hostname");
    let name = d.docker(&["run", "--rm", "--network", "host", "bb:1", "hostname"]);
    assert_eq!(name.ok().stdout.trim(), host.to_string_lossy());
    d.docker(&["rm", "-f", "long"]).ok();
}

/// SDKs send whole structs: fields dockerd ignores (an exec's `Container`, keys moby does
/// not have) and options at their defaults are accepted; an option that asks for what
/// berth lacks is refused by name, never dropped (`-v /data` used to be ignored, so the
/// data went to the container's layer instead of a volume).
#[test]
fn whole_structs_are_accepted_and_what_asks_is_refused() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    let body = br#"{"Image":"bb:1","Cmd":["sleep","60"],"Runtime":"","AttachStdin":false,"ArgsEscaped":false,
        "Healthcheck":{"Test":["NONE"]},"Volumes":{},"ExposedPorts":{},"OnBuild":null,"Shell":null,
        "HostConfig":{"NetworkMode":"none","Isolation":"default","MemorySwappiness":-1,"IpcMode":"private",
        "ShmSize":67108864,"Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"PortBindings":{},
        "Mounts":[],"ContainerIDFile":"","OomScoreAdj":0,"KernelMemory":0,"CgroupParent":""}}"#;
    let (status, answer) = d.http("POST", "/containers/create?name=whole", body);
    assert_eq!(status, 201, "{answer}");
    d.docker(&["start", "whole"]).ok();
    let id = d
        .docker(&["inspect", "-f", "{{.Id}}", "whole"])
        .stdout
        .trim()
        .to_string();
    let exec =
        format!(r#"{{"Container":"{id}","Cmd":["true"],"AttachStdout":true,"Privileged":false}}"#);
    let (status, answer) = d.http("POST", "/containers/whole/exec", exec.as_bytes());
    assert_eq!(status, 201, "{answer}");
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/data",
        "bb:1",
        "true",
    ])
    .failed_with("Config.Volumes is not supported by berth yet");
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--expose",
        "80",
        "bb:1",
        "true",
    ])
    .failed_with("Config.ExposedPorts is not supported by berth yet");
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "other",
        "bb:1",
        "true",
    ])
    .failed_with("HostConfig.VolumesFrom is not supported by berth yet");
    d.docker(&["rm", "-f", "whole"]).ok();
}

/// A kill with SIGKILL returns once the exit is recorded (an rm right after works), an
/// exec's stream is framed as its start request says, and a `run --rm` whose start fails
/// ends with the error and leaves no container (the docker CLI waited for ever).
#[test]
fn kill_exec_framing_and_failed_rm_starts_as_dockerd() {
    let d = Daemon::start_for_containers();
    busybox_image(&d);
    for round in 0..5 {
        let name = format!("k{round}");
        d.docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "bb:1",
            "sleep",
            "60",
        ])
        .ok();
        d.berth(&["kill", &name]).ok();
        d.berth(&["rm", &name]).ok();
    }
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "nosuchuser",
        "bb:1",
        "true",
    ]);
    out.failed_with("nosuchuser");
    assert_eq!(
        d.docker(&["ps", "-aq"]).stdout.trim(),
        "",
        "a failed --rm start left a container"
    );
    // An exec made with a terminal, started with {"Tty": false}: frames (stream type 1).
    d.docker(&[
        "run",
        "-d",
        "--name",
        "xe",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "60",
    ])
    .ok();
    let (_, created) = d.http(
        "POST",
        "/containers/xe/exec",
        br#"{"Cmd":["echo","framed"],"Tty":true,"AttachStdout":true}"#,
    );
    let id = serde_json::from_str::<serde_json::Value>(&created).expect("json")["Id"]
        .as_str()
        .expect("id")
        .to_string();
    let raw = hijacked_exec_output(&d, &id, br#"{"Detach":false,"Tty":false}"#);
    assert!(raw.len() > 8 && raw[0] == 1, "not framed: {raw:?}");
    assert!(String::from_utf8_lossy(&raw[8..]).contains("framed"));
    d.docker(&["rm", "-f", "xe"]).ok();
}

/// The bytes an exec start sends back on its hijacked connection, after the 101 head.
fn hijacked_exec_output(d: &Daemon, id: &str, body: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).expect("connect");
    let head = format!(
        "POST /exec/{id}/start HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("body");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let start = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    all[start..].to_vec()
}

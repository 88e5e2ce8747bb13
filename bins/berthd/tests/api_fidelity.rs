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
        "--shm-size",
        "1m",
        "bb:1",
        "true",
    ])
    .failed_with("HostConfig.ShmSize is not supported by berth yet");
    d.docker(&["rm", "-f", "whole"]).ok();
}

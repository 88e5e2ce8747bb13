//! What a start on the default bridge costs beyond one with `--network none`. The bridge's
//! network namespace is made ahead of time and joined by path; joining it must not send
//! the runtime down its two-stage path, whose init the runtime then moves into the
//! container's cgroup: a process move waits for an RCU grace period (~10 ms on the test
//! machines), which was most of the bridge's cost. Checked on the runtime's system calls
//! (a wrapper runs berth-runtime's `create` under strace), never on timings.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{busybox_image, wait_for, wrapped_runtime_flag, Daemon};

/// `--add-runtime` flag for a runtime `traced` that runs berth-runtime's create under
/// `strace -f` (system calls `calls`), its trace in `dir`. strace runs detached (`-D`): as
/// the runtime's parent it would wait for the created init, which waits for the start.
fn traced_runtime_flag(d: &Daemon, dir: &Path, calls: &str) -> String {
    wrapped_runtime_flag(
        d,
        "traced",
        &format!(
            "case \" $* \" in *\" create \"*) exec strace -D -f -s 128 -e trace={calls} -o {dir}/create.$$ {{rt}} \"$@\";; esac",
            dir = dir.display(),
        ),
    )
}

/// The one trace of a create in `dir`, once every process it followed has ended (init
/// with the container).
fn create_trace(dir: &Path) -> String {
    let traces: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("traces")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    let read = || std::fs::read_to_string(&traces[0]).unwrap_or_default();
    let finished = |t: &str| {
        let pids: HashSet<&str> = t
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let ended = t
            .lines()
            .filter(|l| l.contains("+++ exited") || l.contains("+++ killed"))
            .count();
        !pids.is_empty() && ended >= pids.len()
    };
    assert!(
        wait_for(|| finished(&read())),
        "the trace did not end:\n{}",
        read()
    );
    read()
}

/// A container on the default bridge (its namespace a spare, joined by path) is created
/// as one with a namespace of its own is: init cloned directly, entering the network
/// namespace itself; no process is moved into the cgroup (cgroup.procs is never opened
/// for writing). The container is on the bridge all the same.
#[test]
fn a_container_on_the_bridge_is_created_without_moving_a_process_between_cgroups() {
    assert!(
        std::process::Command::new("strace")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs strace"
    );
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    let traces = d.dir.path().join("traces");
    std::fs::create_dir_all(&traces).expect("mkdir");
    let flag = traced_runtime_flag(&d, &traces, "setns,clone,clone3,openat");
    d.kill();
    d.spawn(&["--add-runtime", &flag]);
    let out = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "traced",
        "bb:1",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    out.ok();
    let bridge = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "bridge",
    ]);
    let subnet = bridge.ok().stdout.trim().to_string();
    let prefix = subnet.rsplit_once('.').map_or("", |(p, _)| p).to_string();
    assert!(
        !prefix.is_empty() && out.stdout.contains(&format!("inet {prefix}.")),
        "eth0 is not on the bridge's subnet {subnet}: {}",
        out.stdout
    );
    let trace = create_trace(&traces);
    assert!(
        trace.contains("CLONE_NEWNET") && trace.contains("setns("),
        "the network namespace was not joined:\n{trace}"
    );
    let moves: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("cgroup.procs") && l.contains("O_WRONLY"))
        .collect();
    assert!(
        moves.is_empty(),
        "the runtime moved a process into the cgroup:\n{}",
        moves.join("\n")
    );
}

/// A start that nothing waits on between create and start (`docker run -d` on the bridge)
/// is one runtime call, `run --detach`: no second runtime process, no start request to the
/// shim; so is a `--network none` one when its runtime sets the loopback up itself. An
/// attached run (the docker CLI attaches before it starts) and a `none` container of a
/// runtime berthd does not know (berthd sets its loopback up between) keep create, start.
#[test]
fn a_detached_start_is_one_runtime_call() {
    let mut d = Daemon::start_for_containers();
    busybox_image(&d);
    let calls = d.dir.path().join("runtime-calls");
    let log = format!("echo \"$*\" >> {}", calls.display());
    // "opaque": a script berthd does not know; "logged": the same script named as the
    // runtime it runs, which sets a new network namespace's loopback up.
    let opaque = wrapped_runtime_flag(&d, "opaque", &log);
    let (_, script) = opaque.split_once('=').expect("flag");
    let named = d.dir.path().join("logged");
    std::fs::create_dir(&named).expect("mkdir");
    std::fs::copy(script, named.join("berth-runtime")).expect("copy");
    let logged = format!("logged={}", named.join("berth-runtime").display());
    d.kill();
    d.spawn(&["--add-runtime", &opaque, "--add-runtime", &logged]);
    let run_with = |runtime: &str, args: &[&str]| {
        let mut all = vec!["run", "--runtime", runtime];
        all.extend_from_slice(args);
        d.docker(&all).ok().stdout.trim().to_string()
    };
    let run = |args: &[&str]| run_with("logged", args);
    let loopback_up = |id: &str| {
        let flags = d.docker(&["exec", id, "cat", "/sys/class/net/lo/flags"]);
        let flags = u32::from_str_radix(flags.ok().stdout.trim().trim_start_matches("0x"), 16);
        flags.expect("flags") & 1 == 1
    };
    let calls_of = |id: &str| -> Vec<String> {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.ends_with(id) || l.contains(&format!(" {id} ")))
            .filter_map(|l| {
                ["run", "create", "start"]
                    .into_iter()
                    .find(|verb| l.contains(&format!(" {verb} ")))
                    .map(str::to_string)
            })
            .collect()
    };
    let detached = run(&["-d", "bb:1", "sleep", "30"]);
    assert_eq!(calls_of(&detached), ["run"]);
    let state = d.docker(&["inspect", "-f", "{{.State.Status}}", &detached]);
    assert_eq!(state.ok().stdout.trim(), "running");

    // A `none` container's namespace is the runtime's to make, loopback up included.
    let none = run(&["-d", "--network", "none", "bb:1", "sleep", "30"]);
    assert_eq!(calls_of(&none), ["run"]);
    assert!(loopback_up(&none));
    // Unless berthd cannot tell that the runtime does: then it does, between the calls.
    let opaque_none = run_with(
        "opaque",
        &["-d", "--network", "none", "bb:1", "sleep", "30"],
    );
    assert_eq!(calls_of(&opaque_none), ["create", "start"]);
    assert!(loopback_up(&opaque_none));

    let attached = d.docker(&[
        "run",
        "--runtime",
        "logged",
        "--name",
        "attached",
        "bb:1",
        "echo",
        "hi",
    ]);
    assert_eq!(attached.ok().stdout, "hi\n");
    let id = d.docker(&["inspect", "-f", "{{.Id}}", "attached"]);
    assert_eq!(calls_of(id.ok().stdout.trim()), ["create", "start"]);
    d.docker(&["rm", "-f", &detached, &none, &opaque_none, "attached"])
        .ok();
}

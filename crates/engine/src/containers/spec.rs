//! The OCI config of a container: the image's config, the create request on top, and
//! Docker's defaults (capabilities, mounts, masked and read-only paths, namespaces).

use serde_json::{json, Value};

use super::host::joins::{Shm, Sources};
use super::host::namespaces::{IpcMode, PidMode};
use super::ContainerRecord;
use crate::error::{Error, Result};

/// Docker's default capability set.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The host config as kept: masked and read-only paths not given are Docker's defaults
/// (none for a privileged container), as dockerd fills them at create and inspect shows
/// them. `[]` (`--security-opt systempaths=unconfined`) stays: nothing masked.
pub(super) fn with_default_paths(
    mut host: super::request::HostConfig,
) -> super::request::HostConfig {
    if !host.privileged {
        let defaults = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect();
        host.masked_paths.get_or_insert_with(|| defaults(&MASKED));
        host.readonly_paths
            .get_or_insert_with(|| defaults(&READONLY));
    }
    host
}

/// The process arguments: Entrypoint then Cmd, as Docker combines them.
pub fn args(record: &ContainerRecord) -> Result<Vec<String>> {
    let mut args: Vec<String> = record.config.entrypoint.clone().unwrap_or_default();
    args.extend(record.config.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        return Err(Error::InvalidArgument("no command specified".into()));
    }
    Ok(args)
}

/// A process with a terminal gets `TERM=xterm` unless it sets its own, as Docker does.
pub(super) fn with_term(env: &mut Vec<String>) {
    if !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
}

/// Where the init binary appears in a container started with --init (Docker's path).
pub(crate) const INIT_PATH: &str = "/sbin/docker-init";

/// --privileged: no masked or read-only paths, /sys and cgroups writable.
fn make_privileged(config: &mut Value) {
    config["linux"]["maskedPaths"] = json!([]);
    config["linux"]["readonlyPaths"] = json!([]);
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup" {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "ro");
                    opts.push(json!("rw"));
                }
            }
        }
    }
}

/// The container's cgroup, named in its config rather than left to each runtime's default:
/// the shim reads the OOM count there, whichever runtime created it. One level below its
/// parent, so that delete leaves nothing of its own behind (a parent stays, as dockerd's).
pub fn cgroups_path(record: &ContainerRecord) -> String {
    let parent = match &record.pod {
        // Under the pod's cgroup, where the kubelet accounts for the pod; a pod without one
        // goes under the daemon's, as containerd's go under its own cgroup.
        Some(pod) if !pod.cgroup_parent.is_empty() => pod.cgroup_parent.trim_end_matches('/'),
        _ => record.host.cgroup_parent.as_str(),
    };
    format!("{parent}/berth-{}", record.id)
}

/// The namespaces of the config, as dockerd's WithNamespaces sets them: each mode's own, the
/// host's (none listed) or another container's (by path, in `sources`).
fn namespaces(record: &ContainerRecord, sources: &Sources) -> Vec<Value> {
    if let Some(pod) = &record.pod {
        return pod.namespaces();
    }
    let modes = &record.host.namespaces;
    let mut out = vec![json!({"type": "mount"})];
    match (&modes.pid, &sources.pid) {
        (PidMode::Host, _) => {}
        (_, Some(path)) => out.push(json!({"type": "pid", "path": path})),
        (_, None) => out.push(json!({"type": "pid"})),
    }
    match (&modes.ipc, &sources.ipc) {
        (IpcMode::Host, _) => {}
        (_, Some(path)) => out.push(json!({"type": "ipc", "path": path})),
        (_, None) => out.push(json!({"type": "ipc"})),
    }
    if !modes.uts_host {
        out.push(json!({"type": "uts"}));
    }
    match (record.network_mode(), record.endpoint()) {
        ("none", _) => out.push(json!({"type": "network"})),
        // Made and set up by berthd before the runtime runs (net.rs): joined by path.
        (_, Some(ep)) => out.push(json!({"type": "network", "path": ep.netns})),
        _ => {
            if let Some(path) = sources.net.as_ref().and_then(|d| d.netns.as_ref()) {
                out.push(json!({"type": "network", "path": path}));
            }
        }
    }
    if modes.cgroupns_private {
        out.push(json!({"type": "cgroup"}));
    }
    out
}

/// Docker's sysctls for a container with a network of its own (unprivileged ping and low
/// ports, where the kernel has them), then the container's `--sysctl`, which win.
fn sysctls(record: &ContainerRecord) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    if record.network_mode() == "none" || record.on_network() {
        for (key, value) in [
            ("net.ipv4.ping_group_range", "0 2147483647"),
            ("net.ipv4.ip_unprivileged_port_start", "0"),
        ] {
            if std::path::Path::new("/proc/sys")
                .join(key.replace('.', "/"))
                .exists()
            {
                out.insert(key.into(), json!(value));
            }
        }
    }
    for (key, value) in &record.host.sysctls {
        out.insert(key.clone(), json!(value));
    }
    out
}

/// /dev/shm as the IPC mode has it: Docker's tmpfs of `--shm-size`, none, or a bind.
fn dev_shm(shm: &Shm) -> Option<Value> {
    match shm {
        Shm::Tmpfs(size) => Some(
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={size}")]}),
        ),
        Shm::Absent => None,
        Shm::Bind(source) => Some(
            json!({"destination": "/dev/shm", "type": "bind", "source": source, "options": ["rbind", "rprivate"]}),
        ),
    }
}

/// The root's propagation that lets a shared or slave bind propagate (moby's WithMounts): a
/// mount made under an rshared bind inside the container reaches the host only when the
/// root itself is shared.
fn rootfs_propagation(mounts: &[Value]) -> Option<&'static str> {
    let has = |wanted: &[&str]| {
        mounts.iter().any(|m| {
            m["options"].as_array().is_some_and(|o| {
                o.iter()
                    .any(|v| v.as_str().is_some_and(|v| wanted.contains(&v)))
            })
        })
    };
    if has(&["shared", "rshared"]) {
        Some("rshared")
    } else if has(&["slave", "rslave"]) {
        Some("rslave")
    } else {
        None
    }
}

/// The OCI config; `rootfs` is mounted (the user is looked up in its /etc/passwd); `init`
/// is the host's init binary, for --init; `sources` say which namespaces are joined and
/// where /dev/shm comes from.
pub fn oci_config(
    record: &ContainerRecord,
    rootfs: &std::path::Path,
    init: Option<&std::path::Path>,
    sources: &Sources,
) -> Result<Value> {
    let user = super::user::resolve_user(
        rootfs,
        record.config.user.as_deref().unwrap_or(""),
        &record.host.group_add,
    )?;
    let mut env: Vec<String> = record.config.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    env.push(format!("HOSTNAME={}", record.hostname()));
    if record.config.tty {
        with_term(&mut env);
    }
    let cwd = record
        .config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let caps = &record.host.caps;
    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": record.config.tty,
            "user": user.to_oci(),
            "args": args(record)?,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": record.no_new_privileges,
            "oomScoreAdj": record.host.oom_score_adj,
        },
        "root": {"path": rootfs, "readonly": record.host.readonly_rootfs},
        "hostname": record.hostname(),
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        ],
        "linux": {
            "cgroupsPath": cgroups_path(record),
            "namespaces": namespaces(record, sources),
            "sysctl": sysctls(record),
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    });
    if record.host.namespaces.uts_host {
        // The host's name: the runtime refuses a hostname without a UTS namespace.
        if let Some(c) = config.as_object_mut() {
            c.remove("hostname");
        }
    }
    // A pod's containers share the pod's /dev/shm (its IPC namespace is shared too).
    let shm = match record.pod.as_ref().and_then(|p| p.shm.clone()) {
        Some(dir) => Shm::Bind(dir),
        None => sources.shm.clone(),
    };
    if let (Some(mounts), Some(shm)) = (config["mounts"].as_array_mut(), dev_shm(&shm)) {
        mounts.push(shm);
    }
    if let (true, Some((height, width))) = (record.config.tty, record.console_size) {
        config["process"]["consoleSize"] = json!({"height": height, "width": width});
    }
    if let Some(filter) = &record.seccomp {
        config["linux"]["seccomp"] = filter.clone();
    }
    let devices = super::host::devices::for_container(
        record.host.privileged,
        &record.host.devices,
        &record.host.device_cgroup_rules,
    )?;
    let mut resources = record.host.resources.clone().unwrap_or_else(|| json!({}));
    resources["devices"] = Value::Array(devices.rules);
    if let Some(blkio) = record.host.blkio.for_container()? {
        resources["blockIO"] = blkio;
    }
    if let (Some(pod), Some(r)) = (&record.pod, resources.as_object_mut()) {
        r.extend(pod.resources.clone());
    }
    config["linux"]["resources"] = resources;
    config["linux"]["devices"] = Value::Array(devices.nodes);
    if !record.host.rlimits.is_empty() {
        config["process"]["rlimits"] = json!(record.host.rlimits);
    }
    let etc_dir = match (record.endpoint(), &sources.net, &record.pod) {
        (_, _, Some(pod)) => pod.etc_dir.as_ref(),
        (Some(ep), _, _) => Some(&ep.files),
        (None, Some(donor), _) => Some(&donor.files),
        (None, None, None) => sources.etc_files.as_ref(),
    };
    if let Some(pod) = &record.pod {
        if let Some(paths) = &pod.masked_paths {
            config["linux"]["maskedPaths"] = json!(paths);
        }
        if let Some(paths) = &pod.readonly_paths {
            config["linux"]["readonlyPaths"] = json!(paths);
        }
        // The pod's name; none in the node's UTS namespace (the runtime refuses one).
        match (&pod.uts, config.as_object_mut()) {
            (Some(_), _) => config["hostname"] = json!(pod.hostname),
            (None, Some(c)) => {
                c.remove("hostname");
            }
            (None, None) => {}
        }
    }
    if let (Some(mounts), Some(dir)) = (config["mounts"].as_array_mut(), etc_dir) {
        mounts.extend(super::net::etc_mounts(dir));
    }
    if let Some(donor) = &sources.net {
        // The joined container's name, as dockerd gives it.
        if config.get("hostname").is_some() {
            config["hostname"] = json!(donor.hostname);
        }
    }
    if let Some(mounts) = config["mounts"].as_array_mut() {
        mounts.extend(record.host.mounts.iter().cloned());
    }
    if let Some(propagation) = rootfs_propagation(&record.host.mounts) {
        config["linux"]["rootfsPropagation"] = json!(propagation);
    }
    // As dockerd: an init only in a pid namespace of the container's own (the host's or the
    // joined one has an init already).
    if record.host.init && record.host.namespaces.pid == PidMode::Private {
        let init = init
            .ok_or_else(|| Error::InvalidArgument("--init: berthd found no init binary".into()))?;
        if let Some(mounts) = config["mounts"].as_array_mut() {
            mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["bind", "ro"]}));
        }
        let mut args = vec![INIT_PATH.to_string(), "--".to_string()];
        args.extend(super::spec::args(record)?);
        config["process"]["args"] = json!(args);
    }
    if record.host.privileged {
        make_privileged(&mut config);
    }
    // HostConfig.Annotations, for the runtime (as dockerd's WithAnnotations sets them).
    if !record.host_config.annotations.is_empty() {
        config["annotations"] = json!(record.host_config.annotations);
    }
    // The paths the container was created with (after --privileged's clearing, as dockerd
    // applies them); a pod's come from its security context above.
    if record.pod.is_none() {
        if let Some(paths) = &record.host_config.masked_paths {
            config["linux"]["maskedPaths"] = json!(paths);
        }
        if let Some(paths) = &record.host_config.readonly_paths {
            config["linux"]["readonlyPaths"] = json!(paths);
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_or_slave_binds_set_the_roots_propagation_as_moby() {
        let bind = |opt: &str| json!({"destination": "/d", "type": "bind", "source": "/s", "options": ["rbind", opt]});
        assert_eq!(rootfs_propagation(&[bind("rprivate")]), None);
        assert_eq!(rootfs_propagation(&[bind("rslave")]), Some("rslave"));
        assert_eq!(
            rootfs_propagation(&[bind("rslave"), bind("rshared")]),
            Some("rshared")
        );
    }
}

//! The OCI config of a container: the image's config, the create request on top, and
//! Docker's defaults (capabilities, mounts, masked and read-only paths, namespaces).

use serde_json::{json, Value};

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

/// The process arguments: Entrypoint then Cmd, as Docker combines them.
pub fn args(record: &ContainerRecord) -> Result<Vec<String>> {
    let mut args: Vec<String> = record.config.entrypoint.clone().unwrap_or_default();
    args.extend(record.config.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        return Err(Error::InvalidArgument("no command specified".into()));
    }
    Ok(args)
}

/// The OCI config; `rootfs` is mounted (the user is looked up in its /etc/passwd).
pub fn oci_config(record: &ContainerRecord, rootfs: &std::path::Path) -> Result<Value> {
    let (uid, gid) = super::user::resolve(rootfs, record.config.user.as_deref().unwrap_or(""))?;
    let mut env: Vec<String> = record.config.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    env.push(format!("HOSTNAME={}", record.hostname()));
    let cwd = record
        .config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if record.network_mode() == "none" {
        namespaces.push(json!({"type": "network"}));
    }
    let caps = &record.host.caps;
    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": record.config.tty,
            "user": {"uid": uid, "gid": gid},
            "args": args(record)?,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": record.no_new_privileges,
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
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        ],
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    });
    if let (true, Some((height, width))) = (record.config.tty, record.console_size) {
        config["process"]["consoleSize"] = json!({"height": height, "width": width});
    }
    if let Some(filter) = &record.seccomp {
        config["linux"]["seccomp"] = filter.clone();
    }
    if let Some(r) = &record.host.resources {
        config["linux"]["resources"] = r.clone();
    }
    if !record.host.rlimits.is_empty() {
        config["process"]["rlimits"] = json!(record.host.rlimits);
    }
    if let Some(mounts) = config["mounts"].as_array_mut() {
        mounts.extend(record.host.mounts.iter().cloned());
    }
    Ok(config)
}

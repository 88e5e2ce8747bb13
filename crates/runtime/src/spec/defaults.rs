//! The default config.json, as `runc spec` writes it.
//!
//! One difference on purpose: no `linux.resources` (runc's deny-all device rule), because this
//! runtime refuses resources until its cgroup support lands rather than silently ignoring them.

use serde_json::{json, Value};

/// The default config uses nothing newer than runtime-spec 1.0.2; declaring that keeps the
/// bundle usable by older runtimes (crun 1.8 refuses 1.2.0).
const DEFAULT_SPEC_VERSION: &str = "1.0.2";

/// Which default to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecFlavor {
    Rootful,
    /// For a non-root caller: a user namespace mapping only the caller, no network
    /// namespace, /sys bind-mounted, devpts without gid=5.
    Rootless {
        uid: u32,
        gid: u32,
    },
}

const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The default spec as JSON, field order as runc's.
pub fn default_spec(flavor: SpecFlavor) -> Value {
    let rootless = matches!(flavor, SpecFlavor::Rootless { .. });
    let mut devpts_opts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    if !rootless {
        devpts_opts.push("gid=5");
    }
    let sys_mount = if rootless {
        json!({"destination": "/sys", "type": "none", "source": "/sys",
               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    } else {
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]})
    };
    let mut namespaces = vec![json!({"type": "pid"})];
    if !rootless {
        namespaces.push(json!({"type": "network"}));
    }
    namespaces.extend([
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ]);
    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
            "/proc/scsi"
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
        ]
    });
    if let SpecFlavor::Rootless { uid, gid } = flavor {
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        if let Some(list) = linux["namespaces"].as_array_mut() {
            list.push(json!({"type": "user"}));
        }
    }
    json!({
        "ociVersion": DEFAULT_SPEC_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": CAPS, "effective": CAPS, "permitted": CAPS, "ambient": CAPS
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": devpts_opts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            sys_mount,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": linux
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_and_validates() {
        for flavor in [
            SpecFlavor::Rootful,
            SpecFlavor::Rootless {
                uid: 1000,
                gid: 1000,
            },
        ] {
            let spec: oci_spec::runtime::Spec =
                serde_json::from_value(default_spec(flavor)).expect("default spec parses");
            crate::spec::validate(&spec).expect("default spec validates");
        }
    }

    #[test]
    fn rootless_maps_the_caller() {
        let v = default_spec(SpecFlavor::Rootless { uid: 1234, gid: 55 });
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 1234);
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 55);
        assert!(v["linux"]["namespaces"]
            .as_array()
            .is_some_and(|l| !l.iter().any(|n| n["type"] == "network")));
    }
}

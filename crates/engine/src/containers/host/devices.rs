//! Devices: the device cgroup rules every container gets (Docker's: deny all, then the
//! devices a container needs, and mknod of any device, whose opening stays denied), the
//! nodes and rules of `--device` and `--device-cgroup-rule`, and every host device for
//! `--privileged`.
//!
//! The rules are written into each container's config at its start, not stored at create,
//! so a container created by an older berthd gets them too. They are explicit rather than
//! left to the runtime: runc, crun and berth-runtime add their own defaults, but none of
//! them denies anything unless the config says so.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::invalid;
use crate::containers::request::DeviceMapping;
use crate::error::{Error, Result};

/// A `--device` as recorded at create and resolved at each start.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceSpec {
    pub path_on_host: String,
    pub path_in_container: String,
    /// Some of "rwm".
    pub permissions: String,
}

/// The character devices every container may use (moby's default spec and runc's list):
/// null, zero, full, random, urandom, tty, console, ptmx, the pty slaves, net/tun.
const STANDARD: [(u32, Option<u32>); 10] = [
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(0)),
    (5, Some(1)),
    (5, Some(2)),
    (136, None),
    (10, Some(200)),
];

/// One OCI device cgroup rule; None for a wildcard number.
fn rule(allow: bool, kind: &str, major: Option<i64>, minor: Option<i64>, access: &str) -> Value {
    let mut r = json!({"allow": allow, "type": kind, "access": access});
    if let Some(major) = major {
        r["major"] = json!(major);
    }
    if let Some(minor) = minor {
        r["minor"] = json!(minor);
    }
    r
}

/// Docker's rules for an unprivileged container.
fn default_rules() -> Vec<Value> {
    let mut rules = vec![
        json!({"allow": false, "access": "rwm"}),
        rule(true, "c", None, None, "m"),
        rule(true, "b", None, None, "m"),
    ];
    rules.extend(STANDARD.iter().map(|(major, minor)| {
        rule(
            true,
            "c",
            Some(i64::from(*major)),
            minor.map(i64::from),
            "rwm",
        )
    }));
    rules
}

/// Permissions of a device: a non-empty subset of "rwm" ("" is the CLI's default, rwm).
fn permissions(p: &str, device: &str) -> Result<String> {
    if p.is_empty() {
        return Ok("rwm".into());
    }
    let valid = p.len() <= 3
        && p.chars().all(|c| "rwm".contains(c))
        && p.chars().enumerate().all(|(i, c)| !p[..i].contains(c));
    if !valid {
        return Err(invalid(format!(
            "invalid device cgroup permissions {p:?} for {device}: some of r, w and m"
        )));
    }
    Ok(p.to_string())
}

/// `--device` mappings, checked: absolute paths and valid permissions; the host's device
/// must exist now (it is read again at each start).
pub fn device_specs(mappings: &[DeviceMapping]) -> Result<Vec<DeviceSpec>> {
    mappings
        .iter()
        .map(|m| {
            let host = &m.path_on_host;
            let container = if m.path_in_container.is_empty() {
                host.clone()
            } else {
                m.path_in_container.clone()
            };
            if !host.starts_with('/') || !container.starts_with('/') {
                return Err(invalid(format!(
                    "invalid device mapping {host}:{container}: the paths must be absolute"
                )));
            }
            let spec = DeviceSpec {
                permissions: permissions(&m.cgroup_permissions, host)?,
                path_on_host: host.clone(),
                path_in_container: container,
            };
            resolve(&spec)?;
            Ok(spec)
        })
        .collect()
}

/// `--device-cgroup-rule "c 1:3 mr"`, as moby's AppendDevicePermissionsFromCgroupRules reads
/// it (type a, b or c; numbers or *; some of rwm).
pub fn cgroup_rules(rules: &[String]) -> Result<Vec<Value>> {
    rules.iter().map(|r| cgroup_rule(r)).collect()
}

fn cgroup_rule(text: &str) -> Result<Value> {
    let bad = || invalid(format!("invalid device cgroup rule format: '{text}'"));
    let fields: Vec<&str> = text.split(' ').collect();
    let [kind, numbers, access] = fields.as_slice() else {
        return Err(bad());
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| -> Result<Option<i64>> {
        if n == "*" {
            return Ok(None);
        }
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        n.parse().map(Some).map_err(|_| bad())
    };
    let access_ok = (1..=3).contains(&access.len()) && access.chars().all(|c| "rwm".contains(c));
    if !["a", "b", "c"].contains(kind) || !access_ok {
        return Err(bad());
    }
    Ok(rule(true, kind, number(major)?, number(minor)?, access))
}

/// The OCI device of one node (its mode, owner and numbers), or None if it is no device.
fn device_node(host: &Path, container: &str) -> Option<Value> {
    let meta = std::fs::metadata(host).ok()?;
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(json!({
        "path": container, "type": kind,
        "major": libc::major(rdev), "minor": libc::minor(rdev),
        "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid(),
    }))
}

/// The device nodes of a `--device`: the node itself, or every node under a directory.
fn resolve(spec: &DeviceSpec) -> Result<Vec<Value>> {
    let host = Path::new(&spec.path_on_host);
    if let Some(node) = device_node(host, &spec.path_in_container) {
        return Ok(vec![node]);
    }
    let mut nodes = Vec::new();
    if host.is_dir() {
        nodes_under(host, &spec.path_in_container, &[], &mut nodes);
    }
    if nodes.is_empty() {
        let why = match std::fs::metadata(host) {
            Err(e) => e.to_string(),
            Ok(_) => "not a device node".into(),
        };
        return Err(Error::InvalidArgument(format!(
            "error gathering device information while adding custom device {:?}: {why}",
            spec.path_on_host
        )));
    }
    Ok(nodes)
}

/// Device nodes under host directory `dir`, named under `container` (`skip`: names of
/// subdirectories to leave out).
fn nodes_under(dir: &Path, container: &str, skip: &[&str], out: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let inside = format!("{container}/{}", name.to_string_lossy());
        let Ok(ft) = e.file_type() else {
            continue;
        };
        if ft.is_dir() {
            if !skip.iter().any(|s| name == *s) {
                nodes_under(&e.path(), &inside, skip, out);
            }
        } else if !ft.is_symlink() {
            out.extend(device_node(&e.path(), &inside));
        }
    }
}

/// The host's devices for a privileged container, as containerd lists them: every device
/// node under /dev, except the terminals and per-container directories.
fn host_devices() -> Vec<Value> {
    const SKIP: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    let mut out = Vec::new();
    nodes_under(Path::new("/dev"), "/dev", &SKIP, &mut out);
    out.retain(|d| d["path"] != "/dev/console");
    out
}

/// What a container's config gets at start: its device nodes (OCI linux.devices) and its
/// device cgroup rules (linux.resources.devices).
pub struct Devices {
    pub nodes: Vec<Value>,
    pub rules: Vec<Value>,
}

/// The devices of a container: every host device and no restriction when privileged;
/// else Docker's rules, then `--device` and `--device-cgroup-rule` on top.
pub fn for_container(privileged: bool, specs: &[DeviceSpec], extra: &[Value]) -> Result<Devices> {
    let mut nodes = if privileged {
        host_devices()
    } else {
        Vec::new()
    };
    let mut rules = if privileged {
        vec![json!({"allow": true, "access": "rwm"})]
    } else {
        default_rules()
    };
    for spec in specs {
        // A privileged container already has the host's node at the same path.
        if privileged && spec.path_on_host == spec.path_in_container {
            continue;
        }
        for node in resolve(spec)? {
            if !privileged {
                rules.push(rule(
                    true,
                    node["type"].as_str().unwrap_or("c"),
                    node["major"].as_i64(),
                    node["minor"].as_i64(),
                    &spec.permissions,
                ));
            }
            nodes.push(node);
        }
    }
    if !privileged {
        rules.extend(extra.iter().cloned());
    }
    Ok(Devices { nodes, rules })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprivileged_containers_deny_all_but_the_standard_devices() {
        let d = for_container(false, &[], &[]).expect("devices");
        assert_eq!(d.rules[0], json!({"allow": false, "access": "rwm"}));
        assert!(d
            .rules
            .contains(&json!({"allow": true, "type": "b", "access": "m"})));
        assert!(d.rules.contains(
            &json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
        ));
        assert!(d
            .rules
            .contains(&json!({"allow": true, "type": "c", "major": 136, "access": "rwm"})));
        assert!(
            !d.rules
                .iter()
                .any(|r| r["type"] == "b" && r["access"] != "m"),
            "no block device may be read or written"
        );
        assert!(d.nodes.is_empty());
    }

    #[test]
    fn devices_and_rules_on_top() {
        let specs = device_specs(&[DeviceMapping {
            path_on_host: "/dev/null".into(),
            path_in_container: "/dev/mynull".into(),
            cgroup_permissions: "rw".into(),
        }])
        .expect("spec");
        let extra = cgroup_rules(&["b 7:* rw".into()]).expect("rule");
        let d = for_container(false, &specs, &extra).expect("devices");
        assert_eq!(d.nodes[0]["path"], "/dev/mynull");
        assert_eq!(d.nodes[0]["major"], 1);
        let n = d.rules.len();
        assert_eq!(
            d.rules[n - 2],
            json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})
        );
        assert_eq!(
            d.rules[n - 1],
            json!({"allow": true, "type": "b", "major": 7, "access": "rw"})
        );
        let privileged = for_container(true, &specs, &extra).expect("privileged");
        assert_eq!(privileged.rules, [json!({"allow": true, "access": "rwm"})]);
        assert!(privileged.nodes.iter().any(|n| n["path"] == "/dev/mynull"));
    }

    #[test]
    fn bad_devices_and_rules_are_refused() {
        for (host, perms) in [
            ("/nonexistent-device", ""),
            ("relative", ""),
            ("/dev/null", "rx"),
            ("/dev/null", "rr"),
            ("/etc/hostname", ""),
        ] {
            let m = DeviceMapping {
                path_on_host: host.into(),
                path_in_container: String::new(),
                cgroup_permissions: perms.into(),
            };
            assert!(device_specs(&[m]).is_err(), "{host} {perms}");
        }
        for bad in [
            "c 1:3",
            "x 1:3 r",
            "c 1 r",
            "c 1:3 rwx",
            "c -1:3 r",
            "c 1:3  r",
            "",
        ] {
            assert!(cgroup_rules(&[bad.into()]).is_err(), "{bad:?}");
        }
        assert_eq!(
            cgroup_rules(&["a *:* rwm".into()]).expect("all"),
            [json!({"allow": true, "type": "a", "access": "rwm"})]
        );
    }
}

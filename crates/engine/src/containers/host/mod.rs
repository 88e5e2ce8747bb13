//! The HostConfig options berth honours, parsed and checked at create, applied to the OCI
//! config at start: resources, ulimits, capabilities, read-only root, tmpfs mounts and bind
//! mounts.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// HostConfig keys handled here.
pub const KEYS: &[&str] = &[
    "Memory",
    "MemorySwap",
    "NanoCpus",
    "CpuShares",
    "CpuQuota",
    "CpuPeriod",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "Ulimits",
    "CapAdd",
    "CapDrop",
    "ReadonlyRootfs",
    "Tmpfs",
    "Binds",
    "Privileged",
    "Init",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostOptions {
    /// OCI linux.resources.
    pub resources: Option<Value>,
    /// OCI process.rlimits.
    pub rlimits: Vec<Value>,
    /// The capability set (Docker's defaults with --cap-add/--cap-drop applied).
    pub caps: Vec<String>,
    pub readonly_rootfs: bool,
    /// OCI mounts (tmpfs, binds).
    pub mounts: Vec<Value>,
    /// --privileged: every capability and device, no seccomp, no masked paths.
    #[serde(default)]
    pub privileged: bool,
    /// --init: a tiny init (docker-init, tini) runs as PID 1 and reaps.
    #[serde(default)]
    pub init: bool,
}

fn invalid(what: String) -> Error {
    Error::InvalidArgument(what)
}

/// `chown`, `CAP_CHOWN`, `ALL` -> `CAP_CHOWN` / `ALL`.
fn cap_name(c: &str) -> Result<String> {
    let upper = c.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if name.len() <= 4
        || !name[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_')
    {
        return Err(invalid(format!("unknown capability: {c:?}")));
    }
    Ok(name)
}

/// Every capability this host grants (its bounding set; for --cap-add ALL and
/// --privileged): a capability the kernel or the sandbox lacks would fail capset.
pub(crate) fn all_caps() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    known_caps()
        .into_iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1u64 << bit) != 0)
        .map(|(_, name)| name)
        .collect()
}

/// Every capability by name, in the kernel's numbering (CAP_CHOWN is 0).
fn known_caps() -> Vec<String> {
    let names = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    names.iter().map(|n| format!("CAP_{n}")).collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(super::string_list).unwrap_or_default()
}

fn capabilities(host: &Map<String, Value>, defaults: &[&str]) -> Result<Vec<String>> {
    let add = strings(host.get("CapAdd"))
        .iter()
        .map(|c| cap_name(c))
        .collect::<Result<Vec<_>>>()?;
    let drop = strings(host.get("CapDrop"))
        .iter()
        .map(|c| cap_name(c))
        .collect::<Result<Vec<_>>>()?;
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        defaults
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    let added = if add.iter().any(|c| c == "ALL") {
        all_caps()
    } else {
        add
    };
    for c in added {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

fn resources(host: &Map<String, Value>) -> Result<Option<Value>> {
    let int = |k: &str| host.get(k).and_then(Value::as_i64).filter(|v| *v != 0);
    let mut r = json!({});
    if let Some(m) = int("Memory") {
        if m < 6 * 1024 * 1024 {
            return Err(invalid("Minimum memory limit allowed is 6MB".into()));
        }
        r["memory"] = json!({"limit": m});
        match int("MemorySwap") {
            Some(-1) => r["memory"]["swap"] = json!(-1),
            Some(s) if s < m => {
                return Err(invalid(
                    "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
                ))
            }
            Some(s) => r["memory"]["swap"] = json!(s),
            None => r["memory"]["swap"] = json!(m * 2),
        }
    } else if int("MemorySwap").is_some_and(|s| s != -1) {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        ));
    }
    let mut cpu = json!({});
    if let Some(n) = int("NanoCpus") {
        if int("CpuQuota").is_some() || int("CpuPeriod").is_some() {
            return Err(invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        cpu["period"] = json!(100_000);
        cpu["quota"] = json!(n / 10_000);
    }
    if let Some(q) = int("CpuQuota") {
        cpu["quota"] = json!(q);
    }
    if let Some(p) = int("CpuPeriod") {
        cpu["period"] = json!(p);
    }
    if let Some(s) = int("CpuShares") {
        cpu["shares"] = json!(s);
    }
    for (key, field) in [("CpusetCpus", "cpus"), ("CpusetMems", "mems")] {
        if let Some(v) = host
            .get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            cpu[field] = json!(v);
        }
    }
    if cpu.as_object().is_some_and(|o| !o.is_empty()) {
        r["cpu"] = cpu;
    }
    if let Some(p) = int("PidsLimit") {
        r["pids"] = json!({"limit": if p < 0 { -1 } else { p }});
    }
    Ok(r.as_object().is_some_and(|o| !o.is_empty()).then_some(r))
}

fn rlimits(host: &Map<String, Value>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for u in host
        .get("Ulimits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = u["Name"].as_str().unwrap_or_default();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(invalid(format!("invalid ulimit {u}")));
        }
        out.push(json!({
            "type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
            "soft": u["Soft"].as_u64().unwrap_or(0),
            "hard": u["Hard"].as_u64().unwrap_or(0),
        }));
    }
    Ok(out)
}

fn tmpfs_mounts(host: &Map<String, Value>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (dest, opts) in host
        .get("Tmpfs")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if !dest.starts_with('/') {
            return Err(invalid(format!(
                "invalid tmpfs mount point {dest:?}: not absolute"
            )));
        }
        let mut options = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        options.extend(
            opts.as_str()
                .unwrap_or_default()
                .split(',')
                .filter(|o| !o.is_empty())
                .map(String::from),
        );
        out.push(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}),
        );
    }
    Ok(out)
}

/// `-v /host:/container[:ro|rw]`: bind mounts of host paths. Named volumes come later.
fn bind_mounts(host: &Map<String, Value>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for bind in strings(host.get("Binds")) {
        let parts: Vec<&str> = bind.split(':').collect();
        let (src, dest, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, m] => (*s, *d, *m),
            _ => return Err(invalid(format!("invalid volume specification: {bind:?}"))),
        };
        if !src.starts_with('/') {
            return Err(invalid(format!(
                "named volumes ({src:?}) are not supported by berth yet: bind a host path"
            )));
        }
        if !dest.starts_with('/') {
            return Err(invalid(format!(
                "invalid volume specification: {bind:?}: the destination must be absolute"
            )));
        }
        let mut options = vec!["rbind".to_string()];
        for m in mode.split(',').filter(|m| !m.is_empty()) {
            match m {
                "ro" | "rw" => options.push(m.to_string()),
                "z" | "Z" => {
                    return Err(invalid(format!(
                        "{bind:?}: SELinux relabeling is not supported"
                    )))
                }
                other => return Err(invalid(format!("invalid mode {other:?} in {bind:?}"))),
            }
        }
        if !std::path::Path::new(src).exists() {
            std::fs::create_dir_all(src)
                .map_err(|e| invalid(format!("create bind source {src}: {e}")))?;
        }
        out.push(json!({"destination": dest, "type": "bind", "source": src, "options": options}));
    }
    Ok(out)
}

pub fn parse(host: &Map<String, Value>, default_caps: &[&str]) -> Result<HostOptions> {
    let mut mounts = tmpfs_mounts(host)?;
    mounts.extend(bind_mounts(host)?);
    let flag = |key: &str| host.get(key).and_then(Value::as_bool).unwrap_or(false);
    let privileged = flag("Privileged");
    Ok(HostOptions {
        resources: resources(host)?,
        rlimits: rlimits(host)?,
        caps: if privileged {
            all_caps()
        } else {
            capabilities(host, default_caps)?
        },
        privileged,
        init: flag("Init"),
        readonly_rootfs: host
            .get("ReadonlyRootfs")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        mounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn resources_caps_and_mounts() {
        let h = host(
            json!({"Memory": 67108864, "NanoCpus": 500000000, "PidsLimit": 20, "CapDrop": ["chown"], "CapAdd": ["SYS_ADMIN"],
            "Tmpfs": {"/scratch": "size=1m"}, "Binds": ["/tmp:/host-tmp:ro"], "Ulimits": [{"Name": "nofile", "Soft": 512, "Hard": 1024}]}),
        );
        let o = parse(&h, &["CAP_CHOWN", "CAP_KILL"]).expect("parse");
        assert_eq!(
            o.resources,
            Some(
                json!({"memory": {"limit": 67108864, "swap": 134217728}, "cpu": {"period": 100000, "quota": 50000}, "pids": {"limit": 20}})
            )
        );
        assert_eq!(o.caps, ["CAP_KILL", "CAP_SYS_ADMIN"]);
        assert_eq!(o.mounts.len(), 2);
        assert_eq!(o.rlimits[0]["type"], "RLIMIT_NOFILE");
        for bad in [
            json!({"Memory": 1000}),
            json!({"MemorySwap": 100}),
            json!({"Binds": ["vol:/data"]}),
            json!({"CapAdd": ["bad cap"]}),
        ] {
            assert!(parse(&host(bad.clone()), &[]).is_err(), "{bad}");
        }
    }
}

//! Capabilities: Docker's default set with `--cap-add` and `--cap-drop` applied.

use super::invalid;
use crate::containers::request::StrSlice;
use crate::error::Result;

/// Every capability by name, in the kernel's numbering (CAP_CHOWN is 0).
const KNOWN: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// `chown`, `CAP_CHOWN`, `ALL` -> `CAP_CHOWN` / `ALL`; a capability the kernel does not
/// name is refused as dockerd refuses it.
fn cap_name(c: &str) -> std::result::Result<String, String> {
    let upper = c.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if !KNOWN.contains(&name.as_str()) {
        return Err(format!("unknown capability: {name:?}"));
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
    KNOWN
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1u64 << bit) != 0)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// The names of `list` (CapAdd or CapDrop, as `field` says in errors), each known and, for
/// an addition, one this host can grant.
fn names(list: &StrSlice, field: &str, granted: Option<&[String]>) -> Result<Vec<String>> {
    list.0
        .iter()
        .map(|c| {
            let name = cap_name(c).map_err(|e| invalid(format!("invalid {field}: {e}")))?;
            if name != "ALL" && granted.is_some_and(|g| !g.contains(&name)) {
                return Err(invalid(format!(
                    "invalid {field}: capability not supported by your kernel or not available in the current environment: {name:?}"
                )));
            }
            Ok(name)
        })
        .collect()
}

/// The set: `defaults`, less `drop` (all of them for ALL), plus `add` (every capability
/// for ALL).
pub fn capabilities(add: &StrSlice, drop: &StrSlice, defaults: &[&str]) -> Result<Vec<String>> {
    let granted = all_caps();
    let add = names(add, "CapAdd", Some(&granted))?;
    let drop = names(drop, "CapDrop", None)?;
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
        granted
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

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> StrSlice {
        StrSlice(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn add_and_drop() {
        let caps = capabilities(
            &list(&["SYS_ADMIN"]),
            &list(&["chown"]),
            &["CAP_CHOWN", "CAP_KILL"],
        )
        .expect("caps");
        assert_eq!(caps, ["CAP_KILL", "CAP_SYS_ADMIN"]);
        assert!(
            capabilities(&list(&[]), &list(&["ALL"]), &["CAP_KILL"]).is_ok_and(|c| c.is_empty())
        );
    }

    #[test]
    fn unknown_capabilities_are_refused() {
        for bad in ["NOPE", "bad cap", "CAP_", ""] {
            let err = capabilities(&list(&[bad]), &list(&[]), &[]);
            assert!(
                err.as_ref()
                    .is_err_and(|e| e.to_string().contains("unknown capability")),
                "{bad}: {err:?}"
            );
        }
    }
}

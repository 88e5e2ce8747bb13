//! Seccomp profiles in Docker's format (the form dockerd's `--seccomp-profile` and
//! `--security-opt seccomp=` take), turned into the OCI form a runtime receives: only the
//! rules whose includes/excludes match this architecture, kernel and the container's
//! capabilities.

mod builtin;

use serde_json::{json, Value};

pub use builtin::profile as builtin_profile;

use crate::error::{Error, Result};

/// The profile's name for this machine's architecture.
fn host_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "x86" => ("386", "SCMP_ARCH_X86"),
        other => (other, ""),
    }
}

/// Kernel version as (major, minor).
fn kernel() -> (u32, u32) {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn applies(rule: &Value, caps: &[&str]) -> bool {
    let (arch, _) = host_arch();
    let (inc, exc) = (&rule["includes"], &rule["excludes"]);
    let inc_arches = strings(&inc["arches"]);
    if !inc_arches.is_empty() && !inc_arches.contains(&arch) {
        return false;
    }
    if strings(&exc["arches"]).contains(&arch) {
        return false;
    }
    if !strings(&inc["caps"]).iter().all(|c| caps.contains(c)) {
        return false;
    }
    if strings(&exc["caps"]).iter().any(|c| caps.contains(c)) {
        return false;
    }
    if let Some(min) = inc["minKernel"].as_str() {
        let mut p = min.split('.').filter_map(|x| x.parse::<u32>().ok());
        let want = (p.next().unwrap_or(0), p.next().unwrap_or(0));
        if kernel() < want {
            return false;
        }
    }
    true
}

/// The OCI `linux.seccomp` of a Docker-format `profile` for a container with `caps`.
pub fn to_oci(profile: &Value, caps: &[&str]) -> Result<Value> {
    let default = profile["defaultAction"].as_str().ok_or_else(|| {
        Error::InvalidArgument("seccomp profile: defaultAction is missing".into())
    })?;
    let (_, scmp_arch) = host_arch();
    let mut arches: Vec<String> = Vec::new();
    for m in profile["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == scmp_arch {
            arches.push(scmp_arch.to_string());
            arches.extend(
                strings(&m["subArchitectures"])
                    .into_iter()
                    .map(String::from),
            );
        }
    }
    if arches.is_empty() {
        arches = strings(&profile["architectures"])
            .into_iter()
            .map(String::from)
            .collect();
    }
    let mut syscalls = Vec::new();
    for rule in profile["syscalls"].as_array().into_iter().flatten() {
        if !applies(rule, caps) {
            continue;
        }
        let mut names = strings(&rule["names"]);
        if let Some(n) = rule["name"].as_str() {
            names.push(n);
        }
        let mut entry = json!({"names": names, "action": rule["action"]});
        if rule["args"].as_array().is_some_and(|a| !a.is_empty()) {
            entry["args"] = rule["args"].clone();
        }
        if let Some(e) = rule.get("errnoRet").filter(|e| !e.is_null()) {
            entry["errnoRet"] = e.clone();
        }
        syscalls.push(entry);
    }
    let mut out = json!({"defaultAction": default, "architectures": arches, "syscalls": syscalls});
    if let Some(e) = profile.get("defaultErrnoRet").filter(|e| !e.is_null()) {
        out["defaultErrnoRet"] = e.clone();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_kept_by_arch_and_caps() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_KILL"]}},
                {"names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm"]}},
            ]
        });
        let oci = to_oci(&profile, &["CAP_KILL"]).expect("convert");
        let names: Vec<&str> = oci["syscalls"]
            .as_array()
            .expect("list")
            .iter()
            .flat_map(|r| strings(&r["names"]))
            .collect();
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                oci["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
            assert_eq!(names, ["read", "write"]);
        }
        assert_eq!(oci["defaultErrnoRet"], 1);
        assert!(to_oci(&json!({}), &[]).is_err());
    }

    /// The built-in profile: namespaces, mounts and modules are refused to a container
    /// with Docker's default capabilities; CAP_SYS_ADMIN gives mounts and namespaces back.
    #[test]
    fn the_builtin_profile_follows_capabilities() {
        let denied = |caps: &[&str]| -> Vec<String> {
            let oci = to_oci(&builtin_profile(), caps).expect("convert");
            assert_eq!(oci["defaultAction"], "SCMP_ACT_ALLOW");
            oci["syscalls"]
                .as_array()
                .expect("list")
                .iter()
                .flat_map(|r| strings(&r["names"]).into_iter().map(String::from))
                .collect()
        };
        let default = denied(&crate::containers::spec::DEFAULT_CAPS);
        for name in [
            "mount",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "init_module",
            "keyctl",
            "bpf",
            "ptrace",
        ] {
            assert!(default.iter().any(|n| n == name), "{name} is not denied");
        }
        assert!(
            !default.iter().any(|n| n == "chroot"),
            "CAP_SYS_CHROOT is a default"
        );
        let admin = denied(&["CAP_SYS_ADMIN"]);
        for name in ["mount", "unshare", "clone", "clone3"] {
            assert!(
                !admin.iter().any(|n| n == name),
                "{name} denied with CAP_SYS_ADMIN"
            );
        }
        assert!(admin.iter().any(|n| n == "keyctl"));
    }
}

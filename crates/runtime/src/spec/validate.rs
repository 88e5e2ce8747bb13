//! Checks a config before anything is created, so that a bad bundle fails with a message that
//! names the field and leaves nothing behind. Fields this runtime does not implement yet are
//! refused by name, never silently ignored.

use std::collections::HashSet;

use oci_spec::runtime::{Linux, LinuxNamespaceType, Process, Spec};

use crate::error::{Error, Result};

/// Validate `spec` for `create`.
pub fn validate(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process is missing"))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::config("linux is missing"))?;
    check_unsupported(process, linux)?;
    check_process(process)?;
    let namespaces = check_namespaces(linux)?;
    super::extras::check(process, linux, namespaces.has(LinuxNamespaceType::Network))?;
    check_identity(spec, linux, &namespaces)?;
    check_sysctls(linux, &namespaces)?;
    check_mounts(spec)?;
    check_hooks(spec)?;
    if let Some(prop) = linux.rootfs_propagation() {
        crate::rootfs::propagation_flags(prop)?;
    }
    Ok(())
}

fn unsupported(field: &str, why: &str) -> Error {
    Error::Unsupported {
        field: field.to_string(),
        why: why.to_string(),
    }
}

fn check_unsupported(process: &Process, linux: &Linux) -> Result<()> {
    check_security_modules(process, linux)?;
    Ok(())
}

/// AppArmor and SELinux: on a host without them runc fails such a config, and so do we (with
/// a message that says why). Where they are enabled berth-runtime cannot apply them yet.
fn check_security_modules(process: &Process, linux: &Linux) -> Result<()> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    let apparmor_enabled = || {
        std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.trim() == "Y")
    };
    let selinux_enabled = || std::path::Path::new("/sys/fs/selinux/enforce").exists();
    for (field, value, module, enabled) in [
        (
            "process.apparmorProfile",
            process.apparmor_profile(),
            "AppArmor",
            apparmor_enabled(),
        ),
        (
            "process.selinuxLabel",
            process.selinux_label(),
            "SELinux",
            selinux_enabled(),
        ),
        (
            "linux.mountLabel",
            linux.mount_label(),
            "SELinux",
            selinux_enabled(),
        ),
    ] {
        if !set(value) {
            continue;
        }
        let field = format!("{field} {:?}", value.as_deref().unwrap_or_default());
        return Err(if enabled {
            unsupported(
                &field,
                &format!("berth-runtime does not apply {module} labels"),
            )
        } else {
            Error::config(format!(
                "{field}: {module} is not enabled on this host (runc refuses this config too)"
            ))
        });
    }
    Ok(())
}

fn check_process(process: &Process) -> Result<()> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::config("process.args must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::config(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        )));
    }
    for var in process.env().iter().flatten() {
        if !var.contains('=') {
            return Err(Error::config(format!(
                "process.env entry {var:?} is not KEY=value"
            )));
        }
    }
    Ok(())
}

/// The namespace types present in the config.
pub(crate) struct NamespaceSet {
    present: HashSet<LinuxNamespaceType>,
    new: HashSet<LinuxNamespaceType>,
}

impl NamespaceSet {
    fn has(&self, t: LinuxNamespaceType) -> bool {
        self.present.contains(&t)
    }
    fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(&t)
    }
}

fn check_namespaces(linux: &Linux) -> Result<NamespaceSet> {
    let mut set = NamespaceSet {
        present: HashSet::new(),
        new: HashSet::new(),
    };
    for ns in linux.namespaces().iter().flatten() {
        if !set.present.insert(ns.typ()) {
            return Err(Error::config(format!(
                "namespace {} is listed twice",
                ns.typ()
            )));
        }
        match ns.path() {
            None => {
                set.new.insert(ns.typ());
            }
            Some(p) if !p.is_absolute() => {
                return Err(Error::config(format!(
                    "namespace {} path {p:?} must be absolute",
                    ns.typ()
                )));
            }
            Some(p) if !p.exists() => {
                return Err(Error::config(format!(
                    "namespace {} path {p:?} does not exist",
                    ns.typ()
                )));
            }
            Some(_) => {}
        }
    }
    Ok(set)
}

fn check_identity(spec: &Spec, linux: &Linux, ns: &NamespaceSet) -> Result<()> {
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if ns.creates(LinuxNamespaceType::User) {
        if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty())
        {
            return Err(Error::config(
                "a new user namespace needs linux.uidMappings and linux.gidMappings",
            ));
        }
    } else if has_maps {
        return Err(Error::config(
            "linux.uidMappings/gidMappings are set but no new user namespace is configured",
        ));
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !ns.has(LinuxNamespaceType::Uts) {
        return Err(Error::config(
            "unable to set hostname without a private UTS namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !ns.has(LinuxNamespaceType::Uts)
    {
        return Err(Error::config(
            "unable to set domainname without a private UTS namespace",
        ));
    }
    if linux.time_offsets().is_some() && !ns.creates(LinuxNamespaceType::Time) {
        return Err(Error::config(
            "linux.timeOffsets needs a new time namespace",
        ));
    }
    for key in sorted_keys(linux.time_offsets().as_ref()) {
        if key != "monotonic" && key != "boottime" {
            return Err(Error::config(format!(
                "linux.timeOffsets: unknown clock {key:?}"
            )));
        }
    }
    Ok(())
}

/// The keys of a map of the config in order, so that a config with several faults is
/// refused with the same message every time (a HashMap's order changes from run to run).
fn sorted_keys<V>(map: Option<&std::collections::HashMap<String, V>>) -> Vec<&String> {
    let mut keys: Vec<&String> = map.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys
}

/// Only namespaced sysctls may be set, and only when the container has that namespace
/// (runc's rules).
fn check_sysctls(linux: &Linux, ns: &NamespaceSet) -> Result<()> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    for key in sorted_keys(linux.sysctl().as_ref()) {
        let (needs, what) = if IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            (LinuxNamespaceType::Ipc, "ipc")
        } else if key.starts_with("net.") {
            (LinuxNamespaceType::Network, "network")
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            (LinuxNamespaceType::Uts, "uts")
        } else {
            return Err(Error::config(format!(
                "sysctl {key:?} is not in a separate kernel namespace"
            )));
        };
        if !ns.has(needs) {
            return Err(Error::config(format!(
                "sysctl {key:?} is not allowed in the host's {what} namespace"
            )));
        }
        if key.contains('/') || key.split('.').any(|p| p.is_empty() || p == "..") {
            return Err(Error::config(format!("sysctl {key:?} is not a valid name")));
        }
    }
    Ok(())
}

fn check_mounts(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(Error::config(format!(
                "mount destination {:?} must be absolute",
                m.destination()
            )));
        }
        let opts = crate::rootfs::MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
        crate::rootfs::check_mount(spec, i, m, &opts)?;
    }
    Ok(())
}

fn check_hooks(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    #[allow(deprecated)]
    let all = [
        hooks.prestart(),
        hooks.create_runtime(),
        hooks.create_container(),
        hooks.start_container(),
        hooks.poststart(),
        hooks.poststop(),
    ];
    for hook in all.into_iter().flatten().flatten() {
        if !hook.path().is_absolute() {
            return Err(Error::config(format!(
                "hook path {:?} must be absolute",
                hook.path()
            )));
        }
        if hook.timeout().is_some_and(|t| t <= 0) {
            return Err(Error::config(format!(
                "hook {:?}: timeout must be positive",
                hook.path()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (fuzz/tests/fuzz_oci_config.rs): with several bad sysctls the one named
    /// in the error depended on the HashMap's order, different from one parse to the next.
    #[test]
    fn the_same_config_is_refused_with_the_same_message() {
        let mut config = crate::spec::default_spec(crate::spec::SpecFlavor::Rootful);
        config["linux"]["sysctl"] = serde_json::json!({
            "vm.swappiness": "1", "net..x": "1", "kernel.bogus": "1", "fs.bogus": "1",
            "net./x": "1", "user.max": "1",
        });
        let messages: HashSet<String> = (0..32)
            .map(|_| {
                let spec: Spec = serde_json::from_value(config.clone()).expect("spec");
                validate(&spec).expect_err("bad sysctls").to_string()
            })
            .collect();
        assert_eq!(messages.len(), 1, "{messages:?}");
    }
}

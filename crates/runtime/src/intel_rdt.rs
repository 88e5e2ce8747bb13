//! linux.intelRdt: the container's resctrl group (Intel RDT / AMD PQoS cache and memory
//! bandwidth allocation), as runc does it. The group is `closID` (`/` is the root group)
//! or the container's id; it is created if missing and, when this runtime created it and
//! `closID` was not given, removed at delete. The schemata lines (l3CacheSchema, then
//! memBwSchema, then schemata) are written to its `schemata` file, init and each exec'd
//! process to its `tasks`. Like runc, an existing group's schemata are overwritten rather
//! than compared (the kernel rewrites what it reads back: zero padding, cache id order).
//! Monitoring groups are refused by name.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxIntelRdt;

use crate::error::{Error, Result};

/// The marker in the state directory: the group this runtime created (removed at delete).
const CREATED: &str = "intel_rdt_group";

/// Check the config: monitoring is refused, schema lines are single lines, and the host
/// must have resctrl mounted (runtime-spec: an error otherwise).
pub(crate) fn check(rdt: &LinuxIntelRdt) -> Result<()> {
    #[allow(deprecated)]
    let monitoring = [
        ("enableMonitoring", rdt.enable_monitoring()),
        ("enableCMT", rdt.enable_cmt()),
        ("enableMBM", rdt.enable_mbm()),
    ];
    if let Some((field, _)) = monitoring.iter().find(|(_, v)| **v == Some(true)) {
        return Err(Error::Unsupported {
            field: format!("linux.intelRdt.{field}"),
            why: "resctrl monitoring groups are not implemented by berth-runtime".into(),
        });
    }
    for (field, line) in lines(rdt) {
        if line.contains('\n') {
            return Err(Error::config(format!(
                "linux.intelRdt.{field} {line:?} must be a single line"
            )));
        }
    }
    if let Some(mb) = rdt.mem_bw_schema().as_deref().filter(|s| !s.is_empty()) {
        if !mb.starts_with("MB:") {
            return Err(Error::config(format!(
                "linux.intelRdt.memBwSchema {mb:?} must start with \"MB:\""
            )));
        }
    }
    if let Some(clos) = rdt.clos_id().as_deref() {
        if clos != "/" && (clos.is_empty() || clos.contains('/') || clos == "." || clos == "..") {
            return Err(Error::config(format!(
                "linux.intelRdt.closID {clos:?} is not a resctrl group name"
            )));
        }
    }
    mount_point()?;
    Ok(())
}

/// The schemata lines in the order runtime-spec wants them written, with their fields.
fn lines(rdt: &LinuxIntelRdt) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    if let Some(l3) = rdt.l3_cache_schema().as_deref() {
        out.push(("l3CacheSchema", l3));
    }
    if let Some(mb) = rdt.mem_bw_schema().as_deref() {
        out.push(("memBwSchema", mb));
    }
    for line in rdt.schemata().iter().flatten() {
        out.push(("schemata", line.as_str()));
    }
    out.retain(|(_, l)| !l.is_empty());
    out
}

/// Where resctrl is mounted in the runtime's mount namespace.
fn mount_point() -> Result<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    find_mount(&text).ok_or_else(|| {
        Error::config(
            "linux.intelRdt is set but this host has no resctrl filesystem mounted (it needs \
             Intel RDT or AMD PQoS and `mount -t resctrl resctrl /sys/fs/resctrl`)",
        )
    })
}

/// The mount point of the first resctrl mount in mountinfo's text.
fn find_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split(' ').next() == Some("resctrl"))
            .then(|| left.split(' ').nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// The container's group under the resctrl mount `root`.
struct Group {
    dir: PathBuf,
    /// closID was given: the group is someone else's to remove.
    named: bool,
}

impl Group {
    fn of(root: &Path, rdt: &LinuxIntelRdt, id: &str) -> Self {
        match rdt.clos_id().as_deref() {
            Some("/") => Group {
                dir: root.to_path_buf(),
                named: true,
            },
            Some(clos) => Group {
                dir: root.join(clos),
                named: true,
            },
            None => Group {
                dir: root.join(id),
                named: false,
            },
        }
    }

    fn join(&self, pid: i32) -> Result<()> {
        let tasks = self.dir.join("tasks");
        std::fs::write(&tasks, pid.to_string()).map_err(|e| Error::io("write", tasks, e))
    }
}

/// At create, with init parked: make the group if needed, write its schemata, put init
/// in it. Records the group in `state_dir` if this runtime is to remove it.
pub(crate) fn apply(rdt: &LinuxIntelRdt, id: &str, pid: i32, state_dir: &Path) -> Result<()> {
    apply_under(&mount_point()?, rdt, id, pid, state_dir)
}

fn apply_under(
    root: &Path,
    rdt: &LinuxIntelRdt,
    id: &str,
    pid: i32,
    state_dir: &Path,
) -> Result<()> {
    let group = Group::of(root, rdt, id);
    let lines = lines(rdt);
    if group.named && lines.is_empty() && !group.dir.is_dir() {
        return Err(Error::config(format!(
            "linux.intelRdt.closID: resctrl group {} does not exist (without schemata it must be made beforehand)",
            group.dir.display()
        )));
    }
    match std::fs::create_dir(&group.dir) {
        Ok(()) if !group.named => {
            let marker = state_dir.join(CREATED);
            std::fs::write(&marker, group.dir.as_os_str().as_encoded_bytes())
                .map_err(|e| Error::io("write", marker, e))?;
        }
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("create resctrl group", &group.dir, e)),
    }
    if !lines.is_empty() {
        let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
        let path = group.dir.join("schemata");
        std::fs::write(&path, &text).map_err(|e| {
            Error::config(format!(
                "linux.intelRdt: writing {text:?} to {}: {e}",
                path.display()
            ))
        })?;
    }
    group.join(pid)
}

/// An exec'd process joins the container's group (a child of the runtime, not of init,
/// it would not inherit it).
pub(crate) fn join(rdt: &LinuxIntelRdt, id: &str, pid: i32) -> Result<()> {
    Group::of(&mount_point()?, rdt, id).join(pid)
}

/// At delete: remove the group this runtime created, if any.
pub(crate) fn remove(state_dir: &Path) -> Result<()> {
    let marker = state_dir.join(CREATED);
    let Ok(dir) = std::fs::read(&marker) else {
        return Ok(());
    };
    let dir = PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(dir));
    match std::fs::remove_dir(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove resctrl group", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(v: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(v).expect("intelRdt")
    }

    #[test]
    fn finds_the_resctrl_mount() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    40 22 0:35 / /sys/fs/resctrl rw,relatime - resctrl resctrl rw\n";
        assert_eq!(find_mount(info), Some(PathBuf::from("/sys/fs/resctrl")));
        assert_eq!(find_mount("22 1 0:21 / /proc rw - proc proc rw\n"), None);
    }

    /// A directory standing in for a resctrl mount: the group is made, its schemata written
    /// in runtime-spec's order, init's pid put in its tasks, and the group removed at delete.
    #[test]
    fn a_group_per_container_is_made_filled_and_removed() {
        let root = tempfile::tempdir().expect("tmp");
        let state = tempfile::tempdir().expect("tmp");
        let config = rdt(
            serde_json::json!({"memBwSchema": "MB:0=70", "l3CacheSchema": "L3:0=f0",
            "schemata": ["L2:0=f"]}),
        );
        apply_under(root.path(), &config, "ctr", 42, state.path()).expect("apply");
        let dir = root.path().join("ctr");
        assert_eq!(
            std::fs::read_to_string(dir.join("schemata")).expect("schemata"),
            "L3:0=f0\nMB:0=70\nL2:0=f\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("tasks")).expect("tasks"),
            "42"
        );
        std::fs::remove_file(dir.join("schemata")).expect("rm");
        std::fs::remove_file(dir.join("tasks")).expect("rm");
        remove(state.path()).expect("remove");
        assert!(!dir.exists());
    }

    #[test]
    fn a_named_group_is_joined_never_removed_and_must_exist_without_schemata() {
        let root = tempfile::tempdir().expect("tmp");
        let state = tempfile::tempdir().expect("tmp");
        let config = rdt(serde_json::json!({"closID": "gold"}));
        let err = apply_under(root.path(), &config, "ctr", 7, state.path()).expect_err("missing");
        assert!(err.to_string().contains("does not exist"), "{err}");
        std::fs::create_dir(root.path().join("gold")).expect("mkdir");
        apply_under(root.path(), &config, "ctr", 7, state.path()).expect("apply");
        assert_eq!(
            std::fs::read_to_string(root.path().join("gold/tasks")).expect("tasks"),
            "7"
        );
        assert!(!state.path().join(CREATED).exists());
        let err = check(&rdt(serde_json::json!({"closID": "../x"}))).expect_err("bad");
        assert!(err.to_string().contains("closID"), "{err}");
        let err = check(&rdt(serde_json::json!({"enableMonitoring": true}))).expect_err("mon");
        assert!(err.to_string().contains("enableMonitoring"), "{err}");
    }
}
